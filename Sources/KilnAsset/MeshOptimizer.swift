import CMeshOptimizer
import KilnCore

/// meshoptimizer (github.com/zeux/meshoptimizer, 0.18 as Debian ships it) on Kiln's meshes:
/// its edge-collapse simplifier and its vertex-cache index ordering.
public enum MeshOptimizer {
    /// The linked library's version, e.g. "0.18" (`MESHOPTIMIZER_VERSION` = 180).
    public static let version = "\(MESHOPTIMIZER_VERSION / 1000).\(MESHOPTIMIZER_VERSION % 1000 / 10)"

    /// The mesh with at most `target` triangles by `meshopt_simplify`: quadric-error collapses of
    /// an edge onto one of its ends (vertices never move, so attributes stay exact), refusing
    /// collapses that flip a triangle or change the topology; seams (one position, several
    /// vertices) collapse only along themselves. It stops above `target` when nothing more can
    /// collapse; vertices left unused are removed (order kept).
    /// - Parameters:
    ///   - target: the triangle budget, ≥ 0.
    ///   - lockBorder: keep vertices on open edges where they are.
    /// - Returns: the mesh and meshoptimizer's error estimate, relative to the mesh's extent.
    public static func simplified(_ mesh: TriangleMesh, toTriangleCount target: Int, lockBorder: Bool = false) -> (mesh: TriangleMesh, relativeError: Float) {
        precondition(target >= 0, "the triangle budget must be ≥ 0, got \(target)")
        guard mesh.triangleCount > target else { return (mesh, 0) }
        let indices = mesh.triangles.flatMap { [$0.x, $0.y, $0.z] }
        var destination = [UInt32](repeating: 0, count: indices.count)  // worst case: all of them
        var error: Float = 0
        let kept = mesh.positions.withUnsafeBufferPointer { positions in
            positions.withMemoryRebound(to: Float.self) { floats in
                meshopt_simplify(&destination, indices, indices.count, floats.baseAddress, mesh.vertexCount, MemoryLayout<SIMD3<Float>>.stride,
                                 3 * target, .greatestFiniteMagnitude, lockBorder ? UInt32(meshopt_SimplifyLockBorder) : 0, &error)
            }
        }
        var out = mesh
        out.triangles = stride(from: 0, to: kept, by: 3).map { SIMD3(destination[$0], destination[$0 + 1], destination[$0 + 2]) }
        return (out.removingUnusedVertices(), error)
    }

    /// The triangles reordered for a GPU's post-transform vertex cache (`meshopt_optimizeVertexCache`,
    /// Tom Forsyth's linear-speed algorithm): the same triangles, each with its corners in the same
    /// cyclic order, in a new order.
    public static func vertexCacheOrdered(_ triangles: [SIMD3<UInt32>], vertexCount: Int) -> [SIMD3<UInt32>] {
        guard !triangles.isEmpty else { return triangles }
        let indices = triangles.flatMap { [$0.x, $0.y, $0.z] }
        var destination = [UInt32](repeating: 0, count: indices.count)
        meshopt_optimizeVertexCache(&destination, indices, indices.count, vertexCount)
        return stride(from: 0, to: destination.count, by: 3).map { SIMD3(destination[$0], destination[$0 + 1], destination[$0 + 2]) }
    }

    /// Average cache miss ratio of an index order: vertices transformed per triangle by a FIFO
    /// cache of `cacheSize` vertices (`meshopt_analyzeVertexCache`); 0.5 is the ideal for a large
    /// regular mesh, 3 the worst.
    public static func averageCacheMissRatio(_ triangles: [SIMD3<UInt32>], vertexCount: Int, cacheSize: Int = 16) -> Double {
        guard !triangles.isEmpty else { return 0 }
        let indices = triangles.flatMap { [$0.x, $0.y, $0.z] }
        return Double(meshopt_analyzeVertexCache(indices, indices.count, vertexCount, UInt32(cacheSize), 0, 0).acmr)
    }
}
