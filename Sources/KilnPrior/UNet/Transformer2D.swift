import KilnCore
import KilnNN

/// diffusers' `BasicTransformerBlock` (layer-norm variant, GEGLU feed-forward):
///
///     h = x + attn1(norm1(x))                  self-attention
///     h = h + attn2(norm2(h), context)         cross-attention on the text states
///     y = h + ff(norm3(h))                     ff = Linear(4D → D) ∘ GEGLU(D → 4D)
///
/// Tokens `[N, L, D]`, context `[N, T, Dc]`. Parameter names: `norm1…3`, `attn1`, `attn2`,
/// `ff.net.0.proj`, `ff.net.2`.
final class BasicTransformerBlock: Module {
    let norm1: LayerNorm, attn1: Attention, norm2: LayerNorm, attn2: Attention, norm3: LayerNorm
    let feedForwardIn: GEGLU, feedForwardOut: Linear

    /// What `backward` needs. The attention records hold their inputs; they are nil after an
    /// inference forward (which does not keep attention probabilities).
    struct Saved {
        var input: Tensor, afterSelf: Tensor, afterCross: Tensor
        var selfAttention: Attention.Saved?, crossAttention: Attention.Saved?
        var feedForward: GEGLU.Saved, gated: Tensor
    }

    init(dim: Int, heads: Int, headDim: Int, contextDim: Int, rng: inout RNG) {
        norm1 = LayerNorm(features: dim)
        attn1 = Attention(queryDim: dim, heads: heads, headDim: headDim, rng: &rng)
        norm2 = LayerNorm(features: dim)
        attn2 = Attention(queryDim: dim, contextDim: contextDim, heads: heads, headDim: headDim, rng: &rng)
        norm3 = LayerNorm(features: dim)
        feedForwardIn = GEGLU(inFeatures: dim, outFeatures: 4 * dim, rng: &rng)
        feedForwardOut = Linear(inFeatures: 4 * dim, outFeatures: dim, rng: &rng)
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        prefixed("norm1", norm1) + prefixed("attn1", attn1) + prefixed("norm2", norm2) + prefixed("attn2", attn2)
            + prefixed("norm3", norm3) + prefixed("ff.net.0", feedForwardIn) + prefixed("ff.net.2", feedForwardOut)
    }

    func forward(_ x: Tensor, context: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        var selfSaved: Attention.Saved?, crossSaved: Attention.Saved?
        var h = x
        if training {
            let (a, s) = attn1.forwardForTraining(norm1.forward(x))
            h += a
            selfSaved = s
        } else {
            h += attn1.forward(norm1.forward(x))
        }
        let afterSelf = h
        if training {
            let (a, s) = attn2.forwardForTraining(norm2.forward(afterSelf), context: context)
            h += a
            crossSaved = s
        } else {
            h += attn2.forward(norm2.forward(afterSelf), context: context)
        }
        let afterCross = h
        let (gated, ff) = feedForwardIn.forwardForTraining(norm3.forward(afterCross))
        h += feedForwardOut.forward(gated)
        return (h, Saved(input: x, afterSelf: afterSelf, afterCross: afterCross, selfAttention: selfSaved,
                         crossAttention: crossSaved, feedForward: ff, gated: gated))
    }

    /// Adds the parameter gradients; returns ∂L/∂x and ∂L/∂context.
    func backward(_ s: Saved, outputGradient dy: Tensor) -> (input: Tensor, context: Tensor) {
        guard let selfSaved = s.selfAttention, let crossSaved = s.crossAttention else {
            preconditionFailure("BasicTransformerBlock.backward needs a forward pass run with training: true")
        }
        var dh = dy
        let dGated = feedForwardOut.backward(input: s.gated, outputGradient: dy)
        dh += norm3.backward(input: s.afterCross, outputGradient: feedForwardIn.backward(s.feedForward, outputGradient: dGated))
        let cross = attn2.backward(crossSaved, outputGradient: dh)
        dh += norm2.backward(input: s.afterSelf, outputGradient: cross.input)
        let selfGradients = attn1.backward(selfSaved, outputGradient: dh)
        dh += norm1.backward(input: s.input, outputGradient: selfGradients.input)
        return (dh, cross.context!)
    }
}

/// diffusers' `Transformer2DModel` on continuous inputs:
///
///     h = proj_in(norm(x))              GroupNorm (ε = 1e-6), 1×1 conv (or Linear on tokens)
///     h = blocks(tokens(h), context)    BasicTransformerBlocks on [N, H·W, D]
///     y = proj_out(h) + x
///
/// `x` `[N, C, H, W]`, context `[N, T, Dc]` → `[N, C, H, W]`. Parameter names: `norm`, `proj_in`,
/// `transformer_blocks.i`, `proj_out`.
final class Transformer2D: Module {
    let norm: GroupNorm
    /// 1×1 convolutions (`use_linear_projection = false`) or token-wise Linears.
    enum Projection {
        case convolution(Conv2d)
        case linear(Linear)
    }
    let projectIn: Projection, projectOut: Projection
    let blocks: [BasicTransformerBlock]

    struct Saved {
        var input: Tensor, normalized: Tensor
        /// The projection's input on the linear path (tokens), the block output on the convolution path (NCHW).
        var projectedOutInput: Tensor
        var blocks: [BasicTransformerBlock.Saved]
    }

    init(channels: Int, heads: Int, headDim: Int, contextDim: Int, layers: Int, groups: Int, linearProjection: Bool, rng: inout RNG) {
        let inner = heads * headDim
        norm = GroupNorm(groups: groups, channels: channels, eps: 1e-6)
        if linearProjection {
            projectIn = .linear(Linear(inFeatures: channels, outFeatures: inner, rng: &rng))
        } else {
            projectIn = .convolution(Conv2d(inChannels: channels, outChannels: inner, kernelSize: 1, rng: &rng))
        }
        blocks = (0..<layers).map { _ in BasicTransformerBlock(dim: inner, heads: heads, headDim: headDim, contextDim: contextDim, rng: &rng) }
        if linearProjection {
            projectOut = .linear(Linear(inFeatures: inner, outFeatures: channels, rng: &rng))
        } else {
            projectOut = .convolution(Conv2d(inChannels: inner, outChannels: channels, kernelSize: 1, rng: &rng))
        }
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        func named(_ prefix: String, _ p: Projection) -> [(name: String, parameter: Parameter)] {
            switch p {
            case .convolution(let c): return prefixed(prefix, c)
            case .linear(let l): return prefixed(prefix, l)
            }
        }
        var out = prefixed("norm", norm) + named("proj_in", projectIn)
        for (i, block) in blocks.enumerated() { out += prefixed("transformer_blocks.\(i)", block) }
        return out + named("proj_out", projectOut)
    }

    func forward(_ x: Tensor, context: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        let (height, width) = (x.shape[2], x.shape[3])
        let normalized = norm.forward(x)
        var tokens: Tensor
        switch projectIn {
        case .convolution(let c): tokens = c.forward(normalized).channelsToTokens()
        case .linear(let l): tokens = l.forward(normalized.channelsToTokens())
        }
        var saved: [BasicTransformerBlock.Saved] = []
        for block in blocks {
            let (next, s) = block.forward(tokens, context: context, training: training)
            tokens = next
            if training { saved.append(s) }
        }
        var y: Tensor, outInput: Tensor
        switch projectOut {
        case .convolution(let c):
            outInput = tokens.tokensToChannels(height: height, width: width)
            y = c.forward(outInput)
        case .linear(let l):
            outInput = tokens
            y = l.forward(tokens).tokensToChannels(height: height, width: width)
        }
        y += x
        return (y, Saved(input: x, normalized: normalized, projectedOutInput: outInput, blocks: saved))
    }

    /// Adds the parameter gradients; returns ∂L/∂x and ∂L/∂context.
    func backward(_ s: Saved, outputGradient dy: Tensor) -> (input: Tensor, context: Tensor) {
        precondition(s.blocks.count == blocks.count, "Transformer2D.backward needs a forward pass run with training: true")
        let (height, width) = (dy.shape[2], dy.shape[3])
        var dTokens: Tensor
        switch projectOut {
        case .convolution(let c): dTokens = c.backward(input: s.projectedOutInput, outputGradient: dy).channelsToTokens()
        case .linear(let l): dTokens = l.backward(input: s.projectedOutInput, outputGradient: dy.channelsToTokens())
        }
        var dContext: Tensor?
        for (block, saved) in zip(blocks, s.blocks).reversed() {
            let g = block.backward(saved, outputGradient: dTokens)
            dTokens = g.input
            if dContext == nil { dContext = g.context } else { dContext! += g.context }
        }
        let dNormalized: Tensor
        switch projectIn {
        case .convolution(let c): dNormalized = c.backward(input: s.normalized, outputGradient: dTokens.tokensToChannels(height: height, width: width))
        case .linear(let l): dNormalized = l.backward(input: s.normalized.channelsToTokens(), outputGradient: dTokens).tokensToChannels(height: height, width: width)
        }
        var dx = norm.backward(input: s.input, outputGradient: dNormalized)
        dx += dy
        return (dx, dContext!)
    }
}
