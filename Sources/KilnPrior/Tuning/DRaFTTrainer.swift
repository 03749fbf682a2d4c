import Foundation
import KilnCore
import KilnNN

/// DRaFT-K (Clark et al. 2024, "Directly fine-tuning diffusion models on differentiable rewards";
/// ReFL when K = 1): sample with deterministic guided DDIM, then back-propagate the reward's
/// gradient from the final image through the last K sampling steps (the UNet and the DDIM update
/// of each, and the VAE decoder for a latent prior) into the UNet's parameters, and step AdamW on
/// −mean reward. The earlier steps run without gradient, as in DRaFT's truncated backpropagation.
/// Every prediction type (ε, v, sample) and clip_sample are differentiated; thresholding is
/// refused.
public final class DRaFTTrainer {
    public let pipeline: PriorPipeline
    public let steps: Int
    /// When set, each epoch draws its step count from `steps…maxSteps` (`TuningSettings.maxSteps`).
    public let maxSteps: Int?
    /// K: the sampling steps the gradient flows through.
    public let truncation: Int
    public let guidanceScale: Double
    public let optimizer: Adam
    public let maxGradNorm: Float
    public var rng: RNG
    public var epochs = 0
    public let ema: EMA?
    public let trainable: [(name: String, parameter: Parameter)]
    public var regularizer: DenoisingRegularizer?
    let scheduler: DDIMScheduler

    public init(pipeline: PriorPipeline, steps: Int, maxSteps: Int? = nil, truncation: Int, guidanceScale: Double, learningRate: Double, weightDecay: Double = 1e-4,
                maxGradNorm: Float = 1, emaDecay: Float? = nil, loraRank: Int? = nil, loraAlpha: Float? = nil, seed: UInt64) throws {
        guard truncation >= 1 else { throw TuningError.invalidSetting("DRaFT's K (the steps the gradient flows through) must be at least 1, got \(truncation)") }
        var scheduler = try DDIMScheduler(config: pipeline.schedulerConfig)
        try scheduler.setTimesteps(steps)
        guard !pipeline.schedulerConfig.thresholding else { throw SchedulerError.thresholdingWithLogProb }
        (self.pipeline, self.steps, self.maxSteps, self.truncation, self.guidanceScale, self.maxGradNorm, self.scheduler) =
            (pipeline, steps, maxSteps, truncation, guidanceScale, maxGradNorm, scheduler)
        trainable = try TuningSettings.trainable(pipeline.unet, rank: loraRank, alpha: loraAlpha, seed: seed)
        let parameters = trainable.map(\.parameter)
        optimizer = Adam(parameters: parameters, configuration: .adamW(learningRate: learningRate, weightDecay: weightDecay))
        rng = RNG(seed: seed)
        ema = emaDecay.map { EMA(parameters: parameters, configuration: EMA.Configuration(maxDecay: $0)) }
    }

    /// The DDIM step (η = 0) x_p = √ᾱ_p·x̂₀ + √(1 − ᾱ_p)·ε̂ as a function of the sample x_t and
    /// the guided model output o, and its derivatives per value: ∂x_p/∂x_t and ∂x_p/∂o. x̂₀ and ε̂
    /// follow the prediction type (ε: x̂₀ = (x − √(1−ᾱ)·o)/√ᾱ, ε̂ = o; v: x̂₀ = √ᾱ·x − √(1−ᾱ)·o,
    /// ε̂ = √(1−ᾱ)·x + √ᾱ·o; sample: x̂₀ = o, ε̂ = (x − √ᾱ·o)/√(1−ᾱ)); where clip_sample clipped x̂₀,
    /// its part of the derivative is 0 (ε̂ comes from the unclipped x̂₀, as diffusers computes it).
    func stepJacobian(_ scheduler: DDIMScheduler, timestep t: Int, sample: [Float], output: [Float]) throws -> (dSample: [Float], dOutput: [Float]) {
        let prevT = try scheduler.previousTimestep(t)
        let ac = scheduler.schedule.alphasCumprod
        let a = ac[t], ap = prevT >= 0 ? ac[prevT] : scheduler.finalAlphaCumprod
        let sa = a.squareRoot(), sb = (1 - a).squareRoot(), sap = ap.squareRoot(), dir = (1 - ap).squareRoot()
        let r = Float(pipeline.schedulerConfig.clipSampleRange), clip = pipeline.schedulerConfig.clipSample
        // (∂x̂₀/∂x, ∂x̂₀/∂o, ∂ε̂/∂x, ∂ε̂/∂o) and x̂₀(x, o).
        let d: (x0x: Float, x0o: Float, ex: Float, eo: Float)
        let x0: (Float, Float) -> Float
        switch pipeline.schedulerConfig.predictionType {
        case .epsilon: (d, x0) = ((1 / sa, -sb / sa, 0, 1), { ($0 - sb * $1) / sa })
        case .vPrediction: (d, x0) = ((sa, -sb, sb, sa), { sa * $0 - sb * $1 })
        case .sample: (d, x0) = ((0, 1, 1 / sb, -sa / sb), { $1 })
        }
        var dx = [Float](repeating: 0, count: sample.count), dOut = dx
        for i in sample.indices {
            let v = x0(sample[i], output[i])
            let m: Float = !clip || (v > -r && v < r) ? 1 : 0
            dx[i] = sap * m * d.x0x + dir * d.ex
            dOut[i] = sap * m * d.x0o + dir * d.eo
        }
        return (dx, dOut)
    }

    /// One epoch: sample one image per condition, score it, back-propagate, step.
    /// - Parameter reward: must be differentiable (`scoreWithGradient`).
    public func epoch(conditions: [TuningCondition], reward: TuningReward) throws -> TuningEpochReport {
        var times = StageTimes()
        let rewards = try accumulateGradient(conditions: conditions, reward: reward, rng: &rng, times: &times)
        let denoisingLoss = try step(maxGradNorm: maxGradNorm, times: &times)
        epochs += 1
        let (mean, std) = TuningEpochReport.statistics(rewards)
        var report = TuningEpochReport(meanReward: mean, rewardStd: std, loss: -mean)
        report.times = times
        report.denoisingLoss = denoisingLoss
        return report
    }

    /// The parameter gradient of −mean reward through the last K steps, into the UNet's (zeroed)
    /// gradients, for noise drawn from `rng`; returns the rewards and adds the wall time to `times`
    /// by `TuningStage`. Each condition is sampled once (as the reward's linked samples, from
    /// shared noise).
    /// - Throws: `TuningError.rewardNotDifferentiable` when the reward has no image gradient.
    public func accumulateGradient(conditions: [TuningCondition], reward: TuningReward, rng: inout RNG, times: inout StageTimes) throws -> [Float] {
        guard let differentiable = reward.scoreWithGradient else { throw TuningError.rewardNotDifferentiable }
        var scheduler = self.scheduler
        try scheduler.setTimesteps(TuningSettings.drawSteps(steps, maxSteps, &rng))
        let layout = reward.layout(conditions, samplesPerCondition: 1)
        let prompts = layout.prompts, views = layout.views, b = prompts.count
        let shape = [b, pipeline.sampleChannels, pipeline.sampleSize.height, pipeline.sampleSize.width]
        var x = PolicySampler.noise(shape, sources: layout.noiseSources, rng: &rng)
        let context = pipeline.encode(Array(repeating: "", count: b) + prompts, views: views + views)
        let labels = pipeline.viewLabels(views + views)
        let s = Float(guidanceScale)
        struct Kept { var t: Int; var x: Tensor; var saved: UNet2DConditionModel.Saved; var output: [Float] }
        var kept: [Kept] = []
        let timesteps = scheduler.timesteps
        for (i, t) in timesteps.enumerated() {
            let input = Tensor.concatenated([x, x], axis: 0)
            let training = i >= timesteps.count - truncation
            let output: Tensor
            var saved: UNet2DConditionModel.Saved?
            if training {
                (output, saved) = times.measure(TuningStage.trainingForward) {
                    pipeline.unet.forwardForTraining(input, timesteps: [Float(t)], encoderHiddenStates: context, classLabels: labels)
                }
            } else {
                output = times.measure(TuningStage.sampling) { pipeline.unet.forward(input, timesteps: [Float(t)], encoderHiddenStates: context, classLabels: labels) }
            }
            let halves = output.chunked(2, axis: 0)
            let guided = zip(halves[0].storage, halves[1].storage).map { u, c in u + s * (c - u) }
            if let saved { kept.append(Kept(t: t, x: x, saved: saved, output: guided)) }
            x = Tensor(shape: shape, storage: try scheduler.step(modelOutput: guided, timestep: t, sample: x.storage, eta: 0, batchSize: b).prevSample)
        }
        // Pixels (through the VAE decoder for a latent prior), then display values x/2 + ½ clipped:
        // the gradient is ½ inside [−1, 1].
        let decoded = times.measure(TuningStage.decode) { pipeline.vae.map { $0.decodeForTraining(x) } }
        let pixels = decoded?.image ?? x
        let images = PriorPipeline.displayValues(pixels)
        let (rewards, dImages) = try times.measure(TuningStage.rewards) { try differentiable(layout.conditions, images) }
        precondition(rewards.count == b && dImages.shape == images.shape, "DRaFTTrainer: the reward returned \(rewards.count) values and a \(dImages.shape) gradient for \(images.shape) images")
        // Minimise −mean reward.
        let dPixels = Tensor(shape: pixels.shape, storage: zip(pixels.storage, dImages.storage).map { v, d in v > -1 && v < 1 ? -d / (2 * Float(b)) : 0 })
        var g = times.measure(TuningStage.decode) { (decoded.map { pipeline.vae!.decodeBackward($0.saved, imageGradient: dPixels) } ?? dPixels).storage }
        let parameters = optimizer.parameters
        parameters.forEach { $0.zeroGradient() }
        try times.measure(TuningStage.backward) {
            for k in kept.reversed() {
                let (dx, dOut) = try stepJacobian(scheduler, timestep: k.t, sample: k.x.storage, output: k.output)
                let gOutput = zip(g, dOut).map { $0 * $1 }
                let dOutput = Tensor(shape: [2 * b] + shape.dropFirst(), storage: gOutput.map { (1 - s) * $0 } + gOutput.map { s * $0 })
                let inputs = pipeline.unet.backward(k.saved, outputGradient: dOutput).sample.chunked(2, axis: 0)
                g = (0..<g.count).map { i in g[i] * dx[i] + inputs[0].storage[i] + inputs[1].storage[i] }
            }
        }
        return rewards
    }
}

extension DRaFTTrainer: PriorTuner {}
