import Foundation
import KilnCore
import Testing
@testable import KilnNN

@Suite("SSIM loss")
struct SSIMLossTests {
    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = RNG(seed: seed)
        return Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in rng.nextFloat() })
    }

    /// The planes of image `n` of `[N, C, H, W]` as an interleaved `Image`.
    static func image(_ t: Tensor, _ n: Int) -> Image {
        let (c, h, w) = (t.shape[1], t.shape[2], t.shape[3])
        var pixels = [Float](repeating: 0, count: c * h * w)
        for ch in 0..<c { for p in 0..<(h * w) { pixels[p * c + ch] = t.storage[(n * c + ch) * h * w + p] } }
        return Image(width: w, height: h, channels: c, pixels: pixels)
    }

    @Test("its value is ImageMetrics.ssim (scikit-image's, by golden) averaged over the batch, 1 for identical images")
    func value() {
        let x = Self.random([2, 3, 19, 23], seed: 1)
        var y = x
        for i in y.storage.indices { y.storage[i] = min(1, max(0, y.storage[i] + 0.2 * (Self.random([1], seed: UInt64(i)).storage[0] - 0.5))) }
        let ours = SSIMLoss.ssim(x, target: y, gradient: false).value
        let reference = (0..<2).map { ImageMetrics.ssim(Self.image(x, $0), Self.image(y, $0)) }.reduce(0, +) / 2
        #expect(abs(ours - reference) < 1e-6, "\(ours) vs \(reference)")
        #expect(abs(SSIMLoss.ssim(x, target: x, gradient: false).value - 1) < 1e-9)
    }

    @Test("its gradient matches central differences")
    func gradient() {
        let x = Self.random([2, 2, 16, 14], seed: 2), y = Self.random([2, 2, 16, 14], seed: 3)
        let g = SSIMLoss.ssim(x, target: y, gradient: true).gradient!
        var rng = RNG(seed: 4)
        for _ in 0..<24 {
            let i = Int(rng.next() % UInt64(x.count)), h: Float = 1e-3
            var up = x, down = x
            up.storage[i] += h
            down.storage[i] -= h
            let numeric = (SSIMLoss.ssim(up, target: y, gradient: false).value - SSIMLoss.ssim(down, target: y, gradient: false).value) / Double(2 * h)
            #expect(abs(numeric - Double(g.storage[i])) < 1e-3 * max(1e-3, abs(numeric)) + 1e-7, "element \(i): numeric \(numeric), analytic \(g.storage[i])")
        }
    }
}
