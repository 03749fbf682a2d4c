import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

/// A few images drawn in memory: soft discs of random colours on random backgrounds.
struct DiscData: PriorTrainingData {
    let size: Int
    let count: Int
    let images: [UInt8]
    var views: [Float] { [Float](repeating: 0, count: count * ViewConditioning.length) }
    var captions: [String] { Array(repeating: "", count: count) }
    var vocabulary: [String]? { nil }

    init(size: Int, count: Int, seed: UInt64) {
        (self.size, self.count) = (size, count)
        var rng = RNG(seed: seed), values = [UInt8](repeating: 0, count: count * 3 * size * size)
        for n in 0..<count {
            let background = (0..<3).map { _ in rng.nextFloat() }, colour = (0..<3).map { _ in rng.nextFloat() }
            let cx = rng.uniform(0.3...0.7) * Float(size), cy = rng.uniform(0.3...0.7) * Float(size), r = rng.uniform(0.15...0.3) * Float(size)
            for y in 0..<size {
                for x in 0..<size {
                    let d = ((Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy)).squareRoot()
                    let inside = min(1, max(0, r - d + 0.5))
                    for c in 0..<3 { values[((n * 3 + c) * size + y) * size + x] = UInt8((255 * (inside * colour[c] + (1 - inside) * background[c])).rounded()) }
                }
            }
        }
        images = values
    }
}

@Suite("VAE training")
struct VAETrainerTests {
    static func config(steps: Int = 10, crop: Int = 16) -> VAETrainingConfig {
        var c = VAETrainingConfig(vae: AutoencoderKLConfig(latentChannels: 2, blockOutChannels: [8, 16], layersPerBlock: 1, normGroups: 4))
        (c.training.steps, c.training.cropSize, c.training.batchSize, c.training.warmupSteps, c.training.klWeight) = (steps, crop, 2, 2, 1e-2)
        return c
    }

    /// The loss of one fixed batch with fixed posterior noise, as a function of the parameters
    /// (for central differences), and the analytic gradients of one pass, read before any
    /// central difference adds to them again.
    static func lossAndGradients(_ trainer: VAETrainer) -> (loss: () -> Double, gradients: [[Float]]) {
        let x = trainer.batch()
        let noiseState = trainer.rng
        func loss() -> Double {
            trainer.rng = noiseState
            var l = VAETrainer.Losses(total: 0, l1: 0, ssim: 0, kl: 0)
            trainer.forwardBackward(x, losses: &l)
            return Double(l.total)
        }
        for (_, p) in trainer.named { p.zeroGradient() }
        _ = loss()
        return (loss, trainer.named.map { $0.parameter.gradient.storage })
    }

    @Test("the reconstruction loss's gradient matches central differences (L1 and SSIM on display values)")
    func reconstructionGradient() {
        var rng = RNG(seed: 1)
        let x = Tensor(shape: [1, 3, 16, 16], storage: (0..<768).map { _ in rng.uniform(-1...1) })
        let y = Tensor(shape: [1, 3, 16, 16], storage: (0..<768).map { _ in rng.uniform(-1...1) })
        let (_, g, _) = VAETrainer.reconstructionLoss(x, target: y, l1Weight: 1, ssimWeight: 0.5)
        for _ in 0..<10 {
            let i = Int(rng.next() % 768), h: Float = 1e-3
            var upValues = x.storage, downValues = x.storage
            upValues[i] += h
            downValues[i] -= h
            let up = Tensor(shape: x.shape, storage: upValues), down = Tensor(shape: x.shape, storage: downValues)
            let numeric = (VAETrainer.reconstructionLoss(up, target: y, l1Weight: 1, ssimWeight: 0.5).loss - VAETrainer.reconstructionLoss(down, target: y, l1Weight: 1, ssimWeight: 0.5).loss) / Double(2 * h)
            #expect(abs(numeric - Double(g.storage[i])) < 2e-3 * max(1e-3, abs(numeric)) + 1e-6, "element \(i): numeric \(numeric), analytic \(g.storage[i])")
        }
    }

    @Test("the loss's parameter gradients (encoder, reparameterised sample, decoder, SSIM, KL) match central differences")
    func parameterGradients() throws {
        // L1's kinks make central differences unreliable wherever a pixel's error crosses zero
        // within ±h (one such pixel moves a difference by about 1/pixels): the check runs on the
        // smooth terms; L1's gradient is checked away from its kinks above.
        var smooth = Self.config()
        (smooth.training.l1Weight, smooth.training.ssimWeight) = (0, 1)
        let trainer = try VAETrainer(config: smooth, data: DiscData(size: 16, count: 4, seed: 2))
        let (loss, analytic) = Self.lossAndGradients(trainer)
        var rng = RNG(seed: 3)
        var checked = 0
        for (k, (name, p)) in trainer.named.enumerated() where name.hasSuffix("weight") && (name.contains("conv_in") || name.contains("conv_out") || name.contains("quant_conv") || name.contains("mid_block.attentions")) {
            for _ in 0..<2 {
                let i = Int(rng.next() % UInt64(p.count))
                let numeric = centralDifference(p, at: i, h: 1e-2, loss)
                #expect(abs(numeric - Double(analytic[k][i])) < 0.05 * max(abs(numeric), 2e-4), "\(name)[\(i)]: numeric \(numeric), analytic \(analytic[k][i])")
                checked += 1
            }
        }
        #expect(checked >= 10)
    }

    @Test("the KL term's gradient alone (through the encoder and the clamp) matches central differences")
    func klGradient() throws {
        var klOnly = Self.config()
        (klOnly.training.l1Weight, klOnly.training.ssimWeight, klOnly.training.klWeight) = (0, 0, 1)
        let trainer = try VAETrainer(config: klOnly, data: DiscData(size: 16, count: 4, seed: 5))
        let (loss, gradients) = Self.lossAndGradients(trainer)
        var checked = 0
        for (k, (name, p)) in trainer.named.enumerated() where name.hasPrefix("encoder.conv_out") || name.hasPrefix("quant_conv") {
            let analytic = gradients[k]
            for i in [0, p.count / 3, p.count - 1] {
                let numeric = centralDifference(p, at: i, h: 1e-2, loss)
                #expect(abs(numeric - Double(analytic[i])) < 0.03 * max(abs(numeric), 1e-3), "\(name)[\(i)]: numeric \(numeric), analytic \(analytic[i])")
                checked += 1
            }
        }
        #expect(checked >= 12)
    }

    @Test("training lowers the loss, and a resumed run is bit-identical to an uninterrupted one")
    func trainsAndResumes() throws {
        let data = DiscData(size: 16, count: 6, seed: 4)
        var c = Self.config(steps: 200)
        c.training.learningRate = 3e-3
        let straight = try VAETrainer(config: c, data: data)
        var first: [Float] = [], last: [Float] = []
        for s in 0..<200 {
            let l = straight.trainStep().total
            if s < 10 { first.append(l) }
            if s >= 190 { last.append(l) }
        }
        #expect(last.reduce(0, +) < 0.5 * first.reduce(0, +), "loss \(first) → \(last)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-vae-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let a = try VAETrainer(config: c, data: data)
        for _ in 0..<3 { a.trainStep() }
        try a.saveCheckpoint(to: folder)
        for _ in 0..<2 { a.trainStep() }
        let b = try VAETrainer(config: c, data: data)
        try b.loadCheckpoint(from: folder)
        for _ in 0..<2 { b.trainStep() }
        #expect(b.step == 5 && zip(a.named, b.named).allSatisfy { $0.parameter.value.storage == $1.parameter.value.storage })
        #expect(zip(a.state.ema.shadow, b.state.ema.shadow).allSatisfy { $0.storage == $1.storage }, "the EMA (the exported model) resumes too")
        // A save cut short between files (state.json of another step) is refused, not mixed.
        try a.saveCheckpoint(to: folder)
        let stateURL = folder.appendingPathComponent("state.json")
        let edited = try String(contentsOf: stateURL, encoding: .utf8).replacingOccurrences(of: "\"step\":5", with: "\"step\":4")
        try Data(edited.utf8).write(to: stateURL)
        #expect(throws: PriorConfigError.self) { try VAETrainer(config: c, data: data).loadCheckpoint(from: folder) }
        // The export loads as a diffusers vae/ folder with the measured scaling factor.
        try a.export(to: folder.appendingPathComponent("vae"), scalingFactor: 0.5)
        let loaded = try AutoencoderKL(folder: folder.appendingPathComponent("vae"))
        #expect(loaded.config.scalingFactor == 0.5 && loaded.config.blockOutChannels == [8, 16])
        let x = a.batch()
        let ours = a.withAveragedWeights { a.reconstruct(x) }
        #expect(loaded.decode(loaded.latents(of: loaded.encode(x))).storage.elementsEqual(ours.storage) { abs($0 - $1) < 1e-5 })
    }

    @Test("VAE training configs Kiln cannot use are refused, naming the key")
    func badConfigs() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-vae-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let vae = #""vae": {"block_out_channels": [32, 64], "norm_num_groups": 16, "latent_channels": 4}"#
        for (text, key) in [("{\(vae), \"extra\": 1}", "extra"), ("{\(vae), \"training\": {\"crop_size\": 10}}", "training.crop_size"),
                            ("{\(vae), \"training\": {\"batch_sise\": 4}}", "batch_sise"), ("{\(vae), \"training\": {\"learning_rate\": 2}}", "training.learning_rate"),
                            ("{\"training\": {}}", "vae"), (#"{"vae": {"block_out_channels": [30]}}"#, "block_out_channels")] {
            let url = folder.appendingPathComponent("c.json")
            try Data(text.utf8).write(to: url)
            #expect(throws: PriorConfigError.self) { try VAETrainingConfig(contentsOf: url) }
            do { _ = try VAETrainingConfig(contentsOf: url) } catch { #expect("\(error)".contains(key), "\(text): \(error)") }
        }
        let good = folder.appendingPathComponent("good.json")
        try Data("{\(vae), \"training\": {\"crop_size\": 32, \"steps\": 7}}".utf8).write(to: good)
        let parsed = try VAETrainingConfig(contentsOf: good)
        #expect(parsed.training.steps == 7 && parsed.vae.downsamplingFactor == 2 && parsed.vae.latentChannels == 4)
    }
}

