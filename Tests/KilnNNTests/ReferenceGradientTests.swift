import Testing
@testable import KilnNN

/// Every reference backward against float64 central finite differences of its reference forward.
/// (The fast float32 layers are then held to these references in `LayerTests`.)
@Suite("Reference gradients against float64 finite differences")
struct ReferenceGradientTests {
    @Test("Linear")
    func linear() {
        let (m, i, o) = (6, 4, 5)
        let x = randomValues(m * i, seed: 1), w = randomValues(o * i, seed: 2), b = randomValues(o, seed: 3)
        let weights = randomValues(m * o, seed: 4)
        let g = NNReference.linearBackward(x, weight: w, outputGradient: weights, rows: m, inFeatures: i, outFeatures: o)
        expectGradientsMatchFiniteDifferences(["x", "W", "b"], analytic: [g.input, g.weight, g.bias], arguments: [x, w, b], weights: weights) {
            NNReference.linear($0[0], weight: $0[1], bias: $0[2], rows: m, inFeatures: i, outFeatures: o)
        }
    }

    static let convolutions: [Conv2dGeometry] = [
        Conv2dGeometry(batch: 2, inChannels: 2, height: 3, width: 3, outChannels: 3, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 2, inChannels: 3, height: 2, width: 3, outChannels: 2, kernelHeight: 1, kernelWidth: 1),
        Conv2dGeometry(batch: 2, inChannels: 2, height: 5, width: 4, outChannels: 3, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 2, height: 4, width: 5, outChannels: 2, kernelHeight: 2, kernelWidth: 3, stride: 2, padding: 0),
    ]

    @Test("Conv2d: 3×3 pad 1, 1×1, 3×3 stride 2, 2×3 stride 2", arguments: convolutions)
    func conv2d(_ geometry: Conv2dGeometry) {
        let g = geometry
        let x = randomValues(g.batch * g.inChannels * g.height * g.width, seed: 5)
        let w = randomValues(g.outChannels * g.patchSize, seed: 6), b = randomValues(g.outChannels, seed: 7)
        let weights = randomValues(g.batch * g.outChannels * g.outHeight * g.outWidth, seed: 8)
        let grads = NNReference.conv2dBackward(x, weight: w, outputGradient: weights, g)
        expectGradientsMatchFiniteDifferences(["x", "W", "b"], analytic: [grads.input, grads.weight, grads.bias], arguments: [x, w, b],
                                              weights: weights) {
            NNReference.conv2d($0[0], weight: $0[1], bias: $0[2], g)
        }
    }

    @Test("GroupNorm, affine and not")
    func groupNorm() {
        let (n, c, s, groups, eps) = (2, 4, 3, 2, 1e-5)
        let x = randomValues(n * c * s, seed: 9, scale: 2), gamma = randomValues(c, seed: 10), beta = randomValues(c, seed: 11)
        let weights = randomValues(x.count, seed: 12)
        let g = NNReference.groupNormBackward(x, outputGradient: weights, batch: n, channels: c, spatial: s, groups: groups, eps: eps, gamma: gamma)
        expectGradientsMatchFiniteDifferences(["x", "γ", "β"], analytic: [g.input, g.gamma, g.beta], arguments: [x, gamma, beta], weights: weights) {
            NNReference.groupNorm($0[0], batch: n, channels: c, spatial: s, groups: groups, eps: eps, gamma: $0[1], beta: $0[2])
        }
        let plain = NNReference.groupNormBackward(x, outputGradient: weights, batch: n, channels: c, spatial: s, groups: groups, eps: eps, gamma: nil)
        expectGradientsMatchFiniteDifferences(["x"], analytic: [plain.input], arguments: [x], weights: weights) {
            NNReference.groupNorm($0[0], batch: n, channels: c, spatial: s, groups: groups, eps: eps, gamma: nil, beta: nil)
        }
    }

    @Test("LayerNorm")
    func layerNorm() {
        let (rows, d, eps) = (3, 5, 1e-5)
        let x = randomValues(rows * d, seed: 13, scale: 2), gamma = randomValues(d, seed: 14), beta = randomValues(d, seed: 15)
        let weights = randomValues(x.count, seed: 16)
        let g = NNReference.layerNormBackward(x, outputGradient: weights, rows: rows, features: d, eps: eps, gamma: gamma)
        expectGradientsMatchFiniteDifferences(["x", "γ", "β"], analytic: [g.input, g.gamma, g.beta], arguments: [x, gamma, beta], weights: weights) {
            NNReference.layerNorm($0[0], rows: rows, features: d, eps: eps, gamma: $0[1], beta: $0[2])
        }
    }

    @Test("Pointwise activations: SiLU, GELU (erf and tanh), quick GELU")
    func activations() {
        let x = randomValues(40, seed: 17, scale: 2.5)
        let weights = [Double](repeating: 1, count: x.count)
        let pairs: [(String, (Double) -> Double, (Double) -> Double)] = [
            ("silu", { NNReference.silu($0) }, { NNReference.siluDerivative($0) }),
            ("gelu", { NNReference.gelu($0) }, { NNReference.geluDerivative($0) }),
            ("gelu tanh", { NNReference.gelu($0, approximation: .tanh) }, { NNReference.geluDerivative($0, approximation: .tanh) }),
            ("quick gelu", { NNReference.quickGELU($0) }, { NNReference.quickGELUDerivative($0) }),
        ]
        for (name, f, df) in pairs {
            expectGradientsMatchFiniteDifferences([name], analytic: [x.map(df)], arguments: [x], weights: weights) { $0[0].map(f) }
        }
    }

    @Test("GEGLU")
    func geglu() {
        let (m, i, o) = (3, 4, 3)
        let x = randomValues(m * i, seed: 18), w = randomValues(2 * o * i, seed: 19), b = randomValues(2 * o, seed: 20)
        let weights = randomValues(m * o, seed: 21)
        let g = NNReference.gegluBackward(x, weight: w, bias: b, outputGradient: weights, rows: m, inFeatures: i, outFeatures: o)
        expectGradientsMatchFiniteDifferences(["x", "W", "b"], analytic: [g.input, g.weight, g.bias], arguments: [x, w, b], weights: weights) {
            NNReference.geglu($0[0], weight: $0[1], bias: $0[2], rows: m, inFeatures: i, outFeatures: o)
        }
    }

    @Test("Softmax, plain and causal")
    func softmax() {
        for causal in [false, true] {
            let (rows, columns) = (8, 4)
            let x = randomValues(rows * columns, seed: 22, scale: 3), weights = randomValues(x.count, seed: 23)
            let y = NNReference.softmax(x, rows: rows, columns: columns, causal: causal)
            let dx = NNReference.softmaxBackward(output: y, outputGradient: weights, rows: rows, columns: columns)
            expectGradientsMatchFiniteDifferences(["x (causal \(causal))"], analytic: [dx], arguments: [x], weights: weights) {
                NNReference.softmax($0[0], rows: rows, columns: columns, causal: causal)
            }
        }
    }

    static let attentionShapes: [AttentionShape] = [
        AttentionShape(batch: 2, queryLength: 3, keyLength: 3, queryDim: 4, contextDim: 4, heads: 2, headDim: 2, outDim: 4),
        AttentionShape(batch: 2, queryLength: 3, keyLength: 4, queryDim: 4, contextDim: 3, heads: 2, headDim: 2, outDim: 4),
        AttentionShape(batch: 1, queryLength: 4, keyLength: 4, queryDim: 4, contextDim: 4, heads: 2, headDim: 2, outDim: 3, causal: true),
    ]

    @Test("Attention: self, cross, causal with biases", arguments: attentionShapes)
    func attention(_ s: AttentionShape) {
        let cross = s.contextDim != s.queryDim || s.keyLength != s.queryLength
        let biases = s.causal
        let x = randomValues(s.batch * s.queryLength * s.queryDim, seed: 24)
        let context = cross ? randomValues(s.batch * s.keyLength * s.contextDim, seed: 25) : []
        let inner = s.innerDim
        var args = [x, context,
                    randomValues(inner * s.queryDim, seed: 26), randomValues(inner * s.contextDim, seed: 27),
                    randomValues(inner * s.contextDim, seed: 28), randomValues(s.outDim * inner, seed: 29),
                    randomValues(inner, seed: 30), randomValues(inner, seed: 31), randomValues(inner, seed: 32), randomValues(s.outDim, seed: 33)]
        if !biases { for i in 6..<9 { args[i] = [] } }
        func weightsOf(_ a: [[Double]]) -> AttentionWeights<Double> {
            AttentionWeights(query: a[2], key: a[3], value: a[4], out: a[5], queryBias: biases ? a[6] : nil, keyBias: biases ? a[7] : nil,
                             valueBias: biases ? a[8] : nil, outBias: a[9])
        }
        let upstream = randomValues(s.batch * s.queryLength * s.outDim, seed: 34)
        let g = NNReference.attentionBackward(x, context: cross ? context : nil, weights: weightsOf(args), outputGradient: upstream, s)
        let analytic = [g.input, g.context ?? [], g.weights.query, g.weights.key, g.weights.value, g.weights.out,
                        g.weights.queryBias ?? [], g.weights.keyBias ?? [], g.weights.valueBias ?? [], g.weights.outBias ?? []]
        expectGradientsMatchFiniteDifferences(["x", "context", "Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo"], analytic: analytic,
                                              arguments: args, weights: upstream) {
            NNReference.attention($0[0], context: cross ? $0[1] : nil, weights: weightsOf($0), s)
        }
        // A key bias shifts every score of a row by the same q·b: softmax ignores it.
        if let keyBias = g.weights.keyBias { #expect(keyBias.allSatisfy { abs($0) < 1e-12 }) }
    }

    @Test("Nearest upsampling ×2 and ×3")
    func upsample() {
        for factor in [2, 3] {
            let x = randomValues(2 * 2 * 3, seed: 35)
            let weights = randomValues(x.count * factor * factor, seed: 36)
            let dx = NNReference.upsampleNearestBackward(outputGradient: weights, planes: 2, height: 2, width: 3, factor: factor)
            expectGradientsMatchFiniteDifferences(["x"], analytic: [dx], arguments: [x], weights: weights) {
                NNReference.upsampleNearest($0[0], planes: 2, height: 2, width: 3, factor: factor)
            }
        }
    }
}
