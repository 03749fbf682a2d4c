import Foundation
import KilnCore

/// A folder of posed images: transforms.json (NeRF/OpenGL convention) and the PNGs it names.
public enum PosedImageFolder {
    /// The frames, their RGB images (scaled down so that the longer side is at most
    /// `maximumSide`) and their cameras at the images' size.
    public static func load(_ folder: URL, maximumSide: Int? = nil, allowOutsidePaths: Bool = false) throws -> (transforms: NeRFTransforms, images: [Image], cameras: [Camera]) {
        let transformsURL = folder.appendingPathComponent("transforms.json")
        let transforms: NeRFTransforms
        let bytes: Data
        do { bytes = Data(try FileIO.read(transformsURL)) } catch {
            throw PosedImageError("\(error): VIEWS must be a folder holding transforms.json")
        }
        do { _ = try JSONSerialization.jsonObject(with: bytes) } catch {
            throw PosedImageError("\(transformsURL.path) is not valid JSON: \(SettingsFile.syntaxText(error, data: bytes)); fix or rewrite the file")
        }
        do { transforms = try NeRFTransforms(jsonData: bytes) } catch let error as DecodingError {
            let (key, problem) = SettingsFile.describe(error)
            throw PosedImageError("\(transformsURL.path): \(key.map { "'\($0)' " } ?? "")\(problem); fix the file (see the NeRF transforms.json layout)")
        } catch {
            throw PosedImageError("\(transformsURL.path): not a valid transforms.json (\(error))")
        }
        guard !transforms.frames.isEmpty else { throw PosedImageError("\(transformsURL.path) lists no frames") }
        var images: [Image] = []
        let resolvedFolder = FileIO.resolvedComponents(folder)  // once, not per frame
        for frame in transforms.frames {
            let png = try PNG.read(try resolve(frame.filePath, in: folder, resolvedFolder: resolvedFolder, allowOutsidePaths: allowOutsidePaths))
            images.append(png.image(channels: 3))
        }
        let size = (images[0].width, images[0].height)
        guard images.allSatisfy({ $0.width == size.0 && $0.height == size.1 }) else {
            throw PosedImageError("the images differ in size: every view must be \(size.0)×\(size.1)")
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
    public static func resolve(_ path: String, in folder: URL, resolvedFolder: [String]? = nil, allowOutsidePaths: Bool = false) throws -> URL {
        let base = path.hasPrefix("/") ? URL(fileURLWithPath: path) : folder.appendingPathComponent(path)
        if !allowOutsidePaths, !FileIO.isInside(base, resolvedFolder: resolvedFolder ?? FileIO.resolvedComponents(folder)) {
            throw PosedImageError("\(folder.appendingPathComponent("transforms.json").path): file_path \"\(path)\" leads outside the folder; "
                           + "Kiln reads only images inside VIEWS: copy the images into it, or pass --allow-outside-paths if you trust the file")
        }
        for candidate in [base, base.appendingPathExtension("png")] where FileManager.default.fileExists(atPath: candidate.path) {
            return candidate
        }
        throw PosedImageError("\(base.path): the image named in transforms.json does not exist (Kiln reads PNG views)")
    }

    /// Median colour of the outermost pixel ring over all images.
    public static func borderMedian(_ images: [Image]) -> SIMD3<Float> {
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

/// A posed-image folder that cannot be used: what is wrong and the fix.
public struct PosedImageError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
