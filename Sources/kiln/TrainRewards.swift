import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore
import KilnNN
import KilnPrior
import KilnToyWorld

struct TrainRewards: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-rewards",
        abstract: "Train the toy world's reward models (alignment, view, quality) on a kiln dataset folder.",
        discussion: """
        Each model is a small CNN with softmax heads, differentiable with respect to the image: \
        alignment predicts kind, main and second colour and motion (reward: log-likelihood of \
        what a caption names); view predicts the azimuth (8 bins of 45°) and elevation (4 bins); \
        quality tells real renders from degraded ones (noise, shuffled patches, spliced halves). \
        Writes OUT/alignment.safetensors, view.safetensors, quality.safetensors and \
        OUT/rewards.json with the held-out accuracy of every head, measured on --holdout samples \
        rendered with a seed the data set does not use.
        """
    )

    @Option(help: "A folder written by kiln dataset.", completion: .directory)
    var data: String

    @OptionGroup var output: OutputFolderOptions

    @Option(help: "Training steps per model.")
    var steps: Int = 2000

    @Option(help: "Images per step.")
    var batchSize: Int = 32

    @Option(help: "Held-out samples for the accuracies.")
    var holdout: Int = 1000

    @Option(help: "Seed of the models' initialisation and batches.")
    var seed: UInt64 = 0

    func validate() throws {
        guard (1...1_000_000).contains(steps) else { throw ValidationError("--steps must be 1…1000000, got \(steps)") }
        guard (2...1024).contains(batchSize) else { throw ValidationError("--batch-size must be 2…1024, got \(batchSize)") }
        guard (10...100_000).contains(holdout) else { throw ValidationError("--holdout must be 10…100000, got \(holdout)") }
    }

    struct Record: Codable {
        var data: String
        var dataSeed: UInt64
        var trainingSamples: Int
        var holdoutSeed: UInt64
        var holdoutSamples: Int
        var steps: Int
        var batchSize: Int
        var accuracy: [String: [String: Double]]
    }

    func run() throws {
        _ = Memory.retainFreedMemory()
        let dataset = try ToyTrainingData(folder: URL(fileURLWithPath: data))
        guard dataset.size % 8 == 0 else { throw CLIError("the data set's images are \(dataset.size)²; the reward models need a multiple of 8") }
        try output.prepare()
        // Held-out samples: indices past the data set under a different seed.
        let holdoutSeed = dataset.manifest.seed &+ 1_000_003
        let held = ToyDataset.renderShard(seed: holdoutSeed, indices: 0..<holdout, size: dataset.size, options: dataset.manifest.options)
        let heldImages = held.images.map { UInt8($0) }
        var accuracy: [String: [String: Double]] = [:]
        for kind in RewardTerm.allCases {
            let trainer = RewardTrainer(kind: kind, imageSize: dataset.size, seed: seed)
            var window: [Float] = []
            for step in 1...steps {
                window.append(trainer.trainStep(images: dataset.images, records: dataset.records, size: dataset.size, batchSize: batchSize))
                if step % 100 == 0 || step == steps {
                    say(String(format: "  %@ step %d/%d  loss %.3f", kind.rawValue, step, steps, window.reduce(0, +) / Float(window.count)))
                    window = []
                }
            }
            let measured = trainer.accuracy(images: heldImages, records: held.records, size: dataset.size)
            accuracy[kind.rawValue] = measured
            say("  \(kind.rawValue) held-out accuracy: " + measured.sorted { $0.key < $1.key }.map { String(format: "%@ %.3f", $0.key, $0.value) }.joined(separator: ", "))
            try trainer.encoded().write(to: output.url.appendingPathComponent("\(kind.rawValue).safetensors"))
        }
        let record = Record(data: URL(fileURLWithPath: data).lastPathComponent, dataSeed: dataset.manifest.seed, trainingSamples: dataset.count,
                            holdoutSeed: holdoutSeed, holdoutSamples: holdout, steps: steps, batchSize: batchSize, accuracy: accuracy)
        try writeJSON(record, to: output.url.appendingPathComponent("rewards.json"))
        say("wrote the reward models to \(output.out)")
    }
}
