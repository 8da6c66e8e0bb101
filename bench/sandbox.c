/*
 * sandbox.c: berth-bench's `sandbox` scenario: what running a group under
 * gVisor costs at start, against the engine's default runtime (runc).
 *
 * It loads the docker runtime plugin twice on one engine: once plain, once
 * with a gVisor runtime ("runtime" for Docker, "runtime_socket" for a
 * second Podman service), and times, in turns so that a drift of the
 * machine's load falls on both alike, one group of one container
 * (`sleep`) from create through start until the plugin reports it Running;
 * then it removes the group.  One result per runtime (median, 90th
 * percentile, mean) and one with the ratio of the medians.
 *
 * It is a measurement tool: it never decides pass or fail on a timing.
 * It uses its own host name, so it never touches the engine's other
 * containers, removes every group it made, and bounds every wait.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "berth-plugin.h"
#include "output.h"
#include "sandbox.h"
#include "util.h"

#define STARTS_MAX 1000
#define RUNNING_WAIT_NS (60ull * 1000000000ull)

typedef struct sandbox_options {
    const char *socket;
    const char *runtime;            /* Docker: the gVisor runtime's name    */
    const char *runtime_socket;     /* Podman: the gVisor service's socket  */
    const char *image;
    const char *dir;                /* data and secret directories          */
    size_t starts;
} sandbox_options_t;

/* One opened plugin context. */
typedef struct side {
    const char *name;               /* "runc" or "gvisor"                   */
    const berth_plugin_ops_t *ops;
    void *ctx;
    double *ms;                     /* one per start                        */
} side_t;

static void usage(FILE *f)
{
    fputs("usage: berth-bench sandbox --socket SOCK (--runtime NAME | --runtime-socket SOCK)\n"
          "                           [--starts N] [--image IMAGE] [--dir DIR]\n"
          "\n"
          "Times N starts (default 10) of a one-container group through the docker\n"
          "plugin, create to Running, under the engine's default runtime and under\n"
          "gVisor, in turns; prints the median, 90th percentile and mean of each and\n"
          "the ratio of the medians.\n"
          "  --socket SOCK          the Docker or Podman API socket\n"
          "  --runtime NAME         Docker: the gVisor runtime registered with dockerd\n"
          "  --runtime-socket SOCK  Podman: a second service on the same storage whose\n"
          "                         runtime is gVisor (tools/berth-runsc)\n"
          "  --image IMAGE          an image the engine holds (busybox:latest)\n"
          "  --dir DIR              where the plugin keeps volumes (a new directory\n"
          "                         under /tmp); secrets go under /dev/shm\n",
          f);
}

static int parse(int argc, char **argv, sandbox_options_t *o)
{
    static const struct option longs[] = {
        {"socket", required_argument, NULL, 's'},
        {"runtime", required_argument, NULL, 'r'},
        {"runtime-socket", required_argument, NULL, 'R'},
        {"starts", required_argument, NULL, 'n'},
        {"image", required_argument, NULL, 'i'},
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (sandbox_options_t){.image = "busybox:latest", .starts = 10};
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 's': o->socket = optarg; break;
        case 'r': o->runtime = optarg; break;
        case 'R': o->runtime_socket = optarg; break;
        case 'i': o->image = optarg; break;
        case 'd': o->dir = optarg; break;
        case 'n':
            if (bench_parse_size(optarg, STARTS_MAX, &o->starts) != 0) {
                fprintf(stderr, "berth-bench sandbox: --starts must be 1 to %d\n", STARTS_MAX);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    if (o->socket == NULL || (o->runtime == NULL) == (o->runtime_socket == NULL)) {
        fprintf(stderr, "berth-bench sandbox: needs --socket and one of --runtime, "
                        "--runtime-socket\n");
        return 2;
    }
    return 0;
}

/* Opens the docker plugin on the engine, plain or with gVisor. */
static int side_open(side_t *s, const berth_plugin_ops_t *ops, const sandbox_options_t *o,
                     bool gvisor, const char *host)
{
    char config[2048], extra[512] = "";
    if (gvisor)
        snprintf(extra, sizeof extra, ", \"%s\": \"%s\"",
                 o->runtime ? "runtime" : "runtime_socket",
                 o->runtime ? o->runtime : o->runtime_socket);
    snprintf(config, sizeof config,
             "{\"socket\": \"%s\", \"data_dir\": \"%s/data\", \"secret_dir\": "
             "\"/dev/shm/%s\", \"sandbox_image\": \"%s\", \"stop_grace_s\": 0, "
             "\"ulimits\": %s%s}",
             o->socket, o->dir, host, o->image, o->runtime_socket ? "true" : "false", extra);
    berth_error_t err;
    s->ops = ops;
    if (ops->open(config, host, &s->ctx, &err) != 0) {
        fprintf(stderr, "berth-bench sandbox: cannot open the docker plugin: %s\n",
                err.message);
        return -1;
    }
    return 0;
}

/* Creates, starts and waits for group `key` to run; stores the time in
 * *ms and removes the group.  Returns 0 or -1 after a message. */
static int one_start(side_t *s, const char *key, const berth_group_t *spec, double *ms)
{
    uint32_t shares[BERTH_PLUGIN_CONTAINERS_MAX];
    if (berth_group_cpu_shares(spec, shares, BERTH_PLUGIN_CONTAINERS_MAX) != 0)
        return -1;
    berth_runtime_group_t rg = {.key = key, .generation = 1,
                                .digest = berth_runtime_digest(spec), .spec = spec,
                                .millicores = shares[0], .shares = shares};
    berth_group_status_t *st = calloc(1, sizeof *st);
    if (st == NULL)
        return -1;
    berth_error_t err;
    int rc = -1;
    uint64_t t0 = bench_now_ns();
    if (s->ops->create(s->ctx, &rg, &err) != 0 || s->ops->start(s->ctx, key, NULL, &err) != 0) {
        fprintf(stderr, "berth-bench sandbox: %s: %s\n", s->name, err.message);
    } else {
        while (bench_now_ns() - t0 < RUNNING_WAIT_NS) {
            if (s->ops->status(s->ctx, key, st, &err) != 0)
                break;
            if (st->ncontainers == 1 && st->containers[0].state == BERTH_CONTAINER_RUNNING) {
                *ms = (double)(bench_now_ns() - t0) / 1e6;
                rc = 0;
                break;
            }
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        if (rc != 0)
            fprintf(stderr, "berth-bench sandbox: %s: the group did not run within 60 s\n",
                    s->name);
    }
    s->ops->remove(s->ctx, key, &err);
    free(st);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of the sorted values v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    return v[rank == 0 ? 0 : rank - 1];
}

static double emit_side(const side_t *s, size_t n, const sandbox_options_t *o)
{
    qsort(s->ms, n, sizeof *s->ms, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += s->ms[i];
    double median = n % 2 ? s->ms[n / 2] : (s->ms[n / 2 - 1] + s->ms[n / 2]) / 2;
    bench_emit(json_pack("{s:s, s:s, s:s, s:I, s:f, s:f, s:f}", "bench", "sandbox", "engine",
                         o->runtime ? "docker" : "podman", "runtime", s->name, "starts",
                         (json_int_t)n, "median_ms", bench_rounded(median, 1), "p90_ms",
                         bench_rounded(percentile(s->ms, n, 90), 1), "mean_ms",
                         bench_rounded(sum / (double)n, 1)));
    return median;
}

int bench_sandbox_main(int argc, char **argv)
{
    sandbox_options_t o;
    int rc = parse(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    char dir[64] = "/tmp/berth-bench-sandbox-XXXXXX";
    if (o.dir == NULL) {
        if (mkdtemp(dir) == NULL) {
            perror("berth-bench sandbox: mkdtemp");
            return 1;
        }
        o.dir = dir;
    }
    char host[64];
    snprintf(host, sizeof host, "bench-sandbox-%ld", (long)getpid());
    static const char doc[] =
        "{\"name\": \"bench\", \"properties\": {\"osType\": \"Linux\", \"containers\": ["
        "{\"name\": \"c\", \"properties\": {\"image\": \"%s\", \"command\": [\"sleep\", "
        "\"3600\"], \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.25}}}}]}}";
    char text[1024];
    snprintf(text, sizeof text, doc, o.image);
    berth_group_t *spec = NULL;
    berth_plugin_t *plugin = NULL;
    berth_error_t err;
    side_t sides[2] = {{.name = "runc"}, {.name = "gvisor"}};
    rc = 1;
    if (berth_group_parse(text, strlen(text), &spec, &err) != 0 ||
        berth_plugin_load("docker", &plugin, &err) != 0) {
        fprintf(stderr, "berth-bench sandbox: %s\n", err.message);
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        sides[i].ms = calloc(o.starts, sizeof *sides[i].ms);
        if (sides[i].ms == NULL ||
            side_open(&sides[i], berth_plugin_ops(plugin), &o, i == 1, host) != 0)
            goto done;
    }
    /* In turns: runc, gVisor, runc, gVisor ... */
    for (size_t k = 0; k < o.starts; k++) {
        for (int i = 0; i < 2; i++) {
            char key[64];
            snprintf(key, sizeof key, "bench/%s-%zu", sides[i].name, k);
            if (one_start(&sides[i], key, spec, &sides[i].ms[k]) != 0)
                goto done;
        }
    }
    double runc = emit_side(&sides[0], o.starts, &o);
    double gvisor = emit_side(&sides[1], o.starts, &o);
    bench_emit(json_pack("{s:s, s:s, s:s, s:I, s:f}", "bench", "sandbox", "engine",
                         o.runtime ? "docker" : "podman", "runtime", "gvisor/runc", "starts",
                         (json_int_t)o.starts, "median_ratio",
                         bench_rounded(runc > 0 ? gvisor / runc : 0, 2)));
    rc = 0;
done:
    for (int i = 0; i < 2; i++) {
        if (sides[i].ctx != NULL)
            sides[i].ops->close(sides[i].ctx);
        free(sides[i].ms);
    }
    berth_plugin_unload(plugin);
    berth_group_free(spec);
    if (o.dir == dir) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '/dev/shm/%s'", dir, host);
        if (system(cmd) != 0)
            fprintf(stderr, "berth-bench sandbox: could not remove %s\n", dir);
    }
    return rc;
}
