import Foundation
import Testing
@testable import KilnRun

@Suite("Run folder layout")
struct RunFolderTests {
    @Test("every file of a run folder has its own name, inside the folder, and the stages do not share files")
    func distinctNames() {
        let run = RunFolder(URL(fileURLWithPath: "/runs/a"))
        var urls: [URL] = [run.config, run.stages, run.previews, run.turntable, run.splats, run.field, run.asset, run.coarseAsset, run.score,
                           run.meshScore, run.frames, run.framesSheet, run.animatedAsset, run.bench, run.evaluation, run.evaluationReport,
                           run.asset(extension: "obj"), run.turntableFrame(3), run.frameSplats(2), run.frameAsset(2), run.frameTurntable(2)]
        for stage in [RunFolder.Stage.distil, .refine] {
            urls += [run.checkpoint(stage), run.checkpointState(stage), run.log(stage), run.preview(stage, step: 100), run.sheet(stage),
                     run.lossPlot(stage), run.rewardPlot(stage)]
        }
        let paths = urls.map(\.path)
        #expect(Set(paths).count == paths.count, "two files share a name: \(paths.sorted())")
        #expect(paths.allSatisfy { $0.hasPrefix("/runs/a/") })
        #expect(run.asset(extension: "glb") == run.asset)
    }
}
