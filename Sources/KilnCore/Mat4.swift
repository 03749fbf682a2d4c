/// A 4×4 `Float` matrix, column-major: `columns.j` is column `j`, `self[row: i, column: j]` is
/// the entry in row `i`, column `j`.
///
/// Matrices act on column vectors from the left: `m * v`, so a rigid or affine transform keeps its
/// translation in `columns.3` and a product `a * b` applies `b` first. Name transforms by the frames
/// they map between: `cameraFromWorld * worldFromObject = cameraFromObject`.
/// `Codable` form: row-major nested arrays `[[m00, m01, m02, m03], …]`, as written on paper and as
/// NeRF's `transform_matrix` stores it.
public struct Mat4: Sendable, Hashable {
    /// The four columns.
    public var columns: (Vec4, Vec4, Vec4, Vec4)

    // MARK: Construction

    /// A matrix from its columns.
    @inlinable
    public init(_ c0: Vec4, _ c1: Vec4, _ c2: Vec4, _ c3: Vec4) {
        columns = (c0, c1, c2, c3)
    }

    /// A matrix from its columns.
    @inlinable
    public init(columns: (Vec4, Vec4, Vec4, Vec4)) {
        self.columns = columns
    }

    /// A matrix from its rows.
    @inlinable
    public init(rows r0: Vec4, _ r1: Vec4, _ r2: Vec4, _ r3: Vec4) {
        columns = (Vec4(r0.x, r1.x, r2.x, r3.x), Vec4(r0.y, r1.y, r2.y, r3.y),
                   Vec4(r0.z, r1.z, r2.z, r3.z), Vec4(r0.w, r1.w, r2.w, r3.w))
    }

    /// A matrix from row-major nested arrays, `[4][4]`; nil unless the shape is exactly 4×4.
    public init?(rowMajor rows: [[Float]]) {
        guard rows.count == 4, rows.allSatisfy({ $0.count == 4 }) else { return nil }
        self.init(rows: Vec4(rows[0][0], rows[0][1], rows[0][2], rows[0][3]),
                  Vec4(rows[1][0], rows[1][1], rows[1][2], rows[1][3]),
                  Vec4(rows[2][0], rows[2][1], rows[2][2], rows[2][3]),
                  Vec4(rows[3][0], rows[3][1], rows[3][2], rows[3][3]))
    }

    /// A diagonal matrix.
    @inlinable
    public init(diagonal d: Vec4) {
        columns = (Vec4(d.x, 0, 0, 0), Vec4(0, d.y, 0, 0), Vec4(0, 0, d.z, 0), Vec4(0, 0, 0, d.w))
    }

    /// The affine transform `p ↦ linear · p + translation`.
    @inlinable
    public init(linear: Mat3, translation: Vec3 = .zero) {
        columns = (Vec4(linear.columns.0, 0), Vec4(linear.columns.1, 0), Vec4(linear.columns.2, 0),
                   Vec4(translation, 1))
    }

    /// The rigid transform `p ↦ R(rotation) · p + translation`.
    @inlinable
    public init(rotation: Quat, translation: Vec3 = .zero) {
        self.init(linear: rotation.matrix, translation: translation)
    }

    /// The identity.
    public static let identity = Mat4(diagonal: Vec4(1, 1, 1, 1))

    /// The translation `p ↦ p + t`.
    @inlinable
    public static func translation(_ t: Vec3) -> Mat4 {
        Mat4(linear: .identity, translation: t)
    }

    /// The scale `p ↦ s ⊙ p` along the axes.
    @inlinable
    public static func scale(_ s: Vec3) -> Mat4 {
        Mat4(diagonal: Vec4(s, 1))
    }

    /// The rotation `p ↦ R(q) · p` (q normalised here).
    @inlinable
    public static func rotation(_ q: Quat) -> Mat4 {
        Mat4(linear: q.normalized.matrix)
    }

    /// A right-handed rotation by `angleRadians` about `axis` through the origin.
    @inlinable
    public static func rotation(axis: Vec3, angleRadians: Float) -> Mat4 {
        Mat4(linear: .rotation(axis: axis, angleRadians: angleRadians))
    }

    // MARK: Access

    /// Column `j` (0...3).
    @inlinable
    public subscript(column j: Int) -> Vec4 {
        get {
            switch j {
            case 0: return columns.0
            case 1: return columns.1
            case 2: return columns.2
            case 3: return columns.3
            default: preconditionFailure("Mat4 column \(j) out of range 0...3")
            }
        }
        set {
            switch j {
            case 0: columns.0 = newValue
            case 1: columns.1 = newValue
            case 2: columns.2 = newValue
            case 3: columns.3 = newValue
            default: preconditionFailure("Mat4 column \(j) out of range 0...3")
            }
        }
    }

    /// The entry in row `i`, column `j`.
    @inlinable
    public subscript(row i: Int, column j: Int) -> Float {
        get { self[column: j][i] }
        set { self[column: j][i] = newValue }
    }

    /// Row `i` (0...3).
    @inlinable
    public func row(_ i: Int) -> Vec4 {
        Vec4(columns.0[i], columns.1[i], columns.2[i], columns.3[i])
    }

    /// Row-major nested arrays `[4][4]`.
    public var rowMajor: [[Float]] {
        (0..<4).map { i in (0..<4).map { j in self[row: i, column: j] } }
    }

    /// The upper-left 3×3 block (rotation·scale of an affine transform).
    @inlinable
    public var upperLeft: Mat3 {
        get {
            Mat3(Vec3(columns.0.x, columns.0.y, columns.0.z), Vec3(columns.1.x, columns.1.y, columns.1.z),
                 Vec3(columns.2.x, columns.2.y, columns.2.z))
        }
        set {
            columns.0 = Vec4(newValue.columns.0, columns.0.w)
            columns.1 = Vec4(newValue.columns.1, columns.1.w)
            columns.2 = Vec4(newValue.columns.2, columns.2.w)
        }
    }

    /// The translation part, `columns.3.xyz`.
    @inlinable
    public var translation: Vec3 {
        get { Vec3(columns.3.x, columns.3.y, columns.3.z) }
        set { columns.3 = Vec4(newValue, columns.3.w) }
    }

    // MARK: Applying

    /// `m · v`.
    @inlinable
    public static func * (m: Mat4, v: Vec4) -> Vec4 {
        m.columns.0 * v.x + m.columns.1 * v.y + m.columns.2 * v.z + m.columns.3 * v.w
    }

    /// The affine image of a point, `(m · (p, 1)).xyz`. The last row is ignored (assumed
    /// `(0, 0, 0, 1)`); use `transformHomogeneous` for projective matrices.
    @inlinable
    public func transformPoint(_ p: Vec3) -> Vec3 {
        let r = columns.0 * p.x + columns.1 * p.y + columns.2 * p.z + columns.3
        return Vec3(r.x, r.y, r.z)
    }

    /// The image of a direction, `(m · (d, 0)).xyz`: translation has no effect. Not renormalised.
    @inlinable
    public func transformDirection(_ d: Vec3) -> Vec3 {
        let r = columns.0 * d.x + columns.1 * d.y + columns.2 * d.z
        return Vec3(r.x, r.y, r.z)
    }

    /// The projective image of a point: `m · (p, 1)` divided by its `w`.
    @inlinable
    public func transformHomogeneous(_ p: Vec3) -> Vec3 {
        let r = self * Vec4(p, 1)
        return Vec3(r.x, r.y, r.z) / r.w
    }

    // MARK: Algebra

    /// `a · b` (applies `b` first).
    @inlinable
    public static func * (a: Mat4, b: Mat4) -> Mat4 {
        Mat4(a * b.columns.0, a * b.columns.1, a * b.columns.2, a * b.columns.3)
    }

    /// Every entry times `s`.
    @inlinable
    public static func * (m: Mat4, s: Float) -> Mat4 {
        Mat4(m.columns.0 * s, m.columns.1 * s, m.columns.2 * s, m.columns.3 * s)
    }

    @inlinable
    public static func + (a: Mat4, b: Mat4) -> Mat4 {
        Mat4(a.columns.0 + b.columns.0, a.columns.1 + b.columns.1,
             a.columns.2 + b.columns.2, a.columns.3 + b.columns.3)
    }

    @inlinable
    public static func - (a: Mat4, b: Mat4) -> Mat4 {
        Mat4(a.columns.0 - b.columns.0, a.columns.1 - b.columns.1,
             a.columns.2 - b.columns.2, a.columns.3 - b.columns.3)
    }

    /// The transpose.
    @inlinable
    public var transpose: Mat4 {
        Mat4(rows: columns.0, columns.1, columns.2, columns.3)
    }

    /// The determinant (Laplace expansion over 2×2 minors of the top and bottom row pairs).
    @inlinable
    public var determinant: Float {
        Minors(self).determinant
    }

    /// The general inverse by the adjugate over 2×2 minors (Laplace expansion; the same scheme as
    /// GLM's and Mesa's `gluInvertMatrix`). A singular matrix gives non-finite entries; for rigid
    /// transforms `rigidInverse` is cheaper and exactly orthonormal.
    /// - Complexity: about 150 flops.
    @inlinable
    public var inverse: Mat4 {
        let m = Minors(self)
        let k = 1 / m.determinant
        // Written in terms of the rows r0…r3 of `self`: `r1[2]` is the entry in row 1, column 2.
        let (r0, r1, r2, r3) = (m.r0, m.r1, m.r2, m.r3)
        let i0 = Vec4(r1[1] * m.c5 - r1[2] * m.c4 + r1[3] * m.c3,
                      -r0[1] * m.c5 + r0[2] * m.c4 - r0[3] * m.c3,
                      r3[1] * m.s5 - r3[2] * m.s4 + r3[3] * m.s3,
                      -r2[1] * m.s5 + r2[2] * m.s4 - r2[3] * m.s3)
        let i1 = Vec4(-r1[0] * m.c5 + r1[2] * m.c2 - r1[3] * m.c1,
                      r0[0] * m.c5 - r0[2] * m.c2 + r0[3] * m.c1,
                      -r3[0] * m.s5 + r3[2] * m.s2 - r3[3] * m.s1,
                      r2[0] * m.s5 - r2[2] * m.s2 + r2[3] * m.s1)
        let i2 = Vec4(r1[0] * m.c4 - r1[1] * m.c2 + r1[3] * m.c0,
                      -r0[0] * m.c4 + r0[1] * m.c2 - r0[3] * m.c0,
                      r3[0] * m.s4 - r3[1] * m.s2 + r3[3] * m.s0,
                      -r2[0] * m.s4 + r2[1] * m.s2 - r2[3] * m.s0)
        let i3 = Vec4(-r1[0] * m.c3 + r1[1] * m.c1 - r1[2] * m.c0,
                      r0[0] * m.c3 - r0[1] * m.c1 + r0[2] * m.c0,
                      -r3[0] * m.s3 + r3[1] * m.s1 - r3[2] * m.s0,
                      r2[0] * m.s3 - r2[1] * m.s1 + r2[2] * m.s0)
        return Mat4(rows: i0 * k, i1 * k, i2 * k, i3 * k)
    }

    /// The inverse of a rigid transform `[R | t]`: `[Rᵀ | −Rᵀt]`. Only valid when the upper-left
    /// block is a rotation and the last row is `(0, 0, 0, 1)`; nothing is checked.
    @inlinable
    public var rigidInverse: Mat4 {
        let rt = upperLeft.transpose
        return Mat4(linear: rt, translation: -(rt * translation))
    }

    /// The largest absolute entry of `a − b`.
    @inlinable
    public static func maxAbsDifference(_ a: Mat4, _ b: Mat4) -> Float {
        let d = a - b
        return Swift.max(maxAbs(d.columns.0), maxAbs(d.columns.1),
                         maxAbs(d.columns.2), maxAbs(d.columns.3))
    }

    // MARK: Equatable, Hashable

    @inlinable
    public static func == (a: Mat4, b: Mat4) -> Bool {
        a.columns.0 == b.columns.0 && a.columns.1 == b.columns.1
            && a.columns.2 == b.columns.2 && a.columns.3 == b.columns.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(columns.0)
        hasher.combine(columns.1)
        hasher.combine(columns.2)
        hasher.combine(columns.3)
    }
}

// MARK: - 2×2 minors

extension Mat4 {
    /// The twelve 2×2 minors used by `determinant` and `inverse`: `s*` from rows 0–1, `c*` from
    /// rows 2–3, each over a pair of columns.
    @usableFromInline
    struct Minors {
        /// The rows of the matrix.
        @usableFromInline let r0, r1, r2, r3: Vec4
        @usableFromInline let s0, s1, s2, s3, s4, s5: Float
        @usableFromInline let c0, c1, c2, c3, c4, c5: Float

        @inlinable
        init(_ m: Mat4) {
            let r0 = m.row(0), r1 = m.row(1), r2 = m.row(2), r3 = m.row(3)
            (self.r0, self.r1, self.r2, self.r3) = (r0, r1, r2, r3)
            s0 = r0[0] * r1[1] - r1[0] * r0[1]
            s1 = r0[0] * r1[2] - r1[0] * r0[2]
            s2 = r0[0] * r1[3] - r1[0] * r0[3]
            s3 = r0[1] * r1[2] - r1[1] * r0[2]
            s4 = r0[1] * r1[3] - r1[1] * r0[3]
            s5 = r0[2] * r1[3] - r1[2] * r0[3]
            c5 = r2[2] * r3[3] - r3[2] * r2[3]
            c4 = r2[1] * r3[3] - r3[1] * r2[3]
            c3 = r2[1] * r3[2] - r3[1] * r2[2]
            c2 = r2[0] * r3[3] - r3[0] * r2[3]
            c1 = r2[0] * r3[2] - r3[0] * r2[2]
            c0 = r2[0] * r3[1] - r3[0] * r2[1]
        }

        @inlinable
        var determinant: Float {
            s0 * c5 - s1 * c4 + s2 * c3 + s3 * c2 - s4 * c1 + s5 * c0
        }
    }
}

// MARK: - Codable

extension Mat4: Codable {
    /// Decodes row-major nested arrays `[[Float; 4]; 4]`.
    public init(from decoder: any Decoder) throws {
        let rows = try decoder.singleValueContainer().decode([[Float]].self)
        guard let m = Mat4(rowMajor: rows) else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "Mat4 needs 4 rows of 4 numbers, got \(rows.map(\.count)) values per row"))
        }
        self = m
    }

    /// Encodes row-major nested arrays `[[Float; 4]; 4]`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rowMajor)
    }
}

extension Mat4: CustomStringConvertible {
    public var description: String {
        "Mat4(rows: \(row(0)), \(row(1)), \(row(2)), \(row(3)))"
    }
}
