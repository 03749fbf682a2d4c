/// The attributes a toy-world caption names ("a red house with a yellow roof bouncing"), nil
/// where it names none. Words outside the grammar are ignored.
public struct ToyCaption: Sendable, Equatable {
    public var kind: ToyKind?
    public var mainColor: ToyColor?
    public var secondColor: ToyColor?
    public var motion: ToyMotion?

    public init(kind: ToyKind?, mainColor: ToyColor?, secondColor: ToyColor?, motion: ToyMotion?) {
        (self.kind, self.mainColor, self.secondColor, self.motion) = (kind, mainColor, secondColor, motion)
    }

    /// Parses a caption of the toy grammar.
    public init(_ text: String) {
        let words = text.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init)
        var seenKind = false
        for (i, word) in words.enumerated() {
            if let kind = ToyKind(rawValue: word), !seenKind {
                self.kind = kind
                seenKind = true
                if i > 0, let color = ToyColor(rawValue: words[i - 1]) { mainColor = color }
            } else if word == "with", i + 1 < words.count {
                if let color = ToyColor(rawValue: words[i + 1]) { secondColor = color }
                else if i + 2 < words.count, let color = ToyColor(rawValue: words[i + 2]) { secondColor = color }
            } else if let motion = ToyMotion(rawValue: word) {
                self.motion = motion
            }
        }
    }
}
