import CKilnSupport
import Foundation

/// What the processor can run, and whether it runs this build.
///
/// On x86-64 Kiln is compiled for x86-64-v3 (AVX2, FMA; every x86 CPU since 2013–2015), which
/// makes its SIMD16 kernels 8 lanes wide instead of SSE's 4 (softmax 2× faster, a 64² UNet forward
/// 20% faster). `KILN_PORTABLE=1 swift build` compiles for the x86-64 baseline instead.
public enum CPU {
    /// Whether this build uses x86-64-v3 instructions.
    public static var builtForX86_64_v3: Bool { kiln_built_for_x86_64_v3() != 0 }

    /// Whether this processor supports everything this build was compiled for.
    public static var runsThisBuild: Bool { kiln_cpu_runs_build() != 0 }

    /// Whether this processor has AVX-512 (F, BW, DQ, VL, CD).
    public static var hasAVX512: Bool { kiln_cpu_has_avx512() != 0 }

    /// Whether this processor has AVX2 and FMA.
    public static var hasAVX2: Bool { kiln_cpu_has_avx2() != 0 }

    /// The widest vector instructions this processor has that Kiln's kernels use: "AVX-512",
    /// "AVX2", or the architecture's baseline ("SSE2" on x86-64, "NEON" on arm64).
    public static var vectorExtensions: String {
        #if arch(x86_64)
        return hasAVX512 ? "AVX-512" : hasAVX2 ? "AVX2" : "SSE2"
        #elseif arch(arm64)
        return "NEON"
        #else
        return "scalar"
        #endif
    }

    /// The processor's name as the system gives it (`model name` in /proc/cpuinfo on Linux, the
    /// machine architecture where it gives none).
    public static let modelName: String = {
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            for line in text.split(separator: "\n") where line.hasPrefix("model name") {
                if let colon = line.firstIndex(of: ":") {
                    let name = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    if !name.isEmpty { return name }
                }
            }
        }
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }()

    /// Exits with a message naming the fix when this processor cannot run this build. Executables
    /// call it first, before any vector code runs.
    public static func requireBuildSupport(program: String) {
        guard !runsThisBuild else { return }
        FileHandle.standardError.write(Data("""
            \(program): this build uses x86-64-v3 instructions (AVX2, FMA, BMI2, F16C), which this processor lacks.
            Rebuild for the x86-64 baseline: KILN_PORTABLE=1 swift build -c release

            """.utf8))
        exit(1)
    }
}
