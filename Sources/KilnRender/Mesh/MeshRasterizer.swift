import Foundation
import KilnCore

/// The fast `rasterize` op: homogeneous edge functions (see `MeshRaster.swift`) evaluated over
/// each triangle's pixel bounding box, a depth buffer, then one barycentric resolve per pixel.
///
/// Work splits into horizontal bands of rows, one per thread; each band walks every triangle in
/// index order, so the result (ties included) does not depend on the thread count.
public enum MeshRasterizer {
    /// Per-triangle setup in pixel coordinates: e_i(col, row) = a_i·col + b_i·row + c_i, already
    /// multiplied by sign(det) so that covered ⇔ all e_i ≥ 0; depth z/w = az·col + bz·row + cz.
    @usableFromInline
    struct Setup {
        var a: SIMD4<Float> = .zero, b: SIMD4<Float> = .zero, c: SIMD4<Float> = .zero  // lanes 0…2: edges; lane 3: depth
        var x0: Int32 = 1, x1: Int32 = 0, y0: Int32 = 1, y1: Int32 = 0  // inclusive pixel bounds; empty when x0 > x1
    }

    /// Rasterizes `[F]` triangles over `[V, 4]` clip-space positions.
    /// - Parameters:
    ///   - clipPositions: `[V, 4]` homogeneous positions (x, y, z, w).
    ///   - triangles: `[F]` vertex indices; every index must be < V.
    ///   - width, height: raster size in pixels, ≥ 1.
    ///   - previous: depth peeling: keep only surfaces behind this earlier layer (same size, same
    ///     triangles), giving the next layer; pixels empty in `previous` stay empty.
    /// - Returns: a `MeshRaster`: per pixel the nearest covering triangle (lowest index on a tie),
    ///   its perspective-correct barycentrics and z/w.
    /// - Complexity: O(F + covered bounding-box pixels).
    public static func rasterize(clipPositions: [Float], triangles: [SIMD3<UInt32>], width: Int, height: Int,
                                 options: RasterizeOptions = RasterizeOptions(), behind previous: MeshRaster<Float>? = nil,
                                 threads: Int = Parallel.defaultThreadCount) -> MeshRaster<Float> {
        precondition(width >= 1 && height >= 1, "rasterize needs a positive size, got \(width)×\(height)")
        precondition(clipPositions.count % 4 == 0, "clip positions must be [V, 4], got \(clipPositions.count) values")
        let vertexCount = UInt32(clipPositions.count / 4)
        precondition(triangles.allSatisfy { $0.x < vertexCount && $0.y < vertexCount && $0.z < vertexCount },
                     "a triangle indexes past the \(vertexCount) clip positions")
        var setups = [Setup](repeating: Setup(), count: triangles.count)
        setups.withUnsafeMutableBufferPointer { out in
            let out = UnsafeMutableSendableBuffer(out)
            clipPositions.withUnsafeBufferPointer { clip in
                let clip = UnsafeSendableBuffer(clip)
                parallelFor(triangles.count, threads: threads) { range in
                    for t in range { out[t] = setup(triangles[t], clip: clip.buffer, width: width, height: height, cull: options.cullBackFaces) }
                }
            }
        }

        var raster = MeshRaster<Float>(width: width, height: height, withDerivatives: options.barycentricDerivatives)
        var zbuffer = [Float](repeating: .infinity, count: width * height)
        // Fragments must come after (depth, triangle) of the previous layer in the rasterizer's own
        // order (nearer first, lower index first on a tie); without peeling, after everything.
        var floorDepth = [Float](repeating: -.infinity, count: width * height)
        var floorID = [Int32](repeating: -1, count: width * height)
        if let previous {
            precondition(previous.width == width && previous.height == height, "depth peeling needs a previous layer of the same size")
            for p in 0..<(width * height) {
                floorDepth[p] = previous.triangleIDs[p] >= 0 ? previous.depth[p] : .infinity
                floorID[p] = previous.triangleIDs[p]
            }
        }
        var derivativeValues = [Float](repeating: 0, count: options.barycentricDerivatives ? 4 * width * height : 0)
        setups.withUnsafeBufferPointer { setups in
            let setups = UnsafeSendableBuffer(setups)
        floorDepth.withUnsafeBufferPointer { floorDepth in floorID.withUnsafeBufferPointer { floorID in
            let floorDepth = UnsafeSendableBuffer(floorDepth), floorID = UnsafeSendableBuffer(floorID)
        zbuffer.withUnsafeMutableBufferPointer { zb in
        raster.triangleIDs.withUnsafeMutableBufferPointer { idb in
        raster.barycentrics.withUnsafeMutableBufferPointer { bary in
        raster.depth.withUnsafeMutableBufferPointer { depth in
        derivativeValues.withUnsafeMutableBufferPointer { derivatives in
            let zb = UnsafeMutableSendableBuffer(zb), idb = UnsafeMutableSendableBuffer(idb)
            let bary = UnsafeMutableSendableBuffer(bary), depth = UnsafeMutableSendableBuffer(depth)
            let derivatives = options.barycentricDerivatives ? UnsafeMutableSendableBuffer(derivatives) : nil
            parallelFor(height, threads: threads) { rows in
                let r0 = Int32(rows.lowerBound), r1 = Int32(rows.upperBound - 1)
                for t in 0..<setups.buffer.count {
                    let s = setups.buffer[t]
                    guard s.x0 <= s.x1, s.y0 <= r1, s.y1 >= r0 else { continue }
                    for row in Int(max(s.y0, r0))...Int(min(s.y1, r1)) {
                        // Edge and depth values at the row's first pixel, then stepped by a per column.
                        var e = s.a * Float(s.x0) + (s.b * Float(row) + s.c)
                        let base = row * width
                        for col in Int(s.x0)...Int(s.x1) {
                            if e[0] >= 0, e[1] >= 0, e[2] >= 0, e[0] + e[1] + e[2] > 0, e[3] >= -1, e[3] <= 1, e[3] < zb[base + col],
                               e[3] > floorDepth.buffer[base + col] || (e[3] == floorDepth.buffer[base + col] && Int32(t) > floorID.buffer[base + col]) {
                                zb[base + col] = e[3]
                                idb[base + col] = Int32(t)
                            }
                            e += s.a
                        }
                    }
                }
                // Resolve: barycentrics once per covered pixel, evaluated directly (not stepped).
                for row in rows {
                    for col in 0..<width {
                        let p = row * width + col
                        let t = Int(idb[p])
                        guard t >= 0 else { continue }
                        let s = setups.buffer[t]
                        let e = s.a * Float(col) + (s.b * Float(row) + s.c)
                        let sum = e[0] + e[1] + e[2]
                        let u = e[0] / sum, v = e[1] / sum
                        bary[2 * p] = u
                        bary[2 * p + 1] = v
                        depth[p] = zb[p]  // the stepped value the depth test used, so peeling compares like with like
                        if let derivatives {
                            let sa = s.a[0] + s.a[1] + s.a[2], sb = s.b[0] + s.b[1] + s.b[2]
                            derivatives[4 * p] = (s.a[0] - u * sa) / sum
                            derivatives[4 * p + 1] = (s.b[0] - u * sb) / sum
                            derivatives[4 * p + 2] = (s.a[1] - v * sa) / sum
                            derivatives[4 * p + 3] = (s.b[1] - v * sb) / sum
                        }
                    }
                }
            }
        }}}}}}}}
        if options.barycentricDerivatives { raster.barycentricDerivatives = derivativeValues }
        return raster
    }

    /// Triangle setup in float64 (the per-triangle cost is small next to the pixel loop, and the
    /// extra precision keeps thin and far triangles stable). Edge coefficients of a shared edge
    /// are exact negations in both triangles, so a pixel centre on the edge is covered by both and
    /// never by neither: meshes rasterize without cracks.
    @inline(__always)
    static func setup(_ tri: SIMD3<UInt32>, clip: UnsafeBufferPointer<Float>, width: Int, height: Int, cull: Bool) -> Setup {
        var out = Setup()
        @inline(__always) func vertex(_ i: UInt32) -> SIMD4<Double> {
            let k = 4 * Int(i)
            return SIMD4(Double(clip[k]), Double(clip[k + 1]), Double(clip[k + 2]), Double(clip[k + 3]))
        }
        let v0 = vertex(tri.x), v1 = vertex(tri.y), v2 = vertex(tri.z)
        // Trivial rejection: all three vertices outside the same clip plane.
        let below = pointwiseMax(pointwiseMax(v0 + SIMD4(v0.w, v0.w, v0.w, 0), v1 + SIMD4(v1.w, v1.w, v1.w, 0)), v2 + SIMD4(v2.w, v2.w, v2.w, 0))
        let above = pointwiseMin(pointwiseMin(v0 - SIMD4(v0.w, v0.w, v0.w, 0), v1 - SIMD4(v1.w, v1.w, v1.w, 0)), v2 - SIMD4(v2.w, v2.w, v2.w, 0))
        // below < 0: every vertex has that coordinate < −w; above > 0: every vertex has it > w.
        if below.x < 0 || below.y < 0 || below.z < 0 || above.x > 0 || above.y > 0 || above.z > 0 { return out }
        let h0 = SIMD3(v0.x, v0.y, v0.w), h1 = SIMD3(v1.x, v1.y, v1.w), h2 = SIMD3(v2.x, v2.y, v2.w)
        let e0 = crossD(h1, h2), e1 = crossD(h2, h0), e2 = crossD(h0, h1)
        let det = (h0 * e0).sum()
        guard det.isFinite, det != 0, !(cull && det < 0) else { return out }
        let sign: Double = det > 0 ? 1 : -1
        let sx = 2 / Double(width), ox = 1 / Double(width) - 1
        let sy = -2 / Double(height), oy = 1 - 1 / Double(height)
        // Rows: edges 0…2 (multiplied by sign(det)); columns: x, y, constant in NDC.
        let ex = SIMD3(e0.x, e1.x, e2.x) * sign, ey = SIMD3(e0.y, e1.y, e2.y) * sign, ez = SIMD3(e0.z, e1.z, e2.z) * sign
        let a = ex * sx, b = ey * sy, c = ex * ox + ey * oy + ez
        // depth = Σ e_i z_i / det, with e already multiplied by sign(det).
        let zs = SIMD3(v0.z, v1.z, v2.z) / abs(det)
        guard let box = pixelBounds(v0, v1, v2, width: width, height: height) else { return out }
        out.a = SIMD4<Float>(SIMD4(a, (a * zs).sum()))
        out.b = SIMD4<Float>(SIMD4(b, (b * zs).sum()))
        out.c = SIMD4<Float>(SIMD4(c, (c * zs).sum()))
        (out.x0, out.x1, out.y0, out.y1) = box
        return out
    }

    /// Inclusive pixel-centre bounds of the part of the triangle in front of the near plane, or nil
    /// when no pixel centre can be inside. Vertices behind the near plane are clipped away first
    /// (Sutherland–Hodgman against w ≥ ε and z ≥ −w), so the box stays finite.
    static func pixelBounds(_ v0: SIMD4<Double>, _ v1: SIMD4<Double>, _ v2: SIMD4<Double>, width: Int, height: Int) -> (Int32, Int32, Int32, Int32)? {
        var lo = SIMD2<Double>(.infinity, .infinity), hi = -lo
        @inline(__always) func include(_ p: SIMD4<Double>) {
            // Pixel coordinates of the vertex, pixel centres at integers: col = (x/w + 1)·W/2 − ½.
            let q = SIMD2((p.x / p.w + 1) * Double(width) / 2 - 0.5, (1 - p.y / p.w) * Double(height) / 2 - 0.5)
            lo = pointwiseMin(lo, q)
            hi = pointwiseMax(hi, q)
        }
        @inline(__always) func inFront(_ p: SIMD4<Double>) -> Bool { p.w > 1e-9 && p.z >= -p.w }
        if inFront(v0) && inFront(v1) && inFront(v2) {
            include(v0); include(v1); include(v2)
        } else {
            var polygon = clip([v0, v1, v2]) { $0.w - 1e-9 }
            polygon = clip(polygon) { $0.z + $0.w }
            if polygon.isEmpty { return nil }
            for p in polygon { include(p) }
        }
        guard lo.x.isFinite, lo.y.isFinite, hi.x.isFinite, hi.y.isFinite else { return nil }
        let x0 = max(0, Int(max(-1, lo.x).rounded(.up))), x1 = min(width - 1, Int(min(Double(width), hi.x).rounded(.down)))
        let y0 = max(0, Int(max(-1, lo.y).rounded(.up))), y1 = min(height - 1, Int(min(Double(height), hi.y).rounded(.down)))
        guard x0 <= x1, y0 <= y1 else { return nil }
        return (Int32(x0), Int32(x1), Int32(y0), Int32(y1))
    }

    /// Clips a convex polygon to `distance ≥ 0`.
    static func clip(_ polygon: [SIMD4<Double>], _ distance: (SIMD4<Double>) -> Double) -> [SIMD4<Double>] {
        var out: [SIMD4<Double>] = []
        for i in polygon.indices {
            let p = polygon[i], q = polygon[(i + 1) % polygon.count]
            let dp = distance(p), dq = distance(q)
            if dp >= 0 { out.append(p) }
            if (dp >= 0) != (dq >= 0) { out.append(p + (q - p) * (dp / (dp - dq))) }
        }
        return out
    }

    @inline(__always)
    static func crossD(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
    }

    // MARK: Backward

    /// Gradient with respect to `[V, 4]` clip positions from gradients with respect to the raster's
    /// `[H, W, 2]` barycentrics and optional `[H, W]` depth; see `MeshReference.rasterizeBackward`
    /// for the formula. Per-thread partial sums are added in chunk order (deterministic for a given
    /// thread count).
    public static func rasterizeBackward(_ raster: MeshRaster<Float>, clipPositions: [Float], triangles: [SIMD3<UInt32>],
                                         barycentricGradient: [Float], depthGradient: [Float]? = nil,
                                         threads: Int = Parallel.defaultThreadCount) -> [Float] {
        let w = raster.width, h = raster.height
        precondition(barycentricGradient.count == 2 * w * h, "barycentric gradient must be [H, W, 2]")
        precondition(depthGradient == nil || depthGradient!.count == w * h, "depth gradient must be [H, W]")
        let partials = parallelMapChunks(h, threads: threads) { rows -> [Float] in
            var grad = [Float](repeating: 0, count: clipPositions.count)
            let map = PixelToNDC<Float>(width: w, height: h)
            clipPositions.withUnsafeBufferPointer { clip in grad.withUnsafeMutableBufferPointer { g in
                for row in rows {
                    for col in 0..<w {
                        let p = row * w + col
                        let id = Int(raster.triangleIDs[p])
                        guard id >= 0 else { continue }
                        let gu = barycentricGradient[2 * p], gv = barycentricGradient[2 * p + 1]
                        let gd = depthGradient?[p] ?? 0
                        if gu == 0 && gv == 0 && gd == 0 { continue }
                        let tri = triangles[id]
                        let ids = (Int(tri.x), Int(tri.y), Int(tri.z))
                        @inline(__always) func load(_ i: Int) -> SIMD4<Float> { SIMD4(clip[4 * i], clip[4 * i + 1], clip[4 * i + 3], clip[4 * i + 2]) }
                        let v0 = load(ids.0), v1 = load(ids.1), v2 = load(ids.2)  // (x, y, w, z)
                        let e0 = cross3(v1, v2), e1 = cross3(v2, v0), e2 = cross3(v0, v1)
                        let det = (v0 * e0).x + (v0 * e0).y + (v0 * e0).z
                        let q = SIMD4<Float>(map.sx * Float(col) + map.ox, map.sy * Float(row) + map.oy, 1, 0)
                        let y = SIMD3<Float>(dot3(e0, q), dot3(e1, q), dot3(e2, q)) / det
                        let s = y.sum()
                        let b = y / s
                        var gb = SIMD3<Float>(gu, gv, 0)
                        var gz = SIMD3<Float>.zero, gw = SIMD3<Float>.zero
                        if gd != 0 {
                            let ws = SIMD3(v0[2], v1[2], v2[2]), zs = SIMD3(v0[3], v1[3], v2[3])
                            let bw = (b * ws).sum()
                            let d = (b * zs).sum() / bw
                            gb += gd * (zs - d * ws) / bw
                            gz = gd * b / bw
                            gw = -gd * d * b / bw
                        }
                        let gy = (gb - (gb * b).sum()) / s
                        let r = (gy[0] * e0 + gy[1] * e1 + gy[2] * e2) / det
                        for (k, i) in [ids.0, ids.1, ids.2].enumerated() {
                            g[4 * i] -= r.x * y[k]
                            g[4 * i + 1] -= r.y * y[k]
                            g[4 * i + 3] += gw[k] - r.z * y[k]
                            g[4 * i + 2] += gz[k]
                        }
                    }
                }
            }}
            return grad
        }
        guard var total = partials.first else { return [Float](repeating: 0, count: clipPositions.count) }
        for part in partials.dropFirst() { for i in total.indices { total[i] += part[i] } }
        return total
    }

    @inline(__always)
    static func cross3(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> {
        SIMD4(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x, 0)
    }

    @inline(__always)
    static func dot3(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> Float { a.x * b.x + a.y * b.y + a.z * b.z }
}
