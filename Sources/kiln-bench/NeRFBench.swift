import Foundation
import KilnCore
import KilnDistill
import KilnNN
import KilnRender

/// `kiln-bench nerf-export DIR [--threads N] [--runs N]`: one NeRF render of a 64² image with 64
/// samples per ray (no occupancy skipping, so every sample is evaluated), forward and backward,
/// timed (median of --runs after a warm-up), and everything `tools/bench_nerf_torch.py` needs to
/// run the same math in PyTorch and compare: the field's weights, every sample's position, t and δ,
/// the colour gradient, and Kiln's image and parameter gradients.
func benchNeRF(arguments: [String]) {
    func option(_ name: String, _ fallback: Int) -> Int {
        guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count, let v = Int(arguments[i + 1]) else { return fallback }
        return v
    }
    let folder = arguments.first { !$0.hasPrefix("--") && Int($0) == nil } ?? "out/bench-nerf"
    let threads = option("--threads", 2), runs = option("--runs", 7), size = 64, samples = 64
    var rng = RNG(seed: 1)
    let settings = NeRFSettings()
    let field = NeRFField(grid: settings.grid, width: settings.width, halfSize: 0.7, blobDensity: 10, blobRadius: 0.5, rng: &rng)
    // A table with structure (as after some training), so colours and densities vary.
    field.table.load(Tensor(shape: field.table.shape, storage: rng.uniforms(count: field.table.value.count, in: -0.5...0.5)))
    let renderer = NeRFRenderer(samplesPerRay: samples)
    let camera = ViewSettings().camera(azimuthDegrees: 30, elevationDegrees: 15, size: size)
    let background = SIMD3<Float>(1, 1, 1)
    let dColor = rng.uniforms(count: 3 * size * size, in: -1...1)
    var frame = renderer.render(field, camera: camera, background: background, occupancy: nil, threads: threads)
    let forwardMs = median(runs: runs) { frame = renderer.render(field, camera: camera, background: background, occupancy: nil, threads: threads) }
    let bothMs = median(runs: runs) {
        let f = renderer.render(field, camera: camera, background: background, occupancy: nil, threads: threads)
        field.zeroGradients()
        renderer.backward(f, field: field, dColor: dColor, threads: threads)
    }
    field.zeroGradients()
    renderer.backward(frame, field: field, dColor: dColor, threads: threads)
    // The samples Kiln evaluated, recomputed as positions for the PyTorch side.
    var points = [Float](repeating: 0, count: 3 * size * size * samples)
    var t = [Float](repeating: 0, count: size * size * samples), deltas = t
    let lo = field.center - field.halfSize, hi = field.center + field.halfSize
    for y in 0..<size {
        for x in 0..<size {
            let (origin, direction) = camera.ray(pixelX: x, pixelY: y)
            guard let (near, far) = rayBoxIntersection(origin: origin, direction: direction, lo: lo, hi: hi) else { continue }
            let step = (far - near) / Float(samples)
            for i in 0..<samples {
                let k = (y * size + x) * samples + i
                let ti = near + (Float(i) + 0.5) * step
                let p = origin + ti * direction
                points[3 * k] = p.x; points[3 * k + 1] = p.y; points[3 * k + 2] = p.z
                t[k] = ti; deltas[k] = step
            }
        }
    }
    do {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var w = SafeTensorsWriter()
        for (name, p) in field.namedParameters {
            try w.add(name, shape: p.shape, values: p.value.storage)
            try w.add("grad." + name, shape: p.shape, values: p.gradient.storage)
        }
        try w.add("points", shape: [size * size, samples, 3], values: points)
        try w.add("t", shape: [size * size, samples], values: t)
        try w.add("deltas", shape: [size * size, samples], values: deltas)
        try w.add("d_color", shape: [size * size, 3], values: dColor)
        try w.add("kiln_color", shape: [size * size, 3], values: frame.color)
        try w.write(to: URL(fileURLWithPath: folder + "/nerf.safetensors"))
        let g = field.grid
        let info: [String: Any] = ["levels": g.levels, "features_per_level": g.featuresPerLevel, "log2_table_size": g.log2TableSize,
                                   "base_resolution": g.baseResolution, "max_resolution": g.maxResolution, "width": settings.width,
                                   "center": [field.center.x, field.center.y, field.center.z], "half_size": field.halfSize,
                                   "blob_density": field.blobDensity, "blob_radius": field.blobRadius, "background": [1, 1, 1],
                                   "size": size, "samples": samples, "threads": threads, "runs": runs,
                                   "kiln_forward_ms": forwardMs, "kiln_forward_backward_ms": bothMs,
                                   "resolutions": (0..<g.levels).map { g.resolution(level: $0) }]
        try JSONSerialization.data(withJSONObject: info, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: folder + "/nerf.json"))
    } catch {
        print("kiln-bench: \(error)")
        exit(1)
    }
    print(String(format: "NeRF 64², 64 samples per ray, %d threads: forward %.1f ms, forward+backward %.1f ms (median of %d); wrote %@",
                 threads, forwardMs, bothMs, runs, folder))
}
