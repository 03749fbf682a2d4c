import Foundation
import KilnCore
import KilnNN

/// A latent diffusion pipeline (Stable Diffusion's layout: VAE + UNet) as a `DiffusionPrior`, bound
/// to one prompt.
///
/// Its samples x are the VAE's scaled latents `[B, C, h, w]` of the renders: each render is averaged
/// down to the VAE's image size S = h·f (`PriorImage`, when rendered larger), taken to [−1, 1] and
/// encoded to the posterior's mode, (mean − shift)·scaling, as threestudio's and DreamGaussian's
/// Stable Diffusion guidance do. Score distillation's gradient in latent space goes back to the
/// renders through the encoder's vector–Jacobian product (`encodeBackward`); reward models see the
/// VAE's decoding (`decode`), and their gradient comes back through the decoder's.
///
/// Without camera conditioning (Stable Diffusion) each view is named in the prompt
/// (`ViewDirection`: "…, front view").
public final class LatentDiffusionPrior: DiffusionPrior {
    public let pipeline: PriorPipeline
    public let vae: AutoencoderKL
    public let prompt: String
    public let negativePrompt: String
    public let backgrounds: [SIMD3<Float>]
    let denoiser: GuidedDenoiser
    /// The last `encode`'s renders and what the encoder's backward pass needs, so that
    /// `encodeBackward` on the same renders does not run the encoder again.
    private var lastEncoding: (renders: [[Float]], size: Int, saved: AutoencoderKL.EncoderSaved)?

    /// - Parameters:
    ///   - backgrounds: the background colours of distillation views (white, as threestudio's
    ///     Stable Diffusion runs use, by default).
    ///   - viewPrompts: for a pipeline without camera conditioning, condition each view on the
    ///     prompt with its `ViewDirection`.
    /// - Throws: `SchedulerError` if the scheduler config does not give a schedule.
    public init(pipeline: PriorPipeline, prompt: String, negativePrompt: String = "", backgrounds: [SIMD3<Float>] = [SIMD3(1, 1, 1)],
                viewPrompts: Bool = true) throws {
        guard let vae = pipeline.vae else { preconditionFailure("LatentDiffusionPrior: the pipeline has no VAE; use PixelDiffusionPrior") }
        precondition(!backgrounds.isEmpty, "LatentDiffusionPrior: give at least one background colour")
        precondition(vae.config.inChannels == 3 && vae.config.outChannels == 3, "LatentDiffusionPrior: the VAE must map RGB images")
        self.pipeline = pipeline
        self.vae = vae
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.backgrounds = backgrounds
        denoiser = try GuidedDenoiser(pipeline: pipeline, prompt: prompt, negativePrompt: negativePrompt, viewPrompts: viewPrompts)
    }

    public var schedule: NoiseSchedule { denoiser.schedule }

    /// The side of the images the VAE decodes the UNet's samples to (512 for Stable Diffusion 1.5).
    public var imageSize: Int { pipeline.imageSize.width }

    /// The latents' side and channels.
    var latentSize: Int { pipeline.sampleSize.width }
    var latentChannels: Int { vae.config.latentChannels }

    /// Noise predictions for noisy latents `[B, C, h, w]` (`GuidedDenoiser.predictNoise`).
    public func predictNoise(_ noisy: Tensor, timestep: Int, views: [ViewConditioning], guidanceScale: Double,
                             timeGuidanceScale: Double = 0) -> NoisePrediction {
        noisy.checkShape([nil, latentChannels, latentSize, latentSize], "LatentDiffusionPrior.predictNoise")
        return denoiser.predictNoise(noisy, timestep: timestep, views: views, guidanceScale: guidanceScale, timeGuidanceScale: timeGuidanceScale)
    }

    public func predictUnconditionalNoise(_ noisy: Tensor, timestep: Int, views: [ViewConditioning]) -> Tensor {
        noisy.checkShape([nil, latentChannels, latentSize, latentSize], "LatentDiffusionPrior.predictUnconditionalNoise")
        return denoiser.predictUnconditionalNoise(noisy, timestep: timestep, views: views)
    }

    public func makeParticleModel(rank: Int, learningRate: Double, seed: UInt64) -> ParticleScoreModel {
        ParticleScoreModel(denoiser: denoiser, rank: rank, learningRate: learningRate, seed: seed)
    }

    // MARK: Image space

    /// The renders as VAE input: `[B, 3, S, S]` in [−1, 1], averaged down from `size`.
    func images(of renders: [[Float]], size: Int) -> Tensor {
        precondition(size % imageSize == 0, "LatentDiffusionPrior: a \(size)² render is not a multiple of the prior's \(imageSize)²")
        var x: [Float] = []
        x.reserveCapacity(renders.count * 3 * imageSize * imageSize)
        for color in renders { x += PriorImage.fromRender(color, width: size, height: size, factor: size / imageSize) }
        return Tensor(shape: [renders.count, 3, imageSize, imageSize], storage: x)
    }

    /// The scaled latent means of the renders, `[B, C, h, w]`.
    public func encode(renders: [[Float]], size: Int) -> Tensor {
        let (posterior, saved) = vae.encodeForTraining(images(of: renders, size: size))
        lastEncoding = (renders, size, saved)
        return vae.latents(of: posterior)
    }

    /// ∂L/∂render for ∂L/∂latents: back through the scaling, the encoder and the pooling (with each
    /// render's clamp).
    public func encodeBackward(_ gradient: Tensor, renders: [[Float]], size: Int) -> [[Float]] {
        let saved: AutoencoderKL.EncoderSaved
        if let last = lastEncoding, last.size == size, last.renders == renders {
            saved = last.saved
        } else {
            saved = vae.encodeForTraining(images(of: renders, size: size)).saved
        }
        lastEncoding = nil
        let dImages = vae.encodeBackward(saved, meanGradient: vae.latentsBackward(latentGradient: gradient))
        let plane = 3 * imageSize * imageSize
        return renders.indices.map { i in
            PriorImage.renderGradient(Array(dImages.storage[(i * plane)..<((i + 1) * plane)]), width: size, height: size,
                                      factor: size / imageSize, color: renders[i])
        }
    }

    /// The VAE's decoding of latents as display images: decode(x)/2 + ½ clipped to [0, 1],
    /// `[B, 3, S, S]`.
    public func decode(_ x: Tensor) -> Tensor { PriorPipeline.displayValues(vae.decode(x)) }

    /// ∂L/∂latents for ∂L/∂image: ½ where the decoding was inside [−1, 1], back through the decoder.
    public func decodeBackward(_ gradient: Tensor, x: Tensor) -> Tensor {
        let (image, saved) = vae.decodeForTraining(x)
        precondition(gradient.count == image.count, "LatentDiffusionPrior.decodeBackward: \(gradient.count) values for \(image.count)")
        let dImage = Tensor(shape: image.shape, storage: zip(image.storage, gradient.storage).map { v, g in v > -1 && v < 1 ? g / 2 : 0 })
        let dLatents = vae.decodeBackward(saved, imageGradient: dImage)
        return dLatents
    }
}
