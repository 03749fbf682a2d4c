import RealModule

/// Sizes of a multi-head attention call: queries `[B, Lq, Dq]`, context `[B, Lk, Dc]` (the queries
/// themselves for self-attention), `heads` heads of `headDim` values, output `[B, Lq, outDim]`.
public struct AttentionShape: Sendable, Equatable {
    public var batch, queryLength, keyLength: Int
    public var queryDim, contextDim, heads, headDim, outDim: Int
    /// Query i attends to keys 0…i only (needs Lq == Lk).
    public var causal: Bool

    public init(batch: Int, queryLength: Int, keyLength: Int, queryDim: Int, contextDim: Int,
                heads: Int, headDim: Int, outDim: Int, causal: Bool = false) {
        precondition(!causal || queryLength == keyLength, "causal attention needs as many keys as queries, got \(queryLength) and \(keyLength)")
        (self.batch, self.queryLength, self.keyLength) = (batch, queryLength, keyLength)
        (self.queryDim, self.contextDim, self.heads, self.headDim, self.outDim) = (queryDim, contextDim, heads, headDim, outDim)
        self.causal = causal
    }

    /// heads·headDim, the width of q, k and v.
    public var innerDim: Int { heads * headDim }
}

/// Projection weights of an attention layer in precision `R` (PyTorch layout `[out, in]`).
public struct AttentionWeights<R: BinaryFloatingPoint>: Sendable where R: Sendable {
    /// `[inner, Dq]`, `[inner, Dc]`, `[inner, Dc]`, `[outDim, inner]`.
    public var query, key, value, out: [R]
    /// `[inner]`, `[inner]`, `[inner]`, `[outDim]`, each optional.
    public var queryBias, keyBias, valueBias, outBias: [R]?

    public init(query: [R], key: [R], value: [R], out: [R], queryBias: [R]? = nil, keyBias: [R]? = nil,
                valueBias: [R]? = nil, outBias: [R]? = nil) {
        (self.query, self.key, self.value, self.out) = (query, key, value, out)
        (self.queryBias, self.keyBias, self.valueBias, self.outBias) = (queryBias, keyBias, valueBias, outBias)
    }
}

extension NNReference {
    /// Multi-head scaled dot-product attention with separate q/k/v/out projections:
    /// q = x·Wqᵀ, k = c·Wkᵀ, v = c·Wvᵀ (+ biases), per head P = softmax(q·kᵀ/√d) (causal: keys
    /// after the query masked), o = P·v, heads concatenated, output o·Woᵀ + bo.
    public static func attention<R: Real & BinaryFloatingPoint & Sendable>(_ x: [R], context: [R]?, weights w: AttentionWeights<R>,
                                                                           _ s: AttentionShape) -> [R] {
        attentionForward(x, context: context, weights: w, s).output
    }

    static func attentionForward<R: Real & BinaryFloatingPoint & Sendable>(_ x: [R], context: [R]?, weights w: AttentionWeights<R>,
                                                                          _ s: AttentionShape)
        -> (output: [R], q: [R], k: [R], v: [R], probabilities: [R], merged: [R]) {
        let c = context ?? x
        let inner = s.innerDim
        let q = linear(x, weight: w.query, bias: w.queryBias, rows: s.batch * s.queryLength, inFeatures: s.queryDim, outFeatures: inner)
        let k = linear(c, weight: w.key, bias: w.keyBias, rows: s.batch * s.keyLength, inFeatures: s.contextDim, outFeatures: inner)
        let v = linear(c, weight: w.value, bias: w.valueBias, rows: s.batch * s.keyLength, inFeatures: s.contextDim, outFeatures: inner)
        let scale = 1 / R(s.headDim).squareRoot()
        var scores = [R](repeating: 0, count: s.batch * s.heads * s.queryLength * s.keyLength)
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                for i in 0..<s.queryLength {
                    for j in 0..<s.keyLength {
                        var dot: R = 0
                        for d in 0..<s.headDim {
                            dot += q[(b * s.queryLength + i) * inner + h * s.headDim + d] * k[(b * s.keyLength + j) * inner + h * s.headDim + d]
                        }
                        scores[((b * s.heads + h) * s.queryLength + i) * s.keyLength + j] = dot * scale
                    }
                }
            }
        }
        let p = softmax(scores, rows: s.batch * s.heads * s.queryLength, columns: s.keyLength, causal: s.causal)
        var merged = [R](repeating: 0, count: s.batch * s.queryLength * inner)
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                for i in 0..<s.queryLength {
                    for d in 0..<s.headDim {
                        var sum: R = 0
                        for j in 0..<s.keyLength {
                            sum += p[((b * s.heads + h) * s.queryLength + i) * s.keyLength + j] * v[(b * s.keyLength + j) * inner + h * s.headDim + d]
                        }
                        merged[(b * s.queryLength + i) * inner + h * s.headDim + d] = sum
                    }
                }
            }
        }
        let out = linear(merged, weight: w.out, bias: w.outBias, rows: s.batch * s.queryLength, inFeatures: inner, outFeatures: s.outDim)
        return (out, q, k, v, p, merged)
    }

    /// Gradients of `attention` given ∂L/∂y `[B, Lq, outDim]`: queries `[B, Lq, Dq]`, context
    /// `[B, Lk, Dc]` (nil for self-attention, whose two paths are summed into `input`), weights.
    public static func attentionBackward<R: Real & BinaryFloatingPoint & Sendable>(_ x: [R], context: [R]?, weights w: AttentionWeights<R>,
                                                                                   outputGradient dy: [R], _ s: AttentionShape)
        -> (input: [R], context: [R]?, weights: AttentionWeights<R>) {
        let f = attentionForward(x, context: context, weights: w, s)
        let c = context ?? x
        let inner = s.innerDim
        let (lq, lk, dh) = (s.queryLength, s.keyLength, s.headDim)
        let outGrads = linearBackward(f.merged, weight: w.out, outputGradient: dy, rows: s.batch * lq, inFeatures: inner, outFeatures: s.outDim)
        let dMerged = outGrads.input
        let scale = 1 / R(dh).squareRoot()
        var dq = [R](repeating: 0, count: f.q.count), dk = [R](repeating: 0, count: f.k.count), dv = [R](repeating: 0, count: f.v.count)
        var dp = [R](repeating: 0, count: f.probabilities.count)
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                for i in 0..<lq {
                    for j in 0..<lk {
                        let pi = ((b * s.heads + h) * lq + i) * lk + j
                        for d in 0..<dh {
                            let g = dMerged[(b * lq + i) * inner + h * dh + d]
                            dp[pi] += g * f.v[(b * lk + j) * inner + h * dh + d]
                            dv[(b * lk + j) * inner + h * dh + d] += f.probabilities[pi] * g
                        }
                    }
                }
            }
        }
        let dScores = softmaxBackward(output: f.probabilities, outputGradient: dp, rows: s.batch * s.heads * lq, columns: lk)
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                for i in 0..<lq {
                    for j in 0..<lk {
                        let g = dScores[((b * s.heads + h) * lq + i) * lk + j] * scale
                        for d in 0..<dh {
                            dq[(b * lq + i) * inner + h * dh + d] += g * f.k[(b * lk + j) * inner + h * dh + d]
                            dk[(b * lk + j) * inner + h * dh + d] += g * f.q[(b * lq + i) * inner + h * dh + d]
                        }
                    }
                }
            }
        }
        let gq = linearBackward(x, weight: w.query, outputGradient: dq, rows: s.batch * lq, inFeatures: s.queryDim, outFeatures: inner)
        let gk = linearBackward(c, weight: w.key, outputGradient: dk, rows: s.batch * lk, inFeatures: s.contextDim, outFeatures: inner)
        let gv = linearBackward(c, weight: w.value, outputGradient: dv, rows: s.batch * lk, inFeatures: s.contextDim, outFeatures: inner)
        let dContext = zip(gk.input, gv.input).map { $0 + $1 }
        let grads = AttentionWeights<R>(query: gq.weight, key: gk.weight, value: gv.weight, out: outGrads.weight,
                                        queryBias: w.queryBias == nil ? nil : gq.bias, keyBias: w.keyBias == nil ? nil : gk.bias,
                                        valueBias: w.valueBias == nil ? nil : gv.bias, outBias: w.outBias == nil ? nil : outGrads.bias)
        if context == nil {
            return (zip(gq.input, dContext).map { $0 + $1 }, nil, grads)
        }
        return (gq.input, dContext, grads)
    }
}
