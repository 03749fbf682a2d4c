import Testing
@testable import KilnCore

@Suite("Texture baking")
struct TextureBakeTests {
    static let shapes: [(String, TriangleMesh, Double)] = [
        ("icosphere", AtlasFixtures.icosphere(levels: 3), 0.9),
        ("UV sphere", TriangleMesh.uvSphere(radius: 0.9, segments: 20, rings: 10), 0.85),
        ("cube", AtlasFixtures.subdivided(TriangleMesh.box(size: SIMD3(1.2, 1.2, 1.2)), levels: 3), 0.9),
        ("torus", AtlasFixtures.torus(), 0.85),
        ("noisy icosphere", AtlasFixtures.noisy(), 0.5),
    ]

    @Test("the atlas bake: lookups read baked texels, charts do not overlap, colours follow the field, one density, continuous UVs",
          arguments: [0, 1, 2, 3, 4], [64, 256])
    func bake(shape: Int, size: Int) throws {
        let (name, mesh, share) = Self.shapes[shape]
        let bake = try mesh.bakedTextureWithReport(size: size, threads: 2, color: AtlasFixtures.field)
        let failures = AtlasFixtures.failures(bake, mesh)
        #expect(failures.isEmpty, "\(name) at \(size)²: \(failures.joined(separator: "; "))")
        let (interior, continuous) = AtlasFixtures.continuity(bake.mesh)
        #expect(Double(continuous) >= share * Double(interior), "\(name) at \(size)²: \(continuous) of \(interior) interior edges continuous (\(bake.report))")
        #expect(bake.report.trianglesReadingUnwrittenTexels == 0 && bake.report.texelUse > 0.05, "\(bake.report)")
        #expect(bake.mesh.triangleCount == mesh.triangleCount && bake.mesh.validationFailure() == nil)
        #expect(bake.mesh.uvs.allSatisfy { $0.x > 0 && $0.x < 1 && $0.y > 0 && $0.y < 1 })
        // Only seam vertices are copied.
        #expect(bake.mesh.vertexCount == mesh.vertexCount + bake.report.seamVertexCount)
    }

    @Test("smooth shapes get few charts and few seams; a cube gets one chart per face")
    func charts() throws {
        let sphere = try AtlasFixtures.icosphere(levels: 4).bakedTextureWithReport(size: 512, color: AtlasFixtures.field).report
        #expect(sphere.chartCount <= 12 && sphere.continuousEdgeShare > 0.97, "\(sphere)")
        let cube = try TriangleMesh.box(size: SIMD3(1, 1, 1)).bakedTextureWithReport(size: 128, color: AtlasFixtures.field).report
        #expect(cube.chartCount == 6 && cube.continuousEdgeShare == 6.0 / 18, "\(cube)")  // 6 diagonals of 18 interior edges
        #expect(sphere.texelUse > 0.4, "\(sphere)")
    }

    @Test("the texture does not depend on the thread count")
    func determinism() throws {
        for mesh in [AtlasFixtures.noisy(), AtlasFixtures.torus()] {
            let one = try mesh.bakedTextureWithReport(size: 128, threads: 1, color: AtlasFixtures.field)
            let two = try mesh.bakedTextureWithReport(size: 128, threads: 2, color: AtlasFixtures.field)
            let three = try mesh.bakedTextureWithReport(size: 128, threads: 3, color: AtlasFixtures.field)
            #expect(one.mesh == two.mesh && two.mesh == three.mesh && one.coverage == two.coverage && one.report == three.report)
        }
    }

    @Test("degenerate and zero-area triangles, a single triangle and an empty mesh bake without trouble")
    func degenerate() throws {
        var mesh = AtlasFixtures.icosphere(levels: 1)
        let n = UInt32(mesh.vertexCount)
        mesh.positions += [SIMD3(0, 0, 2), SIMD3(0.5, 0, 2), SIMD3(1, 0, 2)]
        mesh.triangles += [SIMD3(n, n + 1, n + 2),  // three corners on a line
                           SIMD3(0, 0, 1),  // a repeated index
                           SIMD3(2, 2, 2),  // a point
                           SIMD3(n + 2, n + 1, n)]  // the line again, reversed
        let bake = try mesh.bakedTextureWithReport(size: 64, color: AtlasFixtures.field)
        let failures = AtlasFixtures.failures(bake, mesh)
        #expect(failures.isEmpty, "\(failures)")
        #expect(bake.report.trianglesReadingUnwrittenTexels == 0)
        let single = TriangleMesh(positions: [SIMD3(0, 0, 0), SIMD3(1, 0, 0), SIMD3(0, 1, 0)], triangles: [SIMD3(0, 1, 2)])
        let one = try single.bakedTextureWithReport(size: 16, color: AtlasFixtures.field)
        #expect(one.report.chartCount == 1 && AtlasFixtures.failures(one, single).isEmpty && one.report.texelUse > 0.2, "\(one.report)")
        let empty = try TriangleMesh().bakedTextureWithReport(size: 16, color: AtlasFixtures.field)
        #expect(empty.mesh.triangleCount == 0 && empty.report.chartCount == 0)
    }

    @Test("too many charts for the texture is a typed error that names a size that works")
    func doesNotFit() {
        #expect(throws: UVAtlasError.self) { try AtlasFixtures.noisy(levels: 4, amount: 0.2).bakedTexture(size: 16, color: AtlasFixtures.field) }
    }

    @Test("the scanline footprint holds the separating-axis reference's texels and none beyond its 2e-3-wider square, on random triangles")
    func footprint() {
        var rng = RNG(seed: 11)
        let width = 24, height = 20
        for trial in 0..<3000 {
            func point() -> SIMD2<Float> { SIMD2(rng.uniform(-4...28), rng.uniform(-4...24)) }
            var a = point(), b = point(), c = point()
            switch trial % 6 {
            case 0: b = a + SIMD2(rng.uniform(-2...2), rng.uniform(-2...2)); c = a + SIMD2(rng.uniform(-2...2), rng.uniform(-2...2))  // small
            case 1: c = a + (b - a) * rng.uniform(0...1)  // a segment
            case 2: b = a; c = a  // a point
            case 3: a = a.rounded(.down) + 0.5; b = b.rounded(.down); c = c.rounded(.down) + SIMD2(0.5, 0)  // on texel lines
            default: break
            }
            var fast = Set<SIMD2<Int>>(), reference = Set<SIMD2<Int>>(), grown = Set<SIMD2<Int>>()
            UVFootprint.forEachTexel(a, b, c, width: width, height: height) { fast.insert(SIMD2($0, $1)) }
            UVFootprintReference.forEachTexel(a, b, c, width: width, height: height) { reference.insert(SIMD2($0, $1)) }
            UVFootprintReference.forEachTexel(a, b, c, width: width, height: height, grow: 2e-3) { grown.insert(SIMD2($0, $1)) }
            func sorted(_ s: Set<SIMD2<Int>>) -> [SIMD2<Int>] { s.sorted { ($0.y, $0.x) < ($1.y, $1.x) } }
            #expect(reference.isSubset(of: fast) && fast.isSubset(of: grown),
                    "trial \(trial) \(a) \(b) \(c): missing \(sorted(reference.subtracting(fast))), extra \(sorted(fast.subtracting(grown)))")
            if !(reference.isSubset(of: fast) && fast.isSubset(of: grown)) { break }
        }
    }

    @Test("a bilinear lookup anywhere in a triangle reads footprint texels only")
    func footprintCoversLookups() {
        var rng = RNG(seed: 12)
        for _ in 0..<500 {
            let a = SIMD2(rng.uniform(5...34), rng.uniform(5...34)), b = a + SIMD2(rng.uniform(-3...3), rng.uniform(-3...3)), c = a + SIMD2(rng.uniform(-3...3), rng.uniform(-3...3))
            var texels = Set<SIMD2<Int>>()
            UVFootprint.forEachTexel(a, b, c, width: 40, height: 40) { texels.insert(SIMD2($0, $1)) }
            for _ in 0..<50 {
                var u = rng.nextFloat(), v = rng.nextFloat()
                if u + v > 1 { u = 1 - u; v = 1 - v }
                let q = a + u * (b - a) + v * (c - a)
                let x0 = Int((q.x - 0.5).rounded(.down)), y0 = Int((q.y - 0.5).rounded(.down))
                for tap in [SIMD2(x0, y0), SIMD2(x0 + 1, y0), SIMD2(x0, y0 + 1), SIMD2(x0 + 1, y0 + 1)] {
                    #expect(texels.contains(tap), "lookup at \(q) reads \(tap) outside the footprint of \(a) \(b) \(c)")
                }
            }
        }
    }
}
