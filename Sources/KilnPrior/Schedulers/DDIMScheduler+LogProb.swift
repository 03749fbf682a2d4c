import Foundation
import KilnCore

/// A stochastic DDIM step as a policy (Black et al. 2023, DDPO: `ddim_step_with_logprob`): with
/// η > 0 each step is a Gaussian, xₚ ~ N(μ, σ²I) with μ = √ᾱₚ x̂₀ + √(1 − ᾱₚ − σ²) ε̂ (x̂₀ clipped
/// as the config says) and σ = η·√((1−ᾱₚ)/(1−ᾱₜ) · (1 − ᾱₜ/ᾱₚ)), so the log-probability of the step
/// taken, and its gradient with respect to the model output, can drive policy-gradient training.
///
/// Per sample b the log-probability is DDPO's: the mean over the sample's D values of
/// −(xₚ − μ)²/(2σ²) − log σ − log √(2π).
///
/// As in DDPO's code, the previous timestep is clamped at 0 before ᾱₚ is looked up, so the last
/// step lands on ᾱ₀ whatever `set_alpha_to_one` says. That keeps every step a proper Gaussian
/// (with ᾱₚ = 1 the last step's σ would be 0); with Stable Diffusion's configs
/// (`set_alpha_to_one: false`) it is diffusers' `DDIMScheduler.step` exactly.
public struct DDIMLogProbStep: Sendable, Equatable {
    /// xₚ: the step taken (given, or μ + σz).
    public var prevSample: [Float]
    /// μ, the step's mean.
    public var mean: [Float]
    /// σ (the same for every value of a step).
    public var std: Float
    /// log p(xₚ | xₜ) per sample, `[B]`.
    public var logProb: [Float]
}

extension DDIMScheduler {
    /// One DDIM step with η > 0 and the log-probability of its result.
    /// - Parameters:
    ///   - modelOutput, sample: as `step` (ε, v or x₀ per `prediction_type`; xₜ), B samples of D values.
    ///   - prevSample: the step already taken (re-scoring a stored trajectory); nil draws it with `noise`.
    ///   - noise: z, the sample's size, when `prevSample` is nil.
    /// - Throws: `SchedulerError` as `step`; η must be positive, and thresholding configs are refused
    ///   (their x̂₀ couples a sample's values, which the gradient here does not follow).
    public func stepWithLogProb(modelOutput: [Float], timestep t: Int, sample: [Float], eta: Double, prevSample: [Float]? = nil,
                                noise: [Float]? = nil, batchSize: Int) throws -> DDIMLogProbStep {
        let parts = try logProbParts(timestep: t, eta: eta, count: sample.count, batchSize: batchSize)
        try SchedulerMath.check(modelOutput, "modelOutput", count: sample.count)
        let n = sample.count, d = n / batchSize
        var x0 = SchedulerMath.predictOriginal(config.predictionType, modelOutput: modelOutput, sample: sample,
                                               alphaProd: parts.alphaProd, betaProd: 1 - parts.alphaProd)
        let epsilon = Self.epsilon(config.predictionType, modelOutput: modelOutput, sample: sample, x0: x0, alphaProd: parts.alphaProd)
        SchedulerMath.clipOrThreshold(&x0, config: config, batchSize: batchSize)
        var mean = [Float](repeating: 0, count: n)
        for i in 0..<n { mean[i] = parts.sqrtAlphaPrev * x0[i] + parts.direction * epsilon[i] }
        let prev: [Float]
        if let prevSample {
            try SchedulerMath.check(prevSample, "prevSample", count: n)
            prev = prevSample
        } else {
            guard let noise else { throw SchedulerError.missingNoise(timestep: t) }
            try SchedulerMath.check(noise, "noise", count: n)
            prev = (0..<n).map { mean[$0] + parts.std * noise[$0] }
        }
        let s = parts.std, constant = Foundation.log(s) + Foundation.log((2 * Float.pi).squareRoot())
        let logProb = (0..<batchSize).map { b -> Float in
            var sum: Float = 0
            for i in (b * d)..<((b + 1) * d) {
                let r = prev[i] - mean[i]
                sum += -(r * r) / (2 * s * s) - constant
            }
            return sum / Float(d)
        }
        return DDIMLogProbStep(prevSample: prev, mean: mean, std: s, logProb: logProb)
    }

    /// ∂(Σ_b w_b · logProb_b)/∂modelOutput for a step taken earlier (xₚ held fixed, as DDPO
    /// detaches it): the chain through μ = √ᾱₚ·clip(x̂₀) + c·ε̂, zero through clipped x̂₀ values.
    /// - Parameter weights: w, one per sample (e.g. advantages).
    public func logProbGradient(modelOutput: [Float], timestep t: Int, sample: [Float], eta: Double, prevSample: [Float],
                                weights: [Float], batchSize: Int) throws -> [Float] {
        let parts = try logProbParts(timestep: t, eta: eta, count: sample.count, batchSize: batchSize)
        try SchedulerMath.check(modelOutput, "modelOutput", count: sample.count)
        try SchedulerMath.check(prevSample, "prevSample", count: sample.count)
        precondition(weights.count == batchSize, "logProbGradient: \(weights.count) weights for \(batchSize) samples")
        let step = try stepWithLogProb(modelOutput: modelOutput, timestep: t, sample: sample, eta: eta, prevSample: prevSample, batchSize: batchSize)
        let n = sample.count, d = n / batchSize
        let a = parts.alphaProd, sa = a.squareRoot(), sb = (1 - a).squareRoot()
        let raw = SchedulerMath.predictOriginal(config.predictionType, modelOutput: modelOutput, sample: sample, alphaProd: a, betaProd: 1 - a)
        let r = Float(config.clipSampleRange)
        // ∂x̂₀/∂m and ∂ε̂/∂m for each prediction type (before the clip's mask).
        let (dx0, deps): (Float, Float)
        switch config.predictionType {
        case .epsilon: (dx0, deps) = (-sb / sa, 1)
        case .vPrediction: (dx0, deps) = (-sb, sa)
        case .sample: (dx0, deps) = (1, -sa / sb)
        }
        var gradient = [Float](repeating: 0, count: n)
        let s2 = parts.std * parts.std
        for b in 0..<batchSize {
            let scale = weights[b] / (s2 * Float(d))
            for i in (b * d)..<((b + 1) * d) {
                let inside = !config.clipSample || (raw[i] > -r && raw[i] < r)
                let dMean = parts.sqrtAlphaPrev * (inside ? dx0 : 0) + parts.direction * deps
                gradient[i] = scale * (prevSample[i] - step.mean[i]) * dMean
            }
        }
        return gradient
    }

    /// ε̂ as diffusers' DDIM step derives it (from the unclipped x̂₀).
    static func epsilon(_ type: SchedulerConfig.PredictionType, modelOutput: [Float], sample: [Float], x0: [Float], alphaProd: Float) -> [Float] {
        let sa = alphaProd.squareRoot(), sb = (1 - alphaProd).squareRoot()
        switch type {
        case .epsilon: return modelOutput
        case .sample: return zip(sample, x0).map { x, x0 in (x - sa * x0) / sb }
        case .vPrediction: return zip(modelOutput, sample).map { v, x in sa * v + sb * x }
        }
    }

    /// ᾱₜ, √ᾱₚ, σ and the direction coefficient √(1 − ᾱₚ − σ²) of a step from t.
    func logProbParts(timestep t: Int, eta: Double, count: Int, batchSize: Int) throws
        -> (alphaProd: Float, sqrtAlphaPrev: Float, std: Float, direction: Float) {
        guard eta > 0 && eta <= 1 else { throw SchedulerError.invalidPolicyEta(eta) }
        try SchedulerMath.check(batchSize: batchSize, count: count)
        guard (0..<config.numTrainTimesteps).contains(t) else {
            throw SchedulerError.timestepOutOfRange(timestep: t, numTrainTimesteps: config.numTrainTimesteps)
        }
        guard !config.thresholding else { throw SchedulerError.thresholdingWithLogProb }
        let prevT = try previousTimestep(t)
        let ac = schedule.alphasCumprod
        let alphaProd = ac[t], alphaPrev = ac[max(prevT, 0)]  // DDPO's clamp
        let variance = ((1 - alphaPrev) / (1 - alphaProd)) * (1 - alphaProd / alphaPrev)
        let std = Float(eta) * variance.squareRoot()
        guard std > 0 else { throw SchedulerError.deterministicStep(timestep: t) }
        return (alphaProd, alphaPrev.squareRoot(), std, max(0, 1 - alphaPrev - std * std).squareRoot())
    }
}
