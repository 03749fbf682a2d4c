import Foundation
import KilnCore
@testable import KilnPrior
import Testing

/// The fixture tokenizer (a CLIP-layout vocabulary learnt by `tools/make_tokenizer_fixtures.py`)
/// and the goldens transformers' slow `CLIPTokenizer` wrote for it.
enum TokenizerFixture {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizer")

    struct Case: Decodable {
        var text: String
        var ids: [Int]
        var input_ids: [Int]
        var attention_mask: [Int]
        var decoded: String
        var decoded_skip: String
        var tokens: [String]?
        var fast_agrees: Bool
        var fast_ids: [Int]?
    }

    struct Decode: Decodable {
        var ids: [Int]
        var decoded: String
        var decoded_skip: String
    }

    struct Variant {
        var name: String
        var tokenizerConfig: Data
        var specialTokensMap: Data?
        var cases: [Case]
        var decodes: [Decode]
    }

    /// The variants, their configs re-serialised as the JSON files transformers read.
    static let variants: [Variant] = {
        let data = try! Data(contentsOf: folder.appendingPathComponent("goldens.json"))
        let root = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (root["variants"] as! [[String: Any]]).map { v in
            func json(_ key: String) -> Data? {
                guard let object = v[key], !(object is NSNull) else { return nil }
                return try! JSONSerialization.data(withJSONObject: object)
            }
            func decoded<T: Decodable>(_ key: String) -> T {
                try! JSONDecoder().decode(T.self, from: json(key)!)
            }
            return Variant(name: v["name"] as! String, tokenizerConfig: json("tokenizer_config")!,
                           specialTokensMap: json("special_tokens_map"), cases: decoded("cases"), decodes: decoded("decodes"))
        }
    }()

    static let tokenizer: CLIPTokenizer = try! CLIPTokenizer(folder: folder)

    static func tokenizer(for variant: Variant) throws -> CLIPTokenizer {
        let configuration = try CLIPTokenizer.Configuration(tokenizerConfig: variant.tokenizerConfig,
                                                            specialTokensMap: variant.specialTokensMap)
        return try CLIPTokenizer(vocabulary: Data(contentsOf: folder.appendingPathComponent("vocab.json")),
                                 merges: Data(contentsOf: folder.appendingPathComponent("merges.txt")),
                                 configuration: configuration)
    }

    /// `text` with control and non-ASCII code points spelt out, for failure messages.
    static func show(_ text: String) -> String {
        text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined()
    }
}

@Suite("CLIPTokenizer against transformers' CLIPTokenizer")
struct CLIPTokenizerGoldenTests {
    @Test("The goldens cover what they promise")
    func coverage() {
        let sd15 = TokenizerFixture.variants.first { $0.name == "sd15" }!
        #expect(TokenizerFixture.variants.map(\.name) == ["sd15", "sd2", "options"])
        #expect(sd15.cases.count >= 40)
        #expect(sd15.cases.contains { $0.ids.count > 77 }, "a prompt longer than 77 tokens")
        #expect(sd15.cases.contains { $0.text.isEmpty })
        #expect(sd15.cases.contains { !$0.fast_agrees }, "cases where the Rust tokenizer differs")
    }

    @Test("Ids, padded inputs, masks and decoded text equal transformers'", arguments: ["sd15", "sd2", "options"])
    func goldens(_ name: String) throws {
        let variant = TokenizerFixture.variants.first { $0.name == name }!
        let tokenizer = name == "sd15" ? TokenizerFixture.tokenizer : try TokenizerFixture.tokenizer(for: variant)
        for c in variant.cases {
            let shown = TokenizerFixture.show(c.text)
            if let tokens = c.tokens {
                #expect(tokenizer.tokenize(c.text) == tokens, "tokens of \"\(shown)\"")
            }
            #expect(tokenizer.encode(c.text, padding: .none, truncation: false).inputIDs == c.ids, "ids of \"\(shown)\"")
            let encoding = tokenizer.encode(c.text)
            #expect(encoding.inputIDs == c.input_ids, "padded ids of \"\(shown)\"")
            #expect(encoding.attentionMask == c.attention_mask, "attention mask of \"\(shown)\"")
            #expect(try tokenizer.decode(c.ids) == c.decoded, "decode of \"\(shown)\"")
            #expect(try tokenizer.decode(c.input_ids, skipSpecialTokens: true) == c.decoded_skip,
                    "decode(skipSpecialTokens) of \"\(shown)\"")
        }
        for d in variant.decodes {
            #expect(try tokenizer.decode(d.ids) == d.decoded, "decode of \(d.ids)")
            #expect(try tokenizer.decode(d.ids, skipSpecialTokens: true) == d.decoded_skip, "decode(skip) of \(d.ids)")
        }
    }

    @Test("The fixture folder reads as Stable Diffusion 1.x's configuration")
    func configuration() throws {
        let t = TokenizerFixture.tokenizer
        #expect(t.configuration == .stableDiffusion1)
        #expect(t.vocabularySize == 2484)
        #expect(t.bosTokenID == 2482 && t.eosTokenID == 2483 && t.padTokenID == 2483 && t.unkTokenID == 2483)
        #expect(t.id(forToken: "!") == 0 && t.id(forToken: "!</w>") == 256 && t.token(forID: 2482) == "<|startoftext|>")
        let sd2 = try TokenizerFixture.tokenizer(for: TokenizerFixture.variants[1])
        #expect(sd2.configuration == .stableDiffusion2 && sd2.padTokenID == 0)
    }
}

@Suite("CLIPTokenizer BPE and caching")
struct CLIPTokenizerBPETests {
    /// Words that hit many merges: concatenations of 1–4 random vocabulary tokens' bytes, some
    /// cut, plus random byte strings.
    @Test("Id BPE equals transformers' string BPE on random words")
    func referenceBPE() throws {
        let t = TokenizerFixture.tokenizer
        let ranks = Self.ranks()
        let plain = (0..<t.vocabularySize).filter { !t.specialIDs.contains($0) }.map { t.tokenBytes[$0] }
            .map { $0.count > 4 && $0.suffix(4).elementsEqual("</w>".utf8) ? Array($0.dropLast(4)) : $0 }
        var rng = RNG(seed: 7)
        var mismatches: [String] = []
        for trial in 0..<4000 {
            var bytes: [UInt8] = []
            if trial % 4 == 3 {
                for _ in 0..<(1 + Int(rng.next() % 12)) { bytes.append(UInt8(truncatingIfNeeded: rng.next())) }
            } else {
                for _ in 0..<(1 + Int(rng.next() % 4)) { bytes += plain[Int(rng.next() % UInt64(plain.count))] }
                if rng.next() % 3 == 0, bytes.count > 1 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count))) }
            }
            let fast = t.bpe.uncachedEncode(bytes).map { t.tokens[Int($0)] }
            let reference = ByteLevelBPEReference.bpe(ByteLevel.token(ofBytes: bytes), ranks: ranks)
            if fast != reference, mismatches.count < 5 { mismatches.append("\(bytes): \(fast) vs \(reference)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    @Test("Repeated symbols merge left to right without overlap")
    func repeats() {
        let t = TokenizerFixture.tokenizer
        // The fixture learnt "aaaa" and "aaaaaaaa": odd lengths leave a remainder in a fixed place.
        for n in 1...13 {
            let text = String(repeating: "a", count: n)
            let tokens = t.tokenize(text)
            #expect(tokens.joined() == text + "</w>", "\(n): \(tokens)")
            let reference = ByteLevelBPEReference.bpe(text, ranks: Self.ranks())
            #expect(tokens == reference, "\(n)")
        }
    }

    /// merges.txt as transformers' `bpe_ranks`, keyed "left right".
    static func ranks() -> [String: Int] {
        let text = try! String(contentsOf: TokenizerFixture.folder.appendingPathComponent("merges.txt"), encoding: .utf8)
        var ranks: [String: Int] = [:]
        for (i, line) in text.split(separator: "\n").dropFirst().enumerated() { ranks[String(line)] = i }
        return ranks
    }

    @Test("The cache returns what the merge loop computes, from many threads at once")
    func cache() throws {
        let t = try CLIPTokenizer(folder: TokenizerFixture.folder)
        let prompts = TokenizerFixture.variants[0].cases.map(\.text)
        let expected = prompts.map { t.encode($0) }
        #expect(t.bpe.cache.count > 50)
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 16) { k in
            // Even iterations share `t` (and its cache); odd ones fill a cache of their own.
            let tokenizer = k % 2 == 0 ? t : try! CLIPTokenizer(folder: TokenizerFixture.folder)
            for (prompt, e) in zip(prompts, expected) where tokenizer.encode(prompt) != e { failures.add(prompt) }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
    }

    final class Failures: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [String] = []
        func add(_ item: String) { lock.lock(); items.append(item); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
    }

    @Test("Truncation keeps both special tokens; padding fills to the length", arguments: [2, 3, 5, 16, 77, 100])
    func truncationAndPadding(_ length: Int) {
        let t = TokenizerFixture.tokenizer
        for c in TokenizerFixture.variants[0].cases {
            let full = t.encode(c.text, padding: .none, truncation: false).inputIDs
            let e = t.encode(c.text, maxLength: length)
            #expect(e.inputIDs.count == max(length, 2))
            let n = min(full.count, length)
            #expect(e.inputIDs.prefix(n - 1) == full.prefix(n - 1) && e.inputIDs[n - 1] == t.eosTokenID)
            #expect(e.attentionMask == [Int](repeating: 1, count: n) + [Int](repeating: 0, count: length - n))
            #expect(e.inputIDs.dropFirst(n).allSatisfy { $0 == t.padTokenID })
            let unpadded = t.encode(c.text, padding: .none, maxLength: length)
            #expect(unpadded.inputIDs == Array(e.inputIDs.prefix(n)))
        }
    }
}

@Suite("CLIPTokenizer text rules")
struct CLIPTokenizerTextTests {
    func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    @Test("str.isspace is White_Space plus U+001C...U+001F")
    func isSpace() {
        for v in UInt32(0)...0x3100 {
            guard let s = Unicode.Scalar(v) else { continue }
            #expect(PythonText.isSpace(s) == (s.properties.isWhitespace || (0x1C...0x1F).contains(v)), "U+\(String(v, radix: 16))")
        }
    }

    @Test("str.lower: full mappings and Greek final sigma")
    func lower() {
        let cases: [(String, String)] = [
            ("ΟΔΟΣ", "οδος"), ("Σ", "σ"), ("ΑΣ.", "ας."), ("Σ.Σ", "σ.ς"), ("ΑΣΑ", "ασα"), ("ΑΣ'Α", "ασ'α"),
            ("İ", "i\u{307}"), ("ẞ", "ß"), ("ǅ", "ǆ"), ("ABC", "abc"), ("\u{212A}", "k"),
        ]
        for (input, expected) in cases {
            #expect(PythonText.lowercased(scalars(input)) == scalars(expected), "\(input)")
        }
    }

    @Test("UTF-8 decoding: valid text round-trips; ill-formed input as Swift's own repair does")
    func utf8() throws {
        var rng = RNG(seed: 3)
        for _ in 0..<2000 {
            let bytes = (0..<(Int(rng.next() % 10))).map { _ -> UInt8 in
                let r = rng.next()
                return r % 3 == 0 ? UInt8(0x80 | (r >> 8) % 64) : UInt8(truncatingIfNeeded: r >> 16)
            }
            let swift = String(decoding: bytes, as: UTF8.self)
            let ours = try PythonText.decodeUTF8(bytes, errors: .replace)
            #expect(ours == Array(swift.unicodeScalars), "\(bytes)")
            let ignored = try PythonText.decodeUTF8(bytes, errors: .ignore)
            #expect(ignored == ours.filter { $0 != "\u{FFFD}" } || bytes.contains(0xEF), "\(bytes)")
        }
        let text = "a é 日本 🦊"
        #expect(try PythonText.decodeUTF8(Array(text.utf8), errors: .strict) == scalars(text))
        #expect(throws: TokenizerError.invalidUTF8(byteOffset: 1)) { try PythonText.decodeUTF8([0x41, 0xC3], errors: .strict) }
    }

    @Test("Cleanup, CJK spacing, NFC and the pattern")
    func preTokenizer() {
        func pieces(_ text: String) -> [String] {
            CLIPPreTokenizer.words(ArraySlice(scalars(text))).flatMap { word in
                CLIPPreTokenizer.matches(word).map { String(String.UnicodeScalarView(word[$0])) }
            }
        }
        #expect(pieces("It's 3.5x\tBIG!!") == ["it", "'s", "3", ".", "5", "x", "big", "!!"])
        #expect(pieces("日本の") == ["日", "本", "の"])
        #expect(pieces("cafe\u{301}") == ["café"])
        #expect(pieces("x\u{345}y a\u{200D}b") == ["x", "y", "ab"])
        #expect(pieces("it'ſ <|ſtartoftext|>") == ["it", "'ſ", "<|ſtartoftext|>"])
        #expect(pieces(".<|endoftext|>") == [".<|", "endoftext", "|>"])
    }
}

@Suite("CLIPTokenizer loading errors")
struct CLIPTokenizerLoadingTests {
    /// A copy of the fixture folder with `edit` applied; the tokenizer's error, or nil.
    func load(_ edit: (URL) throws -> Void) throws -> TokenizerError? {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(at: TokenizerFixture.folder.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        try edit(dir)
        do {
            _ = try CLIPTokenizer(folder: dir)
            return nil
        } catch let error as TokenizerError {
            return error
        }
    }

    func editJSON(_ dir: URL, _ name: String, _ change: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent(name)
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        change(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    func editMerges(_ dir: URL, _ change: (inout [String]) -> Void) throws {
        let url = dir.appendingPathComponent("merges.txt")
        var lines = try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\n")
        change(&lines)
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    @Test("Required files", arguments: ["vocab.json", "merges.txt", "tokenizer_config.json"])
    func missing(_ name: String) throws {
        let error = try load { try FileManager.default.removeItem(at: $0.appendingPathComponent(name)) }
        guard case .missingFile(let file, _) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(file.hasSuffix(name) && error!.description.contains("tokenizer/ folder"))
    }

    @Test("special_tokens_map.json is optional")
    func optionalMap() throws {
        #expect(try load { try FileManager.default.removeItem(at: $0.appendingPathComponent("special_tokens_map.json")) } == nil)
    }

    @Test("Malformed JSON names the file")
    func malformed() throws {
        let error = try load { try Data("{\"a\": 0,".utf8).write(to: $0.appendingPathComponent("vocab.json")) }
        guard case .malformedJSON(let file, _) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(file.hasSuffix("vocab.json"))
        let notInt = try load { try Data("{\"a\": \"0\"}".utf8).write(to: $0.appendingPathComponent("vocab.json")) }
        #expect(notInt?.description.contains("integer id") == true, "\(String(describing: notInt))")
        let config = try load { try Data("[1]".utf8).write(to: $0.appendingPathComponent("tokenizer_config.json")) }
        guard case .malformedJSON(let configFile, _) = config else { Issue.record("\(String(describing: config))"); return }
        #expect(configFile.hasSuffix("tokenizer_config.json"))
    }

    @Test("merges.txt: header, shape, unknown tokens, repeats")
    func merges() throws {
        func check(_ expectedLine: Int, _ fragment: String, _ change: @escaping (inout [String]) -> Void) throws {
            let error = try load { try editMerges($0, change) }
            guard case .invalidMerge(_, let line, _, let reason) = error else { Issue.record("\(String(describing: error))"); return }
            #expect(line == expectedLine && reason.contains(fragment), "\(error!)")
        }
        try check(1, "#version") { $0.removeFirst() }
        try check(3, "two tokens") { $0[2] = "a b c" }
        try check(4, "not in") { $0[3] = "q xyzzy</w>" }
        try check(6, "repeats the merge of line 2") { $0[5] = $0[1] }
        // Windows line endings and trailing blank lines are fine, as for transformers.
        #expect(try load { try editMerges($0) { lines in lines = lines.map { $0 + "\r" } + ["", ""] } } == nil)
    }

    @Test("vocab.json: ids, byte symbols")
    func vocabulary() throws {
        func check(_ fragment: String, _ change: @escaping (inout [String: Any]) -> Void) throws {
            let error = try load { try editJSON($0, "vocab.json", change) }
            guard case .invalidVocabulary(_, let reason) = error else { Issue.record("\(String(describing: error))"); return }
            #expect(reason.contains(fragment), "\(error!)")
        }
        try check("outside") { $0["<|endoftext|>"] = 99999 }
        try check("share id") { $0["extra"] = 5; $0["<|endoftext|>"] = nil }
        try check("byte symbols") { $0["x y"] = $0.count }
        try check("byte 34") { $0["\""] = nil; $0["<|endoftext|>"] = 1 }
    }

    @Test("tokenizer_config.json: unknown keys and unsupported values are refused, naming the key")
    func config() throws {
        func check(_ key: String, _ fragment: String, _ change: @escaping (inout [String: Any]) -> Void) throws {
            let error = try load { try editJSON($0, "tokenizer_config.json", change) }
            #expect(error?.description.contains("tokenizer_config.json") == true, "\(String(describing: error))")
            #expect(error?.description.contains(key) == true && error?.description.contains(fragment) == true,
                    "\(String(describing: error))")
        }
        try check("add_bos_token", "unknown key") { $0["add_bos_token"] = true }
        try check("do_lower_case", "set it to true") { $0["do_lower_case"] = false }
        try check("model_max_length", "77") { $0["model_max_length"] = 1e30 }
        try check("model_max_length", "missing") { $0["model_max_length"] = nil }
        try check("errors", "replace") { $0["errors"] = "backslashreplace" }
        try check("padding_side", "left") { $0["padding_side"] = "middle" }
        try check("split_special_tokens", "true or false") { $0["split_special_tokens"] = 1 }
        try check("tokenizer_class", "CLIP") { $0["tokenizer_class"] = "GPT2Tokenizer" }
        try check("bos_token.lstrip", "false") {
            $0["bos_token"] = ["content": "<|startoftext|>", "lstrip": true]
        }
        try check("added_tokens_decoder", "textual inversion") {
            $0["added_tokens_decoder"] = ["2484": ["content": "<cat-toy>", "special": false]]
        }
    }

    @Test("Special tokens: the map overrides the config; they must be in the vocabulary")
    func specialTokens() throws {
        let error = try load { try editJSON($0, "special_tokens_map.json") { $0["pad_token"] = "<pad>" } }
        #expect(error?.description.contains("pad_token") == true && error?.description.contains("<pad>") == true,
                "\(String(describing: error))")
        // With added_tokens_decoder (transformers 4.34+ saves) the map is not read.
        #expect(try load { dir in
            try editJSON(dir, "special_tokens_map.json") { $0["pad_token"] = "<pad>" }
            try editJSON(dir, "tokenizer_config.json") {
                $0["added_tokens_decoder"] = ["2482": ["content": "<|startoftext|>", "special": true],
                                              "2483": ["content": "<|endoftext|>", "special": true]]
            }
        } == nil)
    }

    @Test("decode refuses unknown ids; strict errors throw")
    func decodeErrors() throws {
        let t = TokenizerFixture.tokenizer
        #expect(throws: TokenizerError.unknownTokenID(-1, vocabularySize: 2484)) { try t.decode([0, -1]) }
        #expect(throws: TokenizerError.unknownTokenID(2484, vocabularySize: 2484)) { try t.decode([2484]) }
        var configuration = CLIPTokenizer.Configuration.stableDiffusion1
        configuration.errors = .strict
        let strict = try CLIPTokenizer(vocabulary: Data(contentsOf: TokenizerFixture.folder.appendingPathComponent("vocab.json")),
                                       merges: Data(contentsOf: TokenizerFixture.folder.appendingPathComponent("merges.txt")),
                                       configuration: configuration)
        let c3 = strict.id(forToken: String(ByteLevel.byteToScalar[0xC3]))!
        #expect(throws: TokenizerError.invalidUTF8(byteOffset: 1)) { try strict.decode([0, c3]) }
        #expect(try strict.decode(strict.encode("café").inputIDs, skipSpecialTokens: true) == "café")
    }
}
