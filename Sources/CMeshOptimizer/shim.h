#ifndef KILN_CMESHOPTIMIZER_SHIM_H
#define KILN_CMESHOPTIMIZER_SHIM_H
// meshoptimizer (Debian's libmeshoptimizer-dev, no pkg-config file): the C API only.
#include <meshoptimizer.h>
#endif
