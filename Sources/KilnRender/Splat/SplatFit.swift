import KilnCore
import RealModule

/// Reconstruction of a Gaussian cloud from posed images (photometric L1), the way 3DGS trains
/// from a capture, starting from random points in the region the cameras look at.
public struct SplatFit: Sendable {
    public struct View: Sendable {
        public var camera: Camera
        /// RGB target, values in [0, 1], the camera's size.
        public var image: Image
        public init(camera: Camera, image: Image) {
            self.camera = camera
            self.image = image
        }
    }

    public struct Options: Sendable {
        public var steps = 2_000
        public var initialGaussians = 5_000
        public var seed: UInt64 = 0
        public var background = SIMD3<Float>(1, 1, 1)
        public var threads = Parallel.defaultThreadCount
        public init() {}
    }

    /// The point nearest (least squares) to every camera's optical axis, and the radius of the
    /// region the cameras frame: mean distance · sin(fovY / 2) / 1.1.
    public static func subject(of cameras: [Camera]) -> (center: SIMD3<Float>, radius: Float) {
        var a = [Double](repeating: 0, count: 9), b = [Double](repeating: 0, count: 3)
        for c in cameras {
            let d = c.forward, o = c.position
            // Σ (I − d dᵀ) x = Σ (I − d dᵀ) o
            for r in 0..<3 {
                for k in 0..<3 {
                    let m = Double((r == k ? 1 : 0) - d[r] * d[k])
                    a[3 * r + k] += m
                    b[r] += m * Double(o[k])
                }
            }
        }
        let center: SIMD3<Float>
        let m = Mat3(rows: Vec3(Float(a[0]), Float(a[1]), Float(a[2])), Vec3(Float(a[3]), Float(a[4]), Float(a[5])), Vec3(Float(a[6]), Float(a[7]), Float(a[8])))
        if cameras.count >= 2, abs(m.determinant) > 1e-6 {
            center = m.inverse * Vec3(Float(b[0]), Float(b[1]), Float(b[2]))
        } else {
            center = cameras.first.map { $0.position + $0.forward * 2 } ?? .zero
        }
        let distance = cameras.map { length($0.position - center) }.reduce(0, +) / Float(max(1, cameras.count))
        let fov = cameras.first?.fovYRadians ?? 0.8
        return (center, max(1e-3, distance * Float.sin(fov / 2) / 1.1))
    }

    /// Random points in a ball: grey, 10% opaque, sized to their spacing.
    public static func initialCloud(count: Int, center: SIMD3<Float>, radius: Float, rng: inout RNG) -> SplatParameters<Float> {
        var p = SplatParameters<Float>(zerosLike: count, shDegree: 0)
        let spacing = radius * Float.pow(4 / (3 * Float(max(1, count))), 1.0 / 3.0)
        for i in 0..<count {
            var v = SIMD3<Float>(rng.normal(), rng.normal(), rng.normal())
            v /= max(1e-6, length(v))
            let r = radius * Float.pow(rng.nextFloat(), 1.0 / 3.0)
            for a in 0..<3 { p.means[3 * i + a] = center[a] + v[a] * r; p.logScales[3 * i + a] = Float.log(spacing) }
            p.rotations[4 * i] = 1
            p.opacityLogits[i] = Float.log(0.1 / 0.9)
        }
        return p
    }

    /// Fits a cloud to `views`; `progress(step, loss, gaussians)` is called every step.
    public static func fit(_ views: [View], options: Options, progress: (Int, Float, Int) -> Void = { _, _, _ in }) -> SplatParameters<Float> {
        precondition(!views.isEmpty, "fitting needs at least one view")
        var rng = RNG(seed: options.seed)
        let (center, radius) = subject(of: views.map(\.camera))
        var p = initialCloud(count: options.initialGaussians, center: center, radius: radius, rng: &rng)
        var config = SplatTrainingConfig()
        let steps = options.steps
        config.positionDecaySteps = steps
        config.densifyFrom = max(1, steps / 6)
        config.densifyUntil = steps * 2 / 3
        config.densifyEvery = max(1, steps / 30)
        config.opacityResetEvery = 0
        config.maxGaussians = 200_000
        var optimizer = SplatOptimizer(parameters: p, extent: radius, config: config, seed: options.seed &+ 1)
        let settings = SplatRenderSettings(background: options.background)
        var order: [Int] = []
        for step in 0..<steps {
            if order.isEmpty { order = Array(views.indices).shuffled(using: &rng) }
            let view = views[order.removeLast()]
            let frame = Profiler.measure("render forward") { SplatRasterizer.forward(p, camera: view.camera, settings: settings, threads: options.threads) }
            // L1: d|r − t| / dr = sign(r − t) / count.
            let target = view.image.pixels
            let scale = 1 / Float(target.count)
            var loss: Float = 0
            var d = [Float](repeating: 0, count: target.count)
            Profiler.measure("fit loss") {
                for i in target.indices {
                    let diff = frame.images.color[i] - target[i]
                    loss += abs(diff)
                    d[i] = diff > 0 ? scale : diff < 0 ? -scale : 0
                }
            }
            let g = Profiler.measure("render backward") { SplatRasterizer.backward(frame, p, gradients: SplatImageGradients(color: d)) }
            optimizer.record(meanPixels: g.meanPixels, radii: frame.radii, width: view.camera.width, height: view.camera.height)
            Profiler.measure("optimiser") { optimizer.step(&p, gradients: g.parameters) }
            progress(step + 1, loss * scale, p.count)
        }
        return p
    }
}
