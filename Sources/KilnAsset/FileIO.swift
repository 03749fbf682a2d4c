#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A file-system error that names the path, the cause and what to do about it.
public struct FileIOError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    /// An error from `errno` after an operation on `path`, with a hint for the common cases.
    public static func posix(_ code: Int32, path: String, doing action: String) -> FileIOError {
        let text = String(cString: strerror(code))
        let hint: String
        switch code {
        case ENOENT where action.hasPrefix("open") || action.hasPrefix("read"):
            hint = " (no such file: check the path)"
        case ENOENT: hint = " (the folder does not exist: create it or choose another path)"
        case EACCES, EPERM: hint = " (permission denied: choose a folder you can write to)"
        case EROFS: hint = " (read-only file system: choose another output folder)"
        case ENOSPC, EDQUOT: hint = " (the disk is full: free space or write elsewhere)"
        case EISDIR: hint = " (this is a folder: give a file name)"
        case ENOTDIR: hint = " (a component of the path is not a folder)"
        default: hint = ""
        }
        return FileIOError(path: path, reason: "cannot \(action): \(text)\(hint)")
    }
}

/// Reading and atomic writing of whole files.
///
/// Writers never leave a half-written file at the destination: bytes go to a temporary file in
/// the destination's folder, which is flushed to disk (`fsync`) and renamed over the destination
/// (atomic on POSIX file systems). On any failure the temporary file is removed.
public enum FileIO {
    /// The bytes of a file, with errors that name the path.
    public static func read(_ url: URL, limit: Int = 1 << 34) throws -> [UInt8] {
        let path = url.path
        let (fd, info) = try openForReading(path)
        defer { close(fd) }
        let size = Int(info.st_size)
        if size > limit { throw FileIOError(path: path, reason: "is \(size) bytes, over the \(limit)-byte limit") }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { buffer in
                Glibc.read(fd, buffer.baseAddress! + done, size - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileIOError.posix(errno, path: path, doing: "read")
            }
            if n == 0 { bytes.removeSubrange(done...); break }  // file shrank while reading
            done += n
        }
        return bytes
    }

    /// Writes `bytes` to `url` atomically (temporary file, fsync, rename).
    public static func writeAtomically(_ bytes: some ContiguousBytes, to url: URL) throws {
        try withTemporarySibling(of: url) { temporary in
            try writeAndSync(bytes, to: temporary)
        }
    }

    /// Runs `produce` with a temporary path next to `url`, then renames that path over `url`.
    /// `produce` must create the file at the path it is given. The temporary is removed on failure.
    public static func withTemporarySibling(of url: URL, _ produce: (URL) throws -> Void) throws {
        let folder = url.deletingLastPathComponent()
        try checkWritableFolder(folder)
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try produce(temporary)
            if rename(temporary.path, url.path) != 0 {
                throw FileIOError.posix(errno, path: url.path, doing: "move the finished file into place")
            }
        } catch {
            unlink(temporary.path)
            throw error
        }
    }

    /// Throws a clear error when `folder` does not exist, is not a folder or cannot be written.
    public static func checkWritableFolder(_ folder: URL) throws {
        let path = folder.path.isEmpty ? "." : folder.path
        var info = stat()
        if stat(path, &info) != 0 { throw FileIOError.posix(errno, path: path, doing: "use the output folder") }
        if (info.st_mode & S_IFMT) != S_IFDIR {
            throw FileIOError(path: path, reason: "is not a folder: the output's parent must be a folder")
        }
        if access(path, W_OK) != 0 { throw FileIOError.posix(errno, path: path, doing: "write into the output folder") }
    }

    /// Writes and fsyncs a new file (fails if `url` exists).
    static func writeAndSync(_ bytes: some ContiguousBytes, to url: URL) throws {
        let path = url.path
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw FileIOError.posix(errno, path: path, doing: "create") }
        var failure: FileIOError?
        bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = write(fd, buffer.baseAddress! + done, buffer.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = .posix(errno, path: path, doing: "write")
                    return
                }
                done += n
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = .posix(errno, path: path, doing: "flush to disk") }
        if close(fd) != 0 && failure == nil { failure = .posix(errno, path: path, doing: "close") }
        if let failure { throw failure }
    }
}

extension FileIO {
    /// Up to `count` bytes from the start of a file.
    public static func readPrefix(_ url: URL, count: Int) throws -> [UInt8] {
        let path = url.path
        let (fd, _) = try openForReading(path)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, count) }
        if n < 0 { throw FileIOError.posix(errno, path: path, doing: "read") }
        return Array(bytes.prefix(n))
    }

    /// An open descriptor on a regular file (the caller closes it) and its status; folders and
    /// missing files are errors that name the path.
    static func openForReading(_ path: String) throws -> (Int32, stat) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw FileIOError.posix(errno, path: path, doing: "open for reading") }
        var info = stat()
        if fstat(fd, &info) != 0 {
            let error = FileIOError.posix(errno, path: path, doing: "stat")
            close(fd)
            throw error
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw FileIOError(path: path, reason: "is a folder, not a file")
        }
        return (fd, info)
    }
}

extension FileIO {
    /// Whether `url` lies inside `folder` (or is it), after `..` and symbolic links are resolved:
    /// the check readers make before following a path written inside an untrusted file.
    public static func isInside(_ url: URL, folder: URL) -> Bool {
        isInside(url, resolvedFolder: resolvedComponents(folder))
    }

    /// `isInside` against a folder resolved once by `resolvedComponents` (for many files).
    public static func isInside(_ url: URL, resolvedFolder outer: [String]) -> Bool {
        let inner = resolvedComponents(url)
        return inner.count >= outer.count && Array(inner.prefix(outer.count)) == outer
    }

    /// The path components of `url` with `..` and symbolic links resolved.
    public static func resolvedComponents(_ url: URL) -> [String] {
        url.standardizedFileURL.resolvingSymlinksInPath().standardizedFileURL.pathComponents
    }
}
