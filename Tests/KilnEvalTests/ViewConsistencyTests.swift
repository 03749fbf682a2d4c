import Foundation
import KilnCore
import KilnPrior
import KilnRender
import KilnToyWorld
import Testing
@testable import KilnEval

@Suite("Multi-view consistency: visual hull, reprojection, reconstruct-then-rerender")
struct ViewConsistencyTests {
    /// A toy duck (its head and beak make every side view asymmetric) seen from `count` orbit
    /// views at 20° elevation, flat-lit so that its colours do not depend on the view.
    static func duckViews(count: Int = 8, size: Int = 32) -> [PosedView] {
        let mesh = ToyKind.duck.mesh(main: .yellow, second: .orange)
        let renderer = MeshRenderer(mesh)
        let settings = MeshRenderSettings(background: SIMD3(1, 1, 1), lightDirectionCamera: SIMD3(0, 0, -1), ambient: 1, diffuse: 0)
        let fov: Float = 40 * .pi / 180
        return (0..<count).map { i in
            let camera = Camera.orbit(azimuthDegrees: Float(i) * 360 / Float(count) + 10, elevationDegrees: 20,
                                      radius: renderer.radius / Foundation.sin(fov / 2) * 1.1, target: renderer.center, width: size, height: size, fovYRadians: fov)
            let r = renderer.render(camera: camera, settings: settings, threads: 1)
            return PosedView(camera: camera, color: r.color, alpha: r.alpha, depth: r.depth)
        }
    }

    /// The kinds of damage a view can carry: its image (and silhouette) mirrored left to right,
    /// shifted right by a fifth of its width, or its colours rotated (red → green → blue → red).
    enum Damage: String, CaseIterable { case mirrored, shifted, recoloured }

    static func damaged(_ v: PosedView, _ damage: Damage) -> PosedView {
        func remap(_ image: Image, _ source: (Int, Int) -> (Int, Int)?, fill: Float) -> Image {
            var out = Image(width: image.width, height: image.height, channels: image.channels, fill: fill)
            for y in 0..<image.height {
                for x in 0..<image.width {
                    guard let (sx, sy) = source(x, y) else { continue }
                    for c in 0..<image.channels { out.pixels[(y * image.width + x) * image.channels + c] = image[sx, sy, c] }
                }
            }
            return out
        }
        let w = v.color.width, shift = w / 5
        switch damage {
        case .mirrored:
            let m = { (x: Int, y: Int) -> (Int, Int)? in (w - 1 - x, y) }
            return PosedView(camera: v.camera, color: remap(v.color, m, fill: 1), alpha: remap(v.alpha, m, fill: 0), depth: v.depth.map { remap($0, m, fill: 0) })
        case .shifted:
            let s = { (x: Int, y: Int) -> (Int, Int)? in x >= shift ? (x - shift, y) : nil }
            return PosedView(camera: v.camera, color: remap(v.color, s, fill: 1), alpha: remap(v.alpha, s, fill: 0), depth: v.depth.map { remap($0, s, fill: 0) })
        case .recoloured:
            var color = v.color
            for i in 0..<(w * v.color.height) {
                let (r, g, b) = (v.color.pixels[3 * i], v.color.pixels[3 * i + 1], v.color.pixels[3 * i + 2])
                color.pixels[3 * i] = b; color.pixels[3 * i + 1] = r; color.pixels[3 * i + 2] = g
            }
            return PosedView(camera: v.camera, color: color, alpha: v.alpha, depth: v.depth)
        }
    }

    @Test("the visual hull of a consistent set matches every silhouette; a shifted or mirrored silhouette stands out")
    func visualHull() {
        let views = Self.duckViews(count: 8, size: 48)
        let clean = VisualHull.measure(views, resolution: 48)
        // Every silhouette lies inside the hull's; concavities seen by no view make the hull's outline larger.
        #expect(clean.coverage.allSatisfy { $0 > 0.97 } && clean.iou.allSatisfy { $0 > 0.7 }, "\(clean.coverage) \(clean.iou)")
        #expect(Outliers.flag(clean.coverage, lowIsBad: true, scaleFloor: 0.02, minimumGap: 0.05).isEmpty)
        // Masks from the background colour agree with the renders' alpha for the flat-lit duck.
        let masked = views.map { PosedView(camera: $0.camera, color: $0.color, alpha: PosedView.mask(of: $0.color, background: SIMD3(1, 1, 1))) }
        #expect(VisualHull.measure(masked, resolution: 48).coverage.allSatisfy { $0 > 0.97 })
        for damage in [Damage.shifted, .mirrored] {
            var bad = views
            bad[2] = Self.damaged(views[2], damage)
            let hull = VisualHull.measure(bad, resolution: 48)
            #expect(Outliers.flag(hull.coverage, lowIsBad: true, scaleFloor: 0.02, minimumGap: 0.05) == [2], "\(damage): \(hull.coverage)")
            // With no tolerance the bad view carves the hull alone, and every view loses coverage.
            let strict = VisualHull.measure(bad, resolution: 48, allowedMisses: 0)
            #expect(strict.coverage.filter { $0 < 0.97 }.count > 2, "\(damage): \(strict.coverage)")
        }
    }

    @Test("neighbouring views reproject onto each other through their depths; a recoloured view does not match its neighbour")
    func reprojection() {
        let views = Self.duckViews(count: 12, size: 48)
        let neighbours = Reprojection.nearestNeighbours(views.map(\.camera))
        #expect(neighbours[0] == 1 || neighbours[0] == 11)
        let clean = views.indices.map { Reprojection.measure(views, source: neighbours[$0], target: $0) }
        #expect(clean.allSatisfy { $0.comparedPixels > 200 && $0.depthAgreement > 0.8 && $0.colorError < 0.05 }, "\(clean)")
        var bad = views
        bad[4] = Self.damaged(views[4], .recoloured)
        let recoloured = Reprojection.measure(bad, source: 3, target: 4)
        #expect(recoloured.colorError > 0.15 && recoloured.depthAgreement > 0.85, "\(recoloured)")
        // Without depth there is nothing to compare, not a crash.
        let flat = views.map { PosedView(camera: $0.camera, color: $0.color, alpha: $0.alpha) }
        #expect(Reprojection.measure(flat, source: 0, target: 1).comparedPixels == 0)
    }

    static let fast: ViewSetEvaluation.Options = {
        var o = ViewSetEvaluation.Options()
        o.steps = 150
        o.initialGaussians = 800
        o.hullResolution = 32
        o.threads = 2
        return o
    }()

    static func imageSet(_ views: [PosedView]) -> [PosedView] {
        views.map { PosedView(camera: $0.camera, color: $0.color, alpha: PosedView.mask(of: $0.color, background: SIMD3(1, 1, 1))) }
    }

    @Test("eval-views: a consistent set flags nothing; a mirrored, shifted or recoloured view is flagged by name and has the worst held-out render")
    func viewSet() {
        let views = Self.imageSet(Self.duckViews(count: 7, size: 32))
        let names = (0..<7).map { "view_\($0)" }
        let clean = ViewSetEvaluation.evaluate(views, names: names, options: Self.fast).report
        #expect(clean.flagged.isEmpty, "\(clean.markdown)")
        #expect(clean.meanHeldOutPSNR > 16 && clean.meanSilhouetteCoverage > 0.95, "\(clean.markdown)")
        for damage in Damage.allCases {
            var bad = views
            bad[5] = Self.imageSet([Self.damaged(views[5], damage)])[0]
            let report = ViewSetEvaluation.evaluate(bad, names: names, options: Self.fast).report
            #expect(report.flagged == ["view_5"], "\(damage): \(report.markdown)")
            // The held-out render of the damaged view is the worst of the set, whatever the damage.
            #expect(report.views.min { $0.heldOutPSNR < $1.heldOutPSNR }!.index == 5, "\(damage): \(report.markdown)")
        }
    }
}
