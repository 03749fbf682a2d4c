import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore
import KilnNN
import KilnPrior
import KilnToyWorld

struct TrainPrior: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-prior",
        abstract: "Train a text- and view-conditioned pixel-space prior on a kiln dataset folder.",
        discussion: """
        CONFIG is JSON with "unet" (a diffusers UNet2DConditionModel config), "text_encoder" \
        (a transformers CLIPTextConfig), "scheduler" (the DDPM training noise schedule), \
        "tokenizer" (a CLIP tokenizer folder, relative to CONFIG), optionally "init" (a pipeline \
        folder, relative to CONFIG, whose weights the run fine-tunes) and "training" (batch_size, \
        steps, learning_rate, warmup_steps, weight_decay, max_grad_norm, ema_decay, \
        caption_dropout, snr_gamma, view_prompts, checkpoint_every, log_every, sample_steps, \
        sample_guidance, seed); view_prompts: true words each caption by the side its view shows \
        ("a red mug, side view"), and the exported prior words every prompt it is given so. \
        PRIORDIR receives, at every checkpoint: the EMA model as a diffusers pipeline folder \
        (loadable by kiln sample), checkpoint/ (weights, EMA, optimiser state, RNG) for \
        --resume, loss.csv and samples/step_NNNNNNN.png (a grid from azimuth 0 and 180). With a \
        "vae" (a folder, relative to CONFIG) the prior is trained on that VAE's latents and the \
        pipeline carries it as vae/. Ctrl-C or SIGTERM saves and exits 130.
        """
    )

    @Option(help: "A folder written by kiln dataset.", completion: .directory)
    var data: String

    @Option(help: "The training configuration (JSON).", completion: .file(extensions: ["json"]))
    var config: String

    @Option(help: "The prior folder to write.", completion: .directory)
    var out: String

    @Flag(help: "Continue the run saved in PRIORDIR/checkpoint.")
    var resume = false

    @Flag(help: "Write into an existing, non-empty folder (a new run).")
    var force = false

    @Option(help: "Prompts for the checkpoint sample grids (repeatable).")
    var samplePrompt: [String] = ["a red snowman", "a blue house with a yellow roof", "a yellow duck", "a green car"]

    func validate() throws {
        if resume && force { throw ValidationError("--resume and --force contradict each other: choose one") }
    }

    func run() throws {
        _ = Memory.retainFreedMemory()
        var job = PriorTrainingJob(data: URL(fileURLWithPath: data), config: URL(fileURLWithPath: config), output: URL(fileURLWithPath: out))
        (job.resume, job.force, job.samplePrompts) = (resume, force, samplePrompt)
        do {
            try job.run()
        } catch let stop as RunInterrupted {
            say(stop.description)
            throw ExitCode(130)
        }
    }
}
