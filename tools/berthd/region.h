/*
 * region.h: one berthd serving several cells of a region (region.c): a
 * cell's API for each, a directory in Redis mapping every container group
 * to its cell, new groups sent to a cell with room.  bd_api_open() opens a
 * region when the configuration names more than one cell, and the API's
 * entry points (berthd.h) then lead here.  Everything runs on the loop
 * and never blocks it.
 */
#ifndef BERTHD_REGION_H
#define BERTHD_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "berthd.h"

typedef struct bd_region bd_region_t;

/* Opens the directory's connections (made on first use) and one API per
 * cell of cfg->cells (cfg->ncells of them, 2..BD_CELLS_MAX), or with
 * cfg->all_cells per cell Redis holds (bd_region_cells_find(), the home
 * cell the first by name), on `base` (cfg must outlive the region).  NULL with err when a cell's API does not
 * open (Redis unreachable ...) or memory runs out: nothing is left open. */
bd_region_t *bd_region_open(const bd_config_t *cfg, struct event_base *base, berth_error_t *err);

/* Answers what is in flight (503 when a cell did not), closes the cells'
 * APIs and frees the region.  Accepts NULL. */
void bd_region_close(bd_region_t *g);

/* Routes one request to its cell, or to every cell and merges their
 * answers (region.c says which); answers `reply` exactly once, now or
 * later. */
void bd_region_handle(bd_region_t *g, const bd_request_t *req, bd_reply_t *reply);

/* Appends the cells' API metrics added up and the region's (creates per
 * cell, creates passed on by a full cell, each cell's Redis up, hosts per
 * cell's replica) to out. */
void bd_region_metrics(bd_region_t *g, struct evbuffer *out);

/* Whether every cell's Redis answers; `why` says what fails. */
bool bd_region_healthy(bd_region_t *g, char *why, size_t cap);

/* The asynchronous store of the cell that holds group `key` as this
 * berthd last routed it (the home cell's when it routed none). */
berth_store_async_t *bd_region_async_of(bd_region_t *g, const char *key);

/* The cells Redis at `url` holds (on every master of a Cluster), sorted
 * by name, into cells[0..*n-1] (at most `max`).  Blocks, each call
 * bounded by timeout_ms: for the API's opening alone (region_cells.c).
 * Returns 0, or a negative code with err: Redis unreachable (BERTH_EIO),
 * no cell at all (BERTH_ENOENT), more than `max` (BERTH_ELIMIT). */
int bd_region_cells_find(const char *url, uint32_t timeout_ms,
                         char (*cells)[BERTH_NAME_MAX + 1], size_t max, size_t *n,
                         berth_error_t *err);

#endif /* BERTHD_REGION_H */
