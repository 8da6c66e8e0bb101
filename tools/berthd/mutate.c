/*
 * mutate.c: berthd's mutating requests -- PUT, PATCH and DELETE of a
 * container group, and its start, stop and restart -- each one atomic
 * step.
 *
 * A request reads the resource record (records.c, without blocking),
 * decides in memory what changes, and makes ONE commit through the
 * asynchronous store: the placement or release (or restart, or nothing
 * placed at all) together with every record the request changes -- the
 * resource record and its index entry, the DNS label, the usage count, the
 * operation record, a POST's answer for retries -- as the commit's effects
 * (berth.h, "Effects").  Redis applies all of it or none, so there is no
 * state in which a placement landed but its resource record did not.  The
 * commit is guarded by the SHA-1 of the record as read and pinned to the
 * group's generation: when another request changed either in between, the
 * commit is refused (BERTH_ESTALE), nothing is written, and the request
 * starts again from its read, a bounded number of times.  The reply is sent
 * after the commit's outcome is known.
 *
 * THE DOCUMENT ONCE.  berthd keeps no copy of a group's document: a PUT
 * hands it to the placement (the group's record holds it), a stop releases
 * with BERTH_RELEASE_KEEP_DOCUMENT (the cell keeps it while the group is
 * not placed), a start and a DELETE's answer read it back through
 * berth_store_async_document_read(), and a DELETE of a group that is not
 * placed drops the kept copy in its commit.  The resource record holds
 * its digest, DNS label and priority (records.h).
 *
 * NO REQUEST STREAM.  Earlier berthds wrote each request to a Redis stream
 * first and replayed what a dead berthd left pending.  With one atomic
 * commit there is nothing to replay: a berthd that dies before its commit
 * changed nothing, one that dies after it changed everything, and a
 * client that lost the answer retries.  A retried PUT of the same document
 * changes nothing and answers as the first did; a POST with
 * x-ms-client-request-id gets its first answer again (done:<crid>, kept 10
 * minutes, written by the same commit); a DELETE of a missing resource
 * succeeds.  A request that fails (400, 404, 409) writes nothing at all.
 *
 * ERRORS.  No host can take the group (BERTH_ENOSPC): 409 with the core's
 * code (not 5xx: SDKs retry 5xx at once, a retry storm that cannot
 * succeed).  A change that needs a delete: 409.  Redis failing: 500, or 503
 * when the record could not even be read.  The resource changing under
 * more than MUT_ATTEMPTS tries: 409 Conflict.
 *
 * This file must never block, never write a record outside a commit's
 * effects, and never send a reply before its commit's outcome is known.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api-internal.h"
#include "digest.h"
#include "worker.h"

#define MUT_ATTEMPTS 5

typedef struct mut {
    bd_api_t *api;
    bd_reply_t *reply;
    op_t op;
    char *body;                     /* the request's body, copied           */
    char *base_url;
    bool post;
    int attempts;
    double t0;
    /* what the read found */
    json_t *rec;
    char sha1[41];
    /* a PUT's document */
    berth_group_t *g;
    char *spec;
    berth_request_t req;
    char location[BD_LOCATION_MAX + 1];
    json_t *tags;                   /* a PATCH's tags (NULL: none given)    */
    /* the commit */
    bd_fx_t fx;
    json_t *newrec;                 /* the record the commit writes         */
    int ok_status;
    bool with_body;                 /* answer the resource (PUT, PATCH)     */
    const char *force_state;        /* its provisioningState, or NULL       */
    bool async_op;                  /* answer Azure-AsyncOperation          */
    char async_url[768];
    bool placing;                   /* the commit places the group          */
    bool keep;                      /* the release keeps the document (stop) */
    /* the group's document as the library holds it (start, DELETE) */
    bool doc_read;                  /* read in this try (doc NULL: none)    */
    char *doc;
    void (*then)(struct mut *);     /* what goes on once it is read         */
} mut_t;

static void mut_free(mut_t *m)
{
    bd_fx_free(&m->fx);
    json_decref(m->rec);
    json_decref(m->newrec);
    json_decref(m->tags);
    berth_group_free(m->g);
    berth_free(m->spec);
    free(m->doc);
    free(m->body);
    free(m->base_url);
    m->api->inflight--;
    free(m);
}

static void mut_error(mut_t *m, int status, const char *code, const char *target,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void mut_error(mut_t *m, int status, const char *code, const char *target,
                      const char *fmt, ...)
{
    berth_error_t err;
    char msg[BERTH_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    berth_error_set(&err, BERTH_EINVAL, code, target, "%s", msg);
    bd_reply_berth_error(m->reply, status, &err);
    mut_free(m);
}

static void mut_berth_error(mut_t *m, int status, const berth_error_t *err)
{
    bd_reply_berth_error(m->reply, status, err);
    mut_free(m);
}

static void store_failing(mut_t *m)
{
    mut_error(m, 500, "InternalServerError", "", "the resource store is failing");
}

/* ---- the answer -------------------------------------------------------------------------- */

static void send_ok(mut_t *m, json_t *body)
{
    if (m->async_op) {
        const char *h[] = {"Azure-AsyncOperation", m->async_url, "Retry-After", "1", NULL};
        bd_reply_send(m->reply, m->ok_status, body, h);
    } else {
        bd_reply_send(m->reply, m->ok_status, body, NULL);
    }
    mut_free(m);
}

static void on_body(json_t *body, void *data)
{
    send_ok(data, body);
}

/* The commit applied: answer, with the resource's body when one is due. */
static void answer(mut_t *m)
{
    if (!m->with_body) {
        send_ok(m, NULL);
        return;
    }
    json_t *rec = m->newrec != NULL ? m->newrec : m->rec;
    if (m->force_state != NULL) {
        /* m->doc: the document read before the commit (a DELETE's). */
        send_ok(m, api_resource_body_build(m->api, rec, NULL, m->doc, m->force_state, NULL,
                                           NULL));
        return;
    }
    /* Just placed at a new generation: no view can describe it yet, so the
     * record says all there is (no read). */
    if (m->placing) {
        /* m->g, when set, is the very document the record now holds. */
        send_ok(m, api_resource_body_build(m->api, rec, m->g, NULL, NULL, NULL, NULL));
        return;
    }
    api_body_read(m->api, m->op.key, rec, on_body, m);
}

/* ---- the read, and trying again ------------------------------------------------------------ */

static void on_record(int status, json_t *rec, const char *sha1, void *data);

static void read_record(mut_t *m)
{
    /* A try again starts from nothing the last one decided. */
    json_decref(m->rec);
    m->rec = NULL;
    json_decref(m->newrec);
    m->newrec = NULL;
    bd_fx_free(&m->fx);
    bd_fx_init(&m->fx);
    m->ok_status = 0;
    m->with_body = false;
    m->force_state = NULL;
    m->async_op = false;
    m->async_url[0] = '\0';
    m->placing = false;
    m->keep = false;
    m->doc_read = false;
    free(m->doc);
    m->doc = NULL;
    if (bd_records_get(m->api->records, m->op.key, on_record, m) != 0)
        mut_error(m, 503, "ServiceUnavailable", "", "out of memory");
}

static void on_caught_up(int status, const berth_placement_t *placement,
                         const berth_error_t *err, void *data)
{
    (void)status, (void)placement, (void)err;
    read_record(data);
}

/* A commit's outcome other than success. */
static void commit_failed(mut_t *m, int status, const berth_error_t *err)
{
    /* A release whose group was gone already (the replica had not caught
     * up with a change made elsewhere): decide again on what is there. */
    bool vanished = status == BERTH_ENOENT && strcmp(m->op.kind, "restart") != 0;
    if (status == BERTH_ESTALE || vanished) {
        m->api->conflicts++;
        if (++m->attempts < MUT_ATTEMPTS) {
            /* Another request came between: again, once the replica has
             * caught up with it (the next try pins its generation). */
            berth_error_t e;
            if (berth_store_async_sync(m->api->async, on_caught_up, m, &e) != 0)
                read_record(m);
            return;
        }
        mut_error(m, 409, "Conflict", "",
                  "the container group '%s' kept changing while this request was applied; "
                  "try again", m->op.name);
        return;
    }
    int dns = bd_fx_dns_index(&m->fx);
    char dns_target[32];
    snprintf(dns_target, sizeof dns_target, "effects[%d]", dns);
    if (status == BERTH_EEXIST && dns >= 0 && err != NULL &&
        strcmp(err->target, dns_target) == 0) {
        const char *label = m->g != NULL && m->g->ip_address != NULL
                                ? m->g->ip_address->dns_name_label : "";
        mut_error(m, 409, "DnsNameLabelAlreadyTaken", "properties.ipAddress.dnsNameLabel",
                  "the DNS name label '%s' is already taken in location '%s'", label,
                  m->location);
        return;
    }
    berth_error_t e;
    if (err != NULL)
        e = *err;
    else
        berth_error_set(&e, status, "InternalServerError", "", "%s", berth_strerror(status));
    int http = 500;
    if (status == BERTH_ECONFLICT || status == BERTH_ENOSPC || status == BERTH_EEXIST)
        http = 409;
    else if (status == BERTH_EINVAL || status == BERTH_ELIMIT || status == BERTH_ETOOBIG)
        http = 400;
    else if (status == BERTH_ENOENT && strcmp(m->op.kind, "restart") == 0)
        http = 409;
    mut_berth_error(m, http, &e);
}

static void on_commit(int status, const berth_placement_t *placement, const berth_error_t *err,
                      void *data)
{
    mut_t *m = data;
    if (m->placing) {
        api_observe_placement(m->api, api_mono_s() - m->t0, status);
        if (status == 0 && placement != NULL)
            m->api->evictions += placement->evicted;
    }
    if (status != 0) {
        commit_failed(m, status, err);
        return;
    }
    answer(m);
}

/* ---- what each request changes ------------------------------------------------------------- */

/* The group's generation in the replica, or 0 when it is not placed. */
static uint64_t placed_gen(mut_t *m)
{
    uint64_t gen = 0;
    if (berth_store_async_generation(m->api->async, m->op.key, &gen) != 0)
        gen = 0;
    return gen;
}

/* A POST's answer, kept for retries with the same client request id. */
static int fx_done(mut_t *m, int status)
{
    if (!m->post || m->op.crid[0] == '\0')
        return 0;
    json_t *d = json_pack("{s:s, s:s, s:i, s:s}", "key", m->op.key, "kind", m->op.kind, "status",
                          status, "async", m->async_op ? m->async_url : "");
    if (d == NULL)
        return BERTH_ENOMEM;
    int rc = bd_fx_done(&m->fx, m->op.crid, d, API_DONE_TTL_S);
    json_decref(d);
    return rc;
}

/* An operation record for op (kind, generation) and the Azure-AsyncOperation
 * URL that names it. */
static int fx_operation(mut_t *m, const char *kind, uint64_t gen)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "key", m->op.key, "kind", kind,
                          "subscription", m->op.sub, "location", api_jstr(m->newrec, "location"),
                          "generation", (json_int_t)gen, "startTime",
                          (json_int_t)berth__clock_wall_ms());
    if (o == NULL)
        return BERTH_ENOMEM;
    int rc = bd_fx_operation(&m->fx, m->op.rid, o);
    json_decref(o);
    if (m->base_url != NULL) {
        snprintf(m->async_url, sizeof m->async_url,
                 "%s/subscriptions/%s/providers/Microsoft.ContainerInstance/locations/%s/"
                 "operations/%s?api-version=%s",
                 m->base_url, m->op.sub, api_jstr(m->newrec, "location"), m->op.rid,
                 m->op.apiv);
        m->async_op = true;
    }
    return rc;
}

/* Queues the commit prepared in m->fx; `how` says which. */
typedef enum commit_kind { C_PLACE, C_START, C_RELEASE, C_RESTART, C_RECORDS } commit_kind_t;

static void commit(mut_t *m, commit_kind_t how, int64_t records_gen, const char *prefer)
{
    berth_error_t err;
    int rc;
    m->t0 = api_mono_s();
    m->placing = how == C_PLACE || how == C_START;
    switch (how) {
    case C_PLACE:
        rc = berth_store_async_place_with(m->api->async, m->op.key, &m->req, m->spec, m->fx.e,
                                          m->fx.n, on_commit, m, &err);
        break;
    case C_START:
        rc = berth_store_async_place_prefer_with(m->api->async, m->op.key, &m->req, m->spec,
                                                 prefer, m->fx.e, m->fx.n, on_commit, m, &err);
        break;
    case C_RELEASE:
        rc = berth_store_async_release_with(m->api->async, m->op.key,
                                            m->keep ? BERTH_RELEASE_KEEP_DOCUMENT : 0, m->fx.e,
                                            m->fx.n, on_commit, m, &err);
        break;
    case C_RESTART:
        rc = berth_store_async_restart(m->api->async, m->op.key, m->fx.e, m->fx.n, on_commit, m,
                                       &err);
        break;
    default:
        rc = berth_store_async_records(m->api->async, m->op.key, records_gen, m->fx.e, m->fx.n,
                                       on_commit, m, &err);
        break;
    }
    if (rc != 0)
        commit_failed(m, rc, &err);
}

/* A claim's answer, once berthd's replica has caught up with it. */
static void on_claim_synced(int status, const berth_placement_t *placement,
                            const berth_error_t *err, void *data)
{
    (void)status, (void)placement, (void)err;
    answer(data);
}

/* A standby claim's outcome: taken (done), or no member matched (placed
 * anew, with the same effects).  A claim is committed on the worker's
 * store, not through berthd's replica: the answer waits until the replica
 * has read it from the change log, so that a GET after the answer finds
 * the group placed and shows the agent's view of it (not the record alone
 * until the next timed catch-up). */
static void on_claim(int status, const berth_placement_t *placement, const berth_error_t *err,
                     void *arg)
{
    mut_t *m = arg;
    if (status == BERTH_ENOENT) {
        commit(m, C_PLACE, -1, NULL);
        return;
    }
    m->placing = true;
    if (status != 0) {
        on_commit(status, placement, err, m);
        return;
    }
    api_observe_placement(m->api, api_mono_s() - m->t0, status);
    if (placement != NULL)
        m->api->evictions += placement->evicted;
    berth_error_t e;
    if (berth_store_async_sync(m->api->async, on_claim_synced, m, &e) != 0)
        answer(m);
}

/* "<location>/<label>" of the PUT's DNS label, or "". */
static void put_dns(const mut_t *m, char *out, size_t cap)
{
    out[0] = '\0';
    if (m->g->ip_address != NULL && m->g->ip_address->dns_name_label != NULL) {
        char l[128];
        bd_lower(m->g->ip_address->dns_name_label, l, sizeof l);
        snprintf(out, cap, "%s/%s", m->location, l);
    }
}

/* The record a PUT writes: the old one's created and lastHost kept; of the
 * document only what berthd decides with (records.h). */
static json_t *put_record(mut_t *m, bool placing, uint64_t gen, const char *digest)
{
    char id[512];
    api_arm_id(&m->op, id, sizeof id);
    int64_t now = berth__clock_wall_ms();
    json_t *rec = m->rec != NULL ? json_deep_copy(m->rec) : json_object();
    if (rec == NULL)
        return NULL;
    if (m->rec == NULL)
        json_object_set_new(rec, "created", json_integer(now));
    json_t *tags = json_object();
    for (size_t i = 0; i < m->g->ntags; i++)
        json_object_set_new(tags, m->g->tags[i].name, json_string(m->g->tags[i].value));
    json_object_set_new(rec, "id", json_string(id));
    json_object_set_new(rec, "subscription", json_string(m->op.sub));
    json_object_set_new(rec, "resourceGroup", json_string(m->op.rg));
    json_object_set_new(rec, "name", json_string(m->op.name));
    json_object_set_new(rec, "location", json_string(m->location));
    json_object_set_new(rec, "tags", tags);
    char dns[256];
    put_dns(m, dns, sizeof dns);
    json_object_set_new(rec, "digest", json_string(digest));
    json_object_set_new(rec, "dns", json_string(dns));
    json_object_set_new(rec, "spot", json_boolean(m->g->priority == BERTH_PRIORITY_SPOT));
    if (placing)
        json_object_set_new(rec, "state", json_string("Creating"));
    if (json_object_get(rec, "lastHost") == NULL)
        json_object_set_new(rec, "lastHost", json_string(""));
    json_object_set_new(rec, "generation", json_integer((json_int_t)gen));
    json_object_set_new(rec, "updated", json_integer(now));
    return rec;
}

static void decide_put(mut_t *m)
{
    bool exists = m->rec != NULL;
    if (exists && strcmp(api_jstr(m->rec, "location"), m->location) != 0) {
        mut_error(m, 409, "InvalidResourceLocation", "location",
                  "the resource '%s' already exists in location '%s'; a container group "
                  "cannot move to '%s'", m->op.name, api_jstr(m->rec, "location"),
                  m->location);
        return;
    }
    if (exists) {
        /* The engine refuses a priority change of a placed group; a stopped
         * or evicted one holds no placement, so the record tells. */
        bool spot = m->g->priority == BERTH_PRIORITY_SPOT;
        if (json_is_true(json_object_get(m->rec, "spot")) != spot) {
            mut_error(m, 409, "InvalidContainerGroupUpdate", "properties.priority",
                      "The updates on container group '%s' are invalid. If you are going to "
                      "update the priority of a container group, you must delete it first "
                      "and then create a new one.", m->op.name);
            return;
        }
    }
    bool stopped = exists && strcmp(api_jstr(m->rec, "state"), "Stopped") == 0;
    uint64_t gen = placed_gen(m);
    m->ok_status = exists ? 200 : 201;
    m->with_body = true;
    /* The cell runs this very document already: nothing changes. */
    char digest[41];
    bd_document_digest(m->spec, digest);
    if (exists && gen > 0 && !stopped && strcmp(api_jstr(m->rec, "digest"), digest) == 0) {
        answer(m);
        return;
    }
    m->newrec = put_record(m, true, gen + 1, digest);
    if (m->newrec == NULL) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    char dns[256];
    put_dns(m, dns, sizeof dns);
    const char *old_dns = api_jstr(m->rec, "dns");
    bd_fx_expect(&m->fx, m->op.key, m->sha1);
    int rc = bd_fx_record(&m->fx, m->op.key, m->newrec);
    if (dns[0] != '\0')
        bd_fx_dns_claim(&m->fx, dns, m->op.key);
    if (old_dns[0] != '\0' && strcmp(old_dns, dns) != 0)
        bd_fx_dns_release(&m->fx, old_dns, m->op.key);
    if (!exists)
        bd_fx_usage(&m->fx, m->op.sub, m->location, 1);
    if (exists && gen == 0)         /* a new resource has no eviction: its
                                     * name's last DELETE forgot it */
        bd_fx_eviction_forget(&m->fx, m->op.key);
    if (rc == 0)
        rc = fx_operation(m, "put", gen + 1);
    if (rc != 0) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    /* A new group takes a ready standby member when a pool of its
     * subscription matches (on the worker: the claim is still blocking),
     * with the same effects in the claim's one step. */
    if (!exists && gen == 0 && bd_worker_pools_present(m->api->worker)) {
        m->t0 = api_mono_s();
        if (bd_worker_pool_claim(m->api->worker, m->op.key, &m->req, m->spec, NULL, m->fx.e,
                                 m->fx.n, on_claim, m) == 0)
            return;
    }
    /* A stopped or evicted group starts again on its last host when it can. */
    const char *prefer = api_jstr(m->rec, "lastHost");
    commit(m, gen == 0 && prefer[0] != '\0' ? C_START : C_PLACE, -1, prefer);
}

static void on_document(int status, const char *spec, uint64_t generation, const char *host,
                        const berth_error_t *err, void *data)
{
    (void)generation, (void)host;
    mut_t *m = data;
    if (status != 0 && status != BERTH_ENOENT) {
        mut_berth_error(m, 500, err);
        return;
    }
    m->doc_read = true;
    if (status == 0 && spec != NULL && (m->doc = strdup(spec)) == NULL) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    m->then(m);
}

/* 0 when the group's document was read in this try (m->doc; NULL when the
 * cell holds none); else 1: it is being read, and then(m) runs again once
 * it is (or the reply is sent). */
static int need_document(mut_t *m, void (*then)(mut_t *))
{
    if (m->doc_read)
        return 0;
    m->then = then;
    berth_error_t err;
    int rc = berth_store_async_document_read(m->api->async, m->op.key, on_document, m, &err);
    if (rc != 0)
        mut_berth_error(m, rc == BERTH_ENOMEM ? 503 : 500, &err);
    return 1;
}

static void decide_delete(mut_t *m)
{
    /* The answer describes what is deleted: the document, read first. */
    if (m->rec != NULL && m->base_url != NULL && need_document(m, decide_delete) != 0)
        return;
    uint64_t gen = placed_gen(m);
    m->ok_status = 204;
    if (m->rec == NULL && gen == 0) {
        send_ok(m, NULL);           /* nothing there: done already */
        return;
    }
    bd_fx_expect(&m->fx, m->op.key, m->sha1);
    bd_fx_eviction_forget(&m->fx, m->op.key);
    if (gen == 0)
        bd_fx_document_forget(&m->fx, m->op.key);  /* a stopped or evicted group's */
    if (m->rec != NULL) {
        const char *dns = api_jstr(m->rec, "dns");
        bd_fx_record_del(&m->fx, m->op.key);
        if (dns[0] != '\0')
            bd_fx_dns_release(&m->fx, dns, m->op.key);
        bd_fx_usage(&m->fx, api_jstr(m->rec, "subscription"), api_jstr(m->rec, "location"), -1);
        m->ok_status = 200;
        m->with_body = m->base_url != NULL;
        m->force_state = "Deleting";
    }
    commit(m, gen > 0 ? C_RELEASE : C_RECORDS, 0, NULL);
}

static int need_record(mut_t *m)
{
    if (m->rec != NULL)
        return 0;
    api_reply_not_found(m->reply, m->op.rg, m->op.name);
    mut_free(m);
    return -1;
}

static void decide_stop(mut_t *m)
{
    if (need_record(m) != 0)
        return;
    m->ok_status = 204;
    if (strcmp(api_jstr(m->rec, "state"), "Stopped") == 0) {
        send_ok(m, NULL);
        return;
    }
    uint64_t gen = placed_gen(m);
    m->newrec = json_deep_copy(m->rec);
    berth_placement_t pl;
    if (m->newrec != NULL && gen > 0 &&
        berth_engine_group_get(berth_store_async_engine(m->api->async), m->op.key, &pl) == 0)
        json_object_set_new(m->newrec, "lastHost", json_string(pl.host));
    if (m->newrec != NULL) {
        json_object_set_new(m->newrec, "state", json_string("Stopped"));
        json_object_set_new(m->newrec, "updated", json_integer(berth__clock_wall_ms()));
    }
    bd_fx_expect(&m->fx, m->op.key, m->sha1);
    if (m->newrec == NULL || bd_fx_record(&m->fx, m->op.key, m->newrec) != 0 ||
        fx_done(m, 204) != 0) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    bd_fx_eviction_forget(&m->fx, m->op.key);
    m->keep = true;                 /* the document stays, for a start */
    commit(m, gen > 0 ? C_RELEASE : C_RECORDS, 0, NULL);
}

static void decide_start(mut_t *m)
{
    if (need_record(m) != 0)
        return;
    uint64_t gen = placed_gen(m);
    m->ok_status = 204;
    if (strcmp(api_jstr(m->rec, "state"), "Stopped") != 0 && gen > 0) {
        send_ok(m, NULL);           /* running already */
        return;
    }
    if (need_document(m, decide_start) != 0)
        return;
    const char *doc = m->doc;
    if (doc == NULL) {
        mut_error(m, 500, "InternalServerError", "",
                  "the cell holds no document for container group '%s'", m->op.name);
        return;
    }
    berth_error_t err;
    berth_group_free(m->g);
    m->g = NULL;
    int rc = berth_group_parse(doc, strlen(doc), &m->g, &err);
    if (rc == 0)
        rc = berth_engine_group_request(berth_store_async_engine(m->api->async), m->g, &m->req,
                                        &err);
    if (rc != 0) {
        mut_berth_error(m, 500, &err);
        return;
    }
    berth_free(m->spec);
    m->spec = NULL;
    char *copy = strdup(doc);
    if (copy == NULL) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    m->spec = copy;
    m->newrec = json_deep_copy(m->rec);
    if (m->newrec == NULL) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    json_object_set_new(m->newrec, "state", json_string("Creating"));
    json_object_set_new(m->newrec, "generation", json_integer((json_int_t)gen + 1));
    json_object_set_new(m->newrec, "updated", json_integer(berth__clock_wall_ms()));
    m->ok_status = 202;
    bd_fx_expect(&m->fx, m->op.key, m->sha1);
    rc = bd_fx_record(&m->fx, m->op.key, m->newrec);
    bd_fx_eviction_forget(&m->fx, m->op.key);
    if (rc == 0)
        rc = fx_operation(m, "start", gen + 1);
    if (rc == 0)
        rc = fx_done(m, 202);
    if (rc != 0) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    const char *prefer = api_jstr(m->rec, "lastHost");
    commit(m, C_START, -1, prefer[0] != '\0' ? prefer : NULL);
}

static void decide_restart(mut_t *m)
{
    if (need_record(m) != 0)
        return;
    if (strcmp(api_jstr(m->rec, "state"), "Stopped") == 0) {
        mut_error(m, 409, "ContainerGroupStopped", "",
                  "the container group '%s' is stopped: start it instead", m->op.name);
        return;
    }
    m->ok_status = 204;
    bd_fx_expect(&m->fx, m->op.key, m->sha1);
    if (fx_done(m, 204) != 0) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    commit(m, C_RESTART, -1, NULL);
}

static void decide_patch(mut_t *m)
{
    if (need_record(m) != 0)
        return;
    m->newrec = json_deep_copy(m->rec);
    if (m->newrec == NULL) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    if (m->tags != NULL)
        json_object_set(m->newrec, "tags", m->tags);
    json_object_set_new(m->newrec, "updated", json_integer(berth__clock_wall_ms()));
    m->ok_status = 200;
    m->with_body = m->base_url != NULL;
    bd_fx_expect(&m->fx, m->op.key, m->sha1);
    if (bd_fx_record(&m->fx, m->op.key, m->newrec) != 0) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    commit(m, C_RECORDS, -1, NULL);
}

static void on_record(int status, json_t *rec, const char *sha1, void *data)
{
    mut_t *m = data;
    if (status != 0) {
        store_failing(m);
        return;
    }
    m->rec = json_incref(rec);
    snprintf(m->sha1, sizeof m->sha1, "%s", sha1);
    const char *k = m->op.kind;
    if (strcmp(k, "put") == 0)
        decide_put(m);
    else if (strcmp(k, "delete") == 0)
        decide_delete(m);
    else if (strcmp(k, "stop") == 0)
        decide_stop(m);
    else if (strcmp(k, "start") == 0)
        decide_start(m);
    else if (strcmp(k, "restart") == 0)
        decide_restart(m);
    else
        decide_patch(m);
}

/* ---- the start: what needs no I/O, then a POST's earlier answer ---------------------------- */

/* Parses and checks a PUT's document (no I/O).  0, or -1 with the reply sent. */
static int put_document(mut_t *m)
{
    berth_error_t err;
    berth_error_clear(&err);
    if (m->op.body_len == 0) {
        mut_error(m, 400, "InvalidRequestContent", "",
                  "the request has no body: a container group document is required");
        return -1;
    }
    int rc = berth_group_parse(m->body, m->op.body_len, &m->g, &err);
    if (rc != 0) {
        mut_berth_error(m, rc == BERTH_ETOOBIG ? 413 : 400, &err);
        return -1;
    }
    if (m->g->name != NULL && strcmp(m->g->name, m->op.name) != 0) {
        mut_error(m, 400, "ContainerGroupNameMismatch", "name",
                  "the body's name '%s' differs from the name in the path '%s'", m->g->name,
                  m->op.name);
        return -1;
    }
    if (m->g->location == NULL || m->g->location[0] == '\0' ||
        !bd_valid_location(m->g->location)) {
        mut_error(m, 400, "LocationRequired", "location",
                  "the container group needs a valid 'location'");
        return -1;
    }
    if (m->g->priority != BERTH_PRIORITY_UNSET && strcmp(m->op.apiv, API_PRIORITY_APIV) < 0) {
        mut_error(m, 400, "InvalidRequestContent", "properties.priority",
                  "properties.priority is not supported by api-version '%s'; use %s or later",
                  m->op.apiv, API_PRIORITY_APIV);
        return -1;
    }
    bd_location_norm(m->g->location, m->location, sizeof m->location);
    rc = berth_engine_group_request(berth_store_async_engine(m->api->async), m->g, &m->req, &err);
    if (rc != 0) {
        mut_berth_error(m, 400, &err);
        return -1;
    }
    if (berth_group_to_json(m->g, 0, &m->spec, NULL) != 0) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return -1;
    }
    return 0;
}

static void on_done_record(int status, const char *text, size_t len, void *data)
{
    mut_t *m = data;
    if (status == 0 && text != NULL) {
        json_t *d = json_loadb(text, len, 0, NULL);
        if (strcmp(api_jstr(d, "key"), m->op.key) == 0 &&
            strcmp(api_jstr(d, "kind"), m->op.kind) == 0) {
            m->ok_status = (int)json_integer_value(json_object_get(d, "status"));
            const char *url = api_jstr(d, "async");
            if (url[0] != '\0') {
                snprintf(m->async_url, sizeof m->async_url, "%s", url);
                m->async_op = true;
            }
            json_decref(d);
            send_ok(m, NULL);       /* the first answer, again */
            return;
        }
        json_decref(d);
    }
    read_record(m);
}

/* Contract: api-internal.h. */
void api_mutate(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, const op_t *op)
{
    mut_t *m = calloc(1, sizeof *m);
    if (m == NULL) {
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    api->inflight++;
    m->api = api;
    m->reply = reply;
    m->op = *op;
    m->post = req->method == BD_POST;
    m->body = malloc(op->body_len + 1);
    m->base_url = req->base_url != NULL ? strdup(req->base_url) : NULL;
    if (m->body == NULL || (req->base_url != NULL && m->base_url == NULL)) {
        mut_error(m, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    memcpy(m->body, op->body, op->body_len);
    m->body[op->body_len] = '\0';
    m->op.body = m->body;
    bd_fx_init(&m->fx);
    if (strcmp(op->kind, "put") == 0 && put_document(m) != 0)
        return;
    if (strcmp(op->kind, "patch") == 0) {
        const char *target, *why;
        if (bd_patch_body_parse(m->body, op->body_len, &m->tags, &target, &why) != 0) {
            mut_error(m, 400, "InvalidRequestContent", target, "%s", why);
            return;
        }
    }
    if (m->post && m->op.crid[0] != '\0') {
        char name[160];
        snprintf(name, sizeof name, "done:%s", m->op.crid);
        if (bd_records_read(api->records, name, NULL, on_done_record, m) != 0)
            mut_error(m, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    read_record(m);
}
