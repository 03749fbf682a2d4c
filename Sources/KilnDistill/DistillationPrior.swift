import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// A diffusion prior as score distillation uses it: one prompt, its text states computed once, and
/// batched, classifier-free-guided noise predictions for noisy renders.
///
/// Images are the prior's own values: `[B, 3, S, S]` in [−1, 1] at the prior's size S.
public final class DistillationPrior {
    public let pipeline: PriorPipeline
    /// The training noise schedule (β, ᾱ) of `scheduler/scheduler_config.json`.
    public let schedule: NoiseSchedule
    public let prompt: String
    public let negativePrompt: String
    /// Text states `[1, L, D]` of the negative prompt ("" by default) and of the prompt.
    let unconditional: Tensor, conditional: Tensor

    /// - Throws: `SchedulerError` if the pipeline's scheduler config does not give a schedule.
    public init(pipeline: PriorPipeline, prompt: String, negativePrompt: String = "") throws {
        self.pipeline = pipeline
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        schedule = try NoiseSchedule(config: pipeline.schedulerConfig)
        let states = pipeline.encode([negativePrompt, prompt])
        let halves = states.chunked(2, axis: 0)
        (unconditional, conditional) = (halves[0], halves[1])
    }

    /// Side of the square images the prior takes.
    public var imageSize: Int { pipeline.imageSize.width }

    /// Noise predictions for `noisy` (x_t, `[B, 3, S, S]`) at one timestep, each image seen from its
    /// view: one UNet call on the batch [unconditional × B; conditional × B].
    /// - Returns: ε̂_u, ε̂_c and the guided ε̂ = ε̂_u + s·(ε̂_c − ε̂_u), each `[B, 3, S, S]`.
    public func predictNoise(_ noisy: Tensor, timestep: Int, views: [ViewConditioning], guidanceScale: Double) -> NoisePrediction {
        noisy.checkShape([nil, 3, imageSize, imageSize], "DistillationPrior.predictNoise")
        let b = noisy.shape[0]
        precondition(views.count == b, "DistillationPrior.predictNoise: \(views.count) views for \(b) images")
        let context = Tensor.concatenated(Array(repeating: unconditional, count: b) + Array(repeating: conditional, count: b), axis: 0)
        let labels = pipeline.hasViewConditioning
            ? Tensor(shape: [2 * b, ViewConditioning.length], storage: Array((views + views).map(\.vector).joined()))
            : nil
        let prediction = pipeline.unet.forward(Tensor.concatenated([noisy, noisy], axis: 0), timesteps: [Float(timestep)],
                                               encoderHiddenStates: context, classLabels: labels)
        let halves = prediction.chunked(2, axis: 0)
        let (u, c) = (halves[0].storage, halves[1].storage)
        let s = Float(guidanceScale)
        var guided = [Float](repeating: 0, count: u.count)
        for i in 0..<u.count { guided[i] = u[i] + s * (c[i] - u[i]) }
        return NoisePrediction(unconditional: halves[0], conditional: halves[1], guided: Tensor(shape: noisy.shape, storage: guided))
    }
}

/// What `DistillationPrior.predictNoise` returns, each `[B, 3, S, S]`.
public struct NoisePrediction {
    public var unconditional: Tensor
    public var conditional: Tensor
    public var guided: Tensor
}
