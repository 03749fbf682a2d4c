import Foundation
import KilnAsset
import KilnCore
import KilnEval
import KilnRender

/// `kiln fit`: Gaussian splats fitted to a folder of posed images (transforms.json), every
/// `holdout`-th view kept out and measured (PSNR, SSIM).
public struct SplatFitJob {
    public var views: URL
    public var output: URL
    public var steps = 2000
    public var holdout = 1
    public var initial = 5000
    public var seed: UInt64 = 0
    /// The background colour (nil: the median of the images' borders).
    public var background: SIMD3<Float>? = nil
    public var allowOutsidePaths = false
    public var force = false

    public init(views: URL, output: URL) { (self.views, self.output) = (views, output) }

    /// Fits, measures the held-out views, and writes splats.ply, metrics.json and progress.png.
    public func run() throws {
        let (transforms, images, cameras) = try PosedImageFolder.load(views, allowOutsidePaths: allowOutsidePaths)
        guard holdout < cameras.count else {
            throw RunError("--holdout \(holdout) leaves no training view: \(views.relativePath)/transforms.json has \(cameras.count) frames")
        }
        let heldOut = Set((0..<holdout).map { $0 * cameras.count / max(1, holdout) + cameras.count / max(1, 2 * holdout) })
        let train = cameras.indices.filter { !heldOut.contains($0) }
        let bg = background ?? PosedImageFolder.borderMedian(images)
        // Views that show only the background leave the fit nothing to reconstruct: every Gaussian
        // fades and is pruned.
        guard train.contains(where: { i in PosedView.mask(of: images[i], background: bg).pixels.contains { $0 > 0 } }) else {
            throw RunError("\(views.relativePath): every training view shows only the background colour (\(bg.x), \(bg.y), \(bg.z)): there is nothing to fit; "
                           + "check that the images show the object (or pass --background with the real background colour)")
        }

        let runFolder = output
        let createdFolder = try OutputFolder.prepare(output, force: force)
        var options = SplatFit.Options()
        options.steps = steps
        options.initialGaussians = initial
        options.seed = seed
        options.background = bg
        let start = Date()
        let interactive = isatty(1) != 0
        let fitted = SplatFit.fit(train.map { SplatFit.View(camera: cameras[$0], image: images[$0]) }, options: options) { step, loss, count in
            if step % max(1, steps / 20) == 0 || step == steps {
                let line = String(format: "step %d/%d  L1 %.4f  %d Gaussians  %.1f s", step, steps, loss, count, Date().timeIntervalSince(start))
                if interactive { FileHandle.standardOutput.write(Data(("\r" + line + (step == steps ? "\n" : "")).utf8)) } else { print(line) }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        guard fitted.count > 0 else {
            if createdFolder { try? FileManager.default.removeItem(at: runFolder) }
            throw RunError("the fit kept no Gaussians after \(steps) steps: the cameras in \(views.relativePath)/transforms.json do not see the object "
                           + "(check their poses and the images), or the views show only the background")
        }
        let settings = SplatRenderSettings(background: bg)
        func evaluate(_ i: Int) -> ViewMetrics {
            let render = SplatRasterizer.render(fitted, camera: cameras[i], settings: settings).color
            return ViewMetrics(view: i, file: transforms.frames[i].filePath, psnr: ImageMetrics.psnr(render, images[i]), ssim: ImageMetrics.ssim(render, images[i]))
        }
        let held = heldOut.sorted().map(evaluate)
        let trained = train.map(evaluate)
        func mean(_ v: [Double]) -> Double? { v.isEmpty ? nil : v.reduce(0, +) / Double(v.count) }
        let metrics = FitMetrics(steps: steps, seconds: seconds, gaussians: fitted.count, seed: seed,
                                 background: [bg.x, bg.y, bg.z], heldOut: held, heldOutPSNR: mean(held.map(\.psnr)),
                                 heldOutSSIM: mean(held.map(\.ssim)), trainPSNR: mean(trained.map(\.psnr)), trainSSIM: mean(trained.map(\.ssim)))
        try GaussianCloudIO.write(fitted.cloud, to: runFolder.appendingPathComponent("splats.ply"))
        try writeJSON(metrics, to: runFolder.appendingPathComponent("metrics.json"))
        let shown = held.isEmpty ? Array(train.prefix(4)) : held.map(\.view)
        let renders = shown.map { SplatRasterizer.render(fitted, camera: cameras[$0], settings: settings).color }
        let sheet = Image.contactSheet(shown.map { images[$0] } + renders, columns: shown.count,
                                       labels: shown.map { "target \($0)" } + shown.map { "fit \($0)" })
        try PNG.write(sheet, to: runFolder.appendingPathComponent("progress.png"),
                      metadata: KilnMetadata(command: "fit", seed: seed, settings: metrics))
        print(String(format: "fitted %d Gaussians in %.1f s; held-out PSNR %@ dB, SSIM %@; train PSNR %@ dB",
                     fitted.count, seconds, metrics.heldOutPSNR.map { String(format: "%.2f", $0) } ?? "–",
                     metrics.heldOutSSIM.map { String(format: "%.3f", $0) } ?? "–", metrics.trainPSNR.map { String(format: "%.2f", $0) } ?? "–"))
    }
}

struct ViewMetrics: Codable {
    var view: Int
    var file: String
    var psnr: Double
    var ssim: Double
}

struct FitMetrics: Codable {
    var steps: Int
    var seconds: Double
    var gaussians: Int
    var seed: UInt64
    var background: [Float]
    var heldOut: [ViewMetrics]
    var heldOutPSNR: Double?
    var heldOutSSIM: Double?
    var trainPSNR: Double?
    var trainSSIM: Double?
}
