import COpenBLAS
import KilnCore

/// OpenBLAS's thread pool, which KilnNN's matrix products run on.
///
/// OpenBLAS keeps its own pthread pool, sized at load time from `OPENBLAS_NUM_THREADS` (else the
/// core count). Kiln sizes it once, before the first matrix product, to the thread count the rest
/// of Kiln uses: `Parallel.defaultThreadCount` (`KILN_THREADS`, else the active processors), so
/// `KILN_THREADS=1` makes the whole process single-threaded. `setThreadCount` changes it later
/// (benchmarks do).
///
/// Matrix products are meant to be called from one thread at a time: OpenBLAS parallelises each
/// call itself, and KilnNN's other kernels (`parallelFor`) never overlap with one.
public enum BLAS {
    private static let configured: Void = {
        openblas_set_num_threads(Int32(clamping: Parallel.defaultThreadCount))
    }()

    /// Applies Kiln's thread count to OpenBLAS the first time it is called; free afterwards.
    /// Every `Matmul` call does this itself.
    public static func configure() { _ = configured }

    /// The number of threads OpenBLAS uses for one call.
    public static var threadCount: Int {
        configure()
        return Int(openblas_get_num_threads())
    }

    /// Sets the number of threads OpenBLAS uses for one call (≥ 1).
    public static func setThreadCount(_ threads: Int) {
        precondition(threads >= 1, "BLAS.setThreadCount: thread count must be at least 1, got \(threads)")
        configure()
        openblas_set_num_threads(Int32(clamping: threads))
    }

    /// OpenBLAS's build description (version, kernel chosen for this CPU, thread limit).
    public static var configuration: String {
        String(cString: openblas_get_config())
    }
}
