import RealModule

/// Real spherical harmonics up to degree 3 in the 3DGS convention (basis order and signs of
/// graphdeco-inria's `computeColorFromSH`), with the derivative of each basis function.
public enum SphericalHarmonics {
    public static let c0 = 0.28209479177387814
    public static let c1 = 0.4886025119029199
    public static let c2: [Double] = [1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396]
    public static let c3: [Double] = [-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
                                      -0.4570457994644658, 1.445305721320277, -0.5900435899266435]

    /// Basis values `Y_k(d)` for k < (degree+1)² at a unit direction, written to `out[0..<K]`.
    @inlinable
    public static func basis<R: Real & BinaryFloatingPoint>(degree: Int, x: R, y: R, z: R, into out: inout [R]) {
        out[0] = R(c0)
        guard degree >= 1 else { return }
        out[1] = -R(c1) * y; out[2] = R(c1) * z; out[3] = -R(c1) * x
        guard degree >= 2 else { return }
        let xx = x * x, yy = y * y, zz = z * z, xy = x * y, yz = y * z, xz = x * z
        out[4] = R(c2[0]) * xy
        out[5] = R(c2[1]) * yz
        out[6] = R(c2[2]) * (2 * zz - xx - yy)
        out[7] = R(c2[3]) * xz
        out[8] = R(c2[4]) * (xx - yy)
        guard degree >= 3 else { return }
        out[9] = R(c3[0]) * y * (3 * xx - yy)
        out[10] = R(c3[1]) * xy * z
        out[11] = R(c3[2]) * y * (4 * zz - xx - yy)
        out[12] = R(c3[3]) * z * (2 * zz - 3 * xx - 3 * yy)
        out[13] = R(c3[4]) * x * (4 * zz - xx - yy)
        out[14] = R(c3[5]) * z * (xx - yy)
        out[15] = R(c3[6]) * x * (xx - 3 * yy)
    }

    /// `Σ_k w_k · ∇Y_k(d)` (the gradient of a weighted basis sum with respect to the unnormalised
    /// direction components, before the normalisation's Jacobian).
    @inlinable
    public static func basisGradient<R: Real & BinaryFloatingPoint & SIMDScalar>(degree: Int, x: R, y: R, z: R, weights w: SIMD16<R>) -> (R, R, R) {
        var gx: R = 0, gy: R = 0, gz: R = 0
        guard degree >= 1 else { return (0, 0, 0) }
        gy -= R(c1) * w[1]; gz += R(c1) * w[2]; gx -= R(c1) * w[3]
        guard degree >= 2 else { return (gx, gy, gz) }
        let xx = x * x, yy = y * y, zz = z * z
        gx += R(c2[0]) * y * w[4]; gy += R(c2[0]) * x * w[4]
        gy += R(c2[1]) * z * w[5]; gz += R(c2[1]) * y * w[5]
        gx -= 2 * R(c2[2]) * x * w[6]; gy -= 2 * R(c2[2]) * y * w[6]; gz += 4 * R(c2[2]) * z * w[6]
        gx += R(c2[3]) * z * w[7]; gz += R(c2[3]) * x * w[7]
        gx += 2 * R(c2[4]) * x * w[8]; gy -= 2 * R(c2[4]) * y * w[8]
        guard degree >= 3 else { return (gx, gy, gz) }
        gx += 6 * R(c3[0]) * x * y * w[9]; gy += R(c3[0]) * (3 * xx - 3 * yy) * w[9]
        gx += R(c3[1]) * y * z * w[10]; gy += R(c3[1]) * x * z * w[10]; gz += R(c3[1]) * x * y * w[10]
        gx -= 2 * R(c3[2]) * x * y * w[11]; gy += R(c3[2]) * (4 * zz - xx - 3 * yy) * w[11]; gz += 8 * R(c3[2]) * y * z * w[11]
        gx -= 6 * R(c3[3]) * x * z * w[12]; gy -= 6 * R(c3[3]) * y * z * w[12]; gz += R(c3[3]) * (6 * zz - 3 * xx - 3 * yy) * w[12]
        gx += R(c3[4]) * (4 * zz - 3 * xx - yy) * w[13]; gy -= 2 * R(c3[4]) * x * y * w[13]; gz += 8 * R(c3[4]) * x * z * w[13]
        gx += 2 * R(c3[5]) * x * z * w[14]; gy -= 2 * R(c3[5]) * y * z * w[14]; gz += R(c3[5]) * (xx - yy) * w[14]
        gx += R(c3[6]) * (3 * xx - 3 * yy) * w[15]; gy -= 6 * R(c3[6]) * x * y * w[15]
        return (gx, gy, gz)
    }
}
