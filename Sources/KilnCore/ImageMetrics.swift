import Foundation

/// Image similarity metrics on images with values in [0, 1].
public enum ImageMetrics {
    /// Peak signal-to-noise ratio in dB over all channels, peak 1; +∞ for identical images.
    public static func psnr(_ a: Image, _ b: Image) -> Double {
        precondition(a.width == b.width && a.height == b.height && a.channels == b.channels, "PSNR needs images of one shape")
        var sum = 0.0
        for i in a.pixels.indices { let d = Double(a.pixels[i] - b.pixels[i]); sum += d * d }
        let mse = sum / Double(max(1, a.pixels.count))
        return mse == 0 ? .infinity : -10 * log10(mse)
    }

    /// SSIM (Wang et al. 2004) with an 11×11 Gaussian window, σ = 1.5, C1 = 0.01², C2 = 0.03²,
    /// averaged over channels and over pixels whose window lies inside the image (scikit-image's
    /// `structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    /// data_range=1)` crops the same border).
    public static func ssim(_ a: Image, _ b: Image) -> Double {
        precondition(a.width == b.width && a.height == b.height && a.channels == b.channels, "SSIM needs images of one shape")
        let radius = 5
        let sigma = 1.5
        var kernel = (-radius...radius).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        let w = a.width, h = a.height
        guard w > 2 * radius, h > 2 * radius else { return a == b ? 1 : 0 }
        let c1 = 0.01 * 0.01, c2 = 0.03 * 0.03
        var sum = 0.0, count = 0
        for ch in 0..<a.channels {
            func blur(_ f: (Int) -> Double) -> [Double] {
                // Separable filter over valid positions only.
                var horizontal = [Double](repeating: 0, count: w * h)
                for y in 0..<h {
                    for x in radius..<(w - radius) {
                        var s = 0.0
                        for k in -radius...radius { s += kernel[k + radius] * f(y * w + x + k) }
                        horizontal[y * w + x] = s
                    }
                }
                var out = [Double](repeating: 0, count: w * h)
                for y in radius..<(h - radius) {
                    for x in radius..<(w - radius) {
                        var s = 0.0
                        for k in -radius...radius { s += kernel[k + radius] * horizontal[(y + k) * w + x] }
                        out[y * w + x] = s
                    }
                }
                return out
            }
            let pa = { (i: Int) in Double(a.pixels[i * a.channels + ch]) }, pb = { (i: Int) in Double(b.pixels[i * b.channels + ch]) }
            let ma = blur(pa), mb = blur(pb)
            let saa = blur { pa($0) * pa($0) }, sbb = blur { pb($0) * pb($0) }, sab = blur { pa($0) * pb($0) }
            for y in radius..<(h - radius) {
                for x in radius..<(w - radius) {
                    let i = y * w + x
                    let va = saa[i] - ma[i] * ma[i], vb = sbb[i] - mb[i] * mb[i], cov = sab[i] - ma[i] * mb[i]
                    sum += ((2 * ma[i] * mb[i] + c1) * (2 * cov + c2)) / ((ma[i] * ma[i] + mb[i] * mb[i] + c1) * (va + vb + c2))
                    count += 1
                }
            }
        }
        return sum / Double(max(1, count))
    }
}
