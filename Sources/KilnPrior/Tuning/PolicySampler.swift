import Foundation
import KilnCore
import KilnNN

/// A batch of sampling trajectories stored for policy-gradient training of the prior (DDPO): DDIM
/// with η > 0 under classifier-free guidance, every stochastic step's input, output and
/// log-probability kept.
public struct PolicyTrajectories {
    /// The condition of each sample: its prompt and view.
    public var prompts: [String]
    public var views: [ViewConditioning]
    /// The timesteps of the stochastic steps (σ > 0), in sampling order.
    public var timesteps: [Int]
    /// x_t before each stochastic step, `[B, C, h, w]`.
    public var states: [Tensor]
    /// x_p after each stochastic step (the action taken), `[B, C, h, w]`.
    public var actions: [Tensor]
    /// log p(action | state) under the sampling policy, `[step][B]`.
    public var logProbs: [[Float]]
    /// The samples after every step (a final noiseless step included), `[B, C, h, w]`.
    public var final: Tensor

    public var count: Int { prompts.count }
}

/// Samples trajectories from a pipeline's UNet as a stochastic policy and differentiates their
/// log-probabilities (Black et al. 2023, DDPO; `DDIMScheduler.stepWithLogProb`).
///
/// The policy's action at step k is x_p ~ N(μ(ε̂), σ²I) with ε̂ = ε_u + s·(ε_c − ε_u) the guided
/// prediction, as DDPO samples and trains with guidance. `accumulateGradient` back-propagates
/// Σ_b w_b·log p_b at one stored step through the guidance and the UNet into its parameters.
public final class PolicySampler {
    public let pipeline: PriorPipeline
    public private(set) var steps: Int
    public let eta: Double
    public let guidanceScale: Double
    public let negativePrompt: String
    public private(set) var scheduler: DDIMScheduler
    /// Wall time of the passes since the last `takeTimes()`, by `TuningStage`.
    public private(set) var times = StageTimes()

    /// The time measured since the last call, which starts a new count.
    public func takeTimes() -> StageTimes {
        defer { times = StageTimes() }
        return times
    }

    /// - Throws: `SchedulerError` for a bad step count; η must be in (0, 1].
    public init(pipeline: PriorPipeline, steps: Int, eta: Double = 1, guidanceScale: Double, negativePrompt: String = "") throws {
        guard eta > 0 && eta <= 1 else { throw SchedulerError.invalidPolicyEta(eta) }
        var scheduler = try DDIMScheduler(config: pipeline.schedulerConfig)
        try scheduler.setTimesteps(steps)
        (self.pipeline, self.steps, self.eta, self.guidanceScale, self.negativePrompt, self.scheduler) =
            (pipeline, steps, eta, guidanceScale, negativePrompt, scheduler)
    }

    /// Samples with `steps` DDIM steps from now on.
    /// - Throws: `SchedulerError` for a bad step count.
    public func setSteps(_ steps: Int) throws {
        guard steps != self.steps else { return }
        try scheduler.setTimesteps(steps)
        self.steps = steps
    }

    /// The UNet's inputs for a batch under guidance: [uncond × B; cond × B] text states and labels.
    func conditioning(prompts: [String], views: [ViewConditioning]) -> (context: Tensor, labels: Tensor?) {
        // The negative prompt is not worded by view (as the unconditional half is not in training).
        let context = pipeline.encode(Array(repeating: negativePrompt, count: prompts.count) + zip(prompts, views).map { pipeline.prompt($0, view: $1) })
        return (context, pipeline.viewLabels(views + views))
    }

    /// The guided prediction ε̂ for x at t from the UNet's [uncond; cond] output.
    func guided(_ output: Tensor) -> [Float] {
        let halves = output.chunked(2, axis: 0)
        let s = Float(guidanceScale)
        return zip(halves[0].storage, halves[1].storage).map { u, c in u + s * (c - u) }
    }

    /// Draws one trajectory per condition, from noise drawn from `rng`.
    /// - Parameter noiseSources: per sample, the noise it draws from (samples with the same source
    ///   share their initial noise and every step's); nil: each sample its own.
    public func sample(prompts: [String], views: [ViewConditioning], noiseSources: [Int]? = nil, rng: inout RNG) throws -> PolicyTrajectories {
        precondition(!prompts.isEmpty && prompts.count == views.count, "PolicySampler.sample: one view per prompt")
        let b = prompts.count
        let shape = [b, pipeline.sampleChannels, pipeline.sampleSize.height, pipeline.sampleSize.width]
        var x = Self.noise(shape, sources: noiseSources, rng: &rng)
        let (context, labels) = conditioning(prompts: prompts, views: views)
        var trajectories = PolicyTrajectories(prompts: prompts, views: views, timesteps: [], states: [], actions: [], logProbs: [], final: x)
        for t in scheduler.timesteps {
            let output = times.measure(TuningStage.sampling) {
                pipeline.unet.forward(Tensor.concatenated([x, x], axis: 0), timesteps: [Float(t)], encoderHiddenStates: context, classLabels: labels)
            }
            let epsilon = guided(output)
            let noise = Self.noise(shape, sources: noiseSources, rng: &rng).storage
            do {
                let step = try scheduler.stepWithLogProb(modelOutput: epsilon, timestep: t, sample: x.storage, eta: eta, noise: noise, batchSize: b)
                trajectories.timesteps.append(t)
                trajectories.states.append(x)
                x = Tensor(shape: shape, storage: step.prevSample)
                trajectories.actions.append(x)
                trajectories.logProbs.append(step.logProb)
            } catch SchedulerError.deterministicStep {
                x = Tensor(shape: shape, storage: try scheduler.step(modelOutput: epsilon, timestep: t, sample: x.storage, eta: 0, batchSize: b).prevSample)
            }
        }
        trajectories.final = x
        return trajectories
    }

    /// Standard normal noise of `shape`, sample b drawn from `sources[b]` (shared between samples
    /// with the same source), or independent per sample when `sources` is nil.
    static func noise(_ shape: [Int], sources: [Int]?, rng: inout RNG) -> Tensor {
        guard let sources else { return Tensor.random(shape, rng: &rng) }
        precondition(sources.count == shape[0], "PolicySampler: \(sources.count) noise sources for \(shape[0]) samples")
        let per = shape.dropFirst().reduce(1, *), distinct = (sources.max() ?? 0) + 1
        let drawn = rng.normals(count: distinct * per)
        return Tensor(shape: shape, storage: sources.flatMap { drawn[($0 * per)..<(($0 + 1) * per)] })
    }

    /// The log-probabilities of stored step k under the current policy, or under another UNet of
    /// the same configuration (a frozen reference), `[B]` (no gradient).
    public func logProbs(_ trajectories: PolicyTrajectories, step k: Int, unet: UNet2DConditionModel? = nil) throws -> [Float] {
        let (context, labels) = conditioning(prompts: trajectories.prompts, views: trajectories.views)
        let x = trajectories.states[k], t = trajectories.timesteps[k]
        let output = times.measure(unet == nil ? TuningStage.sampling : TuningStage.reference) {
            (unet ?? pipeline.unet).forward(Tensor.concatenated([x, x], axis: 0), timesteps: [Float(t)], encoderHiddenStates: context, classLabels: labels)
        }
        return try scheduler.stepWithLogProb(modelOutput: guided(output), timestep: t, sample: x.storage, eta: eta,
                                             prevSample: trajectories.actions[k].storage, batchSize: trajectories.count).logProb
    }

    /// Adds ∂(Σ_b w_b·log p_b)/∂θ at stored step k into the UNet's parameter gradients, with
    /// w = `weights(logProbs)` chosen from the current log-probabilities (a PPO objective's
    /// per-sample derivative). Returns the current log-probabilities.
    @discardableResult
    public func accumulateGradient(_ trajectories: PolicyTrajectories, step k: Int, weights: ([Float]) -> [Float]) throws -> [Float] {
        let (context, labels) = conditioning(prompts: trajectories.prompts, views: trajectories.views)
        let x = trajectories.states[k], t = trajectories.timesteps[k], b = trajectories.count
        let (output, saved) = times.measure(TuningStage.trainingForward) {
            pipeline.unet.forwardForTraining(Tensor.concatenated([x, x], axis: 0), timesteps: [Float(t)], encoderHiddenStates: context, classLabels: labels)
        }
        let epsilon = guided(output)
        let action = trajectories.actions[k].storage
        let current = try scheduler.stepWithLogProb(modelOutput: epsilon, timestep: t, sample: x.storage, eta: eta, prevSample: action, batchSize: b).logProb
        let w = weights(current)
        precondition(w.count == b, "PolicySampler.accumulateGradient: \(w.count) weights for \(b) samples")
        let g = try scheduler.logProbGradient(modelOutput: epsilon, timestep: t, sample: x.storage, eta: eta, prevSample: action, weights: w, batchSize: b)
        // ε̂ = (1 − s)·ε_u + s·ε_c.
        let s = Float(guidanceScale)
        let dOutput = Tensor(shape: output.shape, storage: g.map { (1 - s) * $0 } + g.map { s * $0 })
        times.measure(TuningStage.backward) { _ = pipeline.unet.backward(saved, outputGradient: dOutput) }
        return current
    }
}

/// The PPO-clipped DDPO objective (Black et al. 2023, eq. 4, as ddpo-pytorch's train.py): per
/// sample, L = max(−A·r, −A·clip(r, 1 − ε, 1 + ε)) with r = exp(log p − log p_old).
public enum PPOClip {
    /// ∂L/∂log p per sample: −A·r where the unclipped term is the larger, else 0.
    public static func logProbWeights(current: [Float], old: [Float], advantages: [Float], clipRange: Float) -> [Float] {
        (0..<current.count).map { i in
            let r = Foundation.exp(current[i] - old[i]), a = advantages[i]
            let unclipped = -a * r, clipped = -a * min(max(r, 1 - clipRange), 1 + clipRange)
            return unclipped >= clipped ? -a * r : 0
        }
    }

    /// The loss itself, averaged over samples.
    public static func loss(current: [Float], old: [Float], advantages: [Float], clipRange: Float) -> Float {
        let terms = (0..<current.count).map { i -> Float in
            let r = Foundation.exp(current[i] - old[i]), a = advantages[i]
            return max(-a * r, -a * min(max(r, 1 - clipRange), 1 + clipRange))
        }
        return terms.reduce(0, +) / Float(max(1, terms.count))
    }
}
