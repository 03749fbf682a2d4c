import Foundation
import KilnCore
import KilnNN

/// One matrix-product shape: C[m, n] = op(A)·op(B) with op(A) `[m, k]`, op(B) `[k, n]`.
struct MatmulShape {
    var name: String
    var m, n, k: Int
    var transposeA = false
    var transposeB = false
}

/// Square sizes, then the products a 64² UNet forward is made of.
let matmulShapes: [MatmulShape] = [
    MatmulShape(name: "square 64", m: 64, n: 64, k: 64),
    MatmulShape(name: "square 256", m: 256, n: 256, k: 256),
    MatmulShape(name: "square 1024", m: 1024, n: 1024, k: 1024),
    // 3×3 convolution, 64 channels at 64²: im2col [4096 pixels, 576] · weightᵀ [576, 64], and
    // Kiln's own orientation weight [64, 576] · col [576, 4096].
    MatmulShape(name: "conv3x3 64ch 64² (col·Wᵀ)", m: 4096, n: 64, k: 576),
    MatmulShape(name: "conv3x3 64ch 64² (W·col)", m: 64, n: 4096, k: 576),
    // Token projections: 1024 tokens (32²) × 320 channels.
    MatmulShape(name: "linear 1024×320→320", m: 1024, n: 320, k: 320, transposeB: true),
    // Self-attention at 32² (1024 tokens, head dim 64): scores q·kᵀ, then P·v.
    MatmulShape(name: "attn scores 1024² d64 (q·kᵀ)", m: 1024, n: 1024, k: 64, transposeB: true),
    MatmulShape(name: "attn P·v 1024² d64", m: 1024, n: 64, k: 1024),
    // Cross-attention on 77 text tokens from 64² queries.
    MatmulShape(name: "cross-attn scores 4096×77 d64", m: 4096, n: 77, k: 64, transposeB: true),
]

/// The fastest of `runs` timings after one warm-up, in ms. Peak rather than median: on a shared
/// two-core machine a second process halves a two-thread product now and then, and the best run is
/// the one nothing disturbed (numpy's side of `tools/bench_matmul_numpy.py` is timed the same way).
func bestMilliseconds(runs: Int, _ body: () -> Void) -> Double {
    body()
    return (0..<runs).map { _ in milliseconds(body) }.min()!
}

/// Times `Matmul.sgemm` on each shape with 1 and 2 OpenBLAS threads; prints a table, or JSON for
/// `tools/bench_matmul_numpy.py` with `json`.
func benchMatmul(json: Bool, quick: Bool) {
    var rows: [[String: Any]] = []
    if !json {
        print("Matmul.sgemm (\(BLAS.configuration.trimmingCharacters(in: .whitespaces))), GFLOP/s, best of several runs")
        print("| shape | m | n | k | 1 thread | 2 threads |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
    }
    for shape in quick ? Array(matmulShapes.prefix(2)) : matmulShapes {
        let (rowsA, colsA) = shape.transposeA ? (shape.k, shape.m) : (shape.m, shape.k)
        let (rowsB, colsB) = shape.transposeB ? (shape.n, shape.k) : (shape.k, shape.n)
        var rng = RNG(seed: 1)
        let a = rng.normals(count: rowsA * colsA), b = rng.normals(count: rowsB * colsB)
        var c = [Float](repeating: 0, count: shape.m * shape.n)
        let flops = 2.0 * Double(shape.m) * Double(shape.n) * Double(shape.k)
        // Enough repetitions for ~0.2 s at 100 GFLOP/s, at least 5.
        let runs = max(5, min(200, Int(2e10 / flops)))
        var results: [Double] = []
        for threads in [1, 2] {
            BLAS.setThreadCount(threads)
            let ms = bestMilliseconds(runs: runs) {
                Matmul.sgemm(transposeA: shape.transposeA, transposeB: shape.transposeB, m: shape.m, n: shape.n, k: shape.k,
                             a: a, lda: colsA, b: b, ldb: colsB, c: &c, ldc: shape.n)
            }
            let gflops = flops / (ms * 1e6)
            results.append(gflops)
            rows.append(["name": shape.name, "m": shape.m, "n": shape.n, "k": shape.k, "transpose_a": shape.transposeA,
                         "transpose_b": shape.transposeB, "threads": threads, "ms": ms, "gflops": gflops])
        }
        if !json {
            print(String(format: "| %@ | %d | %d | %d | %.1f | %.1f |", shape.name, shape.m, shape.n, shape.k, results[0], results[1]))
        }
    }
    BLAS.setThreadCount(Parallel.defaultThreadCount)
    if !json && !quick { benchLayers() }
    if json {
        let data = try! JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

// MARK: - Layers

/// Forward and backward times of KilnNN's layers at the sizes of a small 64² UNet (batch 2), on
/// the default thread count: how much the non-GEMM work adds around the matrix products.
func benchLayers() {
    Memory.retainFreedMemory()
    var rng = RNG(seed: 2)
    print("\nKilnNN layers, batch 2, \(Parallel.defaultThreadCount) threads, freed memory retained, ms (best of several runs)")
    print("| layer | input | forward | backward | GFLOP/s fwd |")
    print("| --- | --- | ---: | ---: | ---: |")
    func row(_ name: String, _ shape: [Int], flops: Double = 0, forward: () -> Void, backward: () -> Void) {
        let f = bestMilliseconds(runs: 7, forward), b = bestMilliseconds(runs: 7, backward)
        let rate = flops > 0 ? String(format: "%.0f", flops / (f * 1e6)) : ""
        print(String(format: "| %@ | %@ | %.2f | %.2f | %@ |", name, "\(shape)", f, b, rate))
    }
    for (cin, cout, k, stride, size) in [(64, 64, 3, 1, 64), (128, 128, 3, 1, 16), (128, 128, 3, 2, 32), (64, 128, 1, 1, 64)] {
        let conv = Conv2d(inChannels: cin, outChannels: cout, kernelSize: k, stride: stride, padding: k / 2, rng: &rng)
        let x = Tensor.random([2, cin, size, size], rng: &rng)
        let y = conv.forward(x)
        let dy = Tensor.random(y.shape, rng: &rng)
        let flops = 2.0 * Double(y.count) * Double(cin * k * k)
        row("Conv2d \(cin)→\(cout) \(k)×\(k) s\(stride)", x.shape, flops: flops,
            forward: { _ = conv.forward(x) }, backward: { _ = conv.backward(input: x, outputGradient: dy) })
    }
    let x = Tensor.random([2, 64, 64, 64], rng: &rng), dy = Tensor.random([2, 64, 64, 64], rng: &rng)
    let norm = GroupNorm(groups: 32, channels: 64)
    row("GroupNorm 32", x.shape, forward: { _ = norm.forward(x) }, backward: { _ = norm.backward(input: x, outputGradient: dy) })
    row("SiLU", x.shape, forward: { _ = SiLU().forward(x) }, backward: { _ = SiLU().backward(input: x, outputGradient: dy) })
    let up = UpsampleNearest2d()
    let small = Tensor.random([2, 64, 32, 32], rng: &rng)
    row("UpsampleNearest2d ×2", small.shape, forward: { _ = up.forward(small) }, backward: { _ = up.backward(outputGradient: dy) })
    let tokens = Tensor.random([2, 1024, 320], rng: &rng), dTokens = Tensor.random([2, 1024, 320], rng: &rng)
    let layerNorm = LayerNorm(features: 320)
    row("LayerNorm 320", tokens.shape, forward: { _ = layerNorm.forward(tokens) },
        backward: { _ = layerNorm.backward(input: tokens, outputGradient: dTokens) })
    let wide = Tensor.random([2, 1024, 1280], rng: &rng)
    row("GELU (erf)", wide.shape, forward: { _ = GELU().forward(wide) }, backward: { _ = GELU().backward(input: wide, outputGradient: wide) })
    let geglu = GEGLU(inFeatures: 320, outFeatures: 1280, rng: &rng)
    let (gy, gSaved) = geglu.forwardForTraining(tokens)
    row("GEGLU 320→1280", tokens.shape, flops: 2.0 * 2048 * 320 * 2560,
        forward: { _ = geglu.forward(tokens) }, backward: { _ = geglu.backward(gSaved, outputGradient: gy) })
    let context = Tensor.random([2, 77, 768], rng: &rng)
    for (name, ctx) in [("self-attention 5×64", nil), ("cross-attention 5×64, 77 tokens", context)] as [(String, Tensor?)] {
        let attention = Attention(queryDim: 320, contextDim: ctx?.shape[2], heads: 5, headDim: 64, rng: &rng)
        let (_, saved) = attention.forwardForTraining(tokens, context: ctx)
        let lk = Double(ctx?.shape[1] ?? 1024), dc = Double(ctx?.shape[2] ?? 320)
        let flops = 2.0 * 2048 * 320 * 320 * 2 + 2.0 * 2 * lk * dc * 320 * 2 + 2.0 * 2 * 5 * 1024 * lk * 64 * 2
        row(name, tokens.shape, flops: flops, forward: { _ = attention.forwardForTraining(tokens, context: ctx) },
            backward: { _ = attention.backward(saved, outputGradient: dTokens) })
    }
    let scores = Tensor.random([10, 1024, 1024], rng: &rng)
    let probabilities = Softmax().forward(scores)
    row("Softmax rows of 1024", scores.shape, forward: { _ = Softmax().forward(scores) },
        backward: { _ = Softmax().backward(output: probabilities, outputGradient: scores) })
}
