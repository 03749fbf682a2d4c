import Foundation

/// SSIM (Wang et al. 2004) between a batch of images and their targets, with its gradient, as a
/// training loss: the same SSIM as `ImageMetrics.ssim` (an 11×11 Gaussian window, σ = 1.5,
/// C1 = 0.01², C2 = 0.03², values in [0, 1], averaged over channels and over the positions whose
/// window lies inside the image: scikit-image's `structural_similarity` with
/// `gaussian_weights=True, use_sample_covariance=False, data_range=1`), over every image of the
/// batch.
///
/// With the Gaussian-filtered moments μ = G∗x, s_xx = G∗x², s_xy = G∗(x·y), and
/// A₁ = 2μ_xμ_y + C1, A₂ = 2(s_xy − μ_xμ_y) + C2, B₁ = μ_x² + μ_y² + C1,
/// B₂ = (s_xx − μ_x²) + (s_yy − μ_y²) + C2, each position's S = A₁A₂ / (B₁B₂) has
///
///     ∂S/∂μ_x  = S·(2μ_y/A₁ − 2μ_y/A₂ − 2μ_x/B₁ + 2μ_x/B₂)
///     ∂S/∂s_xx = −S/B₂,   ∂S/∂s_xy = 2S/A₂
///
/// and ∂S̄/∂x = Gᵀ∗α + 2x·(Gᵀ∗β) + y·(Gᵀ∗γ) for the maps α, β, γ of those three derivatives
/// (divided by the number of positions), Gᵀ the window's transpose: the full convolution with the
/// window, which for this symmetric Gaussian is also its full correlation.
public enum SSIMLoss {
    public static let radius = 5
    public static let sigma = 1.5
    static let c1 = 0.01 * 0.01, c2 = 0.03 * 0.03

    /// The normalised 11-tap Gaussian.
    static let kernel: [Double] = {
        let k = (-radius...radius).map { Foundation.exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let total = k.reduce(0, +)
        return k.map { $0 / total }
    }()

    /// Mean SSIM of `x` against `target` (`[N, C, H, W]`, H and W > 10) and, with `gradient`,
    /// ∂(mean SSIM)/∂x. The target is a constant.
    public static func ssim(_ x: Tensor, target y: Tensor, gradient: Bool) -> (value: Double, gradient: Tensor?) {
        x.checkRank(4, "[N, C, H, W]", "SSIMLoss.ssim")
        x.checkSameShape(y, "SSIMLoss.ssim (target)")
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        precondition(h > 2 * radius && w > 2 * radius, "SSIMLoss.ssim: images must be larger than the 11×11 window, got \(h)×\(w)")
        let (vh, vw) = (h - 2 * radius, w - 2 * radius), positions = Double(planes * vh * vw)
        var total = 0.0
        var dx = gradient ? [Float](repeating: 0, count: x.count) : []
        let area = h * w
        for plane in 0..<planes {
            let base = plane * area
            let a = (0..<area).map { Double(x.storage[base + $0]) }, b = (0..<area).map { Double(y.storage[base + $0]) }
            let mx = valid(a, h, w), my = valid(b, h, w)
            let sxx = valid(a.map { $0 * $0 }, h, w), syy = valid(b.map { $0 * $0 }, h, w)
            let sxy = valid(zip(a, b).map { $0 * $1 }, h, w)
            var alpha = [Double](repeating: 0, count: vh * vw), beta = alpha, gamma = alpha
            for i in 0..<(vh * vw) {
                let a1 = 2 * mx[i] * my[i] + c1, a2 = 2 * (sxy[i] - mx[i] * my[i]) + c2
                let b1 = mx[i] * mx[i] + my[i] * my[i] + c1, b2 = (sxx[i] - mx[i] * mx[i]) + (syy[i] - my[i] * my[i]) + c2
                let s = a1 * a2 / (b1 * b2)
                total += s
                if gradient {
                    alpha[i] = s * (2 * my[i] / a1 - 2 * my[i] / a2 - 2 * mx[i] / b1 + 2 * mx[i] / b2) / positions
                    beta[i] = -s / b2 / positions
                    gamma[i] = 2 * s / a2 / positions
                }
            }
            if gradient {
                let ga = transposed(alpha, h, w), gb = transposed(beta, h, w), gc = transposed(gamma, h, w)
                for p in 0..<area { dx[base + p] = Float(ga[p] + 2 * a[p] * gb[p] + b[p] * gc[p]) }
            }
        }
        return (total / positions, gradient ? Tensor(shape: x.shape, storage: dx) : nil)
    }

    /// The Gaussian-filtered plane at the positions whose window lies inside: `[(h − 10)·(w − 10)]`.
    static func valid(_ f: [Double], _ h: Int, _ w: Int) -> [Double] {
        let (vh, vw) = (h - 2 * radius, w - 2 * radius), taps = 2 * radius + 1
        var rows = [Double](repeating: 0, count: h * vw)
        for yy in 0..<h {
            for xx in 0..<vw {
                var s = 0.0
                for k in 0..<taps { s += kernel[k] * f[yy * w + xx + k] }
                rows[yy * vw + xx] = s
            }
        }
        var out = [Double](repeating: 0, count: vh * vw)
        for yy in 0..<vh {
            for xx in 0..<vw {
                var s = 0.0
                for k in 0..<taps { s += kernel[k] * rows[(yy + k) * vw + xx] }
                out[yy * vw + xx] = s
            }
        }
        return out
    }

    /// The transpose of `valid`: a map over the valid positions spread back over the `h`×`w` plane.
    static func transposed(_ g: [Double], _ h: Int, _ w: Int) -> [Double] {
        let (vh, vw) = (h - 2 * radius, w - 2 * radius), taps = 2 * radius + 1
        var rows = [Double](repeating: 0, count: h * vw)
        for yy in 0..<vh {
            for xx in 0..<vw {
                let v = g[yy * vw + xx]
                for k in 0..<taps { rows[(yy + k) * vw + xx] += kernel[k] * v }
            }
        }
        var out = [Double](repeating: 0, count: h * w)
        for yy in 0..<h {
            for xx in 0..<vw {
                let v = rows[yy * vw + xx]
                for k in 0..<taps { out[yy * w + xx + k] += kernel[k] * v }
            }
        }
        return out
    }
}
