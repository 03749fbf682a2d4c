/// Classifier-free guidance (Ho & Salimans 2022) as diffusers' pipelines apply it, in float32.
///
/// Arrays are `[B, …]` model outputs flattened batch-major; `uncond` and `cond` come from the same
/// noisy input with the empty and the real prompt.
public enum ClassifierFreeGuidance {
    /// ε̃ = ε_uncond + s·(ε_cond − ε_uncond).
    /// - Throws: `SchedulerError.sizeMismatch` when the arrays differ in size.
    public static func combine(uncond: [Float], cond: [Float], scale: Double) throws -> [Float] {
        try SchedulerMath.check(cond, "cond", count: uncond.count)
        let s = Float(scale)
        return zip(uncond, cond).map { u, c in u + s * (c - u) }
    }

    /// diffusers' `rescale_noise_cfg` (Lin et al. 2023, §3.4): per sample, scale the guided output to
    /// the standard deviation of the conditional one, then mix:
    /// φ·(ε̃ · std(ε_cond)/std(ε̃)) + (1 − φ)·ε̃. Standard deviations are unbiased (n − 1), over all
    /// elements of a sample, accumulated in float64 as PyTorch's CPU `std` does.
    /// - Parameters:
    ///   - guided: ε̃, from `combine`.
    ///   - cond: ε_cond.
    ///   - guidanceRescale: φ in [0, 1] (0.7 in the paper).
    ///   - batchSize: B.
    /// - Throws: `SchedulerError` for mismatched sizes or a batch size that does not divide them.
    public static func rescale(_ guided: [Float], cond: [Float], guidanceRescale: Double,
                               batchSize: Int = 1) throws -> [Float] {
        try SchedulerMath.check(cond, "cond", count: guided.count)
        try SchedulerMath.check(batchSize: batchSize, count: guided.count)
        let n = guided.count / batchSize
        let phi = Float(guidanceRescale), keep = Float(1 - guidanceRescale)
        var out = guided
        for b in 0..<batchSize {
            let row = (b * n)..<((b + 1) * n)
            let ratio = standardDeviation(cond[row]) / standardDeviation(guided[row])
            for i in row {
                let rescaled = guided[i] * ratio
                out[i] = phi * rescaled + keep * guided[i]
            }
        }
        return out
    }

    /// `combine`, then `rescale` when `guidanceRescale > 0` (what diffusers' pipelines do).
    public static func guide(uncond: [Float], cond: [Float], scale: Double, guidanceRescale: Double = 0,
                             batchSize: Int = 1) throws -> [Float] {
        let guided = try combine(uncond: uncond, cond: cond, scale: scale)
        guard guidanceRescale > 0 else { return guided }
        return try rescale(guided, cond: cond, guidanceRescale: guidanceRescale, batchSize: batchSize)
    }

    /// Unbiased standard deviation in float64, rounded to float32 (NaN for fewer than 2 elements).
    static func standardDeviation(_ x: ArraySlice<Float>) -> Float {
        let n = Double(x.count)
        let mean = x.reduce(0.0) { $0 + Double($1) } / n
        let m2 = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) }
        return Float((m2 / (n - 1)).squareRoot())
    }
}
