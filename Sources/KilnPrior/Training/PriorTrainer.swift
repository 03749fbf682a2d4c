import Foundation
import KilnCore
import KilnNN

/// Trains a text- and view-conditioned pixel-space prior (UNet + CLIP text encoder, from scratch
/// or fine-tuned from a pipeline folder) on a data set (`PriorTrainingData`) with the DDPM ε objective (Ho et al. 2020):
///
///     x₀ ∈ [−1, 1], t ~ U{0…T−1}, ε ~ N(0, I), x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε
///     L = mean_b w_b · mean ‖ε − ε_θ(x_t, t, text(caption), view)‖²
///
/// with w = 1, or with Min-SNR-γ weights w = min(SNR_t, γ) / SNR_t when `snr_gamma` is set. The
/// scheduler's `prediction_type` picks the target: ε, v = √ᾱ·ε − √(1−ᾱ)·x₀ (with Min-SNR-γ,
/// w = min(SNR, γ) / (SNR + 1)), or x₀ itself (w = min(SNR, γ)), as diffusers' training scripts do.
/// Captions are replaced by "" with probability `captionDropout` (so the same model gives the
/// unconditional prediction classifier-free guidance needs); the view vector is always given.
/// AdamW with linear warm-up, global gradient-norm clipping, an EMA of every weight (exported).
///
/// With a VAE (`vae` in the config) the prior is a latent prior: x₀ is the VAE's scaled latent of
/// each image, (mean − shift)·scaling of its posterior (the mode, encoded once by
/// `prepareLatents` and kept, as latent-diffusion trainings cache their latents), and the
/// exported pipeline carries the VAE as `vae/`, in Stable Diffusion's layout.
public final class PriorTrainer {
    public let config: PriorTrainingConfig
    public let data: any PriorTrainingData
    public let tokenizer: CLIPTokenizer
    public let textEncoder: CLIPTextModel
    public let unet: UNet2DConditionModel
    /// The VAE of a latent prior (frozen), nil for a pixel-space prior.
    public let vae: AutoencoderKL?
    /// The data set's scaled latents `[count, C, s, s]`, once `prepareLatents` has run.
    public private(set) var latents: [Float]?
    let schedule: NoiseSchedule
    /// UNet parameters then text-encoder parameters, with checkpoint names.
    let named: [(name: String, parameter: Parameter)]
    /// The parameters' optimiser and EMA, saved and restored together.
    let state: TrainingState
    public private(set) var step = 0
    /// Wall time of each part of the training steps so far (data, forward and backward passes,
    /// the loss, the optimiser): where training time goes.
    public var times = StageTimes()
    var rng: RNG
    var tokenCache: [String: [Int]] = [:]

    public init(config: PriorTrainingConfig, data: any PriorTrainingData) throws {
        self.config = config
        self.data = data
        tokenizer = try CLIPTokenizer(folder: config.tokenizerFolder)
        var initRNG = RNG(seed: config.training.seed)
        unet = UNet2DConditionModel(config.unet, rng: &initRNG)
        textEncoder = CLIPTextModel(config.textEncoder, rng: &initRNG)
        if let start = config.initFolder {
            // A fine-tune: the pipeline's weights replace the random ones (the EMA starts from them too).
            try unet.load(from: ComponentWeights(folder: start.appendingPathComponent("unet"), library: .diffusers))
            try textEncoder.load(from: ComponentWeights(folder: start.appendingPathComponent("text_encoder"), library: .transformers))
        }
        schedule = try NoiseSchedule(config: config.scheduler)
        named = prefixed("unet", unet) + prefixed("text_encoder", textEncoder)
        state = TrainingState(named: named, learningRate: config.training.learningRate, weightDecay: config.training.weightDecay, emaDecay: config.training.emaDecay)
        rng = initRNG.split(1)
        if let folder = config.vaeFolder {
            let vae = try AutoencoderKL(folder: folder)
            vae.setRequiresGradient(false)
            guard vae.config.inChannels == 3, vae.config.outChannels == 3 else {
                throw PriorConfigError(source: "training config", key: "vae", problem: "names a VAE of \(vae.config.inChannels) input and \(vae.config.outChannels) output channels",
                                       fix: "use an RGB VAE (kiln train-vae)")
            }
            let f = vae.config.downsamplingFactor
            guard vae.config.latentChannels == config.unet.inChannels else {
                throw PriorConfigError(source: "training config", key: "unet.in_channels", problem: "is \(config.unet.inChannels) but the VAE's latents have \(vae.config.latentChannels) channels",
                                       fix: "set unet in_channels and out_channels to \(vae.config.latentChannels)")
            }
            guard data.size % f == 0 else {
                throw PriorConfigError(source: "training config", key: "vae", problem: "downsamples by \(f), which does not divide the data set's \(data.size)² images",
                                       fix: "use a data set whose size is a multiple of \(f)")
            }
            self.vae = vae
        } else {
            vae = nil
        }
        let size = config.unet.sampleHeight ?? sampleSize
        guard size == sampleSize else {
            throw PriorConfigError(source: "training config", key: "unet.sample_size",
                                   problem: "is \(size) but the \(vae == nil ? "data set's images are" : "VAE's latents of the data set's images are") \(sampleSize)²",
                                   fix: "make it \(sampleSize)")
        }
    }

    /// The side of what the UNet denoises: the images, or their latents.
    public var sampleSize: Int { data.size / (vae?.config.downsamplingFactor ?? 1) }
    /// Channels of what the UNet denoises.
    var sampleChannels: Int { vae?.config.latentChannels ?? 3 }

    /// Encodes every image of the data set to its scaled latent (a latent prior; nothing to do for
    /// a pixel-space one), in batches of `batch`, reporting the images done. With `cache`, latents
    /// of an earlier run are read from it when they were made from the same images by the same
    /// VAE (`latentFingerprint`), and new ones are written to it.
    /// - Returns: whether it encoded (false: nothing to do, or the cache held the latents).
    @discardableResult
    public func prepareLatents(cache: URL? = nil, batch: Int = 16, progress: (Int) throws -> Void = { _ in }) throws -> Bool {
        guard let vae, latents == nil else { return false }
        let s = sampleSize, c = sampleChannels, plane = c * s * s, imagePlane = 3 * data.size * data.size
        let fingerprint = latentFingerprint()
        if let cache, let file = try? SafeTensorsFile(contentsOf: cache), file.metadata["fingerprint"] == fingerprint,
           let stored = try? file.expect("latents", shape: [data.count, c, s, s]) {
            latents = stored
            return false
        }
        var out = [Float](repeating: 0, count: data.count * plane)
        let images = data.images
        for start in stride(from: 0, to: data.count, by: batch) {
            let end = min(data.count, start + batch)
            let x = Tensor(shape: [end - start, 3, data.size, data.size], storage: images[(start * imagePlane)..<(end * imagePlane)].map { Float($0) / 127.5 - 1 })
            let z = vae.latents(of: vae.encode(x))
            for i in 0..<z.count { out[start * plane + i] = z.storage[i] }
            try progress(end)
        }
        latents = out
        if let cache {
            var writer = SafeTensorsWriter(metadata: ["fingerprint": fingerprint])
            try writer.add("latents", shape: [data.count, c, s, s], values: out)
            try writer.write(to: cache)
        }
        return true
    }

    /// What the latents depend on, as text: FNV-1a (64-bit) over the data set's image bytes and
    /// over the VAE (its whole config, then its weights), with the counts, sizes and the cache's
    /// format version (v2: the config's text carries the scaling and shift, hashed once).
    func latentFingerprint() -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        for byte in data.images { mix(byte) }
        if let vae {
            for byte in "\(vae.config)".utf8 { mix(byte) }  // every field, the scaling and shift among them
            for (_, p) in vae.namedParameters { for v in p.value.storage { withUnsafeBytes(of: v.bitPattern) { $0.forEach(mix) } } }
        }
        return "v2-\(data.count)x\(data.size)-\(String(hash, radix: 16))"
    }

    /// A sample's caption as the UNet hears it: with `training.view_prompts`, worded by the side its
    /// view vector shows ("a red mug, side view"), as the exported prior's prompts will be.
    func caption(_ text: String, view: ArraySlice<Float>) -> String {
        config.training.viewPrompts ? ViewDirection(ViewConditioning(vector: view)).prompt(text) : text
    }

    func ids(_ caption: String) -> [Int] {
        if let cached = tokenCache[caption] { return cached }
        let ids = tokenizer.encode(caption).inputIDs
        tokenCache[caption] = ids
        return ids
    }

    /// One optimisation step on a random batch; returns the batch's loss.
    /// - Throws: `SchedulerError` only if the training schedule and the batch disagree (a bug).
    @discardableResult
    public func trainStep() throws -> Float {
        let t = config.training, n = t.batchSize, size = sampleSize, channels = sampleChannels, plane = channels * size * size
        precondition(vae == nil || latents != nil, "PriorTrainer.trainStep: a latent prior needs prepareLatents() first")
        let (images, viewVectors, dataCaptions) = (data.images, data.views, data.captions)
        var x0 = [Float](repeating: 0, count: n * plane), views = [Float](repeating: 0, count: n * ViewConditioning.length)
        var captions: [[Int]] = [], timesteps: [Int] = []
        var noise = [Float](repeating: 0, count: n * plane), noisy: [Float] = []
        try times.measure("data") {
            for b in 0..<n {
                let i = Int(rng.next() % UInt64(data.count))
                if let latents {
                    for j in 0..<plane { x0[b * plane + j] = latents[i * plane + j] }
                } else {
                    for j in 0..<plane { x0[b * plane + j] = Float(images[i * plane + j]) / 127.5 - 1 }
                }
                for j in 0..<ViewConditioning.length { views[b * ViewConditioning.length + j] = viewVectors[i * ViewConditioning.length + j] }
                let dropped = rng.nextFloat() < t.captionDropout
                captions.append(ids(dropped ? "" : caption(dataCaptions[i], view: viewVectors[(i * ViewConditioning.length)..<((i + 1) * ViewConditioning.length)])))
                timesteps.append(Int(rng.next() % UInt64(schedule.numTrainTimesteps)))
            }
            rng.fill(normal: &noise)
            noisy = try schedule.addNoise(x0, noise: noise, timesteps: timesteps)
        }
        // Forward.
        let (context, textSaved) = times.measure("text encoder forward") { textEncoder.forwardForTraining(ids: captions) }
        let labels = unet.config.projectionClassInputDim == nil ? nil : Tensor(shape: [n, ViewConditioning.length], storage: views)
        let (prediction, saved) = times.measure("UNet forward") {
            unet.forwardForTraining(Tensor(shape: [n, channels, size, size], storage: noisy), timesteps: timesteps.map(Float.init),
                                    encoderHiddenStates: context, classLabels: labels)
        }
        var loss = 0.0
        var dOut = [Float](repeating: 0, count: n * plane)
        let predictionType = config.scheduler.predictionType
        times.measure("loss") {
            for b in 0..<n {
                let a = schedule.alphaCumprod(timesteps[b])
                let weight = Self.lossWeight(alphaCumprod: a, snrGamma: t.snrGamma, predictionType: predictionType)
                let scale = 2 * weight / Float(n * plane)
                let (sa, sb) = (a.squareRoot(), (1 - a).squareRoot())
                var sum = 0.0
                for j in (b * plane)..<((b + 1) * plane) {
                    let target: Float
                    switch predictionType {
                    case .epsilon: target = noise[j]
                    case .vPrediction: target = sa * noise[j] - sb * x0[j]
                    case .sample: target = x0[j]
                    }
                    let d = prediction.storage[j] - target
                    sum += Double(d * d)
                    dOut[j] = scale * d
                }
                loss += Double(weight) * sum
            }
            for (_, p) in named { p.zeroGradient() }
        }
        // Backward.
        let gradients = times.measure("UNet backward") { unet.backward(saved, outputGradient: Tensor(shape: prediction.shape, storage: dOut)) }
        if let dContext = gradients.encoderHiddenStates { times.measure("text encoder backward") { textEncoder.backward(textSaved, outputGradient: dContext) } }
        step += 1
        times.measure("optimizer") { state.update(step: step, learningRate: t.learningRate, warmupSteps: t.warmupSteps, maxGradNorm: t.maxGradNorm) }
        return Float(loss / Double(n * plane))
    }

    /// The loss weight of a sample at noise level ᾱ: 1, or with Min-SNR-γ (SNR = ᾱ / (1 − ᾱ))
    /// min(SNR, γ) / SNR for ε, min(SNR, γ) / (SNR + 1) for v, min(SNR, γ) for x₀.
    static func lossWeight(alphaCumprod a: Float, snrGamma: Double?, predictionType: SchedulerConfig.PredictionType = .epsilon) -> Float {
        guard let gamma = snrGamma else { return 1 }
        let snr = Double(a) / (1 - Double(a))
        switch predictionType {
        case .epsilon: return snr > 0 ? Float(min(snr, gamma) / snr) : 1
        case .vPrediction: return Float(min(snr, gamma) / (snr + 1))
        case .sample: return Float(min(snr, gamma))
        }
    }

    // MARK: Checkpoints

    /// Writes the raw weights, the EMA, the optimiser moments and the RNG to `folder`
    /// (`TrainingState`).
    public func saveCheckpoint(to folder: URL) throws { try state.save(to: folder, step: step, rng: rng) }

    /// Restores what `saveCheckpoint` wrote.
    public func loadCheckpoint(from folder: URL) throws { (step, rng) = try state.load(from: folder) }

    /// Runs `body` with the EMA weights in the model, then puts the trained weights back.
    public func withAveragedWeights<T>(_ body: () throws -> T) rethrows -> T { try state.withAveragedWeights(body) }

    /// The EMA model as a pipeline in memory (for sample grids).
    func pipeline(vocabulary: [String]?) throws -> PriorPipeline {
        PriorPipeline(tokenizer: tokenizer, textEncoder: textEncoder, unet: unet, vae: vae,
                      schedulerConfig: try SchedulerConfig(json: JSONEncoder().encode(config.schedulerJSON), source: "scheduler", as: .ddim),
                      settings: PriorSettings(conditioning: PriorSettings.viewConditioning, vocabulary: vocabulary,
                                              viewPrompts: config.training.viewPrompts ? true : nil))
    }

    /// Writes the EMA model as a diffusers pipeline folder (F16 weights), with Kiln's settings.
    public func exportPipeline(to folder: URL) throws {
        try withAveragedWeights {
            let fm = FileManager.default
            for sub in ["unet", "text_encoder", "scheduler", "tokenizer"] {
                try fm.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            func writeJSON(_ value: ConfigValue, _ path: String) throws {
                try AtomicFile.write(try encoder.encode(value), to: folder.appendingPathComponent(path))
            }
            var unetWeights = SafeTensorsWriter(metadata: ["format": "pt"]), textWeights = SafeTensorsWriter(metadata: ["format": "pt"])
            for (name, p) in unet.namedParameters { try unetWeights.add(name, shape: p.shape, values: p.value.storage, dtype: .f16) }
            for (name, p) in textEncoder.namedParameters { try textWeights.add("text_model." + name, shape: p.shape, values: p.value.storage, dtype: .f16) }
            try unetWeights.write(to: folder.appendingPathComponent("unet/diffusion_pytorch_model.safetensors"))
            try textWeights.write(to: folder.appendingPathComponent("text_encoder/model.safetensors"))
            try writeJSON(config.unetJSON, "unet/config.json")
            try writeJSON(config.textEncoderJSON, "text_encoder/config.json")
            try writeJSON(config.schedulerJSON, "scheduler/scheduler_config.json")
            for name in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"] {
                let source = config.tokenizerFolder.appendingPathComponent(name)
                if let bytes = fm.contents(atPath: source.path) { try AtomicFile.write(bytes, to: folder.appendingPathComponent("tokenizer/" + name)) }
            }
            var index: ConfigValue = .object([
                "_class_name": .string("KilnPriorPipeline"), "unet": .array([.string("diffusers"), .string("UNet2DConditionModel")]),
                "text_encoder": .array([.string("transformers"), .string("CLIPTextModel")]),
                "tokenizer": .array([.string("transformers"), .string("CLIPTokenizer")]),
                "scheduler": .array([.string("diffusers"), .string("DDPMScheduler")]),
            ])
            if let vae {
                // The VAE the latents were encoded with, from memory (the folder it came from may
                // have changed since).
                try vae.writeDiffusersFolder(to: folder.appendingPathComponent("vae"), scalingFactor: vae.config.scalingFactor)
                guard case .object(var entries) = index else { preconditionFailure("model_index is an object") }
                entries["vae"] = .array([.string("diffusers"), .string("AutoencoderKL")])
                index = .object(entries)
            }
            try writeJSON(index, "model_index.json")
            let settings = PriorSettings(conditioning: unet.config.projectionClassInputDim == nil ? nil : PriorSettings.viewConditioning,
                                         vocabulary: config.training.viewPrompts ? data.vocabulary.map { Array(Set($0 + ViewDirection.words)).sorted() } : data.vocabulary,
                                         guidanceScale: config.training.sampleGuidance,
                                         viewPrompts: config.training.viewPrompts ? true : nil)
            try AtomicFile.write(try encoder.encode(settings), to: folder.appendingPathComponent(PriorSettings.fileName))
        }
    }

    /// A grid of EMA samples for `prompts` (one column each), seen from azimuth 0 and 180.
    public func sampleImages(prompts: [String], seed: UInt64) throws -> [Image] {
        try withAveragedWeights {
            let pipeline = try pipeline(vocabulary: nil)
            var images: [Image] = []
            for azimuth: Float in [0, 180] {
                for (i, prompt) in prompts.enumerated() {
                    let request = SampleRequest(prompt: prompt, count: 1, steps: config.training.sampleSteps,
                                                guidanceScale: config.training.sampleGuidance, seed: seed &+ UInt64(i),
                                                view: ViewConditioning(azimuthDegrees: azimuth, elevationDegrees: 15))
                    images += PriorPipeline.images(pipeline.pixels(try pipeline.sample(request)))
                }
            }
            return images
        }
    }
}
