/*
 * index-oracle.h: the tests' oracles for the placement index
 * (index-oracle.c).  Test code only, never part of libberth.
 */
#ifndef BERTH_INDEX_ORACLE_H
#define BERTH_INDEX_ORACLE_H

#include <stddef.h>
#include <stdint.h>

#include "index.h"

/* The same choice as berth__index_choose() computed by a linear scan over
 * every host, for tests that check the index against it.  Returns 0 with
 * *slot and *iso set, or BERTH_ENOSPC. */
int berth__index_choose_brute(const berth__index_t *idx, const berth_request_t *req,
                              uint32_t *slot, berth_isolation_t *iso);

/* Checks the index's own invariants (treap order and heap property, bucket
 * maxima, bitmaps, which hosts are linked).  Returns 0, or BERTH_EINVAL with
 * a description of the first broken invariant in `why` (of `cap` bytes). */
int berth__index_check(const berth__index_t *idx, char *why, size_t cap);

#endif /* BERTH_INDEX_ORACLE_H */
