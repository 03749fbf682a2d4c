#ifndef KILN_COPENBLAS_SHIM_H
#define KILN_COPENBLAS_SHIM_H
// OpenBLAS's CBLAS interface (cblas_sgemm, ...) and its thread controls
// (openblas_set_num_threads, openblas_get_num_threads, openblas_get_config). Debian's
// libopenblas-dev installs the header and openblas.pc; the pthread build is the default.
#include <cblas.h>
#endif
