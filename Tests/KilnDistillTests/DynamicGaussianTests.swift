import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender
import KilnToyWorld
import Testing
@testable import KilnDistill

@Suite("Dynamic (4D) Gaussian distillation")
struct DynamicGaussianTests {
    static func run(steps: Int = 6, seed: UInt64 = 5) throws -> DistillationRun<DynamicGaussianScene> {
        let prior = try PixelDiffusionPrior(pipeline: PriorPipeline(folder: tinyPipeline), prompt: "a red ball bouncing", backgrounds: ToySample.backgrounds)
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
        #expect(resumed.scene.object == straight.scene.object && straight.scene.object != ObjectMotion())
        #expect(resumed.rng == straight.rng)
    }
}

extension DynamicGaussianTests {
    @Test("temporal consistency: its gradient on the motion lowers the flicker ½‖I(τ+δ) − 2I(τ) + I(τ−δ)‖² of a view")
    func temporalConsistency() throws {
        var settings = GaussianSettings()
        settings.initialGaussians = 300
        var motionSettings = MotionSettings()
        motionSettings.temporal = 1000  // the view's own (tiny) SDS gradient is negligible beside it
        motionSettings.frames = 8
        let scene = try DynamicGaussianScene(settings: settings, motion: motionSettings, steps: 10, extent: 0.6, seed: 2, threads: 2)
        var rng = RNG(seed: 3)
        for i in scene.motion.position.indices { scene.motion.position[i] = rng.uniform(-0.05...0.05) }
        let camera = ViewSettings().camera(azimuthDegrees: 30, elevationDegrees: 15, size: 32)
        func flicker() -> Float {
            let delta = 1 / Float(2 * motionSettings.frames)
            let images = [0.5 - delta, 0.5, 0.5 + delta].map {
                SplatRasterizer.forward(scene.cloud(at: $0), camera: camera, settings: SplatRenderSettings(background: SIMD3(1, 1, 1)), threads: 2).images.color
            }
            return (0..<images[0].count).map { i -> Float in let d = images[2][i] - 2 * images[1][i] + images[0][i]; return d * d / 2 }.reduce(0, +)
        }
        Self.expectDescent(scene, time: 0.5, camera: camera, background: SIMD3(1, 1, 1), rng: &rng, objective: flicker, name: "flicker")
    }

    /// Accumulates a view at `time` in the moving stage whose own SDS gradient is negligible, then
    /// checks that a small step of the motion's positions along −gradient lowers `objective` and a
    /// step along +gradient raises it.
    static func expectDescent(_ scene: DynamicGaussianScene, time: Float, camera: Camera, background: SIMD3<Float>, rng: inout RNG,
                              objective: () -> Float, name: String) {
        let (_, frame) = scene.render(camera: camera, time: time, step: 10, of: 10, background: background, rng: &rng)
        var dColor = [Float](repeating: 0, count: 3 * camera.width * camera.height)
        dColor[0] = 1e-3
        scene.accumulate(frame, dColor: dColor)
        let g = scene.motionGradient.position
        let norm = g.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        #expect(norm > 0)
        let start = scene.motion.position, before = objective()
        for (eta, lower) in [(Float(2e-3), true), (-2e-3, false)] {
            for i in start.indices { scene.motion.position[i] = start[i] - eta * g[i] / norm }
            let after = objective()
            #expect(lower ? after < before : after > before, "η \(eta): \(name) \(before) → \(after)")
        }
    }

    @Test("motion-pair reward: its gradient on the motion raises log p(the caption's motion | the view, its partner frame)")
    func motionPairReward() throws {
        var settings = GaussianSettings()
        settings.initialGaussians = 300
        var motionSettings = MotionSettings()
        motionSettings.temporal = 0
        motionSettings.pairReward = 1000  // the view's own (tiny) SDS gradient is negligible beside it
        motionSettings.pairConfidence = 1
        let scene = try DynamicGaussianScene(settings: settings, motion: motionSettings, steps: 10, extent: 0.6, seed: 2, threads: 2)
        scene.motionPairReward = ToyMotionReward(model: MotionPairReward(imageSize: 16, width: 8, seed: 3), motion: .bouncing)
        var rng = RNG(seed: 3)
        for i in scene.motion.position.indices { scene.motion.position[i] = rng.uniform(-0.05...0.05) }
        let (partnerTime, partnerIsEarlier) = scene.motionPairReward!.partner(of: 0.3)
        #expect(ToyMotion.bouncing.poseChange(from: 0.3, to: partnerTime) > 0.1)
        let camera = ViewSettings().camera(azimuthDegrees: 30, elevationDegrees: 15, size: 32)
        let background = SIMD3<Float>(1, 1, 1)
        func reward() -> Float {
            var quiet = RNG(seed: 0)
            let (_, view) = scene.render(camera: camera, time: 0.3, step: 10, of: 10, background: background, rng: &quiet)
            let partner = scene.movingFrame(at: partnerTime, camera: camera, background: background)
            return scene.motionPairGradient(view, partner: partner, partnerIsEarlier: partnerIsEarlier, model: scene.motionPairReward!)!.reward
        }
        // Descending −log p is ascending the reward.
        Self.expectDescent(scene, time: 0.3, camera: camera, background: background, rng: &rng, objective: { -reward() }, name: "−log p")
        // The same through the object's own motion.
        scene.discardGradient()
        let (_, view) = scene.render(camera: camera, time: 0.3, step: 10, of: 10, background: background, rng: &rng)
        var small = [Float](repeating: 0, count: 3 * 32 * 32)
        small[0] = 1e-3
        scene.accumulate(view, dColor: small)
        let og = scene.objectGradient.coefficients
        let ogNorm = og.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        #expect(ogNorm > 0)
        let objectStart = scene.object, objectBefore = reward()
        for (eta, higher) in [(Float(2e-3), true), (-2e-3, false)] {
            scene.object = ObjectMotion(coefficients: zip(objectStart.coefficients, og).map { $0 - eta * $1 / ogNorm })
            let after = reward()
            #expect(higher ? after > objectBefore : after < objectBefore, "object η \(eta): log p \(objectBefore) → \(after)")
        }
        scene.object = objectStart
        // Past the confidence cap the term adds nothing: the motion's gradient is the view's own.
        func gradients(_ m: MotionSettings) throws -> (position: [Float], object: [Float]) {
            let other = try DynamicGaussianScene(settings: settings, motion: m, steps: 10, extent: 0.6, seed: 2, threads: 2)
            other.motionPairReward = scene.motionPairReward
            other.motion = scene.motion
            var quiet = RNG(seed: 0)
            let (_, frame) = other.render(camera: camera, time: 0.3, step: 10, of: 10, background: background, rng: &quiet)
            var dColor = [Float](repeating: 0, count: 3 * 32 * 32)
            dColor[0] = 1e-3
            other.accumulate(frame, dColor: dColor)
            return (other.motionGradient.position, other.objectGradient.coefficients)
        }
        func motionGradient(_ m: MotionSettings) throws -> [Float] { try gradients(m).position }
        var capped = motionSettings, off = motionSettings
        capped.pairConfidence = 0.5 * Foundation.exp(reward())
        off.pairReward = 0
        #expect(try motionGradient(capped) == motionGradient(off))
        #expect(try motionGradient(motionSettings) != motionGradient(off))
        // pair_object_only: the Gaussians' own motion gets only the view's gradient; the object's
        // motion gets the pair term's in full (as when it flows everywhere, up to rounding).
        var objectOnly = motionSettings
        objectOnly.pairObjectOnly = true
        let (onlyPosition, onlyObject) = try gradients(objectOnly)
        let (_, allObject) = try gradients(motionSettings), (_, offObject) = try gradients(off)
        #expect(try onlyPosition == motionGradient(off))
        let scale = allObject.map(abs).max()!
        #expect(zip(onlyObject, allObject).allSatisfy { abs($0 - $1) <= 1e-3 * scale }, "\(onlyObject) vs \(allObject)")
        #expect(zip(onlyObject, offObject).contains { abs($0 - $1) > 0.1 * scale }, "the pair term reaches the object's motion")
    }
}
