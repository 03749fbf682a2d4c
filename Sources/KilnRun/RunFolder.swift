import Foundation
import KilnAsset

/// Every file of a `kiln generate` run folder, named in one place.
///
///     RUNDIR/
///       config.json                  every setting, resolved (reusable as --config)
///       stages.json                  the stages finished (distil, refine, export, report)
///       log.csv, log-refine.csv      per step
///       checkpoint/, checkpoint-refine/   state.json + tensors, for --resume
///       previews/stepSTAGE_NNNNNN.png
///       sheet.png, loss.png, reward.png (and -refine variants)
///       turntable/frame_NNN.png
///       splats.ply | field.safetensors
///       asset.glb (asset-coarse.glb before a refinement), score.json, score_mesh.json
///       frames/ (4D): splats_NNN.ply, asset_NNN.glb, turntable_NNN/view_NNN.png, sheet.png, animated.glb
///       eval/ (kiln bench): report.json ...; bench.json
///       .kiln-lock                   the one writer's lock (KilnAsset's FolderLock)
///
/// The commands that write or read run folders (generate, export, eval, bench) go through it, so
/// a file is renamed in one line.
public struct RunFolder: Sendable, Equatable {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    /// The stages of a generate job, in order: the distillation, the optional mesh refinement,
    /// the exported files, the pictures and scores. The two optimising stages each have their own
    /// checkpoint, log, previews and pictures; `stages.json` lists the stages finished.
    public enum Stage: String, Codable, CaseIterable, Sendable, Comparable {
        case distil, refine, export, report
        /// File-name suffix of the stage's checkpoint, log, previews and pictures.
        public var suffix: String { self == .distil ? "" : "-" + rawValue }
        public static func < (a: Stage, b: Stage) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
    }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    // MARK: Settings, checkpoints, logs

    public var config: URL { file("config.json") }

    /// Takes the folder's one-writer lock (`.kiln-lock`) for `purpose` ("kiln generate").
    /// - Throws: `FolderLock`'s error naming the process that holds it.
    public func lock(purpose: String) throws -> FolderLock { try FolderLock.acquire(url, purpose: purpose) }
    /// The stages finished, in order (`GenerateJob` skips them when it resumes).
    public var stages: URL { file("stages.json") }
    public func checkpoint(_ stage: Stage) -> URL { file("checkpoint" + stage.suffix) }
    /// The file that says a stage's checkpoint is complete.
    public func checkpointState(_ stage: Stage) -> URL { checkpoint(stage).appendingPathComponent("state.json") }
    public func log(_ stage: Stage) -> URL { file("log\(stage.suffix).csv") }

    // MARK: Pictures

    public var previews: URL { file("previews") }
    public func preview(_ stage: Stage, step: Int) -> URL {
        previews.appendingPathComponent(String(format: "step%@_%06d.png", stage.suffix, step))
    }
    public func sheet(_ stage: Stage) -> URL { file("sheet\(stage.suffix).png") }
    public func lossPlot(_ stage: Stage) -> URL { file("loss\(stage.suffix).png") }
    public func rewardPlot(_ stage: Stage) -> URL { file("reward\(stage.suffix).png") }
    public var turntable: URL { file("turntable") }
    public func turntableFrame(_ i: Int) -> URL { turntable.appendingPathComponent(String(format: "frame_%03d.png", i)) }

    // MARK: The asset and its scores

    public var splats: URL { file("splats.ply") }
    public var field: URL { file("field.safetensors") }
    public var asset: URL { file("asset.glb") }
    /// The coarse run's mesh, kept when a refinement replaces asset.glb.
    public var coarseAsset: URL { file("asset-coarse.glb") }
    /// The mesh in another format (`kiln export`'s default output).
    public func asset(extension ext: String) -> URL { file("asset." + ext) }
    public var score: URL { file("score.json") }
    public var meshScore: URL { file("score_mesh.json") }
    /// Where the run's time went, by stage and kind of work (`RunProfile`).
    public var profile: URL { file("profile.json") }

    // MARK: 4D frames

    public var frames: URL { file("frames") }
    public func frameSplats(_ i: Int) -> URL { frames.appendingPathComponent(String(format: "splats_%03d.ply", i)) }
    public func frameAsset(_ i: Int) -> URL { frames.appendingPathComponent(String(format: "asset_%03d.glb", i)) }
    public func frameTurntable(_ i: Int) -> URL { frames.appendingPathComponent(String(format: "turntable_%03d", i)) }
    public var framesSheet: URL { frames.appendingPathComponent("sheet.png") }
    public var animatedAsset: URL { frames.appendingPathComponent("animated.glb") }

    // MARK: Bench

    public var bench: URL { file("bench.json") }
    public var evaluation: URL { file("eval") }
    public var evaluationReport: URL { evaluation.appendingPathComponent("report.json") }
}
