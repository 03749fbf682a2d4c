import Foundation
import KilnCore
import KilnNN

/// The settings of the tuners (DDPO's defaults from ddpo-pytorch's config where they fit a small
/// prior on 2 cores); each field names the methods that read it.
public struct TuningSettings: Sendable, Equatable, Codable {
    /// Trajectories per condition: DDPO and GRPO normalise advantages within each condition's
    /// group; Diffusion-DPO pairs the group's best with its worst.
    public var samplesPerCondition = 4
    /// DDIM steps per trajectory and its η.
    public var steps = 10
    /// All methods: when set, each epoch draws its DDIM step count uniformly from
    /// `steps…maxSteps`, so the UNet is tuned on the noise levels of many chains rather than one
    /// (a prior tuned on a single chain can lose what it had on the others).
    public var maxSteps: Int? = nil
    public var eta = 1.0
    public var guidanceScale = 3.0
    /// Passes over each batch of trajectories (PPO's inner epochs).
    public var innerEpochs = 1
    /// The share of a trajectory's stochastic steps trained on per inner epoch (chosen at random).
    public var timestepFraction = 1.0
    /// PPO's ε: the ratio's trust region.
    public var clipRange: Float = 1e-4
    /// Advantages are clipped to ±this.
    public var advantageClip: Float = 5
    public var learningRate = 3e-5
    public var weightDecay = 1e-4
    public var maxGradNorm: Float = 1
    /// β of the KL penalty to the frozen starting policy (GRPO-style, k3 estimator); 0 for DDPO.
    public var klCoefficient: Float = 0
    /// Diffusion-DPO's β (Wallace et al. use 5000 for Stable Diffusion's per-element mean error).
    public var dpoBeta: Float = 5000
    /// Diffusion-DPO: noise levels (t, ε) drawn per pair in an epoch.
    public var dpoNoiseDraws = 4
    /// All methods: LoRA instead of full fine-tuning: adapters of this rank on every attention
    /// projection train while the UNet stays frozen, and are merged into it when the prior is
    /// written; nil: every UNet weight trains.
    public var loraRank: Int? = nil
    /// LoRA's α (the adapter's term is scaled by α/r); nil: α = r.
    public var loraAlpha: Float? = nil
    /// All methods: the largest decay of an exponential moving average of the UNet's weights
    /// (diffusers' EMAModel warm-up (1 + s)/(10 + s) below it), which is what the tuned prior
    /// keeps; nil: the weights as trained.
    public var emaDecay: Float? = nil

    public init() {}
}

/// One conditioning a tuning epoch samples: a prompt and a camera.
public typealias TuningCondition = (prompt: String, view: ViewConditioning)

/// The reward a tuner optimises: rewards `[B]` of display images `[B, 3, H, W]` in [0, 1], sample
/// b drawn under `conditions[b]`; and, for methods that back-propagate through the reward (DRaFT),
/// the same with ∂(Σ rewards)/∂images. A reward of linked samples (`SampleReward.links` > 1)
/// expands each condition into `links` conditions sampled from shared noise.
public struct TuningReward {
    public typealias Score = (_ conditions: [TuningCondition], _ images: Tensor) throws -> [Float]
    public typealias ScoreWithGradient = (_ conditions: [TuningCondition], _ images: Tensor) throws -> (rewards: [Float], gradient: Tensor)
    public let score: Score
    public let scoreWithGradient: ScoreWithGradient?
    public let links: Int
    public let linked: (TuningCondition) -> [TuningCondition]

    public init(score: @escaping Score, scoreWithGradient: ScoreWithGradient? = nil, links: Int = 1,
                linked: @escaping (TuningCondition) -> [TuningCondition] = { [$0] }) {
        (self.score, self.scoreWithGradient, self.links, self.linked) = (score, scoreWithGradient, links, linked)
    }

    /// A differentiable reward of single images; `score` drops the gradient.
    public init(differentiable: @escaping ScoreWithGradient) {
        self.init(score: { try differentiable($0, $1).rewards }, scoreWithGradient: differentiable)
    }

    /// An epoch's samples: for each condition, `samplesPerCondition` units of `links` linked
    /// conditions; the samples of a unit share their noise.
    public func layout(_ conditions: [TuningCondition], samplesPerCondition g: Int) -> TuningLayout {
        var samples: [TuningCondition] = [], sources: [Int] = []
        for (c, condition) in conditions.enumerated() {
            let link = linked(condition)
            precondition(link.count == links, "TuningReward: \(link.count) linked conditions, \(links) expected")
            for u in 0..<g {
                samples += link
                sources += Array(repeating: c * g + u, count: links)
            }
        }
        return TuningLayout(conditions: samples, noiseSources: links > 1 ? sources : nil, groupSize: g * links, links: links)
    }
}

/// The samples of an epoch in order: condition by condition, each condition's `groupSize` samples
/// together (units of `links` linked samples).
public struct TuningLayout {
    public var conditions: [TuningCondition]
    /// The noise each sample draws from (samples of a unit share one), or nil: each its own.
    public var noiseSources: [Int]?
    /// Samples per condition.
    public var groupSize: Int
    public var links: Int

    public var prompts: [String] { conditions.map(\.prompt) }
    public var views: [ViewConditioning] { conditions.map(\.view) }
}

/// What one tuning epoch did. Fields a method has no use for are nil.
public struct TuningEpochReport: Sendable, Equatable, Codable {
    public var meanReward: Float
    public var rewardStd: Float
    /// The method's loss (averaged over what it trained on).
    public var loss: Float
    /// ½·mean (log p − log p_old)², DDPO's approximate KL to the sampling policy.
    public var approxKL: Float? = nil
    /// The share of (sample, step) pairs whose ratio left PPO's trust region.
    public var clipFraction: Float? = nil
    /// The mean k3 estimate of KL(policy ‖ reference) per step, when a reference is kept.
    public var klToReference: Float? = nil
    /// Diffusion-DPO: the share of pairs whose implicit reward ranks the winner first.
    public var preferenceAccuracy: Float? = nil
    /// The denoising loss on fresh data, when a `DenoisingRegularizer` is kept (mean over updates).
    public var denoisingLoss: Float? = nil
    /// Wall time per stage (`TuningStage`).
    public var times: StageTimes? = nil

    public init(meanReward: Float, rewardStd: Float, loss: Float) {
        (self.meanReward, self.rewardStd, self.loss) = (meanReward, rewardStd, loss)
    }

    /// Mean and population standard deviation of `rewards`.
    static func statistics(_ rewards: [Float]) -> (mean: Float, std: Float) {
        let n = Float(max(1, rewards.count))
        let mean = rewards.reduce(0, +) / n
        return (mean, (rewards.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n).squareRoot())
    }
}

/// The stages a tuning epoch's time is reported in.
public enum TuningStage {
    /// Drawing the trajectories: UNet forward passes without gradient.
    public static let sampling = "sampling (UNet forward)"
    /// UNet forward passes that keep activations for the backward pass.
    public static let trainingForward = "UNet forward (training)"
    public static let backward = "UNet backward"
    /// The frozen reference UNet (GRPO's KL penalty, Diffusion-DPO).
    public static let reference = "reference UNet"
    public static let decode = "VAE decode and backward"
    public static let rewards = "rewards"
    /// The denoising regulariser's batch: drawing it and its UNet passes.
    public static let regularizer = "denoising regulariser"
    public static let optimizer = "optimizer"
}

/// A method that tunes a prior's UNet epoch by epoch (DDPO, GRPO, Diffusion-DPO, DRaFT), with
/// checkpoints that resume bit-identically: the UNet's weights, the optimiser's moments, the RNG
/// and the epoch.
public protocol PriorTuner: AnyObject {
    var pipeline: PriorPipeline { get }
    var unet: UNet2DConditionModel { get }
    /// The prior's own denoising loss on fresh data, added to every update when set.
    var regularizer: DenoisingRegularizer? { get set }
    /// What trains, by name: the UNet's parameters, or its LoRA adapters' (`TuningSettings.loraRank`).
    var trainable: [(name: String, parameter: Parameter)] { get }
    var optimizer: Adam { get }
    var rng: RNG { get set }
    /// Epochs completed (restored from a checkpoint).
    var epochs: Int { get set }
    /// The moving average of the weights, when the settings ask for one.
    var ema: EMA? { get }
    /// One epoch on `conditions`: sample, score with `reward`, update the UNet.
    func epoch(conditions: [TuningCondition], reward: TuningReward) throws -> TuningEpochReport
}

extension PriorTuner {
    public var unet: UNet2DConditionModel { pipeline.unet }

    /// The regulariser's gradient (when kept), gradient clipping and one optimiser step, folded
    /// into the moving average; returns the regulariser's loss.
    @discardableResult
    func step(maxGradNorm: Float, times: inout StageTimes) throws -> Float? {
        let denoisingLoss = try regularizer.map { r in try times.measure(TuningStage.regularizer) { try r.accumulateGradient(pipeline, rng: &rng) } }
        times.measure(TuningStage.optimizer) {
            _ = clipGradientNorm(optimizer.parameters, maxNorm: maxGradNorm)
            optimizer.step()
            ema?.update(optimizer.parameters)
        }
        return denoisingLoss
    }

    /// Runs `body` with the UNet holding the averaged weights (when averaging), then puts the
    /// trained weights back.
    public func withAveragedWeights<T>(_ body: () throws -> T) rethrows -> T {
        guard let ema else { return try body() }
        let parameters = optimizer.parameters
        let trained = parameters.map(\.value)
        ema.copy(to: parameters)
        defer { for (p, v) in zip(parameters, trained) { p.load(v, name: "trained weights") } }
        return try body()
    }

    /// Writes the checkpoint to `folder` (each file atomically, `state.json` last).
    public func saveCheckpoint(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var weights = SafeTensorsWriter(), moments = SafeTensorsWriter()
        for (i, (name, p)) in trainable.enumerated() {
            try weights.add(name, shape: p.shape, values: p.value.storage)
            try moments.add("m." + name, shape: p.shape, values: optimizer.firstMoments[i].storage)
            try moments.add("v." + name, shape: p.shape, values: optimizer.secondMoments[i].storage)
        }
        try weights.write(to: folder.appendingPathComponent("unet.safetensors"))
        try moments.write(to: folder.appendingPathComponent("adam.safetensors"))
        if let ema {
            var average = SafeTensorsWriter()
            for ((name, p), value) in zip(trainable, ema.shadow) { try average.add(name, shape: p.shape, values: value.storage) }
            try average.write(to: folder.appendingPathComponent("ema.safetensors"))
        }
        try AtomicFile.write(try JSONEncoder().encode(TunerState(epochs: epochs, rng: rng, adamStep: optimizer.stepCount, emaStep: ema?.optimizationStep)),
                             to: folder.appendingPathComponent("state.json"))
    }

    /// Restores what `saveCheckpoint` wrote.
    /// - Throws: `PriorConfigError` naming the file when the checkpoint is missing or does not fit.
    public func restore(from folder: URL) throws {
        let stateURL = folder.appendingPathComponent("state.json")
        guard let data = FileManager.default.contents(atPath: stateURL.path), let state = try? JSONDecoder().decode(TunerState.self, from: data) else {
            throw PriorConfigError(source: stateURL.path, key: nil, problem: "is missing or unreadable", fix: "start a new run without --resume")
        }
        let weights = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("unet.safetensors"))
        let moments = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("adam.safetensors"))
        var first: [Tensor] = [], second: [Tensor] = []
        for (name, p) in trainable {
            p.load(Tensor(shape: p.shape, storage: try weights.expect(name, shape: p.shape)), name: name)
            first.append(Tensor(shape: p.shape, storage: try moments.expect("m." + name, shape: p.shape)))
            second.append(Tensor(shape: p.shape, storage: try moments.expect("v." + name, shape: p.shape)))
        }
        optimizer.restore(stepCount: state.adamStep, firstMoments: first, secondMoments: second)
        if let ema {
            guard let step = state.emaStep else {
                throw PriorConfigError(source: stateURL.path, key: "emaStep", problem: "is missing: the checkpoint was written without a moving average", fix: "resume with the settings it was started with")
            }
            let average = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("ema.safetensors"))
            ema.restore(shadow: try trainable.map { Tensor(shape: $0.parameter.shape, storage: try average.expect($0.name, shape: $0.parameter.shape)) },
                        optimizationStep: step)
        }
        (epochs, rng) = (state.epochs, state.rng)
    }
}

/// Why a tuner cannot run.
public enum TuningError: Error, CustomStringConvertible, Equatable {
    case rewardNotDifferentiable
    case invalidSetting(String)

    public var description: String {
        switch self {
        case .rewardNotDifferentiable: "this method back-propagates through the reward, which gives no image gradient; use a differentiable reward or --method ddpo, grpo or dpo"
        case .invalidSetting(let problem): problem
        }
    }
}

struct TunerState: Codable {
    var epochs: Int
    var rng: RNG
    var adamStep: Int
    var emaStep: Int?
}

extension TuningSettings {
    /// What trains in `unet`: LoRA adapters attached now (their A drawn from a stream of `seed` of
    /// its own) when `loraRank` is set, else every parameter.
    /// - Throws: `TuningError.invalidSetting` for a rank below 1 or above a projection's width.
    func trainable(_ unet: UNet2DConditionModel, seed: UInt64) throws -> [(name: String, parameter: Parameter)] {
        try Self.trainable(unet, rank: loraRank, alpha: loraAlpha, seed: seed)
    }

    static func trainable(_ unet: UNet2DConditionModel, rank: Int?, alpha: Float?, seed: UInt64) throws -> [(name: String, parameter: Parameter)] {
        guard let rank else { return unet.namedParameters }
        let projections = unet.attentionProjections
        guard !projections.isEmpty else { throw TuningError.invalidSetting("LoRA adapts attention projections and this prior's UNet has none; tune it without --lora-rank") }
        let widest = projections.map { min($0.layer.inFeatures, $0.layer.outFeatures) }.min()!
        guard (1...widest).contains(rank) else { throw TuningError.invalidSetting("--lora-rank must be 1…\(widest) for this UNet, got \(rank)") }
        let a = alpha ?? Float(rank)
        guard a.isFinite && a > 0 else { throw TuningError.invalidSetting("--lora-alpha must be a positive number, got \(a)") }
        var rng = RNG(seed: seed &+ 0x4C6F_5241)  // "LoRA"
        return unet.attachLowRankAdapters(rank: rank, alpha: a, rng: &rng)
    }

    /// An epoch's DDIM step count: `steps`, or drawn from `steps…maxSteps` (using `rng` only then).
    func drawSteps(_ rng: inout RNG) -> Int {
        Self.drawSteps(steps, maxSteps, &rng)
    }

    static func drawSteps(_ steps: Int, _ maxSteps: Int?, _ rng: inout RNG) -> Int {
        guard let maxSteps, maxSteps > steps else { return steps }
        return steps + Int(rng.next() % UInt64(maxSteps - steps + 1))
    }

    /// The moving average these settings ask for, over `parameters`.
    func makeEMA(_ parameters: [Parameter]) -> EMA? {
        emaDecay.map { EMA(parameters: parameters, configuration: EMA.Configuration(maxDecay: $0)) }
    }
}

extension UNet2DConditionModel {
    /// A separate UNet with the same configuration and weights (the frozen reference of GRPO's KL
    /// penalty and of Diffusion-DPO).
    func copy() -> UNet2DConditionModel {
        var unused = RNG(seed: 0)
        let copy = UNet2DConditionModel(config, rng: &unused)
        for ((_, target), (_, source)) in zip(copy.namedParameters, namedParameters) { target.load(source.value) }
        return copy
    }
}
