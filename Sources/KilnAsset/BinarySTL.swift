import Foundation
import KilnCore

/// Binary STL, written by Kiln (Assimp's `stlb` writer is not used): an 80-byte header, a uint32
/// triangle count, then per triangle the facet normal, three vertices (float32 each) and a
/// uint16 attribute count of 0 — 50 bytes a triangle, little-endian.
///
/// The header never starts with `solid` (readers would take the file for ASCII STL) and says
/// which way is up (`UpMark`), so that Kiln's own import can turn a Z-up file back.
public enum BinarySTL {
    /// The file's bytes. Positions are used as given (already turned to the file's frame); the
    /// facet normal is the triangle's own (right-handed, counter-clockwise), zero if degenerate.
    public static func encode(_ mesh: TriangleMesh, up: UpAxis) -> Data {
        var out = Data(capacity: 84 + 50 * mesh.triangleCount)
        var header = Array("binary STL by Kiln; \(UpMark.stlHeaderTag(up))".utf8.prefix(80))
        header += [UInt8](repeating: 0x20, count: 80 - header.count)
        out.append(contentsOf: header)
        func put(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func put(_ v: SIMD3<Float>) { for x in [v.x, v.y, v.z] { put(x.bitPattern) } }
        put(UInt32(mesh.triangleCount))
        for t in mesh.triangles {
            let a = mesh.positions[Int(t.x)], b = mesh.positions[Int(t.y)], c = mesh.positions[Int(t.z)]
            let n = cross(b - a, c - a)
            let length = (n * n).sum().squareRoot()
            put(length > 0 && length.isFinite ? n / length : .zero)
            put(a); put(b); put(c)
            out.append(contentsOf: [0, 0])
        }
        return out
    }
}

/// The mark Kiln leaves in a PLY or STL it wrote with Z up, and reads back on import: a PLY header
/// line `comment kiln up z`, or `up=z` in the STL header. Files without it are taken as they are.
public enum UpMark {
    static let plyComment = "comment kiln up z"

    static func stlHeaderTag(_ up: UpAxis) -> String { "up=\(up.rawValue)" }

    /// The up axis Kiln marked in `url` (PLY or STL), or `.y` when there is no mark.
    public static func read(_ url: URL) -> UpAxis {
        guard let head = try? FileIO.readPrefix(url, count: 4096) else { return .y }
        switch url.pathExtension.lowercased() {
        case "ply":
            // Only the header counts: stop at end_header.
            let text = String(decoding: head, as: UTF8.self)
            let header = text.components(separatedBy: "end_header").first ?? ""
            return header.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == plyComment } ? .z : .y
        case "stl":
            guard head.count >= 84, !head.starts(with: Array("solid".utf8)) else { return .y }
            let text = String(decoding: head.prefix(80), as: UTF8.self)
            return text.hasPrefix("binary STL by Kiln;") && text.contains(stlHeaderTag(.z)) ? .z : .y
        default:
            return .y
        }
    }
}

/// Puts `UpMark`'s comment into a PLY header that Assimp wrote (after its `format` line).
enum PLYUpMark {
    static func markingZUp(_ ply: Data, source: String) throws -> Data {
        let bytes = [UInt8](ply.prefix(4096))
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("ply"), let format = text.range(of: "\nformat "),
              let lineEnd = text[format.upperBound...].firstIndex(of: "\n") else {
            throw MeshIOError(path: source, reason: "Assimp's PLY has no format line to follow")
        }
        let offset = text.utf8.distance(from: text.startIndex, to: lineEnd) + 1
        var out = Data(ply.prefix(offset))
        out.append(contentsOf: Array((UpMark.plyComment + "\n").utf8))
        out.append(ply.dropFirst(offset))
        return out
    }
}
