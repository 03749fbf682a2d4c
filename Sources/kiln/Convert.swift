import ArgumentParser
import Foundation
import KilnAsset

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a mesh to another mesh format, or a splat file between 3DGS PLY and .splat.",
        discussion: """
        Formats follow the extensions unless --format is given. Meshes: any format Assimp reads in; \
        glb, gltf, obj, ply, stl, fbx (ASCII) or dae out. Textures are embedded in glb and written \
        beside the file (NAME_basecolor.png) for the others; vertex colours are kept where the format \
        holds them. Splats: .ply (INRIA 3DGS) ⇄ .splat (SH degree 0 only). The output appears whole \
        or not at all.
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

    func validate() throws {
        if let format, MeshFormat(rawValue: format) == nil, SplatFormat(rawValue: format) == nil {
            throw ValidationError("--format \(format) is not a known format: use one of \(MeshFormat.allCases.map(\.rawValue).joined(separator: ", ")), splat")
        }
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
            let imported = try MeshImport.read(inURL)
            for warning in imported.info.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            let files = try MeshExport.write(imported.mesh, to: outURL, format: target)
            print("wrote \(files.map(\.path).joined(separator: ", ")): \(imported.mesh.vertexCount) vertices, \(imported.mesh.triangleCount) triangles (\(target))")
        }
    }
}
