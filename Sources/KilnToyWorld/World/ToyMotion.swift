import Foundation
import KilnCore

/// How a toy object moves over normalised time τ ∈ [0, 1] (the 4D part of the toy world). Every
/// motion acts about the object's base (the origin), so the object stays on the ground or
/// returns to it.
public enum ToyMotion: String, CaseIterable, Sendable, Codable {
    case bouncing, spinning, growing, shrinking, swaying

    /// The verb in captions ("a red duck bouncing").
    public var verb: String { rawValue }

    /// Two times at which the motion's poses differ most (within a period): what a prior's time
    /// conditioning is judged on.
    public var contrastTimes: (Float, Float) {
        switch self {
        case .bouncing, .spinning: return (0, 0.25)  // on the ground / at the top; facing front / side
        case .growing, .shrinking: return (0, 1)
        case .swaying: return (0.25, 0.75)  // leaning one way / the other
        }
    }

    /// The object-to-world transform at τ: x ↦ L·x + t.
    public func transform(at time: Float) -> (linear: Mat3, translation: Vec3) {
        let tau = min(1, max(0, time))
        switch self {
        case .bouncing:  // two hops of 0.4 units
            return (Mat3(diagonal: Vec3(1, 1, 1)), Vec3(0, 0.4 * abs(Foundation.sin(2 * .pi * tau)), 0))
        case .spinning:  // one turn about +Y
            return (Mat3.rotation(axis: Vec3(0, 1, 0), angleRadians: 2 * .pi * tau), .zero)
        case .growing:
            return (Mat3(diagonal: Vec3(repeating: 0.5 + 0.5 * tau)), .zero)
        case .shrinking:
            return (Mat3(diagonal: Vec3(repeating: 1 - 0.5 * tau)), .zero)
        case .swaying:  // ±20° about the forward axis, one period
            return (Mat3.rotation(axis: Vec3(0, 0, 1), angleRadians: 0.35 * Foundation.sin(2 * .pi * tau)), .zero)
        }
    }
}
