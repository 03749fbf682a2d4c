import KilnCore
import RealModule

/// The plain reference for `SplatProjection`: the same EWA projection through the textbook's full
/// 3×3 matrices (Σ = R S Sᵀ Rᵀ, Σc = W Σ Wᵀ, Σ2D = J Σc Jᵀ) and their backward passes written
/// entry by entry, the scales by libm's exponential. The fast path takes Σ2D as U Uᵀ with
/// U = J W R S and an inline exponential; the tests compare the two on random Gaussians and
/// cameras. From the covariance on (the culling, conic, radius, opacity, colour) both run
/// `SplatProjection.finish`, and back to it `SplatProjection.finishBackward`.
public enum SplatProjectionReference {
    /// Projects Gaussian `i`. `basis` is scratch of at least 16 values.
    public static func project<R>(_ i: Int, _ p: SplatParameters<R>, camera c: SplatCamera<R>, settings: SplatRenderSettings,
                                  degree: Int, basis: inout [R]) -> ProjectedGaussian<R> {
        let mx = p.means[3 * i], my = p.means[3 * i + 1], mz = p.means[3 * i + 2]
        let w = c.rotation
        let x = w[0] * mx + w[1] * my + w[2] * mz + c.translation.0
        let y = w[3] * mx + w[4] * my + w[5] * mz + c.translation.1
        let z = w[6] * mx + w[7] * my + w[8] * mz + c.translation.2
        guard z >= R(settings.nearPlane) else { return ProjectedGaussian() }

        let sigma = covariance3D(i, p)
        let sc = rotateCovariance(sigma, w)
        let (j00, j02, j11, j12) = SplatProjection.jacobian(x: x, y: y, z: z, camera: c).values
        // Σ2D = J Σc Jᵀ, J = [[j00, 0, j02], [0, j11, j12]].
        let (a0, b0, c0) = projectCovariance(sc, j00: j00, j02: j02, j11: j11, j12: j12)
        return SplatProjection.finish(i, p, camera: c, settings: settings, degree: degree, basis: &basis, centre: (x, y, z), covariance: (a0, b0, c0))
    }

    /// Accumulates into `grad` (parameter gradients of Gaussian `i`) the gradient of the loss
    /// with respect to its projection outputs `g`. Adds nothing for a Gaussian the forward pass culls.
    public static func backward<R>(_ i: Int, _ p: SplatParameters<R>, camera c: SplatCamera<R>, settings: SplatRenderSettings,
                                   degree: Int, g: ProjectedGradient<R>, grad: inout SplatParameters<R>, basis: inout [R]) {
        let mx = p.means[3 * i], my = p.means[3 * i + 1], mz = p.means[3 * i + 2]
        let w = c.rotation
        let x = w[0] * mx + w[1] * my + w[2] * mz + c.translation.0
        let y = w[3] * mx + w[4] * my + w[5] * mz + c.translation.1
        let z = w[6] * mx + w[7] * my + w[8] * mz + c.translation.2
        let sigma = covariance3D(i, p)
        let sc = rotateCovariance(sigma, w)
        let jac = SplatProjection.jacobian(x: x, y: y, z: z, camera: c)
        let (j00, j02, j11, j12) = jac.values
        let (a0, b0, c0) = projectCovariance(sc, j00: j00, j02: j02, j11: j11, j12: j12)
        guard let back = SplatProjection.finishBackward(g, opacityLogit: p.opacityLogits[i], camera: c, settings: settings,
                                                        centre: (x, y, z), covariance: (a0, b0, c0)) else { return }
        grad.opacityLogits[i] += back.opacityLogit
        var (gx, gy, gz) = back.centre
        let (gA0, gB0, gC0) = back.covariance

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
        let (dmx, dmy, dmz) = SplatProjection.colorBackward(i, p, camera: c, degree: degree, g: (g.red, g.green, g.blue), grad: &grad, slot: i, basis: &basis)

        // Camera-space centre → world mean: p = W m + t → dL/dm = Wᵀ dL/dp.
        let wx: R = w[0] * gx + w[3] * gy + w[6] * gz
        let wy: R = w[1] * gx + w[4] * gy + w[7] * gz
        let wz: R = w[2] * gx + w[5] * gy + w[8] * gz
        grad.means[3 * i] += wx + dmx
        grad.means[3 * i + 1] += wy + dmy
        grad.means[3 * i + 2] += wz + dmz
    }

    // MARK: - Pieces

    /// A row-major 3×3 matrix in the first nine lanes of a SIMD16 (a stack value, no allocation:
    /// heap arrays here cost about half of the projection's time).
    static func nine<R: SIMDScalar & BinaryFloatingPoint>(_ a: R, _ b: R, _ c: R, _ d: R, _ e: R, _ f: R, _ g: R, _ h: R, _ i: R) -> SIMD16<R> {
        var m = SIMD16<R>()
        m[0] = a; m[1] = b; m[2] = c; m[3] = d; m[4] = e; m[5] = f; m[6] = g; m[7] = h; m[8] = i
        return m
    }

    /// Σ = M Mᵀ with M = R S, row-major 3×3.
    static func covariance3D<R: Real & BinaryFloatingPoint & SIMDScalar>(_ i: Int, _ p: SplatParameters<R>) -> SIMD16<R> {
        let r = SplatProjection.rotationMatrix(i, p).m
        let s = (R.exp(p.logScales[3 * i]), R.exp(p.logScales[3 * i + 1]), R.exp(p.logScales[3 * i + 2]))
        let m = nine(r[0] * s.0, r[1] * s.1, r[2] * s.2, r[3] * s.0, r[4] * s.1, r[5] * s.2, r[6] * s.0, r[7] * s.1, r[8] * s.2)
        var sigma = SIMD16<R>()
        for a in 0..<3 { for b in 0..<3 { sigma[3 * a + b] = m[3 * a] * m[3 * b] + m[3 * a + 1] * m[3 * b + 1] + m[3 * a + 2] * m[3 * b + 2] } }
        return sigma
    }

    /// dL/dΣ (row-major, full-matrix gradient) → log-scales and quaternion.
    static func covariance3DBackward<R: Real & BinaryFloatingPoint & SIMDScalar>(_ i: Int, _ p: SplatParameters<R>, gSigma g: SIMD16<R>, grad: inout SplatParameters<R>) {
        let (r, q, norm) = SplatProjection.rotationMatrix(i, p)
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
    static func rotateCovariance<R: Real & BinaryFloatingPoint & SIMDScalar>(_ s: SIMD16<R>, _ w: SIMD16<R>) -> SIMD16<R> {
        var ws = SIMD16<R>(), out = SIMD16<R>()
        for a in 0..<3 { for b in 0..<3 { ws[3 * a + b] = w[3 * a] * s[b] + w[3 * a + 1] * s[3 + b] + w[3 * a + 2] * s[6 + b] } }
        for a in 0..<3 { for b in 0..<3 { out[3 * a + b] = ws[3 * a] * w[3 * b] + ws[3 * a + 1] * w[3 * b + 1] + ws[3 * a + 2] * w[3 * b + 2] } }
        return out
    }

    /// Wᵀ G W (row-major).
    static func rotateCovarianceTransposed<R: Real & BinaryFloatingPoint & SIMDScalar>(_ g: SIMD16<R>, _ w: SIMD16<R>) -> SIMD16<R> {
        var gw = SIMD16<R>(), out = SIMD16<R>()
        for a in 0..<3 { for b in 0..<3 { gw[3 * a + b] = g[3 * a] * w[b] + g[3 * a + 1] * w[3 + b] + g[3 * a + 2] * w[6 + b] } }
        for a in 0..<3 { for b in 0..<3 { out[3 * a + b] = w[a] * gw[b] + w[3 + a] * gw[3 + b] + w[6 + a] * gw[6 + b] } }
        return out
    }

    /// (a, b, c) of J Σc Jᵀ for J = [[j00, 0, j02], [0, j11, j12]].
    static func projectCovariance<R: Real & BinaryFloatingPoint & SIMDScalar>(_ s: SIMD16<R>, j00: R, j02: R, j11: R, j12: R) -> (R, R, R) {
        let a = j00 * j00 * s[0] + 2 * j00 * j02 * s[2] + j02 * j02 * s[8]
        let b = j00 * j11 * s[1] + j00 * j12 * s[2] + j02 * j11 * s[7] + j02 * j12 * s[8]
        let c = j11 * j11 * s[4] + 2 * j11 * j12 * s[5] + j12 * j12 * s[8]
        return (a, b, c)
    }
}
