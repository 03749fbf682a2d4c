import Foundation

/// A pipeline folder's `model_index.json`: which pipeline class it is and which components it has.
///
///     {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
///      "vae": ["diffusers", "AutoencoderKL"], "safety_checker": [null, null], ...}
///
/// Kiln runs `StableDiffusionPipeline` folders (Stable Diffusion 1.x and 2.x, and Kiln's own priors,
/// `KilnPriorPipeline`). A component written `[null, null]` is absent. Components Kiln does not run
/// but that do not change what the pipeline draws (`safety_checker`, `feature_extractor`,
/// `image_encoder`) are accepted and left unloaded; any other component, or another pipeline class
/// (SDXL's second text encoder, DeepFloyd IF's cascade, …), is an error naming it. A folder without
/// `model_index.json` is read by its sub-folders (a VAE when `vae/config.json` exists).
public struct ModelIndex: Sendable, Equatable {
    /// `_class_name`, nil when the file is absent or does not say.
    public var className: String?
    /// The components present (not `[null, null]`), by key.
    public var components: [String: [String]]

    public static let supportedClasses = ["StableDiffusionPipeline", "KilnPriorPipeline"]
    /// Components Kiln runs, with the classes it runs them as.
    public static let runComponents: [String: String] = [
        "unet": "UNet2DConditionModel", "vae": "AutoencoderKL", "text_encoder": "CLIPTextModel",
        "tokenizer": "CLIPTokenizer", "scheduler": "a diffusers scheduler",
    ]
    /// Components that do not change the images a pipeline draws, which Kiln leaves unloaded.
    public static let unusedComponents: Set<String> = ["safety_checker", "feature_extractor", "image_encoder"]

    /// Whether the pipeline has a VAE (a latent diffusion pipeline).
    public var hasVAE: Bool { components["vae"] != nil }

    public init(className: String?, components: [String: [String]]) {
        (self.className, self.components) = (className, components)
    }

    /// Reads `folder/model_index.json`.
    /// - Throws: `PriorConfigError` naming the key and what to do.
    public init(folder: URL) throws {
        let url = folder.appendingPathComponent("model_index.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            self.init(className: nil, components: FileManager.default.fileExists(atPath: folder.appendingPathComponent("vae/config.json").path)
                ? ["vae": ["diffusers", "AutoencoderKL"]] : [:])
            return
        }
        try self.init(json: data, source: url.path)
    }

    /// Parses the bytes of a `model_index.json`; `source` names the file in errors.
    public init(json data: Data, source: String) throws {
        guard case .object(let object)? = try? JSONDecoder().decode(ConfigValue.self, from: data) else {
            throw PriorConfigError(source: source, key: nil, problem: "is not a JSON object",
                                   fix: "write model_index.json as diffusers saves it, or delete it")
        }
        switch object["_class_name"] {
        case nil: className = nil
        case .string(let name)?:
            guard Self.supportedClasses.contains(name) else {
                throw PriorConfigError(source: source, key: "_class_name", problem: "is \(name), a pipeline Kiln does not run",
                                       fix: "use a StableDiffusionPipeline folder (Stable Diffusion 1.x or 2.x layout: one CLIP text encoder, a UNet, a VAE)")
            }
            className = name
        case let v?: throw PriorConfigError(source: source, key: "_class_name", problem: "is \(v.text)", fix: "name the pipeline class as a string")
        }
        var components: [String: [String]] = [:]
        for key in object.keys.sorted() where !key.hasPrefix("_") {
            let value = object[key]!
            let isComponent = Self.runComponents[key] != nil || Self.unusedComponents.contains(key)
            switch value {
            // Settings such as requires_safety_checker; a component given as one is an error below.
            case .bool where !isComponent, .int where !isComponent, .double where !isComponent, .string where !isComponent: continue
            case .array(let items) where items.count == 2:
                if case .null = items[0], case .null = items[1] { continue }
                let names = items.map { item -> String in if case .string(let s) = item { return s } else { return item.text } }
                if Self.unusedComponents.contains(key) { continue }
                guard Self.runComponents[key] != nil else {
                    throw PriorConfigError(source: source, key: key, problem: "names a component Kiln does not run (\(names.joined(separator: ".")))",
                                           fix: "use a pipeline with \(Self.runComponents.keys.sorted().joined(separator: ", ")) only")
                }
                components[key] = names
            default:
                throw PriorConfigError(source: source, key: key, problem: "is \(value.text), not a [library, class] pair",
                                       fix: "write components as diffusers does, e.g. [\"diffusers\", \"AutoencoderKL\"], or [null, null]")
            }
        }
        if let vae = components["vae"], vae.last != "AutoencoderKL" {
            throw PriorConfigError(source: source, key: "vae", problem: "is \(vae.joined(separator: ".")); Kiln runs AutoencoderKL",
                                   fix: "use a pipeline whose VAE is an AutoencoderKL (Stable Diffusion's)")
        }
        self.components = components
    }
}
