/*
 * berthd.h: how the parts of berthd meet.
 *
 *   main.c     options, the embedded redis-server (started and supervised
 *              when no --redis is given), the event loop, signals
 *   server*.c  the HTTP(S) front (server-internal.h says which file does
 *              what): evhttp on libevent, TLS through
 *              libevent's OpenSSL bufferevents, bearer tokens scoped to
 *              subscriptions, body and header size limits, a deadline per
 *              request and an idle timeout per connection, CloudErrors for
 *              every HTTP-level error, a listener that backs off when
 *              descriptors run out, /healthz and /metrics, structured
 *              access logs; every other request goes to the API
 *   api*.c     the ACI REST API (api-internal.h says which file does
 *              what): routes, api-versions, validation, container-group
 *              reads, long-running operations, logs and exec through the
 *              agents
 *   mutate.c   the mutating container-group requests, each one commit
 *   records.c  berthd's own records in Redis: their reads, and the
 *              effects that write them with a commit
 *   pools_route.c  standby pool routes on the loop: path, api-version,
 *              body, the container group profile resolved; then pools.c
 *   pools.c    standby pools on the worker: the resource, claims for new
 *              groups, refills
 *   ngroups.c  the NGroups resources on ACI's schema (ngroups routes; a
 *              PUT's container group profile resolved on the loop first,
 *              worker_jobs.c), reconciled by the worker's housekeeping and,
 *              mid-rollout, its fast steps
 *
 *   worker.c   a worker thread with its own blocking store, for work not
 *              yet asynchronous; it hands results back to the loop, and
 *              runs periodic housekeeping
 *   worker_jobs.c  what berthd hands it: NGroup and standby-pool routes
 *              (their replies captured and forwarded), pool claims
 *
 * One loop thread: every callback runs on the daemon's event_base.  The
 * worker thread (worker.c) touches nothing of the loop's; what runs on it
 * is pools.c and ngroups.c (given the worker's store), the capture side of
 * replies (server_reply.c) and bd_log(), which is safe from any thread.
 */
#ifndef BERTHD_H
#define BERTHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "berth.h"
#include "lib/seal.h"

/* ---- configuration ---------------------------------------------------------------- */

#define BD_CELLS_MAX 16                 /* cells one berthd serves          */

typedef struct bd_config {
    char listen_addr[64];           /* "127.0.0.1" or "::1" ...             */
    uint16_t listen_port;
    char redis_url[512];            /* as given, or the embedded server's   */
    char cell[BERTH_NAME_MAX + 1];  /* "default"; a region's home cell      */
    /* The cells served (--cell, repeated or listed): more than one makes a
     * region (region.c); 0 or 1: the one cell `cell`. */
    char cells[BD_CELLS_MAX][BERTH_NAME_MAX + 1];
    uint32_t ncells;
    bool all_cells;                 /* --cell '*': every cell Redis holds,
                                     * found as the API opens (a region)    */
    const char *tls_cert;           /* PEM files; both NULL: plain HTTP     */
    const char *tls_key;
    const char *tokens_file;        /* NULL: no authentication              */
    char data_dir[512];             /* embedded Redis and local state       */
    const char *dns_domain;         /* fqdn suffix: "<label>.<location>.<dns_domain>" */
    size_t body_max;                /* bytes in a request body (1 MiB)      */
    uint32_t header_timeout_s;      /* a request's deadline: its headers and
                                     * body, counted from accept (the first
                                     * request) or its first byte (10)      */
    uint32_t idle_timeout_s;        /* a keep-alive connection's idle time (60) */
    uint32_t agent_timeout_ms;      /* logs and exec wait for the agent (10000) */
    uint32_t redis_wait_ms;         /* how long start-up waits for Redis to
                                     * answer (0: until it does)            */
    uint32_t replicas;              /* Redis replicas that confirm each commit
                                     * before it is answered (0: none)      */
    uint32_t replica_wait_ms;       /* how long a commit waits for them     */
    char public_url[256];           /* "https://HOST:PORT", no trailing '/':
                                     * what clients reach berthd at (the
                                     * ARM metadata and token endpoints name
                                     * it; never taken from a request)     */
    char location[65];              /* every resource group's location
                                     * (GET .../resourcegroups/RG): "westeurope" */
    const berth__keyring_t *secrets; /* --secrets-key: seals every secret
                                     * before it is stored (NULL: documents
                                     * with a secret are refused); shared
                                     * read-only by the worker thread        */
} bd_config_t;

/* ---- one request, as the server hands it to the API ---------------------------------- */

typedef enum bd_method {
    BD_GET = 1,
    BD_PUT,
    BD_POST,
    BD_PATCH,
    BD_DELETE,
    BD_HEAD,
    BD_OTHER
} bd_method_t;

/* worker.c deep-copies a request for the worker thread (request_copy):
 * a pointer added here must be copied there too. */
typedef struct bd_request {
    bd_method_t method;
    const char *path;               /* percent-decoded path, no query       */
    const char *query;              /* the raw query string ("" when none)  */
    const char *body;               /* NUL-terminated; "" when none         */
    size_t body_len;
    const char *base_url;           /* "https://HOST:PORT", for links       */
    const char *client_request_id;  /* x-ms-client-request-id, or NULL      */
    /* Authorization: the subscriptions the caller's token may touch.  With
     * no tokens file every subscription is allowed (any_subscription).
     * The server has already refused (403, the same answer whether the
     * resource exists or not) a path naming a subscription outside them. */
    bool any_subscription;
    const char *const *subscriptions;
    size_t nsubscriptions;
    /* The operator scope: Berth's own routes (/berth/hosts and the host
     * actions) and the cell-wide views (every cached image).  A token
     * allowing every subscription ('*') has it, as has every caller when
     * there is no tokens file; a tenant's token (named subscriptions) does
     * not. */
    bool operator_scope;
    /* Set by the WebSocket alone (server_ws.c), never from a request's
     * bytes: an exec session's take answers what to run, {"session":
     * {key, container, command, tty, rows, cols}}, instead of running it. */
    bool exec_interactive;
} bd_request_t;

/* A request copied with every byte it points at (worker_jobs.c), for
 * work that goes on after the call that received it returned.
 * bd_request_copy() fills *c (returns false when memory ran out; *c then
 * holds what was copied); free it with bd_request_copy_free(), which
 * accepts a zeroed or partial copy.  c->req's pointers are the copies. */
typedef struct bd_request_copy {
    bd_request_t req;
    char *path, *query, *body, *base_url, *client_request_id;
    char **subscriptions;
} bd_request_copy_t;
bool bd_request_copy(bd_request_copy_t *c, const bd_request_t *src);
void bd_request_copy_free(bd_request_copy_t *c);

/* A reply to send, exactly once, now or later (from another callback).
 * The server owns it; it is valid until sent. */
typedef struct bd_reply bd_reply_t;

/* Names the route for metrics and logs ("ContainerGroups_Get" ...). */
void bd_reply_route(bd_reply_t *reply, const char *route);

/* Names the resource the request is about, so that no internal key reaches
 * the user: every CloudError later sent through `reply` (bd_reply_error(),
 * bd_reply_berth_error(), the core's messages passed through) has each
 * occurrence of `key` (the store's "<sub>/<rg>/<name>") in its messages
 * replaced by `name`, and a target "key" replaced by `target`; so is a
 * CloudError a captured reply forwards through it (bd_reply_forward()).
 * Copies all three (truncated to what a key can hold); NULL or "" key:
 * none. */
void bd_reply_resource(bd_reply_t *reply, const char *key, const char *name,
                       const char *target);

/* Sends status, the JSON body (taken and freed; NULL: no body) and extra
 * headers (NULL-terminated name, value, name, value ... list; may be NULL).
 * Content-Type is application/json when there is a body. */
void bd_reply_send(bd_reply_t *reply, int status, json_t *body, const char *const *headers);

/* Sends a plain-text body (Prometheus metrics, exec output). */
void bd_reply_send_text(bd_reply_t *reply, int status, const char *text, size_t len,
                        const char *content_type);

/* Sends an ACI CloudError {"error": {code, message, target, details}}. */
void bd_reply_error(bd_reply_t *reply, int status, const char *code, const char *target,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Answers 500 InternalServerError "the resource store is failing": a read
 * of berthd's records or the cell that Redis did not answer. */
void bd_reply_store_failing(bd_reply_t *reply);

/* Sends a berth_error_t as a CloudError with `status`. */
void bd_reply_berth_error(bd_reply_t *reply, int status, const berth_error_t *err);

/* Captured replies, for handlers that run on the worker thread (worker.c).
 * bd_reply_capture_new() makes a reply bound to no connection (NULL when
 * out of memory): whatever a handler sends through it with the calls
 * above (status, body, content type, extra headers, route) is recorded
 * instead of sent, and a captured reply stays valid after it is sent,
 * until bd_reply_forward() or bd_reply_capture_free() frees it.  Making,
 * sending through and freeing a captured reply touch nothing of the
 * server's and may run on any thread (one thread at a time per reply).
 *
 * bd_reply_forward(), on the loop, sends what `captured` recorded through
 * `real` exactly as if the handler had sent it there (its route too, when
 * it named one), or a 500 CloudError "InternalServerError" when nothing
 * was sent through it (or captured is NULL); then frees `captured`.
 * `real` (may be NULL: only the free) is then sent, as by any send. */
bd_reply_t *bd_reply_capture_new(void);
void bd_reply_forward(bd_reply_t *captured, bd_reply_t *real);
/* Frees a captured reply without sending anything.  Accepts NULL. */
void bd_reply_capture_free(bd_reply_t *captured);

/* Has `cb(arg)` called (on the thread that sends, right after the send is
 * recorded) once something is sent through the captured reply
 * `captured`.  The callback must not free the reply itself. */
void bd_reply_capture_notify(bd_reply_t *captured, void (*cb)(void *arg), void *arg);

/* What was sent through the captured reply `captured`: its status (0:
 * nothing yet) and its body (NULL, 0 when none; owned by the reply). */
int bd_reply_captured(const bd_reply_t *captured, const char **body, size_t *len);

/* Answers, at once and without I/O, GET /subscriptions (n 1: the
 * subscriptions req's token names, none for '*' or without tokens) and
 * GET or HEAD /subscriptions/S/resourcegroups/RG (n 4: every valid name
 * exists, in cfg->location), the Azure CLI's view of a cloud; seg[0..n-1]
 * are the path's segments.  Bad names or a missing api-version get a
 * CloudError.  (server_arm.c) */
void bd_arm_route(const bd_config_t *cfg, const bd_request_t *req, bd_reply_t *reply,
                  char **seg, int n);

/* ---- the API ---------------------------------------------------------------------------- */

typedef struct bd_api bd_api_t;

/* Connects to Redis (the cell of cfg), loads the engine replicas and
 * starts the API's timer on `base`.  Returns 0 or a negative code with
 * err. */
/* Sets the Redis replicas the configuration asks to confirm each commit
 * (--replicas, --replica-wait-ms) in store options `so`; the store's
 * command timeout grows when needed to exceed that wait. */
static inline void bd_store_options_durable(const bd_config_t *cfg, berth_store_options_t *so)
{
    so->wait_replicas = cfg->replicas;
    so->wait_timeout_ms = cfg->replica_wait_ms;
    if (cfg->replicas > 0 && so->timeout_ms <= cfg->replica_wait_ms)
        so->timeout_ms = cfg->replica_wait_ms + 1000;
}

int bd_api_open(const bd_config_t *cfg, struct event_base *base, bd_api_t **out,
                berth_error_t *err);

/* Stops the timers and closes everything.  Accepts NULL. */
void bd_api_close(bd_api_t *api);

/* Handles one request under /subscriptions/, /providers/ or /berth/. */
void bd_api_handle(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply);

/* Appends the API's metrics (Prometheus text: placement latency histogram,
 * commit conflicts, request queue depth, hosts by state, allocated and
 * total capacity per dimension and GPU SKU) to out. */
void bd_api_metrics(bd_api_t *api, struct evbuffer *out);

/* Whether Redis answers; `why` says what is wrong otherwise. */
bool bd_api_healthy(bd_api_t *api, char *why, size_t cap);

/* The API's asynchronous store (on the loop) of group `key`, for the
 * WebSocket's interactive sessions (server_ws.c): in a region, the store
 * of the cell the group was last routed to (region.h; key NULL: the home
 * cell's); else the API's one store. */
berth_store_async_t *bd_api_async(bd_api_t *api, const char *key);

/* How long an agent has to answer (--agent-timeout-ms). */
uint32_t bd_api_agent_timeout_ms(const bd_api_t *api);

/* ---- NGroups (ngroups.c) ------------------------------------------------------------------ */

/* How often berthd's worker reconciles the NGroups mid-rollout, and how
 * many of them at most per such step. */
#define BD_NGROUPS_FAST_MS 200
#define BD_NGROUPS_FAST_MAX 64

/* Answers one request under /subscriptions/S/resourceGroups/RG/providers/
 * Microsoft.ContainerInstance/ngroups[/NAME[/start|stop|restart]] (n 7 to
 * 9) or /subscriptions/S/providers/Microsoft.ContainerInstance/ngroups
 * (n 5): seg[0..n-1] the path's segments, seg[1] a valid subscription;
 * through `reply`, exactly once, before returning.  `store`: a synchronous
 * store of the cell (the worker's, worker.c); the call blocks on it.  An
 * NGroup the request changes is added to `active` (the worker's set of
 * NGroups mid-rollout, an object whose members are keys).  profile_doc:
 * for a PUT or PATCH whose body names a container group profile, that
 * profile's document at revision profile_rev, resolved on the loop
 * (bd_profile_resolve()); NULL otherwise.  The body's secrets are sealed
 * under `secrets` (berthd's --secrets-key; NULL: a body with a secret is
 * refused) before anything is stored (secrets.h). */
void bd_ngroups_handle(berth_store_t *store, json_t *active, const bd_request_t *req,
                       bd_reply_t *reply, char **seg, int n, const char *profile_doc,
                       uint64_t profile_rev, const berth__keyring_t *secrets);

/* Runs one reconcile step for every NGroup of the store's cell, logging
 * failures, and makes `active` the set of those not steady after it.
 * Blocking: the worker's housekeeping (worker.c) calls it. */
void bd_ngroups_reconcile(berth_store_t *store, json_t *active);

/* Runs one reconcile step for at most BD_NGROUPS_FAST_MAX NGroups of
 * `active` (those first added first), dropping from it those steady,
 * deleted or gone after it.  Blocking: the worker calls it every
 * BD_NGROUPS_FAST_MS while `active` is not empty, so that a rollout
 * starts its next batch as soon as the last one is available. */
void bd_ngroups_reconcile_active(berth_store_t *store, json_t *active);

/* ---- standby pools (pools.c), for the API and the worker ------------------------------- */

typedef struct bd_pools bd_pools_t;

/* The pools' state on `base` over the API's store (which must outlive it):
 * a claim schedules a refill on a timer of `base`.  NULL when out of
 * memory.  Free with bd_pools_free() (accepts NULL). */
bd_pools_t *bd_pools_new(struct event_base *base, berth_store_t *store);
/* The pools' state for a thread without an event loop (the worker's), over
 * its store: no timer; each successful claim calls refill(arg) (may be
 * NULL), on the claiming thread, for the caller to run
 * bd_pools_reconcile() later.  NULL when out of memory. */
bd_pools_t *bd_pools_new_detached(berth_store_t *store, void (*refill)(void *arg), void *arg);
void bd_pools_free(bd_pools_t *pools);

/* Answers, on the worker, a standby pool request whose path and
 * api-version pools_route.c checked on the loop (seg[0..n-1] the path's
 * segments: n 5 the subscription's list, 7 the resource group's, 8 one
 * pool, 9 and 10 its runtime views), exactly once.  A PUT or PATCH body is
 * the job pools_route.c prepared (the resource read, the profile's
 * document resolved), never a client's. */
void bd_pools_handle(bd_pools_t *pools, const bd_request_t *req, bd_reply_t *reply, char **seg,
                     int n);

/* Tries to create the new group `key` by claiming a ready standby member
 * (berth_store_pool_claim()); on success schedules a refill.  Returns 0,
 * BERTH_ENOENT (no match: place anew) or another negative code. */
int bd_pools_claim(bd_pools_t *pools, const char *key, const berth_request_t *req,
                   const char *spec, berth_placement_t *pl, berth_error_t *err);

/* bd_pools_claim() looking only at pools whose name begins with
 * `pool_prefix` (NULL: the key's "<subscription>/", as bd_pools_claim()
 * does), writing effects[0..n-1] in the claim's atomic step
 * (berth_store_pool_claim_with(): a guard's refusal fails the claim with
 * BERTH_ESTALE or BERTH_EEXIST and changes nothing). */
int bd_pools_claim_with(bd_pools_t *pools, const char *key, const berth_request_t *req,
                        const char *spec, const char *pool_prefix,
                        const berth_effect_t *effects, size_t n, berth_placement_t *pl,
                        berth_error_t *err);

/* bd_pools_claim_with() from the pool named `pool` alone ("<sub>/<rg>/
 * <name>", lowercase; berth_store_pool_claim_from()). */
int bd_pools_claim_from(bd_pools_t *pools, const char *key, const berth_request_t *req,
                        const char *spec, const char *pool, const berth_effect_t *effects,
                        size_t n, berth_placement_t *pl, berth_error_t *err);

/* One reconciliation step of every pool (logs what fails). */
void bd_pools_reconcile(bd_pools_t *pools);

/* ---- the HTTP server (server*.c), for main.c -------------------------------------------- */

typedef struct bd_server bd_server_t;

/* Reads the tokens file and the TLS certificate and key of cfg (which must
 * outlive the server) and prepares evhttp on `base`, without listening.
 * Returns 0 and the server in *out (free with bd_server_close()), 2 for a
 * configuration error (a malformed tokens file, an unusable certificate or
 * key: `why` names the file and line) or 1 for anything else. */
int bd_server_open(const bd_config_t *cfg, struct event_base *base, bd_server_t **out,
                   char *why, size_t cap);

/* Binds cfg's listen address and starts serving requests, handing the API
 * ones to `api` (which must outlive the server's use of it).  It keeps one
 * descriptor (/dev/null) in reserve: when accept() runs out of descriptors
 * the listener spends it to refuse waiting connections cleanly and pauses
 * (100 ms doubling to 2 s) instead of spinning.  Returns 0, or -1 with
 * `why`. */
int bd_server_start(bd_server_t *srv, bd_api_t *api, char *why, size_t cap);

/* Stops accepting new connections; open ones keep being served. */
void bd_server_stop_accepting(bd_server_t *srv);

/* Closes every connection, drops replies still pending (the API must be
 * closed first, so that it holds none) and frees the server.  Accepts NULL. */
void bd_server_close(bd_server_t *srv);

/* Writes one structured log line (JSON: time, level, msg) to stderr.
 * `level` is "info", "warn" or "error".  Never pass secrets.  Safe from
 * any thread. */
void bd_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* BERTHD_H */
