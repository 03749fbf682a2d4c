import KilnCore

/// How `MeshRenderer` shades a mesh.
public struct MeshRenderSettings: Sendable, Equatable {
    /// Display (sRGB-encoded) RGB behind the mesh, like the splat renderer's background.
    public var background: SIMD3<Float>
    /// Unit direction toward the light in camera space (OpenCV: +x right, +y down, +z forward),
    /// so every view of an orbit is lit alike; the default is a headlight from above-left.
    public var lightDirectionCamera: SIMD3<Float>
    /// Light that reaches every surface, and the weight of the Lambert term.
    public var ambient: Float
    public var diffuse: Float
    /// Blend silhouette edges (`MeshAntialias`); off gives hard, aliased edges.
    public var antialias: Bool
    /// Skip triangles seen from behind. Off by default: user meshes are often open or
    /// inconsistently wound, and a back face seen through a hole is shaded with its normal flipped.
    public var cullBackFaces: Bool
    /// Texture sampling; trilinear uses mip levels from the UV screen derivatives.
    public var textureFilter: TextureFilter

    public init(background: SIMD3<Float> = SIMD3(1, 1, 1), lightDirectionCamera: SIMD3<Float> = normalize(SIMD3(-0.4, -0.6, -1)),
                ambient: Float = 0.35, diffuse: Float = 0.65, antialias: Bool = true, cullBackFaces: Bool = false,
                textureFilter: TextureFilter = .trilinear) {
        self.background = background
        self.lightDirectionCamera = lightDirectionCamera
        self.ambient = ambient
        self.diffuse = diffuse
        self.antialias = antialias
        self.cullBackFaces = cullBackFaces
        self.textureFilter = textureFilter
    }
}

/// Images of a mesh from one camera.
public struct MeshView: Sendable {
    /// RGB over the background, silhouettes antialiased.
    public var color: Image
    /// Coverage in [0, 1] (antialiased like the colour).
    public var alpha: Image
    /// Camera-space depth (z along the optical axis) of the visible surface, 0 where empty.
    public var depth: Image
    /// World-space unit normal of the visible surface facing the camera, 0 where empty.
    public var normal: Image
    /// 1 where a triangle covers the pixel centre, else 0 (hard, not antialiased).
    public var mask: Image
}

/// A mesh prepared for rendering many views: vertex normals, base colours and the texture's mip
/// pyramid are computed once.
public struct MeshRenderer: Sendable {
    public let mesh: TriangleMesh
    /// `[V, 3]` unit vertex normals (the mesh's, or area-weighted face normals).
    let normals: [Float]
    /// `[V, 4]` material factor × vertex colour.
    let baseColors: [Float]
    /// `[V, 2]` UVs when the material has a texture.
    let uvs: [Float]?
    let texture: MipPyramid?
    let topology: MeshTopology
    /// The vertices' bounding sphere (box centre, farthest vertex), for framing and depth planes.
    public let center: SIMD3<Float>
    public let radius: Float

    /// - Precondition: `mesh.validationFailure() == nil` (check it first and report it).
    public init(_ mesh: TriangleMesh) {
        precondition(mesh.validationFailure() == nil, "MeshRenderer needs a valid mesh: \(mesh.validationFailure() ?? "")")
        self.mesh = mesh
        let n = mesh.normals.isEmpty ? mesh.computedVertexNormals() : mesh.normals.map { v -> SIMD3<Float> in
            let l = length(v)
            return l > 0 && l.isFinite ? v / l : SIMD3(0, 1, 0)
        }
        normals = n.flatMap { [$0.x, $0.y, $0.z] }
        let factor = mesh.material.baseColorFactor
        baseColors = (0..<mesh.vertexCount).flatMap { i -> [Float] in
            let c = (mesh.colors.isEmpty ? SIMD4<Float>(1, 1, 1, 1) : mesh.colors[i]) * factor
            return [c.x, c.y, c.z, c.w]
        }
        if let image = mesh.material.baseColorTexture, !mesh.uvs.isEmpty, image.width > 0, image.height > 0 {
            // PNG textures hold sRGB values; filtering and shading happen in linear light.
            texture = MipPyramid(image.withChannels(4).srgbDecoded())
            uvs = mesh.uvs.flatMap { [$0.x, $0.y] }
        } else {
            texture = nil
            uvs = nil
        }
        topology = MeshTopology(triangles: mesh.triangles, positions: mesh.positions)
        if let bounds = mesh.bounds {
            let c = (bounds.min + bounds.max) / 2
            center = c
            radius = max(1e-6, mesh.positions.reduce(0) { max($0, length($1 - c)) })
        } else {
            center = .zero
            radius = 1
        }
    }

    /// Near and far planes that enclose the mesh's bounding sphere for this camera.
    func depthRange(_ camera: Camera) -> (near: Float, far: Float) {
        let distance = dot(center - camera.position, camera.forward)
        let far = max(distance + radius * 1.01, radius * 1e-3 * 2)
        let near = max(distance - radius * 1.01, far * 1e-4)
        return (near, far)
    }

    /// Renders one view: rasterize → interpolate (normals, colours, UVs, depth) → texture →
    /// shade (`MeshShading`: Lambert + ambient, composite over the background) → antialias, all in linear light
    /// (vertex colours and factors are linear, as in glTF); the colour comes out sRGB-encoded.
    public func render(camera: Camera, settings: MeshRenderSettings = MeshRenderSettings(), threads: Int = Parallel.defaultThreadCount) -> MeshView {
        let w = camera.width, h = camera.height, pixels = w * h
        let (near, far) = depthRange(camera)
        let clip = camera.clipPositions(mesh.positions, near: near, far: far)
        let wantDerivatives = texture != nil && settings.textureFilter == .trilinear
        let raster = MeshRasterizer.rasterize(clipPositions: clip, triangles: mesh.triangles, width: w, height: h,
                                              options: RasterizeOptions(cullBackFaces: settings.cullBackFaces, barycentricDerivatives: wantDerivatives),
                                              threads: threads)
        let normal = MeshInterpolate.forward(normals, channels: 3, triangles: mesh.triangles, raster: raster, threads: threads)
        var base = MeshInterpolate.forward(baseColors, channels: 4, triangles: mesh.triangles, raster: raster, threads: threads)
        let cameraDepth = MeshInterpolate.forward(stride(from: 3, to: clip.count, by: 4).map { clip[$0] }, channels: 1,
                                                  triangles: mesh.triangles, raster: raster, threads: threads)
        if let texture, let uvs {
            let uv = MeshInterpolate.forward(uvs, channels: 2, triangles: mesh.triangles, raster: raster, threads: threads)
            let derivatives = wantDerivatives ? MeshInterpolate.derivatives(uvs, channels: 2, triangles: mesh.triangles, raster: raster) : nil
            let texels = MeshTexture.sample(texture, uv: uv, uvDerivatives: derivatives, filter: settings.textureFilter, boundary: .wrap, threads: threads)
            for i in 0..<(4 * pixels) { base[i] *= texels[i] }
        }

        let light = MeshShading.Light(directionCamera: settings.lightDirectionCamera, ambient: settings.ambient, diffuse: settings.diffuse)
        let shaded = MeshShading.forward(base: base, channels: 4, normals: normal, raster: raster, camera: camera, light: light,
                                         background: SRGB.decode(settings.background))
        var rgba = shaded.rgba
        var depthImage = [Float](repeating: 0, count: pixels)
        for p in 0..<pixels where raster.triangleIDs[p] >= 0 { depthImage[p] = cameraDepth[p] }
        if settings.antialias {
            rgba = MeshAntialias.forward(rgba, channels: 4, raster: raster, clipPositions: clip, triangles: mesh.triangles,
                                         topology: topology, threads: threads)
        }
        var color = [Float](repeating: 0, count: 3 * pixels), alpha = [Float](repeating: 0, count: pixels)
        for p in 0..<pixels {
            for c in 0..<3 { color[3 * p + c] = SRGB.encode(min(1, max(0, rgba[4 * p + c]))) }
            alpha[p] = min(1, max(0, rgba[4 * p + 3]))
        }
        return MeshView(color: Image(width: w, height: h, channels: 3, pixels: color),
                        alpha: Image(width: w, height: h, channels: 1, pixels: alpha),
                        depth: Image(width: w, height: h, channels: 1, pixels: depthImage),
                        normal: Image(width: w, height: h, channels: 3, pixels: shaded.normals),
                        mask: Image(width: w, height: h, channels: 1, pixels: raster.coverage))
    }
}
