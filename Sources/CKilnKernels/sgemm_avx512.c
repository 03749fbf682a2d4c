// A packed single-precision GEMM (the BLIS loop structure, Goto & van de Geijn 2008) with a 12×32
// AVX-512 micro-kernel: 24 zmm accumulators, B rows loaded two vectors at a time, A values
// broadcast from the packed panel. Blocking: KC = 256 (a 32 KB B micro-panel stays in L1 while
// the A micro-panels stream), MC = 96 (96 KB of A in L2), NC = 2048.
//
// Why it exists: OpenBLAS 0.3.21 (Debian 12) runs its AVX2 kernels on CPUs it does not recognise
// (AMD Zen 4/5), or when OPENBLAS_CORETYPE says so, and those reach about half of an AVX-512
// core's multiply-add rate.
#include "kiln_kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define MR 12
#define NR 32
#define KC 256
#define MC 96
#define NC 2048

int kiln_sgemm_avx512_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

// Per-thread packing buffers, grown on demand and kept for the thread's life.
static _Thread_local float *packed_a = NULL;
static _Thread_local float *packed_b = NULL;

static float *buffer(float **slot, size_t count) {
    if (*slot == NULL) {
        *slot = (float *)aligned_alloc(64, ((count * sizeof(float) + 63) / 64) * 64);
    }
    return *slot;
}

// out[p·ld_out + i] = src[i·ld_src + p] for the four rows i < 4 and p < count: four rows of a
// matrix written as columns of a panel, 4×4 blocks at a time (SSE, four loads and four stores per
// block instead of sixteen single stores; the packing of a transposed operand was a sixth of a
// training step with single stores).
static void transpose_rows4(const float *src, int ld_src, int count, float *out, int ld_out) {
    const float *r0 = src, *r1 = src + ld_src, *r2 = src + 2 * (size_t)ld_src, *r3 = src + 3 * (size_t)ld_src;
    int p = 0;
    for (; p + 4 <= count; p += 4) {
        __m128 x0 = _mm_loadu_ps(r0 + p), x1 = _mm_loadu_ps(r1 + p), x2 = _mm_loadu_ps(r2 + p), x3 = _mm_loadu_ps(r3 + p);
        _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
        _mm_storeu_ps(out + (size_t)p * ld_out, x0);
        _mm_storeu_ps(out + (size_t)(p + 1) * ld_out, x1);
        _mm_storeu_ps(out + (size_t)(p + 2) * ld_out, x2);
        _mm_storeu_ps(out + (size_t)(p + 3) * ld_out, x3);
    }
    for (; p < count; p++) {
        float *dst = out + (size_t)p * ld_out;
        dst[0] = r0[p]; dst[1] = r1[p]; dst[2] = r2[p]; dst[3] = r3[p];
    }
}

// op(A)[i0 .. i0+mc, p0 .. p0+kc] into MR-row panels: panel r holds, for each p, the MR values
// op(A)[r·MR + i, p] (zero past row mc). `a` points at op(A)[i0, p0]; A is stored [m, k] (rows of
// lda), or [k, m] when transposed.
static void pack_a(int mc, int kc, const float *a, int lda, int trans, float *out) {
    for (int r = 0; r < mc; r += MR) {
        float *panel = out + (size_t)r * kc;
        if (trans) {
            // Stored [k, m]: each p gives MR consecutive values, copied as one run (reading down the
            // columns instead was the slowest part of the weight-gradient products).
            int rows = mc - r < MR ? mc - r : MR;
            for (int p = 0; p < kc; p++) {
                memcpy(panel + p * MR, a + (size_t)p * lda + r, (size_t)rows * sizeof(float));
                if (rows < MR) memset(panel + p * MR + rows, 0, (size_t)(MR - rows) * sizeof(float));
            }
            continue;
        }
        int rows = mc - r < MR ? mc - r : MR;
        int i = 0;
        // Stored [m, k]: a transpose, by 4×4 blocks (four rows read along p, written as four runs
        // of four), then the rows past a multiple of four one value at a time.
        for (; i + 4 <= rows; i += 4) transpose_rows4(a + (size_t)(r + i) * lda, lda, kc, panel + i, MR);
        for (; i < MR; i++) {
            if (i >= rows) {
                for (int p = 0; p < kc; p++) panel[p * MR + i] = 0;
            } else {
                const float *row = a + (size_t)(r + i) * lda;
                for (int p = 0; p < kc; p++) panel[p * MR + i] = row[p];
            }
        }
    }
}

// op(B)[p0 .. p0+kc, j0 .. j0+nc] into NR-column panels: panel s holds, for each p, the NR values
// op(B)[p, s·NR + j] (zero past column nc). `b` points at op(B)[p0, j0]; B is stored [k, n] (rows
// of ldb), or [n, k] when transposed.
static void pack_b(int kc, int nc, const float *b, int ldb, int trans, float *out) {
    for (int s = 0; s < nc; s += NR) {
        float *panel = out + (size_t)s * kc;
        int width = nc - s < NR ? nc - s : NR;
        if (trans) {
            int j = 0;
            for (; j + 4 <= width; j += 4) transpose_rows4(b + (size_t)(s + j) * ldb, ldb, kc, panel + j, NR);
            for (; j < NR; j++) {
                if (j < width) {
                    const float *row = b + (size_t)(s + j) * ldb;
                    for (int p = 0; p < kc; p++) panel[p * NR + j] = row[p];
                } else {
                    for (int p = 0; p < kc; p++) panel[p * NR + j] = 0;
                }
            }
            continue;
        }
        for (int p = 0; p < kc; p++) {
            const float *row = b + (size_t)p * ldb + s;
            float *dst = panel + p * NR;
            if (width == NR) {
                memcpy(dst, row, NR * sizeof(float));
            } else {
                memcpy(dst, row, (size_t)width * sizeof(float));
                memset(dst + width, 0, (size_t)(NR - width) * sizeof(float));
            }
        }
    }
}

// Stores accumulator rows i (columns 0–15 in ca, 16–31 in cb) of a tile: C ← α·acc (+ bias[i]) + β·C,
// masked to the tile's nr columns (m0, m1) and its mr rows. Used by both micro-kernels.
#define STORE(i, ca, cb)                                                                           \
    if (i < mr) {                                                                              \
    float *row = c + (size_t)(i) * ldc;                                                        \
    __m512 ra = _mm512_mul_ps(va, ca), rb = _mm512_mul_ps(va, cb);                             \
    if (bias) {                                                                                \
        ra = _mm512_add_ps(ra, _mm512_set1_ps(bias[i]));                                       \
        rb = _mm512_add_ps(rb, _mm512_set1_ps(bias[i]));                                       \
    }                                                                                          \
    if (beta != 0) {                                                                           \
        ra = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), ra);                          \
        rb = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), rb);                     \
    }                                                                                          \
    _mm512_mask_storeu_ps(row, m0, ra);                                                        \
    _mm512_mask_storeu_ps(row + 16, m1, rb);                                                   \
    }

// The 12 × 32 tile's pieces shared by both micro-kernels: its 24 accumulators, one p's 24
// multiply-adds (A's MR values broadcast against B's row in b0, b1), the masks of its nr columns,
// and the stores of its mr rows.
#define ACCUMULATORS                                                                                                         \
    __m512 c0a = _mm512_setzero_ps(), c0b = _mm512_setzero_ps(), c1a = _mm512_setzero_ps(), c1b = _mm512_setzero_ps();    \
    __m512 c2a = _mm512_setzero_ps(), c2b = _mm512_setzero_ps(), c3a = _mm512_setzero_ps(), c3b = _mm512_setzero_ps();    \
    __m512 c4a = _mm512_setzero_ps(), c4b = _mm512_setzero_ps(), c5a = _mm512_setzero_ps(), c5b = _mm512_setzero_ps();    \
    __m512 c6a = _mm512_setzero_ps(), c6b = _mm512_setzero_ps(), c7a = _mm512_setzero_ps(), c7b = _mm512_setzero_ps();    \
    __m512 c8a = _mm512_setzero_ps(), c8b = _mm512_setzero_ps(), c9a = _mm512_setzero_ps(), c9b = _mm512_setzero_ps();    \
    __m512 cAa = _mm512_setzero_ps(), cAb = _mm512_setzero_ps(), cBa = _mm512_setzero_ps(), cBb = _mm512_setzero_ps();
#define ROW(i, ca, cb) x = _mm512_set1_ps(ap[i]); ca = _mm512_fmadd_ps(x, b0, ca); cb = _mm512_fmadd_ps(x, b1, cb);
#define FMA_ROWS                                                                                                             \
    __m512 x;                                                                                                                \
    ROW(0, c0a, c0b) ROW(1, c1a, c1b) ROW(2, c2a, c2b) ROW(3, c3a, c3b) ROW(4, c4a, c4b) ROW(5, c5a, c5b)                    \
    ROW(6, c6a, c6b) ROW(7, c7a, c7b) ROW(8, c8a, c8b) ROW(9, c9a, c9b) ROW(10, cAa, cAb) ROW(11, cBa, cBb)
#define COLUMN_MASKS                                                                                                         \
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);                                               \
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : (__mmask16)0;
#define STORE_ROWS                                                                                                           \
    STORE(0, c0a, c0b) STORE(1, c1a, c1b) STORE(2, c2a, c2b) STORE(3, c3a, c3b) STORE(4, c4a, c4b) STORE(5, c5a, c5b)        \
    STORE(6, c6a, c6b) STORE(7, c7a, c7b) STORE(8, c8a, c8b) STORE(9, c9a, c9b) STORE(10, cAa, cAb) STORE(11, cBa, cBb)

__attribute__((target("avx512f,fma")))
static void kernel(int kc, const float *ap, const float *bp, float *c, int ldc, float alpha, float beta, const float *bias, int mr,
                   int nr) {
    ACCUMULATORS
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
        FMA_ROWS
        ap += MR;
        bp += NR;
    }
    COLUMN_MASKS
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    STORE_ROWS
}

// The macro-kernel: every MR×NR tile of the packed A block [mc, kc] times the packed B block
// [kc, nc], into C at `c` (rows of ldc), with the row bias of its first rows when not NULL.
static void macro_kernel(int mc, int nc, int kc, const float *pa, const float *pb, float *c, int ldc, float alpha, float beta,
                         const float *bias) {
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        for (int ir = 0; ir < mc; ir += MR) {
            int mr = mc - ir < MR ? mc - ir : MR;
            kernel(kc, pa + (size_t)ir * kc, pb + (size_t)jr * kc, c + (size_t)ir * ldc + jr, ldc, alpha, beta, bias ? bias + ir : NULL, mr, nr);
        }
    }
}

// x rounded up to a multiple of r.
static size_t round_up(int x, int r) { return (size_t)((x + r - 1) / r * r); }

void kiln_sgemm_avx512(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, float beta, float *c, int ldc, const float *row_bias) {
    float *pa = buffer(&packed_a, (size_t)MC * KC);
    float *pb = buffer(&packed_b, (size_t)KC * NC);
    for (int jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? n - jc : NC;
        for (int pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? k - pc : KC;
            float beta_block = pc == 0 ? beta : 1.0f;  // later k blocks add to what the first wrote
            pack_b(kc, nc, trans_b ? b + (size_t)jc * ldb + pc : b + (size_t)pc * ldb + jc, ldb, trans_b, pb);
            for (int ic = 0; ic < m; ic += MC) {
                int mc = m - ic < MC ? m - ic : MC;
                pack_a(mc, kc, trans_a ? a + (size_t)pc * lda + ic : a + (size_t)ic * lda + pc, lda, trans_a, pa);
                macro_kernel(mc, nc, kc, pa, pb, c + (size_t)ic * ldc + jc, ldc, alpha, beta_block, pc == 0 && row_bias ? row_bias + ic : NULL);
            }
        }
    }
}

// MARK: Convolution with the unfolding fused into the packing (implicit GEMM)

size_t kiln_packed_a_size(int m, int k) { return round_up(m, MR) * (size_t)k; }

void kiln_pack_a_avx512(int m, int k, const float *a, int lda, float *out) {
    size_t padded = round_up(m, MR);
    for (int pc = 0; pc < k; pc += KC) {
        int kc = k - pc < KC ? k - pc : KC;
        pack_a(m, kc, a + pc, lda, 0, out + (size_t)pc * padded);
    }
}

// The unfolded patches of columns n0 .. n0+nc of a batch's convolution, rows p0 .. p0+kc, as
// pack_b lays out B: column n is output pixel n mod P of sample ⌊n / P⌋ (P = out_height·out_width),
// and panel s holds, for each p, the NR values x[sample, c, i·st − pad + u, j·st − pad + v] of its
// columns (zero outside the image and past nc), with (c, u, v) = p0 + p.
static void pack_b_conv(int kc, int nc, int p0, int n0, const float *x, const kiln_conv_geometry *g, float *out) {
    int taps = g->kernel_height * g->kernel_width, plane = g->height * g->width;
    int ow = g->out_width, pixels = g->out_height * g->out_width;
    size_t sample_size = (size_t)g->channels * plane;
    int channel[KC], row_tap[KC], column_tap[KC];
    for (int p = 0; p < kc; p++) {
        int kk = p0 + p, t = kk % taps;
        channel[p] = kk / taps;
        row_tap[p] = t / g->kernel_width;
        column_tap[p] = t % g->kernel_width;
    }
    for (int s = 0; s < nc; s += NR) {
        float *panel = out + (size_t)s * kc;
        int width = nc - s < NR ? nc - s : NR;
        // The panel's columns as runs along one output row of one sample.
        int runs = 0, run_start[NR], run_length[NR], run_row[NR], run_column[NR];
        const float *run_x[NR];
        for (int q = 0; q < width;) {
            int n = n0 + s + q, pixel = n % pixels, i = pixel / ow, j = pixel % ow;
            int length = ow - j < width - q ? ow - j : width - q;
            run_start[runs] = q;
            run_length[runs] = length;
            run_row[runs] = i;
            run_column[runs] = j;
            run_x[runs] = x + (size_t)(n / pixels) * sample_size;
            runs++;
            q += length;
        }
        for (int p = 0; p < kc; p++) {
            float *dst = panel + (size_t)p * NR;
            size_t offset = (size_t)channel[p] * plane;
            for (int r = 0; r < runs; r++) {
                float *d = dst + run_start[r];
                int length = run_length[r];
                int yy = run_row[r] * g->stride - g->padding + row_tap[p];
                if (yy < 0 || yy >= g->height) { memset(d, 0, (size_t)length * sizeof(float)); continue; }
                const float *src = run_x[r] + offset + (size_t)yy * g->width;
                int xx = run_column[r] * g->stride - g->padding + column_tap[p];
                if (g->stride == 1) {
                    // A run of one input row, clipped to the image.
                    int lo = xx < 0 ? -xx : 0, hi = g->width - xx < length ? g->width - xx : length;
                    if (lo > length) lo = length;
                    if (hi < lo) hi = lo;
                    for (int q = 0; q < lo; q++) d[q] = 0;
                    memcpy(d + lo, src + xx + lo, (size_t)(hi - lo) * sizeof(float));
                    for (int q = hi; q < length; q++) d[q] = 0;
                } else {
                    for (int q = 0; q < length; q++, xx += g->stride) d[q] = xx >= 0 && xx < g->width ? src[xx] : 0.0f;
                }
            }
            if (width < NR) memset(dst + width, 0, (size_t)(NR - width) * sizeof(float));
        }
    }
}

// Packed B: the (jc, pc) blocks of kiln_sgemm_avx512 one after the other, jc-major, each as pack_b
// lays it out (kc rows of NR-column panels over nc rounded up to NR).
size_t kiln_packed_b_size(int k, int n) {
    size_t total = 0;
    for (int jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? n - jc : NC;
        total += (size_t)k * round_up(nc, NR);
    }
    return total;
}

void kiln_pack_b_avx512(int k, int n, const float *b, int ldb, int trans_b, float *out) {
    for (int jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? n - jc : NC;
        size_t padded = round_up(nc, NR);
        for (int pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? k - pc : KC;
            pack_b(kc, nc, trans_b ? b + (size_t)jc * ldb + pc : b + (size_t)pc * ldb + jc, ldb, trans_b, out + (size_t)pc * padded);
        }
        out += (size_t)k * padded;
    }
}

void kiln_sgemm_avx512_packed_b(int m, int n, int k, float alpha, const float *a, int lda, const float *packed_b, float *c, int ldc) {
    float *pa = buffer(&packed_a, (size_t)MC * KC);
    const float *block = packed_b;
    for (int jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? n - jc : NC;
        size_t padded = round_up(nc, NR);
        for (int pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? k - pc : KC;
            const float *pb = block + (size_t)pc * padded;
            for (int ic = 0; ic < m; ic += MC) {
                int mc = m - ic < MC ? m - ic : MC;
                pack_a(mc, kc, a + (size_t)ic * lda + pc, lda, 0, pa);
                macro_kernel(mc, nc, kc, pa, pb, c + (size_t)ic * ldc + jc, ldc, alpha, pc == 0 ? 0.0f : 1.0f, NULL);
            }
        }
        block += (size_t)k * padded;
    }
}

void kiln_sgemm_avx512_packed_a(int m, int n, int k, const float *packed_a, const float *b, int ldb, float *c, int ldc) {
    size_t padded = round_up(m, MR);
    float *pb = buffer(&packed_b, (size_t)KC * NC);
    for (int jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? n - jc : NC;
        for (int pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? k - pc : KC;
            pack_b(kc, nc, b + (size_t)pc * ldb + jc, ldb, 0, pb);
            for (int ic = 0; ic < m; ic += MC) {
                int mc = m - ic < MC ? m - ic : MC;
                const float *pa = packed_a + (size_t)pc * padded + (size_t)ic * kc;
                macro_kernel(mc, nc, kc, pa, pb, c + (size_t)ic * ldc + jc, ldc, 1.0f, pc == 0 ? 0.0f : 1.0f, NULL);
            }
        }
    }
}

// The macro-kernel of kiln_conv_columns_avx512: as macro_kernel, with C the batch's output
// y [N, m_all, P] from row ic on: a panel inside one sample is stored in place (rows P apart);
// a panel across samples (P not a multiple of NR) goes through a tile and is scattered.
static void macro_kernel_conv(int mc, int nc, int kc, const float *pa, const float *pb, float *y, int m_all, int ic, int pixels,
                              int n0, float beta, const float *bias) {
    float tile[MR * NR] __attribute__((aligned(64)));
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        int n = n0 + jr, sample = n / pixels, pixel = n % pixels;
        if (pixel + nr <= pixels) {
            float *c = y + ((size_t)sample * m_all + ic) * pixels + pixel;
            for (int ir = 0; ir < mc; ir += MR) {
                int mr = mc - ir < MR ? mc - ir : MR;
                kernel(kc, pa + (size_t)ir * kc, pb + (size_t)jr * kc, c + (size_t)ir * pixels, pixels, 1.0f, beta, bias ? bias + ir : NULL, mr, nr);
            }
            continue;
        }
        for (int ir = 0; ir < mc; ir += MR) {
            int mr = mc - ir < MR ? mc - ir : MR;
            for (int q = 0; q < nr; q++) {
                int s = (n + q) / pixels, px = (n + q) % pixels;
                const float *column = y + ((size_t)s * m_all + ic + ir) * pixels + px;
                for (int i = 0; i < mr; i++) tile[i * NR + q] = beta != 0 ? column[(size_t)i * pixels] : 0.0f;
            }
            kernel(kc, pa + (size_t)ir * kc, pb + (size_t)jr * kc, tile, NR, 1.0f, beta, bias ? bias + ir : NULL, mr, nr);
            for (int q = 0; q < nr; q++) {
                int s = (n + q) / pixels, px = (n + q) % pixels;
                float *column = y + ((size_t)s * m_all + ic + ir) * pixels + px;
                for (int i = 0; i < mr; i++) column[(size_t)i * pixels] = tile[i * NR + q];
            }
        }
    }
}

void kiln_conv_columns_avx512(int m, int k, const float *packed_w, const float *x, const kiln_conv_geometry *g, int first_column,
                              int n, float *y, const float *bias) {
    size_t padded = round_up(m, MR);
    int pixels = g->out_height * g->out_width;
    float *pb = buffer(&packed_b, (size_t)KC * NC);
    for (int jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? n - jc : NC;
        for (int pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? k - pc : KC;
            pack_b_conv(kc, nc, pc, first_column + jc, x, g, pb);
            for (int ic = 0; ic < m; ic += MC) {
                int mc = m - ic < MC ? m - ic : MC;
                const float *pa = packed_w + (size_t)pc * padded + (size_t)ic * kc;
                macro_kernel_conv(mc, nc, kc, pa, pb, y, m, ic, pixels, first_column + jc, pc == 0 ? 0.0f : 1.0f,
                                  pc == 0 && bias ? bias + ic : NULL);
            }
        }
    }
}

// MARK: Direct convolution: "same" padding, stride 1, no packing of the patches

// A panel of a direct convolution: its 32 columns as two vectors of 16 output pixels, each inside
// one sample (P a multiple of 16); for each tap t, the offset of lane 0's input value from its
// channel plane and the mask of the lanes that read inside the image (none past the panel).
#define MAX_TAPS 25
typedef struct {
    const float *x[2];
    int offset[2][MAX_TAPS];
    __mmask16 mask[2][MAX_TAPS];
} direct_panel;

// The micro-kernel of kiln_conv_direct_avx512: as kernel, with B's rows p0 .. p0+kc read straight
// from the image: row p = (channel c, tap t) of the panel is, for each half, 16 consecutive
// values of channel plane c at the tap's offset (with "same" padding and stride 1 the input
// width is the output width, so 16 consecutive output pixels read 16 consecutive inputs), the
// lanes outside the image masked to zero.
__attribute__((target("avx512f,fma")))
static void kernel_direct(int kc, int p0, int taps, int plane, const float *ap, const direct_panel *d, float *c, int ldc, float beta,
                          const float *bias, int mr, int nr) {
    ACCUMULATORS
    int t = p0 % taps;
    // Addresses as integers: a masked-out lane's address may lie before the plane.
    uintptr_t x0 = (uintptr_t)(d->x[0] + (size_t)(p0 / taps) * plane), x1 = (uintptr_t)(d->x[1] + (size_t)(p0 / taps) * plane);
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_maskz_loadu_ps(d->mask[0][t], (const void *)(x0 + (intptr_t)d->offset[0][t] * (intptr_t)sizeof(float)));
        __m512 b1 = _mm512_maskz_loadu_ps(d->mask[1][t], (const void *)(x1 + (intptr_t)d->offset[1][t] * (intptr_t)sizeof(float)));
        FMA_ROWS
        ap += MR;
        if (++t == taps) {
            t = 0;
            x0 += (size_t)plane * sizeof(float);
            x1 += (size_t)plane * sizeof(float);
        }
    }
    COLUMN_MASKS
    __m512 va = _mm512_set1_ps(1.0f), vb = _mm512_set1_ps(beta);
    STORE_ROWS
}

int kiln_conv_direct_fits(const kiln_conv_geometry *g) {
    int taps = g->kernel_height * g->kernel_width;
    return g->stride == 1 && g->out_height == g->height && g->out_width == g->width && (g->height * g->width) % 16 == 0
        && taps <= MAX_TAPS;
}

void kiln_conv_direct_avx512(int m, int k, const float *packed_w, const float *x, const kiln_conv_geometry *g, int first_column,
                             int n, float *y, const float *bias) {
    size_t padded = round_up(m, MR);
    int taps = g->kernel_height * g->kernel_width, plane = g->height * g->width, pixels = plane, w = g->width;
    size_t sample_size = (size_t)g->channels * plane;
    float tile[MR * NR] __attribute__((aligned(64)));
    int panels = (n + NR - 1) / NR;
    direct_panel *all = (direct_panel *)malloc((size_t)panels * sizeof(direct_panel));
    for (int panel = 0; panel < panels; panel++) {
        direct_panel *d = all + panel;
        int jr = panel * NR, nr = n - jr < NR ? n - jr : NR;
        for (int h = 0; h < 2; h++) {
            int column = first_column + jr + 16 * h, lanes = nr - 16 * h;
            if (lanes > 16) lanes = 16;
            if (lanes <= 0) {
                d->x[h] = x;
                for (int t = 0; t < taps; t++) { d->offset[h][t] = 0; d->mask[h][t] = 0; }
                continue;
            }
            int q0 = column % pixels;
            d->x[h] = x + (size_t)(column / pixels) * sample_size;
            for (int t = 0; t < taps; t++) {
                int du = t / g->kernel_width - g->padding, dv = t % g->kernel_width - g->padding;
                unsigned mask = 0;
                for (int l = 0; l < lanes; l++) {
                    int q = q0 + l, yy = q / w + du, xx = q % w + dv;
                    if (yy >= 0 && yy < g->height && xx >= 0 && xx < w) mask |= 1u << l;
                }
                d->offset[h][t] = q0 + du * w + dv;
                d->mask[h][t] = (__mmask16)mask;
            }
        }
    }
    // BLIS's order with the patches unpacked: a block of KC patch rows and MC weight rows (in L2)
    // serves every panel of the task before the next block, so wide layers do not stream their
    // whole weight once per panel.
    for (int pc = 0; pc < k; pc += KC) {
        int kc = k - pc < KC ? k - pc : KC;
        float beta = pc == 0 ? 0.0f : 1.0f;
        for (int ic = 0; ic < m; ic += MC) {
            int mc = m - ic < MC ? m - ic : MC;
            for (int panel = 0; panel < panels; panel++) {
                const direct_panel *d = all + panel;
                int jr = panel * NR, nr = n - jr < NR ? n - jr : NR;
                int n0 = first_column + jr, sample = n0 / pixels, pixel = n0 % pixels;
                int inside = pixel + nr <= pixels;
                for (int ir = ic; ir < ic + mc; ir += MR) {
                    int mr = ic + mc - ir < MR ? ic + mc - ir : MR;
                    const float *pa = packed_w + (size_t)pc * padded + (size_t)ir * kc;
                    const float *row_bias = pc == 0 && bias ? bias + ir : NULL;
                    if (inside) {
                        kernel_direct(kc, pc, taps, plane, pa, d, y + ((size_t)sample * m + ir) * pixels + pixel, pixels, beta, row_bias, mr, nr);
                        continue;
                    }
                    // Across samples: through a tile, as macro_kernel_conv.
                    for (int q = 0; q < nr; q++) {
                        const float *column = y + ((size_t)((n0 + q) / pixels) * m + ir) * pixels + (n0 + q) % pixels;
                        for (int i = 0; i < mr; i++) tile[i * NR + q] = beta != 0 ? column[(size_t)i * pixels] : 0.0f;
                    }
                    kernel_direct(kc, pc, taps, plane, pa, d, tile, NR, beta, row_bias, mr, nr);
                    for (int q = 0; q < nr; q++) {
                        float *column = y + ((size_t)((n0 + q) / pixels) * m + ir) * pixels + (n0 + q) % pixels;
                        for (int i = 0; i < mr; i++) column[(size_t)i * pixels] = tile[i * NR + q];
                    }
                }
            }
        }
    }
    free(all);
}

// MARK: Weight gradient of a direct convolution

// ∂L/∂W[o, p] += Σ ∂L/∂y[s, o, q]·x[s, c, q + offset(t)] over the chunk's columns, p = (c, t), in
// register tiles of 4 output channels × 6 patch rows whose 24 accumulators each sum 16 pixels
// at a time (the lanes are added up once per tile and chunk). The inputs are read straight from
// x with the direct kernel's masked loads, so nothing is unfolded or transposed.
__attribute__((target("avx512f,fma")))
void kiln_conv_weight_gradient_direct_avx512(int m, const kiln_conv_geometry *g, const float *x, const float *dy, int first_sample,
                                             int samples, int first_pixel, int pixel_count, float *dw) {
    int taps = g->kernel_height * g->kernel_width, plane = g->height * g->width, pixels = plane, w = g->width;
    int k = g->channels * taps, v0 = first_pixel / 16, vn = pixel_count / 16;
    size_t sample_size = (size_t)g->channels * plane;
    int offsets[MAX_TAPS];
    __mmask16 *masks = (__mmask16 *)malloc((size_t)vn * taps * sizeof(__mmask16));
    for (int t = 0; t < taps; t++) {
        int du = t / g->kernel_width - g->padding, dv = t % g->kernel_width - g->padding;
        offsets[t] = du * w + dv;
        for (int v = 0; v < vn; v++) {
            unsigned mask = 0;
            for (int l = 0; l < 16; l++) {
                int q = (v0 + v) * 16 + l, yy = q / w + du, xx = q % w + dv;
                if (yy >= 0 && yy < g->height && xx >= 0 && xx < w) mask |= 1u << l;
            }
            masks[v * taps + t] = (__mmask16)mask;
        }
    }
    for (int p0 = 0; p0 < k; p0 += 6) {
        int pr = k - p0 < 6 ? k - p0 : 6;
        // Per patch row j: its input's offset from the sample and its tap (rows past pr repeat p0).
        ptrdiff_t xo[6];
        int tp[6];
        for (int j = 0; j < 6; j++) {
            int pj = p0 + (j < pr ? j : 0);
            tp[j] = pj % taps;
            xo[j] = (ptrdiff_t)(pj / taps) * plane + offsets[tp[j]];
        }
        for (int o0 = 0; o0 < m; o0 += 4) {
            int mr = m - o0 < 4 ? m - o0 : 4;
            __m512 acc[4][6];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 6; j++) acc[i][j] = _mm512_setzero_ps();
            for (int s = first_sample; s < first_sample + samples; s++) {
                const float *d[4];
                for (int i = 0; i < 4; i++) d[i] = dy + ((size_t)s * m + o0 + (i < mr ? i : 0)) * pixels;
                // Addresses as integers: a masked-out lane's address may lie before the plane.
                uintptr_t xs = (uintptr_t)(x + (size_t)s * sample_size);
                for (int v = 0; v < vn; v++) {
                    int q = (v0 + v) * 16;
                    const __mmask16 *mv = masks + (size_t)v * taps;
                    __m512 a0 = _mm512_loadu_ps(d[0] + q), a1 = _mm512_loadu_ps(d[1] + q);
                    __m512 a2 = _mm512_loadu_ps(d[2] + q), a3 = _mm512_loadu_ps(d[3] + q);
#define COLUMN(j)                                                                                                              \
    {                                                                                                                          \
        __m512 b = _mm512_maskz_loadu_ps(mv[tp[j]], (const void *)(xs + (xo[j] + q) * (ptrdiff_t)sizeof(float)));            \
        acc[0][j] = _mm512_fmadd_ps(a0, b, acc[0][j]);                                                                         \
        acc[1][j] = _mm512_fmadd_ps(a1, b, acc[1][j]);                                                                         \
        acc[2][j] = _mm512_fmadd_ps(a2, b, acc[2][j]);                                                                         \
        acc[3][j] = _mm512_fmadd_ps(a3, b, acc[3][j]);                                                                         \
    }
                    COLUMN(0) COLUMN(1) COLUMN(2) COLUMN(3) COLUMN(4) COLUMN(5)
#undef COLUMN
                }
            }
            for (int i = 0; i < mr; i++)
                for (int j = 0; j < pr; j++) dw[(size_t)(o0 + i) * k + p0 + j] += _mm512_reduce_add_ps(acc[i][j]);
        }
    }
    free(masks);
}

#else
int kiln_sgemm_avx512_available(void) { return 0; }
void kiln_sgemm_avx512(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, float beta, float *c, int ldc, const float *row_bias) {
    (void)row_bias; (void)trans_a; (void)trans_b; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb; (void)beta; (void)c; (void)ldc;
    abort();  // never called: kiln_sgemm_avx512_available() is 0
}
size_t kiln_packed_a_size(int m, int k) { (void)m; (void)k; abort(); }
size_t kiln_packed_b_size(int k, int n) { (void)k; (void)n; abort(); }
void kiln_pack_b_avx512(int k, int n, const float *b, int ldb, int trans_b, float *out) {
    (void)k; (void)n; (void)b; (void)ldb; (void)trans_b; (void)out;
    abort();
}
void kiln_sgemm_avx512_packed_b(int m, int n, int k, float alpha, const float *a, int lda, const float *packed_b, float *c, int ldc) {
    (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)packed_b; (void)c; (void)ldc;
    abort();
}
void kiln_sgemm_avx512_packed_a(int m, int n, int k, const float *packed_a, const float *b, int ldb, float *c, int ldc) {
    (void)m; (void)n; (void)k; (void)packed_a; (void)b; (void)ldb; (void)c; (void)ldc;
    abort();
}
int kiln_conv_direct_fits(const kiln_conv_geometry *g) { (void)g; return 0; }
void kiln_conv_weight_gradient_direct_avx512(int m, const kiln_conv_geometry *g, const float *x, const float *dy, int first_sample,
                                             int samples, int first_pixel, int pixel_count, float *dw) {
    (void)m; (void)g; (void)x; (void)dy; (void)first_sample; (void)samples; (void)first_pixel; (void)pixel_count; (void)dw;
    abort();
}
void kiln_conv_direct_avx512(int m, int k, const float *packed_w, const float *x, const kiln_conv_geometry *g, int first_column,
                             int n, float *y, const float *bias) {
    (void)m; (void)k; (void)packed_w; (void)x; (void)g; (void)first_column; (void)n; (void)y; (void)bias;
    abort();
}
void kiln_pack_a_avx512(int m, int k, const float *a, int lda, float *out) { (void)m; (void)k; (void)a; (void)lda; (void)out; abort(); }
void kiln_conv_columns_avx512(int m, int k, const float *packed_w, const float *x, const kiln_conv_geometry *g, int first_column,
                              int n, float *y, const float *bias) {
    (void)m; (void)k; (void)packed_w; (void)x; (void)g; (void)first_column; (void)n; (void)y; (void)bias;
    abort();
}
#endif
