#ifndef KILN_CPU_H
#define KILN_CPU_H
// CPU feature checks (header-only; nothing to link). Each Swift target that imports this header
// compiles it with its own flags, so `__AVX2__` says whether that target was built for x86-64-v3.

/// 1 when the code importing this header was compiled for x86-64-v3 (AVX2, FMA, BMI1/2, F16C).
static inline int kiln_built_for_x86_64_v3(void) {
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
    return 1;
#else
    return 0;
#endif
}

/// 1 when this CPU runs what the importing code was compiled for (always 1 for a portable build).
static inline int kiln_cpu_runs_build(void) {
#if defined(__x86_64__) && defined(__AVX2__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
           __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c");
#else
    return 1;
#endif
}

/// 1 when this CPU has the AVX-512 subsets OpenBLAS's SkylakeX kernels use (F, BW, DQ, VL, CD).
static inline int kiln_cpu_has_avx512(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd");
#else
    return 0;
#endif
}

/// 1 when this CPU has AVX2 and FMA.
static inline int kiln_cpu_has_avx2(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}
#endif
