/*
 * main.c: berth-agent's options, its one-shot verbs, start-up and loop.
 *
 * At start the agent registers the host (register.c), opens its link to
 * the cell, starts the heartbeat (heartbeat.c) and reconciles
 * (converge.c).  Then it loops: read the next assignment from the host's
 * stream (consumer group; acknowledged only once its work is done),
 * converge that group (an assignment whose work failed is worked again
 * every RETRY_EVERY_MS until done), answer calls (calls.c), report images
 * (images.c) and supervise every group it runs (supervise.c).  `berth-agent logs` and
 * `berth-agent exec` run the same plugin operations as the calls on this
 * host for an operator, and exit.  It must never acknowledge an assignment
 * whose work is not done, and never stop the containers when it stops.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"

#define CALLS_EVERY_MS 20           /* calls looked for this often, at least */
#define RETRY_EVERY_MS 500          /* unfinished assignments tried again this often */
#define EXIT_USAGE 2

volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* ---- assignments whose work is not done --------------------------------------------- */

/* An assignment read whose work failed: converge() asked to try again
 * later (Redis went away while the group's record was read, the runtime
 * did not answer), or its acknowledgement failed.  The link hands each
 * entry out once per run of the agent, so the entry, though still
 * unacknowledged in the stream, would not come back before a restart: the
 * loop keeps it here and works it again every RETRY_EVERY_MS until done.
 * converge() makes the runtime match the group's current record, whatever
 * the assignment's generation, so working an older assignment after a
 * newer one of the same group is harmless. */
typedef struct unfinished {
    berth_assignment_t as;
    bool converged;                 /* only its acknowledgement is left     */
} unfinished_t;

typedef struct unfinished_set {
    unfinished_t *v;
    size_t n, cap;
} unfinished_set_t;

/* Works one assignment: converges its group (unless that is done) and
 * acknowledges it.  Returns true when both are done; otherwise sets
 * *converged to say how far it got. */
static bool assignment_work(agent_t *a, const berth_assignment_t *as, bool *converged)
{
    berth_error_t err;
    if (!*converged)
        *converged = converge(a, as->key, as->op == BERTH_ASSIGN_RESTART) == 0;
    if (!*converged)
        return false;
    if (berth_hostlink_ack(a->link, as, &err) != 0) {
        log_warn(as->key, "assignment not acknowledged: %s", err.message);
        return false;
    }
    return true;
}

/* Keeps an assignment to work again.  Without memory for it, it is said
 * and left to the next start of the agent (its entry stays unacknowledged
 * in the stream). */
static void unfinished_keep(unfinished_set_t *u, const berth_assignment_t *as, bool converged)
{
    if (u->n == u->cap) {
        size_t cap = u->cap ? 2 * u->cap : 16;
        unfinished_t *v = realloc(u->v, cap * sizeof *v);
        if (v == NULL) {
            log_error(as->key, "assignment %s left to the next start: out of memory", as->id);
            return;
        }
        u->v = v;
        u->cap = cap;
    }
    u->v[u->n].as = *as;
    u->v[u->n].converged = converged;
    u->n++;
}

/* Works every kept assignment once, in the order they came, dropping
 * those done. */
static void unfinished_retry(agent_t *a, unfinished_set_t *u)
{
    size_t kept = 0;
    for (size_t i = 0; i < u->n; i++) {
        unfinished_t x = u->v[i];
        if (stopping || !assignment_work(a, &x.as, &x.converged))
            u->v[kept++] = x;
        else
            log_info(x.as.key, "assignment %s done on a later try", x.as.id);
    }
    u->n = kept;
}

/* The agent's loop (see the top of the file) until SIGTERM or SIGINT.
 * Returns 0. */
static int run(agent_t *a)
{
    berth_error_t err;
    int64_t next_tick = 0, next_reconcile = 0;
    bool reconciled = false;
    /* Image locality can count this host's images from its first placement on. */
    images_publish(a);
    int64_t next_images = berth__clock_wall_ms() + 30000, next_calls = 0, next_retry = 0;
    unfinished_set_t unfinished = {0};
    while (!stopping) {
        beat_turned(&a->beat);
        int64_t now = berth__clock_wall_ms();
        if (!reconciled && now >= next_reconcile) {
            reconciled = reconcile(a) == 0;
            next_reconcile = now + 1000;
        }
        berth_assignment_t as;
        int rc = berth_hostlink_next(a->link, a->o.tick_ms, &as, &err);
        if (rc < 0) {
            log_warn(NULL, "assignments unavailable: %s", err.message);
            struct timespec ts = {0, 500 * 1000 * 1000};
            nanosleep(&ts, NULL);
        } else if (rc == 1) {
            log_info(as.key, "assignment %s %s generation %" PRIu64, as.id,
                     as.op == BERTH_ASSIGN_PLACE ? "place"
                     : as.op == BERTH_ASSIGN_RELEASE ? "release" : "restart",
                     as.generation);
            bool converged = false;
            if (!assignment_work(a, &as, &converged)) {
                unfinished_keep(&unfinished, &as, converged);
                if (unfinished.n == 1)
                    next_retry = berth__clock_wall_ms() + RETRY_EVERY_MS;
            }
        }
        now = berth__clock_wall_ms();
        if (unfinished.n > 0 && now >= next_retry) {
            unfinished_retry(a, &unfinished);
            next_retry = berth__clock_wall_ms() + RETRY_EVERY_MS;
        }
        /* Calls are looked for when no assignment came, and at least every
         * CALLS_EVERY_MS while assignments keep coming: not one round trip
         * per assignment, and a logs or exec call never waits long. */
        now = berth__clock_wall_ms();
        if (rc != 1 || now >= next_calls) {
            calls_serve(a);
            next_calls = now + CALLS_EVERY_MS;
        }
        now = berth__clock_wall_ms();
        if (a->images_dirty || now >= next_images) {
            images_publish(a);
            next_images = now + 30000;
        }
        if (now >= next_tick) {
            supervise(a);
            next_tick = now + a->o.tick_ms;
        }
    }
    /* Left unacknowledged in the stream: the next start reads them again. */
    free(unfinished.v);
    log_info(NULL, "stopping; containers keep running");
    return 0;
}

/* ---- command line -------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: berth-agent --host NAME --plugin NAME|PATH [options]\n"
    "       berth-agent logs --plugin NAME [--plugin-config JSON] --host NAME\n"
    "                        [--tail N] [--timestamps] KEY CONTAINER\n"
    "       berth-agent exec --plugin NAME [--plugin-config JSON] --host NAME\n"
    "                        KEY CONTAINER -- COMMAND [ARG...]\n"
    "\n"
    "Runs the container groups the cell places on host NAME through a runtime\n"
    "plugin (docker, runc, sim, or a path to a plugin), until SIGTERM or SIGINT;\n"
    "the containers keep running when the agent stops.\n"
    "\n"
    "  --redis URL            redis://HOST:PORT or unix:///PATH (redis://127.0.0.1:6379)\n"
    "  --cell NAME            the cell (default)\n"
    "  --plugin-config JSON   the plugin's configuration, or @FILE\n"
    "  --secrets-key FILE     the key file berthd seals secrets with (its keys\n"
    "                         unseal them for the runtime); without it a group\n"
    "                         holding a sealed secret fails\n"
    "  --cores N --memory-mib N\n"
    "                         capacity to register (default: probed)\n"
    "  --gpu-sku SKU --gpu-count N\n"
    "                         GPUs to register (default: nvidia-smi, when present)\n"
    "  --zone Z               the host's availability zone\n"
    "  --no-register          the host is in the cell already; leave its record alone\n"
    "  --heartbeat-ms N       heartbeat period (1000); --ttl-ms N its lifetime (10000)\n"
    "  --stall-ms N           no heartbeat once the agent's loop has been stuck this\n"
    "                         long, e.g. in a runtime call (900000)\n"
    "  --tick-ms N            supervision period (250): a group still starting, or with\n"
    "                         a restart due, is looked at every tick\n"
    "  --sweep-ms N           a settled group is looked at again at least this often,\n"
    "                         which bounds how late a crashed container is noticed\n"
    "                         (1000; at least --tick-ms)\n"
    "  --backoff-initial-ms N first restart delay (1000), doubling up to\n"
    "  --backoff-max-ms N     (300000); reset after a run of --backoff-reset-ms (600000)\n"
    "  --stop-grace-s N       SIGTERM to SIGKILL on stop and restart (10)\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("berth-agent: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(berth-agent --help shows the options)\n", stderr);
    return EXIT_USAGE;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || s[0] == '\0' || s[0] == '-' || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static char *read_config(const char *arg)
{
    if (arg[0] != '@')
        return strdup(arg);
    FILE *f = fopen(arg + 1, "r");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF && n < (1u << 20)) {
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 4096;
            char *p = realloc(buf, cap);
            if (p == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        buf[n++] = (char)ch;
    }
    fclose(f);
    if (buf != NULL)
        buf[n] = '\0';
    return buf != NULL ? buf : strdup("");
}

enum {
    OPT_HOST = 1000, OPT_PLUGIN, OPT_PLUGIN_CONFIG, OPT_REDIS, OPT_CELL, OPT_CORES, OPT_MEMORY,
    OPT_GPU_SKU, OPT_GPU_COUNT, OPT_ZONE, OPT_NO_REGISTER, OPT_HEARTBEAT, OPT_TTL, OPT_TICK,
    OPT_STALL, OPT_SWEEP, OPT_BACKOFF_INITIAL, OPT_BACKOFF_MAX, OPT_BACKOFF_RESET,
    OPT_STOP_GRACE, OPT_TAIL, OPT_TIMESTAMPS, OPT_HELP, OPT_VERSION, OPT_SECRETS_KEY
};

static const struct option long_opts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"plugin", required_argument, NULL, OPT_PLUGIN},
    {"plugin-config", required_argument, NULL, OPT_PLUGIN_CONFIG},
    {"secrets-key", required_argument, NULL, OPT_SECRETS_KEY},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"cell", required_argument, NULL, OPT_CELL},
    {"cores", required_argument, NULL, OPT_CORES},
    {"memory-mib", required_argument, NULL, OPT_MEMORY},
    {"gpu-sku", required_argument, NULL, OPT_GPU_SKU},
    {"gpu-count", required_argument, NULL, OPT_GPU_COUNT},
    {"zone", required_argument, NULL, OPT_ZONE},
    {"no-register", no_argument, NULL, OPT_NO_REGISTER},
    {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
    {"ttl-ms", required_argument, NULL, OPT_TTL},
    {"tick-ms", required_argument, NULL, OPT_TICK},
    {"stall-ms", required_argument, NULL, OPT_STALL},
    {"sweep-ms", required_argument, NULL, OPT_SWEEP},
    {"backoff-initial-ms", required_argument, NULL, OPT_BACKOFF_INITIAL},
    {"backoff-max-ms", required_argument, NULL, OPT_BACKOFF_MAX},
    {"backoff-reset-ms", required_argument, NULL, OPT_BACKOFF_RESET},
    {"stop-grace-s", required_argument, NULL, OPT_STOP_GRACE},
    {"tail", required_argument, NULL, OPT_TAIL},
    {"timestamps", no_argument, NULL, OPT_TIMESTAMPS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Parses the options into *o; returns -1 to go on, or an exit status. */
static int parse_options(int argc, char **argv, options_t *o, uint32_t *tail, bool *timestamps)
{
    *o = (options_t){.gpu_count = -1, .heartbeat_ms = 1000, .ttl_ms = 10000, .tick_ms = 250,
                     .stall_ms = 900000, .sweep_ms = 1000,
                     .backoff_initial_ms = 1000, .backoff_max_ms = 300000,
                     .backoff_reset_ms = 600000, .stop_grace_s = 10};
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+", long_opts, NULL)) != -1) {
        uint32_t *u = NULL;
        switch (ch) {
        case OPT_HOST: o->host = optarg; break;
        case OPT_PLUGIN: o->plugin = optarg; break;
        case OPT_PLUGIN_CONFIG:
            free(o->plugin_config);
            o->plugin_config = read_config(optarg);
            if (o->plugin_config == NULL)
                return usage_error("--plugin-config %s: cannot be read", optarg);
            break;
        case OPT_SECRETS_KEY: {
            berth_error_t err;
            berth__keyring_free(o->secrets);
            o->secrets = NULL;
            if (berth__keyring_load(optarg, &o->secrets, &err) != 0)
                return usage_error("--secrets-key: %s", err.message);
            break;
        }
        case OPT_REDIS: o->redis = optarg; break;
        case OPT_CELL: o->cell = optarg; break;
        case OPT_GPU_SKU: o->gpu_sku = optarg; break;
        case OPT_ZONE: o->zone = optarg; break;
        case OPT_NO_REGISTER: o->no_register = true; break;
        case OPT_TIMESTAMPS: *timestamps = true; break;
        case OPT_CORES: u = &o->cores; break;
        case OPT_MEMORY: u = &o->memory_mib; break;
        case OPT_HEARTBEAT: u = &o->heartbeat_ms; break;
        case OPT_TTL: u = &o->ttl_ms; break;
        case OPT_TICK: u = &o->tick_ms; break;
        case OPT_STALL: u = &o->stall_ms; break;
        case OPT_SWEEP: u = &o->sweep_ms; break;
        case OPT_BACKOFF_INITIAL: u = &o->backoff_initial_ms; break;
        case OPT_BACKOFF_MAX: u = &o->backoff_max_ms; break;
        case OPT_BACKOFF_RESET: u = &o->backoff_reset_ms; break;
        case OPT_STOP_GRACE: u = &o->stop_grace_s; break;
        case OPT_TAIL: u = tail; break;
        case OPT_GPU_COUNT: {
            uint32_t n;
            if (!parse_u32(optarg, &n) || n > 63)
                return usage_error("--gpu-count: expected 0 to 63, got '%s'", optarg);
            o->gpu_count = (int)n;
            break;
        }
        case OPT_HELP: fputs(usage_text, stdout); return 0;
        case OPT_VERSION: printf("berth-agent %s\n", berth_version()); return 0;
        default:
            return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
        if (u != NULL && !parse_u32(optarg, u))
            return usage_error("%s: expected a non-negative integer, got '%s'",
                               argv[optind - 2], optarg);
    }
    if (o->host == NULL)
        return usage_error("--host is required");
    if (o->plugin == NULL)
        return usage_error("--plugin is required");
    if (o->heartbeat_ms == 0 || o->ttl_ms <= o->heartbeat_ms)
        return usage_error("--ttl-ms must exceed --heartbeat-ms, which must be above zero");
    if (o->tick_ms == 0 || o->tick_ms > 2000)
        return usage_error("--tick-ms: expected 1 to 2000");
    if (o->sweep_ms < o->tick_ms || o->sweep_ms > 3600000)
        return usage_error("--sweep-ms: expected --tick-ms (%u) to 3600000", o->tick_ms);
    if (o->stall_ms <= o->ttl_ms)
        return usage_error("--stall-ms must exceed --ttl-ms");
    if (o->backoff_initial_ms == 0 || o->backoff_max_ms < o->backoff_initial_ms)
        return usage_error("--backoff-max-ms must be at least --backoff-initial-ms (> 0)");
    if (o->gpu_sku != NULL && o->gpu_count < 0)
        return usage_error("--gpu-sku needs --gpu-count");
    return -1;
}

static int plugin_open(agent_t *a)
{
    berth_error_t err;
    if (berth_plugin_load(a->o.plugin, &a->plugin, &err) != 0) {
        fprintf(stderr, "berth-agent: %s\n", err.message);
        return EXIT_USAGE;
    }
    a->ops = berth_plugin_ops(a->plugin);
    if (a->ops->open(a->o.plugin_config, a->o.host, &a->ctx, &err) != 0) {
        fprintf(stderr, "berth-agent: plugin %s: %s%s%s\n", a->ops->name, err.message,
                err.target[0] ? " at " : "", err.target);
        return EXIT_USAGE;
    }
    return 0;
}

/* `berth-agent logs|exec`: one plugin operation for an operator. */
static int one_shot(agent_t *a, const char *verb, int argc, char **argv, uint32_t tail,
                    bool timestamps)
{
    if (argc - optind < 2)
        return usage_error("%s needs KEY and CONTAINER", verb);
    const char *key = argv[optind], *container = argv[optind + 1];
    int rc = plugin_open(a);
    if (rc != 0)
        return rc;
    berth_error_t err;
    char *out = NULL;
    size_t len = 0;
    int code = 0;
    if (strcmp(verb, "logs") == 0) {
        rc = a->ops->logs(a->ctx, key, container, tail, timestamps, &out, &len, &err);
    } else {
        int first = optind + 2;
        if (first < argc && strcmp(argv[first], "--") == 0)
            first++;
        if (first >= argc)
            return usage_error("exec needs a command after --");
        rc = a->ops->exec(a->ctx, key, container, (const char *const *)&argv[first],
                          (size_t)(argc - first), &out, &len, &code, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "berth-agent: %s: %s\n", verb, err.message);
        return 1;
    }
    fwrite(out, 1, len, stdout);
    free(out);
    return strcmp(verb, "exec") == 0 ? code : 0;
}

/* Runs the agent until SIGTERM or SIGINT (0; 1 when it could not start), or
 * one `logs` or `exec` for an operator (exec: the command's exit status);
 * 2 on a usage error or a plugin that cannot be loaded or opened. */
int main(int argc, char **argv)
{
    const char *verb = NULL;
    if (argc > 1 && (strcmp(argv[1], "logs") == 0 || strcmp(argv[1], "exec") == 0)) {
        verb = argv[1];
        argv++;
        argc--;
    }
    agent_t a = {0};
    uint32_t tail = 0;
    bool timestamps = false;
    int rc = parse_options(argc, argv, &a.o, &tail, &timestamps);
    if (rc >= 0) {
        free(a.o.plugin_config);
        berth__keyring_free(a.o.secrets);
        return rc;
    }
    log_host = a.o.host;
    if (verb != NULL) {
        rc = one_shot(&a, verb, argc, argv, tail, timestamps);
    } else if ((rc = plugin_open(&a)) == 0) {
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        berth_error_t err;
        berth_store_options_t so = store_options(&a.o);
        if (!a.o.no_register && host_register(&a) != 0) {
            rc = 1;
        } else if (berth_hostlink_open(&so, a.o.host, &a.link, &err) != 0) {
            log_error(NULL, "cannot reach the cell: %s", err.message);
            rc = 1;
        } else if (beat_start(&a, &so) != 0) {
            rc = 1;
        } else {
            rc = run(&a);
        }
        beat_stop(&a.beat);
    }
    sessions_wait();
    groups_free(&a);
    ports_forget_all(&a);
    berth_hostlink_close(a.link);
    if (a.ops != NULL && a.ctx != NULL)
        a.ops->close(a.ctx);
    berth_plugin_unload(a.plugin);
    free(a.o.plugin_config);
    berth__keyring_free(a.o.secrets);
    return rc;
}
