import KilnCore

/// Plain marching cubes for tests: one cube at a time in (k, j, i) order, one dictionary entry
/// per crossing edge (keyed by the edge's lower sample and axis), vertices created when a
/// triangle first uses them. Same surface as `MarchingCubes.extract` (same tables and vertex rule),
/// different vertex numbering.
public enum MarchingCubesReference {
    /// Same contract as `MarchingCubes.extract`, single-threaded.
    public static func extract(_ grid: ScalarGrid, level: Float, inside: MarchingCubes.Inside = .below,
                               colors: MarchingCubes.VertexColors? = nil) throws -> TriangleMesh {
        try MarchingCubes.validate(grid, level: level, colors: colors, values: true)
        var mesh = TriangleMesh()
        var vertexOfEdge: [Int: UInt32] = [:]
        let corners = MarchingCubesTables.cornerOffsets
        for k in 0..<(grid.nz - 1) {
            for j in 0..<(grid.ny - 1) {
                for i in 0..<(grid.nx - 1) {
                    var cubeIndex = 0
                    for (c, o) in corners.enumerated() {
                        let v = grid[i + o.x, j + o.y, k + o.z]
                        if inside == .below ? v < level : v > level { cubeIndex |= 1 << c }
                    }
                    for triangle in MarchingCubesTables.caseTriangles[cubeIndex] {
                        var corner = SIMD3<UInt32>()
                        for (n, e) in triangle.enumerated() {
                            let (a, b) = MarchingCubesTables.edgeCorners[e]
                            let pa = SIMD3(i, j, k) &+ corners[a], pb = SIMD3(i, j, k) &+ corners[b]
                            let axis = MarchingCubesTables.edgeAxes[e]
                            let key = grid.index(pa.x, pa.y, pa.z) * 3 + axis
                            if let v = vertexOfEdge[key] {
                                corner[n] = v
                            } else {
                                let p = MarchingCubes.edgePoint(pa.x, pa.y, pa.z, axis: axis, grid[pa.x, pa.y, pa.z], grid[pb.x, pb.y, pb.z],
                                                                level: level, origin: grid.origin, spacing: grid.spacing)
                                corner[n] = UInt32(mesh.positions.count)
                                vertexOfEdge[key] = corner[n]
                                mesh.positions.append(p)
                            }
                        }
                        mesh.triangles.append(corner)
                    }
                }
            }
        }
        mesh.colors = MarchingCubes.vertexColors(colors, grid: grid, positions: mesh.positions, threads: 1)
        return mesh
    }
}
