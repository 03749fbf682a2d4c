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

    /// Draws and scores. The reward models must take the prior's image size.
    /// - Parameters:
    ///   - rewards: the alignment, view and quality models.
    ///   - progress: called with (done, count).
    public static func measure(prior: PriorPipeline, rewards: [RewardTerm: RewardNet], count: Int, seed: UInt64, steps: Int,
                               guidanceScale: Double, progress: ((Int, Int) -> Void)? = nil) throws -> PriorScore {
        guard let alignment = rewards[.alignment], let view = rewards[.view], let quality = rewards[.quality] else {
            throw PriorConfigError(source: "rewards", key: nil, problem: "lacks one of alignment, view, quality", fix: "train them with kiln train-rewards")
        }
        let size = prior.imageSize
        guard size.height == size.width, alignment.imageSize == size.width, view.imageSize == size.width, quality.imageSize == size.width else {
            throw PriorConfigError(source: "rewards", key: "image_size", problem: "is \(alignment.imageSize)² but the prior draws \(size.height)×\(size.width)",
                                   fix: "train the reward models on a data set of the prior's size")
        }
        var hits = (kind: 0, main: 0, second: 0, secondNamed: 0, azimuth: 0, elevation: 0)
        var qualitySum = 0.0
        var moving = (count: 0, recognised: 0, response: 0.0, agreement: 0.0)
        for i in 0..<count {
            let sample = ToySample(seed: seed, index: i)
            let request = SampleRequest(prompt: sample.caption, count: 1, steps: steps, guidanceScale: guidanceScale, seed: seed &+ UInt64(i),
                                        view: sample.view)
            let x = try prior.sample(request)
            let image = PriorPipeline.displayValues(prior.pixels(x))
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
            if argmax(v[0]) == viewTargets[0] { hits.azimuth += 1 }
            if argmax(v[1]) == viewTargets[1] { hits.elevation += 1 }
            qualitySum += Double(RewardNet.logSoftmax(quality.forward(image)[0]).storage[1])
            if let motion = sample.motion {
                moving.count += 1
                if argmax(a[3]) == targets[3] { moving.recognised += 1 }
                let (s, t) = try motionContrast(prior: prior, sample: sample, motion: motion, request: request)
                moving.response += s.norm / max(1e-6, t.norm)
                moving.agreement += s.dot(t) / max(1e-12, s.norm * t.norm)
            }
            progress?(i + 1, count)
        }
        let n = Double(max(1, count))
        return PriorScore(samples: count, seed: seed, steps: steps, guidanceScale: guidanceScale, kind: Double(hits.kind) / n,
                          mainColor: Double(hits.main) / n, secondColor: hits.secondNamed > 0 ? Double(hits.second) / Double(hits.secondNamed) : nil,
                          azimuth: Double(hits.azimuth) / n, elevation: Double(hits.elevation) / n, meanQualityLogLikelihood: qualitySum / n,
                          motion: moving.count == 0 ? nil : MotionScore(samples: moving.count, recognised: Double(moving.recognised) / Double(moving.count),
                                                                        response: moving.response / Double(moving.count),
                                                                        agreement: moving.agreement / Double(moving.count)))
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
