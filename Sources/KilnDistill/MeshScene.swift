import Foundation
import KilnCore
import KilnNN
import KilnRender

/// A mesh whose vertex colours are refined by score distillation (the second stage of Magic3D and
/// DreamGaussian): the geometry is fixed, the albedo per vertex is learned through the
/// differentiable mesh rasterizer, rendered the way the toy world is (Lambert + ambient from a
/// headlight, linear light, sRGB out, antialiased silhouettes), so that the exported colours are
/// what a viewer's lighting expects.
///
///     albedo = sigmoid(logits) (linear),  surface = albedo · (ambient + diffuse · max(0, n·l))
///     colour = sRGB(antialias(surface over the background))
public final class MeshScene: DistilledScene {
    public let mesh: TriangleMesh
    /// `[V, 3]` albedo logits.
    public let logits: Parameter
    let optimizer: Adam
    let normals: [Float]
    let topology: MeshTopology
    public var ambient: Float = 0.35
    public var diffuse: Float = 0.65
    public var lightDirectionCamera = normalize(SIMD3<Float>(0, -0.4, -1))
    let threads: Int

    /// Starts from the mesh's vertex colours (linear; grey where it has none).
    public init(mesh: TriangleMesh, learningRate: Double = 0.02, threads: Int = Parallel.defaultThreadCount) {
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
        self.threads = threads
    }

    /// `[V, 3]` linear albedo.
    public var albedo: [Float] { logits.value.storage.map { 1 / (1 + Foundation.exp(-$0)) } }

    /// The mesh with the refined vertex colours.
    public var refinedMesh: TriangleMesh {
        var m = mesh
        let a = albedo
        m.colors = (0..<mesh.vertexCount).map { SIMD4(a[3 * $0], a[3 * $0 + 1], a[3 * $0 + 2], 1) }
        return m
    }

    public struct Frame {
        var raster: MeshRaster<Float>
        var clip: [Float]
        var albedo: [Float]
        /// `[H, W, 4]` before antialiasing, and per-pixel shading (0 where empty).
        var rgba: [Float], shade: [Float]
        /// `[H, W, 4]` after antialiasing (linear).
        var antialiased: [Float]
    }

    /// Near and far planes around the mesh's bounding sphere for this camera.
    func depthRange(_ camera: Camera) -> (near: Float, far: Float) {
        let (lo, hi) = mesh.bounds!
        let center = (lo + hi) / 2, radius = max(1e-6, length(hi - lo) / 2)
        let distance = dot(center - camera.position, camera.forward)
        let far = max(distance + radius * 1.01, radius * 2e-3)
        return (max(distance - radius * 1.01, far * 1e-4), far)
    }

    func forward(camera: Camera, background: SIMD3<Float>) -> Frame {
        let w = camera.width, h = camera.height, pixels = w * h
        let (near, far) = depthRange(camera)
        let clip = camera.clipPositions(mesh.positions, near: near, far: far)
        let raster = MeshRasterizer.rasterize(clipPositions: clip, triangles: mesh.triangles, width: w, height: h, threads: threads)
        let a = albedo
        let base = MeshInterpolate.forward(a, channels: 3, triangles: mesh.triangles, raster: raster, threads: threads)
        let normal = MeshInterpolate.forward(normals, channels: 3, triangles: mesh.triangles, raster: raster, threads: threads)
        let rotation = camera.cameraFromWorld.upperLeft
        let bg = SIMD3(SRGB.decode(background.x), SRGB.decode(background.y), SRGB.decode(background.z))
        var rgba = [Float](repeating: 0, count: 4 * pixels), shade = [Float](repeating: 0, count: pixels)
        for p in 0..<pixels {
            guard raster.triangleIDs[p] >= 0 else {
                rgba[4 * p] = bg.x; rgba[4 * p + 1] = bg.y; rgba[4 * p + 2] = bg.z
                continue
            }
            var n = SIMD3(normal[3 * p], normal[3 * p + 1], normal[3 * p + 2])
            n = length(n) > 0 ? normalize(n) : n
            // Light the side facing the viewer (as MeshRenderer does).
            if dot(n, camera.ray(pixelX: p % w, pixelY: p / w).direction) > 0 { n = -n }
            let s = ambient + diffuse * max(0, dot(rotation * n, lightDirectionCamera))
            shade[p] = s
            for c in 0..<3 { rgba[4 * p + c] = base[3 * p + c] * s }
            rgba[4 * p + 3] = 1
        }
        let antialiased = MeshAntialias.forward(rgba, channels: 4, raster: raster, clipPositions: clip, triangles: mesh.triangles,
                                                topology: topology, threads: threads)
        return Frame(raster: raster, clip: clip, albedo: a, rgba: rgba, shade: shade, antialiased: antialiased)
    }

    static func display(_ frame: Frame) -> [Float] {
        let pixels = frame.antialiased.count / 4
        var color = [Float](repeating: 0, count: 3 * pixels)
        for p in 0..<pixels { for c in 0..<3 { color[3 * p + c] = SRGB.encode(min(1, max(0, frame.antialiased[4 * p + c]))) } }
        return color
    }

    public func render(camera: Camera, background: SIMD3<Float>, rng: inout RNG) -> (color: [Float], frame: Frame) {
        let frame = forward(camera: camera, background: background)
        return (Self.display(frame), frame)
    }

    public func preview(camera: Camera, background: SIMD3<Float>) -> [Float] { Self.display(forward(camera: camera, background: background)) }

    /// d sRGB(x)/dx of the encoding Kiln uses (IEC 61966-2-1).
    static func srgbDerivative(_ x: Float) -> Float {
        x <= 0.0031308 ? 12.92 : 1.055 / 2.4 * Foundation.pow(x, 1 / 2.4 - 1)
    }

    public func accumulate(_ frame: Frame, dColor: [Float]) {
        let pixels = frame.shade.count
        var dAntialiased = [Float](repeating: 0, count: 4 * pixels)
        for p in 0..<pixels {
            for c in 0..<3 {
                let x = frame.antialiased[4 * p + c]
                guard x > 0, x < 1 else { continue }  // clamped
                dAntialiased[4 * p + c] = dColor[3 * p + c] * Self.srgbDerivative(x)
            }
        }
        let dRGBA = MeshAntialias.backward(frame.rgba, channels: 4, raster: frame.raster, clipPositions: frame.clip, triangles: mesh.triangles,
                                           topology: topology, outputGradient: dAntialiased, threads: threads).color
        var dBase = [Float](repeating: 0, count: 3 * pixels)
        for p in 0..<pixels where frame.raster.triangleIDs[p] >= 0 {
            for c in 0..<3 { dBase[3 * p + c] = dRGBA[4 * p + c] * frame.shade[p] }
        }
        let dAlbedo = MeshInterpolate.backward(frame.albedo, channels: 3, triangles: mesh.triangles, raster: frame.raster,
                                               outputGradient: dBase, threads: threads).attributes
        logits.withUnsafeMutableGradient { g in
            for i in 0..<g.count {
                let a = frame.albedo[i]
                g[i] += dAlbedo[i] * a * (1 - a)
            }
        }
    }

    public var gradientIsFinite: Bool { logits.gradient.storage.allSatisfy(\.isFinite) }

    public func applyStep(step: Int, of steps: Int, rng: inout RNG) {
        optimizer.step()
        discardGradient()
    }

    public func discardGradient() { logits.zeroGradient() }

    public var size: Int { mesh.vertexCount }

    struct State: Codable { var adamStep: Int }

    public func checkpoint(into tensors: inout SafeTensorsWriter) throws -> Data {
        try tensors.add("albedo_logits", shape: logits.shape, values: logits.value.storage)
        try tensors.add("adam.m", shape: logits.shape, values: optimizer.firstMoments[0].storage)
        try tensors.add("adam.v", shape: logits.shape, values: optimizer.secondMoments[0].storage)
        return try JSONEncoder().encode(State(adamStep: optimizer.stepCount))
    }

    public func restore(tensors file: SafeTensorsFile, state data: Data) throws {
        let state = try JSONDecoder().decode(State.self, from: data)
        logits.load(Tensor(shape: logits.shape, storage: try file.expect("albedo_logits", shape: logits.shape)), name: "albedo_logits")
        optimizer.restore(stepCount: state.adamStep, firstMoments: [Tensor(shape: logits.shape, storage: try file.expect("adam.m", shape: logits.shape))],
                          secondMoments: [Tensor(shape: logits.shape, storage: try file.expect("adam.v", shape: logits.shape))])
        discardGradient()
    }
}
