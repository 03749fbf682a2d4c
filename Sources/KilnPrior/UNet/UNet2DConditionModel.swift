import Foundation
import KilnCore
import KilnNN

/// diffusers' `UNet2DConditionModel` (the subset in `UNetConfig`): predicts the noise (or v, or x₀,
/// as the scheduler says) of a noisy sample at timestep t, conditioned on text states through
/// cross-attention and optionally on a vector (camera, time) through the `projection` class
/// embedding.
///
///     emb  = time_embedding(timesteps(t)) [+ class_embedding(labels)]    2-layer MLPs with SiLU
///     h    = conv_in(sample);  skips = [h]
///     down blocks (skips += each state) → mid block → up blocks (each ResNet eats a skip)
///     out  = conv_out(silu(conv_norm_out(h)))
///
/// Parameters carry diffusers' names (`down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight`),
/// so `load(from:)` reads `unet/diffusion_pytorch_model.safetensors` as diffusers wrote it.
///
/// `forward` is inference (attention probabilities are not kept); `forwardForTraining` keeps what
/// `backward` needs, which adds every parameter's gradient and returns the gradients with respect
/// to the sample, the text states and the class labels.
public final class UNet2DConditionModel: Module {
    public let config: UNetConfig
    let timesteps: Timesteps
    let timeLinear1: Linear, timeLinear2: Linear
    let classLinear1: Linear?, classLinear2: Linear?
    let convIn: Conv2d
    let downBlocks: [UNetDownBlock]
    let midBlock: UNetMidBlock?
    let upBlocks: [UNetUpBlock]
    let normOut: GroupNorm
    let convOut: Conv2d

    /// A model with random weights (PyTorch's default initialisation); load real ones with `load(from:)`.
    /// - Precondition: `config.validate` passes.
    public init(_ config: UNetConfig, rng: inout RNG) {
        do { try config.validate(source: "UNetConfig") } catch { preconditionFailure("\(error)") }
        self.config = config
        let c = config, first = c.blockOutChannels[0]
        timesteps = Timesteps(dim: first, flipSinToCos: c.flipSinToCos, downscaleFreqShift: c.freqShift)
        timeLinear1 = Linear(inFeatures: first, outFeatures: c.timeEmbeddingDim, rng: &rng)
        timeLinear2 = Linear(inFeatures: c.timeEmbeddingDim, outFeatures: c.timeEmbeddingDim, rng: &rng)
        if let p = c.projectionClassInputDim {
            classLinear1 = Linear(inFeatures: p, outFeatures: c.timeEmbeddingDim, rng: &rng)
            classLinear2 = Linear(inFeatures: c.timeEmbeddingDim, outFeatures: c.timeEmbeddingDim, rng: &rng)
        } else {
            classLinear1 = nil
            classLinear2 = nil
        }
        convIn = Conv2d(inChannels: c.inChannels, outChannels: first, kernelSize: c.convInKernel, padding: (c.convInKernel - 1) / 2, rng: &rng)
        var down: [UNetDownBlock] = []
        for i in 0..<c.levels {
            down.append(UNetDownBlock(c, level: i, inChannels: c.blockOutChannels[max(i - 1, 0)], rng: &rng))
        }
        downBlocks = down
        midBlock = c.hasMidBlock ? UNetMidBlock(c, rng: &rng) : nil
        var up: [UNetUpBlock] = []
        for i in 0..<c.levels {
            up.append(UNetUpBlock(c, index: i, previousChannels: c.blockOutChannels[c.levels - max(i, 1)], rng: &rng))
        }
        upBlocks = up
        normOut = GroupNorm(groups: c.normGroups, channels: first, eps: c.normEps)
        convOut = Conv2d(inChannels: first, outChannels: c.outChannels, kernelSize: c.convOutKernel, padding: (c.convOutKernel - 1) / 2, rng: &rng)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        var out = prefixed("time_embedding.linear_1", timeLinear1) + prefixed("time_embedding.linear_2", timeLinear2)
        if let classLinear1, let classLinear2 {
            out += prefixed("class_embedding.linear_1", classLinear1) + prefixed("class_embedding.linear_2", classLinear2)
        }
        out += prefixed("conv_in", convIn)
        for (i, block) in downBlocks.enumerated() { out += prefixed("down_blocks.\(i)", block) }
        if let midBlock { out += prefixed("mid_block", midBlock) }
        for (i, block) in upBlocks.enumerated() { out += prefixed("up_blocks.\(i)", block) }
        return out + prefixed("conv_norm_out", normOut) + prefixed("conv_out", convOut)
    }

    // MARK: Loading

    /// Loads a `unet/` folder: `config.json` and `diffusion_pytorch_model.safetensors` (or a
    /// variant, or shards: `ComponentWeights` says which files are read).
    /// - Parameter variant: the weights variant to load (`"fp16"`); nil chooses (plain files first).
    public convenience init(folder: URL, variant: String? = nil) throws {
        let configURL = folder.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: configURL.path) else {
            throw PriorConfigError(source: configURL.path, key: nil, problem: "cannot be read",
                                   fix: "point Kiln at a diffusers pipeline folder with unet/config.json")
        }
        var rng = RNG(seed: 0)
        self.init(try UNetConfig(json: data, source: configURL.path), rng: &rng)
        try load(from: ComponentWeights(folder: folder, library: .diffusers, variant: variant))
    }

    /// Replaces every parameter with the tensor of the same name (F32, F16 or BF16).
    /// - Throws: `SafeTensorsError` for a missing tensor or a shape mismatch; `PriorConfigError`
    ///   when the files hold tensors this model does not have (its config.json describes a
    ///   different network).
    public func load(from weights: ComponentWeights) throws {
        try loadDiffusersWeights(from: weights, model: "UNet")
    }

    /// `load(from:)` for one safetensors file.
    public func load(from file: SafeTensorsFile) throws {
        try load(from: ComponentWeights(file))
    }

    // MARK: Forward

    /// What `backward` needs from `forwardForTraining`.
    public struct Saved {
        var timeFeatures: Tensor, timeHidden: Tensor, timeActivated: Tensor
        var classLabels: Tensor?, classHidden: Tensor?, classActivated: Tensor?
        var sample: Tensor
        var down: [UNetDownBlock.Saved] = []
        /// Output states of each down block (conv_in's output is one more skip, before them).
        var statesPerDownBlock: [Int] = []
        var mid: UNetMidBlock.Saved?
        var up: [UNetUpBlock.Saved] = []
        var finalHidden: Tensor, normalizedOut: Tensor, activatedOut: Tensor
        var contextShape: [Int]?
    }

    /// Gradients with respect to the inputs of `forwardForTraining`.
    public struct InputGradients {
        /// ∂L/∂sample `[N, Cin, H, W]`.
        public var sample: Tensor
        /// ∂L/∂encoderHiddenStates `[N, T, Dc]`, nil when none was passed.
        public var encoderHiddenStates: Tensor?
        /// ∂L/∂classLabels `[N, P]`, nil without a class embedding.
        public var classLabels: Tensor?
    }

    /// Predicts the model output for a batch.
    /// - Parameters:
    ///   - sample: `[N, inChannels, H, W]`, H and W divisible by 2^(levels − 1).
    ///   - timesteps: one per sample, or one for all.
    ///   - encoderHiddenStates: text states `[N, T, crossAttentionDim]` (required when any block cross-attends).
    ///   - classLabels: `[N, projectionClassInputDim]` when the config has a projection class embedding.
    /// - Returns: `[N, outChannels, H, W]`.
    public func forward(_ sample: Tensor, timesteps t: [Float], encoderHiddenStates context: Tensor?, classLabels: Tensor? = nil) -> Tensor {
        run(sample, t, context, classLabels, training: false).output
    }

    /// `forward`, also returning what `backward` needs (attention probabilities included).
    public func forwardForTraining(_ sample: Tensor, timesteps t: [Float], encoderHiddenStates context: Tensor?,
                                   classLabels: Tensor? = nil) -> (output: Tensor, saved: Saved) {
        let (output, saved) = run(sample, t, context, classLabels, training: true)
        return (output, saved!)
    }

    func checkInputs(_ sample: Tensor, _ t: [Float], _ context: Tensor?, _ labels: Tensor?) {
        let c = config
        sample.checkRank(4, "[N, \(c.inChannels), H, W]", "UNet2DConditionModel.forward (sample)")
        sample.checkShape([nil, c.inChannels, nil, nil], "UNet2DConditionModel.forward (sample)")
        let n = sample.shape[0], factor = 1 << (c.levels - 1)
        precondition(sample.shape[2] % factor == 0 && sample.shape[3] % factor == 0,
                     "UNet2DConditionModel.forward: sample size \(sample.shape[2])×\(sample.shape[3]) must be divisible by \(factor)")
        precondition(t.count == n || t.count == 1, "UNet2DConditionModel.forward: \(t.count) timesteps for a batch of \(n)")
        if c.usesText {
            precondition(context != nil, "UNet2DConditionModel.forward: this UNet cross-attends; pass encoderHiddenStates [N, T, \(c.crossAttentionDim[0])]")
        }
        if let context {
            context.checkRank(3, "[N, T, D]", "UNet2DConditionModel.forward (encoderHiddenStates)")
            context.checkShape([n, nil, nil], "UNet2DConditionModel.forward (encoderHiddenStates)")
        }
        if let p = c.projectionClassInputDim {
            precondition(labels != nil, "UNet2DConditionModel.forward: this UNet has a projection class embedding; pass classLabels [N, \(p)]")
            labels!.checkShape([n, p], "UNet2DConditionModel.forward (classLabels)")
        } else {
            precondition(labels == nil, "UNet2DConditionModel.forward: classLabels given, but the config has no class embedding")
        }
    }

    func run(_ sample: Tensor, _ t: [Float], _ context: Tensor?, _ labels: Tensor?, training: Bool) -> (output: Tensor, saved: Saved?) {
        checkInputs(sample, t, context, labels)
        let n = sample.shape[0]
        // Time (and class) embedding.
        let timeFeatures = timesteps.forward(t.count == n ? t : Array(repeating: t[0], count: n))
        let timeHidden = timeLinear1.forward(timeFeatures), timeActivated = SiLU().forward(timeHidden)
        var emb = timeLinear2.forward(timeActivated)
        var classHidden: Tensor?, classActivated: Tensor?
        if let labels, let classLinear1, let classLinear2 {
            classHidden = classLinear1.forward(labels)
            classActivated = SiLU().forward(classHidden!)
            emb += classLinear2.forward(classActivated!)
        }
        let input = config.centerInputSample ? sample.map { 2 * $0 - 1 } : sample
        var down: [UNetDownBlock.Saved] = [], statesPerDownBlock: [Int] = [], up: [UNetUpBlock.Saved] = []
        var mid: UNetMidBlock.Saved?
        // Down path.
        var h = convIn.forward(input)
        var skips = [h]
        for block in downBlocks {
            let (states, s) = block.forward(h, timeEmbedding: emb, context: context, training: training)
            skips += states
            h = states.last!
            if training { down.append(s); statesPerDownBlock.append(states.count) }
        }
        if let midBlock {
            let (m, s) = midBlock.forward(h, timeEmbedding: emb, context: context!, training: training)
            h = m
            if training { mid = s }
        }
        // Up path: each ResNet takes the most recent remaining skip.
        for block in upBlocks {
            let count = block.resnets.count
            let mine = Array(skips.suffix(count).reversed())
            skips.removeLast(count)
            let (u, s) = block.forward(h, skips: mine, timeEmbedding: emb, context: context, training: training)
            h = u
            if training { up.append(s) }
        }
        guard training else { return (convOut.forward(normOut.forwardSiLU(h)), nil) }
        let normalized = normOut.forward(h), activated = SiLU().forward(normalized)
        let output = convOut.forward(activated)
        return (output, Saved(timeFeatures: timeFeatures, timeHidden: timeHidden, timeActivated: timeActivated,
                              classLabels: labels, classHidden: classHidden, classActivated: classActivated, sample: input,
                              down: down, statesPerDownBlock: statesPerDownBlock, mid: mid, up: up,
                              finalHidden: h, normalizedOut: normalized, activatedOut: activated, contextShape: context?.shape))
    }

    // MARK: Backward

    /// Adds ∂L/∂θ into every parameter's gradient and returns the input gradients, given
    /// ∂L/∂output `[N, outChannels, H, W]` and the record of `forwardForTraining`.
    public func backward(_ s: Saved, outputGradient dy: Tensor) -> InputGradients {
        let dActivated = convOut.backward(input: s.activatedOut, outputGradient: dy)
        var g = normOut.backward(input: s.finalHidden, outputGradient: SiLU().backward(input: s.normalizedOut, outputGradient: dActivated))
        var dEmb: Tensor?, dContext: Tensor?
        func collect(_ b: BlockGradients) {
            BlockGradients.accumulate(&dEmb, b.timeEmbedding)
            BlockGradients.accumulate(&dContext, b.context)
        }
        // Skip gradients, indexed like the forward's skip list: conv_in's output, then each down block's states.
        let skipCount = 1 + s.statesPerDownBlock.reduce(0, +)
        var dSkips = [Tensor?](repeating: nil, count: skipCount)
        // Walk the up blocks backwards; block k consumed skips [start_k, start_k + count_k) in reverse order.
        var starts: [Int] = [], end = skipCount
        for block in upBlocks { end -= block.resnets.count; starts.append(end) }
        for k in upBlocks.indices.reversed() {
            let (b, skipGradients) = upBlocks[k].backward(s.up[k], outputGradient: g)
            collect(b)
            g = b.input
            for (j, d) in skipGradients.enumerated() { BlockGradients.accumulate(&dSkips[starts[k] + skipGradients.count - 1 - j], d) }
        }
        if let midBlock {
            let b = midBlock.backward(s.mid!, outputGradient: g)
            collect(b)
            g = b.input
        }
        // The last down state fed the mid block (or the up path directly).
        BlockGradients.accumulate(&dSkips[skipCount - 1], g)
        var offset = skipCount
        for i in downBlocks.indices.reversed() {
            offset -= s.statesPerDownBlock[i]
            let b = downBlocks[i].backward(s.down[i], stateGradients: dSkips[offset..<(offset + s.statesPerDownBlock[i])].map { $0! })
            collect(b)
            BlockGradients.accumulate(&dSkips[offset - 1], b.input)
        }
        var dSample = convIn.backward(input: s.sample, outputGradient: dSkips[0]!)
        if config.centerInputSample { dSample.scale(by: 2) }
        // Time and class embeddings.
        let dTime = SiLU().backward(input: s.timeHidden, outputGradient: timeLinear2.backward(input: s.timeActivated, outputGradient: dEmb!))
        timeLinear1.accumulateParameterGradients(input: s.timeFeatures, outputGradient: dTime)
        var dLabels: Tensor?
        if let classLinear1, let classLinear2, let labels = s.classLabels {
            let dClass = SiLU().backward(input: s.classHidden!, outputGradient: classLinear2.backward(input: s.classActivated!, outputGradient: dEmb!))
            dLabels = classLinear1.backward(input: labels, outputGradient: dClass)
        }
        return InputGradients(sample: dSample, encoderHiddenStates: s.contextShape.map { dContext ?? Tensor.zeros($0) }, classLabels: dLabels)
    }
}
