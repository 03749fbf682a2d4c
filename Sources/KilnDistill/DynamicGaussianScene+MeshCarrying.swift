import KilnCore
import KilnRender

extension DynamicGaussianScene {
    /// The vertices of `mesh` (extracted from the cloud at τ = 0) carried through the scene's
    /// motion to each of `times`: a mesh that moves as the splats do, for animated exports.
    ///
    /// The motion has two parts, carried separately:
    /// - the object's own similarity transform (`ObjectMotion`), applied to every vertex exactly,
    ///   so a bounce or a spin stays rigid;
    /// - each Gaussian's own displacement (`SplatMotion`), measured in the object's frame and
    ///   spread to the vertices smoothly: a Gaussian kernel over the `neighbours` nearest opaque
    ///   Gaussians (its width the distance to the farthest of them, so a vertex's weights fade
    ///   out before its neighbour set changes), then rounds of averaging with the mesh neighbours
    ///   (welded across seams) until no edge is stretched or shrunk more than `maximumStretch`
    ///   times (at most `maximumIterations` rounds): where the Gaussians move apart, the mesh
    ///   keeps their common motion rather than tearing.
    ///
    /// Each vertex moving as its 4 nearest Gaussians alone (inverse-distance weights, the former
    /// rule) tore the mesh wherever neighbouring vertices picked Gaussians that moved apart: on
    /// the default 4D run of "a yellow duck bouncing", 60% of its edges stretched over 1.5×.
    /// - Returns: `[times.count][mesh.vertexCount]` positions; a time of 0 gives `mesh.positions`.
    public func carriedVertices(of mesh: TriangleMesh, times: [Float], neighbours: Int = 16,
                                maximumStretch: Float = 1.25, maximumIterations: Int = 2000) -> [[SIMD3<Float>]] {
        let canonical = still.parameters
        func centres(_ p: SplatParameters<Float>, _ indices: [Int]) -> [SIMD3<Float>] {
            indices.map { SIMD3(p.means[3 * $0], p.means[3 * $0 + 1], p.means[3 * $0 + 2]) }
        }
        // The vertices in the object's frame at τ = 0, and the Gaussians there (before the object's transform).
        let local = object.unmoving(mesh.positions, at: 0)
        let carriers = (0..<canonical.count).filter { canonical.opacityLogits[$0] > Float.log(0.05 / 0.95) }
        guard !carriers.isEmpty else { return times.map { object.moving(local, at: $0) } }
        let origins = centres(motion.deformed(canonical, at: 0), carriers)
        let k = min(neighbours, carriers.count)
        let nearest = NearestNeighbours.search(origins, queries: local, k: k)
        let weights = local.indices.map { v -> [Float] in
            let squared = nearest[v].map { i -> Float in let d = origins[i] - local[v]; return (d * d).sum() }
            let width = max(1e-8, squared.max() ?? 0)
            let w = squared.map { Float.exp(-2 * $0 / width) }  // e^(−2) ≈ 0.14 at the k-th neighbour
            let total = w.reduce(0, +)
            return w.map { $0 / total }
        }
        let adjacency = Self.weldedAdjacency(mesh)
        return times.map { tau in
            let moved = centres(motion.deformed(canonical, at: tau), carriers)
            var displacement = local.indices.map { v -> SIMD3<Float> in
                var d = SIMD3<Float>.zero
                for (i, w) in zip(nearest[v], weights[v]) { d += w * (moved[i] - origins[i]) }
                return d
            }
            var rounds = 0
            while rounds < maximumIterations,
                  MeshStretch(rest: local, frame: zip(local, displacement).map { $0 + $1 }, triangles: mesh.triangles).maximum > maximumStretch {
                for _ in 0..<10 {
                    displacement = displacement.indices.map { v in
                        let around = adjacency[v]
                        guard !around.isEmpty else { return displacement[v] }
                        let mean = around.reduce(SIMD3<Float>.zero) { $0 + displacement[$1] } / Float(around.count)
                        return 0.5 * displacement[v] + 0.5 * mean
                    }
                }
                rounds += 10
            }
            return object.moving(zip(local, displacement).map { $0 + $1 }, at: tau)
        }
    }

    /// Each vertex's mesh neighbours, with vertices at the same position (seams) counted as one:
    /// a vertex's list holds every vertex sharing an edge with any copy of it.
    static func weldedAdjacency(_ mesh: TriangleMesh) -> [[Int]] {
        let welded = MeshTopology.weldedIndices(mesh.positions)
        var around = [Set<Int>](repeating: [], count: mesh.vertexCount)
        for t in mesh.triangles {
            let corners = [Int(t.x), Int(t.y), Int(t.z)]
            for a in 0..<3 {
                for b in 0..<3 where a != b { around[welded[corners[a]]].insert(welded[corners[b]]) }
            }
        }
        // Every copy sees the welded vertex's neighbours (as their first copies), never itself.
        return welded.indices.map { v in around[welded[v]].filter { $0 != welded[v] }.sorted() }
    }
}

/// How much a deformed mesh stretches its edges: the ratio of each edge's length in a frame to its
/// length at rest (edges shorter than 1e-6 at rest are skipped). A mesh that tears shows edges
/// stretched many times over.
public struct MeshStretch: Sendable, Equatable {
    /// The largest ratio (or of its inverse, for edges that shrink).
    public var maximum: Float
    /// The share of edges whose ratio (or inverse) exceeds 1.5.
    public var overOneAndAHalf: Float

    public init(rest: [SIMD3<Float>], frame: [SIMD3<Float>], triangles: [SIMD3<UInt32>]) {
        precondition(rest.count == frame.count, "MeshStretch: the frame has \(frame.count) vertices, the rest pose \(rest.count)")
        var maximum: Float = 1, over = 0, edges = 0
        for t in triangles {
            for (a, b) in [(t.x, t.y), (t.y, t.z), (t.z, t.x)] {
                let r = rest[Int(a)] - rest[Int(b)], f = frame[Int(a)] - frame[Int(b)]
                let rl = (r * r).sum().squareRoot(), fl = (f * f).sum().squareRoot()
                guard rl > 1e-6 else { continue }
                let ratio = fl > 0 ? max(fl / rl, rl / fl) : .infinity
                maximum = max(maximum, ratio)
                edges += 1
                if ratio > 1.5 { over += 1 }
            }
        }
        self.maximum = maximum
        self.overOneAndAHalf = edges > 0 ? Float(over) / Float(edges) : 0
    }
}

extension DynamicGaussianScene {
    /// One orbit framing for a 4D run's turntables and sheet that keeps the object in view at
    /// every one of `times`: the run's own (`views`: the origin at `cameraDistance`) while 99% of
    /// the object stays inside the ball it frames, else the robust sphere (`OrbitFraming.robustSphere`) of the
    /// opaque Gaussians over all times, with 10% margin — a bounce that rises out of the ball is
    /// followed from further back, by the same camera at every time so the motion shows.
    public func orbitFraming(times: [Float], views: ViewSettings) -> (target: SIMD3<Float>, distance: Float) {
        var points: [SIMD3<Float>] = []
        for tau in times {
            let p = cloud(at: tau)
            for i in 0..<p.count where p.opacityLogits[i] > Float.log(0.05 / 0.95) {
                // The centre and 2σ of its largest axis outwards, so a Gaussian's visible body counts.
                let centre = SIMD3(p.means[3 * i], p.means[3 * i + 1], p.means[3 * i + 2])
                let reach = 2 * Float.exp(max(p.logScales[3 * i], p.logScales[3 * i + 1], p.logScales[3 * i + 2]))
                let length = (centre * centre).sum().squareRoot()
                points.append(length > 0 ? centre * (1 + min(reach, 1) / length) : centre)
            }
        }
        // The run's framing shows the object ball with 10% margin: keep it while 99% of the points stay in that.
        let distances = points.map { ($0 * $0).sum().squareRoot() }.sorted()
        if distances.isEmpty || distances[Int(Float(distances.count - 1) * 0.99)] <= 1.1 * views.objectRadius {
            return (.zero, views.cameraDistance)
        }
        let sphere = OrbitFraming.robustSphere(points)
        let distance = max(views.cameraDistance, sphere.radius * 1.1 / Float.sin(ViewSettings.fovYDegrees * .pi / 360))
        return (sphere.center, distance)
    }
}
