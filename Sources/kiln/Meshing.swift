import Foundation
import KilnAsset
import KilnCore
import KilnDistill
import KilnNN
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

    func mesh(_ p: SplatParameters<Float>) throws -> MeshResult {
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
        let sampler = GridSampler(origin: origin, spacing: spacing, n: n, values: field.color)
        return try finishMesh(grid: grid, level: level, faces: faces, textureSize: textureSize, linearColors: .grid(linear)) { sampler.sample($0) }
    }
}

/// A NeRF field to a mesh: its density on a grid over the field's box, marching cubes at
/// `level` (σ; by default the level whose level set has the field's own silhouettes from 8 orbit
/// views, `NeRFRenderer.surfaceLevel`), the same clean-up, and colours from the field itself at
/// each vertex (or texel).
struct FieldMeshing {
    var resolution = 96
    var level: Float? = nil
    var faces = 20_000
    var textureSize: Int? = nil
    /// The run's cameras, for choosing the level.
    var views = ViewSettings()

    /// The iso level: `level` when given, else the one whose silhouettes match the field's renders (and their IoU).
    func chooseLevel(_ field: NeRFField) -> (level: Float, iou: Double?) {
        if let level { return (level, nil) }
        let cameras = (0..<8).map { views.camera(azimuthDegrees: Float($0 * 45), elevationDegrees: 15, size: 64) }
        let chosen = NeRFRenderer(samplesPerRay: 96).surfaceLevel(field, cameras: cameras)
        return (chosen.level, chosen.iou)
    }

    func mesh(_ field: NeRFField) throws -> MeshResult {
        let (level, iou) = chooseLevel(field)
        if let iou { say(String(format: "surface level σ = %.3g (its silhouettes match the field's renders with IoU %.3f)", level, iou)) }
        let n = resolution
        let spacing = 2 * field.halfSize / Float(n - 1)
        let origin = field.center - field.halfSize
        var points = [Float](repeating: 0, count: 3 * n * n * n)
        for k in 0..<n { for j in 0..<n { for i in 0..<n {
            let c = (k * n + j) * n + i
            points[3 * c] = origin.x + spacing * Float(i); points[3 * c + 1] = origin.y + spacing * Float(j); points[3 * c + 2] = origin.z + spacing * Float(k)
        } } }
        // In slabs of 64k points, so the field's activations stay small.
        var evaluated = (sigma: [Float](), color: [Float]())
        for start in stride(from: 0, to: n * n * n, by: 65_536) {
            let end = min(n * n * n, start + 65_536)
            let part = field.forward(points: Array(points[(3 * start)..<(3 * end)]))
            evaluated.sigma += part.sigma
            evaluated.color += part.color
        }
        let grid = ScalarGrid(nx: n, ny: n, nz: n, values: evaluated.sigma, origin: origin, spacing: SIMD3(repeating: spacing))
        // Colours on the same grid (the field's display colours), interpolated at vertices and texels.
        let colors = (0..<(n * n * n)).map { SIMD3(evaluated.color[3 * $0], evaluated.color[3 * $0 + 1], evaluated.color[3 * $0 + 2]) }
        let linear = colors.map { SIMD4(SRGB.decode($0.x), SRGB.decode($0.y), SRGB.decode($0.z), 1) }
        let sampler = GridSampler(origin: origin, spacing: spacing, n: SIMD3(repeating: n), values: colors)
        return try finishMesh(grid: grid, level: level, faces: faces, textureSize: textureSize, linearColors: .grid(linear)) { sampler.sample($0) }
    }
}

extension FieldMeshing {
    /// The field's box half-size in a run with these settings (NeRFScene: the object radius × 1.15).
    static func halfSize(_ settings: GenerateSettings) -> Float { settings.views.objectRadius * 1.15 }

    /// A run's field weights, `field.safetensors`.
    static func write(_ field: NeRFField, to url: URL) throws {
        var weights = SafeTensorsWriter(metadata: ["kiln": "nerf field"])
        for (name, p) in field.namedParameters { try weights.add(name, shape: p.shape, values: p.value.storage) }
        try weights.write(to: url)
    }

    /// The field of a finished NeRF run: its settings (from its config.json) and its field.safetensors.
    static func load(runFolder folder: URL, settings: GenerateSettings) throws -> NeRFField {
        let weights = folder.appendingPathComponent("field.safetensors")
        guard FileManager.default.fileExists(atPath: weights.path) else {
            throw CLIError("\(weights.path) is missing: RUNDIR must be a finished kiln generate run (resume it with --resume if it stopped)")
        }
        try settings.nerf.validate()
        var rng = RNG(seed: 0)
        let field = NeRFField(grid: settings.nerf.grid, width: settings.nerf.width, halfSize: halfSize(settings), blobDensity: settings.nerf.blobDensity,
                              blobRadius: settings.nerf.blobRadius, rng: &rng)
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(contentsOf: weights) } catch { throw CLIError("\(weights.path) cannot be read as safetensors (\(error)); rerun kiln generate") }
        for (name, p) in field.namedParameters {
            do {
                p.load(Tensor(shape: p.shape, storage: try file.expect(name, shape: p.shape)), name: name)
            } catch {
                throw CLIError("\(weights.path) does not match the run's config.json (\(error)); was config.json edited after the run?")
            }
        }
        return field
    }
}

/// A mesh made for export and what its clean-up did.
struct MeshResult {
    var mesh: TriangleMesh
    var report: MeshCleanupReport
}

/// Marching cubes on a density grid (inside where it is above `level`), clean-up (degenerate
/// triangles, welding, islands under 1% of the area, decimation to `faces`), normals, and colour:
/// linear vertex colours, or a texture baked from display colours when `textureSize` is given.
func finishMesh(grid: ScalarGrid, level: Float, faces: Int, textureSize: Int?, linearColors: MarchingCubes.VertexColors,
                displayColor: @escaping @Sendable (SIMD3<Float>) -> SIMD3<Float>) throws -> MeshResult {
    let raw = try MarchingCubes.extract(grid, level: level, inside: .above, colors: linearColors)
    guard raw.triangleCount > 0 else {
        throw CLIError(String(format: "no surface at density %.3g (the field peaks at %.3g); lower the level", level, grid.values.max() ?? 0))
    }
    var options = MeshCleanupOptions(minimumIslandAreaFraction: 0.01)
    options.maximumTriangleCount = faces
    let cleaned = raw.cleanedForExport(options)
    var mesh = cleaned.mesh
    mesh.normals = mesh.computedVertexNormals()
    mesh.material.name = "vertex_colors"
    if let textureSize {
        mesh.colors = []
        mesh = mesh.bakedTexture(size: textureSize, color: displayColor)
        mesh.material.name = "baked"
    }
    return MeshResult(mesh: mesh, report: cleaned.report)
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
