import Testing
import KilnAsset
import KilnCore

@Suite("Decimation: Kiln's quadric decimator and meshoptimizer")
struct DecimationComparisonTests {
    /// Distance from `p` to the triangle `(a, b, c)`, by brute force over its closest feature.
    static func distance(_ p: SIMD3<Float>, _ a: SIMD3<Float>, _ b: SIMD3<Float>, _ c: SIMD3<Float>) -> Float {
        let n = cross(b - a, c - a), l = length(n)
        var best = Float.infinity
        if l > 0 {
            let u = n / l, q = p - dot(p - a, u) * u  // projection on the plane
            let w0 = dot(cross(b - q, c - q), n), w1 = dot(cross(c - q, a - q), n), w2 = dot(cross(a - q, b - q), n)
            if w0 >= 0 && w1 >= 0 && w2 >= 0 { best = abs(dot(p - a, u)) }
        }
        for (s, e) in [(a, b), (b, c), (c, a)] {
            let d = e - s, t = lengthSquared(d) > 0 ? min(1, max(0, dot(p - s, d) / lengthSquared(d))) : 0
            best = min(best, length(p - (s + t * d)))
        }
        return best
    }

    /// Symmetric Hausdorff distance between a unit sphere's tessellation and `mesh`: every vertex of
    /// `mesh` and its triangles' centroids against the sphere (|‖p‖ − 1|), and every vertex of
    /// `sphere` against `mesh`'s triangles (brute force).
    static func hausdorffToSphere(_ mesh: TriangleMesh, sphere: TriangleMesh) -> Float {
        var worst: Float = 0
        for p in mesh.positions { worst = max(worst, abs(length(p) - 1)) }
        for t in mesh.triangles {
            worst = max(worst, abs(length((mesh.positions[Int(t.x)] + mesh.positions[Int(t.y)] + mesh.positions[Int(t.z)]) / 3) - 1))
        }
        for p in sphere.positions {
            worst = max(worst, mesh.triangles.map { distance(p, mesh.positions[Int($0.x)], mesh.positions[Int($0.y)], mesh.positions[Int($0.z)]) }.min() ?? .infinity)
        }
        return worst
    }

    static func icosphere() -> TriangleMesh { AtlasFixtures.icosphere(levels: 4, radius: 1) }  // 5120 faces

    @Test("both decimators keep to the face budget, small budgets included", arguments: [4, 12, 100, 1000])
    func budget(target: Int) {
        let sphere = Self.icosphere()
        let kiln = sphere.decimated(toTriangleCount: target)
        let meshopt = MeshOptimizer.simplified(sphere, toTriangleCount: target).mesh
        #expect(kiln.triangleCount <= target && kiln.triangleCount >= target * 3 / 4, "Kiln kept \(kiln.triangleCount) of a budget of \(target)")
        #expect(meshopt.triangleCount <= target && meshopt.triangleCount >= target * 3 / 4, "meshoptimizer kept \(meshopt.triangleCount) of a budget of \(target)")
        for mesh in [kiln, meshopt] { #expect(mesh.validationFailure() == nil) }
    }

    @Test("both decimators keep an icosphere's surface near the sphere", arguments: [(100, Float(0.15)), (1000, Float(0.03))])
    func hausdorff(target: Int, bound: Float) {
        let sphere = Self.icosphere()
        let kiln = Self.hausdorffToSphere(sphere.decimated(toTriangleCount: target), sphere: sphere)
        let meshopt = Self.hausdorffToSphere(MeshOptimizer.simplified(sphere, toTriangleCount: target).mesh, sphere: sphere)
        #expect(kiln < bound && meshopt < bound, "Hausdorff at \(target) faces: Kiln \(kiln), meshoptimizer \(meshopt) (bound \(bound))")
    }

    @Test("vertex-cache ordering keeps every triangle (same corners, same winding) and lowers the ACMR of a scrambled order")
    func vertexCache() {
        let sphere = Self.icosphere()
        var rng = RNG(seed: 3)
        var scrambled = sphere.triangles
        for i in stride(from: scrambled.count - 1, to: 0, by: -1) { scrambled.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let ordered = MeshOptimizer.vertexCacheOrdered(scrambled, vertexCount: sphere.vertexCount)
        func canonical(_ t: SIMD3<UInt32>) -> SIMD3<UInt32> {
            t.x <= t.y && t.x <= t.z ? t : t.y <= t.z ? SIMD3(t.y, t.z, t.x) : SIMD3(t.z, t.x, t.y)
        }
        #expect(Set(ordered.map(canonical)) == Set(sphere.triangles.map(canonical)) && ordered.count == scrambled.count)
        let before = MeshOptimizer.averageCacheMissRatio(scrambled, vertexCount: sphere.vertexCount)
        let after = MeshOptimizer.averageCacheMissRatio(ordered, vertexCount: sphere.vertexCount)
        #expect(after < 0.8 && after < before / 2, "ACMR \(before) → \(after)")
    }
}

@Suite("The export clean-up keeps to the face budget")
struct CleanupBudgetTests {
    @Test("a torus (at least 14 triangles by collapses) and several separate balls still meet budgets of 4, 12 and 100", arguments: [4, 12, 100])
    func budget(target: Int) throws {
        let torus = AtlasFixtures.torus(segments: 24, sides: 12)
        let balls = TriangleMesh.merged([AtlasFixtures.icosphere(levels: 2, radius: 0.3),
                                          AtlasFixtures.icosphere(levels: 2, radius: 0.2).translatedForTest(SIMD3(1, 0, 0)),
                                          AtlasFixtures.icosphere(levels: 2, radius: 0.1).translatedForTest(SIMD3(0, 1, 0))])
        for mesh in [torus, balls] {
            let cleaned = mesh.cleanedForExport(MeshCleanupOptions(minimumIslandAreaFraction: 0, maximumTriangleCount: target))
            #expect(cleaned.mesh.triangleCount <= target && cleaned.mesh.triangleCount >= min(target, 4), "\(cleaned.report)")
            #expect(cleaned.mesh.validationFailure() == nil)
        }
    }
}

extension TriangleMesh {
    func translatedForTest(_ offset: SIMD3<Float>) -> TriangleMesh {
        var mesh = self
        mesh.positions = mesh.positions.map { $0 + offset }
        return mesh
    }
}
