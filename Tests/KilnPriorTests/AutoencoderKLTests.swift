import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

@Suite("AutoencoderKL")
struct AutoencoderKLTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/vae")

    /// A golden VAE and its goldens file.
    static func load(_ name: String) throws -> (AutoencoderKL, SafeTensorsFile) {
        let folder = fixtures.appendingPathComponent(name)
        return (try AutoencoderKL(folder: folder.appendingPathComponent("vae")),
                try SafeTensorsFile(contentsOf: folder.appendingPathComponent("goldens.safetensors")))
    }

    /// Checks shape and max |Δ| / max |expected| against a golden tensor.
    static func expectClose(_ actual: Tensor, _ goldens: SafeTensorsFile, _ name: String, tolerance: Float = 1e-4) throws {
        let (shape, expected) = try goldens.tensor(name)
        #expect(actual.shape == shape, "\(name): shape \(actual.shape), diffusers \(shape)")
        let error = UNetTests.relativeError(actual, expected)
        #expect(error <= tolerance, "\(name): max relative error \(error)")
    }

    @Test("encode and decode match diffusers on the golden image (tools/make_vae_goldens.py)")
    func parity() throws {
        let (vae, goldens) = try Self.load("tiny")
        #expect(vae.config.blockOutChannels == [16, 32] && vae.config.shiftFactor == 0.1159 && vae.config.sampleSize == 32)
        let posterior = vae.encode(try goldens.tensorValue("image"))
        try Self.expectClose(posterior.mean, goldens, "posterior.mean")
        try Self.expectClose(posterior.logvar, goldens, "posterior.logvar")
        try Self.expectClose(vae.latents(of: posterior), goldens, "latents")
        try Self.expectClose(vae.decode(try goldens.tensorValue("latents")), goldens, "decoded")
    }

    @Test("the encoder's backward matches PyTorch autograd on the golden image")
    func encoderBackwardParity() throws {
        let (vae, goldens) = try Self.load("tiny")
        let image = try goldens.tensorValue("image")
        let (posterior, saved) = vae.encodeForTraining(image)
        // The training forward gives exactly the inference forward's values.
        let inference = vae.encode(image)
        #expect(posterior.mean == inference.mean && posterior.logvar == inference.logvar)
        let gradient = vae.encodeBackward(saved, meanGradient: try goldens.tensorValue("grad.mean_weights"))
        try Self.expectClose(gradient, goldens, "grad.image")
    }

    @Test("the decoder's backward matches PyTorch autograd, and sampling the posterior matches diffusers' sample()")
    func decoderBackwardAndSampleParity() throws {
        let (vae, goldens) = try Self.load("tiny")
        let latents = try goldens.tensorValue("latents")
        let (image, saved) = vae.decodeForTraining(latents)
        #expect(image == vae.decode(latents))
        let gradient = vae.decodeBackward(saved, imageGradient: try goldens.tensorValue("grad.decoded_weights"))
        try Self.expectClose(gradient, goldens, "grad.latents")
        let posterior = vae.encode(try goldens.tensorValue("image"))
        try Self.expectClose(posterior.sample(noise: try goldens.tensorValue("sample.noise")), goldens, "sample.output")
    }

    /// A VAE small enough for finite differences: three levels, two ResNets a block, 3 latent channels.
    static func tinyConfig() -> AutoencoderKLConfig {
        AutoencoderKLConfig(inChannels: 3, outChannels: 2, latentChannels: 3, blockOutChannels: [4, 8, 8], layersPerBlock: 2,
                            normGroups: 2, scalingFactor: 0.5, shiftFactor: 0.25)
    }

    /// Directional derivative along a random direction against the analytic dot product: central
    /// differences at 2ε and ε, Richardson-extrapolated, as in the UNet's test (float32 forward).
    static func checkDirectional(_ name: String, analytic: Tensor, shape: [Int], perturbedLoss: (Tensor, Float) -> Double) {
        var r = RNG(seed: UInt64(name.utf8.reduce(7) { $0 &* 31 &+ Int($1) }.magnitude))
        let direction = Tensor.random(shape, rng: &r)
        func central(_ e: Float) -> Double { (perturbedLoss(direction, e) - perturbedLoss(direction, -e)) / (2 * Double(e)) }
        let numeric = (4 * central(4e-3) - central(8e-3)) / 3
        let exact = zip(analytic.storage, direction.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let error = abs(numeric - exact) / max(abs(exact), 0.2)
        #expect(error < 1e-2, "\(name): analytic \(exact), finite differences \(numeric)")
    }

    static func dot(_ a: Tensor, _ b: Tensor) -> Double { zip(a.storage, b.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }

    @Test("the encoder's backward matches central finite differences (image, mean and logvar, parameters)")
    func encoderFiniteDifferences() throws {
        var rng = RNG(seed: 5)
        let vae = AutoencoderKL(Self.tinyConfig(), rng: &rng)
        let image = Tensor.uniform([2, 3, 8, 12], in: -1...1, rng: &rng)
        let wMean = Tensor.random([2, 3, 2, 3], rng: &rng), wLogvar = Tensor.random([2, 3, 2, 3], rng: &rng)
        func loss(_ x: Tensor) -> Double {
            let p = vae.encode(x)
            return Self.dot(p.mean, wMean) + Self.dot(p.logvar, wLogvar)
        }
        vae.zeroGradients()
        let (posterior, saved) = vae.encodeForTraining(image)
        #expect(posterior.mean.shape == [2, 3, 2, 3])
        let dImage = vae.encodeBackward(saved, meanGradient: wMean, logvarGradient: wLogvar)
        Self.checkDirectional("image", analytic: dImage, shape: image.shape) { d, e in loss(image + e * d) }
        let picks = vae.namedParameters.filter { n in
            ["encoder.conv_in.weight", "encoder.down_blocks.0.downsamplers.0.conv.weight", "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
             "encoder.mid_block.attentions.0.to_q.weight", "encoder.mid_block.attentions.0.group_norm.bias",
             "encoder.conv_norm_out.weight", "quant_conv.bias"].contains(n.name)
        }
        #expect(picks.count == 7)
        for (name, p) in picks {
            let original = p.value
            Self.checkDirectional(name, analytic: p.gradient, shape: p.shape) { d, e in
                p.load(original + e * d)
                defer { p.load(original) }
                return loss(image)
            }
        }
        // The decoder's parameters get no gradient from the encoder's backward.
        #expect(vae.parameter(named: "decoder.conv_in.weight")!.gradient.maxAbsolute() == 0)
    }

    @Test("the decoder's backward matches central finite differences (latents, parameters)")
    func decoderFiniteDifferences() throws {
        var rng = RNG(seed: 6)
        let vae = AutoencoderKL(Self.tinyConfig(), rng: &rng)
        let latents = Tensor.random([2, 3, 2, 3], rng: &rng)
        let w = Tensor.random([2, 2, 8, 12], rng: &rng)
        vae.zeroGradients()
        let (image, saved) = vae.decodeForTraining(latents)
        #expect(image == vae.decode(latents))
        let dLatents = vae.decodeBackward(saved, imageGradient: w)
        Self.checkDirectional("latents", analytic: dLatents, shape: latents.shape) { d, e in Self.dot(vae.decode(latents + e * d), w) }
        let picks = vae.namedParameters.filter { n in
            ["post_quant_conv.weight", "decoder.conv_in.bias", "decoder.mid_block.attentions.0.to_v.weight",
             "decoder.up_blocks.0.upsamplers.0.conv.weight", "decoder.up_blocks.2.resnets.2.norm1.weight", "decoder.conv_out.weight"].contains(n.name)
        }
        #expect(picks.count == 6)
        for (name, p) in picks {
            let original = p.value
            Self.checkDirectional(name, analytic: p.gradient, shape: p.shape) { d, e in
                p.load(original + e * d)
                defer { p.load(original) }
                return Self.dot(vae.decode(latents), w)
            }
        }
    }

    @Test("the logvar clamp passes no gradient where it is active, and sampling uses σ = exp(logvar / 2)")
    func clampAndSample() {
        var rng = RNG(seed: 8)
        let vae = AutoencoderKL(Self.tinyConfig(), rng: &rng)
        // Push quant_conv's logvar half far outside [−30, 20]: the clamp holds it at 20 and blocks the gradient.
        let c = vae.config.latentChannels
        vae.quantConv.bias!.load(Tensor(shape: [2 * c], storage: Array(repeating: 0, count: c) + Array(repeating: 100, count: c)))
        let image = Tensor.uniform([1, 3, 8, 8], in: -1...1, rng: &rng)
        let (posterior, saved) = vae.encodeForTraining(image)
        #expect(posterior.logvar.storage.allSatisfy { $0 == 20 })
        let onlyLogvar = vae.encodeBackward(saved, meanGradient: Tensor.zeros(like: posterior.mean),
                                            logvarGradient: Tensor(repeating: 1, shape: posterior.mean.shape))
        #expect(onlyLogvar.maxAbsolute() == 0)
        let noise = Tensor.random(posterior.mean.shape, rng: &rng)
        let sample = posterior.sample(noise: noise)
        for i in [0, 5, 11] { #expect(abs(sample.storage[i] - (posterior.mean.storage[i] + Float(exp(10.0)) * noise.storage[i])) <= 1e-3 * Float(exp(10.0))) }
    }

    @Test("configs Kiln would build differently from diffusers are refused, naming the field")
    func configErrors() throws {
        let url = Self.fixtures.appendingPathComponent("tiny/vae/config.json")
        let base = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        func parse(_ edit: (inout [String: Any]) -> Void) throws -> AutoencoderKLConfig {
            var object = base
            edit(&object)
            return try AutoencoderKLConfig(json: JSONSerialization.data(withJSONObject: object), source: "vae.json")
        }
        let tiny = try parse { _ in }
        #expect(tiny == AutoencoderKLConfig(inChannels: 3, outChannels: 3, latentChannels: 4, blockOutChannels: [16, 32], layersPerBlock: 1,
                                            normGroups: 8, scalingFactor: 0.18215, shiftFactor: 0.1159, sampleSize: 32))
        let noShift = try parse { $0["shift_factor"] = NSNull() }
        #expect(noShift.shiftFactor == 0)
        let refused: [(String, (inout [String: Any]) -> Void)] = [
            ("down_block_types", { $0["down_block_types"] = ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"] }),
            ("down_block_types", { $0["down_block_types"] = ["DownEncoderBlock2D"] }),
            ("up_block_types", { $0["up_block_types"] = ["UpDecoderBlock2D", "AttnUpDecoderBlock2D"] }),
            ("use_quant_conv", { $0["use_quant_conv"] = false }),
            ("use_post_quant_conv", { $0["use_post_quant_conv"] = false }),
            ("mid_block_add_attention", { $0["mid_block_add_attention"] = false }),
            ("latents_mean", { $0["latents_mean"] = [0.1, 0.2, 0.3, 0.4] }),
            ("act_fn", { $0["act_fn"] = "gelu" }),
            ("block_out_channels", { $0["block_out_channels"] = [16, 30] }),
            ("scaling_factor", { $0["scaling_factor"] = 0 }),
            ("norm_num_groups", { $0["norm_num_groups"] = "eight" }),
            ("brand_new_option", { $0["brand_new_option"] = 1 }),
            ("_class_name", { $0["_class_name"] = "AutoencoderTiny" }),
        ]
        for (key, edit) in refused {
            do {
                _ = try parse(edit)
                Issue.record("\(key) should be refused")
            } catch let error as PriorConfigError {
                #expect(error.key == key && error.description.contains("vae.json"), "\(key): \(error)")
            }
        }
        #expect(throws: PriorConfigError.self) { try AutoencoderKLConfig(json: Data("[]".utf8), source: "vae.json") }
    }

    @Test("Stable Diffusion 1.5's and SDXL's published vae/config.json parse to their structure")
    func publishedConfigs() throws {
        let blocks = { (name: String) in "[" + Array(repeating: "\"\(name)\"", count: 4).joined(separator: ", ") + "]" }
        let sd15 = """
            {"_class_name": "AutoencoderKL", "_diffusers_version": "0.6.0", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
             "down_block_types": \(blocks("DownEncoderBlock2D")), "in_channels": 3, "latent_channels": 4, "layers_per_block": 2,
             "norm_num_groups": 32, "out_channels": 3, "sample_size": 512, "up_block_types": \(blocks("UpDecoderBlock2D"))}
            """
        let c15 = try AutoencoderKLConfig(json: Data(sd15.utf8), source: "sd15.json")
        #expect(c15 == AutoencoderKLConfig(sampleSize: 512) && c15.downsamplingFactor == 8)
        let sdxl = """
            {"_class_name": "AutoencoderKL", "_diffusers_version": "0.20.0.dev0", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
             "down_block_types": \(blocks("DownEncoderBlock2D")), "force_upcast": true, "in_channels": 3, "latent_channels": 4,
             "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 1024, "scaling_factor": 0.13025,
             "up_block_types": \(blocks("UpDecoderBlock2D"))}
            """
        let cxl = try AutoencoderKLConfig(json: Data(sdxl.utf8), source: "sdxl.json")
        #expect(cxl == AutoencoderKLConfig(scalingFactor: 0.13025, sampleSize: 1024))
    }

    @Test("a weights file that does not fit the config is an error naming the tensor")
    func weightErrors() throws {
        var rng = RNG(seed: 3)
        let vae = AutoencoderKL(Self.tinyConfig(), rng: &rng)
        func file(_ edit: (String, [Int]) -> (String, [Int])?) throws -> SafeTensorsFile {
            var writer = SafeTensorsWriter()
            for (name, p) in vae.namedParameters {
                guard let (n, shape) = edit(name, p.shape) else { continue }
                try writer.add(n, shape: shape, values: [Float](repeating: 0.5, count: shape.reduce(1, *)))
            }
            return try SafeTensorsFile(bytes: writer.encoded(), source: "w.safetensors")
        }
        let missing = try file { $0 == "encoder.mid_block.attentions.0.to_k.bias" ? nil : ($0, $1) }
        #expect { try vae.load(from: missing) } throws: { "\($0)".contains("encoder.mid_block.attentions.0.to_k.bias") }
        let misshaped = try file { $0 == "quant_conv.weight" ? ($0, [6, 6, 3, 3]) : ($0, $1) }
        #expect { try vae.load(from: misshaped) } throws: { "\($0)".contains("quant_conv.weight") }
        let extra = try file { $0 == "post_quant_conv.bias" ? ("post_quant_conv.extra", $1) : ($0, $1) }
        #expect { try vae.load(from: extra) } throws: { "\($0)".contains("post_quant_conv") }
        let fine = try file { ($0, $1) }
        try vae.load(from: fine)
        #expect(vae.parameter(named: "decoder.conv_out.weight")!.value.storage.allSatisfy { $0 == 0.5 })
    }
}
