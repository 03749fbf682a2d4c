import Foundation
import KilnCore
import KilnRender

/// Which cells of the field's box may hold density (nerfacc/Instant-NGP occupancy grid): samples
/// in empty cells are skipped without evaluating the field. Each cell keeps a decaying maximum of
/// the density seen at a random point in it; a cell is occupied while that exceeds the threshold.
public struct OccupancyGrid: Sendable, Equatable {
    public let resolution: Int
    public var density: [Float]
    public var threshold: Float

    public init(resolution: Int = 48, threshold: Float = 0.01) {
        self.resolution = resolution
        density = [Float](repeating: .infinity, count: resolution * resolution * resolution)  // everything may be occupied at first
        self.threshold = threshold
    }

    /// The cell of a unit-cube point, or nil outside the cube.
    @inline(__always) func cell(_ u: SIMD3<Float>) -> Int? {
        guard u.x >= 0, u.y >= 0, u.z >= 0, u.x < 1, u.y < 1, u.z < 1 else { return nil }
        let r = Float(resolution)
        return (Int(u.z * r) * resolution + Int(u.y * r)) * resolution + Int(u.x * r)
    }

    public func occupied(unit u: SIMD3<Float>) -> Bool { cell(u).map { density[$0] > threshold } ?? false }

    public var occupiedFraction: Double { Double(density.filter { $0 > threshold }.count) / Double(density.count) }

    /// Re-measures every cell at one random point: d ← max(decay·d, σ(point)).
    public mutating func update(_ field: NeRFField, decay: Float = 0.95, rng: inout RNG, threads: Int = Parallel.defaultThreadCount) {
        let r = resolution
        var points = [Float](repeating: 0, count: 3 * r * r * r)
        for k in 0..<r { for j in 0..<r { for i in 0..<r {
            let c = (k * r + j) * r + i
            let u = (SIMD3(Float(i), Float(j), Float(k)) + SIMD3(rng.nextFloat(), rng.nextFloat(), rng.nextFloat())) / Float(r)
            let world = field.center + (u - 0.5) * 2 * field.halfSize
            points[3 * c] = world.x; points[3 * c + 1] = world.y; points[3 * c + 2] = world.z
        } } }
        let sigma = field.forward(points: points, threads: threads).sigma
        for c in 0..<density.count {
            let previous = density[c].isFinite ? decay * density[c] : 0
            density[c] = max(previous, sigma[c])
        }
    }
}

/// Renders a `NeRFField` from a camera by ray marching: per pixel a ray through its centre,
/// clipped to the field's box, `samplesPerRay` stratified samples (jittered when training),
/// samples in empty occupancy cells skipped, then `VolumeRendering` over a background colour.
public struct NeRFRenderer: Sendable {
    public var samplesPerRay: Int

    public init(samplesPerRay: Int = 64) { self.samplesPerRay = samplesPerRay }

    /// A render and what its backward pass needs.
    public struct Frame {
        public var width: Int, height: Int
        /// `[H, W, 3]` colour, `[H, W]` alpha and accumulated depth.
        public var color: [Float] { output.color }
        public var alpha: [Float] { output.alpha }
        public var depth: [Float] { output.depth }
        var output: VolumeRendering.Output
        var sigmas: [Float], colors: [Float], t: [Float], deltas: [Float]
        /// Flat sample indices the field was evaluated at, and its saved state for them.
        var evaluated: [Int32]
        var saved: NeRFField.Saved?
        var background: SIMD3<Float>
        /// Samples evaluated / samples on rays through the box.
        public var evaluatedSamples: Int { evaluated.count }
    }

    public func render(_ field: NeRFField, camera: Camera, background: SIMD3<Float>, occupancy: OccupancyGrid?, jitter: RNG? = nil,
                       threads: Int = Parallel.defaultThreadCount) -> Frame {
        let w = camera.width, h = camera.height, s = samplesPerRay, rays = w * h
        var t = [Float](repeating: 0, count: rays * s), deltas = [Float](repeating: 0, count: rays * s)
        var points: [Float] = [], evaluated: [Int32] = []
        points.reserveCapacity(3 * rays * s)
        evaluated.reserveCapacity(rays * s)
        var rng = jitter
        let lo = field.center - field.halfSize, hi = field.center + field.halfSize
        let toUnit = 1 / (2 * field.halfSize)
        for y in 0..<h {
            for x in 0..<w {
                let (origin, direction) = camera.ray(pixelX: x, pixelY: y)
                guard let (near, far) = rayBoxIntersection(origin: origin, direction: direction, lo: lo, hi: hi) else { continue }
                let ray = y * w + x
                let step = (far - near) / Float(s)
                for i in 0..<s {
                    var u: Float = 0.5
                    if rng != nil { u = rng!.nextFloat() }
                    let ti = near + (Float(i) + u) * step
                    let p = origin + ti * direction
                    let k = ray * s + i
                    t[k] = ti
                    deltas[k] = step
                    if let occupancy, !occupancy.occupied(unit: (p - field.center) * toUnit + 0.5) { continue }
                    points.append(p.x); points.append(p.y); points.append(p.z)
                    evaluated.append(Int32(k))
                }
            }
        }
        var sigmas = [Float](repeating: 0, count: rays * s), colors = [Float](repeating: 0, count: 3 * rays * s)
        var saved: NeRFField.Saved? = nil
        if !evaluated.isEmpty {
            let result = field.forward(points: points, threads: threads)
            for (j, k) in evaluated.enumerated() {
                sigmas[Int(k)] = result.sigma[j]
                for c in 0..<3 { colors[3 * Int(k) + c] = result.color[3 * j + c] }
            }
            saved = result
        }
        let output = VolumeRendering.forward(sigmas: sigmas, colors: colors, t: t, deltas: deltas, samplesPerRay: s, background: background, threads: threads)
        return Frame(width: w, height: h, output: output, sigmas: sigmas, colors: colors, t: t, deltas: deltas, evaluated: evaluated, saved: saved,
                     background: background)
    }

    /// Adds the field's parameter gradients for a loss with gradient `dColor [H, W, 3]` (and
    /// optionally `dAlpha [H, W]`) on the frame.
    public func backward(_ frame: Frame, field: NeRFField, dColor: [Float], dAlpha: [Float]? = nil, threads: Int = Parallel.defaultThreadCount) {
        guard let saved = frame.saved else { return }
        let g = VolumeRendering.backward(sigmas: frame.sigmas, colors: frame.colors, t: frame.t, deltas: frame.deltas, samplesPerRay: samplesPerRay,
                                         background: frame.background, output: frame.output, dColor: dColor, dAlpha: dAlpha, threads: threads)
        var dSigma = [Float](repeating: 0, count: frame.evaluated.count), dRGB = [Float](repeating: 0, count: 3 * frame.evaluated.count)
        for (j, k) in frame.evaluated.enumerated() {
            dSigma[j] = g.dSigmas[Int(k)]
            for c in 0..<3 { dRGB[3 * j + c] = g.dColors[3 * Int(k) + c] }
        }
        field.backward(saved, dSigma: dSigma, dColor: dRGB, threads: threads)
    }
}

extension NeRFRenderer {
    /// The density level for extracting the field's surface (`SurfaceLevel`): the σ whose level set
    /// has the field's own silhouettes from `cameras`, a ray's peak being the largest σ among its
    /// samples. σ = 10 kept only a snowman's dense hat.
    /// - Returns: the level, its IoU, and the levels tried with theirs.
    public func surfaceLevel(_ field: NeRFField, cameras: [Camera], threads: Int = Parallel.defaultThreadCount)
        -> (level: Float, iou: Double, tried: [(level: Float, iou: Double)]) {
        var peaks: [Float] = [], opaque: [Bool] = []
        for camera in cameras {
            let frame = render(field, camera: camera, background: .zero, occupancy: nil, threads: threads)
            let s = samplesPerRay
            for ray in 0..<(camera.width * camera.height) {
                opaque.append(frame.alpha[ray] >= 0.5)
                var peak: Float = 0
                for i in 0..<s { peak = max(peak, frame.sigmas[ray * s + i]) }
                peaks.append(peak)
            }
        }
        // 49 levels, log-spaced over 0.01…1000 (σ is capped at e¹⁵).
        return SurfaceLevel.best(peaks: peaks, opaque: opaque, candidates: SurfaceLevel.candidates(from: 0.01, to: 1000, count: 49))
    }
}
