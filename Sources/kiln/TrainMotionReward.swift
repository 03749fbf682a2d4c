import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore
import KilnNN
import KilnToyWorld

struct TrainMotionReward: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-motion-reward",
        abstract: "Train the two-frame motion reward model on toy-world pairs it renders as it goes.",
        discussion: """
        Each training pair is a toy object seen twice from one camera, at τa and τb = τa + 0.15…0.35 \
        (moving with probability 5/6, so still and the five motions are equally common); the model \
        (a small CNN on the two frames stacked, 6 channels) names the motion. 4D runs use it as the \
        motion-pair reward (motion.pair_reward). Writes OUT/motion_pair.safetensors and \
        OUT/motion_pair.json with the held-out accuracy, measured on pairs drawn with another seed.
        """
    )

    @OptionGroup var output: OutputFolderOptions

    @Option(help: "Training steps.")
    var steps: Int = 3000

    @Option(help: "Pairs per step.")
    var batchSize: Int = 32

    @Option(help: "Side of the frames (a multiple of 8; the reward models' size).")
    var size: Int = 32

    @Option(help: "Held-out pairs for the accuracy.")
    var holdout: Int = 1200

    @Option(help: "Seed of the initialisation and the training pairs (the held-out pairs use another).")
    var seed: UInt64 = 0

    func validate() throws {
        guard (1...1_000_000).contains(steps) else { throw ValidationError("--steps must be 1…1000000, got \(steps)") }
        guard (2...1024).contains(batchSize) else { throw ValidationError("--batch-size must be 2…1024, got \(batchSize)") }
        guard (8...256).contains(size), size % 8 == 0 else { throw ValidationError("--size must be a multiple of 8 in 8…256, got \(size)") }
        guard (12...100_000).contains(holdout) else { throw ValidationError("--holdout must be 12…100000, got \(holdout)") }
    }

    struct Record: Codable {
        var seed: UInt64
        var holdoutSeed: UInt64
        var holdoutPairs: Int
        var steps: Int
        var batchSize: Int
        var size: Int
        var gaps: [Float]
        var accuracy: Double
        var perClass: [String: Double]
    }

    func run() throws {
        _ = Memory.retainFreedMemory()
        try output.prepare()
        let trainer = MotionPairTrainer(imageSize: size, seed: seed)
        var window: [Float] = []
        for step in 1...steps {
            window.append(trainer.trainStep(batchSize: batchSize))
            if step % 100 == 0 || step == steps {
                say(String(format: "  step %d/%d  loss %.3f", step, steps, window.reduce(0, +) / Float(window.count)))
                window = []
            }
        }
        let holdoutSeed = seed &+ 1_000_003
        let (overall, perClass) = trainer.accuracy(holdoutSeed: holdoutSeed, count: holdout)
        say(String(format: "held-out accuracy %.3f (", overall) + perClass.sorted { $0.key < $1.key }.map { String(format: "%@ %.3f", $0.key, $0.value) }.joined(separator: ", ") + ")")
        try trainer.model.encoded().write(to: output.url.appendingPathComponent("motion_pair.safetensors"))
        let record = Record(seed: seed, holdoutSeed: holdoutSeed, holdoutPairs: holdout, steps: steps, batchSize: batchSize, size: size,
                            gaps: [MotionPairReward.gaps.lowerBound, MotionPairReward.gaps.upperBound], accuracy: overall, perClass: perClass)
        try writeJSON(record, to: output.url.appendingPathComponent("motion_pair.json"))
        say("wrote the motion-pair reward model to \(output.out)")
    }
}
