import Foundation
import KilnCore
import KilnNN
import KilnRender
import RealModule

/// Gaussian splats as a distilled scene (DreamGaussian's stage 1): random points in a ball, the
/// tiled splat rasterizer, Adam with 3DGS density control.
public final class GaussianScene: DistilledScene {
    public let settings: GaussianSettings
    public let extent: Float
    public let threads: Int
    public internal(set) var parameters: SplatParameters<Float>
    public internal(set) var optimizer: SplatOptimizer
    /// The gradient accumulated over the step's views.
    var gradient: SplatParameters<Float>
    let steps: Int

    /// - Parameters:
    ///   - extent: the radius of the object ball (position learning rates and size thresholds scale with it).
    public init(settings: GaussianSettings, steps: Int, extent: Float, seed: UInt64, threads: Int = Parallel.defaultThreadCount) throws {
        try settings.validate()
        self.settings = settings
        self.extent = extent
        self.threads = threads
        self.steps = steps
        var rng = RNG(seed: seed)
        parameters = SplatFit.initialCloud(count: settings.initialGaussians, center: .zero, radius: settings.initialRadius, rng: &rng)
        if settings.shDegree > 0 {
            // The higher coefficients start at zero: the colour is the DC term's until they learn.
            let k = (settings.shDegree + 1) * (settings.shDegree + 1)
            var sh = [Float](repeating: 0, count: 3 * k * parameters.count)
            for i in 0..<parameters.count { for c in 0..<3 { sh[i * 3 * k + c] = parameters.sh[3 * i + c] } }
            parameters = SplatParameters(means: parameters.means, logScales: parameters.logScales, rotations: parameters.rotations,
                                         opacityLogits: parameters.opacityLogits, sh: sh, shDegree: settings.shDegree)
        }
        // Start from a light grey (SH DC 0 is colour 0.5) slightly more opaque than 3DGS's 0.1.
        for i in 0..<parameters.count { parameters.opacityLogits[i] = Float.log(0.3 / 0.7) }
        optimizer = SplatOptimizer(parameters: parameters, extent: extent, config: settings.optimizerConfig(steps: steps, extent: extent), seed: seed &+ 1)
        gradient = SplatParameters(zerosLike: parameters.count, shDegree: parameters.shDegree)
    }

    public func render(camera: Camera, time: Float?, step: Int, of steps: Int, background: SIMD3<Float>, rng: inout RNG) -> (color: [Float], frame: SplatFrame) {
        let render = SplatRenderSettings(background: background, activeSHDegree: settings.activeSHDegree(step: step, of: steps))
        let frame = SplatRasterizer.forward(parameters, camera: camera, settings: render, threads: threads)
        return (frame.images.color, frame)
    }

    public func preview(camera: Camera, time: Float?, background: SIMD3<Float>) -> [Float] {
        SplatRasterizer.forward(parameters, camera: camera, settings: SplatRenderSettings(background: background), threads: threads).images.color
    }

    public func accumulate(_ frame: SplatFrame, dColor: [Float]) {
        let dAlpha = settings.coverageGradient(alpha: frame.images.alpha)
        let back = SplatRasterizer.backward(frame, parameters, gradients: SplatImageGradients(color: dColor, alpha: dAlpha))
        optimizer.record(meanPixels: back.meanPixels, radii: frame.radii, width: frame.camera.width, height: frame.camera.height)
        add(back.parameters)
    }

    /// Adds a gradient of the parameters to the step's.
    func add(_ g: SplatParameters<Float>) {
        func add(_ a: inout [Float], _ b: [Float]) { for i in a.indices { a[i] += b[i] } }
        add(&gradient.means, g.means)
        add(&gradient.logScales, g.logScales)
        add(&gradient.rotations, g.rotations)
        add(&gradient.opacityLogits, g.opacityLogits)
        add(&gradient.sh, g.sh)
    }

    public var gradientIsFinite: Bool { gradient.groups.allSatisfy { $0.allSatisfy(\.isFinite) } }

    public func applyStep(step: Int, of steps: Int, rng: inout RNG) {
        if settings.regularized {
            // Added after the step's finite check: a term that overflows (a log scale past 88) is left out.
            Profiler.measure("regularisers") {
                _ = GaussianRegularizers.accumulate(parameters, into: &gradient, opacity: settings.opacityPenalty, scale: settings.scalePenalty,
                                                    color: settings.colorSmoothness, brightness: settings.colorSmoothnessBrightness,
                                                    penalty: settings.colorSmoothnessPenalty, edge: settings.colorSmoothnessEdge,
                                                    neighbours: settings.colorNeighbours, radius: extent, threads: threads)
            }
        }
        optimizer.step(&parameters, gradients: gradient)
        discardGradient()
    }

    public func discardGradient() { gradient = SplatParameters(zerosLike: parameters.count, shDegree: parameters.shDegree) }

    public var size: Int { parameters.count }

    // MARK: Checkpoints

    struct State: Codable {
        var optimizerStep: Int
        var optimizerRNG: RNG
        var shDegree: Int
        var gaussians: Int
    }

    static let groupNames = ["means", "log_scales", "rotations", "opacity_logits", "sh"]

    public func checkpoint(into tensors: inout SafeTensorsWriter) throws -> Data {
        let o = optimizer.state
        for (prefix, p) in [("", parameters), ("adam.m.", o.firstMoments), ("adam.v.", o.secondMoments)] {
            for (name, values) in zip(Self.groupNames, p.groups) { try tensors.add(prefix + name, shape: [values.count], values: values) }
        }
        try tensors.add("densify.gradient_sum", shape: [o.gradientAccumulator.count], values: o.gradientAccumulator)
        try tensors.add("densify.visible_count", shape: [o.visibleCount.count], values: o.visibleCount.map(Float.init))
        return try JSONEncoder().encode(State(optimizerStep: o.step, optimizerRNG: o.rng, shDegree: parameters.shDegree, gaussians: parameters.count))
    }

    public func restore(tensors file: SafeTensorsFile, state data: Data) throws {
        let state = try JSONDecoder().decode(State.self, from: data)
        guard (0...3).contains(state.shDegree), state.gaussians >= 0 else {
            throw DistillError.badCheckpoint("the checkpoint is inconsistent (SH degree \(state.shDegree), \(state.gaussians) Gaussians); start the run again without --resume")
        }
        let n = state.gaussians, k = 3 * (state.shDegree + 1) * (state.shDegree + 1)
        let sizes = [3 * n, 3 * n, 4 * n, n, k * n]
        func load(_ prefix: String) throws -> SplatParameters<Float> {
            let v = try zip(Self.groupNames, sizes).map { try file.expect(prefix + $0, shape: [$1]) }
            return SplatParameters(means: v[0], logScales: v[1], rotations: v[2], opacityLogits: v[3], sh: v[4], shDegree: state.shDegree)
        }
        let p = try load(""), m = try load("adam.m."), v = try load("adam.v.")
        let sums = try file.expect("densify.gradient_sum", shape: [n]), counts = try file.expect("densify.visible_count", shape: [n])
        parameters = p
        optimizer = SplatOptimizer(state: SplatOptimizer.State(step: state.optimizerStep, firstMoments: m, secondMoments: v, gradientAccumulator: sums,
                                                               visibleCount: counts.map { Int32($0) }, rng: state.optimizerRNG),
                                   extent: extent, config: settings.optimizerConfig(steps: steps, extent: extent))
        discardGradient()
    }
}
