import Foundation
import KilnCore

/// OpenBLAS, which KilnNN's matrix products call, and the thread count they use.
///
/// ## Loading
/// OpenBLAS is opened at the first matrix product (`dlopen("libopenblas.so.0")`), not linked,
/// because it picks its kernels for the CPU once, when it loads, and OpenBLAS 0.3.21 (Debian 12)
/// does not know AMD Zen 4 has AVX-512: it falls back to its AVX2 (Haswell) kernels. On a CPU with
/// AVX-512 Kiln sets `OPENBLAS_CORETYPE=SkylakeX` before loading (unless the variable is already
/// set), which is what newer OpenBLAS releases choose themselves. Measured here (Zen 4, 2 threads):
/// 3×3 convolutions at 16²–32² went from 200–210 to 330–350 GFLOP/s.
///
/// ## Threads
/// OpenBLAS runs single-threaded: Kiln splits a large product into column (or row) blocks itself
/// and runs one single-threaded `sgemm` per block on its own worker threads (`parallelFor`), and
/// attention runs whole heads per thread. Reason, measured on a 64² UNet forward with 2 threads:
/// OpenBLAS's own pool busy-waits (`sched_yield`) between calls, so its workers took a core away
/// from every GroupNorm, softmax and im2col that ran between two products — 18% of the run was
/// spent yielding.
///
/// `threadCount` (default `Parallel.defaultThreadCount`: `KILN_THREADS`, else the active
/// processors) is how many blocks a large product is cut into.
public enum BLAS {
    typealias SgemmFunction = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
                                              UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias SgemvFunction = @convention(c) (Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
                                              UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void

    /// The OpenBLAS entry points Kiln calls.
    struct Library: @unchecked Sendable {
        let sgemm: SgemmFunction
        let sgemv: SgemvFunction
        let configuration: String
        let coreName: String
    }

    // CBLAS enum values (cblas.h).
    static let rowMajor: Int32 = 101, noTranspose: Int32 = 111, transpose: Int32 = 112

    /// The shared-library names tried, in order.
    static let libraryNames = ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"]

    /// Opened (single-threaded) on first use, by the first matrix product.
    static let library: Library = {
        #if arch(x86_64)
        if CPU.hasAVX512 { setenv("OPENBLAS_CORETYPE", "SkylakeX", 0) }
        #endif
        var handle: UnsafeMutableRawPointer?
        for name in libraryNames where handle == nil { handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) }
        func symbol(_ name: String) -> UnsafeMutableRawPointer? { handle.flatMap { dlsym($0, name) } }
        guard let sgemm = symbol("cblas_sgemm"), let sgemv = symbol("cblas_sgemv"), let setThreads = symbol("openblas_set_num_threads"),
              let config = symbol("openblas_get_config"), let core = symbol("openblas_get_corename") else {
            let reason = handle == nil ? String(cString: dlerror()) : "it lacks the CBLAS or openblas_* functions"
            FileHandle.standardError.write(Data("""
                kiln: cannot use OpenBLAS (\(libraryNames[0])): \(reason).
                Install it: sudo apt-get install libopenblas-dev (or run tools/setup.sh).

                """.utf8))
            exit(1)
        }
        typealias SetThreads = @convention(c) (Int32) -> Void
        typealias Text = @convention(c) () -> UnsafePointer<CChar>?
        unsafeBitCast(setThreads, to: SetThreads.self)(1)
        let text = { (p: UnsafeMutableRawPointer) in unsafeBitCast(p, to: Text.self)().map { String(cString: $0) } ?? "" }
        return Library(sgemm: unsafeBitCast(sgemm, to: SgemmFunction.self), sgemv: unsafeBitCast(sgemv, to: SgemvFunction.self),
                       configuration: text(config).trimmingCharacters(in: .whitespaces), coreName: text(core))
    }()

    nonisolated(unsafe) private static var threads = Parallel.defaultThreadCount

    /// The number of threads one large matrix product runs on.
    public static var threadCount: Int { threads }

    /// Sets the number of threads one large matrix product runs on (≥ 1). Not for use while
    /// products are running on other threads (benchmarks set it between runs).
    public static func setThreadCount(_ count: Int) {
        precondition(count >= 1, "BLAS.setThreadCount: thread count must be at least 1, got \(count)")
        threads = count
    }

    /// OpenBLAS's build description and the kernel set it chose: `OpenBLAS 0.3.21 DYNAMIC_ARCH … (SkylakeX)`.
    public static var configuration: String { "\(library.configuration) (\(library.coreName))" }
}
