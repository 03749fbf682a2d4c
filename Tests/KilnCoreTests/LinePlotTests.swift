import Testing
@testable import KilnCore

@Suite("Line plots")
struct LinePlotTests {
    /// Pixels of the plot's curve colour.
    static func curvePixels(_ image: Image) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        for y in 0..<image.height {
            for x in 0..<image.width {
                let (r, g, b) = (image[x, y, 0], image[x, y, 1], image[x, y, 2])
                if abs(r - 0.1) < 1e-3 && abs(g - 0.3) < 1e-3 && abs(b - 0.85) < 1e-3 { out.append((x, y)) }
            }
        }
        return out
    }

    @Test("a falling curve runs from the upper left to the lower right; log scale skips non-positive values")
    func fallingCurve() {
        let points = (1...50).map { (x: Double($0), y: 1 / Double($0)) } + [(x: 51, y: 0), (x: 52, y: .nan)]
        let image = Image.linePlot(points, width: 200, height: 100)
        #expect(image.width == 200 && image.height == 100 && image.channels == 3)
        let curve = Self.curvePixels(image)
        #expect(curve.count > 100)
        let leftmost = curve.min { $0.0 < $1.0 }!, rightmost = curve.max { $0.0 < $1.0 }!
        #expect(leftmost.1 < 30 && rightmost.1 > 70 && leftmost.0 <= 41 && rightmost.0 >= 188)
        // Fewer than two usable points: axes only.
        #expect(Self.curvePixels(Image.linePlot([(x: 1, y: 1)], width: 100, height: 60)).isEmpty)
    }
}
