import Foundation
@testable import KilnPrior
import Testing

/// The real CLIP tokenizer (49,408 tokens) as `tools/make_clip_tokenizer_fixtures.py` writes it:
/// Stable Diffusion 1.5's folder, the folders transformers 5 saves from it, and transformers 5's ids.
enum CLIPFixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/clip-tokenizer")
    static let sd15 = root.appendingPathComponent("sd15")
    static let transformers5 = root.appendingPathComponent("transformers5")

    struct Case: Decodable {
        var text: String
        var sd15: [Int]
        var transformers5: [Int]
        var transformers5SD2: [Int]

        enum CodingKeys: String, CodingKey {
            case text, sd15, transformers5, transformers5SD2 = "transformers5-sd2"
        }
    }

    struct Goldens: Decodable {
        var vocab_size: Int
        var cases: [Case]
    }

    static let goldens: Goldens = try! JSONDecoder().decode(
        Goldens.self, from: Data(contentsOf: root.appendingPathComponent("goldens.json")))

    /// A temporary copy of the transformers 5 folder with `edit` applied to its tokenizer.json and
    /// tokenizer_config.json; the caller removes it.
    static func editedTransformers5(tokenizerJSON edit: (inout [String: Any]) -> Void = { _ in },
                                    config editConfig: (inout [String: Any]) -> Void = { _ in }) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-clip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: transformers5.appendingPathComponent("tokenizer.json"))) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("tokenizer.json"))
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: transformers5.appendingPathComponent("tokenizer_config.json"))) as! [String: Any]
        editConfig(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        return dir
    }

    /// transformers5-sd2 as transformers 5 saved it: its tokenizer_config.json, and the shared
    /// tokenizer.json with its own `added_tokens` (the only part that differs).
    static func loadSD2() throws -> CLIPTokenizer {
        let folder = root.appendingPathComponent("transformers5-sd2")
        let added = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("tokenizer.added_tokens.json")))
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("tokenizer_config.json"))) as! [String: Any]
        let dir = try editedTransformers5(tokenizerJSON: { $0["added_tokens"] = added }, config: { $0 = config })
        defer { try? FileManager.default.removeItem(at: dir) }
        return try CLIPTokenizer(folder: dir)
    }
}

@Suite("CLIPTokenizer on the real CLIP vocabulary, against transformers 5")
struct CLIPTokenizerTransformers5Tests {
    static let sd15 = try! CLIPTokenizer(folder: CLIPFixture.sd15, backend: .tokenizers)
    static let transformers5 = try! CLIPTokenizer(folder: CLIPFixture.transformers5)

    func check(_ tokenizer: CLIPTokenizer, _ expected: KeyPath<CLIPFixture.Case, [Int]>) {
        #expect(CLIPFixture.goldens.cases.count >= 40)
        for c in CLIPFixture.goldens.cases {
            let ids = tokenizer.encode(c.text).inputIDs
            #expect(ids == c[keyPath: expected], "input_ids of \"\(TokenizerFixture.show(c.text))\"")
        }
    }

    @Test("Stable Diffusion 1.5's folder: transformers 5's ids with the tokenizers backend")
    func sd15Goldens() { check(Self.sd15, \.sd15) }

    @Test("The tokenizer.json-only folder transformers 5 saves loads, with transformers 5's ids")
    func transformers5Goldens() {
        let t = Self.transformers5
        #expect(t.configuration.backend == .tokenizers)
        #expect(t.configuration.normalizedSpecialTokens == ["<|startoftext|>"])
        check(t, \.transformers5)
    }

    @Test("Stable Diffusion 2's settings saved by transformers 5: pads with \"!\"")
    func sd2Goldens() throws {
        let t = try CLIPFixture.loadSD2()
        #expect(t.padTokenID == 0 && t.configuration.padToken == "!")
        #expect(t.configuration.normalizedSpecialTokens == CLIPTokenizer.Configuration.stableDiffusion2.normalizedSpecialTokens)
        check(t, \.transformers5SD2)
    }

    @Test("The vocabulary is CLIP's: 49,408 tokens, the same from either file")
    func vocabulary() {
        for t in [Self.sd15, Self.transformers5] {
            #expect(t.vocabularySize == CLIPFixture.goldens.vocab_size && t.vocabularySize == 49408)
            #expect(t.bosTokenID == 49406 && t.eosTokenID == 49407 && t.padTokenID == 49407 && t.unkTokenID == 49407)
            #expect(t.id(forToken: "a</w>") == 320 && t.id(forToken: "photo</w>") == 1125)
        }
        #expect(Self.sd15.tokens == Self.transformers5.tokens)
        let snowman = CLIPFixture.goldens.cases.first { $0.text == "a photo of a red snowman, front view" }!
        #expect(Self.sd15.encode(snowman.text, padding: .none).inputIDs == Array(snowman.sd15.prefix(11)))
        #expect(snowman.sd15[11...].allSatisfy { $0 == 49407 } && Self.sd15.tokenize(snowman.text).last == "view</w>")
    }

    /// The learnt fixture's goldens also hold `CLIPTokenizerFast`'s ids (transformers 4, the same
    /// Rust pipeline) where they differ from the slow tokenizer's: control and format characters,
    /// ideographs, final sigma, U+0345, ſ, upper-case special tokens.
    @Test("The tokenizers backend gives CLIPTokenizerFast's ids on the learnt fixture's hard cases")
    func fastGoldens() throws {
        var configuration = TokenizerFixture.tokenizer.configuration
        configuration.backend = .tokenizers
        // transformers 4's conversion to the Rust tokenizer marks both special tokens normalized
        // (transformers 5's marks <|endoftext|> raw-only), so <|ENDOFTEXT|> is one token here.
        configuration.normalizedSpecialTokens = ["<|startoftext|>", "<|endoftext|>"]
        let folder = TokenizerFixture.folder
        let t = try CLIPTokenizer(vocabulary: Data(contentsOf: folder.appendingPathComponent("vocab.json")),
                                  merges: Data(contentsOf: folder.appendingPathComponent("merges.txt")), configuration: configuration)
        let cases = TokenizerFixture.variants.first { $0.name == "sd15" }!.cases
        #expect(cases.contains { !$0.fast_agrees })
        for c in cases {
            #expect(t.encode(c.text, padding: .none, truncation: false).inputIDs == (c.fast_ids ?? c.ids),
                    "ids of \"\(TokenizerFixture.show(c.text))\"")
        }
    }

    @Test("Without a backend, a transformers 4 folder keeps the slow tokenizer's ids")
    func slowDefault() throws {
        let slow = try CLIPTokenizer(folder: CLIPFixture.sd15)
        #expect(slow.configuration.backend == .slow)
        // The slow tokenizer spaces out ideographs; the Rust one keeps 日本の城 one word.
        let text = "日本の城"
        #expect(slow.tokenIDs(text) != Self.sd15.tokenIDs(text))
        #expect(slow.tokenIDs("a photo of a red snowman") == Self.sd15.tokenIDs("a photo of a red snowman"))
    }
}

@Suite("tokenizer.json loading errors")
struct TokenizerJSONLoadingTests {
    func error(tokenizerJSON edit: (inout [String: Any]) -> Void = { _ in },
               config editConfig: (inout [String: Any]) -> Void = { _ in }) throws -> TokenizerError? {
        let dir = try CLIPFixture.editedTransformers5(tokenizerJSON: edit, config: editConfig)
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try CLIPTokenizer(folder: dir)
            return nil
        } catch let error as TokenizerError {
            return error
        }
    }

    @Test("Corrupt JSON names tokenizer.json")
    func corrupt() throws {
        let dir = try CLIPFixture.editedTransformers5()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("{\"model\": {\"type\": \"BPE\",".utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        #expect {
            try CLIPTokenizer(folder: dir)
        } throws: { error in
            guard case .malformedJSON(let file, _) = error as? TokenizerError else { return false }
            return file.hasSuffix("tokenizer.json")
        }
    }

    @Test("A model other than BPE, or without merges, is refused by name")
    func model() throws {
        let wordPiece = try error { json in
            var model = json["model"] as! [String: Any]
            model["type"] = "WordPiece"
            json["model"] = model
        }
        guard case .unsupportedConfiguration(let file, let key, let reason) = wordPiece else {
            Issue.record("\(String(describing: wordPiece))"); return
        }
        #expect(file.hasSuffix("tokenizer.json") && key == "model.type" && reason.contains("WordPiece"), "\(wordPiece!)")
        let noMerges = try error { json in
            var model = json["model"] as! [String: Any]
            model["merges"] = nil
            json["model"] = model
        }
        guard case .malformedJSON(_, let mergesReason) = noMerges else { Issue.record("\(String(describing: noMerges))"); return }
        #expect(mergesReason.contains("model.merges"))
        let badMerge = try error { json in
            var model = json["model"] as! [String: Any]
            var merges = model["merges"] as! [Any]
            merges[4] = ["a", "b", "c"]
            model["merges"] = merges
            json["model"] = model
        }
        guard case .invalidMerge(let mergeFile, let line, _, _) = badMerge else { Issue.record("\(String(describing: badMerge))"); return }
        #expect(mergeFile.hasSuffix("tokenizer.json model.merges") && line == 5)
    }

    @Test("Merges written as \"left right\" strings (tokenizers before 0.20) give the same ids")
    func stringMerges() throws {
        let dir = try CLIPFixture.editedTransformers5 { json in
            var model = json["model"] as! [String: Any]
            model["merges"] = (model["merges"] as! [[String]]).map { $0.joined(separator: " ") }
            json["model"] = model
        }
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try CLIPTokenizer(folder: dir)
        for c in CLIPFixture.goldens.cases.prefix(12) {
            #expect(t.encode(c.text).inputIDs == c.transformers5)
        }
    }

    @Test("A pipeline that is not CLIP's is refused, naming the part")
    func pipeline() throws {
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("normalizer", { $0["normalizer"] = ["type": "NFKC"] }),
            ("pre_tokenizer", { $0["pre_tokenizer"] = ["type": "Whitespace"] }),
            ("post_processor", { $0["post_processor"] = ["type": "BertProcessing"] }),
            ("decoder", { $0["decoder"] = ["type": "WordPiece"] }),
            ("model.end_of_word_suffix", { json in
                var model = json["model"] as! [String: Any]
                model["end_of_word_suffix"] = ""
                json["model"] = model
            }),
            ("added_tokens.0.lstrip", { json in
                var added = json["added_tokens"] as! [[String: Any]]
                added[0]["lstrip"] = true
                json["added_tokens"] = added
            }),
        ]
        for (key, edit) in cases {
            let e = try error(tokenizerJSON: edit)
            #expect(e?.description.contains("tokenizer.json") == true && e?.description.contains("\"\(key)\"") == true,
                    "\(key): \(String(describing: e))")
        }
        let unknown = try error { $0["extra"] = 1 }
        guard case .unknownConfigurationKey(_, let key) = unknown else { Issue.record("\(String(describing: unknown))"); return }
        #expect(key == "extra")
    }

    @Test("tokenizer_config.json: transformers 5's keys are read; another backend is refused")
    func config() throws {
        let custom = try error(config: { $0["backend"] = "custom" })
        guard case .unsupportedConfiguration(let file, let key, let reason) = custom else {
            Issue.record("\(String(describing: custom))"); return
        }
        #expect(file.hasSuffix("tokenizer_config.json") && key == "backend" && reason.contains("tokenizers"))
        let bos = try error(config: { $0["bos_token"] = "!" })
        #expect(bos?.description.contains("post_processor.cls") == true, "\(String(describing: bos))")
    }
}
