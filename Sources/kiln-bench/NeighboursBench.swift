import Foundation
import KilnCore
import KilnDistill
import KilnRender

/// `kiln-bench neighbours [--threads N] [--quick]`: the k-nearest-neighbour search that the colour
/// smoothness regulariser and the 4D rigidity loss run at every step, next to its plain reference
/// (every pair's distance, sorted; timed where it finishes in seconds), and the whole regulariser.
func benchNeighbours(arguments: [String]) {
    let threads = Int(optionValue("--threads", in: arguments) ?? "2") ?? 2
    let quick = arguments.contains("--quick")
    let runs = quick ? 3 : 9
    print("k nearest neighbours of every Gaussian (k = 4, a unit ball of Gaussians, \(threads) threads, median of \(runs) runs)")
    print("| Gaussians | grid search (ms) | reference (ms) | same lists | colour-smoothness regulariser (ms) |")
    print("| ---: | ---: | ---: | :---: | ---: |")
    for count in quick ? [2_000, 20_000] : [2_000, 5_000, 20_000, 50_000, 100_000] {
        let (p, _) = benchScene(count: count, size: 64, seed: 7)
        let points = p.positions
        var table = NeighbourTable(k: 0, count: 0, indices: [])
        let grid = median(runs: runs) { table = NearestNeighbours.table(points, k: 4, threads: threads) }
        var reference = "–", same = "–"
        if count <= 5_000 {
            var expected: [[Int]] = []
            reference = String(format: "%.1f", median(runs: 1) { expected = NearestNeighboursReference.search(points, k: 4) })
            same = table.lists == expected ? "yes" : "NO"
        }
        let regulariser = median(runs: runs) {
            _ = GaussianRegularizers.loss(p, opacity: 0, scale: 0, color: 10_000, neighbours: 4, radius: 1, threads: threads)
        }
        print("| \(count) | \(String(format: "%.2f", grid)) | \(reference) | \(same) | \(String(format: "%.2f", regulariser)) |")
    }
}
