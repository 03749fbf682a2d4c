import ArgumentParser
import Foundation
import KilnRun
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
        var job = SplatFitJob(views: URL(fileURLWithPath: views), output: output.url)
        (job.steps, job.holdout, job.initial, job.seed, job.background) = (steps, holdout, initial, seed, background?.rgb)
        (job.allowOutsidePaths, job.force) = (paths.allowOutsidePaths, output.force)
        try job.run()
    }
}
