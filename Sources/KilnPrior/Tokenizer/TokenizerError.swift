/// Why a tokenizer could not be loaded, or an id sequence decoded.
///
/// Every loading case carries `file`, the path (or bare name when the contents came from memory)
/// of the file at fault; the description says what is wrong, where, and how to fix it.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A file the tokenizer needs is not in the folder.
    case missingFile(file: String, fix: String)
    /// The file exists but could not be read, or is not UTF-8.
    case unreadableFile(file: String, reason: String)
    /// The file is not valid JSON, or not the JSON shape expected (e.g. an id that is not an integer).
    case malformedJSON(file: String, reason: String)
    /// vocab.json is valid JSON but not a CLIP vocabulary (ids, byte symbols).
    case invalidVocabulary(file: String, reason: String)
    /// A line of merges.txt (1-based, counting the `#version` header), or an entry of tokenizer.json's
    /// `model.merges` (1-based), that Kiln cannot use.
    case invalidMerge(file: String, line: Int, text: String, reason: String)
    /// A configuration value of the right key but a wrong value or type.
    case invalidConfiguration(file: String, key: String, reason: String)
    /// A configuration key Kiln does not know, so cannot promise to honour.
    case unknownConfigurationKey(file: String, key: String)
    /// A configuration feature transformers has and Kiln does not implement.
    case unsupportedConfiguration(file: String, key: String, reason: String)
    /// `decode` met an id that is not in the vocabulary.
    case unknownTokenID(Int, vocabularySize: Int)
    /// `decode` under `errors: "strict"` met bytes that are not UTF-8, at `byteOffset` of the text.
    case invalidUTF8(byteOffset: Int)

    public var description: String {
        switch self {
        case let .missingFile(file, fix):
            return "\(file) is missing; \(fix)"
        case let .unreadableFile(file, reason):
            return "\(file) could not be read: \(reason)"
        case let .malformedJSON(file, reason):
            return "\(file) is not the JSON expected: \(reason); re-save it with transformers' "
                + "save_pretrained or copy it again from the pipeline's tokenizer/ folder"
        case let .invalidVocabulary(file, reason):
            return "\(file) is not a CLIP byte-level BPE vocabulary: \(reason); use the vocab.json "
                + "that came with merges.txt (or the whole tokenizer.json) in the pipeline's tokenizer/ folder"
        case let .invalidMerge(file, line, text, reason):
            return "\(file) line \(line) (\"\(text)\"): \(reason); use the merges.txt that came with "
                + "vocab.json (or the whole tokenizer.json) in the pipeline's tokenizer/ folder"
        case let .invalidConfiguration(file, key, reason):
            return "\(file): \"\(key)\" \(reason)"
        case let .unknownConfigurationKey(file, key):
            return "\(file): unknown key \"\(key)\"; Kiln cannot tell whether it changes the token ids, "
                + "so it refuses it: remove the key if transformers' CLIPTokenizer ignores it"
        case let .unsupportedConfiguration(file, key, reason):
            return "\(file): \"\(key)\": \(reason)"
        case let .unknownTokenID(id, size):
            return "token id \(id) is not in the vocabulary (ids are 0..<\(size)); decode ids this tokenizer produced"
        case let .invalidUTF8(offset):
            return "the decoded bytes are not UTF-8 at byte \(offset) (errors: \"strict\"); "
                + "decode with errors \"replace\" or \"ignore\" to get text anyway"
        }
    }
}
