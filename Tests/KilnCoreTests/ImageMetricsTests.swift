import Foundation
import KilnCore
import Testing

@Suite("PSNR and SSIM")
struct ImageMetricsTests {
    func noise(seed: UInt64, size: Int = 32) -> Image {
        var rng = RNG(seed: seed)
        return Image(width: size, height: size, channels: 3, pixels: (0..<(3 * size * size)).map { _ in rng.nextFloat() * 0.8 + 0.1 })
    }

    @Test("PSNR of a constant offset is −10·log10(offset²)")
    func psnr() {
        let a = noise(seed: 1)
        var b = a
        for i in b.pixels.indices { b.pixels[i] += 0.1 }
        #expect(abs(ImageMetrics.psnr(a, b) - 20) < 1e-3)
        #expect(ImageMetrics.psnr(a, a) == .infinity)
    }

    @Test("SSIM is 1 for identical images, lower for noise, and luminance-sensitive")
    func ssim() {
        let a = noise(seed: 2)
        #expect(abs(ImageMetrics.ssim(a, a) - 1) < 1e-12)
        let b = noise(seed: 3)
        #expect(ImageMetrics.ssim(a, b) < 0.2)
        var brighter = a
        for i in brighter.pixels.indices { brighter.pixels[i] = min(1, brighter.pixels[i] + 0.05) }
        let s = ImageMetrics.ssim(a, brighter)
        #expect(s < 1 && s > 0.9, "\(s)")
        #expect(abs(ImageMetrics.ssim(a, b) - ImageMetrics.ssim(b, a)) < 1e-12, "symmetric")
    }
}

/// Goldens from scikit-image (`tools/make_metric_goldens.py`).
@Suite("Metrics against scikit-image")
struct ImageMetricsGoldenTests {
    struct Case: Decodable { var width: Int; var height: Int; var a: [Float]; var b: [Float]; var ssim: Double; var psnr: Double }
    struct File: Decodable { var cases: [Case] }

    @Test("SSIM and PSNR equal scikit-image's to 1e-6")
    func goldens() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/metrics.json")
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        #expect(file.cases.count == 3)
        for c in file.cases {
            let a = Image(width: c.width, height: c.height, channels: 3, pixels: c.a)
            let b = Image(width: c.width, height: c.height, channels: 3, pixels: c.b)
            #expect(abs(ImageMetrics.ssim(a, b) - c.ssim) < 1e-6, "\(c.width)×\(c.height): SSIM \(ImageMetrics.ssim(a, b)) vs \(c.ssim)")
            #expect(abs(ImageMetrics.psnr(a, b) - c.psnr) < 1e-4, "\(c.width)×\(c.height): PSNR \(ImageMetrics.psnr(a, b)) vs \(c.psnr)")
        }
    }
}
