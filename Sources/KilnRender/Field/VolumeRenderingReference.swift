import KilnCore
import RealModule

/// The plain reference: every sample of every ray composited literally (no early stop), in any
/// precision; the tests check `VolumeRendering` against it and it against finite differences.
public enum VolumeRenderingReference {
    public static func forward<R: Real & BinaryFloatingPoint>(sigmas: [R], colors: [R], t: [R], deltas: [R], samplesPerRay s: Int,
                                                           background: SIMD3<R>) -> (color: [R], alpha: [R], depth: [R]) where R: SIMDScalar {
        let r = sigmas.count / s
        var color = [R](repeating: 0, count: 3 * r), alpha = [R](repeating: 0, count: r), depth = [R](repeating: 0, count: r)
        for ray in 0..<r {
            var transmittance: R = 1
            for i in 0..<s {
                let k = ray * s + i
                let a = 1 - R.exp(-sigmas[k] * deltas[k])
                let w = transmittance * a
                for c in 0..<3 { color[3 * ray + c] += w * colors[3 * k + c] }
                depth[ray] += w * t[k]
                alpha[ray] += w
                transmittance *= 1 - a
            }
            for c in 0..<3 { color[3 * ray + c] += transmittance * background[c] }
        }
        return (color, alpha, depth)
    }
}
