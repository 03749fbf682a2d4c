import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore
import KilnNN
import KilnPrior

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw images from a diffusion prior: a grid of samples for a prompt.",
        discussion: """
        PRIOR is a diffusers pipeline folder (tokenizer/, text_encoder/, unet/, scheduler/; \
        optional kiln_prior.json): Kiln's own pixel-space priors, or a Stable Diffusion 1.x/2.x \
        folder with vae/. Sampling is DDIM with classifier-free guidance \
        against the empty prompt (or --negative-prompt). Priors trained with view conditioning \
        draw the object from --azimuth/--elevation (degrees; azimuth 0 is the front). The PNG's \
        metadata records the prompt, the seed and every setting; sample i of the grid is \
        reproduced by the same command. A prior with a closed vocabulary warns about words it \
        was never trained on and lists the ones it knows. --latents FILE.safetensors gives the \
        initial noise (one tensor named latents, [count, channels, h, w], as diffusers' \
        latents= argument takes it): the same noise draws the same picture in both. With one \
        sample the PNG is the image itself.
        """
    )

    @Argument(help: "The text prompt.")
    var prompt: String

    @Option(help: ArgumentHelp(ShippedAssets.help(.prior)), completion: .directory)
    var prior: String?

    @Option(help: "Camera azimuth in degrees (priors with view conditioning).")
    var azimuth: Float?

    @Option(help: "Camera elevation in degrees, −90…90 (priors with view conditioning).")
    var elevation: Float?

    @Option(help: "Normalised time τ in [0, 1] (priors trained on motion).")
    var time: Float?

    @Option(help: "DDIM steps.")
    var steps: Int = 30

    @Option(help: "Classifier-free guidance scale, 1 turns guidance off (default: the prior's own, guidance_scale in its kiln_prior.json, else 7.5).")
    var guidanceScale: Double?

    @Option(help: "Prompt to guide away from.")
    var negativePrompt: String = ""

    @Option(help: "Random seed for the initial noise.")
    var seed: UInt64 = 0

    @Option(help: "Number of samples in the grid (default 4, or as many as --latents holds); with 1 the PNG is the image itself.")
    var count: Int?

    @Option(help: "Initial noise: a .safetensors file with one tensor named latents, [count, channels, h, w].", completion: .file(extensions: ["safetensors"]))
    var latents: String?

    @Option(help: "Output PNG file.", completion: .file(extensions: ["png"]))
    var out: String

    @Flag(help: "Replace --out if it exists.")
    var force = false

    func validate() throws {
        guard !prompt.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("the prompt is empty; describe what to draw") }
        guard (1...1000).contains(steps) else { throw ValidationError("--steps must be 1…1000, got \(steps)") }
        if let count { guard (1...64).contains(count) else { throw ValidationError("--count must be 1…64, got \(count)") } }
        if let guidanceScale { guard guidanceScale.isFinite && guidanceScale >= 0 else { throw ValidationError("--guidance-scale must be a number ≥ 0, got \(guidanceScale)") } }
        if let azimuth, !azimuth.isFinite { throw ValidationError("--azimuth must be a number of degrees, got \(azimuth)") }
        if let elevation, !(elevation >= -90 && elevation <= 90) { throw ValidationError("--elevation must be within ±90 degrees, got \(elevation)") }
        if let time, !(time >= 0 && time <= 1) { throw ValidationError("--time must be in [0, 1], got \(time)") }
        guard out.lowercased().hasSuffix(".png") else { throw ValidationError("--out must name a .png file, got \(out)") }
    }

    func run() throws {
        _ = Memory.retainFreedMemory()
        var job = PriorSampling(prior: try ShippedAssets.resolve(prior, .prior), prompt: prompt, output: URL(fileURLWithPath: out))
        (job.negativePrompt, job.count, job.steps, job.guidanceScale, job.seed) = (negativePrompt, count ?? 4, steps, guidanceScale, seed)
        job.latents = latents.map { URL(fileURLWithPath: $0) }
        job.countGiven = count != nil
        (job.azimuth, job.elevation, job.time, job.force) = (azimuth, elevation, time, force)
        try job.run()
    }
}
