import Foundation
import KilnCore
import KilnRender
import KilnToyWorld
import RealModule

/// What a 4D asset does over time, from its frames (the same Gaussians at every frame, so each
/// frame's cloud corresponds point for point with the first): per frame the opacity-weighted
/// similarity transform from frame 0 (Umeyama/Horn: rotation, uniform scale, translation) and the
/// residual non-rigid motion; from those, how much of each toy-world motion it shows, each as a
/// fraction of the toy world's own amplitude:
///
/// - bouncing: the vertical range of the translation over 0.4 of the object's height;
/// - spinning: the total turn about the vertical axis over one turn;
/// - growing / shrinking: log₂ of the last frame's scale over the first (+1 doubles, −1 halves);
/// - swaying: the largest tilt about the forward axis over 20°.
///
/// The motion it shows is the one with the largest fraction, if that is at least `threshold`.
public struct MotionAnalysis: Codable, Sendable, Equatable {
    public var times: [Float]
    /// Per frame: translation (world units), turn about +Y and tilt about +Z (degrees), scale.
    public var translation: [[Float]]
    public var yawDegrees: [Float]
    public var rollDegrees: [Float]
    public var scale: [Float]
    /// RMS distance (world units) of the points from the best similarity transform, per frame.
    public var nonRigid: [Float]
    /// Each toy motion's amplitude fraction.
    public var fractions: [String: Float]
    /// The motion shown ("still" when none reaches the threshold).
    public var dominant: String

    public static let threshold: Float = 0.3

    /// - Parameter frames: the clouds at `times` (the same Gaussians in the same order).
    public static func measure(_ frames: [SplatParameters<Float>], times: [Float]) -> MotionAnalysis {
        precondition(frames.count == times.count && frames.count >= 2 && frames.allSatisfy { $0.count == frames[0].count },
                     "MotionAnalysis: frames of one cloud at their times")
        let base = frames[0]
        let n = base.count
        let weights = (0..<n).map { 1 / (1 + Float.exp(-base.opacityLogits[$0])) }
        let x = base.positions
        var result = MotionAnalysis(times: times, translation: [], yawDegrees: [], rollDegrees: [], scale: [], nonRigid: [], fractions: [:], dominant: "still")
        var unwrappedYaw: Float = 0, previousYaw: Float = 0
        for (f, frame) in frames.enumerated() {
            let y = frame.positions
            let t = similarity(from: x, to: y, weights: weights)
            // Turn about +Y from where the forward axis (R·ẑ) points; tilt about +Z from where the
            // up axis (R·ŷ) leans: each blind to the other.
            let yaw = Float.atan2(y: t.rotation[0][2], x: t.rotation[2][2])
            if f > 0 {
                var d = yaw - previousYaw
                while d > .pi { d -= 2 * .pi }
                while d < -.pi { d += 2 * .pi }
                unwrappedYaw += d
            }
            previousYaw = yaw
            result.translation.append([t.translation.x, t.translation.y, t.translation.z])
            result.yawDegrees.append(unwrappedYaw * 180 / .pi)
            result.rollDegrees.append(Float.atan2(y: -t.rotation[0][1], x: t.rotation[1][1]) * 180 / .pi)
            result.scale.append(t.scale)
            result.nonRigid.append(t.residual)
        }
        // The object's height: the weighted 5th–95th percentile of y in frame 0.
        let order = x.indices.sorted { x[$0].y < x[$1].y }
        let total = weights.reduce(0, +)
        var acc: Float = 0, low = x[order[0]].y, high = x[order[order.count - 1]].y
        var foundLow = false
        for i in order {
            acc += weights[i]
            if !foundLow && acc >= 0.05 * total { low = x[i].y; foundLow = true }
            if acc >= 0.95 * total { high = x[i].y; break }
        }
        let height = max(1e-3, high - low)
        let ys = result.translation.map { $0[1] }
        let logScale = Float.log2(max(1e-6, result.scale.last!) / max(1e-6, result.scale.first!))
        result.fractions = [
            ToyMotion.bouncing.rawValue: (ys.max()! - ys.min()!) / height / 0.4,
            ToyMotion.spinning.rawValue: abs(unwrappedYaw) / (2 * .pi),
            ToyMotion.growing.rawValue: max(0, logScale),
            ToyMotion.shrinking.rawValue: max(0, -logScale) + 0,
            ToyMotion.swaying.rawValue: result.rollDegrees.map(abs).max()! / 20,
        ]
        if let best = result.fractions.max(by: { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }), best.value >= threshold {
            result.dominant = best.key
        }
        return result
    }

    /// The weighted similarity transform y ≈ s·R·x + t (Horn's quaternion method for R, Umeyama's
    /// scale), and the weighted RMS residual.
    static func similarity(from x: [SIMD3<Float>], to y: [SIMD3<Float>], weights: [Float])
        -> (rotation: [[Float]], scale: Float, translation: SIMD3<Float>, residual: Float) {
        let w = weights.map(Double.init), total = max(1e-12, w.reduce(0, +))
        var mx = SIMD3<Double>(), my = SIMD3<Double>()
        for i in x.indices { mx += w[i] * SIMD3<Double>(x[i]); my += w[i] * SIMD3<Double>(y[i]) }
        mx /= total; my /= total
        var s = [[Double]](repeating: [0, 0, 0], count: 3)  // Σ w (x − mx)(y − my)ᵀ
        var varianceX = 0.0
        for i in x.indices {
            let a = SIMD3<Double>(x[i]) - mx, b = SIMD3<Double>(y[i]) - my
            for r in 0..<3 { for c in 0..<3 { s[r][c] += w[i] * a[r] * b[c] } }
            varianceX += w[i] * (a * a).sum()
        }
        // Horn's symmetric 4×4 matrix; its top eigenvector is the rotation quaternion (w, x, y, z).
        let (sxx, sxy, sxz, syx, syy, syz, szx, szy, szz) = (s[0][0], s[0][1], s[0][2], s[1][0], s[1][1], s[1][2], s[2][0], s[2][1], s[2][2])
        let n: [[Double]] = [
            [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
            [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
            [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
            [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
        ]
        let q = topEigenvector(n)
        let (qw, qx, qy, qz) = (q[0], q[1], q[2], q[3])
        let r: [[Double]] = [
            [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy)],
            [2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx)],
            [2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy)],
        ]
        // Umeyama's scale: tr(R·Σ) / Σ w‖x − mx‖² (Σ here is Σ (x−mx)(y−my)ᵀ, so tr(R Σ) = Σ w (y−my)·R(x−mx)).
        var trace = 0.0
        for a in 0..<3 { for b in 0..<3 { trace += r[a][b] * s[b][a] } }
        let scale = varianceX > 0 ? trace / varianceX : 1
        var residual = 0.0
        for i in x.indices {
            let a = SIMD3<Double>(x[i]) - mx
            var p = my
            for row in 0..<3 { p[row] += scale * (r[row][0] * a.x + r[row][1] * a.y + r[row][2] * a.z) }
            let d = SIMD3<Double>(y[i]) - p
            residual += w[i] * (d * d).sum()
        }
        var t = my
        for row in 0..<3 { t[row] -= scale * (r[row][0] * mx.x + r[row][1] * mx.y + r[row][2] * mx.z) }
        return (r.map { $0.map(Float.init) }, Float(scale), SIMD3<Float>(t), Float((residual / total).squareRoot()))
    }

    /// The eigenvector of the largest eigenvalue of a symmetric 4×4 matrix (cyclic Jacobi).
    static func topEigenvector(_ matrix: [[Double]]) -> [Double] {
        var a = matrix
        var v = (0..<4).map { i in (0..<4).map { $0 == i ? 1.0 : 0.0 } }
        for _ in 0..<50 {
            var off = 0.0
            for p in 0..<4 { for q in (p + 1)..<4 { off += a[p][q] * a[p][q] } }
            if off < 1e-22 { break }
            for p in 0..<4 {
                for q in (p + 1)..<4 where abs(a[p][q]) > 1e-30 {
                    let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<4 {
                        let akp = a[k][p], akq = a[k][q]
                        a[k][p] = c * akp - s * akq
                        a[k][q] = s * akp + c * akq
                    }
                    for k in 0..<4 {
                        let apk = a[p][k], aqk = a[q][k]
                        a[p][k] = c * apk - s * aqk
                        a[q][k] = s * apk + c * aqk
                    }
                    for k in 0..<4 {
                        let vkp = v[k][p], vkq = v[k][q]
                        v[k][p] = c * vkp - s * vkq
                        v[k][q] = s * vkp + c * vkq
                    }
                }
            }
        }
        let best = (0..<4).max { a[$0][$0] < a[$1][$1] }!
        let vector = (0..<4).map { v[$0][best] }
        let norm = vector.map { $0 * $0 }.reduce(0, +).squareRoot()
        return vector.map { $0 / max(norm, 1e-300) }
    }
}

/// Temporal stability of a 4D asset at fixed cameras: the mean absolute change of each pixel
/// between consecutive frames (motion and flicker alike), and the flicker proper: the mean of
/// |I(t+1) − 2·I(t) + I(t−1)| / 2, which smooth motion keeps small and frame-to-frame noise does not.
public struct TemporalStability: Codable, Sendable, Equatable {
    public var frameChange: Double
    public var flicker: Double

    /// - Parameter sequences: per camera, its frames' `[H, W, C]` images in time order.
    public static func measure(_ sequences: [[Image]]) -> TemporalStability {
        var change = 0.0, changeCount = 0, flicker = 0.0, flickerCount = 0
        for frames in sequences {
            for t in 1..<frames.count {
                for i in frames[t].pixels.indices { change += Double(abs(frames[t].pixels[i] - frames[t - 1].pixels[i])) }
                changeCount += frames[t].pixels.count
            }
            guard frames.count >= 3 else { continue }
            for t in 1..<(frames.count - 1) {
                for i in frames[t].pixels.indices {
                    flicker += Double(abs(frames[t + 1].pixels[i] - 2 * frames[t].pixels[i] + frames[t - 1].pixels[i])) / 2
                }
                flickerCount += frames[t].pixels.count
            }
        }
        return TemporalStability(frameChange: changeCount > 0 ? change / Double(changeCount) : 0, flicker: flickerCount > 0 ? flicker / Double(flickerCount) : 0)
    }
}
