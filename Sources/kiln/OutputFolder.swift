import ArgumentParser
import Foundation
import KilnAsset

/// Writes pretty, sorted JSON atomically.
func writeJSON(_ value: some Encodable, to url: URL, snakeCase: Bool = false) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    if snakeCase { encoder.keyEncodingStrategy = .convertToSnakeCase }
    try FileIO.writeAtomically(encoder.encode(value), to: url)
}


/// A progress line, written at once (unbuffered), so a log file follows a long run.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// A warning on standard error.
func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}

/// Output folders: created when missing; an existing non-empty one needs `--force`.
enum OutputFolder {
    static func prepare(_ folder: URL, force: Bool) throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder) {
            guard isFolder.boolValue else { throw CLIError("--out \(folder.path) is a file: give a folder") }
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            if !contents.isEmpty && !force {
                throw CLIError("--out \(folder.path) is not empty: choose a new folder or pass --force")
            }
        } else {
            do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
                throw CLIError("--out \(folder.path) cannot be created: \(error.localizedDescription)")
            }
        }
        try FileIO.checkWritableFolder(folder)
    }
}

/// `--out DIR [--force]`, shared by every command that writes a folder.
struct OutputFolderOptions: ParsableArguments {
    @Option(help: "Output folder: created if missing; must be empty unless --force.")
    var out: String

    @Flag(help: "Write into an existing, non-empty output folder.")
    var force = false

    var url: URL { URL(fileURLWithPath: out) }

    /// Creates or checks the folder (see `OutputFolder.prepare`).
    func prepare() throws { try OutputFolder.prepare(url, force: force) }
}
