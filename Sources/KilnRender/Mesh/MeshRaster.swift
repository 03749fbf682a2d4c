import KilnCore

// MARK: - Conventions
//
// The mesh ops follow nvdiffrast (Laine et al. 2020, "Modular Primitives for High-Performance
// Differentiable Rendering"): four orthogonal ops — rasterize, interpolate, texture, antialias —
// over flat arrays, composed by the caller.
//
// Clip space: vertex positions are homogeneous `[V, 4]` (x, y, z, w) as a vertex shader would
// produce them (`Camera.clipFromWorld` gives Kiln's matrix). The visible volume is
// −w ≤ x, y, z ≤ w with w > 0; NDC = (x, y, z) / w with +y up.
//
// Pixels: pixel (col, row) has its centre at NDC x = 2(col + 0.5)/W − 1 and
// y = 1 − 2(row + 0.5)/H, so row 0 is the top of the picture (Kiln's `Image` convention; nvdiffrast
// puts y = −1 in row 0 instead).
//
// Barycentrics: (u, v) are the perspective-correct weights of the triangle's vertices 0 and 1;
// vertex 2 gets 1 − u − v. An attribute interpolates as u·a₀ + v·a₁ + (1 − u − v)·a₂.
//
// Homogeneous rasterization (Olano & Greer 1997): with M = [V₀ V₁ V₂] the 3×3 matrix of the
// vertices' (x, y, w) columns and q = (x_ndc, y_ndc, 1), the edge functions e = adj(M)·q are
// affine in the pixel position, e_i = (V_j × V_k)·q for (i, j, k) cyclic. A pixel centre is
// covered, in front of the eye, exactly when every e_i·det(M) ≥ 0 (not all zero); then the
// barycentrics are e_i / Σe and the NDC depth is Σe_i·z_i / det(M). No triangle is ever split:
// vertices behind the eye need no special case, and the near and far planes clip per pixel
// (−1 ≤ z/w ≤ 1). det(M) > 0 means counter-clockwise in NDC, i.e. front-facing for a mesh wound
// counter-clockwise seen from outside (glTF, `TriangleMesh`).

/// The per-pixel output of `rasterize`: which triangle each pixel centre sees, where, and how far.
public struct MeshRaster<R: BinaryFloatingPoint & Sendable>: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// `[H, W, 2]` perspective-correct barycentrics (u, v) of vertices 0 and 1; zero where empty.
    public var barycentrics: [R]
    /// `[H, W]` NDC depth z/w in [−1, 1] (smaller is nearer); zero where empty.
    public var depth: [R]
    /// `[H, W]` index of the visible triangle, or −1 where no triangle covers the pixel centre.
    public var triangleIDs: [Int32]
    /// `[H, W, 4]` screen derivatives (∂u/∂x, ∂u/∂y, ∂v/∂x, ∂v/∂y) per pixel step (x right,
    /// y down the rows), when requested; zero where empty. Texture level-of-detail uses them.
    public var barycentricDerivatives: [R]?

    public init(width: Int, height: Int, withDerivatives: Bool = false) {
        self.width = width
        self.height = height
        barycentrics = [R](repeating: 0, count: 2 * width * height)
        depth = [R](repeating: 0, count: width * height)
        triangleIDs = [Int32](repeating: -1, count: width * height)
        barycentricDerivatives = withDerivatives ? [R](repeating: 0, count: 4 * width * height) : nil
    }

    /// `[H, W]` 1 where a triangle covers the pixel centre, else 0.
    public var coverage: [R] { triangleIDs.map { $0 >= 0 ? 1 : 0 } }
}

/// Options for `rasterize`.
public struct RasterizeOptions: Sendable, Equatable {
    /// Skip triangles that are clockwise in NDC (seen from behind, for outward-wound meshes).
    public var cullBackFaces: Bool
    /// Also compute `MeshRaster.barycentricDerivatives`.
    public var barycentricDerivatives: Bool

    public init(cullBackFaces: Bool = false, barycentricDerivatives: Bool = false) {
        self.cullBackFaces = cullBackFaces
        self.barycentricDerivatives = barycentricDerivatives
    }
}

/// Maps pixel coordinates to NDC: x_ndc = sx·col + ox, y_ndc = sy·row + oy at pixel centres.
@usableFromInline
struct PixelToNDC<R: BinaryFloatingPoint> {
    @usableFromInline let sx: R, ox: R, sy: R, oy: R
    @inlinable init(width: Int, height: Int) {
        sx = 2 / R(width)
        ox = 1 / R(width) - 1
        sy = -2 / R(height)
        oy = 1 - 1 / R(height)
    }
}

extension Camera {
    /// The OpenGL-style projection from this camera's OpenCV frame to clip space, times
    /// `cameraFromWorld`: clip = P·[x, y, z, 1] with w = camera-space depth, NDC y up, and z/w
    /// mapping depth `near` → −1 and `far` → +1. Pixels follow the camera's intrinsics exactly:
    /// a point the camera projects to pixel (u, v) lands at NDC (2u/W − 1, 1 − 2v/H).
    public func clipFromWorld(near: Float, far: Float) -> Mat4 {
        precondition(near > 0 && far > near, "clipFromWorld needs 0 < near < far, got \(near), \(far)")
        let w = Float(width), h = Float(height)
        let a = (far + near) / (far - near), b = -2 * far * near / (far - near)
        let projection = Mat4(rows: Vec4(2 * fx / w, 0, 2 * cx / w - 1, 0),
                              Vec4(0, -2 * fy / h, 1 - 2 * cy / h, 0),
                              Vec4(0, 0, a, b),
                              Vec4(0, 0, 1, 0))
        return projection * cameraFromWorld
    }

    /// `[V, 4]` clip-space positions of world points under `clipFromWorld(near:far:)`.
    public func clipPositions(_ points: [SIMD3<Float>], near: Float, far: Float) -> [Float] {
        let m = clipFromWorld(near: near, far: far)
        var out = [Float](repeating: 0, count: 4 * points.count)
        for (i, p) in points.enumerated() {
            let c = m * Vec4(p.x, p.y, p.z, 1)
            out[4 * i] = c.x; out[4 * i + 1] = c.y; out[4 * i + 2] = c.z; out[4 * i + 3] = c.w
        }
        return out
    }
}
