import KilnCore
import KilnNN

/// diffusers' VAE `Encoder` (with `double_z`): image → the moments of the latent posterior, before
/// `quant_conv`.
///
///     h = conv_in(x)                                        [N, C0, H, W]
///     h = down_blocks(h)                                    [N, C_last, H/f, W/f]
///     h = mid_block(h)
///     y = conv_out(silu(conv_norm_out(h)))                  [N, 2·latent, H/f, W/f]
final class VAEEncoder: Module {
    let convIn: Conv2d
    let downBlocks: [VAEDownBlock]
    let midBlock: VAEMidBlock
    let normOut: GroupNorm
    let convOut: Conv2d

    struct Saved {
        var input: Tensor
        var down: [VAEDownBlock.Saved] = []
        var mid: VAEMidBlock.Saved
        var finalHidden: Tensor, normalizedOut: Tensor, activatedOut: Tensor
    }

    init(_ c: AutoencoderKLConfig, rng: inout RNG) {
        let widths = c.blockOutChannels
        convIn = Conv2d(inChannels: c.inChannels, outChannels: widths[0], kernelSize: 3, padding: 1, rng: &rng)
        downBlocks = widths.indices.map { i in
            VAEDownBlock(inChannels: widths[max(i - 1, 0)], outChannels: widths[i], layers: c.layersPerBlock, groups: c.normGroups,
                         downsample: i < widths.count - 1, rng: &rng)
        }
        midBlock = VAEMidBlock(channels: widths.last!, groups: c.normGroups, rng: &rng)
        normOut = GroupNorm(groups: c.normGroups, channels: widths.last!, eps: AutoencoderKLConfig.normEps)
        convOut = Conv2d(inChannels: widths.last!, outChannels: 2 * c.latentChannels, kernelSize: 3, padding: 1, rng: &rng)
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        var out = prefixed("conv_in", convIn)
        for (i, block) in downBlocks.enumerated() { out += prefixed("down_blocks.\(i)", block) }
        return out + prefixed("mid_block", midBlock) + prefixed("conv_norm_out", normOut) + prefixed("conv_out", convOut)
    }

    func forward(_ x: Tensor, training: Bool) -> (output: Tensor, saved: Saved?) {
        var h = convIn.forward(x)
        var down: [VAEDownBlock.Saved] = []
        for block in downBlocks {
            let (d, s) = block.forward(h, training: training)
            h = d
            down.append(s)
        }
        let (m, mid) = midBlock.forward(h, training: training)
        guard training else { return (convOut.forward(normOut.forwardSiLU(m)), nil) }
        let normalized = normOut.forward(m), activated = SiLU().forward(normalized)
        return (convOut.forward(activated), Saved(input: x, down: down, mid: mid, finalHidden: m, normalizedOut: normalized, activatedOut: activated))
    }

    /// Adds the parameter gradients; returns ∂L/∂x.
    func backward(_ s: Saved, outputGradient dy: Tensor) -> Tensor {
        let dActivated = convOut.backward(input: s.activatedOut, outputGradient: dy)
        var g = normOut.backward(input: s.finalHidden, outputGradient: SiLU().backward(input: s.normalizedOut, outputGradient: dActivated))
        g = midBlock.backward(s.mid, outputGradient: g)
        for i in downBlocks.indices.reversed() { g = downBlocks[i].backward(s.down[i], outputGradient: g) }
        return convIn.backward(input: s.input, outputGradient: g)
    }
}
