import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a procedural snowman and a textured crate, export them in every format, and check them.",
        discussion: """
        Writes into DIR: the snowman as glb, gltf, obj, ply, stl, fbx and dae (vertex colours); a \
        textured crate as glb and obj; Gaussian splats sampled on the snowman as splats.ply (INRIA \
        3DGS) and splats.splat; preview.png, a contact sheet of point previews from 8 orbit \
        cameras (prompt, seed and settings in its metadata); transforms.json with those cameras; \
        and summary.json, the result of re-importing every exported file.
        """
    )

    @OptionGroup var output: OutputFolderOptions

    @Option(help: "Seed for the sampled splats.")
    var seed: UInt64 = 0

    @Option(help: "Number of Gaussians sampled on the snowman.")
    var splats: Int = 20_000

    @Option(help: "Side of each preview tile, pixels.")
    var size: Int = 192


    func validate() throws {
        guard (1...5_000_000).contains(splats) else { throw ValidationError("--splats must be 1…5000000, got \(splats)") }
        guard (16...2048).contains(size) else { throw ValidationError("--size must be 16…2048, got \(size)") }
    }

    func run() throws {
        try output.prepare()
        try DemoJob(folder: output.url, seed: seed, splats: splats, size: size).run()
    }
}
