/*
 * register.c: the host's record in the cell.
 *
 * At start the agent registers its host: capacity from the command line,
 * or probed from the runtime plugin and the system; GPUs from the command
 * line or nvidia-smi; the sandbox feature when the plugin runs groups
 * under gVisor.  It must never register a host the runtime did not
 * answer for, and never touch a record under --no-register (main.c does
 * not call it then).
 */
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "agent.h"
#include "lib/spawn.h"

/* How long nvidia-smi may take before it is killed: registration waits. */
#define GPUS_PROBE_TIMEOUT_MS 10000

/* Counts GPUs with nvidia-smi when it is installed: sets *count and the
 * SKU (K80, P100, V100, T4 ... from the product name).  Waits at most
 * GPUS_PROBE_TIMEOUT_MS; a failed, killed or timed-out probe counts none. */
static void gpus_probe(char *sku, size_t cap, int *count)
{
    *count = 0;
    if (access("/usr/bin/nvidia-smi", X_OK) != 0)
        return;
    char *const argv[] = {"/usr/bin/nvidia-smi", "--query-gpu=name", "--format=csv,noheader",
                          NULL};
    berth__spawn_options_t opts = {.capture = BERTH__SPAWN_CAPTURE_STDOUT};
    berth__spawn_result_t res;
    char buf[4096];
    if (berth__spawn_run(argv, &opts, GPUS_PROBE_TIMEOUT_MS, buf, sizeof buf, &res) != 0 ||
        res.exit_status != 0)
        return;
    static const char *known[] = {"K80", "P100", "V100", "T4", "A100", "H100"};
    for (char *line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strstr(line, known[i]) != NULL) {
                snprintf(sku, cap, "%s", known[i]);
                (*count)++;
                break;
            }
    }
}

/* The store's options for the cell in o (--redis, --cell); they point into
 * o, which must outlive them. */
berth_store_options_t store_options(const options_t *o)
{
    berth_store_options_t so;
    berth_store_options_init(&so);
    if (o->redis != NULL)
        so.url = o->redis;
    if (o->cell != NULL)
        so.cell = o->cell;
    return so;
}

/* Registers the host (probed or given capacity, state Ready) through a
 * store of its own, closed again.  Returns 0, or -1 after logging why. */
int host_register(agent_t *a)
{
    berth_error_t err;
    berth_plugin_host_info_t info;
    memset(&info, 0, sizeof info);
    if (a->ops->probe(a->ctx, &info, &err) != 0) {
        log_error(NULL, "the runtime did not answer its probe: %s", err.message);
        return -1;
    }
    char sku[BERTH_GPU_SKU_NAME_MAX + 1] = "";
    int gpus = a->o.gpu_count;
    if (gpus < 0)
        gpus_probe(sku, sizeof sku, &gpus);
    else if (a->o.gpu_sku != NULL)
        snprintf(sku, sizeof sku, "%s", a->o.gpu_sku);
    struct sysinfo si;
    uint32_t sys_mib = sysinfo(&si) == 0
        ? (uint32_t)((uint64_t)si.totalram * si.mem_unit / (1024 * 1024)) : 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    berth_host_t h = {
        .name = a->o.host,
        .cores = a->o.cores ? a->o.cores : info.cores ? info.cores : (uint32_t)(cpus > 0 ? cpus : 1),
        .memory_mib = a->o.memory_mib ? a->o.memory_mib
                    : info.memory_mib ? (uint32_t)info.memory_mib : sys_mib,
        .gpu_sku = gpus > 0 ? sku : NULL,
        .gpu_count = gpus > 0 ? (uint32_t)gpus : 0,
        .os = BERTH_OS_LINUX,
        .zone = a->o.zone,
        /* What the runtime isolates is the plugin's to say, nothing else. */
        .features = info.features & BERTH_HOST_SANDBOX,
        .state = BERTH_HOST_READY,
    };
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    berth_store_options_t so = store_options(&a->o);
    int rc = berth_engine_new(NULL, &engine, &err);
    if (rc == 0)
        rc = berth_store_open(&so, engine, &store, &err);
    if (rc == 0)
        rc = berth_store_host_put(store, &h, &err);
    berth_store_close(store);
    berth_engine_free(engine);
    if (rc != 0) {
        log_error(NULL, "host not registered: %s", err.message);
        return -1;
    }
    log_info(NULL, "registered: %u cores, %u MiB, %u GPUs%s%s, runtime %s%s", h.cores,
             h.memory_mib, h.gpu_count, h.gpu_count ? " " : "", h.gpu_count ? sku : "",
             info.runtime, h.features & BERTH_HOST_SANDBOX ? ", sandbox" : "");
    return 0;
}
