import Foundation
import Testing
import KilnCore

/// A random camera: random orbit pose, non-square pixels, off-centre principal point.
func randomCamera(_ rng: inout RNG) -> Camera {
    var c = Camera.orbit(azimuthDegrees: rng.uniform(-180...180), elevationDegrees: rng.uniform(-80...80),
                         radius: rng.uniform(1...6), target: randomVec3(&rng),
                         width: 64 + Int(rng.uniform(0...64)), height: 48 + Int(rng.uniform(0...64)),
                         fovYRadians: rng.uniform(0.3...1.5))
    c.fx *= rng.uniform(0.8...1.2)
    c.cx += rng.uniform(-5...5)
    c.cy += rng.uniform(-5...5)
    return c
}

func isRotation(_ m: Mat3) -> Bool {
    abs(m.determinant - 1) < 1e-5 && Mat3.maxAbsDifference(m * m.transpose, .identity) < 1e-5
}

// MARK: - Projection and rays

@Test func rayThroughProjectedPixelPassesThroughThePoint() {
    var rng = RNG(seed: 10)
    var worst: Float = 0
    for _ in 0..<300 {
        let camera = randomCamera(&rng)
        // A point in front of the camera, anywhere in a wide cone around the axis.
        let p = camera.position + rng.uniform(0.5...10) * normalize(camera.forward + 0.4 * randomVec3(&rng))
        let (pixel, depth) = camera.project(p)
        #expect(depth > 0)
        let ray = camera.ray(pixel: pixel)
        #expect(abs(length(ray.direction) - 1) < 1e-5)
        let toPoint = p - ray.origin
        let along = dot(toPoint, ray.direction)
        #expect(along > 0)
        let miss = length(toPoint - along * ray.direction) / length(toPoint)
        worst = max(worst, miss)
        // Depth is camera-space z, i.e. the distance along the optical axis.
        #expect(abs(depth - dot(toPoint, camera.forward)) < 1e-4 * length(toPoint))
        // unproject inverts project.
        #expect(maxAbs(camera.unproject(pixel: pixel, depth: depth) - p) < 1e-4 * length(toPoint))
    }
    #expect(worst < 1e-5, "worst relative miss distance \(worst)")
}

@Test func pixelConventions() {
    let camera = Camera.lookAt(eye: Vec3(0, 0, 5), target: .zero, width: 100, height: 80, fovYRadians: 1)
    #expect(camera.cx == 50 && camera.cy == 40)
    #expect(abs(camera.fovYRadians - 1) < 1e-6)
    #expect(abs(camera.fx - 0.5 * 80 / tan(0.5)) < 1e-4)
    #expect(abs(camera.fovXRadians - 2 * atan(50 / camera.fx)) < 1e-6)
    // The target is on the optical axis: principal point, depth = distance.
    let (c, depth) = camera.project(.zero)
    #expect(maxAbs(Vec3(c.x - 50, c.y - 40, depth - 5)) < 1e-5)
    // +Y world (up) lands in the upper half of the image (row 0 is the top); +X to the right.
    #expect(camera.project(Vec3(0, 1, 0)).pixel.y < 40)
    #expect(camera.project(Vec3(1, 0, 0)).pixel.x > 50)
    // Pixel (49, 39) has its centre half a pixel up-left of the principal point.
    let r = camera.ray(pixelX: 49, pixelY: 39)
    let hit = camera.project(r.origin + 3 * r.direction).pixel
    #expect(maxAbs(Vec3(hit.x - 49.5, hit.y - 39.5, 0)) < 1e-4)
    // Intrinsic matrix.
    let k = camera.intrinsicMatrix * Vec3(0.1, -0.2, 2)
    #expect(abs(k.x / k.z - (camera.fx * 0.05 + 50)) < 1e-4)
    // Resizing keeps every point's relative image position.
    let small = camera.resized(width: 50, height: 40)
    let p = Vec3(0.3, -0.7, 1)
    #expect(maxAbs(Vec3(small.project(p).pixel * 2 - camera.project(p).pixel, 0)) < 1e-4)
}

// MARK: - Poses

@Test func orbitConventions() {
    func orbit(_ az: Float, _ el: Float) -> Camera {
        Camera.orbit(azimuthDegrees: az, elevationDegrees: el, radius: 3, width: 64, height: 64, fovYRadians: 0.8)
    }
    // Azimuth 0: camera on +Z looking toward −Z, image right = +X, image up = +Y.
    let front = orbit(0, 0)
    #expect(isClose(front.position, Vec3(0, 0, 3), 1e-6))
    #expect(isClose(front.forward, Vec3(0, 0, -1), 1e-6))
    #expect(isClose(front.right, Vec3(1, 0, 0), 1e-6))
    #expect(isClose(front.up, Vec3(0, 1, 0), 1e-6))
    // Azimuth 90: camera on +X (counter-clockwise seen from above).
    let side = orbit(90, 0)
    #expect(isClose(side.position, Vec3(3, 0, 0), 1e-5))
    #expect(isClose(side.forward, Vec3(-1, 0, 0), 1e-5))
    #expect(isClose(orbit(180, 0).position, Vec3(0, 0, -3), 1e-5))
    #expect(isClose(orbit(-90, 0).position, Vec3(-3, 0, 0), 1e-5))
    // Positive elevation is above the target; 90 is straight above, looking down.
    #expect(orbit(30, 30).position.y > 1.49 && orbit(30, 30).position.y < 1.51)
    let top = orbit(0, 90)
    #expect(isClose(top.position, Vec3(0, 3, 0), 1e-5))
    #expect(isClose(top.forward, Vec3(0, -1, 0), 1e-5))
    #expect(isClose(top.up, Vec3(0, 0, -1), 1e-5))  // image top points away from the azimuth side
    #expect(isRotation(top.cameraFromWorld.upperLeft))
    #expect(orbit(0, -45).position.y < 0)
    // Every orbit camera looks at its target, which lands on the principal point.
    var rng = RNG(seed: 11)
    for _ in 0..<100 {
        let target = randomVec3(&rng, -2...2)
        let c = Camera.orbit(azimuthDegrees: rng.uniform(-360...360), elevationDegrees: rng.uniform(-90...90),
                             radius: 2, target: target, width: 32, height: 24, fovYRadians: 0.9)
        #expect(isRotation(c.cameraFromWorld.upperLeft))
        #expect(abs(length(c.position - target) - 2) < 1e-5)
        let (pixel, depth) = c.project(target)
        #expect(abs(pixel.x - 16) < 1e-3 && abs(pixel.y - 12) < 1e-3 && abs(depth - 2) < 1e-5)
        #expect(dot(c.up, Vec3(0, 1, 0)) >= -1e-6)  // never upside down
    }
}

@Test func lookAtStraightDownIsStillARotation() {
    let c = Camera.lookAt(eye: Vec3(0, 5, 0), target: .zero, width: 8, height: 8, fovYRadians: 1)
    #expect(isRotation(c.cameraFromWorld.upperLeft))
    #expect(isClose(c.forward, Vec3(0, -1, 0), 1e-6))
    #expect(isClose(c.position, Vec3(0, 5, 0), 1e-6))
}

@Test func worldFromCameraColumnsAreCameraAxes() {
    var rng = RNG(seed: 12)
    for _ in 0..<50 {
        let c = randomCamera(&rng)
        let m = c.worldFromCamera
        #expect(isClose(Vec3(m.columns.0.x, m.columns.0.y, m.columns.0.z), c.right, 1e-5))
        #expect(isClose(Vec3(m.columns.1.x, m.columns.1.y, m.columns.1.z), -c.up, 1e-5))
        #expect(isClose(Vec3(m.columns.2.x, m.columns.2.y, m.columns.2.z), c.forward, 1e-5))
        #expect(isClose(m.translation, c.position, 1e-5))
        #expect(Mat4.maxAbsDifference(m * c.cameraFromWorld, .identity) < 1e-5)
        #expect(c.openCVWorldFromCamera == m && c.openCVCameraFromWorld == c.cameraFromWorld)
    }
}

// MARK: - OpenGL / NeRF

@Test func openGLHandComputedExample() {
    // Camera at (0, 0, 4) looking at the origin with +Y up: OpenGL axes coincide with the world's
    // (+x right, +y up, +z backward toward the eye), so the matrix is a pure translation.
    let c = Camera.lookAt(eye: Vec3(0, 0, 4), target: .zero, width: 32, height: 32, fovYRadians: 0.7)
    #expect(Mat4.maxAbsDifference(c.openGLWorldFromCamera, .translation(Vec3(0, 0, 4))) < 1e-6)
    #expect(c.openGLWorldFromCamera.rowMajor == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 4], [0, 0, 0, 1]])
    // The OpenGL view matrix maps the eye to the origin and the target to −z.
    #expect(isClose(c.openGLCameraFromWorld.transformPoint(.zero), Vec3(0, 0, -4), 1e-6))
}

@Test func openGLColumnTwoPointsBackward() {
    var rng = RNG(seed: 13)
    for _ in 0..<100 {
        let eye = randomVec3(&rng, -5...5), target = randomVec3(&rng, -1...1)
        guard length(eye - target) > 0.5 else { continue }
        let c = Camera.lookAt(eye: eye, target: target, width: 16, height: 16, fovYRadians: 1)
        let gl = c.openGLWorldFromCamera
        let back = Vec3(gl.columns.2.x, gl.columns.2.y, gl.columns.2.z)
        #expect(isClose(back, normalize(eye - target), 1e-5))
        let upGL = Vec3(gl.columns.1.x, gl.columns.1.y, gl.columns.1.z)
        #expect(isClose(upGL, c.up, 1e-6))
        #expect(isClose(gl.translation, eye, 1e-5))
        // Round trip through the OpenGL matrix.
        let again = Camera(openGLWorldFromCamera: gl, width: 16, height: 16, fx: c.fx, fy: c.fy, cx: c.cx, cy: c.cy)
        #expect(Mat4.maxAbsDifference(again.cameraFromWorld, c.cameraFromWorld) < 1e-5)
    }
}

@Test func cameraTransformsJSONRoundTrip() throws {
    var rng = RNG(seed: 14)
    let base = Camera(width: 120, height: 90, fx: 100, fy: 110, cx: 61.5, cy: 44, cameraFromWorld: .identity)
    let cameras = (0..<6).map { _ -> Camera in
        var c = base
        c.cameraFromWorld = Camera.lookAtCameraFromWorld(eye: randomVec3(&rng, -4...4) + Vec3(0, 0, 6),
                                                         target: randomVec3(&rng))
        return c
    }
    let paths = (0..<6).map { "./train/r_\($0)" }
    let file = try NeRFTransforms(cameras: cameras, filePaths: paths, times: [0, 0.2, 0.4, 0.6, 0.8, 1])
    let data = try file.jsonData()
    let text = String(decoding: data, as: UTF8.self)
    for key in ["\"camera_angle_x\"", "\"fl_x\"", "\"fl_y\"", "\"cx\"", "\"cy\"", "\"w\"", "\"h\"",
                "\"frames\"", "\"file_path\"", "\"transform_matrix\"", "\"time\"", "\"./train/r_0\""] {
        #expect(text.contains(key), "missing \(key)")
    }
    #expect(!text.contains("cameraAngleX") && !text.contains("k1"))
    let decoded = try NeRFTransforms(jsonData: data)
    #expect(decoded == file)
    let back = try decoded.cameras()
    #expect(back.count == cameras.count)
    for (a, b) in zip(back, cameras) {
        #expect(a.width == b.width && a.height == b.height)
        #expect(a.fx == b.fx && a.fy == b.fy && a.cx == b.cx && a.cy == b.cy)
        #expect(Mat4.maxAbsDifference(a.cameraFromWorld, b.cameraFromWorld) < 1e-5)
    }
    #expect(decoded.frames.map(\.time) == [0, 0.2, 0.4, 0.6, 0.8, 1])
    // The transform matrix in the file is the OpenGL camera-to-world, row-major.
    #expect(decoded.frames[2].transformMatrix == cameras[2].openGLWorldFromCamera)
}

@Test func readsMinimalBlenderStyleFile() throws {
    // The original NeRF synthetic format: only camera_angle_x and frames; sizes given by the caller.
    let json = """
    {"camera_angle_x": 0.6911112070083618,
     "frames": [{"file_path": "./test/r_0", "rotation": 0.012566370614359171,
                 "transform_matrix": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 4], [0, 0, 0, 1]]}]}
    """
    let file = try NeRFTransforms(jsonData: Data(json.utf8))
    #expect(file.w == nil && file.flX == nil)
    #expect(throws: NeRFTransformsError.missingImageSize) { try file.cameras() }
    let cams = try file.cameras(imageWidth: 800, imageHeight: 800)
    let c = try #require(cams.first)
    #expect(abs(c.fx - 400 / tan(0.5 * 0.6911112)) < 1e-2)  // ≈ 1111.1 px
    #expect(c.fy == c.fx && c.cx == 400 && c.cy == 400)
    #expect(isClose(c.position, Vec3(0, 0, 4), 1e-6))
    #expect(isClose(c.forward, Vec3(0, 0, -1), 1e-6))
    // Downscaled images: intrinsics scale with the requested size when the file has w/h.
    var sized = file
    sized.w = 800; sized.h = 800
    let half = try #require(try sized.cameras(imageWidth: 400, imageHeight: 400).first)
    #expect(abs(half.fx - c.fx / 2) < 1e-3 && half.cx == 200)
}

@Test func readsInstantNGPStyleSizesAndRejectsDistortion() throws {
    let json = """
    {"fl_x": 500.5, "fl_y": 501, "cx": 320, "cy": 240, "w": 640.0, "h": 480.0, "aabb_scale": 16,
     "k1": 0.0, "frames": [{"file_path": "images/0001.jpg", "sharpness": 30.5,
     "transform_matrix": [[1, 0, 0, 1], [0, 1, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]]}]}
    """
    let file = try NeRFTransforms(jsonData: Data(json.utf8))
    #expect(file.w == 640 && file.h == 480 && file.cameraAngleX == nil)
    let c = try #require(try file.cameras().first)
    #expect(c.fx == 500.5 && c.fy == 501 && c.width == 640)
    #expect(isClose(c.position, Vec3(1, 2, 3), 1e-6))
    var distorted = file
    distorted.k1 = 0.1
    #expect(throws: NeRFTransformsError.distortion(key: "k1", value: 0.1)) { try distorted.cameras() }
    #expect(throws: DecodingError.self) {
        try NeRFTransforms(jsonData: Data(#"{"w": 640.5, "h": 480, "fl_x": 1, "frames": []}"#.utf8))
    }
}

@Test func transformsRejectsMixedIntrinsics() {
    let a = Camera(width: 10, height: 10, fovYRadians: 1)
    let b = Camera(width: 10, height: 10, fovYRadians: 1.1)
    #expect(throws: NeRFTransformsError.intrinsicsDiffer(index: 1)) {
        try NeRFTransforms(cameras: [a, b], filePaths: ["a", "b"])
    }
    #expect(throws: NeRFTransformsError.noCameras) { try NeRFTransforms(cameras: [], filePaths: []) }
    #expect(throws: NeRFTransformsError.self) { try NeRFTransforms(cameras: [a], filePaths: ["a", "b"]) }
}

@Test func cameraCodableRoundTrip() throws {
    var rng = RNG(seed: 15)
    let c = randomCamera(&rng)
    let back = try JSONDecoder().decode(Camera.self, from: try JSONEncoder().encode(c))
    #expect(back == c)
}
