/*
 * api_groups.c: how berthd reads and renders one container group: the
 * resource's ARM body built from its record, its document, its agent's
 * view and its eviction, read without blocking, and the GET of a group.
 *
 * It must never block the loop (every read is a callback of the
 * asynchronous store or records.c), never write anything, and never put a
 * secret (secure environment values, registry passwords) in a body.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api-internal.h"
#include "apiversions.h"

/* ---- resource bodies -------------------------------------------------------------------- */

/* Contract: api-internal.h. */
json_t *api_find_named(json_t *arr, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (strcmp(api_jstr(e, "name"), name) == 0)
            return e;
    }
    return NULL;
}

/* Sets each container's properties.instanceView: `same` for every one when
 * not NULL, else the one of the container of that name in the view's list. */
static void merge_containers(json_t *doc_list, json_t *view_list, json_t *same)
{
    size_t i;
    json_t *c;
    json_array_foreach(doc_list, i, c)
    {
        json_t *props = json_object_get(c, "properties");
        if (!json_is_object(props))
            continue;
        json_object_del(props, "instanceView");
        json_t *iv = same != NULL
            ? same
            : json_object_get(api_find_named(view_list, api_jstr(c, "name")), "instanceView");
        if (json_is_object(iv))
            json_object_set(props, "instanceView", iv);
    }
}

/* WHERE PORTS LAND.  Each of properties.ipAddress.ports[] gets, as Berth's
 * extension to ACI's body, the hostIp and hostPort the group's agent saw
 * the runtime publish it on (its view's ipAddress.ports[], matched by port
 * and protocol) when the view describes the record's generation: a port
 * the runtime publishes nowhere (the simulator and docker plugins publish
 * ports, runc's never) or a group not running has none. */
static void merge_host_ports(json_t *doc_ports, json_t *view_ports)
{
    size_t i, k;
    json_t *p, *v;
    json_array_foreach(doc_ports, i, p)
    {
        json_object_del(p, "hostIp");
        json_object_del(p, "hostPort");
        json_int_t port = json_integer_value(json_object_get(p, "port"));
        const char *proto = api_jstr(p, "protocol");
        json_array_foreach(view_ports, k, v)
        {
            const char *vproto = api_jstr(v, "protocol");
            json_int_t hport = json_integer_value(json_object_get(v, "hostPort"));
            if (json_integer_value(json_object_get(v, "port")) != port || hport <= 0 ||
                strcasecmp(vproto, proto[0] != '\0' ? proto : "TCP") != 0)
                continue;
            json_object_set(p, "hostIp", json_object_get(v, "hostIp"));
            json_object_set_new(p, "hostPort", json_integer(hport));
            break;
        }
    }
}

/* PRIORITY AND EVICTION.  properties.priority (Regular or Spot) is taken
 * from api-version 2022-10-01-preview on (Azure's first version with it; the
 * 2021-03-01 spec lacks it: apiversions.c) and refused, naming the
 * property, before; answers under those versions leave it out.  A
 * new Regular group that fits nowhere evicts Spot groups (the core's
 * berth_store_place(); the PUT still answers 201).  An evicted group keeps
 * its resource record, like a stopped one, and holds no placement: the
 * cell's eviction record (berth_store_eviction_read()) tells them apart.
 * Its GET shows instanceView.state "Terminated" with a Warning event
 * "SpotEviction", and every container Terminated at the eviction with
 * detailStatus "Evicted"; start places it again (409 ResourceNotAvailable while
 * nothing fits), PUT re-places it as for a stopped group, DELETE drops the
 * record.  Changing the priority of an existing group is refused (409),
 * like every change that needs a delete. */

/* The instance view of an evicted group. */
static json_t *evicted_view(const berth_eviction_t *ev)
{
    char when[40];
    berth__clock_format_iso8601((int64_t)ev->time_ms, when, sizeof when);
    char message[160];
    snprintf(message, sizeof message,
             "The Spot container group was evicted from host '%s' to make room for a "
             "Regular container group.", ev->host);
    return json_pack("{s:s, s:[{s:i, s:s, s:s, s:s, s:s, s:s}]}", "state", "Terminated",
                     "events", "count", 1, "firstTimestamp", when, "lastTimestamp", when,
                     "name", "SpotEviction", "message", message, "type", "Warning");
}

/* A container's instance view in an evicted group: Terminated at the
 * eviction, detailStatus "Evicted". */
static json_t *evicted_container_view(const berth_eviction_t *ev)
{
    char when[40];
    berth__clock_format_iso8601((int64_t)ev->time_ms, when, sizeof when);
    return json_pack("{s:i, s:{s:s, s:s, s:s}, s:[]}", "restartCount", 0, "currentState",
                     "state", "Terminated", "finishTime", when, "detailStatus", "Evicted",
                     "events");
}

/* The resource's ARM body (secrets redacted) from its record and view. */
/* Contract: api-internal.h. */
json_t *api_resource_body_build(bd_api_t *api, json_t *rec, const berth_group_t *parsed,
                                const char *doc, const char *force_state,
                                const json_t *view_in, const berth_eviction_t *evicted_by,
                                const char *apiv)
{
    json_t *body = NULL;
    berth_group_t *g = NULL;
    berth_error_t err;
    char *text = NULL;
    if ((parsed != NULL ||
         (doc != NULL && berth_group_parse(doc, strlen(doc), &g, &err) == 0)) &&
        berth_group_to_json(parsed != NULL ? parsed : g, BERTH_JSON_REDACT, &text, NULL) == 0)
        body = json_loads(text, 0, NULL);
    berth_free(text);
    berth_group_free(g);
    if (!json_is_object(body)) {
        json_decref(body);
        body = json_object();
    }
    json_object_set(body, "id", json_object_get(rec, "id"));
    json_object_set(body, "name", json_object_get(rec, "name"));
    json_object_set_new(body, "type", json_string("Microsoft.ContainerInstance/containerGroups"));
    json_object_set(body, "location", json_object_get(rec, "location"));
    json_t *tags = json_object_get(rec, "tags");
    if (json_is_object(tags) && json_object_size(tags) > 0)
        json_object_set(body, "tags", tags);
    else
        json_object_del(body, "tags");
    json_t *props = json_object_get(body, "properties");
    if (!json_is_object(props)) {
        props = json_object();
        json_object_set_new(body, "properties", props);
    }
    json_object_del(props, "instanceView");
    json_object_del(props, "provisioningState");
    /* A standby pool's reference and whether the group took a member
     * over (mutate_decide.c keeps both in the record). */
    json_t *standby = json_object_get(rec, "standbyPoolProfile");
    if (json_is_object(standby))
        json_object_set(props, "standbyPoolProfile", standby);
    /* Answered always (false for a group no pool member became), as ACI
     * answers it from 2024-05-01-preview on (the shaping drops it before). */
    json_t *from_pool = json_object_get(rec, "isCreatedFromStandbyPool");
    json_object_set_new(props, "isCreatedFromStandbyPool",
                        json_boolean(json_is_true(from_pool)));
    if (json_object_get(props, "initContainers") == NULL)   /* ACI always answers one */
        json_object_set_new(props, "initContainers", json_array());
    if (json_object_get(props, "imageRegistryCredentials") == NULL)     /* and this */
        json_object_set_new(props, "imageRegistryCredentials", json_array());
    if (json_object_get(props, "sku") == NULL)              /* ACI's default, answered */
        json_object_set_new(props, "sku", json_string("Standard"));
    json_t *profile = json_object_get(rec, "profile");      /* profiles.h: {id, revision} */
    if (json_is_object(profile))
        json_object_set(props, "containerGroupProfile", profile);

    const char *state = api_jstr(rec, "state");
    berth_eviction_t eviction;
    bool evicted = force_state == NULL && evicted_by != NULL;
    if (evicted)
        eviction = *evicted_by;
    /* An evicted group's last view (until its agent drops it) is history. */
    json_t *view = evicted || view_in == NULL ? NULL : json_incref((json_t *)view_in);
    bool current = view != NULL && json_integer_value(json_object_get(view, "generation")) ==
                                       json_integer_value(json_object_get(rec, "generation"));
    if (force_state != NULL) {
        json_object_set_new(props, "provisioningState", json_string(force_state));
    } else if (evicted) {
        json_object_set_new(props, "provisioningState", json_string("Succeeded"));
        json_object_set_new(props, "instanceView", evicted_view(&eviction));
        json_t *civ = evicted_container_view(&eviction);
        merge_containers(json_object_get(props, "containers"), NULL, civ);
        merge_containers(json_object_get(props, "initContainers"), NULL, civ);
        json_decref(civ);
    } else if (strcmp(state, "Stopped") == 0) {
        json_object_set_new(props, "provisioningState", json_string("Succeeded"));
        json_object_set_new(props, "instanceView",
                            json_pack("{s:s, s:[]}", "state", "Stopped", "events"));
    } else if (current && json_is_string(json_object_get(view, "provisioningState"))) {
        json_object_set(props, "provisioningState", json_object_get(view, "provisioningState"));
    } else {
        json_object_set_new(props, "provisioningState", json_string(state[0] ? state : "Pending"));
    }
    if (view != NULL && strcmp(state, "Stopped") != 0 && force_state == NULL) {
        json_t *iv = json_object_get(view, "instanceView");
        if (json_is_object(iv)) {
            json_t *out = json_object();
            json_object_set(out, "state", json_object_get(iv, "state"));
            json_t *ev = json_object_get(iv, "events");
            json_object_set(out, "events", json_is_array(ev) ? ev : json_array());
            if (json_object_get(out, "state") == NULL)
                json_object_del(out, "state");
            json_object_set_new(props, "instanceView", out);
        }
        merge_containers(json_object_get(props, "containers"),
                         json_object_get(view, "containers"), NULL);
        merge_containers(json_object_get(props, "initContainers"),
                         json_object_get(view, "initContainers"), NULL);
    }
    json_t *ip = json_object_get(props, "ipAddress");
    /* A group in a subnet: its private address, claimed by its PUT
     * (records.h, `ip`: "<subnet hash>/<a.b.c.d>"). */
    const char *claim = strchr(api_jstr(rec, "ip"), '/');
    if (claim != NULL) {
        if (!json_is_object(ip)) {
            ip = json_pack("{s:s}", "type", "Private");
            json_object_set_new(props, "ipAddress", ip);
        }
        if (ip != NULL)
            json_object_set_new(ip, "ip", json_string(claim + 1));
    }
    if (json_is_object(ip)) {
        const char *vip = api_jstr(json_object_get(view, "ipAddress"), "ip");
        if (vip[0] != '\0' && claim == NULL && strcmp(state, "Stopped") != 0)
            json_object_set_new(ip, "ip", json_string(vip));
        if (strcmp(state, "Stopped") != 0 && force_state == NULL && current)
            merge_host_ports(json_object_get(ip, "ports"),
                             json_object_get(json_object_get(view, "ipAddress"), "ports"));
        const char *label = api_jstr(ip, "dnsNameLabel");
        if (label[0] != '\0') {
            char fqdn[512];
            snprintf(fqdn, sizeof fqdn, "%s.%s.%s", label, api_jstr(rec, "location"),
                     api->cfg->dns_domain ? api->cfg->dns_domain : "berth.local");
            json_object_set_new(ip, "fqdn", json_string(fqdn));
        }
    }
    json_decref(view);
    /* ZONES.  A group that named no zone is answered with the zone of the
     * host it is placed on (the replica's placement; a stopped group's last
     * host; a group being deleted: the zone its record read carries, see
     * mutate_decide.c), as ACI answers the zone it chose. */
    if (json_object_get(body, "zones") == NULL) {
        char key[BD_KEY_MAX + 1];
        bd_resource_key(api_jstr(rec, "subscription"), api_jstr(rec, "resourceGroup"),
                        api_jstr(rec, "name"), key, sizeof key);
        const berth_engine_t *engine = berth_store_async_engine(api->async);
        berth_placement_t pl;
        berth_host_t host;
        const char *where = api_jstr(rec, "lastHost");
        if (engine != NULL && berth_engine_group_get(engine, key, &pl) == 0)
            where = pl.host;
        const char *zone = api_jstr(rec, "zone");
        if (zone[0] == '\0' && where[0] != '\0' && engine != NULL &&
            berth_engine_host_get(engine, where, &host, NULL) == 0 && host.zone != NULL)
            zone = host.zone;
        if (zone[0] != '\0')
            json_object_set_new(body, "zones", json_pack("[s]", zone));
    }
    bd_apiv_shape(body, apiv);
    return body;
}

/* Contract: api-internal.h. */
json_t *api_view_load(const char *text, size_t len, const char *key)
{
    const char *slash = strrchr(key, '/');
    size_t klen = strlen(key);
    char *copy = NULL;
    if (slash != NULL && klen > 0 && memmem(text, len, key, klen) != NULL) {
        const char *name = slash + 1;
        size_t nlen = strlen(name);
        copy = malloc(len + 1);
        if (copy == NULL)
            return NULL;
        size_t out = 0;
        for (size_t i = 0; i < len;) {
            if (i + klen <= len && memcmp(text + i, key, klen) == 0) {
                memcpy(copy + out, name, nlen);     /* never longer than the key */
                out += nlen;
                i += klen;
            } else {
                copy[out++] = text[i++];
            }
        }
        text = copy;
        len = out;
    }
    json_t *view = json_loadb(text, len, 0, NULL);
    free(copy);
    if (view != NULL && !json_is_object(view)) {
        json_decref(view);
        view = NULL;
    }
    return view;
}

/* ---- bodies without blocking ----------------------------------------------------------- */

/* What api_body_read() gathers before it builds the body: the document
 * and, at once beside it, the view or the eviction record. */
typedef struct body_read {
    bd_api_t *api;
    char key[BD_KEY_MAX + 1];
    json_t *rec;
    int pending;                    /* reads still out                      */
    char *doc;                      /* NULL: none could be read             */
    json_t *view;
    bool evicted;
    berth_eviction_t eviction;
    char apiv[32];                  /* the answer's api-version             */
    api_body_cb cb;
    void *data;
} body_read_t;

/* One read is in; the body is built once all are. */
static void body_step(body_read_t *b)
{
    if (--b->pending > 0)
        return;
    json_t *body = api_resource_body_build(b->api, b->rec, NULL, b->doc, NULL,
                                           b->evicted ? NULL : b->view,
                                           b->evicted ? &b->eviction : NULL, b->apiv);
    api_body_cb cb = b->cb;
    void *data = b->data;
    json_decref(b->rec);
    json_decref(b->view);
    free(b->doc);
    free(b);
    cb(body, data);
}

static void body_document(int status, const char *spec, uint64_t generation, const char *host,
                          const berth_error_t *err, void *data)
{
    (void)generation, (void)host, (void)err;
    body_read_t *b = data;
    if (status == 0 && spec != NULL)
        b->doc = strdup(spec);
    body_step(b);
}

static void body_view(int status, const char *text, size_t len, const berth_error_t *err,
                      void *data)
{
    (void)err;
    body_read_t *b = data;
    b->view = status == 0 && text != NULL ? api_view_load(text, len, b->key) : NULL;
    body_step(b);
}

static void body_eviction(int status, const berth_eviction_t *eviction, const berth_error_t *err,
                          void *data)
{
    (void)err;
    body_read_t *b = data;
    if (status == 0 && eviction != NULL) {
        b->evicted = true;          /* an evicted group's last view is history */
        b->eviction = *eviction;
    }
    body_step(b);
}

/* Contract: api-internal.h. */
void api_body_read(bd_api_t *api, const char *key, json_t *rec, const char *apiv, api_body_cb cb,
                   void *data)
{
    body_read_t *b = calloc(1, sizeof *b);
    if (b == NULL) {
        cb(NULL, data);
        return;
    }
    b->api = api;
    snprintf(b->key, sizeof b->key, "%s", key);
    snprintf(b->apiv, sizeof b->apiv, "%s", apiv);
    b->rec = json_incref(rec);
    b->cb = cb;
    b->data = data;
    b->pending = 1;                 /* until every read below is queued */
    berth_error_t e;
    uint64_t gen;
    if (berth_store_async_document_read(api->async, key, body_document, b, &e) == 0)
        b->pending++;
    /* Placed: its view.  Neither stopped nor placed: evicted, when the
     * cell says so. */
    if (strcmp(api_jstr(rec, "state"), "Stopped") != 0) {
        bool placed = berth_store_async_generation(api->async, key, &gen) == 0;
        /* Moved off its host since the record was written (a drain, the
         * failover): the placement's generation is the one a view must
         * describe. */
        json_int_t rgen = json_integer_value(json_object_get(rec, "generation"));
        json_t *moved = placed && (json_int_t)gen > rgen ? json_deep_copy(rec) : NULL;
        if (moved != NULL) {
            json_object_set_new(moved, "generation", json_integer((json_int_t)gen));
            json_decref(b->rec);
            b->rec = moved;
        }
        if (placed ? berth_store_async_view_read(api->async, key, body_view, b, &e) == 0
                   : berth_store_async_eviction_read(api->async, key, body_eviction, b, &e) == 0)
            b->pending++;
    }
    body_step(b);
}

static void get_group_body(json_t *body, void *data)
{
    bd_reply_t *reply = data;
    if (body == NULL)
        bd_reply_error(reply, 500, "InternalServerError", "", "out of memory");
    else
        bd_reply_send(reply, 200, body, NULL);
}

/* GET of one group: the record, then its view, without blocking. */
typedef struct get_ctx {
    bd_api_t *api;
    bd_reply_t *reply;
    char key[BD_KEY_MAX + 1];
    char rg[BD_RG_MAX + 1];
    char name[64];
    char apiv[32];
} get_ctx_t;

static void get_group_record(int status, json_t *rec, const char *sha1, void *data)
{
    (void)sha1;
    get_ctx_t *g = data;
    if (status != 0)
        bd_reply_store_failing(g->reply);
    else if (rec == NULL)
        api_reply_not_found(g->reply, g->rg, g->name);
    else
        api_body_read(g->api, g->key, rec, g->apiv, get_group_body, g->reply);
    free(g);
}

/* Contract: api-internal.h. */
void api_get_group(bd_api_t *api, const op_t *op, bd_reply_t *reply)
{
    get_ctx_t *g = calloc(1, sizeof *g);
    if (g == NULL) {
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    g->api = api;
    g->reply = reply;
    snprintf(g->key, sizeof g->key, "%s", op->key);
    snprintf(g->rg, sizeof g->rg, "%s", op->rg);
    snprintf(g->name, sizeof g->name, "%s", op->name);
    snprintf(g->apiv, sizeof g->apiv, "%s", op->apiv);
    if (bd_records_get(api->records, op->key, get_group_record, g) != 0) {
        free(g);
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
    }
}
