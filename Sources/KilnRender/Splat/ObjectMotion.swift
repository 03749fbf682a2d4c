import KilnCore
import RealModule

/// The motion of a cloud as a whole over τ: one similarity transform per time, on top of
/// `SplatMotion`'s per-Gaussian deformation. Whole-object motion is what the toy world's motions
/// are (a bounce translates, a spin turns about +Y, a sway tilts about +Z, growing scales), and a
/// gradient summed over every Gaussian is far steadier than each Gaussian's own: a reward that
/// judges the object's motion moves the object rather than scattering its Gaussians.
///
///     p(τ) = Σₖ bₖ(τ)·Cₖ  with p = (tx, ty, tz, yaw, roll, pitch, log s), b the SplatMotion bases
///     R = Ry(yaw)·Rz(roll)·Rx(pitch),  q_R its quaternion q_y ⊗ q_z ⊗ q_x
///     μ' = s·R·μ + t,   q' = q_R ⊗ q,   log-scale' = log-scale + log s
///
/// about the world origin (the centre of the object's frame). Zero coefficients leave the cloud as
/// it is. View-dependent colour (SH degree > 0) is not rotated with the object.
///
/// Layout: `coefficients [K, 7]`, row-major.
public struct ObjectMotion<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable>: Sendable, Equatable {
    public static var basisCount: Int { SplatMotion<R>.basisCount }
    /// Values per basis: translation (3), yaw, roll, pitch (radians), log-scale.
    public static var parameterCount: Int { 7 }

    public var coefficients: [R]

    public init() { coefficients = [R](repeating: 0, count: Self.basisCount * Self.parameterCount) }

    public init(coefficients: [R]) {
        precondition(coefficients.count == Self.basisCount * Self.parameterCount, "ObjectMotion needs [K, 7] = \(Self.basisCount * Self.parameterCount) coefficients")
        self.coefficients = coefficients
    }

    /// The 7 pose values at τ.
    public func pose(at tau: R) -> [R] {
        let b = SplatMotion<R>.basis(tau), m = Self.parameterCount
        return (0..<m).map { j in (0..<Self.basisCount).reduce(R(0)) { $0 + b[$1] * coefficients[$1 * m + j] } }
    }

    /// A rotation about one axis (0: x, 1: y, 2: z): its matrix, its derivative and its quaternion
    /// (w, x, y, z) with the quaternion's derivative.
    struct AxisRotation {
        var matrix: [R], dMatrix: [R], quaternion: [R], dQuaternion: [R]
        init(axis: Int, angle: R) {
            let c = R.cos(angle), s = R.sin(angle)
            let (u, v) = ((axis + 1) % 3, (axis + 2) % 3)  // the plane it turns: u → v
            matrix = [R](repeating: 0, count: 9); dMatrix = matrix
            matrix[axis * 4] = 1
            matrix[u * 3 + u] = c; matrix[u * 3 + v] = -s; matrix[v * 3 + u] = s; matrix[v * 3 + v] = c
            dMatrix[u * 3 + u] = -s; dMatrix[u * 3 + v] = -c; dMatrix[v * 3 + u] = c; dMatrix[v * 3 + v] = -s
            let ch = R.cos(angle / 2), sh = R.sin(angle / 2)
            quaternion = [ch, 0, 0, 0]; dQuaternion = [-sh / 2, 0, 0, 0]
            quaternion[1 + axis] = sh; dQuaternion[1 + axis] = ch / 2
        }
    }

    static func multiply(_ a: [R], _ b: [R]) -> [R] {  // 3×3 row-major
        var out = [R](repeating: 0, count: 9)
        for row in 0..<3 { for column in 0..<3 { for k in 0..<3 { out[row * 3 + column] += a[row * 3 + k] * b[k * 3 + column] } } }
        return out
    }

    @inline(__always)
    static func product(_ a: SIMD4<R>, _ b: SIMD4<R>) -> SIMD4<R> {
        let w: R = a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3]
        let x: R = a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2]
        let y: R = a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1]
        let z: R = a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0]
        return SIMD4(w, x, y, z)
    }

    /// Hamilton product a ⊗ b of quaternions (w, x, y, z).
    static func product(_ a: [R], _ b: [R]) -> [R] {
        let w: R = a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3]
        let x: R = a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2]
        let y: R = a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1]
        let z: R = a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0]
        return [w, x, y, z]
    }

    /// The transform at τ: scale, R, q_R, translation, and ∂R and ∂q_R by yaw, roll, pitch.
    struct Transform {
        var scale: R, rotation: [R], quaternion: [R], translation: [R]
        var dRotation: [[R]], dQuaternion: [[R]]
    }

    func transform(at tau: R) -> Transform {
        let p = pose(at: tau)
        let y = AxisRotation(axis: 1, angle: p[3]), z = AxisRotation(axis: 2, angle: p[4]), x = AxisRotation(axis: 0, angle: p[5])
        let m = Self.multiply, q: ([R], [R]) -> [R] = Self.product
        return Transform(scale: R.exp(p[6]), rotation: m(m(y.matrix, z.matrix), x.matrix), quaternion: q(q(y.quaternion, z.quaternion), x.quaternion),
                         translation: Array(p[0..<3]),
                         dRotation: [m(m(y.dMatrix, z.matrix), x.matrix), m(m(y.matrix, z.dMatrix), x.matrix), m(m(y.matrix, z.matrix), x.dMatrix)],
                         dQuaternion: [q(q(y.dQuaternion, z.quaternion), x.quaternion), q(q(y.quaternion, z.dQuaternion), x.quaternion),
                                       q(q(y.quaternion, z.quaternion), x.dQuaternion)])
    }

    /// Points moved by the object's transform at τ: s·R·p + t.
    @_specialize(where R == Float)
    public func moving(_ points: [SIMD3<R>], at tau: R) -> [SIMD3<R>] {
        let t = transform(at: tau)
        return points.map { p in
            SIMD3((0..<3).map { a in t.translation[a] + t.scale * (t.rotation[a * 3] * p.x + t.rotation[a * 3 + 1] * p.y + t.rotation[a * 3 + 2] * p.z) })
        }
    }

    /// Points taken back through the object's transform at τ: Rᵀ·(p − t)/s, the inverse of `moving`.
    @_specialize(where R == Float)
    public func unmoving(_ points: [SIMD3<R>], at tau: R) -> [SIMD3<R>] {
        let t = transform(at: tau)
        return points.map { p in
            let d = (p - SIMD3(t.translation[0], t.translation[1], t.translation[2])) / t.scale
            return SIMD3((0..<3).map { a in t.rotation[a] * d.x + t.rotation[3 + a] * d.y + t.rotation[6 + a] * d.z })
        }
    }

    /// The cloud moved by the object's transform at τ.
    @_specialize(where R == Float)
    public func applied(_ p: SplatParameters<R>, at tau: R) -> SplatParameters<R> {
        let t = transform(at: tau)
        let qR = SIMD4(t.quaternion[0], t.quaternion[1], t.quaternion[2], t.quaternion[3])
        let logScale = R.log(t.scale)
        var out = p
        for i in 0..<p.count {
            for a in 0..<3 {
                var v = t.translation[a]
                for b in 0..<3 { v += t.scale * t.rotation[a * 3 + b] * p.means[3 * i + b] }
                out.means[3 * i + a] = v
                out.logScales[3 * i + a] = p.logScales[3 * i + a] + logScale
            }
            let q = Self.product(qR, SIMD4(p.rotations[4 * i], p.rotations[4 * i + 1], p.rotations[4 * i + 2], p.rotations[4 * i + 3]))
            for a in 0..<4 { out.rotations[4 * i + a] = q[a] }
        }
        return out
    }

    /// The backward pass of `applied`: from the gradient with respect to the moved cloud, the
    /// gradient with respect to the cloud before the move (`input`) and to the coefficients.
    ///
    ///     ∂L/∂μ = s·Rᵀ·g_μ',  ∂L/∂q = L(q_R)ᵀ·g_q',  ∂L/∂log-scale = g_s'
    ///     ∂L/∂t = Σ g_μ',  ∂L/∂log s = Σ g_μ'·(s·R·μ) + Σ g_s',  ∂L/∂angle = Σ g_μ'·(s·∂R·μ) + Σ g_q'·(∂q_R ⊗ q)
    ///     ∂L/∂Cₖ = bₖ(τ)·∂L/∂p
    @_specialize(where R == Float)
    public static func backward(_ g: SplatParameters<R>, input p: SplatParameters<R>, motion: ObjectMotion<R>, at tau: R)
        -> (input: SplatParameters<R>, motion: ObjectMotion<R>) {
        let t = motion.transform(at: tau)
        let conjugate = SIMD4(t.quaternion[0], -t.quaternion[1], -t.quaternion[2], -t.quaternion[3])
        let dQ = t.dQuaternion.map { SIMD4($0[0], $0[1], $0[2], $0[3]) }
        var gInput = g
        var gPose = [R](repeating: 0, count: parameterCount)
        for i in 0..<p.count {
            let mu = SIMD3(p.means[3 * i], p.means[3 * i + 1], p.means[3 * i + 2])
            let gm = SIMD3(g.means[3 * i], g.means[3 * i + 1], g.means[3 * i + 2])
            for b in 0..<3 {
                gInput.means[3 * i + b] = (0..<3).reduce(R(0)) { $0 + t.scale * t.rotation[$1 * 3 + b] * gm[$1] }
            }
            for a in 0..<3 {
                gPose[a] += gm[a]
                let rotated = (0..<3).reduce(R(0)) { $0 + t.rotation[a * 3 + $1] * mu[$1] }
                gPose[6] += gm[a] * t.scale * rotated + g.logScales[3 * i + a]
                for angle in 0..<3 {
                    gPose[3 + angle] += gm[a] * t.scale * (0..<3).reduce(R(0)) { $0 + t.dRotation[angle][a * 3 + $1] * mu[$1] }
                }
            }
            let q = SIMD4(p.rotations[4 * i], p.rotations[4 * i + 1], p.rotations[4 * i + 2], p.rotations[4 * i + 3])
            let gq = SIMD4(g.rotations[4 * i], g.rotations[4 * i + 1], g.rotations[4 * i + 2], g.rotations[4 * i + 3])
            // q' = q_R ⊗ q is linear in q: its transpose applied to g_q' is q_R* ⊗ g_q' (q_R* the conjugate).
            let back = product(conjugate, gq)
            for a in 0..<4 { gInput.rotations[4 * i + a] = back[a] }
            for angle in 0..<3 {
                gPose[3 + angle] += (product(dQ[angle], q) * gq).sum()
            }
        }
        let basis = SplatMotion<R>.basis(tau)
        var coefficients = [R](repeating: 0, count: basisCount * parameterCount)
        for k in 0..<basisCount { for j in 0..<parameterCount { coefficients[k * parameterCount + j] = basis[k] * gPose[j] } }
        return (gInput, ObjectMotion(coefficients: coefficients))
    }
}
