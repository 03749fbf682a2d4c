import Foundation
import KilnAsset

/// Writes pretty, sorted JSON atomically.
func writeJSON(_ value: some Encodable, to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try FileIO.writeAtomically(encoder.encode(value), to: url)
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
