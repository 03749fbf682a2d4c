import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender
import RealModule

/// The Gaussian representation's settings (`kiln generate --config`, section "gaussians").
/// Learning rates and densification follow DreamGaussian's text-to-3D configuration, scaled to
/// the run's length.
public struct GaussianSettings: Codable, Sendable, Equatable {
    /// Views rendered (and judged by the prior together) per step.
    public var viewsPerStep = 4
    /// Side of the square renders; the prior's size must divide it.
    public var renderSize = 64
    public var initialGaussians = 2000
    /// Initial points fill a ball of this radius around the origin (DreamGaussian: 0.5).
    public var initialRadius: Float = 0.4
    /// The radius of the ball the object is framed in: the cameras keep it in view as the toy
    /// world's cameras keep an object's bounding sphere (fov 40°, distance ×1.1).
    public var objectRadius: Float = 0.6
    public var elevationMinDegrees: Float = -10
    public var elevationMaxDegrees: Float = 50
    /// Position learning rate (world units) at the start and the end, log-linear in between.
    public var positionLearningRate: Float = 1e-3
    public var positionLearningRateFinal: Float = 2e-5
    public var featureLearningRate: Float = 0.01
    public var opacityLearningRate: Float = 0.05
    public var scalingLearningRate: Float = 0.005
    public var rotationLearningRate: Float = 0.005
    /// Densification between these fractions of the run, every `densifyEvery` steps.
    public var densifyFrom = 0.1
    public var densifyUntil = 0.7
    public var densifyEvery = 50
    /// Average view-space gradient norm (NDC) above which a Gaussian is cloned or split.
    public var densifyGradientThreshold: Float = 0.002
    public var maxGaussians = 30_000
    /// Opacities are reset to 0.01 at this fraction of the run (0: never).
    public var opacityResetAt = 0.0

    public init() {}

    /// The toy camera's vertical field of view.
    public static let fovYDegrees: Float = ToySample.fovYDegrees

    public func validate(priorSize: Int) throws {
        guard (1...16).contains(viewsPerStep) else { throw DistillError.badSetting("gaussians.views_per_step must be 1…16, got \(viewsPerStep)") }
        guard renderSize >= priorSize, renderSize % priorSize == 0, renderSize <= 512 else {
            throw DistillError.badSetting("gaussians.render_size must be a multiple of the prior's \(priorSize) up to 512, got \(renderSize)")
        }
        guard (1...1_000_000).contains(initialGaussians), maxGaussians >= initialGaussians else {
            throw DistillError.badSetting("gaussians.initial_gaussians must be 1…1000000 and at most max_gaussians")
        }
        guard initialRadius > 0, objectRadius > 0, elevationMinDegrees < elevationMaxDegrees, elevationMinDegrees >= -89, elevationMaxDegrees <= 89 else {
            throw DistillError.badSetting("gaussians: radii must be positive and −89 ≤ elevation_min < elevation_max ≤ 89")
        }
        guard (0...1).contains(densifyFrom), (0...1).contains(densifyUntil), (0...1).contains(opacityResetAt), densifyEvery > 0 else {
            throw DistillError.badSetting("gaussians: densify_from, densify_until and opacity_reset_at are fractions; densify_every is positive")
        }
    }

    /// The camera distance that frames the object ball like the toy world frames its objects.
    public var cameraDistance: Float { objectRadius / Foundation.sin(Self.fovYDegrees * .pi / 360) * 1.1 }

    /// The orbit camera around the origin that frames the object ball, at `size`².
    public func camera(azimuthDegrees: Float, elevationDegrees: Float, size: Int) -> Camera {
        Camera.orbit(azimuthDegrees: azimuthDegrees, elevationDegrees: elevationDegrees, radius: cameraDistance,
                     width: size, height: size, fovYRadians: Self.fovYDegrees * .pi / 180)
    }

    /// The splat optimiser's configuration for a run of `steps`.
    func optimizerConfig(steps: Int) -> SplatTrainingConfig {
        var c = SplatTrainingConfig()
        c.positionLRInitial = positionLearningRate / objectRadius  // SplatOptimizer multiplies by the extent
        c.positionLRFinal = positionLearningRateFinal / objectRadius
        c.positionDecaySteps = steps
        c.featureLR = featureLearningRate
        c.opacityLR = opacityLearningRate
        c.scalingLR = scalingLearningRate
        c.rotationLR = rotationLearningRate
        c.densifyFrom = max(1, Int(densifyFrom * Double(steps)))
        c.densifyUntil = Int(densifyUntil * Double(steps))
        c.densifyEvery = densifyEvery
        c.densifyGradientThreshold = densifyGradientThreshold
        c.opacityResetEvery = opacityResetAt > 0 ? max(1, Int(opacityResetAt * Double(steps))) : 0
        c.maxGaussians = maxGaussians
        c.pruneScaleFraction = 0.5
        return c
    }
}

/// Text-to-3D with Gaussian splats (DreamGaussian's stage 1 with Kiln's prior): random points in a
/// ball, then per step K orbit views rendered, averaged down to the prior's size, judged by
/// `RewardGuidance`, and the gradient taken back through the splat rasterizer to an Adam step
/// with 3DGS density control. Deterministic for a seed and a thread count.
public final class GaussianDistillation {
    public let prior: DistillationPrior
    public let rewards: RewardModels?
    public let caption: ToyCaption
    public let steps: Int
    public let sds: SDSSettings
    public let guidance: RewardGuidanceSettings
    public let settings: GaussianSettings
    public let threads: Int
    public internal(set) var parameters: SplatParameters<Float>
    public internal(set) var optimizer: SplatOptimizer
    /// Draws cameras, backgrounds, timesteps and noise.
    public internal(set) var rng: RNG
    /// Steps taken so far (skipped ones included).
    public internal(set) var completedSteps = 0
    /// Steps whose gradient was not finite, left without an update.
    public internal(set) var skippedSteps = 0
    /// Skipped steps in a row; `step()` throws after `maxConsecutiveSkips`.
    var consecutiveSkips = 0
    public static let maxConsecutiveSkips = 20

    public init(prior: DistillationPrior, rewards: RewardModels?, steps: Int, sds: SDSSettings, guidance: RewardGuidanceSettings,
                settings: GaussianSettings, seed: UInt64, threads: Int = Parallel.defaultThreadCount) throws {
        try settings.validate(priorSize: prior.imageSize)
        try guidance.validate()
        guard steps > 0 else { throw DistillError.badSetting("--steps must be positive, got \(steps)") }
        if guidance.usesRewards {
            guard let rewards else { throw DistillError.badReward("\(guidance.method.rawValue) needs the reward models") }
            guard rewards.imageSize == prior.imageSize else {
                throw DistillError.badReward("the reward models take \(rewards.imageSize)² images but the prior \(prior.imageSize)²; use reward models trained at the prior's size")
            }
            for kind in guidance.rewards.weights.keys where rewards.nets[kind] == nil {
                throw DistillError.badReward("the \(kind.rawValue) model is not loaded")
            }
        }
        self.prior = prior
        self.rewards = rewards
        caption = ToyCaption(prior.prompt)
        self.steps = steps
        self.sds = sds
        self.guidance = guidance
        self.settings = settings
        self.threads = threads
        var initRNG = RNG(seed: seed)
        parameters = SplatFit.initialCloud(count: settings.initialGaussians, center: .zero, radius: settings.initialRadius, rng: &initRNG)
        // Start from a light grey (SH DC 0 is colour 0.5) slightly more opaque than 3DGS's 0.1.
        for i in 0..<parameters.count { parameters.opacityLogits[i] = Foundation.log(0.3 / 0.7) }
        optimizer = SplatOptimizer(parameters: parameters, extent: settings.objectRadius, config: settings.optimizerConfig(steps: steps), seed: seed &+ 1)
        rng = initRNG.split(2)
    }

    /// The K cameras of a step: azimuths evenly spread from a random start, elevations drawn
    /// independently; each with its prior conditioning.
    func drawViews() -> [(camera: Camera, view: ViewConditioning, background: SIMD3<Float>)] {
        let k = settings.viewsPerStep
        let start = rng.uniform(0...360)
        return (0..<k).map { i in
            var azimuth = start + 360 * Float(i) / Float(k)
            if azimuth >= 360 { azimuth -= 360 }
            let elevation = rng.uniform(settings.elevationMinDegrees...settings.elevationMaxDegrees)
            let background = ToySample.backgrounds[Int(rng.next() % UInt64(ToySample.backgrounds.count))]
            return (camera(azimuthDegrees: azimuth, elevationDegrees: elevation),
                    ViewConditioning(azimuthDegrees: azimuth, elevationDegrees: elevation), background)
        }
    }

    /// The orbit camera at these angles, at the render size.
    public func camera(azimuthDegrees: Float, elevationDegrees: Float, size: Int? = nil) -> Camera {
        settings.camera(azimuthDegrees: azimuthDegrees, elevationDegrees: elevationDegrees, size: size ?? settings.renderSize)
    }

    /// One optimisation step. A step whose gradient holds NaN or ±∞ changes no parameter; it is
    /// reported (`skipped`) and counted.
    /// - Throws: `DistillError.diverged` after `maxConsecutiveSkips` such steps in a row.
    public func step() throws -> StepReport {
        let clock = ContinuousClock(), started = clock.now
        let progress = Double(completedSteps) / Double(steps)
        let views = drawViews()
        let size = settings.renderSize, priorSize = prior.imageSize, factor = size / priorSize
        var frames: [SplatFrame] = []
        var x: [Float] = []
        for v in views {
            let frame = SplatRasterizer.forward(parameters, camera: v.camera, settings: SplatRenderSettings(background: v.background), threads: threads)
            x += PriorImage.fromRender(frame.images.color, width: size, height: size, factor: factor)
            frames.append(frame)
        }
        let k = views.count
        let result = RewardGuidance.gradient(prior: prior, rewards: rewards, caption: caption,
                                             images: Tensor(shape: [k, 3, priorSize, priorSize], storage: x), views: views.map(\.view),
                                             progress: progress, sds: sds, settings: guidance, rng: &rng)
        // The loss is the mean over the step's views (DreamGaussian divides the SDS sum by the batch).
        var total = SplatParameters<Float>(zerosLike: parameters.count, shDegree: parameters.shDegree)
        let plane = 3 * priorSize * priorSize
        for (i, frame) in frames.enumerated() {
            let g = Array(result.gradient[(i * plane)..<((i + 1) * plane)]).map { $0 / Float(k) }
            let dColor = PriorImage.renderGradient(g, width: size, height: size, factor: factor, color: frame.images.color)
            let back = SplatRasterizer.backward(frame, parameters, gradients: SplatImageGradients(color: dColor))
            optimizer.record(meanPixels: back.meanPixels, radii: frame.radii, width: size, height: size)
            Self.accumulate(&total, back.parameters)
        }
        completedSteps += 1
        let finite = result.nonFinite == 0 && total.groups.allSatisfy { $0.allSatisfy(\.isFinite) }
        if finite {
            optimizer.step(&parameters, gradients: total)
            consecutiveSkips = 0
        } else {
            skippedSteps += 1
            consecutiveSkips += 1
            if consecutiveSkips >= Self.maxConsecutiveSkips {
                throw DistillError.diverged("\(consecutiveSkips) steps in a row had non-finite gradients (last at step \(completedSteps)); lower the guidance scale or the learning rates, or resume from the last checkpoint")
            }
        }
        return StepReport(step: completedSteps, timestep: result.timestep, sdsLoss: result.sdsLoss / Float(k * k), reward: result.reward,
                          rewardLoss: result.rewardLoss, gaussians: parameters.count, nonFinite: result.nonFinite, skipped: !finite,
                          seconds: (clock.now - started).seconds)
    }

    // MARK: Checkpoints

    struct State: Codable {
        var completedSteps: Int
        var skippedSteps: Int
        var consecutiveSkips: Int
        var rng: RNG
        var optimizerStep: Int
        var optimizerRNG: RNG
        var shDegree: Int
        var gaussians: Int
    }

    static let groupNames = ["means", "log_scales", "rotations", "opacity_logits", "sh"]

    /// Writes the splats, the optimiser's moments and statistics, and the RNGs to `folder`, each file
    /// atomically, `state.json` last: `restore(from:)` continues bit-identically.
    public func saveCheckpoint(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let o = optimizer.state
        var tensors = SafeTensorsWriter(metadata: ["kiln": "gaussian-distillation checkpoint"])
        for (prefix, p) in [("", parameters), ("adam.m.", o.firstMoments), ("adam.v.", o.secondMoments)] {
            for (name, values) in zip(Self.groupNames, p.groups) {
                try tensors.add(prefix + name, shape: [values.count], values: values)
            }
        }
        try tensors.add("densify.gradient_sum", shape: [o.gradientAccumulator.count], values: o.gradientAccumulator)
        try tensors.add("densify.visible_count", shape: [o.visibleCount.count], values: o.visibleCount.map(Float.init))
        try tensors.write(to: folder.appendingPathComponent("state.safetensors"))
        let state = State(completedSteps: completedSteps, skippedSteps: skippedSteps, consecutiveSkips: consecutiveSkips, rng: rng,
                          optimizerStep: o.step, optimizerRNG: o.rng, shDegree: parameters.shDegree, gaussians: parameters.count)
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
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("state.safetensors")) } catch {
            throw DistillError.badCheckpoint("\(folder.path)/state.safetensors: \(error)")
        }
        guard (0...3).contains(state.shDegree), state.gaussians >= 0 else {
            throw DistillError.badCheckpoint("\(stateURL.path) is inconsistent (SH degree \(state.shDegree), \(state.gaussians) Gaussians); start the run again without --resume")
        }
        let n = state.gaussians, k = 3 * (state.shDegree + 1) * (state.shDegree + 1)
        let sizes = [3 * n, 3 * n, 4 * n, n, k * n]
        func load(_ prefix: String) throws -> SplatParameters<Float> {
            var values: [[Float]] = []
            for (name, size) in zip(Self.groupNames, sizes) {
                do { values.append(try file.expect(prefix + name, shape: [size])) } catch {
                    throw DistillError.badCheckpoint("\(folder.path)/state.safetensors: \(error)")
                }
            }
            return SplatParameters(means: values[0], logScales: values[1], rotations: values[2], opacityLogits: values[3], sh: values[4], shDegree: state.shDegree)
        }
        let p = try load(""), m = try load("adam.m."), v = try load("adam.v.")
        let sums: [Float], counts: [Float]
        do {
            sums = try file.expect("densify.gradient_sum", shape: [n])
            counts = try file.expect("densify.visible_count", shape: [n])
        } catch { throw DistillError.badCheckpoint("\(folder.path)/state.safetensors: \(error)") }
        parameters = p
        optimizer = SplatOptimizer(state: SplatOptimizer.State(step: state.optimizerStep, firstMoments: m, secondMoments: v, gradientAccumulator: sums,
                                                               visibleCount: counts.map { Int32($0) }, rng: state.optimizerRNG),
                                   extent: settings.objectRadius, config: settings.optimizerConfig(steps: steps))
        rng = state.rng
        completedSteps = state.completedSteps
        skippedSteps = state.skippedSteps
        consecutiveSkips = state.consecutiveSkips
    }

    static func accumulate(_ total: inout SplatParameters<Float>, _ g: SplatParameters<Float>) {
        func add(_ a: inout [Float], _ b: [Float]) { for i in a.indices { a[i] += b[i] } }
        add(&total.means, g.means)
        add(&total.logScales, g.logScales)
        add(&total.rotations, g.rotations)
        add(&total.opacityLogits, g.opacityLogits)
        add(&total.sh, g.sh)
    }

    /// Renders the current splats from an orbit camera at `size` on a background, `[H, W, 3]` in [0, 1].
    public func render(azimuthDegrees: Float, elevationDegrees: Float, size: Int, background: SIMD3<Float> = SIMD3(1, 1, 1)) -> Image {
        let frame = SplatRasterizer.forward(parameters, camera: camera(azimuthDegrees: azimuthDegrees, elevationDegrees: elevationDegrees, size: size),
                                            settings: SplatRenderSettings(background: background), threads: threads)
        var image = Image(width: size, height: size, channels: 3)
        image.pixels = frame.images.color
        return image
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
    public var gaussians: Int
    public var nonFinite: Int
    /// The gradient was not finite: no parameter changed.
    public var skipped: Bool
    public var seconds: Double
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
