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
///
/// Computed as Σ2D = U·Uᵀ with the 2×3 matrix U = J·W·R·S (about a third of the multiplies of
/// the three 3×3 products, and positive semi-definite by construction). `SplatProjectionReference`
/// is the same projection through the full matrices; the tests compare the two.
public enum SplatProjection {
    /// What the forward and backward passes both derive from a Gaussian and the camera.
    @usableFromInline
    struct Footprint<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable> {
        /// Camera-space centre.
        @usableFromInline var x: R, y: R, z: R
        @usableFromInline var jacobian: Jacobian<R>
        @usableFromInline var rotation: Rotation<R>
        /// exp(logScale).
        @usableFromInline var s0: R, s1: R, s2: R
        /// T = J·W (2×3), and V = T·R (2×3); U = V·S.
        @usableFromInline var t00: R, t01: R, t02: R, t10: R, t11: R, t12: R
        @usableFromInline var v00: R, v01: R, v02: R, v10: R, v11: R, v12: R
        /// Σ2D before the low-pass: [[a0, b0], [b0, c0]].
        @usableFromInline var a0: R, b0: R, c0: R

        /// nil when the centre is nearer than the near plane.
        @inlinable @inline(__always)
        init?(_ i: Int, _ p: borrowing SplatParameters<R>, camera c: borrowing SplatCamera<R>, near: R) {
            let mx = p.means[3 * i], my = p.means[3 * i + 1], mz = p.means[3 * i + 2]
            let w = c.rotation
            let w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7], w8 = w[8]
            x = w0 * mx + w1 * my + w2 * mz + c.translation.0
            y = w3 * mx + w4 * my + w5 * mz + c.translation.1
            z = w6 * mx + w7 * my + w8 * mz + c.translation.2
            guard z >= near else { return nil }
            jacobian = SplatProjection.jacobian(x: x, y: y, z: z, camera: c)
            let (j00, j02, j11, j12) = jacobian.values
            t00 = j00 * w0 + j02 * w6; t01 = j00 * w1 + j02 * w7; t02 = j00 * w2 + j02 * w8
            t10 = j11 * w3 + j12 * w6; t11 = j11 * w4 + j12 * w7; t12 = j11 * w5 + j12 * w8
            let r = Rotation(i, p)
            rotation = r
            v00 = t00 * r.m00 + t01 * r.m10 + t02 * r.m20
            v01 = t00 * r.m01 + t01 * r.m11 + t02 * r.m21
            v02 = t00 * r.m02 + t01 * r.m12 + t02 * r.m22
            v10 = t10 * r.m00 + t11 * r.m10 + t12 * r.m20
            v11 = t10 * r.m01 + t11 * r.m11 + t12 * r.m21
            v12 = t10 * r.m02 + t11 * r.m12 + t12 * r.m22
            s0 = SplatProjection.exp(p.logScales[3 * i]); s1 = SplatProjection.exp(p.logScales[3 * i + 1]); s2 = SplatProjection.exp(p.logScales[3 * i + 2])
            let u00 = v00 * s0, u01 = v01 * s1, u02 = v02 * s2
            let u10 = v10 * s0, u11 = v11 * s1, u12 = v12 * s2
            a0 = u00 * u00 + u01 * u01 + u02 * u02
            b0 = u00 * u10 + u01 * u11 + u02 * u12
            c0 = u10 * u10 + u11 * u11 + u12 * u12
        }
    }

    /// Projects Gaussian `i`. `basis` is scratch of at least 16 values.
    @inlinable
    public static func project<R>(_ i: Int, _ p: SplatParameters<R>, camera c: SplatCamera<R>, settings: SplatRenderSettings,
                                  degree: Int, basis: inout [R]) -> ProjectedGaussian<R> {
        guard let f = Footprint(i, p, camera: c, near: R(settings.nearPlane)) else { return ProjectedGaussian() }
        return finish(i, p, camera: c, settings: settings, degree: degree, basis: &basis, centre: (f.x, f.y, f.z), covariance: (f.a0, f.b0, f.c0))
    }

    /// The projection of Gaussian `i` from its camera-space centre and its 2D covariance before
    /// the low-pass, [[a0, b0], [b0, c0]]: the low-pass, the culling, the antialiasing
    /// compensation, the conic, the radius and bounding square, the opacity and the colour
    /// (shared with `SplatProjectionReference`, which finds the covariance its own way).
    @inlinable
    static func finish<R>(_ i: Int, _ p: SplatParameters<R>, camera c: SplatCamera<R>, settings: SplatRenderSettings, degree: Int,
                          basis: inout [R], centre: (R, R, R), covariance: (R, R, R)) -> ProjectedGaussian<R> {
        var out = ProjectedGaussian<R>()
        let (x, y, z) = centre, (a0, b0, c0) = covariance
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
        let inverseDet = 1 / det
        out.conicA = cc * inverseDet; out.conicB = -b * inverseDet; out.conicC = a * inverseDet
        out.depth = z
        out.radius = radius
        out.opacity = sigmoid(p.opacityLogits[i]) * compensation
        (out.red, out.green, out.blue) = color(i, p, camera: c, degree: degree, basis: &basis)
        return out
    }

    /// The backward pass of `finish`: from the gradient `g` of the projection's outputs to the
    /// camera-space centre (through the pixel mean and the depth; the covariance's own dependence
    /// on the centre is the caller's), the opacity logit (through the sigmoid and the
    /// compensation), and the 2D covariance before the low-pass (b0 as a full-matrix entry pair,
    /// through the conic and the compensation). Nil for a covariance `finish` culls (det ≤ 0).
    @inlinable
    static func finishBackward<R>(_ g: ProjectedGradient<R>, opacityLogit: R, camera c: SplatCamera<R>, settings: SplatRenderSettings,
                                  centre: (R, R, R), covariance: (R, R, R)) -> (centre: (R, R, R), covariance: (R, R, R), opacityLogit: R)? {
        let (x, y, z) = centre, (a0, b0, c0) = covariance
        let lowPass = R(settings.lowPass)
        let a = a0 + lowPass, b = b0, cc = c0 + lowPass
        let det = a * cc - b * b
        guard det > 0 else { return nil }
        let inverseDet = 1 / det

        // Mean in pixels: u = fx·x/z + cx, v = fy·y/z + cy; and the depth z.
        let inverseZ = 1 / z
        let gx = g.meanX * c.fx * inverseZ, gy = g.meanY * c.fy * inverseZ
        let gz = (-g.meanX * c.fx * x - g.meanY * c.fy * y) * (inverseZ * inverseZ) + g.depth

        // Opacity = sigmoid(logit) · compensation.
        let s = sigmoid(opacityLogit)
        var compensation: R = 1
        var gA0: R = 0, gB0: R = 0, gC0: R = 0
        if settings.antialiased {
            let det0 = a0 * c0 - b0 * b0
            if det0 > 0 {
                compensation = (det0 / det).squareRoot()  // as the forward pass computes it
                // d comp = ½ comp (tr(A⁻¹ dA) − tr(B⁻¹ dB)), dB = dA.
                let k = g.opacity * s * compensation / 2
                let inverseDet0 = 1 / det0
                // A⁻¹ = [[c0, −b0], [−b0, a0]]/det0;  B⁻¹ = [[cc, −b], [−b, a]]/det.
                gA0 += k * (c0 * inverseDet0 - cc * inverseDet)
                gC0 += k * (a0 * inverseDet0 - a * inverseDet)
                gB0 += k * (-b0 * inverseDet0 + b * inverseDet)  // per off-diagonal entry
            } else {
                compensation = 0
            }
        }

        // Conic = B⁻¹ → dL/dB = −Q G Q, with G symmetric (off-diagonal ½ dL/dconicB).
        let qa = cc * inverseDet, qb = -b * inverseDet, qc = a * inverseDet
        let ga = g.conicA, gb = g.conicB / 2, gc = g.conicC
        let m00 = qa * ga + qb * gb, m01 = qa * gb + qb * gc
        let m10 = qb * ga + qc * gb, m11 = qb * gb + qc * gc
        gA0 -= m00 * qa + m01 * qb; gB0 -= m00 * qb + m01 * qc; gC0 -= m10 * qb + m11 * qc
        return ((gx, gy, gz), (gA0, gB0, gC0), g.opacity * compensation * s * (1 - s))
    }

    /// Accumulates into `grad` (parameter gradients of Gaussian `i`, at index `slot` if given:
    /// a gradient of a range of Gaussians) the gradient of the loss with respect to its projection
    /// outputs `g`. Adds nothing for a Gaussian the forward pass culls for its depth or its
    /// covariance (callers pass only visible ones).
    @inlinable
    public static func backward<R>(_ i: Int, _ p: SplatParameters<R>, camera c: SplatCamera<R>, settings: SplatRenderSettings,
                                   degree: Int, g: ProjectedGradient<R>, grad: inout SplatParameters<R>, basis: inout [R], slot: Int? = nil) {
        let o = slot ?? i
        guard let f = Footprint(i, p, camera: c, near: R(settings.nearPlane)) else { return }
        guard let back = finishBackward(g, opacityLogit: p.opacityLogits[i], camera: c, settings: settings, centre: (f.x, f.y, f.z),
                                        covariance: (f.a0, f.b0, f.c0)) else { return }
        grad.opacityLogits[o] += back.opacityLogit
        var (gx, gy, gz) = back.centre
        let (gA0, gB0, gC0) = back.covariance
        let inverseZ = 1 / f.z

        // Σ2D = U Uᵀ with G2 = [[gA0, gB0], [gB0, gC0]] → dL/dU = 2·G2·U; U = V·S.
        let s0 = f.s0, s1 = f.s1, s2 = f.s2
        let u00 = f.v00 * s0, u01 = f.v01 * s1, u02 = f.v02 * s2
        let u10 = f.v10 * s0, u11 = f.v11 * s1, u12 = f.v12 * s2
        let du00 = 2 * (gA0 * u00 + gB0 * u10), du01 = 2 * (gA0 * u01 + gB0 * u11), du02 = 2 * (gA0 * u02 + gB0 * u12)
        let du10 = 2 * (gB0 * u00 + gC0 * u10), du11 = 2 * (gB0 * u01 + gC0 * u11), du12 = 2 * (gB0 * u02 + gC0 * u12)
        // Scales: dL/ds_b = Σ_r dU[r][b]·V[r][b]; log-scale: × s_b.
        grad.logScales[3 * o] += (du00 * f.v00 + du10 * f.v10) * s0
        grad.logScales[3 * o + 1] += (du01 * f.v01 + du11 * f.v11) * s1
        grad.logScales[3 * o + 2] += (du02 * f.v02 + du12 * f.v12) * s2
        // V = T·R: dV = dU·S; dL/dR = Tᵀ·dV; dL/dT = dV·Rᵀ.
        let dv00 = du00 * s0, dv01 = du01 * s1, dv02 = du02 * s2
        let dv10 = du10 * s0, dv11 = du11 * s1, dv12 = du12 * s2
        let r = f.rotation
        let dt00 = dv00 * r.m00 + dv01 * r.m01 + dv02 * r.m02
        let dt01 = dv00 * r.m10 + dv01 * r.m11 + dv02 * r.m12
        let dt02 = dv00 * r.m20 + dv01 * r.m21 + dv02 * r.m22
        let dt10 = dv10 * r.m00 + dv11 * r.m01 + dv12 * r.m02
        let dt11 = dv10 * r.m10 + dv11 * r.m11 + dv12 * r.m12
        let dt12 = dv10 * r.m20 + dv11 * r.m21 + dv12 * r.m22
        // T = J·W with J = [[j00, 0, j02], [0, j11, j12]]: dL/dj = dT·Wᵀ at those entries.
        let w = c.rotation
        let gj00 = dt00 * w[0] + dt01 * w[1] + dt02 * w[2]
        let gj02 = dt00 * w[6] + dt01 * w[7] + dt02 * w[8]
        let gj11 = dt10 * w[3] + dt11 * w[4] + dt12 * w[5]
        let gj12 = dt10 * w[6] + dt11 * w[7] + dt12 * w[8]
        // J entries as functions of (x, y, z).
        gz -= (gj00 * c.fx + gj11 * c.fy) * (inverseZ * inverseZ)
        let (dj02dx, dj02dz) = f.jacobian.derivativeX02, (dj12dy, dj12dz) = f.jacobian.derivativeY12
        gx += gj02 * dj02dx; gz += gj02 * dj02dz
        gy += gj12 * dj12dy; gz += gj12 * dj12dz

        // Quaternion: R(q̂) contracted with gr = dL/dR = Tᵀ·dV, then through q̂ = q/|q|.
        let gr0 = f.t00 * dv00 + f.t10 * dv10, gr1 = f.t00 * dv01 + f.t10 * dv11, gr2 = f.t00 * dv02 + f.t10 * dv12
        let gr3 = f.t01 * dv00 + f.t11 * dv10, gr4 = f.t01 * dv01 + f.t11 * dv11, gr5 = f.t01 * dv02 + f.t11 * dv12
        let gr6 = f.t02 * dv00 + f.t12 * dv10, gr7 = f.t02 * dv01 + f.t12 * dv11, gr8 = f.t02 * dv02 + f.t12 * dv12
        rotationBackward(o, r, gr: (gr0, gr1, gr2, gr3, gr4, gr5, gr6, gr7, gr8), grad: &grad)

        // Colour (SH), view direction d = (mean − camera) / |mean − camera|.
        let (dmx, dmy, dmz) = colorBackward(i, p, camera: c, degree: degree, g: (g.red, g.green, g.blue), grad: &grad, slot: o, basis: &basis)

        // Camera-space centre → world mean: p = W m + t → dL/dm = Wᵀ dL/dp.
        let wx: R = w[0] * gx + w[3] * gy + w[6] * gz
        let wy: R = w[1] * gx + w[4] * gy + w[7] * gz
        let wz: R = w[2] * gx + w[5] * gy + w[8] * gz
        grad.means[3 * o] += wx + dmx
        grad.means[3 * o + 1] += wy + dmy
        grad.means[3 * o + 2] += wz + dmz
    }

    /// dL/dR (row-major, `gr`) → the raw quaternion, written at index `i` of `grad`.
    @inlinable
    static func rotationBackward<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable>(_ i: Int, _ r: Rotation<R>, gr: (R, R, R, R, R, R, R, R, R), grad: inout SplatParameters<R>) {
        guard r.norm > 0 else { return }
        let (w, x, y, z) = (r.w, r.x, r.y, r.z)
        // ∂R/∂(w, x, y, z) contracted with gr.
        let gw: R = 2 * (z * (gr.3 - gr.1) + y * (gr.2 - gr.6) + x * (gr.7 - gr.5))
        let gx: R = 2 * (y * (gr.1 + gr.3) + z * (gr.2 + gr.6) + w * (gr.7 - gr.5) - 2 * x * (gr.4 + gr.8))
        let gy: R = 2 * (x * (gr.1 + gr.3) + z * (gr.5 + gr.7) + w * (gr.2 - gr.6) - 2 * y * (gr.0 + gr.8))
        let gz: R = 2 * (x * (gr.2 + gr.6) + y * (gr.5 + gr.7) + w * (gr.3 - gr.1) - 2 * z * (gr.0 + gr.4))
        // Through q̂ = q/|q|: dL/dq = (g − q̂ (q̂·g)) / |q|.
        let dotq = w * gw + x * gx + y * gy + z * gz
        let inverseNorm = 1 / r.norm
        grad.rotations[4 * i] += (gw - w * dotq) * inverseNorm
        grad.rotations[4 * i + 1] += (gx - x * dotq) * inverseNorm
        grad.rotations[4 * i + 2] += (gy - y * dotq) * inverseNorm
        grad.rotations[4 * i + 3] += (gz - z * dotq) * inverseNorm
    }

    // MARK: - Pieces

    /// eˣ: the inline float32 exponential for Float (a libm call spills every live register),
    /// libm's for other precisions (the gradient checks' Double).
    @inlinable @inline(__always)
    static func exp<R: Real>(_ x: R) -> R {
        if R.self == Float.self { return unsafeBitCast(ScalarMath.expAnywhere(unsafeBitCast(x, to: Float.self)), to: R.self) }
        return R.exp(x)
    }

    @inlinable @inline(__always) static func sigmoid<R: Real>(_ x: R) -> R { 1 / (1 + exp(-x)) }

    /// The normalised quaternion of a Gaussian as a rotation matrix (row-major entries mRC), the
    /// unit quaternion itself and the raw quaternion's norm.
    @usableFromInline
    struct Rotation<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable> {
        @usableFromInline var m00: R, m01: R, m02: R, m10: R, m11: R, m12: R, m20: R, m21: R, m22: R
        @usableFromInline var w: R, x: R, y: R, z: R
        @usableFromInline var norm: R

        @inlinable @inline(__always)
        init(_ i: Int, _ p: borrowing SplatParameters<R>) {  // borrowed: an owned one retained its five arrays a call
            let qw0 = p.rotations[4 * i], qx0 = p.rotations[4 * i + 1], qy0 = p.rotations[4 * i + 2], qz0 = p.rotations[4 * i + 3]
            norm = (qw0 * qw0 + qx0 * qx0 + qy0 * qy0 + qz0 * qz0).squareRoot()
            let inv: R = norm > 0 ? 1 / norm : 0
            w = norm > 0 ? qw0 * inv : 1; x = qx0 * inv; y = qy0 * inv; z = qz0 * inv
            let xx: R = x * x, yy: R = y * y, zz: R = z * z
            let xy: R = x * y, xz: R = x * z, yz: R = y * z, wx: R = w * x, wy: R = w * y, wz: R = w * z
            let one: R = 1, two: R = 2
            m00 = one - two * (yy + zz); m01 = two * (xy - wz); m02 = two * (xz + wy)
            m10 = two * (xy + wz); m11 = one - two * (xx + zz); m12 = two * (yz - wx)
            m20 = two * (xz - wy); m21 = two * (yz + wx); m22 = one - two * (xx + yy)
        }
    }

    /// Row-major rotation matrix (first nine lanes) of the normalised quaternion of Gaussian `i`,
    /// the unit quaternion (w, x, y, z) and the raw norm.
    @inlinable
    static func rotationMatrix<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable>(_ i: Int, _ p: SplatParameters<R>) -> (m: SIMD16<R>, q: (R, R, R, R), norm: R) {
        let r = Rotation(i, p)
        var m = SIMD16<R>()
        m[0] = r.m00; m[1] = r.m01; m[2] = r.m02; m[3] = r.m10; m[4] = r.m11; m[5] = r.m12; m[6] = r.m20; m[7] = r.m21; m[8] = r.m22
        return (m, (r.w, r.x, r.y, r.z), r.norm)
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
        if degree == 0 {  // the constant band alone: no direction
            let base = 3 * k * i, c0 = R(SphericalHarmonics.c0)
            return (max(0.5 + c0 * p.sh[base], 0), max(0.5 + c0 * p.sh[base + 1], 0), max(0.5 + c0 * p.sh[base + 2], 0))
        }
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
                                 grad: inout SplatParameters<R>, slot o: Int, basis: inout [R]) -> (R, R, R) {
        let k = p.coefficientsPerChannel, gradBase = 3 * k * o
        if degree == 0 {  // the constant band alone: no direction, nothing reaches the mean
            let base = 3 * k * i, c0 = R(SphericalHarmonics.c0)
            // The clamp at 0 stops a channel's gradient (as below: a NaN colour passes it on).
            if !(0.5 + c0 * p.sh[base] < 0) { grad.sh[gradBase] += c0 * g.0 }
            if !(0.5 + c0 * p.sh[base + 1] < 0) { grad.sh[gradBase + 1] += c0 * g.1 }
            if !(0.5 + c0 * p.sh[base + 2] < 0) { grad.sh[gradBase + 2] += c0 * g.2 }
            return (0, 0, 0)
        }
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
            grad.sh[gradBase + 3 * j] += basis[j] * gr
            grad.sh[gradBase + 3 * j + 1] += basis[j] * gg
            grad.sh[gradBase + 3 * j + 2] += basis[j] * gb
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
