/*
 * store-internal.h: what the files of the synchronous store share and no
 * other file sees: the store itself, the replica's maps, and the functions
 * one of them calls in another.  The files, by job:
 *
 *   store.c           opening and closing a store, its options, the public
 *                     berth_store_* entry points (each SIGPIPE-guarded), and
 *                     the cell's KEY SCHEMA
 *   store_conn.c      the Redis connection: connecting, URL parsing, one
 *                     command, transactions, redirections, the SIGPIPE guard
 *   store_nodes.c     the Redis nodes known, for a master's failover
 *   store_replica.c   the replica: snapshot, change log, own commits applied,
 *                     records <-> engine, the group and host maps
 *   store_commit.c    commits one at a time: SKUs, hosts, a placement, a
 *                     preemption, a release, a restart
 *   store_batch.c     many placements in FCALL berth_place_many calls
 *   store_read.c      group records, instance views, kept documents, evictions
 *   store_failover.c  hosts whose agent went quiet, and their groups moved
 *   store_fsck.c      checking a cell's records against each other
 *
 * Other files reach a store through store.h.  Nothing here is published
 * (berth__ names, hidden), and nothing here may be included outside
 * core/store*.c.
 */
#ifndef BERTH_STORE_INTERNAL_H
#define BERTH_STORE_INTERNAL_H

#include <hiredis/hiredis.h>

#include "store.h"
#include "table.h"

#define BERTH__URL_MAX 512u
#define BERTH__NODES_MAX 32u        /* Redis nodes a store remembers        */

/* ---- a small string map: group key -> generation and request (store_replica.c) ---- */

/* What the replica knows of a group (or, in the host map, of a host: only
 * `value`, its epoch, is used).  `mark` flags a group already chosen in the
 * current batch round. */
typedef struct berth__map_entry {
    char *key;                      /* a malloc'd copy, NUL-terminated     */
    uint32_t keylen;
    uint32_t hash;
    uint32_t mark;
    uint64_t value;                 /* group generation / host epoch        */
    berth_request_t request;        /* the group's request as committed     */
} berth__map_entry_t;

/* The entries in one dense array, found through libberth's one hash table
 * (table.h) by their position.  All zero is an empty map.  An entry
 * pointer stays valid until the next put or del on the map. */
typedef struct berth__map {
    berth__map_entry_t *e;
    uint32_t n, cap;
    berth__table_t index;           /* key hash -> position in e            */
} berth__map_t;

/* The entry of `key` (`len` bytes), or NULL. */
berth__map_entry_t *berth__map_find(const berth__map_t *m, const char *key, size_t len);
/* The entry for `key`, created (zeroed) when missing.  NULL: no memory, and
 * the map is unchanged. */
berth__map_entry_t *berth__map_put(berth__map_t *m, const char *key, size_t len);
/* Removes `key` if present. */
void berth__map_del(berth__map_t *m, const char *key, size_t len);
/* Empties the map (keeping its memory), or frees it all. */
void berth__map_clear(berth__map_t *m);
void berth__map_free(berth__map_t *m);

/* ---- the store ---------------------------------------------------------------------- */

/* A Redis node the store knows (store_nodes.c). */
typedef struct berth__node {
    char host[256];
    int port;
} berth__node_t;

struct berth_store {
    berth_store_options_t opts;
    char url[BERTH__URL_MAX];
    char cell[BERTH_NAME_MAX + 1];
    char host[BERTH__URL_MAX];      /* TCP host, or the unix socket path    */
    int port;                       /* 0: unix socket                       */
    redisContext *c;
    berth__node_t nodes[BERTH__NODES_MAX]; /* the URL's, then learned       */
    uint32_t nnodes;
    berth_engine_t *engine;
    char prefix[96];                /* "berth:{CELL}:"                      */
    size_t prefix_len;
    char k_meta[128], k_hosts[128], k_groups[128], k_log[128], k_seq[128], k_skus[128];
    char k_documents[128];
    uint64_t seq;                   /* sequence of the last entry applied   */
    char last_id[64];               /* id of the last log entry applied     */
    bool stale;                     /* engine out of line: reload at next sync */
    berth__map_t groups;            /* key -> generation, request           */
    berth__map_t hosts;             /* name -> epoch                        */
    uint32_t round;                 /* batch round counter, for entry.mark  */
    msgpack_sbuffer buf;            /* record encoding, reused              */
    msgpack_sbuffer buf_log;        /* the same record without its document,
                                     * for the change log                   */
    berth__group_record_t *rec;     /* group record scratch, reused         */
    berth_limits_t own_limits;      /* the engine's limits when opened: the
                                     * replica's while the cell sets none   */
    berth_sandbox_policy_t own_sandbox; /* likewise, its sandbox policy     */
    char maxlen[24];                /* log_max_len as text                  */
};

/* ---- the connection (store_conn.c) -------------------------------------------------- */

/* Fill err ("RedisUnavailable": the connection failed while `what`) and
 * return BERTH_EIO; berth__redis_error() (store.h) for a refusal. */
int berth__redis_unavailable(berth_store_t *s, berth_error_t *err, const char *what);

/* Opens a new connection, replacing the old one: to s->host/s->port, or
 * when that node does not answer, to the next known node that does (which
 * then becomes the store's endpoint, and the replica is marked stale: the
 * cell's master may now be a promoted replica that lacks commits the old
 * one applied and never acknowledged).  Learns the cluster's nodes from
 * the new connection.  Returns 0, or BERTH_EIO with the first node's
 * failure in err. */
int berth__store_connect(berth_store_t *s, berth_error_t *err);

/* ---- the nodes known (store_nodes.c) ------------------------------------------------ */

/* Remembers TCP node host:port (once; nothing when the list is full or the
 * address is unusable). */
void berth__store_node_add(berth_store_t *s, const char *host, int port);
/* Points the store at the known node after its endpoint (the first when
 * the endpoint is not among them).  False, nothing changed: a unix socket
 * or a single node. */
bool berth__store_node_next(berth_store_t *s);
/* Asks the connected node for CLUSTER SLOTS and remembers every master and
 * replica named.  Nothing on a Redis that is not a cluster. */
void berth__store_nodes_learn(berth_store_t *s);

/* FUNCTION LOAD REPLACE of Berth's Functions on the connection. */
int berth__functions_load(berth_store_t *s, berth_error_t *err);

/* Parses a redis://HOST:PORT or unix:///PATH URL, or several redis:// URLs
 * separated by commas (nodes of one cluster), into s->url, s->host and
 * s->port (the first) and the known nodes.  Returns 0 or BERTH_EINVAL
 * ("InvalidStoreOptions"). */
int berth__store_url_parse(berth_store_t *s, const char *url, berth_error_t *err);

/* ---- the replica (store_replica.c) -------------------------------------------------- */

/* Copies borrowed bytes into a NUL-terminated buffer of `cap`; false when
 * they do not fit.  And a C string as bytes (absent when NULL or empty). */
bool berth__bytes_cstr(berth__bytes_t b, char *out, size_t cap);
berth__bytes_t berth__cstr_bytes(const char *s);

/* Strings of a host description decoded from a record. */
typedef struct berth__host_strings {
    char name[BERTH_NAME_MAX + 1];
    char sku[BERTH_GPU_SKU_NAME_MAX + 1];
    char zone[BERTH_NAME_MAX + 1];
} berth__host_strings_t;

/* The seq of the newest log entry's last op in an XREVRANGE reply, and the
 * entry's id; false when the reply holds no well-formed entry. */
bool berth__log_newest(const redisReply *x, uint64_t *seq, const char **id);

/* Empties the engine and loads the cell's snapshot into it.  On failure the
 * engine is left empty and the store marked stale. */
int berth__store_snapshot_load(berth_store_t *s, berth_error_t *err);

/* Catches the replica up with the change log (a stale one reloads the
 * snapshot).  Returns 0 or a negative code. */
int berth__store_sync(berth_store_t *s, berth_error_t *err);

/* ---- commits (store_commit.c, store_batch.c) ---------------------------------------- */

int berth__store_gpu_sku_put(berth_store_t *s, const berth_gpu_sku_t *sku, berth_error_t *err);
int berth__store_limits_put(berth_store_t *s, const berth_limits_t *limits, berth_error_t *err);
int berth__store_subnets_put(berth_store_t *s, const berth_subnet_t *subnets, size_t n,
                             berth_error_t *err);
int berth__store_sandbox_put(berth_store_t *s, berth_sandbox_policy_t policy,
                             berth_error_t *err);
int berth__store_host_put(berth_store_t *s, const berth_host_t *host, berth_error_t *err);
int berth__store_host_set_state(berth_store_t *s, const char *name, berth_host_state_t state,
                                berth_error_t *err);
int berth__store_host_remove(berth_store_t *s, const char *name, berth_error_t *err);
/* berth_store_place_prefer() without the guard (prefer may be NULL). */
int berth__store_place(berth_store_t *s, const char *key, const berth_request_t *request,
                       const char *prefer, const char *spec_json, berth_placement_t *out,
                       berth_error_t *err);
int berth__store_place_batch(berth_store_t *s, size_t n, const char *const *keys,
                             const berth_request_t *requests, berth_placement_t *outs,
                             int *results, berth_error_t *err);
int berth__store_release(berth_store_t *s, const char *key, berth_error_t *err);
int berth__store_group_restart(berth_store_t *s, const char *key, berth_error_t *err);

/* ---- reads, failover, fsck (store_read.c, store_failover.c, store_fsck.c) ------------ */

int berth__store_view_read(berth_store_t *s, const char *key, char **json, berth_error_t *err);
int berth__store_metrics_read(berth_store_t *s, const char *key, char **json,
                              berth_error_t *err);
/* The document the cell keeps for a group that is not placed. */
int berth__store_kept_read(berth_store_t *s, const char *key, char **spec_json,
                           berth_error_t *err);
int berth__store_eviction_read(berth_store_t *s, const char *key, berth_eviction_t *out,
                               berth_error_t *err);
int berth__store_eviction_forget(berth_store_t *s, const char *key, berth_error_t *err);
int berth__store_hosts_expire(berth_store_t *s, berth_store_expire_cb cb, void *data,
                              berth_error_t *err);
int berth__store_fsck(berth_store_t *s, berth_store_fsck_cb cb, void *data,
                      berth_error_t *err);

#endif /* BERTH_STORE_INTERNAL_H */
