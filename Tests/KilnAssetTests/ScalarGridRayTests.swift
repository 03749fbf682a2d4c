import Foundation
import KilnCore
import Testing
@testable import KilnAsset

@Suite("Scalar grid rays")
struct ScalarGridRayTests {
    /// exp(−|x|²/2s²) on a grid over [−1, 1]³.
    static func blob(s: Float = 0.3, n: Int = 41) -> ScalarGrid {
        let spacing = 2 / Float(n - 1)
        return ScalarGrid(nx: n, ny: n, nz: n, origin: SIMD3(repeating: -1), spacing: SIMD3(repeating: spacing)) { p in
            Foundation.exp(-(p * p).sum() / (2 * s * s))
        }
    }

    @Test("sample(at:) interpolates the grid and is 0 outside its box")
    func sample() {
        let grid = Self.blob()
        #expect(abs(grid.sample(at: .zero) - 1) < 1e-6)
        #expect(abs(grid.sample(at: grid.position(7, 11, 30)) - grid[7, 11, 30]) < 1e-6)
        // Halfway between two samples along x: their mean.
        let mid = (grid.position(7, 11, 30) + grid.position(8, 11, 30)) / 2
        #expect(abs(grid.sample(at: mid) - (grid[7, 11, 30] + grid[8, 11, 30]) / 2) < 1e-6)
        #expect(grid.sample(at: SIMD3(1.01, 0, 0)) == 0)
    }

    @Test("the peak along a ray is the field at its closest approach to the blob's centre")
    func peaks() {
        let grid = Self.blob(), s: Float = 0.3
        var rng = RNG(seed: 9)
        var worst: Float = 0
        for _ in 0..<100 {
            // A ray from outside the box, aimed past the centre by a random miss distance.
            let start = 3 * normalize(SIMD3(rng.uniform(-1...1), rng.uniform(-1...1), rng.uniform(-1...1)))
            let aim = SIMD3(rng.uniform(-0.6...0.6), rng.uniform(-0.6...0.6), rng.uniform(-0.6...0.6))
            let direction = 2 * (aim - start)  // not unit length on purpose
            let closest = start + max(0, -(start * direction).sum() / (direction * direction).sum()) * direction
            let expected = Foundation.exp(-(closest * closest).sum() / (2 * s * s))
            worst = max(worst, abs(grid.peak(alongRayFrom: start, direction: direction) - expected))
        }
        // Trilinear interpolation of a Gaussian 6 samples wide, sampled every half spacing.
        #expect(worst < 0.02, "worst peak error \(worst)")
        // Rays that miss the box, or point away from it, see nothing.
        #expect(grid.peak(alongRayFrom: SIMD3(3, 3, 0), direction: SIMD3(0, 0, 1)) == 0)
        #expect(grid.peak(alongRayFrom: SIMD3(0, 0, 3), direction: SIMD3(0, 0, 1)) == 0)
        // A camera: its centre pixel looks straight at the blob.
        let camera = Camera.orbit(azimuthDegrees: 30, elevationDegrees: 20, radius: 4, width: 9, height: 9, fovYRadians: 0.6)
        let image = grid.peaks(camera: camera, threads: 3)
        #expect(image.count == 81 && abs(image[4 * 9 + 4] - 1) < 0.01 && image[0] < image[4 * 9 + 4])
        #expect(image == grid.peaks(camera: camera, threads: 1))
    }
}
