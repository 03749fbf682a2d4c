/// A float image, row-major, interleaved channels: `pixels[(y * width + x) * channels + c]`.
///
/// Row 0 is the top of the picture. Values are linear-free "display" values in [0, 1] unless a
/// caller says otherwise (depth maps hold metres). Channel counts in use: 1 (gray, depth),
/// 3 (RGB), 4 (RGBA, straight — not premultiplied — alpha).
public struct Image: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    /// `[height, width, channels]`, contiguous.
    public var pixels: [Float]

    /// A `width × height × channels` image filled with `value`.
    public init(width: Int, height: Int, channels: Int, fill value: Float = 0) {
        precondition(width >= 0 && height >= 0, "Image size must be non-negative")
        precondition((1...4).contains(channels), "Image channels must be 1...4, got \(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = [Float](repeating: value, count: width * height * channels)
    }

    /// Wraps existing pixels, `[height, width, channels]`.
    public init(width: Int, height: Int, channels: Int, pixels: [Float]) {
        precondition(width >= 0 && height >= 0, "Image size must be non-negative")
        precondition((1...4).contains(channels), "Image channels must be 1...4, got \(channels)")
        precondition(pixels.count == width * height * channels,
                     "Image pixels count \(pixels.count) != \(width)×\(height)×\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    @inlinable
    public subscript(x: Int, y: Int, c: Int) -> Float {
        get { pixels[(y * width + x) * channels + c] }
        set { pixels[(y * width + x) * channels + c] = newValue }
    }

    /// True when every value is finite.
    public var isFinite: Bool { pixels.allSatisfy { $0.isFinite } }
}
