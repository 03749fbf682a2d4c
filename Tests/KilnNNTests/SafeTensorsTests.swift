import Foundation
@testable import KilnNN
import Testing

// MARK: - Helpers

/// A safetensors file from a header text and a data buffer (the length prefix is computed).
func safeTensorsFile(header: String, data: [UInt8] = []) -> [UInt8] {
    let h = Array(header.utf8)
    return withUnsafeBytes(of: UInt64(h.count).littleEndian, Array.init) + h + data
}

/// The error thrown by `body`, or nil.
func safeTensorsError(_ body: () throws -> Void) -> SafeTensorsError? {
    do { try body() } catch let error as SafeTensorsError { return error } catch { return nil }
    return nil
}

/// A fresh folder under the system temporary folder, removed after `body`.
func withTemporaryFolder<R>(_ body: (URL) throws -> R) throws -> R {
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("kiln-nn-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

let safeTensorsFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/safetensors")

/// A decoded fixture JSON (`golden.json`, `reference_writer.json`).
struct SafeTensorsFixture: Decodable {
    struct Tensor: Decodable {
        var dtype: String
        var shape: [Int]
        var bits: [UInt32]?
        var source_bits: [UInt32]?
    }
    var metadata: [String: String]
    var tensors: [String: Tensor]

    static func load(_ name: String) throws -> SafeTensorsFixture {
        try JSONDecoder().decode(SafeTensorsFixture.self, from: Data(contentsOf: safeTensorsFixtures.appendingPathComponent(name)))
    }
}

/// The metadata `tools/make_safetensors_fixtures.py --check` expects in a Kiln-written file.
let kilnWriterCheckMetadata = ["format": "pt", "kiln": "writer check", "note": "é \"quoted\"\n"]

// MARK: - Round trips

@Suite struct SafeTensorsRoundTripTests {
    static func sampleWriter() throws -> (SafeTensorsWriter, [String: [Float]]) {
        var rng = SystemRandomNumberGenerator()
        let a = (0..<24).map { _ in Float.random(in: -3...3, using: &rng) }
        let b = (0..<7).map { _ in Float.random(in: -70000...70000, using: &rng) } + [.nan, .infinity, -0.0, 1e-7]
        let c = (0..<6).map { _ in Float.random(in: -1e30...1e30, using: &rng) } + [3.4e38, -.infinity]
        var writer = SafeTensorsWriter(metadata: ["format": "pt", "step": "12", "ü": "\"x\"\n\t\u{1}"])
        try writer.add("layer.weight", shape: [2, 3, 4], values: a)
        try writer.add("layer.half", shape: [11], values: b, dtype: .f16)
        try writer.add("bf", shape: [2, 4], values: c, dtype: .bf16)
        try writer.add("scalar", shape: [], values: [42.5])
        try writer.add("empty", shape: [3, 0], values: [], dtype: .f16)
        return (writer, ["layer.weight": a, "layer.half": b, "bf": c, "scalar": [42.5], "empty": []])
    }

    static func checkRoundTrip(_ file: SafeTensorsFile, _ values: [String: [Float]]) throws {
        #expect(file.names == ["bf", "empty", "layer.half", "layer.weight", "scalar"])
        #expect(file.metadata == ["format": "pt", "step": "12", "ü": "\"x\"\n\t\u{1}"])
        #expect(try file.info("layer.weight") == .init(dtype: .f32, shape: [2, 3, 4], dataOffsets: 0..<96))
        #expect(try file.info("scalar").shape == [])
        #expect(try file.info("empty").elementCount == 0)
        let weight = try file.tensor("layer.weight")
        #expect(weight.shape == [2, 3, 4])
        #expect(weight.values.map(\.bitPattern) == values["layer.weight"]!.map(\.bitPattern))
        let half = try file.tensor("layer.half").values
        let wantHalf = values["layer.half"]!.map { HalfPrecision.float(float16Bits: HalfPrecision.float16Bits($0)) }
        #expect(half.map(\.bitPattern) == wantHalf.map(\.bitPattern))
        let bf = try file.tensor("bf").values
        let wantBF = values["bf"]!.map { HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits($0)) }
        #expect(bf.map(\.bitPattern) == wantBF.map(\.bitPattern))
        #expect(try file.tensor("scalar").values == [42.5])
        #expect(try file.tensor("empty") == ([3, 0], []))
    }

    @Test func roundTripInMemory() throws {
        let (writer, values) = try Self.sampleWriter()
        let bytes = writer.encoded()
        let headerLength = Int(bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) })
        #expect(headerLength % 8 == 0, "header padded to 8 bytes")
        #expect(bytes[8] == UInt8(ascii: "{"))
        try Self.checkRoundTrip(try SafeTensorsFile(bytes: bytes), values)
    }

    @Test func roundTripThroughMappedFile() throws {
        let (writer, values) = try Self.sampleWriter()
        try withTemporaryFolder { folder in
            let url = folder.appendingPathComponent("weights.safetensors")
            try writer.write(to: url)
            try writer.write(to: url)  // replacing an existing file
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["weights.safetensors"],
                    "no temporary file left")
            #expect(try Array(Data(contentsOf: url)) == writer.encoded(), "streamed and in-memory writes agree")
            try Self.checkRoundTrip(try SafeTensorsFile(contentsOf: url), values)
        }
    }

    @Test func noMetadataKeyWhenEmpty() throws {
        var writer = SafeTensorsWriter()
        try writer.add("x", shape: [1], values: [1])
        let bytes = writer.encoded()
        let header = String(decoding: bytes[8...], as: UTF8.self)
        #expect(header.hasPrefix("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"))
        #expect(try SafeTensorsFile(bytes: bytes).metadata.isEmpty)
    }

    @Test func emptyFileRoundTrips() throws {
        let bytes = SafeTensorsWriter().encoded()
        #expect(bytes == safeTensorsFile(header: "{}      "))
        let file = try SafeTensorsFile(bytes: bytes)
        #expect(file.names.isEmpty)
    }

    @Test func integerAndDoubleDTypesRead() throws {
        var data: [UInt8] = []
        func append<T>(_ values: [T]) { for v in values { withUnsafeBytes(of: v) { data += $0 } } }  // tests run on little-endian hosts
        append([Int64(-5), 16_777_216, 7])          // I64 0..<24
        append([Double(1) / 3, -2.5])               // F64 24..<40
        append([Int32(-7), 123_456])                // I32 40..<48
        append([Int16(-300), 300])                  // I16 48..<52
        append([UInt8(0), 1, 255])                  // U8 52..<55
        append([Int8(-128)])                        // I8 55..<56
        append([UInt8(1), 0])                       // BOOL 56..<58
        let header = """
        {"i64":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},\
        "f64":{"dtype":"F64","shape":[2],"data_offsets":[24,40]},\
        "i32":{"dtype":"I32","shape":[2],"data_offsets":[40,48]},\
        "i16":{"dtype":"I16","shape":[2],"data_offsets":[48,52]},\
        "u8":{"dtype":"U8","shape":[3],"data_offsets":[52,55]},\
        "i8":{"dtype":"I8","shape":[1],"data_offsets":[55,56]},\
        "b":{"dtype":"BOOL","shape":[2],"data_offsets":[56,58]}}
        """
        let file = try SafeTensorsFile(bytes: safeTensorsFile(header: header, data: data))
        #expect(try file.tensor("i64").values == [-5, 16_777_216, 7])
        #expect(try file.tensor("f64").values == [Float(Double(1) / 3), -2.5])
        #expect(try file.tensor("i32").values == [-7, 123_456])
        #expect(try file.tensor("i16").values == [-300, 300])
        #expect(try file.tensor("u8").values == [0, 1, 255])
        #expect(try file.tensor("i8").values == [-128])
        #expect(try file.tensor("b").values == [1, 0])
        #expect(try file.rawBytes("u8") == [0, 1, 255])
    }

    @Test func unalignedTensorsRead() throws {
        // A 2-byte tensor first puts the F32 tensor at an odd-looking offset: loads must be unaligned.
        var data: [UInt8] = [0x00, 0x3C]  // F16 1.0
        withUnsafeBytes(of: Float(-1.5).bitPattern.littleEndian) { data += $0 }
        let header = #"{"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"f":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#
        let file = try SafeTensorsFile(bytes: safeTensorsFile(header: header, data: data))
        #expect(try file.tensor("h").values == [1])
        #expect(try file.tensor("f").values == [-1.5])
    }

    @Test func headerWhitespaceAndExtraFieldsAccepted() throws {
        // The reference reader accepts leading whitespace, ignores unknown entry fields and a null
        // `__metadata__`.
        let header = #" {"__metadata__":null, "x": {"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":[1]}}  "#
        let file = try SafeTensorsFile(bytes: safeTensorsFile(header: header, data: [0, 0, 128, 63]))
        #expect(try file.tensor("x").values == [1])
        #expect(file.metadata.isEmpty)
    }
}

// MARK: - Reduced precision

@Suite struct HalfPrecisionTests {
    @Test(arguments: [
        (Float(1) / 3, UInt16(0x3555)),
        (65504, 0x7BFF),             // largest finite
        (65519.996, 0x7BFF),         // just under the rounding midpoint to infinity
        (65520, 0x7C00),             // the midpoint: ties to even = infinity
        (1e6, 0x7C00),
        (-1e6, 0xFC00),
        (0x1p-24, 0x0001),           // smallest subnormal
        (0x1p-25, 0x0000),           // half of it: tie to even → 0
        (0x1.8p-25, 0x0001),         // above the tie → smallest subnormal
        (0x1.8p-24, 0x0002),         // 1.5 × smallest: tie → even (2)
        (0x1p-14, 0x0400),           // smallest normal
        (0x1.ff8p-15, 0x03FF),       // largest subnormal
        (0x1.ffcp-15, 0x0400),       // midpoint to the smallest normal: tie → even (0x400)
        (6e-8, 0x0001),
        (1e-10, 0x0000),
        (-0.0, 0x8000),
        (1 + 0x1p-11, 0x3C00),       // tie → even (1.0)
        (1 + 0x1.8p-10, 0x3C02),     // 1 + 3·2⁻¹¹: tie → even (1 + 2⁻⁹)
        (0.1, 0x2E66),
        (-2.5, 0xC100),
        (.infinity, 0x7C00),
        (-.infinity, 0xFC00),
        (.leastNonzeroMagnitude, 0x0000),
    ] as [(Float, UInt16)])
    func float16KnownValues(value: Float, bits: UInt16) {
        #expect(HalfPrecision.float16Bits(value) == bits, "\(value)")
    }

    @Test(arguments: [
        (Float(1) / 3, UInt16(0x3EAB)),
        (.greatestFiniteMagnitude, 0x7F80),  // above bfloat16's largest finite + half ulp → infinity
        (3.389e38, 0x7F7F),
        (1 + 0x1p-8, 0x3F80),                 // tie → even
        (1 + 0x1.8p-7, 0x3F82),               // 1 + 3·2⁻⁸: tie → even
        (Float(bitPattern: 0x0001_16C2), 0x0001),  // a float subnormal (≈ 1e-40) → 0x0001
        (-0.0, 0x8000),
        (0.1, 0x3DCD),
        (-7.75, 0xC0F8),
        (.infinity, 0x7F80),
        (-.infinity, 0xFF80),
    ] as [(Float, UInt16)])
    func bfloat16KnownValues(value: Float, bits: UInt16) {
        #expect(HalfPrecision.bfloat16Bits(value) == bits, "\(value)")
    }

    @Test func nanStaysNaN() {
        for nan in [Float.nan, -Float.nan, Float.signalingNaN, Float(bitPattern: 0x7F80_0001)] {
            let h = HalfPrecision.float16Bits(nan)
            #expect(HalfPrecision.float(float16Bits: h).isNaN)
            #expect(h & 0x0200 != 0, "quiet")
            #expect((h & 0x8000 != 0) == (nan.sign == .minus))
            let b = HalfPrecision.bfloat16Bits(nan)
            #expect(HalfPrecision.float(bfloat16Bits: b).isNaN)
            #expect((b & 0x8000 != 0) == (nan.sign == .minus))
        }
        #expect(HalfPrecision.float16Bits(.nan) == 0x7E00, "PyTorch's canonical F16 NaN")
        #expect(HalfPrecision.bfloat16Bits(.nan) == 0x7FC0, "PyTorch's canonical BF16 NaN")
    }

    @Test func bfloat16WideningIsExactAndNarrowingRoundTrips() {
        for b in UInt16.min...UInt16.max {
            let f = HalfPrecision.float(bfloat16Bits: b)
            #expect(f.bitPattern == UInt32(b) << 16)
            if !f.isNaN { #expect(HalfPrecision.bfloat16Bits(f) == b) }
        }
    }

    /// bfloat16 narrowing against a plain reference: pick the nearer of the two truncations, ties to
    /// the even one; fresh random bit patterns every run.
    @Test func bfloat16NarrowingMatchesReference() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200_000 {
            let x = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
            if x.isNaN { continue }
            let down = x.bitPattern & 0xFFFF_0000  // truncated magnitude
            let up = down &+ 0x1_0000              // the next bfloat16 away from zero
            if down & 0x7F80_0000 == 0x7F80_0000 {  // x is ±infinity: stays
                #expect(HalfPrecision.bfloat16Bits(x) == UInt16(down >> 16)); continue
            }
            // Magnitudes in Double; when `up` is infinity, rounding treats it as 2¹²⁸ (IEEE 754).
            func magnitude(_ bits: UInt32) -> Double {
                bits & 0x7FFF_FFFF == 0x7F80_0000 ? 0x1p128 : abs(Double(Float(bitPattern: bits)))
            }
            let dx = abs(x).isZero ? 0 : abs(Double(abs(x)) - magnitude(down))
            let dy = magnitude(up) - Double(abs(x))
            let pick: UInt32 = dx < dy ? down : dx > dy ? up : ((down >> 16) & 1 == 0 ? down : up)
            #expect(HalfPrecision.bfloat16Bits(x) == UInt16(pick >> 16), "\(x) (\(String(x.bitPattern, radix: 16)))")
        }
    }

    #if !(os(macOS) && arch(x86_64))
    @Test func float16WideningMatchesSwiftFloat16Exhaustively() {
        for h in UInt16.min...UInt16.max {
            let want = Float(Float16(bitPattern: h))
            let got = HalfPrecision.float(float16Bits: h)
            if want.isNaN { #expect(got.isNaN) } else { #expect(got.bitPattern == want.bitPattern, "\(h)") }
        }
    }

    @Test func float16NarrowingMatchesSwiftFloat16() {
        var rng = SystemRandomNumberGenerator()
        var inputs: [Float] = []
        // Every binary16 value, and every midpoint between neighbours (the ties), nudged both ways.
        for h in UInt16(0)..<0x7C00 {
            let a = Float(Float16(bitPattern: h)), b = Float(Float16(bitPattern: h + 1))
            let mid = (a + b) / 2  // exact: binary32 has 13 more mantissa bits
            inputs += [a, mid, mid.nextUp, mid.nextDown, -mid]
        }
        for _ in 0..<200_000 { inputs.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))) }
        for x in inputs where !x.isNaN {
            #expect(HalfPrecision.float16Bits(x) == Float16(x).bitPattern, "\(x) (\(String(x.bitPattern, radix: 16)))")
        }
    }
    #endif
}

// MARK: - Parity with the reference implementation

@Suite struct SafeTensorsReferenceTests {
    /// golden.safetensors was written by the `safetensors` Python package from PyTorch tensors.
    @Test func readsReferenceGoldenFile() throws {
        let expected = try SafeTensorsFixture.load("golden.json")
        let file = try SafeTensorsFile(contentsOf: safeTensorsFixtures.appendingPathComponent("golden.safetensors"))
        #expect(file.metadata == expected.metadata)
        #expect(Set(file.names) == Set(expected.tensors.keys))
        for (name, want) in expected.tensors {
            let info = try file.info(name)
            #expect(info.dtype.rawValue == want.dtype, "\(name)")
            let (shape, values) = try file.tensor(name)
            #expect(shape == want.shape, "\(name)")
            // NaN payloads compare by bit pattern too: PyTorch's .float() widens exactly, as Kiln does.
            #expect(values.map(\.bitPattern) == want.bits!, "\(name)")
        }
    }

    /// Kiln's writer, given the float32 values the reference writer narrowed, writes the same bytes.
    @Test func writerMatchesReferenceBytes() throws {
        let fixture = try SafeTensorsFixture.load("reference_writer.json")
        var writer = SafeTensorsWriter(metadata: fixture.metadata)
        for (name, t) in fixture.tensors.sorted(by: { $0.key < $1.key }) {
            try writer.add(name, shape: t.shape, values: t.source_bits!.map(Float.init(bitPattern:)),
                           dtype: SafeTensorsDType(rawValue: t.dtype)!)
        }
        let reference = try Array(Data(contentsOf: safeTensorsFixtures.appendingPathComponent("reference_writer.safetensors")))
        let ours = writer.encoded()
        #expect(ours.count == reference.count)
        if let i = ours.indices.first(where: { $0 < reference.count && ours[$0] != reference[$0] }) {
            Issue.record("first differing byte \(i): \(ours[i]) vs \(reference[i]); header: \(String(decoding: ours.prefix(200), as: UTF8.self))")
        }
    }

    /// Writes the file that `tools/make_safetensors_fixtures.py --check` verifies with the reference
    /// reader; set KILN_SAFETENSORS_EXPORT to a path to keep a copy there.
    @Test func kilnFileReadsInReference() throws {
        let fixture = try SafeTensorsFixture.load("reference_writer.json")
        var writer = SafeTensorsWriter(metadata: kilnWriterCheckMetadata)
        for (name, t) in fixture.tensors {
            try writer.add(name, shape: t.shape, values: t.source_bits!.map(Float.init(bitPattern:)),
                           dtype: SafeTensorsDType(rawValue: t.dtype)!)
        }
        try withTemporaryFolder { folder in
            let url = folder.appendingPathComponent("kiln.safetensors")
            try writer.write(to: url)
            let file = try SafeTensorsFile(contentsOf: url)
            #expect(file.metadata == kilnWriterCheckMetadata)
            #expect(Set(file.names) == Set(fixture.tensors.keys))
            if let export = ProcessInfo.processInfo.environment["KILN_SAFETENSORS_EXPORT"], !export.isEmpty {
                try writer.write(to: URL(fileURLWithPath: export))
            }
        }
    }

    @Test func jsonEscapingMatchesSerdeJSON() {
        // serde_json's output for these strings, as the reference writer emitted them.
        #expect(HeaderJSON.quoted("q\"é\n\u{1}") == #""q\"é\n\u0001""#)
        #expect(HeaderJSON.quoted("a/b\\c\t\r\u{8}\u{c}\u{1f}✓") == #""a/b\\c\t\r\b\f\u001f✓""#)
    }
}

// MARK: - Malformed files

@Suite struct SafeTensorsErrorTests {
    static let valid = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

    static func open(_ header: String, data: [UInt8] = [UInt8](repeating: 0, count: 8)) -> SafeTensorsError? {
        safeTensorsError { _ = try SafeTensorsFile(bytes: safeTensorsFile(header: header, data: data), source: "bad.safetensors") }
    }

    @Test func validBaseline() {
        #expect(Self.open(Self.valid) == nil)
    }

    @Test func fileShorterThanLengthPrefix() {
        let e = safeTensorsError { _ = try SafeTensorsFile(bytes: [1, 0, 0], source: "tiny.safetensors") }
        #expect(e == .fileTooShort(source: "tiny.safetensors", size: 3))
        #expect(e?.description.contains("tiny.safetensors") == true)
    }

    @Test func headerLengthBeyondFileOrLimit() {
        let beyond = withUnsafeBytes(of: UInt64(100).littleEndian, Array.init) + Array("{}".utf8)
        #expect(safeTensorsError { _ = try SafeTensorsFile(bytes: beyond, source: "s") }
                == .headerBeyondFile(source: "s", headerLength: 100, fileSize: 10))
        let huge = withUnsafeBytes(of: UInt64(100_000_001).littleEndian, Array.init) + Array("{}".utf8)
        #expect(safeTensorsError { _ = try SafeTensorsFile(bytes: huge, source: "s") }
                == .headerTooLarge(source: "s", headerLength: 100_000_001, limit: 100_000_000))
        let maxLength = [UInt8](repeating: 0xFF, count: 8) + Array("{}".utf8)
        #expect(safeTensorsError { _ = try SafeTensorsFile(bytes: maxLength, source: "s") }
                == .headerTooLarge(source: "s", headerLength: .max, limit: 100_000_000))
    }

    @Test(arguments: [
        ("", 0),
        ("{\"a\":", 5),
        ("{\"a\":{} x", 8),
        ("{'a':1}", 1),
        ("{\"a\":[1,]}", 8),
        ("{\"a\u{01}\":{}}", 3),
        ("{\"a\\x\":{}}", 4),
        ("{\"\\ud800\":{}}", 8),
        ("{\"a\":tru}", 5),
        ("{\"a\":01}", 6),
    ])
    func headerNotJSON(header: String, offset: Int) {
        guard case .headerNotJSON(let s, let at, _)? = Self.open(header) else {
            Issue.record("\(header): expected headerNotJSON, got \(String(describing: Self.open(header)))")
            return
        }
        #expect(s == "bad.safetensors")
        #expect(at == offset, "\(header)")
    }

    @Test func headerInvalidUTF8() {
        let bytes = withUnsafeBytes(of: UInt64(9).littleEndian, Array.init) + [0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x7B, 0x7D, 0x7D]
        guard case .headerNotJSON(_, _, let reason)? = safeTensorsError({ _ = try SafeTensorsFile(bytes: bytes) }) else {
            Issue.record("expected headerNotJSON"); return
        }
        #expect(reason.contains("UTF-8"))
    }

    @Test func headerTooDeep() {
        let deep = "{\"a\":" + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"
        guard case .headerNotJSON(_, _, let reason)? = Self.open(deep) else { Issue.record("expected headerNotJSON"); return }
        #expect(reason.contains("nesting"))
    }

    @Test(arguments: ["[1,2]", "\"text\"", "3", "null"])
    func headerNotObject(header: String) {
        #expect(Self.open(header) == .headerNotObject(source: "bad.safetensors"))
    }

    @Test(arguments: ["dtype", "shape", "data_offsets"])
    func entryMissingField(field: String) {
        var fields = [#""dtype":"F32""#, #""shape":[2]"#, #""data_offsets":[0,8]"#]
        fields.remove(at: ["dtype", "shape", "data_offsets"].firstIndex(of: field)!)
        let e = Self.open("{\"w\":{" + fields.joined(separator: ",") + "}}")
        #expect(e == .missingField(source: "bad.safetensors", tensor: "w", field: field))
        #expect(e?.description.contains("`w`") == true)
    }

    @Test func entryWrongTypes() {
        for header in [#"{"w":[1]}"#, #"{"w":{"dtype":3,"shape":[2],"data_offsets":[0,8]}}"#,
                       #"{"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}"#,
                       #"{"w":{"dtype":"F32","shape":[2],"data_offsets":{"a":0}}}"#] {
            guard case .invalidEntry(_, let tensor, _)? = Self.open(header) else {
                Issue.record("\(header): expected invalidEntry, got \(String(describing: Self.open(header))))"); continue
            }
            #expect(tensor == "w")
        }
    }

    @Test func unknownDType() {
        let e = Self.open(#"{"w":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}}"#)
        #expect(e == .unknownDType(source: "bad.safetensors", tensor: "w", dtype: "F12"))
        #expect(e?.description.contains("BF16") == true, "lists the known dtypes")
    }

    @Test(arguments: [
        #"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
        #"{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#,
        #"{"w":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}"#,
        #"{"w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#,
        #"{"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}}"#,
        #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
        #"{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}"#,
    ])
    func invalidShape(header: String) {
        guard case .invalidShape(let s, let tensor, let reason)? = Self.open(header) else {
            Issue.record("\(header): expected invalidShape, got \(String(describing: Self.open(header)))"); return
        }
        #expect(s == "bad.safetensors" && tensor == "w", "\(reason)")
    }

    @Test(arguments: [
        #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}}"#,
        #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
        #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#,
        #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
        #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999]}}"#,
    ])
    func invalidOffsets(header: String) {
        guard case .invalidOffsets(_, let tensor, _)? = Self.open(header) else {
            Issue.record("\(header): expected invalidOffsets, got \(String(describing: Self.open(header)))"); return
        }
        #expect(tensor == "w")
    }

    @Test func byteCountMismatch() {
        let e = Self.open(#"{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#)
        #expect(e == .byteCountMismatch(source: "bad.safetensors", tensor: "w", dtype: .f16, shape: [2],
                                        expectedBytes: 4, actualBytes: 8))
    }

    @Test func overlappingTensors() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(Self.open(header) == .overlappingTensors(source: "bad.safetensors", first: "a", second: "b"))
        let inside = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#
        #expect(Self.open(inside) == .overlappingTensors(source: "bad.safetensors", first: "a", second: "e"))
    }

    @Test func gapInBuffer() {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[1],"data_offsets":[6,8]}}"#
        #expect(Self.open(header) == .gapInBuffer(source: "bad.safetensors", start: 4, end: 6, before: "b"))
        let leading = #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(Self.open(leading) == .gapInBuffer(source: "bad.safetensors", start: 0, end: 4, before: "b"))
    }

    @Test func trailingBytes() {
        #expect(Self.open(Self.valid, data: [UInt8](repeating: 0, count: 12))
                == .trailingBytes(source: "bad.safetensors", covered: 8, bufferBytes: 12))
        #expect(Self.open("{}", data: [0]) == .trailingBytes(source: "bad.safetensors", covered: 0, bufferBytes: 1))
    }

    @Test func zeroSizedTensorsMayShareOffsets() {
        let header = #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F16","shape":[2,0],"data_offsets":[0,0]},"c":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"d":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}"#
        #expect(Self.open(header) == nil)
    }

    @Test func duplicateKeys() {
        let twice = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        #expect(Self.open(twice) == .duplicateKey(source: "bad.safetensors", key: "a"))
        let field = #"{"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#
        #expect(Self.open(field) == .duplicateKey(source: "bad.safetensors", key: "a.dtype"))
        let meta = #"{"__metadata__":{"k":"1","k":"2"}}"#
        #expect(Self.open(meta, data: []) == .duplicateKey(source: "bad.safetensors", key: "__metadata__.k"))
    }

    @Test func invalidMetadata() {
        #expect(Self.open(#"{"__metadata__":{"step":12}}"#, data: [])
                == .invalidMetadata(source: "bad.safetensors", key: "step", reason: "the value is a number, not a string"))
        #expect(Self.open(#"{"__metadata__":["x"]}"#, data: [])
                == .invalidMetadata(source: "bad.safetensors", key: nil, reason: "it is an array, not an object"))
    }

    @Test func missingTensorListsCloseNames() throws {
        var writer = SafeTensorsWriter()
        for name in ["model.down.0.conv.weight", "model.down.0.conv.bias", "model.down.1.conv.weight", "model.up.0.norm.weight", "other"] {
            try writer.add(name, shape: [1], values: [0])
        }
        let file = try SafeTensorsFile(bytes: writer.encoded(), source: "unet.safetensors")
        let e = safeTensorsError { _ = try file.tensor("down.0.conv.weight") }
        guard case .tensorNotFound(let s, let name, let close)? = e else { Issue.record("expected tensorNotFound"); return }
        #expect(s == "unet.safetensors" && name == "down.0.conv.weight")
        #expect(close.first == "model.down.0.conv.weight")
        #expect(close.contains("model.down.1.conv.weight"))
        #expect(!close.contains("other"))
        #expect(e!.description.contains("model.down.0.conv.weight"))
        let typo = safeTensorsError { _ = try file.info("model.down.0.conv.wieght") }
        guard case .tensorNotFound(_, _, let close2)? = typo else { Issue.record("expected tensorNotFound"); return }
        #expect(close2.first == "model.down.0.conv.weight")
        let none = safeTensorsError { _ = try file.tensor("zzzzzzzzzzzzzzzzzzzz") }
        #expect(none == .tensorNotFound(source: "unet.safetensors", name: "zzzzzzzzzzzzzzzzzzzz", closeNames: []))
    }

    @Test func expectShape() throws {
        var writer = SafeTensorsWriter()
        try writer.add("conv.weight", shape: [4, 3, 3, 3], values: [Float](repeating: 1, count: 108))
        let file = try SafeTensorsFile(bytes: writer.encoded(), source: "m.safetensors")
        #expect(try file.expect("conv.weight", shape: [4, 3, 3, 3]).count == 108)
        let e = safeTensorsError { _ = try file.expect("conv.weight", shape: [8, 3, 3, 3]) }
        #expect(e == .shapeMismatch(source: "m.safetensors", tensor: "conv.weight", expected: [8, 3, 3, 3], actual: [4, 3, 3, 3]))
        #expect(e!.description.contains("[8, 3, 3, 3]") && e!.description.contains("[4, 3, 3, 3]"))
    }

    @Test func unsupportedAndUnrepresentableDTypes() throws {
        let header = #"{"f8":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]},"big":{"dtype":"I64","shape":[1],"data_offsets":[2,10]},"f4":{"dtype":"F4","shape":[4],"data_offsets":[10,12]}}"#
        var data: [UInt8] = [0, 0]
        withUnsafeBytes(of: Int64(16_777_217).littleEndian) { data += $0 }
        data += [0, 0]
        let file = try SafeTensorsFile(bytes: safeTensorsFile(header: header, data: data), source: "q.safetensors")
        #expect(try file.info("f8").dtype == .f8e4m3, "listed even though unreadable")
        #expect(safeTensorsError { _ = try file.tensor("f8") } == .unsupportedDType(source: "q.safetensors", tensor: "f8", dtype: .f8e4m3))
        #expect(safeTensorsError { _ = try file.tensor("f4") } == .unsupportedDType(source: "q.safetensors", tensor: "f4", dtype: .f4))
        #expect(safeTensorsError { _ = try file.tensor("big") }
                == .notRepresentable(source: "q.safetensors", tensor: "big", index: 0, value: "16777217"))
    }

    @Test func writerRejectsInvalidTensors() throws {
        var writer = SafeTensorsWriter()
        try writer.add("a", shape: [2], values: [1, 2])
        let cases: [(String, [Int], [Float], SafeTensorsDType)] = [
            ("a", [1], [1], .f32),                 // duplicate
            ("__metadata__", [1], [1], .f32),      // reserved
            ("b", [3], [1, 2], .f32),              // count mismatch
            ("c", [-1], [], .f32),                 // negative dimension
            ("d", [1], [1], .i64),                 // not writable
            ("e", [Int.max, 3], [], .f32),         // overflow
        ]
        for (name, shape, values, dtype) in cases {
            guard case .invalidTensor(let n, let reason)? = safeTensorsError({ try writer.add(name, shape: shape, values: values, dtype: dtype) }) else {
                Issue.record("\(name): expected invalidTensor"); continue
            }
            #expect(n == name, "\(reason)")
        }
        #expect(writer.names == ["a"])
    }

    @Test func ioErrorsNameThePath() throws {
        let missing = URL(fileURLWithPath: "/nonexistent-kiln-folder/w.safetensors")
        guard case .io(let path, let reason)? = safeTensorsError({ _ = try SafeTensorsFile(contentsOf: missing) }) else {
            Issue.record("expected io"); return
        }
        #expect(path == missing.path && reason.contains("open"))
        guard case .io(let path2, let reason2)? = safeTensorsError({ try SafeTensorsWriter().write(to: missing) }) else {
            Issue.record("expected io"); return
        }
        #expect(path2 == missing.path && reason2.contains("folder does not exist"))
        try withTemporaryFolder { folder in
            guard case .io(_, let reason3)? = safeTensorsError({ _ = try SafeTensorsFile(contentsOf: folder) }) else {
                Issue.record("expected io"); return
            }
            #expect(reason3.contains("not a regular file"))
            let short = folder.appendingPathComponent("short.safetensors")
            try Data([1, 2]).write(to: short)
            #expect(safeTensorsError { _ = try SafeTensorsFile(contentsOf: short) } == .fileTooShort(source: short.path, size: 2))
            let empty = folder.appendingPathComponent("empty.safetensors")
            try Data().write(to: empty)
            #expect(safeTensorsError { _ = try SafeTensorsFile(contentsOf: empty) } == .fileTooShort(source: empty.path, size: 0))
        }
    }

    /// Every prefix of a valid file, and random byte changes in it, give a typed error or a valid
    /// file, never a crash or an out-of-bounds read.
    @Test func truncatedAndCorruptedFilesNeverCrash() throws {
        let golden = try Array(Data(contentsOf: safeTensorsFixtures.appendingPathComponent("golden.safetensors")))
        for n in 0..<golden.count {
            #expect(safeTensorsError { _ = try SafeTensorsFile(bytes: golden[..<n]) } != nil, "prefix \(n)")
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var bytes = golden
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<min(bytes.count, 700), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                let file = try SafeTensorsFile(bytes: bytes)
                for name in file.names { _ = try? file.tensor(name) }
            } catch is SafeTensorsError {
            } catch {
                Issue.record("untyped error \(error)")
            }
        }
    }
}
