/*
 * records_fsck.h: berthd's records checked against the cell's placements
 * (records_fsck.c), for `berthctl fsck`.  Blocking; never writes.
 */
#ifndef BERTHD_RECORDS_FSCK_H
#define BERTHD_RECORDS_FSCK_H

#include <stddef.h>

#include "berth.h"

/* Called once per violation with a sentence naming the resource. */
typedef void (*bd_records_fsck_cb)(const char *violation, void *data);

/* Checks every resource record of cell `cell` at `url` against the cell,
 * as the store (opened on the same cell, its replica in `engine`) reads
 * it: a container group placed without a resource record (NGroup and
 * standby-pool members excepted: no resource owns them); a resource
 * Stopped whose group is placed; a resource whose generation is ahead of
 * its group's, or whose document is not the one its group runs; a
 * resource neither Stopped nor placed nor evicted (nothing will ever run
 * it); a secret (lib/seal.h) that a group's document, placed or kept,
 * holds in clear, by group and JSON path.  A group's generation may be ahead of its resource's: a host's
 * failure moves a group without a request.  Calls cb per violation.
 * Returns the number of violations (>= 0), or BERTH_EIO with err; stores
 * the number of resource records read in *resources (may be NULL). */
int bd_records_fsck(berth_store_t *store, berth_engine_t *engine, const char *url,
                    const char *cell, bd_records_fsck_cb cb, void *data, size_t *resources,
                    berth_error_t *err);

#endif /* BERTHD_RECORDS_FSCK_H */
