/// Plain version of `UVFootprint.forEachTexel`: every texel of the grid is tested with the
/// separating-axis theorem (the square's two axes and the triangle's three edge normals; a
/// zero-length edge gives no axis, so segments and points are handled too), with the square's
/// half-width `1 + grow`.
public enum UVFootprintReference {
    public static func forEachTexel(_ a: SIMD2<Float>, _ b: SIMD2<Float>, _ c: SIMD2<Float>, width: Int, height: Int,
                                    grow: Float = 0, _ body: (Int, Int) -> Void) {
        let corners = [a, b, c]
        guard corners.allSatisfy({ $0.x.isFinite && $0.y.isFinite }) else { return }
        for j in 0..<height {
            for i in 0..<width {
                let lo = -0.5 - grow, hi = 1.5 + grow
                let square = [SIMD2(Float(i) + lo, Float(j) + lo), SIMD2(Float(i) + hi, Float(j) + lo),
                              SIMD2(Float(i) + hi, Float(j) + hi), SIMD2(Float(i) + lo, Float(j) + hi)]
                var axes = [SIMD2<Float>(1, 0), SIMD2<Float>(0, 1)]
                for k in 0..<3 {
                    let e = corners[(k + 1) % 3] - corners[k]
                    if e != .zero { axes.append(SIMD2(-e.y, e.x)) }
                }
                let separated = axes.contains { axis in
                    let t = corners.map { dot($0, axis) }, s = square.map { dot($0, axis) }
                    return t.max()! < s.min()! || s.max()! < t.min()!
                }
                if !separated { body(i, j) }
            }
        }
    }
}
