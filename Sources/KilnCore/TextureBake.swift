/// A baked texture: the mesh, its atlas, the atlas's report and which texels were baked.
public struct TextureBake: Sendable {
    /// The mesh with UVs and `material.baseColorTexture`.
    public var mesh: TriangleMesh
    public var report: UVAtlasReport
    /// `[size · size]` row-major from the top row: whether the texel lies in some triangle's
    /// bilinear footprint (baked from the field), before dilation.
    public var coverage: [Bool]
    /// The atlas the mesh's UVs come from (texel coordinates, charts).
    public var atlas: UVAtlas
}
