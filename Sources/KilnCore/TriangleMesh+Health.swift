/// What a mesh's consumers (game engines, slicers, web viewers) trip over, measured.
public struct MeshHealth: Sendable, Codable, Equatable {
    public var vertices: Int
    public var triangles: Int
    /// Triangles with (near) zero area or a repeated vertex index.
    public var degenerateTriangles: Int
    /// Connected pieces (vertices at one position count as one, as `connectedComponents()`).
    public var components: Int
    /// Edges used by one triangle (holes) and by three or more (non-manifold), with vertices
    /// welded by position.
    public var boundaryEdges: Int
    public var nonManifoldEdges: Int
    /// Every edge shared by exactly two triangles: the surface encloses a volume.
    public var watertight: Bool
    /// Axis-aligned bounds, nil for a mesh without vertices.
    public var boundsMin: [Float]?
    public var boundsMax: [Float]?
    public var surfaceArea: Float
}

extension TriangleMesh {
    /// The mesh's health report. For the edge counts, vertices within 10⁻⁶ of the bounding
    /// box's diagonal of each other are one vertex (attributes ignored), so UV and normal seams and
    /// rounding at a sphere's poles do not read as holes.
    public var health: MeshHealth {
        let b = bounds
        let diagonal = b.map { length($0.max - $0.min) } ?? 0
        let areas = triangleAreas
        let degenerate = zip(triangles, areas).filter { tri, area in
            tri.x == tri.y || tri.y == tri.z || tri.x == tri.z || !(area > 1e-12 * max(1, diagonal * diagonal))
        }.count
        let welded = diagonal.isFinite ? mergingVertices(tolerance: 1e-6 * diagonal, ignoringAttributes: true) : self
        var edges: [SIMD2<UInt32>: Int] = [:]
        let weldedAreas = welded.triangleAreas
        for (t, tri) in welded.triangles.enumerated() where weldedAreas[t] > 0 {
            for (u, v) in [(tri.x, tri.y), (tri.y, tri.z), (tri.z, tri.x)] { edges[SIMD2(min(u, v), max(u, v)), default: 0] += 1 }
        }
        let boundary = edges.values.filter { $0 == 1 }.count, nonManifold = edges.values.filter { $0 > 2 }.count
        return MeshHealth(vertices: vertexCount, triangles: triangleCount, degenerateTriangles: degenerate,
                          components: triangles.isEmpty ? 0 : connectedComponents().count, boundaryEdges: boundary, nonManifoldEdges: nonManifold,
                          watertight: !edges.isEmpty && boundary == 0 && nonManifold == 0,
                          boundsMin: b.map { [$0.min.x, $0.min.y, $0.min.z] }, boundsMax: b.map { [$0.max.x, $0.max.y, $0.max.z] },
                          surfaceArea: areas.reduce(0, +))
    }
}
