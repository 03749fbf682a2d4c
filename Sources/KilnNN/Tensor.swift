import KilnCore

/// A dense float32 array: row-major (C order), contiguous, with a shape.
///
/// Activations are NCHW (`[N, C, H, W]`), token sequences `[N, L, D]`, matrices `[rows, columns]`.
/// `storage` is a Swift array, so copies share memory until one side writes (copy on write):
/// `reshaped` never copies, and keeping a tensor for a backward pass costs nothing while nobody
/// writes to it.
///
/// Shape errors are programming errors: they stop the program with a message that names the
/// operation, the expected and the actual shape.
public struct Tensor: Sendable, Equatable {
    /// Extent of each axis, outermost first. `[]` is a scalar with one element.
    public private(set) var shape: [Int]
    /// `shape.product` values in row-major order.
    public internal(set) var storage: [Float]

    // MARK: Construction

    /// A tensor over existing values. - Precondition: `storage.count == shape.product`.
    public init(shape: [Int], storage: [Float]) {
        Tensor.checkValid(shape)
        precondition(storage.count == Tensor.elementCount(shape),
                     "Tensor(shape: \(shape), storage:): shape holds \(Tensor.elementCount(shape)) values, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// A tensor filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        Tensor.checkValid(shape)
        self.shape = shape
        self.storage = [Float](repeating: value, count: Tensor.elementCount(shape))
    }

    /// All zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }

    /// A tensor whose values are left unset, for kernels that write every value before anything
    /// reads one (saves a zero-filling pass over each layer output). Internal: callers uphold that.
    init(uninitializedShape shape: [Int]) {
        Tensor.checkValid(shape)
        let n = Tensor.elementCount(shape)
        self.shape = shape
        self.storage = [Float](unsafeUninitializedCapacity: n) { _, initialized in initialized = n }
    }

    /// Zeros with the shape of `other`.
    public static func zeros(like other: Tensor) -> Tensor { Tensor(repeating: 0, shape: other.shape) }

    /// Independent normal samples `mean + std · N(0, 1)` from `rng` (Box–Muller pairs).
    public static func random(_ shape: [Int], rng: inout RNG, mean: Float = 0, std: Float = 1) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.storage.withUnsafeMutableBufferPointer { rng.fill(normal: $0, mean: mean, std: std) }
        return t
    }

    /// Independent uniform samples in `range` from `rng`.
    public static func uniform(_ shape: [Int], in range: ClosedRange<Float>, rng: inout RNG) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.storage.withUnsafeMutableBufferPointer { rng.fill(uniform: $0, in: range) }
        return t
    }

    // MARK: Size

    /// Number of values.
    @inlinable public var count: Int { storage.count }
    /// Number of axes.
    @inlinable public var rank: Int { shape.count }

    /// Product of `shape` (1 for a scalar).
    public static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    static func checkValid(_ shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "tensor shape \(shape) has a negative extent")
    }

    // MARK: Shape checks

    /// Stops with `"<operation>: expected shape <expected>, got <shape>"` unless the shapes match.
    /// `nil` entries of `expected` match any extent (printed as `*`).
    public func checkShape(_ expected: [Int?], _ operation: @autoclosure () -> String) {
        let ok = expected.count == shape.count && zip(expected, shape).allSatisfy { $0 == nil || $0 == $1 }
        precondition(ok, "\(operation()): expected shape \(Tensor.describe(expected)), got \(shape)")
    }

    /// Stops unless the tensor has `rank` axes, naming the layout it should have (`"[N, C, H, W]"`).
    public func checkRank(_ rank: Int, _ layout: String, _ operation: @autoclosure () -> String) {
        precondition(shape.count == rank, "\(operation()): expected a rank-\(rank) tensor \(layout), got shape \(shape)")
    }

    /// Stops unless `other` has this tensor's shape.
    public func checkSameShape(_ other: Tensor, _ operation: @autoclosure () -> String) {
        precondition(shape == other.shape, "\(operation()): expected shape \(shape), got \(other.shape)")
    }

    /// `[2, *, 4]` for `[2, nil, 4]`.
    public static func describe(_ shape: [Int?]) -> String {
        "[" + shape.map { $0.map(String.init) ?? "*" }.joined(separator: ", ") + "]"
    }

    // MARK: Reshape

    /// The same values under a new shape, without copying. One extent may be `-1`: it is inferred.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        let unknown = newShape.indices.filter { newShape[$0] == -1 }
        precondition(unknown.count <= 1, "reshaped(\(newShape)): at most one extent may be -1")
        if let i = unknown.first {
            let known = newShape.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0,
                         "reshaped(\(newShape)): \(count) values of shape \(shape) do not divide into \(newShape)")
            resolved[i] = count / known
        }
        precondition(Tensor.elementCount(resolved) == count && resolved.allSatisfy { $0 >= 0 },
                     "reshaped(\(newShape)): shape \(shape) holds \(count) values, \(resolved) holds \(Tensor.elementCount(resolved))")
        var t = self
        t.shape = resolved
        return t
    }

    // MARK: Element access

    /// Row-major offset of a multi-index. - Precondition: one index per axis, each in range.
    public func offset(_ indices: [Int]) -> Int {
        precondition(indices.count == shape.count, "index \(indices) has \(indices.count) entries for shape \(shape)")
        var o = 0
        for (i, (index, extent)) in zip(indices, shape).enumerated() {
            precondition(index >= 0 && index < extent, "index \(indices) out of range for shape \(shape) at axis \(i)")
            o = o * extent + index
        }
        return o
    }

    /// The value at a multi-index (slow: for tests and small tables).
    public subscript(_ indices: Int...) -> Float {
        get { storage[offset(indices)] }
        set { storage[offset(indices)] = newValue }
    }

    // MARK: Raw access

    /// Calls `body` with the values.
    @inlinable
    public func withUnsafeBufferPointer<T>(_ body: (UnsafeBufferPointer<Float>) throws -> T) rethrows -> T {
        try storage.withUnsafeBufferPointer(body)
    }

    /// Calls `body` with the values, writable (copies first if the storage is shared).
    public mutating func withUnsafeMutableBufferPointer<T>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> T) rethrows -> T {
        try storage.withUnsafeMutableBufferPointer { try body($0) }
    }
}

extension Tensor: CustomStringConvertible {
    /// `Tensor[2, 3]` followed by up to eight values.
    public var description: String {
        let head = storage.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor\(shape)(\(head)\(count > 8 ? ", …" : ""))"
    }
}
