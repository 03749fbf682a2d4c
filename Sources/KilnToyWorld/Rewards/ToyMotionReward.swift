import KilnNN
import KilnPrior

/// The toy world's motion-pair model bound to the motion a caption names (nil: still): the
/// `MotionReward` a 4D run over the built-in prior uses.
public struct ToyMotionReward: MotionReward {
    public let model: MotionPairReward
    public let motion: ToyMotion?

    public init(model: MotionPairReward, motion: ToyMotion?) {
        self.model = model
        self.motion = motion
    }

    public var imageSize: Int { model.imageSize }

    /// The time the motion moves the object most from τ (`ToyMotion.contrastPair`); for a still
    /// caption τ + 0.25 (τ − 0.25 past 0.75).
    public func partner(of time: Float) -> (time: Float, isEarlier: Bool) {
        let (a, b) = motion?.contrastPair(for: time) ?? (time + 0.25 <= 1 ? (time, time + 0.25) : (time - 0.25, time))
        return a == time ? (b, false) : (a, true)
    }

    /// log p(the motion's class | pair) (`MotionPairReward.logLikelihood`).
    public func logLikelihood(_ pairs: Tensor) -> (reward: [Float], gradient: Tensor) {
        model.logLikelihood(pairs, target: MotionPairReward.label(motion))
    }
}
