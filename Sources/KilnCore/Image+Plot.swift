import Foundation

// MARK: - Line plots

extension Image {
    /// A line plot of `points` (x, y) on a white RGB image: axes, the curve in blue, and the y
    /// range and last x printed with the bitmap font. With `logY` the y axis is logarithmic
    /// (non-positive values are skipped). Loss curves in model cards use it.
    public static func linePlot(_ points: [(x: Double, y: Double)], width: Int = 480, height: Int = 240, logY: Bool = true,
                                title: String = "") -> Image {
        linePlot(series: [(name: "", points: points)], width: width, height: height, logY: logY, title: title)
    }

    /// The colours of `linePlot(series:)`'s curves, in order (then repeating): blue first.
    public static let plotColors: [[Float]] = [[0.1, 0.3, 0.85], [0.9, 0.45, 0.05], [0.1, 0.6, 0.2], [0.8, 0.1, 0.15], [0.55, 0.25, 0.7], [0.5, 0.35, 0.2]]

    /// Several curves on shared axes, each in its colour (`plotColors`), with a legend of the named
    /// series at the top right. One unnamed series draws exactly as `linePlot(_:)`.
    public static func linePlot(series: [(name: String, points: [(x: Double, y: Double)])], width: Int = 480, height: Int = 240,
                                logY: Bool = true, title: String = "") -> Image {
        precondition(width >= 64 && height >= 48, "linePlot: the image must be at least 64×48")
        var image = Image(width: width, height: height, channels: 3, fill: 1)
        let black: [Float] = [0, 0, 0], gray: [Float] = [0.6, 0.6, 0.6]
        let (left, right, top, bottom) = (40, width - 10, 16, height - 18)
        image.fillRect(x: left, y: top, width: 1, height: bottom - top + 1, value: black)
        image.fillRect(x: left, y: bottom, width: right - left + 1, height: 1, value: black)
        image.drawText(title, x: left, y: 4, color: black)
        func f(_ y: Double) -> Double { logY ? Foundation.log10(y) : y }
        let usable = series.map { $0.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) } }
        let all = usable.filter { $0.count >= 2 }.flatMap { $0 }
        guard !all.isEmpty else { return image }
        let xs = all.map(\.x), ys = all.map { f($0.y) }
        let (x0, x1) = (xs.min()!, max(xs.max()!, xs.min()! + 1e-12))
        var (y0, y1) = (ys.min()!, ys.max()!)
        if y1 - y0 < 1e-12 { (y0, y1) = (y0 - 0.5, y1 + 0.5) }
        func pixel(_ x: Double, _ y: Double) -> (Int, Int) {
            (left + Int(((x - x0) / (x1 - x0) * Double(right - left)).rounded()),
             bottom - Int(((y - y0) / (y1 - y0) * Double(bottom - top)).rounded()))
        }
        for (k, curve) in usable.enumerated() where curve.count >= 2 {
            let color = plotColors[k % plotColors.count]
            // Straight segments between consecutive points.
            var previous = pixel(curve[0].x, f(curve[0].y))
            for point in curve.dropFirst() {
                let next = pixel(point.x, f(point.y))
                let steps = max(abs(next.0 - previous.0), abs(next.1 - previous.1), 1)
                for s in 0...steps {
                    let t = Double(s) / Double(steps)
                    let px = previous.0 + Int((Double(next.0 - previous.0) * t).rounded())
                    let py = previous.1 + Int((Double(next.1 - previous.1) * t).rounded())
                    image.fillRect(x: px, y: py, width: 2, height: 2, value: color)
                }
                previous = next
            }
        }
        // The legend: one line per named series, right-aligned under the top edge.
        var line = 0
        for (k, entry) in series.enumerated() where !entry.name.isEmpty {
            let y = top + 2 + 10 * line, textWidth = BitmapFont.width(of: entry.name)
            image.fillRect(x: right - textWidth - 12, y: y + 1, width: 8, height: 6, value: plotColors[k % plotColors.count])
            image.drawText(entry.name, x: right - textWidth, y: y, color: black)
            line += 1
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
