import Foundation
import KilnCore
import KilnDistill
import KilnNN
import KilnPrior
import KilnRender

/// `kiln-bench sd --folder DIR --measure unet|vae|sds [--threads N] [--runs N]`: one measurement
/// at Stable Diffusion scale on a pipeline folder written by `tools/bench_sd_torch.py` (SD 1.5's
/// architecture, random float16 weights, kept in float16 in memory), with that script's inputs
/// (`DIR/io.safetensors`) and PyTorch's outputs (`DIR/torch-MEASURE.safetensors`) to check against.
/// Prints one JSON object: best ms of `--runs` after a warm-up, the process's peak RSS in GiB (each
/// measurement runs in a fresh process, so the peak is its own), and the largest relative error
/// against PyTorch. The script runs both sides and prints the table.
///
/// - unet: the UNet forward at 64² latents, batch 2 (one classifier-free-guided step).
/// - vae: the VAE encoder forward and backward (∂latent/∂image) at 512².
/// - sds: one latent score-distillation step as `kiln generate --prior DIR` takes it, for one
///   view: render 512² splats → VAE encode → noise → UNet with guidance → SDS gradient → back
///   through the encoder and the rasterizer. The rasterizer's share is timed apart.
func benchSD(arguments: [String]) {
    func value(_ flag: String) -> String? { optionValue(flag, in: arguments) }
    guard let folderPath = value("--folder"), let measure = value("--measure") else {
        print("usage: kiln-bench sd --folder DIR --measure unet|vae|sds [--threads N] [--runs N]")
        exit(2)
    }
    let folder = URL(fileURLWithPath: folderPath)
    let threads = Int(value("--threads") ?? "2") ?? 2
    let runs = Int(value("--runs") ?? "2") ?? 2
    BLAS.setThreadCount(threads)
    Memory.retainFreedMemory()
    do {
        let io = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("io.safetensors"))
        let expected = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("torch-\(measure).safetensors"))
        func tensor(_ file: SafeTensorsFile, _ name: String) throws -> Tensor {
            let (shape, values) = try file.tensor(name)
            return Tensor(shape: shape, storage: values)
        }
        func relativeError(_ actual: Tensor, _ name: String) throws -> Double {
            let reference = try tensor(expected, name)
            precondition(reference.shape == actual.shape, "\(name): Kiln \(actual.shape), PyTorch \(reference.shape)")
            let scale = reference.storage.map(abs).max() ?? 1
            return Double(zip(actual.storage, reference.storage).map { abs($0 - $1) }.max() ?? 0) / Double(max(scale, 1e-30))
        }
        var result: [String: Any] = ["measure": measure, "threads": threads, "runs": runs, "blas": BLAS.configuration]
        let loadStart = DispatchTime.now().uptimeNanoseconds
        switch measure {
        case "unet":
            let unet = try UNet2DConditionModel(folder: folder.appendingPathComponent("unet"))
            result["load_s"] = seconds(since: loadStart)
            let sample = try tensor(io, "unet.sample"), context = try tensor(io, "unet.encoder_hidden_states")
            let t = try tensor(io, "unet.timestep").storage
            var output = Tensor.zeros([1])
            result["ms"] = bestMilliseconds(runs: runs) { output = unet.forward(sample, timesteps: t, encoderHiddenStates: context) }
            result["error"] = try relativeError(output, "output")
            result["parameters"] = unet.parameterCount
        case "vae":
            let vae = try AutoencoderKL(folder: folder.appendingPathComponent("vae"))
            vae.setRequiresGradient(false)
            result["load_s"] = seconds(since: loadStart)
            let image = try tensor(io, "vae.image"), meanGradient = try tensor(io, "vae.mean_gradient")
            var mean = Tensor.zeros([1]), dImage = Tensor.zeros([1])
            result["ms"] = bestMilliseconds(runs: runs) {
                let (posterior, saved) = vae.encodeForTraining(image)
                mean = posterior.mean
                dImage = vae.encodeBackward(saved, meanGradient: meanGradient)
            }
            result["error"] = max(try relativeError(mean, "mean"), try relativeError(dImage, "image_gradient"))
        case "sds":
            let pipeline = try PriorPipeline(folder: folder)
            let prior = try LatentDiffusionPrior(pipeline: pipeline, prompt: "a red snowman")
            result["load_s"] = seconds(since: loadStart)
            let size = prior.imageSize
            let (splats, camera) = benchScene(count: 20_000, size: size, seed: 1)
            let sds = SDSSettings()
            let view = ViewConditioning(azimuthDegrees: 30, elevationDegrees: 20)
            var renderMs = 0.0
            result["ms"] = bestMilliseconds(runs: runs) {
                var rng = RNG(seed: 7)
                var frame: SplatFrame!
                renderMs = milliseconds { frame = SplatRasterizer.forward(splats, camera: camera, threads: threads) }
                let color = frame.images.color
                let x = prior.encode(renders: [color], size: size)
                let g = RewardGuidance.gradient(prior: prior, rewards: nil, images: x, views: [view], progress: 0.5, sds: sds,
                                                settings: RewardGuidanceSettings(), rng: &rng)
                let dColor = prior.encodeBackward(Tensor(shape: x.shape, storage: g.gradient), renders: [color], size: size)
                renderMs += milliseconds { _ = SplatRasterizer.backward(frame, splats, gradients: SplatImageGradients(color: dColor[0])) }
            }
            result["render_ms"] = renderMs
            result["error"] = Double.nan  // Kiln's own timestep and noise draws: nothing to compare with PyTorch
        default:
            print("kiln-bench sd: unknown measurement \(measure) (use unet, vae or sds)")
            exit(2)
        }
        result["rss_gib"] = peakResidentGiB()
        let data = try JSONSerialization.data(withJSONObject: result.mapValues { v -> Any in
            if let d = v as? Double, !d.isFinite { return NSNull() }
            return v
        }, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    } catch {
        print("kiln-bench sd: \(error)")
        exit(1)
    }
}

func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

/// The process's peak resident set (VmHWM in /proc/self/status), in GiB; 0 where unavailable.
func peakResidentGiB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kib = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
    return kib / (1024 * 1024)
}

/// `kiln-bench sd-layers [--threads N] [--runs N]`: the layers of the Stable Diffusion 1.5 UNet
/// at 64² latents, batch 2, each timed alone (best of `--runs`) with random weights; prints JSON
/// lines for `tools/bench_sd_torch.py --layers`, which times the same layers in PyTorch.
func benchSDLayers(arguments: [String]) {
    func value(_ flag: String) -> String? { optionValue(flag, in: arguments) }
    let threads = Int(value("--threads") ?? "2") ?? 2
    let runs = Int(value("--runs") ?? "3") ?? 3
    BLAS.setThreadCount(threads)
    Memory.retainFreedMemory()
    var rng = RNG(seed: 1)
    func report(_ name: String, _ body: () -> Void) {
        print("{\"layer\": \"\(name)\", \"ms\": \(bestMilliseconds(runs: runs, body))}")
    }
    // The up path's widest convolutions: a ResNet's first after the skip concatenation, and the
    // upsamplers'.
    for (c, o, size) in [(960, 320, 64), (640, 640, 64), (1920, 640, 32), (1280, 1280, 32), (2560, 1280, 16)] {
        let x = Tensor.uniform([2, c, size, size], in: -1...1, rng: &rng)
        let conv = Conv2d(inChannels: c, outChannels: o, kernelSize: 3, padding: 1, rng: &rng)
        report("conv3x3 \(c)→\(o) at \(size)²") { _ = conv.forward(x) }
    }
    for (c, size) in [(320, 64), (640, 32), (1280, 16)] {
        let x = Tensor.uniform([2, c, size, size], in: -1...1, rng: &rng)
        let conv = Conv2d(inChannels: c, outChannels: c, kernelSize: 3, padding: 1, rng: &rng)
        report("conv3x3 \(c) at \(size)²") { _ = conv.forward(x) }
        let tokens = Tensor.uniform([2, size * size, c], in: -1...1, rng: &rng)
        let context = Tensor.uniform([2, 77, 768], in: -1...1, rng: &rng)
        let selfAttention = Attention(queryDim: c, heads: 8, headDim: c / 8, rng: &rng)
        let crossAttention = Attention(queryDim: c, contextDim: 768, heads: 8, headDim: c / 8, rng: &rng)
        report("self-attention \(c) at \(size)²") { _ = selfAttention.forward(tokens) }
        report("cross-attention \(c) at \(size)²") { _ = crossAttention.forward(tokens, context: context) }
        let geglu = GEGLU(inFeatures: c, outFeatures: 4 * c, rng: &rng)
        let down = Linear(inFeatures: 4 * c, outFeatures: c, rng: &rng)
        report("feed-forward \(c) at \(size)²") { _ = down.forward(geglu.forward(tokens)) }
        let norm = GroupNorm(groups: 32, channels: c, eps: 1e-5)
        report("group norm \(c) at \(size)²") { _ = norm.forward(x) }
    }
}
