import KilnCore
import RealModule

/// Why orbit cameras cannot frame a subject: what is wrong with it and what to do.
public struct FramingError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension OrbitFraming {
    /// The largest coordinate, extent and camera distance the renderers are asked to handle. Float
    /// keeps about 7 significant digits; squared distances of 1e19 or more overflow in the
    /// projection, and nothing Kiln makes comes near 1e9 units.
    public static let coordinateLimit: Float = 1e9

    /// The smallest camera distance, relative to the distance of the subject from the origin, at
    /// which Float still separates the camera from its target (2⁻²⁴ ≈ 6e-8 is one ulp; this keeps
    /// two orders of margin so that pixels do not jitter).
    public static let relativeDistanceLimit: Float = 1e-5

    /// Throws `FramingError` when orbit cameras at `distance` from `center` (default: the distance
    /// at which a sphere of `radius` fills the view) cannot be placed: a non-finite or zero-size
    /// subject, one beyond `coordinateLimit`, or a camera distance Float cannot tell apart from
    /// the subject's position (a tiny cloud far from the origin).
    /// - Parameters:
    ///   - name: how the messages call the subject (a file name).
    ///   - distanceFlag: the option that set `distance`, named in its messages (`--radius`).
    public static func check(center: SIMD3<Float>, radius: Float, distance: Float? = nil, name: String,
                             distanceFlag: String? = nil, fovYRadians: Float = radians(degrees: 40)) throws {
        let farthest = max(abs(center.x), abs(center.y), abs(center.z))
        guard farthest.isFinite, radius.isFinite, farthest <= coordinateLimit, radius <= coordinateLimit else {
            throw FramingError("\(name) spans or lies farther than \(Int(coordinateLimit)) units from the origin (centre (\(center.x), \(center.y), \(center.z)), radius \(radius)): "
                               + "a coordinate is out of range (a stray vertex or Gaussian); remove it, or rescale and recentre the asset")
        }
        guard radius > 1e-5 else {  // renderers clamp a zero radius to a tiny one
            throw FramingError("\(name) has zero size (every point lies within \(radius) of (\(center.x), \(center.y), \(center.z))): "
                               + "there is nothing to frame; give an asset with extent")
        }
        let d = distance ?? radius * 1.1 / Float.sin(fovYRadians / 2)
        let flag = distanceFlag.map { "\($0) " } ?? "the camera distance "
        guard d.isFinite, d > 0, d <= coordinateLimit else {
            throw FramingError("\(flag)\(d) is out of range: pass a distance in (0, \(Int(coordinateLimit))]")
        }
        guard d >= relativeDistanceLimit * farthest, d >= 1e-6 else {
            throw FramingError("\(flag)\(d) is too small to place a camera at \(farthest) units from the origin (Float precision)"
                               + (distanceFlag == nil ? ": \(name) is tiny and far from the origin (one stray splat?); recentre or rescale it"
                                                      : ": pass a distance of at least \(max(1e-6, relativeDistanceLimit * farthest))"))
        }
    }
}
