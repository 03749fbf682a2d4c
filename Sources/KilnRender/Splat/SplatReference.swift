import KilnCore
import RealModule

/// Rendered splat images in precision `R`, row-major, row 0 at the top.
public struct SplatImages<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable>: Sendable {
    public var width: Int
    public var height: Int
    /// `[H, W, 3]` colour including the background.
    public var color: [R]
    /// `[H, W]` accumulated opacity 1 − T.
    public var alpha: [R]
    /// `[H, W]` accumulated depth Σ zᵢ·αᵢ·Tᵢ (divide by alpha for the expected depth).
    public var depth: [R]
}

/// Gradients of a loss with respect to rendered images (any may be omitted: zero).
public struct SplatImageGradients<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable>: Sendable {
    public var color: [R]
    public var alpha: [R]?
    public var depth: [R]?
    public init(color: [R], alpha: [R]? = nil, depth: [R]? = nil) {
        self.color = color
        self.alpha = alpha
        self.depth = depth
    }
}

/// Parameter gradients from a splat render's backward pass.
public struct SplatGradients<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable>: Sendable {
    public var parameters: SplatParameters<R>
    public var background: SIMD3<Double>
    /// `[N, 2]` gradient with respect to each Gaussian's projected centre, pixels (the
    /// view-space positional gradient that densification thresholds, after scaling to NDC).
    public var meanPixels: [R]
}

/// The plain reference renderer: every pixel composites every visible Gaussian in depth order,
/// following the 3DGS equations literally, in any precision (float64 for gradient checks).
///
/// A Gaussian touches a pixel when the pixel centre lies in its 3σ bounding square; then
/// power = −½(a·dx² + c·dy²) − b·dx·dy with d = centre − pixel, skipped if power > 0;
/// α = min(0.99, o·e^power), skipped if α < 1/255; compositing stops before the Gaussian that
/// would take T below 1e-4. colour = Σ cᵢαᵢTᵢ + T·background.
public enum SplatReference {
    /// Projected Gaussians and their depth order (ties by index).
    public static func project<R>(_ p: SplatParameters<R>, camera: SplatCamera<R>, settings: SplatRenderSettings) -> ([ProjectedGaussian<R>], [Int]) {
        let degree = settings.colorDegree(parameterDegree: p.shDegree)
        var basis = [R](repeating: 0, count: 16)
        let projected = (0..<p.count).map { SplatProjection.project($0, p, camera: camera, settings: settings, degree: degree, basis: &basis) }
        let order = (0..<p.count).filter { projected[$0].visible }.sorted { (projected[$0].depth, $0) < (projected[$1].depth, $1) }
        return (projected, order)
    }

    /// The contributions to pixel (x, y): (Gaussian, α, transmittance before it) front to back,
    /// with the final transmittance.
    static func contributions<R>(x: Int, y: Int, projected: [ProjectedGaussian<R>], order: [Int]) -> ([(Int, R, R)], R) {
        let px = R(x) + R(0.5), py = R(y) + R(0.5)
        var t: R = 1
        var list: [(Int, R, R)] = []
        for i in order {
            let g = projected[i]
            let dx = g.meanX - px, dy = g.meanY - py
            guard abs(dx) <= R(g.radius), abs(dy) <= R(g.radius) else { continue }
            let power = -(g.conicA * dx * dx + g.conicC * dy * dy) / 2 - g.conicB * dx * dy
            guard power <= 0 else { continue }
            let alpha = min(R(SplatRenderSettings.alphaMax), g.opacity * R.exp(power))
            guard alpha >= R(SplatRenderSettings.alphaMin) else { continue }
            let next = t * (1 - alpha)
            if next < R(SplatRenderSettings.transmittanceMin) { break }
            list.append((i, alpha, t))
            t = next
        }
        return (list, t)
    }

    public static func render<R>(_ p: SplatParameters<R>, camera: Camera, settings: SplatRenderSettings) -> SplatImages<R> {
        let cam = SplatCamera<R>(camera)
        let (projected, order) = project(p, camera: cam, settings: settings)
        let w = camera.width, h = camera.height
        var out = SplatImages<R>(width: w, height: h, color: [R](repeating: 0, count: 3 * w * h),
                                 alpha: [R](repeating: 0, count: w * h), depth: [R](repeating: 0, count: w * h))
        let bg = (R(settings.background.x), R(settings.background.y), R(settings.background.z))
        for y in 0..<h {
            for x in 0..<w {
                let (list, t) = contributions(x: x, y: y, projected: projected, order: order)
                var r: R = 0, g: R = 0, b: R = 0, d: R = 0
                for (i, alpha, before) in list {
                    let weight = alpha * before
                    r += projected[i].red * weight; g += projected[i].green * weight; b += projected[i].blue * weight
                    d += projected[i].depth * weight
                }
                let o = y * w + x
                out.color[3 * o] = r + t * bg.0; out.color[3 * o + 1] = g + t * bg.1; out.color[3 * o + 2] = b + t * bg.2
                out.alpha[o] = 1 - t
                out.depth[o] = d
            }
        }
        return out
    }

    /// Exact gradients by the closed form ∂C/∂αₖ = cₖTₖ − (Σ_{j>k} cⱼαⱼTⱼ + T·bg)/(1 − αₖ).
    public static func backward<R>(_ p: SplatParameters<R>, camera: Camera, settings: SplatRenderSettings,
                                   gradients dImage: SplatImageGradients<R>) -> SplatGradients<R> {
        let cam = SplatCamera<R>(camera)
        let (projected, order) = project(p, camera: cam, settings: settings)
        let w = camera.width, h = camera.height
        var g2d = [ProjectedGradient<R>](repeating: ProjectedGradient(), count: p.count)
        let bg = [R(settings.background.x), R(settings.background.y), R(settings.background.z), 0]
        var gBackground = SIMD3<Double>(0, 0, 0)
        for y in 0..<h {
            for x in 0..<w {
                let o = y * w + x
                let gC = [dImage.color[3 * o], dImage.color[3 * o + 1], dImage.color[3 * o + 2], dImage.depth?[o] ?? 0]
                let gA = dImage.alpha?[o] ?? 0
                let (list, tFinal) = contributions(x: x, y: y, projected: projected, order: order)
                for ch in 0..<3 { gBackground[ch] += Double(tFinal * gC[ch]) }
                var behind: [R] = [0, 0, 0, 0]  // Σ_{j>k} cⱼαⱼTⱼ per channel (r, g, b, depth)
                for (i, alpha, before) in list.reversed() {
                    let g = projected[i]
                    let c = [g.red, g.green, g.blue, g.depth]
                    var gAlpha: R = 0
                    for ch in 0..<4 {
                        gAlpha += gC[ch] * (c[ch] * before - (behind[ch] + tFinal * bg[ch]) / (1 - alpha))
                    }
                    gAlpha += gA * tFinal / (1 - alpha)
                    let weight = alpha * before
                    g2d[i].red += gC[0] * weight; g2d[i].green += gC[1] * weight; g2d[i].blue += gC[2] * weight
                    g2d[i].depth += gC[3] * weight
                    for ch in 0..<4 { behind[ch] += c[ch] * weight }
                    // α = min(0.99, o·G): no gradient where the clamp holds.
                    let px = R(x) + R(0.5), py = R(y) + R(0.5)
                    let dx = g.meanX - px, dy = g.meanY - py
                    let power = -(g.conicA * dx * dx + g.conicC * dy * dy) / 2 - g.conicB * dx * dy
                    let gauss = R.exp(power)
                    guard g.opacity * gauss < R(SplatRenderSettings.alphaMax) else { continue }
                    g2d[i].opacity += gAlpha * gauss
                    let gPower = gAlpha * g.opacity * gauss
                    g2d[i].meanX += gPower * (-g.conicA * dx - g.conicB * dy)
                    g2d[i].meanY += gPower * (-g.conicC * dy - g.conicB * dx)
                    g2d[i].conicA += gPower * (-dx * dx / 2)
                    g2d[i].conicB += gPower * (-dx * dy)
                    g2d[i].conicC += gPower * (-dy * dy / 2)
                }
            }
        }
        let degree = settings.colorDegree(parameterDegree: p.shDegree)
        var grad = SplatParameters<R>(zerosLike: p.count, shDegree: p.shDegree)
        var basis = [R](repeating: 0, count: 16)
        var meanPixels = [R](repeating: 0, count: 2 * p.count)
        for i in order {
            SplatProjection.backward(i, p, camera: cam, settings: settings, degree: degree, g: g2d[i], grad: &grad, basis: &basis)
            meanPixels[2 * i] = g2d[i].meanX; meanPixels[2 * i + 1] = g2d[i].meanY
        }
        return SplatGradients(parameters: grad, background: gBackground, meanPixels: meanPixels)
    }
}
