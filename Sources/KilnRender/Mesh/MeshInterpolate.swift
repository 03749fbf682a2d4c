import KilnCore

/// The fast `interpolate` op: vertex attributes at each pixel by the raster's barycentrics.
/// Rows run in parallel; see `MeshReference.interpolate` for the plain version.
public enum MeshInterpolate {
    /// `[H, W, C]` attributes u·a₀ + v·a₁ + (1 − u − v)·a₂ of the triangle each pixel sees; zero where
    /// empty.
    /// - Parameters:
    ///   - attributes: `[V, C]` per-vertex values (colours, normals, UVs, camera depth…).
    ///   - channels: C ≥ 1.
    ///   - triangles: the triangles that were rasterized.
    public static func forward(_ attributes: [Float], channels: Int, triangles: [SIMD3<UInt32>], raster: MeshRaster<Float>,
                               threads: Int = Parallel.defaultThreadCount) -> [Float] {
        precondition(channels >= 1 && attributes.count % channels == 0, "attributes must be [V, C] with C = \(channels)")
        let pixels = raster.width * raster.height
        var out = [Float](repeating: 0, count: pixels * channels)
        out.withUnsafeMutableBufferPointer { o in
            let o = UnsafeMutableSendableBuffer(o)
            attributes.withUnsafeBufferPointer { a in
                let a = UnsafeSendableBuffer(a)
                parallelFor(raster.height, threads: threads) { rows in
                    raster.triangleIDs.withUnsafeBufferPointer { ids in raster.barycentrics.withUnsafeBufferPointer { bary in
                        for p in (rows.lowerBound * raster.width)..<(rows.upperBound * raster.width) {
                            let id = Int(ids[p])
                            guard id >= 0 else { continue }
                            let t = triangles[id]
                            let u = bary[2 * p], v = bary[2 * p + 1], w = 1 - u - v
                            let i0 = Int(t.x) * channels, i1 = Int(t.y) * channels, i2 = Int(t.z) * channels
                            for c in 0..<channels { o[p * channels + c] = u * a.buffer[i0 + c] + v * a.buffer[i1 + c] + w * a.buffer[i2 + c] }
                        }
                    }}
                }
            }
        }
        return out
    }

    /// `[H, W, 2, C]` screen derivatives of the interpolated attributes (all ∂/∂x, then all ∂/∂y, per
    /// pixel step, y down the rows); needs a raster made with `barycentricDerivatives`. Texture
    /// level-of-detail reads UV derivatives in this layout: (∂u/∂x, ∂v/∂x, ∂u/∂y, ∂v/∂y).
    public static func derivatives(_ attributes: [Float], channels: Int, triangles: [SIMD3<UInt32>], raster: MeshRaster<Float>) -> [Float] {
        // A thin op (two multiply-adds per channel); the reference's loop is already what it needs.
        MeshReference.interpolateDerivatives(attributes, channels: channels, triangles: triangles, raster: raster)
    }

    /// Gradients with respect to `[V, C]` attributes and `[H, W, 2]` barycentrics from the gradient
    /// with respect to the `[H, W, C]` output. Attribute gradients are summed per thread chunk,
    /// then added in chunk order.
    public static func backward(_ attributes: [Float], channels: Int, triangles: [SIMD3<UInt32>], raster: MeshRaster<Float>,
                                outputGradient: [Float], threads: Int = Parallel.defaultThreadCount) -> (attributes: [Float], barycentrics: [Float]) {
        let pixels = raster.width * raster.height
        precondition(outputGradient.count == pixels * channels, "interpolate output gradient must be [H, W, C] = [\(raster.height), \(raster.width), \(channels)]")
        var gb = [Float](repeating: 0, count: 2 * pixels)
        let partials = gb.withUnsafeMutableBufferPointer { gbp in
            let gbp = UnsafeMutableSendableBuffer(gbp)
            return parallelMapChunks(raster.height, threads: threads) { rows -> [Float] in
                var ga = [Float](repeating: 0, count: attributes.count)
                attributes.withUnsafeBufferPointer { a in outputGradient.withUnsafeBufferPointer { g in ga.withUnsafeMutableBufferPointer { gap in
                raster.triangleIDs.withUnsafeBufferPointer { ids in raster.barycentrics.withUnsafeBufferPointer { bary in
                    for p in (rows.lowerBound * raster.width)..<(rows.upperBound * raster.width) {
                        let id = Int(ids[p])
                        guard id >= 0 else { continue }
                        let t = triangles[id]
                        let u = bary[2 * p], v = bary[2 * p + 1], w = 1 - u - v
                        let i0 = Int(t.x) * channels, i1 = Int(t.y) * channels, i2 = Int(t.z) * channels
                        var du: Float = 0, dv: Float = 0
                        for c in 0..<channels {
                            let gc = g[p * channels + c]
                            gap[i0 + c] += u * gc
                            gap[i1 + c] += v * gc
                            gap[i2 + c] += w * gc
                            du += (a[i0 + c] - a[i2 + c]) * gc
                            dv += (a[i1 + c] - a[i2 + c]) * gc
                        }
                        gbp[2 * p] = du
                        gbp[2 * p + 1] = dv
                    }
                }}
                }}}
                return ga
            }
        }
        guard var total = partials.first else { return ([Float](repeating: 0, count: attributes.count), gb) }
        for part in partials.dropFirst() { for i in total.indices { total[i] += part[i] } }
        return (total, gb)
    }
}
