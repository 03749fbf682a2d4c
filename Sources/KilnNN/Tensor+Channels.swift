import KilnCore

// MARK: - Per-channel broadcasts and reductions (NCHW)

extension Tensor {
    /// `self[n, c, …] += v[n, c]` for `self` `[N, C, *]` and `v` `[N, C]`: the time-embedding add
    /// of a ResNet block (diffusers' `h + temb[:, :, None, None]`).
    public mutating func addPerChannel(_ v: Tensor) {
        precondition(rank >= 2, "Tensor.addPerChannel: expected [N, C, ...], got \(shape)")
        v.checkShape([shape[0], shape[1]], "Tensor.addPerChannel (vector)")
        let planes = shape[0] * shape[1], spatial = planes == 0 ? 0 : count / planes
        v.withUnsafeBufferPointer { pv in
            withUnsafeMutableBufferPointer { px in
                for plane in 0..<planes where spatial > 0 {
                    let offset = pv[plane], row = px.baseAddress! + plane * spatial
                    for i in 0..<spatial { row[i] += offset }
                }
            }
        }
    }

    /// Σ over the spatial axes: `[N, C, *]` → `[N, C]` (the backward of `addPerChannel`), each sum
    /// accumulated in `Double`.
    public func sumPerChannel() -> Tensor {
        precondition(rank >= 2, "Tensor.sumPerChannel: expected [N, C, ...], got \(shape)")
        let planes = shape[0] * shape[1], spatial = planes == 0 ? 0 : count / planes
        var out = Tensor.zeros([shape[0], shape[1]])
        withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                for plane in 0..<planes where spatial > 0 { po[plane] = Float(VectorMath.sum(px.baseAddress! + plane * spatial, spatial)) }
            }
        }
        return out
    }

    /// `[N, C, H, W]` → `[N, H·W, C]`: an image as a token sequence (diffusers'
    /// `permute(0, 2, 3, 1).reshape(N, H·W, C)`).
    public func channelsToTokens() -> Tensor {
        checkRank(4, "[N, C, H, W]", "Tensor.channelsToTokens")
        return reshaped([shape[0], shape[1], shape[2] * shape[3]]).permuted([0, 2, 1])
    }

    /// `[N, H·W, C]` → `[N, C, H, W]`: the inverse of `channelsToTokens`.
    public func tokensToChannels(height: Int, width: Int) -> Tensor {
        checkShape([nil, height * width, nil], "Tensor.tokensToChannels")
        return permuted([0, 2, 1]).reshaped([shape[0], shape[2], height, width])
    }
}
