import ArgumentParser
import Foundation
import KilnRun

/// An RGB colour given as a name (white, black, gray, red, green, blue), `#rrggbb`, or `r,g,b`
/// with components in [0, 1].
struct ColorArgument: ExpressibleByArgument, Sendable {
    var rgb: SIMD3<Float>

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        let names: [String: SIMD3<Float>] = ["white": SIMD3(1, 1, 1), "black": SIMD3(0, 0, 0), "gray": SIMD3(0.5, 0.5, 0.5),
                                             "grey": SIMD3(0.5, 0.5, 0.5), "red": SIMD3(1, 0, 0), "green": SIMD3(0, 1, 0), "blue": SIMD3(0, 0, 1)]
        if let named = names[text] { rgb = named; return }
        if text.hasPrefix("#"), text.count == 7, let v = UInt32(text.dropFirst(), radix: 16) {
            rgb = SIMD3(Float((v >> 16) & 0xFF), Float((v >> 8) & 0xFF), Float(v & 0xFF)) / 255
            return
        }
        let parts = text.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, parts.allSatisfy({ (0...1).contains($0) }) else { return nil }
        rgb = SIMD3(parts[0], parts[1], parts[2])
    }

    static var defaultCompletionKind: CompletionKind { .list(["white", "black", "gray"]) }
}

/// `--allow-outside-paths`, shared by the commands that follow paths written inside input files
/// (transforms.json's `file_path`, a material's texture): by default such a path must stay inside
/// the input's folder, so that a downloaded file cannot make Kiln read elsewhere on the disk.
struct InputPathOptions: ParsableArguments {
    @Flag(help: "Follow paths written inside input files (transforms.json's file_path, a material's texture) that lead outside the input's folder (../, absolute paths).")
    var allowOutsidePaths = false
}

/// `--out DIR [--force]`, shared by every command that writes a folder.
struct OutputFolderOptions: ParsableArguments {
    @Option(help: "Output folder: created if missing; must be empty unless --force.")
    var out: String

    @Flag(help: "Write into an existing, non-empty output folder.")
    var force = false

    var url: URL { URL(fileURLWithPath: out) }

    /// Creates or checks the folder (see `OutputFolder.prepare`).
    @discardableResult
    func prepare() throws -> Bool { try OutputFolder.prepare(url, force: force) }

    /// Prepares the folder and writes into it all at once (see `OutputFolder.staged`).
    func staged<R>(_ write: (URL) throws -> R) throws -> R { try OutputFolder.staged(url, force: force, write) }
}
