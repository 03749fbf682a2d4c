// swift-tools-version: 6.0
import Foundation
import PackageDescription

// On x86-64, Swift code is compiled for x86-64-v3 (AVX2, FMA: every x86 CPU since 2013–2015):
// SIMD16<Float> kernels then run 8 lanes at a time instead of SSE's 4. `KILN_PORTABLE=1` builds
// for the x86-64 baseline. Executables check the CPU at start (`CPU.requireBuildSupport`).
#if arch(x86_64)
let vectorSettings: [SwiftSetting] = ProcessInfo.processInfo.environment["KILN_PORTABLE"] == nil
    ? [.unsafeFlags(["-Xcc", "-march=x86-64-v3"]), .define("KILN_X86_64_V3")] : []
#else
let vectorSettings: [SwiftSetting] = []
#endif

let package = Package(
    name: "Kiln",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kiln", targets: ["kiln"]),
        .library(name: "KilnCore", targets: ["KilnCore"]),
        .library(name: "KilnAsset", targets: ["KilnAsset"]),
        .library(name: "KilnRender", targets: ["KilnRender"]),
        .library(name: "KilnNN", targets: ["KilnNN"]),
        .library(name: "KilnPrior", targets: ["KilnPrior"]),
        .library(name: "KilnToyWorld", targets: ["KilnToyWorld"]),
        .library(name: "KilnDistill", targets: ["KilnDistill"]),
        .library(name: "KilnEval", targets: ["KilnEval"]),
        .library(name: "KilnRun", targets: ["KilnRun"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
    ],
    targets: [
        // System libraries: a module map and a shim header, nothing else.
        .systemLibrary(
            name: "CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),
        .systemLibrary(
            name: "CAssimp",
            pkgConfig: "assimp",
            providers: [.apt(["libassimp-dev"])]
        ),
        // meshoptimizer (simplification, vertex-cache ordering); Debian ships no pkg-config file.
        .systemLibrary(
            name: "CMeshOptimizer",
            providers: [.apt(["libmeshoptimizer-dev"])]
        ),
        // CPU feature checks, header-only. (OpenBLAS is opened at run time, see KilnNN's BLAS.swift;
        // tools/setup.sh installs libopenblas-dev.)
        .systemLibrary(name: "CKilnSupport"),
        // Kiln's AVX-512 matrix-product kernel (C, chosen at run time; see KilnNN's Matmul.swift).
        .target(name: "CKilnKernels"),

        // Math, cameras, RNG, images, parallel loops, plain asset values. No C libraries.
        .target(name: "KilnCore", dependencies: ["CKilnSupport"]),
        // Tensors, layers with forward/backward, optimisers, safetensors; matrix products through OpenBLAS.
        .target(name: "KilnNN", dependencies: ["KilnCore", "CKilnKernels", .product(name: "RealModule", package: "swift-numerics")]),
        // The diffusion runtime: CLIP tokenizer and text encoder, UNet, noise schedulers, pipeline
        // folders, training; the DiffusionPrior, ImageRewards and MotionReward protocols. No renderer.
        .target(name: "KilnPrior", dependencies: ["KilnNN", "KilnCore"]),
        // The procedural toy world the built-in prior is trained on: objects, captions, data sets,
        // and the reward models trained on it.
        .target(name: "KilnToyWorld", dependencies: ["KilnPrior", "KilnNN", "KilnRender", "KilnCore"]),
        // Differentiable renderers: Gaussian splats (Splat/), later meshes and fields.
        .target(name: "KilnRender", dependencies: ["KilnCore", .product(name: "RealModule", package: "swift-numerics")]),
        // Score distillation and its reward-aware variants, and the optimisation loops built on them.
        .target(name: "KilnDistill", dependencies: ["KilnCore", "KilnNN", "KilnRender", "KilnPrior", .product(name: "RealModule", package: "swift-numerics")]),
        // Evaluation of assets and image sets: reward-model scores, consistency metrics, reports.
        .target(name: "KilnEval", dependencies: ["KilnCore", "KilnNN", "KilnRender", "KilnPrior", "KilnToyWorld", .product(name: "RealModule", package: "swift-numerics")]),
        // File formats: PNG (libpng), meshes (Assimp; index order and simplification through
        // meshoptimizer), splat PLY and .splat, atomic writes.
        .target(name: "KilnAsset", dependencies: ["KilnCore", "CPNG", "CAssimp", "CMeshOptimizer", "CKilnSupport"]),

        // The run library: a generate job's settings, prompt, stages and run folder, and the
        // meshing of its scenes; the commands are argument parsing over it.
        .target(name: "KilnRun", dependencies: ["KilnCore", "KilnAsset", "KilnRender", "KilnNN", "KilnPrior", "KilnToyWorld", "KilnDistill", "KilnEval", .product(name: "RealModule", package: "swift-numerics")]),

        // The command-line tool: the only target that wires everything together.
        .executableTarget(
            name: "kiln",
            dependencies: [
                "KilnCore", "KilnAsset", "KilnRender", "KilnNN", "KilnPrior", "KilnToyWorld", "KilnDistill", "KilnEval", "KilnRun",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // libFuzzer target for the file readers (tools/fuzz.sh); an ordinary build replays inputs.
        .executableTarget(name: "kiln-fuzz", dependencies: ["KilnAsset"]),

        // Benchmarks that print tables: `swift run -c release kiln-bench splat`.
        .executableTarget(name: "kiln-bench", dependencies: ["KilnCore", "KilnRender", "KilnAsset", "KilnNN", "KilnPrior", "KilnDistill"]),

        .testTarget(name: "KilnCoreTests", dependencies: ["KilnCore"], exclude: ["Fixtures"]),
        .testTarget(name: "KilnAssetTests", dependencies: ["KilnAsset", "KilnCore"], exclude: ["Fixtures"]),
        .testTarget(name: "KilnRenderTests", dependencies: ["KilnRender", "KilnCore"]),
        .testTarget(name: "KilnNNTests", dependencies: ["KilnNN", "KilnCore"], exclude: ["Fixtures"]),
        .testTarget(name: "KilnPriorTests", dependencies: ["KilnPrior", "KilnNN", "KilnCore"], exclude: ["Fixtures"]),
        .testTarget(name: "KilnToyWorldTests", dependencies: ["KilnToyWorld", "KilnDistill", "KilnPrior", "KilnRender", "KilnNN", "KilnCore"]),
        .testTarget(name: "KilnDistillTests", dependencies: ["KilnDistill", "KilnToyWorld", "KilnPrior", "KilnRender", "KilnNN", "KilnCore"]),
        .testTarget(name: "KilnEvalTests", dependencies: ["KilnEval", "KilnToyWorld", "KilnPrior", "KilnRender", "KilnNN", "KilnCore"]),
        .testTarget(name: "KilnRunTests", dependencies: ["KilnRun", "KilnCore", "KilnDistill", "KilnAsset", "KilnNN", "KilnPrior"]),
        // Runs the built `kiln` executable as a user would.
        .testTarget(name: "kilnTests", exclude: ["HostileCorpus"]),
    ],
    swiftLanguageModes: [.v6]
)

for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + vectorSettings
}

// The numeric modules are optimised in debug builds too: `swift test` trains and samples small
// networks, which unoptimised code runs 20–50× slower. (-enable-testing stays on, so @testable
// imports still work.)
for name in ["KilnCore", "KilnNN", "KilnPrior", "KilnToyWorld", "KilnRender", "KilnDistill", "KilnEval", "KilnRun"] {
    let target = package.targets.first { $0.name == name }!
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-O"], .when(configuration: .debug))]
}
package.targets.first { $0.name == "CKilnKernels" }!.cSettings = [.unsafeFlags(["-O2"], .when(configuration: .debug))]
