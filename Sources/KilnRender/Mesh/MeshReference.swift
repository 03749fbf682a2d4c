import KilnCore

/// Plain reference implementations of the mesh ops, in any precision (float64 for gradient
/// checks): every pixel tests every triangle, following the equations in `MeshRaster.swift`
/// literally. The fast ops (`MeshRasterizer`, `MeshInterpolate`, `MeshAntialias`) are tested
/// against these on random inputs.
public enum MeshReference {
    // MARK: Rasterize

    /// A triangle in homogeneous form: the edge vectors E_i = V_j × V_k over (x, y, w), the
    /// vertex depths z_i and det(M) = V₀·E₀.
    struct Homogeneous<R: BinaryFloatingPoint> {
        var edges: [(R, R, R)]
        var vertices: [(R, R, R)]
        var z: [R]
        var det: R

        init(_ clip: [R], _ t: SIMD3<UInt32>) {
            let ids = [Int(t.x), Int(t.y), Int(t.z)]
            let v = ids.map { (clip[4 * $0], clip[4 * $0 + 1], clip[4 * $0 + 3]) }
            let e = (0..<3).map { i in MeshReference.cross(v[(i + 1) % 3], v[(i + 2) % 3]) }
            vertices = v
            z = ids.map { clip[4 * $0 + 2] }
            edges = e
            det = MeshReference.dot(v[0], e[0])
        }

        /// The edge functions at NDC point (qx, qy).
        func edgeFunctions(_ qx: R, _ qy: R) -> [R] { edges.map { $0.0 * qx + $0.1 * qy + $0.2 } }
    }

    static func cross<R: BinaryFloatingPoint>(_ a: (R, R, R), _ b: (R, R, R)) -> (R, R, R) {
        (a.1 * b.2 - a.2 * b.1, a.2 * b.0 - a.0 * b.2, a.0 * b.1 - a.1 * b.0)
    }

    static func dot<R: BinaryFloatingPoint>(_ a: (R, R, R), _ b: (R, R, R)) -> R { a.0 * b.0 + a.1 * b.1 + a.2 * b.2 }

    /// Rasterizes `[F]` triangles over `[V, 4]` clip-space positions into a `width × height` raster.
    /// The nearest covering triangle wins; on equal depth, the lower triangle index. With
    /// `previous` (depth peeling), only fragments after the previous layer's (depth, triangle) in
    /// that order count.
    public static func rasterize<R: BinaryFloatingPoint & Sendable>(clipPositions: [R], triangles: [SIMD3<UInt32>], width: Int, height: Int,
                                                                     options: RasterizeOptions = RasterizeOptions(),
                                                                     behind previous: MeshRaster<R>? = nil) -> MeshRaster<R> {
        var raster = MeshRaster<R>(width: width, height: height, withDerivatives: options.barycentricDerivatives)
        let map = PixelToNDC<R>(width: width, height: height)
        let forms = triangles.map { Homogeneous(clipPositions, $0) }
        for row in 0..<height {
            for col in 0..<width {
                let qx = map.sx * R(col) + map.ox, qy = map.sy * R(row) + map.oy
                var best: (depth: R, id: Int, e: [R])?
                for (id, f) in forms.enumerated() {
                    guard f.det.isFinite, f.det != 0, !(options.cullBackFaces && f.det < 0) else { continue }
                    let e = f.edgeFunctions(qx, qy)
                    guard e.allSatisfy({ $0 * f.det >= 0 }), e.contains(where: { $0 != 0 }) else { continue }
                    let depth = (e[0] * f.z[0] + e[1] * f.z[1] + e[2] * f.z[2]) / f.det
                    guard depth >= -1, depth <= 1 else { continue }
                    if let previous {
                        let id0 = Int(previous.triangleIDs[row * width + col]), d0 = previous.depth[row * width + col]
                        guard id0 >= 0, depth > d0 || (depth == d0 && id > id0) else { continue }
                    }
                    if best == nil || depth < best!.depth { best = (depth, id, e) }
                }
                guard let best else { continue }
                let p = row * width + col
                let f = forms[best.id], e = best.e, sum = e[0] + e[1] + e[2]
                raster.triangleIDs[p] = Int32(best.id)
                raster.depth[p] = best.depth
                raster.barycentrics[2 * p] = e[0] / sum
                raster.barycentrics[2 * p + 1] = e[1] / sum
                if options.barycentricDerivatives {
                    // ∂e_i/∂col = E_i.x·sx, ∂e_i/∂row = E_i.y·sy; b_i = e_i/Σe.
                    let dx = f.edges.map { $0.0 * map.sx }, dy = f.edges.map { $0.1 * map.sy }
                    let sdx = dx[0] + dx[1] + dx[2], sdy = dy[0] + dy[1] + dy[2]
                    for i in 0..<2 {
                        let b = e[i] / sum
                        raster.barycentricDerivatives![4 * p + 2 * i] = (dx[i] - b * sdx) / sum
                        raster.barycentricDerivatives![4 * p + 2 * i + 1] = (dy[i] - b * sdy) / sum
                    }
                }
            }
        }
        return raster
    }

    /// Gradient of a loss with respect to `[V, 4]` clip positions, given its gradients with respect
    /// to the raster's `[H, W, 2]` barycentrics and (optionally) `[H, W]` depth. Visibility is
    /// treated as fixed (its gradient is zero almost everywhere; `antialias` supplies the rest).
    ///
    /// With y = M⁻¹q and b = y/Σy: ∂L/∂y = (g_b − (g_b·b))/Σy and ∂L/∂M = −M⁻ᵀ(∂L/∂y)·yᵀ, where
    /// M⁻ᵀ = [E₀ E₁ E₂]/det. Depth D = (b·z)/(b·w) adds (z_i − D·w_i)/(b·w) to g_b, b_i/(b·w) to
    /// ∂L/∂z_i and −D·b_i/(b·w) to ∂L/∂w_i.
    public static func rasterizeBackward<R: BinaryFloatingPoint & Sendable>(_ raster: MeshRaster<R>, clipPositions: [R], triangles: [SIMD3<UInt32>],
                                                                             barycentricGradient: [R], depthGradient: [R]? = nil) -> [R] {
        var grad = [R](repeating: 0, count: clipPositions.count)
        let map = PixelToNDC<R>(width: raster.width, height: raster.height)
        for row in 0..<raster.height {
            for col in 0..<raster.width {
                let p = row * raster.width + col
                let id = Int(raster.triangleIDs[p])
                guard id >= 0 else { continue }
                let t = triangles[id]
                let f = Homogeneous(clipPositions, t)
                let e = f.edgeFunctions(map.sx * R(col) + map.ox, map.sy * R(row) + map.oy)
                let y = e.map { $0 / f.det }
                let s = y[0] + y[1] + y[2]
                let b = y.map { $0 / s }
                var gb: [R] = [barycentricGradient[2 * p], barycentricGradient[2 * p + 1], 0]
                var gz: [R] = [0, 0, 0], gw: [R] = [0, 0, 0]
                if let depthGradient, depthGradient[p] != 0 {
                    let gd = depthGradient[p]
                    let bw = b[0] * f.vertices[0].2 + b[1] * f.vertices[1].2 + b[2] * f.vertices[2].2
                    let d = (b[0] * f.z[0] + b[1] * f.z[1] + b[2] * f.z[2]) / bw
                    for i in 0..<3 {
                        gb[i] += gd * (f.z[i] - d * f.vertices[i].2) / bw
                        gz[i] = gd * b[i] / bw
                        gw[i] = -gd * d * b[i] / bw  // w also appears explicitly in (b·z)/(b·w)
                    }
                }
                let gdotb = gb[0] * b[0] + gb[1] * b[1] + gb[2] * b[2]
                let gy = gb.map { ($0 - gdotb) / s }
                // r = M⁻ᵀ·gy = Σ gy_i E_i / det; ∂L/∂V_i = −r·y_i.
                var r: (R, R, R) = (0, 0, 0)
                for i in 0..<3 {
                    r.0 += gy[i] * f.edges[i].0 / f.det
                    r.1 += gy[i] * f.edges[i].1 / f.det
                    r.2 += gy[i] * f.edges[i].2 / f.det
                }
                let ids = [Int(t.x), Int(t.y), Int(t.z)]
                for i in 0..<3 {
                    grad[4 * ids[i]] -= r.0 * y[i]
                    grad[4 * ids[i] + 1] -= r.1 * y[i]
                    grad[4 * ids[i] + 3] += gw[i] - r.2 * y[i]
                    grad[4 * ids[i] + 2] += gz[i]
                }
            }
        }
        return grad
    }

    // MARK: Interpolate

    /// `[H, W, C]` attributes interpolated from `[V, C]` vertex attributes; zero where empty.
    public static func interpolate<R: BinaryFloatingPoint & Sendable>(_ attributes: [R], channels: Int, triangles: [SIMD3<UInt32>], raster: MeshRaster<R>) -> [R] {
        var out = [R](repeating: 0, count: raster.width * raster.height * channels)
        for p in 0..<(raster.width * raster.height) {
            let id = Int(raster.triangleIDs[p])
            guard id >= 0 else { continue }
            let t = triangles[id]
            let u = raster.barycentrics[2 * p], v = raster.barycentrics[2 * p + 1]
            for c in 0..<channels {
                out[p * channels + c] = u * attributes[Int(t.x) * channels + c] + v * attributes[Int(t.y) * channels + c]
                    + (1 - u - v) * attributes[Int(t.z) * channels + c]
            }
        }
        return out
    }

    /// `[H, W, 2, C]` screen derivatives of the interpolated attributes: all ∂/∂x (x right), then
    /// all ∂/∂y (y down the rows), from the raster's barycentric derivatives.
    public static func interpolateDerivatives<R: BinaryFloatingPoint & Sendable>(_ attributes: [R], channels: Int, triangles: [SIMD3<UInt32>],
                                                                                  raster: MeshRaster<R>) -> [R] {
        guard let db = raster.barycentricDerivatives else { preconditionFailure("interpolateDerivatives needs a raster made with barycentricDerivatives") }
        var out = [R](repeating: 0, count: raster.width * raster.height * 2 * channels)
        for p in 0..<(raster.width * raster.height) {
            let id = Int(raster.triangleIDs[p])
            guard id >= 0 else { continue }
            let t = triangles[id]
            for c in 0..<channels {
                let a0 = attributes[Int(t.x) * channels + c], a1 = attributes[Int(t.y) * channels + c], a2 = attributes[Int(t.z) * channels + c]
                out[(2 * p) * channels + c] = db[4 * p] * (a0 - a2) + db[4 * p + 2] * (a1 - a2)
                out[(2 * p + 1) * channels + c] = db[4 * p + 1] * (a0 - a2) + db[4 * p + 3] * (a1 - a2)
            }
        }
        return out
    }

    /// Gradients of a loss with respect to `[V, C]` attributes and `[H, W, 2]` barycentrics, given
    /// its gradient with respect to the `[H, W, C]` interpolated output.
    public static func interpolateBackward<R: BinaryFloatingPoint & Sendable>(_ attributes: [R], channels: Int, triangles: [SIMD3<UInt32>], raster: MeshRaster<R>,
                                                                               outputGradient: [R]) -> (attributes: [R], barycentrics: [R]) {
        var ga = [R](repeating: 0, count: attributes.count)
        var gb = [R](repeating: 0, count: raster.barycentrics.count)
        for p in 0..<(raster.width * raster.height) {
            let id = Int(raster.triangleIDs[p])
            guard id >= 0 else { continue }
            let t = triangles[id]
            let u = raster.barycentrics[2 * p], v = raster.barycentrics[2 * p + 1]
            for c in 0..<channels {
                let g = outputGradient[p * channels + c]
                let a0 = attributes[Int(t.x) * channels + c], a1 = attributes[Int(t.y) * channels + c], a2 = attributes[Int(t.z) * channels + c]
                ga[Int(t.x) * channels + c] += u * g
                ga[Int(t.y) * channels + c] += v * g
                ga[Int(t.z) * channels + c] += (1 - u - v) * g
                gb[2 * p] += (a0 - a2) * g
                gb[2 * p + 1] += (a1 - a2) * g
            }
        }
        return (ga, gb)
    }

    // MARK: Antialias

    /// `[H, W, C]` colour with silhouette edges blended analytically (see `MeshAntialias`): every
    /// horizontally or vertically adjacent pixel pair is visited once, serially.
    public static func antialias<R: BinaryFloatingPoint & Sendable>(_ color: [R], channels: Int, raster: MeshRaster<R>, clipPositions: [R],
                                                                     triangles: [SIMD3<UInt32>], topology: MeshTopology) -> [R] {
        var out = color
        let facing = MeshAntialias.facing(clipPositions, triangles)
        forEachPair(raster) { a, b in
            guard let x = MeshAntialias.crossing(a, b, raster: raster, clipPositions: clipPositions, triangles: triangles,
                                                 topology: topology, facing: facing) else { return }
            let (target, source, alpha) = x.blend
            for c in 0..<channels {
                out[target * channels + c] += alpha * (color[source * channels + c] - color[target * channels + c])
            }
        }
        return out
    }

    /// Gradients with respect to the `[H, W, C]` input colour and the `[V, 4]` clip positions.
    public static func antialiasBackward<R: BinaryFloatingPoint & Sendable>(_ color: [R], channels: Int, raster: MeshRaster<R>, clipPositions: [R],
                                                                             triangles: [SIMD3<UInt32>], topology: MeshTopology,
                                                                             outputGradient: [R]) -> (color: [R], clipPositions: [R]) {
        var gc = outputGradient
        var gp = [R](repeating: 0, count: clipPositions.count)
        let facing = MeshAntialias.facing(clipPositions, triangles)
        forEachPair(raster) { a, b in
            guard let x = MeshAntialias.crossing(a, b, raster: raster, clipPositions: clipPositions, triangles: triangles,
                                                 topology: topology, facing: facing) else { return }
            let (target, source, alpha) = x.blend
            var gAlpha: R = 0
            for c in 0..<channels {
                let g = outputGradient[target * channels + c]
                gc[target * channels + c] -= alpha * g
                gc[source * channels + c] += alpha * g
                gAlpha += g * (color[source * channels + c] - color[target * channels + c])
            }
            x.accumulatePositionGradient(gAlpha, clipPositions: clipPositions, triangles: triangles) { i, g in gp[i] += g }
        }
        return (gc, gp)
    }

    /// Calls `body(a, b)` for every right and down neighbour pair of pixel indices.
    static func forEachPair<R>(_ raster: MeshRaster<R>, _ body: (Int, Int) -> Void) {
        for row in 0..<raster.height {
            for col in 0..<raster.width {
                let p = row * raster.width + col
                if col + 1 < raster.width { body(p, p + 1) }
                if row + 1 < raster.height { body(p, p + raster.width) }
            }
        }
    }
}
