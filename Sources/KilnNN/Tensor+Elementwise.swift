import KilnCore

// MARK: - Elementwise arithmetic

extension Tensor {
    /// `out[i] = f(a[i], b[i])` for same-shape tensors, in parallel when large.
    @inline(__always)
    static func zipWith(_ a: Tensor, _ b: Tensor, _ operation: String,
                        _ f: @escaping @Sendable (SIMD16<Float>, SIMD16<Float>) -> SIMD16<Float>) -> Tensor {
        a.checkSameShape(b, operation)
        var out = Tensor(uninitializedShape: a.shape)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    guard a.count > 0 else { return }
                    nonisolated(unsafe) let (x, y, z) = (pa.baseAddress!, pb.baseAddress!, po.baseAddress!)
                    VectorMath.forChunks(a.count) { VectorMath.map2(x, y, z, $0, f) }
                }
            }
        }
        return out
    }

    /// `out[i] = f(a[i])`, in parallel when large.
    @inline(__always)
    func mapSIMD(_ f: @escaping @Sendable (SIMD16<Float>) -> SIMD16<Float>) -> Tensor {
        var out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { pa in
            out.withUnsafeMutableBufferPointer { po in
                guard count > 0 else { return }
                nonisolated(unsafe) let (x, z) = (pa.baseAddress!, po.baseAddress!)
                VectorMath.forChunks(count) { VectorMath.map(x, z, $0, f) }
            }
        }
        return out
    }

    /// Elementwise sum. - Precondition: same shapes.
    public static func + (a: Tensor, b: Tensor) -> Tensor { zipWith(a, b, "Tensor +") { $0 + $1 } }
    /// Elementwise difference. - Precondition: same shapes.
    public static func - (a: Tensor, b: Tensor) -> Tensor { zipWith(a, b, "Tensor -") { $0 - $1 } }
    /// Elementwise (Hadamard) product. - Precondition: same shapes.
    public static func * (a: Tensor, b: Tensor) -> Tensor { zipWith(a, b, "Tensor *") { $0 * $1 } }
    /// Every value times `s`.
    public static func * (s: Float, a: Tensor) -> Tensor { a.mapSIMD { $0 * s } }
    /// Every value times `s`.
    public static func * (a: Tensor, s: Float) -> Tensor { s * a }
    /// Elementwise negation.
    public static prefix func - (a: Tensor) -> Tensor { a.mapSIMD { -$0 } }

    public static func += (a: inout Tensor, b: Tensor) { a.add(b) }
    public static func -= (a: inout Tensor, b: Tensor) { a.add(b, scaledBy: -1) }
    public static func *= (a: inout Tensor, s: Float) { a.scale(by: s) }

    /// `self += scale · other` in place (BLAS's axpy). - Precondition: same shapes.
    public mutating func add(_ other: Tensor, scaledBy scale: Float = 1) {
        checkSameShape(other, "Tensor.add")
        let n = count
        other.withUnsafeBufferPointer { pb in
            withUnsafeMutableBufferPointer { pa in
                guard n > 0 else { return }
                nonisolated(unsafe) let (y, x) = (pa.baseAddress!, pb.baseAddress!)
                if scale == 1 {
                    VectorMath.forChunks(n) { VectorMath.map2(y, x, y, $0) { $0 + $1 } }
                } else {
                    VectorMath.forChunks(n) { VectorMath.map2(y, x, y, $0) { $0 + $1 * scale } }
                }
            }
        }
    }

    /// `self *= s` in place.
    public mutating func scale(by s: Float) {
        let n = count
        withUnsafeMutableBufferPointer { pa in
            guard n > 0 else { return }
            nonisolated(unsafe) let y = pa.baseAddress!
            VectorMath.forChunks(n) { VectorMath.map(y, y, $0) { $0 * s } }
        }
    }

    /// `f` applied to every value (scalar closure: for tests and small tensors).
    public func map(_ f: (Float) -> Float) -> Tensor {
        Tensor(shape: shape, storage: storage.map(f))
    }

    // MARK: Reductions

    /// Σ values, accumulated in `Double`.
    public func sum() -> Double {
        withUnsafeBufferPointer { p in p.baseAddress.map { VectorMath.sum($0, count) } ?? 0 }
    }

    /// Mean value (0 for an empty tensor).
    public func mean() -> Double { count == 0 ? 0 : sum() / Double(count) }

    /// Σ values², accumulated in `Double`.
    public func squaredNorm() -> Double {
        withUnsafeBufferPointer { p in p.baseAddress.map { VectorMath.dot($0, $0, count) } ?? 0 }
    }

    /// Largest |value| (0 for an empty tensor; NaN if any value is NaN).
    public func maxAbsolute() -> Float {
        var m: Float = 0
        for v in storage {
            if v.isNaN { return .nan }
            m = Swift.max(m, abs(v))
        }
        return m
    }

    /// True when every value is finite.
    public var isFinite: Bool { storage.allSatisfy { $0.isFinite } }
}
