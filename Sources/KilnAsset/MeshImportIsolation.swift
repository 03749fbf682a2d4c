#if canImport(Glibc)
import Glibc
#endif
import CKilnSupport
import Foundation
import KilnCore

// MARK: - The child side

extension MeshImport {
    /// Entry point of the isolated import child (`kiln _import-worker IN OUT`): ties its life to
    /// the parent's (the kernel kills it when the parent dies), applies resource limits, imports
    /// in process, and writes the plain serialisation to `output`.
    /// Errors go to standard error and a non-zero exit status; never returns.
    public static func runWorker(input: String, output: String, limits: Limits = Limits(), allowOutsidePaths: Bool = false) -> Never {
        // The parent passes its pid: if it dies (Ctrl-C, kill -9) the import must not spin on alone.
        if let text = ProcessInfo.processInfo.environment[IsolatedProcess.parentVariable], let parent = pid_t(text),
           kiln_die_with_parent(SIGKILL, parent) != 1 {
            FileHandle.standardError.write(Data("the process that started this import is gone\n".utf8))
            exit(3)
        }
        var core = rlimit(rlim_cur: 0, rlim_max: 0)
        setrlimit(Int32(RLIMIT_CORE.rawValue), &core)  // an abort() must not dump core
        var memory = rlimit(rlim_cur: rlim_t(limits.addressSpaceBytes), rlim_max: rlim_t(limits.addressSpaceBytes))
        setrlimit(Int32(RLIMIT_AS.rawValue), &memory)
        // The parent sizes the CPU limit to the file (`Limits.scaled(toFileSize:)`).
        let cpuSeconds = ProcessInfo.processInfo.environment["KILN_IMPORT_CPU_SECONDS"].flatMap(Int.init) ?? limits.cpuSeconds
        var cpu = rlimit(rlim_cur: rlim_t(cpuSeconds), rlim_max: rlim_t(cpuSeconds + 5))
        setrlimit(Int32(RLIMIT_CPU.rawValue), &cpu)
        do {
            let imported = try unsafeReadInProcess(URL(fileURLWithPath: input), allowOutsidePaths: allowOutsidePaths)
            try FileIO.writeAtomically(MeshWire.encode(imported), to: URL(fileURLWithPath: output))
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            exit(2)
        }
    }
}

// MARK: - The parent side

enum IsolatedProcess {
    /// The environment variable that tells the child its parent's pid.
    static let parentVariable = "KILN_IMPORT_PARENT"
    /// Scratch folders are `kiln-import-<parent pid>-<random>` in the temporary folder.
    static let scratchPrefix = "kiln-import-"

    static func importMesh(_ url: URL, executable: URL, limits: MeshImport.Limits, allowOutsidePaths: Bool = false) throws -> ImportedMesh {
        let temporary = URL(fileURLWithPath: NSTemporaryDirectory())
        removeStaleScratchFolders(in: temporary)
        let scratch = temporary.appendingPathComponent("\(scratchPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard mkdir(scratch.path, 0o700) == 0 else {
            throw FileIOError.posix(errno, path: scratch.path, doing: "create a temporary folder for the import")
        }
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("mesh.bin")
        let errors = scratch.appendingPathComponent("stderr.txt")
        let absolute = url.standardizedFileURL.path

        let status = try spawnAndWait(executable.path, ["_import-worker", absolute, output.path] + (allowOutsidePaths ? ["--allow-outside-paths"] : []),
                                      stderrPath: errors.path, wallSeconds: limits.wallSeconds,
                                      environment: ["\(parentVariable)=\(getpid())", "KILN_IMPORT_CPU_SECONDS=\(limits.cpuSeconds)"])
        let stderr = (try? String(contentsOf: errors, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines).suffix(2000) ?? ""
        switch status {
        case .exited(0):
            do { return try MeshWire.decode(FileIO.read(output)) } catch {
                throw MeshIOError(path: url.path, reason: "the import child returned an invalid result (\(error)): please report this")
            }
        case .exited(let code):
            // The child reports its own error (already naming the file) on stderr.
            let message = stderr.isEmpty ? "the import failed with status \(code)" : String(stderr)
            throw MeshIOError(path: url.path, reason: message.hasPrefix(url.path + ": ") ? String(message.dropFirst(url.path.count + 2))
                              : message.hasPrefix(absolute + ": ") ? String(message.dropFirst(absolute.count + 2)) : message)
        case .signaled(let signal):
            let what: String
            switch signal {
            case SIGABRT: what = "Assimp aborted on malformed data"
            case SIGSEGV, SIGBUS: what = "Assimp crashed on malformed data"
            case SIGXCPU: what = "Assimp used more than \(limits.cpuSeconds) s of CPU"
            case SIGKILL: what = "the import was stopped (out of memory or over time)"
            default: what = "the import died from signal \(signal)"
            }
            throw MeshIOError(path: url.path, reason: "\(what) while reading this file; Kiln stayed up. The file is corrupt, hostile or uses a feature this Assimp cannot read: repair or re-export it (glb or obj are safest)")
        case .timedOut:
            throw MeshIOError(path: url.path, reason: "the import took longer than \(Int(limits.wallSeconds)) s and was stopped: the file may be hostile or far too large")
        }
    }

    /// Removes scratch folders left by imports whose process is gone (killed before its cleanup
    /// ran); folders of live processes are left alone.
    static func removeStaleScratchFolders(in temporary: URL) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: temporary.path) else { return }
        for name in names where name.hasPrefix(scratchPrefix) {
            let fields = name.dropFirst(scratchPrefix.count).split(separator: "-")
            guard fields.count == 2, let pid = pid_t(fields[0]), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: temporary.appendingPathComponent(name))
            }
        }
    }

    enum Status { case exited(Int32), signaled(Int32), timedOut }

    /// Spawns `path args…` with stdin from /dev/null, stderr to a file and `environment` added to
    /// this process's; waits up to `wallSeconds`.
    static func spawnAndWait(_ path: String, _ args: [String], stderrPath: String, wallSeconds: Double,
                             environment: [String] = []) throws -> Status {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // The child starts with no blocked signals and default handlers, whatever this process's
        // threads have set, so that an abort() or a CPU-limit signal really ends it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid = pid_t()
        let names = Set(environment.compactMap { $0.split(separator: "=").first.map(String.init) })
        var inherited: [String] = []
        var e = environ
        while let entry = e.pointee {
            let text = String(cString: entry)
            if !names.contains(String(text.prefix { $0 != "=" })) { inherited.append(text) }
            e += 1
        }
        let envp = (inherited + environment).map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }
        var spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        // An executable written just before (a freshly installed binary, a test's stand-in) can be
        // briefly "busy": a fork by another thread while it was open for writing keeps a write
        // descriptor in that child until it execs. Retry for up to a second.
        var retries = 0
        while spawned == ETXTBSY && retries < 50 {
            usleep(20_000)
            retries += 1
            spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        }
        guard spawned == 0 else {
            throw FileIOError.posix(spawned, path: path, doing: "start the isolated mesh import")
        }
        let deadline = Date().addingTimeInterval(wallSeconds)
        var delay: useconds_t = 1000
        while true {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                let signal = status & 0x7f
                if signal == 0 { return .exited((status >> 8) & 0xff) }
                return .signaled(signal)
            }
            if r < 0 && errno != EINTR { throw FileIOError.posix(errno, path: path, doing: "wait for the import") }
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                return .timedOut
            }
            usleep(delay)
            delay = min(delay * 2, 50_000)
        }
    }
}

// MARK: - The plain serialisation between child and parent

/// `KILNMSH1`, a little-endian UInt64 header length, a JSON header, then raw little-endian arrays:
/// positions `[V,3]` f32, normals `[V,3]`, UVs `[V,2]`, colours `[V,4]`, triangles `[F,3]` u32,
/// texture `[H,W,4]` f32. Decoding checks every length before reading and validates the mesh.
enum MeshWire {
    static let magic = Array("KILNMSH1".utf8)

    struct Header: Codable {
        var vertexCount: Int
        var triangleCount: Int
        var hasNormals: Bool
        var hasUVs: Bool
        var hasColors: Bool
        var materialName: String
        var baseColorFactor: [Float]
        var metallicFactor: Float
        var roughnessFactor: Float
        var textureWidth: Int?
        var textureHeight: Int?
        var info: ImportedMesh.Info
    }

    static func encode(_ imported: ImportedMesh) throws -> [UInt8] {
        let m = imported.mesh
        let c = m.material.baseColorFactor
        let header = Header(vertexCount: m.positions.count, triangleCount: m.triangles.count,
                            hasNormals: !m.normals.isEmpty, hasUVs: !m.uvs.isEmpty, hasColors: !m.colors.isEmpty,
                            materialName: m.material.name, baseColorFactor: [c.x, c.y, c.z, c.w],
                            metallicFactor: m.material.metallicFactor, roughnessFactor: m.material.roughnessFactor,
                            textureWidth: m.material.baseColorTexture?.width, textureHeight: m.material.baseColorTexture?.height,
                            info: imported.info)
        let json = try JSONEncoder().encode(header)
        var out = magic
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
        out += json
        func append<T>(_ values: [T]) { values.withUnsafeBytes { out += $0 } }
        append(m.positions.flatMap { [$0.x, $0.y, $0.z] })
        append(m.normals.flatMap { [$0.x, $0.y, $0.z] })
        append(m.uvs.flatMap { [$0.x, $0.y] })
        append(m.colors.flatMap { [$0.x, $0.y, $0.z, $0.w] })
        append(m.triangles.flatMap { [$0.x, $0.y, $0.z] })
        if let t = m.material.baseColorTexture { append(t.withChannels(4).pixels) }
        return out
    }

    struct Malformed: Error, CustomStringConvertible { var description: String }

    static func decode(_ bytes: [UInt8]) throws -> ImportedMesh {
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else { throw Malformed(description: "bad magic") }
        let jsonLength = bytes[8..<16].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard jsonLength <= UInt64(bytes.count - 16) else { throw Malformed(description: "header length out of range") }
        let header = try JSONDecoder().decode(Header.self, from: Data(bytes[16..<(16 + Int(jsonLength))]))
        var offset = 16 + Int(jsonLength)
        func floats(_ count: Int) throws -> [Float] {
            let (size, overflow) = count.multipliedReportingOverflow(by: 4)
            guard count >= 0, !overflow, size <= bytes.count - offset else { throw Malformed(description: "truncated arrays") }
            defer { offset += size }
            return bytes[offset..<(offset + size)].withUnsafeBytes { raw in
                (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
        }
        let v = header.vertexCount, f = header.triangleCount
        guard v >= 0, f >= 0, v < 1 << 31, f < 1 << 31 else { throw Malformed(description: "counts out of range") }
        var mesh = TriangleMesh()
        let p = try floats(3 * v)
        mesh.positions = (0..<v).map { SIMD3(p[3 * $0], p[3 * $0 + 1], p[3 * $0 + 2]) }
        let n = try floats(header.hasNormals ? 3 * v : 0)
        if header.hasNormals { mesh.normals = (0..<v).map { SIMD3(n[3 * $0], n[3 * $0 + 1], n[3 * $0 + 2]) } }
        let t = try floats(header.hasUVs ? 2 * v : 0)
        if header.hasUVs { mesh.uvs = (0..<v).map { SIMD2(t[2 * $0], t[2 * $0 + 1]) } }
        let c = try floats(header.hasColors ? 4 * v : 0)
        if header.hasColors { mesh.colors = (0..<v).map { SIMD4(c[4 * $0], c[4 * $0 + 1], c[4 * $0 + 2], c[4 * $0 + 3]) } }
        let indices = try floats(3 * f).map { $0.bitPattern }
        mesh.triangles = (0..<f).map { SIMD3(indices[3 * $0], indices[3 * $0 + 1], indices[3 * $0 + 2]) }
        guard header.baseColorFactor.count == 4 else { throw Malformed(description: "bad colour factor") }
        mesh.material = TriangleMesh.Material(
            name: header.materialName,
            baseColorFactor: SIMD4(header.baseColorFactor[0], header.baseColorFactor[1], header.baseColorFactor[2], header.baseColorFactor[3]),
            metallicFactor: header.metallicFactor, roughnessFactor: header.roughnessFactor)
        if let w = header.textureWidth, let h = header.textureHeight {
            guard w > 0, h > 0, w <= 1 << 16, h <= 1 << 16 else { throw Malformed(description: "texture size out of range") }
            mesh.material.baseColorTexture = Image(width: w, height: h, channels: 4, pixels: try floats(w * h * 4))
        }
        guard offset == bytes.count else { throw Malformed(description: "\(bytes.count - offset) trailing bytes") }
        if let failure = mesh.validationFailure() { throw Malformed(description: "mesh \(failure)") }
        return ImportedMesh(mesh: mesh, info: header.info)
    }
}
