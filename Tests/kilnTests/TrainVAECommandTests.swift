import Foundation
import Testing

@Suite("kiln train-vae", .serialized)
struct TrainVAECommandTests {
    static let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KilnPriorTests/Fixtures/vae_tiny.json").path

    @Test("trains a VAE folder in diffusers' layout, with its card and held-out scores; a resumed run is bit-identical; a latent prior trains on its latents and samples; bad input is refused by name")
    func trainAndResume() throws {
        try withScratchFolder { folder in
            let data = folder.appendingPathComponent("data").path, vae = folder.appendingPathComponent("vae").path
            #expect(try KilnRun("dataset", "--count", "16", "--size", "16", "--out", data).status == 0)
            let run = try KilnRun("train-vae", "--data", data, "--config", Self.config, "--out", vae, "--holdout", "6")
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("checkpoint at step 20: held-out PSNR") && run.stdout.contains("step 20/20"), "\(run.stdout)")
            for file in ["config.json", "diffusion_pytorch_model.safetensors", "loss.csv", "loss.png", "reconstructions.png", "measured.json", "README.md",
                         "train_config.json", "checkpoint/state.json"] {
                #expect(FileManager.default.fileExists(atPath: vae + "/" + file), "missing \(file)")
            }
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: vae + "/config.json"))) as? [String: Any] ?? [:]
            let measured = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: vae + "/measured.json"))) as? [String: Any] ?? [:]
            let scaling = try #require(config["scaling_factor"] as? Double), std = try #require(measured["latentStd"] as? Double)
            #expect(config["_class_name"] as? String == "AutoencoderKL" && abs(scaling * std - 1) < 1e-4, "\(config) \(measured)")
            // Spelled out for diffusers, whose defaults for absent keys (one block, 32 groups) are not the config's meaning.
            #expect((config["down_block_types"] as? [String]) == ["DownEncoderBlock2D", "DownEncoderBlock2D"] && config["norm_num_groups"] as? Int == 4
                    && config["layers_per_block"] as? Int == 1 && config["latent_channels"] as? Int == 4, "\(config)")
            let card = try String(contentsOfFile: vae + "/README.md", encoding: .utf8)
            #expect(card.contains("Held-out reconstruction") && card.contains("kiln train-vae --data DATA"), "\(card)")

            // Ten steps, then --resume to twenty: the same weights as twenty in one go.
            let half = folder.appendingPathComponent("half.json")
            let text = try String(contentsOfFile: Self.config, encoding: .utf8).replacingOccurrences(of: "\"steps\": 20", with: "\"steps\": 10")
            try Data(text.utf8).write(to: half)
            let split = folder.appendingPathComponent("split").path
            #expect(try KilnRun("train-vae", "--data", data, "--config", half.path, "--out", split, "--holdout", "6").status == 0)
            let resumed = try KilnRun("train-vae", "--data", data, "--config", Self.config, "--out", split, "--resume", "--holdout", "6")
            #expect(resumed.status == 0 && resumed.stdout.contains("resuming at step 10"), "\(resumed.stdout) \(resumed.stderr)")
            for file in ["checkpoint/weights.safetensors", "checkpoint/ema.safetensors", "diffusion_pytorch_model.safetensors"] {
                #expect(try Data(contentsOf: URL(fileURLWithPath: split + "/" + file)) == Data(contentsOf: URL(fileURLWithPath: vae + "/" + file)), "\(file) differs after a resume")
            }

            // A latent prior trained on the VAE's latents: a Stable-Diffusion-layout folder (vae/ in
            // it) that kiln sample draws full-size images from.
            let fixtures = URL(fileURLWithPath: Self.config).deletingLastPathComponent()
            var prior = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("train_tiny.json"))) as! [String: Any]
            var unet = prior["unet"] as! [String: Any]
            (unet["sample_size"], unet["in_channels"], unet["out_channels"]) = (8, 4, 4)
            var training = prior["training"] as! [String: Any]
            training["steps"] = 20
            (prior["unet"], prior["training"], prior["tokenizer"], prior["vae"]) = (unet, training, fixtures.appendingPathComponent("tokenizer").path, vae)
            let priorConfig = folder.appendingPathComponent("latent.json")
            try JSONSerialization.data(withJSONObject: prior).write(to: priorConfig)
            let latentPrior = folder.appendingPathComponent("latent-prior").path
            let trained = try KilnRun("train-prior", "--data", data, "--config", priorConfig.path, "--out", latentPrior)
            #expect(trained.status == 0 && trained.stdout.contains("encoding 16 images to latents of 8² × 4"), "\(trained.stdout) \(trained.stderr)")
            for file in ["vae/config.json", "vae/diffusion_pytorch_model.safetensors", "unet/config.json", "model_index.json", "checkpoint/latents.safetensors"] {
                #expect(FileManager.default.fileExists(atPath: latentPrior + "/" + file), "missing \(file)")
            }
            let index = try String(contentsOfFile: latentPrior + "/model_index.json", encoding: .utf8)
            #expect(index.contains("AutoencoderKL"), "\(index)")
            let grid = folder.appendingPathComponent("latent.png").path
            let sampled = try KilnRun("sample", "a red duck", "--prior", latentPrior, "--steps", "2", "--count", "1", "--out", grid)
            #expect(sampled.status == 0, "\(sampled.stderr)")
            // kiln score-prior judges its 16² samples averaged down to reward models of 8².
            let smallData = folder.appendingPathComponent("data8").path, smallRewards = folder.appendingPathComponent("rewards8").path
            #expect(try KilnRun("dataset", "--count", "30", "--size", "8", "--out", smallData).status == 0)
            #expect(try KilnRun("train-rewards", "--data", smallData, "--out", smallRewards, "--steps", "2", "--batch-size", "4", "--holdout", "10").status == 0)
            let scored = try KilnRun("score-prior", "--prior", latentPrior, "--rewards", smallRewards, "--count", "2", "--steps", "2",
                                     "--out", folder.appendingPathComponent("scores.json").path)
            #expect(scored.status == 0 && scored.stdout.contains("azimuth"), "\(scored.stdout) \(scored.stderr)")

            // A run distils from it as from any prior (its latents, through the VAE's encoder).
            let generateConfig = folder.appendingPathComponent("generate.json")
            try Data(#"{"views": {"views_per_step": 2, "render_size": 32}, "gaussians": {"initial_gaussians": 300}}"#.utf8).write(to: generateConfig)
            let generated = try KilnRun("generate", "a red duck", "--prior", latentPrior, "--steps", "3", "--preview-every", "0", "--config", generateConfig.path,
                                        "--out", folder.appendingPathComponent("run").path)
            #expect(generated.status == 0, "\(generated.stderr)")
            let continued = try KilnRun("train-prior", "--data", data, "--config", priorConfig.path, "--out", latentPrior, "--resume")
            #expect(continued.status == 0 && continued.stdout.contains("exported it again") && continued.stdout.contains("read the latents of the 16 images"),
                    "\(continued.stdout) \(continued.stderr)")
            // Other images of the same count and size are encoded again, not read from the cache.
            let otherData = folder.appendingPathComponent("other").path
            #expect(try KilnRun("dataset", "--count", "16", "--size", "16", "--seed", "9", "--out", otherData).status == 0)
            let other = try KilnRun("train-prior", "--data", otherData, "--config", priorConfig.path, "--out", latentPrior, "--resume")
            #expect(other.status == 0 && other.stdout.contains("encoding 16 images") && !other.stdout.contains("read the latents"), "\(other.stdout) \(other.stderr)")

            // SIGTERM saves a checkpoint and the VAE folder, and exits 130 saying how to resume.
            let long = folder.appendingPathComponent("long.json")
            try Data(try String(contentsOfFile: Self.config, encoding: .utf8).replacingOccurrences(of: "\"steps\": 20", with: "\"steps\": 1000000")
                .replacingOccurrences(of: "\"checkpoint_every\": 10", with: "\"checkpoint_every\": 1000000").utf8).write(to: long)
            let stopped = folder.appendingPathComponent("stopped").path
            let terminated = try TimedKilnRun(["train-vae", "--data", data, "--config", long.path, "--out", stopped, "--holdout", "4"], signal: SIGTERM,
                                              when: { FileManager.default.fileExists(atPath: stopped + "/train_config.json") })
            #expect(terminated.status == 130 && !terminated.timedOut && terminated.stdout.contains("--resume"), "\(terminated.status): \(terminated.stdout) \(terminated.stderr)")
            for file in ["checkpoint/state.json", "config.json", "diffusion_pytorch_model.safetensors", "README.md"] {
                #expect(FileManager.default.fileExists(atPath: stopped + "/" + file), "missing \(file) after SIGTERM")
            }

            let again = try KilnRun("train-vae", "--data", data, "--config", Self.config, "--out", vae)
            #expect(again.status != 0 && again.status < 128 && again.stderr.contains("not empty"), "\(again.stderr)")
            let bad = folder.appendingPathComponent("bad.json")
            try Data(#"{"vae": {"block_out_channels": [8, 16], "norm_num_groups": 4}, "training": {"crop_size": 7}}"#.utf8).write(to: bad)
            let refused = try KilnRun("train-vae", "--data", data, "--config", bad.path, "--out", folder.appendingPathComponent("v2").path)
            #expect(refused.status != 0 && refused.status < 128 && refused.stderr.contains("training.crop_size"), "\(refused.stderr)")
            let missing = try KilnRun("train-vae", "--data", folder.path, "--config", Self.config, "--out", folder.appendingPathComponent("v3").path)
            #expect(missing.status != 0 && missing.status < 128 && missing.stderr.contains("dataset.json"), "\(missing.stderr)")
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("v2").path) && !FileManager.default.fileExists(atPath: folder.appendingPathComponent("v3").path))
        }
    }
}
