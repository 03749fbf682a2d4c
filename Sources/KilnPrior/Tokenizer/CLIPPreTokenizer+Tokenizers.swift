import Foundation

/// The text side of the Rust `tokenizers` CLIP pipeline (transformers 5's `CLIPTokenizer`, 4's
/// `CLIPTokenizerFast`), as its tokenizer.json spells it:
///
///     normalizer:    NFC, Replace(\s+ → " "), Lowercase
///     pre_tokenizer: Split(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+,
///                          keep the matches), then ByteLevel(use_regex: true)
///
/// The regexes are Oniguruma's, case-sensitive: `\s` is White_Space, `\p{L}`/`\p{N}` the general
/// categories. Against the slow path (`words`, `matches`): nothing is dropped (control and format
/// characters such as U+200D are "other"), ideographs are not spaced out, each code point is
/// lower-cased on its own (no final sigma), U+0345 is "other" and ſ is not s.
extension CLIPPreTokenizer {
    /// `text` after the normalizer: NFC, every White_Space run one space, each code point
    /// replaced by its full lower-case mapping (Rust's `char::to_lowercase`, no context).
    static func tokenizersNormalized(_ text: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        var composed = Array(text)
        if composed.contains(where: { $0.value >= 0x300 }) {  // see `words`: NFC changes nothing below U+0300
            var view = String.UnicodeScalarView()
            view.append(contentsOf: composed)
            composed = Array(String(view).precomposedStringWithCanonicalMapping.unicodeScalars)
        }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(composed.count)
        var inSpace = false
        for s in composed {
            if isTokenizersSpace(s) {
                if !inSpace { out.append(" ") }
                inSpace = true
                continue
            }
            inSpace = false
            if s.value < 0x80 {
                out.append(s.value >= 0x41 && s.value <= 0x5A ? Unicode.Scalar(s.value + 32)! : s)
            } else {
                out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }

    /// Oniguruma's `\s` on Unicode text: the White_Space property.
    @inlinable
    static func isTokenizersSpace(_ s: Unicode.Scalar) -> Bool {
        s.value < 0x80 ? (s.value >= 0x09 && s.value <= 0x0D) || s.value == 0x20 : s.properties.isWhitespace
    }

    /// The pieces BPE encodes in normalized `text`, as index ranges: the Split pattern's matches,
    /// then ByteLevel's GPT-2 pattern inside each. The second split changes only the two literal
    /// alternatives, `<|startoftext|>` → `<|`, `startoftext`, `|>` (the other matches are single
    /// letter, digit or punctuation runs, or a contraction, which GPT-2's pattern keeps whole, as
    /// no space is left in them).
    static func tokenizersPieces(_ text: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0
        let n = text.count
        func matches(_ literal: [Unicode.Scalar], at i: Int) -> Bool {
            i + literal.count <= n && text[i..<(i + literal.count)].elementsEqual(literal)
        }
        while i < n {
            let s = text[i]
            if s == "<", let literal = [startOfText, endOfText].first(where: { matches($0, at: i) }) {
                let end = i + literal.count
                out += [i..<(i + 2), (i + 2)..<(end - 2), (end - 2)..<end]
                i = end
                continue
            }
            if s == "'", let c = contractions.first(where: { matches($0, at: i + 1) }) {
                out.append(i..<(i + 1 + c.count)); i += 1 + c.count; continue
            }
            let kind = tokenizersClass(s)
            switch kind {
            case .number:
                out.append(i..<(i + 1)); i += 1
            case .skipped:
                i += 1
            case .letter, .other:
                var j = i + 1
                while j < n, tokenizersClass(text[j]) == kind { j += 1 }
                out.append(i..<j); i = j
            }
        }
        return out
    }

    /// The class under the Oniguruma pattern: as `characterClass`, but U+0345 is not skipped.
    @inlinable
    static func tokenizersClass(_ s: Unicode.Scalar) -> Class {
        s.value < 0x80 ? characterClass(s) : categoryClass(s)
    }
}
