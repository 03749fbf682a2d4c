import KilnCore
import RealModule

/// A deformation of a canonical Gaussian cloud over normalised time τ ∈ [0, 1]: per-Gaussian
/// motion bases (as Dynamic 3D Gaussians' per-point trajectories and 4DGS's deformation, written
/// as a fixed basis so that it is linear in its coefficients). Gaussian i at time τ has
///
///     μᵢ(τ) = μᵢ + Σₖ bₖ(τ)·Pᵢₖ      (position, Pᵢₖ ∈ ℝ³)
///     qᵢ(τ) = qᵢ + Σₖ bₖ(τ)·Qᵢₖ      (rotation before normalisation, Qᵢₖ ∈ ℝ⁴)
///     sᵢ(τ) = sᵢ + Σₖ bₖ(τ)·Sᵢₖ      (log-scale, Sᵢₖ ∈ ℝ³)
///
/// with the K = 5 bases b(τ) = (τ − ½, sin 2πτ, cos 2πτ − 1, sin 4πτ, cos 4πτ − 1): a drift and
/// two harmonics of a loop, enough for the toy world's motions (bouncing, spinning, growing,
/// swaying). Opacity and colour do not move; zero coefficients leave the canonical cloud still.
///
/// Layouts (row-major): `position [N, K, 3]`, `rotation [N, K, 4]`, `logScale [N, K, 3]`.
///
/// The passes are generic (the gradient checks run them in Double); each carries a Float
/// specialisation (`@_specialize`), which callers in other modules reach through the generic entry:
/// unspecialised, the 4D step spent 2 s of its 2.8 in these loops.
public struct SplatMotion<R: Real & BinaryFloatingPoint & SIMDScalar & Sendable>: Sendable, Equatable {
    public static var basisCount: Int { 5 }

    public var position: [R]
    public var rotation: [R]
    public var logScale: [R]

    public var count: Int { position.count / (3 * Self.basisCount) }

    /// No motion for `count` Gaussians (also the shape of a gradient).
    public init(zerosFor count: Int) {
        let k = Self.basisCount
        position = [R](repeating: 0, count: count * k * 3)
        rotation = [R](repeating: 0, count: count * k * 4)
        logScale = [R](repeating: 0, count: count * k * 3)
    }

    public init(position: [R], rotation: [R], logScale: [R]) {
        let k = Self.basisCount, n = position.count / (3 * k)
        precondition(position.count == n * k * 3 && rotation.count == n * k * 4 && logScale.count == n * k * 3,
                     "SplatMotion arrays disagree with N = \(n), K = \(k)")
        self.position = position
        self.rotation = rotation
        self.logScale = logScale
    }

    /// b(τ), the K basis values.
    public static func basis(_ tau: R) -> [R] {
        let angle = 2 * R.pi * tau
        return [tau - R(0.5), R.sin(angle), R.cos(angle) - 1, R.sin(2 * angle), R.cos(2 * angle) - 1]
    }

    /// The cloud at time τ.
    @_specialize(where R == Float)
    public func deformed(_ p: SplatParameters<R>, at tau: R) -> SplatParameters<R> {
        precondition(p.count == count, "SplatMotion: \(count) Gaussians' motion for a cloud of \(p.count)")
        let b = Self.basis(tau), k = Self.basisCount
        var q = p
        for i in 0..<p.count {
            for j in 0..<k {
                let w = b[j]
                for a in 0..<3 {
                    q.means[3 * i + a] += w * position[(i * k + j) * 3 + a]
                    q.logScales[3 * i + a] += w * logScale[(i * k + j) * 3 + a]
                }
                for a in 0..<4 { q.rotations[4 * i + a] += w * rotation[(i * k + j) * 4 + a] }
            }
        }
        return q
    }

    /// The backward pass of `deformed`: from the gradient of a loss with respect to the cloud at
    /// τ, the gradients of the canonical cloud (the same: the deformation adds to it) and of the
    /// motion coefficients (∂L/∂Pᵢₖ = bₖ(τ)·∂L/∂μᵢ(τ), and likewise for Q and S).
    @_specialize(where R == Float)
    public static func backward(_ gradient: SplatParameters<R>, at tau: R) -> (canonical: SplatParameters<R>, motion: SplatMotion<R>) {
        let b = basis(tau), k = basisCount, n = gradient.count
        var motion = SplatMotion(zerosFor: n)
        for i in 0..<n {
            for j in 0..<k {
                let w = b[j]
                for a in 0..<3 {
                    motion.position[(i * k + j) * 3 + a] = w * gradient.means[3 * i + a]
                    motion.logScale[(i * k + j) * 3 + a] = w * gradient.logScales[3 * i + a]
                }
                for a in 0..<4 { motion.rotation[(i * k + j) * 4 + a] = w * gradient.rotations[4 * i + a] }
            }
        }
        return (gradient, motion)
    }

    /// Local rigidity of the motion: neighbouring Gaussians should move alike. The loss is
    /// `weight` times the mean, over every Gaussian i and each of its neighbours j (row i of
    /// `neighbours`, `NearestNeighbours.table`), of ‖Pᵢ − Pⱼ‖² (all K position coefficients), so a
    /// cloud that moves as one piece pays nothing.
    /// - Returns: the loss and its gradient with respect to `position`.
    @_specialize(where R == Float)
    public func rigidity(neighbours: NeighbourTable, weight: R) -> (loss: R, positionGradient: [R]) {
        precondition(neighbours.count == count, "rigidity: a neighbour table of \(neighbours.count) rows for \(count) Gaussians")
        let width = 3 * Self.basisCount
        let pairs = neighbours.indices.count
        var gradient = [R](repeating: 0, count: position.count)
        guard pairs > 0 else { return (0, gradient) }
        let scale = weight / R(pairs)
        var loss: R = 0
        for i in 0..<neighbours.count {
            for j in neighbours[i] {
                let j = Int(j)
                for e in 0..<width {
                    let d = position[i * width + e] - position[j * width + e]
                    loss += scale * d * d
                    gradient[i * width + e] += 2 * scale * d
                    gradient[j * width + e] -= 2 * scale * d
                }
            }
        }
        return (loss, gradient)
    }

    /// Every coefficient array in a fixed order, for optimisers and checkpoints.
    public var groups: [[R]] { [position, rotation, logScale] }
    public static var groupNames: [String] { ["motion.position", "motion.rotation", "motion.log_scale"] }

    /// The same coefficients in another precision.
    public func converted<S>(to: S.Type = S.self) -> SplatMotion<S> {
        SplatMotion<S>(position: position.map { S($0) }, rotation: rotation.map { S($0) }, logScale: logScale.map { S($0) })
    }
}
