import Foundation
import Testing

@Suite("kiln tune-prior", .serialized)
struct TunePriorCommandTests {
    static let arguments = ["--conditions", "1", "--samples-per-condition", "2", "--steps", "3", "--evaluation-steps", "3", "--checkpoint-every", "1", "--seed", "4"]

    @Test("tunes the shipped prior with DDPO into a loadable prior folder with a card (the shipped judge beside the training rewards); a resumed run is bit-identical")
    func tuneAndResume() throws {
        try withScratchFolder { folder in
            let straight = folder.appendingPathComponent("straight").path, resumed = folder.appendingPathComponent("resumed").path
            let run = try KilnRun(["tune-prior", "--out", straight, "--epochs", "2"] + Self.arguments)
            #expect(run.status == 0, "\(run.stderr)")
            for file in ["unet/config.json", "unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "tokenizer/vocab.json",
                         "kiln_prior.json", "model_index.json", "README.md", "reward.png", "tuning.json", "checkpoint/state.json"] {
                #expect(FileManager.default.fileExists(atPath: straight + "/" + file), "missing \(file)")
            }
            let card = try String(contentsOfFile: straight + "/README.md", encoding: .utf8)
            #expect(card.contains("| training rewards (total) |") && card.contains("kiln tune-prior --out"), "\(card)")
            #expect(card.contains("| held-out judge (total) |"), "the shipped judge scores by default: \(card)")
            // Where the time went: throughput and each stage's share.
            #expect(card.contains("samples/s") && card.contains("| sampling (UNet forward) |") && card.contains("| UNet backward |") && card.contains("| rewards |"), "\(card)")
            // Each epoch logs every reward term's mean beside the total.
            let log = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: straight + "/tuning.json"))) as? [String: Any]
            let terms = ((log?["epochs"] as? [[String: Any]])?.last?["terms"] as? [String: Double]) ?? [:]
            #expect(Set(terms.keys) == ["view", "alignment"] && terms.values.allSatisfy(\.isFinite), "\(terms)")
            // The weights keep the input prior's element types (the shipped prior stores float16).
            let unet = "unet/diffusion_pytorch_model.safetensors"
            let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../assets/prior/" + unet)
            let types = try Self.elementTypes(URL(fileURLWithPath: straight + "/" + unet)), shippedTypes = try Self.elementTypes(shipped)
            #expect(!types.isEmpty && types == shippedTypes, "\(Set(types.values))")
            #expect(try KilnRun("sample", "a red duck", "--prior", straight, "--steps", "2", "--count", "1",
                                "--out", folder.appendingPathComponent("s.png").path).status == 0)
            // One epoch, then --resume to two: the same weights as the straight run.
            #expect(try KilnRun(["tune-prior", "--out", resumed, "--epochs", "1"] + Self.arguments).status == 0)
            let more = try KilnRun(["tune-prior", "--out", resumed, "--epochs", "2", "--resume"] + Self.arguments)
            #expect(more.status == 0 && more.stdout.contains("resuming at epoch 1"), "\(more.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: straight + "/unet/diffusion_pytorch_model.safetensors"))
                    == Data(contentsOf: URL(fileURLWithPath: resumed + "/unet/diffusion_pytorch_model.safetensors")))
        }
    }

    /// Each tensor's dtype in a safetensors file's header.
    static func elementTypes(_ url: URL) throws -> [String: String] {
        let data = try Data(contentsOf: url)
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any] ?? [:]
        return header.compactMapValues { ($0 as? [String: Any])?["dtype"] as? String }
    }

    @Test("the other methods run from the CLI: grpo reports its KL to the start, draft back-propagates through the last steps, dpo pairs samples")
    func methods() throws {
        try withScratchFolder { folder in
            // Options that do not interact share a run: six runs, each with everything it must say.
            for (method, extra, needles) in [("grpo", ["--lora-rank", "4", "--lora-alpha", "8"], ["KL to the start", "LoRA of rank 4 (α = 8.0)"]),
                                             ("draft", ["--draft-steps", "2", "--reward", "view:1,alignment:0.5"], ["through the last 2 steps", "[alignment "]),
                                             ("draft", ["--draft-steps", "4", "--max-steps", "4"], ["3–4 DDIM steps (drawn per epoch)"]),
                                             ("dpo", ["--denoising-weight", "2", "--denoising-batch", "3", "--dpo-beta", "1000"],
                                              ["denoising loss on 3 fresh toy-world renders added to every update with weight 2.0", "DPO β = 1000"]),
                                             ("ddpo", ["--reward", "view:1,motion:0.5"], ["| training rewards: motion |"]),
                                             ("draft", ["--reward", "motion-change:1,view:1", "--moving-share", "1"], ["(100% of them moving)"])] {
                let out = folder.appendingPathComponent(method + "-" + extra.joined()).path
                let run = try KilnRun(["tune-prior", "--out", out, "--epochs", "1", "--method", method] + extra + Self.arguments)
                #expect(run.status == 0, "\(method): \(run.stderr)")
                let said = run.stdout + (try String(contentsOfFile: out + "/README.md", encoding: .utf8))
                for needle in needles { #expect(said.contains(needle), "\(method) \(extra): no '\(needle)' in \(said)") }
            }
        }
    }

    @Test("bad flags and a missing reward model are refused by name, leaving no folder")
    func errors() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("t").path
            for (extra, needle) in [(["--method", "ppo"], "ppo"), (["--epochs", "0"], "--epochs"), (["--reward", "colour:1"], "colour"),
                                    (["--samples-per-condition", "1"], "--samples-per-condition"), (["--learning-rate", "nan"], "--learning-rate"),
                                    (["--resume", "--force"], "contradict"), (["--method", "draft", "--steps", "3", "--draft-steps", "4"], "--draft-steps"),
                                    (["--steps", "4", "--max-steps", "3"], "--max-steps must be 4…1000"), (["--evaluation-steps", "0"], "--evaluation-steps"), (["--denoising-weight", "-1"], "--denoising-weight"),
                                    (["--moving-share", "1.5"], "--moving-share"),
                                    (["--method", "draft", "--kl-coefficient", "0.1"], "grpo"),
                                    (["--method", "dpo", "--dpo-beta", "-1"], "--dpo-beta"), (["--lora-rank", "0"], "--lora-rank"),
                                    (["--lora-alpha", "2"], "--lora-rank"), (["--lora-rank", "100000"], "--lora-rank must be 1…"),
                                    (["--judge", "x", "--no-judge"], "contradict")] {
                let run = try KilnRun(["tune-prior", "--out", out] + extra)
                #expect(run.status != 0 && run.status < 128 && (run.stderr + run.stdout).contains(needle), "\(extra): \(run.stderr)")
            }
            #expect(!FileManager.default.fileExists(atPath: out))
            let resume = try KilnRun("tune-prior", "--out", out, "--resume")
            #expect(resume.status != 0 && resume.stderr.contains("state.json"), "\(resume.stderr)")
        }
    }
}
