import Foundation
import KilnPrior
import KilnToyWorld

/// A latent diffusion pipeline in Stable Diffusion 1.x/2.x's folder layout (a diffusers folder with
/// `vae/`): the user's own weights, which know no cameras, so each view is named in the prompt
/// ("…, side view"), or a latent prior Kiln trained on the toy world (`kiln train-prior` with a
/// VAE), which sees each view through its camera conditioning and was trained on the toy world's
/// backgrounds. Its renders are the VAE's image size (512² for Stable Diffusion 1.5).
enum LatentPriorLoader: PriorLoader {
    static func opens(_ folder: URL) -> Bool {
        FileManager.default.fileExists(atPath: folder.appendingPathComponent("vae").path)
    }

    static func open(_ folder: URL, prompt: Prompt) throws -> any DiffusionPrior {
        let pipeline = try PriorPipeline(folder: folder)
        if let warning = pipeline.unknownWordsWarning(prompt.text) { warn(warning) }
        let backgrounds = pipeline.hasViewConditioning ? ToySample.backgrounds : [SIMD3<Float>(1, 1, 1)]
        return try LatentDiffusionPrior(pipeline: pipeline, prompt: prompt.text, negativePrompt: prompt.negative, backgrounds: backgrounds)
    }
}
