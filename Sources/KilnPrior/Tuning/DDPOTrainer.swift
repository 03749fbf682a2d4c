import Foundation
import KilnCore
import KilnNN

/// DDPO with PPO clipping on a pipeline's UNet: per epoch, trajectories for each condition
/// (G samples per prompt and view), rewards of their final images, advantages normalised within
/// each condition's group, then `innerEpochs` passes of the clipped objective over a random share
/// of the stochastic steps, gradients accumulated over those steps, clipped, one AdamW step.
///
/// With `klCoefficient` β > 0 it is GRPO as Flow-GRPO and AR3D-R1 apply it to diffusion: the same
/// group-normalised, clipped objective plus β·KL(π_θ ‖ π_ref) to a frozen copy of the starting
/// UNet, estimated per sampled step with k3 = e^(log p_ref − log p) − (log p_ref − log p) − 1,
/// whose derivative in log p is 1 − e^(log p_ref − log p).
public final class DDPOTrainer {
    public let sampler: PolicySampler
    public let settings: TuningSettings
    public let optimizer: Adam
    /// The frozen starting UNet the KL penalty measures against (kept when β > 0).
    public let reference: UNet2DConditionModel?
    public var rng: RNG
    public var epochs = 0
    public let ema: EMA?
    public let trainable: [(name: String, parameter: Parameter)]
    public var regularizer: DenoisingRegularizer?

    public init(pipeline: PriorPipeline, settings: TuningSettings, seed: UInt64) throws {
        sampler = try PolicySampler(pipeline: pipeline, steps: settings.steps, eta: settings.eta, guidanceScale: settings.guidanceScale)
        self.settings = settings
        reference = settings.klCoefficient > 0 ? pipeline.unet.copy() : nil
        trainable = try settings.trainable(pipeline.unet, seed: seed)
        optimizer = Adam(parameters: trainable.map(\.parameter),
                         configuration: .adamW(learningRate: settings.learningRate, weightDecay: settings.weightDecay))
        rng = RNG(seed: seed)
        ema = settings.makeEMA(optimizer.parameters)
    }

    /// Advantages: each group's rewards standardised (mean 0, standard deviation 1; a group with
    /// one value or no spread gets 0), clipped to ±`clip`.
    public static func advantages(_ rewards: [Float], groupSize: Int, clip: Float) -> [Float] {
        precondition(groupSize > 0 && rewards.count % groupSize == 0, "DDPOTrainer.advantages: groups of \(groupSize) do not divide \(rewards.count)")
        var out = [Float](repeating: 0, count: rewards.count)
        for start in stride(from: 0, to: rewards.count, by: groupSize) {
            let group = rewards[start..<(start + groupSize)]
            let mean = group.reduce(0, +) / Float(groupSize)
            let std = (group.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(groupSize)).squareRoot()
            for i in group.indices { out[i] = std > 1e-6 ? min(max((rewards[i] - mean) / std, -clip), clip) : 0 }
        }
        return out
    }

    /// One epoch.
    /// - Parameters:
    ///   - conditions: the prompts and views to sample, each `samplesPerCondition` times (each
    ///     time as the reward's linked samples).
    ///   - reward: scores each final sample (`reward.score`).
    public func epoch(conditions: [TuningCondition], reward: TuningReward) throws -> TuningEpochReport {
        try sampler.setSteps(settings.drawSteps(&rng))
        let layout = reward.layout(conditions, samplesPerCondition: settings.samplesPerCondition)
        let prompts = layout.prompts, g = layout.groupSize
        _ = sampler.takeTimes()
        let trajectories = try sampler.sample(prompts: prompts, views: layout.views, noiseSources: layout.noiseSources, rng: &rng)
        var times = sampler.takeTimes()
        let images = times.measure(TuningStage.decode) { PriorPipeline.displayValues(sampler.pipeline.pixels(trajectories.final)) }
        let rewards = try times.measure(TuningStage.rewards) { try reward.score(layout.conditions, images) }
        precondition(rewards.count == prompts.count, "DDPOTrainer.epoch: \(rewards.count) rewards for \(prompts.count) samples")
        let advantages = Self.advantages(rewards, groupSize: g, clip: settings.advantageClip)
        let b = Float(prompts.count)
        var denoising: [Float] = []
        var lossSum: Float = 0, klSum: Float = 0, k3Sum: Float = 0, clipped = 0, pairs = 0
        let parameters = optimizer.parameters
        for _ in 0..<settings.innerEpochs {
            var order = Array(trajectories.timesteps.indices)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            let chosen = order.prefix(max(1, Int((Double(order.count) * settings.timestepFraction).rounded())))
            parameters.forEach { $0.zeroGradient() }
            for k in chosen {
                let old = trajectories.logProbs[k]
                let referenceLogProbs = try reference.map { try sampler.logProbs(trajectories, step: k, unet: $0) }
                let beta = settings.klCoefficient
                let current = try sampler.accumulateGradient(trajectories, step: k) { current in
                    let ppo = PPOClip.logProbWeights(current: current, old: old, advantages: advantages, clipRange: settings.clipRange)
                    return ppo.indices.map { i in
                        let kl = referenceLogProbs.map { beta * (1 - Foundation.exp($0[i] - current[i])) } ?? 0
                        return (ppo[i] + kl) / (b * Float(chosen.count))
                    }
                }
                if let referenceLogProbs {
                    for i in current.indices {
                        let r = referenceLogProbs[i] - current[i]
                        k3Sum += Foundation.exp(r) - r - 1
                    }
                }
                lossSum += PPOClip.loss(current: current, old: old, advantages: advantages, clipRange: settings.clipRange)
                for i in current.indices {
                    let d = current[i] - old[i]
                    klSum += 0.5 * d * d
                    if abs(Foundation.exp(d) - 1) > settings.clipRange { clipped += 1 }
                    pairs += 1
                }
            }
            times.add(sampler.takeTimes())
            if let loss = try step(maxGradNorm: settings.maxGradNorm, times: &times) { denoising.append(loss) }
        }
        epochs += 1
        let (mean, std) = TuningEpochReport.statistics(rewards)
        let steps = Float(max(1, pairs)) / b
        var report = TuningEpochReport(meanReward: mean, rewardStd: std, loss: lossSum / steps)
        report.approxKL = klSum / Float(max(1, pairs))
        report.clipFraction = Float(clipped) / Float(max(1, pairs))
        report.klToReference = reference.map { _ in k3Sum / Float(max(1, pairs)) }
        report.times = times
        report.denoisingLoss = denoising.isEmpty ? nil : denoising.reduce(0, +) / Float(denoising.count)
        return report
    }
}

// MARK: Checkpoints

extension DDPOTrainer: PriorTuner {
    public var pipeline: PriorPipeline { sampler.pipeline }
}
