import Foundation
import Testing

@Suite("kiln generate and kiln export", .serialized)
struct GenerateCommandTests {
    static let tiny = SampleCommandTests.tiny

    /// A short run on the tiny test prior (16²): 4 steps, 2 views of 32².
    static func generate(_ out: String, _ extra: [String] = []) throws -> KilnRun {
        let config = URL(fileURLWithPath: out + "-config.json")
        try Data(#"{"views": {"views_per_step": 2, "render_size": 32}, "gaussians": {"initial_gaussians": 400}}"#.utf8).write(to: config)
        return try KilnRun(["generate", "a red snowman", "--prior", tiny, "--steps", "4", "--checkpoint-every", "2", "--preview-every", "2",
                            "--config", config.path, "--out", out] + extra)
    }

    @Test("a run folder with every output; the same seed gives the same splats; --resume of a finished run changes nothing")
    func runFolder() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("run").path
            let run = try Self.generate(out, ["--seed", "5"])
            #expect(run.status == 0, "\(run.stderr)")
            let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
            for name in ["config.json", "log.csv", "checkpoint", "previews", "turntable", "sheet.png", "loss.png", "splats.ply", "asset.glb"] {
                #expect(files.contains(name), "missing \(name)")
            }
            let log = try String(contentsOfFile: out + "/log.csv", encoding: .utf8).split(separator: "\n")
            #expect(log.count == 5 && log[0].hasPrefix("step,timestep,sds_loss"))
            let config = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
            #expect(config.contains("\"views_per_step\" : 2") && config.contains("\"seed\" : 5") && config.contains("\"prompt\" : \"a red snowman\""))
            #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/turntable").count == 36)
            let again = folder.appendingPathComponent("again").path
            #expect(try Self.generate(again, ["--seed", "5"]).status == 0)
            #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/splats.ply")) == Data(contentsOf: URL(fileURLWithPath: again + "/splats.ply")))
            // The run's own config.json reproduces it.
            let fromConfig = folder.appendingPathComponent("from-config").path
            let replay = try KilnRun("generate", "a red snowman", "--prior", Self.tiny, "--config", out + "/config.json", "--preview-every", "0", "--out", fromConfig)
            #expect(replay.status == 0, "\(replay.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/splats.ply")) == Data(contentsOf: URL(fileURLWithPath: fromConfig + "/splats.ply")))
            // Export to other formats, with a baked texture.
            let export = try KilnRun("export", out, "--format", "obj", "--faces", "500", "--texture-size", "64")
            #expect(export.status == 0, "\(export.stderr)")
            #expect(FileManager.default.fileExists(atPath: out + "/asset.obj") && FileManager.default.fileExists(atPath: out + "/asset_basecolor.png"))
            #expect(try KilnRun("export", out, "--format", "obj").status != 0, "an existing file needs --force")
        }
    }

    @Test("--representation nerf: the same run folder, with the field's weights and a mesh from its density")
    func nerf() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("nerf").path
            let config = folder.appendingPathComponent("nerf.json")
            try Data(#"{"views": {"views_per_step": 1, "render_size": 16}, "nerf": {"levels": 4, "log2_table_size": 10, "samples_per_ray": 16, "width": 16}}"#.utf8).write(to: config)
            let run = try KilnRun("generate", "a red snowman", "--prior", Self.tiny, "--representation", "nerf", "--steps", "3", "--preview-every", "0",
                                  "--config", config.path, "--out", out)
            #expect(run.status == 0, "\(run.stderr)")
            let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
            for name in ["config.json", "log.csv", "checkpoint", "sheet.png", "field.safetensors", "asset.glb"] { #expect(files.contains(name), "missing \(name)") }
            #expect(try String(contentsOfFile: out + "/config.json", encoding: .utf8).contains("\"representation\" : \"nerf\""))
            // Export reads the field back through the run's config.json: other formats, a texture.
            let export = try KilnRun("export", out, "--format", "ply", "--faces", "300", "--resolution", "24", "--level", "1")
            #expect(export.status == 0, "\(export.stderr)")
            #expect(FileManager.default.fileExists(atPath: out + "/asset.ply"))
            let textured = try KilnRun("export", out, "--format", "obj", "--resolution", "24", "--level", "1", "--texture-size", "32")
            #expect(textured.status == 0 && FileManager.default.fileExists(atPath: out + "/asset_basecolor.png"), "\(textured.stderr)")
            // kiln eval judges a NeRF run on its field, with depth for the geometric checks.
            let evaluated = folder.appendingPathComponent("nerf-eval").path
            let eval = try KilnRun("eval", out, "--size", "32", "--views", "4", "--out", evaluated)
            #expect(eval.status == 0, "\(eval.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: evaluated + "/report.json"))) as! [String: Any]
            #expect(report["representation"] as? String == "nerf" && report["geometry"] != nil)
            // A NeRF renders at the prior's size (16² here) unless the config names a size.
            let plain = folder.appendingPathComponent("plain.json")
            try Data(#"{"views": {"views_per_step": 1}, "nerf": {"levels": 4, "log2_table_size": 10, "samples_per_ray": 8, "width": 16}}"#.utf8).write(to: plain)
            let defaultSize = folder.appendingPathComponent("nerf-default").path
            let second = try KilnRun("generate", "a red snowman", "--prior", Self.tiny, "--representation", "nerf", "--steps", "1", "--preview-every", "0",
                                     "--config", plain.path, "--out", defaultSize)
            #expect(second.status == 0, "\(second.stderr)")
            #expect(try String(contentsOfFile: defaultSize + "/config.json", encoding: .utf8).contains("\"render_size\" : 16"))
            // A damaged field is named, with what to do; nothing is written.
            try Data("not safetensors".utf8).write(to: URL(fileURLWithPath: defaultSize + "/field.safetensors"))
            let broken = try KilnRun("export", defaultSize, "--format", "stl")
            #expect(broken.status == 1 && broken.stderr.contains("field.safetensors") && broken.stderr.contains("rerun"), "\(broken.stderr)")
            #expect(!FileManager.default.fileExists(atPath: defaultSize + "/asset.stl"))
        }
    }

    @Test("--refine mesh: the coarse mesh kept as asset-coarse.glb, the refined one as asset.glb, with the stage's own log and checkpoint")
    func refine() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("refined").path
            let run = try Self.generate(out, ["--refine", "mesh", "--refine-steps", "3"])
            #expect(run.status == 0, "\(run.stderr)")
            let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
            for name in ["asset.glb", "asset-coarse.glb", "log-refine.csv", "checkpoint-refine", "sheet-refine.png", "splats.ply"] {
                #expect(files.contains(name), "missing \(name)")
            }
            #expect(try String(contentsOfFile: out + "/log-refine.csv", encoding: .utf8).split(separator: "\n").count == 4)
            // A finished coarse run gains the refinement later with --resume, as if it had been asked for at the start.
            let later = folder.appendingPathComponent("later").path
            #expect(try Self.generate(later).status == 0)
            let added = try KilnRun("generate", "a red snowman", "--prior", Self.tiny, "--out", later, "--resume", "--refine", "mesh", "--refine-steps", "3")
            #expect(added.status == 0, "\(added.stderr)")
            func losses(_ run: String) throws -> [String] {  // every column but the timing
                try String(contentsOfFile: run + "/log-refine.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").dropLast().joined(separator: ",") }
            }
            #expect(try losses(later) == losses(out))
            #expect(try Data(contentsOf: URL(fileURLWithPath: later + "/asset.glb")) == Data(contentsOf: URL(fileURLWithPath: out + "/asset.glb")))
            #expect(try String(contentsOfFile: later + "/config.json", encoding: .utf8).contains("\"stage\" : \"mesh\""))
            // A stage is one of the enum's names; the argument parser lists them.
            let unknown = try KilnRun("generate", "a red snowman", "--prior", Self.tiny, "--refine", "texture", "--out", folder.appendingPathComponent("x").path)
            #expect(unknown.status != 0 && unknown.stderr.contains("'texture' is invalid") && unknown.stderr.contains("'mesh'"), "\(unknown.stderr)")
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("x").path))
        }
    }

    @Test("--refine-offsets moves the vertices too and cannot be added to a refinement under way")
    func refineOffsets() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("offsets").path
            let run = try Self.generate(out, ["--refine", "mesh", "--refine-offsets", "--refine-steps", "3"])
            #expect(run.status == 0, "\(run.stderr)")
            let offsets = try Self.float32Tensor("offsets", in: out + "/checkpoint-refine/state.safetensors")
            #expect(!offsets.isEmpty && offsets.contains { $0 != 0 } && offsets.allSatisfy(\.isFinite))
            #expect(try String(contentsOfFile: out + "/config.json", encoding: .utf8).contains("\"offsets\" : true"))
            // --resume of the finished run changes nothing (a resume inside the refinement is
            // checked bit for bit in KilnDistillTests).
            let before = try Data(contentsOf: URL(fileURLWithPath: out + "/asset.glb"))
            let again = try KilnRun("generate", "a red snowman", "--prior", Self.tiny, "--out", out, "--resume")
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/asset.glb")) == before)
            // A colour-only refinement under way cannot switch to offsets; offsets need the mesh stage.
            let colours = folder.appendingPathComponent("colours").path
            #expect(try Self.generate(colours, ["--refine", "mesh", "--refine-steps", "2"]).status == 0)
            let switched = try KilnRun("generate", "a red snowman", "--prior", Self.tiny, "--out", colours, "--resume", "--refine-offsets")
            #expect(switched.status != 0 && switched.stderr.contains("start a new run"), "\(switched.stderr)")
            let alone = try KilnRun("generate", "a red snowman", "--prior", Self.tiny, "--refine-offsets", "--out", folder.appendingPathComponent("x").path)
            #expect(alone.status != 0 && alone.stderr.contains("--refine mesh"), "\(alone.stderr)")
        }
    }

    @Test("bad input gives a message naming the fix and a non-zero exit")
    func errors() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("run").path
            let badConfig = folder.appendingPathComponent("bad.json")
            try Data(#"{"sds": {"guidance": 3}}"#.utf8).write(to: badConfig)
            let cases: [([String], String)] = [
                (["--steps", "0"], "--steps"),
                (["--reward", "beauty:1", "--method", "rw-sds"], "beauty"),
                (["--method", "ppo"], "ppo"),
                (["--config", badConfig.path], "sds.guidance"),
                (["--resume"], "config.json"),
                (["--config", folder.appendingPathComponent("missing.json").path], "cannot be read"),
                (["--representation", "mesh"], "provide one of 'gaussians' and 'nerf'"),
                (["--objective", "vsdx"], "'sds', 'csd', 'nfsd', 'ism' or 'vsd'"),
                (["--objective", "ism", "--method", "dpo"], "draws no noise"),
            ]
            for (extra, needle) in cases {
                let run = try KilnRun(["generate", "a red snowman", "--prior", Self.tiny, "--out", out] + extra)
                #expect(run.status != 0 && (run.stderr + run.stdout).contains(needle), "\(extra): \(run.stderr)")
                #expect(!FileManager.default.fileExists(atPath: out + "/splats.ply"))
            }
            // An existing run folder is never overwritten without --force.
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try Data("keep".utf8).write(to: URL(fileURLWithPath: out + "/note.txt"))
            let refused = try Self.generate(out)
            #expect(refused.status != 0 && refused.stderr.contains("--force"))
            #expect(try String(contentsOfFile: out + "/note.txt", encoding: .utf8) == "keep")
            #expect(try KilnRun("export", folder.path).stderr.contains("splats.ply"))
        }
    }

    /// One F32 tensor of a safetensors file, read by the format's definition (8-byte header length,
    /// JSON header with dtype and data_offsets, then the data).
    static func float32Tensor(_ name: String, in path: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        guard let entry = header[name] as? [String: Any], entry["dtype"] as? String == "F32", let range = entry["data_offsets"] as? [Int] else { return [] }
        let bytes = data.subdata(in: (8 + headerLength + range[0])..<(8 + headerLength + range[1]))
        return stride(from: 0, to: bytes.count, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[bytes.startIndex + i]) | UInt32(bytes[bytes.startIndex + i + 1]) << 8
                  | UInt32(bytes[bytes.startIndex + i + 2]) << 16 | UInt32(bytes[bytes.startIndex + i + 3]) << 24)
        }
    }

    /// A run folder's profile.json: stage → (seconds, part → seconds).
    static func profile(_ out: String) throws -> [String: (seconds: Double, parts: [String: Double])] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/profile.json"))) as! [String: Any]
        var result: [String: (seconds: Double, parts: [String: Double])] = [:]
        for stage in json["stages"] as! [[String: Any]] {
            let parts = (stage["parts"] as! [[String: Any]]).map { ($0["part"] as! String, $0["seconds"] as! Double) }
            let shares = (stage["parts"] as! [[String: Any]]).map { $0["share"] as! Double }
            #expect(shares.isEmpty || abs(shares.reduce(0, +) - 1) < 1e-6, "the shares of \(stage["stage"]!) do not add to 1")
            result[stage["stage"] as! String] = (stage["seconds"] as! Double, Dictionary(uniqueKeysWithValues: parts))
        }
        return result
    }

    @Test("--resume starts at the first stage stages.json does not list: a finished distillation is not redone; profile.json adds the sittings")
    func stageResume() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("staged").path
            let first = try Self.generate(out)
            #expect(first.status == 0)
            // The profile: every stage, the step's kinds of work inside the distillation, a table on the console.
            #expect(first.stdout.contains("where the time went"), "\(first.stdout)")
            let profile = try Self.profile(out)
            #expect(Set(profile.keys) == ["setup", "distil", "export", "report"], "\(profile.keys)")
            let distilParts = Set(profile["distil"]!.parts.keys)
            for part in ["render forward", "prior encode", "prior forward", "prior encode backward", "render backward", "optimiser", "checkpoints",
                         "previews", "write"] {
                #expect(distilParts.contains(part), "no \(part) in \(distilParts)")
            }
            #expect(Set(profile["report"]!.parts.keys).isSuperset(of: ["turntable", "sheets and plots", "score", "mesh score"]))
            #expect(Set(profile["export"]!.parts.keys).isSuperset(of: ["mesh extraction", "mesh export"]))
            let stages = try String(contentsOfFile: out + "/stages.json", encoding: .utf8)
            #expect(["distil", "export", "report"].allSatisfy(stages.contains) && !stages.contains("refine"))
            let splats = URL(fileURLWithPath: out + "/splats.ply"), asset = URL(fileURLWithPath: out + "/asset.glb")
            let before = try Data(contentsOf: asset), splatsDate = try FileManager.default.attributesOfItem(atPath: splats.path)[.modificationDate] as? Date
            // The run stopped after its distillation: export and report are redone, the splats are not rewritten.
            try Data(#"["distil"]"#.utf8).write(to: URL(fileURLWithPath: out + "/stages.json"))
            try FileManager.default.removeItem(at: asset)
            try FileManager.default.removeItem(atPath: out + "/sheet.png")
            Thread.sleep(forTimeInterval: 1.1)
            let resumed = try KilnRun("generate", "a red snowman", "--prior", Self.tiny, "--out", out, "--resume")
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(!resumed.stdout.contains("generating"), "the finished distillation ran again: \(resumed.stdout)")
            #expect(try Data(contentsOf: asset) == before && FileManager.default.fileExists(atPath: out + "/sheet.png"))
            #expect(try FileManager.default.attributesOfItem(atPath: splats.path)[.modificationDate] as? Date == splatsDate)
            #expect(try String(contentsOfFile: out + "/stages.json", encoding: .utf8).contains("report"))
            // The resumed sitting's time is added to the first's.
            let resumedProfile = try Self.profile(out)
            for stage in ["setup", "distil", "export", "report"] { #expect(resumedProfile[stage]!.seconds > profile[stage]!.seconds, "\(stage)") }
            #expect(resumedProfile["distil"]!.parts["render forward"] == profile["distil"]!.parts["render forward"], "the finished distillation took steps")
        }
    }
}
