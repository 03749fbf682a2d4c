import ArgumentParser
import Foundation
import KilnAsset
import KilnCore
import KilnEval
import KilnRender

struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reconstruct Gaussian splats from posed images (a folder with transforms.json).",
        discussion: """
        VIEWS holds transforms.json (NeRF/OpenGL convention, as `kiln render` writes) and the \
        images it names. --holdout K keeps K evenly spaced views out of training and measures them. \
        Writes RUNDIR/splats.ply, RUNDIR/metrics.json (held-out and training PSNR/SSIM, steps, \
        time, Gaussian count) and RUNDIR/progress.png (held-out targets above their renders).
        """
    )

    @Argument(help: "Folder with transforms.json and images.", completion: .directory)
    var views: String

    @OptionGroup var output: OutputFolderOptions

    @OptionGroup var paths: InputPathOptions

    @Option(help: "Optimisation steps.")
    var steps: Int = 2_000

    @Option(help: "Views held out for evaluation.")
    var holdout: Int = 1

    @Option(help: "Initial random Gaussians.")
    var initial: Int = 5_000

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Option(help: "Background colour of the images (a name, #rrggbb or r,g,b); default: the median border colour.")
    var background: ColorArgument?


    func validate() throws {
        guard (1...1_000_000).contains(steps) else { throw ValidationError("--steps must be 1…1000000, got \(steps)") }
        guard holdout >= 0 else { throw ValidationError("--holdout must be 0 or more, got \(holdout)") }
        guard (1...1_000_000).contains(initial) else { throw ValidationError("--initial must be 1…1000000, got \(initial)") }
    }

    func run() throws {
        let (transforms, images, cameras) = try PosedImageFolder.load(URL(fileURLWithPath: views), allowOutsidePaths: paths.allowOutsidePaths)
        guard holdout < cameras.count else {
            throw CLIError("--holdout \(holdout) leaves no training view: \(views)/transforms.json has \(cameras.count) frames")
        }
        let heldOut = Set((0..<holdout).map { $0 * cameras.count / max(1, holdout) + cameras.count / max(1, 2 * holdout) })
        let train = cameras.indices.filter { !heldOut.contains($0) }
        let bg = background?.rgb ?? PosedImageFolder.borderMedian(images)
        // Views that show only the background leave the fit nothing to reconstruct: every Gaussian
        // fades and is pruned.
        guard train.contains(where: { i in PosedView.mask(of: images[i], background: bg).pixels.contains { $0 > 0 } }) else {
            throw CLIError("\(views): every training view shows only the background colour (\(bg.x), \(bg.y), \(bg.z)): there is nothing to fit; "
                           + "check that the images show the object (or pass --background with the real background colour)")
        }

        let runFolder = output.url
        let createdFolder = try output.prepare()
        var options = SplatFit.Options()
        options.steps = steps
        options.initialGaussians = initial
        options.seed = seed
        options.background = bg
        let start = Date()
        let interactive = isatty(1) != 0
        let fitted = SplatFit.fit(train.map { SplatFit.View(camera: cameras[$0], image: images[$0]) }, options: options) { step, loss, count in
            if step % max(1, steps / 20) == 0 || step == steps {
                let line = String(format: "step %d/%d  L1 %.4f  %d Gaussians  %.1f s", step, steps, loss, count, Date().timeIntervalSince(start))
                if interactive { FileHandle.standardOutput.write(Data(("\r" + line + (step == steps ? "\n" : "")).utf8)) } else { print(line) }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        guard fitted.count > 0 else {
            if createdFolder { try? FileManager.default.removeItem(at: runFolder) }
            throw CLIError("the fit kept no Gaussians after \(steps) steps: the cameras in \(views)/transforms.json do not see the object "
                           + "(check their poses and the images), or the views show only the background")
        }
        let settings = SplatRenderSettings(background: bg)
        func evaluate(_ i: Int) -> ViewMetrics {
            let render = SplatRasterizer.render(fitted, camera: cameras[i], settings: settings).color
            return ViewMetrics(view: i, file: transforms.frames[i].filePath, psnr: ImageMetrics.psnr(render, images[i]), ssim: ImageMetrics.ssim(render, images[i]))
        }
        let held = heldOut.sorted().map(evaluate)
        let trained = train.map(evaluate)
        func mean(_ v: [Double]) -> Double? { v.isEmpty ? nil : v.reduce(0, +) / Double(v.count) }
        let metrics = FitMetrics(steps: steps, seconds: seconds, gaussians: fitted.count, seed: seed,
                                 background: [bg.x, bg.y, bg.z], heldOut: held, heldOutPSNR: mean(held.map(\.psnr)),
                                 heldOutSSIM: mean(held.map(\.ssim)), trainPSNR: mean(trained.map(\.psnr)), trainSSIM: mean(trained.map(\.ssim)))
        try GaussianCloudIO.write(fitted.cloud, to: runFolder.appendingPathComponent("splats.ply"))
        try writeJSON(metrics, to: runFolder.appendingPathComponent("metrics.json"))
        let shown = held.isEmpty ? Array(train.prefix(4)) : held.map(\.view)
        let renders = shown.map { SplatRasterizer.render(fitted, camera: cameras[$0], settings: settings).color }
        let sheet = Image.contactSheet(shown.map { images[$0] } + renders, columns: shown.count,
                                       labels: shown.map { "target \($0)" } + shown.map { "fit \($0)" })
        try PNG.write(sheet, to: runFolder.appendingPathComponent("progress.png"),
                      metadata: KilnMetadata(command: "fit", seed: seed, settings: metrics))
        print(String(format: "fitted %d Gaussians in %.1f s; held-out PSNR %@ dB, SSIM %@; train PSNR %@ dB",
                     fitted.count, seconds, metrics.heldOutPSNR.map { String(format: "%.2f", $0) } ?? "–",
                     metrics.heldOutSSIM.map { String(format: "%.3f", $0) } ?? "–", metrics.trainPSNR.map { String(format: "%.2f", $0) } ?? "–"))
    }
}

struct ViewMetrics: Codable {
    var view: Int
    var file: String
    var psnr: Double
    var ssim: Double
}

struct FitMetrics: Codable {
    var steps: Int
    var seconds: Double
    var gaussians: Int
    var seed: UInt64
    var background: [Float]
    var heldOut: [ViewMetrics]
    var heldOutPSNR: Double?
    var heldOutSSIM: Double?
    var trainPSNR: Double?
    var trainSSIM: Double?
}
