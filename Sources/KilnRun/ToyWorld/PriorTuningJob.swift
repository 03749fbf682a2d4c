import Foundation
import KilnAsset
import KilnCore
import KilnNN
import KilnPrior
import KilnToyWorld

/// How `kiln tune-prior` improves the prior.
public enum TuningMethod: String, SettingChoice, Codable {
    /// DDPO with PPO clipping (Black et al. 2023).
    case ddpo
    /// DDPO's clipped objective with group-normalised advantages plus a KL penalty to the frozen
    /// starting prior (k3 estimator), as Flow-GRPO and AR3D-R1 apply GRPO to diffusion.
    case grpo
    /// DRaFT-K (Clark et al. 2024; ReFL when K = 1): the reward's gradient back-propagated through
    /// the last K deterministic sampling steps.
    case draft
    /// Diffusion-DPO (Wallace et al. 2024): each condition's best and worst samples as a
    /// preference pair, the DPO loss against the frozen starting prior.
    case dpo

    /// The KL coefficient β a method uses unless told otherwise.
    public var defaultKLCoefficient: Float { self == .grpo ? 0.04 : 0 }
    /// Whether the method samples a group of trajectories per condition.
    public var usesGroups: Bool { self != .draft }
}

/// `kiln tune-prior`: reinforcement learning on the prior itself. Each epoch draws toy-world
/// conditions (a caption and a camera), samples trajectories from the prior, scores their images
/// with the reward models and updates the UNet with the method's `PriorTuner` (`DDPOTrainer` for
/// ddpo and grpo, `DiffusionDPOTrainer` for dpo, `DRaFTTrainer` for draft). A held-out judge (the
/// same reward models trained on other data, never optimised against) scores a fixed evaluation
/// set before and after, beside the training rewards, so reward hacking shows.
///
/// The output folder is a prior folder in the input's layout (the tuned UNet in the input's
/// element types), plus `tuning.json` (per epoch: the method's report, each reward term's mean,
/// the time per stage), `reward.png` (the total and each term by epoch),
/// `checkpoint/` for `--resume`, and a model card (README.md) with the before/after table and the
/// command that made it.
public struct PriorTuningJob {
    public var prior: URL
    public var rewards: URL
    public var judge: URL?
    public var output: URL
    public var method = TuningMethod.ddpo
    /// The reward mix, `name:weight,…` over `TuningRewardRegistry`'s rewards.
    public var reward = "view:1,alignment:1"
    public var epochs = 20
    /// Conditions per epoch; each is sampled `settings.samplesPerCondition` times.
    public var conditionsPerEpoch = 4
    /// The share of conditions whose caption names a motion, in training and evaluation (nil:
    /// the toy world's own, `ToySample.Options().motionProbability`). Motion rewards learn only
    /// from moving captions.
    public var movingShare: Float?
    public var settings = TuningSettings()
    /// DRaFT's K: the last sampling steps the reward's gradient flows through.
    public var draftSteps = 1
    /// The weight of the prior's own denoising loss on fresh toy-world renders, added to every
    /// update (`DenoisingRegularizer`); 0: rewards only.
    public var denoisingWeight: Float = 0
    /// Renders per update of the denoising regulariser.
    public var denoisingBatch = 16
    public var seed: UInt64 = 0
    /// Conditions in the fixed evaluation set (drawn from another toy-world seed than training's).
    public var evaluationCount = 16
    /// DDIM steps of the evaluation samples: `kiln sample`'s and `kiln score-prior`'s default,
    /// not the tuning chain's, so a prior that only learned its training chain shows it.
    public var evaluationSteps = 30
    public var checkpointEvery = 5
    public var resume = false
    public var force = false
    /// The command line, for the card.
    public var command = "kiln tune-prior"

    public init(prior: URL, rewards: URL, output: URL) { (self.prior, self.rewards, self.output) = (prior, rewards, output) }

    struct EpochRow: Codable {
        var epoch: Int
        var report: TuningEpochReport
        var seconds: Double
        /// Each reward term's mean over the epoch's samples (unweighted; absent in logs of older runs).
        var terms: [String: Float]? = nil
    }

    /// Mean rewards of a fixed evaluation set, per term and in total, for one set of reward models.
    struct Evaluation: Codable, Equatable {
        var total: Float
        var terms: [String: Float]
    }

    /// The toy-world conditions of epoch `epoch` (or of the evaluation set, `evaluation`).
    func conditions(epoch: Int, count: Int, evaluation: Bool = false) -> [(prompt: String, view: ViewConditioning)] {
        let worldSeed = evaluation ? seed &+ 1_000_003 : seed
        var options = ToySample.Options()
        if let movingShare { options.motionProbability = movingShare }
        return (0..<count).map { i in
            let sample = ToySample(seed: worldSeed, index: epoch * count + i, options: options)
            return (sample.caption, sample.view)
        }
    }

    /// The method's tuner on `pipeline`'s UNet.
    func makeTuner(_ pipeline: PriorPipeline) throws -> any PriorTuner {
        switch method {
        case .ddpo, .grpo:
            return try DDPOTrainer(pipeline: pipeline, settings: settings, seed: seed)
        case .dpo:
            return try DiffusionDPOTrainer(pipeline: pipeline, settings: settings, seed: seed)
        case .draft:
            return try DRaFTTrainer(pipeline: pipeline, steps: settings.steps, maxSteps: settings.maxSteps, truncation: draftSteps, guidanceScale: settings.guidanceScale,
                                    learningRate: settings.learningRate, weightDecay: settings.weightDecay, maxGradNorm: settings.maxGradNorm, emaDecay: settings.emaDecay,
                                    loraRank: settings.loraRank, loraAlpha: settings.loraAlpha, seed: seed)
        }
    }

    /// The denoising regulariser the settings ask for: toy-world renders at the prior's image size
    /// (another world seed than the tuning and evaluation conditions), quantised to 8 bits as the
    /// prior's training data was.
    func makeRegularizer(imageSize size: Int) -> DenoisingRegularizer? {
        guard denoisingWeight > 0 else { return nil }
        let worldSeed = seed &+ 2_000_003
        return DenoisingRegularizer(weight: denoisingWeight, batchSize: denoisingBatch) { count, rng in
            let start = Int(rng.next() % 1_000_000_000)
            let shard = ToyDataset.renderShard(seed: worldSeed, indices: start..<(start + count), size: size)
            let conditions = (start..<(start + count)).map { ToySample(seed: worldSeed, index: $0) }.map { ($0.caption, $0.view) }
            return (Tensor(shape: [count, 3, size, size], storage: shard.images.map { $0 / 255 }), conditions)
        }
    }

    /// Samples drawn per condition in an epoch.
    var samplesPerCondition: Int { method.usesGroups ? settings.samplesPerCondition : 1 }

    /// Samples the evaluation set (fixed noise, η = 0 DDIM as `kiln sample` draws; a condition's
    /// linked samples share their seed) and scores it with `mix`.
    func evaluate(_ pipeline: PriorPipeline, mix: SampleRewardMix) throws -> Evaluation {
        let reward = mix.tuningReward
        var linked: [TuningCondition] = [], images: [Float] = []
        for (i, c) in conditions(epoch: 0, count: evaluationCount, evaluation: true).enumerated() {
            for l in reward.linked(c) {
                let request = SampleRequest(prompt: l.prompt, count: 1, steps: evaluationSteps, guidanceScale: settings.guidanceScale, seed: seed &+ UInt64(i), view: l.view)
                images += PriorPipeline.displayValues(pipeline.pixels(try pipeline.sample(request))).storage
                linked.append(l)
            }
        }
        let size = pipeline.imageSize
        let e = try mix.evaluate(linked, images: Tensor(shape: [linked.count, 3, size.height, size.width], storage: images), gradient: false)
        func mean(_ v: [Float]) -> Float { v.reduce(0, +) / Float(max(1, v.count)) }
        return Evaluation(total: mean(e.total), terms: e.parts.mapValues(mean))
    }

    /// Fails early (before any folder is written) when `mix` cannot score the prior's images.
    func check(_ mix: SampleRewardMix, _ pipeline: PriorPipeline) throws {
        let probe = mix.tuningReward.linked(conditions(epoch: 0, count: 1)[0])
        let size = pipeline.imageSize
        _ = try mix.evaluate(probe, images: Tensor(repeating: 0.5, shape: [probe.count, 3, size.height, size.width]), gradient: false)
    }

    public func run() throws {
        let pipeline = try PriorPipeline(folder: prior)
        let mix = try TuningRewardRegistry.mix(reward, folder: rewards)
        let judgeMix = try judge.map { try TuningRewardRegistry.mix(reward, folder: $0) }
        for m in [mix] + (judgeMix.map { [$0] } ?? []) { try check(m, pipeline) }
        let trainer = try makeTuner(pipeline)
        trainer.regularizer = makeRegularizer(imageSize: pipeline.imageSize.height)
        let termMeans = RewardTermMeans()
        let tuningReward = mix.tuningReward(recording: termMeans)
        let checkpoint = output.appendingPathComponent("checkpoint")
        let log = output.appendingPathComponent("tuning.json")
        var rows: [EpochRow] = []
        var before: [String: Evaluation] = [:]
        if resume {
            try trainer.restore(from: checkpoint)
            if let data = FileManager.default.contents(atPath: log.path), let saved = try? JSONDecoder().decode(TuningLog.self, from: data) {
                rows = saved.epochs.filter { $0.epoch <= trainer.epochs }
                before = saved.before
            }
            say("resuming at epoch \(trainer.epochs)")
        } else {
            try OutputFolder.prepare(output, force: force)
            try copyPrior(to: output)
            say("scoring the untuned prior on \(evaluationCount) held-out conditions")
            before["training rewards"] = try evaluate(pipeline, mix: mix)
            if let judgeMix { before["held-out judge"] = try evaluate(pipeline, mix: judgeMix) }
        }
        let interrupt = Interrupt.install()
        let clock = ContinuousClock()
        let trained = trainer.trainable.reduce(0) { $0 + $1.parameter.count }
        say("tuning \(trained) \(settings.loraRank.map { "LoRA (rank \($0)) parameters of the UNet's \(pipeline.unet.parameterCount)" } ?? "UNet parameters") with \(method.rawValue): \(conditionsPerEpoch) conditions × \(samplesPerCondition) samples an epoch, reward \(mix.description)")
        func save() throws {
            try trainer.saveCheckpoint(to: checkpoint)
            try trainer.withAveragedWeights { try writeWeights(pipeline, to: output) }
            try AtomicFile.write(try JSONEncoder.pretty.encode(TuningLog(before: before, epochs: rows)), to: log)
            if !rows.isEmpty {
                try PNG.write(rewardPlot(rows), to: output.appendingPathComponent("reward.png"),
                              metadata: KilnMetadata(command: "tune-prior", seed: seed, settings: ["epoch": "\(trainer.epochs)"]))
            }
        }
        while trainer.epochs < epochs {
            if interrupt.requested {
                try save()
                throw RunInterrupted("tune-prior stopped at epoch \(trainer.epochs); kiln tune-prior ... --resume continues")
            }
            let start = clock.now
            let report = try trainer.epoch(conditions: conditions(epoch: trainer.epochs, count: conditionsPerEpoch), reward: tuningReward)
            guard report.loss.isFinite else { throw RunError("the loss became \(report.loss) at epoch \(trainer.epochs); lower the learning rate or resume from the last checkpoint") }
            rows.append(EpochRow(epoch: trainer.epochs, report: report, seconds: (clock.now - start).seconds, terms: termMeans.last))
            let terms = mix.terms.count > 1 ? "  [" + termMeans.last.sorted { $0.key < $1.key }.map { String(format: "%@ %.3f", $0.key, $0.value) }.joined(separator: ", ") + "]" : ""
            say(String(format: "  epoch %d/%d  reward %.3f ± %.3f%@  loss %.3g%@  (%.1f s)", trainer.epochs, epochs, report.meanReward,
                       report.rewardStd, terms, report.loss, Self.details(report), (clock.now - start).seconds))
            if trainer.epochs % checkpointEvery == 0 || trainer.epochs == epochs { try save() }
        }
        var after: [String: Evaluation] = [:]
        try trainer.withAveragedWeights {
            after["training rewards"] = try evaluate(pipeline, mix: mix)
            if let judgeMix { after["held-out judge"] = try evaluate(pipeline, mix: judgeMix) }
        }
        try save()
        try AtomicFile.write(Data(card(before: before, after: after, rows: rows, links: tuningReward.links).utf8), to: output.appendingPathComponent("README.md"))
        for (name, b) in before.sorted(by: { $0.key < $1.key }) {
            say(String(format: "%@: %.3f → %.3f", name, b.total, after[name]?.total ?? .nan))
        }
        say(timeSummary(rows, links: tuningReward.links))
        say("wrote the tuned prior to \(output.relativePath)")
    }

    /// The method-specific numbers of an epoch, for the log line.
    static func details(_ report: TuningEpochReport) -> String {
        var parts: [String] = []
        if let v = report.approxKL { parts.append(String(format: "KL %.2e", v)) }
        if let v = report.clipFraction { parts.append(String(format: "clipped %.2f", v)) }
        if let v = report.klToReference { parts.append(String(format: "KL to the start %.2e", v)) }
        if let v = report.preferenceAccuracy { parts.append(String(format: "pairs ranked right %.2f", v)) }
        if let v = report.denoisingLoss { parts.append(String(format: "denoising loss %.4f", v)) }
        return parts.map { "  " + $0 }.joined()
    }

    /// How the method was run, for the card.
    var methodSummary: String {
        let moving = movingShare.map { String(format: " (%.0f%% of them moving)", 100 * $0) } ?? ""
        let sampling = (settings.maxSteps.map { "\(settings.steps)–\($0) DDIM steps (drawn per epoch)" } ?? "\(settings.steps) DDIM steps") + ", guidance \(settings.guidanceScale), reward \(reward), AdamW at \(settings.learningRate)"
        let training = (settings.loraRank.map { "; LoRA of rank \($0) (α = \(settings.loraAlpha ?? Float($0))) on the attention projections, merged into the written UNet" } ?? "; every UNet weight trained")
            + (settings.emaDecay.map { ", the weights' moving average (decay up to \($0)) kept" } ?? "")
            + (denoisingWeight > 0 ? "; the prior's denoising loss on \(denoisingBatch) fresh toy-world renders added to every update with weight \(denoisingWeight)" : "")
        switch method {
        case .ddpo, .grpo:
            return "\(conditionsPerEpoch) toy-world conditions\(moving) × \(settings.samplesPerCondition) samples an epoch, \(sampling) (η = \(settings.eta)), PPO clip \(settings.clipRange)"
                + (settings.klCoefficient > 0 ? ", KL penalty β = \(settings.klCoefficient) to the starting prior" : "") + training
        case .dpo:
            return "\(conditionsPerEpoch) toy-world conditions\(moving) × \(settings.samplesPerCondition) samples an epoch, \(sampling) (η = \(settings.eta)), each condition's best and worst as a preference pair, DPO β = \(settings.dpoBeta) against the starting prior, \(settings.dpoNoiseDraws) noise draws per pair" + training
        case .draft:
            return "\(conditionsPerEpoch) toy-world conditions\(moving) an epoch, \(sampling) (η = 0), the reward's gradient through the last \(draftSteps) step\(draftSteps == 1 ? "" : "s")" + training
        }
    }

    struct TuningLog: Codable {
        var before: [String: Evaluation]
        var epochs: [EpochRow]
    }

    /// Copies the input prior's files (its tokenizer, text encoder, scheduler, settings) so the
    /// output loads like it; the UNet is written by `writeWeights`.
    func copyPrior(to folder: URL) throws {
        let fm = FileManager.default
        for name in ["model_index.json", PriorSettings.fileName, "tokenizer", "text_encoder", "scheduler", "vae"] {
            let source = prior.appendingPathComponent(name)
            guard fm.fileExists(atPath: source.path) else { continue }
            try fm.copyItem(at: source, to: folder.appendingPathComponent(name))
        }
        try fm.createDirectory(at: folder.appendingPathComponent("unet"), withIntermediateDirectories: true)
        try fm.copyItem(at: prior.appendingPathComponent("unet/config.json"), to: folder.appendingPathComponent("unet/config.json"))
    }

    /// The tuned UNet's weights, each in the element type the input prior stores it in (a float16
    /// prior stays float16; the checkpoint keeps float32 for training, where small updates would
    /// round away), float32 where the input's type is not a writable float.
    func writeWeights(_ pipeline: PriorPipeline, to folder: URL) throws {
        let input = try? SafeTensorsFile(contentsOf: prior.appendingPathComponent("unet/diffusion_pytorch_model.safetensors"))
        var weights = SafeTensorsWriter(metadata: ["format": "pt"])
        for (name, value) in pipeline.unet.namedValuesWithAdaptersMerged {
            var dtype = SafeTensorsDType.f32
            if let stored = (try? input?.info(name))?.dtype, stored == .f16 || stored == .bf16 { dtype = stored }
            try weights.add(name, shape: value.shape, values: value.storage, dtype: dtype)
        }
        try weights.write(to: folder.appendingPathComponent("unet/diffusion_pytorch_model.safetensors"))
    }

    /// The mean training reward by epoch, and beside it each term's mean when the reward mixes
    /// several (from the epochs that logged them).
    func rewardPlot(_ rows: [EpochRow]) -> Image {
        var series = [(name: "total", points: rows.map { (x: Double($0.epoch), y: Double($0.report.meanReward)) })]
        let names = Set(rows.flatMap { $0.terms?.keys.map { $0 } ?? [] }).sorted()
        if names.count > 1 {
            for name in names {
                series.append((name: name, points: rows.compactMap { row in row.terms?[name].map { (x: Double(row.epoch), y: Double($0)) } }))
            }
        } else {
            series[0].name = ""
        }
        return Image.linePlot(series: series, logY: false, title: names.count > 1 ? "mean training reward by epoch, total and per term" : "mean training reward by epoch")
    }

    /// Throughput and where the tuning time went, summed over `rows` (Markdown); an epoch draws
    /// `links` linked samples per trajectory the method asks for.
    func timeSummary(_ rows: [EpochRow], links: Int) -> String {
        var times = StageTimes()
        for row in rows { if let t = row.report.times { times.add(t) } }
        let seconds = rows.map(\.seconds).reduce(0, +), samples = rows.count * conditionsPerEpoch * samplesPerCondition * links
        return String(format: "%d samples in %.0f s of tuning: %.2f samples/s (%.1f s an epoch)\n\n", samples, seconds, Double(samples) / max(seconds, 1e-9),
                      seconds / Double(max(1, rows.count))) + times.table(of: seconds)
    }

    /// The model card: what was tuned, how, and the before/after table.
    func card(before: [String: Evaluation], after: [String: Evaluation], rows: [EpochRow], links: Int) -> String {
        var table = "| rewards | before | after |\n| --- | --- | --- |\n"
        for (name, b) in before.sorted(by: { $0.key < $1.key }) {
            table += String(format: "| %@ (total) | %.3f | %.3f |\n", name, b.total, after[name]?.total ?? .nan)
            for (term, value) in b.terms.sorted(by: { $0.key < $1.key }) {
                table += String(format: "| %@: %@ | %.3f | %.3f |\n", name, term, value, after[name]?.terms[term] ?? .nan)
            }
        }
        let seconds = rows.map(\.seconds).reduce(0, +)
        return """
        # Kiln prior, tuned with \(method.rawValue)

        `\(prior.lastPathComponent)` fine-tuned on its own samples against the reward models: \(rows.count) epochs of \(methodSummary); \(String(format: "%.0f", seconds)) s of tuning.

        ```sh
        \(command)
        ```

        ## Before and after
        Mean rewards of \(evaluationCount) held-out conditions (another toy-world seed than training's), sampled with fixed noise and \(evaluationSteps) DDIM steps. The held-out judge is the same kind of reward models trained on other data; it was never optimised against.

        \(table)
        ## Training reward by epoch
        ![reward](reward.png)

        ## Time
        \(timeSummary(rows, links: links))
        """
    }
}

extension JSONEncoder {
    /// Sorted keys, indented: files people read.
    static var pretty: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}
