import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender
import RealModule

/// How well a generated asset matches its prompt from all around, by the reward models: N views
/// on an orbit (azimuth i·360°/N, one elevation), each rendered like a distillation view and
/// averaged down to the models' size.
///
/// - alignment: log p of the prompt's attributes per view (mean, minimum), and how many views
///   the alignment model gives the prompt's kind and main colour;
/// - view: how many views the view model places in the right azimuth bin, and the Janus test:
///   the asset shows a front from behind when more than half of its back views (azimuth within
///   45° of 180°) are classified as front views (azimuth bin within 45° of 0°).
public struct AssetScore: Codable, Sendable, Equatable {
    public var views: Int
    public var meanAlignment: Double
    public var minAlignment: Double
    public var kindAccuracy: Double?
    public var mainColorAccuracy: Double?
    public var azimuthAccuracy: Double
    /// Share of back views seen as fronts.
    public var backSeenAsFront: Double
    public var janus: Bool

    /// Scores splats `p` for `caption`, rendered on `background` by `camera(azimuth, elevation)`.
    public static func measure(_ p: SplatParameters<Float>, caption: ToyCaption, rewards: RewardModels, views n: Int = 16,
                               elevationDegrees: Float = 15, renderSize: Int, background: SIMD3<Float> = SIMD3(1, 1, 1),
                               camera: (Float, Float) -> Camera, threads: Int = Parallel.defaultThreadCount) -> AssetScore {
        measure(caption: caption, rewards: rewards, views: n, elevationDegrees: elevationDegrees, renderSize: renderSize) { a, e in
            SplatRasterizer.forward(p, camera: camera(a, e), settings: SplatRenderSettings(background: background), threads: threads).images.color
        }
    }

    /// Scores any asset for `caption` from its renders: `render(azimuth, elevation)` gives
    /// `[renderSize, renderSize, 3]` display colours in [0, 1].
    public static func measure(caption: ToyCaption, rewards: RewardModels, views n: Int = 16, elevationDegrees: Float = 15, renderSize: Int,
                               render: (Float, Float) -> [Float]) -> AssetScore {
        precondition(n > 0 && renderSize % rewards.imageSize == 0, "AssetScore: the render size must be a multiple of the reward models' size")
        let size = rewards.imageSize, factor = renderSize / size
        let azimuths = (0..<n).map { Float($0) * 360 / Float(n) }
        var pixels: [Float] = []
        for a in azimuths {
            pixels += PriorImage.fromRender(render(a, elevationDegrees), width: renderSize, height: renderSize, factor: factor).map { min(1, max(0, $0 / 2 + 0.5)) }
        }
        let images = Tensor(shape: [n, 3, size, size], storage: pixels)
        var score = AssetScore(views: n, meanAlignment: 0, minAlignment: 0, kindAccuracy: nil, mainColorAccuracy: nil, azimuthAccuracy: 0,
                               backSeenAsFront: 0, janus: false)
        if let alignment = rewards.nets[.alignment] {
            let r = alignmentReward(alignment, images: images, caption: caption).reward
            score.meanAlignment = Double(r.reduce(0, +)) / Double(n)
            score.minAlignment = Double(r.min() ?? 0)
            let logits = alignment.forward(images)
            if let kind = caption.kind {
                let target = ToyKind.allCases.firstIndex(of: kind)!
                score.kindAccuracy = Double(RewardNet.predictions(logits[0]).filter { $0 == target }.count) / Double(n)
            }
            if let color = caption.mainColor {
                let target = ToyColor.allCases.firstIndex(of: color)!
                score.mainColorAccuracy = Double(RewardNet.predictions(logits[1]).filter { $0 == target }.count) / Double(n)
            }
        }
        if let view = rewards.nets[.view] {
            let predicted = RewardNet.predictions(view.forward(images)[0])
            let bins = ToyRewardKind.azimuthBins
            var right = 0, back = 0, backAsFront = 0
            for (i, a) in azimuths.enumerated() {
                let truth = ToyRewardKind.azimuthBin(a)
                if predicted[i] == truth { right += 1 }
                if abs(a - 180) <= 45 {
                    back += 1
                    let p = predicted[i]
                    if p == 0 || p == 1 || p == bins - 1 { backAsFront += 1 }
                }
            }
            score.azimuthAccuracy = Double(right) / Double(n)
            score.backSeenAsFront = back > 0 ? Double(backAsFront) / Double(back) : 0
            score.janus = score.backSeenAsFront > 0.5
        }
        return score
    }
}
