import Foundation
import Testing
@testable import KilnNN

@Suite("Optimisers, clipping, EMA")
struct OptimizerTests {
    /// Two Adam steps in closed form. Step 1: m̂ = g₁ and v̂ = g₁², so p moves by lr·g₁/(|g₁| + ε);
    /// step 2: m̂ = (β₁(1 − β₁)g₁ + (1 − β₁)g₂)/(1 − β₁²), v̂ = (β₂(1 − β₂)g₁² + (1 − β₂)g₂²)/(1 − β₂²).
    func closedForm(p0: Double, g1: Double, g2: Double, lr: Double, b1: Double, b2: Double, eps: Double,
                    decay: Double, decoupled: Bool) -> (Double, Double) {
        let shrink = decoupled ? 1 - lr * decay : 1  // AdamW scales p first; Adam's L2 term joins g
        let first = g1 + (decoupled ? 0 : decay * p0)
        let p1 = p0 * shrink - lr * first / (abs(first) + eps)
        let second = g2 + (decoupled ? 0 : decay * p1)
        let mHat = (b1 * (1 - b1) * first + (1 - b1) * second) / (1 - b1 * b1)
        let vHat = (b2 * (1 - b2) * first * first + (1 - b2) * second * second) / (1 - b2 * b2)
        return (p1, p1 * shrink - lr * mHat / (vHat.squareRoot() + eps))
    }

    @Test("Adam, Adam with L2 decay and AdamW: two steps against the closed form",
          arguments: [(0.0, false), (0.1, false), (0.1, true)])
    func twoSteps(decay: Double, decoupled: Bool) {
        let p0: [Double] = [1, -0.5, 2, 0.25], g1: [Double] = [0.5, -2, 1e-3, 0], g2: [Double] = [-1, -1, 0.3, 2]
        let (lr, b1, b2, eps) = (0.1, 0.9, 0.999, 1e-8)
        let parameter = Parameter(tensor(p0, [4]))
        let adam = Adam(parameters: [parameter], configuration: .init(learningRate: lr, beta1: b1, beta2: b2, eps: eps,
                                                                      weightDecay: decay, decoupledWeightDecay: decoupled))
        let expected = p0.indices.map { closedForm(p0: p0[$0], g1: g1[$0], g2: g2[$0], lr: lr, b1: b1, b2: b2, eps: eps,
                                                   decay: decay, decoupled: decoupled) }
        parameter.setGradient(tensor(g1, [4]))
        adam.step()
        expectClose(parameter.value, expected.map(\.0), tolerance: 1e-6, "after step 1")
        parameter.setGradient(tensor(g2, [4]))
        adam.step()
        expectClose(parameter.value, expected.map(\.1), tolerance: 1e-6, "after step 2")
        #expect(adam.stepCount == 2)
    }

    @Test("Adam restores a saved state and continues identically")
    func restore() {
        let a = Parameter(tensor([1, 2, 3], [3])), b = Parameter(tensor([1, 2, 3], [3]))
        let first = Adam(parameters: [a], configuration: .adamW(learningRate: 0.01))
        a.setGradient(tensor([0.3, -0.2, 0.1], [3]))
        first.step()
        let second = Adam(parameters: [b], configuration: .adamW(learningRate: 0.01))
        b.load(a.value)
        second.restore(stepCount: first.stepCount, firstMoments: first.firstMoments, secondMoments: first.secondMoments)
        a.setGradient(tensor([-0.1, 0.4, 0.2], [3]))
        b.setGradient(a.gradient)
        first.step()
        second.step()
        #expect(a.value == b.value)
    }

    @Test("Gradient clipping: global L2 norm, only when above the limit")
    func clipping() {
        let a = Parameter(tensor([0, 0], [2])), b = Parameter(tensor([0], [1]))
        a.setGradient(tensor([3, 4], [2]))
        b.setGradient(tensor([12], [1]))
        #expect(clipGradientNorm([a, b], maxNorm: 20) == 13)
        #expect(a.gradient.storage == [3, 4] && b.gradient.storage == [12])
        let norm = clipGradientNorm([a, b], maxNorm: 6.5)
        #expect(norm == 13)
        expectClose(a.gradient, [1.5, 2], tolerance: 1e-6, "a")
        expectClose(b.gradient, [6], tolerance: 1e-6, "b")
        b.setGradient(tensor([.nan], [1]))
        #expect(clipGradientNorm([a, b], maxNorm: 1).isNaN)
    }

    @Test("EMA: diffusers' decay schedule, warm-up, update-after-step, and the shadow update")
    func ema() {
        let p = Parameter(tensor([1, -2], [2]))
        let ema = EMA(parameters: [p])
        #expect(ema.decay(atStep: 1) == 0)
        #expect(ema.decay(atStep: 2) == Float(2.0 / 11.0))
        #expect(ema.decay(atStep: 10_000_000) == 0.9999)  // (1 + s)/(10 + s) capped at maxDecay
        let warm = EMA(parameters: [p], configuration: .init(updateAfterStep: 5, useWarmup: true, power: 0.75))
        #expect(warm.decay(atStep: 6) == 0)
        #expect(abs(Double(warm.decay(atStep: 9)) - (1 - pow(4.0, -0.75))) < 1e-7)  // s = 9 − 5 − 1 = 3
        // Step 1 copies (decay 0); step 2 moves 9/11 of the way to the parameters.
        p.load(tensor([3, 0], [2]))
        ema.update([p])
        #expect(ema.shadow[0].storage == [3, 0])
        p.load(tensor([5, 11], [2]))
        ema.update([p])
        expectClose(ema.shadow[0], [3 + 9.0 / 11 * 2, 0 + 9.0 / 11 * 11], tolerance: 1e-6, "shadow after step 2")
        #expect(ema.optimizationStep == 2)
        let target = Parameter(tensor([0, 0], [2]))
        ema.copy(to: [target])
        #expect(target.value == ema.shadow[0])
    }
}
