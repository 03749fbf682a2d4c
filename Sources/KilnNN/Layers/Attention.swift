import KilnCore

/// Multi-head scaled dot-product attention with separate query/key/value/output projections:
/// diffusers' `Attention` (`attn1` self-attention, `attn2` cross-attention on the text states)
/// and CLIP's `CLIPAttention` (causal self-attention).
///
/// Queries `x` `[B, Lq, Dq]` attend to `context` `[B, Lk, Dc]` (x itself when nil):
/// q = x·Wqᵀ, k = c·Wkᵀ, v = c·Wvᵀ, per head P = softmax(q·kᵀ/√d) (numerically stable; with
/// `causal`, query i sees keys 0…i), o = P·v, heads concatenated, output o·Woᵀ + bo `[B, Lq, outDim]`.
///
/// Parameter names follow `naming`: diffusers' `to_q`, `to_k`, `to_v`, `to_out.0` (biases off for
/// q/k/v by default) or CLIP's `q_proj`, `k_proj`, `v_proj`, `out_proj` (all with bias).
///
/// Fast path: the four projections are single `sgemm`s over all tokens; each head's q, k, v are
/// strided views of those (leading dimension heads·d), so scores and outputs are two more `sgemm`s
/// per (batch, head) with no copies. The probabilities `[B, heads, Lq, Lk]` are kept for backward.
public final class Attention: Module {
    /// Which library's parameter names to use.
    public enum Naming: String, Sendable, Codable {
        /// `to_q`, `to_k`, `to_v`, `to_out.0`.
        case diffusers
        /// `q_proj`, `k_proj`, `v_proj`, `out_proj`.
        case clip
    }

    public let queryDim: Int
    public let contextDim: Int
    public let heads: Int
    public let headDim: Int
    public let outDim: Int
    public let causal: Bool
    public let naming: Naming
    public let toQ: Linear
    public let toK: Linear
    public let toV: Linear
    public let toOut: Linear

    /// What `backward` needs from a forward pass.
    public struct Saved: Sendable {
        /// `[B, Lq, Dq]`.
        public var input: Tensor
        /// `[B, Lk, Dc]`, nil for self-attention.
        public var context: Tensor?
        /// Projections `[B, Lq, inner]`, `[B, Lk, inner]`, `[B, Lk, inner]`.
        public var query, key, value: Tensor
        /// Softmax output `[B, heads, Lq, Lk]`.
        public var probabilities: Tensor
        /// Heads concatenated, before the output projection: `[B, Lq, inner]`.
        public var merged: Tensor
    }

    /// Gradients with respect to an attention layer's inputs.
    public struct InputGradients: Sendable {
        /// ∂L/∂x `[B, Lq, Dq]` (for self-attention, through the query, key and value paths).
        public var input: Tensor
        /// ∂L/∂context `[B, Lk, Dc]`, nil for self-attention.
        public var context: Tensor?
    }

    /// - Parameters:
    ///   - contextDim: width of the context (cross-attention); nil: self-attention on `queryDim`.
    ///   - outDim: output width; nil: `queryDim`.
    ///   - qkvBias: bias on the q/k/v projections (false in diffusers' UNet, true in CLIP).
    ///   - outBias: bias on the output projection.
    public init(queryDim: Int, contextDim: Int? = nil, heads: Int, headDim: Int, outDim: Int? = nil,
                qkvBias: Bool = false, outBias: Bool = true, causal: Bool = false, naming: Naming = .diffusers,
                rng: inout RNG) {
        precondition(queryDim > 0 && heads > 0 && headDim > 0, "Attention: queryDim \(queryDim), heads \(heads), headDim \(headDim) must be positive")
        self.queryDim = queryDim
        self.contextDim = contextDim ?? queryDim
        self.heads = heads
        self.headDim = headDim
        self.outDim = outDim ?? queryDim
        self.causal = causal
        self.naming = naming
        let inner = heads * headDim
        self.toQ = Linear(inFeatures: queryDim, outFeatures: inner, bias: qkvBias, rng: &rng)
        self.toK = Linear(inFeatures: self.contextDim, outFeatures: inner, bias: qkvBias, rng: &rng)
        self.toV = Linear(inFeatures: self.contextDim, outFeatures: inner, bias: qkvBias, rng: &rng)
        self.toOut = Linear(inFeatures: inner, outFeatures: self.outDim, bias: outBias, rng: &rng)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        switch naming {
        case .diffusers: return prefixed("to_q", toQ) + prefixed("to_k", toK) + prefixed("to_v", toV) + prefixed("to_out.0", toOut)
        case .clip: return prefixed("q_proj", toQ) + prefixed("k_proj", toK) + prefixed("v_proj", toV) + prefixed("out_proj", toOut)
        }
    }

    /// heads·headDim.
    public var innerDim: Int { heads * headDim }

    func shape(_ x: Tensor, _ context: Tensor?, _ operation: String) -> AttentionShape {
        x.checkRank(3, "[B, Lq, \(queryDim)]", operation)
        x.checkShape([nil, nil, queryDim], operation)
        if let context {
            context.checkRank(3, "[B, Lk, \(contextDim)]", "\(operation) (context)")
            context.checkShape([x.shape[0], nil, contextDim], "\(operation) (context)")
        } else {
            precondition(contextDim == queryDim, "\(operation): this layer attends to a context of width \(contextDim); pass one")
        }
        return AttentionShape(batch: x.shape[0], queryLength: x.shape[1], keyLength: context?.shape[1] ?? x.shape[1],
                              queryDim: queryDim, contextDim: contextDim, heads: heads, headDim: headDim, outDim: outDim,
                              causal: causal)
    }

    // MARK: Forward

    /// `[B, Lq, Dq]` (+ context `[B, Lk, Dc]`) → `[B, Lq, outDim]`.
    public func forward(_ x: Tensor, context: Tensor? = nil) -> Tensor {
        let s = shape(x, context, "Attention.forward")
        let q = toQ.forward(x), k = toK.forward(context ?? x), v = toV.forward(context ?? x)
        return toOut.forward(Attention.core(q, k, v, s, keepProbabilities: false).merged)
    }

    /// The forward pass, also returning what `backward` needs.
    public func forwardForTraining(_ x: Tensor, context: Tensor? = nil) -> (output: Tensor, saved: Saved) {
        let s = shape(x, context, "Attention.forward")
        let q = toQ.forward(x), k = toK.forward(context ?? x), v = toV.forward(context ?? x)
        let (merged, p) = Attention.core(q, k, v, s, keepProbabilities: true)
        let out = toOut.forward(merged)
        return (out, Saved(input: x, context: context, query: q, key: k, value: v, probabilities: p!, merged: merged))
    }

    /// Per (batch, head): P = softmax(q·kᵀ/√d), o = P·v, into `[B, Lq, inner]`. Keeps every head's
    /// P (`[B, heads, Lq, Lk]`) when asked, else reuses one `[Lq, Lk]` scratch matrix.
    static func core(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ s: AttentionShape, keepProbabilities: Bool)
        -> (merged: Tensor, probabilities: Tensor?) {
        let (lq, lk, d, inner) = (s.queryLength, s.keyLength, s.headDim, s.innerDim)
        // No queries, or no keys (an empty average: zero).
        if s.batch * lq * inner == 0 || lk == 0 {
            return (Tensor.zeros([s.batch, lq, inner]), keepProbabilities ? Tensor.zeros([s.batch, s.heads, lq, lk]) : nil)
        }
        // Every head writes all of its columns of `merged` and all of its block of probabilities.
        var merged = Tensor(uninitializedShape: [s.batch, lq, inner])
        var probabilities = keepProbabilities ? Tensor(uninitializedShape: [s.batch, s.heads, lq, lk]) : nil
        let scale = 1 / Float(d).squareRoot()
        var scratch = [Float](unsafeUninitializedCapacity: keepProbabilities ? 0 : lq * lk) { $1 = $0.count }
        q.withUnsafeBufferPointer { pq in
            k.withUnsafeBufferPointer { pk in
                v.withUnsafeBufferPointer { pv in
                    merged.withUnsafeMutableBufferPointer { po in
                        for b in 0..<s.batch {
                            for h in 0..<s.heads {
                                let work: (UnsafeMutablePointer<Float>) -> Void = { pp in
                                    let qs = pq.baseAddress! + b * lq * inner + h * d
                                    let ks = pk.baseAddress! + b * lk * inner + h * d
                                    let vs = pv.baseAddress! + b * lk * inner + h * d
                                    // scores[Lq, Lk] = q·kᵀ/√d
                                    Matmul.sgemm(transposeB: true, m: lq, n: lk, k: d, alpha: scale, a: qs, lda: inner,
                                                 b: ks, ldb: inner, c: pp, ldc: lk)
                                    Softmax.rowsInPlace(pp, rows: lq, columns: lk, causal: s.causal)
                                    // o[Lq, d] = P·v, written into this head's columns of merged.
                                    Matmul.sgemm(m: lq, n: d, k: lk, a: pp, lda: lk, b: vs, ldb: inner,
                                                 c: po.baseAddress! + b * lq * inner + h * d, ldc: inner)
                                }
                                if keepProbabilities {
                                    probabilities!.withUnsafeMutableBufferPointer { work($0.baseAddress! + (b * s.heads + h) * lq * lk) }
                                } else {
                                    scratch.withUnsafeMutableBufferPointer { work($0.baseAddress!) }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (merged, probabilities)
    }

    // MARK: Backward

    /// Adds the four projections' parameter gradients and returns ∂L/∂x (and ∂L/∂context for
    /// cross-attention), given ∂L/∂y `[B, Lq, outDim]`.
    public func backward(_ saved: Saved, outputGradient dy: Tensor) -> InputGradients {
        let s = shape(saved.input, saved.context, "Attention.backward")
        dy.checkShape([s.batch, s.queryLength, outDim], "Attention.backward (output gradient)")
        let (lq, lk, d, inner) = (s.queryLength, s.keyLength, s.headDim, s.innerDim)
        let dMerged = toOut.backward(input: saved.merged, outputGradient: dy)
        let written = lq > 0 && lk > 0 && s.batch > 0  // then every head's products below fill dq, dk, dv
        func gradient(like t: Tensor) -> Tensor { written ? Tensor(uninitializedShape: t.shape) : Tensor.zeros(like: t) }
        var dq = gradient(like: saved.query), dk = gradient(like: saved.key), dv = gradient(like: saved.value)
        let scale = 1 / Float(d).squareRoot()
        if written {
            var dScores = [Float](unsafeUninitializedCapacity: lq * lk) { $1 = $0.count }
            dMerged.withUnsafeBufferPointer { pdo in
                saved.query.withUnsafeBufferPointer { pq in
                    saved.key.withUnsafeBufferPointer { pk in
                        saved.value.withUnsafeBufferPointer { pv in
                            saved.probabilities.withUnsafeBufferPointer { pp in
                                dq.withUnsafeMutableBufferPointer { pdq in
                                    dk.withUnsafeMutableBufferPointer { pdk in
                                        dv.withUnsafeMutableBufferPointer { pdv in
                                            dScores.withUnsafeMutableBufferPointer { pds in
                                                let ds = pds.baseAddress!
                                                for b in 0..<s.batch {
                                                    for h in 0..<s.heads {
                                                        let rowQ = b * lq * inner + h * d, rowK = b * lk * inner + h * d
                                                        let p = pp.baseAddress! + (b * s.heads + h) * lq * lk
                                                        let dO = pdo.baseAddress! + rowQ
                                                        // dP[Lq, Lk] = dO·vᵀ
                                                        Matmul.sgemm(transposeB: true, m: lq, n: lk, k: d, a: dO, lda: inner,
                                                                     b: pv.baseAddress! + rowK, ldb: inner, c: ds, ldc: lk)
                                                        // dv[Lk, d] = Pᵀ·dO
                                                        Matmul.sgemm(transposeA: true, m: lk, n: d, k: lq, a: p, lda: lk, b: dO, ldb: inner,
                                                                     c: pdv.baseAddress! + rowK, ldc: inner)
                                                        // dS = P ⊙ (dP − Σ dP·P) (the 1/√d goes into the next two products)
                                                        Softmax.backwardRowsInPlace(ds, output: p, rows: lq, columns: lk)
                                                        // dq[Lq, d] = dS·k/√d, dk[Lk, d] = dSᵀ·q/√d
                                                        Matmul.sgemm(m: lq, n: d, k: lk, alpha: scale, a: ds, lda: lk,
                                                                     b: pk.baseAddress! + rowK, ldb: inner, c: pdq.baseAddress! + rowQ, ldc: inner)
                                                        Matmul.sgemm(transposeA: true, m: lk, n: d, k: lq, alpha: scale, a: ds, lda: lk,
                                                                     b: pq.baseAddress! + rowQ, ldb: inner, c: pdk.baseAddress! + rowK, ldc: inner)
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let contextInput = saved.context ?? saved.input
        var dContext = toK.backward(input: contextInput, outputGradient: dk)
        dContext += toV.backward(input: contextInput, outputGradient: dv)
        var dx = toQ.backward(input: saved.input, outputGradient: dq)
        if saved.context == nil {
            dx += dContext
            return InputGradients(input: dx, context: nil)
        }
        return InputGradients(input: dx, context: dContext)
    }
}
