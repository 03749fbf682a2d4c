import Foundation
import KilnAsset
import KilnCore
import KilnRender

/// Splats to a mesh (DreamGaussian's extraction): the density field on a grid around the opaque
/// Gaussians, marching cubes at `level`, clean-up (degenerate triangles, welding, islands under 1%
/// of the area, decimation to `faces`), then colour: vertex colours from the splats' colour field,
/// or a baked texture when `textureSize` is given.
struct SplatMeshing {
    var resolution = 96
    var level: Float = 0.5
    var faces = 20_000
    var textureSize: Int? = nil

    struct Result {
        var mesh: TriangleMesh
        var report: MeshCleanupReport
    }

    func mesh(_ p: SplatParameters<Float>) throws -> Result {
        // The box around every Gaussian that is not nearly transparent, 3 of its largest σ wide.
        var lo = SIMD3<Float>(repeating: .infinity), hi = SIMD3<Float>(repeating: -.infinity)
        for i in 0..<p.count where p.opacityLogits[i] > -4 {  // opacity > 1.8%
            let m = SIMD3(p.means[3 * i], p.means[3 * i + 1], p.means[3 * i + 2])
            let r = 3 * Foundation.exp(max(p.logScales[3 * i], p.logScales[3 * i + 1], p.logScales[3 * i + 2]))
            guard m.x.isFinite, m.y.isFinite, m.z.isFinite, r.isFinite else { continue }
            lo = pointwiseMin(lo, m - r)
            hi = pointwiseMax(hi, m + r)
        }
        guard lo.x < hi.x else { throw CLIError("the splats are all transparent: there is no surface to extract") }
        let spacing = (hi - lo).max() / Float(resolution - 3)
        let origin = lo - spacing
        let n = SIMD3<Int>(((hi - lo) / spacing).rounded(.up)) &+ 3
        let field = SplatDensity.grid(p, origin: origin, spacing: spacing, nx: n.x, ny: n.y, nz: n.z)
        let grid = ScalarGrid(nx: n.x, ny: n.y, nz: n.z, values: field.density, origin: origin, spacing: SIMD3(repeating: spacing))
        // glTF vertex colours are linear; the splats' colours are display (sRGB) values.
        let linear = field.color.map { SIMD4(SRGB.decode(min(1, $0.x)), SRGB.decode(min(1, $0.y)), SRGB.decode(min(1, $0.z)), 1) }
        let raw = try MarchingCubes.extract(grid, level: level, inside: .above, colors: .grid(linear))
        guard raw.triangleCount > 0 else {
            throw CLIError(String(format: "no surface at density %.3g (the field peaks at %.3g); lower the level", level, field.density.max() ?? 0))
        }
        var options = MeshCleanupOptions(minimumIslandAreaFraction: 0.01)
        options.maximumTriangleCount = faces
        let cleaned = raw.cleanedForExport(options)
        var mesh = cleaned.mesh
        mesh.normals = mesh.computedVertexNormals()
        mesh.material.name = "splat_colors"
        if let textureSize {
            let colors = field.color
            let sampler = GridSampler(origin: origin, spacing: spacing, n: n, values: colors)
            mesh.colors = []
            mesh = mesh.bakedTexture(size: textureSize) { sampler.sample($0) }
            mesh.material.name = "baked"
        }
        return Result(mesh: mesh, report: cleaned.report)
    }
}

/// Trilinear interpolation of a colour grid (`[nz, ny, nx]`, x fastest), clamped at the border.
struct GridSampler: Sendable {
    let origin: SIMD3<Float>, spacing: Float, n: SIMD3<Int>
    let values: [SIMD3<Float>]

    func sample(_ p: SIMD3<Float>) -> SIMD3<Float> {
        let g = (p - origin) / spacing
        let clamped = pointwiseMin(pointwiseMax(g, .zero), SIMD3<Float>(n &- 1) - 1e-4)
        let base = SIMD3<Int>(clamped.rounded(.down))
        let f = clamped - SIMD3<Float>(base)
        var out = SIMD3<Float>.zero
        for corner in 0..<8 {
            let d = SIMD3<Int>(corner & 1, (corner >> 1) & 1, (corner >> 2) & 1)
            let i = pointwiseMin(base &+ d, n &- 1)
            let w = (d.x == 1 ? f.x : 1 - f.x) * (d.y == 1 ? f.y : 1 - f.y) * (d.z == 1 ? f.z : 1 - f.z)
            out += w * values[(i.z * n.y + i.y) * n.x + i.x]
        }
        return out
    }
}
