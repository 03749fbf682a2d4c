import KilnCore

/// The DDIM sampler (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", eq. 12),
/// numerically diffusers' `DDIMScheduler`.
///
/// One step from xₜ to xₚ, p = t − T // n (diffusers uses this gap for every spacing):
/// x̂₀ and ε̂ from the model output, x̂₀ clipped or thresholded;
/// σ = η √((1−ᾱₚ)/(1−ᾱₜ) · (1 − ᾱₜ/ᾱₚ));
/// xₚ = √ᾱₚ x̂₀ + √(1 − ᾱₚ − σ²) ε̂ + σ z.
/// Before the first training step (p < 0) ᾱₚ is 1, or ᾱ₀ when `setAlphaToOne` is false.
/// Samples are `[B, …]` arrays flattened batch-major (`batchSize` B matters only for thresholding).
public struct DDIMScheduler: Sendable {
    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    /// ᾱ used after the last step (1, or ᾱ₀ when `config.setAlphaToOne` is false).
    public let finalAlphaCumprod: Float
    /// The timesteps to step through, descending: T−1…0 until `setTimesteps` is called.
    public private(set) var timesteps: [Int]
    /// The count given to `setTimesteps`; `step` needs it.
    public private(set) var numInferenceSteps: Int?

    /// - Throws: `SchedulerError.wrongKind` for a DDPM config (convert it with
    ///   `SchedulerConfig(json:as: .ddim)`), `SchedulerConfigError` for invalid values.
    public init(config: SchedulerConfig) throws {
        guard config.kind == .ddim else { throw SchedulerError.wrongKind(expected: .ddim, actual: config.kind) }
        self.config = config
        self.schedule = try NoiseSchedule(config: config)
        self.finalAlphaCumprod = config.setAlphaToOne ? 1 : schedule.alphasCumprod[0]
        self.timesteps = Array((0..<config.numTrainTimesteps).reversed())
    }

    /// Chooses `count` timesteps with the config's spacing (diffusers' `set_timesteps`).
    /// - Throws: `SchedulerError.invalidStepCount`.
    public mutating func setTimesteps(_ count: Int) throws {
        timesteps = try config.inferenceTimesteps(count: count)
        numInferenceSteps = count
    }

    /// The timestep a step from `t` lands on: t − T // numInferenceSteps (may be negative).
    public func previousTimestep(_ t: Int) throws -> Int {
        guard let n = numInferenceSteps else { throw SchedulerError.timestepsNotSet }
        return t - config.numTrainTimesteps / n
    }

    // MARK: Step

    /// One DDIM step.
    /// - Parameters:
    ///   - modelOutput: the model's prediction (ε, v or x₀ per `config.predictionType`), the sample's size.
    ///   - timestep: t in 0..<T, usually from `timesteps`.
    ///   - sample: xₜ.
    ///   - eta: η ≥ 0; 0 is deterministic DDIM, 1 the DDPM posterior variance.
    ///   - useClippedModelOutput: recompute ε̂ from the clipped x̂₀ (diffusers' `use_clipped_model_output`).
    ///   - noise: z ~ N(0, I), the sample's size; needed when η > 0 (diffusers' `variance_noise`).
    ///   - batchSize: B, the number of samples in the arrays (for thresholding).
    /// - Throws: `SchedulerError` when `setTimesteps` was not called, for sizes, timesteps, η or
    ///   missing noise.
    public func step(modelOutput: [Float], timestep t: Int, sample: [Float], eta: Double = 0,
                     useClippedModelOutput: Bool = false, noise: [Float]? = nil,
                     batchSize: Int = 1) throws -> SchedulerStepOutput {
        let n = sample.count
        try SchedulerMath.check(modelOutput, "modelOutput", count: n)
        try SchedulerMath.check(batchSize: batchSize, count: n)
        guard eta >= 0 && eta.isFinite else { throw SchedulerError.invalidEta(eta) }
        guard (0..<config.numTrainTimesteps).contains(t) else {
            throw SchedulerError.timestepOutOfRange(timestep: t, numTrainTimesteps: config.numTrainTimesteps)
        }
        let prevT = try previousTimestep(t)
        let ac = schedule.alphasCumprod
        let alphaProd = ac[t]
        let alphaProdPrev = prevT >= 0 ? ac[prevT] : finalAlphaCumprod
        let betaProd = 1 - alphaProd
        let sa = alphaProd.squareRoot(), sb = betaProd.squareRoot()

        var x0 = SchedulerMath.predictOriginal(config.predictionType, modelOutput: modelOutput, sample: sample,
                                               alphaProd: alphaProd, betaProd: betaProd)
        var epsilon: [Float]
        switch config.predictionType {
        case .epsilon: epsilon = modelOutput
        case .sample: epsilon = zip(sample, x0).map { x, x0 in (x - sa * x0) / sb }
        case .vPrediction: epsilon = zip(modelOutput, sample).map { v, x in sa * v + sb * x }
        }
        SchedulerMath.clipOrThreshold(&x0, config: config, batchSize: batchSize)

        // σ = η·√variance, variance = (1−ᾱₚ)/(1−ᾱₜ) · (1 − ᾱₜ/ᾱₚ) (eq. 16).
        let variance = ((1 - alphaProdPrev) / betaProd) * (1 - alphaProd / alphaProdPrev)
        let std = Float(eta) * variance.squareRoot()
        if useClippedModelOutput {
            epsilon = zip(sample, x0).map { x, x0 in (x - sa * x0) / sb }
        }
        let directionCoeff = (1 - alphaProdPrev - std * std).squareRoot()
        let sap = alphaProdPrev.squareRoot()
        var prev = [Float](repeating: 0, count: n)
        for i in 0..<n { prev[i] = sap * x0[i] + directionCoeff * epsilon[i] }

        if eta > 0 {
            guard let noise else { throw SchedulerError.missingNoise(timestep: t) }
            try SchedulerMath.check(noise, "noise", count: n)
            for i in 0..<n { prev[i] = prev[i] + std * noise[i] }
        }
        return SchedulerStepOutput(prevSample: prev, predOriginalSample: x0)
    }

    /// One DDIM step drawing its noise from `rng` when η > 0.
    public func step(modelOutput: [Float], timestep t: Int, sample: [Float], eta: Double,
                     useClippedModelOutput: Bool = false, rng: inout RNG,
                     batchSize: Int = 1) throws -> SchedulerStepOutput {
        let noise = eta > 0 ? rng.normals(count: sample.count) : nil
        return try step(modelOutput: modelOutput, timestep: t, sample: sample, eta: eta,
                        useClippedModelOutput: useClippedModelOutput, noise: noise, batchSize: batchSize)
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

    /// What the model learns to predict for `addNoise(sample, noise, timesteps)`: the noise, the
    /// velocity or the clean sample, as `config.predictionType` says.
    public func trainingTarget(sample: [Float], noise: [Float], timesteps: [Int]) throws -> [Float] {
        switch config.predictionType {
        case .epsilon: noise
        case .vPrediction: try velocity(sample: sample, noise: noise, timesteps: timesteps)
        case .sample: sample
        }
    }
}
