import Foundation
import Testing
import KilnCore

/// Meshes and checks shared by the atlas tests. KilnAssetTests links this file too (a symbolic link),
/// for its marching-cubes test, so it uses KilnCore's public API only.
enum AtlasFixtures {
    /// A colour field linear in position, away from 0 so that an unbaked (black) texel shows.
    @Sendable static func field(_ p: SIMD3<Float>) -> SIMD3<Float> { SIMD3(0.1 + 0.4 * (p.x + 1), 0.1 + 0.4 * (p.y + 1), 0.1 + 0.4 * (p.z + 1)) }

    /// An icosahedron subdivided `levels` times onto a sphere (20·4^levels faces, shared vertices).
    static func icosphere(levels: Int, radius: Float = 0.9) -> TriangleMesh {
        let t: Float = (1 + Float(5).squareRoot()) / 2
        let positions: [SIMD3<Float>] = [SIMD3(-1, t, 0), SIMD3(1, t, 0), SIMD3(-1, -t, 0), SIMD3(1, -t, 0), SIMD3(0, -1, t), SIMD3(0, 1, t),
                                         SIMD3(0, -1, -t), SIMD3(0, 1, -t), SIMD3(t, 0, -1), SIMD3(t, 0, 1), SIMD3(-t, 0, -1), SIMD3(-t, 0, 1)]
        let faces: [SIMD3<UInt32>] = [SIMD3(0, 11, 5), SIMD3(0, 5, 1), SIMD3(0, 1, 7), SIMD3(0, 7, 10), SIMD3(0, 10, 11), SIMD3(1, 5, 9), SIMD3(5, 11, 4),
                                      SIMD3(11, 10, 2), SIMD3(10, 7, 6), SIMD3(7, 1, 8), SIMD3(3, 9, 4), SIMD3(3, 4, 2), SIMD3(3, 2, 6), SIMD3(3, 6, 8),
                                      SIMD3(3, 8, 9), SIMD3(4, 9, 5), SIMD3(2, 4, 11), SIMD3(6, 2, 10), SIMD3(8, 6, 7), SIMD3(9, 8, 1)]
        let fine = subdivided(TriangleMesh(positions: positions, triangles: faces), levels: levels)
        return TriangleMesh(positions: fine.positions.map { normalize($0) * radius }, triangles: fine.triangles)
    }

    /// Each triangle split in 4 at its edges' midpoints, `levels` times (shape unchanged).
    static func subdivided(_ mesh: TriangleMesh, levels: Int) -> TriangleMesh {
        var positions = mesh.positions, faces = mesh.triangles
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
        return TriangleMesh(positions: positions, triangles: faces)
    }

    /// A torus around +Y (major radius `major`, tube radius `minor`), `segments × sides` quads.
    static func torus(major: Float = 0.6, minor: Float = 0.25, segments: Int = 48, sides: Int = 24) -> TriangleMesh {
        var mesh = TriangleMesh()
        for i in 0..<segments {
            let u = Float(i) / Float(segments) * 2 * .pi
            for j in 0..<sides {
                let v = Float(j) / Float(sides) * 2 * .pi
                let r = major + minor * cos(v)
                mesh.positions.append(SIMD3(r * cos(u), minor * sin(v), r * sin(u)))
            }
        }
        for i in 0..<segments {
            for j in 0..<sides {
                let a = UInt32(i * sides + j), b = UInt32(((i + 1) % segments) * sides + j)
                let c = UInt32(((i + 1) % segments) * sides + (j + 1) % sides), d = UInt32(i * sides + (j + 1) % sides)
                mesh.triangles += [SIMD3(a, b, c), SIMD3(a, c, d)]
            }
        }
        return mesh
    }

    /// An icosphere with every vertex pushed along a random direction by up to `amount`.
    static func noisy(levels: Int = 3, amount: Float = 0.04, seed: UInt64 = 7) -> TriangleMesh {
        var rng = RNG(seed: seed)
        var mesh = icosphere(levels: levels)
        mesh.positions = mesh.positions.map { $0 + amount * SIMD3(rng.uniform(-1...1), rng.uniform(-1...1), rng.uniform(-1...1)) }
        return mesh
    }

    /// Bilinear lookup (texel centres at i + 0.5, clamped) of an RGBA image at texel coordinates `p`.
    static func bilinear(_ image: Image, _ p: SIMD2<Float>) -> SIMD3<Float> {
        let x = p.x - 0.5, y = p.y - 0.5
        let x0 = Int(x.rounded(.down)), y0 = Int(y.rounded(.down))
        let fx = x - Float(x0), fy = y - Float(y0)
        func texel(_ i: Int, _ j: Int) -> SIMD3<Float> {
            let ii = min(image.width - 1, max(0, i)), jj = min(image.height - 1, max(0, j))
            return SIMD3(image[ii, jj, 0], image[ii, jj, 1], image[ii, jj, 2])
        }
        let top = texel(x0, y0) * (1 - fx) + texel(x0 + 1, y0) * fx
        let bottom = texel(x0, y0 + 1) * (1 - fx) + texel(x0 + 1, y0 + 1) * fx
        return top * (1 - fy) + bottom * fy
    }

    /// What a bake must satisfy; each failure is one line.
    /// - every bilinear lookup at corners, edge points and random interior points of every triangle
    ///   reads 4 texels inside the texture that the bake wrote (its coverage mask, before dilation);
    /// - no texel lies in the footprints of two charts;
    /// - the texture's colour at those points is the field's within `tolerance` (in colour units,
    ///   plus the field's change over 2 texels);
    /// - per chart, texels per unit of area (√(UV area / surface area)) within a factor 2 of the others.
    static func failures(_ bake: TextureBake, _ input: TriangleMesh, samplesPerTriangle: Int = 24, tolerance: Float = 0.02, seed: UInt64 = 1) -> [String] {
        let mesh = bake.mesh, atlas = bake.atlas, size = atlas.size
        let texture = mesh.material.baseColorTexture!
        var problems: [String] = []
        var rng = RNG(seed: seed)
        var unwritten = 0, worstColour: (error: Float, triangle: Int) = (0, -1)
        let slack = tolerance + 0.4 * 2 * Float(3).squareRoot() / max(atlas.texelsPerUnit, 1e-6)  // |∇field| = 0.4·√3 per unit
        for (t, tri) in mesh.triangles.enumerated() {
            let uv = (0..<3).map { SIMD2(mesh.uvs[Int(tri[$0])].x * Float(size), (1 - mesh.uvs[Int(tri[$0])].y) * Float(size)) }
            let p = (0..<3).map { mesh.positions[Int(tri[$0])] }
            var weights: [SIMD3<Float>] = [SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1), SIMD3(0.5, 0.5, 0), SIMD3(0, 0.5, 0.5), SIMD3(0.5, 0, 0.5)]
            for _ in 0..<samplesPerTriangle {
                var a = rng.nextFloat(), b = rng.nextFloat()
                if a + b > 1 { a = 1 - a; b = 1 - b }
                weights.append(SIMD3(1 - a - b, a, b))
            }
            for w in weights {
                let q = w.x * uv[0] + w.y * uv[1] + w.z * uv[2]
                let x0 = Int((q.x - 0.5).rounded(.down)), y0 = Int((q.y - 0.5).rounded(.down))
                for (x, y) in [(x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)] where !(x >= 0 && y >= 0 && x < size && y < size && bake.coverage[y * size + x]) {
                    unwritten += 1
                }
                let expected = field(w.x * p[0] + w.y * p[1] + w.z * p[2])
                let error = maxAbs(bilinear(texture, q) - expected)
                if error > worstColour.error { worstColour = (error, t) }
            }
        }
        if unwritten > 0 { problems.append("\(unwritten) bilinear taps inside triangles read unbaked texels") }
        if worstColour.error > slack { problems.append("colour off the field by \(worstColour.error) (allowed \(slack)) in triangle \(worstColour.triangle)") }
        // Texel-level overlap of charts' footprints.
        var owner = [Int32](repeating: -1, count: size * size)
        var shared = 0
        for (t, tri) in atlas.triangles.enumerated() {
            let c = atlas.triangleCharts[t]
            let uv = (atlas.texelCoordinates[Int(tri.x)], atlas.texelCoordinates[Int(tri.y)], atlas.texelCoordinates[Int(tri.z)])
            UVFootprint.forEachTexel(uv.0, uv.1, uv.2, width: size, height: size) { x, y in
                if owner[y * size + x] >= 0 && owner[y * size + x] != c { shared += 1 }
                owner[y * size + x] = c
            }
        }
        if shared > 0 { problems.append("\(shared) texels lie in the footprints of two charts") }
        // Texel density per chart.
        var uvArea = [Double](repeating: 0, count: atlas.chartCount), area = [Double](repeating: 0, count: atlas.chartCount)
        for (t, tri) in atlas.triangles.enumerated() {
            let c = Int(atlas.triangleCharts[t])
            let a = atlas.texelCoordinates[Int(tri.x)], b = atlas.texelCoordinates[Int(tri.y)], d = atlas.texelCoordinates[Int(tri.z)]
            uvArea[c] += Double(abs((b - a).x * (d - a).y - (b - a).y * (d - a).x)) / 2
            let s = input.triangles[t]
            area[c] += Double(length(cross(input.positions[Int(s.y)] - input.positions[Int(s.x)], input.positions[Int(s.z)] - input.positions[Int(s.x)]))) / 2
        }
        let total = area.reduce(0, +)
        let densities = area.indices.filter { area[$0] > 1e-4 * total }.map { (uvArea[$0] / area[$0]).squareRoot() }
        if let lo = densities.min(), let hi = densities.max(), hi > 2 * lo { problems.append("texel density varies from \(lo) to \(hi) per unit") }
        return problems
    }

    /// Interior edges of the input (welded by exact position) and how many are continuous in UV,
    /// measured on the baked mesh alone.
    static func continuity(_ mesh: TriangleMesh) -> (interior: Int, continuous: Int) {
        var id: [SIMD3<Float>: Int] = [:]
        let key = mesh.positions.map { p in id[p] ?? { id[p] = id.count; return id.count - 1 }() }
        var edges: [SIMD2<Int>: [(SIMD2<Float>, SIMD2<Float>)]] = [:]
        for tri in mesh.triangles {
            for k in 0..<3 {
                let a = Int(tri[k]), b = Int(tri[(k + 1) % 3])
                guard key[a] != key[b] else { continue }
                let (lo, hi) = key[a] < key[b] ? (a, b) : (b, a)
                edges[SIMD2(key[lo], key[hi]), default: []].append((mesh.uvs[lo], mesh.uvs[hi]))
            }
        }
        let interior = edges.values.filter { $0.count == 2 }
        return (interior.count, interior.filter { $0[0].0 == $0[1].0 && $0[0].1 == $0[1].1 }.count)
    }
}
