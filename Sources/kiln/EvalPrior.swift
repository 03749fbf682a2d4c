import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore
import KilnDistill
import KilnEval
import KilnPrior

struct EvalPrior: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-prior",
        abstract: "Multi-view consistency of a camera-conditioned prior: sample views around each prompt, then judge them as eval-views does.",
        discussion: """
        For every prompt of --prompts (one per line, # comments), samples --views images from the \
        prior at azimuths i·360°/N and --elevation, all from the same initial noise (so that only \
        the camera changes), with the toy world's camera (field of view 40°, object framed on its \
        bounding sphere). Each image's background (its median border colour) is replaced by white, \
        since the prior draws the toy world's random backgrounds. The views go to \
        DIR/<prompt>/views/ with a transforms.json, and are judged as by kiln eval-views \
        (DIR/<prompt>/report.json, report.md, sheet.png). DIR/summary.md and summary.json give one \
        row per prompt and the prior's means.
        """
    )

    @Argument(help: ArgumentHelp(ShippedAssets.help(.prior)), completion: .directory)
    var prior: String?

    @Option(help: "Prompt file: one prompt per line, # comments.", completion: .file())
    var prompts: String

    @Option(help: "Views per prompt.")
    var views: Int = 8

    @Option(help: "Camera elevation of the views, degrees.")
    var elevation: Float = 15

    @OptionGroup var output: OutputFolderOptions

    @Option(help: "DDIM steps per view.")
    var samplingSteps: Int = 30

    @Option(help: "Classifier-free guidance scale (default: the prior's own, guidance_scale in its kiln_prior.json, else 7.5).")
    var guidanceScale: Double?

    @Option(help: "Fitting steps per reconstruction.")
    var steps: Int = 400

    @Option(help: "Random seed (the initial noise of every view, and the fits).")
    var seed: UInt64 = 0

    func validate() throws {
        guard (4...64).contains(views) else { throw ValidationError("--views must be 4…64, got \(views)") }
        guard (-89...89).contains(elevation) else { throw ValidationError("--elevation must be in −89…89, got \(elevation)") }
        guard (1...1000).contains(samplingSteps) else { throw ValidationError("--sampling-steps must be 1…1000, got \(samplingSteps)") }
        if let guidanceScale { guard guidanceScale.isFinite, guidanceScale >= 0 else { throw ValidationError("--guidance-scale must be a number ≥ 0") } }
        guard (10...100_000).contains(steps) else { throw ValidationError("--steps must be 10…100000, got \(steps)") }
    }

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

    func run() throws {
        let start = ContinuousClock.now
        guard let text = try? String(contentsOfFile: prompts, encoding: .utf8) else { throw CLIError("\(prompts) cannot be read: give a prompt file") }
        let list = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !list.isEmpty else { throw CLIError("\(prompts) holds no prompts") }
        let pipeline = try PriorPipeline(folder: try ShippedAssets.resolve(prior, .prior))
        let guidanceScale = self.guidanceScale ?? pipeline.settings.samplingGuidanceScale
        guard pipeline.hasViewConditioning else {
            throw CLIError("\(pipeline.folder.path) has no view conditioning: its samples cannot be placed around an object; give a camera-conditioned prior")
        }
        try output.prepare()
        let folder = output.url
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
                guard x.isFinite else { throw CLIError("the prior produced non-finite values for \"\(prompt)\"; its weights may be corrupt") }
                let image = Self.onWhite(PriorPipeline.images(x)[0])
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
