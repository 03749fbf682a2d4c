#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// An exclusive lock on a folder that one process writes into (a run folder), held as a
/// `flock` on `.kiln-lock` inside it.
///
/// The kernel drops a `flock` when its holder exits however it exits, so a lock left by a crashed
/// or killed process is never stale: the next `acquire` takes it. The file records the holder's
/// pid for the message a second writer gets. `release` removes the file while still holding the
/// lock; `acquire` re-checks that the file it locked is still the one at the path, so a writer
/// that raced with a release does not hold a lock on a removed file.
public final class FolderLock {
    public static let fileName = ".kiln-lock"

    public let url: URL
    private var descriptor: Int32

    private init(url: URL, descriptor: Int32) {
        self.url = url
        self.descriptor = descriptor
    }

    /// Takes the lock on `folder` (which must exist) or throws `FileIOError` naming the holder.
    /// - Parameter purpose: what the caller does, for the message (`"kiln generate"`).
    public static func acquire(_ folder: URL, purpose: String) throws -> FolderLock {
        let url = folder.appendingPathComponent(fileName)
        for _ in 0..<10 {
            let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if fd < 0 { throw FileIOError.posix(errno, path: url.path, doing: "create the lock file") }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let code = errno
                var bytes = [UInt8](repeating: 0, count: 32)
                let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, 32, 0) }
                close(fd)
                guard code == EWOULDBLOCK else { throw FileIOError.posix(code, path: url.path, doing: "lock the folder") }
                let holder = n > 0 ? String(decoding: bytes.prefix(n), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "unknown"
                throw FileIOError(path: folder.path, reason: "another \(purpose) (pid \(holder)) is writing into this folder; "
                                  + "wait for it to finish (or stop it), or choose another folder")
            }
            // The file may have been released (removed) between open and flock: lock the new one.
            var opened = stat(), current = stat()
            if fstat(fd, &opened) == 0, stat(url.path, &current) == 0, opened.st_ino == current.st_ino, opened.st_dev == current.st_dev {
                let text = Array("\(getpid())\n".utf8)
                _ = ftruncate(fd, 0)
                _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress!, text.count, 0) }
                return FolderLock(url: url, descriptor: fd)
            }
            close(fd)
        }
        throw FileIOError(path: url.path, reason: "cannot take the lock: the lock file keeps changing; try again")
    }

    /// Removes the lock file and drops the lock (also done when the process exits).
    public func release() {
        guard descriptor >= 0 else { return }
        unlink(url.path)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
