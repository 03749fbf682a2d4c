import KilnCore
@testable import KilnRender

/// A random triangle soup seen by an orbit camera: triangles of mixed sizes around the origin,
/// some crossing the near plane or lying behind the camera, some off-screen, some degenerate.
struct MeshScene {
    var clip: [Double]
    var triangles: [SIMD3<UInt32>]
    var width: Int
    var height: Int
    var clipFloat: [Float] { clip.map { Float($0) } }

    init(triangleCount: Int, seed: UInt64, width: Int, height: Int, spread: Float = 1.2, size: Float = 0.6, cameraRadius: Float = 2.5) {
        var rng = RNG(seed: seed)
        var points: [SIMD3<Float>] = []
        triangles = []
        for t in 0..<triangleCount {
            let center = SIMD3(rng.uniform(-spread...spread), rng.uniform(-spread...spread), rng.uniform(-spread...spread))
            let s = size * rng.uniform(0.2...1)
            for _ in 0..<3 { points.append(center + SIMD3(rng.uniform(-s...s), rng.uniform(-s...s), rng.uniform(-s...s))) }
            if t % 7 == 3 { points[points.count - 1] = points[points.count - 2] }  // a degenerate one now and then
            let base = UInt32(3 * t)
            triangles.append(SIMD3(base, base + 1, base + 2))
        }
        let camera = Camera.orbit(azimuthDegrees: rng.uniform(0...360), elevationDegrees: rng.uniform(-30...40), radius: cameraRadius,
                                  width: width, height: height, fovYRadians: 0.9)
        clip = camera.clipPositions(points, near: 0.3, far: 8).map { Double($0) }
        self.width = width
        self.height = height
    }

    init(clip: [Double], triangles: [SIMD3<UInt32>], width: Int, height: Int) {
        self.clip = clip
        self.triangles = triangles
        self.width = width
        self.height = height
    }
}

/// Fixed random weights: the loss Σ wᵢ·outputᵢ touches every output element.
func randomWeights(_ count: Int, seed: UInt64) -> [Double] {
    var rng = RNG(seed: seed)
    return (0..<count).map { _ in Double(rng.uniform(-1...1)) }
}

func weighted(_ values: [Double], _ weights: [Double]) -> Double {
    zip(values, weights).reduce(0) { $0 + $1.0 * $1.1 }
}

/// The worst relative error of `actual` against `expected`, scaled by the larger of |expected|
/// and `floor` of the largest |expected| (so near-zero entries do not dominate).
func worstRelativeError(_ actual: [Double], _ expected: [Double], floorFraction: Double = 1e-3) -> (error: Double, index: Int) {
    let scale = max(expected.map(abs).max() ?? 0, 1e-30) * floorFraction
    var worst = (0.0, -1)
    for i in expected.indices {
        let e = abs(actual[i] - expected[i]) / max(abs(expected[i]), scale)
        if e > worst.0 { worst = (e, i) }
    }
    return worst
}

/// Central finite differences in float64 of `loss` with respect to each entry of `x` named in
/// `indices`; entries where the perturbation changes `discrete` (visibility) are reported as nil.
func finiteDifferences(_ x: [Double], indices: [Int], step: Double = 1e-6, discrete: ([Double]) -> [Int32], loss: ([Double]) -> Double) -> [Int: Double?] {
    let base = discrete(x)
    var out: [Int: Double?] = [:]
    for i in indices {
        var plus = x, minus = x
        plus[i] += step
        minus[i] -= step
        guard discrete(plus) == base, discrete(minus) == base else { out[i] = .some(nil); continue }
        out[i] = (loss(plus) - loss(minus)) / (2 * step)
    }
    return out
}
