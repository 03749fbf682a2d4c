import Foundation
import KilnCore
import KilnNN

extension AutoencoderKLConfig {
    /// The VAE's `config.json` as diffusers reads it: every key that shapes the network spelled
    /// out (diffusers' defaults differ from a short config's meaning: one block, 32 groups), with
    /// `scalingFactor`.
    func diffusersConfig(scalingFactor: Float) -> ConfigValue {
        let vae = self
        var json: [String: ConfigValue] = [
            "_class_name": .string("AutoencoderKL"), "in_channels": .int(vae.inChannels), "out_channels": .int(vae.outChannels),
            "latent_channels": .int(vae.latentChannels), "block_out_channels": .array(vae.blockOutChannels.map { .int($0) }),
            "down_block_types": .array(vae.blockOutChannels.map { _ in .string("DownEncoderBlock2D") }),
            "up_block_types": .array(vae.blockOutChannels.map { _ in .string("UpDecoderBlock2D") }),
            "layers_per_block": .int(vae.layersPerBlock), "norm_num_groups": .int(vae.normGroups), "act_fn": .string("silu"),
            "scaling_factor": .double(Double(scalingFactor)), "shift_factor": vae.shiftFactor == 0 ? .null : .double(Double(vae.shiftFactor)), "force_upcast": .bool(false),
            "use_quant_conv": .bool(true), "use_post_quant_conv": .bool(true), "mid_block_add_attention": .bool(true),
        ]
        if let s = vae.sampleSize { json["sample_size"] = .int(s) }
        return .object(json)
    }
}

extension AutoencoderKL {
    /// Writes the model as a diffusers `vae/` folder: `config.json` (`diffusersConfig`, with
    /// `scalingFactor`) and `diffusion_pytorch_model.safetensors` (F32), each atomically. What
    /// `kiln train-vae` exports, and the `vae/` of a latent prior `kiln train-prior` writes.
    func writeDiffusersFolder(to folder: URL, scalingFactor: Float) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var weights = SafeTensorsWriter(metadata: ["format": "pt"])
        for (name, p) in namedParameters { try weights.add(name, shape: p.shape, values: p.value.storage) }
        try weights.write(to: folder.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(config.diffusersConfig(scalingFactor: scalingFactor)), to: folder.appendingPathComponent("config.json"))
    }
}
