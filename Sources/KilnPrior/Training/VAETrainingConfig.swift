import Foundation
import KilnCore
import KilnNN

/// A VAE training run's configuration (`kiln train-vae --config FILE`): the diffusers
/// `AutoencoderKL` config, in its own format, and the optimisation settings.
///
///     {"vae": {…diffusers AutoencoderKL config; scaling_factor is computed by the run…},
///      "training": {"batch_size": 8, "crop_size": 64, "steps": 6000, …}}
///
/// Unknown keys anywhere are errors naming the key.
public struct VAETrainingConfig: Sendable {
    public var vae: AutoencoderKLConfig
    public var training: Training

    /// Optimisation settings (snake_case keys in the file).
    public struct Training: Sendable, Codable, Equatable {
        public var batchSize = 8
        /// Side of the random square crops trained on (0: whole images). A convolutional VAE
        /// trained on crops encodes whole images as well, at a fraction of the cost.
        public var cropSize = 64
        public var steps = 6000
        public var learningRate = 1e-3
        public var warmupSteps = 200
        public var weightDecay = 0.0
        public var maxGradNorm: Float = 1
        public var emaDecay: Float = 0.999
        /// Weights of the mean absolute error and of 1 − SSIM (both on display values in [0, 1]).
        public var l1Weight = 1.0
        public var ssimWeight = 0.2
        /// Weight of the posterior's KL divergence to N(0, I), per latent element (a small
        /// value keeps the latents near unit scale without blurring the reconstructions).
        public var klWeight = 1e-5
        public var checkpointEvery = 500
        public var logEvery = 50
        public var seed: UInt64 = 0

        public init() {}

        nonisolated(unsafe) static let counts: [(name: String, value: KeyPath<Training, Int>)] = [
            ("batch_size", \.batchSize), ("steps", \.steps), ("warmup_steps", \.warmupSteps), ("checkpoint_every", \.checkpointEvery), ("log_every", \.logEvery),
        ]
    }

    public init(vae: AutoencoderKLConfig, training: Training = Training()) {
        self.vae = vae
        self.training = training
    }

    /// Reads `url`.
    public init(contentsOf url: URL) throws {
        let source = url.path
        func fail(_ key: String?, _ problem: String, _ fix: String) -> PriorConfigError {
            PriorConfigError(source: source, key: key, problem: problem, fix: fix)
        }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw fail(nil, "cannot be read", "check the path") }
        guard case .object(let object)? = try? JSONDecoder().decode(ConfigValue.self, from: data) else {
            throw fail(nil, "is not a JSON object", "see kiln train-vae --help for the layout")
        }
        for key in object.keys.sorted() where !["vae", "training"].contains(key) {
            throw fail(key, "is not a VAE training-config section", "use vae and training")
        }
        guard case .object(let vaeObject)? = object["vae"] else { throw fail("vae", "is missing or not an object", "give a diffusers AutoencoderKL config") }
        vae = try AutoencoderKLConfig(json: try JSONEncoder().encode(ConfigValue.object(vaeObject)), source: source + " (vae)")
        training = Training()
        if object["training"] != nil {
            do {
                training = try SettingsFile.read(Training(), section: "training", from: data, source: source).value
            } catch let error as SettingsError {
                throw fail(error.key, error.problem, error.fix)
            }
        }
        for (name, value) in Training.counts where training[keyPath: value] <= 0 {
            throw fail("training.\(name)", "must be a positive integer", "write one")
        }
        try check(source: source)
    }

    /// The settings' ranges and the VAE's fit to the crops.
    func check(source: String) throws {
        func fail(_ key: String, _ problem: String, _ fix: String) -> PriorConfigError {
            PriorConfigError(source: source, key: key, problem: problem, fix: fix)
        }
        let t = training, f = vae.downsamplingFactor
        guard t.learningRate > 0, t.learningRate < 1 else { throw fail("training.learning_rate", "must be in (0, 1)", "use about 1e-3") }
        guard (0..<1).contains(t.emaDecay) else { throw fail("training.ema_decay", "must be in [0, 1)", "use 0.999") }
        guard t.maxGradNorm > 0 else { throw fail("training.max_grad_norm", "must be positive", "use 1") }
        guard t.ssimWeight >= 0, t.ssimWeight.isFinite else { throw fail("training.ssim_weight", "must be ≥ 0", "use 0.2") }
        guard t.l1Weight >= 0, t.l1Weight.isFinite else { throw fail("training.l1_weight", "must be ≥ 0", "use 1") }
        guard t.weightDecay >= 0, t.weightDecay.isFinite else { throw fail("training.weight_decay", "must be ≥ 0", "use 0") }
        guard t.klWeight >= 0, t.klWeight.isFinite else { throw fail("training.kl_weight", "must be ≥ 0", "use 1e-5") }
        guard t.cropSize == 0 || (t.cropSize % f == 0 && t.cropSize > 2 * SSIMLoss.radius) else {
            throw fail("training.crop_size", "is \(t.cropSize), which is not a multiple of the VAE's factor \(f) above \(2 * SSIMLoss.radius)", "use e.g. \(max(16, 4 * f)), or 0 for whole images")
        }
        guard vae.inChannels == 3, vae.outChannels == 3 else { throw fail("vae", "must take and give 3 channels", "an RGB VAE") }
    }
}
