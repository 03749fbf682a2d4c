import Foundation

extension CLIPTokenizer {
    /// Loads a diffusers pipeline's `tokenizer/` folder: `tokenizer_config.json` and either
    /// `vocab.json` + `merges.txt` (transformers 4 saves; with `special_tokens_map.json` and
    /// `added_tokens.json` read when present, as transformers does) or `tokenizer.json` alone (what
    /// transformers 5's `save_pretrained` writes). When a folder has both, vocab.json and merges.txt
    /// are read and tokenizer.json is not (the hub's CLIP folders hold the same tokens in both).
    ///
    /// The ids follow `backend` when given, else the folder: `"backend": "tokenizers"` in
    /// tokenizer_config.json, or a folder with only tokenizer.json, gives transformers 5's ids
    /// (`.tokenizers`); a transformers 4 folder gives 4's slow `CLIPTokenizer`'s (`.slow`).
    /// transformers 5 reads a transformers 4 folder with its `.tokenizers` pipeline too.
    /// - Throws: `TokenizerError`, naming the file at fault and what to do.
    public init(folder: URL, backend: Configuration.Backend? = nil) throws {
        func path(_ name: String) -> URL { folder.appendingPathComponent(name) }
        func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name).path) }
        func read(_ name: String, fix: String?) throws -> Data? {
            let url = path(name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                if let fix { throw TokenizerError.missingFile(file: url.path, fix: fix) }
                return nil
            }
            do {
                return try Data(contentsOf: url)
            } catch {
                throw TokenizerError.unreadableFile(file: url.path, reason: error.localizedDescription)
            }
        }
        let pipelineFolder = "pass the tokenizer/ folder of a diffusers pipeline, which holds tokenizer_config.json and "
            + "vocab.json with merges.txt (transformers 4), or tokenizer.json (transformers 5)"
        let config = try read("tokenizer_config.json", fix: pipelineFolder
            + " (a minimal tokenizer_config.json: {\"model_max_length\": 77})")!
        let fromTokenizerJSON = !exists("vocab.json") && !exists("merges.txt") && exists("tokenizer.json")
        var configuration = try Configuration(
            tokenizerConfig: config, specialTokensMap: try read("special_tokens_map.json", fix: nil),
            addedTokens: fromTokenizerJSON ? nil : try read("added_tokens.json", fix: nil),
            configName: path("tokenizer_config.json").path, mapName: path("special_tokens_map.json").path,
            addedTokensName: path("added_tokens.json").path)
        guard fromTokenizerJSON else {
            if let backend { configuration.backend = backend }
            let vocabulary = try read("vocab.json", fix: pipelineFolder)!
            let merges = try read("merges.txt", fix: pipelineFolder)!
            try self.init(vocabulary: vocabulary, merges: merges, configuration: configuration,
                          vocabularyName: path("vocab.json").path, mergesName: path("merges.txt").path)
            return
        }
        // Only the Rust tokenizer reads tokenizer.json, so its ids are the default here.
        configuration.backend = backend ?? .tokenizers
        let name = path("tokenizer.json").path
        let file = try TokenizerJSON(try read("tokenizer.json", fix: pipelineFolder)!, file: name)
        for (token, key, configured) in [(file.clsToken, "post_processor.cls", configuration.bosToken),
                                         (file.sepToken, "post_processor.sep", configuration.eosToken)] where token != configured {
            throw TokenizerError.invalidConfiguration(
                file: name, key: key,
                reason: "is \"\(token)\" but tokenizer_config.json's \(key.hasSuffix("cls") ? "bos_token" : "eos_token") is "
                    + "\"\(configured)\"; Kiln puts the configured tokens around the text: make them agree")
        }
        configuration.normalizedSpecialTokens = file.normalizedTokens
        configuration.declaredAddedTokens += file.addedTokens
        try self.init(vocabulary: file.vocabulary, mergeLines: file.merges, configuration: configuration,
                      vocabularyName: "\(name) model.vocab", mergesName: "\(name) model.merges")
    }

    /// A tokenizer from the contents of `vocab.json` (`{token: id}`) and `merges.txt` (a
    /// `#version` line, then one `left right` pair per line in rank order).
    /// - Parameters:
    ///   - vocabularyName, mergesName: the paths or names the errors quote.
    public init(vocabulary: Data, merges: Data, configuration: Configuration = .stableDiffusion1,
                vocabularyName: String = "vocab.json", mergesName: String = "merges.txt") throws {
        let parsed: [String: Int]
        do {
            parsed = try JSONDecoder().decode([String: Int].self, from: vocabulary)
        } catch let error as DecodingError {
            throw TokenizerError.malformedJSON(file: vocabularyName, reason: Self.describe(error))
        }
        try self.init(vocabulary: parsed, mergeLines: try Self.parseMerges(merges, file: mergesName),
                      configuration: configuration, vocabularyName: vocabularyName, mergesName: mergesName)
    }

    /// A tokenizer from a vocabulary and merges in rank order (the first merges first).
    public init(vocabulary: [String: Int], merges: [(String, String)], configuration: Configuration = .stableDiffusion1) throws {
        let lines = merges.enumerated().map { MergeLine(left: $1.0, right: $1.1, line: $0 + 2) }
        try self.init(vocabulary: vocabulary, mergeLines: lines, configuration: configuration,
                      vocabularyName: "vocab.json", mergesName: "merges.txt")
    }

    struct MergeLine {
        var left: String
        var right: String
        /// 1-based line in merges.txt, the header being line 1.
        var line: Int
    }

    init(vocabulary: [String: Int], mergeLines: [MergeLine], configuration: Configuration,
         vocabularyName: String, mergesName: String) throws {
        // Ids: exactly 0..<n, one token each.
        let n = vocabulary.count
        var tokens = [String?](repeating: nil, count: n)
        for (token, id) in vocabulary.sorted(by: { $0.value < $1.value }) {
            guard id >= 0, id < n else {
                throw TokenizerError.invalidVocabulary(
                    file: vocabularyName, reason: "token \"\(token)\" has id \(id), outside 0..<\(n) (ids must run from 0 without gaps)")
            }
            if let other = tokens[id] {
                throw TokenizerError.invalidVocabulary(file: vocabularyName, reason: "tokens \"\(other)\" and \"\(token)\" share id \(id)")
            }
            tokens[id] = token
        }
        let allTokens = tokens.map { $0! }

        // Every token spelt in byte symbols, so that every id decodes.
        var tokenBytes: [[UInt8]] = []
        tokenBytes.reserveCapacity(n)
        for (id, token) in allTokens.enumerated() {
            guard let bytes = ByteLevel.bytes(ofToken: token) else {
                let bad = token.unicodeScalars.first { ByteLevel.bytes(ofToken: String($0)) == nil }!
                throw TokenizerError.invalidVocabulary(
                    file: vocabularyName,
                    reason: "token \"\(token)\" (id \(id)) holds U+\(String(bad.value, radix: 16, uppercase: true)), "
                        + "which is not one of the 256 byte symbols of bytes_to_unicode")
            }
            tokenBytes.append(bytes)
        }

        // The 256 byte symbols, bare and with </w>: every piece of text can be spelt with them.
        var symbolIDs = [Int32](repeating: 0, count: 256), finalSymbolIDs = [Int32](repeating: 0, count: 256)
        for b in 0..<256 {
            let symbol = String(ByteLevel.byteToScalar[b])
            guard let bare = vocabulary[symbol], let final = vocabulary[symbol + "</w>"] else {
                throw TokenizerError.invalidVocabulary(
                    file: vocabularyName,
                    reason: "the symbol of byte \(b) (\"\(symbol)\" and \"\(symbol)</w>\") is missing; CLIP vocabularies "
                        + "start with all 256 byte symbols and their </w> forms")
            }
            symbolIDs[b] = Int32(bare)
            finalSymbolIDs[b] = Int32(final)
        }

        // Merges, in rank order: both parts and the result in the vocabulary, each pair once.
        var merges: [UInt64: ByteLevelBPE.Merge] = [:]
        var firstLine: [UInt64: Int] = [:]
        for (rank, m) in mergeLines.prefix(Self.maximumMerges).enumerated() {
            let text = "\(m.left) \(m.right)"
            for part in [m.left, m.right, m.left + m.right] where vocabulary[part] == nil {
                throw TokenizerError.invalidMerge(
                    file: mergesName, line: m.line, text: text,
                    reason: "\"\(part)\" is not in \(vocabularyName) (the vocabulary and merges are from different tokenizers?)")
            }
            let key = ByteLevelBPE.key(Int32(vocabulary[m.left]!), Int32(vocabulary[m.right]!))
            if let earlier = firstLine[key] {
                throw TokenizerError.invalidMerge(file: mergesName, line: m.line, text: text,
                                                  reason: "repeats the merge of line \(earlier)")
            }
            firstLine[key] = m.line
            merges[key] = ByteLevelBPE.Merge(rank: Int32(rank), result: Int32(vocabulary[m.left + m.right]!))
        }

        // Special tokens: in the vocabulary; declared added tokens must be these, under their ids.
        func specialID(_ token: String, key: String) throws -> Int {
            guard let id = vocabulary[token] else {
                throw TokenizerError.invalidConfiguration(
                    file: "tokenizer_config.json/special_tokens_map.json", key: key,
                    reason: "is \"\(token)\", which is not in \(vocabularyName); special tokens must be vocabulary "
                        + "tokens (CLIP: \"<|startoftext|>\", \"<|endoftext|>\"; Stable Diffusion 2 pads with \"!\")")
            }
            return id
        }
        bosTokenID = try specialID(configuration.bosToken, key: "bos_token")
        eosTokenID = try specialID(configuration.eosToken, key: "eos_token")
        unkTokenID = try specialID(configuration.unkToken, key: "unk_token")
        padTokenID = try specialID(configuration.padToken, key: "pad_token")
        var specials: [SpecialToken] = []
        for token in configuration.allSpecialTokens where !token.isEmpty {
            specials.append(SpecialToken(scalars: Array(token.unicodeScalars), id: try specialID(token, key: "additional_special_tokens"),
                                         normalized: configuration.normalizedSpecialTokens.contains(token)))
        }
        let specialContents = Set(configuration.allSpecialTokens)
        for declared in configuration.declaredAddedTokens {
            guard vocabulary[declared.content] == declared.id, specialContents.contains(declared.content) else {
                throw TokenizerError.unsupportedConfiguration(
                    file: declared.file, key: declared.key,
                    reason: "added token \"\(declared.content)\" with id \(declared.id) is not a special token of \(vocabularyName) under that id; "
                        + "tokens added beyond the CLIP vocabulary (e.g. textual inversion) are not supported")
            }
        }

        var seeded: [[UInt8]: Int32] = [:]
        for literal in ["<|startoftext|>", "<|endoftext|>"] {
            seeded[Array(literal.utf8)] = Int32(vocabulary[literal] ?? unkTokenID)
        }

        self.configuration = configuration
        self.tokens = allTokens
        self.tokenBytes = tokenBytes
        self.idsByToken = vocabulary
        self.bpe = ByteLevelBPE(symbolIDs: symbolIDs, finalSymbolIDs: finalSymbolIDs, merges: merges, seededTokens: seeded)
        self.specialTokens = specials.sorted { $0.scalars.count > $1.scalars.count }
        self.specialIDs = Set(specials.map(\.id))
    }

    // MARK: merges.txt

    /// transformers reads `text.strip().split("\n")[1:]`, and each line's `split()`: the first line
    /// is skipped unread, whatever it holds. Kiln asks for it to be the `#version` header, since a
    /// file without one would silently lose its first merge.
    static func parseMerges(_ data: Data, file: String) throws -> [MergeLine] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError.unreadableFile(file: file, reason: "it is not UTF-8 text")
        }
        let scalars = Array(text.unicodeScalars)
        let body = PythonText.strip(scalars)
        var lineNumber = 1 + scalars[..<body.startIndex].filter { $0 == "\n" }.count
        var lines: [MergeLine] = []
        var sawHeader = false
        for raw in body.split(separator: "\n", omittingEmptySubsequences: false) {
            defer { lineNumber += 1 }
            let parts = raw.split(whereSeparator: PythonText.isSpace).map { String(String.UnicodeScalarView($0)) }
            let shown = String(String.UnicodeScalarView(raw.prefix(80)))
            if !sawHeader {
                guard parts.first?.hasPrefix("#version") == true else {
                    throw TokenizerError.invalidMerge(
                        file: file, line: lineNumber, text: shown,
                        reason: "the first line must be the \"#version: 0.2\" header (transformers skips the first "
                            + "line unread, so without a header the first merge would be lost)")
                }
                sawHeader = true
                continue
            }
            if lines.count == maximumMerges { break }
            guard parts.count == 2 else {
                throw TokenizerError.invalidMerge(file: file, line: lineNumber, text: shown,
                                                  reason: "a merge is two tokens separated by a space")
            }
            lines.append(MergeLine(left: parts[0], right: parts[1], line: lineNumber))
        }
        guard sawHeader else {
            throw TokenizerError.invalidMerge(file: file, line: 1, text: "",
                                              reason: "the file is empty; it needs the \"#version: 0.2\" header and the merges")
        }
        return lines
    }

    static func describe(_ error: DecodingError) -> String {
        func at(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "" : " at \"\(path)\""
        }
        switch error {
        case let .typeMismatch(_, context), let .valueNotFound(_, context):
            return "not an object of token: integer id\(at(context))"
        case let .keyNotFound(key, context):
            return "missing \"\(key.stringValue)\"\(at(context))"
        case let .dataCorrupted(context):
            return "\(context.debugDescription)\(at(context))"
        @unknown default:
            return "\(error)"
        }
    }
}
