import KilnCore
import KilnNN

/// Gradients a UNet block returns: its input, the time embedding, the text states (nil when the
/// block has no cross-attention).
struct BlockGradients {
    var input: Tensor
    var timeEmbedding: Tensor
    var context: Tensor?

    static func accumulate(_ total: inout Tensor?, _ term: Tensor?) {
        guard let term else { return }
        if total == nil { total = term } else { total! += term }
    }
}

/// diffusers' `DownBlock2D` (no attentions) and `CrossAttnDownBlock2D`: layers of ResNet (+
/// Transformer2D), each output kept as a skip for the up path, then an optional stride-2 3×3
/// convolution (`downsamplers.0.conv`) whose output is a skip too.
final class UNetDownBlock: Module {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2D]
    let downsampler: Conv2d?

    struct Saved {
        var resnets: [ResnetBlock2D.Saved] = []
        var attentions: [Transformer2D.Saved] = []
        var downsamplerInput: Tensor?
    }

    init(_ c: UNetConfig, level i: Int, inChannels: Int, rng: inout RNG) {
        let out = c.blockOutChannels[i]
        resnets = (0..<c.layersPerBlock[i]).map { j in
            ResnetBlock2D(inChannels: j == 0 ? inChannels : out, outChannels: out, timeChannels: c.timeEmbeddingDim,
                          groups: c.normGroups, eps: c.normEps, rng: &rng)
        }
        attentions = c.downBlocks[i] == .down ? [] : (0..<c.layersPerBlock[i]).map { _ in
            Transformer2D(channels: out, heads: c.heads[i], headDim: c.headDim(i), contextDim: c.crossAttentionDim[i],
                          layers: c.transformerLayersPerBlock[i], groups: c.normGroups, linearProjection: c.useLinearProjection, rng: &rng)
        }
        downsampler = i == c.levels - 1 ? nil : Conv2d(inChannels: out, outChannels: out, kernelSize: 3, stride: 2, padding: 1, rng: &rng)
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        var out: [(name: String, parameter: Parameter)] = []
        for (j, a) in attentions.enumerated() { out += prefixed("attentions.\(j)", a) }
        for (j, r) in resnets.enumerated() { out += prefixed("resnets.\(j)", r) }
        return out + (downsampler.map { prefixed("downsamplers.0.conv", $0) } ?? [])
    }

    /// - Returns: the block's output states (skips), the last being the block's output.
    func forward(_ x: Tensor, timeEmbedding emb: Tensor, context: Tensor?, training: Bool) -> (states: [Tensor], saved: Saved) {
        var saved = Saved(), states: [Tensor] = [], h = x
        for (j, resnet) in resnets.enumerated() {
            let (r, rs) = resnet.forward(h, timeEmbedding: emb, training: training)
            h = r
            if let rs { saved.resnets.append(rs) }
            if !attentions.isEmpty {
                let (a, s) = attentions[j].forward(h, context: context!, training: training)
                h = a
                if training { saved.attentions.append(s) }
            }
            states.append(h)
        }
        if let downsampler {
            if training { saved.downsamplerInput = h }
            states.append(downsampler.forward(h))
        }
        return (states, saved)
    }

    /// `stateGradients`: ∂L/∂ each output state (the last one including the path through the next block).
    func backward(_ s: Saved, stateGradients: [Tensor]) -> BlockGradients {
        precondition(s.resnets.count == resnets.count, "UNet down block backward needs a forward pass run with training: true")
        var states = stateGradients
        var g: Tensor
        if let downsampler {
            let down = states.removeLast()
            g = downsampler.backward(input: s.downsamplerInput!, outputGradient: down)
        } else {
            g = Tensor.zeros(like: states.last!)
        }
        var dEmb: Tensor?, dContext: Tensor?
        for j in resnets.indices.reversed() {
            g += states[j]
            if !attentions.isEmpty {
                let a = attentions[j].backward(s.attentions[j], outputGradient: g)
                g = a.input
                BlockGradients.accumulate(&dContext, a.context)
            }
            let r = resnets[j].backward(s.resnets[j], outputGradient: g)
            g = r.input
            BlockGradients.accumulate(&dEmb, r.timeEmbedding)
        }
        return BlockGradients(input: g, timeEmbedding: dEmb!, context: dContext)
    }
}

/// diffusers' `UNetMidBlock2DCrossAttn`: ResNet, then (Transformer2D, ResNet) per layer.
final class UNetMidBlock: Module {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2D]

    struct Saved {
        var resnets: [ResnetBlock2D.Saved] = []
        var attentions: [Transformer2D.Saved] = []
    }

    init(_ c: UNetConfig, rng: inout RNG) {
        let i = c.levels - 1, channels = c.blockOutChannels[i]
        resnets = (0..<2).map { _ in
            ResnetBlock2D(inChannels: channels, outChannels: channels, timeChannels: c.timeEmbeddingDim, groups: c.normGroups,
                          eps: c.normEps, outputScale: c.midBlockScaleFactor, rng: &rng)
        }
        attentions = [Transformer2D(channels: channels, heads: c.heads[i], headDim: c.headDim(i), contextDim: c.crossAttentionDim[i],
                                    layers: c.transformerLayersPerBlock[i], groups: c.normGroups, linearProjection: c.useLinearProjection,
                                    rng: &rng)]
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        var out: [(name: String, parameter: Parameter)] = []
        for (j, a) in attentions.enumerated() { out += prefixed("attentions.\(j)", a) }
        for (j, r) in resnets.enumerated() { out += prefixed("resnets.\(j)", r) }
        return out
    }

    func forward(_ x: Tensor, timeEmbedding emb: Tensor, context: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
        var saved = Saved()
        var (h, r0) = resnets[0].forward(x, timeEmbedding: emb, training: training)
        if let r0 { saved.resnets.append(r0) }
        for (attention, resnet) in zip(attentions, resnets.dropFirst()) {
            let (a, s) = attention.forward(h, context: context, training: training)
            let (r, rs) = resnet.forward(a, timeEmbedding: emb, training: training)
            h = r
            if let rs { saved.attentions.append(s); saved.resnets.append(rs) }
        }
        return (h, saved)
    }

    func backward(_ s: Saved, outputGradient dy: Tensor) -> BlockGradients {
        precondition(s.resnets.count == resnets.count, "UNet mid block backward needs a forward pass run with training: true")
        var g = dy
        var dEmb: Tensor?, dContext: Tensor?
        for j in attentions.indices.reversed() {
            let r = resnets[j + 1].backward(s.resnets[j + 1], outputGradient: g)
            BlockGradients.accumulate(&dEmb, r.timeEmbedding)
            let a = attentions[j].backward(s.attentions[j], outputGradient: r.input)
            BlockGradients.accumulate(&dContext, a.context)
            g = a.input
        }
        let r = resnets[0].backward(s.resnets[0], outputGradient: g)
        BlockGradients.accumulate(&dEmb, r.timeEmbedding)
        return BlockGradients(input: r.input, timeEmbedding: dEmb!, context: dContext)
    }
}

/// diffusers' `UpBlock2D` and `CrossAttnUpBlock2D`: per layer, concatenate the next skip (the most
/// recent first) along the channels, then ResNet (+ Transformer2D); then an optional nearest ×2
/// upsampling followed by a 3×3 convolution (`upsamplers.0.conv`).
final class UNetUpBlock: Module {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2D]
    let upsampler: Conv2d?

    struct Saved {
        var resnets: [ResnetBlock2D.Saved] = []
        var attentions: [Transformer2D.Saved] = []
        /// Channels of the running state before each concatenation.
        var runningChannels: [Int] = []
        var upsamplerInput: Tensor?
    }

    /// Up block `i` (0 = coarsest) of a UNet with config `c`; `previousChannels` is the width coming in.
    init(_ c: UNetConfig, index i: Int, previousChannels: Int, rng: inout RNG) {
        let level = c.levels - 1 - i
        let out = c.blockOutChannels[level], skipIn = c.blockOutChannels[max(level - 1, 0)]
        let layers = c.layersPerBlock[level] + 1
        resnets = (0..<layers).map { j in
            let skip = j == layers - 1 ? skipIn : out
            return ResnetBlock2D(inChannels: (j == 0 ? previousChannels : out) + skip, outChannels: out, timeChannels: c.timeEmbeddingDim,
                                 groups: c.normGroups, eps: c.normEps, rng: &rng)
        }
        attentions = c.upBlocks[i] == .up ? [] : (0..<layers).map { _ in
            Transformer2D(channels: out, heads: c.heads[level], headDim: c.headDim(level), contextDim: c.crossAttentionDim[level],
                          layers: c.transformerLayersPerBlock[level], groups: c.normGroups, linearProjection: c.useLinearProjection, rng: &rng)
        }
        upsampler = level == 0 ? nil : Conv2d(inChannels: out, outChannels: out, kernelSize: 3, padding: 1, rng: &rng)
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        var out: [(name: String, parameter: Parameter)] = []
        for (j, a) in attentions.enumerated() { out += prefixed("attentions.\(j)", a) }
        for (j, r) in resnets.enumerated() { out += prefixed("resnets.\(j)", r) }
        return out + (upsampler.map { prefixed("upsamplers.0.conv", $0) } ?? [])
    }

    /// `skips` in the order they are consumed (most recent first), one per ResNet.
    func forward(_ x: Tensor, skips: [Tensor], timeEmbedding emb: Tensor, context: Tensor?, training: Bool) -> (output: Tensor, saved: Saved) {
        precondition(skips.count == resnets.count, "UNet up block: \(skips.count) skips for \(resnets.count) ResNets")
        var saved = Saved(), h = x
        for (j, resnet) in resnets.enumerated() {
            if training { saved.runningChannels.append(h.shape[1]) }
            let (r, rs) = resnet.forward(Tensor.concatenated([h, skips[j]], axis: 1), timeEmbedding: emb, training: training)
            h = r
            if let rs { saved.resnets.append(rs) }
            if !attentions.isEmpty {
                let (a, s) = attentions[j].forward(h, context: context!, training: training)
                h = a
                if training { saved.attentions.append(s) }
            }
        }
        if let upsampler {
            let up = UpsampleNearest2d(scale: 2).forward(h)
            if training { saved.upsamplerInput = up }
            h = upsampler.forward(up)
        }
        return (h, saved)
    }

    /// - Returns: the block's gradients and ∂L/∂ each skip, in `forward`'s order.
    func backward(_ s: Saved, outputGradient dy: Tensor) -> (BlockGradients, skips: [Tensor]) {
        precondition(s.resnets.count == resnets.count, "UNet up block backward needs a forward pass run with training: true")
        var g = dy
        if let upsampler {
            g = UpsampleNearest2d(scale: 2).backward(outputGradient: upsampler.backward(input: s.upsamplerInput!, outputGradient: g))
        }
        var dEmb: Tensor?, dContext: Tensor?
        var dSkips = [Tensor?](repeating: nil, count: resnets.count)
        for j in resnets.indices.reversed() {
            if !attentions.isEmpty {
                let a = attentions[j].backward(s.attentions[j], outputGradient: g)
                g = a.input
                BlockGradients.accumulate(&dContext, a.context)
            }
            let r = resnets[j].backward(s.resnets[j], outputGradient: g)
            BlockGradients.accumulate(&dEmb, r.timeEmbedding)
            let running = s.runningChannels[j]
            let parts = r.input.split(axis: 1, sizes: [running, r.input.shape[1] - running])
            g = parts[0]
            dSkips[j] = parts[1]
        }
        return (BlockGradients(input: g, timeEmbedding: dEmb!, context: dContext), dSkips.map { $0! })
    }
}
