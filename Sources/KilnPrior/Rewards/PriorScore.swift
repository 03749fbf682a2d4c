import Foundation
import KilnCore
import KilnNN

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

    /// Draws and scores. The reward models must take the prior's image size.
    /// - Parameters:
    ///   - rewards: the alignment, view and quality models.
    ///   - progress: called with (done, count).
    public static func measure(prior: PriorPipeline, rewards: [ToyRewardKind: RewardNet], count: Int, seed: UInt64, steps: Int,
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
        for i in 0..<count {
            let sample = ToySample(seed: seed, index: i)
            let request = SampleRequest(prompt: sample.caption, count: 1, steps: steps, guidanceScale: guidanceScale, seed: seed &+ UInt64(i),
                                        view: sample.view)
            let x = try prior.sample(request)
            let image = PriorPipeline.displayValues(x)
            func argmax(_ logits: Tensor) -> Int { RewardNet.predictions(logits)[0] }
            let a = alignment.forward(image), v = view.forward(image)
            let record = ToyRecord(index: i, sample: sample)
            let targets = ToyRewardKind.alignment.targets(record), viewTargets = ToyRewardKind.view.targets(record)
            if argmax(a[0]) == targets[0] { hits.kind += 1 }
            if argmax(a[1]) == targets[1] { hits.main += 1 }
            if sample.namesSecondColor {
                hits.secondNamed += 1
                if argmax(a[2]) == targets[2] { hits.second += 1 }
            }
            if argmax(v[0]) == viewTargets[0] { hits.azimuth += 1 }
            if argmax(v[1]) == viewTargets[1] { hits.elevation += 1 }
            qualitySum += Double(RewardNet.logSoftmax(quality.forward(image)[0]).storage[1])
            progress?(i + 1, count)
        }
        let n = Double(max(1, count))
        return PriorScore(samples: count, seed: seed, steps: steps, guidanceScale: guidanceScale, kind: Double(hits.kind) / n,
                          mainColor: Double(hits.main) / n, secondColor: hits.secondNamed > 0 ? Double(hits.second) / Double(hits.secondNamed) : nil,
                          azimuth: Double(hits.azimuth) / n, elevation: Double(hits.elevation) / n, meanQualityLogLikelihood: qualitySum / n)
    }
}
