import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// One convolution of a UNet as it runs in training: channels, kernel, stride, the input's side,
/// and how many layers of the network have that shape.
struct ConvShape: Hashable {
    var inChannels: Int, outChannels: Int, kernel: Int, stride: Int, size: Int
    var padding: Int { kernel / 2 }
}

/// Every convolution shape of the UNet of `config` with its input side, read from the parameter
/// names diffusers gives them: `conv_in`/`conv_out` at the sample size, `down_blocks.i` at
/// size/2^i (its downsampler's input too), `mid_block` at the coarsest level, `up_blocks.i` at
/// the level it works on (size/2^(levels − 1 − i)), its upsampler's convolution at twice that.
func unetConvolutionShapes(_ config: UNetConfig) -> [ConvShape: Int] {
    var rng = RNG(seed: 0)
    let unet = UNet2DConditionModel(config, rng: &rng)
    let size = config.sampleHeight ?? 32, levels = config.blockOutChannels.count
    var shapes: [ConvShape: Int] = [:]
    for (name, p) in unet.namedParameters where name.hasSuffix(".weight") && p.shape.count == 4 {
        let parts = name.split(separator: ".")
        var side = size
        if parts.first == "down_blocks", let i = Int(parts[1]) { side = size >> i }
        if parts.first == "mid_block" { side = size >> (levels - 1) }
        if parts.first == "up_blocks", let i = Int(parts[1]) { side = (size >> (levels - 1 - i)) * (name.contains("upsamplers") ? 2 : 1) }
        let stride = name.contains("downsamplers") ? 2 : 1
        shapes[ConvShape(inChannels: p.shape[1], outChannels: p.shape[0], kernel: p.shape[2], stride: stride, size: side), default: 0] += 1
    }
    return shapes
}

/// `kiln-bench conv-shapes --prior-config FILE [--batch 32] [--threads 2] [--runs 3] [--json]`:
/// each convolution shape of the prior's UNet (`unetConvolutionShapes`) at the training batch,
/// forward and backward (weight, bias and input gradients), best of `--runs`; with the number of
/// layers of that shape, so the rows weighted by it add up to the UNet's convolution time.
/// `tools/bench_train_torch.py --conv-shapes` prints PyTorch's times beside them.
func benchConvShapes(arguments: [String]) {
    func value(_ flag: String) -> String? { optionValue(flag, in: arguments) }
    guard let path = value("--prior-config") else {
        print("usage: kiln-bench conv-shapes --prior-config FILE [--batch 32] [--threads 2] [--runs 3] [--json]")
        exit(2)
    }
    let batch = Int(value("--batch") ?? "32") ?? 32, threads = Int(value("--threads") ?? "2") ?? 2, runs = Int(value("--runs") ?? "3") ?? 3
    BLAS.setThreadCount(threads)
    Memory.retainFreedMemory()
    do {
        let config = try PriorTrainingConfig(contentsOf: URL(fileURLWithPath: path))
        var rng = RNG(seed: 1)
        var rows: [[String: Any]] = []
        for (shape, count) in unetConvolutionShapes(config.unet).sorted(by: { ($0.key.size, $0.key.inChannels, $0.key.outChannels) > ($1.key.size, $1.key.inChannels, $1.key.outChannels) }) {
            let conv = Conv2d(inChannels: shape.inChannels, outChannels: shape.outChannels, kernelSize: shape.kernel, stride: shape.stride, padding: shape.padding, rng: &rng)
            let x = Tensor.uniform([batch, shape.inChannels, shape.size, shape.size], in: -1...1, rng: &rng)
            let y = conv.forward(x)
            let dy = Tensor.uniform(y.shape, in: -1...1, rng: &rng)
            let forward = bestMilliseconds(runs: runs) { _ = conv.forward(x) }
            let backward = bestMilliseconds(runs: runs) { _ = conv.backward(input: x, outputGradient: dy) }
            rows.append(["in": shape.inChannels, "out": shape.outChannels, "kernel": shape.kernel, "stride": shape.stride, "size": shape.size,
                         "layers": count, "forward_ms": forward, "backward_ms": backward])
        }
        if arguments.contains("--json") {
            print(String(decoding: try JSONSerialization.data(withJSONObject: ["batch": batch, "threads": threads, "rows": rows], options: [.sortedKeys]), as: UTF8.self))
        } else {
            print("| in → out | kernel/stride | input | layers | forward ms | backward ms |")
            print("| --- | --- | ---: | ---: | ---: | ---: |")
            for r in rows {
                print("| \(r["in"]!) → \(r["out"]!) | \(r["kernel"]!)/\(r["stride"]!) | \(r["size"]!)² | \(r["layers"]!) | \(String(format: "%.1f", r["forward_ms"] as! Double)) | \(String(format: "%.1f", r["backward_ms"] as! Double)) |")
            }
        }
    } catch {
        FileHandle.standardError.write(Data("kiln-bench conv-shapes: \(error)\n".utf8))
        exit(1)
    }
}
