import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

/// Stable-Diffusion-layout folders (VAE included) against diffusers' `StableDiffusionPipeline`, and
/// the latent prior built on them (goldens: tools/make_sd_pipeline_goldens.py).
@Suite("Latent diffusion: Stable Diffusion folders")
struct LatentPipelineTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/sd")
    static let sd15 = fixtures.appendingPathComponent("sd15-tiny")
    static let sd21 = fixtures.appendingPathComponent("sd21-tiny")

    /// Kiln's images from the folder's latents, with the script's SAMPLE settings, against diffusers'.
    func checkParity(_ folder: URL) throws {
        let pipeline = try PriorPipeline(folder: folder)
        #expect(pipeline.vae != nil && pipeline.sampleSize == (8, 8) && pipeline.imageSize == (64, 64) && !pipeline.hasViewConditioning)
        let latents = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("latents.safetensors")).tensor("latents")
        let goldens = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("goldens.safetensors"))
        let request = SampleRequest(prompt: "a red snowman", negativePrompt: "", count: 2, steps: 10, guidanceScale: 7.5)
        let x = try pipeline.sample(request, initialNoise: Tensor(shape: latents.shape, storage: latents.values))
        let (_, finalLatents) = try goldens.tensor("final_latents")
        let latentScale = finalLatents.map(abs).max()!
        let latentError = zip(x.storage, finalLatents).map { abs($0 - $1) }.max()! / latentScale
        #expect(latentError < 1e-3, "final latents: max relative error \(latentError)")
        // diffusers' images are [N, H, W, 3] in [0, 1]; the bar is 2/255.
        let images = PriorPipeline.images(pipeline.pixels(x))
        let (shape, expected) = try goldens.tensor("images")
        #expect(shape == [2, 64, 64, 3])
        var worst: Float = 0
        for (n, image) in images.enumerated() {
            for i in 0..<(64 * 64 * 3) { worst = max(worst, abs(image.pixels[i] - expected[n * 64 * 64 * 3 + i])) }
        }
        #expect(worst * 255 < 2, "max image difference \(worst * 255)/255")
    }

    @Test("an SD 1.5-like folder (PNDM config, SD 1.5 tokenizer layout) draws diffusers' images from the same latents")
    func sd15Parity() throws { try checkParity(Self.sd15) }

    @Test("an SD 2.1-like folder (v-prediction, linear projections, fp16 variant files, transformers-5 tokenizer) draws diffusers' images")
    func sd21Parity() throws {
        let pipeline = try PriorPipeline(folder: Self.sd21)
        #expect(pipeline.schedulerConfig.predictionType == .vPrediction && pipeline.unet.config.useLinearProjection)
        try checkParity(Self.sd21)
    }

    @Test("the text states of both folders match transformers'")
    func textStates() throws {
        for folder in [Self.sd15, Self.sd21] {
            let pipeline = try PriorPipeline(folder: folder)
            let goldens = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("goldens.safetensors"))
            let (_, ids) = try goldens.tensor("text.input_ids")
            #expect(pipeline.tokenizer.encode("a red snowman").inputIDs == ids[0..<77].map { Int($0) })
            let states = pipeline.encode(["a red snowman", ""])
            let (_, conditional) = try goldens.tensor("text.conditional")
            let error = zip(states.storage.prefix(conditional.count), conditional).map { abs($0 - $1) }.max()!
            #expect(error < 1e-4, "\(folder.lastPathComponent): max text-state error \(error)")
        }
    }

    @Test("model_index.json: unused components pass, other pipelines and components fail by name")
    func modelIndex() throws {
        let index = try ModelIndex(folder: Self.sd15)
        #expect(index.className == "StableDiffusionPipeline" && index.hasVAE && index.components["safety_checker"] == nil)
        let checker = #"{"_class_name": "StableDiffusionPipeline", "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"], "vae": ["diffusers", "AutoencoderKL"]}"#
        #expect(try ModelIndex(json: Data(checker.utf8), source: "m.json").hasVAE)
        #expect { try ModelIndex(json: Data(#"{"vae": ["diffusers", "AutoencoderTiny"]}"#.utf8), source: "m.json") } throws: {
            "\($0)".contains("Kiln runs AutoencoderKL")
        }
        #expect { try ModelIndex(json: Data(#"{"_class_name": "IFPipeline"}"#.utf8), source: "m.json") } throws: { "\($0)".contains("IFPipeline") }
        for component in [#""UNet2DConditionModel""#, "true", "3", "0.5"] {
            #expect { try ModelIndex(json: Data(#"{"unet": \#(component)}"#.utf8), source: "m.json") } throws: {
                "\($0)".contains("not a [library, class] pair")
            }
        }
    }

    @Test("initial noise of the wrong shape, size or values is refused by name")
    func badInitialNoise() throws {
        let pipeline = try PriorPipeline(folder: Self.sd15)
        let request = SampleRequest(prompt: "a red snowman", count: 1, steps: 2)
        #expect { try pipeline.sample(request, initialNoise: Tensor.zeros([1, 3, 8, 8])) } throws: { "\($0)".contains("not [1, 4, h, w]") }
        #expect { try pipeline.sample(request, initialNoise: Tensor.zeros([1, 4, 6, 6])) } throws: { "\($0)".contains("divisible by 8") }
        #expect { try pipeline.sample(request, initialNoise: Tensor(shape: [1, 4, 8, 8], storage: [.nan] + Array(repeating: 0, count: 255))) } throws: {
            "\($0)".contains("NaN")
        }
        // A larger latent draws a larger image, as in diffusers (height, width = 8 × latents).
        let x = try pipeline.sample(request, initialNoise: Tensor.zeros([1, 4, 16, 8]))
        #expect(pipeline.pixels(x).shape == [1, 3, 128, 64])
    }

    @Test("views name their side: front, side, back, overhead (threestudio's thresholds)")
    func viewDirections() {
        func side(_ a: Float, _ e: Float = 15) -> ViewDirection { ViewDirection(ViewConditioning(azimuthDegrees: a, elevationDegrees: e)) }
        #expect(side(0) == .front && side(44) == .front && side(-44) == .front && side(316) == .front)
        #expect(side(90) == .side && side(270) == .side && side(-100) == .side)
        #expect(side(180) == .back && side(136) == .back && side(-170) == .back)
        #expect(side(0, 61) == .overhead)
        #expect(ViewDirection.back.prompt("a red mug") == "a red mug, back view")
    }

    @Test("the latent prior: encode/decode shapes, view prompts, ε from v-prediction, and VJPs against finite differences")
    func latentPrior() throws {
        let pipeline = try PriorPipeline(folder: Self.sd21)
        let prior = try LatentDiffusionPrior(pipeline: pipeline, prompt: "a red snowman")
        #expect(prior.imageSize == 64 && prior.denoiser.directional.count == 4)
        var rng = RNG(seed: 3)
        let size = 128  // rendered at twice the VAE's size, averaged down
        let renders = (0..<2).map { _ in (0..<(size * size * 3)).map { _ in rng.uniform(0.05...0.95) } }
        let x = prior.encode(renders: renders, size: size)
        #expect(x.shape == [2, 4, 8, 8] && x.isFinite)

        // ε̂ from a v-predicting UNet: with guidance 1 the guided prediction is the conditional one,
        // and it equals √ᾱ·v + √(1−ᾱ)·x_t by hand.
        let views = [ViewConditioning(azimuthDegrees: 0), ViewConditioning(azimuthDegrees: 180)]
        let noisy = Tensor.random(x.shape, rng: &rng)
        let t = 500
        let prediction = prior.predictNoise(noisy, timestep: t, views: views, guidanceScale: 1)
        let contexts = Tensor.concatenated([prior.denoiser.conditional(for: views[0]), prior.denoiser.conditional(for: views[1])], axis: 0)
        let v = pipeline.unet.forward(noisy, timesteps: [Float(t)], encoderHiddenStates: contexts)
        let (a, s) = (prior.schedule.sqrtAlphaCumprod(t), prior.schedule.sqrtOneMinusAlphaCumprod(t))
        let byHand = zip(v.storage, noisy.storage).map { a * $0 + s * $1 }
        #expect(zip(prediction.conditional.storage, byHand).map { abs($0 - $1) }.max()! < 1e-4)
        #expect(zip(prediction.guided.storage, prediction.conditional.storage).map { abs($0 - $1) }.max()! < 1e-5)
        // The front and back views see different prompts.
        #expect(prior.denoiser.conditional(for: views[0]) != prior.denoiser.conditional(for: views[1]))

        // encodeBackward: ⟨w, x(r + h·d)⟩ − ⟨w, x(r − h·d)⟩ ≈ 2h·⟨∂/∂r, d⟩ (float64 sums of float32 values).
        let w = Tensor.random(x.shape, rng: &rng)
        let dRenders = prior.encodeBackward(w, renders: renders, size: size)
        let direction = renders.map { r in r.map { _ in rng.uniform(-1...1) } }
        func objective(_ h: Float) -> Double {
            let moved = zip(renders, direction).map { r, d in zip(r, d).map { $0 + h * $1 } }
            return zip(prior.encode(renders: moved, size: size).storage, w.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let h: Float = 1e-2
        let numeric = (objective(h) - objective(-h)) / Double(2 * h)
        let analytic = zip(dRenders.joined(), direction.joined()).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(numeric - analytic) < 2e-2 * max(1, abs(numeric)), "encode VJP: numeric \(numeric), analytic \(analytic)")

        // decodeBackward, the same way, with a step small enough that few pixels cross the clip at ±1.
        let latents = Tensor.random(x.shape, rng: &rng).map { $0 * 0.5 }
        let images = prior.decode(latents)
        #expect(images.shape == [2, 3, 64, 64] && images.storage.allSatisfy { (0...1).contains($0) })
        let g = Tensor.random(images.shape, rng: &rng)
        let dLatents = prior.decodeBackward(g, x: latents)
        let dz = Tensor.random(latents.shape, rng: &rng)
        func decoded(_ h: Float) -> Double {
            zip(prior.decode(Tensor(shape: latents.shape, storage: zip(latents.storage, dz.storage).map { $0 + h * $1 })).storage, g.storage)
                .reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let hd: Float = 1e-3
        let numericDecode = (decoded(hd) - decoded(-hd)) / Double(2 * hd)
        let analyticDecode = zip(dLatents.storage, dz.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(numericDecode - analyticDecode) < 2e-2 * max(1, abs(numericDecode)), "decode VJP: numeric \(numericDecode), analytic \(analyticDecode)")
        // The VAE stays frozen: no gradient is left behind in its parameters.
        #expect(prior.vae.namedParameters.allSatisfy { $0.parameter.gradient.storage.allSatisfy { $0 == 0 } })
    }

    @Test("pooling display images to the reward models' size and its transpose")
    func pooling() {
        var rng = RNG(seed: 1)
        let images = Tensor.random([2, 3, 8, 8], rng: &rng)
        let pooled = PriorImage.pooled(images, to: 2)
        #expect(pooled.shape == [2, 3, 2, 2])
        let block = (0..<4).flatMap { y in (0..<4).map { x in images.storage[y * 8 + x] } }
        #expect(abs(pooled.storage[0] - block.reduce(0, +) / 16) < 1e-6)
        #expect(PriorImage.pooled(images, to: 8) == images)
        // ⟨pooled(x), g⟩ = ⟨x, pooledBackward(g)⟩.
        let g = Tensor.random(pooled.shape, rng: &rng)
        let back = PriorImage.pooledBackward(g, from: 8)
        let lhs = zip(pooled.storage, g.storage).reduce(0) { $0 + $1.0 * $1.1 }
        let rhs = zip(images.storage, back.storage).reduce(0) { $0 + $1.0 * $1.1 }
        #expect(abs(lhs - rhs) < 1e-4)
    }
}
