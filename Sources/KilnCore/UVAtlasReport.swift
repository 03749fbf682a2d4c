/// How well a baked texture's atlas uses its texels (see `TriangleMesh.bakedTextureWithReport`).
public struct UVAtlasReport: Sendable, Equatable, CustomStringConvertible {
    /// Texture side in texels.
    public var size: Int
    /// Number of charts.
    public var chartCount: Int
    /// Interior (two-triangle) edges of the welded surface.
    public var interiorEdgeCount: Int
    /// Share of interior edges whose two triangles agree on both ends' UVs; the seam share is
    /// `1 − continuousEdgeShare`.
    public var continuousEdgeShare: Double
    /// Texels written by some triangle's footprint / all texels (the gutter's dilated texels are
    /// not counted).
    public var texelUse: Double
    /// Texels per world unit along each chart's plane.
    public var texelsPerUnit: Float
    /// Median triangle edge length in texels.
    public var medianEdgeTexels: Float
    /// Vertices added by copying chart-border vertices (atlas vertices − input vertices used).
    public var seamVertexCount: Int
    /// Triangles whose footprint (every texel a bilinear lookup inside them reads) holds a texel
    /// that was not baked from the field (dilated or empty): 0 unless something is wrong.
    public var trianglesReadingUnwrittenTexels: Int

    public init(size: Int, chartCount: Int, interiorEdgeCount: Int, continuousEdgeShare: Double, texelUse: Double,
                texelsPerUnit: Float, medianEdgeTexels: Float, seamVertexCount: Int, trianglesReadingUnwrittenTexels: Int) {
        self.size = size
        self.chartCount = chartCount
        self.interiorEdgeCount = interiorEdgeCount
        self.continuousEdgeShare = continuousEdgeShare
        self.texelUse = texelUse
        self.texelsPerUnit = texelsPerUnit
        self.medianEdgeTexels = medianEdgeTexels
        self.seamVertexCount = seamVertexCount
        self.trianglesReadingUnwrittenTexels = trianglesReadingUnwrittenTexels
    }

    /// One line, e.g. "atlas 512²: 14 charts, 99.2% of interior edges continuous, 58.1% of texels
    /// used, 181.3 texels/unit, median edge 3.1 texels, 412 seam vertices, 0 triangles reading
    /// unwritten texels".
    public var description: String {
        func percent(_ x: Double) -> String { String(Double((x * 1000).rounded()) / 10) + "%" }
        func one(_ x: Float) -> String { String(Float((x * 10).rounded()) / 10) }
        return "atlas \(size)²: \(chartCount) chart\(chartCount == 1 ? "" : "s"), \(percent(continuousEdgeShare)) of interior edges continuous, "
            + "\(percent(texelUse)) of texels used, \(one(texelsPerUnit)) texels/unit, median edge \(one(medianEdgeTexels)) texels, "
            + "\(seamVertexCount) seam vertices, \(trianglesReadingUnwrittenTexels) triangles reading unwritten texels"
    }
}
