/*
 * api_subnets.c: the operator's route to the cell's virtual network subnets,
 * /berth/subnets.  GET answers the table as the replica holds it once it
 * caught up with the cell's log; PUT replaces the table with the body's
 * ({"subnets": [{"id", "cidr", "hosts": [...]}]}), checked whole (400 naming
 * "subnets[I].member") and written in one atomic step
 * (berth_store_subnets_put()) on the worker's store; it answers the new
 * table.  Both need an operator's token (one allowing every subscription,
 * '*'): a tenant gets 403.
 *
 * It also chooses a group's private address in its subnet (bd_ipam_field());
 * the PUT's commit claims it (records.h, hash `ips`) and the DELETE's
 * releases it.
 *
 * It must never block the loop (the PUT's Redis call runs on the worker
 * thread) and never change the cell on a refused body.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"
#include "worker.h"

/* {"value": the engine's table}, or NULL when out of memory. */
static json_t *table_body(const berth_engine_t *engine)
{
    char *text = NULL;
    if (berth_engine_subnets_json(engine, &text) != 0)
        return NULL;
    json_t *value = json_loads(text, 0, NULL);
    berth_free(text);
    return value != NULL ? json_pack("{s:o}", "value", value) : NULL;
}

static void get_subnets(bd_api_t *api, const char *arg, bd_reply_t *reply)
{
    (void)arg;
    json_t *body = table_body(berth_store_async_engine(api->async));
    if (body == NULL)
        bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
    else
        bd_reply_send(reply, 200, body, NULL);
}

/* PUT /berth/subnets on the worker (a bd_route_fn): the body is read into
 * a scratch engine (every check, every path), then put into the cell. */
static void put_subnets(bd_worker_ctx_t *ctx, const bd_request_t *req, bd_reply_t *reply,
                        char **seg, int n)
{
    (void)seg, (void)n;
    if (ctx->store == NULL) {
        bd_reply_berth_error(reply, 500, &ctx->store_err);
        return;
    }
    berth_engine_t *scratch = NULL;
    berth_error_t err;
    if (berth_engine_new(NULL, &scratch, &err) != 0) {
        bd_reply_berth_error(reply, 503, &err);
        return;
    }
    int rc = berth_engine_subnets_load(scratch, req->body, strlen(req->body), &err);
    if (rc == 0) {
        berth_subnet_t v[BERTH_SUBNETS_MAX];
        size_t count = berth_engine_subnet_count(scratch);
        for (size_t i = 0; i < count; i++)
            berth_engine_subnet_at(scratch, i, &v[i]);
        rc = berth_store_subnets_put(ctx->store, v, count, &err);
    }
    if (rc == BERTH_EIO || rc == BERTH_ENOMEM) {
        bd_reply_berth_error(reply, rc == BERTH_EIO ? 500 : 503, &err);
    } else if (rc != 0) {
        bd_reply_berth_error(reply, 400, &err);
    } else {
        json_t *body = table_body(ctx->engine);
        if (body == NULL)
            bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
        else
            bd_reply_send(reply, 200, body, NULL);
    }
    berth_engine_free(scratch);
}

/* Contract: api-internal.h. */
void api_subnets_route(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, char **seg,
                       int n)
{
    bd_reply_route(reply, req->method == BD_PUT ? "Berth_SubnetsPut" : "Berth_Subnets");
    if (!req->any_subscription) {
        bd_reply_error(reply, 403, "AuthorizationFailed", "",
                       "The client does not have authorization to read or change subnets: "
                       "that needs a token allowing every subscription ('*').");
        return;
    }
    if (req->method == BD_GET)
        api_after_sync(api, get_subnets, NULL, reply);
    else if (req->method == BD_PUT)
        bd_worker_route(api->worker, put_subnets, req, reply, seg, n);
    else
        bd_reply_error(reply, 405, "MethodNotAllowed", "",
                       "the method is not allowed on this resource");
}

/* ---- private addresses ------------------------------------------------------------ */

/* The first 16 hex digits of the claim field of `id`'s subnet: FNV-1a of
 * the id in lower case, so that ids differing only in case share it. */
static uint64_t subnet_hash(const char *id)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = id; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        h = (h ^ (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c)) * 0x100000001b3ull;
    }
    return h;
}

/* Contract: api-internal.h. */
int bd_ipam_field(const berth_engine_t *engine, uint64_t subnet_mask, const char *key,
                  const char *held, unsigned probe, char *out, size_t cap)
{
    out[0] = '\0';
    if (subnet_mask == 0)
        return 0;
    unsigned i = (unsigned)__builtin_ctzll(subnet_mask);
    berth_subnet_t s;
    uint32_t network;
    unsigned prefix;
    if (berth_engine_subnet_at(engine, i, &s) != 0 ||
        berth_subnet_cidr_parse(s.cidr, &network, &prefix, NULL) != 0)
        return BERTH_EINVAL;
    char head[24];
    snprintf(head, sizeof head, "%016llx/", (unsigned long long)subnet_hash(s.id));
    /* A redeploy in the same subnet keeps its address. */
    if (strncmp(held, head, strlen(head)) == 0) {
        snprintf(out, cap, "%s", held);
        return 0;
    }
    /* .0 is the network, .1 the gateway on each host's bridge, the last the
     * broadcast address: the rest are the groups'. */
    uint32_t usable = (UINT32_C(1) << (32 - prefix)) - 3;
    uint64_t h = subnet_hash(key);
    uint32_t addr = network + 2 + (uint32_t)((h + probe) % usable);
    snprintf(out, cap, "%s%u.%u.%u.%u", head, addr >> 24, (addr >> 16) & 255u,
             (addr >> 8) & 255u, addr & 255u);
    return 0;
}

/* Contract: api-internal.h. */
int bd_ipam_document(const char *spec, const char *field, char **out)
{
    *out = NULL;
    const char *addr = strchr(field, '/');
    if (addr == NULL)
        return 0;
    json_t *doc = json_loads(spec, 0, NULL);
    if (doc == NULL)
        return BERTH_ENOMEM;            /* the text berthd made itself */
    json_t *ip = json_object_get(json_object_get(doc, "properties"), "ipAddress");
    int rc = 0;
    if (json_is_object(ip)) {
        if (json_object_set_new(ip, "ip", json_string(addr + 1)) != 0 ||
            (*out = json_dumps(doc, JSON_COMPACT)) == NULL)
            rc = BERTH_ENOMEM;
    }
    json_decref(doc);
    return rc;
}
