/*
 * route.c: what berthctl's commands on berthd's ARM resource routes
 * (ngroup.c, pool.c) share: their common options (on getopt_long), the route's paths and
 * exchanges, printing, listing, waiting, the verb check and the run
 * between libcurl's global set-up and clean-up.
 *
 * It knows no resource type of its own (the caller names it), and never
 * prints a secret: JSON goes out through berthctl_print_json(), which
 * redacts.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "berthctl.h"

/* getopt's vals of the common long options without a letter. */
enum {
    OPT_INSECURE = 256, OPT_NO_WAIT, OPT_ENDPOINT, OPT_TOKEN, OPT_CACERT, OPT_SUBSCRIPTION,
    OPT_TIMEOUT
};

#define POLL_MS 500                     /* between two GETs of a resource wait */


/* Contract (berthctl.h). */
void berthctl_common_init(berthctl_common_t *c, const char *command, const char *verb,
                          const char *resource_type, const char *api_version)
{
    memset(c, 0, sizeof *c);
    c->command = command;
    c->verb = verb;
    c->resource_type = resource_type;
    c->api_version = api_version;
    c->ep.url = getenv("BERTH_ENDPOINT") ? getenv("BERTH_ENDPOINT") : BERTHCTL_DEFAULT_ENDPOINT;
    c->ep.token = getenv("BERTH_TOKEN");
    c->subscription = getenv("BERTH_SUBSCRIPTION") ? getenv("BERTH_SUBSCRIPTION")
                                                   : BERTHCTL_DEFAULT_SUBSCRIPTION;
    c->timeout_s = BERTHCTL_DEFAULT_TIMEOUT_S;
}

/* Reads a common option's value into *c.  Returns 0, or the usage exit
 * status for a bad --output or --timeout (the error printed). */
static int common_value(berthctl_common_t *c, int opt, const char *v)
{
    switch (opt) {
    case OPT_ENDPOINT: c->ep.url = v; break;
    case OPT_TOKEN: c->ep.token = v; break;
    case OPT_CACERT: c->ep.cacert = v; break;
    case OPT_SUBSCRIPTION: c->subscription = v; break;
    case 'g': c->rg = v; break;
    case 'n': c->name = v; break;
    case 'f': c->file = v; break;
    case 'l': c->location = v; break;
    case 'o':
        if (strcmp(v, "json") != 0 && strcmp(v, "table") != 0)
            return berthctl_usage_error("--output is json or table, not '%s'", v);
        c->json = strcmp(v, "json") == 0;
        break;
    case OPT_TIMEOUT: {
        char *end;
        c->timeout_s = strtod(v, &end);
        if (end == v || *end != '\0' || !(c->timeout_s > 0))
            return berthctl_usage_error("--timeout needs a positive number, not '%s'", v);
        break;
    }
    }
    return 0;
}

/* Contract (berthctl.h). */
int berthctl_common_parse(berthctl_common_t *c, int argc, char **argv,
                          const struct option *own, berthctl_option_cb *option, void *ctx)
{
    static const struct option common[] = {
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
        {"help", no_argument, NULL, 'h'},
        {"endpoint", required_argument, NULL, OPT_ENDPOINT},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"cacert", required_argument, NULL, OPT_CACERT},
        {"subscription", required_argument, NULL, OPT_SUBSCRIPTION},
        {"resource-group", required_argument, NULL, 'g'},
        {"name", required_argument, NULL, 'n'},
        {"file", required_argument, NULL, 'f'},
        {"location", required_argument, NULL, 'l'},
        {"output", required_argument, NULL, 'o'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
    };
    enum { NCOMMON = sizeof common / sizeof *common, OWN_MAX = 8 };
    struct option longs[NCOMMON + OWN_MAX + 1];
    size_t n = 0;
    for (; n < NCOMMON; n++)
        longs[n] = common[n];
    for (; own != NULL && own[n - NCOMMON].name != NULL && n < NCOMMON + OWN_MAX; n++)
        longs[n] = own[n - NCOMMON];
    longs[n] = (struct option){NULL, 0, NULL, 0};
    /* the options are argv[3..]: getopt reads words[1..] */
    int nwords = argc - 2;
    char **words = argv + 2;
    const char *arg;
    int opt;
    optind = 1;
    while ((opt = berthctl_option_next(nwords, words, "-:hg:n:f:l:o:", longs, &arg)) != -1) {
        int rc = 0;
        if (opt == OPT_INSECURE) {
            c->ep.insecure = true;
        } else if (opt == OPT_NO_WAIT) {
            c->no_wait = true;
        } else if (opt == 'h') {
            return BERTHCTL_COMMON_HELP;
        } else if (opt == ':' || ((opt == 1 || opt == '?') && arg == words[nwords - 1])) {
            /* an unknown word has always been taken for an option with a value */
            return berthctl_usage_error("%s %s: '%s' needs a value or is unknown", c->command,
                                        c->verb, arg);
        } else if (opt == 1 || opt == '?') {
            return berthctl_usage_error("%s %s: unknown argument '%s'", c->command, c->verb,
                                        arg);
        } else if (opt >= BERTHCTL_OPT_OWN) {
            rc = option(ctx, opt, optarg);
        } else {
            rc = common_value(c, opt, optarg);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Contract (berthctl.h). */
int berthctl_common_finish(berthctl_common_t *c)
{
    if (c->rg == NULL)
        return berthctl_usage_error("%s %s needs -g RESOURCE-GROUP", c->command, c->verb);
    if (strcmp(c->verb, "list") != 0 && c->name == NULL)
        return berthctl_usage_error("%s %s needs -n NAME", c->command, c->verb);
    c->deadline_ms = berth__clock_monotonic_ms() + (int64_t)(c->timeout_s * 1000);
    return 0;
}

/* Contract (berthctl.h). */
int berthctl_common_load_template(const berthctl_common_t *c, json_t **doc, const char **location)
{
    json_error_t je;
    *location = NULL;
    *doc = json_load_file(c->file, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(*doc)) {
        json_decref(*doc);
        *doc = NULL;
        return berthctl_usage_error("%s: not a JSON object: %s (line %d)", c->file, je.text,
                                    je.line);
    }
    if (!json_is_object(json_object_get(*doc, "properties")))
        return berthctl_usage_error("%s: the template has no \"properties\" object", c->file);
    *location = c->location ? c->location : json_string_value(json_object_get(*doc, "location"));
    if (*location == NULL)
        *location = BERTHCTL_DEFAULT_LOCATION;
    return 0;
}

/* The route's path for resource `name` (NULL: the resource group's
 * collection); a new string (free()), or NULL for want of memory. */
static char *common_path(const berthctl_common_t *c, const char *name)
{
    char *sub = curl_easy_escape(NULL, c->subscription, 0);
    char *rg = curl_easy_escape(NULL, c->rg, 0);
    char *n = name ? curl_easy_escape(NULL, name, 0) : NULL;
    char *out = NULL;
    if (sub != NULL && rg != NULL && (name == NULL || n != NULL)) {
        berthctl_string_t b = {0};
        berthctl_string_printf(
            &b, "/subscriptions/%s/resourceGroups/%s/providers/%s%s%s?api-version=%s", sub, rg,
            c->resource_type, name ? "/" : "", name ? n : "", c->api_version);
        out = berthctl_string_take(&b);
    }
    curl_free(sub);
    curl_free(rg);
    curl_free(n);
    return out;
}

/* Contract (berthctl.h). */
int berthctl_common_request(const berthctl_common_t *c, const char *method, const char *name,
                            json_t *body, const char *what, long *status, json_t **out)
{
    char *path = common_path(c, name);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    double left = (double)(c->deadline_ms - berth__clock_monotonic_ms()) / 1000;
    long st = 0;
    int rc = path != NULL && (body == NULL || text != NULL)
                 ? berthctl_http_request(&c->ep, method, path, text, left > 0 ? left : 0.001, what,
                                         &st, out)
                 : berthctl_out_of_memory();
    free(path);
    free(text);
    if (status != NULL)
        *status = st;
    return rc;
}

/* Contract (berthctl.h). */
int berthctl_common_print(const berthctl_common_t *c, json_t *doc, berthctl_table_cb *table)
{
    if (c->json)
        return berthctl_print_json(doc);
    table(doc);
    return BERTHCTL_EXIT_OK;
}

/* Contract (berthctl.h). */
int berthctl_common_show(const berthctl_common_t *c, const char *name, const char *what,
                         berthctl_table_cb *table)
{
    json_t *doc = NULL;
    int rc = berthctl_common_request(c, "GET", name, NULL, what, NULL, &doc);
    if (rc == BERTHCTL_EXIT_OK)
        rc = berthctl_common_print(c, doc, table);
    json_decref(doc);
    return rc;
}

/* Contract (berthctl.h). */
int berthctl_common_wait(const berthctl_common_t *c, json_t *first, const char *what,
                         berthctl_wait_progress_cb *progress, berthctl_wait_timeout_cb *timed_out,
                         json_t **done)
{
    json_t *doc = json_incref(first);
    char last[160] = "";
    *done = NULL;
    for (;;) {
        char line[160];
        bool there = progress(c, doc, line, sizeof line);
        if (strcmp(line, last) != 0) {
            fprintf(stderr, "%s\n", line);
            snprintf(last, sizeof last, "%s", line);
        }
        if (there) {
            *done = doc;
            return BERTHCTL_EXIT_OK;
        }
        if (berth__clock_monotonic_ms() + POLL_MS >= c->deadline_ms) {
            timed_out(c, doc);
            json_decref(doc);
            return BERTHCTL_EXIT_FAILED;
        }
        berth__clock_sleep_ms(POLL_MS);
        json_decref(doc);
        doc = NULL;
        int rc = berthctl_common_request(c, "GET", c->name, NULL, what, NULL, &doc);
        if (rc != BERTHCTL_EXIT_OK)
            return rc;
    }
}

/* Contract (berthctl.h). */
bool berthctl_common_verb(int argc, char **argv, const char *command, const char *const *verbs,
                          size_t n, const char *usage_text, int *status)
{
    if (argc < 3) {
        berthctl_string_t b = {0};
        for (size_t i = 0; i < n; i++)
            berthctl_string_printf(&b, "%s%s", i == 0 ? "" : i + 1 < n ? ", " : " or ", verbs[i]);
        char *list = berthctl_string_take(&b);
        *status = list ? berthctl_usage_error("%s needs a subcommand: %s", command, list)
                       : berthctl_out_of_memory();
        free(list);
        return false;
    }
    if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        fputs(usage_text, stdout);
        *status = BERTHCTL_EXIT_OK;
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[2], verbs[i]) == 0)
            return true;
    *status = berthctl_usage_error("unknown %s subcommand '%s'", command, argv[2]);
    return false;
}

/* Contract (berthctl.h). */
int berthctl_common_run(berthctl_common_run_cb *run, void *ctx)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("berthctl: cannot initialize libcurl\n", stderr);
        return BERTHCTL_EXIT_FAILED;
    }
    int rc = run(ctx);
    if (fflush(stdout) != 0 && rc == BERTHCTL_EXIT_OK) {
        fputs("berthctl: cannot write to stdout\n", stderr);
        rc = BERTHCTL_EXIT_FAILED;
    }
    curl_global_cleanup();
    return rc;
}
