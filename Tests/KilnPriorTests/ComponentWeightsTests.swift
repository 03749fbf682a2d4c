import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

/// Component folders re-saved in every layout diffusers and transformers write (variants, shards,
/// F16 and BF16), from the tiny fixtures; all must load the same weights.
@Suite("Component weight files")
struct ComponentWeightsTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// A tiny component: where its fixture folder is, how it is named, how to load it.
    struct Component: CustomStringConvertible, Sendable {
        var name: String
        var fixture: String
        var library: ComponentWeights.Library
        var load: @Sendable (URL, String?) throws -> any Module
        var description: String { name }
        var fixtureFolder: URL { ComponentWeightsTests.fixtures.appendingPathComponent(fixture) }
        var weightsFile: URL { fixtureFolder.appendingPathComponent(library.baseName + ".safetensors") }
    }

    static let components = [
        Component(name: "UNet", fixture: "pipelines/tiny/unet", library: .diffusers) { try UNet2DConditionModel(folder: $0, variant: $1) },
        Component(name: "VAE", fixture: "vae/tiny/vae", library: .diffusers) { try AutoencoderKL(folder: $0, variant: $1) },
        Component(name: "CLIPTextModel", fixture: "pipelines/tiny/text_encoder", library: .transformers) { try CLIPTextModel(folder: $0, variant: $1) },
    ]

    /// A fresh temporary folder; the caller removes it.
    static func temporaryFolder() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("kiln-weights-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A component folder holding the fixture's config.json and nothing else.
    static func folder(for component: Component) throws -> URL {
        let url = try temporaryFolder()
        try FileManager.default.copyItem(at: component.fixtureFolder.appendingPathComponent("config.json"),
                                         to: url.appendingPathComponent("config.json"))
        return url
    }

    /// Writes `names` of `source` to one file, stored as `dtype`.
    static func write(_ names: [String], of source: SafeTensorsFile, to url: URL, dtype: SafeTensorsDType = .f32) throws {
        var writer = SafeTensorsWriter()
        for name in names {
            let (shape, values) = try source.tensor(name)
            try writer.add(name, shape: shape, values: values, dtype: dtype)
        }
        try writer.write(to: url)
    }

    /// Writes an index `{"metadata", "weight_map"}` as save_pretrained does.
    static func writeIndex(_ weightMap: [String: String], to url: URL) throws {
        let object: [String: Any] = ["metadata": ["total_size": 0], "weight_map": weightMap]
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: url)
    }

    /// Splits the fixture's tensors into two shards named as diffusers/transformers name them and
    /// writes them with their index; returns the weight map.
    @discardableResult
    static func writeShards(of component: Component, into folder: URL, variant: String? = nil,
                            dtype: SafeTensorsDType = .f32) throws -> [String: String] {
        let source = try SafeTensorsFile(contentsOf: component.weightsFile)
        let base = component.library.baseName + (variant.map { ".\($0)" } ?? "")
        let shards = ["\(base)-00001-of-00002.safetensors", "\(base)-00002-of-00002.safetensors"]
        let half = source.names.count / 2
        let parts = [Array(source.names[..<half]), Array(source.names[half...])]
        var weightMap: [String: String] = [:]
        for (shard, names) in zip(shards, parts) {
            try write(names, of: source, to: folder.appendingPathComponent(shard), dtype: dtype)
            for name in names { weightMap[name] = shard }
        }
        let index = component.library.baseName + ".safetensors.index" + (variant.map { ".\($0)" } ?? "") + ".json"
        try writeIndex(weightMap, to: folder.appendingPathComponent(index))
        return weightMap
    }

    static func values(_ model: any Module) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.parameter.value.storage) })
    }

    // MARK: Layouts

    @Test("plain, variant-only, sharded and sharded-variant folders load identical weights", arguments: components)
    func layoutsAgree(component: Component) throws {
        let reference = Self.values(try component.load(component.fixtureFolder, nil))
        let source = try SafeTensorsFile(contentsOf: component.weightsFile)
        let base = component.library.baseName

        let variantOnly = try Self.folder(for: component)
        defer { try? FileManager.default.removeItem(at: variantOnly) }
        try Self.write(source.names, of: source, to: variantOnly.appendingPathComponent("\(base).fp16.safetensors"))
        #expect(Self.values(try component.load(variantOnly, nil)) == reference, "variant only")
        #expect(Self.values(try component.load(variantOnly, "fp16")) == reference, "explicit variant")

        let sharded = try Self.folder(for: component)
        defer { try? FileManager.default.removeItem(at: sharded) }
        try Self.writeShards(of: component, into: sharded)
        let weights = try ComponentWeights(folder: sharded, library: component.library)
        #expect(weights.files.count == 2 && weights.location.isIndex && weights.names == source.names)
        #expect(Self.values(try component.load(sharded, nil)) == reference, "sharded")

        let shardedVariant = try Self.folder(for: component)
        defer { try? FileManager.default.removeItem(at: shardedVariant) }
        try Self.writeShards(of: component, into: shardedVariant, variant: "fp16")
        #expect(try ComponentWeights.locate(in: shardedVariant, library: component.library).variant == "fp16")
        #expect(Self.values(try component.load(shardedVariant, nil)) == reference, "sharded variant")
    }

    @Test("F16 and BF16 weights load as the files decode them", arguments: components)
    func halfPrecision(component: Component) throws {
        let source = try SafeTensorsFile(contentsOf: component.weightsFile)
        let folder = try Self.folder(for: component)
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = component.library.baseName
        try Self.write(source.names, of: source, to: folder.appendingPathComponent("\(base).fp16.safetensors"), dtype: .f16)
        try Self.writeShards(of: component, into: folder, variant: "bf16", dtype: .bf16)
        for (variant, dtype) in [("fp16", SafeTensorsDType.f16), ("bf16", .bf16)] {
            let weights = try ComponentWeights(folder: folder, library: component.library, variant: variant)
            let loaded = Self.values(try component.load(folder, variant))
            var rounded = 0
            for (name, values) in loaded {
                let stored = weights.names.contains(name) ? name : "text_model." + name
                let file = weights.files.first { $0.contains(stored) }!
                #expect(try file.info(stored).dtype == dtype)
                #expect(values == (try file.tensor(stored).values), "\(variant) \(name)")
                if values != (try source.tensor(stored).values) { rounded += 1 }
            }
            // The fixtures are stored as F16, so only BF16 (7 mantissa bits, not 10) rounds them.
            if dtype == .bf16 { #expect(rounded > 0, "\(variant): the weights went through \(dtype)") }
        }
    }

    @Test("a tensor in a shard that no parameter takes is reported, as in one file")
    func extraTensorAcrossShards() throws {
        let vae = Self.components[1]
        let folder = try Self.folder(for: vae)
        defer { try? FileManager.default.removeItem(at: folder) }
        var weightMap = try Self.writeShards(of: vae, into: folder)
        var writer = SafeTensorsWriter()
        try writer.add("decoder.extra.weight", shape: [2], values: [1, 2])
        try writer.write(to: folder.appendingPathComponent("diffusion_pytorch_model-00003-of-00003.safetensors"))
        weightMap["decoder.extra.weight"] = "diffusion_pytorch_model-00003-of-00003.safetensors"
        try Self.writeIndex(weightMap, to: folder.appendingPathComponent("diffusion_pytorch_model.safetensors.index.json"))
        #expect {
            try AutoencoderKL(folder: folder)
        } throws: { error in
            guard let e = error as? PriorConfigError else { return false }
            return e.source.hasSuffix("diffusion_pytorch_model.safetensors.index.json") && e.problem.contains("decoder.extra.weight")
        }
    }

    // MARK: Choosing files

    /// Creates empty files with these names (`locate` opens nothing).
    static func folder(with names: [String]) throws -> URL {
        let url = try temporaryFolder()
        for name in names { FileManager.default.createFile(atPath: url.appendingPathComponent(name).path, contents: Data()) }
        return url
    }

    static func locate(_ names: [String], library: ComponentWeights.Library = .diffusers, variant: String? = nil) throws -> String {
        let folder = try folder(with: names)
        defer { try? FileManager.default.removeItem(at: folder) }
        return try ComponentWeights.locate(in: folder, library: library, variant: variant).url.lastPathComponent
    }

    static func locateError(_ names: [String], library: ComponentWeights.Library = .diffusers, variant: String? = nil) throws -> ComponentWeightsError? {
        let folder = try folder(with: names)
        defer { try? FileManager.default.removeItem(at: folder) }
        do {
            _ = try ComponentWeights.locate(in: folder, library: library, variant: variant)
            return nil
        } catch let e as ComponentWeightsError {
            switch e {  // paths differ per run: keep the file names
            case .noWeights(_, let base): return .noWeights(folder: "", baseName: base)
            case .pickled(let file, let library): return .pickled(file: (file as NSString).lastPathComponent, library: library)
            case .variantNotFound(_, let v, let available): return .variantNotFound(folder: "", variant: v, available: available)
            case .severalVariants(_, let variants): return .severalVariants(folder: "", variants: variants)
            default: return e
            }
        }
    }

    @Test func choiceRule() throws {
        let d = "diffusion_pytorch_model"
        // The plain file first, whatever else is there (SD 1.5's unet/ ships all of these).
        #expect(try Self.locate(["\(d).safetensors", "\(d).fp16.safetensors", "\(d).non_ema.safetensors", "\(d).bin"]) == "\(d).safetensors")
        // One variant alone; fp16 among several.
        #expect(try Self.locate(["\(d).non_ema.safetensors"]) == "\(d).non_ema.safetensors")
        #expect(try Self.locate(["\(d).fp16.safetensors", "\(d).non_ema.safetensors"]) == "\(d).fp16.safetensors")
        #expect(try Self.locateError(["\(d).ema.safetensors", "\(d).non_ema.safetensors"])
                == .severalVariants(folder: "", variants: ["ema", "non_ema"]))
        // An explicit variant is taken or refused by name.
        #expect(try Self.locate(["\(d).safetensors", "\(d).fp16.safetensors"], variant: "fp16") == "\(d).fp16.safetensors")
        #expect(try Self.locateError(["\(d).safetensors"], variant: "fp16")
                == .variantNotFound(folder: "", variant: "fp16", available: ["(none)"]))
        // Indexes: current and legacy variant names; an index wins over a single file of its variant.
        #expect(try Self.locate(["\(d).safetensors", "\(d).safetensors.index.json"]) == "\(d).safetensors.index.json")
        #expect(try Self.locate(["\(d).safetensors.index.fp16.json", "\(d).fp16-00001-of-00002.safetensors",
                                 "\(d).fp16-00002-of-00002.safetensors"]) == "\(d).safetensors.index.fp16.json")
        #expect(try Self.locate(["\(d).safetensors.fp16.index.json"]) == "\(d).safetensors.fp16.index.json")
        // Shards without their index are not weights; transformers' names are model.*.
        #expect(try Self.locateError(["\(d)-00001-of-00002.safetensors"]) == .noWeights(folder: "", baseName: d))
        #expect(try Self.locate(["model.safetensors", "\(d).safetensors"], library: .transformers) == "model.safetensors")
        #expect(try Self.locateError([]) == .noWeights(folder: "", baseName: d))
    }

    @Test func pickledWeightsAreRefusedWithTheConversion() throws {
        let d = "diffusion_pytorch_model"
        #expect(try Self.locateError(["\(d).bin"]) == .pickled(file: "\(d).bin", library: .diffusers))
        #expect(try Self.locateError(["\(d).fp16.bin"]) == .pickled(file: "\(d).fp16.bin", library: .diffusers))
        #expect(try Self.locateError(["pytorch_model.bin"], library: .transformers) == .pickled(file: "pytorch_model.bin", library: .transformers))
        #expect(try Self.locateError(["pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin"], library: .transformers)
                == .pickled(file: "pytorch_model-00001-of-00002.bin", library: .transformers))
        let message = ComponentWeightsError.pickled(file: "/p/unet/\(d).bin", library: .diffusers).description
        #expect(message.contains("/p/unet/\(d).bin") && message.contains("st.save_file(torch.load('/p/unet/\(d).bin'")
                && message.contains("'/p/unet/\(d).safetensors'") && message.contains("safe_serialization=True"))
        // Through a model's loader too.
        let folder = try Self.folder(for: Self.components[2])
        defer { try? FileManager.default.removeItem(at: folder) }
        FileManager.default.createFile(atPath: folder.appendingPathComponent("pytorch_model.bin").path, contents: Data())
        #expect(throws: ComponentWeightsError.pickled(file: folder.appendingPathComponent("pytorch_model.bin").path, library: .transformers)) {
            try CLIPTextModel(folder: folder)
        }
    }

    // MARK: Broken indexes

    /// Writes the VAE's shards, lets `damage` change the folder, and returns what opening throws.
    static func brokenIndexError(_ damage: (URL, inout [String: String]) throws -> Void) throws -> ComponentWeightsError? {
        let folder = try Self.folder(for: components[1])
        defer { try? FileManager.default.removeItem(at: folder) }
        var weightMap = try writeShards(of: components[1], into: folder)
        try damage(folder, &weightMap)
        let index = folder.appendingPathComponent("diffusion_pytorch_model.safetensors.index.json")
        if !weightMap.isEmpty { try writeIndex(weightMap, to: index) }
        do {
            _ = try ComponentWeights(folder: folder, library: .diffusers)
            return nil
        } catch let e as ComponentWeightsError {
            let prefix = folder.path + "/"
            func strip(_ s: String) -> String { s.hasPrefix(prefix) ? String(s.dropFirst(prefix.count)) : s }
            switch e {
            case .invalidIndex(let i, let r): return .invalidIndex(index: strip(i), reason: r)
            case .shardOutsideFolder(let i, let s): return .shardOutsideFolder(index: strip(i), shard: s)
            case .missingShard(let i, let s): return .missingShard(index: strip(i), shard: s)
            case .tensorMissingFromShard(let i, let t, let s): return .tensorMissingFromShard(index: strip(i), tensor: t, shard: s)
            case .tensorInTwoShards(let i, let t, let a, let b): return .tensorInTwoShards(index: strip(i), tensor: t, first: strip(a), second: strip(b))
            default: return e
            }
        }
    }

    @Test func brokenIndexesAreNamed() throws {
        let index = "diffusion_pytorch_model.safetensors.index.json"
        let first = "diffusion_pytorch_model-00001-of-00002.safetensors", second = "diffusion_pytorch_model-00002-of-00002.safetensors"
        #expect(try Self.brokenIndexError { _, _ in } == nil)
        #expect(try Self.brokenIndexError { folder, _ in try FileManager.default.removeItem(at: folder.appendingPathComponent(second)) }
                == .missingShard(index: index, shard: second))
        for shard in ["../\(first)", "/tmp/\(first)", "sub/\(first)", ".."] {
            #expect(try Self.brokenIndexError { _, map in map[map.keys.sorted()[0]] = shard } == .shardOutsideFolder(index: index, shard: shard))
        }
        // The index promises a tensor the shard does not hold.
        #expect(try Self.brokenIndexError { _, map in map["decoder.missing.weight"] = first }
                == .tensorMissingFromShard(index: index, tensor: "decoder.missing.weight", shard: first))
        // The same tensor in both shards.
        #expect(try Self.brokenIndexError { folder, map in
            let name = map.filter { $0.value == first }.keys.sorted()[0]
            let source = try SafeTensorsFile(contentsOf: Self.components[1].weightsFile)
            let secondNames = map.filter { $0.value == second }.keys.sorted()
            try Self.write(secondNames + [name], of: source, to: folder.appendingPathComponent(second))
        } == .tensorInTwoShards(index: index, tensor: Self.twoShardTensor(), first: first, second: second))
        #expect(try Self.brokenIndexError { folder, map in
            map = [:]
            try Data("{\"metadata\": {}}".utf8).write(to: folder.appendingPathComponent(index))
        } == .invalidIndex(index: index, reason: "has no \"weight_map\" object {tensor name: shard file}"))
        #expect(try Self.brokenIndexError { folder, map in
            map = [:]
            try Data("not json".utf8).write(to: folder.appendingPathComponent(index))
        } == .invalidIndex(index: index, reason: "is not a JSON object"))
    }

    /// The first tensor of the VAE's first shard (`writeShards` splits the sorted names in half).
    static func twoShardTensor() -> String {
        (try? SafeTensorsFile(contentsOf: components[1].weightsFile).names[0]) ?? ""
    }
}
