// Benchmarks: programs that print a table. `swift run -c release kiln-bench splat|mesh|atlas|decimate [--quick]`.
import Foundation
import KilnCore
import KilnNN
import KilnRender

/// A deterministic scene: `count` Gaussians in a unit ball, sized so that the image is covered
/// a few times over (as in a half-trained asset), seen from an orbit camera.
func benchScene(count: Int, size: Int, seed: UInt64) -> (SplatParameters<Float>, Camera) {
    var rng = RNG(seed: seed)
    var p = SplatParameters<Float>(zerosLike: count, shDegree: 0)
    let scale = log(0.6 / Float(count).squareRoot())  // ~ surface spacing of `count` points on a unit sphere
    for i in 0..<count {
        var v = SIMD3(rng.normal(), rng.normal(), rng.normal())
        v /= max(1e-6, (v * v).sum().squareRoot())
        let r = pow(rng.nextFloat(), 1.0 / 3.0)
        for a in 0..<3 { p.means[3 * i + a] = v[a] * r; p.logScales[3 * i + a] = scale + rng.uniform(-0.5...0.5) }
        for a in 0..<4 { p.rotations[4 * i + a] = rng.normal() }
        p.opacityLogits[i] = rng.uniform(-2...2)
        for c in 0..<3 { p.sh[3 * i + c] = rng.uniform(-1...1) }
    }
    let camera = Camera.orbit(azimuthDegrees: 30, elevationDegrees: 20, radius: 2.6, width: size, height: size, fovYRadians: 0.8)
    return (p, camera)
}

/// The word after `flag` in `arguments`, if both are there.
func optionValue(_ flag: String, in arguments: [String]) -> String? {
    guard let i = arguments.firstIndex(of: flag), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}

func milliseconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
}

/// Median of `runs` timings after one warm-up.
func median(runs: Int, _ body: () -> Void) -> Double {
    body()
    let times = (0..<runs).map { _ in milliseconds(body) }.sorted()
    return times[times.count / 2]
}

func benchSplat(quick: Bool) {
    Memory.retainFreedMemory()  // as `kiln generate` runs
    print("Splat rasteriser, median ms (\(ProcessInfo.processInfo.activeProcessorCount) cores available)")
    print("| size | Gaussians | threads | forward | forward+backward |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    let sizes = quick ? [128] : [128, 256, 512]
    let counts = quick ? [20_000] : [5_000, 20_000, 100_000]
    for size in sizes {
        for count in counts {
            let (p, camera) = benchScene(count: count, size: size, seed: 1)
            var rng = RNG(seed: 2)
            let dColor = (0..<(3 * size * size)).map { _ in rng.uniform(-1...1) }
            for threads in [1, 2] {
                let runs = size * size * count > 100_000_000 ? 3 : 7
                let forward = median(runs: runs) { _ = SplatRasterizer.forward(p, camera: camera, threads: threads) }
                let both = median(runs: runs) {
                    let frame = SplatRasterizer.forward(p, camera: camera, threads: threads)
                    _ = SplatRasterizer.backward(frame, p, gradients: SplatImageGradients(color: dColor))
                }
                print(String(format: "| %d² | %d | %d | %.2f | %.2f |", size, count, threads, forward, both))
            }
        }
    }
}

func profileSplat() {
    let (p, camera) = benchScene(count: 20_000, size: 128, seed: 1)
    let cam = SplatCamera<Float>(camera)
    let settings = SplatRenderSettings()
    let projectMs = median(runs: 5) {
        var basis = [Float](repeating: 0, count: 16)
        var visible = 0
        for i in 0..<p.count { if SplatProjection.project(i, p, camera: cam, settings: settings, degree: 0, basis: &basis).visible { visible += 1 } }
        precondition(visible > 0)
    }
    let frame = SplatRasterizer.forward(p, camera: camera, threads: 1)
    let backProjectMs = median(runs: 5) {
        var basis = [Float](repeating: 0, count: 16)
        var grad = SplatParameters<Float>(zerosLike: p.count, shDegree: 0)
        var g = ProjectedGradient<Float>()
        g.meanX = 1; g.conicA = 1; g.opacity = 1; g.red = 1
        for i in 0..<p.count where frame.projected[i].visible {
            SplatProjection.backward(i, p, camera: cam, settings: settings, degree: 0, g: g, grad: &grad, basis: &basis)
        }
    }
    print(String(format: "project (1 thread): %.2f ms; projection backward: %.2f ms; entries %d", projectMs, backProjectMs, frame.radii.filter { $0 > 0 }.count))
}
/// Three single-threaded forward+backward passes at 128² with 20k Gaussians, for profilers
/// (`valgrind --tool=callgrind kiln-bench once`).
func runOnce() {
    Memory.retainFreedMemory()
    let (p, camera) = benchScene(count: 20_000, size: 128, seed: 1)
    let dColor = [Float](repeating: 0.1, count: 3 * 128 * 128)
    for _ in 0..<3 {
        let frame = SplatRasterizer.forward(p, camera: camera, threads: 1)
        _ = SplatRasterizer.backward(frame, p, gradients: SplatImageGradients(color: dColor))
    }
}

/// Writes benchmark scenes with Kiln's images and gradients, for `tools/bench_splat_torch.py`:
/// `DIR/scene_S_N.json` (camera, shapes, Kiln's timings) and raw little-endian float32 `.bin` files.
func exportSplatScenes(to folder: String, configs: [(Int, Int)]) throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    for (size, count) in configs {
        let (p, camera) = benchScene(count: count, size: size, seed: 1)
        var rng = RNG(seed: 2)
        let dColor = (0..<(3 * size * size)).map { _ in rng.uniform(-1...1) }
        let frame = SplatRasterizer.forward(p, camera: camera, threads: 2)
        let grads = SplatRasterizer.backward(frame, p, gradients: SplatImageGradients(color: dColor))
        let name = "scene_\(size)_\(count)"
        func write(_ suffix: String, _ values: [Float]) throws {
            try values.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: "\(folder)/\(name)_\(suffix).bin"))
        }
        try write("means", p.means); try write("log_scales", p.logScales); try write("rotations", p.rotations)
        try write("opacity_logits", p.opacityLogits); try write("sh", p.sh); try write("d_color", dColor)
        try write("kiln_color", frame.images.color); try write("kiln_alpha", frame.images.alpha)
        try write("kiln_grad_means", grads.parameters.means); try write("kiln_grad_log_scales", grads.parameters.logScales)
        try write("kiln_grad_rotations", grads.parameters.rotations); try write("kiln_grad_opacity_logits", grads.parameters.opacityLogits)
        try write("kiln_grad_sh", grads.parameters.sh)
        var timings: [String: Double] = [:]
        for threads in [1, 2] {
            timings["forward_\(threads)"] = median(runs: 7) { _ = SplatRasterizer.forward(p, camera: camera, threads: threads) }
            timings["forward_backward_\(threads)"] = median(runs: 7) {
                let f = SplatRasterizer.forward(p, camera: camera, threads: threads)
                _ = SplatRasterizer.backward(f, p, gradients: SplatImageGradients(color: dColor))
            }
        }
        let m = camera.cameraFromWorld
        let manifest: [String: Any] = [
            "size": size, "count": count, "sh_degree": p.shDegree,
            "camera_from_world": (0..<4).map { r in (0..<4).map { c in Double(m[row: r, column: c]) } },
            "fx": Double(camera.fx), "fy": Double(camera.fy), "cx": Double(camera.cx), "cy": Double(camera.cy),
            "near_plane": 0.2, "low_pass": 0.3, "background": [0.0, 0.0, 0.0], "kiln_ms": timings,
        ]
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: "\(folder)/\(name).json"))
        print("wrote \(name)")
    }
}

// MARK: - Entry

CPU.requireBuildSupport(program: "kiln-bench")
let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "splat": benchSplat(quick: arguments.contains("--quick"))
case "splat-export":
    let folder = arguments.dropFirst().first ?? "out/bench-splat"
    do { try exportSplatScenes(to: folder, configs: [(128, 5_000), (128, 20_000), (256, 5_000), (256, 20_000), (512, 5_000)]) } catch {
        print("kiln-bench: \(error)")
        exit(1)
    }
case "mesh": benchMesh(quick: arguments.contains("--quick"))
case "atlas": benchAtlas(quick: arguments.contains("--quick"))
case "decimate": benchDecimate(quick: arguments.contains("--quick"))
case "marching-cubes": benchMarchingCubes(arguments: Array(arguments.dropFirst()))
case "matmul": benchMatmul(json: arguments.contains("--json"), quick: arguments.contains("--quick"))
case "unet": benchUNet(arguments: Array(arguments.dropFirst()))
case "train": benchTrain(arguments: Array(arguments.dropFirst()))
case "conv-shapes": benchConvShapes(arguments: Array(arguments.dropFirst()))
case "sd": benchSD(arguments: Array(arguments.dropFirst()))
case "sd-layers": benchSDLayers(arguments: Array(arguments.dropFirst()))
case "nerf-export": benchNeRF(arguments: Array(arguments.dropFirst()))
case "scaling": benchScaling(arguments: Array(arguments.dropFirst()))
case "neighbours": benchNeighbours(arguments: Array(arguments.dropFirst()))
case "profile": profileSplat()
case "once": runOnce()
default:
    print("usage: kiln-bench splat [--quick] | splat-export DIR | mesh [--quick] | atlas [--quick] | decimate [--quick] | marching-cubes [--quick] [--json PATH] | matmul [--quick] [--json] | unet --folder DIR [--threads N] [--runs N] [--batches 1,4] [--json] | train --prior-config FILE --vae-config FILE [--threads N] [--steps N] [--only vae|prior] [--json] | conv-shapes --prior-config FILE [--batch N] [--threads N] [--runs N] [--json] | sd --folder DIR --measure unet|vae|sds [--threads N] [--runs N] | sd-layers [--threads N] [--runs N] | nerf-export DIR [--threads N] [--runs N] | scaling --prior DIR [--steps N] [--threads N] [--quick] [--only gaussians|render|frames] [--parts] | neighbours [--threads N] [--quick] | profile | once")
    exit(arguments.first == nil ? 0 : 64)
}
