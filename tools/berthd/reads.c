/*
 * reads.c: berthd's container-group routes that read -- lists,
 * long-running operations, the operators' list of where groups run -- and
 * the ones that go to a group's agent -- logs and exec sessions -- all as
 * callbacks on the loop.
 *
 * Each request keeps a small context from its first read to its reply;
 * the reply is sent exactly once, from the last callback (or at once when
 * a read could not be queued).
 *
 * This file must never block and never write: its only writes are an exec
 * session's record (bd_records_set(), a key of berthd's own with a TTL)
 * and its single-use removal.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api-internal.h"
#include "query.h"
#include "reads.h"

#define EXEC_TTL_S 60
#define EXEC_PASSWORD_TRIES 3       /* wrong passwords that close a session  */
#define RANGE_MAX 512
#define PATH_MAX_BYTES 2048

static void out_of_memory(bd_reply_t *reply)
{
    bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
}

/* ---- lists ------------------------------------------------------------------------------- */

typedef struct list_ctx {
    bd_api_t *api;
    bd_reply_t *reply;
    json_t *value;                  /* the page's bodies, in order          */
    char apiv[32];                  /* the bodies' api-version              */
    size_t waiting;                 /* bodies still being read              */
    char *next_link;                /* or NULL                              */
} list_ctx_t;

typedef struct list_item {
    list_ctx_t *l;
    size_t index;
} list_item_t;

static void list_finish(list_ctx_t *l)
{
    /* Bodies that could not be built (out of memory) leave nulls: drop them. */
    for (size_t i = json_array_size(l->value); i-- > 0;)
        if (json_is_null(json_array_get(l->value, i)))
            json_array_remove(l->value, i);
    json_t *body = json_pack("{s:O}", "value", l->value);
    if (body != NULL && l->next_link != NULL)
        json_object_set_new(body, "nextLink", json_string(l->next_link));
    if (body == NULL)
        out_of_memory(l->reply);
    else
        bd_reply_send(l->reply, 200, body, NULL);
    json_decref(l->value);
    free(l->next_link);
    free(l);
}

static void list_body(json_t *body, void *data)
{
    list_item_t *it = data;
    list_ctx_t *l = it->l;
    if (body != NULL)
        json_array_set_new(l->value, it->index, body);
    free(it);
    if (--l->waiting == 0)
        list_finish(l);
}

static void list_records(int status, const char *const *keys, json_t *const *recs, size_t n,
                         bool more, void *data)
{
    list_ctx_t *l = data;
    if (status != 0) {
        bd_reply_store_failing(l->reply);
        json_decref(l->value);
        free(l->next_link);
        free(l);
        return;
    }
    if (!more || n == 0) {
        free(l->next_link);
        l->next_link = NULL;
    } else {
        char enc[RANGE_MAX * 3];
        char *link = NULL;
        if (bd_urlencode(keys[n - 1], enc, sizeof enc) == 0 && l->next_link != NULL &&
            asprintf(&link, "%s%s", l->next_link, enc) < 0)
            link = NULL;
        free(l->next_link);
        l->next_link = link;
    }
    size_t live = 0;
    for (size_t i = 0; i < n; i++)
        live += recs[i] != NULL;
    if (live == 0) {
        list_finish(l);
        return;
    }
    for (size_t i = 0; i < live; i++)
        json_array_append_new(l->value, json_null());
    l->waiting = live;
    size_t slot = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i] == NULL)
            continue;   /* deleted between the index and the record */
        list_item_t *it = malloc(sizeof *it);
        if (it == NULL) {
            slot++;         /* its slot stays null and is dropped */
            if (--l->waiting == 0) {
                list_finish(l);
                return;
            }
            continue;
        }
        it->l = l;
        it->index = slot++;
        api_body_read(l->api, keys[i], recs[i], l->apiv, list_body, it);
    }
}

/* Contract: reads.h. */
void bd_reads_list(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, const char *prefix,
                   const char *apiv)
{
    char top_s[16], skip[RANGE_MAX];
    int top = BD_PAGE_MAX;
    int q = bd_query_get(req->query, "$top", top_s, sizeof top_s);
    if (q < 0 || (q == 1 && ((top = atoi(top_s)) < 1 || top > BD_PAGE_MAX))) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "$top",
                       "$top must be an integer from 1 to %d", BD_PAGE_MAX);
        return;
    }
    q = bd_query_get(req->query, "$skiptoken", skip, sizeof skip);
    if (q < 0) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "$skiptoken",
                       "the $skiptoken is malformed");
        return;
    }
    list_ctx_t *l = calloc(1, sizeof *l);
    if (l == NULL || (l->value = json_array()) == NULL) {
        free(l);
        out_of_memory(reply);
        return;
    }
    l->api = api;
    l->reply = reply;
    snprintf(l->apiv, sizeof l->apiv, "%s", apiv);
    if (asprintf(&l->next_link, "%s%s?api-version=%s&$top=%d&$skiptoken=", req->base_url,
                 req->path, apiv, top) < 0)
        l->next_link = NULL;
    bool after = q == 1 && strncmp(skip, prefix, strlen(prefix)) == 0;
    if (bd_records_list(api->records, prefix, after ? skip : NULL, (size_t)top, list_records,
                        l) != 0) {
        json_decref(l->value);
        free(l->next_link);
        free(l);
        out_of_memory(reply);
    }
}

/* ---- where groups run (operators) -------------------------------------------------------- */

typedef struct where_ctx {
    bd_api_t *api;
    bd_reply_t *reply;
    char prefix[BD_KEY_MAX + 1];
    char after[RANGE_MAX];          /* $skiptoken ("" : from the first)     */
    bool exact;                     /* prefix is one group's whole key      */
    int top;
    char *next_link;                /* up to "$skiptoken=", or NULL         */
} where_ctx_t;

static void where_free(where_ctx_t *w)
{
    free(w->next_link);
    free(w);
}

/* One group's line: its record, and its placement in the replica (a
 * memory read). */
static json_t *where_item(bd_api_t *api, const char *key, json_t *rec)
{
    berth_placement_t pl;
    bool placed = berth_engine_group_get(berth_store_async_engine(api->async), key, &pl) == 0;
    json_t *o = json_pack("{s:O?, s:O?, s:O?, s:O?, s:s}", "id", json_object_get(rec, "id"),
                          "name", json_object_get(rec, "name"), "resourceGroup",
                          json_object_get(rec, "resourceGroup"), "state",
                          json_object_get(rec, "state"), "host", placed ? pl.host : "");
    const char *last = api_jstr(rec, "lastHost");
    if (o != NULL && last[0] != '\0')
        json_object_set_new(o, "lastHost", json_string(last));
    return o;
}

static void where_records(int status, const char *const *keys, json_t *const *recs, size_t n,
                          bool more, void *data)
{
    where_ctx_t *w = data;
    if (status != 0) {
        bd_reply_store_failing(w->reply);
        where_free(w);
        return;
    }
    json_t *value = json_array();
    for (size_t i = 0; value != NULL && i < n; i++) {
        if (recs[i] == NULL || (w->exact && strcmp(keys[i], w->prefix) != 0))
            continue;
        json_t *item = where_item(w->api, keys[i], recs[i]);
        if (item == NULL || json_array_append_new(value, item) != 0) {
            json_decref(value);
            value = NULL;
        }
    }
    json_t *body = value != NULL ? json_pack("{s:o}", "value", value) : NULL;
    char enc[RANGE_MAX * 3];
    if (body != NULL && more && n > 0 && !w->exact && w->next_link != NULL &&
        bd_urlencode(keys[n - 1], enc, sizeof enc) == 0) {
        char *link = NULL;
        if (asprintf(&link, "%s%s", w->next_link, enc) >= 0) {
            json_object_set_new(body, "nextLink", json_string(link));
            free(link);
        }
    }
    if (body == NULL)
        out_of_memory(w->reply);
    else
        bd_reply_send(w->reply, 200, body, NULL);
    where_free(w);
}

/* The replica is up to date with the cell (or could not be): the records. */
static void where_synced(int status, const berth_placement_t *placement,
                         const berth_error_t *err, void *data)
{
    (void)status, (void)placement, (void)err;
    where_ctx_t *w = data;
    if (bd_records_list(w->api->records, w->prefix, w->after[0] ? w->after : NULL,
                        w->exact ? 1 : (size_t)w->top, where_records, w) != 0) {
        out_of_memory(w->reply);
        where_free(w);
    }
}

/* Contract: reads.h. */
void bd_reads_where(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply)
{
    char sub[BD_SUB_MAX + 1], rg[BD_RG_MAX + 1], name[64], top_s[16];
    int top = BD_PAGE_MAX;
    int qs = bd_query_get(req->query, "subscription", sub, sizeof sub);
    int qr = bd_query_get(req->query, "resourceGroup", rg, sizeof rg);
    int qn = bd_query_get(req->query, "name", name, sizeof name);
    int qt = bd_query_get(req->query, "$top", top_s, sizeof top_s);
    if (qs != 1 || !bd_valid_subscription(sub)) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "subscription",
                       "subscription must name a subscription id");
        return;
    }
    /* The query names the subscription: the token must allow it, as it
     * must allow a path's (the same 403 whether anything is there). */
    bool allowed = req->any_subscription;
    for (size_t i = 0; !allowed && req->subscriptions != NULL && i < req->nsubscriptions; i++)
        allowed = strcasecmp(req->subscriptions[i], sub) == 0;
    if (!allowed) {
        bd_reply_route(reply, "Forbidden");
        bd_reply_error(reply, 403, "AuthorizationFailed", "",
                       "The client does not have authorization to perform the action "
                       "over scope '%s'.", sub);
        return;
    }
    if (qr < 0 || (qr == 1 && !bd_valid_resource_group(rg))) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "resourceGroup",
                       "resourceGroup must be a resource group name");
        return;
    }
    if (qn < 0 || (qn == 1 && (qr != 1 || !bd_valid_group_name(name)))) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "name",
                       qr != 1 ? "name needs resourceGroup"
                               : "name must be a container group name");
        return;
    }
    if (qt < 0 || (qt == 1 && ((top = atoi(top_s)) < 1 || top > BD_PAGE_MAX))) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "$top",
                       "$top must be an integer from 1 to %d", BD_PAGE_MAX);
        return;
    }
    where_ctx_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        out_of_memory(reply);
        return;
    }
    w->api = api;
    w->reply = reply;
    w->top = top;
    w->exact = qn == 1;
    if (qr == 1) {
        bd_resource_key(sub, rg, qn == 1 ? name : "", w->prefix, sizeof w->prefix);
    } else {
        bd_lower(sub, w->prefix, sizeof w->prefix - 1);
        strcat(w->prefix, "/");
    }
    int qk = bd_query_get(req->query, "$skiptoken", w->after, sizeof w->after);
    if (qk < 0 || (qk == 1 && strncmp(w->after, w->prefix, strlen(w->prefix)) != 0)) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "$skiptoken",
                       "the $skiptoken is malformed");
        free(w);
        return;
    }
    char esub[RANGE_MAX], erg[RANGE_MAX];
    if (bd_urlencode(sub, esub, sizeof esub) != 0 ||
        bd_urlencode(qr == 1 ? rg : "", erg, sizeof erg) != 0 ||
        asprintf(&w->next_link, "%s%s?subscription=%s%s%s&$top=%d&$skiptoken=", req->base_url,
                 req->path, esub, qr == 1 ? "&resourceGroup=" : "", erg, top) < 0)
        w->next_link = NULL;
    berth_error_t err;
    if (berth_store_async_sync(api->async, where_synced, w, &err) != 0)
        where_synced(0, NULL, NULL, w);
}

/* ---- long-running operations ---------------------------------------------------------------- */

typedef struct op_ctx {
    bd_api_t *api;
    bd_reply_t *reply;
    char sub[BD_SUB_MAX + 1];
    char opid[BD_ID_HEX + 1];
    json_t *o;                      /* the operation record                 */
    json_t *rec;                    /* its resource's record, or NULL       */
} op_ctx_t;

/* Finds a failure message in a view's events (group, then containers). */
static const char *view_failure(json_t *view)
{
    size_t i, j;
    json_t *e, *c;
    json_array_foreach(json_object_get(json_object_get(view, "instanceView"), "events"), i, e)
    {
        if (strstr(api_jstr(e, "name"), "Fail") || strstr(api_jstr(e, "type"), "Fail") ||
            strcmp(api_jstr(e, "type"), "Warning") == 0)
            return api_jstr(e, "message");
    }
    json_array_foreach(json_object_get(view, "containers"), j, c)
    {
        json_array_foreach(json_object_get(json_object_get(c, "instanceView"), "events"), i, e)
        {
            if (strstr(api_jstr(e, "name"), "Fail") || strcmp(api_jstr(e, "type"), "Warning") == 0)
                return api_jstr(e, "message");
        }
    }
    return "the container group failed";
}

/* Answers the operation from its record, its resource's and (NULL: none)
 * the resource's view.  ENDTIME is when the operation finished, the same
 * at every poll: the time the agent's view reached its provisioningState
 * (its stateTime), or, for an operation a later change ended (a stop,
 * another PUT), the time of that change (the record's "updated").  Only a
 * resource deleted since leaves no such time: then the time of the poll. */
static void op_answer(op_ctx_t *c, json_t *view)
{
    const char *status = "InProgress";
    const char *message = NULL;
    uint64_t gen = (uint64_t)json_integer_value(json_object_get(c->o, "generation"));
    int64_t end = 0;
    if (c->rec == NULL) {
        status = strcmp(api_jstr(c->o, "kind"), "delete") == 0 ? "Succeeded" : "Canceled";
    } else if ((uint64_t)json_integer_value(json_object_get(c->rec, "generation")) != gen) {
        status = "Canceled";        /* a later change replaced it */
        end = (int64_t)json_integer_value(json_object_get(c->rec, "updated"));
    } else if (strcmp(api_jstr(c->rec, "state"), "Stopped") == 0) {
        status = "Succeeded";
        end = (int64_t)json_integer_value(json_object_get(c->rec, "updated"));
    } else if (view != NULL &&
               (uint64_t)json_integer_value(json_object_get(view, "generation")) == gen) {
        const char *ps = api_jstr(view, "provisioningState");
        end = (int64_t)json_integer_value(json_object_get(view, "stateTime"));
        if (strcmp(ps, "Succeeded") == 0) {
            status = "Succeeded";
        } else if (strcmp(ps, "Failed") == 0) {
            status = "Failed";
            message = view_failure(view);
        } else {
            end = 0;
        }
    }
    if (end <= 0 && status[0] != 'I')   /* terminal: not InProgress */
        end = berth__clock_wall_ms();
    char start[40], endt[40];
    berth__clock_format_iso8601(json_integer_value(json_object_get(c->o, "startTime")), start,
                                sizeof start);
    char id[512];
    snprintf(id, sizeof id,
             "/subscriptions/%s/providers/Microsoft.ContainerInstance/locations/%s/operations/%s",
             c->sub, api_jstr(c->o, "location"), c->opid);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "name", c->opid, "status", status,
                             "startTime", start);
    if (body != NULL && end > 0) {
        berth__clock_format_iso8601(end, endt, sizeof endt);
        json_object_set_new(body, "endTime", json_string(endt));
    }
    if (body != NULL && message != NULL)
        json_object_set_new(body, "error", json_pack("{s:s, s:s}", "code", "ContainerGroupFailed",
                                                     "message", message));
    /* A running operation asks for the next poll in a second: without
     * Retry-After the Azure SDKs' pollers (the Azure CLI's) wait 30 s. */
    static const char *const retry[] = {"Retry-After", "1", NULL};
    if (body == NULL)
        out_of_memory(c->reply);
    else
        bd_reply_send(c->reply, 200, body, status[0] == 'I' ? retry : NULL);
    json_decref(c->o);
    json_decref(c->rec);
    free(c);
}

static void op_view(int status, const char *text, size_t len, const berth_error_t *err, void *data)
{
    (void)err;
    op_ctx_t *c = data;
    json_t *view = status == 0 && text != NULL
                       ? api_view_load(text, len, api_jstr(c->o, "key")) : NULL;
    op_answer(c, view);
    json_decref(view);
}

static void op_record(int status, json_t *rec, const char *sha1, void *data)
{
    (void)sha1;
    op_ctx_t *c = data;
    if (status != 0) {
        bd_reply_store_failing(c->reply);
        json_decref(c->o);
        free(c);
        return;
    }
    c->rec = json_incref(rec);
    berth_error_t err;
    if (rec == NULL || strcmp(api_jstr(rec, "state"), "Stopped") == 0 ||
        berth_store_async_view_read(c->api->async, api_jstr(c->o, "key"), op_view, c, &err) != 0)
        op_answer(c, NULL);
}

static void op_found(int status, const char *text, size_t len, void *data)
{
    op_ctx_t *c = data;
    if (status != 0) {
        bd_reply_store_failing(c->reply);
        free(c);
        return;
    }
    c->o = text != NULL ? json_loadb(text, len, 0, NULL) : NULL;
    if (!json_is_object(c->o) || strcasecmp(api_jstr(c->o, "subscription"), c->sub) != 0) {
        bd_reply_error(c->reply, 404, "OperationNotFound", "",
                       "no operation '%s' in this subscription", c->opid);
        json_decref(c->o);
        free(c);
        return;
    }
    if (bd_records_get(c->api->records, api_jstr(c->o, "key"), op_record, c) != 0) {
        out_of_memory(c->reply);
        json_decref(c->o);
        free(c);
    }
}

/* Contract: reads.h. */
void bd_reads_operation(bd_api_t *api, const char *sub, const char *opid, bd_reply_t *reply)
{
    op_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        out_of_memory(reply);
        return;
    }
    c->api = api;
    c->reply = reply;
    snprintf(c->sub, sizeof c->sub, "%s", sub);
    snprintf(c->opid, sizeof c->opid, "%s", opid);
    if (bd_records_read(api->records, "operations", opid, op_found, c) != 0) {
        free(c);
        out_of_memory(reply);
    }
}

/* ---- logs and exec ------------------------------------------------------------------------- */

/* LOGS AND EXEC wait for the host's agent as callbacks of the asynchronous
 * store, at most cfg->agent_timeout_ms each: the loop serves every other
 * request meanwhile, whatever the agent does. */
static void agent_call_failed(bd_reply_t *reply, int rc, const berth_error_t *err)
{
    bd_reply_berth_error(reply, rc == BERTH_ENOENT ? 404 : rc == BERTH_EIO ? 503 : 400, err);
}

static void logs_done(int status, const char *output, size_t len, int exit_code,
                      const berth_error_t *err, void *data)
{
    (void)exit_code;
    bd_reply_t *reply = data;
    if (status != 0) {
        agent_call_failed(reply, status, err);
        return;
    }
    json_t *body = json_pack("{s:s%}", "content", output ? output : "", output ? len : 0);
    if (body == NULL)               /* not UTF-8 */
        body = json_pack("{s:s}", "content", "");
    bd_reply_send(reply, 200, body, NULL);
}

static void exec_done(int status, const char *output, size_t len, int exit_code,
                      const berth_error_t *err, void *data)
{
    bd_reply_t *reply = data;
    if (status != 0) {
        agent_call_failed(reply, status, err);
        return;
    }
    json_t *body = json_pack("{s:s%, s:i}", "output", output ? output : "", output ? len : 0,
                             "exitCode", exit_code);
    if (body == NULL)
        body = json_pack("{s:s, s:i}", "output", "", "exitCode", exit_code);
    bd_reply_send(reply, 200, body, NULL);
}

/* A logs or exec request once its group is known to hold the container. */
typedef struct agent_ctx {
    bd_api_t *api;
    bd_reply_t *reply;
    bool exec;
    bool attach;                    /* exec's session streams the logs      */
    char key[BD_KEY_MAX + 1];
    char sub[BD_SUB_MAX + 1];
    char rg[BD_RG_MAX + 1];
    char name[64];
    char container[64];
    uint32_t tail;
    bool timestamps;
    char *command;                  /* exec's                               */
    bd_terminal_t term;             /* exec's                               */
    char base_url[256];
} agent_ctx_t;

static void agent_ctx_free(agent_ctx_t *a)
{
    free(a->command);
    free(a);
}

static void exec_session_set(int status, const char *text, size_t len, void *data);

static void agent_document(int status, const char *doc, uint64_t generation, const char *host,
                           const berth_error_t *err, void *data);

static void agent_record(int status, json_t *rec, const char *sha1, void *data)
{
    (void)sha1;
    agent_ctx_t *a = data;
    if (status != 0) {
        bd_reply_store_failing(a->reply);
        agent_ctx_free(a);
        return;
    }
    if (rec == NULL) {
        api_reply_not_found(a->reply, a->rg, a->name);
        agent_ctx_free(a);
        return;
    }
    if (strcmp(api_jstr(rec, "state"), "Stopped") == 0) {
        /* Nothing runs, so there is nothing to ask an agent. */
        bd_reply_error(a->reply, 409, "ContainerGroupStopped", "containerGroupName",
                       "The container group '%s' is stopped: its containers do not run, so "
                       "container '%s' %s. Start the container group first.",
                       a->name, a->container,
                       a->attach ? "cannot be attached to"
                       : a->exec ? "cannot execute a command" : "has no logs to show");
        agent_ctx_free(a);
        return;
    }
    berth_error_t err;
    if (berth_store_async_document_read(a->api->async, a->key, agent_document, a, &err) != 0) {
        out_of_memory(a->reply);
        agent_ctx_free(a);
    }
}

/* The group's document names its containers. */
static void agent_document(int status, const char *doc, uint64_t generation, const char *host,
                           const berth_error_t *err, void *data)
{
    (void)generation, (void)host, (void)err;
    agent_ctx_t *a = data;
    if (status != 0 && status != BERTH_ENOENT) {
        bd_reply_store_failing(a->reply);
        agent_ctx_free(a);
        return;
    }
    json_t *d = doc != NULL ? json_loads(doc, 0, NULL) : NULL;
    json_t *p = json_object_get(d, "properties");
    bool found = api_find_named(json_object_get(p, "containers"), a->container) != NULL ||
                 api_find_named(json_object_get(p, "initContainers"), a->container) != NULL;
    json_decref(d);
    if (!found) {
        bd_reply_error(a->reply, 404, "ContainerNotFound", "",
                       "the container group '%s' has no container '%s'", a->name, a->container);
        agent_ctx_free(a);
        return;
    }
    berth_error_t e;
    if (!a->exec) {
        int rc = berth_store_async_container_logs(a->api->async, a->key, a->container, a->tail,
                                                  a->timestamps, a->api->cfg->agent_timeout_ms,
                                                  logs_done, a->reply, &e);
        if (rc != 0)
            agent_call_failed(a->reply, rc, &e);
        agent_ctx_free(a);
        return;
    }
    /* An exec session: a single-use record of berthd's own, 60 seconds. */
    char id[BD_ID_HEX + 1], pw[BD_ID_HEX + 1], name[64];
    if (bd_random_id(id) != 0 || bd_random_id(pw) != 0) {
        bd_reply_error(a->reply, 500, "InternalServerError", "",
                       "berthd has no random bytes for an exec session (getrandom: %s)",
                       strerror(errno));
        agent_ctx_free(a);
        return;
    }
    json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:i, s:i}", "key",
                          a->key, "name", a->name, "rg", a->rg, "container", a->container,
                          "command", a->command != NULL ? a->command : "", "password", pw,
                          "subscription", a->sub, "attach", a->attach, "tty", a->term.tty,
                          "rows", (int)a->term.rows, "cols", (int)a->term.cols);
    char *text = s != NULL ? json_dumps(s, JSON_COMPACT) : NULL;
    json_decref(s);
    snprintf(name, sizeof name, "exec:%s", id);
    /* The answer is made now; it is sent once Redis holds the session. */
    /* The URI names berthd's configured public address, never the Host
     * header the request came with. */
    char uri[512];
    const char *base = a->api->cfg->public_url[0] != '\0' ? a->api->cfg->public_url
                                                            : a->base_url;
    if (strncmp(base, "https://", 8) == 0)
        snprintf(uri, sizeof uri, "wss://%s/berth/exec/%s", base + 8, id);
    else if (strncmp(base, "http://", 7) == 0)
        snprintf(uri, sizeof uri, "ws://%s/berth/exec/%s", base + 7, id);
    else
        snprintf(uri, sizeof uri, "%s/berth/exec/%s", base, id);
    free(a->command);
    a->command = NULL;
    if (text == NULL || asprintf(&a->command, "%s\n%s", uri, pw) < 0 ||
        bd_records_set(a->api->records, name, text, EXEC_TTL_S, exec_session_set, a) != 0) {
        free(text);
        out_of_memory(a->reply);
        agent_ctx_free(a);
        return;
    }
    free(text);
}

static void exec_session_set(int status, const char *text, size_t len, void *data)
{
    (void)text, (void)len;
    agent_ctx_t *a = data;
    char *nl = a->command != NULL ? strchr(a->command, '\n') : NULL;
    if (status != 0 || nl == NULL) {
        bd_reply_store_failing(a->reply);
    } else {
        *nl = '\0';
        bd_reply_send(a->reply, 200,
                      json_pack("{s:s, s:s}", "webSocketUri", a->command, "password", nl + 1),
                      NULL);
    }
    agent_ctx_free(a);
}

static agent_ctx_t *agent_ctx_new(bd_api_t *api, const op_t *op, const char *container,
                                  bd_reply_t *reply)
{
    agent_ctx_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->api = api;
    a->reply = reply;
    snprintf(a->key, sizeof a->key, "%s", op->key);
    snprintf(a->sub, sizeof a->sub, "%s", op->sub);
    snprintf(a->rg, sizeof a->rg, "%s", op->rg);
    snprintf(a->name, sizeof a->name, "%s", op->name);
    snprintf(a->container, sizeof a->container, "%s", container);
    return a;
}

/* Contract: reads.h. */
void bd_reads_logs(bd_api_t *api, const bd_request_t *req, const op_t *op, const char *container,
                   bd_reply_t *reply)
{
    char v[32];
    int q = bd_query_get(req->query, "tail", v, sizeof v);
    if (q < 0 || (q == 1 && (strspn(v, "0123456789") != strlen(v) || v[0] == '\0' ||
                             strlen(v) > 7))) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "tail",
                       "tail must be a number of lines from 0 to 9999999");
        return;
    }
    uint32_t tail = q == 1 ? (uint32_t)atol(v) : 0;
    q = bd_query_get(req->query, "timestamps", v, sizeof v);
    if (q < 0 || (q == 1 && strcasecmp(v, "true") != 0 && strcasecmp(v, "false") != 0)) {
        bd_reply_error(reply, 400, "InvalidQueryParameterValue", "timestamps",
                       "timestamps must be true or false");
        return;
    }
    agent_ctx_t *a = agent_ctx_new(api, op, container, reply);
    if (a == NULL) {
        out_of_memory(reply);
        return;
    }
    a->tail = tail;
    a->timestamps = q == 1 && strcasecmp(v, "true") == 0;
    if (bd_records_get(api->records, op->key, agent_record, a) != 0) {
        agent_ctx_free(a);
        out_of_memory(reply);
    }
}

/* Contract: reads.h. */
void bd_reads_exec(bd_api_t *api, const bd_request_t *req, const op_t *op, const char *container,
                   bd_reply_t *reply)
{
    char *command = NULL;
    bd_terminal_t term;
    const char *target;
    if (bd_exec_body_parse(req->body, req->body_len, &command, &term, &target) != 0) {
        if (strcmp(target, "terminalSize") == 0)
            bd_reply_error(reply, 400, "InvalidRequestContent", "terminalSize",
                           "terminalSize must be {\"rows\": R, \"cols\": C} with whole "
                           "numbers from 0 to 1000");
        else
            bd_reply_error(reply, 400, "InvalidRequestContent", "command",
                           "the body must be {\"command\": \"...\", \"terminalSize\": "
                           "{\"rows\": R, \"cols\": C}} with a command of 1 to 4096 bytes "
                           "and 1 to %d words, its quotes closed", BD_COMMAND_WORDS_MAX);
        return;
    }
    agent_ctx_t *a = agent_ctx_new(api, op, container, reply);
    if (a == NULL) {
        free(command);
        out_of_memory(reply);
        return;
    }
    a->exec = true;
    a->command = command;
    a->term = term;
    snprintf(a->base_url, sizeof a->base_url, "%s", req->base_url ? req->base_url : "");
    if (bd_records_get(api->records, op->key, agent_record, a) != 0) {
        agent_ctx_free(a);
        out_of_memory(reply);
    }
}

/* Contract: reads.h. */
void bd_reads_attach(bd_api_t *api, const bd_request_t *req, const op_t *op,
                     const char *container, bd_reply_t *reply)
{
    agent_ctx_t *a = agent_ctx_new(api, op, container, reply);
    if (a == NULL) {
        out_of_memory(reply);
        return;
    }
    a->exec = true;
    a->attach = true;
    snprintf(a->base_url, sizeof a->base_url, "%s", req->base_url ? req->base_url : "");
    if (bd_records_get(api->records, op->key, agent_record, a) != 0) {
        agent_ctx_free(a);
        out_of_memory(reply);
    }
}

/* An exec session's run: the password checked against the session as
 * read, then the session taken (single use), then the command. */
typedef struct session_ctx {
    bd_api_t *api;
    bd_reply_t *reply;
    char name[64];
    char fails[72];                 /* "execfail:<id>"                      */
    char password[BD_ID_HEX + 8];
    json_t *s;
    /* The caller's token: which subscriptions it may touch (the session
     * serves only a caller allowed the subscription that made it). */
    bool any_subscription;
    json_t *subscriptions;          /* array of strings                     */
    bool interactive;               /* the WebSocket's take: describe, not run */
} session_ctx_t;

static void session_free(session_ctx_t *c)
{
    explicit_bzero(c->password, sizeof c->password);
    json_decref(c->s);
    json_decref(c->subscriptions);
    free(c);
}

/* Whether the caller may use a session made for subscription `sub`. */
static bool session_allowed(const session_ctx_t *c, const char *sub)
{
    if (c->any_subscription)
        return true;
    size_t i;
    json_t *v;
    json_array_foreach(c->subscriptions, i, v)
    {
        const char *s = json_string_value(v);
        if (s != NULL && (strcmp(s, "*") == 0 || strcasecmp(s, sub) == 0))
            return true;
    }
    return false;
}

/* A wrong password's answer, once it is counted: the session closes at the
 * EXEC_PASSWORD_TRIES-th. */
static void session_closed(int status, const char *text, size_t len, void *data)
{
    (void)text, (void)len;
    session_ctx_t *c = data;
    if (status != 0)
        bd_reply_store_failing(c->reply);
    else
        bd_reply_error(c->reply, 403, "ExecPasswordMismatch", "password",
                       "the exec session's password does not match; after %d wrong passwords "
                       "the session is closed", EXEC_PASSWORD_TRIES);
    session_free(c);
}

static void session_failed(int status, const char *text, size_t len, void *data)
{
    session_ctx_t *c = data;
    if (status != 0 || text == NULL) {
        bd_reply_store_failing(c->reply);
        session_free(c);
        return;
    }
    char count[16];
    snprintf(count, sizeof count, "%.*s", (int)(len < sizeof count - 1 ? len : sizeof count - 1),
             text);
    if (atoi(count) >= EXEC_PASSWORD_TRIES) {
        if (bd_records_take(c->api->records, c->name, session_closed, c) != 0) {
            out_of_memory(c->reply);
            session_free(c);
        }
        return;
    }
    bd_reply_error(c->reply, 403, "ExecPasswordMismatch", "password",
                   "the exec session's password does not match");
    session_free(c);
}

static void session_taken(int status, const char *text, size_t len, void *data)
{
    session_ctx_t *c = data;
    json_t *t = status == 0 && text != NULL ? json_loadb(text, len, 0, NULL) : NULL;
    /* Ours only when what was taken is the session whose password matched. */
    bool mine = t != NULL && c->s != NULL &&
                strcmp(api_jstr(t, "password"), api_jstr(c->s, "password")) == 0;
    json_decref(t);
    if (status != 0) {
        bd_reply_store_failing(c->reply);
        session_free(c);
        return;
    }
    if (!mine) {
        bd_reply_error(c->reply, 404, "ExecSessionNotFound", "", "the exec session was used");
        session_free(c);
        return;
    }
    if (json_is_true(json_object_get(c->s, "attach"))) {
        /* An attach session: where its logs are read (the WebSocket polls
         * that route, server_ws.c). */
        char *logs = NULL;
        if (asprintf(&logs,
                     "/subscriptions/%s/resourceGroups/%s/providers/"
                     "Microsoft.ContainerInstance/containerGroups/%s/containers/%s/logs",
                     api_jstr(c->s, "subscription"), api_jstr(c->s, "rg"),
                     api_jstr(c->s, "name"), api_jstr(c->s, "container")) < 0)
            out_of_memory(c->reply);
        else
            bd_reply_send(c->reply, 200, json_pack("{s:s}", "logs", logs), NULL);
        free(logs);
        session_free(c);
        return;
    }
    if (c->interactive) {
        /* The WebSocket runs the session itself (server_ws.c). */
        json_t *d = json_pack("{s:s, s:s, s:s, s:b, s:O?, s:O?}", "key", api_jstr(c->s, "key"),
                              "container", api_jstr(c->s, "container"), "command",
                              api_jstr(c->s, "command"), "tty",
                              json_is_true(json_object_get(c->s, "tty")), "rows",
                              json_object_get(c->s, "rows"), "cols",
                              json_object_get(c->s, "cols"));
        if (d == NULL)
            out_of_memory(c->reply);
        else
            bd_reply_send(c->reply, 200, json_pack("{s:o}", "session", d), NULL);
        session_free(c);
        return;
    }
    char *words = strdup(api_jstr(c->s, "command"));
    const char *argv[BD_COMMAND_WORDS_MAX];
    int argc = words != NULL ? bd_command_split(words, argv, BD_COMMAND_WORDS_MAX) : -1;
    berth_error_t err;
    int rc = argc < 1 ? berth_error_set(&err, BERTH_EINVAL, "InvalidCommand", "command",
                                        "the command is empty or malformed")
                       : berth_store_async_container_exec(c->api->async, api_jstr(c->s, "key"),
                                                          api_jstr(c->s, "container"), argv,
                                                          (size_t)argc,
                                                          c->api->cfg->agent_timeout_ms,
                                                          exec_done, c->reply, &err);
    free(words);
    if (rc != 0)
        agent_call_failed(c->reply, rc, &err);
    session_free(c);
}

static void session_read(int status, const char *text, size_t len, void *data)
{
    session_ctx_t *c = data;
    if (status != 0) {
        bd_reply_store_failing(c->reply);
        session_free(c);
        return;
    }
    c->s = text != NULL ? json_loadb(text, len, 0, NULL) : NULL;
    if (!json_is_object(c->s)) {
        bd_reply_error(c->reply, 404, "ExecSessionNotFound", "",
                       "no such exec session (sessions serve once, for 60 seconds)");
        session_free(c);
        return;
    }
    if (!session_allowed(c, api_jstr(c->s, "subscription"))) {
        /* The same answer as a session that does not exist: a token of
         * another subscription learns nothing. */
        bd_reply_error(c->reply, 404, "ExecSessionNotFound", "",
                       "no such exec session (sessions serve once, for 60 seconds)");
        session_free(c);
        return;
    }
    if (!bd_secret_equal(api_jstr(c->s, "password"), c->password)) {
        if (bd_records_count(c->api->records, c->fails, EXEC_TTL_S, session_failed, c) != 0) {
            out_of_memory(c->reply);
            session_free(c);
        }
        return;
    }
    if (bd_records_take(c->api->records, c->name, session_taken, c) != 0) {
        out_of_memory(c->reply);
        session_free(c);
    }
}

/* Contract: reads.h. */
void bd_reads_exec_session(bd_api_t *api, const bd_request_t *req, const char *id,
                           bd_reply_t *reply)
{
    session_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        out_of_memory(reply);
        return;
    }
    c->api = api;
    c->reply = reply;
    snprintf(c->name, sizeof c->name, "exec:%s", id);
    snprintf(c->fails, sizeof c->fails, "execfail:%s", id);
    c->any_subscription = req->any_subscription;
    c->interactive = req->exec_interactive;
    c->subscriptions = json_array();
    for (size_t i = 0; c->subscriptions != NULL && i < req->nsubscriptions; i++)
        json_array_append_new(c->subscriptions, json_string(req->subscriptions[i]));
    if (c->subscriptions == NULL) {
        session_free(c);
        out_of_memory(reply);
        return;
    }
    json_t *b = json_loadb(req->body, req->body_len, 0, NULL);
    snprintf(c->password, sizeof c->password, "%s", api_jstr(b, "password"));
    json_decref(b);
    if (bd_records_read(api->records, c->name, NULL, session_read, c) != 0) {
        session_free(c);
        out_of_memory(reply);
    }
}
