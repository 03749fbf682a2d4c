import Foundation
import KilnCore
import KilnNN
import KilnRender

/// The NeRF representation's field (Instant-NGP style, as threestudio's "implicit-volume"):
///
///     h = HashGrid((x − centre)/(2·half) + ½)             [N, L·F]
///     z = W₂·relu(W₁·h + b₁) + b₂                          [N, 4]
///     σ = exp(min(z₀ + blob(x), 15)),  blob(x) = λ·(1 − ‖x − centre‖/r)   (Magic3D's density bias)
///     c = sigmoid(z₁…₃)                                    diffuse colour, display values
///
/// The density bias starts the optimisation from a soft ball instead of empty space. `exp` is
/// truncated at 15 (gradient zero above it) as threestudio's `trunc_exp` clamps it.
public final class NeRFField: Module {
    public let grid: HashGrid
    public let table: Parameter
    let hidden: Linear, output: Linear
    public let center: SIMD3<Float>
    public let halfSize: Float
    public let blobDensity: Float, blobRadius: Float

    public init(grid: HashGrid = HashGrid(levels: 12, featuresPerLevel: 2, log2TableSize: 15, baseResolution: 8, maxResolution: 256),
                width: Int = 64, center: SIMD3<Float> = .zero, halfSize: Float = 0.7, blobDensity: Float = 10, blobRadius: Float = 0.5,
                rng: inout RNG) {
        self.grid = grid
        table = Parameter(Tensor(shape: [grid.parameterCount], storage: grid.initialTable(rng: &rng)))
        hidden = Linear(inFeatures: grid.outputWidth, outFeatures: width, rng: &rng)
        output = Linear(inFeatures: width, outFeatures: 4, rng: &rng)
        self.center = center
        self.halfSize = halfSize
        self.blobDensity = blobDensity
        self.blobRadius = blobRadius
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("encoding.table", table)] + prefixed("mlp.0", hidden) + prefixed("mlp.2", output)
    }

    /// What `backward` needs.
    public struct Saved {
        var unit: [Float], features: Tensor, preActivation: Tensor, activated: Tensor, raw: Tensor
        public var sigma: [Float], color: [Float]
    }

    /// Density and colour at world points `[N, 3]`.
    /// - Returns: `sigma [N]` (≥ 0), `color [N, 3]` in (0, 1), and what the backward pass needs.
    public func forward(points: [Float], threads: Int = Parallel.defaultThreadCount) -> Saved {
        let n = points.count / 3
        var unit = [Float](repeating: 0, count: points.count)
        let scale = 1 / (2 * halfSize)
        for i in 0..<n { for a in 0..<3 { unit[3 * i + a] = (points[3 * i + a] - center[a]) * scale + 0.5 } }
        let features = Tensor(shape: [n, grid.outputWidth], storage: grid.forward(points: unit, table: table.value.storage, threads: threads))
        let pre = hidden.forward(features)
        let activated = pre.map { max(0, $0) }
        let raw = output.forward(activated)
        var sigma = [Float](repeating: 0, count: n), color = [Float](repeating: 0, count: 3 * n)
        for i in 0..<n {
            let p = SIMD3(points[3 * i], points[3 * i + 1], points[3 * i + 2]) - center
            let blob = blobDensity * (1 - (p * p).sum().squareRoot() / blobRadius)
            sigma[i] = Foundation.exp(min(raw.storage[4 * i] + blob, 15))
            for c in 0..<3 { color[3 * i + c] = 1 / (1 + Foundation.exp(-raw.storage[4 * i + 1 + c])) }
        }
        return Saved(unit: unit, features: features, preActivation: pre, activated: activated, raw: raw, sigma: sigma, color: color)
    }

    /// Adds the parameter gradients of a loss with gradients `dSigma [N]` and `dColor [N, 3]`.
    public func backward(_ s: Saved, dSigma: [Float], dColor: [Float], threads: Int = Parallel.defaultThreadCount) {
        let n = s.sigma.count
        var dRaw = [Float](repeating: 0, count: 4 * n)
        for i in 0..<n {
            // σ = exp(z + blob) below the cap: dσ/dz = σ; above it the clamp passes nothing.
            let clamped = s.sigma[i] >= Foundation.exp(Float(15)) * 0.9999
            dRaw[4 * i] = clamped ? 0 : dSigma[i] * s.sigma[i]
            for c in 0..<3 {
                let y = s.color[3 * i + c]
                dRaw[4 * i + 1 + c] = dColor[3 * i + c] * y * (1 - y)
            }
        }
        let dActivated = output.backward(input: s.activated, outputGradient: Tensor(shape: [n, 4], storage: dRaw))
        var dPre = dActivated.storage
        for i in 0..<dPre.count where s.preActivation.storage[i] <= 0 { dPre[i] = 0 }
        let dFeatures = hidden.backward(input: s.features, outputGradient: Tensor(shape: s.preActivation.shape, storage: dPre))
        let dTable = grid.backward(points: s.unit, featureGradient: dFeatures.storage, threads: threads)
        table.withUnsafeMutableGradient { g in for i in 0..<g.count { g[i] += dTable[i] } }
    }
}
