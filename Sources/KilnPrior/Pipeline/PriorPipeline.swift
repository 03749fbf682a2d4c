import Foundation
import KilnCore
import KilnNN

/// Kiln's additions to a diffusers pipeline folder, in `kiln_prior.json` (optional):
///
///     {"conditioning": "view-v1", "vocabulary": ["a", "red", "snowman", ...], "guidance_scale": 3.0, "view_prompts": true}
///
/// `conditioning` names the class-label layout the UNet was trained with (`view-v1`:
/// `ViewConditioning`); `vocabulary`, when present, is the closed set of words the prior was
/// trained on; `guidance_scale` is the classifier-free guidance its model card samples with,
/// which `kiln sample` and the prior scorers use unless told otherwise; `view_prompts` says the
/// prior was trained with each caption naming its side ("a red mug, side view", `ViewDirection`),
/// so every sample's prompt is worded so too (`PriorPipeline.prompt(_:view:)`). Unknown keys are an error.
public struct PriorSettings: Sendable, Equatable, Codable {
    public var conditioning: String?
    public var vocabulary: [String]?
    public var guidanceScale: Double?
    public var viewPrompts: Bool?

    enum CodingKeys: String, CodingKey {
        case conditioning, vocabulary
        case guidanceScale = "guidance_scale"
        case viewPrompts = "view_prompts"
    }

    public static let fileName = "kiln_prior.json"
    public static let viewConditioning = "view-v1"
    /// The guidance a prior without `guidance_scale` is sampled with (diffusers' default).
    public static let defaultGuidanceScale = 7.5

    public init(conditioning: String? = nil, vocabulary: [String]? = nil, guidanceScale: Double? = nil, viewPrompts: Bool? = nil) {
        self.conditioning = conditioning
        self.vocabulary = vocabulary
        self.guidanceScale = guidanceScale
        self.viewPrompts = viewPrompts
    }

    /// The guidance to sample with when none is asked for: the card's, else diffusers' 7.5.
    public var samplingGuidanceScale: Double { guidanceScale ?? Self.defaultGuidanceScale }

    /// Parses `kiln_prior.json`; `source` names the file in errors.
    public init(json data: Data, source: String) throws {
        guard case .object(let object)? = try? JSONDecoder().decode(ConfigValue.self, from: data) else {
            throw PriorConfigError(source: source, key: nil, problem: "is not a JSON object", fix: "write {\"conditioning\": \"view-v1\", \"vocabulary\": [...]}")
        }
        for key in object.keys.sorted() where !["conditioning", "vocabulary", "guidance_scale", "view_prompts"].contains(key) {
            throw PriorConfigError(source: source, key: key, problem: "is not a Kiln prior setting", fix: "keep conditioning, vocabulary, guidance_scale and view_prompts only")
        }
        switch object["view_prompts"] {
        case nil, .null?: viewPrompts = nil
        case .bool(let b)?: viewPrompts = b
        case let v?: throw PriorConfigError(source: source, key: "view_prompts", problem: "is \(v.text)", fix: "write true or false")
        }
        switch object["guidance_scale"] {
        case nil, .null?: guidanceScale = nil
        case .int(let g)? where g >= 0: guidanceScale = Double(g)
        case .double(let g)? where g.isFinite && g >= 0: guidanceScale = g
        case let v?: throw PriorConfigError(source: source, key: "guidance_scale", problem: "is \(v.text)", fix: "give the guidance scale as a number ≥ 0, e.g. 3.0")
        }
        switch object["conditioning"] {
        case nil, .null?: conditioning = nil
        case .string(let c)? where c == Self.viewConditioning: conditioning = c
        case let v?: throw PriorConfigError(source: source, key: "conditioning", problem: "is \(v.text)", fix: "use \(Self.viewConditioning)")
        }
        switch object["vocabulary"] {
        case nil, .null?: vocabulary = nil
        case .array(let items)?:
            vocabulary = try items.map {
                guard case .string(let w) = $0, !w.isEmpty else { throw PriorConfigError(source: source, key: "vocabulary", problem: "holds \($0.text)", fix: "list words as strings") }
                return w.lowercased()
            }
        case let v?: throw PriorConfigError(source: source, key: "vocabulary", problem: "is \(v.text)", fix: "list the words the prior knows")
        }
    }

    /// The words of `prompt` (lower-cased runs of letters) that a closed vocabulary lacks, in
    /// order of appearance, without repeats. Empty for an open vocabulary.
    public func unknownWords(in prompt: String) -> [String] {
        guard let vocabulary else { return [] }
        let known = Set(vocabulary)
        var seen = Set<String>(), out: [String] = []
        for word in prompt.lowercased().split(whereSeparator: { !$0.isLetter && $0 != "'" }).map(String.init)
        where !known.contains(word) && seen.insert(word).inserted {
            out.append(word)
        }
        return out
    }
}

/// What to draw.
public struct SampleRequest: Sendable, Equatable, Codable {
    public var prompt: String
    /// The prompt guidance pushes away from ("" as in diffusers when no negative prompt is given).
    public var negativePrompt: String
    public var count: Int
    public var steps: Int
    /// Classifier-free guidance scale s; guidance runs when s > 1 (as in diffusers).
    public var guidanceScale: Double
    public var seed: UInt64
    /// The camera (and time), for priors with view conditioning.
    public var view: ViewConditioning
    /// DDIM η: 0 is deterministic.
    public var eta: Double

    public init(prompt: String, negativePrompt: String = "", count: Int = 1, steps: Int = 30, guidanceScale: Double = 7.5,
                seed: UInt64 = 0, view: ViewConditioning = ViewConditioning(), eta: Double = 0) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.count = count
        self.steps = steps
        self.guidanceScale = guidanceScale
        self.seed = seed
        self.view = view
        self.eta = eta
    }
}

/// A text-to-image diffusion pipeline in the diffusers folder layout (REFERENCE §8): `tokenizer/`,
/// `text_encoder/`, `unet/`, `scheduler/`, optionally `vae/` and `kiln_prior.json`.
///
/// Without a VAE it is a pixel-space prior (Kiln's own: the UNet draws RGB images in [−1, 1]); with
/// one it is a latent diffusion pipeline in Stable Diffusion 1.x/2.x's layout (the UNet draws the
/// VAE's scaled latents, the VAE decodes them). Sampling follows diffusers' StableDiffusionPipeline:
/// x_T ~ N(0, I) (or given, as its `latents=` argument), then for each DDIM timestep
/// ε̂ = ε_u + s·(ε_c − ε_u) from one UNet call on [uncond; cond], x ← step(ε̂); images are
/// decode(x)/2 + ½ clipped to [0, 1]. The scheduler config is read as DDIM (another class's config
/// is converted, as diffusers' `from_config` does).
public final class PriorPipeline {
    public let folder: URL
    public let tokenizer: CLIPTokenizer
    public let textEncoder: CLIPTextModel
    public let unet: UNet2DConditionModel
    /// The VAE of a latent diffusion pipeline; nil for a pixel-space one.
    public let vae: AutoencoderKL?
    public let schedulerConfig: SchedulerConfig
    public let settings: PriorSettings

    /// Loads every component, checking that they fit together.
    /// - Parameter variant: the weights variant to load (`"fp16"`); nil chooses per component
    ///   (plain files first, see `ComponentWeights`).
    /// - Throws: `PriorConfigError`, `TokenizerError`, `SchedulerConfigError`, `ComponentWeightsError`
    ///   or `SafeTensorsError` naming the file and the problem.
    public init(folder: URL, variant: String? = nil) throws {
        self.folder = folder
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PriorConfigError(source: folder.path, key: nil, problem: "is not a folder",
                                   fix: "point --prior at a diffusers pipeline folder (tokenizer/, text_encoder/, unet/, scheduler/)")
        }
        let index = try ModelIndex(folder: folder)
        tokenizer = try CLIPTokenizer(folder: folder.appendingPathComponent("tokenizer"))
        textEncoder = try CLIPTextModel(folder: folder.appendingPathComponent("text_encoder"), variant: variant)
        unet = try UNet2DConditionModel(folder: folder.appendingPathComponent("unet"), variant: variant)
        vae = index.hasVAE ? try AutoencoderKL(folder: folder.appendingPathComponent("vae"), variant: variant) : nil
        vae?.setRequiresGradient(false)  // Kiln never trains a VAE: its backward passes give input gradients only
        schedulerConfig = try SchedulerConfig(contentsOf: folder.appendingPathComponent("scheduler/scheduler_config.json"), as: .ddim)
        let settingsURL = folder.appendingPathComponent(PriorSettings.fileName)
        if let data = FileManager.default.contents(atPath: settingsURL.path) {
            settings = try PriorSettings(json: data, source: settingsURL.path)
        } else {
            settings = PriorSettings()
        }
        let unetSource = folder.appendingPathComponent("unet/config.json").path
        let c = unet.config
        if c.usesText, let width = Set(c.crossAttentionDim).first, Set(c.crossAttentionDim).count == 1, width != textEncoder.config.hiddenSize {
            throw PriorConfigError(source: unetSource, key: "cross_attention_dim",
                                   problem: "is \(width) but the text encoder gives \(textEncoder.config.hiddenSize)-wide states",
                                   fix: "use the UNet and text encoder that were trained together")
        }
        if let vae {
            let latent = vae.config.latentChannels
            guard c.inChannels == latent, c.outChannels == latent else {
                throw PriorConfigError(source: unetSource, key: "in_channels",
                                       problem: "is \(c.inChannels) (out_channels \(c.outChannels)) but the VAE's latents have \(latent) channels",
                                       fix: "use the UNet and VAE that were trained together")
            }
        } else {
            guard c.inChannels == 3, c.outChannels == 3 else {
                throw PriorConfigError(source: unetSource, key: "in_channels",
                                       problem: "is \(c.inChannels) (out_channels \(c.outChannels)); a pixel-space RGB prior has 3 and 3",
                                       fix: "add the VAE the UNet was trained with (vae/, named in model_index.json), or use a pixel-space prior")
            }
        }
        if let p = c.projectionClassInputDim, p != ViewConditioning.length {
            throw PriorConfigError(source: unetSource, key: "projection_class_embeddings_input_dim",
                                   problem: "is \(p); Kiln's view conditioning has \(ViewConditioning.length) values",
                                   fix: "train the prior with Kiln's ViewConditioning layout")
        }
    }

    /// The guidance scale a prior folder's card samples with (`kiln_prior.json`), else diffusers' 7.5.
    /// - Throws: `PriorConfigError` for an unreadable `kiln_prior.json`.
    public static func guidance(of folder: URL) throws -> Double {
        let url = folder.appendingPathComponent(PriorSettings.fileName)
        guard let data = FileManager.default.contents(atPath: url.path) else { return PriorSettings.defaultGuidanceScale }
        return try PriorSettings(json: data, source: url.path).samplingGuidanceScale
    }

    /// A pipeline over models already in memory (a training run's sample grids).
    public init(tokenizer: CLIPTokenizer, textEncoder: CLIPTextModel, unet: UNet2DConditionModel, vae: AutoencoderKL? = nil,
                schedulerConfig: SchedulerConfig, settings: PriorSettings = PriorSettings(), folder: URL = URL(fileURLWithPath: ".")) {
        (self.tokenizer, self.textEncoder, self.unet, self.vae, self.schedulerConfig, self.settings, self.folder) =
            (tokenizer, textEncoder, unet, vae, schedulerConfig, settings, folder)
        vae?.setRequiresGradient(false)  // as the folder loader does
    }

    /// Whether the UNet takes a camera (and time) through its class embedding.
    public var hasViewConditioning: Bool { unet.config.projectionClassInputDim != nil }

    /// The size of the UNet's samples x (`unet/config.json` `sample_size`, else 64): the image size
    /// for a pixel-space prior, the latent size for a latent one.
    public var sampleSize: (height: Int, width: Int) { (unet.config.sampleHeight ?? 64, unet.config.sampleWidth ?? 64) }

    /// The image size the prior draws at: the sample size, times the VAE's factor for a latent prior
    /// (Stable Diffusion 1.5: 64² latents, 512² images).
    public var imageSize: (height: Int, width: Int) {
        let f = vae?.config.downsamplingFactor ?? 1
        return (sampleSize.height * f, sampleSize.width * f)
    }

    /// Channels of the UNet's samples: 3 (RGB) for a pixel-space prior, the VAE's latent channels for a latent one.
    public var sampleChannels: Int { unet.config.inChannels }

    /// Text states `[N, 77, D]` for prompts (padded to the tokenizer's length, as diffusers does).
    public func encode(_ prompts: [String]) -> Tensor {
        textEncoder.forward(ids: prompts.map { tokenizer.encode($0).inputIDs }).lastHiddenState
    }

    /// Whether each sample's prompt names the side it is seen from (`kiln_prior.json` `view_prompts`).
    public var usesViewPrompts: Bool { settings.viewPrompts == true }

    /// The prompt a sample seen from `view` is conditioned on: `text` itself, or for a prior
    /// trained with view prompts, `text` with its side's words ("a red mug, side view"). The empty
    /// prompt (classifier-free guidance's unconditional) stays empty.
    public func prompt(_ text: String, view: ViewConditioning) -> String {
        usesViewPrompts ? ViewDirection(view).prompt(text) : text
    }

    /// Text states `[N, 77, D]` for prompts each seen from its view (`prompt(_:view:)`).
    public func encode(_ prompts: [String], views: [ViewConditioning]) -> Tensor {
        precondition(prompts.count == views.count, "PriorPipeline.encode: \(prompts.count) prompts for \(views.count) views")
        return encode(zip(prompts, views).map { prompt($0, view: $1) })
    }

    /// Draws `request.count` samples.
    /// - Parameters:
    ///   - initialNoise: x_T `[count, channels, h, w]` (diffusers' `latents=`); h and w may differ from
    ///     the config's sample size when the UNet's levels divide them. nil draws it, at the sample
    ///     size, from `RNG(seed: request.seed)`.
    ///   - progress: called after each step with (step, steps).
    /// - Returns: x₀ `[count, channels, h, w]`: images in [−1, 1] for a pixel-space prior, scaled
    ///   latents for a latent one (`pixels(_:)` turns either into images).
    public func sample(_ request: SampleRequest, initialNoise: Tensor? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> Tensor {
        let n = request.count
        precondition(n > 0, "PriorPipeline.sample: count must be positive")
        var rng = RNG(seed: request.seed)
        var x: Tensor
        if let initialNoise {
            try checkInitialNoise(initialNoise, count: n)
            x = initialNoise
        } else {
            x = Tensor.random([n, sampleChannels, sampleSize.height, sampleSize.width], rng: &rng)
        }
        let shape = x.shape
        var scheduler = try DDIMScheduler(config: schedulerConfig)
        try scheduler.setTimesteps(request.steps)
        let guided = request.guidanceScale > 1
        let prompts = (guided ? Array(repeating: request.negativePrompt, count: n) : [])
            + Array(repeating: prompt(request.prompt, view: request.view), count: n)
        let context = encode(prompts)
        let batch = prompts.count
        let labels = viewLabels(Array(repeating: request.view, count: batch))
        for (i, t) in scheduler.timesteps.enumerated() {
            let input = guided ? Tensor.concatenated([x, x], axis: 0) : x
            let prediction = unet.forward(input, timesteps: [Float(t)], encoderHiddenStates: context, classLabels: labels)
            let epsilon: [Float]
            if guided {
                let halves = prediction.chunked(2, axis: 0)
                epsilon = try ClassifierFreeGuidance.combine(uncond: halves[0].storage, cond: halves[1].storage, scale: request.guidanceScale)
            } else {
                epsilon = prediction.storage
            }
            let step = try scheduler.step(modelOutput: epsilon, timestep: t, sample: x.storage, eta: request.eta, rng: &rng, batchSize: n)
            x = Tensor(shape: shape, storage: step.prevSample)
            progress?(i + 1, scheduler.timesteps.count)
        }
        return x
    }

    /// Checks initial noise given from outside (a `--latents` file): its shape, its size against
    /// the UNet's levels, its values.
    /// - Throws: `PriorConfigError` naming the problem.
    public func checkInitialNoise(_ noise: Tensor, count: Int, source: String = "the initial noise") throws {
        let f = 1 << (unet.config.levels - 1)
        let s = noise.shape
        guard s.count == 4, s[0] == count, s[1] == sampleChannels, s[2] > 0, s[3] > 0 else {
            throw PriorConfigError(source: source, key: nil, problem: "is shaped \(s), not [\(count), \(sampleChannels), h, w]",
                                   fix: "give one \(sampleChannels)-channel noise tensor per sample")
        }
        guard s[2] % f == 0, s[3] % f == 0 else {
            throw PriorConfigError(source: source, key: nil, problem: "is \(s[2])×\(s[3]), which the UNet's \(unet.config.levels) levels do not halve evenly",
                                   fix: "use a size divisible by \(f), e.g. \(sampleSize.height)×\(sampleSize.width)")
        }
        guard noise.isFinite else {
            throw PriorConfigError(source: source, key: nil, problem: "holds NaN or infinite values", fix: "draw the noise from N(0, 1)")
        }
    }

    /// The UNet's class labels for a batch, one row per view `[B, ViewConditioning.length]`, or nil
    /// for a prior without view conditioning.
    public func viewLabels(_ views: [ViewConditioning]) -> Tensor? {
        hasViewConditioning ? Tensor(shape: [views.count, ViewConditioning.length], storage: Array(views.map(\.vector).joined())) : nil
    }

    /// Images in [−1, 1] `[N, 3, H, W]` of samples x: x itself for a pixel-space prior, the VAE's
    /// decoding of the latents for a latent one.
    public func pixels(_ x: Tensor) -> Tensor {
        guard let vae else { return x }
        return vae.decode(x)
    }

    /// Samples in [−1, 1] as display values: x/2 + ½ clipped to [0, 1], same shape.
    public static func displayValues(_ x: Tensor) -> Tensor {
        Tensor(shape: x.shape, storage: x.storage.map { min(1, max(0, $0 / 2 + 0.5)) })
    }

    /// Samples in [−1, 1] `[N, 3, H, W]` as RGB images (`displayValues`, interleaved).
    public static func images(_ x: Tensor) -> [Image] {
        x.checkRank(4, "[N, 3, H, W]", "PriorPipeline.images")
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let values = displayValues(x).storage
        return (0..<n).map { s in
            var image = Image(width: w, height: h, channels: 3)
            for c in 0..<3 {
                for i in 0..<(h * w) { image.pixels[i * 3 + c] = values[(s * 3 + c) * h * w + i] }
            }
            return image
        }
    }
}
