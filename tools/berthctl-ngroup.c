/*
 * berthctl-ngroup.c: `berthctl ngroup create|show|list|scale|update|delete`,
 * NGroups through berthd's nGroups route (docs/ngroups.md).
 *
 * create PUTs an NGroup: the container-group template read from --file (an
 * ACI container-group document: its properties become the NGroup's
 * containerGroupProfile, its location the NGroup's unless --location),
 * --count, --zones and --max-unavailable.  scale PATCHes desiredCount,
 * update PUTs a new template (the count and bound kept unless given), so
 * that neither needs the template's secrets back from berthd (which never
 * answers them).  create, scale and update wait, unless --no-wait, until
 * the NGroup is Succeeded (its members all Running at its revision),
 * showing progress on stderr.  Exchanges go through berthctl-api.c
 * (berthctl_api_request()); secrets are never printed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "berth.h"
#include "berthctl-api.h"

#define NG_API_VERSION "2024-09-01-preview"
#define NG_DEFAULT_ENDPOINT "http://127.0.0.1:8080"
#define NG_DEFAULT_SUBSCRIPTION "00000000-0000-0000-0000-000000000000"
#define NG_DEFAULT_TIMEOUT_S 300.0
#define NG_POLL_S 0.5

const char berthctl_ngroup_usage[] =
    "       berthctl ngroup create -g RG -n NAME --file TEMPLATE --count N [--zones Z,Z,...]\n"
    "                      [--max-unavailable N] [--location L] [--no-wait]\n"
    "       berthctl ngroup show -g RG -n NAME [--output json|table]\n"
    "       berthctl ngroup list -g RG [--output json|table]\n"
    "       berthctl ngroup scale -g RG -n NAME --count N [--no-wait]\n"
    "       berthctl ngroup update -g RG -n NAME --file TEMPLATE [--count N]\n"
    "                      [--max-unavailable N] [--no-wait]\n"
    "       berthctl ngroup delete -g RG -n NAME\n"
    "\n"
    "ngroup  NGroups through berthd (api-version " NG_API_VERSION "): a container-group\n"
    "        template (--file: an ACI container-group document) kept at --count\n"
    "        members, spread across --zones, template changes rolled out with at\n"
    "        most --max-unavailable (default 1) members down.  create, scale and\n"
    "        update wait for Succeeded unless --no-wait.  The options --endpoint,\n"
    "        --token, --subscription, --cacert, --insecure, --output and --timeout\n"
    "        are those of container.\n";

typedef struct ng_opts {
    const char *verb;
    berthctl_endpoint_t ep;
    const char *subscription, *rg, *name, *file, *zones, *location;
    long count, max_unavailable;    /* -1: not given                         */
    bool json, no_wait;
    double timeout_s;
    double deadline;
} ng_opts_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double left_s(const ng_opts_t *o)
{
    double l = o->deadline - now_s();
    return l > 0 ? l : 0.001;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int parse(int argc, char **argv, ng_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->verb = argv[2];
    o->ep.url = getenv("BERTH_ENDPOINT") ? getenv("BERTH_ENDPOINT") : NG_DEFAULT_ENDPOINT;
    o->ep.token = getenv("BERTH_TOKEN");
    o->subscription =
        getenv("BERTH_SUBSCRIPTION") ? getenv("BERTH_SUBSCRIPTION") : NG_DEFAULT_SUBSCRIPTION;
    o->count = o->max_unavailable = -1;
    o->timeout_s = NG_DEFAULT_TIMEOUT_S;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--insecure") == 0) {
            o->ep.insecure = true;
            continue;
        }
        if (strcmp(a, "--no-wait") == 0) {
            o->no_wait = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return -1;
        if (i + 1 >= argc)
            return berthctl_usage_error("ngroup %s: '%s' needs a value or is unknown", o->verb,
                                        a);
        const char *v = argv[++i];
        if (strcmp(a, "--endpoint") == 0)
            o->ep.url = v;
        else if (strcmp(a, "--token") == 0)
            o->ep.token = v;
        else if (strcmp(a, "--cacert") == 0)
            o->ep.cacert = v;
        else if (strcmp(a, "--subscription") == 0)
            o->subscription = v;
        else if (strcmp(a, "-g") == 0 || strcmp(a, "--resource-group") == 0)
            o->rg = v;
        else if (strcmp(a, "-n") == 0 || strcmp(a, "--name") == 0)
            o->name = v;
        else if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0)
            o->file = v;
        else if (strcmp(a, "--zones") == 0)
            o->zones = v;
        else if (strcmp(a, "-l") == 0 || strcmp(a, "--location") == 0)
            o->location = v;
        else if (strcmp(a, "--count") == 0) {
            if (!parse_long(v, 0, BERTH_NGROUP_MEMBERS_MAX, &o->count))
                return berthctl_usage_error("--count needs an integer from 0 to %d, not '%s'",
                                            BERTH_NGROUP_MEMBERS_MAX, v);
        } else if (strcmp(a, "--max-unavailable") == 0) {
            if (!parse_long(v, 1, BERTH_NGROUP_MEMBERS_MAX, &o->max_unavailable))
                return berthctl_usage_error(
                    "--max-unavailable needs an integer from 1 to %d, not '%s'",
                    BERTH_NGROUP_MEMBERS_MAX, v);
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (strcmp(v, "json") != 0 && strcmp(v, "table") != 0)
                return berthctl_usage_error("--output is json or table, not '%s'", v);
            o->json = strcmp(v, "json") == 0;
        } else if (strcmp(a, "--timeout") == 0) {
            char *end;
            o->timeout_s = strtod(v, &end);
            if (end == v || *end != '\0' || !(o->timeout_s > 0))
                return berthctl_usage_error("--timeout needs a positive number, not '%s'", v);
        } else {
            return berthctl_usage_error("ngroup %s: unknown argument '%s'", o->verb, a);
        }
    }
    if (o->rg == NULL)
        return berthctl_usage_error("ngroup %s needs -g RESOURCE-GROUP", o->verb);
    bool named = strcmp(o->verb, "list") != 0;
    if (named && o->name == NULL)
        return berthctl_usage_error("ngroup %s needs -n NAME", o->verb);
    bool needs_file = strcmp(o->verb, "create") == 0 || strcmp(o->verb, "update") == 0;
    if (needs_file && o->file == NULL)
        return berthctl_usage_error("ngroup %s needs --file TEMPLATE", o->verb);
    if ((strcmp(o->verb, "create") == 0 || strcmp(o->verb, "scale") == 0) && o->count < 0)
        return berthctl_usage_error("ngroup %s needs --count N", o->verb);
    o->deadline = now_s() + o->timeout_s;
    return 0;
}

/* The route's path for this NGroup (or, name NULL, the resource group's). */
static char *ng_path(const ng_opts_t *o, const char *name)
{
    char *sub = curl_easy_escape(NULL, o->subscription, 0);
    char *rg = curl_easy_escape(NULL, o->rg, 0);
    char *n = name ? curl_easy_escape(NULL, name, 0) : NULL;
    char *out = NULL;
    if (sub != NULL && rg != NULL && (name == NULL || n != NULL) &&
        asprintf(&out,
                 "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/"
                 "nGroups%s%s?api-version=" NG_API_VERSION,
                 sub, rg, name ? "/" : "", name ? n : "") < 0)
        out = NULL;
    curl_free(sub);
    curl_free(rg);
    curl_free(n);
    return out;
}

static int request(const ng_opts_t *o, const char *method, const char *name, json_t *body,
                   const char *what, json_t **out)
{
    char *path = ng_path(o, name);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    long status;
    int rc = path != NULL && (body == NULL || text != NULL)
                 ? berthctl_api_request(&o->ep, method, path, text, left_s(o), what, &status,
                                        out)
                 : berthctl_out_of_memory();
    free(path);
    free(text);
    return rc;
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

/* The table of one NGroup: a summary line and its members. */
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

static int output(const ng_opts_t *o, json_t *g)
{
    if (o->json)
        return berthctl_api_print_json(g);
    print_table(g);
    return BERTHCTL_API_EXIT_OK;
}

/* Polls until Succeeded (or the timeout), printing the counts on stderr
 * when they change; then prints the NGroup. */
static int wait_steady(const ng_opts_t *o, json_t *first)
{
    json_t *g = json_incref(first);
    char last[160] = "";
    for (;;) {
        json_t *p = json_object_get(g, "properties");
        json_t *st = json_object_get(p, "status");
        char line[160];
        snprintf(line, sizeof line, "%s: %s, %lld of %lld running at revision %lld",
                 jstr(g, "name", NULL), jstr(p, "provisioningState", NULL),
                 (long long)json_integer_value(json_object_get(st, "runningCount")),
                 (long long)jint(p, "elasticProfile", "desiredCount", NULL),
                 (long long)json_integer_value(json_object_get(st, "revision")));
        if (strcmp(line, last) != 0) {
            fprintf(stderr, "%s\n", line);
            snprintf(last, sizeof last, "%s", line);
        }
        if (strcmp(jstr(p, "provisioningState", NULL), "Succeeded") == 0) {
            int rc = output(o, g);
            json_decref(g);
            return rc;
        }
        if (now_s() + NG_POLL_S >= o->deadline) {
            fprintf(stderr, "berthctl: ngroup %s: not Succeeded within --timeout %g s\n",
                    o->name, o->timeout_s);
            if (*jstr(st, "message", NULL) != '\0')
                fprintf(stderr, "  note: %s\n", jstr(st, "message", NULL));
            json_decref(g);
            return BERTHCTL_API_EXIT_FAILED;
        }
        struct timespec ts = {0, (long)(NG_POLL_S * 1e9)};
        nanosleep(&ts, NULL);
        json_decref(g);
        g = NULL;
        int rc = request(o, "GET", o->name, NULL, "ngroup show", &g);
        if (rc != BERTHCTL_API_EXIT_OK)
            return rc;
    }
}

/* Reads --file into the template's properties and location. */
static int read_template(const ng_opts_t *o, json_t **props, const char **location, json_t **doc)
{
    json_error_t je;
    *doc = json_load_file(o->file, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(*doc)) {
        json_decref(*doc);
        *doc = NULL;
        return berthctl_usage_error("%s: not a JSON object: %s (line %d)", o->file, je.text,
                                    je.line);
    }
    *props = json_object_get(*doc, "properties");
    *location = NULL;
    if (!json_is_object(*props))
        return berthctl_usage_error("%s: the template has no \"properties\" object", o->file);
    *location = o->location ? o->location : json_string_value(json_object_get(*doc, "location"));
    if (*location == NULL)
        *location = "westeurope";
    return 0;
}

/* create and update: a PUT of the whole NGroup. */
static int cmd_put(const ng_opts_t *o, bool create)
{
    json_t *doc = NULL, *tprops = NULL;
    const char *location = NULL;
    int rc = read_template(o, &tprops, &location, &doc);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    long count = o->count, mu = o->max_unavailable;
    json_t *zones = NULL;
    json_t *cur = NULL;             /* `location` may point into it        */
    if (!create) {
        /* The count, bound, zones and tags of the NGroup as it is. */
        rc = request(o, "GET", o->name, NULL, "ngroup show", &cur);
        if (rc != 0) {
            json_decref(doc);
            return rc;
        }
        json_t *p = json_object_get(cur, "properties");
        if (count < 0)
            count = (long)jint(p, "elasticProfile", "desiredCount", NULL);
        if (mu < 0)
            mu = (long)jint(p, "updateProfile", "rollingUpdateProfile", "maxUnavailable");
        zones = json_object_get(cur, "zones") ? json_object_get(cur, "zones")
                                              : json_object_get(p, "zones");
        json_incref(zones);
        if (o->location == NULL && json_string_value(json_object_get(cur, "location")))
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
    json_t *body = json_pack(
        "{s:s, s:{s:{s:I}, s:{s:s, s:{s:I}}, s:{s:O}}}", "location", location, "properties",
        "elasticProfile", "desiredCount", (json_int_t)count, "updateProfile", "updateMode",
        "Rolling", "rollingUpdateProfile", "maxUnavailable", (json_int_t)(mu < 0 ? 1 : mu),
        "containerGroupProfile", "properties", tprops);
    if (body != NULL && zones != NULL && json_array_size(zones) > 0)
        json_object_set(body, "zones", zones);
    json_t *tags = json_object_get(doc, "tags");
    if (body != NULL && json_is_object(tags))
        json_object_set(body, "tags", tags);
    json_decref(zones);
    json_decref(doc);
    json_decref(cur);
    if (body == NULL)
        return berthctl_out_of_memory();
    json_t *g = NULL;
    rc = request(o, "PUT", o->name, body, create ? "ngroup create" : "ngroup update", &g);
    json_decref(body);
    if (rc != 0)
        return rc;
    rc = o->no_wait ? output(o, g) : wait_steady(o, g);
    json_decref(g);
    return rc;
}

static int cmd_scale(const ng_opts_t *o)
{
    json_t *body = json_pack("{s:{s:{s:I}}}", "properties", "elasticProfile", "desiredCount",
                             (json_int_t)o->count);
    if (body == NULL)
        return berthctl_out_of_memory();
    if (o->max_unavailable > 0)
        json_object_set_new(json_object_get(body, "properties"), "updateProfile",
                            json_pack("{s:{s:I}}", "rollingUpdateProfile", "maxUnavailable",
                                      (json_int_t)o->max_unavailable));
    json_t *g = NULL;
    int rc = request(o, "PATCH", o->name, body, "ngroup scale", &g);
    json_decref(body);
    if (rc != 0)
        return rc;
    rc = o->no_wait ? output(o, g) : wait_steady(o, g);
    json_decref(g);
    return rc;
}

static int cmd_list(const ng_opts_t *o)
{
    json_t *l = NULL;
    int rc = request(o, "GET", NULL, NULL, "ngroup list", &l);
    if (rc != 0)
        return rc;
    if (o->json) {
        rc = berthctl_api_print_json(l);
    } else {
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
    json_decref(l);
    return rc;
}

/* Contract (berthctl-api.h). */
int berthctl_ngroup_main(int argc, char **argv)
{
    static const char *const verbs[] = {"create", "show", "list", "scale", "update", "delete"};
    if (argc < 3)
        return berthctl_usage_error("%s", "ngroup needs a subcommand: create, show, list, scale, "
                                          "update or delete");
    if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        fputs(berthctl_ngroup_usage, stdout);
        return BERTHCTL_API_EXIT_OK;
    }
    bool known = false;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        known = known || strcmp(argv[2], verbs[i]) == 0;
    if (!known)
        return berthctl_usage_error("unknown ngroup subcommand '%s'", argv[2]);
    ng_opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc < 0) {
        fputs(berthctl_ngroup_usage, stdout);
        return BERTHCTL_API_EXIT_OK;
    }
    if (rc != 0)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("berthctl: cannot initialize libcurl\n", stderr);
        return BERTHCTL_API_EXIT_FAILED;
    }
    json_t *g = NULL;
    if (strcmp(o.verb, "create") == 0) {
        rc = cmd_put(&o, true);
    } else if (strcmp(o.verb, "update") == 0) {
        rc = cmd_put(&o, false);
    } else if (strcmp(o.verb, "scale") == 0) {
        rc = cmd_scale(&o);
    } else if (strcmp(o.verb, "list") == 0) {
        rc = cmd_list(&o);
    } else if (strcmp(o.verb, "show") == 0) {
        rc = request(&o, "GET", o.name, NULL, "ngroup show", &g);
        if (rc == 0)
            rc = output(&o, g);
    } else {
        rc = request(&o, "DELETE", o.name, NULL, "ngroup delete", &g);
        if (rc == 0)
            printf("%s: deleted\n", o.name);
    }
    json_decref(g);
    if (fflush(stdout) != 0 && rc == BERTHCTL_API_EXIT_OK) {
        fputs("berthctl: cannot write to stdout\n", stderr);
        rc = BERTHCTL_API_EXIT_FAILED;
    }
    curl_global_cleanup();
    return rc;
}
