import ArgumentParser
import Foundation
import KilnAsset
import KilnCore
import KilnDistill
import KilnEval
import KilnNN
import KilnPrior
import KilnRender
import KilnRun

extension DistillationMethod: ExpressibleByArgument {}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Text to 3D or 4D: score-distil Gaussian splats (or a NeRF) from the built-in prior, steered by rewards.",
        discussion: """
        Optimises Gaussian splats so that their renders, seen by the prior from each camera, look \
        like PROMPT (SDS with camera-conditioned guidance), optionally steered by the reward \
        models (--method rw-sds|reward-feedback|dpo, --reward alignment:1,view:0.5). RUNDIR gets \
        config.json (every setting, resolved, reusable as --config), log.csv (per step: timestep, \
        losses, reward, Gaussians, seconds), checkpoint/ (every --checkpoint-every steps; \
        --resume continues bit-identically), previews/, and at the end sheet.png (8 views), \
        turntable/ (36 frames), loss.png, reward.png (the reward-aware methods only), \
        splats.ply (or field.safetensors for --representation nerf), asset.glb (the mesh; kiln \
        export RUNDIR makes others) and score.json (when the reward models are found). Every PNG \
        records the prompt, seed and settings in its text chunks. Ctrl-C or SIGTERM saves a \
        checkpoint and exits 130, during the steps or while the final files are written (--resume \
        finishes them). One kiln generate at a time writes into a folder (RUNDIR/.kiln-lock); \
        settings are checked before anything is written, and --resume may extend --steps but not \
        shorten it. A prompt with \
        a motion ("a yellow duck bouncing") or --frames N makes a 4D run: moving splats, and \
        frames/ with each frame's splats and mesh, an animated GLB, a frame-by-view sheet and \
        per-frame turntables.
        """
    )

    @Argument(help: "What to make, in the prior's vocabulary (\"a red snowman\").")
    var prompt: String

    @OptionGroup var output: OutputFolderOptions

    @Option(help: "Random seed (initial points, cameras, noise); default 0.")
    var seed: UInt64?

    @Option(help: "Optimisation steps; default 600.")
    var steps: Int?

    @Option(help: "Classifier-free guidance scale.")
    var guidanceScale: Double?

    @Option(help: "Prompt to guide away from.")
    var negativePrompt: String?

    @Option(help: "Distillation method: sds, rw-sds, reward-feedback or dpo; default sds.")
    var method: DistillationMethod?

    @Option(help: "Scene representation: gaussians (splats.ply) or nerf (a hash-grid field rendered at the prior's size, field.safetensors); default gaussians.")
    var representation: String?

    @Option(help: "Coarse to fine: 'mesh' refines the extracted mesh's colours with the mesh rasterizer (with --resume: adds the stage to a finished run); default none.")
    var refine: String?

    @Option(help: "Steps of the mesh refinement; default 300.")
    var refineSteps: Int?

    @Flag(help: "With --refine mesh: refine smooth vertex offsets as well as the colours (refine.offset_learning_rate, refine.smoothness).")
    var refineOffsets = false

    @Option(help: "4D: frames of the animation (a prompt with a motion, \"a red duck bouncing\", is 4D with 16 frames by default).")
    var frames: Int?

    @Option(help: "Rewards and weights for the reward-aware methods, e.g. alignment:1,view:0.5.")
    var reward: String?

    @Option(help: "View-group advantage β: weight the step's views by their rewards (0: off).")
    var viewAdvantage: Float?

    @Option(help: "JSON settings overriding the defaults, in config.json's layout (flags override it in turn).")
    var config: String?

    @Option(help: ArgumentHelp(ShippedAssets.help(.prior)), completion: .directory)
    var prior: String?

    @Option(help: ArgumentHelp(ShippedAssets.help(.rewards)), completion: .directory)
    var rewards: String?

    @Option(help: "Steps between preview images (0: none).")
    var previewEvery: Int = 100

    func validate() throws {
        if let steps { guard (1...1_000_000).contains(steps) else { throw ValidationError("--steps must be 1…1000000, got \(steps)") } }
        if let frames { guard (2...256).contains(frames) else { throw ValidationError("--frames must be 2…256, got \(frames)") } }
        if let guidanceScale { guard guidanceScale.isFinite, guidanceScale >= 0 else { throw ValidationError("--guidance-scale must be a number ≥ 0") } }
        if let viewAdvantage { guard viewAdvantage.isFinite, viewAdvantage >= 0 else { throw ValidationError("--view-advantage must be a number ≥ 0") } }
        guard previewEvery >= 0 else { throw ValidationError("--preview-every must be 0 or more") }
    }

    @Flag(help: "Continue the run in --out from its last checkpoint (bit-identical to an uninterrupted run).")
    var resume = false

    @Option(help: "Steps between checkpoints.")
    var checkpointEvery: Int = 100

    func run() throws {
        _ = Memory.retainFreedMemory()
        let folder = output.url
        let runFolder = RunFolder(folder)
        let configURL = runFolder.config
        var settings: GenerateSettings
        var renderAtPriorSize = false
        if resume {
            guard FileManager.default.fileExists(atPath: configURL.path) else {
                throw CLIError("--resume: \(configURL.path) is missing; \(folder.path) is not a kiln generate run (start one without --resume)")
            }
            settings = try GenerateSettings.load(configURL)
            guard settings.prompt == prompt else { throw CLIError("--resume: the run in \(folder.path) is for \"\(settings.prompt)\", not \"\(prompt)\"") }
            let conflicting = [config.map { _ in "--config" }, seed.map { _ in "--seed" }, method.map { _ in "--method" }, guidanceScale.map { _ in "--guidance-scale" },
                               negativePrompt.map { _ in "--negative-prompt" }, reward.map { _ in "--reward" }, viewAdvantage.map { _ in "--view-advantage" },
                               representation.map { _ in "--representation" }, frames.map { _ in "--frames" }].compactMap { $0 }
            guard conflicting.isEmpty else {
                throw CLIError("--resume continues with the run's own config.json; drop " + conflicting.joined(separator: ", ")
                               + " (only --steps may change, to extend the run, and --refine/--refine-steps, to add or extend the refinement)")
            }
            if let steps, steps != settings.steps {
                // A run's schedules (learning-rate decay, timestep annealing, densification) follow
                // its length, so a shorter run is a different run: only extending is allowed.
                guard steps > settings.steps else {
                    throw CLIError("--resume --steps \(steps): the run in \(folder.path) was set up for \(settings.steps) steps and cannot be shortened "
                                   + "(its schedules follow its length); drop --steps to finish it, pass more than \(settings.steps) to extend it, or start a new run")
                }
                say("extending the run from \(settings.steps) to \(steps) steps (config.json is updated)")
                settings.steps = steps
            }
            // A finished coarse run can gain its refinement stage later (DreamGaussian's stage 2 on
            // stage 1's output); a refined run cannot lose it.
            if let refine {
                guard settings.refine.stage == "none" || settings.refine.stage == refine else {
                    throw CLIError("--resume: the run in \(folder.path) already refines with '\(settings.refine.stage)'; start a new run for '\(refine)'")
                }
                settings.refine.stage = refine
            }
            if let refineSteps { settings.refine.steps = refineSteps }
            if refineOffsets && !settings.refine.offsets {
                guard !FileManager.default.fileExists(atPath: runFolder.checkpoint(.refine).path) else {
                    throw CLIError("--resume --refine-offsets: the run in \(folder.path) has begun refining colours only; start a new run to refine offsets")
                }
                settings.refine.offsets = true
            }
        } else {
            let loaded = try GenerateSettings.loadRecordingKeys(config.map { URL(fileURLWithPath: $0) })
            settings = loaded.settings
            settings.prompt = prompt
            if let negativePrompt { settings.negativePrompt = negativePrompt }
            if let seed { settings.seed = seed }
            if let steps { settings.steps = steps }
            if let method { settings.guidance.method = method }
            if let representation { settings.representation = representation }
            // A NeRF renders at the prior's own size unless the config asks otherwise: a ray per
            // prior pixel costs a third of the 2×2 supersampling splats get (0.22 s against 0.63 s
            // per step, with the same 16-view score after 100 steps).
            renderAtPriorSize = settings.representation == "nerf" && !loaded.given.contains("views.render_size")
            if let refine { settings.refine.stage = refine }
            if let refineSteps { settings.refine.steps = refineSteps }
            if refineOffsets { settings.refine.offsets = true }
            if let guidanceScale { settings.sds.guidanceScale = guidanceScale }
            if let reward { settings.guidance.rewards = try RewardMix(parsing: reward) }
            if let viewAdvantage { settings.guidance.viewAdvantage = viewAdvantage }
            // 4D when asked for frames, or when the caption names a motion (unless the config says otherwise).
            if let frames {
                settings.dynamic = true
                settings.motion.frames = frames
            } else if !loaded.given.contains("dynamic"), ToyCaption(prompt).motion != nil {
                settings.dynamic = true
            }
        }
        let (steps, seed) = (settings.steps, settings.seed)
        let pipeline = try PriorPipeline(folder: try ShippedAssets.resolve(prior, .prior))
        let unknown = pipeline.settings.unknownWords(in: prompt)
        if !unknown.isEmpty, let vocabulary = pipeline.settings.vocabulary {
            warn("this prior was never trained on \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")); it knows: \(vocabulary.sorted().joined(separator: ", "))")
        }
        let distillationPrior = try DistillationPrior(pipeline: pipeline, prompt: prompt, negativePrompt: settings.negativePrompt)
        if renderAtPriorSize { settings.views.renderSize = distillationPrior.imageSize }
        // Every setting is checked before anything is written: a refused run leaves no config.json
        // behind, so the same command, corrected, runs in the same folder.
        try settings.validate(priorSize: distillationPrior.imageSize)
        // The reward models steer the reward-aware methods and score the result; a run without them
        // (plain SDS and no models) still runs, unscored.
        let rewardsURL = try ShippedAssets.resolve(self.rewards, .rewards)
        let rewards = rewardsURL.path
        let models: RewardModels?
        if settings.guidance.usesRewards {
            models = try RewardModels(folder: rewardsURL)
        } else {
            models = try? RewardModels(folder: rewardsURL)
            if models == nil { warn("no reward models in \(rewards): the run is not scored (score.json)") }
        }
        let runRNG = RNG(seed: seed).split(2)
        let extent = settings.views.objectRadius
        let coarse: MeshResult
        // One writer per run folder: a second kiln generate into the same --out is refused.
        let existed = FileManager.default.fileExists(atPath: folder.path)
        if !existed { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        let lock: FolderLock
        do { lock = try FolderLock.acquire(folder, purpose: "kiln generate") } catch {
            if !existed { try? FileManager.default.removeItem(at: folder) }
            throw CLIError("--out \(error)")
        }
        defer { lock.release() }
        if !resume {
            do { try output.prepare() } catch {
                lock.release()
                if !existed { try? FileManager.default.removeItem(at: folder) }
                throw error
            }
        }
        try writeJSON(settings, to: configURL, snakeCase: true)
        switch settings.representation {
        case "gaussians" where settings.dynamic:
            let scene = try DynamicGaussianScene(settings: settings.gaussians, motion: settings.motion, steps: steps, extent: extent, seed: seed)
            if settings.motion.pairReward > 0 {
                let url = rewardsURL.appendingPathComponent("motion_pair.safetensors")
                if FileManager.default.fileExists(atPath: url.path) {
                    scene.motionPairReward = (try MotionPairReward.load(url), ToyCaption(prompt).motion)
                } else {
                    warn("\(rewards) has no motion_pair.safetensors: the motion-pair reward is off (kiln train-motion-reward --out \(rewards) --force makes it)")
                }
            }
            let run = try DistillationRun(scene: scene, prior: distillationPrior, rewards: settings.guidance.usesRewards ? models : nil, steps: steps,
                                          sds: settings.sds, guidance: settings.guidance, views: settings.views, rng: runRNG)
            coarse = try execute(run, stage: .coarse, settings: settings, folder: folder, scorer: models) { stopIfInterrupted in
                let firstMesh = try writeFrames(scene, settings: settings, folder: folder, stopIfInterrupted: stopIfInterrupted)
                // The run's own sheet, turntable and score show frame 0.
                try GaussianCloudIO.write(scene.cloud(at: 0).cloud, to: runFolder.splats)
                return firstMesh
            }
        case "gaussians":
            let scene = try GaussianScene(settings: settings.gaussians, steps: steps, extent: extent, seed: seed)
            let run = try DistillationRun(scene: scene, prior: distillationPrior, rewards: settings.guidance.usesRewards ? models : nil, steps: steps,
                                          sds: settings.sds, guidance: settings.guidance, views: settings.views, rng: runRNG)
            coarse = try execute(run, stage: .coarse, settings: settings, folder: folder, scorer: models) { _ in
                try GaussianCloudIO.write(scene.parameters.cloud, to: runFolder.splats)
                return try SplatMeshing(views: settings.views).mesh(scene.parameters)
            }
        case "nerf":
            let scene = try NeRFScene(settings: settings.nerf, extent: extent, seed: seed)
            precondition(scene.field.halfSize == FieldMeshing.halfSize(settings), "the field's box is FieldMeshing.halfSize")
            let run = try DistillationRun(scene: scene, prior: distillationPrior, rewards: settings.guidance.usesRewards ? models : nil, steps: steps,
                                          sds: settings.sds, guidance: settings.guidance, views: settings.views, rng: runRNG)
            coarse = try execute(run, stage: .coarse, settings: settings, folder: folder, scorer: models) { _ in
                try FieldMeshing.write(scene.field, to: runFolder.field)
                return try FieldMeshing(views: settings.views).mesh(scene.field)
            }
        default:
            throw CLIError("representation '\(settings.representation)' is not available; use gaussians or nerf")
        }
        var meshScores = MeshScores(coarse: models.map { MeshScores.score(coarse.mesh, prompt: prompt, views: settings.views, scorer: $0) })
        guard settings.refine.stage == "mesh" else {
            try writeMeshScores(meshScores, folder)
            return
        }
        // Coarse to fine: the extracted mesh's colours (and with offsets its vertices) refined under
        // the same distillation.
        try FileManager.default.moveItemReplacing(runFolder.asset, to: runFolder.coarseAsset)
        let offsets = settings.refine.offsets
            ? MeshOffsetSettings(learningRate: settings.refine.offsetLearningRate, smoothness: settings.refine.smoothness,
                                 gradientSmoothing: settings.refine.gradientSmoothing) : nil
        let meshScene = MeshScene(mesh: coarse.mesh, learningRate: settings.refine.learningRate, offsets: offsets)
        let refineRun = try DistillationRun(scene: meshScene, prior: distillationPrior, rewards: settings.guidance.usesRewards ? models : nil,
                                            steps: settings.refine.steps, sds: settings.sds, guidance: settings.guidance, views: settings.views,
                                            rng: RNG(seed: seed).split(3))
        let refined = try execute(refineRun, stage: .refine, settings: settings, folder: folder, scorer: nil) { _ in
            MeshResult(mesh: meshScene.refinedMesh, report: coarse.report)
        }
        meshScores.refined = models.map { MeshScores.score(refined.mesh, prompt: prompt, views: settings.views, scorer: $0) }
        try writeMeshScores(meshScores, folder)
    }

    func writeMeshScores(_ scores: MeshScores, _ folder: URL) throws {
        guard let coarse = scores.coarse else { return }
        try writeJSON(scores, to: RunFolder(folder).meshScore)
        say(String(format: "mesh score: alignment %.2f%@", coarse.meanAlignment,
                   scores.refined.map { String(format: " → %.2f after refinement", $0.meanAlignment) } ?? ""))
    }

    /// The two stages of a run: the representation, then (with refine: mesh) the mesh's colours.
    typealias Stage = RunFolder.Stage

    /// One stage's optimisation loop with its checkpoints, log, previews and interruption, then its
    /// final files; returns the stage's mesh (also written as asset.glb).
    func execute<Scene: DistilledScene>(_ run: DistillationRun<Scene>, stage: Stage, settings: GenerateSettings, folder: URL, scorer: RewardModels?,
                                        finish: (_ stopIfInterrupted: () throws -> Void) throws -> MeshResult) throws -> MeshResult {
        let steps = run.steps
        let runFolder = RunFolder(folder)
        let checkpoint = runFolder.checkpoint(stage)
        let logURL = runFolder.log(stage)
        var log = RunLog()
        if resume, FileManager.default.fileExists(atPath: runFolder.checkpointState(stage).path) || stage == .coarse {
            try run.restore(from: checkpoint)
            log = RunLog(csv: (try? String(contentsOf: logURL, encoding: .utf8)) ?? "", upTo: run.completedSteps)
            if run.completedSteps < steps { say("resuming \(stage == .coarse ? "" : "the refinement ")at step \(run.completedSteps) of \(steps)") }
        }
        try FileManager.default.createDirectory(at: runFolder.previews, withIntermediateDirectories: true)
        func saveCheckpoint() throws {
            try run.saveCheckpoint(to: checkpoint)
            try FileIO.writeAtomically(Data(log.csv.utf8), to: logURL)
        }
        // Every picture of the run records the prompt, seed and settings that made it.
        let metadata = KilnMetadata(command: "generate", prompt: settings.prompt, seed: settings.seed, settings: settings)
        let interrupt = Interrupt.install()
        let progress = ProgressLine(total: steps, start: run.completedSteps)
        let unit = stage == .refine ? "vertices" : settings.representation == "nerf" ? "occupied cells" : "splats"
        if run.completedSteps < steps {
            say(stage == .coarse
                ? "generating \"\(settings.prompt)\": \(settings.representation), \(steps) steps, \(settings.guidance.method.rawValue), \(settings.views.viewsPerStep) views per step, seed \(settings.seed)"
                : "refining the mesh's colours: \(steps) steps")
        }
        /// Ctrl-C or SIGTERM: the checkpoint is saved (the loop's last step saved it) and the run
        /// exits 130; `--resume` redoes the finishing stage from it.
        func stopIfInterrupted() throws {
            guard interrupt.requested else { return }
            try saveCheckpoint()
            progress.finish()
            say("interrupted: checkpoint at step \(run.completedSteps) saved; continue with kiln generate \"\(settings.prompt)\" --out \(folder.path) --resume"
                + (run.completedSteps == steps ? " (it redoes the final files)" : ""))
            throw ExitCode(130)
        }
        while run.completedSteps < steps {
            let r: StepReport
            do { r = try run.step() } catch let error as DistillError {
                try saveCheckpoint()
                throw CLIError("\(error)")
            }
            log.append(r)
            if r.skipped { progress.note("step \(r.step): non-finite gradient, update skipped (\(run.skippedSteps) so far)") }
            progress.update(step: r.step, detail: String(format: "t %3d  sds %.4f", r.timestep, r.sdsLoss) + (r.reward.map { String(format: "  reward %.2f", $0) } ?? "") + "  \(r.size) \(unit)")
            if previewEvery > 0, r.step % previewEvery == 0 || r.step == steps {
                let views = [0, 90, 180, 270].map { run.render(azimuthDegrees: Float($0), elevationDegrees: 15, size: 128) }
                try PNG.write(Image.contactSheet(views, columns: 4, labels: ["0°", "90°", "180°", "270°"]),
                              to: runFolder.preview(stage, step: r.step), metadata: metadata)
            }
            if r.step % max(1, checkpointEvery) == 0 || r.step == steps { try saveCheckpoint() }
            try stopIfInterrupted()
        }
        progress.finish()
        try stopIfInterrupted()
        let mesh = try finish(stopIfInterrupted)
        try stopIfInterrupted()
        _ = try MeshExport.write(mesh.mesh, to: runFolder.asset)
        try stopIfInterrupted()
        say("mesh: \(mesh.mesh.triangleCount) triangles (\(mesh.report))" + (mesh.summary.isEmpty ? "" : "; " + mesh.summary))
        let azimuths = (0..<8).map { Float($0 * 45) }
        let sheet = Image.contactSheet(azimuths.map { run.render(azimuthDegrees: $0, elevationDegrees: 15, size: 128) }, columns: 4,
                                       labels: azimuths.map { "\(Int($0))°" })
        try PNG.write(sheet, to: runFolder.sheet(stage), metadata: metadata)
        try PNG.write(Image.linePlot(log.lossPoints, title: "SDS loss by step"), to: runFolder.lossPlot(stage), metadata: metadata)
        let rewardPoints = log.rewardPoints
        if !rewardPoints.isEmpty {
            try PNG.write(Image.linePlot(rewardPoints, logY: false, title: "reward of x0 by step"), to: runFolder.rewardPlot(stage), metadata: metadata)
        }
        guard stage == .coarse else { return mesh }
        let turntable = runFolder.turntable
        try FileManager.default.createDirectory(at: turntable, withIntermediateDirectories: true)
        for i in 0..<36 {
            try stopIfInterrupted()
            try PNG.write(run.render(azimuthDegrees: Float(i * 10), elevationDegrees: 15, size: 128),
                          to: runFolder.turntableFrame(i), metadata: metadata)
        }
        try stopIfInterrupted()
        if let scorer {
            // Scored views at the render size, or the models' size when the renders are smaller.
            let views = settings.views, size = scorer.imageSize * max(1, views.renderSize / scorer.imageSize)
            let score = AssetScore.measure(caption: ToyCaption(settings.prompt), rewards: scorer, renderSize: size) { a, e in
                run.scene.preview(camera: views.camera(azimuthDegrees: a, elevationDegrees: e, size: size), time: nil, background: SIMD3(1, 1, 1))
            }
            try writeJSON(score, to: runFolder.score)
            say(String(format: "score (16 views): alignment %.2f (min %.2f), kind %@, Janus %@", score.meanAlignment, score.minAlignment,
                       score.kindAccuracy.map { String(format: "%.2f", $0) } ?? "–", score.janus ? "yes" : "no"))
        }
        say(String(format: "wrote %@: %d %@, %d steps (%d skipped) in %.1f s", folder.path, run.scene.size, unit, steps, run.skippedSteps, progress.elapsed))
        return mesh
    }
}

/// A 4D run's frames: `frames/splats_NNN.ply` and `frames/asset_NNN.glb` (a numbered mesh
/// sequence) at τ = i/(F − 1), `frames/sheet.png` (frames down, views across), and
/// `frames/turntable_NNN/` (12 views of each frame).
/// - Returns: frame 0's mesh (the run's asset.glb).
func writeFrames(_ scene: DynamicGaussianScene, settings: GenerateSettings, folder: URL, stopIfInterrupted: () throws -> Void = {}) throws -> MeshResult {
    let runFolder = RunFolder(folder), frames = runFolder.frames
    try FileManager.default.createDirectory(at: frames, withIntermediateDirectories: true)
    let count = settings.motion.frames, views = settings.views
    // One camera path for every frame, far enough back that the object stays in view at all times.
    let framing = scene.orbitFraming(times: (0..<count).map { Float($0) / Float(count - 1) }, views: views)
    func render(_ p: SplatParameters<Float>, azimuth: Float) -> Image {
        let camera = Camera.orbit(azimuthDegrees: azimuth, elevationDegrees: 15, radius: framing.distance, target: framing.target,
                                  width: 128, height: 128, fovYRadians: ViewSettings.fovYDegrees * .pi / 180)
        return SplatRasterizer.render(p, camera: camera, settings: SplatRenderSettings(background: SIMD3(1, 1, 1))).color
    }
    let metadata = KilnMetadata(command: "generate", prompt: settings.prompt, seed: settings.seed, settings: settings)
    var sheet: [Image] = [], labels: [String] = []
    var firstMesh: MeshResult? = nil
    let shown = Set((0..<min(count, 8)).map { $0 * (count - 1) / max(1, min(count, 8) - 1) })
    for i in 0..<count {
        try stopIfInterrupted()
        let tau = Float(i) / Float(count - 1)
        let cloud = scene.cloud(at: tau)
        try GaussianCloudIO.write(cloud.cloud, to: runFolder.frameSplats(i))
        let mesh = try SplatMeshing(views: views).mesh(cloud)
        if i == 0 { firstMesh = mesh }
        _ = try MeshExport.write(mesh.mesh, to: runFolder.frameAsset(i))
        let turntable = runFolder.frameTurntable(i)
        try FileManager.default.createDirectory(at: turntable, withIntermediateDirectories: true)
        for v in 0..<12 {
            try PNG.write(render(cloud, azimuth: Float(v * 30)), to: turntable.appendingPathComponent(String(format: "view_%03d.png", v)), metadata: metadata)
        }
        if shown.contains(i) {
            for azimuth in [0, 90, 180, 270] {
                sheet.append(render(cloud, azimuth: Float(azimuth)))
                labels.append(String(format: "t=%.2f %d°", tau, azimuth))
            }
        }
    }
    try PNG.write(Image.contactSheet(sheet, columns: 4, labels: labels), to: runFolder.framesSheet, metadata: metadata)
    // One mesh that moves: frame 0's mesh, its vertices carried by the Gaussians around them.
    let base = firstMesh!.mesh.removingUnusedVertices()
    let times = (0..<count).map { Float($0) / Float(count - 1) }
    try MeshExport.writeAnimatedGLB(base, frames: scene.carriedVertices(of: base, times: times), times: times.map { $0 * animationSeconds },
                                    to: runFolder.animatedAsset)
    say("frames: \(count) (frames/splats_NNN.ply, frames/asset_NNN.glb, frames/animated.glb, frames/sheet.png, frames/turntable_NNN/)")
    return firstMesh!
}

/// The length of a 4D run's loop in `frames/animated.glb`.
let animationSeconds: Float = 2

/// The exported mesh judged like the representation (`score_mesh.json`): rendered by the mesh
/// rasterizer with the toy lighting, before and after refinement.
struct MeshScores: Codable {
    var coarse: AssetScore?
    var refined: AssetScore? = nil

    static func score(_ mesh: TriangleMesh, prompt: String, views: ViewSettings, scorer: RewardModels) -> AssetScore {
        let scene = MeshScene(mesh: mesh)
        let size = scorer.imageSize * max(1, views.renderSize / scorer.imageSize)
        return AssetScore.measure(caption: ToyCaption(prompt), rewards: scorer, renderSize: size) { a, e in
            scene.preview(camera: views.camera(azimuthDegrees: a, elevationDegrees: e, size: size), time: nil, background: SIMD3(1, 1, 1))
        }
    }
}

extension FileManager {
    /// Renames `source` to `destination`, replacing it.
    func moveItemReplacing(_ source: URL, to destination: URL) throws {
        if fileExists(atPath: destination.path) { try removeItem(at: destination) }
        try moveItem(at: source, to: destination)
    }
}

/// The run's per-step log, `log.csv`.
struct RunLog {
    static let header = "step,timestep,sds_loss,reward,reward_loss,size,non_finite,skipped,seconds\n"
    private(set) var rows: [String] = []
    private var reports: [(step: Int, sds: Float, reward: Float?)] = []

    init() {}

    /// The rows of an earlier run up to `step` (a resumed run continues after them).
    init(csv: String, upTo step: Int) {
        for line in csv.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count >= 9, let s = Int(fields[0]), s <= step, let sds = Float(fields[2]) else { continue }
            rows.append(String(line))
            reports.append((s, sds, Float(fields[3])))
        }
    }

    mutating func append(_ r: StepReport) {
        rows.append("\(r.step),\(r.timestep),\(r.sdsLoss),\(r.reward.map { "\($0)" } ?? ""),\(r.rewardLoss.map { "\($0)" } ?? ""),\(r.size),\(r.nonFinite),\(r.skipped ? 1 : 0),\(r.seconds)")
        reports.append((r.step, r.sdsLoss, r.reward))
    }

    var csv: String { Self.header + rows.map { $0 + "\n" }.joined() }

    /// The SDS loss and the reward, each averaged over windows of 1/100 of the run, for plots.
    var lossPoints: [(x: Double, y: Double)] { smoothed(reports.map { (Double($0.step), Double($0.sds)) }) }

    var rewardPoints: [(x: Double, y: Double)] { smoothed(reports.compactMap { r in r.reward.map { (Double(r.step), Double($0)) } }) }

    func smoothed(_ values: [(Double, Double)]) -> [(x: Double, y: Double)] {
        let window = max(1, values.count / 100)
        return stride(from: 0, to: values.count, by: window).map { i in
            let slice = values[i..<min(values.count, i + window)]
            return (slice.last!.0, slice.map(\.1).reduce(0, +) / Double(slice.count))
        }
    }
}

/// The coarse-to-fine stage: "none", or "mesh" (the extracted mesh's vertex colours refined, and
/// with `offsets` smooth vertex offsets too).
struct RefineSettings: Codable {
    var stage = "none"
    var steps = 300
    var learningRate = 0.02
    var offsets = false
    /// Adam's step on the offsets, in world units.
    var offsetLearningRate = 0.002
    /// Weight of the uniform Laplacian term on the offsets.
    var smoothness: Float = 10
    /// λ of the (I + λL)⁻¹ smoothing of the offsets' gradient (0: off).
    var gradientSmoothing: Float = 0
}

/// Every setting of a run, as `config.json` records it and `--config` overrides it.
struct GenerateSettings: Codable {
    var prompt = ""
    var negativePrompt = ""
    var seed: UInt64 = 0
    var steps = 600
    var representation = "gaussians"
    var sds = SDSSettings()
    var guidance = RewardGuidanceSettings()
    var views = ViewSettings()
    var gaussians = GaussianSettings()
    var nerf = NeRFSettings()
    var refine = RefineSettings()
    /// 4D: a moving cloud (`DynamicGaussianScene`), with these motion settings.
    var dynamic = false
    var motion = MotionSettings()

    /// Defaults, overridden by a config file (snake_case keys, the layout `config.json` is written
    /// in, so a run's config reproduces it; unknown keys are errors).
    static func load(_ url: URL?) throws -> GenerateSettings {
        try loadRecordingKeys(url).settings
    }

    /// `load`, and the settings the file names ("section.field", or "field" for top-level ones).
    static func loadRecordingKeys(_ url: URL?) throws -> (settings: GenerateSettings, given: Set<String>) {
        let defaults = GenerateSettings()
        guard let url else { return (defaults, []) }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw CLIError("--config \(url.path) cannot be read") }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: data) } catch {
            // Foundation's message names the line and column of the syntax error.
            let detail = jsonSyntaxText(error, data: data)
            throw CLIError("--config \(url.path) is not valid JSON: \(detail); fix the file (config.json of an earlier run shows the layout)")
        }
        guard let object = parsed as? [String: Any] else {
            throw CLIError("--config \(url.path) is not a JSON object: give {\"section\": {\"setting\": value}, …} as config.json of a run does")
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let reference = try JSONSerialization.jsonObject(with: encoder.encode(defaults)) as! [String: Any]
        var merged = reference
        var given = Set<String>()
        for (key, value) in object {
            given.insert(key)
            if let fields = value as? [String: Any] { for field in fields.keys { given.insert(key + "." + field) } }
            guard let current = reference[key] else {
                throw CLIError("--config \(url.path): '\(key)' is not a setting; use " + reference.keys.sorted().joined(separator: ", "))
            }
            guard let allowed = current as? [String: Any] else { merged[key] = value; continue }
            guard let fields = value as? [String: Any] else { throw CLIError("--config \(url.path): '\(key)' must be an object") }
            var updated = allowed
            for (field, v) in fields {
                guard allowed[field] != nil || Self.optionalKeys.contains("\(key).\(field)") else {
                    let known = Array(allowed.keys) + Self.optionalKeys.filter { $0.hasPrefix(key + ".") }.map { String($0.dropFirst(key.count + 1)) }
                    throw CLIError("--config \(url.path): '\(key).\(field)' is not a setting; known: " + known.sorted().joined(separator: ", "))
                }
                updated[field] = v
            }
            merged[key] = updated
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return (try decoder.decode(GenerateSettings.self, from: JSONSerialization.data(withJSONObject: merged)), given)
        } catch let error as DecodingError {
            throw CLIError("--config \(url.path): \(describe(error))")
        } catch {
            throw CLIError("--config \(url.path): a value has the wrong type (\(error))")
        }
    }

    /// Settings whose default is nil, so they do not appear in the encoded defaults.
    static let optionalKeys: Set<String> = ["sds.gradient_clamp"]

    /// Checks every setting a run uses, before anything is written; errors name the setting (as
    /// config.json spells it), its value and its range.
    func validate(priorSize: Int) throws {
        guard (1...1_000_000).contains(steps) else { throw CLIError("steps must be 1…1000000, got \(steps)") }
        guard ["gaussians", "nerf"].contains(representation) else {
            throw CLIError("representation '\(representation)' is not available; use gaussians or nerf")
        }
        try sds.validate()
        try guidance.validate()
        try views.validate(priorSize: priorSize)
        try gaussians.validate()
        if representation == "nerf" { try nerf.validate() }
        if dynamic {
            try motion.validate()
            guard representation == "gaussians" else { throw CLIError("4D runs (--frames, or a motion in the prompt) use Gaussians; drop --representation \(representation)") }
            guard refine.stage == "none" else { throw CLIError("--refine mesh refines a still asset; a 4D run has one mesh per frame") }
        }
        guard ["none", "mesh"].contains(refine.stage) else { throw CLIError("refine '\(refine.stage)' is not a stage; use mesh (or leave it out)") }
        guard refine.stage == "mesh" || !refine.offsets else { throw CLIError("refine.offsets needs the mesh stage; add --refine mesh") }
        guard refine.offsetLearningRate > 0, refine.offsetLearningRate.isFinite, refine.smoothness >= 0, refine.smoothness.isFinite,
              refine.gradientSmoothing >= 0, refine.gradientSmoothing.isFinite else {
            throw CLIError("refine: offset_learning_rate must be positive, smoothness and gradient_smoothing 0 or more")
        }
        guard (1...1_000_000).contains(refine.steps), refine.learningRate > 0, refine.learningRate.isFinite else {
            throw CLIError("refine: steps must be 1…1000000 and learning_rate positive, got \(refine.steps) and \(refine.learningRate)")
        }
    }
}

