import KilnCore

/// The named colours of the toy world, as display (sRGB) values.
public enum ToyColor: String, CaseIterable, Sendable, Codable {
    case red, orange, yellow, green, blue, purple, pink, white, black, brown, gray

    public var rgb: SIMD3<Float> {
        switch self {
        case .red: return SIMD3(0.85, 0.12, 0.10)
        case .orange: return SIMD3(0.96, 0.50, 0.08)
        case .yellow: return SIMD3(0.97, 0.86, 0.15)
        case .green: return SIMD3(0.16, 0.65, 0.20)
        case .blue: return SIMD3(0.13, 0.32, 0.85)
        case .purple: return SIMD3(0.52, 0.20, 0.72)
        case .pink: return SIMD3(0.97, 0.55, 0.72)
        case .white: return SIMD3(0.95, 0.95, 0.93)
        case .black: return SIMD3(0.08, 0.08, 0.09)
        case .brown: return SIMD3(0.48, 0.28, 0.12)
        case .gray: return SIMD3(0.52, 0.53, 0.55)
        }
    }

    /// RGBA for mesh vertex colours.
    public var rgba: SIMD4<Float> { SIMD4(rgb, 1) }
}
