/*
 * trace.h: the Alibaba traces the `quality` scenario replays (trace.c):
 * their tasks and host lists, read into a replay_workload_t that replay.c
 * then prepares and replays.  Reading a trace never changes it, and it
 * never touches an engine.
 */
#ifndef BERTH_BENCH_TRACE_H
#define BERTH_BENCH_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth.h"
#include "replay.h"

#define MODELS_MAX 16
#define NEVER INT64_MAX

/* A task: `n` identical groups arriving together. */
typedef struct task {
    int64_t start, end;             /* milliseconds; end NEVER: stays       */
    uint64_t order;                 /* tie key among equal start times      */
    uint64_t first;                 /* global index of its first group      */
    uint32_t n;
    uint32_t cores;
    uint32_t memory_mib;
    uint32_t gpus;
    uint32_t model;                 /* index into the workload's models     */
} task_t;

/* A host of the list before scaling. */
typedef struct host_spec {
    uint32_t cores;
    uint32_t memory_mib;
    uint32_t gpus;
    uint32_t model;
} host_spec_t;

typedef struct event {
    int64_t time;
    uint64_t order;
    uint32_t task;
    uint8_t departure;
} event_t;

typedef struct workload {
    const char *name;
    task_t *tasks;
    size_t ntasks, captasks;
    host_spec_t *specs;
    size_t nspecs, capspecs;
    char models[MODELS_MAX][BERTH_GPU_SKU_NAME_MAX + 1];
    uint64_t model_gpus[MODELS_MAX];
    size_t nmodels;
    /* after preparation */
    uint64_t groups;
    event_t *events;
    size_t nevents;
    host_spec_t *hosts;             /* the scaled cluster                   */
    size_t nhosts;
    double scale;
    const char *binding;
    uint64_t cap_cores, cap_memory, cap_gpus;
    uint32_t med_cores, med_memory;
    uint32_t med_gpu_cores, med_gpu_memory;
    uint32_t min_gpu_cores, min_gpu_memory; /* per GPU, over GPU groups */
    bool has_gpu_groups;
} replay_workload_t;

/* Reads alibaba-2017 (the batch tasks and the server events) into *w,
 * which must be zeroed.  Returns 0, or -1 with a message on stderr (a
 * missing trace file); free *w with bench_trace_free() either way. */
int bench_trace_load_2017(replay_workload_t *w, const replay_options_t *o);

/* Reads the 2025 DLRM instances into *w (zeroed) with the spot 2026 host
 * list, or the PAI 2020 one when `pai`; `multi`: the multi-GPU mix (see
 * trace.c).  Returns 0, or -1 with a message on stderr; free *w with
 * bench_trace_free() either way. */
int bench_trace_load_2025(replay_workload_t *w, const replay_options_t *o, bool pai,
                          bool multi);

/* Frees what *w holds (its tasks, host lists, events and cluster). */
void bench_trace_free(replay_workload_t *w);

#endif /* BERTH_BENCH_TRACE_H */
