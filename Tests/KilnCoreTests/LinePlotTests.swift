import Testing
@testable import KilnCore

@Suite("Line plots")
struct LinePlotTests {
    /// Pixels of a curve's colour (the first series' by default: blue).
    static func curvePixels(_ image: Image, color: [Float] = [0.1, 0.3, 0.85]) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        for y in 0..<image.height {
            for x in 0..<image.width {
                if (0..<3).allSatisfy({ abs(image[x, y, $0] - color[$0]) < 1e-3 }) { out.append((x, y)) }
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

    @Test("several series share the axes, each in its colour, with a legend of their names; one unnamed series draws as the single-curve plot")
    func severalSeries() {
        let falling = (0...40).map { (x: Double($0), y: -Double($0)) }, rising = (0...40).map { (x: Double($0), y: -40 + Double($0) / 2) }
        let image = Image.linePlot(series: [(name: "total", points: falling), (name: "view", points: rising)], width: 240, height: 120, logY: false)
        let blue = Self.curvePixels(image), orange = Self.curvePixels(image, color: Image.plotColors[1])
        #expect(blue.count > 100 && orange.count > 80)
        // The rising series ends higher (smaller y) than it starts; the falling one the opposite.
        let (oLeft, oRight) = (orange.filter { $0.0 < 60 }.map(\.1).max()!, orange.filter { $0.0 > 200 }.map(\.1).min()!)
        #expect(oRight < oLeft)
        let (bLeft, bRight) = (blue.filter { $0.0 < 60 }.map(\.1).min()!, blue.filter { $0.0 > 200 && $0.1 > 30 }.map(\.1).max()!)
        #expect(bRight > bLeft)
        // The legend's colour squares sit in the top band, under the title.
        #expect(blue.contains { $0.1 < 30 && $0.0 > 150 } && orange.contains { $0.1 < 40 && $0.0 > 150 })
        // One unnamed series: the same image as the single-curve call.
        let single = Image.linePlot(falling, width: 240, height: 120, logY: false)
        #expect(Image.linePlot(series: [(name: "", points: falling)], width: 240, height: 120, logY: false).pixels == single.pixels)
    }
}
