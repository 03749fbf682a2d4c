import KilnCore
import Testing
@testable import KilnRender

@Suite("Splat gradients against float64 finite differences")
struct SplatGradientTests {
    /// Central differences of `loss` for every parameter, compared with the analytic gradient.
    func check(_ p: SplatParameters<Double>, camera: Camera, settings: SplatRenderSettings, seed: UInt64) {
        let loss = WeightedLoss(pixels: camera.width * camera.height, seed: seed)
        let analytic = SplatReference.backward(p, camera: camera, settings: settings, gradients: loss.gradients(as: Double.self))
        // The scene must be seen: most Gaussians visible and contributing, so the check means something.
        let contributing = (0..<p.count).filter { i in (0..<3).contains { analytic.parameters.means[3 * i + $0] != 0 } }.count
        #expect(contributing >= p.count * 2 / 3, "only \(contributing) of \(p.count) Gaussians reach the image")
        let eps = 1e-6
        func numeric(_ edit: (inout SplatParameters<Double>, Double) -> Void) -> Double {
            var plus = p, minus = p
            edit(&plus, eps); edit(&minus, -eps)
            return (loss.value(SplatReference.render(plus, camera: camera, settings: settings))
                - loss.value(SplatReference.render(minus, camera: camera, settings: settings))) / (2 * eps)
        }
        var worst = (error: 0.0, name: "", analytic: 0.0, numeric: 0.0)
        func compare(_ name: String, _ a: Double, _ n: Double) {
            let error = abs(a - n) / max(1e-2, abs(n))  // relative, absolute near zero
            if error > worst.error { worst = (error, name, a, n) }
        }
        for i in 0..<p.count {
            for a in 0..<3 {
                compare("means[\(i)][\(a)]", analytic.parameters.means[3 * i + a], numeric { $0.means[3 * i + a] += $1 })
                compare("logScales[\(i)][\(a)]", analytic.parameters.logScales[3 * i + a], numeric { $0.logScales[3 * i + a] += $1 })
            }
            for a in 0..<4 {
                compare("rotations[\(i)][\(a)]", analytic.parameters.rotations[4 * i + a], numeric { $0.rotations[4 * i + a] += $1 })
            }
            compare("opacityLogits[\(i)]", analytic.parameters.opacityLogits[i], numeric { $0.opacityLogits[i] += $1 })
            for j in 0..<(3 * p.coefficientsPerChannel) {
                let o = 3 * p.coefficientsPerChannel * i + j
                compare("sh[\(i)][\(j)]", analytic.parameters.sh[o], numeric { $0.sh[o] += $1 })
            }
        }
        for ch in 0..<3 {
            var s = settings
            s.background[ch] += Float(1.0 / 1024)
            let up = loss.value(SplatReference.render(p, camera: camera, settings: s) as SplatImages<Double>)
            s.background[ch] -= Float(2.0 / 1024)
            let down = loss.value(SplatReference.render(p, camera: camera, settings: s) as SplatImages<Double>)
            compare("background[\(ch)]", analytic.background[ch], (up - down) / (2.0 / 1024))
        }
        #expect(worst.error < 1e-4, "worst \(worst.name): analytic \(worst.analytic), numeric \(worst.numeric), error \(worst.error)")
    }

    @Test("Every parameter, SH degrees 0–3", arguments: [0, 1, 2, 3])
    func degrees(degree: Int) {
        let (p, camera) = randomSplatScene(count: 12, shDegree: degree, seed: UInt64(10 + degree))
        check(p, camera: camera, settings: SplatRenderSettings(background: SIMD3(0.2, 0.5, 0.9)), seed: 5)
    }

    @Test("Antialiased mode")
    func antialiased() {
        let (p, camera) = randomSplatScene(count: 12, shDegree: 1, seed: 21)
        check(p, camera: camera, settings: SplatRenderSettings(antialiased: true, background: SIMD3(1, 1, 1)), seed: 6)
    }

    @Test("Centres outside the frustum clamp (the clamped Jacobian)")
    func clampedJacobian() {
        var (p, camera) = randomSplatScene(count: 8, shDegree: 0, seed: 33, width: 16, height: 16)
        // Push centres sideways so that x/z exceeds 1.3 × the half field of view, with scales large
        // enough that their 3σ squares still reach the image.
        let right = camera.right
        for i in 0..<p.count {
            for a in 0..<3 { p.means[3 * i + a] += Double(right[a]) * 1.6; p.logScales[3 * i + a] += 1.2 }
        }
        check(p, camera: camera, settings: SplatRenderSettings(), seed: 7)
    }
}
