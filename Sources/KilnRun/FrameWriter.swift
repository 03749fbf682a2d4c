import Foundation
import KilnAsset
import KilnCore
import KilnDistill
import KilnRender

/// A 4D run's frames: `frames/splats_NNN.ply` and `frames/asset_NNN.glb` (a numbered mesh
/// sequence) at τ = i/(F − 1), `frames/sheet.png` (frames down, views across),
/// `frames/turntable_NNN/` (12 views of each frame) and `frames/animated.glb` (frame 0's mesh,
/// its vertices carried by the Gaussians around them).
struct FrameWriter {
    let scene: DynamicGaussianScene
    let settings: GenerateSettings
    let folder: RunFolder
    let metadata: KilnMetadata

    /// The length of the loop in `frames/animated.glb`.
    static let animationSeconds: Float = 2

    /// Writes every frame's files; `firstMesh` is frame 0's mesh when it was made already.
    func write(firstMesh: MeshResult? = nil, stopIfInterrupted: () throws -> Void = {}) throws {
        let frames = folder.frames
        try FileManager.default.createDirectory(at: frames, withIntermediateDirectories: true)
        let count = settings.motion.frames, views = settings.views
        // One camera path for every frame, far enough back that the object stays in view at all times.
        let framing = scene.orbitFraming(times: (0..<count).map { Float($0) / Float(count - 1) }, views: views)
        func render(_ p: SplatParameters<Float>, azimuth: Float) -> Image {
            let camera = Camera.orbit(azimuthDegrees: azimuth, elevationDegrees: 15, radius: framing.distance, target: framing.target,
                                      width: 128, height: 128, fovYRadians: ViewSettings.fovYDegrees * .pi / 180)
            return SplatRasterizer.render(p, camera: camera, settings: SplatRenderSettings(background: SIMD3(1, 1, 1))).color
        }
        var sheet: [Image] = [], labels: [String] = []
        var first = firstMesh
        let shown = Set((0..<min(count, 8)).map { $0 * (count - 1) / max(1, min(count, 8) - 1) })
        for i in 0..<count {
            try stopIfInterrupted()
            let tau = Float(i) / Float(count - 1)
            let cloud = scene.cloud(at: tau)
            try GaussianCloudIO.write(cloud.cloud, to: folder.frameSplats(i))
            let mesh = i == 0 && first != nil ? first! : try SplatMeshing(views: views).mesh(cloud)
            if i == 0 { first = mesh }
            _ = try MeshExport.write(mesh.mesh, to: folder.frameAsset(i))
            let turntable = folder.frameTurntable(i)
            try FileManager.default.createDirectory(at: turntable, withIntermediateDirectories: true)
            for v in 0..<12 {
                try PNG.write(render(cloud, azimuth: Float(v * 30)), to: turntable.appendingPathComponent(String(format: "view_%03d.png", v)), metadata: metadata)
            }
            if shown.contains(i) {
                for azimuth in [0, 90, 180, 270] {
                    sheet.append(render(cloud, azimuth: Float(azimuth)))
                    labels.append(String(format: "t=%.2f %d°", tau, azimuth))
                }
            }
        }
        try PNG.write(Image.contactSheet(sheet, columns: 4, labels: labels), to: folder.framesSheet, metadata: metadata)
        // One mesh that moves: frame 0's mesh, its vertices carried by the Gaussians around them.
        let base = first!.mesh.removingUnusedVertices()
        let times = (0..<count).map { Float($0) / Float(count - 1) }
        try MeshExport.writeAnimatedGLB(base, frames: scene.carriedVertices(of: base, times: times), times: times.map { $0 * Self.animationSeconds },
                                        to: folder.animatedAsset)
        say("frames: \(count) (frames/splats_NNN.ply, frames/asset_NNN.glb, frames/animated.glb, frames/sheet.png, frames/turntable_NNN/)")
    }
}
