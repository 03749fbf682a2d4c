import KilnNN

/// Reward models as reward guidance uses them: rewards of images for one prompt (bound at
/// construction), each image seen from its own view, and their gradient with respect to the
/// images.
///
/// Implementations live beside their models: the built-in prior's reward models implement it
/// bound to a caption.
public protocol ImageRewards {
    /// Side of the square images it takes.
    var imageSize: Int { get }
    /// Whether it can compute `term` (its model is loaded).
    func provides(_ term: RewardTerm) -> Bool
    /// The rewards r_b = Σ_k w_k · r_k(image b) of `images` (`[B, 3, S, S]` display values in
    /// [0, 1], S = `imageSize`), image b seen from `views[b]`, and each term's own values; with
    /// `gradient`, ∂(Σ_b r_b)/∂images, `[B, 3, S, S]` flat. Every term of `mix` must be provided.
    func evaluate(_ mix: RewardMix, images: Tensor, views: [ViewConditioning], gradient: Bool) -> RewardEvaluation
}
