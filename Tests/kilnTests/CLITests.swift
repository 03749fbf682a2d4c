import Foundation
import Testing

/// Runs the built `kiln` executable (it sits beside the test bundle in the build folder).
struct KilnRun {
    var status: Int32
    var stdout: String
    var stderr: String

    static let executable: URL = {
        var folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = folder.appendingPathComponent("kiln")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        fatalError("kiln executable not found next to the test bundle: run `swift build` first")
    }()

    init(_ arguments: String...) throws { try self.init(arguments) }

    /// Runs `kiln arguments`, in `folder` when given, with `environment`'s variables set (a nil
    /// value unsets one).
    init(_ arguments: [String], in folder: URL? = nil, environment: [String: String?] = [:]) throws {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        if let folder { process.currentDirectoryURL = folder }
        if !environment.isEmpty {
            var merged = ProcessInfo.processInfo.environment
            for (key, value) in environment { merged[key] = value }
            process.environment = merged
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        status = process.terminationStatus
        stdout = String(decoding: outData, as: UTF8.self)
        stderr = String(decoding: errData, as: UTF8.self)
    }
}

func withScratchFolder<R>(_ body: (URL) throws -> R) throws -> R {
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("kiln-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

@Suite("kiln command line", .serialized)
struct CLITests {
    @Test("demo writes every format, and inspect and convert read them back")
    func demoInspectConvert() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("demo").path
            let demo = try KilnRun("demo", "--out", out, "--splats", "500", "--size", "32", "--seed", "7")
            #expect(demo.status == 0, "\(demo.stderr)")
            let files = try FileManager.default.contentsOfDirectory(atPath: out)
            for name in ["snowman.glb", "snowman.gltf", "snowman.bin", "snowman.obj", "snowman.mtl", "snowman.ply", "snowman.stl",
                         "snowman.fbx", "snowman.dae", "crate.glb", "crate.obj", "crate_basecolor.png", "splats.ply",
                         "splats.splat", "preview.png", "transforms.json", "summary.json"] {
                #expect(files.contains(name), "missing \(name)")
            }
            #expect(!files.contains { $0.hasPrefix(".") }, "temporary files left: \(files)")

            let png = try KilnRun("inspect", "\(out)/preview.png", "--json")
            #expect(png.status == 0)
            let json = try JSONSerialization.jsonObject(with: Data(png.stdout.utf8)) as? [String: Any]
            let kiln = json?["kiln"] as? [String: Any]
            #expect(kiln?["seed"] as? Int == 7)
            #expect((kiln?["settings"] as? [String: Any])?["splats"] as? Int == 500)

            let splats = try KilnRun("inspect", "\(out)/splats.splat")
            #expect(splats.status == 0 && splats.stdout.contains("count: 500"))

            let converted = folder.appendingPathComponent("snowman_copy.obj").path
            let convert = try KilnRun("convert", "\(out)/snowman.glb", converted)
            #expect(convert.status == 0, "\(convert.stderr)")
            let mesh = try KilnRun("inspect", converted, "--json")
            let meshJSON = try JSONSerialization.jsonObject(with: Data(mesh.stdout.utf8)) as? [String: Any]
            #expect(meshJSON?["triangles"] as? Int == 3160)

            let again = try KilnRun("convert", "\(out)/snowman.glb", converted)
            #expect(again.status == 1 && again.stderr.contains("--force"))
            let rerun = try KilnRun("demo", "--out", out)
            #expect(rerun.status != 0 && rerun.stderr.contains("not empty"))

            let back = folder.appendingPathComponent("back.ply").path
            #expect(try KilnRun("convert", "\(out)/splats.splat", back).status == 0)
            #expect(try KilnRun("inspect", back).stdout.contains("count: 500"))
        }
    }

    @Test("Bad flags and bad files give a message and a non-zero status")
    func badInput() throws {
        try withScratchFolder { folder in
            let missing = try KilnRun("inspect", folder.appendingPathComponent("nope.glb").path)
            #expect(missing.status == 1 && missing.stderr.contains("nope.glb") && missing.stderr.contains("no such file"))

            let noise = folder.appendingPathComponent("noise.glb")
            try Data((0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }).write(to: noise)
            let bad = try KilnRun("inspect", noise.path)
            #expect(bad.status == 1 && bad.stderr.contains("noise.glb"))

            let flag = try KilnRun("convert", noise.path, "x.obj", "--format", "xyz")
            #expect(flag.status == 64 && flag.stderr.contains("--format xyz"))
            let unknown = try KilnRun("inspect", "--frobnicate", noise.path)
            #expect(unknown.status == 64 && unknown.stderr.contains("frobnicate"))
            let range = try KilnRun("demo", "--out", folder.appendingPathComponent("d").path, "--splats", "0")
            #expect(range.status == 64 && range.stderr.contains("--splats"))

            let truncated = folder.appendingPathComponent("cut.ply")
            try Data("ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nproperty float y\nproperty float z\nproperty float f_dc_0\nproperty float f_dc_1\nproperty float f_dc_2\nproperty float opacity\nproperty float scale_0\nproperty float scale_1\nproperty float scale_2\nproperty float rot_0\nproperty float rot_1\nproperty float rot_2\nproperty float rot_3\nend_header\n".utf8 + [0, 0, 0]).write(to: truncated)
            let cut = try KilnRun("convert", truncated.path, folder.appendingPathComponent("out.splat").path)
            #expect(cut.status == 1 && cut.stderr.contains("cut.ply"))
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out.splat").path))
            #expect(try KilnRun("--help").stdout.contains("convert"))
        }
    }
}

@Suite("kiln render and kiln fit", .serialized)
struct RenderFitTests {
    @Test("render writes views, a sheet, depth and transforms.json; fit reconstructs held-out views")
    func renderThenFit() throws {
        try withScratchFolder { folder in
            let demo = folder.appendingPathComponent("demo").path
            #expect(try KilnRun("demo", "--out", demo, "--splats", "3000", "--size", "16").status == 0)
            let views = folder.appendingPathComponent("views").path
            let render = try KilnRun("render", "\(demo)/splats.ply", "--views", "8", "--size", "48", "--out", views, "--depth", "--background", "white")
            #expect(render.status == 0, "\(render.stderr)")
            let files = try FileManager.default.contentsOfDirectory(atPath: views)
            for i in 0..<8 {
                #expect(files.contains(String(format: "view_%03d.png", i)) && files.contains(String(format: "depth_%03d.png", i)))
            }
            #expect(files.contains("sheet.png") && files.contains("transforms.json"))
            let transforms = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(views)/transforms.json"))) as? [String: Any]
            #expect((transforms?["frames"] as? [Any])?.count == 8)
            #expect((transforms?["depth_scale"] as? Double ?? 0) > 0)
            let depth = try KilnRun("inspect", "\(views)/depth_000.png", "--json")
            #expect(depth.stdout.contains("\"bitDepth\" : 16"))

            let run = folder.appendingPathComponent("fit").path
            let fit = try KilnRun("fit", views, "--out", run, "--steps", "200", "--initial", "1000", "--holdout", "1")
            #expect(fit.status == 0, "\(fit.stderr)")
            let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/metrics.json"))) as? [String: Any]
            let psnr = metrics?["heldOutPSNR"] as? Double ?? 0
            // 200 steps at 48² from 7 views: measured 22.5 dB; a broken fit stays near 10 dB.
            #expect(psnr > 18, "held-out PSNR \(psnr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: run).sorted() == ["metrics.json", "progress.png", "splats.ply"])
        }
    }

    @Test("render and fit refuse bad input with a message")
    func badInput() throws {
        try withScratchFolder { folder in
            let empty = folder.appendingPathComponent("empty").path
            try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
            let fit = try KilnRun("fit", empty, "--out", folder.appendingPathComponent("run").path)
            #expect(fit.status == 1 && fit.stderr.contains("transforms.json"))
            let views = try KilnRun("render", "x.ply", "--out", folder.appendingPathComponent("r").path, "--views", "0")
            #expect(views.status == 64 && views.stderr.contains("--views"))
            let color = try KilnRun("render", "x.ply", "--out", folder.appendingPathComponent("r").path, "--background", "purple")
            #expect(color.status == 64 && color.stderr.contains("background"))
        }
    }
}
