/*
 * mutate_decide.c: what each mutating request changes -- PUT (placing the
 * document, or claiming a standby member), PATCH (tags), DELETE, stop,
 * start and restart -- decided in memory from the resource record as read,
 * and handed to one commit with its effects (the resource record, the
 * operation record, a POST's answer, the DNS label, the usage count).
 *
 * It decides and commits; mutate.c reads, retries and answers.  It must
 * never block, never write outside a commit's effects, and never answer
 * success before the commit's outcome is known.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mutate-internal.h"

/* ---- what each request changes ------------------------------------------------------------- */

/* The group's generation in the replica, or 0 when it is not placed. */
static uint64_t placed_gen(mut_t *m)
{
    uint64_t gen = 0;
    if (berth_store_async_generation(m->api->async, m->op.key, &gen) != 0)
        gen = 0;
    return gen;
}

/* A POST's mut_answer, kept for retries with the same client request id. */
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
        rc = berth_store_async_place_with(m->api->async, m->op.key, &m->req,
                                          m->placed_spec != NULL ? m->placed_spec : m->spec,
                                          m->fx.e,
                                          m->fx.n, mut_on_commit, m, &err);
        break;
    case C_START:
        rc = berth_store_async_place_prefer_with(m->api->async, m->op.key, &m->req,
                                                 m->placed_spec != NULL ? m->placed_spec
                                                                        : m->spec,
                                                 prefer, m->fx.e, m->fx.n, mut_on_commit, m, &err);
        break;
    case C_RELEASE:
        rc = berth_store_async_release_with(m->api->async, m->op.key,
                                            m->keep ? BERTH_RELEASE_KEEP_DOCUMENT : 0, m->fx.e,
                                            m->fx.n, mut_on_commit, m, &err);
        break;
    case C_RESTART:
        rc = berth_store_async_restart(m->api->async, m->op.key, m->fx.e, m->fx.n, mut_on_commit, m,
                                       &err);
        break;
    default:
        rc = berth_store_async_records(m->api->async, m->op.key, records_gen, m->fx.e, m->fx.n,
                                       mut_on_commit, m, &err);
        break;
    }
    if (rc != 0)
        mut_commit_failed(m, rc, &err);
}

/* ---- standby pools: properties.standbyPoolProfile ---------------------------------------- */

#define STANDBY_PATH "properties.standbyPoolProfile"
#define STANDBY_TYPE "/providers/Microsoft.StandbyPool/standbyContainerGroupPools/"

/* Contract: mutate-internal.h. */
int mut_standby_take(mut_t *m)
{
    json_t *doc = json_loadb(m->body, m->op.body_len, 0, NULL);
    json_t *props = json_object_get(doc, "properties");
    json_t *sp = json_object_get(props, "standbyPoolProfile");
    if (sp == NULL) {               /* the body as sent: the parser speaks */
        json_decref(doc);
        return 0;
    }
    static const char *const known[] = {"id", "failContainerGroupCreateOnReuseFailure"};
    const char *k;
    json_t *v;
    const char *bad = NULL;
    json_object_foreach(sp, k, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok = ok || strcmp(k, known[i]) == 0;
        if (!ok && bad == NULL)
            bad = k;
    }
    const char *id = json_string_value(json_object_get(sp, "id"));
    json_t *fail = json_object_get(sp, "failContainerGroupCreateOnReuseFailure");
    char sub[BD_SUB_MAX + 1] = "", rg[128] = "", name[128] = "";
    const char *t = id != NULL ? strcasestr(id, STANDBY_TYPE) : NULL;
    if (id != NULL && t != NULL && strlen(id) < 1024 &&
        sscanf(id, "/subscriptions/%64[^/]/resourceGroups/%127[^/]/", sub, rg) != 2)
        sub[0] = '\0';
    if (t != NULL)
        snprintf(name, sizeof name, "%s", t + strlen(STANDBY_TYPE));
    int rc = 0;
    if (!json_is_object(sp))
        mut_error(m, 400, "InvalidStandbyPoolProfile", STANDBY_PATH,
                  "%s must be an object {\"id\", \"failContainerGroupCreateOnReuseFailure\"}",
                  STANDBY_PATH), rc = -1;
    else if (bad != NULL)
        mut_error(m, 400, "InvalidRequestContent", STANDBY_PATH,
                  "'%s.%.64s' is not a member of a standby pool profile", STANDBY_PATH, bad),
            rc = -1;
    else if (fail != NULL && !json_is_boolean(fail))
        mut_error(m, 400, "InvalidStandbyPoolProfile",
                  STANDBY_PATH ".failContainerGroupCreateOnReuseFailure",
                  "%s.failContainerGroupCreateOnReuseFailure must be a boolean", STANDBY_PATH),
            rc = -1;
    else if (sub[0] == '\0' || !bd_valid_resource_group(rg) || !bd_valid_group_name(name))
        mut_error(m, 400, "InvalidStandbyPoolProfile", STANDBY_PATH ".id",
                  "%s.id must be the ARM id of a standby pool (/subscriptions/S/resourceGroups/"
                  "RG/providers/Microsoft.StandbyPool/standbyContainerGroupPools/NAME)",
                  STANDBY_PATH), rc = -1;
    else if (strcasecmp(sub, m->op.sub) != 0)
        mut_error(m, 400, "InvalidStandbyPoolProfile", STANDBY_PATH ".id",
                  "the standby pool '%s' is in another subscription than the container group",
                  name), rc = -1;
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    bd_resource_key(m->op.sub, rg, name, m->standby_pool, sizeof m->standby_pool);
    m->standby = json_incref(sp);
    json_object_del(props, "standbyPoolProfile");
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return -1;
    }
    free(m->body);
    m->body = text;
    m->op.body = text;
    m->op.body_len = strlen(text);
    return 0;
}

/* Whether a PUT naming a standby pool must fail when no member is taken. */
static bool standby_must(const mut_t *m)
{
    return m->standby != NULL &&
           json_is_true(json_object_get(m->standby, "failContainerGroupCreateOnReuseFailure"));
}

static void standby_failed(mut_t *m)
{
    const char *name = strrchr(m->standby_pool, '/');
    mut_error(m, 409, "StandbyPoolReuseFailed", STANDBY_PATH,
              "no ready container group of standby pool '%s' can become container group '%s' "
              "(the pool has no ready member, or its profile's document differs from the "
              "group's); failContainerGroupCreateOnReuseFailure is true, so nothing was created",
              name != NULL ? name + 1 : m->standby_pool, m->op.name);
}

static int put_effects(mut_t *m, uint64_t gen);

/* A claim's mut_answer, once berthd's replica has caught up with it. */
static void on_claim_synced(int status, const berth_placement_t *placement,
                            const berth_error_t *err, void *data)
{
    (void)status, (void)placement, (void)err;
    mut_answer(data);
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
        if (standby_must(m)) {
            standby_failed(m);
            return;
        }
        /* Placed anew: the record says so. */
        json_object_set_new(m->newrec, "isCreatedFromStandbyPool", json_false());
        if (put_effects(m, 0) != 0) {
            mut_error(m, 500, "InternalServerError", "", "out of memory");
            return;
        }
        commit(m, C_PLACE, -1, NULL);
        return;
    }
    m->placing = true;
    if (status != 0) {
        mut_on_commit(status, placement, err, m);
        return;
    }
    api_observe_placement(m->api, api_mono_s() - m->t0, status);
    if (placement != NULL)
        m->api->evictions += placement->evicted;
    berth_error_t e;
    if (berth_store_async_sync(m->api->async, on_claim_synced, m, &e) != 0)
        mut_answer(m);
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

/* The distinct images of the group's containers and init containers, in
 * the order they first appear (the tenant's view of the cached images). */
static json_t *record_images(const berth_group_t *g)
{
    json_t *images = json_array();
    const berth_container_t *lists[2] = {g->containers, g->init_containers};
    size_t counts[2] = {g->ncontainers, g->ninit_containers};
    for (size_t l = 0; images != NULL && l < 2; l++)
        for (size_t i = 0; lists[l] != NULL && i < counts[l]; i++) {
            const char *image = lists[l][i].image;
            bool seen = image == NULL;
            for (size_t k = 0; !seen && k < json_array_size(images); k++)
                seen = strcmp(json_string_value(json_array_get(images, k)), image) == 0;
            if (!seen)
                json_array_append_new(images, json_string(image));
        }
    return images;
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
    /* The private address in the group's subnet (api_subnets.c). */
    char ip[64];
    if (bd_ipam_field(berth_store_async_engine(m->api->async), m->req.subnet_mask, m->op.key,
                      api_jstr(m->rec, "ip"), m->ip_probe, ip, sizeof ip) != 0)
        ip[0] = '\0';
    json_object_set_new(rec, "ip", json_string(ip));
    json_object_set_new(rec, "spot", json_boolean(m->g->priority == BERTH_PRIORITY_SPOT));
    json_object_set_new(rec, "images", record_images(m->g));
    /* The profile the document came from, {id, revision} (profiles.h):
     * the core's document has no place for it. */
    if (m->profile != NULL)
        json_object_set(rec, "profile", m->profile);
    else
        json_object_del(rec, "profile");
    if (placing)
        json_object_set_new(rec, "state", json_string("Creating"));
    if (json_object_get(rec, "lastHost") == NULL)
        json_object_set_new(rec, "lastHost", json_string(""));
    json_object_set_new(rec, "generation", json_integer((json_int_t)gen));
    json_object_set_new(rec, "updated", json_integer(now));
    return rec;
}

/* A PUT's effects, anew (m->newrec written): record, DNS label, usage,
 * eviction, operation.  0 or BERTH_ENOMEM. */
static int put_effects(mut_t *m, uint64_t gen)
{
    bool exists = m->rec != NULL;
    bd_fx_free(&m->fx);
    bd_fx_init(&m->fx);
    char dns[256];
    put_dns(m, dns, sizeof dns);
    const char *old_dns = api_jstr(m->rec, "dns");
    bd_fx_expect(&m->fx, m->op.key, m->sha1);
    int rc = bd_fx_record(&m->fx, m->op.key, m->newrec);
    if (dns[0] != '\0')
        bd_fx_dns_claim(&m->fx, dns, m->op.key);
    if (old_dns[0] != '\0' && strcmp(old_dns, dns) != 0)
        bd_fx_dns_release(&m->fx, old_dns, m->op.key);
    const char *ip = api_jstr(m->newrec, "ip"), *old_ip = api_jstr(m->rec, "ip");
    if (ip[0] != '\0' && strcmp(old_ip, ip) != 0)
        bd_fx_ip_claim(&m->fx, ip, m->op.key);
    if (old_ip[0] != '\0' && strcmp(old_ip, ip) != 0)
        bd_fx_ip_release(&m->fx, old_ip, m->op.key);
    if (!exists)
        bd_fx_usage(&m->fx, m->op.sub, m->location, 1);
    if (exists && gen == 0)         /* a new resource has no eviction: its
                                     * name's last DELETE forgot it */
        bd_fx_eviction_forget(&m->fx, m->op.key);
    if (rc == 0)
        rc = fx_operation(m, "put", gen + 1);
    return rc;
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
    json_t *old_profile = json_object_get(m->rec, "profile");
    bool same_profile = m->profile == NULL ? old_profile == NULL
                                           : json_equal(m->profile, old_profile) != 0;
    if (exists && gen > 0 && !stopped && strcmp(api_jstr(m->rec, "digest"), digest) == 0 &&
        same_profile) {
        mut_answer(m);
        return;
    }
    m->newrec = put_record(m, true, gen + 1, digest);
    /* The document the cell stores carries the private address for the
     * agent (api_subnets.c); the digest above is the PUT's own, so a
     * repeated PUT still finds it unchanged. */
    free(m->placed_spec);
    m->placed_spec = NULL;
    if (m->newrec == NULL ||
        bd_ipam_document(m->spec, api_jstr(m->newrec, "ip"), &m->placed_spec) != 0) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    bool claim = !exists && gen == 0;
    bool pools = bd_worker_pools_present(m->api->worker);
    if (m->standby != NULL)
        json_object_set(m->newrec, "standbyPoolProfile", m->standby);
    /* The record a claim writes says a member was taken; placed anew, the
     * group's record says it was not (on_claim()). */
    if (claim && (m->standby != NULL || pools))
        json_object_set_new(m->newrec, "isCreatedFromStandbyPool", json_true());
    if (put_effects(m, gen) != 0) {
        mut_error(m, 500, "InternalServerError", "", "out of memory");
        return;
    }
    /* A new group takes a ready standby member (on the worker: the claim
     * is still blocking), with the same effects in the claim's one step:
     * from the pool its standbyPoolProfile names, else from any pool of
     * its subscription whose template matches. */
    if (claim && pools) {
        m->t0 = api_mono_s();
        if (bd_worker_pool_claim(m->api->worker, m->op.key, &m->req, m->spec,
                                 m->standby != NULL ? m->standby_pool : NULL,
                                 m->standby != NULL, m->fx.e, m->fx.n, on_claim, m) == 0)
            return;
    }
    if (claim && (m->standby != NULL || pools)) {
        on_claim(BERTH_ENOENT, NULL, NULL, m);
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
        mut_send_ok(m, NULL);           /* nothing there: done already */
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
        const char *ip = api_jstr(m->rec, "ip");
        if (ip[0] != '\0')
            bd_fx_ip_release(&m->fx, ip, m->op.key);
        bd_fx_usage(&m->fx, api_jstr(m->rec, "subscription"), api_jstr(m->rec, "location"), -1);
        m->ok_status = 200;
        m->with_body = m->base_url != NULL;
        m->force_state = "Deleting";
        /* The answer names the zone the group ran in, which the replica
         * forgets with the release: kept in the record read (never
         * written back: the record goes). */
        const berth_engine_t *engine = berth_store_async_engine(m->api->async);
        berth_placement_t pl;
        berth_host_t host;
        if (gen > 0 && berth_engine_group_get(engine, m->op.key, &pl) == 0 &&
            berth_engine_host_get(engine, pl.host, &host, NULL) == 0 && host.zone != NULL &&
            host.zone[0] != '\0')
            json_object_set_new(m->rec, "zone", json_string(host.zone));
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
        mut_send_ok(m, NULL);
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
        mut_send_ok(m, NULL);           /* running already */
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

void mut_on_record(int status, json_t *rec, const char *sha1, void *data)
{
    mut_t *m = data;
    if (status != 0) {
        mut_store_failing(m);
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
