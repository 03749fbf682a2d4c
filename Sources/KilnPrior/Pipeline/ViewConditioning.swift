import Foundation

/// The camera (and, for motion, time) a sample is drawn for, as the vector Kiln's priors take
/// through the UNet's `projection` class embedding.
///
/// Layout (8 values): [sin a, cos a, sin e, cos e, τ, sin 2πτ, cos 2πτ, 1] with a the azimuth and
/// e the elevation in radians and τ ∈ [0, 1] the normalised time; without a time the last four
/// are 0. Azimuth 0 looks at the object's front (from +Z), elevation is positive above.
/// `tools/make_prior_goldens.py` builds the same vector.
public struct ViewConditioning: Sendable, Equatable, Codable {
    public var azimuthDegrees: Float
    public var elevationDegrees: Float
    /// Normalised time τ ∈ [0, 1] for 4D priors; nil for a still object.
    public var time: Float?

    /// Length of `vector`: the UNet's `projection_class_embeddings_input_dim` must equal it.
    public static let length = 8

    public init(azimuthDegrees: Float = 0, elevationDegrees: Float = 15, time: Float? = nil) {
        self.azimuthDegrees = azimuthDegrees
        self.elevationDegrees = elevationDegrees
        self.time = time
    }

    /// The view a conditioning vector holds (the inverse of `vector`, angles in [−180°, 180°]).
    public init(vector v: ArraySlice<Float>) {
        precondition(v.count == Self.length, "ViewConditioning(vector:): \(v.count) values, not \(Self.length)")
        let s = v.startIndex
        azimuthDegrees = Foundation.atan2(v[s], v[s + 1]) * 180 / .pi
        elevationDegrees = Foundation.atan2(v[s + 2], v[s + 3]) * 180 / .pi
        time = v[s + 7] == 0 ? nil : v[s + 4]
    }

    /// The conditioning vector, `[length]`.
    public var vector: [Float] {
        let a = azimuthDegrees * .pi / 180, e = elevationDegrees * .pi / 180
        var v: [Float] = [Foundation.sin(a), Foundation.cos(a), Foundation.sin(e), Foundation.cos(e)]
        if let time {
            v += [time, Foundation.sin(2 * .pi * time), Foundation.cos(2 * .pi * time), 1]
        } else {
            v += [0, 0, 0, 0]
        }
        return v
    }
}
