import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

@Suite("Prior training", .serialized)
struct PriorTrainerTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// A finished 48-sample data set at 16² in a temporary folder.
    static func dataset() throws -> (URL, ToyTrainingData) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-train-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let manifest = ToyDatasetManifest(seed: 3, count: 48, size: 16, shardSize: 32, options: .init())
        for (s, stem) in manifest.shards.enumerated() {
            let shard = ToyDataset.renderShard(seed: 3, indices: (s * 32)..<min(48, (s + 1) * 32), size: 16)
            try ToyDataset.encode(shard, size: 16).write(to: folder.appendingPathComponent(stem + ".safetensors"))
            try ToyDataset.jsonLines(shard.records).write(to: folder.appendingPathComponent(stem + ".jsonl"))
        }
        try JSONEncoder().encode(manifest).write(to: folder.appendingPathComponent("dataset.json"))
        return (folder, try ToyTrainingData(folder: folder))
    }

    @Test("a tiny run's loss falls; resuming from a checkpoint continues exactly")
    func lossFallsAndResumes() throws {
        let (folder, data) = try Self.dataset()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(data.count == 48 && data.images.count == 48 * 3 * 16 * 16 && data.captions[0] == ToySample(seed: 3, index: 0).caption)
        var config = try PriorTrainingConfig(contentsOf: Self.fixtures.appendingPathComponent("train_tiny.json"))
        config.training.batchSize = 4  // debug builds train slowly; this keeps the test near 20 s
        let trainer = try PriorTrainer(config: config, data: data)
        let losses = try (0..<16).map { _ in try trainer.trainStep() }
        let first = losses.prefix(4).reduce(0, +) / 4, last = losses.suffix(4).reduce(0, +) / 4
        #expect(last < 0.7 * first, "loss \(first) → \(last)")
        let checkpoint = folder.appendingPathComponent("checkpoint")
        try trainer.saveCheckpoint(to: checkpoint)
        let continued = try (0..<2).map { _ in try trainer.trainStep() }
        let resumed = try PriorTrainer(config: config, data: data)
        try resumed.loadCheckpoint(from: checkpoint)
        #expect(resumed.step == 16)
        #expect(try (0..<2).map { _ in try resumed.trainStep() } == continued)
        // The export loads as a pipeline and samples.
        let prior = folder.appendingPathComponent("prior")
        try resumed.exportPipeline(to: prior)
        let pipeline = try PriorPipeline(folder: prior)
        #expect(pipeline.hasViewConditioning && pipeline.settings.vocabulary == ToySample.vocabulary)
        #expect(try pipeline.sample(SampleRequest(prompt: "a red duck", steps: 2, guidanceScale: 2)).isFinite)
        // A fine-tune starts from the exported (EMA) weights, as the pipeline loads them.
        var fineTune = config
        fineTune.initFolder = prior
        let tuned = try PriorTrainer(config: fineTune, data: data)
        #expect(tuned.step == 0)
        for (name, p) in pipeline.unet.namedParameters { #expect(tuned.unet.parameter(named: name)?.value.storage == p.value.storage, "\(name)") }
        for (name, p) in pipeline.textEncoder.namedParameters { #expect(tuned.textEncoder.parameter(named: name)?.value.storage == p.value.storage, "\(name)") }
        // A folder that is not a pipeline of this shape is refused.
        fineTune.initFolder = folder
        #expect(throws: (any Error).self) { try PriorTrainer(config: fineTune, data: data) }
    }

    @Test("training configs Kiln cannot use are refused, naming the key")
    func configErrors() throws {
        let base = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("train_tiny.json"))) as! [String: Any]
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-train-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func parse(_ edit: (inout [String: Any]) -> Void) throws -> PriorTrainingConfig {
            var object = base
            object["tokenizer"] = Self.fixtures.appendingPathComponent("tokenizer").path
            edit(&object)
            let url = folder.appendingPathComponent("c.json")
            try JSONSerialization.data(withJSONObject: object).write(to: url)
            return try PriorTrainingConfig(contentsOf: url)
        }
        #expect(try parse { _ in }.training.batchSize == 8)
        #expect(try parse { _ in }.training.snrGamma == nil)
        #expect(try parse { _ in }.initFolder == nil)
        #expect(try parse { $0["init"] = "prior" }.initFolder == folder.appendingPathComponent("prior").standardizedFileURL)
        #expect(try parse { var t = $0["training"] as! [String: Any]; t["snr_gamma"] = 5; $0["training"] = t }.training.snrGamma == 5)
        let refused: [(String, (inout [String: Any]) -> Void)] = [
            ("training.momentum", { var t = $0["training"] as! [String: Any]; t["momentum"] = 0.9; $0["training"] = t }),
            ("training.learning_rate", { var t = $0["training"] as! [String: Any]; t["learning_rate"] = 5; $0["training"] = t }),
            ("training.batch_size", { var t = $0["training"] as! [String: Any]; t["batch_size"] = 0; $0["training"] = t }),
            ("training.snr_gamma", { var t = $0["training"] as! [String: Any]; t["snr_gamma"] = -1; $0["training"] = t }),
            ("vae", { $0["vae"] = [String: Any]() }),
            ("init", { $0["init"] = 3 }),
            ("unet", { $0["unet"] = nil }),
            ("unet.cross_attention_dim", { var t = $0["text_encoder"] as! [String: Any]; t["hidden_size"] = 64; t["num_attention_heads"] = 4; $0["text_encoder"] = t }),
        ]
        for (key, edit) in refused {
            do {
                _ = try parse(edit)
                Issue.record("\(key) should be refused")
            } catch let error as PriorConfigError {
                #expect(error.key == key, "\(key): \(error)")
            }
        }
    }

    @Test("Min-SNR-γ weights: 1 where SNR ≤ γ, γ / SNR above, 1 everywhere without γ")
    func minSNRWeights() throws {
        // ᾱ = 0.5 → SNR 1; ᾱ = 0.9 → SNR 9; ᾱ = 0.99 → SNR 99.
        #expect(PriorTrainer.lossWeight(alphaCumprod: 0.5, snrGamma: 5) == 1)
        #expect(abs(PriorTrainer.lossWeight(alphaCumprod: 0.9, snrGamma: 5) - Float(5.0 / 9.0)) < 1e-6)
        #expect(abs(PriorTrainer.lossWeight(alphaCumprod: 0.99, snrGamma: 5) - Float(5.0 / 99.0)) < 1e-5)
        #expect(PriorTrainer.lossWeight(alphaCumprod: 0.99, snrGamma: nil) == 1)
    }
}
