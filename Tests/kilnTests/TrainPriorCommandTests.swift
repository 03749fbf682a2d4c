import Foundation
import Testing

@Suite("kiln train-prior", .serialized)
struct TrainPriorCommandTests {
    static let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KilnPriorTests/Fixtures/train_tiny.json").path

    @Test("trains, checkpoints, resumes, and leaves a prior kiln sample can use")
    func trainAndResume() throws {
        try withScratchFolder { folder in
            let data = folder.appendingPathComponent("data").path, prior = folder.appendingPathComponent("prior").path
            #expect(try KilnRun("dataset", "--count", "24", "--size", "16", "--out", data).status == 0)
            let run = try KilnRun("train-prior", "--data", data, "--config", Self.config, "--out", prior)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("checkpoint at step 20") && run.stdout.contains("step 40/40"), "\(run.stdout)")
            for file in ["unet/config.json", "unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "tokenizer/vocab.json",
                         "scheduler/scheduler_config.json", "kiln_prior.json", "model_index.json", "loss.csv", "train_config.json",
                         "checkpoint/state.json", "samples/step_0000040.png", "README.md", "loss.png"] {
                #expect(FileManager.default.fileExists(atPath: prior + "/" + file), "missing \(file)")
            }
            let losses = try String(contentsOfFile: prior + "/loss.csv", encoding: .utf8).split(separator: "\n").dropFirst()
                .compactMap { Double($0.split(separator: ",")[1]) }
            #expect(losses.count == 4 && losses.last! < losses.first!, "\(losses)")
            let sample = try KilnRun("sample", "a red duck", "--prior", prior, "--steps", "2", "--count", "1", "--out", folder.appendingPathComponent("s.png").path)
            #expect(sample.status == 0, "\(sample.stderr)")
            // Resuming a finished run trains no more and exports it again (the same weights); a new run
            // into the same folder needs --force.
            let weights = try Data(contentsOf: URL(fileURLWithPath: prior + "/unet/diffusion_pytorch_model.safetensors"))
            let resumed = try KilnRun("train-prior", "--data", data, "--config", Self.config, "--out", prior, "--resume")
            #expect(resumed.status == 0 && resumed.stdout.contains("resuming at step 40") && resumed.stdout.contains("exported it again"), "\(resumed.stdout) \(resumed.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: prior + "/unet/diffusion_pytorch_model.safetensors")) == weights)
            let again = try KilnRun("train-prior", "--data", data, "--config", Self.config, "--out", prior)
            #expect(again.status != 0 && again.stderr.contains("not empty"))
            // SIGTERM saves the checkpoint and the pipeline, and exits 130 saying how to resume.
            let long = folder.appendingPathComponent("long.json")
            var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.config))) as! [String: Any]
            var training = object["training"] as! [String: Any]
            (training["steps"], training["checkpoint_every"]) = (1_000_000, 1_000_000)
            (object["training"], object["tokenizer"]) = (training, URL(fileURLWithPath: Self.config).deletingLastPathComponent().appendingPathComponent("tokenizer").path)
            try JSONSerialization.data(withJSONObject: object).write(to: long)
            let stopped = folder.appendingPathComponent("stopped").path
            let terminated = try TimedKilnRun(["train-prior", "--data", data, "--config", long.path, "--out", stopped], signal: SIGTERM,
                                              when: { FileManager.default.fileExists(atPath: stopped + "/train_config.json") })
            #expect(terminated.status == 130 && !terminated.timedOut && terminated.stdout.contains("--resume"), "\(terminated.status): \(terminated.stdout) \(terminated.stderr)")
            #expect(FileManager.default.fileExists(atPath: stopped + "/checkpoint/state.json") && FileManager.default.fileExists(atPath: stopped + "/unet/config.json"))
            let missing = try KilnRun("train-prior", "--data", folder.path, "--config", Self.config, "--out", folder.appendingPathComponent("p2").path)
            #expect(missing.status != 0 && missing.stderr.contains("dataset.json"), "\(missing.stderr)")
        }
    }
}
