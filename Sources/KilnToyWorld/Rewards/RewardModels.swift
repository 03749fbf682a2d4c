import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// The toy world's reward models, one `RewardNet` per term, loaded from a folder written by
/// `kiln train-rewards`.
public final class RewardModels {
    public let nets: [RewardTerm: RewardNet]
    public let imageSize: Int

    public init(nets: [RewardTerm: RewardNet]) throws {
        guard let size = nets.values.first?.imageSize else { throw RewardError("no reward model given") }
        guard nets.values.allSatisfy({ $0.imageSize == size }) else {
            throw RewardError("the reward models take different image sizes; retrain them together with kiln train-rewards")
        }
        self.nets = nets
        imageSize = size
    }

    /// Loads `kinds` from `folder/<kind>.safetensors`.
    public convenience init(folder: URL, kinds: [RewardTerm] = RewardTerm.allCases) throws {
        var nets: [RewardTerm: RewardNet] = [:]
        for kind in kinds {
            let url = folder.appendingPathComponent("\(kind.rawValue).safetensors")
            let (loaded, net) = try RewardNet.load(url)
            guard loaded == kind else { throw RewardError("\(url.path) holds the \(loaded.rawValue) model; retrain with kiln train-rewards") }
            nets[kind] = net
        }
        try self.init(nets: nets)
    }

    /// Rewards of images `[B, 3, S, S]` in [0, 1] at the models' size, for a caption and each
    /// image's camera angles; with `gradient`, ∂(Σ_b r_b)/∂images too.
    public func evaluate(_ mix: RewardMix, images: Tensor, caption: ToyCaption, azimuthDegrees: [Float], elevationDegrees: [Float],
                         gradient: Bool) -> RewardEvaluation {
        images.checkShape([nil, 3, imageSize, imageSize], "RewardModels.evaluate")
        let b = images.shape[0]
        var total = [Float](repeating: 0, count: b), parts: [RewardTerm: [Float]] = [:]
        var dImages = gradient ? [Float](repeating: 0, count: images.count) : []
        for kind in RewardTerm.allCases {
            guard let weight = mix.weights[kind] else { continue }
            guard let net = nets[kind] else { preconditionFailure("RewardModels.evaluate: the \(kind.rawValue) model is not loaded") }
            let (reward, g): ([Float], Tensor)
            switch kind {
            case .alignment: (reward, g) = alignmentReward(net, images: images, caption: caption)
            case .view: (reward, g) = viewReward(net, images: images, azimuthDegrees: azimuthDegrees, elevationDegrees: elevationDegrees)
            case .quality: (reward, g) = logLikelihood(net, images: images, targets: [1])
            }
            parts[kind] = reward
            for i in 0..<b { total[i] += weight * reward[i] }
            if gradient { for i in 0..<dImages.count { dImages[i] += weight * g.storage[i] } }
        }
        return RewardEvaluation(total: total, parts: parts, imageGradient: dImages)
    }
}
