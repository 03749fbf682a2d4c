import Foundation
import KilnAsset

/// Output folders: created when missing; an existing non-empty one needs `--force`.
public enum OutputFolder {
    /// - Returns: whether the folder was created (a failed command then removes it again).
    @discardableResult
    public static func prepare(_ folder: URL, force: Bool) throws -> Bool {
        var isFolder: ObjCBool = false
        var created = false
        if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder) {
            guard isFolder.boolValue else { throw RunError("--out \(folder.path) is a file: give a folder") }
            let contents = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0 != FolderLock.fileName }
            if !contents.isEmpty && !force {
                throw RunError("--out \(folder.path) is not empty: choose a new folder or pass --force")
            }
        } else {
            do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
                throw RunError("--out \(folder.path) cannot be created: \(error.localizedDescription)")
            }
            created = true
        }
        try FileIO.checkWritableFolder(folder)
        return created
    }

    /// Prepares `folder` and runs `write` on a hidden staging folder inside it; when `write`
    /// returns, every file it made is renamed into `folder` (renames within one file system need
    /// no space), so the set of outputs appears whole. On any failure (a full disk, an error, an
    /// interrupt that throws) the staging folder is removed, and so is `folder` if this call
    /// created it: nothing partial is left.
    public static func staged<R>(_ folder: URL, force: Bool, _ write: (URL) throws -> R) throws -> R {
        let created = try prepare(folder, force: force)
        let staging = folder.appendingPathComponent(".kiln-staging-\(getpid())")
        let files = FileManager.default
        func discard() {
            try? files.removeItem(at: staging)
            if created, (try? files.contentsOfDirectory(atPath: folder.path))?.isEmpty == true { try? files.removeItem(at: folder) }
        }
        do {
            try files.createDirectory(at: staging, withIntermediateDirectories: false)
            let result = try write(staging)
            for name in try files.contentsOfDirectory(atPath: staging.path) {
                let target = folder.appendingPathComponent(name)
                var isFolder: ObjCBool = false
                if files.fileExists(atPath: target.path, isDirectory: &isFolder), isFolder.boolValue { try files.removeItem(at: target) }
                if rename(staging.appendingPathComponent(name).path, target.path) != 0 {
                    throw FileIOError.posix(errno, path: target.path, doing: "move the finished file into place")
                }
            }
            try files.removeItem(at: staging)
            return result
        } catch {
            discard()
            throw error
        }
    }
}

