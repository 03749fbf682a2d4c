import KilnCore
import RealModule

/// How speckled an asset's colours are: the high-frequency part of the colour inside the object,
/// per view and on average.
///
/// For one view, with M the object's pixels (alpha > ½, shrunk by one pixel so that the
/// antialiased silhouette against the background does not count), I the colour in [0, 1] and
/// B(I) its Gaussian blur (σ = 1 pixel, 5 × 5 taps) normalised over M (only object pixels are
/// averaged, so the background never bleeds in):
///
///     speckle = √( Σ_{p∈M} ‖I(p) − B(I)(p)‖² / (3·|M|) )
///
/// the root-mean-square colour that a one-pixel blur removes: 0 for flat or softly shaded colour,
/// a little at the borders between an object's parts, about 0.87·σ for colour noise of standard
/// deviation σ on every pixel (SDS's magenta and cyan speckles). Not a share of the colour's
/// variance: a clean two-coloured object with a small second part (a duck's beak) would score high
/// on that, its variance being mostly that border. A view with fewer than 16 object pixels has no
/// score (nil) and stays out of the mean.
public struct SpeckleMeasure: Codable, Sendable, Equatable {
    /// Per view, in the order measured; nil for a view with (almost) no object.
    public var perView: [Double?]
    /// The mean over the views that have a score (0 when none has).
    public var mean: Double

    /// Measures `views` (colour and alpha of each).
    public static func measure(_ views: [PosedView]) -> SpeckleMeasure {
        let values = views.map { speckle(color: $0.color, alpha: $0.alpha) }
        let scored = values.compactMap { $0 }
        return SpeckleMeasure(perView: values, mean: scored.isEmpty ? 0 : scored.reduce(0, +) / Double(scored.count))
    }

    /// The 5 × 5 Gaussian weights of σ = 1 along one axis.
    static let taps: [Double] = (-2...2).map { d in Double.exp(-Double(d * d) / 2) }

    /// One view's speckle (see the type's description). `color` is RGB, `alpha` one channel, the same size.
    public static func speckle(color: Image, alpha: Image) -> Double? {
        precondition(color.channels == 3 && alpha.channels == 1 && color.width == alpha.width && color.height == alpha.height,
                     "SpeckleMeasure: an RGB image and an alpha image of the same size")
        let (w, h) = (color.width, color.height)
        // The object, shrunk by one pixel (4-neighbourhood).
        var inside = [Bool](repeating: false, count: w * h)
        for y in 0..<h {
            for x in 0..<w where alpha.pixels[y * w + x] > 0.5 {
                let neighbours = [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
                inside[y * w + x] = neighbours.allSatisfy { nx, ny in nx >= 0 && nx < w && ny >= 0 && ny < h && alpha.pixels[ny * w + nx] > 0.5 }
            }
        }
        let count = inside.lazy.filter { $0 }.count
        if count < 16 { return nil }
        var high = 0.0
        for y in 0..<h {
            for x in 0..<w where inside[y * w + x] {
                var sum = SIMD3<Double>.zero, weight = 0.0
                for dy in -2...2 {
                    let yy = y + dy
                    guard yy >= 0 && yy < h else { continue }
                    for dx in -2...2 {
                        let xx = x + dx
                        guard xx >= 0 && xx < w && inside[yy * w + xx] else { continue }
                        let t = taps[dy + 2] * taps[dx + 2]
                        sum += t * rgb(color, yy * w + xx)
                        weight += t
                    }
                }
                let d = rgb(color, y * w + x) - sum / weight
                high += (d * d).sum()
            }
        }
        return (high / Double(3 * count)).squareRoot()
    }

    @inline(__always)
    static func rgb(_ image: Image, _ p: Int) -> SIMD3<Double> {
        SIMD3(Double(image.pixels[3 * p]), Double(image.pixels[3 * p + 1]), Double(image.pixels[3 * p + 2]))
    }
}
