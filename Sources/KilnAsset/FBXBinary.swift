import Foundation

/// Binary FBX node records, read leniently and written as the format requires.
///
/// A binary FBX file is a 27-byte header (`Kaydara FBX Binary  \0\x1a\0` and a uint32 version),
/// a list of node records ended by a null record, and a footer. A record is its end offset,
/// property count and property-list length (uint64 each from version 7500, uint32 before), a
/// name (uint8 length + bytes), the properties, then its children — and, when it has children,
/// a null record (25 zero bytes from 7500, 13 before) that closes their list. Blender's
/// importer and Assimp's reader both insist on that closing record.
///
/// Assimp 5.2.5's binary writer (`fbx`) leaves it out of every nested list, so neither Blender
/// ("failed to read nested block sentinel") nor Assimp itself ("block offset is out of range")
/// can open its files. `FBXBinary.finishingAssimpOutput` rewrites such a file with the records
/// in place; properties are copied byte for byte. Blender refuses ASCII FBX outright, which is
/// why Kiln writes binary FBX this way rather than Assimp's ASCII `fbxa`.
public enum FBXBinary {
    static let magic = Array("Kaydara FBX Binary  ".utf8) + [0, 0x1A, 0]

    /// One node record: its name, its properties as stored, its children.
    struct Node {
        var name: [UInt8]
        var propertyCount: UInt64
        var properties: Data
        var children: [Node]

        /// For a `P` record `"NAME", type, label, flags, value` whose value is one float64 ('D'),
        /// sets the value; other records are left alone.
        mutating func setDoubleProperty(_ property: String, to value: Double) {
            guard name == Array("P".utf8) else { return }
            let b = [UInt8](properties)
            // The first property: 'S', uint32 length, the bytes.
            guard b.count >= 5, b[0] == UInt8(ascii: "S") else { return }
            let length = Int(b[1]) | Int(b[2]) << 8 | Int(b[3]) << 16 | Int(b[4]) << 24
            guard 5 + length <= b.count, Array(b[5..<(5 + length)]) == Array(property.utf8),
                  b.count >= 9, b[b.count - 9] == UInt8(ascii: "D") else { return }
            var out = Data(b.prefix(b.count - 8))
            withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
            properties = out
        }
    }

    struct Layout {
        let version: UInt32
        var wide: Bool { version >= 7500 }
        var headerBytes: Int { wide ? 25 : 13 }  // end offset, count, length and the name's length byte
    }

    /// Assimp's binary FBX made readable and sized right: every nested list closed by its null
    /// record, and `GlobalSettings`' `UnitScaleFactor` set to 100 —
    /// Kiln's unit is the metre and FBX counts in centimetres, so with Assimp's 1 Blender
    /// imports the asset a hundred times too small.
    public static func finishingAssimpOutput(_ data: Data, source: String) throws -> Data {
        try rewritten(data, source: source) { nodes in
            guard let settings = nodes.firstIndex(where: { $0.name == Array("GlobalSettings".utf8) }),
                  let table = nodes[settings].children.firstIndex(where: { $0.name == Array("Properties70".utf8) }) else { return }
            for i in nodes[settings].children[table].children.indices {
                nodes[settings].children[table].children[i].setDoubleProperty("UnitScaleFactor", to: 100)
            }
        }
    }

    /// Reads the records, lets `edit` change them, and writes them back with a null record closing
    /// every nested list; the header, properties and footer are kept as they are. Files that
    /// already have the records keep them.
    /// - Throws: `MeshIOError` naming `source` if the data is not a binary FBX or a record's
    ///   offsets leave the file.
    static func rewritten(_ data: Data, source: String, edit: (inout [Node]) -> Void) throws -> Data {
        let bytes = [UInt8](data)
        func fail(_ why: String) -> MeshIOError { MeshIOError(path: source, reason: "not a readable binary FBX: \(why)") }
        guard bytes.count >= 27, Array(bytes[0..<23]) == magic else { throw fail("no binary FBX header") }
        let version = UInt32(bytes[23]) | UInt32(bytes[24]) << 8 | UInt32(bytes[25]) << 16 | UInt32(bytes[26]) << 24
        let layout = Layout(version: version)
        var end = 0
        var nodes = try readList(bytes, from: 27, limit: bytes.count, layout: layout, end: &end, depth: 0, fail: fail)
        edit(&nodes)
        var out = [UInt8](bytes[0..<27])
        for node in nodes { write(node, into: &out, layout: layout) }
        out += [UInt8](repeating: 0, count: layout.headerBytes)  // the top-level list's null record
        out += bytes[end...]  // the footer, as written
        return Data(out)
    }

    /// Reads records from `start` until a null record or `limit`; `end` receives the offset after
    /// the list (after its null record, when there is one).
    static func readList(_ b: [UInt8], from start: Int, limit: Int, layout: Layout, end: inout Int, depth: Int,
                         fail: (String) -> MeshIOError) throws -> [Node] {
        guard depth < 64 else { throw fail("nodes nested over 64 deep") }
        var nodes: [Node] = []
        var at = start
        func integer(_ offset: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in (0..<(layout.wide ? 8 : 4)).reversed() { v = v << 8 | UInt64(b[offset + k]) }
            return v
        }
        let width = layout.wide ? 8 : 4
        while at < limit {
            guard at + layout.headerBytes <= limit else { throw fail("a record at byte \(at) runs past its parent") }
            let recordEnd = integer(at), count = integer(at + width), length = integer(at + 2 * width)
            let nameLength = Int(b[at + 3 * width])
            if recordEnd == 0 && count == 0 && length == 0 && nameLength == 0 {
                at += layout.headerBytes  // the null record closing this list
                break
            }
            let nameStart = at + layout.headerBytes
            let propertiesStart = nameStart + nameLength
            guard recordEnd <= UInt64(limit), Int(recordEnd) > at, length <= UInt64(limit),
                  propertiesStart + Int(length) <= Int(recordEnd) else {
                throw fail("the record at byte \(at) has offsets outside the file")
            }
            let childrenStart = propertiesStart + Int(length)
            var children: [Node] = []
            if childrenStart < Int(recordEnd) {
                var childrenEnd = 0
                children = try readList(b, from: childrenStart, limit: Int(recordEnd), layout: layout, end: &childrenEnd,
                                        depth: depth + 1, fail: fail)
            }
            nodes.append(Node(name: Array(b[nameStart..<propertiesStart]), propertyCount: count,
                              properties: Data(b[propertiesStart..<childrenStart]), children: children))
            at = Int(recordEnd)
        }
        end = at
        return nodes
    }

    static func write(_ node: Node, into out: inout [UInt8], layout: Layout) {
        let start = out.count
        out += [UInt8](repeating: 0, count: layout.headerBytes - 1)  // offsets, filled in below
        out.append(UInt8(node.name.count))
        out += node.name
        out += node.properties
        if !node.children.isEmpty {
            for child in node.children { write(child, into: &out, layout: layout) }
            out += [UInt8](repeating: 0, count: layout.headerBytes)
        }
        let width = layout.wide ? 8 : 4
        for (slot, value) in [UInt64(out.count), node.propertyCount, UInt64(node.properties.count)].enumerated() {
            for k in 0..<width { out[start + slot * width + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
        }
    }
}
