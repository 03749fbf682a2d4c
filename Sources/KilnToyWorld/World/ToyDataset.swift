import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// The toy world as a training set: shards of rendered samples with their captions and views.
///
/// Layout of a data-set folder (written by `kiln dataset`):
///
///     dataset.json            ToyDatasetManifest (written last: its presence means complete)
///     shard_00000.safetensors "images": U8 [n, 3, H, W] (display RGB, 0–255);
///                             "views": F32 [n, 8] (ViewConditioning vectors)
///     shard_00000.jsonl       one ToyRecord per line, in image order
///
/// Sample i is `ToySample(seed: seed, index: i)`, so any sample (and its ground-truth mesh) can be
/// rebuilt from the manifest alone, and shards are identical whatever the thread count.
public enum ToyDataset {
    public static let format = "kiln-toy-dataset-v1"

    public static func shardStem(_ shard: Int) -> String { String(format: "shard_%05d", shard) }

    /// One shard's contents.
    public struct Shard: Sendable {
        /// `[n, 3, size, size]` values 0–255 (integers).
        public var images: [Float]
        /// `[n, 8]` view vectors.
        public var views: [Float]
        public var records: [ToyRecord]
    }

    /// Renders samples `indices` of the data set with `seed` at `size`×`size`, samples in parallel.
    public static func renderShard(seed: UInt64, indices: Range<Int>, size: Int, options: ToySample.Options = .init(),
                                   threads: Int = Parallel.defaultThreadCount) -> Shard {
        let n = indices.count, plane = size * size
        var images = [Float](repeating: 0, count: n * 3 * plane)
        let samples = indices.map { ToySample(seed: seed, index: $0, options: options) }
        images.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let out = buffer.baseAddress!
            parallelFor(n, threads: threads) { range in
                for j in range { samples[j].renderData(size: size, into: out + j * 3 * plane) }
            }
        }
        let records = zip(indices, samples).map { ToyRecord(index: $0, sample: $1) }
        return Shard(images: images, views: samples.flatMap(\.view.vector), records: records)
    }

    /// The shard as safetensors bytes.
    public static func encode(_ shard: Shard, size: Int) throws -> SafeTensorsWriter {
        var writer = SafeTensorsWriter(metadata: ["format": format])
        try writer.add("images", shape: [shard.records.count, 3, size, size], values: shard.images, dtype: .u8)
        try writer.add("views", shape: [shard.records.count, ViewConditioning.length], values: shard.views)
        return writer
    }

    /// JSON lines for the shard's records.
    public static func jsonLines(_ records: [ToyRecord]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for record in records {
            data.append(try encoder.encode(record))
            data.append(0x0A)
        }
        return data
    }
}

/// What `dataset.json` records.
public struct ToyDatasetManifest: Codable, Sendable, Equatable {
    public var format: String
    public var seed: UInt64
    public var count: Int
    public var size: Int
    public var shardSize: Int
    public var shards: [String]
    public var vocabulary: [String]
    public var options: ToySample.Options

    public init(seed: UInt64, count: Int, size: Int, shardSize: Int, options: ToySample.Options) {
        format = ToyDataset.format
        self.seed = seed
        self.count = count
        self.size = size
        self.shardSize = shardSize
        shards = (0..<((count + shardSize - 1) / shardSize)).map(ToyDataset.shardStem)
        vocabulary = ToySample.vocabulary
        self.options = options
    }
}

/// One sample's line in a shard's `.jsonl`.
public struct ToyRecord: Codable, Sendable, Equatable {
    public var index: Int
    public var caption: String
    public var kind: ToyKind
    public var mainColor: ToyColor
    public var secondColor: ToyColor
    public var motion: ToyMotion?
    public var time: Float?
    public var azimuthDegrees: Float
    public var elevationDegrees: Float

    public init(index: Int, sample: ToySample) {
        self.index = index
        caption = sample.caption
        kind = sample.kind
        mainColor = sample.mainColor
        secondColor = sample.secondColor
        motion = sample.motion
        time = sample.time
        azimuthDegrees = sample.azimuthDegrees
        elevationDegrees = sample.elevationDegrees
    }
}
