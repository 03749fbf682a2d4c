import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender
import KilnToyWorld
import Testing
@testable import KilnDistill

@Suite("Gaussian distillation")
struct GaussianDistillationTests {
    static func run(method: DistillationMethod = .sds, steps: Int = 6, seed: UInt64 = 3, threads: Int = 2,
                    regularized: Bool = false, shDegree: Int = 0, objective: DistillationObjective = .sds) throws -> DistillationRun<GaussianScene> {
        let prior = try PixelDiffusionPrior(pipeline: PriorPipeline(folder: tinyPipeline), prompt: "a red snowman", backgrounds: ToySample.backgrounds)
        var views = ViewSettings()
        views.renderSize = 32
        views.viewsPerStep = 2
        var settings = GaussianSettings()
        settings.initialGaussians = 300
        settings.densifyEvery = 2
        settings.densifyGradientThreshold = 0  // every visible Gaussian densifies: the checkpoint must carry the new ones
        if regularized { (settings.opacityPenalty, settings.scalePenalty, settings.colorSmoothness) = (0.5, 0.5, 2) }
        (settings.shDegree, settings.shDegreeEvery) = (shDegree, 0.5)
        var guidance = RewardGuidanceSettings()
        guidance.method = method
        guidance.noises = 2
        let scene = try GaussianScene(settings: settings, steps: steps, extent: views.objectRadius, seed: seed, threads: threads)
        var sds = SDSSettings()
        sds.objective = objective
        return try DistillationRun(scene: scene, prior: prior, rewards: method == .sds ? nil : ToyImageRewards(models: tinyRewards(), caption: ToyCaption("a red snowman")), steps: steps, sds: sds,
                                   guidance: guidance, views: views, rng: RNG(seed: seed).split(2))
    }

    @Test("steps change the splats, densify, and repeat exactly for a seed", arguments: [DistillationMethod.sds, .rewardWeighted])
    func deterministic(method: DistillationMethod) throws {
        let a = try Self.run(method: method), b = try Self.run(method: method)
        let initial = a.scene.parameters
        let reports = try (0..<6).map { _ in try a.step() }
        for _ in 0..<6 { _ = try b.step() }
        #expect(a.scene.parameters == b.scene.parameters && a.scene.parameters != initial)
        #expect(a.scene.parameters.count > initial.count, "densification should add Gaussians: \(initial.count) → \(a.scene.parameters.count)")
        #expect(reports.map(\.step) == Array(1...6) && reports.allSatisfy { !$0.skipped && $0.sdsLoss.isFinite })
        // RewardSDS scores its noises for the first 70% of the run, then is plain SDS.
        #expect(method == .sds || (reports.prefix(5).allSatisfy { $0.reward != nil } && reports.last!.reward == nil))
    }

    @Test("a checkpoint resumes bit-identically")
    func resume() throws {
        let (straight, _, resumed, folder) = try straightAndResumed({ try Self.run() }, steps: 6, at: 3)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(resumed.scene.parameters == straight.scene.parameters)
        #expect(resumed.rng == straight.rng)
        // A damaged checkpoint is an error naming the file, not a crash.
        try Data("{}".utf8).write(to: folder.appendingPathComponent("state.json"))
        #expect(throws: DistillError.self) { try Self.run().restore(from: folder) }
    }

    @Test("with the regularisers on, a checkpoint still resumes bit-identically, and they change the run")
    func regularizedResume() throws {
        let (straight, _, resumed, folder) = try straightAndResumed({ try Self.run(regularized: true) }, steps: 6, at: 3)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(resumed.scene.parameters == straight.scene.parameters)
        let plain = try Self.run()
        for _ in 0..<6 { _ = try plain.step() }
        #expect(plain.scene.parameters != straight.scene.parameters)
    }

    @Test("the SH-degree schedule: higher coefficients stay zero until their degree is in use, then learn; resumes bit-identically")
    func shSchedule() throws {
        var settings = GaussianSettings()
        (settings.shDegree, settings.shDegreeEvery) = (3, 0.25)
        #expect([0, 24, 25, 49, 50, 75, 99, 100].map { settings.activeSHDegree(step: $0, of: 100) } == [0, 0, 1, 1, 2, 3, 3, 3])
        settings.shDegree = 0
        #expect(settings.activeSHDegree(step: 99, of: 100) == 0)
        // The brightness share of the colour smoothness is a share: 0…1, named when it is not.
        for bad: Float in [-0.1, 1.5, .nan] {
            var wrong = GaussianSettings()
            wrong.colorSmoothnessBrightness = bad
            #expect { try wrong.validate() } throws: { "\($0)".contains("gaussians.color_smoothness_brightness must be 0…1") }
        }
        for bad: Float in [0, -0.1, 2, .nan] {
            var wrong = GaussianSettings()
            wrong.colorSmoothnessEdge = bad
            #expect { try wrong.validate() } throws: { "\($0)".contains("gaussians.color_smoothness_edge must be a colour difference") }
        }
        // The penalty is read by name from a settings file; an unknown one is named with its choices.
        let read = try SettingsFile.read(GaussianSettings(), from: Data(#"{"color_smoothness_penalty": "charbonnier", "color_smoothness_edge": 0.2}"#.utf8),
                                         source: "config.json").value
        #expect(read.colorSmoothnessPenalty == .charbonnier && read.colorSmoothnessEdge == 0.2)
        #expect { try SettingsFile.read(GaussianSettings(), from: Data(#"{"color_smoothness_penalty": "tv"}"#.utf8), source: "config.json") } throws: {
            "\($0)".contains("color_smoothness_penalty") && "\($0)".contains("not one of l2, charbonnier, median")
        }
        let run = try Self.run(shDegree: 1)
        #expect(run.scene.parameters.shDegree == 1)
        func rest(_ p: SplatParameters<Float>) -> [Float] { (0..<p.count).flatMap { i in p.sh[(i * 12 + 3)..<(i * 12 + 12)] } }
        for _ in 0..<2 { _ = try run.step() }  // steps 1 and 2 of 6 render at degree 0 (step 3 is half the run)
        #expect(rest(run.scene.parameters).allSatisfy { $0 == 0 })
        for _ in 0..<4 { _ = try run.step() }
        #expect(rest(run.scene.parameters).contains { $0 != 0 })
        let (straight, _, resumed, folder) = try straightAndResumed({ try Self.run(shDegree: 1) }, steps: 6, at: 4)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(resumed.scene.parameters == straight.scene.parameters)
    }

    @Test("VSD: the particle model trains during the run and resumes bit-identically with it; the prior's own predictions never change")
    func vsdResume() throws {
        let (straight, _, resumed, folder) = try straightAndResumed({ try Self.run(objective: .vsd) }, steps: 6, at: 3)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(resumed.scene.parameters == straight.scene.parameters)
        let a = straight.particle!.parameters.map { $0.parameter.value }, b = resumed.particle!.parameters.map { $0.parameter.value }
        #expect(a == b && a.contains { $0.storage.contains { $0 != 0 } })
        // A checkpoint written by another objective has no particle model: refused by name.
        let sdsRun = try Self.run()
        _ = try sdsRun.step()
        let other = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-vsd-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: other) }
        try sdsRun.saveCheckpoint(to: other)
        #expect(throws: DistillError.self) { try Self.run(objective: .vsd).restore(from: other) }
        // And a VSD checkpoint is refused by a run of another objective.
        let vsdFolder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-vsd-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: vsdFolder) }
        try straight.saveCheckpoint(to: vsdFolder)
        #expect(throws: DistillError.self) { try Self.run().restore(from: vsdFolder) }
    }

    @Test("the median colour smoothness: its gradient is that of the sum with the medians held fixed; it pulls a lone colour to its neighbours' and leaves a border alone, where l2 pulls across it")
    func medianSmoothness() {
        var rng = RNG(seed: 12)
        let n = 60, k = 4
        var p = SplatFit.initialCloud(count: n, center: .zero, radius: 0.5, rng: &rng)
        p.sh = (0..<(3 * n)).map { _ in Float(rng.normal()) * 0.5 }
        let color: Float = 2
        for brightness: Float in [1, 0.3] {
            let (value, g) = GaussianRegularizers.loss(p, opacity: 0, scale: 0, color: color, brightness: brightness, penalty: .median,
                                                       neighbours: k, radius: 1, threads: 1)
            // The medians by a plain sort of each neighbourhood from the brute-force neighbours.
            let table = NearestNeighbours.table(p.positions, k: k, threads: 1)
            let brute = NearestNeighboursReference.search(p.positions, k: k)
            #expect((0..<n).allSatisfy { Array(table.indices[($0 * k)..<($0 * k + k)].map(Int.init)) == brute[$0] })
            func fixedSum(_ q: SplatParameters<Float>) -> Double {
                var sum = 0.0
                for i in 0..<n {
                    var d = SIMD3<Double>()
                    for a in 0..<3 {
                        let values = ([i] + brute[i]).map { Double(p.sh[3 * $0 + a]) }.sorted()
                        d[a] = Double(q.sh[3 * i + a]) - values[values.count / 2]  // five values: the middle one
                    }
                    let m = d.sum() / 3, hue = d - SIMD3(repeating: m)
                    sum += Double(color) / Double(n) * ((hue * hue).sum() + 3 * Double(brightness) * m * m)
                }
                return sum
            }
            #expect(abs(value - fixedSum(p)) < 1e-9 * (1 + value), "\(value) against \(fixedSum(p))")
            let h: Float = 1e-2
            for i in Swift.stride(from: 0, to: 3 * n, by: 5) {
                var plus = p, minus = p
                plus.sh[i] += h; minus.sh[i] -= h
                let numeric = (fixedSum(plus) - fixedSum(minus)) / (2 * Double(h))
                #expect(abs(Double(g.sh[i]) - numeric) < 1e-4 * (1 + abs(numeric)), "β \(brightness), sh \(i): \(g.sh[i]) against \(numeric)")
            }
            #expect(g.means.allSatisfy { $0 == 0 } && g.opacityLogits.allSatisfy { $0 == 0 } && g.logScales.allSatisfy { $0 == 0 })
        }
        // Two halves, red and blue, with one red Gaussian deep inside the blue half.
        var border = p
        let lone = (0..<n).filter { border.means[3 * $0] < -0.15 }.min { border.means[3 * $0] < border.means[3 * $1] }!
        for i in 0..<n {
            let red = border.means[3 * i] > 0 || i == lone
            for a in 0..<3 { border.sh[3 * i + a] = red ? (a == 0 ? 2 : -2) : (a == 2 ? 2 : -2) }
        }
        let median = GaussianRegularizers.loss(border, opacity: 0, scale: 0, color: color, penalty: .median, neighbours: k, radius: 1, threads: 1).gradient
        let l2 = GaussianRegularizers.loss(border, opacity: 0, scale: 0, color: color, penalty: .l2, neighbours: k, radius: 1, threads: 1).gradient
        let pull = { (g: SplatParameters<Float>, i: Int) in (0..<3).map { abs(g.sh[3 * i + $0]) }.max()! }
        #expect(pull(median, lone) > 0, "the lone red Gaussian is pulled")
        #expect(median.sh[3 * lone] > 0 && median.sh[3 * lone + 2] < 0, "toward blue (descent lowers red, raises blue)")
        // Away from the lone one, the Gaussians whose own side holds the majority of their
        // neighbourhood are not pulled by the median; l2 pulls some of them across the border.
        let table = NearestNeighbours.table(border.positions, k: k, threads: 1)
        var kept = 0, l2Pulled = 0
        for i in 0..<n where i != lone && !table.indices[(i * k)..<(i * k + k)].contains(Int32(lone)) {
            let side = border.means[3 * i] > 0
            let same = table.indices[(i * k)..<(i * k + k)].filter { (border.means[3 * Int($0)] > 0) == side && Int($0) != lone }.count
            guard same >= 2 else { continue }  // with itself, three of five
            #expect(pull(median, i) == 0, "Gaussian \(i), \(same) of \(k) neighbours on its side, pulled by \(pull(median, i))")
            kept += 1
            if pull(l2, i) > 0 { l2Pulled += 1 }
        }
        #expect(kept > n / 2 && l2Pulled > 0, "\(kept) kept, \(l2Pulled) pulled by l2")
    }

    @Test("the regularisers' gradient is the float64 central difference of their loss")
    func regularizerGradient() {
        var rng = RNG(seed: 11)
        let n = 40
        var p = SplatFit.initialCloud(count: n, center: .zero, radius: 0.5, rng: &rng)
        p = SplatParameters(means: p.means, logScales: p.logScales.map { $0 + Float(rng.normal()) * 0.3 }, rotations: p.rotations,
                            opacityLogits: (0..<n).map { _ in Float(rng.normal()) }, sh: (0..<(3 * n)).map { _ in Float(rng.normal()) * 0.5 }, shDegree: 0)
        let (opacity, scale, color, k, radius): (Float, Float, Float, Int, Float) = (0.7, 0.3, 1.5, 3, 0.4)
        // Every colour difference (β = 1), brightness at a share, and hue and saturation alone; with
        // the squared penalty and with Charbonnier's at an edge inside the colours' spread.
        for (brightness, penalty): (Float, ColorPenalty) in [(1, .l2), (0.3, .l2), (0, .l2), (1, .charbonnier), (0.3, .charbonnier)] {
            let g = GaussianRegularizers.loss(p, opacity: opacity, scale: scale, color: color, brightness: brightness, penalty: penalty, edge: 0.05,
                                              neighbours: k, radius: radius, threads: 1).gradient
            func value(_ q: SplatParameters<Float>) -> Double {
                GaussianRegularizers.loss(q, opacity: opacity, scale: scale, color: color, brightness: brightness, penalty: penalty, edge: 0.05,
                                          neighbours: k, radius: radius, threads: 1).value
            }
            let h: Float = 1e-2
            for (name, path, analytic) in [("opacity", \SplatParameters<Float>.opacityLogits, g.opacityLogits), ("scales", \SplatParameters<Float>.logScales, g.logScales),
                                           ("colour", \SplatParameters<Float>.sh, g.sh)] {
                for i in Swift.stride(from: 0, to: analytic.count, by: 7) {
                    var plus = p, minus = p
                    plus[keyPath: path][i] += h
                    minus[keyPath: path][i] -= h
                    let numeric = (value(plus) - value(minus)) / (2 * Double(h))
                    #expect(abs(Double(analytic[i]) - numeric) < 2e-3 * (1 + abs(numeric)) , "β \(brightness) \(penalty), \(name) \(i): \(analytic[i]) against \(numeric)")
                }
            }
            #expect(g.means.allSatisfy { $0 == 0 } && g.rotations.allSatisfy { $0 == 0 })
        }
        // With β = 0 a change of brightness alone (each colour's three channels up by the same amount,
        // different amounts for different Gaussians) costs nothing (to float rounding of the shift).
        var brighter = p
        for i in brighter.sh.indices { brighter.sh[i] += (i / 3) % 2 == 0 ? 0.35 : 0.15 }
        let hueOnly = { (q: SplatParameters<Float>) in
            GaussianRegularizers.loss(q, opacity: 0, scale: 0, color: color, brightness: 0, neighbours: k, radius: radius, threads: 1).value
        }
        #expect(abs(hueOnly(brighter) - hueOnly(p)) < 1e-5 * (1 + hueOnly(p)), "\(hueOnly(brighter)) against \(hueOnly(p))")
        let plain = { (q: SplatParameters<Float>) in
            GaussianRegularizers.loss(q, opacity: 0, scale: 0, color: color, neighbours: k, radius: radius, threads: 1).value
        }
        #expect(plain(brighter) > plain(p) * 1.01, "brightness differences count with β = 1")
        // Charbonnier: the squared penalty to first order for differences well below the edge, and a
        // bounded pull (at most 2ε in SH units per pair, against 2‖d‖ for l2) across a large one.
        func colour(_ q: SplatParameters<Float>, _ penalty: ColorPenalty, edge: Float) -> (value: Double, gradient: SplatParameters<Float>) {
            GaussianRegularizers.loss(q, opacity: 0, scale: 0, color: color, penalty: penalty, edge: edge, neighbours: k, radius: radius, threads: 1)
        }
        var faint = p
        faint.sh = p.sh.map { $0 * 1e-3 }
        let (l2Faint, robustFaint) = (colour(faint, .l2, edge: 0.5), colour(faint, .charbonnier, edge: 0.5))
        #expect(abs(robustFaint.value - l2Faint.value) < 1e-3 * l2Faint.value, "\(robustFaint.value) against \(l2Faint.value)")
        for i in faint.sh.indices { #expect(abs(robustFaint.gradient.sh[i] - l2Faint.gradient.sh[i]) <= 1e-3 * abs(l2Faint.gradient.sh[i]) + 1e-12) }
        var border = p
        for i in 0..<n { for a in 0..<3 { border.sh[3 * i + a] = border.means[3 * i] > 0 ? (a == 0 ? 2 : -2) : (a == 2 ? 2 : -2) } }  // red and blue halves
        let edge: Float = 0.1, bound = 2 * Double(edge) / SphericalHarmonics.c0 * Double(color) / Double(n * k)
        let (l2Border, robustBorder) = (colour(border, .l2, edge: edge), colour(border, .charbonnier, edge: edge))
        #expect(robustBorder.value < 0.2 * l2Border.value)
        let table = NearestNeighbours.table(border.positions, k: k, threads: 1)
        var pairs = [Int](repeating: k, count: n)  // each Gaussian's own k, and every list it is on
        for j in table.indices { pairs[Int(j)] += 1 }
        for i in 0..<n {
            let pull = SIMD3(Double(robustBorder.gradient.sh[3 * i]), Double(robustBorder.gradient.sh[3 * i + 1]), Double(robustBorder.gradient.sh[3 * i + 2]))
            #expect((pull * pull).sum().squareRoot() <= bound * Double(pairs[i]) * 1.0001, "Gaussian \(i): a pull of \(pull) across the border")
        }
        #expect(l2Border.gradient.sh.map(abs).max()! > 5 * robustBorder.gradient.sh.map(abs).max()!)
        // Added in place: the same gradient as the returned one, on top of what is there.
        var base = SplatParameters<Float>(zerosLike: n, shDegree: 0)
        base.sh = base.sh.indices.map { Float($0 % 5) }
        base.opacityLogits = base.opacityLogits.indices.map { Float($0 % 3) - 1 }
        base.logScales = base.logScales.indices.map { Float($0 % 7) * 0.25 }
        base.means = base.means.indices.map { Float($0 % 4) }
        var accumulated = base
        let accumulatedValue = GaussianRegularizers.accumulate(p, into: &accumulated, opacity: opacity, scale: scale, color: color, penalty: .charbonnier,
                                                               neighbours: k, radius: radius, threads: 1)
        let alone = GaussianRegularizers.loss(p, opacity: opacity, scale: scale, color: color, penalty: .charbonnier, neighbours: k, radius: radius, threads: 1)
        #expect(accumulatedValue == alone.value)
        for (name, total, start, part) in [("sh", accumulated.sh, base.sh, alone.gradient.sh),
                                           ("opacity", accumulated.opacityLogits, base.opacityLogits, alone.gradient.opacityLogits),
                                           ("scales", accumulated.logScales, base.logScales, alone.gradient.logScales)] {
            #expect(total == zip(start, part).map { $0 + $1 }, "\(name)")
        }
        #expect(accumulated.means == base.means && accumulated.rotations == base.rotations)
        // A term that overflows (a log scale of 100: e¹⁰⁰ is finite in Double, not in Float) is left
        // out; the others are still added.
        var huge = p
        huge.logScales[4] = 100
        var into = SplatParameters<Float>(zerosLike: n, shDegree: 0)
        _ = GaussianRegularizers.accumulate(huge, into: &into, opacity: opacity, scale: scale, color: 0, neighbours: k, radius: radius, threads: 1)
        #expect(into.logScales[4] == 0 && into.logScales.allSatisfy(\.isFinite) && into.logScales[5] > 0 && into.opacityLogits.allSatisfy(\.isFinite))
        // Off is off: no weight, no loss and no gradient.
        let off = GaussianRegularizers.loss(p, opacity: 0, scale: 0, color: 0, neighbours: k, radius: radius)
        #expect(off.value == 0 && off.gradient == SplatParameters(zerosLike: n, shDegree: 0))
    }

    @Test("a non-finite gradient skips the update; twenty in a row stop the run")
    func nonFinite() throws {
        let run = try Self.run(steps: 40)
        // NaN colours make the renders, the prior's prediction and the gradient NaN.
        var p = run.scene.parameters
        p.sh = p.sh.map { _ in .nan }
        run.scene.parameters = p
        let before = run.scene.parameters
        let report = try run.step()
        #expect(report.skipped && report.nonFinite > 0 && run.skippedSteps == 1)
        #expect(run.scene.parameters.means == before.means && run.scene.parameters.opacityLogits == before.opacityLogits)
        var thrown = false
        for _ in 0..<30 {
            do { _ = try run.step() } catch is DistillError { thrown = true; break }
        }
        #expect(thrown)
    }

    @Test("the render-to-prior bridge: 2×2 means in [−1, 1] and its exact transpose")
    func bridge() {
        var rng = RNG(seed: 9)
        let color = rng.uniforms(count: 4 * 6 * 3)  // a 4×6 render… 6 wide, 4 high
        let x = PriorImage.fromRender(color, width: 6, height: 4, factor: 2)
        #expect(x.count == 3 * 3 * 2)
        let expected = 2 * (color[0] + color[3] + color[18] + color[21]) / 4 - 1
        #expect(abs(x[0] - expected) < 1e-6)
        // ⟨A c, g⟩ = ⟨c, Aᵀ g⟩ for the linear part.
        let g = rng.normals(count: x.count)
        let back = PriorImage.renderGradient(g, width: 6, height: 4, factor: 2)
        let lhs = zip(x.map { $0 + 1 }, g).map { Double($0 * $1) }.reduce(0, +)
        let rhs = zip(color, back).map { Double($0 * $1) }.reduce(0, +)
        #expect(abs(lhs - rhs) < 1e-4)
        // Out of range: the value is clamped, and only gradients that lead back into [0, 1] pass.
        var bright = color
        bright[0] = 1.5; bright[1] = -0.2
        let clamped = PriorImage.fromRender(bright, width: 6, height: 4, factor: 2)
        #expect(abs(clamped[0] - (2 * (1 + color[3] + color[18] + color[21]) / 4 - 1)) < 1e-6)
        let up = PriorImage.renderGradient([Float](repeating: -1, count: x.count), width: 6, height: 4, factor: 2, color: bright)
        let down = PriorImage.renderGradient([Float](repeating: 1, count: x.count), width: 6, height: 4, factor: 2, color: bright)
        #expect(up[0] == 0 && down[0] == 0.5 && up[1] == -0.5 && down[1] == 0)
    }
}

@Suite("Coverage floor")
struct CoverageFloorTests {
    @Test("its gradient is the float64 derivative of weight·P·(c − mean α)₊², and zero above the floor")
    func gradient() {
        var settings = GaussianSettings()
        settings.minimumCoverage = 0.2
        settings.coverageWeight = 3
        var rng = RNG(seed: 4)
        let alpha = (0..<50).map { _ in rng.uniform(0...0.3) }
        func loss(_ a: [Double]) -> Double {
            let mean = a.reduce(0, +) / Double(a.count), gap = max(0, 0.2 - mean)
            return 3 * Double(a.count) * gap * gap
        }
        let g = settings.coverageGradient(alpha: alpha)!
        let x = alpha.map(Double.init)
        for i in [0, 17, 49] {
            var plus = x, minus = x
            plus[i] += 1e-6
            minus[i] -= 1e-6
            let numeric = (loss(plus) - loss(minus)) / 2e-6
            #expect(abs(Double(g[i]) - numeric) < 1e-6 * max(1, abs(numeric)), "pixel \(i): \(g[i]) vs \(numeric)")
        }
        #expect(settings.coverageGradient(alpha: [Float](repeating: 0.25, count: 50)) == nil)
        settings.minimumCoverage = 0
        #expect(settings.coverageGradient(alpha: alpha) == nil)
    }

    @Test("with nothing else pulling, a fading cloud is held at the floor instead of vanishing")
    func holdsCloud() throws {
        var settings = GaussianSettings()
        settings.initialGaussians = 200
        settings.densifyEvery = 1000  // no pruning in this test
        let camera = ViewSettings().camera(azimuthDegrees: 0, elevationDegrees: 15, size: 32)
        func meanAlpha(_ scene: GaussianScene) -> Float {
            let alpha = SplatRasterizer.render(scene.parameters, camera: camera).alpha.pixels
            return alpha.reduce(0, +) / Float(alpha.count)
        }
        // A gradient that darkens every pixel on a black background drives opacity down; the
        // floor stops it there.
        for floor: Float in [0, 0.1] {
            settings.minimumCoverage = floor
            let scene = try GaussianScene(settings: settings, steps: 200, extent: 0.6, seed: 1, threads: 2)
            var rng = RNG(seed: 2)
            for step in 1...120 {
                let (color, frame) = scene.render(camera: camera, time: nil, step: step, of: 200, background: .zero, rng: &rng)
                scene.accumulate(frame, dColor: color.map { 4 * $0 })  // ∂/∂color of 2‖color‖²
                scene.applyStep(step: step, of: 200, rng: &rng)
            }
            let coverage = meanAlpha(scene)
            if floor == 0 { #expect(coverage < 0.05, "without the floor the cloud fades: \(coverage)") }
            else { #expect(coverage > 0.07, "the floor holds coverage near 0.1: \(coverage)") }
        }
    }
}
