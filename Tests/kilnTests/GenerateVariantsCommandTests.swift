import Foundation
import Testing

/// The longer `kiln generate` runs, in a suite of their own so that they run beside the others:
/// 4D runs (frames, the motion-pair reward) and a Stable-Diffusion-layout prior with every method
/// and objective.
@Suite("kiln generate: 4D runs and latent priors", .serialized)
struct GenerateVariantsCommandTests {
    static let tiny = SampleCommandTests.tiny

    @Test("4D: --frames (or a motion in the prompt) gives per-frame splats, meshes and turntables and a frame-by-view sheet")
    func frames() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("moving").path
            let run = try GenerateCommandTests.generate(out, ["--frames", "3"])
            #expect(run.status == 0, "\(run.stderr)")
            for name in ["splats_000.ply", "splats_002.ply", "asset_001.glb", "animated.glb", "sheet.png", "turntable_002/view_011.png"] {
                #expect(FileManager.default.fileExists(atPath: out + "/frames/" + name), "missing frames/\(name)")
            }
            #expect(FileManager.default.fileExists(atPath: out + "/splats.ply") && FileManager.default.fileExists(atPath: out + "/asset.glb"))
            let config = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
            #expect(config.contains("\"dynamic\" : true") && config.contains("\"frames\" : 3"))
            // kiln eval judges the frames over time: per-frame alignment, stability, motion.
            let evaluated = folder.appendingPathComponent("moving-eval").path
            let eval = try KilnRun("eval", out, "--size", "32", "--views", "4", "--out", evaluated)
            #expect(eval.status == 0, "\(eval.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: evaluated + "/report.json"))) as! [String: Any]
            let temporal = report["temporal"] as? [String: Any]
            #expect(temporal?["frames"] as? Int == 3 && (temporal?["perFrameAlignment"] as? [Double])?.count == 3, "\(report)")
            #expect(try String(contentsOfFile: evaluated + "/report.md", encoding: .utf8).contains("Over time (3 frames)"))
            // A caption with a motion is 4D on its own.
            let bouncing = folder.appendingPathComponent("bouncing").path
            let config2 = URL(fileURLWithPath: bouncing + "-config.json")
            try Data(#"{"views": {"views_per_step": 1, "render_size": 32}, "gaussians": {"initial_gaussians": 100}, "motion": {"frames": 5}}"#.utf8).write(to: config2)
            let moving = try KilnRun("generate", "a red snowman bouncing", "--prior", Self.tiny, "--steps", "2", "--preview-every", "0",
                                     "--config", config2.path, "--out", bouncing)
            #expect(moving.status == 0 && FileManager.default.fileExists(atPath: bouncing + "/frames/splats_004.ply"), "\(moving.stderr)")
            // Five frames 0.25 apart: the motion-pair model judges the 4 pairs 0.25 apart at each of 4 fixed views.
            let judgedFolder = folder.appendingPathComponent("bouncing-eval").path
            let judged = try KilnRun("eval", bouncing, "--size", "32", "--views", "4", "--out", judgedFolder)
            #expect(judged.status == 0, "\(judged.stderr)")
            let judgedReport = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: judgedFolder + "/report.json"))) as! [String: Any]
            let verdict = (judgedReport["temporal"] as? [String: Any])?["judged"] as? [String: Any]
            #expect(verdict?["pairs"] as? Int == 16 && (verdict?["probabilities"] as? [String: Double])?.count == 6, "\(judgedReport)")
            #expect(try String(contentsOfFile: judgedFolder + "/report.md", encoding: .utf8).contains("motion-pair model agrees with the caption"))
            let nerf = try KilnRun("generate", "a red snowman", "--prior", Self.tiny, "--frames", "4", "--representation", "nerf",
                                   "--out", folder.appendingPathComponent("x").path)
            #expect(nerf.status != 0 && nerf.stderr.contains("4D runs"), "\(nerf.stderr)")
        }
    }

    @Test("kiln train-motion-reward writes the two-frame model; a 4D run with motion.pair_reward uses it, or says it is off")
    func motionPairReward() throws {
        try withScratchFolder { folder in
            let rewards = folder.appendingPathComponent("rewards").path
            let trained = try KilnRun("train-motion-reward", "--out", rewards, "--steps", "2", "--batch-size", "4", "--size", "16", "--holdout", "12")
            #expect(trained.status == 0, "\(trained.stderr)")
            #expect(FileManager.default.fileExists(atPath: rewards + "/motion_pair.safetensors"))
            #expect(try String(contentsOfFile: rewards + "/motion_pair.json", encoding: .utf8).contains("\"perClass\""))
            let bad = try KilnRun("train-motion-reward", "--out", folder.appendingPathComponent("x").path, "--size", "12")
            #expect(bad.status != 0 && bad.stderr.contains("--size"), "\(bad.stderr)")
            let config = folder.appendingPathComponent("pair.json")
            try Data(#"{"views": {"views_per_step": 1, "render_size": 32}, "gaussians": {"initial_gaussians": 100}, "motion": {"frames": 2, "pair_reward": 1, "static_fraction": 0.25}}"#.utf8).write(to: config)
            func run(_ name: String, rewardsFolder: String) throws -> KilnRun {
                try KilnRun("generate", "a red snowman bouncing", "--prior", Self.tiny, "--steps", "4", "--preview-every", "0", "--rewards", rewardsFolder,
                            "--config", config.path, "--out", folder.appendingPathComponent(name).path)
            }
            let with = try run("with", rewardsFolder: rewards)
            #expect(with.status == 0 && !with.stderr.contains("motion-pair reward is off"), "\(with.stderr)")
            let empty = folder.appendingPathComponent("empty").path
            try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
            let without = try run("without", rewardsFolder: empty)
            #expect(without.status == 0 && without.stderr.contains("motion-pair reward is off"), "\(without.stderr)")
        }
    }

    @Test("a Stable-Diffusion-layout folder (VAE): every method writes a run folder, rendered at the VAE's image size")
    func latentPrior() throws {
        let sd15 = URL(fileURLWithPath: Self.tiny).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("sd/sd15-tiny").path
        try withScratchFolder { folder in
            let config = folder.appendingPathComponent("config.json")
            try Data(#"{"views": {"views_per_step": 2}, "gaussians": {"initial_gaussians": 300}}"#.utf8).write(to: config)
            for method in ["sds", "rw-sds", "reward-feedback", "dpo"] {
                let out = folder.appendingPathComponent(method).path
                let run = try KilnRun("generate", "a red snowman", "--prior", sd15, "--method", method, "--steps", "2", "--preview-every", "0",
                                      "--config", config.path, "--out", out)
                #expect(run.status == 0, "\(method): \(run.stderr)")
                #expect(FileManager.default.fileExists(atPath: out + "/splats.ply") && FileManager.default.fileExists(atPath: out + "/asset.glb"))
                let settings = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
                #expect(settings.contains("\"render_size\" : 64"), "\(method): renders follow the VAE's 64² images")
            }
            // The objectives are orthogonal to the methods: CSD and ISM with reward feedback, NFSD with SDS, VSD with DPO.
            for (objective, method) in [("csd", "reward-feedback"), ("nfsd", "sds"), ("ism", "reward-feedback"), ("vsd", "dpo")] {
                let out = folder.appendingPathComponent(objective).path
                let run = try KilnRun("generate", "a red snowman", "--prior", sd15, "--method", method, "--objective", objective, "--steps", "2",
                                      "--preview-every", "0", "--config", config.path, "--out", out)
                #expect(run.status == 0, "\(objective): \(run.stderr)")
                #expect(try String(contentsOfFile: out + "/config.json", encoding: .utf8).contains("\"objective\" : \"\(objective)\""))
                let resumed = try KilnRun("generate", "a red snowman", "--prior", sd15, "--objective", "sds", "--out", out, "--resume")
                #expect(resumed.status != 0 && resumed.stderr.contains("--objective"), "\(resumed.stderr)")
            }
        }
    }
}
