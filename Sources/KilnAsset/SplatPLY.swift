import KilnCore

/// The INRIA 3DGS PLY layout (graphdeco-inria `gaussian-splatting`), read by SuperSplat, gsplat,
/// three.js GaussianSplats3D and most splat viewers.
///
/// One `vertex` element, `binary_little_endian 1.0`, all `float` (f32), one row per Gaussian with
/// the properties, in this order:
/// ```
/// x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 f_rest_0 … f_rest_{3·((d+1)²−1)−1}
/// opacity scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3
/// ```
/// - normals are written as zeros and ignored on read;
/// - `f_dc_c` is SH coefficient 0 of channel `c`;
/// - `f_rest` is channel-major: `f_rest_{c·(K−1) + (k−1)}` is coefficient `k ≥ 1` of channel `c`
///   (for degree 3, f_rest_0…14 are red 1…15, 15…29 green, 30…44 blue), while `GaussianCloud.sh`
///   is coefficient-major (`sh[(i·K + k)·3 + c]`);
/// - `opacity` is the logit, `scale_*` the log scales, `rot_*` the quaternion (w, x, y, z), not
///   normalised; all stored raw, so a cloud round-trips bit for bit.
public enum SplatPLY {
    /// The longest header the reader scans for `end_header`, in bytes.
    public static let headerLimitBytes = 64 * 1024

    /// Whether the PLY header at the start of `bytes` (up to `end_header`, or all of `bytes`)
    /// declares a 3DGS cloud: spherical-harmonic DC properties. Any other PLY is a mesh.
    public static func declaresGaussians(header bytes: [UInt8]) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self)
        let header = text.range(of: "\nend_header").map { text[..<$0.lowerBound] } ?? Substring(text)
        return header.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).contains { line in
            let tokens = line.split(separator: " ")
            return tokens.count == 3 && tokens[0] == "property" && ["float", "double", "float32", "float64"].contains(tokens[1]) && tokens[2] == "f_dc_0"
        }
    }

    // MARK: Layout

    /// The vertex property names of the 3DGS layout for an SH degree (0...3), in file order.
    public static func propertyNames(shDegree: Int) -> [String] {
        precondition((0...3).contains(shDegree), "SH degree must be 0...3, got \(shDegree)")
        let restCount = 3 * (GaussianCloud.coefficientCount(degree: shDegree) - 1)
        return ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + (0..<restCount).map { "f_rest_\($0)" }
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    }

    /// The header text `encode` writes for `count` Gaussians of an SH degree, `end_header\n` included.
    public static func header(count: Int, shDegree: Int) -> String {
        var text = "ply\nformat binary_little_endian 1.0\nelement vertex \(count)\n"
        for name in propertyNames(shDegree: shDegree) { text += "property float \(name)\n" }
        return text + "end_header\n"
    }

    // MARK: Encode

    /// Encodes a cloud as a binary little-endian 3DGS PLY.
    ///
    /// Values are written raw (non-finite ones too; `decode` rejects those).
    /// - Returns: header + `N × (14 + 3K) × 4` bytes, `K = (d+1)²`.
    /// - Complexity: O(N·K), one pre-sized buffer.
    public static func encode(_ cloud: GaussianCloud) -> [UInt8] {
        let n = cloud.count
        let k = cloud.coefficientsPerChannel
        let rest = k - 1
        let headerBytes = Array(header(count: n, shDegree: cloud.shDegree).utf8)
        let rowBytes = (14 + 3 * k) * 4
        let total = headerBytes.count + n * rowBytes
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            raw.copyBytes(from: headerBytes)
            cloud.sh.withUnsafeBufferPointer { sh in
                var o = headerBytes.count
                // Unaligned little-endian stores into the pre-sized buffer; `o` never passes `total`.
                func put(_ v: Float) {
                    raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: o, as: UInt32.self)
                    o += 4
                }
                for i in 0..<n {
                    let m = cloud.means[i], s = cloud.logScales[i], q = cloud.rotations[i]
                    let base = i * k * 3
                    put(m.x); put(m.y); put(m.z)
                    put(0); put(0); put(0)
                    put(sh[base]); put(sh[base + 1]); put(sh[base + 2])
                    for c in 0..<3 {
                        for j in 0..<rest { put(sh[base + (j + 1) * 3 + c]) }
                    }
                    put(cloud.opacityLogits[i])
                    put(s.x); put(s.y); put(s.z)
                    put(q[0]); put(q[1]); put(q[2]); put(q[3])  // stored (w, x, y, z) → rot_0…rot_3
                }
            }
            initialized = total
        }
    }

    // MARK: Decode

    /// Decodes a binary little-endian 3DGS PLY.
    ///
    /// The header is parsed generically: properties in any order, extra scalar properties of any
    /// PLY type (skipped), other elements before or after `vertex` (skipped, lists included),
    /// `comment` / `obj_info` lines and `\r\n` line endings. The 3DGS properties must be `float`
    /// or `double` (converted); the SH degree follows from the number of `f_rest_*` properties
    /// (0, 9, 24, 45 → 0...3).
    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - source: the file name used in errors.
    /// - Throws: `SplatFormatError` naming the problem: bad magic or format, a missing property,
    ///   a truncated body or trailing bytes, non-finite values (with the Gaussian index).
    /// - Complexity: O(file size); nothing is allocated before the counts are checked against it.
    public static func decode(_ bytes: some Collection<UInt8>, source: String = "<memory>") throws -> GaussianCloud {
        try withSplatBytes(bytes) { try decode(buffer: $0, source: source) }
    }

    static func decode(buffer: UnsafeRawBufferPointer, source: String) throws -> GaussianCloud {
        let header = try PLYHeader.parse(buffer, source: source, limit: headerLimitBytes)
        guard let vertexIndex = header.elements.firstIndex(where: { $0.name == "vertex" }) else {
            throw SplatFormatError.missingVertexElement(source: source)
        }
        let layout = try VertexLayout(header.elements[vertexIndex], source: source)

        // Every row holds at least its fixed-size part; check that lower bound against the file
        // before allocating anything sized by a count.
        var minimumEnd = header.bodyOffset
        for element in header.elements {
            let (rows, overflow1) = element.count.multipliedReportingOverflow(by: element.minimumRowBytes)
            let (end, overflow2) = minimumEnd.addingReportingOverflow(rows)
            if overflow1 || overflow2 {
                throw SplatFormatError.countOutOfRange(source: source, element: element.name,
                                                       count: String(element.count))
            }
            minimumEnd = end
        }
        if minimumEnd > buffer.count {
            throw SplatFormatError.truncated(source: source, expectedBytes: minimumEnd, actualBytes: buffer.count)
        }

        var offset = header.bodyOffset
        var cloud: GaussianCloud?
        for (e, element) in header.elements.enumerated() {
            if e == vertexIndex {
                // Lists before the vertices may have moved `offset` past the lower bound above;
                // count·stride ≤ file size and offset ≤ file size, so the sum cannot overflow.
                let end = offset + element.count * layout.stride
                guard end <= buffer.count else {
                    throw SplatFormatError.truncated(source: source, expectedBytes: end, actualBytes: buffer.count)
                }
                cloud = try layout.read(buffer, at: offset, count: element.count, source: source)
                offset = end
            } else {
                offset = try element.skip(in: buffer, at: offset, source: source)
            }
        }
        if offset != buffer.count {
            throw SplatFormatError.trailingBytes(source: source, expectedBytes: offset, actualBytes: buffer.count)
        }
        return cloud!
    }
}

// MARK: - Shared by the splat readers

/// Calls `body` with the bytes in place when they are contiguous (arrays, slices, `Data`),
/// otherwise with a contiguous copy.
func withSplatBytes<R>(_ bytes: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    if let result = try bytes.withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) {
        return result
    }
    return try Array(bytes).withUnsafeBytes(body)
}

// MARK: - Header model

/// A PLY scalar type; the names and the int8… aliases of the PLY spec.
enum PLYScalar: Sendable {
    case int8, uint8, int16, uint16, int32, uint32, float32, float64

    init?(name: String) {
        switch name {
        case "char", "int8": self = .int8
        case "uchar", "uint8": self = .uint8
        case "short", "int16": self = .int16
        case "ushort", "uint16": self = .uint16
        case "int", "int32": self = .int32
        case "uint", "uint32": self = .uint32
        case "float", "float32": self = .float32
        case "double", "float64": self = .float64
        default: return nil
        }
    }

    var size: Int {
        switch self {
        case .int8, .uint8: 1
        case .int16, .uint16: 2
        case .int32, .uint32, .float32: 4
        case .float64: 8
        }
    }

    var isInteger: Bool { self != .float32 && self != .float64 }

    /// Loads an integer of this type (little-endian) at `offset`; caller checks bounds.
    func loadInteger(_ buffer: UnsafeRawBufferPointer, at offset: Int) -> Int64 {
        switch self {
        case .int8: Int64(buffer.load(fromByteOffset: offset, as: Int8.self))
        case .uint8: Int64(buffer[offset])
        case .int16: Int64(Int16(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: Int16.self)))
        case .uint16: Int64(UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
        case .int32: Int64(Int32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
        case .uint32: Int64(UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        case .float32, .float64: -1  // rejected as a list count type when parsing the header
        }
    }
}

struct PLYProperty: Sendable {
    enum Kind: Sendable {
        case scalar(PLYScalar)
        case list(count: PLYScalar, item: PLYScalar)
    }
    var name: String
    var kind: Kind
    var typeText: String
}

struct PLYElement: Sendable {
    var name: String
    var count: Int
    var properties: [PLYProperty] = []

    /// Bytes of one row when no list is empty: scalars plus list counts.
    var minimumRowBytes: Int {
        properties.reduce(0) { sum, p in
            switch p.kind {
            case .scalar(let t): sum + t.size
            case .list(let c, _): sum + c.size
            }
        }
    }

    var hasLists: Bool {
        properties.contains { if case .list = $0.kind { true } else { false } }
    }

    /// Steps over this element's rows starting at `offset`; returns the offset after them.
    func skip(in buffer: UnsafeRawBufferPointer, at offset: Int, source: String) throws -> Int {
        guard hasLists else {
            let end = offset + count * minimumRowBytes  // count·size ≤ file size: checked by the caller
            guard end <= buffer.count else {
                throw SplatFormatError.truncated(source: source, expectedBytes: end, actualBytes: buffer.count)
            }
            return end
        }
        var o = offset
        for row in 0..<count {
            for p in properties {
                switch p.kind {
                case .scalar(let t):
                    o += t.size
                case .list(let countType, let item):
                    guard o + countType.size <= buffer.count else {
                        throw SplatFormatError.truncated(source: source, expectedBytes: o + countType.size,
                                                         actualBytes: buffer.count)
                    }
                    let length = countType.loadInteger(buffer, at: o)
                    guard length >= 0 else {
                        throw SplatFormatError.invalidListLength(source: source, element: name,
                                                                 property: p.name, row: row, length: length)
                    }
                    // length < 2³², item size ≤ 8: no overflow on 64-bit Int.
                    o += countType.size + Int(length) * item.size
                }
            }
            // Each row is at least one byte (a list count), so the loop ends within the file.
            guard o <= buffer.count else {
                throw SplatFormatError.truncated(source: source, expectedBytes: o, actualBytes: buffer.count)
            }
        }
        return o
    }
}

struct PLYHeader: Sendable {
    var elements: [PLYElement] = []
    /// Offset of the first body byte, just after the `end_header` line.
    var bodyOffset = 0

    /// Parses the header of a binary little-endian PLY; only the first `limit` bytes are scanned.
    static func parse(_ buffer: UnsafeRawBufferPointer, source: String, limit: Int) throws -> PLYHeader {
        let newline: UInt8 = 0x0A, carriageReturn: UInt8 = 0x0D
        guard buffer.count >= 3, buffer[0] == UInt8(ascii: "p"), buffer[1] == UInt8(ascii: "l"),
              buffer[2] == UInt8(ascii: "y"),
              buffer.count == 3 || [newline, carriageReturn, UInt8(ascii: " "), UInt8(ascii: "\t")].contains(buffer[3])
        else { throw SplatFormatError.notPLY(source: source) }

        var header = PLYHeader()
        var sawFormat = false
        var lineStart = 0
        var lineNumber = 0
        let scanEnd = min(buffer.count, limit)
        while true {
            var lineEnd = lineStart
            while lineEnd < scanEnd && buffer[lineEnd] != newline { lineEnd += 1 }
            let atEndOfFile = lineEnd == buffer.count
            if lineEnd == scanEnd && !atEndOfFile {
                throw SplatFormatError.missingEndHeader(source: source, searchedBytes: scanEnd, limitBytes: limit)
            }
            lineNumber += 1
            var textEnd = lineEnd
            if textEnd > lineStart && buffer[textEnd - 1] == carriageReturn { textEnd -= 1 }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[lineStart..<textEnd]), as: UTF8.self)
            let tokens = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            func malformed(_ reason: String) -> SplatFormatError {
                // Shown in a terminal: control bytes become `?`, long lines are cut.
                let shown = String(String.UnicodeScalarView(text.unicodeScalars.prefix(120).map {
                    $0.value < 0x20 || $0.value == 0x7F ? "?" : $0
                }))
                return .malformedHeader(source: source, line: lineNumber, text: shown, reason: reason)
            }
            if atEndOfFile && tokens != ["end_header"] {
                throw SplatFormatError.missingEndHeader(source: source, searchedBytes: buffer.count, limitBytes: limit)
            }
            lineStart = min(lineEnd + 1, buffer.count)

            if lineNumber == 1 {
                guard tokens == ["ply"] else { throw SplatFormatError.notPLY(source: source) }
                continue
            }
            guard let keyword = tokens.first else { continue }  // blank line
            switch keyword {
            case "comment", "obj_info":
                continue
            case "format":
                guard tokens.count == 3 else { throw malformed("expected `format <type> 1.0`") }
                switch tokens[1] {
                case "binary_little_endian": sawFormat = true
                case "ascii", "binary_big_endian":
                    throw SplatFormatError.unsupportedPLYFormat(source: source, format: tokens[1])
                default: throw malformed("unknown format `\(tokens[1])`")
                }
            case "element":
                guard tokens.count == 3 else { throw malformed("expected `element <name> <count>`") }
                guard let count = Int(tokens[2]), count >= 0 else {
                    if tokens[2].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
                        throw SplatFormatError.countOutOfRange(source: source, element: tokens[1], count: tokens[2])
                    }
                    throw malformed("element count must be a non-negative integer")
                }
                header.elements.append(PLYElement(name: tokens[1], count: count))
            case "property":
                guard !header.elements.isEmpty else { throw malformed("property before any element") }
                let property: PLYProperty
                if tokens.count >= 2 && tokens[1] == "list" {
                    guard tokens.count == 5 else { throw malformed("expected `property list <count type> <item type> <name>`") }
                    guard let countType = PLYScalar(name: tokens[2]), countType.isInteger else {
                        throw malformed("list count type `\(tokens[2])` is not an integer type")
                    }
                    guard let item = PLYScalar(name: tokens[3]) else { throw malformed("unknown type `\(tokens[3])`") }
                    property = PLYProperty(name: tokens[4], kind: .list(count: countType, item: item),
                                           typeText: "list \(tokens[2]) \(tokens[3])")
                } else {
                    guard tokens.count == 3 else { throw malformed("expected `property <type> <name>`") }
                    guard let type = PLYScalar(name: tokens[1]) else { throw malformed("unknown type `\(tokens[1])`") }
                    property = PLYProperty(name: tokens[2], kind: .scalar(type), typeText: tokens[1])
                }
                let last = header.elements.count - 1
                if header.elements[last].properties.contains(where: { $0.name == property.name }) {
                    throw malformed("duplicate property `\(property.name)` in element `\(header.elements[last].name)`")
                }
                header.elements[last].properties.append(property)
            case "end_header":
                guard tokens.count == 1 else { throw malformed("unexpected text after end_header") }
                guard sawFormat else { throw malformed("no `format` line before end_header") }
                header.bodyOffset = atEndOfFile ? buffer.count : lineEnd + 1
                return header
            default:
                throw malformed("unknown keyword `\(keyword)`")
            }
        }
    }
}

// MARK: - Vertex layout

/// Where the 3DGS properties sit in a vertex row, resolved by name.
struct VertexLayout: Sendable {
    struct Field: Sendable {
        var offset: Int
        var isDouble: Bool
    }

    /// Row size in bytes, extra properties included.
    var stride: Int
    var shDegree: Int
    /// Fields in read order: x y z, scale_0…2, rot_0…3, opacity, f_dc_0…2, f_rest_0….
    var fields: [Field]
    var names: [String]

    init(_ element: PLYElement, source: String) throws {
        // A list would make the row size vary; 3DGS vertices never carry one.
        var offsets: [String: (offset: Int, property: PLYProperty)] = [:]
        var offset = 0
        for p in element.properties {
            guard case .scalar(let type) = p.kind else {
                throw SplatFormatError.unsupportedPropertyType(source: source, name: p.name, type: p.typeText)
            }
            offsets[p.name] = (offset, p)
            offset += type.size
        }
        stride = offset

        let restCount = element.properties.count(where: { p in
            p.name.hasPrefix("f_rest_") && Int(p.name.dropFirst("f_rest_".count)) != nil
        })
        guard let degree = [0, 9, 24, 45].firstIndex(of: restCount) else {
            throw SplatFormatError.unsupportedSHCount(source: source, restCount: restCount)
        }
        shDegree = degree

        names = ["x", "y", "z", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
                 "opacity", "f_dc_0", "f_dc_1", "f_dc_2"] + (0..<restCount).map { "f_rest_\($0)" }
        fields = []
        fields.reserveCapacity(names.count)
        for name in names {
            guard let entry = offsets[name] else {
                throw SplatFormatError.missingProperty(source: source, name: name)
            }
            switch entry.property.kind {
            case .scalar(.float32): fields.append(Field(offset: entry.offset, isDouble: false))
            case .scalar(.float64): fields.append(Field(offset: entry.offset, isDouble: true))
            default:
                throw SplatFormatError.unsupportedPropertyType(source: source, name: name, type: entry.property.typeText)
            }
        }
    }

    /// Reads `count` rows starting at `start`; the caller has checked `start + count·stride` fits.
    func read(_ buffer: UnsafeRawBufferPointer, at start: Int, count n: Int, source: String) throws -> GaussianCloud {
        let k = GaussianCloud.coefficientCount(degree: shDegree)
        let rest = k - 1
        var means = [SIMD3<Float>](repeating: .zero, count: n)
        var logScales = [SIMD3<Float>](repeating: .zero, count: n)
        var rotations = [SIMD4<Float>](repeating: .zero, count: n)
        var opacityLogits = [Float](repeating: 0, count: n)
        var sh = [Float](repeating: 0, count: n * k * 3)

        try fields.withUnsafeBufferPointer { fields in
            var row = start
            var index = 0
            func value(_ f: Int) throws -> Float {
                let field = fields[f]
                let v: Float
                if field.isDouble {
                    let bits = UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: row + field.offset, as: UInt64.self))
                    v = Float(Double(bitPattern: bits))  // beyond the float range becomes ±inf: rejected below
                } else {
                    let bits = UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: row + field.offset, as: UInt32.self))
                    v = Float(bitPattern: bits)
                }
                guard v.isFinite else {
                    throw SplatFormatError.nonFinite(source: source, index: index, property: names[f])
                }
                return v
            }
            for i in 0..<n {
                index = i
                row = start + i * stride
                means[i] = SIMD3(try value(0), try value(1), try value(2))
                logScales[i] = SIMD3(try value(3), try value(4), try value(5))
                let w = try value(6), x = try value(7), y = try value(8), z = try value(9)
                rotations[i] = SIMD4(w, x, y, z)
                opacityLogits[i] = try value(10)
                let base = i * k * 3
                for c in 0..<3 {
                    sh[base + c] = try value(11 + c)
                    for j in 0..<rest { sh[base + (j + 1) * 3 + c] = try value(14 + c * rest + j) }
                }
            }
        }
        return GaussianCloud(means: means, logScales: logScales, rotations: rotations,
                             opacityLogits: opacityLogits, sh: sh, shDegree: shDegree)
    }
}
