import KilnNN

/// A text-to-image diffusion prior as score distillation and reward guidance use it, whatever space
/// it diffuses in: one prompt, bound at construction; classifier-free-guided noise predictions
/// ε̂(x_t; prompt, view, τ, t) for a batch of noisy samples, never back-propagated through; and the
/// maps between the loop's renders, the prior's samples x and display images for reward models.
///
/// Shapes: a render is `[R, R, 3]` display colour in [0, 1] (the rasterizers' layout) with R a
/// multiple of `imageSize`; x is `[B, C, h, w]` in the prior's own space; display images are
/// `[B, 3, imageSize, imageSize]` in [0, 1].
///
/// `PixelDiffusionPrior` implements it for a pixel-space pipeline: x is the renders averaged down
/// to the prior's size, in [−1, 1], and display images are x/2 + ½. A latent prior (Stable
/// Diffusion's layout: VAE + UNet, x the VAE's latent `[B, 4, 64, 64]` of 512² renders) implements
/// it with `imageSize` 512, `encode` its VAE encoder's scaled latent mean, `encodeBackward` that
/// encoder's vector–Jacobian product, and `decode`/`decodeBackward` its VAE decoder's forward and
/// vector–Jacobian product; the loop needs nothing else from it.
public protocol DiffusionPrior: AnyObject {
    // MARK: Conditioning

    /// The prompt the conditional prediction sees.
    var prompt: String { get }
    /// The prompt the unconditional prediction sees ("" by default).
    var negativePrompt: String { get }

    // MARK: Noise prediction

    /// The training noise schedule (β, ᾱ) that timesteps index.
    var schedule: NoiseSchedule { get }

    /// Noise predictions for `noisy` (x_t, `[B, C, h, w]`) at one timestep, each sample seen from
    /// its view (`views[b]`, with a time for a moving object).
    ///
    /// Guidance: ε̂ = ε̂_u + s·(ε̂_c − ε̂_u) with s = `guidanceScale`; time guidance (s_τ =
    /// `timeGuidanceScale` > 0, for views with a time) adds s_τ·(ε̂_c − ε̂_still), ε̂_still the
    /// conditional prediction with the views' times left out.
    /// - Returns: ε̂_u, ε̂_c and the guided ε̂, each shaped like `noisy`.
    func predictNoise(_ noisy: Tensor, timestep: Int, views: [ViewConditioning], guidanceScale: Double,
                      timeGuidanceScale: Double) -> NoisePrediction

    /// The unconditional prediction ε̂_u alone (the negative prompt's), one UNet call on B samples:
    /// what DDIM inversion (interval score matching) steps with.
    func predictUnconditionalNoise(_ noisy: Tensor, timestep: Int, views: [ViewConditioning]) -> Tensor

    /// Variational score distillation's particle model: LoRA adapters of `rank` on this prior's
    /// UNet, off for every other prediction (`ParticleScoreModel`). One at a time: a new one
    /// replaces the last one's adapters (a run's refine stage starts its own).
    func makeParticleModel(rank: Int, learningRate: Double, seed: UInt64) -> ParticleScoreModel

    // MARK: Image space

    /// Side of the square images the prior judges: renders are a multiple of it, display images
    /// are this size.
    var imageSize: Int { get }
    /// The background colours (linear RGB) of the images the prior was trained on; a distillation
    /// view's background is drawn from them.
    var backgrounds: [SIMD3<Float>] { get }

    /// The prior's samples x `[B, C, h, w]` of B renders, each `[size, size, 3]` in [0, 1]
    /// (`size` a multiple of `imageSize`).
    func encode(renders: [[Float]], size: Int) -> Tensor
    /// The vector–Jacobian product of `encode` at `renders`: ∂L/∂render (`[size, size, 3]` each)
    /// for ∂L/∂x (`gradient`, shaped as `encode`'s result).
    func encodeBackward(_ gradient: Tensor, renders: [[Float]], size: Int) -> [[Float]]
    /// Display images `[B, 3, imageSize, imageSize]` in [0, 1] of samples x, as the reward models
    /// take them.
    func decode(_ x: Tensor) -> Tensor
    /// The vector–Jacobian product of `decode` at `x`: ∂L/∂x for ∂L/∂image (`gradient`).
    func decodeBackward(_ gradient: Tensor, x: Tensor) -> Tensor
}

/// What `DiffusionPrior.predictNoise` returns, each shaped like the noisy samples.
public struct NoisePrediction {
    public var unconditional: Tensor
    public var conditional: Tensor
    public var guided: Tensor

    public init(unconditional: Tensor, conditional: Tensor, guided: Tensor) {
        (self.unconditional, self.conditional, self.guided) = (unconditional, conditional, guided)
    }
}
