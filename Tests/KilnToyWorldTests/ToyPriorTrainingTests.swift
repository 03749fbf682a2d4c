import Foundation
import KilnCore
import KilnNN
@testable import KilnPrior
import Testing
@testable import KilnToyWorld

@Suite("Prior training on a toy data set", .serialized)
struct ToyPriorTrainingTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../KilnPriorTests/Fixtures")
        .standardizedFileURL

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

    @Test("v-prediction at zero terminal SNR trains against v = √ᾱ·ε − √(1−ᾱ)·x₀: the loss falls and the export samples")
    func vPrediction() throws {
        let (folder, data) = try Self.dataset()
        defer { try? FileManager.default.removeItem(at: folder) }
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("train_tiny.json"))) as! [String: Any]
        object["tokenizer"] = Self.fixtures.appendingPathComponent("tokenizer").path
        var scheduler = object["scheduler"] as! [String: Any]
        (scheduler["prediction_type"], scheduler["rescale_betas_zero_snr"]) = ("v_prediction", true)
        object["scheduler"] = scheduler
        let url = folder.appendingPathComponent("v.json")
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        var config = try PriorTrainingConfig(contentsOf: url)
        config.training.batchSize = 4
        #expect(config.scheduler.predictionType == .vPrediction && config.scheduler.rescaleBetasZeroSNR)
        let trainer = try PriorTrainer(config: config, data: data)
        let losses = try (0..<16).map { _ in try trainer.trainStep() }
        let first = losses.prefix(4).reduce(0, +) / 4, last = losses.suffix(4).reduce(0, +) / 4
        #expect(losses.allSatisfy(\.isFinite) && last < 0.8 * first, "loss \(first) → \(last)")
        let prior = folder.appendingPathComponent("prior")
        try trainer.exportPipeline(to: prior)
        let pipeline = try PriorPipeline(folder: prior)
        #expect(pipeline.schedulerConfig.predictionType == .vPrediction)
        #expect(try pipeline.sample(SampleRequest(prompt: "a red duck", steps: 2, guidanceScale: 2)).isFinite)
    }
}

@Suite("View prompts: captions that name their side", .serialized)
struct ViewPromptTrainingTests {
    @Test("view vectors invert to their angles and time")
    func vectorInverse() {
        var rng = RNG(seed: 11)
        for _ in 0..<50 {
            let view = ViewConditioning(azimuthDegrees: rng.uniform(-179.9...180), elevationDegrees: rng.uniform(-80...80),
                                        time: rng.nextFloat() < 0.5 ? nil : rng.uniform(0.01...1))
            let back = ViewConditioning(vector: view.vector[...])
            #expect(abs(back.azimuthDegrees - view.azimuthDegrees) < 1e-3 && abs(back.elevationDegrees - view.elevationDegrees) < 1e-3)
            #expect(back.time.map { abs($0 - view.time!) < 1e-6 } ?? (view.time == nil))
        }
    }

    @Test("kiln_prior.json's view_prompts: parsed, written, a bad value named; an empty prompt stays empty")
    func settings() throws {
        let parsed = try PriorSettings(json: Data(#"{"conditioning": "view-v1", "view_prompts": true}"#.utf8), source: "kiln_prior.json")
        #expect(parsed.viewPrompts == true)
        #expect(String(decoding: try JSONEncoder().encode(parsed), as: UTF8.self).contains("\"view_prompts\":true"))
        #expect(try PriorSettings(json: Data(#"{"conditioning": "view-v1"}"#.utf8), source: "k").viewPrompts == nil)
        #expect { try PriorSettings(json: Data(#"{"view_prompts": "yes"}"#.utf8), source: "k") } throws: { "\($0)".contains("view_prompts") }
    }

    @Test("training with view_prompts words each caption by its view's side; the export says so and its prompts are worded the same way everywhere")
    func trainedWithViewPrompts() throws {
        let (folder, data) = try ToyPriorTrainingTests.dataset()
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = try PriorTrainingConfig(contentsOf: ToyPriorTrainingTests.fixtures.appendingPathComponent("train_tiny.json"))
        config.training.batchSize = 4
        config.training.viewPrompts = true
        let trainer = try PriorTrainer(config: config, data: data)
        for i in 0..<data.count {
            let record = data.records[i], side = ViewDirection(ViewConditioning(azimuthDegrees: record.azimuthDegrees, elevationDegrees: record.elevationDegrees))
            let worded = trainer.caption(data.captions[i], view: data.views[(i * 8)..<((i + 1) * 8)])
            #expect(worded == data.captions[i] + ", \(side.rawValue) view", "\(worded)")
        }
        var plainConfig = config
        plainConfig.training.viewPrompts = false
        #expect(try PriorTrainer(config: plainConfig, data: data).caption("a red duck", view: ViewConditioning(azimuthDegrees: 180).vector[...]) == "a red duck")
        #expect(try trainer.trainStep().isFinite)
        let prior = folder.appendingPathComponent("prior")
        try trainer.exportPipeline(to: prior)
        let pipeline = try PriorPipeline(folder: prior)
        #expect(pipeline.usesViewPrompts)
        let back = ViewConditioning(azimuthDegrees: 180), front = ViewConditioning(azimuthDegrees: 0)
        #expect(pipeline.prompt("a red duck", view: back) == "a red duck, back view" && pipeline.prompt("", view: back) == "")
        // Sampling with the worded prior equals sampling the same weights, unworded, on the worded prompt.
        let plain = PriorPipeline(tokenizer: pipeline.tokenizer, textEncoder: pipeline.textEncoder, unet: pipeline.unet, vae: nil,
                                  schedulerConfig: pipeline.schedulerConfig, settings: PriorSettings(conditioning: PriorSettings.viewConditioning))
        let request = SampleRequest(prompt: "a red duck", steps: 2, guidanceScale: 2, view: back)
        var wordedRequest = request
        wordedRequest.prompt = "a red duck, back view"
        #expect(try pipeline.sample(request) == plain.sample(wordedRequest))
        #expect(try pipeline.sample(request) != plain.sample(request))
        // The distillation prior hears each view's side too.
        let denoiser = try GuidedDenoiser(pipeline: pipeline, prompt: "a red duck", negativePrompt: "", viewPrompts: false)
        #expect(denoiser.directional.count == ViewDirection.allCases.count)
        for side in ViewDirection.allCases {
            let view = ViewConditioning(azimuthDegrees: side == .back ? 180 : side == .side ? 90 : 0, elevationDegrees: side == .overhead ? 70 : 15)
            // Encoded in one batch of six there and alone here: BLAS may block the two differently,
            // so the states agree to rounding, not bit for bit.
            let expected = pipeline.encode([side.prompt("a red duck")]), actual = denoiser.conditional(for: view)
            #expect(actual.shape == expected.shape && zip(actual.storage, expected.storage).allSatisfy { abs($0 - $1) <= 1e-5 }, "\(side)")
            #expect(zip(actual.storage, pipeline.encode(["a red duck"]).storage).contains { abs($0 - $1) > 1e-3 }, "\(side)")
        }
        let blank = pipeline.encode([""])
        #expect(zip(denoiser.unconditional.storage, blank.storage).allSatisfy { abs($0 - $1) <= 1e-5 })
        // Tuning's policy words its prompts by view and leaves the negative prompt as it is.
        let policy = try PolicySampler(pipeline: pipeline, steps: 2, guidanceScale: 2, negativePrompt: "a blue mug")
        let context = policy.conditioning(prompts: ["a red duck", "a red duck"], views: [front, back]).context
        #expect(context == pipeline.encode(["a blue mug", "a blue mug", "a red duck, front view", "a red duck, back view"]))
        #expect(trainer.caption("", view: back.vector[...]) == "")
    }
}
