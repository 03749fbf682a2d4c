import Foundation
import KilnCore
import KilnNN

/// The prior's own training objective kept beside the reward while tuning (ReFL's pre-training
/// loss regulariser, Xu et al. 2023): each update also descends weight · L on a fresh batch of
/// training-like images,
///
///     L = mean_b mean ‖target − UNet(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t, caption, view)‖²,  t ~ U{0…T−1}
///
/// (target ε, v or x₀ as the scheduler predicts; captions dropped to "" at `captionDropout`, as
/// classifier-free guidance was trained). Rewards alone pull a prior off its data: colours drift,
/// samples collapse onto one image, the reward models' blind spots (a frame around the picture)
/// grow. This term keeps the tuned prior a model of the data while the reward moves it.
public struct DenoisingRegularizer {
    /// `count` images `[count, 3, H, W]` in [0, 1] at the prior's image size, and the caption and
    /// camera of each, drawn with `rng`.
    public typealias Draw = (_ count: Int, _ rng: inout RNG) -> (images: Tensor, conditions: [TuningCondition])

    public var weight: Float
    public var batchSize: Int
    public var captionDropout: Float = 0.1
    public let draw: Draw

    public init(weight: Float, batchSize: Int, draw: @escaping Draw) {
        (self.weight, self.batchSize, self.draw) = (weight, batchSize, draw)
    }

    /// Adds weight · ∂L/∂θ on one drawn batch into `pipeline.unet`'s gradients (a latent prior's
    /// frozen VAE encodes the images first); returns L.
    public func accumulateGradient(_ pipeline: PriorPipeline, rng: inout RNG) throws -> Float {
        let (images, conditions) = draw(batchSize, &rng)
        let b = conditions.count
        precondition(images.shape.count == 4 && images.shape[0] == b && b > 0, "DenoisingRegularizer: \(images.shape) images for \(b) conditions")
        let pixels = images.map { 2 * $0 - 1 }
        let x0 = pipeline.vae.map { $0.latents(of: $0.encode(pixels)) } ?? pixels
        guard Array(x0.shape.dropFirst()) == [pipeline.sampleChannels, pipeline.sampleSize.height, pipeline.sampleSize.width] else {
            throw TuningError.invalidSetting("the denoising regulariser's images are \(images.shape[2])×\(images.shape[3]), which the prior does not draw")
        }
        let scheduler = try DDIMScheduler(config: pipeline.schedulerConfig)
        let timesteps = (0..<b).map { _ in Int(rng.next() % UInt64(scheduler.schedule.numTrainTimesteps)) }
        let noise = rng.normals(count: x0.count)
        let noisy = try scheduler.addNoise(x0.storage, noise: noise, timesteps: timesteps)
        let target = try scheduler.trainingTarget(sample: x0.storage, noise: noise, timesteps: timesteps)
        let prompts = conditions.map { rng.nextFloat() < captionDropout ? "" : $0.prompt }
        let context = pipeline.encode(prompts, views: conditions.map(\.view))
        let labels = pipeline.viewLabels(conditions.map(\.view))
        let (prediction, saved) = pipeline.unet.forwardForTraining(Tensor(shape: x0.shape, storage: noisy), timesteps: timesteps.map(Float.init),
                                                                   encoderHiddenStates: context, classLabels: labels)
        let n = Float(prediction.count), scale = 2 * weight / n
        var loss: Double = 0
        var dOut = [Float](repeating: 0, count: prediction.count)
        for i in 0..<prediction.count {
            let d = prediction.storage[i] - target[i]
            loss += Double(d * d)
            dOut[i] = scale * d
        }
        _ = pipeline.unet.backward(saved, outputGradient: Tensor(shape: prediction.shape, storage: dOut))
        return Float(loss / Double(n))
    }
}
