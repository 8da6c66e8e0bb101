/*
 * reads.h: berthd's reading routes: lists, long-running operations, where
 * groups run, logs and exec (reads.c); usages and cached images, as the
 * caller's scope sees them (reads_scope.c).  Each answers its request through `reply`
 * exactly once, from a later callback on the loop or at once; none blocks.
 */
#ifndef BERTHD_READS_H
#define BERTHD_READS_H

#include "api-internal.h"

#define BD_PAGE_MAX 100             /* groups one list page holds at most   */

/* GET of the groups whose keys start with `prefix` (a subscription's or a
 * resource group's), a page of $top (1..BD_PAGE_MAX) after $skiptoken,
 * with a nextLink when more follow. */
void bd_reads_list(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, const char *prefix,
                   const char *apiv);

/* GET /berth/containerGroups?subscription=S[&resourceGroup=RG[&name=N]]
 * (operators): the groups of S (of RG; the one named N) with the host each
 * is placed on ("" when none: stopped, evicted or not yet placed), a page
 * of $top (1..BD_PAGE_MAX) after $skiptoken, with a nextLink when more
 * follow.  The placements are the replica's, read after a sync. */
void bd_reads_where(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply);

/* GET .../locations/{location}/usages of subscription `sub`
 * (reads_scope.c): its container groups in the location (the usage
 * count), and the whole cores, GB of memory and GPUs per SKU its placed
 * groups there hold; each limit is the cell's capacity (2000 groups). */
void bd_reads_usages(bd_api_t *api, const char *sub, const char *location, bd_reply_t *reply);

/* GET .../locations/{location}/cachedImages of subscription `sub`
 * (reads_scope.c): for an operator (req->operator_scope) every image the
 * cell's hosts hold; for a tenant, those of them its groups in the
 * location run (their records' `images`), nothing of another's. */
void bd_reads_cached_images(bd_api_t *api, const bd_request_t *req, const char *sub,
                            const char *location, bd_reply_t *reply);

/* GET .../locations/{l}/operations/{opid} of subscription `sub`. */
void bd_reads_operation(bd_api_t *api, const char *sub, const char *opid, bd_reply_t *reply);

/* GET .../containers/{container}/logs (?tail, ?timestamps) of op's group. */
void bd_reads_logs(bd_api_t *api, const bd_request_t *req, const op_t *op, const char *container,
                   bd_reply_t *reply);

/* POST .../containers/{container}/exec: a single-use session (60 s). */
void bd_reads_exec(bd_api_t *api, const bd_request_t *req, const op_t *op, const char *container,
                   bd_reply_t *reply);

/* POST .../containers/{container}/attach: a single-use session (60 s) like
 * exec's, whose run answers {"logs": "<the container's logs path>"} (the
 * WebSocket streams them). */
void bd_reads_attach(bd_api_t *api, const bd_request_t *req, const op_t *op,
                     const char *container, bd_reply_t *reply);

/* POST /berth/exec/{id} with {"password": ...}: runs the session's command
 * (an attach session's run answers {"logs": PATH}). */
void bd_reads_exec_session(bd_api_t *api, const bd_request_t *req, const char *id,
                           bd_reply_t *reply);

#endif /* BERTHD_READS_H */
