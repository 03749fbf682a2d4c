import Foundation
import KilnAsset
import KilnCore
import Testing

// MARK: - Helpers shared by the splat tests

/// A random cloud of `count` Gaussians with every field drawn from a plausible range.
func splatRandomCloud(count: Int, degree: Int, seed: UInt64) -> GaussianCloud {
    var rng = RNG(seed: seed)
    func draw(_ range: ClosedRange<Float>) -> Float { Float.random(in: range, using: &rng) }
    var cloud = GaussianCloud(shDegree: degree)
    let k = GaussianCloud.coefficientCount(degree: degree)
    for _ in 0..<count {
        cloud.append(mean: SIMD3(draw(-10...10), draw(-10...10), draw(-10...10)),
                     logScale: SIMD3(draw(-6...1), draw(-6...1), draw(-6...1)),
                     rotation: SIMD4(draw(-2...2), draw(-2...2), draw(-2...2), draw(-2...2)),
                     opacityLogit: draw(-8...8),
                     sh: (0..<(k * 3)).map { _ in draw(-1.5...1.5) })
    }
    return cloud
}

/// The first float where two clouds differ by bit pattern, described, or nil when identical.
func splatBitMismatch(_ a: GaussianCloud, _ b: GaussianCloud) -> String? {
    guard a.count == b.count, a.shDegree == b.shDegree else {
        return "count/degree \(a.count)/\(a.shDegree) vs \(b.count)/\(b.shDegree)"
    }
    let k = a.coefficientsPerChannel
    for i in 0..<a.count {
        let fa: [Float] = [a.means[i].x, a.means[i].y, a.means[i].z, a.logScales[i].x, a.logScales[i].y,
                           a.logScales[i].z, a.rotations[i][0], a.rotations[i][1], a.rotations[i][2],
                           a.rotations[i][3], a.opacityLogits[i]] + a.sh[(i * k * 3)..<((i + 1) * k * 3)]
        let fb: [Float] = [b.means[i].x, b.means[i].y, b.means[i].z, b.logScales[i].x, b.logScales[i].y,
                           b.logScales[i].z, b.rotations[i][0], b.rotations[i][1], b.rotations[i][2],
                           b.rotations[i][3], b.opacityLogits[i]] + b.sh[(i * k * 3)..<((i + 1) * k * 3)]
        let names = ["mean.x", "mean.y", "mean.z", "logScale.x", "logScale.y", "logScale.z",
                     "rot.w", "rot.x", "rot.y", "rot.z", "opacityLogit"]
            + (0..<(k * 3)).map { "sh[k=\($0 / 3), c=\($0 % 3)]" }
        for j in fa.indices where fa[j].bitPattern != fb[j].bitPattern {
            return "Gaussian \(i) \(names[j]): \(fa[j]) vs \(fb[j])"
        }
    }
    return nil
}

/// Byte length of a PLY header, `end_header\n` included.
func splatHeaderLength(_ bytes: [UInt8]) -> Int {
    let marker = Array("end_header\n".utf8)
    for i in 0...(bytes.count - marker.count) where Array(bytes[i..<(i + marker.count)]) == marker {
        return i + marker.count
    }
    fatalError("no end_header")
}

/// The file with its header text edited (`old` replaced by `new`), body unchanged.
func splatEditingHeader(_ bytes: [UInt8], _ old: String, _ new: String) -> [UInt8] {
    let h = splatHeaderLength(bytes)
    let header = String(decoding: bytes[..<h], as: UTF8.self)
    precondition(header.contains(old), "header has no \(old)")
    return Array(header.replacingOccurrences(of: old, with: new).utf8) + bytes[h...]
}

/// A PLY built from explicit typed properties and rows, for layouts `SplatPLY.encode` never writes.
func splatMakePLY(format: String = "binary_little_endian 1.0", preamble: [String] = [],
                  properties: [(type: String, name: String)], rows: [[Double]],
                  trailer: [String] = [], extraBody: [UInt8] = [], lineEnding: String = "\n") -> [UInt8] {
    var lines = ["ply", "format \(format)"] + preamble + ["element vertex \(rows.count)"]
    lines += properties.map { "property \($0.type) \($0.name)" }
    lines += trailer + ["end_header"]
    var out = Array(lines.map { $0 + lineEnding }.joined().utf8)
    func append<T>(_ v: T) { withUnsafeBytes(of: v) { out += $0 } }  // tests run on little-endian hosts
    for row in rows {
        precondition(row.count == properties.count)
        for (p, v) in zip(properties, row) {
            switch p.type {
            case "char", "int8": append(Int8(v))
            case "uchar", "uint8": append(UInt8(v))
            case "short", "int16": append(Int16(v))
            case "ushort", "uint16": append(UInt16(v))
            case "int", "int32": append(Int32(v))
            case "uint", "uint32": append(UInt32(v))
            case "float", "float32": append(Float(v))
            case "double", "float64": append(v)
            default: fatalError("type \(p.type)")
            }
        }
    }
    return out + extraBody
}

/// Gaussian `i` of a cloud as 3DGS PLY property values by name (channel-major f_rest).
func splatPLYValues(_ cloud: GaussianCloud, _ i: Int) -> [String: Double] {
    let k = cloud.coefficientsPerChannel
    let m = cloud.means[i], s = cloud.logScales[i], q = cloud.rotations[i]
    var v: [String: Double] = [
        "x": Double(m.x), "y": Double(m.y), "z": Double(m.z), "nx": 0, "ny": 0, "nz": 0,
        "opacity": Double(cloud.opacityLogits[i]),
        "scale_0": Double(s.x), "scale_1": Double(s.y), "scale_2": Double(s.z),
        "rot_0": Double(q[0]), "rot_1": Double(q[1]), "rot_2": Double(q[2]), "rot_3": Double(q[3]),
    ]
    for c in 0..<3 {
        v["f_dc_\(c)"] = Double(cloud.sh[(i * k) * 3 + c])
        for coefficient in 1..<max(k, 1) {
            v["f_rest_\(c * (k - 1) + coefficient - 1)"] = Double(cloud.sh[(i * k + coefficient) * 3 + c])
        }
    }
    return v
}

/// The format error a decode throws, or nil when it succeeds.
func splatFormatError(_ decode: () throws -> GaussianCloud) -> SplatFormatError? {
    do {
        _ = try decode()
        return nil
    } catch let error as SplatFormatError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}

func splatPLYError(_ bytes: [UInt8], source: String = "test.ply") -> SplatFormatError? {
    splatFormatError { try SplatPLY.decode(bytes, source: source) }
}

// MARK: - Round trips and layout

@Suite struct SplatPLYTests {
    @Test(arguments: [0, 1, 2, 3])
    func roundTripIsBitExact(degree: Int) throws {
        var cloud = splatRandomCloud(count: 57, degree: degree, seed: UInt64(11 + degree))
        // Values a lossy writer would disturb: signed zero, subnormals, the float extremes.
        cloud.means[0] = SIMD3(-0.0, .leastNonzeroMagnitude, -.greatestFiniteMagnitude)
        cloud.opacityLogits[1] = .greatestFiniteMagnitude
        cloud.sh[cloud.sh.count - 1] = -.leastNormalMagnitude
        let bytes = SplatPLY.encode(cloud)
        let k = GaussianCloud.coefficientCount(degree: degree)
        #expect(bytes.count == splatHeaderLength(bytes) + 57 * (14 + 3 * k) * 4)
        let decoded = try SplatPLY.decode(bytes, source: "round.ply")
        #expect(decoded.shDegree == degree)
        #expect(splatBitMismatch(decoded, cloud) == nil)
        // Data and slices decode the same as arrays.
        #expect(splatBitMismatch(try SplatPLY.decode(Data(bytes)), cloud) == nil)
        #expect(splatBitMismatch(try SplatPLY.decode(bytes[...]), cloud) == nil)
    }

    @Test(arguments: [0, 3])
    func emptyCloudRoundTrips(degree: Int) throws {
        let bytes = SplatPLY.encode(GaussianCloud(shDegree: degree))
        #expect(bytes.count == splatHeaderLength(bytes))
        let decoded = try SplatPLY.decode(bytes)
        #expect(decoded.count == 0 && decoded.shDegree == degree)
    }

    /// Reads raw floats at fixed offsets so a coefficient-major or otherwise wrong f_rest layout fails.
    @Test func restCoefficientsAreChannelMajor() throws {
        var cloud = GaussianCloud(shDegree: 1)  // K = 4: DC + 3 rest coefficients per channel
        for g in 0..<2 {
            let base = Float(1000 * g)
            // sh[k·3 + c] = base + 100·c + k
            let sh = (0..<4).flatMap { k in (0..<3).map { c in base + Float(100 * c + k) } }
            cloud.append(mean: SIMD3(base + 1, base + 2, base + 3), logScale: SIMD3(base + 4, base + 5, base + 6),
                         rotation: SIMD4(base + 7, base + 8, base + 9, base + 10), opacityLogit: base + 11, sh: sh)
        }
        let bytes = SplatPLY.encode(cloud)
        let start = splatHeaderLength(bytes)
        let floats: [Float] = bytes.withUnsafeBytes { raw in
            (0..<((bytes.count - start) / 4)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: start + 4 * $0, as: UInt32.self)))
            }
        }
        #expect(floats.count == 2 * 26)
        for g in 0..<2 {
            let b = Float(1000 * g)
            let expected: [Float] = [
                b + 1, b + 2, b + 3,  // x y z
                0, 0, 0,  // nx ny nz
                b + 0, b + 100, b + 200,  // f_dc_0..2 = coefficient 0 of R, G, B
                b + 1, b + 2, b + 3,  // f_rest_0..2: red coefficients 1..3
                b + 101, b + 102, b + 103,  // f_rest_3..5: green
                b + 201, b + 202, b + 203,  // f_rest_6..8: blue
                b + 11,  // opacity
                b + 4, b + 5, b + 6,  // scale_0..2
                b + 7, b + 8, b + 9, b + 10,  // rot_0..3 = w x y z
            ]
            #expect(Array(floats[(g * 26)..<(g * 26 + 26)]) == expected)
        }
        #expect(splatBitMismatch(try SplatPLY.decode(bytes), cloud) == nil)
    }

    @Test func headerTextDegree0() {
        let bytes = SplatPLY.encode(splatRandomCloud(count: 3, degree: 0, seed: 1))
        let header = String(decoding: bytes[..<splatHeaderLength(bytes)], as: UTF8.self)
        #expect(header == """
            ply
            format binary_little_endian 1.0
            element vertex 3
            property float x
            property float y
            property float z
            property float nx
            property float ny
            property float nz
            property float f_dc_0
            property float f_dc_1
            property float f_dc_2
            property float opacity
            property float scale_0
            property float scale_1
            property float scale_2
            property float rot_0
            property float rot_1
            property float rot_2
            property float rot_3
            end_header

            """)
    }

    @Test func headerTextDegree3() {
        let bytes = SplatPLY.encode(splatRandomCloud(count: 2, degree: 3, seed: 2))
        let header = String(decoding: bytes[..<splatHeaderLength(bytes)], as: UTF8.self)
        var expected = "ply\nformat binary_little_endian 1.0\nelement vertex 2\n"
        for name in ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] {
            expected += "property float \(name)\n"
        }
        for j in 0..<45 { expected += "property float f_rest_\(j)\n" }
        for name in ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"] {
            expected += "property float \(name)\n"
        }
        expected += "end_header\n"
        #expect(header == expected)
        #expect(bytes.count == header.utf8.count + 2 * 62 * 4)
    }

    // MARK: Generic header reading

    @Test func readsExtraPropertiesCommentsAndAnyOrder() throws {
        let cloud = splatRandomCloud(count: 5, degree: 1, seed: 77)
        var properties: [(type: String, name: String)] = [
            ("float", "rot_2"), ("float", "f_dc_1"), ("float", "x"), ("float", "extra"), ("uchar", "red"),
            ("double", "opacity"), ("float", "scale_0"), ("short", "flags"), ("float", "y"),
        ]
        let taken = Set(properties.map(\.name))
        for name in SplatPLY.propertyNames(shDegree: 1).reversed() where !taken.contains(name) {
            properties.append(("float", name))
        }
        properties.append(("double", "tail"))
        let rows = (0..<5).map { i in
            let v = splatPLYValues(cloud, i)
            return properties.map { p in v[p.name] ?? (p.type == "uchar" ? 200 : -3) }
        }
        let bytes = splatMakePLY(preamble: ["comment made by hand", "obj_info extras"],
                                 properties: properties, rows: rows)
        let decoded = try SplatPLY.decode(bytes, source: "extras.ply")
        #expect(splatBitMismatch(decoded, cloud) == nil)
    }

    @Test func readsCRLFHeader() throws {
        let cloud = splatRandomCloud(count: 4, degree: 2, seed: 5)
        let names = SplatPLY.propertyNames(shDegree: 2)
        let rows = (0..<4).map { i in names.map { splatPLYValues(cloud, i)[$0]! } }
        let bytes = splatMakePLY(preamble: ["comment windows"], properties: names.map { ("float", $0) },
                                 rows: rows, lineEnding: "\r\n")
        #expect(splatBitMismatch(try SplatPLY.decode(bytes), cloud) == nil)
    }

    @Test func skipsOtherElementsBeforeAndAfterVertices() throws {
        let cloud = splatRandomCloud(count: 3, degree: 0, seed: 9)
        let bytes = SplatPLY.encode(cloud)
        // A fixed-size element before the vertices and a list element after them.
        var before = splatEditingHeader(bytes, "element vertex 3\n",
                                        "element camera 2\nproperty float fx\nproperty uint id\nelement vertex 3\n")
        let h = splatHeaderLength(before)
        before.insert(contentsOf: [UInt8](repeating: 7, count: 2 * 8), at: h)
        var faces: [UInt8] = [2]  // row 0: 2 × int32
        faces += [1, 0, 0, 0, 2, 0, 0, 0]
        faces += [0]  // row 1: empty list
        let both = splatEditingHeader(before, "end_header\n",
                                      "element face 2\nproperty list uchar int vertex_indices\nend_header\n") + faces
        #expect(splatBitMismatch(try SplatPLY.decode(before), cloud) == nil)
        #expect(splatBitMismatch(try SplatPLY.decode(both), cloud) == nil)
        // A list before the vertices claiming 10 ints where 1 is stored: the vertices would overrun.
        var longList = splatEditingHeader(bytes, "element vertex 3\n",
                                          "element tags 1\nproperty list uchar int ids\nelement vertex 3\n")
        let listStart = splatHeaderLength(longList)
        longList.insert(contentsOf: [10, 0, 0, 0, 0], at: listStart)
        #expect(splatPLYError(longList) == .truncated(source: "test.ply", expectedBytes: listStart + 41 + 3 * 68,
                                                      actualBytes: longList.count))
        // The list says 2 items but the file stops short.
        #expect(splatPLYError(Array(both.dropLast(2))) == .truncated(source: "test.ply", expectedBytes: both.count - 1,
                                                                       actualBytes: both.count - 2))
    }

    // MARK: Bad inputs

    @Test func rejectsWrongMagic() {
        let valid = SplatPLY.encode(splatRandomCloud(count: 2, degree: 0, seed: 3))
        var bad = valid
        bad[2] = UInt8(ascii: "z")
        #expect(splatPLYError(bad) == .notPLY(source: "test.ply"))
        #expect(splatPLYError([]) == .notPLY(source: "test.ply"))
        #expect(splatPLYError(Array("plyfoo\n".utf8)) == .notPLY(source: "test.ply"))
        #expect(splatPLYError(SplatFile.encode(splatRandomCloud(count: 2, degree: 0, seed: 3))) == .notPLY(source: "test.ply"))
        #expect(SplatFormatError.notPLY(source: "a.ply").description.contains("a.ply"))
    }

    @Test(arguments: ["ascii", "binary_big_endian"])
    func rejectsOtherFormats(format: String) {
        let valid = SplatPLY.encode(splatRandomCloud(count: 2, degree: 0, seed: 3))
        let bad = splatEditingHeader(valid, "binary_little_endian", format)
        let error = splatPLYError(bad, source: "scan.ply")
        #expect(error == .unsupportedPLYFormat(source: "scan.ply", format: format))
        let text = error?.description ?? ""
        #expect(text.contains("scan.ply") && text.contains(format) && text.contains("binary_little_endian"))
    }

    @Test func rejectsMissingProperty() {
        let valid = SplatPLY.encode(splatRandomCloud(count: 2, degree: 1, seed: 4))
        for name in ["x", "f_dc_2", "opacity", "scale_1", "rot_3", "f_rest_4"] {
            var bad = splatEditingHeader(valid, "property float \(name)\n", "")
            if name.hasPrefix("f_rest") {  // keep 9 f_rest_* names so the degree is still known
                bad = splatEditingHeader(bad, "property float f_rest_8\n", "property float f_rest_8\nproperty float f_rest_99\n")
            }
            let error = splatPLYError(bad)
            #expect(error == .missingProperty(source: "test.ply", name: name))
            #expect(error?.description.contains("`\(name)`") == true)
        }
    }

    @Test func rejectsNonFloatRequiredPropertyAndLists() {
        let valid = SplatPLY.encode(splatRandomCloud(count: 2, degree: 0, seed: 4))
        let intX = splatEditingHeader(valid, "property float x\n", "property int x\n")
        #expect(splatPLYError(intX) == .unsupportedPropertyType(source: "test.ply", name: "x", type: "int"))
        let list = splatEditingHeader(valid, "property float nx\n", "property list uchar float nx\n")
        #expect(splatPLYError(list) == .unsupportedPropertyType(source: "test.ply", name: "nx", type: "list uchar float"))
    }

    @Test func rejectsTruncatedBody() {
        let valid = SplatPLY.encode(splatRandomCloud(count: 5, degree: 2, seed: 6))
        let h = splatHeaderLength(valid)
        let stride = (14 + 3 * 9) * 4
        for cut in [h, h + 1, h + 4, h + stride, h + 2 * stride + 3, valid.count - 4, valid.count - 1] {
            let error = splatPLYError(Array(valid[..<cut]))
            #expect(error == .truncated(source: "test.ply", expectedBytes: valid.count, actualBytes: cut), "cut at \(cut)")
        }
        // Cuts inside the header.
        for cut in [5, 40, h - 12] {
            #expect(splatPLYError(Array(valid[..<cut])) == .missingEndHeader(source: "test.ply", searchedBytes: cut,
                                                                              limitBytes: SplatPLY.headerLimitBytes))
        }
        #expect(splatPLYError(Array(valid[..<2])) == .notPLY(source: "test.ply"))
        // `end_header` without its newline ends the header at the end of the file.
        #expect(splatPLYError(Array(valid[..<(h - 1)])) == .truncated(source: "test.ply", expectedBytes: valid.count - 1,
                                                                        actualBytes: h - 1))
        let text = SplatFormatError.truncated(source: "t.ply", expectedBytes: 10, actualBytes: 5).description
        #expect(text.contains("10") && text.contains("5") && text.contains("re-export"))
    }

    @Test func rejectsCountLargerThanData() {
        let valid = SplatPLY.encode(splatRandomCloud(count: 5, degree: 0, seed: 7))
        let stride = 17 * 4
        let six = splatEditingHeader(valid, "element vertex 5", "element vertex 6")
        #expect(splatPLYError(six) == .truncated(source: "test.ply", expectedBytes: valid.count + stride, actualBytes: valid.count))
        let huge = splatEditingHeader(valid, "element vertex 5", "element vertex 4294967295")
        let hugeHeader = splatHeaderLength(huge)
        #expect(splatPLYError(huge) == .truncated(source: "test.ply", expectedBytes: hugeHeader + 4_294_967_295 * stride,
                                                  actualBytes: huge.count))
    }

    @Test func rejectsCountsBeyondArithmetic() {
        let valid = SplatPLY.encode(splatRandomCloud(count: 1, degree: 0, seed: 7))
        for count in ["9223372036854775807", "99999999999999999999999"] {
            let bad = splatEditingHeader(valid, "element vertex 1", "element vertex \(count)")
            #expect(splatPLYError(bad) == .countOutOfRange(source: "test.ply", element: "vertex", count: count))
        }
        let negative = splatEditingHeader(valid, "element vertex 1", "element vertex -1")
        guard case .malformedHeader(_, 3, _, _) = splatPLYError(negative) else {
            Issue.record("negative count not rejected as malformed")
            return
        }
    }

    @Test func rejectsTrailingBytes() {
        let valid = SplatPLY.encode(splatRandomCloud(count: 5, degree: 0, seed: 8))
        #expect(splatPLYError(valid + [0]) == .trailingBytes(source: "test.ply", expectedBytes: valid.count, actualBytes: valid.count + 1))
        let four = splatEditingHeader(valid, "element vertex 5", "element vertex 4")
        #expect(splatPLYError(four) == .trailingBytes(source: "test.ply", expectedBytes: four.count - 68, actualBytes: four.count))
    }

    @Test func rejectsNonFiniteValues() {
        var cloud = splatRandomCloud(count: 6, degree: 1, seed: 9)
        cloud.sh[(3 * 4 + 2) * 3 + 1] = .nan  // Gaussian 3, coefficient 2, green → f_rest_{1·3 + 1}
        #expect(splatPLYError(SplatPLY.encode(cloud)) == .nonFinite(source: "test.ply", index: 3, property: "f_rest_4"))
        cloud = splatRandomCloud(count: 6, degree: 0, seed: 9)
        cloud.means[0].y = .infinity
        #expect(splatPLYError(SplatPLY.encode(cloud)) == .nonFinite(source: "test.ply", index: 0, property: "y"))
        cloud = splatRandomCloud(count: 6, degree: 0, seed: 9)
        cloud.rotations[5][0] = -.infinity  // w
        let error = splatPLYError(SplatPLY.encode(cloud))
        #expect(error == .nonFinite(source: "test.ply", index: 5, property: "rot_0"))
        #expect(error?.description.contains("Gaussian 5") == true)
        // A double beyond the float range cannot be a finite Float.
        let names = SplatPLY.propertyNames(shDegree: 0)
        var row = names.map { _ in 0.5 }
        row[names.firstIndex(of: "opacity")!] = 1e300
        let bytes = splatMakePLY(properties: names.map { $0 == "opacity" ? ("double", $0) : ("float", $0) }, rows: [row])
        #expect(splatPLYError(bytes) == .nonFinite(source: "test.ply", index: 0, property: "opacity"))
    }

    @Test(arguments: [7, 1, 10, 46])
    func rejectsUnsupportedRestCount(count: Int) {
        let names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2"] + (0..<count).map { "f_rest_\($0)" }
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
        let bytes = splatMakePLY(properties: names.map { ("float", $0) }, rows: [names.map { _ in 0 }])
        let error = splatPLYError(bytes)
        #expect(error == .unsupportedSHCount(source: "test.ply", restCount: count))
        #expect(error?.description.contains("\(count) f_rest") == true)
    }

    @Test func rejectsHeaderProblems() {
        let valid = SplatPLY.encode(splatRandomCloud(count: 1, degree: 0, seed: 10))
        // No end_header in the first 64 KiB.
        let longComment = "comment " + String(repeating: "x", count: 70_000) + "\n"
        let long = splatEditingHeader(valid, "format binary_little_endian 1.0\n", "format binary_little_endian 1.0\n" + longComment)
        #expect(splatPLYError(long) == .missingEndHeader(source: "test.ply", searchedBytes: SplatPLY.headerLimitBytes,
                                                         limitBytes: SplatPLY.headerLimitBytes))
        let noVertex = splatEditingHeader(valid, "element vertex 1", "element point 1")
        #expect(splatPLYError(noVertex) == .missingVertexElement(source: "test.ply"))
        let unknown = splatEditingHeader(valid, "end_header\n", "bogus line\nend_header\n")
        guard case .malformedHeader(_, _, "bogus line", _) = splatPLYError(unknown) else {
            Issue.record("unknown keyword not rejected")
            return
        }
        let badType = splatEditingHeader(valid, "property float x\n", "property float128 x\n")
        guard case .malformedHeader(_, 4, _, let reason) = splatPLYError(badType), reason.contains("float128") else {
            Issue.record("unknown type not rejected")
            return
        }
        let noFormat = splatEditingHeader(valid, "format binary_little_endian 1.0\n", "")
        guard case .malformedHeader = splatPLYError(noFormat) else {
            Issue.record("missing format line not rejected")
            return
        }
    }
}
