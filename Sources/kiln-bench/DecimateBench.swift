// Decimation benchmark: `swift run -c release kiln-bench decimate [--quick]`. Kiln's quadric
// decimator (TriangleMesh.decimated) beside meshoptimizer's meshopt_simplify on marching-cubes
// surfaces and an icosphere: faces kept, symmetric Hausdorff distance, time.
import Foundation
import KilnAsset
import KilnCore

/// Triangles binned in a uniform grid, for nearest-surface-point queries.
struct TriangleDistanceGrid {
    let mesh: TriangleMesh
    let lo: SIMD3<Float>, cell: Float, n: SIMD3<Int>
    var cells: [[Int32]]

    init(_ mesh: TriangleMesh) {
        self.mesh = mesh
        let b = mesh.bounds!
        let extent = pointwiseMax(b.max - b.min, SIMD3(repeating: 1e-6))
        // About two triangles per occupied cell along a surface: side ≈ extent / √F per axis.
        let side = max(extent.max() / max(4, Float(mesh.triangleCount).squareRoot()), 1e-6)
        lo = b.min
        cell = max(side, extent.max() / 160)  // at most 160³ cells
        n = SIMD3<Int>(pointwiseMax(SIMD3(repeating: 1), (extent / cell).rounded(.up)))
        cells = [[Int32]](repeating: [], count: n.x * n.y * n.z)
        for (t, tri) in mesh.triangles.enumerated() {
            let a = mesh.positions[Int(tri.x)], b = mesh.positions[Int(tri.y)], c = mesh.positions[Int(tri.z)]
            let c0 = index(pointwiseMin(a, pointwiseMin(b, c))), c1 = index(pointwiseMax(a, pointwiseMax(b, c)))
            for z in c0.z...c1.z { for y in c0.y...c1.y { for x in c0.x...c1.x { cells[(z * n.y + y) * n.x + x].append(Int32(t)) } } }
        }
    }

    func index(_ p: SIMD3<Float>) -> SIMD3<Int> {
        pointwiseMin(n &- 1, pointwiseMax(SIMD3(repeating: 0), SIMD3<Int>(((p - lo) / cell).rounded(.down))))
    }

    /// Distance from `p` to the surface: rings of cells around `p`'s cell until the best distance
    /// found is within the next ring's reach.
    func distance(_ p: SIMD3<Float>) -> Float {
        let c = index(p)
        var best = Float.infinity
        var r = 0
        while true {
            for z in max(0, c.z - r)...min(n.z - 1, c.z + r) {
                for y in max(0, c.y - r)...min(n.y - 1, c.y + r) {
                    for x in max(0, c.x - r)...min(n.x - 1, c.x + r) where max(abs(x - c.x), abs(y - c.y), abs(z - c.z)) == r {
                        for t in cells[(z * n.y + y) * n.x + x] {
                            let tri = mesh.triangles[Int(t)]
                            best = min(best, pointTriangleDistance(p, mesh.positions[Int(tri.x)], mesh.positions[Int(tri.y)], mesh.positions[Int(tri.z)]))
                        }
                    }
                }
            }
            if best <= Float(r) * cell || r > n.max() { return best }
            r += 1
        }
    }
}

/// Euclidean distance from `p` to triangle `(a, b, c)` (Ericson, Real-Time Collision Detection §5.1.5).
func pointTriangleDistance(_ p: SIMD3<Float>, _ a: SIMD3<Float>, _ b: SIMD3<Float>, _ c: SIMD3<Float>) -> Float {
    let ab = b - a, ac = c - a, ap = p - a
    let d1 = dot(ab, ap), d2 = dot(ac, ap)
    if d1 <= 0 && d2 <= 0 { return length(p - a) }
    let bp = p - b, d3 = dot(ab, bp), d4 = dot(ac, bp)
    if d3 >= 0 && d4 <= d3 { return length(p - b) }
    let vc = d1 * d4 - d3 * d2
    if vc <= 0 && d1 >= 0 && d3 <= 0 { return length(p - (a + d1 / (d1 - d3) * ab)) }
    let cp = p - c, d5 = dot(ab, cp), d6 = dot(ac, cp)
    if d6 >= 0 && d5 <= d6 { return length(p - c) }
    let vb = d5 * d2 - d1 * d6
    if vb <= 0 && d2 >= 0 && d6 <= 0 { return length(p - (a + d2 / (d2 - d6) * ac)) }
    let va = d3 * d6 - d5 * d4
    if va <= 0 && d4 - d3 >= 0 && d5 - d6 >= 0 { return length(p - (b + (d4 - d3) / ((d4 - d3) + (d5 - d6)) * (c - b))) }
    let denominator = va + vb + vc
    guard denominator > 0 else { return min(length(p - a), length(p - b), length(p - c)) }
    return length(p - (a + ab * (vb / denominator) + ac * (vc / denominator)))
}

/// `count` points on the surface, uniform by area (deterministic), plus every vertex.
func surfaceSamples(_ mesh: TriangleMesh, count: Int, seed: UInt64) -> [SIMD3<Float>] {
    var cumulative: [Double] = []
    var total = 0.0
    for tri in mesh.triangles {
        let a = mesh.positions[Int(tri.x)], b = mesh.positions[Int(tri.y)], c = mesh.positions[Int(tri.z)]
        total += Double(length(cross(b - a, c - a))) / 2
        cumulative.append(total)
    }
    var rng = RNG(seed: seed)
    var points = mesh.positions
    for _ in 0..<count where total > 0 {
        let x = Double(rng.nextFloat()) * total
        var lo = 0, hi = cumulative.count - 1
        while lo < hi { let mid = (lo + hi) / 2; if cumulative[mid] < x { lo = mid + 1 } else { hi = mid } }
        let tri = mesh.triangles[lo]
        var u = rng.nextFloat(), v = rng.nextFloat()
        if u + v > 1 { u = 1 - u; v = 1 - v }
        points.append(mesh.positions[Int(tri.x)] * (1 - u - v) + mesh.positions[Int(tri.y)] * u + mesh.positions[Int(tri.z)] * v)
    }
    return points
}

/// Symmetric Hausdorff distance between two surfaces, sampled (`samples` area-uniform points and
/// every vertex of each, their distance to the other surface), over `diagonal`.
func relativeHausdorff(_ a: TriangleMesh, _ b: TriangleMesh, diagonal: Float, samples: Int = 20_000) -> Double {
    guard a.triangleCount > 0, b.triangleCount > 0 else { return .infinity }
    let gridA = TriangleDistanceGrid(a), gridB = TriangleDistanceGrid(b)
    let fromA = surfaceSamples(a, count: samples, seed: 1), fromB = surfaceSamples(b, count: samples, seed: 2)
    let ab = parallelMapChunks(fromA.count) { r in r.map { gridB.distance(fromA[$0]) }.max() ?? 0 }.max() ?? 0
    let ba = parallelMapChunks(fromB.count) { r in r.map { gridA.distance(fromB[$0]) }.max() ?? 0 }.max() ?? 0
    return Double(max(ab, ba) / diagonal)
}

/// Marching-cubes surfaces of 50k–200k faces (cleaned as `kiln export` cleans them before
/// decimating) and an icosphere.
func decimateBenchMeshes(quick: Bool) throws -> [(String, TriangleMesh)] {
    func cleaned(_ mesh: TriangleMesh) -> TriangleMesh { mesh.cleanedForExport(MeshCleanupOptions()).mesh }
    var meshes: [(String, TriangleMesh)] = []
    for n in quick ? [96] : [96, 160] {
        meshes.append(("wobbly torus, MC \(n)³", cleaned(try MarchingCubes.extract(marchingCubesBenchGrid(size: n), level: 0, inside: .below))))
    }
    if !quick {
        func ball(_ p: SIMD3<Float>, _ c: SIMD3<Float>, _ r: Float) -> Float { length(p - c) - r }
        let grid = ScalarGrid(nx: 150, ny: 150, nz: 150, origin: SIMD3(repeating: -1), spacing: SIMD3(repeating: 2 / 149)) { p in
            let ring = SIMD2((p.x * p.x + p.z * p.z).squareRoot() - 0.3, p.y - 0.15)
            return min(ball(p, SIMD3(0, -0.45, 0), 0.5), ball(p, SIMD3(0, 0.4, 0), 0.35), (ring * ring).sum().squareRoot() - 0.08)
        }
        meshes.append(("snowman, MC 150³", cleaned(try MarchingCubes.extract(grid, level: 0, inside: .below))))
    }
    meshes.append(("icosphere, 6 subdivisions", icosphere(levels: 6)))
    return meshes
}

/// An icosahedron subdivided `levels` times onto the unit sphere (20·4^levels faces).
func icosphere(levels: Int) -> TriangleMesh {
    let t: Float = (1 + Float(5).squareRoot()) / 2
    var positions: [SIMD3<Float>] = [SIMD3(-1, t, 0), SIMD3(1, t, 0), SIMD3(-1, -t, 0), SIMD3(1, -t, 0), SIMD3(0, -1, t), SIMD3(0, 1, t),
                                     SIMD3(0, -1, -t), SIMD3(0, 1, -t), SIMD3(t, 0, -1), SIMD3(t, 0, 1), SIMD3(-t, 0, -1), SIMD3(-t, 0, 1)]
    var faces: [SIMD3<UInt32>] = [SIMD3(0, 11, 5), SIMD3(0, 5, 1), SIMD3(0, 1, 7), SIMD3(0, 7, 10), SIMD3(0, 10, 11), SIMD3(1, 5, 9), SIMD3(5, 11, 4),
                                  SIMD3(11, 10, 2), SIMD3(10, 7, 6), SIMD3(7, 1, 8), SIMD3(3, 9, 4), SIMD3(3, 4, 2), SIMD3(3, 2, 6), SIMD3(3, 6, 8),
                                  SIMD3(3, 8, 9), SIMD3(4, 9, 5), SIMD3(2, 4, 11), SIMD3(6, 2, 10), SIMD3(8, 6, 7), SIMD3(9, 8, 1)]
    for _ in 0..<levels {
        var midpoints: [SIMD2<UInt32>: UInt32] = [:]
        func mid(_ a: UInt32, _ b: UInt32) -> UInt32 {
            let key = SIMD2(min(a, b), max(a, b))
            if let m = midpoints[key] { return m }
            positions.append((positions[Int(a)] + positions[Int(b)]) / 2)
            midpoints[key] = UInt32(positions.count - 1)
            return UInt32(positions.count - 1)
        }
        faces = faces.flatMap { f -> [SIMD3<UInt32>] in
            let a = mid(f.x, f.y), b = mid(f.y, f.z), c = mid(f.z, f.x)
            return [SIMD3(f.x, a, c), SIMD3(f.y, b, a), SIMD3(f.z, c, b), SIMD3(a, b, c)]
        }
    }
    return TriangleMesh(positions: positions.map { normalize($0) }, triangles: faces)
}

func benchDecimate(quick: Bool) {
    let meshes: [(String, TriangleMesh)]
    do { meshes = try decimateBenchMeshes(quick: quick) } catch { print("kiln-bench decimate: \(error)"); exit(1) }
    print("Decimation: Kiln's quadric edge collapse vs meshoptimizer \(MeshOptimizer.version)'s meshopt_simplify; "
          + "Hausdorff = symmetric, sampled (20k points + vertices each way), / bounding-box diagonal; ms = one run")
    print("| mesh | faces | target | Kiln faces | Kiln Hausdorff | Kiln ms | meshopt faces | meshopt Hausdorff | meshopt ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (name, mesh) in meshes {
        let b = mesh.bounds!
        let diagonal = length(b.max - b.min)
        for target in quick ? [5_000, 100, 4] : [20_000, 5_000, 1_000, 100, 12, 4] {
            var kiln = mesh, meshopt = mesh
            let kilnMs = milliseconds { kiln = mesh.decimated(toTriangleCount: target) }
            let meshoptMs = milliseconds { meshopt = MeshOptimizer.simplified(mesh, toTriangleCount: target).mesh }
            // Below 100 faces the shape is gone anyway, and the grid search from far points is slow.
            func hausdorff(_ m: TriangleMesh) -> String { target < 100 ? "—" : String(format: "%.4f", relativeHausdorff(mesh, m, diagonal: diagonal)) }
            print("| \(name) | \(mesh.triangleCount) | \(target) | \(kiln.triangleCount) | \(hausdorff(kiln)) | " + String(format: "%.0f", kilnMs)
                  + " | \(meshopt.triangleCount) | \(hausdorff(meshopt)) | " + String(format: "%.0f |", meshoptMs))
            fflush(nil)
        }
    }
    print("")
    print("Vertex-cache order (meshopt_optimizeVertexCache), ACMR with a 16-entry FIFO (0.5 ideal, 3 worst)")
    print("| mesh | faces | ACMR as extracted | ACMR reordered | reorder ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for (name, mesh) in meshes {
        for m in [mesh, mesh.decimated(toTriangleCount: 20_000)] {
            var ordered = m.triangles
            let ms = milliseconds { ordered = MeshOptimizer.vertexCacheOrdered(m.triangles, vertexCount: m.vertexCount) }
            print("| \(name)\(m.triangleCount == mesh.triangleCount ? "" : " → 20k") | \(m.triangleCount) | " + String(format: "%.3f | %.3f | %.1f |",
                  MeshOptimizer.averageCacheMissRatio(m.triangles, vertexCount: m.vertexCount), MeshOptimizer.averageCacheMissRatio(ordered, vertexCount: m.vertexCount), ms))
            fflush(nil)
        }
    }
}
