import ArgumentParser
import Foundation
import KilnAsset
import KilnCore
import KilnEval
import KilnRender

struct EvalViews: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-views",
        abstract: "Multi-view consistency of a folder of posed images (transforms.json): which view contradicts the others.",
        discussion: """
        VIEWS holds transforms.json (NeRF convention) and its PNG images, such as the output of a \
        multi-view diffusion model. Images larger than --size are scaled down to it. For every view, \
        Gaussians are fitted to all the other views and rendered from its camera (held-out PSNR and \
        SSIM, as Carve3D measures reconstruction consistency); one fit to every view gives depth \
        maps through which each pair of views is compared where both see the same surface \
        (photometric error); silhouettes from the background colour are compared with the set's \
        visual hull. A view that stands out on any of the three is flagged and named. Writes \
        DIR/report.json, DIR/report.md and DIR/sheet.png (the views above their held-out renders).
        """
    )

    @Argument(help: "Folder with transforms.json and images.", completion: .directory)
    var views: String

    @OptionGroup var output: OutputFolderOptions

    @OptionGroup var paths: InputPathOptions

    @Option(help: "Fitting steps per reconstruction (views + 1 of them).")
    var steps: Int = 400

    @Option(help: "Random Gaussians each fit starts from.")
    var initial: Int = 3_000

    @Option(help: "Largest image side used; larger images are scaled down.")
    var size: Int = 64

    @Option(help: "Background colour of the images (a name, #rrggbb or r,g,b); default: the median border colour.")
    var background: ColorArgument?

    @Option(help: "Random seed of the fits.")
    var seed: UInt64 = 0

    func validate() throws {
        guard (10...100_000).contains(steps) else { throw ValidationError("--steps must be 10…100000, got \(steps)") }
        guard (8...1024).contains(size) else { throw ValidationError("--size must be 8…1024, got \(size)") }
        guard (1...1_000_000).contains(initial) else { throw ValidationError("--initial must be 1…1000000, got \(initial)") }
    }

    func run() throws {
        let (transforms, images, cameras) = try PosedImageFolder.load(URL(fileURLWithPath: views), maximumSide: size, allowOutsidePaths: paths.allowOutsidePaths)
        guard images.count >= 4 else { throw CLIError("\(views)/transforms.json has \(images.count) frames: judging consistency needs at least 4 views") }
        try output.prepare()
        var options = ViewSetEvaluation.Options()
        options.steps = steps
        options.initialGaussians = initial
        options.seed = seed
        options.background = background?.rgb ?? PosedImageFolder.borderMedian(images)
        let posed = zip(cameras, images).map { PosedView(camera: $0, color: $1, alpha: PosedView.mask(of: $1, background: options.background)) }
        let names = transforms.frames.map { URL(fileURLWithPath: $0.filePath).deletingPathExtension().lastPathComponent }
        let evaluation = ViewSetEvaluation.evaluate(posed, names: names, options: options)
        try OutputFolder.staged(output.url, force: true) { folder in try Self.write(evaluation, images: images, to: folder, command: "eval-views") }
        let r = evaluation.report
        say(String(format: "%d views: held-out PSNR %.2f dB, SSIM %.3f, silhouette coverage %.3f, photometric error %.4f; %@; %.1f s",
                   r.views.count, r.meanHeldOutPSNR, r.meanHeldOutSSIM, r.meanSilhouetteCoverage, r.meanPhotometricError,
                   r.flagged.isEmpty ? "no view stands out" : "stands out: " + r.flagged.joined(separator: ", "), r.seconds))
    }

    /// report.json, report.md and sheet.png (targets above held-out renders, flagged views marked).
    static func write(_ evaluation: ViewSetEvaluation.Result, images: [Image], to folder: URL, command: String) throws {
        let r = evaluation.report
        try writeJSON(r, to: folder.appendingPathComponent("report.json"))
        try FileIO.writeAtomically(Data(r.markdown.utf8), to: folder.appendingPathComponent("report.md"))
        let shown = min(16, images.count)
        let labels = r.views.prefix(shown).map { ($0.flags.isEmpty ? "" : "! ") + $0.name }
            + r.views.prefix(shown).map { String(format: "fit %.1f dB", $0.heldOutPSNR) }
        // Small views are enlarged (bilinear) to at least 96 pixels, so that labels fit.
        let factor = max(1, (96 + images[0].width - 1) / images[0].width)
        let tiles = (Array(images.prefix(shown)) + Array(evaluation.heldOutRenders.prefix(shown))).map {
            $0.resized(width: $0.width * factor, height: $0.height * factor)
        }
        try PNG.write(Image.contactSheet(tiles, columns: min(8, shown), labels: labels),
                      to: folder.appendingPathComponent("sheet.png"), metadata: KilnMetadata(command: command, settings: ["views": "\(images.count)"]))
    }
}

/// A folder of posed images: transforms.json (NeRF/OpenGL convention) and the PNGs it names.
enum PosedImageFolder {
    /// The frames, their RGB images (scaled down so that the longer side is at most
    /// `maximumSide`) and their cameras at the images' size.
    static func load(_ folder: URL, maximumSide: Int? = nil, allowOutsidePaths: Bool = false) throws -> (transforms: NeRFTransforms, images: [Image], cameras: [Camera]) {
        let transformsURL = folder.appendingPathComponent("transforms.json")
        let transforms: NeRFTransforms
        let bytes: Data
        do { bytes = Data(try FileIO.read(transformsURL)) } catch {
            throw CLIError("\(error): VIEWS must be a folder holding transforms.json")
        }
        do { _ = try JSONSerialization.jsonObject(with: bytes) } catch {
            throw CLIError("\(transformsURL.path) is not valid JSON: \(jsonSyntaxText(error, data: bytes)); fix or rewrite the file")
        }
        do { transforms = try NeRFTransforms(jsonData: bytes) } catch let error as DecodingError {
            throw CLIError("\(transformsURL.path): \(describe(error)); fix the file (see the NeRF transforms.json layout)")
        } catch {
            throw CLIError("\(transformsURL.path): not a valid transforms.json (\(error))")
        }
        guard !transforms.frames.isEmpty else { throw CLIError("\(transformsURL.path) lists no frames") }
        var images: [Image] = []
        let resolvedFolder = FileIO.resolvedComponents(folder)  // once, not per frame
        for frame in transforms.frames {
            let png = try PNG.read(try resolve(frame.filePath, in: folder, resolvedFolder: resolvedFolder, allowOutsidePaths: allowOutsidePaths))
            images.append(png.image(channels: 3))
        }
        let size = (images[0].width, images[0].height)
        guard images.allSatisfy({ $0.width == size.0 && $0.height == size.1 }) else {
            throw CLIError("the images differ in size: every view must be \(size.0)×\(size.1)")
        }
        if let maximumSide, max(size.0, size.1) > maximumSide {
            let scale = Double(maximumSide) / Double(max(size.0, size.1))
            let w = max(1, Int((Double(size.0) * scale).rounded())), h = max(1, Int((Double(size.1) * scale).rounded()))
            images = images.map { $0.resized(width: w, height: h) }
        }
        let cameras = try transforms.cameras(imageWidth: images[0].width, imageHeight: images[0].height)
        return (transforms, images, cameras)
    }

    /// The image a frame names: as written, or with .png added (NeRF files often omit it). Paths
    /// that lead outside `folder` (`../`, absolute, through a link) are refused unless allowed.
    static func resolve(_ path: String, in folder: URL, resolvedFolder: [String]? = nil, allowOutsidePaths: Bool = false) throws -> URL {
        let base = path.hasPrefix("/") ? URL(fileURLWithPath: path) : folder.appendingPathComponent(path)
        if !allowOutsidePaths, !FileIO.isInside(base, resolvedFolder: resolvedFolder ?? FileIO.resolvedComponents(folder)) {
            throw CLIError("\(folder.appendingPathComponent("transforms.json").path): file_path \"\(path)\" leads outside the folder; "
                           + "Kiln reads only images inside VIEWS: copy the images into it, or pass --allow-outside-paths if you trust the file")
        }
        for candidate in [base, base.appendingPathExtension("png")] where FileManager.default.fileExists(atPath: candidate.path) {
            return candidate
        }
        throw CLIError("\(base.path): the image named in transforms.json does not exist (Kiln reads PNG views)")
    }

    /// Median colour of the outermost pixel ring over all images.
    static func borderMedian(_ images: [Image]) -> SIMD3<Float> {
        var channels: [[Float]] = [[], [], []]
        for image in images {
            for y in 0..<image.height {
                for x in 0..<image.width where x == 0 || y == 0 || x == image.width - 1 || y == image.height - 1 {
                    for c in 0..<3 { channels[c].append(image[x, y, c]) }
                }
            }
        }
        let m = channels.map { v -> Float in let s = v.sorted(); return s.isEmpty ? 1 : s[s.count / 2] }
        return SIMD3(m[0], m[1], m[2])
    }
}
