import Foundation

/// A weighted sum of reward terms, written `alignment:1,view:0.5` on the command line:
/// r = Σ_k w_k · r_k over the `RewardTerm`s k with a non-zero weight.
public struct RewardMix: Codable, Sendable, Equatable, CustomStringConvertible {
    public var weights: [RewardTerm: Float]

    public init(_ weights: [RewardTerm: Float]) { self.weights = weights.filter { $0.value != 0 } }

    /// Parses `name:weight[,name:weight…]` (a bare name has weight 1).
    /// - Throws: `RewardError` naming the part that is not understood.
    public init(parsing text: String) throws {
        var weights: [RewardTerm: Float] = [:]
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard pieces.count <= 2, let kind = RewardTerm(rawValue: pieces[0]) else {
                throw RewardError("'\(part)' is not a reward; use " + RewardTerm.allCases.map(\.rawValue).joined(separator: ", ") + ", each optionally :WEIGHT")
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
        RewardTerm.allCases.compactMap { kind in weights[kind].map { "\(kind.rawValue):\($0)" } }.joined(separator: ",")
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

/// Rewards per image: the weighted total, each term's own value, and (when asked for) the
/// gradient of Σ total with respect to the images, `[B, 3, S, S]` flat.
public struct RewardEvaluation {
    public var total: [Float]
    public var parts: [RewardTerm: [Float]]
    public var imageGradient: [Float]

    public init(total: [Float], parts: [RewardTerm: [Float]], imageGradient: [Float]) {
        (self.total, self.parts, self.imageGradient) = (total, parts, imageGradient)
    }
}

/// A reward specification or reward-model folder Kiln cannot use: what is wrong and how to fix it.
public struct RewardError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "--reward: \(message)" }
}
