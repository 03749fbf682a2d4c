import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender
import KilnToyWorld
import RealModule

/// A camera direction around an asset: azimuth (0 = the front, +Z) and elevation, degrees.
public struct ViewAngle: Codable, Sendable, Equatable {
    public var azimuthDegrees: Float
    public var elevationDegrees: Float
    public init(azimuthDegrees: Float, elevationDegrees: Float) {
        self.azimuthDegrees = azimuthDegrees
        self.elevationDegrees = elevationDegrees
    }

    /// N views on an orbit: azimuth i·360°/N at one elevation.
    public static func orbit(_ n: Int, elevationDegrees: Float = 15) -> [ViewAngle] {
        (0..<n).map { ViewAngle(azimuthDegrees: Float($0) * 360 / Float(n), elevationDegrees: elevationDegrees) }
    }

    /// The directions of an icosphere (12 icosahedron vertices, 42 after one subdivision, 162
    /// after two) within the toy world's elevations (−10° to 60°), nearest-first from the front.
    public static func icosphere(subdivisions: Int = 1) -> [ViewAngle] {
        let t = Float((1 + 5.0.squareRoot()) / 2)
        var vertices: [SIMD3<Float>] = [SIMD3(-1, t, 0), SIMD3(1, t, 0), SIMD3(-1, -t, 0), SIMD3(1, -t, 0), SIMD3(0, -1, t), SIMD3(0, 1, t),
                                        SIMD3(0, -1, -t), SIMD3(0, 1, -t), SIMD3(t, 0, -1), SIMD3(t, 0, 1), SIMD3(-t, 0, -1), SIMD3(-t, 0, 1)].map(normalize)
        var faces: [SIMD3<Int>] = [SIMD3(0, 11, 5), SIMD3(0, 5, 1), SIMD3(0, 1, 7), SIMD3(0, 7, 10), SIMD3(0, 10, 11), SIMD3(1, 5, 9), SIMD3(5, 11, 4),
                                   SIMD3(11, 10, 2), SIMD3(10, 7, 6), SIMD3(7, 1, 8), SIMD3(3, 9, 4), SIMD3(3, 4, 2), SIMD3(3, 2, 6), SIMD3(3, 6, 8),
                                   SIMD3(3, 8, 9), SIMD3(4, 9, 5), SIMD3(2, 4, 11), SIMD3(6, 2, 10), SIMD3(8, 6, 7), SIMD3(9, 8, 1)]
        for _ in 0..<max(0, subdivisions) {
            var midpoint: [SIMD2<Int>: Int] = [:]
            func middle(_ a: Int, _ b: Int) -> Int {
                let key = SIMD2(min(a, b), max(a, b))
                if let m = midpoint[key] { return m }
                vertices.append(normalize(vertices[a] + vertices[b]))
                midpoint[key] = vertices.count - 1
                return vertices.count - 1
            }
            faces = faces.flatMap { f -> [SIMD3<Int>] in
                let ab = middle(f.x, f.y), bc = middle(f.y, f.z), ca = middle(f.z, f.x)
                return [SIMD3(f.x, ab, ca), SIMD3(f.y, bc, ab), SIMD3(f.z, ca, bc), SIMD3(ab, bc, ca)]
            }
        }
        let angles = vertices.map { v -> ViewAngle in
            var azimuth = Float.atan2(y: v.x, x: v.z) * 180 / .pi
            if azimuth < 0 { azimuth += 360 }
            return ViewAngle(azimuthDegrees: azimuth, elevationDegrees: Float.asin(max(-1, min(1, v.y))) * 180 / .pi)
        }
        return angles.filter { (-10...60).contains($0.elevationDegrees) }
            .sorted { (min($0.azimuthDegrees, 360 - $0.azimuthDegrees), $0.elevationDegrees) < (min($1.azimuthDegrees, 360 - $1.azimuthDegrees), $1.elevationDegrees) }
    }
}

/// How well an asset matches its prompt from all around, by the reward models: each view rendered
/// like a distillation view and averaged down to the models' size.
///
/// - alignment: log p of the prompt's attributes per view (mean, minimum, spread = standard
///   deviation), and how many views the alignment model gives the prompt's kind and main colour;
/// - view: how many views the view model places in the right azimuth bin, and the Janus test:
///   the asset shows a front from behind when more than half of its back views (azimuth within
///   45° of 180°) are classified as front views (azimuth bin within 45° of 0°).
public struct AssetScore: Codable, Sendable, Equatable {
    public var views: Int
    public var meanAlignment: Double
    public var minAlignment: Double
    public var alignmentSpread: Double
    public var kindAccuracy: Double?
    public var mainColorAccuracy: Double?
    public var azimuthAccuracy: Double
    /// Share of back views seen as fronts.
    public var backSeenAsFront: Double
    public var janus: Bool
    public var perView: [ViewScore]

    /// One view's verdict.
    public struct ViewScore: Codable, Sendable, Equatable {
        public var azimuthDegrees: Float
        public var elevationDegrees: Float
        /// log p of the prompt's attributes (0 without an alignment model or named attributes).
        public var alignment: Float
        /// The alignment model's kind and main colour, and the view model's azimuth bin centre.
        public var predictedKind: String?
        public var predictedMainColor: String?
        public var predictedAzimuthDegrees: Float?
    }

    /// Scores splats `p` for `caption`, rendered on `background` by `camera(azimuth, elevation)`.
    public static func measure(_ p: SplatParameters<Float>, caption: ToyCaption, rewards: RewardModels, views: [ViewAngle] = ViewAngle.orbit(16),
                               renderSize: Int, background: SIMD3<Float> = SIMD3(1, 1, 1),
                               camera: (Float, Float) -> Camera, threads: Int = Parallel.defaultThreadCount) -> AssetScore {
        measure(caption: caption, rewards: rewards, views: views, renderSize: renderSize) { a, e in
            SplatRasterizer.forward(p, camera: camera(a, e), settings: SplatRenderSettings(background: background), threads: threads).images.color
        }
    }

    /// Scores any asset for `caption` from its renders: `render(azimuth, elevation)` gives
    /// `[renderSize, renderSize, 3]` display colours in [0, 1].
    public static func measure(caption: ToyCaption, rewards: RewardModels, views angles: [ViewAngle] = ViewAngle.orbit(16), renderSize: Int,
                               render: (Float, Float) -> [Float]) -> AssetScore {
        let n = angles.count
        precondition(n > 0 && renderSize % rewards.imageSize == 0, "AssetScore: the render size must be a multiple of the reward models' size")
        let size = rewards.imageSize, factor = renderSize / size
        var pixels: [Float] = []
        for v in angles {
            pixels += PriorImage.fromRender(render(v.azimuthDegrees, v.elevationDegrees), width: renderSize, height: renderSize, factor: factor)
                .map { min(1, max(0, $0 / 2 + 0.5)) }
        }
        let images = Tensor(shape: [n, 3, size, size], storage: pixels)
        var perView = angles.map { ViewScore(azimuthDegrees: $0.azimuthDegrees, elevationDegrees: $0.elevationDegrees, alignment: 0) }
        var score = AssetScore(views: n, meanAlignment: 0, minAlignment: 0, alignmentSpread: 0, kindAccuracy: nil, mainColorAccuracy: nil,
                               azimuthAccuracy: 0, backSeenAsFront: 0, janus: false, perView: [])
        if let alignment = rewards.nets[.alignment] {
            let r = alignmentReward(alignment, images: images, caption: caption).reward
            let mean = Double(r.reduce(0, +)) / Double(n)
            score.meanAlignment = mean
            score.minAlignment = Double(r.min() ?? 0)
            score.alignmentSpread = (r.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +) / Double(n)).squareRoot()
            let logits = alignment.forward(images)
            let kinds = RewardNet.predictions(logits[0]), colors = RewardNet.predictions(logits[1])
            for i in 0..<n {
                perView[i].alignment = r[i]
                perView[i].predictedKind = ToyKind.allCases[kinds[i]].rawValue
                perView[i].predictedMainColor = ToyColor.allCases[colors[i]].rawValue
            }
            if let kind = caption.kind {
                let target = ToyKind.allCases.firstIndex(of: kind)!
                score.kindAccuracy = Double(kinds.filter { $0 == target }.count) / Double(n)
            }
            if let color = caption.mainColor {
                let target = ToyColor.allCases.firstIndex(of: color)!
                score.mainColorAccuracy = Double(colors.filter { $0 == target }.count) / Double(n)
            }
        }
        if let view = rewards.nets[.view] {
            let predicted = RewardNet.predictions(view.forward(images)[0])
            let bins = RewardTerm.azimuthBins
            var right = 0, back = 0, backAsFront = 0
            for (i, v) in angles.enumerated() {
                perView[i].predictedAzimuthDegrees = Float(predicted[i] * 360 / bins)
                if predicted[i] == RewardTerm.azimuthBin(v.azimuthDegrees) { right += 1 }
                if abs(v.azimuthDegrees - 180) <= 45 {
                    back += 1
                    let p = predicted[i]
                    if p == 0 || p == 1 || p == bins - 1 { backAsFront += 1 }
                }
            }
            score.azimuthAccuracy = Double(right) / Double(n)
            score.backSeenAsFront = back > 0 ? Double(backAsFront) / Double(back) : 0
            score.janus = score.backSeenAsFront > 0.5
        }
        score.perView = perView
        return score
    }
}
