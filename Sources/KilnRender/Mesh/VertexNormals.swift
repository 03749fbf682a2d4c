/// Smooth vertex normals as `TriangleMesh.computedVertexNormals` makes them, with their backward,
/// for refining vertex positions through shading:
///
///     m_i = Σ_{faces (a, b, c) ∋ i} (p_b − p_a) × (p_c − p_a)    (twice the area times the face normal)
///     n_i = m_i / |m_i|                                           ((0, 1, 0) where |m_i| = 0)
///
/// Positions and normals are flat `[V, 3]`; generic so that tests run the same code in float64.
public enum VertexNormals {
    /// `[V, 3]` unit normals and the `[V, 3]` sums m they normalise (the backward needs them).
    public static func forward<R: BinaryFloatingPoint>(positions: [R], triangles: [SIMD3<UInt32>]) -> (normals: [R], sums: [R]) {
        precondition(positions.count % 3 == 0, "positions must be [V, 3]")
        var sums = [R](repeating: 0, count: positions.count)
        for t in triangles {
            let (a, b, c) = (3 * Int(t.x), 3 * Int(t.y), 3 * Int(t.z))
            let e1 = (positions[b] - positions[a], positions[b + 1] - positions[a + 1], positions[b + 2] - positions[a + 2])
            let e2 = (positions[c] - positions[a], positions[c + 1] - positions[a + 1], positions[c + 2] - positions[a + 2])
            let f = cross(e1, e2)
            for v in [a, b, c] { sums[v] += f.0; sums[v + 1] += f.1; sums[v + 2] += f.2 }
        }
        var normals = [R](repeating: 0, count: positions.count)
        for v in stride(from: 0, to: sums.count, by: 3) {
            let length = (sums[v] * sums[v] + sums[v + 1] * sums[v + 1] + sums[v + 2] * sums[v + 2]).squareRoot()
            if length > 0 {
                normals[v] = sums[v] / length; normals[v + 1] = sums[v + 1] / length; normals[v + 2] = sums[v + 2] / length
            } else {
                normals[v + 1] = 1
            }
        }
        return (normals, sums)
    }

    /// `[V, 3]` gradient with respect to the positions from the gradient with respect to the normals.
    ///
    ///     ∂L/∂m_i = (I − n_i n_iᵀ) ∂L/∂n_i / |m_i|
    ///     f = e₁ × e₂ with e₁ = p_b − p_a, e₂ = p_c − p_a:  ∂L/∂e₁ = e₂ × g,  ∂L/∂e₂ = g × e₁
    ///     with g = Σ over the face's corners of ∂L/∂m.
    public static func backward<R: BinaryFloatingPoint>(positions: [R], triangles: [SIMD3<UInt32>], sums: [R], normalGradient: [R]) -> [R] {
        precondition(sums.count == positions.count && normalGradient.count == positions.count, "sums and normal gradient must be [V, 3] like the positions")
        var gm = [R](repeating: 0, count: positions.count)
        for v in stride(from: 0, to: sums.count, by: 3) {
            let length = (sums[v] * sums[v] + sums[v + 1] * sums[v + 1] + sums[v + 2] * sums[v + 2]).squareRoot()
            guard length > 0 else { continue }
            let n = (sums[v] / length, sums[v + 1] / length, sums[v + 2] / length)
            let g = (normalGradient[v], normalGradient[v + 1], normalGradient[v + 2])
            let along = n.0 * g.0 + n.1 * g.1 + n.2 * g.2
            gm[v] = (g.0 - along * n.0) / length
            gm[v + 1] = (g.1 - along * n.1) / length
            gm[v + 2] = (g.2 - along * n.2) / length
        }
        var gp = [R](repeating: 0, count: positions.count)
        for t in triangles {
            let (a, b, c) = (3 * Int(t.x), 3 * Int(t.y), 3 * Int(t.z))
            let e1 = (positions[b] - positions[a], positions[b + 1] - positions[a + 1], positions[b + 2] - positions[a + 2])
            let e2 = (positions[c] - positions[a], positions[c + 1] - positions[a + 1], positions[c + 2] - positions[a + 2])
            let g = (gm[a] + gm[b] + gm[c], gm[a + 1] + gm[b + 1] + gm[c + 1], gm[a + 2] + gm[b + 2] + gm[c + 2])
            let g1 = cross(e2, g), g2 = cross(g, e1)
            gp[b] += g1.0; gp[b + 1] += g1.1; gp[b + 2] += g1.2
            gp[c] += g2.0; gp[c + 1] += g2.1; gp[c + 2] += g2.2
            gp[a] -= g1.0 + g2.0; gp[a + 1] -= g1.1 + g2.1; gp[a + 2] -= g1.2 + g2.2
        }
        return gp
    }

    @inline(__always)
    static func cross<R: BinaryFloatingPoint>(_ a: (R, R, R), _ b: (R, R, R)) -> (R, R, R) {
        (a.1 * b.2 - a.2 * b.1, a.2 * b.0 - a.0 * b.2, a.0 * b.1 - a.1 * b.0)
    }
}

/// The uniform Laplacian smoothness term on vertex displacements δ (`[V, 3]`), which keeps a mesh
/// refined by score distillation from crumpling:
///
///     E = w · Σ_i |δ_i − mean_{j ∈ N(i)} δ_j|²,   ∂E/∂δ = 2w · Lᵀ(Lδ)
///
/// with N(i) the vertices sharing an edge with i. Translating the whole mesh costs nothing.
public struct UniformLaplacian: Sendable {
    /// Each vertex's neighbours, sorted.
    public let neighbors: [[Int]]

    public init(triangles: [SIMD3<UInt32>], vertexCount: Int) {
        var sets = [Set<Int>](repeating: [], count: vertexCount)
        for t in triangles {
            let v = [Int(t.x), Int(t.y), Int(t.z)]
            for i in 0..<3 { for j in 0..<3 where v[i] != v[j] { sets[v[i]].insert(v[j]) } }
        }
        neighbors = sets.map { $0.sorted() }
    }

    /// `[V, 3]` Lδ: each vertex's displacement minus its neighbours' mean (zero for isolated vertices).
    public func apply<R: BinaryFloatingPoint>(_ delta: [R]) -> [R] {
        var out = [R](repeating: 0, count: delta.count)
        for (i, list) in neighbors.enumerated() where !list.isEmpty {
            let share = 1 / R(list.count)
            for k in 0..<3 {
                var mean: R = 0
                for j in list { mean += delta[3 * j + k] }
                out[3 * i + k] = delta[3 * i + k] - share * mean
            }
        }
        return out
    }

    /// E(δ) for weight w.
    public func energy<R: BinaryFloatingPoint>(_ delta: [R], weight: R) -> R {
        weight * apply(delta).reduce(0) { $0 + $1 * $1 }
    }

    /// ∂E/∂δ = 2w Lᵀ(Lδ).
    public func gradient<R: BinaryFloatingPoint>(_ delta: [R], weight: R) -> [R] {
        let y = apply(delta)
        var out = y.map { 2 * weight * $0 }
        for (i, list) in neighbors.enumerated() where !list.isEmpty {
            let share = 2 * weight / R(list.count)
            for j in list { for k in 0..<3 { out[3 * j + k] -= share * y[3 * i + k] } }
        }
        return out
    }

    /// `[V, 3]` y with (I + λL)·y = g, by Jacobi iterations y ← (g + λ·W·y)/(1 + λ) from y = g (W the
    /// neighbours' mean; the error shrinks by λ/(1 + λ) per iteration). A mesh gradient passed through
    /// it keeps its smooth part and loses the per-vertex noise that crumples a surface (Nicolet et al.
    /// 2021, "Large Steps in Inverse Rendering of Geometry", with the uniform Laplacian).
    public func smoothed<R: BinaryFloatingPoint>(_ g: [R], lambda: R, iterations: Int) -> [R] {
        precondition(g.count == 3 * neighbors.count, "smoothed: the gradient must be [V, 3]")
        guard lambda > 0 else { return g }
        var y = g, next = g
        let keep = 1 / (1 + lambda), pull = lambda / (1 + lambda)
        for _ in 0..<iterations {
            for (i, list) in neighbors.enumerated() {
                guard !list.isEmpty else { for k in 0..<3 { next[3 * i + k] = g[3 * i + k] }; continue }
                let share = 1 / R(list.count)
                for k in 0..<3 {
                    var mean: R = 0
                    for j in list { mean += y[3 * j + k] }
                    next[3 * i + k] = keep * g[3 * i + k] + pull * share * mean
                }
            }
            swap(&y, &next)
        }
        return y
    }
}
