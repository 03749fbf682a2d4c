import ArgumentParser
import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRun
import KilnToyWorld

extension TuningMethod: ExpressibleByArgument {}

struct TunePrior: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune-prior",
        abstract: "Improve a prior by reinforcement learning on its own samples, scored by the reward models.",
        discussion: """
        Each epoch draws toy-world conditions (a caption and a camera), samples --samples-per-condition \
        trajectories of each from the prior (DDIM with eta > 0), scores their images with the reward \
        models (--reward, e.g. view:1,alignment:1) and updates the UNet: --method ddpo is DDPO with \
        PPO clipping and advantages normalised per condition; --method grpo adds a KL penalty to the \
        starting prior (k3 estimator, --kl-coefficient); --method dpo pairs each condition's best sample with its worst and minimises Diffusion-DPO's loss against \
        the starting prior (--dpo-beta); --method draft samples deterministically and \
        back-propagates the reward's gradient through the last --draft-steps sampling steps (DRaFT-K, \
        ReFL when K = 1). OUT becomes a prior folder in the input's \
        layout (every command loads it) with a model card (README.md: the command, the before/after \
        table on held-out conditions, with --judge's held-out reward models beside the training ones), \
        reward.png, tuning.json and checkpoint/ (--resume continues bit-identically; Ctrl-C saves and \
        exits 130).
        """
    )

    @Option(help: ArgumentHelp(ShippedAssets.help(.prior)), completion: .directory)
    var prior: String?

    @Option(help: ArgumentHelp(ShippedAssets.help(.rewards)), completion: .directory)
    var rewards: String?

    @Option(help: "Held-out reward models (trained on other data) that score before and after but are never optimised against (default: the shipped judge, assets/judge, when it is found).", completion: .directory)
    var judge: String?

    @Flag(help: "Score with the training rewards only, without the held-out judge.")
    var noJudge = false

    @Option(help: "The tuned prior folder to write.", completion: .directory)
    var out: String

    @Option(help: "The method: ddpo, grpo (DDPO's objective plus a KL penalty to the starting prior), dpo (Diffusion-DPO on best/worst pairs) or draft (reward gradients through the last sampling steps).")
    var method: TuningMethod = .ddpo

    @Option(help: "β of the KL penalty to the starting prior (default: 0.04 for grpo, 0 for ddpo).")
    var klCoefficient: Float?

    @Option(help: "Keep an exponential moving average of the weights with this largest decay (e.g. 0.99) and write it as the tuned prior.")
    var emaDecay: Float?

    @Option(help: "Train LoRA adapters of this rank on the UNet's attention projections instead of every weight (merged into the written prior).")
    var loraRank: Int?

    @Option(help: "LoRA's α: the adapters' term is scaled by α/rank (default: α = rank).")
    var loraAlpha: Float?

    @Option(help: "dpo: β of the DPO loss (larger keeps closer to the starting prior).")
    var dpoBeta: Float = 5000

    @Option(help: "Also minimise the prior's own denoising loss on fresh toy-world renders, with this weight, in every update (ReFL's regulariser): keeps the tuned prior's colours, backgrounds and variety those of the data while the rewards move it (0: off).")
    var denoisingWeight: Float = 0

    @Option(help: "Renders per update of the denoising loss.")
    var denoisingBatch: Int = 16

    @Option(help: "draft: the last sampling steps the reward's gradient flows through (K).")
    var draftSteps: Int = 1

    @Option(help: "Rewards and weights: view, alignment, quality, motion (two samples of a caption at two times, judged as a motion by the motion-pair model), motion-change (the same pair's change against the toy world's own change between the two times), consistency (four azimuths from one noise, a splat fit to them rendered back: PSNR), e.g. view:1,alignment:1.")
    var reward: String = "view:1,alignment:1"

    @Option(help: "Epochs (each a batch of trajectories and its updates).")
    var epochs: Int = 20

    @Option(help: "Conditions (caption and camera) per epoch.")
    var conditions: Int = 4

    @Option(help: "The share of conditions whose caption names a motion, 0…1 (default: the toy world's 0.3); raise it for the motion rewards, which learn only from moving captions.")
    var movingShare: Float?

    @Option(help: "Trajectories per condition (the group advantages are normalised in).")
    var samplesPerCondition: Int = 4

    @Option(help: "DDIM steps per trajectory.")
    var steps: Int = 10

    @Option(help: "DDIM steps of the before/after samples on the card (kiln sample's and score-prior's default).")
    var evaluationSteps: Int = 30

    @Option(help: "Draw each epoch's DDIM step count from --steps…--max-steps, so the prior is tuned at the noise levels of many sampling chains, not one.")
    var maxSteps: Int?

    @Option(help: "Learning rate (AdamW).")
    var learningRate: Double = 3e-5

    @Option(help: "PPO passes over each batch.")
    var innerEpochs: Int = 1

    @Option(help: "Classifier-free guidance while sampling (default: the prior's own).")
    var guidanceScale: Double?

    @Option(help: "Seed of the conditions, the noise and the updates.")
    var seed: UInt64 = 0

    @Option(help: "Epochs between checkpoints.")
    var checkpointEvery: Int = 5

    @Flag(help: "Continue the run saved in OUT/checkpoint.")
    var resume = false

    @Flag(help: "Write into an existing, non-empty folder (a new run).")
    var force = false

    func validate() throws {
        if noJudge && judge != nil { throw ValidationError("--judge and --no-judge contradict each other; give one") }
        if resume && force { throw ValidationError("--resume and --force contradict each other: choose one") }
        for (name, value, range) in [("--epochs", epochs, 1...100_000), ("--conditions", conditions, 1...256), ("--samples-per-condition", samplesPerCondition, 2...64),
                                     ("--steps", steps, 2...1000), ("--max-steps", maxSteps ?? steps, min(max(steps, 2), 1000)...1000),
                                     ("--draft-steps", draftSteps, 1...max(1, maxSteps ?? steps)), ("--inner-epochs", innerEpochs, 1...16), ("--evaluation-steps", evaluationSteps, 1...1000), ("--denoising-batch", denoisingBatch, 1...1024), ("--checkpoint-every", checkpointEvery, 1...100_000)]
        where !range.contains(value) {
            throw ValidationError("\(name) must be \(range.lowerBound)…\(range.upperBound), got \(value)")
        }
        guard learningRate.isFinite, learningRate > 0, learningRate < 1 else { throw ValidationError("--learning-rate must be in (0, 1), got \(learningRate)") }
        if let guidanceScale { guard guidanceScale.isFinite, guidanceScale >= 0 else { throw ValidationError("--guidance-scale must be a number ≥ 0") } }
        _ = try TuningRewardRegistry.weights(parsing: reward)
        if let emaDecay { guard emaDecay.isFinite, emaDecay > 0, emaDecay < 1 else { throw ValidationError("--ema-decay must be in (0, 1), got \(emaDecay)") } }
        if let loraRank { guard loraRank >= 1 else { throw ValidationError("--lora-rank must be at least 1, got \(loraRank)") } }
        if let loraAlpha {
            guard loraAlpha.isFinite, loraAlpha > 0 else { throw ValidationError("--lora-alpha must be a number > 0, got \(loraAlpha)") }
            guard loraRank != nil else { throw ValidationError("--lora-alpha needs --lora-rank") }
        }
        if let movingShare { guard movingShare.isFinite, (0...1).contains(movingShare) else { throw ValidationError("--moving-share must be in [0, 1], got \(movingShare)") } }
        guard denoisingWeight.isFinite, denoisingWeight >= 0 else { throw ValidationError("--denoising-weight must be a number ≥ 0, got \(denoisingWeight)") }
        guard dpoBeta.isFinite, dpoBeta > 0 else { throw ValidationError("--dpo-beta must be a number > 0, got \(dpoBeta)") }
        if let klCoefficient {
            guard klCoefficient.isFinite, klCoefficient >= 0 else { throw ValidationError("--kl-coefficient must be a number ≥ 0, got \(klCoefficient)") }
            if method != .grpo && klCoefficient > 0 { throw ValidationError("--kl-coefficient is grpo's; use --method grpo") }
        }
    }

    func run() throws {
        _ = Memory.retainFreedMemory()
        let priorFolder = try ShippedAssets.resolve(prior, .prior)
        var job = PriorTuningJob(prior: priorFolder, rewards: try ShippedAssets.resolve(rewards, .rewards), output: URL(fileURLWithPath: out))
        if noJudge {
            job.judge = nil
        } else if let judge {
            job.judge = URL(fileURLWithPath: judge)
        } else if let shipped = try? ShippedAssets.folder(.judge) {
            job.judge = shipped
        } else {
            say("no held-out judge found (assets/judge); scoring with the training rewards only (pass --judge DIR to add one)")
        }
        (job.method, job.reward, job.epochs, job.conditionsPerEpoch) = (method, reward, epochs, conditions)
        (job.seed, job.checkpointEvery, job.resume, job.force) = (seed, checkpointEvery, resume, force)
        (job.settings.samplesPerCondition, job.settings.steps, job.settings.learningRate, job.settings.innerEpochs) = (samplesPerCondition, steps, learningRate, innerEpochs)
        (job.settings.maxSteps, job.evaluationSteps) = (maxSteps, evaluationSteps)
        job.settings.klCoefficient = klCoefficient ?? method.defaultKLCoefficient
        (job.draftSteps, job.movingShare) = (draftSteps, movingShare)
        (job.denoisingWeight, job.denoisingBatch) = (denoisingWeight, denoisingBatch)
        job.settings.dpoBeta = dpoBeta
        job.settings.emaDecay = emaDecay
        (job.settings.loraRank, job.settings.loraAlpha) = (loraRank, loraAlpha)
        job.settings.guidanceScale = try guidanceScale ?? PriorPipeline.guidance(of: priorFolder)
        job.command = (["kiln"] + CommandLine.arguments.dropFirst()).map { $0.contains(" ") ? "\"\($0)\"" : $0 }.joined(separator: " ")
        do {
            try job.run()
        } catch let stop as RunInterrupted {
            say(stop.description)
            throw ExitCode(130)
        }
    }
}
