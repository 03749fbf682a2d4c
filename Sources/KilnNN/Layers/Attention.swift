import CKilnKernels
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

    /// Queries per task in the forward pass: a block's scores `[64, Lk]` stay in cache between the
    /// two products and the softmax. Long key sequences take blocks of 256: each block's products
    /// pack the head's keys and values again (`[Lk, d]` each), which for 4096 keys of 40 values
    /// (Stable Diffusion's 64² self-attention) costs as much as the products of a 64-query block.
    static func queryBlock(keys: Int) -> Int { keys >= 1024 ? 256 : 64 }

    /// Per (batch, head, block of queries): P = softmax(q·kᵀ/√d), o = P·v, into `[B, Lq, inner]`.
    /// Keeps every head's P (`[B, heads, Lq, Lk]`) when asked, else each thread reuses one
    /// `[queryBlock, Lk]` scratch block.
    ///
    /// Tasks run in parallel with single-threaded products inside, instead of parallelising each
    /// product and each softmax separately (which synchronises the threads five times per head).
    /// Together with single-threaded OpenBLAS this took a 64² UNet forward with 1024-token
    /// self-attention from 149 to 123 ms (batch 1, 2 threads).
    static func core(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ s: AttentionShape, keepProbabilities: Bool)
        -> (merged: Tensor, probabilities: Tensor?) {
        let (lq, lk, d, inner) = (s.queryLength, s.keyLength, s.headDim, s.innerDim)
        // No queries, or no keys (an empty average: zero).
        if s.batch * lq * inner == 0 || lk == 0 {
            return (Tensor.zeros([s.batch, lq, inner]), keepProbabilities ? Tensor.zeros([s.batch, s.heads, lq, lk]) : nil)
        }
        // Every task writes all of its rows of its head's columns of `merged`, and of its block of probabilities.
        var merged = Tensor(uninitializedShape: [s.batch, lq, inner])
        var probabilities = keepProbabilities ? Tensor(uninitializedShape: [s.batch, s.heads, lq, lk]) : nil
        let scale = 1 / Float(d).squareRoot()
        let block = min(lq, queryBlock(keys: lk)), blocksPerHead = (lq + block - 1) / block
        let tasks = s.batch * s.heads * blocksPerHead
        let threads = 2 * lq * lk * d * s.batch * s.heads < Matmul.parallelFlops ? 1 : BLAS.threadCount
        // With Kiln's AVX-512 kernel and several query blocks per head, each head's keys are packed
        // once for all its blocks' q·kᵀ products instead of once per block.
        let packKeys = blocksPerHead > 1 && Matmul.ownKernelFits(m: block, n: lk, k: d)
        // The kernel reads packed panels with aligned loads: 64-byte aligned, each head's a
        // multiple of 16 floats.
        let packedSize = packKeys ? (kiln_packed_b_size(Int32(d), Int32(lk)) + 15) / 16 * 16 : 0
        let packedKeys = UnsafeMutableRawPointer.allocate(byteCount: max(1, s.batch * s.heads * packedSize) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(1, s.batch * s.heads * packedSize))
        defer { packedKeys.deallocate() }
        if packKeys {
            k.withUnsafeBufferPointer { pk in
                nonisolated(unsafe) let (pk, pp) = (pk.baseAddress!, packedKeys)
                parallelFor(s.batch * s.heads, threads: threads) { range in
                    for bh in range {
                        let (b, h) = bh.quotientAndRemainder(dividingBy: s.heads)
                        kiln_pack_b_avx512(Int32(d), Int32(lk), pk + b * lk * inner + h * d, Int32(inner), 1, pp + bh * packedSize)
                    }
                }
            }
        }
        q.withUnsafeBufferPointer { pq in
            k.withUnsafeBufferPointer { pk in
                v.withUnsafeBufferPointer { pv in
                    merged.withUnsafeMutableBufferPointer { po in
                        nonisolated(unsafe) let (pq, pk, pv, po) = (pq.baseAddress!, pk.baseAddress!, pv.baseAddress!, po.baseAddress!)
                        nonisolated(unsafe) var keep: UnsafeMutablePointer<Float>? = nil
                        nonisolated(unsafe) let packed: UnsafeMutablePointer<Float>? = packKeys ? packedKeys : nil
                        let run = {
                            parallelFor(tasks, threads: threads) { range in
                                // The scores block (inference only; training writes into the kept
                                // probabilities), then the row sums of the unnormalised probabilities.
                                var scratch = [Float](unsafeUninitializedCapacity: (keep == nil ? block * lk : 0) + block) { $1 = $0.count }
                                scratch.withUnsafeMutableBufferPointer { buffer in
                                    for task in range {
                                        let (bh, qb) = task.quotientAndRemainder(dividingBy: blocksPerHead)
                                        let (b, h) = bh.quotientAndRemainder(dividingBy: s.heads)
                                        let q0 = qb * block, rows = min(block, lq - q0)
                                        let scores = keep.map { $0 + (bh * lq + q0) * lk } ?? buffer.baseAddress!
                                        let qs = pq + (b * lq + q0) * inner + h * d
                                        let ks = pk + b * lk * inner + h * d
                                        let vs = pv + b * lk * inner + h * d
                                        // scores[rows, Lk] = q·kᵀ/√d
                                        if let packed {
                                            kiln_sgemm_avx512_packed_b(Int32(rows), Int32(lk), Int32(d), scale, qs, Int32(inner),
                                                                       packed + bh * packedSize, scores, Int32(lk))
                                        } else {
                                            Matmul.sgemm(transposeB: true, m: rows, n: lk, k: d, alpha: scale, a: qs, lda: inner,
                                                         b: ks, ldb: inner, c: scores, ldc: lk, threads: 1)
                                        }
                                        // o = (E·v)/Σ E with E = exp(scores − max), into this head's columns of
                                        // merged: the division moves from the [rows, Lk] probabilities to the
                                        // [rows, d] outputs. Training normalises E into P afterwards, for
                                        // backward; inference skips that pass. Both give identical outputs.
                                        let out = po + (b * lq + q0) * inner + h * d
                                        let sums = buffer.baseAddress! + (keep == nil ? block * lk : 0)
                                        Softmax.exponentiatedRowsInPlace(scores, rows: rows, columns: lk, causal: s.causal, firstRow: q0, sums: sums)
                                        Matmul.sgemm(m: rows, n: d, k: lk, a: scores, lda: lk, b: vs, ldb: inner, c: out, ldc: inner, threads: 1)
                                        for r in 0..<rows {
                                            let inverse = 1 / sums[r]
                                            for j in 0..<d { out[r * inner + j] *= inverse }
                                            if keep != nil { VectorMath.affine(scores + r * lk, scores + r * lk, lk, scale: inverse, shift: 0) }
                                        }
                                    }
                                }
                            }
                        }
                        if keepProbabilities {
                            probabilities!.withUnsafeMutableBufferPointer { keep = $0.baseAddress!; run() }
                        } else {
                            run()
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
            // One task per (batch, head): its rows of dq, dk and dv (this head's columns) are its own.
            let tasks = s.batch * s.heads
            let threads = 4 * lq * lk * d * tasks < Matmul.parallelFlops ? 1 : BLAS.threadCount
            dMerged.withUnsafeBufferPointer { pdo in
                saved.query.withUnsafeBufferPointer { pq in
                    saved.key.withUnsafeBufferPointer { pk in
                        saved.value.withUnsafeBufferPointer { pv in
                            saved.probabilities.withUnsafeBufferPointer { pp in
                                dq.withUnsafeMutableBufferPointer { pdq in
                                    dk.withUnsafeMutableBufferPointer { pdk in
                                        dv.withUnsafeMutableBufferPointer { pdv in
                                            nonisolated(unsafe) let (pdo, pq, pk, pv, pp) = (pdo.baseAddress!, pq.baseAddress!, pk.baseAddress!,
                                                                                             pv.baseAddress!, pp.baseAddress!)
                                            nonisolated(unsafe) let (pdq, pdk, pdv) = (pdq.baseAddress!, pdk.baseAddress!, pdv.baseAddress!)
                                            parallelFor(tasks, threads: threads) { range in
                                                var dScores = [Float](unsafeUninitializedCapacity: lq * lk) { $1 = $0.count }
                                                dScores.withUnsafeMutableBufferPointer { pds in
                                                    let ds = pds.baseAddress!
                                                    for task in range {
                                                        let (b, h) = task.quotientAndRemainder(dividingBy: s.heads)
                                                        let rowQ = b * lq * inner + h * d, rowK = b * lk * inner + h * d
                                                        let p = pp + task * lq * lk
                                                        let dO = pdo + rowQ
                                                        // dP[Lq, Lk] = dO·vᵀ
                                                        Matmul.sgemm(transposeB: true, m: lq, n: lk, k: d, a: dO, lda: inner,
                                                                     b: pv + rowK, ldb: inner, c: ds, ldc: lk, threads: 1)
                                                        // dv[Lk, d] = Pᵀ·dO
                                                        Matmul.sgemm(transposeA: true, m: lk, n: d, k: lq, a: p, lda: lk, b: dO, ldb: inner,
                                                                     c: pdv + rowK, ldc: inner, threads: 1)
                                                        // dS = P ⊙ (dP − Σ dP·P) (the 1/√d goes into the next two products)
                                                        Softmax.backwardRowsInPlace(ds, output: p, rows: lq, columns: lk, parallel: false)
                                                        // dq[Lq, d] = dS·k/√d, dk[Lk, d] = dSᵀ·q/√d
                                                        Matmul.sgemm(m: lq, n: d, k: lk, alpha: scale, a: ds, lda: lk,
                                                                     b: pk + rowK, ldb: inner, c: pdq + rowQ, ldc: inner, threads: 1)
                                                        Matmul.sgemm(transposeA: true, m: lk, n: d, k: lq, alpha: scale, a: ds, lda: lk,
                                                                     b: pq + rowQ, ldb: inner, c: pdk + rowK, ldc: inner, threads: 1)
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
