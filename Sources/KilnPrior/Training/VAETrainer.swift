import Foundation
import KilnCore
import KilnNN

/// A VAE training run's configuration (`kiln train-vae --config FILE`): the diffusers
/// `AutoencoderKL` config, in its own format, and the optimisation settings.
///
///     {"vae": {…diffusers AutoencoderKL config; scaling_factor is computed by the run…},
///      "training": {"batch_size": 8, "crop_size": 64, "steps": 6000, …}}
///
/// Unknown keys anywhere are errors naming the key.
public struct VAETrainingConfig: Sendable {
    public var vae: AutoencoderKLConfig
    public var training: Training

    /// Optimisation settings (snake_case keys in the file).
    public struct Training: Sendable, Codable, Equatable {
        public var batchSize = 8
        /// Side of the random square crops trained on (0: whole images). A convolutional VAE
        /// trained on crops encodes whole images as well, at a fraction of the cost.
        public var cropSize = 64
        public var steps = 6000
        public var learningRate = 1e-3
        public var warmupSteps = 200
        public var weightDecay = 0.0
        public var maxGradNorm: Float = 1
        public var emaDecay: Float = 0.999
        /// Weights of the mean absolute error and of 1 − SSIM (both on display values in [0, 1]).
        public var l1Weight = 1.0
        public var ssimWeight = 0.2
        /// Weight of the posterior's KL divergence to N(0, I), per latent element (a small
        /// value keeps the latents near unit scale without blurring the reconstructions).
        public var klWeight = 1e-5
        public var checkpointEvery = 500
        public var logEvery = 50
        public var seed: UInt64 = 0

        public init() {}

        nonisolated(unsafe) static let counts: [(name: String, value: KeyPath<Training, Int>)] = [
            ("batch_size", \.batchSize), ("steps", \.steps), ("warmup_steps", \.warmupSteps), ("checkpoint_every", \.checkpointEvery), ("log_every", \.logEvery),
        ]
    }

    public init(vae: AutoencoderKLConfig, training: Training = Training()) {
        self.vae = vae
        self.training = training
    }

    /// The VAE's `config.json` as diffusers reads it: every key that shapes the network spelled
    /// out (diffusers' defaults differ from a short config's meaning: one block, 32 groups), with
    /// `scalingFactor`.
    func diffusersConfig(scalingFactor: Float) -> ConfigValue {
        var json: [String: ConfigValue] = [
            "_class_name": .string("AutoencoderKL"), "in_channels": .int(vae.inChannels), "out_channels": .int(vae.outChannels),
            "latent_channels": .int(vae.latentChannels), "block_out_channels": .array(vae.blockOutChannels.map { .int($0) }),
            "down_block_types": .array(vae.blockOutChannels.map { _ in .string("DownEncoderBlock2D") }),
            "up_block_types": .array(vae.blockOutChannels.map { _ in .string("UpDecoderBlock2D") }),
            "layers_per_block": .int(vae.layersPerBlock), "norm_num_groups": .int(vae.normGroups), "act_fn": .string("silu"),
            "scaling_factor": .double(Double(scalingFactor)), "shift_factor": .null, "force_upcast": .bool(false),
            "use_quant_conv": .bool(true), "use_post_quant_conv": .bool(true), "mid_block_add_attention": .bool(true),
        ]
        if let s = vae.sampleSize { json["sample_size"] = .int(s) }
        return .object(json)
    }

    /// Reads `url`.
    public init(contentsOf url: URL) throws {
        let source = url.path
        func fail(_ key: String?, _ problem: String, _ fix: String) -> PriorConfigError {
            PriorConfigError(source: source, key: key, problem: problem, fix: fix)
        }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw fail(nil, "cannot be read", "check the path") }
        guard case .object(let object)? = try? JSONDecoder().decode(ConfigValue.self, from: data) else {
            throw fail(nil, "is not a JSON object", "see kiln train-vae --help for the layout")
        }
        for key in object.keys.sorted() where !["vae", "training"].contains(key) {
            throw fail(key, "is not a VAE training-config section", "use vae and training")
        }
        guard case .object(let vaeObject)? = object["vae"] else { throw fail("vae", "is missing or not an object", "give a diffusers AutoencoderKL config") }
        vae = try AutoencoderKLConfig(json: try JSONEncoder().encode(ConfigValue.object(vaeObject)), source: source + " (vae)")
        training = Training()
        if object["training"] != nil {
            do {
                training = try SettingsFile.read(Training(), section: "training", from: data, source: source).value
            } catch let error as SettingsError {
                throw fail(error.key, error.problem, error.fix)
            }
        }
        for (name, value) in Training.counts where training[keyPath: value] <= 0 {
            throw fail("training.\(name)", "must be a positive integer", "write one")
        }
        try check(source: source)
    }

    /// The settings' ranges and the VAE's fit to the crops.
    func check(source: String) throws {
        func fail(_ key: String, _ problem: String, _ fix: String) -> PriorConfigError {
            PriorConfigError(source: source, key: key, problem: problem, fix: fix)
        }
        let t = training, f = vae.downsamplingFactor
        guard t.learningRate > 0, t.learningRate < 1 else { throw fail("training.learning_rate", "must be in (0, 1)", "use about 1e-3") }
        guard (0..<1).contains(t.emaDecay) else { throw fail("training.ema_decay", "must be in [0, 1)", "use 0.999") }
        guard t.maxGradNorm > 0 else { throw fail("training.max_grad_norm", "must be positive", "use 1") }
        guard t.ssimWeight >= 0, t.ssimWeight.isFinite else { throw fail("training.ssim_weight", "must be ≥ 0", "use 0.2") }
        guard t.l1Weight >= 0, t.l1Weight.isFinite else { throw fail("training.l1_weight", "must be ≥ 0", "use 1") }
        guard t.klWeight >= 0, t.klWeight.isFinite else { throw fail("training.kl_weight", "must be ≥ 0", "use 1e-5") }
        guard t.cropSize == 0 || (t.cropSize % f == 0 && t.cropSize > 2 * SSIMLoss.radius) else {
            throw fail("training.crop_size", "is \(t.cropSize), which is not a multiple of the VAE's factor \(f) above \(2 * SSIMLoss.radius)", "use e.g. \(max(16, 4 * f)), or 0 for whole images")
        }
        guard vae.inChannels == 3, vae.outChannels == 3 else { throw fail("vae", "must take and give 3 channels", "an RGB VAE") }
    }
}

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
        let parameters = named.map(\.parameter)
        state = TrainingState(named: named,
                              optimizer: Adam(parameters: parameters, configuration: .adamW(learningRate: config.training.learningRate, weightDecay: config.training.weightDecay)),
                              ema: EMA(parameters: parameters, configuration: EMA.Configuration(maxDecay: config.training.emaDecay)))
        rng = initRNG.split(1)
        let crop = config.training.cropSize == 0 ? data.size : config.training.cropSize
        guard crop <= data.size, data.size % config.vae.downsamplingFactor == 0 else {
            throw PriorConfigError(source: "training config", key: "training.crop_size",
                                   problem: "is \(crop) for \(data.size)² images (the images must be at least the crop and divisible by the VAE's factor \(config.vae.downsamplingFactor))",
                                   fix: "use a crop no larger than the images")
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
        _ = forwardBackward(x, losses: &losses)
        step += 1
        times.measure("optimizer") { state.update(step: step, learningRate: t.learningRate, warmupSteps: t.warmupSteps, maxGradNorm: t.maxGradNorm) }
        return losses
    }

    /// The loss of a batch `x` and its gradients: adds every parameter's gradient and returns
    /// ∂L/∂x (for tests). The posterior noise comes from the trainer's RNG.
    func forwardBackward(_ x: Tensor, losses: inout Losses) -> Tensor {
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
        return times.measure("encoder backward") {
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
    /// (`[n, 3, S, S]` in [−1, 1]), over every element.
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

    /// Writes the EMA model as a diffusers `vae/` folder: `config.json` (`diffusersConfig`) and
    /// `diffusion_pytorch_model.safetensors` (F32).
    public func export(to folder: URL, scalingFactor: Float) throws {
        try withAveragedWeights {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            var weights = SafeTensorsWriter(metadata: ["format": "pt"])
            for (name, p) in named { try weights.add(name, shape: p.shape, values: p.value.storage) }
            try weights.write(to: folder.appendingPathComponent("diffusion_pytorch_model.safetensors"))
            try AtomicFile.write(try encoder.encode(config.diffusersConfig(scalingFactor: scalingFactor)), to: folder.appendingPathComponent("config.json"))
        }
    }
}
