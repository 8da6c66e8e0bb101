/*
 * host.c: `berthctl host list`: each host's state, zone, groups and CPU,
 * memory and GPU allocation as berthd's /berth/hosts reports them, with
 * utilization bars, or (--output json) the answer itself.
 *
 * It only reads: it never changes a host or the cell.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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
