import Foundation
import KilnNN
import KilnPrior

/// The toy world's rewards for `kiln tune-prior`, by name. Adding a reward is one `SampleReward`
/// type and one line here.
public enum TuningRewardRegistry {
    /// Each reward's maker, given a folder written by `kiln train-rewards` (and
    /// `kiln train-motion-reward`).
    public static let makers: [(name: String, make: @Sendable (URL) throws -> any SampleReward)] = [
        ("view", { try ImageModelReward(.view, folder: $0) }),
        ("alignment", { try ImageModelReward(.alignment, folder: $0) }),
        ("quality", { try ImageModelReward(.quality, folder: $0) }),
        ("motion", { try MotionSampleReward(folder: $0) }),
        ("motion-change", { _ in MotionChangeReward() }),
        ("consistency", { _ in ConsistencySampleReward() }),
    ]

    public static var names: [String] { makers.map(\.name) }

    /// Parses `name:weight[,name:weight…]` (a bare name has weight 1; zero weights are dropped).
    /// - Throws: `RewardError` naming the part that is not understood.
    public static func weights(parsing text: String) throws -> [(name: String, weight: Float)] {
        var out: [(String, Float)] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard pieces.count <= 2, names.contains(pieces[0]) else {
                throw RewardError("'\(part)' is not a reward; use " + names.joined(separator: ", ") + ", each optionally :WEIGHT")
            }
            guard let weight = pieces.count == 2 ? Float(pieces[1]) : 1, weight.isFinite else { throw RewardError("'\(part)': the weight is not a number") }
            guard !out.contains(where: { $0.0 == pieces[0] }) else { throw RewardError("'\(pieces[0])' is given twice") }
            if weight != 0 { out.append((pieces[0], weight)) }
        }
        guard !out.isEmpty else { throw RewardError("no reward with a non-zero weight; use e.g. view:1,alignment:1") }
        return out
    }

    /// The mix `text` names, its models loaded from `folder`.
    /// - Throws: `RewardError` for a bad mix or a folder without a named model; `TuningError`
    ///   when two rewards link samples differently.
    public static func mix(_ text: String, folder: URL) throws -> SampleRewardMix {
        try SampleRewardMix(try weights(parsing: text).map { name, weight in
            let make = makers.first { $0.name == name }!.make
            do {
                return (try make(folder), weight)
            } catch let error as SafeTensorsError {
                throw RewardError("\(folder.path) has no usable \(name) model (\(error)); train it with kiln train-rewards\(name == "motion" ? " / kiln train-motion-reward" : "") or drop \(name) from --reward")
            }
        })
    }
}

/// A reward of single images from one of `RewardModels`' nets (view, alignment or quality), each
/// image judged for its own caption and camera, at the model's size (the prior's images are
/// averaged down to it).
public struct ImageModelReward: SampleReward {
    public let term: RewardTerm
    public let models: RewardModels

    public init(_ term: RewardTerm, folder: URL) throws {
        let url = folder.appendingPathComponent("\(term.rawValue).safetensors")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw RewardError("\(folder.path) has no \(term.rawValue) model (\(term.rawValue).safetensors); train it with kiln train-rewards or drop \(term.rawValue) from --reward")
        }
        (self.term, models) = (term, try RewardModels(folder: folder, kinds: [term]))
    }

    public var name: String { term.rawValue }

    public func score(_ conditions: [TuningCondition], images: Tensor, gradient: Bool) throws -> (rewards: [Float], gradient: Tensor?) {
        let size = models.imageSize
        try checkPooling(images, to: size)
        let judged = PriorImage.pooled(images, to: size), plane = 3 * size * size
        var rewards: [Float] = [], dJudged: [Float] = []
        for (b, c) in conditions.enumerated() {
            let one = Tensor(shape: [1, 3, size, size], storage: Array(judged.storage[(b * plane)..<((b + 1) * plane)]))
            let e = ToyImageRewards(models: models, caption: ToyCaption(c.prompt)).evaluate(RewardMix([term: 1]), images: one, views: [c.view], gradient: gradient)
            rewards.append(e.total[0])
            dJudged += e.imageGradient
        }
        return (rewards, gradient ? PriorImage.pooledBackward(Tensor(shape: judged.shape, storage: dJudged), from: images.shape[2]) : nil)
    }
}

/// The motion reward: two samples of a condition from the same noise at the two times the
/// caption's motion moves the object most between (`ToyMotion.contrastPair`; a still caption's
/// pair is the condition twice), scored by the motion-pair model as log p(the caption's motion |
/// both frames). It trains the prior's time conditioning: a moving caption scores high only when
/// the two times draw the object moved as its motion moves it.
public struct MotionSampleReward: SampleReward {
    public let model: MotionPairReward

    public init(folder: URL) throws {
        let url = folder.appendingPathComponent("motion_pair.safetensors")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw RewardError("\(folder.path) has no motion-pair model (motion_pair.safetensors); train it with kiln train-motion-reward --out \(folder.path) or drop motion from --reward")
        }
        model = try MotionPairReward.load(url)
    }

    public var name: String { "motion" }
    public var links: Int { 2 }
    public var linkGroup: String { "motion-pair" }

    public func linked(_ condition: TuningCondition) -> [TuningCondition] { Self.linkedPair(condition) }

    /// A condition's pair: its caption at the two times of `ToyMotion.contrastPair` (a still
    /// caption's: the condition twice).
    static func linkedPair(_ condition: TuningCondition) -> [TuningCondition] {
        guard let motion = ToyCaption(condition.prompt).motion else { return [condition, condition] }
        let (a, b) = motion.contrastPair(for: condition.view.time ?? 0.5)
        var early = condition.view, late = condition.view
        (early.time, late.time) = (a, b)
        return [(condition.prompt, early), (condition.prompt, late)]
    }

    public func score(_ conditions: [TuningCondition], images: Tensor, gradient: Bool) throws -> (rewards: [Float], gradient: Tensor?) {
        let size = model.imageSize
        try checkPooling(images, to: size)
        precondition(conditions.count % 2 == 0, "MotionSampleReward: samples come in pairs")
        let judged = PriorImage.pooled(images, to: size), plane = 3 * size * size
        var rewards: [Float] = [], dJudged = [Float](repeating: 0, count: judged.count)
        for pair in 0..<(conditions.count / 2) {
            // [1, 6, S, S]: the earlier frame's channels, then the later's.
            let frames = Tensor(shape: [1, 6, size, size], storage: Array(judged.storage[(2 * pair * plane)..<((2 * pair + 2) * plane)]))
            let (r, g) = model.logLikelihood(frames, target: MotionPairReward.label(ToyCaption(conditions[2 * pair].prompt).motion))
            rewards += [r[0], r[0]]
            // Σ rewards counts the pair's score twice.
            for i in 0..<(2 * plane) { dJudged[2 * pair * plane + i] = 2 * g.storage[i] }
        }
        return (rewards, gradient ? PriorImage.pooledBackward(Tensor(shape: judged.shape, storage: dJudged), from: images.shape[2]) : nil)
    }
}

/// Refuses images that do not average down to a reward model's size.
func checkPooling(_ images: Tensor, to size: Int) throws {
    guard images.shape.count == 4, images.shape[2] == images.shape[3], images.shape[2] % size == 0 else {
        throw RewardError("the prior draws \(images.shape.dropFirst(2).map(String.init).joined(separator: "×")) images, which do not average down to the reward models' \(size)²; use reward models trained at a size that divides the prior's")
    }
}
