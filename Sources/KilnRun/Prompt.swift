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

    /// Whether the prompt names a motion ("a yellow duck bouncing"): a 4D run by default.
    public var namesMotion: Bool { caption.motion != nil }
}
