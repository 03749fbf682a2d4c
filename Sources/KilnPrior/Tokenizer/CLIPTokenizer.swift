import Foundation

/// CLIP's byte-level BPE tokenizer: the same ids as Hugging Face transformers' slow
/// `CLIPTokenizer` (4.x), which is what diffusers pipelines load for Stable Diffusion.
///
/// Text → ids, in transformers' order:
/// 1. Special tokens typed in the text (`<|startoftext|>`, `<|endoftext|>`, and the pad token,
///    e.g. `!` for Stable Diffusion 2) are cut out first and become their ids, leftmost and longest
///    first; `splitSpecialTokens` turns this off.
/// 2. The pieces between them are cleaned as transformers does when `ftfy` is not installed (the
///    path a plain `pip install transformers` takes): control and format characters dropped,
///    whitespace runs become one space, spaces around CJK ideographs, NFC, `str.lower()`;
///    see `CLIPPreTokenizer`. (With ftfy installed, transformers runs `ftfy.fix_text` instead:
///    it straightens curly quotes, folds full-width forms and ligatures, keeps format characters
///    and does not space out ideographs, so prompts with those get other ids.)
/// 3. CLIP's pattern splits words into letter runs, single digits, punctuation runs and English
///    contractions; each piece's UTF-8 bytes go through byte-level BPE with the `</w>`
///    end-of-word marker (`ByteLevelBPE`), cached per piece.
/// 4. `<|startoftext|>` … `<|endoftext|>` around the ids; truncation and padding to
///    `modelMaxLength` (77) as diffusers asks for them (`padding="max_length", truncation=True`).
///
/// Differences from transformers, all on inputs real pipelines do not have: merges.txt lines
/// that are malformed, repeated, or name tokens missing from vocab.json are load errors (the slow
/// tokenizer skips or overwrites them silently; the Rust one also refuses missing tokens); added
/// tokens beyond the vocabulary (textual inversion) are not supported yet; code points assigned
/// after Unicode 14.0 are kept where Python 3.11 drops them as unassigned.
///
/// `CLIPTokenizerFast` (the Rust `tokenizers` port, and transformers 5's only `CLIPTokenizer`)
/// gives different ids for CJK ideographs (no spaces around them), control and format characters
/// (kept), Greek final sigma, U+0345, upper-case spellings of the special tokens, and `\x0b`/`\x0c`
/// (spaces there, dropped here); `tools/make_tokenizer_fixtures.py` lists the cases. Kiln gives
/// those ids too under `Configuration.Backend.tokenizers`, which a folder transformers 5 saved
/// selects (`CLIPTokenizer(folder:backend:)`); `tools/make_clip_tokenizer_fixtures.py` checks it
/// against transformers 5 on the real CLIP vocabulary.
public struct CLIPTokenizer: Sendable {
    /// Model inputs: `inputIDs` and `attentionMask` (1 on tokens, 0 on padding), `[length]` each.
    public struct Encoding: Sendable, Equatable {
        public var inputIDs: [Int]
        public var attentionMask: [Int]

        public init(inputIDs: [Int], attentionMask: [Int]) {
            self.inputIDs = inputIDs
            self.attentionMask = attentionMask
        }
    }

    public enum Padding: Sendable {
        /// No padding: the sequence is as long as the text needs (transformers' default).
        case none
        /// Pad to the maximum length with `padTokenID` (diffusers' `padding="max_length"`).
        case maxLength
    }

    /// The merges transformers' slow tokenizer reads from merges.txt: `49152 - 256 - 2`, the number
    /// of CLIP's merges. Later lines are ignored (the Rust tokenizer would use them).
    public static let maximumMerges = 49152 - 256 - 2

    public let configuration: Configuration
    public let bosTokenID: Int
    public let eosTokenID: Int
    public let unkTokenID: Int
    public let padTokenID: Int

    /// Token strings by id (byte symbols, `</w>` suffix on word ends).
    let tokens: [String]
    /// The bytes each token stands for (`</w>` included as its four bytes), by id.
    let tokenBytes: [[UInt8]]
    let idsByToken: [String: Int]
    let bpe: ByteLevelBPE
    /// Special tokens cut out of the text, longest first.
    let specialTokens: [SpecialToken]
    let specialIDs: Set<Int>

    struct SpecialToken: Sendable {
        var scalars: [Unicode.Scalar]
        var id: Int
        /// Found in the normalized text rather than the raw text (`.tokenizers` backend only).
        var normalized: Bool
    }

    /// Number of tokens in the vocabulary (49408 for CLIP).
    public var vocabularySize: Int { tokens.count }

    /// The id of `token` (a vocabulary string such as `"red</w>"`), or nil.
    public func id(forToken token: String) -> Int? { idsByToken[token] }

    /// The vocabulary string of `id`, or nil when out of range.
    public func token(forID id: Int) -> String? { tokens.indices.contains(id) ? tokens[id] : nil }

    // MARK: - Encoding

    /// The BPE tokens of `text`, without `<|startoftext|>`/`<|endoftext|>` around them
    /// (transformers' `tokenize`).
    public func tokenize(_ text: String) -> [String] {
        tokenIDs(text).map { tokens[$0] }
    }

    /// The ids of `text`, without `<|startoftext|>`/`<|endoftext|>` around them
    /// (transformers' `tokenize` then `convert_tokens_to_ids`).
    /// - Complexity: O(n) in the text's length for cached pieces; a new piece of b bytes costs
    ///   O(b · merges applied) once.
    public func tokenIDs(_ text: String) -> [Int] {
        let scalars = Array(text.unicodeScalars)
        var out: [Int] = []
        out.reserveCapacity(scalars.count / 3 + 2)
        switch configuration.backend {
        case .slow:
            forEachSegment(scalars, normalized: nil, into: &out) { appendTextIDs($0, into: &$1) }
        case .tokenizers:
            // Raw-text special tokens first, then the rest normalized, then the normalized ones.
            forEachSegment(scalars, normalized: false, into: &out) { segment, out in
                let text = CLIPPreTokenizer.tokenizersNormalized(segment)
                forEachSegment(text, normalized: true, into: &out) { appendTokenizersIDs($0, into: &$1) }
            }
        }
        return out
    }

    /// Calls `body` on the text between special tokens, appending the special tokens' ids in
    /// between; only the special tokens whose `normalized` flag is `normalized` (all when nil),
    /// and none under `splitSpecialTokens`.
    private func forEachSegment(_ scalars: [Unicode.Scalar], normalized: Bool?, into out: inout [Int],
                                _ body: (ArraySlice<Unicode.Scalar>, inout [Int]) -> Void) {
        if configuration.splitSpecialTokens {
            body(scalars[...], &out)
            return
        }
        var start = 0, i = 0
        while i < scalars.count {
            if let special = specialToken(in: scalars, at: i, normalized: normalized) {
                body(scalars[start..<i], &out)
                out.append(special.id)
                i += special.scalars.count
                start = i
            } else {
                i += 1
            }
        }
        body(scalars[start..<scalars.count], &out)
    }

    /// `text` as model inputs: `<|startoftext|>` ids `<|endoftext|>`, cut to `maxLength` when
    /// `truncation` (the text's ids lose their end, or their start with `truncationSide == .left`;
    /// both special tokens stay), then padded to `maxLength` on `paddingSide`.
    ///
    /// The defaults are diffusers' call: `tokenizer(prompt, padding="max_length",
    /// max_length=tokenizer.model_max_length, truncation=True)`.
    /// - Parameter maxLength: defaults to `configuration.modelMaxLength`; at least 2.
    public func encode(_ text: String, padding: Padding = .maxLength, truncation: Bool = true,
                       maxLength: Int? = nil) -> Encoding {
        let length = maxLength ?? configuration.modelMaxLength
        precondition(length >= 2, "maxLength must leave room for <|startoftext|> and <|endoftext|>, got \(length)")
        var ids = tokenIDs(text)
        if truncation, ids.count + 2 > length {
            ids = configuration.truncationSide == .right ? Array(ids.prefix(length - 2)) : Array(ids.suffix(length - 2))
        }
        var inputIDs = [bosTokenID] + ids + [eosTokenID]
        var mask = [Int](repeating: 1, count: inputIDs.count)
        if padding == .maxLength, inputIDs.count < length {
            let pad = length - inputIDs.count
            if configuration.paddingSide == .right {
                inputIDs += [Int](repeating: padTokenID, count: pad)
                mask += [Int](repeating: 0, count: pad)
            } else {
                inputIDs = [Int](repeating: padTokenID, count: pad) + inputIDs
                mask = [Int](repeating: 0, count: pad) + mask
            }
        }
        return Encoding(inputIDs: inputIDs, attentionMask: mask)
    }

    private func specialToken(in scalars: [Unicode.Scalar], at i: Int, normalized: Bool?) -> SpecialToken? {
        for special in specialTokens where special.scalars[0] == scalars[i] && i + special.scalars.count <= scalars.count
            && (normalized == nil || special.normalized == normalized) {
            if scalars[i..<(i + special.scalars.count)].elementsEqual(special.scalars) { return special }
        }
        return nil
    }

    /// The `.tokenizers` backend's ids of normalized text holding no special token.
    private func appendTokenizersIDs(_ text: ArraySlice<Unicode.Scalar>, into out: inout [Int]) {
        guard !text.isEmpty else { return }
        let scalars = Array(text)
        var bytes: [UInt8] = []
        for range in CLIPPreTokenizer.tokenizersPieces(scalars) {
            bytes.removeAll(keepingCapacity: true)
            for s in scalars[range] { UTF8.encode(s) { bytes.append($0) } }
            bpe.encode(bytes, into: &out)
        }
    }

    private func appendTextIDs(_ text: ArraySlice<Unicode.Scalar>, into out: inout [Int]) {
        guard !text.isEmpty else { return }
        var bytes: [UInt8] = []
        for word in CLIPPreTokenizer.words(text) {
            for range in CLIPPreTokenizer.matches(word) {
                bytes.removeAll(keepingCapacity: true)
                for s in word[range] { UTF8.encode(s) { bytes.append($0) } }
                bpe.encode(bytes, into: &out)
            }
        }
    }

    // MARK: - Decoding

    /// The text of `ids` (transformers' `decode`): the tokens' bytes, `</w>` as a space, UTF-8
    /// decoded under `configuration.errors`, outer whitespace stripped, then (when
    /// `cleanUpTokenizationSpaces`) spaces before `. ? ! ,` and in contractions removed.
    /// Special tokens print as their text (`<|startoftext|>a photo <|endoftext|>`) unless skipped.
    /// - Throws: `TokenizerError.unknownTokenID`, or `.invalidUTF8` under `errors: .strict`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard tokens.indices.contains(id) else { throw TokenizerError.unknownTokenID(id, vocabularySize: tokens.count) }
            if skipSpecialTokens, specialIDs.contains(id) { continue }
            bytes += tokenBytes[id]
        }
        // "</w>" → " " on bytes equals Python's replace on the decoded text: ASCII bytes always
        // decode to themselves and never join an ill-formed subpart.
        bytes = PythonText.replace(bytes, Array("</w>".utf8), [0x20])
        var text = Array(PythonText.strip(try PythonText.decodeUTF8(bytes, errors: configuration.errors)))
        if configuration.cleanUpTokenizationSpaces {
            for (old, new) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                               (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
                text = PythonText.replace(text, Array(old.unicodeScalars), Array(new.unicodeScalars))
            }
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: text)
        return String(view)
    }
}
