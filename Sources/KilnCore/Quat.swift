import Foundation

/// A quaternion `w + x·i + y·j + z·k`, Hamilton convention; unit quaternions are rotations.
///
/// Stored scalar-first `(w, x, y, z)`, the order INRIA 3DGS PLY files and `GaussianCloud.rotations`
/// use (`wxyz`). The product `a * b` rotates by `b` first, so `(a * b).matrix == a.matrix * b.matrix`.
/// `q` and `−q` are the same rotation; `init(_: Mat3)` returns the one with `w ≥ 0`.
public struct Quat: Sendable, Hashable, Codable {
    public var w: Float
    public var x: Float
    public var y: Float
    public var z: Float

    // MARK: Construction

    @inlinable
    public init(w: Float, x: Float, y: Float, z: Float) {
        self.w = w; self.x = x; self.y = y; self.z = z
    }

    /// From a scalar part and a vector part.
    @inlinable
    public init(real w: Float, imaginary v: Vec3) {
        self.init(w: w, x: v.x, y: v.y, z: v.z)
    }

    /// From `SIMD4(w, x, y, z)` (the layout of `GaussianCloud.rotations`).
    @inlinable
    public init(wxyz v: Vec4) {
        self.init(w: v.x, x: v.y, y: v.z, z: v.w)
    }

    /// The identity rotation.
    public static let identity = Quat(w: 1, x: 0, y: 0, z: 0)

    /// A right-handed rotation by `angleRadians` about `axis` (normalised here; must be non-zero):
    /// `(cos(θ/2), sin(θ/2)·â)`.
    @inlinable
    public init(axis: Vec3, angleRadians: Float) {
        let half = angleRadians * 0.5
        self.init(real: cos(half), imaginary: normalize(axis) * sin(half))
    }

    /// The rotation of a 3×3 rotation matrix, by Shepperd's method: pivot on the largest of
    /// `trace, m00, m11, m22` so the square root and the division are always well conditioned
    /// (Shepperd 1978, "Quaternion from rotation matrix", J. Guidance and Control 1(3)).
    /// The result is normalised and has `w ≥ 0`. A matrix that is not a rotation gives the
    /// rotation nearest to it only approximately.
    public init(_ m: Mat3) {
        let m00 = m[row: 0, column: 0], m01 = m[row: 0, column: 1], m02 = m[row: 0, column: 2]
        let m10 = m[row: 1, column: 0], m11 = m[row: 1, column: 1], m12 = m[row: 1, column: 2]
        let m20 = m[row: 2, column: 0], m21 = m[row: 2, column: 1], m22 = m[row: 2, column: 2]
        let trace = m00 + m11 + m22
        var q: Quat
        if trace >= m00 && trace >= m11 && trace >= m22 {
            let r = (1 + trace).squareRoot()  // = 2|w|, the largest component is w
            let s = 0.5 / r
            q = Quat(w: 0.5 * r, x: (m21 - m12) * s, y: (m02 - m20) * s, z: (m10 - m01) * s)
        } else if m00 >= m11 && m00 >= m22 {
            let r = (1 + m00 - m11 - m22).squareRoot()  // = 2|x|
            let s = 0.5 / r
            q = Quat(w: (m21 - m12) * s, x: 0.5 * r, y: (m01 + m10) * s, z: (m02 + m20) * s)
        } else if m11 >= m22 {
            let r = (1 - m00 + m11 - m22).squareRoot()  // = 2|y|
            let s = 0.5 / r
            q = Quat(w: (m02 - m20) * s, x: (m01 + m10) * s, y: 0.5 * r, z: (m12 + m21) * s)
        } else {
            let r = (1 - m00 - m11 + m22).squareRoot()  // = 2|z|
            let s = 0.5 / r
            q = Quat(w: (m10 - m01) * s, x: (m02 + m20) * s, y: (m12 + m21) * s, z: 0.5 * r)
        }
        q = q.normalized
        self = q.w < 0 ? -q : q
    }

    // MARK: Components

    /// `SIMD4(w, x, y, z)`.
    @inlinable
    public var wxyz: Vec4 { Vec4(w, x, y, z) }

    /// The vector part `(x, y, z)`.
    @inlinable
    public var imaginary: Vec3 { Vec3(x, y, z) }

    /// `|q|`.
    @inlinable
    public var length: Float { (w * w + x * x + y * y + z * z).squareRoot() }

    /// `q / |q|`. The zero quaternion gives non-finite components.
    @inlinable
    public var normalized: Quat {
        let k = 1 / length
        return Quat(w: w * k, x: x * k, y: y * k, z: z * k)
    }

    /// `(w, −x, −y, −z)`: the inverse rotation for a unit quaternion.
    @inlinable
    public var conjugate: Quat { Quat(w: w, x: -x, y: -y, z: -z) }

    /// `q̄ / |q|²`.
    @inlinable
    public var inverse: Quat {
        let k = 1 / (w * w + x * x + y * y + z * z)
        return Quat(w: w * k, x: -x * k, y: -y * k, z: -z * k)
    }

    /// The rotation angle in `[0, 2π]` of a unit quaternion.
    @inlinable
    public var angleRadians: Float { 2 * acos(Swift.max(-1, Swift.min(1, w))) }

    /// The unit rotation axis of a unit quaternion; `+x` for the identity.
    @inlinable
    public var axis: Vec3 {
        let v = imaginary
        let l = dot(v, v).squareRoot()
        return l > 0 ? v / l : Vec3(1, 0, 0)
    }

    // MARK: Algebra

    /// The Hamilton product: `a * b` rotates by `b`, then by `a`.
    @inlinable
    public static func * (a: Quat, b: Quat) -> Quat {
        Quat(w: a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z,
             x: a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
             y: a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
             z: a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w)
    }

    @inlinable
    public static prefix func - (q: Quat) -> Quat {
        Quat(w: -q.w, x: -q.x, y: -q.y, z: -q.z)
    }

    /// `v` rotated by this unit quaternion: `q v q̄`, evaluated as
    /// `v + 2w(u × v) + 2u × (u × v)` with `u = (x, y, z)`.
    @inlinable
    public func rotate(_ v: Vec3) -> Vec3 {
        let u = imaginary
        let t = 2 * cross(u, v)
        return v + w * t + cross(u, t)
    }

    /// The rotation matrix of this unit quaternion (not renormalised).
    @inlinable
    public var matrix: Mat3 {
        let xx = x * x, yy = y * y, zz = z * z
        let xy = x * y, xz = x * z, yz = y * z
        let wx = w * x, wy = w * y, wz = w * z
        return Mat3(Vec3(1 - 2 * (yy + zz), 2 * (xy + wz), 2 * (xz - wy)),
                    Vec3(2 * (xy - wz), 1 - 2 * (xx + zz), 2 * (yz + wx)),
                    Vec3(2 * (xz + wy), 2 * (yz - wx), 1 - 2 * (xx + yy)))
    }

    // MARK: Interpolation

    /// Spherical linear interpolation between unit quaternions along the shorter arc:
    /// `t = 0` gives `a`, `t = 1` gives `b` (or `−b`, the same rotation). Falls back to normalised
    /// linear interpolation when the two are within about 1.8° (`cos > 0.9995`), where
    /// `sin θ` in the denominator loses precision.
    public static func slerp(_ a: Quat, _ b: Quat, t: Float) -> Quat {
        var b = b
        var c = (a.wxyz * b.wxyz).sum()
        if c < 0 { b = -b; c = -c }  // shorter arc
        if c > 0.9995 {
            let q = Quat(wxyz: a.wxyz + (b.wxyz - a.wxyz) * t)
            return q.normalized
        }
        let theta = acos(c)
        let s = sin(theta)
        let ka = sin((1 - t) * theta) / s
        let kb = sin(t * theta) / s
        return Quat(wxyz: a.wxyz * ka + b.wxyz * kb)
    }
}

extension Quat: CustomStringConvertible {
    public var description: String { "Quat(w: \(w), x: \(x), y: \(y), z: \(z))" }
}
