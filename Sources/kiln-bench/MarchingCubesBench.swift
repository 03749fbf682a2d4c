// Marching cubes benchmark: `swift run -c release kiln-bench marching-cubes [--quick] [--json PATH]`.
// `tools/bench_marching_cubes.py` runs it with --json and puts scikit-image's timings beside Kiln's.
import Foundation
import KilnAsset
import KilnCore

/// The benchmark field on [−1, 1]³ sampled n times per axis: a torus SDF (major radius 0.6, minor
/// 0.25, ring in the xy plane) plus a wobble `0.02 · sin 11x · sin 13y · sin 17z`, evaluated in
/// float64 and rounded to float32 (as `tools/bench_marching_cubes.py` does, so both libraries see
/// the same samples). Inside is below 0.
func marchingCubesBenchGrid(size n: Int) -> ScalarGrid {
    let h = 2 / Double(n - 1)
    let planes = parallelMapChunks(n) { range -> [Float] in
        var out: [Float] = []
        out.reserveCapacity(range.count * n * n)
        for k in range {
            let z = -1 + h * Double(k)
            for j in 0..<n {
                let y = -1 + h * Double(j)
                for i in 0..<n {
                    let x = -1 + h * Double(i)
                    let q = (x * x + y * y).squareRoot() - 0.6
                    let torus = (q * q + z * z).squareRoot() - 0.25
                    out.append(Float(torus + 0.02 * sin(11 * x) * sin(13 * y) * sin(17 * z)))
                }
            }
        }
        return out
    }
    return ScalarGrid(nx: n, ny: n, nz: n, values: Array(planes.joined()),
                      origin: SIMD3(repeating: -1), spacing: SIMD3(repeating: Float(h)))
}

func benchMarchingCubes(arguments: [String]) {
    let sizes = arguments.contains("--quick") ? [128] : [128, 256]
    let jsonPath = arguments.firstIndex(of: "--json").flatMap { arguments.indices.contains($0 + 1) ? arguments[$0 + 1] : nil }
    print("Marching cubes on a torus-plus-wobble SDF, median ms (\(ProcessInfo.processInfo.activeProcessorCount) cores available)")
    print("| grid | threads | Kiln ms | vertices | triangles |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    var rows: [[String: Any]] = []
    var referenceMs = 0.0
    do {
        for n in sizes {
            let grid = marchingCubesBenchGrid(size: n)
            for threads in [1, 2] {
                var mesh = try MarchingCubes.extract(grid, level: 0, threads: threads)  // throws here, not inside the timing
                let ms = median(runs: 21) {
                    mesh = (try? MarchingCubes.extract(grid, level: 0, threads: threads)) ?? TriangleMesh()
                }
                print(String(format: "| %d³ | %d | %.1f | %d | %d |", n, threads, ms, mesh.vertexCount, mesh.triangleCount))
                rows.append(["size": n, "threads": threads, "ms": ms, "vertices": mesh.vertexCount, "triangles": mesh.triangleCount])
            }
            if n == 128 {
                referenceMs = milliseconds { _ = try? MarchingCubesReference.extract(grid, level: 0) }
            }
        }
        print(String(format: "Reference (per cube, edge dictionary), 128³, 1 thread: %.0f ms", referenceMs))
        if let jsonPath {
            let report: [String: Any] = ["field": "torus_wobble", "rows": rows, "reference_128_ms": referenceMs]
            try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
                .write(to: URL(fileURLWithPath: jsonPath))
        }
    } catch {
        print("kiln-bench: \(error)")
        exit(1)
    }
}
