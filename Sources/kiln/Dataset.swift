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
        let folder = output.url
        var options = ToySample.Options()
        options.motionProbability = motionProbability
        let manifest = ToyDatasetManifest(seed: seed, count: count, size: size, shardSize: shardSize, options: options)
        let partial = folder.appendingPathComponent("dataset.partial.json")
        if resume {
            guard let data = FileManager.default.contents(atPath: partial.path),
                  let previous = try? JSONDecoder().decode(ToyDatasetManifest.self, from: data) else {
                throw CLIError("--resume: \(partial.path) is missing or unreadable; start a new run without --resume")
            }
            guard previous == manifest else {
                throw CLIError("--resume: the run in \(output.out) used other settings (seed \(previous.seed), count \(previous.count), size \(previous.size), shard size \(previous.shardSize)); repeat them or start a new folder")
            }
        } else {
            try output.prepare()
            try writeJSON(manifest, to: partial)
        }
        if meshes { try FileManager.default.createDirectory(at: folder.appendingPathComponent("meshes"), withIntermediateDirectories: true) }
        let clock = ContinuousClock(), start = clock.now
        var rendered = 0
        for (shard, stem) in manifest.shards.enumerated() {
            let indices = (shard * shardSize)..<min(count, (shard + 1) * shardSize)
            let tensors = folder.appendingPathComponent(stem + ".safetensors"), lines = folder.appendingPathComponent(stem + ".jsonl")
            if resume, FileManager.default.fileExists(atPath: lines.path),
               let file = try? SafeTensorsFile(contentsOf: tensors), file.contains("images"),
               (try? file.info("images").shape.first) == indices.count {
                continue  // finished before the interruption (the .jsonl is written after the tensors)
            }
            let contents = ToyDataset.renderShard(seed: seed, indices: indices, size: size, options: options)
            try ToyDataset.encode(contents, size: size).write(to: tensors)
            try FileIO.writeAtomically(ToyDataset.jsonLines(contents.records), to: lines)
            if meshes {
                for i in indices {
                    try MeshExport.write(ToySample(seed: seed, index: i, options: options).mesh,
                                         to: folder.appendingPathComponent(String(format: "meshes/sample_%07d.glb", i)), format: .glb)
                }
            }
            rendered += indices.count
            print("  \(stem): samples \(indices.lowerBound)…\(indices.upperBound - 1)")
        }
        // A preview of the first samples, captions as labels.
        let shown = (0..<min(count, 16)).map { ToySample(seed: seed, index: $0, options: options) }
        let previews = shown.map { $0.render(size: size).resized(width: max(size, 128), height: max(size, 128)) }
        try PNG.write(Image.contactSheet(previews, columns: 4, labels: shown.map(\.caption)), to: folder.appendingPathComponent("preview.png"),
                      metadata: KilnMetadata(command: "dataset", seed: seed, settings: manifest))
        try writeJSON(manifest, to: folder.appendingPathComponent("dataset.json"))
        try? FileManager.default.removeItem(at: partial)
        print(String(format: "wrote %d samples in %d shards to %@ (%d rendered now, %.1f s)", count, manifest.shards.count, output.out, rendered,
                     (clock.now - start).seconds))
    }
}
