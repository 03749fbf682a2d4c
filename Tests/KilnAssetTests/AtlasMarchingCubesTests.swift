import Testing
import KilnAsset
import KilnCore

@Suite("Texture atlas on marching-cubes surfaces")
struct AtlasMarchingCubesTests {
    /// A snowman's signed distance (two balls and a ring for a scarf), on a 56³ grid: ~14k faces
    /// with marching cubes' slivers and staircase normals.
    static func snowman() throws -> TriangleMesh {
        func ball(_ p: SIMD3<Float>, _ c: SIMD3<Float>, _ r: Float) -> Float { length(p - c) - r }
        let grid = ScalarGrid(nx: 56, ny: 56, nz: 56, origin: SIMD3(repeating: -1), spacing: SIMD3(repeating: 2 / 55)) { p in
            let ring = SIMD2((p.x * p.x + p.z * p.z).squareRoot() - 0.3, p.y - 0.15)
            return min(ball(p, SIMD3(0, -0.45, 0), 0.5), ball(p, SIMD3(0, 0.4, 0), 0.35), (ring * ring).sum().squareRoot() - 0.08)
        }
        return try MarchingCubes.extract(grid, level: 0, inside: .below, threads: 2)
    }

    @Test("lookups read baked texels, charts do not overlap, colours follow the field, most interior edges continuous", arguments: [128, 512])
    func snowman(size: Int) throws {
        let mesh = try Self.snowman()
        #expect(mesh.triangleCount > 8000)
        let bake = try mesh.bakedTextureWithReport(size: size, threads: 2, color: AtlasFixtures.field)
        let failures = AtlasFixtures.failures(bake, mesh, samplesPerTriangle: 8)
        #expect(failures.isEmpty, "\(failures.joined(separator: "; "))")
        let (interior, continuous) = AtlasFixtures.continuity(bake.mesh)
        #expect(Double(continuous) >= 0.85 * Double(interior), "\(continuous) of \(interior) continuous: \(bake.report)")
        #expect(bake.report.trianglesReadingUnwrittenTexels == 0 && bake.report.texelUse > 0.3, "\(bake.report)")
    }
}
