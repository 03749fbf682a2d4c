import KilnCore
@testable import KilnRender

/// A random scene of `count` Gaussians around the origin, seen by a camera on an orbit.
func randomSplatScene(count: Int, shDegree: Int, seed: UInt64, width: Int = 24, height: Int = 20,
                      opacityLogitRange: ClosedRange<Float> = -1...2) -> (SplatParameters<Double>, Camera) {
    var rng = RNG(seed: seed)
    let k = (shDegree + 1) * (shDegree + 1)
    var p = SplatParameters<Double>(zerosLike: count, shDegree: shDegree)
    for i in 0..<count {
        for a in 0..<3 {
            p.means[3 * i + a] = Double(rng.uniform(-0.6...0.6))
            p.logScales[3 * i + a] = Double(rng.uniform(-2.6 ... -1.4))
        }
        for a in 0..<4 { p.rotations[4 * i + a] = Double(rng.normal()) }
        p.opacityLogits[i] = Double(rng.uniform(opacityLogitRange))
        for j in 0..<(3 * k) { p.sh[3 * k * i + j] = Double(rng.uniform(-0.8...0.8)) * (j < 3 ? 1 : 0.4) }
    }
    let camera = Camera.orbit(azimuthDegrees: rng.uniform(0...360), elevationDegrees: rng.uniform(-20...50), radius: 2.5,
                              width: width, height: height, fovYRadians: 0.9)
    return (p, camera)
}

/// Σ of images weighted by fixed random weights: a scalar loss touching every output.
struct WeightedLoss {
    var color: [Double], alpha: [Double], depth: [Double]

    init(pixels: Int, seed: UInt64) {
        var rng = RNG(seed: seed)
        color = (0..<(3 * pixels)).map { _ in Double(rng.uniform(-1...1)) }
        alpha = (0..<pixels).map { _ in Double(rng.uniform(-1...1)) }
        depth = (0..<pixels).map { _ in Double(rng.uniform(-0.3...0.3)) }
    }

    func value<R>(_ images: SplatImages<R>) -> Double {
        var sum = 0.0
        for i in color.indices { sum += color[i] * Double(images.color[i]) }
        for i in alpha.indices { sum += alpha[i] * Double(images.alpha[i]) + depth[i] * Double(images.depth[i]) }
        return sum
    }

    func gradients<R>(as: R.Type = R.self) -> SplatImageGradients<R> {
        SplatImageGradients(color: color.map { R($0) }, alpha: alpha.map { R($0) }, depth: depth.map { R($0) })
    }
}
