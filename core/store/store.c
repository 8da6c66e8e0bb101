
/*
 * store.c: the Redis store: a cell's shared state (the KEY SCHEMA below),
 * opening and closing a store, and the public calls.
 *
 * KEY SCHEMA.  Every key of cell C carries the hash tag {C}, so one cell is
 * one Redis Cluster slot and one connection reaches all of it:
 *
 *   berth:{C}:meta              HASH   schema -> "2" (BERTH_CELL_SCHEMA: the
 *                                      cell's layout; a schema-1 cell is
 *                                      upgraded when opened); limits -> the
 *                                      cell's per-group limits for groups
 *                                      without GPUs (msgpack map, codec.c:
 *                                      v, mc, mem, containers, volumes,
 *                                      ports), absent until an operator
 *                                      sets them (berth_store_limits_put());
 *                                      subnets -> the cell's virtual network
 *                                      subnets (JSON array of {id, cidr,
 *                                      hosts}, subnets.c), absent until an
 *                                      operator sets them
 *                                      (berth_store_subnets_put())
 *   berth:{C}:hosts             HASH   host name -> host record (msgpack map,
 *                                      codec.c: v, name, cores, mem, gpu_sku,
 *                                      gpu_count, os, build, zone, features,
 *                                      state, used_mc, used_mem, used_gpu,
 *                                      groups, epoch)
 *   berth:{C}:skus              HASH   GPU SKU name -> SKU record (msgpack map:
 *                                      v, name, offers: [[count, max
 *                                      millicores, max MiB], ...]): the SKUs
 *                                      the cell's hosts use beyond an
 *                                      engine's built-in table
 *   berth:{C}:groups            HASH   group key -> group record (msgpack map:
 *                                      v, key, host, gen, mc, mem, os, and
 *                                      when not at their defaults (0, none)
 *                                      req_mc, gpu_count, gpu_sku, build,
 *                                      zones, sku, priority, restart, cpu_d,
 *                                      mem_d, gpu_d, ports_d, spec, and for a
 *                                      group claimed from a standby pool
 *                                      runtime, rt_gen, rt_d: the key,
 *                                      generation and runtime digest of the
 *                                      member whose runtime group it runs
 *                                      as: the record is written twice per
 *                                      commit, here and in the log, so it is
 *                                      kept small)
 *   berth:{C}:hostgroups:<host> SET    keys of the groups on that host
 *   berth:{C}:assign:<host>     STREAM what the host's agent carries out:
 *                                      op (place|release|restart), key, gen,
 *                                      repeated in one entry for each of a
 *                                      batch call's assignments to the host
 *                                      (berth_place_many); read through the
 *                                      consumer group "agents" (hostlink.c),
 *                                      an entry is deleted once each of its
 *                                      assignments is acknowledged
 *   berth:{C}:alive:<host>      STRING the agent's heartbeat (ms since the
 *                                      epoch), expiring after its TTL
 *   berth:{C}:agents            SET    hosts an agent has served (joined by its
 *                                      first heartbeat): a host among
 *                                      them whose heartbeat expired is marked
 *                                      down (berth_store_hosts_expire())
 *   berth:{C}:views             HASH   group key -> instance view (JSON:
 *                                      host, generation, digest,
 *                                      provisioningState, instanceView,
 *                                      ipAddress, initContainers,
 *                                      containers), written by the agent of
 *                                      the host that holds the group
 *   berth:{C}:metrics           HASH   group key -> usage metrics (JSON:
 *                                      host, generation, interval, samples
 *                                      [{time, rx, tx, containers [{name,
 *                                      cpu, memory}]}], the last
 *                                      BERTH_METRICS_SAMPLES_MAX at most),
 *                                      written whole each interval by the
 *                                      agent of the host that holds the
 *                                      group, through the views' Functions
 *                                      (same ownership check), dropped with
 *                                      its view
 *   berth:{C}:images:<host>     SET    images the host's runtime holds
 *   berth:{C}:ngroups           HASH   NGroup key -> NGroup record (JSON, ngroup.c:
 *                                      v, key, name, template, desired,
 *                                      maxUnavailable, zones, revision,
 *                                      deleting, metadata, batchPercent,
 *                                      unhealthyPercent, pauseMs, replace,
 *                                      prefix, faultDomains, stopped), written only by
 *                                      compare-and-set; its members are
 *                                      ordinary groups under the keys
 *                                      "<NGroup key>/<name>-<n>"
 *   berth:{C}:ngroupnotes       HASH   NGroup key -> the last reconcile step's
 *                                      note (zones without room, failures,
 *                                      a stopped rollout); "<NGroup key>\x1fpace"
 *                                      -> "<revision> <ms>": the revision of
 *                                      the last batch started and when that
 *                                      batch was first seen available (wall
 *                                      ms, 0: not yet), for the pause
 *   berth:{C}:log               STREAM the change log: seq, then one or
 *                                      more ops, each op (sku|limits|subnets|
 *                                      host|hostdel|place|release), name
 *                                      (host name, SKU name, group key, or
 *                                      "" for limits and subnets), rec (the new record, or "";
 *                                      a placement's without its spec: the
 *                                      document is kept once, in the group
 *                                      record, and replicas never need it);
 *                                      seq is the first op's number, the
 *                                      others follow one by one (a batch of
 *                                      placements, berth_place_many, logs
 *                                      all its ops in one entry; every
 *                                      other change one op); trimmed with
 *                                      MAXLEN ~ log_max_len entries
 *   berth:{C}:seq               STRING a counter every change increments; each
 *                                      op of the log carries the value it made
 *   berth:{C}:pools             HASH   standby pool name -> pool record (JSON:
 *                                      v, size, digest (template digest, 16
 *                                      hex digits), template (the canonical
 *                                      document), annotation (the caller's
 *                                      own object, optional)), pool.c;
 *                                      written with plain
 *                                      HSET/HDEL: no part of the placement
 *                                      state replicas mirror
 *   berth:{C}:poolmembers:<pool> SET   keys of the pool's members, groups
 *                                      under "pool:<pool>:<id>"; a claim
 *                                      (Function berth_claim) removes one
 *   berth:{C}:poolseq           STRING the counter member ids come from, so
 *                                      that no member key is used twice
 *   berth:{C}:calls:<host>      STREAM a scheduler's calls on the host's agent
 *                                      (logs, exec), and berth:{C}:reply:<id>
 *                                      LIST the agent's answer (calls.c)
 *   berth:{C}:replies           CHANNEL the reply key of each answer, published
 *                                      by the agent after writing it, for the
 *                                      asynchronous callers (store_async_calls.c)
 *   berth:{C}:evictions         HASH   group key -> its last eviction (JSON:
 *                                      host, by (the key of the Regular
 *                                      group that took the room), time (ms
 *                                      since the epoch by Redis's clock, a
 *                                      decimal string)), written by the
 *                                      Function berth_preempt, dropped by
 *                                      berth_store_eviction_forget()
 *   berth:{C}:documents         HASH   group key -> the document of a group
 *                                      that holds no placement but whose
 *                                      owner wants it back: kept by a
 *                                      release that asks for it (a stopped
 *                                      group) and by berth_preempt for each
 *                                      victim; dropped when the group is
 *                                      placed again, by
 *                                      berth_store_eviction_forget(), or by
 *                                      its owner (an effect's HDEL).  A
 *                                      group's document is thus in one place:
 *                                      its record while placed, here while not
 *
 * Only the Redis Functions of functions.c write the cell's records, sets,
 * streams and counter, each change in one atomic step, so they never
 * disagree (a standby claim, berth_claim, is logged as a release of the
 * member then a place of the new group, ops every replica applies); an
 * agent writes its heartbeat, its images and (through a Function that
 * checks the group is still its own) its views.
 * GPU SKUs and zones are stored by name: engine ids differ between engines.
 *
 * REPLICAS.  The engine a store binds mirrors the cell, applying the
 * change log in order (store_replica.c explains how).
 *
 * DURABILITY.  A call returns success only once Redis has applied the
 * commit.  What survives a crash of Redis is its persistence's to decide:
 * Berth expects AOF.  With appendfsync everysec (Redis's default) a power
 * failure can lose up to about one second of acknowledged commits; with
 * appendfsync always none is lost, at a cost in throughput; without AOF,
 * everything since the last RDB snapshot is lost.  After such a loss the
 * cell is still consistent (each change was one atomic step) but older.
 *
 * THE FILES.  This file opens and closes a store and holds the public
 * berth_store_* entry points, each wearing the SIGPIPE guard (store_conn.c
 * explains it) around the internal function that does the work in the file
 * of its job (store-internal.h lists them: the connection, the replica,
 * commits, batches, reads, failover, fsck).
 *
 * This file must never talk to Redis or touch the replica other than
 * through those functions, and never return from a public call with
 * SIGPIPE still blocked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store-internal.h"

/* ---- options, open, close --------------------------------------------------------------- */

void berth_store_options_init(berth_store_options_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
    opts->url = "redis://127.0.0.1:6379";
    opts->cell = "default";
    opts->timeout_ms = 5000;
    opts->max_retries = 8;
    opts->log_max_len = 100000;
    opts->wait_timeout_ms = 1000;
}

static bool cell_is_valid(const char *cell)
{
    size_t n = cell == NULL ? 0 : strnlen(cell, BERTH_NAME_MAX + 1);
    if (n == 0 || n > BERTH_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((cell[i] >= 'a' && cell[i] <= 'z') || (cell[i] >= '0' && cell[i] <= '9') ||
              cell[i] == '-'))
            return false;
    return true;
}

/* Creates the cell's meta record when new and checks its schema
 * (BERTH_CELL_SCHEMA), upgrading a schema-1 cell in place (berth.h). */
static int cell_prepare(berth_store_t *s, berth_error_t *err)
{
    char schema[16];
    snprintf(schema, sizeof schema, "%d", BERTH_CELL_SCHEMA);
    const char *set[] = {"HSETNX", s->k_meta, "schema", schema};
    int rc;
    redisReply *r = berth__store_command(s, 4, set, NULL, false, "creating the cell", err, &rc);
    if (r == NULL)
        return rc;
    freeReplyObject(r);
    const char *get[] = {"HGET", s->k_meta, "schema"};
    r = berth__store_command(s, 3, get, NULL, false, "reading the cell's schema", err, &rc);
    if (r == NULL)
        return rc;
    uint64_t v = 0;
    bool known = berth__reply_u64(r, &v);
    if (known && v == 1) {
        const char *up[] = {"HSET", s->k_meta, "schema", schema};
        redisReply *u = berth__store_command(s, 4, up, NULL, false,
                                             "upgrading the cell's schema", err, &rc);
        if (u == NULL) {
            freeReplyObject(r);
            return rc;
        }
        freeReplyObject(u);
        v = BERTH_CELL_SCHEMA;
    }
    if (!known || v != BERTH_CELL_SCHEMA)
        rc = berth__error_set(err, BERTH_EIO, "UnknownRecordVersion", "cell",
                              "cell '%s' has schema version %s; this library reads %d (and "
                              "upgrades 1)",
                              s->cell, r->type == REDIS_REPLY_STRING ? r->str : "(none)",
                              BERTH_CELL_SCHEMA);
    freeReplyObject(r);
    return rc;
}

/* Opens a store; `bare` skips the engine and its snapshot (a connection
 * for the host side: hostlink.c). */
int berth__store_open(const berth_store_options_t *opts, berth_engine_t *engine, bool bare,
                      berth_store_t **out, berth_error_t *err)
{
    *out = NULL;
    berth_store_options_t o;
    berth_store_options_init(&o);
    if (opts == NULL || opts->size < sizeof o.size)
        return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions", "size",
                                "store options need their size (call "
                                "berth_store_options_init first)");
    memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
    o.size = sizeof o;
    if (engine == NULL && !bare)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "engine",
                                "no engine given");
    if (!cell_is_valid(o.cell))
        return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions", "cell",
                                "a cell name has 1 to %d characters among a-z, 0-9 and '-'",
                                BERTH_NAME_MAX);
    if (o.timeout_ms == 0 || o.log_max_len == 0)
        return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions",
                                o.timeout_ms == 0 ? "timeout_ms" : "log_max_len",
                                "the timeout and the log length must be above zero");
    if (o.wait_replicas > 0 && (o.wait_timeout_ms == 0 || o.wait_timeout_ms >= o.timeout_ms))
        return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions", "wait_timeout_ms",
                                "waiting for replicas takes a timeout above zero and below "
                                "the command timeout (%u ms)", o.timeout_ms);
    if (!bare && (berth_engine_host_count(engine) > 0 || berth_engine_group_count(engine) > 0))
        return berth__error_set(err, BERTH_EEXIST, "EngineNotEmpty", "engine",
                                "a store loads its engine from the cell: the engine must "
                                "hold no hosts or groups");
    berth_store_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a store");
    msgpack_sbuffer_init(&s->buf);
    msgpack_sbuffer_init(&s->buf_log);
    s->rec = malloc(sizeof *s->rec);
    if (s->rec == NULL) {
        berth_store_close(s);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a store");
    }
    s->opts = o;
    s->engine = engine;
    if (engine != NULL) {           /* a bare store (hostlink, calls) has none */
        berth_engine_limits_get(engine, &s->own_limits);
        s->own_sandbox = berth_engine_sandbox_get(engine);
    }
    int rc = berth__store_url_parse(s, o.url, err);
    if (rc < 0) {
        berth_store_close(s);
        return rc;
    }
    s->opts.url = NULL;
    snprintf(s->cell, sizeof s->cell, "%s", o.cell);
    s->opts.cell = s->cell;
    s->prefix_len = (size_t)snprintf(s->prefix, sizeof s->prefix, "berth:{%s}:", s->cell);
    berth__store_key(s, s->k_meta, sizeof s->k_meta, "meta", "");
    berth__store_key(s, s->k_hosts, sizeof s->k_hosts, "hosts", "");
    berth__store_key(s, s->k_groups, sizeof s->k_groups, "groups", "");
    berth__store_key(s, s->k_documents, sizeof s->k_documents, "documents", "");
    berth__store_key(s, s->k_log, sizeof s->k_log, "log", "");
    berth__store_key(s, s->k_seq, sizeof s->k_seq, "seq", "");
    berth__store_key(s, s->k_skus, sizeof s->k_skus, "skus", "");
    snprintf(s->maxlen, sizeof s->maxlen, "%u", o.log_max_len);
    snprintf(s->last_id, sizeof s->last_id, "0-0");
    if ((rc = berth__store_connect(s, err)) < 0 || (rc = berth__functions_load(s, err)) < 0 ||
        (rc = cell_prepare(s, err)) < 0 ||
        (!bare && (rc = berth__store_snapshot_load(s, err)) < 0)) {
        berth_store_close(s);
        return rc;
    }
    /* The replica holds only what the log says: it plans preemptions and
     * commits them through Redis (store_commit.c), never on its own. */
    if (!bare)
        berth__engine_preempt_set(engine, false);
    *out = s;
    return 0;
}

void berth_store_close(berth_store_t *store)
{
    if (store == NULL)
        return;
    if (store->c != NULL)
        redisFree(store->c);
    berth__map_free(&store->groups);
    berth__map_free(&store->hosts);
    msgpack_sbuffer_destroy(&store->buf);
    msgpack_sbuffer_destroy(&store->buf_log);
    free(store->rec);
    free(store);
}

/* The public calls below: their contracts are berth.h's; each runs with
 * SIGPIPE guarded (store_conn.c). */
int berth_store_open(const berth_store_options_t *opts, berth_engine_t *engine,
                     berth_store_t **out, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_open(opts, engine, false, out, err));
}

int berth_store_sync(berth_store_t *store, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_sync(store, err));
}

int berth_store_gpu_sku_put(berth_store_t *store, const berth_gpu_sku_t *sku,
                            berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_gpu_sku_put(store, sku, err));
}

int berth_store_limits_put(berth_store_t *store, const berth_limits_t *limits,
                           berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_limits_put(store, limits, err));
}

int berth_store_subnets_put(berth_store_t *store, const berth_subnet_t *subnets, size_t n,
                            berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_subnets_put(store, subnets, n, err));
}

int berth_store_sandbox_put(berth_store_t *store, berth_sandbox_policy_t policy,
                            berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_sandbox_put(store, policy, err));
}

int berth_store_host_put(berth_store_t *store, const berth_host_t *host, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_host_put(store, host, err));
}

int berth_store_host_set_state(berth_store_t *store, const char *name,
                               berth_host_state_t state, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_host_set_state(store, name, state, err));
}

int berth_store_host_remove(berth_store_t *store, const char *name, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_host_remove(store, name, err));
}

int berth_store_place(berth_store_t *store, const char *key, const berth_request_t *request,
                      const char *spec_json, berth_placement_t *out, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_place(store, key, request, NULL, spec_json, out, err));
}

int berth_store_place_prefer(berth_store_t *store, const char *key,
                             const berth_request_t *request, const char *prefer_host,
                             const char *spec_json, berth_placement_t *out, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(
        berth__store_place(store, key, request, prefer_host, spec_json, out, err));
}

int berth_store_place_batch(berth_store_t *store, size_t n, const char *const *keys,
                            const berth_request_t *requests, berth_placement_t *outs,
                            int *results, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_place_batch(store, n, keys, requests, outs, results, err));
}

int berth_store_release(berth_store_t *store, const char *key, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_release(store, key, err));
}

int berth_store_group_read(berth_store_t *store, const char *key, char **spec_json,
                           uint64_t *generation, berth_error_t *err)
{
    BERTH__RETURN_GUARDED(
        berth__store_group_record(store, key, spec_json, generation, NULL, 0, err));
}

int berth_store_document_read(berth_store_t *store, const char *key, char **spec_json,
                              uint64_t *generation, berth_error_t *err)
{
    *spec_json = NULL;
    if (generation != NULL)
        *generation = 0;
    berth__sigpipe_guard_t g;
    berth__sigpipe_block(&g);
    int rc = berth__store_group_record(store, key, spec_json, generation, NULL, 0, err);
    if (rc == 0 && *spec_json == NULL)
        rc = berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                              "container group '%s' has no document", key);
    else if (rc == BERTH_ENOENT && key != NULL && key[0] != '\0')
        rc = berth__store_kept_read(store, key, spec_json, err);
    berth__sigpipe_unblock(&g);
    return rc;
}

int berth_store_eviction_read(berth_store_t *store, const char *key, berth_eviction_t *out,
                              berth_error_t *err)
{
    int rc = berth__group_key_check(key, err);
    if (rc < 0)
        return rc;
    BERTH__RETURN_GUARDED(berth__store_eviction_read(store, key, out, err));
}

int berth_store_eviction_forget(berth_store_t *store, const char *key, berth_error_t *err)
{
    int rc = berth__group_key_check(key, err);
    if (rc < 0)
        return rc;
    BERTH__RETURN_GUARDED(berth__store_eviction_forget(store, key, err));
}

int berth__group_key_check(const char *key, berth_error_t *err)
{
    size_t n = key == NULL ? 0 : strnlen(key, BERTH__KEY_MAX + 1);
    if (n == 0 || n > BERTH__KEY_MAX)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "key",
                                "a container group key has 1 to %u bytes", BERTH__KEY_MAX);
    return 0;
}

int berth_store_group_restart(berth_store_t *store, const char *key, berth_error_t *err)
{
    if (berth__group_key_check(key, err) < 0)
        return BERTH_EINVAL;
    BERTH__RETURN_GUARDED(berth__store_group_restart(store, key, err));
}

int berth_store_hosts_expire(berth_store_t *store, berth_store_expire_cb cb, void *data,
                             berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_hosts_expire(store, cb, data, err));
}

int berth_store_view_read(berth_store_t *store, const char *key, char **json,
                          berth_error_t *err)
{
    if (berth__group_key_check(key, err) < 0) {
        *json = NULL;
        return BERTH_EINVAL;
    }
    BERTH__RETURN_GUARDED(berth__store_view_read(store, key, json, err));
}

int berth_store_metrics_read(berth_store_t *store, const char *key, char **json,
                             berth_error_t *err)
{
    if (berth__group_key_check(key, err) < 0) {
        *json = NULL;
        return BERTH_EINVAL;
    }
    BERTH__RETURN_GUARDED(berth__store_metrics_read(store, key, json, err));
}

int berth_store_fsck(berth_store_t *store, berth_store_fsck_cb cb, void *data,
                     berth_error_t *err)
{
    BERTH__RETURN_GUARDED(berth__store_fsck(store, cb, data, err));
}

berth_engine_t *berth__store_engine(berth_store_t *s)
{
    return s->engine;
}

const berth_store_options_t *berth__store_options(const berth_store_t *s)
{
    return &s->opts;
}

void berth__store_endpoint(const berth_store_t *s, const char **host, int *port,
                           const char **url)
{
    *host = s->host;
    *port = s->port;
    *url = s->url;
}
