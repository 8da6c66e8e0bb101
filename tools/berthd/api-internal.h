/*
 * api-internal.h: how the parts of berthd's API share its state:
 *
 *   api.c         the routes: paths, api-versions, names
 *   api_groups.c  one container group's reads and its ARM body
 *   api_cell.c    the cell's reads: hosts, capabilities, cached images,
 *                 the provider's operations
 *   api_hosts.c   one host: its groups, cordon, uncordon and drain
 *   api_network.c a group's outbound dependencies, subnets' service
 *                 association links
 *   api_metrics.c a group's usage metrics in Azure Monitor's shape
 *   api_usage.c   the groups' usage in /metrics, from a cache
 *   api_open.c    open and close, the loop's timers, health, metrics
 *   mutate.c      the mutating requests
 *   reads.c       lists, operations, logs and exec
 *   reads_scope.c usages and cached images, as the caller's scope sees them
 *
 * Not for the rest of berthd, which meets the API through berthd.h.
 * Everything declared here runs on the loop's thread and must never block
 * it.
 */
#ifndef BERTHD_API_INTERNAL_H
#define BERTHD_API_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "berthd.h"
#include "records.h"
#include "resource.h"
#include "lib/clock.h"

#define API_NBUCKETS 12
#define API_DONE_TTL_S 600           /* a POST's first answer is kept 10 min */

struct bd_api {
    const bd_config_t *cfg;
    struct event_base *base;
    /* The asynchronous store (its own replica): every mutation's one
     * commit, and agent calls (logs, exec), as callbacks on the loop. */
    berth_engine_t *async_engine;
    berth_store_async_t *async;
    bd_records_t *records;          /* berthd's own records (records.h)     */
    struct event *timer;
    char cell[BERTH_NAME_MAX + 1];
    char op_cursor[32];             /* HSCAN cursor of the operations' pruning */
    bool pruning;                   /* a pruning scan is out                */
    struct event *health;           /* PINGs Redis every second             */
    bool pinging, healthy;
    char health_why[128];
    /* metrics */
    uint64_t hist[API_NBUCKETS];
    uint64_t hist_count;
    double hist_sum;
    uint64_t conflicts;             /* commits refused for a record changed */
    uint64_t nospace;               /* BERTH_ENOSPC (after the store's retries) */
    uint64_t inflight;              /* mutations between read and reply     */
    struct bd_worker *worker;       /* work still blocking, off the loop    */
    bool syncing, images_syncing;   /* the timer's catch-ups in flight      */
    uint64_t evictions;             /* Spot groups evicted by this berthd's PUTs */
    struct bd_usage *usage;         /* the groups' usage for /metrics       */
    /* A region (cfg names more than one cell): the cells' APIs and the
     * routing between them (region.h); none of the fields above is then
     * used but cfg and base. */
    struct bd_region *region;
};

/* One mutating request: what the route found in the path. */
typedef struct op {
    char kind[16];                  /* put patch delete start stop restart  */
    char key[BD_KEY_MAX + 1];       /* "<sub>/<rg>/<name>" lowercase        */
    char sub[BD_SUB_MAX + 1];
    char rg[BD_RG_MAX + 1];
    char name[64];
    char apiv[32];
    char rid[BD_ID_HEX + 1];        /* a new operation id                   */
    char crid[128];                 /* x-ms-client-request-id, or ""        */
    const char *body;
    size_t body_len;
} op_t;

/* Seconds of a monotonic clock (wall time and its format: lib/clock.h). */
double api_mono_s(void);

/* The element of array `arr` whose "name" member is `name`, or NULL. */
json_t *api_find_named(json_t *arr, const char *name);

/* An agent's view (the JSON object in text[len]) as a user may see it:
 * every occurrence of the group's store key `key` in it (a runtime's
 * messages in its events name the group so) replaced by the group's name,
 * the key's last part.  A new reference, or NULL when the text is not a
 * JSON object (or memory ran out). */
json_t *api_view_load(const char *text, size_t len, const char *key);

/* Member `k` of object o as a string, "" when absent. */
const char *api_jstr(const json_t *o, const char *k);

/* The ARM id of op's resource into out[cap]. */
void api_arm_id(const op_t *op, char *out, size_t cap);

/* Appends the Prometheus metrics of apis[0..napis-1] (one cell's API, or
 * a region's cells: their counts added) to out (api_open.c). */
void api_metrics_sum(bd_api_t *const *apis, size_t napis, struct evbuffer *out);

/* Counts one commit's latency and outcome in the metrics. */
void api_observe_placement(bd_api_t *api, double seconds, int rc);

/* 404 ResourceNotFound for group `name` of resource group `rg`. */
void api_reply_not_found(bd_reply_t *reply, const char *rg, const char *name);

/* The resource's ARM body (secrets redacted) from its record, its
 * document (`parsed`, or else the text `doc`; neither: a body without the
 * document's properties), its agent's view (NULL: none) and, for an
 * evicted group, its eviction (NULL: not evicted); `force_state` (NULL:
 * from the record and view) overrides the provisioningState.  The body is
 * shaped for api-version `apiv` (bd_apiv_shape(): what its spec lacks is
 * left out); every container-group body berthd answers is built here.
 * No I/O. */
json_t *api_resource_body_build(bd_api_t *api, json_t *rec, const berth_group_t *parsed,
                                const char *doc, const char *force_state, const json_t *view,
                                const berth_eviction_t *evicted_by, const char *apiv);

/* Reads what the body of resource `key` needs (its document through the
 * library, and at the same time its view, or for a group neither stopped
 * nor placed its eviction record) without blocking, then
 * calls cb(body, data) once from the loop (body owned by the callee; NULL
 * when out of memory), shaped for api-version `apiv` (copied).  `rec` is
 * borrowed for the call. */
typedef void (*api_body_cb)(json_t *body, void *data);
void api_body_read(bd_api_t *api, const char *key, json_t *rec, const char *apiv, api_body_cb cb,
                   void *data);

/* Answers GET of the container group op names (api_groups.c): its record,
 * then its body, without blocking; 404 when there is none. */
void api_get_group(bd_api_t *api, const op_t *op, bd_reply_t *reply);

/* Runs fn(api, arg, reply) once the replica caught up with the cell's log
 * (or failed to: then with what it holds), for the routes that read the
 * engine (api_cell.c).  arg (may be NULL: "") is copied, at most
 * BD_LOCATION_MAX bytes.  Out of memory: answers 503 and never runs fn. */
typedef void (*synced_fn)(bd_api_t *api, const char *arg, bd_reply_t *reply);
void api_after_sync(bd_api_t *api, synced_fn fn, const char *arg, bd_reply_t *reply);

/* Answers /berth/hosts from the engine replica (a synced_fn; arg unused). */
void api_get_hosts(bd_api_t *api, const char *arg, bd_reply_t *reply);

/* Answers GET /berth/hosts/{host} and POST /berth/hosts/{host}/cordon,
 * /uncordon and /drain (api_hosts.c), seg[0..n-1] the path's segments
 * (n 3 or 4, seg[1] "hosts"): a bad host name 400, an unknown host 404,
 * (bd_api_handle() has already refused a caller without the operator
 * scope, 403); the POSTs run
 * on the worker thread, the GET on the loop's replica once caught up. */
/* Answers /berth/subnets (api_subnets.c): GET the replica's subnet table
 * {"value": [...]}, PUT a new one (400 naming the member at fault); 403
 * without an operator's token, 405 for other methods. */
void api_subnets_route(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, char **seg,
                       int n);

/* The claim field of a group's private address (records.h, hash `ips`),
 * "<subnet hash>/<a.b.c.d>", into out (cap at least 48 bytes): "" for a
 * group in no subnet (subnet_mask 0); `held` (the record's, or "") when it
 * is in the same subnet, so that a redeploy keeps its address; else the
 * address at `probe` steps from the one the group key hashes to, among
 * the subnet's addresses past .0 (the network) and .1 (the gateway) and
 * before the broadcast address.  The claim effect, not this call, makes it
 * unique: a taken address refuses the commit and the request tries the
 * next probe.  Returns 0, or BERTH_EINVAL when the engine lacks the
 * subnet. */
int bd_ipam_field(const berth_engine_t *engine, uint64_t subnet_mask, const char *key,
                  const char *held, unsigned probe, char *out, size_t cap);

/* The document `spec` (JSON text) as the cell stores it for a group whose
 * address claim is `field` (bd_ipam_field()'s, "" for none): with the
 * address in properties.ipAddress.ip, where the agent finds it for the
 * runtime.  *out gets a new text (free()), or NULL when nothing changes
 * (no claim, or no ipAddress to carry it).  Returns 0, or BERTH_ENOMEM. */
int bd_ipam_document(const char *spec, const char *field, char **out);

void api_hosts_route(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, char **seg,
                     int n);

/* Answers a location's capabilities from the engine replica's hosts and
 * the cell's per-group limits it holds (a synced_fn; arg: the location). */
void api_get_capabilities(bd_api_t *api, const char *location, bd_reply_t *reply);

/* Answers a location's cached images: the agents' image sets, read
 * without blocking, listed once per OS type the cell's hosts run; with
 * `only` (an object whose members are image references; a reference is
 * taken), those of them alone.  NULL: all. */
void api_get_cached_images(bd_api_t *api, json_t *only, bd_reply_t *reply);

/* Answers the provider's operations (a fixed list). */
void api_get_provider_operations(bd_reply_t *reply);

/* Answers GET .../outboundNetworkDependenciesEndpoints of the group op
 * names (api_network.c): the registries it pulls from; 404 when there is
 * no such group. */
void api_get_outbound_endpoints(bd_api_t *api, const op_t *op, bd_reply_t *reply);

/* Answers GET .../containerGroups/{name}/providers/Microsoft.Insights/
 * metrics for the group of op (names filled) through `reply`, once: 400
 * naming a bad parameter (nothing read), 404 when the group does not
 * exist, else Azure Monitor's answer (api_metrics.c). */
void api_get_metrics(bd_api_t *api, const bd_request_t *req, const op_t *op,
                     bd_reply_t *reply);

/* Whether `v` is an Azure Monitor metrics api-version berthd answers. */
bool api_metrics_api_version(const char *v);

/* The cache of the groups' latest usage behind /metrics (api_usage.c),
 * refreshed on `base` by a timer, a round at most every period_ms, through
 * `async` (which must outlive it).  NULL for want of memory. */
typedef struct bd_usage bd_usage_t;
bd_usage_t *api_usage_new(struct event_base *base, berth_store_async_t *async,
                          uint32_t period_ms);
/* No more reads: call before closing the store, whose closing completes
 * the reads still out.  Accepts NULL. */
void api_usage_stop(bd_usage_t *u);
/* Frees the cache, after the store is closed.  Accepts NULL. */
void api_usage_free(bd_usage_t *u);
/* Appends the cached usage of us[0..n-1] (one cell's, or a region's
 * cells') to `out` (Prometheus text, each series once). */
void api_usage_render(const bd_usage_t *const *us, size_t n, struct evbuffer *out);

/* Answers DELETE of the service association link of subnet `subnet` of
 * virtual network `vnet` in resource group `rg` of subscription `sub`
 * (api_network.c): 204 when no group of the subscription names the subnet
 * in its subnetIds, else 409 SubnetInUse naming them.  Writes nothing. */
void api_delete_subnet_link(bd_api_t *api, const char *sub, const char *rg, const char *vnet,
                            const char *subnet, bd_reply_t *reply);

/* Runs a mutating request (mutate.c): one atomic commit, then the reply. */
void api_mutate(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, const op_t *op);

/* pools_route.c: answers the request when its path is a standby pool's
 * (/subscriptions/S/[resourceGroups/RG/]providers/Microsoft.StandbyPool/
 * standbyContainerGroupPools...; seg[0..n-1] its segments, the
 * subscription checked) and returns true; false for any other path
 * (nothing answered). */
bool api_pools_route(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, char **seg,
                     int n);

#endif /* BERTHD_API_INTERNAL_H */
