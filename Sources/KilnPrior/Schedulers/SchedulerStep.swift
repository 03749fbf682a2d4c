/// What one reverse-diffusion step returns.
public struct SchedulerStepOutput: Sendable, Equatable {
    /// xₜ₋₁ (the next sample), the input's shape.
    public var prevSample: [Float]
    /// The model's estimate of x₀ after clipping or thresholding, the input's shape.
    public var predOriginalSample: [Float]

    public init(prevSample: [Float], predOriginalSample: [Float]) {
        self.prevSample = prevSample
        self.predOriginalSample = predOriginalSample
    }
}

/// The arithmetic DDPM and DDIM share, in float32 with diffusers' operation order (each torch op
/// rounds once; nothing here is fused unless PyTorch fuses it).
enum SchedulerMath {
    /// PyTorch's `clamp`: NaN stays NaN.
    @inline(__always)
    static func clamp(_ x: Float, _ lo: Float, _ hi: Float) -> Float {
        x.isNaN ? x : min(max(x, lo), hi)
    }

    /// x₀ predicted from the model output (diffusers' `pred_original_sample` before clipping).
    /// - Parameters: `alphaProd` = ᾱₜ, `betaProd` = 1 − ᾱₜ.
    static func predictOriginal(_ type: SchedulerConfig.PredictionType, modelOutput: [Float], sample: [Float],
                                alphaProd: Float, betaProd: Float) -> [Float] {
        let sa = alphaProd.squareRoot(), sb = betaProd.squareRoot()
        switch type {
        case .epsilon: return zip(sample, modelOutput).map { x, e in (x - sb * e) / sa }
        case .sample: return modelOutput
        case .vPrediction: return zip(sample, modelOutput).map { x, v in sa * x - sb * v }
        }
    }

    /// Dynamic thresholding or clipping of x₀, as the config says (thresholding wins, as in diffusers).
    static func clipOrThreshold(_ x0: inout [Float], config: SchedulerConfig, batchSize: Int) {
        if config.thresholding {
            threshold(&x0, batchSize: batchSize, ratio: Float(config.dynamicThresholdingRatio),
                      maxValue: Float(config.sampleMaxValue))
        } else if config.clipSample {
            let r = Float(config.clipSampleRange)
            for i in x0.indices { x0[i] = clamp(x0[i], -r, r) }
        }
    }

    /// Dynamic thresholding (Saharia et al. 2022): per sample, s = the `ratio` quantile of |x₀|,
    /// clamped to [1, maxValue]; then x₀ ← clamp(x₀, −s, s) / s.
    ///
    /// The quantile is `torch.quantile`'s linear interpolation in float32: rank = q·(n−1), between the
    /// sorted values at ⌊rank⌋ and ⌈rank⌉ with PyTorch's two-sided `lerp`; a NaN makes s NaN.
    static func threshold(_ x: inout [Float], batchSize: Int, ratio: Float, maxValue: Float) {
        let n = x.count / batchSize
        guard n > 0 else { return }
        for b in 0..<batchSize {
            let row = (b * n)..<((b + 1) * n)
            let magnitudes = x[row].map { abs($0) }
            var s: Float
            if magnitudes.contains(where: \.isNaN) {
                s = .nan
            } else {
                let sorted = magnitudes.sorted()
                let rank = ratio * Float(n - 1)
                let below = Int(rank)  // toType(kLong) truncates
                let weight = rank - Float(below)
                let above = Int(rank.rounded(.up))
                let lo = sorted[below], hi = sorted[above]
                // torch's lerp, written as the fused multiply-adds its CPU kernel compiles to.
                s = abs(weight) < 0.5 ? lo.addingProduct(weight, hi - lo) : hi.addingProduct(-(hi - lo), 1 - weight)
            }
            s = clamp(s, 1, maxValue)
            for i in row { x[i] = clamp(x[i], -s, s) / s }
        }
    }

    /// Checks that `array` has `count` elements.
    static func check(_ array: [Float], _ what: String, count: Int) throws {
        guard array.count == count else { throw SchedulerError.sizeMismatch(what: what, expected: count, actual: array.count) }
    }

    /// Checks that `batchSize` splits `count` elements into equal samples.
    static func check(batchSize: Int, count: Int) throws {
        guard batchSize >= 1, count % batchSize == 0 else { throw SchedulerError.batchMismatch(count: count, batchSize: batchSize) }
    }
}
