import Foundation
import KilnNN

/// The weights of one component folder of a diffusers pipeline (`unet/`, `vae/`, `text_encoder/`),
/// opened: one safetensors file, or every shard a safetensors index lists, looked up by tensor name.
///
/// ## Which files
/// The names diffusers 0.42 and transformers 5 write (`save_pretrained(dir, variant:, max_shard_size:)`),
/// with `<base>` = `diffusion_pytorch_model` (diffusers models) or `model` (transformers models):
/// - one file: `<base>.safetensors`, or a variant `<base>.<variant>.safetensors` (`variant="fp16"`);
/// - shards: an index `<base>.safetensors.index.json`, or for a variant
///   `<base>.safetensors.index.<variant>.json` (and diffusers' legacy
///   `<base>.safetensors.<variant>.index.json`), holding `{"metadata": {…}, "weight_map": {tensor: shard}}`;
///   shards are plain file names in the same folder (`<base>-00001-of-00002.safetensors`,
///   `<base>.fp16-00001-of-00002.safetensors`).
///
/// ## Which variant
/// An explicit `variant` is used or refused by name. Otherwise: the plain files (no variant) when
/// present; else the only variant present; else `fp16` when it is one of several (Stable Diffusion
/// repositories ship `fp16` beside `non_ema` or `ema` weights, and `fp16` is what they are run with);
/// else an error listing the variants, so the caller picks one. Within one variant an index wins
/// over a single file, as in diffusers' `from_pretrained`.
///
/// ## What is refused
/// Pickled PyTorch weights (`*.bin`, `*.bin.index.json`), with the command that converts them; an
/// index that is not JSON or has no `weight_map`; a shard named with a path (`../x`, `/abs`,
/// `sub/x`: shards live beside their index); a missing shard; a shard without a tensor the index
/// promises; a tensor stored in two shards. Tensors load as F32, F16 or BF16 (`SafeTensorsFile`).
public final class ComponentWeights {
    /// Which library saved the folder: it fixes the file names.
    public enum Library: Sendable {
        /// diffusers models (`UNet2DConditionModel`, `AutoencoderKL`): `diffusion_pytorch_model.*`.
        case diffusers
        /// transformers models (`CLIPTextModel`): `model.*`, pickles as `pytorch_model.*`.
        case transformers

        /// The base name of the safetensors files.
        public var baseName: String { self == .diffusers ? "diffusion_pytorch_model" : "model" }
        /// The base name of the pickled files.
        public var pickleBaseName: String { self == .diffusers ? "diffusion_pytorch_model" : "pytorch_model" }
    }

    /// Where a folder's weights are, before opening anything.
    public struct Location: Sendable, Equatable {
        /// The variant chosen (`"fp16"`), nil for the plain files.
        public var variant: String?
        /// The single safetensors file, or the shard index.
        public var url: URL
        /// Whether `url` is an index.
        public var isIndex: Bool
    }

    /// What was opened.
    public let location: Location
    /// The files read: one, or the shards in name order.
    public let files: [SafeTensorsFile]
    /// Every tensor name over all files, sorted by UTF-8 bytes.
    public let names: [String]
    /// The file or index path; errors about the whole set name it.
    public var source: String { location.url.path }

    private let fileOfTensor: [String: Int]

    // MARK: Opening

    /// Finds and opens a component folder's weights (see the type's rules).
    /// - Parameters:
    ///   - folder: the component folder (`…/unet`).
    ///   - library: which naming the folder follows.
    ///   - variant: the variant to load (`"fp16"`); nil chooses as described above.
    /// - Throws: `ComponentWeightsError` for missing, pickled, ambiguous or inconsistent files;
    ///   `SafeTensorsError` for a malformed safetensors file.
    public convenience init(folder: URL, library: Library, variant: String? = nil) throws {
        let location = try Self.locate(in: folder, library: library, variant: variant)
        guard location.isIndex else {
            try self.init(location: location, files: [SafeTensorsFile(contentsOf: location.url)])
            return
        }
        let (weightMap, shardNames) = try Self.readIndex(location.url)
        var files: [SafeTensorsFile] = []
        for shard in shardNames {
            let url = folder.appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw ComponentWeightsError.missingShard(index: location.url.path, shard: shard)
            }
            files.append(try SafeTensorsFile(contentsOf: url))
        }
        try self.init(location: location, files: files)
        for (tensor, shard) in weightMap.sorted(by: { $0.key < $1.key }) {
            let file = files[shardNames.firstIndex(of: shard)!]
            guard file.contains(tensor) else {
                throw ComponentWeightsError.tensorMissingFromShard(index: location.url.path, tensor: tensor, shard: shard)
            }
        }
    }

    /// One file already open (a checkpoint outside a pipeline folder).
    public convenience init(_ file: SafeTensorsFile) {
        // One file cannot hold a name twice (its header parser refuses duplicates).
        try! self.init(location: Location(variant: nil, url: URL(fileURLWithPath: file.source), isIndex: false), files: [file])
    }

    private init(location: Location, files: [SafeTensorsFile]) throws {
        var owner: [String: Int] = [:]
        for (i, file) in files.enumerated() {
            for name in file.names {
                if let first = owner[name] {
                    throw ComponentWeightsError.tensorInTwoShards(index: location.url.path, tensor: name,
                                                                  first: files[first].source, second: file.source)
                }
                owner[name] = i
            }
        }
        self.location = location
        self.files = files
        self.fileOfTensor = owner
        self.names = owner.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    // MARK: Lookup

    /// Whether any file holds a tensor of this name.
    public func contains(_ name: String) -> Bool { fileOfTensor[name] != nil }

    /// A tensor's elements as `Float`, after checking its shape.
    /// - Throws: `SafeTensorsError.tensorNotFound` (with similar names over all files),
    ///   `.shapeMismatch` or a decoding error, naming the file that holds it.
    public func expect(_ name: String, shape: [Int]) throws -> [Float] {
        guard let i = fileOfTensor[name] else {
            throw SafeTensorsError.tensorNotFound(source: source, name: name,
                                                  closeNames: SafeTensorsFile.closeNames(to: name, among: names))
        }
        return try files[i].expect(name, shape: shape)
    }

    /// Loads tensor `name` into `parameter`: F16 and BF16 stay 16-bit in memory (widened exactly
    /// each time a layer reads them, half the memory of `Float`; see `Parameter`), other dtypes
    /// are converted to `Float`.
    /// - Throws: as `expect`.
    public func load(_ name: String, into parameter: Parameter) throws {
        guard let i = fileOfTensor[name] else {
            throw SafeTensorsError.tensorNotFound(source: source, name: name,
                                                  closeNames: SafeTensorsFile.closeNames(to: name, among: names))
        }
        if let half = try files[i].expectHalf(name, shape: parameter.shape) {
            parameter.loadHalf(half, name: name)
        } else {
            parameter.load(Tensor(shape: parameter.shape, storage: try files[i].expect(name, shape: parameter.shape)), name: name)
        }
    }

    // MARK: Finding

    /// Chooses the weight files of a component folder without opening them.
    /// - Throws: `ComponentWeightsError` when there are none, only pickled ones, the requested
    ///   variant is absent, or several variants and none is `fp16`.
    public static func locate(in folder: URL, library: Library, variant: String? = nil) throws -> Location {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        var found: [String?: Location] = [:]
        for name in entries.sorted() {
            guard let (v, isIndex) = parse(name, base: library.baseName) else { continue }
            let location = Location(variant: v, url: folder.appendingPathComponent(name), isIndex: isIndex)
            if found[v] == nil || isIndex { found[v] = location }  // an index wins over a single file
        }
        let variants = found.keys.compactMap { $0 }.sorted()
        let chosen: String??
        if let variant {
            chosen = found[variant] != nil ? .some(variant) : nil
        } else if found[nil] != nil {
            chosen = .some(nil)
        } else if variants.count == 1 {
            chosen = .some(variants[0])
        } else if variants.contains("fp16") {
            chosen = .some("fp16")
        } else if variants.count > 1 {
            throw ComponentWeightsError.severalVariants(folder: folder.path, variants: variants)
        } else {
            chosen = nil
        }
        if let chosen, let location = found[chosen] { return location }
        if found.isEmpty, let pickle = entries.filter({ isPickle($0, base: library.pickleBaseName) }).sorted().first {
            throw ComponentWeightsError.pickled(file: folder.appendingPathComponent(pickle).path, library: library)
        }
        if let variant {
            throw ComponentWeightsError.variantNotFound(folder: folder.path, variant: variant,
                                                        available: (found[nil] != nil ? ["(none)"] : []) + variants)
        }
        throw ComponentWeightsError.noWeights(folder: folder.path, baseName: library.baseName)
    }

    /// The variant and kind of a safetensors weight file or index name, nil for any other name
    /// (shards included: they are reached through their index).
    static func parse(_ name: String, base: String) -> (variant: String?, isIndex: Bool)? {
        guard name.hasPrefix(base + ".") else { return nil }
        let rest = String(name.dropFirst(base.count + 1))
        func isVariant(_ s: Substring) -> Bool {
            !s.isEmpty && !s.contains(".") && !s.contains("/") && !isShardSuffix(s)
        }
        if rest == "safetensors" { return (nil, false) }
        if rest == "safetensors.index.json" { return (nil, true) }
        if rest.hasSuffix(".safetensors") {
            let v = rest.dropLast(".safetensors".count)
            return isVariant(v) ? (String(v), false) : nil
        }
        if rest.hasPrefix("safetensors.index."), rest.hasSuffix(".json") {
            let v = rest.dropFirst("safetensors.index.".count).dropLast(".json".count)
            return isVariant(v) ? (String(v), true) : nil
        }
        if rest.hasPrefix("safetensors."), rest.hasSuffix(".index.json") {  // diffusers' legacy variant index
            let v = rest.dropFirst("safetensors.".count).dropLast(".index.json".count)
            return isVariant(v) ? (String(v), true) : nil
        }
        return nil
    }

    /// `fp16-00001-of-00002`: a shard of the `fp16` variant, not a variant.
    private static func isShardSuffix(_ s: Substring) -> Bool {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4 else { return false }
        let tail = parts.suffix(3)
        return tail[tail.startIndex + 1] == "of" && [tail.first!, tail.last!].allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    /// A pickled weight file or index of this base name (`pytorch_model.bin`, `….fp16.bin`, shards, `….bin.index.json`).
    private static func isPickle(_ name: String, base: String) -> Bool {
        (name.hasPrefix(base + ".") || name.hasPrefix(base + "-")) && (name.hasSuffix(".bin") || name.contains(".bin.index"))
    }

    /// The index's tensor → shard map and its distinct shards, sorted.
    static func readIndex(_ url: URL) throws -> (weightMap: [String: String], shards: [String]) {
        let path = url.path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ComponentWeightsError.invalidIndex(index: path, reason: "cannot be read")
        }
        guard case .object(let object)? = try? JSONDecoder().decode(ConfigValue.self, from: data) else {
            throw ComponentWeightsError.invalidIndex(index: path, reason: "is not a JSON object")
        }
        guard case .object(let entries)? = object["weight_map"] else {
            throw ComponentWeightsError.invalidIndex(index: path, reason: "has no \"weight_map\" object {tensor name: shard file}")
        }
        var weightMap: [String: String] = [:]
        for (tensor, value) in entries {
            guard case .string(let shard) = value else {
                throw ComponentWeightsError.invalidIndex(index: path, reason: "weight_map[\"\(tensor)\"] is \(value.kindName), not a file name")
            }
            // As diffusers and transformers: a shard is a plain file name beside the index.
            guard !shard.isEmpty, shard != ".", shard != "..", !shard.contains("/"), !shard.contains("\\") else {
                throw ComponentWeightsError.shardOutsideFolder(index: path, shard: shard)
            }
            weightMap[tensor] = shard
        }
        guard !weightMap.isEmpty else {
            throw ComponentWeightsError.invalidIndex(index: path, reason: "has an empty \"weight_map\"")
        }
        return (weightMap, Set(weightMap.values).sorted())
    }
}

// MARK: - Errors

/// Why a component folder's weights could not be found or opened; every case names the file.
public enum ComponentWeightsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No safetensors weights (nor pickled ones) in the folder.
    case noWeights(folder: String, baseName: String)
    /// Only pickled PyTorch weights: Kiln does not unpickle (it would run arbitrary code).
    case pickled(file: String, library: ComponentWeights.Library)
    /// The requested variant is not in the folder (`available` lists what is, `(none)` for the plain files).
    case variantNotFound(folder: String, variant: String, available: [String])
    /// Several variants, no plain files, and no `fp16` among them.
    case severalVariants(folder: String, variants: [String])
    /// The index is not JSON or lacks a usable `weight_map`.
    case invalidIndex(index: String, reason: String)
    /// The index names a shard outside the folder (a path, not a file name).
    case shardOutsideFolder(index: String, shard: String)
    /// The index names a shard that is not in the folder.
    case missingShard(index: String, shard: String)
    /// The index promises a tensor in a shard that does not hold it.
    case tensorMissingFromShard(index: String, tensor: String, shard: String)
    /// Two shards hold a tensor of the same name.
    case tensorInTwoShards(index: String, tensor: String, first: String, second: String)

    public var description: String {
        switch self {
        case .noWeights(let folder, let base):
            return "\(folder): no weights: expected \(base).safetensors, a variant such as \(base).fp16.safetensors, "
                + "or a sharded \(base).safetensors.index.json; point Kiln at a diffusers pipeline folder saved with safetensors"
        case .pickled(let file, let library):
            let folder = (file as NSString).deletingLastPathComponent
            let target = (folder as NSString).appendingPathComponent(library.baseName + ".safetensors")
            return "\(file): pickled PyTorch weights, which Kiln does not load (unpickling runs arbitrary code); convert them "
                + "to safetensors once, e.g. `python3 -c \"import torch, safetensors.torch as st; "
                + "st.save_file(torch.load('\(file)', map_location='cpu'), '\(target)')\"` for one file, or for a whole "
                + "pipeline `python3 -c \"from diffusers import DiffusionPipeline as P; "
                + "P.from_pretrained('PIPELINE').save_pretrained('PIPELINE', safe_serialization=True)\"`"
        case .variantNotFound(let folder, let variant, let available):
            let have = available.isEmpty ? "none" : available.joined(separator: ", ")
            return "\(folder): no weights of variant \"\(variant)\" (available: \(have)); pick one of those"
        case .severalVariants(let folder, let variants):
            return "\(folder): weights of several variants (\(variants.joined(separator: ", "))) and no plain or fp16 "
                + "files; pass the variant to load"
        case .invalidIndex(let index, let reason):
            return "\(index): \(reason); re-save the model with save_pretrained (safe_serialization=True)"
        case .shardOutsideFolder(let index, let shard):
            return "\(index): the weight_map names the shard \"\(shard)\", which is not a file name in this folder; "
                + "shards must sit beside their index"
        case .missingShard(let index, let shard):
            return "\(index): the shard \"\(shard)\" it lists is not in the folder; download or copy every shard"
        case .tensorMissingFromShard(let index, let tensor, let shard):
            return "\(index): the weight_map puts `\(tensor)` in \"\(shard)\", which does not hold it; the index and "
                + "shards come from different saves: re-download them together"
        case .tensorInTwoShards(let index, let tensor, let first, let second):
            return "\(index): `\(tensor)` is stored in both \(first) and \(second); the shards come from different "
                + "saves: re-download them together"
        }
    }
}
