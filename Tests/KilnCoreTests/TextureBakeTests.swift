import Testing
@testable import KilnCore

@Suite("Texture baking")
struct TextureBakeTests {
    /// A colour field linear in position, so a texel's expected colour is exact.
    @Sendable static func field(_ p: SIMD3<Float>) -> SIMD3<Float> { SIMD3((p.x + 1) / 2, (p.y + 1) / 2, (p.z + 1) / 2) }

    @Test("every triangle's UV footprint carries the field: centroid texels match it; UVs stay in [0, 1]; any thread count gives the same texture")
    func bake() {
        let mesh = TriangleMesh.uvSphere(radius: 0.9, segments: 20, rings: 10)
        let baked = mesh.bakedTexture(size: 256, threads: 2, color: Self.field)
        #expect(baked.triangleCount == mesh.triangleCount && baked.vertexCount == 3 * mesh.triangleCount && baked.validationFailure() == nil)
        #expect(baked.uvs.allSatisfy { $0.x > 0 && $0.x < 1 && $0.y > 0 && $0.y < 1 })
        let texture = baked.material.baseColorTexture!
        var worst: Float = 0
        var seen = Set<Int>()
        for (t, tri) in baked.triangles.enumerated() {
            let uv = (baked.uvs[Int(tri[0])] + baked.uvs[Int(tri[1])] + baked.uvs[Int(tri[2])]) / 3
            let x = Int(uv.x * 256), y = Int((1 - uv.y) * 256)
            #expect(seen.insert(y * 256 + x).inserted, "triangle \(t) shares its centroid texel")
            let p = (baked.positions[Int(tri[0])] + baked.positions[Int(tri[1])] + baked.positions[Int(tri[2])]) / 3
            let expected = Self.field(p)
            for c in 0..<3 { worst = max(worst, abs(texture[x, y, c] - expected[c])) }
        }
        // A texel spans at most ~0.05 units of these triangles: the field moves ≤ 0.03 across it.
        #expect(worst < 0.05, "worst centroid error \(worst)")
        #expect(mesh.bakedTexture(size: 256, threads: 1, color: Self.field).material.baseColorTexture == texture)
    }
}
