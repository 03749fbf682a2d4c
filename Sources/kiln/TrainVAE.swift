import ArgumentParser
import Foundation
import KilnNN
import KilnRun

struct TrainVAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-vae",
        abstract: "Train the VAE of a latent prior (a diffusers AutoencoderKL) on a kiln dataset folder.",
        discussion: """
        CONFIG is JSON with "vae" (a diffusers AutoencoderKL config: block_out_channels, \
        layers_per_block, latent_channels, norm_num_groups; the run measures scaling_factor) and \
        "training" (batch_size, crop_size (0: whole images), steps, learning_rate, warmup_steps, \
        weight_decay, max_grad_norm, ema_decay, l1_weight, ssim_weight, kl_weight, \
        checkpoint_every, log_every, seed). VAEDIR receives, at every checkpoint: the EMA model as \
        a diffusers vae/ folder (config.json with scaling_factor = 1 / the latents' std, \
        diffusion_pytorch_model.safetensors), checkpoint/ for --resume (bit-identical), loss.csv, \
        loss.png, reconstructions.png, measured.json and README.md with the PSNR and SSIM on \
        held-out renders (another toy-world seed). Ctrl-C or SIGTERM saves and exits 130.
        """
    )

    @Option(help: "A folder written by kiln dataset (e.g. --size 128).", completion: .directory)
    var data: String

    @Option(help: "The training configuration (JSON).", completion: .file(extensions: ["json"]))
    var config: String

    @Option(help: "The VAE folder to write.", completion: .directory)
    var out: String

    @Flag(help: "Continue the run saved in VAEDIR/checkpoint.")
    var resume = false

    @Flag(help: "Write into an existing, non-empty folder (a new run).")
    var force = false

    @Option(help: "Held-out renders measured at each checkpoint.")
    var holdout: Int = 64

    func validate() throws {
        if resume && force { throw ValidationError("--resume and --force contradict each other: choose one") }
        guard (1...4096).contains(holdout) else { throw ValidationError("--holdout must be 1…4096, got \(holdout)") }
    }

    func run() throws {
        _ = Memory.retainFreedMemory()
        var job = VAETrainingJob(data: URL(fileURLWithPath: data), config: URL(fileURLWithPath: config), output: URL(fileURLWithPath: out))
        (job.resume, job.force, job.holdoutCount) = (resume, force, holdout)
        do {
            try job.run()
        } catch let stop as RunInterrupted {
            say(stop.description)
            throw ExitCode(130)
        }
    }
}
