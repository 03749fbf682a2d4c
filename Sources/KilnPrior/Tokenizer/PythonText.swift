/// The few Python `str`/`bytes` behaviours that transformers' CLIP tokenizer relies on, on Unicode
/// scalars (Python strings are sequences of code points; Swift's `String` compares and iterates by
/// grapheme cluster and canonical equivalence, which would merge or split differently).
///
/// Unicode data: Python 3.11's `unicodedata` is Unicode 14.0; Swift's is newer. Every code point
/// assigned in Unicode 14 has the same letter/number/control/space class and lower-case mapping in
/// both (checked over all 1.1 M code points when this was written); code points assigned later are
/// unassigned (`Cn`) to Python 3.11 and dropped by transformers' text cleanup, but kept by Kiln.
enum PythonText {
    // MARK: Classes

    /// Python's `str.isspace()` for one code point: bidirectional class WS, B or S, or category Zs.
    /// That is Unicode's White_Space set plus U+001C...U+001F (information separators, bidi B/S).
    @inlinable
    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F,
             0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    // MARK: Lower case

    /// Python's `str.lower()`: the full lower-case mapping of each code point (U+0130 İ becomes
    /// "i" + U+0307), and U+03A3 Σ becomes final ς when a cased letter precedes it and none follows,
    /// case-ignorable code points skipped on both sides (CPython's `handle_capital_sigma`).
    /// Swift's `String.lowercased()` has no Final_Sigma rule, hence this function.
    static func lowercased(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for (i, s) in text.enumerated() {
            if s.value < 0x80 {
                out.append(s.value >= 0x41 && s.value <= 0x5A ? Unicode.Scalar(s.value + 32)! : s)
            } else if s.value == 0x3A3 {
                out.append(isFinalSigma(text, at: i) ? "\u{3C2}" : "\u{3C3}")
            } else {
                out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }

    static func isFinalSigma(_ text: [Unicode.Scalar], at i: Int) -> Bool {
        var j = i - 1
        while j >= 0, text[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0, text[j].properties.isCased else { return false }
        var k = i + 1
        while k < text.count, text[k].properties.isCaseIgnorable { k += 1 }
        return k == text.count || !text[k].properties.isCased
    }

    // MARK: Strip and replace

    /// Python's `str.strip()`: drops `isSpace` code points at both ends.
    static func strip(_ text: [Unicode.Scalar]) -> ArraySlice<Unicode.Scalar> {
        var lo = 0, hi = text.count
        while lo < hi, isSpace(text[lo]) { lo += 1 }
        while hi > lo, isSpace(text[hi - 1]) { hi -= 1 }
        return text[lo..<hi]
    }

    /// Python's `str.replace(old, new)` (on code points) or `bytes.replace` (on bytes): every
    /// non-overlapping occurrence of `old`, scanning left to right.
    static func replace<T: Equatable>(_ text: [T], _ old: [T], _ new: [T]) -> [T] {
        guard !old.isEmpty, text.count >= old.count else { return text }
        var out: [T] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if i + old.count <= text.count, text[i] == old[0], text[i..<(i + old.count)].elementsEqual(old) {
                out.append(contentsOf: new)
                i += old.count
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }

    // MARK: UTF-8

    /// Python's `bytes.decode("utf-8", errors=...)`.
    ///
    /// Ill-formed input is cut into maximal subparts (the Unicode Standard §3.9, "U+FFFD
    /// substitution of maximal subparts", the practice CPython and Swift's own repair follow): each
    /// becomes one U+FFFD under `.replace`, nothing under `.ignore`, and `.strict` throws at its
    /// offset. A lead byte's valid continuation ranges are those of Table 3-7, so overlongs,
    /// surrogates and code points above U+10FFFF end the subpart at the first byte that rules
    /// them out.
    static func decodeUTF8(_ bytes: [UInt8], errors: CLIPTokenizer.Configuration.DecodeErrors) throws -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i]
            if b0 < 0x80 {
                out.append(Unicode.Scalar(b0))
                i += 1
                continue
            }
            // Expected length and the range of the second byte (the later ones are 80...BF).
            let length: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; hi = 0x9F
            case 0xF0: length = 4; lo = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; hi = 0x8F
            default: length = 0  // 80...C1, F5...FF never start a sequence
            }
            var n = 1  // bytes of the (partial) sequence that are valid so far
            if length > 0 {
                while n < length, i + n < bytes.count {
                    let b = bytes[i + n]
                    let (rlo, rhi) = n == 1 ? (lo, hi) : (UInt8(0x80), UInt8(0xBF))
                    guard b >= rlo, b <= rhi else { break }
                    n += 1
                }
            }
            if length > 0, n == length {
                var value = UInt32(b0) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
                for k in 1..<length { value = value << 6 | UInt32(bytes[i + k] & 0x3F) }
                out.append(Unicode.Scalar(value)!)  // ranges above exclude surrogates and > U+10FFFF
            } else {
                switch errors {
                case .strict: throw TokenizerError.invalidUTF8(byteOffset: i)
                case .replace: out.append("\u{FFFD}")
                case .ignore: break
                }
            }
            i += n
        }
        return out
    }
}
