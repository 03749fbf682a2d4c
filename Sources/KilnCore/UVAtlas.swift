import Foundation

/// A texture atlas for a triangle mesh: the surface cut into charts of neighbouring triangles,
/// each flattened onto its best-fit plane, all at one texel density, packed into a square.
///
/// After xatlas (github.com/jpcy/xatlas), simplified:
/// 1. **Weld** positions (1e-6 of the bounding-box diagonal), so charts cross vertices that a mesh
///    duplicates for its normals or UVs. Two triangles are neighbours when they share a welded edge
///    that no third triangle uses.
/// 2. **Segment**: seeds are the largest triangles not yet in a chart; a chart grows over neighbours
///    in order of the angle between their (vertex-averaged) normal and the chart's area-weighted mean
///    normal, and takes a triangle while that angle stays below `maximumNormalDeviationDegrees`,
///    its own normal is not turned away from the plane, and the chart's area projected on the plane
///    of its mean normal stays ≥ 0.6 of its true area (a distortion bound: texels per unit of
///    surface area then differ by at most 1/√0.6 ≈ 1.3 between charts).
/// 3. **Flatten** each chart by orthogonal projection onto the plane of its mean normal. The chart
///    keeps the longest prefix of its growth order (a connected piece) in which no triangle's own
///    normal is within `~87°` of the plane (which would flip or crush it) and no two triangles
///    overlap (separating-axis test on a grid of cells), re-fitting the plane to the prefix until
///    both hold; the rest is segmented again. A projection keeps lengths along the plane, so every
///    chart has the same texel density along it.
/// 4. **Pack**: each chart is turned to the smallest-area bounding rectangle (angles in 3° steps),
///    its rectangle padded by half the gutter on every side, and the rectangles are placed by a
///    skyline packer (tallest first, each at the lowest top it can reach, either way round); the
///    texel density is the largest one (bisection) at which everything fits.
///
/// Inside a chart the triangles share vertices; a vertex on a chart's border is copied once per
/// chart it touches (its UVs differ), so the atlas has about `V + seam vertices` vertices.
public struct UVAtlas: Sendable, Equatable {
    /// How charts are grown and spaced.
    public struct Options: Sendable, Equatable {
        /// Largest angle between a triangle's normal and its chart's mean normal, in degrees.
        public var maximumNormalDeviationDegrees: Float
        /// Texels between charts (≥ 3, so the footprints of two charts never share a texel; see
        /// `UVFootprint`); nil: `max(3, size / 128)`, which also leaves room for a few mip levels.
        public var gutter: Int?

        public init(maximumNormalDeviationDegrees: Float = 66, gutter: Int? = nil) {
            self.maximumNormalDeviationDegrees = maximumNormalDeviationDegrees
            self.gutter = gutter
        }
    }

    /// Texture side in texels.
    public let size: Int
    /// Texels between charts.
    public let gutter: Int
    /// Texels per world unit along each chart's plane (the same for every chart).
    public let texelsPerUnit: Float
    /// Number of charts.
    public let chartCount: Int
    /// `[F]` the chart of each triangle, in `0..<chartCount`.
    public let triangleCharts: [Int32]
    /// `[V']` the input vertex each atlas vertex copies.
    public let sourceVertices: [UInt32]
    /// `[V']` texture coordinates in texels (x right, y down from the top row; see `UVFootprint`).
    public let texelCoordinates: [SIMD2<Float>]
    /// `[F]` the input's triangles, in the same order, indexing the atlas vertices.
    public let triangles: [SIMD3<UInt32>]
    /// Welded edges with exactly two triangles (the surface's interior edges).
    public let interiorEdgeCount: Int
    /// Interior edges whose two triangles give both endpoints the same texture coordinates.
    public let continuousEdgeCount: Int

    /// Builds the atlas of `mesh` for a `size × size` texture.
    /// - Throws: `UVAtlasError.doesNotFit` when the charts, even shrunk to points with their
    ///   gutters, do not fit in the texture (after trying the smallest gutter and wider charts).
    /// - Precondition: `mesh.validationFailure() == nil`; `size ≥ 16`.
    /// - Complexity: O(F log F) to segment, O(charts² · bisection steps) to pack.
    public init(_ mesh: TriangleMesh, size: Int, options: Options = Options()) throws(UVAtlasError) {
        precondition(size >= 16, "UVAtlas: the texture must be at least 16 texels wide, got \(size)")
        precondition(mesh.validationFailure() == nil, "UVAtlas: \(mesh.validationFailure() ?? "")")
        let surface = AtlasSurface(mesh)
        let gutter = max(3, options.gutter ?? max(3, size / 128))
        // Fewer, wider charts and the smallest gutter, in that order, when the charts do not fit.
        var tries = [(options.maximumNormalDeviationDegrees, gutter)]
        if gutter > 3 { tries.append((options.maximumNormalDeviationDegrees, 3)) }
        for degrees: Float in [80, 88] where degrees > options.maximumNormalDeviationDegrees { tries.append((degrees, 3)) }
        var smallest = Int.max, charts = 0
        for (degrees, gutter) in tries {
            let segmentation = surface.segment(maximumNormalDeviationDegrees: degrees)
            charts = segmentation.charts.count
            switch AtlasPacking.pack(segmentation.charts.map(\.extent), size: size, gutter: gutter) {
            case .placed(let scale, let placements):
                self = UVAtlas(surface: surface, segmentation: segmentation, size: size, gutter: gutter, scale: scale, placements: placements)
                return
            case .tooSmall(let needed):
                smallest = min(smallest, needed)
            }
        }
        throw .doesNotFit(charts: charts, size: size, smallestSize: smallest)
    }

    private init(surface: AtlasSurface, segmentation: AtlasSegmentation, size: Int, gutter: Int, scale: Float, placements: [AtlasPacking.Placement]) {
        self.size = size
        self.gutter = gutter
        texelsPerUnit = scale
        chartCount = segmentation.charts.count
        triangleCharts = segmentation.triangleCharts
        let margin = Float(gutter) / 2
        var index: [SIMD2<Int32>: UInt32] = [:]  // (chart, input vertex) → atlas vertex
        var sources: [UInt32] = [], coordinates: [SIMD2<Float>] = []
        var triangles: [SIMD3<UInt32>] = []
        triangles.reserveCapacity(surface.triangles.count)
        for (t, tri) in surface.triangles.enumerated() {
            let c = Int(segmentation.triangleCharts[t])
            let chart = segmentation.charts[c], place = placements[c]
            var out = SIMD3<UInt32>()
            for k in 0..<3 {
                let v = tri[k]
                if let i = index[SIMD2(Int32(c), Int32(bitPattern: v))] { out[k] = i; continue }
                // Chart-plane coordinates of the welded position, so copies of one point agree.
                var q = chart.planeCoordinates(surface.positions[surface.welded[Int(v)]]) * scale
                if place.rotated { q = SIMD2(chart.extent.y * scale - q.y, q.x) }  // a quarter turn, not a mirror
                out[k] = UInt32(sources.count)
                index[SIMD2(Int32(c), Int32(bitPattern: v))] = out[k]
                sources.append(v)
                coordinates.append(SIMD2(Float(place.x), Float(place.y)) + margin + q)
            }
            triangles.append(out)
        }
        sourceVertices = sources
        texelCoordinates = coordinates
        self.triangles = triangles
        // Interior edges and whether both sides see the same texture coordinates.
        var interior = 0, continuous = 0
        for (t, tri) in surface.triangles.enumerated() {
            for k in 0..<3 {
                let u = Int(surface.neighbours[t][k])
                guard u > t else { continue }  // each interior edge once
                interior += 1
                let a = surface.welded[Int(tri[k])], b = surface.welded[Int(tri[(k + 1) % 3])]
                func coordinate(_ triangle: Int, _ weldedVertex: Int) -> SIMD2<Float>? {
                    for m in 0..<3 where surface.welded[Int(surface.triangles[triangle][m])] == weldedVertex {
                        return coordinates[Int(triangles[triangle][m])]
                    }
                    return nil
                }
                if let a0 = coordinate(t, a), let a1 = coordinate(u, a), let b0 = coordinate(t, b), let b1 = coordinate(u, b), a0 == a1, b0 == b1 {
                    continuous += 1
                }
            }
        }
        interiorEdgeCount = interior
        continuousEdgeCount = continuous
    }

    /// Share of interior edges that are continuous in texture space (1 − the seam share); 1 for a
    /// mesh without interior edges.
    public var continuousEdgeShare: Double { interiorEdgeCount == 0 ? 1 : Double(continuousEdgeCount) / Double(interiorEdgeCount) }
}

/// Why a mesh has no atlas at a texture size.
public enum UVAtlasError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The charts do not fit even at a vanishing texel density.
    case doesNotFit(charts: Int, size: Int, smallestSize: Int)

    public var description: String {
        switch self {
        case let .doesNotFit(charts, size, smallestSize):
            return "the mesh's \(charts) UV charts, each with its gutter, do not fit in a \(size)×\(size) texture: "
                + "use a texture of at least \(smallestSize)×\(smallestSize) texels (or fewer, larger faces)"
        }
    }
}

// MARK: - Surface

/// The mesh's triangles with welded vertices, face normals and neighbours.
struct AtlasSurface: Sendable {
    /// `[V]` input positions.
    let positions: [SIMD3<Float>]
    /// `[F]` input triangles.
    let triangles: [SIMD3<UInt32>]
    /// `[V]` the welded representative of each vertex.
    let welded: [Int]
    /// `[F]` twice the area.
    let doubleAreas: [Float]
    /// `[F]` unit face normals (zero for degenerate triangles).
    let faceNormals: [SIMD3<Float>]
    /// `[F]` unit mean of the corners' area-weighted vertex normals (over welded vertices), the
    /// normal that growth compares: it ignores the sliver triangles' noise.
    let smoothNormals: [SIMD3<Float>]
    /// `[F][3]` the triangle across edge `k` (corner k to k+1), or −1 on a border or non-manifold edge.
    let neighbours: [SIMD3<Int32>]
    /// Twice the area below which a triangle counts as degenerate (joins any chart, never flips).
    let degenerateDoubleArea: Float

    init(_ mesh: TriangleMesh) {
        let positions = mesh.positions, triangles = mesh.triangles
        self.positions = positions
        self.triangles = triangles
        let diagonal = mesh.bounds.map { length($0.max - $0.min) } ?? 0
        let welded = mesh.weldRepresentatives(tolerance: 1e-6 * diagonal, attributeTolerance: 0, ignoringAttributes: true)
        self.welded = welded
        degenerateDoubleArea = 1e-12 * diagonal * diagonal
        var areas = [Float](), normals = [SIMD3<Float>]()
        var vertexNormals = [SIMD3<Float>](repeating: .zero, count: positions.count)
        for t in triangles {
            let a = positions[welded[Int(t.x)]], b = positions[welded[Int(t.y)]], c = positions[welded[Int(t.z)]]
            let n = cross(b - a, c - a), l = length(n)
            areas.append(l)
            normals.append(l > 0 ? n / l : .zero)
            for k in 0..<3 { vertexNormals[welded[Int(t[k])]] += n }
        }
        doubleAreas = areas
        faceNormals = normals
        let unitVertexNormals = vertexNormals.map { (n: SIMD3<Float>) -> SIMD3<Float> in n / max(1e-30, length(n)) }
        smoothNormals = triangles.indices.map { (f: Int) -> SIMD3<Float> in
            let t = triangles[f], w = welded
            let s: SIMD3<Float> = unitVertexNormals[w[Int(t.x)]] + unitVertexNormals[w[Int(t.y)]] + unitVertexNormals[w[Int(t.z)]]
            let l = length(s)
            return l > 1e-6 ? s / l : normals[f]
        }
        // Edges keyed by their welded ends; an edge is interior when exactly two triangles use it.
        var edges: [UInt64: SIMD2<Int32>] = [:]  // → (first triangle × 3 + k, count)
        edges.reserveCapacity(3 * triangles.count / 2)
        func key(_ t: Int, _ k: Int) -> UInt64? {
            let a = welded[Int(triangles[t][k])], b = welded[Int(triangles[t][(k + 1) % 3])]
            return a == b ? nil : UInt64(min(a, b)) << 32 | UInt64(max(a, b))
        }
        for t in triangles.indices {
            for k in 0..<3 {
                guard let e = key(t, k) else { continue }
                if let seen = edges[e] { edges[e] = SIMD2(seen.x, seen.y + 1) } else { edges[e] = SIMD2(Int32(3 * t + k), 1) }
            }
        }
        var neighbours = [SIMD3<Int32>](repeating: SIMD3(repeating: -1), count: triangles.count)
        for t in triangles.indices {
            for k in 0..<3 {
                guard let e = key(t, k), let seen = edges[e], seen.y == 2 else { continue }
                let first = Int(seen.x) / 3
                if first != t {
                    neighbours[t][k] = Int32(first)
                    neighbours[first][Int(seen.x) % 3] = Int32(t)
                }
            }
        }
        self.neighbours = neighbours
    }

    func isDegenerate(_ f: Int) -> Bool { doubleAreas[f] <= degenerateDoubleArea }
}

// MARK: - Segmentation

/// One chart: its triangles and its plane.
struct AtlasChart: Sendable {
    var faces: [Int]
    /// Orthonormal axes of the chart's plane, turned to its smallest bounding rectangle.
    var axisU: SIMD3<Float>, axisV: SIMD3<Float>
    /// The plane coordinates' minimum, subtracted so the chart starts at (0, 0).
    var origin: SIMD2<Float>
    /// Width and height of the chart's bounding rectangle, in world units.
    var extent: SIMD2<Float>

    /// World position → chart coordinates in world units, in `[0, extent]`.
    func planeCoordinates(_ p: SIMD3<Float>) -> SIMD2<Float> { SIMD2(dot(p, axisU), dot(p, axisV)) - origin }
}

struct AtlasSegmentation: Sendable {
    var charts: [AtlasChart]
    var triangleCharts: [Int32]
}

extension AtlasSurface {
    /// Charts by greedy growth from the largest free triangle (see `UVAtlas`).
    func segment(maximumNormalDeviationDegrees: Float) -> AtlasSegmentation {
        let n = triangles.count
        let cosMaximum = cos(maximumNormalDeviationDegrees * .pi / 180)
        let cosFlip: Float = 0.05  // a triangle within ~87° of the plane flips or is crushed
        // Projected / true area of a chart ≥ 0.6: texel density per unit of surface area differs by
        // at most 1/√0.6 ≈ 1.3 between charts (a sphere cap 66° wide projects 0.7 of its area).
        let minimumProjectedShare: Float = 0.6
        let order = (0..<n).sorted { doubleAreas[$0] != doubleAreas[$1] ? doubleAreas[$0] > doubleAreas[$1] : $0 < $1 }
        var rank = [Int](repeating: 0, count: n)
        for (r, f) in order.enumerated() { rank[f] = r }
        var chartOf = [Int32](repeating: -1, count: n)
        var charts: [AtlasChart] = []
        var cursor = 0
        var heap = MinHeap()
        while true {
            while cursor < n && chartOf[order[cursor]] >= 0 { cursor += 1 }
            guard cursor < n else { break }
            let seed = order[cursor], c = Int32(charts.count)
            // Grow.
            var faces = [seed]
            chartOf[seed] = c
            var normalSum = isDegenerate(seed) ? smoothNormals[seed] * degenerateDoubleArea : faceNormals[seed] * doubleAreas[seed]
            var areaSum = isDegenerate(seed) ? degenerateDoubleArea : doubleAreas[seed]
            heap.removeAll()
            func pushNeighbours(_ f: Int) {
                for k in 0..<3 {
                    let g = Int(neighbours[f][k])
                    if g >= 0 && chartOf[g] < 0 { heap.push(1 - dot(smoothNormals[g], normalize(normalSum)), g) }
                }
            }
            pushNeighbours(seed)
            while let (cost, g) = heap.pop() {
                guard chartOf[g] < 0 else { continue }
                let mean = normalize(normalSum)
                let now = 1 - dot(smoothNormals[g], mean)
                if now > cost + 1e-6 { heap.push(now, g); continue }  // the mean moved: requeue at its current cost
                guard 1 - now >= cosMaximum else { continue }
                if !isDegenerate(g) {
                    // Its own normal must not be turned away from the plane, and the chart's projected
                    // area must stay ≥ `minimumProjectedShare` of its area: |Σ aᵢ nᵢ| is the area
                    // projected on the plane of the mean normal.
                    let sum = normalSum + faceNormals[g] * doubleAreas[g]
                    guard dot(faceNormals[g], mean) > cosFlip, length(sum) >= minimumProjectedShare * (areaSum + doubleAreas[g]) else { continue }
                    normalSum = sum
                    areaSum += doubleAreas[g]
                }
                chartOf[g] = c
                faces.append(g)
                pushNeighbours(g)
            }
            // Flatten: keep the longest prefix without flipped or overlapping triangles, on the plane
            // of the prefix's own mean normal (a prefix's |Σ aᵢ nᵢ| passed the area test when it grew).
            var kept = faces.count
            var normal = SIMD3<Float>(0, 0, 1), u = SIMD3<Float>(1, 0, 0), v = SIMD3<Float>(0, 1, 0)
            while true {
                var sum = SIMD3<Float>.zero
                for f in faces.prefix(kept) where !isDegenerate(f) { sum += faceNormals[f] * doubleAreas[f] }
                normal = length(sum) > 0 ? normalize(sum) : (length(smoothNormals[seed]) > 0 ? smoothNormals[seed] : SIMD3(0, 0, 1))
                (u, v) = Self.planeAxes(normal)
                var keep = faces.prefix(kept).firstIndex { !isDegenerate($0) && dot(faceNormals[$0], normal) <= cosFlip } ?? kept
                keep = max(1, min(keep, firstOverlap(faces.prefix(keep), u, v) ?? keep))
                if keep == kept { break }
                kept = keep
            }
            for f in faces[kept...] {
                chartOf[f] = -1
                cursor = min(cursor, rank[f])
            }
            faces.removeSubrange(kept...)
            charts.append(chart(faces, u, v))
        }
        return AtlasSegmentation(charts: charts, triangleCharts: chartOf)
    }

    /// Two unit axes spanning the plane normal to `n` (right-handed with it).
    static func planeAxes(_ n: SIMD3<Float>) -> (SIMD3<Float>, SIMD3<Float>) {
        let helper: SIMD3<Float> = abs(n.x) < 0.6 ? SIMD3(1, 0, 0) : SIMD3(0, 1, 0)
        let u = normalize(cross(helper, n))
        return (u, cross(n, u))
    }

    /// The chart of `faces` on the plane `(u, v)`, turned to its smallest-area bounding rectangle.
    func chart(_ faces: [Int], _ u: SIMD3<Float>, _ v: SIMD3<Float>) -> AtlasChart {
        var seen = Set<Int>()
        var points: [SIMD2<Float>] = []
        for f in faces {
            for k in 0..<3 where seen.insert(welded[Int(triangles[f][k])]).inserted {
                let p = positions[welded[Int(triangles[f][k])]]
                points.append(SIMD2(dot(p, u), dot(p, v)))
            }
        }
        var best = (area: Float.infinity, angle: Float(0))
        for step in 0..<30 {
            let angle = Float(step) * 3 * .pi / 180
            let (c, s) = (cos(angle), sin(angle))
            var lo = SIMD2<Float>(repeating: .infinity), hi = SIMD2<Float>(repeating: -.infinity)
            for p in points {
                let q = SIMD2(c * p.x + s * p.y, -s * p.x + c * p.y)
                lo = pointwiseMin(lo, q); hi = pointwiseMax(hi, q)
            }
            let area = (hi.x - lo.x) * (hi.y - lo.y)
            if area < best.area * (1 - 1e-6) { best = (area, angle) }
        }
        let (c, s) = (cos(best.angle), sin(best.angle))
        let axisU = c * u + s * v, axisV = -s * u + c * v
        var lo = SIMD2<Float>(repeating: .infinity), hi = SIMD2<Float>(repeating: -.infinity)
        for f in faces {
            for k in 0..<3 {
                let p = positions[welded[Int(triangles[f][k])]]
                let q = SIMD2(dot(p, axisU), dot(p, axisV))
                lo = pointwiseMin(lo, q); hi = pointwiseMax(hi, q)
            }
        }
        return AtlasChart(faces: faces, axisU: axisU, axisV: axisV, origin: lo, extent: hi - lo)
    }

    /// The smallest `i` such that `faces[i]`, projected on `(u, v)`, overlaps some `faces[j]`, `j < i`,
    /// by more than a sliver; nil when the projection is one-to-one. Cells of a uniform grid hold the
    /// faces seen so far; each new face is tested (separating axes) against those in its cells.
    func firstOverlap(_ faces: ArraySlice<Int>, _ u: SIMD3<Float>, _ v: SIMD3<Float>) -> Int? {
        guard faces.count > 1 else { return nil }
        let projected: [(SIMD2<Float>, SIMD2<Float>, SIMD2<Float>)] = faces.map { f in
            let p = (0..<3).map { positions[welded[Int(triangles[f][$0])]] }
            return (SIMD2(dot(p[0], u), dot(p[0], v)), SIMD2(dot(p[1], u), dot(p[1], v)), SIMD2(dot(p[2], u), dot(p[2], v)))
        }
        var lo = SIMD2<Float>(repeating: .infinity), hi = SIMD2<Float>(repeating: -.infinity)
        for t in projected { lo = pointwiseMin(lo, pointwiseMin(t.0, pointwiseMin(t.1, t.2))); hi = pointwiseMax(hi, pointwiseMax(t.0, pointwiseMax(t.1, t.2))) }
        let extent = hi - lo
        let epsilon = 1e-5 * max(extent.x, extent.y)
        let cellsPerSide = max(1, min(256, Int(Double(projected.count).squareRoot())))
        let cell = max(extent.x, extent.y) / Float(cellsPerSide) * 1.0001 + Float.leastNormalMagnitude
        var grid = [[Int32]](repeating: [], count: cellsPerSide * cellsPerSide)
        var stamp = [Int](repeating: -1, count: projected.count)
        for (i, t) in projected.enumerated() {
            let tlo = pointwiseMin(t.0, pointwiseMin(t.1, t.2)), thi = pointwiseMax(t.0, pointwiseMax(t.1, t.2))
            let c0 = SIMD2<Int>(pointwiseMax(SIMD2(repeating: 0), (tlo - lo) / cell).rounded(.down))
            let c1 = pointwiseMin(SIMD2<Int>(repeating: cellsPerSide - 1), SIMD2<Int>(((thi - lo) / cell).rounded(.down)))
            for cy in c0.y...c1.y {
                for cx in c0.x...c1.x {
                    for j in grid[cy * cellsPerSide + cx] where stamp[Int(j)] != i {
                        stamp[Int(j)] = i
                        if Self.trianglesOverlap(t, projected[Int(j)], epsilon: epsilon) { return i }
                    }
                    grid[cy * cellsPerSide + cx].append(Int32(i))
                }
            }
        }
        return nil
    }

    /// Whether two triangles' interiors overlap by more than `epsilon` along every separating-axis
    /// candidate (the six edge normals); touching along an edge or at a corner is not overlap.
    static func trianglesOverlap(_ a: (SIMD2<Float>, SIMD2<Float>, SIMD2<Float>), _ b: (SIMD2<Float>, SIMD2<Float>, SIMD2<Float>), epsilon: Float) -> Bool {
        let pa = [a.0, a.1, a.2], pb = [b.0, b.1, b.2]
        for poly in [pa, pb] {
            for k in 0..<3 {
                let e = poly[(k + 1) % 3] - poly[k]
                let l = (e * e).sum().squareRoot()
                guard l > 0 else { continue }
                let axis = SIMD2(-e.y, e.x) / l
                let sa = pa.map { dot($0, axis) }, sb = pb.map { dot($0, axis) }
                if sa.max()! <= sb.min()! + epsilon || sb.max()! <= sa.min()! + epsilon { return false }
            }
        }
        return true
    }
}

// MARK: - Packing

/// Skyline packing of padded chart rectangles into a square, at the largest texel density that fits.
enum AtlasPacking {
    struct Placement: Sendable, Equatable {
        /// Top-left texel of the padded rectangle.
        var x: Int, y: Int
        /// Whether the chart is turned a quarter turn.
        var rotated: Bool
    }

    enum Result {
        case placed(scale: Float, placements: [Placement])
        /// Nothing fits; `needed` is a texture side at which the charts fit as points.
        case tooSmall(needed: Int)
    }

    /// Places charts of `extents` (world units) in a `size²` square with `gutter` texels between them.
    static func pack(_ extents: [SIMD2<Float>], size: Int, gutter: Int) -> Result {
        guard let atZero = place(extents, scale: 0, size: size, gutter: gutter) else {
            var needed = size
            while place(extents, scale: 0, size: needed, gutter: gutter) == nil { needed *= 2 }
            return .tooSmall(needed: needed)
        }
        // Upper bound: the charts' area alone fills the square.
        let area = extents.reduce(Float(0)) { $0 + $1.x * $1.y }
        let longest = extents.reduce(Float(0)) { max($0, $1.x, $1.y) }
        var lo: Float = 0, hi = Float(size) / max(1e-30, (area.squareRoot() > 0 ? area.squareRoot() : longest))
        guard hi.isFinite, hi > 0 else { return .placed(scale: 0, placements: atZero) }
        var best = atZero
        if let all = place(extents, scale: hi, size: size, gutter: gutter) { return .placed(scale: hi, placements: all) }
        for _ in 0..<24 {
            let mid = (lo + hi) / 2
            if let placements = place(extents, scale: mid, size: size, gutter: gutter) { lo = mid; best = placements } else { hi = mid }
        }
        return .placed(scale: lo, placements: best)
    }

    /// Skyline bottom-left placement at one scale, or nil when some rectangle does not fit.
    /// Rectangles go tallest first (ties: wider, then lower index); each goes where its top is lowest
    /// (ties: leftmost), upright or turned.
    static func place(_ extents: [SIMD2<Float>], scale: Float, size: Int, gutter: Int) -> [Placement]? {
        let rects = extents.map { e in SIMD2<Int>((e * scale + Float(gutter)).rounded(.up)) }
        let order = rects.indices.sorted { a, b in
            let (ra, rb) = (rects[a], rects[b])
            let (ha, hb) = (max(ra.x, ra.y), max(rb.x, rb.y)), (wa, wb) = (min(ra.x, ra.y), min(rb.x, rb.y))
            return ha != hb ? ha > hb : wa != wb ? wa > wb : a < b
        }
        var skyline: [(x: Int, y: Int, width: Int)] = [(0, 0, size)]  // segments left to right
        var placements = [Placement](repeating: Placement(x: 0, y: 0, rotated: false), count: rects.count)
        for r in order {
            var best: (top: Int, x: Int, y: Int, rotated: Bool)? = nil
            for rotated in [false, true] {
                let w = rotated ? rects[r].y : rects[r].x, h = rotated ? rects[r].x : rects[r].y
                if rotated && w == h { continue }
                for s in skyline.indices {
                    let x = skyline[s].x
                    guard x + w <= size else { break }
                    var y = 0, k = s
                    while k < skyline.count && skyline[k].x < x + w { y = max(y, skyline[k].y); k += 1 }
                    guard y + h <= size else { continue }
                    if best == nil || y + h < best!.top || (y + h == best!.top && x < best!.x) { best = (y + h, x, y, rotated) }
                }
            }
            guard let b = best else { return nil }
            let w = b.rotated ? rects[r].y : rects[r].x
            placements[r] = Placement(x: b.x, y: b.y, rotated: b.rotated)
            // The new segment replaces what lies under [x, x + w); x is a segment's start.
            var next: [(x: Int, y: Int, width: Int)] = []
            var inserted = false
            for seg in skyline {
                let end = seg.x + seg.width
                if end <= b.x { next.append(seg); continue }
                if !inserted { next.append((b.x, b.top, w)); inserted = true }
                if seg.x >= b.x + w { next.append(seg) } else if end > b.x + w { next.append((b.x + w, seg.y, end - b.x - w)) }
            }
            // Merge neighbours at the same height.
            skyline = []
            for seg in next {
                if let last = skyline.last, last.y == seg.y, last.x + last.width == seg.x { skyline[skyline.count - 1].width += seg.width } else { skyline.append(seg) }
            }
        }
        return placements
    }
}

// MARK: - Heap

/// A binary min-heap of (cost, face), ties broken by face index so growth is deterministic.
struct MinHeap {
    private var items: [(Float, Int)] = []

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    private static func less(_ a: (Float, Int), _ b: (Float, Int)) -> Bool { a.0 != b.0 ? a.0 < b.0 : a.1 < b.1 }

    mutating func push(_ cost: Float, _ face: Int) {
        items.append((cost, face))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (Float, Int)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && Self.less(items[l], items[m]) { m = l }
                if r < items.count && Self.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
