import Foundation
import KilnCore
import Testing

@Suite("AdamW: the one Adam update")
struct AdamWTests {
    /// Two Adam steps in closed form, in float64. Step 1: m̂ = g₁ and v̂ = g₁², so p moves by
    /// lr·g₁/(|g₁| + ε); step 2: m̂ = (β₁(1 − β₁)g₁ + (1 − β₁)g₂)/(1 − β₁²),
    /// v̂ = (β₂(1 − β₂)g₁² + (1 − β₂)g₂²)/(1 − β₂²).
    static func closedForm(p0: Double, g1: Double, g2: Double, c: AdamW) -> (Double, Double) {
        let (lr, b1, b2, eps, decay) = (c.learningRate, c.beta1, c.beta2, c.eps, c.weightDecay)
        let shrink = c.decoupledWeightDecay ? 1 - lr * decay : 1  // AdamW scales p first; Adam's L2 term joins g
        let first = g1 + (c.decoupledWeightDecay ? 0 : decay * p0)
        let p1 = p0 * shrink - lr * first / (abs(first) + eps)
        let second = g2 + (c.decoupledWeightDecay ? 0 : decay * p1)
        let mHat = (b1 * (1 - b1) * first + (1 - b1) * second) / (1 - b1 * b1)
        let vHat = (b2 * (1 - b2) * first * first + (1 - b2) * second * second) / (1 - b2 * b2)
        return (p1, p1 * shrink - lr * mHat / (vHat.squareRoot() + eps))
    }

    @Test("both arithmetics follow the closed form for two steps (Adam, Adam with L2 decay, AdamW)",
          arguments: [AdamW.Arithmetic.pytorch, .float32], [(0.0, false), (0.1, false), (0.1, true)])
    func twoSteps(arithmetic: AdamW.Arithmetic, decay: (Double, Bool)) {
        let c = AdamW(learningRate: 0.1, eps: 1e-8, weightDecay: decay.0, decoupledWeightDecay: decay.1, arithmetic: arithmetic)
        let p0: [Float] = [1, -0.5, 2, 0.25], g1: [Float] = [0.5, -2, 1e-3, 0], g2: [Float] = [-1, -1, 0.3, 2]
        var p = p0, m = [Float](repeating: 0, count: 4), v = m
        for (t, g) in [g1, g2].enumerated() {
            let step = c.step(t + 1)
            for i in p.indices { step.update(&p[i], gradient: g[i], m: &m[i], v: &v[i]) }
            for i in p.indices {
                let expected = Self.closedForm(p0: Double(p0[i]), g1: Double(g1[i]), g2: Double(g2[i]), c: c)
                let e = t == 0 ? expected.0 : expected.1
                #expect(abs(Double(p[i]) - e) < 1e-6, "\(arithmetic), step \(t + 1), p[\(i)]: \(p[i]) vs \(e)")
            }
        }
    }

    @Test("a step's learning rate overrides the configured one; the buffer update is the per-value one")
    func learningRateAndBuffers() {
        let c = AdamW(learningRate: 1, arithmetic: .float32)
        var rng = RNG(seed: 1)
        let g = rng.uniforms(count: 37, in: -1...1)
        var p = rng.uniforms(count: 37, in: -1...1), m = rng.uniforms(count: 37, in: -0.1...0.1), v = rng.uniforms(count: 37, in: 0...0.01)
        var (q, mq, vq) = (p, m, v)
        let step = c.step(3, learningRate: 0.01)
        for i in p.indices { step.update(&p[i], gradient: g[i], m: &m[i], v: &v[i]) }
        g.withUnsafeBufferPointer { gp in
            q.withUnsafeMutableBufferPointer { qp in
                mq.withUnsafeMutableBufferPointer { mp in
                    vq.withUnsafeMutableBufferPointer { vp in
                        step.uncheckedUpdate(qp.baseAddress!, gradients: gp.baseAddress!, m: mp.baseAddress!, v: vp.baseAddress!, range: 0..<37)
                    }
                }
            }
        }
        #expect(p == q && m == mq && v == vq)
        // The first step moves each value by about the learning rate against its gradient's sign.
        var x: Float = 0, m1: Float = 0, v1: Float = 0
        c.step(1, learningRate: 0.01).update(&x, gradient: 3, m: &m1, v: &v1)
        #expect(abs(x + 0.01) < 1e-6)
    }
}
