import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender

/// Multi-view reconstruction consistency (Carve3D's idea) on Kiln's own tools: a condition's
/// caption is sampled at four azimuths 90° apart from shared noise, a short splat fit
/// (`SplatFit`) reconstructs an object from the four images, and the fit is rendered back at the
/// four cameras. The reward is the mean PSNR between the samples and the re-renders, in decibels
/// over 10, the same for the four samples of a link. Views that disagree (a front drawn from
/// every side, colours or shapes that change with the camera) admit no object that renders to
/// all of them, so the fit cannot match them and the reward is low; consistent views score high.
/// Needs no reward model; not differentiable (DDPO, GRPO and DPO use it).
public struct ConsistencySampleReward: SampleReward {
    /// Steps of the splat fit and its initial Gaussians (a few hundred steps fit 32² views).
    public var fitSteps: Int
    public var gaussians: Int

    public init(fitSteps: Int = 200, gaussians: Int = 2000) {
        precondition(fitSteps > 0 && gaussians > 0, "ConsistencySampleReward: steps and Gaussians must be positive")
        (self.fitSteps, self.gaussians) = (fitSteps, gaussians)
    }

    public var name: String { "consistency" }
    public var links: Int { 4 }

    public func linked(_ condition: TuningCondition) -> [TuningCondition] {
        (0..<4).map { k in
            var view = condition.view
            view.azimuthDegrees = (view.azimuthDegrees + 90 * Float(k)).truncatingRemainder(dividingBy: 360)
            return (condition.prompt, view)
        }
    }

    /// The orbit camera of a view: the toy world's field of view, aimed at the origin from a
    /// distance that frames a unit sphere (the scale of a reconstruction is arbitrary; only the
    /// cameras' relative poses matter).
    static func camera(_ view: ViewConditioning, size: Int) -> Camera {
        let fov = ToySample.fovYDegrees * .pi / 180
        return Camera.orbit(azimuthDegrees: view.azimuthDegrees, elevationDegrees: view.elevationDegrees,
                            radius: 1.1 / Foundation.sin(fov / 2), target: .zero, width: size, height: size, fovYRadians: fov)
    }

    public func score(_ conditions: [TuningCondition], images: Tensor, gradient: Bool) throws -> (rewards: [Float], gradient: Tensor?) {
        precondition(conditions.count % links == 0, "ConsistencySampleReward: samples come in links of \(links)")
        guard images.shape.count == 4, images.shape[1] == 3, images.shape[2] == images.shape[3] else {
            throw RewardError("the consistency reward needs square RGB images, got \(images.shape)")
        }
        let size = images.shape[2], plane = size * size
        var rewards: [Float] = []
        for link in 0..<(conditions.count / links) {
            let members = (0..<links).map { link * links + $0 }
            let pictures = members.map { b -> Image in
                // [3, H, W] planes → [H, W, 3] pixels.
                var pixels = [Float](repeating: 0, count: 3 * plane)
                for c in 0..<3 { for i in 0..<plane { pixels[3 * i + c] = images.storage[(b * 3 + c) * plane + i] } }
                return Image(width: size, height: size, channels: 3, pixels: pixels)
            }
            var options = SplatFit.Options()
            (options.steps, options.initialGaussians, options.seed, options.background) = (fitSteps, gaussians, UInt64(link), Self.background(pictures))
            let views = zip(members, pictures).map { SplatFit.View(camera: Self.camera(conditions[$0].view, size: size), image: $1) }
            let fitted = SplatFit.fit(views, options: options)
            let settings = SplatRenderSettings(background: options.background)
            let psnr = views.map { view in
                let color = SplatRasterizer.forward(fitted, camera: view.camera, settings: settings, threads: options.threads).images.color
                return min(50, ImageMetrics.psnr(Image(width: size, height: size, channels: 3, pixels: color), view.image))
            }
            let reward = Float(psnr.reduce(0, +) / Double(psnr.count) / 10)
            rewards += Array(repeating: reward, count: links)
        }
        return (rewards, nil)
    }

    /// The background the samples were drawn on: the mean of their corner pixels.
    static func background(_ pictures: [Image]) -> SIMD3<Float> {
        var sum = SIMD3<Float>(repeating: 0), count: Float = 0
        for p in pictures {
            for (x, y) in [(0, 0), (p.width - 1, 0), (0, p.height - 1), (p.width - 1, p.height - 1)] {
                let i = 3 * (y * p.width + x)
                sum += SIMD3(p.pixels[i], p.pixels[i + 1], p.pixels[i + 2])
                count += 1
            }
        }
        return sum / max(1, count)
    }
}
