/*
 * sim.c: the simulator plugin: a host that runs no containers.
 *
 * Every group and container lives in the plugin's memory and follows a
 * clock: a started container is Waiting for `start_latency_ms`, then
 * Running, and terminates on its own when a rule (or the container's
 * environment) says so.  Nothing survives the plugin context, as nothing
 * survives a host's reboot: an agent that restarts finds an empty host and
 * creates its groups again.  Light enough for hundreds of agents on one
 * machine: a few hundred bytes per container, no threads, no processes.
 * Its one lock guards the group table, because an interactive session
 * opens on a thread of its own (berth-plugin.h's "Threads").
 *
 * Configuration (a JSON object; every member optional):
 *   cores, memory_mib      what probe reports (default: 8, 32768)
 *   start_latency_ms       Waiting time after each start (0)
 *   pull_latency_ms        time image_ensure takes for an uncached image (0)
 *   images                 images cached from the start (["busybox:latest"])
 *   rules                  [{image: GLOB, pull_fail: bool,
 *                            exit_after_ms: N, exit_code: C}]: the first rule
 *                          whose glob matches the image applies
 * A container's environment overrides its rule: BERTH_SIM_EXIT_AFTER_MS and
 * BERTH_SIM_EXIT_CODE.  exec runs nothing: it answers argv joined by spaces,
 * exit code 0, or for ["exit", N] exit code N, or for ["cat", PATH] with
 * PATH "/mnt/configmap/<container>/<key>" (the container's own) that config
 * map file's content as delivered (exit code 1 when there is none): the
 * config maps a container sees, kept in memory and replaced whole by
 * `config_maps`, the log noting each delivery.
 *
 * Interactive sessions (session_open ...) run no process either: a
 * session is a tiny deterministic shell answering the way busybox sh does,
 * so that a script gets the same answers from the sim as from a real
 * engine.  argv "sh", "/bin/sh", "bash" or "/bin/bash" alone starts it
 * interactively; ["sh", "-c", WORDS...] runs the words after -c, joined by
 * spaces and without one pair of quotes around them all, as one line and
 * ends (for a caller that splits a command on spaces; berthd splits it
 * as a shell does, quotes keeping a word whole);
 * "cat" alone copies input lines to output until the end of input (status
 * 0); any other argv runs, joined by spaces, as one line and ends with that
 * line's status.  A line is split on ';' into commands: `echo WORDS`
 * ($NAME and $? expanded, a ">&2" dropped), `read NAME` (the next input
 * line into NAME; the commands after it wait for that line), `exit [N]`
 * (the output ends with status N), `stty size` ("ROWS COLS" with a TTY,
 * else "stty: standard input: Not a tty" and status 1); anything else is
 * "sh: WORD: not found" (status 127).  With a TTY each input byte is echoed
 * as typed, "\r" is taken as "\n", DEL erases, ^D at the start of a line
 * ends the input, and every "\n" of output is "\r\n"; without one, no
 * echo and "\n".  The end of input ends the shell with status 0 (closing
 * the input of a shell that exited succeeds).  At most 1 MiB of
 * output waits to be read; a write that would produce more fails.  The
 * session's descriptor is an eventfd, readable while output waits or once
 * the output ended; session_resize changes what `stty size` answers.
 *
 * Usage metrics (`stats`) are synthetic and deterministic, derived from
 * the document's requests and the time each container has run since it
 * last started: a running container uses exactly its requested CPU
 * (cpu_ns grows by requests.cpu x 10^9 each second) and half of its
 * requested memory (GB taken as GiB), and the group's network receives
 * SIM_RX_BPS and sends SIM_TX_BPS bytes a second for each running
 * container.  A restart sets a container's counters back to 0, as a
 * runtime's would.
 *
 * Each port of a group's ipAddress is "published" on 127.0.0.1 with a host
 * port no other group of the context holds: the one the agent asks for
 * (berth_runtime_group_t.host_ports) when it is free, else the next free
 * one from SIM_PORT_FIRST on, as an engine hands out ephemeral ports.  A
 * group in a virtual network subnet (berth_runtime_group_t.subnet_id)
 * publishes nothing and reports the private address it was given.
 */
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
/* An allocation that fails inside uthash leaves the table as it was and
 * the element's hh.tbl NULL: create then fails with OutOfMemory. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "berth-plugin.h"
#include "lib/clock.h"

#define RULES_MAX 32
#define IMAGES_MAX 256
#define LOG_MAX 4096
#define SIM_PORT_FIRST 32768        /* the host ports handed out: Linux's   */
#define SIM_PORT_LAST 60999         /* ephemeral range, as Docker's         */
#define SIM_RX_BPS 2048u            /* synthetic network, per running container */
#define SIM_TX_BPS 1024u

typedef struct rule {
    char *glob;
    bool pull_fail;
    int64_t exit_after_ms;          /* -1: runs until stopped               */
    int exit_code;
} rule_t;

typedef struct ctr {
    char name[BERTH_NAME_MAX + 1];
    char *image;
    bool is_init;
    bool created;
    bool started;                   /* ever started                        */
    bool running;                   /* started and not stopped             */
    int64_t ready_ms;               /* Running from then on                */
    int64_t started_ms, finished_ms;
    int64_t exit_after_ms;
    int exit_code;
    int stopped_code;               /* 143 after a stop, else -1           */
    uint32_t cpu_millicores;        /* requested: the synthetic usage      */
    uint64_t memory_bytes;
    char *log;                      /* synthetic output                    */
    size_t log_len;
    berth_pair_t *config;           /* its config map files, as delivered  */
    size_t nconfig;
} ctr_t;

typedef struct sgroup {
    char *key;
    uint64_t generation, digest;
    size_t n;
    ctr_t *c;
    size_t nports;
    berth_published_port_t ports[BERTH_PLUGIN_PORTS_MAX];
    char ip[64];                    /* its address: a subnet group's private
                                     * one, else "127.0.0.1"                */
    UT_hash_handle hh;              /* sim_t.groups, by key                 */
} sgroup_t;

typedef struct sim {
    char host[BERTH_NAME_MAX + 1];
    uint32_t cores;
    uint64_t memory_mib;
    int64_t start_latency_ms, pull_latency_ms;
    rule_t rules[RULES_MAX];
    size_t nrules;
    char *images[IMAGES_MAX];
    size_t nimages;
    sgroup_t *groups;               /* by key (uthash): a host may hold
                                     * thousands, each call finds one        */
    uint32_t next_port;             /* where the next new host port is sought */
    pthread_mutex_t lock;           /* the group table: sessions open on
                                     * threads of their own                 */
} sim_t;

static void log_line(ctr_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends "<RFC 3339 time> text\n" to the container's log, dropping the
 * oldest half when it would exceed LOG_MAX. */
static void log_line(ctr_t *c, const char *fmt, ...)
{
    char line[256];
    berth__clock_format_iso8601(berth__clock_wall_ms(), line, BERTH__CLOCK_ISO8601_SIZE);
    size_t n = strlen(line);
    line[n++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    n += k < 0 ? 0 : (size_t)k >= sizeof line - n - 1 ? sizeof line - n - 2 : (size_t)k;
    line[n++] = '\n';
    if (c->log_len + n > LOG_MAX) {
        size_t drop = c->log_len / 2;
        memmove(c->log, c->log + drop, c->log_len - drop);
        c->log_len -= drop;
    }
    char *p = realloc(c->log, c->log_len + n);
    if (p == NULL)
        return;
    memcpy(p + c->log_len, line, n);
    c->log = p;
    c->log_len += n;
}

static const rule_t *rule_for(const sim_t *s, const char *image)
{
    for (size_t i = 0; i < s->nrules; i++)
        if (fnmatch(s->rules[i].glob, image, 0) == 0)
            return &s->rules[i];
    return NULL;
}

static void config_free(ctr_t *c)
{
    for (size_t k = 0; k < c->nconfig; k++) {
        free(c->config[k].name);
        free(c->config[k].value);
    }
    free(c->config);
    c->config = NULL;
    c->nconfig = 0;
}

/* Replaces c's config map files with spec's; c keeps its old ones when
 * there is no memory for the new. */
static int config_set(ctr_t *c, const berth_container_t *spec)
{
    berth_pair_t *a = calloc(spec->nconfig_map + 1, sizeof *a);
    if (a == NULL)
        return BERTH_ENOMEM;
    size_t k = 0;
    for (; k < spec->nconfig_map; k++) {
        a[k].name = strdup(spec->config_map[k].name);
        a[k].value = strdup(spec->config_map[k].value != NULL ? spec->config_map[k].value : "");
        if (a[k].name == NULL || a[k].value == NULL) {
            free(a[k].name);
            free(a[k].value);
            break;
        }
    }
    if (k < spec->nconfig_map) {
        while (k-- > 0) {
            free(a[k].name);
            free(a[k].value);
        }
        free(a);
        return BERTH_ENOMEM;
    }
    config_free(c);
    c->config = a;
    c->nconfig = k;
    return 0;
}

/* Frees a group that is in no table (NULL: nothing). */
static void group_free(sgroup_t *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n; i++) {
        free(g->c[i].image);
        free(g->c[i].log);
        config_free(&g->c[i]);
    }
    free(g->c);
    free(g->key);
    free(g);
}

static void sim_close(void *ctx)
{
    sim_t *s = ctx;
    if (s == NULL)
        return;
    sgroup_t *g, *tmp;
    HASH_ITER(hh, s->groups, g, tmp) {
        HASH_DELETE(hh, s->groups, g);
        group_free(g);
    }
    pthread_mutex_destroy(&s->lock);
    for (size_t i = 0; i < s->nrules; i++)
        free(s->rules[i].glob);
    for (size_t i = 0; i < s->nimages; i++)
        free(s->images[i]);
    free(s);
}

static int bad_config(berth_error_t *err, const char *target, const char *what)
{
    return berth_error_set(err, BERTH_EINVAL, "InvalidPluginConfig", target,
                           "sim plugin configuration: %s", what);
}

static int image_add(sim_t *s, const char *image)
{
    for (size_t i = 0; i < s->nimages; i++)
        if (strcmp(s->images[i], image) == 0)
            return 0;
    if (s->nimages == IMAGES_MAX)
        return BERTH_ELIMIT;
    s->images[s->nimages] = strdup(image);
    if (s->images[s->nimages] == NULL)
        return BERTH_ENOMEM;
    s->nimages++;
    return 0;
}

static int config_load(sim_t *s, const char *config_json, berth_error_t *err)
{
    s->cores = 8;
    s->memory_mib = 32768;
    if (config_json == NULL || config_json[0] == '\0')
        return image_add(s, "busybox:latest");
    json_error_t je;
    json_t *root = json_loads(config_json, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return bad_config(err, "config", "not a JSON object");
    }
    int rc = 0;
    bool images_given = false;
    const char *k;
    json_t *v;
    char target[128];
    json_object_foreach(root, k, v) {
        snprintf(target, sizeof target, "config.%s", k);
        if (strcmp(k, "cores") == 0 || strcmp(k, "memory_mib") == 0 ||
            strcmp(k, "start_latency_ms") == 0 || strcmp(k, "pull_latency_ms") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > (json_int_t)1 << 40) {
                rc = bad_config(err, target, "expected a non-negative integer");
                break;
            }
            json_int_t n = json_integer_value(v);
            if (k[0] == 'c')
                s->cores = n > 4096 ? 4096 : (uint32_t)n;
            else if (k[0] == 'm')
                s->memory_mib = (uint64_t)n;
            else if (k[0] == 's')
                s->start_latency_ms = n;
            else
                s->pull_latency_ms = n;
        } else if (strcmp(k, "images") == 0) {
            images_given = true;
            size_t i;
            json_t *x;
            if (!json_is_array(v)) {
                rc = bad_config(err, target, "expected an array of image names");
                break;
            }
            json_array_foreach(v, i, x) {
                if (!json_is_string(x) || (rc = image_add(s, json_string_value(x))) < 0) {
                    rc = bad_config(err, target, "expected at most 256 image names");
                    break;
                }
            }
            if (rc < 0)
                break;
        } else if (strcmp(k, "rules") == 0) {
            size_t i;
            json_t *x;
            if (!json_is_array(v) || json_array_size(v) > RULES_MAX) {
                rc = bad_config(err, target, "expected an array of at most 32 rules");
                break;
            }
            json_array_foreach(v, i, x) {
                snprintf(target, sizeof target, "config.rules[%zu]", i);
                rule_t *r = &s->rules[s->nrules];
                r->exit_after_ms = -1;
                json_t *glob = json_object_get(x, "image");
                if (!json_is_object(x) || !json_is_string(glob)) {
                    rc = bad_config(err, target, "a rule is an object with an image glob");
                    break;
                }
                const char *rk;
                json_t *rv;
                json_object_foreach(x, rk, rv) {
                    if (strcmp(rk, "image") == 0)
                        continue;
                    if (strcmp(rk, "pull_fail") == 0 && json_is_boolean(rv)) {
                        r->pull_fail = json_is_true(rv);
                    } else if (strcmp(rk, "exit_after_ms") == 0 && json_is_integer(rv) &&
                               json_integer_value(rv) >= 0) {
                        r->exit_after_ms = json_integer_value(rv);
                    } else if (strcmp(rk, "exit_code") == 0 && json_is_integer(rv) &&
                               json_integer_value(rv) >= 0 && json_integer_value(rv) <= 255) {
                        r->exit_code = (int)json_integer_value(rv);
                    } else {
                        snprintf(target, sizeof target, "config.rules[%zu].%s", i, rk);
                        rc = bad_config(err, target, "unknown member or bad value");
                        break;
                    }
                }
                if (rc < 0)
                    break;
                r->glob = strdup(json_string_value(glob));
                if (r->glob == NULL) {
                    rc = BERTH_ENOMEM;
                    break;
                }
                s->nrules++;
            }
            if (rc < 0)
                break;
        } else {
            rc = bad_config(err, target, "unknown member");
            break;
        }
    }
    json_decref(root);
    if (rc == 0 && !images_given)
        rc = image_add(s, "busybox:latest");
    if (rc == BERTH_ENOMEM)
        berth_error_set(err, rc, "OutOfMemory", "", "out of memory");
    return rc;
}

static int sim_open(const char *config_json, const char *host, void **ctx, berth_error_t *err)
{
    *ctx = NULL;
    sim_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    snprintf(s->host, sizeof s->host, "%s", host != NULL ? host : "");
    s->next_port = SIM_PORT_FIRST;
    pthread_mutex_init(&s->lock, NULL);
    int rc = config_load(s, config_json, err);
    if (rc < 0) {
        sim_close(s);
        return rc;
    }
    *ctx = s;
    return 0;
}

static int sim_probe(void *ctx, berth_plugin_host_info_t *info, berth_error_t *err)
{
    sim_t *s = ctx;
    memset(info, 0, sizeof *info);
    snprintf(info->runtime, sizeof info->runtime, "sim %s", berth_version());
    info->cores = s->cores;
    info->memory_mib = s->memory_mib;
    info->os = BERTH_OS_LINUX;
    return 0;
}

static bool image_cached(const sim_t *s, const char *image)
{
    for (size_t i = 0; i < s->nimages; i++)
        if (strcmp(s->images[i], image) == 0)
            return true;
    return false;
}

static int sim_image_ensure(void *ctx, const char *image, const berth_registry_credential_t *cred,
                            bool *cached, berth_error_t *err)
{
    sim_t *s = ctx;
    if (cached != NULL)
        *cached = false;
    if (image == NULL || image[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidImage", "image", "no image given");
    if (image_cached(s, image)) {
        if (cached != NULL)
            *cached = true;
        return 0;
    }
    berth__clock_sleep_ms(s->pull_latency_ms);
    const rule_t *r = rule_for(s, image);
    if (r != NULL && r->pull_fail)
        return berth_error_set(err, BERTH_EIO, "ImagePullFailed", "image",
                               "failed to pull image '%s': the simulated registry refused it",
                               image);
    if (image_add(s, image) < 0)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    return 0;
}

static int sim_images(void *ctx, berth_plugin_image_cb cb, void *data, berth_error_t *err)
{
    sim_t *s = ctx;
    for (size_t i = 0; i < s->nimages; i++)
        cb(s->images[i], data);
    return 0;
}

static sgroup_t *group_find(sim_t *s, const char *key)
{
    sgroup_t *g = NULL;
    HASH_FIND(hh, s->groups, key, strlen(key), g);
    return g;
}

static const char *env_of(const berth_container_t *c, const char *name)
{
    for (size_t i = 0; i < c->nenv; i++)
        if (strcmp(c->env[i].name, name) == 0)
            return c->env[i].value != NULL ? c->env[i].value : c->env[i].secure_value;
    return NULL;
}

static int ctr_init(sim_t *s, ctr_t *c, const berth_container_t *spec, bool is_init)
{
    snprintf(c->name, sizeof c->name, "%s", spec->name);
    c->image = strdup(spec->image);
    if (c->image == NULL)
        return BERTH_ENOMEM;
    c->is_init = is_init;
    c->created = true;
    c->stopped_code = -1;
    c->cpu_millicores = spec->requests.cpu_millicores;
    c->memory_bytes = (uint64_t)spec->requests.memory_milli_gb * (1024u * 1024u * 1024u) / 1000u;
    const rule_t *r = rule_for(s, spec->image);
    c->exit_after_ms = r != NULL ? r->exit_after_ms : -1;
    c->exit_code = r != NULL ? r->exit_code : 0;
    const char *after = env_of(spec, "BERTH_SIM_EXIT_AFTER_MS");
    const char *code = env_of(spec, "BERTH_SIM_EXIT_CODE");
    if (after != NULL)
        c->exit_after_ms = strtoll(after, NULL, 10);
    if (code != NULL)
        c->exit_code = (int)strtol(code, NULL, 10) & 0xff;
    log_line(c, "created from image %s", c->image);
    if (!is_init) {
        if (config_set(c, spec) != 0)
            return BERTH_ENOMEM;
        if (spec->nconfig_map > 0)
            log_line(c, "config map delivered (%zu files)", spec->nconfig_map);
    }
    return 0;
}

/* Whether a group of the context publishes a port on host port hp. */
static bool port_held(const sim_t *s, uint32_t hp, berth_protocol_t proto)
{
    for (const sgroup_t *g = s->groups; g != NULL; g = g->hh.next)
        for (size_t i = 0; i < g->nports; i++)
            if (g->ports[i].host_port == hp && g->ports[i].protocol == proto)
                return true;
    return false;
}

/* Publishes grp's ports (spec's ipAddress.ports): on the host port the
 * agent asks for when no group holds it, else on the next free one.
 * grp is not in the table yet. */
static void ports_publish(sim_t *s, sgroup_t *grp, const berth_runtime_group_t *g)
{
    const berth_ip_address_t *ip = g->spec->ip_address;
    for (size_t i = 0; ip != NULL && i < ip->nports && grp->nports < BERTH_PLUGIN_PORTS_MAX;
         i++) {
        berth_published_port_t *p = &grp->ports[grp->nports];
        p->port = ip->ports[i].port;
        /* Unset in the document: TCP, as an engine reports it. */
        p->protocol = ip->ports[i].protocol == BERTH_PROTOCOL_UDP ? BERTH_PROTOCOL_UDP
                                                                  : BERTH_PROTOCOL_TCP;
        snprintf(p->host_ip, sizeof p->host_ip, "127.0.0.1");
        p->host_port = 0;
        for (size_t k = 0; g->host_ports != NULL && k < g->nhost_ports; k++) {
            const berth_published_port_t *w = &g->host_ports[k];
            bool same = w->port == p->port &&
                        (w->protocol == BERTH_PROTOCOL_UDP) == (p->protocol == BERTH_PROTOCOL_UDP);
            if (same && w->host_port != 0 &&
                !port_held(s, w->host_port, p->protocol))
                p->host_port = w->host_port;
        }
        for (uint32_t tries = 0; p->host_port == 0 && tries <= SIM_PORT_LAST - SIM_PORT_FIRST;
             tries++) {
            uint32_t hp = s->next_port;
            s->next_port = hp >= SIM_PORT_LAST ? SIM_PORT_FIRST : hp + 1;
            bool mine = false;      /* taken by a port of this group already */
            for (size_t k = 0; k < grp->nports; k++)
                mine = mine || (grp->ports[k].host_port == hp &&
                                grp->ports[k].protocol == p->protocol);
            if (!mine && !port_held(s, hp, p->protocol))
                p->host_port = hp;
        }
        grp->nports++;
    }
}

static int sim_create(void *ctx, const berth_runtime_group_t *g, berth_error_t *err)
{
    sim_t *s = ctx;
    if (group_find(s, g->key) != NULL)
        return berth_error_set(err, BERTH_EEXIST, "ContainerGroupExists", "key",
                               "the host already holds container group '%s'", g->key);
    const berth_group_t *spec = g->spec;
    size_t n = spec->ninit_containers + spec->ncontainers;
    if (n > BERTH_PLUGIN_CONTAINERS_MAX)
        return berth_error_set(err, BERTH_EINVAL, "TooManyContainers", "properties.containers",
                               "a group holds at most %d containers", BERTH_PLUGIN_CONTAINERS_MAX);
    for (size_t i = 0; i < n; i++) {
        const berth_container_t *c = i < spec->ninit_containers
            ? &spec->init_containers[i] : &spec->containers[i - spec->ninit_containers];
        if (!image_cached(s, c->image))
            return berth_error_set(err, BERTH_EINVAL, "ImageNotPresent", "image",
                                   "image '%s' is not on the host: ensure it first", c->image);
    }
    sgroup_t *grp = calloc(1, sizeof *grp);
    int rc = grp == NULL ? BERTH_ENOMEM : 0;
    if (rc == 0) {
        grp->key = strdup(g->key);
        grp->c = calloc(n, sizeof *grp->c);
        rc = grp->key == NULL || grp->c == NULL ? BERTH_ENOMEM : 0;
    }
    for (size_t i = 0; i < n && rc == 0; i++, grp->n++)
        rc = ctr_init(s, &grp->c[i],
                      i < spec->ninit_containers ? &spec->init_containers[i]
                                                 : &spec->containers[i - spec->ninit_containers],
                      i < spec->ninit_containers);
    if (rc == 0) {
        grp->generation = g->generation;
        grp->digest = g->digest;
        /* A group in a subnet is reached on its private address alone: it
         * publishes nothing, as the docker plugin's. */
        bool private_net = g->subnet_id != NULL && g->subnet_address != NULL;
        snprintf(grp->ip, sizeof grp->ip, "%s", private_net ? g->subnet_address : "127.0.0.1");
        if (!private_net)
            ports_publish(s, grp, g);
        HASH_ADD_KEYPTR(hh, s->groups, grp->key, strlen(grp->key), grp);
        if (grp->hh.tbl == NULL)
            rc = BERTH_ENOMEM;
    }
    if (rc < 0) {
        group_free(grp);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    return 0;
}

/* Brings a container's state up to `now`: a run that reached its exit time
 * terminates. */
static void ctr_tick(ctr_t *c, int64_t now)
{
    if (c->running && c->exit_after_ms >= 0 && now >= c->started_ms + c->exit_after_ms) {
        c->running = false;
        c->finished_ms = c->started_ms + c->exit_after_ms;
        c->stopped_code = -1;
        log_line(c, "exited with code %d", c->exit_code);
    }
}

static void ctr_start(sim_t *s, ctr_t *c, int64_t now)
{
    ctr_tick(c, now);
    if (c->running)
        return;
    c->started = true;
    c->running = true;
    c->ready_ms = now + s->start_latency_ms;
    c->started_ms = c->ready_ms;
    c->finished_ms = 0;
    c->stopped_code = -1;
    log_line(c, "started");
}

static ctr_t *ctr_find(sgroup_t *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->c[i].name, name) == 0)
            return &g->c[i];
    return NULL;
}

static int no_group(berth_error_t *err, const char *key)
{
    return berth_error_set(err, BERTH_ENOENT, "ContainerGroupNotFound", "key",
                           "the host holds no container group '%s'", key);
}

static int no_container(berth_error_t *err, const char *key, const char *name)
{
    return berth_error_set(err, BERTH_ENOENT, "ContainerNotFound", "container",
                           "container group '%s' has no container '%s'", key, name);
}

static int sim_start(void *ctx, const char *key, const char *container, berth_error_t *err)
{
    sim_t *s = ctx;
    sgroup_t *g = group_find(s, key);
    if (g == NULL)
        return no_group(err, key);
    int64_t now = berth__clock_wall_ms();
    if (container != NULL) {
        ctr_t *c = ctr_find(g, container);
        if (c == NULL)
            return no_container(err, key, container);
        ctr_start(s, c, now);
        return 0;
    }
    for (size_t i = 0; i < g->n; i++)
        if (!g->c[i].is_init)
            ctr_start(s, &g->c[i], now);
    return 0;
}

static void ctr_stop(ctr_t *c, int64_t now)
{
    ctr_tick(c, now);
    if (!c->running)
        return;
    c->running = false;
    if (now < c->ready_ms) {
        c->ready_ms = 0;        /* never came up */
        c->started_ms = now;
    }
    c->finished_ms = now;
    c->stopped_code = 143;
    log_line(c, "stopped (SIGTERM)");
}

static int sim_stop(void *ctx, const char *key, const char *container, uint32_t grace_s,
                    berth_error_t *err)
{
    sim_t *s = ctx;
    sgroup_t *g = group_find(s, key);
    if (g == NULL)
        return no_group(err, key);
    int64_t now = berth__clock_wall_ms();
    if (container != NULL) {
        ctr_t *c = ctr_find(g, container);
        if (c == NULL)
            return no_container(err, key, container);
        ctr_stop(c, now);
        return 0;
    }
    for (size_t i = 0; i < g->n; i++)
        ctr_stop(&g->c[i], now);
    return 0;
}

static int sim_restart(void *ctx, const char *key, uint32_t grace_s, berth_error_t *err)
{
    int rc = sim_stop(ctx, key, NULL, grace_s, err);
    return rc < 0 ? rc : sim_start(ctx, key, NULL, err);
}

static int sim_remove(void *ctx, const char *key, berth_error_t *err)
{
    sim_t *s = ctx;
    sgroup_t *g = group_find(s, key);
    if (g == NULL)
        return 0;
    HASH_DELETE(hh, s->groups, g);
    group_free(g);
    return 0;
}

static int sim_status(void *ctx, const char *key, berth_group_status_t *out, berth_error_t *err)
{
    sim_t *s = ctx;
    /* Everything but the container slots, which are cleared as filled: a
     * status is asked for often, and the slots are most of its bytes. */
    memset(out, 0, offsetof(berth_group_status_t, containers));
    sgroup_t *g = group_find(s, key);
    if (g == NULL)
        return 0;
    out->exists = true;
    out->generation = g->generation;
    out->digest = g->digest;
    snprintf(out->ip, sizeof out->ip, "%s", g->ip);
    out->nports = g->nports;
    memcpy(out->ports, g->ports, g->nports * sizeof g->ports[0]);
    int64_t now = berth__clock_wall_ms();
    out->ncontainers = g->n;
    for (size_t i = 0; i < g->n; i++) {
        ctr_t *c = &g->c[i];
        berth_container_status_t *o = &out->containers[i];
        memset(o, 0, sizeof *o);
        ctr_tick(c, now);
        snprintf(o->name, sizeof o->name, "%s", c->name);
        o->exists = true;
        if (c->running && now >= c->ready_ms) {
            o->state = BERTH_CONTAINER_RUNNING;
            o->started_ms = c->started_ms;
        } else if (c->started && !c->running && c->ready_ms != 0) {
            o->state = BERTH_CONTAINER_TERMINATED;
            o->exit_code = c->stopped_code >= 0 ? c->stopped_code : c->exit_code;
            o->started_ms = c->started_ms;
            o->finished_ms = c->finished_ms;
            snprintf(o->detail, sizeof o->detail, "%s", o->exit_code == 0 ? "Completed" : "Error");
        } else {
            o->state = BERTH_CONTAINER_WAITING;
            snprintf(o->detail, sizeof o->detail, "%s", c->running ? "ContainerCreating" : "Created");
        }
    }
    return 0;
}

static int sim_logs(void *ctx, const char *key, const char *container, uint32_t tail,
                    bool timestamps, char **out, size_t *len, berth_error_t *err)
{
    sim_t *s = ctx;
    *out = NULL;
    *len = 0;
    sgroup_t *g = group_find(s, key);
    if (g == NULL)
        return no_group(err, key);
    ctr_t *c = ctr_find(g, container);
    if (c == NULL)
        return no_container(err, key, container);
    ctr_tick(c, berth__clock_wall_ms());
    /* Lines are "<time> <text>\n"; keep the last `tail`, drop the time
     * unless asked for. */
    size_t start = 0;
    if (tail > 0) {
        uint32_t seen = 0;
        size_t i = c->log_len;
        while (i > 0) {
            if (c->log[i - 1] == '\n' && i != c->log_len && ++seen == tail)
                break;
            i--;
        }
        if (seen == tail)
            start = i;
    }
    char *buf = malloc(c->log_len - start + 1);
    if (buf == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    size_t n = 0;
    for (size_t i = start; i < c->log_len;) {
        const char *nl = memchr(c->log + i, '\n', c->log_len - i);
        size_t end = nl != NULL ? (size_t)(nl - c->log) + 1 : c->log_len;
        size_t from = i;
        if (!timestamps) {
            const char *sp = memchr(c->log + i, ' ', end - i);
            if (sp != NULL)
                from = (size_t)(sp - c->log) + 1;
        }
        memcpy(buf + n, c->log + from, end - from);
        n += end - from;
        i = end;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* exec's ["cat", path]: the content of c's config map file `path`. */
static int config_cat(const ctr_t *c, const char *path, char **out, size_t *len,
                      int *exit_code, berth_error_t *err)
{
    char dir[BERTH_NAME_MAX + 32];
    snprintf(dir, sizeof dir, "/mnt/configmap/%s/", c->name);
    const char *value = NULL;
    if (strncmp(path, dir, strlen(dir)) == 0)
        for (size_t k = 0; k < c->nconfig && value == NULL; k++)
            if (strcmp(c->config[k].name, path + strlen(dir)) == 0)
                value = c->config[k].value;
    *exit_code = value != NULL ? 0 : 1;
    if (value == NULL)
        value = "";
    *out = strdup(value);
    if (*out == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    *len = strlen(value);
    return 0;
}

static int sim_exec(void *ctx, const char *key, const char *container, const char *const *argv,
                    size_t argc, char **out, size_t *len, int *exit_code, berth_error_t *err)
{
    sim_t *s = ctx;
    *out = NULL;
    *len = 0;
    sgroup_t *g = group_find(s, key);
    if (g == NULL)
        return no_group(err, key);
    ctr_t *c = ctr_find(g, container);
    if (c == NULL)
        return no_container(err, key, container);
    int64_t now = berth__clock_wall_ms();
    ctr_tick(c, now);
    if (!c->running || now < c->ready_ms)
        return berth_error_set(err, BERTH_EINVAL, "ContainerNotRunning", "container",
                               "container '%s' is not running", container);
    if (argc == 0)
        return berth_error_set(err, BERTH_EINVAL, "InvalidCommand", "command",
                               "no command given");
    if (argc == 2 && strcmp(argv[0], "cat") == 0)
        return config_cat(c, argv[1], out, len, exit_code, err);
    size_t total = 2;
    for (size_t i = 0; i < argc; i++)
        total += strlen(argv[i]) + 1;
    char *buf = malloc(total);
    if (buf == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < argc; i++) {
        size_t k = strlen(argv[i]);
        if (i > 0)
            buf[n++] = ' ';
        memcpy(buf + n, argv[i], k);
        n += k;
    }
    buf[n++] = '\n';
    buf[n] = '\0';
    *exit_code = argc == 2 && strcmp(argv[0], "exit") == 0 ? (int)strtol(argv[1], NULL, 10) & 0xff
                                                           : 0;
    *out = buf;
    *len = n;
    return 0;
}

static int sim_list(void *ctx, berth_plugin_list_cb cb, void *data, berth_error_t *err)
{
    sim_t *s = ctx;
    for (const sgroup_t *g = s->groups; g != NULL; g = g->hh.next)
        cb(g->key, g->generation, g->digest, data);
    return 0;
}

static int sim_stats(void *ctx, const char *key, berth_group_stats_t *out, berth_error_t *err)
{
    sim_t *s = ctx;
    memset(out, 0, offsetof(berth_group_stats_t, containers));
    sgroup_t *g = group_find(s, key);
    if (g == NULL)
        return no_group(err, key);
    int64_t now = berth__clock_wall_ms();
    for (size_t i = 0; i < g->n; i++) {
        ctr_t *c = &g->c[i];
        if (c->is_init)
            continue;
        berth_container_stats_t *o = &out->containers[out->ncontainers++];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "%s", c->name);
        ctr_tick(c, now);
        if (!c->running || now < c->ready_ms)
            continue;
        uint64_t ran_ms = (uint64_t)(now - c->started_ms);
        o->running = true;
        o->cpu_ns = ran_ms * c->cpu_millicores * 1000u;  /* ms x mc x 10^6 / 10^3 */
        o->memory_bytes = c->memory_bytes / 2;
        out->rx_bytes += ran_ms * SIM_RX_BPS / 1000u;
        out->tx_bytes += ran_ms * SIM_TX_BPS / 1000u;
    }
    return 0;
}

static int sim_config_maps(void *ctx, const char *key, const berth_group_t *spec,
                           berth_error_t *err)
{
    sim_t *s = ctx;
    sgroup_t *g = group_find(s, key);
    if (g == NULL)
        return no_group(err, key);
    for (size_t i = 0; i < spec->ncontainers; i++) {
        ctr_t *c = ctr_find(g, spec->containers[i].name);
        if (c == NULL || c->is_init)
            return no_container(err, key, spec->containers[i].name);
        if (config_set(c, &spec->containers[i]) != 0)
            return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        log_line(c, "config map delivered (%zu files)", c->nconfig);
    }
    return 0;
}

/* ---- interactive sessions: a tiny shell --------------------------------------
 *
 * A session runs no process: it is a deterministic mini-shell answering
 * the script the plugin tests and the end-to-end tests send the way
 * busybox sh does.  It copies nothing but its own state at open, so it
 * runs on its own thread without the context's lock.  Output is buffered
 * in the session (at most SIM_SESSION_OUT_MAX bytes) and an eventfd is
 * readable while some is waiting or once the output ended. */

#define SIM_SESSION_OUT_MAX (1u << 20)  /* output waiting to be read          */
#define SIM_SESSION_LINE_MAX 4096       /* an input line                      */
#define SIM_SESSION_VARS_MAX 32
#define SIM_SESSION_DEFAULT_ROWS 24
#define SIM_SESSION_DEFAULT_COLS 80

typedef enum sim_session_mode {
    SIM_SH,                         /* the interactive mini-shell            */
    SIM_LINE,                       /* one line, then the output ends        */
    SIM_CAT                         /* input copied to output until its end  */
} sim_session_mode_t;

typedef struct sim_var {
    char *name, *value;
} sim_var_t;

typedef struct sim_session {
    sim_session_mode_t mode;
    bool tty;
    uint16_t rows, cols;
    int efd;                        /* readable: output waiting, or ended    */
    bool signaled;                  /* efd holds a count                     */
    char *out;                      /* output waiting to be read             */
    size_t out_len;
    bool full;                      /* output went beyond the bound          */
    bool ended;
    int status;                     /* once ended                            */
    int last;                       /* the last command's status ($?)        */
    char line[SIM_SESSION_LINE_MAX];/* the input line being typed            */
    size_t line_len;
    char *read_name;                /* `read NAME` waits for the next line   */
    char *rest;                     /* the commands after that read          */
    sim_var_t vars[SIM_SESSION_VARS_MAX];
    size_t nvars;
} sim_session_t;

static void sess_signal(sim_session_t *ss)
{
    if (!ss->signaled) {
        uint64_t one = 1;
        ss->signaled = write(ss->efd, &one, sizeof one) == (ssize_t)sizeof one;
    }
}

/* Appends raw bytes to the output; false (and ss->full) beyond the bound. */
static bool sess_put(sim_session_t *ss, const char *data, size_t len)
{
    if (len == 0)
        return true;
    if (ss->out_len + len > SIM_SESSION_OUT_MAX) {
        ss->full = true;
        return false;
    }
    char *p = realloc(ss->out, ss->out_len + len);
    if (p == NULL) {
        ss->full = true;
        return false;
    }
    memcpy(p + ss->out_len, data, len);
    ss->out = p;
    ss->out_len += len;
    sess_signal(ss);
    return true;
}

/* Appends output as a terminal shows it: "\n" is "\r\n" with a tty (onlcr). */
static bool sess_out(sim_session_t *ss, const char *data, size_t len)
{
    size_t from = 0;
    for (size_t i = 0; ss->tty && i < len; i++)
        if (data[i] == '\n') {
            if (!sess_put(ss, data + from, i - from) || !sess_put(ss, "\r\n", 2))
                return false;
            from = i + 1;
        }
    return sess_put(ss, data + from, len - from);
}

static bool sess_outs(sim_session_t *ss, const char *text)
{
    return sess_out(ss, text, strlen(text));
}

static void sess_end(sim_session_t *ss, int status)
{
    if (ss->ended)
        return;
    ss->ended = true;
    ss->status = status & 0xff;
    sess_signal(ss);
}

static const char *var_get(const sim_session_t *ss, const char *name, size_t len)
{
    for (size_t i = 0; i < ss->nvars; i++)
        if (strlen(ss->vars[i].name) == len && strncmp(ss->vars[i].name, name, len) == 0)
            return ss->vars[i].value;
    return "";
}

static bool var_set(sim_session_t *ss, const char *name, const char *value)
{
    char *v = strdup(value);
    if (v == NULL)
        return false;
    for (size_t i = 0; i < ss->nvars; i++)
        if (strcmp(ss->vars[i].name, name) == 0) {
            free(ss->vars[i].value);
            ss->vars[i].value = v;
            return true;
        }
    char *n = strdup(name);
    if (n == NULL || ss->nvars == SIM_SESSION_VARS_MAX) {
        free(n);
        free(v);
        return false;
    }
    ss->vars[ss->nvars].name = n;
    ss->vars[ss->nvars++].value = v;
    return true;
}

static bool is_name_char(char c, bool first)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && c >= '0' && c <= '9');
}

/* The next blank-separated word of *p (NULL at the end), NUL-terminated in
 * place. */
static char *next_word(char **p)
{
    char *w = *p;
    while (*w == ' ' || *w == '\t')
        w++;
    if (*w == '\0')
        return NULL;
    char *e = w;
    while (*e != '\0' && *e != ' ' && *e != '\t')
        e++;
    *p = *e ? e + 1 : e;
    *e = '\0';
    return w;
}

static bool is_word(const char *w, const char *want)
{
    return w != NULL && strcmp(w, want) == 0;
}

/* `echo WORDS`: the words joined by one space, $NAME and $? expanded; a
 * redirection to stderr (which is the same output here) is dropped. */
static bool cmd_echo(sim_session_t *ss, char *args)
{
    bool first = true;
    for (char *w; (w = next_word(&args)) != NULL;) {
        if (strcmp(w, ">&2") == 0 || strcmp(w, "1>&2") == 0)
            continue;
        if (!first && !sess_outs(ss, " "))
            return false;
        first = false;
        for (const char *c = w; *c != '\0';) {
            if (c[0] == '$' && c[1] == '?') {
                char num[16];
                snprintf(num, sizeof num, "%d", ss->last);
                if (!sess_outs(ss, num))
                    return false;
                c += 2;
            } else if (c[0] == '$' && is_name_char(c[1], true)) {
                const char *n = c + 1;
                size_t len = 0;
                while (is_name_char(n[len], len == 0))
                    len++;
                if (!sess_outs(ss, var_get(ss, n, len)))
                    return false;
                c = n + len;
            } else {
                if (!sess_out(ss, c, 1))
                    return false;
                c++;
            }
        }
    }
    ss->last = 0;
    return sess_outs(ss, "\n");
}

/* Runs `cmds` (commands separated by ';') until the end, an `exit`, or a
 * `read`, which keeps the commands after it for the next input line.
 * False when the output went beyond its bound. */
static bool sess_run(sim_session_t *ss, const char *cmds)
{
    char *buf = strdup(cmds);
    if (buf == NULL)
        return false;
    bool ok = true;
    char *p = buf;
    while (ok && p != NULL && !ss->ended) {
        char *semi = strchr(p, ';');
        if (semi != NULL)
            *semi++ = '\0';
        char *args = p;
        p = semi;
        char *cmd = next_word(&args);
        if (cmd == NULL)
            continue;
        if (strcmp(cmd, "echo") == 0) {
            ok = cmd_echo(ss, args);
        } else if (strcmp(cmd, "read") == 0) {
            char *name = next_word(&args);
            if (name == NULL || !is_name_char(name[0], true)) {
                ok = sess_outs(ss, "sh: read: need variable name\n");
                ss->last = 1;
                continue;
            }
            free(ss->read_name);
            free(ss->rest);
            ss->read_name = strdup(name);
            ss->rest = strdup(p != NULL ? p : "");
            if (ss->read_name == NULL || ss->rest == NULL)
                ok = false;
            break;
        } else if (strcmp(cmd, "exit") == 0) {
            char *n = next_word(&args);
            sess_end(ss, n != NULL ? (int)strtol(n, NULL, 10) : ss->last);
        } else if (strcmp(cmd, "stty") == 0 && is_word(next_word(&args), "size")) {
            if (ss->tty) {
                char size[32];
                snprintf(size, sizeof size, "%u %u\n", (unsigned)ss->rows, (unsigned)ss->cols);
                ok = sess_outs(ss, size);
                ss->last = 0;
            } else {
                ok = sess_outs(ss, "stty: standard input: Not a tty\n");
                ss->last = 1;
            }
        } else {
            char msg[SIM_SESSION_LINE_MAX + 32];
            snprintf(msg, sizeof msg, "sh: %s: not found\n", cmd);
            ok = sess_outs(ss, msg);
            ss->last = 127;
        }
    }
    free(buf);
    if (ok && ss->mode == SIM_LINE && ss->read_name == NULL)
        sess_end(ss, ss->last);
    return ok;
}

/* One whole input line (without its newline), or NULL at the end of
 * input: given to a waiting `read`, or run. */
static bool sess_line(sim_session_t *ss, const char *line)
{
    if (ss->mode == SIM_CAT) {
        if (line == NULL) {
            sess_end(ss, 0);
            return true;
        }
        return sess_outs(ss, line) && sess_outs(ss, "\n");
    }
    if (ss->read_name != NULL) {
        char *name = ss->read_name, *rest = ss->rest;
        ss->read_name = ss->rest = NULL;
        bool ok = var_set(ss, name, line != NULL ? line : "");
        ss->last = line != NULL ? 0 : 1;
        ok = ok && sess_run(ss, rest);
        free(name);
        free(rest);
        if (!ok || line != NULL)
            return ok;
    } else if (line != NULL) {
        return sess_run(ss, line);
    }
    /* The end of input: the shell exits 0 (a one-liner, with its status). */
    sess_end(ss, ss->mode == SIM_LINE ? ss->last : 0);
    return true;
}

/* Input bytes as a terminal (or a pipe) delivers them: with a tty,
 * echoed, "\r" taken as "\n" (icrnl), DEL or ^H erasing the last
 * character and ^D at the start of a line as the end of input. */
static bool sess_input(sim_session_t *ss, const char *data, size_t len)
{
    for (size_t i = 0; i < len && !ss->ended; i++) {
        char c = data[i];
        if (ss->tty && c == '\r')
            c = '\n';
        if (ss->tty && c == 4) {
            if (ss->line_len == 0 && !sess_line(ss, NULL))
                return false;
            continue;
        }
        if (ss->tty && (c == 0x7f || c == '\b')) {
            /* erase: the terminal takes the last character back */
            if (ss->line_len > 0) {
                ss->line_len--;
                if (!sess_put(ss, "\b \b", 3))
                    return false;
            }
            continue;
        }
        if (ss->tty && !sess_out(ss, &c, 1))
            return false;
        if (c == '\n' || ss->line_len == SIM_SESSION_LINE_MAX - 1) {
            ss->line[ss->line_len] = '\0';
            ss->line_len = 0;
            if (!sess_line(ss, ss->line))
                return false;
            if (c == '\n')
                continue;
        }
        ss->line[ss->line_len++] = c;
    }
    return true;
}

static void sess_free(sim_session_t *ss)
{
    if (ss == NULL)
        return;
    if (ss->efd >= 0)
        close(ss->efd);
    free(ss->out);
    free(ss->read_name);
    free(ss->rest);
    for (size_t i = 0; i < ss->nvars; i++) {
        free(ss->vars[i].name);
        free(ss->vars[i].value);
    }
    free(ss);
}

static bool is_shell(const char *word)
{
    return strcmp(word, "sh") == 0 || strcmp(word, "/bin/sh") == 0 ||
           strcmp(word, "bash") == 0 || strcmp(word, "/bin/bash") == 0;
}

/* Checks that container `container` of group `key` runs; under the
 * context's lock. */
static int session_target(sim_t *s, const char *key, const char *container,
                          berth_error_t *err)
{
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    sgroup_t *g = group_find(s, key);
    ctr_t *c = g != NULL ? ctr_find(g, container) : NULL;
    int64_t now = berth__clock_wall_ms();
    if (c != NULL)
        ctr_tick(c, now);
    if (g == NULL)
        rc = no_group(err, key);
    else if (c == NULL)
        rc = no_container(err, key, container);
    else if (!c->running || now < c->ready_ms)
        rc = berth_error_set(err, BERTH_EINVAL, "ContainerNotRunning", "container",
                             "container '%s' is not running", container);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sim_session_open(void *ctx, const char *key, const char *container,
                            const char *const *argv, size_t argc,
                            const berth_session_opts_t *opts, void **session, int *fd,
                            berth_error_t *err)
{
    *session = NULL;
    *fd = -1;
    if (argv == NULL || argc == 0)
        return berth_error_set(err, BERTH_EINVAL, "InvalidCommand", "command",
                               "no command given");
    int rc = session_target(ctx, key, container, err);
    if (rc != 0)
        return rc;
    sim_session_t *ss = calloc(1, sizeof *ss);
    if (ss == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    ss->tty = opts != NULL && opts->tty;
    ss->rows = ss->tty && opts->rows ? opts->rows : SIM_SESSION_DEFAULT_ROWS;
    ss->cols = ss->tty && opts->cols ? opts->cols : SIM_SESSION_DEFAULT_COLS;
    ss->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ss->efd < 0) {
        int e = errno;
        sess_free(ss);
        return berth_error_set(err, BERTH_EIO, "SessionFailed", "", "cannot make an eventfd: %s",
                               strerror(e));
    }
    bool ok = true;
    if (argc == 1 && is_shell(argv[0])) {
        ss->mode = SIM_SH;
    } else if (argc == 1 && strcmp(argv[0], "cat") == 0) {
        ss->mode = SIM_CAT;
    } else {
        /* sh -c WORDS: the words after -c, as berthd splits a command on
         * spaces (ACI's rule), are the script; anything else is a line. */
        bool script = argc >= 3 && is_shell(argv[0]) && strcmp(argv[1], "-c") == 0;
        size_t from = script ? 2 : 0;
        size_t total = 1;
        for (size_t i = from; i < argc; i++)
            total += strlen(argv[i]) + 1;
        char *line = malloc(total);
        ok = line != NULL;
        if (ok) {
            size_t n = 0;
            for (size_t i = from; i < argc; i++) {
                if (i > from)
                    line[n++] = ' ';
                memcpy(line + n, argv[i], strlen(argv[i]));
                n += strlen(argv[i]);
            }
            line[n] = '\0';
            char *run = line;
            /* One pair of quotes around the whole script goes, as the
             * shell that typed it would have taken them. */
            if (script && n >= 2 && (line[0] == '"' || line[0] == '\'') &&
                line[n - 1] == line[0]) {
                line[n - 1] = '\0';
                run = line + 1;
            }
            ss->mode = SIM_LINE;
            ok = sess_run(ss, run);
            free(line);
        }
    }
    if (!ok) {
        sess_free(ss);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    *session = ss;
    *fd = ss->efd;
    return 0;
}

static int sim_session_read(void *session, char *buf, size_t cap, size_t *n,
                            berth_error_t *err)
{
    (void)err;
    sim_session_t *ss = session;
    *n = 0;
    if (ss->out_len == 0)
        return ss->ended ? 1 : 0;
    size_t k = ss->out_len < cap ? ss->out_len : cap;
    memcpy(buf, ss->out, k);
    memmove(ss->out, ss->out + k, ss->out_len - k);
    ss->out_len -= k;
    *n = k;
    if (ss->out_len == 0 && !ss->ended && ss->signaled) {
        uint64_t count;
        if (read(ss->efd, &count, sizeof count) == (ssize_t)sizeof count)
            ss->signaled = false;
    }
    return 0;
}

static int sim_session_write(void *session, const char *data, size_t len,
                             berth_error_t *err)
{
    sim_session_t *ss = session;
    if (ss->ended && len == 0)
        return 0;   /* the input of a shell that exited: closed already */
    if (ss->ended)
        return berth_error_set(err, BERTH_EIO, "SessionEnded", "",
                               "the process's output has ended");
    if (ss->full)
        return berth_error_set(err, BERTH_EIO, "SessionOutputFull", "",
                               "more than %u bytes of output are waiting to be read",
                               SIM_SESSION_OUT_MAX);
    bool ok = true;
    if (len > 0) {
        ok = sess_input(ss, data, len);
    } else if (!ss->ended) {
        /* The end of input: a partial line is still a line (cat copies
         * it as it is). */
        if (ss->line_len > 0 && ss->mode == SIM_CAT) {
            ok = sess_out(ss, ss->line, ss->line_len);
            ss->line_len = 0;
        } else if (ss->line_len > 0) {
            ss->line[ss->line_len] = '\0';
            ss->line_len = 0;
            ok = sess_line(ss, ss->line);
        }
        ok = ok && (ss->ended || sess_line(ss, NULL));
    }
    if (!ok)
        return berth_error_set(err, BERTH_EIO, "SessionOutputFull", "",
                               "more than %u bytes of output are waiting to be read",
                               SIM_SESSION_OUT_MAX);
    return 0;
}

static int sim_session_resize(void *session, uint16_t rows, uint16_t cols,
                              berth_error_t *err)
{
    (void)err;
    sim_session_t *ss = session;
    if (ss->tty) {
        ss->rows = rows;
        ss->cols = cols;
    }
    return 0;
}

static int sim_session_close(void *session, int *exit_code, berth_error_t *err)
{
    (void)err;
    sim_session_t *ss = session;
    if (exit_code != NULL)
        *exit_code = ss != NULL && ss->ended ? ss->status : -1;
    sess_free(ss);
    return 0;
}

/* ---- the context's lock -------------------------------------------------------
 *
 * Sessions open on threads of their own, concurrently with the other
 * operations: every operation on the group table runs under s->lock. */

#define SIM_LOCKED(op, params, args)                                                         \
    static int op##_locked params                                                            \
    {                                                                                        \
        sim_t *s = ctx;                                                                      \
        pthread_mutex_lock(&s->lock);                                                        \
        int rc = op args;                                                                    \
        pthread_mutex_unlock(&s->lock);                                                      \
        return rc;                                                                           \
    }

SIM_LOCKED(sim_create, (void *ctx, const berth_runtime_group_t *g, berth_error_t *err),
           (ctx, g, err))
SIM_LOCKED(sim_start, (void *ctx, const char *key, const char *container, berth_error_t *err),
           (ctx, key, container, err))
SIM_LOCKED(sim_stop,
           (void *ctx, const char *key, const char *container, uint32_t grace_s,
            berth_error_t *err),
           (ctx, key, container, grace_s, err))
SIM_LOCKED(sim_restart, (void *ctx, const char *key, uint32_t grace_s, berth_error_t *err),
           (ctx, key, grace_s, err))
SIM_LOCKED(sim_remove, (void *ctx, const char *key, berth_error_t *err), (ctx, key, err))
SIM_LOCKED(sim_status, (void *ctx, const char *key, berth_group_status_t *out, berth_error_t *err),
           (ctx, key, out, err))
SIM_LOCKED(sim_logs,
           (void *ctx, const char *key, const char *container, uint32_t tail, bool timestamps,
            char **out, size_t *len, berth_error_t *err),
           (ctx, key, container, tail, timestamps, out, len, err))
SIM_LOCKED(sim_exec,
           (void *ctx, const char *key, const char *container, const char *const *argv,
            size_t argc, char **out, size_t *len, int *exit_code, berth_error_t *err),
           (ctx, key, container, argv, argc, out, len, exit_code, err))
SIM_LOCKED(sim_list, (void *ctx, berth_plugin_list_cb cb, void *data, berth_error_t *err),
           (ctx, cb, data, err))
SIM_LOCKED(sim_config_maps,
           (void *ctx, const char *key, const berth_group_t *spec, berth_error_t *err),
           (ctx, key, spec, err))
SIM_LOCKED(sim_stats, (void *ctx, const char *key, berth_group_stats_t *out, berth_error_t *err),
           (ctx, key, out, err))

static const berth_plugin_ops_t sim_ops = {
    .abi_major = BERTH_PLUGIN_ABI_MAJOR,
    .size = sizeof(berth_plugin_ops_t),
    .name = "sim",
    .version = "1.0",
    .open = sim_open,
    .close = sim_close,
    .probe = sim_probe,
    .image_ensure = sim_image_ensure,
    .images = sim_images,
    .create = sim_create_locked,
    .start = sim_start_locked,
    .stop = sim_stop_locked,
    .restart = sim_restart_locked,
    .remove = sim_remove_locked,
    .status = sim_status_locked,
    .logs = sim_logs_locked,
    .exec = sim_exec_locked,
    .list = sim_list_locked,
    .config_maps = sim_config_maps_locked,
    .session_open = sim_session_open,
    .session_read = sim_session_read,
    .session_write = sim_session_write,
    .session_resize = sim_session_resize,
    .session_close = sim_session_close,
    .stats = sim_stats_locked,
};

/* The plugin's entry symbol: the simulator's operations. */
__attribute__((visibility("default"))) const berth_plugin_ops_t *berth_plugin_entry(void);

const berth_plugin_ops_t *berth_plugin_entry(void)
{
    return &sim_ops;
}
