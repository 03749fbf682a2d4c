import Foundation
import KilnCore
import KilnNN
import KilnRender
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
            zip(scene.preview(camera: Self.camera, background: background), weights).map { Double($0) * Double($1) }.reduce(0, +)
        }
        var quiet = RNG(seed: 0)
        let (_, frame) = scene.render(camera: Self.camera, background: background, rng: &quiet)
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
        let target = MeshScene(mesh: orangeMesh).preview(camera: Self.camera, background: background)
        func error() -> Float { zip(scene.preview(camera: Self.camera, background: background), target).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) }
        let before = error()
        var rng = RNG(seed: 3)
        for step in 1...60 {
            let (color, frame) = scene.render(camera: Self.camera, background: background, rng: &rng)
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
