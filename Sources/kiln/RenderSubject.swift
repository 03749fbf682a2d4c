import Foundation
import KilnAsset
import KilnCore
import KilnRender

/// One loaded asset, reduced to what rendering needs: splats or a prepared mesh, and the sphere
/// that frames it.
enum RenderSubject {
    case splats(SplatParameters<Float>)
    case mesh(MeshRenderer)

    /// Reads a splat file (3DGS PLY, .splat) or any mesh Assimp reads; `name` is how errors call it.
    static func load(_ url: URL, name: String) throws -> (subject: RenderSubject, center: SIMD3<Float>, radius: Float) {
        let kind = try AssetKind.of(url)
        switch kind {
        case .splatPLY, .splatFile:
            let cloud = try GaussianCloudIO.read(url, format: kind == .splatPLY ? .ply : .splat)
            guard cloud.count > 0 else { throw CLIError("\(name) holds no Gaussians: nothing to render") }
            let (center, sphere) = OrbitFraming.robustSphere(cloud.means)
            return (.splats(SplatParameters<Float>(cloud)), center, sphere)
        case .mesh:
            let imported = try MeshImport.read(url)
            for warning in imported.info.warnings { warn(warning) }
            let mesh = imported.mesh
            if let problem = mesh.validationFailure() { throw CLIError("\(name): the mesh \(problem); repair it in a modelling tool or re-export it") }
            guard mesh.triangleCount > 0 else { throw CLIError("\(name) holds no triangles: nothing to render") }
            let renderer = MeshRenderer(mesh)
            return (.mesh(renderer), renderer.center, renderer.radius)
        case .png:
            throw CLIError("\(name) is a PNG image: give a splat file or a mesh")
        }
    }
}
