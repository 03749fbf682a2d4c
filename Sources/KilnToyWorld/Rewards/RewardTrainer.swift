import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// Trains one toy reward model (a term's `RewardNet`) on a data set (AdamW, cross-entropy summed over heads) and
/// measures its held-out accuracy per head.
public final class RewardTrainer {
    public let kind: RewardTerm
    public let net: RewardNet
    let optimizer: Adam
    var rng: RNG

    public init(kind: RewardTerm, width: Int = 32, imageSize: Int = 64, learningRate: Double = 2e-3, seed: UInt64 = 0) {
        self.kind = kind
        var r = RNG(seed: seed)
        net = RewardNet(heads: kind.heads, width: width, imageSize: imageSize, rng: &r)
        optimizer = Adam(parameters: net.parameters, configuration: .adamW(learningRate: learningRate, weightDecay: 1e-4))
        rng = r.split(7)
    }

    /// Images `[n, 3, S, S]` in [0, 1] from U8 samples.
    static func images(_ bytes: [UInt8], indices: [Int], size: Int) -> Tensor {
        let plane = 3 * size * size
        var values = [Float](repeating: 0, count: indices.count * plane)
        for (b, i) in indices.enumerated() { for j in 0..<plane { values[b * plane + j] = Float(bytes[i * plane + j]) / 255 } }
        return Tensor(shape: [indices.count, 3, size, size], storage: values)
    }

    /// A degraded copy of image `b` of the batch for the quality model: additive noise, shuffled
    /// 8×8 patches, or its left half spliced with the mirrored right half of another image.
    static func degrade(_ batch: inout [Float], _ b: Int, other: Int, size: Int, rng: inout RNG) {
        let plane = size * size, base = b * 3 * plane, otherBase = other * 3 * plane
        let original = Array(batch[base..<(base + 3 * plane)])
        switch rng.next() % 3 {
        case 0:
            let sigma = rng.uniform(0.08...0.3)
            for j in 0..<(3 * plane) { batch[base + j] = min(1, max(0, original[j] + sigma * rng.normal())) }
        case 1:
            let tiles = size / 8
            var order = Array(0..<(tiles * tiles))
            order.shuffle(using: &rng)
            for (to, from) in order.enumerated() {
                let (ty, tx) = to.quotientAndRemainder(dividingBy: tiles), (fy, fx) = from.quotientAndRemainder(dividingBy: tiles)
                for c in 0..<3 { for y in 0..<8 { for x in 0..<8 {
                    batch[base + c * plane + (ty * 8 + y) * size + tx * 8 + x] = original[c * plane + (fy * 8 + y) * size + fx * 8 + x]
                } } }
            }
        default:
            let otherImage = Array(batch[otherBase..<(otherBase + 3 * plane)])
            for c in 0..<3 { for y in 0..<size { for x in (size / 2)..<size {
                batch[base + c * plane + y * size + x] = otherImage[c * plane + y * size + (size - 1 - x)]
            } } }
        }
    }

    /// One step on a random batch of the data; returns the loss.
    @discardableResult
    public func trainStep(images bytes: [UInt8], records: [ToyRecord], size: Int, batchSize: Int) -> Float {
        let indices = (0..<batchSize).map { _ in Int(rng.next() % UInt64(records.count)) }
        var x = Self.images(bytes, indices: indices, size: size)
        var targets = indices.map { kind.targets(records[$0]) }
        if kind == .quality {
            var values = x.storage
            for b in 0..<batchSize where b % 2 == 1 {
                Self.degrade(&values, b, other: (b + 1) % batchSize, size: size, rng: &rng)
                targets[b] = [0]
            }
            x = Tensor(shape: x.shape, storage: values)
        }
        return net.trainingStep(x, targets: targets, optimizer: optimizer)
    }

    /// Accuracy per head (quality: on the held-out images and one degraded copy of each).
    public func accuracy(images bytes: [UInt8], records: [ToyRecord], size: Int) -> [String: Double] {
        var correct = [Int](repeating: 0, count: kind.heads.count), total = 0
        var r = RNG(seed: 99)  // the same degradations every time, independent of training
        for start in stride(from: 0, to: records.count, by: 64) {
            let indices = Array(start..<min(records.count, start + 64))
            var x = Self.images(bytes, indices: indices, size: size)
            var targets = indices.map { kind.targets(records[$0]) }
            if kind == .quality {
                var values = x.storage
                for b in 0..<indices.count where b % 2 == 1 {
                    Self.degrade(&values, b, other: (b + 1) % indices.count, size: size, rng: &r)
                    targets[b] = [0]
                }
                x = Tensor(shape: x.shape, storage: values)
            }
            let logits = net.forward(x)
            for (h, logit) in logits.enumerated() {
                for (b, predicted) in RewardNet.predictions(logit).enumerated() where predicted == targets[b][h] { correct[h] += 1 }
            }
            total += indices.count
        }
        return Dictionary(uniqueKeysWithValues: zip(kind.heads.map(\.name), correct.map { Double($0) / Double(max(1, total)) }))
    }

    /// The weights and the heads, as safetensors (F32).
    public func encoded() throws -> SafeTensorsWriter {
        let heads = String(decoding: try JSONEncoder().encode(net.heads), as: UTF8.self)
        var writer = SafeTensorsWriter(metadata: ["kiln_reward": kind.rawValue, "heads": heads, "width": "\(net.width)",
                                                  "image_size": "\(net.imageSize)"])
        for (name, p) in net.namedParameters { try writer.add(name, shape: p.shape, values: p.value.storage) }
        return writer
    }
}

extension RewardNet {
    /// Loads a reward model written by `RewardTrainer.encoded()`.
    /// - Throws: `PriorConfigError` when the file is not a Kiln reward model, `SafeTensorsError` for its tensors.
    public static func load(_ url: URL) throws -> (kind: RewardTerm, net: RewardNet) {
        let file = try SafeTensorsFile(contentsOf: url)
        guard let kindName = file.metadata["kiln_reward"], let kind = RewardTerm(rawValue: kindName),
              let width = file.metadata["width"].flatMap({ Int($0) }), let size = file.metadata["image_size"].flatMap({ Int($0) }) else {
            throw PriorConfigError(source: url.path, key: "__metadata__", problem: "is not a Kiln reward model", fix: "write it with kiln train-rewards")
        }
        var rng = RNG(seed: 0)
        let net = RewardNet(heads: kind.heads, width: width, imageSize: size, rng: &rng)
        for (name, p) in net.namedParameters { p.load(Tensor(shape: p.shape, storage: try file.expect(name, shape: p.shape)), name: name) }
        return (kind, net)
    }
}
