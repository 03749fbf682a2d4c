#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KilnCore

/// The DDPM sampler (Ho et al. 2020, "Denoising Diffusion Probabilistic Models"), numerically
/// diffusers' `DDPMScheduler`.
///
/// One step from xₜ to xₜ₋ₚ (p = the gap to the previous timestep in `timesteps`):
/// x̂₀ from the model output (ε, v or x₀), clipped or thresholded; the posterior mean
/// μ = √ᾱₚ βₜ'/(1−ᾱₜ) · x̂₀ + √αₜ' (1−ᾱₚ)/(1−ᾱₜ) · xₜ with αₜ' = ᾱₜ/ᾱₚ, βₜ' = 1 − αₜ';
/// plus σ z for t > 0, σ² the `varianceType` variance and z standard normal noise.
/// Samples are `[B, …]` arrays flattened batch-major (`batchSize` B matters only for thresholding).
public struct DDPMScheduler: Sendable {
    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    /// The timesteps to step through, descending: T−1…0 until `setTimesteps` is called.
    public private(set) var timesteps: [Int]
    /// The count given to `setTimesteps`, or nil (every training timestep).
    public private(set) var numInferenceSteps: Int?

    /// - Throws: `SchedulerError.wrongKind` for a DDIM config (convert it with
    ///   `SchedulerConfig(json:as: .ddpm)`), `SchedulerConfigError` for invalid values.
    public init(config: SchedulerConfig) throws {
        guard config.kind == .ddpm else { throw SchedulerError.wrongKind(expected: .ddpm, actual: config.kind) }
        self.config = config
        self.schedule = try NoiseSchedule(config: config)
        self.timesteps = Array((0..<config.numTrainTimesteps).reversed())
    }

    /// Chooses `count` timesteps with the config's spacing (diffusers' `set_timesteps`).
    /// - Throws: `SchedulerError.invalidStepCount`.
    public mutating func setTimesteps(_ count: Int) throws {
        timesteps = try config.inferenceTimesteps(count: count)
        numInferenceSteps = count
    }

    /// The timestep after `t` in `timesteps` (−1 after the last), or t − 1 before `setTimesteps`.
    public func previousTimestep(_ t: Int) throws -> Int {
        guard numInferenceSteps != nil else { return t - 1 }
        guard let i = timesteps.firstIndex(of: t) else {
            throw SchedulerError.timestepNotInSchedule(timestep: t, timesteps: timesteps)
        }
        return i + 1 < timesteps.count ? timesteps[i + 1] : -1
    }

    // MARK: Step

    /// One reverse step with the noise given.
    /// - Parameters:
    ///   - modelOutput: the model's prediction (ε, v or x₀ per `config.predictionType`), the sample's size.
    ///   - timestep: t, in 0..<T (one of `timesteps` once `setTimesteps` was called).
    ///   - sample: xₜ.
    ///   - noise: z ~ N(0, I), the sample's size; needed for t > 0, ignored at t = 0.
    ///   - batchSize: B, the number of samples in the arrays (for thresholding).
    /// - Throws: `SchedulerError` for sizes, timesteps or missing noise.
    public func step(modelOutput: [Float], timestep t: Int, sample: [Float], noise: [Float]?,
                     batchSize: Int = 1) throws -> SchedulerStepOutput {
        let n = sample.count
        try SchedulerMath.check(modelOutput, "modelOutput", count: n)
        try SchedulerMath.check(batchSize: batchSize, count: n)
        guard (0..<config.numTrainTimesteps).contains(t) else {
            throw SchedulerError.timestepOutOfRange(timestep: t, numTrainTimesteps: config.numTrainTimesteps)
        }
        let prevT = try previousTimestep(t)
        let ac = schedule.alphasCumprod
        let alphaProd = ac[t]
        let alphaProdPrev: Float = prevT >= 0 ? ac[prevT] : 1
        let betaProd = 1 - alphaProd
        let betaProdPrev = 1 - alphaProdPrev
        let currentAlpha = alphaProd / alphaProdPrev
        let currentBeta = 1 - currentAlpha

        var x0 = SchedulerMath.predictOriginal(config.predictionType, modelOutput: modelOutput, sample: sample,
                                               alphaProd: alphaProd, betaProd: betaProd)
        SchedulerMath.clipOrThreshold(&x0, config: config, batchSize: batchSize)

        // Posterior mean coefficients (Ho et al. eq. 7).
        let originalCoeff = (alphaProdPrev.squareRoot() * currentBeta) / betaProd
        let sampleCoeff = currentAlpha.squareRoot() * betaProdPrev / betaProd
        var prev = [Float](repeating: 0, count: n)
        for i in 0..<n { prev[i] = originalCoeff * x0[i] + sampleCoeff * sample[i] }

        if t > 0 {
            guard let noise else { throw SchedulerError.missingNoise(timestep: t) }
            try SchedulerMath.check(noise, "noise", count: n)
            let std = standardDeviation(alphaProd: alphaProd, alphaProdPrev: alphaProdPrev)
            for i in 0..<n { prev[i] = prev[i] + std * noise[i] }
        }
        return SchedulerStepOutput(prevSample: prev, predOriginalSample: x0)
    }

    /// One reverse step drawing its noise from `rng` (only when t > 0, the sample's size).
    public func step(modelOutput: [Float], timestep t: Int, sample: [Float], rng: inout RNG,
                     batchSize: Int = 1) throws -> SchedulerStepOutput {
        let noise = t > 0 ? rng.normals(count: sample.count) : nil
        return try step(modelOutput: modelOutput, timestep: t, sample: sample, noise: noise, batchSize: batchSize)
    }

    /// The noise scale σ of the step at t (diffusers' `_get_variance`, then the square root or,
    /// for `fixed_small_log`, exp(½ log)).
    func standardDeviation(alphaProd: Float, alphaProdPrev: Float) -> Float {
        let currentBeta = 1 - alphaProd / alphaProdPrev
        // β̃ₜ = (1−ᾱₚ)/(1−ᾱₜ)·βₜ', clamped at 1e-20 so the log is finite.
        let variance = max((1 - alphaProdPrev) / (1 - alphaProd) * currentBeta, Float(1e-20))
        switch config.varianceType {
        case .fixedSmall: return variance.squareRoot()
        case .fixedSmallLog: return exp(0.5 * log(variance))
        case .fixedLarge: return currentBeta.squareRoot()
        }
    }

    // MARK: Forward process

    /// `schedule.addNoise` (diffusers' `add_noise`).
    public func addNoise(_ original: [Float], noise: [Float], timesteps: [Int]) throws -> [Float] {
        try schedule.addNoise(original, noise: noise, timesteps: timesteps)
    }

    /// `schedule.velocity` (diffusers' `get_velocity`).
    public func velocity(sample: [Float], noise: [Float], timesteps: [Int]) throws -> [Float] {
        try schedule.velocity(sample: sample, noise: noise, timesteps: timesteps)
    }
}
