import KilnCore
import RealModule

/// The optimisable parameters of `N` Gaussians as flat arrays, in float32 (training) or float64
/// (reference and finite differences). Gradients use the same type.
///
/// Layouts (row-major): `means [N, 3]` world; `logScales [N, 3]`; `rotations [N, 4]` as
/// (w, x, y, z), not necessarily normalised; `opacityLogits [N]`; `sh [N, K, 3]` with
/// `K = (shDegree + 1)²`, coefficient-major then RGB (as `GaussianCloud`).
public struct SplatParameters<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable>: Sendable, Equatable {
    public var means: [R]
    public var logScales: [R]
    public var rotations: [R]
    public var opacityLogits: [R]
    public var sh: [R]
    public var shDegree: Int

    @inlinable public var count: Int { opacityLogits.count }
    /// The Gaussians' centres, one point each (`means` as `[N]` of SIMD3).
    @inlinable public var positions: [SIMD3<R>] { (0..<count).map { SIMD3(means[3 * $0], means[3 * $0 + 1], means[3 * $0 + 2]) } }
    @inlinable public var coefficientsPerChannel: Int { (shDegree + 1) * (shDegree + 1) }

    /// Zero-filled parameters for `count` Gaussians (the shape of a gradient). Inlinable, as the
    /// members below: unspecialised, every element was copied through the generic value
    /// witnesses (a 20k-Gaussian gradient took milliseconds to zero).
    @inlinable
    public init(zerosLike count: Int, shDegree: Int) {
        let k = (shDegree + 1) * (shDegree + 1)
        means = [R](repeating: 0, count: 3 * count)
        logScales = [R](repeating: 0, count: 3 * count)
        rotations = [R](repeating: 0, count: 4 * count)
        opacityLogits = [R](repeating: 0, count: count)
        sh = [R](repeating: 0, count: 3 * k * count)
        self.shDegree = shDegree
    }

    @inlinable
    public init(means: [R], logScales: [R], rotations: [R], opacityLogits: [R], sh: [R], shDegree: Int) {
        let n = opacityLogits.count, k = (shDegree + 1) * (shDegree + 1)
        precondition((0...3).contains(shDegree), "SH degree must be 0...3")
        precondition(means.count == 3 * n && logScales.count == 3 * n && rotations.count == 4 * n && sh.count == 3 * k * n,
                     "SplatParameters arrays disagree with N = \(n), K = \(k)")
        self.means = means
        self.logScales = logScales
        self.rotations = rotations
        self.opacityLogits = opacityLogits
        self.sh = sh
        self.shDegree = shDegree
    }

    /// The same parameters in another precision.
    @inlinable
    public func converted<S>(to: S.Type = S.self) -> SplatParameters<S> {
        SplatParameters<S>(means: means.map { S($0) }, logScales: logScales.map { S($0) }, rotations: rotations.map { S($0) },
                           opacityLogits: opacityLogits.map { S($0) }, sh: sh.map { S($0) }, shDegree: shDegree)
    }

    /// Every parameter array in a fixed order, for optimisers and gradient checks.
    @inlinable public var groups: [[R]] { [means, logScales, rotations, opacityLogits, sh] }
    public static var groupNames: [String] { ["means", "logScales", "rotations", "opacityLogits", "sh"] }
}

extension SplatParameters where R == Float {
    /// The parameters of a cloud.
    public init(_ cloud: GaussianCloud) {
        self.init(means: cloud.means.flatMap { [$0.x, $0.y, $0.z] }, logScales: cloud.logScales.flatMap { [$0.x, $0.y, $0.z] },
                  rotations: cloud.rotations.flatMap { [$0.x, $0.y, $0.z, $0.w] }, opacityLogits: cloud.opacityLogits,
                  sh: cloud.sh, shDegree: cloud.shDegree)
    }

    /// The cloud these parameters describe.
    public var cloud: GaussianCloud {
        let n = count
        return GaussianCloud(means: positions,
                             logScales: (0..<n).map { SIMD3(logScales[3 * $0], logScales[3 * $0 + 1], logScales[3 * $0 + 2]) },
                             rotations: (0..<n).map { SIMD4(rotations[4 * $0], rotations[4 * $0 + 1], rotations[4 * $0 + 2], rotations[4 * $0 + 3]) },
                             opacityLogits: opacityLogits, sh: sh, shDegree: shDegree)
    }
}

/// Rasterisation settings shared by every splat renderer (constants of 3DGS and gsplat).
public struct SplatRenderSettings: Sendable, Equatable, Codable {
    /// Gaussians whose centre is closer than this (camera-space z) are culled.
    public var nearPlane: Double = 0.2
    /// Added to the diagonal of every 2D covariance, px² (the 3DGS low-pass filter).
    public var lowPass: Double = 0.3
    /// Mip-Splatting / gsplat "antialiased": opacity × √(det Σ / det(Σ + lowPass·I)).
    public var antialiased: Bool = false
    /// Colour behind the splats.
    public var background: SIMD3<Float> = SIMD3(0, 0, 0)
    /// SH degree used for colour (≤ the parameters' degree); nil uses all of it.
    public var activeSHDegree: Int? = nil

    /// The SH degree used for colour with parameters of degree `parameterDegree`.
    public func colorDegree(parameterDegree: Int) -> Int { min(activeSHDegree ?? parameterDegree, parameterDegree) }

    /// Constants of the compositing loop.
    public static let alphaMax: Double = 0.99
    public static let alphaMin: Double = 1.0 / 255.0
    public static let transmittanceMin: Double = 1e-4
    public static let extentSigmas: Double = 3

    public init(nearPlane: Double = 0.2, lowPass: Double = 0.3, antialiased: Bool = false,
                background: SIMD3<Float> = SIMD3(0, 0, 0), activeSHDegree: Int? = nil) {
        self.nearPlane = nearPlane
        self.lowPass = lowPass
        self.antialiased = antialiased
        self.background = background
        self.activeSHDegree = activeSHDegree
    }
}
