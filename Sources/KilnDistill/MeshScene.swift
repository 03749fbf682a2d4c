import Foundation
import KilnCore
import KilnNN
import KilnRender

/// Vertex offsets refined beside the colours (Magic3D's fine stage moves the surface as well).
public struct MeshOffsetSettings: Sendable, Equatable {
    /// Adam's step on the offsets, in world units.
    public var learningRate: Double
    /// Weight w of the uniform Laplacian term w·Σ|δ_i − mean of the neighbours' δ|² added each step.
    public var smoothness: Float
    /// λ of the gradient smoothing (I + λL)⁻¹ applied to the offsets' gradient before Adam
    /// (`UniformLaplacian.smoothed`); 0 turns it off.
    public var gradientSmoothing: Float

    public init(learningRate: Double = 0.002, smoothness: Float = 10, gradientSmoothing: Float = 0) {
        self.learningRate = learningRate
        self.smoothness = smoothness
        self.gradientSmoothing = gradientSmoothing
    }

    /// Jacobi iterations of the gradient smoothing.
    static let smoothingIterations = 60
}

/// A mesh refined by score distillation (the second stage of Magic3D and DreamGaussian): the
/// albedo per vertex is learned through the differentiable mesh rasterizer, and optionally a
/// smooth offset per vertex. It is rendered the way the toy world is (`MeshShading`'s Lambert +
/// ambient from a headlight, linear light, sRGB out, antialiased silhouettes), so that the
/// exported colours are what a viewer's lighting expects.
///
///     albedo = sigmoid(logits) (linear),  surface = albedo · (ambient + diffuse · max(0, n·l))
///     colour = sRGB(antialias(surface over the background))
///
/// With offsets, positions are p + δ (δ shared by vertices at the same position, so seams stay
/// closed), the normals n are `VertexNormals` of the moved mesh, and gradients reach δ through the
/// silhouettes (antialias), the barycentrics (rasterize) and the shading (normals).
public final class MeshScene: DistilledScene {
    public let mesh: TriangleMesh
    /// `[V, 3]` albedo logits.
    public let logits: Parameter
    let optimizer: Adam
    /// `[U, 3]` offsets of the welded vertices, when geometry is refined.
    public let offsets: Parameter?
    let offsetOptimizer: Adam?
    public let offsetSettings: MeshOffsetSettings?
    /// Vertex → welded vertex (vertices with bit-identical positions share one).
    let welded: [Int]
    let weldedTriangles: [SIMD3<UInt32>]
    /// `[U, 3]` welded positions before offsets.
    let basePositions: [Float]
    let laplacian: UniformLaplacian?
    /// `[V, 3]` the normals used when the geometry is fixed.
    let normals: [Float]
    let topology: MeshTopology
    public var ambient: Float = 0.35
    public var diffuse: Float = 0.65
    public var lightDirectionCamera = normalize(SIMD3<Float>(0, -0.4, -1))
    let threads: Int

    /// The scene's light for `MeshShading`.
    var light: MeshShading.Light { MeshShading.Light(directionCamera: lightDirectionCamera, ambient: ambient, diffuse: diffuse) }

    /// Starts from the mesh's vertex colours (linear; grey where it has none), and with
    /// `offsetSettings` from zero offsets.
    public init(mesh: TriangleMesh, learningRate: Double = 0.02, offsets offsetSettings: MeshOffsetSettings? = nil,
                threads: Int = Parallel.defaultThreadCount) {
        precondition(mesh.validationFailure() == nil && mesh.vertexCount > 0, "MeshScene needs a valid, non-empty mesh")
        self.mesh = mesh
        let start = (0..<mesh.vertexCount).flatMap { i -> [Float] in
            let c = mesh.colors.isEmpty ? SIMD4<Float>(0.5, 0.5, 0.5, 1) : mesh.colors[i]
            return [c.x, c.y, c.z].map { v in let p = min(0.98, max(0.02, v)); return Foundation.log(p / (1 - p)) }
        }
        logits = Parameter(Tensor(shape: [mesh.vertexCount, 3], storage: start))
        optimizer = Adam(parameters: [logits], configuration: .adam(learningRate: learningRate))
        let n = mesh.normals.count == mesh.vertexCount ? mesh.normals : mesh.computedVertexNormals()
        normals = n.flatMap { [$0.x, $0.y, $0.z] }
        topology = MeshTopology(triangles: mesh.triangles, positions: mesh.positions)
        // Welded vertices numbered in order of first appearance, as `MeshTopology` welds them.
        var compact: [Int: Int] = [:]
        var base: [Float] = []
        let welded = MeshTopology.weldedIndices(mesh.positions).map { first in
            if let j = compact[first] { return j }
            let p = mesh.positions[first]
            compact[first] = base.count / 3
            base += [p.x, p.y, p.z]
            return base.count / 3 - 1
        }
        self.welded = welded
        basePositions = base
        weldedTriangles = mesh.triangles.map { t in SIMD3(UInt32(welded[Int(t.x)]), UInt32(welded[Int(t.y)]), UInt32(welded[Int(t.z)])) }
        self.offsetSettings = offsetSettings
        if let offsetSettings {
            let p = Parameter(Tensor(shape: [base.count / 3, 3], storage: [Float](repeating: 0, count: base.count)))
            offsets = p
            offsetOptimizer = Adam(parameters: [p], configuration: .adam(learningRate: offsetSettings.learningRate))
            laplacian = UniformLaplacian(triangles: weldedTriangles, vertexCount: base.count / 3)
        } else {
            offsets = nil
            offsetOptimizer = nil
            laplacian = nil
        }
        self.threads = threads
    }

    /// `[V, 3]` linear albedo.
    public var albedo: [Float] { logits.value.storage.map { 1 / (1 + Foundation.exp(-$0)) } }

    /// `[U, 3]` welded positions with the offsets applied.
    var weldedPositions: [Float] {
        guard let offsets else { return basePositions }
        return zip(basePositions, offsets.value.storage).map { $0 + $1 }
    }

    /// The mesh with the refined vertex colours (and, with offsets, the moved vertices and their normals).
    public var refinedMesh: TriangleMesh {
        var m = mesh
        let a = albedo
        m.colors = (0..<mesh.vertexCount).map { SIMD4(a[3 * $0], a[3 * $0 + 1], a[3 * $0 + 2], 1) }
        if offsets != nil {
            let p = weldedPositions
            let n = VertexNormals.forward(positions: p, triangles: weldedTriangles).normals
            m.positions = welded.map { SIMD3(p[3 * $0], p[3 * $0 + 1], p[3 * $0 + 2]) }
            m.normals = welded.map { SIMD3(n[3 * $0], n[3 * $0 + 1], n[3 * $0 + 2]) }
        }
        return m
    }

    /// The Laplacian smoothness energy of the current offsets (0 without offsets).
    public var smoothnessEnergy: Float {
        guard let offsets, let laplacian, let offsetSettings else { return 0 }
        return laplacian.energy(offsets.value.storage, weight: offsetSettings.smoothness)
    }

    public struct Frame {
        var raster: MeshRaster<Float>
        var clip: [Float]
        var albedo: [Float]
        var camera: Camera
        /// Linear RGB behind the mesh.
        var background: SIMD3<Float>
        /// `[H, W, 3]` interpolated albedo and (unnormalised) normals.
        var base: [Float], pixelNormals: [Float]
        /// `MeshShading`'s output: `[H, W, 4]` before antialiasing, per-pixel shading and flips.
        var shaded: MeshShading.Output
        /// `[H, W, 4]` after antialiasing (linear).
        var antialiased: [Float]
        /// With offsets: what the position gradient needs.
        var geometry: Geometry?
    }

    struct Geometry {
        var clipFromWorld: Mat4
        /// `[U, 3]` welded positions and their normal sums; `[V, 3]` vertex normals.
        var weldedPositions: [Float], normalSums: [Float], vertexNormals: [Float]
    }

    /// Near and far planes around the mesh's bounding sphere for this camera.
    static func depthRange(_ positions: [SIMD3<Float>], _ camera: Camera) -> (near: Float, far: Float) {
        var lo = positions[0], hi = positions[0]
        for p in positions { lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p) }
        let center = (lo + hi) / 2, radius = max(1e-6, length(hi - lo) / 2)
        let distance = dot(center - camera.position, camera.forward)
        let far = max(distance + radius * 1.01, radius * 2e-3)
        return (max(distance - radius * 1.01, far * 1e-4), far)
    }

    func forward(camera: Camera, background: SIMD3<Float>) -> Frame {
        let w = camera.width, h = camera.height
        let weldedP = weldedPositions
        let positions = offsets == nil ? mesh.positions : welded.map { SIMD3(weldedP[3 * $0], weldedP[3 * $0 + 1], weldedP[3 * $0 + 2]) }
        var vertexNormals = normals, sums: [Float] = []
        if offsets != nil {
            let (n, s) = VertexNormals.forward(positions: weldedP, triangles: weldedTriangles)
            sums = s
            vertexNormals = welded.flatMap { [n[3 * $0], n[3 * $0 + 1], n[3 * $0 + 2]] }
        }
        let (near, far) = Self.depthRange(positions, camera)
        let clipFromWorld = camera.clipFromWorld(near: near, far: far)
        let clip = camera.clipPositions(positions, near: near, far: far)
        let raster = MeshRasterizer.rasterize(clipPositions: clip, triangles: mesh.triangles, width: w, height: h, threads: threads)
        let a = albedo
        let base = MeshInterpolate.forward(a, channels: 3, triangles: mesh.triangles, raster: raster, threads: threads)
        let normal = MeshInterpolate.forward(vertexNormals, channels: 3, triangles: mesh.triangles, raster: raster, threads: threads)
        let bg = SRGB.decode(background)
        let shaded = MeshShading.forward(base: base, channels: 3, normals: normal, raster: raster, camera: camera, light: light, background: bg)
        let antialiased = MeshAntialias.forward(shaded.rgba, channels: 4, raster: raster, clipPositions: clip, triangles: mesh.triangles,
                                                topology: topology, threads: threads)
        let geometry = offsets == nil ? nil
            : Geometry(clipFromWorld: clipFromWorld, weldedPositions: weldedP, normalSums: sums, vertexNormals: vertexNormals)
        return Frame(raster: raster, clip: clip, albedo: a, camera: camera, background: bg, base: base, pixelNormals: normal, shaded: shaded,
                     antialiased: antialiased, geometry: geometry)
    }

    static func display(_ frame: Frame) -> [Float] {
        let pixels = frame.antialiased.count / 4
        var color = [Float](repeating: 0, count: 3 * pixels)
        for p in 0..<pixels { for c in 0..<3 { color[3 * p + c] = SRGB.encode(min(1, max(0, frame.antialiased[4 * p + c]))) } }
        return color
    }

    public func render(camera: Camera, time: Float?, step: Int, of steps: Int, background: SIMD3<Float>, rng: inout RNG) -> (color: [Float], frame: Frame) {
        let frame = forward(camera: camera, background: background)
        return (Self.display(frame), frame)
    }

    public func preview(camera: Camera, time: Float?, background: SIMD3<Float>) -> [Float] { Self.display(forward(camera: camera, background: background)) }

    /// d sRGB(x)/dx of the encoding Kiln uses (IEC 61966-2-1).
    static func srgbDerivative(_ x: Float) -> Float {
        x <= 0.0031308 ? 12.92 : 1.055 / 2.4 * Foundation.pow(x, 1 / 2.4 - 1)
    }

    public func accumulate(_ frame: Frame, dColor: [Float]) {
        let pixels = frame.raster.width * frame.raster.height
        var dAntialiased = [Float](repeating: 0, count: 4 * pixels)
        for p in 0..<pixels {
            for c in 0..<3 {
                let x = frame.antialiased[4 * p + c]
                guard x > 0, x < 1 else { continue }  // clamped
                dAntialiased[4 * p + c] = dColor[3 * p + c] * Self.srgbDerivative(x)
            }
        }
        let (dRGBA, dClipSilhouette) = MeshAntialias.backward(frame.shaded.rgba, channels: 4, raster: frame.raster, clipPositions: frame.clip,
                                                              triangles: mesh.triangles, topology: topology, outputGradient: dAntialiased,
                                                              threads: threads)
        let (dBase, dPixelNormals) = MeshShading.backward(frame.shaded, base: frame.base, channels: 3, normals: frame.pixelNormals, raster: frame.raster,
                                                          camera: frame.camera, light: light, background: frame.background, outputGradient: dRGBA,
                                                          normalGradient: frame.geometry != nil)
        let (dAlbedo, dBarycentrics) = MeshInterpolate.backward(frame.albedo, channels: 3, triangles: mesh.triangles, raster: frame.raster,
                                                                outputGradient: dBase, threads: threads)
        logits.withUnsafeMutableGradient { g in
            for i in 0..<g.count {
                let a = frame.albedo[i]
                g[i] += dAlbedo[i] * a * (1 - a)
            }
        }
        if let geometry = frame.geometry, let offsets, let dPixelNormals {
            accumulateOffsets(frame, geometry, offsets, dPixelNormals: dPixelNormals, dBarycentrics: dBarycentrics, dClipSilhouette: dClipSilhouette)
        }
    }

    /// The offsets' share of `accumulate`: shading (`dPixelNormals`, from `MeshShading.backward`) →
    /// vertex normals → positions, and barycentrics (rasterize) plus silhouettes (antialias) → clip
    /// positions → positions.
    func accumulateOffsets(_ frame: Frame, _ geometry: Geometry, _ offsets: Parameter, dPixelNormals: [Float], dBarycentrics: [Float],
                           dClipSilhouette: [Float]) {
        let (dVertexNormals, dNormalBarycentrics) = MeshInterpolate.backward(geometry.vertexNormals, channels: 3, triangles: mesh.triangles,
                                                                             raster: frame.raster, outputGradient: dPixelNormals, threads: threads)
        let dBary = zip(dBarycentrics, dNormalBarycentrics).map { $0 + $1 }
        let dClipRaster = MeshRasterizer.rasterizeBackward(frame.raster, clipPositions: frame.clip, triangles: mesh.triangles,
                                                           barycentricGradient: dBary, threads: threads)
        let m = geometry.clipFromWorld
        var dWelded = [Float](repeating: 0, count: basePositions.count)
        var dWeldedNormals = [Float](repeating: 0, count: basePositions.count)
        for (i, u) in welded.enumerated() {
            let dc = SIMD4(dClipRaster[4 * i] + dClipSilhouette[4 * i], dClipRaster[4 * i + 1] + dClipSilhouette[4 * i + 1],
                           dClipRaster[4 * i + 2] + dClipSilhouette[4 * i + 2], dClipRaster[4 * i + 3] + dClipSilhouette[4 * i + 3])
            for k in 0..<3 {
                dWelded[3 * u + k] += m[row: 0, column: k] * dc.x + m[row: 1, column: k] * dc.y + m[row: 2, column: k] * dc.z + m[row: 3, column: k] * dc.w
                dWeldedNormals[3 * u + k] += dVertexNormals[3 * i + k]
            }
        }
        let dFromNormals = VertexNormals.backward(positions: geometry.weldedPositions, triangles: weldedTriangles, sums: geometry.normalSums,
                                                  normalGradient: dWeldedNormals)
        offsets.withUnsafeMutableGradient { g in
            for i in 0..<g.count { g[i] += dWelded[i] + dFromNormals[i] }
        }
    }

    public var gradientIsFinite: Bool {
        logits.gradient.storage.allSatisfy(\.isFinite) && (offsets?.gradient.storage.allSatisfy(\.isFinite) ?? true)
    }

    /// Steps the colours, and the offsets with the smoothness term's gradient added to theirs (and
    /// the sum smoothed, with `gradientSmoothing`).
    public func applyStep(step: Int, of steps: Int, rng: inout RNG) {
        optimizer.step()
        if let offsets, let offsetOptimizer, let laplacian, let offsetSettings {
            let g = laplacian.gradient(offsets.value.storage, weight: offsetSettings.smoothness)
            offsets.withUnsafeMutableGradient { for i in 0..<$0.count { $0[i] += g[i] } }
            if offsetSettings.gradientSmoothing > 0 {
                let smoothed = laplacian.smoothed(offsets.gradient.storage, lambda: offsetSettings.gradientSmoothing,
                                                  iterations: MeshOffsetSettings.smoothingIterations)
                offsets.withUnsafeMutableGradient { for i in 0..<$0.count { $0[i] = smoothed[i] } }
            }
            offsetOptimizer.step()
        }
        discardGradient()
    }

    public func discardGradient() {
        logits.zeroGradient()
        offsets?.zeroGradient()
    }

    public var size: Int { mesh.vertexCount }

    struct State: Codable {
        var adamStep: Int
        var offsetAdamStep: Int?
    }

    public func checkpoint(into tensors: inout SafeTensorsWriter) throws -> Data {
        try tensors.add("albedo_logits", shape: logits.shape, values: logits.value.storage)
        try tensors.add("adam.m", shape: logits.shape, values: optimizer.firstMoments[0].storage)
        try tensors.add("adam.v", shape: logits.shape, values: optimizer.secondMoments[0].storage)
        if let offsets, let offsetOptimizer {
            try tensors.add("offsets", shape: offsets.shape, values: offsets.value.storage)
            try tensors.add("offsets.adam.m", shape: offsets.shape, values: offsetOptimizer.firstMoments[0].storage)
            try tensors.add("offsets.adam.v", shape: offsets.shape, values: offsetOptimizer.secondMoments[0].storage)
        }
        return try JSONEncoder().encode(State(adamStep: optimizer.stepCount, offsetAdamStep: offsetOptimizer?.stepCount))
    }

    public func restore(tensors file: SafeTensorsFile, state data: Data) throws {
        let state = try JSONDecoder().decode(State.self, from: data)
        guard (state.offsetAdamStep != nil) == (offsets != nil) else {
            throw SafeTensorsError.invalidTensor(name: "offsets", reason: offsets == nil
                ? "the checkpoint refines vertex offsets and this run does not; resume with the run's own config.json"
                : "the checkpoint has no vertex offsets and this run refines them; resume with the run's own config.json")
        }
        logits.load(Tensor(shape: logits.shape, storage: try file.expect("albedo_logits", shape: logits.shape)), name: "albedo_logits")
        optimizer.restore(stepCount: state.adamStep, firstMoments: [Tensor(shape: logits.shape, storage: try file.expect("adam.m", shape: logits.shape))],
                          secondMoments: [Tensor(shape: logits.shape, storage: try file.expect("adam.v", shape: logits.shape))])
        if let offsets, let offsetOptimizer, let step = state.offsetAdamStep {
            offsets.load(Tensor(shape: offsets.shape, storage: try file.expect("offsets", shape: offsets.shape)), name: "offsets")
            offsetOptimizer.restore(stepCount: step, firstMoments: [Tensor(shape: offsets.shape, storage: try file.expect("offsets.adam.m", shape: offsets.shape))],
                                    secondMoments: [Tensor(shape: offsets.shape, storage: try file.expect("offsets.adam.v", shape: offsets.shape))])
        }
        discardGradient()
    }
}
