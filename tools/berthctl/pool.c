/*
 * pool.c: `berthctl pool create|show|list|delete`, standby pools
 * through berthd's standbyContainerGroupPools route
 * (docs/standby-pools.md).
 *
 * create PUTs a pool: the template read from --file (an ACI container-group
 * document, sent whole as the pool's containerGroupProfile; its location
 * is the pool's unless --location) and --size (maxReadyCapacity), then,
 * unless --no-wait, polls until as many members are ready as the pool
 * keeps, showing progress on stderr.  A create of an existing pool
 * replaces its template and size (the route's PUT is create-or-update).
 * show and list print a table or (--output json) the resources; delete
 * removes the pool and releases its members.  Exchanges go through
 * route.c (berthctl_common_request()); berthd never answers a
 * template's secrets and berthctl_print_json() redacts any left.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "berth.h"
#include "berthctl.h"

#define POOL_API_VERSION "2025-03-01"
#define POOL_RESOURCE_TYPE "Microsoft.StandbyPool/standbyContainerGroupPools"

/* Contract (berthctl.h). */
const char berthctl_pool_usage[] =
    "       berthctl pool create -g RG -n NAME --file TEMPLATE --size N [--location L]\n"
    "                      [--no-wait]\n"
    "       berthctl pool show -g RG -n NAME [--output json|table]\n"
    "       berthctl pool list -g RG [--output json|table]\n"
    "       berthctl pool delete -g RG -n NAME\n"
    "\n"
    "pool    standby pools through berthd (api-version " POOL_API_VERSION "): --size\n"
    "        groups of the template --file (an ACI container-group document) kept\n"
    "        placed and running, so that a create of the same document takes one\n"
    "        over at once.  create replaces an existing pool's template and size,\n"
    "        and waits until --size members are ready unless --no-wait.  delete\n"
    "        releases the members.  The options --endpoint, --token, --subscription,\n"
    "        --cacert, --insecure, --output and --timeout are those of container.\n";

typedef struct pool_opts {
    berthctl_common_t c;            /* the options every route command has  */
    long size;                      /* -1: not given                         */
} pool_opts_t;

enum { OPT_SIZE = BERTHCTL_OPT_OWN };

/* Reads pool's own option, --size (berthctl_option_cb): ctx is the
 * pool_opts_t. */
static int own_option(void *ctx, int id, const char *v)
{
    pool_opts_t *o = ctx;
    (void)id;
    if (!berthctl_parse_long(v, 0, BERTH_POOL_SIZE_MAX, &o->size))
        return berthctl_usage_error("--size needs an integer from 0 to %d, not '%s'",
                                    BERTH_POOL_SIZE_MAX, v);
    return 0;
}

/* Reads the options after the verb into *o.  Returns 0, -1 for --help, or
 * the usage exit status (the error printed). */
static int parse(int argc, char **argv, pool_opts_t *o)
{
    static const struct option own[] = {
        {"size", required_argument, NULL, OPT_SIZE},
        {NULL, 0, NULL, 0},
    };
    berthctl_common_t *c = &o->c;
    berthctl_common_init(c, "pool", argv[2], POOL_RESOURCE_TYPE, POOL_API_VERSION);
    o->size = -1;
    int rc = berthctl_common_parse(c, argc, argv, own, own_option, o);
    if (rc != 0)
        return rc;
    rc = berthctl_common_finish(c);
    if (rc != 0)
        return rc;
    if (strcmp(c->verb, "create") == 0 && c->file == NULL)
        return berthctl_usage_error("%s", "pool create needs --file TEMPLATE");
    if (strcmp(c->verb, "create") == 0 && o->size < 0)
        return berthctl_usage_error("%s", "pool create needs --size N");
    return 0;
}

/* The integer at v.properties.a.b, or 0. */
static long long prop_int(json_t *v, const char *a, const char *b)
{
    return (long long)json_integer_value(
        json_object_get(json_object_get(json_object_get(v, "properties"), a), b));
}

static const char *prop_str(json_t *v, const char *a)
{
    const char *s = json_string_value(json_object_get(json_object_get(v, "properties"), a));
    return s ? s : "";
}

static void table_head(void)
{
    printf("%-32s %-10s %6s %8s %6s\n", "NAME", "STATE", "SIZE", "MEMBERS", "READY");
}

static void table_row(json_t *p)
{
    const char *name = json_string_value(json_object_get(p, "name"));
    printf("%-32s %-10s %6lld %8lld %6lld\n", name ? name : "", prop_str(p, "provisioningState"),
           prop_int(p, "elasticityProfile", "maxReadyCapacity"), prop_int(p, "status", "members"),
           prop_int(p, "status", "readyCapacity"));
}

/* The table of one pool (berthctl_table_cb). */
static void table_one(json_t *p)
{
    table_head();
    table_row(p);
}

/* The table of a list of pools (berthctl_table_cb). */
static void table_list(json_t *l)
{
    table_head();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(l, "value"), i, p)
        table_row(p);
}

/* Prints one pool (doc is changed: secrets redacted for JSON). */
static int output(const pool_opts_t *o, json_t *p)
{
    return berthctl_common_print(&o->c, p, table_one);
}

/* Progress of a create (berthctl_wait_progress_cb): done when the pool
 * has as many ready members as it keeps. */
static bool ready_progress(const berthctl_common_t *c, json_t *p, char *line, size_t cap)
{
    long long size = prop_int(p, "elasticityProfile", "maxReadyCapacity");
    long long ready = prop_int(p, "status", "readyCapacity");
    snprintf(line, cap, "%s: %lld of %lld ready", c->name, ready, size);
    return ready >= size;
}

static void ready_timed_out(const berthctl_common_t *c, json_t *p)
{
    fprintf(stderr, "berthctl: pool %s: %lld of %lld members ready after --timeout %g s\n",
            c->name, prop_int(p, "status", "readyCapacity"),
            prop_int(p, "elasticityProfile", "maxReadyCapacity"), c->timeout_s);
}

/* Polls until the pool has as many ready members as it keeps (or the
 * timeout), printing the counts on stderr when they change; then prints
 * the pool. */
static int wait_ready(const pool_opts_t *o, json_t *first)
{
    json_t *p = NULL;
    int rc = berthctl_common_wait(&o->c, first, "pool show", ready_progress, ready_timed_out, &p);
    if (rc == BERTHCTL_EXIT_OK)
        rc = output(o, p);
    json_decref(p);
    return rc;
}

static int cmd_create(const pool_opts_t *o)
{
    json_t *doc = NULL;
    const char *location = NULL;
    int rc = berthctl_common_load_template(&o->c, &doc, &location);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    json_t *body = json_pack("{s:s, s:{s:{s:I}, s:{s:O}}}", "location", location, "properties",
                             "elasticityProfile", "maxReadyCapacity", (json_int_t)o->size,
                             "containerGroupProperties", "containerGroupProfile", doc);
    json_decref(doc);
    if (body == NULL)
        return berthctl_out_of_memory();
    json_t *p = NULL;
    long status = 0;
    rc = berthctl_common_request(&o->c, "PUT", o->c.name, body, "pool create", &status, &p);
    json_decref(body);
    if (rc != 0)
        return rc;
    fprintf(stderr, "%s: %s\n", o->c.name, status == 201 ? "created" : "updated");
    rc = o->c.no_wait ? output(o, p) : wait_ready(o, p);
    json_decref(p);
    return rc;
}

/* The verb (berthctl_common_run_cb): ctx is the pool_opts_t. */
static int run(void *ctx)
{
    const pool_opts_t *o = ctx;
    const berthctl_common_t *c = &o->c;
    if (strcmp(c->verb, "create") == 0)
        return cmd_create(o);
    if (strcmp(c->verb, "list") == 0)
        return berthctl_common_show(c, NULL, "pool list", table_list);
    if (strcmp(c->verb, "show") == 0)
        return berthctl_common_show(c, c->name, "pool show", table_one);
    json_t *p = NULL;
    long status = 0;
    int rc = berthctl_common_request(c, "DELETE", c->name, NULL, "pool delete", &status, &p);
    if (rc == 0)
        printf("%s: %s\n", c->name, status == 204 ? "no such pool" : "deleted");
    json_decref(p);
    return rc;
}

/* Contract (berthctl.h). */
int berthctl_pool_main(int argc, char **argv)
{
    static const char *const verbs[] = {"create", "show", "list", "delete"};
    int rc;
    if (!berthctl_common_verb(argc, argv, "pool", verbs, sizeof verbs / sizeof verbs[0],
                              berthctl_pool_usage, &rc))
        return rc;
    pool_opts_t o;
    rc = parse(argc, argv, &o);
    if (rc < 0) {
        fputs(berthctl_pool_usage, stdout);
        return BERTHCTL_EXIT_OK;
    }
    return rc != 0 ? rc : berthctl_common_run(run, &o);
}
