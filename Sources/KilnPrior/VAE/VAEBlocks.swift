import KilnCore
import KilnNN

/// diffusers' `DownEncoderBlock2D`: ResNets without a time embedding, then (except at the coarsest
/// level) `Downsample2D` with `padding=0`: zero-pad one row at the bottom and one column at the
/// right (`F.pad(x, (0, 1, 0, 1))`), then a stride-2 3×3 convolution without padding
/// (`downsamplers.0.conv`). `[N, Cin, H, W]` → `[N, C, H/2, W/2]` (H, W even).
final class VAEDownBlock: Module {
    let resnets: [ResnetBlock2D]
    let downsampler: Conv2d?

    struct Saved {
        var resnets: [ResnetBlock2D.Saved] = []
        /// The padded input of the downsampling convolution.
        var downsamplerInput: Tensor?
    }

    init(inChannels: Int, outChannels: Int, layers: Int, groups: Int, downsample: Bool, rng: inout RNG) {
        resnets = (0..<layers).map { j in
            ResnetBlock2D(inChannels: j == 0 ? inChannels : outChannels, outChannels: outChannels, timeChannels: nil,
                          groups: groups, eps: AutoencoderKLConfig.normEps, rng: &rng)
        }
        downsampler = downsample ? Conv2d(inChannels: outChannels, outChannels: outChannels, kernelSize: 3, stride: 2, padding: 0, rng: &rng) : nil
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        var out: [(name: String, parameter: Parameter)] = []
        for (j, r) in resnets.enumerated() { out += prefixed("resnets.\(j)", r) }
        return out + (downsampler.map { prefixed("downsamplers.0.conv", $0) } ?? [])
    }

    func forward(_ x: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        var saved = Saved(), h = x
        for resnet in resnets {
            let (r, rs) = resnet.forward(h, timeEmbedding: nil, training: training)
            h = r
            if let rs { saved.resnets.append(rs) }
        }
        if let downsampler {
            let padded = VAEDownBlock.padBottomRight(h)
            if training { saved.downsamplerInput = padded }
            h = downsampler.forward(padded)
        }
        return (h, saved)
    }

    /// Adds the parameter gradients; returns ∂L/∂x.
    func backward(_ s: Saved, outputGradient dy: Tensor) -> Tensor {
        precondition(s.resnets.count == resnets.count, "VAE down block backward needs a forward pass run with training: true")
        var g = dy
        if let downsampler {
            g = VAEDownBlock.cropBottomRight(downsampler.backward(input: s.downsamplerInput!, outputGradient: g))
        }
        for j in resnets.indices.reversed() { g = resnets[j].backward(s.resnets[j], outputGradient: g).input }
        return g
    }

    /// `[N, C, H, W]` → `[N, C, H + 1, W + 1]` with a zero last row and last column.
    static func padBottomRight(_ x: Tensor) -> Tensor {
        x.checkRank(4, "[N, C, H, W]", "VAEDownBlock.padBottomRight")
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        var out = Tensor.zeros([x.shape[0], x.shape[1], h + 1, w + 1])
        x.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                for plane in 0..<planes {
                    for row in 0..<h {
                        let src = px.baseAddress! + (plane * h + row) * w, dst = po.baseAddress! + (plane * (h + 1) + row) * (w + 1)
                        dst.update(from: src, count: w)
                    }
                }
            }
        }
        return out
    }

    /// The backward of `padBottomRight`: `[N, C, H + 1, W + 1]` → `[N, C, H, W]`.
    static func cropBottomRight(_ x: Tensor) -> Tensor {
        x.checkRank(4, "[N, C, H + 1, W + 1]", "VAEDownBlock.cropBottomRight")
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2] - 1, x.shape[3] - 1)
        var out = Tensor.zeros([x.shape[0], x.shape[1], h, w])
        x.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                for plane in 0..<planes {
                    for row in 0..<h {
                        let src = px.baseAddress! + (plane * (h + 1) + row) * (w + 1), dst = po.baseAddress! + (plane * h + row) * w
                        dst.update(from: src, count: w)
                    }
                }
            }
        }
        return out
    }
}

/// diffusers' `UpDecoderBlock2D`: ResNets without a time embedding, then (except at the finest
/// level) `Upsample2D`: nearest ×2, then a 3×3 convolution (`upsamplers.0.conv`).
final class VAEUpBlock: Module {
    let resnets: [ResnetBlock2D]
    let upsampler: Conv2d?

    struct Saved {
        var resnets: [ResnetBlock2D.Saved] = []
        var upsamplerInput: Tensor?
    }

    init(inChannels: Int, outChannels: Int, layers: Int, groups: Int, upsample: Bool, rng: inout RNG) {
        resnets = (0..<layers).map { j in
            ResnetBlock2D(inChannels: j == 0 ? inChannels : outChannels, outChannels: outChannels, timeChannels: nil,
                          groups: groups, eps: AutoencoderKLConfig.normEps, rng: &rng)
        }
        upsampler = upsample ? Conv2d(inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1, rng: &rng) : nil
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        var out: [(name: String, parameter: Parameter)] = []
        for (j, r) in resnets.enumerated() { out += prefixed("resnets.\(j)", r) }
        return out + (upsampler.map { prefixed("upsamplers.0.conv", $0) } ?? [])
    }

    func forward(_ x: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        var saved = Saved(), h = x
        for resnet in resnets {
            let (r, rs) = resnet.forward(h, timeEmbedding: nil, training: training)
            h = r
            if let rs { saved.resnets.append(rs) }
        }
        if let upsampler {
            let up = UpsampleNearest2d(scale: 2).forward(h)
            if training { saved.upsamplerInput = up }
            h = upsampler.forward(up)
        }
        return (h, saved)
    }

    /// Adds the parameter gradients; returns ∂L/∂x.
    func backward(_ s: Saved, outputGradient dy: Tensor) -> Tensor {
        precondition(s.resnets.count == resnets.count, "VAE up block backward needs a forward pass run with training: true")
        var g = dy
        if let upsampler {
            g = UpsampleNearest2d(scale: 2).backward(outputGradient: upsampler.backward(input: s.upsamplerInput!, outputGradient: g))
        }
        for j in resnets.indices.reversed() { g = resnets[j].backward(s.resnets[j], outputGradient: g).input }
        return g
    }
}

/// diffusers' `UNetMidBlock2D` as the VAE builds it: ResNet, self-attention, ResNet, no time
/// embedding, output scale 1.
final class VAEMidBlock: Module {
    let resnets: [ResnetBlock2D]
    let attention: VAEAttention

    struct Saved {
        var resnets: [ResnetBlock2D.Saved] = []
        var attention: VAEAttention.Saved?
    }

    init(channels: Int, groups: Int, rng: inout RNG) {
        resnets = (0..<2).map { _ in
            ResnetBlock2D(inChannels: channels, outChannels: channels, timeChannels: nil, groups: groups,
                          eps: AutoencoderKLConfig.normEps, rng: &rng)
        }
        attention = VAEAttention(channels: channels, groups: groups, rng: &rng)
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        prefixed("attentions.0", attention) + prefixed("resnets.0", resnets[0]) + prefixed("resnets.1", resnets[1])
    }

    func forward(_ x: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        var saved = Saved()
        let (r0, s0) = resnets[0].forward(x, timeEmbedding: nil, training: training)
        let (a, sa) = attention.forward(r0, training: training)
        let (r1, s1) = resnets[1].forward(a, timeEmbedding: nil, training: training)
        if let s0, let s1 { saved.resnets = [s0, s1]; saved.attention = sa }
        return (r1, saved)
    }

    /// Adds the parameter gradients; returns ∂L/∂x.
    func backward(_ s: Saved, outputGradient dy: Tensor) -> Tensor {
        precondition(s.resnets.count == 2 && s.attention != nil, "VAE mid block backward needs a forward pass run with training: true")
        let g1 = resnets[1].backward(s.resnets[1], outputGradient: dy).input
        let ga = attention.backward(s.attention!, outputGradient: g1)
        return resnets[0].backward(s.resnets[0], outputGradient: ga).input
    }
}

/// The VAE mid block's attention (diffusers' `Attention` with `residual_connection=True`,
/// `bias=True` and one head of all the channels): single-head self-attention over the H·W pixels,
/// GroupNorm first, then a residual:
///
///     t = tokens(group_norm(x))                 [N, H·W, C]
///     y = x + channels(to_out(softmax(q·kᵀ/√C)·v)),   q, k, v = to_q(t), to_k(t), to_v(t)
///
/// Parameter names: `group_norm`, `to_q`, `to_k`, `to_v`, `to_out.0`.
final class VAEAttention: Module {
    let norm: GroupNorm
    let attention: Attention

    struct Saved {
        var input: Tensor
        var attention: Attention.Saved
    }

    init(channels: Int, groups: Int, rng: inout RNG) {
        norm = GroupNorm(groups: groups, channels: channels, eps: AutoencoderKLConfig.normEps)
        attention = Attention(queryDim: channels, heads: 1, headDim: channels, qkvBias: true, outBias: true, rng: &rng)
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        prefixed("group_norm", norm) + attention.namedParameters
    }

    /// `[N, C, H, W]` → `[N, C, H, W]`.
    func forward(_ x: Tensor, training: Bool) -> (output: Tensor, saved: Saved?) {
        let (height, width) = (x.shape[2], x.shape[3])
        let tokens = norm.forward(x).channelsToTokens()
        var y: Tensor, saved: Saved?
        if training {
            let (o, s) = attention.forwardForTraining(tokens)
            y = o.tokensToChannels(height: height, width: width)
            saved = Saved(input: x, attention: s)
        } else {
            y = attention.forward(tokens).tokensToChannels(height: height, width: width)
        }
        y += x
        return (y, saved)
    }

    /// Adds the parameter gradients; returns ∂L/∂x.
    func backward(_ s: Saved, outputGradient dy: Tensor) -> Tensor {
        let (height, width) = (dy.shape[2], dy.shape[3])
        let dTokens = attention.backward(s.attention, outputGradient: dy.channelsToTokens()).input
        var dx = norm.backward(input: s.input, outputGradient: dTokens.tokensToChannels(height: height, width: width))
        dx += dy
        return dx
    }
}
