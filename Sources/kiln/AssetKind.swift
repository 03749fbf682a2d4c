import Foundation
import KilnAsset

/// What kind of file a path holds, decided by content where the extension is ambiguous.
enum AssetKind: Equatable {
    case png, splatPLY, splatFile, mesh

    static func of(_ url: URL) throws -> AssetKind {
        let ext = url.pathExtension.lowercased()
        let head = try FileIO.readPrefix(url, count: 4096)
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) || ext == "png" { return .png }
        if ext == "splat" { return .splatFile }
        if ext == "ply" || head.starts(with: Array("ply".utf8)) {
            // A 3DGS PLY declares spherical-harmonic DC properties; any other PLY is a mesh.
            let text = String(decoding: head, as: UTF8.self)
            return text.contains("property float f_dc_0") || text.contains("property double f_dc_0") ? .splatPLY : .mesh
        }
        return .mesh
    }
}
