import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender
import RealModule

/// The 4D settings (`kiln generate --config`, section "motion").
public struct MotionSettings: Codable, Sendable, Equatable {
    /// Frames written at the end (τ = i/(frames − 1)).
    public var frames = 16
    /// The share of the run spent on the still object before the motion is learned (Align Your
    /// Gaussians and DreamGaussian4D start from a static stage).
    public var staticFraction = 0.3
    /// Adam learning rates of the motion coefficients: positions (world units, scaled by the
    /// object radius as the splats' are), rotations and log-scales.
    public var positionLearningRate: Float = 2e-3
    public var rotationLearningRate: Float = 2e-3
    public var scaleLearningRate: Float = 2e-3
    /// Temporal smoothness: λ·Σ ωₖ²‖cₖ‖² over each Gaussian's coefficients, ωₖ the basis'
    /// frequency in cycles (1 for the drift), which penalises fast motion more than slow.
    public var smoothness: Float = 0.01
    /// Local rigidity (`SplatMotion.rigidity`): its weight, and the neighbours each Gaussian has
    /// in the canonical cloud.
    public var rigidity: Float = 1
    public var neighbours = 8
    /// Temporal consistency in image space: each view is also rendered at τ ± 1/(2·frames) from
    /// its camera, and the second difference I(τ+δ) − 2·I(τ) + I(τ−δ) (flicker, as `kiln eval`
    /// measures it) is pulled to zero, with a gradient this many times the norm of the view's SDS
    /// gradient. 0 turns it off (it costs two more renders per view). At 0.5 a default "a yellow
    /// duck bouncing" run measured flicker 0.0059 against 0.0135 without it (mean frame alignment
    /// −0.24 against −0.21), in 3 min 27 s against 2 min 16 s.
    public var temporal: Float = 0.5
    /// The motion-pair reward (`MotionReward`): each moving view is also rendered from its camera
    /// at its partner time (`MotionReward.partner`; the built-in reward's is the time the
    /// caption's motion moves the object most from τ), and the two frames are pushed up the gradient of
    /// log p(the caption's motion | both), scaled to this many times the norm of the view's SDS
    /// gradient. 0 turns it off (it costs one more render per view). Off by default: on "a yellow
    /// duck bouncing" it added nothing to the object's own motion (bouncing share 0.618 against
    /// 0.624) and cost alignment (−0.32 against −0.25); without a confidence cap and without the
    /// object's motion, weight 1 scattered the duck out of frame.
    public var pairReward: Float = 0
    /// The motion-pair term stops pushing a pair once the model gives the caption's motion this
    /// probability (the hinge DreamReward puts on its reward), so it cannot run away into motion
    /// the model merely finds more certain. 1 never stops.
    public var pairConfidence: Float = 0.9
    /// The motion-pair term moves only the object's own motion (`ObjectMotion`), not each
    /// Gaussian's: the model can then be satisfied only by moving the whole object, not by
    /// non-rigid changes of appearance that merely look like the motion to it. On "a blue robot
    /// spinning" (pair reward 1) the robot turned at most 14° with it and 6° without, while the
    /// model's p(spinning) of the renders reached 0.78 and 0.96: neither makes a spin.
    public var pairObjectOnly = false
    /// Adam's step on the object's own motion (`ObjectMotion`: one translation, turn and scale of
    /// the whole cloud per time, beside each Gaussian's); 0 leaves the object's frame still. The
    /// prior's push towards motion is weak and noisy; summed over the whole cloud it moves the
    /// object: a default "a yellow duck bouncing" shows 0.62 of the toy bounce with it, 0.23 without.
    public var objectLearningRate: Float = 0.01

    public init() {}

    public func validate() throws {
        guard (2...256).contains(frames) else { throw DistillError.badSetting("motion.frames must be 2…256, got \(frames)") }
        guard (0..<1).contains(staticFraction) else { throw DistillError.badSetting("motion.static_fraction must be in [0, 1)") }
        guard positionLearningRate > 0, rotationLearningRate > 0, scaleLearningRate > 0, smoothness >= 0, rigidity >= 0, temporal >= 0,
              pairReward >= 0, pairReward.isFinite, pairConfidence > 0, pairConfidence <= 1, objectLearningRate >= 0, objectLearningRate.isFinite,
              (1...64).contains(neighbours) else {
            throw DistillError.badSetting("motion: learning rates must be positive (object_learning_rate ≥ 0), smoothness, rigidity, temporal and pair_reward ≥ 0, pair_confidence in (0, 1], neighbours 1…64")
        }
    }

    /// ωₖ of the K bases: the drift (1) and two harmonics (1, 1, 2, 2).
    static let frequencies: [Float] = [1, 1, 1, 2, 2]
}

/// Gaussian splats that move (text to 4D): a canonical cloud optimised as `GaussianScene`'s, plus
/// `SplatMotion` coefficients with their own Adam. Each view of a step shows the cloud at its own
/// time τ, which the prior sees too. For the first `staticFraction` of the run the cloud is still
/// (motion neither applied nor learned: `isMoving(step:of:)`); densification carries each
/// Gaussian's motion to its clones and split children.
public final class DynamicGaussianScene: DistilledScene {
    public let still: GaussianScene
    public let motionSettings: MotionSettings
    public internal(set) var motion: SplatMotion<Float>
    var motionGradient: SplatMotion<Float>
    var motionFirst: SplatMotion<Float>, motionSecond: SplatMotion<Float>
    var motionStep = 0
    /// The whole object's motion, its gradient and Adam moments.
    public internal(set) var object = ObjectMotion<Float>()
    var objectGradient = ObjectMotion<Float>(), objectFirst = ObjectMotion<Float>(), objectSecond = ObjectMotion<Float>()
    /// The motion-pair reward, bound to the motion the prompt names, for `MotionSettings.pairReward`.
    public var motionPairReward: (any MotionReward)?

    public init(settings: GaussianSettings, motion: MotionSettings, steps: Int, extent: Float, seed: UInt64,
                threads: Int = Parallel.defaultThreadCount) throws {
        try motion.validate()
        still = try GaussianScene(settings: settings, steps: steps, extent: extent, seed: seed, threads: threads)
        motionSettings = motion
        let n = still.parameters.count
        self.motion = SplatMotion(zerosFor: n)
        motionGradient = SplatMotion(zerosFor: n)
        motionFirst = SplatMotion(zerosFor: n)
        motionSecond = SplatMotion(zerosFor: n)
    }

    /// The frame of a view: the still scene's, with the time it showed; `local` is the cloud with
    /// each Gaussian's motion but before the object's (`deformed` after both).
    public struct Frame {
        var splat: SplatFrame
        var local: SplatParameters<Float>
        var deformed: SplatParameters<Float>
        var time: Float
        var moved: Bool
    }

    /// Whether step `step` of `steps` (counting from 1) moves the cloud and learns its motion:
    /// after the still stage's first `staticFraction` of the run.
    public func isMoving(step: Int, of steps: Int) -> Bool { Double(step) > motionSettings.staticFraction * Double(steps) }

    public func drawTimes(count: Int, step: Int, of steps: Int, rng: inout RNG) -> [Float]? {
        // Stratified over [0, 1]: every step sees early and late times.
        let start = rng.nextFloat()
        return (0..<count).map { i in (start + Float(i)) / Float(count) }
    }

    /// The cloud at time τ, whatever the stage: for frames and previews after the run.
    public func cloud(at tau: Float) -> SplatParameters<Float> { object.applied(motion.deformed(still.parameters, at: tau), at: tau) }

    /// A moving frame at τ from `camera`.
    func movingFrame(at tau: Float, camera: Camera, background: SIMD3<Float>, shDegree: Int? = nil) -> Frame {
        let (local, deformed) = Profiler.measure("motion forward") { () -> (SplatParameters<Float>, SplatParameters<Float>) in
            let local = motion.deformed(still.parameters, at: tau)
            return (local, object.applied(local, at: tau))
        }
        let splat = SplatRasterizer.forward(deformed, camera: camera, settings: SplatRenderSettings(background: background, activeSHDegree: shDegree),
                                            threads: still.threads)
        return Frame(splat: splat, local: local, deformed: deformed, time: tau, moved: true)
    }

    /// A view at τ = `time` (nil: 0): the canonical cloud in the still stage, else the cloud moved to τ.
    public func render(camera: Camera, time: Float?, step: Int, of steps: Int, background: SIMD3<Float>, rng: inout RNG) -> (color: [Float], frame: Frame) {
        let tau = time ?? 0
        // The SH-degree schedule of the cloud's settings, as for a still run.
        let degree = still.settings.activeSHDegree(step: step, of: steps)
        guard isMoving(step: step, of: steps) else {
            let p = still.parameters
            let splat = SplatRasterizer.forward(p, camera: camera, settings: SplatRenderSettings(background: background, activeSHDegree: degree),
                                                threads: still.threads)
            return (splat.images.color, Frame(splat: splat, local: p, deformed: p, time: tau, moved: false))
        }
        let frame = movingFrame(at: tau, camera: camera, background: background, shDegree: degree)
        return (frame.splat.images.color, frame)
    }

    /// The cloud at τ = `time` (nil: 0), whatever the stage.
    public func preview(camera: Camera, time: Float?, background: SIMD3<Float>) -> [Float] {
        SplatRasterizer.forward(cloud(at: time ?? 0), camera: camera, settings: SplatRenderSettings(background: background), threads: still.threads).images.color
    }

    public func accumulate(_ frame: Frame, dColor: [Float]) {
        var dColor = dColor
        let usesPair = frame.moved && motionSettings.pairReward > 0 && motionPairReward != nil
        let sdsNorm = usesPair ? dColor.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot() : 0  // before the temporal term adds to it
        if frame.moved, motionSettings.temporal > 0 { Profiler.measure("temporal consistency") { addTemporalConsistency(frame, dColor: &dColor) } }
        if frame.moved, motionSettings.pairReward > 0, let reward = motionPairReward {
            addMotionPairReward(frame, reward, sdsNorm: sdsNorm, dColor: &dColor)
        }
        accumulateRender(frame, dColor: dColor)
    }

    /// log p(the motion | I(τa), I(τb)) of the view and its partner frame (same camera), and its
    /// gradient with respect to the two renders (`[H, W, 3]` each, earlier first); nil when the
    /// render does not pool to the model's size.
    func motionPairGradient(_ frame: Frame, partner: Frame, partnerIsEarlier: Bool, model: any MotionReward)
        -> (reward: Float, view: [Float], partner: [Float])? {
        let w = frame.splat.camera.width, h = frame.splat.camera.height, size = model.imageSize
        guard w == h, w % size == 0 else { return nil }
        let f = w / size
        let own = frame.splat.images.color, other = partner.splat.images.color
        let (early, late) = partnerIsEarlier ? (other, own) : (own, other)
        let stacked = (PriorImage.fromRender(early, width: w, height: h, factor: f) + PriorImage.fromRender(late, width: w, height: h, factor: f))
            .map { ($0 + 1) / 2 }  // [0, 1], as the reward models take
        let (reward, g) = model.logLikelihood(Tensor(shape: [1, 6, size, size], storage: stacked))
        let plane = 3 * size * size
        // ∂/∂x with x = 2·image − 1 is half ∂/∂image; `renderGradient` is `fromRender`'s transpose.
        let gEarly = PriorImage.renderGradient(g.storage[0..<plane].map { $0 / 2 }, width: w, height: h, factor: f, color: early)
        let gLate = PriorImage.renderGradient(g.storage[plane..<(2 * plane)].map { $0 / 2 }, width: w, height: h, factor: f, color: late)
        return partnerIsEarlier ? (reward[0], gLate, gEarly) : (reward[0], gEarly, gLate)
    }

    /// The motion-pair term of one view: its partner frame rendered from the same camera, the
    /// ascent direction of log p(the caption's motion) added to `dColor` and taken back through
    /// the partner's render, together scaled to `pairReward` × `sdsNorm`; nothing once the model is
    /// `pairConfidence` sure of the motion.
    func addMotionPairReward(_ frame: Frame, _ model: any MotionReward, sdsNorm: Float, dColor: inout [Float]) {
        let (tau, isEarlier) = model.partner(of: frame.time)
        let partner = movingFrame(at: tau, camera: frame.splat.camera, background: frame.splat.settings.background)
        guard let (logP, gView, gPartner) = motionPairGradient(frame, partner: partner, partnerIsEarlier: isEarlier, model: model),
              Foundation.exp(logP) < motionSettings.pairConfidence else { return }
        let norm = (gView.reduce(Float(0)) { $0 + $1 * $1 } + gPartner.reduce(Float(0)) { $0 + $1 * $1 }).squareRoot()
        guard sdsNorm > 0, norm > 0 else { return }
        let scale = motionSettings.pairReward * sdsNorm / norm
        if motionSettings.pairObjectOnly {
            accumulateRender(frame, dColor: gView.map { -scale * $0 }, isStepView: false, objectOnly: true)
            accumulateRender(partner, dColor: gPartner.map { -scale * $0 }, isStepView: false, objectOnly: true)
        } else {
            for i in dColor.indices { dColor[i] -= scale * gView[i] }
            accumulateRender(partner, dColor: gPartner.map { -scale * $0 }, isStepView: false)
        }
    }

    /// The temporal-consistency term of one view: renders at τ ± δ from the view's camera, the
    /// loss ½‖D‖² with D = I₊ − 2·I₀ + I₋, its gradient on I₀ added to `dColor` and those on I₊
    /// and I₋ taken back through their own renders; scaled to `temporal` × ‖dColor‖.
    func addTemporalConsistency(_ frame: Frame, dColor: inout [Float]) {
        let delta = 1 / Float(2 * motionSettings.frames)
        let before = max(0, frame.time - delta), after = min(1, frame.time + delta)
        guard before < frame.time, after > frame.time else { return }
        let sides = [before, after].map { movingFrame(at: $0, camera: frame.splat.camera, background: frame.splat.settings.background) }
        let i0 = frame.splat.images.color, iMinus = sides[0].splat.images.color, iPlus = sides[1].splat.images.color
        var d = [Float](repeating: 0, count: i0.count)
        for i in d.indices { d[i] = iPlus[i] - 2 * i0[i] + iMinus[i] }
        let sdsNorm = dColor.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot(), dNorm = d.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        guard sdsNorm > 0, dNorm > 0 else { return }
        // ∂(½‖D‖²)/∂I₀ = −2D, ∂/∂I± = D; the three together have norm √6·‖D‖.
        let scale = motionSettings.temporal * sdsNorm / (Float(6).squareRoot() * dNorm)
        for i in d.indices { dColor[i] += -2 * scale * d[i] }
        for side in sides { accumulateRender(side, dColor: d.map { scale * $0 }, isStepView: false) }
    }

    /// Takes a render's colour gradient back to the canonical cloud and, for a moving frame, to the
    /// motion. Only the step's own views (`isStepView`), not the temporal term's side renders at
    /// τ ± δ, count for densification and get the coverage floor. `objectOnly` keeps only the
    /// gradient of the object's own motion.
    func accumulateRender(_ frame: Frame, dColor: [Float], isStepView: Bool = true, objectOnly: Bool = false) {
        let dAlpha = isStepView ? still.settings.coverageGradient(alpha: frame.splat.images.alpha) : nil
        let back = SplatRasterizer.backward(frame.splat, frame.deformed, gradients: SplatImageGradients(color: dColor, alpha: dAlpha))
        if isStepView { still.optimizer.record(meanPixels: back.meanPixels, radii: frame.splat.radii, width: frame.splat.camera.width, height: frame.splat.camera.height) }
        guard frame.moved else {
            still.add(back.parameters)
            return
        }
        let (local, objectPart) = Profiler.measure("motion backward") { ObjectMotion<Float>.backward(back.parameters, input: frame.local, motion: object, at: frame.time) }
        for i in objectGradient.coefficients.indices { objectGradient.coefficients[i] += objectPart.coefficients[i] }
        if objectOnly { return }
        let (canonical, motionPart) = Profiler.measure("motion backward") { SplatMotion<Float>.backward(local, at: frame.time) }
        still.add(canonical)
        for i in motionGradient.position.indices { motionGradient.position[i] += motionPart.position[i] }
        for i in motionGradient.rotation.indices { motionGradient.rotation[i] += motionPart.rotation[i] }
        for i in motionGradient.logScale.indices { motionGradient.logScale[i] += motionPart.logScale[i] }
    }

    public var gradientIsFinite: Bool {
        still.gradientIsFinite && motionGradient.groups.allSatisfy { $0.allSatisfy(\.isFinite) } && objectGradient.coefficients.allSatisfy(\.isFinite)
    }

    public func applyStep(step: Int, of steps: Int, rng: inout RNG) {
        if isMoving(step: step, of: steps) { stepMotion() }
        still.applyStep(step: step, of: steps, rng: &rng)
        // Densification renumbered the Gaussians: their motion (and its Adam state) follows.
        if let densification = still.optimizer.lastDensification {
            densification.carry(&motion, moments: &motionFirst, &motionSecond)
        }
        motionGradient = SplatMotion(zerosFor: motion.count)
        objectGradient = ObjectMotion()
    }

    /// Adam on the motion coefficients, with the smoothness penalty's gradient 2λωₖ²cₖ and the
    /// rigidity loss's gradient added.
    func stepMotion() {
        motionStep += 1
        if motionSettings.rigidity > 0 {
            // Neighbours in the canonical cloud as it is now (found every step, so that a resumed run
            // sees the same ones).
            let neighbours = Profiler.measure("neighbour search") {
                NearestNeighbours.table(still.parameters.positions, k: motionSettings.neighbours, threads: still.threads)
            }
            let rigid = Profiler.measure("rigidity") { motion.rigidity(neighbours: neighbours, weight: motionSettings.rigidity) }
            for i in motionGradient.position.indices { motionGradient.position[i] += rigid.positionGradient[i] }
        }
        let optimizer = AdamW(beta1: 0.9, beta2: 0.999, eps: 1e-15, arithmetic: .float32)
        let k = SplatMotion<Float>.basisCount, lambda = motionSettings.smoothness
        func update(_ values: inout [Float], _ grads: [Float], _ m: inout [Float], _ v: inout [Float], width: Int, lr: Float) {
            let scalars = optimizer.step(motionStep, learningRate: Double(lr))
            for i in values.indices {
                let w = MotionSettings.frequencies[(i / width) % k]
                let g = grads[i] + 2 * lambda * w * w * values[i]
                scalars.update(&values[i], gradient: g, m: &m[i], v: &v[i])
            }
        }
        let s = motionSettings
        update(&motion.position, motionGradient.position, &motionFirst.position, &motionSecond.position, width: 3, lr: s.positionLearningRate * still.extent)
        update(&motion.rotation, motionGradient.rotation, &motionFirst.rotation, &motionSecond.rotation, width: 4, lr: s.rotationLearningRate)
        update(&motion.logScale, motionGradient.logScale, &motionFirst.logScale, &motionSecond.logScale, width: 3, lr: s.scaleLearningRate)
        if s.objectLearningRate > 0 {
            update(&object.coefficients, objectGradient.coefficients, &objectFirst.coefficients, &objectSecond.coefficients,
                   width: ObjectMotion<Float>.parameterCount, lr: s.objectLearningRate)
        }
    }

    public func discardGradient() {
        still.discardGradient()
        motionGradient = SplatMotion(zerosFor: motion.count)
        objectGradient = ObjectMotion()
    }

    public var size: Int { still.size }

    // MARK: Checkpoints

    struct State: Codable {
        var still: Data
        var motionStep: Int
    }

    public func checkpoint(into tensors: inout SafeTensorsWriter) throws -> Data {
        let stillState = try still.checkpoint(into: &tensors)
        for (prefix, m) in [("", motion), ("adam.m.", motionFirst), ("adam.v.", motionSecond)] {
            for (name, values) in zip(SplatMotion<Float>.groupNames, m.groups) { try tensors.add(prefix + name, shape: [values.count], values: values) }
        }
        for (prefix, o) in [("", object), ("adam.m.", objectFirst), ("adam.v.", objectSecond)] {
            try tensors.add(prefix + "motion.object", shape: [o.coefficients.count], values: o.coefficients)
        }
        return try JSONEncoder().encode(State(still: stillState, motionStep: motionStep))
    }

    public func restore(tensors file: SafeTensorsFile, state data: Data) throws {
        let state = try JSONDecoder().decode(State.self, from: data)
        try still.restore(tensors: file, state: state.still)
        let n = still.parameters.count, k = SplatMotion<Float>.basisCount
        func load(_ prefix: String) throws -> SplatMotion<Float> {
            let v = try zip(SplatMotion<Float>.groupNames, [3 * k * n, 4 * k * n, 3 * k * n]).map { try file.expect(prefix + $0, shape: [$1]) }
            return SplatMotion(position: v[0], rotation: v[1], logScale: v[2])
        }
        (motion, motionFirst, motionSecond) = (try load(""), try load("adam.m."), try load("adam.v."))
        // Checkpoints from before the object's own motion have none: it starts still.
        func loadObject(_ prefix: String) throws -> ObjectMotion<Float> {
            guard file.contains(prefix + "motion.object") else { return ObjectMotion() }
            return ObjectMotion(coefficients: try file.expect(prefix + "motion.object", shape: [ObjectMotion<Float>.basisCount * ObjectMotion<Float>.parameterCount]))
        }
        (object, objectFirst, objectSecond) = (try loadObject(""), try loadObject("adam.m."), try loadObject("adam.v."))
        objectGradient = ObjectMotion()
        motionStep = state.motionStep
        motionGradient = SplatMotion(zerosFor: n)
    }
}
