import Foundation

/// A check of a PLY file's header made before Assimp sees the file.
///
/// Assimp 5.2.5's PLY reader loops without end on a header that never reaches `end_header` (a
/// 70-byte file kept the import child at 100% CPU until its limits) and on a body shorter than
/// the header promises. Both are cheap to recognise from the header alone: the header must end
/// within `SplatPLY.headerLimitBytes`, name a known format, and the body must hold at least the
/// smallest size its elements can take (binary: the fixed-size properties and each list's count;
/// ASCII: two bytes per value, a digit and a separator).
enum PLYPrecheck {
    /// Throws `MeshIOError` naming the problem; files that are not PLY pass untouched.
    static func check(_ url: URL) throws {
        let head = try FileIO.readPrefix(url, count: SplatPLY.headerLimitBytes)
        guard head.starts(with: Array("ply".utf8)) else { return }
        let size = try fileSize(url)
        guard let end = endOfHeader(head) else {
            let reason = head.count >= SplatPLY.headerLimitBytes
                ? "its PLY header does not end (no `end_header` line) within the first \(SplatPLY.headerLimitBytes / 1024) KB"
                : "its PLY header has no `end_header` line: the file is truncated or is not a PLY"
            throw MeshIOError(path: url.path, reason: reason + "; re-export the mesh")
        }
        let lines = String(decoding: head[..<end], as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" })
        var format: String?
        var minimumBody = 0
        var rows = 0
        var ascii = false
        func fail(_ text: String) -> MeshIOError { MeshIOError(path: url.path, reason: "its PLY header is malformed: \(text); re-export the mesh") }
        for line in lines {
            let tokens = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard let keyword = tokens.first else { continue }
            switch keyword {
            case "format":
                guard tokens.count >= 2, ["ascii", "binary_little_endian", "binary_big_endian"].contains(tokens[1]) else {
                    throw fail("unknown format line \"\(line)\"")
                }
                format = tokens[1]
                ascii = tokens[1] == "ascii"
            case "element":
                guard tokens.count == 3, let count = Int(tokens[2]), count >= 0, count <= 1 << 31 else {
                    throw fail("element line \"\(line)\" needs a name and a count from 0 to 2^31")
                }
                rows = count
            case "property":
                let bytes: Int
                if tokens.count >= 2, tokens[1] == "list" {
                    guard tokens.count == 5, let countBytes = scalarBytes(tokens[2]), scalarBytes(tokens[3]) != nil else {
                        throw fail("list property \"\(line)\" needs a count type, an item type and a name")
                    }
                    bytes = ascii ? 2 : countBytes
                } else {
                    guard tokens.count == 3, let b = scalarBytes(tokens[1]) else { throw fail("property \"\(line)\" has an unknown type") }
                    bytes = ascii ? 2 : b
                }
                let (added, overflow) = rows.multipliedReportingOverflow(by: bytes)
                guard !overflow else { throw fail("the elements are too large") }
                minimumBody += added
            default:
                continue
            }
        }
        guard format != nil else { throw fail("no `format` line") }
        let body = size - end
        if body < minimumBody {
            throw MeshIOError(path: url.path, reason: "the PLY header promises at least \(minimumBody) bytes of data but the file has \(body) after its header: "
                              + "the file is truncated; re-export the mesh")
        }
    }

    /// The offset just past the `end_header` line, or nil.
    static func endOfHeader(_ bytes: [UInt8]) -> Int? {
        let marker = Array("end_header".utf8)
        var i = 0
        while i + marker.count <= bytes.count {
            if (i == 0 || bytes[i - 1] == 0x0A || bytes[i - 1] == 0x0D) && Array(bytes[i..<(i + marker.count)]) == marker {
                var j = i + marker.count
                while j < bytes.count && bytes[j] == 0x20 { j += 1 }
                if j < bytes.count && bytes[j] == 0x0D { j += 1 }
                if j < bytes.count && bytes[j] == 0x0A { return j + 1 }
                if j == bytes.count { return j }
            }
            i += 1
        }
        return nil
    }

    static func scalarBytes(_ type: String) -> Int? {
        switch type {
        case "char", "uchar", "int8", "uint8": return 1
        case "short", "ushort", "int16", "uint16": return 2
        case "int", "uint", "float", "int32", "uint32", "float32": return 4
        case "double", "float64": return 8
        default: return nil
        }
    }

    static func fileSize(_ url: URL) throws -> Int {
        var info = stat()
        if stat(url.path, &info) != 0 { throw FileIOError.posix(errno, path: url.path, doing: "open the mesh") }
        return Int(info.st_size)
    }
}
