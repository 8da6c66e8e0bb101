/*
 * stats.c: the runc plugin's usage counters (berth_plugin_ops_t.stats),
 * read from the kernel: each running container's cgroups (found through
 * /proc/<init pid>/cgroup) for its CPU time and working set -- on cgroup
 * v2 cpu.stat's usage_usec and memory.current less memory.stat's
 * inactive_file, on v1 cpuacct.usage and memory.usage_in_bytes less
 * memory.stat's total_inactive_file -- and the sandbox's network namespace
 * (/proc/<sandbox pid>/net/dev, every interface but lo) for the group's
 * network bytes.  A counter that cannot be read is reported as 0.
 *
 * It must never start, stop or change a container: it reads.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runc.h"

#define STAT_FILE_MAX 8192          /* bytes of a cgroup or /proc file read */

/* The value of `name` in a "name value" per line text, or 0. */
static uint64_t keyed(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return strtoull(p + n + 1, NULL, 10);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return 0;
}

/* The cgroup of process `pid` that holds `controller` ("" for the v2
 * hierarchy), as /sys/fs/cgroup[/controller]<path> into dir[cap]; false
 * when there is none or the process is gone. */
static bool cgroup_dir(int pid, const char *controller, char *dir, size_t cap)
{
    char path[64], text[STAT_FILE_MAX];
    snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
    if (read_small(path, text, sizeof text) <= 0)
        return false;
    /* Lines "ID:CONTROLLERS:PATH"; v2's is "0::PATH". */
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *c = strchr(line, ':'), *p = c != NULL ? strchr(c + 1, ':') : NULL;
        if (p == NULL)
            continue;
        *c++ = '\0';
        *p++ = '\0';
        bool match = controller[0] == '\0' ? c[0] == '\0' && strcmp(line, "0") == 0
                                           : strstr(c, controller) != NULL;
        /* v1 mounts each hierarchy under its controller's name ("cpuacct"
         * for a "cpu,cpuacct" one, through the link distributions make). */
        if (match)
            return path_fmt(dir, cap, "/sys/fs/cgroup%s%s%s", controller[0] ? "/" : "",
                            controller, p);
    }
    return false;
}

/* Where a cgroup version keeps a container's counters: CPU time in
 * `cpu_file` (the value of `cpu_key` in it, or the whole file when NULL)
 * in units of `cpu_ns` ns, memory in use in `memory_file`, the inactive
 * file cache as `inactive_key` of memory.stat; each under the cgroup that
 * holds the named controller ("" for v2's one hierarchy). */
static const struct cgroup_files {
    const char *cpu_controller, *cpu_file, *cpu_key;
    uint64_t cpu_ns;
    const char *memory_controller, *memory_file, *inactive_key;
} CGROUP_V2 = {"", "cpu.stat", "usage_usec", 1000, "", "memory.current", "inactive_file"},
  CGROUP_V1 = {"cpuacct", "cpuacct.usage", NULL, 1, "memory", "memory.usage_in_bytes",
               "total_inactive_file"};

/* File `file` of the cgroup of `pid` that holds `controller` into
 * text[cap]; false when it cannot be read. */
static bool cgroup_read(int pid, const char *controller, const char *file, char *text,
                        size_t cap)
{
    char dir[RUNC_PATH_MAX], path[RUNC_PATH_MAX + 32];
    return cgroup_dir(pid, controller, dir, sizeof dir) &&
           path_fmt(path, sizeof path, "%s/%s", dir, file) && read_small(path, text, cap) > 0;
}

/* A running container's counters from the cgroups of its init `pid`:
 * cgroup v2 when the host runs it, else v1's cpuacct and memory. */
static void cgroup_stats(int pid, berth_container_stats_t *out)
{
    const struct cgroup_files *f =
        file_exists("/sys/fs/cgroup/cgroup.controllers") ? &CGROUP_V2 : &CGROUP_V1;
    char text[STAT_FILE_MAX];
    uint64_t current = 0, inactive = 0;
    if (cgroup_read(pid, f->cpu_controller, f->cpu_file, text, sizeof text))
        out->cpu_ns = (f->cpu_key != NULL ? keyed(text, f->cpu_key) : strtoull(text, NULL, 10)) *
                      f->cpu_ns;
    if (cgroup_read(pid, f->memory_controller, f->memory_file, text, sizeof text))
        current = strtoull(text, NULL, 10);
    if (cgroup_read(pid, f->memory_controller, "memory.stat", text, sizeof text))
        inactive = keyed(text, f->inactive_key);
    out->memory_bytes = inactive < current ? current - inactive : current;
}

/* The bytes received and sent on every interface but lo of the network
 * namespace of process `pid`. */
static void netns_stats(int pid, berth_group_stats_t *out)
{
    char path[64], text[STAT_FILE_MAX];
    snprintf(path, sizeof path, "/proc/%d/net/dev", pid);
    if (read_small(path, text, sizeof text) <= 0)
        return;
    /* Two header lines, then "  name: rx_bytes packets ... (8) tx_bytes ...". */
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        char *name = line + strspn(line, " ");
        if (strcmp(name, "lo") == 0)
            continue;
        uint64_t v[9];
        if (sscanf(colon + 1,
                   "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                   " %" SCNu64 " %" SCNu64 " %" SCNu64,
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]) == 9) {
            out->rx_bytes += v[0];
            out->tx_bytes += v[8];
        }
    }
}

/* The process id of runc container `rid` when it runs, else 0. */
static int running_pid(runc_ctx_t *ctx, const char *rid)
{
    runc_state_t state = RUNC_ABSENT;
    int pid = 0;
    berth_error_t ignored;
    if (runc_state_get(ctx, rid, &state, &pid, &ignored) != 0 || state != RUNC_RUNNING)
        return 0;
    return pid;
}

/* The plugin's stats operation (berth-plugin.h). */
int op_stats(void *vctx, const char *key, berth_group_stats_t *out, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    memset(out, 0, offsetof(berth_group_stats_t, containers));
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL)
        return oom(err);
    int rc = group_find(ctx, key, g, err);
    if (rc != 0) {
        free(g);
        return rc;
    }
    char rid[RUNC_ID_MAX];
    runc_id(g->id, "sandbox", rid);
    int pid = running_pid(ctx, rid);
    if (pid > 0)
        netns_stats(pid, out);
    for (size_t i = 0; i < g->n; i++) {
        if (g->entries[i].init)
            continue;
        berth_container_stats_t *cs = &out->containers[out->ncontainers++];
        memset(cs, 0, sizeof *cs);
        snprintf(cs->name, sizeof cs->name, "%s", g->entries[i].name);
        runc_id(g->id, g->entries[i].sub, rid);
        pid = running_pid(ctx, rid);
        if (pid <= 0)
            continue;
        cs->running = true;
        cgroup_stats(pid, cs);
    }
    free(g);
    return 0;
}
