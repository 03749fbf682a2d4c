import Foundation
import KilnAsset
import KilnCore
import KilnRender
import RealModule

/// One loaded asset, reduced to what rendering needs: splats or a prepared mesh, and the sphere
/// that frames it.
public enum RenderSubject {
    case splats(SplatParameters<Float>)
    case mesh(MeshRenderer)

    /// Reads a splat file (3DGS PLY, .splat) or any mesh Assimp reads; `name` is how errors call it.
    public static func load(_ url: URL, name: String, allowOutsidePaths: Bool = false) throws -> (subject: RenderSubject, center: SIMD3<Float>, radius: Float) {
        let kind = try AssetKind.of(url)
        switch kind {
        case .splatPLY, .splatFile:
            let cloud = try GaussianCloudIO.read(url, format: kind == .splatPLY ? .ply : .splat)
            guard cloud.count > 0 else { throw RunError("\(name) holds no Gaussians: nothing to render") }
            // The renderers' range (`OrbitFraming.coordinateLimit`): beyond it projections overflow.
            let limit = OrbitFraming.coordinateLimit
            if let i = cloud.means.firstIndex(where: { max(abs($0.x), abs($0.y), abs($0.z)) > limit }) {
                throw RunError("\(name): Gaussian \(i) is at (\(cloud.means[i].x), \(cloud.means[i].y), \(cloud.means[i].z)), farther than \(Int(limit)) units from the origin: "
                               + "the splats diverged or the file is corrupt; remove the stray Gaussian or re-export the cloud")
            }
            if let i = cloud.logScales.firstIndex(where: { max($0.x, $0.y, $0.z) > Foundation.log(limit) }) {
                throw RunError("\(name): Gaussian \(i) has the log scale \(max(cloud.logScales[i].x, cloud.logScales[i].y, cloud.logScales[i].z)), larger than \(Int(limit)) units: "
                               + "the splats diverged or the file is corrupt; remove the Gaussian or re-export the cloud")
            }
            let (center, sphere) = OrbitFraming.robustSphere(cloud.means)
            return (.splats(SplatParameters<Float>(cloud)), center, sphere)
        case .mesh:
            let imported = try MeshImport.read(url, allowOutsidePaths: allowOutsidePaths)
            for warning in imported.info.warnings { warn(warning) }
            let mesh = imported.mesh
            if let problem = mesh.validationFailure() { throw RunError("\(name): the mesh \(problem); repair it in a modelling tool or re-export it") }
            guard mesh.triangleCount > 0 else { throw RunError("\(name) holds no triangles: nothing to render") }
            let renderer = MeshRenderer(mesh)
            return (.mesh(renderer), renderer.center, renderer.radius)
        case .png:
            throw RunError("\(name) is a PNG image: give a splat file or a mesh")
        }
    }
}
