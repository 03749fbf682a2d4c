import Foundation
import KilnCore
import KilnNN

/// Variational score distillation's second score model (ProlificDreamer, Wang et al. 2023): LoRA
/// adapters on the prior's own UNet, trained online on the scene's current renders, whose noise
/// prediction takes the place of the sampled noise in the distillation gradient,
///
///     g = w(t)·(ε̂_pretrained(x_t; y, c, t) − ε̂_φ(x_t; y, c, t)),
///
/// so the gradient points from the distribution of the renders towards the prior's instead of
/// from one noise sample (SDS's mode seeking). The adapters share the prior's layers and are
/// switched off outside this model's calls (`Linear.adapterEnabled`), so the prior's own
/// predictions are unchanged. The model sees the prompt and each view as the prior does (its class
/// embedding, or view words for priors without one), without guidance.
///
/// Training (`train`): the diffusion loss ‖ε̂_φ(x_t; y, c, t) − target‖² on the renders x at a
/// uniform t and fresh noise (the target is ε, v or x per the scheduler's `prediction_type`),
/// one AdamW step on the adapters. Its t and noise come from the caller's RNG, and `checkpoint` /
/// `restore` carry the adapters and the optimiser's state, so a run resumes bit-identically.
public final class ParticleScoreModel {
    let denoiser: GuidedDenoiser
    /// The adapters' parameters under peft's names, in a fixed order.
    public let parameters: [(name: String, parameter: Parameter)]
    let optimizer: Adam
    let layers: [Linear]

    /// Attaches adapters of `rank` (α = rank) to every attention projection of the denoiser's UNet,
    /// switched off until this model runs.
    init(denoiser: GuidedDenoiser, rank: Int, learningRate: Double, seed: UInt64) {
        self.denoiser = denoiser
        var rng = RNG(seed: seed)
        let unet = denoiser.pipeline.unet
        parameters = unet.attachLowRankAdapters(rank: rank, alpha: Float(rank), rng: &rng)
        layers = unet.attentionProjections.map(\.layer)
        optimizer = Adam(parameters: parameters.map(\.parameter), configuration: AdamW(learningRate: learningRate, weightDecay: 0))
        setEnabled(false)
    }

    func setEnabled(_ on: Bool) { for layer in layers { layer.adapterEnabled = on } }

    /// The model's context and class labels for samples seen from `views`.
    func conditioning(_ views: [ViewConditioning]) -> (context: Tensor, labels: Tensor?) {
        let rows = views.map { denoiser.directional.isEmpty ? denoiser.conditional : denoiser.conditional(for: $0) }
        return (Tensor.concatenated(rows, axis: 0), denoiser.pipeline.viewLabels(views))
    }

    /// ε̂_φ(x_t; y, c, t) for `noisy` `[B, C, h, w]`, one UNet call.
    public func predictNoise(_ noisy: Tensor, timestep: Int, views: [ViewConditioning]) -> Tensor {
        precondition(views.count == noisy.shape[0], "ParticleScoreModel.predictNoise: \(views.count) views for \(noisy.shape[0]) samples")
        setEnabled(true)
        defer { setEnabled(false) }
        let (context, labels) = conditioning(views)
        let output = denoiser.pipeline.unet.forward(noisy, timesteps: [Float(timestep)], encoderHiddenStates: context, classLabels: labels)
        return denoiser.noise(of: output, noisy: noisy, timestep: timestep)
    }

    /// One training step on the samples x `[B, C, h, w]` seen from `views`; returns the loss.
    @discardableResult
    public func train(on x: Tensor, views: [ViewConditioning], rng: inout RNG) -> Float {
        precondition(views.count == x.shape[0], "ParticleScoreModel.train: \(views.count) views for \(x.shape[0]) samples")
        let schedule = denoiser.schedule
        let t = Int(rng.next() % UInt64(schedule.numTrainTimesteps))
        var noise = [Float](repeating: 0, count: x.count)
        rng.fill(normal: &noise)
        let a = schedule.sqrtAlphaCumprod(t), sigma = schedule.sqrtOneMinusAlphaCumprod(t)
        let noisy = Tensor(shape: x.shape, storage: zip(x.storage, noise).map { a * $0 + sigma * $1 })
        let target: [Float]
        switch denoiser.pipeline.schedulerConfig.predictionType {
        case .epsilon: target = noise
        case .vPrediction: target = zip(x.storage, noise).map { a * $1 - sigma * $0 }
        case .sample: target = x.storage
        }
        setEnabled(true)
        defer { setEnabled(false) }
        let (context, labels) = conditioning(views)
        let unet = denoiser.pipeline.unet
        let (output, saved) = unet.forwardForTraining(noisy, timesteps: [Float(t)], encoderHiddenStates: context, classLabels: labels)
        var loss = 0.0
        var dOut = [Float](repeating: 0, count: output.count)
        let scale = 2 / Float(output.count)
        for i in 0..<output.count {
            let d = output.storage[i] - target[i]
            loss += Double(d) * Double(d)
            dOut[i] = scale * d
        }
        for (_, p) in parameters { p.zeroGradient() }
        _ = unet.backward(saved, outputGradient: Tensor(shape: output.shape, storage: dOut))
        optimizer.step()
        return Float(loss / Double(output.count))
    }

    /// Adds the adapters, their Adam moments (`particle.` + name, `.m`, `.v`) to `tensors`;
    /// returns the optimiser's step count for the caller's state.
    public func checkpoint(into tensors: inout SafeTensorsWriter) throws -> Int {
        for (i, (name, p)) in parameters.enumerated() {
            try tensors.add("particle." + name, shape: p.shape, values: p.value.storage)
            try tensors.add("particle." + name + ".m", shape: p.shape, values: optimizer.firstMoments[i].storage)
            try tensors.add("particle." + name + ".v", shape: p.shape, values: optimizer.secondMoments[i].storage)
        }
        return optimizer.stepCount
    }

    /// Restores what `checkpoint` wrote. - Throws: `SafeTensorsError` naming a missing or misshapen tensor.
    public func restore(tensors file: SafeTensorsFile, stepCount: Int) throws {
        var first: [Tensor] = [], second: [Tensor] = []
        for (name, p) in parameters {
            p.load(Tensor(shape: p.shape, storage: try file.expect("particle." + name, shape: p.shape)), name: "particle." + name)
            first.append(Tensor(shape: p.shape, storage: try file.expect("particle." + name + ".m", shape: p.shape)))
            second.append(Tensor(shape: p.shape, storage: try file.expect("particle." + name + ".v", shape: p.shape)))
        }
        optimizer.restore(stepCount: stepCount, firstMoments: first, secondMoments: second)
    }
}
