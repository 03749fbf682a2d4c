import KilnCore
import RealModule

/// A pinhole camera in precision `R`: `p = rotation · x + translation` (OpenCV frame: +x right,
/// +y down, +z forward), pixel = (fx·p.x/p.z + cx, fy·p.y/p.z + cy), pixel centres at +0.5.
public struct SplatCamera<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable>: @unchecked Sendable {  // plain values
    /// Row-major 3×3 rotation of `cameraFromWorld`.
    public var rotation: SIMD16<R>
    public var translation: (R, R, R)
    /// Camera centre in world coordinates.
    public var position: (R, R, R)
    public var fx: R, fy: R, cx: R, cy: R
    public var width: Int, height: Int

    public init(_ camera: Camera) {
        let m = camera.cameraFromWorld
        rotation = SIMD16<R>()
        for r in 0..<3 { for c in 0..<3 { rotation[3 * r + c] = R(m[row: r, column: c]) } }
        translation = (R(m[row: 0, column: 3]), R(m[row: 1, column: 3]), R(m[row: 2, column: 3]))
        // c = −Rᵀ t, computed in R from the rotation and translation above.
        let t = translation, q = rotation
        position = (-(q[0] * t.0 + q[3] * t.1 + q[6] * t.2), -(q[1] * t.0 + q[4] * t.1 + q[7] * t.2), -(q[2] * t.0 + q[5] * t.1 + q[8] * t.2))
        fx = R(camera.fx); fy = R(camera.fy); cx = R(camera.cx); cy = R(camera.cy)
        width = camera.width; height = camera.height
    }
}

/// One Gaussian after projection: what the compositing loop needs.
public struct ProjectedGaussian<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable>: Sendable {
    public var visible = false
    /// Centre in pixels.
    public var meanX: R = 0, meanY: R = 0
    /// Inverse 2D covariance (a, b, c): power = −½(a·dx² + c·dy²) − b·dx·dy.
    public var conicA: R = 0, conicB: R = 0, conicC: R = 0
    /// Camera-space z of the centre.
    public var depth: R = 0
    /// Half-side of the 3σ bounding square, whole pixels.
    public var radius: Int = 0
    /// View-dependent colour (clamped at 0) and opacity (sigmoid × antialiasing compensation).
    public var red: R = 0, green: R = 0, blue: R = 0
    public var opacity: R = 0
    public init() {}
}

/// Gradients of a loss with respect to one projected Gaussian's outputs.
public struct ProjectedGradient<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable>: Sendable {
    public var meanX: R = 0, meanY: R = 0
    public var conicA: R = 0, conicB: R = 0, conicC: R = 0
    public var depth: R = 0
    public var red: R = 0, green: R = 0, blue: R = 0
    public var opacity: R = 0
    public init() {}

    @inlinable public static func += (a: inout ProjectedGradient, b: ProjectedGradient) {
        a.meanX += b.meanX; a.meanY += b.meanY
        a.conicA += b.conicA; a.conicB += b.conicB; a.conicC += b.conicC
        a.depth += b.depth; a.red += b.red; a.green += b.green; a.blue += b.blue; a.opacity += b.opacity
    }
}

/// EWA projection of 3D Gaussians (3DGS / gsplat) and its exact backward pass.
///
/// Σ = R(q)·S·Sᵀ·R(q)ᵀ with S = diag(exp(logScale)); camera-space Σc = W·Σ·Wᵀ; with
/// (x, y, z) the camera-space centre, J = [[fx/z, 0, −fx·x'/z²], [0, fy/z, −fy·y'/z²]] where
/// x' = z·clamp(x/z, −(cx/fx + 0.3·tanX), (width−cx)/fx + 0.3·tanX) (and y' alike) keeps J
/// finite for centres far outside the view; Σ2D = J·Σc·Jᵀ + lowPass·I; conic = Σ2D⁻¹;
/// radius = ⌈3·√λmax⌉ with λmax = mid + √max(0.1, mid² − det). Culled when z < near, det ≤ 0,
/// or the bounding square misses the image.
public enum SplatProjection {
    /// Projects Gaussian `i`. `basis` is scratch of at least 16 values.
    @inlinable
    public static func project<R>(_ i: Int, _ p: SplatParameters<R>, camera c: SplatCamera<R>, settings: SplatRenderSettings,
                                  degree: Int, basis: inout [R]) -> ProjectedGaussian<R> {
        var out = ProjectedGaussian<R>()
        let mx = p.means[3 * i], my = p.means[3 * i + 1], mz = p.means[3 * i + 2]
        let w = c.rotation
        let x = w[0] * mx + w[1] * my + w[2] * mz + c.translation.0
        let y = w[3] * mx + w[4] * my + w[5] * mz + c.translation.1
        let z = w[6] * mx + w[7] * my + w[8] * mz + c.translation.2
        guard z >= R(settings.nearPlane) else { return out }

        let sigma = covariance3D(i, p)
        let sc = rotateCovariance(sigma, w)
        let (j00, j02, j11, j12) = jacobian(x: x, y: y, z: z, camera: c).values
        // Σ2D = J Σc Jᵀ, J = [[j00, 0, j02], [0, j11, j12]].
        let (a0, b0, c0) = projectCovariance(sc, j00: j00, j02: j02, j11: j11, j12: j12)
        let lowPass = R(settings.lowPass)
        let a = a0 + lowPass, b = b0, cc = c0 + lowPass
        let det = a * cc - b * b
        guard det > 0 else { return out }
        var compensation: R = 1
        if settings.antialiased {
            let det0 = a0 * c0 - b0 * b0
            compensation = det0 > 0 ? (det0 / det).squareRoot() : 0
        }
        let mid = (a + cc) / 2
        let lambda = mid + max(R(0.1), mid * mid - det).squareRoot()
        let radius = Int((R(SplatRenderSettings.extentSigmas) * lambda.squareRoot()).rounded(.up))
        let u = c.fx * x / z + c.cx, v = c.fy * y / z + c.cy
        // Bounding square against the image (pixel centres at +0.5).
        guard radius > 0, u + R(radius) > 0, u - R(radius) < R(c.width), v + R(radius) > 0, v - R(radius) < R(c.height) else { return out }

        out.visible = true
        out.meanX = u; out.meanY = v
        out.conicA = cc / det; out.conicB = -b / det; out.conicC = a / det
        out.depth = z
        out.radius = radius
        out.opacity = sigmoid(p.opacityLogits[i]) * compensation
        (out.red, out.green, out.blue) = color(i, p, camera: c, degree: degree, basis: &basis)
        return out
    }

    /// Accumulates into `grad` (parameter gradients of Gaussian `i`) the gradient of the loss
    /// with respect to its projection outputs `g`. Returns nothing for invisible Gaussians.
    @inlinable
    public static func backward<R>(_ i: Int, _ p: SplatParameters<R>, camera c: SplatCamera<R>, settings: SplatRenderSettings,
                                   degree: Int, g: ProjectedGradient<R>, grad: inout SplatParameters<R>, basis: inout [R]) {
        let mx = p.means[3 * i], my = p.means[3 * i + 1], mz = p.means[3 * i + 2]
        let w = c.rotation
        let x = w[0] * mx + w[1] * my + w[2] * mz + c.translation.0
        let y = w[3] * mx + w[4] * my + w[5] * mz + c.translation.1
        let z = w[6] * mx + w[7] * my + w[8] * mz + c.translation.2
        let sigma = covariance3D(i, p)
        let sc = rotateCovariance(sigma, w)
        let jac = jacobian(x: x, y: y, z: z, camera: c)
        let (j00, j02, j11, j12) = jac.values
        let (a0, b0, c0) = projectCovariance(sc, j00: j00, j02: j02, j11: j11, j12: j12)
        let lowPass = R(settings.lowPass)
        let a = a0 + lowPass, b = b0, cc = c0 + lowPass
        let det = a * cc - b * b

        // Camera-space centre gradient.
        var gx: R = 0, gy: R = 0, gz: R = 0
        // Mean in pixels: u = fx·x/z + cx, v = fy·y/z + cy.
        gx += g.meanX * c.fx / z
        gy += g.meanY * c.fy / z
        gz += -g.meanX * c.fx * x / (z * z) - g.meanY * c.fy * y / (z * z)
        gz += g.depth

        // Opacity = sigmoid(logit) · compensation.
        let s = sigmoid(p.opacityLogits[i])
        var compensation: R = 1
        var gA0: R = 0, gB0: R = 0, gC0: R = 0  // gradient w.r.t. Σ2D before the low-pass (a0, b0, c0), b0 as a full-matrix entry pair
        if settings.antialiased {
            let det0 = a0 * c0 - b0 * b0
            if det0 > 0 {
                compensation = (det0 / det).squareRoot()
                // d comp = ½ comp (tr(A⁻¹ dA) − tr(B⁻¹ dB)), dB = dA.
                let k = g.opacity * s * compensation / 2
                // A⁻¹ = [[c0, −b0], [−b0, a0]]/det0;  B⁻¹ = [[cc, −b], [−b, a]]/det.
                gA0 += k * (c0 / det0 - cc / det)
                gC0 += k * (a0 / det0 - a / det)
                gB0 += k * (-b0 / det0 + b / det)  // per off-diagonal entry
            } else {
                compensation = 0
            }
        }
        grad.opacityLogits[i] += g.opacity * compensation * s * (1 - s)

        // Conic = B⁻¹ → dL/dB = −Q G Q, with G symmetric (off-diagonal ½ dL/dconicB).
        let qa = cc / det, qb = -b / det, qc = a / det
        let ga = g.conicA, gb = g.conicB / 2, gc = g.conicC
        // (Q G)
        let m00 = qa * ga + qb * gb, m01 = qa * gb + qb * gc
        let m10 = qb * ga + qc * gb, m11 = qb * gb + qc * gc
        // (Q G) Q
        let n00 = m00 * qa + m01 * qb, n01 = m00 * qb + m01 * qc, n11 = m10 * qb + m11 * qc
        gA0 += -n00; gB0 += -n01; gC0 += -n11

        // Σ2D = J Σc Jᵀ: dL/dΣc = Jᵀ G2 J, dL/dJ = 2 G2 J Σc, with G2 = [[gA0, gB0], [gB0, gC0]].
        // J rows: r0 = (j00, 0, j02), r1 = (0, j11, j12).
        let r0 = (j00, R(0), j02), r1 = (R(0), j11, j12)
        func outer(_ u: (R, R, R), _ v: (R, R, R)) -> SIMD16<R> { nine(u.0 * v.0, u.0 * v.1, u.0 * v.2, u.1 * v.0, u.1 * v.1, u.1 * v.2, u.2 * v.0, u.2 * v.1, u.2 * v.2) }
        let o00 = outer(r0, r0), o01 = outer(r0, r1), o10 = outer(r1, r0), o11 = outer(r1, r1)
        var gSc = SIMD16<R>()
        for k in 0..<9 { gSc[k] = gA0 * o00[k] + gB0 * (o01[k] + o10[k]) + gC0 * o11[k] }
        // G2 J Σc: rows  (gA0 r0 + gB0 r1)·Σc and (gB0 r0 + gC0 r1)·Σc.
        let t0 = (gA0 * r0.0 + gB0 * r1.0, gA0 * r0.1 + gB0 * r1.1, gA0 * r0.2 + gB0 * r1.2)
        let t1 = (gB0 * r0.0 + gC0 * r1.0, gB0 * r0.1 + gC0 * r1.1, gB0 * r0.2 + gC0 * r1.2)
        func rowTimes(_ t: (R, R, R), _ m: SIMD16<R>) -> (R, R, R) {
            (t.0 * m[0] + t.1 * m[3] + t.2 * m[6], t.0 * m[1] + t.1 * m[4] + t.2 * m[7], t.0 * m[2] + t.1 * m[5] + t.2 * m[8])
        }
        let dJ0 = rowTimes(t0, sc), dJ1 = rowTimes(t1, sc)
        let gj00 = 2 * dJ0.0, gj02 = 2 * dJ0.2, gj11 = 2 * dJ1.1, gj12 = 2 * dJ1.2
        // J entries as functions of (x, y, z).
        gz += gj00 * (-c.fx / (z * z)) + gj11 * (-c.fy / (z * z))
        let (dj02dx, dj02dz) = jac.derivativeX02, (dj12dy, dj12dz) = jac.derivativeY12
        gx += gj02 * dj02dx; gz += gj02 * dj02dz
        gy += gj12 * dj12dy; gz += gj12 * dj12dz

        // Σc = W Σ Wᵀ → dL/dΣ = Wᵀ dL/dΣc W.
        let gSigma = rotateCovarianceTransposed(gSc, w)
        covariance3DBackward(i, p, gSigma: gSigma, grad: &grad)

        // Colour (SH), view direction d = (mean − camera) / |mean − camera|.
        let (dmx, dmy, dmz) = colorBackward(i, p, camera: c, degree: degree, g: (g.red, g.green, g.blue), grad: &grad, basis: &basis)

        // Camera-space centre → world mean: p = W m + t → dL/dm = Wᵀ dL/dp.
        let wx: R = w[0] * gx + w[3] * gy + w[6] * gz
        let wy: R = w[1] * gx + w[4] * gy + w[7] * gz
        let wz: R = w[2] * gx + w[5] * gy + w[8] * gz
        grad.means[3 * i] += wx + dmx
        grad.means[3 * i + 1] += wy + dmy
        grad.means[3 * i + 2] += wz + dmz
    }

    // MARK: - Pieces

    @inlinable static func sigmoid<R: Real>(_ x: R) -> R { 1 / (1 + R.exp(-x)) }

    /// A row-major 3×3 matrix in the first nine lanes of a SIMD16 (a stack value, no allocation:
    /// heap arrays here cost about half of the projection's time).
    @inlinable
    static func nine<R: SIMDScalar & BinaryFloatingPoint>(_ a: R, _ b: R, _ c: R, _ d: R, _ e: R, _ f: R, _ g: R, _ h: R, _ i: R) -> SIMD16<R> {
        var m = SIMD16<R>()
        m[0] = a; m[1] = b; m[2] = c; m[3] = d; m[4] = e; m[5] = f; m[6] = g; m[7] = h; m[8] = i
        return m
    }

    /// Row-major rotation matrix of the normalised quaternion of Gaussian `i`, and the norm.
    @inlinable
    static func rotationMatrix<R: Real & BinaryFloatingPoint & SIMDScalar>(_ i: Int, _ p: SplatParameters<R>) -> (m: SIMD16<R>, q: (R, R, R, R), norm: R) {
        let qw0 = p.rotations[4 * i], qx0 = p.rotations[4 * i + 1], qy0 = p.rotations[4 * i + 2], qz0 = p.rotations[4 * i + 3]
        let norm = (qw0 * qw0 + qx0 * qx0 + qy0 * qy0 + qz0 * qz0).squareRoot()
        let inv: R = norm > 0 ? 1 / norm : 0
        let w = norm > 0 ? qw0 * inv : 1, x = qx0 * inv, y = qy0 * inv, z = qz0 * inv
        let xx: R = x * x, yy: R = y * y, zz: R = z * z
        let xy: R = x * y, xz: R = x * z, yz: R = y * z, wx: R = w * x, wy: R = w * y, wz: R = w * z
        let one: R = 1, two: R = 2
        let m00: R = one - two * (yy + zz), m01: R = two * (xy - wz), m02: R = two * (xz + wy)
        let m10: R = two * (xy + wz), m11: R = one - two * (xx + zz), m12: R = two * (yz - wx)
        let m20: R = two * (xz - wy), m21: R = two * (yz + wx), m22: R = one - two * (xx + yy)
        let m = nine(m00, m01, m02, m10, m11, m12, m20, m21, m22)
        return (m, (w, x, y, z), norm)
    }

    /// Σ = M Mᵀ with M = R S, row-major 3×3.
    @inlinable
    static func covariance3D<R: Real & BinaryFloatingPoint & SIMDScalar>(_ i: Int, _ p: SplatParameters<R>) -> SIMD16<R> {
        let r = rotationMatrix(i, p).m
        let s = (R.exp(p.logScales[3 * i]), R.exp(p.logScales[3 * i + 1]), R.exp(p.logScales[3 * i + 2]))
        let m = nine(r[0] * s.0, r[1] * s.1, r[2] * s.2, r[3] * s.0, r[4] * s.1, r[5] * s.2, r[6] * s.0, r[7] * s.1, r[8] * s.2)
        var sigma = SIMD16<R>()
        for a in 0..<3 { for b in 0..<3 { sigma[3 * a + b] = m[3 * a] * m[3 * b] + m[3 * a + 1] * m[3 * b + 1] + m[3 * a + 2] * m[3 * b + 2] } }
        return sigma
    }

    /// dL/dΣ (row-major, full-matrix gradient) → log-scales and quaternion.
    @inlinable
    static func covariance3DBackward<R: Real & BinaryFloatingPoint & SIMDScalar>(_ i: Int, _ p: SplatParameters<R>, gSigma g: SIMD16<R>, grad: inout SplatParameters<R>) {
        let (r, q, norm) = rotationMatrix(i, p)
        let s = SIMD3<R>(R.exp(p.logScales[3 * i]), R.exp(p.logScales[3 * i + 1]), R.exp(p.logScales[3 * i + 2]))
        let m = nine(r[0] * s[0], r[1] * s[1], r[2] * s[2], r[3] * s[0], r[4] * s[1], r[5] * s[2], r[6] * s[0], r[7] * s[1], r[8] * s[2])
        // Σ = M Mᵀ → dL/dM = (G + Gᵀ) M.
        var gm = SIMD16<R>()
        for a in 0..<3 { for b in 0..<3 {
            var sum: R = 0
            for k in 0..<3 { sum += (g[3 * a + k] + g[3 * k + a]) * m[3 * k + b] }
            gm[3 * a + b] = sum
        } }
        // M = R S: dL/ds_b = Σ_a gm[a,b] R[a,b]; dL/dR[a,b] = gm[a,b] s_b.
        for b in 0..<3 {
            let gs = gm[b] * r[b] + gm[3 + b] * r[3 + b] + gm[6 + b] * r[6 + b]
            grad.logScales[3 * i + b] += gs * s[b]
        }
        var gr = SIMD16<R>()
        for a in 0..<3 { for b in 0..<3 { gr[3 * a + b] = gm[3 * a + b] * s[b] } }
        let (w, x, y, z) = q
        // ∂R/∂(w, x, y, z) contracted with gr.
        var gw: R = z * (gr[3] - gr[1])
        gw += y * (gr[2] - gr[6])
        gw += x * (gr[7] - gr[5])
        gw *= 2
        var gx: R = y * (gr[1] + gr[3])
        gx += z * (gr[2] + gr[6])
        gx += w * (gr[7] - gr[5])
        gx -= 2 * x * (gr[4] + gr[8])
        gx *= 2
        var gy: R = x * (gr[1] + gr[3])
        gy += z * (gr[5] + gr[7])
        gy += w * (gr[2] - gr[6])
        gy -= 2 * y * (gr[0] + gr[8])
        gy *= 2
        var gz: R = x * (gr[2] + gr[6])
        gz += y * (gr[5] + gr[7])
        gz += w * (gr[3] - gr[1])
        gz -= 2 * z * (gr[0] + gr[4])
        gz *= 2
        guard norm > 0 else { return }
        // Through q̂ = q/|q|: dL/dq = (g − q̂ (q̂·g)) / |q|.
        let dotq = w * gw + x * gx + y * gy + z * gz
        grad.rotations[4 * i] += (gw - w * dotq) / norm
        grad.rotations[4 * i + 1] += (gx - x * dotq) / norm
        grad.rotations[4 * i + 2] += (gy - y * dotq) / norm
        grad.rotations[4 * i + 3] += (gz - z * dotq) / norm
    }

    /// W Σ Wᵀ (row-major).
    @inlinable
    static func rotateCovariance<R: Real & BinaryFloatingPoint & SIMDScalar>(_ s: SIMD16<R>, _ w: SIMD16<R>) -> SIMD16<R> {
        var ws = SIMD16<R>(), out = SIMD16<R>()
        for a in 0..<3 { for b in 0..<3 { ws[3 * a + b] = w[3 * a] * s[b] + w[3 * a + 1] * s[3 + b] + w[3 * a + 2] * s[6 + b] } }
        for a in 0..<3 { for b in 0..<3 { out[3 * a + b] = ws[3 * a] * w[3 * b] + ws[3 * a + 1] * w[3 * b + 1] + ws[3 * a + 2] * w[3 * b + 2] } }
        return out
    }

    /// Wᵀ G W (row-major).
    @inlinable
    static func rotateCovarianceTransposed<R: Real & BinaryFloatingPoint & SIMDScalar>(_ g: SIMD16<R>, _ w: SIMD16<R>) -> SIMD16<R> {
        var gw = SIMD16<R>(), out = SIMD16<R>()
        for a in 0..<3 { for b in 0..<3 { gw[3 * a + b] = g[3 * a] * w[b] + g[3 * a + 1] * w[3 + b] + g[3 * a + 2] * w[6 + b] } }
        for a in 0..<3 { for b in 0..<3 { out[3 * a + b] = w[a] * gw[b] + w[3 + a] * gw[3 + b] + w[6 + a] * gw[6 + b] } }
        return out
    }

    /// (a, b, c) of J Σc Jᵀ for J = [[j00, 0, j02], [0, j11, j12]].
    @inlinable
    static func projectCovariance<R: Real & BinaryFloatingPoint & SIMDScalar>(_ s: SIMD16<R>, j00: R, j02: R, j11: R, j12: R) -> (R, R, R) {
        let a = j00 * j00 * s[0] + 2 * j00 * j02 * s[2] + j02 * j02 * s[8]
        let b = j00 * j11 * s[1] + j00 * j12 * s[2] + j02 * j11 * s[7] + j02 * j12 * s[8]
        let c = j11 * j11 * s[4] + 2 * j11 * j12 * s[5] + j12 * j12 * s[8]
        return (a, b, c)
    }

    /// The perspective Jacobian with the 3DGS frustum clamp, and the derivatives of its z column.
    @usableFromInline
    struct Jacobian<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable> {
        @usableFromInline var values: (R, R, R, R)
        /// (∂j02/∂x, ∂j02/∂z) and (∂j12/∂y, ∂j12/∂z).
        @usableFromInline var derivativeX02: (R, R)
        @usableFromInline var derivativeY12: (R, R)
        @usableFromInline init(values: (R, R, R, R), derivativeX02: (R, R), derivativeY12: (R, R)) {
            self.values = values
            self.derivativeX02 = derivativeX02
            self.derivativeY12 = derivativeY12
        }
    }

    @inlinable
    static func jacobian<R>(x: R, y: R, z: R, camera c: SplatCamera<R>) -> Jacobian<R> {
        let tanX = R(0.5) * R(c.width) / c.fx, tanY = R(0.5) * R(c.height) / c.fy
        let xHigh = (R(c.width) - c.cx) / c.fx + R(0.3) * tanX, xLow = -(c.cx / c.fx + R(0.3) * tanX)
        let yHigh = (R(c.height) - c.cy) / c.fy + R(0.3) * tanY, yLow = -(c.cy / c.fy + R(0.3) * tanY)
        let xz = x / z, yz = y / z
        let z2 = z * z
        // j02 = −fx·x'/z² with x' = x inside the clamp (∂/∂x = −fx/z², ∂/∂z = 2fx·x/z³), or
        // x' = lim·z outside (j02 = −fx·lim/z: ∂/∂x = 0, ∂/∂z = fx·lim/z²).
        let j02: R, dx02: (R, R)
        if xz > xHigh || xz < xLow {
            let lim = xz > xHigh ? xHigh : xLow
            j02 = -c.fx * lim / z
            dx02 = (0, c.fx * lim / z2)
        } else {
            j02 = -c.fx * x / z2
            dx02 = (-c.fx / z2, 2 * c.fx * x / (z2 * z))
        }
        let j12: R, dy12: (R, R)
        if yz > yHigh || yz < yLow {
            let lim = yz > yHigh ? yHigh : yLow
            j12 = -c.fy * lim / z
            dy12 = (0, c.fy * lim / z2)
        } else {
            j12 = -c.fy * y / z2
            dy12 = (-c.fy / z2, 2 * c.fy * y / (z2 * z))
        }
        return Jacobian(values: (c.fx / z, j02, c.fy / z, j12), derivativeX02: dx02, derivativeY12: dy12)
    }

    /// max(0, Σ_k sh_k Y_k(d) + 0.5) per channel, d = normalised (mean − camera centre).
    @inlinable
    static func color<R>(_ i: Int, _ p: SplatParameters<R>, camera c: SplatCamera<R>, degree: Int, basis: inout [R]) -> (R, R, R) {
        let k = p.coefficientsPerChannel
        var dx = p.means[3 * i] - c.position.0, dy = p.means[3 * i + 1] - c.position.1, dz = p.means[3 * i + 2] - c.position.2
        let l = (dx * dx + dy * dy + dz * dz).squareRoot()
        if l > 0 { dx /= l; dy /= l; dz /= l }
        SphericalHarmonics.basis(degree: degree, x: dx, y: dy, z: dz, into: &basis)
        let used = (degree + 1) * (degree + 1)
        var rgb: (R, R, R) = (0.5, 0.5, 0.5)
        let base = 3 * k * i
        for j in 0..<used {
            rgb.0 += basis[j] * p.sh[base + 3 * j]
            rgb.1 += basis[j] * p.sh[base + 3 * j + 1]
            rgb.2 += basis[j] * p.sh[base + 3 * j + 2]
        }
        return (max(rgb.0, 0), max(rgb.1, 0), max(rgb.2, 0))
    }

    /// SH coefficient gradients; returns the gradient reaching the mean through the view direction.
    @inlinable
    static func colorBackward<R>(_ i: Int, _ p: SplatParameters<R>, camera c: SplatCamera<R>, degree: Int, g: (R, R, R),
                                 grad: inout SplatParameters<R>, basis: inout [R]) -> (R, R, R) {
        let k = p.coefficientsPerChannel
        let vx = p.means[3 * i] - c.position.0, vy = p.means[3 * i + 1] - c.position.1, vz = p.means[3 * i + 2] - c.position.2
        let l = (vx * vx + vy * vy + vz * vz).squareRoot()
        let dx = l > 0 ? vx / l : vx, dy = l > 0 ? vy / l : vy, dz = l > 0 ? vz / l : vz
        SphericalHarmonics.basis(degree: degree, x: dx, y: dy, z: dz, into: &basis)
        let used = (degree + 1) * (degree + 1)
        let base = 3 * k * i
        var raw: (R, R, R) = (0.5, 0.5, 0.5)
        for j in 0..<used {
            raw.0 += basis[j] * p.sh[base + 3 * j]; raw.1 += basis[j] * p.sh[base + 3 * j + 1]; raw.2 += basis[j] * p.sh[base + 3 * j + 2]
        }
        // The clamp at 0 stops the gradient of a channel.
        let gr = raw.0 < 0 ? 0 : g.0, gg = raw.1 < 0 ? 0 : g.1, gb = raw.2 < 0 ? 0 : g.2
        for j in 0..<used {
            grad.sh[base + 3 * j] += basis[j] * gr
            grad.sh[base + 3 * j + 1] += basis[j] * gg
            grad.sh[base + 3 * j + 2] += basis[j] * gb
        }
        guard degree >= 1, l > 0 else { return (0, 0, 0) }
        // dL/dd = Σ_j (Σ_ch g_ch sh_j,ch) ∇Y_j(d); then through d = v/|v|: (I − d dᵀ)/|v|.
        var weights = SIMD16<R>()
        for j in 0..<used { weights[j] = gr * p.sh[base + 3 * j] + gg * p.sh[base + 3 * j + 1] + gb * p.sh[base + 3 * j + 2] }
        let (ux, uy, uz) = SphericalHarmonics.basisGradient(degree: degree, x: dx, y: dy, z: dz, weights: weights)
        let dot = ux * dx + uy * dy + uz * dz
        return ((ux - dx * dot) / l, (uy - dy * dot) / l, (uz - dz * dot) / l)
    }
}
