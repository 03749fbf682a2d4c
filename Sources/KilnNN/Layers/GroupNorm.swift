import KilnCore

/// Group normalisation, `torch.nn.GroupNorm`: the channels of each sample are split into `groups`
/// groups; each group is normalised by its own mean and (biased) variance, then scaled and shifted
/// per channel: y = (x − μ)/√(σ² + ε)·γ_c + β_c.
///
/// Parameters (when affine): `weight` γ `[C]` (ones), `bias` β `[C]` (zeros). Input `[N, C, *]`
/// (NCHW, or `[N, C]`) → same shape. ε is 1e-5 in PyTorch and in the UNet's ResNet blocks and
/// output norm (diffusers' `norm_eps`), 1e-6 in diffusers' Transformer2DModel.
///
/// Fast path: in NCHW a group's channels are one contiguous block, so the N·groups blocks run in
/// parallel; statistics are two-pass (mean, then Σ(x − μ)²), each channel summed in float lanes
/// and the channels in `Double`. Backward recomputes the statistics from the input and applies
/// dx = a_c·dy + b·x + c₀ in one fused pass per channel.
public final class GroupNorm: Module {
    public let groups: Int
    public let channels: Int
    public let eps: Float
    /// γ `[C]`, or nil when not affine.
    public let weight: Parameter?
    /// β `[C]`, or nil when not affine.
    public let bias: Parameter?

    public init(groups: Int, channels: Int, eps: Float = 1e-5, affine: Bool = true) {
        precondition(groups > 0 && channels > 0 && channels % groups == 0,
                     "GroupNorm: \(channels) channels do not split into \(groups) groups")
        self.groups = groups
        self.channels = channels
        self.eps = eps
        self.weight = affine ? Parameter(Tensor(repeating: 1, shape: [channels])) : nil
        self.bias = affine ? Parameter(Tensor.zeros([channels])) : nil
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        guard let weight, let bias else { return [] }
        return [("weight", weight), ("bias", bias)]
    }

    /// (batch, spatial values per channel) of `x` `[N, C, *]`.
    func layout(_ x: Tensor, _ operation: String) -> (batch: Int, spatial: Int) {
        precondition(x.rank >= 2 && x.shape[1] == channels, "\(operation): expected input [N, \(channels), ...], got \(x.shape)")
        return (x.shape[0], x.shape.dropFirst(2).reduce(1, *))
    }

    /// Mean and 1/√(σ² + ε) of one group's `channelsPerGroup` channels of `spatial` values.
    @inline(__always)
    static func statistics(_ block: UnsafePointer<Float>, channelsPerGroup: Int, spatial: Int, eps: Float) -> (mean: Float, rstd: Float) {
        let size = Double(channelsPerGroup * spatial)
        var total = 0.0
        for c in 0..<channelsPerGroup { total += VectorMath.sum(block + c * spatial, spatial) }
        let mean = Float(total / size)
        var squares = 0.0
        for c in 0..<channelsPerGroup { squares += VectorMath.sumOfSquaredDeviations(block + c * spatial, spatial, from: mean) }
        let rstd = Float(1 / (squares / size + Double(eps)).squareRoot())
        return (mean, rstd)
    }

    /// `[N, C, *]` → same shape.
    public func forward(_ x: Tensor) -> Tensor { normalize(x, thenSiLU: false) }

    /// silu(GroupNorm(x)) in one pass over the output (the pre-activation of every diffusers
    /// ResNet block, and of the UNet's output head), for inference: the normalised tensor is never
    /// written. Same values as `SiLU().forward(forward(x))`.
    public func forwardSiLU(_ x: Tensor) -> Tensor { normalize(x, thenSiLU: true) }

    func normalize(_ x: Tensor, thenSiLU: Bool) -> Tensor {
        let (batch, spatial) = layout(x, "GroupNorm.forward")
        var y = Tensor(uninitializedShape: x.shape)
        if x.count == 0 { return y }
        let cpg = channels / groups, groups = groups, eps = eps
        let gamma = weight?.value.storage, beta = bias?.value.storage
        x.withUnsafeBufferPointer { px in
            y.withUnsafeMutableBufferPointer { py in
                nonisolated(unsafe) let (src, dst) = (px.baseAddress!, py.baseAddress!)
                VectorMath.forChunks(batch * groups, threshold: x.count >= VectorMath.parallelThreshold ? 2 : Int.max) { range in
                    for block in range {
                        let offset = block * cpg * spatial
                        let (mean, rstd) = GroupNorm.statistics(src + offset, channelsPerGroup: cpg, spatial: spatial, eps: eps)
                        for c in 0..<cpg {
                            let channel = (block % groups) * cpg + c
                            let scale = rstd * (gamma?[channel] ?? 1)
                            let shift = (beta?[channel] ?? 0) - mean * scale
                            let from = src + offset + c * spatial, to = dst + offset + c * spatial
                            if thenSiLU {
                                let (a, b) = (SIMD16<Float>(repeating: scale), SIMD16<Float>(repeating: shift))
                                VectorMath.map(from, to, 0..<spatial) { SiLU.value($0 * a + b) }
                            } else {
                                VectorMath.affine(from, to, spatial, scale: scale, shift: shift)
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// Given the forward's input and ∂L/∂y, adds ∂L/∂γ and ∂L/∂β into the parameters' gradients
    /// and returns ∂L/∂x.
    public func backward(input x: Tensor, outputGradient dy: Tensor) -> Tensor {
        let (batch, spatial) = layout(x, "GroupNorm.backward (input)")
        x.checkSameShape(dy, "GroupNorm.backward (output gradient)")
        var dx = Tensor(uninitializedShape: x.shape)
        if x.count == 0 { return dx }
        let cpg = channels / groups, groups = groups, eps = eps, channels = channels
        let gamma = weight?.value.storage
        // Per (sample, channel): Σ dy and Σ dy·x̂, reduced over samples afterwards in order.
        var sumDy = [Float](repeating: 0, count: batch * channels), sumDyXhat = [Float](repeating: 0, count: batch * channels)
        x.withUnsafeBufferPointer { px in
            dy.withUnsafeBufferPointer { pdy in
                dx.withUnsafeMutableBufferPointer { pdx in
                    sumDy.withUnsafeMutableBufferPointer { ps1 in
                        sumDyXhat.withUnsafeMutableBufferPointer { ps2 in
                            nonisolated(unsafe) let (xs, gs, out, s1, s2) = (px.baseAddress!, pdy.baseAddress!, pdx.baseAddress!, ps1.baseAddress!, ps2.baseAddress!)
                            VectorMath.forChunks(batch * groups, threshold: x.count >= VectorMath.parallelThreshold ? 2 : Int.max) { range in
                                for block in range {
                                    let offset = block * cpg * spatial
                                    let (mean, rstd) = GroupNorm.statistics(xs + offset, channelsPerGroup: cpg, spatial: spatial, eps: eps)
                                    var a = 0.0, b = 0.0  // Σ γ·dy and Σ γ·dy·(x − μ) over the group
                                    for c in 0..<cpg {
                                        let channel = (block % groups) * cpg + c
                                        let g = Double(gamma?[channel] ?? 1)
                                        let sdy = VectorMath.sum(gs + offset + c * spatial, spatial)
                                        let sdyx = VectorMath.dot(gs + offset + c * spatial, xs + offset + c * spatial, spatial)
                                        let centered = sdyx - Double(mean) * sdy
                                        let index = (block / groups) * channels + channel
                                        s1[index] = Float(sdy)
                                        s2[index] = Float(centered * Double(rstd))
                                        a += g * sdy
                                        b += g * centered
                                    }
                                    // dx = rstd·(γ dy − A/M − x̂·rstd·B/M) = (rstd γ)·dy + k·x + k₀
                                    let m = Double(cpg * spatial), r = Double(rstd)
                                    let k = -r * r * r * b / m
                                    let k0 = -r * a / m - k * Double(mean)
                                    for c in 0..<cpg {
                                        let channel = (block % groups) * cpg + c
                                        let scale = rstd * (gamma?[channel] ?? 1)
                                        GroupNorm.fusedGradient(gs + offset + c * spatial, xs + offset + c * spatial, out + offset + c * spatial,
                                                                spatial, dyScale: scale, xScale: Float(k), shift: Float(k0))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if let weight, let bias, weight.requiresGradient || bias.requiresGradient {
            for n in 0..<batch {
                for c in 0..<channels {
                    weight.gradient.storage[c] += sumDyXhat[n * channels + c]
                    bias.gradient.storage[c] += sumDy[n * channels + c]
                }
            }
        }
        return dx
    }

    /// out[i] = dyScale·dy[i] + xScale·x[i] + shift.
    @inline(__always)
    static func fusedGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ count: Int,
                              dyScale: Float, xScale: Float, shift: Float) {
        VectorMath.map2(dy, x, out, 0..<count) { d, v in d * dyScale + v * xScale + shift }
    }
}
