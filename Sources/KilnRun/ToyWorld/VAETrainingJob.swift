import Foundation
import KilnAsset
import KilnCore
import KilnNN
import KilnPrior
import KilnToyWorld

/// `kiln train-vae`: an `AutoencoderKL` trained on a toy-world data set (`kiln dataset`), for a
/// latent prior. The output folder is a diffusers `vae/` folder (`config.json` with the measured
/// `scaling_factor`, `diffusion_pytorch_model.safetensors`), plus `checkpoint/` for `--resume`,
/// `loss.csv` and `loss.png`, `reconstructions.png` (held-out images over their
/// reconstructions) and a model card (README.md) with the held-out PSNR and SSIM.
///
/// The held-out images are rendered from another toy-world seed than the data set's, at its size
/// and settings: the VAE never trains on them.
public struct VAETrainingJob {
    public var data: URL
    public var config: URL
    public var output: URL
    public var resume = false
    public var force = false
    /// Held-out images scored at each checkpoint.
    public var holdoutCount = 64

    public init(data: URL, config: URL, output: URL) { (self.data, self.config, self.output) = (data, config, output) }

    /// What a checkpoint measured on the held-out images.
    public struct Measurement: Codable, Sendable {
        public var step: Int
        public var psnr: Double
        public var ssim: Double
        public var latentMean: Double
        public var latentStd: Double
        public var scalingFactor: Double
    }

    /// The held-out images `[n, 3, S, S]` in [−1, 1] (8-bit, as the data set stores them).
    static func holdout(_ dataset: ToyTrainingData, count: Int) -> Tensor {
        let m = dataset.manifest
        let shard = ToyDataset.renderShard(seed: m.seed &+ 7_000_003, indices: 0..<count, size: m.size, options: m.options)
        return Tensor(shape: [count, 3, m.size, m.size], storage: shard.images.map { $0 / 127.5 - 1 })
    }

    /// Reconstructs the held-out images with the EMA weights (in batches of 8) and measures them.
    static func measure(_ trainer: VAETrainer, holdout: Tensor) -> (Measurement, reconstructions: Tensor) {
        trainer.withAveragedWeights {
            let n = holdout.shape[0], plane = holdout.count / n
            var out: [Float] = [], psnr = 0.0, ssim = 0.0
            for start in stride(from: 0, to: n, by: 8) {
                let end = min(n, start + 8)
                let x = Tensor(shape: [end - start] + holdout.shape.dropFirst(), storage: Array(holdout.storage[(start * plane)..<(end * plane)]))
                out += trainer.reconstruct(x).storage
            }
            let reconstructions = Tensor(shape: holdout.shape, storage: out)
            for (a, b) in zip(PriorPipeline.images(reconstructions), PriorPipeline.images(holdout)) {
                psnr += min(99, ImageMetrics.psnr(a, b))
                ssim += ImageMetrics.ssim(a, b)
            }
            let stats = trainer.latentStatistics(Tensor(shape: [min(n, 16)] + holdout.shape.dropFirst(), storage: Array(holdout.storage.prefix(min(n, 16) * plane))), seed: 0)
            let measurement = Measurement(step: trainer.step, psnr: psnr / Double(n), ssim: ssim / Double(n), latentMean: stats.mean, latentStd: stats.std,
                                          scalingFactor: 1 / max(stats.std, 1e-6))
            return (measurement, reconstructions)
        }
    }

    /// Trains (or continues) to the configured steps, saving and measuring at each checkpoint.
    public func run() throws {
        // Before anything is written: a signal from here on saves what there is and exits 130.
        let interrupt = Interrupt.install()
        let settings = try VAETrainingConfig(contentsOf: config)
        let dataset = try ToyTrainingData(folder: data)
        let trainer = try VAETrainer(config: settings, data: dataset)
        let checkpoint = output.appendingPathComponent("checkpoint")
        let log = output.appendingPathComponent("loss.csv")
        var curve: [(step: Int, total: Double, l1: Double, ssim: Double, kl: Double)] = []
        if resume {
            try trainer.loadCheckpoint(from: checkpoint)
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            curve = text.split(separator: "\n").dropFirst().compactMap { line in
                let v = line.split(separator: ",").compactMap { Double($0) }
                guard v.count == 5, Int(v[0]) <= trainer.step else { return nil }
                return (Int(v[0]), v[1], v[2], v[3], v[4])
            }
            say("resuming at step \(trainer.step)")
        } else {
            try OutputFolder.prepare(output, force: force)
            try FileIO.writeAtomically(try Data(contentsOf: config), to: output.appendingPathComponent("train_config.json"))
        }
        let holdout = Self.holdout(dataset, count: holdoutCount)
        let t = settings.training
        say("training a VAE of \(trainer.vae.parameterCount) parameters (f = \(settings.vae.downsamplingFactor), \(settings.vae.latentChannels) latent channels) on \(dataset.count) images of \(dataset.size)², crops of \(trainer.cropSize)², batch \(t.batchSize)")
        let clock = ContinuousClock(), start = clock.now, startStep = trainer.step
        var window: [VAETrainer.Losses] = []
        func saveAll() throws {
            try trainer.saveCheckpoint(to: checkpoint)
            let (m, reconstructions) = Self.measure(trainer, holdout: holdout)
            try trainer.export(to: output, scalingFactor: Float(m.scalingFactor))
            let csv = "step,loss,l1,ssim,kl\n" + curve.map { "\($0.step),\(Float($0.total)),\(Float($0.l1)),\(Float($0.ssim)),\(Float($0.kl))\n" }.joined()
            try FileIO.writeAtomically(Data(csv.utf8), to: log)
            let metadata = KilnMetadata(command: "train-vae", seed: t.seed, settings: ["step": "\(trainer.step)"])
            if !curve.isEmpty {
                try PNG.write(Image.linePlot(curve.map { (x: Double($0.step), y: $0.total) }, title: "training loss (log scale) by step"),
                              to: output.appendingPathComponent("loss.png"), metadata: metadata)
            }
            let shown = min(8, holdout.shape[0])
            let tiles = Array(PriorPipeline.images(holdout).prefix(shown)) + Array(PriorPipeline.images(reconstructions).prefix(shown))
            try PNG.write(Image.contactSheet(tiles.map { $0.resized(width: max(96, $0.width), height: max(96, $0.height)) }, columns: shown),
                          to: output.appendingPathComponent("reconstructions.png"), metadata: metadata)
            try FileIO.writeAtomically(try JSONEncoder.pretty.encode(m), to: output.appendingPathComponent("measured.json"))
            try FileIO.writeAtomically(Data(card(trainer: trainer, dataset: dataset, settings: settings, measured: m).utf8), to: output.appendingPathComponent("README.md"))
            say(String(format: "  checkpoint at step %d: held-out PSNR %.2f dB, SSIM %.4f, latent std %.3f (scaling factor %.4f)", trainer.step, m.psnr, m.ssim, m.latentStd, m.scalingFactor))
        }
        if trainer.step >= t.steps { try saveAll() }
        while trainer.step < t.steps {
            if interrupt.requested {
                try saveAll()
                throw RunInterrupted("train-vae stopped at step \(trainer.step); kiln train-vae ... --resume continues")
            }
            let losses = trainer.trainStep()
            guard losses.total.isFinite else { throw RunError("the loss became \(losses.total) at step \(trainer.step); lower training.learning_rate or resume from the last checkpoint") }
            window.append(losses)
            if trainer.step % t.logEvery == 0 || trainer.step == t.steps {
                func mean(_ k: KeyPath<VAETrainer.Losses, Float>) -> Double { window.reduce(0) { $0 + Double($1[keyPath: k]) } / Double(window.count) }
                curve.append((trainer.step, mean(\.total), mean(\.l1), mean(\.ssim), mean(\.kl)))
                window = []
                let c = curve.last!
                say(String(format: "  step %d/%d  loss %.4f  (L1 %.4f, SSIM %.4f, KL %.3g)  %.2f s/step", trainer.step, t.steps, c.total, c.l1, c.ssim, c.kl,
                           (clock.now - start).seconds / Double(max(1, trainer.step - startStep))))
            }
            if trainer.step % t.checkpointEvery == 0 || trainer.step == t.steps { try saveAll() }
        }
        say("wrote the VAE to \(output.relativePath)")
    }

    /// The VAE folder's model card.
    func card(trainer: VAETrainer, dataset: ToyTrainingData, settings: VAETrainingConfig, measured m: Measurement) -> String {
        let t = settings.training, d = dataset.manifest, v = settings.vae
        return """
        # Kiln VAE

        An `AutoencoderKL` in the diffusers layout (`config.json`, `diffusion_pytorch_model.safetensors`), trained by Kiln on toy-world renders: images of \(d.size)² become latents of \(d.size / v.downsamplingFactor)² × \(v.latentChannels) (f = \(v.downsamplingFactor)). A latent prior names this folder as its `vae/`.

        ## How it was made
        ```sh
        kiln dataset --count \(d.count) --seed \(d.seed) --size \(d.size) --shard-size \(d.shardSize) --motion-probability \(d.options.motionProbability) --out DATA
        kiln train-vae --data DATA --config train_config.json --out THIS_FOLDER
        ```

        | | |
        | --- | --- |
        | network | \(trainer.vae.parameterCount) parameters, block widths \(v.blockOutChannels), \(v.layersPerBlock) ResNet\(v.layersPerBlock == 1 ? "" : "s") per level |
        | data | \(d.count) renders, seed \(d.seed), random \(trainer.cropSize)² crops |
        | steps | \(trainer.step) of \(t.steps), batch \(t.batchSize) |
        | loss | \(t.l1Weight) · L1 + \(t.ssimWeight) · (1 − SSIM) on display values, + \(t.klWeight) · KL per latent element |
        | optimiser | AdamW, learning rate \(t.learningRate) with \(t.warmupSteps) warm-up steps, gradient norm ≤ \(t.maxGradNorm); EMA of the weights (decay \(t.emaDecay)) exported |

        ## Held-out reconstruction
        \(holdoutCount) renders of another toy-world seed, whole images, encoded to the posterior's mean and decoded:

        | PSNR | SSIM | latent mean | latent std | scaling_factor (1 / std) |
        | ---: | ---: | ---: | ---: | ---: |
        | \(String(format: "%.2f dB", m.psnr)) | \(String(format: "%.4f", m.ssim)) | \(String(format: "%.3f", m.latentMean)) | \(String(format: "%.3f", m.latentStd)) | \(String(format: "%.4f", m.scalingFactor)) |

        ![held-out images (top) and their reconstructions (bottom)](reconstructions.png)

        ![training loss](loss.png)

        """
    }
}
