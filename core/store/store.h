/*
 * store.h: declarations shared by the Redis store's own files (store*.c,
 * codec.c, functions.c), the files that reach a cell through a store
 * (hostlink.c, pool.c, ngroup.c, calls.c, effects.c, store_images.c) and their
 * tests.  What only the store's files share is store-internal.h's.
 *
 * Nothing here is published: names are berth__ and hidden.  The records
 * described here are the bytes Berth keeps in Redis (store.c documents the
 * keys); their layout is a schema with a version, and a reader must refuse
 * a version it does not know rather than guess.
 */
#ifndef BERTH_STORE_H
#define BERTH_STORE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "internal.h"

/* The record schema this library writes and the only one it reads. */
#define BERTH__RECORD_VERSION 1

/* Bytes borrowed from a buffer the caller keeps alive (a decoded record's
 * strings point into the record's own bytes).  ptr NULL: absent (nil). */
typedef struct berth__bytes {
    const char *ptr;
    size_t len;
} berth__bytes_t;

/* A host as Redis holds it under berth:{C}:hosts.  GPU SKU and zone travel
 * by name, never by engine id: ids differ between engines.  `epoch` is the
 * change-log sequence number of the host's last put; a commit names the
 * epoch its replica saw, so a host whose attributes changed meanwhile is a
 * conflict rather than a silent mismatch. */
typedef struct berth__host_record {
    berth__bytes_t name;
    uint32_t cores;
    uint32_t memory_mib;
    berth__bytes_t gpu_sku;         /* absent when gpu_count == 0           */
    uint32_t gpu_count;
    uint32_t os;                    /* berth_os_t                           */
    uint32_t os_build;
    berth__bytes_t zone;            /* absent: no zone                      */
    uint32_t features;              /* BERTH_HOST_* bits                    */
    uint32_t state;                 /* berth_host_state_t                   */
    uint32_t used_millicores;
    uint32_t used_memory_mib;
    uint32_t used_gpus;
    uint32_t groups;
    uint64_t epoch;
} berth__host_record_t;

/* A group as Redis holds it under berth:{C}:groups.  Zones and the GPU SKU
 * by name; the four digests are 64-bit values kept as 8-byte big-endian
 * strings, because the Redis Functions (Lua numbers are doubles) must never
 * carry them as numbers. */
typedef struct berth__group_record {
    berth__bytes_t key;
    berth__bytes_t host;
    uint64_t generation;            /* 1 for the first placement, +1 each commit */
    uint32_t millicores;
    uint32_t requested_millicores;
    uint32_t memory_mib;
    uint32_t gpu_count;
    berth__bytes_t gpu_sku;         /* absent when gpu_count == 0           */
    uint32_t os;
    uint32_t os_build;
    size_t nzones;
    berth__bytes_t zones[BERTH_ZONES_MAX];
    uint32_t sku;                   /* berth_sku_t                          */
    uint32_t priority;              /* berth_priority_t                     */
    uint32_t restart;               /* berth_restart_policy_t               */
    uint64_t cpu_digest, memory_digest, gpu_digest, ports_digest;
    berth__bytes_t spec;            /* the group's document, or absent      */
    /* A group claimed from a standby pool (pool.c) keeps running as the
     * runtime group the pool member ran as: that member's key, generation
     * and document digest.  runtime absent: the runtime group is the key's
     * own (every other record). */
    berth__bytes_t runtime;
    uint64_t runtime_generation;
    uint64_t runtime_digest;
} berth__group_record_t;

/* Appends the msgpack encoding of *r to `buf` (the caller clears it first
 * when it wants the record alone).  Returns 0 or BERTH_ENOMEM. */
int berth__host_record_encode(msgpack_sbuffer *buf, const berth__host_record_t *r);

/* Decodes one host record of `len` bytes into *r, whose strings then point
 * into `data` (keep it alive while *r is used).  Refuses anything that is
 * not a well-formed record of version BERTH__RECORD_VERSION with
 * BERTH_EINVAL and a message in *err ("CorruptRecord").  Missing optional
 * members (gpu_sku, zone) read as absent: the Redis Functions drop nils.
 * On failure *r is left unspecified. */
int berth__host_record_decode(const char *data, size_t len, berth__host_record_t *r,
                              berth_error_t *err);

/* Same as berth__host_record_encode() for a group record. */
int berth__group_record_encode(msgpack_sbuffer *buf, const berth__group_record_t *r);

/* Same as berth__host_record_decode() for a group record. */
int berth__group_record_decode(const char *data, size_t len, berth__group_record_t *r,
                               berth_error_t *err);

/* The Redis Functions library (Lua, "#!lua name=berth"), loaded with
 * FUNCTION LOAD REPLACE.  A static NUL-terminated string. */
/* Encodes a GPU SKU as the cell's SKU record: {v, name, offers: [[count,
 * max_millicores, max_memory_mib], ...]}.  Returns 0 or BERTH_ENOMEM. */
int berth__sku_record_encode(msgpack_sbuffer *buf, const berth_gpu_sku_t *sku);

/* Decodes a SKU record into *sku.  Returns 0, or BERTH_EINVAL for a record
 * that is malformed or of an unknown version (err says which member). */
int berth__sku_record_decode(const char *data, size_t len, berth_gpu_sku_t *sku,
                             berth_error_t *err);

/* Encodes per-group limits as the cell's limits record: {v, mc, mem,
 * containers, volumes, ports} (berth_limits_t's members in order).
 * Returns 0 or BERTH_ENOMEM. */
int berth__limits_record_encode(msgpack_sbuffer *buf, const berth_limits_t *limits);

/* Decodes a limits record into *limits.  Returns 0, or BERTH_EINVAL for a
 * record that is malformed, of an unknown version, or lacks a member or
 * holds a zero (err says which member). */
int berth__limits_record_decode(const char *data, size_t len, berth_limits_t *limits,
                                berth_error_t *err);

extern const char berth__functions_source[];

/* ---- internals the asynchronous store (store_async.c) shares with the store ---- */
/*
 * The asynchronous store binds a synchronous one (its engine, replica state
 * and key names) and drives the same steps -- choose, roll back, commit,
 * apply from the reply or the log -- over its own non-blocking connection.
 * None of these functions does I/O.
 */

struct redisReply;

#define BERTH__KEY_MAX 255u                                 /* bytes in a group key */
#define BERTH__KEYNAME_MAX (16u + 63u + 32u + BERTH_NAME_MAX) /* a Redis key name   */

/* What one placement needs between choosing and committing.  key, request
 * and spec are borrowed from the caller of berth__store_choose(). */
typedef struct berth__pending {
    const char *key;
    const berth_request_t *request;
    const char *spec;
    const char *prefer;             /* a new group's preferred host, or NULL */
    bool existed;                   /* committed before this choice         */
    uint64_t generation;            /* its generation then (0: none)        */
    berth_request_t prev_request;   /* its request then                     */
    char prev_host[BERTH_NAME_MAX + 1];
    berth_placement_t choice;
    berth_request_t committed;      /* the request the record carries       */
} berth__pending_t;

/* An FCALL berth_place: argv/lens point into this struct and into the
 * store's record buffer, which the next encoding call overwrites, so send it
 * before building another. */
#define BERTH__PLACE_ARGC 22         /* FCALL berth_place's words           */
typedef struct berth__place_call {
    char hg_new[BERTH__KEYNAME_MAX], as_new[BERTH__KEYNAME_MAX];
    char hg_old[BERTH__KEYNAME_MAX], as_old[BERTH__KEYNAME_MAX];
    char expect[24], mc[16], mem[16], gpu[16], epoch[24];
    const char *argv[BERTH__PLACE_ARGC];
    size_t lens[BERTH__PLACE_ARGC];
} berth__place_call_t;

/* An FCALL berth_release: argv points into this struct and at the key. */
typedef struct berth__release_call {
    char hg[BERTH__KEYNAME_MAX], as[BERTH__KEYNAME_MAX], expect[24];
    const char *argv[14];
} berth__release_call_t;

/* The XRANGE that reads the change log after the last entry applied. */
typedef struct berth__log_call {
    char start[80];
    const char *argv[6];
} berth__log_call_t;

/* SIGPIPE blocked in the calling thread between block and unblock, and one
 * SIGPIPE raised meanwhile consumed (store_conn.c explains why). */
typedef struct berth__sigpipe_guard {
    sigset_t old;
    bool pending_before;
} berth__sigpipe_guard_t;

void berth__sigpipe_block(berth__sigpipe_guard_t *g);
void berth__sigpipe_unblock(berth__sigpipe_guard_t *g);

/* Returns `expr` (an int) evaluated with SIGPIPE guarded: the body of a
 * public call that talks to Redis, written once for every such call. */
#define BERTH__RETURN_GUARDED(expr)                                                      \
    do {                                                                                 \
        berth__sigpipe_guard_t guard_;                                                   \
        berth__sigpipe_block(&guard_);                                                   \
        int rc_ = (expr);                                                                \
        berth__sigpipe_unblock(&guard_);                                                 \
        return rc_;                                                                      \
    } while (0)

/* Attaches a new non-blocking hiredis context to `base` with SIGPIPE-safe
 * handlers (redis_async.c); the context frees them with itself.  Returns 0,
 * or -1 when out of memory (the context is then the caller's to free). */
struct redisAsyncContext;
struct event_base;
int berth__redis_async_attach(struct redisAsyncContext *ac, struct event_base *base);

/* A new non-blocking connection to where `store` points now, attached to
 * `base` (berth__redis_async_attach()), its data pointer set to `data`.
 * Returns it, or NULL with `why` naming the failure. */
struct redisAsyncContext *berth__redis_async_connect(const berth_store_t *store,
                                                     struct event_base *base, void *data,
                                                     char *why, size_t cap);

/* redisAsyncFree() with SIGPIPE blocked.  Accepts NULL.  Never call it
 * from inside one of the context's own callbacks. */
void berth__redis_async_free(struct redisAsyncContext *ac);

/* The asynchronous store's synchronous store (its replica, key names and
 * endpoint) and its event_base, for store_async_calls.c. */
berth_store_t *berth__store_async_sync(berth_store_async_t *s);
struct event_base *berth__store_async_base(berth_store_async_t *s);

/* The asynchronous store's extension slots: the state of what is built
 * on it (store_async_calls.c's reads and agent calls, store_async_session.c's
 * sessions), each made on first use.  Returns the slot (NULL until set);
 * when the slot is set, `free_fn` is what the store calls on it as it
 * closes, before it frees itself (sessions first, then calls; each
 * completes what is still pending with BERTH_EIO "Closed").  The store
 * knows nothing else of that state: the layers stay one-way. */
typedef enum berth__async_ext {
    BERTH__ASYNC_EXT_CALLS = 0,
    BERTH__ASYNC_EXT_SESSIONS,
    BERTH__ASYNC_EXTS
} berth__async_ext_t;
typedef void (*berth__async_ext_free_fn)(void *state);
void **berth__store_async_ext(berth_store_async_t *s, berth__async_ext_t which,
                              berth__async_ext_free_fn free_fn);

/* Effects (effects.c): a validated copy that owns its bytes. */
typedef struct berth__effect_copy {
    const char *op, *key, *field, *value, *n;
    size_t value_len;
} berth__effect_copy_t;

typedef struct berth__effects {
    size_t n;
    berth__effect_copy_t e[BERTH_EFFECTS_MAX];
    char bytes[];
} berth__effects_t;

/* Checks effects[0..n-1] (berth.h's rules) and copies them with the cell's
 * key names into *out (NULL for n 0; free with berth__effects_free()).
 * Returns 0, BERTH_EINVAL, BERTH_ETOOBIG or BERTH_ENOMEM. */
int berth__effects_copy(const berth_store_t *s, const berth_effect_t *effects, size_t n,
                        berth__effects_t **out, berth_error_t *err);
void berth__effects_free(berth__effects_t *fx);

/* An FCALL's words; argv and lens are allocated, the words point into the
 * caller's strings, the effects and this struct. */
typedef struct berth__fcall {
    const char **argv;
    size_t *lens;
    int argc;
    char numkeys[16], count[16];
} berth__fcall_t;

/* Lays out FCALL `function` with keys[0..nkeys-1] and args[0..nargs-1]
 * (arg_lens NULL: strlen) followed by the effects (fx may be NULL: none),
 * as functions.c's *_fx Functions read them.  Returns 0 or BERTH_ENOMEM. */
int berth__effects_fcall(const char *function, int nkeys, const char *const *keys,
                         int nargs, const char *const *args, const size_t *arg_lens,
                         const berth__effects_t *fx, berth__fcall_t *out, berth_error_t *err);

/* ONE CALL FOR MANY PLACEMENTS: FCALL berth_place_many (functions.c), up to
 * BERTH__PLACE_MANY_MAX placements a call (bounding how long one call
 * holds Redis), each with its own effects, each re-checked and applied or
 * refused on its own, in order, with one answer each.  The words point
 * into the struct: each placement's key names and its two records (copied
 * out of the store's encoding buffers, which the next placement reuses),
 * and into its effects, which must outlive the call's sending. */
#define BERTH__PLACE_MANY_MAX 64u
typedef struct berth__many_call {
    berth__place_call_t one[BERTH__PLACE_MANY_MAX];
    char *rec[BERTH__PLACE_MANY_MAX];          /* the group record, then the log's */
    const berth__effects_t *fx[BERTH__PLACE_MANY_MAX]; /* NULL: none   */
    char ne[BERTH__PLACE_MANY_MAX][8];
    size_t n;
    char numkeys[16], count[16];
    const char **argv;
    size_t *lens;
    int argc;
} berth__many_call_t;

/* Adds placement p (chosen, not yet undone or already undone: its
 * choice and generation are what is committed) with effects fx (may be
 * NULL) to m, which holds fewer than BERTH__PLACE_MANY_MAX.  Returns 0, or
 * a negative code with m unchanged. */
int berth__many_add(berth_store_t *s, berth__many_call_t *m, const berth__pending_t *p,
                    const berth__effects_t *fx, berth_error_t *err);
/* Lays m out as one FCALL in m->argv/lens/argc.  Returns 0 or BERTH_ENOMEM. */
int berth__many_finish(berth_store_t *s, berth__many_call_t *m, berth_error_t *err);
/* Frees what m holds and empties it (a zeroed m is empty). */
void berth__many_clear(berth__many_call_t *m);
void berth__fcall_free(berth__fcall_t *c);

/* A refusal by an effect's guard (reason "changed" or "taken", reply r):
 * fills err (berth.h) and returns BERTH_ESTALE or BERTH_EEXIST; any other
 * reason returns 0. */
int berth__effects_refusal(const struct redisReply *r, const char *reason, const char *message,
                           berth_error_t *err);

/* The engine the store binds (pool.c builds records and requests in it). */
berth_engine_t *berth__store_engine(berth_store_t *s);

/* The store's options as open() completed them (url and cell point into the
 * store), its engine, and where Redis is: a TCP host and port, or a unix
 * socket path and port 0; `url` is the one in use (after a redirection). */
const berth_store_options_t *berth__store_options(const berth_store_t *s);
void berth__store_endpoint(const berth_store_t *s, const char **host, int *port,
                           const char **url);

/* The connection to the store's endpoint failed or was lost (an
 * asynchronous connection, which must not block): points the store at the
 * next Redis node it knows, whose MOVED will name the cell's master after
 * a failover, and then marks the replica stale (store_nodes.c).  Nothing
 * for a store that knows one node.  No I/O. */
void berth__store_failover(berth_store_t *s);

/* Lets berth_engine_request_place() on `engine` preempt Spot groups (on, the
 * default) or not (engine.c).  A store turns it off on its replica: the
 * replica holds only what the log says, so a preemption is planned with
 * berth_engine_preemption_plan() and committed through Redis instead. */
void berth__engine_preempt_set(berth_engine_t *engine, bool on);

/* The preemption plan of a redeploy of the placed group `key` with
 * `request` (berth.h, "Priority and preemption"): when the group fits
 * somewhere without evicting anything, out->victims is 0 and out->host is
 * where it would go; else the Spot groups of its own host that make room
 * (berth_engine_victim_get() names them; out->host is that host).  Changes no
 * placement.  Returns 0, BERTH_ENOENT (not placed), BERTH_EINVAL (a change
 * a redeploy cannot make), BERTH_ENOSPC (no plan) or BERTH_ENOMEM. */
int berth__engine_redeploy_preemption(berth_engine_t *engine, const char *key,
                                      const berth_request_t *request,
                                      berth_preemption_t *out, berth_error_t *err);

/* Chooses a host for p in the engine, which holds the choice until
 * berth__store_unchoose(p).  Returns 0 or the engine's error. */
int berth__store_choose(berth_store_t *s, berth__pending_t *p, berth_error_t *err);
void berth__store_unchoose(berth_store_t *s, const berth__pending_t *p);

/* Builds the commit of a chosen-and-undone p into *c.  0 or BERTH_ENOMEM. */
int berth__store_place_call(berth_store_t *s, const berth__pending_t *p,
                            berth__place_call_t *c, berth_error_t *err);

/* Applies p's commit from its FCALL reply when its log entry is the next
 * one the replica needs; false leaves it to the log. */
bool berth__store_own_apply(berth_store_t *s, const berth__pending_t *p,
                            const struct redisReply *r);

/* Builds the release of the group under `key` into *c (`key` must outlive
 * it), keeping its document in the cell's documents hash when `keep`.
 * BERTH_ENOENT when the replica does not hold the group. */
int berth__store_release_call(berth_store_t *s, const char *key, bool keep,
                              berth__release_call_t *c, berth_error_t *err);

/* An FCALL berth_preempt (store_commit.c's berth__store_preempt_call()). */
typedef struct berth__preempt_call {
    const char **argv;
    size_t *lens;
    char (*gens)[24];
    int argc;
    uint32_t victims;
    bool existed;
    char host[BERTH_NAME_MAX + 1];
    char hg[BERTH__KEYNAME_MAX], as[BERTH__KEYNAME_MAX], ev[BERTH__KEYNAME_MAX];
    char expect[24], mc[16], mem[16], gpu[16], epoch[24], count[16];
} berth__preempt_call_t;

int berth__store_preempt_call(berth_store_t *s, const char *key, bool existed,
                              const berth_request_t *request, const char *spec,
                              berth__preempt_call_t *c, berth_error_t *err);
void berth__preempt_call_free(berth__preempt_call_t *c);

/* The keys and arguments of an FCALL berth_restart of the placed group
 * `key` as the replica knows it (`key` must outlive c).  BERTH_ENOENT when
 * the replica does not hold the group. */
typedef struct berth__restart_call {
    char host[BERTH_NAME_MAX + 1];
    char as[BERTH__KEYNAME_MAX], expect[24];
    const char *keys[2];
    const char *args[3];
} berth__restart_call_t;

int berth__store_restart_call(berth_store_t *s, const char *key, berth__restart_call_t *c,
                              berth_error_t *err);

/* The generation of group `key` in the replica: 0, or BERTH_ENOENT. */
int berth__store_generation(berth_store_t *s, const char *key, uint64_t *generation);

/* A Function's reply: 1 applied, 0 refused (reason, message), or BERTH_EIO. */
int berth__store_fcall_result(const struct redisReply *r, char *reason, size_t rcap,
                              char *message, size_t mcap, berth_error_t *err);

/* Catching up: the XRANGE to send, and applying its reply: 0, or 1 when
 * the replica must reload its snapshot (the store is then marked stale);
 * *more when a full page came back and another XRANGE is needed. */
void berth__store_log_call(const berth_store_t *s, berth__log_call_t *c);
int berth__store_log_apply(berth_store_t *s, const struct redisReply *r, bool *more);

/* True when the replica must reload its snapshot before its next choice. */
bool berth__store_stale(const berth_store_t *s);

/* The snapshot: the five commands to send inside MULTI/EXEC (argvs[i] has
 * argcs[i] arguments, pointing into this struct and the store), and loading
 * EXEC's reply.  Returns 0 or BERTH_EIO; on failure the engine is empty and
 * the store stale. */
/* The snapshot is this many reads in one MULTI/EXEC: hosts, groups, seq,
 * the newest log entry, GPU SKUs, the cell's limits, its sandbox policy and
 * its subnets. */
#define BERTH__SNAPSHOT_READS 8

typedef struct berth__snapshot_call {
    const char *argv[BERTH__SNAPSHOT_READS][6];
    int argcs[BERTH__SNAPSHOT_READS];
} berth__snapshot_call_t;

void berth__store_snapshot_call(const berth_store_t *s, berth__snapshot_call_t *c);
int berth__store_snapshot_apply(berth_store_t *s, const struct redisReply *x,
                                berth_error_t *err);

/* A Cluster redirection ("MOVED slot host:port"), and Redis lacking Berth's
 * Functions ("Function not found"). */
bool berth__reply_is_moved(const struct redisReply *r);
bool berth__reply_is_no_function(const struct redisReply *r);

/* Points the store at the node a MOVED reply names (remembering it),
 * without connecting.  Returns 0, or BERTH_EIO for an unreadable
 * redirection. */
int berth__store_redirect(berth_store_t *s, const struct redisReply *r, berth_error_t *err);

/* The host side's access to a cell (hostlink.c): a store (`bare`: with no
 * engine and no snapshot, `engine` NULL), its commands (store_conn.c:
 * redirections, reloaded functions, one reconnect unless `commit`), key
 * names, and group records (document, generation, host; each output
 * optional). */
int berth__store_open(const berth_store_options_t *opts, berth_engine_t *engine, bool bare,
                      berth_store_t **out, berth_error_t *err);
/* WAIT's words for the store's options (wait_replicas, wait_timeout_ms),
 * written into w (argv[0..2], the numbers in w's own buffers). */
typedef struct berth__wait_words {
    const char *argv[3];
    char replicas[16], ms[16];
} berth__wait_words_t;
void berth__wait_words(const berth_store_t *s, berth__wait_words_t *w);

/* Whether WAIT's reply r confirms the store's wait_replicas; otherwise
 * sets err to BERTH_EIO "NotReplicated" naming `what` (r NULL: the reply
 * was lost) and returns false. */
bool berth__wait_confirmed(const berth_store_t *s, const struct redisReply *r, const char *what,
                           berth_error_t *err);

struct redisReply *berth__store_command(berth_store_t *s, int argc, const char **argv,
                                        const size_t *lens, bool commit, const char *what,
                                        berth_error_t *err, int *rc);
void berth__store_key(const berth_store_t *s, char *out, size_t cap, const char *kind,
                      const char *name);
int berth__store_group_record(berth_store_t *s, const char *key, char **spec_json,
                              uint64_t *generation, char *host, size_t hcap,
                              berth_error_t *err);

/* Reads the record of container group `key` (HGET of the cell's group hash)
 * and decodes it.  Returns 0 with *reply the Redis reply and *record the
 * record, whose bytes point into (*reply)->str: the caller frees the record
 * with free() and then the reply with freeReplyObject().  Returns
 * BERTH_ENOENT ("ResourceNotFound") when the cell has no such group,
 * BERTH_EIO when the record Redis holds does not decode (the decoder's
 * detail in err), or another negative code from Redis or the allocator; on
 * failure *reply and *record are NULL and nothing is left to free. */
int berth__store_group_fetch(berth_store_t *s, const char *key, struct redisReply **reply,
                             berth__group_record_t **record, berth_error_t *err);

/* Fills *r with the record of group `key` placed on `host` at `generation`
 * with request *req and document `spec` (NULL: none), and no runtime group:
 * zone and GPU SKU ids become the engine's names.  The record's bytes
 * borrow from key, host, spec and the engine, which must outlive it. */
void berth__group_record_from_request(berth_engine_t *engine, const char *key,
                                      const char *host, uint64_t generation,
                                      const berth_request_t *req, const char *spec,
                                      berth__group_record_t *r);

/* MULTI, the n commands (argvs[i] with argcs[i] words) and EXEC in one
 * pipeline: EXEC's reply (an array of the n replies), or NULL with *rc. */
struct redisReply *berth__store_transaction(berth_store_t *s, size_t n,
                                            const char *const *const *argvs, const int *argcs,
                                            const char *what, berth_error_t *err, int *rc);

/* The store's connection (NULL while disconnected), and its command
 * timeout set back to the options' after a longer wait (calls.c). */
struct redisContext *berth__store_redis(berth_store_t *s);
void berth__store_timeout_restore(berth_store_t *s);

/* Fills err ("RedisError": Redis refused `what` with error reply r, its
 * text cut at 400 bytes) and returns BERTH_EIO (store_conn.c). */
int berth__redis_error(berth_error_t *err, const struct redisReply *r, const char *what);

/* A new blocking connection to where the store points, with the store's
 * command timeout, owned by the caller (redisFree()): for a session's
 * thread (session.c).  Returns 0, BERTH_EIO or BERTH_ENOMEM. */
int berth__store_connect_new(const berth_store_t *s, struct redisContext **out,
                             berth_error_t *err);

/* The store a host's link talks through (hostlink.c). */
berth_store_t *berth__hostlink_store(berth_hostlink_t *link);

/* Agent calls (calls.c): a call from a call-stream entry's fields (NULL
 * when malformed), and the answer to one. */
berth_call_t *berth__call_parse(const struct redisReply *fields);
/* The header line of an agent's answer, newline included ({"ok": true,
 * "exitCode": N}, or the failure *error), which berth__call_answer_parse()
 * reads: a new string in *out (free()) of *len bytes.  Returns 0 or
 * BERTH_ENOMEM. */
int berth__call_header(int exit_code, const berth_error_t *error, char **out, size_t *len,
                       berth_error_t *err);
int berth__call_reply(berth_store_t *s, const berth_call_t *call, const char *output,
                      size_t len, int exit_code, const berth_error_t *error, berth_error_t *err);

/* The callers' side of agent calls (calls.c), shared by the blocking
 * caller and the asynchronous store (store_async_calls.c).  The agent
 * announces each answer on the cell's channel named by
 * berth__store_key(s, ..., BERTH__CALL_CHANNEL, ""), berth:{C}:replies;
 * the message is the reply key's name. */
#define BERTH__CALL_CHANNEL "replies"
#define BERTH__CALL_ADD_ARGC 22

/* Checks a call's own arguments in berth_store_container_logs()'s order:
 * the key, the container's name, a timeout above zero.  Returns 0 or
 * BERTH_EINVAL (InvalidArgument naming "key", "container" or
 * "timeout_ms"). */
int berth__call_check(const char *key, const char *container, uint32_t timeout_ms,
                      berth_error_t *err);

/* Stores in *out the JSON array of argv[0..argc-1] a call carries (free
 * with free()).  Returns 0, BERTH_EINVAL ("InvalidCommand", target
 * "command": a word that is NULL or not UTF-8) or BERTH_ENOMEM; *out is
 * NULL on failure. */
int berth__call_argv_json(const char *const *argv, size_t argc, char **out,
                          berth_error_t *err);

/* A call's XADD to the host's call stream, naming a new random reply key
 * (`reply`).  argv points into this struct and at op, key, container and
 * argv_json, which must outlive it. */
typedef struct berth__call_add {
    char stream[BERTH__KEYNAME_MAX], reply[BERTH__KEYNAME_MAX];
    char tail[16], timeout[16];
    const char *argv[BERTH__CALL_ADD_ARGC];
} berth__call_add_t;

/* Fills c for a call (the reply key's id from getrandom, lib/random.h).
 * Returns 0, or BERTH_EIO ("NoRandomBytes", in err) when the kernel gives
 * no random bytes: the call fails rather than risk a guessable key. */
int berth__call_add_build(const berth_store_t *s, berth__call_add_t *c, const char *op,
                          const char *key, const char *container, const char *host,
                          uint32_t tail, bool timestamps, const char *argv_json,
                          uint32_t timeout_ms, berth_error_t *err);

/* Reads the agent's answer (a reply key's value of `len` bytes): for an
 * answer "ok", 0 with the output in *out (NUL-terminated, free with
 * free()), its length in *out_len and the exit code in *exit_code (each
 * may be NULL); else the agent's failure (its code when it is a BERTH_E*
 * code, else BERTH_EIO, with its name, message and target) or BERTH_EIO
 * "AgentError" for an unreadable answer, and *out untouched. */
int berth__call_answer_parse(const char *v, size_t len, char **out, size_t *out_len,
                             int *exit_code, berth_error_t *err);

/* Fills err with "AgentUnavailable": host's agent gave no answer within
 * timeout_ms.  Returns BERTH_EIO. */
int berth__call_unanswered(berth_error_t *err, const char *host, uint32_t timeout_ms);

/* Checks a group key: 1 to BERTH__KEY_MAX bytes.  Returns 0, or
 * BERTH_EINVAL with the error (InvalidArgument, target "key"). */
int berth__group_key_check(const char *key, berth_error_t *err);

/* The value of member `name` in a stream entry's [field, value, ...]
 * reply (NULL when it is absent or the reply is not an array). */
const struct redisReply *berth__reply_field(const struct redisReply *fields, const char *name);
/* An integer reply, or a string reply holding a decimal, as a uint64_t
 * (store_conn.c). */
bool berth__reply_u64(const struct redisReply *r, uint64_t *out);

/* ---- the NGroup planner (ngroup.c): pure, no I/O, no allocation ---------------- */
/*
 * berth_store_ngroup_reconcile() reads the cell, describes it to the
 * planner and carries the actions out.  The planner decides: which members
 * to release, which to create in which zone on which host, which to
 * redeploy at the current revision.  Zones are indexes into the NGroup's
 * zone list (an NGroup without zones has one zone, 0); -1 is "none".
 */

typedef struct berth__ng_member {
    uint32_t index;                 /* n in "<name>-<n>"                    */
    int zone;                       /* zone of its host, or -1              */
    int host;                       /* index into the plan's hosts, or -1   */
    uint64_t revision;              /* 0: unknown (treated as old)          */
    bool available;                 /* Running at its current generation    */
    bool unhealthy;                 /* its view says Failed, Stopped or
                                     * Terminated at its current generation */
} berth__ng_member_t;

typedef struct berth__ng_host {
    int zone;                       /* -1: in none of the NGroup's zones    */
    bool eligible;                  /* ready and meets the template's static
                                     * constraints (OS, GPU SKU, SKU)       */
    uint32_t free_millicores;
    uint32_t free_memory_mib;
    uint32_t free_gpus;
} berth__ng_host_t;

typedef struct berth__ng_input {
    const berth__ng_member_t *members; /* by index, each index once        */
    size_t nmembers;
    const berth__ng_host_t *hosts;
    size_t nhosts;
    size_t nzones;                  /* >= 1                                 */
    uint32_t desired;
    uint32_t max_unavailable;       /* >= 1: without batch, the bound on the
                                     * unavailable members                  */
    uint32_t batch;                 /* >= 1: members updating at once (those
                                     * at the revision not yet available plus
                                     * those redeployed), 0: max_unavailable
                                     * bounds the rollout instead           */
    int32_t max_unhealthy_percent;  /* 0..100: the rollout stops (no update
                                     * at all) while more than this percent
                                     * of the members at the revision are
                                     * unhealthy; -1: never                 */
    bool paused;                    /* the pause between batches is running:
                                     * no batch starts                      */
    bool manual;                    /* no update at all: template changes reach
                                     * only members placed from now on      */
    bool replace;                   /* update by placing a new member at a
                                     * free index first and releasing an old
                                     * one once it is available              */
    uint32_t per_host_max;          /* > 0: no host takes a member while it
                                     * holds that many (fault domains)      */
    uint64_t revision;
    uint32_t millicores;            /* one member's demand                  */
    uint32_t memory_mib;
    uint32_t gpus;
} berth__ng_input_t;

/* What the planner saw besides its actions. */
typedef struct berth__ng_outcome {
    uint32_t waiting;               /* members at the revision not available */
    uint32_t unhealthy;             /* of those, the unhealthy ones: with
                                     * max_unhealthy_percent set and not
                                     * exceeded, they hold no batch back and
                                     * do not count against `batch`         */
    uint32_t outdated;              /* members left at an older revision    */
    bool halted;                    /* too many unhealthy: no update        */
    bool batch_started;             /* this step started a batch            */
} berth__ng_outcome_t;

typedef enum berth__ng_kind {
    BERTH__NG_REMOVE = 1,
    BERTH__NG_CREATE,
    BERTH__NG_UPDATE
} berth__ng_kind_t;

typedef struct berth__ng_action {
    berth__ng_kind_t kind;
    uint32_t index;                 /* the member                           */
    int zone;                       /* CREATE: its zone                     */
    int host;                       /* CREATE: the host to try first, or -1 */
    bool fallback;                  /* CREATE: the zone holding the fewest had
                                     * no room; this is the next one        */
} berth__ng_action_t;

/* The uint32_t words of scratch berth__ngroup_plan() needs. */
#define BERTH__NG_SCRATCH(nhosts, nzones, nmembers) \
    (4u * (nhosts) + (nzones) + (nmembers) + BERTH_NGROUP_MEMBERS_MAX)

/* Decides one step: removes first, then creates, then updates.  Writes at
 * most `cap` actions to out and returns how many it wrote; cap
 * BERTH_NGROUP_MEMBERS_MAX + nmembers always suffices.  *seen (may be
 * NULL) receives what the planner counted (members at the current
 * revision not available, ...).  `scratch` holds BERTH__NG_SCRATCH() words.
 *
 * The rollout: with `batch`, at most `batch` members update at once and a
 * batch starts only once every member at the revision is available, no
 * pause runs and no more than max_unhealthy_percent of the updated members are
 * unhealthy;
 * in place, a batch redeploys members (the unavailable ones first); with
 * `replace`, a batch places new members at free indexes and the old ones
 * are released as the new ones become available.  Without `batch`, the
 * former bound: unavailable members at most max_unavailable. */
size_t berth__ngroup_plan(const berth__ng_input_t *in, uint32_t *scratch,
                          berth__ng_action_t *out, size_t cap, berth__ng_outcome_t *seen);

#endif /* BERTH_STORE_H */
