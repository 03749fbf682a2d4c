import Foundation

/// The fields of a diffusers `UNet2DConditionModel` config (`unet/config.json`) that Kiln builds.
///
/// Per-block settings are expanded to one entry per down block (diffusers accepts an int or a
/// list). Policy, as for the text encoder: every key is either read, listed in `ignoredKeys`, or
/// listed in `requiredValues` with the only value(s) Kiln implements; anything else is an error
/// naming the key, so a UNet Kiln would build differently from diffusers never loads silently.
public struct UNetConfig: Sendable, Equatable {
    /// A down block: ResNets (+ transformers), then a stride-2 convolution unless it is the last.
    public enum DownBlock: String, Sendable { case down = "DownBlock2D", crossAttentionDown = "CrossAttnDownBlock2D" }
    /// An up block: ResNets over concatenated skips (+ transformers), then ×2 upsampling unless it is the last.
    public enum UpBlock: String, Sendable { case up = "UpBlock2D", crossAttentionUp = "CrossAttnUpBlock2D" }

    public var inChannels: Int
    public var outChannels: Int
    /// Channels of each resolution level, finest first.
    public var blockOutChannels: [Int]
    public var downBlocks: [DownBlock]
    public var upBlocks: [UpBlock]
    /// ResNets per down block (up blocks have one more), one entry per down block.
    public var layersPerBlock: [Int]
    /// `UNetMidBlock2DCrossAttn` when true; no mid block when false (`mid_block_type: null`).
    public var hasMidBlock: Bool
    /// Attention heads per down block (diffusers' `attention_head_dim`, which its UNet uses as the
    /// head count); each head has `blockOutChannels[i] / heads` channels.
    public var heads: [Int]
    /// Width of the text states each cross-attention reads, per down block.
    public var crossAttentionDim: [Int]
    /// Transformer blocks per Transformer2DModel, per down block.
    public var transformerLayersPerBlock: [Int]
    /// Transformer2DModel's proj_in/proj_out: Linear on tokens (true) or 1×1 convolutions.
    public var useLinearProjection: Bool
    public var normGroups: Int
    public var normEps: Float
    public var flipSinToCos: Bool
    public var freqShift: Float
    /// Width of the time embedding MLP; diffusers' default is 4 · blockOutChannels[0].
    public var timeEmbeddingDim: Int
    /// Input width of the `projection` class embedding (camera, time), nil without one.
    public var projectionClassInputDim: Int?
    public var convInKernel: Int
    public var convOutKernel: Int
    /// Maps the input from [0, 1] to [−1, 1] first.
    public var centerInputSample: Bool
    /// The mid block's residual divisor (`mid_block_scale_factor`).
    public var midBlockScaleFactor: Float
    /// The image size the model was trained at (`sample_size`, height × width), if the config says.
    public var sampleHeight: Int?
    public var sampleWidth: Int?

    /// Keys that do not change the forward pass.
    public static let ignoredKeys: Set<String> = [
        "_class_name", "_diffusers_version", "_name_or_path", "_use_default_values", "dropout",
        "addition_embed_type_num_heads", "addition_time_embed_dim", "upcast_attention",
    ]

    /// Keys Kiln accepts only with the values diffusers' defaults have (JSON null written as NSNull).
    static let requiredValues: [String: (allowed: [String], fix: String)] = [
        "act_fn": (["silu", "swish"], "Kiln's UNet uses SiLU"),
        "addition_embed_type": (["null"], "remove the added (SDXL-style) embedding"),
        "attention_type": (["default"], "use default attention"),
        "class_embeddings_concat": (["false"], "add the class embedding to the time embedding"),
        "cross_attention_norm": (["null"], "remove the cross-attention norm"),
        "downsample_padding": (["1"], "use padding 1 in the stride-2 convolutions"),
        "dual_cross_attention": (["false"], "use single cross-attention"),
        "encoder_hid_dim": (["null"], "project the text states before the UNet"),
        "encoder_hid_dim_type": (["null"], "project the text states before the UNet"),
        "mid_block_only_cross_attention": (["null", "false"], "use self- and cross-attention in the mid block"),
        "num_attention_heads": (["null"], "give the head count in attention_head_dim as diffusers' UNet2DConditionModel does"),
        "num_class_embeds": (["null"], "use class_embed_type projection for conditioning vectors"),
        "only_cross_attention": (["false"], "use self- and cross-attention"),
        "resnet_out_scale_factor": (["1", "1.0"], "use 1.0"),
        "resnet_skip_time_act": (["false"], "use false"),
        "resnet_time_scale_shift": (["default"], "use the additive time embedding (default)"),
        "reverse_transformer_layers_per_block": (["null"], "use transformer_layers_per_block"),
        "time_cond_proj_dim": (["null"], "remove the timestep condition projection"),
        "time_embedding_act_fn": (["null"], "remove the time embedding activation"),
        "time_embedding_type": (["positional"], "use positional (sinusoidal) time embeddings"),
        "timestep_post_act": (["null"], "remove the post-embedding activation"),
    ]

    public init(inChannels: Int, outChannels: Int, blockOutChannels: [Int], downBlocks: [DownBlock], upBlocks: [UpBlock],
                layersPerBlock: Int = 2, hasMidBlock: Bool = true, heads: Int = 8, crossAttentionDim: Int = 768,
                transformerLayersPerBlock: Int = 1, useLinearProjection: Bool = false, normGroups: Int = 32,
                normEps: Float = 1e-5, flipSinToCos: Bool = true, freqShift: Float = 0, timeEmbeddingDim: Int? = nil,
                projectionClassInputDim: Int? = nil, convInKernel: Int = 3, convOutKernel: Int = 3,
                centerInputSample: Bool = false, midBlockScaleFactor: Float = 1) {
        let levels = blockOutChannels.count
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.blockOutChannels = blockOutChannels
        self.downBlocks = downBlocks
        self.upBlocks = upBlocks
        self.layersPerBlock = Array(repeating: layersPerBlock, count: levels)
        self.hasMidBlock = hasMidBlock
        self.heads = Array(repeating: heads, count: levels)
        self.crossAttentionDim = Array(repeating: crossAttentionDim, count: levels)
        self.transformerLayersPerBlock = Array(repeating: transformerLayersPerBlock, count: levels)
        self.useLinearProjection = useLinearProjection
        self.normGroups = normGroups
        self.normEps = normEps
        self.flipSinToCos = flipSinToCos
        self.freqShift = freqShift
        self.timeEmbeddingDim = timeEmbeddingDim ?? 4 * (blockOutChannels.first ?? 0)
        self.projectionClassInputDim = projectionClassInputDim
        self.convInKernel = convInKernel
        self.convOutKernel = convOutKernel
        self.centerInputSample = centerInputSample
        self.midBlockScaleFactor = midBlockScaleFactor
    }

    /// Number of resolution levels (down blocks).
    public var levels: Int { blockOutChannels.count }

    /// Channels per attention head at level `i`.
    public func headDim(_ level: Int) -> Int { blockOutChannels[level] / heads[level] }

    /// Whether any block (or the mid block) cross-attends to text states.
    public var usesText: Bool { hasMidBlock || downBlocks.contains(.crossAttentionDown) || upBlocks.contains(.crossAttentionUp) }

    /// Checks the structure: levels agree, channels split into norm groups and heads.
    /// - Throws: `PriorConfigError` naming `source` and the field.
    public func validate(source: String) throws {
        func fail(_ key: String, _ problem: String, _ fix: String) -> PriorConfigError {
            PriorConfigError(source: source, key: key, problem: problem, fix: fix)
        }
        guard levels > 0 else { throw fail("block_out_channels", "is empty", "give one width per resolution level") }
        guard downBlocks.count == levels else {
            throw fail("down_block_types", "has \(downBlocks.count) entries for \(levels) block_out_channels", "give one down block per level")
        }
        guard upBlocks.count == levels else {
            throw fail("up_block_types", "has \(upBlocks.count) entries for \(levels) block_out_channels", "give one up block per level")
        }
        for (key, values) in [("layers_per_block", layersPerBlock), ("attention_head_dim", heads),
                              ("cross_attention_dim", crossAttentionDim), ("transformer_layers_per_block", transformerLayersPerBlock)] {
            guard values.count == levels else { throw fail(key, "has \(values.count) entries for \(levels) levels", "give one value, or one per level") }
            guard values.allSatisfy({ $0 > 0 }) else { throw fail(key, "must be positive", "use positive values") }
        }
        guard inChannels > 0, outChannels > 0 else { throw fail("in_channels", "must be positive", "use the image's channel count") }
        guard normGroups > 0, normEps > 0 else { throw fail("norm_num_groups", "and norm_eps must be positive", "use 32 and 1e-5") }
        for (i, width) in blockOutChannels.enumerated() {
            guard width > 0, width % normGroups == 0 else {
                throw fail("block_out_channels", "\(width) does not split into \(normGroups) norm groups", "use widths divisible by norm_num_groups")
            }
            guard width % heads[i] == 0 else {
                throw fail("attention_head_dim", "\(heads[i]) heads do not divide \(width) channels", "use a head count that divides the width")
            }
        }
        for (key, k) in [("conv_in_kernel", convInKernel), ("conv_out_kernel", convOutKernel)] where k <= 0 || k % 2 == 0 {
            throw fail(key, "is \(k)", "use an odd kernel size (3)")
        }
        guard timeEmbeddingDim > 0 else { throw fail("time_embedding_dim", "must be positive", "leave it null") }
        if let p = projectionClassInputDim, p <= 0 {
            throw fail("projection_class_embeddings_input_dim", "must be positive", "use the conditioning vector's length")
        }
        guard Float(blockOutChannels[0] / 2) != freqShift else { throw fail("freq_shift", "equals half the embedding width", "use 0 or 1") }
    }
}

// MARK: - Parsing

extension UNetConfig {
    /// Parses `unet/config.json` bytes; `source` names the file in errors.
    public init(json data: Data, source: String) throws {
        let json = try DiffusersConfigObject(json: data, source: source, className: "UNet2DConditionModel", model: "UNet")
        let (object, fail) = (json.object, json.fail)
        try json.checkKeys(read: [
            "in_channels", "out_channels", "block_out_channels", "down_block_types", "up_block_types", "layers_per_block",
            "mid_block_type", "attention_head_dim", "cross_attention_dim", "transformer_layers_per_block",
            "use_linear_projection", "norm_num_groups", "norm_eps", "flip_sin_to_cos", "freq_shift", "time_embedding_dim",
            "class_embed_type", "projection_class_embeddings_input_dim", "conv_in_kernel", "conv_out_kernel",
            "center_input_sample", "mid_block_scale_factor", "sample_size",
        ], ignored: Self.ignoredKeys, required: Self.requiredValues, className: "UNet2DConditionModel")
        func names(_ key: String) throws -> [String] {
            guard case .array(let items)? = object[key], !items.isEmpty else {
                throw fail(key, "must be a non-empty list of block names", "list the block types")
            }
            return try items.map {
                guard case .string(let s) = $0 else { throw fail(key, "holds \($0.text), not a block name", "list the block types") }
                return s
            }
        }
        let blockOutChannels = try json.ints("block_out_channels", fix: "list the channels of each level")
        let levels = blockOutChannels.count
        /// An int for every level, or a list with one per level.
        func perLevel(_ key: String, default value: Int) throws -> [Int] {
            switch object[key] {
            case nil, .null?: return Array(repeating: value, count: levels)
            case .int(let v)?: return Array(repeating: v, count: levels)
            case .array(let items)?:
                return try items.map {
                    guard case .int(let v) = $0 else {
                        throw fail(key, "holds \($0.text)", key == "transformer_layers_per_block"
                                   ? "nested (per-layer) lists are not supported; give one count per block" : "list one integer per level")
                    }
                    return v
                }
            case let v?: throw fail(key, "is \(v.text)", "give an integer or a list of integers")
            }
        }

        let downBlocks = try names("down_block_types").map { name in
            guard let block = DownBlock(rawValue: name) else { throw fail("down_block_types", "holds \(name)", "use DownBlock2D or CrossAttnDownBlock2D") }
            return block
        }
        let upBlocks = try names("up_block_types").map { name in
            guard let block = UpBlock(rawValue: name) else { throw fail("up_block_types", "holds \(name)", "use UpBlock2D or CrossAttnUpBlock2D") }
            return block
        }
        let hasMidBlock: Bool
        switch object["mid_block_type"] {
        case nil, .string("UNetMidBlock2DCrossAttn")?: hasMidBlock = true  // absent: diffusers' default
        case .null?: hasMidBlock = false
        case let v?: throw fail("mid_block_type", "is \(v.text)", "use UNetMidBlock2DCrossAttn or null")
        }
        var projection: Int?
        switch object["class_embed_type"] {
        case nil, .null?: projection = nil
        case .string("projection")?:
            guard case .int(let dim)? = object["projection_class_embeddings_input_dim"] else {
                throw fail("projection_class_embeddings_input_dim", "is missing", "set it to the conditioning vector's length")
            }
            projection = dim
        case let v?: throw fail("class_embed_type", "is \(v.text)", "use projection or null")
        }
        var config = UNetConfig(
            inChannels: try json.int("in_channels", default: 4), outChannels: try json.int("out_channels", default: 4),
            blockOutChannels: blockOutChannels, downBlocks: downBlocks, upBlocks: upBlocks,
            hasMidBlock: hasMidBlock, useLinearProjection: try json.bool("use_linear_projection", default: false),
            normGroups: try json.int("norm_num_groups", default: 32), normEps: Float(try json.number("norm_eps", default: 1e-5)),
            flipSinToCos: try json.bool("flip_sin_to_cos", default: true), freqShift: Float(try json.number("freq_shift", default: 0)),
            timeEmbeddingDim: try json.int("time_embedding_dim", default: 4 * blockOutChannels[0]), projectionClassInputDim: projection,
            convInKernel: try json.int("conv_in_kernel", default: 3), convOutKernel: try json.int("conv_out_kernel", default: 3),
            centerInputSample: try json.bool("center_input_sample", default: false),
            midBlockScaleFactor: Float(try json.number("mid_block_scale_factor", default: 1)))
        switch object["sample_size"] {
        case nil, .null?: break
        case .int(let v)? where v > 0: (config.sampleHeight, config.sampleWidth) = (v, v)
        case .array(let items)? where items.count == 2:
            guard case .int(let h) = items[0], case .int(let w) = items[1], h > 0, w > 0 else {
                throw fail("sample_size", "holds \(object["sample_size"]!.text)", "give a positive size or [height, width]")
            }
            (config.sampleHeight, config.sampleWidth) = (h, w)
        case let v?: throw fail("sample_size", "is \(v.text)", "give a positive size or [height, width]")
        }
        config.layersPerBlock = try perLevel("layers_per_block", default: 2)
        config.heads = try perLevel("attention_head_dim", default: 8)
        config.crossAttentionDim = try perLevel("cross_attention_dim", default: 1280)
        config.transformerLayersPerBlock = try perLevel("transformer_layers_per_block", default: 1)
        try config.validate(source: source)
        self = config
    }
}
