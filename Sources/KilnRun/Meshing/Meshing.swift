import Foundation
import KilnAsset
import KilnCore
import KilnDistill
import KilnNN
import KilnRender
import RealModule

/// Splats to a mesh whose renders look like the splats'. The splats are rendered from 28 orbit
/// views at 128² (`colorCameras`); three candidate surfaces are extracted on a grid spanning the
/// Gaussians that are not nearly transparent:
/// - `DepthFusion` of the renders' silhouettes (alpha ≥ 0.5) and expected depths (truncation 3
///   voxels): right for solid, layered splats whose density stays low;
/// - the density field's level set at 0.5 (DreamGaussian's extraction);
/// - the density level set whose silhouettes best match the renders' (`SurfaceLevel`);
/// each cleaned up (degenerate triangles, welding, islands under 1% of the area, decimation to
/// `faces`) and coloured from the renders (`MeshColorProjection`; the splats' colour field where no
/// render sees the surface). The candidate whose flat-shaded renders differ least from the splats'
/// (mean absolute difference over a grey background, the 28 views) wins: no one extraction wins on
/// every prompt of the suite. With `level` given, only that level set is made. Vertex colours, or
/// a baked texture when `textureSize` is given.
public struct SplatMeshing {
    public var resolution = 96
    public var level: Float? = nil
    public var faces = 20_000
    public var textureSize: Int? = nil
    /// The run's cameras, for the renders.
    public var views = ViewSettings()

    public init(resolution: Int = 96, level: Float? = nil, faces: Int = 20_000, textureSize: Int? = nil, views: ViewSettings = ViewSettings()) {
        (self.resolution, self.level, self.faces, self.textureSize, self.views) = (resolution, level, faces, textureSize, views)
    }

    public func mesh(_ p: SplatParameters<Float>) throws -> MeshResult {
        // The box around every Gaussian that is not nearly transparent, 3 of its largest σ wide.
        var lo = SIMD3<Float>(repeating: .infinity), hi = SIMD3<Float>(repeating: -.infinity)
        for i in 0..<p.count where p.opacityLogits[i] > -4 {  // opacity > 1.8%
            let m = SIMD3(p.means[3 * i], p.means[3 * i + 1], p.means[3 * i + 2])
            let r = 3 * Foundation.exp(max(p.logScales[3 * i], p.logScales[3 * i + 1], p.logScales[3 * i + 2]))
            guard m.x.isFinite, m.y.isFinite, m.z.isFinite, r.isFinite else { continue }
            lo = pointwiseMin(lo, m - r)
            hi = pointwiseMax(hi, m + r)
        }
        guard lo.x < hi.x else { throw RunError("the splats are all transparent: there is no surface to extract") }
        let spacing = (hi - lo).max() / Float(resolution - 3)
        let origin = lo - spacing
        let n = SIMD3<Int>(((hi - lo) / spacing).rounded(.up)) &+ 3
        let field = SplatDensity.grid(p, origin: origin, spacing: spacing, nx: n.x, ny: n.y, nz: n.z)
        let density = ScalarGrid(nx: n.x, ny: n.y, nz: n.z, values: field.density, origin: origin, spacing: SIMD3(repeating: spacing))
        let renders = colorCameras(views).map { camera in (camera, SplatRasterizer.render(p, camera: camera, settings: SplatRenderSettings(background: .zero))) }
        let sampler = GridSampler(origin: origin, spacing: spacing, n: n, values: field.color)
        /// A candidate surface, coloured (its render error is measured only when there is a choice).
        func candidate(_ name: String, _ grid: ScalarGrid, level: Float, inside: MarchingCubes.Inside) throws -> MeshResult {
            let (mesh, report) = try surfaceMesh(grid: grid, level: level, inside: inside, faces: faces)
            let projection = MeshColorProjection(mesh: mesh, pictures: renders.map { ($0.0, $0.1.color.pixels, $0.1.alpha.pixels) }, depthTolerance: 2 * spacing)
            let colored = try colored(mesh, textureSize: textureSize) { projection.color(at: $0) ?? sampler.sample($0) }
            var result = MeshResult(mesh: colored.mesh, report: report, level: inside == .above ? level : nil)
            result.atlas = colored.atlas
            result.projectedShare = projection.share(of: mesh.positions)
            result.surface = name
            return result
        }
        if let level { return try candidate("density level set", density, level: level, inside: .above) }
        var tried: [(result: MeshResult, error: Double)] = []
        let depths = renders.map { DepthFusion.View(camera: $0.0, depth: $0.1.depth.pixels, coverage: $0.1.alpha.pixels) }
        let fused = DepthFusion.field(depths, origin: origin, spacing: spacing, n: n, truncation: 3 * spacing)
        var failures: [String] = []
        func attempt(_ make: () throws -> MeshResult) {
            do {
                let result = try make()
                tried.append((result, renderError(result.mesh, renders)))
            } catch { failures.append("\(error)") }
        }
        attempt { try candidate("depth fusion", fused, level: 0, inside: .below) }
        attempt { try candidate("density level set", density, level: 0.5, inside: .above) }
        let matched = silhouetteLevel(p, grid: density)
        if abs(matched.level - 0.5) > 1e-3 {
            attempt {
                var c = try candidate("density level set", density, level: matched.level, inside: .above)
                c.levelIoU = matched.iou
                return c
            }
        }
        guard var best = tried.min(by: { $0.error < $1.error }) else {
            throw RunError("no surface could be extracted from the splats (\(failures.joined(separator: "; ")))")
        }
        best.result.candidates = tried.map { ($0.result.describedSurface, $0.error) }
        return best.result
    }

    /// Mean absolute difference between the mesh's flat-shaded renders and the splats' (colour
    /// premultiplied by alpha, both over a mid grey), over all the views.
    func renderError(_ mesh: TriangleMesh, _ renders: [(Camera, SplatView)]) -> Double {
        let renderer = MeshRenderer(mesh)
        let grey: Float = 0.5
        var total = 0.0, count = 0
        for (camera, splats) in renders {
            let view = renderer.render(camera: camera, settings: MeshRenderSettings(background: SIMD3(repeating: grey), ambient: 1, diffuse: 0))
            for i in 0..<(camera.width * camera.height) {
                let a = splats.alpha.pixels[i]
                for c in 0..<3 {
                    total += Double(abs(view.color.pixels[3 * i + c] - (splats.color.pixels[3 * i + c] + (1 - a) * grey)))
                }
            }
            count += 3 * camera.width * camera.height
        }
        return total / Double(max(1, count))
    }
}

extension SplatMeshing {
    /// The density level whose silhouettes match the splats' renders (alpha ≥ 0.5) from 8 orbit
    /// views at 64² (candidates 0.01…100, log-spaced), and its IoU.
    func silhouetteLevel(_ p: SplatParameters<Float>, grid: ScalarGrid) -> (level: Float, iou: Double) {
        var peaks: [Float] = [], opaque: [Bool] = []
        for azimuth in stride(from: 0, to: 360, by: 45) {
            let camera = views.camera(azimuthDegrees: Float(azimuth), elevationDegrees: 15, size: 64)
            peaks += grid.peaks(camera: camera)
            opaque += SplatRasterizer.render(p, camera: camera).alpha.pixels.map { $0 >= 0.5 }
        }
        let best = SurfaceLevel.best(peaks: peaks, opaque: opaque, candidates: SurfaceLevel.candidates(from: 0.01, to: 100, count: 33))
        return (best.level, best.iou)
    }
}

/// A NeRF field to a mesh: its density on a grid over the field's box, marching cubes at
/// `level` (σ; by default the level whose level set has the field's own silhouettes from 8 orbit
/// views, `NeRFRenderer.surfaceLevel`), the same clean-up, and colours from the field itself at
/// each vertex (or texel).
public struct FieldMeshing {
    public var resolution = 96
    public var level: Float? = nil
    public var faces = 20_000
    public var textureSize: Int? = nil
    /// The run's cameras, for choosing the level.
    public var views = ViewSettings()

    public init(resolution: Int = 96, level: Float? = nil, faces: Int = 20_000, textureSize: Int? = nil, views: ViewSettings = ViewSettings()) {
        (self.resolution, self.level, self.faces, self.textureSize, self.views) = (resolution, level, faces, textureSize, views)
    }

    /// The iso level: `level` when given, else the one whose silhouettes match the field's renders (and their IoU).
    func chooseLevel(_ field: NeRFField) -> (level: Float, iou: Double?) {
        if let level { return (level, nil) }
        let cameras = (0..<8).map { views.camera(azimuthDegrees: Float($0 * 45), elevationDegrees: 15, size: 64) }
        let chosen = NeRFRenderer(samplesPerRay: 96).surfaceLevel(field, cameras: cameras)
        return (chosen.level, chosen.iou)
    }

    public func mesh(_ field: NeRFField) throws -> MeshResult {
        let (level, iou) = chooseLevel(field)
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
        let (mesh, report) = try surfaceMesh(grid: grid, level: level, inside: .above, faces: faces)
        // Colours projected from the field's renders; where none sees the surface, the field's own
        // display colour at the point (interpolated on the grid).
        let renderer = NeRFRenderer(samplesPerRay: 96)
        let pictures = colorCameras(views).map { camera in
            let frame = renderer.render(field, camera: camera, background: .zero, occupancy: nil)
            return (camera: camera, premultiplied: frame.color, coverage: frame.alpha)
        }
        let projection = MeshColorProjection(mesh: mesh, pictures: pictures, depthTolerance: 2 * spacing)
        let colors = (0..<(n * n * n)).map { SIMD3(evaluated.color[3 * $0], evaluated.color[3 * $0 + 1], evaluated.color[3 * $0 + 2]) }
        let sampler = GridSampler(origin: origin, spacing: spacing, n: SIMD3(repeating: n), values: colors)
        let colored = try colored(mesh, textureSize: textureSize) { projection.color(at: $0) ?? sampler.sample($0) }
        var result = MeshResult(mesh: colored.mesh, report: report, level: level, levelIoU: iou)
        result.atlas = colored.atlas
        result.projectedShare = projection.share(of: mesh.positions)
        return result
    }
}

extension FieldMeshing {
    /// The field's box half-size in a run with these settings (NeRFScene: the object radius × 1.15).
    public static func halfSize(_ settings: GenerateSettings) -> Float { settings.views.objectRadius * 1.15 }

    /// A run's field weights, `field.safetensors`.
    public static func write(_ field: NeRFField, to url: URL) throws {
        var weights = SafeTensorsWriter(metadata: ["kiln": "nerf field"])
        for (name, p) in field.namedParameters { try weights.add(name, shape: p.shape, values: p.value.storage) }
        try weights.write(to: url)
    }

    /// The field of a finished NeRF run: its settings (from its config.json) and its field.safetensors.
    public static func load(runFolder folder: URL, settings: GenerateSettings) throws -> NeRFField {
        let weights = RunFolder(folder).field
        guard FileManager.default.fileExists(atPath: weights.path) else {
            throw RunError("\(weights.path) is missing: RUNDIR must be a finished kiln generate run (resume it with --resume if it stopped)")
        }
        try settings.nerf.validate()
        var rng = RNG(seed: 0)
        let field = NeRFField(grid: settings.nerf.grid, width: settings.nerf.width, halfSize: halfSize(settings), blobDensity: settings.nerf.blobDensity,
                              blobRadius: settings.nerf.blobRadius, rng: &rng)
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(contentsOf: weights) } catch { throw RunError("\(weights.path) cannot be read as safetensors (\(error)); rerun kiln generate") }
        for (name, p) in field.namedParameters {
            do {
                p.load(Tensor(shape: p.shape, storage: try file.expect(name, shape: p.shape)), name: name)
            } catch {
                throw RunError("\(weights.path) does not match the run's config.json (\(error)); was config.json edited after the run?")
            }
        }
        return field
    }
}

/// A mesh made for export and what its clean-up did.
public struct MeshResult {
    public var mesh: TriangleMesh
    public var report: MeshCleanupReport
    /// The iso level used, and how well its silhouettes matched the renders when it was chosen (IoU).
    public var level: Float? = nil
    public var levelIoU: Double? = nil
    /// Share of the vertices (or texels) coloured from the renders rather than the colour field.
    public var projectedShare: Double? = nil
    /// How the surface was made ("depth fusion", "density level set"), and the candidates tried
    /// with how far their renders were from the representation's.
    public var surface: String? = nil
    public var candidates: [(surface: String, renderError: Double)] = []
    /// The baked texture's atlas, when there is one.
    public var atlas: UVAtlasReport? = nil

    public init(mesh: TriangleMesh, report: MeshCleanupReport, level: Float? = nil, levelIoU: Double? = nil) {
        (self.mesh, self.report, self.level, self.levelIoU) = (mesh, report, level, levelIoU)
    }

    /// "depth fusion" or "density level set at 0.5"
    public var describedSurface: String {
        (surface ?? "level set") + (level.map { String(format: " at %.3g", $0) } ?? "")
    }

    /// "surface level 0.42 (silhouette IoU 0.93), 97% of the colour from renders"
    public var summary: String {
        var parts: [String] = []
        if surface != nil { parts.append("surface: " + describedSurface) }
        else if let level { parts.append(String(format: "surface level %.3g", level)) }
        if let levelIoU { parts.append(String(format: "silhouette IoU %.3f", levelIoU)) }
        if candidates.count > 1 {
            parts.append("render error " + candidates.map { String(format: "%.4f", $0.renderError) + " (\($0.surface))" }.joined(separator: ", "))
        }
        if let projectedShare { parts.append(String(format: "%.0f%% of the colour from renders", 100 * projectedShare)) }
        return parts.joined(separator: ", ")
    }
}

/// Marching cubes on a grid (a density inside `.above` the level, a signed distance `.below`), then
/// clean-up (degenerate triangles, welding, islands under 1% of the area, decimation to `faces`)
/// and normals; no colours yet. Triangles in vertex-cache order (meshoptimizer; ACMR ~1.2 → 0.68
/// on marching-cubes meshes, a few ms; `kiln-bench decimate`).
func surfaceMesh(grid: ScalarGrid, level: Float, inside: MarchingCubes.Inside, faces: Int) throws -> (mesh: TriangleMesh, report: MeshCleanupReport) {
    let raw = try MarchingCubes.extract(grid, level: level, inside: inside)
    guard raw.triangleCount > 0 else {
        throw RunError(inside == .above ? String(format: "no surface at density %.3g (the field peaks at %.3g); lower the level", level, grid.values.max() ?? 0)
                                        : "no surface: the renders show nothing opaque (alpha ≥ 0.5) that two views agree on")
    }
    var options = MeshCleanupOptions(minimumIslandAreaFraction: 0.01)
    options.maximumTriangleCount = faces
    let cleaned = raw.cleanedForExport(options)
    var mesh = cleaned.mesh
    mesh.triangles = MeshOptimizer.vertexCacheOrdered(mesh.triangles, vertexCount: mesh.vertexCount)
    mesh.normals = mesh.computedVertexNormals()
    return (mesh, cleaned.report)
}

/// The mesh coloured by `displayColor` (display RGB at a surface point): linear vertex colours,
/// or a texture baked from it when `textureSize` is given (with its atlas's report).
func colored(_ mesh: TriangleMesh, textureSize: Int?,
             displayColor: @escaping @Sendable (SIMD3<Float>) -> SIMD3<Float>) throws -> (mesh: TriangleMesh, atlas: UVAtlasReport?) {
    var mesh = mesh
    if let textureSize {
        mesh.colors = []
        mesh.material.name = "baked"
        let baked = try mesh.bakedTextureWithReport(size: textureSize, color: displayColor)
        return (baked.mesh, baked.report)
    }
    // glTF vertex colours are linear; the renders' colours are display (sRGB) values.
    mesh.colors = mesh.positions.map { p in
        let c = displayColor(p)
        return SRGB.decode(SIMD4(pointwiseMin(pointwiseMax(c, .zero), .one), 1))
    }
    mesh.material.name = "vertex_colors"
    return (mesh, nil)
}

/// The cameras whose renders colour an extracted mesh: 8 azimuths at elevations −20°, 15° and 50°,
/// and 4 from above (75°), at 128², framed as the run frames its views.
func colorCameras(_ views: ViewSettings) -> [Camera] {
    [-20, 15, 50].flatMap { elevation in stride(from: 0, to: 360, by: 45).map { views.camera(azimuthDegrees: Float($0), elevationDegrees: Float(elevation), size: 128) } }
        + stride(from: 0, to: 360, by: 90).map { views.camera(azimuthDegrees: Float($0), elevationDegrees: 75, size: 128) }
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
