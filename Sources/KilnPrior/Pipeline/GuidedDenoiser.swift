import Foundation
import KilnCore
import KilnNN

/// Which side of an object a camera sees, for priors that know no cameras: the prompt gains
/// ", front view", ", side view", ", back view" or ", overhead view", as DreamFusion and threestudio
/// do (threestudio's thresholds: overhead above 60° elevation, front within 45° of azimuth 0,
/// back within 45° of 180°, side otherwise; azimuth 0 is the front, +Z).
public enum ViewDirection: String, Sendable, CaseIterable {
    case front, side, back, overhead

    public static let overheadElevationDegrees: Float = 60
    public static let frontHalfAngleDegrees: Float = 45
    public static let backHalfAngleDegrees: Float = 45

    public init(_ view: ViewConditioning) {
        if view.elevationDegrees > Self.overheadElevationDegrees { self = .overhead; return }
        var a = view.azimuthDegrees.truncatingRemainder(dividingBy: 360)
        if a > 180 { a -= 360 } else if a <= -180 { a += 360 }
        if abs(a) <= Self.frontHalfAngleDegrees { self = .front }
        else if abs(a) >= 180 - Self.backHalfAngleDegrees { self = .back }
        else { self = .side }
    }

    /// The prompt as seen from this side: "a red mug, side view" (the empty prompt stays empty).
    public func prompt(_ text: String) -> String { text.isEmpty ? text : "\(text), \(rawValue) view" }

    /// The words view prompts add to a vocabulary.
    public static let words = allCases.map(\.rawValue) + ["view"]
}

/// Classifier-free-guided noise predictions from a pipeline's UNet for one prompt, whatever space
/// the pipeline diffuses in: the text states computed once, one batched UNet call per prediction.
/// `PixelDiffusionPrior` and `LatentDiffusionPrior` answer `DiffusionPrior.predictNoise` with it.
///
/// - A prior with camera conditioning (Kiln's own) sees each sample's view through its class
///   embedding. One without (Stable Diffusion) sees it through the prompt: each sample's
///   conditional text states are those of `ViewDirection.prompt` for its view.
/// - A UNet that predicts v or x₀ (`prediction_type`) has its output turned into the noise it
///   implies, so the caller always gets ε̂: ε = √ᾱ·v + √(1−ᾱ)·x_t, or (x_t − √ᾱ·x₀)/√(1−ᾱ).
final class GuidedDenoiser {
    let pipeline: PriorPipeline
    let schedule: NoiseSchedule
    /// Text states `[1, L, D]` of the negative prompt and of the prompt.
    let unconditional: Tensor, conditional: Tensor
    /// The prompt's text states for each side: for priors without camera conditioning, and for
    /// priors trained with view prompts.
    let directional: [ViewDirection: Tensor]

    init(pipeline: PriorPipeline, prompt: String, negativePrompt: String, viewPrompts: Bool) throws {
        self.pipeline = pipeline
        schedule = try NoiseSchedule(config: pipeline.schedulerConfig)
        // A prior that knows no cameras, or one trained with view prompts, hears the side in its prompt.
        let directions = (viewPrompts && !pipeline.hasViewConditioning) || pipeline.usesViewPrompts ? ViewDirection.allCases : []
        let states = pipeline.encode([negativePrompt, prompt] + directions.map { $0.prompt(prompt) }).chunked(2 + directions.count, axis: 0)
        (unconditional, conditional) = (states[0], states[1])
        directional = Dictionary(uniqueKeysWithValues: zip(directions, states.dropFirst(2)))
    }

    /// The conditional text states of one sample seen from `view`.
    func conditional(for view: ViewConditioning) -> Tensor { directional[ViewDirection(view)] ?? conditional }

    /// ε̂_u, ε̂_c and the guided ε̂ for `noisy` `[B, C, h, w]` (see `DiffusionPrior.predictNoise`):
    /// one UNet call on [unconditional × B; conditional × B (; conditional-still × B)].
    ///
    /// Time guidance (`timeGuidanceScale` s_τ > 0, for views with a time): the prior's time
    /// conditioning is not dropped in training, so classifier-free guidance does not amplify it.
    /// Its effect is amplified against the same prompt drawn still (the time part of the view
    /// vector zero, as for the still samples the prior was trained on): the batch gains
    /// [conditional-still × B] and ε̂ += s_τ·(ε̂_c − ε̂_still).
    func predictNoise(_ noisy: Tensor, timestep: Int, views: [ViewConditioning], guidanceScale: Double,
                      timeGuidanceScale: Double) -> NoisePrediction {
        let b = noisy.shape[0]
        precondition(views.count == b, "predictNoise: \(views.count) views for \(b) samples")
        let timeGuided = timeGuidanceScale > 0 && pipeline.hasViewConditioning && views.contains { $0.time != nil }
        let copies = timeGuided ? 3 : 2
        let still = views.map { ViewConditioning(azimuthDegrees: $0.azimuthDegrees, elevationDegrees: $0.elevationDegrees) }
        let conditionalRows = directional.isEmpty ? Array(repeating: conditional, count: b) : views.map(conditional(for:))
        let context = Tensor.concatenated(Array(repeating: unconditional, count: b) + Array(repeating: conditionalRows, count: copies - 1).joined(),
                                          axis: 0)
        let labels = pipeline.viewLabels(views + views + (timeGuided ? still : []))
        let input = Tensor.concatenated(Array(repeating: noisy, count: copies), axis: 0)
        var prediction = pipeline.unet.forward(input, timesteps: [Float(timestep)], encoderHiddenStates: context, classLabels: labels)
        prediction = noise(of: prediction, noisy: input, timestep: timestep)
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

    /// ε̂_u alone for `noisy` `[B, C, h, w]`: one UNet call on [unconditional × B].
    func predictUnconditionalNoise(_ noisy: Tensor, timestep: Int, views: [ViewConditioning]) -> Tensor {
        let b = noisy.shape[0]
        precondition(views.count == b, "predictUnconditionalNoise: \(views.count) views for \(b) samples")
        let context = Tensor.concatenated(Array(repeating: unconditional, count: b), axis: 0)
        let prediction = pipeline.unet.forward(noisy, timesteps: [Float(timestep)], encoderHiddenStates: context, classLabels: pipeline.viewLabels(views))
        return noise(of: prediction, noisy: noisy, timestep: timestep)
    }

    /// The noise a UNet output implies under the scheduler's `prediction_type`.
    func noise(of output: Tensor, noisy: Tensor, timestep t: Int) -> Tensor {
        let a = schedule.sqrtAlphaCumprod(t), sigma = schedule.sqrtOneMinusAlphaCumprod(t)
        switch pipeline.schedulerConfig.predictionType {
        case .epsilon: return output
        case .vPrediction:
            return Tensor(shape: output.shape, storage: zip(output.storage, noisy.storage).map { v, x in a * v + sigma * x })
        case .sample:
            return Tensor(shape: output.shape, storage: zip(output.storage, noisy.storage).map { x0, x in (x - a * x0) / sigma })
        }
    }
}
