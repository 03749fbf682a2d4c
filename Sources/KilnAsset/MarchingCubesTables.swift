// MARK: - Cube numbering

/// Corner, edge and triangle tables for `MarchingCubes`, built once from a stated rule instead of
/// typed in, so that crack-freedom follows from the construction rather than from a transcription.
///
/// Numbering (Paul Bourke's, "Polygonising a scalar field", 1994): corner `c` sits at the offset
/// `cornerOffsets[c]` (in samples, +x, +y, +z) of the cube's lowest corner; corners 0–3 go round the
/// z = 0 face, 4–7 round the z = 1 face. Edge `e` joins `edgeCorners[e]`, always from the corner
/// with the lower coordinate to the higher one, so a vertex's interpolation parameter is measured
/// from the lower corner along +axis. Bit `c` of a case index is set when corner `c` is inside.
///
/// The triangles of a case are built as follows. Lorensen & Cline (1987) filled the 256 cases from
/// 15 by rotation and complement, which splits ambiguous faces inconsistently and leaves cracks
/// (Dürst 1988); a table is crack-free when every face's segments depend only on that face's four
/// signs (Nielson & Hamann 1991), which step 1 guarantees. Paul Bourke's table (after Cory Bloyd)
/// treats complements separately for the same reason.
/// 1. On each face, the edges whose corners differ are joined in pairs by segments. A face with
///    four such edges (inside corners on one diagonal) is ambiguous; the rule here is that the two
///    inside corners are always *separated* (each gets its own segment across its corner). The
///    decision depends only on the face's four signs, so the two cubes sharing a face draw the
///    same segments, which is what makes the surface crack-free.
/// 2. Each segment is directed so that, seen from outside the cube, the outside corners lie to the
///    segment's left; the directed segments chain into closed loops on the cube's surface.
/// 3. Each loop is triangulated with the minimum total diagonal length (edge midpoints as
///    geometry), never using a diagonal between two vertices on a common face (two cubes could
///    both pick it, and the edge would then have four triangles). Triangles are counter-clockwise
///    seen from outside, so normals point from inside to outside.
/// Loops are filled as separate disks, so a case whose trilinear interpolant has an interior tunnel
/// (Chernyaev's case 4 and relatives) gets disks instead of a tube: topologically consistent, not
/// always the trilinear topology (scikit-image's Lewiner MC33 resolves those cells differently).
enum MarchingCubesTables {
    /// `[8]` corner offsets (x, y, z) in samples.
    static let cornerOffsets: [SIMD3<Int>] = [
        [0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1],
    ]
    /// `[12]` (lower corner, upper corner) per edge; edges 0, 2, 4, 6 run along x, 1, 3, 5, 7 along
    /// y, 8–11 along z.
    static let edgeCorners: [(Int, Int)] = [
        (0, 1), (1, 2), (3, 2), (0, 3), (4, 5), (5, 6), (7, 6), (4, 7), (0, 4), (1, 5), (2, 6), (3, 7),
    ]
    /// `[12]` axis of each edge: 0 = x, 1 = y, 2 = z.
    static let edgeAxes: [Int] = [0, 1, 0, 1, 0, 1, 0, 1, 2, 2, 2, 2]
    /// `[6]` faces: corners in cyclic order and the outward normal.
    static let faces: [(corners: [Int], normal: SIMD3<Int>)] = [
        ([0, 1, 2, 3], [0, 0, -1]), ([4, 5, 6, 7], [0, 0, 1]),
        ([0, 1, 5, 4], [0, -1, 0]), ([3, 2, 6, 7], [0, 1, 0]),
        ([0, 3, 7, 4], [-1, 0, 0]), ([1, 2, 6, 5], [1, 0, 0]),
    ]

    /// Most triangles any case has (checked when the table is built).
    static let maxTrianglesPerCase = 5

    /// `[256]` cases, each a list of triangles given as three edge indices.
    static let caseTriangles: [[[Int]]] = (0..<256).map { c in
        let t = triangles(case: c)
        precondition(t.count <= maxTrianglesPerCase, "case \(c) has \(t.count) triangles")
        return t
    }
    /// `[256 × 16]` the same, flat: case c's triangles start at `16 · c`, three edges each.
    static let triangleEdges: [UInt8] = caseTriangles.flatMap { triangles in
        triangles.flatMap { $0.map(UInt8.init) } + Array(repeating: 0, count: 16 - 3 * triangles.count)
    }
    /// `[256]` triangles per case.
    static let triangleCounts: [UInt8] = caseTriangles.map { UInt8($0.count) }

    // MARK: - Construction

    static func edge(_ a: Int, _ b: Int) -> Int {
        edgeCorners.firstIndex { $0 == (a, b) || $0 == (b, a) }!
    }

    /// Edge midpoint in cube units.
    static func midpoint(_ e: Int) -> SIMD3<Float> {
        let (a, b) = edgeCorners[e]
        return SIMD3<Float>(cornerOffsets[a] &+ cornerOffsets[b]) * 0.5
    }

    /// The triangles (edge triples, counter-clockwise seen from outside) of case `c`.
    static func triangles(case c: Int) -> [[Int]] {
        let inside = (0..<8).map { (c >> $0) & 1 == 1 }
        // 1–2: directed face segments, chained by `next[from] = to`.
        var next = [Int](repeating: -1, count: 12)
        for face in faces {
            let k = face.corners
            var pairs: [(Int, Int)] = []
            let crossing = (0..<4).filter { inside[k[$0]] != inside[k[($0 + 1) % 4]] }
            if crossing.count == 2 {
                pairs = [(crossing[0], crossing[1])]
            } else if crossing.count == 4 {
                // Ambiguous: cut off each inside corner k[i], whose face edges are i-1 → i and i → i+1.
                for i in 0..<4 where inside[k[i]] { pairs.append(((i + 3) % 4, i)) }
            }
            for (i, j) in pairs {
                let e1 = edge(k[i], k[(i + 1) % 4]), e2 = edge(k[j], k[(j + 1) % 4])
                let p = midpoint(e1), d = midpoint(e2) - p
                let n = SIMD3<Float>(face.normal)
                let outsideCorner = inside[edgeCorners[e1].0] ? edgeCorners[e1].1 : edgeCorners[e1].0
                let toOutside = SIMD3<Float>(cornerOffsets[outsideCorner]) - p
                let left = SIMD3(n.y * d.z - n.z * d.y, n.z * d.x - n.x * d.z, n.x * d.y - n.y * d.x)  // n × d
                let (from, to) = (left * toOutside).sum() > 0 ? (e1, e2) : (e2, e1)
                precondition(next[from] == -1, "case \(c): edge \(from) leaves twice")
                next[from] = to
            }
        }
        // Loops, each started at its lowest edge.
        var loops: [[Int]] = []
        var seen = [Bool](repeating: false, count: 12)
        for start in 0..<12 where next[start] >= 0 && !seen[start] {
            var loop: [Int] = []
            var e = start
            while !seen[e] {
                seen[e] = true
                loop.append(e)
                e = next[e]
                precondition(e >= 0, "case \(c): open loop")
            }
            precondition(e == start, "case \(c): loop does not close")
            loops.append(loop)
        }
        // 3: minimum-weight triangulation of each loop with the allowed diagonals.
        return loops.flatMap(triangulate)
    }

    /// Minimum total diagonal length triangulation of a loop of edge vertices (interval dynamic
    /// programming, O(n³) for n ≤ 12), keeping the loop's orientation.
    static func triangulate(_ loop: [Int]) -> [[Int]] {
        let n = loop.count
        func faceSet(_ e: Int) -> Set<Int> {
            let (a, b) = edgeCorners[e]
            return Set(faces.indices.filter { faces[$0].corners.contains(a) && faces[$0].corners.contains(b) })
        }
        func allowed(_ i: Int, _ j: Int) -> Bool {
            if (j - i + n) % n == 1 || (i - j + n) % n == 1 { return true }  // a loop side
            return faceSet(loop[i]).isDisjoint(with: faceSet(loop[j]))
        }
        func weight(_ i: Int, _ j: Int) -> Float {
            let d = midpoint(loop[i]) - midpoint(loop[j])
            return (d * d).sum().squareRoot()
        }
        // cost[i][j]: best triangulation of the sub-polygon i, i+1, ..., j (i < j), infinity if none.
        var cost = [[Float]](repeating: [Float](repeating: .infinity, count: n), count: n)
        var split = [[Int]](repeating: [Int](repeating: -1, count: n), count: n)
        for i in 0..<(n - 1) { cost[i][i + 1] = 0 }
        for length in 2..<n {
            for i in 0..<(n - length) {
                let j = i + length
                guard allowed(i, j) else { continue }
                for k in (i + 1)..<j where cost[i][k] < .infinity && cost[k][j] < .infinity {
                    let c = cost[i][k] + cost[k][j] + (length < n - 1 ? weight(i, j) : 0)
                    if c < cost[i][j] { cost[i][j] = c; split[i][j] = k }
                }
            }
        }
        precondition(cost[0][n - 1] < .infinity, "loop \(loop) has no triangulation without face diagonals")
        var out: [[Int]] = []
        func emit(_ i: Int, _ j: Int) {
            guard j - i >= 2 else { return }
            let k = split[i][j]
            out.append([loop[i], loop[k], loop[j]])
            emit(i, k)
            emit(k, j)
        }
        emit(0, n - 1)
        return out
    }
}
