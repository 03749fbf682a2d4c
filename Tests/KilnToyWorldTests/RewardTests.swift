import Foundation
import KilnCore
import KilnNN
import KilnPrior
import Testing
@testable import KilnToyWorld

@Suite("Reward models")
struct RewardTests {
    static let assets = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("assets/rewards")

    @Test("captions parse into the attributes they name")
    func captionParsing() {
        #expect(ToyCaption("a blue house with a yellow roof") == ToyCaption(kind: .house, mainColor: .blue, secondColor: .yellow, motion: nil))
        #expect(ToyCaption("an orange chair with brown legs spinning") == ToyCaption(kind: .chair, mainColor: .orange, secondColor: .brown, motion: .spinning))
        #expect(ToyCaption("a duck") == ToyCaption(kind: .duck, mainColor: nil, secondColor: nil, motion: nil))
        #expect(ToyCaption("A Red Snowman!") == ToyCaption(kind: .snowman, mainColor: .red, secondColor: nil, motion: nil))
    }

    @Test("view bins: azimuth to the nearest 45°, elevation in four bands")
    func bins() {
        #expect([0, 22, 23, 44, 90, 180, 337, 338, 360, -45].map(RewardTerm.azimuthBin) == [0, 0, 1, 1, 2, 4, 7, 0, 0, 7])
        #expect([-10, 7, 8, 24, 26, 43, 60, 90].map(RewardTerm.elevationBin) == [0, 0, 1, 1, 2, 3, 3, 3])
    }

    @Test("the reward's image gradient and the cross-entropy gradient match finite differences")
    func gradients() {
        var rng = RNG(seed: 5)
        let net = RewardNet(heads: RewardTerm.alignment.heads, width: 8, imageSize: 16, rng: &rng)
        let images = Tensor.uniform([2, 3, 16, 16], in: 0...1, rng: &rng)
        let caption = ToyCaption("a red duck with an orange beak bouncing")
        let (reward, gradient) = alignmentReward(net, images: images, caption: caption)
        #expect(reward.count == 2 && reward.allSatisfy { $0 < 0 })
        let direction = Tensor.random(images.shape, rng: &rng)
        func total(_ e: Float) -> Double { alignmentReward(net, images: images + e * direction, caption: caption).reward.reduce(0.0) { $0 + Double($1) } }
        let numeric = (4 * (total(2e-3) - total(-2e-3)) / 4e-3 - (total(4e-3) - total(-4e-3)) / 8e-3) / 3
        let exact = zip(gradient.storage, direction.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(numeric - exact) / max(abs(exact), 0.05) < 2e-2, "analytic \(exact), finite differences \(numeric)")
        // Cross-entropy: gradient = (softmax − one-hot)/N, rows of ignored targets zero.
        let logits = Tensor(shape: [2, 3], storage: [1, 2, 3, 0, 0, 0])
        let (loss, g) = RewardNet.crossEntropy(logits, targets: [2, -1])
        let p2 = exp(Float(3)) / (exp(Float(1)) + exp(Float(2)) + exp(Float(3)))
        #expect(abs(loss + log(p2)) < 1e-5 && abs(g.storage[2] - (p2 - 1)) < 1e-5 && g.storage[3...].allSatisfy { $0 == 0 })
    }

    @Test("training lowers the loss; the weights round-trip through safetensors")
    func training() throws {
        let shard = ToyDataset.renderShard(seed: 8, indices: 0..<64, size: 16)
        let bytes = shard.images.map { UInt8($0) }
        let trainer = RewardTrainer(kind: .view, width: 8, imageSize: 16, seed: 1)
        let losses = (0..<40).map { _ in trainer.trainStep(images: bytes, records: shard.records, size: 16, batchSize: 16) }
        #expect(losses.suffix(8).reduce(0, +) < losses.prefix(8).reduce(0, +), "\(losses)")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-reward-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try trainer.encoded().write(to: url)
        let (kind, net) = try RewardNet.load(url)
        let x = RewardTrainer.images(bytes, indices: [0, 1], size: 16)
        #expect(kind == .view && net.forward(x) == trainer.net.forward(x))
    }

    /// Held-out accuracy floors for the shipped models (assets/rewards/rewards.json has the measured values).
    static let floors: [String: [String: Double]] = [
        "alignment": ["kind": 0.9, "main_color": 0.8, "motion": 0.5],
        "view": ["azimuth": 0.5, "elevation": 0.5],
        "quality": ["real": 0.85],
    ]

    @Test("the shipped reward models beat their floors on a fixed held-out shard", .enabled(if: FileManager.default.fileExists(atPath: assets.appendingPathComponent("rewards.json").path)))
    func shipped() throws {
        let nets = try RewardTerm.allCases.map { try RewardNet.load(Self.assets.appendingPathComponent("\($0.rawValue).safetensors")) }
        let size = nets[0].net.imageSize
        #expect(nets.allSatisfy { $0.net.imageSize == size })
        let held = ToyDataset.renderShard(seed: 424_242, indices: 0..<200, size: size)
        let bytes = held.images.map { UInt8($0) }
        for (kind, (loadedKind, net)) in zip(RewardTerm.allCases, nets) {
            #expect(loadedKind == kind)
            let trainer = RewardTrainer(kind: kind, imageSize: size)
            for (name, p) in trainer.net.namedParameters { p.load(net.parameter(named: name)!.value) }
            let accuracy = trainer.accuracy(images: bytes, records: held.records, size: size)
            for (head, floor) in Self.floors[kind.rawValue]! {
                #expect(accuracy[head]! >= floor, "\(kind) \(head): \(accuracy[head]!) < \(floor)")
            }
        }
    }

    @Test("scoring a prior: fractions in [0, 1], reproducible; reward models of another size are refused")
    func priorScore() throws {
        let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../KilnPriorTests/Fixtures/pipelines/tiny").standardizedFileURL
        let prior = try PriorPipeline(folder: tiny)
        var nets: [RewardTerm: RewardNet] = [:]
        for kind in RewardTerm.allCases {
            var rng = RNG(seed: 2)
            nets[kind] = RewardNet(heads: kind.heads, width: 8, imageSize: 16, rng: &rng)
        }
        let a = try PriorScore.measure(prior: prior, rewards: nets, count: 6, seed: 3, steps: 2, guidanceScale: 2)
        let b = try PriorScore.measure(prior: prior, rewards: nets, count: 6, seed: 3, steps: 2, guidanceScale: 2)
        #expect(a == b && a.samples == 6)
        for value in [a.kind, a.mainColor, a.azimuth, a.elevation] + (a.secondColor.map { [$0] } ?? []) { #expect((0...1).contains(value)) }
        #expect(a.meanQualityLogLikelihood <= 0)
        // Time conditioning is measured on the captions that name a motion.
        let moving = (0..<12).filter { ToySample(seed: 3, index: $0).motion != nil }.count
        let timed = try PriorScore.measure(prior: prior, rewards: nets, count: 12, seed: 3, steps: 2, guidanceScale: 2)
        #expect(moving > 0 && timed.motion?.samples == moving)
        if let m = timed.motion { #expect((0...1).contains(m.recognised) && m.response >= 0 && (-1...1).contains(m.agreement)) }
        var rng = RNG(seed: 2)
        nets[.view] = RewardNet(heads: RewardTerm.view.heads, width: 8, imageSize: 64, rng: &rng)
        #expect { try PriorScore.measure(prior: prior, rewards: nets, count: 1, seed: 3, steps: 1, guidanceScale: 2) } throws: { "\($0)".contains("image_size") || "\($0)".contains("size") }
    }

    @Test("--reward parsing: weights, bare names, and errors that name the part")
    func mix() throws {
        let m = try RewardMix(parsing: "alignment:1,view:0.5")
        #expect(m.weights == [.alignment: 1, .view: 0.5] && m.description == "alignment:1.0,view:0.5")
        #expect(try RewardMix(parsing: "quality").weights == [.quality: 1])
        #expect(try RewardMix(parsing: "view:0").isEmpty)
        for bad in ["beauty:1", "view:x", "view:1,view:2", "view:1:2"] {
            #expect(throws: RewardError.self) { try RewardMix(parsing: bad) }
        }
        // Stored in config files as the command-line string.
        let encoded = try JSONEncoder().encode(m)
        let decoded = try JSONDecoder().decode(RewardMix.self, from: encoded)
        #expect(String(decoding: encoded, as: UTF8.self) == "\"alignment:1.0,view:0.5\"" && decoded == m)
    }
}
