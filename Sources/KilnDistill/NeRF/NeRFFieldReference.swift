import Foundation
import KilnCore
import KilnNN

/// The field's passes written plainly through its `Linear` layers, whole arrays at a time: the
/// reference the blocked passes of `NeRFField.forward` and `backward` are tested against.
extension NeRFField {
    /// σ `[N]` and colour `[N, 3]` at world points `[N, 3]`.
    public func referenceForward(points: [Float]) -> (sigma: [Float], color: [Float]) {
        let n = points.count / 3
        let features = Tensor(shape: [n, grid.outputWidth], storage: grid.forward(points: unitPoints(points), table: table.value.storage, threads: 1))
        let raw = output.forward(hidden.forward(features).map { max(0, $0) })
        var sigma = [Float](repeating: 0, count: n), color = [Float](repeating: 0, count: 3 * n)
        for i in 0..<n {
            let p = SIMD3(points[3 * i], points[3 * i + 1], points[3 * i + 2]) - center
            let blob = blobDensity * (1 - (p * p).sum().squareRoot() / blobRadius)
            sigma[i] = Foundation.exp(min(raw.storage[4 * i] + blob, 15))
            for c in 0..<3 { color[3 * i + c] = 1 / (1 + Foundation.exp(-raw.storage[4 * i + 1 + c])) }
        }
        return (sigma, color)
    }

    /// Adds the parameter gradients of a loss with gradients `dSigma [N]` and `dColor [N, 3]` at
    /// world points `[N, 3]`.
    public func referenceBackward(points: [Float], dSigma: [Float], dColor: [Float]) {
        let n = points.count / 3
        let unit = unitPoints(points)
        let features = Tensor(shape: [n, grid.outputWidth], storage: grid.forward(points: unit, table: table.value.storage, threads: 1))
        let pre = hidden.forward(features)
        let activated = pre.map { max(0, $0) }
        let (sigma, color) = referenceForward(points: points)
        var dRaw = [Float](repeating: 0, count: 4 * n)
        for i in 0..<n {
            dRaw[4 * i] = sigma[i] >= Self.sigmaCap * 0.9999 ? 0 : dSigma[i] * sigma[i]
            for c in 0..<3 { dRaw[4 * i + 1 + c] = dColor[3 * i + c] * color[3 * i + c] * (1 - color[3 * i + c]) }
        }
        let dActivated = output.backward(input: activated, outputGradient: Tensor(shape: [n, 4], storage: dRaw))
        var dPre = dActivated.storage
        for i in 0..<dPre.count where pre.storage[i] <= 0 { dPre[i] = 0 }
        let dFeatures = hidden.backward(input: features, outputGradient: Tensor(shape: pre.shape, storage: dPre))
        let dTable = grid.backward(points: unit, featureGradient: dFeatures.storage, threads: 1)
        table.withUnsafeMutableGradient { g in for i in 0..<g.count { g[i] += dTable[i] } }
    }
}
