// Texture-bake benchmark: `swift run -c release kiln-bench atlas [--quick]`. The per-triangle bake
// Kiln had before (LegacyTextureBake.swift) beside the UV atlas, on marching-cubes surfaces of
// ~20k faces, measured from the baked meshes alone (the same code for both).
import Foundation
import KilnAsset
import KilnCore

/// A colour field with detail at a few texels' scale at 512², never exactly black (so an
/// unwritten, black texel shows).
@Sendable func atlasBenchField(_ p: SIMD3<Float>) -> SIMD3<Float> {
    SIMD3(0.5 + 0.4 * sin(9 * p.x) * sin(7 * p.y + 1), 0.5 + 0.4 * sin(8 * p.y + 2) * sin(9 * p.z), 0.5 + 0.4 * sin(10 * p.z + 1) * sin(6 * p.x + 2))
}

/// What a baked mesh's UVs and texture achieve.
struct AtlasBenchMetrics {
    var charts = 0, interiorEdges = 0, continuousEdges = 0
    /// Texels in the union of the triangles' bilinear footprints / all texels.
    var texelUse = 0.0
    var medianEdgeTexels: Float = 0
    /// Triangles where some bilinear lookup (corners, edge midpoints, 16 random points) reads a black texel.
    var trianglesReadingBlack = 0
    /// Mean |texture − field| over 20k random surface points, per channel.
    var meanColorError = 0.0

    init(_ mesh: TriangleMesh) {
        let texture = mesh.material.baseColorTexture!, size = texture.width
        func texel(_ uv: SIMD2<Float>) -> SIMD2<Float> { SIMD2(uv.x * Float(size), (1 - uv.y) * Float(size)) }
        // Welded interior edges, continuity, and charts (triangles joined across continuous edges).
        var id: [SIMD3<Float>: Int] = [:]
        let key = mesh.positions.map { p in id[p] ?? { id[p] = id.count; return id.count - 1 }() }
        var edges: [SIMD2<Int>: [(triangle: Int, uv: (SIMD2<Float>, SIMD2<Float>))]] = [:]
        for (t, tri) in mesh.triangles.enumerated() {
            for k in 0..<3 {
                let a = Int(tri[k]), b = Int(tri[(k + 1) % 3])
                guard key[a] != key[b] else { continue }
                let (lo, hi) = key[a] < key[b] ? (a, b) : (b, a)
                edges[SIMD2(key[lo], key[hi]), default: []].append((t, (mesh.uvs[lo], mesh.uvs[hi])))
            }
        }
        var parent = Array(mesh.triangles.indices)
        func find(_ x: Int) -> Int { var x = x; while parent[x] != x { parent[x] = parent[parent[x]]; x = parent[x] }; return x }
        for sides in edges.values where sides.count == 2 {
            interiorEdges += 1
            if sides[0].uv.0 == sides[1].uv.0 && sides[0].uv.1 == sides[1].uv.1 {
                continuousEdges += 1
                parent[find(sides[0].triangle)] = find(sides[1].triangle)
            }
        }
        charts = Set(mesh.triangles.indices.map(find)).count
        // Footprints, edge lengths, black taps.
        var footprint = [Bool](repeating: false, count: size * size)
        var legs: [Float] = []
        var rng = RNG(seed: 5)
        func isBlack(_ x: Int, _ y: Int) -> Bool {
            let x = min(size - 1, max(0, x)), y = min(size - 1, max(0, y))
            return texture[x, y, 0] == 0 && texture[x, y, 1] == 0 && texture[x, y, 2] == 0
        }
        for tri in mesh.triangles {
            let uv = (texel(mesh.uvs[Int(tri.x)]), texel(mesh.uvs[Int(tri.y)]), texel(mesh.uvs[Int(tri.z)]))
            UVFootprint.forEachTexel(uv.0, uv.1, uv.2, width: size, height: size) { footprint[$1 * size + $0] = true }
            for (a, b) in [(uv.0, uv.1), (uv.1, uv.2), (uv.2, uv.0)] { legs.append(((a - b) * (a - b)).sum().squareRoot()) }
            var weights: [SIMD3<Float>] = [SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1), SIMD3(0.5, 0.5, 0), SIMD3(0, 0.5, 0.5), SIMD3(0.5, 0, 0.5)]
            for _ in 0..<16 {
                var u = rng.nextFloat(), v = rng.nextFloat()
                if u + v > 1 { u = 1 - u; v = 1 - v }
                weights.append(SIMD3(1 - u - v, u, v))
            }
            let reads = weights.contains { w in
                let q = w.x * uv.0 + w.y * uv.1 + w.z * uv.2
                let x0 = Int((q.x - 0.5).rounded(.down)), y0 = Int((q.y - 0.5).rounded(.down))
                return isBlack(x0, y0) || isBlack(x0 + 1, y0) || isBlack(x0, y0 + 1) || isBlack(x0 + 1, y0 + 1)
            }
            if reads { trianglesReadingBlack += 1 }
        }
        texelUse = Double(footprint.filter { $0 }.count) / Double(size * size)
        legs.sort()
        medianEdgeTexels = legs.isEmpty ? 0 : legs[legs.count / 2]
        // Colour error at random surface points (bilinear, clamped).
        func bilinear(_ p: SIMD2<Float>) -> SIMD3<Float> {
            let x = p.x - 0.5, y = p.y - 0.5, x0 = Int(x.rounded(.down)), y0 = Int(y.rounded(.down))
            let fx = x - Float(x0), fy = y - Float(y0)
            func at(_ i: Int, _ j: Int) -> SIMD3<Float> {
                let i = min(size - 1, max(0, i)), j = min(size - 1, max(0, j))
                return SIMD3(texture[i, j, 0], texture[i, j, 1], texture[i, j, 2])
            }
            return (at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) + (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy
        }
        var error = 0.0
        let samples = 20_000
        for _ in 0..<samples {
            let tri = mesh.triangles[Int(rng.next() % UInt64(mesh.triangleCount))]
            var u = rng.nextFloat(), v = rng.nextFloat()
            if u + v > 1 { u = 1 - u; v = 1 - v }
            let w = SIMD3(1 - u - v, u, v)
            let p = w.x * mesh.positions[Int(tri.x)] + w.y * mesh.positions[Int(tri.y)] + w.z * mesh.positions[Int(tri.z)]
            let q = w.x * texel(mesh.uvs[Int(tri.x)]) + w.y * texel(mesh.uvs[Int(tri.y)]) + w.z * texel(mesh.uvs[Int(tri.z)])
            let d = bilinear(q) - atlasBenchField(p)
            error += Double(abs(d.x) + abs(d.y) + abs(d.z)) / 3
        }
        meanColorError = error / Double(samples)
    }
}

/// Marching-cubes surfaces of ~20k faces: the benchmark torus decimated as `kiln export` does, and
/// a snowman straight from marching cubes.
func atlasBenchMeshes() throws -> [(String, TriangleMesh)] {
    let torus = try MarchingCubes.extract(marchingCubesBenchGrid(size: 128), level: 0, inside: .below)
        .cleanedForExport(MeshCleanupOptions(maximumTriangleCount: 20_000)).mesh
    func ball(_ p: SIMD3<Float>, _ c: SIMD3<Float>, _ r: Float) -> Float { length(p - c) - r }
    let grid = ScalarGrid(nx: 68, ny: 68, nz: 68, origin: SIMD3(repeating: -1), spacing: SIMD3(repeating: 2 / 67)) { p in
        let ring = SIMD2((p.x * p.x + p.z * p.z).squareRoot() - 0.3, p.y - 0.15)
        return min(ball(p, SIMD3(0, -0.45, 0), 0.5), ball(p, SIMD3(0, 0.4, 0), 0.35), (ring * ring).sum().squareRoot() - 0.08)
    }
    let snowman = try MarchingCubes.extract(grid, level: 0, inside: .below).cleanedForExport(MeshCleanupOptions()).mesh
    return [("torus, MC 128³ → 20k", torus), ("snowman, MC 68³", snowman)]
}

func benchAtlas(quick: Bool) {
    let meshes: [(String, TriangleMesh)]
    do { meshes = try atlasBenchMeshes() } catch { print("kiln-bench atlas: \(error)"); exit(1) }
    print("Texture bake: per-triangle cells (before) vs UV atlas, \(Parallel.defaultThreadCount) threads; bake ms median of 3")
    print("| mesh | faces | size | bake | charts | continuous interior edges | texel use | median edge (texels) | triangles reading black texels | mean colour error | bake ms |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (name, mesh) in meshes {
        for size in quick ? [512] : [256, 512, 1024] {
            var legacy = mesh, atlas = mesh
            let legacyMs = median(runs: 3) { legacy = mesh.legacyPerTriangleBake(size: size, color: atlasBenchField) }
            var failure: String? = nil
            let atlasMs = median(runs: 3) {
                do { atlas = try mesh.bakedTexture(size: size, color: atlasBenchField) } catch { failure = "\(error)" }
            }
            for (bake, baked, ms) in [("per-triangle", legacy, legacyMs), ("atlas", atlas, atlasMs)] {
                if bake == "atlas", let failure { print("| \(name) | \(mesh.triangleCount) | \(size) | atlas | \(failure) |"); continue }
                let m = AtlasBenchMetrics(baked)
                print("| \(name) | \(mesh.triangleCount) | \(size) | \(bake) | " + String(format: "%d | %.1f%% | %.1f%% | %.2f | %.2f%% | %.4f | %.0f |", m.charts,
                             100 * Double(m.continuousEdges) / Double(max(1, m.interiorEdges)), 100 * m.texelUse, m.medianEdgeTexels,
                             100 * Double(m.trianglesReadingBlack) / Double(mesh.triangleCount), m.meanColorError, ms))
            }
        }
    }
}
