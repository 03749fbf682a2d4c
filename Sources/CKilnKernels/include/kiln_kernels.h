#ifndef KILN_KERNELS_H
#define KILN_KERNELS_H
// Kiln's own matrix-product kernel for CPUs with AVX-512 (compiled for AVX-512 with a function
// target attribute and chosen at run time; see KilnNN's Matmul.swift), and the widening of
// half-precision weights (half.c; see KilnNN's HalfPrecision.swift).

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU has AVX-512 F, so `kiln_sgemm_avx512` may be called.
int kiln_sgemm_avx512_available(void);

/// C ← α·op(A)·op(B) + β·C (+ row_bias[i] on row i when row_bias is not NULL), row-major (the CBLAS row-major convention): op(A) [m, k], stored
/// [m, k] (rows of lda) or, when trans_a, [k, m]; op(B) [k, n], stored [k, n] (rows of ldb) or,
/// when trans_b, [n, k]; C [m, n] (rows of ldc). Single-threaded; safe to call from several
/// threads at once. With β = 0 the old contents of C are never read (NaNs included). Requires
/// m, n, k ≥ 1.
void kiln_sgemm_avx512(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, float beta, float *c, int ldc, const float *row_bias);

/// dst[i] = the binary32 value of the IEEE binary16 bit pattern src[i], for i < n (exact; NaNs
/// stay NaN with their sign and payload, quieted where the CPU's converter quiets them).
void kiln_f16_to_f32(const uint16_t *src, float *dst, size_t n);

/// dst[i] = the binary32 value of the bfloat16 bit pattern src[i], for i < n (exact).
void kiln_bf16_to_f32(const uint16_t *src, float *dst, size_t n);

#ifdef __cplusplus
}
#endif
#endif
