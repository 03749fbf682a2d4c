/// Texture baking: a `UVAtlas` and a base-colour texture sampled from a colour field.
///
/// Every texel in a triangle's bilinear footprint (`UVFootprint`: the texels any bilinear lookup
/// inside the triangle reads) is baked: it takes the field's colour at the 3D point of the closest
/// point of the texel's centre on the nearest triangle that reaches it (barycentric in texture
/// space; the earlier triangle wins a tie). So no lookup inside a triangle reads an unbaked texel.
/// Then the charts' colours are dilated into the gutters (each empty texel takes the mean of its
/// baked or dilated 8-neighbours, ring by ring, gutter-wide or 8 rings, whichever is more), and
/// texels still empty take the mean baked colour, so mip levels do not fade to black.
extension TriangleMesh {
    /// The mesh with a baked base-colour texture (`material.baseColorTexture`, RGBA, values as the
    /// field gives them, alpha 1) and UVs from a `UVAtlas`; vertex colours are dropped.
    /// - Parameters:
    ///   - size: texture side in texels (≥ 16).
    ///   - threads: workers for the field's evaluations; the texture does not depend on it.
    ///   - color: the colour at a world position (called once per baked texel, concurrently).
    /// - Throws: `UVAtlasError` when the mesh's charts do not fit in the texture.
    public func bakedTexture(size: Int, threads: Int = Parallel.defaultThreadCount,
                             color: @Sendable (SIMD3<Float>) -> SIMD3<Float>) throws(UVAtlasError) -> TriangleMesh {
        try bakedTextureWithReport(size: size, threads: threads, color: color).mesh
    }

    /// `bakedTexture` with the atlas's report and which texels the triangles' footprints baked.
    public func bakedTextureWithReport(size: Int, threads: Int = Parallel.defaultThreadCount,
                                       color: @Sendable (SIMD3<Float>) -> SIMD3<Float>) throws(UVAtlasError) -> TextureBake {
        let positions = self.positions
        return try baked(size: size, threads: threads) { corners, w in
            color(w.x * positions[corners.x] + w.y * positions[corners.y] + w.z * positions[corners.z])
        }
    }

    /// The mesh with its vertex colours baked into a base-colour texture on a `UVAtlas`, for
    /// formats whose readers show a texture but not vertex colours (OBJ, FBX and DAE in Blender).
    /// Colours are interpolated in linear light and stored sRGB-encoded, as 8-bit textures are;
    /// the vertex colours are kept too (copied to the atlas's vertices).
    /// - Precondition: the mesh has a colour per vertex.
    public func bakingVertexColors(size: Int, threads: Int = Parallel.defaultThreadCount) throws(UVAtlasError) -> TriangleMesh {
        precondition(colors.count == vertexCount, "bakingVertexColors: the mesh has no vertex colours")
        let colors = self.colors
        let bake = try baked(size: size, threads: threads) { corners, w in
            let c = SRGB.encode(pointwiseMin(pointwiseMax(w.x * colors[corners.x] + w.y * colors[corners.y] + w.z * colors[corners.z], .zero), .one))
            return SIMD3(c.x, c.y, c.z)
        }
        var out = bake.mesh
        out.colors = bake.atlas.sourceVertices.map { colors[Int($0)] }
        return out
    }

    /// The bake: `color(corners, w)` gives the colour at barycentrics `w` of the triangle whose
    /// corners are the source vertices `corners`.
    func baked(size: Int, threads: Int,
               color: @Sendable (SIMD3<Int>, SIMD3<Float>) -> SIMD3<Float>) throws(UVAtlasError) -> TextureBake {
        precondition(size >= 16, "bakedTexture: the texture must be at least 16 texels wide, got \(size)")
        let atlas = try UVAtlas(self, size: size)
        let smoothNormals = normals.count == vertexCount ? normals : computedVertexNormals()
        var out = TriangleMesh(material: material)
        out.positions = atlas.sourceVertices.map { positions[Int($0)] }
        out.normals = atlas.sourceVertices.map { smoothNormals[Int($0)] }
        // Texel coordinates → Kiln's UVs (origin bottom-left, v up).
        out.uvs = atlas.texelCoordinates.map { SIMD2($0.x / Float(size), 1 - $0.y / Float(size)) }
        out.triangles = atlas.triangles

        // Which 3D point each footprint texel shows: serial, in triangle order, so it does not
        // depend on the threads.
        let count = size * size
        var distance = [Float](repeating: .infinity, count: count)
        var source = [SIMD3<Int>](repeating: .zero, count: count)  // the texel's triangle, as source vertices
        var weights = [SIMD3<Float>](repeating: .zero, count: count)
        for tri in atlas.triangles {
            let uv = (atlas.texelCoordinates[Int(tri.x)], atlas.texelCoordinates[Int(tri.y)], atlas.texelCoordinates[Int(tri.z)])
            let corners = SIMD3(Int(atlas.sourceVertices[Int(tri.x)]), Int(atlas.sourceVertices[Int(tri.y)]), Int(atlas.sourceVertices[Int(tri.z)]))
            UVFootprint.forEachTexel(uv.0, uv.1, uv.2, width: size, height: size) { x, y in
                let centre = SIMD2(Float(x) + 0.5, Float(y) + 0.5)
                let (w, d2) = Self.closestBarycentrics(centre, uv.0, uv.1, uv.2)
                let i = y * size + x
                if d2 < distance[i] {
                    distance[i] = d2
                    source[i] = corners
                    weights[i] = w
                }
            }
        }
        let baked = distance.indices.filter { distance[$0].isFinite }
        var texels = [SIMD4<Float>](repeating: .zero, count: count)  // rgb + written (1) or not (0)
        let sources = source, bakedWeights = weights
        texels.withUnsafeMutableBufferPointer { buffer in
            let shared = UnsafeMutableSendableBuffer(buffer)
            parallelFor(baked.count, threads: threads) { range in
                for k in range {
                    let rgb = color(sources[baked[k]], bakedWeights[baked[k]])
                    shared[baked[k]] = SIMD4(rgb.x, rgb.y, rgb.z, 1)
                }
            }
        }
        let coverage = distance.map { $0.isFinite }
        Self.dilate(&texels, size: size, rings: max(8, atlas.gutter), threads: threads)
        // Texels no ring reached: the mean baked colour.
        var mean = SIMD4<Double>.zero
        for i in baked { mean += SIMD4<Double>(texels[i]) }
        let fill = baked.isEmpty ? SIMD4<Float>(0, 0, 0, 1) : SIMD4<Float>(mean / Double(baked.count))
        var image = Image(width: size, height: size, channels: 4)
        for i in 0..<count {
            let v = texels[i]
            let c = v.w > 0 ? v : fill
            image.pixels[4 * i] = c.x; image.pixels[4 * i + 1] = c.y; image.pixels[4 * i + 2] = c.z; image.pixels[4 * i + 3] = 1
        }
        out.material.baseColorTexture = image

        // The report.
        var legs: [Float] = []
        legs.reserveCapacity(3 * atlas.triangles.count)
        var unwritten = 0
        for tri in atlas.triangles {
            let uv = (atlas.texelCoordinates[Int(tri.x)], atlas.texelCoordinates[Int(tri.y)], atlas.texelCoordinates[Int(tri.z)])
            legs += [Self.distance(uv.1, uv.0), Self.distance(uv.2, uv.1), Self.distance(uv.0, uv.2)]
            var reads = false
            UVFootprint.forEachTexel(uv.0, uv.1, uv.2, width: size, height: size) { x, y in if !coverage[y * size + x] { reads = true } }
            if reads { unwritten += 1 }
        }
        legs.sort()
        var used = [Bool](repeating: false, count: vertexCount)
        for t in triangles { for k in 0..<3 { used[Int(t[k])] = true } }
        let report = UVAtlasReport(size: size, chartCount: atlas.chartCount, interiorEdgeCount: atlas.interiorEdgeCount,
                                   continuousEdgeShare: atlas.continuousEdgeShare, texelUse: Double(baked.count) / Double(count),
                                   texelsPerUnit: atlas.texelsPerUnit, medianEdgeTexels: legs.isEmpty ? 0 : legs[legs.count / 2],
                                   seamVertexCount: atlas.sourceVertices.count - used.filter { $0 }.count,
                                   trianglesReadingUnwrittenTexels: unwritten)
        return TextureBake(mesh: out, report: report, coverage: coverage, atlas: atlas)
    }

    static func distance(_ a: SIMD2<Float>, _ b: SIMD2<Float>) -> Float { ((a - b) * (a - b)).sum().squareRoot() }

    /// Barycentric weights of the point of triangle `(a, b, c)` closest to `p`, and the squared
    /// distance to it (0 inside). Degenerate triangles are treated as their three edges.
    static func closestBarycentrics(_ p: SIMD2<Float>, _ a: SIMD2<Float>, _ b: SIMD2<Float>, _ c: SIMD2<Float>) -> (SIMD3<Float>, Float) {
        let e1 = b - a, e2 = c - a, q = p - a
        let det = e1.x * e2.y - e1.y * e2.x
        if abs(det) > 1e-12 * max(1, (e1 * e1).sum(), (e2 * e2).sum()) {
            let w1 = (q.x * e2.y - q.y * e2.x) / det, w2 = (e1.x * q.y - e1.y * q.x) / det
            if w1 >= 0 && w2 >= 0 && w1 + w2 <= 1 { return (SIMD3(1 - w1 - w2, w1, w2), 0) }
        }
        // Outside (or flat): the nearest point on the three edges.
        var best = (SIMD3<Float>(1, 0, 0), Float.infinity)
        let corners = [a, b, c]
        for k in 0..<3 {
            let s = corners[k], e = corners[(k + 1) % 3] - s
            let l2 = (e * e).sum()
            let t = l2 > 0 ? min(1, max(0, dot(p - s, e) / l2)) : 0
            let d = p - (s + t * e), d2 = (d * d).sum()
            if d2 < best.1 {
                var w = SIMD3<Float>.zero
                w[k] = 1 - t; w[(k + 1) % 3] = t
                best = (w, d2)
            }
        }
        return best
    }

    /// Fills empty texels (`w == 0`) with the mean of their non-empty 8-neighbours, `rings` times;
    /// each ring reads the previous one only, so rows can run in parallel.
    static func dilate(_ texels: inout [SIMD4<Float>], size: Int, rings: Int, threads: Int) {
        for _ in 0..<rings {
            let previous = texels
            var changed = false
            texels.withUnsafeMutableBufferPointer { buffer in
                let shared = UnsafeMutableSendableBuffer(buffer)
                let flags = parallelMapChunks(size, threads: threads) { rows in
                    var any = false
                    for y in rows {
                        for x in 0..<size where previous[y * size + x].w == 0 {
                            var sum = SIMD4<Float>.zero
                            for dy in -1...1 {
                                for dx in -1...1 where dx != 0 || dy != 0 {
                                    let xx = x + dx, yy = y + dy
                                    guard xx >= 0, yy >= 0, xx < size, yy < size else { continue }
                                    let v = previous[yy * size + xx]
                                    if v.w > 0 { sum += SIMD4(v.x, v.y, v.z, 1) }
                                }
                            }
                            if sum.w > 0 { shared[y * size + x] = SIMD4(sum.x / sum.w, sum.y / sum.w, sum.z / sum.w, 1); any = true }
                        }
                    }
                    return any
                }
                changed = flags.contains(true)
            }
            if !changed { break }
        }
    }
}
