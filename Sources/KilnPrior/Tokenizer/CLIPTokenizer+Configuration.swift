import Foundation

extension CLIPTokenizer {
    /// What `tokenizer_config.json` and `special_tokens_map.json` decide: the length, the special
    /// tokens, padding and truncation sides, and how decoding treats bad bytes and spaces.
    ///
    /// The defaults are transformers' `CLIPTokenizer` defaults with Stable Diffusion 1.x's length
    /// (77). `stableDiffusion2` differs only in its pad token.
    public struct Configuration: Sendable, Equatable {
        public enum Side: String, Sendable {
            case left, right
        }

        /// Which transformers tokenizer the ids follow; the two differ on a few kinds of text.
        public enum Backend: String, Sendable {
            /// transformers 4's slow (Python) `CLIPTokenizer` on its no-ftfy path: what a folder
            /// without a `"backend"` key and with vocab.json and merges.txt gets.
            case slow
            /// The Rust `tokenizers` pipeline: transformers 5's `CLIPTokenizer` (it writes
            /// `"backend": "tokenizers"`) and 4's `CLIPTokenizerFast`. Text is NFC, White_Space runs
            /// become one space, each code point is lower-cased on its own; nothing is dropped and
            /// CJK ideographs are not spaced out; special tokens marked `normalized` are found in
            /// the lower-cased text, the others in the raw text. See
            /// `CLIPPreTokenizer.tokenizersNormalized` and `tokenizersPieces`.
            case tokenizers
        }

        /// `bytes.decode` error handling when decoded tokens are not valid UTF-8 (`errors`).
        public enum DecodeErrors: String, Sendable {
            /// `decode` throws `TokenizerError.invalidUTF8`.
            case strict
            /// Each maximal ill-formed subpart becomes U+FFFD (transformers' default).
            case replace
            /// Ill-formed bytes are dropped.
            case ignore
        }

        /// Token positions of the text encoder, `<|startoftext|>` and `<|endoftext|>` included.
        public var modelMaxLength: Int
        public var bosToken: String
        public var eosToken: String
        public var unkToken: String
        /// The token that pads to `modelMaxLength` (Stable Diffusion 1.x: `<|endoftext|>`;
        /// 2.x and SDXL's second encoder: `!`).
        public var padToken: String
        /// Further special tokens (`additional_special_tokens`, `sep_token`, `cls_token`, `mask_token`):
        /// like the four above, they are cut out of the text before BPE and dropped by
        /// `decode(skipSpecialTokens: true)`.
        public var additionalSpecialTokens: [String]
        public var paddingSide: Side
        public var truncationSide: Side
        public var errors: DecodeErrors
        /// `decode` removes the space before `. ? ! ,` and inside English contractions.
        /// transformers 4.45+ defaults to false; older versions defaulted to true.
        public var cleanUpTokenizationSpaces: Bool
        /// Special-token text in a prompt is tokenized as text instead of becoming the special id
        /// (except `<|startoftext|>`/`<|endoftext|>` typed exactly, see `CLIPTokenizer.tokenize`).
        public var splitSpecialTokens: Bool
        /// Which tokenizer's ids to give (`"backend"` in transformers 5's tokenizer_config.json).
        public var backend: Backend
        /// The special tokens the `.tokenizers` backend finds in the normalized (lower-cased) text
        /// rather than the raw text (`"normalized": true` in tokenizer.json's `added_tokens`).
        public var normalizedSpecialTokens: Set<String>

        /// Added tokens a configuration declares with their ids (`added_tokens_decoder`,
        /// `added_tokens.json`); the tokenizer checks them against the vocabulary.
        var declaredAddedTokens: [DeclaredToken] = []
        /// The content and `normalized` flag each special-token key was last given, for
        /// `normalizedSpecialTokens`.
        var tokenDeclarations: [String: (String, Bool)] = [:]
        var additionalDeclarations: [(String, Bool)] = []

        struct DeclaredToken: Sendable, Equatable {
            var id: Int
            var content: String
            var file: String
            /// Where in the file: `added_tokens_decoder.<id>` or the token itself.
            var key: String
        }

        public init(modelMaxLength: Int = 77, bosToken: String = "<|startoftext|>", eosToken: String = "<|endoftext|>",
                    unkToken: String = "<|endoftext|>", padToken: String = "<|endoftext|>",
                    additionalSpecialTokens: [String] = [], paddingSide: Side = .right, truncationSide: Side = .right,
                    errors: DecodeErrors = .replace, cleanUpTokenizationSpaces: Bool = false,
                    splitSpecialTokens: Bool = false, backend: Backend = .slow,
                    normalizedSpecialTokens: Set<String> = []) {
            self.modelMaxLength = modelMaxLength
            self.bosToken = bosToken
            self.eosToken = eosToken
            self.unkToken = unkToken
            self.padToken = padToken
            self.additionalSpecialTokens = additionalSpecialTokens
            self.paddingSide = paddingSide
            self.truncationSide = truncationSide
            self.errors = errors
            self.cleanUpTokenizationSpaces = cleanUpTokenizationSpaces
            self.splitSpecialTokens = splitSpecialTokens
            self.backend = backend
            self.normalizedSpecialTokens = normalizedSpecialTokens
        }

        /// Stable Diffusion 1.x (`openai/clip-vit-large-patch14`). Under `.tokenizers`,
        /// `<|startoftext|>` is found in the lower-cased text and `<|endoftext|>` only as typed, as in
        /// the tokenizer.json transformers 5 saves from its folder.
        public static let stableDiffusion1 = Configuration(normalizedSpecialTokens: ["<|startoftext|>"])
        /// Stable Diffusion 2.x (OpenCLIP ViT-H/14): pads with `!` (id 0). Its pad token being `!`,
        /// transformers 5 marks `<|endoftext|>` normalized too.
        public static let stableDiffusion2 = Configuration(padToken: "!", normalizedSpecialTokens: ["<|startoftext|>", "<|endoftext|>"])

        /// Equal when every public setting is; the added tokens a file declared (checked once, at
        /// load) do not count.
        public static func == (a: Configuration, b: Configuration) -> Bool {
            a.modelMaxLength == b.modelMaxLength && a.bosToken == b.bosToken && a.eosToken == b.eosToken
                && a.unkToken == b.unkToken && a.padToken == b.padToken
                && a.additionalSpecialTokens == b.additionalSpecialTokens && a.paddingSide == b.paddingSide
                && a.truncationSide == b.truncationSide && a.errors == b.errors
                && a.cleanUpTokenizationSpaces == b.cleanUpTokenizationSpaces && a.splitSpecialTokens == b.splitSpecialTokens
                && a.backend == b.backend && a.normalizedSpecialTokens == b.normalizedSpecialTokens
        }

        /// All special tokens, in transformers' `all_special_tokens` order, without repeats.
        var allSpecialTokens: [String] {
            var seen = Set<String>(), out: [String] = []
            for t in [bosToken, eosToken, unkToken, padToken] + additionalSpecialTokens where seen.insert(t).inserted {
                out.append(t)
            }
            return out
        }
    }
}

// MARK: - Parsing

extension CLIPTokenizer.Configuration {
    /// Reads a `tokenizer_config.json` and, when present, `special_tokens_map.json`, with
    /// transformers' precedence: the map's tokens override the config's, unless the config has
    /// `added_tokens_decoder` (transformers 4.34+ saves), in which case the map is not read.
    ///
    /// Keys that cannot change token ids (`name_or_path`, `add_prefix_space`, ...) are accepted and
    /// ignored; keys Kiln does not know are errors, and so are values transformers would honour in
    /// a way Kiln does not implement (tokens that strip spaces, `do_lower_case: false`, ...).
    /// transformers' legacy `added_tokens.json` ({token: id}) is read only when the config has no
    /// `added_tokens_decoder`, as transformers does; the tokenizer then checks that every added
    /// token is a special token already in the vocabulary under the same id.
    /// - Parameters:
    ///   - configName, mapName, addedTokensName: the paths or names the errors quote.
    public init(tokenizerConfig: Data, specialTokensMap: Data? = nil, addedTokens: Data? = nil,
                configName: String = "tokenizer_config.json", mapName: String = "special_tokens_map.json",
                addedTokensName: String = "added_tokens.json") throws {
        self.init()
        let config = try Self.object(tokenizerConfig, file: configName)
        guard let length = config["model_max_length"] else {
            throw TokenizerError.invalidConfiguration(
                file: configName, key: "model_max_length",
                reason: "is missing; CLIP text encoders have 77 positions: add \"model_max_length\": 77")
        }
        modelMaxLength = try Self.maxLength(length, file: configName)

        for (key, value) in config.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "model_max_length", "added_tokens_decoder":
                break
            case "bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token":
                try setToken(key, value, file: configName)
            case "additional_special_tokens":
                try addAdditional(value, file: configName)
            case "errors":
                guard let text = value as? String, let e = DecodeErrors(rawValue: text) else {
                    throw TokenizerError.unsupportedConfiguration(
                        file: configName, key: key,
                        reason: "\(Self.show(value)) is not supported; use \"replace\" (transformers' default), \"ignore\" or \"strict\"")
                }
                errors = e
            case "padding_side", "truncation_side":
                guard let text = value as? String, let side = Side(rawValue: text) else {
                    throw TokenizerError.invalidConfiguration(file: configName, key: key,
                                                              reason: "is \(Self.show(value)); use \"right\" or \"left\"")
                }
                if key == "padding_side" { paddingSide = side } else { truncationSide = side }
            case "clean_up_tokenization_spaces":
                cleanUpTokenizationSpaces = try Self.bool(value, key: key, file: configName)
            case "split_special_tokens":
                splitSpecialTokens = try Self.bool(value, key: key, file: configName)
            case "do_lower_case":
                guard try Self.bool(value, key: key, file: configName) else {
                    throw TokenizerError.unsupportedConfiguration(
                        file: configName, key: key,
                        reason: "false is not supported: CLIP's vocabulary is lower case and transformers' "
                            + "CLIPTokenizer lower-cases whatever this says; set it to true")
                }
            case "tokenizer_class":
                guard let name = value as? String, ["CLIPTokenizer", "CLIPTokenizerFast"].contains(name) else {
                    throw TokenizerError.unsupportedConfiguration(
                        file: configName, key: key,
                        reason: "\(Self.show(value)) is not a CLIP tokenizer; Kiln reads CLIPTokenizer folders only")
                }
            case "extra_special_tokens":
                guard Self.isEmptyCollection(value) else {
                    throw TokenizerError.unsupportedConfiguration(
                        file: configName, key: key, reason: "named extra special tokens are not supported; remove them")
                }
            case "backend":
                guard let name = value as? String, let b = Backend(rawValue: name), b == .tokenizers else {
                    throw TokenizerError.unsupportedConfiguration(
                        file: configName, key: key,
                        reason: "\(Self.show(value)) is not supported; Kiln mirrors the \"tokenizers\" backend, the one "
                            + "transformers 5 writes for CLIPTokenizer (re-save the folder with transformers 5's "
                            + "CLIPTokenizer, or remove the key to get transformers 4's slow CLIPTokenizer)")
                }
                backend = b
            case "add_prefix_space", "name_or_path", "special_tokens_map_file", "tokenizer_file", "model_input_names",
                 "processor_class", "is_local", "local_files_only":
                break  // CLIPTokenizer ignores these: they cannot change ids (the last two say where transformers 5 loaded from).
            default:
                throw TokenizerError.unknownConfigurationKey(file: configName, key: key)
            }
        }

        if let decoder = config["added_tokens_decoder"] {
            try readAddedTokensDecoder(decoder, file: configName)
        } else if let mapData = specialTokensMap {
            let map = try Self.object(mapData, file: mapName)
            for (key, value) in map.sorted(by: { $0.key < $1.key }) {
                switch key {
                case "bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token":
                    try setToken(key, value, file: mapName)
                case "additional_special_tokens":
                    try addAdditional(value, file: mapName)
                default:
                    throw TokenizerError.unknownConfigurationKey(file: mapName, key: key)
                }
            }
        }
        if config["added_tokens_decoder"] == nil, let addedData = addedTokens {
            try readAddedTokensFile(addedData, file: addedTokensName)
        }
        normalizedSpecialTokens = normalizedSpecialTokensFromDeclarations()
    }

    /// transformers 5 registers the special tokens with the Rust tokenizer in the order bos, eos,
    /// unk, sep, pad, cls, mask, additional; a token declared twice keeps the last declaration's
    /// `normalized` flag, and a plain string counts as `normalized: false` (Stable Diffusion 1.5's
    /// files give `<|startoftext|>` true and `<|endoftext|>` false, as the folder transformers 5
    /// saves from them records). Used when no tokenizer.json says it outright.
    private func normalizedSpecialTokensFromDeclarations() -> Set<String> {
        var flags: [String: Bool] = [:]
        for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] {
            if let (content, normalized) = tokenDeclarations[key] { flags[content] = normalized }
        }
        for (content, normalized) in additionalDeclarations { flags[content] = normalized }
        return Set(flags.filter(\.value).keys)
    }

    private mutating func readAddedTokensFile(_ data: Data, file: String) throws {
        let object = try Self.object(data, file: file)
        for (content, value) in object.sorted(by: { $0.key < $1.key }) {
            guard let id = Self.integer(value) else {
                throw TokenizerError.malformedJSON(file: file, reason: "the id of \"\(content)\" is \(Self.show(value)), not an integer")
            }
            declaredAddedTokens.append(DeclaredToken(id: id, content: content, file: file, key: content))
        }
    }

    private mutating func readAddedTokensDecoder(_ value: Any, file: String) throws {
        guard let entries = value as? [String: Any] else {
            throw TokenizerError.malformedJSON(file: file, reason: "\"added_tokens_decoder\" is not an object of id: token")
        }
        for (idText, entry) in entries.sorted(by: { $0.key < $1.key }) {
            guard let id = Int(idText) else {
                throw TokenizerError.malformedJSON(file: file, reason: "\"added_tokens_decoder\" key \"\(idText)\" is not an integer id")
            }
            let content = try Self.token(entry, key: "added_tokens_decoder.\(idText)", file: file)
            declaredAddedTokens.append(DeclaredToken(id: id, content: content, file: file, key: "added_tokens_decoder.\(idText)"))
        }
    }

    private mutating func setToken(_ key: String, _ value: Any, file: String) throws {
        if value is NSNull {
            throw TokenizerError.unsupportedConfiguration(
                file: file, key: key,
                reason: "null is not supported: CLIP needs this token (Stable Diffusion 1.x uses \"<|endoftext|>\")")
        }
        let content = try Self.token(value, key: key, file: file)
        let normalized = Self.normalizedFlag(value)
        tokenDeclarations[key] = (content, normalized)
        switch key {
        case "bos_token": bosToken = content
        case "eos_token": eosToken = content
        case "unk_token": unkToken = content
        case "pad_token": padToken = content
        default: if !additionalSpecialTokens.contains(content) { additionalSpecialTokens.append(content) }
        }
    }

    private mutating func addAdditional(_ value: Any, file: String) throws {
        guard let list = value as? [Any] else {
            throw TokenizerError.malformedJSON(file: file, reason: "\"additional_special_tokens\" is not a list")
        }
        for item in list {
            let content = try Self.token(item, key: "additional_special_tokens", file: file)
            additionalDeclarations.append((content, Self.normalizedFlag(item)))
            if !additionalSpecialTokens.contains(content) { additionalSpecialTokens.append(content) }
        }
    }

    /// An `AddedToken` object's `normalized` (false when absent, as for special tokens); false for a string.
    static func normalizedFlag(_ value: Any) -> Bool {
        guard let object = value as? [String: Any], let flag = object["normalized"], isBoolean(flag) else { return false }
        return (flag as? Bool) ?? false
    }

    /// A token given as a string or as an `AddedToken` object. `normalized` and `special` change
    /// nothing for the slow tokenizer; `lstrip`, `rstrip` and `single_word` would, and are refused.
    private static func token(_ value: Any, key: String, file: String) throws -> String {
        if let text = value as? String { return text }
        guard let object = value as? [String: Any], let content = object["content"] as? String else {
            throw TokenizerError.malformedJSON(
                file: file, reason: "\"\(key)\" is \(show(value)), neither a string nor an object with a \"content\" string")
        }
        for (flag, flagValue) in object.sorted(by: { $0.key < $1.key }) {
            switch flag {
            case "content", "__type", "normalized", "special":
                break
            case "lstrip", "rstrip", "single_word":
                if try bool(flagValue, key: "\(key).\(flag)", file: file) {
                    throw TokenizerError.unsupportedConfiguration(
                        file: file, key: "\(key).\(flag)",
                        reason: "true is not supported (Kiln's special tokens never absorb neighbouring spaces); set it to false")
                }
            default:
                throw TokenizerError.unknownConfigurationKey(file: file, key: "\(key).\(flag)")
            }
        }
        return content
    }

    // MARK: JSON helpers

    static func object(_ data: Data, file: String) throws -> [String: Any] {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw TokenizerError.malformedJSON(file: file, reason: "\(error.localizedDescription)")
        }
        guard let object = parsed as? [String: Any] else {
            throw TokenizerError.malformedJSON(file: file, reason: "the top level is not an object")
        }
        return object
    }

    /// JSONSerialization gives NSNumber for numbers and booleans alike; booleans report `char`.
    static func isBoolean(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    static func integer(_ value: Any) -> Int? {
        guard let number = value as? NSNumber, !isBoolean(value) else { return nil }
        let d = number.doubleValue
        guard d.rounded() == d, abs(d) < 1e15 else { return nil }
        return Int(d)
    }

    private static func maxLength(_ value: Any, file: String) throws -> Int {
        guard let n = integer(value), (2...1 << 20).contains(n) else {
            throw TokenizerError.invalidConfiguration(
                file: file, key: "model_max_length",
                reason: "is \(show(value)), not a length from 2 to 1048576 (transformers writes 1e30 for "
                    + "\"no limit\"); CLIP text encoders have 77 positions: set it to 77")
        }
        return n
    }

    private static func bool(_ value: Any, key: String, file: String) throws -> Bool {
        guard isBoolean(value), let b = value as? Bool else {
            throw TokenizerError.invalidConfiguration(file: file, key: key, reason: "is \(show(value)), not true or false")
        }
        return b
    }

    private static func isEmptyCollection(_ value: Any) -> Bool {
        if let d = value as? [String: Any] { return d.isEmpty }
        if let a = value as? [Any] { return a.isEmpty }
        return value is NSNull
    }

    static func show(_ value: Any) -> String {
        if value is NSNull { return "null" }
        if let s = value as? String { return "\"\(s)\"" }
        return "\(value)"
    }
}
