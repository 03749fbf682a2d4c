import Foundation
import KilnAsset
import KilnCore
import KilnDistill
import KilnRender

/// The mesh of a finished run (`kiln export`): its splats (`SplatMeshing`) or its NeRF field
/// (`FieldMeshing`), framed as the run framed them.
public struct RunMeshing: Sendable {
    public var resolution = 96
    public var level: Float? = nil
    public var faces = 20_000
    public var textureSize: Int? = nil

    public init(resolution: Int = 96, level: Float? = nil, faces: Int = 20_000, textureSize: Int? = nil) {
        (self.resolution, self.level, self.faces, self.textureSize) = (resolution, level, faces, textureSize)
    }

    /// - Throws: `RunError` when the run is not finished, or the mesh cannot be reduced to `faces`.
    public func mesh(of run: RunFolder) throws -> MeshResult {
        let splats = run.splats, field = run.field
        let isNeRF = !FileManager.default.fileExists(atPath: splats.path) && FileManager.default.fileExists(atPath: field.path)
        guard isNeRF || FileManager.default.fileExists(atPath: splats.path) else {
            throw RunError("\(splats.path) (or field.safetensors) is missing: RUNDIR must be a finished kiln generate run (resume it with --resume if it stopped)")
        }
        let result: MeshResult
        if isNeRF {
            let settings = try GenerateSettings.load(run: run)
            let meshing = FieldMeshing(resolution: resolution, level: level, faces: faces, textureSize: textureSize, views: settings.views)
            result = try meshing.mesh(try FieldMeshing.load(runFolder: run.url, settings: settings))
        } else {
            let cloud = try GaussianCloudIO.read(splats)
            // The run's framing, when its config.json is there to say it.
            let views = (try? GenerateSettings.load(run: run))?.views ?? ViewSettings()
            let meshing = SplatMeshing(resolution: resolution, level: level, faces: faces, textureSize: textureSize, views: views)
            result = try meshing.mesh(SplatParameters(cloud))
        }
        // `faces` is a promise about the file: a decimator that stops early (small N, a mesh it
        // cannot collapse further) is an error here rather than a larger file.
        guard result.mesh.triangleCount <= faces else {
            throw RunError("--faces \(faces): the mesh could be reduced only to \(result.mesh.triangleCount) triangles (its boundaries and seams are kept); "
                           + "pass --faces \(result.mesh.triangleCount) or more")
        }
        return result
    }
}
