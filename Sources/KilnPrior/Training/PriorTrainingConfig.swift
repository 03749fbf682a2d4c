import Foundation
import KilnCore

/// A training run's configuration (`kiln train-prior --config FILE`): the three model configs in
/// the files' own formats, the tokenizer folder, and the optimisation settings.
///
///     {"unet": {…diffusers UNet2DConditionModel config…},
///      "text_encoder": {…transformers CLIPTextConfig…},
///      "scheduler": {…diffusers DDPMScheduler config (the training noise schedule)…},
///      "tokenizer": "tokenizer",                       (a folder, relative to the config file)
///      "init": "prior",                                (optional: a pipeline folder to fine-tune)
///      "vae": "vae",                                   (optional: a VAE folder; the prior is trained on its latents)
///      "training": {"batch_size": 32, "steps": 20000, …}}
///
/// Unknown keys anywhere are errors naming the key.
public struct PriorTrainingConfig: Sendable {
    public var unet: UNetConfig
    public var textEncoder: CLIPTextConfig
    public var scheduler: SchedulerConfig
    public var tokenizerFolder: URL
    /// A pipeline folder whose UNet and text encoder weights start the run (a fine-tune); nil
    /// trains from scratch. Its networks must have the configs' shapes.
    public var initFolder: URL?
    /// A VAE folder (`kiln train-vae`, or any diffusers `AutoencoderKL` folder): the prior is a
    /// latent prior trained on the VAE's scaled latents of the data set's images; nil trains a
    /// pixel-space prior.
    public var vaeFolder: URL?
    public var training: Training
    /// The JSON objects as given, written out unchanged with the trained weights.
    var unetJSON: ConfigValue, textEncoderJSON: ConfigValue, schedulerJSON: ConfigValue

    /// Optimisation settings (snake_case keys in the file).
    public struct Training: Sendable, Codable, Equatable {
        public var batchSize = 32
        public var steps = 10_000
        public var learningRate = 2e-4
        public var warmupSteps = 500
        public var weightDecay = 0.01
        public var maxGradNorm: Float = 1
        public var emaDecay: Float = 0.999
        /// Probability that a caption is replaced by "" (for classifier-free guidance).
        public var captionDropout: Float = 0.1
        public var checkpointEvery = 1000
        public var logEvery = 50
        /// Steps and guidance of the sample grid written at each checkpoint.
        public var sampleSteps = 25
        public var sampleGuidance = 3.0
        /// Min-SNR-γ loss weighting (Hang et al. 2023): each sample's ε loss is weighted by
        /// min(SNR_t, γ) / SNR_t, SNR_t = ᾱ_t / (1 − ᾱ_t), which stops the many easy low-noise
        /// steps from dominating the gradient. nil: the plain ε loss.
        public var snrGamma: Double? = nil
        /// Each caption names the side its view shows ("a red mug, side view", `ViewDirection`,
        /// DreamFusion's view prompts): the view reaches the UNet through cross-attention too,
        /// beside the class embedding. The exported prior says so (`kiln_prior.json`
        /// `view_prompts`), and every prompt it is given is worded the same way.
        public var viewPrompts = false
        public var seed: UInt64 = 0

        public init() {}

        /// The settings that must be positive whole numbers.
        nonisolated(unsafe) static let counts: [(name: String, value: KeyPath<Training, Int>)] = [
            ("batch_size", \.batchSize), ("steps", \.steps), ("warmup_steps", \.warmupSteps), ("checkpoint_every", \.checkpointEvery),
            ("log_every", \.logEvery), ("sample_steps", \.sampleSteps),
        ]
    }

    /// Reads `url`.
    public init(contentsOf url: URL) throws {
        let source = url.path
        func fail(_ key: String?, _ problem: String, _ fix: String) -> PriorConfigError {
            PriorConfigError(source: source, key: key, problem: problem, fix: fix)
        }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw fail(nil, "cannot be read", "check the path") }
        guard case .object(let object)? = try? JSONDecoder().decode(ConfigValue.self, from: data) else {
            throw fail(nil, "is not a JSON object", "see kiln train-prior --help for the layout")
        }
        for key in object.keys.sorted() where !["unet", "text_encoder", "scheduler", "tokenizer", "init", "vae", "training"].contains(key) {
            throw fail(key, "is not a training-config section", "use unet, text_encoder, scheduler, tokenizer, init, vae and training")
        }
        func section(_ key: String) throws -> (ConfigValue, Data) {
            guard let value = object[key], case .object = value else { throw fail(key, "is missing or not an object", "give the \(key) config") }
            return (value, try JSONEncoder().encode(value))
        }
        let (unetValue, unetData) = try section("unet")
        let (textValue, textData) = try section("text_encoder")
        let (schedulerValue, schedulerData) = try section("scheduler")
        unet = try UNetConfig(json: unetData, source: source + " (unet)")
        textEncoder = try CLIPTextConfig(json: textData, source: source + " (text_encoder)")
        scheduler = try SchedulerConfig(json: schedulerData, source: source + " (scheduler)", as: .ddpm)
        // At zero terminal SNR the last timestep's x_t holds no signal, and ε fixes nothing of x₀ there.
        if scheduler.rescaleBetasZeroSNR && scheduler.predictionType == .epsilon {
            throw fail("scheduler.prediction_type", "is epsilon with rescale_betas_zero_snr", "train v_prediction (Lin et al.), or drop rescale_betas_zero_snr")
        }
        (unetJSON, textEncoderJSON, schedulerJSON) = (unetValue, textValue, schedulerValue)
        guard case .string(let tokenizer)? = object["tokenizer"] else { throw fail("tokenizer", "is missing", "name the tokenizer folder") }
        tokenizerFolder = URL(fileURLWithPath: tokenizer, relativeTo: url.deletingLastPathComponent()).standardizedFileURL
        switch object["init"] {
        case nil, .null?: initFolder = nil
        case .string(let path)?: initFolder = URL(fileURLWithPath: path, relativeTo: url.deletingLastPathComponent()).standardizedFileURL
        case let value?: throw fail("init", "is \(value.text), not a folder path", "name a prior pipeline folder, or leave init out to train from scratch")
        }
        switch object["vae"] {
        case nil, .null?: vaeFolder = nil
        case .string(let path)?: vaeFolder = URL(fileURLWithPath: path, relativeTo: url.deletingLastPathComponent()).standardizedFileURL
        case let value?: throw fail("vae", "is \(value.text), not a folder path", "name a VAE folder (kiln train-vae), or leave vae out for a pixel-space prior")
        }
        // The optimisation settings go through Kiln's one settings reader, over the defaults.
        training = Training()
        if object["training"] != nil {
            do {
                training = try SettingsFile.read(Training(), section: "training", from: data, source: source, optionalKeys: ["training.snr_gamma"]).value
            } catch let error as SettingsError {
                throw fail(error.key, error.problem, error.fix)
            }
        }
        for (name, value) in Training.counts where training[keyPath: value] <= 0 {
            throw fail("training.\(name)", "must be a positive integer", "write one")
        }
        if let gamma = training.snrGamma, !(gamma > 0) {
            throw fail("training.snr_gamma", "must be positive", "use 5, or leave it out for the plain loss")
        }
        let t = training
        guard t.learningRate > 0, t.learningRate < 1 else { throw fail("training.learning_rate", "must be in (0, 1)", "use about 2e-4") }
        guard (0...1).contains(t.captionDropout) else { throw fail("training.caption_dropout", "must be in [0, 1]", "use 0.1") }
        guard (0..<1).contains(t.emaDecay) else { throw fail("training.ema_decay", "must be in [0, 1)", "use 0.999") }
        guard t.maxGradNorm > 0 else { throw fail("training.max_grad_norm", "must be positive", "use 1") }
        if vaeFolder == nil {
            guard unet.inChannels == 3, unet.outChannels == 3 else { throw fail("unet", "must take and give 3 channels", "a pixel-space RGB prior (or name a VAE folder as vae for a latent prior)") }
        } else {
            guard unet.inChannels == unet.outChannels else { throw fail("unet", "takes \(unet.inChannels) channels but gives \(unet.outChannels)", "give the VAE's latent_channels for both") }
        }
        if let p = unet.projectionClassInputDim, p != ViewConditioning.length {
            throw fail("unet.projection_class_embeddings_input_dim", "is \(p)", "use \(ViewConditioning.length) (Kiln's view conditioning)")
        }
        if unet.usesText, unet.crossAttentionDim.contains(where: { $0 != textEncoder.hiddenSize }) {
            throw fail("unet.cross_attention_dim", "differs from the text encoder's hidden_size \(textEncoder.hiddenSize)", "make them equal")
        }
    }
}
