import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// Which score-distillation gradient a run follows (`--method`).
public enum DistillationMethod: String, SettingChoice {
    /// Plain SDS.
    case sds
    /// RewardSDS: N noises at one t, each SDS term weighted by the reward of its one-step x̂₀.
    case rewardWeighted = "rw-sds"
    /// DreamReward: SDS plus λ·∇ mean ReLU(c − R), R on x̂₀ (straight-through) or on the render.
    case rewardFeedback = "reward-feedback"
    /// DreamDPO: two noises, the better x̂₀ pulled towards, the worse pushed away from.
    case dpo
}

/// How RewardSDS turns the N rewards of one view into weights (Chachy et al. 2025).
public enum RewardSelection: String, SettingChoice {
    /// softmax(r / τ).
    case weighted
    /// 0.9·mean(top k) − 0.1·mean(bottom k).
    case minMax = "min-max"
    /// mean(top k).
    case best
}

/// The reward-aware settings (REFERENCE §1). Defaults are the papers' where they fit a 2-core budget.
public struct RewardGuidanceSettings: Codable, Sendable, Equatable {
    public var method: DistillationMethod = .sds
    public var rewards = RewardMix([.alignment: 1, .view: 0.5])
    /// RewardSDS: noises per step (the paper's 7 costs 7 prior calls), selection, temperature, k,
    /// and the fraction of the run it is active for (plain SDS after).
    public var noises = 4
    public var selection: RewardSelection = .weighted
    public var temperature: Float = 0.5
    public var topK = 1
    public var rewardUntil = 0.7
    /// Reward feedback: weight λ (relative to the SDS gradient's norm), hinge margin c, the
    /// progress it starts at, and the t/T below which the reward sees x̂₀ instead of the render.
    public var feedbackWeight: Float = 0.5
    public var feedbackMargin: Float = -0.05
    public var feedbackFrom = 0.5
    public var straightThroughBelow = 0.5
    /// DreamDPO: below this reward gap only the winner's term is used.
    public var preferenceThreshold: Float = 0.1
    /// DreamDPO: the loser's term is subtracted with this weight, so the step is
    /// (1 − w)·g_win + w·(g_win − g_lose). DreamDPO's own is w = 1 (the difference alone), which
    /// left 4 of 9 suite prompts as coloured noise (kind recognised in 0–69% of views): without
    /// a plain SDS pull, an object that starts badly never improves. At 0.5 all four recognised
    /// their kind in 16 of 16 views (mean alignment −0.00 to −0.18).
    public var loserWeight: Float = 0.5
    /// View-group advantage: views of one step weighted by B·softmax(β·A), A the views' rewards
    /// standardised within the step; 0 turns it off.
    public var viewAdvantage: Float = 0

    public init() {}

    /// Whether any part of the method needs the reward models.
    public var usesRewards: Bool { method != .sds || viewAdvantage > 0 }

    /// - Throws: `DistillError.badSetting` naming the setting and its range.
    public func validate() throws {
        guard (1...16).contains(noises) else { throw DistillError.badSetting("noises must be 1…16, got \(noises)") }
        guard temperature > 0, temperature.isFinite else { throw DistillError.badSetting("temperature must be positive, got \(temperature)") }
        guard (1...noises).contains(topK) || selection == .weighted else { throw DistillError.badSetting("top-k must be 1…\(noises), got \(topK)") }
        guard (0...1).contains(rewardUntil), (0...1).contains(feedbackFrom), (0...1).contains(straightThroughBelow) else {
            throw DistillError.badSetting("reward-until, feedback-from and straight-through-below are fractions in [0, 1]")
        }
        guard feedbackWeight >= 0, viewAdvantage >= 0, preferenceThreshold >= 0, (0...1).contains(loserWeight) else {
            throw DistillError.badSetting("feedback weight, view advantage and preference threshold must not be negative; loser weight is in [0, 1]")
        }
        if usesRewards && rewards.isEmpty { throw DistillError.badReward("\(method.rawValue) needs at least one reward with a non-zero weight") }
    }
}

/// One step's gradient on the prior's samples and what it logs.
public struct DistillationGradient {
    /// ∂L/∂x, `[B, C, h, w]` flat, on the prior's samples x.
    public var gradient: [Float]
    public var timestep: Int
    /// The SDS surrogate loss ½‖g_SDS‖²/B.
    public var sdsLoss: Float
    /// Mean reward of the one-step estimates x̂₀ the step scored (nil if it scored none).
    public var reward: Float?
    /// The reward-feedback hinge loss (nil unless it was active).
    public var rewardLoss: Float?
    /// Elements of the gradient that were NaN or ±∞ (zeroed).
    public var nonFinite: Int
}

/// Score distillation with the reward-aware variants of REFERENCE §1, on samples already in the
/// prior's space.
public enum RewardGuidance {
    /// The gradient of one step.
    /// - Parameters:
    ///   - images: the prior's samples x `[B, C, h, w]` (`DiffusionPrior.encode`), sample b seen from `views[b]`.
    ///   - progress: the run's progress in [0, 1] (timestep annealing, reward schedules).
    ///   - rewards: required when `settings.usesRewards`.
    public static func gradient(prior: any DiffusionPrior, rewards: (any ImageRewards)?, images x: Tensor,
                                views: [ViewConditioning], progress: Double, sds: SDSSettings, settings: RewardGuidanceSettings,
                                particle: ParticleScoreModel? = nil, rng: inout RNG) -> DistillationGradient {
        let b = x.shape[0], plane = x.count / max(1, b)
        let t = ScoreDistillation.timestep(sds, progress: progress, schedule: prior.schedule, rng: &rng)
        precondition(!settings.usesRewards || rewards != nil, "RewardGuidance.gradient: \(settings.method) needs reward models")
        let noiseCount: Int
        switch settings.method {
        case .rewardWeighted: noiseCount = progress < settings.rewardUntil ? settings.noises : 1
        case .dpo: noiseCount = 2
        case .sds, .rewardFeedback: noiseCount = 1
        }
        // All noises of the step in one prior call: copy n of view b is row n·B + b.
        let stacked = Tensor(shape: [noiseCount * b] + Array(x.shape.dropFirst()), storage: Array(repeating: x.storage, count: noiseCount).flatMap { $0 })
        var noise = [Float](repeating: 0, count: stacked.count)
        rng.fill(normal: &noise)
        let term = Profiler.measure("prior forward") {
            ScoreDistillation.term(prior: prior, images: stacked, views: Array(repeating: views, count: noiseCount).flatMap { $0 },
                                   timestep: t, noise: noise, settings: sds, particle: particle)
        }
        // VSD: the particle model learns the renders as they are now, after scoring them.
        if let particle { _ = Profiler.measure("VSD particle model") { particle.train(on: x, views: views, rng: &rng) } }
        func row(_ values: [Float], _ r: Int) -> ArraySlice<Float> { values[(r * plane)..<((r + 1) * plane)] }

        // Rewards of the one-step estimates, when the method or the view weighting needs them.
        let needsScores = noiseCount > 1 || settings.viewAdvantage > 0
        var scores: [Float] = []
        if needsScores, let rewards {
            scores = Self.rewards(rewards, settings.rewards, prior: prior, x: Tensor(shape: stacked.shape, storage: term.predictedOriginal),
                                  views: Array(repeating: views, count: noiseCount).flatMap { $0 }, gradient: false).total
        }
        var gradient = [Float](repeating: 0, count: x.count)
        for v in 0..<b {
            var weights = [Float](repeating: 0, count: noiseCount)
            if noiseCount == 1 {
                weights[0] = 1
            } else if settings.method == .dpo {
                let (r0, r1) = (scores[v], scores[b + v])
                let (winner, loser) = r0 >= r1 ? (0, 1) : (1, 0)
                weights[winner] = 1
                if abs(r0 - r1) >= settings.preferenceThreshold { weights[loser] = -settings.loserWeight }
            } else {
                weights = selectionWeights((0..<noiseCount).map { scores[$0 * b + v] }, settings: settings)
            }
            for n in 0..<noiseCount where weights[n] != 0 {
                let g = row(term.gradient, n * b + v)
                var i = v * plane
                for value in g { gradient[i] += weights[n] * value; i += 1 }
            }
        }
        let sdsLoss = ScoreDistillation.surrogateLoss(gradient, batch: b)

        // View-group advantage: views whose x̂₀ scores higher than the step's others count more.
        if settings.viewAdvantage > 0, !scores.isEmpty {
            let perView = (0..<b).map { v in (0..<noiseCount).map { scores[$0 * b + v] }.reduce(0, +) / Float(noiseCount) }
            let factors = advantageWeights(perView, beta: settings.viewAdvantage)
            for v in 0..<b { for i in (v * plane)..<((v + 1) * plane) { gradient[i] *= factors[v] } }
        }

        // Reward feedback: + λ_eff·∂ mean_b ReLU(c − R_b)/∂x, after a warm-up.
        var rewardLoss: Float? = nil
        var reward: Float? = scores.isEmpty ? nil : scores.reduce(0, +) / Float(scores.count)
        if settings.method == .rewardFeedback, progress >= settings.feedbackFrom, let rewards {
            let throughEstimate = Double(t) < settings.straightThroughBelow * Double(prior.schedule.numTrainTimesteps)
            let seen = throughEstimate ? Tensor(shape: x.shape, storage: term.predictedOriginal) : x  // one noise: x̂₀ is x's shape
            let evaluation = Self.rewards(rewards, settings.rewards, prior: prior, x: seen, views: views, gradient: true)
            var hinge = [Float](repeating: 0, count: x.count)
            var loss: Float = 0
            for v in 0..<b where settings.feedbackMargin - evaluation.total[v] > 0 {
                loss += (settings.feedbackMargin - evaluation.total[v]) / Float(b)
                for i in (v * plane)..<((v + 1) * plane) { hinge[i] = -evaluation.imageGradient[i] / Float(b) }
            }
            // λ is relative: the feedback term gets λ times the SDS gradient's norm.
            let sdsNorm = norm(gradient), hingeNorm = norm(hinge)
            if hingeNorm > 0, sdsNorm > 0 {
                let scale = settings.feedbackWeight * sdsNorm / hingeNorm
                for i in 0..<gradient.count { gradient[i] += scale * hinge[i] }
            }
            rewardLoss = loss
            reward = evaluation.total.reduce(0, +) / Float(b)
        }
        let bad = ScoreDistillation.sanitize(&gradient, clamp: sds.gradientClamp)
        return DistillationGradient(gradient: gradient, timestep: t, sdsLoss: sdsLoss, reward: reward, rewardLoss: rewardLoss, nonFinite: bad)
    }

    /// RewardSDS weights of one view's N noises from their rewards.
    public static func selectionWeights(_ r: [Float], settings: RewardGuidanceSettings) -> [Float] {
        let n = r.count
        switch settings.selection {
        case .weighted:
            let top = r.max() ?? 0
            let e = r.map { Foundation.exp(($0 - top) / settings.temperature) }
            let sum = e.reduce(0, +)
            return e.map { $0 / sum }
        case .best, .minMax:
            let k = min(settings.topK, n)
            let order = (0..<n).sorted { r[$0] != r[$1] ? r[$0] > r[$1] : $0 < $1 }
            var weights = [Float](repeating: 0, count: n)
            if settings.selection == .best {
                for i in order.prefix(k) { weights[i] = 1 / Float(k) }
            } else {
                for i in order.prefix(k) { weights[i] += 0.9 / Float(k) }
                for i in order.suffix(k) { weights[i] -= 0.1 / Float(k) }
            }
            return weights
        }
    }

    /// B·softmax(β·A) with A the standardised rewards (mean 0, standard deviation 1): weights
    /// with mean 1.
    public static func advantageWeights(_ r: [Float], beta: Float) -> [Float] {
        let n = Float(r.count), mean = r.reduce(0, +) / n
        let std = (r.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n).squareRoot()
        let a = r.map { ($0 - mean) / (std + 1e-6) }
        let top = a.max() ?? 0
        let e = a.map { Foundation.exp(beta * ($0 - top)) }
        let sum = e.reduce(0, +)
        return e.map { n * $0 / sum }
    }

    /// Rewards of the prior's samples x (`[N, C, h, w]`) seen from `views`, through the prior's
    /// display images (`DiffusionPrior.decode`, averaged down to the reward models' size); with `gradient`, the gradient of Σ total with
    /// respect to x (`decodeBackward`), `[N, C, h, w]` flat.
    static func rewards(_ rewards: any ImageRewards, _ mix: RewardMix, prior: any DiffusionPrior, x: Tensor, views: [ViewConditioning],
                        gradient: Bool) -> RewardEvaluation {
        let images = Profiler.measure("prior decode") { prior.decode(x) }
        // A prior larger than the reward models (a latent prior's 512² decodings) is averaged down to them.
        let judged = PriorImage.pooled(images, to: rewards.imageSize)
        var evaluation = Profiler.measure("rewards") { rewards.evaluate(mix, images: judged, views: views, gradient: gradient) }
        if gradient {
            let dImages = PriorImage.pooledBackward(Tensor(shape: judged.shape, storage: evaluation.imageGradient), from: prior.imageSize)
            evaluation.imageGradient = Profiler.measure("prior decode backward") { prior.decodeBackward(dImages, x: x).storage }
        }
        return evaluation
    }

    static func norm(_ v: [Float]) -> Float {
        var s = 0.0
        for x in v { s += Double(x) * Double(x) }
        return Float(s.squareRoot())
    }
}
