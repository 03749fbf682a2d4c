/// A 3D Gaussian splat cloud in the parameterisation the optimiser sees (INRIA 3DGS).
///
/// World frame, units of the scene. For `N` Gaussians and SH degree `d` with `K = (d+1)²`
/// coefficients per colour channel:
/// - `means`: `[N]` centres;
/// - `logScales`: `[N]` per-axis log standard deviations (scale = exp);
/// - `rotations`: `[N]` quaternions stored (w, x, y, z) as `SIMD4(w, x, y, z)`, not necessarily
///   normalised (normalise before use);
/// - `opacityLogits`: `[N]` (opacity = sigmoid);
/// - `sh`: `[N, K, 3]` flattened, coefficient-major then RGB: `sh[(i * K + k) * 3 + c]`.
///   Coefficient 0 is the DC term; colour = max(0, Σ_k sh_k · Y_k(dir) + 0.5).
public struct GaussianCloud: Sendable, Equatable {
    public var means: [SIMD3<Float>]
    public var logScales: [SIMD3<Float>]
    public var rotations: [SIMD4<Float>]
    public var opacityLogits: [Float]
    public var sh: [Float]
    public private(set) var shDegree: Int

    /// SH coefficient count per channel for a degree: `(d+1)²`.
    @inlinable public static func coefficientCount(degree: Int) -> Int { (degree + 1) * (degree + 1) }

    /// The zeroth-order SH basis constant, `1 / (2√π)`.
    public static let shC0: Float = 0.28209479177387814

    public var count: Int { means.count }
    public var coefficientsPerChannel: Int { Self.coefficientCount(degree: shDegree) }

    /// An empty cloud of the given SH degree (0...3).
    public init(shDegree: Int = 0) {
        precondition((0...3).contains(shDegree), "SH degree must be 0...3, got \(shDegree)")
        self.shDegree = shDegree
        means = []; logScales = []; rotations = []; opacityLogits = []; sh = []
    }

    /// A cloud from parallel arrays; counts are checked.
    public init(means: [SIMD3<Float>], logScales: [SIMD3<Float>], rotations: [SIMD4<Float>],
                opacityLogits: [Float], sh: [Float], shDegree: Int) {
        precondition((0...3).contains(shDegree), "SH degree must be 0...3, got \(shDegree)")
        let n = means.count
        precondition(logScales.count == n && rotations.count == n && opacityLogits.count == n,
                     "GaussianCloud arrays disagree on the count")
        precondition(sh.count == n * Self.coefficientCount(degree: shDegree) * 3,
                     "GaussianCloud sh has \(sh.count) values, expected N·(d+1)²·3")
        self.means = means
        self.logScales = logScales
        self.rotations = rotations
        self.opacityLogits = opacityLogits
        self.sh = sh
        self.shDegree = shDegree
    }

    /// Appends one Gaussian; `sh` holds `(d+1)² × 3` values, coefficient-major.
    public mutating func append(mean: SIMD3<Float>, logScale: SIMD3<Float>, rotation: SIMD4<Float>,
                                opacityLogit: Float, sh coefficients: [Float]) {
        precondition(coefficients.count == coefficientsPerChannel * 3, "wrong SH coefficient count")
        means.append(mean)
        logScales.append(logScale)
        rotations.append(rotation)
        opacityLogits.append(opacityLogit)
        sh.append(contentsOf: coefficients)
    }

    /// The base colour (SH DC term only) of Gaussian `i`, before clamping: `sh₀ · C0 + 0.5`.
    public func baseColor(_ i: Int) -> SIMD3<Float> {
        let o = i * coefficientsPerChannel * 3
        return SIMD3(sh[o], sh[o + 1], sh[o + 2]) * Self.shC0 + 0.5
    }

    /// Axis-aligned bounds of the centres, or nil when empty.
    public var bounds: (min: SIMD3<Float>, max: SIMD3<Float>)? {
        guard var lo = means.first else { return nil }
        var hi = lo
        for m in means { lo = pointwiseMin(lo, m); hi = pointwiseMax(hi, m) }
        return (lo, hi)
    }
}
