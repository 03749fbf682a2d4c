/// The texels that bilinear lookups inside a triangle of texture space read.
///
/// Texel coordinates: x to the right, y down from the top row, texel `(i, j)` covering
/// `[i, i+1] × [j, j+1]` with its centre at `(i + 0.5, j + 0.5)`. A bilinear lookup at `p` reads
/// the four texels `⌊p − 0.5⌋ + {0, 1}²`, so texel `(i, j)` is read by some lookup in a set `S`
/// exactly when `S` meets the square `[i − 0.5, i + 1.5] × [j − 0.5, j + 1.5]` (half-width 1 around
/// the texel's centre; its far sides are open in the exact rule, closed here, which only adds
/// texels). That is the triangle's *footprint*: writing every footprint texel makes any bilinear
/// lookup inside the triangle read written texels only.
///
/// Degenerate triangles (segments, points) have the footprints of those sets.
public enum UVFootprint {
    /// Calls `body(x, y)` once for every texel of a `width × height` grid in the footprint of the
    /// triangle `(a, b, c)` (texel coordinates), row by row, x increasing; the square is widened by
    /// 10⁻³ texel so that rounding can only add texels (`UVFootprintReference.forEachTexel(grow: 0)` ⊆ this ⊆
    /// `UVFootprintReference.forEachTexel(grow: 2e-3)`).
    ///
    /// Per row `j` the triangle is clipped to the band `j − 0.5 ≤ y ≤ j + 1.5` (a convex polygon whose
    /// corners are the triangle's corners inside the band and its edges' crossings of the band's
    /// lines); the texels whose square meets the band's part of the triangle are then exactly those
    /// whose x-interval `[i − 0.5, i + 1.5]` meets the clipped polygon's x-extent.
    /// - Complexity: O(rows + texels written); `UVFootprintReference.forEachTexel` tests every texel.
    @inlinable
    public static func forEachTexel(_ a: SIMD2<Float>, _ b: SIMD2<Float>, _ c: SIMD2<Float>, width: Int, height: Int,
                                    _ body: (Int, Int) -> Void) {
        let lowY = min(a.y, b.y, c.y), highY = max(a.y, b.y, c.y)
        guard lowY.isFinite, highY.isFinite, a.x.isFinite, b.x.isFinite, c.x.isFinite else { return }
        // Rows whose band [j − 0.5, j + 1.5] meets [lowY, highY].
        // Widened by `slack` texels so rounding never drops a texel the exact rule includes.
        let slack: Float = 1e-3
        let firstRow = max(0, Int((lowY - 1.5 - slack).rounded(.up))), lastRow = min(height - 1, Int((highY + 0.5 + slack).rounded(.down)))
        guard firstRow <= lastRow else { return }
        let corners = (a, b, c)
        for j in firstRow...lastRow {
            let lo = Float(j) - 0.5 - slack, hi = Float(j) + 1.5 + slack
            var minX = Float.infinity, maxX = -Float.infinity
            func include(_ x: Float) { minX = min(minX, x); maxX = max(maxX, x) }
            for k in 0..<3 {
                let p = k == 0 ? corners.0 : k == 1 ? corners.1 : corners.2
                let q = k == 0 ? corners.1 : k == 1 ? corners.2 : corners.0
                if p.y >= lo && p.y <= hi { include(p.x) }
                for line in [lo, hi] where (p.y - line) * (q.y - line) < 0 {
                    include(p.x + (line - p.y) / (q.y - p.y) * (q.x - p.x))
                }
            }
            guard minX <= maxX else { continue }
            let firstColumn = max(0, Int((minX - 1.5 - slack).rounded(.up))), lastColumn = min(width - 1, Int((maxX + 0.5 + slack).rounded(.down)))
            guard firstColumn <= lastColumn else { continue }
            for i in firstColumn...lastColumn { body(i, j) }
        }
    }
}
