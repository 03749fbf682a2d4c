// The texture bake Kiln had before its UV atlas, kept here only as the "before" row of
// `kiln-bench atlas`: each triangle in its own half-cell of a grid, inset 1.5 texels, dilated 4 rings.
import KilnCore

extension TriangleMesh {
    func legacyPerTriangleBake(size: Int, threads: Int = Parallel.defaultThreadCount,
                               color: @Sendable (SIMD3<Float>) -> SIMD3<Float>) -> TriangleMesh {
        precondition(size >= 16, "legacyPerTriangleBake: the texture must be at least 16 texels wide, got \(size)")
        let n = triangleCount
        let cells = max(1, (n + 1) / 2)
        let grid = Int(Double(cells).squareRoot().rounded(.up))
        let cell = Float(size) / Float(grid)
        let smoothNormals = normals.count == vertexCount ? normals : computedVertexNormals()
        var out = TriangleMesh(material: material)
        out.positions.reserveCapacity(3 * n)
        // Corner UVs of triangle t, in texels (x right, y down from the top row).
        @Sendable func corners(_ t: Int) -> [SIMD2<Float>] {
            let c = t / 2, x0 = Float(c % grid) * cell, y0 = Float(c / grid) * cell
            let inset: Float = 1.5  // texels kept free between a triangle and its cell's edges and diagonal
            let lo = inset, hi = cell - inset
            if t % 2 == 0 {
                return [SIMD2(x0 + lo, y0 + lo), SIMD2(x0 + hi - inset, y0 + lo), SIMD2(x0 + lo, y0 + hi - inset)]
            }
            return [SIMD2(x0 + hi, y0 + hi), SIMD2(x0 + lo + inset, y0 + hi), SIMD2(x0 + hi, y0 + lo + inset)]
        }
        for (t, tri) in triangles.enumerated() {
            let uv = corners(t)
            for k in 0..<3 {
                let v = Int(tri[k])
                out.positions.append(positions[v])
                out.normals.append(smoothNormals[v])
                // Texel coordinates → Kiln's UVs (origin bottom-left, v up).
                out.uvs.append(SIMD2(uv[k].x / Float(size), 1 - uv[k].y / Float(size)))
            }
            out.triangles.append(SIMD3(UInt32(3 * t), UInt32(3 * t + 1), UInt32(3 * t + 2)))
        }
        // Rasterise each triangle's UV footprint: texel centres inside get the field's colour.
        var texels = [SIMD4<Float>](repeating: .zero, count: size * size)  // rgb + coverage
        let positions = self.positions, triangles = self.triangles
        texels.withUnsafeMutableBufferPointer { buffer in
            let shared = UnsafeMutableSendableBuffer(buffer)
            // Over cells: a cell's two triangles are drawn by one worker, in order, and cells do not
            // share texels, so the result does not depend on the threads.
            parallelFor(cells, threads: threads) { range in
                for t in (2 * range.lowerBound)..<min(n, 2 * range.upperBound) {
                    let uv = corners(t), tri = triangles[t]
                    let p = (positions[Int(tri[0])], positions[Int(tri[1])], positions[Int(tri[2])])
                    let minX = max(0, Int(min(uv[0].x, uv[1].x, uv[2].x).rounded(.down))), maxX = min(size - 1, Int(max(uv[0].x, uv[1].x, uv[2].x)))
                    let minY = max(0, Int(min(uv[0].y, uv[1].y, uv[2].y).rounded(.down))), maxY = min(size - 1, Int(max(uv[0].y, uv[1].y, uv[2].y)))
                    let e1 = uv[1] - uv[0], e2 = uv[2] - uv[0]
                    let det = e1.x * e2.y - e1.y * e2.x
                    guard abs(det) > 1e-12, minX <= maxX, minY <= maxY else { continue }
                    for y in minY...maxY {
                        for x in minX...maxX {
                            let q = SIMD2(Float(x) + 0.5, Float(y) + 0.5) - uv[0]
                            // Barycentrics, widened by half a texel so edge texels are covered too.
                            let b1 = (q.x * e2.y - q.y * e2.x) / det, b2 = (e1.x * q.y - e1.y * q.x) / det, b0 = 1 - b1 - b2
                            let slack = 0.75 / max(1, Float(cell) / 2)
                            guard b0 >= -slack, b1 >= -slack, b2 >= -slack else { continue }
                            let c0 = max(0, b0), c1 = max(0, b1), c2 = max(0, b2), s = c0 + c1 + c2
                            let point = (c0 * p.0 + c1 * p.1 + c2 * p.2) / s
                            let rgb = color(point)
                            shared[y * size + x] = SIMD4(rgb.x, rgb.y, rgb.z, 1)
                        }
                    }
                }
            }
        }
        // Dilation: empty texels take the mean of their covered 8-neighbours, a few rings deep.
        for _ in 0..<4 {
            var next = texels
            for y in 0..<size {
                for x in 0..<size where texels[y * size + x].w == 0 {
                    var sum = SIMD4<Float>.zero
                    for dy in -1...1 {
                        for dx in -1...1 where (dx, dy) != (0, 0) {
                            let xx = x + dx, yy = y + dy
                            guard xx >= 0, yy >= 0, xx < size, yy < size else { continue }
                            let v = texels[yy * size + xx]
                            if v.w > 0 { sum += SIMD4(v.x, v.y, v.z, 1) }
                        }
                    }
                    if sum.w > 0 { next[y * size + x] = SIMD4(sum.x / sum.w, sum.y / sum.w, sum.z / sum.w, 1) }
                }
            }
            texels = next
        }
        var image = Image(width: size, height: size, channels: 4)
        for i in 0..<(size * size) {
            let v = texels[i]
            image.pixels[4 * i] = v.x; image.pixels[4 * i + 1] = v.y; image.pixels[4 * i + 2] = v.z; image.pixels[4 * i + 3] = 1
        }
        out.material.baseColorTexture = image
        return out
    }
}
