import KilnCore
import KilnNN

/// diffusers' `ResnetBlock2D` with the additive time embedding (`resnet_time_scale_shift="default"`):
///
///     h = conv1(silu(norm1(x))) + time_emb_proj(silu(temb))[:, :, None, None]
///     h = conv2(silu(norm2(h)))
///     y = (shortcut(x) + h) / outputScale       shortcut: 1×1 conv when channels change, else identity
///
/// `x` `[N, Cin, H, W]`, `temb` `[N, T]` → `[N, Cout, H, W]`. Parameter names: `norm1`, `conv1`,
/// `time_emb_proj`, `norm2`, `conv2`, `conv_shortcut`. With `timeChannels` nil (diffusers'
/// `temb_channels=None`, the VAE's blocks) there is no `time_emb_proj` and no time term.
final class ResnetBlock2D: Module {
    let norm1: GroupNorm, conv1: Conv2d, timeProjection: Linear?, norm2: GroupNorm, conv2: Conv2d
    let shortcut: Conv2d?
    let outputScale: Float

    /// What `backward` needs.
    struct Saved {
        var input: Tensor, normalized1: Tensor, activated1: Tensor
        var timeEmbedding: Tensor?, activatedTime: Tensor?
        var hidden: Tensor, normalized2: Tensor, activated2: Tensor
    }

    init(inChannels: Int, outChannels: Int, timeChannels: Int?, groups: Int, eps: Float, outputScale: Float = 1, rng: inout RNG) {
        norm1 = GroupNorm(groups: groups, channels: inChannels, eps: eps)
        conv1 = Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 3, padding: 1, rng: &rng)
        timeProjection = timeChannels.map { Linear(inFeatures: $0, outFeatures: outChannels, rng: &rng) }
        norm2 = GroupNorm(groups: groups, channels: outChannels, eps: eps)
        conv2 = Conv2d(inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1, rng: &rng)
        shortcut = inChannels == outChannels ? nil : Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 1, rng: &rng)
        self.outputScale = outputScale
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        prefixed("norm1", norm1) + prefixed("conv1", conv1) + (timeProjection.map { prefixed("time_emb_proj", $0) } ?? [])
            + prefixed("norm2", norm2) + prefixed("conv2", conv2) + (shortcut.map { prefixed("conv_shortcut", $0) } ?? [])
    }

    /// The block's output, and with `training` what `backward` needs. Inference fuses each
    /// GroupNorm with its SiLU (`GroupNorm.forwardSiLU`, identical values).
    /// - Precondition: `temb` is given exactly when the block has a time projection.
    func forward(_ x: Tensor, timeEmbedding temb: Tensor?, training: Bool) -> (output: Tensor, saved: Saved?) {
        precondition((temb == nil) == (timeProjection == nil),
                     "ResnetBlock2D.forward: a time embedding is needed exactly when the block has time_emb_proj")
        let at = temb.map { SiLU().forward($0) }
        guard training else {
            var h = conv1.forward(norm1.forwardSiLU(x))
            if let timeProjection, let at { h.addPerChannel(timeProjection.forward(at)) }
            return (finish(conv2.forward(norm2.forwardSiLU(h)), x), nil)
        }
        let n1 = norm1.forward(x), a1 = SiLU().forward(n1)
        var h = conv1.forward(a1)
        if let timeProjection, let at { h.addPerChannel(timeProjection.forward(at)) }
        let n2 = norm2.forward(h), a2 = SiLU().forward(n2)
        return (finish(conv2.forward(a2), x), Saved(input: x, normalized1: n1, activated1: a1, timeEmbedding: temb, activatedTime: at,
                                                   hidden: h, normalized2: n2, activated2: a2))
    }

    /// (shortcut(x) + h) / outputScale.
    private func finish(_ h: Tensor, _ x: Tensor) -> Tensor {
        var y = h
        y += shortcut?.forward(x) ?? x
        if outputScale != 1 { y.scale(by: 1 / outputScale) }
        return y
    }

    /// Adds the parameter gradients; returns ∂L/∂x and ∂L/∂temb (nil without a time projection).
    func backward(_ s: Saved, outputGradient dy: Tensor) -> (input: Tensor, timeEmbedding: Tensor?) {
        let dOut = outputScale == 1 ? dy : dy * (1 / outputScale)
        let da2 = conv2.backward(input: s.activated2, outputGradient: dOut)
        let dn2 = SiLU().backward(input: s.normalized2, outputGradient: da2)
        let dh = norm2.backward(input: s.hidden, outputGradient: dn2)
        var dTime: Tensor?
        if let timeProjection, let temb = s.timeEmbedding, let at = s.activatedTime {
            let dat = timeProjection.backward(input: at, outputGradient: dh.sumPerChannel())
            dTime = SiLU().backward(input: temb, outputGradient: dat)
        }
        let da1 = conv1.backward(input: s.activated1, outputGradient: dh)
        let dn1 = SiLU().backward(input: s.normalized1, outputGradient: da1)
        var dx = norm1.backward(input: s.input, outputGradient: dn1)
        dx += shortcut?.backward(input: s.input, outputGradient: dOut) ?? dOut
        return (dx, dTime)
    }
}
