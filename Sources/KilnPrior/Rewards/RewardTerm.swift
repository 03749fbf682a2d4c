/// A term of a reward-guided run's reward (`RewardMix`, `--reward alignment:1,view:0.5`): what a
/// reward model judges in an image, whichever models implement it (`ImageRewards`).
public enum RewardTerm: String, CaseIterable, Sendable, Codable {
    /// How well an image matches the prompt: Σ log p(attribute | image) over the attributes the
    /// prompt names.
    case alignment
    /// Whether an image shows the side of the object its camera looks at: log p(the camera's
    /// azimuth and elevation | image). A front seen from behind (the Janus failure) scores low.
    case view
    /// Whether an image looks like a clean render rather than a degraded one: log p(real | image).
    case quality
}
