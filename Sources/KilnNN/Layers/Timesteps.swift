import Foundation

/// diffusers' sinusoidal timestep embedding (`Timesteps` module, `get_timestep_embedding`),
/// computed in float32 step for step as diffusers does:
///
///     half = dim / 2
///     exponent[i] = −ln(maxPeriod)·i / (half − downscaleFreqShift)
///     arg[n, i] = scale · t[n] · exp(exponent[i])
///     emb = [sin(arg), cos(arg)]          ([cos, sin] when flipSinToCos)
///     zero-padded by one column when dim is odd
///
/// Forward only (timesteps are not learned). `[N]` timesteps → `[N, dim]`. Stable Diffusion's UNet
/// uses flipSinToCos = true, downscaleFreqShift = 0; the function's defaults are false and 1.
public struct Timesteps: Sendable, Equatable {
    public var dim: Int
    public var flipSinToCos: Bool
    public var downscaleFreqShift: Float
    public var scale: Float
    public var maxPeriod: Int

    public init(dim: Int, flipSinToCos: Bool = false, downscaleFreqShift: Float = 1, scale: Float = 1, maxPeriod: Int = 10_000) {
        precondition(dim > 0 && maxPeriod > 0, "Timesteps: dim \(dim) and maxPeriod \(maxPeriod) must be positive")
        precondition(dim / 2 > 0 && Float(dim / 2) != downscaleFreqShift,
                     "Timesteps: half of dim \(dim) minus downscaleFreqShift \(downscaleFreqShift) must not be zero")
        self.dim = dim
        self.flipSinToCos = flipSinToCos
        self.downscaleFreqShift = downscaleFreqShift
        self.scale = scale
        self.maxPeriod = maxPeriod
    }

    /// The frequencies exp(−ln(maxPeriod)·i/(half − shift)), `[half]`.
    public var frequencies: [Float] {
        let half = dim / 2
        let logPeriod = Float(-Foundation.log(Double(maxPeriod)))  // a Python float, rounded to float32 by torch
        let denominator = Float(half) - downscaleFreqShift
        return (0..<half).map { i in Foundation.exp(logPeriod * Float(i) / denominator) }
    }

    /// `[N]` timesteps (fractional allowed) → `[N, dim]`.
    public func forward(_ timesteps: [Float]) -> Tensor {
        let half = dim / 2
        let frequencies = self.frequencies
        var out = Tensor.zeros([timesteps.count, dim])
        for (n, t) in timesteps.enumerated() {
            for i in 0..<half {
                let arg = scale * (t * frequencies[i])
                let (first, second) = flipSinToCos ? (Foundation.cos(arg), Foundation.sin(arg)) : (Foundation.sin(arg), Foundation.cos(arg))
                out.storage[n * dim + i] = first
                out.storage[n * dim + half + i] = second
            }
        }
        return out
    }
}
