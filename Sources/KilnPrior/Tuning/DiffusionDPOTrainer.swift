import Foundation
import KilnCore
import KilnNN

/// Diffusion-DPO (Wallace et al. 2024, "Diffusion Model Alignment Using Direct Preference
/// Optimization"), online: each epoch samples a group per condition, ranks it by the reward and
/// pairs the best sample (winner x_w) with the worst (loser x_l); then for a few noise levels per
/// pair — the same t and ε for both — it minimises
///
///     L = −log σ(−β/2 · [(‖ε_w − ε_θ(x_w,t)‖² − ‖ε_w − ε_ref(x_w,t)‖²) − (‖ε_l − ε_θ(x_l,t)‖² − ‖ε_l − ε_ref(x_l,t)‖²)])
///
/// with ‖·‖² the per-element mean, ε_ref a frozen copy of the starting UNet and the regression
/// target the prediction type's (the noise, v, or x₀), as diffusers' `train_diffusion_dpo.py`
/// computes it. The UNet is conditioned on the prompt (and view), without guidance.
public final class DiffusionDPOTrainer {
    public let sampler: PolicySampler
    public let settings: TuningSettings
    public let optimizer: Adam
    /// The frozen starting UNet.
    public let reference: UNet2DConditionModel
    public let trainable: [(name: String, parameter: Parameter)]
    public var regularizer: DenoisingRegularizer?
    public var rng: RNG
    public var epochs = 0
    public let ema: EMA?

    public init(pipeline: PriorPipeline, settings: TuningSettings, seed: UInt64) throws {
        guard settings.samplesPerCondition >= 2 else {
            throw TuningError.invalidSetting("Diffusion-DPO pairs samples of one condition: draw at least 2 per condition, got \(settings.samplesPerCondition)")
        }
        guard settings.dpoBeta.isFinite && settings.dpoBeta > 0 && settings.dpoNoiseDraws >= 1 else {
            throw TuningError.invalidSetting("Diffusion-DPO needs β > 0 and at least one noise draw per pair, got β = \(settings.dpoBeta), \(settings.dpoNoiseDraws) draws")
        }
        sampler = try PolicySampler(pipeline: pipeline, steps: settings.steps, eta: settings.eta, guidanceScale: settings.guidanceScale)
        self.settings = settings
        reference = pipeline.unet.copy()
        trainable = try settings.trainable(pipeline.unet, seed: seed)
        optimizer = Adam(parameters: trainable.map(\.parameter),
                         configuration: .adamW(learningRate: settings.learningRate, weightDecay: settings.weightDecay))
        rng = RNG(seed: seed)
        ema = settings.makeEMA(optimizer.parameters)
    }

    /// Preference pairs: per group of `groupSize` samples (units of `links` linked samples), the
    /// unit with the highest mean reward against the unit with the lowest, sample by sample; a
    /// group without spread gives no pair.
    public static func pairs(_ rewards: [Float], groupSize: Int, links: Int = 1) -> [(winner: Int, loser: Int)] {
        precondition(groupSize % links == 0, "DiffusionDPOTrainer.pairs: units of \(links) do not divide groups of \(groupSize)")
        return stride(from: 0, to: rewards.count, by: groupSize).flatMap { start -> [(winner: Int, loser: Int)] in
            let units = Array(stride(from: start, to: min(rewards.count, start + groupSize), by: links))
            func mean(_ u: Int) -> Float { rewards[u..<(u + links)].reduce(0, +) / Float(links) }
            let best = units.max { mean($0) < mean($1) }!, worst = units.min { mean($0) < mean($1) }!
            return mean(best) - mean(worst) > 1e-6 ? (0..<links).map { (best + $0, worst + $0) } : []
        }
    }

    /// The DPO loss of the pairs (winners `[P, C, h, w]` and losers, same shape) at one noise draw
    /// per pair from `rng`, its parameter gradient added into the UNet's gradients (scaled by
    /// `scale`); returns the loss (mean over pairs) and the share of pairs ranked right (z > 0).
    public func accumulateGradient(winners: Tensor, losers: Tensor, prompts: [String], views: [ViewConditioning],
                                   scale: Float = 1, rng: inout RNG, times: inout StageTimes) throws -> (loss: Float, accuracy: Float) {
        let pipeline = sampler.pipeline, p = winners.shape[0], n = winners.count / p
        precondition(losers.shape == winners.shape && prompts.count == p && views.count == p, "DiffusionDPOTrainer: \(p) pairs need as many losers, prompts and views")
        let train = sampler.scheduler.schedule.numTrainTimesteps
        let timesteps = (0..<p).map { _ in Int(rng.next() % UInt64(train)) }
        let noise = rng.normals(count: winners.count)
        let x0 = winners.storage + losers.storage, eps = noise + noise, t2 = timesteps + timesteps
        let noisy = try sampler.scheduler.addNoise(x0, noise: eps, timesteps: t2)
        let target = try sampler.scheduler.trainingTarget(sample: x0, noise: eps, timesteps: t2)
        let input = Tensor(shape: [2 * p] + winners.shape.dropFirst(), storage: noisy)
        let context = pipeline.encode(prompts + prompts, views: views + views)
        let labels = pipeline.viewLabels(views + views)
        let tf = t2.map(Float.init)
        let (prediction, saved) = times.measure(TuningStage.trainingForward) {
            pipeline.unet.forwardForTraining(input, timesteps: tf, encoderHiddenStates: context, classLabels: labels)
        }
        let referencePrediction = times.measure(TuningStage.reference) { reference.forward(input, timesteps: tf, encoderHiddenStates: context, classLabels: labels) }
        // (‖target − pred‖² − ‖target − ref‖²) per sample, as the mean of (pred − ref)(pred + ref − 2·target)
        // in double precision: the two errors nearly cancel and β magnifies what is left.
        func errorOverReference(_ i: Int) -> Double {
            var sum = 0.0
            for j in (i * n)..<((i + 1) * n) {
                let a = Double(prediction.storage[j]), r = Double(referencePrediction.storage[j])
                sum += (a - r) * (a + r - 2 * Double(target[j]))
            }
            return sum / Double(n)
        }
        var dOut = [Float](repeating: 0, count: prediction.count)
        var loss: Float = 0, right = 0
        for i in 0..<p {
            let z = Float(-0.5 * Double(settings.dpoBeta) * (errorOverReference(i) - errorOverReference(p + i)))
            loss += softplus(-z) / Float(p)
            if z > 0 { right += 1 }
            // ∂L/∂pred_w = β·σ(−z)·(pred_w − target_w)/(P·n); the loser's with the opposite sign.
            let w = scale * settings.dpoBeta * sigmoid(-z) / Float(p * n)
            for j in (i * n)..<((i + 1) * n) { dOut[j] = w * (prediction.storage[j] - target[j]) }
            for j in ((p + i) * n)..<((p + i + 1) * n) { dOut[j] = -w * (prediction.storage[j] - target[j]) }
        }
        times.measure(TuningStage.backward) { _ = pipeline.unet.backward(saved, outputGradient: Tensor(shape: prediction.shape, storage: dOut)) }
        return (loss, Float(right) / Float(p))
    }

    /// One epoch: sample, rank, pair, `dpoNoiseDraws` gradient draws, one AdamW step.
    public func epoch(conditions: [TuningCondition], reward: TuningReward) throws -> TuningEpochReport {
        try sampler.setSteps(settings.drawSteps(&rng))
        let layout = reward.layout(conditions, samplesPerCondition: settings.samplesPerCondition)
        let prompts = layout.prompts, views = layout.views
        _ = sampler.takeTimes()
        let trajectories = try sampler.sample(prompts: prompts, views: views, noiseSources: layout.noiseSources, rng: &rng)
        var times = sampler.takeTimes()
        let images = times.measure(TuningStage.decode) { PriorPipeline.displayValues(sampler.pipeline.pixels(trajectories.final)) }
        let rewards = try times.measure(TuningStage.rewards) { try reward.score(layout.conditions, images) }
        precondition(rewards.count == prompts.count, "DiffusionDPOTrainer.epoch: \(rewards.count) rewards for \(prompts.count) samples")
        let pairs = Self.pairs(rewards, groupSize: layout.groupSize, links: layout.links)
        let (mean, std) = TuningEpochReport.statistics(rewards)
        var report = TuningEpochReport(meanReward: mean, rewardStd: std, loss: 0)
        report.times = times
        epochs += 1
        guard !pairs.isEmpty else { return report }  // no preference to learn from this epoch
        let samples = trajectories.final.chunked(prompts.count, axis: 0)
        let winners = Tensor.concatenated(pairs.map { samples[$0.winner] }, axis: 0)
        let losers = Tensor.concatenated(pairs.map { samples[$0.loser] }, axis: 0)
        let parameters = optimizer.parameters
        parameters.forEach { $0.zeroGradient() }
        var loss: Float = 0, accuracy: Float = 0
        let draws = settings.dpoNoiseDraws
        for _ in 0..<draws {
            let r = try accumulateGradient(winners: winners, losers: losers, prompts: pairs.map { prompts[$0.winner] }, views: pairs.map { views[$0.winner] },
                                           scale: 1 / Float(draws), rng: &rng, times: &times)
            loss += r.loss / Float(draws)
            accuracy += r.accuracy / Float(draws)
        }
        report.denoisingLoss = try step(maxGradNorm: settings.maxGradNorm, times: &times)
        report.times = times
        report.loss = loss
        report.preferenceAccuracy = accuracy
        return report
    }

    func softplus(_ x: Float) -> Float { x > 20 ? x : Foundation.log1p(Foundation.exp(x)) }
    func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
}

extension DiffusionDPOTrainer: PriorTuner {
    public var pipeline: PriorPipeline { sampler.pipeline }
}
