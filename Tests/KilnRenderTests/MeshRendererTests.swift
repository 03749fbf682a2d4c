import Foundation
import KilnCore
import Testing
@testable import KilnRender

@Suite("Mesh renderer")
struct MeshRendererTests {
    static let flat = MeshRenderSettings(background: SIMD3(0, 0, 0), ambient: 1, diffuse: 0)

    @Test("a sphere's silhouette, depth and normal match the analytic sphere")
    func sphere() {
        let mesh = TriangleMesh.uvSphere(radius: 1, segments: 96, rings: 48)
        let distance: Float = 4
        let camera = Camera.orbit(azimuthDegrees: 0, elevationDegrees: 0, radius: distance, width: 64, height: 48, fovYRadians: 0.7)
        let view = MeshRenderer(mesh).render(camera: camera, settings: Self.flat)
        // The silhouette is a circle of radius f·r/√(d² − r²) pixels.
        let r = camera.fy * 1 / (distance * distance - 1).squareRoot()
        let area = view.alpha.pixels.reduce(0, +)
        #expect(abs(area - .pi * r * r) < 0.01 * .pi * r * r, "coverage \(area) vs disc \(Float.pi * r * r)")
        #expect(abs(view.mask.pixels.reduce(0, +) - .pi * r * r) < 0.02 * .pi * r * r)
        // Centre pixel: the nearest point, depth d − r, normal toward the camera (+Z).
        let p = 24 * 64 + 32
        #expect(abs(view.depth.pixels[p] - (distance - 1)) < 2e-3, "depth \(view.depth.pixels[p])")
        #expect(view.normal.pixels[3 * p + 2] > 0.99)
        // Flat white shading inside, black background outside.
        #expect(abs(view.color.pixels[3 * p] - 1) < 1e-6 && view.color.pixels[0] == 0)
        #expect(view.alpha.pixels.contains { $0 > 0.05 && $0 < 0.95 }, "antialiased silhouette pixels have fractional coverage: \(Set(view.alpha.pixels).sorted())")
        var hard = Self.flat
        hard.antialias = false
        #expect(MeshRenderer(mesh).render(camera: camera, settings: hard).alpha.pixels.allSatisfy { $0 == 0 || $0 == 1 })
    }

    @Test("Lambert shading falls off with the angle to the light")
    func lambert() {
        let mesh = TriangleMesh.uvSphere(radius: 1, segments: 64, rings: 32)
        let camera = Camera.orbit(azimuthDegrees: 0, elevationDegrees: 0, radius: 4, width: 48, height: 48, fovYRadians: 0.7)
        // Light from the camera (camera space −z points back at the eye).
        let settings = MeshRenderSettings(background: SIMD3(0, 0, 0), lightDirectionCamera: SIMD3(0, 0, -1), ambient: 0, diffuse: 1, antialias: false)
        let view = MeshRenderer(mesh).render(camera: camera, settings: settings)
        let centre = SRGB.decode(view.color[24, 24, 0])
        #expect(abs(centre - 1) < 0.01)
        // A pixel off centre: the linear value is the cosine between the normal and the light.
        let x = 24 + 6, y = 24
        let n = SIMD3(view.normal[x, y, 0], view.normal[x, y, 1], view.normal[x, y, 2])
        let toCamera = normalize(camera.position - SIMD3<Float>(0, 0, 0))
        #expect(abs(SRGB.decode(view.color[x, y, 0]) - dot(n, camera.forward * -1)) < 0.02)
        #expect(dot(n, toCamera) < 0.99 && SRGB.decode(view.color[x, y, 0]) < centre)
    }

    @Test("textures map with glTF's bottom-left UV origin, in linear light")
    func texture() {
        // A unit quad facing +Z, UV (0, 0) at its bottom-left corner.
        var quad = TriangleMesh(positions: [SIMD3(-1, -1, 0), SIMD3(1, -1, 0), SIMD3(1, 1, 0), SIMD3(-1, 1, 0)],
                                uvs: [SIMD2(0, 0), SIMD2(1, 0), SIMD2(1, 1), SIMD2(0, 1)],
                                triangles: [SIMD3(0, 1, 2), SIMD3(0, 2, 3)])
        // Row 0 (top): red, green; row 1 (bottom): blue, mid-grey.
        let texture = Image(width: 2, height: 2, channels: 3, pixels: [1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5, 0.5, 0.5])
        quad.material.baseColorTexture = texture
        let camera = Camera.lookAt(eye: SIMD3(0, 0, 3), target: .zero, width: 40, height: 40, fovYRadians: 0.9)
        let halfSize = camera.fy / 3  // the quad spans ±f/3 pixels around the centre
        // Expected bilinear value (linear light) at pixel (x, y): texel coordinates from the UV,
        // clamped to the 2×2 grid (the pixels below stay within it), weights by distance.
        func bilinear(_ x: Int, _ y: Int) -> SIMD3<Float> {
            let u = 0.5 + (Float(x) + 0.5 - 20) / (2 * halfSize), v = 0.5 - (Float(y) + 0.5 - 20) / (2 * halfSize)
            let sx = u * 2 - 0.5, sy = (1 - v) * 2 - 0.5
            var sum = SIMD3<Float>.zero
            for ty in 0..<2 { for tx in 0..<2 {
                let w = max(0, 1 - abs(sx - Float(tx))) * max(0, 1 - abs(sy - Float(ty)))
                sum += w * SIMD3(SRGB.decode(texture[tx, ty, 0]), SRGB.decode(texture[tx, ty, 1]), SRGB.decode(texture[tx, ty, 2]))
            }}
            return sum
        }
        let q = Int(halfSize / 2)
        let expect: [(Int, Int, SIMD3<Float>)] = [(20 - q, 20 - q, SIMD3(1, 0, 0)), (20 + q, 20 - q, SIMD3(0, 1, 0)),
                                                  (20 - q, 20 + q, SIMD3(0, 0, 1)), (20 + q, 20 + q, SIMD3(0.5, 0.5, 0.5))]
        for filter in [TextureFilter.nearest, .bilinear, .trilinear] {
            var settings = Self.flat
            settings.textureFilter = filter
            let view = MeshRenderer(quad).render(camera: camera, settings: settings)
            for (x, y, rgb) in expect {
                let got = SIMD3(view.color[x, y, 0], view.color[x, y, 1], view.color[x, y, 2])
                // Nearest returns the texel (sRGB in, sRGB out); bilinear blends in linear light.
                let linear = SIMD3(SRGB.decode(got.x), SRGB.decode(got.y), SRGB.decode(got.z))
                let diff: SIMD3<Float> = filter == .nearest ? got - rgb : linear - bilinear(x, y)
                #expect(max(abs(diff.x), abs(diff.y), abs(diff.z)) < 2e-3, "\(filter) at \(x),\(y): \(got)")
            }
        }
    }

    @Test("renders are identical for any thread count")
    func deterministic() {
        let mesh = TriangleMesh.merged([TriangleMesh.uvSphere(radius: 1), TriangleMesh.box(center: SIMD3(0.8, 0.5, 0), size: SIMD3(0.6, 0.6, 0.6))])
        let camera = Camera.orbit(azimuthDegrees: 35, elevationDegrees: 20, radius: 4, width: 40, height: 30, fovYRadians: 0.8)
        let renderer = MeshRenderer(mesh)
        let one = renderer.render(camera: camera, threads: 1)
        let two = renderer.render(camera: camera, threads: 2)
        #expect(one.color == two.color && one.depth == two.depth && one.alpha == two.alpha)
    }
}
