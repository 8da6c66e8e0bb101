/*
 * pools_route.c: the Microsoft.StandbyPool/standbyContainerGroupPools
 * routes on berthd's event loop: what can be decided without blocking
 * (the path, the api-version, the body), the container group profile the
 * body references resolved (bd_profile_resolve(), profiles.c), then the
 * request handed to the worker (pools.c), which does the blocking rest.
 *
 *   PUT|PATCH|GET|DELETE /subscriptions/S/resourceGroups/RG/providers/
 *                        Microsoft.StandbyPool/standbyContainerGroupPools/NAME
 *   GET  .../standbyContainerGroupPools                   (resource group)
 *   GET  /subscriptions/S/providers/Microsoft.StandbyPool/
 *        standbyContainerGroupPools                        (subscription)
 *   GET  .../standbyContainerGroupPools/NAME/runtimeViews[/latest]
 *
 * api-versions: the StandbyPool provider's stable ones (POOL_API_VERSIONS).
 * A PUT or PATCH reaches the worker as a job body this file writes
 * (pools.c reads it), never as the client's: {"patch", "resource" (the
 * body as bodies.c normalized it), "size", "template" (the profile
 * revision's document, its secrets sealed, or null), "revision"}.
 *
 * This file must never block and never touch the store: what blocks runs
 * in pools.c on the worker.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api-internal.h"
#include "bodies.h"
#include "profiles.h"
#include "query.h"
#include "resource.h"
#include "worker.h"

#define POOL_API_VERSIONS "2024-03-01, 2025-03-01, 2025-10-01, 2026-04-01"

static bool ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Whether the api-version is one of the StandbyPool provider's; else
 * answers 400. */
static bool api_version_ok(const bd_request_t *req, bd_reply_t *reply)
{
    static const char *const known[] = {"2024-03-01", "2025-03-01", "2025-10-01", "2026-04-01"};
    char v[32];
    int q = bd_query_get(req->query, "api-version", v, sizeof v);
    if (q == 0) {
        bd_reply_error(reply, 400, "MissingApiVersionParameter", "api-version",
                       "The api-version query parameter (?api-version=) is required for all "
                       "requests. Supported api-versions: " POOL_API_VERSIONS ".");
        return false;
    }
    for (size_t i = 0; q > 0 && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(v, known[i]) == 0)
            return true;
    bd_reply_error(reply, 400, "InvalidApiVersionParameter", "api-version",
                   "The api-version '%s' is invalid. The supported versions are "
                   POOL_API_VERSIONS ".", q < 0 ? "" : v);
    return false;
}

/* A PUT or PATCH between its body read and its hand-over to the worker. */
typedef struct pool_write {
    bd_api_t *api;
    bd_reply_t *reply;
    bd_request_t req;               /* the caller's, body replaced          */
    char **seg;                     /* copies                               */
    int n;
    bool patch;
    bd_pool_body_t body;
    char *path, *query;
} pool_write_t;

static void pool_write_free(pool_write_t *w)
{
    if (w == NULL)
        return;
    for (int i = 0; w->seg != NULL && i < w->n; i++)
        free(w->seg[i]);
    free(w->seg);
    free(w->path);
    free(w->query);
    bd_pool_body_free(&w->body);
    free(w);
}

/* Hands the write to the worker with the job body (document: the profile
 * revision's, or NULL when the PATCH keeps the template). */
static void hand_over(pool_write_t *w, const char *document, uint64_t revision)
{
    json_t *resource = json_loads(w->body.resource_json, 0, NULL);
    json_t *job = json_pack("{s:b,s:o,s:o,s:o,s:o}", "patch", w->patch, "resource", resource,
                            "size", w->body.has_size ? json_integer(w->body.size) : json_null(),
                            "template", document != NULL ? json_string(document) : json_null(),
                            "revision", revision > 0 ? json_integer((json_int_t)revision)
                                                     : json_null());
    char *text = job != NULL ? json_dumps(job, JSON_COMPACT) : NULL;
    json_decref(job);
    if (text == NULL) {
        bd_reply_error(w->reply, 503, "ServerBusy", "", "berthd is short of memory; try again");
        pool_write_free(w);
        return;
    }
    w->req.body = text;
    w->req.body_len = strlen(text);
    bd_worker_pools(w->api->worker, &w->req, w->reply, w->seg, w->n);
    free(text);
    pool_write_free(w);
}

static void on_profile(int status, const char *document, uint64_t revision,
                       const berth_error_t *err, void *data)
{
    pool_write_t *w = data;
    if (status != 0) {
        /* The profile's own path in the pool's body. */
        berth_error_t e = *err;
        snprintf(e.target, sizeof e.target, "%s",
                 status == BERTH_ENOENT && w->body.revision > 0 &&
                         strstr(err->message, "revision") != NULL
                     ? "properties.containerGroupProperties.containerGroupProfile.revision"
                     : "properties.containerGroupProperties.containerGroupProfile.id");
        bd_reply_berth_error(w->reply, status == BERTH_EIO ? 500
                                       : status == BERTH_ENOENT ? 404 : 400, &e);
        pool_write_free(w);
        return;
    }
    hand_over(w, document, revision);
}

static void pool_write_start(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply,
                             char **seg, int n)
{
    pool_write_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        bd_reply_error(reply, 503, "ServerBusy", "", "berthd is short of memory; try again");
        return;
    }
    w->api = api;
    w->reply = reply;
    w->patch = req->method == BD_PATCH;
    berth_error_t err;
    int rc = w->patch ? bd_pool_patch_read(req->body, req->body ? req->body_len : 0, &w->body,
                                           &err)
                      : bd_pool_body_read(req->body, req->body ? req->body_len : 0, &w->body,
                                          &err);
    if (rc != 0) {
        bd_reply_berth_error(reply, rc == BERTH_ENOMEM ? 503 : 400, &err);
        pool_write_free(w);
        return;
    }
    /* What outlives this call: the path's segments and the request's
     * strings (the worker copies them again). */
    bool ok = (w->seg = calloc((size_t)n + 1, sizeof *w->seg)) != NULL;
    for (int i = 0; ok && i < n; i++) {
        ok = (w->seg[i] = strdup(seg[i])) != NULL;
        w->n = i + 1;
    }
    w->req = *req;
    w->path = req->path != NULL ? strdup(req->path) : NULL;
    w->query = req->query != NULL ? strdup(req->query) : NULL;
    ok = ok && (req->path == NULL || w->path != NULL) && (req->query == NULL || w->query != NULL);
    w->req.path = w->path;
    w->req.query = w->query;
    /* Nothing below this call's frame: the job body replaces the
     * client's; the rest the worker copies or does not use. */
    w->req.base_url = NULL;
    w->req.client_request_id = NULL;
    w->req.subscriptions = NULL;    /* the server authorized the path     */
    w->req.nsubscriptions = 0;
    if (!ok) {
        bd_reply_error(reply, 503, "ServerBusy", "", "berthd is short of memory; try again");
        pool_write_free(w);
        return;
    }
    if (w->body.profile_id == NULL) {       /* a PATCH keeping its profile */
        hand_over(w, NULL, 0);
        return;
    }
    if (bd_profile_resolve(api, seg[1], w->body.profile_id, w->body.revision, on_profile, w) !=
        0) {
        bd_reply_error(reply, 503, "ServerBusy", "", "berthd is short of memory; try again");
        pool_write_free(w);
    }
}

/* Contract: api-internal.h. */
bool api_pools_route(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, char **seg,
                     int n)
{
    bool sub_level = n == 5 && ieq(seg[2], "providers") && ieq(seg[3], "Microsoft.StandbyPool") &&
                     ieq(seg[4], "standbyContainerGroupPools");
    bool rg_level = n >= 7 && ieq(seg[2], "resourceGroups") && ieq(seg[4], "providers") &&
                    ieq(seg[5], "Microsoft.StandbyPool") &&
                    ieq(seg[6], "standbyContainerGroupPools");
    if (!sub_level && !rg_level)
        return false;
    if (sub_level || n == 7) {
        bd_reply_route(reply, sub_level ? "StandbyContainerGroupPools_ListBySubscription"
                                        : "StandbyContainerGroupPools_ListByResourceGroup");
        if (rg_level && !bd_valid_resource_group(seg[3])) {
            bd_reply_error(reply, 400, "InvalidResourceGroupName", "resourceGroupName",
                           "resource group names are 1-90 letters, digits, '-', '_', '.', '(' "
                           "or ')', not ending with '.'");
            return true;
        }
        if (req->method != BD_GET) {
            bd_reply_error(reply, 405, "MethodNotAllowed", "", "the method is not allowed here");
            return true;
        }
        if (api_version_ok(req, reply))
            bd_worker_pools(api->worker, req, reply, seg, n);
        return true;
    }
    if (n > 10 || (n >= 9 && !ieq(seg[8], "runtimeViews"))) {
        bd_reply_error(reply, 404, "NoRegisteredProviderFound", "",
                       "no route for this standby pool path");
        return true;
    }
    if (!bd_valid_resource_group(seg[3])) {
        bd_reply_error(reply, 400, "InvalidResourceGroupName", "resourceGroupName",
                       "resource group names are 1-90 letters, digits, '-', '_', '.', '(' or "
                       "')', not ending with '.'");
        return true;
    }
    if (!bd_valid_group_name(seg[7])) {
        bd_reply_error(reply, 400, "InvalidStandbyPoolName", "standbyContainerGroupPoolName",
                       "standby pool names are 1-63 lowercase letters, digits or '-', not "
                       "starting or ending with '-'");
        return true;
    }
    if (n >= 9) {
        bd_reply_route(reply, n == 9 ? "StandbyContainerGroupPoolRuntimeViews_ListByStandbyPool"
                                     : "StandbyContainerGroupPoolRuntimeViews_Get");
        if (req->method != BD_GET) {
            bd_reply_error(reply, 405, "MethodNotAllowed", "", "the method is not allowed here");
            return true;
        }
        if (!api_version_ok(req, reply))
            return true;
        if (n == 10 && !ieq(seg[9], "latest")) {
            bd_reply_error(reply, 404, "ResourceNotFound", "runtimeView",
                           "standby pool '%s' has the runtime view 'latest' only, not '%.64s'",
                           seg[7], seg[9]);
            return true;
        }
        bd_worker_pools(api->worker, req, reply, seg, n);
        return true;
    }
    switch (req->method) {
    case BD_PUT:
        bd_reply_route(reply, "StandbyContainerGroupPools_CreateOrUpdate");
        break;
    case BD_PATCH:
        bd_reply_route(reply, "StandbyContainerGroupPools_Update");
        break;
    case BD_GET:
        bd_reply_route(reply, "StandbyContainerGroupPools_Get");
        break;
    case BD_DELETE:
        bd_reply_route(reply, "StandbyContainerGroupPools_Delete");
        break;
    default:
        bd_reply_error(reply, 405, "MethodNotAllowed", "", "the method is not allowed here");
        return true;
    }
    if (!api_version_ok(req, reply))
        return true;
    if (req->method == BD_PUT || req->method == BD_PATCH)
        pool_write_start(api, req, reply, seg, n);
    else
        bd_worker_pools(api->worker, req, reply, seg, n);
    return true;
}
