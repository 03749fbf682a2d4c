import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender
import RealModule

/// The distillation cameras (`kiln generate --config`, section "views"), for every representation.
public struct ViewSettings: Codable, Sendable, Equatable {
    /// Views rendered (and judged by the prior together) per step.
    public var viewsPerStep = 4
    /// Side of the square renders; the prior's size must divide it. Unless a settings file gives
    /// it, a run picks it for its prior (`defaultRenderSize`).
    public var renderSize = 64
    /// The radius of the ball the object is framed in: the cameras keep it in view as the toy
    /// world's cameras keep an object's bounding sphere (fov 40°, distance ×1.1).
    public var objectRadius: Float = 0.6
    public var elevationMinDegrees: Float = -10
    public var elevationMaxDegrees: Float = 50

    public init() {}

    /// The render size a run uses unless told: splats at the least multiple of the prior's size
    /// that is at least 64² (2×2 supersampling of the 32² prior; 96² for a 48² prior), so at the
    /// prior's own size from 64² up (one render pixel per pixel of a 128² or
    /// Stable Diffusion prior, whose renders are costly enough); a NeRF at the prior's size (a
    /// ray per prior pixel costs a third of the splats' supersampling for the same score).
    public static func defaultRenderSize(priorSize: Int, nerf: Bool) -> Int {
        nerf ? priorSize : priorSize * max(1, (64 + priorSize - 1) / priorSize)  // the least multiple ≥ 64
    }

    /// The cameras' vertical field of view: the built-in prior's training camera's (its tests
    /// keep the two equal).
    public static let fovYDegrees: Float = 40

    public func validate(priorSize: Int) throws {
        guard (1...16).contains(viewsPerStep) else { throw DistillError.badSetting("views.views_per_step must be 1…16, got \(viewsPerStep)") }
        guard renderSize >= priorSize, renderSize % priorSize == 0, renderSize <= 512 else {
            throw DistillError.badSetting("views.render_size must be a multiple of the prior's \(priorSize) up to 512, got \(renderSize)")
        }
        guard objectRadius > 0, objectRadius.isFinite, elevationMinDegrees < elevationMaxDegrees, elevationMinDegrees >= -89, elevationMaxDegrees <= 89 else {
            throw DistillError.badSetting("views: object_radius must be positive and −89 ≤ elevation_min_degrees < elevation_max_degrees ≤ 89")
        }
    }

    /// The camera distance that frames the object ball like the toy world frames its objects.
    public var cameraDistance: Float { objectRadius / Foundation.sin(Self.fovYDegrees * .pi / 360) * 1.1 }

    /// The orbit camera around the origin that frames the object ball, at `size`².
    public func camera(azimuthDegrees: Float, elevationDegrees: Float, size: Int) -> Camera {
        Camera.orbit(azimuthDegrees: azimuthDegrees, elevationDegrees: elevationDegrees, radius: cameraDistance,
                     width: size, height: size, fovYRadians: Self.fovYDegrees * .pi / 180)
    }
}

/// The Gaussian representation's settings (`kiln generate --config`, section "gaussians").
/// Learning rates and densification follow DreamGaussian's text-to-3D configuration, scaled to
/// the run's length.
public struct GaussianSettings: Codable, Sendable, Equatable {
    public var initialGaussians = 2000
    /// Initial points fill a ball of this radius around the origin (DreamGaussian: 0.5).
    public var initialRadius: Float = 0.4
    /// Position learning rate (world units) at the start and the end, log-linear in between.
    public var positionLearningRate: Float = 1e-3
    public var positionLearningRateFinal: Float = 2e-5
    public var featureLearningRate: Float = 0.01
    public var opacityLearningRate: Float = 0.05
    public var scalingLearningRate: Float = 0.005
    public var rotationLearningRate: Float = 0.005
    /// Densification between these fractions of the run, every `densifyEvery` steps.
    public var densifyFrom = 0.1
    public var densifyUntil = 0.7
    public var densifyEvery = 50
    /// Average view-space gradient norm (NDC) above which a Gaussian is cloned or split.
    public var densifyGradientThreshold: Float = 0.002
    public var maxGaussians = 30_000
    /// Opacities are reset to 0.01 at this fraction of the run (0: never).
    public var opacityResetAt = 0.0
    /// The coverage floor: a view whose mean alpha m is below `minimumCoverage` c adds the loss
    /// `coverageWeight`·P·(c − m)² over its P pixels (a gradient of −2·weight·(c − m) on every
    /// pixel's alpha). Without it a prompt whose object looks like the backgrounds ("a white duck"
    /// on the light toy backgrounds) can be distilled into nothing: every Gaussian faded below the
    /// pruning opacity by step 150. The toy world's objects cover 6% of the frame or more in 95%
    /// of its pictures; 0 turns the floor off.
    public var minimumCoverage: Float = 0.03
    public var coverageWeight: Float = 10
    /// Weights of the regularisers (`GaussianRegularizers`; 0: off): the mean opacity, the mean
    /// scale over the object's radius, and the colour differences to each Gaussian's
    /// `colorNeighbours` nearest Gaussians, of which brightness differences count
    /// `colorSmoothnessBrightness` times (1: all of them; 0: only hue and saturation, so that
    /// shading stays), each squared difference weighed by `colorSmoothnessPenalty` (`l2`, or the
    /// edge-preserving `charbonnier`, quadratic below a colour difference of `colorSmoothnessEdge`
    /// and linear above it, or `median`, the difference to the median of the Gaussian's own and
    /// its neighbours' colours).
    public var opacityPenalty: Float = 0
    public var scalePenalty: Float = 0
    public var colorSmoothness: Float = 0
    public var colorSmoothnessBrightness: Float = 1
    public var colorSmoothnessPenalty: ColorPenalty = .l2
    public var colorSmoothnessEdge: Float = 0.1
    public var colorNeighbours = 4
    /// The SH degree of the cloud's colours (0: view-independent, DreamGaussian's), and the share
    /// of the run after which the degree in use rises by one (3DGS raises it every 1000 of 30 000
    /// iterations): degree min(sh_degree, ⌊progress / sh_degree_every⌋).
    public var shDegree = 0
    public var shDegreeEvery = 0.2

    public init() {}

    /// The SH degree the renders use at `step` of `steps`.
    public func activeSHDegree(step: Int, of steps: Int) -> Int {
        guard shDegree > 0 else { return 0 }
        let progress = Double(step) / Double(max(1, steps))
        // The small margin keeps exact multiples (0.6 / 0.2) from rounding down.
        return min(shDegree, Int(progress / shDegreeEvery + 1e-9))
    }

    /// Whether any regulariser is on.
    public var regularized: Bool { opacityPenalty > 0 || scalePenalty > 0 || colorSmoothness > 0 }

    public func validate() throws {
        guard (1...1_000_000).contains(initialGaussians), maxGaussians >= initialGaussians else {
            throw DistillError.badSetting("gaussians.initial_gaussians must be 1…1000000 and at most max_gaussians")
        }
        guard initialRadius > 0, initialRadius.isFinite else { throw DistillError.badSetting("gaussians.initial_radius must be positive") }
        for (name, weight) in [("opacity_penalty", opacityPenalty), ("scale_penalty", scalePenalty), ("color_smoothness", colorSmoothness)]
        where !(weight >= 0 && weight.isFinite) {
            throw DistillError.badSetting("gaussians.\(name) must be a weight ≥ 0 (0 turns it off), got \(weight)")
        }
        guard (0...3).contains(shDegree), shDegreeEvery > 0, shDegreeEvery.isFinite else {
            throw DistillError.badSetting("gaussians.sh_degree must be 0…3 and sh_degree_every a positive share of the run, got \(shDegree) and \(shDegreeEvery)")
        }
        guard colorSmoothnessBrightness >= 0, colorSmoothnessBrightness <= 1 else {
            throw DistillError.badSetting("gaussians.color_smoothness_brightness must be 0…1 (the share of brightness differences in the colour smoothness), got \(colorSmoothnessBrightness)")
        }
        guard colorSmoothnessEdge > 0, colorSmoothnessEdge <= 1 else {
            throw DistillError.badSetting("gaussians.color_smoothness_edge must be a colour difference in (0, 1] (where the Charbonnier penalty turns from quadratic to linear), got \(colorSmoothnessEdge)")
        }
        guard (1...32).contains(colorNeighbours) else { throw DistillError.badSetting("gaussians.color_neighbours must be 1…32, got \(colorNeighbours)") }
        let rates = [("position_learning_rate", positionLearningRate), ("position_learning_rate_final", positionLearningRateFinal),
                     ("feature_learning_rate", featureLearningRate), ("opacity_learning_rate", opacityLearningRate),
                     ("scaling_learning_rate", scalingLearningRate), ("rotation_learning_rate", rotationLearningRate)]
        for (name, rate) in rates where !(rate > 0 && rate < 10) {
            throw DistillError.badSetting("gaussians.\(name) must be a positive learning rate below 10, got \(rate)")
        }
        // 0 is allowed: every Gaussian that a view sees densifies.
        guard densifyGradientThreshold >= 0, densifyGradientThreshold.isFinite else {
            throw DistillError.badSetting("gaussians.densify_gradient_threshold must be 0 or more, got \(densifyGradientThreshold)")
        }
        guard (0...1).contains(densifyFrom), (0...1).contains(densifyUntil), (0...1).contains(opacityResetAt), densifyEvery > 0 else {
            throw DistillError.badSetting("gaussians: densify_from, densify_until and opacity_reset_at are fractions; densify_every is positive")
        }
        guard (0..<1).contains(minimumCoverage), coverageWeight >= 0, coverageWeight.isFinite else {
            throw DistillError.badSetting("gaussians.minimum_coverage must be in [0, 1) (0.03; 0 turns the floor off) and gaussians.coverage_weight ≥ 0")
        }
    }

    /// The splat optimiser's configuration for a run of `steps` in a scene of radius `extent`.
    func optimizerConfig(steps: Int, extent: Float) -> SplatTrainingConfig {
        var c = SplatTrainingConfig()
        c.positionLRInitial = positionLearningRate / extent  // SplatOptimizer multiplies by the extent
        c.positionLRFinal = positionLearningRateFinal / extent
        c.positionDecaySteps = steps
        c.featureLR = featureLearningRate
        c.opacityLR = opacityLearningRate
        c.scalingLR = scalingLearningRate
        c.rotationLR = rotationLearningRate
        c.densifyFrom = max(1, Int(densifyFrom * Double(steps)))
        c.densifyUntil = Int(densifyUntil * Double(steps))
        c.densifyEvery = densifyEvery
        c.densifyGradientThreshold = densifyGradientThreshold
        c.opacityResetEvery = opacityResetAt > 0 ? max(1, Int(opacityResetAt * Double(steps))) : 0
        c.maxGaussians = maxGaussians
        c.pruneScaleFraction = 0.5
        return c
    }

    /// The coverage floor's gradient on a view's alpha (`[H, W]`), nil when the view covers enough.
    public func coverageGradient(alpha: [Float]) -> [Float]? {
        guard minimumCoverage > 0, coverageWeight > 0, !alpha.isEmpty else { return nil }
        let mean = alpha.reduce(0, +) / Float(alpha.count)
        guard mean < minimumCoverage else { return nil }
        return [Float](repeating: -2 * coverageWeight * (minimumCoverage - mean), count: alpha.count)
    }
}


/// The NeRF representation's settings (`kiln generate --config`, section "nerf"): Instant-NGP's
/// encoding at a CPU-sized table, threestudio's learning rate and density bias.
public struct NeRFSettings: Codable, Sendable, Equatable {
    public var levels = 12
    public var log2TableSize = 15
    public var baseResolution = 8
    public var maxResolution = 256
    public var width = 64
    public var samplesPerRay = 64
    public var learningRate = 0.01
    /// Magic3D's density bias λ·(1 − ‖x‖/r): an initial soft ball.
    public var blobDensity: Float = 10
    public var blobRadius: Float = 0.5
    /// Occupancy grid cells per side, and steps between its updates.
    public var occupancyResolution = 48
    public var occupancyEvery = 16

    public init() {}

    public func validate() throws {
        guard (1...24).contains(levels), (8...22).contains(log2TableSize), baseResolution >= 2, maxResolution >= baseResolution else {
            throw DistillError.badSetting("nerf: levels 1…24, log2_table_size 8…22, 2 ≤ base_resolution ≤ max_resolution")
        }
        guard (4...512).contains(width), (4...512).contains(samplesPerRay) else { throw DistillError.badSetting("nerf: width and samples_per_ray must be 4…512") }
        guard learningRate > 0, learningRate < 1, blobRadius > 0 else { throw DistillError.badSetting("nerf: learning_rate in (0, 1) and a positive blob_radius") }
        guard (8...256).contains(occupancyResolution), occupancyEvery > 0 else { throw DistillError.badSetting("nerf: occupancy_resolution 8…256, occupancy_every ≥ 1") }
    }

    public var grid: HashGrid {
        HashGrid(levels: levels, featuresPerLevel: 2, log2TableSize: log2TableSize, baseResolution: baseResolution, maxResolution: maxResolution)
    }
}
