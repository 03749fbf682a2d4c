// Small-vector maths on the standard library's SIMD types.
//
// Kiln's geometry is single precision throughout: points, directions and colours are `SIMD*<Float>`
// under the short names below. Matrices (`Mat3`, `Mat4`) and quaternions (`Quat`) live in their own
// files; this file holds the vector helpers they share.

// MARK: - Type names

/// A 2-vector of `Float`: pixel coordinates, UVs.
public typealias Vec2 = SIMD2<Float>
/// A 3-vector of `Float`: points, directions, RGB colours.
public typealias Vec3 = SIMD3<Float>
/// A 4-vector of `Float`: homogeneous points, RGBA colours, matrix columns.
public typealias Vec4 = SIMD4<Float>

// MARK: - Vec3 helpers

/// Dot product `a·b`.
@inlinable
public func dot(_ a: Vec3, _ b: Vec3) -> Float {
    a.x * b.x + a.y * b.y + a.z * b.z
}

/// Cross product `a × b` (right-handed: `x × y = z`).
@inlinable
public func cross(_ a: Vec3, _ b: Vec3) -> Vec3 {
    Vec3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}

/// Squared Euclidean length `|v|²`.
@inlinable
public func lengthSquared(_ v: Vec3) -> Float {
    dot(v, v)
}

/// Euclidean length `|v|`.
@inlinable
public func length(_ v: Vec3) -> Float {
    dot(v, v).squareRoot()
}

/// `v / |v|`. The zero vector gives non-finite components; callers that may pass it should test
/// `length(v) > 0` first.
@inlinable
public func normalize(_ v: Vec3) -> Vec3 {
    v * (1 / dot(v, v).squareRoot())
}

// MARK: - Vec2 / Vec4 helpers

/// Dot product `a·b`.
@inlinable
public func dot(_ a: Vec2, _ b: Vec2) -> Float {
    a.x * b.x + a.y * b.y
}

/// Dot product `a·b`.
@inlinable
public func dot(_ a: Vec4, _ b: Vec4) -> Float {
    (a * b).sum()
}

// MARK: - Reductions

/// The largest absolute component, `max |vᵢ|` (the ∞-norm).
@inlinable
public func maxAbs(_ v: Vec3) -> Float {
    Swift.max(v.max(), -v.min())
}

/// The largest absolute component, `max |vᵢ|` (the ∞-norm).
@inlinable
public func maxAbs(_ v: Vec4) -> Float {
    Swift.max(v.max(), -v.min())
}

// MARK: - Scalars

/// Linear interpolation `a + (b − a)·t`; `t` is not clamped.
@inlinable
public func mix(_ a: Float, _ b: Float, _ t: Float) -> Float {
    a + (b - a) * t
}

/// Linear interpolation `a + (b − a)·t`, per component; `t` is not clamped.
@inlinable
public func mix(_ a: Vec3, _ b: Vec3, _ t: Float) -> Vec3 {
    a + (b - a) * t
}

/// `x` limited to `[lo, hi]`; NaN maps to `lo`.
@inlinable
public func clamp(_ x: Float, _ lo: Float, _ hi: Float) -> Float {
    // Written with `>`/`<` so that NaN fails both tests and falls through to `lo`.
    x > lo ? (x < hi ? x : hi) : lo
}

/// Degrees to radians.
@inlinable
public func radians(degrees: Float) -> Float {
    degrees * (Float.pi / 180)
}

/// Radians to degrees.
@inlinable
public func degrees(radians: Float) -> Float {
    radians * (180 / Float.pi)
}

/// Where the ray `origin + t·direction` (t ≥ 0) crosses the axis-aligned box `[lo, hi]` (slab
/// test): the entry and exit distances, or nil when it misses the box.
@inlinable
public func rayBoxIntersection(origin: SIMD3<Float>, direction: SIMD3<Float>, lo: SIMD3<Float>, hi: SIMD3<Float>) -> (near: Float, far: Float)? {
    var near: Float = 0, far = Float.infinity
    for a in 0..<3 {
        let inv = 1 / direction[a]
        var t0 = (lo[a] - origin[a]) * inv, t1 = (hi[a] - origin[a]) * inv
        if t0 > t1 { swap(&t0, &t1) }
        near = max(near, t0)
        far = min(far, t1)
    }
    return far > near ? (near, far) : nil
}
