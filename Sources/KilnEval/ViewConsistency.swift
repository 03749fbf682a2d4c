import Foundation
import KilnCore
import KilnRender
import RealModule

/// One view of a multi-view set: its camera, its colours `[H, W, 3]`, its silhouette `[H, W, 1]`
/// (alpha, or a mask from the background colour), and its camera-space depth `[H, W, 1]` (0 where
/// empty) when a renderer gave one.
public struct PosedView: Sendable {
    public var camera: Camera
    public var color: Image
    public var alpha: Image
    public var depth: Image?

    public init(camera: Camera, color: Image, alpha: Image, depth: Image? = nil) {
        precondition(color.channels == 3 && alpha.channels == 1 && color.width == camera.width && color.height == camera.height
                     && alpha.width == color.width && alpha.height == color.height, "PosedView: colour, alpha and camera sizes")
        self.camera = camera
        self.color = color
        self.alpha = alpha
        self.depth = depth
    }

    /// The silhouette of an image on a plain background: a pixel is foreground when any channel
    /// differs from `background` by more than `tolerance`.
    public static func mask(of image: Image, background: SIMD3<Float>, tolerance: Float = 0.06) -> Image {
        var alpha = Image(width: image.width, height: image.height, channels: 1)
        for y in 0..<image.height {
            for x in 0..<image.width {
                let d = max(abs(image[x, y, 0] - background.x), abs(image[x, y, 1] - background.y), abs(image[x, y, 2] - background.z))
                alpha.pixels[y * image.width + x] = d > tolerance ? 1 : 0
            }
        }
        return alpha
    }
}

/// Silhouette consistency by space carving (Laurentini's visual hull), made robust to one bad
/// view: a voxel of the box stays when its centre falls outside the silhouette of at most
/// `allowedMisses` views (views that do not see it do not vote). Each view then compares the
/// hull's silhouette (a pixel is covered when its ray meets a kept voxel) with its own: for a
/// consistent set the two agree up to the voxel size and concavities, while a view whose
/// silhouette contradicts the others (shifted, mirrored, another object) cannot carve the hull
/// alone and so disagrees with it.
public enum VisualHull {
    public struct Result: Sendable {
        /// Intersection over union of the hull's silhouette and each view's (alpha ≥ 0.5).
        public var iou: [Double]
        /// The share of each view's silhouette that the hull's covers. The hull contains every
        /// object consistent with the views, so a consistent view is covered (near 1) even where
        /// concavities make the hull's outline larger (lower IoU); a contradicting view is not.
        public var coverage: [Double]
        /// Kept voxels, `[z, y, x]`.
        public var occupied: [Bool]
        public var keptFraction: Double
    }

    /// The box around the views' foreground: from their depths when every view has one, else the
    /// region all cameras look at (least-squares point nearest their optical axes, radius from the
    /// field of view).
    public static func box(_ views: [PosedView]) -> (center: SIMD3<Float>, halfSize: Float) {
        if views.allSatisfy({ $0.depth != nil }) {
            var lo = SIMD3<Float>(repeating: .infinity), hi = SIMD3<Float>(repeating: -.infinity)
            for v in views {
                let d = v.depth!
                for y in 0..<d.height {
                    for x in 0..<d.width where v.alpha.pixels[y * d.width + x] >= 0.5 && d.pixels[y * d.width + x] > 0 {
                        let p = v.camera.unproject(pixel: SIMD2(Float(x) + 0.5, Float(y) + 0.5), depth: d.pixels[y * d.width + x])
                        lo = pointwiseMin(lo, p)
                        hi = pointwiseMax(hi, p)
                    }
                }
            }
            if lo.x <= hi.x { return ((lo + hi) / 2, max(1e-3, (hi - lo).max() / 2 * 1.15)) }
        }
        let (center, radius) = SplatFit.subject(of: views.map(\.camera))
        return (center, radius * 1.3)
    }

    /// Carves a `resolution`³ grid over the box and measures every view against the hull.
    public static func measure(_ views: [PosedView], resolution: Int = 64, allowedMisses: Int? = nil,
                               threads: Int = Parallel.defaultThreadCount) -> Result {
        precondition(!views.isEmpty && resolution >= 4, "VisualHull: views and a grid")
        let misses = allowedMisses ?? (views.count >= 6 ? 1 : 0)
        let (center, half) = box(views)
        let n = resolution, voxel = 2 * half / Float(n), origin = center - half
        var occupied = [Bool](repeating: false, count: n * n * n)
        occupied.withUnsafeMutableBufferPointer { buffer in
            let out = UnsafeMutableSendableBuffer(buffer)
            parallelFor(n, threads: threads) { slabs in
                for k in slabs {
                    for j in 0..<n {
                        for i in 0..<n {
                            let p = origin + voxel * (SIMD3(Float(i), Float(j), Float(k)) + 0.5)
                            var outside = 0
                            for v in views {
                                let (pixel, z) = v.camera.project(p)
                                guard z > 0, pixel.x >= 0, pixel.y >= 0, pixel.x < Float(v.camera.width), pixel.y < Float(v.camera.height) else { continue }
                                if v.alpha.pixels[Int(pixel.y) * v.camera.width + Int(pixel.x)] < 0.5 { outside += 1 }
                                if outside > misses { break }
                            }
                            out[(k * n + j) * n + i] = outside <= misses
                        }
                    }
                }
            }
        }
        var iou: [Double] = [], coverage: [Double] = []
        for v in views {
            let covered = silhouette(of: occupied, n: n, origin: origin, voxel: voxel, camera: v.camera, threads: threads)
            var both = 0, either = 0, inside = 0
            for i in covered.indices {
                let a = covered[i], b = v.alpha.pixels[i] >= 0.5
                if a && b { both += 1 }
                if a || b { either += 1 }
                if b { inside += 1 }
            }
            iou.append(either == 0 ? 1 : Double(both) / Double(either))
            coverage.append(inside == 0 ? 1 : Double(both) / Double(inside))
        }
        return Result(iou: iou, coverage: coverage, occupied: occupied, keptFraction: Double(occupied.filter { $0 }.count) / Double(occupied.count))
    }

    /// Which pixels' rays (through pixel centres) meet a kept voxel: samples every half voxel
    /// between the ray's entry into and exit from the grid's box.
    static func silhouette(of occupied: [Bool], n: Int, origin: SIMD3<Float>, voxel: Float, camera: Camera, threads: Int) -> [Bool] {
        let w = camera.width, h = camera.height
        let lo = origin, hi = origin + voxel * Float(n)
        var covered = [Bool](repeating: false, count: w * h)
        covered.withUnsafeMutableBufferPointer { buffer in
            let out = UnsafeMutableSendableBuffer(buffer)
            parallelFor(h, threads: threads) { rows in
                for y in rows {
                    for x in 0..<w {
                        let (o, d) = camera.ray(pixelX: x, pixelY: y)
                        guard let (near, far) = rayBoxIntersection(origin: o, direction: d, lo: lo, hi: hi) else { continue }
                        var t = near + voxel / 4
                        while t < far {
                            let g = (o + t * d - origin) / voxel
                            let i = Int(g.x), j = Int(g.y), k = Int(g.z)
                            if i >= 0, j >= 0, k >= 0, i < n, j < n, k < n, occupied[(k * n + j) * n + i] {
                                out[y * w + x] = true
                                break
                            }
                            t += voxel / 2
                        }
                    }
                }
            }
        }
        return covered
    }
}

/// Agreement of two views through depth: each foreground pixel of `target` with a depth is
/// lifted to 3D and projected into `source`; where `source` sees the same surface (its depth
/// there within `depthTolerance` of the point's, relative), their colours are compared.
public struct Reprojection: Codable, Sendable, Equatable {
    public var source: Int
    public var target: Int
    /// Target pixels that land on the source's foreground, and the share of them whose depth agrees.
    public var comparedPixels: Int
    public var depthAgreement: Double
    /// Mean absolute colour difference (0…1, over RGB) where the depth agrees.
    public var colorError: Double

    public static func measure(_ views: [PosedView], source s: Int, target t: Int, depthTolerance: Float = 0.03) -> Reprojection {
        let src = views[s], dst = views[t]
        guard let targetDepth = dst.depth, let sourceDepth = src.depth else {
            return Reprojection(source: s, target: t, comparedPixels: 0, depthAgreement: 0, colorError: 0)
        }
        let w = dst.camera.width, h = dst.camera.height, sw = src.camera.width, sh = src.camera.height
        var landed = 0, agreed = 0
        var error = 0.0
        for y in 0..<h {
            for x in 0..<w {
                let i = y * w + x
                let z = targetDepth.pixels[i]
                guard dst.alpha.pixels[i] >= 0.5, z > 0 else { continue }
                let world = dst.camera.unproject(pixel: SIMD2(Float(x) + 0.5, Float(y) + 0.5), depth: z)
                let (p, zs) = src.camera.project(world)
                let px = Int((p.x).rounded(.down)), py = Int((p.y).rounded(.down))
                guard zs > 0, px >= 0, py >= 0, px < sw, py < sh else { continue }
                let j = py * sw + px
                guard src.alpha.pixels[j] >= 0.5, sourceDepth.pixels[j] > 0 else { continue }
                landed += 1
                guard abs(sourceDepth.pixels[j] - zs) <= depthTolerance * zs else { continue }
                agreed += 1
                let c = bilinear(src.color, p.x - 0.5, p.y - 0.5)
                error += Double(abs(c.x - dst.color[x, y, 0]) + abs(c.y - dst.color[x, y, 1]) + abs(c.z - dst.color[x, y, 2])) / 3
            }
        }
        return Reprojection(source: s, target: t, comparedPixels: landed, depthAgreement: landed == 0 ? 0 : Double(agreed) / Double(landed),
                            colorError: agreed == 0 ? 0 : error / Double(agreed))
    }

    /// RGB at continuous pixel-centre coordinates (x, y), clamped at the border.
    static func bilinear(_ image: Image, _ x: Float, _ y: Float) -> SIMD3<Float> {
        let cx = min(max(x, 0), Float(image.width - 1)), cy = min(max(y, 0), Float(image.height - 1))
        let x0 = Int(cx), y0 = Int(cy), x1 = min(x0 + 1, image.width - 1), y1 = min(y0 + 1, image.height - 1)
        let fx = cx - Float(x0), fy = cy - Float(y0)
        var out = SIMD3<Float>()
        for c in 0..<3 {
            let top = image[x0, y0, c] * (1 - fx) + image[x1, y0, c] * fx
            let bottom = image[x0, y1, c] * (1 - fx) + image[x1, y1, c] * fx
            out[c] = top * (1 - fy) + bottom * fy
        }
        return out
    }

    /// For each view, the other view whose camera looks from the nearest direction (towards the
    /// region they share).
    public static func nearestNeighbours(_ cameras: [Camera]) -> [Int] {
        cameras.indices.map { i in
            var best = i, bestDot = -Float.infinity
            for j in cameras.indices where j != i {
                let d = dot(cameras[i].forward, cameras[j].forward)
                if d > bestDot { (best, bestDot) = (j, d) }
            }
            return best
        }
    }
}

/// Which values of a per-view measure stand out from the rest: robust z-scores
/// (x − median) / (1.4826·MAD), with a floor on the scale so that a set of near-identical values
/// flags nothing, and a minimum gap from the median.
public enum Outliers {
    /// Indices whose value is below the median (`lowIsBad`) or above it by more than `z` robust
    /// deviations and at least `minimumGap`.
    public static func flag(_ values: [Double], lowIsBad: Bool, z: Double = 3.5, scaleFloor: Double, minimumGap: Double) -> [Int] {
        guard values.count >= 4 else { return [] }
        let median = Self.median(values)
        let mad = Self.median(values.map { abs($0 - median) })
        let scale = max(1.4826 * mad, scaleFloor)
        return values.indices.filter { i in
            let gap = lowIsBad ? median - values[i] : values[i] - median
            return gap >= minimumGap && gap / scale > z
        }
    }

    public static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// The geometric consistency of an asset's renders (`kiln eval`): silhouettes against their
/// robust visual hull, and each view against its nearest neighbour through the rendered depth.
/// A true 3D asset has a hull that covers every silhouette; view-dependent representations can
/// still disagree between neighbours, in colour (view-dependent colour, Janus-like textures) or in
/// depth (semi-transparent floaters whose expected depth is no surface).
public struct GeometricConsistency: Codable, Sendable, Equatable {
    public var hullResolution: Int
    public var silhouetteCoverage: [Double]
    public var silhouetteIoU: [Double]
    public var minSilhouetteCoverage: Double
    public var meanSilhouetteIoU: Double
    /// View i carried into its nearest neighbour.
    public var reprojection: [Reprojection]
    public var meanDepthAgreement: Double
    public var meanReprojectionColorError: Double

    public static func measure(_ views: [PosedView], hullResolution: Int = 64, threads: Int = Parallel.defaultThreadCount) -> GeometricConsistency {
        let hull = VisualHull.measure(views, resolution: hullResolution, threads: threads)
        let neighbours = Reprojection.nearestNeighbours(views.map(\.camera))
        let reprojection = views.indices.map { Reprojection.measure(views, source: neighbours[$0], target: $0) }
        let compared = reprojection.filter { $0.comparedPixels > 0 }
        func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
        return GeometricConsistency(hullResolution: hullResolution, silhouetteCoverage: hull.coverage, silhouetteIoU: hull.iou,
                                    minSilhouetteCoverage: hull.coverage.min() ?? 0, meanSilhouetteIoU: mean(hull.iou), reprojection: reprojection,
                                    meanDepthAgreement: mean(compared.map(\.depthAgreement)), meanReprojectionColorError: mean(compared.map(\.colorError)))
    }
}
