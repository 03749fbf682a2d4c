import KilnNN

/// A reward `kiln tune-prior` optimises, scored on the prior's samples. Some rewards judge one
/// image (the view, the alignment with the caption, the quality); others judge linked samples —
/// the same noise drawn under several conditions, such as two times of a motion or four azimuths
/// of one object — and give each sample of a link the link's score.
///
/// A reward is one type conforming to this protocol plus one line in the registry of the reward
/// models that implement it (the toy world's `TuningRewardRegistry`).
public protocol SampleReward {
    /// The name on the command line (`--reward NAME:WEIGHT`).
    var name: String { get }
    /// Samples per link (1 for rewards of single images).
    var links: Int { get }
    /// Rewards of one link group link the same conditions the same way, so they can share
    /// samples in one mix (the default: the reward's name, a group of its own).
    var linkGroup: String { get }
    /// The `links` conditions one condition expands to; they are sampled from shared noise.
    func linked(_ condition: TuningCondition) -> [TuningCondition]
    /// Rewards of samples laid out in links of `links` (sample b's condition is `conditions[b]`),
    /// display images `[B, 3, H, W]` in [0, 1]; with `gradient`, ∂(Σ rewards)/∂images (nil when
    /// the reward is not differentiable).
    func score(_ conditions: [TuningCondition], images: Tensor, gradient: Bool) throws -> (rewards: [Float], gradient: Tensor?)
}

extension SampleReward {
    public var links: Int { 1 }
    public var linkGroup: String { name }
    public func linked(_ condition: TuningCondition) -> [TuningCondition] { [condition] }
}

/// A weighted sum of `SampleReward`s, r = Σ_k w_k·r_k, as one `TuningReward`.
public struct SampleRewardMix {
    public var terms: [(reward: any SampleReward, weight: Float)]

    /// - Throws: `TuningError.invalidSetting` when two terms link samples differently (in
    ///   different link groups: their samples cannot be shared).
    public init(_ terms: [(reward: any SampleReward, weight: Float)]) throws {
        let linking = terms.filter { $0.reward.links > 1 }
        if Set(linking.map(\.reward.linkGroup)).count > 1 {
            throw TuningError.invalidSetting("the rewards \(linking.map(\.reward.name).joined(separator: " and ")) each link their own samples; tune with one of them at a time")
        }
        self.terms = terms
    }

    public var description: String { terms.map { "\($0.reward.name):\($0.weight)" }.joined(separator: ",") }

    /// Each term's rewards of the samples, and the weighted total with its gradient when asked.
    public func evaluate(_ conditions: [TuningCondition], images: Tensor, gradient: Bool) throws -> (total: [Float], parts: [String: [Float]], gradient: Tensor?) {
        var total = [Float](repeating: 0, count: conditions.count), parts: [String: [Float]] = [:]
        var dImages: [Float]? = gradient ? [Float](repeating: 0, count: images.count) : nil
        for (reward, weight) in terms {
            let (r, g) = try reward.score(conditions, images: images, gradient: gradient)
            precondition(r.count == conditions.count, "SampleRewardMix: \(reward.name) returned \(r.count) rewards for \(conditions.count) samples")
            parts[reward.name] = r
            for i in r.indices { total[i] += weight * r[i] }
            if gradient {
                guard let g else { throw TuningError.invalidSetting("the \(reward.name) reward gives no image gradient; use --method ddpo, grpo or dpo with it") }
                for i in g.storage.indices { dImages![i] += weight * g.storage[i] }
            }
        }
        return (total, parts, dImages.map { Tensor(shape: images.shape, storage: $0) })
    }

    /// The mix as the tuners take it: links from the first linking term (every linking term of a
    /// mix is in one link group, so they link alike).
    public var tuningReward: TuningReward { tuningReward(recording: nil) }

    /// The mix as the tuners take it, each scored batch's per-term means kept in `means`.
    public func tuningReward(recording means: RewardTermMeans?) -> TuningReward {
        let linking = terms.first { $0.reward.links > 1 }?.reward
        return TuningReward(score: { conditions, images in
                                let e = try evaluate(conditions, images: images, gradient: false)
                                means?.record(e.parts)
                                return e.total
                            },
                            scoreWithGradient: { conditions, images in
                                let e = try evaluate(conditions, images: images, gradient: true)
                                means?.record(e.parts)
                                return (e.total, e.gradient!)
                            },
                            links: linking?.links ?? 1,
                            linked: { linking?.linked($0) ?? [$0] })
    }
}

/// Each reward term's mean over the last batch a `SampleRewardMix` scored for a tuner (every
/// method scores one batch an epoch): what `kiln tune-prior` logs and plots per epoch beside
/// the weighted total.
public final class RewardTermMeans {
    /// Term name → mean reward of the last batch (empty before the first).
    public private(set) var last: [String: Float] = [:]
    public init() {}
    func record(_ parts: [String: [Float]]) { last = parts.mapValues { $0.reduce(0, +) / Float(max(1, $0.count)) } }
}
