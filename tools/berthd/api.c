/*
 * api.c: berthd's ACI REST API: routes, api-versions, reads of
 * container-group resources, long-running operations, usages and
 * capabilities, logs and exec through the agents (the mutating requests
 * are mutate.c's).  This file holds the routes; api-internal.h lists the
 * files that answer them.
 *
 * NOTHING BLOCKS THE LOOP.  Every container-group route is callbacks on
 * the loop: a GET reads the resource record (records.c) and the agent's
 * view (the asynchronous store); lists, usages and operations likewise
 * (reads.c); every mutating request is one commit (mutate.c); logs and
 * exec wait for the host's agent (at most cfg->agent_timeout_ms) as
 * callbacks too, so a stalled agent stalls only the requests that asked
 * it.  The work whose library calls still block -- the NGroup and
 * standby-pool routes, standby claims, host heartbeats, pool and NGroup
 * reconciliation -- runs on the worker thread (worker.c) with its own
 * connection and replica, every BERTHD_TICK_MS (5 s by default) for the
 * periodic part.  The loop's own timer catches the replica up, reads the
 * agents' image sets and drops operation records past their day, each
 * without blocking.
 *
 * RESOURCE STATES.  A PUT of a new group places it where the engine
 * chooses; of a running one redeploys it under the same key (the core
 * refuses changes that need a delete); of a stopped one starts it again
 * with the new document, on its last host when it fits there.  A
 * resource's provisioningState is the agent's view's when the view
 * describes the record's generation, else the record's own (Creating).
 * Two berthds changing one resource at once are ordered by Redis: the
 * second one's commit finds the record changed, reads it again and
 * decides anew (mutate.c).
 *
 * ERROR CHOICES.  No host can take a group (BERTH_ENOSPC): 409 with the
 * core's code (not 5xx: SDKs retry 5xx at once, a retry storm that cannot
 * succeed).  A property change that needs a delete: 409 with the core's
 * code and target.  Redis failing: 500.  Logs/exec with no answer from the
 * agent: 503; of a stopped group: 409 ContainerGroupStopped (nothing runs).
 * No message names a store key: group_names() has the reply show the
 * group's name instead (bd_reply_resource()).
 *
 * EXEC.  POST .../exec ({"command", "terminalSize"}) answers
 * {webSocketUri, password}; the URI is "<ws|wss>://HOST:PORT/berth/exec/<id>"
 * with berthd's configured public address (--public-url; never the request's
 * Host header).  A client opens a WebSocket there and sends the password
 * as its first message; the session is then interactive (server_ws.c):
 * the client's input reaches the process, its output comes back, under a
 * terminal of terminalSize when the request named one, and the close
 * frame carries the exit status.  The command is split into words as a
 * shell splits a simple command, quotes keeping a word whole, nothing
 * expanded (bd_command_split(); unclosed quotes are a 400).  The
 * plain POST form http(s)://HOST:PORT/berth/exec/<id> with the body
 * {"password": "<password>"} (the server hands the API no arbitrary
 * headers, so the password travels in the body) runs the command once
 * without input and answers {output, exitCode}.  A session lives 60
 * seconds until taken and serves once; the password is compared in
 * constant time; the third wrong password closes it; it serves only a
 * caller whose token allows the subscription that made it (another one
 * gets the answer of a session that does not exist).  The server may still
 * demand a bearer token on the route.  POST .../attach makes the same kind
 * of session, whose run answers {logs: <the container's logs path>}: its
 * WebSocket streams the logs (server_ws.c).
 *
 * USAGES.  GET .../locations/{loc}/usages reports "ContainerGroups" (this
 * subscription's groups in that location; limit 2000, not enforced),
 * "StandardCores" (whole cores its placed groups in that location hold /
 * the cell's capacity), "StandardMemoryInGB" (GB held / capacity) and, per
 * GPU SKU, "Standard<SKU>Gpus" (GPUs held / capacity).  A cell serves
 * every location: capacity is the cell's, as ACI's quota is the region's;
 * no subscription sees what another's groups hold (reads_scope.c).
 *
 * CACHED IMAGES.  GET .../locations/{loc}/cachedImages lists, for a
 * tenant's token, the images the cell's hosts hold that the
 * subscription's groups in that location run; for an operator's, all the
 * cell's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api-internal.h"
#include "apiversions.h"
#include "profiles.h"
#include "query.h"
#include "region.h"
#include "reads.h"
#include "worker.h"

#define SEG_MAX 16
#define PATH_MAX_BYTES 2048

/* ---- small helpers ------------------------------------------------------------------------ */

/* Contract: api-internal.h. */
double api_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Contract: api-internal.h. */
const char *api_jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

/* ---- operations (long-running) ----------------------------------------------------------- */

/* Contract: api-internal.h. */
void api_arm_id(const op_t *op, char *out, size_t cap)
{
    snprintf(out, cap,
             "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/"
             "containerGroups/%s",
             op->sub, op->rg, op->name);
}

/* ---- read-only routes ------------------------------------------------------------------- */

/* Contract: api-internal.h. */
void api_reply_not_found(bd_reply_t *reply, const char *rg, const char *name)
{
    bd_reply_error(reply, 404, "ResourceNotFound", "",
                   "The Resource 'Microsoft.ContainerInstance/containerGroups/%s' under "
                   "resource group '%s' was not found.",
                   name, rg);
}

/* ---- routing ---------------------------------------------------------------------------- */

/* Reads the api-version into out[cap]; false (400 sent) when it is
 * missing or not one `known` accepts (`list` names those). */
static bool api_version_in(const bd_request_t *req, bd_reply_t *reply, char *out, size_t cap,
                           bool (*known)(const char *), const char *list)
{
    int q = bd_query_get(req->query, "api-version", out, cap);
    if (q == 0) {
        bd_reply_error(reply, 400, "MissingApiVersionParameter", "api-version",
                       "The api-version query parameter (?api-version=) is required for all "
                       "requests. Supported api-versions: %s.",
                       list);
        return false;
    }
    if (q < 0 || !known(out)) {
        bd_reply_error(reply, 400, "InvalidApiVersionParameter", "api-version",
                       "The api-version '%s' is invalid. The supported versions are %s.",
                       q < 0 ? "" : out, list);
        return false;
    }
    return true;
}

static bool api_version(const bd_request_t *req, bd_reply_t *reply, char *out, size_t cap)
{
    return api_version_in(req, reply, out, cap, bd_apiv_known, bd_apiv_list());
}

/* Names, for the reply, the resource of a path whose seg[7] is its name
 * in resource group seg[3], so that no store key shows (NGroups, pools:
 * answered on the worker thread, forwarded through `reply`). */
static void name_resource(bd_reply_t *reply, char **seg, int n, const char *target)
{
    char key[BD_KEY_MAX + 1];
    if (n < 8 || strlen(seg[1]) > BD_SUB_MAX || strlen(seg[3]) > BD_RG_MAX ||
        strlen(seg[7]) > 63)
        return;
    bd_resource_key(seg[1], seg[3], seg[7], key, sizeof key);
    bd_reply_resource(reply, key, seg[7], target);
}

static void bad_path(bd_reply_t *reply, const char *what)
{
    bd_reply_error(reply, 400, "InvalidRequestUri", "", "the request path is not valid: %s",
                   what);
}

static void no_route(bd_reply_t *reply)
{
    bd_reply_error(reply, 404, "NotFound", "", "no such resource or route");
}

static void bad_method(bd_reply_t *reply)
{
    bd_reply_error(reply, 405, "MethodNotAllowed", "",
                   "the method is not allowed on this resource");
}

/* Fills op's names from a group path and a new operation id; replies 400
 * when a name is invalid, 500 when the kernel gives no random bytes. */
static bool group_names(const bd_request_t *req, char **seg, op_t *op, bd_reply_t *reply)
{
    if (!bd_valid_subscription(seg[1])) {
        bad_path(reply, "bad subscription id");
        return false;
    }
    if (!bd_valid_resource_group(seg[3])) {
        bd_reply_error(reply, 400, "InvalidResourceGroupName", "resourceGroupName",
                       "resource group names are 1-90 letters, digits, '-', '_', '.', '(' or "
                       "')', not ending with '.'");
        return false;
    }
    if (!bd_valid_group_name(seg[7])) {
        bd_reply_error(reply, 400, "InvalidContainerGroupName", "containerGroupName",
                       "container group names are 1-63 lowercase letters, digits or '-', not "
                       "starting or ending with '-'");
        return false;
    }
    snprintf(op->sub, sizeof op->sub, "%s", seg[1]);
    snprintf(op->rg, sizeof op->rg, "%s", seg[3]);
    snprintf(op->name, sizeof op->name, "%s", seg[7]);
    bd_resource_key(seg[1], seg[3], seg[7], op->key, sizeof op->key);
    /* The store's key is never shown: messages name the group. */
    bd_reply_resource(reply, op->key, op->name, "containerGroupName");
    if (bd_random_id(op->rid) != 0) {
        bd_reply_error(reply, 500, "InternalServerError", "",
                       "berthd has no random bytes for an operation id (getrandom: %s)",
                       strerror(errno));
        return false;
    }
    if (req->client_request_id != NULL && strlen(req->client_request_id) < sizeof op->crid &&
        strspn(req->client_request_id,
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
            strlen(req->client_request_id))
        snprintf(op->crid, sizeof op->crid, "%s", req->client_request_id);
    op->body = req->body ? req->body : "";
    op->body_len = req->body ? req->body_len : 0;
    return true;
}

static void route_group(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, char **seg,
                        int n, const char *apiv)
{
    op_t op;
    memset(&op, 0, sizeof op);
    if (!group_names(req, seg, &op, reply))
        return;
    snprintf(op.apiv, sizeof op.apiv, "%s", apiv);
    if (n == 8) {
        switch (req->method) {
        case BD_GET:
            bd_reply_route(reply, "ContainerGroups_Get");
            api_get_group(api, &op, reply);
            return;
        case BD_PUT:
            bd_reply_route(reply, "ContainerGroups_CreateOrUpdate");
            strcpy(op.kind, "put");
            break;
        case BD_PATCH:
            bd_reply_route(reply, "ContainerGroups_Update");
            strcpy(op.kind, "patch");
            break;
        case BD_DELETE:
            bd_reply_route(reply, "ContainerGroups_Delete");
            strcpy(op.kind, "delete");
            break;
        default:
            bad_method(reply);
            return;
        }
        api_mutate(api, req, reply, &op);
        return;
    }
    if (n == 9 && ieq(seg[8], "outboundNetworkDependenciesEndpoints")) {
        bd_reply_route(reply, "ContainerGroups_GetOutboundNetworkDependenciesEndpoints");
        if (req->method != BD_GET)
            bad_method(reply);
        else
            api_get_outbound_endpoints(api, &op, reply);
        return;
    }
    if (n == 9) {
        const char *a = seg[8];
        if (!ieq(a, "restart") && !ieq(a, "stop") && !ieq(a, "start")) {
            no_route(reply);
            return;
        }
        if (req->method != BD_POST) {
            bad_method(reply);
            return;
        }
        bd_lower(a, op.kind, sizeof op.kind);
        bd_reply_route(reply, ieq(a, "restart") ? "ContainerGroups_Restart"
                              : ieq(a, "stop")  ? "ContainerGroups_Stop"
                                                : "ContainerGroups_Start");
        api_mutate(api, req, reply, &op);
        return;
    }
    if (n == 11 && ieq(seg[8], "containers")) {
        if (!bd_valid_group_name(seg[9])) {
            bd_reply_error(reply, 400, "InvalidContainerName", "containerName",
                           "container names are 1-63 lowercase letters, digits or '-'");
            return;
        }
        if (ieq(seg[10], "logs")) {
            if (req->method != BD_GET) {
                bad_method(reply);
                return;
            }
            bd_reply_route(reply, "Containers_ListLogs");
            bd_reads_logs(api, req, &op, seg[9], reply);
            return;
        }
        if (ieq(seg[10], "exec")) {
            if (req->method != BD_POST) {
                bad_method(reply);
                return;
            }
            bd_reply_route(reply, "Containers_ExecuteCommand");
            bd_reads_exec(api, req, &op, seg[9], reply);
            return;
        }
        if (ieq(seg[10], "attach")) {
            bd_reply_route(reply, "Containers_Attach");
            if (req->method != BD_POST)
                bad_method(reply);
            else
                bd_reads_attach(api, req, &op, seg[9], reply);
            return;
        }
    }
    no_route(reply);
}

/* GET .../containerGroups/{name}/providers/Microsoft.Insights/metrics:
 * Azure Monitor's route, with Azure Monitor's api-versions. */
static void route_metrics(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply,
                          char **seg)
{
    bd_reply_route(reply, "Metrics_List");
    char apiv[32];
    if (!api_version_in(req, reply, apiv, sizeof apiv, api_metrics_api_version,
                        "2018-01-01, 2019-07-01, 2021-05-01, 2023-10-01"))
        return;
    if (req->method != BD_GET) {
        bad_method(reply);
        return;
    }
    op_t op;
    memset(&op, 0, sizeof op);
    if (group_names(req, seg, &op, reply))
        api_get_metrics(api, req, &op, reply);
}

/* Contract (berthd.h): answers one request under /subscriptions/,
 * /providers/ or /berth/ through `reply`, exactly once, before returning. */
void bd_api_handle(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply)
{
    char buf[PATH_MAX_BYTES];
    char *seg[SEG_MAX];
    char apiv[32];
    if (api->region != NULL) {
        bd_region_handle(api->region, req, reply);
        return;
    }
    int n = bd_path_split(req->path ? req->path : "", buf, sizeof buf, seg, SEG_MAX);
    if (n < 0) {
        bad_path(reply, "empty, relative or odd segments");
        return;
    }
    /* Berth's own routes.  The hosts and their actions are the
     * operators'; the list of where a subscription's groups run is
     * checked against the token's subscriptions (bd_reads_where()), and an
     * exec session is opened by its password. */
    if (ieq(seg[0], "berth")) {
        if (n >= 2 && strcmp(seg[1], "hosts") == 0 && !req->operator_scope) {
            bd_reply_route(reply, "Forbidden");
            bd_reply_error(reply, 403, "AuthorizationFailed", "",
                           "The client does not have authorization to read or change the "
                           "cell's hosts: that needs an operator token (one allowing every "
                           "subscription, '*').");
            return;
        }
        if (n == 2 && strcmp(seg[1], "hosts") == 0) {
            bd_reply_route(reply, "Berth_Hosts");
            if (req->method != BD_GET)
                bad_method(reply);
            else
                api_after_sync(api, api_get_hosts, NULL, reply);
            return;
        }
        if ((n == 3 || n == 4) && strcmp(seg[1], "hosts") == 0) {
            api_hosts_route(api, req, reply, seg, n);
            return;
        }
        if (n == 2 && strcmp(seg[1], "subnets") == 0) {
            api_subnets_route(api, req, reply, seg, n);
            return;
        }
        if (n == 2 && strcmp(seg[1], "containerGroups") == 0) {
            bd_reply_route(reply, "Berth_ContainerGroups");
            if (req->method != BD_GET)
                bad_method(reply);
            else
                bd_reads_where(api, req, reply);
            return;
        }
        if (n == 3 && strcmp(seg[1], "exec") == 0) {
            bd_reply_route(reply, "Berth_Exec");
            if (!bd_valid_hex_id(seg[2]))
                bad_path(reply, "bad exec session id");
            else if (req->method != BD_POST)
                bad_method(reply);
            else
                bd_reads_exec_session(api, req, seg[2], reply);
            return;
        }
        no_route(reply);
        return;
    }
    if (n == 3 && ieq(seg[0], "providers") && ieq(seg[1], "Microsoft.ContainerInstance") &&
        ieq(seg[2], "operations")) {
        bd_reply_route(reply, "Operations_List");
        if (!api_version(req, reply, apiv, sizeof apiv))
            return;
        if (req->method != BD_GET)
            bad_method(reply);
        else
            api_get_provider_operations(reply);
        return;
    }
    /* The Azure CLI's subscription list and resource groups (server_arm.c). */
    if (ieq(seg[0], "subscriptions") && (n == 1 || (n == 4 && ieq(seg[2], "resourceGroups")))) {
        bd_arm_route(api->cfg, req, reply, seg, n);
        return;
    }
    if (!ieq(seg[0], "subscriptions") || n < 2) {
        no_route(reply);
        return;
    }
    if (!bd_valid_subscription(seg[1])) {
        bad_path(reply, "bad subscription id");
        return;
    }
    /* /subscriptions/S/[resourceGroups/RG/]providers/Microsoft.StandbyPool/... */
    if (n >= 8 && ieq(seg[2], "resourceGroups") && ieq(seg[4], "providers") &&
        ieq(seg[5], "Microsoft.StandbyPool"))
        name_resource(reply, seg, n, "standbyContainerGroupPoolName");
    if (api_pools_route(api, req, reply, seg, n))
        return;
    /* .../containerGroupProfiles, by subscription or resource group (profiles.c) */
    if ((n == 5 && ieq(seg[2], "providers") && ieq(seg[3], "Microsoft.ContainerInstance") &&
         ieq(seg[4], "containerGroupProfiles")) ||
        (n >= 7 && ieq(seg[2], "resourceGroups") && ieq(seg[4], "providers") &&
         ieq(seg[5], "Microsoft.ContainerInstance") && ieq(seg[6], "containerGroupProfiles"))) {
        bd_profiles_handle(api, req, reply, seg, n);
        return;
    }
    /* NGroups (ngroups.c, on the worker): /subscriptions/S/providers/
     * Microsoft.ContainerInstance/ngroups and /subscriptions/S/resourceGroups/
     * RG/providers/Microsoft.ContainerInstance/ngroups[/NAME[/ACTION]] */
    if ((n == 5 && ieq(seg[2], "providers") && ieq(seg[3], "Microsoft.ContainerInstance") &&
         ieq(seg[4], "ngroups")) ||
        (n >= 7 && ieq(seg[2], "resourceGroups") && ieq(seg[4], "providers") &&
         ieq(seg[5], "Microsoft.ContainerInstance") && ieq(seg[6], "ngroups"))) {
        name_resource(reply, seg, n, "ngroupsName");
        bd_worker_ngroups(api->worker, api, req, reply, seg, n);
        return;
    }
    /* /subscriptions/S/providers/Microsoft.ContainerInstance/... */
    if (n >= 5 && ieq(seg[2], "providers") && ieq(seg[3], "Microsoft.ContainerInstance")) {
        if (!api_version(req, reply, apiv, sizeof apiv))
            return;
        if (n == 5 && ieq(seg[4], "containerGroups")) {
            bd_reply_route(reply, "ContainerGroups_List");
            if (req->method != BD_GET) {
                bad_method(reply);
                return;
            }
            char prefix[BD_SUB_MAX + 2];
            bd_lower(seg[1], prefix, sizeof prefix - 1);
            strcat(prefix, "/");
            bd_reads_list(api, req, reply, prefix, apiv);
            return;
        }
        if (n >= 7 && ieq(seg[4], "locations")) {
            if (!bd_valid_location(seg[5])) {
                bad_path(reply, "bad location");
                return;
            }
            if (req->method != BD_GET) {
                bad_method(reply);
                return;
            }
            if (n == 7 && ieq(seg[6], "usages")) {
                bd_reply_route(reply, "Location_ListUsage");
                bd_reads_usages(api, seg[1], seg[5], reply);
                return;
            }
            if (n == 7 && ieq(seg[6], "capabilities")) {
                bd_reply_route(reply, "Location_ListCapabilities");
                api_after_sync(api, api_get_capabilities, seg[5], reply);
                return;
            }
            if (n == 7 && ieq(seg[6], "cachedImages")) {
                bd_reply_route(reply, "Location_ListCachedImages");
                bd_reads_cached_images(api, req, seg[1], seg[5], reply);
                return;
            }
            if (n == 8 && ieq(seg[6], "operations")) {
                bd_reply_route(reply, "Location_GetOperation");
                if (!bd_valid_hex_id(seg[7]))
                    bad_path(reply, "bad operation id");
                else
                    bd_reads_operation(api, seg[1], seg[7], reply);
                return;
            }
        }
        no_route(reply);
        return;
    }
    /* /subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerInstance/containerGroups */
    if (n >= 7 && ieq(seg[2], "resourceGroups") && ieq(seg[4], "providers") &&
        ieq(seg[5], "Microsoft.ContainerInstance") && ieq(seg[6], "containerGroups")) {
        if (!bd_valid_resource_group(seg[3])) {
            bd_reply_error(reply, 400, "InvalidResourceGroupName", "resourceGroupName",
                           "resource group names are 1-90 letters, digits, '-', '_', '.', '(' "
                           "or ')', not ending with '.'");
            return;
        }
        if (n == 11 && ieq(seg[8], "providers") && ieq(seg[9], "Microsoft.Insights") &&
            ieq(seg[10], "metrics")) {
            route_metrics(api, req, reply, seg);
            return;
        }
        if (!api_version(req, reply, apiv, sizeof apiv))
            return;
        if (n == 7) {
            bd_reply_route(reply, "ContainerGroups_ListByResourceGroup");
            if (req->method != BD_GET) {
                bad_method(reply);
                return;
            }
            char prefix[BD_KEY_MAX + 1];
            bd_resource_key(seg[1], seg[3], "", prefix, sizeof prefix);
            bd_reads_list(api, req, reply, prefix, apiv);
            return;
        }
        route_group(api, req, reply, seg, n, apiv);
        return;
    }
    /* .../resourceGroups/RG/providers/Microsoft.Network/virtualNetworks/V/subnets/SN/providers/
     * Microsoft.ContainerInstance/serviceAssociationLinks/default (api_network.c) */
    if (n == 14 && ieq(seg[2], "resourceGroups") && ieq(seg[4], "providers") &&
        ieq(seg[5], "Microsoft.Network") && ieq(seg[6], "virtualNetworks") &&
        ieq(seg[8], "subnets") && ieq(seg[10], "providers") &&
        ieq(seg[11], "Microsoft.ContainerInstance") && ieq(seg[12], "serviceAssociationLinks")) {
        bd_reply_route(reply, "SubnetServiceAssociationLink_Delete");
        if (!api_version(req, reply, apiv, sizeof apiv))
            return;
        if (!bd_valid_resource_group(seg[3]) || !bd_valid_resource_group(seg[7]) ||
            !bd_valid_resource_group(seg[9]) || !ieq(seg[13], "default"))
            bad_path(reply, "bad resource group, virtual network, subnet or link name");
        else if (req->method != BD_DELETE)
            bad_method(reply);
        else
            api_delete_subnet_link(api, seg[1], seg[3], seg[7], seg[9], reply);
        return;
    }
    no_route(reply);
}
