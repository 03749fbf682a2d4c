import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore
import KilnNN
import KilnToyWorld

struct Dataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render the toy world into a training set for the built-in prior.",
        discussion: """
        Sample i is a pure function of (--seed, i): a kind (12, each with a front only it shows), \
        colours, sometimes a motion at a time τ, an orbit camera (azimuth 0–360°, elevation \
        −10°–60°), a light and a background, rendered with Kiln's mesh rasterizer. Writes \
        shard_NNNNN.safetensors ("images" U8 [n, 3, H, W], "views" F32 [n, 8]) and \
        shard_NNNNN.jsonl (caption, kind, colours, motion, τ, camera per line), preview.png, and \
        dataset.json last. Every file is written atomically; --resume finishes an interrupted run \
        with the same settings. --meshes also exports every sample's ground-truth mesh as glb.
        """
    )

    @Option(help: "Number of samples.")
    var count: Int

    @OptionGroup var output: OutputFolderOptions

    @Option(help: "Seed of the data set.")
    var seed: UInt64 = 0

    @Option(help: "Image side in pixels.")
    var size: Int = 64

    @Option(help: "Samples per shard.")
    var shardSize: Int = 1000

    @Option(help: "Probability that a sample moves (and gets a time τ).")
    var motionProbability: Float = 0.3

    @Flag(help: "Continue an interrupted run in the same folder with the same settings.")
    var resume = false

    @Flag(help: "Also write meshes/sample_NNNNNNN.glb, each sample's ground truth.")
    var meshes = false

    func validate() throws {
        guard (1...10_000_000).contains(count) else { throw ValidationError("--count must be 1…10000000, got \(count)") }
        guard (8...1024).contains(size) else { throw ValidationError("--size must be 8…1024, got \(size)") }
        guard (1...100_000).contains(shardSize) else { throw ValidationError("--shard-size must be 1…100000, got \(shardSize)") }
        guard motionProbability >= 0 && motionProbability <= 1 else {
            throw ValidationError("--motion-probability must be in [0, 1], got \(motionProbability)")
        }
        if resume && output.force { throw ValidationError("--resume and --force contradict each other: choose one") }
    }

    func run() throws {
        var job = ToyDatasetJob(folder: output.url, seed: seed, count: count, size: size, shardSize: shardSize)
        (job.motionProbability, job.resume, job.meshes, job.force) = (motionProbability, resume, meshes, output.force)
        try job.run()
    }
}
