#ifndef KILN_PROCESS_H
#define KILN_PROCESS_H
// Process control that Swift cannot call directly (prctl is variadic). Header-only.
#if defined(__linux__)
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

/// Asks the kernel to send `signal` to this process when its parent thread exits, then checks that
/// the parent is still `expected_parent` (it may have died before the request). Returns 1 when
/// the parent is alive and the request is in place, 0 when the parent is already gone, -1 when
/// prctl failed.
static inline int kiln_die_with_parent(int signal, pid_t expected_parent) {
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL) != 0) return -1;
    return getppid() == expected_parent ? 1 : 0;
}
#else
#include <unistd.h>
static inline int kiln_die_with_parent(int signal, pid_t expected_parent) {
    (void)signal;
    return getppid() == expected_parent ? 1 : 0;
}
#endif
#endif
