#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

/// Atomic file replacement for KilnNN's writers (weights, checkpoints).
///
/// Bytes go to a temporary file in the destination's folder (so the rename never crosses file
/// systems), which is flushed with `fsync` and renamed over the destination: readers see the old
/// file or the complete new one, never a partial one, even after a crash. On failure the temporary
/// file is removed. KilnAsset has the same discipline in `FileIO`; KilnNN keeps its own few lines so
/// that it does not depend on the image and mesh libraries.
public enum AtomicFile {
    /// An open temporary file that `write(to:_:)` hands to its producer.
    struct Sink {
        let fd: Int32
        let path: String

        /// Appends `bytes`, retrying short writes and `EINTR`.
        func write(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw AtomicFile.error(path, "cannot write")
                }
                done += n
            }
        }
    }

    /// Runs `produce` on a temporary sibling of `url`, then fsyncs it and renames it over `url`.
    static func write(to url: URL, _ produce: (Sink) throws -> Void) throws {
        let destination = url.path
        let folder = url.deletingLastPathComponent().path
        let temporary = (folder.isEmpty ? "." : folder) + "/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            let e = errno
            var hint = ""
            switch e {
            case ENOENT, ENOTDIR: hint = " (the folder does not exist: create it or choose another path)"
            case EACCES, EPERM, EROFS: hint = " (the folder is not writable: choose another output folder)"
            case ENOSPC: hint = " (the disk is full)"
            default: break
            }
            throw SafeTensorsError.io(path: destination, reason: "cannot create a file in \(folder.isEmpty ? "." : folder): "
                                        + String(cString: strerror(e)) + hint)
        }
        var closed = false
        do {
            try produce(Sink(fd: fd, path: temporary))
            if fsync(fd) != 0 { throw error(destination, "cannot flush to disk") }
            closed = true
            if close(fd) != 0 { throw error(destination, "cannot close") }
            if rename(temporary, destination) != 0 { throw error(destination, "cannot move the finished file into place") }
        } catch {
            if !closed { close(fd) }
            unlink(temporary)
            throw error
        }
    }

    /// Writes `data` to `url` atomically (temporary sibling, fsync, rename).
    /// - Throws: `SafeTensorsError.io` naming the path and the cause (missing folder, full disk, …).
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { sink in try data.withUnsafeBytes { try sink.write($0) } }
    }

    static func error(_ path: String, _ action: String) -> SafeTensorsError {
        let e = errno
        let hint = e == ENOSPC ? " (the disk is full: free space or write elsewhere)" : e == EISDIR ? " (this is a folder: give a file name)" : ""
        return .io(path: path, reason: "\(action): \(String(cString: strerror(e)))\(hint)")
    }
}
