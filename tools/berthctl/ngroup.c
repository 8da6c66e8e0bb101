/*
 * ngroup.c: `berthctl ngroup create|show|list|scale|update|delete`,
 * NGroups through berthd's ngroups route (docs/ngroups.md).
 *
 * create PUTs the container-group template read from --file (an ACI
 * container-group document; its location the NGroup's unless --location)
 * as the container group profile of the NGroup's name in the same
 * resource group, then PUTs the NGroup naming that profile (its latest
 * revision), with --count, --zones and a Rolling update of
 * --max-batch-percent (default 20) in place.  update PUTs the profile
 * again (a new revision when the template changed) and the NGroup (the
 * count, batch percent, zones and tags kept unless given), which rolls the
 * revision out; scale PATCHes desiredCount; so neither needs the
 * template's secrets back from berthd (which never answers them).  create, scale and update wait, unless --no-wait, until
 * the NGroup is Succeeded (its members all Running at its revision),
 * showing progress on stderr.  Exchanges go through route.c
 * (berthctl_common_request()); secrets are never printed.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "berth.h"
#include "berthctl.h"

#define NG_API_VERSION "2025-09-01"
#define NG_RESOURCE_TYPE "Microsoft.ContainerInstance/ngroups"
#define NG_PROFILE_TYPE "Microsoft.ContainerInstance/containerGroupProfiles"
#define NG_BATCH_PERCENT_DEFAULT 20

/* Contract (berthctl.h). */
const char berthctl_ngroup_usage[] =
    "       berthctl ngroup create -g RG -n NAME --file TEMPLATE --count N [--zones Z,Z,...]\n"
    "                      [--max-batch-percent P] [--location L] [--no-wait]\n"
    "       berthctl ngroup show -g RG -n NAME [--output json|table]\n"
    "       berthctl ngroup list -g RG [--output json|table]\n"
    "       berthctl ngroup scale -g RG -n NAME --count N [--no-wait]\n"
    "       berthctl ngroup update -g RG -n NAME --file TEMPLATE [--count N]\n"
    "                      [--max-batch-percent P] [--no-wait]\n"
    "       berthctl ngroup delete -g RG -n NAME\n"
    "\n"
    "ngroup  NGroups through berthd (api-version " NG_API_VERSION "): a container-group\n"
    "        template (--file: an ACI container-group document, kept as the container\n"
    "        group profile NAME) kept at --count members, spread across --zones,\n"
    "        template changes rolled out in batches of at most --max-batch-percent\n"
    "        (default 20) of the members.  create, scale and update wait for\n"
    "        Succeeded unless --no-wait.  The options --endpoint,\n"
    "        --token, --subscription, --cacert, --insecure, --output and --timeout\n"
    "        are those of container.\n";

typedef struct ng_opts {
    berthctl_common_t c;            /* the options every route command has  */
    const char *zones;
    long count, max_batch_percent;  /* -1: not given                         */
} ng_opts_t;

enum { OPT_ZONES = BERTHCTL_OPT_OWN, OPT_COUNT, OPT_MAX_BATCH_PERCENT };

/* Reads one of ngroup's own options (berthctl_option_cb): ctx is the
 * ng_opts_t. */
static int own_option(void *ctx, int id, const char *v)
{
    ng_opts_t *o = ctx;
    if (id == OPT_ZONES) {
        o->zones = v;
    } else if (id == OPT_COUNT) {
        if (!berthctl_parse_long(v, 0, BERTH_NGROUP_MEMBERS_MAX, &o->count))
            return berthctl_usage_error("--count needs an integer from 0 to %d, not '%s'",
                                        BERTH_NGROUP_MEMBERS_MAX, v);
    } else if (!berthctl_parse_long(v, 1, 100, &o->max_batch_percent)) {
        return berthctl_usage_error("--max-batch-percent needs an integer from 1 to 100, "
                                    "not '%s'",
                                    v);
    }
    return 0;
}

/* Reads the options after the verb into *o.  Returns 0, -1 for --help, or
 * the usage exit status (the error printed). */
static int parse(int argc, char **argv, ng_opts_t *o)
{
    static const struct option own[] = {
        {"zones", required_argument, NULL, OPT_ZONES},
        {"count", required_argument, NULL, OPT_COUNT},
        {"max-batch-percent", required_argument, NULL, OPT_MAX_BATCH_PERCENT},
        {NULL, 0, NULL, 0},
    };
    berthctl_common_t *c = &o->c;
    berthctl_common_init(c, "ngroup", argv[2], NG_RESOURCE_TYPE, NG_API_VERSION);
    o->zones = NULL;
    o->count = o->max_batch_percent = -1;
    int rc = berthctl_common_parse(c, argc, argv, own, own_option, o);
    if (rc != 0)
        return rc;
    rc = berthctl_common_finish(c);
    if (rc != 0)
        return rc;
    bool needs_file = strcmp(c->verb, "create") == 0 || strcmp(c->verb, "update") == 0;
    if (needs_file && c->file == NULL)
        return berthctl_usage_error("ngroup %s needs --file TEMPLATE", c->verb);
    if ((strcmp(c->verb, "create") == 0 || strcmp(c->verb, "scale") == 0) && o->count < 0)
        return berthctl_usage_error("ngroup %s needs --count N", c->verb);
    return 0;
}

static const char *jstr(json_t *v, const char *a, const char *b)
{
    json_t *x = json_object_get(v, a);
    if (b != NULL)
        x = json_object_get(x, b);
    const char *s = json_string_value(x);
    return s ? s : "";
}

/* The integer at v.a[.b[.c]] (b and c may be NULL), or 0. */
static json_int_t jint(json_t *v, const char *a, const char *b, const char *c)
{
    json_t *x = json_object_get(v, a);
    if (b != NULL)
        x = json_object_get(x, b);
    if (c != NULL)
        x = json_object_get(x, c);
    return json_integer_value(x);
}

/* The table of one NGroup: a summary line and its members
 * (berthctl_table_cb). */
static void print_table(json_t *g)
{
    json_t *p = json_object_get(g, "properties");
    json_t *st = json_object_get(p, "status");
    printf("%-24s %-10s %8s %8s %8s %8s %8s\n", "NAME", "STATE", "REVISION", "DESIRED", "CURRENT",
           "RUNNING", "UPDATED");
    printf("%-24s %-10s %8lld %8lld %8lld %8lld %8lld\n", jstr(g, "name", NULL),
           jstr(p, "provisioningState", NULL), (long long)jint(p, "status", "revision", NULL),
           (long long)jint(p, "elasticProfile", "desiredCount", NULL),
           (long long)json_integer_value(json_object_get(st, "currentCount")),
           (long long)json_integer_value(json_object_get(st, "runningCount")),
           (long long)json_integer_value(json_object_get(st, "updatedCount")));
    const char *msg = jstr(st, "message", NULL);
    if (*msg != '\0')
        printf("note: %s\n", msg);
    json_t *members = json_object_get(st, "members");
    if (json_array_size(members) == 0)
        return;
    printf("\n%-28s %-8s %-24s %8s %s\n", "MEMBER", "ZONE", "HOST", "REVISION", "STATE");
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
        printf("%-28s %-8s %-24s %8lld %s\n", jstr(m, "name", NULL), jstr(m, "zone", NULL),
               jstr(m, "host", NULL), (long long)json_integer_value(json_object_get(m, "revision")),
               jstr(m, "state", NULL));
}

/* The table of a list of NGroups (berthctl_table_cb). */
static void print_list_table(json_t *l)
{
    printf("%-24s %-10s %8s %8s %8s\n", "NAME", "STATE", "REVISION", "DESIRED", "RUNNING");
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(l, "value"), i, g)
    {
        json_t *p = json_object_get(g, "properties");
        printf("%-24s %-10s %8lld %8lld %8lld\n", jstr(g, "name", NULL),
               jstr(p, "provisioningState", NULL),
               (long long)jint(p, "status", "revision", NULL),
               (long long)jint(p, "elasticProfile", "desiredCount", NULL),
               (long long)jint(p, "status", "runningCount", NULL));
    }
}

static int output(const ng_opts_t *o, json_t *g)
{
    return berthctl_common_print(&o->c, g, print_table);
}

/* Progress of a change (berthctl_wait_progress_cb): done at Succeeded. */
static bool steady_progress(const berthctl_common_t *c, json_t *g, char *line, size_t cap)
{
    (void)c;
    json_t *p = json_object_get(g, "properties");
    json_t *st = json_object_get(p, "status");
    snprintf(line, cap, "%s: %s, %lld of %lld running at revision %lld", jstr(g, "name", NULL),
             jstr(p, "provisioningState", NULL),
             (long long)json_integer_value(json_object_get(st, "runningCount")),
             (long long)jint(p, "elasticProfile", "desiredCount", NULL),
             (long long)json_integer_value(json_object_get(st, "revision")));
    return strcmp(jstr(p, "provisioningState", NULL), "Succeeded") == 0;
}

static void steady_timed_out(const berthctl_common_t *c, json_t *g)
{
    json_t *st = json_object_get(json_object_get(g, "properties"), "status");
    fprintf(stderr, "berthctl: ngroup %s: not Succeeded within --timeout %g s\n", c->name,
            c->timeout_s);
    if (*jstr(st, "message", NULL) != '\0')
        fprintf(stderr, "  note: %s\n", jstr(st, "message", NULL));
}

/* Polls until Succeeded (or the timeout), printing the counts on stderr
 * when they change; then prints the NGroup. */
static int wait_steady(const ng_opts_t *o, json_t *first)
{
    json_t *g = NULL;
    int rc = berthctl_common_wait(&o->c, first, "ngroup show", steady_progress, steady_timed_out,
                                  &g);
    if (rc == BERTHCTL_EXIT_OK)
        rc = output(o, g);
    json_decref(g);
    return rc;
}

/* Sends a change of the NGroup (METHOD with `body`, which it takes and
 * frees), then, unless --no-wait, waits for Succeeded; prints the NGroup.
 * Returns the exit status. */
static int send_change(const ng_opts_t *o, const char *method, json_t *body, const char *what)
{
    json_t *g = NULL;
    int rc = berthctl_common_request(&o->c, method, o->c.name, body, what, NULL, &g);
    json_decref(body);
    if (rc != 0)
        return rc;
    rc = o->c.no_wait ? output(o, g) : wait_steady(o, g);
    json_decref(g);
    return rc;
}

/* create and update: a PUT of the whole NGroup. */
static int cmd_put(const ng_opts_t *o, bool create)
{
    json_t *doc = NULL;
    const char *location = NULL;
    int rc = berthctl_common_load_template(&o->c, &doc, &location);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    long count = o->count, pct = o->max_batch_percent;
    json_t *zones = NULL;
    json_t *cur = NULL;             /* `location` may point into it        */
    if (!create) {
        /* The count, bound, zones and tags of the NGroup as it is. */
        rc = berthctl_common_request(&o->c, "GET", o->c.name, NULL, "ngroup show", NULL, &cur);
        if (rc != 0) {
            json_decref(doc);
            return rc;
        }
        json_t *p = json_object_get(cur, "properties");
        if (count < 0)
            count = (long)jint(p, "elasticProfile", "desiredCount", NULL);
        if (pct < 0)
            pct = (long)jint(p, "updateProfile", "rollingUpdateProfile", "maxBatchPercent");
        zones = json_incref(json_object_get(cur, "zones"));
        if (o->c.location == NULL && json_string_value(json_object_get(cur, "location")))
            location = json_string_value(json_object_get(cur, "location"));
        json_object_del(doc, "tags");
        if (json_is_object(json_object_get(cur, "tags")))
            json_object_set(doc, "tags", json_object_get(cur, "tags"));
    } else if (o->zones != NULL) {
        zones = json_array();
        char *copy = strdup(o->zones);
        for (char *save = NULL, *z = copy ? strtok_r(copy, ",", &save) : NULL; z != NULL;
             z = strtok_r(NULL, ",", &save))
            json_array_append_new(zones, json_string(z));
        free(copy);
    }
    /* The template as the profile NAME: a new revision when it changed. */
    berthctl_common_t pc = o->c;
    pc.resource_type = NG_PROFILE_TYPE;
    /* `location` may point into doc or cur: copied before doc changes. */
    char *loc = strdup(location ? location : "");
    if (loc == NULL) {
        json_decref(zones);
        json_decref(doc);
        json_decref(cur);
        return berthctl_out_of_memory();
    }
    json_object_set_new(doc, "location", json_string(loc));
    json_t *profile = NULL;
    rc = berthctl_common_request(&pc, "PUT", o->c.name, doc, "ngroup profile", NULL, &profile);
    json_decref(profile);
    if (rc != 0) {
        free(loc);
        json_decref(zones);
        json_decref(doc);
        json_decref(cur);
        return rc;
    }
    char id[1024];
    snprintf(id, sizeof id,
             "/subscriptions/%s/resourceGroups/%s/providers/" NG_PROFILE_TYPE "/%s",
             o->c.subscription, o->c.rg, o->c.name);
    json_t *body = json_pack(
        "{s:s, s:{s:{s:I}, s:{s:s, s:{s:I, s:b}}, s:[{s:{s:s}}]}}", "location", loc,
        "properties", "elasticProfile", "desiredCount",
        (json_int_t)count, "updateProfile", "updateMode", "Rolling", "rollingUpdateProfile",
        "maxBatchPercent", (json_int_t)(pct < 1 ? NG_BATCH_PERCENT_DEFAULT : pct),
        "inPlaceUpdate", 1, "containerGroupProfiles", "resource", "id", id);
    if (body != NULL && zones != NULL && json_array_size(zones) > 0)
        json_object_set(body, "zones", zones);
    json_t *tags = json_object_get(doc, "tags");
    if (body != NULL && json_is_object(tags))
        json_object_set(body, "tags", tags);
    json_decref(zones);
    json_decref(doc);
    json_decref(cur);
    free(loc);
    if (body == NULL)
        return berthctl_out_of_memory();
    return send_change(o, "PUT", body, create ? "ngroup create" : "ngroup update");
}

static int cmd_scale(const ng_opts_t *o)
{
    json_t *body = json_pack("{s:{s:{s:I}}}", "properties", "elasticProfile", "desiredCount",
                             (json_int_t)o->count);
    if (body == NULL)
        return berthctl_out_of_memory();
    if (o->max_batch_percent > 0)
        json_object_set_new(json_object_get(body, "properties"), "updateProfile",
                            json_pack("{s:{s:I}}", "rollingUpdateProfile", "maxBatchPercent",
                                      (json_int_t)o->max_batch_percent));
    return send_change(o, "PATCH", body, "ngroup scale");
}

/* The verb (berthctl_common_run_cb): ctx is the ng_opts_t. */
static int run(void *ctx)
{
    const ng_opts_t *o = ctx;
    const berthctl_common_t *c = &o->c;
    if (strcmp(c->verb, "create") == 0)
        return cmd_put(o, true);
    if (strcmp(c->verb, "update") == 0)
        return cmd_put(o, false);
    if (strcmp(c->verb, "scale") == 0)
        return cmd_scale(o);
    if (strcmp(c->verb, "list") == 0)
        return berthctl_common_show(c, NULL, "ngroup list", print_list_table);
    if (strcmp(c->verb, "show") == 0)
        return berthctl_common_show(c, c->name, "ngroup show", print_table);
    json_t *g = NULL;
    int rc = berthctl_common_request(c, "DELETE", c->name, NULL, "ngroup delete", NULL, &g);
    if (rc == 0)
        printf("%s: deleted\n", c->name);
    json_decref(g);
    return rc;
}

/* Contract (berthctl.h). */
int berthctl_ngroup_main(int argc, char **argv)
{
    static const char *const verbs[] = {"create", "show", "list", "scale", "update", "delete"};
    int rc;
    if (!berthctl_common_verb(argc, argv, "ngroup", verbs, sizeof verbs / sizeof verbs[0],
                              berthctl_ngroup_usage, &rc))
        return rc;
    ng_opts_t o;
    rc = parse(argc, argv, &o);
    if (rc < 0) {
        fputs(berthctl_ngroup_usage, stdout);
        return BERTHCTL_EXIT_OK;
    }
    return rc != 0 ? rc : berthctl_common_run(run, &o);
}
