import KilnNN

/// A reward on how an object moves, as 4D distillation uses it: for one prompt's motion (bound at
/// construction), two frames of one view (the same camera at two times) and the log-probability
/// that the change between them is that motion, differentiable in both frames.
///
/// Implementations live beside their models: the built-in prior's motion-pair model implements
/// it bound to the motion a caption names.
public protocol MotionReward {
    /// Side of the square frames it takes.
    var imageSize: Int { get }
    /// The time a view at τ ∈ [0, 1] is paired with, and whether that partner frame comes first.
    func partner(of time: Float) -> (time: Float, isEarlier: Bool)
    /// log p(the motion | pair) of pairs `[N, 6, S, S]` (the earlier frame's RGB in [0, 1], then the
    /// later's), and the gradient of their sum with respect to the pairs.
    func logLikelihood(_ pairs: Tensor) -> (reward: [Float], gradient: Tensor)
}
