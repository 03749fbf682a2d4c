import Foundation
import KilnCore

/// Splat file formats.
public enum SplatFormat: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// INRIA 3DGS binary PLY: full parameters, SH degree 0–3.
    case ply
    /// antimatter15 `.splat`: 32 bytes per splat, SH degree 0, quantised colour and rotation.
    case splat

    public var description: String { rawValue }
    public init?(pathExtension: String) { self.init(rawValue: pathExtension.lowercased()) }
}

/// Reading and atomic writing of Gaussian splat files.
public enum GaussianCloudIO {
    /// Reads a splat file; the format comes from the extension (`.ply`, `.splat`) unless given.
    public static func read(_ url: URL, format: SplatFormat? = nil) throws -> GaussianCloud {
        guard let format = format ?? SplatFormat(pathExtension: url.pathExtension) else {
            throw FileIOError(path: url.path, reason: "unknown splat extension \".\(url.pathExtension)\": use .ply or .splat")
        }
        let bytes = try FileIO.read(url)
        switch format {
        case .ply: return try SplatPLY.decode(bytes, source: url.path)
        case .splat: return try SplatFile.decode(bytes, source: url.path)
        }
    }

    /// Writes a splat file atomically. `.splat` keeps only SH degree 0 (colour), by design of the format.
    public static func write(_ cloud: GaussianCloud, to url: URL, format: SplatFormat? = nil) throws {
        guard let format = format ?? SplatFormat(pathExtension: url.pathExtension) else {
            throw FileIOError(path: url.path, reason: "unknown splat extension \".\(url.pathExtension)\": use .ply or .splat")
        }
        if let i = cloud.means.firstIndex(where: { !($0.x.isFinite && $0.y.isFinite && $0.z.isFinite) }) {
            throw FileIOError(path: url.path, reason: "Gaussian \(i) has a non-finite position: refusing to write NaN or Inf")
        }
        switch format {
        case .ply: try FileIO.writeAtomically(SplatPLY.encode(cloud), to: url)
        case .splat: try FileIO.writeAtomically(SplatFile.encode(cloud), to: url)
        }
    }
}
