/*
 * store_commit.c: the store's commits, one at a time: GPU SKUs, the cell's
 * per-group limits and hosts (put, state, removal), a placement (choose in the engine, undo, FCALL
 * berth_place, retry on a conflict), a preemption (FCALL berth_preempt),
 * a release and a restart, and the call builders the asynchronous store
 * shares (store.h).  A batch of placements is store_batch.c's.
 *
 * This file must never report success for a commit whose reply it did not
 * read, never leave a choice in the engine past the commit it was made for
 * (the log brings the change back), and never hold the store's record
 * buffers past the call that encoded them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store-internal.h"
#include "subnets.h"

/* ---- Function calls ------------------------------------------------------------------- */

/* The outcome of a Function call: 1 applied, 0 refused (reason in
 * `reason`, message in `message`), or a negative code. */
int berth__store_fcall_result(const redisReply *r, char *reason, size_t rcap, char *message,
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
    redisReply *r = berth__store_command(s, argc, argv, lens, true, what, err, &rc);
    if (r == NULL)
        return rc;
    rc = berth__store_fcall_result(r, reason, 32, message, mcap, err);
    freeReplyObject(r);
    if (rc < 0)
        return rc;
    int src = berth__store_sync(s, rc == 1 ? err : NULL);
    /* Applied in Redis: report success even when catching up failed; the
     * next call reloads. */
    (void)src;
    return rc;
}

/* ---- hosts ------------------------------------------------------------------------------ */

int berth__store_gpu_sku_put(berth_store_t *store, const berth_gpu_sku_t *sku,
                             berth_error_t *err)
{
    berth_store_t *s = store;
    int rc = berth__store_sync(s, err);
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

/* Puts `record` into a setting of the cell's through Function `fn` (KEYS
 * meta, log, seq; ARGV the record and the log's max length); a refusal is
 * BERTH_EINVAL named `errname`.  Returns 0, BERTH_EINVAL or BERTH_EIO. */
static int meta_put(berth_store_t *s, const char *fn, const char *record, size_t len,
                    const char *what, const char *errname, berth_error_t *err)
{
    const char *argv[] = {"FCALL", fn, "3", s->k_meta, s->k_log, s->k_seq, record, s->maxlen};
    size_t lens[] = {5, strlen(fn), 1, strlen(s->k_meta), strlen(s->k_log), strlen(s->k_seq),
                     len, strlen(s->maxlen)};
    char reason[32], message[256], doing[64];
    snprintf(doing, sizeof doing, "putting the cell's %s", what);
    int rc = fcall(s, 8, argv, lens, doing, reason, message, sizeof message, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return berth__error_set(err, BERTH_EINVAL, errname, "", "%s", message);
    return 0;
}

int berth__store_limits_put(berth_store_t *store, const berth_limits_t *limits,
                            berth_error_t *err)
{
    berth_store_t *s = store;
    int rc = berth__store_sync(s, err);
    if (rc < 0)
        return rc;
    if ((rc = berth__limits_check(limits, err)) < 0)
        return rc;
    msgpack_sbuffer_clear(&s->buf);
    if (berth__limits_record_encode(&s->buf, limits) < 0)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a record");
    return meta_put(s, "berth_limits_put", s->buf.data, s->buf.size, "limits", "InvalidLimits",
                    err);
}

int berth__store_sandbox_put(berth_store_t *store, berth_sandbox_policy_t policy,
                             berth_error_t *err)
{
    berth_store_t *s = store;
    int rc = berth__store_sync(s, err);
    if (rc < 0)
        return rc;
    if ((unsigned)policy > BERTH_SANDBOX_ALL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidSandboxPolicy", "sandbox",
                                "unknown sandbox policy %d", (int)policy);
    const char *name = berth_sandbox_policy_name(policy);
    return meta_put(s, "berth_sandbox_put", name, strlen(name), "sandbox policy",
                    "InvalidSandboxPolicy", err);
}

int berth__store_subnets_put(berth_store_t *store, const berth_subnet_t *subnets, size_t n,
                             berth_error_t *err)
{
    berth_store_t *s = store;
    int rc = berth__store_sync(s, err);
    if (rc < 0)
        return rc;
    berth_error_clear(err);
    uint32_t nets[BERTH_SUBNETS_MAX];
    unsigned prefixes[BERTH_SUBNETS_MAX];
    if ((rc = berth__subnets_check(subnets, n, nets, prefixes, err)) < 0)
        return rc;
    char *rec = berth__subnets_encode(subnets, n);
    if (rec == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for a record");
    const char *argv[] = {"FCALL", "berth_subnets_put", "3", s->k_meta, s->k_log, s->k_seq,
                          rec, s->maxlen};
    size_t lens[] = {5, 17, 1, strlen(s->k_meta), strlen(s->k_log), strlen(s->k_seq),
                     strlen(rec), strlen(s->maxlen)};
    char reason[32], message[256];
    rc = fcall(s, 8, argv, lens, "putting the cell's subnets", reason, message, sizeof message,
               err);
    free(rec);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return berth__error_set(err, BERTH_EINVAL, "InvalidSubnet", "", "%s", message);
    return 0;
}

int berth__store_host_put(berth_store_t *store, const berth_host_t *host, berth_error_t *err)
{
    berth_store_t *s = store;
    int rc = berth__store_sync(s, err);
    if (rc < 0)
        return rc;
    /* The cell records the SKU a host names (unchanged records log nothing),
     * so that every replica can load the host, whatever its built-in table. */
    const berth_gpu_sku_t *sku = host != NULL && host->gpu_count > 0
        ? berth_engine_gpu_sku_find(s->engine, host->gpu_sku, NULL) : NULL;
    if (sku != NULL) {
        berth_gpu_sku_t copy = *sku;
        if ((rc = berth__store_gpu_sku_put(s, &copy, err)) < 0)
            return rc;
    }
    if (host == NULL || !berth__host_name_is_valid(host->name))
        return berth__error_set(err, BERTH_EINVAL, "InvalidHostName", "name",
                                "a host name has 1 to %d characters among letters, digits, "
                                "'-', '_' and '.'", BERTH_NAME_MAX);
    /* Check the description with the engine's own rules by applying it and
     * undoing it: the engine must only hold what the log says. */
    berth_host_t old;
    berth__host_strings_t hs;
    bool exists = berth_engine_host_get(s->engine, host->name, &old, NULL) == 0;
    if (exists) {
        snprintf(hs.name, sizeof hs.name, "%s", old.name);
        snprintf(hs.sku, sizeof hs.sku, "%s", old.gpu_sku ? old.gpu_sku : "");
        snprintf(hs.zone, sizeof hs.zone, "%s", old.zone ? old.zone : "");
        old.name = hs.name;
        old.gpu_sku = old.gpu_sku ? hs.sku : NULL;
        old.zone = old.zone ? hs.zone : NULL;
        rc = berth_engine_host_update(s->engine, host, err);
        if (rc == 0 && berth_engine_host_update(s->engine, &old, NULL) < 0)
            s->stale = true;
    } else {
        rc = berth_engine_host_add(s->engine, host, err);
        if (rc == 0 && berth_engine_host_remove(s->engine, host->name, NULL) < 0)
            s->stale = true;
    }
    if (rc < 0)
        return rc == BERTH_ENOENT || rc == BERTH_EEXIST ? BERTH_EIO : rc;
    berth__host_record_t r;
    memset(&r, 0, sizeof r);
    r.name = berth__cstr_bytes(host->name);
    r.cores = host->cores;
    r.memory_mib = host->memory_mib;
    r.gpu_count = host->gpu_count;
    r.gpu_sku = host->gpu_count > 0 ? berth__cstr_bytes(host->gpu_sku) : (berth__bytes_t){NULL, 0};
    r.os = (uint32_t)host->os;
    r.os_build = host->os_build;
    r.zone = berth__cstr_bytes(host->zone);
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

int berth__store_host_set_state(berth_store_t *store, const char *name, berth_host_state_t state,
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

int berth__store_host_remove(berth_store_t *store, const char *name, berth_error_t *err)
{
    berth_store_t *s = store;
    if (!berth__host_name_is_valid(name))
        return berth__error_set(err, BERTH_ENOENT, "HostNotFound", "name",
                                "host '%s' does not exist", name ? name : "");
    char hg[BERTH__KEYNAME_MAX], as[BERTH__KEYNAME_MAX];
    berth__store_key(s, hg, sizeof hg, "hostgroups:", name);
    berth__store_key(s, as, sizeof as, "assign:", name);
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

/* Chooses a host for p in the engine (which keeps the choice until
 * berth__store_unchoose()).  Returns 0 or the engine's error. */
int berth__store_choose(berth_store_t *s, berth__pending_t *p, berth_error_t *err)
{
    size_t len = strnlen(p->key, BERTH__KEY_MAX + 1);
    berth__map_entry_t *e = len <= BERTH__KEY_MAX ? berth__map_find(&s->groups, p->key, len) : NULL;
    berth_placement_t now;
    p->existed = e != NULL && berth_engine_group_get(s->engine, p->key, &now) == 0;
    p->generation = p->existed ? e->value : 0;
    if (p->existed) {
        p->prev_request = e->request;
        memcpy(p->prev_host, now.host, sizeof p->prev_host);
    }
    int rc = -1;
    if (!p->existed && p->prefer != NULL && p->prefer[0] != '\0')
        rc = berth_engine_request_assign(s->engine, p->key, p->request, p->prefer, &p->choice,
                                         NULL);
    if (rc < 0)
        rc = berth_engine_request_place(s->engine, p->key, p->request, &p->choice, err);
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

/* Puts the engine back as it was before berth__store_choose(p).  A down host takes
 * no assignment, so one the group is leaving is made ready for the moment
 * of the undo.  A failure marks the store stale (reload at the next sync). */
void berth__store_unchoose(berth_store_t *s, const berth__pending_t *p)
{
    int rc;
    if (!p->existed) {
        rc = berth_engine_group_release(s->engine, p->key, NULL);
    } else {
        berth_host_t h;
        bool down = berth_engine_host_get(s->engine, p->prev_host, &h, NULL) == 0 &&
                    h.state == BERTH_HOST_DOWN;
        if (down)
            berth_engine_host_set_state(s->engine, p->prev_host, BERTH_HOST_READY, NULL);
        rc = berth_engine_request_assign(s->engine, p->key, &p->prev_request, p->prev_host, NULL,
                                         NULL);
        if (down)
            berth_engine_host_set_state(s->engine, p->prev_host, BERTH_HOST_DOWN, NULL);
    }
    if (rc < 0)
        s->stale = true;
}

/* The FCALL berth_place for p (store.h): key names, numbers as text and
 * the argument vector pointing at them and at s->buf, which holds the record
 * until the next call that encodes one. */

int berth__store_place_call(berth_store_t *s, const berth__pending_t *p, berth__place_call_t *c,
                            berth_error_t *err)
{
    const char *host = p->choice.host;
    const char *old = p->existed ? p->prev_host : host;
    berth__map_entry_t *he = berth__map_find(&s->hosts, host, strlen(host));
    berth__store_key(s, c->hg_new, sizeof c->hg_new, "hostgroups:", host);
    berth__store_key(s, c->as_new, sizeof c->as_new, "assign:", host);
    berth__store_key(s, c->hg_old, sizeof c->hg_old, "hostgroups:", old);
    berth__store_key(s, c->as_old, sizeof c->as_old, "assign:", old);
    snprintf(c->expect, sizeof c->expect, "%llu", (unsigned long long)p->generation);
    snprintf(c->mc, sizeof c->mc, "%u", p->request->demand.millicores);
    snprintf(c->mem, sizeof c->mem, "%u", p->request->demand.memory_mib);
    snprintf(c->gpu, sizeof c->gpu, "%u", p->request->demand.gpu_count);
    snprintf(c->epoch, sizeof c->epoch, "%llu", (unsigned long long)(he ? he->value : 0));
    berth__group_record_t *r = s->rec;
    berth__group_record_from_request(s->engine, p->key, host, p->generation + 1, &p->committed,
                                     p->spec, r);
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
        : berth_engine_preemption_plan(s->engine, request, &plan, err);
    if (rc < 0)
        return rc;
    if (plan.victims == 0)
        return 0;   /* room appeared meanwhile: choose again */
    const berth__map_entry_t *own = existed ? berth__map_find(&s->groups, key, strlen(key)) : NULL;
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
    berth__store_key(s, c->hg, sizeof c->hg, "hostgroups:", plan.host);
    berth__store_key(s, c->as, sizeof c->as, "assign:", plan.host);
    berth__store_key(s, c->ev, sizeof c->ev, "evictions", "");
    memcpy(c->host, plan.host, sizeof c->host);
    berth__map_entry_t *he = berth__map_find(&s->hosts, plan.host, strlen(plan.host));
    snprintf(c->mc, sizeof c->mc, "%u", request->demand.millicores);
    snprintf(c->mem, sizeof c->mem, "%u", request->demand.memory_mib);
    snprintf(c->gpu, sizeof c->gpu, "%u", request->demand.gpu_count);
    snprintf(c->epoch, sizeof c->epoch, "%llu", (unsigned long long)(he ? he->value : 0));
    snprintf(c->count, sizeof c->count, "%u", n);
    berth__group_record_from_request(s->engine, key, c->host, expect + 1, request, spec, s->rec);
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
        const char *vkey = berth_engine_victim_get(s->engine, i);
        const berth__map_entry_t *ve = berth__map_find(&s->groups, vkey, strlen(vkey));
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

/* The preemption path of berth__store_place(): plans, then commits the
 * evictions and the placement in one FCALL berth_preempt.  Returns 1
 * (committed: *out filled, the replica caught up), 0 (the plan was stale:
 * Redis refused it; catch up and plan again) or a negative code
 * (BERTH_ENOSPC when there is no plan). */
static int preempt_commit(berth_store_t *s, const char *key, bool existed,
                          const berth_request_t *request, const char *spec,
                          berth_placement_t *out, berth_error_t *err)
{
    berth__preempt_call_t c;
    int rc = berth__store_preempt_call(s, key, existed, request, spec, &c, err);
    if (rc <= 0)
        return rc;
    redisReply *r = berth__store_command(s, c.argc, c.argv, c.lens, true,
                                         "committing a preemption", err, &rc);
    berth__preempt_call_free(&c);
    if (r == NULL)
        return rc;
    char reason[32], message[256];
    rc = berth__store_fcall_result(r, reason, sizeof reason, message, sizeof message, err);
    freeReplyObject(r);
    if (rc != 1)
        return rc;
    /* Committed: the log brings the releases and the placement back. */
    int src = berth__store_sync(s, NULL);
    if (out != NULL) {
        if (src < 0 || berth_engine_group_get(s->engine, key, out) < 0) {
            memset(out, 0, sizeof *out);
            memcpy(out->host, c.host, sizeof out->host);
            out->kind = existed ? BERTH_PLACED_STAYED : BERTH_PLACED_NEW;
            out->demand = request->demand;
        }
        out->evicted = c.victims;
    }
    return 1;
}

int berth__store_place(berth_store_t *store, const char *key, const berth_request_t *request,
                       const char *prefer, const char *spec_json, berth_placement_t *out,
                       berth_error_t *err)
{
    berth_store_t *s = store;
    for (uint32_t attempt = 0; attempt <= s->opts.max_retries; attempt++) {
        int rc = berth__store_sync(s, err);
        if (rc < 0)
            return rc;
        berth__pending_t p;
        memset(&p, 0, sizeof p);
        p.key = key;
        p.request = request;
        p.spec = spec_json;
        p.prefer = prefer;
        if ((rc = berth__store_choose(s, &p, err)) < 0) {
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
        berth__store_unchoose(s, &p);
        berth__place_call_t c;
        if ((rc = berth__store_place_call(s, &p, &c, err)) < 0)
            return rc;
        redisReply *r = berth__store_command(s, BERTH__PLACE_ARGC, c.argv, c.lens, true,
                                             "committing a placement", err, &rc);
        if (r == NULL)
            return rc;
        char reason[32], message[256];
        rc = berth__store_fcall_result(r, reason, sizeof reason, message, sizeof message, err);
        freeReplyObject(r);
        if (rc < 0)
            return rc;
        /* Applied or not, catch up: on a conflict the next choice needs it. */
        int src = berth__store_sync(s, rc == 1 ? NULL : err);
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

/* ---- releases and restarts ------------------------------------------------------------------- */

int berth__store_release(berth_store_t *store, const char *key, berth_error_t *err)
{
    berth_store_t *s = store;
    for (uint32_t attempt = 0; attempt <= s->opts.max_retries; attempt++) {
        int rc = berth__store_sync(s, err);
        if (rc < 0)
            return rc;
        size_t len = key ? strnlen(key, BERTH__KEY_MAX + 1) : 0;
        berth__map_entry_t *e =
            len && len <= BERTH__KEY_MAX ? berth__map_find(&s->groups, key, len) : NULL;
        berth_placement_t now;
        if (e == NULL || berth_engine_group_get(s->engine, key, &now) < 0)
            return berth__error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                                    "container group '%s' is not placed", key ? key : "");
        char hg[BERTH__KEYNAME_MAX], as[BERTH__KEYNAME_MAX], expect[24];
        berth__store_key(s, hg, sizeof hg, "hostgroups:", now.host);
        berth__store_key(s, as, sizeof as, "assign:", now.host);
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

int berth__store_group_restart(berth_store_t *s, const char *key, berth_error_t *err)
{
    for (uint32_t attempt = 0; attempt <= s->opts.max_retries; attempt++) {
        char host[BERTH_NAME_MAX + 1];
        uint64_t gen = 0;
        int rc = berth__store_group_record(s, key, NULL, &gen, host, sizeof host, err);
        if (rc < 0)
            return rc;
        char as[BERTH__KEYNAME_MAX], expect[24];
        berth__store_key(s, as, sizeof as, "assign:", host);
        snprintf(expect, sizeof expect, "%llu", (unsigned long long)gen);
        const char *argv[] = {"FCALL", "berth_restart", "2", s->k_groups, as, key, host, expect};
        redisReply *r = berth__store_command(s, 8, argv, NULL, true,
                                             "restarting a container group", err, &rc);
        if (r == NULL)
            return rc;
        char reason[32], message[256];
        rc = berth__store_fcall_result(r, reason, sizeof reason, message, sizeof message, err);
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

/* The replica's entry of the placed group `key` and where it is (*now);
 * NULL with BERTH_ENOENT in err when the replica does not hold it. */
static berth__map_entry_t *placed_entry(berth_store_t *s, const char *key, berth_placement_t *now,
                                        berth_error_t *err)
{
    size_t len = key ? strnlen(key, BERTH__KEY_MAX + 1) : 0;
    berth__map_entry_t *e =
        len && len <= BERTH__KEY_MAX ? berth__map_find(&s->groups, key, len) : NULL;
    if (e == NULL || berth_engine_group_get(s->engine, key, now) < 0) {
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
    berth__map_entry_t *e = placed_entry(s, key, &now, err);
    if (e == NULL)
        return BERTH_ENOENT;
    berth__store_key(s, c->hg, sizeof c->hg, "hostgroups:", now.host);
    berth__store_key(s, c->as, sizeof c->as, "assign:", now.host);
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
    berth__map_entry_t *e = placed_entry(s, key, &now, err);
    if (e == NULL)
        return BERTH_ENOENT;
    memcpy(c->host, now.host, sizeof c->host);
    berth__store_key(s, c->as, sizeof c->as, "assign:", now.host);
    snprintf(c->expect, sizeof c->expect, "%llu", (unsigned long long)e->value);
    c->keys[0] = s->k_groups;
    c->keys[1] = c->as;
    c->args[0] = key;
    c->args[1] = c->host;
    c->args[2] = c->expect;
    return 0;
}
