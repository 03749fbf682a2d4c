import Foundation

/// The fields of a diffusers `AutoencoderKL` config (`vae/config.json`) that Kiln builds: the
/// Stable Diffusion VAE (`DownEncoderBlock2D` / `UpDecoderBlock2D`, a mid block with one
/// self-attention, `quant_conv` and `post_quant_conv`).
///
/// Policy, as for `UNetConfig`: every key is either read, listed in `ignoredKeys`, or listed in
/// `requiredValues` with the only value(s) Kiln implements; anything else is an error naming the
/// key, so a VAE Kiln would build differently from diffusers never loads silently.
public struct AutoencoderKLConfig: Sendable, Equatable {
    /// Image channels in (3).
    public var inChannels: Int
    /// Image channels out (3).
    public var outChannels: Int
    /// Channels of the latent (4 for Stable Diffusion 1/2).
    public var latentChannels: Int
    /// Channels of each resolution level, finest first; the latent is 2^(levels − 1) times smaller.
    public var blockOutChannels: [Int]
    /// ResNets per encoder down block (decoder up blocks have one more).
    public var layersPerBlock: Int
    public var normGroups: Int
    /// Latents are `(mean − shiftFactor) · scalingFactor` (Stable Diffusion 1.5: 0.18215, no shift).
    public var scalingFactor: Float
    public var shiftFactor: Float
    /// The image size the model was trained at (`sample_size`), if the config says.
    public var sampleSize: Int?

    /// diffusers' `Encoder`/`Decoder` build every GroupNorm of the VAE with this epsilon.
    public static let normEps: Float = 1e-6

    /// Keys that do not change encode or decode.
    public static let ignoredKeys: Set<String> = [
        "_class_name", "_diffusers_version", "_name_or_path", "_use_default_values", "force_upcast",
    ]

    /// Keys Kiln accepts only with the values diffusers' defaults have (JSON null written as NSNull).
    static let requiredValues: [String: (allowed: [String], fix: String)] = [
        "act_fn": (["silu", "swish"], "Kiln's VAE uses SiLU"),
        "use_quant_conv": (["true"], "use a VAE with quant_conv (Stable Diffusion's)"),
        "use_post_quant_conv": (["true"], "use a VAE with post_quant_conv (Stable Diffusion's)"),
        "mid_block_add_attention": (["true"], "use a VAE whose mid blocks have their attention"),
        "latents_mean": (["null"], "use scaling_factor and shift_factor instead of per-channel latent statistics"),
        "latents_std": (["null"], "use scaling_factor and shift_factor instead of per-channel latent statistics"),
    ]

    public init(inChannels: Int = 3, outChannels: Int = 3, latentChannels: Int = 4, blockOutChannels: [Int] = [128, 256, 512, 512],
                layersPerBlock: Int = 2, normGroups: Int = 32, scalingFactor: Float = 0.18215, shiftFactor: Float = 0,
                sampleSize: Int? = nil) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.latentChannels = latentChannels
        self.blockOutChannels = blockOutChannels
        self.layersPerBlock = layersPerBlock
        self.normGroups = normGroups
        self.scalingFactor = scalingFactor
        self.shiftFactor = shiftFactor
        self.sampleSize = sampleSize
    }

    /// Number of resolution levels.
    public var levels: Int { blockOutChannels.count }

    /// How many times smaller the latent is than the image on each side: 2^(levels − 1).
    public var downsamplingFactor: Int { 1 << (levels - 1) }

    /// Checks the structure: positive sizes, widths that split into the norm groups.
    /// - Throws: `PriorConfigError` naming `source` and the field.
    public func validate(source: String) throws {
        func fail(_ key: String, _ problem: String, _ fix: String) -> PriorConfigError {
            PriorConfigError(source: source, key: key, problem: problem, fix: fix)
        }
        guard levels > 0 else { throw fail("block_out_channels", "is empty", "give one width per resolution level") }
        for (key, value) in [("in_channels", inChannels), ("out_channels", outChannels), ("latent_channels", latentChannels),
                             ("layers_per_block", layersPerBlock), ("norm_num_groups", normGroups)] where value <= 0 {
            throw fail(key, "is \(value)", "use a positive value")
        }
        for width in blockOutChannels where width <= 0 || width % normGroups != 0 {
            throw fail("block_out_channels", "\(width) does not split into \(normGroups) norm groups", "use widths divisible by norm_num_groups")
        }
        guard scalingFactor.isFinite, scalingFactor != 0 else {
            throw fail("scaling_factor", "is \(scalingFactor)", "use the factor the VAE was published with (0.18215 for Stable Diffusion 1.5)")
        }
        guard shiftFactor.isFinite else { throw fail("shift_factor", "is \(shiftFactor)", "use a finite shift or null") }
    }
}

// MARK: - Parsing

extension AutoencoderKLConfig {
    /// Parses `vae/config.json` bytes; `source` names the file in errors.
    public init(json data: Data, source: String) throws {
        let json = try DiffusersConfigObject(json: data, source: source, className: "AutoencoderKL", model: "VAE")
        let fail = json.fail
        try json.checkKeys(read: ["in_channels", "out_channels", "latent_channels", "block_out_channels", "down_block_types",
                                  "up_block_types", "layers_per_block", "norm_num_groups", "scaling_factor", "shift_factor", "sample_size"],
                           ignored: Self.ignoredKeys, required: Self.requiredValues, className: "AutoencoderKL")
        let blockOutChannels = try json.ints("block_out_channels", fix: "list the channels of each level")
        // Absent block lists are diffusers' defaults: one encoder/decoder block per level.
        for (key, block) in [("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")] {
            switch json[key] {
            case nil: continue
            case .array(let items)?:
                guard items.count == blockOutChannels.count else {
                    throw fail(key, "has \(items.count) entries for \(blockOutChannels.count) block_out_channels", "give one \(block) per level")
                }
                for item in items where item.text != block {
                    throw fail(key, "holds \(item.text); Kiln supports only \(block)", "use a VAE built from \(block)s (Stable Diffusion's)")
                }
            case let v?: throw fail(key, "is \(v.text)", "list one \(block) per level")
            }
        }
        var sampleSize: Int?
        switch json["sample_size"] {
        case nil, .null?: break
        case .int(let v)? where v > 0: sampleSize = v
        case let v?: throw fail("sample_size", "is \(v.text)", "give a positive image size")
        }
        let config = AutoencoderKLConfig(
            inChannels: try json.int("in_channels", default: 3), outChannels: try json.int("out_channels", default: 3),
            latentChannels: try json.int("latent_channels", default: 4), blockOutChannels: blockOutChannels,
            layersPerBlock: try json.int("layers_per_block", default: 1), normGroups: try json.int("norm_num_groups", default: 32),
            scalingFactor: Float(try json.number("scaling_factor", default: 0.18215)),
            shiftFactor: Float(try json.number("shift_factor", default: 0)), sampleSize: sampleSize)
        try config.validate(source: source)
        self = config
    }
}
