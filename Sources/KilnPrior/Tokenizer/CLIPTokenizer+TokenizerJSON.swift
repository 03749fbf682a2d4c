import Foundation

extension CLIPTokenizer {
    /// What Kiln takes from a Rust `tokenizers` file (`tokenizer.json`, the only vocabulary file
    /// transformers 5 saves): the BPE model's vocabulary and merges, and the added tokens, after
    /// checking that the rest of the pipeline is CLIP's, which `CLIPPreTokenizer` implements.
    struct TokenizerJSON {
        var vocabulary: [String: Int]
        var merges: [MergeLine]
        var addedTokens: [Configuration.DeclaredToken]
        /// The added tokens marked `"normalized": true`.
        var normalizedTokens: Set<String>
        /// The post-processor's `cls` and `sep` tokens: put before and after the text.
        var clsToken: String
        var sepToken: String

        /// CLIP's normalizer and the Split half of its pre-tokenizer, as tokenizers writes them.
        static let clipNormalizer = #"{"normalizers":[{"type":"NFC"},{"content":" ","pattern":{"Regex":"\\s+"},"type":"Replace"},{"type":"Lowercase"}],"type":"Sequence"}"#
        static let clipSplit = #"{"behavior":"Removed","invert":true,"pattern":{"Regex":"<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},"type":"Split"}"#
        /// ByteLevel without `trim_offsets` (offsets only); `use_regex` defaults to true.
        static let clipByteLevel = #"{"add_prefix_space":false,"type":"ByteLevel","use_regex":true}"#

        /// - Parameter file: the path the errors quote.
        init(_ data: Data, file: String) throws {
            let root = try Configuration.object(data, file: file)
            func malformed(_ reason: String) -> TokenizerError { .malformedJSON(file: file, reason: reason) }
            func unsupported(_ key: String, _ value: Any?, _ expected: String) -> TokenizerError {
                .unsupportedConfiguration(
                    file: file, key: key,
                    reason: "\(value.map(Self.canonical) ?? "null") is not CLIP's (\(expected)); Kiln reads CLIP "
                        + "tokenizers only: use the tokenizer.json of a Stable Diffusion pipeline's tokenizer/ folder")
            }
            for key in root.keys.sorted() {
                switch key {
                case "version", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder", "model":
                    break
                case "truncation", "padding":
                    break  // Defaults for calls that name none; transformers sets both on every call, as Kiln's `encode` does.
                default:
                    throw TokenizerError.unknownConfigurationKey(file: file, key: key)
                }
            }

            // Model: BPE with CLIP's settings.
            guard let model = root["model"] as? [String: Any] else { throw malformed("\"model\" is missing or not an object") }
            guard model["type"] as? String == "BPE" else {
                throw unsupported("model.type", model["type"], "\"BPE\"")
            }
            let expectedModel: [(String, String, Bool)] = [  // key, canonical value, may be absent
                ("dropout", "null", true), ("continuing_subword_prefix", "\"\"", true), ("end_of_word_suffix", "\"</w>\"", false),
                ("fuse_unk", "false", true), ("byte_fallback", "false", true), ("ignore_merges", "false", true),
            ]
            for (key, expected, optional) in expectedModel {
                let value = model[key]
                if value == nil, optional { continue }
                if key == "continuing_subword_prefix", value is NSNull { continue }
                guard let value, Self.canonical(value) == expected else { throw unsupported("model.\(key)", model[key], expected) }
            }
            for key in model.keys.sorted() where !["type", "vocab", "merges", "unk_token"].contains(key)
                && !expectedModel.contains(where: { $0.0 == key }) {
                throw TokenizerError.unknownConfigurationKey(file: file, key: "model.\(key)")
            }
            guard let vocab = model["vocab"] else { throw malformed("\"model.vocab\" is missing") }
            guard let vocabObject = vocab as? [String: Any] else { throw malformed("\"model.vocab\" is not an object of token: id") }
            var vocabulary: [String: Int] = [:]
            vocabulary.reserveCapacity(vocabObject.count)
            for (token, value) in vocabObject {
                guard let id = Configuration.integer(value) else {
                    throw malformed("the id of \"\(token)\" in \"model.vocab\" is \(Configuration.show(value)), not an integer")
                }
                vocabulary[token] = id
            }
            self.vocabulary = vocabulary
            guard let mergeList = model["merges"] else { throw malformed("\"model.merges\" is missing") }
            guard let mergeItems = mergeList as? [Any] else { throw malformed("\"model.merges\" is not a list") }
            merges = []
            merges.reserveCapacity(mergeItems.count)
            for (index, item) in mergeItems.enumerated() {
                // tokenizers before 0.20 writes "left right"; later versions ["left", "right"].
                let parts: [String]
                if let text = item as? String {
                    parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                } else if let pair = item as? [Any], pair.allSatisfy({ $0 is String }) {
                    parts = pair.map { $0 as! String }
                } else {
                    parts = []
                }
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw TokenizerError.invalidMerge(
                        file: "\(file) model.merges", line: index + 1, text: Configuration.show(item),
                        reason: "a merge is \"left right\" or [\"left\", \"right\"]")
                }
                merges.append(MergeLine(left: parts[0], right: parts[1], line: index + 1))
            }

            // Normalizer and pre-tokenizer: exactly CLIP's.
            guard let normalizer = root["normalizer"], Self.canonical(normalizer) == Self.clipNormalizer else {
                throw unsupported("normalizer", root["normalizer"], "NFC, Replace \\s+ with a space, Lowercase")
            }
            let pre = root["pre_tokenizer"] as? [String: Any]
            let steps = pre?["pretokenizers"] as? [Any] ?? []
            var byteLevel = steps.count == 2 ? steps[1] as? [String: Any] : nil
            byteLevel?["trim_offsets"] = nil
            if byteLevel != nil, byteLevel?["use_regex"] == nil { byteLevel?["use_regex"] = true }
            guard pre?["type"] as? String == "Sequence", pre?.count == 2, steps.count == 2,
                  Self.canonical(steps[0]) == Self.clipSplit, let byteLevel, Self.canonical(byteLevel) == Self.clipByteLevel else {
                throw unsupported("pre_tokenizer", root["pre_tokenizer"],
                                  "a Sequence of Split on CLIP's pattern, keeping the matches, and ByteLevel without prefix space")
            }

            // Post-processor: <|startoftext|> text <|endoftext|>.
            let post = root["post_processor"] as? [String: Any]
            guard post?["type"] as? String == "RobertaProcessing", let cls = post?["cls"] as? [Any], let sep = post?["sep"] as? [Any],
                  cls.count == 2, sep.count == 2, let clsToken = cls[0] as? String, let sepToken = sep[0] as? String,
                  Configuration.integer(cls[1]) == vocabulary[clsToken], Configuration.integer(sep[1]) == vocabulary[sepToken] else {
                throw unsupported("post_processor", root["post_processor"],
                                  "RobertaProcessing with cls and sep tokens of the vocabulary under their ids")
            }
            self.clsToken = clsToken
            self.sepToken = sepToken

            // The decoder changes no ids; Kiln's decode is transformers' CLIPTokenizer.decode.
            let decoderType = (root["decoder"] as? [String: Any])?["type"] as? String
            guard decoderType == "ByteLevel" || decoderType == "BPEDecoder" else {
                throw unsupported("decoder", root["decoder"], "ByteLevel or BPEDecoder")
            }

            // Added tokens: checked against the vocabulary and the special tokens by the tokenizer.
            guard let added = root["added_tokens"] as? [Any] else { throw malformed("\"added_tokens\" is missing or not a list") }
            addedTokens = []
            normalizedTokens = []
            for (index, item) in added.enumerated() {
                let key = "added_tokens.\(index)"
                guard let entry = item as? [String: Any], let id = entry["id"].flatMap(Configuration.integer),
                      let content = entry["content"] as? String else {
                    throw malformed("\"\(key)\" is not an object with an integer \"id\" and a \"content\" string")
                }
                for (flag, value) in entry.sorted(by: { $0.key < $1.key }) where !["id", "content"].contains(flag) {
                    guard ["special", "normalized", "lstrip", "rstrip", "single_word"].contains(flag) else {
                        throw TokenizerError.unknownConfigurationKey(file: file, key: "\(key).\(flag)")
                    }
                    guard Configuration.isBoolean(value), let on = value as? Bool else {
                        throw TokenizerError.invalidConfiguration(file: file, key: "\(key).\(flag)",
                                                                  reason: "is \(Configuration.show(value)), not true or false")
                    }
                    if on, ["lstrip", "rstrip", "single_word"].contains(flag) {
                        throw TokenizerError.unsupportedConfiguration(
                            file: file, key: "\(key).\(flag)",
                            reason: "true is not supported (Kiln's special tokens never absorb neighbouring spaces); set it to false")
                    }
                    if on, flag == "normalized" { normalizedTokens.insert(content) }
                }
                addedTokens.append(Configuration.DeclaredToken(id: id, content: content, file: file, key: key))
            }
        }

        /// `value` as compact JSON with sorted keys, for comparing and for messages.
        static func canonical(_ value: Any) -> String {
            guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]) else {
                return "\(value)"
            }
            return String(decoding: data, as: UTF8.self)
        }
    }
}
