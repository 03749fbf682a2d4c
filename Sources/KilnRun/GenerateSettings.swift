import Foundation
import KilnCore
import KilnDistill

/// The scene a run optimises.
public enum Representation: String, SettingChoice {
    /// 3D Gaussian splats (`splats.ply`); a moving cloud for 4D runs.
    case gaussians
    /// A hash-grid field rendered by volume rendering (`field.safetensors`).
    case nerf
}

/// The coarse-to-fine stage after the distillation.
public enum RefineStage: String, SettingChoice {
    case none
    /// The extracted mesh's vertex colours refined (with `offsets`, smooth vertex offsets too).
    case mesh
}

/// The refinement's settings (section "refine").
public struct RefineSettings: Codable, Sendable, Equatable {
    public var stage = RefineStage.none
    public var steps = 300
    public var learningRate = 0.02
    public var offsets = false
    /// Adam's step on the offsets, in world units.
    public var offsetLearningRate = 0.002
    /// Weight of the uniform Laplacian term on the offsets.
    public var smoothness: Float = 10
    /// λ of the (I + λL)⁻¹ smoothing of the offsets' gradient (0: off).
    public var gradientSmoothing: Float = 0

    public init() {}

    /// The mesh scene's offset settings, when offsets are refined.
    public var meshOffsets: MeshOffsetSettings? {
        offsets ? MeshOffsetSettings(learningRate: offsetLearningRate, smoothness: smoothness, gradientSmoothing: gradientSmoothing) : nil
    }
}

/// Every setting of a run, as `config.json` records it and `--config` overrides it.
public struct GenerateSettings: Codable, Sendable {
    public var prompt = ""
    public var negativePrompt = ""
    public var seed: UInt64 = 0
    public var steps = 600
    public var representation = Representation.gaussians
    public var sds = SDSSettings()
    public var guidance = RewardGuidanceSettings()
    public var views = ViewSettings()
    public var gaussians = GaussianSettings()
    public var nerf = NeRFSettings()
    public var refine = RefineSettings()
    /// 4D: a moving cloud (`DynamicGaussianScene`), with these motion settings.
    public var dynamic = false
    public var motion = MotionSettings()

    public init() {}

    /// Settings whose default is nil, so they do not appear in the encoded defaults.
    static let optionalKeys: Set<String> = ["sds.gradient_clamp"]

    /// The defaults overridden by a settings file (snake_case keys, the layout `config.json` is
    /// written in, so a run's config reproduces it; unknown keys are errors), and the settings the
    /// file names ("section.field", or "field" for top-level ones).
    public static func load(_ url: URL) throws -> (settings: GenerateSettings, given: Set<String>) {
        let (settings, given) = try SettingsFile.read(GenerateSettings(), contentsOf: url, optionalKeys: optionalKeys)
        return (settings, given)
    }

    /// A run's own settings, its `config.json`.
    public static func load(run: RunFolder) throws -> GenerateSettings { try load(run.config).settings }

    /// The JSON `config.json` holds.
    public func encoded() throws -> Data { try SettingsFile.encode(self) }

    /// Checks every setting a run uses, before anything is written; errors name the setting (as
    /// config.json spells it), its value and its range.
    public func validate(priorSize: Int) throws {
        guard (1...1_000_000).contains(steps) else { throw RunError("steps must be 1…1000000, got \(steps)") }
        try sds.validate()
        try guidance.validate()
        if sds.objective == .ism && (guidance.method == .rewardWeighted || guidance.method == .dpo) {
            throw RunError("--objective ism draws no noise, so --method \(guidance.method.rawValue), which compares noises, has nothing to compare; use --method sds or reward-feedback with it")
        }
        try views.validate(priorSize: priorSize)
        try gaussians.validate()
        if representation == .nerf { try nerf.validate() }
        if dynamic {
            try motion.validate()
            guard representation == .gaussians else {
                throw RunError("4D runs (--frames, or a motion in the prompt) use Gaussians; drop --representation \(representation.rawValue)")
            }
            guard refine.stage == .none else { throw RunError("--refine mesh refines a still asset; a 4D run has one mesh per frame") }
        }
        guard refine.stage == .mesh || !refine.offsets else { throw RunError("refine.offsets needs the mesh stage; add --refine mesh") }
        guard refine.offsetLearningRate > 0, refine.offsetLearningRate.isFinite, refine.smoothness >= 0, refine.smoothness.isFinite,
              refine.gradientSmoothing >= 0, refine.gradientSmoothing.isFinite else {
            throw RunError("refine: offset_learning_rate must be positive, smoothness and gradient_smoothing 0 or more")
        }
        guard (1...1_000_000).contains(refine.steps), refine.learningRate > 0, refine.learningRate.isFinite else {
            throw RunError("refine: steps must be 1…1000000 and learning_rate positive, got \(refine.steps) and \(refine.learningRate)")
        }
    }
}

/// A failure while a job runs (not a usage error), naming the problem and the fix.
public struct RunError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
