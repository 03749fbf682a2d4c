import Foundation
import KilnAsset
import KilnDistill

/// Gaussian splats (`splats.ply`); a 4D run's moving cloud (`DynamicGaussianScene`, its frames
/// written by the export stage) when the settings are dynamic.
enum GaussianRunScene: RunScene {
    static func make(for job: GenerateJob) throws -> RunSceneParts {
        let settings = job.settings, folder = job.folder
        let (steps, seed, extent) = (settings.steps, settings.seed, settings.views.objectRadius)
        guard settings.dynamic else {
            let scene = try GaussianScene(settings: settings.gaussians, steps: steps, extent: extent, seed: seed)
            return RunSceneParts(loop: try job.distillationLoop(scene, unit: "splats"),
                                 write: { try GaussianCloudIO.write(scene.parameters.cloud, to: folder.splats) },
                                 extractMesh: { try SplatMeshing(views: settings.views).mesh(scene.parameters) })
        }
        let scene = try DynamicGaussianScene(settings: settings.gaussians, motion: settings.motion, steps: steps, extent: extent, seed: seed)
        scene.motionPairReward = job.motionPair
        // The run's own splats show frame 0.
        return RunSceneParts(loop: try job.distillationLoop(scene, unit: "splats"),
                             write: { try GaussianCloudIO.write(scene.cloud(at: 0).cloud, to: folder.splats) },
                             extractMesh: { try SplatMeshing(views: settings.views).mesh(scene.cloud(at: 0)) }, moving: scene)
    }
}
