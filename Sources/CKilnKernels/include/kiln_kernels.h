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

/// The geometry of one sample's 2D convolution (NCHW, no groups or dilation).
typedef struct {
    int channels, height, width;
    int kernel_height, kernel_width, stride, padding;
    int out_height, out_width;
} kiln_conv_geometry;

/// Floats `kiln_pack_a_avx512` writes for an [m, k] matrix.
size_t kiln_packed_a_size(int m, int k);

/// Packs A [m, k] (row-major, rows of lda) once into the panels `kiln_conv_columns_avx512` and
/// `kiln_conv_direct_avx512` read, so that a convolution's tasks share one packing of its weight.
/// AVX-512 CPUs only.
void kiln_pack_a_avx512(int m, int k, const float *a, int lda, float *out);

/// C [m, n] (rows of ldc) = A·B with A packed by `kiln_pack_a_avx512` and B [k, n] row-major
/// (rows of ldb): for a weight that many products share. Single-threaded; AVX-512 CPUs only.
void kiln_sgemm_avx512_packed_a(int m, int n, int k, const float *packed_a, const float *b, int ldb, float *c, int ldc);

/// Floats `kiln_pack_b_avx512` writes for op(B) [k, n].
size_t kiln_packed_b_size(int k, int n);

/// Packs op(B) [k, n] (stored [k, n], or [n, k] when trans_b; rows of ldb) once for several
/// products that share it. AVX-512 CPUs only.
void kiln_pack_b_avx512(int k, int n, const float *b, int ldb, int trans_b, float *out);

/// C [m, n] (rows of ldc) = α·A·B with A [m, k] row-major (rows of lda) and B packed by
/// `kiln_pack_b_avx512`. Single-threaded; AVX-512 CPUs only.
void kiln_sgemm_avx512_packed_b(int m, int n, int k, float alpha, const float *a, int lda, const float *packed_b, float *c, int ldc);

/// Columns first_column ..< first_column + n of a batch's convolution as an implicit GEMM:
/// column j is output pixel j mod P of sample ⌊j / P⌋ (P = out_height·out_width), and
/// y[s, o, pixel] = Σ_p W[o, p]·col[p, j] (+ bias[o]) where col is the unfolding (im2col) of
/// x [N, C, H, W], read straight from x while packing (no unfolded matrix is written); W [m, k]
/// packed by `kiln_pack_a_avx512`, k = C·kh·kw; y [N, m, P]. Single-threaded, safe to call from
/// several threads at once on disjoint columns. AVX-512 CPUs only (`kiln_sgemm_avx512_available`).
void kiln_conv_columns_avx512(int m, int k, const float *packed_w, const float *x, const kiln_conv_geometry *g, int first_column,
                              int n, float *y, const float *bias);

/// 1 when `kiln_conv_direct_avx512` takes convolutions of geometry g: stride 1, "same" padding
/// (the output as large as the input), images of a multiple of 16 pixels, at most 25 taps.
int kiln_conv_direct_fits(const kiln_conv_geometry *g);

/// As `kiln_conv_columns_avx512` (same arguments and result) for `kiln_conv_direct_fits`
/// geometries, without packing the patches: the kernel reads each tap's 16 consecutive input
/// values straight from x with masked loads. first_column a multiple of 16.
void kiln_conv_direct_avx512(int m, int k, const float *packed_w, const float *x, const kiln_conv_geometry *g, int first_column,
                             int n, float *y, const float *bias);

/// ∂L/∂W [m, k] += ∂L/∂y·colᵀ over the columns of samples first_sample ..< first_sample + samples,
/// pixels first_pixel ..< first_pixel + pixel_count of each (multiples of 16), for a
/// `kiln_conv_direct_fits` geometry: x [N, C, H, W], dy [N, m, H·W], k = C·kh·kw; the patches are
/// read straight from x. Single-threaded; AVX-512 CPUs only.
void kiln_conv_weight_gradient_direct_avx512(int m, const kiln_conv_geometry *g, const float *x, const float *dy, int first_sample,
                                             int samples, int first_pixel, int pixel_count, float *dw);

/// dst[i] = the binary32 value of the IEEE binary16 bit pattern src[i], for i < n (exact; NaNs
/// stay NaN with their sign and payload, quieted where the CPU's converter quiets them).
void kiln_f16_to_f32(const uint16_t *src, float *dst, size_t n);

/// dst[i] = the binary32 value of the bfloat16 bit pattern src[i], for i < n (exact).
void kiln_bf16_to_f32(const uint16_t *src, float *dst, size_t n);

#ifdef __cplusplus
}
#endif
#endif
