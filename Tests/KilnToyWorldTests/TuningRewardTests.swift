import Foundation
import KilnCore
import KilnNN
import KilnPrior
import Testing
@testable import KilnToyWorld

@Suite("Rewards for kiln tune-prior")
struct TuningRewardTests {
    static let folder = RewardTests.assets

    /// Central differences of Σ rewards at a few pixels against the returned gradient.
    static func checkGradient(_ reward: any SampleReward, _ conditions: [TuningCondition], images: Tensor) throws {
        let (_, gradient) = try reward.score(conditions, images: images, gradient: true)
        let g = try #require(gradient)
        #expect(g.shape == images.shape)
        var rng = RNG(seed: 3)
        for _ in 0..<4 {
            let i = Int(rng.next() % UInt64(images.count)), h: Float = 1e-2
            var upValues = images.storage, downValues = images.storage
            upValues[i] += h
            downValues[i] -= h
            let up = Tensor(shape: images.shape, storage: upValues), down = Tensor(shape: images.shape, storage: downValues)
            let numeric = Double(try reward.score(conditions, images: up, gradient: false).rewards.reduce(0, +)
                - reward.score(conditions, images: down, gradient: false).rewards.reduce(0, +)) / Double(2 * h)
            #expect(abs(numeric - Double(g.storage[i])) < 0.05 * max(0.05, abs(numeric)), "\(reward.name) pixel \(i): numeric \(numeric), analytic \(g.storage[i])")
        }
    }

    static func images(_ count: Int, size: Int, seed: UInt64) -> Tensor {
        var rng = RNG(seed: seed)
        return Tensor(shape: [count, 3, size, size], storage: (0..<(count * 3 * size * size)).map { _ in 0.2 + 0.6 * rng.nextFloat() })
    }

    @Test("--reward parses names and weights against the registry and refuses what it does not know, by name")
    func parsing() throws {
        let w = try TuningRewardRegistry.weights(parsing: "view:1, motion:0.5,alignment,quality:0")
        #expect(w.map(\.name) == ["view", "motion", "alignment"] && w.map(\.weight) == [1, 0.5, 1])
        for (text, needle) in [("colour:1", "colour"), ("view:x", "not a number"), ("view,view:2", "twice"), ("view:0", "non-zero")] {
            #expect(throws: RewardError.self) { try TuningRewardRegistry.weights(parsing: text) }
            do { _ = try TuningRewardRegistry.weights(parsing: text) } catch { #expect("\(error)".contains(needle), "\(text): \(error)") }
        }
        #expect(throws: RewardError.self) { try TuningRewardRegistry.mix("view", folder: FileManager.default.temporaryDirectory.appendingPathComponent("no-such-rewards")) }
    }

    @Test("an image reward is the reward models' value on the images averaged down to their size; its gradient matches finite differences",
          .enabled(if: FileManager.default.fileExists(atPath: folder.appendingPathComponent("rewards.json").path)))
    func imageReward() throws {
        let conditions: [TuningCondition] = [("a red snowman", ViewConditioning(azimuthDegrees: 30)), ("a blue house with a green roof", ViewConditioning(azimuthDegrees: 200, elevationDegrees: 20))]
        let images = Self.images(2, size: 64, seed: 1)
        for term in [RewardTerm.view, .alignment, .quality] {
            let reward = try ImageModelReward(term, folder: Self.folder)
            let scored = try reward.score(conditions, images: images, gradient: false).rewards
            let small = PriorImage.pooled(images, to: 32)
            for (b, c) in conditions.enumerated() {
                let one = Tensor(shape: [1, 3, 32, 32], storage: Array(small.storage[(b * 3 * 1024)..<((b + 1) * 3 * 1024)]))
                let direct = reward.models.evaluate(RewardMix([term: 1]), images: one, caption: ToyCaption(c.prompt), azimuthDegrees: [c.view.azimuthDegrees],
                                                    elevationDegrees: [c.view.elevationDegrees], gradient: false).total[0]
                #expect(abs(scored[b] - direct) < 1e-5, "\(term) \(b): \(scored[b]) vs \(direct)")
            }
            try Self.checkGradient(reward, conditions, images: images)
        }
        #expect(throws: RewardError.self) { try ImageModelReward(.view, folder: Self.folder).score(conditions, images: Self.images(2, size: 48, seed: 1), gradient: false) }
    }

    @Test("the motion reward links a moving caption's two most different times and a still caption's condition twice, and scores the pair",
          .enabled(if: FileManager.default.fileExists(atPath: folder.appendingPathComponent("motion_pair.safetensors").path)))
    func motionReward() throws {
        let reward = try MotionSampleReward(folder: Self.folder)
        let moving: TuningCondition = ("a red duck bouncing", ViewConditioning(azimuthDegrees: 40, time: 0.3))
        let link = reward.linked(moving)
        let (a, b) = ToyMotion.bouncing.contrastPair(for: 0.3)
        #expect(reward.links == 2 && link.map { $0.view.time } == [a, b] && link.allSatisfy { $0.view.azimuthDegrees == 40 && $0.prompt == moving.prompt })
        let still: TuningCondition = ("a mug", ViewConditioning(azimuthDegrees: 10))
        #expect(reward.linked(still).map { $0.view.time } == [nil, nil])
        let conditions = link + reward.linked(still), images = Self.images(4, size: 32, seed: 2)
        let r = try reward.score(conditions, images: images, gradient: false).rewards
        let frames = Tensor(shape: [1, 6, 32, 32], storage: Array(images.storage[0..<(6 * 1024)]))
        let direct = reward.model.logLikelihood(frames, target: MotionPairReward.label(.bouncing)).reward[0]
        #expect(r[0] == r[1] && abs(r[0] - direct) < 1e-5 && r[2] == r[3])
        try Self.checkGradient(reward, conditions, images: images)
    }

    @Test("motion change: the world's own pair scores 0, a prior that ignores τ −1, half the change −¼; still pairs 0; the gradient matches finite differences; it mixes with the motion reward")
    func motionChange() throws {
        let reward = MotionChangeReward()
        let moving: TuningCondition = ("a green duck swaying", ViewConditioning(azimuthDegrees: 70, elevationDegrees: 10, time: 0.1))
        let link = reward.linked(moving)
        let (a, b) = ToyMotion.swaying.contrastPair(for: 0.1)
        #expect(reward.links == 2 && link.map { $0.view.time } == [a, b])
        let truth = link.map { MotionChangeReward.planes(MotionChangeReward.truth($0, size: 32)) }
        // The world moved the object: the two renders differ.
        #expect(zip(truth[0], truth[1]).map { abs($0 - $1) }.reduce(0, +) > 1)
        func pair(_ early: [Float], _ late: [Float]) -> Tensor { Tensor(shape: [2, 3, 32, 32], storage: early + late) }
        #expect(try reward.score(link, images: pair(truth[0], truth[1]), gradient: false).rewards.allSatisfy { abs($0) < 1e-6 })
        #expect(try reward.score(link, images: pair(truth[0], truth[0]), gradient: false).rewards.allSatisfy { abs($0 + 1) < 1e-5 })
        let halfway = zip(truth[0], truth[1]).map { ($0 + $1) / 2 }
        #expect(try reward.score(link, images: pair(truth[0], halfway), gradient: false).rewards.allSatisfy { abs($0 + 0.25) < 1e-4 })
        let still: TuningCondition = ("a mug", ViewConditioning(azimuthDegrees: 10))
        #expect(try reward.score(reward.linked(still), images: Self.images(2, size: 32, seed: 4), gradient: false).rewards == [0, 0])
        for seed in [5, 6, 7] as [UInt64] { try Self.checkGradient(reward, link, images: Self.images(2, size: 32, seed: seed)) }
        try Self.checkGradient(reward, link + reward.linked(still), images: Self.images(4, size: 32, seed: 8))
        // One link group shares its samples; another group is still refused.
        struct PairStub: SampleReward {
            var name: String
            var linkGroup: String
            var links: Int { 2 }
            func linked(_ c: TuningCondition) -> [TuningCondition] { [c, c] }
            func score(_ conditions: [TuningCondition], images: Tensor, gradient: Bool) throws -> (rewards: [Float], gradient: Tensor?) {
                ([Float](repeating: 0, count: conditions.count), nil)
            }
        }
        #expect(try SampleRewardMix([(reward, 2), (PairStub(name: "motion-like", linkGroup: "motion-pair"), 1)]).tuningReward.links == 2)
        #expect(throws: TuningError.self) { try SampleRewardMix([(reward, 2), (PairStub(name: "other", linkGroup: "other"), 1)]) }
    }

    struct Linking: SampleReward {
        var name: String
        var links: Int { 3 }
        func linked(_ c: TuningCondition) -> [TuningCondition] { [c, c, c] }
        func score(_ conditions: [TuningCondition], images: Tensor, gradient: Bool) throws -> (rewards: [Float], gradient: Tensor?) {
            ([Float](repeating: 1, count: conditions.count), nil)
        }
    }

    @Test("a mix takes its links from its linking reward, refuses two, and refuses a gradient a reward cannot give")
    func mix() throws {
        let mix = try SampleRewardMix([(Linking(name: "a"), 2)])
        let layout = mix.tuningReward.layout([("x", ViewConditioning()), ("y", ViewConditioning())], samplesPerCondition: 2)
        #expect(layout.conditions.map(\.prompt) == Array(repeating: "x", count: 6) + Array(repeating: "y", count: 6))
        #expect(layout.noiseSources == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] && layout.groupSize == 6)
        #expect(try mix.tuningReward.score(layout.conditions, Tensor.zeros([12, 3, 4, 4])) == Array(repeating: 2, count: 12))
        #expect(throws: TuningError.self) { try mix.tuningReward.scoreWithGradient!(layout.conditions, Tensor.zeros([12, 3, 4, 4])) }
        #expect(throws: TuningError.self) { try SampleRewardMix([(Linking(name: "a"), 1), (Linking(name: "b"), 1)]) }
    }

    @Test("consistency: four true views of one object score above one view repeated four times (a Janus prior); the link shares its score")
    func consistency() throws {
        let reward = ConsistencySampleReward(fitSteps: 150, gaussians: 1000)
        var sample = ToySample(seed: 5, index: 2)
        sample.motion = nil
        sample.time = nil
        let condition: TuningCondition = (sample.caption, ViewConditioning(azimuthDegrees: 20, elevationDegrees: 15))
        let linked = reward.linked(condition)
        #expect(linked.map(\.view.azimuthDegrees) == [20, 110, 200, 290])
        func planes(_ pictures: [Image]) -> Tensor {
            var values: [Float] = []
            for p in pictures { for c in 0..<3 { for i in 0..<(p.width * p.height) { values.append(p.pixels[3 * i + c]) } } }
            return Tensor(shape: [pictures.count, 3, 32, 32], storage: values)
        }
        let views = linked.map { c -> Image in
            var s = sample
            (s.azimuthDegrees, s.elevationDegrees) = (c.view.azimuthDegrees, c.view.elevationDegrees)
            return s.render(size: 32)
        }
        let consistent = try reward.score(linked, images: planes(views), gradient: false).rewards
        let janus = try reward.score(linked, images: planes(Array(repeating: views[0], count: 4)), gradient: false).rewards
        #expect(Set(consistent).count == 1 && Set(janus).count == 1)
        #expect(consistent[0] > janus[0] + 0.2, "PSNR/10: true views \(consistent[0]), one view four times \(janus[0])")
        #expect(try reward.score(linked, images: planes(views), gradient: true).gradient == nil)
        #expect(try TuningRewardRegistry.weights(parsing: "consistency:0.5,view:1").map(\.name) == ["consistency", "view"])
    }
}
