import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// How well a prior draws what it is asked for, judged by the reward models: for `count` toy-world
/// captions and views (held-in: drawn by the data set's own grammar), one sample each, and the
/// share of samples whose predicted kind, colours, azimuth bin and elevation bin match the request.
public struct PriorScore: Sendable, Codable, Equatable {
    public var samples: Int
    public var seed: UInt64
    public var steps: Int
    public var guidanceScale: Double
    /// Share of samples (among those whose caption names the attribute) whose prediction matches.
    public var kind: Double
    public var mainColor: Double
    public var secondColor: Double?
    public var azimuth: Double
    public var elevation: Double
    /// Mean log p(real) from the quality model.
    public var meanQualityLogLikelihood: Double
    /// The azimuth share per kind (some kinds look alike from most sides, so their share is low
    /// even for the world's own renders).
    public var azimuthByKind: [String: Double]? = nil
    /// True when the images scored were the toy world's own renders (`measureGroundTruth`): the
    /// most a prior can score with these reward models.
    public var groundTruth: Bool? = nil
    /// What the prior does with time, over the samples whose caption names a motion (nil when
    /// none does).
    public var motion: MotionScore?

    /// How a prior's samples move with τ. For each moving caption and camera, two samples are drawn
    /// from the same noise at the motion's two most different times (`ToyMotion.contrastTimes`) and
    /// compared with the ground truth rendered at those times: d_s = S(τa) − S(τb), d_t = T(τa) − T(τb),
    /// over all pixels and channels (display values).
    public struct MotionScore: Sendable, Codable, Equatable {
        /// Moving samples measured.
        public var samples: Int
        /// Share whose motion (at the caption's own τ) the alignment model recognises (chance 1/6).
        public var recognised: Double
        /// Mean ‖d_s‖ / ‖d_t‖: 0 for a prior that ignores τ, about 1 for one that moves as much as the world.
        public var response: Double
        /// Mean cosine of d_s and d_t: 0 for change unrelated to the motion, 1 for the world's motion.
        public var agreement: Double
    }

    /// Draws and scores. A prior that draws larger images than the reward models take (a 128²
    /// latent prior, 32² models) is judged on its samples averaged down to the models' size
    /// (`PriorImage.pooled`, as tuning's rewards see them); the motion contrast stays at the
    /// prior's size, against the world rendered at that size.
    /// - Parameters:
    ///   - rewards: the alignment, view and quality models.
    ///   - progress: called with (done, count).
    public static func measure(prior: PriorPipeline, rewards: [RewardTerm: RewardNet], count: Int, seed: UInt64, steps: Int,
                               guidanceScale: Double, progress: ((Int, Int) -> Void)? = nil) throws -> PriorScore {
        let size = prior.imageSize
        guard size.height == size.width else {
            throw PriorConfigError(source: "prior", key: "sample_size", problem: "is \(size.height)×\(size.width), not square", fix: "score a prior that draws square images")
        }
        let judged = rewards[.alignment]?.imageSize ?? size.width
        guard judged > 0, size.width % judged == 0 else {
            throw PriorConfigError(source: "rewards", key: "image_size", problem: "is \(judged)² but the prior draws \(size.width)×\(size.width), which does not average down to it",
                                   fix: "use reward models whose size divides the prior's (kiln train-rewards on a data set of that size)")
        }
        return try score(rewards: rewards, size: judged, count: count, seed: seed, steps: steps, guidanceScale: guidanceScale, progress: progress,
                         draw: { _, request in PriorImage.pooled(PriorPipeline.displayValues(prior.pixels(try prior.sample(request))), to: judged) },
                         contrast: { sample, motion, request in try motionContrast(prior: prior, sample: sample, motion: motion, request: request) })
    }

    /// Scores the toy world's own renders of the same captions and cameras: the ceiling of every
    /// share with these reward models (a prior that drew exactly like the world would score this).
    public static func measureGroundTruth(rewards: [RewardTerm: RewardNet], count: Int, seed: UInt64, progress: ((Int, Int) -> Void)? = nil) throws -> PriorScore {
        guard let size = rewards[.alignment]?.imageSize else {
            throw PriorConfigError(source: "rewards", key: nil, problem: "lacks the alignment model", fix: "train it with kiln train-rewards")
        }
        var result = try score(rewards: rewards, size: size, count: count, seed: seed, steps: 0, guidanceScale: 0, progress: progress,
                               draw: { sample, _ in renderedAsData(sample, size: size) },
                               contrast: { sample, motion, _ in
                                   var a = sample, b = sample
                                   (a.time, b.time) = (motion.contrastTimes.0, motion.contrastTimes.1)
                                   let truth = MotionDelta(a.render(size: size).pixels, b.render(size: size).pixels)
                                   return (truth, truth)
                               })
        result.groundTruth = true
        return result
    }

    /// A sample's render as the data sets store it (8 bits per channel), `[1, 3, size, size]` in [0, 1].
    static func renderedAsData(_ sample: ToySample, size: Int) -> Tensor {
        let levels = [Float](unsafeUninitializedCapacity: 3 * size * size) { buffer, count in
            sample.renderData(size: size, into: buffer.baseAddress!)
            count = buffer.count
        }
        return Tensor(shape: [1, 3, size, size], storage: levels.map { $0 / 255 })
    }

    /// The scoring loop: `draw` gives the display image `[1, 3, size, size]` of a sample's request,
    /// `contrast` a moving sample's change between its motion's contrast times, drawn and true.
    static func score(rewards: [RewardTerm: RewardNet], size: Int, count: Int, seed: UInt64, steps: Int, guidanceScale: Double,
                      progress: ((Int, Int) -> Void)?, draw: (ToySample, SampleRequest) throws -> Tensor,
                      contrast: (ToySample, ToyMotion, SampleRequest) throws -> (sampled: MotionDelta, truth: MotionDelta)) throws -> PriorScore {
        guard let alignment = rewards[.alignment], let view = rewards[.view], let quality = rewards[.quality] else {
            throw PriorConfigError(source: "rewards", key: nil, problem: "lacks one of alignment, view, quality", fix: "train them with kiln train-rewards")
        }
        guard alignment.imageSize == size, view.imageSize == size, quality.imageSize == size else {
            throw PriorConfigError(source: "rewards", key: "image_size", problem: "is \(alignment.imageSize)² but the prior draws \(size)×\(size)",
                                   fix: "train the reward models on a data set of the prior's size")
        }
        var hits = (kind: 0, main: 0, second: 0, secondNamed: 0, azimuth: 0, elevation: 0)
        var qualitySum = 0.0
        var moving = (count: 0, recognised: 0, response: 0.0, agreement: 0.0)
        var byKind: [String: (hits: Int, count: Int)] = [:]
        for i in 0..<count {
            let sample = ToySample(seed: seed, index: i)
            let request = SampleRequest(prompt: sample.caption, count: 1, steps: steps, guidanceScale: guidanceScale, seed: seed &+ UInt64(i),
                                        view: sample.view)
            let image = try draw(sample, request)
            func argmax(_ logits: Tensor) -> Int { RewardNet.predictions(logits)[0] }
            let a = alignment.forward(image), v = view.forward(image)
            let record = ToyRecord(index: i, sample: sample)
            let targets = RewardTerm.alignment.targets(record), viewTargets = RewardTerm.view.targets(record)
            if argmax(a[0]) == targets[0] { hits.kind += 1 }
            if argmax(a[1]) == targets[1] { hits.main += 1 }
            if sample.namesSecondColor {
                hits.secondNamed += 1
                if argmax(a[2]) == targets[2] { hits.second += 1 }
            }
            let azimuthHit = argmax(v[0]) == viewTargets[0]
            if azimuthHit { hits.azimuth += 1 }
            byKind[sample.kind.rawValue, default: (0, 0)].hits += azimuthHit ? 1 : 0
            byKind[sample.kind.rawValue, default: (0, 0)].count += 1
            if argmax(v[1]) == viewTargets[1] { hits.elevation += 1 }
            qualitySum += Double(RewardNet.logSoftmax(quality.forward(image)[0]).storage[1])
            if let motion = sample.motion {
                moving.count += 1
                if argmax(a[3]) == targets[3] { moving.recognised += 1 }
                let (s, t) = try contrast(sample, motion, request)
                moving.response += s.norm / max(1e-6, t.norm)
                moving.agreement += s.dot(t) / max(1e-12, s.norm * t.norm)
            }
            progress?(i + 1, count)
        }
        let n = Double(max(1, count))
        var result = PriorScore(samples: count, seed: seed, steps: steps, guidanceScale: guidanceScale, kind: Double(hits.kind) / n,
                          mainColor: Double(hits.main) / n, secondColor: hits.secondNamed > 0 ? Double(hits.second) / Double(hits.secondNamed) : nil,
                          azimuth: Double(hits.azimuth) / n, elevation: Double(hits.elevation) / n, meanQualityLogLikelihood: qualitySum / n,
                          motion: moving.count == 0 ? nil : MotionScore(samples: moving.count, recognised: Double(moving.recognised) / Double(moving.count),
                                                                        response: moving.response / Double(moving.count),
                                                                        agreement: moving.agreement / Double(moving.count)))
        result.azimuthByKind = byKind.mapValues { Double($0.hits) / Double(max(1, $0.count)) }
        return result
    }

    /// The change between the motion's contrast times in the prior's samples (same noise) and in the
    /// ground truth, as flat display-value vectors.
    static func motionContrast(prior: PriorPipeline, sample: ToySample, motion: ToyMotion,
                               request: SampleRequest) throws -> (sampled: MotionDelta, truth: MotionDelta) {
        let size = prior.imageSize.width
        var frames: [(sampled: [Float], truth: [Float])] = []
        for time in [motion.contrastTimes.0, motion.contrastTimes.1] {
            var posed = sample, timed = request
            posed.time = time
            timed.view = posed.view
            let drawn = PriorPipeline.images(prior.pixels(try prior.sample(timed)))[0]
            frames.append((drawn.pixels, posed.render(size: size).pixels))
        }
        return (MotionDelta(frames[0].sampled, frames[1].sampled), MotionDelta(frames[0].truth, frames[1].truth))
    }

    /// a − b as a vector.
    struct MotionDelta {
        var values: [Double]
        init(_ a: [Float], _ b: [Float]) { values = zip(a, b).map { Double($0 - $1) } }
        var norm: Double { values.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        func dot(_ other: MotionDelta) -> Double { zip(values, other.values).reduce(0) { $0 + $1.0 * $1.1 } }
    }
}
