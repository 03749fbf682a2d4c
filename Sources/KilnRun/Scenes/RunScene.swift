import Foundation
import KilnDistill

/// A scene representation as a generate job uses it: made from the settings, distilled by its
/// loop, written to the run folder and meshed. Each representation is one file with one of these;
/// `Representation.scene` registers it (one line).
protocol RunScene {
    /// The scene for `job`'s settings, with its loop and what the later stages need of it.
    static func make(for job: GenerateJob) throws -> RunSceneParts
}

/// What a job needs of its scene.
struct RunSceneParts {
    let loop: GenerateJob.Loop
    /// Writes the representation's file (splats.ply, field.safetensors).
    let write: () throws -> Void
    /// The mesh extracted from the representation (marching cubes, clean-up, colours).
    let extractMesh: () throws -> MeshResult
    /// A 4D run's moving cloud, whose frames the export stage writes.
    var moving: DynamicGaussianScene? = nil
}

extension Representation {
    /// The registered scene of each representation.
    var scene: any RunScene.Type {
        switch self {
        case .gaussians: GaussianRunScene.self
        case .nerf: NeRFRunScene.self
        }
    }
}
