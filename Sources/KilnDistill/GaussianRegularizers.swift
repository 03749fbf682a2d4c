import Foundation
import KilnCore
import KilnRender
import RealModule

/// Regularisers of a Gaussian scene that score distillation leaves to the user (threestudio's and
/// DreamGaussian's `lambda_opacity`, `lambda_scales`, and a colour smoothness between neighbours),
/// each with its weight in `GaussianSettings` (0: off). Over the N Gaussians, with o the opacity
/// logits, l the log scales (three per Gaussian), c the base colour (the SH DC coefficients) and
/// K(i) the k nearest Gaussians of i (by mean position, `NearestNeighbours`):
///
///     L = λ_o/N·Σᵢ σ(oᵢ) + λ_s/(3N·r)·Σᵢₐ exp(lᵢₐ) + λ_c/(N·k)·Σᵢ Σ_{j∈K(i)} (‖d − m·𝟙‖² + 3β·m²),
///     d = cᵢ − c_j, m = (d_r + d_g + d_b)/3
///
/// (r the object ball's radius, so the scale term does not depend on the scene's units). The first
/// pushes Gaussians to be transparent or gone (fewer floaters), the second keeps them small (no
/// blurry sheets), the third is a total variation of colour over the cloud (SDS's speckles are
/// neighbours of different colours). Neighbours are searched afresh at every step, so a resumed
/// run stays bit-identical.
///
/// In the third, ‖d‖² = ‖d − m·𝟙‖² + 3m² splits a colour difference into hue and saturation and
/// brightness, the latter weighted by β (`brightness`): β = 1 is the plain ‖cᵢ − c_j‖², β = 0
/// leaves brightness free, so that shading baked into the colours survives.
public enum GaussianRegularizers {
    /// L and ∂L/∂parameters (means and rotations get none).
    public static func loss(_ p: SplatParameters<Float>, opacity: Float, scale: Float, color: Float, brightness: Float = 1, neighbours k: Int,
                            radius: Float, threads: Int = Parallel.defaultThreadCount) -> (value: Double, gradient: SplatParameters<Float>) {
        let n = p.count
        var g = SplatParameters<Float>(zerosLike: n, shDegree: p.shDegree)
        guard n > 0 else { return (0, g) }
        var value = 0.0
        if opacity > 0 {
            for i in 0..<n {
                let s = 1 / (1 + Foundation.exp(-Double(p.opacityLogits[i])))
                value += Double(opacity) / Double(n) * s
                g.opacityLogits[i] = Float(Double(opacity) / Double(n) * s * (1 - s))
            }
        }
        if scale > 0 {
            let c = Double(scale) / (3 * Double(n) * Double(radius))
            for i in 0..<(3 * n) {
                let e = Foundation.exp(Double(p.logScales[i]))
                value += c * e
                g.logScales[i] = Float(c * e)
            }
        }
        if color > 0, k > 0, n > 1 {
            let stride = p.sh.count / n  // (D + 1)² coefficients × 3 per Gaussian, DC first
            let table = NearestNeighbours.table(p.positions, k: k, threads: threads)
            let c = Double(color) / (Double(n) * Double(k))
            var dc = [Double](repeating: 0, count: 3 * n)
            for i in 0..<n {
                for s in (i * table.k)..<((i + 1) * table.k) {
                    let j = Int(table.indices[s])
                    // β = 1 keeps the plain per-channel sum: the split form gives the same value
                    // rounded differently, and runs that never set β must resume bit-identically.
                    if brightness == 1 {
                        for a in 0..<3 {
                            let d = Double(p.sh[i * stride + a]) - Double(p.sh[j * stride + a])
                            value += c * d * d
                            dc[3 * i + a] += 2 * c * d
                            dc[3 * j + a] -= 2 * c * d
                        }
                    } else {
                        let d = SIMD3<Double>(Double(p.sh[i * stride]) - Double(p.sh[j * stride]),
                                              Double(p.sh[i * stride + 1]) - Double(p.sh[j * stride + 1]),
                                              Double(p.sh[i * stride + 2]) - Double(p.sh[j * stride + 2]))
                        let m = d.sum() / 3, beta = Double(brightness), hue = d - SIMD3(repeating: m)
                        value += c * ((hue * hue).sum() + 3 * beta * m * m)
                        // ∂/∂cᵢ = 2(d − (1 − β)·m·𝟙); c_j gets the opposite.
                        for a in 0..<3 {
                            let gradient = 2 * c * (d[a] - (1 - beta) * m)
                            dc[3 * i + a] += gradient
                            dc[3 * j + a] -= gradient
                        }
                    }
                }
            }
            for i in 0..<n { for a in 0..<3 { g.sh[i * stride + a] = Float(dc[3 * i + a]) } }
        }
        return (value, g)
    }
}
