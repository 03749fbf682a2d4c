import KilnCore
import Testing
@testable import KilnRender

@Suite("Splat motion bases (4D)")
struct SplatMotionTests {
    static func randomMotion(count: Int, seed: UInt64, scale: Float = 0.1) -> SplatMotion<Double> {
        var rng = RNG(seed: seed)
        let k = SplatMotion<Double>.basisCount
        func values(_ n: Int) -> [Double] { (0..<n).map { _ in Double(rng.uniform(-scale...scale)) } }
        return SplatMotion(position: values(count * k * 3), rotation: values(count * k * 4), logScale: values(count * k * 3))
    }

    @Test("bases, identity without motion, gathering, and float32 against float64")
    func basics() {
        #expect(SplatMotion<Double>.basis(0) == [-0.5, 0, 0, 0, 0])
        let b = SplatMotion<Double>.basis(0.25)
        #expect(abs(b[0] + 0.25) < 1e-12 && abs(b[1] - 1) < 1e-12 && abs(b[2] + 1) < 1e-12 && abs(b[3]) < 1e-12 && abs(b[4] + 2) < 1e-12)
        let (p, _) = randomSplatScene(count: 6, shDegree: 1, seed: 3)
        #expect(SplatMotion<Double>(zerosFor: 6).deformed(p, at: 0.7) == p)
        let motion = Self.randomMotion(count: 6, seed: 4)
        // A literal reading of the formula for one Gaussian and one coordinate of each kind.
        let tau = 0.37, at = motion.deformed(p, at: tau), basis = SplatMotion<Double>.basis(tau), k = 5
        let i = 4
        #expect(abs(at.means[3 * i + 1] - (p.means[3 * i + 1] + (0..<k).map { basis[$0] * motion.position[(i * k + $0) * 3 + 1] }.reduce(0, +))) < 1e-12)
        #expect(abs(at.rotations[4 * i + 3] - (p.rotations[4 * i + 3] + (0..<k).map { basis[$0] * motion.rotation[(i * k + $0) * 4 + 3] }.reduce(0, +))) < 1e-12)
        #expect(abs(at.logScales[3 * i] - (p.logScales[3 * i] + (0..<k).map { basis[$0] * motion.logScale[(i * k + $0) * 3] }.reduce(0, +))) < 1e-12)
        #expect(at.opacityLogits == p.opacityLogits && at.sh == p.sh)
        // Gathering follows the Gaussians: the gathered motion of a gathered cloud is the same cloud.
        let picked = motion.gathered([5, 0, 0])
        #expect(picked.count == 3 && Array(picked.position[0..<15]) == Array(motion.position[75..<90]) && picked.rotation[20..<40] == picked.rotation[40..<60])
        // float32 follows float64.
        let fast = motion.converted(to: Float.self).deformed(p.converted(to: Float.self), at: Float(tau))
        let worst = zip(fast.means + fast.rotations + fast.logScales, at.means + at.rotations + at.logScales).map { abs(Double($0) - $1) }.max()!
        #expect(worst < 1e-5, "worst \(worst)")
    }

    @Test("render ∘ deform: gradients of motion coefficients and canonical parameters match float64 central differences", arguments: [0.0, 0.37, 0.81])
    func gradients(tau: Double) {
        let (p, camera) = randomSplatScene(count: 8, shDegree: 1, seed: 11)
        let motion = Self.randomMotion(count: 8, seed: 12)
        let settings = SplatRenderSettings(background: SIMD3(0.3, 0.6, 0.9))
        let loss = WeightedLoss(pixels: camera.width * camera.height, seed: 13)
        func value(_ m: SplatMotion<Double>, _ q: SplatParameters<Double>) -> Double {
            loss.value(SplatReference.render(m.deformed(q, at: tau), camera: camera, settings: settings))
        }
        let g = SplatReference.backward(motion.deformed(p, at: tau), camera: camera, settings: settings, gradients: loss.gradients(as: Double.self))
        let (canonical, motionGradient) = SplatMotion<Double>.backward(g.parameters, at: tau)
        let eps = 1e-6
        var worst = (error: 0.0, name: "")
        func compare(_ name: String, _ analytic: Double, _ edit: (inout SplatMotion<Double>, inout SplatParameters<Double>, Double) -> Void) {
            var m1 = motion, p1 = p, m2 = motion, p2 = p
            edit(&m1, &p1, eps); edit(&m2, &p2, -eps)
            let numeric = (value(m1, p1) - value(m2, p2)) / (2 * eps)
            let error = abs(analytic - numeric) / max(1e-2, abs(numeric))
            if error > worst.error { worst = (error, "\(name): analytic \(analytic), numeric \(numeric)") }
        }
        for e in motion.position.indices { compare("position[\(e)]", motionGradient.position[e]) { m, _, h in m.position[e] += h } }
        for e in motion.rotation.indices { compare("rotation[\(e)]", motionGradient.rotation[e]) { m, _, h in m.rotation[e] += h } }
        for e in motion.logScale.indices { compare("logScale[\(e)]", motionGradient.logScale[e]) { m, _, h in m.logScale[e] += h } }
        for e in p.means.indices { compare("means[\(e)]", canonical.means[e]) { _, q, h in q.means[e] += h } }
        for e in p.rotations.indices { compare("rotations[\(e)]", canonical.rotations[e]) { _, q, h in q.rotations[e] += h } }
        for e in p.logScales.indices { compare("logScales[\(e)]", canonical.logScales[e]) { _, q, h in q.logScales[e] += h } }
        #expect(worst.error < 1e-4, "worst \(worst.name)")
        // At τ = 0 only the drift basis is non-zero, so most coefficients get no gradient.
        if tau == 0 { #expect(motionGradient.position.enumerated().allSatisfy { $0.offset % 15 < 3 || $0.element == 0 }) }
    }
}

extension SplatMotionTests {
    @Test("rigidity: zero for a cloud moving as one piece; its gradient matches float64 central differences")
    func rigidity() {
        let motion = Self.randomMotion(count: 7, seed: 21)
        let neighbours = NeighbourTable(k: 2, count: 7, indices: [1, 2, 0, 2, 0, 3, 2, 4, 3, 5, 4, 6, 5, 4])
        let (loss, gradient) = motion.rigidity(neighbours: neighbours, weight: 0.7)
        #expect(loss > 0)
        let eps = 1e-6
        for e in motion.position.indices {
            var up = motion, down = motion
            up.position[e] += eps; down.position[e] -= eps
            let numeric = (up.rigidity(neighbours: neighbours, weight: 0.7).loss - down.rigidity(neighbours: neighbours, weight: 0.7).loss) / (2 * eps)
            #expect(abs(numeric - gradient[e]) < 1e-6 * max(1, abs(numeric)), "position[\(e)]: \(numeric) vs \(gradient[e])")
        }
        // Every Gaussian with the same coefficients: no loss, no gradient.
        var rigid = motion
        for i in 0..<7 { for e in 0..<15 { rigid.position[i * 15 + e] = motion.position[e] } }
        let still = rigid.rigidity(neighbours: neighbours, weight: 0.7)
        #expect(still.loss == 0 && still.positionGradient.allSatisfy { $0 == 0 })
    }
}
