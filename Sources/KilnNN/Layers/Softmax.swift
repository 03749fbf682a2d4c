import KilnCore

/// Softmax over the last axis, computed stably: exp(x − max)/Σ exp(x − max), so logits of any
/// size (10⁴, −10⁴) give finite probabilities. No parameters; input `[…, N]` → same shape.
///
/// `causal` treats the input as stacked `[N, N]` score matrices and masks entries above the
/// diagonal (row i of a block sees columns 0…i), as CLIP's text encoder does.
public struct Softmax: Sendable {
    public var causal: Bool

    public init(causal: Bool = false) { self.causal = causal }

    /// `[…, N]` → `[…, N]`.
    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1, "Softmax.forward: expected a tensor with at least one axis, got a scalar")
        let columns = x.shape.last!
        let rows = columns == 0 ? 0 : x.count / columns
        precondition(!causal || (x.rank >= 2 && x.shape[x.rank - 2] == columns),
                     "Softmax.forward (causal): expected square score blocks [..., N, N], got \(x.shape)")
        var y = x
        if rows == 0 { return y }
        y.withUnsafeMutableBufferPointer { Softmax.rowsInPlace($0.baseAddress!, rows: rows, columns: columns, causal: causal) }
        return y
    }

    /// ∂L/∂x = y ⊙ (∂L/∂y − Σⱼ ∂L/∂yⱼ·yⱼ) per row, given the forward's output y.
    public func backward(output y: Tensor, outputGradient dy: Tensor) -> Tensor {
        y.checkSameShape(dy, "Softmax.backward (output gradient)")
        let columns = y.shape.last ?? 0
        let rows = columns == 0 ? 0 : y.count / columns
        var dx = dy
        if rows == 0 { return dx }
        y.withUnsafeBufferPointer { py in
            dx.withUnsafeMutableBufferPointer { Softmax.backwardRowsInPlace($0.baseAddress!, output: py.baseAddress!, rows: rows, columns: columns) }
        }
        return dx
    }

    // MARK: Kernels

    /// Softmax of each row of `[rows, columns]` in place; rows in parallel when large. With
    /// `causal`, row r keeps columns 0…(r mod columns) and zeroes the rest.
    static func rowsInPlace(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, causal: Bool) {
        nonisolated(unsafe) let x = x
        VectorMath.forChunks(rows, threshold: rows * columns >= VectorMath.parallelThreshold ? 2 : Int.max) { range in
            for r in range {
                row(x + r * columns, valid: validColumns(row: r, columns: columns, causal: causal), columns: columns)
            }
        }
    }

    /// How many leading columns of score-block row `row` take part: all, or with `causal`
    /// columns 0…(row mod columns).
    @inline(__always)
    static func validColumns(row: Int, columns: Int, causal: Bool) -> Int {
        causal ? min(columns, row % columns + 1) : columns
    }

    /// One row: the first `valid` values become probabilities, the rest zero.
    @inline(__always)
    static func row(_ p: UnsafeMutablePointer<Float>, valid: Int, columns: Int) {
        let total = exponentiatedRow(p, valid: valid, columns: columns)
        VectorMath.affine(p, p, valid, scale: 1 / total, shift: 0)
    }

    /// Unnormalised rows for attention: row r becomes exp(x − max) (zero past the causal limit)
    /// and `sums[r]` its sum, so the caller divides P·v by the sums instead of dividing P (one
    /// pass over the scores fewer). `firstRow` is row 0's index in its score block (for the
    /// causal mask); runs on the calling thread.
    static func exponentiatedRowsInPlace(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, causal: Bool, firstRow: Int,
                                         sums: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            sums[r] = exponentiatedRow(x + r * columns, valid: validColumns(row: firstRow + r, columns: columns, causal: causal), columns: columns)
        }
    }

    /// exp(x − max) over the first `valid` values (zeros after them); returns their sum.
    @inline(__always)
    static func exponentiatedRow(_ p: UnsafeMutablePointer<Float>, valid: Int, columns: Int) -> Float {
        var maxima = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i + 16 <= valid {
            maxima = VectorMath.maximum(maxima, UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self))
            i += 16
        }
        var m = maxima.max()
        while i < valid { m = max(m, p[i]); i += 1 }
        if m == -.infinity || m.isNaN { m = 0 }  // all −∞ (or empty): keep exp from seeing ∞ − ∞
        let shift = SIMD16<Float>(repeating: m)
        var sums = SIMD16<Float>()
        i = 0
        while i + 16 <= valid {
            let e = VectorMath.exp(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self) - shift)
            UnsafeMutableRawPointer(p + i).storeBytes(of: e, as: SIMD16<Float>.self)
            sums += e
            i += 16
        }
        if i < valid {
            // The tail (a 77-key row's last 13) through one vector: padded with −∞, whose exp is 0.
            let tail = valid - i
            var v = SIMD16<Float>(repeating: -.infinity)
            withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: p + i, byteCount: 4 * tail) }
            let e = VectorMath.exp(v - shift)
            withUnsafeBytes(of: e) { UnsafeMutableRawPointer(p + i).copyMemory(from: $0.baseAddress!, byteCount: 4 * tail) }
            sums += e
        }
        let total = sums.sum()
        if valid < columns { (p + valid).update(repeating: 0, count: columns - valid) }
        return total
    }

    /// dx = y ⊙ (dy − Σ dy·y) per row, with dy in `g` overwritten by dx.
    static func backwardRowsInPlace(_ g: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, rows: Int, columns: Int,
                                    parallel: Bool = true) {
        nonisolated(unsafe) let (g, y) = (g, y)
        let large = parallel && rows * columns >= VectorMath.parallelThreshold
        VectorMath.forChunks(rows, threshold: large ? 2 : Int.max) { range in
            for r in range {
                let gr = g + r * columns, yr = y + r * columns
                let dot = Float(VectorMath.dot(gr, yr, columns))
                VectorMath.map2(gr, yr, gr, 0..<columns) { d, p in p * (d - dot) }
            }
        }
    }
}
