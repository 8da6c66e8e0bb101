/*
 * store.c: the Redis store: a cell's shared state, atomic commits, replicas.
 *
 * KEY SCHEMA.  Every key of cell C carries the hash tag {C}, so one cell is
 * one Redis Cluster slot and one connection reaches all of it:
 *
 *   berth:{C}:meta              HASH   schema -> "2" (BERTH_CELL_SCHEMA: the
 *                                      cell's layout; a schema-1 cell is
 *                                      upgraded when opened)
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
 *                                      op (place|release|restart), key, gen;
 *                                      read through the consumer group
 *                                      "agents" (hostlink.c), an entry is
 *                                      deleted once acknowledged
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
 *   berth:{C}:images:<host>     SET    images the host's runtime holds
 *   berth:{C}:ngroups           HASH   NGroup key -> NGroup record (JSON, ngroup.c:
 *                                      v, key, name, template, desired,
 *                                      maxUnavailable, zones, revision,
 *                                      deleting, metadata), written only by
 *                                      compare-and-set; its members are
 *                                      ordinary groups under the keys
 *                                      "<NGroup key>/<name>-<n>"
 *   berth:{C}:ngroupnotes       HASH   NGroup key -> the last reconcile step's
 *                                      note (zones without room, failures)
 *   berth:{C}:log               STREAM the change log: seq, then one or
 *                                      more ops, each op (sku|host|hostdel|
 *                                      place|release), name (host name or
 *                                      group key), rec (the new record, or "";
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
 *                                      document)), pool.c; written with plain
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
 * member then a place of the new group, ops every replica applies); an agent writes its heartbeat, its images and (through a
 * Function that checks the group is still its own) its views.
 * GPU SKUs and zones are stored by name: engine ids differ between engines.
 *
 * REPLICAS.  The engine a store binds mirrors the cell: store_open()
 * loads a snapshot read in one MULTI/EXEC, and every later call first
 * applies the log entries after the last one applied (sequence numbers must
 * follow one another; a gap -- the log was trimmed past this replica -- or
 * an entry that does not apply reloads the snapshot).  The engine must only
 * ever hold what the log says, in log order: a commit chooses its host in
 * the engine, rolls the choice back, commits, and lets the log bring the
 * change back, so the engine never holds an allocation Redis refused.  A
 * commit's reply names its log entry (seq and stream id): while that entry
 * is the very next one the replica needs, the replica applies the change
 * it committed straight from the reply -- the same change the entry holds,
 * at the same place in the log -- instead of reading it back; once another
 * writer's entry comes between, the rest is read from the log in order.
 *
 * DURABILITY.  A call returns success only once Redis has applied the
 * commit.  What survives a crash of Redis is its persistence's to decide:
 * Berth expects AOF.  With appendfsync everysec (Redis's default) a power
 * failure can lose up to about one second of acknowledged commits; with
 * appendfsync always none is lost, at a cost in throughput; without AOF,
 * everything since the last RDB snapshot is lost.  After such a loss the
 * cell is still consistent (each change was one atomic step) but older.
 *
 * This file must never report success for a commit whose reply it did not
 * read, never hold a redisReply or msgpack buffer past the call that made
 * it, and never let the engine disagree with the log it has applied.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "store.h"

#define KEY_MAX BERTH__KEY_MAX
#define SYNC_COUNT "1000"
#define SYNC_COUNT_N 1000u
#define URL_MAX 512u
#define FLUSH_EVERY 32u             /* batch commits buffered before a write */
#define KEYNAME_MAX BERTH__KEYNAME_MAX

/* ---- a small string map: group key -> generation and request ------------------ */

/* What the replica knows of a group (or, in the host map, of a host: only
 * `value`, its epoch, is used).  `mark` flags a group already chosen in the
 * current batch round. */
typedef struct entry {
    char *key;                      /* NULL: empty slot                     */
    uint32_t hash;
    uint32_t mark;
    uint64_t value;                 /* group generation / host epoch        */
    berth_request_t request;        /* the group's request as committed     */
} entry_t;

typedef struct map {
    entry_t *e;
    uint32_t cap, n;
} map_t;

static uint32_t str_hash(const char *s, size_t len)
{
    uint64_t h = berth__mix64(berth__fnv1a(BERTH__FNV_INIT, s, len));
    return (uint32_t)(h ^ (h >> 32));
}

static entry_t *map_find(const map_t *m, const char *key, size_t len)
{
    if (m->cap == 0)
        return NULL;
    uint32_t h = str_hash(key, len), mask = m->cap - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        entry_t *e = &m->e[i];
        if (e->key == NULL)
            return NULL;
        if (e->hash == h && strncmp(e->key, key, len) == 0 && e->key[len] == '\0')
            return e;
    }
}

static void map_insert_raw(map_t *m, const entry_t *src)
{
    uint32_t mask = m->cap - 1;
    uint32_t i = src->hash & mask;
    while (m->e[i].key != NULL)
        i = (i + 1) & mask;
    m->e[i] = *src;
    m->n++;
}

/* The entry for `key`, created (zeroed) when missing.  NULL: no memory, and
 * the map is unchanged. */
static entry_t *map_put(map_t *m, const char *key, size_t len)
{
    entry_t *e = map_find(m, key, len);
    if (e != NULL)
        return e;
    if ((m->n + 1) * 2 > m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 64;
        entry_t *es = calloc(cap, sizeof *es);
        if (es == NULL)
            return NULL;
        map_t old = *m;
        m->e = es;
        m->cap = cap;
        m->n = 0;
        for (uint32_t i = 0; i < old.cap; i++)
            if (old.e[i].key != NULL)
                map_insert_raw(m, &old.e[i]);
        free(old.e);
    }
    entry_t fresh;
    memset(&fresh, 0, sizeof fresh);
    fresh.key = malloc(len + 1);
    if (fresh.key == NULL)
        return NULL;
    memcpy(fresh.key, key, len);
    fresh.key[len] = '\0';
    fresh.hash = str_hash(key, len);
    map_insert_raw(m, &fresh);
    return map_find(m, key, len);
}

/* Removes `key` if present, shifting later entries of its probe run back. */
static void map_del(map_t *m, const char *key, size_t len)
{
    entry_t *e = map_find(m, key, len);
    if (e == NULL)
        return;
    free(e->key);
    uint32_t mask = m->cap - 1;
    uint32_t i = (uint32_t)(e - m->e);
    for (uint32_t j = (i + 1) & mask; m->e[j].key != NULL; j = (j + 1) & mask) {
        uint32_t home = m->e[j].hash & mask;
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->e[i] = m->e[j];
            i = j;
        }
    }
    m->e[i].key = NULL;
    m->n--;
}

static void map_clear(map_t *m)
{
    for (uint32_t i = 0; i < m->cap; i++) {
        free(m->e[i].key);
        m->e[i].key = NULL;
    }
    m->n = 0;
}

static void map_free(map_t *m)
{
    map_clear(m);
    free(m->e);
    m->e = NULL;
    m->cap = 0;
}

/* ---- the store ------------------------------------------------------------------ */

struct berth_store {
    berth_store_options_t opts;
    char url[URL_MAX];
    char cell[BERTH_NAME_MAX + 1];
    char host[URL_MAX];             /* TCP host, or the unix socket path    */
    int port;                       /* 0: unix socket                       */
    redisContext *c;
    berth_engine_t *engine;
    char prefix[96];                /* "berth:{CELL}:"                      */
    size_t prefix_len;
    char k_meta[128], k_hosts[128], k_groups[128], k_log[128], k_seq[128], k_skus[128];
    char k_documents[128];
    uint64_t seq;                   /* sequence of the last entry applied   */
    char last_id[64];               /* id of the last log entry applied     */
    bool stale;                     /* engine out of line: reload at next sync */
    map_t groups;                   /* key -> generation, request           */
    map_t hosts;                    /* name -> epoch                        */
    uint32_t round;                 /* batch round counter, for entry.mark  */
    msgpack_sbuffer buf;            /* record encoding, reused              */
    msgpack_sbuffer buf_log;        /* the same record without its document,
                                     * for the change log                   */
    berth__group_record_t *rec;     /* group record scratch, reused         */
    char maxlen[24];                /* log_max_len as text                  */
};

static int redis_unavailable(berth_store_t *s, berth_error_t *err, const char *what)
{
    const char *why = s->c != NULL && s->c->err ? s->c->errstr : "connection lost";
    return berth__error_set(err, BERTH_EIO, "RedisUnavailable", "",
                            "Redis at %s is unavailable while %s: %s", s->url, what, why);
}

static int redis_error(berth_error_t *err, const redisReply *r, const char *what)
{
    return berth__error_set(err, BERTH_EIO, "RedisError", "", "Redis refused %s: %.*s", what,
                            (int)(r->len > 400 ? 400 : r->len), r->str);
}

static void key_name(const berth_store_t *s, char *out, size_t cap, const char *kind,
                     const char *name)
{
    snprintf(out, cap, "%s%s%s", s->prefix, kind, name);
}

/* Opens a new connection to s->host/s->port, replacing the old one. */
static int store_connect(berth_store_t *s, berth_error_t *err)
{
    struct timeval tv = {(time_t)(s->opts.timeout_ms / 1000),
                         (suseconds_t)(s->opts.timeout_ms % 1000) * 1000};
    if (s->c != NULL) {
        redisFree(s->c);
        s->c = NULL;
    }
    redisContext *c = s->port == 0 ? redisConnectUnixWithTimeout(s->host, tv)
                                   : redisConnectWithTimeout(s->host, s->port, tv);
    if (c == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a Redis connection");
    if (c->err) {
        int rc = berth__error_set(err, BERTH_EIO, "RedisUnavailable", "url",
                                  "cannot connect to Redis at %s: %s", s->url, c->errstr);
        redisFree(c);
        return rc;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        int rc = berth__error_set(err, BERTH_EIO, "RedisUnavailable", "url",
                                  "cannot set the Redis timeout on %s: %s", s->url, c->errstr);
        redisFree(c);
        return rc;
    }
    s->c = c;
    return 0;
}

static int functions_load(berth_store_t *s, berth_error_t *err)
{
    redisReply *r = redisCommand(s->c, "FUNCTION LOAD REPLACE %s", berth__functions_source);
    if (r == NULL)
        return redis_unavailable(s, err, "loading Berth's Redis Functions");
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR)
        rc = redis_error(err, r, "Berth's Redis Functions");
    freeReplyObject(r);
    return rc;
}

/* Reads "MOVED <slot> <ip>:<port>" and points the store at that node,
 * without connecting.  Returns 0 or a negative code. */
static int redirect(berth_store_t *s, const redisReply *r, berth_error_t *err)
{
    char target[256];
    unsigned slot;
    if (sscanf(r->str, "MOVED %u %255s", &slot, target) != 2)
        return redis_error(err, r, "a command (unreadable redirection)");
    char *colon = strrchr(target, ':');
    if (colon == NULL)
        return redis_error(err, r, "a command (unreadable redirection)");
    *colon = '\0';
    long port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535)
        return redis_error(err, r, "a command (unreadable redirection)");
    snprintf(s->host, sizeof s->host, "%s", target);
    s->port = (int)port;
    snprintf(s->url, sizeof s->url, "redis://%s:%ld", target, port);
    return 0;
}

/* Follows "MOVED <slot> <ip>:<port>": connects to that node and loads the
 * functions there.  Returns 0 or a negative code. */
static int follow_moved(berth_store_t *s, const redisReply *r, berth_error_t *err)
{
    int rc = redirect(s, r, err);
    if (rc < 0)
        return rc;
    rc = store_connect(s, err);
    if (rc < 0)
        return rc;
    return functions_load(s, err);
}

static bool is_moved(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0;
}

static bool is_no_function(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strstr(r->str, "Function not found") != NULL;
}

/* Runs one command and returns its reply (free with freeReplyObject), or
 * NULL with *rc set.  Follows a Cluster redirection, reloads the functions
 * when Redis lost them (a restart without persistence, FUNCTION FLUSH) and
 * retries once.  A lost connection is reconnected and the command retried
 * only when `commit` is false: a commit whose reply was lost may or may not
 * have been applied, and must never be reported either way. */
static redisReply *command(berth_store_t *s, int argc, const char **argv, const size_t *lens,
                           bool commit, const char *what, berth_error_t *err, int *rc)
{
    bool reconnected = false, redirected = false, reloaded = false;
    for (;;) {
        redisReply *r = s->c != NULL ? redisCommandArgv(s->c, argc, argv, lens) : NULL;
        if (r == NULL) {
            if (commit || reconnected) {
                *rc = redis_unavailable(s, err, what);
                /* The connection is unusable now; the next call reconnects. */
                if (s->c != NULL && s->c->err && store_connect(s, NULL) < 0)
                    s->c = NULL;
                s->stale = s->stale || commit;
                return NULL;
            }
            reconnected = true;
            if ((*rc = store_connect(s, err)) < 0)
                return NULL;
            continue;
        }
        if (is_moved(r) && !redirected) {
            redirected = true;
            *rc = follow_moved(s, r, err);
            freeReplyObject(r);
            if (*rc < 0)
                return NULL;
            continue;
        }
        if (is_no_function(r) && !reloaded) {
            reloaded = true;
            freeReplyObject(r);
            if ((*rc = functions_load(s, err)) < 0)
                return NULL;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            *rc = redis_error(err, r, what);
            freeReplyObject(r);
            return NULL;
        }
        *rc = 0;
        return r;
    }
}

/* ---- records <-> engine ------------------------------------------------------------ */

/* Copies borrowed bytes into a NUL-terminated buffer of `cap`; false when
 * they do not fit. */
static bool bytes_cstr(berth__bytes_t b, char *out, size_t cap)
{
    if (b.ptr == NULL || b.len >= cap)
        return false;
    memcpy(out, b.ptr, b.len);
    out[b.len] = '\0';
    return true;
}

static berth__bytes_t cstr_bytes(const char *s)
{
    return s != NULL && s[0] != '\0' ? (berth__bytes_t){s, strlen(s)}
                                     : (berth__bytes_t){NULL, 0};
}

/* Strings of a host description decoded from a record. */
typedef struct host_strings {
    char name[BERTH_NAME_MAX + 1];
    char sku[BERTH_GPU_SKU_NAME_MAX + 1];
    char zone[BERTH_NAME_MAX + 1];
} host_strings_t;

static int host_from_record(const berth__host_record_t *r, berth_host_t *d, host_strings_t *hs,
                            berth_error_t *err)
{
    memset(d, 0, sizeof *d);
    if (!bytes_cstr(r->name, hs->name, sizeof hs->name))
        return berth__error_set(err, BERTH_EINVAL, "CorruptRecord", "name",
                                "host record has no usable name");
    d->name = hs->name;
    d->cores = r->cores;
    d->memory_mib = r->memory_mib;
    d->gpu_count = r->gpu_count;
    d->gpu_sku = bytes_cstr(r->gpu_sku, hs->sku, sizeof hs->sku) ? hs->sku : NULL;
    d->os = (berth_os_t)r->os;
    d->os_build = r->os_build;
    d->zone = bytes_cstr(r->zone, hs->zone, sizeof hs->zone) ? hs->zone : NULL;
    d->features = r->features;
    d->state = (berth_host_state_t)r->state;
    return 0;
}

/* Turns a group record into this engine's request (zone and SKU names to
 * ids, registering zones the engine has not seen). */
static int request_from_record(berth_engine_t *engine, const berth__group_record_t *r,
                               berth_request_t *req, berth_error_t *err)
{
    memset(req, 0, sizeof *req);
    req->demand.millicores = r->millicores;
    req->demand.requested_millicores = r->requested_millicores;
    req->demand.memory_mib = r->memory_mib;
    req->demand.gpu_count = r->gpu_count;
    if (r->gpu_count > 0) {
        char sku[BERTH_GPU_SKU_NAME_MAX + 1];
        uint32_t id;
        if (!bytes_cstr(r->gpu_sku, sku, sizeof sku) ||
            berth_engine_gpu_sku_find(engine, sku, &id) == NULL)
            return berth__error_set(err, BERTH_EINVAL, "InvalidGpuSku", "gpu_sku",
                                    "container group '%.*s' uses GPU SKU '%.*s', which this "
                                    "engine's table lacks", (int)r->key.len, r->key.ptr,
                                    (int)r->gpu_sku.len, r->gpu_sku.ptr ? r->gpu_sku.ptr : "");
        req->demand.gpu_sku = id;
    }
    req->os = (berth_os_t)r->os;
    req->os_build = r->os_build;
    for (size_t i = 0; i < r->nzones; i++) {
        char zone[BERTH_NAME_MAX + 1];
        bytes_cstr(r->zones[i], zone, sizeof zone);
        int id = berth_engine_zone_id(engine, zone);
        if (id < 0)
            return berth__error_set(err, id, "TooManyZones", "zones",
                                    "zone '%s' does not fit the engine's zone table", zone);
        req->zone_mask |= 1ull << id;
    }
    req->sku = (berth_sku_t)r->sku;
    req->priority = (berth_priority_t)r->priority;
    req->restart_policy = (berth_restart_policy_t)r->restart;
    req->cpu_digest = r->cpu_digest;
    req->memory_digest = r->memory_digest;
    req->gpu_digest = r->gpu_digest;
    req->ports_digest = r->ports_digest;
    return 0;
}

/* Fills a group record from a request; strings borrow from the engine, the
 * key and host arguments. */
static void record_from_request(berth_engine_t *engine, const char *key, const char *host,
                                uint64_t generation, const berth_request_t *req,
                                const char *spec, berth__group_record_t *r)
{
    const berth__config_t *cfg = berth__engine_config(engine);
    r->key = cstr_bytes(key);
    r->host = cstr_bytes(host);
    r->generation = generation;
    r->millicores = req->demand.millicores;
    r->requested_millicores = req->demand.requested_millicores;
    r->memory_mib = req->demand.memory_mib;
    r->gpu_count = req->demand.gpu_count;
    r->gpu_sku = req->demand.gpu_count > 0
        ? cstr_bytes(berth_engine_gpu_sku_name(engine, req->demand.gpu_sku))
        : (berth__bytes_t){NULL, 0};
    r->os = (uint32_t)req->os;
    r->os_build = req->os_build;
    r->nzones = 0;
    for (unsigned z = 0; z < 64 && z < cfg->nzones; z++)
        if ((req->zone_mask >> z) & 1u)
            r->zones[r->nzones++] = cstr_bytes(cfg->zones[z]);
    r->sku = (uint32_t)req->sku;
    r->priority = (uint32_t)req->priority;
    r->restart = (uint32_t)req->restart_policy;
    r->cpu_digest = req->cpu_digest;
    r->memory_digest = req->memory_digest;
    r->gpu_digest = req->gpu_digest;
    r->ports_digest = req->ports_digest;
    r->spec = spec != NULL ? (berth__bytes_t){spec, strlen(spec)} : (berth__bytes_t){NULL, 0};
    r->runtime = (berth__bytes_t){NULL, 0}; /* the group's own runtime group */
    r->runtime_generation = r->runtime_digest = 0;
}

/* ---- applying records and log entries to the engine ---------------------------------- */

static int apply_host(berth_store_t *s, const char *data, size_t len, bool initial,
                      berth_error_t *err)
{
    berth__host_record_t r;
    int rc = berth__host_record_decode(data, len, &r, err);
    if (rc < 0)
        return rc;
    berth_host_t d;
    host_strings_t hs;
    if ((rc = host_from_record(&r, &d, &hs, err)) < 0)
        return rc;
    entry_t *e = map_put(&s->hosts, d.name, strlen(d.name));
    if (e == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a host");
    if (initial)
        d.state = BERTH_HOST_READY; /* set after the groups: a down host takes none */
    if (berth_host_get(s->engine, d.name, NULL, NULL) == 0)
        rc = berth_host_update(s->engine, &d, err);
    else
        rc = berth_host_add(s->engine, &d, err);
    if (rc < 0) {
        map_del(&s->hosts, d.name, strlen(d.name));
        return rc;
    }
    e->value = r.epoch;
    return 0;
}

static int apply_group(berth_store_t *s, const char *key, const char *host, uint64_t gen,
                       const berth_request_t *req, berth_error_t *err);

/* Adds (or replaces) a GPU SKU of the cell in the engine's table. */
static int apply_sku(berth_store_t *s, const char *data, size_t len, berth_error_t *err)
{
    berth_gpu_sku_t sku;
    int rc = berth__sku_record_decode(data, len, &sku, err);
    if (rc < 0)
        return rc;
    return berth_engine_gpu_sku_add(s->engine, &sku, err);
}

static int apply_place(berth_store_t *s, const char *data, size_t len, berth_error_t *err)
{
    berth__group_record_t *r = s->rec;
    int rc = berth__group_record_decode(data, len, r, err);
    char key[KEY_MAX + 1], host[BERTH_NAME_MAX + 1];
    berth_request_t req;
    if (rc == 0 && (!bytes_cstr(r->key, key, sizeof key) ||
                    !bytes_cstr(r->host, host, sizeof host)))
        rc = berth__error_set(err, BERTH_EINVAL, "CorruptRecord", "key",
                              "group record key or host is too long");
    if (rc == 0)
        rc = request_from_record(s->engine, r, &req, err);
    uint64_t gen = r->generation;
    if (rc < 0)
        return rc;
    return apply_group(s, key, host, gen, &req, err);
}

/* Records the group `key` at generation `gen` on `host` with request *req,
 * in the engine and in the group map, as a log entry placing it says. */
static int apply_group(berth_store_t *s, const char *key, const char *host, uint64_t gen,
                       const berth_request_t *req, berth_error_t *err)
{
    int rc;
    size_t klen = strlen(key);
    entry_t *e = map_put(&s->groups, key, klen);
    if (e == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a group");
    rc = berth_request_assign(s->engine, key, req, host, NULL, err);
    if (rc < 0) {
        if (e->value == 0)
            map_del(&s->groups, key, klen);
        return rc;
    }
    e->value = gen;
    e->request = *req;
    return 0;
}

static int apply_release(berth_store_t *s, const char *key, size_t len, berth_error_t *err)
{
    char k[KEY_MAX + 1];
    if (!bytes_cstr((berth__bytes_t){key, len}, k, sizeof k))
        return berth__error_set(err, BERTH_EINVAL, "CorruptLog", "", "release of a bad key");
    int rc = berth_group_release(s->engine, k, err);
    if (rc < 0)
        return rc;
    map_del(&s->groups, k, len);
    return 0;
}

/* Finds a field of a stream entry's [field, value, ...] array. */
const redisReply *berth__reply_field(const redisReply *fields, const char *name)
{
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        if (f->type == REDIS_REPLY_STRING && strcmp(f->str, name) == 0)
            return fields->element[i + 1];
    }
    return NULL;
}

static bool reply_u64(const redisReply *r, uint64_t *out)
{
    if (r == NULL)
        return false;
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        *out = (uint64_t)r->integer;
        return true;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(r->str, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* A change-log entry's ops: an entry is 'seq' (its first op's number),
 * then for each op, in order, 'op', 'name' and 'rec' (a batch of
 * placements logs all of its ops in one entry; every other change one).
 * Sets *first and *count (0 when the entry is malformed) and points ops at
 * the first 'op' field's index in fields. */
static void entry_ops(const redisReply *fields, uint64_t *first, size_t *count, size_t *ops)
{
    *count = 0;
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY || fields->elements < 8 ||
        (fields->elements - 2) % 6 != 0 || fields->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(fields->element[0]->str, "seq") != 0 || !reply_u64(fields->element[1], first))
        return;
    for (size_t i = 2; i < fields->elements; i += 6) {
        static const char *const names[] = {"op", "name", "rec"};
        for (size_t k = 0; k < 3; k++) {
            const redisReply *f = fields->element[i + 2 * k], *v = fields->element[i + 2 * k + 1];
            if (f->type != REDIS_REPLY_STRING || strcmp(f->str, names[k]) != 0 ||
                v->type != REDIS_REPLY_STRING)
                return;
        }
    }
    *ops = 2;
    *count = (fields->elements - 2) / 6;
}

/* Applies one op of a change-log entry (the 'op' field at fields[at]). */
static int apply_entry(berth_store_t *s, const redisReply *fields, size_t at, berth_error_t *err)
{
    const redisReply *op = fields->element[at + 1];
    const redisReply *name = fields->element[at + 3];
    const redisReply *rec = fields->element[at + 5];
    if (strcmp(op->str, "host") == 0)
        return apply_host(s, rec->str, rec->len, false, err);
    if (strcmp(op->str, "sku") == 0)
        return apply_sku(s, rec->str, rec->len, err);
    if (strcmp(op->str, "place") == 0)
        return apply_place(s, rec->str, rec->len, err);
    if (strcmp(op->str, "release") == 0)
        return apply_release(s, name->str, name->len, err);
    if (strcmp(op->str, "hostdel") == 0) {
        int rc = berth_host_remove(s->engine, name->str, err);
        if (rc == 0)
            map_del(&s->hosts, name->str, name->len);
        return rc;
    }
    return berth__error_set(err, BERTH_EINVAL, "CorruptLog", "",
                            "a change-log entry has an unknown op '%.40s'", op->str);
}


/* ---- snapshot ------------------------------------------------------------------------ */

/* Sends MULTI, the `n` commands and EXEC as one pipeline and returns EXEC's
 * reply (an array of the n replies), following a redirection once. */
static redisReply *transaction(berth_store_t *s, size_t n, const char *const *const *argvs,
                               const int *argcs, const char *what, berth_error_t *err, int *rc)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->c == NULL && (*rc = store_connect(s, err)) < 0)
            return NULL;
        redisAppendCommand(s->c, "MULTI");
        for (size_t i = 0; i < n; i++)
            redisAppendCommandArgv(s->c, argcs[i], (const char **)argvs[i], NULL);
        redisAppendCommand(s->c, "EXEC");
        redisReply *moved = NULL, *exec = NULL;
        bool lost = false;
        for (size_t i = 0; i < n + 2; i++) {
            void *r = NULL;
            if (redisGetReply(s->c, &r) != REDIS_OK || r == NULL) {
                lost = true;
                break;
            }
            redisReply *rr = r;
            if (i == n + 1) {
                exec = rr;
            } else if (moved == NULL && is_moved(rr)) {
                moved = rr;
            } else {
                freeReplyObject(rr);
            }
        }
        if (lost) {
            freeReplyObject(moved);
            if (attempt == 0 && store_connect(s, NULL) == 0)
                continue;
            *rc = redis_unavailable(s, err, what);
            return NULL;
        }
        if (moved != NULL) {
            freeReplyObject(exec);
            if (attempt == 0) {
                *rc = follow_moved(s, moved, err);
                freeReplyObject(moved);
                if (*rc < 0)
                    return NULL;
                continue;
            }
            *rc = redis_error(err, moved, what);
            freeReplyObject(moved);
            return NULL;
        }
        if (exec->type != REDIS_REPLY_ARRAY || exec->elements != n) {
            *rc = exec->type == REDIS_REPLY_ERROR
                ? redis_error(err, exec, what)
                : berth__error_set(err, BERTH_EIO, "RedisError", "",
                                   "Redis aborted the transaction while %s", what);
            freeReplyObject(exec);
            return NULL;
        }
        for (size_t i = 0; i < n; i++)
            if (exec->element[i]->type == REDIS_REPLY_ERROR) {
                *rc = redis_error(err, exec->element[i], what);
                freeReplyObject(exec);
                return NULL;
            }
        *rc = 0;
        return exec;
    }
    *rc = redis_unavailable(s, err, what);
    return NULL;
}

/* Reads the snapshot (hosts, groups, seq, newest log entry, GPU SKUs) in one
 * MULTI/EXEC, so it is one point of the log. */
static redisReply *snapshot_read(berth_store_t *s, berth_error_t *err, int *rc)
{
    const char *a0[] = {"HGETALL", s->k_hosts};
    const char *a1[] = {"HGETALL", s->k_groups};
    const char *a2[] = {"GET", s->k_seq};
    const char *a3[] = {"XREVRANGE", s->k_log, "+", "-", "COUNT", "1"};
    const char *a4[] = {"HGETALL", s->k_skus};
    const char *const *argvs[] = {a0, a1, a2, a3, a4};
    const int argcs[] = {2, 2, 2, 6, 2};
    return transaction(s, 5, argvs, argcs, "reading the cell's snapshot", err, rc);
}

/* The seq field of the newest log entry in an XREVRANGE reply, and its id. */
static bool newest_entry(const redisReply *x, uint64_t *seq, const char **id)
{
    if (x->type != REDIS_REPLY_ARRAY || x->elements == 0)
        return false;
    const redisReply *e = x->element[0];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return false;
    *id = e->element[0]->str;
    uint64_t first;
    size_t count, at;
    entry_ops(e->element[1], &first, &count, &at);
    if (count == 0)
        return false;
    *seq = first + count - 1;       /* the entry's last op */
    return true;
}

/* Empties the engine and loads the cell's snapshot into it.  On failure the
 * engine is left empty and the store marked stale. */
static int snapshot_apply(berth_store_t *s, const redisReply *x, berth_error_t *err);

static int snapshot_load(berth_store_t *s, berth_error_t *err)
{
    berth_engine_reset(s->engine);
    map_clear(&s->groups);
    map_clear(&s->hosts);
    s->stale = true;
    int rc;
    redisReply *x = snapshot_read(s, err, &rc);
    if (x == NULL)
        return rc;
    rc = snapshot_apply(s, x, err);
    freeReplyObject(x);
    return rc;
}

/* Loads the snapshot `x` (snapshot_read()'s EXEC reply: five replies) into
 * the emptied engine.  On failure the engine is left empty and the store
 * marked stale. */
static int snapshot_apply(berth_store_t *s, const redisReply *x, berth_error_t *err)
{
    berth_engine_reset(s->engine);
    map_clear(&s->groups);
    map_clear(&s->hosts);
    s->stale = true;
    int rc = 0;
    const redisReply *hosts = x->element[0], *groups = x->element[1];
    uint64_t seq = 0, newest = 0;
    const char *id = "0-0";
    if (x->element[2]->type != REDIS_REPLY_NIL && !reply_u64(x->element[2], &seq))
        rc = berth__error_set(err, BERTH_EIO, "CorruptCell", "", "the cell's seq is not a number");
    if (rc == 0 && newest_entry(x->element[3], &newest, &id) && newest != seq)
        rc = berth__error_set(err, BERTH_EIO, "CorruptCell", "",
                              "the change log ends at seq %llu but the counter is %llu",
                              (unsigned long long)newest, (unsigned long long)seq);
    /* SKUs first: hosts name them. */
    const redisReply *skus = x->element[4];
    for (size_t i = 1; rc == 0 && i < skus->elements; i += 2)
        rc = apply_sku(s, skus->element[i]->str, skus->element[i]->len, err);
    for (size_t i = 1; rc == 0 && i < hosts->elements; i += 2)
        rc = apply_host(s, hosts->element[i]->str, hosts->element[i]->len, true, err);
    for (size_t i = 1; rc == 0 && i < groups->elements; i += 2)
        rc = apply_place(s, groups->element[i]->str, groups->element[i]->len, err);
    /* Host states last: a down host takes no assignment, even a replayed one. */
    for (size_t i = 1; rc == 0 && i < hosts->elements; i += 2) {
        berth__host_record_t r;
        char name[BERTH_NAME_MAX + 1];
        berth__host_record_decode(hosts->element[i]->str, hosts->element[i]->len, &r, NULL);
        bytes_cstr(r.name, name, sizeof name);
        if (r.state != BERTH_HOST_READY)
            rc = berth_host_set_state(s->engine, name, (berth_host_state_t)r.state, err);
    }
    if (rc == 0) {
        s->seq = seq;
        snprintf(s->last_id, sizeof s->last_id, "%s", id);
        s->stale = false;
    } else {
        berth_engine_reset(s->engine);
        map_clear(&s->groups);
        map_clear(&s->hosts);
        if (rc != BERTH_EIO && rc != BERTH_ENOMEM)
            rc = berth__error_set(err, BERTH_EIO, err ? err->name : "CorruptCell", "",
                                  "the cell's snapshot does not load: %s",
                                  err ? err->message : "a record is unreadable");
    }
    return rc;
}

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

/* Parses the URL into s->host and s->port. */
static int url_parse(berth_store_t *s, const char *url, berth_error_t *err)
{
    if (url == NULL || strlen(url) >= URL_MAX)
        return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions", "url",
                                "a Redis URL is redis://HOST:PORT or unix:///PATH");
    snprintf(s->url, sizeof s->url, "%s", url);
    if (strncmp(url, "unix://", 7) == 0) {
        if (url[7] != '/')
            return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions", "url",
                                    "'%s': a unix socket URL is unix:///ABSOLUTE/PATH", url);
        snprintf(s->host, sizeof s->host, "%s", url + 7);
        s->port = 0;
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0 || url[8] == '\0')
        return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions", "url",
                                "'%s' is not redis://HOST:PORT or unix:///PATH", url);
    const char *hp = url + 8;
    const char *colon = strrchr(hp, ':');
    long port = 6379;
    size_t hlen = strlen(hp);
    if (colon != NULL) {
        char *end;
        port = strtol(colon + 1, &end, 10);
        if (*end != '\0' && *end != '/')
            port = -1;
        hlen = (size_t)(colon - hp);
    } else if (hlen > 0 && hp[hlen - 1] == '/') {
        hlen--;
    }
    if (port <= 0 || port > 65535 || hlen == 0)
        return berth__error_set(err, BERTH_EINVAL, "InvalidStoreOptions", "url",
                                "'%s' has no valid host and port", url);
    memcpy(s->host, hp, hlen);
    s->host[hlen] = '\0';
    s->port = (int)port;
    return 0;
}

/* Creates the cell's meta record when new and checks its schema
 * (BERTH_CELL_SCHEMA), upgrading a schema-1 cell in place (berth.h). */
static int cell_prepare(berth_store_t *s, berth_error_t *err)
{
    char schema[16];
    snprintf(schema, sizeof schema, "%d", BERTH_CELL_SCHEMA);
    const char *set[] = {"HSETNX", s->k_meta, "schema", schema};
    int rc;
    redisReply *r = command(s, 4, set, NULL, false, "creating the cell", err, &rc);
    if (r == NULL)
        return rc;
    freeReplyObject(r);
    const char *get[] = {"HGET", s->k_meta, "schema"};
    r = command(s, 3, get, NULL, false, "reading the cell's schema", err, &rc);
    if (r == NULL)
        return rc;
    uint64_t v = 0;
    bool known = reply_u64(r, &v);
    if (known && v == 1) {
        const char *up[] = {"HSET", s->k_meta, "schema", schema};
        redisReply *u = command(s, 4, up, NULL, false, "upgrading the cell's schema", err, &rc);
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
static int store_open(const berth_store_options_t *opts, berth_engine_t *engine, bool bare,
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
    int rc = url_parse(s, o.url, err);
    if (rc < 0) {
        berth_store_close(s);
        return rc;
    }
    s->opts.url = NULL;
    snprintf(s->cell, sizeof s->cell, "%s", o.cell);
    s->opts.cell = s->cell;
    s->prefix_len = (size_t)snprintf(s->prefix, sizeof s->prefix, "berth:{%s}:", s->cell);
    key_name(s, s->k_meta, sizeof s->k_meta, "meta", "");
    key_name(s, s->k_hosts, sizeof s->k_hosts, "hosts", "");
    key_name(s, s->k_groups, sizeof s->k_groups, "groups", "");
    key_name(s, s->k_documents, sizeof s->k_documents, "documents", "");
    key_name(s, s->k_log, sizeof s->k_log, "log", "");
    key_name(s, s->k_seq, sizeof s->k_seq, "seq", "");
    key_name(s, s->k_skus, sizeof s->k_skus, "skus", "");
    snprintf(s->maxlen, sizeof s->maxlen, "%u", o.log_max_len);
    snprintf(s->last_id, sizeof s->last_id, "0-0");
    if ((rc = store_connect(s, err)) < 0 || (rc = functions_load(s, err)) < 0 ||
        (rc = cell_prepare(s, err)) < 0 || (!bare && (rc = snapshot_load(s, err)) < 0)) {
        berth_store_close(s);
        return rc;
    }
    /* The replica holds only what the log says: it plans preemptions and
     * commits them through Redis (preempt_commit()), never on its own. */
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
    map_free(&store->groups);
    map_free(&store->hosts);
    msgpack_sbuffer_destroy(&store->buf);
    msgpack_sbuffer_destroy(&store->buf_log);
    free(store->rec);
    free(store);
}

/* ---- sync -------------------------------------------------------------------------- */

/* Applies the entries of one XRANGE reply on the change log, in order.
 * Returns 0, or 1 when the replica must reload its snapshot (a gap: the log
 * was trimmed past it; an entry that does not apply; a malformed reply).
 * *n receives the number of entries the reply held. */
static int log_apply(berth_store_t *s, const redisReply *r, size_t *n)
{
    *n = 0;
    if (r->type != REDIS_REPLY_ARRAY)
        return 1;
    *n = r->elements;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        uint64_t first = 0;
        size_t count = 0, at = 0;
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            return 1;
        entry_ops(e->element[1], &first, &count, &at);
        if (count == 0)
            return 1;
        for (size_t k = 0; k < count; k++, at += 6) {
            uint64_t seq = first + k;
            if (seq <= s->seq)
                continue;           /* applied already (the snapshot, or our own commit) */
            /* A gap means the log was trimmed past this replica. */
            if (seq != s->seq + 1 || apply_entry(s, e->element[1], at, NULL) < 0)
                return 1;
            s->seq = seq;
        }
        snprintf(s->last_id, sizeof s->last_id, "%s", e->element[0]->str);
    }
    return 0;
}

static int store_sync(berth_store_t *store, berth_error_t *err)
{
    berth_store_t *s = store;
    if (s->stale)
        return snapshot_load(s, err);
    for (;;) {
        char start[80];
        snprintf(start, sizeof start, "(%s", s->last_id);
        const char *argv[] = {"XRANGE", s->k_log, start, "+", "COUNT", SYNC_COUNT};
        int rc;
        redisReply *r = command(s, 6, argv, NULL, false, "reading the change log", err, &rc);
        if (r == NULL)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return berth__error_set(err, BERTH_EIO, "RedisError", "",
                                    "XRANGE on the change log answered no array");
        }
        size_t n;
        bool reload = log_apply(s, r, &n) != 0;
        freeReplyObject(r);
        if (reload)
            return snapshot_load(s, err);
        if (n < SYNC_COUNT_N)
            return 0;
    }
}

/* ---- Function calls ------------------------------------------------------------------- */

/* The outcome of a Function call: 1 applied, 0 refused (reason in
 * `reason`, message in `message`), or a negative code. */
static int fcall_result(const redisReply *r, char *reason, size_t rcap, char *message,
                        size_t mcap, berth_error_t *err)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return berth__error_set(err, BERTH_EIO, "RedisError", "",
                                "a Berth Function answered an unexpected reply");
    if (r->element[0]->integer == 1)
        return 1;
    snprintf(reason, rcap, "%s",
             r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "");
    snprintf(message, mcap, "%s",
             r->elements > 2 && r->element[2]->type == REDIS_REPLY_STRING
                 ? r->element[2]->str : "");
    return 0;
}

/* Calls a Function that changes the cell, then syncs.  Returns 1 (applied),
 * 0 (refused: reason/message filled), or a negative code. */
static int fcall(berth_store_t *s, int argc, const char **argv, const size_t *lens,
                 const char *what, char *reason, char *message, size_t mcap,
                 berth_error_t *err)
{
    int rc;
    redisReply *r = command(s, argc, argv, lens, true, what, err, &rc);
    if (r == NULL)
        return rc;
    rc = fcall_result(r, reason, 32, message, mcap, err);
    freeReplyObject(r);
    if (rc < 0)
        return rc;
    int src = store_sync(s, rc == 1 ? err : NULL);
    /* Applied in Redis: report success even when catching up failed; the
     * next call reloads. */
    (void)src;
    return rc;
}

/* ---- hosts ------------------------------------------------------------------------------ */

static int store_gpu_sku_put(berth_store_t *store, const berth_gpu_sku_t *sku,
                             berth_error_t *err)
{
    berth_store_t *s = store;
    int rc = store_sync(s, err);
    if (rc < 0)
        return rc;
    if (sku == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidGpuSku", "", "no GPU SKU given");
    /* Check it with the engine's rules on a copy of its tables: the engine
     * itself only changes when the log brings the SKU back. */
    berth__config_t *cfg = berth__engine_config(s->engine);
    berth__config_t scratch = *cfg;
    if ((rc = berth__config_sku_add(&scratch, sku, err)) < 0)
        return rc;
    msgpack_sbuffer_clear(&s->buf);
    if (berth__sku_record_encode(&s->buf, sku) < 0)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a record");
    size_t nlen = strnlen(sku->name, sizeof sku->name);
    const char *argv[] = {"FCALL", "berth_sku_put", "3", s->k_skus, s->k_log, s->k_seq,
                          sku->name, s->buf.data, s->maxlen};
    size_t lens[] = {5, 13, 1, strlen(s->k_skus), strlen(s->k_log), strlen(s->k_seq),
                     nlen, s->buf.size, strlen(s->maxlen)};
    char reason[32], message[256];
    rc = fcall(s, 9, argv, lens, "putting a GPU SKU", reason, message, sizeof message, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return berth__error_set(err, BERTH_EINVAL, "InvalidGpuSku", "name", "%s", message);
    return 0;
}

static int store_host_put(berth_store_t *store, const berth_host_t *host, berth_error_t *err)
{
    berth_store_t *s = store;
    int rc = store_sync(s, err);
    if (rc < 0)
        return rc;
    /* The cell records the SKU a host names (unchanged records log nothing),
     * so that every replica can load the host, whatever its built-in table. */
    const berth_gpu_sku_t *sku = host != NULL && host->gpu_count > 0
        ? berth_engine_gpu_sku_find(s->engine, host->gpu_sku, NULL) : NULL;
    if (sku != NULL) {
        berth_gpu_sku_t copy = *sku;
        if ((rc = store_gpu_sku_put(s, &copy, err)) < 0)
            return rc;
    }
    if (host == NULL || !berth__host_name_is_valid(host->name))
        return berth__error_set(err, BERTH_EINVAL, "InvalidHostName", "name",
                                "a host name has 1 to %d characters among letters, digits, "
                                "'-', '_' and '.'", BERTH_NAME_MAX);
    /* Check the description with the engine's own rules by applying it and
     * undoing it: the engine must only hold what the log says. */
    berth_host_t old;
    host_strings_t hs;
    bool exists = berth_host_get(s->engine, host->name, &old, NULL) == 0;
    if (exists) {
        snprintf(hs.name, sizeof hs.name, "%s", old.name);
        snprintf(hs.sku, sizeof hs.sku, "%s", old.gpu_sku ? old.gpu_sku : "");
        snprintf(hs.zone, sizeof hs.zone, "%s", old.zone ? old.zone : "");
        old.name = hs.name;
        old.gpu_sku = old.gpu_sku ? hs.sku : NULL;
        old.zone = old.zone ? hs.zone : NULL;
        rc = berth_host_update(s->engine, host, err);
        if (rc == 0 && berth_host_update(s->engine, &old, NULL) < 0)
            s->stale = true;
    } else {
        rc = berth_host_add(s->engine, host, err);
        if (rc == 0 && berth_host_remove(s->engine, host->name, NULL) < 0)
            s->stale = true;
    }
    if (rc < 0)
        return rc == BERTH_ENOENT || rc == BERTH_EEXIST ? BERTH_EIO : rc;
    berth__host_record_t r;
    memset(&r, 0, sizeof r);
    r.name = cstr_bytes(host->name);
    r.cores = host->cores;
    r.memory_mib = host->memory_mib;
    r.gpu_count = host->gpu_count;
    r.gpu_sku = host->gpu_count > 0 ? cstr_bytes(host->gpu_sku) : (berth__bytes_t){NULL, 0};
    r.os = (uint32_t)host->os;
    r.os_build = host->os_build;
    r.zone = cstr_bytes(host->zone);
    r.features = host->features;
    r.state = (uint32_t)host->state;
    msgpack_sbuffer_clear(&s->buf);
    if (berth__host_record_encode(&s->buf, &r) < 0)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a record");
    const char *argv[] = {"FCALL", "berth_host_put", "3", s->k_hosts, s->k_log, s->k_seq,
                          host->name, s->buf.data, s->maxlen};
    size_t lens[] = {5, 14, 1, strlen(s->k_hosts), strlen(s->k_log), strlen(s->k_seq),
                     strlen(host->name), s->buf.size, strlen(s->maxlen)};
    char reason[32], message[256];
    rc = fcall(s, 9, argv, lens, "putting a host", reason, message, sizeof message, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return berth__error_set(err, strcmp(reason, "busy") == 0 ? BERTH_EBUSY : BERTH_EINVAL,
                                strcmp(reason, "busy") == 0 ? "HostBusy" : "InvalidHost",
                                "name", "%s", message);
    return 0;
}

static int store_host_set_state(berth_store_t *store, const char *name, berth_host_state_t state,
                                berth_error_t *err)
{
    berth_store_t *s = store;
    if ((unsigned)state > BERTH_HOST_DOWN)
        return berth__error_set(err, BERTH_EINVAL, "InvalidHost", "state",
                                "unknown host state %d", (int)state);
    if (!berth__host_name_is_valid(name))
        return berth__error_set(err, BERTH_ENOENT, "HostNotFound", "name",
                                "host '%s' does not exist", name ? name : "");
    char st[4];
    snprintf(st, sizeof st, "%d", (int)state);
    const char *argv[] = {"FCALL", "berth_host_state", "3", s->k_hosts, s->k_log, s->k_seq,
                          name, st, s->maxlen};
    char reason[32], message[256];
    int rc = fcall(s, 9, argv, NULL, "setting a host's state", reason, message,
                   sizeof message, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return berth__error_set(err, BERTH_ENOENT, "HostNotFound", "name", "%s", message);
    return 0;
}

static int store_host_remove(berth_store_t *store, const char *name, berth_error_t *err)
{
    berth_store_t *s = store;
    if (!berth__host_name_is_valid(name))
        return berth__error_set(err, BERTH_ENOENT, "HostNotFound", "name",
                                "host '%s' does not exist", name ? name : "");
    char hg[KEYNAME_MAX], as[KEYNAME_MAX];
    key_name(s, hg, sizeof hg, "hostgroups:", name);
    key_name(s, as, sizeof as, "assign:", name);
    const char *argv[] = {"FCALL", "berth_host_del", "5", s->k_hosts, s->k_log, s->k_seq,
                          hg, as, name, s->maxlen};
    char reason[32], message[256];
    int rc = fcall(s, 10, argv, NULL, "removing a host", reason, message, sizeof message, err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        bool busy = strcmp(reason, "busy") == 0;
        return berth__error_set(err, busy ? BERTH_EBUSY : BERTH_ENOENT,
                                busy ? "HostBusy" : "HostNotFound", "name", "%s", message);
    }
    return 0;
}

/* ---- placing ---------------------------------------------------------------------------- */

/* What one placement needs between choosing and committing (store.h). */
typedef berth__pending_t pending_t;

/* Chooses a host for p in the engine (which keeps the choice until
 * choice_undo()).  Returns 0 or the engine's error. */
static int choice_make(berth_store_t *s, pending_t *p, berth_error_t *err)
{
    size_t len = strnlen(p->key, KEY_MAX + 1);
    entry_t *e = len <= KEY_MAX ? map_find(&s->groups, p->key, len) : NULL;
    berth_placement_t now;
    p->existed = e != NULL && berth_group_get(s->engine, p->key, &now) == 0;
    p->generation = p->existed ? e->value : 0;
    if (p->existed) {
        p->prev_request = e->request;
        memcpy(p->prev_host, now.host, sizeof p->prev_host);
    }
    int rc = -1;
    if (!p->existed && p->prefer != NULL && p->prefer[0] != '\0')
        rc = berth_request_assign(s->engine, p->key, p->request, p->prefer, &p->choice, NULL);
    if (rc < 0)
        rc = berth_request_place(s->engine, p->key, p->request, &p->choice, err);
    if (rc < 0)
        return rc;
    /* A redeploy that does not know a fingerprint keeps the one on record
     * (engine.c), and so does the committed record. */
    p->committed = *p->request;
    if (p->existed) {
        if (p->committed.cpu_digest == 0)
            p->committed.cpu_digest = p->prev_request.cpu_digest;
        if (p->committed.memory_digest == 0)
            p->committed.memory_digest = p->prev_request.memory_digest;
        if (p->committed.gpu_digest == 0)
            p->committed.gpu_digest = p->prev_request.gpu_digest;
        if (p->committed.ports_digest == 0)
            p->committed.ports_digest = p->prev_request.ports_digest;
    }
    return 0;
}

/* Puts the engine back as it was before choice_make(p).  A down host takes
 * no assignment, so one the group is leaving is made ready for the moment
 * of the undo.  A failure marks the store stale (reload at the next sync). */
static void choice_undo(berth_store_t *s, const pending_t *p)
{
    int rc;
    if (!p->existed) {
        rc = berth_group_release(s->engine, p->key, NULL);
    } else {
        berth_host_t h;
        bool down = berth_host_get(s->engine, p->prev_host, &h, NULL) == 0 &&
                    h.state == BERTH_HOST_DOWN;
        if (down)
            berth_host_set_state(s->engine, p->prev_host, BERTH_HOST_READY, NULL);
        rc = berth_request_assign(s->engine, p->key, &p->prev_request, p->prev_host, NULL,
                                  NULL);
        if (down)
            berth_host_set_state(s->engine, p->prev_host, BERTH_HOST_DOWN, NULL);
    }
    if (rc < 0)
        s->stale = true;
}

/* The FCALL berth_place for p (store.h): key names, numbers as text and
 * the argument vector pointing at them and at s->buf, which holds the record
 * until the next call that encodes one. */
typedef berth__place_call_t place_call_t;

static int place_call_build(berth_store_t *s, const pending_t *p, place_call_t *c,
                            berth_error_t *err)
{
    const char *host = p->choice.host;
    const char *old = p->existed ? p->prev_host : host;
    entry_t *he = map_find(&s->hosts, host, strlen(host));
    key_name(s, c->hg_new, sizeof c->hg_new, "hostgroups:", host);
    key_name(s, c->as_new, sizeof c->as_new, "assign:", host);
    key_name(s, c->hg_old, sizeof c->hg_old, "hostgroups:", old);
    key_name(s, c->as_old, sizeof c->as_old, "assign:", old);
    snprintf(c->expect, sizeof c->expect, "%llu", (unsigned long long)p->generation);
    snprintf(c->mc, sizeof c->mc, "%u", p->request->demand.millicores);
    snprintf(c->mem, sizeof c->mem, "%u", p->request->demand.memory_mib);
    snprintf(c->gpu, sizeof c->gpu, "%u", p->request->demand.gpu_count);
    snprintf(c->epoch, sizeof c->epoch, "%llu", (unsigned long long)(he ? he->value : 0));
    berth__group_record_t *r = s->rec;
    record_from_request(s->engine, p->key, host, p->generation + 1, &p->committed, p->spec, r);
    msgpack_sbuffer_clear(&s->buf);
    msgpack_sbuffer_clear(&s->buf_log);
    int rc = berth__group_record_encode(&s->buf, r);
    /* The change log carries what replicas need: the record without the
     * document, which only the group record keeps. */
    berth__bytes_t spec = r->spec;
    r->spec = (berth__bytes_t){NULL, 0};
    if (rc == 0)
        rc = berth__group_record_encode(&s->buf_log, r);
    r->spec = spec;
    if (rc < 0)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a record");
    const char *argv[] = {"FCALL", "berth_place", "9", s->k_hosts, s->k_groups, s->k_log,
                          s->k_seq, c->hg_new, c->as_new, c->hg_old, c->as_old,
                          s->k_documents, p->key, host,
                          c->expect, s->buf.data, s->maxlen, c->mc, c->mem, c->gpu, c->epoch,
                          s->buf_log.data};
    for (size_t i = 0; i < BERTH__PLACE_ARGC; i++) {
        c->argv[i] = argv[i];
        c->lens[i] = i == 15 ? s->buf.size : i == 21 ? s->buf_log.size : strlen(argv[i]);
    }
    return 0;
}

/* Applies the placement p that Redis just committed, exactly as its log
 * entry would, when that entry is the next one this replica needs: the
 * reply names the entry's seq and stream id.  Saves reading back and
 * decoding the commits a replica made itself.  Returns true when applied;
 * false leaves the entry to the next sync (another writer's entries come
 * first, and the log must be applied in order).  A change that does not
 * apply marks the store stale, as it would from the log. */
static bool own_apply(berth_store_t *s, const pending_t *p, const redisReply *r)
{
    uint64_t seq;
    if (s->stale || r->elements < 3 || !reply_u64(r->element[1], &seq) ||
        seq != s->seq + 1 || r->element[2]->type != REDIS_REPLY_STRING ||
        r->element[2]->len >= sizeof s->last_id)
        return false;
    /* The request as the entry's record carries it (names, not ids). */
    berth_request_t req;
    uint64_t gen = p->generation + 1;
    record_from_request(s->engine, p->key, p->choice.host, gen, &p->committed, NULL, s->rec);
    if (request_from_record(s->engine, s->rec, &req, NULL) < 0 ||
        apply_group(s, p->key, p->choice.host, gen, &req, NULL) < 0) {
        s->stale = true;
        return false;
    }
    s->seq = seq;
    /* An op that does not end its entry (a batch's): the replica moves
     * past the entry with its last op, so that a read of the log from
     * last_id meets the entry's other ops (and skips those applied). */
    if (r->elements < 4 || r->element[3]->type != REDIS_REPLY_INTEGER ||
        r->element[3]->integer == 1)
        memcpy(s->last_id, r->element[2]->str, r->element[2]->len + 1);
    return true;
}

/* Hands what hiredis has buffered to Redis now, so that Redis works on the
 * first commits of a batch while the next ones are built.  A failure is
 * left in the context (s->c->err) for the next read to report. */
static void flush_some(berth_store_t *s)
{
    int done = 0;
    while (!done && s->c->err == 0)
        if (redisBufferWrite(s->c, &done) != REDIS_OK)
            break;
}

void berth__preempt_call_free(berth__preempt_call_t *c)
{
    free(c->argv);
    free(c->lens);
    free(c->gens);
    c->argv = NULL;
    c->lens = NULL;
    c->gens = NULL;
}

/* The preemption plan for a Regular group that fits nowhere (berth.h,
 * "Preemption in the store"): a new one, or a redeploy (`existed`: Spot
 * groups of its own host only), planned in the engine and laid out as one
 * FCALL berth_preempt in *c (its record in s->buf: send it before the next
 * commit is built).  Returns 1 (c filled; free with
 * berth__preempt_call_free()), 0 (no victims needed: room appeared; choose
 * again) or a negative code (BERTH_ENOSPC when there is no plan). */
int berth__store_preempt_call(berth_store_t *s, const char *key, bool existed,
                              const berth_request_t *request, const char *spec,
                              berth__preempt_call_t *c, berth_error_t *err)
{
    memset(c, 0, sizeof *c);
    berth_preemption_t plan;
    int rc = existed
        ? berth__engine_redeploy_preemption(s->engine, key, request, &plan, err)
        : berth_request_preemption(s->engine, request, &plan, err);
    if (rc < 0)
        return rc;
    if (plan.victims == 0)
        return 0;   /* room appeared meanwhile: choose again */
    const entry_t *own = existed ? map_find(&s->groups, key, strlen(key)) : NULL;
    uint64_t expect = own != NULL ? own->value : 0;
    uint32_t n = plan.victims;
    int argc = 3 + 8 + 9 + 2 * (int)n + 2;
    c->argv = malloc((size_t)argc * sizeof *c->argv);
    c->lens = malloc((size_t)argc * sizeof *c->lens);
    c->gens = malloc((size_t)n * sizeof *c->gens);
    if (c->argv == NULL || c->lens == NULL || c->gens == NULL) {
        berth__preempt_call_free(c);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory to commit a preemption");
    }
    snprintf(c->expect, sizeof c->expect, "%llu", (unsigned long long)expect);
    key_name(s, c->hg, sizeof c->hg, "hostgroups:", plan.host);
    key_name(s, c->as, sizeof c->as, "assign:", plan.host);
    key_name(s, c->ev, sizeof c->ev, "evictions", "");
    memcpy(c->host, plan.host, sizeof c->host);
    entry_t *he = map_find(&s->hosts, plan.host, strlen(plan.host));
    snprintf(c->mc, sizeof c->mc, "%u", request->demand.millicores);
    snprintf(c->mem, sizeof c->mem, "%u", request->demand.memory_mib);
    snprintf(c->gpu, sizeof c->gpu, "%u", request->demand.gpu_count);
    snprintf(c->epoch, sizeof c->epoch, "%llu", (unsigned long long)(he ? he->value : 0));
    snprintf(c->count, sizeof c->count, "%u", n);
    record_from_request(s->engine, key, c->host, expect + 1, request, spec, s->rec);
    msgpack_sbuffer_clear(&s->buf);
    msgpack_sbuffer_clear(&s->buf_log);
    int enc = berth__group_record_encode(&s->buf, s->rec);
    s->rec->spec = (berth__bytes_t){NULL, 0};      /* the change log's copy */
    if (enc == 0)
        enc = berth__group_record_encode(&s->buf_log, s->rec);
    if (enc < 0) {
        berth__preempt_call_free(c);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a record");
    }
    const char *head[] = {"FCALL", "berth_preempt", "8", s->k_hosts, s->k_groups, s->k_log,
                          s->k_seq, c->hg, c->as, c->ev, s->k_documents, key, c->host,
                          s->buf.data, s->maxlen, c->mc, c->mem, c->gpu, c->epoch, c->count};
    for (int i = 0; i < 20; i++) {
        c->argv[i] = head[i];
        c->lens[i] = i == 13 ? s->buf.size : strlen(head[i]);
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *vkey = berth_engine_victim(s->engine, i);
        const entry_t *ve = map_find(&s->groups, vkey, strlen(vkey));
        snprintf(c->gens[i], sizeof c->gens[i], "%llu", (unsigned long long)(ve ? ve->value : 0));
        c->argv[20 + 2 * i] = vkey;
        c->lens[20 + 2 * i] = strlen(vkey);
        c->argv[21 + 2 * i] = c->gens[i];
        c->lens[21 + 2 * i] = strlen(c->gens[i]);
    }
    c->argv[argc - 2] = c->expect;
    c->lens[argc - 2] = strlen(c->expect);
    c->argv[argc - 1] = s->buf_log.data;
    c->lens[argc - 1] = s->buf_log.size;
    c->argc = argc;
    c->victims = n;
    c->existed = existed;
    return 1;
}

/* The preemption path of store_place(): plans, then commits the evictions
 * and the placement in one FCALL berth_preempt.  Returns 1 (committed:
 * *out filled, the replica caught up), 0 (the plan was stale: Redis refused
 * it; catch up and plan again) or a negative code (BERTH_ENOSPC when there
 * is no plan). */
static int preempt_commit(berth_store_t *s, const char *key, bool existed,
                          const berth_request_t *request, const char *spec,
                          berth_placement_t *out, berth_error_t *err)
{
    berth__preempt_call_t c;
    int rc = berth__store_preempt_call(s, key, existed, request, spec, &c, err);
    if (rc <= 0)
        return rc;
    redisReply *r = command(s, c.argc, c.argv, c.lens, true, "committing a preemption", err,
                            &rc);
    berth__preempt_call_free(&c);
    if (r == NULL)
        return rc;
    char reason[32], message[256];
    rc = fcall_result(r, reason, sizeof reason, message, sizeof message, err);
    freeReplyObject(r);
    if (rc != 1)
        return rc;
    /* Committed: the log brings the releases and the placement back. */
    int src = store_sync(s, NULL);
    if (out != NULL) {
        if (src < 0 || berth_group_get(s->engine, key, out) < 0) {
            memset(out, 0, sizeof *out);
            memcpy(out->host, c.host, sizeof out->host);
            out->kind = existed ? BERTH_PLACED_STAYED : BERTH_PLACED_NEW;
            out->demand = request->demand;
        }
        out->evicted = c.victims;
    }
    return 1;
}

static int store_place(berth_store_t *store, const char *key, const berth_request_t *request,
                       const char *prefer, const char *spec_json, berth_placement_t *out,
                       berth_error_t *err)
{
    berth_store_t *s = store;
    for (uint32_t attempt = 0; attempt <= s->opts.max_retries; attempt++) {
        int rc = store_sync(s, err);
        if (rc < 0)
            return rc;
        pending_t p;
        memset(&p, 0, sizeof p);
        p.key = key;
        p.request = request;
        p.spec = spec_json;
        p.prefer = prefer;
        if ((rc = choice_make(s, &p, err)) < 0) {
            /* Only a Regular group preempts (berth.h). */
            if (rc != BERTH_ENOSPC || request->priority == BERTH_PRIORITY_SPOT ||
                berth_engine_spot_count(s->engine) == 0)
                return rc;
            rc = preempt_commit(s, key, p.existed, request, spec_json, out, err);
            if (rc < 0)
                return rc;
            if (rc == 1)
                return 0;
            continue;       /* a stale plan: the next round catches up first */
        }
        choice_undo(s, &p);
        place_call_t c;
        if ((rc = place_call_build(s, &p, &c, err)) < 0)
            return rc;
        redisReply *r = command(s, BERTH__PLACE_ARGC, c.argv, c.lens, true,
                                "committing a placement", err, &rc);
        if (r == NULL)
            return rc;
        char reason[32], message[256];
        rc = fcall_result(r, reason, sizeof reason, message, sizeof message, err);
        freeReplyObject(r);
        if (rc < 0)
            return rc;
        /* Applied or not, catch up: on a conflict the next choice needs it. */
        int src = store_sync(s, rc == 1 ? NULL : err);
        if (rc == 1) {
            if (out != NULL)
                *out = p.choice;
            return 0;
        }
        if (src < 0)
            return src;
    }
    return berth__error_set(err, BERTH_ENOSPC, "ResourceNotAvailable", "",
                            "container group '%s' was not placed: the cell kept changing "
                            "under %u attempts (other schedulers took the room chosen)",
                            key, s->opts.max_retries + 1);
}

/* Contract: store.h. */
void berth__many_clear(berth__many_call_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->rec[i]);
    free(m->argv);
    free(m->lens);
    m->argv = NULL;
    m->lens = NULL;
    m->argc = 0;
    m->n = 0;
}

/* Contract: store.h. */
int berth__many_add(berth_store_t *s, berth__many_call_t *m, const pending_t *p,
                    const berth__effects_t *fx, berth_error_t *err)
{
    place_call_t *c = &m->one[m->n];
    int rc = place_call_build(s, p, c, err);
    if (rc < 0)
        return rc;
    size_t rlen = c->lens[15], llen = c->lens[21];
    char *copy = malloc(rlen + llen + 2);
    if (copy == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a batch of placements");
    memcpy(copy, c->argv[15], rlen);
    memcpy(copy + rlen + 1, c->argv[21], llen);
    c->argv[15] = copy;
    c->argv[21] = copy + rlen + 1;
    m->rec[m->n] = copy;
    m->fx[m->n] = fx;
    snprintf(m->ne[m->n], sizeof m->ne[0], "%zu", fx != NULL ? fx->n : 0);
    m->n++;
    return 0;
}

/* Contract: store.h. */
int berth__many_finish(berth_store_t *s, berth__many_call_t *m, berth_error_t *err)
{
    size_t words = 3 + 5 + 2;
    for (size_t i = 0; i < m->n; i++) {
        size_t ne = m->fx[i] != NULL ? m->fx[i]->n : 0;
        words += 4 + ne + 10 + 4 * ne;
    }
    free(m->argv);
    free(m->lens);
    m->argv = malloc(words * sizeof *m->argv);
    m->lens = malloc(words * sizeof *m->lens);
    if (m->argv == NULL || m->lens == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a batch of placements");
    size_t a = 0, nkeys = 5;
#define PUT(str, len) (m->argv[a] = (str), m->lens[a] = (len), a++)
#define PUTS(str) PUT((str), strlen(str))
    PUTS("FCALL");
    PUTS("berth_place_many");
    PUTS(m->numkeys);               /* written below, once counted */
    PUTS(s->k_hosts);
    PUTS(s->k_groups);
    PUTS(s->k_log);
    PUTS(s->k_seq);
    PUTS(s->k_documents);
    for (size_t i = 0; i < m->n; i++) {
        for (int k = 7; k <= 10; k++)       /* hostgroups and assign, new and old */
            PUT(m->one[i].argv[k], m->one[i].lens[k]);
        nkeys += 4;
        for (size_t e = 0; m->fx[i] != NULL && e < m->fx[i]->n; e++, nkeys++)
            PUTS(m->fx[i]->e[e].key);
    }
    snprintf(m->numkeys, sizeof m->numkeys, "%zu", nkeys);
    m->lens[2] = strlen(m->numkeys);
    snprintf(m->count, sizeof m->count, "%zu", m->n);
    PUTS(m->count);
    PUTS(s->maxlen);
    for (size_t i = 0; i < m->n; i++) {
        static const int words_of_place[] = {12, 13, 14, 15, 17, 18, 19, 20, 21};
        for (size_t k = 0; k < sizeof words_of_place / sizeof words_of_place[0]; k++)
            PUT(m->one[i].argv[words_of_place[k]], m->one[i].lens[words_of_place[k]]);
        PUTS(m->ne[i]);
        for (size_t e = 0; m->fx[i] != NULL && e < m->fx[i]->n; e++) {
            const berth__effect_copy_t *c = &m->fx[i]->e[e];
            PUTS(c->op);
            PUTS(c->field);
            PUT(c->value, c->value_len);
            PUTS(c->n);
        }
    }
#undef PUTS
#undef PUT
    m->argc = (int)a;
    return 0;
}

static int store_place_batch(berth_store_t *store, size_t n, const char *const *keys,
                             const berth_request_t *requests, berth_placement_t *outs,
                             int *results, berth_error_t *err)
{
    berth_store_t *s = store;
    if (n == 0)
        return 0;
    pending_t *ps = calloc(n, sizeof *ps);
    size_t *chosen = malloc(n * sizeof *chosen);
    berth__many_call_t *call = calloc(1, sizeof *call);
    if (ps == NULL || chosen == NULL || call == NULL) {
        free(ps);
        free(chosen);
        free(call);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a batch of %zu placements", n);
    }
    /* 1: still to commit; results end as 0 or a negative code. */
    for (size_t i = 0; i < n; i++)
        results[i] = 1;
    size_t left = n;
    int rc = 0;
    bool caught_up = false;         /* the engine holds every commit made   */
    for (uint32_t round = 0; left > 0 && round <= s->opts.max_retries && rc == 0; round++) {
        if ((rc = store_sync(s, err)) < 0)
            break;
        s->round++;
        size_t nchosen = 0;
        for (size_t i = 0; i < n; i++) {
            if (results[i] != 1)
                continue;
            const char *key = keys[i];
            size_t len = key ? strnlen(key, KEY_MAX + 1) : 0;
            entry_t *e = len && len <= KEY_MAX ? map_find(&s->groups, key, len) : NULL;
            /* A key met twice in one round waits for the next: its second
             * commit must see the first one's generation. */
            if (e != NULL ? e->mark == s->round
                          : (len && berth_group_get(s->engine, key, NULL) == 0))
                continue;
            ps[i].key = key;
            ps[i].request = &requests[i];
            ps[i].spec = NULL;
            int crc = choice_make(s, &ps[i], NULL);
            if (crc < 0) {
                results[i] = crc;
                left--;
                continue;
            }
            if (e != NULL)
                e->mark = s->round;
            chosen[nchosen++] = i;
        }
        /* Undo in reverse: each undo restores the state its choice saw. */
        for (size_t j = nchosen; j-- > 0;)
            choice_undo(s, &ps[chosen[j]]);
        /* The chosen placements in calls of up to PLACE_MANY_MAX, all
         * pipelined; sent counts the placements the calls carry. */
        size_t sent = 0, calls = 0;
        while (rc == 0 && sent < nchosen) {
            berth__many_clear(call);
            while (rc == 0 && call->n < BERTH__PLACE_MANY_MAX && sent + call->n < nchosen)
                rc = berth__many_add(s, call, &ps[chosen[sent + call->n]], NULL, err);
            if (rc == 0)
                rc = berth__many_finish(s, call, err);
            if (rc < 0)
                break;
            if (redisAppendCommandArgv(s->c, call->argc, call->argv, call->lens) != REDIS_OK) {
                rc = redis_unavailable(s, err, "sending a batch of placements");
                break;
            }
            sent += call->n;
            calls++;
            flush_some(s);
        }
        berth__many_clear(call);
        bool reload_functions = false;
        /* Answers come in commit order: while each commit is the log's next
         * entry, it is applied here; after the first that is not, the
         * rest come from the log. */
        caught_up = true;
        for (size_t c = 0, j = 0; c < calls; c++) {
            size_t in_call = nchosen - j < BERTH__PLACE_MANY_MAX ? nchosen - j
                                                                  : BERTH__PLACE_MANY_MAX;
            void *v = NULL;
            if (redisGetReply(s->c, &v) != REDIS_OK || v == NULL) {
                rc = redis_unavailable(s, err, "committing a batch of placements");
                s->stale = true;
                store_connect(s, NULL);
                break;
            }
            redisReply *r = v;
            bool answers = r->type == REDIS_REPLY_ARRAY && r->elements == in_call;
            for (size_t k = 0; k < in_call; k++, j++) {
                size_t i = chosen[j];
                const redisReply *a = answers ? r->element[k] : r;
                char reason[32], message[256];
                if (is_no_function(a)) {
                    reload_functions = true; /* nothing applied: retried next round */
                } else if (a->type == REDIS_REPLY_ERROR || !answers) {
                    results[i] = a->type == REDIS_REPLY_ERROR
                                     ? redis_error(NULL, a, "a placement")
                                     : berth__error_set(NULL, BERTH_EIO, "RedisError", "",
                                                        "a malformed answer");
                    left--;
                    caught_up = false;
                } else {
                    int f = fcall_result(a, reason, sizeof reason, message, sizeof message,
                                         NULL);
                    if (f == 1) {
                        results[i] = 0;
                        if (outs != NULL)
                            outs[i] = ps[i].choice;
                        left--;
                        caught_up = caught_up && own_apply(s, &ps[i], a);
                    } else if (f < 0) {
                        results[i] = f;
                        left--;
                    }
                }
            }
            freeReplyObject(r);
        }
        if (rc == 0 && reload_functions)
            rc = functions_load(s, err);
    }
    if (rc == 0 && !caught_up)
        rc = store_sync(s, err);
    for (size_t i = 0; i < n; i++)
        if (results[i] == 1)
            results[i] = rc < 0 ? BERTH_EIO : BERTH_ENOSPC;
    if (rc == 0 && left > 0)
        berth__error_set(err, BERTH_ENOSPC, "ResourceNotAvailable", "",
                         "%zu container groups were not placed: the cell kept changing "
                         "under %u rounds", left, s->opts.max_retries + 1);
    free(ps);
    free(chosen);
    free(call);
    /* A Regular group the batch found no room for preempts, one at a time
     * and in batch order, as berth_store_place() would (berth.h). */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (results[i] != BERTH_ENOSPC || requests[i].priority == BERTH_PRIORITY_SPOT ||
            berth_engine_spot_count(s->engine) == 0)
            continue;
        results[i] = store_place(s, keys[i], &requests[i], NULL, NULL,
                                 outs != NULL ? &outs[i] : NULL, NULL);
    }
    return rc < 0 ? BERTH_EIO : 0;
}

static int store_release(berth_store_t *store, const char *key, berth_error_t *err)
{
    berth_store_t *s = store;
    for (uint32_t attempt = 0; attempt <= s->opts.max_retries; attempt++) {
        int rc = store_sync(s, err);
        if (rc < 0)
            return rc;
        size_t len = key ? strnlen(key, KEY_MAX + 1) : 0;
        entry_t *e = len && len <= KEY_MAX ? map_find(&s->groups, key, len) : NULL;
        berth_placement_t now;
        if (e == NULL || berth_group_get(s->engine, key, &now) < 0)
            return berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                                    "container group '%s' is not placed", key ? key : "");
        char hg[KEYNAME_MAX], as[KEYNAME_MAX], expect[24];
        key_name(s, hg, sizeof hg, "hostgroups:", now.host);
        key_name(s, as, sizeof as, "assign:", now.host);
        snprintf(expect, sizeof expect, "%llu", (unsigned long long)e->value);
        const char *argv[] = {"FCALL", "berth_release", "7", s->k_hosts, s->k_groups,
                              s->k_log, s->k_seq, hg, as, s->k_documents, key, expect,
                              s->maxlen, "0"};
        char reason[32], message[256];
        rc = fcall(s, 14, argv, NULL, "releasing a container group", reason, message,
                   sizeof message, err);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return 0;
        if (strcmp(reason, "missing") == 0)
            return berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key", "%s",
                                    message);
    }
    return berth__error_set(err, BERTH_EIO, "Conflict", "",
                            "container group '%s' was not released: the cell kept changing "
                            "under %u attempts", key, s->opts.max_retries + 1);
}

/* HGET of `key` in hash `hash`: the string reply, or NULL with *rc set
 * (BERTH_ENOENT "container group '<key>' <missing>" when absent). */
static redisReply *hash_field(berth_store_t *s, const char *hash, const char *key,
                              const char *what, const char *missing, berth_error_t *err,
                              int *rc)
{
    const char *argv[] = {"HGET", hash, key};
    redisReply *r = command(s, 3, argv, NULL, false, what, err, rc);
    if (r == NULL)
        return NULL;
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        *rc = berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                               "container group '%s' %s", key, missing);
        return NULL;
    }
    return r;
}

/* hash_field()'s string as a NUL-terminated copy in *out (free()). */
static int hash_text(berth_store_t *s, const char *hash, const char *key, const char *what,
                     const char *missing, char **out, berth_error_t *err)
{
    *out = NULL;
    int rc;
    redisReply *r = hash_field(s, hash, key, what, missing, err, &rc);
    if (r == NULL)
        return rc;
    char *copy = malloc(r->len + 1);
    if (copy != NULL) {
        memcpy(copy, r->str, r->len);
        copy[r->len] = '\0';
    }
    freeReplyObject(r);
    if (copy == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory %s", what);
    *out = copy;
    return 0;
}

/* Contract (store.h): one group record, read and decoded. */
int berth__store_group_fetch(berth_store_t *s, const char *key, struct redisReply **reply,
                             berth__group_record_t **record, berth_error_t *err)
{
    *reply = NULL;
    *record = NULL;
    int rc;
    redisReply *r = hash_field(s, s->k_groups, key, "reading a container group",
                               "is not in the cell", err, &rc);
    if (r == NULL)
        return rc;
    berth__group_record_t *g = malloc(sizeof *g);
    if (g == NULL) {
        freeReplyObject(r);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a record");
    }
    rc = berth__group_record_decode(r->str, r->len, g, err);
    if (rc < 0) {
        if (rc == BERTH_EINVAL) {
            rc = BERTH_EIO; /* a record Redis holds is unreadable: the store's fault */
            if (err != NULL)
                err->code = rc;
        }
        free(g);
        freeReplyObject(r);
        return rc;
    }
    *reply = r;
    *record = g;
    return 0;
}

/* Reads a group record: its document, generation and host, each output
 * optional (host: `hcap` bytes). */
static int store_group_read(berth_store_t *store, const char *key, char **spec_json,
                            uint64_t *generation, char *host, size_t hcap,
                            berth_error_t *err)
{
    berth_store_t *s = store;
    if (spec_json != NULL)
        *spec_json = NULL;
    if (key == NULL || key[0] == '\0')
        return berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                                "no container group key given");
    redisReply *r;
    berth__group_record_t *g;
    int rc = berth__store_group_fetch(s, key, &r, &g, err);
    if (rc < 0)
        return rc;
    char *spec = NULL;
    if (g->spec.ptr != NULL && spec_json != NULL) {
        spec = malloc(g->spec.len + 1);
        if (spec == NULL) {
            rc = berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                  "no memory for a document");
        } else {
            memcpy(spec, g->spec.ptr, g->spec.len);
            spec[g->spec.len] = '\0';
        }
    }
    if (rc == 0) {
        if (spec_json != NULL)
            *spec_json = spec;
        if (generation != NULL)
            *generation = g->generation;
        if (host != NULL && !bytes_cstr(g->host, host, hcap)) {
            free(spec);
            if (spec_json != NULL)
                *spec_json = NULL;
            rc = berth__error_set(err, BERTH_EIO, "UnreadableRecord", "key",
                                  "container group '%s' names an unreadable host", key);
        }
    }
    free(g);
    freeReplyObject(r);
    return rc;
}

/* ---- restarts and instance views ---------------------------------------------------- */

static int store_group_restart(berth_store_t *s, const char *key, berth_error_t *err)
{
    for (uint32_t attempt = 0; attempt <= s->opts.max_retries; attempt++) {
        char host[BERTH_NAME_MAX + 1];
        uint64_t gen = 0;
        int rc = store_group_read(s, key, NULL, &gen, host, sizeof host, err);
        if (rc < 0)
            return rc;
        char as[KEYNAME_MAX], expect[24];
        key_name(s, as, sizeof as, "assign:", host);
        snprintf(expect, sizeof expect, "%llu", (unsigned long long)gen);
        const char *argv[] = {"FCALL", "berth_restart", "2", s->k_groups, as, key, host, expect};
        redisReply *r = command(s, 8, argv, NULL, true, "restarting a container group", err, &rc);
        if (r == NULL)
            return rc;
        char reason[32], message[256];
        rc = fcall_result(r, reason, sizeof reason, message, sizeof message, err);
        freeReplyObject(r);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return 0;
        if (strcmp(reason, "missing") == 0)
            return berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key", "%s", message);
        /* "generation": the group changed between the read and the call. */
    }
    return berth__error_set(err, BERTH_EIO, "Conflict", "",
                            "container group '%s' was not restarted: it kept changing under "
                            "%u attempts", key, s->opts.max_retries + 1);
}

static int store_view_read(berth_store_t *s, const char *key, char **json, berth_error_t *err)
{
    char views[KEYNAME_MAX];
    key_name(s, views, sizeof views, "views", "");
    return hash_text(s, views, key, "reading an instance view", "has no instance view", json,
                     err);
}

/* ---- evictions ------------------------------------------------------------------------ */

static int store_eviction_read(berth_store_t *s, const char *key, berth_eviction_t *out,
                               berth_error_t *err)
{
    char ev[KEYNAME_MAX];
    key_name(s, ev, sizeof ev, "evictions", "");
    int rc;
    redisReply *r = hash_field(s, ev, key, "reading an eviction", "has no eviction record", err,
                               &rc);
    if (r == NULL)
        return rc;
    json_t *j = json_loadb(r->str, r->len, 0, NULL);
    freeReplyObject(r);
    const char *host = json_string_value(json_object_get(j, "host"));
    const char *by = json_string_value(json_object_get(j, "by"));
    const char *time = json_string_value(json_object_get(j, "time"));
    char *end = NULL;
    unsigned long long ms = time != NULL ? strtoull(time, &end, 10) : 0;
    if (host == NULL || by == NULL || time == NULL || end == time || *end != '\0' ||
        strlen(host) > BERTH_NAME_MAX || strlen(by) >= sizeof out->by) {
        json_decref(j);
        return berth__error_set(err, BERTH_EINVAL, "CorruptRecord", "key",
                                "the eviction record of container group '%s' is malformed",
                                key);
    }
    memcpy(out->host, host, strlen(host) + 1);
    memcpy(out->by, by, strlen(by) + 1);
    out->time_ms = ms;
    json_decref(j);
    return 0;
}

static int store_eviction_forget(berth_store_t *s, const char *key, berth_error_t *err)
{
    char ev[KEYNAME_MAX];
    key_name(s, ev, sizeof ev, "evictions", "");
    /* The record, then the document kept beside it. */
    const char *hashes[] = {ev, s->k_documents};
    for (size_t i = 0; i < 2; i++) {
        const char *argv[] = {"HDEL", hashes[i], key};
        int rc;
        redisReply *r = command(s, 3, argv, NULL, false, "dropping an eviction", err, &rc);
        if (r == NULL)
            return rc;
        bool ok = r->type == REDIS_REPLY_INTEGER;
        if (!ok)
            rc = redis_error(err, r, "HDEL of an eviction");
        freeReplyObject(r);
        if (!ok)
            return rc;
    }
    return 0;
}

/* ---- hosts whose agent went quiet --------------------------------------------------- */

typedef struct moving {
    char key[KEY_MAX + 1];
    berth_request_t request;
} moving_t;

/* Re-places the groups of down host `host` whose restart policy wants them
 * running (Always, OnFailure; not Never), reporting each through cb. */
static int evacuate(berth_store_t *s, const char *host, berth_store_expire_cb cb, void *data,
                    int *changes, berth_error_t *err)
{
    char hg[KEYNAME_MAX];
    key_name(s, hg, sizeof hg, "hostgroups:", host);
    const char *argv[] = {"SMEMBERS", hg};
    int rc;
    redisReply *r = command(s, 2, argv, NULL, false, "reading a host's groups", err, &rc);
    if (r == NULL)
        return rc;
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    moving_t *m = n > 0 ? calloc(n, sizeof *m) : NULL;
    size_t k = 0;
    for (size_t i = 0; m != NULL && i < n; i++) {
        const redisReply *x = r->element[i];
        entry_t *e = x->type == REDIS_REPLY_STRING && x->len <= KEY_MAX
            ? map_find(&s->groups, x->str, x->len) : NULL;
        if (e == NULL)
            continue;
        memcpy(m[k].key, x->str, x->len + 1);
        m[k].request = e->request;
        k++;
    }
    freeReplyObject(r);
    if (n > 0 && m == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory to move groups");
    for (size_t i = 0; i < k; i++) {
        char *spec = NULL;
        if (store_group_read(s, m[i].key, &spec, NULL, NULL, 0, NULL) != 0)
            continue;
        berth_group_t *g = NULL;
        bool never = spec != NULL && berth_group_parse(spec, strlen(spec), &g, NULL) == 0 &&
                     g->restart_policy == BERTH_RESTART_NEVER;
        berth_group_free(g);
        if (never) {
            free(spec);
            continue;
        }
        berth_placement_t p;
        berth_error_t perr;
        rc = store_place(s, m[i].key, &m[i].request, NULL, spec, &p, &perr);
        free(spec);
        if (rc == BERTH_EIO) {
            free(m);
            if (err != NULL)
                *err = perr;
            return rc;
        }
        (*changes)++;
        if (cb != NULL)
            cb(host, m[i].key, rc == 0 ? p.host : NULL, rc, data);
    }
    free(m);
    return 0;
}

static int hosts_expire(berth_store_t *s, berth_store_expire_cb cb, void *data,
                        berth_error_t *err)
{
    int rc = store_sync(s, err);
    if (rc < 0)
        return rc;
    char agents[KEYNAME_MAX];
    key_name(s, agents, sizeof agents, "agents", "");
    const char *argv[] = {"SMEMBERS", agents};
    redisReply *r = command(s, 2, argv, NULL, false, "reading the cell's agents", err, &rc);
    if (r == NULL)
        return rc;
    int changes = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *x = r->element[i];
        berth_host_t h;
        if (x->type != REDIS_REPLY_STRING || berth_host_get(s->engine, x->str, &h, NULL) != 0)
            continue;
        char name[BERTH_NAME_MAX + 1];
        snprintf(name, sizeof name, "%s", x->str);
        if (h.state != BERTH_HOST_DOWN) {
            char alive[KEYNAME_MAX];
            key_name(s, alive, sizeof alive, "alive:", name);
            const char *ex[] = {"EXISTS", alive};
            redisReply *y = command(s, 2, ex, NULL, false, "reading a heartbeat", err, &rc);
            if (y == NULL)
                break;
            bool quiet = y->type == REDIS_REPLY_INTEGER && y->integer == 0;
            freeReplyObject(y);
            if (!quiet)
                continue;
            if ((rc = store_host_set_state(s, name, BERTH_HOST_DOWN, err)) < 0)
                break;
            changes++;
            if (cb != NULL)
                cb(name, NULL, NULL, 0, data);
        }
        if ((rc = evacuate(s, name, cb, data, &changes, err)) < 0)
            break;
    }
    freeReplyObject(r);
    return rc < 0 ? rc : changes;
}

/* ---- fsck ---------------------------------------------------------------------------------- */

typedef struct fsck_host {
    berth__host_record_t rec;
    bool ok;
    uint64_t mc, mem, gpu, groups;  /* sums over the groups on it           */
} fsck_host_t;

typedef struct fsck {
    berth_store_fsck_cb cb;
    void *data;
    int count;
} fsck_t;

static void violation(fsck_t *f, const char *fmt, ...) BERTH__PRINTF(2, 3);

static void violation(fsck_t *f, const char *fmt, ...)
{
    char msg[BERTH_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    f->count++;
    if (f->cb != NULL)
        f->cb(msg, f->data);
}

/* Checks the records read in one transaction: x holds HGETALL hosts,
 * HGETALL groups, GET seq, XREVRANGE log, then one SMEMBERS per name in
 * `names`, in that order. */
static int fsck_check(fsck_t *f, const redisReply *x, const redisReply *names,
                      berth_error_t *err)
{
    const redisReply *hosts = x->element[0], *groups = x->element[1];
    size_t nh = hosts->elements / 2;
    fsck_host_t *hs = calloc(nh ? nh : 1, sizeof *hs);
    map_t by_name = {0}, members = {0}, group_host = {0};
    int rc = 0;
    if (hs == NULL)
        rc = BERTH_ENOMEM;
    for (size_t i = 0; rc == 0 && i < nh; i++) {
        const redisReply *k = hosts->element[2 * i], *v = hosts->element[2 * i + 1];
        berth_error_t e;
        if (berth__host_record_decode(v->str, v->len, &hs[i].rec, &e) < 0) {
            violation(f, "host '%s': its record is unreadable: %s", k->str, e.message);
            continue;
        }
        hs[i].ok = true;
        entry_t *m = map_put(&by_name, k->str, k->len);
        if (m == NULL)
            rc = BERTH_ENOMEM;
        else
            m->value = i;
    }
    /* Every member of every host set, as "HOST/KEY" (host names hold no '/'). */
    for (size_t h = 0; rc == 0 && h < names->elements; h++) {
        const redisReply *set = x->element[4 + h];
        for (size_t j = 0; rc == 0 && j < set->elements; j++) {
            char mk[BERTH_NAME_MAX + 2 + KEY_MAX + 1];
            int len = snprintf(mk, sizeof mk, "%s/%s", names->element[h]->str,
                               set->element[j]->str);
            if (map_put(&members, mk, (size_t)len) == NULL)
                rc = BERTH_ENOMEM;
        }
    }
    berth__group_record_t *g = malloc(sizeof *g);
    if (g == NULL)
        rc = BERTH_ENOMEM;
    for (size_t i = 0; rc == 0 && i + 1 < groups->elements; i += 2) {
        const redisReply *k = groups->element[i], *v = groups->element[i + 1];
        berth_error_t e;
        if (berth__group_record_decode(v->str, v->len, g, &e) < 0) {
            violation(f, "container group '%s': its record is unreadable: %s", k->str,
                      e.message);
            continue;
        }
        char host[BERTH_NAME_MAX + 1];
        bytes_cstr(g->host, host, sizeof host);
        if (g->key.len != k->len || memcmp(g->key.ptr, k->str, k->len) != 0)
            violation(f, "container group '%s': its record names key '%.*s'", k->str,
                      (int)g->key.len, g->key.ptr);
        entry_t *gh = map_put(&group_host, k->str, k->len);
        if (gh == NULL) {
            rc = BERTH_ENOMEM;
            break;
        }
        entry_t *he = map_find(&by_name, host, strlen(host));
        if (he == NULL) {
            violation(f, "container group '%s' is on host '%s', which does not exist",
                      k->str, host);
            gh->value = UINT64_MAX;
            continue;
        }
        gh->value = he->value;
        fsck_host_t *fh = &hs[he->value];
        fh->mc += g->millicores;
        fh->mem += g->memory_mib;
        fh->gpu += g->gpu_count;
        fh->groups++;
        char mk[BERTH_NAME_MAX + 2 + KEY_MAX + 1];
        int len = snprintf(mk, sizeof mk, "%s/%s", host, k->str);
        if (map_find(&members, mk, (size_t)len) == NULL)
            violation(f, "container group '%s' is on host '%s' but not in its group set",
                      k->str, host);
    }
    free(g);
    for (size_t h = 0; rc == 0 && h < names->elements; h++) {
        const char *name = names->element[h]->str;
        const redisReply *set = x->element[4 + h];
        entry_t *he = map_find(&by_name, name, strlen(name));
        for (size_t j = 0; j < set->elements; j++) {
            const char *key = set->element[j]->str;
            entry_t *gh = map_find(&group_host, key, set->element[j]->len);
            if (gh == NULL)
                violation(f, "host '%s': its group set holds '%s', which has no record",
                          name, key);
            else if (he == NULL || gh->value != he->value)
                violation(f, "host '%s': its group set holds '%s', which is on another host",
                          name, key);
        }
    }
    for (size_t i = 0; rc == 0 && i < nh; i++) {
        const fsck_host_t *fh = &hs[i];
        const berth__host_record_t *r = &fh->rec;
        if (!fh->ok)
            continue;
        const char *name = hosts->element[2 * i]->str;
        if ((uint64_t)r->used_millicores > (uint64_t)r->cores * 1000u ||
            r->used_memory_mib > r->memory_mib || r->used_gpus > r->gpu_count)
            violation(f, "host '%s' is over capacity: %u of %u millicores, %u of %u MiB, "
                      "%u of %u GPUs allocated", name, r->used_millicores, r->cores * 1000u,
                      r->used_memory_mib, r->memory_mib, r->used_gpus, r->gpu_count);
        if (r->used_millicores != fh->mc || r->used_memory_mib != fh->mem ||
            r->used_gpus != fh->gpu || r->groups != fh->groups)
            violation(f, "host '%s' records %u millicores, %u MiB, %u GPUs and %u groups "
                      "allocated, but its groups add up to %llu, %llu, %llu and %llu", name,
                      r->used_millicores, r->used_memory_mib, r->used_gpus, r->groups,
                      (unsigned long long)fh->mc, (unsigned long long)fh->mem,
                      (unsigned long long)fh->gpu, (unsigned long long)fh->groups);
    }
    if (rc == 0) {
        uint64_t seq = 0, newest = 0;
        const char *id;
        bool has_seq = x->element[2]->type != REDIS_REPLY_NIL;
        if (has_seq && !reply_u64(x->element[2], &seq))
            violation(f, "the cell's seq counter is not a number");
        else if (x->element[3]->type == REDIS_REPLY_ARRAY && x->element[3]->elements > 0 &&
                 (!newest_entry(x->element[3], &newest, &id) || newest != seq))
            violation(f, "the change log's newest entry has seq %llu but the counter is %llu",
                      (unsigned long long)newest, (unsigned long long)seq);
    }
    map_free(&by_name);
    map_free(&members);
    map_free(&group_host);
    free(hs);
    if (rc < 0)
        return berth__error_set(err, rc, "OutOfMemory", "", "no memory to check the cell");
    return 0;
}

static int store_fsck(berth_store_t *store, berth_store_fsck_cb cb, void *data,
                      berth_error_t *err)
{
    berth_store_t *s = store;
    const char *hk[] = {"HKEYS", s->k_hosts};
    int rc;
    redisReply *names = command(s, 2, hk, NULL, false, "listing the cell's hosts", err, &rc);
    if (names == NULL)
        return rc;
    size_t nh = names->type == REDIS_REPLY_ARRAY ? names->elements : 0;
    size_t n = 4 + nh;
    const char ***argvs = calloc(n, sizeof *argvs);
    int *argcs = calloc(n, sizeof *argcs);
    char (*setkeys)[KEYNAME_MAX] = calloc(nh ? nh : 1, sizeof *setkeys);
    const char **setargv = calloc(2 * (nh ? nh : 1), sizeof *setargv);
    redisReply *x = NULL;
    if (argvs == NULL || argcs == NULL || setkeys == NULL || setargv == NULL) {
        rc = berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory to check the cell");
    } else {
        const char *a0[] = {"HGETALL", s->k_hosts};
        const char *a1[] = {"HGETALL", s->k_groups};
        const char *a2[] = {"GET", s->k_seq};
        const char *a3[] = {"XREVRANGE", s->k_log, "+", "-", "COUNT", "1"};
        argvs[0] = a0, argcs[0] = 2;
        argvs[1] = a1, argcs[1] = 2;
        argvs[2] = a2, argcs[2] = 2;
        argvs[3] = a3, argcs[3] = 6;
        for (size_t i = 0; i < nh; i++) {
            key_name(s, setkeys[i], KEYNAME_MAX, "hostgroups:", names->element[i]->str);
            setargv[2 * i] = "SMEMBERS";
            setargv[2 * i + 1] = setkeys[i];
            argvs[4 + i] = &setargv[2 * i];
            argcs[4 + i] = 2;
        }
        x = transaction(s, n, (const char *const *const *)argvs, argcs,
                        "reading the cell to check it", err, &rc);
        if (x != NULL) {
            fsck_t f = {cb, data, 0};
            rc = fsck_check(&f, x, names, err);
            if (rc == 0)
                rc = f.count;
        }
    }
    freeReplyObject(x);
    free(argvs);
    free(argcs);
    free(setkeys);
    free(setargv);
    freeReplyObject(names);
    return rc;
}

/* ---- the public calls: SIGPIPE-safe ------------------------------------------------------ */

/* hiredis writes with write(2).  When Redis has gone away the kernel raises
 * SIGPIPE, whose default action kills the process: a library must neither
 * kill its caller nor change the caller's signal dispositions.  So every
 * public call blocks SIGPIPE in its thread (the write then fails with EPIPE
 * and the call reports BERTH_EIO), consumes a SIGPIPE the call itself raised,
 * and restores the thread's mask. */
typedef berth__sigpipe_guard_t sigpipe_guard_t;

static void sigpipe_block(sigpipe_guard_t *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    g->pending_before = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_unblock(sigpipe_guard_t *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    if (!g->pending_before && sigismember(&pending, SIGPIPE) == 1) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            continue;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

int berth_store_open(const berth_store_options_t *opts, berth_engine_t *engine,
                     berth_store_t **out, berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_open(opts, engine, false, out, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_sync(berth_store_t *store, berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_sync(store, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_gpu_sku_put(berth_store_t *store, const berth_gpu_sku_t *sku,
                            berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_gpu_sku_put(store, sku, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_host_put(berth_store_t *store, const berth_host_t *host, berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_host_put(store, host, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_host_set_state(berth_store_t *store, const char *name,
                               berth_host_state_t state, berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_host_set_state(store, name, state, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_host_remove(berth_store_t *store, const char *name, berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_host_remove(store, name, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_place(berth_store_t *store, const char *key, const berth_request_t *request,
                      const char *spec_json, berth_placement_t *out, berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_place(store, key, request, NULL, spec_json, out, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_place_prefer(berth_store_t *store, const char *key,
                             const berth_request_t *request, const char *prefer_host,
                             const char *spec_json, berth_placement_t *out, berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_place(store, key, request, prefer_host, spec_json, out, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_place_batch(berth_store_t *store, size_t n, const char *const *keys,
                            const berth_request_t *requests, berth_placement_t *outs,
                            int *results, berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_place_batch(store, n, keys, requests, outs, results, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_release(berth_store_t *store, const char *key, berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_release(store, key, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_group_read(berth_store_t *store, const char *key, char **spec_json,
                           uint64_t *generation, berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_group_read(store, key, spec_json, generation, NULL, 0, err);
    sigpipe_unblock(&g);
    return rc;
}

/* The document the cell keeps for a group that is not placed. */
static int store_kept_read(berth_store_t *s, const char *key, char **spec_json,
                           berth_error_t *err)
{
    return hash_text(s, s->k_documents, key, "reading a document", "is not in the cell",
                     spec_json, err);
}

int berth_store_document_read(berth_store_t *store, const char *key, char **spec_json,
                              uint64_t *generation, berth_error_t *err)
{
    *spec_json = NULL;
    if (generation != NULL)
        *generation = 0;
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_group_read(store, key, spec_json, generation, NULL, 0, err);
    if (rc == 0 && *spec_json == NULL)
        rc = berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                              "container group '%s' has no document", key);
    else if (rc == BERTH_ENOENT && key != NULL && key[0] != '\0')
        rc = store_kept_read(store, key, spec_json, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_eviction_read(berth_store_t *store, const char *key, berth_eviction_t *out,
                              berth_error_t *err)
{
    int rc = berth__group_key_check(key, err);
    if (rc < 0)
        return rc;
    sigpipe_guard_t g;
    sigpipe_block(&g);
    rc = store_eviction_read(store, key, out, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_eviction_forget(berth_store_t *store, const char *key, berth_error_t *err)
{
    int rc = berth__group_key_check(key, err);
    if (rc < 0)
        return rc;
    sigpipe_guard_t g;
    sigpipe_block(&g);
    rc = store_eviction_forget(store, key, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth__group_key_check(const char *key, berth_error_t *err)
{
    size_t n = key == NULL ? 0 : strnlen(key, KEY_MAX + 1);
    if (n == 0 || n > KEY_MAX)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "key",
                                "a container group key has 1 to %u bytes", KEY_MAX);
    return 0;
}

int berth_store_group_restart(berth_store_t *store, const char *key, berth_error_t *err)
{
    if (berth__group_key_check(key, err) < 0)
        return BERTH_EINVAL;
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_group_restart(store, key, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_hosts_expire(berth_store_t *store, berth_store_expire_cb cb, void *data,
                             berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = hosts_expire(store, cb, data, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_view_read(berth_store_t *store, const char *key, char **json,
                          berth_error_t *err)
{
    if (berth__group_key_check(key, err) < 0) {
        *json = NULL;
        return BERTH_EINVAL;
    }
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_view_read(store, key, json, err);
    sigpipe_unblock(&g);
    return rc;
}

int berth_store_fsck(berth_store_t *store, berth_store_fsck_cb cb, void *data,
                     berth_error_t *err)
{
    sigpipe_guard_t g;
    sigpipe_block(&g);
    int rc = store_fsck(store, cb, data, err);
    sigpipe_unblock(&g);
    return rc;
}

/* ---- internals for the asynchronous store (store.h) ------------------------------------ */

void berth__sigpipe_block(berth__sigpipe_guard_t *g)
{
    sigpipe_block(g);
}

void berth__sigpipe_unblock(berth__sigpipe_guard_t *g)
{
    sigpipe_unblock(g);
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

int berth__store_choose(berth_store_t *s, berth__pending_t *p, berth_error_t *err)
{
    return choice_make(s, p, err);
}

void berth__store_unchoose(berth_store_t *s, const berth__pending_t *p)
{
    choice_undo(s, p);
}

int berth__store_place_call(berth_store_t *s, const berth__pending_t *p,
                            berth__place_call_t *c, berth_error_t *err)
{
    return place_call_build(s, p, c, err);
}

bool berth__store_own_apply(berth_store_t *s, const berth__pending_t *p, const redisReply *r)
{
    return own_apply(s, p, r);
}

/* The replica's entry of the placed group `key` and where it is (*now);
 * NULL with BERTH_ENOENT in err when the replica does not hold it. */
static entry_t *placed_entry(berth_store_t *s, const char *key, berth_placement_t *now,
                             berth_error_t *err)
{
    size_t len = key ? strnlen(key, KEY_MAX + 1) : 0;
    entry_t *e = len && len <= KEY_MAX ? map_find(&s->groups, key, len) : NULL;
    if (e == NULL || berth_group_get(s->engine, key, now) < 0) {
        berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                         "container group '%s' is not placed", key ? key : "");
        return NULL;
    }
    return e;
}

int berth__store_release_call(berth_store_t *s, const char *key, bool keep,
                              berth__release_call_t *c, berth_error_t *err)
{
    berth_placement_t now;
    entry_t *e = placed_entry(s, key, &now, err);
    if (e == NULL)
        return BERTH_ENOENT;
    key_name(s, c->hg, sizeof c->hg, "hostgroups:", now.host);
    key_name(s, c->as, sizeof c->as, "assign:", now.host);
    snprintf(c->expect, sizeof c->expect, "%llu", (unsigned long long)e->value);
    const char *argv[] = {"FCALL", "berth_release", "7", s->k_hosts, s->k_groups, s->k_log,
                          s->k_seq, c->hg, c->as, s->k_documents, key, c->expect, s->maxlen,
                          keep ? "1" : "0"};
    memcpy(c->argv, argv, sizeof argv);
    return 0;
}

int berth__store_restart_call(berth_store_t *s, const char *key, berth__restart_call_t *c,
                              berth_error_t *err)
{
    berth_placement_t now;
    entry_t *e = placed_entry(s, key, &now, err);
    if (e == NULL)
        return BERTH_ENOENT;
    memcpy(c->host, now.host, sizeof c->host);
    key_name(s, c->as, sizeof c->as, "assign:", now.host);
    snprintf(c->expect, sizeof c->expect, "%llu", (unsigned long long)e->value);
    c->keys[0] = s->k_groups;
    c->keys[1] = c->as;
    c->args[0] = key;
    c->args[1] = c->host;
    c->args[2] = c->expect;
    return 0;
}

int berth__store_generation(berth_store_t *s, const char *key, uint64_t *generation)
{
    size_t len = key ? strnlen(key, KEY_MAX + 1) : 0;
    entry_t *e = len && len <= KEY_MAX ? map_find(&s->groups, key, len) : NULL;
    if (e == NULL)
        return BERTH_ENOENT;
    *generation = e->value;
    return 0;
}

int berth__store_fcall_result(const redisReply *r, char *reason, size_t rcap, char *message,
                              size_t mcap, berth_error_t *err)
{
    return fcall_result(r, reason, rcap, message, mcap, err);
}

void berth__store_log_call(const berth_store_t *s, berth__log_call_t *c)
{
    snprintf(c->start, sizeof c->start, "(%s", s->last_id);
    const char *argv[] = {"XRANGE", s->k_log, c->start, "+", "COUNT", SYNC_COUNT};
    memcpy(c->argv, argv, sizeof argv);
}

int berth__store_log_apply(berth_store_t *s, const redisReply *r, bool *more)
{
    size_t n;
    int rc = log_apply(s, r, &n);
    *more = rc == 0 && n >= SYNC_COUNT_N;
    if (rc != 0)
        s->stale = true;
    return rc;
}

bool berth__store_stale(const berth_store_t *s)
{
    return s->stale;
}

void berth__store_snapshot_call(const berth_store_t *s, berth__snapshot_call_t *c)
{
    const char *a[5][6] = {{"HGETALL", s->k_hosts},
                           {"HGETALL", s->k_groups},
                           {"GET", s->k_seq},
                           {"XREVRANGE", s->k_log, "+", "-", "COUNT", "1"},
                           {"HGETALL", s->k_skus}};
    const int n[5] = {2, 2, 2, 6, 2};
    memcpy(c->argv, a, sizeof a);
    memcpy(c->argcs, n, sizeof n);
}

int berth__store_snapshot_apply(berth_store_t *s, const redisReply *x, berth_error_t *err)
{
    berth_engine_reset(s->engine);
    map_clear(&s->groups);
    map_clear(&s->hosts);
    s->stale = true;
    if (x->type != REDIS_REPLY_ARRAY || x->elements != 5)
        return x->type == REDIS_REPLY_ERROR
            ? redis_error(err, x, "reading the cell's snapshot")
            : berth__error_set(err, BERTH_EIO, "RedisError", "",
                               "Redis aborted the transaction reading the cell's snapshot");
    for (size_t i = 0; i < 5; i++)
        if (x->element[i]->type == REDIS_REPLY_ERROR)
            return redis_error(err, x->element[i], "reading the cell's snapshot");
    return snapshot_apply(s, x, err);
}

bool berth__reply_is_moved(const redisReply *r)
{
    return is_moved(r);
}

bool berth__reply_is_no_function(const redisReply *r)
{
    return is_no_function(r);
}

int berth__store_redirect(berth_store_t *s, const redisReply *r, berth_error_t *err)
{
    return redirect(s, r, err);
}

/* ---- the host side (hostlink.c) ------------------------------------------------------------ */

int berth__store_open_bare(const berth_store_options_t *opts, berth_store_t **out,
                           berth_error_t *err)
{
    return store_open(opts, NULL, true, out, err);
}

struct redisReply *berth__store_command(berth_store_t *s, int argc, const char **argv,
                                        const size_t *lens, bool commit, const char *what,
                                        berth_error_t *err, int *rc)
{
    return command(s, argc, argv, lens, commit, what, err, rc);
}

void berth__store_key(const berth_store_t *s, char *out, size_t cap, const char *kind,
                      const char *name)
{
    key_name(s, out, cap, kind, name);
}

int berth__store_group_record(berth_store_t *s, const char *key, char **spec_json,
                              uint64_t *generation, char *host, size_t hcap,
                              berth_error_t *err)
{
    return store_group_read(s, key, spec_json, generation, host, hcap, err);
}

void berth__group_record_from_request(berth_engine_t *engine, const char *key,
                                      const char *host, uint64_t generation,
                                      const berth_request_t *req, const char *spec,
                                      berth__group_record_t *r)
{
    record_from_request(engine, key, host, generation, req, spec, r);
}

struct redisReply *berth__store_transaction(berth_store_t *s, size_t n,
                                            const char *const *const *argvs, const int *argcs,
                                            const char *what, berth_error_t *err, int *rc)
{
    return transaction(s, n, argvs, argcs, what, err, rc);
}

struct redisContext *berth__store_redis(berth_store_t *s)
{
    return s->c;
}

void berth__store_timeout_restore(berth_store_t *s)
{
    if (s->c == NULL)
        return;
    struct timeval tv = {(time_t)(s->opts.timeout_ms / 1000),
                         (suseconds_t)(s->opts.timeout_ms % 1000) * 1000};
    redisSetTimeout(s->c, tv);
}
