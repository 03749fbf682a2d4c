import Foundation
import KilnAsset
import KilnCore
import KilnPrior
import KilnToyWorld

/// `kiln train-prior`: the built-in prior trained on a toy-world data set (`kiln dataset`), with
/// checkpoints, the exported pipeline folder, its loss curve, model card and sample grids.
public struct PriorTrainingJob {
    public var data: URL
    public var config: URL
    public var output: URL
    public var resume = false
    public var force = false
    /// Prompts of the checkpoint sample grids.
    public var samplePrompts = ["a red snowman", "a blue house with a yellow roof", "a yellow duck", "a green car"]

    public init(data: URL, config: URL, output: URL) { (self.data, self.config, self.output) = (data, config, output) }

    /// Trains (or continues) to the configured steps, saving everything at each checkpoint.
    public func run() throws {
        // Before anything is written: a signal from here on saves what there is and exits 130.
        let interrupt = Interrupt.install()
        let folder = output
        let settings = try PriorTrainingConfig(contentsOf: config)
        let dataset = try ToyTrainingData(folder: data)
        let trainer = try PriorTrainer(config: settings, data: dataset)
        let checkpoint = folder.appendingPathComponent("checkpoint")
        let log = folder.appendingPathComponent("loss.csv")
        // The loss curve (step, mean loss over the logging window), written as loss.csv.
        var curve: [(x: Double, y: Double)] = []
        if resume {
            try trainer.loadCheckpoint(from: checkpoint)
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            curve = text.split(separator: "\n").compactMap { line -> (x: Double, y: Double)? in
                let parts = line.split(separator: ",")
                guard parts.count == 2, let x = Double(parts[0]), let y = Double(parts[1]), x <= Double(trainer.step) else { return nil }
                return (x, y)
            }
            say("resuming at step \(trainer.step)")
        } else {
            try OutputFolder.prepare(folder, force: force)
            try FileIO.writeAtomically(try Data(contentsOf: config), to: folder.appendingPathComponent("train_config.json"))
        }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("samples"), withIntermediateDirectories: true)
        if let vae = trainer.vae {
            // The latents, encoded once (or read back from an earlier sitting of this run).
            let clock = ContinuousClock(), start = clock.now, cache = folder.appendingPathComponent("checkpoint/latents.safetensors")
            try FileManager.default.createDirectory(at: cache.deletingLastPathComponent(), withIntermediateDirectories: true)
            var announced = false
            let encoded = try trainer.prepareLatents(cache: cache) { done in
                if interrupt.requested {
                    throw RunInterrupted(resume ? "train-prior stopped while encoding the latents; kiln train-prior ... --resume encodes them again"
                                                : "train-prior stopped while encoding the latents, before training; run the command again with --force to start over")
                }
                if !announced {
                    announced = true
                    say("encoding \(dataset.count) images to latents of \(trainer.sampleSize)² × \(vae.config.latentChannels) with \(settings.vaeFolder!.lastPathComponent)")
                }
                if done % 2000 == 0 || done == dataset.count { say(String(format: "  %d/%d  (%.0f s)", done, dataset.count, (clock.now - start).seconds)) }
            }
            if !encoded { say("read the latents of the \(dataset.count) images from \(cache.lastPathComponent) (same images, same VAE)") }
        }
        let t = settings.training
        var window: [Float] = []
        say("training \(trainer.unet.parameterCount + trainer.textEncoder.parameterCount) parameters on \(dataset.count) samples, batch \(t.batchSize)")
        let clock = ContinuousClock(), start = clock.now
        /// The checkpoint, the exported pipeline, the loss log and plot, the card and a sample grid.
        func saveAll() throws {
            try trainer.saveCheckpoint(to: checkpoint)
            try trainer.exportPipeline(to: folder)
            let csv = "step,loss\n" + curve.map { "\(Int($0.x)),\(Float($0.y))\n" }.joined()
            try FileIO.writeAtomically(Data(csv.utf8), to: log)
            let metadata = KilnMetadata(command: "train-prior", seed: t.seed, settings: ["step": "\(trainer.step)"])
            try PNG.write(Image.linePlot(curve, title: "training loss (log scale) by step"), to: folder.appendingPathComponent("loss.png"), metadata: metadata)
            try FileIO.writeAtomically(Data(modelCard(trainer: trainer, dataset: dataset, settings: settings, curve: curve).utf8),
                                       to: folder.appendingPathComponent("README.md"))
            let images = try trainer.sampleImages(prompts: samplePrompts, seed: 0)
            let tiles = images.map { $0.resized(width: max(96, $0.width), height: max(96, $0.height)) }
            let labels = [0, 180].flatMap { az in samplePrompts.map { "\($0) @\(az)" } }
            let sheet = Image.contactSheet(tiles, columns: samplePrompts.count, labels: labels)
            try PNG.write(sheet, to: folder.appendingPathComponent(String(format: "samples/step_%07d.png", trainer.step)), metadata: metadata)
        }
        if trainer.step >= t.steps {
            // A finished run resumed: export it again (a changed scheduler config or card format takes effect).
            try saveAll()
            say("the run had finished at step \(trainer.step); exported it again")
        }
        while trainer.step < t.steps {
            if interrupt.requested {
                try saveAll()
                throw RunInterrupted("train-prior stopped at step \(trainer.step); kiln train-prior ... --resume continues")
            }
            let loss = try trainer.trainStep()
            guard loss.isFinite else { throw RunError("the loss became \(loss) at step \(trainer.step); lower training.learning_rate or resume from the last checkpoint") }
            window.append(loss)
            if trainer.step % t.logEvery == 0 || trainer.step == t.steps {
                let mean = window.reduce(0, +) / Float(window.count)
                window = []
                curve.append((Double(trainer.step), Double(mean)))
                say(String(format: "  step %d/%d  loss %.4f  (%.0f s)", trainer.step, t.steps, mean, (clock.now - start).seconds))
            }
            if trainer.step % t.checkpointEvery == 0 || trainer.step == t.steps {
                try saveAll()
                say("  checkpoint at step \(trainer.step)")
            }
        }
        say("wrote the prior to \(output.relativePath)")
    }

    /// The prior folder's model card: how it was made and where it stands.
    func modelCard(trainer: PriorTrainer, dataset: ToyTrainingData, settings: PriorTrainingConfig, curve: [(x: Double, y: Double)]) -> String {
        let t = settings.training, m = dataset.manifest
        let last = curve.last.map { String(format: "%.4f at step %.0f", $0.y, $0.x) } ?? "not logged yet"
        return """
        # Kiln prior

        A text- and view-conditioned \(trainer.vae == nil ? "pixel-space" : "latent") diffusion prior in the diffusers folder layout (`unet/`, `text_encoder/`, `tokenizer/`, `scheduler/`, \(trainer.vae == nil ? "" : "`vae/`, ")`kiln_prior.json`), trained from scratch by Kiln. `kiln sample "a red snowman" --prior THIS_FOLDER --out grid.png` draws from it.

        ## How it was made
        ```sh
        kiln dataset --count \(m.count) --seed \(m.seed) --size \(m.size) --shard-size \(m.shardSize) --motion-probability \(m.options.motionProbability) --out DATA
        kiln train-prior --data DATA --config train_config.json --out THIS_FOLDER
        ```
        `train_config.json` (copied here) holds the architecture and the optimisation settings.\(settings.vaeFolder.map { " The UNet denoises the latents of the VAE `\($0.lastPathComponent)` (made by `kiln train-vae`; its card says how), copied here as `vae/`: \(m.size)² images become \(trainer.sampleSize)² latents." } ?? "")\(settings.initFolder.map { " The run fine-tunes the weights of `\($0.lastPathComponent)` (its `init`), whose own card says how they were made." } ?? "")

        | | |
        | --- | --- |
        | UNet | \(trainer.unet.parameterCount) parameters, \(trainer.vae == nil ? "\(m.size)² RGB" : "\(trainer.sampleSize)² latents of \(m.size)² RGB"), view conditioning through the projection class embedding |
        | text encoder | \(trainer.textEncoder.parameterCount) parameters (CLIP layout, trained together with the UNet) |
        | data | \(m.count) toy-world renders, seed \(m.seed); captions from a closed vocabulary of \(m.vocabulary.count) words |
        | steps | \(trainer.step) of \(t.steps), batch \(t.batchSize) |
        | optimiser | AdamW, learning rate \(t.learningRate) with \(t.warmupSteps) warm-up steps, weight decay \(t.weightDecay), gradient norm ≤ \(t.maxGradNorm) |
        | weights | EMA of the trained weights (decay \(t.emaDecay)); captions dropped with probability \(t.captionDropout) for classifier-free guidance\(t.viewPrompts ? "; each caption worded by its view's side (view prompts)" : "") |
        | loss | ε-prediction MSE\(t.snrGamma.map { String(format: " with Min-SNR-γ weights (γ = %g)", $0) } ?? ""), \(last) |

        ## Loss and samples
        ![training loss](loss.png)

        ![samples](samples/\(String(format: "step_%07d.png", trainer.step)))

        Sample grids: the prompts at azimuth 0 (top row) and 180 (bottom row), \(t.sampleSteps) DDIM steps, guidance \(t.sampleGuidance).

        """
    }
}
