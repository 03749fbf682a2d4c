import KilnCore

/// Edge adjacency of a triangle mesh, for `antialias`'s silhouette test.
///
/// Vertices with bit-identical positions count as one (meshes split vertices along UV and normal
/// seams; without welding every seam would look like an open boundary).
public struct MeshTopology: Sendable, Equatable {
    /// `[F, 3]` the triangle across the edge opposite vertex i of each triangle: ≥ 0 for a manifold
    /// edge shared by exactly two triangles, −1 for an open boundary, −2 for an edge with three or
    /// more triangles.
    public var neighbors: [Int32]

    /// - Parameters:
    ///   - triangles: `[F]` vertex indices.
    ///   - positions: `[V]` vertex positions used to weld seams, or nil to use the indices as they are.
    public init(triangles: [SIMD3<UInt32>], positions: [SIMD3<Float>]? = nil) {
        let canonical = positions.map(Self.weldedIndices)
        func id(_ v: UInt32) -> UInt64 { UInt64(canonical?[Int(v)] ?? Int(v)) }
        // Edge (a, b) with a < b → the (triangle, edge) slots that use it.
        var slots: [UInt64: [Int32]] = [:]
        slots.reserveCapacity(triangles.count * 3 / 2)
        for (t, tri) in triangles.enumerated() {
            for i in 0..<3 {
                let a = id(tri[(i + 1) % 3]), b = id(tri[(i + 2) % 3])
                guard a != b else { continue }
                slots[min(a, b) << 32 | max(a, b), default: []].append(Int32(3 * t + i))
            }
        }
        neighbors = [Int32](repeating: -1, count: 3 * triangles.count)
        for list in slots.values {
            if list.count == 2 {
                neighbors[Int(list[0])] = list[1] / 3
                neighbors[Int(list[1])] = list[0] / 3
            } else if list.count > 2 {
                for s in list { neighbors[Int(s)] = -2 }
            }
        }
    }
}

extension MeshTopology {
    /// For each vertex, the first vertex with a bit-identical position (itself when it is the first).
    public static func weldedIndices(_ positions: [SIMD3<Float>]) -> [Int] {
        var first: [SIMD3<UInt32>: Int] = [:]
        return positions.enumerated().map { i, p in
            let key = SIMD3(p.x.bitPattern, p.y.bitPattern, p.z.bitPattern)
            if let j = first[key] { return j }
            first[key] = i
            return i
        }
    }
}

/// Analytic antialiasing of silhouette edges (nvdiffrast's `antialias`), the op that carries
/// gradients to vertex positions through visibility.
///
/// For each horizontally or vertically adjacent pixel pair showing different triangles, the nearer
/// of the two (by the pixels' depths; an empty pixel is infinitely far) is the occluder T, its
/// pixel the inside pixel. Kiln follows the pair's segment from T across neighbouring triangles
/// that face the same way until it leaves the surface through a silhouette edge — an edge with no
/// neighbour, or whose neighbour faces the other way in this view — at fraction t from the inside
/// centre (t = e_in/(e_in − e_out) with e that edge's function). nvdiffrast tests T's own edges
/// only; walking on matters for meshes finer than the pixel grid (marching-cubes output), where the
/// outline is rarely an edge of the triangle the inside pixel sees. Then the pixel on the far side
/// of the pair's midpoint is blended: t ≥ ½ adds (t − ½)·(c_in − c_out) to the outside pixel (the
/// surface covers that much of it), t < ½ adds (½ − t)·(c_out − c_in) to the inside pixel.
/// Contributions use the input colours and add up over a pixel's four pairs. t moves with the
/// silhouette edge's vertices, so the
/// output is differentiable with respect to them.
public enum MeshAntialias {
    /// Renders `[H, W, C]` colour with silhouette edges blended.
    /// - Parameters:
    ///   - color: `[H, W, C]` shaded colour (any channels, e.g. RGB or RGBA).
    ///   - raster: the raster the colour was shaded from.
    ///   - clipPositions: `[V, 4]` the positions that were rasterized.
    ///   - topology: built once per mesh with `MeshTopology(triangles:positions:)`.
    public static func forward(_ color: [Float], channels: Int, raster: MeshRaster<Float>, clipPositions: [Float], triangles: [SIMD3<UInt32>],
                               topology: MeshTopology, threads: Int = Parallel.defaultThreadCount) -> [Float] {
        precondition(color.count == raster.width * raster.height * channels, "antialias colour must be [H, W, C] = [\(raster.height), \(raster.width), \(channels)]")
        var out = color
        let crossings = findCrossings(raster: raster, clipPositions: clipPositions, triangles: triangles, topology: topology, threads: threads)
        color.withUnsafeBufferPointer { c in
            out.withUnsafeMutableBufferPointer { o in
                for x in crossings {
                    let (target, source, alpha) = x.blend
                    for k in 0..<channels { o[target * channels + k] += alpha * (c[source * channels + k] - c[target * channels + k]) }
                }
            }
        }
        return out
    }

    /// Gradients with respect to the `[H, W, C]` input colour and the `[V, 4]` clip positions.
    public static func backward(_ color: [Float], channels: Int, raster: MeshRaster<Float>, clipPositions: [Float], triangles: [SIMD3<UInt32>],
                                topology: MeshTopology, outputGradient: [Float],
                                threads: Int = Parallel.defaultThreadCount) -> (color: [Float], clipPositions: [Float]) {
        precondition(outputGradient.count == color.count, "antialias output gradient must match the colour's [H, W, C] shape")
        var gc = outputGradient
        var gp = [Float](repeating: 0, count: clipPositions.count)
        let crossings = findCrossings(raster: raster, clipPositions: clipPositions, triangles: triangles, topology: topology, threads: threads)
        // Silhouette pairs are a thin set (a few per cent of pixels), so they are applied serially,
        // in pair order, which also makes the sums independent of the thread count.
        color.withUnsafeBufferPointer { c in outputGradient.withUnsafeBufferPointer { g in gc.withUnsafeMutableBufferPointer { gcb in
            for x in crossings {
                let (target, source, alpha) = x.blend
                var gAlpha: Float = 0
                for k in 0..<channels {
                    let gk = g[target * channels + k]
                    gcb[target * channels + k] -= alpha * gk
                    gcb[source * channels + k] += alpha * gk
                    gAlpha += gk * (c[source * channels + k] - c[target * channels + k])
                }
                x.accumulatePositionGradient(gAlpha, clipPositions: clipPositions, triangles: triangles) { i, v in gp[i] += v }
            }
        }}}
        return (gc, gp)
    }

    /// The silhouette crossings of every right and down pixel pair, in pair order. Rows are scanned
    /// in parallel; chunks come back in order.
    static func findCrossings(raster: MeshRaster<Float>, clipPositions: [Float], triangles: [SIMD3<UInt32>], topology: MeshTopology,
                              threads: Int) -> [SilhouetteCrossing<Float>] {
        let facing = facing(clipPositions, triangles)
        let w = raster.width, h = raster.height
        let chunks = parallelMapChunks(h, threads: threads) { rows -> [SilhouetteCrossing<Float>] in
            var found: [SilhouetteCrossing<Float>] = []
            raster.triangleIDs.withUnsafeBufferPointer { ids in
                for row in rows {
                    for col in 0..<w {
                        let p = row * w + col
                        // Most pairs show the same triangle: compare ids before anything else.
                        if col + 1 < w, ids[p] != ids[p + 1],
                           let x = crossing(p, p + 1, raster: raster, clipPositions: clipPositions, triangles: triangles, topology: topology, facing: facing) {
                            found.append(x)
                        }
                        if row + 1 < h, ids[p] != ids[p + w],
                           let x = crossing(p, p + w, raster: raster, clipPositions: clipPositions, triangles: triangles, topology: topology, facing: facing) {
                            found.append(x)
                        }
                    }
                }
            }
            return found
        }
        return chunks.flatMap { $0 }
    }

    /// `[F]` the sign of det(M) per triangle: +1 counter-clockwise in NDC (front-facing), −1
    /// clockwise, 0 degenerate or non-finite.
    static func facing<R: BinaryFloatingPoint>(_ clip: [R], _ triangles: [SIMD3<UInt32>]) -> [Int8] {
        triangles.map { t in
            let a = Int(t.x), b = Int(t.y), c = Int(t.z)
            let (ax, ay, aw) = (clip[4 * a], clip[4 * a + 1], clip[4 * a + 3])
            let (bx, by, bw) = (clip[4 * b], clip[4 * b + 1], clip[4 * b + 3])
            let (cx, cy, cw) = (clip[4 * c], clip[4 * c + 1], clip[4 * c + 3])
            let det = ax * (by * cw - bw * cy) + ay * (bw * cx - bx * cw) + aw * (bx * cy - by * cx)
            return det > 0 ? 1 : det < 0 ? -1 : 0
        }
    }

    /// The silhouette crossing of pixel pair (a, b), if any; see the type's documentation.
    static func crossing<R: BinaryFloatingPoint & Sendable>(_ a: Int, _ b: Int, raster: MeshRaster<R>, clipPositions clip: [R], triangles: [SIMD3<UInt32>],
                                                            topology: MeshTopology, facing: [Int8]) -> SilhouetteCrossing<R>? {
        let ida = Int(raster.triangleIDs[a]), idb = Int(raster.triangleIDs[b])
        guard ida != idb else { return nil }
        let inside: Int, outside: Int, t: Int
        if ida >= 0 && (idb < 0 || raster.depth[a] <= raster.depth[b]) {
            (inside, outside, t) = (a, b, ida)
        } else {
            (inside, outside, t) = (b, a, idb)
        }
        let sign: R = facing[t] > 0 ? 1 : facing[t] < 0 ? -1 : 0
        guard sign != 0 else { return nil }
        let map = PixelToNDC<R>(width: raster.width, height: raster.height)
        let qIn = (map.sx * R(inside % raster.width) + map.ox, map.sy * R(inside / raster.width) + map.oy)
        let qOut = (map.sx * R(outside % raster.width) + map.ox, map.sy * R(outside / raster.width) + map.oy)
        // Walk across the mesh along the segment: leave the current triangle through the first edge
        // the segment exits by; stop at a silhouette edge, or give up if the outside centre turns
        // out to lie in a triangle of this surface. On meshes finer than the pixel grid the
        // silhouette is rarely an edge of the triangle the inside pixel sees, so a single-triangle
        // test (as in nvdiffrast) would miss most of the outline.
        var current = t, entryEdge = -1, from: R = 0
        for _ in 0..<maximumWalk {
            let tri = triangles[current]
            var best: (edge: Int, t: R, eIn: R, eOut: R)?
            for i in 0..<3 where i != entryEdge {
                let j = Int(tri[(i + 1) % 3]), k = Int(tri[(i + 2) % 3])
                // E = V_j × V_k over (x, y, w); e(q) = E·(qx, qy, 1), oriented so inside ⇔ e ≥ 0.
                let e = MeshReference.cross(SilhouetteCrossing<R>.homogeneous(clip, j), SilhouetteCrossing<R>.homogeneous(clip, k))
                let eIn = (e.0 * qIn.0 + e.1 * qIn.1 + e.2) * sign, eOut = (e.0 * qOut.0 + e.1 * qOut.1 + e.2) * sign
                guard eOut < 0, eIn > eOut else { continue }  // the segment runs outward through this edge
                let f = eIn / (eIn - eOut)
                guard f >= from - 1e-6 else { continue }
                if best == nil || f < best!.t { best = (i, f, eIn, eOut) }
            }
            guard let best else { return nil }  // the outside centre lies in this triangle
            let n = Int(topology.neighbors[3 * current + best.edge])
            if n < 0 || facing[n] != facing[t] {
                return SilhouetteCrossing(inside: inside, outside: outside, triangle: current, edge: best.edge, t: max(0, best.t),
                                          eIn: best.eIn * sign, eOut: best.eOut * sign, qIn: qIn, qOut: qOut)
            }
            // Cross into the neighbour; the shared edge is not an exit from it.
            entryEdge = (0..<3).first { topology.neighbors[3 * n + $0] == Int32(current) } ?? -1
            current = n
            from = best.t
        }
        return nil
    }

    /// How many triangles `crossing` walks through before giving up.
    static let maximumWalk = 16
}

/// Where a pixel pair's segment leaves its occluding triangle through a silhouette edge.
struct SilhouetteCrossing<R: BinaryFloatingPoint & Sendable>: Sendable {
    /// Pixel indices: `inside` shows the occluder, `outside` does not.
    var inside: Int, outside: Int
    /// The occluding triangle and its edge (the one opposite that vertex).
    var triangle: Int, edge: Int
    /// Fraction of the way from the inside centre to the outside centre where the edge crosses.
    var t: R
    /// The edge function (unnormalised orientation) at both centres, and the centres in NDC.
    var eIn: R, eOut: R
    var qIn: (R, R), qOut: (R, R)

    /// The pixel that changes, the pixel whose colour it blends toward, and by how much.
    var blend: (target: Int, source: Int, alpha: R) {
        t >= 0.5 ? (outside, inside, t - 0.5) : (inside, outside, 0.5 - t)
    }

    /// Vertex `i`'s homogeneous 2D coordinates (x, y, w) from `[V, 4]` clip positions.
    static func homogeneous(_ clip: [R], _ i: Int) -> (R, R, R) { (clip[4 * i], clip[4 * i + 1], clip[4 * i + 3]) }

    /// Adds ∂L/∂(clip positions) given ∂L/∂alpha, through t = e_in/(e_in − e_out) and
    /// E = V_j × V_k: ∂L/∂V_j = V_k × ∂L/∂E, ∂L/∂V_k = ∂L/∂E × V_j (over x, y, w).
    func accumulatePositionGradient(_ gAlpha: R, clipPositions clip: [R], triangles: [SIMD3<UInt32>], add: (Int, R) -> Void) {
        let gt = t >= 0.5 ? gAlpha : -gAlpha
        let d = eIn - eOut
        let gIn = gt * -eOut / (d * d), gOut = gt * eIn / (d * d)
        let gE = (gIn * qIn.0 + gOut * qOut.0, gIn * qIn.1 + gOut * qOut.1, gIn + gOut)
        let tri = triangles[triangle]
        let j = Int(tri[(edge + 1) % 3]), k = Int(tri[(edge + 2) % 3])
        let vj = Self.homogeneous(clip, j), vk = Self.homogeneous(clip, k)
        let gj = MeshReference.cross(vk, gE), gk = MeshReference.cross(gE, vj)
        add(4 * j, gj.0); add(4 * j + 1, gj.1); add(4 * j + 3, gj.2)
        add(4 * k, gk.0); add(4 * k + 1, gk.1); add(4 * k + 3, gk.2)
    }
}
