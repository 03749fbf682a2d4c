import Foundation

/// The k nearest neighbours of every point in a set (excluding the point itself), through a
/// uniform grid: points are bucketed in cells about the mean spacing wide, and each query searches
/// rings of cells outwards until the ring is farther than its k-th candidate.
public enum NearestNeighbours {
    /// - Returns: `[N, k]` indices, nearest first (fewer than k when the set is smaller); ties by index.
    public static func search(_ points: [SIMD3<Float>], k: Int, threads: Int = Parallel.defaultThreadCount) -> [[Int]] {
        table(points, k: k, threads: threads).lists
    }

    /// The k points of `points` nearest to each of `queries` (which may lie anywhere).
    public static func search(_ points: [SIMD3<Float>], queries: [SIMD3<Float>], k: Int, threads: Int = Parallel.defaultThreadCount) -> [[Int]] {
        search(points, queries: queries, k: k, excludingSelf: false, threads: threads).lists
    }

    /// `search(points, k:)` as one flat table, without an array per point (what the colour
    /// smoothness and the 4D rigidity use at every step).
    public static func table(_ points: [SIMD3<Float>], k: Int, threads: Int = Parallel.defaultThreadCount) -> NeighbourTable {
        search(points, queries: points, k: k, excludingSelf: true, threads: threads)
    }

    /// A query outside the grid starts from its nearest cell: its distance to any point is at
    /// least its projection's, so the ring bound still holds.
    static func search(_ points: [SIMD3<Float>], queries: [SIMD3<Float>], k: Int, excludingSelf: Bool, threads: Int) -> NeighbourTable {
        let n = points.count
        guard n > (excludingSelf ? 1 : 0), k > 0 else { return NeighbourTable(k: 0, count: queries.count, indices: []) }
        var low = points[0], hi = points[0]
        for p in points { low = pointwiseMin(low, p); hi = pointwiseMax(hi, p) }
        let lo = low
        let extent = pointwiseMax(hi - lo, SIMD3(repeating: 1e-6))
        // Cells holding about k points each.
        let volume = extent.x * extent.y * extent.z
        let cell = max(cbrt(volume * Float(k) / Float(n)), extent.max() / 256, 1e-6)
        let dims = SIMD3<Int>(pointwiseMax(SIMD3<Float>(repeating: 1), (extent / cell).rounded(.up)))
        @Sendable func cellOf(_ p: SIMD3<Float>) -> SIMD3<Int> {
            pointwiseMin(pointwiseMax(SIMD3<Int>(((p - lo) / cell).rounded(.down)), .zero), dims &- 1)
        }
        // Counting sort of the points by cell.
        var start = [Int](repeating: 0, count: dims.x * dims.y * dims.z + 1)
        let cellIndex = points.map { p -> Int in let c = cellOf(p); return (c.z * dims.y + c.y) * dims.x + c.x }
        for c in cellIndex { start[c + 1] += 1 }
        for i in 1..<start.count { start[i] += start[i - 1] }
        var fill = start, sorted = [Int](repeating: 0, count: n)
        for i in 0..<n { sorted[fill[cellIndex[i]]] = i; fill[cellIndex[i]] += 1 }
        let (first, order) = (start, sorted)
        // The points in cell order, so that a cell's candidates are read contiguously; a set's own
        // points are queried in that order too, so that neighbouring queries share their cells.
        let sortedPoints = order.map { points[$0] }
        let queryOrder = excludingSelf ? order : Array(queries.indices)
        // Every query finds exactly `wanted`: the rings grow until they cover the grid.
        let wanted = min(k, excludingSelf ? n - 1 : n)
        var result = [Int32](repeating: 0, count: queries.count * wanted)
        result.withUnsafeMutableBufferPointer { buffer in
            let out = UnsafeMutableSendableBuffer(buffer)
            sortedPoints.withUnsafeBufferPointer { pointBuffer in
            order.withUnsafeBufferPointer { orderBuffer in
            first.withUnsafeBufferPointer { firstBuffer in
                let (points, order, first) = (UnsafeSendableBuffer(pointBuffer), UnsafeSendableBuffer(orderBuffer), UnsafeSendableBuffer(firstBuffer))
                parallelFor(queries.count, threads: threads) { range in
                    // The k best so far, nearest first (ties by index), in a buffer reused across queries.
                    var bestD = [Float](repeating: 0, count: wanted), bestJ = [Int](repeating: 0, count: wanted)
                    for q in range {
                        let i = queryOrder[q], p = queries[i], home = cellOf(p)
                        var count = 0
                        // p's distance to the nearest face of its home cell (0 outside the grid):
                        // every point beyond ring r is at least r·cell + this far away.
                        let offset = p - lo - SIMD3<Float>(home) * cell
                        let inside = pointwiseMin(offset, SIMD3(repeating: cell) - offset)
                        let margin = max(0, inside.min())
                        var ring = 0
                        while true {
                            // The cells at Chebyshev distance `ring` from home: whole rows on the two
                            // z faces and the two y faces, the two end cells of every other row.
                            for z in max(0, home.z - ring)...min(dims.z - 1, home.z + ring) {
                                for y in max(0, home.y - ring)...min(dims.y - 1, home.y + ring) {
                                    let onFace = abs(z - home.z) == ring || abs(y - home.y) == ring
                                    let x0 = max(0, home.x - ring), x1 = min(dims.x - 1, home.x + ring)
                                    let step = onFace || ring == 0 ? 1 : 2 * ring
                                    for x in stride(from: home.x - ring, through: home.x + ring, by: step) where x >= x0 && x <= x1 {
                                        let c = (z * dims.y + y) * dims.x + x
                                        for s in first[c]..<first[c + 1] {
                                            let e = points[s] - p
                                            let d = (e * e).sum()
                                            let j = order[s]
                                            guard !excludingSelf || j != i else { continue }
                                            // Insert (d, j) if it beats the k-th: shift the worse ones down.
                                            if count == wanted && (d > bestD[count - 1] || (d == bestD[count - 1] && j > bestJ[count - 1])) { continue }
                                            var slot = count < wanted ? count : count - 1
                                            while slot > 0 && (bestD[slot - 1] > d || (bestD[slot - 1] == d && bestJ[slot - 1] > j)) {
                                                bestD[slot] = bestD[slot - 1]; bestJ[slot] = bestJ[slot - 1]
                                                slot -= 1
                                            }
                                            bestD[slot] = d; bestJ[slot] = j
                                            if count < wanted { count += 1 }
                                        }
                                    }
                                }
                            }
                            let reach = Float(ring) * cell + margin
                            let covered = ring >= max(dims.x, dims.y, dims.z)
                            if covered || (count == wanted && bestD[count - 1] <= reach * reach) { break }
                            ring += 1
                        }
                        for a in 0..<wanted { out[i * wanted + a] = Int32(truncatingIfNeeded: bestJ[a]) }
                    }
                }
            }
            }
            }
        }
        return NeighbourTable(k: wanted, count: queries.count, indices: result)
    }
}

/// The k nearest neighbours of each of `count` queries in one flat array: query i's are
/// `indices[(i·k)..<((i + 1)·k)]`, nearest first (k may be less than asked for, never different
/// between queries).
public struct NeighbourTable: Sendable, Equatable {
    public let k: Int
    public let count: Int
    public let indices: [Int32]

    public init(k: Int, count: Int, indices: [Int32]) {
        precondition(indices.count == k * count, "NeighbourTable: \(indices.count) indices for \(count) × \(k)")
        (self.k, self.count, self.indices) = (k, count, indices)
    }

    /// Query i's neighbours.
    public subscript(i: Int) -> ArraySlice<Int32> { indices[(i * k)..<((i + 1) * k)] }

    /// One array per query, as `NearestNeighbours.search` returns them.
    public var lists: [[Int]] { (0..<count).map { i in self[i].map { Int($0) } } }
}

@inline(__always) private func cbrt(_ x: Float) -> Float { x <= 0 ? 0 : Float(Foundation.cbrt(Double(x))) }
