import Foundation

/// Collects named `Float` tensors and writes them as a safetensors file.
///
/// The output is what the reference implementation (huggingface/safetensors `serialize`) writes for
/// the same tensors: tensors laid out by descending dtype rank (F32, then BF16, then F16, so every
/// element stays aligned), then by name (UTF-8 byte order); the header lists `__metadata__` first
/// (keys sorted; omitted when empty), then the tensors in buffer order, as compact JSON escaped like
/// serde_json, padded with spaces to a multiple of 8 bytes. With at most one metadata key the bytes
/// are identical to the reference's (it orders several metadata keys by hash, not by name).
///
/// ```swift
/// var writer = SafeTensorsWriter(metadata: ["format": "pt"])
/// try writer.add("conv_in.weight", shape: [32, 4, 3, 3], values: weights)
/// try writer.add("conv_in.bias", shape: [32], values: bias, dtype: .f16)
/// try writer.write(to: url)
/// ```
public struct SafeTensorsWriter: Sendable {
    /// Free-form string metadata, written as `__metadata__`.
    public var metadata: [String: String]

    private struct Entry: Sendable {
        var name: String
        var dtype: SafeTensorsDType
        var shape: [Int]
        var values: [Float]
    }

    private var entries: [Entry] = []
    private var taken: Set<String> = []

    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// Names added so far, in insertion order.
    public var names: [String] { entries.map(\.name) }

    /// Adds a tensor, stored as `dtype` (F32, or F16/BF16 rounded to nearest, ties to even; values
    /// beyond the F16 range become ±infinity, as PyTorch's `.half()` does; or U8 for integers 0…255).
    /// - Parameters:
    ///   - shape: dimensions, row-major; `[]` is a scalar (one value).
    ///   - values: `shape.product` elements.
    /// - Throws: `SafeTensorsError.invalidTensor` for a duplicate or reserved name (`__metadata__`), a
    ///   negative dimension, a value count that does not match the shape, or a dtype Kiln does not write.
    public mutating func add(_ name: String, shape: [Int], values: [Float], dtype: SafeTensorsDType = .f32) throws {
        guard name != "__metadata__" else {
            throw SafeTensorsError.invalidTensor(name: name, reason: "`__metadata__` is reserved for the metadata; rename the tensor")
        }
        guard !taken.contains(name) else {
            throw SafeTensorsError.invalidTensor(name: name, reason: "a tensor of this name was already added")
        }
        guard dtype.isWritable else {
            throw SafeTensorsError.invalidTensor(name: name, reason: "Kiln writes F32, F16, BF16 or U8, not \(dtype)")
        }
        if dtype == .u8, let bad = values.firstIndex(where: { !($0 >= 0 && $0 <= 255 && $0 == $0.rounded()) }) {
            throw SafeTensorsError.invalidTensor(name: name, reason: "U8 holds integers 0…255; value \(bad) is \(values[bad])")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw SafeTensorsError.invalidTensor(name: name, reason: "shape \(shape) has a negative dimension")
        }
        var count = 1
        for d in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw SafeTensorsError.invalidTensor(name: name, reason: "shape \(shape) is too large") }
            count = p
        }
        guard count == values.count else {
            throw SafeTensorsError.invalidTensor(name: name, reason: "shape \(shape) holds \(count) values but \(values.count) were given")
        }
        taken.insert(name)
        entries.append(Entry(name: name, dtype: dtype, shape: shape, values: values))
    }

    // MARK: Encoding

    /// The entries in file order: descending dtype rank, then name bytes.
    private var ordered: [Entry] {
        entries.sorted {
            $0.dtype != $1.dtype ? $0.dtype.writerRank > $1.dtype.writerRank
                : $0.name.utf8.lexicographicallyPrecedes($1.name.utf8)
        }
    }

    /// The 8-byte length prefix and the padded JSON header for `ordered`.
    private func prefixAndHeader(_ ordered: [Entry]) -> [UInt8] {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            json += "\"__metadata__\":{"
                + keys.map { HeaderJSON.quoted($0) + ":" + HeaderJSON.quoted(metadata[$0]!) }.joined(separator: ",")
                + "}"
            first = false
        }
        var offset = 0
        for entry in ordered {
            let bytes = entry.values.count * entry.dtype.bitCount / 8
            if !first { json += "," }
            first = false
            json += HeaderJSON.quoted(entry.name) + ":{\"dtype\":\"\(entry.dtype.rawValue)\",\"shape\":["
                + entry.shape.map(String.init).joined(separator: ",")
                + "],\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        json += "}"
        var header = Array(json.utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)  // pad to 8-byte alignment
        return withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
    }

    /// Appends one tensor's little-endian bytes to `out`.
    private static func appendData(of entry: Entry, to out: inout [UInt8]) {
        let n = entry.values.count
        let width = entry.dtype.bitCount / 8
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: n * width))
        out.withUnsafeMutableBytes { raw in
            entry.values.withUnsafeBufferPointer { v in
                switch entry.dtype {
                case .f32:
                    for i in 0..<n { raw.storeBytes(of: v[i].bitPattern.littleEndian, toByteOffset: start + 4 * i, as: UInt32.self) }
                case .f16:
                    for i in 0..<n { raw.storeBytes(of: HalfPrecision.float16Bits(v[i]).littleEndian, toByteOffset: start + 2 * i, as: UInt16.self) }
                case .bf16:
                    for i in 0..<n { raw.storeBytes(of: HalfPrecision.bfloat16Bits(v[i]).littleEndian, toByteOffset: start + 2 * i, as: UInt16.self) }
                case .u8:
                    for i in 0..<n { raw[start + i] = UInt8(v[i]) }
                default:
                    preconditionFailure("add(_:shape:values:dtype:) admits only writable dtypes")
                }
            }
        }
    }

    /// The whole file in memory.
    public func encoded() -> [UInt8] {
        let ordered = self.ordered
        var out = prefixAndHeader(ordered)
        for entry in ordered { Self.appendData(of: entry, to: &out) }
        return out
    }

    /// Writes the file atomically (temporary sibling, fsync, rename), one tensor in memory at a time.
    /// - Throws: `SafeTensorsError.io` naming the path when the folder is missing or not writable,
    ///   or the disk is full; the destination is then left as it was.
    public func write(to url: URL) throws {
        let ordered = self.ordered
        try AtomicFile.write(to: url) { sink in
            try prefixAndHeader(ordered).withUnsafeBytes { try sink.write($0) }
            var chunk: [UInt8] = []
            for entry in ordered {
                chunk.removeAll(keepingCapacity: true)
                Self.appendData(of: entry, to: &chunk)
                try chunk.withUnsafeBytes { try sink.write($0) }
            }
        }
    }
}
