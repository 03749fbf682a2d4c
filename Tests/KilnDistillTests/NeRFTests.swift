import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender
import KilnToyWorld
import Testing
@testable import KilnDistill

@Suite("NeRF field and renderer")
struct NeRFTests {
    static func field(seed: UInt64 = 1, blobDensity: Float = 2, blobRadius: Float = 0.5) -> NeRFField {
        var rng = RNG(seed: seed)
        let field = NeRFField(grid: HashGrid(levels: 4, featuresPerLevel: 2, log2TableSize: 10, baseResolution: 4, maxResolution: 32), width: 16,
                              blobDensity: blobDensity, blobRadius: blobRadius, rng: &rng)
        // Larger table values than the ±1e-4 start, so every parameter matters.
        field.table.load(Tensor(shape: field.table.shape, storage: rng.uniforms(count: field.table.value.count, in: -1...1)))
        return field
    }

    static let camera = Camera.orbit(azimuthDegrees: 30, elevationDegrees: 20, radius: 2, width: 8, height: 8, fovYRadians: 0.7)

    @Test("the render's gradient matches central differences for table entries and MLP weights")
    func gradients() {
        let field = Self.field()
        let renderer = NeRFRenderer(samplesPerRay: 16)
        var rng = RNG(seed: 2)
        let weights = rng.uniforms(count: 8 * 8 * 3, in: -1...1)
        func loss() -> Double {
            let frame = renderer.render(field, camera: Self.camera, background: SIMD3(0.2, 0.4, 0.6), occupancy: nil)
            return zip(frame.color, weights).map { Double($0) * Double($1) }.reduce(0, +)
        }
        let frame = renderer.render(field, camera: Self.camera, background: SIMD3(0.2, 0.4, 0.6), occupancy: nil)
        field.zeroGradients()
        renderer.backward(frame, field: field, dColor: weights)
        var checked = 0
        for (name, p) in field.namedParameters {
            let g = p.gradient.storage
            // The entries with the largest gradients: well above float32 noise.
            let order = g.indices.sorted { abs(g[$0]) > abs(g[$1]) }.prefix(3)
            for k in order {
                let original = p.value.storage[k]
                func set(_ v: Float) { p.withUnsafeMutableValue { $0[k] = v } }
                func central(_ h: Float) -> Double {
                    set(original + h); let up = loss()
                    set(original - h); let down = loss()
                    set(original)
                    return (up - down) / Double(2 * h)
                }
                // Richardson: (4·D(h/2) − D(h))/3 cancels the h² term of central differences.
                let numeric = (4 * central(5e-3) - central(1e-2)) / 3
                #expect(abs(numeric - Double(g[k])) < 0.02 * abs(numeric) + 1e-3, "\(name)[\(k)]: \(numeric) vs \(g[k])")
                checked += 1
            }
        }
        #expect(checked == 15)
    }

    @Test("the blocked field passes (threads, blocks of rows, recomputed activations) equal the plain reference through Linear layers")
    func blockedEqualsReference() {
        for (n, threads) in [(1, 1), (777, 2), (2 * NeRFField.blockRows + 5, 2), (3000, 3)] {
            let field = Self.field(seed: UInt64(n))
            var rng = RNG(seed: 5)
            let points = rng.uniforms(count: 3 * n, in: -0.8...0.8)
            let dSigma = rng.uniforms(count: n, in: -1...1), dColor = rng.uniforms(count: 3 * n, in: -1...1)
            let fast = field.forward(points: points, threads: threads)
            let reference = field.referenceForward(points: points)
            func close(_ a: [Float], _ b: [Float], _ what: String) {
                #expect(a.count == b.count)
                let scale = max(1, b.map(abs).max() ?? 1)
                let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
                #expect(worst <= 2e-5 * scale, "\(what) (n \(n)): worst difference \(worst) of \(scale)")
            }
            close(fast.sigma, reference.sigma, "σ")
            close(fast.color, reference.color, "colour")
            field.zeroGradients()
            field.backward(fast, dSigma: dSigma, dColor: dColor, threads: threads)
            let blocked = field.namedParameters.map { $0.parameter.gradient.storage }
            field.zeroGradients()
            field.referenceBackward(points: points, dSigma: dSigma, dColor: dColor)
            for ((name, p), g) in zip(field.namedParameters, blocked) { close(g, p.gradient.storage, "∂L/∂\(name)") }
        }
    }

    @Test("the occupancy grid skips empty space without changing the picture much, and a fresh grid skips nothing")
    func occupancy() {
        // A dense ball (the density bias) in otherwise empty space.
        let field = Self.field(seed: 3, blobDensity: 12, blobRadius: 0.35)
        let renderer = NeRFRenderer(samplesPerRay: 32)
        let full = renderer.render(field, camera: Self.camera, background: .zero, occupancy: nil)
        var grid = OccupancyGrid(resolution: 16, threshold: 0.01)
        #expect(renderer.render(field, camera: Self.camera, background: .zero, occupancy: grid).color == full.color)
        var rng = RNG(seed: 4)
        grid.update(field, rng: &rng)
        let skipped = renderer.render(field, camera: Self.camera, background: .zero, occupancy: grid)
        #expect(skipped.evaluatedSamples < full.evaluatedSamples)
        let worst = zip(skipped.color, full.color).map { abs($0 - $1) }.max()!
        #expect(worst < 0.05, "worst colour change \(worst); occupied \(grid.occupiedFraction)")
    }

    @Test("the surface level is the σ whose level set has the field's own silhouettes")
    func surfaceLevel() {
        // A soft ball: σ falls off linearly in the exponent, so its opaque outline sits at one σ.
        let field = Self.field(seed: 3, blobDensity: 8, blobRadius: 0.4)
        let renderer = NeRFRenderer(samplesPerRay: 48)
        let cameras = [0, 120, 240].map { Camera.orbit(azimuthDegrees: Float($0), elevationDegrees: 20, radius: 2, width: 24, height: 24, fovYRadians: 0.7) }
        let chosen = renderer.surfaceLevel(field, cameras: cameras)
        #expect(chosen.iou > 0.9, "level \(chosen.level): IoU \(chosen.iou)")
        // Far above or below it the level set is empty or the whole box: the silhouettes disagree.
        let low = chosen.tried.first!, high = chosen.tried.last!
        #expect(low.iou < chosen.iou - 0.2 && high.iou < 0.1, "\(low) \(high)")
        #expect(chosen.tried.contains { $0.level == chosen.level && $0.iou == chosen.iou })
    }

    /// A short NeRF distillation on the tiny test prior: 16² renders, occupancy updated every 2 steps.
    static func run(steps: Int = 6) throws -> DistillationRun<NeRFScene> {
        let prior = try PixelDiffusionPrior(pipeline: PriorPipeline(folder: tinyPipeline), prompt: "a red snowman", backgrounds: ToySample.backgrounds)
        var views = ViewSettings()
        views.renderSize = 16
        views.viewsPerStep = 2
        var settings = NeRFSettings()
        settings.levels = 4
        settings.log2TableSize = 10
        settings.width = 16
        settings.samplesPerRay = 16
        settings.occupancyResolution = 12
        settings.occupancyEvery = 2
        let scene = try NeRFScene(settings: settings, extent: views.objectRadius, seed: 7, threads: 2)
        return try DistillationRun(scene: scene, prior: prior, rewards: nil, steps: steps, sds: SDSSettings(), guidance: RewardGuidanceSettings(),
                                   views: views, rng: RNG(seed: 7).split(2))
    }

    @Test("a NeRF run's checkpoint (weights, Adam moments, occupancy grid, RNG) resumes bit-identically")
    func resume() throws {
        let initial = try Self.run().scene.field.namedParameters.map { $0.parameter.value.storage }
        // At an odd step: the occupancy grid was updated at 2 and is next at 4.
        let (straight, first, resumed, folder) = try straightAndResumed({ try Self.run() }, steps: 6, at: 3)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(straight.scene.field.namedParameters.map { $0.parameter.value.storage } != initial)
        #expect(first.scene.occupancy != OccupancyGrid(resolution: 12))
        #expect(resumed.scene.field.namedParameters.map { $0.parameter.value.storage } == straight.scene.field.namedParameters.map { $0.parameter.value.storage })
        #expect(resumed.scene.occupancy == straight.scene.occupancy && resumed.rng == straight.rng)
    }
}
