import Foundation
import KilnDistill

/// A hash-grid field (`field.safetensors`), meshed from its density.
enum NeRFRunScene: RunScene {
    static func make(for job: GenerateJob) throws -> RunSceneParts {
        let settings = job.settings, folder = job.folder
        let scene = try NeRFScene(settings: settings.nerf, extent: settings.views.objectRadius, seed: settings.seed)
        precondition(scene.field.halfSize == FieldMeshing.halfSize(settings), "the field's box is FieldMeshing.halfSize")
        return RunSceneParts(loop: try job.distillationLoop(scene, unit: "occupied cells"),
                             write: { try FieldMeshing.write(scene.field, to: folder.field) },
                             extractMesh: { try FieldMeshing(views: settings.views).mesh(scene.field) })
    }
}
