import Foundation
import KilnAsset
import KilnCore
import KilnNN
import KilnToyWorld

/// `kiln dataset`: toy-world samples rendered into safetensors shards with JSON-lines captions,
/// resumable shard by shard, with a preview sheet and the manifest (dataset.json).
public struct ToyDatasetJob {
    public var folder: URL
    public var seed: UInt64
    public var count: Int
    public var size: Int
    public var shardSize: Int
    public var motionProbability = ToySample.Options().motionProbability
    public var resume = false
    /// Also write each sample's mesh (meshes/sample_NNNNNNN.glb).
    public var meshes = false
    public var force = false

    public init(folder: URL, seed: UInt64, count: Int, size: Int, shardSize: Int) {
        (self.folder, self.seed, self.count, self.size, self.shardSize) = (folder, seed, count, size, shardSize)
    }

    /// Renders the shards not yet written, then the preview and dataset.json.
    public func run() throws {
        var options = ToySample.Options()
        options.motionProbability = motionProbability
        let manifest = ToyDatasetManifest(seed: seed, count: count, size: size, shardSize: shardSize, options: options)
        let partial = folder.appendingPathComponent("dataset.partial.json")
        if resume {
            guard let data = FileManager.default.contents(atPath: partial.path),
                  let previous = try? JSONDecoder().decode(ToyDatasetManifest.self, from: data) else {
                throw RunError("--resume: \(partial.path) is missing or unreadable; start a new run without --resume")
            }
            guard previous == manifest else {
                throw RunError("--resume: the run in \(folder.relativePath) used other settings (seed \(previous.seed), count \(previous.count), size \(previous.size), shard size \(previous.shardSize)); repeat them or start a new folder")
            }
        } else {
            try OutputFolder.prepare(folder, force: force)
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
        print(String(format: "wrote %d samples in %d shards to %@ (%d rendered now, %.1f s)", count, manifest.shards.count, folder.relativePath, rendered,
                     (clock.now - start).seconds))
    }
}
