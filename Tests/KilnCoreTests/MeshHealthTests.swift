import Testing
@testable import KilnCore

@Suite("Mesh health")
struct MeshHealthTests {
    @Test("a closed sphere is watertight and one piece; removing a triangle opens three boundary edges; two boxes are two components")
    func health() {
        let sphere = TriangleMesh.uvSphere(radius: 1, segments: 12, rings: 8)
        let h = sphere.health
        #expect(h.watertight && h.components == 1 && h.boundaryEdges == 0 && h.nonManifoldEdges == 0, "\(h)")
        #expect(abs(h.surfaceArea - 4 * .pi) < 0.05 * 4 * .pi && abs(h.boundsMin![1] + 1) < 1e-5 && abs(h.boundsMax![1] - 1) < 1e-5, "\(h)")
        var open = sphere
        open.triangles.removeLast()
        #expect(!open.health.watertight && open.health.boundaryEdges == 3)
        let boxes = TriangleMesh.merged([TriangleMesh.box(), TriangleMesh.box(center: SIMD3(3, 0, 0))])
        #expect(boxes.health.components == 2 && boxes.health.watertight)
        var degenerate = sphere
        degenerate.triangles.append(SIMD3(0, 0, 1))
        #expect(degenerate.health.degenerateTriangles == 1)
        // Three triangles on one edge: non-manifold.
        let fan = TriangleMesh(positions: [SIMD3(0, 0, 0), SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, -1, 0), SIMD3(0, 0, 1)],
                               triangles: [SIMD3(0, 1, 2), SIMD3(0, 1, 3), SIMD3(0, 1, 4)])
        #expect(fan.health.nonManifoldEdges == 1 && !fan.health.watertight)
        #expect(TriangleMesh().health.boundsMin == nil && !TriangleMesh().health.watertight)
    }
}
