import Foundation

// MARK: - Line plots

extension Image {
    /// A line plot of `points` (x, y) on a white RGB image: axes, the curve in blue, and the y
    /// range and last x printed with the bitmap font. With `logY` the y axis is logarithmic
    /// (non-positive values are skipped). Loss curves in model cards use it.
    public static func linePlot(_ points: [(x: Double, y: Double)], width: Int = 480, height: Int = 240, logY: Bool = true,
                                title: String = "") -> Image {
        precondition(width >= 64 && height >= 48, "linePlot: the image must be at least 64×48")
        var image = Image(width: width, height: height, channels: 3, fill: 1)
        let black: [Float] = [0, 0, 0], blue: [Float] = [0.1, 0.3, 0.85], gray: [Float] = [0.6, 0.6, 0.6]
        let (left, right, top, bottom) = (40, width - 10, 16, height - 18)
        image.fillRect(x: left, y: top, width: 1, height: bottom - top + 1, value: black)
        image.fillRect(x: left, y: bottom, width: right - left + 1, height: 1, value: black)
        image.drawText(title, x: left, y: 4, color: black)
        let usable = points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
        guard usable.count >= 2 else { return image }
        func f(_ y: Double) -> Double { logY ? Foundation.log10(y) : y }
        let xs = usable.map(\.x), ys = usable.map { f($0.y) }
        let (x0, x1) = (xs.min()!, max(xs.max()!, xs.min()! + 1e-12))
        var (y0, y1) = (ys.min()!, ys.max()!)
        if y1 - y0 < 1e-12 { (y0, y1) = (y0 - 0.5, y1 + 0.5) }
        func pixel(_ x: Double, _ y: Double) -> (Int, Int) {
            (left + Int(((x - x0) / (x1 - x0) * Double(right - left)).rounded()),
             bottom - Int(((y - y0) / (y1 - y0) * Double(bottom - top)).rounded()))
        }
        // The curve: straight segments between consecutive points.
        var previous = pixel(xs[0], ys[0])
        for i in 1..<usable.count {
            let next = pixel(xs[i], ys[i])
            let steps = max(abs(next.0 - previous.0), abs(next.1 - previous.1), 1)
            for s in 0...steps {
                let t = Double(s) / Double(steps)
                let px = previous.0 + Int((Double(next.0 - previous.0) * t).rounded())
                let py = previous.1 + Int((Double(next.1 - previous.1) * t).rounded())
                image.fillRect(x: px, y: py, width: 2, height: 2, value: blue)
            }
            previous = next
        }
        func label(_ v: Double) -> String {  // at most 6 characters, to fit left of the axis
            let value = logY ? Foundation.pow(10, v) : v
            return String(format: abs(value) < 0.01 && value != 0 ? "%.0e" : "%.3g", value)
        }
        image.drawText(label(y1), x: 2, y: top, color: gray)
        image.drawText(label(y0), x: 2, y: bottom - 7, color: gray)
        image.drawText(String(format: "%.0f", x0), x: left, y: bottom + 4, color: gray)
        let last = String(format: "%.0f", x1)
        image.drawText(last, x: right - BitmapFont.width(of: last), y: bottom + 4, color: gray)
        return image
    }
}
