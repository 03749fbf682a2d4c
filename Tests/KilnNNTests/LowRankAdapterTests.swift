import Foundation
import KilnCore
import Testing
@testable import KilnNN

/// LoRA on `Linear`: the adapted layer's passes against the float64 reference composition
/// y = W·x + b + s·B·(A·x), and merging.
@Suite("LoRA adapters")
struct LowRankAdapterTests {
    @Test("Forward, input gradient and adapter gradients match the reference; the base stays frozen; merging keeps the function")
    func adaptedLinear() {
        let (m, i, o, r) = (6, 7, 5, 3)
        let (alpha, s): (Float, Double) = (6, 2)  // α / r = 2
        var rng = RNG(seed: 1)
        let w = randomValues(o * i, seed: 2), b = randomValues(o, seed: 3), x = randomValues(m * i, seed: 4), dy = randomValues(m * o, seed: 5)
        let layer = Linear(weight: tensor(w, [o, i]), bias: tensor(b, [o]))
        let adapter = layer.attach(rank: r, alpha: alpha, rng: &rng)
        #expect(adapter.up.weight.value.maxAbsolute() == 0, "B starts at zero")
        #expect(!layer.weight.requiresGradient && !layer.bias!.requiresGradient)
        #expect(layer.forward(tensor(x, [m, i])).storage == Linear(weight: tensor(w, [o, i]), bias: tensor(b, [o])).forward(tensor(x, [m, i])).storage,
                "a fresh adapter changes nothing")
        // Give B values, then compare with the reference.
        let bUp = randomValues(o * r, seed: 6)
        adapter.up.weight.load(tensor(bUp, [o, r]))
        let aDown = adapter.down.weight.value.storage.map(Double.init)
        let h = NNReference.linear(x, weight: aDown, bias: nil, rows: m, inFeatures: i, outFeatures: r)
        let low = NNReference.linear(h, weight: bUp, bias: nil, rows: m, inFeatures: r, outFeatures: o)
        let base = NNReference.linear(x, weight: w, bias: b, rows: m, inFeatures: i, outFeatures: o)
        let y = layer.forward(tensor(x, [m, i]))
        expectClose(y, zip(base, low).map { $0 + s * $1 }, tolerance: 2e-5, "y")

        let dx = layer.backward(input: tensor(x, [m, i]), outputGradient: tensor(dy, [m, o]))
        let baseGradients = NNReference.linearBackward(x, weight: w, outputGradient: dy, rows: m, inFeatures: i, outFeatures: o)
        let upGradients = NNReference.linearBackward(h, weight: bUp, outputGradient: dy.map { $0 * s }, rows: m, inFeatures: r, outFeatures: o)
        let downGradients = NNReference.linearBackward(x, weight: aDown, outputGradient: upGradients.input, rows: m, inFeatures: i, outFeatures: r)
        expectClose(dx, zip(baseGradients.input, downGradients.input).map { $0 + $1 }, tolerance: 2e-5, "dx")
        expectClose(adapter.up.weight.gradient, upGradients.weight, tolerance: 2e-5, "dB")
        expectClose(adapter.down.weight.gradient, downGradients.weight, tolerance: 2e-5, "dA")
        #expect(!layer.weight.hasGradient && !layer.bias!.hasGradient, "the frozen base gets no gradient")
        // The parameter-only pass accumulates the same adapter gradients again.
        layer.accumulateParameterGradients(input: tensor(x, [m, i]), outputGradient: tensor(dy, [m, o]))
        expectClose(adapter.up.weight.gradient, upGradients.weight.map { 2 * $0 }, tolerance: 2e-5, "dB twice")

        layer.mergeAdapter()
        #expect(layer.adapter == nil && layer.weight.requiresGradient)
        expectClose(layer.forward(tensor(x, [m, i])), y.storage.map(Double.init), tolerance: 2e-5, "merged y")
    }
}
