#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The forward (noising) process of a discrete diffusion model: βₜ, αₜ = 1 − βₜ and
/// ᾱₜ = ∏ₛ≤ₜ αₛ for t in 0..<T, with the helpers training and score distillation need.
///
/// The numbers are diffusers' to the last bit where its arithmetic allows: diffusers builds βₜ as
/// float32 torch tensors (`torch.linspace` computes `start + step·i` with one fused multiply-add,
/// and from the end for the second half) and takes the cumulative product accumulating in float64
/// (PyTorch's CPU `cumprod`), rounding each ᾱₜ to float32. Kiln does the same, so `alphasCumprod`
/// matches `scheduler.alphas_cumprod` and everything downstream starts from the same float32 values.
public struct NoiseSchedule: Sendable, Equatable {
    /// T, the number of training timesteps.
    public let numTrainTimesteps: Int
    /// βₜ, `[T]`, float32 as diffusers stores them.
    public let betas: [Float]
    /// αₜ = 1 − βₜ, `[T]`.
    public let alphas: [Float]
    /// ᾱₜ = ∏ₛ≤ₜ αₛ, `[T]`.
    public let alphasCumprod: [Float]

    /// Builds the schedule of a config (validated first).
    /// - Throws: `SchedulerConfigError` for invalid values.
    public init(config: SchedulerConfig) throws {
        try config.validate()
        let t = config.numTrainTimesteps
        var betas: [Float]
        if let trained = config.trainedBetas {
            betas = trained.map { Float($0) }  // torch.tensor(trained_betas, dtype=float32)
        } else {
            switch config.betaSchedule {
            case .linear:
                betas = Self.torchLinspace(Float(config.betaStart), Float(config.betaEnd), count: t)
            case .scaledLinear:
                // (β_start^0.5 … β_end^0.5)² : Python float square roots, then float32.
                betas = Self.torchLinspace(Float(config.betaStart.squareRoot()), Float(config.betaEnd.squareRoot()), count: t)
                    .map { $0 * $0 }
            case .squaredCosCapV2:
                betas = Self.cosineBetas(count: t)
            }
        }
        if config.rescaleBetasZeroSNR { betas = Self.rescaledToZeroTerminalSNR(betas) }
        self.numTrainTimesteps = t
        self.betas = betas
        self.alphas = betas.map { 1 - $0 }
        self.alphasCumprod = Self.cumulativeProduct(alphas)
    }

    // MARK: Construction (diffusers' float32 arithmetic)

    /// `torch.linspace(start, end, count, dtype=float32)` on the CPU: step = (end − start)/(count − 1)
    /// in float32; the first half is start + step·i, the second half end − step·(count − 1 − i), each a
    /// single fused multiply-add (PyTorch's kernel is compiled with FMA contraction; checked bit for bit
    /// against torch 2.13 for the diffusers schedules).
    static func torchLinspace(_ start: Float, _ end: Float, count: Int) -> [Float] {
        if count == 1 { return [start] }
        let step = (end - start) / Float(count - 1)
        let halfway = count / 2
        return (0..<count).map { i in
            i < halfway ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(count - 1 - i))
        }
    }

    /// diffusers' `betas_for_alpha_bar(T)` with the cosine ᾱ: βᵢ = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), 0.999)
    /// in float64 (Python floats, libm `cos` and `pow`), then rounded to float32.
    static func cosineBetas(count: Int) -> [Float] {
        func alphaBar(_ t: Double) -> Double { pow(cos((t + 0.008) / 1.008 * Double.pi / 2), 2) }
        return (0..<count).map { i in
            let t1 = Double(i) / Double(count), t2 = Double(i + 1) / Double(count)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
        }
    }

    /// diffusers' `rescale_zero_terminal_snr` (Lin et al. 2023, "Common Diffusion Noise Schedules and
    /// Sample Steps are Flawed", algorithm 1), step by step in float32 as PyTorch runs it: shift
    /// √ᾱ so the last is 0, scale so the first is unchanged, and turn ᾱ back into betas.
    static func rescaledToZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        let cumulative = cumulativeProduct(betas.map { 1 - $0 })
        var root = cumulative.map { $0.squareRoot() }
        let first = root[0], last = root[root.count - 1]
        let scale = first / (first - last)
        for i in root.indices { root[i] -= last }
        for i in root.indices { root[i] *= scale }
        let alphaBar = root.map { $0 * $0 }
        var alphas = [alphaBar[0]]
        for i in 1..<alphaBar.count { alphas.append(alphaBar[i] / alphaBar[i - 1]) }
        return alphas.map { 1 - $0 }
    }

    /// PyTorch's CPU `cumprod` of a float32 tensor: the running product in float64, each output
    /// rounded to float32.
    static func cumulativeProduct(_ values: [Float]) -> [Float] {
        var product = 1.0
        return values.map { v in
            product *= Double(v)
            return Float(product)
        }
    }

    // MARK: Helpers for training and score distillation

    /// ᾱₜ.
    @inlinable public func alphaCumprod(_ t: Int) -> Float { alphasCumprod[t] }

    /// √ᾱₜ, the signal scale of xₜ = √ᾱₜ x₀ + √(1−ᾱₜ) ε (float32, as `add_noise` computes it).
    @inlinable public func sqrtAlphaCumprod(_ t: Int) -> Float { alphasCumprod[t].squareRoot() }

    /// √(1−ᾱₜ), the noise scale of xₜ (float32, as `add_noise` computes it).
    @inlinable public func sqrtOneMinusAlphaCumprod(_ t: Int) -> Float { (1 - alphasCumprod[t]).squareRoot() }

    /// The signal-to-noise ratio ᾱₜ / (1 − ᾱₜ), in float64 (0 at a zero-terminal-SNR end).
    public func snr(_ t: Int) -> Double {
        let a = Double(alphasCumprod[t])
        return a / (1 - a)
    }

    /// σₜ = √((1 − ᾱₜ)/ᾱₜ), the noise level of the variance-exploding form xₜ/√ᾱₜ = x₀ + σₜ ε
    /// (k-diffusion's sigmas), in float64; infinite where ᾱₜ = 0.
    public func sigma(_ t: Int) -> Double {
        let a = Double(alphasCumprod[t])
        return ((1 - a) / a).squareRoot()
    }

    // MARK: Forward process

    /// diffusers' `add_noise`: xₜ = √ᾱₜ x₀ + √(1−ᾱₜ) ε, float32.
    /// - Parameters:
    ///   - original: x₀, `[B, …]` flattened batch-major.
    ///   - noise: ε, same count.
    ///   - timesteps: one timestep for the whole batch, or B (one per equal-sized batch block).
    /// - Throws: `SchedulerError` for mismatched sizes or timesteps outside 0..<T.
    public func addNoise(_ original: [Float], noise: [Float], timesteps: [Int]) throws -> [Float] {
        try perBatch(original, noise, timesteps) { x, e, sa, sb in sa * x + sb * e }
    }

    /// diffusers' `get_velocity`: v = √ᾱₜ ε − √(1−ᾱₜ) x₀, float32 (the v-prediction target).
    /// - Parameters: as `addNoise`, with `sample` = x₀.
    public func velocity(sample: [Float], noise: [Float], timesteps: [Int]) throws -> [Float] {
        try perBatch(sample, noise, timesteps) { x, e, sa, sb in sa * e - sb * x }
    }

    private func perBatch(_ x: [Float], _ e: [Float], _ timesteps: [Int],
                          _ f: (Float, Float, Float, Float) -> Float) throws -> [Float] {
        guard x.count == e.count else { throw SchedulerError.sizeMismatch(what: "noise", expected: x.count, actual: e.count) }
        guard !timesteps.isEmpty, x.count % timesteps.count == 0 else {
            throw SchedulerError.batchMismatch(count: x.count, batchSize: timesteps.count)
        }
        for t in timesteps where !(0..<numTrainTimesteps).contains(t) {
            throw SchedulerError.timestepOutOfRange(timestep: t, numTrainTimesteps: numTrainTimesteps)
        }
        let block = x.count / timesteps.count
        var out = [Float](repeating: 0, count: x.count)
        for (b, t) in timesteps.enumerated() {
            let sa = sqrtAlphaCumprod(t), sb = sqrtOneMinusAlphaCumprod(t)
            for i in (b * block)..<((b + 1) * block) { out[i] = f(x[i], e[i], sa, sb) }
        }
        return out
    }
}
