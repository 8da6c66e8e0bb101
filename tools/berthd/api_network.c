/*
 * api_network.c: berthd's answers about a container group's network: the
 * outbound dependencies of a group
 * (ContainerGroups_GetOutboundNetworkDependenciesEndpoints) and the
 * deletion of a subnet's service association link
 * (SubnetServiceAssociationLink_Delete).
 *
 * OUTBOUND DEPENDENCIES.  GET .../containerGroups/{name}/
 * outboundNetworkDependenciesEndpoints answers a JSON array of strings:
 * the registries the group's images and init containers' images come from
 * ("docker.io" for an image named without one) and the servers of its
 * imageRegistryCredentials, each once, sorted.  These are what a host must
 * reach to run the group.  ACI documents an empty list for container
 * groups (its own dependencies are Azure's); Berth's hosts pull the images
 * themselves, so it names what they need.  404 ResourceNotFound when the
 * group does not exist.
 *
 * SERVICE ASSOCIATION LINKS.  Berth's subnets are the cell's own table
 * (api_subnets.c): no Azure virtual network is involved and no link is ever
 * made.
 * DELETE .../virtualNetworks/{v}/subnets/{s}/providers/
 * Microsoft.ContainerInstance/serviceAssociationLinks/default therefore
 * answers what is true: 204 when no container group of the subscription
 * names that subnet in its subnetIds, else 409 SubnetInUse naming the
 * groups (by ARM id) that still do -- delete them first, as ACI asks.
 *
 * It must never block the loop (every read is a callback of records.c or
 * the asynchronous store) and never write anything.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api-internal.h"
#include "reads.h"

#define NAMES_SHOWN 10              /* groups a 409 names at most           */

static void out_of_memory(bd_reply_t *reply)
{
    bd_reply_error(reply, 503, "ServiceUnavailable", "", "out of memory");
}

/* ---- outbound dependencies ---------------------------------------------------------------- */

/* The registry of image reference `ref` into out[cap]: its first part
 * when that names a host (a '.' or ':' in it, or "localhost"), else
 * Docker Hub's; "index.docker.io" reads as "docker.io". */
static void image_registry(const char *ref, char *out, size_t cap)
{
    const char *slash = strchr(ref, '/');
    size_t n = slash != NULL ? (size_t)(slash - ref) : 0;
    bool host = n > 0 && (memchr(ref, '.', n) != NULL || memchr(ref, ':', n) != NULL ||
                          (n == 9 && strncmp(ref, "localhost", 9) == 0));
    if (!host || (n == 15 && strncasecmp(ref, "index.docker.io", 15) == 0))
        snprintf(out, cap, "docker.io");
    else
        snprintf(out, cap, "%.*s", (int)n, ref);
    for (char *p = out; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

/* Adds `s` to the sorted, duplicate-free array of strings `list`. */
static void add_sorted(json_t *list, const char *s)
{
    size_t i;
    for (i = 0; i < json_array_size(list); i++) {
        int c = strcmp(json_string_value(json_array_get(list, i)), s);
        if (c == 0)
            return;
        if (c > 0)
            break;
    }
    json_array_insert_new(list, i, json_string(s));
}

/* The endpoints document `doc` (an ARM document's text) depends on. */
static json_t *endpoints_of(const char *doc)
{
    json_t *list = json_array();
    json_t *d = doc != NULL ? json_loads(doc, 0, NULL) : NULL;
    json_t *p = json_object_get(d, "properties");
    static const char *const kinds[] = {"containers", "initContainers"};
    char reg[256];
    for (size_t k = 0; k < 2; k++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(p, kinds[k]), i, c)
        {
            const char *image = api_jstr(json_object_get(c, "properties"), "image");
            if (image[0] == '\0')
                continue;
            image_registry(image, reg, sizeof reg);
            add_sorted(list, reg);
        }
    }
    size_t i;
    json_t *cred;
    json_array_foreach(json_object_get(p, "imageRegistryCredentials"), i, cred)
    {
        const char *server = api_jstr(cred, "server");
        if (server[0] != '\0')
            add_sorted(list, server);
    }
    json_decref(d);
    return list;
}

typedef struct deps_ctx {
    bd_api_t *api;
    bd_reply_t *reply;
    char key[BD_KEY_MAX + 1];
    char rg[BD_RG_MAX + 1];
    char name[64];
} deps_ctx_t;

static void deps_document(int status, const char *doc, uint64_t generation, const char *host,
                          const berth_error_t *err, void *data)
{
    (void)generation, (void)host, (void)err;
    deps_ctx_t *c = data;
    if (status != 0 && status != BERTH_ENOENT)
        bd_reply_store_failing(c->reply);
    else
        bd_reply_send(c->reply, 200, endpoints_of(status == 0 ? doc : NULL), NULL);
    free(c);
}

static void deps_record(int status, json_t *rec, const char *sha1, void *data)
{
    (void)sha1;
    deps_ctx_t *c = data;
    berth_error_t err;
    if (status != 0) {
        bd_reply_store_failing(c->reply);
    } else if (rec == NULL) {
        api_reply_not_found(c->reply, c->rg, c->name);
    } else if (berth_store_async_document_read(c->api->async, c->key, deps_document, c, &err) !=
               0) {
        out_of_memory(c->reply);
    } else {
        return;
    }
    free(c);
}

/* Contract: api-internal.h. */
void api_get_outbound_endpoints(bd_api_t *api, const op_t *op, bd_reply_t *reply)
{
    deps_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        out_of_memory(reply);
        return;
    }
    c->api = api;
    c->reply = reply;
    snprintf(c->key, sizeof c->key, "%s", op->key);
    snprintf(c->rg, sizeof c->rg, "%s", op->rg);
    snprintf(c->name, sizeof c->name, "%s", op->name);
    if (bd_records_get(api->records, op->key, deps_record, c) != 0) {
        free(c);
        out_of_memory(reply);
    }
}

/* ---- service association links ---------------------------------------------------------- */

/* A scan of the subscription's groups, a page at a time, for those whose
 * subnetIds name the subnet. */
typedef struct link_ctx {
    bd_api_t *api;
    bd_reply_t *reply;
    char prefix[BD_SUB_MAX + 2];    /* "<sub>/"                             */
    char *subnet_id;                /* the subnet's ARM id                  */
    char after[BD_KEY_MAX + 1];     /* the page's last key                  */
    bool more;                      /* pages after this one                 */
    size_t waiting;                 /* documents of the page still out      */
    bool failed;
    json_t *users;                  /* ARM ids of the groups naming it      */
} link_ctx_t;

typedef struct link_item {
    link_ctx_t *l;
    char key[BD_KEY_MAX + 1];
    json_t *rec;
} link_item_t;

static void link_free(link_ctx_t *l)
{
    free(l->subnet_id);
    json_decref(l->users);
    free(l);
}

static void link_page(link_ctx_t *l);

/* The page's documents are all in: the next page, or the answer. */
static void link_page_done(link_ctx_t *l)
{
    if (l->failed) {
        bd_reply_store_failing(l->reply);
        link_free(l);
        return;
    }
    if (l->more) {
        link_page(l);
        return;
    }
    size_t n = json_array_size(l->users);
    if (n == 0) {
        bd_reply_send(l->reply, 204, NULL, NULL);
        link_free(l);
        return;
    }
    char names[NAMES_SHOWN * 300 + 64] = "";
    for (size_t i = 0; i < n && i < NAMES_SHOWN; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'",
                 i > 0 ? ", " : "", json_string_value(json_array_get(l->users, i)));
    if (n > NAMES_SHOWN)
        snprintf(names + strlen(names), sizeof names - strlen(names), " and %zu more",
                 n - NAMES_SHOWN);
    bd_reply_error(l->reply, 409, "SubnetInUse", "",
                   "The subnet '%s' is still used by %zu container group%s: %s. Delete them "
                   "before deleting the subnet's service association link.",
                   l->subnet_id, n, n == 1 ? "" : "s", names);
    link_free(l);
}

/* Whether document `doc` names subnet `id` in properties.subnetIds. */
static bool names_subnet(const char *doc, const char *id)
{
    json_t *d = doc != NULL ? json_loads(doc, 0, NULL) : NULL;
    bool found = false;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(json_object_get(d, "properties"), "subnetIds"), i, s)
    {
        if (strcasecmp(api_jstr(s, "id"), id) == 0)
            found = true;
    }
    json_decref(d);
    return found;
}

static void link_document(int status, const char *doc, uint64_t generation, const char *host,
                          const berth_error_t *err, void *data)
{
    (void)generation, (void)host, (void)err;
    link_item_t *it = data;
    link_ctx_t *l = it->l;
    if (status != 0 && status != BERTH_ENOENT)
        l->failed = true;
    else if (status == 0 && names_subnet(doc, l->subnet_id))
        json_array_append(l->users, json_object_get(it->rec, "id"));
    json_decref(it->rec);
    free(it);
    if (--l->waiting == 0)
        link_page_done(l);
}

static void link_records(int status, const char *const *keys, json_t *const *recs, size_t n,
                         bool more, void *data)
{
    link_ctx_t *l = data;
    if (status != 0) {
        l->failed = true;
        link_page_done(l);
        return;
    }
    l->more = more && n > 0;
    if (n > 0)
        snprintf(l->after, sizeof l->after, "%s", keys[n - 1]);
    l->waiting = 1;                 /* until every read below is queued */
    for (size_t i = 0; i < n; i++) {
        if (recs[i] == NULL)
            continue;               /* deleted between the index and the record */
        link_item_t *it = calloc(1, sizeof *it);
        berth_error_t err;
        if (it == NULL) {
            l->failed = true;
            break;
        }
        it->l = l;
        it->rec = json_incref(recs[i]);
        snprintf(it->key, sizeof it->key, "%s", keys[i]);
        l->waiting++;
        if (berth_store_async_document_read(l->api->async, it->key, link_document, it, &err) !=
            0) {
            l->waiting--;
            l->failed = true;
            json_decref(it->rec);
            free(it);
            break;
        }
    }
    if (--l->waiting == 0)
        link_page_done(l);
}

static void link_page(link_ctx_t *l)
{
    if (bd_records_list(l->api->records, l->prefix, l->after[0] != '\0' ? l->after : NULL,
                        BD_PAGE_MAX, link_records, l) != 0) {
        out_of_memory(l->reply);
        link_free(l);
    }
}

/* Contract: api-internal.h. */
void api_delete_subnet_link(bd_api_t *api, const char *sub, const char *rg, const char *vnet,
                            const char *subnet, bd_reply_t *reply)
{
    link_ctx_t *l = calloc(1, sizeof *l);
    if (l == NULL || (l->users = json_array()) == NULL ||
        asprintf(&l->subnet_id,
                 "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/"
                 "virtualNetworks/%s/subnets/%s",
                 sub, rg, vnet, subnet) < 0) {
        if (l != NULL) {
            l->subnet_id = NULL;
            link_free(l);
        }
        out_of_memory(reply);
        return;
    }
    l->api = api;
    l->reply = reply;
    bd_lower(sub, l->prefix, sizeof l->prefix - 1);
    strcat(l->prefix, "/");
    link_page(l);
}
