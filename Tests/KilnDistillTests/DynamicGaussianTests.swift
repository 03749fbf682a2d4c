import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender
import Testing
@testable import KilnDistill

@Suite("Dynamic (4D) Gaussian distillation")
struct DynamicGaussianTests {
    static func run(steps: Int = 6, seed: UInt64 = 5) throws -> DistillationRun<DynamicGaussianScene> {
        let prior = try DistillationPrior(pipeline: PriorPipeline(folder: tinyPipeline), prompt: "a red ball bouncing")
        var views = ViewSettings()
        views.renderSize = 32
        views.viewsPerStep = 2
        var settings = GaussianSettings()
        settings.initialGaussians = 300
        settings.densifyEvery = 2
        settings.densifyGradientThreshold = 0  // every visible Gaussian densifies: motion must follow the new ones
        var motion = MotionSettings()
        motion.staticFraction = 0.5
        let scene = try DynamicGaussianScene(settings: settings, motion: motion, steps: steps, extent: views.objectRadius, seed: seed, threads: 2)
        return try DistillationRun(scene: scene, prior: prior, rewards: nil, steps: steps, sds: SDSSettings(), guidance: RewardGuidanceSettings(),
                                   views: views, rng: RNG(seed: seed).split(2))
    }

    @Test("a still stage, then motion: times reach the prior, motion follows densification, and a seed repeats exactly")
    func stages() throws {
        let a = try Self.run(), b = try Self.run()
        var counts: [Int] = []
        for step in 1...6 {
            _ = try a.step()
            _ = try b.step()
            let scene = a.scene
            #expect(scene.motion.count == scene.still.parameters.count, "step \(step): motion for \(scene.motion.count) of \(scene.still.parameters.count)")
            let moved = scene.motion.groups.contains { $0.contains { $0 != 0 } }
            #expect(moved == (step > 3), "step \(step): motion \(moved ? "learned" : "still") in the \(step > 3 ? "moving" : "still") stage")
            counts.append(scene.still.parameters.count)
        }
        #expect(counts.last! > counts.first!, "densification should add Gaussians: \(counts)")
        #expect(a.scene.motion == b.scene.motion && a.scene.still.parameters == b.scene.still.parameters)
        // Every view of a step carries a time, spread over [0, 1].
        let views = a.drawViews()
        #expect(views.allSatisfy { $0.view.time.map { (0...1).contains($0) } ?? false } && abs(views[0].view.time! - views[1].view.time!) == 0.5)
        // After the run the cloud moves between frames.
        #expect(a.scene.cloud(at: 0).means != a.scene.cloud(at: 0.5).means)
    }

    @Test("a checkpoint inside the moving stage resumes bit-identically")
    func resume() throws {
        let (straight, _, resumed, folder) = try straightAndResumed({ try Self.run() }, steps: 6, at: 5)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(resumed.scene.motion == straight.scene.motion && resumed.scene.still.parameters == straight.scene.still.parameters)
        #expect(resumed.rng == straight.rng)
    }
}
