/*
 * host.c: `berthctl host list`: each host's state, zone, groups and CPU,
 * memory and GPU allocation as berthd's /berth/hosts reports them, with
 * utilization bars, or (--output json) the answer itself.
 *
 * `berthctl host cordon|uncordon|drain NAME`: berthd's operator routes
 * POST /berth/hosts/{NAME}/{action}; drain asks again every second
 * (showing what moved and what is left on stderr) until no group is left
 * (berthd stops the finished ones: restart policy Never or OnFailure, all
 * containers done) or --timeout passes.
 *
 * list only reads; the actions change nothing but through berthd.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "berthctl.h"

#define BAR_WIDTH 10

/* A utilization bar: "[#######...]  70%" (width BAR_WIDTH). */
static void format_bar(char *buf, size_t cap, uint64_t used, uint64_t total)
{
    char bar[BAR_WIDTH + 1];
    unsigned fill = 0, pct = 0;
    if (total > 0) {
        uint64_t u = used > total ? total : used;
        fill = (unsigned)((u * BAR_WIDTH + total / 2) / total);
        pct = (unsigned)((used * 100 + total / 2) / total);
    }
    for (unsigned i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    if (total > 0)
        snprintf(buf, cap, "[%s] %3u%%", bar, pct);
    else
        snprintf(buf, cap, "[%s]    -", bar);
}


/* Contract (berthctl.h): a table of the hosts, or their JSON; the GPU
 * column (SKU and counts; "-" when none) only when a host has GPUs. */
int berthctl_host_list(berthctl_client_t *c, const berthctl_container_options_t *o)
{
    berthctl_string_t b = {0};
    berthctl_string_printf(&b, "%s/berth/hosts", c->base);
    char *url = berthctl_string_take(&b);
    if (url == NULL)
        return berthctl_out_of_memory();
    berthctl_response_t r;
    int rc = BERTHCTL_EXIT_OK;
    if (berthctl_http(c, "GET", url, NULL, NULL, &r) != 0 || !berthctl_http_ok(r.status)) {
        rc = berthctl_http_error("host list", &r);
        goto out;
    }
    json_t *hosts = json_object_get(r.json, "value");
    if (!json_is_array(hosts)) {
        fprintf(stderr, "berthctl: host list: the answer has no \"value\" array\n");
        rc = BERTHCTL_EXIT_HTTP;
        goto out;
    }
    if (o->json) {
        rc = berthctl_print_json(r.json);
        goto out;
    }
    bool gpus = false;
    size_t i;
    json_t *h;
    json_array_foreach(hosts, i, h) gpus = gpus || berthctl_json_number(h, "gpuCount", 0) > 0;
    static const char *const heads[] = {"NAME", "STATE", "ZONE", "GROUPS", "CPU (cores)",
                                        "MEMORY (GiB)", "GPU"};
    size_t ncols = gpus ? 7 : 6;
    berthctl_table_t t = {.ncols = ncols};
    for (size_t k = 0; k < ncols; k++)
        berthctl_table_add(&t, heads[k]);
    json_array_foreach(hosts, i, h)
    {
        char bar[64], buf[160], a[32], z[32];
        berthctl_table_add(&t, berthctl_json_string(h, "name"));
        berthctl_table_add(&t, berthctl_json_string(h, "state"));
        berthctl_table_add(&t, berthctl_json_string(h, "zone"));
        snprintf(buf, sizeof buf, "%.0f", berthctl_json_number(h, "allocated.groups", 0));
        berthctl_table_add(&t, buf);
        double cores = berthctl_json_number(h, "cores", 0),
               mc = berthctl_json_number(h, "allocated.millicores", 0);
        format_bar(bar, sizeof bar, mc > 0 ? (uint64_t)mc : 0,
                cores > 0 ? (uint64_t)(cores * 1000) : 0);
        berthctl_format_number(a, sizeof a, mc / 1000);
        berthctl_format_number(z, sizeof z, cores);
        snprintf(buf, sizeof buf, "%s %s/%s", bar, a, z);
        berthctl_table_add(&t, buf);
        double mem = berthctl_json_number(h, "memoryMiB", 0),
               mm = berthctl_json_number(h, "allocated.memoryMiB", 0);
        format_bar(bar, sizeof bar, mm > 0 ? (uint64_t)mm : 0, mem > 0 ? (uint64_t)mem : 0);
        berthctl_format_number(a, sizeof a, mm / 1024);
        berthctl_format_number(z, sizeof z, mem / 1024);
        snprintf(buf, sizeof buf, "%s %s/%s", bar, a, z);
        berthctl_table_add(&t, buf);
        if (gpus) {
            double gc = berthctl_json_number(h, "gpuCount", 0);
            if (gc > 0) {
                snprintf(
                    buf, sizeof buf, "%.0f/%.0f %s", berthctl_json_number(h, "allocated.gpus", 0),
                    gc, berthctl_json_string(h, "gpuSku") ? berthctl_json_string(h, "gpuSku") : "");
                berthctl_table_add(&t, buf);
            } else {
                berthctl_table_add(&t, NULL);
            }
        }
    }
    rc = berthctl_table_print(&t);
out:
    berthctl_response_free(&r);
    free(url);
    return rc;
}

/* Prints the groups of a drain's answer member `what` on stderr, each
 * with its host or reason. */
static void print_groups(json_t *doc, const char *what, const char *label)
{
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(doc, what), i, g)
    {
        const char *id = json_is_string(g) ? json_string_value(g) : berthctl_json_string(g, "id");
        const char *host = berthctl_json_string(g, "host");
        const char *why = berthctl_json_string(g, "reason");
        fprintf(stderr, "  %s %s%s%s\n", label, id ? id : "?",
                host ? " -> " : why ? ": " : "", host ? host : why ? why : "");
    }
}

/* Contract (berthctl.h). */
int berthctl_host_action(berthctl_client_t *c, const berthctl_container_options_t *o)
{
    char *name = curl_easy_escape(c->curl, o->name, 0);
    berthctl_string_t b = {0};
    if (name == NULL)
        b.oom = true;
    berthctl_string_printf(&b, "%s/berth/hosts/%s/%s", c->base, name, o->verb_name);
    curl_free(name);
    char *url = berthctl_string_take(&b);
    if (url == NULL)
        return berthctl_out_of_memory();
    bool drain = strcmp(o->verb_name, "drain") == 0;
    int rc = BERTHCTL_EXIT_OK;
    size_t last_left = (size_t)-1;
    for (;;) {
        berthctl_response_t r;
        if (berthctl_http(c, "POST", url, "", NULL, &r) != 0 || !berthctl_http_ok(r.status)) {
            rc = berthctl_http_error(o->verb_name, &r);
            berthctl_response_free(&r);
            break;
        }
        size_t left = json_array_size(json_object_get(r.json, "remaining"));
        if (!drain || o->no_wait || left == 0) {
            if (o->json)
                rc = berthctl_print_json(r.json);
            else if (!drain)
                printf("host %s %s\n", o->name, berthctl_json_string(r.json, "state"));
            else {
                print_groups(r.json, "moved", "moved");
                print_groups(r.json, "stopped", "stopped (finished)");
                print_groups(r.json, "remaining", "left");
                printf("host %s %s\n", o->name, left == 0 ? "drained" : "draining");
            }
            berthctl_response_free(&r);
            break;
        }
        print_groups(r.json, "moved", "moved");
        if (left != last_left)
            fprintf(stderr, "host %s: %zu group(s) left to move\n", o->name, left);
        last_left = left;
        int64_t now = berth__clock_monotonic_ms();
        if (now + 1000 >= c->deadline_ms) {
            fprintf(stderr, "berthctl: drain: timed out after %gs with groups left on host %s:\n",
                    c->timeout_s, o->name);
            print_groups(r.json, "remaining", "left");
            berthctl_response_free(&r);
            rc = BERTHCTL_EXIT_FAILED;
            break;
        }
        berthctl_response_free(&r);
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    free(url);
    return rc;
}
