import KilnCore
import RealModule

/// The Gaussians as a 3D field, for mesh extraction (DreamGaussian: density grid → marching cubes):
///
///     density(x) = Σᵢ σ(oᵢ)·exp(−½ (x − μᵢ)ᵀ Σᵢ⁻¹ (x − μᵢ)),   Σᵢ⁻¹ = Rᵢ Sᵢ⁻² Rᵢᵀ
///     colour(x)  = Σᵢ wᵢ(x)·cᵢ / Σᵢ wᵢ(x),   wᵢ = the i-th term of the density, cᵢ = max(0, C0·SH₀ + ½)
///
/// Each Gaussian contributes inside its 3σ ellipsoid only (Mahalanobis distance ≤ 3), as the
/// rasterizer cuts it off at 3σ on screen. The colour is the view-independent (degree-0) one.
public enum SplatDensity {
    /// Per Gaussian: centre, inverse covariance (symmetric, 6 values), opacity, colour and the
    /// half-extent of its 3σ box along each axis.
    struct Kernel {
        var mean: SIMD3<Float>
        var inverse: (xx: Float, yy: Float, zz: Float, xy: Float, xz: Float, yz: Float)
        var opacity: Float
        var color: SIMD3<Float>
        var halfExtent: SIMD3<Float>
    }

    static func kernels(_ p: SplatParameters<Float>) -> [Kernel] {
        let k = 3 * p.coefficientsPerChannel
        return (0..<p.count).map { i in
            let r = SplatProjection.rotationMatrix(i, p).m
            let s = SIMD3(Float.exp(p.logScales[3 * i]), Float.exp(p.logScales[3 * i + 1]), Float.exp(p.logScales[3 * i + 2]))
            let inv2 = 1 / (s * s)
            // Σ⁻¹ = R diag(1/s²) Rᵀ and Σ = R diag(s²) Rᵀ (row-major r[3a + b] = R_ab).
            func entry(_ a: Int, _ b: Int, _ d: SIMD3<Float>) -> Float {
                r[3 * a] * r[3 * b] * d.x + r[3 * a + 1] * r[3 * b + 1] * d.y + r[3 * a + 2] * r[3 * b + 2] * d.z
            }
            let variance = s * s
            let half = SIMD3(entry(0, 0, variance).squareRoot(), entry(1, 1, variance).squareRoot(), entry(2, 2, variance).squareRoot()) * 3
            let c0 = Float(SphericalHarmonics.c0)
            let color = SIMD3((c0 * p.sh[k * i] + 0.5), (c0 * p.sh[k * i + 1] + 0.5), (c0 * p.sh[k * i + 2] + 0.5))
            return Kernel(mean: SIMD3(p.means[3 * i], p.means[3 * i + 1], p.means[3 * i + 2]),
                          inverse: (entry(0, 0, inv2), entry(1, 1, inv2), entry(2, 2, inv2), entry(0, 1, inv2), entry(0, 2, inv2), entry(1, 2, inv2)),
                          opacity: 1 / (1 + Float.exp(-p.opacityLogits[i])), color: color.replacing(with: 0, where: color .< 0), halfExtent: half)
        }
    }

    /// The Mahalanobis distance² of `d` under a kernel's inverse covariance.
    @inline(__always)
    static func distance2(_ d: SIMD3<Float>, _ q: (xx: Float, yy: Float, zz: Float, xy: Float, xz: Float, yz: Float)) -> Float {
        q.xx * d.x * d.x + q.yy * d.y * d.y + q.zz * d.z * d.z + 2 * (q.xy * d.x * d.y + q.xz * d.x * d.z + q.yz * d.y * d.z)
    }

    /// Density and colour sampled on a grid: sample (i, j, k) at `origin + spacing·(i, j, k)`,
    /// stored at `(k·ny + j)·nx + i`. Colour where no Gaussian reaches is the nearest sample's
    /// neighbourhood-free default, mid grey.
    /// - Returns: `density [nz·ny·nx]`, `color [nz·ny·nx]` (RGB in [0, ∞), display values).
    /// - Complexity: O(Σᵢ cells in Gaussian i's 3σ box); z slabs run in parallel, each summing its
    ///   Gaussians in index order, so the result does not depend on the thread count.
    public static func grid(_ p: SplatParameters<Float>, origin: SIMD3<Float>, spacing: Float, nx: Int, ny: Int, nz: Int,
                            threads: Int = Parallel.defaultThreadCount) -> (density: [Float], color: [SIMD3<Float>]) {
        precondition(nx > 0 && ny > 0 && nz > 0 && spacing > 0, "SplatDensity.grid: empty grid or non-positive spacing")
        let ks = kernels(p)
        let count = nx * ny * nz
        var density = [Float](repeating: 0, count: count)
        var colorSum = [SIMD3<Float>](repeating: .zero, count: count)
        density.withUnsafeMutableBufferPointer { dBuffer in colorSum.withUnsafeMutableBufferPointer { cBuffer in
            let d = UnsafeMutableSendableBuffer(dBuffer), c = UnsafeMutableSendableBuffer(cBuffer)
            parallelFor(nz, threads: threads) { layers in
                for kernel in ks {
                    let lo = (kernel.mean - kernel.halfExtent - origin) / spacing, hi = (kernel.mean + kernel.halfExtent - origin) / spacing
                    guard lo.x.isFinite, hi.x.isFinite, lo.y.isFinite, hi.y.isFinite, lo.z.isFinite, hi.z.isFinite else { continue }
                    let i0 = max(0, Int(lo.x.rounded(.up))), i1 = min(nx - 1, Int(hi.x.rounded(.down)))
                    let j0 = max(0, Int(lo.y.rounded(.up))), j1 = min(ny - 1, Int(hi.y.rounded(.down)))
                    let k0 = max(layers.lowerBound, Int(lo.z.rounded(.up))), k1 = min(layers.upperBound - 1, Int(hi.z.rounded(.down)))
                    guard i0 <= i1, j0 <= j1, k0 <= k1 else { continue }
                    for k in k0...k1 {
                        for j in j0...j1 {
                            for i in i0...i1 {
                                let x = origin + spacing * SIMD3(Float(i), Float(j), Float(k))
                                let m = distance2(x - kernel.mean, kernel.inverse)
                                guard m <= 9 else { continue }
                                let w = kernel.opacity * Float.exp(-0.5 * m)
                                let index = (k * ny + j) * nx + i
                                d[index] += w
                                c[index] += w * kernel.color
                            }
                        }
                    }
                }
            }
        } }
        let color = zip(density, colorSum).map { w, c in w > 1e-12 ? c / w : SIMD3<Float>(repeating: 0.5) }
        return (density, color)
    }
}
