import KilnCore
import RealModule

/// Emission–absorption volume rendering along rays (NeRF, Mildenhall et al. 2020), forward and
/// exact backward, over flat arrays.
///
///     αᵢ = 1 − exp(−σᵢ δᵢ),  Tᵢ = ∏_{j<i} (1 − αⱼ),  wᵢ = Tᵢ αᵢ
///     C = Σ wᵢ cᵢ + (1 − Σ wᵢ)·background,  A = Σ wᵢ,  D = Σ wᵢ tᵢ
///
/// Layout: R rays of S samples each, sample-major within a ray. `sigmas [R, S]` (≥ 0),
/// `colors [R, S, 3]`, `t [R, S]` sample distances and `deltas [R, S]` interval lengths (a sample
/// with δ = 0 contributes nothing: padding for rays with fewer samples). A ray stops once
/// T < `earlyStop` (the remaining weights are below it), as instant-ngp does.
public enum VolumeRendering {
    public static let earlyStop: Float = 1e-4

    /// What the forward pass gives, per ray.
    public struct Output: Sendable {
        /// `[R, 3]` composited colour over the background.
        public var color: [Float]
        /// `[R]` opacity Σ wᵢ.
        public var alpha: [Float]
        /// `[R]` Σ wᵢ tᵢ (divide by alpha for the expected depth).
        public var depth: [Float]
        /// `[R]` samples each ray used before stopping (the backward pass walks as many).
        public var used: [Int32]
    }

    /// Composites every ray. Parallel over rays; per-ray results do not depend on the threads.
    public static func forward(sigmas: [Float], colors: [Float], t: [Float], deltas: [Float], samplesPerRay s: Int,
                               background: SIMD3<Float>, threads: Int = Parallel.defaultThreadCount) -> Output {
        let r = sigmas.count / max(1, s)
        precondition(sigmas.count == r * s && colors.count == 3 * r * s && t.count == r * s && deltas.count == r * s,
                     "VolumeRendering.forward: inconsistent sizes for \(r) rays of \(s) samples")
        var out = Output(color: [Float](repeating: 0, count: 3 * r), alpha: [Float](repeating: 0, count: r),
                         depth: [Float](repeating: 0, count: r), used: [Int32](repeating: 0, count: r))
        out.color.withUnsafeMutableBufferPointer { cBuffer in out.alpha.withUnsafeMutableBufferPointer { aBuffer in
        out.depth.withUnsafeMutableBufferPointer { dBuffer in out.used.withUnsafeMutableBufferPointer { uBuffer in
            let color = UnsafeMutableSendableBuffer(cBuffer), alpha = UnsafeMutableSendableBuffer(aBuffer)
            let depth = UnsafeMutableSendableBuffer(dBuffer), used = UnsafeMutableSendableBuffer(uBuffer)
            parallelFor(r, threads: threads) { rays in
                for ray in rays {
                    var transmittance: Float = 1, c = SIMD3<Float>.zero, d: Float = 0
                    var n = 0
                    for i in 0..<s {
                        let k = ray * s + i
                        n = i + 1
                        let a = 1 - Float.exp(-sigmas[k] * deltas[k])
                        let w = transmittance * a
                        c += w * SIMD3(colors[3 * k], colors[3 * k + 1], colors[3 * k + 2])
                        d += w * t[k]
                        transmittance *= 1 - a
                        if transmittance < earlyStop { break }
                    }
                    let opacity = 1 - transmittance
                    c += transmittance * background
                    color[3 * ray] = c.x; color[3 * ray + 1] = c.y; color[3 * ray + 2] = c.z
                    alpha[ray] = opacity
                    depth[ray] = d
                    used[ray] = Int32(n)
                }
            }
        } } } }
        return out
    }

    /// Gradients of a loss with respect to the samples, from its gradients with respect to the
    /// outputs (`dColor [R, 3]`, `dAlpha [R]`, `dDepth [R]`; nil ones are zero).
    ///
    /// Walking front to back with the suffix sums S_c = Σ_{j>i} wⱼ cⱼ (and S_d, S_w), from the
    /// totals: ∂C/∂σᵢ = δᵢ·(Tᵢ₊₁ cᵢ − S_c − T_end·background), ∂A/∂σᵢ = δᵢ·T_end,
    /// ∂D/∂σᵢ = δᵢ·(Tᵢ₊₁ tᵢ − S_d); ∂C/∂cᵢ = wᵢ. With early stopping the samples past the stop
    /// are not part of the function and get zero.
    /// - Returns: `dSigmas [R, S]`, `dColors [R, S, 3]`.
    public static func backward(sigmas: [Float], colors: [Float], t: [Float], deltas: [Float], samplesPerRay s: Int,
                                background: SIMD3<Float>, output: Output, dColor: [Float], dAlpha: [Float]? = nil, dDepth: [Float]? = nil,
                                threads: Int = Parallel.defaultThreadCount) -> (dSigmas: [Float], dColors: [Float]) {
        let r = sigmas.count / max(1, s)
        precondition(dColor.count == 3 * r && (dAlpha?.count ?? r) == r && (dDepth?.count ?? r) == r, "VolumeRendering.backward: gradient sizes")
        var dSigmas = [Float](repeating: 0, count: r * s), dColors = [Float](repeating: 0, count: 3 * r * s)
        dSigmas.withUnsafeMutableBufferPointer { sBuffer in dColors.withUnsafeMutableBufferPointer { cBuffer in
            let gs = UnsafeMutableSendableBuffer(sBuffer), gc = UnsafeMutableSendableBuffer(cBuffer)
            parallelFor(r, threads: threads) { rays in
                for ray in rays {
                    let n = Int(output.used[ray])
                    let g = SIMD3(dColor[3 * ray], dColor[3 * ray + 1], dColor[3 * ray + 2])
                    let ga = dAlpha?[ray] ?? 0, gd = dDepth?[ray] ?? 0
                    let finalT = 1 - output.alpha[ray]
                    // Colour and depth without the background, accumulated front to back.
                    let total = SIMD3(output.color[3 * ray], output.color[3 * ray + 1], output.color[3 * ray + 2]) - finalT * background
                    var prefixColor = SIMD3<Float>.zero, prefixDepth: Float = 0
                    var transmittance: Float = 1
                    for i in 0..<n {
                        let k = ray * s + i
                        let a = 1 - Float.exp(-sigmas[k] * deltas[k])
                        let w = transmittance * a
                        let ci = SIMD3(colors[3 * k], colors[3 * k + 1], colors[3 * k + 2])
                        prefixColor += w * ci
                        prefixDepth += w * t[k]
                        let next = transmittance * (1 - a)
                        let suffixColor = total - prefixColor, suffixDepth = output.depth[ray] - prefixDepth
                        let dCdSigma = deltas[k] * (next * ci - suffixColor - finalT * background)
                        let dDdSigma = deltas[k] * (next * t[k] - suffixDepth)
                        let dAdSigma = deltas[k] * finalT
                        gs[k] = (g * dCdSigma).sum() + ga * dAdSigma + gd * dDdSigma
                        gc[3 * k] = w * g.x; gc[3 * k + 1] = w * g.y; gc[3 * k + 2] = w * g.z
                        transmittance = next
                    }
                }
            }
        } }
        return (dSigmas, dColors)
    }
}
