import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// The weighting w(t) of the SDS gradient (DreamFusion and its successors).
public enum SDSWeighting: String, SettingChoice {
    /// w = 1 − ᾱ_t (DreamFusion's, threestudio's "sds").
    case sds
    /// w = 1.
    case uniform
    /// w = √ᾱ_t · (1 − ᾱ_t) (Fantasia3D).
    case fantasia

    /// w(t) for a cumulative ᾱ_t.
    @inlinable public func weight(alphaCumprod a: Float) -> Float {
        switch self {
        case .sds: return 1 - a
        case .uniform: return 1
        case .fantasia: return a.squareRoot() * (1 - a)
        }
    }
}

/// What the distillation gradient on x is made of (`--objective`), before the weighting w(t); every
/// one is built from the prior's unconditional, conditional and guided noise predictions
/// (`NoisePrediction`) at the same x_t, so each works with any `DiffusionPrior` and composes with
/// the reward-aware methods, which all take their gradient from `ScoreDistillation.term`.
public enum DistillationObjective: String, SettingChoice {
    /// SDS (DreamFusion): ε̂_s − ε, with ε̂_s = ε_∅ + s·(ε_y − ε_∅) the guided prediction.
    case sds
    /// Classifier score distillation (Yu et al. 2023): s·(ε_y − ε_∅), the guidance direction alone
    /// (= ε̂_s − ε_∅, so a 4D run's time guidance stays in it); the sampled noise never enters.
    case csd
    /// Noise-free score distillation (Katzir et al. 2023): s·(ε_y − ε_∅) plus, for t < 0.2·T, the
    /// domain term ε_∅ (which at small t points back to the data without the noise ε); at larger t
    /// the paper's domain term ε_∅ − ε_neg is the run's negative prompt against the empty one, and
    /// Kiln's unconditional prediction already is the negative prompt's, so that term is 0 there.
    case nfsd
    /// Interval score matching (Liang et al. 2023, LucidDreamer): x is carried to x_s by DDIM
    /// inversion with the unconditional prediction (s = t − δ·T, `SDSSettings.ismInterval`), then
    /// to x_t by one more inversion step, and the gradient is ε̂_s(x_t; t) − ε̂_u(x_s; s): the
    /// guided prediction against the inversion's own noise instead of a random ε, so the target
    /// is consistent from step to step. Costs max(1, ⌈s / (`ismInversionStep`·T)⌉) + 1 unconditional
    /// UNet calls more than SDS. It draws no noise, so the reward methods that compare noises
    /// (rw-sds, dpo) are refused with it.
    case ism
    /// Variational score distillation (Wang et al. 2023, ProlificDreamer): ε̂_s(x_t) − ε̂_φ(x_t),
    /// ε̂_φ a LoRA of the prior trained online on the renders (`ParticleScoreModel`, rank
    /// `SDSSettings.vsdRank`, learning rate `vsdLearningRate`), with the views as its camera.
    case vsd

    /// The gradient before w(t) at one element: the noise ε and the three predictions.
    @inlinable
    public func direction(noise: Float, unconditional: Float, conditional: Float, guided: Float, guidanceScale: Float, smallTimestep: Bool) -> Float {
        switch self {
        case .sds: return guided - noise
        case .csd: return guided - unconditional
        case .nfsd: return guided - unconditional + (smallTimestep ? unconditional : 0)
        case .ism, .vsd: return guided - noise  // with `noise` the inversion's ε̂_u(x_s; s), or the particle model's ε̂_φ (`ScoreDistillation.term`)
        }
    }
}

/// How each step's timestep is drawn.
public enum TimestepSchedule: String, SettingChoice {
    /// t ~ U[min, max]·T, independently each step (DreamFusion).
    case random
    /// t = (max − (max − min)·progress)·T plus a jitter of ±(max − min)/20·T: from coarse shape to
    /// detail (DreamGaussian anneals t = (1 − progress)·T).
    case annealed
    /// DreamTime's time-prioritised schedule (Huang et al. 2023): t decreases with progress, spending
    /// the steps as the weight W(t) ∝ √((1−ᾱ_t)/ᾱ_t)·exp(−(t − m)²/2s²) says (m and s:
    /// `SDSSettings.dreamtimeCenter` and `dreamtimeSpread`, fractions of T; the paper's 500 and 125
    /// of 1000): t(p) = argmin_t |Σ_{τ ≥ t} W(τ) − p|, no jitter, clamped to [min, max]·T.
    case dreamtime
}

/// Score-distillation settings shared by every method.
public struct SDSSettings: Codable, Sendable, Equatable {
    /// Classifier-free guidance scale s (7.5: measured better than 20 on the built-in prior).
    public var guidanceScale: Double = 7.5
    /// For 4D: time guidance s_τ (`DiffusionPrior.predictNoise`), amplifying what the prior
    /// draws differently at a view's time than for the object still; 0 turns it off.
    public var timeGuidanceScale: Double = 0
    /// Timesteps are drawn in [minStep, maxStep]·T.
    public var minStep: Double = 0.02
    public var maxStep: Double = 0.98
    public var timestepSchedule: TimestepSchedule = .annealed
    public var weighting: SDSWeighting = .sds
    /// What the gradient is made of: SDS, or an objective that leaves out its noisy part.
    public var objective: DistillationObjective = .sds
    /// DreamTime: the centre m and the spread s of the timestep prior, as fractions of T.
    public var dreamtimeCenter: Double = 0.5
    public var dreamtimeSpread: Double = 0.125
    /// VSD: the rank of the particle model's LoRA adapters (α = rank) and their AdamW learning rate
    /// (ProlificDreamer: 1e-3).
    public var vsdRank = 4
    public var vsdLearningRate = 1e-3
    /// ISM: the interval t − s as a fraction of T (LucidDreamer's δ_T = 50 of 1000).
    public var ismInterval: Double = 0.05
    /// ISM: the largest DDIM inversion step from 0 to s, as a fraction of T (LucidDreamer's 200 of 1000).
    public var ismInversionStep: Double = 0.2
    /// Each element of the gradient is clamped to ±this (nil: no clamp).
    public var gradientClamp: Float? = nil

    public init() {}

    /// - Throws: `DistillError.badSetting` naming the setting, its value and its range.
    public func validate() throws {
        guard guidanceScale.isFinite, guidanceScale >= 0 else { throw DistillError.badSetting("sds.guidance_scale must be a number ≥ 0, got \(guidanceScale)") }
        guard timeGuidanceScale.isFinite, timeGuidanceScale >= 0 else {
            throw DistillError.badSetting("sds.time_guidance_scale must be a number ≥ 0, got \(timeGuidanceScale)")
        }
        guard minStep >= 0, maxStep <= 1, minStep < maxStep else {
            throw DistillError.badSetting("sds.min_step and sds.max_step are fractions of the schedule with 0 ≤ min_step < max_step ≤ 1, got \(minStep) and \(maxStep)")
        }
        guard (1...64).contains(vsdRank), vsdLearningRate > 0, vsdLearningRate < 1 else {
            throw DistillError.badSetting("sds.vsd_rank must be 1…64 and sds.vsd_learning_rate in (0, 1), got \(vsdRank) and \(vsdLearningRate)")
        }
        guard dreamtimeCenter >= 0, dreamtimeCenter <= 1, dreamtimeSpread > 0, dreamtimeSpread.isFinite else {
            throw DistillError.badSetting("sds.dreamtime_center must be in [0, 1] and sds.dreamtime_spread positive, got \(dreamtimeCenter) and \(dreamtimeSpread)")
        }
        guard ismInterval > 0, ismInterval < 1, ismInversionStep > 0, ismInversionStep <= 1 else {
            throw DistillError.badSetting("sds.ism_interval must be in (0, 1) and sds.ism_inversion_step in (0, 1], got \(ismInterval) and \(ismInversionStep)")
        }
        if let gradientClamp, !(gradientClamp > 0 && gradientClamp.isFinite) {
            throw DistillError.badSetting("sds.gradient_clamp must be a positive number (or absent), got \(gradientClamp)")
        }
    }
}

/// One score-distillation gradient: g = w(t)·(ε̂ − ε) on the prior's samples (or the objective's
/// direction, `DistillationObjective`), and the quantities the reward-aware methods reuse.
public struct SDSTerm {
    /// The timestep t ∈ [0, T).
    public var timestep: Int
    /// ε, shaped as the samples x (`[B, C, h, w]`).
    public var noise: [Float]
    /// x_t = √ᾱ·x + √(1−ᾱ)·ε.
    public var noisy: [Float]
    /// ε̂ with guidance.
    public var prediction: [Float]
    /// w(t)·(ε̂ − ε) (SDS; another objective's direction times w(t)), the gradient on x (before any clamp).
    public var gradient: [Float]
    /// The one-step estimate x̂₀ = (x_t − √(1−ᾱ)·ε̂)/√ᾱ.
    public var predictedOriginal: [Float]
}

/// SDS (Poole et al. 2022, DreamFusion): for images x = g(θ) in the prior's space, a timestep t and
/// noise ε, ∇θ L = w(t)·(ε̂(x_t; y, c, t) − ε)·∂x/∂θ, never back-propagating through the prior.
/// The surrogate loss ½‖x − stopgrad(x − g)‖²/B = ½‖g‖²/B is what gets logged.
public enum ScoreDistillation {
    /// The step's timestep for `progress` ∈ [0, 1] of the run.
    public static func timestep(_ settings: SDSSettings, progress: Double, trainSteps: Int, rng: inout RNG) -> Int {
        let lo = settings.minStep, hi = settings.maxStep
        let fraction: Double
        switch settings.timestepSchedule {
        case .random:
            fraction = lo + (hi - lo) * Double(rng.nextFloat())
        case .annealed:
            let jitter = (hi - lo) / 20 * (2 * Double(rng.nextFloat()) - 1)
            fraction = min(hi, max(lo, hi - (hi - lo) * min(1, max(0, progress)) + jitter))
        case .dreamtime:
            preconditionFailure("ScoreDistillation.timestep: the DreamTime schedule needs the noise schedule (timestep(_:progress:schedule:rng:))")
        }
        return min(trainSteps - 1, max(0, Int((fraction * Double(trainSteps)).rounded())))
    }

    /// The step's timestep for `progress` ∈ [0, 1] of the run, for a prior with noise schedule
    /// `schedule` (which the DreamTime schedule weighs; the others draw as `timestep(_:progress:trainSteps:rng:)`).
    public static func timestep(_ settings: SDSSettings, progress: Double, schedule: NoiseSchedule, rng: inout RNG) -> Int {
        let T = schedule.numTrainTimesteps
        guard settings.timestepSchedule == .dreamtime else { return timestep(settings, progress: progress, trainSteps: T, rng: &rng) }
        let tails = dreamtimeTails(settings, schedule: schedule)
        let p = min(1, max(0, progress))
        var best = 0, bestDistance = Double.infinity
        for t in 0..<T where abs(tails[t] - p) < bestDistance { (best, bestDistance) = (t, abs(tails[t] - p)) }
        let lo = Int((settings.minStep * Double(T)).rounded()), hi = min(T - 1, Int((settings.maxStep * Double(T)).rounded()))
        return min(hi, max(lo, best))
    }

    /// DreamTime's Σ_{τ ≥ t} W(τ) for each t, W normalised to sum 1.
    static func dreamtimeTails(_ settings: SDSSettings, schedule: NoiseSchedule) -> [Double] {
        let T = schedule.numTrainTimesteps
        let m = settings.dreamtimeCenter * Double(T), s = settings.dreamtimeSpread * Double(T)
        var w = (0..<T).map { t -> Double in
            let a = Double(schedule.alphaCumprod(t))
            // At zero terminal SNR (ᾱ = 0) the weight is infinite: that timestep is left out.
            guard a > 0 else { return 0 }
            return ((1 - a) / a).squareRoot() * exp(-(Double(t) - m) * (Double(t) - m) / (2 * s * s))
        }
        let z = w.reduce(0, +)
        precondition(z > 0 && z.isFinite, "ScoreDistillation: DreamTime's weights sum to \(z)")
        for t in 0..<T { w[t] /= z }
        var tails = [Double](repeating: 0, count: T), sum = 0.0
        for t in stride(from: T - 1, through: 0, by: -1) {
            sum += w[t]
            tails[t] = sum
        }
        return tails
    }

    /// x_t = √ᾱ·x + √(1−ᾱ)·ε, elementwise.
    public static func addNoise(_ x: [Float], noise: [Float], alphaCumprod a: Float) -> [Float] {
        precondition(x.count == noise.count, "ScoreDistillation.addNoise: \(x.count) values, \(noise.count) noise values")
        let s = a.squareRoot(), r = (1 - a).squareRoot()
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count { out[i] = s * x[i] + r * noise[i] }
        return out
    }

    /// x̂₀ = (x_t − √(1−ᾱ)·ε̂)/√ᾱ, elementwise.
    public static func predictedOriginal(noisy: [Float], prediction: [Float], alphaCumprod a: Float) -> [Float] {
        let s = a.squareRoot(), r = (1 - a).squareRoot()
        var out = [Float](repeating: 0, count: noisy.count)
        for i in 0..<noisy.count { out[i] = (noisy[i] - r * prediction[i]) / s }
        return out
    }

    /// The SDS term for the prior's samples `x` (`[B, C, h, w]`) seen from `views`, at timestep `t`
    /// with noise `noise` (same count as x).
    /// - Parameter particle: VSD's particle model (required for `.vsd`, unused otherwise).
    public static func term(prior: any DiffusionPrior, images x: Tensor, views: [ViewConditioning], timestep t: Int, noise: [Float],
                            settings: SDSSettings, particle: ParticleScoreModel? = nil) -> SDSTerm {
        let a = prior.schedule.alphaCumprod(t)
        if settings.objective == .ism { return intervalScoreMatching(prior: prior, images: x, views: views, timestep: t, settings: settings) }
        let noisy = addNoise(x.storage, noise: noise, alphaCumprod: a)
        let predictions = prior.predictNoise(Tensor(shape: x.shape, storage: noisy), timestep: t, views: views,
                                             guidanceScale: settings.guidanceScale, timeGuidanceScale: settings.timeGuidanceScale)
        let prediction = predictions.guided.storage
        let w = settings.weighting.weight(alphaCumprod: a)
        var gradient = [Float](repeating: 0, count: noisy.count)
        switch settings.objective {
        case .sds:
            for i in 0..<gradient.count { gradient[i] = w * (prediction[i] - noise[i]) }
        case .vsd:
            guard let particle else { preconditionFailure("ScoreDistillation.term: VSD needs its particle model") }
            let phi = particle.predictNoise(Tensor(shape: x.shape, storage: noisy), timestep: t, views: views).storage
            for i in 0..<gradient.count { gradient[i] = w * (prediction[i] - phi[i]) }
        case .csd, .nfsd, .ism:
            let (u, c) = (predictions.unconditional.storage, predictions.conditional.storage)
            let s = Float(settings.guidanceScale), small = t < prior.schedule.numTrainTimesteps / 5
            for i in 0..<gradient.count {
                gradient[i] = w * settings.objective.direction(noise: noise[i], unconditional: u[i], conditional: c[i], guided: prediction[i],
                                                               guidanceScale: s, smallTimestep: small)
            }
        }
        return SDSTerm(timestep: t, noise: noise, noisy: noisy, prediction: prediction, gradient: gradient,
                       predictedOriginal: predictedOriginal(noisy: noisy, prediction: prediction, alphaCumprod: a))
    }

    /// One deterministic DDIM step of x_from (at timestep `from`, x itself at −1) to `to` with the
    /// noise ε: x̂₀ = (x − √(1−ᾱ_from)·ε)/√ᾱ_from, then √ᾱ_to·x̂₀ + √(1−ᾱ_to)·ε.
    static func ddimStep(_ x: [Float], noise e: [Float], from: Int, to: Int, schedule: NoiseSchedule) -> [Float] {
        let a0 = from < 0 ? 1 : schedule.alphaCumprod(from), a1 = schedule.alphaCumprod(to)
        let (s0, r0, s1, r1) = (a0.squareRoot(), (1 - a0).squareRoot(), a1.squareRoot(), (1 - a1).squareRoot())
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count { out[i] = s1 * (x[i] - r0 * e[i]) / s0 + r1 * e[i] }
        return out
    }

    /// The ISM term (`DistillationObjective.ism`): x → x_s by DDIM inversion in equal steps of at
    /// most `ismInversionStep`·T with ε̂_u, x_s → x_t with ε̂_u(x_s; s); g = w(t)·(ε̂(x_t; t) − ε̂_u(x_s; s)).
    /// `noise` of the result is ε̂_u(x_s; s), `noisy` x_t.
    static func intervalScoreMatching(prior: any DiffusionPrior, images x: Tensor, views: [ViewConditioning], timestep t: Int,
                                      settings: SDSSettings) -> SDSTerm {
        let T = prior.schedule.numTrainTimesteps
        let s = max(0, t - max(1, Int((settings.ismInterval * Double(T)).rounded())))
        let stride = max(1, Int((settings.ismInversionStep * Double(T)).rounded()))
        let steps = max(1, (s + stride - 1) / stride)
        var current = x.storage, at = -1
        for k in 1...steps {
            let next = s * k / steps
            let e = at < 0 ? prior.predictUnconditionalNoise(x, timestep: 0, views: views).storage
                : prior.predictUnconditionalNoise(Tensor(shape: x.shape, storage: current), timestep: at, views: views).storage
            current = ddimStep(current, noise: e, from: at, to: next, schedule: prior.schedule)
            at = next
        }
        let eps = prior.predictUnconditionalNoise(Tensor(shape: x.shape, storage: current), timestep: s, views: views).storage
        let noisy = ddimStep(current, noise: eps, from: s, to: t, schedule: prior.schedule)
        let prediction = prior.predictNoise(Tensor(shape: x.shape, storage: noisy), timestep: t, views: views,
                                            guidanceScale: settings.guidanceScale, timeGuidanceScale: settings.timeGuidanceScale).guided.storage
        let w = settings.weighting.weight(alphaCumprod: prior.schedule.alphaCumprod(t))
        var gradient = [Float](repeating: 0, count: noisy.count)
        for i in 0..<gradient.count { gradient[i] = w * (prediction[i] - eps[i]) }
        return SDSTerm(timestep: t, noise: eps, noisy: noisy, prediction: prediction, gradient: gradient,
                       predictedOriginal: predictedOriginal(noisy: noisy, prediction: prediction, alphaCumprod: prior.schedule.alphaCumprod(t)))
    }

    /// Clamps each element to ±`limit` (when given) and zeroes non-finite ones; returns how many
    /// elements were not finite.
    @discardableResult
    public static func sanitize(_ gradient: inout [Float], clamp limit: Float?) -> Int {
        var bad = 0
        for i in 0..<gradient.count {
            let g = gradient[i]
            if !g.isFinite { gradient[i] = 0; bad += 1; continue }
            if let limit { gradient[i] = min(limit, max(-limit, g)) }
        }
        return bad
    }

    /// The logged surrogate loss ½‖g‖²/B.
    public static func surrogateLoss(_ gradient: [Float], batch: Int) -> Float {
        var sum = 0.0
        for g in gradient { sum += Double(g) * Double(g) }
        return Float(0.5 * sum / Double(max(1, batch)))
    }
}
