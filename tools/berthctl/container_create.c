/*
 * container_create.c: `berthctl container create`: the ACI container-group
 * document built from flags (checked with the library's berth_group_parse
 * before it is sent) or read from --file (-n and --location override its
 * name and location), the PUT, and the wait for Succeeded or Failed with
 * progress on stderr.
 *
 * The document may hold secure environment values: it is never printed,
 * an argument that may hold a secret is never echoed in an error, and the
 * request's text is wiped before it is freed.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "berthctl.h"

static bool ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* ---- building a document from flags ------------------------------------------------ */

/* Splits a command line the way a POSIX shell splits words: blanks separate,
 * single quotes keep everything, double quotes keep everything but \" \\ \$
 * \`, a backslash outside quotes escapes the next character.  Returns a new
 * array of strings, or NULL with *why set. */
static json_t *split_command(const char *s, const char **why)
{
    json_t *words = json_array();
    size_t cap = strlen(s) + 1;
    char *w = malloc(cap);
    if (words == NULL || w == NULL) {
        json_decref(words);
        free(w);
        *why = "out of memory";
        return NULL;
    }
    size_t n = 0;
    bool in_word = false;
    char quote = 0;
    for (const char *p = s;; p++) {
        char ch = *p;
        if (ch == '\0') {
            if (quote != 0) {
                *why = "unterminated quote";
                goto fail;
            }
            break;
        }
        if (quote == '\'') {
            if (ch == '\'')
                quote = 0;
            else
                w[n++] = ch;
            continue;
        }
        if (quote == '"') {
            if (ch == '"')
                quote = 0;
            else if (ch == '\\' && p[1] != '\0' && strchr("\"\\$`", p[1]) != NULL)
                w[n++] = *++p;
            else
                w[n++] = ch;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n') {
            if (in_word) {
                w[n] = '\0';
                if (json_array_append_new(words, json_string(w)) != 0) {
                    *why = "invalid UTF-8 or out of memory";
                    goto fail;
                }
                n = 0;
                in_word = false;
            }
            continue;
        }
        in_word = true;
        if (ch == '\'' || ch == '"') {
            quote = ch;
        } else if (ch == '\\') {
            if (p[1] == '\0') {
                *why = "a backslash ends the command line";
                goto fail;
            }
            w[n++] = *++p;
        } else {
            w[n++] = ch;
        }
    }
    if (in_word) {
        w[n] = '\0';
        if (json_array_append_new(words, json_string(w)) != 0) {
            *why = "invalid UTF-8 or out of memory";
            goto fail;
        }
    }
    free(w);
    if (json_array_size(words) == 0) {
        *why = "the command line is empty";
        json_decref(words);
        return NULL;
    }
    return words;
fail:
    free(w);
    json_decref(words);
    return NULL;
}

/* One of a fixed set of words, matched case-insensitively; the canonical
 * spelling, or NULL. */
static const char *pick(const char *v, const char *const *choices)
{
    for (; *choices != NULL; choices++)
        if (ieq(v, *choices))
            return *choices;
    return NULL;
}

/* A quantity as a JSON number: an integer when whole (1, not 1.0). */
static json_t *quantity_json(double x)
{
    if (x == floor(x) && x < 1e15)
        return json_integer((json_int_t)x);
    return json_real(x);
}

/* Adds K=V pairs to env (secure: as secureValue).  Returns 0 or BERTHCTL_EXIT_USAGE. */
static int add_env(json_t *env, const berthctl_strings_t *pairs, bool secure)
{
    const char *flag = secure ? "--secure-environment-variables" : "--environment-variables";
    for (size_t i = 0; i < pairs->n; i++) {
        const char *kv = pairs->v[i];
        const char *eq = strchr(kv, '=');
        if (eq == NULL || eq == kv) {
            /* never echo the argument: it may hold a secret value */
            return berthctl_usage_error("%s: value %zu is not NAME=VALUE", flag, i + 1);
        }
        json_t *name = json_stringn(kv, (size_t)(eq - kv));
        json_t *value = json_string(eq + 1);
        if (name == NULL || value == NULL) {
            json_decref(name);
            json_decref(value);
            return berthctl_usage_error("%s: value %zu is not valid UTF-8", flag, i + 1);
        }
        json_t *e = json_pack("{s:o,s:o}", "name", name, secure ? "secureValue" : "value", value);
        if (e == NULL || json_array_append_new(env, e) != 0)
            return berthctl_out_of_memory();
    }
    return 0;
}

/* Builds the ACI document of `container create` from flags.  Returns 0 with
 * *out set, or an exit status (message printed). */
static int build_from_flags(const berthctl_container_options_t *o, json_t **out)
{
    static const char *const skus[] = {"K80", "P100", "V100", NULL};
    static const char *const policies[] = {"Always", "OnFailure", "Never", NULL};
    static const char *const protocols[] = {"TCP", "UDP", NULL};
    static const char *const ip_types[] = {"Public", NULL};
    static const char *const os_types[] = {"Linux", "Windows", NULL};
    static const char *const priorities[] = {"Regular", "Spot", NULL};
    *out = NULL;
    double cpu = 1, memory = 1.5;
    if (o->cpu != NULL && !berthctl_parse_quantity(o->cpu, &cpu))
        return berthctl_usage_error("--cpu needs a positive number of cores, not '%s'", o->cpu);
    if (o->memory != NULL && !berthctl_parse_quantity(o->memory, &memory))
        return berthctl_usage_error("--memory needs a positive number of GB, not '%s'", o->memory);
    long gpu_count = 0;
    const char *gpu_sku = NULL;
    if (o->gpu_count != NULL &&
        (!berthctl_parse_count(o->gpu_count, 64, &gpu_count) || gpu_count == 0))
        return berthctl_usage_error("--gpu-count needs a positive integer, not '%s'", o->gpu_count);
    if (o->gpu_sku != NULL && (gpu_sku = pick(o->gpu_sku, skus)) == NULL)
        return berthctl_usage_error("--gpu-sku must be K80, P100 or V100, not '%s'", o->gpu_sku);
    if ((gpu_count > 0) != (gpu_sku != NULL))
        return berthctl_usage_error("%s", "--gpu-count and --gpu-sku go together");
    const char *policy = "Always", *protocol = "TCP", *ip = NULL, *os = "Linux";
    if (o->restart_policy != NULL && (policy = pick(o->restart_policy, policies)) == NULL)
        return berthctl_usage_error("--restart-policy must be Always, OnFailure or Never, not '%s'",
                                    o->restart_policy);
    if (o->protocol != NULL && (protocol = pick(o->protocol, protocols)) == NULL)
        return berthctl_usage_error("--protocol must be TCP or UDP, not '%s'", o->protocol);
    if (o->ip_address != NULL && (ip = pick(o->ip_address, ip_types)) == NULL)
        return berthctl_usage_error("--ip-address must be Public, not '%s'", o->ip_address);
    if (o->os_type != NULL && (os = pick(o->os_type, os_types)) == NULL)
        return berthctl_usage_error("--os-type must be Linux or Windows, not '%s'", o->os_type);
    const char *priority = NULL;
    if (o->priority != NULL && (priority = pick(o->priority, priorities)) == NULL)
        return berthctl_usage_error("--priority must be Regular or Spot, not '%s'", o->priority);
    if (o->dns_label != NULL)
        ip = "Public";              /* a DNS name label needs a public IP   */

    json_t *doc = NULL, *ports = json_array(), *gports = json_array(), *env = json_array();
    int rc = BERTHCTL_EXIT_OK;
    if (ports == NULL || gports == NULL || env == NULL) {
        rc = berthctl_out_of_memory();
        goto out;
    }
    /* az's default: port 80 */
    size_t nports = o->ports.n ? o->ports.n : 1;
    for (size_t i = 0; i < nports; i++) {
        long port = 80;
        if (o->ports.n && (!berthctl_parse_count(o->ports.v[i], 65535, &port) || port == 0)) {
            rc = berthctl_usage_error("--ports needs port numbers 1 to 65535, not '%s'",
                                      o->ports.v[i]);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (json_integer_value(json_object_get(json_array_get(ports, j), "port")) == port) {
                rc = berthctl_usage_error("--ports: port %ld is given twice", port);
                goto out;
            }
        if (json_array_append_new(ports, json_pack("{s:I,s:s}", "port", (json_int_t)port,
                                                   "protocol", protocol)) != 0 ||
            json_array_append_new(gports, json_pack("{s:I,s:s}", "port", (json_int_t)port,
                                                    "protocol", protocol)) != 0) {
            rc = berthctl_out_of_memory();
            goto out;
        }
    }
    if ((rc = add_env(env, &o->env, false)) != 0 || (rc = add_env(env, &o->secure_env, true)) != 0)
        goto out;

    json_t *requests = json_pack("{s:o,s:o}", "cpu", quantity_json(cpu), "memoryInGB",
                                 quantity_json(memory));
    if (requests != NULL && gpu_count > 0)
        json_object_set_new(requests, "gpu",
                            json_pack("{s:I,s:s}", "count", (json_int_t)gpu_count, "sku", gpu_sku));
    json_t *cprops = json_pack("{s:s,s:O,s:O,s:{s:o}}", "image", o->image, "ports", ports,
                               "environmentVariables", env, "resources", "requests", requests);
    if (cprops == NULL) {
        rc = berthctl_usage_error("%s", "--image is not valid UTF-8");
        goto out;
    }
    if (o->command_line != NULL) {
        const char *why = NULL;
        json_t *cmd = split_command(o->command_line, &why);
        if (cmd == NULL) {
            json_decref(cprops);
            rc = berthctl_usage_error("--command-line: %s", why);
            goto out;
        }
        json_object_set_new(cprops, "command", cmd);
    }
    doc =
        json_pack("{s:s,s:s,s:{s:[{s:s,s:o}],s:s,s:s}}", "name", o->name, "location",
                  o->location ? o->location : BERTHCTL_DEFAULT_LOCATION, "properties", "containers",
                  "name", o->name, "properties", cprops, "osType", os, "restartPolicy", policy);
    if (doc == NULL) {
        rc = berthctl_usage_error("%s", "--name or --location is not valid UTF-8");
        goto out;
    }
    if (priority != NULL && json_object_set_new(berthctl_json_get(doc, "properties"), "priority",
                                                json_string(priority)) != 0) {
        rc = berthctl_out_of_memory();
        goto out;
    }
    if (ip != NULL) {
        json_t *ipa = json_pack("{s:s,s:O}", "type", ip, "ports", gports);
        if (ipa != NULL && o->dns_label != NULL)
            json_object_set_new(ipa, "dnsNameLabel", json_string(o->dns_label));
        if (ipa == NULL ||
            json_object_set_new(berthctl_json_get(doc, "properties"), "ipAddress", ipa) != 0) {
            rc = berthctl_out_of_memory();
            goto out;
        }
    }
out:
    json_decref(ports);
    json_decref(gports);
    json_decref(env);
    if (rc != BERTHCTL_EXIT_OK) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return BERTHCTL_EXIT_OK;
}

/* Checks a document with the library's parser.  Returns 0 or BERTHCTL_EXIT_USAGE with
 * the violations printed (targets and messages only, never values). */
static int check_document(const char *text)
{
    berth_group_t *g = NULL;
    berth_error_t err;
    berth_error_clear(&err);
    int rc = berth_group_parse(text, strlen(text), &g, &err);
    berth_group_free(g);
    if (rc == 0)
        return BERTHCTL_EXIT_OK;
    if (rc == BERTH_ENOMEM)
        return berthctl_out_of_memory();
    fprintf(stderr, "berthctl: create: the document is not a valid container group:\n");
    size_t n = err.ndetails < BERTH_ERROR_DETAILS_MAX ? err.ndetails : BERTH_ERROR_DETAILS_MAX;
    if (n == 0)
        fprintf(stderr, "  %s: %s%s%s\n", err.name, err.message, *err.target ? " at " : "",
                err.target);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  %s: %s%s%s\n", err.details[i].name, err.details[i].message,
                *err.details[i].target ? " at " : "", err.details[i].target);
    if (err.ndetails > n)
        fprintf(stderr, "  (%zu more)\n", err.ndetails - n);
    return BERTHCTL_EXIT_USAGE;
}

/* Loads --file and applies -n and --location.  Returns 0 with *out and
 * *name (borrowed from *out) set, or an exit status. */
static int load_document(const berthctl_container_options_t *o, json_t **out)
{
    *out = NULL;
    char *text = NULL;
    int rc = berthctl_read_input(o->file, &text);
    if (rc != BERTHCTL_EXIT_OK)
        return rc;
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (doc == NULL)
        return berthctl_usage_error("%s: not JSON (line %d: %s)", o->file, jerr.line, jerr.text);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return berthctl_usage_error("%s: not a container-group document (a JSON object)", o->file);
    }
    if (o->name != NULL)
        json_object_set_new(doc, "name", json_string(o->name));
    if (o->location != NULL)
        json_object_set_new(doc, "location", json_string(o->location));
    else if (json_object_get(doc, "location") == NULL)
        json_object_set_new(doc, "location", json_string(BERTHCTL_DEFAULT_LOCATION));
    const char *name = berthctl_json_string(doc, "name");
    if (name == NULL || *name == '\0') {
        json_decref(doc);
        return berthctl_usage_error("%s: the document has no name; give -n NAME", o->file);
    }
    *out = doc;
    return BERTHCTL_EXIT_OK;
}

static int wait_group(berthctl_client_t *c, const char *name, const char *url, json_t *first,
                      json_t **final)
{
    *final = NULL;
    json_t *seen = json_object();
    if (seen == NULL)
        return berthctl_out_of_memory();
    json_t *g = json_incref(first);
    double pause = 0.2;
    bool warned = false;
    int rc;
    for (;;) {
        if (g != NULL) {
            berthctl_group_show_progress(name, g, seen);
            const char *prov = berthctl_json_string(g, "properties.provisioningState");
            if (prov != NULL && (ieq(prov, "Succeeded") || ieq(prov, "Failed"))) {
                *final = g;
                rc = ieq(prov, "Succeeded") ? BERTHCTL_EXIT_OK : BERTHCTL_EXIT_FAILED;
                break;
            }
            json_decref(g);
            g = NULL;
        }
        double left = (double)(c->deadline_ms - berth__clock_monotonic_ms()) / 1000;
        if (left <= 0) {
            fprintf(stderr,
                    "berthctl: %s: timed out after %g s waiting for Succeeded or "
                    "Failed (provisioningState %s)\n",
                    name, c->timeout_s,
                    berthctl_json_string(seen, "provisioningState")
                        ? berthctl_json_string(seen, "provisioningState")
                        : "unknown");
            rc = BERTHCTL_EXIT_FAILED;
            break;
        }
        berth__clock_sleep_ms((int64_t)((pause < left ? pause : left) * 1000));
        pause = pause * 1.5 > 2.0 ? 2.0 : pause * 1.5;
        berthctl_response_t r;
        if (berthctl_http(c, "GET", url, NULL, NULL, &r) == 0 && berthctl_http_ok(r.status) &&
            json_is_object(r.json)) {
            g = json_incref(r.json);
        } else if (r.status == 0 || r.status >= 500 || r.status == 429) {
            /* transient: keep trying until the deadline */
            if (!warned && berth__clock_monotonic_ms() < c->deadline_ms) {
                fprintf(stderr, "berthctl: %s: ", name);
                if (r.status == 0)
                    berthctl_put_clean(stderr, r.why, 300);
                else
                    fprintf(stderr, "HTTP %ld", r.status);
                fputs("; retrying\n", stderr);
                warned = true;
            }
        } else {
            rc = berthctl_http_error("wait", &r);
            berthctl_response_free(&r);
            break;
        }
        berthctl_response_free(&r);
    }
    json_decref(seen);
    return rc;
}

/* Contract (berthctl.h). */
int berthctl_container_create(berthctl_client_t *c, const berthctl_container_options_t *o)
{
    json_t *doc = NULL;
    int rc = o->file != NULL ? load_document(o, &doc) : build_from_flags(o, &doc);
    if (rc != BERTHCTL_EXIT_OK)
        return rc;
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
    char *name = strdup(berthctl_json_string(doc, "name"));
    char *url = NULL;
    json_t *final = NULL;
    berthctl_response_t r = {0};
    if (text == NULL || name == NULL) {
        rc = berthctl_out_of_memory();
        goto out;
    }
    if (o->file == NULL && (rc = check_document(text)) != BERTHCTL_EXIT_OK)
        goto out;
    if ((url = berthctl_group_url(c, o, name, "", "")) == NULL) {
        rc = berthctl_out_of_memory();
        goto out;
    }
    if (berthctl_http(c, "PUT", url, text, NULL, &r) != 0 || !berthctl_http_ok(r.status)) {
        rc = berthctl_http_error("create", &r);
        goto out;
    }
    if (o->no_wait) {
        fprintf(stderr, "%s: accepted (HTTP %ld, provisioningState %s)\n", name, r.status,
                berthctl_json_string(r.json, "properties.provisioningState")
                    ? berthctl_json_string(r.json, "properties.provisioningState")
                    : "unknown");
        rc = BERTHCTL_EXIT_OK;
        if (o->json && json_is_object(r.json))
            rc = berthctl_print_json(r.json);
        goto out;
    }
    rc = wait_group(c, name, url, json_is_object(r.json) ? r.json : NULL, &final);
    if (final != NULL) {
        if (rc == BERTHCTL_EXIT_FAILED)
            berthctl_group_print_events(final);
        int prc;
        if (o->json) {
            prc = berthctl_print_json(final);
        } else {
            json_t *hosts = berthctl_group_hosts(c, o, name);
            char key[512];
            berthctl_group_host_key(final, key, sizeof key);
            prc = berthctl_group_print_summary(
                final, json_string_value(json_object_get(hosts, key)));
            json_decref(hosts);
        }
        if (rc == BERTHCTL_EXIT_OK)
            rc = prc;
    }
out:
    if (text != NULL) {
        berthctl_wipe(text);                 /* it may hold secure values           */
        free(text);
    }
    json_decref(doc);
    json_decref(final);
    berthctl_response_free(&r);
    free(name);
    free(url);
    return rc;
}

