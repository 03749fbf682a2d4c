import ArgumentParser
import Foundation
import KilnAsset
import KilnCore
import KilnRun
import KilnDistill
import KilnEval
import KilnPrior
import KilnRender
import KilnToyWorld

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Judge a 3D asset from many views: prompt alignment, view consistency (Janus), mesh health.",
        discussion: """
        ASSET is a kiln generate run folder (its splats.ply or NeRF field, framed as the run framed \
        them, else its asset.glb; the prompt from its \
        config.json), a splat file (3DGS PLY, .splat) or any mesh Assimp reads. Renders --views \
        orbit views at --elevation (or the icosphere's directions with --icosphere), framed on the \
        asset's bounding sphere as the toy world frames its objects; meshes are lit like the toy \
        world. Writes DIR/report.json, DIR/report.md and DIR/sheet.png: per view the alignment \
        reward of the prompt's attributes and what the reward models see (kind, colour, azimuth); \
        in summary the mean, minimum and spread of the alignment, the kind and colour accuracy, the \
        azimuth accuracy and the Janus score (back views seen as fronts); geometric consistency \
        (each silhouette against the views' robust visual hull, and each view carried into its \
        nearest neighbour through the rendered depth: depth agreement and colour error); for \
        meshes their health (watertight, components, degenerate triangles, bounds).
        """
    )

    @Argument(help: ArgumentHelp("A run folder, splat file or mesh.", valueName: "asset"), completion: .file())
    var asset: String

    @Option(help: "The prompt to judge alignment against (default: a run's own prompt).")
    var prompt: String?

    @Option(help: "Orbit views.")
    var views: Int = 16

    @Option(help: "Elevation of the orbit, degrees.")
    var elevation: Float = 15

    @Flag(help: "Use the icosphere's directions (one subdivision, elevations −10°…60°) instead of an orbit.")
    var icosphere = false

    @Option(help: "Render size (a multiple of the reward models' 32).")
    var size: Int = 128

    @Option(help: ArgumentHelp(ShippedAssets.help(.rewards)), completion: .directory)
    var rewards: String?

    @OptionGroup var output: OutputFolderOptions

    @OptionGroup var paths: InputPathOptions

    func validate() throws {
        guard (1...256).contains(views) else { throw ValidationError("--views must be 1…256, got \(views)") }
        guard (-89...89).contains(elevation) else { throw ValidationError("--elevation must be in −89…89, got \(elevation)") }
        guard (32...1024).contains(size), size % 32 == 0 else { throw ValidationError("--size must be a multiple of 32 in 32…1024, got \(size)") }
    }

    func run() throws {
        var evaluation = AssetEvaluation(asset: URL(fileURLWithPath: asset), output: output.url, rewardsFolder: try ShippedAssets.resolve(rewards, .rewards))
        (evaluation.prompt, evaluation.views, evaluation.elevation, evaluation.icosphere) = (prompt, views, elevation, icosphere)
        (evaluation.size, evaluation.allowOutsidePaths) = (size, paths.allowOutsidePaths)
        try evaluation.run()
    }
}
