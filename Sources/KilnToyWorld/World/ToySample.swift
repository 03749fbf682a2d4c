import Foundation
import KilnCore
import KilnPrior
import KilnRender

/// One sample of the toy world: an object (kind, colours, motion and time), the caption that
/// describes it, and the camera, light and background it is seen with. Everything is drawn from
/// one RNG, so a sample is a pure function of (seed, index): `ToySample(seed:index:)`.
public struct ToySample: Sendable, Codable, Equatable {
    public var kind: ToyKind
    public var mainColor: ToyColor
    public var secondColor: ToyColor
    /// Whether the caption names each colour (an unnamed colour is the kind's default).
    public var namesMainColor: Bool
    public var namesSecondColor: Bool
    public var motion: ToyMotion?
    /// Normalised time τ ∈ [0, 1] for a moving object, nil for a still one.
    public var time: Float?
    public var azimuthDegrees: Float
    public var elevationDegrees: Float
    /// Camera distance over the distance that just fits the object's bounding sphere.
    public var distanceScale: Float
    /// Light direction in camera space (toward the scene) and the ambient term.
    public var lightDirectionCamera: SIMD3<Float>
    public var ambient: Float
    public var background: SIMD3<Float>

    /// Drawing settings of the data set.
    public struct Options: Sendable, Codable, Equatable {
        /// Probability that a sample moves (and gets a time).
        public var motionProbability: Float = 0.3
        public var elevationDegrees: ClosedRange<Float> = -10...60
        public init() {}
    }

    /// The background colours samples are drawn on (linear RGB).
    public static let backgrounds: [SIMD3<Float>] = [SIMD3(1, 1, 1), SIMD3(0.92, 0.92, 0.92), SIMD3(0.85, 0.9, 0.97), SIMD3(0.96, 0.93, 0.85),
                                                     SIMD3(0.88, 0.95, 0.88), SIMD3(0.8, 0.8, 0.82)]

    /// The field of view of every toy camera.
    public static let fovYDegrees: Float = 40

    /// Sample `index` of the data set with `seed`.
    public init(seed: UInt64, index: Int, options: Options = Options()) {
        var rng = RNG(seed: seed).split(UInt64(index))
        func pick<T>(_ values: [T]) -> T { values[Int(rng.next() % UInt64(values.count))] }
        kind = pick(ToyKind.allCases)
        let defaults = kind.defaultColors
        namesMainColor = rng.nextFloat() < 0.85
        namesSecondColor = rng.nextFloat() < 0.4
        let main = namesMainColor ? pick(ToyColor.allCases) : defaults.main
        mainColor = main
        secondColor = namesSecondColor ? pick(ToyColor.allCases.filter { $0 != main }) : defaults.second
        if rng.nextFloat() < options.motionProbability {
            motion = pick(ToyMotion.allCases)
            time = rng.nextFloat()
        }
        azimuthDegrees = rng.uniform(0...360)
        elevationDegrees = rng.uniform(options.elevationDegrees)
        distanceScale = rng.uniform(1.0...1.25)
        // A light from the camera's upper hemisphere, tilted at random.
        let light = SIMD3(rng.uniform(-0.7...0.7), rng.uniform(-0.9...0.1), -1)
        lightDirectionCamera = light / (light * light).sum().squareRoot()
        ambient = rng.uniform(0.25...0.45)
        background = pick(Self.backgrounds)
    }

    /// The caption: "a red house with a yellow roof", "an orange duck bouncing", "a mug".
    public var caption: String {
        var words: [String] = []
        if namesMainColor { words.append(mainColor.rawValue) }
        words.append(kind.noun)
        let first = words[0]
        var text = (Self.startsWithVowel(first) ? "an " : "a ") + words.joined(separator: " ")
        if namesSecondColor {
            let part = kind.secondPart
            let color = secondColor.rawValue
            text += part.plural ? " with \(color) \(part.name)" : " with \(Self.startsWithVowel(color) ? "an" : "a") \(color) \(part.name)"
        }
        if let motion { text += " \(motion.verb)" }
        return text
    }

    static func startsWithVowel(_ word: String) -> Bool { word.first.map { "aeiou".contains($0) } ?? false }

    /// Every word a caption can use.
    public static var vocabulary: [String] {
        var words: Set<String> = ["a", "an", "with"]
        words.formUnion(ToyKind.allCases.map(\.noun))
        words.formUnion(ToyKind.allCases.map(\.secondPart.name))
        words.formUnion(ToyColor.allCases.map(\.rawValue))
        words.formUnion(ToyMotion.allCases.map(\.verb))
        return words.sorted()
    }

    /// The conditioning vector the prior is trained with for this sample's view.
    public var view: ViewConditioning {
        ViewConditioning(azimuthDegrees: azimuthDegrees, elevationDegrees: elevationDegrees, time: time)
    }

    /// The object at rest (world space, base on y = 0, facing +Z).
    public var restMesh: TriangleMesh { kind.mesh(main: mainColor, second: secondColor) }

    /// The object as seen: the rest mesh moved by its motion at its time. This is the sample's
    /// ground truth for evaluations.
    public var mesh: TriangleMesh { posed(restMesh) }

    /// `rest` moved by the motion at the sample's time.
    func posed(_ rest: TriangleMesh) -> TriangleMesh {
        guard let motion, let time else { return rest }
        let (linear, translation) = motion.transform(at: time)
        return rest.transformed(linear: linear, translation: translation)
    }

    /// The orbit camera: aimed at the centre of the rest pose's bounding box, at a distance that
    /// fits its bounding sphere (times `distanceScale`), so a motion moves the object in the frame.
    public func camera(size: Int) -> Camera { camera(size: size, rest: restMesh) }

    func camera(size: Int, rest: TriangleMesh) -> Camera {
        let (lo, hi) = rest.bounds!  // every kind has vertices
        let center = (lo + hi) / 2, radius = ((hi - lo) * (hi - lo)).sum().squareRoot() / 2
        let fov = Self.fovYDegrees * .pi / 180
        let distance = radius / Foundation.sin(fov / 2) * distanceScale
        return Camera.orbit(azimuthDegrees: azimuthDegrees, elevationDegrees: elevationDegrees, radius: distance, target: center,
                            width: size, height: size, fovYRadians: fov)
    }

    /// The render as the data sets store it: channel planes `[3, size, size]` of 8-bit values 0–255
    /// (integers, as floats), written to `out`.
    public func renderData(size: Int, into out: UnsafeMutablePointer<Float>) {
        let picture = render(size: size), plane = size * size
        for p in 0..<plane {
            for c in 0..<3 { out[c * plane + p] = (min(1, max(0, picture.pixels[p * picture.channels + c])) * 255).rounded() }
        }
    }

    /// The rendered picture (display RGB, `size`×`size`), with Kiln's mesh renderer.
    public func render(size: Int) -> Image {
        let settings = MeshRenderSettings(background: background, lightDirectionCamera: lightDirectionCamera, ambient: ambient,
                                          diffuse: 1 - ambient)
        let rest = restMesh  // built once for the pose and the camera
        return MeshRenderer(posed(rest)).render(camera: camera(size: size, rest: rest), settings: settings, threads: 1).color
    }
}
