import Foundation

/// A glTF 2.0 file opened for editing: its JSON and, for GLB, its binary chunk.
///
/// Assimp's glTF 2 exporter leaves things for Kiln to finish: it drops morph-weight animations,
/// omits `baseColorFactor` when it equals the default, and lists extensions in `extensionsUsed`
/// that nothing in the file uses (`KHR_materials_volume`, `FB_ngon_encoding`), which strict
/// validators and some engines warn about. Kiln reads the file back, edits the JSON and writes it
/// again (GLB: the 12-byte header, a JSON chunk padded with spaces, a BIN chunk padded with zeros).
struct GLTFDocument {
    var json: [String: Any]
    /// The GLB's BIN chunk (empty for a `.gltf`, whose buffers are files of their own).
    var binary: Data
    let source: String

    func failure(_ why: String) -> MeshIOError { MeshIOError(path: source, reason: "Assimp's glTF could not be finished: \(why)") }

    /// Opens a GLB.
    init(glb: Data, source: String) throws {
        self.source = source
        self.binary = Data()
        self.json = [:]
        func word(_ at: Int) -> UInt32 { glb.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) } }
        guard glb.count >= 20, word(0) == 0x4654_6C67, word(4) == 2 else { throw failure("not a glTF 2 binary") }
        let jsonLength = Int(word(12))
        guard word(16) == 0x4E4F_534A, 20 + jsonLength <= glb.count else { throw failure("no JSON chunk") }
        json = try Self.object(glb.subdata(in: 20..<(20 + jsonLength)), failure: failure)
        let binStart = 20 + jsonLength
        if binStart + 8 <= glb.count, word(binStart + 4) == 0x004E_4942 {
            binary = glb.subdata(in: (binStart + 8)..<min(glb.count, binStart + 8 + Int(word(binStart))))
        }
    }

    /// Opens a `.gltf` (JSON text).
    init(gltf: Data, source: String) throws {
        self.source = source
        self.binary = Data()
        self.json = [:]
        json = try Self.object(gltf, failure: failure)
    }

    private static func object(_ data: Data, failure: (String) -> MeshIOError) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw failure("unreadable JSON") }
        return object
    }

    // MARK: Edits

    /// Sets every material's `pbrMetallicRoughness.baseColorFactor` to `factor` (linear RGBA, as
    /// glTF defines it), so the colour is stated rather than left to the default.
    mutating func setBaseColorFactor(_ factor: SIMD4<Float>) {
        guard var materials = json["materials"] as? [[String: Any]] else { return }
        for i in materials.indices {
            var pbr = materials[i]["pbrMetallicRoughness"] as? [String: Any] ?? [:]
            pbr["baseColorFactor"] = [factor.x, factor.y, factor.z, factor.w].map(Double.init)
            materials[i]["pbrMetallicRoughness"] = pbr
        }
        json["materials"] = materials
    }

    /// Keeps in `extensionsUsed` (and `extensionsRequired`) only the extensions that some
    /// `extensions` object in the file names; removes the lists when nothing is left.
    mutating func dropUnusedExtensions() {
        var used = Set<String>()
        func visit(_ value: Any) {
            if let object = value as? [String: Any] {
                for (key, child) in object {
                    if key == "extensions", let names = child as? [String: Any] { used.formUnion(names.keys) }
                    visit(child)
                }
            } else if let array = value as? [Any] {
                array.forEach(visit)
            }
        }
        for (key, value) in json where key != "extensionsUsed" && key != "extensionsRequired" { visit(value) }
        for key in ["extensionsUsed", "extensionsRequired"] {
            let kept = (json[key] as? [String] ?? []).filter(used.contains)
            json[key] = kept.isEmpty ? nil : kept
        }
    }

    /// Appends `values` to the binary chunk (4-byte aligned) with a buffer view and a scalar
    /// float accessor (with its min and max when asked); returns the accessor's index.
    mutating func appendFloatAccessor(_ values: [Float], minMax: Bool = false) -> Int {
        while binary.count % 4 != 0 { binary.append(0) }
        let offset = binary.count
        values.withUnsafeBufferPointer { binary.append(Data(buffer: $0)) }
        var bufferViews = json["bufferViews"] as? [[String: Any]] ?? []
        var accessors = json["accessors"] as? [[String: Any]] ?? []
        bufferViews.append(["buffer": 0, "byteOffset": offset, "byteLength": values.count * 4])
        var accessor: [String: Any] = ["bufferView": bufferViews.count - 1, "componentType": 5126, "count": values.count, "type": "SCALAR"]
        if minMax, let lo = values.min(), let hi = values.max() { accessor["min"] = [lo]; accessor["max"] = [hi] }
        accessors.append(accessor)
        json["bufferViews"] = bufferViews
        json["accessors"] = accessors
        return accessors.count - 1
    }

    // MARK: Writing

    /// The document as a GLB.
    func glbData() throws -> Data {
        var json = self.json
        var binary = self.binary
        while binary.count % 4 != 0 { binary.append(0) }
        if !binary.isEmpty {
            var buffers = json["buffers"] as? [[String: Any]] ?? []
            if buffers.isEmpty { buffers = [[:]] }
            buffers[0]["byteLength"] = binary.count
            json["buffers"] = buffers
        }
        var text = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        while text.count % 4 != 0 { text.append(0x20) }
        var out = Data()
        func put(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(0x4654_6C67); put(2); put(UInt32(12 + 8 + text.count + (binary.isEmpty ? 0 : 8 + binary.count)))
        put(UInt32(text.count)); put(0x4E4F_534A); out.append(text)
        if !binary.isEmpty { put(UInt32(binary.count)); put(0x004E_4942); out.append(binary) }
        return out
    }

    /// The document as `.gltf` JSON text (its buffers stay the files they name).
    func gltfData() throws -> Data {
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .prettyPrinted])
    }
}
