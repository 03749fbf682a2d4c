/// A 3×3 `Float` matrix, column-major: `columns.j` is column `j`, `self[row: i, column: j]` is
/// the entry in row `i`, column `j`.
///
/// Matrices act on column vectors from the left: `m * v`. A product `a * b` applies `b` first.
/// `Codable` form: row-major nested arrays `[[m00, m01, m02], [m10, …], [m20, …]]`, the way the
/// matrix is written on paper.
public struct Mat3: Sendable, Hashable {
    /// The three columns.
    public var columns: (Vec3, Vec3, Vec3)

    // MARK: Construction

    /// A matrix from its columns.
    @inlinable
    public init(_ c0: Vec3, _ c1: Vec3, _ c2: Vec3) {
        columns = (c0, c1, c2)
    }

    /// A matrix from its columns.
    @inlinable
    public init(columns: (Vec3, Vec3, Vec3)) {
        self.columns = columns
    }

    /// A matrix from its rows.
    @inlinable
    public init(rows r0: Vec3, _ r1: Vec3, _ r2: Vec3) {
        columns = (Vec3(r0.x, r1.x, r2.x), Vec3(r0.y, r1.y, r2.y), Vec3(r0.z, r1.z, r2.z))
    }

    /// A diagonal matrix.
    @inlinable
    public init(diagonal d: Vec3) {
        columns = (Vec3(d.x, 0, 0), Vec3(0, d.y, 0), Vec3(0, 0, d.z))
    }

    /// The identity.
    public static let identity = Mat3(diagonal: Vec3(1, 1, 1))

    /// A scale along the axes.
    @inlinable
    public static func scale(_ s: Vec3) -> Mat3 { Mat3(diagonal: s) }

    /// A right-handed rotation by `angleRadians` about `axis` (normalised here; must be non-zero).
    /// Positive angles turn counter-clockwise when the axis points at the viewer (Rodrigues).
    @inlinable
    public static func rotation(axis: Vec3, angleRadians: Float) -> Mat3 {
        Quat(axis: axis, angleRadians: angleRadians).matrix
    }

    /// The cross-product matrix `[v]ₓ`, with `[v]ₓ · w = v × w`.
    @inlinable
    public static func skew(_ v: Vec3) -> Mat3 {
        Mat3(Vec3(0, v.z, -v.y), Vec3(-v.z, 0, v.x), Vec3(v.y, -v.x, 0))
    }

    // MARK: Access

    /// Column `j` (0...2).
    @inlinable
    public subscript(column j: Int) -> Vec3 {
        get {
            switch j {
            case 0: return columns.0
            case 1: return columns.1
            case 2: return columns.2
            default: preconditionFailure("Mat3 column \(j) out of range 0...2")
            }
        }
        set {
            switch j {
            case 0: columns.0 = newValue
            case 1: columns.1 = newValue
            case 2: columns.2 = newValue
            default: preconditionFailure("Mat3 column \(j) out of range 0...2")
            }
        }
    }

    /// The entry in row `i`, column `j`.
    @inlinable
    public subscript(row i: Int, column j: Int) -> Float {
        get { self[column: j][i] }
        set { self[column: j][i] = newValue }
    }

    /// Row `i` (0...2).
    @inlinable
    public func row(_ i: Int) -> Vec3 {
        Vec3(columns.0[i], columns.1[i], columns.2[i])
    }

    // MARK: Algebra

    /// The transpose.
    @inlinable
    public var transpose: Mat3 {
        Mat3(rows: columns.0, columns.1, columns.2)
    }

    /// The determinant, `c0 · (c1 × c2)`.
    @inlinable
    public var determinant: Float {
        dot(columns.0, cross(columns.1, columns.2))
    }

    /// The inverse by the adjugate: rows of `M⁻¹` are `(c1×c2, c2×c0, c0×c1) / det`.
    /// A singular matrix gives non-finite entries.
    @inlinable
    public var inverse: Mat3 {
        let (a, b, c) = columns
        let r0 = cross(b, c), r1 = cross(c, a), r2 = cross(a, b)
        let invDet = 1 / dot(a, r0)
        return Mat3(rows: r0 * invDet, r1 * invDet, r2 * invDet)
    }

    /// The sum of the diagonal.
    @inlinable
    public var trace: Float { columns.0.x + columns.1.y + columns.2.z }

    /// `m · v`.
    @inlinable
    public static func * (m: Mat3, v: Vec3) -> Vec3 {
        m.columns.0 * v.x + m.columns.1 * v.y + m.columns.2 * v.z
    }

    /// `a · b` (applies `b` first).
    @inlinable
    public static func * (a: Mat3, b: Mat3) -> Mat3 {
        Mat3(a * b.columns.0, a * b.columns.1, a * b.columns.2)
    }

    /// Every entry times `s`.
    @inlinable
    public static func * (m: Mat3, s: Float) -> Mat3 {
        Mat3(m.columns.0 * s, m.columns.1 * s, m.columns.2 * s)
    }

    @inlinable
    public static func + (a: Mat3, b: Mat3) -> Mat3 {
        Mat3(a.columns.0 + b.columns.0, a.columns.1 + b.columns.1, a.columns.2 + b.columns.2)
    }

    @inlinable
    public static func - (a: Mat3, b: Mat3) -> Mat3 {
        Mat3(a.columns.0 - b.columns.0, a.columns.1 - b.columns.1, a.columns.2 - b.columns.2)
    }

    /// The largest absolute entry of `a − b`.
    @inlinable
    public static func maxAbsDifference(_ a: Mat3, _ b: Mat3) -> Float {
        let d = a - b
        return Swift.max(maxAbs(d.columns.0), maxAbs(d.columns.1), maxAbs(d.columns.2))
    }

    // MARK: Equatable, Hashable

    @inlinable
    public static func == (a: Mat3, b: Mat3) -> Bool {
        a.columns.0 == b.columns.0 && a.columns.1 == b.columns.1 && a.columns.2 == b.columns.2
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(columns.0)
        hasher.combine(columns.1)
        hasher.combine(columns.2)
    }
}

// MARK: - Codable

extension Mat3: Codable {
    /// Decodes row-major nested arrays `[[Float; 3]; 3]`.
    public init(from decoder: any Decoder) throws {
        let rows = try decoder.singleValueContainer().decode([[Float]].self)
        guard rows.count == 3, rows.allSatisfy({ $0.count == 3 }) else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "Mat3 needs 3 rows of 3 numbers, got \(rows.map(\.count)) values per row"))
        }
        self.init(rows: Vec3(rows[0][0], rows[0][1], rows[0][2]),
                  Vec3(rows[1][0], rows[1][1], rows[1][2]),
                  Vec3(rows[2][0], rows[2][1], rows[2][2]))
    }

    /// Encodes row-major nested arrays `[[Float; 3]; 3]`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode((0..<3).map { i in (0..<3).map { j in self[row: i, column: j] } })
    }
}

extension Mat3: CustomStringConvertible {
    public var description: String {
        "Mat3(rows: \(row(0)), \(row(1)), \(row(2)))"
    }
}
