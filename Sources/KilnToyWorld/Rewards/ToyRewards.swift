import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// The toy world's model of each reward term: its heads, and how a data-set record becomes their
/// targets.
///
/// - alignment: kind, main colour, second colour, motion (how well an image matches a caption);
/// - view: azimuth (8 bins of 45°, centred on 0°, 45°, …) and elevation (4 bins over −10°…60°):
///   which side of the object an image shows, so a front seen from behind (Janus) is detected;
/// - quality: real render or degraded image (noise, shuffled patches, spliced halves of two objects).
extension RewardTerm {
    public static let azimuthBins = 8
    public static let elevationBins = 4
    static let stillMotion = "still"

    public var heads: [RewardNet.Head] {
        switch self {
        case .alignment:
            return [RewardNet.Head(name: "kind", classes: ToyKind.allCases.map(\.rawValue)),
                    RewardNet.Head(name: "main_color", classes: ToyColor.allCases.map(\.rawValue)),
                    RewardNet.Head(name: "second_color", classes: ToyColor.allCases.map(\.rawValue)),
                    RewardNet.Head(name: "motion", classes: [Self.stillMotion] + ToyMotion.allCases.map(\.rawValue))]
        case .view:
            return [RewardNet.Head(name: "azimuth", classes: (0..<Self.azimuthBins).map { "\($0 * 360 / Self.azimuthBins)" }),
                    RewardNet.Head(name: "elevation", classes: (0..<Self.elevationBins).map { "bin \($0)" })]
        case .quality:
            return [RewardNet.Head(name: "real", classes: ["degraded", "real"])]
        }
    }

    /// The azimuth bin of `degrees` (nearest multiple of 45°).
    public static func azimuthBin(_ degrees: Float) -> Int {
        let bin = Int((degrees / 360 * Float(azimuthBins)).rounded())
        return ((bin % azimuthBins) + azimuthBins) % azimuthBins
    }

    /// The elevation bin of `degrees` (clamped to −10°…60°).
    public static func elevationBin(_ degrees: Float) -> Int {
        min(elevationBins - 1, max(0, Int((degrees + 10) / 70 * Float(elevationBins))))
    }

    /// The targets a record gives this model's heads (quality targets are set by the trainer).
    public func targets(_ r: ToyRecord) -> [Int] {
        switch self {
        case .alignment:
            return [ToyKind.allCases.firstIndex(of: r.kind)!, ToyColor.allCases.firstIndex(of: r.mainColor)!,
                    ToyColor.allCases.firstIndex(of: r.secondColor)!, r.motion.map { ToyMotion.allCases.firstIndex(of: $0)! + 1 } ?? 0]
        case .view:
            return [Self.azimuthBin(r.azimuthDegrees), Self.elevationBin(r.elevationDegrees)]
        case .quality:
            return [1]
        }
    }
}

/// The alignment reward of an image for a caption: Σ over the attributes the caption names of
/// log p(attribute | image), and its gradient with respect to the image.
public func alignmentReward(_ net: RewardNet, images: Tensor, caption: ToyCaption) -> (reward: [Float], imageGradient: Tensor) {
    logLikelihood(net, images: images, targets: caption.alignmentTargets)
}

/// The view reward of images seen from orbit cameras at the given angles: log p(azimuth bin) + log p(elevation bin) of
/// each image's own camera, and its gradient with respect to the images. A front seen from
/// behind (the Janus failure) scores low.
public func viewReward(_ net: RewardNet, images: Tensor, azimuthDegrees: [Float], elevationDegrees: [Float]) -> (reward: [Float], imageGradient: Tensor) {
    let targets = zip(azimuthDegrees, elevationDegrees).map { [RewardTerm.azimuthBin($0), RewardTerm.elevationBin($1)] as [Int?] }
    return logLikelihood(net, images: images, perImageTargets: targets)
}

extension ToyCaption {
    /// The alignment model's targets (kind, main colour, second colour, motion), nil where the
    /// caption names nothing.
    public var alignmentTargets: [Int?] {
        var targets: [Int?] = [kind.map { ToyKind.allCases.firstIndex(of: $0)! },
                               mainColor.map { ToyColor.allCases.firstIndex(of: $0)! },
                               secondColor.map { ToyColor.allCases.firstIndex(of: $0)! },
                               nil]
        if let motion { targets[3] = ToyMotion.allCases.firstIndex(of: motion)! + 1 }
        return targets
    }
}

/// Σ over heads with a target of log p(target | image) per image, and ∂(Σ over the batch)/∂images.
public func logLikelihood(_ net: RewardNet, images: Tensor, targets: [Int?]) -> (reward: [Float], imageGradient: Tensor) {
    logLikelihood(net, images: images, perImageTargets: Array(repeating: targets, count: images.shape[0]))
}

/// The same with each image's own targets (`perImageTargets[i][head]`), as the view reward needs:
/// every image is seen from its own camera.
public func logLikelihood(_ net: RewardNet, images: Tensor, perImageTargets targets: [[Int?]]) -> (reward: [Float], imageGradient: Tensor) {
    let n = images.shape[0]
    precondition(targets.count == n && targets.allSatisfy { $0.count == net.heads.count },
                 "logLikelihood: give one target list of \(net.heads.count) heads per image")
    let (logits, saved) = net.forwardForTraining(images)
    var reward = [Float](repeating: 0, count: n)
    var gradients: [Tensor] = []
    for (h, logit) in logits.enumerated() {
        let k = logit.shape[1]
        let logP = RewardNet.logSoftmax(logit).storage
        var g = [Float](repeating: 0, count: n * k)
        for r in 0..<n {
            guard let target = targets[r][h] else { continue }
            reward[r] += logP[r * k + target]
            for j in 0..<k { g[r * k + j] = (j == target ? 1 : 0) - Foundation.exp(logP[r * k + j]) }
        }
        gradients.append(Tensor(shape: [n, k], storage: g))
    }
    net.zeroGradients()
    let dImages = net.backward(saved, logitGradients: gradients)
    return (reward, dImages)
}
