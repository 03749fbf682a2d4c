import KilnCore
import Testing
@testable import KilnRender

@Suite("Splat density field")
struct SplatDensityTests {
    @Test("the grid matches the float64 reference at every sample, for any thread count", arguments: [1, 3])
    func grid(threads: Int) {
        let (p64, _) = randomSplatScene(count: 60, shDegree: 1, seed: 31)
        let p = p64.converted(to: Float.self)
        let origin = SIMD3<Float>(-0.9, -0.8, -0.85), spacing: Float = 0.09
        let (nx, ny, nz) = (21, 19, 20)
        let (density, color) = SplatDensity.grid(p, origin: origin, spacing: spacing, nx: nx, ny: ny, nz: nz, threads: threads)
        var worstDensity = 0.0, worstColor = 0.0, covered = 0
        for k in 0..<nz {
            for j in 0..<ny {
                for i in 0..<nx {
                    let x = SIMD3<Double>(origin) + Double(spacing) * SIMD3(Double(i), Double(j), Double(k))
                    let reference = SplatDensityReference.sample(p64, at: x)
                    let index = (k * ny + j) * nx + i
                    worstDensity = max(worstDensity, abs(Double(density[index]) - reference.density))
                    if reference.density > 1e-3 {
                        covered += 1
                        for c in 0..<3 { worstColor = max(worstColor, abs(Double(color[index][c]) - reference.color[c])) }
                    }
                }
            }
        }
        #expect(covered > 500, "the scene should cover much of the grid (\(covered) samples)")
        #expect(worstDensity < 2e-4 && worstColor < 2e-3, "density error \(worstDensity), colour error \(worstColor)")
    }

    @Test("one isotropic Gaussian: the peak is its opacity and the density falls as exp(−r²/2σ²) to 3σ")
    func single() {
        var p = SplatParameters<Float>(zerosLike: 1, shDegree: 0)
        p.logScales = [Float](repeating: Float.log(0.1), count: 3)
        p.rotations = [1, 0, 0, 0]
        p.opacityLogits = [0]  // opacity ½
        p.sh = [1, -1, 0]
        let (density, color) = SplatDensity.grid(p, origin: SIMD3(-0.5, 0, 0), spacing: 0.05, nx: 21, ny: 1, nz: 1)
        #expect(abs(density[10] - 0.5) < 1e-6)
        #expect(abs(density[12] - 0.5 * Float.exp(-0.5)) < 1e-5)  // r = σ
        #expect(density[17] == 0 && density[3] == 0)  // beyond 3σ
        let c0 = Float(0.28209479177387814)
        #expect(abs(color[10].x - (c0 + 0.5)) < 1e-6 && abs(color[10].y - (0.5 - c0)) < 1e-6 && color[0] == SIMD3(repeating: 0.5))
    }
}
