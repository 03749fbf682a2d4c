// Decimation to a triangle budget by quadric error metrics.
//
// M. Garland and P. S. Heckbert, "Surface Simplification Using Quadric Error Metrics",
// SIGGRAPH 1997: every vertex carries the sum of the squared-distance quadrics of the planes of its
// triangles; edges are collapsed cheapest first, the merged vertex placed where the summed quadric
// is smallest. Boundaries and attribute seams are held by constraint planes (§6 of the paper;
// meshoptimizer and Blender's decimate modifier do the same) and move only along themselves, and
// collapses that fold a triangle over or break the surface's manifold structure are refused.

// MARK: - Options

/// How `TriangleMesh.decimated(toTriangleCount:options:)` trades accuracy for triangles.
public struct DecimationOptions: Sendable, Equatable, Codable {
    /// Weight of the boundary and seam constraint planes. Each boundary edge adds the plane through
    /// it perpendicular to its triangle (a seam edge, one per side), weighted by
    /// `boundaryWeight · |edge|²`; face planes are weighted by triangle area, so both terms scale
    /// alike with the mesh.
    public var boundaryWeight: Double = 10
    /// A collapse is refused when a triangle that stays turns too far: the cosine between its normal
    /// before and after must exceed this. 0.2 (about 78°) lets curved regions coarsen while catching
    /// fold-overs; a triangle shrunk to zero area always fails.
    public var minimumNormalCosine: Double = 0.2
    /// Vertices closer than this fraction of the bounding-box diagonal are one point of the surface
    /// (the two sides of a seam, whose positions often differ in the last bits).
    public var seamToleranceRelative: Float = 1e-6

    public init(boundaryWeight: Double = 10, minimumNormalCosine: Double = 0.2, seamToleranceRelative: Float = 1e-6) {
        self.boundaryWeight = boundaryWeight
        self.minimumNormalCosine = minimumNormalCosine
        self.seamToleranceRelative = seamToleranceRelative
    }
}

// MARK: - Entry point

extension TriangleMesh {
    /// The mesh with at most `target` triangles, by quadric-error edge collapse (Garland & Heckbert
    /// 1997).
    ///
    /// Topology is that of positions: vertices at the same position (within `seamToleranceRelative`)
    /// are one point of the surface, so decimation never opens a crack. Those with equal attributes
    /// (within 1e-4) become one vertex, so a triangle soup decimates like a shared mesh; those that
    /// differ (the two sides of a UV seam or a hard edge) keep their own attributes.
    /// - Placement: the point minimising the summed quadric (a 3×3 solve); when that system is
    ///   ill-conditioned (flat or cylindrical regions) or its answer lies farther than two edge
    ///   lengths from the edge, the best point of the edge itself (the quadric restricted to the
    ///   segment is a parabola), compared with both endpoints and the midpoint.
    /// - Boundaries: open edges get constraint planes (see `DecimationOptions.boundaryWeight`), and
    ///   a boundary point only collapses along its boundary, so outlines and their corners stay.
    /// - Seams: a point with two vertices (the two sides of a UV seam or a hard edge) only slides
    ///   along its seam onto the next point of it, both sides at once (each vertex onto the vertex
    ///   on its side, attributes unchanged); seam edges get constraint planes as boundaries do.
    ///   Free points can collapse onto a seam point from either side.
    /// - Locked points never move but can take in free neighbours: junctions of seams (three or
    ///   more vertices, as at a box corner), seam points on a boundary, points on non-manifold or
    ///   inconsistently oriented edges, non-manifold fans, non-finite positions.
    /// - Refused collapses: those breaking the link condition (Dey et al. 1999, with the
    ///   boundary's ear and bridge cases), those turning a remaining triangle's normal beyond
    ///   `minimumNormalCosine`, and those that would give one vertex two sides of a seam.
    /// - Attributes: a merged vertex takes UV, colour and normal interpolated along the edge at
    ///   the chosen position (normals re-normalised).
    ///
    /// The result can stay above `target` when every remaining collapse is refused (a tetrahedron
    /// cannot shrink further, nor can a three-edge hole; locked points stay). Asking for at least
    /// `triangleCount` returns the mesh unchanged. Otherwise triangles with two corners on one point
    /// are dropped, and vertices left unused are removed. Deterministic: ties in cost go to
    /// the lower vertex index.
    /// - Parameters:
    ///   - target: the triangle budget, ≥ 0.
    ///   - options: see `DecimationOptions`.
    /// - Precondition: every index is below `vertexCount`; attribute arrays are empty or `[V]`.
    /// - Complexity: O(F log F) for F input triangles.
    public func decimated(toTriangleCount target: Int, options: DecimationOptions = DecimationOptions()) -> TriangleMesh {
        precondition(target >= 0, "the triangle budget must be ≥ 0, got \(target)")
        checkIndices()
        guard triangleCount > target else { return self }
        var decimator = QuadricDecimator(self, options: options)
        decimator.run(target: target)
        return decimator.result()
    }
}

// MARK: - Quadric

/// The symmetric 4×4 quadric `Q(p) = pᵀAp + 2bᵀp + c` of a sum of weighted squared plane
/// distances, in double precision (sums of thousands of near-equal planes lose single precision).
struct Quadric {
    var xx = 0.0, xy = 0.0, xz = 0.0, yy = 0.0, yz = 0.0, zz = 0.0
    var bx = 0.0, by = 0.0, bz = 0.0, c = 0.0

    init() {}

    /// `weight · (n·p + d)²` for the plane `n·p + d = 0`, `n` a unit normal.
    init(normal n: SIMD3<Double>, offset d: Double, weight w: Double) {
        xx = w * n.x * n.x; xy = w * n.x * n.y; xz = w * n.x * n.z
        yy = w * n.y * n.y; yz = w * n.y * n.z; zz = w * n.z * n.z
        bx = w * n.x * d; by = w * n.y * d; bz = w * n.z * d
        c = w * d * d
    }

    static func + (a: Quadric, b: Quadric) -> Quadric {
        var s = a
        s += b
        return s
    }

    static func += (a: inout Quadric, b: Quadric) {
        a.xx += b.xx; a.xy += b.xy; a.xz += b.xz; a.yy += b.yy; a.yz += b.yz; a.zz += b.zz
        a.bx += b.bx; a.by += b.by; a.bz += b.bz; a.c += b.c
    }

    /// `Q(p)`; can dip a little below 0 by round-off.
    func value(at p: SIMD3<Double>) -> Double {
        let ap = SIMD3(xx * p.x + xy * p.y + xz * p.z, xy * p.x + yy * p.y + yz * p.z, xz * p.x + yz * p.y + zz * p.z)
        return (ap * p).sum() + 2 * (bx * p.x + by * p.y + bz * p.z) + c
    }

    /// The `p` solving `A p = −b` (where `Q` is smallest), or nil when `A` is near singular:
    /// `|det A| ≤ 1e-10 · (trace A)³`, i.e. the smallest eigenvalue is tiny next to the largest.
    func minimizer() -> SIMD3<Double>? {
        // Cofactors of the symmetric A = [[xx xy xz] [xy yy yz] [xz yz zz]] (Cramer's rule).
        let c00 = yy * zz - yz * yz, c01 = xz * yz - xy * zz, c02 = xy * yz - xz * yy
        let det = xx * c00 + xy * c01 + xz * c02
        let trace = xx + yy + zz
        guard trace > 0, abs(det) > 1e-10 * trace * trace * trace else { return nil }
        let c11 = xx * zz - xz * xz, c12 = xy * xz - xx * yz, c22 = xx * yy - xy * xy
        let p = -SIMD3(c00 * bx + c01 * by + c02 * bz, c01 * bx + c11 * by + c12 * bz, c02 * bx + c12 * by + c22 * bz) / det
        return p.x.isFinite && p.y.isFinite && p.z.isFinite ? p : nil
    }
}

// MARK: - Heap

/// A proposed collapse of point `from` into point `to`, which moves to `target`. Valid while both
/// points still have the versions recorded here (lazy deletion: stale entries are skipped on pop).
struct CollapseCandidate {
    var cost: Double
    var from: Int32, to: Int32
    var fromVersion: UInt32, toVersion: UInt32
    /// Rounded to single precision, as the output will be: every point's position stays exactly
    /// representable, so "did it move" is an exact comparison.
    var target: SIMD3<Double>

    /// Cheaper first; ties by point indices, so that the order never depends on insertion timing.
    @inline(__always)
    func precedes(_ other: CollapseCandidate) -> Bool {
        if cost != other.cost { return cost < other.cost }
        if from != other.from { return from < other.from }
        return to < other.to
    }
}

/// A binary min-heap of collapse candidates.
struct CollapseHeap {
    private(set) var entries: [CollapseCandidate] = []

    var isEmpty: Bool { entries.isEmpty }

    mutating func removeAll() { entries.removeAll(keepingCapacity: true) }

    mutating func push(_ e: CollapseCandidate) {
        entries.append(e)
        var i = entries.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard e.precedes(entries[parent]) else { break }
            entries[i] = entries[parent]
            i = parent
        }
        entries[i] = e
    }

    mutating func pop() -> CollapseCandidate? {
        guard let top = entries.first else { return nil }
        let last = entries.removeLast()
        let n = entries.count
        guard n > 0 else { return top }
        var i = 0
        while true {
            var child = 2 * i + 1
            if child >= n { break }
            if child + 1 < n && entries[child + 1].precedes(entries[child]) { child += 1 }
            guard entries[child].precedes(last) else { break }
            entries[i] = entries[child]
            i = child
        }
        entries[i] = last
        return top
    }
}

// MARK: - Decimator

/// Edge-collapse state. "Points" are groups of vertices at one position (the surface's vertices);
/// triangles keep referring to vertices ("wedges") so that attributes survive on each side of a
/// seam. A triangle's corners are `point[tri[t][k]]`.
struct QuadricDecimator {
    /// What a point may do. `free`: interior, one vertex; moves anywhere. `border`: on one open
    /// boundary, one vertex; moves along it only. `seam`: interior, two vertices whose triangles meet
    /// along a seam line through it (a UV seam or hard edge); slides along the seam onto a neighbour
    /// on it, both sides at once. `locked`: stays (seam junctions, non-manifold, non-finite).
    enum Kind: UInt8 { case free, border, seam, locked }

    let options: DecimationOptions
    var source: TriangleMesh
    /// `[V]` point of each vertex.
    var point: [Int32]
    /// `[P]` the point's only vertex, or −1 when several vertices share it (a seam or junction).
    var soleVertex: [Int32]
    /// `[P]` positions, quadrics, kinds, removal flags and versions.
    var position: [SIMD3<Double>]
    var quadric: [Quadric]
    var kind: [Kind]
    var removed: [Bool]
    var version: [UInt32]
    /// `[P]` triangles around each point; may hold dead triangles until compacted.
    var faces: [[Int32]]
    /// `[F]` vertex indices and liveness.
    var tri: [SIMD3<Int32>]
    var alive: [Bool]
    var aliveCount = 0
    /// `[P]` scratch marks: a slot is set when it holds the current stamp.
    var markA: [UInt32], markB: [UInt32]
    var stamp: UInt32 = 0
    var heap = CollapseHeap()

    init(_ mesh: TriangleMesh, options: DecimationOptions) {
        self.options = options
        source = mesh
        let v = mesh.vertexCount
        // Points: vertices welded by position alone; non-finite positions stay apart. Within a
        // point, vertices with equal attributes become one (a soup decimates like a shared mesh);
        // a point left with several vertices is a seam.
        let tolerance = mesh.finiteBounds().map { options.seamToleranceRelative * length($0.max - $0.min) } ?? 0
        let representative = mesh.weldRepresentatives(tolerance: tolerance, attributeTolerance: 0, ignoringAttributes: true)
        point = [Int32](repeating: 0, count: v)
        var canonical = [Int32](repeating: 0, count: v)
        var nextInPoint = [Int32](repeating: -1, count: v)  // canonical vertex → next one at its point
        var positions: [SIMD3<Double>] = []
        var sole: [Int32] = []
        var vertexCount: [Int32] = []
        var lock: [Bool] = []
        for (i, p) in mesh.positions.enumerated() {
            let r = representative[i]
            if r != i {
                let id = point[r]
                point[i] = id
                var c = Int32(r), last = c
                while c >= 0 && !mesh.attributesMatch(i, Int(c), tolerance: 1e-4) { last = c; c = nextInPoint[Int(c)] }
                if c >= 0 {
                    canonical[i] = c
                } else {
                    canonical[i] = Int32(i)
                    nextInPoint[Int(last)] = Int32(i)
                    sole[Int(id)] = -1
                    vertexCount[Int(id)] += 1
                }
                continue
            }
            point[i] = Int32(positions.count)
            canonical[i] = Int32(i)
            positions.append(SIMD3<Double>(p))
            sole.append(Int32(i))
            vertexCount.append(1)
            lock.append(!(p.x.isFinite && p.y.isFinite && p.z.isFinite))
        }
        let pointCount = positions.count
        position = positions
        soleVertex = sole
        quadric = [Quadric](repeating: Quadric(), count: pointCount)
        removed = [Bool](repeating: false, count: pointCount)
        version = [UInt32](repeating: 0, count: pointCount)
        markA = [UInt32](repeating: 0, count: pointCount)
        markB = markA
        kind = [Kind](repeating: .free, count: pointCount)
        faces = [[Int32]](repeating: [], count: pointCount)

        // Triangles; those with two corners on one point cover no area and are dropped.
        tri = mesh.triangles.map { t in SIMD3(canonical[Int(t.x)], canonical[Int(t.y)], canonical[Int(t.z)]) }
        alive = [Bool](repeating: false, count: tri.count)
        for (t, corners) in tri.enumerated() {
            let a = point[Int(corners.x)], b = point[Int(corners.y)], c = point[Int(corners.z)]
            guard a != b && b != c && c != a else { continue }
            alive[t] = true
            aliveCount += 1
            faces[Int(a)].append(Int32(t)); faces[Int(b)].append(Int32(t)); faces[Int(c)].append(Int32(t))
            // Face quadric, weighted by area.
            let pa = position[Int(a)], pb = position[Int(b)], pc = position[Int(c)]
            let n = crossD(pb - pa, pc - pa)
            let twiceArea = (n * n).sum().squareRoot()
            guard twiceArea > 0 && twiceArea.isFinite else { continue }
            let unit = n / twiceArea
            let q = Quadric(normal: unit, offset: -(unit * pa).sum(), weight: twiceArea / 2)
            quadric[Int(a)] += q; quadric[Int(b)] += q; quadric[Int(c)] += q
        }

        // Edge and fan classification, boundary and seam constraint planes.
        var neighbour: [Int32] = [], uses: [Int32] = [], forward: [Int32] = []
        var firstTriangle: [Int32] = [], secondTriangle: [Int32] = []
        var link: [Int] = []
        for a in 0..<pointCount {
            neighbour.removeAll(keepingCapacity: true); uses.removeAll(keepingCapacity: true)
            forward.removeAll(keepingCapacity: true)
            firstTriangle.removeAll(keepingCapacity: true); secondTriangle.removeAll(keepingCapacity: true)
            func slot(_ b: Int32, _ t: Int32) -> Int {
                if let s = neighbour.firstIndex(of: b) {
                    if secondTriangle[s] < 0 { secondTriangle[s] = t }
                    return s
                }
                neighbour.append(b); uses.append(0); forward.append(0); firstTriangle.append(t); secondTriangle.append(-1)
                return neighbour.count - 1
            }
            var linkEdges: [(Int, Int)] = []
            for t in faces[a] {
                let c = corners(Int(t))
                let k = c.x == Int32(a) ? 0 : (c.y == Int32(a) ? 1 : 2)
                let next = c[(k + 1) % 3], prev = c[(k + 2) % 3]
                let sn = slot(next, t), sp = slot(prev, t)
                uses[sn] += 1; uses[sp] += 1
                forward[sn] += 1  // the triangle runs a → next
                linkEdges.append((sn, sp))
            }
            var locked = lock[a]
            var openEnds = 0, seamSpokes = 0
            for s in neighbour.indices {
                let b = Int(neighbour[s])
                if uses[s] > 2 || (uses[s] == 2 && forward[s] != 1) {
                    // Non-manifold or inconsistently oriented edge: both ends stay where they are.
                    locked = true; lock[b] = true
                } else if uses[s] == 1 {
                    openEnds += 1
                    if b > a { addBoundaryPlane(a, b, triangle: Int(firstTriangle[s])) }
                } else {
                    let t1 = Int(firstTriangle[s]), t2 = Int(secondTriangle[s])
                    let splitHere = vertex(of: t1, at: Int32(a)) != vertex(of: t2, at: Int32(a))
                    if splitHere { seamSpokes += 1 }
                    if b > a && (splitHere || vertex(of: t1, at: Int32(b)) != vertex(of: t2, at: Int32(b))) {
                        // A seam edge: held like a boundary seen from each side.
                        addBoundaryPlane(a, b, triangle: t1)
                        addBoundaryPlane(a, b, triangle: t2)
                    }
                }
            }
            // The link (opposite edges of the fan) must be one cycle or one path.
            if !locked && !neighbour.isEmpty {
                link = Array(neighbour.indices)
                func find(_ x: Int) -> Int {
                    var x = x
                    while link[x] != x { link[x] = link[link[x]]; x = link[x] }
                    return x
                }
                for (s, p) in linkEdges { let rs = find(s), rp = find(p); if rs != rp { link[max(rs, rp)] = min(rs, rp) } }
                let connected = neighbour.indices.allSatisfy { find($0) == 0 }
                if !connected || !(openEnds == 0 || openEnds == 2) { locked = true }
            }
            if locked || (vertexCount[a] > 1 && (openEnds > 0 || vertexCount[a] > 2 || seamSpokes != 2)) {
                kind[a] = .locked
            } else if vertexCount[a] == 2 {
                kind[a] = .seam
            } else if openEnds > 0 {
                kind[a] = .border
            }
        }
        for a in 0..<pointCount where lock[a] { kind[a] = .locked }
    }

    @inline(__always)
    func corners(_ t: Int) -> SIMD3<Int32> {
        let w = tri[t]
        return SIMD3(point[Int(w.x)], point[Int(w.y)], point[Int(w.z)])
    }

    /// The vertex triangle `t` uses at point `p` (one of its corners).
    @inline(__always)
    func vertex(of t: Int, at p: Int32) -> Int32 {
        let w = tri[t]
        return point[Int(w.x)] == p ? w.x : (point[Int(w.y)] == p ? w.y : w.z)
    }

    /// Adds the constraint plane of boundary edge (a, b) of triangle `t` to both ends' quadrics.
    mutating func addBoundaryPlane(_ a: Int, _ b: Int, triangle t: Int) {
        let c = corners(t)
        let pa = position[Int(c.x)], pb = position[Int(c.y)], pc = position[Int(c.z)]
        let n = crossD(pb - pa, pc - pa)
        let edge = position[b] - position[a]
        let m = crossD(edge, n)
        let lm = (m * m).sum().squareRoot()
        guard lm > 0 && lm.isFinite else { return }
        let unit = m / lm
        let q = Quadric(normal: unit, offset: -(unit * position[a]).sum(),
                        weight: options.boundaryWeight * (edge * edge).sum())
        quadric[a] += q
        quadric[b] += q
    }

    mutating func nextStamp() -> UInt32 {
        stamp &+= 1
        if stamp == 0 {  // wrapped: clear all marks once
            for i in markA.indices { markA[i] = 0; markB[i] = 0 }
            stamp = 1
        }
        return stamp
    }

    // MARK: Planning

    /// Whether the two live triangles on edge (a, b) use different vertices at `a`: the edge runs
    /// along a seam through `a`.
    func isSeamEdge(at a: Int, toward b: Int) -> Bool {
        var first: Int32 = -1
        for t in faces[a] where alive[Int(t)] {
            let c = corners(Int(t))
            guard c.x == Int32(b) || c.y == Int32(b) || c.z == Int32(b) else { continue }
            let v = vertex(of: Int(t), at: Int32(a))
            if first < 0 { first = v } else { return v != first }
        }
        return false
    }

    /// Live triangles around point `a` that contain point `b`.
    func sharedTriangleCount(_ a: Int, _ b: Int) -> Int {
        var n = 0
        for t in faces[a] where alive[Int(t)] {
            let c = corners(Int(t))
            if c.x == Int32(b) || c.y == Int32(b) || c.z == Int32(b) { n += 1 }
        }
        return n
    }

    /// The collapse of edge (a, b) the rules allow, with its cost, or nil.
    func plan(_ a: Int, _ b: Int) -> CollapseCandidate? {
        let ka = kind[a], kb = kind[b]
        let from: Int, to: Int, target: SIMD3<Double>
        let q = quadric[a] + quadric[b]
        switch (ka, kb) {
        case (.locked, .locked):
            return nil
        case (.free, .free):
            (from, to) = (max(a, b), min(a, b))
            target = placement(q, position[from], position[to])
        case (.free, _):
            (from, to, target) = (a, b, position[b])
        case (_, .free):
            (from, to, target) = (b, a, position[a])
        case (.border, .border):
            // Along the boundary only: an interior edge between two boundary points is a bridge.
            guard sharedTriangleCount(a, b) == 1 else { return nil }
            (from, to) = (max(a, b), min(a, b))
            target = placement(q, position[from], position[to])
        case (.border, .locked), (.locked, .border):
            guard sharedTriangleCount(a, b) == 1 else { return nil }
            (from, to) = ka == .border ? (a, b) : (b, a)
            target = position[to]
        case (.seam, .seam):
            // Along the seam only, onto the end that costs less (ties: from the higher index).
            let ab = isSeamEdge(at: a, toward: b), ba = isSeamEdge(at: b, toward: a)
            guard ab || ba else { return nil }
            let costAB = q.value(at: position[b]), costBA = q.value(at: position[a])
            let aToB = ab && (!ba || costAB < costBA || (costAB == costBA && a > b))
            (from, to) = aToB ? (a, b) : (b, a)
            target = position[to]
        case (.seam, .locked), (.locked, .seam):
            (from, to) = ka == .seam ? (a, b) : (b, a)
            guard isSeamEdge(at: from, toward: to) else { return nil }
            target = position[to]
        default:  // a boundary point and a seam point: neither may leave its line
            return nil
        }
        let cost = max(0, q.value(at: target))
        guard cost.isFinite else { return nil }
        return CollapseCandidate(cost: cost, from: Int32(from), to: Int32(to), fromVersion: version[from],
                                 toVersion: version[to], target: SIMD3<Double>(SIMD3<Float>(target)))
    }

    /// Where the merged point goes: the quadric's minimiser, or the best point of the edge
    /// (Garland & Heckbert §4: along the segment, then among endpoints and midpoint).
    func placement(_ q: Quadric, _ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
        let d = b - a
        let length2 = (d * d).sum()
        if let p = q.minimizer() {
            let m = p - (a + b) / 2
            if (m * m).sum() <= 4 * length2 { return p }
        }
        var best = a, bestCost = q.value(at: a)
        for candidate in [b, (a + b) / 2] {
            let cost = q.value(at: candidate)
            if cost < bestCost { best = candidate; bestCost = cost }
        }
        // Q(a + s·d) = α s² + 2β s + γ; its minimum on [0, 1] when α > 0.
        let qa = q.value(at: a), qb = q.value(at: b), qm = q.value(at: (a + b) / 2)
        let alpha = 2 * (qa + qb - 2 * qm)  // second difference of the parabola
        if alpha > 1e-12 * max(abs(qa), abs(qb), Double.leastNormalMagnitude) {
            let s = min(1, max(0, (qa - qb) / (2 * alpha) + 0.5))
            let candidate = a + s * d
            if q.value(at: candidate) < bestCost { best = candidate }
        }
        return best
    }

    // MARK: Collapsing

    mutating func run(target: Int) {
        // Collapses refused now may become possible after their neighbourhood changes; edges whose
        // ends did not change are not re-queued, so further passes over all edges catch them (on
        // the meshes tried, the second and third passes add the last few collapses, if any).
        for _ in 0..<8 where aliveCount > target {
            heap.removeAll()
            for a in position.indices where !removed[a] {
                let s = nextStamp()
                for t in faces[a] where alive[Int(t)] {
                    let c = corners(Int(t))
                    for k in 0..<3 where Int(c[k]) > a && markA[Int(c[k])] != s {
                        let b = c[k]
                        markA[Int(b)] = s
                        if let e = plan(a, Int(b)) { heap.push(e) }
                    }
                }
            }
            var collapsed = false
            while aliveCount > target, let e = heap.pop() {
                let from = Int(e.from), to = Int(e.to)
                guard !removed[from] && !removed[to] && version[from] == e.fromVersion && version[to] == e.toVersion else { continue }
                if collapse(from, into: to, at: e.target) { collapsed = true }
            }
            if !collapsed { break }
        }
    }

    /// Collapses point `from` into `to`, moved to `target`, when every check passes.
    mutating func collapse(_ from: Int, into to: Int, at target: SIMD3<Double>) -> Bool {
        let fanFrom = faces[from].filter { alive[Int($0)] }
        let fanTo = faces[to].filter { alive[Int($0)] }
        let f32 = Int32(from), t32 = Int32(to)

        // Triangles on the edge, and their third points.
        let around = nextStamp()
        var edgeTriangles: [Int32] = [], opposite: [Int32] = []
        for t in fanFrom {
            let c = corners(Int(t))
            for k in 0..<3 where c[k] != f32 { markA[Int(c[k])] = around }
            if c.x == t32 || c.y == t32 || c.z == t32 {
                edgeTriangles.append(t)
                opposite.append(c.x != f32 && c.x != t32 ? c.x : (c.y != f32 && c.y != t32 ? c.y : c.z))
            }
        }
        let onEdge = edgeTriangles.count
        guard onEdge == 1 || onEdge == 2 else { return false }
        // Boundary points move along boundary edges only; interior points have no boundary edges.
        guard (kind[from] == .border) == (onEdge == 1) else { return false }

        // Link condition: the points next to both ends are exactly the edge's third points.
        let common = nextStamp()
        var commonCount = 0
        for t in fanTo {
            let c = corners(Int(t))
            for k in 0..<3 {
                let p = c[k]
                guard p != t32 && p != f32 && markA[Int(p)] == around && markB[Int(p)] != common else { continue }
                markB[Int(p)] = common
                guard opposite.contains(p) else { return false }
                commonCount += 1
            }
        }
        guard commonCount == onEdge else { return false }
        if onEdge == 1 {
            // An ear (both other edges on the boundary) would vanish and leave a dangling point.
            let o = Int(opposite[0])
            if sharedTriangleCount(from, o) == 1 && sharedTriangleCount(to, o) == 1 { return false }
        } else {
            // Link condition on edges: a triangle spanning both third points around each end would
            // be doubled (the tetrahedron case).
            func spansOpposites(_ fan: [Int32]) -> Bool {
                fan.contains { t in
                    guard !edgeTriangles.contains(t) else { return false }
                    let c = corners(Int(t))
                    return (opposite.contains(c.x) ? 1 : 0) + (opposite.contains(c.y) ? 1 : 0) + (opposite.contains(c.z) ? 1 : 0) == 2
                }
            }
            if spansOpposites(fanFrom) && spansOpposites(fanTo) { return false }
        }

        // Which vertex of `to` each vertex of `from` becomes: the one beside it on an edge triangle.
        // A seam point's two vertices follow the seam, one to each side; a single vertex needs the
        // edge triangles to agree (an edge along a seam of `to` cannot take it).
        let e0 = Int(edgeTriangles[0]), e1 = Int(edgeTriangles[onEdge - 1])
        let from0 = vertex(of: e0, at: f32), from1 = vertex(of: e1, at: f32)
        let to0 = vertex(of: e0, at: t32), to1 = vertex(of: e1, at: t32)
        if kind[from] == .seam {
            guard onEdge == 2 && from0 != from1 else { return false }
        } else {
            guard from0 == from1 && to0 == to1 && soleVertex[from] == from0 else { return false }
        }

        // No remaining triangle may fold over or shrink to nothing.
        let moved = target != position[to]
        for t in fanFrom where !edgeTriangles.contains(t) {
            if turnsTooFar(Int(t), moving: f32, to: target) { return false }
        }
        if moved {
            for t in fanTo where !edgeTriangles.contains(t) {
                if turnsTooFar(Int(t), moving: t32, to: target) { return false }
            }
        }

        // Apply.
        for t in edgeTriangles { alive[Int(t)] = false; aliveCount -= 1 }
        for t in fanFrom where alive[Int(t)] {
            var w = tri[Int(t)]
            for k in 0..<3 {
                if w[k] == from0 { w[k] = to0 } else if w[k] == from1 { w[k] = to1 }
            }
            tri[Int(t)] = w
            faces[to].append(t)
        }
        faces[to].removeAll { !alive[Int($0)] }
        faces[from] = []
        if moved {
            let a = position[from], d = position[to] - a
            let length2 = (d * d).sum()
            let s = length2 > 0 ? Float(min(1, max(0, ((target - a) * d).sum() / length2))) : 1
            blendAttributes(into: Int(to0), from: Int(from0), weightOfInto: s)
        }
        position[to] = target
        quadric[to] += quadric[from]
        removed[from] = true
        version[from] &+= 1
        version[to] &+= 1

        // Re-queue the edges around the merged point.
        let requeue = nextStamp()
        for t in faces[to] {
            let c = corners(Int(t))
            for k in 0..<3 where c[k] != t32 && markA[Int(c[k])] != requeue {
                let b = c[k]
                markA[Int(b)] = requeue
                if let e = plan(to, Int(b)) { heap.push(e) }
            }
        }
        return true
    }

    /// Whether triangle `t` turns beyond the allowed angle (or degenerates) when point `p` moves.
    func turnsTooFar(_ t: Int, moving p: Int32, to target: SIMD3<Double>) -> Bool {
        let c = corners(t)
        let a = position[Int(c.x)], b = position[Int(c.y)], d = position[Int(c.z)]
        let before = crossD(b - a, d - a)
        let a2 = c.x == p ? target : a, b2 = c.y == p ? target : b, d2 = c.z == p ? target : d
        let after = crossD(b2 - a2, d2 - a2)
        let lb = (before * before).sum()
        if lb == 0 { return false }  // was already degenerate: no orientation to keep
        let la = (after * after).sum()
        // Written so that NaN (a non-finite corner) counts as turning too far.
        return !((before * after).sum() > options.minimumNormalCosine * (lb * la).squareRoot())
    }

    /// Vertex `into` takes `(1 − s)·from + s·into` of every attribute (normals re-normalised).
    mutating func blendAttributes(into: Int, from: Int, weightOfInto s: Float) {
        if !source.uvs.isEmpty { source.uvs[into] = source.uvs[from] + s * (source.uvs[into] - source.uvs[from]) }
        if !source.colors.isEmpty { source.colors[into] = source.colors[from] + s * (source.colors[into] - source.colors[from]) }
        if !source.normals.isEmpty {
            let n = source.normals[from] + s * (source.normals[into] - source.normals[from])
            if lengthSquared(n) > 1e-12 { source.normals[into] = normalize(n) }
        }
    }

    /// The decimated mesh: live triangles in their original order, moved points written back,
    /// unused vertices removed.
    func result() -> TriangleMesh {
        var out = source
        for v in out.positions.indices {
            let p = Int(point[v])
            if soleVertex[p] == Int32(v) && !removed[p] { out.positions[v] = SIMD3<Float>(position[p]) }
        }
        out.triangles = tri.indices.filter { alive[$0] }.map { SIMD3<UInt32>(truncatingIfNeeded: tri[$0]) }
        return out.removingUnusedVertices()
    }
}

@inline(__always)
private func crossD(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
