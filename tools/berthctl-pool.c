/*
 * berthctl-pool.c: `berthctl pool create|show|list|delete`, standby pools
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
 * berthctl-api.c (berthctl_api_request()); berthd never answers a
 * template's secrets and berthctl_api_print_json() redacts any left.
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

#define POOL_API_VERSION "2025-03-01"
#define POOL_DEFAULT_ENDPOINT "http://127.0.0.1:8080"
#define POOL_DEFAULT_SUBSCRIPTION "00000000-0000-0000-0000-000000000000"
#define POOL_DEFAULT_LOCATION "westeurope"
#define POOL_DEFAULT_TIMEOUT_S 300.0
#define POOL_POLL_S 0.5

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
    const char *verb;
    berthctl_endpoint_t ep;
    const char *subscription, *rg, *name, *file, *location;
    long size;                      /* -1: not given                         */
    bool json, no_wait;
    double timeout_s;
    double deadline;
} pool_opts_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double left_s(const pool_opts_t *o)
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

/* Reads the options after the verb into *o.  Returns 0, -1 for --help, or
 * the usage exit status (the error printed). */
static int parse(int argc, char **argv, pool_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->verb = argv[2];
    o->ep.url = getenv("BERTH_ENDPOINT") ? getenv("BERTH_ENDPOINT") : POOL_DEFAULT_ENDPOINT;
    o->ep.token = getenv("BERTH_TOKEN");
    o->subscription =
        getenv("BERTH_SUBSCRIPTION") ? getenv("BERTH_SUBSCRIPTION") : POOL_DEFAULT_SUBSCRIPTION;
    o->size = -1;
    o->timeout_s = POOL_DEFAULT_TIMEOUT_S;
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
            return berthctl_usage_error("pool %s: '%s' needs a value or is unknown", o->verb, a);
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
        else if (strcmp(a, "-l") == 0 || strcmp(a, "--location") == 0)
            o->location = v;
        else if (strcmp(a, "--size") == 0) {
            if (!parse_long(v, 0, BERTH_POOL_SIZE_MAX, &o->size))
                return berthctl_usage_error("--size needs an integer from 0 to %d, not '%s'",
                                            BERTH_POOL_SIZE_MAX, v);
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
            return berthctl_usage_error("pool %s: unknown argument '%s'", o->verb, a);
        }
    }
    if (o->rg == NULL)
        return berthctl_usage_error("pool %s needs -g RESOURCE-GROUP", o->verb);
    if (strcmp(o->verb, "list") != 0 && o->name == NULL)
        return berthctl_usage_error("pool %s needs -n NAME", o->verb);
    if (strcmp(o->verb, "create") == 0 && o->file == NULL)
        return berthctl_usage_error("%s", "pool create needs --file TEMPLATE");
    if (strcmp(o->verb, "create") == 0 && o->size < 0)
        return berthctl_usage_error("%s", "pool create needs --size N");
    o->deadline = now_s() + o->timeout_s;
    return 0;
}

/* The route's path for this pool (or, name NULL, the resource group's
 * pools); a new string (free()), or NULL for want of memory. */
static char *pool_path(const pool_opts_t *o, const char *name)
{
    char *sub = curl_easy_escape(NULL, o->subscription, 0);
    char *rg = curl_easy_escape(NULL, o->rg, 0);
    char *n = name ? curl_easy_escape(NULL, name, 0) : NULL;
    char *out = NULL;
    if (sub != NULL && rg != NULL && (name == NULL || n != NULL) &&
        asprintf(&out,
                 "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.StandbyPool/"
                 "standbyContainerGroupPools%s%s?api-version=" POOL_API_VERSION,
                 sub, rg, name ? "/" : "", name ? n : "") < 0)
        out = NULL;
    curl_free(sub);
    curl_free(rg);
    curl_free(n);
    return out;
}

static int request(const pool_opts_t *o, const char *method, const char *name, json_t *body,
                   const char *what, long *status, json_t **out)
{
    char *path = pool_path(o, name);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    long st = 0;
    int rc = path != NULL && (body == NULL || text != NULL)
                 ? berthctl_api_request(&o->ep, method, path, text, left_s(o), what, &st, out)
                 : berthctl_out_of_memory();
    free(path);
    free(text);
    if (status != NULL)
        *status = st;
    return rc;
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

/* Prints one pool (doc is changed: secrets redacted for JSON). */
static int output(const pool_opts_t *o, json_t *p)
{
    if (o->json)
        return berthctl_api_print_json(p);
    table_head();
    table_row(p);
    return BERTHCTL_API_EXIT_OK;
}

/* Polls until the pool has as many ready members as it keeps (or the
 * timeout), printing the counts on stderr when they change; then prints
 * the pool. */
static int wait_ready(const pool_opts_t *o, json_t *first)
{
    json_t *p = json_incref(first);
    char last[160] = "";
    for (;;) {
        long long size = prop_int(p, "elasticityProfile", "maxReadyCapacity");
        long long ready = prop_int(p, "status", "readyCapacity");
        char line[160];
        snprintf(line, sizeof line, "%s: %lld of %lld ready", o->name, ready, size);
        if (strcmp(line, last) != 0) {
            fprintf(stderr, "%s\n", line);
            snprintf(last, sizeof last, "%s", line);
        }
        if (ready >= size) {
            int rc = output(o, p);
            json_decref(p);
            return rc;
        }
        if (now_s() + POOL_POLL_S >= o->deadline) {
            fprintf(stderr, "berthctl: pool %s: %lld of %lld members ready after --timeout %g s\n",
                    o->name, ready, size, o->timeout_s);
            json_decref(p);
            return BERTHCTL_API_EXIT_FAILED;
        }
        struct timespec ts = {0, (long)(POOL_POLL_S * 1e9)};
        nanosleep(&ts, NULL);
        json_decref(p);
        p = NULL;
        int rc = request(o, "GET", o->name, NULL, "pool show", NULL, &p);
        if (rc != BERTHCTL_API_EXIT_OK)
            return rc;
    }
}

static int cmd_create(const pool_opts_t *o)
{
    json_error_t je;
    json_t *doc = json_load_file(o->file, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return berthctl_usage_error("%s: not a JSON object: %s (line %d)", o->file, je.text,
                                    je.line);
    }
    if (!json_is_object(json_object_get(doc, "properties"))) {
        json_decref(doc);
        return berthctl_usage_error("%s: the template has no \"properties\" object", o->file);
    }
    const char *location = o->location ? o->location
                                       : json_string_value(json_object_get(doc, "location"));
    if (location == NULL)
        location = POOL_DEFAULT_LOCATION;
    json_t *body = json_pack("{s:s, s:{s:{s:I}, s:{s:O}}}", "location", location, "properties",
                             "elasticityProfile", "maxReadyCapacity", (json_int_t)o->size,
                             "containerGroupProperties", "containerGroupProfile", doc);
    json_decref(doc);
    if (body == NULL)
        return berthctl_out_of_memory();
    json_t *p = NULL;
    long status = 0;
    int rc = request(o, "PUT", o->name, body, "pool create", &status, &p);
    json_decref(body);
    if (rc != 0)
        return rc;
    fprintf(stderr, "%s: %s\n", o->name, status == 201 ? "created" : "updated");
    rc = o->no_wait ? output(o, p) : wait_ready(o, p);
    json_decref(p);
    return rc;
}

static int cmd_list(const pool_opts_t *o)
{
    json_t *l = NULL;
    int rc = request(o, "GET", NULL, NULL, "pool list", NULL, &l);
    if (rc != 0)
        return rc;
    if (o->json) {
        rc = berthctl_api_print_json(l);
    } else {
        table_head();
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(l, "value"), i, p)
            table_row(p);
    }
    json_decref(l);
    return rc;
}

/* Contract (berthctl-api.h). */
int berthctl_pool_main(int argc, char **argv)
{
    static const char *const verbs[] = {"create", "show", "list", "delete"};
    if (argc < 3)
        return berthctl_usage_error("%s", "pool needs a subcommand: create, show, list or delete");
    if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        fputs(berthctl_pool_usage, stdout);
        return BERTHCTL_API_EXIT_OK;
    }
    bool known = false;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        known = known || strcmp(argv[2], verbs[i]) == 0;
    if (!known)
        return berthctl_usage_error("unknown pool subcommand '%s'", argv[2]);
    pool_opts_t o;
    int rc = parse(argc, argv, &o);
    if (rc < 0) {
        fputs(berthctl_pool_usage, stdout);
        return BERTHCTL_API_EXIT_OK;
    }
    if (rc != 0)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("berthctl: cannot initialize libcurl\n", stderr);
        return BERTHCTL_API_EXIT_FAILED;
    }
    json_t *p = NULL;
    long status = 0;
    if (strcmp(o.verb, "create") == 0) {
        rc = cmd_create(&o);
    } else if (strcmp(o.verb, "list") == 0) {
        rc = cmd_list(&o);
    } else if (strcmp(o.verb, "show") == 0) {
        rc = request(&o, "GET", o.name, NULL, "pool show", NULL, &p);
        if (rc == 0)
            rc = output(&o, p);
    } else {
        rc = request(&o, "DELETE", o.name, NULL, "pool delete", &status, &p);
        if (rc == 0)
            printf("%s: %s\n", o.name, status == 204 ? "no such pool" : "deleted");
    }
    json_decref(p);
    if (fflush(stdout) != 0 && rc == BERTHCTL_API_EXIT_OK) {
        fputs("berthctl: cannot write to stdout\n", stderr);
        rc = BERTHCTL_API_EXIT_FAILED;
    }
    curl_global_cleanup();
    return rc;
}
