import Foundation
import KilnCore
import Testing
@testable import KilnRender

@Suite("Object motion (a similarity transform of the whole cloud over time)")
struct ObjectMotionTests {
    static func randomMotion(seed: UInt64, scale: Double = 0.3) -> ObjectMotion<Double> {
        var rng = RNG(seed: seed)
        return ObjectMotion(coefficients: (0..<(5 * 7)).map { _ in scale * Double(rng.uniform(-1...1)) })
    }

    @Test("zero is the identity; a pure yaw, translation and scale act as written; rotations compose with the Gaussians'")
    func basics() {
        let (p, _) = randomSplatScene(count: 6, shDegree: 0, seed: 3)
        #expect(ObjectMotion<Double>().applied(p, at: 0.4) == p)
        // Drift coefficients: yaw = 2π·(τ − ½)·0.25, translation y = 0.6·(τ − ½), log s = 0.2·(τ − ½).
        var c = [Double](repeating: 0, count: 35)
        c[1] = 0.6; c[3] = 0.25 * 2 * .pi; c[6] = 0.2
        let motion = ObjectMotion(coefficients: c), tau = 1.0
        let moved = motion.applied(p, at: tau)
        let yaw = 0.25 * 2 * Double.pi * 0.5, s = Foundation.exp(0.1)
        let (cy, sy) = (Foundation.cos(yaw), Foundation.sin(yaw))
        for i in 0..<p.count {
            let (x, y, z) = (p.means[3 * i], p.means[3 * i + 1], p.means[3 * i + 2])
            let ex: Double = s * (cy * x + sy * z), ez: Double = s * (cy * z - sy * x), ey: Double = s * y + 0.3
            #expect(abs(moved.means[3 * i] - ex) < 1e-12)
            #expect(abs(moved.means[3 * i + 1] - ey) < 1e-12)
            #expect(abs(moved.means[3 * i + 2] - ez) < 1e-12)
            #expect(abs(moved.logScales[3 * i] - (p.logScales[3 * i] + 0.1)) < 1e-12)
        }
        // The Gaussians' orientations turn with the object: R(q') = R_object · R(q).
        let general = Self.randomMotion(seed: 5)
        let t = general.transform(at: 0.3)
        let turned = general.applied(p, at: 0.3)
        for i in 0..<p.count {
            let before = Self.matrix(Array(p.rotations[(4 * i)..<(4 * i + 4)])), after = Self.matrix(Array(turned.rotations[(4 * i)..<(4 * i + 4)]))
            let expected = ObjectMotion<Double>.multiply(t.rotation, before)
            #expect(zip(after, expected).allSatisfy { abs($0 - $1) < 1e-12 })
        }
    }

    /// The rotation matrix of a (not necessarily unit) quaternion (w, x, y, z), row-major.
    static func matrix(_ q: [Double]) -> [Double] {
        let n = (q.map { $0 * $0 }.reduce(0, +)).squareRoot()
        let (w, x, y, z) = (q[0] / n, q[1] / n, q[2] / n, q[3] / n)
        return [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    }

    @Test("render ∘ object motion: gradients of the coefficients and of the cloud match float64 central differences", arguments: [0.0, 0.37, 0.81])
    func gradients(tau: Double) {
        let (p, camera) = randomSplatScene(count: 8, shDegree: 0, seed: 21)
        let motion = Self.randomMotion(seed: 22, scale: 0.2)
        let settings = SplatRenderSettings(background: SIMD3(0.3, 0.6, 0.9))
        let loss = WeightedLoss(pixels: camera.width * camera.height, seed: 23)
        func value(_ m: ObjectMotion<Double>, _ q: SplatParameters<Double>) -> Double {
            loss.value(SplatReference.render(m.applied(q, at: tau), camera: camera, settings: settings))
        }
        let g = SplatReference.backward(motion.applied(p, at: tau), camera: camera, settings: settings, gradients: loss.gradients(as: Double.self))
        let (input, motionGradient) = ObjectMotion<Double>.backward(g.parameters, input: p, motion: motion, at: tau)
        let eps = 1e-6
        var worst = (error: 0.0, name: ""), nonzero = 0
        func compare(_ name: String, _ analytic: Double, _ edit: (inout ObjectMotion<Double>, inout SplatParameters<Double>, Double) -> Void) {
            var m1 = motion, p1 = p, m2 = motion, p2 = p
            edit(&m1, &p1, eps); edit(&m2, &p2, -eps)
            let numeric = (value(m1, p1) - value(m2, p2)) / (2 * eps)
            if abs(numeric) > 1e-6 { nonzero += 1 }
            let error = abs(analytic - numeric) / max(1e-2, abs(numeric))
            if error > worst.error { worst = (error, "\(name): analytic \(analytic), numeric \(numeric)") }
        }
        for e in motion.coefficients.indices { compare("coefficient[\(e)]", motionGradient.coefficients[e]) { m, _, h in m.coefficients[e] += h } }
        for e in p.means.indices { compare("means[\(e)]", input.means[e]) { _, q, h in q.means[e] += h } }
        for e in p.rotations.indices { compare("rotations[\(e)]", input.rotations[e]) { _, q, h in q.rotations[e] += h } }
        for e in p.logScales.indices { compare("logScales[\(e)]", input.logScales[e]) { _, q, h in q.logScales[e] += h } }
        #expect(worst.error < 1e-4, "worst \(worst.name)")
        #expect(nonzero > 40)
    }
}
