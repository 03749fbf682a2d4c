import Foundation

/// What kind of file a path holds, decided by content where the extension is ambiguous.
public enum AssetKind: Equatable, Sendable {
    case png, splatPLY, splatFile, mesh

    public static func of(_ url: URL) throws -> AssetKind {
        let ext = url.pathExtension.lowercased()
        // The whole header a PLY reader accepts, not a fixed prefix: 3DGS headers with comments
        // or many f_rest properties run past 4 KB.
        let head = try FileIO.readPrefix(url, count: SplatPLY.headerLimitBytes)
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) || ext == "png" { return .png }
        if ext == "splat" { return .splatFile }
        if ext == "ply" || head.starts(with: Array("ply".utf8)) {
            return SplatPLY.declaresGaussians(header: head) ? .splatPLY : .mesh
        }
        return .mesh
    }
}
