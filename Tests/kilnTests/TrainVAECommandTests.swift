import Foundation
import Testing

@Suite("kiln train-vae", .serialized)
struct TrainVAECommandTests {
    static let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KilnPriorTests/Fixtures/vae_tiny.json").path

    @Test("trains a VAE folder diffusers' layout names, with its card and held-out scores; a resumed run is bit-identical; bad input is refused by name")
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
            #expect(try Data(contentsOf: URL(fileURLWithPath: split + "/checkpoint/weights.safetensors")) == Data(contentsOf: URL(fileURLWithPath: vae + "/checkpoint/weights.safetensors")))

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
