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
///     L = λ_o/N·Σᵢ σ(oᵢ) + λ_s/(3N·r)·Σᵢₐ exp(lᵢₐ) + λ_c/(N·k)·Σᵢ Σ_{j∈K(i)} ρ(‖d − m·𝟙‖² + 3β·m²),
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
/// leaves brightness free, so that shading baked into the colours survives. The penalty ρ of the
/// squared difference q is `ColorPenalty`: q itself (`l2`), or Charbonnier's 2ε(√(q + ε²) − ε)
/// (`charbonnier`), which equals q to first order for differences well below ε and grows like
/// 2ε√q above it (2ε‖d‖ at β = 1), so that the many small differences of speckle are smoothed as
/// by `l2` while a border between two parts of different colour (one large difference) pulls with
/// a bounded force, as in an image's total variation. ε (`edge`) is a difference of rendered colour (0…1 per
/// channel), converted to SH units by the DC basis constant. `median` replaces the pairs' sum by
/// λ_c/N·Σᵢ q(cᵢ − mᵢ), mᵢ the per-channel median of cᵢ and its neighbours' colours, held fixed
/// (its gradient is that of this sum with the medians as constants): Charbonnier's bounded pull
/// still acts across a border, where a Gaussian's own side adds none; the median does not move a
/// Gaussian whose side holds the majority of its neighbourhood.
public enum GaussianRegularizers {
    /// L and ∂L/∂parameters (means and rotations get none).
    public static func loss(_ p: SplatParameters<Float>, opacity: Float, scale: Float, color: Float, brightness: Float = 1,
                            penalty: ColorPenalty = .l2, edge: Float = 0.1, neighbours k: Int,
                            radius: Float, threads: Int = Parallel.defaultThreadCount) -> (value: Double, gradient: SplatParameters<Float>) {
        var g = SplatParameters<Float>(zerosLike: p.count, shDegree: p.shDegree)
        let value = accumulate(p, into: &g, opacity: opacity, scale: scale, color: color, brightness: brightness, penalty: penalty, edge: edge,
                               neighbours: k, radius: radius, threads: threads)
        return (value, g)
    }

    /// Adds ∂L/∂parameters to `gradient` in place (only the groups a regulariser that is on
    /// touches) and returns L. A term whose gradient is not finite (a log scale past 88 overflows
    /// its exp) is left out, so that one overflow drops a term rather than poisoning the step.
    public static func accumulate(_ p: SplatParameters<Float>, into g: inout SplatParameters<Float>, opacity: Float, scale: Float, color: Float,
                                  brightness: Float = 1, penalty: ColorPenalty = .l2, edge: Float = 0.1, neighbours k: Int,
                                  radius: Float, threads: Int = Parallel.defaultThreadCount) -> Double {
        let n = p.count
        precondition(g.count == n && g.sh.count == p.sh.count, "the gradient must have the parameters' shape")
        guard n > 0 else { return 0 }
        var value = 0.0
        if opacity > 0 {
            for i in 0..<n {
                let s = 1 / (1 + Foundation.exp(-Double(p.opacityLogits[i])))
                value += Double(opacity) / Double(n) * s
                let d = Float(Double(opacity) / Double(n) * s * (1 - s))
                if d.isFinite { g.opacityLogits[i] += d }
            }
        }
        if scale > 0 {
            let c = Double(scale) / (3 * Double(n) * Double(radius))
            for i in 0..<(3 * n) {
                let e = Foundation.exp(Double(p.logScales[i]))
                value += c * e
                let d = Float(c * e)
                if d.isFinite { g.logScales[i] += d }
            }
        }
        if color > 0, k > 0, n > 1 {
            let stride = p.sh.count / n  // (D + 1)² coefficients × 3 per Gaussian, DC first
            let table = NearestNeighbours.table(p.positions, k: k, threads: threads)
            let c = Double(color) / (Double(n) * Double(k))
            let beta = Double(brightness), epsilon = Double(edge) / SphericalHarmonics.c0, robust = penalty == .charbonnier
            var dc = [Double](repeating: 0, count: 3 * n)
            if penalty == .median {
                // Each Gaussian against the per-channel median of its own and its neighbours' colours,
                // held fixed: the term is weighed per Gaussian, λ_c/N.
                let targets = medianTargets(p, table: table)
                let weight = Double(color) / Double(n)
                for i in 0..<n {
                    let d = SIMD3<Double>(Double(p.sh[i * stride]), Double(p.sh[i * stride + 1]), Double(p.sh[i * stride + 2])) - targets[i]
                    let m = d.sum() / 3, hue = d - SIMD3(repeating: m)
                    value += weight * ((hue * hue).sum() + 3 * beta * m * m)
                    for a in 0..<3 { dc[3 * i + a] += 2 * weight * (d[a] - (1 - beta) * m) }
                }
            } else {
                for i in 0..<n {
                    for s in (i * table.k)..<((i + 1) * table.k) {
                        let j = Int(table.indices[s])
                        // β = 1 keeps the plain per-channel sum: the split form gives the same value
                        // rounded differently, and runs that never set β must resume bit-identically.
                        if brightness == 1 && !robust {
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
                            let m = d.sum() / 3, hue = d - SIMD3(repeating: m)
                            let q = (hue * hue).sum() + 3 * beta * m * m
                            // ∂q/∂cᵢ = 2(d − (1 − β)·m·𝟙); ρ'(q) = 1 for l2, ε/√(q + ε²) for Charbonnier.
                            var slope = 1.0
                            if robust {
                                let root = (q + epsilon * epsilon).squareRoot()
                                value += c * 2 * epsilon * (root - epsilon)
                                slope = epsilon / root
                            } else {
                                value += c * q
                            }
                            for a in 0..<3 {
                                let gradient = 2 * c * slope * (d[a] - (1 - beta) * m)
                                dc[3 * i + a] += gradient
                                dc[3 * j + a] -= gradient
                            }
                        }
                    }
                }
            }
            for i in 0..<n {
                for a in 0..<3 {
                    let d = Float(dc[3 * i + a])
                    if d.isFinite { g.sh[i * stride + a] += d }
                }
            }
        }
        return value
    }

    /// Per Gaussian, the per-channel median of its own base colour (SH DC) and those of its
    /// neighbours in `table` (the mean of the two middle values for an even count, which an odd
    /// `color_neighbours` gives: a border split evenly is then pulled to its middle, so the
    /// edge-preserving behaviour needs an even neighbour count, as the default 4).
    public static func medianTargets(_ p: SplatParameters<Float>, table: NeighbourTable) -> [SIMD3<Double>] {
        let n = p.count, stride = p.sh.count / max(1, n)
        var values = [Float](repeating: 0, count: table.k + 1)
        return (0..<n).map { i in
            var target = SIMD3<Double>()
            for a in 0..<3 {
                values[0] = p.sh[i * stride + a]
                for t in 0..<table.k { values[t + 1] = p.sh[Int(table.indices[i * table.k + t]) * stride + a] }
                values.sort()
                let middle = values.count / 2
                target[a] = values.count % 2 == 1 ? Double(values[middle]) : (Double(values[middle - 1]) + Double(values[middle])) / 2
            }
            return target
        }
    }
}

/// How the colour smoothness weighs a squared colour difference q between neighbours
/// (`gaussians.color_smoothness_penalty`; see `GaussianRegularizers`).
public enum ColorPenalty: String, SettingChoice {
    /// q: large differences (borders between parts) pull hardest.
    case l2
    /// 2ε(√(q + ε²) − ε): like q below the edge ε, like 2ε‖d‖ above it (edge-preserving).
    case charbonnier
    /// q of the difference to the median of the Gaussian's own and its neighbours' colours, the
    /// median held fixed (one step of a median filter over the cloud): a lone colour among its
    /// neighbours is pulled to theirs; at a border each side keeps its colour where it has the
    /// majority of a Gaussian's neighbours (edge-preserving).
    case median
}
