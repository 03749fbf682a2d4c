import KilnCore
import KilnRender
import Testing
@testable import KilnDistill

@Suite("Carrying a mesh through a 4D scene's motion (animated exports)")
struct MeshCarryingTests {
    /// A scene of 400 opaque Gaussians in a 0.4-radius ball, with noisy per-Gaussian motion
    /// (each Gaussian its own random coefficients) and, optionally, an object bounce and turn.
    static func scene(objectMotion: Bool) throws -> DynamicGaussianScene {
        var settings = GaussianSettings()
        settings.initialGaussians = 400
        let scene = try DynamicGaussianScene(settings: settings, motion: MotionSettings(), steps: 10, extent: 0.4, seed: 4, threads: 2)
        for i in 0..<scene.still.parameters.count { scene.still.parameters.opacityLogits[i] = 3 }
        var rng = RNG(seed: 9)
        for i in scene.motion.position.indices { scene.motion.position[i] = rng.uniform(-0.06...0.06) }
        if objectMotion {
            var c = [Float](repeating: 0, count: ObjectMotion<Float>.basisCount * ObjectMotion<Float>.parameterCount)
            c[1 * 7 + 1] = 0.3  // a vertical harmonic: a bounce
            c[2 * 7 + 3] = 0.8  // a turn about +Y
            scene.object = ObjectMotion(coefficients: c)
        }
        return scene
    }

    static let times: [Float] = (0..<9).map { Float($0) / 8 }

    @Test("noisy Gaussian motion does not tear the mesh; the former 4-nearest rule did")
    func noTearing() throws {
        let scene = try Self.scene(objectMotion: false)
        let mesh = TriangleMesh.uvSphere(radius: 0.35, segments: 48, rings: 24)
        let frames = scene.carriedVertices(of: mesh, times: Self.times)
        #expect(frames[0] == mesh.positions, "τ = 0 must give the mesh itself")
        let worst = frames.map { MeshStretch(rest: mesh.positions, frame: $0, triangles: mesh.triangles) }
        #expect(worst.allSatisfy { $0.maximum < 1.6 && $0.overOneAndAHalf < 0.001 }, "stretch per frame: \(worst.map(\.maximum))")
        // The rule it replaces (each vertex moved as its 4 nearest Gaussians, inverse squared distance).
        let rest = scene.cloud(at: 0), origins = (0..<rest.count).map { SIMD3(rest.means[3 * $0], rest.means[3 * $0 + 1], rest.means[3 * $0 + 2]) }
        let nearest = NearestNeighbours.search(origins, queries: mesh.positions, k: 4)
        let moved = scene.cloud(at: 0.5)
        let former = mesh.positions.indices.map { v -> SIMD3<Float> in
            let w = nearest[v].map { i -> Float in let d = origins[i] - mesh.positions[v]; return 1 / max(1e-8, (d * d).sum()) }
            let total = w.reduce(0, +)
            return zip(nearest[v], w).reduce(mesh.positions[v]) { p, iw in
                p + iw.1 / total * (SIMD3(moved.means[3 * iw.0], moved.means[3 * iw.0 + 1], moved.means[3 * iw.0 + 2]) - origins[iw.0])
            }
        }
        let formerStretch = MeshStretch(rest: mesh.positions, frame: former, triangles: mesh.triangles)
        #expect(formerStretch.maximum > 2 * worst.map(\.maximum).max()!, "the former rule stretched \(formerStretch.maximum)")
    }

    @Test("the object's own motion is carried exactly and rigidly")
    func objectMotionIsRigid() throws {
        let scene = try Self.scene(objectMotion: true)
        scene.motion = SplatMotion(zerosFor: scene.still.parameters.count)  // no per-Gaussian motion
        let mesh = TriangleMesh.box(size: SIMD3(0.5, 0.3, 0.4))
        let placed = scene.object.moving(mesh.positions, at: 0)  // the mesh as extracted at τ = 0
        var start = mesh
        start.positions = placed
        let frames = scene.carriedVertices(of: start, times: Self.times)
        for (tau, frame) in zip(Self.times, frames) {
            let expected = scene.object.moving(mesh.positions, at: tau)
            let error = zip(frame, expected).map { pair in let e = pair.0 - pair.1; return (e * e).sum().squareRoot() }.max()!
            #expect(error < 1e-5, "τ \(tau): off by \(error)")
        }
        #expect(frames[4] != frames[0], "the object should have moved")
    }

    @Test("object point transforms: unmoving undoes moving")
    func inverse() throws {
        let scene = try Self.scene(objectMotion: true)
        var rng = RNG(seed: 1)
        let points = (0..<50).map { _ in SIMD3<Float>(rng.uniform(-1...1), rng.uniform(-1...1), rng.uniform(-1...1)) }
        for tau: Float in [0, 0.3, 0.8] {
            let back = scene.object.unmoving(scene.object.moving(points, at: tau), at: tau)
            let error = zip(points, back).map { pair in let e = pair.0 - pair.1; return (e * e).sum().squareRoot() }.max()!
            #expect(error < 1e-5)
        }
    }

    @Test("a 4D run's turntable framing keeps a high bounce in view at every time, and leaves a still object's framing alone")
    func framing() throws {
        let views = ViewSettings()
        let still = try Self.scene(objectMotion: false)
        still.motion = SplatMotion(zerosFor: still.still.parameters.count)
        let rest = still.orbitFraming(times: Self.times, views: views)
        #expect(rest.target == .zero && rest.distance == views.cameraDistance)

        let bouncing = try Self.scene(objectMotion: false)
        var c = [Float](repeating: 0, count: ObjectMotion<Float>.basisCount * ObjectMotion<Float>.parameterCount)
        c[1 * 7 + 1] = 0.8  // a bounce twice the object's size
        bouncing.object = ObjectMotion(coefficients: c)
        let framing = bouncing.orbitFraming(times: Self.times, views: views)
        #expect(framing.distance > views.cameraDistance)
        var outside = 0, total = 0
        for tau in Self.times {
            let p = bouncing.cloud(at: tau)
            for azimuth: Float in [0, 90, 180, 270] {
                let camera = Camera.orbit(azimuthDegrees: azimuth, elevationDegrees: 15, radius: framing.distance, target: framing.target,
                                          width: 128, height: 128, fovYRadians: ViewSettings.fovYDegrees * .pi / 180)
                for i in 0..<p.count {
                    let centre = SIMD3(p.means[3 * i], p.means[3 * i + 1], p.means[3 * i + 2])
                    let pixel = camera.project(centre).pixel
                    total += 1
                    if !(0...128).contains(pixel.x) || !(0...128).contains(pixel.y) { outside += 1 }
                }
            }
        }
        #expect(outside == 0, "\(outside) of \(total) Gaussian centres left the frame")
    }
}
