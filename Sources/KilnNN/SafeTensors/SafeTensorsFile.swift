#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A safetensors file opened for reading: the header parsed and validated up front, tensors
/// decoded to `Float` on demand by name.
///
/// Layout (huggingface/safetensors): an 8-byte little-endian header length `N`; `N` bytes of
/// UTF-8 JSON `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}`
/// (padded with spaces); then the data buffer, `data_offsets` being relative to its start.
///
/// Opening checks everything the reference implementation checks, and says which tensor is wrong:
/// the header is a JSON object within the file and under 100 MB; each entry has a known dtype, a
/// shape of non-negative integers whose byte size does not overflow, and offsets spanning exactly
/// `shape × dtype` bytes; the tensors tile the buffer (no overlaps, no gaps) and end where the file
/// ends. After that, `tensor(_:)` cannot read out of bounds.
///
/// Files are memory-mapped (`mmap`, read-only, private), so opening a multi-gigabyte checkpoint costs
/// only its header, and each tensor touches only its own pages. Do not truncate a file while it is
/// open: reading pages that no longer exist raises SIGBUS, as with any mapping. The value is
/// immutable after `init`, so it can be shared between threads decoding different tensors.
public final class SafeTensorsFile: @unchecked Sendable {
    /// What the header says about one tensor.
    public struct TensorInfo: Sendable, Equatable {
        public var dtype: SafeTensorsDType
        public var shape: [Int]
        /// `[begin, end)` in the data buffer, as in the header's `data_offsets`.
        public var dataOffsets: Range<Int>
        /// Number of elements (product of `shape`; 1 for a scalar).
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// The largest header the reference implementation accepts (bytes).
    public static let headerLimit = 100_000_000

    /// The file path or `"<memory>"`; used in every error.
    public let source: String
    /// The `__metadata__` strings (empty when absent).
    public let metadata: [String: String]
    /// Tensor names, sorted by their UTF-8 bytes.
    public let names: [String]

    private let infos: [String: TensorInfo]
    /// The whole file (mapped or copied); the data buffer starts at `dataStart`.
    private let bytes: UnsafeRawBufferPointer
    private let dataStart: Int
    private let mapped: Bool

    // MARK: Opening

    /// Maps and validates a safetensors file.
    /// - Throws: `SafeTensorsError` (`.io` when the file cannot be opened or mapped, other cases
    ///   for a malformed file), naming the path.
    public convenience init(contentsOf url: URL) throws {
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SafeTensorsError.io(path: path, reason: "cannot open for reading: \(Self.errnoText())") }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw SafeTensorsError.io(path: path, reason: "cannot stat: \(Self.errnoText())") }
        if (info.st_mode & S_IFMT) != S_IFREG {
            throw SafeTensorsError.io(path: path, reason: "is not a regular file (a folder?): give the .safetensors file")
        }
        let size = Int(info.st_size)
        if size < 8 { throw SafeTensorsError.fileTooShort(source: path, size: size) }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), address != MAP_FAILED else {
            throw SafeTensorsError.io(path: path, reason: "cannot memory-map \(size) bytes: \(Self.errnoText())")
        }
        let buffer = UnsafeRawBufferPointer(start: address, count: size)
        do {
            try self.init(buffer: buffer, mapped: true, source: path)
        } catch {
            munmap(address, size)
            throw error
        }
    }

    /// Validates a safetensors file held in memory (the bytes are copied).
    public convenience init(bytes: some Collection<UInt8>, source: String = "<memory>") throws {
        let count = bytes.count
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        copy.copyBytes(from: bytes)
        do {
            try self.init(buffer: UnsafeRawBufferPointer(rebasing: copy[..<count]), mapped: false, source: source)
        } catch {
            copy.deallocate()
            throw error
        }
    }

    /// Takes ownership of `buffer` on success only.
    private init(buffer: UnsafeRawBufferPointer, mapped: Bool, source: String) throws {
        let header = try Self.parseHeader(buffer, source: source)
        self.bytes = buffer
        self.mapped = mapped
        self.source = source
        self.metadata = header.metadata
        self.infos = header.infos
        self.dataStart = header.dataStart
        self.names = header.infos.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
        } else {
            UnsafeMutableRawPointer(mutating: bytes.baseAddress)?.deallocate()
        }
    }

    // MARK: Lookup

    /// Whether a tensor of this name exists.
    public func contains(_ name: String) -> Bool { infos[name] != nil }

    /// The dtype, shape and byte range of a tensor.
    /// - Throws: `SafeTensorsError.tensorNotFound` listing similar names.
    public func info(_ name: String) throws -> TensorInfo {
        guard let info = infos[name] else {
            throw SafeTensorsError.tensorNotFound(source: source, name: name, closeNames: closeNames(to: name))
        }
        return info
    }

    /// A tensor's shape and its elements converted to `Float` (row-major, as stored).
    ///
    /// F32 is copied, F16/BF16/F64 converted (F64 rounds to nearest), integers and BOOL converted
    /// exactly (an integer without an exact `Float` value is an error).
    /// - Throws: `SafeTensorsError.tensorNotFound`, `.unsupportedDType`, `.notRepresentable`.
    /// - Complexity: O(elements); only this tensor's bytes are read.
    public func tensor(_ name: String) throws -> (shape: [Int], values: [Float]) {
        let info = try info(name)
        return (info.shape, try decode(name, info))
    }

    /// A tensor's elements, after checking that its shape is `shape`.
    /// - Throws: `SafeTensorsError.shapeMismatch` naming both shapes (before decoding anything),
    ///   or the errors of `tensor(_:)`.
    public func expect(_ name: String, shape: [Int]) throws -> [Float] {
        let info = try info(name)
        guard info.shape == shape else {
            throw SafeTensorsError.shapeMismatch(source: source, tensor: name, expected: shape, actual: info.shape)
        }
        return try decode(name, info)
    }

    /// A F16 or BF16 tensor's bit patterns as stored (no conversion), after checking its shape;
    /// nil for any other dtype (read those with `expect`).
    /// - Throws: `SafeTensorsError.tensorNotFound` or `.shapeMismatch`.
    public func expectHalf(_ name: String, shape: [Int]) throws -> HalfTensor? {
        let info = try info(name)
        guard info.shape == shape else {
            throw SafeTensorsError.shapeMismatch(source: source, tensor: name, expected: shape, actual: info.shape)
        }
        let format: HalfPrecision.Format
        switch info.dtype {
        case .f16: format = .binary16
        case .bf16: format = .bfloat16
        default: return nil
        }
        let raw = dataBytes(info), n = info.elementCount
        let bits = [UInt16](unsafeUninitializedCapacity: n) { out, initialized in
            #if _endian(little)
            if n > 0 { UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: raw.baseAddress!, byteCount: n * 2) }
            #else
            for i in 0..<n { out[i] = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            #endif
            initialized = n
        }
        return HalfTensor(shape: shape, format: format, bits: bits)
    }

    /// A tensor's raw little-endian bytes, as stored.
    public func rawBytes(_ name: String) throws -> [UInt8] {
        Array(dataBytes(try info(name)))
    }

    // MARK: Decoding

    /// A tensor's bytes in the mapping; in bounds because `parseHeader` checked every entry's
    /// offsets against the data buffer.
    private func dataBytes(_ info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[(dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound)])
    }

    private func decode(_ name: String, _ info: TensorInfo) throws -> [Float] {
        guard info.dtype.isReadableAsFloat else {
            throw SafeTensorsError.unsupportedDType(source: source, tensor: name, dtype: info.dtype)
        }
        let n = info.elementCount
        let raw = dataBytes(info)  // exactly n elements: `parseHeader` checked the byte count
        var failure: (index: Int, value: String)?
        let values = [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch info.dtype {
            case .f32:
                #if _endian(little)
                if n > 0 { UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: raw.baseAddress!, byteCount: n * 4) }
                #else
                for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                #endif
            case .f16:
                for i in 0..<n {
                    out[i] = HalfPrecision.float(float16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            case .bf16:
                for i in 0..<n {
                    out[i] = HalfPrecision.float(bfloat16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            case .f64:
                for i in 0..<n {
                    out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                }
            case .bool, .u8: failure = Self.decodeIntegers(raw, into: out, as: UInt8.self)
            case .i8: failure = Self.decodeIntegers(raw, into: out, as: Int8.self)
            case .i16: failure = Self.decodeIntegers(raw, into: out, as: Int16.self)
            case .u16: failure = Self.decodeIntegers(raw, into: out, as: UInt16.self)
            case .i32: failure = Self.decodeIntegers(raw, into: out, as: Int32.self)
            case .u32: failure = Self.decodeIntegers(raw, into: out, as: UInt32.self)
            case .i64: failure = Self.decodeIntegers(raw, into: out, as: Int64.self)
            case .u64: failure = Self.decodeIntegers(raw, into: out, as: UInt64.self)
            case .f4, .f6e2m3, .f6e3m2, .f8e5m2, .f8e4m3, .f8e8m0, .c64:
                preconditionFailure("unreadable dtypes are refused above")
            }
            // On failure the elements are never looked at, but the array must still be initialised.
            if failure != nil { for i in 0..<n { out[i] = 0 } }
            initialized = n
        }
        if let failure {
            throw SafeTensorsError.notRepresentable(source: source, tensor: name, index: failure.index, value: failure.value)
        }
        return values
    }

    /// Converts little-endian integers to `Float`, stopping at the first one without an exact
    /// `Float` value (returned with its index; 8- and 16-bit integers always convert).
    private static func decodeIntegers<T: FixedWidthInteger>(_ raw: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>,
                                                             as _: T.Type) -> (index: Int, value: String)? {
        let width = MemoryLayout<T>.size
        for i in 0..<(raw.count / width) {
            let v = T(littleEndian: raw.loadUnaligned(fromByteOffset: width * i, as: T.self))
            guard let f = Float(exactly: v) else { return (i, String(v)) }
            out[i] = f
        }
        return nil
    }

    // MARK: Suggestions

    /// Up to five names in this file most similar to `name` (see `closeNames(to:among:)`).
    func closeNames(to name: String) -> [String] { Self.closeNames(to: name, among: names) }

    /// Up to five of `names` most similar to `name`: edit distance on the whole name, with names
    /// that share the last two dotted components (a prefix mismatch such as `model.` vs none) first.
    public static func closeNames(to name: String, among names: [String]) -> [String] {
        let target = Array(name.utf8)
        let tail = name.split(separator: ".").suffix(2).joined(separator: ".")
        let limit = max(3, target.count / 3)
        var scored: [(score: Int, name: String)] = []
        for candidate in names {
            let sameTail = !tail.isEmpty && candidate.hasSuffix(tail)
            let distance = Self.editDistance(target, Array(candidate.utf8), limit: limit + 1)
            if sameTail || distance <= limit { scored.append((sameTail ? distance - 1000 : distance, candidate)) }
        }
        scored.sort { $0.score != $1.score ? $0.score < $1.score : $0.name < $1.name }
        return scored.prefix(5).map(\.name)
    }

    /// Levenshtein distance, stopping early at `limit` (returns `limit` when it is reached).
    static func editDistance(_ a: [UInt8], _ b: [UInt8], limit: Int) -> Int {
        if abs(a.count - b.count) >= limit { return limit }
        if a.isEmpty || b.isEmpty { return min(max(a.count, b.count), limit) }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            var rowMin = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                rowMin = min(rowMin, current[j])
            }
            if rowMin >= limit { return limit }
            swap(&previous, &current)
        }
        return min(previous[b.count], limit)
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

extension SafeTensorsFile {
    /// The name of the first floating-point tensor holding NaN or ±∞, or nil: a check for files
    /// whose values must be finite (checkpoints, weights).
    public func firstNonFiniteTensor() -> String? {
        for name in names {
            guard let info = try? info(name), [.f16, .bf16, .f32, .f64].contains(info.dtype) else { continue }
            guard let values = try? tensor(name).values else { return name }
            if !values.allSatisfy({ $0.isFinite }) { return name }
        }
        return nil
    }
}
