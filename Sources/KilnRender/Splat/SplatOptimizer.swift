import KilnCore
import RealModule

/// Learning rates and density-control schedule, 3DGS defaults (graphdeco-inria `arguments`).
public struct SplatTrainingConfig: Codable, Sendable, Equatable {
    /// Position learning rate at step 0 and at `positionDecaySteps`, times the scene extent;
    /// log-linear in between (3DGS `get_expon_lr_func`, no delay).
    public var positionLRInitial: Float = 0.00016
    public var positionLRFinal: Float = 0.0000016
    public var positionDecaySteps: Int = 30_000
    public var featureLR: Float = 0.0025
    /// Higher SH coefficients learn 20× slower than the DC term.
    public var restFeatureLRDivisor: Float = 20
    public var opacityLR: Float = 0.05
    public var scalingLR: Float = 0.005
    public var rotationLR: Float = 0.001
    public var beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-15

    public var densifyFrom: Int = 500
    public var densifyUntil: Int = 15_000
    public var densifyEvery: Int = 100
    /// View-space (NDC) positional gradient norm above which a Gaussian is cloned or split.
    public var densifyGradientThreshold: Float = 0.0002
    /// A Gaussian whose largest scale exceeds this fraction of the extent is split, else cloned.
    public var percentDense: Float = 0.01
    public var opacityResetEvery: Int = 3_000
    public var pruneOpacity: Float = 0.005
    /// Prune Gaussians larger than this fraction of the extent (world space).
    public var pruneScaleFraction: Float = 0.1
    public var maxGaussians: Int = 1_000_000

    public init() {}

    /// DreamGaussian-style settings for short text-to-3D runs (densify every 50 from step 100).
    public static let short: SplatTrainingConfig = {
        var c = SplatTrainingConfig()
        c.positionDecaySteps = 1_000
        c.densifyFrom = 100
        c.densifyUntil = 700
        c.densifyEvery = 50
        c.opacityResetEvery = 0
        return c
    }()
}

/// Adam over Gaussian parameters with per-group learning rates (KilnCore's `AdamW`, in its
/// `.float32` arithmetic), plus 3DGS adaptive density control (clone, split, prune, opacity reset)
/// whose renumbering of the Gaussians is a `SplatDensification`. Deterministic for a seed.
public struct SplatOptimizer: Sendable {
    public var config: SplatTrainingConfig
    /// Scene extent (radius) used to scale the position learning rate and the size thresholds.
    public var extent: Float
    public private(set) var step = 0
    /// Adam moments, same layout as the parameters.
    var m: SplatParameters<Float>
    var v: SplatParameters<Float>
    /// Accumulated view-space gradient norms and how many times each Gaussian was visible.
    var gradientAccumulator: [Float]
    var visibleCount: [Int32]
    public var rng: RNG
    /// After a step that densified, how it renumbered the Gaussians; nil after a step that did
    /// not. Per-Gaussian state kept outside the optimiser (motion) follows it.
    public private(set) var lastDensification: SplatDensification? = nil

    public init(parameters p: SplatParameters<Float>, extent: Float, config: SplatTrainingConfig = SplatTrainingConfig(), seed: UInt64 = 0) {
        self.config = config
        self.extent = extent
        m = SplatParameters(zerosLike: p.count, shDegree: p.shDegree)
        v = SplatParameters(zerosLike: p.count, shDegree: p.shDegree)
        gradientAccumulator = [Float](repeating: 0, count: p.count)
        visibleCount = [Int32](repeating: 0, count: p.count)
        rng = RNG(seed: seed)
    }

    /// Everything besides the configuration that the next steps depend on: the step count, the
    /// Adam moments, the densification statistics and the RNG. A checkpoint that stores it (and
    /// the parameters) resumes bit-identically.
    public struct State: Sendable, Equatable {
        public var step: Int
        public var firstMoments: SplatParameters<Float>
        public var secondMoments: SplatParameters<Float>
        public var gradientAccumulator: [Float]
        public var visibleCount: [Int32]
        public var rng: RNG

        public init(step: Int, firstMoments: SplatParameters<Float>, secondMoments: SplatParameters<Float>, gradientAccumulator: [Float],
                    visibleCount: [Int32], rng: RNG) {
            (self.step, self.firstMoments, self.secondMoments) = (step, firstMoments, secondMoments)
            (self.gradientAccumulator, self.visibleCount, self.rng) = (gradientAccumulator, visibleCount, rng)
        }
    }

    public var state: State {
        State(step: step, firstMoments: m, secondMoments: v, gradientAccumulator: gradientAccumulator, visibleCount: visibleCount, rng: rng)
    }

    /// An optimiser that continues from `state`.
    public init(state: State, extent: Float, config: SplatTrainingConfig) {
        precondition(state.firstMoments.count == state.secondMoments.count && state.gradientAccumulator.count == state.firstMoments.count
                     && state.visibleCount.count == state.firstMoments.count, "SplatOptimizer.State: inconsistent sizes")
        self.config = config
        self.extent = extent
        step = state.step
        m = state.firstMoments
        v = state.secondMoments
        gradientAccumulator = state.gradientAccumulator
        visibleCount = state.visibleCount
        rng = state.rng
    }

    /// The position learning rate at the current step.
    public var positionLearningRate: Float {
        let t = min(1, Float(step) / Float(max(1, config.positionDecaySteps)))
        return Float.exp(Float.log(config.positionLRInitial) * (1 - t) + Float.log(config.positionLRFinal) * t) * extent
    }

    /// Records densification statistics from one view's backward pass.
    /// - Parameter meanPixels: `[N, 2]` gradient w.r.t. projected centres (pixels).
    public mutating func record(meanPixels: [Float], radii: [Int32], width: Int, height: Int) {
        // d/dNDC = d/dpixel · (size / 2), as 3DGS measures the screen-space gradient.
        let sx = Float(width) / 2, sy = Float(height) / 2
        for i in 0..<radii.count where radii[i] > 0 {
            let gx = meanPixels[2 * i] * sx, gy = meanPixels[2 * i + 1] * sy
            gradientAccumulator[i] += (gx * gx + gy * gy).squareRoot()
            visibleCount[i] += 1
        }
    }

    /// One Adam step on `p` with gradients `g`, then density control when the schedule says so.
    public mutating func step(_ p: inout SplatParameters<Float>, gradients g: SplatParameters<Float>) {
        precondition(g.count == p.count, "gradients are for \(g.count) Gaussians, parameters have \(p.count)")
        step += 1
        lastDensification = nil
        let c = config
        let k = p.coefficientsPerChannel
        let adam = AdamW(beta1: Double(c.beta1), beta2: Double(c.beta2), eps: Double(c.epsilon), arithmetic: .float32)
        func update(_ values: inout [Float], _ grads: [Float], _ m: inout [Float], _ v: inout [Float], _ scalars: (Int) -> AdamW.Step) {
            // A non-finite gradient leaves the parameter (and its moments) alone.
            for i in values.indices where grads[i].isFinite { scalars(i).update(&values[i], gradient: grads[i], m: &m[i], v: &v[i]) }
        }
        func rate(_ learningRate: Float) -> AdamW.Step { adam.step(step, learningRate: Double(learningRate)) }
        let position = rate(positionLearningRate), scaling = rate(c.scalingLR), rotation = rate(c.rotationLR), opacity = rate(c.opacityLR)
        let feature = rate(c.featureLR), restFeature = rate(c.featureLR / c.restFeatureLRDivisor)
        update(&p.means, g.means, &m.means, &v.means) { _ in position }
        update(&p.logScales, g.logScales, &m.logScales, &v.logScales) { _ in scaling }
        update(&p.rotations, g.rotations, &m.rotations, &v.rotations) { _ in rotation }
        update(&p.opacityLogits, g.opacityLogits, &m.opacityLogits, &v.opacityLogits) { _ in opacity }
        update(&p.sh, g.sh, &m.sh, &v.sh) { i in (i % (3 * k)) < 3 ? feature : restFeature }

        if step >= c.densifyFrom, step <= c.densifyUntil, c.densifyEvery > 0, step % c.densifyEvery == 0 {
            Profiler.measure("densification") { densify(&p) }
        }
        if c.opacityResetEvery > 0, step % c.opacityResetEvery == 0, step <= c.densifyUntil {
            resetOpacity(&p)
        }
    }

    // MARK: - Density control

    /// Clones small, splits large high-gradient Gaussians; prunes transparent and huge ones.
    public mutating func densify(_ p: inout SplatParameters<Float>) {
        let n = p.count
        let c = config
        var clone: [Int] = [], split: [Int] = []
        for i in 0..<n where visibleCount[i] > 0 {
            let average = gradientAccumulator[i] / Float(visibleCount[i])
            guard average >= c.densifyGradientThreshold else { continue }
            let largest = Float.exp(max(p.logScales[3 * i], p.logScales[3 * i + 1], p.logScales[3 * i + 2]))
            if largest <= c.percentDense * extent { clone.append(i) } else { split.append(i) }
        }
        let room = max(0, c.maxGaussians - n)
        clone = Array(clone.prefix(room))
        split = Array(split.prefix(max(0, room - clone.count)))
        var keep = [Bool](repeating: true, count: n)
        var added: [(source: Int, mean: SIMD3<Float>, logScaleShift: Float)] = []
        for i in clone { added.append((i, SIMD3(p.means[3 * i], p.means[3 * i + 1], p.means[3 * i + 2]), 0)) }
        let shrink = Float.log(1.6)  // 3DGS: scale / (0.8 · 2)
        for i in split {
            // Two samples from the Gaussian itself replace it.
            let rotation = SplatProjection.rotationMatrix(i, p).m
            let s = SIMD3(Float.exp(p.logScales[3 * i]), Float.exp(p.logScales[3 * i + 1]), Float.exp(p.logScales[3 * i + 2]))
            for _ in 0..<2 {
                let local = SIMD3(rng.normal(), rng.normal(), rng.normal()) * s
                var offset = SIMD3<Float>.zero
                for a in 0..<3 { offset[a] = rotation[3 * a] * local.x + rotation[3 * a + 1] * local.y + rotation[3 * a + 2] * local.z }
                added.append((i, SIMD3(p.means[3 * i], p.means[3 * i + 1], p.means[3 * i + 2]) + offset, -shrink))
            }
            keep[i] = false
        }
        // Prune: transparent, or larger than a fraction of the scene.
        for i in 0..<n where keep[i] {
            let opacity = 1 / (1 + Float.exp(-p.opacityLogits[i]))
            let largest = Float.exp(max(p.logScales[3 * i], p.logScales[3 * i + 1], p.logScales[3 * i + 2]))
            if opacity < c.pruneOpacity || largest > c.pruneScaleFraction * extent { keep[i] = false }
        }
        rebuild(&p, keep: keep, added: added)
    }

    /// Caps every opacity at 0.01 (3DGS's periodic reset), zeroing its Adam moments.
    public mutating func resetOpacity(_ p: inout SplatParameters<Float>) {
        let cap = Float.log(0.01 / 0.99)
        for i in 0..<p.count where p.opacityLogits[i] > cap {
            p.opacityLogits[i] = cap
            m.opacityLogits[i] = 0
            v.opacityLogits[i] = 0
        }
    }

    /// Keeps the marked Gaussians (with their Adam state) and appends copies of `added` sources
    /// with new centres and shifted log-scales (fresh Adam state); resets the statistics.
    mutating func rebuild(_ p: inout SplatParameters<Float>, keep: [Bool], added: [(source: Int, mean: SIMD3<Float>, logScaleShift: Float)]) {
        let kept = keep.indices.filter { keep[$0] }
        let densification = SplatDensification(sources: kept + added.map(\.source), kept: kept.count)
        densification.carry(&p, moments: &m, &v)
        for (j, a) in zip(densification.added, added) {
            (p.means[3 * j], p.means[3 * j + 1], p.means[3 * j + 2]) = (a.mean.x, a.mean.y, a.mean.z)
            for e in (3 * j)..<(3 * j + 3) { p.logScales[e] += a.logScaleShift }
        }
        lastDensification = densification
        gradientAccumulator = [Float](repeating: 0, count: p.count)
        visibleCount = [Int32](repeating: 0, count: p.count)
    }
}
