import Foundation
import KilnCore
import KilnNN

/// The built-in `DiffusionPrior`: a pixel-space pipeline (`PriorPipeline`) bound to one prompt, its
/// text states computed once, with batched, classifier-free-guided noise predictions.
///
/// Its samples x are the prior's own images: `[B, 3, S, S]` in [−1, 1] at the prior's size S,
/// made from renders by `PriorImage` (f×f average pooling, f = render size / S).
public final class PixelDiffusionPrior: DiffusionPrior {
    public let pipeline: PriorPipeline
    public let prompt: String
    public let negativePrompt: String
    public let backgrounds: [SIMD3<Float>]
    let denoiser: GuidedDenoiser

    /// - Parameters:
    ///   - backgrounds: the background colours of the pipeline's training images.
    ///   - viewPrompts: for a pipeline without camera conditioning, condition each view on the
    ///     prompt with its `ViewDirection` ("…, side view").
    /// - Throws: `SchedulerError` if the pipeline's scheduler config does not give a schedule.
    public init(pipeline: PriorPipeline, prompt: String, negativePrompt: String = "", backgrounds: [SIMD3<Float>], viewPrompts: Bool = true) throws {
        precondition(!backgrounds.isEmpty, "PixelDiffusionPrior: give the training images' background colours")
        precondition(pipeline.vae == nil, "PixelDiffusionPrior: the pipeline has a VAE; use LatentDiffusionPrior")
        self.pipeline = pipeline
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.backgrounds = backgrounds
        denoiser = try GuidedDenoiser(pipeline: pipeline, prompt: prompt, negativePrompt: negativePrompt, viewPrompts: viewPrompts)
    }

    /// The training noise schedule (β, ᾱ) of `scheduler/scheduler_config.json`.
    public var schedule: NoiseSchedule { denoiser.schedule }

    /// Side of the square images the prior takes.
    public var imageSize: Int { pipeline.imageSize.width }

    /// Noise predictions for `noisy` (x_t, `[B, 3, S, S]`) at one timestep, each image seen from its
    /// view (`GuidedDenoiser.predictNoise`).
    public func predictNoise(_ noisy: Tensor, timestep: Int, views: [ViewConditioning], guidanceScale: Double,
                             timeGuidanceScale: Double = 0) -> NoisePrediction {
        noisy.checkShape([nil, 3, imageSize, imageSize], "PixelDiffusionPrior.predictNoise")
        return denoiser.predictNoise(noisy, timestep: timestep, views: views, guidanceScale: guidanceScale, timeGuidanceScale: timeGuidanceScale)
    }

    public func predictUnconditionalNoise(_ noisy: Tensor, timestep: Int, views: [ViewConditioning]) -> Tensor {
        noisy.checkShape([nil, 3, imageSize, imageSize], "PixelDiffusionPrior.predictUnconditionalNoise")
        return denoiser.predictUnconditionalNoise(noisy, timestep: timestep, views: views)
    }

    public func makeParticleModel(rank: Int, learningRate: Double, seed: UInt64) -> ParticleScoreModel {
        ParticleScoreModel(denoiser: denoiser, rank: rank, learningRate: learningRate, seed: seed)
    }

    // MARK: Image space

    /// The renders averaged down to the prior's size, in [−1, 1] (`PriorImage.fromRender`):
    /// `[B, 3, S, S]`.
    public func encode(renders: [[Float]], size: Int) -> Tensor {
        let factor = size / imageSize
        var x: [Float] = []
        for color in renders { x += PriorImage.fromRender(color, width: size, height: size, factor: factor) }
        return Tensor(shape: [renders.count, 3, imageSize, imageSize], storage: x)
    }

    /// `PriorImage.renderGradient` of each sample's gradient, with each render's clamp.
    public func encodeBackward(_ gradient: Tensor, renders: [[Float]], size: Int) -> [[Float]] {
        let factor = size / imageSize, plane = 3 * imageSize * imageSize
        precondition(gradient.count == renders.count * plane, "PixelDiffusionPrior.encodeBackward: \(gradient.count) values for \(renders.count) renders")
        return renders.indices.map { i in
            PriorImage.renderGradient(Array(gradient.storage[(i * plane)..<((i + 1) * plane)]), width: size, height: size, factor: factor,
                                      color: renders[i])
        }
    }

    /// x/2 + ½, clipped to [0, 1].
    public func decode(_ x: Tensor) -> Tensor { PriorPipeline.displayValues(x) }

    /// ½ of the image gradient where x/2 + ½ was inside [0, 1], 0 where it was clipped.
    public func decodeBackward(_ gradient: Tensor, x: Tensor) -> Tensor {
        precondition(gradient.count == x.count, "PixelDiffusionPrior.decodeBackward: \(gradient.count) values for \(x.count)")
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let inside = x.storage[i] > -1 && x.storage[i] < 1
            out[i] = inside ? gradient.storage[i] / 2 : 0
        }
        return Tensor(shape: x.shape, storage: out)
    }
}
