import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a mesh to another mesh format, or a splat file between 3DGS PLY and .splat.",
        discussion: """
        Formats follow the extensions unless --format is given. Meshes: any format Assimp reads in; \
        glb, gltf, obj, ply, stl (binary), fbx (binary) or dae out. Textures are embedded in glb and \
        written beside the file (NAME_basecolor.png) for the others; vertex colours are kept where \
        the format holds them (sRGB outside glTF, and baked into a texture too for obj, fbx and dae, \
        whose readers show textures but not vertex colours). --up z|y: ply and stl are Z up by \
        default, the others Y up. Splats: .ply (INRIA 3DGS) ⇄ .splat (SH degree 0 only). The output appears whole \
        or not at all.

        Meshes can be tidied on the way: --clean drops degenerate and duplicate triangles, welds \
        duplicate vertices (texture seams and hard edges stay split) and removes islands smaller \
        than --min-island of the largest one's area; --max-faces N decimates to at most N \
        triangles by quadric edge collapse, keeping boundaries, seams and orientation.
        """
    )

    @Argument(help: "The input file.", completion: .file())
    var input: String

    @Argument(help: "The output file.", completion: .file())
    var output: String

    @Option(help: "Output format: glb, gltf, obj, ply, stl, fbx, dae for meshes; ply or splat for splats.")
    var format: String?

    @Flag(help: "Replace the output if it exists.")
    var force = false

    @Option(help: ArgumentHelp(upAxisHelp))
    var up: UpAxis?

    @OptionGroup var paths: InputPathOptions

    @Flag(help: "Meshes: drop degenerate and duplicate triangles, weld duplicate vertices, remove small islands.")
    var clean = false

    @Option(name: .customLong("min-island"),
            help: ArgumentHelp("With --clean: remove islands under this fraction of the largest island's area, in [0, 1) (default 0.001; 0 keeps all).",
                               valueName: "fraction"))
    var minIsland: Float?

    @Option(name: .customLong("max-faces"),
            help: ArgumentHelp("Meshes: decimate to at most this many triangles (at least 4).", valueName: "triangles"))
    var maxFaces: Int?

    func validate() throws {
        if let format, MeshFormat(rawValue: format) == nil, SplatFormat(rawValue: format) == nil {
            throw ValidationError("--format \(format) is not a known format: use one of \(MeshFormat.allCases.map(\.rawValue).joined(separator: ", ")), splat")
        }
        if let maxFaces, maxFaces < 4 {
            throw ValidationError("--max-faces \(maxFaces) is too small: pass at least 4 (a closed mesh needs 4 triangles)")
        }
        if let minIsland {
            guard minIsland >= 0 && minIsland < 1 else {
                throw ValidationError("--min-island \(minIsland) is out of range: pass a fraction of the largest island's area in [0, 1)")
            }
            guard clean else { throw ValidationError("--min-island only applies with --clean: add --clean or drop it") }
        }
    }

    /// The mesh-only flags given, as typed.
    private var meshFlags: [String] {
        (clean ? ["--clean"] : []) + (minIsland == nil ? [] : ["--min-island"]) + (maxFaces == nil ? [] : ["--max-faces"]) + (up == nil ? [] : ["--up"])
    }

    func run() throws {
        let inURL = URL(fileURLWithPath: input), outURL = URL(fileURLWithPath: output)
        if FileManager.default.fileExists(atPath: outURL.path) && !force {
            throw CLIError("\(output) exists: pass --force to replace it or choose another name")
        }
        if inURL.standardizedFileURL == outURL.standardizedFileURL {
            throw CLIError("the input and the output are the same file: choose another output name")
        }
        switch try AssetKind.of(inURL) {
        case .png:
            throw CLIError("\(input) is a PNG image: convert takes meshes and splat files")
        case .splatPLY, .splatFile:
            if let flag = meshFlags.first {
                throw CLIError("\(flag) works on meshes only and \(input) holds Gaussian splats: drop \(meshFlags.joined(separator: " and "))")
            }
            let cloud = try GaussianCloudIO.read(inURL)
            guard let target = format.flatMap(SplatFormat.init(rawValue:)) ?? SplatFormat(pathExtension: outURL.pathExtension) else {
                throw CLIError("\(output): a splat converts to .ply or .splat; pass --format ply|splat")
            }
            try GaussianCloudIO.write(cloud, to: outURL, format: target)
            print("wrote \(output): \(cloud.count) Gaussians (\(target))" + (target == .splat && cloud.shDegree > 0 ? "; SH degree \(cloud.shDegree) reduced to 0, as .splat holds colour only" : ""))
        case .mesh:
            guard let target = format.flatMap(MeshFormat.init(rawValue:)) ?? MeshFormat(pathExtension: outURL.pathExtension) else {
                throw CLIError("\(output): unknown mesh extension; use one of \(MeshFormat.allCases.map(\.rawValue).joined(separator: ", ")) or pass --format")
            }
            let imported = try MeshImport.read(inURL, allowOutsidePaths: paths.allowOutsidePaths)
            for warning in imported.info.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            let mesh = tidied(imported.mesh)
            let files = try MeshExport.write(mesh, to: outURL, format: target, up: up)
            print("wrote \(files.map(\.path).joined(separator: ", ")): \(mesh.vertexCount) vertices, \(mesh.triangleCount) triangles (\(target))")
        }
    }

    /// The mesh after --clean and --max-faces, with a line saying what they did.
    private func tidied(_ mesh: TriangleMesh) -> TriangleMesh {
        guard clean || maxFaces != nil else { return mesh }
        var options = MeshCleanupOptions()
        if !clean, let maxFaces { options = .decimationOnly(maximumTriangleCount: maxFaces) }
        options.maximumTriangleCount = maxFaces
        if let minIsland { options.minimumIslandAreaFraction = minIsland }
        let result = mesh.cleanedForExport(options)
        if clean {
            print("cleaned: \(result.report)")
        } else if let from = result.report.decimatedFrom, let to = result.report.decimatedTo {
            print("decimated \(from) → \(to) triangles")
        } else {
            print("kept \(mesh.triangleCount) triangles: within --max-faces \(maxFaces ?? 0)")
        }
        return result.mesh
    }
}
