import Foundation

// MARK: - Conventions
//
// Camera frame (OpenCV): +x right, +y down, +z forward (the looking direction). A point in front
// of the camera has positive camera-space z, and `depth` everywhere in Kiln means that z (distance
// along the optical axis, not along the ray).
//
// World frame: right-handed, +Y up (glTF), units of the scene.
//
// Pixels: continuous pixel coordinates (u, v) with u to the right and v down; image row 0 is the
// top of the picture and pixel (x, y) covers [x, x + 1) × [y, y + 1), so its centre is
// (x + 0.5, y + 0.5). The pinhole projection of a camera-space point (X, Y, Z) is
//     u = fx · X / Z + cx,    v = fy · Y / Z + cy,
// and a centred camera has cx = width / 2, cy = height / 2 (instant-ngp and nerfstudio use the
// same half-pixel convention; the original NeRF code put pixel centres on integers).
//
// Extrinsics: `cameraFromWorld` is rigid (rotation and translation only) and maps world points to
// camera points; `worldFromCamera` is its inverse, whose columns are the camera's right, down and
// forward axes and its centre, in world coordinates.
//
// OpenGL / NeRF / Blender frame: +x right, +y up, +z backward, i.e. the OpenCV frame with y and z
// negated. `transforms.json`'s `transform_matrix` is `openGLWorldFromCamera`.
//
// Orbit cameras (`Camera.orbit`): world +Y up; azimuth 0 puts the camera on the +Z side of the
// target looking toward −Z; azimuth grows counter-clockwise seen from above, so azimuth 90 puts the
// camera on the +X side; positive elevation puts the camera above the target, 90 straight above.

/// A pinhole camera: intrinsics in pixels and a rigid world-to-camera transform.
///
/// See the conventions at the top of `Camera.swift`: OpenCV camera frame (+x right, +y down,
/// +z forward), +Y-up world, row 0 at the top of the image, pixel centres at `+0.5`.
public struct Camera: Sendable, Equatable, Codable {
    /// Image width in pixels.
    public var width: Int
    /// Image height in pixels.
    public var height: Int
    /// Horizontal focal length in pixels.
    public var fx: Float
    /// Vertical focal length in pixels.
    public var fy: Float
    /// Principal point, x, in continuous pixel coordinates (`width / 2` when centred).
    public var cx: Float
    /// Principal point, y, in continuous pixel coordinates (`height / 2` when centred).
    public var cy: Float
    /// Rigid transform from world to camera (OpenCV) coordinates.
    public var cameraFromWorld: Mat4

    // MARK: Construction

    /// A camera from explicit intrinsics (pixels) and pose.
    public init(width: Int, height: Int, fx: Float, fy: Float, cx: Float, cy: Float,
                cameraFromWorld: Mat4 = .identity) {
        precondition(width > 0 && height > 0, "Camera size must be positive, got \(width)×\(height)")
        self.width = width
        self.height = height
        self.fx = fx
        self.fy = fy
        self.cx = cx
        self.cy = cy
        self.cameraFromWorld = cameraFromWorld
    }

    /// A centred camera with square pixels and vertical field of view `fovYRadians`:
    /// `fx = fy = 0.5 · height / tan(fovY / 2)`, `cx = width / 2`, `cy = height / 2`.
    public init(width: Int, height: Int, fovYRadians: Float, cameraFromWorld: Mat4 = .identity) {
        precondition(fovYRadians > 0 && fovYRadians < .pi, "fovYRadians must be in (0, π), got \(fovYRadians)")
        let f = 0.5 * Float(height) / tan(0.5 * fovYRadians)
        self.init(width: width, height: height, fx: f, fy: f,
                  cx: 0.5 * Float(width), cy: 0.5 * Float(height), cameraFromWorld: cameraFromWorld)
    }

    /// A centred camera with square pixels at `eye`, looking at `target`; see
    /// `lookAtCameraFromWorld(eye:target:up:)` for the pose.
    public static func lookAt(eye: Vec3, target: Vec3, up: Vec3 = Vec3(0, 1, 0),
                              width: Int, height: Int, fovYRadians: Float) -> Camera {
        Camera(width: width, height: height, fovYRadians: fovYRadians,
               cameraFromWorld: lookAtCameraFromWorld(eye: eye, target: target, up: up))
    }

    /// The `cameraFromWorld` of a camera at `eye` whose +z axis points at `target` and whose image
    /// up (−y) is as close to `up` as possible.
    ///
    /// When `up` is parallel to the view direction (looking straight up or down with the default
    /// +Y), the world axis least aligned with the view direction stands in for it, so the result is
    /// always a valid rotation. `eye` and `target` must differ.
    public static func lookAtCameraFromWorld(eye: Vec3, target: Vec3, up: Vec3 = Vec3(0, 1, 0)) -> Mat4 {
        let toTarget = target - eye
        precondition(lengthSquared(toTarget) > 0, "lookAt: eye and target are the same point \(eye)")
        let forward = normalize(toTarget)
        var right = cross(forward, up)  // forward × up = right for a y-down camera frame
        if lengthSquared(right) < 1e-12 * Swift.max(lengthSquared(up), .leastNormalMagnitude) {
            let a = Vec3(abs(forward.x), abs(forward.y), abs(forward.z))
            let fallback: Vec3 = a.x <= a.y && a.x <= a.z ? Vec3(1, 0, 0)
                : a.y <= a.z ? Vec3(0, 1, 0) : Vec3(0, 0, 1)
            right = cross(forward, fallback)
        }
        right = normalize(right)
        let down = cross(forward, right)  // z × x = y
        let worldFromCamera = Mat4(linear: Mat3(right, down, forward), translation: eye)
        return worldFromCamera.rigidInverse
    }

    /// The world position of an orbit camera: `target + radius · (cos e · sin a, sin e, cos e · cos a)`
    /// for azimuth `a`, elevation `e`. Azimuth 0 is the +Z side, 90 the +X side (counter-clockwise
    /// seen from above, world +Y up); elevation 90 is straight above.
    public static func orbitPosition(azimuthDegrees: Float, elevationDegrees: Float, radius: Float,
                                     target: Vec3 = .zero) -> Vec3 {
        let a = radians(degrees: azimuthDegrees), e = radians(degrees: elevationDegrees)
        return target + radius * Vec3(cos(e) * sin(a), sin(e), cos(e) * cos(a))
    }

    /// A centred camera on an orbit around `target`, looking at it.
    ///
    /// Convention: world +Y up; azimuth 0 puts the camera on the +Z side of the target,
    /// azimuth increases counter-clockwise seen from above (90 → +X side, 180 → −Z side);
    /// positive elevation is above the target. The image up vector is the direction of increasing
    /// elevation, `(−sin e · sin a, cos e, −sin e · cos a)`, so the poses stay well defined and
    /// continuous through the poles (at elevation 90 the image top points away from the azimuth).
    /// - Parameters:
    ///   - radius: distance from the target, scene units, positive.
    public static func orbit(azimuthDegrees: Float, elevationDegrees: Float, radius: Float,
                             target: Vec3 = .zero, width: Int, height: Int,
                             fovYRadians: Float) -> Camera {
        precondition(radius > 0, "orbit radius must be positive, got \(radius)")
        let a = radians(degrees: azimuthDegrees), e = radians(degrees: elevationDegrees)
        let eye = orbitPosition(azimuthDegrees: azimuthDegrees, elevationDegrees: elevationDegrees,
                                radius: radius, target: target)
        let up = Vec3(-sin(e) * sin(a), cos(e), -sin(e) * cos(a))
        return lookAt(eye: eye, target: target, up: up, width: width, height: height,
                      fovYRadians: fovYRadians)
    }

    // MARK: Intrinsics

    /// Vertical field of view, `2 · atan(0.5 · height / fy)`.
    public var fovYRadians: Float { 2 * atan(0.5 * Float(height) / fy) }

    /// Horizontal field of view, `2 · atan(0.5 · width / fx)` (NeRF's `camera_angle_x`).
    public var fovXRadians: Float { 2 * atan(0.5 * Float(width) / fx) }

    /// The intrinsic matrix `K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`: `K · (X, Y, Z)` is
    /// `Z · (u, v, 1)`.
    public var intrinsicMatrix: Mat3 {
        Mat3(rows: Vec3(fx, 0, cx), Vec3(0, fy, cy), Vec3(0, 0, 1))
    }

    /// The same view at another resolution: focal lengths and principal point scale with the
    /// image (exact under the pixel-centre-at-0.5 convention).
    public func resized(width newWidth: Int, height newHeight: Int) -> Camera {
        let sx = Float(newWidth) / Float(width), sy = Float(newHeight) / Float(height)
        return Camera(width: newWidth, height: newHeight, fx: fx * sx, fy: fy * sy,
                      cx: cx * sx, cy: cy * sy, cameraFromWorld: cameraFromWorld)
    }

    // MARK: Extrinsics

    /// Rigid transform from camera (OpenCV) to world coordinates: columns are the camera's right
    /// (+x), down (+y), forward (+z) axes and centre, in world coordinates.
    public var worldFromCamera: Mat4 {
        get { cameraFromWorld.rigidInverse }
        set { cameraFromWorld = newValue.rigidInverse }
    }

    /// The camera centre in world coordinates.
    public var position: Vec3 {
        let r = cameraFromWorld.upperLeft
        return -(r.transpose * cameraFromWorld.translation)
    }

    /// The viewing direction (+z of the camera) in world coordinates, unit length.
    public var forward: Vec3 { cameraFromWorld.upperLeft.row(2) }

    /// The image's right direction (+x of the camera) in world coordinates, unit length.
    public var right: Vec3 { cameraFromWorld.upperLeft.row(0) }

    /// The image's up direction (−y of the camera) in world coordinates, unit length.
    public var up: Vec3 { -cameraFromWorld.upperLeft.row(1) }

    /// The same as `worldFromCamera`, named for code that talks to OpenCV/COLMAP conventions.
    public var openCVWorldFromCamera: Mat4 { worldFromCamera }

    /// The same as `cameraFromWorld` (OpenCV's extrinsic `[R | t]`), named for clarity.
    public var openCVCameraFromWorld: Mat4 { cameraFromWorld }

    /// `diag(1, −1, −1, 1)`: maps OpenCV camera coordinates to OpenGL ones and back (self-inverse).
    public static let openGLFromOpenCV = Mat4(diagonal: Vec4(1, -1, -1, 1))

    /// Camera-to-world with OpenGL camera axes (+x right, +y up, +z backward): NeRF's and
    /// Blender's `transform_matrix`. Column 2 points from the target back toward the eye.
    public var openGLWorldFromCamera: Mat4 { worldFromCamera * Camera.openGLFromOpenCV }

    /// World-to-camera with OpenGL camera axes: the classic OpenGL view matrix.
    public var openGLCameraFromWorld: Mat4 { Camera.openGLFromOpenCV * cameraFromWorld }

    /// A camera from an OpenGL/NeRF camera-to-world matrix (must be rigid) and pixel intrinsics.
    public init(openGLWorldFromCamera m: Mat4, width: Int, height: Int,
                fx: Float, fy: Float, cx: Float, cy: Float) {
        self.init(width: width, height: height, fx: fx, fy: fy, cx: cx, cy: cy,
                  cameraFromWorld: (m * Camera.openGLFromOpenCV).rigidInverse)
    }

    /// A centred square-pixel camera from an OpenGL/NeRF camera-to-world matrix (must be rigid) and
    /// the horizontal field of view (`camera_angle_x`): `fx = fy = 0.5 · width / tan(fovX / 2)`.
    public init(openGLWorldFromCamera m: Mat4, width: Int, height: Int, fovXRadians: Float) {
        precondition(fovXRadians > 0 && fovXRadians < .pi, "fovXRadians must be in (0, π), got \(fovXRadians)")
        let f = 0.5 * Float(width) / tan(0.5 * fovXRadians)
        self.init(openGLWorldFromCamera: m, width: width, height: height, fx: f, fy: f,
                  cx: 0.5 * Float(width), cy: 0.5 * Float(height))
    }

    // MARK: Projection and rays

    /// Projects a world point to continuous pixel coordinates.
    /// - Returns: `pixel` = (u, v) (pixel centres at `+0.5`, v down) and `depth` = camera-space z.
    ///   Only points with `depth > 0` are in front of the camera; for others `pixel` is meaningless.
    @inlinable
    public func project(_ worldPoint: Vec3) -> (pixel: Vec2, depth: Float) {
        let p = cameraFromWorld.transformPoint(worldPoint)
        let invZ = 1 / p.z
        return (Vec2(fx * p.x * invZ + cx, fy * p.y * invZ + cy), p.z)
    }

    /// The world point seen at continuous pixel `pixel` with camera-space z `depth` (the inverse of
    /// `project`).
    @inlinable
    public func unproject(pixel: Vec2, depth: Float) -> Vec3 {
        let p = Vec3((pixel.x - cx) / fx * depth, (pixel.y - cy) / fy * depth, depth)
        return worldFromCamera.transformPoint(p)
    }

    /// The world-space ray through continuous pixel coordinates `pixel`.
    /// - Returns: `origin` = camera centre; `direction` unit length, pointing into the scene.
    @inlinable
    public func ray(pixel: Vec2) -> (origin: Vec3, direction: Vec3) {
        let d = Vec3((pixel.x - cx) / fx, (pixel.y - cy) / fy, 1)
        // Rows of R (cameraFromWorld) are the camera axes in world: Rᵀ·d maps d to world.
        return (position, normalize(cameraFromWorld.upperLeft.transpose * d))
    }

    /// The world-space ray through the centre of pixel (`x`, `y`), i.e. `(x + 0.5, y + 0.5)`.
    @inlinable
    public func ray(pixelX x: Int, pixelY y: Int) -> (origin: Vec3, direction: Vec3) {
        ray(pixel: Vec2(Float(x) + 0.5, Float(y) + 0.5))
    }
}
