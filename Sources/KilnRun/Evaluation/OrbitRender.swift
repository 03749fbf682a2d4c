import Foundation
import KilnAsset
import KilnCore
import KilnRender

/// `kiln render`: an asset rendered from an orbit of views framed on its bounding sphere.
public struct OrbitRender {
    public var views: Int
    public var size: Int
    public var elevation: Float
    public var background: SIMD3<Float>
    /// The camera distance (nil: framed on the sphere).
    public var radius: Float? = nil
    public var depth = false
    public var normals = false

    public init(views: Int, size: Int, elevation: Float, background: SIMD3<Float>) {
        (self.views, self.size, self.elevation, self.background) = (views, size, elevation, background)
    }

    /// Every view (colour, and optionally 16-bit depth and world normals), transforms.json and sheet.png into `folder`.
    public func write(_ subject: RenderSubject, center: SIMD3<Float>, sphere: Float, url: URL, to folder: URL) throws {
        let cameras = OrbitFraming.cameras(views: views, size: size, center: center, radius: sphere, elevationDegrees: elevation, distance: radius)
        let splatSettings = SplatRenderSettings(background: background)
        let meshSettings = MeshRenderSettings(background: background)
        var tiles: [Image] = [], names: [String] = []
        var depthScale: Float?
        for (i, camera) in cameras.enumerated() {
            let color: Image, depthImage: Image, normalImage: Image?
            switch subject {
            case .splats(let parameters):
                let view = SplatRasterizer.render(parameters, camera: camera, settings: splatSettings)
                (color, depthImage, normalImage) = (view.color, view.depth, nil)
            case .mesh(let renderer):
                let view = renderer.render(camera: camera, settings: meshSettings)
                (color, depthImage, normalImage) = (view.color, view.depth, view.normal)
            }
            let name = String(format: "view_%03d.png", i)
            let azimuth = 360 * Float(i) / Float(views)
            let metadata = KilnMetadata(command: "render", settings: RenderSettingsRecord(asset: url.lastPathComponent, view: i, azimuthDegrees: azimuth,
                                                                                          elevationDegrees: elevation, size: size, depthScale: nil))
            try PNG.write(color, to: folder.appendingPathComponent(name), metadata: metadata)
            if depth {
                // One scale for every view: 16 bits over the farthest possible depth.
                let scale = depthScale ?? Float((length(camera.position - center) + sphere * 2) / 65535)
                depthScale = scale
                let samples = depthImage.pixels.map { UInt16(min(65535, max(0, ($0 / scale).rounded()))) }
                let record = KilnMetadata(command: "render", settings: RenderSettingsRecord(asset: url.lastPathComponent, view: i, azimuthDegrees: azimuth,
                                                                                            elevationDegrees: elevation, size: size, depthScale: scale))
                try PNG.writeGray16(samples, width: size, height: size, to: folder.appendingPathComponent(String(format: "depth_%03d.png", i)),
                                    metadata: record, extraText: [PNGTextEntry("depth_scale", "\(scale)")])
            }
            if normals, let normalImage {
                var encoded = normalImage
                encoded.pixels = normalImage.pixels.map { ($0 + 1) / 2 }
                try PNG.write(encoded, to: folder.appendingPathComponent(String(format: "normal_%03d.png", i)), metadata: metadata)
            }
            tiles.append(color)
            names.append(name)
            print(String(format: "  view %d/%d: azimuth %.0f°", i + 1, views, azimuth))
        }
        var transforms = try NeRFTransforms(cameras: cameras, filePaths: names)
        transforms.depthScale = depthScale
        try FileIO.writeAtomically(transforms.jsonData(), to: folder.appendingPathComponent("transforms.json"))
        let sheet = Image.contactSheet(tiles, labels: (0..<views).map { "azimuth \(Int((360 * Float($0) / Float(views)).rounded()))" })
        try PNG.write(sheet, to: folder.appendingPathComponent("sheet.png"),
                      metadata: KilnMetadata(command: "render", settings: ["asset": url.lastPathComponent, "views": "\(views)"]))
    }
}

struct RenderSettingsRecord: Codable {
    var asset: String
    var view: Int
    var azimuthDegrees: Float
    var elevationDegrees: Float
    var size: Int
    var depthScale: Float?
}
