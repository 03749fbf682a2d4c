// Mesh clean-up for export: degenerate and duplicate triangles, vertex welding, small islands.
//
// Every operation is deterministic (no hashing order reaches the output: ties go to the lowest
// index) and keeps the order of what it keeps. Decimation lives in TriangleMesh+Decimation.swift;
// `cleanedForExport(_:)` below chains them all.

// MARK: - Degenerate and duplicate triangles

extension TriangleMesh {
    /// The mesh without triangles that cover no area, and without repeated triangles.
    ///
    /// A triangle is dropped when
    /// - two of its indices are equal;
    /// - a corner's position is not finite;
    /// - its area is zero or nearly so: `|(b − a) × (c − a)| ≤ areaEpsilon · ℓ²`, with ℓ the longest
    ///   edge. `|(b − a) × (c − a)| / ℓ` is the triangle's height over its longest edge, so the test
    ///   reads *height ≤ areaEpsilon × longest edge*: free of the mesh's scale, and it catches both
    ///   needles (two corners together) and caps (three corners on a line). Three coincident corners
    ///   give 0 ≤ 0 and are dropped. The default 1e-6 sits ten times above single-precision
    ///   round-off of the cross product;
    /// - `removingDuplicates` is true and it repeats an earlier triangle's indices in the same cyclic
    ///   order (`(a, b, c)`, `(b, c, a)` and `(c, a, b)` are one triangle; the first is kept).
    ///   The reversed triangle `(a, c, b)` is *not* a duplicate: a pair of opposite triangles is a
    ///   two-sided sheet (leaves, cards) that renders differently with one of them gone, and for an
    ///   internal wall left by welding two solids, keeping one of the pair would not make the mesh
    ///   manifold either.
    ///
    /// Vertices are kept, so indices stay valid; follow with `removingUnusedVertices()`.
    /// - Precondition: every index is below `vertexCount`.
    /// - Complexity: O(F), plus O(F) expected hashing when removing duplicates.
    public func removingDegenerateTriangles(areaEpsilon: Float = 1e-6, removingDuplicates: Bool = true) -> TriangleMesh {
        filteringDegenerateTriangles(areaEpsilon: areaEpsilon, removingDuplicates: removingDuplicates).mesh
    }

    /// `removingDegenerateTriangles` with the number of degenerate and of duplicate triangles dropped.
    func filteringDegenerateTriangles(areaEpsilon: Float, removingDuplicates: Bool)
        -> (mesh: TriangleMesh, degenerate: Int, duplicates: Int) {
        precondition(areaEpsilon >= 0, "areaEpsilon must be ≥ 0, got \(areaEpsilon)")
        checkIndices()
        var kept: [SIMD3<UInt32>] = []
        kept.reserveCapacity(triangles.count)
        var seen = Set<SIMD3<UInt32>>()
        var degenerate = 0, duplicates = 0
        for t in triangles {
            if isDegenerate(t, areaEpsilon: areaEpsilon) { degenerate += 1; continue }
            if removingDuplicates {
                // Rotate the smallest index to the front: one key per cyclic order.
                let key = t.x < t.y ? (t.x < t.z ? t : SIMD3(t.z, t.x, t.y))
                                    : (t.y < t.z ? SIMD3(t.y, t.z, t.x) : SIMD3(t.z, t.x, t.y))
                if !seen.insert(key).inserted { duplicates += 1; continue }
            }
            kept.append(t)
        }
        var out = self
        out.triangles = kept
        return (out, degenerate, duplicates)
    }

    private func isDegenerate(_ t: SIMD3<UInt32>, areaEpsilon: Float) -> Bool {
        if t.x == t.y || t.y == t.z || t.z == t.x { return true }
        let a = positions[Int(t.x)], b = positions[Int(t.y)], c = positions[Int(t.z)]
        let ab = b - a, bc = c - b, ca = a - c
        let longest = max(lengthSquared(ab), lengthSquared(bc), lengthSquared(ca))
        let twiceArea = length(cross(ab, -ca))
        // Written so that NaN (a non-finite corner) fails the test and counts as degenerate.
        return !(twiceArea > areaEpsilon * longest)
    }

    /// Stops with a message when a triangle indexes past the vertex array.
    func checkIndices() {
        let v = positions.count
        for (i, t) in triangles.enumerated() where Int(t.max()) >= v {
            preconditionFailure("triangle \(i) indexes vertex \(t.max()) but there are only \(v) vertices")
        }
    }
}

// MARK: - Vertex welding

extension TriangleMesh {
    /// The mesh with vertices closer than `tolerance` welded into one, triangles re-indexed.
    ///
    /// Policy: vertices are visited in index order; each one joins the *lowest-index kept vertex*
    /// within `tolerance` (Euclidean, in mesh units) whose attributes match, or is kept itself.
    /// Every welded vertex therefore lies within `tolerance` of the vertex it joined (no chains that
    /// drift), and the result does not depend on hashing order.
    /// - Attributes match when every normal, UV and colour component differs by at most
    ///   `attributeTolerance`. So a texture seam (one position, two UVs) and a hard edge (one
    ///   position, two normals) stay split, while the duplicate identical vertices that marching
    ///   cubes or a triangle soup produce weld fully.
    /// - With `ignoringAttributes`, position alone decides. The kept vertex keeps its position and UV
    ///   (averaging UVs across a seam is meaningless); normals are averaged over the welded group and
    ///   re-normalised (the first one is kept when they cancel), colours are averaged.
    ///
    /// Triangles that end up with a repeated index are dropped; vertices no triangle uses are kept
    /// (see `removingUnusedVertices()`). Vertices with a non-finite position are never welded.
    /// Spatial hashing on a grid of cells `2·tolerance` wide: a point within `tolerance` of `p` lies
    /// in `p`'s cell or in the neighbour on `p`'s nearer side along each axis, so 8 cells are probed.
    /// - Parameters:
    ///   - tolerance: largest welding distance, ≥ 0; 0 welds exactly equal positions only.
    ///   - attributeTolerance: largest per-component attribute difference, ≥ 0.
    ///   - ignoringAttributes: weld by position only (see above).
    /// - Precondition: every index is below `vertexCount`; attribute arrays are empty or `[V]`.
    /// - Complexity: O(V + F) expected for well-spread vertices.
    public func mergingVertices(tolerance: Float, attributeTolerance: Float = 1e-4,
                                ignoringAttributes: Bool = false) -> TriangleMesh {
        weldingVertices(tolerance: tolerance, attributeTolerance: attributeTolerance,
                        ignoringAttributes: ignoringAttributes).mesh
    }

    /// `mergingVertices` with the number of triangles dropped because welding collapsed them.
    func weldingVertices(tolerance: Float, attributeTolerance: Float, ignoringAttributes: Bool)
        -> (mesh: TriangleMesh, collapsedTriangles: Int) {
        precondition(tolerance >= 0 && tolerance.isFinite, "tolerance must be finite and ≥ 0, got \(tolerance)")
        precondition(attributeTolerance >= 0, "attributeTolerance must be ≥ 0, got \(attributeTolerance)")
        checkIndices()
        let representative = weldRepresentatives(tolerance: tolerance, attributeTolerance: attributeTolerance,
                                                 ignoringAttributes: ignoringAttributes)
        let n = positions.count
        var newIndex = [UInt32](repeating: 0, count: n)
        var kept: [Int] = []
        for i in 0..<n where representative[i] == i {
            newIndex[i] = UInt32(kept.count)
            kept.append(i)
        }
        var out = self
        out.positions = kept.map { positions[$0] }
        out.uvs = uvs.isEmpty ? [] : kept.map { uvs[$0] }
        out.normals = normals.isEmpty ? [] : kept.map { normals[$0] }
        out.colors = colors.isEmpty ? [] : kept.map { colors[$0] }
        if ignoringAttributes && (!normals.isEmpty || !colors.isEmpty) {
            var normalSum = [SIMD3<Float>](repeating: .zero, count: normals.isEmpty ? 0 : kept.count)
            var colorSum = [SIMD4<Float>](repeating: .zero, count: colors.isEmpty ? 0 : kept.count)
            var groupSize = [Float](repeating: 0, count: kept.count)
            for i in 0..<n {
                let g = Int(newIndex[representative[i]])
                if !normals.isEmpty { normalSum[g] += normals[i] }
                if !colors.isEmpty { colorSum[g] += colors[i] }
                groupSize[g] += 1
            }
            for g in 0..<kept.count where groupSize[g] > 1 {
                if !normals.isEmpty, length(normalSum[g]) > 1e-6 { out.normals[g] = normalize(normalSum[g]) }
                if !colors.isEmpty { out.colors[g] = colorSum[g] / groupSize[g] }
            }
        }
        var collapsed = 0
        out.triangles = []
        out.triangles.reserveCapacity(triangles.count)
        for t in triangles {
            let r = SIMD3(newIndex[representative[Int(t.x)]], newIndex[representative[Int(t.y)]],
                          newIndex[representative[Int(t.z)]])
            if r.x == r.y || r.y == r.z || r.z == r.x { collapsed += 1 } else { out.triangles.append(r) }
        }
        return (out, collapsed)
    }

    /// `[V]` the vertex each vertex welds into (itself when kept); always `≤` its own index.
    func weldRepresentatives(tolerance: Float, attributeTolerance: Float, ignoringAttributes: Bool) -> [Int] {
        let n = positions.count
        var representative = Array(0..<n)
        guard let (lo, hi) = finiteBounds() else { return representative }
        // Cells at least 2⁻²⁸ of the extent keep cell coordinates inside Int32.
        let extent = max((hi - lo).max(), Float.leastNormalMagnitude)
        let cell = max(2 * tolerance, extent * 0x1p-28)
        let tolerance2 = tolerance * tolerance
        var head: [SIMD3<Int32>: Int32] = [:]  // cell → most recently kept vertex in it
        head.reserveCapacity(n)
        var next = [Int32](repeating: -1, count: n)  // kept vertex → previous kept vertex in its cell
        for i in 0..<n {
            let p = positions[i]
            guard p.x.isFinite && p.y.isFinite && p.z.isFinite else { continue }
            let q = (p - lo) / cell
            let c = SIMD3<Int32>(q.rounded(.down))
            let f = q - q.rounded(.down)
            let side = SIMD3<Int32>(f.x < 0.5 ? -1 : 1, f.y < 0.5 ? -1 : 1, f.z < 0.5 ? -1 : 1)
            var best = Int.max
            for corner in 0..<8 {
                let offset = SIMD3<Int32>(Int32(corner & 1), Int32(corner >> 1 & 1), Int32(corner >> 2 & 1)) &* side
                var r = head[c &+ offset] ?? -1
                while r >= 0 {
                    let j = Int(r)
                    if j < best && lengthSquared(positions[j] - p) <= tolerance2
                        && (ignoringAttributes || attributesMatch(i, j, tolerance: attributeTolerance)) {
                        best = j
                    }
                    r = next[j]
                }
            }
            if best != Int.max {
                representative[i] = best
            } else {
                next[i] = head[c] ?? -1
                head[c] = Int32(i)
            }
        }
        return representative
    }

    /// Whether vertices `i` and `j` agree in every attribute component within `tolerance`.
    func attributesMatch(_ i: Int, _ j: Int, tolerance: Float) -> Bool {
        if !normals.isEmpty && maxAbs(normals[i] - normals[j]) > tolerance { return false }
        if !uvs.isEmpty {
            let d: SIMD2<Float> = uvs[i] - uvs[j]
            if Swift.max(Swift.abs(d.x), Swift.abs(d.y)) > tolerance { return false }
        }
        if !colors.isEmpty && maxAbs(colors[i] - colors[j]) > tolerance { return false }
        return true
    }

    /// Bounds of the finite positions, or nil when there are none.
    func finiteBounds() -> (min: SIMD3<Float>, max: SIMD3<Float>)? {
        var lo = SIMD3<Float>(repeating: .infinity), hi = SIMD3<Float>(repeating: -.infinity)
        var any = false
        for p in positions where p.x.isFinite && p.y.isFinite && p.z.isFinite {
            lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p); any = true
        }
        return any ? (lo, hi) : nil
    }
}

// MARK: - Connected components

/// Connected pieces of a triangle mesh (see `TriangleMesh.connectedComponents()`).
public struct MeshComponents: Sendable, Equatable {
    /// `[F]` the component of each triangle, numbered `0..<count` in order of first triangle.
    public var labels: [Int]
    /// `[C]` triangles per component.
    public var triangleCounts: [Int]
    /// `[C]` surface area per component, in squared mesh units.
    public var areas: [Float]

    /// Number of components.
    public var count: Int { triangleCounts.count }
}

extension TriangleMesh {
    /// Splits the triangles into connected components.
    ///
    /// Two triangles are connected when they share a vertex, or use two vertices at exactly the
    /// same position: an attribute seam (UV or normal split) does not cut a piece in two, and a box
    /// whose faces carry their own vertices is one component. Union–find over vertices, then one
    /// label per triangle; labels follow the order in which components first appear.
    /// - Precondition: every index is below `vertexCount`.
    /// - Complexity: O(V + F) expected, near-linear union–find.
    public func connectedComponents() -> MeshComponents {
        checkIndices()
        var parent = Array(0..<positions.count)
        func find(_ x: Int) -> Int {
            var x = x
            while parent[x] != x { parent[x] = parent[parent[x]]; x = parent[x] }  // path halving
            return x
        }
        func union(_ a: Int, _ b: Int) {
            let ra = find(a), rb = find(b)
            if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
        }
        var firstAt: [SIMD3<Float>: Int] = [:]
        for (i, p) in positions.enumerated() where p.x.isFinite && p.y.isFinite && p.z.isFinite {
            if let j = firstAt[p] { union(i, j) } else { firstAt[p] = i }
        }
        for t in triangles { union(Int(t.x), Int(t.y)); union(Int(t.x), Int(t.z)) }
        var labelOfRoot = [Int](repeating: -1, count: positions.count)
        var out = MeshComponents(labels: [], triangleCounts: [], areas: [])
        out.labels.reserveCapacity(triangles.count)
        var areaSums: [Double] = []
        for (t, area) in zip(triangles, triangleAreas) {
            let root = find(Int(t.x))
            if labelOfRoot[root] < 0 {
                labelOfRoot[root] = out.triangleCounts.count
                out.triangleCounts.append(0)
                areaSums.append(0)
            }
            let label = labelOfRoot[root]
            out.labels.append(label)
            out.triangleCounts[label] += 1
            if area.isFinite { areaSums[label] += Double(area) }
        }
        out.areas = areaSums.map { Float($0) }
        return out
    }

    /// The mesh without components (see `connectedComponents()`) whose area is below
    /// `minimumAreaFraction` times the largest component's area.
    ///
    /// Area rather than triangle count decides, because it does not depend on tessellation: a
    /// finely meshed speck is still a speck, and a coarse ground plane is still the ground.
    /// Vertices are kept, so indices stay valid; follow with `removingUnusedVertices()`.
    /// - Parameter minimumAreaFraction: in `[0, 1]`; 0 keeps everything, 1 keeps the largest
    ///   components only (ties all stay).
    public func removingSmallComponents(minimumAreaFraction: Float) -> TriangleMesh {
        filteringSmallComponents(minimumAreaFraction: minimumAreaFraction).mesh
    }

    /// `removingSmallComponents` with the number of components and triangles removed.
    func filteringSmallComponents(minimumAreaFraction: Float) -> (mesh: TriangleMesh, components: Int, triangles: Int) {
        precondition((0...1).contains(minimumAreaFraction), "minimumAreaFraction must be in [0, 1], got \(minimumAreaFraction)")
        let components = connectedComponents()
        guard let largest = components.areas.max(), minimumAreaFraction > 0 else { return (self, 0, 0) }
        let threshold = minimumAreaFraction * largest
        let keep = components.areas.map { $0 >= threshold }
        var out = self
        out.triangles = zip(triangles, components.labels).filter { keep[$0.1] }.map(\.0)
        let removed = keep.indices.filter { !keep[$0] }
        return (out, removed.count, removed.reduce(0) { $0 + components.triangleCounts[$1] })
    }
}

// MARK: - Everything for export

/// What `TriangleMesh.cleanedForExport(_:)` does; the defaults suit meshes from marching cubes
/// and from other tools' exports.
public struct MeshCleanupOptions: Sendable, Equatable, Codable {
    /// Height-over-longest-edge below which a triangle counts as degenerate
    /// (see `TriangleMesh.removingDegenerateTriangles(areaEpsilon:removingDuplicates:)`);
    /// nil skips the step.
    public var areaEpsilon: Float? = 1e-6
    /// With `areaEpsilon`: also drop triangles that repeat another's indices in the same cyclic order.
    public var removeDuplicateTriangles = true
    /// Welding distance as a fraction of the bounding-box diagonal; nil skips welding.
    public var mergeToleranceRelative: Float? = 1e-6
    /// Largest attribute difference for welding (see `TriangleMesh.mergingVertices`).
    public var mergeAttributeTolerance: Float = 1e-4
    /// Weld by position alone (see `TriangleMesh.mergingVertices`).
    public var mergeIgnoringAttributes = false
    /// Components smaller than this fraction of the largest one's area are removed; 0 keeps all.
    public var minimumIslandAreaFraction: Float = 0.001
    /// Decimate to at most this many triangles; nil leaves the count alone.
    public var maximumTriangleCount: Int? = nil
    /// How to decimate when `maximumTriangleCount` asks for it.
    public var decimation = DecimationOptions()

    public init(areaEpsilon: Float? = 1e-6, removeDuplicateTriangles: Bool = true,
                mergeToleranceRelative: Float? = 1e-6, mergeAttributeTolerance: Float = 1e-4,
                mergeIgnoringAttributes: Bool = false, minimumIslandAreaFraction: Float = 0.001,
                maximumTriangleCount: Int? = nil, decimation: DecimationOptions = DecimationOptions()) {
        self.areaEpsilon = areaEpsilon
        self.removeDuplicateTriangles = removeDuplicateTriangles
        self.mergeToleranceRelative = mergeToleranceRelative
        self.mergeAttributeTolerance = mergeAttributeTolerance
        self.mergeIgnoringAttributes = mergeIgnoringAttributes
        self.minimumIslandAreaFraction = minimumIslandAreaFraction
        self.maximumTriangleCount = maximumTriangleCount
        self.decimation = decimation
    }

    /// Decimation only: no triangle or vertex is removed except by edge collapses (and unused
    /// vertices at the end).
    public static func decimationOnly(maximumTriangleCount: Int) -> MeshCleanupOptions {
        MeshCleanupOptions(areaEpsilon: nil, removeDuplicateTriangles: false, mergeToleranceRelative: nil,
                           minimumIslandAreaFraction: 0, maximumTriangleCount: maximumTriangleCount)
    }
}

/// Counts of what `TriangleMesh.cleanedForExport(_:)` removed, in the order it ran.
public struct MeshCleanupReport: Sendable, Equatable, Codable, CustomStringConvertible {
    public var degenerateTriangles = 0
    public var duplicateTriangles = 0
    /// Vertices welded into another one.
    public var mergedVertices = 0
    /// Triangles dropped because welding collapsed them.
    public var collapsedTriangles = 0
    public var islands = 0
    public var islandTriangles = 0
    /// Triangle counts before and after decimation, when it ran.
    public var decimatedFrom: Int? = nil
    public var decimatedTo: Int? = nil
    /// Triangles dropped after decimation stopped above the budget (see `cleanedForExport`).
    public var trianglesDroppedForBudget: Int? = nil
    /// Vertices no triangle used any more, removed at the end.
    public var unusedVertices = 0

    public init() {}

    /// One line, e.g. "removed 3 degenerate triangles, merged 120 vertices, removed 2 islands
    /// (14 triangles); decimated 20480 → 5000 triangles".
    public var description: String {
        func count(_ n: Int, _ one: String, _ many: String) -> String { "\(n) \(n == 1 ? one : many)" }
        var clean = ["removed \(count(degenerateTriangles + collapsedTriangles, "degenerate triangle", "degenerate triangles"))"]
        if duplicateTriangles > 0 { clean.append("removed \(count(duplicateTriangles, "duplicate triangle", "duplicate triangles"))") }
        clean.append("merged \(count(mergedVertices, "vertex", "vertices"))")
        clean.append("removed \(count(islands, "island", "islands")) (\(count(islandTriangles, "triangle", "triangles")))")
        var parts = [clean.joined(separator: ", ")]
        if let from = decimatedFrom, let to = decimatedTo { parts.append("decimated \(from) → \(to) triangles") }
        if let dropped = trianglesDroppedForBudget { parts.append("dropped \(count(dropped, "triangle", "triangles")) that no collapse could remove, to meet the budget") }
        return parts.joined(separator: "; ")
    }
}

/// A cleaned mesh and what the cleaning did.
public struct MeshCleanupResult: Sendable, Equatable {
    public var mesh: TriangleMesh
    public var report: MeshCleanupReport
}

extension TriangleMesh {
    /// The mesh made ready for export: degenerate (and duplicate) triangles removed, vertices
    /// welded, small islands removed, optionally decimated, then unused vertices removed.
    ///
    /// Steps, each skipped when its option turns it off:
    /// 1. `removingDegenerateTriangles(areaEpsilon:removingDuplicates:)`, then unused vertices
    ///    (so that non-finite ones are gone before welding measures the bounds);
    /// 2. `mergingVertices(tolerance:)` with `mergeToleranceRelative` × bounding-box diagonal;
    /// 3. `removingSmallComponents(minimumAreaFraction:)`;
    /// 4. `decimated(toTriangleCount:options:)` when the mesh has more than `maximumTriangleCount`;
    ///    when collapses alone stop above the budget (a torus keeps at least 14 triangles, every
    ///    separate piece at least 4), `trimmedToBudget` drops whole pieces, smallest area first,
    ///    then the smallest triangles, so the budget always holds;
    /// 5. `removingUnusedVertices()`.
    /// - Precondition: every index is below `vertexCount`.
    public func cleanedForExport(_ options: MeshCleanupOptions = MeshCleanupOptions()) -> MeshCleanupResult {
        var report = MeshCleanupReport()
        var mesh = self
        let startVertices = mesh.vertexCount
        var unused = 0
        if let areaEpsilon = options.areaEpsilon {
            let step = mesh.filteringDegenerateTriangles(areaEpsilon: areaEpsilon,
                                                         removingDuplicates: options.removeDuplicateTriangles)
            mesh = step.mesh.removingUnusedVertices()
            report.degenerateTriangles = step.degenerate
            report.duplicateTriangles = step.duplicates
            unused = startVertices - mesh.vertexCount
        }
        if let relative = options.mergeToleranceRelative, let (lo, hi) = mesh.finiteBounds() {
            let before = mesh.vertexCount
            let step = mesh.weldingVertices(tolerance: relative * length(hi - lo),
                                            attributeTolerance: options.mergeAttributeTolerance,
                                            ignoringAttributes: options.mergeIgnoringAttributes)
            mesh = step.mesh
            report.mergedVertices = before - mesh.vertexCount
            report.collapsedTriangles = step.collapsedTriangles
        }
        if options.minimumIslandAreaFraction > 0 {
            let step = mesh.filteringSmallComponents(minimumAreaFraction: options.minimumIslandAreaFraction)
            mesh = step.mesh
            report.islands = step.components
            report.islandTriangles = step.triangles
        }
        if let budget = options.maximumTriangleCount, mesh.triangleCount > budget {
            report.decimatedFrom = mesh.triangleCount
            mesh = mesh.decimated(toTriangleCount: budget, options: options.decimation)
            if mesh.triangleCount > budget {
                let step = mesh.trimmedToBudget(budget)
                mesh = step.mesh
                report.trianglesDroppedForBudget = step.dropped
            }
            report.decimatedTo = mesh.triangleCount
        }
        let before = mesh.vertexCount
        mesh = mesh.removingUnusedVertices()
        unused += before - mesh.vertexCount
        report.unusedVertices = unused
        return MeshCleanupResult(mesh: mesh, report: report)
    }
}

extension TriangleMesh {
    /// The mesh cut down to at most `budget` triangles without collapses: whole connected
    /// components go first, smallest area first (the largest one stays), then the smallest-area
    /// triangles (ties: the later one). For meshes that edge collapses cannot reduce further.
    /// Vertices are kept; follow with `removingUnusedVertices()`.
    func trimmedToBudget(_ budget: Int) -> (mesh: TriangleMesh, dropped: Int) {
        guard triangleCount > budget else { return (self, 0) }
        let components = connectedComponents()
        var keep = [Bool](repeating: true, count: triangleCount)
        var count = triangleCount
        let smallestFirst = (0..<components.count).sorted {
            components.areas[$0] != components.areas[$1] ? components.areas[$0] < components.areas[$1] : $0 > $1
        }
        var droppedComponent = Set<Int>()
        for c in smallestFirst.dropLast() where count > budget {
            droppedComponent.insert(c)
            count -= components.triangleCounts[c]
        }
        for t in 0..<triangleCount where droppedComponent.contains(components.labels[t]) { keep[t] = false }
        if count > budget {
            func area(_ t: Int) -> Float {
                let tri = triangles[t]
                return length(cross(positions[Int(tri.y)] - positions[Int(tri.x)], positions[Int(tri.z)] - positions[Int(tri.x)]))
            }
            let candidates = (0..<triangleCount).filter { keep[$0] }.sorted { area($0) != area($1) ? area($0) < area($1) : $0 > $1 }
            for t in candidates.prefix(count - budget) { keep[t] = false }
            count = budget
        }
        var out = self
        out.triangles = triangles.indices.filter { keep[$0] }.map { triangles[$0] }
        return (out, triangleCount - out.triangleCount)
    }
}
