import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// The motion-change reward: the same pair of samples as the motion reward (one noise, the two
/// times of `ToyMotion.contrastPair`), scored against the toy world's own change between those
/// times. The world renders the caption's object (its kind and colours; unnamed colours the
/// kind's defaults) at the condition's camera with a fixed light and background, at both times;
/// with d_s the samples' change and d_t the world's, the reward is
///
///     r = −‖d_s − d_t‖² / ‖d_t‖²
///
/// the same for both samples of a pair: −1 for a prior that ignores τ, 0 for a pair that changes
/// exactly as the world's canonical render does. The canonical render has one light, one framing
/// and a white background, while samples have the data set's: where the object moves over another
/// background, or is lit or framed otherwise, a sample that moves right still scores below 0, and
/// the gradient leans towards the canonical look (a bias to watch beside the judge). Unlike the motion-pair model, which a small change in the
/// right direction already satisfies, it asks for the size of the change too, which is what
/// `kiln score-prior`'s time response and agreement measure. A still caption's pair (one
/// condition twice) scores 0 and teaches nothing. It needs no reward model; differentiable.
public struct MotionChangeReward: SampleReward {
    /// The light and framing of the world's renders (the middle of the data set's ranges) and its
    /// background (white, the first of `ToySample.backgrounds`).
    static let lightDirectionCamera = SIMD3<Float>(0, -0.4, -1) / Float(1.16).squareRoot()
    static let ambient: Float = 0.35
    static let background = SIMD3<Float>(1, 1, 1)
    static let distanceScale: Float = 1.125

    public init() {}

    public var name: String { "motion-change" }
    public var links: Int { 2 }
    /// Links its samples as the motion reward does, so the two can be mixed.
    public var linkGroup: String { "motion-pair" }

    public func linked(_ condition: TuningCondition) -> [TuningCondition] { MotionSampleReward.linkedPair(condition) }

    /// The world's picture of a condition's caption at its camera (display RGB, `size`²).
    static func truth(_ condition: TuningCondition, size: Int) -> Image {
        let caption = ToyCaption(condition.prompt)
        var world = ToySample(seed: 0, index: 0)
        world.kind = caption.kind ?? world.kind
        let defaults = world.kind.defaultColors
        world.mainColor = caption.mainColor ?? defaults.main
        world.secondColor = caption.secondColor ?? defaults.second
        (world.namesMainColor, world.namesSecondColor) = (caption.mainColor != nil, caption.secondColor != nil)
        world.motion = caption.motion
        world.time = caption.motion == nil ? nil : (condition.view.time ?? 0.5)
        world.azimuthDegrees = condition.view.azimuthDegrees
        world.elevationDegrees = condition.view.elevationDegrees
        world.distanceScale = distanceScale
        world.lightDirectionCamera = lightDirectionCamera
        world.ambient = ambient
        world.background = background
        return world.render(size: size)
    }

    /// Rewards of pairs and, with `gradient`, ∂(Σ rewards)/∂images (each pair's reward counted
    /// twice, once per sample). The world is rendered at the images' own size.
    public func score(_ conditions: [TuningCondition], images: Tensor, gradient: Bool) throws -> (rewards: [Float], gradient: Tensor?) {
        precondition(conditions.count % 2 == 0 && images.shape.count == 4 && images.shape[0] == conditions.count && images.shape[1] == 3,
                     "MotionChangeReward: pairs of [3, H, W] samples")
        let size = images.shape[2], plane = 3 * size * size
        guard images.shape[3] == size else { throw RewardError("the motion-change reward needs square images, got \(images.shape[2])×\(images.shape[3])") }
        var rewards: [Float] = [], dImages = [Float](repeating: 0, count: gradient ? images.count : 0)
        for pair in 0..<(conditions.count / 2) {
            let (early, late) = (conditions[2 * pair], conditions[2 * pair + 1])
            guard ToyCaption(early.prompt).motion != nil, early.view.time != late.view.time else {
                rewards += [0, 0]
                continue
            }
            let truthDelta = zip(Self.planes(Self.truth(early, size: size)), Self.planes(Self.truth(late, size: size))).map { $0 - $1 }
            var norm2: Float = 0
            for v in truthDelta { norm2 += v * v }
            let scale = 1 / max(norm2, 1e-6)
            let a = 2 * pair * plane, b = a + plane
            var error: Float = 0
            var residual = [Float](repeating: 0, count: plane)
            for i in 0..<plane {
                residual[i] = (images.storage[a + i] - images.storage[b + i]) - truthDelta[i]
                error += residual[i] * residual[i]
            }
            rewards += [-error * scale, -error * scale]
            if gradient {
                // Σ rewards = 2r; ∂r/∂(early) = −2·residual/‖d_t‖², ∂r/∂(late) = +2·residual/‖d_t‖².
                for i in 0..<plane {
                    dImages[a + i] = -4 * residual[i] * scale
                    dImages[b + i] = 4 * residual[i] * scale
                }
            }
        }
        return (rewards, gradient ? Tensor(shape: images.shape, storage: dImages) : nil)
    }

    /// A picture as channel planes `[3, H, W]`.
    static func planes(_ picture: Image) -> [Float] {
        let area = picture.width * picture.height
        var out = [Float](repeating: 0, count: 3 * area)
        for p in 0..<area { for c in 0..<3 { out[c * area + p] = picture.pixels[p * picture.channels + c] } }
        return out
    }
}
