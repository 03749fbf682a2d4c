/// The plain reference for `NearestNeighbours`: every pair's distance, sorted.
public enum NearestNeighboursReference {
    /// Same contract as `NearestNeighbours.search`, single-threaded: each point its own query,
    /// itself excluded, unless `queries` are given.
    public static func search(_ points: [SIMD3<Float>], queries: [SIMD3<Float>]? = nil, k: Int) -> [[Int]] {
        (queries ?? points).indices.map { i in
            let q = (queries ?? points)[i]
            let others = points.indices.filter { queries != nil || $0 != i }.map { j -> (d: Float, j: Int) in let d = points[j] - q; return ((d * d).sum(), j) }
            return Array(others.sorted { $0.d < $1.d || ($0.d == $1.d && $0.j < $1.j) }.prefix(k).map(\.j))
        }
    }
}
