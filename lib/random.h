/*
 * lib/random.h: randomness from the operating system (getrandom(2)) for
 * ids, request ids and passwords in Berth's daemon and tools.
 *
 * Every byte comes from the kernel.  These functions must never fall back
 * to a clock, a pid or a seeded generator: when the kernel cannot give
 * bytes they fail, and the caller reports the failure.
 */
#ifndef BERTH_LIB_RANDOM_H
#define BERTH_LIB_RANDOM_H

#include <stddef.h>

/* Fills buf[0..len) from getrandom(2), retrying on EINTR and short reads.
 * Returns 0, or -1 with errno set (ENOSYS, EFAULT, ...) when the kernel
 * gives no bytes; buf's contents are then unspecified. */
int berth__random_bytes(void *buf, size_t len);

/* Writes nbytes random bytes as 2 * nbytes lowercase hex digits and a NUL
 * into out (which holds 2 * nbytes + 1 chars).  Returns 0, or -1 with errno
 * set and out holding the empty string. */
int berth__random_hex(char *out, size_t nbytes);

/* Writes a random (version 4) UUID, "xxxxxxxx-xxxx-4xxx-Yxxx-xxxxxxxxxxxx"
 * in lowercase, into out[37].  Returns 0, or -1 with errno set and out
 * holding the empty string. */
int berth__random_uuid(char out[37]);

#endif
