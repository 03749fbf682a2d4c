import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore
import KilnRender

struct Render: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render orbit views of a Gaussian splat file or a mesh.",
        discussion: """
        Writes DIR/view_000.png …, DIR/sheet.png (a labelled contact sheet) and DIR/transforms.json \
        (NeRF/OpenGL convention, readable by other tools and by `kiln fit`); --depth adds \
        depth_000.png … as 16-bit PNGs (depth = value × depth_scale, recorded in each PNG's \
        metadata and in transforms.json). Meshes (any format Assimp reads) are shaded with a \
        camera headlight (Lambert + ambient) using their vertex colours, material colour and base \
        colour texture, with antialiased silhouettes; --normals adds normal_000.png … (world \
        normals as (n + 1)/2). The cameras orbit the asset's bounds (robust bounds for splats) \
        unless --radius is given. The files appear together or not at all: they are written to a \
        hidden folder inside DIR and moved into place at the end.
        """
    )

    @Argument(help: "A splat file (INRIA 3DGS .ply or .splat) or a mesh (glb, gltf, obj, fbx, ply, stl, dae, …).", completion: .file())
    var asset: String

    @Option(help: "Number of views, evenly spaced in azimuth from the +Z side.")
    var views: Int = 8

    @Option(help: "Image side in pixels.")
    var size: Int = 256

    @OptionGroup var output: OutputFolderOptions

    @Option(help: "Camera elevation in degrees.")
    var elevation: Float = 15

    @Option(help: "Camera distance from the asset's centre (default: fit the bounds).")
    var radius: Float?

    @Option(help: "Background: a name, #rrggbb or r,g,b.")
    var background: ColorArgument = ColorArgument(argument: "white")!

    @Flag(help: "Also write 16-bit depth PNGs.")
    var depth = false

    @Flag(help: "Also write world-normal PNGs (meshes only).")
    var normals = false

    @OptionGroup var paths: InputPathOptions

    func validate() throws {
        guard (1...360).contains(views) else { throw ValidationError("--views must be 1…360, got \(views)") }
        guard (1...4096).contains(size) else { throw ValidationError("--size must be 1…4096, got \(size)") }
        guard (-89...89).contains(elevation) else { throw ValidationError("--elevation must be within ±89 degrees, got \(elevation)") }
        if let radius, !(radius >= 1e-6 && radius <= OrbitFraming.coordinateLimit) {
            throw ValidationError("--radius must be a distance from 1e-6 to 1e9 scene units, got \(radius)")
        }
    }

    func load(_ url: URL) throws -> (RenderSubject, center: SIMD3<Float>, radius: Float) {
        let loaded = try RenderSubject.load(url, name: asset, allowOutsidePaths: paths.allowOutsidePaths)
        if normals, case .splats = loaded.subject { throw CLIError("--normals needs a mesh: \(asset) is a splat file") }
        return loaded
    }

    func run() throws {
        let url = URL(fileURLWithPath: asset)
        let (subject, center, sphere) = try load(url)
        do { try OrbitFraming.check(center: center, radius: sphere, distance: radius, name: asset, distanceFlag: radius == nil ? nil : "--radius") } catch {
            throw CLIError("\(error)")
        }
        // The views appear together or not at all (a full disk leaves nothing behind).
        var job = OrbitRender(views: views, size: size, elevation: elevation, background: background.rgb)
        (job.radius, job.depth, job.normals) = (radius, depth, normals)
        try output.staged { folder in try job.write(subject, center: center, sphere: sphere, url: url, to: folder) }
        print("wrote \(views) views, sheet.png and transforms.json to \(output.out)")
    }
}
