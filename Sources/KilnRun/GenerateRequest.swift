import Foundation
import KilnCore
import KilnDistill
import KilnPrior

/// What a `kiln generate` command asks for: the prompt, a settings file and the flags that
/// override it (nil: not given).
public struct GenerateRequest: Sendable {
    public var prompt: String
    public var config: URL? = nil
    public var seed: UInt64? = nil
    public var steps: Int? = nil
    public var guidanceScale: Double? = nil
    public var negativePrompt: String? = nil
    public var method: DistillationMethod? = nil
    public var objective: DistillationObjective? = nil
    public var representation: Representation? = nil
    public var refine: RefineStage? = nil
    public var refineSteps: Int? = nil
    public var refineOffsets = false
    public var frames: Int? = nil
    public var reward: RewardMix? = nil
    public var viewAdvantage: Float? = nil
    /// Continue the run in the folder (its own config.json) instead of starting one.
    public var resume = false

    public init(prompt: String) { self.prompt = prompt }

    /// The settings of a new run: the defaults, the settings file, then the flags; `picksRenderSize`
    /// when the file gives no render size, which the run then picks for its prior
    /// (`ViewSettings.defaultRenderSize`).
    public func newSettings() throws -> (settings: GenerateSettings, picksRenderSize: Bool) {
        var settings = GenerateSettings(), given = Set<String>()
        if let config {
            do { (settings, given) = try GenerateSettings.load(config) } catch let error as SettingsError {
                throw RunError("--config \(error)")
            }
        }
        settings.prompt = prompt
        if let negativePrompt { settings.negativePrompt = negativePrompt }
        if let seed { settings.seed = seed }
        if let steps { settings.steps = steps }
        if let method { settings.guidance.method = method }
        if let objective { settings.sds.objective = objective }
        if let representation { settings.representation = representation }
        let picksRenderSize = !given.contains("views.render_size")
        if let refine { settings.refine.stage = refine }
        if let refineSteps { settings.refine.steps = refineSteps }
        if refineOffsets { settings.refine.offsets = true }
        if let guidanceScale { settings.sds.guidanceScale = guidanceScale }
        if let reward { settings.guidance.rewards = reward }
        if let viewAdvantage { settings.guidance.viewAdvantage = viewAdvantage }
        // 4D when asked for frames, or when the prompt names a motion (unless the file says otherwise).
        if let frames {
            settings.dynamic = true
            settings.motion.frames = frames
        } else if !given.contains("dynamic"), Prompt(prompt).namesMotion {
            settings.dynamic = true
        }
        return (settings, picksRenderSize)
    }

    /// The settings of a run to continue: its config.json, with only what may change on a resume
    /// (more steps, an added or extended refinement) taken from the flags.
    public func resumedSettings(_ run: RunFolder) throws -> (settings: GenerateSettings, notes: [String]) {
        let folder = run.url.path
        guard FileManager.default.fileExists(atPath: run.config.path) else {
            throw RunError("--resume: \(run.config.path) is missing; \(folder) is not a kiln generate run (start one without --resume)")
        }
        var settings: GenerateSettings
        do { settings = try GenerateSettings.load(run: run) } catch let error as SettingsError { throw RunError("--resume: \(error)") }
        guard settings.prompt == prompt else { throw RunError("--resume: the run in \(folder) is for \"\(settings.prompt)\", not \"\(prompt)\"") }
        let conflicting = [config.map { _ in "--config" }, seed.map { _ in "--seed" }, method.map { _ in "--method" }, objective.map { _ in "--objective" }, guidanceScale.map { _ in "--guidance-scale" },
                           negativePrompt.map { _ in "--negative-prompt" }, reward.map { _ in "--reward" }, viewAdvantage.map { _ in "--view-advantage" },
                           representation.map { _ in "--representation" }, frames.map { _ in "--frames" }].compactMap { $0 }
        guard conflicting.isEmpty else {
            throw RunError("--resume continues with the run's own config.json; drop " + conflicting.joined(separator: ", ")
                           + " (only --steps may change, to extend the run, and --refine/--refine-steps, to add or extend the refinement)")
        }
        var notes: [String] = []
        if let steps, steps != settings.steps {
            // A run's schedules (learning-rate decay, timestep annealing, densification) follow
            // its length, so a shorter run is a different run: only extending is allowed.
            guard steps > settings.steps else {
                throw RunError("--resume --steps \(steps): the run in \(folder) was set up for \(settings.steps) steps and cannot be shortened "
                               + "(its schedules follow its length); drop --steps to finish it, pass more than \(settings.steps) to extend it, or start a new run")
            }
            notes.append("extending the run from \(settings.steps) to \(steps) steps (config.json is updated)")
            settings.steps = steps
        }
        // A finished coarse run can gain its refinement stage later (DreamGaussian's stage 2 on
        // stage 1's output); a refined run cannot lose it.
        if let refine {
            guard settings.refine.stage == .none || settings.refine.stage == refine else {
                throw RunError("--resume: the run in \(folder) already refines with '\(settings.refine.stage.rawValue)'; start a new run for '\(refine.rawValue)'")
            }
            settings.refine.stage = refine
        }
        if let refineSteps { settings.refine.steps = refineSteps }
        if refineOffsets && !settings.refine.offsets {
            guard !FileManager.default.fileExists(atPath: run.checkpoint(.refine).path) else {
                throw RunError("--resume --refine-offsets: the run in \(folder) has begun refining colours only; start a new run to refine offsets")
            }
            settings.refine.offsets = true
        }
        return (settings, notes)
    }
}
