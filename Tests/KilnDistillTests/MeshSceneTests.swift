import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender
import KilnToyWorld
import Testing
@testable import KilnDistill

@Suite("Mesh colour refinement")
struct MeshSceneTests {
    static func scene(learningRate: Double = 0.02) -> MeshScene {
        var mesh = TriangleMesh.uvSphere(radius: 0.5, segments: 10, rings: 6)
        var rng = RNG(seed: 1)
        mesh.colors = (0..<mesh.vertexCount).map { _ in SIMD4(rng.uniform(0.1...0.9), rng.uniform(0.1...0.9), rng.uniform(0.1...0.9), 1) }
        return MeshScene(mesh: mesh, learningRate: learningRate)
    }

    static let camera = ViewSettings().camera(azimuthDegrees: 40, elevationDegrees: 20, size: 24)

    @Test("starts from the mesh's colours; the render's gradient matches central differences for the albedo logits")
    func gradients() {
        let scene = Self.scene()
        #expect(zip(scene.albedo, scene.mesh.colors.flatMap { [$0.x, $0.y, $0.z] }).allSatisfy { abs($0 - $1) < 1e-5 })
        var rng = RNG(seed: 2)
        let weights = rng.uniforms(count: 24 * 24 * 3, in: -1...1)
        let background = SIMD3<Float>(0.9, 0.9, 0.85)
        func loss() -> Double {
            zip(scene.preview(camera: Self.camera, time: nil, background: background), weights).map { Double($0) * Double($1) }.reduce(0, +)
        }
        var quiet = RNG(seed: 0)
        let (_, frame) = scene.render(camera: Self.camera, time: nil, step: 1, of: 1, background: background, rng: &quiet)
        scene.discardGradient()
        scene.accumulate(frame, dColor: weights)
        let g = scene.logits.gradient.storage
        let order = g.indices.sorted { abs(g[$0]) > abs(g[$1]) }.prefix(12)
        for k in order {
            let original = scene.logits.value.storage[k]
            func central(_ h: Float) -> Double {
                scene.logits.withUnsafeMutableValue { $0[k] = original + h }
                let up = loss()
                scene.logits.withUnsafeMutableValue { $0[k] = original - h }
                let down = loss()
                scene.logits.withUnsafeMutableValue { $0[k] = original }
                return (up - down) / Double(2 * h)
            }
            let numeric = (4 * central(1e-2) - central(2e-2)) / 3
            #expect(abs(numeric - Double(g[k])) < 0.01 * abs(numeric) + 1e-4, "logit \(k): \(numeric) vs \(g[k])")
        }
    }

    @Test("steps move the colours towards a target picture, and a checkpoint restores them exactly")
    func fitsAndRestores() throws {
        let scene = Self.scene(learningRate: 0.1)
        let background = SIMD3<Float>(1, 1, 1)
        // Target: the same sphere painted orange.
        var orangeMesh = scene.mesh
        orangeMesh.colors = orangeMesh.colors.map { _ in SIMD4(0.9, 0.35, 0.05, 1) }
        let target = MeshScene(mesh: orangeMesh).preview(camera: Self.camera, time: nil, background: background)
        func error() -> Float { zip(scene.preview(camera: Self.camera, time: nil, background: background), target).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) }
        let before = error()
        var rng = RNG(seed: 3)
        for step in 1...60 {
            let (color, frame) = scene.render(camera: Self.camera, time: nil, step: step, of: 60, background: background, rng: &rng)
            scene.accumulate(frame, dColor: zip(color, target).map { 2 * ($0 - $1) })
            scene.applyStep(step: step, of: 60, rng: &rng)
        }
        #expect(error() < 0.2 * before, "error \(before) → \(error())")
        var writer = SafeTensorsWriter()
        let state = try scene.checkpoint(into: &writer)
        let copy = Self.scene(learningRate: 0.1)
        try copy.restore(tensors: SafeTensorsFile(bytes: writer.encoded()), state: state)
        #expect(copy.albedo == scene.albedo)
    }
}

@Suite("Mesh refinement with vertex offsets")
struct MeshOffsetTests {
    static func scene(offsets: MeshOffsetSettings = MeshOffsetSettings(learningRate: 0.01, smoothness: 0.1), radius: Float = 0.5) -> MeshScene {
        var mesh = TriangleMesh.uvSphere(radius: radius, segments: 12, rings: 8)
        mesh.colors = mesh.positions.map { p in SIMD4(0.5 + 0.4 * p.x, 0.5 + 0.4 * p.y, 0.6, 1) }
        return MeshScene(mesh: mesh, learningRate: 0.02, offsets: offsets)
    }

    @Test("the render's gradient with respect to the offsets matches central differences (shading, barycentrics and silhouettes)")
    func gradients() {
        let scene = Self.scene()
        let offsets = scene.offsets!
        // Start from a lumpy surface so that every term of the chain is at work.
        var lumps = RNG(seed: 9)
        offsets.withUnsafeMutableValue { v in for i in 0..<v.count { v[i] = lumps.uniform(-0.04...0.04) } }
        let camera = MeshSceneTests.camera
        var rng = RNG(seed: 2)
        let weights = rng.uniforms(count: 24 * 24 * 3, in: -1...1)
        let background = SIMD3<Float>(0.9, 0.9, 0.85)
        func loss() -> Double {
            zip(scene.preview(camera: camera, time: nil, background: background), weights).map { Double($0) * Double($1) }.reduce(0, +)
        }
        func visibility() -> [Int32] { scene.forward(camera: camera, background: background).raster.triangleIDs }
        var quiet = RNG(seed: 0)
        let (_, frame) = scene.render(camera: camera, time: nil, step: 1, of: 1, background: background, rng: &quiet)
        scene.discardGradient()
        scene.accumulate(frame, dColor: weights)
        let g = offsets.gradient.storage
        #expect(g.allSatisfy { $0.isFinite })
        let seen = visibility()
        let base = loss()
        var checked = 0
        for k in g.indices.sorted(by: { abs(g[$0]) > abs(g[$1]) }).prefix(60) {
            let original = offsets.value.storage[k]
            let h: Float = 5e-4
            func at(_ x: Float) -> (Double, [Int32]) {
                offsets.withUnsafeMutableValue { $0[k] = x }
                defer { offsets.withUnsafeMutableValue { $0[k] = original } }
                return (loss(), visibility())
            }
            let (up, upIDs) = at(original + h), (down, downIDs) = at(original - h)
            // A pixel centre changing triangle, or a triangle turning away (an interior edge becoming
            // a silhouette), is a step or a kink in the loss, not a slope: skip the offsets where
            // either happens, seen as changed visibility or one-sided slopes that disagree.
            guard upIDs == seen, downIDs == seen else { continue }
            let right = (up - base) / Double(h), left = (base - down) / Double(h)
            guard abs(right - left) < 0.02 * max(abs(right), abs(left)) + 0.02 else { continue }
            let numeric = (up - down) / Double(2 * h)
            #expect(abs(numeric - Double(g[k])) < 0.02 * abs(numeric) + 2e-3, "offset \(k): \(numeric) vs \(g[k])")
            checked += 1
        }
        #expect(checked >= 30, "only \(checked) offsets could be checked away from steps and kinks")
    }

    @Test("offsets move a sphere onto a larger one; seams stay closed; a checkpoint restores them exactly")
    func fitsAndRestores() throws {
        let scene = Self.scene(offsets: MeshOffsetSettings(learningRate: 0.01, smoothness: 0.1))
        let targetScene = MeshScene(mesh: Self.scene(radius: 0.6).mesh)
        let background = SIMD3<Float>(1, 1, 1)
        let cameras = [0, 90, 180, 270].map { ViewSettings().camera(azimuthDegrees: Float($0), elevationDegrees: 20, size: 24) }
        let targets = cameras.map { targetScene.preview(camera: $0, time: nil, background: background) }
        func error() -> Float {
            var total: Float = 0
            for (c, t) in zip(cameras, targets) {
                for (a, b) in zip(scene.preview(camera: c, time: nil, background: background), t) { total += (a - b) * (a - b) }
            }
            return total
        }
        func meanRadius() -> Float { let m = scene.refinedMesh; return m.positions.map { length($0) }.reduce(0, +) / Float(m.vertexCount) }
        let before = error()
        var rng = RNG(seed: 3)
        for step in 1...40 {
            for (c, t) in zip(cameras, targets) {
                let (color, frame) = scene.render(camera: c, time: nil, step: step, of: 40, background: background, rng: &rng)
                scene.accumulate(frame, dColor: zip(color, t).map { 2 * ($0 - $1) })
            }
            scene.applyStep(step: step, of: 40, rng: &rng)
        }
        #expect(error() < 0.3 * before, "error \(before) → \(error())")
        #expect(meanRadius() > 0.56, "mean radius \(meanRadius())")
        let refined = scene.refinedMesh
        var byBase: [SIMD3<Float>: SIMD3<Float>] = [:]
        for (p, q) in zip(scene.mesh.positions, refined.positions) {
            if let seen = byBase[p] { #expect(seen == q, "a seam opened at \(p)") } else { byBase[p] = q }
        }
        #expect(refined.validationFailure() == nil && refined.normals.count == refined.vertexCount)
        var writer = SafeTensorsWriter()
        let state = try scene.checkpoint(into: &writer)
        let copy = Self.scene(offsets: MeshOffsetSettings(learningRate: 0.01, smoothness: 0.1))
        try copy.restore(tensors: SafeTensorsFile(bytes: writer.encoded()), state: state)
        #expect(copy.refinedMesh.positions == refined.positions && copy.albedo == scene.albedo)
        let colourOnly = MeshScene(mesh: scene.mesh)
        #expect(throws: (any Error).self) { try colourOnly.restore(tensors: SafeTensorsFile(bytes: writer.encoded()), state: state) }
    }

    @Test("distilled with offsets, a checkpoint inside the refinement resumes bit-identically")
    func resume() throws {
        func make() throws -> DistillationRun<MeshScene> {
            let prior = try PixelDiffusionPrior(pipeline: PriorPipeline(folder: tinyPipeline), prompt: "a red snowman", backgrounds: ToySample.backgrounds)
            var views = ViewSettings()
            views.renderSize = 32
            views.viewsPerStep = 2
            return try DistillationRun(scene: Self.scene(), prior: prior, rewards: nil, steps: 4, sds: SDSSettings(),
                                       guidance: RewardGuidanceSettings(), views: views, rng: RNG(seed: 5))
        }
        let (straight, _, resumed, folder) = try straightAndResumed(make, steps: 4, at: 2)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(resumed.scene.refinedMesh.positions == straight.scene.refinedMesh.positions && resumed.scene.albedo == straight.scene.albedo)
        #expect(straight.scene.refinedMesh.positions != Self.scene().mesh.positions)
        #expect(resumed.rng == straight.rng)
    }

    @Test("without offsets the geometry is untouched")
    func colourOnly() throws {
        let scene = MeshScene(mesh: Self.scene().mesh)
        #expect(scene.offsets == nil && scene.refinedMesh.positions == scene.mesh.positions && scene.smoothnessEnergy == 0)
    }
}
