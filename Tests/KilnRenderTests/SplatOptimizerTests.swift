import Foundation
import KilnCore
import Testing
@testable import KilnRender

@Suite("Splat optimisation: Adam and density control")
struct SplatOptimizerTests {
    @Test("One Adam step moves each parameter by its learning rate against the gradient sign")
    func adamStep() {
        let (p64, _) = randomSplatScene(count: 3, shDegree: 1, seed: 1)
        var p: SplatParameters<Float> = p64.converted()
        let before = p
        var g = SplatParameters<Float>(zerosLike: 3, shDegree: 1)
        g.means[0] = 2; g.logScales[4] = -3; g.opacityLogits[2] = 0.5; g.sh[0] = 1; g.sh[5] = 1; g.rotations[1] = .nan
        var optimizer = SplatOptimizer(parameters: p, extent: 2)
        let positionLR = optimizer.positionLearningRate
        optimizer.step(&p, gradients: g)
        // First Adam step: m̂ = g, v̂ = g², so the update is lr · sign(g) (ε negligible).
        #expect(abs((before.means[0] - p.means[0]) - positionLR) < 1e-3 * positionLR)
        #expect(abs(positionLR - 0.00016 * 2) < 1e-9)
        #expect(abs((p.logScales[4] - before.logScales[4]) - 0.005) < 1e-6)
        #expect(abs((before.opacityLogits[2] - p.opacityLogits[2]) - 0.05) < 1e-6)
        #expect(abs((before.sh[0] - p.sh[0]) - 0.0025) < 1e-7)  // DC
        #expect(abs((before.sh[5] - p.sh[5]) - 0.0025 / 20) < 1e-7)  // a higher coefficient
        #expect(p.rotations[1] == before.rotations[1], "a NaN gradient must leave the parameter alone")
        #expect(p.means[1] == before.means[1])
    }

    @Test("Densification clones small, splits large, prunes transparent Gaussians")
    func densify() {
        var p = SplatParameters<Float>(zerosLike: 4, shDegree: 0)
        for i in 0..<4 { p.rotations[4 * i] = 1; p.opacityLogits[i] = 2; p.means[3 * i] = Float(i) }
        for a in 0..<3 { p.logScales[a] = log(0.001); p.logScales[3 + a] = log(0.5); p.logScales[6 + a] = log(0.01); p.logScales[9 + a] = log(0.01) }
        p.opacityLogits[2] = -8  // transparent
        var optimizer = SplatOptimizer(parameters: p, extent: 2, seed: 3)
        // Gaussians 0 and 1 get large view-space gradients; 3 a small one.
        optimizer.record(meanPixels: [0.01, 0, 0.01, 0, 0, 0, 1e-7, 0], radii: [3, 3, 3, 3], width: 100, height: 100)
        optimizer.densify(&p)
        // 0 cloned (+1), 1 split into two (−1 +2), 2 pruned (−1), 3 kept: 4 + 1 + 1 − 1 = 5.
        #expect(p.count == 5)
        #expect(p.means[0] == 0 && p.means[3] == 3, "kept Gaussians stay in order")
        #expect(p.means[6] == 0, "the clone sits on its source")
        #expect(abs(p.logScales[9] - (log(0.5) - log(1.6))) < 1e-6, "split children shrink by 1.6")
        #expect(!p.opacityLogits.contains(-8))
        var again = SplatParameters<Float>(zerosLike: 4, shDegree: 0)
        for i in 0..<4 { again.rotations[4 * i] = 1; again.opacityLogits[i] = 2; again.means[3 * i] = Float(i) }
        for a in 0..<3 { again.logScales[a] = log(0.001); again.logScales[3 + a] = log(0.5); again.logScales[6 + a] = log(0.01); again.logScales[9 + a] = log(0.01) }
        again.opacityLogits[2] = -8
        var second = SplatOptimizer(parameters: again, extent: 2, seed: 3)
        second.record(meanPixels: [0.01, 0, 0.01, 0, 0, 0, 1e-7, 0], radii: [3, 3, 3, 3], width: 100, height: 100)
        second.densify(&again)
        #expect(again == p, "densification is deterministic for a seed")
    }

    @Test("Densification renumbers parameters and Adam moments together: kept Gaussians keep theirs, new ones start at zero")
    func densificationCarriesState() throws {
        var p = SplatParameters<Float>(zerosLike: 4, shDegree: 0)
        for i in 0..<4 { p.rotations[4 * i] = 1; p.opacityLogits[i] = 2; p.means[3 * i] = Float(i) }
        for a in 0..<3 { p.logScales[a] = log(0.001); p.logScales[3 + a] = log(0.5); p.logScales[6 + a] = log(0.01); p.logScales[9 + a] = log(0.01) }
        p.opacityLogits[2] = -8
        var optimizer = SplatOptimizer(parameters: p, extent: 2, seed: 3)
        // One step gives every Gaussian non-zero moments (no densification before step 500).
        var g = SplatParameters<Float>(zerosLike: 4, shDegree: 0)
        for i in 0..<4 { g.means[3 * i] = Float(i + 1) * 1e-3; g.sh[3 * i] = Float(i + 1) * 1e-2 }
        optimizer.step(&p, gradients: g)
        #expect(optimizer.lastDensification == nil)
        let before = optimizer.state
        optimizer.record(meanPixels: [0.01, 0, 0.01, 0, 0, 0, 1e-7, 0], radii: [3, 3, 3, 3], width: 100, height: 100)
        optimizer.densify(&p)
        // 0 cloned, 1 split in two, 2 pruned, 3 kept: the kept ones first, then the new ones.
        let d = try #require(optimizer.lastDensification)
        #expect(d.sources == [0, 3, 0, 1, 1] && d.kept == 2 && d.added == 2..<5)
        let after = optimizer.state
        for (j, i) in d.sources.enumerated() {
            let kept = j < d.kept
            #expect(after.firstMoments.means[3 * j] == (kept ? before.firstMoments.means[3 * i] : 0))
            #expect(after.secondMoments.sh[3 * j] == (kept ? before.secondMoments.sh[3 * i] : 0))
            #expect(p.sh[3 * j] != 0 && p.opacityLogits[j] == 2, "parameters are copied from the source")
        }
        // Motion coefficients and their moments follow the same renumbering.
        var motion = SplatMotion<Float>(zerosFor: 4), first = SplatMotion<Float>(zerosFor: 4), second = SplatMotion<Float>(zerosFor: 4)
        for i in motion.position.indices { motion.position[i] = Float(i); first.position[i] = 1; second.position[i] = 2 }
        d.carry(&motion, moments: &first, &second)
        let width = 3 * SplatMotion<Float>.basisCount
        #expect(motion.count == 5 && Array(motion.position[(4 * width)..<(5 * width)]) == (width..<(2 * width)).map(Float.init))
        #expect(first.position[0..<(2 * width)].allSatisfy { $0 == 1 } && first.position[(2 * width)...].allSatisfy { $0 == 0 })
        #expect(second.position[0..<(2 * width)].allSatisfy { $0 == 2 } && second.position[(2 * width)...].allSatisfy { $0 == 0 })
    }

    @Test("Fitting a perturbed cloud to renders of a target lowers the image error tenfold")
    func fitConverges() {
        let (target64, _) = randomSplatScene(count: 30, shDegree: 0, seed: 8, opacityLogitRange: 1...3)
        let target: SplatParameters<Float> = target64.converted()
        let cameras = (0..<4).map { Camera.orbit(azimuthDegrees: Float($0) * 90 + 20, elevationDegrees: 20, radius: 2.5, width: 32, height: 32, fovYRadians: 0.9) }
        let images = cameras.map { SplatRasterizer.forward(target, camera: $0, threads: 1).images.color }
        var p = target
        var rng = RNG(seed: 4)
        for i in p.means.indices { p.means[i] += rng.normal() * 0.04 }
        for i in p.sh.indices { p.sh[i] += rng.normal() * 0.3 }
        var config = SplatTrainingConfig()
        config.densifyFrom = .max
        var optimizer = SplatOptimizer(parameters: p, extent: 8, config: config)
        func error() -> Float {
            zip(cameras, images).map { camera, image in
                let c = SplatRasterizer.forward(p, camera: camera, threads: 1).images.color
                return zip(c, image).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Float(c.count)
            }.reduce(0, +)
        }
        let start = error()
        for step in 0..<300 {
            let camera = cameras[step % cameras.count], image = images[step % cameras.count]
            let frame = SplatRasterizer.forward(p, camera: camera, threads: 1)
            let d = zip(frame.images.color, image).map { 2 * ($0 - $1) / Float(image.count) }
            let g = SplatRasterizer.backward(frame, p, gradients: SplatImageGradients(color: d))
            optimizer.step(&p, gradients: g.parameters)
        }
        let end = error()
        #expect(end < start / 10, "image error \(start) → \(end)")
    }
}

extension SplatOptimizerTests {
    @Test("A fit is bit-identical for a seed, whatever the thread count")
    func fitDeterminism() {
        let (target64, _) = randomSplatScene(count: 20, shDegree: 0, seed: 31, opacityLogitRange: 1...3)
        let target: SplatParameters<Float> = target64.converted()
        let views = (0..<3).map { i -> SplatFit.View in
            let camera = Camera.orbit(azimuthDegrees: Float(i) * 120, elevationDegrees: 10, radius: 2.5, width: 24, height: 24, fovYRadians: 0.9)
            return SplatFit.View(camera: camera, image: SplatRasterizer.render(target, camera: camera).color)
        }
        var options = SplatFit.Options()
        options.steps = 60
        options.initialGaussians = 300
        options.seed = 9
        options.threads = 1
        let one = SplatFit.fit(views, options: options)
        options.threads = 2
        let two = SplatFit.fit(views, options: options)
        #expect(one == two)
        #expect(one.count != 300, "densification ran")
        options.seed = 10
        #expect(SplatFit.fit(views, options: options) != one, "another seed gives another fit")
    }
}
