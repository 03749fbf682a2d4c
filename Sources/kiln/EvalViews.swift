import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore
import KilnEval
import KilnRender

struct EvalViews: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-views",
        abstract: "Multi-view consistency of a folder of posed images (transforms.json): which view contradicts the others.",
        discussion: """
        VIEWS holds transforms.json (NeRF convention) and its PNG images, such as the output of a \
        multi-view diffusion model. Images larger than --size are scaled down to it. For every view, \
        Gaussians are fitted to all the other views and rendered from its camera (held-out PSNR and \
        SSIM, as Carve3D measures reconstruction consistency); one fit to every view gives depth \
        maps through which each pair of views is compared where both see the same surface \
        (photometric error); silhouettes from the background colour are compared with the set's \
        visual hull. A view that stands out on any of the three is flagged and named. Writes \
        DIR/report.json, DIR/report.md and DIR/sheet.png (the views above their held-out renders).
        """
    )

    @Argument(help: "Folder with transforms.json and images.", completion: .directory)
    var views: String

    @OptionGroup var output: OutputFolderOptions

    @OptionGroup var paths: InputPathOptions

    @Option(help: "Fitting steps per reconstruction (views + 1 of them).")
    var steps: Int = 400

    @Option(help: "Random Gaussians each fit starts from.")
    var initial: Int = 3_000

    @Option(help: "Largest image side used; larger images are scaled down.")
    var size: Int = 64

    @Option(help: "Background colour of the images (a name, #rrggbb or r,g,b); default: the median border colour.")
    var background: ColorArgument?

    @Option(help: "Random seed of the fits.")
    var seed: UInt64 = 0

    func validate() throws {
        guard (10...100_000).contains(steps) else { throw ValidationError("--steps must be 10…100000, got \(steps)") }
        guard (8...1024).contains(size) else { throw ValidationError("--size must be 8…1024, got \(size)") }
        guard (1...1_000_000).contains(initial) else { throw ValidationError("--initial must be 1…1000000, got \(initial)") }
    }

    func run() throws {
        let profiler = Profiler()
        try profiler.activate { try evaluate(profiler) }
    }

    /// Loads, judges and writes report.json, report.md, sheet.png and profile.json (where the time went).
    func evaluate(_ profiler: Profiler) throws {
        let loadStart = ContinuousClock.now
        let (transforms, images, cameras) = try PosedImageFolder.load(URL(fileURLWithPath: views), maximumSide: size, allowOutsidePaths: paths.allowOutsidePaths)
        guard images.count >= 4 else { throw CLIError("\(views)/transforms.json has \(images.count) frames: judging consistency needs at least 4 views") }
        try output.prepare()
        var options = ViewSetEvaluation.Options()
        options.steps = steps
        options.initialGaussians = initial
        options.seed = seed
        options.background = background?.rgb ?? PosedImageFolder.borderMedian(images)
        let posed = zip(cameras, images).map { PosedView(camera: $0, color: $1, alpha: PosedView.mask(of: $1, background: options.background)) }
        let names = transforms.frames.map { URL(fileURLWithPath: $0.filePath).deletingPathExtension().lastPathComponent }
        profiler.record("load", seconds: (ContinuousClock.now - loadStart).seconds)
        let evaluation = profiler.measure("evaluate") { ViewSetEvaluation.evaluate(posed, names: names, options: options) }
        try OutputFolder.staged(output.url, force: true) { folder in
            try evaluation.write(images: images, to: folder, command: "eval-views")
            try writeJSON(profiler.profile, to: folder.appendingPathComponent("profile.json"))
        }
        let r = evaluation.report
        say(String(format: "%d views: held-out PSNR %.2f dB, SSIM %.3f, silhouette coverage %.3f, photometric error %.4f; %@; %.1f s",
                   r.views.count, r.meanHeldOutPSNR, r.meanHeldOutSSIM, r.meanSilhouetteCoverage, r.meanPhotometricError,
                   r.flagged.isEmpty ? "no view stands out" : "stands out: " + r.flagged.joined(separator: ", "), r.seconds))
    }
}
