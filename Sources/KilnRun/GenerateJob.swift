import Foundation
import KilnAsset
import KilnCore
import KilnDistill
import KilnEval
import KilnNN
import KilnPrior
import KilnRender
import KilnToyWorld

/// `kiln generate` as a job of four stages, each finished before the next begins:
///
///     distil   the representation optimised by score distillation; writes splats.ply or field.safetensors
///     refine   (refine: mesh) the extracted mesh's colours (and offsets) under the same distillation
///     export   asset.glb (asset-coarse.glb before a refinement); a 4D run's frames/
///     report   sheets, loss and reward plots, the turntable, score.json and score_mesh.json
///
/// The optimising stages checkpoint as they go (`--resume` continues them bit-identically); a
/// finished stage is listed in `stages.json`, and a resumed job starts at the first stage that is
/// not, redoing every stage after it.
public final class GenerateJob {
    public typealias Stage = RunFolder.Stage

    /// How the job reports and saves while it runs.
    public struct Options: Sendable {
        public var resume = false
        /// Steps between preview images (0: none).
        public var previewEvery = 100
        public var checkpointEvery = 100
        public init() {}
    }

    public let settings: GenerateSettings
    public let prompt: Prompt
    public let folder: RunFolder
    public let prior: any DiffusionPrior
    /// The reward models: they steer the reward-aware methods and score the result (nil: unscored).
    public let rewards: RewardModels?
    /// The 4D runs' motion-pair reward, when the settings ask for it and it was found.
    public let motionPair: (any MotionReward)?
    public let options: Options
    /// Where this sitting's time goes, stage by stage (written as profile.json).
    public let profiler: Profiler
    let interrupt = Interrupt.install()
    /// Every picture of the run records the prompt, seed and settings that made it.
    let metadata: KilnMetadata

    public init(settings: GenerateSettings, prompt: Prompt, folder: RunFolder, prior: any DiffusionPrior, rewards: RewardModels?,
                motionPair: (any MotionReward)?, options: Options, profiler: Profiler = Profiler()) {
        self.profiler = profiler
        self.settings = settings
        self.prompt = prompt
        self.folder = folder
        self.prior = prior
        self.rewards = rewards
        self.motionPair = motionPair
        self.options = options
        metadata = KilnMetadata(command: "generate", prompt: settings.prompt, seed: settings.seed, settings: settings)
    }

    /// The rewards the loop's guidance uses (only the reward-aware methods take them): the models
    /// bound to the prompt's caption.
    var guidanceRewards: (any ImageRewards)? {
        settings.guidance.usesRewards ? rewards.map { ToyImageRewards(models: $0, caption: prompt.caption) } : nil
    }

    // MARK: Running

    /// Runs the stages not yet finished; the folder must be prepared (and locked) by the caller,
    /// and config.json written.
    /// - Throws: `RunInterrupted` after Ctrl-C or SIGTERM (the checkpoint saved), `RunError`.
    /// `profile.json` is written when the run finishes or is interrupted (a resumed run's holds every
    /// sitting's time), not when it is refused or fails, which leave the folder as it was; a
    /// finished run prints it as a table.
    public func run() throws {
        do {
            try runStages()
            writeProfile(printed: true)
        } catch let error as RunInterrupted {
            writeProfile(printed: false)
            throw error
        }
    }

    /// profile.json: this sitting's profile, added to the earlier sittings' on a resume.
    func writeProfile(printed: Bool) {
        var profile = profiler.profile
        if options.resume, FileManager.default.fileExists(atPath: folder.profile.path) {
            do { profile = RunProfile.sum([try RunProfile.read(folder.profile), profile]) } catch {
                warn("\(folder.profile.path) cannot be read (\(error)); profile.json holds this sitting only")
            }
        }
        do { try writeJSON(profile, to: folder.profile) } catch { warn("profile.json not written: \(error)") }
        if printed { say("where the time went (profile.json):\n" + profile.table) }
    }

    func runStages() throws {
        try profiler.activate {
            var finished = options.resume ? finishedStages() : []
            let distilled = try profiler.measure("distil") { try distil(finished: finished.contains(.distil)) }
            if distilled.ran { finished = try mark(.distil, in: finished) }
            var refined: (loop: Loop, log: RunLog, mesh: MeshResult)? = nil
            if settings.refine.stage == .mesh {
                let stage = try profiler.measure("refine") { try refine(distilled, finished: finished.contains(.refine)) }
                refined = (stage.loop, stage.log, stage.mesh)
                if stage.ran { finished = try mark(.refine, in: finished) }
            }
            if !finished.contains(.export) {
                try profiler.measure("export") { try export(distilled, refined: refined?.mesh) }
                finished = try mark(.export, in: finished)
            }
            if !finished.contains(.report) {
                try profiler.measure("report") { try report(distilled, refined: refined.map { ($0.loop, $0.log, $0.mesh) }) }
                finished = try mark(.report, in: finished)
            }
            say(String(format: "wrote %@: %d %@, %d steps (%d skipped)", folder.url.path, distilled.loop.size, distilled.loop.unit,
                       settings.steps, distilled.loop.skippedSteps))
        }
    }

    /// The stages `stages.json` lists as finished (none when it is missing or unreadable).
    func finishedStages() -> [Stage] {
        guard let data = FileManager.default.contents(atPath: folder.stages.path),
              let stages = try? JSONDecoder().decode([Stage].self, from: data) else { return [] }
        return stages
    }

    /// Records `stage` as finished after `earlier` (the stages after it are to be redone).
    func mark(_ stage: Stage, in earlier: [Stage]) throws -> [Stage] {
        let finished = earlier.filter { $0 < stage } + [stage]
        try writeJSON(finished, to: folder.stages)
        return finished
    }

    /// Ctrl-C or SIGTERM between a stage's files: the optimising stages' checkpoints are already
    /// saved (at their last step), so `--resume` redoes the stage that was stopped.
    func stopIfInterrupted(_ stage: Stage) throws {
        guard interrupt.requested else { return }
        throw RunInterrupted("interrupted during the \(stage.rawValue) stage; continue with kiln generate \"\(settings.prompt)\" --out \(folder.url.path) --resume (it redoes that stage)")
    }

    // MARK: Stages

    /// A distilled representation: its loop (for renders) and what the later stages need of it.
    final class Distilled {
        let loop: Loop
        let log: RunLog
        /// Whether the stage ran (it was not finished, or it took more steps).
        let ran: Bool
        let extract: () throws -> MeshResult
        /// A 4D run's moving cloud.
        let moving: DynamicGaussianScene?
        var extracted: MeshResult?

        init(loop: Loop, optimised: (log: RunLog, stepped: Bool), finished: Bool, extractMesh: @escaping () throws -> MeshResult,
             moving: DynamicGaussianScene?) {
            (self.loop, self.log, ran, extract, self.moving) = (loop, optimised.log, !finished || optimised.stepped, extractMesh, moving)
        }

        /// The mesh extracted from the representation (marching cubes, clean-up, colours), made once.
        func extractMesh() throws -> MeshResult {
            if let extracted { return extracted }
            let mesh = try Profiler.measure("mesh extraction") { try extract() }
            extracted = mesh
            return mesh
        }
    }

    /// Stage 1: the representation, optimised (or restored when the stage is finished) and written.
    func distil(finished: Bool) throws -> Distilled {
        let parts = try settings.representation.scene.make(for: self)
        let distilled = Distilled(loop: parts.loop, optimised: try optimise(parts.loop, finished: finished), finished: finished,
                                  extractMesh: parts.extractMesh, moving: parts.moving)
        if distilled.ran { try Profiler.measure("write") { try parts.write() } }
        try stopIfInterrupted(.distil)
        return distilled
    }

    /// The distillation loop of a scene, as the settings ask; `unit` is what its size counts.
    func distillationLoop<Scene: DistilledScene>(_ scene: Scene, unit: String) throws -> Loop {
        Loop(try DistillationRun(scene: scene, prior: prior, rewards: guidanceRewards, steps: settings.steps, sds: settings.sds,
                                 guidance: settings.guidance, views: settings.views, rng: RNG(seed: settings.seed).split(2)), stage: .distil, unit: unit)
    }

    /// Stage 2 (refine: mesh): the extracted mesh (asset-coarse.glb) refined under the same distillation.
    func refine(_ distilled: Distilled, finished: Bool) throws -> (loop: Loop, log: RunLog, mesh: MeshResult, ran: Bool) {
        let coarse = try distilled.extractMesh()
        if distilled.ran || !finished {
            _ = try MeshExport.write(coarse.mesh, to: folder.coarseAsset)
            say("coarse mesh: \(coarse.mesh.triangleCount) triangles (\(coarse.report))" + (coarse.summary.isEmpty ? "" : "; " + coarse.summary))
        }
        let scene = MeshScene(mesh: coarse.mesh, learningRate: settings.refine.learningRate, offsets: settings.refine.meshOffsets)
        let loop = Loop(try DistillationRun(scene: scene, prior: prior, rewards: guidanceRewards, steps: settings.refine.steps, sds: settings.sds,
                                            guidance: settings.guidance, views: settings.views, rng: RNG(seed: settings.seed).split(3)), stage: .refine,
                        unit: "vertices")
        let optimised = try optimise(loop, finished: finished)
        try stopIfInterrupted(.refine)
        return (loop, optimised.log, MeshResult(mesh: scene.refinedMesh, report: coarse.report), !finished || optimised.stepped)
    }

    /// Stage 3: asset.glb, the refined mesh or the one extracted from the representation, and a
    /// 4D run's frames.
    func export(_ distilled: Distilled, refined: MeshResult?) throws {
        let mesh = try refined ?? distilled.extractMesh()
        try stopIfInterrupted(.export)
        _ = try Profiler.measure("mesh export") { try MeshExport.write(mesh.mesh, to: folder.asset) }
        say("mesh: \(mesh.mesh.triangleCount) triangles (\(mesh.report))" + (mesh.summary.isEmpty ? "" : "; " + mesh.summary))
        if let moving = distilled.moving {
            try Profiler.measure("frames") {
                try FrameWriter(scene: moving, settings: settings, folder: folder, metadata: metadata)
                    .write(firstMesh: mesh) { try self.stopIfInterrupted(.export) }
            }
        }
    }

    /// Stage 4: each optimising stage's sheet and plots, the turntable, and the scores.
    func report(_ distilled: Distilled, refined: (loop: Loop, log: RunLog, mesh: MeshResult)?) throws {
        try pictures(distilled.loop, log: distilled.log)
        let turntable = folder.turntable
        try FileManager.default.createDirectory(at: turntable, withIntermediateDirectories: true)
        try Profiler.measure("turntable") {
            for i in 0..<36 {
                try stopIfInterrupted(.report)
                try PNG.write(distilled.loop.render(Float(i * 10), 15, 128), to: folder.turntableFrame(i), metadata: metadata)
            }
        }
        if let refined { try pictures(refined.loop, log: refined.log) }
        try stopIfInterrupted(.report)
        guard let rewards else { return }
        // Scored views at the render size, or the models' size when the renders are smaller.
        let views = settings.views, size = rewards.imageSize * max(1, views.renderSize / rewards.imageSize)
        let score = Profiler.measure("score") {
            AssetScore.measure(caption: prompt.caption, rewards: rewards, renderSize: size) { a, e in
                distilled.loop.preview(views.camera(azimuthDegrees: a, elevationDegrees: e, size: size))
            }
        }
        try writeJSON(score, to: folder.score)
        say(String(format: "score (16 views): alignment %.2f (min %.2f), kind %@, Janus %@", score.meanAlignment, score.minAlignment,
                   score.kindAccuracy.map { String(format: "%.2f", $0) } ?? "–", score.janus ? "yes" : "no"))
        // The exported mesh judged like the representation, before and after refinement.
        let coarseMesh = try distilled.extractMesh().mesh
        var meshScores = Profiler.measure("mesh score") { MeshScores(coarse: MeshScores.score(coarseMesh, prompt: prompt, views: views, scorer: rewards)) }
        if let refined { meshScores.refined = Profiler.measure("mesh score") { MeshScores.score(refined.mesh.mesh, prompt: prompt, views: views, scorer: rewards) } }
        try writeJSON(meshScores, to: folder.meshScore)
        say(String(format: "mesh score: alignment %.2f%@", meshScores.coarse!.meanAlignment,
                   meshScores.refined.map { String(format: " → %.2f after refinement", $0.meanAlignment) } ?? ""))
    }

    /// An optimising stage's sheet (8 views), loss plot and (reward-aware methods) reward plot.
    func pictures(_ loop: Loop, log: RunLog) throws { try Profiler.measure("sheets and plots") { try drawPictures(loop, log: log) } }

    func drawPictures(_ loop: Loop, log: RunLog) throws {
        let azimuths = (0..<8).map { Float($0 * 45) }
        let sheet = Image.contactSheet(azimuths.map { loop.render($0, 15, 128) }, columns: 4, labels: azimuths.map { "\(Int($0))°" })
        try PNG.write(sheet, to: folder.sheet(loop.stage), metadata: metadata)
        try PNG.write(Image.linePlot(log.lossPoints, title: "SDS loss by step"), to: folder.lossPlot(loop.stage), metadata: metadata)
        let rewardPoints = log.rewardPoints
        if !rewardPoints.isEmpty {
            try PNG.write(Image.linePlot(rewardPoints, logY: false, title: "reward of x0 by step"), to: folder.rewardPlot(loop.stage), metadata: metadata)
        }
    }

    // MARK: The optimisation loop

    /// One optimising stage's loop, whatever its scene.
    struct Loop {
        let stage: Stage
        /// What `size` counts: "splats", "occupied cells", "vertices".
        let unit: String
        let steps: Int
        let completedSteps: () -> Int
        let skipped: () -> Int
        let sceneSize: () -> Int
        let step: () throws -> StepReport
        let save: (URL) throws -> Void
        let restore: (URL) throws -> Void
        /// A display render from an orbit camera (azimuth, elevation, size) on white.
        let render: (Float, Float, Int) -> Image
        /// `[H, W, 3]` display colours from a camera, on white.
        let preview: (Camera) -> [Float]

        init<Scene: DistilledScene>(_ run: DistillationRun<Scene>, stage: Stage, unit: String) {
            (self.stage, self.unit) = (stage, unit)
            steps = run.steps
            completedSteps = { run.completedSteps }
            skipped = { run.skippedSteps }
            sceneSize = { run.scene.size }
            step = run.step
            save = run.saveCheckpoint(to:)
            restore = run.restore(from:)
            render = { run.render(azimuthDegrees: $0, elevationDegrees: $1, size: $2) }
            preview = { run.scene.preview(camera: $0, time: nil, background: SIMD3(1, 1, 1)) }
        }

        var size: Int { sceneSize() }
        var skippedSteps: Int { skipped() }
    }

    /// Runs a loop to its last step with checkpoints, its log, previews and interruption; a
    /// resumed job restores it first (a finished stage's loop has no steps left unless the run
    /// was extended).
    /// - Returns: the stage's log, and whether any step was taken.
    func optimise(_ loop: Loop, finished: Bool) throws -> (log: RunLog, stepped: Bool) {
        let steps = loop.steps, stage = loop.stage
        let checkpoint = folder.checkpoint(stage), logURL = folder.log(stage)
        var log = RunLog()
        if options.resume, FileManager.default.fileExists(atPath: folder.checkpointState(stage).path) || stage == .distil {
            do { try loop.restore(checkpoint) } catch let error as DistillError { throw RunError("\(error)") }
            log = RunLog(csv: (try? String(contentsOf: logURL, encoding: .utf8)) ?? "", upTo: loop.completedSteps())
            if loop.completedSteps() < steps { say("resuming \(stage == .distil ? "" : "the refinement ")at step \(loop.completedSteps()) of \(steps)") }
        }
        if loop.completedSteps() == steps { return (log, false) }
        try FileManager.default.createDirectory(at: folder.previews, withIntermediateDirectories: true)
        func saveCheckpoint() throws {
            try Profiler.measure("checkpoints") {
                try loop.save(checkpoint)
                try FileIO.writeAtomically(Data(log.csv.utf8), to: logURL)
            }
        }
        let progress = ProgressLine(total: steps, start: loop.completedSteps())
        let unit = loop.unit
        if loop.completedSteps() < steps {
            say(stage == .distil
                ? "generating \"\(settings.prompt)\": \(settings.representation.rawValue), \(steps) steps, \(settings.guidance.method.rawValue), \(settings.views.viewsPerStep) views per step, seed \(settings.seed)"
                : "refining the mesh's colours: \(steps) steps")
        }
        func stopIfInterrupted() throws {
            guard interrupt.requested else { return }
            try saveCheckpoint()
            progress.finish()
            throw RunInterrupted("interrupted: checkpoint at step \(loop.completedSteps()) saved; continue with kiln generate \"\(settings.prompt)\" --out \(folder.url.path) --resume")
        }
        while loop.completedSteps() < steps {
            let r: StepReport
            do { r = try loop.step() } catch let error as DistillError {
                try saveCheckpoint()
                throw RunError("\(error)")
            }
            log.append(r)
            if r.skipped { progress.note("step \(r.step): non-finite gradient, update skipped (\(loop.skippedSteps) so far)") }
            progress.update(step: r.step, detail: String(format: "t %3d  sds %.4f", r.timestep, r.sdsLoss) + (r.reward.map { String(format: "  reward %.2f", $0) } ?? "") + "  \(r.size) \(unit)")
            if options.previewEvery > 0, r.step % options.previewEvery == 0 || r.step == steps {
                try Profiler.measure("previews") {
                    let views = [0, 90, 180, 270].map { loop.render(Float($0), 15, 128) }
                    try PNG.write(Image.contactSheet(views, columns: 4, labels: ["0°", "90°", "180°", "270°"]),
                                  to: folder.preview(stage, step: r.step), metadata: metadata)
                }
            }
            if r.step % max(1, options.checkpointEvery) == 0 || r.step == steps { try saveCheckpoint() }
            try stopIfInterrupted()
        }
        progress.finish()
        try stopIfInterrupted()
        return (log, true)
    }
}

/// Ctrl-C or SIGTERM stopped a job after saving what `--resume` needs; the message says how to
/// continue (the command exits 130).
public struct RunInterrupted: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The exported mesh judged like the representation (`score_mesh.json`): rendered by the mesh
/// rasterizer with the toy lighting, before and after refinement.
public struct MeshScores: Codable {
    public var coarse: AssetScore?
    public var refined: AssetScore? = nil

    public init(coarse: AssetScore?, refined: AssetScore? = nil) { (self.coarse, self.refined) = (coarse, refined) }

    public static func score(_ mesh: TriangleMesh, prompt: Prompt, views: ViewSettings, scorer: RewardModels) -> AssetScore {
        let scene = MeshScene(mesh: mesh)
        let size = scorer.imageSize * max(1, views.renderSize / scorer.imageSize)
        return AssetScore.measure(caption: prompt.caption, rewards: scorer, renderSize: size) { a, e in
            scene.preview(camera: views.camera(azimuthDegrees: a, elevationDegrees: e, size: size), time: nil, background: SIMD3(1, 1, 1))
        }
    }
}

extension GenerateJob {
    /// Starts (or with `request.resume` continues) a run in `folder`: the settings resolved and
    /// checked before anything is written (a refused run leaves no config.json behind, so the same
    /// command, corrected, runs in the same folder), the prior and reward models loaded, the folder
    /// prepared and locked (one writer per run folder), config.json written, then the stages run.
    public static func run(_ request: GenerateRequest, in folder: RunFolder, force: Bool, priorFolder: URL, rewardsFolder: URL,
                           options: Options) throws {
        var settings: GenerateSettings
        var picksRenderSize = false
        if request.resume {
            let resumed = try request.resumedSettings(folder)
            settings = resumed.settings
            resumed.notes.forEach(say)
        } else {
            (settings, picksRenderSize) = try request.newSettings()
        }
        // The prompt, parsed once: its text conditions the prior, its caption the rewards and the motion.
        let prompt = Prompt(settings.prompt, negative: settings.negativePrompt)
        // Loading the models is the profile's "setup" stage.
        let profiler = Profiler(), setupStart = ContinuousClock.now
        let prior = try PriorRegistry.open(priorFolder, prompt: prompt)
        if picksRenderSize { settings.views.renderSize = ViewSettings.defaultRenderSize(priorSize: prior.imageSize, nerf: settings.representation == .nerf) }
        try settings.validate(priorSize: prior.imageSize)
        // The reward models steer the reward-aware methods and score the result; a run without them
        // (plain SDS and no models) still runs, unscored.
        let rewards: RewardModels?
        if settings.guidance.usesRewards {
            rewards = try RewardModels(folder: rewardsFolder)
        } else {
            rewards = try? RewardModels(folder: rewardsFolder)
            if rewards == nil { warn("no reward models in \(rewardsFolder.path): the run is not scored (score.json)") }
        }
        var motionPair: (any MotionReward)? = nil
        if settings.dynamic, settings.motion.pairReward > 0 {
            let url = rewardsFolder.appendingPathComponent("motion_pair.safetensors")
            if FileManager.default.fileExists(atPath: url.path) {
                motionPair = ToyMotionReward(model: try MotionPairReward.load(url), motion: prompt.caption.motion)
            } else {
                warn("\(rewardsFolder.path) has no motion_pair.safetensors: the motion-pair reward is off (kiln train-motion-reward --out \(rewardsFolder.path) --force makes it)")
            }
        }
        profiler.record("setup", seconds: (ContinuousClock.now - setupStart).seconds)
        let existed = FileManager.default.fileExists(atPath: folder.url.path)
        if !existed { try FileManager.default.createDirectory(at: folder.url, withIntermediateDirectories: true) }
        let lock: FolderLock
        do { lock = try folder.lock(purpose: "kiln generate") } catch {
            if !existed { try? FileManager.default.removeItem(at: folder.url) }
            throw RunError("--out \(error)")
        }
        defer { lock.release() }
        if !request.resume {
            do { try OutputFolder.prepare(folder.url, force: force) } catch {
                lock.release()
                if !existed { try? FileManager.default.removeItem(at: folder.url) }
                throw error
            }
            // A new run in a used folder starts from its first stage, and its profile from nothing.
            try? FileManager.default.removeItem(at: folder.stages)
            try? FileManager.default.removeItem(at: folder.profile)
        }
        try FileIO.writeAtomically(try settings.encoded(), to: folder.config)
        try GenerateJob(settings: settings, prompt: prompt, folder: folder, prior: prior, rewards: rewards, motionPair: motionPair, options: options, profiler: profiler).run()
    }
}
