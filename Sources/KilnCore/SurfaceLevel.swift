import Foundation

/// Choosing the iso level at which to extract a soft volume's surface (a NeRF's σ, splats'
/// density): the level whose level set has the volume's own silhouettes. A ray meets the level set
/// {v > level} when the largest value along it (its *peak*) exceeds the level; the level whose rays
/// that meet it best match the pixels the volume renders opaque wins, by intersection over union
/// pooled over all pixels of all views. A fixed level fails on volumes whose surface is soft and
/// translucent (score distillation makes those): too high keeps only the densest part, too low
/// wraps the haze around the object.
public enum SurfaceLevel {
    /// `count` levels spaced evenly in log between `lowest` and `highest`.
    public static func candidates(from lowest: Float, to highest: Float, count: Int) -> [Float] {
        precondition(lowest > 0 && highest > lowest && count >= 2, "SurfaceLevel.candidates: need 0 < lowest < highest and count ≥ 2")
        let a = Foundation.log10(Double(lowest)), b = Foundation.log10(Double(highest))
        return (0..<count).map { Float(Foundation.pow(10, a + (b - a) * Double($0) / Double(count - 1))) }
    }

    /// The best of `candidates` for rays with these peaks and opaque flags (same order).
    /// - Returns: the level, its IoU, and every candidate with its IoU.
    public static func best(peaks: [Float], opaque: [Bool], candidates: [Float]) -> (level: Float, iou: Double, tried: [(level: Float, iou: Double)]) {
        precondition(peaks.count == opaque.count && !candidates.isEmpty, "SurfaceLevel.best: one opaque flag per peak, and some candidates")
        var both = [Double](repeating: 0, count: candidates.count), either = both
        for (peak, isOpaque) in zip(peaks, opaque) {
            for (k, level) in candidates.enumerated() {
                let inside = peak > level
                if inside && isOpaque { both[k] += 1 }
                if inside || isOpaque { either[k] += 1 }
            }
        }
        let tried = candidates.indices.map { (level: candidates[$0], iou: either[$0] > 0 ? both[$0] / either[$0] : 0) }
        let best = tried.max { $0.iou < $1.iou }!
        return (best.level, best.iou, tried)
    }
}
