/*
 * trace.c: reads the Alibaba traces that berth-bench's `quality` scenario
 * replays (trace.h).  It only reads files under the traces folder, line by
 * line with bounded lines and fields: it never writes one.
 *
 * Workloads (paths below the traces folder):
 *
 *  alibaba-2017   alibaba-v2017/batch_task.csv: every task with a CPU and a
 *                 memory request is `number_of_instances` identical groups
 *                 arriving at the task's create time and leaving at its end
 *                 time (an end not after the start becomes start + 1 s).
 *                 CPU: the request in 1/100 core rounded up to whole cores,
 *                 as Berth accounts a group (0.5 core takes 1 core).
 *                 Memory: normalized to the largest machine, whose memory
 *                 is taken as 128 GiB (REF_2017_MIB): request MiB =
 *                 ceil(norm * 131072).  Hosts: the first `add` row of each
 *                 machine in alibaba-v2017/server_event.csv, by machine id:
 *                 its cores, and its normalized memory scaled the same way
 *                 (0.69 -> 90440 MiB).  No GPUs.
 *
 *  alibaba-2025   alibaba-gpu-v2025-dlrm/disaggregated_DLRM_trace.csv: one
 *                 group per instance, cpu_request vCPUs as cores,
 *                 memory_request GiB as ceil(GiB * 1024) MiB, gpu_request
 *                 GPUs; arrival creation_time (empty: running at t = 0),
 *                 departure deletion_time (empty: never).  The
 *                 max_instance_per_node anti-affinity is not modelled.
 *                 Hosts: alibaba-spot-gpu-v2026/node_info_df.csv (model,
 *                 GPU count, vCPUs), each model a GPU SKU registered with
 *                 offers of 1, 2, 4 and 8 GPUs up to 1024 cores and 8 TiB
 *                 (never binding).  That list has no memory: a host gets
 *                 the memory per core of the PAI 2020 hosts
 *                 (alibaba-pai-gpu-v2020: 512 GB for 96 cores), 16384/3
 *                 MiB per vCPU.  The trace names no GPU model: each GPU
 *                 instance asks for one model drawn (seeded) in proportion
 *                 to the models' GPU counts in that host list.
 *
 *  gpu-spot2026  the alibaba-2025 instances on the alibaba-2025 cluster,
 *                 replayed with the GPU figures below and the plain best-fit
 *                 baseline as well.
 *
 *  gpu-pai2020    the same instances on alibaba-pai-gpu-v2020/
 *                 pai_machine_spec.csv (machine, gpu_type, cap_cpu cores,
 *                 cap_mem GB as GiB, cap_gpu): the types P100, T4, MISC,
 *                 V100, V100M32 are the GPU SKUs, the CPU hosts have none.
 *
 *  gpu-spot2026-multi, gpu-pai2020-multi
 *                 a multi-GPU mix derived from the 2025 instances (whose GPU
 *                 instances all ask for one GPU): each GPU instance is
 *                 scaled by k GPUs, k drawn (seeded, per line) as 1 (55%),
 *                 2 (25%), 4 (15%) or 8 (5%); its cores and memory are
 *                 multiplied by k too, so the per-GPU share is the trace's.
 *                 Its model is drawn among the models with a host of at
 *                 least k GPUs, in proportion to their GPUs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

#define REF_2017_MIB 131072.0       /* memory of a machine of normalized memory 1.0 */
#define PAI_MIB_PER_CORE (512.0 * 1024.0 / 96.0)
#define LINE_MAX_BYTES 4096
#define FIELDS_MAX 32

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- input ---------------------------------------------------------------- */

/* Splits `line` in place at commas into at most FIELDS_MAX fields (the trace
 * files quote nothing); strips the line end.  Returns the field count. */
static size_t split(char *line, char **f)
{
    line[strcspn(line, "\r\n")] = '\0';
    size_t n = 0;
    char *p = line;
    while (n < FIELDS_MAX) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (c == NULL)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

static FILE *open_trace(const replay_options_t *o, const char *rel, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", o->traces_dir != NULL ? o->traces_dir : "../shared/traces",
             rel);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fprintf(stderr, "berth-bench: %s: %s\n", path, strerror(errno));
    return f;
}

/* The array `items` of `n` entries of `size` bytes with room for *cap,
 * grown (doubled, from `first`) when full: the array to keep, or NULL
 * (the old one untouched) without memory. */
static void *array_room(void *items, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return items;
    size_t c = *cap ? *cap * 2 : first;
    void *p = realloc(items, c * size);
    if (p != NULL)
        *cap = c;
    return p;
}

static int task_push(replay_workload_t *w, const task_t *t)
{
    task_t *p = array_room(w->tasks, w->ntasks, &w->captasks, sizeof *p, 4096);
    if (p == NULL)
        return -1;
    w->tasks = p;
    w->tasks[w->ntasks++] = *t;
    return 0;
}

static int spec_push(replay_workload_t *w, const host_spec_t *h)
{
    host_spec_t *p = array_room(w->specs, w->nspecs, &w->capspecs, sizeof *p, 1024);
    if (p == NULL)
        return -1;
    w->specs = p;
    w->specs[w->nspecs++] = *h;
    return 0;
}

/* The index of GPU model `name`, added when new; -1 when the table is full
 * or the name too long for a SKU. */
static int model_id(replay_workload_t *w, const char *name)
{
    for (size_t i = 0; i < w->nmodels; i++)
        if (strcmp(w->models[i], name) == 0)
            return (int)i;
    if (w->nmodels == MODELS_MAX || strlen(name) > BERTH_GPU_SKU_NAME_MAX || name[0] == '\0')
        return -1;
    snprintf(w->models[w->nmodels], sizeof w->models[0], "%s", name);
    return (int)w->nmodels++;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_num(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

typedef struct machine {
    uint64_t id;
    host_spec_t spec;
} machine_t;

static int cmp_machine(const void *a, const void *b)
{
    const machine_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

int bench_trace_load_2017(replay_workload_t *w, const replay_options_t *o)
{
    char path[4096], line[LINE_MAX_BYTES], *f[FIELDS_MAX];
    FILE *in = open_trace(o, "alibaba-v2017/server_event.csv", path, sizeof path);
    if (in == NULL)
        return -1;
    machine_t *ms = NULL;
    size_t nm = 0, cap = 0;
    int rc = 0;
    while (fgets(line, sizeof line, in) != NULL) {
        size_t n = split(line, f);
        uint64_t id, cores;
        double mem;
        if (n < 6 || strcmp(f[2], "add") != 0 || !parse_u64(f[1], &id) ||
            !parse_u64(f[4], &cores) || !parse_num(f[5], &mem) || cores == 0 || mem <= 0)
            continue;
        bool seen = false;
        for (size_t i = 0; i < nm && !seen; i++)
            seen = ms[i].id == id;
        if (seen)
            continue;
        if (nm == cap) {
            cap = cap ? cap * 2 : 2048;
            machine_t *p = realloc(ms, cap * sizeof *p);
            if (p == NULL) {
                rc = -1;
                break;
            }
            ms = p;
        }
        ms[nm].id = id;
        ms[nm].spec = (host_spec_t){(uint32_t)cores, (uint32_t)lround(mem * REF_2017_MIB), 0, 0};
        nm++;
    }
    fclose(in);
    if (rc == 0 && nm == 0) {
        fprintf(stderr, "berth-bench: %s: no machine added\n", path);
        rc = -1;
    }
    if (rc == 0) {
        qsort(ms, nm, sizeof *ms, cmp_machine);
        for (size_t i = 0; i < nm && rc == 0; i++)
            rc = spec_push(w, &ms[i].spec);
    }
    free(ms);
    if (rc != 0)
        return -1;

    if ((in = open_trace(o, "alibaba-v2017/batch_task.csv", path, sizeof path)) == NULL)
        return -1;
    size_t lineno = 0;
    while (fgets(line, sizeof line, in) != NULL) {
        lineno++;
        size_t n = split(line, f);
        uint64_t inst, cpu;
        double start, end, mem;
        if (n < 8 || !parse_num(f[0], &start) || !parse_num(f[1], &end) ||
            !parse_u64(f[4], &inst) || !parse_u64(f[6], &cpu) || !parse_num(f[7], &mem) ||
            inst == 0 || inst > UINT32_MAX || cpu == 0 || mem <= 0 || mem > 1.0)
            continue;           /* the header, and tasks without requests */
        task_t t = {0};
        t.start = (int64_t)llround(start * 1000.0);
        t.end = (int64_t)llround(end * 1000.0);
        if (t.end <= t.start)
            t.end = t.start + 1000;
        t.order = mix64(o->seed ^ mix64(lineno));
        t.n = (uint32_t)inst;
        t.cores = (uint32_t)((cpu + 99) / 100);
        t.memory_mib = (uint32_t)ceil(mem * REF_2017_MIB);
        if (task_push(w, &t) != 0) {
            fclose(in);
            return -1;
        }
    }
    fclose(in);
    return 0;
}

/* The PAI 2020 host list: machine, gpu_type, cap_cpu, cap_mem (GB), cap_gpu. */
static int load_pai_hosts(replay_workload_t *w, const replay_options_t *o)
{
    char path[4096], line[LINE_MAX_BYTES], *f[FIELDS_MAX];
    FILE *in = open_trace(o, "alibaba-pai-gpu-v2020/pai_machine_spec.csv", path, sizeof path);
    if (in == NULL)
        return -1;
    while (fgets(line, sizeof line, in) != NULL) {
        size_t n = split(line, f);
        uint64_t gpus, cpus, mem;
        if (n < 5 || !parse_u64(f[4], &gpus) || !parse_u64(f[2], &cpus) ||
            !parse_u64(f[3], &mem) || cpus == 0 || mem == 0 || gpus > 63)
            continue;
        int m = gpus > 0 ? model_id(w, f[1]) : 0;
        if (m < 0) {
            fprintf(stderr, "berth-bench: %s: GPU type '%s' left out\n", path, f[1]);
            continue;
        }
        host_spec_t h = {(uint32_t)cpus, (uint32_t)(mem * 1024u), (uint32_t)gpus, (uint32_t)m};
        if (gpus > 0)
            w->model_gpus[m] += gpus;
        if (spec_push(w, &h) != 0) {
            fclose(in);
            return -1;
        }
    }
    fclose(in);
    return 0;
}

/* pai: hosts from the PAI 2020 list instead of the spot 2026 one; multi:
 * the multi-GPU mix (see the top of this file). */
int bench_trace_load_2025(replay_workload_t *w, const replay_options_t *o, bool pai, bool multi)
{
    char path[4096], line[LINE_MAX_BYTES], *f[FIELDS_MAX];
    FILE *in = NULL;
    if (pai) {
        if (load_pai_hosts(w, o) != 0)
            return -1;
        goto instances;
    }
    in = open_trace(o, "alibaba-spot-gpu-v2026/node_info_df.csv", path, sizeof path);
    if (in == NULL)
        return -1;
    while (fgets(line, sizeof line, in) != NULL) {
        size_t n = split(line, f);
        uint64_t gpus, cpus;
        if (n < 3 || !parse_u64(f[1], &gpus) || !parse_u64(f[2], &cpus) || cpus == 0 ||
            gpus > 64)
            continue;           /* the header */
        int m = gpus > 0 ? model_id(w, f[0]) : 0;
        if (m < 0) {
            fprintf(stderr, "berth-bench: %s: GPU model '%s' left out\n", path, f[0]);
            continue;
        }
        host_spec_t h = {(uint32_t)cpus, (uint32_t)floor((double)cpus * PAI_MIB_PER_CORE),
                         (uint32_t)gpus, (uint32_t)m};
        if (gpus > 0)
            w->model_gpus[m] += gpus;
        if (spec_push(w, &h) != 0) {
            fclose(in);
            return -1;
        }
    }
    fclose(in);
instances:;
    uint64_t total_gpus = 0;
    uint32_t model_max[MODELS_MAX] = {0};
    for (size_t i = 0; i < w->nmodels; i++)
        total_gpus += w->model_gpus[i];
    for (size_t j = 0; j < w->nspecs; j++)
        if (w->specs[j].gpus > model_max[w->specs[j].model])
            model_max[w->specs[j].model] = w->specs[j].gpus;
    if (w->nspecs == 0 || total_gpus == 0) {
        fprintf(stderr, "berth-bench: %s: no GPU host\n", path);
        return -1;
    }

    if ((in = open_trace(o, "alibaba-gpu-v2025-dlrm/disaggregated_DLRM_trace.csv", path,
                         sizeof path)) == NULL)
        return -1;
    int col_cpu = -1, col_gpu = -1, col_mem = -1, col_create = -1, col_delete = -1;
    size_t lineno = 0;
    while (fgets(line, sizeof line, in) != NULL) {
        lineno++;
        size_t n = split(line, f);
        if (lineno == 1) {
            for (size_t i = 0; i < n; i++) {
                if (strcmp(f[i], "cpu_request") == 0)
                    col_cpu = (int)i;
                else if (strcmp(f[i], "gpu_request") == 0)
                    col_gpu = (int)i;
                else if (strcmp(f[i], "memory_request") == 0)
                    col_mem = (int)i;
                else if (strcmp(f[i], "creation_time") == 0)
                    col_create = (int)i;
                else if (strcmp(f[i], "deletion_time") == 0)
                    col_delete = (int)i;
            }
            if (col_cpu < 0 || col_gpu < 0 || col_mem < 0 || col_create < 0 || col_delete < 0) {
                fprintf(stderr, "berth-bench: %s: unexpected header\n", path);
                fclose(in);
                return -1;
            }
            continue;
        }
        double cpu, mem, start = 0, end = 0;
        uint64_t gpus;
        if ((int)n <= col_delete || !parse_num(f[col_cpu], &cpu) ||
            !parse_num(f[col_mem], &mem) || !parse_u64(f[col_gpu], &gpus) || cpu <= 0 ||
            mem <= 0 || gpus > 64 || (f[col_create][0] != '\0' && !parse_num(f[col_create], &start)) ||
            (f[col_delete][0] != '\0' && !parse_num(f[col_delete], &end)))
            continue;
        task_t t = {0};
        t.start = (int64_t)llround(start * 1000.0);
        t.end = f[col_delete][0] == '\0' ? NEVER : (int64_t)llround(end * 1000.0);
        if (t.end <= t.start)
            t.end = t.start + 1000;
        t.order = mix64(o->seed ^ mix64(lineno));
        t.n = 1;
        t.cores = (uint32_t)ceil(cpu);
        t.memory_mib = (uint32_t)ceil(mem * 1024.0);
        t.gpus = (uint32_t)gpus;
        if (gpus > 0 && multi) {
            uint64_t pick = mix64(o->seed ^ 0x6d756c7469ull ^ mix64(lineno)) % 100;
            uint32_t k = pick < 55 ? 1 : pick < 80 ? 2 : pick < 95 ? 4 : 8;
            t.gpus *= k;
            t.cores *= k;
            t.memory_mib *= k;
        }
        if (gpus > 0) {
            /* one model, drawn in proportion to the list's GPUs among the
             * models with a host that can hold the group's GPUs */
            uint64_t fit = 0;
            for (size_t m = 0; m < w->nmodels; m++)
                fit += model_max[m] >= t.gpus ? w->model_gpus[m] : 0;
            if (fit == 0)
                continue;
            uint64_t r = mix64(o->seed ^ 0x736b75ull ^ mix64(lineno)) % fit;
            size_t m = 0;
            for (;; m++) {
                uint64_t g = model_max[m] >= t.gpus ? w->model_gpus[m] : 0;
                if (r < g || m + 1 == w->nmodels)
                    break;
                r -= g;
            }
            t.model = (uint32_t)m;
        }
        if (task_push(w, &t) != 0) {
            fclose(in);
            return -1;
        }
    }
    fclose(in);
    return 0;
}

/* See trace.h. */
void bench_trace_free(replay_workload_t *w)
{
    free(w->tasks);
    free(w->specs);
    free(w->events);
    free(w->hosts);
}
