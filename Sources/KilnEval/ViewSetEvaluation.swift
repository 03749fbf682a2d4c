import Foundation
import KilnCore
import KilnRender

/// Multi-view consistency of a set of posed images (the output of a multi-view diffusion model,
/// or renders of an asset), with no 3D asset to look at:
///
/// - reconstruct-then-rerender (Carve3D's multi-view reconstruction consistency): for every view,
///   Gaussians are fitted to all the other views and rendered from the held-out camera; PSNR and
///   SSIM against the held-out image say how well the rest of the set predicts it;
/// - pairwise photometric agreement: one fit to every view gives each view a depth map; each
///   view's pixels are carried into every other view through it, and colours compared where the
///   depths agree (`Reprojection`);
/// - silhouette agreement with the set's robust visual hull (`VisualHull`), the masks coming from
///   the background colour.
///
/// A view that contradicts the others (mirrored, shifted, recoloured, another object) stands out on
/// at least one of the three; `Outliers` turns "stands out" into flags with reasons.
public enum ViewSetEvaluation {
    public struct Options: Sendable {
        /// Fitting steps for each of the N + 1 fits, and the Gaussians they start from.
        public var steps = 400
        public var initialGaussians = 3_000
        public var hullResolution = 64
        public var seed: UInt64 = 0
        public var background = SIMD3<Float>(1, 1, 1)
        public var threads = Parallel.defaultThreadCount
        public init() {}
    }

    /// `report.json` of `kiln eval-views`.
    public struct Report: Codable, Sendable {
        public struct View: Codable, Sendable {
            public var index: Int
            public var name: String
            /// The held-out view against the rest of the set's reconstruction.
            public var heldOutPSNR: Double
            public var heldOutSSIM: Double
            public var silhouetteIoU: Double
            public var silhouetteCoverage: Double
            /// Mean colour difference (0…1) with the other views where their depths agree, and the
            /// share of its foreground that the other views' depths agree with.
            public var photometricError: Double
            public var depthAgreement: Double
            /// Why this view stands out (empty when it does not).
            public var flags: [String]
        }

        public var views: [View]
        public var meanHeldOutPSNR: Double
        public var meanHeldOutSSIM: Double
        public var meanSilhouetteIoU: Double
        public var meanSilhouetteCoverage: Double
        public var meanPhotometricError: Double
        /// `pairwise[i][j]`: colour error of view i's pixels carried into view j (nil where they
        /// share fewer than 16 pixels).
        public var pairwise: [[Double?]]
        /// Views that stand out, by name.
        public var flagged: [String]
        public var fitSteps: Int
        public var imageSize: [Int]
        public var seconds: Double
    }

    /// The report, and each view's render from the fit to the other views.
    public struct Result: Sendable {
        public var report: Report
        public var heldOutRenders: [Image]
    }

    public static func evaluate(_ views: [PosedView], names: [String], options: Options = Options()) -> Result {
        precondition(views.count >= 2 && names.count == views.count, "ViewSetEvaluation: at least two named views")
        let start = ContinuousClock.now
        let n = views.count
        var fitOptions = SplatFit.Options()
        fitOptions.steps = options.steps
        fitOptions.initialGaussians = options.initialGaussians
        fitOptions.seed = options.seed
        fitOptions.background = options.background
        fitOptions.threads = options.threads
        let settings = SplatRenderSettings(background: options.background)
        // Leave one out: the rest of the set predicts each view.
        var psnr = [Double](repeating: 0, count: n), ssim = psnr
        var renders: [Image] = []
        for i in 0..<n {
            let others = (0..<n).filter { $0 != i }.map { SplatFit.View(camera: views[$0].camera, image: views[$0].color) }
            let fitted = SplatFit.fit(others, options: fitOptions)
            let render = SplatRasterizer.render(fitted, camera: views[i].camera, settings: settings).color
            renders.append(render)
            psnr[i] = ImageMetrics.psnr(render, views[i].color)
            ssim[i] = ImageMetrics.ssim(render, views[i].color)
        }
        // Depth for every view from one fit to all of them, then every ordered pair compared.
        let all = SplatFit.fit(views.map { SplatFit.View(camera: $0.camera, image: $0.color) }, options: fitOptions)
        let withDepth = views.map { v -> PosedView in
            let r = SplatRasterizer.render(all, camera: v.camera, settings: settings)
            var depth = r.depth
            // Where the fit is nearly transparent its depth means nothing.
            for i in depth.pixels.indices where r.alpha.pixels[i] < 0.1 { depth.pixels[i] = 0 }
            return PosedView(camera: v.camera, color: v.color, alpha: v.alpha, depth: depth)
        }
        var pairwise = [[Double?]](repeating: [Double?](repeating: nil, count: n), count: n)
        var errorSum = [Double](repeating: 0, count: n), errorWeight = errorSum, landed = errorSum, agreed = errorSum
        for i in 0..<n {
            for j in 0..<n where j != i {
                // View i's pixels carried into view j: target i, source j.
                let r = Profiler.measure("reprojection") { Reprojection.measure(withDepth, source: j, target: i) }
                guard r.comparedPixels >= 16 else { continue }
                pairwise[i][j] = r.colorError
                let w = Double(r.comparedPixels) * r.depthAgreement
                for k in [i, j] {
                    errorSum[k] += w * r.colorError
                    errorWeight[k] += w
                    landed[k] += Double(r.comparedPixels)
                    agreed[k] += w
                }
            }
        }
        let photometric = (0..<n).map { errorWeight[$0] > 0 ? errorSum[$0] / errorWeight[$0] : 0 }
        let depthAgreement = (0..<n).map { landed[$0] > 0 ? agreed[$0] / landed[$0] : 0 }
        let hull = VisualHull.measure(views, resolution: options.hullResolution, threads: options.threads)
        var flags = [[String]](repeating: [], count: n)
        let median = (psnr: Outliers.median(psnr), coverage: Outliers.median(hull.coverage), error: Outliers.median(photometric))
        for i in Outliers.flag(psnr, lowIsBad: true, scaleFloor: 0.75, minimumGap: 2) {
            flags[i].append(String(format: "held-out PSNR %.1f dB against the set's median %.1f dB: the other views do not predict it", psnr[i], median.psnr))
        }
        for i in Outliers.flag(hull.coverage, lowIsBad: true, scaleFloor: 0.02, minimumGap: 0.05) {
            flags[i].append(String(format: "the visual hull covers %.0f%% of its silhouette against the median %.0f%%: its outline contradicts the others",
                                   100 * hull.coverage[i], 100 * median.coverage))
        }
        for i in Outliers.flag(photometric, lowIsBad: false, scaleFloor: 0.01, minimumGap: 0.03) {
            flags[i].append(String(format: "colour error %.3f with the other views against the median %.3f: it disagrees where they overlap", photometric[i], median.error))
        }
        let reportViews = (0..<n).map { i in
            Report.View(index: i, name: names[i], heldOutPSNR: psnr[i], heldOutSSIM: ssim[i], silhouetteIoU: hull.iou[i], silhouetteCoverage: hull.coverage[i],
                        photometricError: photometric[i],
                        depthAgreement: depthAgreement[i], flags: flags[i])
        }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(max(1, v.count)) }
        let report = Report(views: reportViews, meanHeldOutPSNR: mean(psnr), meanHeldOutSSIM: mean(ssim), meanSilhouetteIoU: mean(hull.iou),
                            meanSilhouetteCoverage: mean(hull.coverage), meanPhotometricError: mean(photometric), pairwise: pairwise,
                            flagged: reportViews.filter { !$0.flags.isEmpty }.map(\.name), fitSteps: options.steps,
                            imageSize: [views[0].camera.width, views[0].camera.height], seconds: (ContinuousClock.now - start).seconds)
        return Result(report: report, heldOutRenders: renders)
    }
}

extension ViewSetEvaluation.Report {
    public var markdown: String {
        var md = "# Multi-view consistency\n\n"
        md += "\(views.count) views at \(imageSize[0])×\(imageSize[1]); \(views.count + 1) Gaussian fits of \(fitSteps) steps; \(String(format: "%.1f", seconds)) s.\n\n"
        md += flagged.isEmpty ? "No view stands out.\n\n" : "**Views that stand out: \(flagged.joined(separator: ", ")).**\n\n"
        md += "| measure | mean |\n| --- | ---: |\n"
        md += String(format: "| held-out PSNR (reconstruct from the others, re-render) | %.2f dB |\n| held-out SSIM | %.3f |\n", meanHeldOutPSNR, meanHeldOutSSIM)
        md += String(format: "| silhouette covered by the visual hull | %.3f |\n| silhouette IoU with the visual hull | %.3f |\n", meanSilhouetteCoverage, meanSilhouetteIoU)
        md += String(format: "| photometric error with the other views | %.4f |\n", meanPhotometricError)
        md += "\n## Views\n\n| view | held-out PSNR | SSIM | hull coverage | hull IoU | photometric error | depth agreement | flags |\n"
            + "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n"
        for v in views {
            md += String(format: "| %@ | %.2f | %.3f | %.3f | %.3f | %.4f | %.2f | %@ |\n", v.name, v.heldOutPSNR, v.heldOutSSIM, v.silhouetteCoverage, v.silhouetteIoU, v.photometricError,
                         v.depthAgreement, v.flags.isEmpty ? "" : v.flags.joined(separator: "; "))
        }
        return md
    }
}
