import Foundation
import KilnPrior
import KilnToyWorld

/// A kind of prior a run can distil from: which folders it opens, and the prior it makes of one
/// for a prompt.
protocol PriorLoader {
    /// Whether `folder` holds this kind of prior (by its layout).
    static func opens(_ folder: URL) -> Bool
    static func open(_ folder: URL, prompt: Prompt) throws -> any DiffusionPrior
}

/// The priors a run can distil from, tried in order: adding a prior is its file (a
/// `DiffusionPrior` and its `PriorLoader`) and one line in `loaders`.
enum PriorRegistry {
    static let loaders: [any PriorLoader.Type] = [PixelPriorLoader.self, LatentPriorLoader.self]

    /// The prior in `folder`, conditioned on the prompt.
    /// - Throws: `RunError` when no kind of prior opens the folder, else the loader's error.
    static func open(_ folder: URL, prompt: Prompt) throws -> any DiffusionPrior {
        guard let loader = loaders.first(where: { $0.opens(folder) }) else {
            throw RunError("\(folder.path) holds no prior Kiln can open (a diffusers pipeline folder: model_index.json, unet/, text_encoder/, tokenizer/, scheduler/, and vae/ for a latent prior); give --prior a prior folder")
        }
        return try loader.open(folder, prompt: prompt)
    }
}

/// The built-in pixel-space prior (a diffusers-layout folder without a VAE), trained on the toy
/// world: its samples sit on the toy world's backgrounds.
enum PixelPriorLoader: PriorLoader {
    static func opens(_ folder: URL) -> Bool {
        !FileManager.default.fileExists(atPath: folder.appendingPathComponent("vae").path)
    }

    static func open(_ folder: URL, prompt: Prompt) throws -> any DiffusionPrior {
        let pipeline = try PriorPipeline(folder: folder)
        if let warning = pipeline.unknownWordsWarning(prompt.text) { warn(warning) }
        return try PixelDiffusionPrior(pipeline: pipeline, prompt: prompt.text, negativePrompt: prompt.negative, backgrounds: ToySample.backgrounds)
    }
}
