import ArgumentParser
import KilnAsset
import KilnCore

@main
struct Kiln: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Text to 3D and 4D assets on the CPU: render, fit, distil, export and evaluate.",
        discussion: """
        Files Kiln reads and writes: PNG images (with prompt/seed/settings metadata), meshes in \
        any format Assimp reads (export: glb, gltf, obj, ply, stl, fbx, dae), and Gaussian splats \
        as INRIA 3DGS PLY or antimatter15 .splat.
        """,
        version: kilnVersion,
        subcommands: [Generate.self, Export.self, Eval.self, EvalViews.self, EvalPrior.self, Bench.self, Demo.self, Render.self, Fit.self, Inspect.self, Convert.self, Dataset.self, TrainPrior.self, TrainVAE.self, TrainRewards.self, TrainMotionReward.self, TunePrior.self, ScorePrior.self, Sample.self, ImportWorker.self]
    )

    /// Checks that this CPU runs the build's vector instructions before anything else runs.
    static func main() {
        CPU.requireBuildSupport(program: "kiln")
        main(nil)
    }
}

/// `kiln _import-worker IN OUT`: the isolated child that runs Assimp on an untrusted file.
struct ImportWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_import-worker",
        abstract: "Internal: import a mesh with Assimp in an isolated process.",
        shouldDisplay: false
    )
    @Argument var input: String
    @Argument var output: String
    @Flag var allowOutsidePaths = false
    func run() throws { MeshImport.runWorker(input: input, output: output, allowOutsidePaths: allowOutsidePaths) }
}
