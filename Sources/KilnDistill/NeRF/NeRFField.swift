import Foundation
import KilnCore
import KilnNN
import KilnRender

/// The NeRF representation's field (Instant-NGP style, as threestudio's "implicit-volume"):
///
///     h = HashGrid((x − centre)/(2·half) + ½)             [N, L·F]
///     z = W₂·relu(W₁·h + b₁) + b₂                          [N, 4]
///     σ = exp(min(z₀ + blob(x), 15)),  blob(x) = λ·(1 − ‖x − centre‖/r)   (Magic3D's density bias)
///     c = sigmoid(z₁…₃)                                    diffuse colour, display values
///
/// The density bias starts the optimisation from a soft ball instead of empty space. `exp` is
/// truncated at 15 (gradient zero above it) as threestudio's `trunc_exp` clamps it.
public final class NeRFField: Module {
    public let grid: HashGrid
    public let table: Parameter
    let hidden: Linear, output: Linear
    public let center: SIMD3<Float>
    public let halfSize: Float
    public let blobDensity: Float, blobRadius: Float

    public init(grid: HashGrid = HashGrid(levels: 12, featuresPerLevel: 2, log2TableSize: 15, baseResolution: 8, maxResolution: 256),
                width: Int = 64, center: SIMD3<Float> = .zero, halfSize: Float = 0.7, blobDensity: Float = 10, blobRadius: Float = 0.5,
                rng: inout RNG) {
        self.grid = grid
        table = Parameter(Tensor(shape: [grid.parameterCount], storage: grid.initialTable(rng: &rng)))
        hidden = Linear(inFeatures: grid.outputWidth, outFeatures: width, rng: &rng)
        output = Linear(inFeatures: width, outFeatures: 4, rng: &rng)
        self.center = center
        self.halfSize = halfSize
        self.blobDensity = blobDensity
        self.blobRadius = blobRadius
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("encoding.table", table)] + prefixed("mlp.0", hidden) + prefixed("mlp.2", output)
    }

    /// What `backward` needs: the unit-cube points and their hash features (the MLP's activations
    /// are recomputed block by block, not kept: at 64² × 64 samples they would be 67 MB a layer).
    public struct Saved: Sendable {
        var unit: [Float], features: [Float]
        public var sigma: [Float], color: [Float]
    }

    /// Rows of the MLP a block works on: its activations stay in the core's cache.
    static let blockRows = 1024
    /// exp(15), the density cap.
    static let sigmaCap = Foundation.exp(Float(15))

    /// Density and colour at world points `[N, 3]`.
    /// - Returns: `sigma [N]` (≥ 0), `color [N, 3]` in (0, 1), and what the backward pass needs.
    public func forward(points: [Float], threads: Int = Parallel.defaultThreadCount) -> Saved {
        precondition(hidden.adapter == nil && output.adapter == nil, "NeRFField: its layers carry no adapters")
        let n = points.count / 3
        let unit = unitPoints(points)
        let features = grid.forward(points: unit, table: table.value.storage, threads: threads)
        var sigma = [Float](repeating: 0, count: n), color = [Float](repeating: 0, count: 3 * n)
        let layers = mlpWeights()
        let (center, blobDensity, blobRadius) = (center, blobDensity, blobRadius)
        sigma.withUnsafeMutableBufferPointer { ps in
            color.withUnsafeMutableBufferPointer { pc in
                let (outSigma, outColor) = (UnsafeMutableSendableBuffer(ps), UnsafeMutableSendableBuffer(pc))
                features.withUnsafeBufferPointer { pf in
                    nonisolated(unsafe) let f = pf.baseAddress!
                    parallelFor(n, threads: threads) { range in
                        var block = MLPBlock(layers, rows: Self.blockRows)
                        var start = range.lowerBound
                        while start < range.upperBound {
                            let rows = min(Self.blockRows, range.upperBound - start)
                            block.forward(features: f + start * layers.inWidth, rows: rows)
                            for r in 0..<rows {
                                let i = start + r
                                let p = SIMD3(points[3 * i], points[3 * i + 1], points[3 * i + 2]) - center
                                let blob = blobDensity * (1 - (p * p).sum().squareRoot() / blobRadius)
                                outSigma[i] = Foundation.exp(min(block.raw[4 * r] + blob, 15))
                                for c in 0..<3 { outColor[3 * i + c] = 1 / (1 + Foundation.exp(-block.raw[4 * r + 1 + c])) }
                            }
                            start += rows
                        }
                    }
                }
            }
        }
        return Saved(unit: unit, features: features, sigma: sigma, color: color)
    }

    /// Adds the parameter gradients of a loss with gradients `dSigma [N]` and `dColor [N, 3]`.
    public func backward(_ s: Saved, dSigma: [Float], dColor: [Float], threads: Int = Parallel.defaultThreadCount) {
        let n = s.sigma.count
        let layers = mlpWeights()
        var dFeatures = [Float](repeating: 0, count: n * layers.inWidth)
        // Per-chunk partial gradients of the MLP, summed in chunk order (deterministic for a thread count).
        let partials: [MLPGradient] = dFeatures.withUnsafeMutableBufferPointer { pd in
            let out = UnsafeMutableSendableBuffer(pd)
            return s.features.withUnsafeBufferPointer { pf in
                nonisolated(unsafe) let f = pf.baseAddress!
                return parallelMapChunks(n, threads: threads) { range -> MLPGradient in
                    var block = MLPBlock(layers, rows: Self.blockRows)
                    var gradient = MLPGradient(layers)
                    var dRaw = [Float](repeating: 0, count: 4 * Self.blockRows)
                    var start = range.lowerBound
                    while start < range.upperBound {
                        let rows = min(Self.blockRows, range.upperBound - start)
                        for r in 0..<rows {
                            let i = start + r
                            // σ = exp(z + blob) below the cap: dσ/dz = σ; above it the clamp passes nothing.
                            dRaw[4 * r] = s.sigma[i] >= Self.sigmaCap * 0.9999 ? 0 : dSigma[i] * s.sigma[i]
                            for c in 0..<3 {
                                let y = s.color[3 * i + c]
                                dRaw[4 * r + 1 + c] = dColor[3 * i + c] * y * (1 - y)
                            }
                        }
                        block.forward(features: f + start * layers.inWidth, rows: rows)
                        dRaw.withUnsafeBufferPointer { pr in
                            block.backward(features: f + start * layers.inWidth, rows: rows, dRaw: pr.baseAddress!,
                                           dFeatures: out.buffer.baseAddress! + start * layers.inWidth, into: &gradient)
                        }
                        start += rows
                    }
                    return gradient
                }
            }
        }
        var total = MLPGradient(layers)
        for partial in partials { total.add(partial) }
        hidden.weight.withUnsafeMutableGradient { g in for i in 0..<g.count { g[i] += total.w1[i] } }
        hidden.bias?.withUnsafeMutableGradient { g in for i in 0..<g.count { g[i] += total.b1[i] } }
        output.weight.withUnsafeMutableGradient { g in for i in 0..<g.count { g[i] += total.w2[i] } }
        output.bias?.withUnsafeMutableGradient { g in for i in 0..<g.count { g[i] += total.b2[i] } }
        let dTable = grid.backward(points: s.unit, featureGradient: dFeatures, threads: threads)
        table.withUnsafeMutableGradient { g in for i in 0..<g.count { g[i] += dTable[i] } }
    }

    /// World points `[N, 3]` in the field's unit cube.
    func unitPoints(_ points: [Float]) -> [Float] {
        var unit = [Float](repeating: 0, count: points.count)
        let scale = 1 / (2 * halfSize)
        for i in 0..<(points.count / 3) { for a in 0..<3 { unit[3 * i + a] = (points[3 * i + a] - center[a]) * scale + 0.5 } }
        return unit
    }

    /// The MLP's weights as plain arrays (W₁ `[width, in]`, W₂ `[4, width]`, PyTorch's layout).
    func mlpWeights() -> MLPWeights {
        MLPWeights(w1: hidden.weight.value.storage, b1: hidden.bias?.value.storage ?? [Float](repeating: 0, count: hidden.outFeatures),
                   w2: output.weight.value.storage, b2: output.bias?.value.storage ?? [Float](repeating: 0, count: 4),
                   inWidth: hidden.inFeatures, width: hidden.outFeatures)
    }
}

struct MLPWeights: Sendable {
    let w1: [Float], b1: [Float], w2: [Float], b2: [Float]
    let inWidth: Int, width: Int
}

/// ∂L/∂W₁, ∂L/∂b₁, ∂L/∂W₂, ∂L/∂b₂ of the field's MLP.
struct MLPGradient: Sendable {
    var w1: [Float], b1: [Float], w2: [Float], b2: [Float]
    init(_ l: MLPWeights) {
        (w1, b1, w2, b2) = ([Float](repeating: 0, count: l.w1.count), [Float](repeating: 0, count: l.b1.count),
                            [Float](repeating: 0, count: l.w2.count), [Float](repeating: 0, count: l.b2.count))
    }
    mutating func add(_ o: MLPGradient) {
        for i in w1.indices { w1[i] += o.w1[i] }
        for i in b1.indices { b1[i] += o.b1[i] }
        for i in w2.indices { w2[i] += o.w2[i] }
        for i in b2.indices { b2[i] += o.b2[i] }
    }
}

/// One block of rows through the MLP on one thread: z = W₂·relu(W₁·h + b₁) + b₂, its activations
/// in buffers reused block after block.
struct MLPBlock {
    let l: MLPWeights
    var activated: [Float], raw: [Float], dActivated: [Float]

    init(_ l: MLPWeights, rows: Int) {
        self.l = l
        activated = [Float](repeating: 0, count: rows * l.width)
        raw = [Float](repeating: 0, count: rows * 4)
        dActivated = [Float](repeating: 0, count: rows * l.width)
    }

    /// `activated` = relu(h·W₁ᵀ + b₁) and `raw` = activated·W₂ᵀ + b₂ for `rows` rows of h
    /// (one thread: the caller runs blocks in parallel).
    mutating func forward(features h: UnsafePointer<Float>, rows: Int) {
        let (i, w) = (l.inWidth, l.width)
        let l = self.l
        activated.withUnsafeMutableBufferPointer { pa in
            let a = pa.baseAddress!
            for r in 0..<rows { for j in 0..<w { a[r * w + j] = l.b1[j] } }
            l.w1.withUnsafeBufferPointer { pw in
                Matmul.sgemm(transposeB: true, m: rows, n: w, k: i, a: h, lda: i, b: pw.baseAddress!, ldb: i, beta: 1, c: a, ldc: w, threads: 1)
            }
            raw.withUnsafeMutableBufferPointer { pr in
                if w % 16 == 0 {
                    // ReLU and the 4 output dot products, 16 lanes at a time.
                    l.w2.withUnsafeBufferPointer { pw in
                        let w2 = UnsafeRawPointer(pw.baseAddress!)
                        for r in 0..<rows {
                            let row = UnsafeMutableRawPointer(a + r * w)
                            var s0 = SIMD16<Float>(), s1 = s0, s2 = s0, s3 = s0
                            for c in stride(from: 0, to: w, by: 16) {
                                let x = row.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
                                let v = x.replacing(with: 0, where: x .< 0)
                                row.storeBytes(of: v, toByteOffset: 4 * c, as: SIMD16<Float>.self)
                                s0 += v * w2.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
                                s1 += v * w2.loadUnaligned(fromByteOffset: 4 * (w + c), as: SIMD16<Float>.self)
                                s2 += v * w2.loadUnaligned(fromByteOffset: 4 * (2 * w + c), as: SIMD16<Float>.self)
                                s3 += v * w2.loadUnaligned(fromByteOffset: 4 * (3 * w + c), as: SIMD16<Float>.self)
                            }
                            pr[r * 4] = l.b2[0] + s0.sum(); pr[r * 4 + 1] = l.b2[1] + s1.sum()
                            pr[r * 4 + 2] = l.b2[2] + s2.sum(); pr[r * 4 + 3] = l.b2[3] + s3.sum()
                        }
                    }
                } else {
                    for j in 0..<(rows * w) where a[j] < 0 { a[j] = 0 }
                    for r in 0..<rows {
                        for o in 0..<4 {
                            var sum = l.b2[o]
                            for j in 0..<w { sum += a[r * w + j] * l.w2[o * w + j] }
                            pr[r * 4 + o] = sum
                        }
                    }
                }
            }
        }
    }

    /// Adds this block's parameter gradients to `g` and writes ∂L/∂h for its rows, given ∂L/∂raw
    /// `[rows, 4]`; `forward` must have run on the same rows.
    mutating func backward(features h: UnsafePointer<Float>, rows: Int, dRaw: UnsafePointer<Float>, dFeatures: UnsafeMutablePointer<Float>,
                           into g: inout MLPGradient) {
        let (i, w) = (l.inWidth, l.width)
        let l = self.l
        activated.withUnsafeBufferPointer { pa in
            dActivated.withUnsafeMutableBufferPointer { pd in
                let a = pa.baseAddress!, d = pd.baseAddress!
                // ∂L/∂W₂ += ∂L/∂rawᵀ·activated, ∂L/∂b₂ += Σ ∂L/∂raw.
                g.w2.withUnsafeMutableBufferPointer { pw in
                    Matmul.sgemm(transposeA: true, m: 4, n: w, k: rows, a: dRaw, lda: 4, b: a, ldb: w, beta: 1, c: pw.baseAddress!, ldc: w, threads: 1)
                }
                for r in 0..<rows { for o in 0..<4 { g.b2[o] += dRaw[r * 4 + o] } }
                // ∂L/∂pre = ∂L/∂raw·W₂ where the ReLU passed (activated > 0), else 0.
                l.w2.withUnsafeBufferPointer { pw in
                    Matmul.sgemm(m: rows, n: w, k: 4, a: dRaw, lda: 4, b: pw.baseAddress!, ldb: w, c: d, ldc: w, threads: 1)
                }
                for j in 0..<(rows * w) where a[j] <= 0 { d[j] = 0 }
                g.b1.withUnsafeMutableBufferPointer { pb in
                    for r in 0..<rows { for j in 0..<w { pb[j] += d[r * w + j] } }
                }
                // ∂L/∂W₁ += ∂L/∂preᵀ·h, ∂L/∂b₁ += Σ ∂L/∂pre, ∂L/∂h = ∂L/∂pre·W₁.
                g.w1.withUnsafeMutableBufferPointer { pw in
                    Matmul.sgemm(transposeA: true, m: w, n: i, k: rows, a: d, lda: w, b: h, ldb: i, beta: 1, c: pw.baseAddress!, ldc: i, threads: 1)
                }
                l.w1.withUnsafeBufferPointer { pw in
                    Matmul.sgemm(m: rows, n: i, k: w, a: d, lda: w, b: pw.baseAddress!, ldb: i, c: dFeatures, ldc: i, threads: 1)
                }
            }
        }
    }
}
