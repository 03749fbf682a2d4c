import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The hostile-input corpus (`HostileCorpus/`, written by `tools/make_hostile_corpus.py`): inputs
/// that once crashed `kiln` (a Swift trap, signal 4), hung it, or let it succeed with nonsense.
/// Each runs through the command line with a time limit and must exit with a status in 1…127
/// within seconds, say what is wrong (a substring of its message) and leave nothing in --out.
@Suite("hostile inputs", .serialized)
struct HostileCorpusTests {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let corpus = tests.appendingPathComponent("HostileCorpus")
    static let tiny = SampleCommandTests.tiny

    /// One refused input: arguments (`{C}` is the corpus folder, `{OUT}` a fresh output path) and
    /// a piece of the message it must print.
    struct Refused: Sendable, CustomTestStringConvertible {
        var arguments: [String]
        var message: String
        init(_ arguments: String..., says message: String) {
            self.arguments = arguments
            self.message = message
        }
        var testDescription: String { arguments.joined(separator: " ") }
    }

    static let refused: [Refused] = [
        // Splats: far, huge, non-finite, degenerate, empty, truncated (render and eval).
        Refused("render", "{C}/splat-one-at-1e7.ply", "--out", "{OUT}", says: "too small to place a camera"),
        Refused("render", "{C}/splat-one-at-1e7.splat", "--out", "{OUT}", says: "too small to place a camera"),
        Refused("eval", "{C}/splat-one-at-1e7.ply", "--out", "{OUT}", says: "too small to place a camera"),
        Refused("render", "{C}/splat-all-far-1e7.ply", "--out", "{OUT}", says: "recentre or rescale"),
        Refused("eval", "{C}/splat-all-far-1e7.ply", "--out", "{OUT}", says: "recentre or rescale"),
        Refused("render", "{C}/splat-far-1e30.ply", "--out", "{OUT}", says: "farther than 1000000000 units"),
        Refused("eval", "{C}/splat-far-1e30.ply", "--out", "{OUT}", says: "farther than 1000000000 units"),
        Refused("render", "{C}/splat-scale-1e30.ply", "--out", "{OUT}", says: "larger than 1000000000 units"),
        Refused("render", "{C}/splat-scale-1e30.splat", "--out", "{OUT}", says: "larger than 1000000000 units"),
        Refused("render", "{C}/splat-zero-scale.splat", "--out", "{OUT}", says: "scale_0 = 0.0"),
        Refused("render", "{C}/splat-nan.ply", "--out", "{OUT}", says: "NaN or infinite `x`"),
        Refused("render", "{C}/splat-inf.ply", "--out", "{OUT}", says: "NaN or infinite `y`"),
        Refused("eval", "{C}/splat-neg-inf.ply", "--out", "{OUT}", says: "NaN or infinite `z`"),
        Refused("render", "{C}/splat-empty.ply", "--out", "{OUT}", says: "is empty"),
        Refused("render", "{C}/splat-truncated.ply", "--out", "{OUT}", says: "truncated"),
        // Meshes: a vertex at 1e30 or 3e38, every vertex equal, an empty file.
        Refused("render", "{C}/mesh-vertex-1e30.obj", "--out", "{OUT}", says: "a coordinate is out of range"),
        Refused("render", "{C}/mesh-vertex-3e38.obj", "--out", "{OUT}", says: "a coordinate is out of range"),
        Refused("eval", "{C}/mesh-vertex-1e30.obj", "--out", "{OUT}", says: "a coordinate is out of range"),
        Refused("eval", "{C}/mesh-zero-size.obj", "--out", "{OUT}", says: "has zero size"),
        Refused("render", "{C}/mesh-zero-size.obj", "--out", "{OUT}", says: "has zero size"),
        Refused("render", "{C}/mesh-empty.obj", "--out", "{OUT}", says: "is empty"),
        // --radius out of range.
        Refused("render", "{C}/splat-long-header.ply", "--out", "{OUT}", "--radius=1e-30", says: "--radius must be a distance"),
        Refused("render", "{C}/splat-long-header.ply", "--out", "{OUT}", "--radius=0", says: "--radius must be a distance"),
        Refused("render", "{C}/splat-long-header.ply", "--out", "{OUT}", "--radius=-1", says: "--radius must be a distance"),
        Refused("render", "{C}/splat-long-header.ply", "--out", "{OUT}", "--radius=nan", says: "--radius must be a distance"),
        Refused("render", "{C}/splat-long-header.ply", "--out", "{OUT}", "--radius=inf", says: "--radius must be a distance"),
        Refused("render", "{C}/splat-long-header.ply", "--out", "{OUT}", "--radius=1e30", says: "--radius must be a distance"),
        // PLY headers that sent Assimp's reader into an endless loop, and truncated bodies.
        Refused("inspect", "{C}/mesh-no-end-header.ply", says: "no `end_header`"),
        Refused("render", "{C}/mesh-no-end-header.ply", "--out", "{OUT}", says: "no `end_header`"),
        Refused("convert", "{C}/mesh-no-end-header.ply", "{OUT}.glb", says: "no `end_header`"),
        Refused("inspect", "{C}/mesh-header-only-binary.ply", says: "is truncated"),
        Refused("inspect", "{C}/mesh-header-only-ascii.ply", says: "is truncated"),
        // A mutated DAE (found by tools/fuzz.sh) on which Assimp loops: stopped by the child's
        // CPU limit, sized to the file (10 s for a small one).
        Refused("inspect", "{C}/mesh-fuzz-cpu-loop.dae", says: "s of CPU while reading this file"),
        // Paths inside input files that lead outside the input's folder.
        Refused("inspect", "{C}/mesh-texture-outside/escape.obj", says: "--allow-outside-paths"),
        Refused("convert", "{C}/mesh-texture-outside/escape.obj", "{OUT}.glb", says: "outside the mesh's folder"),
        Refused("eval-views", "{C}/views-dotdot-path", "--out", "{OUT}", says: "--allow-outside-paths"),
        Refused("eval-views", "{C}/views-absolute-path", "--out", "{OUT}", says: "leads outside the folder"),
        Refused("fit", "{C}/views-dotdot-path", "--out", "{OUT}", says: "--allow-outside-paths"),
        // Camera poses that are zero, far, huge or not JSON; empty and truncated files.
        Refused("eval-views", "{C}/views-zero-transform", "--out", "{OUT}", says: "frame 3 (view_003.png) has an unusable transform_matrix"),
        Refused("fit", "{C}/views-zero-transform", "--out", "{OUT}", says: "has an unusable transform_matrix"),
        Refused("eval-views", "{C}/views-1e30-transform", "--out", "{OUT}", says: "farther than 1000000000 units"),
        Refused("eval-views", "{C}/views-scale-1e30-transform", "--out", "{OUT}", says: "zero or degenerate rotation"),
        Refused("eval-views", "{C}/views-nan-transform", "--out", "{OUT}", says: "is not valid JSON"),
        Refused("eval-views", "{C}/views-empty", "--out", "{OUT}", says: "is not valid JSON"),
        Refused("fit", "{C}/views-truncated", "--out", "{OUT}", says: "is not valid JSON"),
        // Views that show nothing: fit wrote 0 Gaussians and exited 0.
        Refused("fit", "{C}/views-see-nothing", "--out", "{OUT}", "--steps", "20", says: "there is nothing to fit"),
        // generate settings: checked before anything is written; errors name the key or the line.
        Refused("generate", "a red snowman", "--prior", "{TINY}", "--out", "{OUT}", "--config", "{C}/config-min-above-max.json", says: "sds.min_step and sds.max_step"),
        Refused("generate", "a red snowman", "--prior", "{TINY}", "--out", "{OUT}", "--config", "{C}/config-negative-lr.json", says: "gaussians.position_learning_rate"),
        Refused("generate", "a red snowman", "--prior", "{TINY}", "--out", "{OUT}", "--config", "{C}/config-zero-lr.json", says: "gaussians.feature_learning_rate"),
        Refused("generate", "a red snowman", "--prior", "{TINY}", "--out", "{OUT}", "--config", "{C}/config-unknown-key.json", says: "'sds.guidance' is not a setting"),
        Refused("generate", "a red snowman", "--prior", "{TINY}", "--out", "{OUT}", "--config", "{C}/config-wrong-type.json", says: "'views.views_per_step' has the wrong type"),
        Refused("generate", "a red snowman", "--prior", "{TINY}", "--out", "{OUT}", "--config", "{C}/config-syntax-error.json", says: "line 3, column"),
    ]

    @Test("each hostile input is refused with a message and leaves nothing behind", arguments: refused)
    func refusedInput(_ c: Refused) throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("out")
            let arguments = c.arguments.map {
                $0.replacingOccurrences(of: "{C}", with: Self.corpus.path).replacingOccurrences(of: "{OUT}", with: out.path)
                    .replacingOccurrences(of: "{TINY}", with: Self.tiny)
            }
            let run = try TimedKilnRun(arguments, timeout: 60)
            run.expectRefused(saying: c.message)
            #expect(Self.leftovers(in: folder).isEmpty, "left behind: \(Self.leftovers(in: folder))")
        }
    }

    /// Inputs that once failed but are valid, or that a renderer can show: they must succeed.
    static let accepted: [Refused] = [
        // A 3DGS PLY whose header (comments) is longer than 4 KB was taken for a mesh.
        Refused("inspect", "{C}/splat-long-header.ply", says: "count: 24"),
        // One stray Gaussian far away is left out of the robust framing; tiny or opaque ones render.
        Refused("render", "{C}/splat-far-1e7.ply", "--out", "{OUT}", "--views", "2", "--size", "16", says: "wrote 2 views"),
        Refused("render", "{C}/splat-scale-neg-1e30.ply", "--out", "{OUT}", "--views", "2", "--size", "16", says: "wrote 2 views"),
        Refused("render", "{C}/splat-opacity-1e30.ply", "--out", "{OUT}", "--views", "2", "--size", "16", says: "wrote 2 views"),
        // The texture outside the mesh's folder is read when the user says so.
        Refused("inspect", "{C}/mesh-texture-outside/escape.obj", "--allow-outside-paths", says: "triangles: 4"),
    ]

    @Test("inputs at the edge that are valid still work", arguments: accepted)
    func acceptedInput(_ c: Refused) throws {
        try withScratchFolder { folder in
            let arguments = c.arguments.map {
                $0.replacingOccurrences(of: "{C}", with: Self.corpus.path).replacingOccurrences(of: "{OUT}", with: folder.appendingPathComponent("out").path)
            }
            let run = try TimedKilnRun(arguments)
            #expect(run.status == 0 && !run.timedOut, "\(arguments): \(run.stderr)")
            #expect(run.stdout.contains(c.message), "\(arguments): \(run.stdout)")
        }
    }

    /// Files and folders under `folder` other than the (absent or empty) output: what a refused
    /// command must not leave.
    static func leftovers(in folder: URL) -> [String] {
        let files = FileManager.default
        let out = folder.appendingPathComponent("out")
        var found = ((try? files.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0 != "out" }
        var isFolder: ObjCBool = false
        if files.fileExists(atPath: out.path, isDirectory: &isFolder) {
            found += isFolder.boolValue ? ((try? files.contentsOfDirectory(atPath: out.path)) ?? []).map { "out/" + $0 } : ["out (a file)"]
        }
        return found
    }

    // MARK: Runs, checkpoints, locks and signals

    @Test("a run's checkpoint, lock, --resume --steps and export --faces are checked; SIGTERM saves and exits 130")
    func runFolderCases() throws {
        try withScratchFolder { folder in
            let run = folder.appendingPathComponent("run").path
            let made = try GenerateCommandTests.generate(run)
            try #require(made.status == 0, "\(made.stderr)")
            func unchanged<R>(_ path: String, _ body: () throws -> R) throws -> R {
                let before = try Self.snapshot(path)
                let result = try body()
                #expect(try Self.snapshot(path) == before, "\(path) changed")
                return result
            }
            func resume(_ folder: String, _ extra: [String] = []) throws -> TimedKilnRun {
                try TimedKilnRun(["generate", "a red snowman", "--prior", Self.tiny, "--out", folder, "--resume", "--preview-every", "0"] + extra)
            }
            // --resume --steps below the run's length: refused, the config untouched.
            try unchanged(run) { try resume(run, ["--steps", "2"]).expectRefused(saying: "cannot be shortened") }

            // completedSteps 1e9 and a NaN tensor in the checkpoint.
            let huge = folder.appendingPathComponent("huge").path
            try FileManager.default.copyItem(atPath: run, toPath: huge)
            let stateURL = URL(fileURLWithPath: huge + "/checkpoint/state.json")
            var state = try JSONSerialization.jsonObject(with: Data(contentsOf: stateURL)) as! [String: Any]
            state["completedSteps"] = 1_000_000_000
            try JSONSerialization.data(withJSONObject: state).write(to: stateURL)
            try unchanged(huge) { try resume(huge).expectRefused(saying: "1000000000 steps were done") }

            let nan = folder.appendingPathComponent("nan").path
            try FileManager.default.copyItem(atPath: run, toPath: nan)
            try Self.poisonFirstTensor(URL(fileURLWithPath: nan + "/checkpoint/state.safetensors"))
            try unchanged(nan) { try resume(nan).expectRefused(saying: "holds NaN or infinite values") }

            // A folder another generate holds: the second one is refused, whatever --force says.
            let lockURL = URL(fileURLWithPath: run + "/.kiln-lock")
            let fd = open(lockURL.path, O_RDWR | O_CREAT, 0o644)
            try #require(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
            try unchanged(run) {
                try TimedKilnRun(["generate", "a red snowman", "--prior", Self.tiny, "--out", run, "--force", "--steps", "2"])
                    .expectRefused(saying: "another kiln generate")
            }
            close(fd)
            unlink(lockURL.path)

            // --faces 4: at most 4 triangles, or an error naming the count reached and no file.
            let small = folder.appendingPathComponent("small.glb").path
            let export = try TimedKilnRun(["export", run, "--faces", "4", "--out", small], timeout: 60)
            if export.status == 0 {
                let inspect = try TimedKilnRun(["inspect", small, "--json"])
                let json = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any]
                #expect((json?["triangles"] as? Int ?? .max) <= 4, "\(inspect.stdout)")
            } else {
                export.expectRefused(saying: "--faces 4")
                #expect(!FileManager.default.fileExists(atPath: small))
            }

            // kiln sample does not overwrite without --force.
            let png = folder.appendingPathComponent("grid.png")
            try Data().write(to: png)
            try TimedKilnRun(["sample", "a red snowman", "--prior", Self.tiny, "--out", png.path, "--steps", "1", "--count", "1"])
                .expectRefused(saying: "pass --force")
            #expect(try Data(contentsOf: png).isEmpty)

            // SIGTERM during the steps saves a checkpoint and exits 130, saying how to resume.
            let long = folder.appendingPathComponent("long").path
            let config = URL(fileURLWithPath: long + "-config.json")
            try Data(#"{"views": {"views_per_step": 2, "render_size": 32}, "gaussians": {"initial_gaussians": 400}}"#.utf8).write(to: config)
            let terminated = try TimedKilnRun(["generate", "a red snowman", "--prior", Self.tiny, "--steps", "100000", "--checkpoint-every", "100000",
                                               "--preview-every", "0", "--config", config.path, "--out", long],
                                              signal: SIGTERM, when: { FileManager.default.fileExists(atPath: long + "/previews") })
            #expect(terminated.status == 130 && !terminated.timedOut, "\(terminated.status): \(terminated.stderr)")
            #expect(terminated.stdout.contains("--resume"))
            #expect(FileManager.default.fileExists(atPath: long + "/checkpoint/state.json"))
            #expect(!FileManager.default.fileExists(atPath: long + "/.kiln-lock"))
            // The interrupted sitting's time is kept for the resume to add to.
            #expect(FileManager.default.fileExists(atPath: long + "/profile.json"))
        }
    }

    @Test("the import child dies with its parent")
    func importChildDiesWithParent() throws {
        // The child alone (no parent-side pre-check) spins on this file; its parent, a shell, is
        // killed with SIGKILL: the kernel must kill the child too.
        let hang = Self.corpus.appendingPathComponent("mesh-no-end-header.ply").path
        try withScratchFolder { folder in
            let marker = folder.appendingPathComponent("child.pid").path
            let script = "KILN_IMPORT_PARENT=$$ '\(KilnRun.executable.path)' _import-worker '\(hang)' '\(folder.path)/out.bin' & echo $! > '\(marker)'; wait"
            let shell = Process()
            shell.executableURL = URL(fileURLWithPath: "/bin/sh")
            shell.arguments = ["-c", script]
            try shell.run()
            var child: pid_t = 0
            for _ in 0..<100 where child == 0 {
                usleep(50_000)
                child = (try? String(contentsOfFile: marker, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
            }
            try #require(child > 0)
            usleep(300_000)
            #expect(kill(child, 0) == 0, "the child should still be importing")
            kill(shell.processIdentifier, SIGKILL)
            shell.waitUntilExit()
            var gone = false
            for _ in 0..<60 where !gone {
                usleep(50_000)
                // A killed child is reparented and reaped by init; a zombie counts as gone too.
                let status = try? String(contentsOfFile: "/proc/\(child)/status", encoding: .utf8)
                gone = status == nil || status!.contains("State:\tZ")
            }
            #expect(gone, "the import child \(child) outlived its parent")
            if !gone { kill(child, SIGKILL) }
        }
    }

    @Test("render on a full disk leaves no partial views (tmpfs; skipped where mount is not allowed)")
    func renderOnFullDisk() throws {
        try withScratchFolder { folder in
            let disk = folder.appendingPathComponent("disk")
            try FileManager.default.createDirectory(at: disk, withIntermediateDirectories: true)
            guard getuid() == 0, Self.system("/bin/mount", ["-t", "tmpfs", "-o", "size=160k", "tmpfs", disk.path]) == 0 else {
                print("skipped: mounting a small tmpfs needs root")
                return
            }
            defer { _ = Self.system("/bin/umount", [disk.path]) }
            let out = disk.appendingPathComponent("views").path
            let run = try TimedKilnRun(["render", Self.corpus.appendingPathComponent("splat-long-header.ply").path, "--out", out,
                                        "--views", "16", "--size", "256", "--depth"])
            run.expectRefused(saying: "the disk is full")
            #expect(try FileManager.default.contentsOfDirectory(atPath: disk.path).isEmpty)
        }
    }

    // MARK: Helpers

    static func snapshot(_ folder: String) throws -> [String: Data] {
        var result: [String: Data] = [:]
        let files = FileManager.default
        for case let name as String in files.enumerator(atPath: folder)! {
            var isFolder: ObjCBool = false
            let path = folder + "/" + name
            if files.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue { result[name] = try Data(contentsOf: URL(fileURLWithPath: path)) }
        }
        return result
    }

    /// Writes NaN over the first value of the first F32 tensor of a safetensors file.
    static func poisonFirstTensor(_ url: URL) throws {
        var bytes = [UInt8](try Data(contentsOf: url))
        let length = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any]
        let first = header.compactMap { $0.value as? [String: Any] }.first { $0["dtype"] as? String == "F32" }!
        let begin = 8 + length + ((first["data_offsets"] as! [Int])[0])
        withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { for i in 0..<4 { bytes[begin + i] = $0[i] } }
        try Data(bytes).write(to: url)
    }

    static func system(_ path: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// A run of the built `kiln` with a time limit (killed past it), output through files so that no
/// pipe fills; optionally sends `signal` once `when` holds.
struct TimedKilnRun {
    var status: Int32
    var signaled: Bool
    var timedOut: Bool
    var stdout: String
    var stderr: String
    var arguments: [String]

    init(_ arguments: [String], timeout: Double = 30, signal: Int32? = nil, when condition: () -> Bool = { true }) throws {
        self.arguments = arguments
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("kiln-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout"), errURL = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = KilnRun.executable
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        var sent = signal == nil
        timedOut = false
        while process.isRunning {
            if !sent, condition() {
                usleep(300_000)
                kill(process.processIdentifier, signal!)
                sent = true
            }
            if Date() > deadline {
                kill(process.processIdentifier, SIGKILL)
                timedOut = true
                break
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        status = process.terminationStatus
        signaled = process.terminationReason == .uncaughtSignal
        stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    }

    /// Exit status 1…127 (no signal, no hang) and the message naming the problem.
    func expectRefused(saying message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let command = arguments.joined(separator: " ")
        #expect(!timedOut, "\(command): still running after its time limit", sourceLocation: sourceLocation)
        #expect(!signaled && (1...127).contains(status), "\(command): status \(status)\(signaled ? " (signal)" : ""): \(stderr.suffix(600))",
                sourceLocation: sourceLocation)
        #expect(stderr.contains(message), "\(command): the message lacks \"\(message)\": \(stderr.suffix(600))", sourceLocation: sourceLocation)
    }
}
