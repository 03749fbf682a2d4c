import KilnCore
import KilnNN

/// diffusers' VAE `Decoder`: latent (after `post_quant_conv`) → image.
///
///     h = conv_in(z)                                        [N, C_last, h, w]
///     h = mid_block(h)
///     h = up_blocks(h)        coarsest first, layers + 1 ResNets each   [N, C0, h·f, w·f]
///     y = conv_out(silu(conv_norm_out(h)))                  [N, out, h·f, w·f]
final class VAEDecoder: Module {
    let convIn: Conv2d
    let midBlock: VAEMidBlock
    let upBlocks: [VAEUpBlock]
    let normOut: GroupNorm
    let convOut: Conv2d

    struct Saved {
        var input: Tensor
        var mid: VAEMidBlock.Saved
        var up: [VAEUpBlock.Saved] = []
        var finalHidden: Tensor, normalizedOut: Tensor, activatedOut: Tensor
    }

    init(_ c: AutoencoderKLConfig, rng: inout RNG) {
        let reversed = Array(c.blockOutChannels.reversed())
        convIn = Conv2d(inChannels: c.latentChannels, outChannels: reversed[0], kernelSize: 3, padding: 1, rng: &rng)
        midBlock = VAEMidBlock(channels: reversed[0], groups: c.normGroups, rng: &rng)
        upBlocks = reversed.indices.map { i in
            VAEUpBlock(inChannels: reversed[max(i - 1, 0)], outChannels: reversed[i], layers: c.layersPerBlock + 1, groups: c.normGroups,
                       upsample: i < reversed.count - 1, rng: &rng)
        }
        normOut = GroupNorm(groups: c.normGroups, channels: reversed.last!, eps: AutoencoderKLConfig.normEps)
        convOut = Conv2d(inChannels: reversed.last!, outChannels: c.outChannels, kernelSize: 3, padding: 1, rng: &rng)
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        var out = prefixed("conv_in", convIn) + prefixed("mid_block", midBlock)
        for (i, block) in upBlocks.enumerated() { out += prefixed("up_blocks.\(i)", block) }
        return out + prefixed("conv_norm_out", normOut) + prefixed("conv_out", convOut)
    }

    func forward(_ z: Tensor, training: Bool) -> (output: Tensor, saved: Saved?) {
        let (m, mid) = midBlock.forward(convIn.forward(z), training: training)
        var h = m, up: [VAEUpBlock.Saved] = []
        for block in upBlocks {
            let (u, s) = block.forward(h, training: training)
            h = u
            up.append(s)
        }
        guard training else { return (convOut.forward(normOut.forwardSiLU(h)), nil) }
        let normalized = normOut.forward(h), activated = SiLU().forward(normalized)
        return (convOut.forward(activated), Saved(input: z, mid: mid, up: up, finalHidden: h, normalizedOut: normalized, activatedOut: activated))
    }

    /// Adds the parameter gradients; returns ∂L/∂z.
    func backward(_ s: Saved, outputGradient dy: Tensor) -> Tensor {
        let dActivated = convOut.backward(input: s.activatedOut, outputGradient: dy)
        var g = normOut.backward(input: s.finalHidden, outputGradient: SiLU().backward(input: s.normalizedOut, outputGradient: dActivated))
        for i in upBlocks.indices.reversed() { g = upBlocks[i].backward(s.up[i], outputGradient: g) }
        g = midBlock.backward(s.mid, outputGradient: g)
        return convIn.backward(input: s.input, outputGradient: g)
    }
}
