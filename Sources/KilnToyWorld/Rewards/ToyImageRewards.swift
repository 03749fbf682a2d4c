import KilnNN
import KilnPrior

/// The toy world's reward models bound to a caption: the `ImageRewards` a reward-guided run over
/// the built-in prior uses.
public struct ToyImageRewards: ImageRewards {
    public let models: RewardModels
    public let caption: ToyCaption

    public init(models: RewardModels, caption: ToyCaption) {
        self.models = models
        self.caption = caption
    }

    public var imageSize: Int { models.imageSize }

    public func provides(_ term: RewardTerm) -> Bool { models.nets[term] != nil }

    /// `RewardModels.evaluate` for the caption and the views' azimuths and elevations.
    public func evaluate(_ mix: RewardMix, images: Tensor, views: [ViewConditioning], gradient: Bool) -> RewardEvaluation {
        models.evaluate(mix, images: images, caption: caption, azimuthDegrees: views.map(\.azimuthDegrees),
                        elevationDegrees: views.map(\.elevationDegrees), gradient: gradient)
    }
}
