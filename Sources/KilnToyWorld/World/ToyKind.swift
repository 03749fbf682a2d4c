import KilnCore

/// The object kinds of the toy world. Every kind stands on y = 0, is about one unit tall, and
/// faces +Z (azimuth 0): each has a feature that only its front shows (a face, a door, a nose,
/// headlights, an emblem), so a multi-faced (Janus) asset is visible from any side.
public enum ToyKind: String, CaseIterable, Sendable, Codable {
    case snowman, house, mushroom, mug, tree, rocket, chair, table, car, lamp, duck, robot

    /// The noun in captions.
    public var noun: String { rawValue }

    /// The part the caption's first colour paints ("a red house": the walls).
    public var mainPart: String {
        switch self {
        case .snowman: return "body"
        case .house: return "walls"
        case .mushroom: return "cap"
        case .mug: return "body"
        case .tree: return "leaves"
        case .rocket: return "body"
        case .chair: return "seat"
        case .table: return "top"
        case .car: return "body"
        case .lamp: return "shade"
        case .duck: return "body"
        case .robot: return "body"
        }
    }

    /// The second part a caption may colour ("with a yellow roof"), and whether it reads as plural
    /// ("with brown legs").
    public var secondPart: (name: String, plural: Bool) {
        switch self {
        case .snowman: return ("hat", false)
        case .house: return ("roof", false)
        case .mushroom: return ("stem", false)
        case .mug: return ("handle", false)
        case .tree: return ("trunk", false)
        case .rocket: return ("nose", false)
        case .chair: return ("legs", true)
        case .table: return ("legs", true)
        case .car: return ("roof", false)
        case .lamp: return ("base", false)
        case .duck: return ("beak", false)
        case .robot: return ("head", false)
        }
    }

    /// Colours a caption that names none gets.
    public var defaultColors: (main: ToyColor, second: ToyColor) {
        switch self {
        case .snowman: return (.white, .black)
        case .house: return (.white, .red)
        case .mushroom: return (.red, .white)
        case .mug: return (.blue, .blue)
        case .tree: return (.green, .brown)
        case .rocket: return (.white, .red)
        case .chair: return (.brown, .brown)
        case .table: return (.brown, .brown)
        case .car: return (.red, .red)
        case .lamp: return (.yellow, .gray)
        case .duck: return (.yellow, .orange)
        case .robot: return (.gray, .gray)
        }
    }

    /// The object's mesh with the two part colours (vertex colours; front details have fixed colours).
    public func mesh(main: ToyColor, second: ToyColor) -> TriangleMesh {
        let m = main.rgba, s = second.rgba
        let black = ToyColor.black.rgba, white = ToyColor.white.rgba
        var parts: [TriangleMesh]
        func sphere(_ c: Vec3, _ r: Float, _ color: SIMD4<Float>, scale: Vec3 = Vec3(1, 1, 1)) -> TriangleMesh {
            TriangleMesh.uvSphere(radius: r, segments: 20, rings: 10, color: color).transformed(linear: Mat3(diagonal: scale), translation: c)
        }
        func box(_ c: Vec3, _ size: Vec3, _ color: SIMD4<Float>) -> TriangleMesh { .box(center: c, size: size, color: color) }
        func rod(_ a: Vec3, _ b: Vec3, _ r: Float, _ color: SIMD4<Float>) -> TriangleMesh {
            .cylinder(base: a, top: b, radius: r, segments: 12, color: color)
        }
        func eyes(y: Float, z: Float, spacing: Float, r: Float) -> [TriangleMesh] {
            [-spacing, spacing].map { sphere(Vec3($0, y, z), r, black) }
        }
        switch self {
        case .snowman:
            parts = [sphere(Vec3(0, 0.3, 0), 0.3, m), sphere(Vec3(0, 0.72, 0), 0.22, m), sphere(Vec3(0, 1.04, 0), 0.16, m),
                     .cone(base: Vec3(0, 1.04, 0.13), tip: Vec3(0, 1.02, 0.36), radius: 0.04, segments: 10, color: ToyColor.orange.rgba),
                     .cylinder(base: Vec3(0, 1.15, 0), top: Vec3(0, 1.17, 0), radius: 0.19, segments: 16, color: s),
                     .cylinder(base: Vec3(0, 1.17, 0), top: Vec3(0, 1.34, 0), radius: 0.11, segments: 16, color: s)]
            parts += eyes(y: 1.09, z: 0.135, spacing: 0.055, r: 0.025)
            parts += [0.62, 0.76].map { sphere(Vec3(0, $0, 0.21), 0.025, black) }
        case .house:
            parts = [box(Vec3(0, 0.3, 0), Vec3(0.8, 0.6, 0.7), m),
                     TriangleMesh.cone(base: Vec3(0, 0.6, 0), tip: Vec3(0, 1.05, 0), radius: 0.62, segments: 4, color: s)
                        .transformed(linear: Mat3.rotation(axis: Vec3(0, 1, 0), angleRadians: .pi / 4)),
                     box(Vec3(0, 0.2, 0.36), Vec3(0.18, 0.4, 0.03), ToyColor.brown.rgba),
                     box(Vec3(-0.25, 0.38, 0.36), Vec3(0.14, 0.14, 0.03), ToyColor.blue.rgba),
                     box(Vec3(0.25, 0.38, 0.36), Vec3(0.14, 0.14, 0.03), ToyColor.blue.rgba)]
        case .mushroom:
            parts = [.frustum(base: Vec3(0, 0, 0), top: Vec3(0, 0.55, 0), baseRadius: 0.2, topRadius: 0.15, segments: 16, color: s),
                     sphere(Vec3(0, 0.55, 0), 0.45, m, scale: Vec3(1, 0.6, 1))]
            parts += eyes(y: 0.33, z: 0.175, spacing: 0.06, r: 0.03)
            parts += [(-0.2, 0.78, 0.25), (0.22, 0.74, 0.22), (0, 0.85, -0.2), (-0.3, 0.7, -0.12)].map { sphere(Vec3($0.0, $0.1, $0.2), 0.06, white) }
        case .mug:
            parts = [.cylinder(base: Vec3(0, 0, 0), top: Vec3(0, 0.7, 0), radius: 0.32, segments: 24, color: m),
                     .cylinder(base: Vec3(0, 0.7, 0), top: Vec3(0, 0.71, 0), radius: 0.27, segments: 24, color: ToyColor.brown.rgba),
                     box(Vec3(0.42, 0.58, 0), Vec3(0.2, 0.06, 0.07), s), box(Vec3(0.42, 0.14, 0), Vec3(0.2, 0.06, 0.07), s),
                     box(Vec3(0.5, 0.36, 0), Vec3(0.06, 0.5, 0.07), s),
                     sphere(Vec3(0, 0.38, 0.3), 0.1, white, scale: Vec3(1, 1, 0.35)),
                     sphere(Vec3(0, 0.38, 0.34), 0.05, ToyColor.red.rgba, scale: Vec3(1, 1, 0.4))]
        case .tree:
            parts = [rod(Vec3(0, 0, 0), Vec3(0, 0.45, 0), 0.12, s),
                     .cone(base: Vec3(0, 0.35, 0), tip: Vec3(0, 0.95, 0), radius: 0.45, segments: 16, color: m),
                     .cone(base: Vec3(0, 0.7, 0), tip: Vec3(0, 1.25, 0), radius: 0.33, segments: 16, color: m),
                     box(Vec3(0, 0.15, 0.115), Vec3(0.14, 0.24, 0.03), ToyColor.black.rgba)]
            // Red apples on the front side only.
            parts += [(-0.17, 0.52, 0.3), (0.19, 0.58, 0.28), (0.02, 0.72, 0.26), (-0.08, 0.95, 0.2), (0.1, 0.88, 0.22)]
                .map { sphere(Vec3($0.0, $0.1, $0.2), 0.07, ToyColor.red.rgba) }
        case .rocket:
            parts = [rod(Vec3(0, 0.1, 0), Vec3(0, 0.8, 0), 0.18, m),
                     .cone(base: Vec3(0, 0.8, 0), tip: Vec3(0, 1.15, 0), radius: 0.18, segments: 16, color: s),
                     .frustum(base: Vec3(0, 0, 0), top: Vec3(0, 0.1, 0), baseRadius: 0.13, topRadius: 0.1, segments: 12, color: ToyColor.gray.rgba),
                     sphere(Vec3(0, 0.6, 0.17), 0.08, ToyColor.blue.rgba, scale: Vec3(1, 1, 0.4))]
            for a in [Float(0), .pi * 2 / 3, .pi * 4 / 3] {
                parts.append(box(Vec3(0, 0.17, 0.24), Vec3(0.03, 0.34, 0.14), s)
                    .transformed(linear: Mat3.rotation(axis: Vec3(0, 1, 0), angleRadians: a + .pi)))
            }
        case .chair:
            parts = [box(Vec3(0, 0.45, 0), Vec3(0.6, 0.08, 0.6), m), box(Vec3(0, 0.82, -0.27), Vec3(0.6, 0.7, 0.06), m)]
            for (x, z) in [(-0.26, -0.26), (0.26, -0.26), (-0.26, 0.26), (0.26, 0.26)] as [(Float, Float)] {
                parts.append(box(Vec3(x, 0.21, z), Vec3(0.06, 0.42, 0.06), s))
            }
            parts.append(box(Vec3(0, 0.5, 0.2), Vec3(0.3, 0.03, 0.2), ToyColor.red.rgba))  // cushion toward the front
        case .table:
            parts = [box(Vec3(0, 0.65, 0), Vec3(1.0, 0.07, 0.6), m), box(Vec3(0, 0.54, 0.25), Vec3(0.4, 0.14, 0.1), m),
                     sphere(Vec3(0, 0.54, 0.31), 0.03, ToyColor.yellow.rgba)]
            for (x, z) in [(-0.44, -0.24), (0.44, -0.24), (-0.44, 0.24), (0.44, 0.24)] as [(Float, Float)] {
                parts.append(box(Vec3(x, 0.31, z), Vec3(0.07, 0.62, 0.07), s))
            }
        case .car:
            parts = [box(Vec3(0, 0.28, 0), Vec3(0.6, 0.26, 1.2), m), box(Vec3(0, 0.52, -0.1), Vec3(0.52, 0.24, 0.6), s),
                     box(Vec3(0, 0.52, 0.205), Vec3(0.46, 0.18, 0.01), ToyColor.blue.rgba)]
            for (x, z) in [(-0.31, -0.38), (0.31, -0.38), (-0.31, 0.38), (0.31, 0.38)] as [(Float, Float)] {
                parts.append(.cylinder(base: Vec3(x - 0.05, 0.15, z), top: Vec3(x + 0.05, 0.15, z), radius: 0.15, segments: 14, color: black))
            }
            parts += [-0.2, 0.2].map { sphere(Vec3($0, 0.3, 0.6), 0.06, ToyColor.yellow.rgba, scale: Vec3(1, 1, 0.4)) }
        case .lamp:
            parts = [.cylinder(base: Vec3(0, 0, 0), top: Vec3(0, 0.06, 0), radius: 0.25, segments: 20, color: s),
                     rod(Vec3(0, 0.06, 0), Vec3(0, 0.6, -0.1), 0.025, ToyColor.gray.rgba),
                     rod(Vec3(0, 0.6, -0.1), Vec3(0, 0.9, 0.15), 0.025, ToyColor.gray.rgba),
                     .frustum(base: Vec3(0, 0.95, 0.1), top: Vec3(0, 0.78, 0.36), baseRadius: 0.08, topRadius: 0.22, segments: 16, color: m),
                     sphere(Vec3(0, 0.8, 0.33), 0.08, ToyColor.yellow.rgba)]
        case .duck:
            parts = [sphere(Vec3(0, 0.24, -0.05), 0.32, m, scale: Vec3(0.9, 0.75, 1.25)), sphere(Vec3(0, 0.62, 0.2), 0.19, m),
                     .cone(base: Vec3(0, 0.6, 0.35), tip: Vec3(0, 0.58, 0.55), radius: 0.07, segments: 10, color: s),
                     .cone(base: Vec3(0, 0.34, -0.4), tip: Vec3(0, 0.49, -0.55), radius: 0.1, segments: 10, color: m)]
            parts += eyes(y: 0.68, z: 0.34, spacing: 0.08, r: 0.03)
        case .robot:
            parts = [box(Vec3(0, 0.45, 0), Vec3(0.5, 0.5, 0.35), m), box(Vec3(0, 0.9, 0), Vec3(0.34, 0.3, 0.3), s),
                     rod(Vec3(0, 1.05, 0), Vec3(0, 1.2, 0), 0.015, ToyColor.gray.rgba), sphere(Vec3(0, 1.22, 0), 0.04, ToyColor.red.rgba),
                     box(Vec3(0, 0.48, 0.18), Vec3(0.34, 0.28, 0.02), ToyColor.yellow.rgba),
                     box(Vec3(0, 0.83, 0.155), Vec3(0.18, 0.04, 0.02), black),
                     box(Vec3(0, 0.5, -0.22), Vec3(0.36, 0.36, 0.1), black)]  // backpack
            parts += [-0.08, 0.08].map { box(Vec3($0, 0.93, 0.155), Vec3(0.08, 0.08, 0.02), ToyColor.blue.rgba) }
            parts += [-0.12, 0.12].map { box(Vec3($0, 0.1, 0), Vec3(0.12, 0.2, 0.14), ToyColor.gray.rgba) }
            parts += [-0.32, 0.32].map { box(Vec3($0, 0.48, 0), Vec3(0.1, 0.4, 0.1), ToyColor.gray.rgba) }
        }
        var mesh = TriangleMesh.merged(parts)
        mesh.material = TriangleMesh.Material(name: rawValue, roughnessFactor: 0.8)
        return mesh
    }
}
