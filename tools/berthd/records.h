/*
 * records.h: berthd's own records in Redis -- the one module that reads
 * and writes them.
 *
 * REDIS KEYS (all in the cell's hash tag, beside the library's; names as
 * berth_effect_t gives them, without the "berth:{C}:" prefix):
 *   resources   HASH   "<sub>/<rg>/<name>" (lowercase) -> resource record JSON
 *                      {id, subscription, resourceGroup, name, location, tags,
 *                      digest, dns, spot, images, ip, state, lastHost,
 *                      generation, created, updated}.  The group's document is not here:
 *                      the library holds it, once (the group's record while
 *                      placed, the cell's kept documents while stopped or
 *                      evicted; berth_store_async_document_read()).  The
 *                      record keeps what berthd decides with: `digest` (SHA-1
 *                      of the document, digest.h), `dns`
 *                      ("<location>/<label>" of its DNS label, or ""),
 *                      `spot` (its priority is Spot), `images` (its
 *                      containers' distinct image references, for a
 *                      tenant's cachedImages; absent in a record written
 *                      before Berth kept it: read as none until the group's
 *                      next PUT) and, for a group in a subnet, `ip` (its
 *                      private address's claim, "<subnet hash>/<a.b.c.d>",
 *                      api_subnets.c)
 *   index       ZSET   score 0, the same keys, for listing (ZRANGEBYLEX)
 *   dns         HASH   "<location>/<label>" -> group key
 *   ips         HASH   "<subnet hash>/<a.b.c.d>" -> group key: the private
 *                      addresses of the groups in subnets
 *   usage       HASH   "<sub>/<location>" -> the number of the subscription's
 *                      container groups in that location
 *   operations  HASH   operation id -> {key, kind, subscription, location,
 *                      generation, startTime}, pruned a day after startTime
 *   done:<crid> STRING a POST's first answer, 10 minutes
 *   exec:<id>   STRING an exec session, 60 seconds, single use, bound to the
 *                      subscription that made it
 *   execfail:<id> STRING the wrong passwords given for that session (the
 *                      session goes at the third), expiring with it
 * (profiles, profileindex and profilerevs:<h>, the container group
 * profiles' keys, are profiles.h's; they are read through this module.)
 *
 * WRITES.  Every write of a mutating request is an effect of the one
 * commit that carries the request out (berth_store_async_place_with() and
 * its siblings, berth.h "Effects"): the placement or release, the resource
 * record, its index entry, its DNS label, the usage count, the operation
 * record and a POST's answer change together in one Function call, or not
 * at all.  A record is written only if it is still the one the request
 * read (an EXPECT guard on its SHA-1), so two berthds never overwrite each
 * other's news.  This module builds those effects; it never writes a
 * resource record any other way.
 *
 * On a Redis Cluster, a command answered MOVED follows the redirection
 * (records.c).
 *
 * READS go over a non-blocking hiredis connection of this module's own on
 * berthd's event_base; every callback runs from the loop, exactly once,
 * never from inside the call that queued it; each command is bounded by
 * the timeout given at creation (the connection is dropped and its
 * commands fail with BERTH_EIO past it).
 *
 * This module must never block, and never touch the library's keys.
 */
#ifndef BERTHD_RECORDS_H
#define BERTHD_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "berth.h"

typedef struct bd_records bd_records_t;

/* A new reader for cell `cell` at `url` ("redis://HOST:PORT" or
 * "unix:///PATH") on `base`; connects on first use.  NULL when out of
 * memory.  Free with bd_records_free(): pending reads fail with BERTH_EIO
 * first.  Accepts NULL. */
bd_records_t *bd_records_new(struct event_base *base, const char *url, const char *cell,
                             uint32_t timeout_ms);
void bd_records_free(bd_records_t *r);

/* bd_records_new() for keys of another prefix than a cell's: every name
 * below is taken after `prefix` as given (at most 95 bytes), e.g. the
 * region's directory "berth:dir:{07}" with the name "" (region.c). */
bd_records_t *bd_records_new_keyed(struct event_base *base, const char *url, const char *prefix,
                                   uint32_t timeout_ms);

/* A resource record as read: the record (NULL when absent), and the SHA-1
 * of its stored text in 40 hex digits ("" when absent) for the EXPECT
 * guard of the commit that replaces it.  `rec` is borrowed: take a
 * reference to keep it. */
typedef void (*bd_record_cb)(int status, json_t *rec, const char *sha1, void *data);

/* Reads the resource record of `key`.  Returns 0 (cb called once later),
 * or BERTH_ENOMEM (nothing queued). */
int bd_records_get(bd_records_t *r, const char *key, bd_record_cb cb, void *data);

/* Reads a string or hash field of berthd's own (`name` as in the key list
 * above, `field` NULL for a string key).  text is NULL when absent. */
typedef void (*bd_text_cb)(int status, const char *text, size_t len, void *data);
int bd_records_read(bd_records_t *r, const char *name, const char *field, bd_text_cb cb,
                    void *data);

/* Takes a string key away (GETDEL: one reader only). */
int bd_records_take(bd_records_t *r, const char *name, bd_text_cb cb, void *data);

/* Counts one more at the string key `name` of berthd's own, in one atomic
 * step: made at 1 when absent, expiring `ttl_s` seconds after its first
 * count.  cb gets the new count as decimal text. */
int bd_records_count(bd_records_t *r, const char *name, uint32_t ttl_s, bd_text_cb cb,
                     void *data);

/* Runs the Lua `script` (EVAL) on the one key `name` (KEYS[1]) with
 * args[0..nargs-1] (ARGV, at most 4): its answer, text or nothing, for cb
 * (an integer answer arrives as no text).  Returns 0, BERTH_EINVAL (more
 * than 4 args) or BERTH_ENOMEM. */
int bd_records_script(bd_records_t *r, const char *script, const char *name,
                      const char *const *args, size_t nargs, bd_text_cb cb, void *data);

/* Sets string key `name` to text for ttl_s seconds. */
int bd_records_set(bd_records_t *r, const char *name, const char *text, uint32_t ttl_s,
                   bd_text_cb cb, void *data);

/* Lists up to `count` resource keys starting with `prefix`, after `after`
 * (NULL: from the first), with their records.  keys[i] and recs[i]
 * (NULL: the record vanished meanwhile) are borrowed; `more` tells that
 * more keys follow. */
typedef void (*bd_list_cb)(int status, const char *const *keys, json_t *const *recs, size_t n,
                           bool more, void *data);
int bd_records_list(bd_records_t *r, const char *prefix, const char *after, size_t count,
                    bd_list_cb cb, void *data);

/* bd_records_list() over another pair of berthd's keys: the ZSET `index`
 * (score 0, keys) and the HASH `hash` of their records (names as in the
 * key list above, at most 31 bytes; profiles.h's profileindex and
 * profiles).  Same callback and ownership. */
int bd_records_list_in(bd_records_t *r, const char *index, const char *hash, const char *prefix,
                       const char *after, size_t count, bd_list_cb cb, void *data);

/* Every operation record (id, JSON text), HSCAN from `cursor` ("0" first),
 * up to about `count`; `next` the cursor to go on with ("0": done). */
typedef void (*bd_scan_cb)(int status, const char *const *ids, const char *const *texts,
                           size_t n, const char *next, void *data);
int bd_records_operations_scan(bd_records_t *r, const char *cursor, size_t count,
                               bd_scan_cb cb, void *data);

/* PING, for /healthz: text "PONG" when Redis answers. */
int bd_records_ping(bd_records_t *r, bd_text_cb cb, void *data);

/* Drops operation records ids[0..n-1] (1..1000 of them; HDEL). */
int bd_records_operations_drop(bd_records_t *r, const char *const *ids, size_t n, bd_text_cb cb,
                               void *data);

/* ---- effects (no I/O) ------------------------------------------------------------------- */

#define BD_FX_MAX 14

/* A commit's effects under construction: their strings live here. */
typedef struct bd_fx {
    berth_effect_t e[BD_FX_MAX];
    size_t n;
    char *owned[BD_FX_MAX];         /* texts to free with the set           */
    size_t nowned;
    char fields[BD_FX_MAX][320];    /* fields and key names built here      */
} bd_fx_t;

void bd_fx_init(bd_fx_t *fx);
void bd_fx_free(bd_fx_t *fx);

/* The record of `key` must still have SHA-1 `sha1` ("": be absent). */
void bd_fx_expect(bd_fx_t *fx, const char *key, const char *sha1);

/* Writes (rec non-NULL) or removes the resource record of `key` and its
 * index entry.  Returns 0 or BERTH_ENOMEM. */
int bd_fx_record(bd_fx_t *fx, const char *key, const json_t *rec);
void bd_fx_record_del(bd_fx_t *fx, const char *key);

/* Claims DNS label field "<location>/<label>" for `key` (refused with
 * BERTH_EEXIST when another key holds it), or releases it while it names
 * `key`. */
void bd_fx_dns_claim(bd_fx_t *fx, const char *field, const char *key);
void bd_fx_dns_release(bd_fx_t *fx, const char *field, const char *key);

/* Claims private address field "<subnet hash>/<a.b.c.d>" (bd_ipam_field())
 * for `key` (refused with BERTH_EEXIST when another group holds it), or
 * releases it while it names `key`. */
void bd_fx_ip_claim(bd_fx_t *fx, const char *field, const char *key);
void bd_fx_ip_release(bd_fx_t *fx, const char *field, const char *key);

/* Adds delta to the usage count of (sub, location). */
void bd_fx_usage(bd_fx_t *fx, const char *sub, const char *location, int delta);

/* Records operation `id` ({key, kind, subscription, location, generation,
 * startTime}).  Returns 0 or BERTH_ENOMEM. */
int bd_fx_operation(bd_fx_t *fx, const char *id, const json_t *op);

/* Records a POST's first answer under client request id `crid` for
 * ttl_s seconds.  Returns 0 or BERTH_ENOMEM. */
int bd_fx_done(bd_fx_t *fx, const char *crid, const json_t *answer, uint32_t ttl_s);

/* Drops the library's eviction record of `key` (the group is placed anew,
 * stopped or deleted). */
void bd_fx_eviction_forget(bd_fx_t *fx, const char *key);

/* Drops the document the library keeps for `key` while the group is not
 * placed (a stopped or evicted group that is deleted). */
void bd_fx_document_forget(bd_fx_t *fx, const char *key);

/* The index of the first effect of `fx` of kind DNS claim, or -1. */
int bd_fx_dns_index(const bd_fx_t *fx);

/* The index of the first effect of `fx` of kind private address claim, or
 * -1. */
int bd_fx_ip_index(const bd_fx_t *fx);

#endif /* BERTHD_RECORDS_H */
