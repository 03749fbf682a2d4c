extension NNReference {
    /// Mean μ and 1/√(σ² + ε) of `values`, σ² the biased variance (two passes).
    static func statistics<R: BinaryFloatingPoint>(_ values: ArraySlice<R>, eps: R) -> (mean: R, rstd: R) {
        let mean = values.reduce(0, +) / R(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / R(values.count)
        return (mean, 1 / (variance + eps).squareRoot())
    }

    /// Normalises each of `groups` consecutive blocks of `size` values: x̂ = (x − μ)/√(σ² + ε) with
    /// the biased variance, then `y = x̂·γ[channel] + β[channel]` where consecutive runs of
    /// `channelSize` values share a channel (`channelCount = size / channelSize` channels per block,
    /// numbered continuing across blocks modulo `gamma.count`).
    static func blockNorm<R: BinaryFloatingPoint>(_ x: [R], blocks: Int, size: Int, channelSize: Int, eps: R,
                                                  gamma: [R]?, beta: [R]?) -> [R] {
        var y = [R](repeating: 0, count: x.count)
        for b in 0..<blocks {
            let base = b * size
            let (mean, rstd) = statistics(x[base..<(base + size)], eps: eps)
            for i in 0..<size {
                let c = (base + i) / channelSize % (gamma?.count ?? 1)
                y[base + i] = (x[base + i] - mean) * rstd * (gamma?[c] ?? 1) + (beta?[c] ?? 0)
            }
        }
        return y
    }

    /// Gradients of `blockNorm`: dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dy·γ,
    /// dγ = Σ dy·x̂, dβ = Σ dy (per channel).
    static func blockNormBackward<R: BinaryFloatingPoint>(_ x: [R], outputGradient dy: [R], blocks: Int, size: Int,
                                                          channelSize: Int, channels: Int, eps: R, gamma: [R]?)
        -> (input: [R], gamma: [R], beta: [R]) {
        var dx = [R](repeating: 0, count: x.count)
        var dg = [R](repeating: 0, count: channels), dbeta = [R](repeating: 0, count: channels)
        for b in 0..<blocks {
            let base = b * size
            let (mean, rstd) = statistics(x[base..<(base + size)], eps: eps)
            var meanDxhat: R = 0, meanDxhatXhat: R = 0
            for i in 0..<size {
                let c = (base + i) / channelSize % channels
                let xhat = (x[base + i] - mean) * rstd
                let dxhat = dy[base + i] * (gamma?[c] ?? 1)
                meanDxhat += dxhat
                meanDxhatXhat += dxhat * xhat
                dg[c] += dy[base + i] * xhat
                dbeta[c] += dy[base + i]
            }
            meanDxhat /= R(size)
            meanDxhatXhat /= R(size)
            for i in 0..<size {
                let c = (base + i) / channelSize % channels
                let xhat = (x[base + i] - mean) * rstd
                let dxhat = dy[base + i] * (gamma?[c] ?? 1)
                dx[base + i] = rstd * (dxhat - meanDxhat - xhat * meanDxhatXhat)
            }
        }
        return (dx, dg, dbeta)
    }

    // MARK: GroupNorm

    /// `torch.nn.GroupNorm`: x `[N, C, S…]` (S = spatial values per channel), `groups` dividing C,
    /// statistics over each group's (C/groups)·S values, γ and β `[C]` (nil: not affine).
    public static func groupNorm<R: BinaryFloatingPoint>(_ x: [R], batch: Int, channels: Int, spatial: Int, groups: Int,
                                                         eps: R, gamma: [R]?, beta: [R]?) -> [R] {
        blockNorm(x, blocks: batch * groups, size: channels / groups * spatial, channelSize: spatial, eps: eps, gamma: gamma, beta: beta)
    }

    /// Gradients of `groupNorm` given ∂L/∂y: input `[N, C, S]`, γ `[C]`, β `[C]`.
    public static func groupNormBackward<R: BinaryFloatingPoint>(_ x: [R], outputGradient dy: [R], batch: Int, channels: Int,
                                                                 spatial: Int, groups: Int, eps: R, gamma: [R]?)
        -> (input: [R], gamma: [R], beta: [R]) {
        blockNormBackward(x, outputGradient: dy, blocks: batch * groups, size: channels / groups * spatial,
                          channelSize: spatial, channels: channels, eps: eps, gamma: gamma)
    }

    // MARK: LayerNorm

    /// `torch.nn.LayerNorm(D)`: each row of x `[M, D]` normalised, then γ `[D]`, β `[D]`.
    public static func layerNorm<R: BinaryFloatingPoint>(_ x: [R], rows: Int, features: Int, eps: R, gamma: [R]?, beta: [R]?) -> [R] {
        blockNorm(x, blocks: rows, size: features, channelSize: 1, eps: eps, gamma: gamma, beta: beta)
    }

    /// Gradients of `layerNorm` given ∂L/∂y `[M, D]`.
    public static func layerNormBackward<R: BinaryFloatingPoint>(_ x: [R], outputGradient dy: [R], rows: Int, features: Int,
                                                                 eps: R, gamma: [R]?) -> (input: [R], gamma: [R], beta: [R]) {
        blockNormBackward(x, outputGradient: dy, blocks: rows, size: features, channelSize: 1, channels: features, eps: eps, gamma: gamma)
    }
}
