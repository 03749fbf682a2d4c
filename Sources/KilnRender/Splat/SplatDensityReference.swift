import KilnCore
import RealModule

/// The plain reference for `SplatDensity`: every Gaussian at every point, in float64, from the
/// covariance Σ = R S² Rᵀ inverted numerically (not from the closed form the fast path uses).
public enum SplatDensityReference {
    public static func sample(_ p: SplatParameters<Double>, at x: SIMD3<Double>) -> (density: Double, color: SIMD3<Double>) {
        var density = 0.0, color = SIMD3<Double>.zero
        let k = 3 * p.coefficientsPerChannel
        for i in 0..<p.count {
            let cov = SplatProjectionReference.covariance3D(i, p)
            // 3×3 inverse by cofactors.
            let a = cov[0], b = cov[1], c = cov[2], d = cov[3], e = cov[4], f = cov[5], g = cov[6], h = cov[7], l = cov[8]
            let det = a * (e * l - f * h) - b * (d * l - f * g) + c * (d * h - e * g)
            guard det > 0 else { continue }
            let inv = [(e * l - f * h), -(b * l - c * h), (b * f - c * e),
                       -(d * l - f * g), (a * l - c * g), -(a * f - c * d),
                       (d * h - e * g), -(a * h - b * g), (a * e - b * d)].map { $0 / det }
            let v = x - SIMD3(p.means[3 * i], p.means[3 * i + 1], p.means[3 * i + 2])
            var m = 0.0
            for r in 0..<3 { for s in 0..<3 { m += v[r] * inv[3 * r + s] * v[s] } }
            guard m <= 9 else { continue }
            let w = 1 / (1 + Double.exp(-p.opacityLogits[i])) * Double.exp(-0.5 * m)
            let c0 = SphericalHarmonics.c0
            let rgb = SIMD3(max(0, c0 * p.sh[k * i] + 0.5), max(0, c0 * p.sh[k * i + 1] + 0.5), max(0, c0 * p.sh[k * i + 2] + 0.5))
            density += w
            color += w * rgb
        }
        return (density, density > 1e-12 ? color / density : SIMD3(repeating: 0.5))
    }
}
