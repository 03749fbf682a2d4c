import Foundation
import KilnCore
import KilnNN

/// diffusers' `AutoencoderKL`, the Stable Diffusion VAE (the subset in `AutoencoderKLConfig`):
/// maps an image in [−1, 1] to the diagonal Gaussian posterior of its latent, and a latent back to
/// an image.
///
///     moments      = quant_conv(encoder(image))                   [N, 2·latent, H/f, W/f]
///     mean, logvar = split(moments), logvar clamped to [−30, 20]
///     latents      = (mean − shift_factor) · scaling_factor        (the posterior's mode, as pipelines scale it)
///     image        = decoder(post_quant_conv(latents / scaling_factor + shift_factor))
///
/// with f = 2^(levels − 1). Parameters carry diffusers' names (`encoder.down_blocks.0.resnets.0.conv1.weight`,
/// `quant_conv.weight`, `decoder.up_blocks.0.upsamplers.0.conv.weight`), so `init(folder:)` reads
/// `vae/diffusion_pytorch_model.safetensors` as diffusers wrote it.
///
/// `encode` and `decode` are inference; `encodeForTraining` / `encodeBackward` (and the decoder's
/// pair) keep what the backward pass needs, add every parameter's gradient of its half and return
/// the input gradient: latent score distillation pulls ∂L/∂latent back to ∂L/∂image this way.
public final class AutoencoderKL: Module {
    public let config: AutoencoderKLConfig
    let encoder: VAEEncoder
    let quantConv: Conv2d
    let postQuantConv: Conv2d
    let decoder: VAEDecoder

    /// diffusers' `DiagonalGaussianDistribution.logvar` clamp.
    public static let logvarRange: ClosedRange<Float> = -30...20

    /// The encoder's diagonal Gaussian over the (unscaled) latent.
    public struct Posterior: Sendable {
        /// `[N, latent, H/f, W/f]`.
        public var mean: Tensor
        /// log σ², clamped to `logvarRange`; `[N, latent, H/f, W/f]`.
        public var logvar: Tensor

        /// σ = exp(logvar / 2).
        public var std: Tensor { logvar.map { Foundation.exp($0 / 2) } }

        /// mean + σ ⊙ noise (diffusers' `sample()` with the noise given), `noise` shaped like `mean`.
        public func sample(noise: Tensor) -> Tensor {
            noise.checkSameShape(mean, "AutoencoderKL.Posterior.sample (noise)")
            return mean + std * noise
        }
    }

    /// What `encodeBackward` needs from `encodeForTraining`.
    public struct EncoderSaved {
        var encoder: VAEEncoder.Saved
        var encoderOutput: Tensor
        /// The unclamped logvar, for the clamp's gradient.
        var rawLogvar: Tensor
    }

    /// What `decodeBackward` needs from `decodeForTraining`.
    public struct DecoderSaved {
        /// latents / scaling + shift, the input of `post_quant_conv`.
        var unscaledLatents: Tensor
        var decoder: VAEDecoder.Saved
    }

    /// A model with random weights (PyTorch's default initialisation); load real ones with `load(from:)`.
    /// - Precondition: `config.validate` passes.
    public init(_ config: AutoencoderKLConfig, rng: inout RNG) {
        do { try config.validate(source: "AutoencoderKLConfig") } catch { preconditionFailure("\(error)") }
        self.config = config
        encoder = VAEEncoder(config, rng: &rng)
        quantConv = Conv2d(inChannels: 2 * config.latentChannels, outChannels: 2 * config.latentChannels, kernelSize: 1, rng: &rng)
        postQuantConv = Conv2d(inChannels: config.latentChannels, outChannels: config.latentChannels, kernelSize: 1, rng: &rng)
        decoder = VAEDecoder(config, rng: &rng)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        prefixed("encoder", encoder) + prefixed("quant_conv", quantConv) + prefixed("post_quant_conv", postQuantConv) + prefixed("decoder", decoder)
    }

    // MARK: Loading

    /// Loads a `vae/` folder: `config.json` and `diffusion_pytorch_model.safetensors` (or a
    /// variant, or shards: `ComponentWeights` says which files are read).
    /// - Parameter variant: the weights variant to load (`"fp16"`); nil chooses (plain files first).
    public convenience init(folder: URL, variant: String? = nil) throws {
        let configURL = folder.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: configURL.path) else {
            throw PriorConfigError(source: configURL.path, key: nil, problem: "cannot be read",
                                   fix: "point Kiln at a diffusers pipeline folder with vae/config.json")
        }
        var rng = RNG(seed: 0)
        self.init(try AutoencoderKLConfig(json: data, source: configURL.path), rng: &rng)
        try load(from: ComponentWeights(folder: folder, library: .diffusers, variant: variant))
    }

    /// Replaces every parameter with the tensor of the same name (F32, F16 or BF16).
    /// - Throws: `SafeTensorsError` for a missing tensor or a shape mismatch; `PriorConfigError`
    ///   when the files hold tensors this model does not have (its config.json describes a
    ///   different network).
    public func load(from weights: ComponentWeights) throws {
        try loadDiffusersWeights(from: weights, model: "VAE")
    }

    /// `load(from:)` for one safetensors file.
    public func load(from file: SafeTensorsFile) throws {
        try load(from: ComponentWeights(file))
    }

    // MARK: Encode

    /// The latent posterior of a batch of images.
    /// - Parameter image: `[N, inChannels, H, W]` in [−1, 1], H and W divisible by `config.downsamplingFactor`.
    public func encode(_ image: Tensor) -> Posterior {
        checkImage(image, "AutoencoderKL.encode")
        return posterior(quantConv.forward(encoder.forward(image, training: false).output)).posterior
    }

    /// `encode`, also returning what `encodeBackward` needs.
    public func encodeForTraining(_ image: Tensor) -> (posterior: Posterior, saved: EncoderSaved) {
        checkImage(image, "AutoencoderKL.encodeForTraining")
        let (h, saved) = encoder.forward(image, training: true)
        let (p, raw) = posterior(quantConv.forward(h))
        return (p, EncoderSaved(encoder: saved!, encoderOutput: h, rawLogvar: raw))
    }

    /// Adds ∂L/∂θ into the encoder's and `quant_conv`'s parameter gradients and returns ∂L/∂image
    /// `[N, inChannels, H, W]`, given ∂L/∂mean (and optionally ∂L/∂logvar, zero where the clamp
    /// was active) `[N, latent, H/f, W/f]`. For ∂L/∂latents of the scaled latents, pass
    /// `scaling_factor · ∂L/∂latents` as the mean's gradient (`latentsBackward`).
    public func encodeBackward(_ s: EncoderSaved, meanGradient: Tensor, logvarGradient: Tensor? = nil) -> Tensor {
        meanGradient.checkSameShape(s.rawLogvar, "AutoencoderKL.encodeBackward (mean gradient)")
        var dLogvar = Tensor.zeros(like: s.rawLogvar)
        if let logvarGradient {
            logvarGradient.checkSameShape(s.rawLogvar, "AutoencoderKL.encodeBackward (logvar gradient)")
            let range = AutoencoderKL.logvarRange
            dLogvar = Tensor(shape: s.rawLogvar.shape, storage: zip(s.rawLogvar.storage, logvarGradient.storage).map { range.contains($0) ? $1 : 0 })
        }
        let dMoments = Tensor.concatenated([meanGradient, dLogvar], axis: 1)
        return encoder.backward(s.encoder, outputGradient: quantConv.backward(input: s.encoderOutput, outputGradient: dMoments))
    }

    /// The posterior's mode, scaled as diffusers' pipelines scale it: (mean − shift) · scaling.
    public func latents(of posterior: Posterior) -> Tensor {
        let (scale, shift) = (config.scalingFactor, config.shiftFactor)
        return posterior.mean.map { ($0 - shift) * scale }
    }

    /// ∂L/∂mean from ∂L/∂latents of `latents(of:)`: scaling · ∂L/∂latents.
    public func latentsBackward(latentGradient: Tensor) -> Tensor { latentGradient * config.scalingFactor }

    /// Splits the moments `[N, 2·latent, h, w]` into the posterior; also returns the unclamped logvar.
    func posterior(_ moments: Tensor) -> (posterior: Posterior, rawLogvar: Tensor) {
        let parts = moments.split(axis: 1, sizes: [config.latentChannels, config.latentChannels])
        let range = AutoencoderKL.logvarRange
        return (Posterior(mean: parts[0], logvar: parts[1].map { min(max($0, range.lowerBound), range.upperBound) }), parts[1])
    }

    func checkImage(_ image: Tensor, _ operation: String) {
        image.checkRank(4, "[N, \(config.inChannels), H, W]", operation)
        image.checkShape([nil, config.inChannels, nil, nil], operation)
        let f = config.downsamplingFactor
        precondition(image.shape[2] % f == 0 && image.shape[3] % f == 0,
                     "\(operation): image size \(image.shape[2])×\(image.shape[3]) must be divisible by \(f)")
    }

    // MARK: Decode

    /// Images `[N, outChannels, h·f, w·f]` (nominally in [−1, 1]) from scaled latents
    /// `[N, latent, h, w]`: decoder(post_quant_conv(latents / scaling + shift)).
    public func decode(_ latents: Tensor) -> Tensor {
        checkLatents(latents, "AutoencoderKL.decode")
        return decoder.forward(postQuantConv.forward(unscaled(latents)), training: false).output
    }

    /// `decode`, also returning what `decodeBackward` needs.
    public func decodeForTraining(_ latents: Tensor) -> (image: Tensor, saved: DecoderSaved) {
        checkLatents(latents, "AutoencoderKL.decodeForTraining")
        let u = unscaled(latents)
        let (image, saved) = decoder.forward(postQuantConv.forward(u), training: true)
        return (image, DecoderSaved(unscaledLatents: u, decoder: saved!))
    }

    /// Adds ∂L/∂θ into the decoder's and `post_quant_conv`'s parameter gradients and returns
    /// ∂L/∂latents `[N, latent, h, w]` of the scaled latents, given ∂L/∂image.
    public func decodeBackward(_ s: DecoderSaved, imageGradient: Tensor) -> Tensor {
        let dz = decoder.backward(s.decoder, outputGradient: imageGradient)
        return postQuantConv.backward(input: s.unscaledLatents, outputGradient: dz) * (1 / config.scalingFactor)
    }

    /// latents / scaling + shift.
    func unscaled(_ latents: Tensor) -> Tensor {
        let (scale, shift) = (config.scalingFactor, config.shiftFactor)
        return latents.map { $0 / scale + shift }
    }

    func checkLatents(_ latents: Tensor, _ operation: String) {
        latents.checkRank(4, "[N, \(config.latentChannels), h, w]", operation)
        latents.checkShape([nil, config.latentChannels, nil, nil], operation)
    }
}
