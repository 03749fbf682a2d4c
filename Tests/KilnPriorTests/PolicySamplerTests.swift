import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

@Suite("Policy sampling for RL on the prior (DDPO)")
struct PolicySamplerTests {
    static let tiny = PriorPipelineTests.tiny

    @Test("stored log-probabilities are the policy's own; the parameter gradient of Σ w·log p matches finite differences")
    func gradient() throws {
        let pipeline = try PriorPipeline(folder: Self.tiny)
        let sampler = try PolicySampler(pipeline: pipeline, steps: 4, eta: 1, guidanceScale: 3)
        var rng = RNG(seed: 11)
        let views = [ViewConditioning(azimuthDegrees: 30), ViewConditioning(azimuthDegrees: 200)]
        let trajectories = try sampler.sample(prompts: ["a red snowman", "a blue house"], views: views, rng: &rng)
        #expect(trajectories.timesteps.count >= 3 && trajectories.final.shape == [2, 3, 16, 16] && trajectories.final.isFinite)
        for k in trajectories.timesteps.indices {
            let again = try sampler.logProbs(trajectories, step: k)
            #expect(zip(again, trajectories.logProbs[k]).allSatisfy { abs($0 - $1) < 1e-4 }, "step \(k): \(again) vs \(trajectories.logProbs[k])")
        }
        let k = 1, w: [Float] = [0.7, -1.3]
        pipeline.unet.zeroGradients()
        try sampler.accumulateGradient(trajectories, step: k) { _ in w }
        let named = Dictionary(uniqueKeysWithValues: pipeline.unet.namedParameters.map { ($0.name, $0.parameter) })
        func objective() throws -> Double {
            zip(try sampler.logProbs(trajectories, step: k), w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        for name in ["conv_out.bias", "conv_in.weight", "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v.weight"] {
            let p = named[name]!
            let index = p.shape.reduce(1, *) / 3
            let analytic = Double(p.gradient.storage[index])
            let numeric = try centralDifference(p, at: index, objective)
            #expect(abs(numeric - analytic) < 0.05 * max(0.05, abs(numeric)), "\(name): numeric \(numeric), analytic \(analytic)")
        }
    }

    @Test("PPO clipping: the gradient weight is −A·r inside the trust region and 0 where the clipped term wins")
    func ppoClip() {
        let old: [Float] = [0, 0, 0, 0]
        let current: [Float] = [0, Foundation.log(1.5), Foundation.log(1.5), Foundation.log(0.5)]
        let advantages: [Float] = [2, 1, -1, -1]
        let w = PPOClip.logProbWeights(current: current, old: old, advantages: advantages, clipRange: 0.2)
        #expect(w[0] == -2)                   // r = 1: −A
        #expect(w[1] == 0)                    // A > 0, r above 1 + ε: clipped
        #expect(abs(w[2] - 1.5) < 1e-6)       // A < 0, r above 1 + ε: the unclipped term is larger
        #expect(w[3] == 0)                    // A < 0, r below 1 − ε: clipped
        #expect(abs(PPOClip.loss(current: current, old: old, advantages: advantages, clipRange: 0.2) - (-2 - 1.2 + 1.5 + 0.8) / 4) < 1e-6)
    }
}

@Suite("DDPO on the prior")
struct DDPOTrainerTests {
    @Test("advantages are standardised within each condition's group and clipped")
    func advantages() {
        let a = DDPOTrainer.advantages([1, 3, 5, 5, 0, 0, 0, 10], groupSize: 4, clip: 1.5)
        #expect(abs(a[0] + 1.5) < 1e-6 && abs(a[1] + 0.30151135) < 1e-5 && abs(a[2] - 0.90453404) < 1e-5)
        #expect(a[4] == -0.57735026 && a[7] == 1.5)
        #expect(DDPOTrainer.advantages([2, 2], groupSize: 2, clip: 5) == [0, 0])
    }

    @Test("a few DDPO epochs raise a reward on fresh samples (the red minus the blue of the image)")
    func learns() throws {
        let pipeline = try PriorPipeline(folder: PriorPipelineTests.tiny)
        var settings = TuningSettings()
        (settings.steps, settings.samplesPerCondition, settings.innerEpochs, settings.clipRange, settings.learningRate) = (4, 4, 1, 0.2, 5e-4)
        let trainer = try DDPOTrainer(pipeline: pipeline, settings: settings, seed: 1)
        func redness(_: [TuningCondition], _ images: Tensor) -> [Float] {
            let plane = images.shape[2] * images.shape[3]
            return (0..<images.shape[0]).map { b in
                let base = b * 3 * plane
                return (0..<plane).map { images.storage[base + $0] - images.storage[base + 2 * plane + $0] }.reduce(0, +) / Float(plane)
            }
        }
        let conditions = [("a red snowman", ViewConditioning(azimuthDegrees: 0)), ("a blue house", ViewConditioning(azimuthDegrees: 90))]
        func evaluate() throws -> Float {
            var rng = RNG(seed: 99)
            let t = try trainer.sampler.sample(prompts: Array(repeating: "a red snowman", count: 8), views: Array(repeating: ViewConditioning(), count: 8), rng: &rng)
            let r = redness([], PriorPipeline.displayValues(t.final))
            return r.reduce(0, +) / 8
        }
        let before = try evaluate()
        var reports: [TuningEpochReport] = []
        for _ in 0..<12 { reports.append(try trainer.epoch(conditions: conditions, reward: TuningReward(score: redness))) }
        let after = try evaluate()
        #expect(after > before + 0.05, "redness \(before) → \(after); epochs: \(reports.map(\.meanReward))")
        #expect(reports.allSatisfy { $0.loss.isFinite && ($0.approxKL ?? .nan).isFinite })
    }

    @Test("GRPO's KL to the frozen start: zero while the policy is the start, positive once it moved")
    func klToReference() throws {
        let pipeline = try PriorPipeline(folder: PriorPipelineTests.tiny)
        var settings = TuningSettings()
        (settings.steps, settings.samplesPerCondition, settings.learningRate, settings.klCoefficient) = (3, 2, 1e-3, 0.5)
        let trainer = try DDPOTrainer(pipeline: pipeline, settings: settings, seed: 2)
        let conditions = [("a red snowman", ViewConditioning())]
        let reward: ([TuningCondition], Tensor) -> [Float] = { _, images in
            (0..<images.shape[0]).map { b in images.storage[(b * images.count / images.shape[0])..<((b + 1) * images.count / images.shape[0])].reduce(0, +) }
        }
        let first = try trainer.epoch(conditions: conditions, reward: TuningReward(score: reward))
        let second = try trainer.epoch(conditions: conditions, reward: TuningReward(score: reward))
        #expect(first.klToReference == 0)
        #expect((second.klToReference ?? 0) > 0, "\(second)")
    }
}

@Suite("DRaFT on the prior")
struct DRaFTTrainerTests {
    /// Mean red minus mean blue, and its gradient.
    static func redness(_: [TuningCondition], _ images: Tensor) -> (rewards: [Float], gradient: Tensor) {
        let plane = images.shape[2] * images.shape[3]
        var gradient = [Float](repeating: 0, count: images.count)
        let rewards = (0..<images.shape[0]).map { b -> Float in
            let base = b * 3 * plane
            for i in 0..<plane { gradient[base + i] = 1 / Float(plane); gradient[base + 2 * plane + i] = -1 / Float(plane) }
            return (0..<plane).map { images.storage[base + $0] - images.storage[base + 2 * plane + $0] }.reduce(0, +) / Float(plane)
        }
        return (rewards, Tensor(shape: images.shape, storage: gradient))
    }

    /// Checks the parameter gradient DRaFT accumulates (−mean reward through the last K steps)
    /// against central differences of the same sampling chain.
    static func checkGradient(pipeline: PriorPipeline, steps: Int, truncation: Int, names: [String]) throws {
        let trainer = try DRaFTTrainer(pipeline: pipeline, steps: steps, truncation: truncation, guidanceScale: 2, learningRate: 1e-3, seed: 5)
        let conditions: [TuningCondition] = [("a red snowman", ViewConditioning(azimuthDegrees: 20)), ("a blue house", ViewConditioning(azimuthDegrees: 160))]
        var rng = RNG(seed: 8), times = StageTimes()
        let start = rng
        trainer.optimizer.parameters.forEach { $0.zeroGradient() }
        _ = try trainer.accumulateGradient(conditions: conditions, reward: TuningReward(differentiable: Self.redness), rng: &rng, times: &times)
        let named = Dictionary(uniqueKeysWithValues: pipeline.unet.namedParameters.map { ($0.name, $0.parameter) })
        let analytic = names.map { name in Double(named[name]!.gradient.storage[named[name]!.shape.reduce(1, *) / 2]) }
        func loss() throws -> Double {
            var r = start
            let rewards = try trainer.accumulateGradient(conditions: conditions, reward: TuningReward(differentiable: Self.redness), rng: &r, times: &times)
            return -Double(rewards.reduce(0, +)) / Double(rewards.count)
        }
        for (name, analytic) in zip(names, analytic) {
            let p = named[name]!
            let numeric = try centralDifference(p, at: p.shape.reduce(1, *) / 2, loss)
            #expect(abs(numeric - analytic) < 0.05 * max(0.01, abs(numeric)), "\(name): numeric \(numeric), analytic \(analytic)")
        }
    }

    @Test("with K = every step, the gradient of −mean reward matches finite differences through the whole sampling chain")
    func gradient() throws {
        try Self.checkGradient(pipeline: try PriorPipeline(folder: PriorPipelineTests.tiny), steps: 3, truncation: 3,
                               names: ["conv_out.bias", "down_blocks.0.resnets.0.conv1.weight"])
    }

    @Test("a latent v-prediction prior: the gradient through the VAE decoder and every step (K = 3) matches finite differences")
    func latentVPrediction() throws {
        let pipeline = try PriorPipeline(folder: LatentPipelineTests.sd21)
        #expect(pipeline.schedulerConfig.predictionType == .vPrediction && pipeline.vae != nil)
        try Self.checkGradient(pipeline: pipeline, steps: 3, truncation: 3, names: ["conv_out.bias", "conv_in.weight"])
    }

    @Test("a reward without an image gradient is refused by name")
    func needsGradient() throws {
        let trainer = try DRaFTTrainer(pipeline: try PriorPipeline(folder: PriorPipelineTests.tiny), steps: 2, truncation: 1, guidanceScale: 2, learningRate: 1e-3, seed: 5)
        #expect(throws: TuningError.rewardNotDifferentiable) {
            try trainer.epoch(conditions: [("a red snowman", ViewConditioning())], reward: TuningReward(score: { _, images in [Float](repeating: 0, count: images.shape[0]) }))
        }
    }
}

@Suite("Diffusion-DPO on the prior")
struct DiffusionDPOTrainerTests {
    @Test("pairs: each group's best against its worst; a group without spread gives none")
    func pairs() {
        let pairs = DiffusionDPOTrainer.pairs([0.1, 0.5, 0.3, 2, 2, 2, -1, 4, 0], groupSize: 3)
        #expect(pairs.map(\.winner) == [1, 7] && pairs.map(\.loser) == [0, 6])
    }

    @Test("at the start (policy = reference) the loss is log 2; its parameter gradient matches finite differences (ε and v-prediction)")
    func gradient() throws {
        for folder in [PriorPipelineTests.tiny, LatentPipelineTests.sd21] {
            let pipeline = try PriorPipeline(folder: folder)
            var settings = TuningSettings()
            (settings.steps, settings.samplesPerCondition, settings.dpoBeta) = (2, 2, 500)
            let trainer = try DiffusionDPOTrainer(pipeline: pipeline, settings: settings, seed: 3)
            var times = StageTimes()
            var rng = RNG(seed: 4)
            let shape = [2, pipeline.sampleChannels, pipeline.sampleSize.height, pipeline.sampleSize.width]
            let winners = Tensor.random(shape, rng: &rng), losers = Tensor.random(shape, rng: &rng)
            let prompts = ["a red snowman", "a blue house"], views = [ViewConditioning(azimuthDegrees: 10), ViewConditioning(azimuthDegrees: 250)]
            let start = rng
            trainer.optimizer.parameters.forEach { $0.zeroGradient() }
            let first = try trainer.accumulateGradient(winners: winners, losers: losers, prompts: prompts, views: views, rng: &rng, times: &times)
            #expect(abs(first.loss - Float(Foundation.log(2.0))) < 1e-5, "\(first)")
            let named = Dictionary(uniqueKeysWithValues: pipeline.unet.namedParameters.map { ($0.name, $0.parameter) })
            let names = ["conv_out.bias", "conv_in.weight"]
            let analytic = names.map { Double(named[$0]!.gradient.storage[named[$0]!.shape.reduce(1, *) / 2]) }
            func loss() throws -> Double {
                var r = start
                return Double(try trainer.accumulateGradient(winners: winners, losers: losers, prompts: prompts, views: views, rng: &r, times: &times).loss)
            }
            for (name, analytic) in zip(names, analytic) {
                let p = named[name]!
                let numeric = try centralDifference(p, at: p.shape.reduce(1, *) / 2, loss)
                #expect(abs(numeric - analytic) < 0.05 * max(0.002, abs(numeric)), "\(folder.lastPathComponent) \(name): numeric \(numeric), analytic \(analytic)")
            }
        }
    }

    @Test("a few steps on fixed pairs rank them right on noise draws never trained on, and lower the loss below log 2")
    func ranksPairs() throws {
        let pipeline = try PriorPipeline(folder: PriorPipelineTests.tiny)
        var settings = TuningSettings()
        (settings.steps, settings.samplesPerCondition, settings.learningRate, settings.dpoBeta) = (2, 2, 3e-4, 1000)
        let trainer = try DiffusionDPOTrainer(pipeline: pipeline, settings: settings, seed: 1)
        var rng = RNG(seed: 6), times = StageTimes()
        let shape = [3, pipeline.sampleChannels, pipeline.sampleSize.height, pipeline.sampleSize.width]
        let winners = Tensor.random(shape, rng: &rng).map { max(-1, min(1, $0)) }, losers = Tensor.random(shape, rng: &rng).map { max(-1, min(1, $0)) }
        let prompts = ["a red snowman", "a blue house", "a green tree"], views = [ViewConditioning(), ViewConditioning(azimuthDegrees: 90), ViewConditioning(azimuthDegrees: 180)]
        func heldOut() throws -> (loss: Float, accuracy: Float) {
            var r = RNG(seed: 1234), loss: Float = 0, accuracy: Float = 0
            for _ in 0..<8 {
                let e = try trainer.accumulateGradient(winners: winners, losers: losers, prompts: prompts, views: views, rng: &r, times: &times)
                (loss, accuracy) = (loss + e.loss / 8, accuracy + e.accuracy / 8)
            }
            return (loss, accuracy)
        }
        let before = try heldOut()
        #expect(abs(before.loss - Float(Foundation.log(2.0))) < 1e-4 && before.accuracy == 0)
        for _ in 0..<15 {
            trainer.optimizer.parameters.forEach { $0.zeroGradient() }
            for _ in 0..<4 { _ = try trainer.accumulateGradient(winners: winners, losers: losers, prompts: prompts, views: views, scale: 0.25, rng: &trainer.rng, times: &times) }
            trainer.optimizer.step()
        }
        let after = try heldOut()
        #expect(after.loss < 0.6 && after.accuracy > 0.7, "held-out DPO loss \(before.loss) → \(after.loss), pairs ranked right \(after.accuracy)")
    }

    @Test("an epoch samples, pairs and steps; the report carries the preference accuracy")
    func epoch() throws {
        var settings = TuningSettings()
        (settings.steps, settings.samplesPerCondition, settings.dpoNoiseDraws) = (2, 3, 1)
        let trainer = try DiffusionDPOTrainer(pipeline: try PriorPipeline(folder: PriorPipelineTests.tiny), settings: settings, seed: 1)
        let report = try trainer.epoch(conditions: [("a red snowman", ViewConditioning())], reward: TuningReward(score: { _, images in
            (0..<images.shape[0]).map { Float($0) }
        }))
        #expect(trainer.epochs == 1 && abs(report.loss - Float(Foundation.log(2.0))) < 1e-4 && report.preferenceAccuracy == 0 && report.meanReward == 1)
        #expect(throws: TuningError.self) {
            var bad = settings
            bad.samplesPerCondition = 1
            _ = try DiffusionDPOTrainer(pipeline: trainer.sampler.pipeline, settings: bad, seed: 1)
        }
    }
}

@Suite("Linked samples for tuning rewards")
struct LinkedSamplingTests {
    @Test("samples with one noise source are the same sample under the same condition, and differ under another; DPO pairs whole units")
    func sharedNoise() throws {
        let sampler = try PolicySampler(pipeline: try PriorPipeline(folder: PriorPipelineTests.tiny), steps: 3, eta: 1, guidanceScale: 3)
        var rng = RNG(seed: 5)
        let v = ViewConditioning(azimuthDegrees: 30)
        let t = try sampler.sample(prompts: ["a red snowman", "a red snowman", "a red snowman", "a blue house"], views: [v, v, v, v],
                                   noiseSources: [0, 0, 1, 0], rng: &rng)
        let s = t.final.chunked(4, axis: 0)
        func distance(_ a: Tensor, _ b: Tensor) -> Float { zip(a.storage, b.storage).map { abs($0 - $1) }.max()! }
        // The same up to the matrix products' rounding at another batch position.
        #expect(distance(s[0], s[1]) < 1e-3 && distance(s[0], s[2]) > 0.1 && distance(s[0], s[3]) > 0.1, "\(distance(s[0], s[1])) \(distance(s[0], s[2])) \(distance(s[0], s[3]))")
        let pairs = DiffusionDPOTrainer.pairs([1, 3, 5, 5, 0, 0], groupSize: 6, links: 2)
        #expect(pairs.map(\.winner) == [2, 3] && pairs.map(\.loser) == [4, 5])
    }
}

@Suite("Tuner checkpoints and the moving average")
struct TunerCheckpointTests {
    @Test("with --ema-decay the averaged weights are swapped in and back; a checkpoint restores weights, moments, RNG and the average")
    func emaCheckpoint() throws {
        var settings = TuningSettings()
        (settings.steps, settings.samplesPerCondition, settings.learningRate, settings.emaDecay) = (2, 2, 1e-3, 0.9)
        let reward = TuningReward(score: { _, images in (0..<images.shape[0]).map { Float($0) } })
        let conditions: [TuningCondition] = [("a red snowman", ViewConditioning())]
        let trainer = try DDPOTrainer(pipeline: try PriorPipeline(folder: PriorPipelineTests.tiny), settings: settings, seed: 3)
        for _ in 0..<3 { _ = try trainer.epoch(conditions: conditions, reward: reward) }
        let trained = trainer.optimizer.parameters.map(\.value.storage)
        let averaged = trainer.withAveragedWeights { trainer.optimizer.parameters.map(\.value.storage) }
        #expect(averaged == trainer.ema!.shadow.map(\.storage) && averaged != trained)
        #expect(trainer.optimizer.parameters.map(\.value.storage) == trained)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tuner-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        do {
            try trainer.saveCheckpoint(to: folder)
            let again = try DDPOTrainer(pipeline: try PriorPipeline(folder: PriorPipelineTests.tiny), settings: settings, seed: 99)
            try again.restore(from: folder)
            #expect(again.epochs == 3 && again.ema!.optimizationStep == trainer.ema!.optimizationStep)
            #expect(again.ema!.shadow.map(\.storage) == trainer.ema!.shadow.map(\.storage) && again.optimizer.parameters.map(\.value.storage) == trained)
            let a = try trainer.epoch(conditions: conditions, reward: reward), b = try again.epoch(conditions: conditions, reward: reward)
            #expect(a.withoutTimes == b.withoutTimes && again.ema!.shadow.map(\.storage) == trainer.ema!.shadow.map(\.storage))
            var plain = settings
            plain.emaDecay = nil
            let noAverage = try DDPOTrainer(pipeline: try PriorPipeline(folder: PriorPipelineTests.tiny), settings: plain, seed: 1)
            try noAverage.saveCheckpoint(to: folder.appendingPathComponent("plain"))
            #expect(throws: PriorConfigError.self) { try again.restore(from: folder.appendingPathComponent("plain")) }
        }
    }

    @Test("LoRA: only the adapters train, the base UNet stays as loaded, a checkpoint resumes bit-identically, the written weights are the merge")
    func loraTuning() throws {
        var settings = TuningSettings()
        (settings.steps, settings.samplesPerCondition, settings.learningRate, settings.loraRank) = (2, 2, 1e-2, 2)
        let reward = TuningReward(score: { _, images in (0..<images.shape[0]).map { Float($0) } })
        let conditions: [TuningCondition] = [("a red snowman", ViewConditioning())]
        let pipeline = try PriorPipeline(folder: PriorPipelineTests.tiny)
        let start = pipeline.unet.namedParameters.map(\.parameter.value.storage)
        let trainer = try DDPOTrainer(pipeline: pipeline, settings: settings, seed: 3)
        let projections = Set(pipeline.unet.attentionProjections.map(\.name))
        #expect(!projections.isEmpty && trainer.trainable.count == 2 * projections.count)
        #expect(trainer.trainable.allSatisfy { $0.name.hasSuffix(".lora_A.weight") || $0.name.hasSuffix(".lora_B.weight") })
        for name in projections { #expect(pipeline.unet.parameter(named: name + ".weight") != nil, "\(name) is a diffusers module name") }
        for _ in 0..<2 { _ = try trainer.epoch(conditions: conditions, reward: reward) }
        #expect(pipeline.unet.namedParameters.map(\.parameter.value.storage) == start, "the base UNet is frozen")
        let merged = pipeline.unet.namedValuesWithAdaptersMerged
        let changed = zip(merged, start).filter { $0.0.value.storage != $0.1 }.map(\.0.name)
        #expect(!changed.isEmpty && changed.allSatisfy { projections.contains(String($0.dropLast(".weight".count))) })

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-lora-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try trainer.saveCheckpoint(to: folder)
        let again = try DDPOTrainer(pipeline: try PriorPipeline(folder: PriorPipelineTests.tiny), settings: settings, seed: 99)
        try again.restore(from: folder)
        let a = try trainer.epoch(conditions: conditions, reward: reward), b = try again.epoch(conditions: conditions, reward: reward)
        #expect(a.withoutTimes == b.withoutTimes)
        #expect(trainer.trainable.map(\.parameter.value.storage) == again.trainable.map(\.parameter.value.storage))

        let before = pipeline.unet.namedValuesWithAdaptersMerged.map(\.value.storage)
        pipeline.unet.mergeLowRankAdapters()
        #expect(pipeline.unet.lowRankAdapterParameters.isEmpty)
        #expect(pipeline.unet.namedParameters.map(\.parameter.value.storage) == before)
        #expect(throws: TuningError.self) {
            var wide = settings
            wide.loraRank = 100_000
            _ = try DDPOTrainer(pipeline: try PriorPipeline(folder: PriorPipelineTests.tiny), settings: wide, seed: 1)
        }
    }
}

@Suite("Step counts drawn per epoch")
struct DrawnStepsTests {
    @Test("steps…maxSteps are all drawn and nothing else; without maxSteps the count is fixed and the RNG untouched")
    func draws() {
        var rng = RNG(seed: 3), settings = TuningSettings()
        (settings.steps, settings.maxSteps) = (6, 9)
        let drawn = (0..<200).map { _ in settings.drawSteps(&rng) }
        #expect(Set(drawn) == [6, 7, 8, 9])
        settings.maxSteps = nil
        let before = rng
        #expect(settings.drawSteps(&rng) == 6 && rng == before)
    }

    @Test("a sampler switched to another step count samples that chain, as a new sampler with it does")
    func switches() throws {
        let pipeline = try PriorPipeline(folder: PriorPipelineTests.tiny)
        let sampler = try PolicySampler(pipeline: pipeline, steps: 4, guidanceScale: 2)
        try sampler.setSteps(3)
        let fresh = try PolicySampler(pipeline: pipeline, steps: 3, guidanceScale: 2)
        var a = RNG(seed: 1), b = RNG(seed: 1)
        let x = try sampler.sample(prompts: ["a red snowman"], views: [ViewConditioning()], rng: &a)
        let y = try fresh.sample(prompts: ["a red snowman"], views: [ViewConditioning()], rng: &b)
        #expect(x.timesteps == y.timesteps && x.final.storage == y.final.storage && sampler.scheduler.timesteps.count == 3)
    }
}

extension TuningEpochReport {
    /// The report without its wall times, which differ between identical epochs.
    var withoutTimes: TuningEpochReport {
        var report = self
        report.times = nil
        return report
    }
}
