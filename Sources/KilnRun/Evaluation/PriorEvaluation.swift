import Foundation
import KilnAsset
import KilnCore
import KilnDistill
import KilnEval
import KilnPrior
import KilnToyWorld

/// `kiln eval-prior`: a prior's multi-view consistency. For each prompt, `views` samples around
/// an object (the prior's camera conditioning) are judged as `kiln eval-views` judges posed images.
public struct PriorEvaluation {
    public var prior: URL
    public var prompts: URL
    public var output: URL
    public var views = 8
    public var elevation: Float = 15
    public var samplingSteps = 30
    /// nil: the prior's own guidance.
    public var guidanceScale: Double? = nil
    public var steps = 400
    public var seed: UInt64 = 0
    /// Write into an existing, non-empty output folder.
    public var force = false

    public init(prior: URL, prompts: URL, output: URL) { (self.prior, self.prompts, self.output) = (prior, prompts, output) }

    /// One prompt's row of the summary.
    struct Row: Codable {
        var prompt: String
        var folder: String
        var meanHeldOutPSNR: Double
        var meanHeldOutSSIM: Double
        var meanSilhouetteCoverage: Double
        var meanPhotometricError: Double
        var flagged: [String]
    }

    struct Summary: Codable {
        var prior: String
        var views: Int
        var elevationDegrees: Float
        var prompts: [Row]
        var meanHeldOutPSNR: Double
        var meanHeldOutSSIM: Double
        var flaggedViewShare: Double
        var seconds: Double
    }

    /// Samples, judges and writes every prompt's folder and the summary; `output` is created (it must be empty unless `force`).
    public func run() throws {
        let start = ContinuousClock.now
        let list = try Prompt.lines(of: prompts, name: prompts.relativePath, kind: "a prompt file")
        let pipeline = try PriorPipeline(folder: prior)
        let guidanceScale = self.guidanceScale ?? pipeline.settings.samplingGuidanceScale
        guard pipeline.hasViewConditioning else {
            throw RunError("\(pipeline.folder.path) has no view conditioning: its samples cannot be placed around an object; give a camera-conditioned prior")
        }
        try OutputFolder.prepare(output, force: force)
        let folder = output
        let size = pipeline.imageSize.width
        let angles = (0..<views).map { Float($0) * 360 / Float(views) }
        let cameras = angles.map { ViewSettings().camera(azimuthDegrees: $0, elevationDegrees: elevation, size: size) }
        var rows: [Row] = []
        for prompt in list {
            let slug = promptSlug(prompt)
            let promptFolder = folder.appendingPathComponent(slug), viewFolder = promptFolder.appendingPathComponent("views")
            try FileManager.default.createDirectory(at: viewFolder, withIntermediateDirectories: true)
            var images: [Image] = []
            for (i, azimuth) in angles.enumerated() {
                let request = SampleRequest(prompt: prompt, count: 1, steps: samplingSteps, guidanceScale: guidanceScale, seed: seed,
                                            view: ViewConditioning(azimuthDegrees: azimuth, elevationDegrees: elevation))
                let x = try pipeline.sample(request)
                guard x.isFinite else { throw RunError("the prior produced non-finite values for \"\(prompt)\"; its weights may be corrupt") }
                let image = Self.onWhite(PriorPipeline.images(pipeline.pixels(x))[0])
                images.append(image)
                try PNG.write(image, to: viewFolder.appendingPathComponent(String(format: "view_%03d.png", i)),
                              metadata: KilnMetadata(command: "eval-prior", prompt: prompt, seed: seed,
                                                     settings: SampleRecord(prior: pipeline.folder.lastPathComponent, negativePrompt: "", steps: samplingSteps,
                                                                            guidanceScale: guidanceScale, count: 1, view: request.view, scheduler: "DDIM",
                                                                            height: image.height, width: image.width)))
            }
            let names = (0..<views).map { String(format: "view_%03d", $0) }
            let transforms = try NeRFTransforms(cameras: cameras, filePaths: names.map { $0 + ".png" })
            try FileIO.writeAtomically(try transforms.jsonData(), to: viewFolder.appendingPathComponent("transforms.json"))
            var options = ViewSetEvaluation.Options()
            options.steps = steps
            options.seed = seed
            let posed = zip(cameras, images).map { PosedView(camera: $0, color: $1, alpha: PosedView.mask(of: $1, background: SIMD3(1, 1, 1))) }
            let evaluation = ViewSetEvaluation.evaluate(posed, names: names, options: options)
            try evaluation.write(images: images, to: promptFolder, command: "eval-prior")
            let r = evaluation.report
            rows.append(Row(prompt: prompt, folder: slug, meanHeldOutPSNR: r.meanHeldOutPSNR, meanHeldOutSSIM: r.meanHeldOutSSIM,
                            meanSilhouetteCoverage: r.meanSilhouetteCoverage, meanPhotometricError: r.meanPhotometricError, flagged: r.flagged))
            say(String(format: "\"%@\": held-out PSNR %.2f dB, SSIM %.3f, silhouette coverage %.3f, photometric error %.4f%@", prompt, r.meanHeldOutPSNR,
                       r.meanHeldOutSSIM, r.meanSilhouetteCoverage, r.meanPhotometricError, r.flagged.isEmpty ? "" : "; stands out: " + r.flagged.joined(separator: ", ")))
        }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(max(1, v.count)) }
        let summary = Summary(prior: pipeline.folder.path, views: views, elevationDegrees: elevation, prompts: rows, meanHeldOutPSNR: mean(rows.map(\.meanHeldOutPSNR)),
                              meanHeldOutSSIM: mean(rows.map(\.meanHeldOutSSIM)),
                              flaggedViewShare: Double(rows.map(\.flagged.count).reduce(0, +)) / Double(rows.count * views),
                              seconds: (ContinuousClock.now - start).seconds)
        try writeJSON(summary, to: folder.appendingPathComponent("summary.json"))
        var md = "# Multi-view consistency of \(pipeline.folder.lastPathComponent)\n\n"
        md += String(format: "%d prompts × %d views at elevation %.0f°, %d DDIM steps, guidance %.1f, one initial noise per prompt; %.0f s.\n\n",
                     rows.count, views, elevation, samplingSteps, guidanceScale, summary.seconds)
        md += String(format: "Mean held-out PSNR %.2f dB, SSIM %.3f; %.1f%% of the views stand out.\n\n", summary.meanHeldOutPSNR, summary.meanHeldOutSSIM,
                     100 * summary.flaggedViewShare)
        md += "| prompt | held-out PSNR | SSIM | hull coverage | photometric error | views that stand out |\n| --- | ---: | ---: | ---: | ---: | --- |\n"
        for r in rows {
            md += String(format: "| [%@](%@/report.md) | %.2f | %.3f | %.3f | %.4f | %@ |\n", r.prompt, r.folder, r.meanHeldOutPSNR, r.meanHeldOutSSIM,
                         r.meanSilhouetteCoverage, r.meanPhotometricError, r.flagged.joined(separator: ", "))
        }
        try FileIO.writeAtomically(Data(md.utf8), to: folder.appendingPathComponent("summary.md"))
        say(String(format: "%d prompts: held-out PSNR %.2f dB, SSIM %.3f, %.1f%% of views stand out; wrote %@/summary.md (%.0f s)", rows.count,
                   summary.meanHeldOutPSNR, summary.meanHeldOutSSIM, 100 * summary.flaggedViewShare, folder.path, summary.seconds))
    }

    /// The image with its background (the median border colour, and what matches it) made white.
    static func onWhite(_ image: Image) -> Image {
        let background = PosedImageFolder.borderMedian([image])
        let mask = PosedView.mask(of: image, background: background)
        var out = image
        for i in 0..<(image.width * image.height) where mask.pixels[i] < 0.5 {
            for c in 0..<3 { out.pixels[3 * i + c] = 1 }
        }
        return out
    }
}

/// What `kiln sample` and `kiln eval-prior` record in their pictures.
public struct SampleRecord: Codable {
    var prior: String
    var negativePrompt: String
    var steps: Int
    var guidanceScale: Double
    var count: Int
    var view: ViewConditioning?
    var scheduler: String
    var height: Int
    var width: Int
    /// The `--latents` file the initial noise came from, if any.
    var latents: String?

    public init(prior: String, negativePrompt: String, steps: Int, guidanceScale: Double, count: Int, view: ViewConditioning?, scheduler: String,
                height: Int, width: Int, latents: String? = nil) {
        (self.prior, self.negativePrompt, self.steps, self.guidanceScale, self.count, self.view, self.scheduler, self.height, self.width, self.latents) =
            (prior, negativePrompt, steps, guidanceScale, count, view, scheduler, height, width, latents)
    }
}
