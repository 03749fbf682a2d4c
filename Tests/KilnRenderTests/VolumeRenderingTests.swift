import KilnCore
import Testing
@testable import KilnRender

@Suite("Volume rendering")
struct VolumeRenderingTests {
    /// R rays of S samples: random densities (some zero, some large), colours, increasing t.
    static func rays(_ r: Int, _ s: Int, seed: UInt64) -> (sigmas: [Double], colors: [Double], t: [Double], deltas: [Double]) {
        var rng = RNG(seed: seed)
        var sigmas: [Double] = [], colors: [Double] = [], t: [Double] = [], deltas: [Double] = []
        for _ in 0..<r {
            var position = Double(rng.uniform(0.5...1))
            for _ in 0..<s {
                let delta = Double(rng.uniform(0.01...0.08))
                let u = rng.nextFloat()
                sigmas.append(u < 0.3 ? 0 : Double(rng.uniform(0...30)))
                for _ in 0..<3 { colors.append(Double(rng.uniform(0...1))) }
                t.append(position + delta / 2)
                deltas.append(delta)
                position += delta
            }
        }
        return (sigmas, colors, t, deltas)
    }

    @Test("forward matches the float64 reference (to the early-stop tolerance), for 1 and 3 threads", arguments: [1, 3])
    func forward(threads: Int) {
        let (sigmas, colors, t, deltas) = Self.rays(37, 24, seed: 1)
        let background = SIMD3<Double>(0.2, 0.5, 0.9)
        let reference = VolumeRenderingReference.forward(sigmas: sigmas, colors: colors, t: t, deltas: deltas, samplesPerRay: 24, background: background)
        let fast = VolumeRendering.forward(sigmas: sigmas.map(Float.init), colors: colors.map(Float.init), t: t.map(Float.init), deltas: deltas.map(Float.init),
                                           samplesPerRay: 24, background: SIMD3<Float>(background), threads: threads)
        let worst = [zip(fast.color, reference.color), zip(fast.alpha, reference.alpha), zip(fast.depth, reference.depth)]
            .map { $0.map { abs(Double($0) - $1) }.max()! }.max()!
        #expect(worst < 3e-4, "worst difference \(worst)")
        #expect(fast.used.contains { $0 < 24 }, "some ray should stop early")
    }

    @Test("backward matches float64 central differences of the reference (colour, alpha and depth losses)")
    func backward() {
        let s = 12
        // Moderate densities so no ray stops early: the reference and the fast path are one function.
        var (sigmas, colors, t, deltas) = Self.rays(9, s, seed: 2)
        sigmas = sigmas.map { $0 / 6 }
        let background = SIMD3<Double>(0.3, 0.1, 0.7)
        var rng = RNG(seed: 3)
        let wColor = (0..<27).map { _ in Double(rng.uniform(-1...1)) }, wAlpha = (0..<9).map { _ in Double(rng.uniform(-1...1)) }
        let wDepth = (0..<9).map { _ in Double(rng.uniform(-1...1)) }
        func loss(_ sg: [Double], _ co: [Double]) -> Double {
            let o = VolumeRenderingReference.forward(sigmas: sg, colors: co, t: t, deltas: deltas, samplesPerRay: s, background: background)
            return zip(o.color, wColor).map(*).reduce(0, +) + zip(o.alpha, wAlpha).map(*).reduce(0, +) + zip(o.depth, wDepth).map(*).reduce(0, +)
        }
        let f = { (v: [Double]) in v.map(Float.init) }
        let output = VolumeRendering.forward(sigmas: f(sigmas), colors: f(colors), t: f(t), deltas: f(deltas), samplesPerRay: s, background: SIMD3<Float>(background))
        #expect(output.used.allSatisfy { $0 == Int32(s) })
        let g = VolumeRendering.backward(sigmas: f(sigmas), colors: f(colors), t: f(t), deltas: f(deltas), samplesPerRay: s, background: SIMD3<Float>(background),
                                         output: output, dColor: f(wColor), dAlpha: f(wAlpha), dDepth: f(wDepth))
        var worst = 0.0
        let h = 1e-6
        for k in 0..<sigmas.count {
            var up = sigmas, down = sigmas
            up[k] += h; down[k] -= h
            if down[k] < 0 { continue }
            let numeric = (loss(up, colors) - loss(down, colors)) / (2 * h)
            worst = max(worst, abs(numeric - Double(g.dSigmas[k])) / (1e-3 + abs(numeric)))
        }
        for k in stride(from: 0, to: colors.count, by: 5) {
            var up = colors, down = colors
            up[k] += h; down[k] -= h
            let numeric = (loss(sigmas, up) - loss(sigmas, down)) / (2 * h)
            worst = max(worst, abs(numeric - Double(g.dColors[k])) / (1e-3 + abs(numeric)))
        }
        #expect(worst < 1e-3, "worst relative error \(worst)")
    }

    @Test("empty rays show the background; an opaque first sample hides everything behind it")
    func edges() {
        let empty = VolumeRendering.forward(sigmas: [0, 0], colors: [1, 1, 1, 1, 1, 1], t: [1, 2], deltas: [1, 1], samplesPerRay: 2, background: SIMD3(0.1, 0.2, 0.3))
        #expect(empty.color == [0.1, 0.2, 0.3] && empty.alpha == [0])
        let wall = VolumeRendering.forward(sigmas: [1e4, 5], colors: [1, 0, 0, 0, 1, 0], t: [1, 2], deltas: [1, 1], samplesPerRay: 2, background: .zero)
        #expect(wall.color == [1, 0, 0] && wall.used == [1])
    }
}
