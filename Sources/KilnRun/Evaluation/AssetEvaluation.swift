import Foundation
import KilnAsset
import KilnCore
import KilnDistill
import KilnEval
import KilnPrior
import KilnToyWorld
import KilnRender
import RealModule

/// `kiln eval`: an asset (a run folder, a splat file or a mesh) rendered from many views and
/// judged: prompt alignment and view consistency by the reward models, geometric consistency,
/// a 4D run's frames over time, a mesh's health.
public struct AssetEvaluation {
    public var asset: URL
    public var output: URL
    public var rewardsFolder: URL
    /// The prompt to judge alignment against (nil: a run's own prompt).
    public var prompt: String? = nil
    public var views = 16
    public var elevation: Float = 15
    public var icosphere = false
    public var size = 128
    public var allowOutsidePaths = false

    public init(asset: URL, output: URL, rewardsFolder: URL) {
        (self.asset, self.output, self.rewardsFolder) = (asset, output, rewardsFolder)
    }

    /// Renders, judges and writes report.json, report.md, sheet.png and profile.json into `output`
    /// (all at once).
    public func run() throws {
        let profiler = Profiler()
        try profiler.activate { try evaluate(profiler) }
    }

    func evaluate(_ profiler: Profiler) throws {
        let clock = ContinuousClock(), start = clock.now
        var url = asset
        var caption = prompt
        var isDirectory: ObjCBool = false
        let isRunFolder = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
        // The run the asset belongs to (a run folder, or a file beside a run's config.json), read once.
        let runFolder = isRunFolder ? url : url.deletingLastPathComponent()
        let run = try? GenerateSettings.load(run: RunFolder(runFolder))
        if isRunFolder {
            if caption == nil { caption = run?.prompt }
            let candidates = ["splats.ply", "field.safetensors", "asset.glb"].map { url.appendingPathComponent($0) }
            guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
                throw RunError("\(asset.relativePath) holds neither splats.ply, field.safetensors nor asset.glb: give a finished kiln generate run, a splat file or a mesh")
            }
            url = found
        }
        // A NeRF run is judged on its field, framed as its run framed it.
        var field: NeRFField? = nil
        if url.lastPathComponent == "field.safetensors" {
            guard let run else { throw RunError("\(runFolder.path)/config.json cannot be read: a NeRF run needs it to rebuild its field; rerun kiln generate") }
            field = try FieldMeshing.load(runFolder: runFolder, settings: run)
        }
        var nerfSamples = 64
        var (subject, center, radius): (RenderSubject?, SIMD3<Float>, Float)
        if let field, let settings = run {
            (subject, center, radius) = (nil, field.center, settings.views.objectRadius)
            nerfSamples = settings.nerf.samplesPerRay
        } else {
            (subject, center, radius) = try RenderSubject.load(url, name: asset.relativePath, allowOutsidePaths: allowOutsidePaths)
        }
        if case .mesh(let renderer)? = subject, let bounds = renderer.mesh.bounds {
            // The toy world frames an object on half its bounding box's diagonal.
            center = (bounds.min + bounds.max) / 2
            radius = length(bounds.max - bounds.min) / 2
        } else if case .splats? = subject, url.lastPathComponent == "splats.ply", let settings = run {
            // A run's splats are framed as the run framed them (its object ball), as its score.json was.
            (center, radius) = (.zero, settings.views.objectRadius)
        }
        let fov = ToySample.fovYDegrees * .pi / 180
        let distance = radius / Foundation.sin(fov / 2) * 1.1
        do { try OrbitFraming.check(center: center, radius: radius, distance: distance, name: asset.relativePath) } catch { throw RunError("\(error)") }
        let rewardsURL = rewardsFolder
        let rewards = rewardsURL.path
        let models = try RewardModels(folder: rewardsURL)
        guard size % models.imageSize == 0 else { throw RunError("--size \(size) is not a multiple of the reward models' \(models.imageSize)") }
        let createdFolder = try OutputFolder.prepare(output, force: true)
        profiler.record("load", seconds: (clock.now - start).seconds)
        let angles = icosphere ? ViewAngle.icosphere() : ViewAngle.orbit(views, elevationDegrees: elevation)
        func camera(_ a: Float, _ e: Float) -> Camera {
            Camera.orbit(azimuthDegrees: a, elevationDegrees: e, radius: distance, target: center, width: size, height: size, fovYRadians: fov)
        }
        // Meshes are lit as the toy world lights its objects (the reward models' training data).
        let meshSettings = MeshRenderSettings(background: SIMD3(1, 1, 1), lightDirectionCamera: normalize(SIMD3(0, -0.4, -1)), ambient: 0.35, diffuse: 0.65)
        var posed: [PosedView] = []
        /// Renders one view, keeping its colour, alpha and depth for the geometric measures.
        func render(_ a: Float, _ e: Float) -> [Float] {
            let view = camera(a, e)
            switch subject {
            case nil:
                let frame = NeRFRenderer(samplesPerRay: nerfSamples).render(field!, camera: view, background: SIMD3(1, 1, 1), occupancy: nil)
                // The renderer's depth is the expected distance along each ray; views compare camera-space z.
                var depth = [Float](repeating: 0, count: size * size)
                for y in 0..<size {
                    for x in 0..<size where frame.alpha[y * size + x] > 0.01 {
                        let (_, direction) = view.ray(pixelX: x, pixelY: y)
                        depth[y * size + x] = frame.depth[y * size + x] / frame.alpha[y * size + x] * dot(direction, view.forward)
                    }
                }
                posed.append(PosedView(camera: view, color: Image(width: size, height: size, channels: 3, pixels: frame.color),
                                       alpha: Image(width: size, height: size, channels: 1, pixels: frame.alpha),
                                       depth: Image(width: size, height: size, channels: 1, pixels: depth)))
            case .splats(let p)?:
                let r = SplatRasterizer.render(p, camera: view, settings: SplatRenderSettings(background: SIMD3(1, 1, 1)))
                posed.append(PosedView(camera: view, color: r.color, alpha: r.alpha, depth: r.depth))
            case .mesh(let renderer)?:
                let r = renderer.render(camera: view, settings: meshSettings)
                posed.append(PosedView(camera: view, color: r.color, alpha: r.alpha, depth: r.depth))
            }
            return posed.last!.color.pixels
        }
        let score = profiler.measure("render and score") {
            AssetScore.measure(caption: Prompt(caption ?? "").caption, rewards: models, views: angles, renderSize: size) { a, e in
                Profiler.measure("render") { render(a, e) }
            }
        }
        let renders = posed.map(\.color)
        let geometry = profiler.measure("geometric consistency") { GeometricConsistency.measure(posed) }
        let speckle = profiler.measure("speckle") { SpeckleMeasure.measure(posed) }
        // A 4D run: its frames judged over time.
        var temporal: TemporalReport? = nil
        if let settings = run, settings.dynamic {
            // The motion-pair model judges the frames too, where the rewards folder has one.
            let pairURL = rewardsURL.appendingPathComponent("motion_pair.safetensors")
            var judge: MotionPairReward? = nil
            if FileManager.default.fileExists(atPath: pairURL.path) {
                judge = try MotionPairReward.load(pairURL)
            } else {
                warn("\(rewards) has no motion_pair.safetensors: the frames' motion is judged from the Gaussians only (kiln train-motion-reward --out \(rewards) --force makes it)")
            }
            temporal = try profiler.measure("frames over time") {
                try TemporalReport.measure(runFolder: runFolder, settings: settings, caption: Prompt(caption ?? "").caption, rewards: models,
                                           motionJudge: judge, size: models.imageSize * 2, camera: camera)
            }
        }
        var health: MeshHealth? = nil
        if case .mesh(let renderer)? = subject { health = renderer.mesh.health }
        let report = EvalReport(asset: url.path, prompt: caption, representation: field != nil ? "nerf" : health == nil ? "splats" : "mesh", size: size, score: score,
                                geometry: geometry, speckle: speckle, temporal: temporal, meshHealth: health, seconds: (clock.now - start).seconds)
        let labels = score.perView.map { v in
            String(format: "%.0f°/%.0f° %@ %.1f", v.azimuthDegrees, v.elevationDegrees, v.predictedKind ?? "", v.alignment)
        }
        // The four files appear together (the folder was checked above, so --force here only
        // means "the folder is ours"); if this command made the folder, a failure removes it.
        do {
            try OutputFolder.staged(output, force: true) { folder in
                try writeJSON(report, to: folder.appendingPathComponent("report.json"))
                try FileIO.writeAtomically(Data(report.markdown.utf8), to: folder.appendingPathComponent("report.md"))
                try PNG.write(Image.contactSheet(renders, columns: min(8, renders.count), labels: labels), to: folder.appendingPathComponent("sheet.png"),
                              metadata: KilnMetadata(command: "eval", prompt: caption, settings: ["views": "\(angles.count)", "size": "\(size)"]))
                // Everything but the writing of these files.
                try writeJSON(profiler.profile, to: folder.appendingPathComponent("profile.json"))
            }
        } catch {
            if createdFolder { try? FileManager.default.removeItem(at: output) }
            throw error
        }
        say(String(format: "%@: alignment %.2f (min %.2f, spread %.2f), kind %@, azimuth %.2f, Janus %@ (%.0f%% of back views seen as fronts); "
                   + "silhouettes %.0f%% covered by the hull, neighbours agree in depth %.0f%%, colour error %.3f, speckle %.3f%@; %.1f s",
                   url.lastPathComponent, score.meanAlignment, score.minAlignment, score.alignmentSpread,
                   score.kindAccuracy.map { String(format: "%.2f", $0) } ?? "–", score.azimuthAccuracy, score.janus ? "yes" : "no",
                   100 * score.backSeenAsFront, 100 * geometry.minSilhouetteCoverage, 100 * geometry.meanDepthAgreement, geometry.meanReprojectionColorError, speckle.mean,
                   health.map { $0.watertight ? ", watertight" : ", not watertight (\($0.boundaryEdges) boundary edges)" } ?? "",
                   report.seconds))
    }
}


/// `kiln eval`'s report.json.
public struct EvalReport: Codable {
    var asset: String
    var prompt: String?
    var representation: String
    var size: Int
    var score: AssetScore
    var geometry: GeometricConsistency
    /// Absent in reports written before the measure existed.
    var speckle: SpeckleMeasure?
    var temporal: TemporalReport?
    var meshHealth: MeshHealth?
    var seconds: Double

    var markdown: String {
        var md = "# Evaluation of \(URL(fileURLWithPath: asset).lastPathComponent)\n\n"
        md += "Prompt: \(prompt.map { "\"\($0)\"" } ?? "none (alignment not measured)"); \(score.views) views at \(size)²; \(String(format: "%.1f", seconds)) s.\n\n"
        md += "| measure | value |\n| --- | ---: |\n"
        md += String(format: "| mean alignment (log p of the prompt's attributes) | %.3f |\n| minimum alignment | %.3f |\n| alignment spread (std) | %.3f |\n",
                     score.meanAlignment, score.minAlignment, score.alignmentSpread)
        md += "| kind recognised | \(score.kindAccuracy.map { String(format: "%.0f%%", 100 * $0) } ?? "–") |\n"
        md += "| main colour recognised | \(score.mainColorAccuracy.map { String(format: "%.0f%%", 100 * $0) } ?? "–") |\n"
        md += String(format: "| azimuth bin right | %.0f%% |\n| back views seen as fronts (Janus score) | %.0f%% |\n", 100 * score.azimuthAccuracy, 100 * score.backSeenAsFront)
        md += "| Janus | \(score.janus ? "yes" : "no") |\n"
        md += String(format: "| silhouettes covered by the visual hull (%d³), worst view | %.1f%% |\n| silhouette IoU with the hull, mean | %.3f |\n",
                     geometry.hullResolution, 100 * geometry.minSilhouetteCoverage, geometry.meanSilhouetteIoU)
        md += String(format: "| depth agreement with the nearest view (reprojection) | %.1f%% |\n| colour error where the depths agree | %.4f |\n",
                     100 * geometry.meanDepthAgreement, geometry.meanReprojectionColorError)
        if let speckle { md += String(format: "| speckle (RMS colour a one-pixel blur removes inside the object), mean | %.3f |\n", speckle.mean) }
        if let t = temporal {
            md += "\n## Over time (\(t.frames) frames)\n\n| measure | value |\n| --- | ---: |\n"
            md += String(format: "| alignment, mean over frames (8 views each) | %.3f |\n| alignment, worst frame | %.3f |\n", t.meanAlignment, t.minFrameAlignment)
            md += String(format: "| frame-to-frame change at fixed views | %.4f |\n| flicker (second difference) | %.4f |\n", t.stability.frameChange, t.stability.flicker)
            md += "| motion shown | \(t.motion.dominant) |\n| motion asked for | \(t.captionMotion ?? "none") |\n"
            md += "| motion matches the caption | \(t.motionMatches ? "yes" : "no") |\n"
            for (name, fraction) in t.motion.fractions.sorted(by: { $0.key < $1.key }) {
                md += String(format: "| %@ (fraction of the toy world's amplitude) | %.2f |\n", name, fraction)
            }
            if let j = t.judged {
                md += "| motion seen by the motion-pair model (\(j.pairs) frame pairs) | \(j.dominant) |\n"
                md += "| motion-pair model agrees with the caption | \(t.judgedMatches == true ? "yes" : "no") |\n"
                for (name, p) in j.probabilities.sorted(by: { $0.key < $1.key }) {
                    md += String(format: "| %@ (motion-pair model's mean probability) | %.2f |\n", name, p)
                }
            }
        }
        if let h = meshHealth {
            md += "\n## Mesh health\n\n| | |\n| --- | ---: |\n"
            md += "| vertices / triangles | \(h.vertices) / \(h.triangles) |\n| watertight | \(h.watertight ? "yes" : "no") |\n"
            md += "| components | \(h.components) |\n| boundary / non-manifold edges | \(h.boundaryEdges) / \(h.nonManifoldEdges) |\n"
            md += "| degenerate triangles | \(h.degenerateTriangles) |\n"
            if let lo = h.boundsMin, let hi = h.boundsMax {
                md += String(format: "| bounds | (%.3f, %.3f, %.3f) – (%.3f, %.3f, %.3f) |\n", lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])
            }
        }
        md += "\n## Views\n\n| azimuth | elevation | alignment | kind seen | colour seen | azimuth seen | hull coverage | depth agreement | colour error | speckle |\n"
            + "| ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
        for (i, v) in score.perView.enumerated() {
            md += String(format: "| %.0f° | %.0f° | %.3f | %@ | %@ | %@ | %.3f | %.2f | %.4f | %@ |\n", v.azimuthDegrees, v.elevationDegrees, v.alignment, v.predictedKind ?? "–",
                         v.predictedMainColor ?? "–", v.predictedAzimuthDegrees.map { String(format: "%.0f°", $0) } ?? "–", geometry.silhouetteCoverage[i],
                         geometry.reprojection[i].depthAgreement, geometry.reprojection[i].colorError,
                         speckle?.perView[i].map { String(format: "%.3f", $0) } ?? "–")
        }
        return md
    }
}

/// A 4D run judged over time (`kiln eval` of a run with frames): per-frame alignment from 8
/// orbit views, temporal stability at 4 fixed views, and the motion its frames show against the
/// caption's: from the Gaussians' positions (`MotionAnalysis`) and, where the rewards folder has
/// the motion-pair model, from the renders at the 4 fixed views (`MotionJudgement`).
public struct TemporalReport: Codable {
    var frames: Int
    var perFrameAlignment: [Double]
    var meanAlignment: Double
    var minFrameAlignment: Double
    var stability: TemporalStability
    var motion: MotionAnalysis
    var captionMotion: String?
    var motionMatches: Bool
    /// The motion-pair model's judgement of the renders (nil without the model, or with too few frames).
    var judged: MotionJudgement?
    var judgedMatches: Bool?

    static func measure(runFolder: URL, settings: GenerateSettings, caption: ToyCaption, rewards: RewardModels, motionJudge: MotionPairReward?, size: Int,
                        camera: (Float, Float) -> Camera) throws -> TemporalReport {
        let count = settings.motion.frames
        var clouds: [SplatParameters<Float>] = []
        for i in 0..<count {
            let url = RunFolder(runFolder).frameSplats(i)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw RunError("\(url.path) is missing: the 4D run did not finish; resume it with kiln generate --resume")
            }
            clouds.append(SplatParameters(try GaussianCloudIO.read(url)))
        }
        guard clouds.allSatisfy({ $0.count == clouds[0].count }) else { throw RunError("the frames of \(runFolder.path) hold different Gaussians; regenerate the run") }
        let times = (0..<count).map { Float($0) / Float(count - 1) }
        func render(_ p: SplatParameters<Float>, _ a: Float, _ e: Float, size: Int = size) -> Image {
            let full = camera(a, e)
            let scaled = full.resized(width: size, height: size)
            return SplatRasterizer.render(p, camera: scaled, settings: SplatRenderSettings(background: SIMD3(1, 1, 1))).color
        }
        let perFrame = clouds.map { cloud in
            AssetScore.measure(caption: caption, rewards: rewards, views: ViewAngle.orbit(8), renderSize: size) { a, e in render(cloud, a, e).pixels }.meanAlignment
        }
        let fixedAzimuths: [Float] = [0, 90, 180, 270]
        let sequences = fixedAzimuths.map { a in clouds.map { render($0, a, 15) } }
        let motion = MotionAnalysis.measure(clouds, times: times)
        let asked = caption.motion?.rawValue
        let judged = motionJudge.flatMap { model in
            MotionJudgement.judge(model, sequences: fixedAzimuths.map { a in clouds.map { render($0, a, 15, size: model.imageSize) } }, times: times)
        }
        return TemporalReport(frames: count, perFrameAlignment: perFrame, meanAlignment: perFrame.reduce(0, +) / Double(count),
                              minFrameAlignment: perFrame.min() ?? 0, stability: TemporalStability.measure(sequences), motion: motion,
                              captionMotion: asked, motionMatches: motion.dominant == (asked ?? "still"),
                              judged: judged, judgedMatches: judged.map { $0.dominant == (asked ?? "still") })
    }
}
