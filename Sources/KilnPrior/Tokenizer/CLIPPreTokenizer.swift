import Foundation

/// The text side of transformers' slow `CLIPTokenizer._tokenize` on its no-ftfy path: cleanup,
/// lower case, and the split into pre-tokens that BPE then encodes one by one.
///
/// transformers runs `BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text)`
/// (in order: drop NUL, U+FFFD and category C* except tab/newline/return; map those three and Zs
/// to a space; put spaces around CJK ideographs; NFC; split on `str.isspace`; `str.lower()` each
/// word), joins the words with single spaces, and finds every match of
///
///     <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
///
/// under `regex.IGNORECASE`. No match can hold a space, so Kiln applies the pattern word by word.
/// Two consequences of IGNORECASE that the pattern's text hides: U+017F ſ (lower case, folds to s)
/// matches the `s` of `'s` and `<|startoftext|>`; U+0345 (a mark that folds to the letter ι) is in
/// none of the classes, so it is skipped like a space.
enum CLIPPreTokenizer {
    // MARK: BasicTokenizer

    /// The lower-cased, whitespace-free words of `text` (transformers' `BasicTokenizer.tokenize`).
    static func words(_ text: ArraySlice<Unicode.Scalar>) -> [[Unicode.Scalar]] {
        var cleaned: [Unicode.Scalar] = []
        cleaned.reserveCapacity(text.count)
        var needsNFC = false
        for s in text {
            let v = s.value
            if v < 0x80 {
                switch v {
                case 0x09, 0x0A, 0x0D, 0x20: cleaned.append(" ")
                case 0x00..<0x20, 0x7F: break  // Cc
                default: cleaned.append(s)
                }
                continue
            }
            if v == 0xFFFD { continue }
            switch s.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned:
                continue
            case .spaceSeparator:
                cleaned.append(" ")
            default:
                // Every code point that NFC can change, or that can combine with a neighbour, is at
                // or above U+0300 (combining marks, Hangul jamo, singletons such as U+212B).
                if v >= 0x300 { needsNFC = true }
                if isCJKIdeograph(v) {
                    cleaned.append(" ")
                    cleaned.append(s)
                    cleaned.append(" ")
                } else {
                    cleaned.append(s)
                }
            }
        }
        if needsNFC {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: cleaned)
            cleaned = Array(String(view).precomposedStringWithCanonicalMapping.unicodeScalars)
        }
        var words: [[Unicode.Scalar]] = []
        var start = 0
        for i in 0...cleaned.count where i == cleaned.count || PythonText.isSpace(cleaned[i]) {
            if i > start { words.append(PythonText.lowercased(Array(cleaned[start..<i]))) }
            start = i + 1
        }
        return words
    }

    /// `BasicTokenizer._is_chinese_char`: the CJK Unified Ideographs blocks (and extensions A–E)
    /// and the compatibility ideographs; not kana, Hangul or CJK punctuation.
    @inlinable
    static func isCJKIdeograph(_ v: UInt32) -> Bool {
        switch v {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    // MARK: Pattern

    enum Class { case letter, number, other, skipped }

    @inlinable
    static func characterClass(_ s: Unicode.Scalar) -> Class {
        let v = s.value
        if v < 0x80 {
            if (v >= 0x61 && v <= 0x7A) || (v >= 0x41 && v <= 0x5A) { return .letter }
            if v >= 0x30 && v <= 0x39 { return .number }
            return (v >= 0x09 && v <= 0x0D) || v == 0x20 ? .skipped : .other
        }
        if v == 0x345 { return .skipped }
        return categoryClass(s)
    }

    /// The pattern's class of a code point from its general category: `\p{L}`, `\p{N}`, White_Space, or other.
    @inlinable
    static func categoryClass(_ s: Unicode.Scalar) -> Class {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return s.properties.isWhitespace ? .skipped : .other
        }
    }

    static let startOfText = Array("<|startoftext|>".unicodeScalars)
    static let endOfText = Array("<|endoftext|>".unicodeScalars)
    static let contractions: [[Unicode.Scalar]] = ["s", "t", "re", "ve", "m", "ll", "d"].map { Array($0.unicodeScalars) }

    /// Whether `s` equals the lower-case ASCII `target` under the pattern's IGNORECASE (simple case
    /// folding: the upper-case letter, and ſ for s, K (Kelvin) for k).
    @inlinable
    static func foldedEquals(_ s: Unicode.Scalar, _ target: Unicode.Scalar) -> Bool {
        if s == target { return true }
        let t = target.value
        if t >= 0x61 && t <= 0x7A && s.value == t - 32 { return true }
        return (t == 0x73 && s.value == 0x17F) || (t == 0x6B && s.value == 0x212A)
    }

    static func matchesFolded(_ word: [Unicode.Scalar], at i: Int, _ literal: [Unicode.Scalar]) -> Bool {
        guard i + literal.count <= word.count else { return false }
        for k in 0..<literal.count where !foldedEquals(word[i + k], literal[k]) { return false }
        return true
    }

    /// The pattern's matches in one word, in order, as index ranges into `word`.
    static func matches(_ word: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0
        let n = word.count
        while i < n {
            let s = word[i]
            if s == "<" {
                if matchesFolded(word, at: i, startOfText) {
                    out.append(i..<(i + startOfText.count)); i += startOfText.count; continue
                }
                if matchesFolded(word, at: i, endOfText) {
                    out.append(i..<(i + endOfText.count)); i += endOfText.count; continue
                }
            } else if s == "'" {
                if let c = contractions.first(where: { matchesFolded(word, at: i + 1, $0) }) {
                    out.append(i..<(i + 1 + c.count)); i += 1 + c.count; continue
                }
            }
            switch characterClass(s) {
            case .letter:
                var j = i + 1
                while j < n, characterClass(word[j]) == .letter { j += 1 }
                out.append(i..<j); i = j
            case .number:
                out.append(i..<(i + 1)); i += 1
            case .other:
                var j = i + 1
                while j < n, characterClass(word[j]) == .other { j += 1 }
                out.append(i..<j); i = j
            case .skipped:
                i += 1
            }
        }
        return out
    }
}
