import Foundation
import KilnToyWorld

/// A prompt, parsed once and handed to what needs it: its text (and the text to guide away from)
/// for the prior, and its reading in the built-in world's vocabulary (kind, main colour, the
/// second part's colour, motion) for the reward models, the scores and the choice of a 4D run.
public struct Prompt: Sendable, Equatable {
    public let text: String
    public let negative: String
    /// The attributes the prompt names in the built-in world's grammar; nil where it names none.
    public let caption: ToyCaption

    public init(_ text: String, negative: String = "") {
        self.text = text
        self.negative = negative
        caption = ToyCaption(text)
    }

    /// The prompts of a prompt file (one per line; blank lines and `#` comments skipped).
    /// - Parameters: `name`, how errors call the file; `kind`, what it should be ("a prompt suite file").
    public static func lines(of url: URL, name: String, kind: String) throws -> [String] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw RunError("\(name) cannot be read: give \(kind)") }
        let prompts = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !prompts.isEmpty else { throw RunError("\(name) holds no prompts") }
        return prompts
    }

    /// Whether the prompt names a motion ("a yellow duck bouncing"): a 4D run by default.
    public var namesMotion: Bool { caption.motion != nil }
}
