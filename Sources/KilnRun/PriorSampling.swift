import Foundation
import KilnAsset
import KilnCore
import KilnNN
import KilnPrior

/// `kiln sample`: images drawn from a prior (DDIM, classifier-free guidance, optionally seen from
/// a camera at a time), written as one contact sheet, or as the image itself for one sample.
///
/// `latents` names a safetensors file with one tensor `latents` `[count, channels, h, w]`: the
/// initial noise, as diffusers' `StableDiffusionPipeline(latents=...)` takes it, so the same noise
/// gives the same picture in both.
public struct PriorSampling {
    public var prior: URL
    public var prompt: String
    public var output: URL
    public var negativePrompt = ""
    public var count = 4
    /// Initial noise from a file (`latents` tensor); sets the count and the sample size.
    public var latents: URL? = nil
    /// Whether `count` was asked for (then a `latents` file must hold that many samples).
    public var countGiven = false
    public var steps = 30
    /// nil: the prior's own guidance.
    public var guidanceScale: Double? = nil
    public var seed: UInt64 = 0
    public var azimuth: Float? = nil, elevation: Float? = nil, time: Float? = nil
    public var force = false

    public init(prior: URL, prompt: String, output: URL) { (self.prior, self.prompt, self.output) = (prior, prompt, output) }

    /// Samples and writes the contact sheet to `output`.
    public func run() throws {
        let outURL = output
        if FileManager.default.fileExists(atPath: outURL.path) && !force {
            throw RunError("--out \(output.relativePath) exists: pass --force to replace it or choose another name")
        }
        try FileIO.checkWritableFolder(outURL.deletingLastPathComponent())
        let pipeline = try PriorPipeline(folder: prior)
        let initialNoise = try latents.map { try Self.readLatents($0, pipeline: pipeline) }
        let count = initialNoise?.shape[0] ?? self.count
        if let latents, countGiven, count != self.count {
            throw RunError("--count \(self.count) but --latents \(latents.relativePath) holds \(count) samples; drop --count or give the file's count")
        }
        let guidanceScale = self.guidanceScale ?? pipeline.settings.samplingGuidanceScale
        if let warning = pipeline.unknownWordsWarning(prompt + " " + negativePrompt) { warn(warning) }
        // A prior trained with view prompts but no class embedding hears the side in its prompt.
        let knowsViews = pipeline.hasViewConditioning || pipeline.usesViewPrompts
        if !knowsViews && (azimuth != nil || elevation != nil || time != nil) {
            warn("this prior has no view conditioning; --azimuth, --elevation and --time are ignored")
        } else if !pipeline.hasViewConditioning && time != nil {
            warn("this prior has no time conditioning; --time is ignored")
        }
        let view = ViewConditioning(azimuthDegrees: azimuth ?? 0, elevationDegrees: elevation ?? 15, time: time)
        let request = SampleRequest(prompt: prompt, negativePrompt: negativePrompt, count: count, steps: steps,
                                    guidanceScale: guidanceScale, seed: seed, view: view)
        let clock = ContinuousClock(), start = clock.now
        let x = try pipeline.sample(request, initialNoise: initialNoise) { step, total in
            if step == total || step % 10 == 0 { print("  step \(step)/\(total)") }
        }
        guard x.isFinite else { throw RunError("the prior produced non-finite values; its weights may be corrupt") }
        let images = PriorPipeline.images(pipeline.pixels(x))
        let sheet: Image
        if count == 1 {
            sheet = images[0]  // the image itself, as diffusers returns it
        } else {
            // Small priors draw small images: tiles are enlarged (bilinear) to at least 128 pixels.
            let factor = max(1, (128 + images[0].width - 1) / images[0].width)
            let tiles = images.map { $0.resized(width: $0.width * factor, height: $0.height * factor) }
            sheet = Image.contactSheet(tiles, columns: min(count, 4), labels: (0..<count).map { "sample \($0 + 1)" })
        }
        let record = SampleRecord(prior: pipeline.folder.lastPathComponent, negativePrompt: negativePrompt, steps: steps,
                                  guidanceScale: guidanceScale, count: count, view: knowsViews ? view : nil,
                                  scheduler: "DDIM", height: images[0].height, width: images[0].width, latents: latents?.lastPathComponent)
        try PNG.write(sheet, to: outURL, metadata: KilnMetadata(command: "sample", prompt: prompt, seed: seed, settings: record))
        print(String(format: "wrote %@ to %@ (%.1f s)", count == 1 ? "1 sample" : "\(count) samples", output.relativePath, (clock.now - start).seconds))
    }
}


extension PriorSampling {
    /// The `latents` tensor of a `--latents` file, checked against the pipeline.
    /// - Throws: `RunError` naming the file and the problem.
    static func readLatents(_ url: URL, pipeline: PriorPipeline) throws -> Tensor {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(contentsOf: url) } catch { throw RunError("--latents \(url.relativePath): \(error)") }
        guard file.contains("latents") else {
            throw RunError("--latents \(url.relativePath) has no tensor named \"latents\" (it has \(file.names.prefix(4).joined(separator: ", ")))); save the initial noise as {\"latents\": tensor}")
        }
        let (shape, values) = try file.tensor("latents")
        guard shape.count == 4 else {
            throw RunError("--latents \(url.relativePath): \"latents\" is shaped \(shape); give [count, \(pipeline.sampleChannels), h, w]")
        }
        let noise = Tensor(shape: shape, storage: values)
        do { try pipeline.checkInitialNoise(noise, count: shape[0], source: "--latents \(url.relativePath)") } catch let e as PriorConfigError {
            throw RunError(e.description)
        }
        guard (1...64).contains(shape[0]) else { throw RunError("--latents \(url.relativePath) holds \(shape[0]) samples; give 1 to 64") }
        return noise
    }
}

extension PriorPipeline {
    /// "this prior was never trained on …; it knows: …", when `text` has words outside the
    /// prior's vocabulary (nil when it has none, or the prior lists no vocabulary).
    public func unknownWordsWarning(_ text: String) -> String? {
        let unknown = settings.unknownWords(in: text)
        guard !unknown.isEmpty, let vocabulary = settings.vocabulary else { return nil }
        return "this prior was never trained on \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")); it knows: \(vocabulary.sorted().joined(separator: ", "))"
    }
}
