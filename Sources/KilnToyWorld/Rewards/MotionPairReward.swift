import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// A reward model that sees two frames of one object from one camera, the earlier one first, and
/// says which toy motion (or none) takes the first to the second.
///
/// One frame cannot tell a motion's phase from the camera: a spun object looks like a still one
/// seen from elsewhere, a bounce like a change of elevation (a single-frame motion-phase model
/// reached 0.38 held-out accuracy). Two frames from the same camera cancel the camera out: what
/// differs between them is the motion. Its reward log p(the caption's motion | I(τa), I(τb)) is
/// differentiable in both frames, so 4D distillation can push a cloud's motion towards the one its
/// caption names even where the prior's time conditioning is weak.
///
///     input [N, 6, S, S]: the two frames' RGB in [0, 1], stacked;  classes: still + ToyMotion
public final class MotionPairReward {
    public static let kind = "motion_pair"
    public static let classes = ["still"] + ToyMotion.allCases.map(\.rawValue)
    /// τb − τa of the training pairs.
    public static let gaps: ClosedRange<Float> = 0.15...0.35
    /// The least pose change (`ToyMotion.poseChange`) a moving training pair shows; pairs whose
    /// frames happen to coincide (a bounce's way up and way down at one height) are redrawn.
    public static let leastPoseChange: Float = 0.1

    public let net: RewardNet

    public init(net: RewardNet) {
        precondition(net.inputChannels == 6 && net.heads.map(\.classes) == [Self.classes], "MotionPairReward needs a 6-channel net with the motion head")
        self.net = net
    }

    public convenience init(imageSize: Int = 32, width: Int = 32, seed: UInt64 = 0) {
        var rng = RNG(seed: seed)
        self.init(net: RewardNet(heads: [RewardNet.Head(name: "motion", classes: Self.classes)], width: width, imageSize: imageSize,
                                 inputChannels: 6, rng: &rng))
    }

    public var imageSize: Int { net.imageSize }

    /// The class of a caption's motion (0: still).
    public static func label(_ motion: ToyMotion?) -> Int { motion.map { 1 + ToyMotion.allCases.firstIndex(of: $0)! } ?? 0 }

    /// Training pair `index` of the set drawn with `seed`: a toy sample (moving with probability
    /// 5/6, so that the six classes are equally common) rendered at τa and τb = τa + gap from its
    /// camera. `[6, S, S]` values in [0, 1] and the class.
    public static func pair(seed: UInt64, index: Int, size: Int) -> (pixels: [Float], label: Int) {
        var options = ToySample.Options()
        options.motionProbability = 5.0 / 6
        var sample = ToySample(seed: seed, index: index, options: options)
        var rng = RNG(seed: seed).split(UInt64(index)).split(11)
        var times: (Float, Float) = (0, 0)
        if let motion = sample.motion {
            for _ in 0..<32 {
                let gap = rng.uniform(gaps)
                let a = rng.uniform(0...(1 - gap))
                times = (a, a + gap)
                if motion.poseChange(from: a, to: a + gap) >= leastPoseChange { break }
            }
        }
        let pictures = [times.0, times.1].map { tau -> Image in
            if sample.motion != nil { sample.time = tau }
            return sample.render(size: size)
        }
        return (stacked(pictures[0], pictures[1]), label(sample.motion))
    }

    /// Two `[S, S, ≥3]` pictures, the earlier first, as the model's `[6, S, S]` input: RGB planes
    /// clamped to [0, 1].
    public static func stacked(_ early: Image, _ late: Image) -> [Float] {
        precondition(early.width == late.width && early.height == late.height && early.channels >= 3 && late.channels >= 3,
                     "MotionPairReward.stacked: two RGB pictures of one size")
        let area = early.width * early.height
        var pixels = [Float](repeating: 0, count: 6 * area)
        for (k, picture) in [early, late].enumerated() {
            for p in 0..<area {
                for c in 0..<3 { pixels[(3 * k + c) * area + p] = min(1, max(0, picture.pixels[p * picture.channels + c])) }
            }
        }
        return pixels
    }

    /// Pairs `indices` as a batch `[n, 6, S, S]` and their classes.
    public static func batch(seed: UInt64, indices: [Int], size: Int, threads: Int = Parallel.defaultThreadCount) -> (pairs: Tensor, labels: [Int]) {
        let plane = 6 * size * size
        var values = [Float](repeating: 0, count: indices.count * plane)
        var labels = [Int](repeating: 0, count: indices.count)
        values.withUnsafeMutableBufferPointer { v in
            nonisolated(unsafe) let out = v.baseAddress!
            labels.withUnsafeMutableBufferPointer { l in
                nonisolated(unsafe) let labelsOut = l.baseAddress!
                parallelFor(indices.count, threads: threads) { range in
                    for j in range {
                        let (pixels, label) = pair(seed: seed, index: indices[j], size: size)
                        for i in 0..<plane { out[j * plane + i] = pixels[i] }
                        labelsOut[j] = label
                    }
                }
            }
        }
        return (Tensor(shape: [indices.count, 6, size, size], storage: values), labels)
    }

    /// log p(class `target` | pair) for pairs `[N, 6, S, S]`, and its gradient with respect to them.
    public func logLikelihood(_ pairs: Tensor, target: Int) -> (reward: [Float], gradient: Tensor) {
        let (reward, gradient) = KilnToyWorld.logLikelihood(net, images: pairs, targets: [target])
        return (reward, gradient)
    }

    /// Class probabilities `[N, 6]` of pairs.
    public func probabilities(_ pairs: Tensor) -> [[Float]] {
        let logP = RewardNet.logSoftmax(net.forward(pairs)[0])
        let k = Self.classes.count
        return (0..<pairs.shape[0]).map { r in (0..<k).map { Foundation.exp(logP.storage[r * k + $0]) } }
    }

    /// Accuracy on pairs 0..<count drawn with `seed`, overall and per class.
    public func accuracy(seed: UInt64, count: Int) -> (overall: Double, perClass: [String: Double]) {
        var correct = [Int](repeating: 0, count: Self.classes.count), seen = correct
        for start in stride(from: 0, to: count, by: 64) {
            let (pairs, labels) = Self.batch(seed: seed, indices: Array(start..<min(count, start + 64)), size: imageSize)
            for (label, predicted) in zip(labels, RewardNet.predictions(net.forward(pairs)[0])) {
                seen[label] += 1
                if label == predicted { correct[label] += 1 }
            }
        }
        let perClass = Dictionary(uniqueKeysWithValues: Self.classes.indices.map { (Self.classes[$0], Double(correct[$0]) / Double(max(1, seen[$0]))) })
        return (Double(correct.reduce(0, +)) / Double(max(1, seen.reduce(0, +))), perClass)
    }

    /// The weights as safetensors (F32), with the metadata `load` checks.
    public func encoded() throws -> SafeTensorsWriter {
        var writer = SafeTensorsWriter(metadata: ["kiln_reward": Self.kind, "classes": Self.classes.joined(separator: ","),
                                                  "width": "\(net.width)", "image_size": "\(net.imageSize)", "input_channels": "6"])
        for (name, p) in net.namedParameters { try writer.add(name, shape: p.shape, values: p.value.storage) }
        return writer
    }

    /// Loads a model written by `encoded()` (`kiln train-motion-reward`).
    public static func load(_ url: URL) throws -> MotionPairReward {
        let file = try SafeTensorsFile(contentsOf: url)
        guard file.metadata["kiln_reward"] == kind, file.metadata["classes"] == classes.joined(separator: ","),
              let width = file.metadata["width"].flatMap({ Int($0) }), let size = file.metadata["image_size"].flatMap({ Int($0) }),
              size > 0, size % 8 == 0, (1...1024).contains(width) else {
            throw PriorConfigError(source: url.path, key: "__metadata__", problem: "is not a Kiln motion-pair reward model",
                                   fix: "write it with kiln train-motion-reward")
        }
        let model = MotionPairReward(imageSize: size, width: width)
        for (name, p) in model.net.namedParameters { p.load(Tensor(shape: p.shape, storage: try file.expect(name, shape: p.shape)), name: name) }
        return model
    }
}

/// Trains a `MotionPairReward` on pairs rendered as it goes (AdamW, cross-entropy).
public final class MotionPairTrainer {
    public let model: MotionPairReward
    let optimizer: Adam
    let seed: UInt64
    public private(set) var step = 0

    public init(imageSize: Int = 32, width: Int = 32, learningRate: Double = 2e-3, seed: UInt64 = 0) {
        model = MotionPairReward(imageSize: imageSize, width: width, seed: seed)
        optimizer = Adam(parameters: model.net.parameters, configuration: .adamW(learningRate: learningRate, weightDecay: 1e-4))
        self.seed = seed
    }

    /// One step on a batch of fresh pairs (each index is drawn once: the pair set is unbounded);
    /// returns the loss.
    @discardableResult
    public func trainStep(batchSize: Int) -> Float {
        let indices = (0..<batchSize).map { step * batchSize + $0 }
        step += 1
        let (pairs, labels) = MotionPairReward.batch(seed: seed, indices: indices, size: model.imageSize)
        return model.net.trainingStep(pairs, targets: labels.map { [$0] }, optimizer: optimizer)
    }

    /// Accuracy on `count` pairs drawn with another seed, overall and per class.
    public func accuracy(holdoutSeed: UInt64, count: Int) -> (overall: Double, perClass: [String: Double]) {
        model.accuracy(seed: holdoutSeed, count: count)
    }
}

extension ToyMotion {
    /// How far the motion carries a unit object between two times: the mean distance the corners
    /// of the box [−½, ½] × [0, 1] × [−½, ½] move (world units; the toy objects are about that size).
    public func poseChange(from a: Float, to b: Float) -> Float {
        let (la, ta) = transform(at: a), (lb, tb) = transform(at: b)
        var total: Float = 0
        for x in [Float(-0.5), 0.5] { for y in [Float(0), 1] { for z in [Float(-0.5), 0.5] {
            let p = SIMD3(x, y, z)
            total += length((la * p + ta) - (lb * p + tb))
        } } }
        return total / 8
    }

    /// The time paired with `time` for the motion-pair reward: of τ ± 0.15, ± 0.25 and ± 0.35 inside
    /// [0, 1], the one the motion moves the object most from τ. The pair in time order.
    public func contrastPair(for time: Float) -> (Float, Float) {
        let candidates = [0.25, -0.25, 0.15, -0.15, 0.35, -0.35].map { time + Float($0) }.filter { (0...1).contains($0) }
        let partner = candidates.max { poseChange(from: time, to: $0) < poseChange(from: time, to: $1) } ?? min(1, time + 0.25)
        return partner < time ? (partner, time) : (time, partner)
    }
}
