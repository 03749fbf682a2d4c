import KilnCore

/// Nearest-neighbour upsampling by an integer factor, `F.interpolate(x, scale_factor=s,
/// mode="nearest")` (diffusers' `Upsample2D` uses s = 2): `[N, C, H, W]` → `[N, C, sH, sW]`,
/// y[n, c, i, j] = x[n, c, ⌊i/s⌋, ⌊j/s⌋]. No parameters.
public struct UpsampleNearest2d: Sendable {
    public var scale: Int

    public init(scale: Int = 2) {
        precondition(scale >= 1, "UpsampleNearest2d: scale must be at least 1, got \(scale)")
        self.scale = scale
    }

    /// `[N, C, H, W]` → `[N, C, sH, sW]`; planes in parallel when large.
    public func forward(_ x: Tensor) -> Tensor {
        x.checkRank(4, "[N, C, H, W]", "UpsampleNearest2d.forward")
        let (h, w, s) = (x.shape[2], x.shape[3], scale)
        let planes = x.shape[0] * x.shape[1]
        var y = Tensor(uninitializedShape: [x.shape[0], x.shape[1], h * s, w * s])
        if y.count == 0 { return y }
        x.withUnsafeBufferPointer { px in
            y.withUnsafeMutableBufferPointer { py in
                nonisolated(unsafe) let (src, dst) = (px.baseAddress!, py.baseAddress!)
                VectorMath.forChunks(planes, threshold: planes * h * w * s * s >= VectorMath.parallelThreshold ? 2 : Int.max) { range in
                    for plane in range {
                        for i in 0..<h {
                            let row = src + (plane * h + i) * w
                            let out = dst + (plane * h * s + i * s) * w * s
                            for j in 0..<w {
                                let v = row[j]
                                for t in 0..<s { out[j * s + t] = v }
                            }
                            for t in 1..<max(1, s) { (out + t * w * s).update(from: out, count: w * s) }
                        }
                    }
                }
            }
        }
        return y
    }

    /// ∂L/∂x `[N, C, H, W]`: each input value receives the sum of its s×s block of ∂L/∂y.
    public func backward(outputGradient dy: Tensor) -> Tensor {
        dy.checkRank(4, "[N, C, sH, sW]", "UpsampleNearest2d.backward")
        let s = scale
        precondition(dy.shape[2] % s == 0 && dy.shape[3] % s == 0,
                     "UpsampleNearest2d.backward: gradient \(dy.shape) is not a multiple of the scale \(s)")
        let (h, w) = (dy.shape[2] / s, dy.shape[3] / s)
        let planes = dy.shape[0] * dy.shape[1]
        var dx = Tensor.zeros([dy.shape[0], dy.shape[1], h, w])
        if dx.count == 0 { return dx }
        dy.withUnsafeBufferPointer { pdy in
            dx.withUnsafeMutableBufferPointer { pdx in
                nonisolated(unsafe) let (src, dst) = (pdy.baseAddress!, pdx.baseAddress!)
                VectorMath.forChunks(planes, threshold: planes * h * w * s * s >= VectorMath.parallelThreshold ? 2 : Int.max) { range in
                    for plane in range {
                        for i in 0..<h {
                            let out = dst + (plane * h + i) * w
                            for t in 0..<s {
                                let row = src + (plane * h * s + i * s + t) * w * s
                                for j in 0..<w {
                                    var sum: Float = 0
                                    for u in 0..<s { sum += row[j * s + u] }
                                    out[j] += sum
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}
