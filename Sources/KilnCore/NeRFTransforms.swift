import Foundation

/// The `transforms.json` camera file of NeRF, instant-ngp and nerfstudio.
///
/// ```json
/// { "camera_angle_x": 0.69, "fl_x": 555.5, "fl_y": 555.5, "cx": 400, "cy": 400, "w": 800, "h": 800,
///   "frames": [ { "file_path": "./train/r_0", "transform_matrix": [[…4…], […], […], […]] } ] }
/// ```
/// `transform_matrix` is camera-to-world in the OpenGL camera frame (+x right, +y up, +z backward),
/// row-major: `Camera.openGLWorldFromCamera`. Intrinsics are shared by all frames. `cx`, `cy` use
/// the half-pixel convention of instant-ngp/nerfstudio (centre = `w/2`), the same as `Camera`.
///
/// Keys are snake_case exactly as instant-ngp writes them; optional keys that are absent stay
/// absent when re-encoded. Keys this type does not model (`aabb_scale`, `scale`, `offset`, per-frame
/// `sharpness`, …) are ignored on reading: they are viewer hints of other tools, and this is an
/// interchange format that many programs write. Lens distortion (`k1`, `k2`, `p1`, `p2`) is read,
/// and `cameras` refuses non-zero values because `Camera` is a pure pinhole.
public struct NeRFTransforms: Sendable, Equatable, Codable {
    /// Horizontal field of view in radians (`camera_angle_x`); nerfstudio files may omit it.
    public var cameraAngleX: Float?
    /// Vertical field of view in radians (`camera_angle_y`), optional.
    public var cameraAngleY: Float?
    /// Focal lengths in pixels (`fl_x`, `fl_y`), optional.
    public var flX: Float?
    public var flY: Float?
    /// Principal point in pixels, optional (default: image centre).
    public var cx: Float?
    public var cy: Float?
    /// Image size in pixels, optional.
    public var w: Int?
    public var h: Int?
    /// Radial (`k1`, `k2`) and tangential (`p1`, `p2`) distortion, optional.
    public var k1: Float?
    public var k2: Float?
    public var p1: Float?
    public var p2: Float?
    /// Scene units per step of 16-bit depth PNGs written beside the images (Kiln's extension).
    public var depthScale: Float?
    /// `[F]` frames.
    public var frames: [Frame]

    /// One image and its pose.
    public struct Frame: Sendable, Equatable, Codable {
        /// Image path as written in the file (often relative and without extension).
        public var filePath: String
        /// Camera-to-world, OpenGL camera axes; encoded as row-major `[4][4]`.
        public var transformMatrix: Mat4
        /// Optional time stamp for dynamic scenes (D-NeRF), usually in [0, 1].
        public var time: Float?

        public init(filePath: String, transformMatrix: Mat4, time: Float? = nil) {
            self.filePath = filePath
            self.transformMatrix = transformMatrix
            self.time = time
        }

        enum CodingKeys: String, CodingKey {
            case filePath = "file_path"
            case transformMatrix = "transform_matrix"
            case time
        }
    }

    enum CodingKeys: String, CodingKey {
        case cameraAngleX = "camera_angle_x"
        case cameraAngleY = "camera_angle_y"
        case flX = "fl_x"
        case flY = "fl_y"
        case cx, cy, w, h, k1, k2, p1, p2, frames
        case depthScale = "depth_scale"
    }

    /// A file from explicit fields.
    public init(cameraAngleX: Float? = nil, cameraAngleY: Float? = nil, flX: Float? = nil,
                flY: Float? = nil, cx: Float? = nil, cy: Float? = nil, w: Int? = nil, h: Int? = nil,
                frames: [Frame]) {
        self.cameraAngleX = cameraAngleX
        self.cameraAngleY = cameraAngleY
        self.flX = flX
        self.flY = flY
        self.cx = cx
        self.cy = cy
        self.w = w
        self.h = h
        self.frames = frames
    }

    // MARK: From cameras

    /// The file for `cameras[i]` seen in image `filePaths[i]` (and at `times[i]` if given).
    ///
    /// All cameras must share intrinsics (the format stores one set); the file records them in
    /// full: `camera_angle_x`, `camera_angle_y`, `fl_x`, `fl_y`, `cx`, `cy`, `w`, `h`.
    /// - Throws: `NeRFTransformsError` when the lists are empty or disagree in length, or when the
    ///   intrinsics differ between cameras.
    public init(cameras: [Camera], filePaths: [String], times: [Float]? = nil) throws {
        guard let first = cameras.first else { throw NeRFTransformsError.noCameras }
        guard filePaths.count == cameras.count else {
            throw NeRFTransformsError.countMismatch(what: "filePaths", count: filePaths.count,
                                                    cameras: cameras.count)
        }
        if let times, times.count != cameras.count {
            throw NeRFTransformsError.countMismatch(what: "times", count: times.count, cameras: cameras.count)
        }
        func intrinsics(_ c: Camera) -> [Float] { [Float(c.width), Float(c.height), c.fx, c.fy, c.cx, c.cy] }
        if let i = cameras.firstIndex(where: { intrinsics($0) != intrinsics(first) }) {
            throw NeRFTransformsError.intrinsicsDiffer(index: i)
        }
        self.init(cameraAngleX: first.fovXRadians, cameraAngleY: first.fovYRadians,
                  flX: first.fx, flY: first.fy, cx: first.cx, cy: first.cy,
                  w: first.width, h: first.height,
                  frames: cameras.indices.map { i in
                      Frame(filePath: filePaths[i], transformMatrix: cameras[i].openGLWorldFromCamera,
                            time: times?[i])
                  })
    }

    // MARK: To cameras

    /// The cameras of all frames, in order.
    ///
    /// Intrinsics are read at the file's `w × h`, or at `imageWidth × imageHeight` when the file has
    /// no size. When both are present and differ (images stored downscaled), intrinsics are scaled
    /// to the given size. Missing pieces default as instant-ngp does: `fl_x` from `camera_angle_x`,
    /// `fl_y` from `camera_angle_y` or else `fl_x`, principal point at the image centre.
    /// - Throws: `NeRFTransformsError.missingImageSize`, `.missingFocalLength`, `.distortion`.
    public func cameras(imageWidth: Int? = nil, imageHeight: Int? = nil) throws -> [Camera] {
        guard let fileW = w ?? imageWidth, let fileH = h ?? imageHeight else {
            throw NeRFTransformsError.missingImageSize
        }
        guard fileW > 0 && fileH > 0 else { throw NeRFTransformsError.badImageSize(width: fileW, height: fileH) }
        for (name, value) in [("k1", k1), ("k2", k2), ("p1", p1), ("p2", p2)] {
            if let value, value != 0 { throw NeRFTransformsError.distortion(key: name, value: value) }
        }
        let fx: Float
        if let flX {
            fx = flX
        } else if let cameraAngleX {
            fx = 0.5 * Float(fileW) / tan(0.5 * cameraAngleX)
        } else {
            throw NeRFTransformsError.missingFocalLength
        }
        let fy = flY ?? cameraAngleY.map { 0.5 * Float(fileH) / tan(0.5 * $0) } ?? fx
        let px = cx ?? 0.5 * Float(fileW), py = cy ?? 0.5 * Float(fileH)
        guard fx.isFinite, fy.isFinite, fx > 0, fy > 0, px.isFinite, py.isFinite else {
            throw NeRFTransformsError.badIntrinsics(fx: fx, fy: fy, cx: px, cy: py)
        }
        for (i, frame) in frames.enumerated() {
            if let problem = Self.poseProblem(frame.transformMatrix) {
                throw NeRFTransformsError.badPose(index: i, filePath: frame.filePath, problem: problem)
            }
        }
        let outW = imageWidth ?? fileW, outH = imageHeight ?? fileH
        return frames.map { frame in
            let c = Camera(openGLWorldFromCamera: frame.transformMatrix, width: fileW, height: fileH,
                           fx: fx, fy: fy, cx: px, cy: py)
            return (outW, outH) == (fileW, fileH) ? c : c.resized(width: outW, height: outH)
        }
    }

    /// The largest camera position and axis length accepted: Float keeps about 7 digits, and
    /// nothing posed by a capture tool comes near 1e9 scene units.
    public static let poseLimit: Float = 1e9

    /// What makes a camera-to-world matrix unusable, or nil: a non-finite entry, a bottom row other
    /// than (0, 0, 0, 1), a position beyond `poseLimit`, or axes that are zero, huge or nearly
    /// parallel (the matrix has no usable inverse). Axes may carry a uniform scale, as some tools
    /// write.
    public static func poseProblem(_ m: Mat4) -> String? {
        let rows = (0..<4).map { m.row($0) }
        guard rows.allSatisfy({ $0.x.isFinite && $0.y.isFinite && $0.z.isFinite && $0.w.isFinite }) else { return "it holds NaN or infinite numbers" }
        guard rows[3] == Vec4(0, 0, 0, 1) else { return "its last row is (\(rows[3].x), \(rows[3].y), \(rows[3].z), \(rows[3].w)), not (0, 0, 0, 1)" }
        let position = Vec3(rows[0].w, rows[1].w, rows[2].w)
        guard max(abs(position.x), abs(position.y), abs(position.z)) <= poseLimit else {
            return "its camera position (\(position.x), \(position.y), \(position.z)) is farther than \(Int(poseLimit)) units from the origin"
        }
        let axes = (0..<3).map { j in Vec3(rows[0][j], rows[1][j], rows[2][j]) }
        let lengths = axes.map { ($0 * $0).sum().squareRoot() }
        guard lengths.allSatisfy({ $0 >= 1e-6 && $0 <= 1e6 }) else {
            return "its rotation axes have lengths \(lengths) (a zero or degenerate rotation)"
        }
        let unit = axes.indices.map { axes[$0] / lengths[$0] }
        let volume = (unit[0] * cross(unit[1], unit[2])).sum()
        guard abs(volume) > 1e-3 else { return "its rotation axes are (nearly) parallel: the matrix has no inverse" }
        return nil
    }

    // MARK: JSON

    /// The file as pretty-printed JSON with sorted keys (stable diffs).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Parses a `transforms.json` file's bytes.
    public init(jsonData: Data) throws {
        self = try JSONDecoder().decode(NeRFTransforms.self, from: jsonData)
    }

    // MARK: Codable

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cameraAngleX = try c.decodeIfPresent(Float.self, forKey: .cameraAngleX)
        cameraAngleY = try c.decodeIfPresent(Float.self, forKey: .cameraAngleY)
        flX = try c.decodeIfPresent(Float.self, forKey: .flX)
        flY = try c.decodeIfPresent(Float.self, forKey: .flY)
        cx = try c.decodeIfPresent(Float.self, forKey: .cx)
        cy = try c.decodeIfPresent(Float.self, forKey: .cy)
        w = try Self.decodePixelCount(c, .w)
        h = try Self.decodePixelCount(c, .h)
        k1 = try c.decodeIfPresent(Float.self, forKey: .k1)
        k2 = try c.decodeIfPresent(Float.self, forKey: .k2)
        p1 = try c.decodeIfPresent(Float.self, forKey: .p1)
        p2 = try c.decodeIfPresent(Float.self, forKey: .p2)
        depthScale = try c.decodeIfPresent(Float.self, forKey: .depthScale)
        frames = try c.decode([Frame].self, forKey: .frames)
    }

    /// instant-ngp's `colmap2nerf.py` writes sizes as floats (`"w": 1920.0`): accept any integral
    /// number.
    private static func decodePixelCount(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Int? {
        guard let v = try c.decodeIfPresent(Double.self, forKey: key) else { return nil }
        guard v == v.rounded(), v >= 0, v < 1e9 else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: c, debugDescription: "\(key.stringValue) must be a whole number of pixels, got \(v)")
        }
        return Int(v)
    }
}

/// Why a `transforms.json` could not be built or turned into cameras.
public enum NeRFTransformsError: Error, Equatable, CustomStringConvertible {
    case noCameras
    case countMismatch(what: String, count: Int, cameras: Int)
    case intrinsicsDiffer(index: Int)
    case missingImageSize
    case badImageSize(width: Int, height: Int)
    case missingFocalLength
    case distortion(key: String, value: Float)
    case badIntrinsics(fx: Float, fy: Float, cx: Float, cy: Float)
    case badPose(index: Int, filePath: String, problem: String)

    public var description: String {
        switch self {
        case .noCameras:
            return "transforms.json needs at least one camera"
        case let .countMismatch(what, count, cameras):
            return "transforms.json: \(count) \(what) for \(cameras) cameras; pass one per camera"
        case let .intrinsicsDiffer(index):
            return "transforms.json stores one set of intrinsics, but camera \(index) differs from camera 0; "
                + "render all views with the same size, focal length and principal point"
        case .missingImageSize:
            return "transforms.json has no \"w\"/\"h\"; pass imageWidth and imageHeight (the size of its images)"
        case let .badImageSize(width, height):
            return "transforms.json image size \(width)×\(height) is not positive"
        case .missingFocalLength:
            return "transforms.json has neither \"fl_x\" nor \"camera_angle_x\"; add one of them"
        case let .badIntrinsics(fx, fy, cx, cy):
            return "transforms.json gives the focal lengths \(fx), \(fy) and principal point (\(cx), \(cy)): they must be positive, finite numbers; "
                + "fix \"fl_x\"/\"fl_y\"/\"camera_angle_x\"/\"cx\"/\"cy\""
        case let .badPose(index, filePath, problem):
            return "transforms.json frame \(index) (\(filePath)) has an unusable transform_matrix: \(problem); "
                + "give each frame a camera-to-world rotation and position, or remove the frame"
        case let .distortion(key, value):
            return "transforms.json has lens distortion \(key) = \(value), but Kiln cameras are pinhole; "
                + "undistort the images first and set \(key) to 0"
        }
    }
}
