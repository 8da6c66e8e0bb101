/*
 * mutate.c: berthd's mutating requests -- PUT, PATCH and DELETE of a
 * container group, and its start, stop and restart -- each one atomic
 * step.
 *
 * A request reads the resource record (records.c, without blocking),
 * decides in memory what changes, and makes ONE commit through the
 * asynchronous store: the placement or release (or restart, or nothing
 * placed at all) together with every record the request changes -- the
 * resource record and its index entry, the DNS label, a subnet group's
 * private address, the usage count, the operation record, a POST's answer
 * for retries -- as the commit's effects
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
 * succeed).  A change that needs a delete: 409.  A private address another
 * group holds: the next one, anew from the read, at most MUT_IP_PROBES
 * times, then 409 PrivateIpAddressNotAvailable.  Redis failing: 500, or 503
 * when the record could not even be read, or when the commit was applied
 * but the Redis replicas asked for (--replicas) did not confirm it in time
 * (NotReplicated: the client's retry finds it applied and answers it).  The
 * resource changing under
 * more than MUT_ATTEMPTS tries: 409 Conflict.
 *
 * This file holds the request's life: its start (what needs no I/O, a
 * POST's earlier answer), the read, the commit's outcome, the retries and
 * the answer; mutate_decide.c decides what each kind of request changes.
 * mutate-internal.h is where the two meet.
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

#include "apiversions.h"
#include "mutate-internal.h"
#include "profiles.h"
#include "secrets.h"

void mut_free(mut_t *m)
{
    bd_fx_free(&m->fx);
    json_decref(m->rec);
    json_decref(m->newrec);
    json_decref(m->tags);
    json_decref(m->standby);
    json_decref(m->profile);
    berth_group_free(m->g);
    berth_free(m->spec);
    free(m->placed_spec);
    free(m->doc);
    free(m->body);
    free(m->base_url);
    m->api->inflight--;
    free(m);
}

void mut_error(mut_t *m, int status, const char *code, const char *target,
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

void mut_berth_error(mut_t *m, int status, const berth_error_t *err)
{
    bd_reply_berth_error(m->reply, status, err);
    mut_free(m);
}

void mut_store_failing(mut_t *m)
{
    mut_error(m, 500, "InternalServerError", "", "the resource store is failing");
}

/* ---- the answer -------------------------------------------------------------------------- */

void mut_send_ok(mut_t *m, json_t *body)
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
    mut_send_ok(data, body);
}

/* The commit applied: mut_answer, with the resource's body when one is due. */
void mut_answer(mut_t *m)
{
    if (!m->with_body) {
        mut_send_ok(m, NULL);
        return;
    }
    json_t *rec = m->newrec != NULL ? m->newrec : m->rec;
    if (m->force_state != NULL) {
        /* m->doc: the document read before the commit (a DELETE's). */
        mut_send_ok(m, api_resource_body_build(m->api, rec, NULL, m->doc, m->force_state, NULL,
                                               NULL, m->op.apiv));
        return;
    }
    /* Just placed at a new generation: no view can describe it yet, so the
     * record says all there is (no read). */
    if (m->placing) {
        /* m->g, when set, is the very document the record now holds. */
        mut_send_ok(m, api_resource_body_build(m->api, rec, m->g, NULL, NULL, NULL, NULL,
                                               m->op.apiv));
        return;
    }
    api_body_read(m->api, m->op.key, rec, m->op.apiv, on_body, m);
}

/* ---- the read, and trying again ------------------------------------------------------------ */


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
    if (bd_records_get(m->api->records, m->op.key, mut_on_record, m) != 0)
        mut_error(m, 503, "ServiceUnavailable", "", "out of memory");
}

static void on_caught_up(int status, const berth_placement_t *placement,
                         const berth_error_t *err, void *data)
{
    (void)status, (void)placement, (void)err;
    read_record(data);
}

/* Starts the request again from its read, once the replica caught up with
 * what came between. */
static void try_again(mut_t *m)
{
    berth_error_t e;
    if (berth_store_async_sync(m->api->async, on_caught_up, m, &e) != 0)
        read_record(m);
}

/* A commit's outcome other than success. */
void mut_commit_failed(mut_t *m, int status, const berth_error_t *err)
{
    /* A release whose group was gone already (the replica had not caught
     * up with a change made elsewhere): decide again on what is there. */
    bool vanished = status == BERTH_ENOENT && strcmp(m->op.kind, "restart") != 0;
    if (status == BERTH_ESTALE || vanished) {
        m->api->conflicts++;
        if (++m->attempts < MUT_ATTEMPTS) {
            /* Another request came between: the next try pins its
             * generation. */
            try_again(m);
            return;
        }
        mut_error(m, 409, "Conflict", "",
                  "the container group '%s' kept changing while this request was applied; "
                  "try again", m->op.name);
        return;
    }
    /* Another group holds the private address: the next one, from a new
     * read. */
    int ipx = bd_fx_ip_index(&m->fx);
    char ip_target[32];
    snprintf(ip_target, sizeof ip_target, "effects[%d]", ipx);
    if (status == BERTH_EEXIST && ipx >= 0 && err != NULL && strcmp(err->target, ip_target) == 0) {
        if (++m->ip_probe < MUT_IP_PROBES) {
            try_again(m);
            return;
        }
        mut_error(m, 409, "PrivateIpAddressNotAvailable", "properties.subnetIds[0].id",
                  "no free private address was found in the group's subnet (%d tried)",
                  MUT_IP_PROBES);
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
    else if (status == BERTH_EIO && strcmp(e.name, "NotReplicated") == 0)
        http = 503;     /* applied, not confirmed: the client's retry confirms it */
    mut_berth_error(m, http, &e);
}

void mut_on_commit(int status, const berth_placement_t *placement, const berth_error_t *err,
                      void *data)
{
    mut_t *m = data;
    if (m->placing) {
        api_observe_placement(m->api, api_mono_s() - m->t0, status);
        if (status == 0 && placement != NULL)
            m->api->evictions += placement->evicted;
    }
    if (status != 0) {
        mut_commit_failed(m, status, err);
        return;
    }
    mut_answer(m);
}

/* ---- the start: what needs no I/O, then a POST's earlier answer ---------------------------- */

/* Refuses a PUT's document that uses a property (or value) its api-version's
 * spec does not have yet (apiversions.h), before anything reads it; a body
 * that is no JSON object is left to the parser.  0, or -1 with the reply
 * sent. */
static int version_gate(mut_t *m)
{
    json_t *raw = json_loadb(m->body, m->op.body_len, 0, NULL);
    bd_apiv_refusal_t why;
    bool versioned = bd_apiv_request_ok(raw, m->op.apiv, &why);
    json_decref(raw);
    if (versioned)
        return 0;
    if (why.field->value != NULL)
        mut_error(m, 400, "InvalidRequestContent", why.target,
                  "The value '%s' of property '%s' is not supported in api-version '%s'; it is "
                  "available from api-version '%s' on.",
                  why.field->value, why.target, m->op.apiv, why.field->first);
    else
        mut_error(m, 400, "InvalidRequestContent", why.target,
                  "The property '%s' is not supported in api-version '%s'; it is available "
                  "from api-version '%s' on.",
                  why.target, m->op.apiv, why.field->first);
    return -1;
}

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
    if (mut_standby_take(m) != 0)
        return -1;
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
    bd_location_norm(m->g->location, m->location, sizeof m->location);
    rc = berth_engine_group_request(berth_store_async_engine(m->api->async), m->g, &m->req, &err);
    if (rc != 0) {
        mut_berth_error(m, 400, &err);
        return -1;
    }
    /* Sealed before anything is stored or compared: the record, the
     * change log and the digest only ever see the sealed document. */
    rc = bd_group_seal(m->api->cfg->secrets, m->g, &err);
    if (rc != 0) {
        mut_berth_error(m, rc == BERTH_ENOMEM ? 503 : 400, &err);
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
            mut_send_ok(m, NULL);       /* the first mut_answer, again */
            return;
        }
        json_decref(d);
    }
    read_record(m);
}

/* A PUT naming a container group profile (profiles.h): the profile's
 * document under the request's becomes the PUT's document, then the PUT
 * goes on as any other. */
static void on_profile(int status, const char *document, uint64_t revision,
                       const berth_error_t *err, void *data)
{
    mut_t *m = data;
    if (status != 0) {
        berth_error_t e;
        berth_error_set(&e, status, err->name, "", "%s", err->message);
        snprintf(e.target, sizeof e.target, "properties.containerGroupProfile.%.200s",
                 err->target[0] ? err->target : "id");
        mut_berth_error(m, status == BERTH_ENOENT ? 404 : status == BERTH_EINVAL ? 400 : 500,
                        &e);
        return;
    }
    json_object_set_new(m->profile, "revision", json_integer((json_int_t)revision));
    char *merged = NULL;
    size_t len = 0;
    berth_error_t e;
    int rc = bd_profile_merge(document, m->body, m->op.body_len, &merged, &len, &e);
    if (rc != 0) {
        mut_berth_error(m, rc == BERTH_ENOMEM ? 503 : 400, &e);
        return;
    }
    free(m->body);
    m->body = merged;
    m->op.body = merged;
    m->op.body_len = len;
    /* The profile's document, too, is held to the request's api-version. */
    if (version_gate(m) != 0 || put_document(m) != 0)
        return;
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
    if (strcmp(op->kind, "put") == 0) {
        if (op->body_len > 0 && version_gate(m) != 0)
            return;
        char *profile_id = NULL;
        uint64_t revision = 0;
        berth_error_t err;
        berth_error_clear(&err);
        int rc = bd_profile_reference(m->body, op->body_len, &profile_id, &revision, &err);
        if (rc < 0) {
            mut_berth_error(m, rc == BERTH_ENOMEM ? 503 : 400, &err);
            return;
        }
        if (rc == 1) {
            m->profile = json_pack("{s:s, s:I}", "id", profile_id, "revision", (json_int_t)0);
            rc = m->profile == NULL ? BERTH_ENOMEM
                                    : bd_profile_resolve(api, op->sub, profile_id, revision,
                                                         on_profile, m);
            free(profile_id);
            if (rc != 0)
                mut_error(m, 503, "ServiceUnavailable", "", "out of memory");
            return;
        }
        if (put_document(m) != 0)
            return;
    }
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
