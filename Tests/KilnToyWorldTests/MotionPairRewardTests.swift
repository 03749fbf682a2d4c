import Foundation
import KilnCore
import KilnNN
import KilnPrior
import Testing
@testable import KilnToyWorld

@Suite("Motion-pair reward")
struct MotionPairRewardTests {
    @Test("pairs: one camera, still objects twice the same picture, moving ones visibly moved; classes balanced; reproducible")
    func pairs() {
        var counts = [Int](repeating: 0, count: MotionPairReward.classes.count)
        var stillSeen = 0, movingSeen = 0
        for index in 0..<120 {
            let (pixels, label) = MotionPairReward.pair(seed: 3, index: index, size: 16)
            counts[label] += 1
            let plane = 3 * 16 * 16
            let difference = zip(pixels[0..<plane], pixels[plane...]).map { abs($0 - $1) }.reduce(0, +) / Float(plane)
            if label == 0 {
                #expect(difference == 0, "a still pair differs: \(difference)")
                stillSeen += 1
            } else if difference > 0.002 {
                movingSeen += 1
            }
            #expect(pixels.allSatisfy { (0...1).contains($0) })
        }
        #expect(counts.allSatisfy { $0 >= 8 }, "classes \(counts)")
        // Spinning round kinds (a snowman turning) can look the same; everything else moves.
        #expect(Double(movingSeen) >= 0.85 * Double(120 - stillSeen), "\(movingSeen) of \(120 - stillSeen) moving pairs differ")
        #expect(MotionPairReward.pair(seed: 3, index: 7, size: 16).pixels == MotionPairReward.pair(seed: 3, index: 7, size: 16).pixels)
    }

    @Test("pose change and contrast pairs: a bounce is never paired with its own height")
    func contrast() {
        #expect(ToyMotion.bouncing.poseChange(from: 0.125, to: 0.375) < 1e-6)  // the way up and the way down
        for motion in ToyMotion.allCases {
            for tau in stride(from: Float(0), through: 1, by: 0.0625) {
                let (a, b) = motion.contrastPair(for: tau)
                #expect(a < b && (a == tau || b == tau) && a >= 0 && b <= 1)
                #expect(motion.poseChange(from: a, to: b) > 0.1, "\(motion) at \(tau): \(a) → \(b)")
            }
        }
    }

    @Test("the reward's gradient with respect to both frames matches finite differences")
    func gradient() {
        let model = MotionPairReward(imageSize: 16, width: 8, seed: 2)
        var rng = RNG(seed: 4)
        let pairs = Tensor.uniform([2, 6, 16, 16], in: 0...1, rng: &rng)
        let (reward, g) = model.logLikelihood(pairs, target: MotionPairReward.label(.bouncing))
        #expect(reward.count == 2 && reward.allSatisfy { $0 < 0 } && g.shape == [2, 6, 16, 16])
        let direction = Tensor.random(pairs.shape, rng: &rng)
        func total(_ e: Float) -> Double { model.logLikelihood(pairs + e * direction, target: 1).reward.reduce(0.0) { $0 + Double($1) } }
        let numeric = (4 * (total(2e-3) - total(-2e-3)) / 4e-3 - (total(4e-3) - total(-4e-3)) / 8e-3) / 3
        let exact = zip(g.storage, direction.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(numeric - exact) / max(abs(exact), 0.05) < 2e-2, "analytic \(exact), finite differences \(numeric)")
        // Both frames carry gradient: the model reads the pair, not one picture.
        let plane = 6 * 16 * 16 / 2
        #expect(g.storage[0..<plane].contains { $0 != 0 } && g.storage[plane..<(2 * plane)].contains { $0 != 0 })
    }

    @Test("a short training beats chance on held-out pairs; the weights round-trip; other files are refused")
    func training() throws {
        let trainer = MotionPairTrainer(imageSize: 16, width: 8, learningRate: 3e-3, seed: 1)
        let losses = (0..<60).map { _ in trainer.trainStep(batchSize: 24) }
        #expect(losses.suffix(10).reduce(0, +) < losses.prefix(10).reduce(0, +), "\(losses)")
        let (accuracy, perClass) = trainer.accuracy(holdoutSeed: 77, count: 192)
        #expect(accuracy > 0.4, "held-out accuracy \(accuracy) (chance 1/6): \(perClass)")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-motion-pair-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try trainer.model.encoded().write(to: url)
        let loaded = try MotionPairReward.load(url)
        let (pairs, _) = MotionPairReward.batch(seed: 5, indices: [0, 1, 2], size: 16)
        #expect(loaded.net.forward(pairs) == trainer.model.net.forward(pairs))
        let single = RewardTrainer(kind: .view, width: 8, imageSize: 16, seed: 1)
        try single.encoded().write(to: url)
        #expect { try MotionPairReward.load(url) } throws: { "\($0)".contains("train-motion-reward") }
    }

    static let shipped = RewardTests.assets.appendingPathComponent("motion_pair.safetensors")

    @Test("the shipped motion-pair model names the motion of held-out pairs", .enabled(if: FileManager.default.fileExists(atPath: shipped.path)))
    func shippedModel() throws {
        let model = try MotionPairReward.load(Self.shipped)
        let (accuracy, perClass) = model.accuracy(seed: 424_242, count: 240)
        #expect(accuracy >= 0.9, "held-out accuracy \(accuracy): \(perClass)")
        #expect(perClass.values.allSatisfy { $0 >= 0.75 }, "\(perClass)")
    }
}
