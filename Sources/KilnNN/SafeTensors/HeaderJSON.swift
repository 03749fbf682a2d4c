/// The small, strict JSON reader and writer behind safetensors headers.
///
/// Own code rather than Foundation's `JSONSerialization` so that: integers keep their exact text
/// (a shape of 2⁶⁴ is an overflow error, not a rounded double), duplicate keys are caught, key
/// order is kept, invalid UTF-8 and nesting deeper than `maxDepth` are errors with a byte offset,
/// and the writer emits exactly the bytes serde_json (the reference implementation's serializer)
/// does.
enum HeaderJSON {
    /// A parsed JSON value. Objects keep their keys in file order; numbers keep their text.
    enum Value {
        case object([Member])
        case array([Value])
        case string(String)
        case number(String)
        case bool(Bool)
        case null

        /// `"an object"`, `"a string"`, … for error messages.
        var kindName: String {
            switch self {
            case .object: return "an object"
            case .array: return "an array"
            case .string: return "a string"
            case .number: return "a number"
            case .bool: return "a boolean"
            case .null: return "null"
            }
        }
    }

    /// One `"key": value` pair of an object.
    struct Member {
        var key: String
        var value: Value
    }

    struct ParseError: Error {
        var offset: Int
        var reason: String
    }

    /// Nesting limit; safetensors headers nest three levels deep.
    static let maxDepth = 64

    // MARK: Reading

    /// Parses one JSON value filling `bytes`, trailing JSON whitespace allowed (writers pad the
    /// header with spaces).
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(ParseError) -> Value {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        if parser.i < bytes.count { throw parser.fail("unexpected text after the JSON value") }
        return value
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var i = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        func fail(_ reason: String) -> ParseError { ParseError(offset: i, reason: reason) }

        mutating func skipWhitespace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 {
                i += 1
            }
        }

        mutating func value(depth: Int) throws(ParseError) -> Value {
            guard i < bytes.count else { throw fail("unexpected end of the header") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                guard depth < HeaderJSON.maxDepth else { throw fail("nesting deeper than \(HeaderJSON.maxDepth) levels") }
                return try object(depth: depth + 1)
            case UInt8(ascii: "["):
                guard depth < HeaderJSON.maxDepth else { throw fail("nesting deeper than \(HeaderJSON.maxDepth) levels") }
                return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: throw fail("unexpected character \(Self.describe(bytes[i]))")
            }
        }

        mutating func object(depth: Int) throws(ParseError) -> Value {
            i += 1  // {
            var members: [Member] = []
            skipWhitespace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try string()
                skipWhitespace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected `:` after a key") }
                i += 1
                skipWhitespace()
                members.append(Member(key: key, value: try value(depth: depth)))
                skipWhitespace()
                guard i < bytes.count else { throw fail("unexpected end of the header inside an object") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw fail("expected `,` or `}` in an object")
            }
        }

        mutating func array(depth: Int) throws(ParseError) -> Value {
            i += 1  // [
            var elements: [Value] = []
            skipWhitespace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(elements) }
            while true {
                skipWhitespace()
                elements.append(try value(depth: depth))
                skipWhitespace()
                guard i < bytes.count else { throw fail("unexpected end of the header inside an array") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(elements) }
                throw fail("expected `,` or `]` in an array")
            }
        }

        mutating func literal(_ word: StaticString) throws(ParseError) {
            let count = word.utf8CodeUnitCount
            let matches = i + count <= bytes.count
                && (0..<count).allSatisfy { bytes[i + $0] == word.utf8Start[$0] }
            guard matches else { throw fail("unexpected character \(Self.describe(bytes[i]))") }
            i += count
        }

        /// A number's text, checked against the JSON grammar.
        mutating func number() throws(ParseError) -> String {
            let start = i
            func digits() -> Int {
                let from = i
                while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
                return i - from
            }
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) else {
                throw fail("a number needs digits")
            }
            if bytes[i] == UInt8(ascii: "0") { i += 1 } else { _ = digits() }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { throw fail("a number needs digits after `.`") }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { throw fail("a number needs digits in its exponent") }
            }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        }

        /// A string literal starting at the opening quote; escapes decoded, UTF-8 validated.
        mutating func string() throws(ParseError) -> String {
            let open = i
            i += 1
            var out: [UInt8] = []
            var runStart = i
            while true {
                guard i < bytes.count else { throw ParseError(offset: open, reason: "unterminated string") }
                let c = bytes[i]
                if c == UInt8(ascii: "\"") { break }
                if c < 0x20 { throw fail("control character \(Self.describe(c)) inside a string (must be escaped)") }
                if c != UInt8(ascii: "\\") { i += 1; continue }
                out += UnsafeRawBufferPointer(rebasing: bytes[runStart..<i])
                i += 1
                guard i < bytes.count else { throw ParseError(offset: open, reason: "unterminated string") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {  // a high surrogate needs its low half
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw fail("lone leading surrogate in a \\u escape")
                        }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("invalid low surrogate in a \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw fail("lone trailing surrogate in a \\u escape")
                    }
                    out += Array(String(Character(Unicode.Scalar(scalar)!)).utf8)
                default:
                    throw ParseError(offset: i - 1, reason: "invalid escape `\\\(Self.describe(e))`")
                }
                runStart = i
            }
            out += UnsafeRawBufferPointer(rebasing: bytes[runStart..<i])
            i += 1  // closing quote
            // Decoding repairs invalid UTF-8 with U+FFFD, which changes the bytes: compare to catch it.
            let text = String(decoding: out, as: UTF8.self)
            guard text.utf8.elementsEqual(out) else {
                throw ParseError(offset: open, reason: "a string is not valid UTF-8")
            }
            return text
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            guard i + 4 <= bytes.count else { throw fail("a \\u escape needs 4 hex digits") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                let d: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw fail("a \\u escape needs 4 hex digits")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        static func describe(_ byte: UInt8) -> String {
            (0x21..<0x7F).contains(byte) ? "`\(Character(Unicode.Scalar(byte)))`" : "0x" + String(byte, radix: 16, uppercase: true)
        }
    }

    // MARK: Writing

    /// `text` as a JSON string literal, escaped exactly as serde_json does: `\"`, `\\`, the short
    /// escapes `\b \f \n \r \t`, other control characters as `\u00xx`; everything else (non-ASCII
    /// included) as raw UTF-8.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
