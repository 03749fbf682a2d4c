import KilnCore
import RealModule

/// The plain reference encoding in float64: same corners and slots, literal trilinear sums.
public enum HashGridReference {
    public static func forward(_ grid: HashGrid, points: [Double], table: [Double]) -> [Double] {
        let f = grid.featuresPerLevel
        var out = [Double](repeating: 0, count: points.count / 3 * grid.outputWidth)
        visitCorners(grid, points: points) { i, l, slot, w in
            for j in 0..<f { out[i * grid.outputWidth + l * f + j] += w * table[slot * f + j] }
        }
        return out
    }

    /// ∂L/∂table from ∂L/∂features `[N, L·F]`: the transpose of `forward`, as literal sums.
    public static func backward(_ grid: HashGrid, points: [Double], featureGradient: [Double]) -> [Double] {
        let f = grid.featuresPerLevel
        var out = [Double](repeating: 0, count: grid.parameterCount)
        visitCorners(grid, points: points) { i, l, slot, w in
            for j in 0..<f { out[slot * f + j] += w * featureGradient[i * grid.outputWidth + l * f + j] }
        }
        return out
    }

    /// Calls `body(point, level, slot in the whole table, trilinear weight)` for the 8 corners of
    /// every point at every level.
    static func visitCorners(_ grid: HashGrid, points: [Double], _ body: (Int, Int, Int, Double) -> Void) {
        for i in 0..<(points.count / 3) {
            for l in 0..<grid.levels {
                let n = grid.resolution(level: l)
                var x = [0.0, 0, 0], cell = [0, 0, 0]
                for a in 0..<3 {
                    x[a] = min(1, max(0, points[3 * i + a])) * Double(n)
                    cell[a] = min(n - 1, Int(x[a].rounded(.down)))
                    x[a] -= Double(cell[a])
                }
                for c in 0..<8 {
                    let d = [c & 1, (c >> 1) & 1, (c >> 2) & 1]
                    var w = 1.0
                    for a in 0..<3 { w *= d[a] == 1 ? x[a] : 1 - x[a] }
                    body(i, l, l * grid.tableSize + grid.slot(cell[0] + d[0], cell[1] + d[1], cell[2] + d[2], resolution: n), w)
                }
            }
        }
    }
}

@inline(__always) func simdClamp(_ v: SIMD3<Float>, _ lo: Float, _ hi: Float) -> SIMD3<Float> {
    SIMD3(min(hi, max(lo, v.x)), min(hi, max(lo, v.y)), min(hi, max(lo, v.z)))
}

@inline(__always) func simdMin(_ a: SIMD3<Int>, _ b: SIMD3<Int>) -> SIMD3<Int> {
    SIMD3(min(a.x, b.x), min(a.y, b.y), min(a.z, b.z))
}
