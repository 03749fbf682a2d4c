import KilnCore

/// The `shade` op, between interpolate/texture and antialias: Lambert + ambient from a light fixed
/// to the camera, on the side of the surface facing the viewer, composited over the background,
/// in linear light. Both the mesh renderer and the distilled mesh scene shade through it.
///
/// At a pixel that a triangle covers, with n the interpolated world normal, R the camera's
/// rotation (world → camera) and l the unit light direction in camera space:
///
///     n̂ = f·n/|n|,  f = −1 when n·ray > 0 (the eye sees the back of the surface), else 1
///     s = ambient + diffuse · max(0, (R·n̂)·l)
///     rgb = base.rgb · s                               (C = 3)
///     rgb = base.rgb · s · a + background · (1 − a),   a = clamp(base.a, 0, 1)   (C = 4, straight alpha)
///     alpha = 1
///
/// and rgb = background, alpha = 0 where no triangle covers the pixel centre (antialias then
/// blends the silhouettes).
public enum MeshShading {
    /// A light that moves with the camera, so that every view of an orbit is lit alike.
    public struct Light: Sendable, Equatable {
        /// Unit direction toward the light in camera space (OpenCV: +x right, +y down, +z forward).
        public var directionCamera: SIMD3<Float>
        /// Light that reaches every surface, and the weight of the Lambert term.
        public var ambient: Float
        public var diffuse: Float

        public init(directionCamera: SIMD3<Float>, ambient: Float, diffuse: Float) {
            self.directionCamera = directionCamera
            self.ambient = ambient
            self.diffuse = diffuse
        }
    }

    /// The forward pass's images, and what the backward pass reads.
    public struct Output: Sendable {
        /// `[H, W, 4]` linear RGB over the background, and coverage (1 where a triangle covers the
        /// pixel centre, else 0).
        public var rgba: [Float]
        /// `[H, W]` the shading factor s; 0 where empty.
        public var shade: [Float]
        /// `[H, W, 3]` world-space unit normals n̂, turned to face the viewer; 0 where empty.
        public var normals: [Float]
        /// `[H, W]` the sign f that turned each normal to the viewer (1 where empty).
        public var flip: [Float]
    }

    /// Shades every covered pixel.
    /// - Parameters:
    ///   - base: `[H, W, C]` interpolated (and textured) base colour, linear; C = 3 (opaque) or 4
    ///     (straight alpha in channel 3).
    ///   - normals: `[H, W, 3]` interpolated world-space normals, any length.
    ///   - raster: the raster `base` and `normals` were interpolated over (its triangle IDs).
    ///   - camera: the camera that was rasterized (its rotation and pixel rays).
    ///   - background: linear RGB behind the mesh.
    public static func forward(base: [Float], channels: Int, normals: [Float], raster: MeshRaster<Float>, camera: Camera, light: Light,
                               background: SIMD3<Float>) -> Output {
        let w = raster.width, pixels = raster.width * raster.height
        precondition(channels == 3 || channels == 4, "shade takes RGB or RGBA base colours, got \(channels) channels")
        precondition(base.count == pixels * channels && normals.count == 3 * pixels,
                     "shade needs [H, W, \(channels)] base colours and [H, W, 3] normals for a \(raster.width)×\(raster.height) raster")
        let rotation = camera.cameraFromWorld.upperLeft
        var out = Output(rgba: [Float](repeating: 0, count: 4 * pixels), shade: [Float](repeating: 0, count: pixels),
                         normals: [Float](repeating: 0, count: 3 * pixels), flip: [Float](repeating: 1, count: pixels))
        for p in 0..<pixels {
            guard raster.triangleIDs[p] >= 0 else {
                out.rgba[4 * p] = background.x; out.rgba[4 * p + 1] = background.y; out.rgba[4 * p + 2] = background.z
                continue
            }
            var n = SIMD3(normals[3 * p], normals[3 * p + 1], normals[3 * p + 2])
            n = length(n) > 0 ? normalize(n) : n
            // Light the side facing the viewer: a back face seen through a hole lights like its front.
            if dot(n, camera.ray(pixelX: p % w, pixelY: p / w).direction) > 0 {
                n = -n
                out.flip[p] = -1
            }
            let s = light.ambient + light.diffuse * max(0, dot(rotation * n, light.directionCamera))
            out.shade[p] = s
            if channels == 3 {
                for c in 0..<3 { out.rgba[4 * p + c] = base[3 * p + c] * s }
            } else {
                let a = min(1, max(0, base[4 * p + 3]))
                for c in 0..<3 { out.rgba[4 * p + c] = base[4 * p + c] * s * a + background[c] * (1 - a) }
            }
            out.rgba[4 * p + 3] = 1
            out.normals[3 * p] = n.x; out.normals[3 * p + 1] = n.y; out.normals[3 * p + 2] = n.z
        }
        return out
    }

    /// Gradients with respect to `base` and, when `normalGradient`, to `normals`, from the gradient
    /// with respect to the `[H, W, 4]` output (its alpha channel is constant and gets none).
    /// Where a normal's Lambert term is clamped at 0 it gets no gradient (ambient alone), nor does
    /// an alpha clamped at 0 or 1.
    /// - Returns: `[H, W, C]` and `[H, W, 3]` (nil unless asked for) gradients; 0 where empty.
    public static func backward(_ output: Output, base: [Float], channels: Int, normals: [Float], raster: MeshRaster<Float>, camera: Camera,
                                light: Light, background: SIMD3<Float>, outputGradient: [Float],
                                normalGradient: Bool) -> (base: [Float], normals: [Float]?) {
        let pixels = raster.width * raster.height
        precondition(outputGradient.count == 4 * pixels, "shade's output gradient must be [H, W, 4] = [\(raster.height), \(raster.width), 4]")
        var dBase = [Float](repeating: 0, count: channels * pixels)
        var dNormals = normalGradient ? [Float](repeating: 0, count: 3 * pixels) : nil
        // The light in world space: (R·n̂)·l = n̂·(Rᵀ·l).
        let lightWorld = camera.cameraFromWorld.upperLeft.transpose * light.directionCamera
        for p in 0..<pixels where raster.triangleIDs[p] >= 0 {
            let s = output.shade[p]
            // ∂rgb/∂s, summed against the output gradient.
            var dShade: Float = 0
            if channels == 3 {
                for c in 0..<3 {
                    dBase[3 * p + c] = outputGradient[4 * p + c] * s
                    dShade += outputGradient[4 * p + c] * base[3 * p + c]
                }
            } else {
                let alpha = base[4 * p + 3], a = min(1, max(0, alpha))
                var dAlpha: Float = 0
                for c in 0..<3 {
                    let g = outputGradient[4 * p + c]
                    dBase[4 * p + c] = g * s * a
                    dShade += g * base[4 * p + c] * a
                    dAlpha += g * (base[4 * p + c] * s - background[c])
                }
                if alpha > 0, alpha < 1 { dBase[4 * p + 3] = dAlpha }
            }
            guard normalGradient else { continue }
            let n = SIMD3(normals[3 * p], normals[3 * p + 1], normals[3 * p + 2])
            let l = length(n)
            guard dShade != 0, l > 0 else { continue }
            let u = n / l, f = output.flip[p]
            guard dot(f * u, lightWorld) > 0 else { continue }  // unlit: s is the ambient alone
            // s depends on n̂ = f·u through diffuse·(n̂·lightWorld); u = n/|n| projects out the radial part.
            let gUnit = f * light.diffuse * dShade * lightWorld
            let g = (gUnit - u * dot(u, gUnit)) / l
            dNormals![3 * p] = g.x; dNormals![3 * p + 1] = g.y; dNormals![3 * p + 2] = g.z
        }
        return (dBase, dNormals)
    }
}
