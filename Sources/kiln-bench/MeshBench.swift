import Foundation
import KilnCore
import KilnRender

/// A bumpy sphere of about `triangles` faces filling most of a `size`² view: the kind of mesh that
/// marching cubes hands to the refinement stage.
func meshBenchScene(triangles: Int, size: Int) -> (clip: [Float], mesh: TriangleMesh) {
    let segments = Int((Double(triangles) / 2).squareRoot() * 1.414)
    var mesh = TriangleMesh.uvSphere(radius: 1, segments: segments, rings: max(3, triangles / (2 * segments) + 1))
    mesh.positions = mesh.positions.map { (p: SIMD3<Float>) -> SIMD3<Float> in
        let bump: Float = sin(7 * p.x) * sin(5 * p.y + 1) * sin(6 * p.z + 2)
        return p * (1 + 0.08 * bump)
    }
    let camera = Camera.orbit(azimuthDegrees: 30, elevationDegrees: 20, radius: 3, width: size, height: size, fovYRadians: 0.8)
    return (camera.clipPositions(mesh.positions, near: 0.1, far: 10), mesh)
}

func benchMesh(quick: Bool) {
    print("Mesh rasterizer, median ms (\(Parallel.defaultThreadCount) threads by default)")
    print("| size | faces | threads | rasterize + interpolate | backward (interpolate + rasterize) | antialias fwd | antialias bwd |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in quick ? [256] : [256, 512] {
        for faces in quick ? [20_000] : [20_000, 100_000] {
            let (clip, mesh) = meshBenchScene(triangles: faces, size: size)
            let normals = mesh.computedVertexNormals().flatMap { [$0.x, $0.y, $0.z] }
            let topology = MeshTopology(triangles: mesh.triangles, positions: mesh.positions)
            var rng = RNG(seed: 3)
            let dOut = (0..<(3 * size * size)).map { _ in rng.uniform(-1...1) }
            for threads in [1, 2] {
                var raster = MeshRasterizer.rasterize(clipPositions: clip, triangles: mesh.triangles, width: size, height: size, threads: threads)
                var shaded: [Float] = []
                let forward = median(runs: 9) {
                    raster = MeshRasterizer.rasterize(clipPositions: clip, triangles: mesh.triangles, width: size, height: size, threads: threads)
                    shaded = MeshInterpolate.forward(normals, channels: 3, triangles: mesh.triangles, raster: raster, threads: threads)
                }
                let backward = median(runs: 9) {
                    let g = MeshInterpolate.backward(normals, channels: 3, triangles: mesh.triangles, raster: raster, outputGradient: dOut, threads: threads)
                    _ = MeshRasterizer.rasterizeBackward(raster, clipPositions: clip, triangles: mesh.triangles, barycentricGradient: g.barycentrics, threads: threads)
                }
                let aaForward = median(runs: 9) {
                    _ = MeshAntialias.forward(shaded, channels: 3, raster: raster, clipPositions: clip, triangles: mesh.triangles, topology: topology, threads: threads)
                }
                let aaBackward = median(runs: 9) {
                    _ = MeshAntialias.backward(shaded, channels: 3, raster: raster, clipPositions: clip, triangles: mesh.triangles, topology: topology,
                                               outputGradient: dOut, threads: threads)
                }
                print(String(format: "| %d² | %d | %d | %.2f | %.2f | %.2f | %.2f |", size, mesh.triangleCount, threads, forward, backward, aaForward, aaBackward))
            }
        }
    }
}
