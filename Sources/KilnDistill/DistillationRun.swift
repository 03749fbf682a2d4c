import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender

/// A scene representation that score distillation can optimise: it renders views, takes back the
/// gradient on their colours, steps its optimiser, and saves and restores its state.
public protocol DistilledScene: AnyObject {
    associatedtype Frame
    /// `[H, W, 3]` display colours of a distillation view in step `step` of `steps` (counting from 1)
    /// at normalised time `time` (nil for a still scene), with `rng` for sample jitter, and what
    /// the backward pass needs.
    func render(camera: Camera, time: Float?, step: Int, of steps: Int, background: SIMD3<Float>, rng: inout RNG) -> (color: [Float], frame: Frame)
    /// `[H, W, 3]` display colours for a preview at normalised time `time` (nil: a still scene, or a
    /// dynamic scene's first frame): no jitter, nothing kept.
    func preview(camera: Camera, time: Float?, background: SIMD3<Float>) -> [Float]
    /// Adds the gradient of a loss whose gradient on the frame's colours is `dColor`.
    func accumulate(_ frame: Frame, dColor: [Float])
    /// Whether every accumulated gradient is finite.
    var gradientIsFinite: Bool { get }
    /// One optimiser step with the accumulated gradient, then clears it. `step` counts from 1.
    func applyStep(step: Int, of steps: Int, rng: inout RNG)
    /// Clears the accumulated gradient without a step.
    func discardGradient()
    /// A size worth logging: Gaussians, occupied cells.
    var size: Int { get }
    /// Checkpoint: tensors (bit-exact) and a small JSON state.
    func checkpoint(into tensors: inout SafeTensorsWriter) throws -> Data
    func restore(tensors: SafeTensorsFile, state: Data) throws
    /// A dynamic (4D) scene's normalised times for a step's `count` views, drawn from `rng`, or
    /// nil for a still scene (the default, which draws nothing). Each view is rendered at its time.
    func drawTimes(count: Int, step: Int, of steps: Int, rng: inout RNG) -> [Float]?
}

extension DistilledScene {
    public func drawTimes(count: Int, step: Int, of steps: Int, rng: inout RNG) -> [Float]? { nil }
}

/// Text to 3D by score distillation, for any `DistilledScene` and any `DiffusionPrior`: per step K
/// orbit views rendered, taken into the prior's space (`DiffusionPrior.encode`), judged by
/// `RewardGuidance`, and the gradient taken back through the prior's encoding and the scene's
/// renderer to its optimiser. Deterministic for a seed and a thread count.
public final class DistillationRun<Scene: DistilledScene> {
    public let scene: Scene
    public let prior: any DiffusionPrior
    public let rewards: (any ImageRewards)?
    public let steps: Int
    public let sds: SDSSettings
    public let guidance: RewardGuidanceSettings
    public let views: ViewSettings
    /// Draws cameras, backgrounds, timesteps, noise and sample jitter.
    public internal(set) var rng: RNG
    /// Steps taken so far (skipped ones included).
    public internal(set) var completedSteps = 0
    /// Steps whose gradient was not finite, left without an update.
    public internal(set) var skippedSteps = 0
    /// Skipped steps in a row; `step()` throws after `maxConsecutiveSkips`.
    var consecutiveSkips = 0
    public static var maxConsecutiveSkips: Int { 20 }
    /// VSD's particle model (`sds.objective` vsd), nil otherwise.
    public let particle: ParticleScoreModel?

    public init(scene: Scene, prior: any DiffusionPrior, rewards: (any ImageRewards)?, steps: Int, sds: SDSSettings, guidance: RewardGuidanceSettings,
                views: ViewSettings, rng: RNG) throws {
        try views.validate(priorSize: prior.imageSize)
        try sds.validate()
        try guidance.validate()
        guard steps > 0 else { throw DistillError.badSetting("--steps must be positive, got \(steps)") }
        if sds.objective == .ism && (guidance.method == .rewardWeighted || guidance.method == .dpo) {
            throw DistillError.badSetting("--objective ism draws no noise, so --method \(guidance.method.rawValue), which compares noises, has nothing to compare; use --method sds or reward-feedback with it")
        }
        if guidance.usesRewards {
            guard let rewards else { throw DistillError.badReward("\(guidance.method.rawValue) needs the reward models") }
            guard prior.imageSize % rewards.imageSize == 0 else {
                throw DistillError.badReward("the reward models take \(rewards.imageSize)² images and the prior's \(prior.imageSize)² images do not average down to them; use reward models trained at a size that divides the prior's")
            }
            for kind in guidance.rewards.weights.keys where !rewards.provides(kind) {
                throw DistillError.badReward("the \(kind.rawValue) model is not loaded")
            }
        }
        self.scene = scene
        self.prior = prior
        self.rewards = rewards
        self.steps = steps
        self.sds = sds
        self.guidance = guidance
        self.views = views
        self.rng = rng
        // The adapters' initial values from a stream of their own, so the run's draws are SDS's.
        var adapters = rng.split(7)
        particle = sds.objective == .vsd ? prior.makeParticleModel(rank: sds.vsdRank, learningRate: sds.vsdLearningRate, seed: adapters.next()) : nil
    }

    /// The K cameras of a step: azimuths evenly spread from a random start, elevations drawn
    /// independently, a background each from the prior's training backgrounds; with their prior
    /// conditioning.
    func drawViews() -> [(camera: Camera, view: ViewConditioning, background: SIMD3<Float>)] {
        let k = views.viewsPerStep
        let start = rng.uniform(0...360)
        let drawn = (0..<k).map { i -> (camera: Camera, view: ViewConditioning, background: SIMD3<Float>) in
            var azimuth = start + 360 * Float(i) / Float(k)
            if azimuth >= 360 { azimuth -= 360 }
            let elevation = rng.uniform(views.elevationMinDegrees...views.elevationMaxDegrees)
            let background = prior.backgrounds[Int(rng.next() % UInt64(prior.backgrounds.count))]
            return (views.camera(azimuthDegrees: azimuth, elevationDegrees: elevation, size: views.renderSize),
                    ViewConditioning(azimuthDegrees: azimuth, elevationDegrees: elevation), background)
        }
        // A dynamic scene pairs each view with a time, and the prior sees that time too.
        guard let times = scene.drawTimes(count: k, step: completedSteps + 1, of: steps, rng: &rng) else { return drawn }
        return zip(drawn, times).map { d, t in
            (d.camera, ViewConditioning(azimuthDegrees: d.view.azimuthDegrees, elevationDegrees: d.view.elevationDegrees, time: t), d.background)
        }
    }

    /// One optimisation step. A step whose gradient holds NaN or ±∞ changes nothing in the scene;
    /// it is reported (`skipped`) and counted.
    /// - Throws: `DistillError.diverged` after `maxConsecutiveSkips` such steps in a row.
    public func step() throws -> StepReport {
        let clock = ContinuousClock(), started = clock.now
        let progress = Double(completedSteps) / Double(steps)
        let drawn = drawViews()
        let size = views.renderSize
        var frames: [Scene.Frame] = [], colors: [[Float]] = []
        Profiler.measure("render forward") {
            for v in drawn {
                let (color, frame) = scene.render(camera: v.camera, time: v.view.time, step: completedSteps + 1, of: steps, background: v.background, rng: &rng)
                frames.append(frame)
                colors.append(color)
            }
        }
        let k = drawn.count
        let x = Profiler.measure("prior encode") { prior.encode(renders: colors, size: size) }
        // What the guidance does besides the prior and the rewards: timesteps, noise, weights.
        let result = Profiler.measure("noise and weighting") {
            RewardGuidance.gradient(prior: prior, rewards: rewards, images: x, views: drawn.map(\.view),
                                    progress: progress, sds: sds, settings: guidance, particle: particle, rng: &rng)
        }
        // The loss is the mean over the step's views (DreamGaussian divides the SDS sum by the batch).
        let dRenders = Profiler.measure("prior encode backward") {
            prior.encodeBackward(Tensor(shape: x.shape, storage: result.gradient.map { $0 / Float(k) }), renders: colors, size: size)
        }
        Profiler.measure("render backward") {
            for (frame, dColor) in zip(frames, dRenders) { scene.accumulate(frame, dColor: dColor) }
        }
        completedSteps += 1
        let finite = result.nonFinite == 0 && scene.gradientIsFinite
        if finite {
            Profiler.measure("optimiser") { scene.applyStep(step: completedSteps, of: steps, rng: &rng) }
            consecutiveSkips = 0
        } else {
            scene.discardGradient()
            skippedSteps += 1
            consecutiveSkips += 1
            if consecutiveSkips >= Self.maxConsecutiveSkips {
                throw DistillError.diverged("\(consecutiveSkips) steps in a row had non-finite gradients (last at step \(completedSteps)); lower the guidance scale or the learning rates, or resume from the last checkpoint")
            }
        }
        return StepReport(step: completedSteps, timestep: result.timestep, sdsLoss: result.sdsLoss / Float(k * k), reward: result.reward,
                          rewardLoss: result.rewardLoss, size: scene.size, nonFinite: result.nonFinite, skipped: !finite,
                          seconds: (clock.now - started).seconds)
    }

    /// Renders the scene from an orbit camera at `size`² on a background at normalised time `time`
    /// (nil: still, or a dynamic scene's first frame), without jitter: an image.
    public func render(azimuthDegrees: Float, elevationDegrees: Float, size: Int, time: Float? = nil, background: SIMD3<Float> = SIMD3(1, 1, 1)) -> Image {
        let color = scene.preview(camera: views.camera(azimuthDegrees: azimuthDegrees, elevationDegrees: elevationDegrees, size: size),
                                  time: time, background: background)
        var image = Image(width: size, height: size, channels: 3)
        image.pixels = color.map { min(1, max(0, $0)) }
        return image
    }

    // MARK: Checkpoints

    struct State: Codable {
        var completedSteps: Int
        var skippedSteps: Int
        var consecutiveSkips: Int
        var rng: RNG
        var scene: Data
        /// VSD: the particle model's optimiser steps (its tensors are in state.safetensors).
        var particleSteps: Int?
    }

    /// Writes the scene's tensors and state and the run's counters and RNG to `folder`, each file
    /// atomically, `state.json` last: `restore(from:)` continues bit-identically.
    public func saveCheckpoint(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var tensors = SafeTensorsWriter(metadata: ["kiln": "distillation checkpoint"])
        let sceneState = try scene.checkpoint(into: &tensors)
        let particleSteps = try particle?.checkpoint(into: &tensors)
        try tensors.write(to: folder.appendingPathComponent("state.safetensors"))
        let state = State(completedSteps: completedSteps, skippedSteps: skippedSteps, consecutiveSkips: consecutiveSkips, rng: rng, scene: sceneState,
                          particleSteps: particleSteps)
        try AtomicFile.write(try JSONEncoder().encode(state), to: folder.appendingPathComponent("state.json"))
    }

    /// Restores what `saveCheckpoint` wrote (the run's settings must be the ones it was made with).
    /// - Throws: `DistillError.badCheckpoint` naming the file and the problem.
    public func restore(from folder: URL) throws {
        let stateURL = folder.appendingPathComponent("state.json")
        guard let data = FileManager.default.contents(atPath: stateURL.path) else {
            throw DistillError.badCheckpoint("\(stateURL.path) is missing: the run has no checkpoint yet; start it again without --resume")
        }
        guard let state = try? JSONDecoder().decode(State.self, from: data) else {
            throw DistillError.badCheckpoint("\(stateURL.path) is unreadable; start the run again without --resume")
        }
        // A checkpoint is checked like any input: counters within the run, tensors finite.
        guard (0...steps).contains(state.completedSteps), (0...state.completedSteps).contains(state.skippedSteps),
              (0...Self.maxConsecutiveSkips).contains(state.consecutiveSkips) else {
            throw DistillError.badCheckpoint("\(stateURL.path) says \(state.completedSteps) steps were done (\(state.skippedSteps) skipped, "
                                             + "\(state.consecutiveSkips) in a row) in a run of \(steps): the checkpoint is corrupt or from a longer run; "
                                             + (state.completedSteps <= 1_000_000 ? "pass --steps of at least \(state.completedSteps), or " : "")
                                             + "start the run again without --resume")
        }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("state.safetensors")) } catch {
            throw DistillError.badCheckpoint("\(folder.path)/state.safetensors: \(error)")
        }
        if let name = file.firstNonFiniteTensor() {
            throw DistillError.badCheckpoint("\(folder.path)/state.safetensors: tensor '\(name)' holds NaN or infinite values: "
                                             + "the checkpoint is corrupt (or saved from a diverged run); start the run again without --resume")
        }
        do {
            try scene.restore(tensors: file, state: state.scene)
            if particle == nil, state.particleSteps != nil {
                throw DistillError.badCheckpoint("\(stateURL.path) holds a VSD particle model: the checkpoint was written with --objective vsd; start the run again without --resume")
            }
            if let particle {
                guard let steps = state.particleSteps, steps >= 0 else {
                    throw DistillError.badCheckpoint("\(stateURL.path) has no VSD particle model: the checkpoint was written with another objective; start the run again without --resume")
                }
                try particle.restore(tensors: file, stepCount: steps)
            }
        } catch let error as DistillError { throw error } catch {
            throw DistillError.badCheckpoint("\(folder.path): \(error); start the run again without --resume")
        }
        rng = state.rng
        completedSteps = state.completedSteps
        skippedSteps = state.skippedSteps
        consecutiveSkips = state.consecutiveSkips
    }
}

/// Errors of a distillation run's settings and checkpoints, each naming the fix.
public enum DistillError: Error, CustomStringConvertible, Equatable {
    case badReward(String)
    case badSetting(String)
    case badCheckpoint(String)
    case diverged(String)

    public var description: String {
        switch self {
        case .badReward(let text): return "--reward: \(text)"
        case .badSetting(let text), .badCheckpoint(let text), .diverged(let text): return text
        }
    }
}

/// What one step did (a row of `log.csv`).
public struct StepReport: Sendable, Equatable {
    public var step: Int
    public var timestep: Int
    /// The SDS surrogate loss per view, ½‖g‖²/K².
    public var sdsLoss: Float
    public var reward: Float?
    public var rewardLoss: Float?
    /// The scene's size: Gaussians, or occupied cells of a NeRF.
    public var size: Int
    public var nonFinite: Int
    /// The gradient was not finite: nothing changed.
    public var skipped: Bool
    public var seconds: Double
}
