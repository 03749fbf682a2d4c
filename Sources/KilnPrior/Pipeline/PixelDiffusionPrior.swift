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
    /// The training noise schedule (β, ᾱ) of `scheduler/scheduler_config.json`.
    public let schedule: NoiseSchedule
    public let prompt: String
    public let negativePrompt: String
    public let backgrounds: [SIMD3<Float>]
    /// Text states `[1, L, D]` of the negative prompt ("" by default) and of the prompt.
    let unconditional: Tensor, conditional: Tensor

    /// - Parameter backgrounds: the background colours of the pipeline's training images.
    /// - Throws: `SchedulerError` if the pipeline's scheduler config does not give a schedule.
    public init(pipeline: PriorPipeline, prompt: String, negativePrompt: String = "", backgrounds: [SIMD3<Float>]) throws {
        precondition(!backgrounds.isEmpty, "PixelDiffusionPrior: give the training images' background colours")
        self.pipeline = pipeline
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.backgrounds = backgrounds
        schedule = try NoiseSchedule(config: pipeline.schedulerConfig)
        let states = pipeline.encode([negativePrompt, prompt])
        let halves = states.chunked(2, axis: 0)
        (unconditional, conditional) = (halves[0], halves[1])
    }

    /// Side of the square images the prior takes.
    public var imageSize: Int { pipeline.imageSize.width }

    /// Noise predictions for `noisy` (x_t, `[B, 3, S, S]`) at one timestep, each image seen from its
    /// view: one UNet call on the batch [unconditional × B; conditional × B].
    ///
    /// Time guidance (`timeGuidanceScale` s_τ > 0, for views with a time): the prior's time
    /// conditioning is not dropped in training, so classifier-free guidance does not amplify it.
    /// Its effect is amplified against the same prompt drawn still (the time part of the view
    /// vector zero, as for the still samples the prior was trained on): the batch gains
    /// [conditional-still × B] and ε̂ += s_τ·(ε̂_c − ε̂_still).
    /// - Returns: ε̂_u, ε̂_c and the guided ε̂ = ε̂_u + s·(ε̂_c − ε̂_u) (+ the time term), each `[B, 3, S, S]`.
    public func predictNoise(_ noisy: Tensor, timestep: Int, views: [ViewConditioning], guidanceScale: Double,
                             timeGuidanceScale: Double = 0) -> NoisePrediction {
        noisy.checkShape([nil, 3, imageSize, imageSize], "PixelDiffusionPrior.predictNoise")
        let b = noisy.shape[0]
        precondition(views.count == b, "PixelDiffusionPrior.predictNoise: \(views.count) views for \(b) images")
        let timeGuided = timeGuidanceScale > 0 && pipeline.hasViewConditioning && views.contains { $0.time != nil }
        let copies = timeGuided ? 3 : 2
        let still = views.map { ViewConditioning(azimuthDegrees: $0.azimuthDegrees, elevationDegrees: $0.elevationDegrees) }
        let context = Tensor.concatenated(Array(repeating: unconditional, count: b) + Array(repeating: conditional, count: (copies - 1) * b), axis: 0)
        let labels = pipeline.hasViewConditioning
            ? Tensor(shape: [copies * b, ViewConditioning.length], storage: Array((views + views + (timeGuided ? still : [])).map(\.vector).joined()))
            : nil
        let prediction = pipeline.unet.forward(Tensor.concatenated(Array(repeating: noisy, count: copies), axis: 0), timesteps: [Float(timestep)],
                                               encoderHiddenStates: context, classLabels: labels)
        let parts = prediction.chunked(copies, axis: 0)
        let (u, c) = (parts[0].storage, parts[1].storage)
        let s = Float(guidanceScale), st = Float(timeGuidanceScale)
        var guided = [Float](repeating: 0, count: u.count)
        for i in 0..<u.count { guided[i] = u[i] + s * (c[i] - u[i]) }
        if timeGuided {
            let q = parts[2].storage
            for i in 0..<u.count { guided[i] += st * (c[i] - q[i]) }
        }
        return NoisePrediction(unconditional: parts[0], conditional: parts[1], guided: Tensor(shape: noisy.shape, storage: guided))
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
