import Foundation
import KilnCore
import KilnNN

/// Trains an `AutoencoderKL` (diffusers layout) on a data set's images, as Stable Diffusion's
/// VAE was trained, without the perceptual and adversarial terms:
///
///     x ∈ [−1, 1] (a random crop), q(z|x) = N(μ, σ²) from the encoder, z = μ + σ ⊙ ε,
///     x̂ = decoder(z),  with a = (x̂ + 1)/2, b = (x + 1)/2:
///     L = w_l1 · mean|a − b| + w_ssim · (1 − SSIM(a, b)) + w_kl · mean ½(μ² + σ² − 1 − log σ²)
///
/// AdamW with linear warm-up, global gradient-norm clipping and an EMA of every weight (the
/// exported model). The model trains with scaling factor 1 and no shift; `latentStatistics`
/// measures the latents' spread for the exported `scaling_factor` (1 / std, as Stable
/// Diffusion's 0.18215 was measured).
public final class VAETrainer {
    public let config: VAETrainingConfig
    public let data: any PriorTrainingData
    public let vae: AutoencoderKL
    let named: [(name: String, parameter: Parameter)]
    /// The parameters' optimiser and EMA, saved and restored together.
    let state: TrainingState
    public private(set) var step = 0
    /// Wall time of each part of the training steps so far.
    public var times = StageTimes()
    var rng: RNG

    /// The last step's loss terms.
    public struct Losses: Sendable {
        public var total: Float
        public var l1: Float
        public var ssim: Float
        public var kl: Float
    }

    public init(config: VAETrainingConfig, data: any PriorTrainingData) throws {
        self.config = config
        self.data = data
        var training = config.vae
        (training.scalingFactor, training.shiftFactor) = (1, 0)
        var initRNG = RNG(seed: config.training.seed)
        vae = AutoencoderKL(training, rng: &initRNG)
        named = vae.namedParameters
        state = TrainingState(named: named, learningRate: config.training.learningRate, weightDecay: config.training.weightDecay, emaDecay: config.training.emaDecay)
        rng = initRNG.split(1)
        let crop = config.training.cropSize == 0 ? data.size : config.training.cropSize, f = config.vae.downsamplingFactor
        guard data.size % f == 0 else {
            throw PriorConfigError(source: "training config", key: "vae.block_out_channels",
                                   problem: "gives a VAE that downsamples by \(f), which does not divide the data set's \(data.size)² images",
                                   fix: "use a data set whose size is a multiple of \(f), or fewer levels")
        }
        guard crop <= data.size else {
            throw PriorConfigError(source: "training config", key: "training.crop_size", problem: "is \(crop), larger than the data set's \(data.size)² images",
                                   fix: "use a crop no larger than the images, or 0 for whole images")
        }
        guard config.training.ssimWeight == 0 || crop > 2 * SSIMLoss.radius else {
            throw PriorConfigError(source: "training config", key: "training.crop_size",
                                   problem: "gives \(crop)² crops, too small for SSIM's 11×11 window",
                                   fix: "train on images or crops larger than 10², or set training.ssim_weight to 0")
        }
    }

    public var cropSize: Int { config.training.cropSize == 0 ? data.size : config.training.cropSize }

    /// A random batch of crops in [−1, 1], `[n, 3, crop, crop]`.
    func batch() -> Tensor {
        let n = config.training.batchSize, crop = cropSize, size = data.size, images = data.images
        var x = [Float](repeating: 0, count: n * 3 * crop * crop)
        for b in 0..<n {
            let i = Int(rng.next() % UInt64(data.count))
            let oy = Int(rng.next() % UInt64(size - crop + 1)), ox = Int(rng.next() % UInt64(size - crop + 1))
            for c in 0..<3 {
                for y in 0..<crop {
                    let src = ((i * 3 + c) * size + oy + y) * size + ox, dst = ((b * 3 + c) * crop + y) * crop
                    for xx in 0..<crop { x[dst + xx] = Float(images[src + xx]) / 127.5 - 1 }
                }
            }
        }
        return Tensor(shape: [n, 3, crop, crop], storage: x)
    }

    /// One optimisation step on a random batch of crops; returns its loss terms.
    @discardableResult
    public func trainStep() -> Losses {
        let t = config.training
        let x = times.measure("data") { batch() }
        var losses = Losses(total: 0, l1: 0, ssim: 0, kl: 0)
        for (_, p) in named { p.zeroGradient() }
        forwardBackward(x, losses: &losses)
        step += 1
        times.measure("optimizer") { state.update(step: step, learningRate: t.learningRate, warmupSteps: t.warmupSteps, maxGradNorm: t.maxGradNorm) }
        return losses
    }

    /// The loss of a batch `x` and its gradients: adds every parameter's gradient (the batch is a
    /// constant target). The posterior noise comes from the trainer's RNG.
    func forwardBackward(_ x: Tensor, losses: inout Losses) {
        let t = config.training
        let (posterior, encoderSaved) = times.measure("encoder forward") { vae.encodeForTraining(x) }
        var noise = [Float](repeating: 0, count: posterior.mean.count)
        rng.fill(normal: &noise)
        let std = posterior.std
        let z = posterior.sample(noise: Tensor(shape: posterior.mean.shape, storage: noise))
        let (reconstruction, decoderSaved) = times.measure("decoder forward") { vae.decodeForTraining(z) }
        let (total, dReconstruction, parts) = times.measure("loss") {
            Self.reconstructionLoss(reconstruction, target: x, l1Weight: t.l1Weight, ssimWeight: t.ssimWeight)
        }
        // KL per latent element, and its gradients.
        let m = Float(posterior.mean.count)
        var kl = 0.0
        var dMeanKL = [Float](repeating: 0, count: posterior.mean.count), dLogvarKL = dMeanKL
        for i in 0..<posterior.mean.count {
            let mu = posterior.mean.storage[i], lv = posterior.logvar.storage[i], v = std.storage[i] * std.storage[i]
            kl += 0.5 * Double(mu * mu + v - 1 - lv)
            dMeanKL[i] = Float(t.klWeight) * mu / m
            dLogvarKL[i] = Float(t.klWeight) * 0.5 * (v - 1) / m
        }
        let klMean = kl / Double(m)
        losses = Losses(total: Float(total + t.klWeight * klMean), l1: Float(parts.l1), ssim: Float(parts.ssim), kl: Float(klMean))
        let dz = times.measure("decoder backward") { vae.decodeBackward(decoderSaved, imageGradient: dReconstruction) }
        // z = μ + exp(logvar/2)·ε: ∂z/∂μ = 1, ∂z/∂logvar = ½σε.
        var dMean = dMeanKL, dLogvar = dLogvarKL
        for i in 0..<dz.count {
            dMean[i] += dz.storage[i]
            dLogvar[i] += dz.storage[i] * 0.5 * std.storage[i] * noise[i]
        }
        _ = times.measure("encoder backward") {
            vae.encodeBackward(encoderSaved, meanGradient: Tensor(shape: posterior.mean.shape, storage: dMean),
                               logvarGradient: Tensor(shape: posterior.mean.shape, storage: dLogvar))
        }
    }

    /// w_l1·mean|a − b| + w_ssim·(1 − SSIM(a, b)) of a reconstruction against its target (both in
    /// [−1, 1]; compared as display values a = (x̂ + 1)/2, b = (x + 1)/2), its gradient with
    /// respect to the reconstruction, and the L1 and SSIM parts.
    public static func reconstructionLoss(_ reconstruction: Tensor, target: Tensor, l1Weight: Double, ssimWeight: Double) -> (loss: Double, gradient: Tensor, parts: (l1: Double, ssim: Double)) {
        reconstruction.checkSameShape(target, "VAETrainer.reconstructionLoss")
        let count = reconstruction.count
        let a = reconstruction.map { ($0 + 1) / 2 }, b = target.map { ($0 + 1) / 2 }
        var l1 = 0.0
        var grad = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let d = a.storage[i] - b.storage[i]
            l1 += Double(abs(d))
            grad[i] = Float(l1Weight) * (d > 0 ? 1 : d < 0 ? -1 : 0) / Float(count)
        }
        l1 /= Double(count)
        var ssim = 1.0
        if ssimWeight > 0 {
            let (value, g) = SSIMLoss.ssim(a, target: b, gradient: true)
            ssim = value
            for i in 0..<count { grad[i] -= Float(ssimWeight) * g!.storage[i] }
        }
        // ∂a/∂x̂ = ½.
        return (l1Weight * l1 + ssimWeight * (1 - ssim), Tensor(shape: reconstruction.shape, storage: grad.map { $0 / 2 }), (l1, ssim))
    }

    // MARK: Measuring

    /// Encodes (the posterior's mean) and decodes whole images `[n, 3, S, S]` in [−1, 1].
    public func reconstruct(_ x: Tensor) -> Tensor { vae.decode(vae.encode(x).mean) }

    /// The mean and standard deviation of latents sampled from the posteriors of `images`
    /// (`[n, 3, S, S]` in [−1, 1]), over every element: Stable Diffusion's `scaling_factor` was
    /// measured on samples this way. A latent prior trains on the posterior's mode, whose spread
    /// is smaller by the posterior's own variance (small next to the latents' here: KL weight
    /// 1e-5).
    public func latentStatistics(_ x: Tensor, seed: UInt64) -> (mean: Double, std: Double) {
        let posterior = vae.encode(x)
        var noise = [Float](repeating: 0, count: posterior.mean.count)
        var r = RNG(seed: seed)
        r.fill(normal: &noise)
        let z = posterior.sample(noise: Tensor(shape: posterior.mean.shape, storage: noise)).storage.map(Double.init)
        let mean = z.reduce(0, +) / Double(z.count)
        let variance = z.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(z.count)
        return (mean, variance.squareRoot())
    }

    // MARK: Checkpoints

    /// Writes the raw weights, the EMA, the optimiser moments and the RNG to `folder`
    /// (`TrainingState`).
    public func saveCheckpoint(to folder: URL) throws { try state.save(to: folder, step: step, rng: rng) }

    /// Restores what `saveCheckpoint` wrote.
    public func loadCheckpoint(from folder: URL) throws { (step, rng) = try state.load(from: folder) }

    /// Runs `body` with the EMA weights in the model, then puts the trained weights back.
    public func withAveragedWeights<T>(_ body: () throws -> T) rethrows -> T { try state.withAveragedWeights(body) }

    /// Writes the EMA model as a diffusers `vae/` folder (`AutoencoderKL.writeDiffusersFolder`;
    /// the shift it trained with, none).
    public func export(to folder: URL, scalingFactor: Float) throws {
        try withAveragedWeights { try vae.writeDiffusersFolder(to: folder, scalingFactor: scalingFactor) }
    }
}
