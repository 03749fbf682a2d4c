import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnToyWorld
import Testing
@testable import KilnDistill

@Suite("Reward-aware distillation")
struct RewardGuidanceTests {
    let prior: PixelDiffusionPrior
    let rewards: ToyImageRewards
    let views = [ViewConditioning(azimuthDegrees: 0, elevationDegrees: 10), ViewConditioning(azimuthDegrees: 135, elevationDegrees: 30),
                 ViewConditioning(azimuthDegrees: 250, elevationDegrees: 0)]

    init() throws {
        prior = try PixelDiffusionPrior(pipeline: PriorPipeline(folder: tinyPipeline), prompt: "a red snowman", backgrounds: ToySample.backgrounds)
        rewards = ToyImageRewards(models: try tinyRewards(), caption: ToyCaption("a red snowman"))
    }

    var x: Tensor { ScoreDistillationTests.images(3, seed: 11) }

    /// The step's timestep and the noise of all its copies, drawn as `RewardGuidance.gradient` draws them.
    func draws(_ sds: SDSSettings, progress: Double, copies: Int, rng: RNG) -> (Int, [Float]) {
        var r = rng
        let t = ScoreDistillation.timestep(sds, progress: progress, trainSteps: 1000, rng: &r)
        var noise = [Float](repeating: 0, count: copies * x.count)
        r.fill(normal: &noise)
        return (t, noise)
    }

    /// SDS terms of `copies` stacked copies of x with the given noise.
    func terms(_ t: Int, _ noise: [Float], copies: Int, sds: SDSSettings) -> SDSTerm {
        let stacked = Tensor(shape: [copies * 3, 3, 16, 16], storage: Array(repeating: x.storage, count: copies).flatMap { $0 })
        return ScoreDistillation.term(prior: prior, images: stacked, views: Array(repeating: views, count: copies).flatMap { $0 }, timestep: t, noise: noise, settings: sds)
    }

    @Test("plain SDS through RewardGuidance is the SDS term of the same draws")
    func plain() {
        let sds = SDSSettings()
        let rng = RNG(seed: 21)
        var r = rng
        let step = RewardGuidance.gradient(prior: prior, rewards: nil, images: x, views: views, progress: 0.3, sds: sds,
                                           settings: RewardGuidanceSettings(), rng: &r)
        let (t, noise) = draws(sds, progress: 0.3, copies: 1, rng: rng)
        #expect(step.timestep == t && step.reward == nil && step.nonFinite == 0)
        #expect(step.gradient == terms(t, noise, copies: 1, sds: sds).gradient)
    }

    @Test("RewardSDS weights each view's noises by softmax(r/τ) of their x̂₀ rewards; after reward-until it is plain SDS")
    func rewardWeighted() {
        let sds = SDSSettings()
        var settings = RewardGuidanceSettings()
        settings.method = .rewardWeighted
        settings.noises = 3
        let rng = RNG(seed: 22)
        var r = rng
        let step = RewardGuidance.gradient(prior: prior, rewards: rewards, images: x, views: views, progress: 0.2, sds: sds, settings: settings, rng: &r)
        let (t, noise) = draws(sds, progress: 0.2, copies: 3, rng: rng)
        let term = terms(t, noise, copies: 3, sds: sds)
        let scores = RewardGuidance.rewards(rewards, settings.rewards, prior: prior, x: Tensor(shape: [9, 3, 16, 16], storage: term.predictedOriginal),
                                            views: views + views + views, gradient: false).total
        let plane = 3 * 256
        var worst: Float = 0
        for v in 0..<3 {
            let e = (0..<3).map { Foundation.exp(Double(scores[$0 * 3 + v]) / 0.5) }
            let weights = e.map { $0 / e.reduce(0, +) }
            for i in 0..<plane {
                var expected = 0.0
                for n in 0..<3 { expected += weights[n] * Double(term.gradient[(n * 3 + v) * plane + i]) }
                worst = max(worst, abs(step.gradient[v * plane + i] - Float(expected)))
            }
        }
        #expect(worst < 1e-5, "worst \(worst)")
        #expect(step.reward != nil)
        // Past reward-until: one noise, the plain term.
        var late = rng
        let after = RewardGuidance.gradient(prior: prior, rewards: rewards, images: x, views: views, progress: 0.9, sds: sds, settings: settings, rng: &late)
        let (t1, noise1) = draws(sds, progress: 0.9, copies: 1, rng: rng)
        #expect(after.gradient == terms(t1, noise1, copies: 1, sds: sds).gradient)
    }

    @Test("DreamDPO: winner minus (weighted) loser, or the winner alone when the reward gap is under the threshold")
    func dpo() {
        let sds = SDSSettings()
        for (threshold, loserWeight): (Float, Float) in [(0, 1), (0, 0.5), (1e9, 1)] {
            var settings = RewardGuidanceSettings()
            settings.method = .dpo
            settings.preferenceThreshold = threshold
            settings.loserWeight = loserWeight
            let rng = RNG(seed: 23)
            var r = rng
            let step = RewardGuidance.gradient(prior: prior, rewards: rewards, images: x, views: views, progress: 0.5, sds: sds, settings: settings, rng: &r)
            let (t, noise) = draws(sds, progress: 0.5, copies: 2, rng: rng)
            let term = terms(t, noise, copies: 2, sds: sds)
            let scores = RewardGuidance.rewards(rewards, settings.rewards, prior: prior, x: Tensor(shape: [6, 3, 16, 16], storage: term.predictedOriginal),
                                                views: views + views, gradient: false).total
            let plane = 3 * 256
            for v in 0..<3 {
                let (w, l) = scores[v] >= scores[3 + v] ? (v, 3 + v) : (3 + v, v)
                for i in stride(from: 0, to: plane, by: 7) {
                    let expected = term.gradient[w * plane + i] - (threshold == 0 ? loserWeight * term.gradient[l * plane + i] : 0)
                    #expect(abs(step.gradient[v * plane + i] - expected) < 1e-5)
                }
            }
        }
    }

    @Test("reward feedback adds λ‖g_SDS‖ along −∂R/∂x while R is under the margin")
    func rewardFeedback() {
        let sds = SDSSettings()
        var settings = RewardGuidanceSettings()
        settings.method = .rewardFeedback
        settings.feedbackMargin = 1e6  // always active
        settings.straightThroughBelow = 0  // the reward sees the render itself
        settings.feedbackWeight = 0.5
        let rng = RNG(seed: 24)
        var r1 = rng, r2 = rng
        let step = RewardGuidance.gradient(prior: prior, rewards: rewards, images: x, views: views, progress: 0.8, sds: sds, settings: settings, rng: &r1)
        let plain = RewardGuidance.gradient(prior: prior, rewards: rewards, images: x, views: views, progress: 0.8, sds: sds,
                                            settings: RewardGuidanceSettings(), rng: &r2)
        let added = zip(step.gradient, plain.gradient).map { $0 - $1 }
        let dR = RewardGuidance.rewards(rewards, settings.rewards, prior: prior, x: x, views: views, gradient: true).imageGradient
        let ratio = RewardGuidance.norm(added) / RewardGuidance.norm(plain.gradient)
        let cosine = zip(added, dR).map { -$0 * $1 }.reduce(0, +) / (RewardGuidance.norm(added) * RewardGuidance.norm(dR))
        #expect(abs(ratio - 0.5) < 1e-3 && cosine > 0.9999, "ratio \(ratio), cosine \(cosine)")
        #expect(step.rewardLoss! > 0 && step.reward != nil)
    }

    @Test("the reward gradient on prior-space images matches central differences")
    func rewardGradient() {
        let images = x
        let evaluation = RewardGuidance.rewards(rewards, RewardMix([.alignment: 1, .view: 0.5, .quality: 0.25]), prior: prior, x: images, views: views, gradient: true)
        var rng = RNG(seed: 25)
        for _ in 0..<12 {
            let i = Int(rng.next() % UInt64(images.count))
            guard abs(images.storage[i]) < 0.9 else { continue }
            func total(_ delta: Float) -> Double {
                var y = images.storage
                y[i] += delta
                return RewardGuidance.rewards(rewards, RewardMix([.alignment: 1, .view: 0.5, .quality: 0.25]), prior: prior, x: Tensor(shape: [3, 3, 16, 16], storage: y),
                                              views: views, gradient: false).total.reduce(0) { $0 + Double($1) }
            }
            let h: Float = 2e-2
            let numeric = (total(h) - total(-h)) / Double(2 * h)
            #expect(abs(numeric - Double(evaluation.imageGradient[i])) < 2e-3 + 0.02 * abs(numeric), "pixel \(i): \(numeric) vs \(evaluation.imageGradient[i])")
        }
    }

    @Test("selection and advantage weights")
    func weights() {
        var settings = RewardGuidanceSettings()
        let r: [Float] = [-3, -1, -2, -0.5]
        let soft = RewardGuidance.selectionWeights(r, settings: settings)
        #expect(abs(soft.reduce(0, +) - 1) < 1e-6 && soft[3] > soft[1] && soft[1] > soft[2] && soft[2] > soft[0])
        settings.selection = .best
        settings.topK = 2
        #expect(RewardGuidance.selectionWeights(r, settings: settings) == [0, 0.5, 0, 0.5])
        settings.selection = .minMax
        let minMax = RewardGuidance.selectionWeights(r, settings: settings)
        #expect(minMax == [-0.05, 0.45, -0.05, 0.45])
        let a = RewardGuidance.advantageWeights([1, 2, 3], beta: 1)
        #expect(abs(a.reduce(0, +) - 3) < 1e-5 && a[2] > a[1] && a[1] > a[0])
        #expect(RewardGuidance.advantageWeights([1, 2, 3], beta: 0).allSatisfy { abs($0 - 1) < 1e-6 })
    }

    @Test("a reward-aware method without rewards is refused")
    func needsRewards() throws {
        var settings = RewardGuidanceSettings()
        settings.method = .dpo
        settings.rewards = RewardMix([:])
        #expect(throws: DistillError.self) { try settings.validate() }
    }
}
