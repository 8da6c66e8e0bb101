/*
 * container_verbs.c: `berthctl container show|list|delete|restart|stop|
 * start|logs|exec`: the URLs of a group and its containers, the GETs, the
 * actions (a DELETE waits until the group is gone unless --no-wait), the
 * logs (--follow: polled, only what is new printed, until the group ends),
 * and exec's request (its session then runs over the returned WebSocket,
 * ws.c).
 *
 * Results go to stdout (tables or JSON with secrets redacted), errors to
 * stderr.  The exec password is a secret: it is sent, never printed, and
 * wiped from every buffer that held it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "berthctl.h"

#define PAGES_MAX 10000                 /* nextLink pages followed          */

/* ---- URLs ------------------------------------------------------------------------- */

/* berthctl_group_url() with api-version `apiv`. */
static char *group_url_at(berthctl_client_t *c, const berthctl_container_options_t *o,
                          const char *name, const char *suffix, const char *apiv,
                          const char *query)
{
    char *sub = curl_easy_escape(c->curl, o->subscription, 0);
    char *rg = curl_easy_escape(c->curl, o->rg, 0);
    char *n = curl_easy_escape(c->curl, name, 0);
    berthctl_string_t b = {0};
    if (sub == NULL || rg == NULL || n == NULL)
        b.oom = true;
    berthctl_string_printf(&b,
                           "%s/subscriptions/%s/resourceGroups/%s/providers/"
                           "Microsoft.ContainerInstance/containerGroups/%s%s?api-version=%s%s",
                           c->base, sub, rg, n, suffix, apiv, query);
    curl_free(sub);
    curl_free(rg);
    curl_free(n);
    return berthctl_string_take(&b);
}

/* Contract (berthctl.h). */
char *berthctl_group_url(berthctl_client_t *c, const berthctl_container_options_t *o,
                         const char *name, const char *suffix, const char *query)
{
    return group_url_at(c, o, name, suffix, BERTHCTL_ACI_API_VERSION, query);
}

/* The URL of a container's sub-resource ("logs", "exec"). */
static char *container_url(berthctl_client_t *c, const berthctl_container_options_t *o,
                           const char *container, const char *what, const char *query)
{
    char *cn = curl_easy_escape(c->curl, container, 0);
    if (cn == NULL)
        return NULL;
    berthctl_string_t b = {0};
    berthctl_string_printf(&b, "/containers/%s/%s", cn, what);
    curl_free(cn);
    char *suffix = berthctl_string_take(&b);
    if (suffix == NULL)
        return NULL;
    char *url = berthctl_group_url(c, o, o->name, suffix, query);
    free(suffix);
    return url;
}

/* ---- the verbs -------------------------------------------------------------------- */

/* GETs `url` into *out (a JSON object); an exit status, the error printed. */
static int get_object(berthctl_client_t *c, const char *url, const char *what, json_t **out)
{
    *out = NULL;
    if (url == NULL)
        return berthctl_out_of_memory();
    berthctl_response_t r;
    int rc = BERTHCTL_EXIT_OK;
    if (berthctl_http(c, "GET", url, NULL, NULL, &r) != 0 || !berthctl_http_ok(r.status) ||
        !json_is_object(r.json)) {
        if (r.status != 0 && berthctl_http_ok(r.status))
            fprintf(stderr, "berthctl: %s: the answer is not a JSON object\n", what);
        rc = berthctl_http_ok(r.status) ? BERTHCTL_EXIT_HTTP : berthctl_http_error(what, &r);
    } else {
        *out = json_incref(r.json);
    }
    berthctl_response_free(&r);
    return rc;
}

/* GETs the group into *out.  Returns an exit status. */
static int get_group(berthctl_client_t *c, const berthctl_container_options_t *o, const char *what,
                     json_t **out)
{
    char *url = berthctl_group_url(c, o, o->name, "", "");
    int rc = get_object(c, url, what, out);
    free(url);
    return rc;
}

/* The last data point of a series that has an average, or NULL. */
static json_t *latest_average(json_t *series)
{
    json_t *data = json_object_get(series, "data");
    for (size_t i = json_array_size(data); i > 0; i--)
        if (json_object_get(json_array_get(data, i - 1), "average") != NULL)
            return json_array_get(data, i - 1);
    return NULL;
}

/* Prints Azure Monitor's answer `m` as a table: each series' latest
 * average. */
static int print_metrics(json_t *m)
{
    berthctl_table_t t = {.ncols = 5};
    static const char *const head[] = {"METRIC", "CONTAINER", "TIME", "AVERAGE", "UNIT"};
    for (size_t i = 0; i < 5; i++)
        berthctl_table_add(&t, head[i]);
    size_t i, j;
    json_t *metric, *series;
    json_array_foreach(json_object_get(m, "value"), i, metric)
    json_array_foreach(json_object_get(metric, "timeseries"), j, series)
    {
        json_t *pt = latest_average(series);
        char avg[64] = "";
        if (pt != NULL)
            berthctl_format_number(avg, sizeof avg,
                                   json_number_value(json_object_get(pt, "average")));
        berthctl_table_add(&t, berthctl_json_string(metric, "name.value"));
        berthctl_table_add(&t, json_string_value(json_object_get(
                                   json_array_get(json_object_get(series, "metadatavalues"), 0),
                                   "value")));
        berthctl_table_add(&t, pt != NULL ? berthctl_json_string(pt, "timeStamp") : NULL);
        berthctl_table_add(&t, avg);
        berthctl_table_add(&t, berthctl_json_string(metric, "unit"));
    }
    return berthctl_table_print(&t);
}

/* `show --metrics`: the group's usage over the last hour, per minute. */
static int show_metrics(berthctl_client_t *c, const berthctl_container_options_t *o)
{
    json_t *m;
    char *url = group_url_at(c, o, o->name, "/providers/Microsoft.Insights/metrics",
                             "2018-01-01", "&interval=PT1M&aggregation=Average");
    int rc = get_object(c, url, "show --metrics", &m);
    free(url);
    if (rc != BERTHCTL_EXIT_OK)
        return rc;
    if (!o->json)
        putchar('\n');
    rc = o->json ? berthctl_print_json(m) : print_metrics(m);
    json_decref(m);
    return rc;
}

/* Contract (berthctl.h). */
int berthctl_container_show(berthctl_client_t *c, const berthctl_container_options_t *o)
{
    json_t *g;
    int rc = get_group(c, o, "show", &g);
    if (rc != BERTHCTL_EXIT_OK)
        return rc;
    if (o->json && !o->metrics) {
        rc = berthctl_print_json(g);
    } else if (!o->json) {
        json_t *hosts = berthctl_group_hosts(c, o, o->name);
        char key[512];
        berthctl_group_host_key(g, key, sizeof key);
        rc = berthctl_group_print_summary(g, json_string_value(json_object_get(hosts, key)));
        json_decref(hosts);
    }
    json_decref(g);
    if (rc == BERTHCTL_EXIT_OK && o->metrics)
        rc = show_metrics(c, o);
    return rc;
}

/* Turns a nextLink into a URL: absolute as given, or relative to the endpoint. */
static char *next_url(berthctl_client_t *c, const char *link)
{
    berthctl_string_t b = {0};
    if (strncmp(link, "http://", 7) == 0 || strncmp(link, "https://", 8) == 0)
        berthctl_string_printf(&b, "%s", link);
    else
        berthctl_string_printf(&b, "%s%s%s", c->base, link[0] == '/' ? "" : "/", link);
    return berthctl_string_take(&b);
}

/* Contract (berthctl.h). */
const char *berthctl_group_host_key(json_t *g, char *out, size_t cap)
{
    char rg[256];
    berthctl_group_resource_group(g, rg, sizeof rg);
    for (char *p = rg; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    const char *name = berthctl_json_string(g, "name");
    snprintf(out, cap, "%s/%s", rg, name ? name : "");
    return out;
}

/* Contract (berthctl.h). */
json_t *berthctl_group_hosts(berthctl_client_t *c, const berthctl_container_options_t *o,
                             const char *name)
{
    char *sub = curl_easy_escape(c->curl, o->subscription, 0);
    char *rg = o->rg ? curl_easy_escape(c->curl, o->rg, 0) : NULL;
    char *n = name && o->rg ? curl_easy_escape(c->curl, name, 0) : NULL;
    berthctl_string_t b = {0};
    berthctl_string_printf(&b, "%s/berth/containerGroups?subscription=%s", c->base,
                           sub ? sub : "");
    if (rg != NULL)
        berthctl_string_printf(&b, "&resourceGroup=%s", rg);
    if (n != NULL)
        berthctl_string_printf(&b, "&name=%s", n);
    curl_free(sub);
    curl_free(rg);
    curl_free(n);
    char *url = berthctl_string_take(&b);
    json_t *hosts = json_object();
    for (int page = 0; url != NULL && hosts != NULL && page < PAGES_MAX; page++) {
        berthctl_response_t r;
        json_t *value = NULL;
        if (berthctl_http(c, "GET", url, NULL, NULL, &r) == 0 && r.status == 200)
            value = json_object_get(r.json, "value");
        if (!json_is_array(value)) {
            berthctl_response_free(&r);
            json_decref(hosts);
            hosts = NULL;
            break;
        }
        size_t i;
        json_t *e;
        json_array_foreach(value, i, e)
        {
            char key[512], lrg[256];
            const char *erg = json_string_value(json_object_get(e, "resourceGroup"));
            const char *ename = json_string_value(json_object_get(e, "name"));
            const char *host = json_string_value(json_object_get(e, "host"));
            if (erg == NULL || ename == NULL)
                continue;
            snprintf(lrg, sizeof lrg, "%s", erg);
            for (char *p = lrg; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            snprintf(key, sizeof key, "%s/%s", lrg, ename);
            json_object_set_new(hosts, key, json_string(host ? host : ""));
        }
        free(url);
        url = NULL;
        const char *link = berthctl_json_string(r.json, "nextLink");
        if (link != NULL && *link != '\0')
            url = next_url(c, link);
        berthctl_response_free(&r);
    }
    free(url);
    return hosts;
}

/* Contract (berthctl.h). */
int berthctl_container_list(berthctl_client_t *c, const berthctl_container_options_t *o)
{
    char *sub = curl_easy_escape(c->curl, o->subscription, 0);
    char *rg = o->rg ? curl_easy_escape(c->curl, o->rg, 0) : NULL;
    berthctl_string_t b = {0};
    if (sub == NULL || (o->rg != NULL && rg == NULL))
        b.oom = true;
    berthctl_string_printf(&b, "%s/subscriptions/%s", c->base, sub ? sub : "");
    if (rg != NULL)
        berthctl_string_printf(&b, "/resourceGroups/%s", rg);
    berthctl_string_printf(&b, "/providers/Microsoft.ContainerInstance/"
                               "containerGroups?api-version=" BERTHCTL_ACI_API_VERSION);
    curl_free(sub);
    curl_free(rg);
    char *url = berthctl_string_take(&b);
    json_t *all = json_array();
    if (url == NULL || all == NULL) {
        free(url);
        json_decref(all);
        return berthctl_out_of_memory();
    }
    int rc = BERTHCTL_EXIT_OK;
    for (int page = 0; url != NULL; page++) {
        if (page >= PAGES_MAX) {
            fprintf(stderr, "berthctl: list: more than %d pages; stopping\n", PAGES_MAX);
            break;
        }
        berthctl_response_t r;
        if (berthctl_http(c, "GET", url, NULL, NULL, &r) != 0 || !berthctl_http_ok(r.status)) {
            rc = berthctl_http_error("list", &r);
            berthctl_response_free(&r);
            break;
        }
        json_t *value = json_object_get(r.json, "value");
        if (!json_is_array(value)) {
            fprintf(stderr, "berthctl: list: the answer has no \"value\" array\n");
            berthctl_response_free(&r);
            rc = BERTHCTL_EXIT_HTTP;
            break;
        }
        json_array_extend(all, value);
        free(url);
        url = NULL;
        const char *link = berthctl_json_string(r.json, "nextLink");
        if (link != NULL && *link != '\0' && (url = next_url(c, link)) == NULL)
            rc = berthctl_out_of_memory();
        berthctl_response_free(&r);
    }
    free(url);
    if (rc == BERTHCTL_EXIT_OK) {
        if (o->json) {
            rc = berthctl_print_json(all);
        } else {
            static const char *const heads[] = {"NAME", "RESOURCE-GROUP", "STATE",
                                                "PROVISIONING", "HOST", "IMAGE", "CPU",
                                                "MEMORY", "LOCATION"};
            berthctl_table_t t = {.ncols = 9};
            for (size_t i = 0; i < 9; i++)
                berthctl_table_add(&t, heads[i]);
            json_t *hosts = berthctl_group_hosts(c, o, NULL);
            size_t i;
            json_t *g;
            char buf[512], rgb[256];
            json_array_foreach(all, i, g)
            {
                berthctl_table_add(&t, berthctl_json_string(g, "name"));
                berthctl_table_add(&t, berthctl_group_resource_group(g, rgb, sizeof rgb));
                berthctl_table_add(&t, berthctl_json_string(g, "properties.instanceView.state"));
                berthctl_table_add(&t, berthctl_json_string(g, "properties.provisioningState"));
                const char *host = json_string_value(
                    json_object_get(hosts, berthctl_group_host_key(g, buf, sizeof buf)));
                berthctl_table_add(&t, host != NULL && host[0] != '\0' ? host : "-");
                json_t *cs = berthctl_json_get(g, "properties.containers");
                const char *image = berthctl_json_string(json_array_get(cs, 0), "properties.image");
                if (image != NULL && json_array_size(cs) > 1) {
                    snprintf(buf, sizeof buf, "%s (+%zu)", image, json_array_size(cs) - 1);
                    berthctl_table_add(&t, buf);
                } else {
                    berthctl_table_add(&t, image);
                }
                double cpu, mem;
                berthctl_group_totals(g, &cpu, &mem);
                berthctl_format_number(buf, sizeof buf, cpu);
                berthctl_table_add(&t, buf);
                berthctl_format_number(buf, sizeof buf, mem);
                strcat(buf, " GB");
                berthctl_table_add(&t, buf);
                berthctl_table_add(&t, berthctl_json_string(g, "location"));
            }
            json_decref(hosts);
            rc = berthctl_table_print(&t);
        }
    }
    json_decref(all);
    return rc;
}

/* Contract (berthctl.h): POSTs (empty body) or DELETEs the group or a
 * sub-resource. */
int berthctl_container_action(berthctl_client_t *c, const berthctl_container_options_t *o,
                              const char *method, const char *suffix, const char *done)
{
    char *url = berthctl_group_url(c, o, o->name, suffix, "");
    if (url == NULL)
        return berthctl_out_of_memory();
    berthctl_response_t r;
    int rc = BERTHCTL_EXIT_OK;
    if (berthctl_http(c, method, url, strcmp(method, "POST") == 0 ? "" : NULL, NULL, &r) != 0 ||
        !berthctl_http_ok(r.status)) {
        rc = berthctl_http_error(o->verb_name, &r);
    } else if (o->verb == BERTHCTL_VERB_DELETE && r.status == 204) {
        fprintf(stderr, "berthctl: %s/%s: no such container group (nothing deleted)\n",
                o->rg, o->name);
    } else if (o->verb == BERTHCTL_VERB_DELETE && r.status == 202 && !o->no_wait) {
        /* accepted: wait until the group is gone */
        for (double pause = 0.2;; pause = pause * 1.5 > 2 ? 2 : pause * 1.5) {
            berthctl_response_t g;
            berthctl_http(c, "GET", url, NULL, NULL, &g);
            long st = g.status;
            berthctl_response_free(&g);
            if (st == 404)
                break;
            double left = (double)(c->deadline_ms - berth__clock_monotonic_ms()) / 1000;
            if (left <= 0) {
                fprintf(stderr, "berthctl: %s/%s: timed out waiting for the deletion\n",
                        o->rg, o->name);
                rc = BERTHCTL_EXIT_FAILED;
                break;
            }
            berth__clock_sleep_ms((int64_t)((pause < left ? pause : left) * 1000));
        }
        if (rc == BERTHCTL_EXIT_OK)
            fprintf(stderr, "berthctl: %s/%s: %s\n", o->rg, o->name, done);
    } else {
        fprintf(stderr, "berthctl: %s/%s: %s\n", o->rg, o->name, done);
        if (o->json && json_is_object(r.json))
            rc = berthctl_print_json(r.json);
    }
    berthctl_response_free(&r);
    free(url);
    return rc;
}

/* The container to act on: --container-name, or the group's first one. */
static int pick_container(berthctl_client_t *c, const berthctl_container_options_t *o, char **out)
{
    *out = NULL;
    if (o->container != NULL) {
        *out = strdup(o->container);
        return *out ? BERTHCTL_EXIT_OK : berthctl_out_of_memory();
    }
    json_t *g;
    int rc = get_group(c, o, o->verb_name, &g);
    if (rc != BERTHCTL_EXIT_OK)
        return rc;
    const char *name = berthctl_json_string(
        json_array_get(berthctl_json_get(g, "properties.containers"), 0), "name");
    if (name == NULL) {
        fprintf(stderr, "berthctl: %s: the group has no containers\n", o->verb_name);
        rc = BERTHCTL_EXIT_HTTP;
    } else if ((*out = strdup(name)) == NULL) {
        rc = berthctl_out_of_memory();
    }
    json_decref(g);
    return rc;
}

/* The length of the longest end of prev[0..plen) that begins cur[0..clen)
 * (what of cur was printed already). */
static size_t overlap(const char *prev, size_t plen, const char *cur, size_t clen)
{
    if (clen >= plen && memcmp(prev, cur, plen) == 0)
        return plen;
    for (size_t k = plen < clen ? plen : clen; k > 0; k--)
        if (memcmp(prev + plen - k, cur, k) == 0)
            return k;
    return 0;
}

/* Whether the group has stopped for good: gone (404), or its state
 * Stopped, Succeeded or Failed.  *rc gets an error's exit status. */
static bool group_ended(berthctl_client_t *c, const berthctl_container_options_t *o, int *rc)
{
    char *url = berthctl_group_url(c, o, o->name, "", "");
    if (url == NULL) {
        *rc = berthctl_out_of_memory();
        return true;
    }
    berthctl_response_t r;
    bool ended = false;
    if (berthctl_http(c, "GET", url, NULL, NULL, &r) != 0) {
        *rc = berthctl_http_error("logs", &r);
        ended = true;
    } else if (r.status == 404) {
        ended = true;
    } else if (berthctl_http_ok(r.status)) {
        const char *st = berthctl_json_string(r.json, "properties.instanceView.state");
        ended = st != NULL && (strcmp(st, "Stopped") == 0 || strcmp(st, "Succeeded") == 0 ||
                               strcmp(st, "Failed") == 0);
    }
    berthctl_response_free(&r);
    free(url);
    return ended;
}

/* `logs --follow`: polls the logs route every BERTHCTL_FOLLOW_MS and prints
 * what is new (the first round as --tail says), until the group ends or
 * the process is interrupted; each round's exchanges are bounded by
 * --timeout. */
static int logs_follow(berthctl_client_t *c, const berthctl_container_options_t *o,
                       const char *container)
{
    char *prev = NULL;
    size_t plen = 0;
    bool first = true, ended = false;
    int rc = BERTHCTL_EXIT_OK;
    for (;;) {
        c->deadline_ms = berth__clock_monotonic_ms() + (int64_t)(o->timeout_s * 1000);
        char query[64] = "";
        long tail = first ? o->tail : BERTHCTL_FOLLOW_TAIL;
        if (tail >= 0)
            snprintf(query, sizeof query, "&tail=%ld", tail);
        if (o->timestamps)
            strcat(query, "&timestamps=true");
        char *url = container_url(c, o, container, "logs", query);
        if (url == NULL) {
            rc = berthctl_out_of_memory();
            break;
        }
        berthctl_response_t r;
        int got = berthctl_http(c, "GET", url, NULL, NULL, &r);
        free(url);
        if (got != 0 || (!berthctl_http_ok(r.status) && r.status != 409 && r.status != 404)) {
            rc = berthctl_http_error("logs", &r);
            berthctl_response_free(&r);
            break;
        }
        json_t *content = json_object_get(r.json, "content");
        if (berthctl_http_ok(r.status) && json_is_string(content)) {
            const char *cur = json_string_value(content);
            size_t clen = json_string_length(content);
            size_t k = first ? 0 : overlap(prev, plen, cur, clen);
            fwrite(cur + k, 1, clen - k, stdout);
            fflush(stdout);
            char *copy = malloc(clen + 1);
            if (copy == NULL) {
                berthctl_response_free(&r);
                rc = berthctl_out_of_memory();
                break;
            }
            memcpy(copy, cur, clen + 1);
            free(prev);
            prev = copy;
            plen = clen;
        }
        berthctl_response_free(&r);
        first = false;
        if (ended)
            break;
        /* one more round once the group ended: its last lines */
        ended = group_ended(c, o, &rc);
        if (rc != BERTHCTL_EXIT_OK)
            break;
        if (!ended) {
            struct timespec ts = {BERTHCTL_FOLLOW_MS / 1000, (BERTHCTL_FOLLOW_MS % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    free(prev);
    return rc;
}

/* Contract (berthctl.h). */
int berthctl_container_logs(berthctl_client_t *c, const berthctl_container_options_t *o)
{
    char *container;
    int rc = pick_container(c, o, &container);
    if (rc != BERTHCTL_EXIT_OK)
        return rc;
    if (o->follow) {
        rc = logs_follow(c, o, container);
        free(container);
        return rc;
    }
    char query[64] = "";
    if (o->tail >= 0)
        snprintf(query, sizeof query, "&tail=%ld", o->tail);
    if (o->timestamps)
        strcat(query, "&timestamps=true");
    char *url = container_url(c, o, container, "logs", query);
    free(container);
    if (url == NULL)
        return berthctl_out_of_memory();
    berthctl_response_t r;
    if (berthctl_http(c, "GET", url, NULL, NULL, &r) != 0 || !berthctl_http_ok(r.status)) {
        rc = berthctl_http_error("logs", &r);
    } else if (o->json && json_is_object(r.json)) {
        rc = berthctl_print_json(r.json);
    } else {
        json_t *content = json_object_get(r.json, "content");
        if (json_is_string(content)) {
            fwrite(json_string_value(content), 1, json_string_length(content), stdout);
        } else if (!json_is_null(content) && content != NULL) {
            fprintf(stderr, "berthctl: logs: the answer has no \"content\" string\n");
            rc = BERTHCTL_EXIT_HTTP;
        }
    }
    berthctl_response_free(&r);
    free(url);
    return rc;
}

/* Contract (berthctl.h). */
int berthctl_container_exec(berthctl_client_t *c, const berthctl_container_options_t *o)
{
    char *container;
    int rc = pick_container(c, o, &container);
    if (rc != BERTHCTL_EXIT_OK)
        return rc;
    char *url = container_url(c, o, container, "exec", "");
    free(container);
    /* A terminal on stdin gets the process a TTY of its size; without one
     * the process reads pipes, as berthd does when terminalSize is absent. */
    bool tty = isatty(STDIN_FILENO);
    int rows = 24, cols = 80;
    if (tty)
        (void)berthctl_terminal_size(&rows, &cols);
    json_t *req = json_pack("{s:s}", "command", o->exec_command);
    if (req != NULL && tty &&
        json_object_set_new(req, "terminalSize", json_pack("{s:i,s:i}", "rows", rows, "cols",
                                                           cols)) != 0) {
        free(url);
        json_decref(req);
        return berthctl_out_of_memory();
    }
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (url == NULL || body == NULL) {
        free(url);
        free(body);
        return req == NULL ? berthctl_usage_error("%s", "--exec-command is not valid UTF-8")
                           : berthctl_out_of_memory();
    }
    berthctl_response_t r;
    if (berthctl_http(c, "POST", url, body, NULL, &r) != 0 || !berthctl_http_ok(r.status)) {
        rc = berthctl_http_error("exec", &r);
        goto out;
    }
    const char *uri = berthctl_json_string(r.json, "webSocketUri");
    const char *password = berthctl_json_string(r.json, "password");
    if (uri == NULL || password == NULL) {
        fprintf(stderr, "berthctl: exec: the answer has no webSocketUri and password\n");
        rc = BERTHCTL_EXIT_HTTP;
        goto out;
    }
    rc = berthctl_ws_exec(c, uri, password, tty);
out:
    if (r.body != NULL && r.len > 0)
        memset(r.body, 0, r.len);   /* the answer held the password        */
    if (json_is_string(json_object_get(r.json, "password")))
        berthctl_wipe((char *)json_string_value(json_object_get(r.json, "password")));
    berthctl_response_free(&r);
    free(url);
    free(body);
    return rc;
}
