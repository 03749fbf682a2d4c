import Foundation
import KilnCore
import KilnNN

func benchScratch() {
    var rng = RNG(seed: 1)
    for (c, o, s, b) in [(64, 64, 64, 4), (128, 128, 32, 4), (192, 192, 16, 4), (384, 192, 16, 4), (64, 64, 64, 1)] {
        let conv = Conv2d(inChannels: c, outChannels: o, kernelSize: 3, padding: 1, rng: &rng)
        let x = Tensor.random([b, c, s, s], rng: &rng)
        let ms = median(runs: 7) { _ = conv.forward(x) }
        let flops = 2.0 * Double(o * c * 9 * s * s * b)
        print(String(format: "conv %d→%d %d² b%d: %.2f ms, %.0f GFLOP/s", c, o, s, b, ms, flops / ms / 1e6))
    }
    let lin = Linear(inFeatures: 128, outFeatures: 1024, rng: &rng)
    let t = Tensor.random([4, 1024, 128], rng: &rng)
    let ms = median(runs: 7) { _ = lin.forward(t) }
    print(String(format: "linear 128→1024 ×4096: %.2f ms", ms))
    let attn = Attention(queryDim: 128, heads: 8, headDim: 16, rng: &rng)
    let ams = median(runs: 7) { _ = attn.forward(t) }
    print(String(format: "self-attn 1024 tokens 8×16 b4: %.2f ms", ams))
}

func benchSoftmax() {
    var rng = RNG(seed: 1)
    let x = Tensor.random([64, 1024], rng: &rng, std: 3)
    let n = 200
    let ms = bestMilliseconds(runs: 7) { for _ in 0..<n { _ = Softmax().forward(x) } }
    print(String(format: "softmax 64×1024: %.3f ns/element", ms * 1e6 / Double(n * x.count)))
    let e = bestMilliseconds(runs: 7) { for _ in 0..<n { _ = x.map { $0 } } }
    print(String(format: "copy 64×1024: %.3f ns/element", e * 1e6 / Double(n * x.count)))
}
