/// Why a safetensors file could not be read or written, or a tensor could not be used.
///
/// Every reading case carries `source`, the file path or `"<memory>"`, and, where one is
/// involved, the tensor name; the description says what is wrong, where, and how to fix it.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    // MARK: File and header

    /// The file could not be opened, mapped, written or renamed (`reason` includes the system's).
    case io(path: String, reason: String)
    /// The file has fewer than the 8 bytes of the header-length prefix.
    case fileTooShort(source: String, size: Int)
    /// The header length prefix is larger than the reference implementation's limit (100 MB).
    case headerTooLarge(source: String, headerLength: UInt64, limit: Int)
    /// The header length prefix points past the end of the file.
    case headerBeyondFile(source: String, headerLength: UInt64, fileSize: Int)
    /// The header is not UTF-8 JSON; `offset` is the byte offset in the header (0 = first byte after
    /// the 8-byte prefix).
    case headerNotJSON(source: String, offset: Int, reason: String)
    /// The header is JSON but not an object (`{…}`).
    case headerNotObject(source: String)
    /// The same key appears twice in the header or in `__metadata__`.
    case duplicateKey(source: String, key: String)
    /// `__metadata__` is not an object of strings.
    case invalidMetadata(source: String, key: String?, reason: String)

    // MARK: Tensor entries

    /// A tensor entry is not an object, or one of its fields has the wrong JSON type.
    case invalidEntry(source: String, tensor: String, reason: String)
    /// A tensor entry lacks `dtype`, `shape` or `data_offsets`.
    case missingField(source: String, tensor: String, field: String)
    /// A dtype no safetensors version defines.
    case unknownDType(source: String, tensor: String, dtype: String)
    /// A shape with a negative, non-integer or too large dimension, or whose product overflows.
    case invalidShape(source: String, tensor: String, reason: String)
    /// `data_offsets` that are malformed, reversed or past the end of the data buffer.
    case invalidOffsets(source: String, tensor: String, reason: String)
    /// The byte range does not hold exactly `shape` elements of `dtype`.
    case byteCountMismatch(source: String, tensor: String, dtype: SafeTensorsDType, shape: [Int],
                           expectedBytes: Int, actualBytes: Int)
    /// Two tensors share bytes.
    case overlappingTensors(source: String, first: String, second: String)
    /// Bytes of the data buffer that belong to no tensor, between `start` and `end` (buffer offsets).
    case gapInBuffer(source: String, start: Int, end: Int, before: String)
    /// The data buffer is longer than the tensors cover (`covered` < `bufferBytes`).
    case trailingBytes(source: String, covered: Int, bufferBytes: Int)

    // MARK: Using tensors

    /// No tensor has this name; `closeNames` are the most similar names in the file.
    case tensorNotFound(source: String, name: String, closeNames: [String])
    /// A tensor has another shape than the model expects.
    case shapeMismatch(source: String, tensor: String, expected: [Int], actual: [Int])
    /// A dtype Kiln cannot convert to `Float` (8/6/4-bit floats, complex).
    case unsupportedDType(source: String, tensor: String, dtype: SafeTensorsDType)
    /// An integer element that has no exact `Float` value (|v| > 2²⁴ and not representable).
    case notRepresentable(source: String, tensor: String, index: Int, value: String)

    // MARK: Writing

    /// A tensor handed to `SafeTensorsWriter` is invalid (`reason` says how).
    case invalidTensor(name: String, reason: String)

    public var description: String {
        let corrupt = "the file is truncated or corrupt, or was not written by a safetensors writer: "
            + "re-download it or re-save it with safetensors (save_file)"
        switch self {
        case .io(let path, let reason):
            return "\(path): \(reason)"
        case .fileTooShort(let s, let size):
            return "\(s): \(size) bytes is too short for a safetensors file (it starts with an 8-byte "
                + "header length); \(corrupt)"
        case .headerTooLarge(let s, let length, let limit):
            return "\(s): the header length prefix says \(length) bytes, over the \(limit)-byte limit "
                + "of safetensors headers; this is not a safetensors file or it is corrupt"
        case .headerBeyondFile(let s, let length, let size):
            return "\(s): the header length prefix says \(length) bytes but the file has only \(size) "
                + "bytes; \(corrupt)"
        case .headerNotJSON(let s, let offset, let reason):
            return "\(s): the header is not valid JSON at byte \(offset) of the header: \(reason); \(corrupt)"
        case .headerNotObject(let s):
            return "\(s): the header must be a JSON object `{name: {dtype, shape, data_offsets}, ...}`; \(corrupt)"
        case .duplicateKey(let s, let key):
            return "\(s): the header has the key `\(key)` twice; \(corrupt)"
        case .invalidMetadata(let s, let key, let reason):
            let at = key.map { " key `\($0)`" } ?? ""
            return "\(s): `__metadata__`\(at): \(reason); it must be an object of string values"
        case .invalidEntry(let s, let tensor, let reason):
            return "\(s): tensor `\(tensor)`: \(reason); \(corrupt)"
        case .missingField(let s, let tensor, let field):
            return "\(s): tensor `\(tensor)` has no `\(field)`; every entry needs dtype, shape and "
                + "data_offsets; \(corrupt)"
        case .unknownDType(let s, let tensor, let dtype):
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(s): tensor `\(tensor)` has dtype `\(dtype)`, which is not a safetensors dtype "
                + "(known: \(known))"
        case .invalidShape(let s, let tensor, let reason):
            return "\(s): tensor `\(tensor)`: \(reason); \(corrupt)"
        case .invalidOffsets(let s, let tensor, let reason):
            return "\(s): tensor `\(tensor)`: \(reason); \(corrupt)"
        case .byteCountMismatch(let s, let tensor, let dtype, let shape, let expected, let actual):
            return "\(s): tensor `\(tensor)` is \(dtype) \(shape), which needs \(expected) bytes, but its "
                + "data_offsets span \(actual) bytes; \(corrupt)"
        case .overlappingTensors(let s, let first, let second):
            return "\(s): tensors `\(first)` and `\(second)` overlap in the data buffer; \(corrupt)"
        case .gapInBuffer(let s, let start, let end, let before):
            return "\(s): data bytes \(start)..<\(end) (before tensor `\(before)`) belong to no tensor; "
                + "safetensors requires the tensors to tile the buffer; \(corrupt)"
        case .trailingBytes(let s, let covered, let buffer):
            return "\(s): the tensors cover \(covered) bytes of data but the file holds \(buffer) "
                + "(\(buffer - covered) bytes extra); \(corrupt)"
        case .tensorNotFound(let s, let name, let close):
            let hint = close.isEmpty ? "" : "; similar names: " + close.map { "`\($0)`" }.joined(separator: ", ")
            return "\(s): no tensor named `\(name)`\(hint); check the checkpoint matches the model "
                + "(architecture, version, prefix)"
        case .shapeMismatch(let s, let tensor, let expected, let actual):
            return "\(s): tensor `\(tensor)` has shape \(actual), but the model expects \(expected); "
                + "the checkpoint was made for a different configuration: check config.json"
        case .unsupportedDType(let s, let tensor, let dtype):
            return "\(s): tensor `\(tensor)` is \(dtype), which Kiln cannot read; convert the "
                + "checkpoint to F32, F16 or BF16 (e.g. load it in PyTorch, .float(), save_file)"
        case .notRepresentable(let s, let tensor, let index, let value):
            return "\(s): tensor `\(tensor)` element \(index) = \(value) has no exact Float value; "
                + "Kiln reads integer tensors as Float, so they must stay within ±2^24 or be representable"
        case .invalidTensor(let name, let reason):
            return "cannot write tensor `\(name)`: \(reason)"
        }
    }
}
