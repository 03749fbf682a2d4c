import ArgumentParser
import Foundation
import KilnAsset
import KilnCore
import KilnDistill
import KilnRender
import KilnRun

extension MeshFormat: ExpressibleByArgument {}
extension UpAxis: ExpressibleByArgument {}

/// The help of `--up`, shared by the commands that write meshes.
let upAxisHelp = "Which way is up in the file: z or y (Kiln's world is Y up). Default: z for ply and stl, as Blender and 3D printing expect; y for glb, gltf, obj, fbx and dae, whose importers convert from Y up."

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a generate run as a mesh (glb, gltf, obj, fbx, ply, stl, dae).",
        discussion: """
        A Gaussian run (RUNDIR/splats.ply): the splats are rendered from 28 orbit views, and of \
        three surfaces (the renders' depths fused, DepthFusion; the density level set at 0.5; the \
        level set whose silhouettes match the renders) the one whose renders look most like the \
        splats' is kept; --level L makes the density level set at L instead (a fully opaque \
        Gaussian peaks at 1). A NeRF run (RUNDIR/field.safetensors with its config.json): the \
        field's density σ on a grid over its box, marching cubes at --level, by default the σ whose \
        level set has the same silhouettes as the field's renders from 8 views. Then clean-up and \
        decimation to --faces, and colours projected from 28 renders of the run (where a render \
        sees the surface; elsewhere the colour field): vertex colours, or with --texture-size N a \
        baked N×N base-colour texture on a UV atlas (charts of neighbouring triangles flattened \
        on their planes at one texel density and packed with gutters; every texel a bilinear \
        lookup inside a triangle reads is baked, and the gutters are dilated), with one line \
        saying how many charts, how many interior edges stay continuous and how much of the \
        texture is used. The default output is RUNDIR/asset.FORMAT; every file appears at once.
        """
    )

    @Argument(help: ArgumentHelp("A folder written by kiln generate.", valueName: "rundir"), completion: .directory)
    var runFolder: String

    @Option(help: "Mesh format: glb, gltf, obj, fbx, ply, stl or dae.")
    var format: MeshFormat = .glb

    @Option(help: "Output file (default RUNDIR/asset.FORMAT).", completion: .file())
    var out: String?

    @Option(help: ArgumentHelp(upAxisHelp))
    var up: UpAxis?

    @Option(help: "Largest number of triangles.")
    var faces: Int = 20_000

    @Option(help: "Bake a texture of this size instead of vertex colours (16…4096).")
    var textureSize: Int?

    @Option(help: "Iso level of the density field (splats: a fully opaque Gaussian peaks at 1; a NeRF: σ); by default the level whose silhouettes match the run's renders.")
    var level: Float?

    @Option(help: "Grid samples along the longest side.")
    var resolution: Int = 96

    @Flag(help: "Replace an existing output file.")
    var force = false

    func validate() throws {
        guard (4...10_000_000).contains(faces) else { throw ValidationError("--faces must be 4…10000000, got \(faces)") }
        if let textureSize { guard (16...4096).contains(textureSize) else { throw ValidationError("--texture-size must be 16…4096, got \(textureSize)") } }
        if let level { guard level.isFinite, level > 0 else { throw ValidationError("--level must be a positive number") } }
        guard (8...512).contains(resolution) else { throw ValidationError("--resolution must be 8…512, got \(resolution)") }
    }

    func run() throws {
        let run = RunFolder(URL(fileURLWithPath: runFolder))
        let meshing = RunMeshing(resolution: resolution, level: level, faces: faces, textureSize: textureSize)
        let target = URL(fileURLWithPath: out ?? run.asset(extension: format.fileExtension).path)
        if FileManager.default.fileExists(atPath: target.path) && !force {
            throw CLIError("\(target.path) exists: pass --force to replace it or choose another --out")
        }
        let result = try meshing.mesh(of: run)
        let files = try MeshExport.write(result.mesh, to: target, format: format, up: up)
        if !result.summary.isEmpty { say(result.summary) }
        if let atlas = result.atlas { say(atlas.description) }
        say("\(result.mesh.triangleCount) triangles, \(result.mesh.vertexCount) vertices (\(result.report)); wrote " + files.map(\.path).joined(separator: ", "))
    }
}
