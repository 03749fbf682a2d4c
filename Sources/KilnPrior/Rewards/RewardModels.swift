import Foundation
import KilnCore
import KilnNN

/// A weighted sum of the toy-world rewards, written `alignment:1,view:0.5` on the command line.
///
///     r = Σ_k w_k · r_k,  r_alignment = Σ log p(attribute the prompt names),
///     r_view = log p(azimuth bin) + log p(elevation bin) of the image's camera,  r_quality = log p(real)
public struct RewardMix: Codable, Sendable, Equatable, CustomStringConvertible {
    public var weights: [ToyRewardKind: Float]

    public init(_ weights: [ToyRewardKind: Float]) { self.weights = weights.filter { $0.value != 0 } }

    /// Parses `name:weight[,name:weight…]` (a bare name has weight 1).
    /// - Throws: `RewardError` naming the part that is not understood.
    public init(parsing text: String) throws {
        var weights: [ToyRewardKind: Float] = [:]
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard pieces.count <= 2, let kind = ToyRewardKind(rawValue: pieces[0]) else {
                throw RewardError("'\(part)' is not a reward; use " + ToyRewardKind.allCases.map(\.rawValue).joined(separator: ", ") + ", each optionally :WEIGHT")
            }
            let weight = pieces.count == 2 ? Float(pieces[1]) : 1
            guard let weight, weight.isFinite else { throw RewardError("'\(part)': the weight is not a number") }
            guard weights[kind] == nil else { throw RewardError("'\(kind.rawValue)' is given twice") }
            weights[kind] = weight
        }
        self.init(weights)
    }

    public var isEmpty: Bool { weights.isEmpty }

    public var description: String {
        ToyRewardKind.allCases.compactMap { kind in weights[kind].map { "\(kind.rawValue):\($0)" } }.joined(separator: ",")
    }

    /// Stored as the command-line string.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// The reward models a run uses, loaded from a folder written by `kiln train-rewards`.
public final class RewardModels {
    public let nets: [ToyRewardKind: RewardNet]
    public let imageSize: Int

    public init(nets: [ToyRewardKind: RewardNet]) throws {
        guard let size = nets.values.first?.imageSize else { throw RewardError("no reward model given") }
        guard nets.values.allSatisfy({ $0.imageSize == size }) else {
            throw RewardError("the reward models take different image sizes; retrain them together with kiln train-rewards")
        }
        self.nets = nets
        imageSize = size
    }

    /// Loads `kinds` from `folder/<kind>.safetensors`.
    public convenience init(folder: URL, kinds: [ToyRewardKind] = ToyRewardKind.allCases) throws {
        var nets: [ToyRewardKind: RewardNet] = [:]
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
        var total = [Float](repeating: 0, count: b), parts: [ToyRewardKind: [Float]] = [:]
        var dImages = gradient ? [Float](repeating: 0, count: images.count) : []
        for kind in ToyRewardKind.allCases {
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

/// Rewards per image: the weighted total, each model's own value, and (when asked for) the
/// gradient of Σ total with respect to the images, `[B, 3, S, S]` flat.
public struct RewardEvaluation {
    public var total: [Float]
    public var parts: [ToyRewardKind: [Float]]
    public var imageGradient: [Float]
}

/// A reward specification or reward-model folder Kiln cannot use: what is wrong and how to fix it.
public struct RewardError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "--reward: \(message)" }
}
