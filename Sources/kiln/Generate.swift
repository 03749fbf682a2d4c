import ArgumentParser
import Foundation
import KilnAsset
import KilnCore
import KilnDistill
import KilnEval
import KilnNN
import KilnPrior
import KilnRender
import KilnToyWorld
import KilnRun

extension DistillationMethod: ExpressibleByArgument {}
extension DistillationObjective: ExpressibleByArgument {}
extension Representation: ExpressibleByArgument {}
extension RefineStage: ExpressibleByArgument {}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Text to 3D or 4D: score-distil Gaussian splats (or a NeRF) from a diffusion prior, steered by rewards.",
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
        per-frame turntables. --prior also takes a Stable Diffusion 1.x/2.x folder (diffusers \
        layout, with vae/): views are then rendered at the VAE's image size, encoded to latents, \
        and named in the prompt ("…, side view").
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

    @Option(help: "Distillation objective, orthogonal to --method: sds, csd (the guidance direction alone), nfsd (noise-free: csd plus the unconditional prediction at small t), ism (interval score matching: DDIM-inverted noise) or vsd (variational: a LoRA of the prior trained on the renders); default sds.")
    var objective: DistillationObjective?

    @Option(help: "Scene representation: gaussians (splats.ply) or nerf (a hash-grid field rendered at the prior's size, field.safetensors); default gaussians.")
    var representation: Representation?

    @Option(help: "Coarse to fine: 'mesh' refines the extracted mesh's colours with the mesh rasterizer (with --resume: adds the stage to a finished run); default none.")
    var refine: RefineStage?

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
        var request = GenerateRequest(prompt: prompt)
        request.config = config.map { URL(fileURLWithPath: $0) }
        (request.seed, request.steps, request.guidanceScale, request.negativePrompt) = (seed, steps, guidanceScale, negativePrompt)
        (request.method, request.representation, request.refine, request.refineSteps) = (method, representation, refine, refineSteps)
        request.objective = objective
        (request.refineOffsets, request.frames, request.viewAdvantage, request.resume) = (refineOffsets, frames, viewAdvantage, resume)
        request.reward = try reward.map { try RewardMix(parsing: $0) }
        var options = GenerateJob.Options()
        (options.resume, options.previewEvery, options.checkpointEvery) = (resume, previewEvery, checkpointEvery)
        do {
            try GenerateJob.run(request, in: RunFolder(output.url), force: output.force, priorFolder: try ShippedAssets.resolve(prior, .prior),
                                rewardsFolder: try ShippedAssets.resolve(rewards, .rewards), options: options)
        } catch let stop as RunInterrupted {
            say(stop.description)
            throw ExitCode(130)
        }
    }
}
