import Foundation
import KilnCore
import Testing
@testable import KilnRender

@Suite("Mesh colour projection")
struct MeshColorProjectionTests {
    static let box = TriangleMesh.box(center: .zero, size: SIMD3(1, 1, 1), color: SIMD4(1, 1, 1, 1))

    /// A picture of `mesh` from `camera` whose colour at each covered pixel is `paint` of the
    /// surface point seen there (premultiplied by a coverage of `coverage`).
    static func picture(_ mesh: TriangleMesh, _ camera: Camera, coverage: Float = 1, paint: (SIMD3<Float>) -> SIMD3<Float>)
        -> (camera: Camera, premultiplied: [Float], coverage: [Float]) {
        let view = MeshRenderer(mesh).render(camera: camera, settings: MeshRenderSettings(antialias: false))
        var color = [Float](repeating: 0, count: 3 * camera.width * camera.height), alpha = [Float](repeating: 0, count: camera.width * camera.height)
        for y in 0..<camera.height {
            for x in 0..<camera.width where view.mask.pixels[y * camera.width + x] > 0 {
                let i = y * camera.width + x
                let p = camera.unproject(pixel: SIMD2(Float(x) + 0.5, Float(y) + 0.5), depth: view.depth.pixels[i])
                let c = paint(p)
                for k in 0..<3 { color[3 * i + k] = coverage * c[k] }
                alpha[i] = coverage
            }
        }
        return (camera, color, alpha)
    }

    @Test("a surface point takes the colour its pictures show at it, from every camera that sees it")
    func recoversPaint() {
        let paint: (SIMD3<Float>) -> SIMD3<Float> = { p in SIMD3(0.5 + p.x, 0.5 + p.y, 0.5 + p.z) }
        let cameras = [20, 110, 200, 290].map { Camera.orbit(azimuthDegrees: Float($0), elevationDegrees: 30, radius: 3.5, width: 96, height: 96, fovYRadians: 0.7) }
        // Half coverage everywhere: the straight colour comes back, not the premultiplied one.
        let projection = MeshColorProjection(mesh: Self.box, pictures: cameras.map { Self.picture(Self.box, $0, coverage: 0.5, paint: paint) },
                                             depthTolerance: 0.02)
        var rng = RNG(seed: 5)
        var worst: Float = 0, seen = 0
        for _ in 0..<200 {
            // A random point on a random side face or the top (the cameras look from above).
            let u = rng.uniform(-0.45...0.45), v = rng.uniform(-0.45...0.45)
            let points = [SIMD3(0.5, u, v), SIMD3(-0.5, u, v), SIMD3(u, v, 0.5), SIMD3(u, v, -0.5), SIMD3(u, 0.5, v)]
            let p = points[Int(rng.next() % 5)]
            guard let c = projection.color(at: p) else { continue }
            seen += 1
            let d = c - paint(p)
            worst = max(worst, (d * d).sum().squareRoot())
        }
        // Every such point is seen; the error is the size of a pixel's footprint (~1/40 of the box).
        #expect(seen == 200)
        #expect(worst < 0.06, "worst colour error \(worst)")
        // The bottom is seen by no camera.
        #expect(projection.color(at: SIMD3(0.1, -0.5, 0.1)) == nil)
    }

    @Test("a camera that does not see a point (it is behind the mesh) gives it nothing")
    func occlusion() {
        let front = Camera.orbit(azimuthDegrees: 0, elevationDegrees: 0, radius: 3, width: 64, height: 64, fovYRadians: 0.7)
        let back = Camera.orbit(azimuthDegrees: 180, elevationDegrees: 0, radius: 3, width: 64, height: 64, fovYRadians: 0.7)
        let projection = MeshColorProjection(mesh: Self.box, pictures: [Self.picture(Self.box, front) { _ in SIMD3(1, 0, 0) },
                                                                        Self.picture(Self.box, back) { _ in SIMD3(0, 0, 1) }],
                                             depthTolerance: 0.02)
        // Which face each camera sees follows from where it stands.
        let facing = front.position.z > 0 ? (SIMD3<Float>(0.1, 0.1, 0.5), SIMD3<Float>(0.1, 0.1, -0.5)) : (SIMD3<Float>(0.1, 0.1, -0.5), SIMD3<Float>(0.1, 0.1, 0.5))
        #expect(projection.color(at: facing.0) == SIMD3(1, 0, 0))
        #expect(projection.color(at: facing.1) == SIMD3(0, 0, 1))
        // Pixels the pictures barely cover say nothing.
        let faint = MeshColorProjection(mesh: Self.box, pictures: [Self.picture(Self.box, front, coverage: 0.1) { _ in SIMD3(1, 0, 0) }], depthTolerance: 0.02)
        #expect(faint.color(at: facing.0) == nil)
    }
}
