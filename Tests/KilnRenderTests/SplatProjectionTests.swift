import KilnCore
import Testing
@testable import KilnRender

/// The fast projection (Σ2D = U Uᵀ, inline exponential) against `SplatProjectionReference` (the
/// full 3×3 products, libm), forward outputs and backward gradients, on random Gaussians.
@Suite("Splat projection against its plain reference")
struct SplatProjectionTests {
    /// Gaussians of `randomSplatScene` plus some stretched, tiny, large, off-centre and behind the
    /// camera, so the clamped Jacobian, the culling and the antialiasing branch are all reached.
    func scene(degree: Int, seed: UInt64) -> (SplatParameters<Double>, Camera) {
        var (p, camera) = randomSplatScene(count: 400, shDegree: degree, seed: seed, width: 40, height: 32)
        var rng = RNG(seed: seed + 100)
        let right = camera.right, forward = camera.forward
        for i in 0..<p.count {
            switch i % 8 {
            case 1: p.logScales[3 * i + Int(rng.next() % 3)] += 2.5  // needle or pancake
            case 2: for a in 0..<3 { p.logScales[3 * i + a] -= 4 }  // below the low-pass
            case 3: for a in 0..<3 { p.means[3 * i + a] += Double(right[a]) * 1.8; p.logScales[3 * i + a] += 1.2 }  // clamped J
            case 4: for a in 0..<3 { p.means[3 * i + a] -= Double(forward[a]) * 2.4 }  // near or behind the camera
            case 5: for a in 0..<4 { p.rotations[4 * i + a] = 0 }  // a zero quaternion
            case 6: for a in 0..<3 { p.logScales[3 * i + a] += 1.5 }  // large
            default: break
            }
        }
        return (p, camera)
    }

    /// One implementation's outputs on every Gaussian: visibility, radius, and per visible Gaussian
    /// its projection and its parameter gradients for a random output gradient, as named groups
    /// of values (a group's error is relative to its largest reference value).
    struct Outputs {
        var visible: [Bool] = [], radius: [Int] = []
        var groups: [String: [Double]] = [:]
    }

    func outputs<R>(fast: Bool, _ p: SplatParameters<R>, camera: Camera, settings: SplatRenderSettings, degree: Int, seed: UInt64) -> Outputs {
        let cam = SplatCamera<R>(camera)
        var basis = [R](repeating: 0, count: 16)
        var rng = RNG(seed: seed)
        var out = Outputs()
        var grad = SplatParameters<R>(zerosLike: p.count, shDegree: p.shDegree)
        func add(_ name: String, _ values: [R]) { out.groups[name, default: []] += values.map { Double($0) } }
        for i in 0..<p.count {
            let f = fast ? SplatProjection.project(i, p, camera: cam, settings: settings, degree: degree, basis: &basis)
                : SplatProjectionReference.project(i, p, camera: cam, settings: settings, degree: degree, basis: &basis)
            out.visible.append(f.visible); out.radius.append(f.radius)
            var g = ProjectedGradient<R>()
            g.meanX = R(rng.uniform(-1...1)); g.meanY = R(rng.uniform(-1...1))
            g.conicA = R(rng.uniform(-1...1)); g.conicB = R(rng.uniform(-1...1)); g.conicC = R(rng.uniform(-1...1))
            g.depth = R(rng.uniform(-1...1)); g.opacity = R(rng.uniform(-1...1))
            g.red = R(rng.uniform(-1...1)); g.green = R(rng.uniform(-1...1)); g.blue = R(rng.uniform(-1...1))
            guard f.visible else { continue }
            add("mean \(i)", [f.meanX, f.meanY]); add("conic \(i)", [f.conicA, f.conicB, f.conicC])
            add("depth, opacity, colour \(i)", [f.depth, f.opacity, f.red, f.green, f.blue])
            if fast {
                SplatProjection.backward(i, p, camera: cam, settings: settings, degree: degree, g: g, grad: &grad, basis: &basis)
            } else {
                SplatProjectionReference.backward(i, p, camera: cam, settings: settings, degree: degree, g: g, grad: &grad, basis: &basis)
            }
            let k = 3 * p.coefficientsPerChannel
            add("means \(i)", Array(grad.means[(3 * i)..<(3 * i + 3)])); add("logScales \(i)", Array(grad.logScales[(3 * i)..<(3 * i + 3)]))
            add("rotations \(i)", Array(grad.rotations[(4 * i)..<(4 * i + 4)])); add("opacityLogits \(i)", [grad.opacityLogits[i]])
            add("sh \(i)", Array(grad.sh[(k * i)..<(k * i + k)]))
        }
        return out
    }

    /// The worst error of `a` against `reference` over all groups (relative to each group's
    /// largest reference value, at least `floor`), and where.
    func worst(_ a: Outputs, _ reference: Outputs, floor: Double = 1e-6) -> (error: Double, group: String) {
        var worst = (error: 0.0, group: "")
        for (name, ref) in reference.groups {
            guard let values = a.groups[name], values.count == ref.count else { return (.infinity, "\(name) missing") }
            let scale = max(floor, ref.map(abs).max() ?? 0)
            for k in ref.indices where abs(values[k] - ref[k]) / scale > worst.error { worst = (abs(values[k] - ref[k]) / scale, name) }
        }
        return worst
    }

    /// How many visible Gaussians have a centre outside the Jacobian's clamp.
    func clampedCount(_ p: SplatParameters<Double>, camera: Camera, settings: SplatRenderSettings) -> Int {
        let cam = SplatCamera<Double>(camera)
        return (0..<p.count).filter { i in
            guard let f = SplatProjection.Footprint(i, p, camera: cam, near: settings.nearPlane) else { return false }
            return f.jacobian.derivativeX02.0 == 0 || f.jacobian.derivativeY12.0 == 0  // the clamped branch has no x (y) derivative
        }.count
    }

    @Test("Float64: forward and backward within 1e-9 of the reference, SH degrees 0–3, plain and antialiased", arguments: [0, 1, 2, 3])
    func double(degree: Int) {
        let (p, camera) = scene(degree: degree, seed: UInt64(40 + degree))
        for settings in [SplatRenderSettings(), SplatRenderSettings(antialiased: true)] {
            let fast = outputs(fast: true, p, camera: camera, settings: settings, degree: degree, seed: 1)
            let reference = outputs(fast: false, p, camera: camera, settings: settings, degree: degree, seed: 1)
            #expect(fast.visible == reference.visible && fast.radius == reference.radius)
            let visible = reference.visible.filter { $0 }.count
            #expect(visible >= p.count / 2 && visible < p.count, "\(visible) of \(p.count) visible: the scene must show and cull")
            #expect(clampedCount(p, camera: camera, settings: settings) > 0, "no centre outside the clamp")
            let (error, group) = worst(fast, reference)
            #expect(error < 1e-9, "worst \(group): relative error \(error)")
        }
    }

    @Test("Float32 (the inline exponential): against the float64 reference, no worse than the reference in float32", arguments: [0, 3])
    func float(degree: Int) {
        let (p, camera) = scene(degree: degree, seed: UInt64(50 + degree))
        let p32 = p.converted(to: Float.self)
        for settings in [SplatRenderSettings(), SplatRenderSettings(antialiased: true)] {
            let exact = outputs(fast: false, p, camera: camera, settings: settings, degree: degree, seed: 3)
            let fast = outputs(fast: true, p32, camera: camera, settings: settings, degree: degree, seed: 3)
            let reference32 = outputs(fast: false, p32, camera: camera, settings: settings, degree: degree, seed: 3)
            // Visibility can flip only where float32 rounding flips it for the reference too.
            #expect(fast.visible == reference32.visible)
            var exactVisible = exact
            exactVisible.groups = exact.groups.filter { fast.groups[$0.key] != nil }
            let fastError = worst(fast, exactVisible), referenceError = worst(reference32, exactVisible)
            #expect(fastError.error <= 2 * referenceError.error + 1e-6,
                    "fast \(fastError.error) at \(fastError.group); the reference in float32 \(referenceError.error) at \(referenceError.group)")
            #expect(fastError.error < 1e-2, "fast \(fastError.error) at \(fastError.group)")
        }
    }
}
