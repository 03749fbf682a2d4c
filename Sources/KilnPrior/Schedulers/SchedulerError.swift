/// Why a scheduler call was refused: the inputs do not fit the schedule.
public enum SchedulerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `setTimesteps(count)` with a count outside 1...T, or one whose diffusers timesteps are invalid.
    case invalidStepCount(count: Int, numTrainTimesteps: Int, reason: String)
    /// DDIM `step` before `setTimesteps`.
    case timestepsNotSet
    /// A timestep outside 0..<T.
    case timestepOutOfRange(timestep: Int, numTrainTimesteps: Int)
    /// DDPM `step` after `setTimesteps` with a timestep that is not in the schedule.
    case timestepNotInSchedule(timestep: Int, timesteps: [Int])
    /// An array (`what`) whose element count differs from the sample's.
    case sizeMismatch(what: String, expected: Int, actual: Int)
    /// A batch size that does not divide the element count.
    case batchMismatch(count: Int, batchSize: Int)
    /// A stochastic step (DDPM at t > 0, DDIM with η > 0) without noise.
    case missingNoise(timestep: Int)
    /// A scheduler built from the other class's config.
    case wrongKind(expected: SchedulerConfig.Kind, actual: SchedulerConfig.Kind)
    /// η outside [0, ∞) or not finite.
    case invalidEta(Double)
    /// A stochastic step's log-probability asked for with η that makes it deterministic or improper.
    case invalidPolicyEta(Double)
    /// A log-probability asked of a step with no noise (σ = 0: t and the step it lands on share ᾱ).
    case deterministicStep(timestep: Int)
    /// A log-probability asked of a config with dynamic thresholding.
    case thresholdingWithLogProb

    public var description: String {
        switch self {
        case .invalidStepCount(let count, let t, let reason):
            return "\(count) inference steps: \(reason) (the model was trained with \(t) timesteps)"
        case .timestepsNotSet:
            return "call setTimesteps(_:) before step: DDIM needs the number of inference steps"
        case .timestepOutOfRange(let timestep, let t):
            return "timestep \(timestep) is outside 0..<\(t)"
        case .timestepNotInSchedule(let timestep, let timesteps):
            let shown = timesteps.count > 12 ? "\(timesteps.prefix(12))…" : "\(timesteps)"
            return "timestep \(timestep) is not one of the scheduler's timesteps \(shown); step through "
                + "`timesteps` after setTimesteps(_:)"
        case .sizeMismatch(let what, let expected, let actual):
            return "\(what) has \(actual) elements, the sample \(expected)"
        case .batchMismatch(let count, let batchSize):
            return "a batch of \(batchSize) does not divide \(count) elements into equal samples"
        case .missingNoise(let timestep):
            return "the step at timestep \(timestep) adds noise: pass `noise` (standard normal, the sample's "
                + "size) or use the `rng:` variant"
        case .wrongKind(let expected, let actual):
            return "this is a \(expected.rawValue) but the config is a \(actual.rawValue); load the config "
                + "with `as: .\(expected == .ddpm ? "ddpm" : "ddim")` to convert it"
        case .invalidEta(let eta):
            return "eta = \(eta) must be a finite number ≥ 0 (0: deterministic DDIM, 1: DDPM-like noise)"
        case .invalidPolicyEta(let eta):
            return "eta = \(eta): a step's log-probability needs 0 < eta ≤ 1 (a Gaussian step with positive variance); DDPO uses 1"
        case .deterministicStep(let timestep):
            return "the step from timestep \(timestep) adds no noise (σ = 0), so it has no log-probability; take it with step(...) and leave it out of the policy"
        case .thresholdingWithLogProb:
            return "the scheduler config uses dynamic thresholding, which couples a sample's values; log-probabilities need clip_sample or no clipping"
        }
    }
}
