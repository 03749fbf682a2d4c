import Foundation
import KilnCore
import Testing
@testable import KilnRender

@Suite("Mesh shading (Lambert + ambient, composite)")
struct MeshShadingTests {
    /// A raster with a random mix of covered and empty pixels, random base colours (alpha partly
    /// outside [0, 1], where it clamps) and random normals of any length.
    struct Case {
        var raster: MeshRaster<Float>
        var camera: Camera
        var base: [Float], normals: [Float]
        var light = MeshShading.Light(directionCamera: normalize(SIMD3(-0.4, -0.6, -1)), ambient: 0.3, diffuse: 0.7)
        var background = SIMD3<Float>(0.2, 0.5, 0.9)

        init(channels: Int, seed: UInt64, size: Int = 12) {
            var rng = RNG(seed: seed)
            camera = Camera.orbit(azimuthDegrees: rng.uniform(0...360), elevationDegrees: rng.uniform(-30...40), radius: 3, width: size, height: size,
                                  fovYRadians: 0.9)
            raster = MeshRaster(width: size, height: size)
            for p in 0..<(size * size) where rng.uniform(0...1) < 0.8 { raster.triangleIDs[p] = Int32(p % 5) }
            base = (0..<(channels * size * size)).map { i in channels == 4 && i % 4 == 3 ? rng.uniform(-0.3...1.3) : rng.uniform(0...1) }
            normals = (0..<(3 * size * size)).map { _ in rng.uniform(-1.5...1.5) }
        }

        func forward(base: [Float], normals: [Float], channels: Int) -> MeshShading.Output {
            MeshShading.forward(base: base, channels: channels, normals: normals, raster: raster, camera: camera, light: light, background: background)
        }
    }

    @Test("forward: the formula at every pixel; the background and zero alpha where empty", arguments: [3, 4])
    func forward(channels: Int) {
        let c = Case(channels: channels, seed: 1)
        let out = c.forward(base: c.base, normals: c.normals, channels: channels)
        let rotation = c.camera.cameraFromWorld.upperLeft
        var worst: Float = 0
        for p in 0..<(c.raster.width * c.raster.height) {
            guard c.raster.triangleIDs[p] >= 0 else {
                #expect(Array(out.rgba[(4 * p)..<(4 * p + 4)]) == [c.background.x, c.background.y, c.background.z, 0])
                continue
            }
            var n = normalize(SIMD3(c.normals[3 * p], c.normals[3 * p + 1], c.normals[3 * p + 2]))
            let ray = c.camera.ray(pixelX: p % c.raster.width, pixelY: p / c.raster.width).direction
            if dot(n, ray) > 0 { n = -n }
            #expect(dot(n, ray) <= 0, "the normal faces the viewer")
            let s = c.light.ambient + c.light.diffuse * max(0, dot(rotation * n, c.light.directionCamera))
            let a = channels == 4 ? min(1, max(0, c.base[4 * p + 3])) : 1
            for k in 0..<3 {
                let expected = c.base[channels * p + k] * s * a + c.background[k] * (1 - a)
                worst = max(worst, abs(out.rgba[4 * p + k] - expected))
            }
            #expect(out.rgba[4 * p + 3] == 1)
        }
        #expect(worst < 1e-6, "worst error \(worst)")
    }

    @Test("backward: base colour and normal gradients match central differences", arguments: [3, 4])
    func gradients(channels: Int) {
        let c = Case(channels: channels, seed: 2)
        let pixels = c.raster.width * c.raster.height
        var rng = RNG(seed: 3)
        let weights = rng.uniforms(count: 4 * pixels, in: -1...1)
        func loss(_ base: [Float], _ normals: [Float]) -> Double {
            zip(c.forward(base: base, normals: normals, channels: channels).rgba, weights).map { Double($0) * Double($1) }.reduce(0, +)
        }
        let out = c.forward(base: c.base, normals: c.normals, channels: channels)
        let (dBase, dNormals) = MeshShading.backward(out, base: c.base, channels: channels, normals: c.normals, raster: c.raster, camera: c.camera,
                                                     light: c.light, background: c.background, outputGradient: weights, normalGradient: true)
        let rotation = c.camera.cameraFromWorld.upperLeft
        /// A pixel whose Lambert term or facing test sits on its kink: differences there are not slopes.
        func nearKink(_ p: Int) -> Bool {
            let n = normalize(SIMD3(c.normals[3 * p], c.normals[3 * p + 1], c.normals[3 * p + 2]))
            let ray = c.camera.ray(pixelX: p % c.raster.width, pixelY: p / c.raster.width).direction
            return abs(dot(n, ray)) < 0.05 || abs(dot(rotation * n, c.light.directionCamera)) < 0.05
        }
        func central(_ value: (Float) -> Double, _ x: Float, _ h: Float) -> Double { (value(x + h) - value(x - h)) / Double(2 * h) }
        var checked = 0
        for p in 0..<pixels where c.raster.triangleIDs[p] >= 0 && !nearKink(p) {
            for k in 0..<channels {
                let i = channels * p + k
                if k == 3, abs(c.base[i]) < 0.03 || abs(c.base[i] - 1) < 0.03 { continue }  // the alpha clamp's kinks
                let numeric = central({ x in var b = c.base; b[i] = x; return loss(b, c.normals) }, c.base[i], 1e-2)
                #expect(abs(numeric - Double(dBase[i])) < 0.01 * abs(numeric) + 1e-4, "base[\(i)]: \(numeric) vs \(dBase[i])")
                checked += 1
            }
            for k in 0..<3 {
                let i = 3 * p + k
                let value = { (x: Float) -> Double in var n = c.normals; n[i] = x; return loss(c.base, n) }
                let numeric = (4 * central(value, c.normals[i], 2e-3) - central(value, c.normals[i], 4e-3)) / 3
                #expect(abs(numeric - Double(dNormals![i])) < 0.01 * abs(numeric) + 1e-4, "normals[\(i)]: \(numeric) vs \(dNormals![i])")
                checked += 1
            }
        }
        #expect(checked > 50 * (channels + 3), "checked \(checked) values")
        #expect(MeshShading.backward(out, base: c.base, channels: channels, normals: c.normals, raster: c.raster, camera: c.camera, light: c.light,
                                     background: c.background, outputGradient: weights, normalGradient: false).normals == nil)
    }
}
