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

    func run() throws {
        var evaluation = PriorEvaluation(prior: try ShippedAssets.resolve(prior, .prior), prompts: URL(fileURLWithPath: prompts), output: output.url)
        (evaluation.views, evaluation.elevation, evaluation.samplingSteps, evaluation.guidanceScale) = (views, elevation, samplingSteps, guidanceScale)
        (evaluation.steps, evaluation.seed, evaluation.force) = (steps, seed, output.force)
        try evaluation.run()
    }
}
