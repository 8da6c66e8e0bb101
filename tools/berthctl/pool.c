/*
 * pool.c: `berthctl pool create|show|list|delete`, standby pools
 * through berthd's Microsoft.StandbyPool/standbyContainerGroupPools
 * route (docs/standby-pools.md).
 *
 * create PUTs a pool whose containerGroupProperties.containerGroupProfile
 * references the container group profile --profile (its name in the
 * resource group, or an ARM id; default: the pool's name) at --revision
 * (default: the latest), with --size as maxReadyCapacity; given --file (an
 * ACI container-group document), it first PUTs that profile from the file
 * (berthd keeps a new revision when the document changed).  Unless
 * --no-wait it then polls the pool's runtime view until as many members
 * are Running as the pool keeps, showing progress on stderr.  A create of
 * an existing pool replaces its profile reference and size (the route's
 * PUT is create-or-update).  show and list print a table (members and
 * ready members from each pool's runtime view) or (--output json) the
 * resources; delete removes the pool and releases its members.
 * Exchanges go through route.c (berthctl_common_request()); berthd never
 * answers a profile's secrets and berthctl_print_json() redacts any left.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "berth.h"
#include "berthctl.h"

#define POOL_API_VERSION "2026-04-01"
#define POOL_RESOURCE_TYPE "Microsoft.StandbyPool/standbyContainerGroupPools"
#define PROFILE_API_VERSION "2025-09-01"
#define PROFILE_RESOURCE_TYPE "Microsoft.ContainerInstance/containerGroupProfiles"

/* Contract (berthctl.h). */
const char berthctl_pool_usage[] =
    "       berthctl pool create -g RG -n NAME --size N [--profile P] [--revision R]\n"
    "                      [--file TEMPLATE] [--location L] [--no-wait]\n"
    "       berthctl pool show -g RG -n NAME [--output json|table]\n"
    "       berthctl pool list -g RG [--output json|table]\n"
    "       berthctl pool delete -g RG -n NAME\n"
    "\n"
    "pool    standby pools through berthd (api-version " POOL_API_VERSION "): --size\n"
    "        groups of the container group profile --profile (a name in the resource\n"
    "        group or an ARM id; default: the pool's name) at --revision (default:\n"
    "        the latest) kept placed and running, so that a create naming the pool\n"
    "        in properties.standbyPoolProfile takes one over at once.  --file\n"
    "        TEMPLATE (an ACI container-group document) first creates or updates\n"
    "        that profile.  create replaces an existing pool's profile and size,\n"
    "        and waits until --size members are ready unless --no-wait.  delete\n"
    "        releases the members.  The options --endpoint, --token, --subscription,\n"
    "        --cacert, --insecure, --output and --timeout are those of container.\n";

typedef struct pool_opts {
    berthctl_common_t c;            /* the options every route command has  */
    long size;                      /* -1: not given                         */
    const char *profile;            /* NULL: the pool's name                 */
    long revision;                  /* 0: the latest                         */
} pool_opts_t;

enum { OPT_SIZE = BERTHCTL_OPT_OWN, OPT_PROFILE, OPT_REVISION };

/* Reads pool's own option, --size (berthctl_option_cb): ctx is the
 * pool_opts_t. */
static int own_option(void *ctx, int id, const char *v)
{
    pool_opts_t *o = ctx;
    if (id == OPT_PROFILE) {
        o->profile = v;
        return 0;
    }
    if (id == OPT_REVISION) {
        if (!berthctl_parse_long(v, 1, INT32_MAX, &o->revision))
            return berthctl_usage_error("--revision needs a positive integer, not '%s'", v);
        return 0;
    }
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
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"revision", required_argument, NULL, OPT_REVISION},
        {NULL, 0, NULL, 0},
    };
    berthctl_common_t *c = &o->c;
    berthctl_common_init(c, "pool", argv[2], POOL_RESOURCE_TYPE, POOL_API_VERSION);
    o->size = -1;
    o->profile = NULL;
    o->revision = 0;
    int rc = berthctl_common_parse(c, argc, argv, own, own_option, o);
    if (rc != 0)
        return rc;
    rc = berthctl_common_finish(c);
    if (rc != 0)
        return rc;
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

/* The command being run, for the table callbacks, which get the
 * resource alone and read each pool's runtime view through it. */
static const berthctl_common_t *current;

/* The count of members in `state` in pool `name`'s runtime view "latest",
 * or -1 when it cannot be read. */
static long long view_count(const char *name, const char *state)
{
    if (current == NULL || name == NULL)
        return -1;
    char type[512];
    snprintf(type, sizeof type, POOL_RESOURCE_TYPE "/%s/runtimeViews", name);
    berthctl_common_t c = *current;
    c.resource_type = type;
    json_t *v = NULL;
    long long n = -1;
    if (berthctl_common_request(&c, "GET", "latest", NULL, "pool runtime view", NULL, &v) == 0) {
        json_t *sum = json_object_get(json_object_get(v, "properties"), "instanceCountSummary");
        size_t i, k;
        json_t *z, *s;
        json_array_foreach(sum, i, z)
            json_array_foreach(json_object_get(z, "instanceCountsByState"), k, s)
                if (json_is_string(json_object_get(s, "state")) &&
                    strcmp(json_string_value(json_object_get(s, "state")), state) == 0)
                    n = (n < 0 ? 0 : n) + json_integer_value(json_object_get(s, "count"));
    }
    json_decref(v);
    return n;
}

static void table_head(void)
{
    printf("%-32s %-10s %6s %8s %6s\n", "NAME", "STATE", "SIZE", "MEMBERS", "READY");
}

static void table_row(json_t *p)
{
    const char *name = json_string_value(json_object_get(p, "name"));
    long long ready = view_count(name, "Running"), creating = view_count(name, "Creating");
    printf("%-32s %-10s %6lld %8lld %6lld\n", name ? name : "", prop_str(p, "provisioningState"),
           prop_int(p, "elasticityProfile", "maxReadyCapacity"),
           ready < 0 ? -1 : ready + (creating > 0 ? creating : 0), ready);
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
    long long ready = view_count(c->name, "Running");
    snprintf(line, cap, "%s: %lld of %lld ready", c->name, ready < 0 ? 0 : ready, size);
    return ready >= size;
}

static void ready_timed_out(const berthctl_common_t *c, json_t *p)
{
    fprintf(stderr, "berthctl: pool %s: %lld of %lld members ready after --timeout %g s\n",
            c->name, view_count(c->name, "Running"),
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

/* PUTs the container group profile `name` from --file. */
static int profile_put(const pool_opts_t *o, const char *name)
{
    json_t *doc = NULL;
    const char *location = NULL;
    int rc = berthctl_common_load_template(&o->c, &doc, &location);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    json_t *body = json_pack("{s:s, s:O}", "location", location, "properties",
                             json_object_get(doc, "properties"));
    json_decref(doc);
    if (body == NULL)
        return berthctl_out_of_memory();
    berthctl_common_t c = o->c;
    c.resource_type = PROFILE_RESOURCE_TYPE;
    c.api_version = PROFILE_API_VERSION;
    json_t *p = NULL;
    rc = berthctl_common_request(&c, "PUT", name, body, "profile create", NULL, &p);
    json_decref(body);
    json_decref(p);
    return rc;
}

static int cmd_create(const pool_opts_t *o)
{
    const char *profile = o->profile != NULL ? o->profile : o->c.name;
    int rc;
    if (o->c.file != NULL && strchr(profile, '/') != NULL)
        return berthctl_usage_error("%s", "--file needs --profile to be a name, not an ARM id");
    if (o->c.file != NULL && (rc = profile_put(o, profile)) != 0)
        return rc;
    char id[1024];
    if (strchr(profile, '/') != NULL)
        snprintf(id, sizeof id, "%s", profile);
    else
        snprintf(id, sizeof id,
                 "/subscriptions/%s/resourceGroups/%s/providers/" PROFILE_RESOURCE_TYPE "/%s",
                 o->c.subscription, o->c.rg, profile);
    json_t *ref = json_pack("{s:s}", "id", id);
    if (ref != NULL && o->revision > 0)
        json_object_set_new(ref, "revision", json_integer(o->revision));
    const char *location = o->c.location ? o->c.location : BERTHCTL_DEFAULT_LOCATION;
    json_t *body = ref == NULL ? NULL
                               : json_pack("{s:s, s:{s:{s:I, s:s}, s:{s:o}}}", "location",
                                           location, "properties", "elasticityProfile",
                                           "maxReadyCapacity", (json_int_t)o->size,
                                           "refillPolicy", "always",
                                           "containerGroupProperties",
                                           "containerGroupProfile", ref);
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
    current = c;
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
