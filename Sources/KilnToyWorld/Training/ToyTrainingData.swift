import Foundation
import KilnNN
import KilnPrior

/// A `kiln dataset` folder loaded for training: every shard's images (kept as bytes), view
/// vectors and captions in memory.
public struct ToyTrainingData: PriorTrainingData, Sendable {
    public let manifest: ToyDatasetManifest
    /// `[count, 3, size, size]` display RGB, 0–255.
    public let images: [UInt8]
    /// `[count, 8]`.
    public let views: [Float]
    public let captions: [String]
    /// Every sample's record (kind, colours, motion, camera), in image order.
    public let records: [ToyRecord]

    public var count: Int { captions.count }
    public var size: Int { manifest.size }
    public var vocabulary: [String]? { manifest.vocabulary }

    /// Loads `folder` (it must hold `dataset.json`: a finished run).
    /// - Throws: `PriorConfigError` or `SafeTensorsError` naming the file.
    public init(folder: URL) throws {
        let manifestURL = folder.appendingPathComponent("dataset.json")
        guard let data = FileManager.default.contents(atPath: manifestURL.path) else {
            throw PriorConfigError(source: manifestURL.path, key: nil, problem: "is missing",
                                   fix: "point --data at a folder `kiln dataset` finished (or finish it with --resume)")
        }
        let manifest: ToyDatasetManifest
        do { manifest = try JSONDecoder().decode(ToyDatasetManifest.self, from: data) } catch {
            throw PriorConfigError(source: manifestURL.path, key: nil, problem: "is not a data-set manifest (\(error))", fix: "rewrite it with kiln dataset")
        }
        guard manifest.format == ToyDataset.format else {
            throw PriorConfigError(source: manifestURL.path, key: "format", problem: "is \(manifest.format)", fix: "use a \(ToyDataset.format) folder")
        }
        var images: [UInt8] = [], views: [Float] = [], records: [ToyRecord] = []
        let plane = 3 * manifest.size * manifest.size
        images.reserveCapacity(manifest.count * plane)
        for stem in manifest.shards {
            let file = try SafeTensorsFile(contentsOf: folder.appendingPathComponent(stem + ".safetensors"))
            let info = try file.info("images"), shape = info.shape
            guard info.dtype == .u8, shape.count == 4, shape[1] == 3, shape[2] == manifest.size, shape[3] == manifest.size else {
                throw PriorConfigError(source: stem + ".safetensors", key: "images", problem: "is \(info.dtype) \(shape)",
                                       fix: "regenerate the data set")
            }
            images += try file.rawBytes("images")  // U8: the bytes are the samples
            views += try file.expect("views", shape: [shape[0], ViewConditioning.length])
            let linesURL = folder.appendingPathComponent(stem + ".jsonl")
            guard let text = FileManager.default.contents(atPath: linesURL.path) else {
                throw PriorConfigError(source: linesURL.path, key: nil, problem: "is missing", fix: "finish the data set with kiln dataset --resume")
            }
            let shardRecords = try text.split(separator: 0x0A).map { try JSONDecoder().decode(ToyRecord.self, from: Data($0)) }
            guard shardRecords.count == shape[0] else {
                throw PriorConfigError(source: linesURL.path, key: nil, problem: "has \(shardRecords.count) records for \(shape[0]) images",
                                       fix: "regenerate the shard")
            }
            records += shardRecords
        }
        guard records.count == manifest.count else {
            throw PriorConfigError(source: manifestURL.path, key: "count", problem: "says \(manifest.count) samples, the shards hold \(records.count)",
                                   fix: "regenerate the data set")
        }
        (self.manifest, self.images, self.views, self.records, self.captions) = (manifest, images, views, records, records.map(\.caption))
    }
}
