/*
 * test_plugin_runc.c: the runc runtime plugin against the real runc.
 *
 * Loads plugins/runc through berth_plugin_load("runc") ($BERTH_PLUGIN_PATH)
 * and runs container groups from an unpacked busybox root filesystem:
 * BERTH_TEST_RUNC_IMAGES names a directory holding <image dir>/rootfs and
 * BERTH_TEST_IMAGE the image ("busybox:latest" -> busybox_latest/rootfs).
 * Interactive sessions: /bin/sh under a TTY (`stty size` before and after
 * a resize, `read`, `exit 3`), `sh -c` without one (input, end of input,
 * stderr in the output, exit 5), a command runc cannot start (its message
 * and a failure status, with and without a TTY), a container that is not
 * running, and sessions closed early, which leave no process behind.
 * The tests that need runc are skipped when those are unset, when not
 * root, or when runc is missing, and fail instead when
 * BERTH_REQUIRE_ENGINES=1.  Every run uses its own runc state directory,
 * data directory and host name under /tmp, and removes them at the end;
 * with BERTH_TEST_KEEP set it leaves them (and every container) for
 * inspection, to be removed by hand with `runc --root DIR/state delete
 * --force` and `rm -rf DIR`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "berth-plugin.h"
#include "session-driver.h"
#include "lib/spawn.h"

#define IMAGE_MISSING "berth-no-such-image:1"
#define KEYS_MAX 16

typedef struct fixture {
    berth_plugin_t *plugin;
    const berth_plugin_ops_t *ops;
    void *ctx;
    bool engine;                    /* runc, root and an image are here      */
    const char *image;
    char images[1024];
    char dir[256];                  /* the run's own directory under /tmp    */
    char secrets[256];              /* on a tmpfs                            */
    char root[512];
    char data[512];
    char host[64];
    char config[4096];
    const char *keys[KEYS_MAX];     /* groups to remove at the end           */
    size_t nkeys;
    berth_group_t *specs[KEYS_MAX]; /* parsed documents, freed at the end    */
    size_t nspecs;
} fixture_t;

static fixture_t *the_fixture;      /* for group_make(): freed in teardown   */

/* ---- helpers ------------------------------------------------------------------ */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs argv without a shell, for at most two minutes; returns its output
 * (stdout and stderr, free()) and exit code (128 + the signal that ended
 * it, 128 for a timeout). */
static char *run(char *const argv[], int *code)
{
    berth__spawn_options_t o = {.capture = BERTH__SPAWN_CAPTURE_STDOUT |
                                           BERTH__SPAWN_CAPTURE_STDERR};
    berth__spawn_result_t res;
    char *out = NULL;
    berth__spawn_run_alloc(argv, &o, 120000, 65535, &out, &res);
    if (code != NULL)
        *code = res.exit_status >= 0 ? res.exit_status : 128 + res.signal;
    return out;
}

/* FNV-1a 64 over "<host>\0<key>": the plugin's group id. */
static void group_id(const char *host, const char *key, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i <= strlen(host); i++) {
        h ^= (unsigned char)host[i];
        h *= 0x100000001b3ull;
    }
    for (size_t i = 0; i < strlen(key); i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ull;
    }
    snprintf(out, 17, "%016" PRIx64, h);
}

static void remember(fixture_t *f, const char *key)
{
    for (size_t i = 0; i < f->nkeys; i++)
        if (strcmp(f->keys[i], key) == 0)
            return;
    if (f->nkeys < KEYS_MAX)
        f->keys[f->nkeys++] = key;
}

/* A parsed group with its shares, as the agent hands it to a plugin. */
typedef struct test_group {
    berth_group_t *spec;
    uint32_t shares[BERTH_PLUGIN_CONTAINERS_MAX];
    berth_runtime_group_t rg;
} test_group_t;

static void group_make(test_group_t *g, const char *key, uint64_t generation,
                       const char *json)
{
    berth_error_t err;
    memset(g, 0, sizeof *g);
    int rc = berth_group_parse(json, strlen(json), &g->spec, &err);
    if (rc != 0)
        fail_msg("parse: %s (%s)", err.message, err.target);
    /* A failing assertion leaves the test early: teardown frees the spec. */
    if (the_fixture->nspecs < KEYS_MAX)
        the_fixture->specs[the_fixture->nspecs++] = g->spec;
    assert_int_equal(berth_group_cpu_shares(g->spec, g->shares, BERTH_PLUGIN_CONTAINERS_MAX),
                     0);
    uint32_t total = 0;
    for (size_t i = 0; i < g->spec->ncontainers; i++)
        total += g->shares[i];
    g->rg.key = key;
    g->rg.generation = generation;
    g->rg.digest = berth_runtime_digest(g->spec);
    g->rg.spec = g->spec;
    g->rg.millicores = total;
    g->rg.shares = g->shares;
}

static void group_done(test_group_t *g)
{
    for (size_t i = 0; i < the_fixture->nspecs; i++)
        if (the_fixture->specs[i] == g->spec)
            the_fixture->specs[i] = NULL;
    berth_group_free(g->spec);
    g->spec = NULL;
}

static void create_ok(fixture_t *f, test_group_t *g)
{
    berth_error_t err;
    remember(f, g->rg.key);
    int rc = f->ops->create(f->ctx, &g->rg, &err);
    if (rc != 0)
        fail_msg("create %s: %d %s: %s", g->rg.key, rc, err.name, err.message);
}

static void start_ok(fixture_t *f, const char *key, const char *container)
{
    berth_error_t err;
    int rc = f->ops->start(f->ctx, key, container, &err);
    if (rc != 0)
        fail_msg("start %s/%s: %d %s: %s", key, container ? container : "*", rc, err.name,
                 err.message);
}

static const berth_container_status_t *find_status(const berth_group_status_t *st,
                                                   const char *name)
{
    for (size_t i = 0; i < st->ncontainers; i++)
        if (strcmp(st->containers[i].name, name) == 0)
            return &st->containers[i];
    return NULL;
}

static void status_ok(fixture_t *f, const char *key, berth_group_status_t *st)
{
    berth_error_t err;
    int rc = f->ops->status(f->ctx, key, st, &err);
    if (rc != 0)
        fail_msg("status %s: %d %s: %s", key, rc, err.name, err.message);
}

/* Waits (at most ms) until container `name` is in `state`. */
static berth_container_status_t wait_state(fixture_t *f, const char *key, const char *name,
                                           berth_container_state_t state, int ms)
{
    static berth_group_status_t st;
    const berth_container_status_t *cs = NULL;
    for (int waited = 0; waited <= ms; waited += 50) {
        status_ok(f, key, &st);
        cs = find_status(&st, name);
        if (cs != NULL && cs->state == state)
            return *cs;
        sleep_ms(50);
    }
    fail_msg("%s/%s never reached state %d (last %d)", key, name, (int)state,
             cs ? (int)cs->state : -1);
    return *cs;
}

/* Runs argv in a container; returns its output (free()) and exit code. */
static char *exec_ok(fixture_t *f, const char *key, const char *container,
                     const char *const *argv, size_t argc, int *code)
{
    berth_error_t err;
    char *out = NULL;
    size_t len = 0;
    int rc = f->ops->exec(f->ctx, key, container, argv, argc, &out, &len, code, &err);
    if (rc != 0)
        fail_msg("exec in %s/%s: %d %s: %s", key, container, rc, err.name, err.message);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    return out;
}

static char *logs_ok(fixture_t *f, const char *key, const char *container, uint32_t tail,
                     bool timestamps)
{
    berth_error_t err;
    char *out = NULL;
    size_t len = 0;
    int rc = f->ops->logs(f->ctx, key, container, tail, timestamps, &out, &len, &err);
    if (rc != 0)
        fail_msg("logs %s/%s: %d %s: %s", key, container, rc, err.name, err.message);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    return out;
}

static int sandbox_pid(fixture_t *f, const char *key)
{
    char id[17], rid[64];
    group_id(f->host, key, id);
    snprintf(rid, sizeof rid, "berth-%s-sandbox", id);
    char *argv[] = {(char *)"runc", (char *)"--root", f->root, (char *)"state", rid, NULL};
    int code = 0;
    char *out = run(argv, &code);
    assert_non_null(out);
    const char *p = strstr(out, "\"pid\":");
    int pid = p ? atoi(p + 6) : 0;
    free(out);
    return code == 0 ? pid : 0;
}

static void skip_without_engine(fixture_t *f)
{
    if (!f->engine)
        skip();
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* ---- setup and teardown ---------------------------------------------------------- */

static bool runc_works(void)
{
    char *argv[] = {(char *)"runc", (char *)"--version", NULL};
    int code = 0;
    char *out = run(argv, &code);
    bool ok = out != NULL && code == 0;
    free(out);
    return ok;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    const char *images = getenv("BERTH_TEST_RUNC_IMAGES");
    const char *image = getenv("BERTH_TEST_IMAGE");
    const char *require = getenv("BERTH_REQUIRE_ENGINES");
    f->engine = images != NULL && images[0] && image != NULL && image[0] && geteuid() == 0 &&
                runc_works();
    if (!f->engine && require != NULL && strcmp(require, "1") == 0) {
        fprintf(stderr, "runc tests need root, runc, BERTH_TEST_RUNC_IMAGES and "
                        "BERTH_TEST_IMAGE (BERTH_REQUIRE_ENGINES=1)\n");
        free(f);
        return -1;
    }
    f->image = image;
    snprintf(f->images, sizeof f->images, "%s", images ? images : "/nonexistent");
    snprintf(f->dir, sizeof f->dir, "/tmp/berth-test-runc-%ld", (long)getpid());
    snprintf(f->secrets, sizeof f->secrets, "/dev/shm/berth-test-runc-%ld", (long)getpid());
    snprintf(f->root, sizeof f->root, "%s/state", f->dir);
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    snprintf(f->host, sizeof f->host, "test-runc-%ld", (long)getpid());
    if (mkdir(f->dir, 0700) != 0 && errno != EEXIST) {
        free(f);
        return -1;
    }
    snprintf(f->config, sizeof f->config,
             "{\"runc\":\"runc\",\"root\":\"%s\",\"data_dir\":\"%s\",\"images_dir\":\"%s\","
             "\"secret_dir\":\"%s\",\"git\":\"git\",\"stop_grace_s\":1}",
             f->root, f->data, f->images, f->secrets);
    berth_error_t err;
    if (berth_plugin_load("runc", &f->plugin, &err) != 0) {
        fprintf(stderr, "cannot load the runc plugin: %s\n", err.message);
        free(f);
        return -1;
    }
    f->ops = berth_plugin_ops(f->plugin);
    if (f->ops->open(f->config, f->host, &f->ctx, &err) != 0) {
        fprintf(stderr, "open: %s\n", err.message);
        berth_plugin_unload(f->plugin);
        free(f);
        return -1;
    }
    *state = f;
    the_fixture = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    berth_error_t err;
    bool keep = getenv("BERTH_TEST_KEEP") != NULL;
    for (size_t i = 0; !keep && i < f->nkeys && f->ctx != NULL; i++)
        f->ops->remove(f->ctx, f->keys[i], &err);
    f->ops->close(f->ctx);
    berth_plugin_unload(f->plugin);
    /* Whatever a failed test left: every container in this run's state dir. */
    if (f->engine && !keep) {
        char *argv[] = {(char *)"runc", (char *)"--root", f->root, (char *)"list",
                        (char *)"-q", NULL};
        char *out = run(argv, NULL);
        char *save = NULL;
        for (char *id = out ? strtok_r(out, "\n", &save) : NULL; id != NULL;
             id = strtok_r(NULL, "\n", &save)) {
            char *del[] = {(char *)"runc", (char *)"--root", f->root, (char *)"delete",
                           (char *)"--force", id, NULL};
            free(run(del, NULL));
        }
        free(out);
    }
    char *rm[] = {(char *)"rm", (char *)"-rf", f->dir, f->secrets, NULL};
    if (!keep)
        free(run(rm, NULL));
    for (size_t i = 0; i < f->nspecs; i++)
        berth_group_free(f->specs[i]);
    free(f);
    the_fixture = NULL;
    return 0;
}

/* ---- documents -------------------------------------------------------------------- */

static char *doc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *doc(const char *fmt, ...)
{
    static char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

/* server: busybox httpd on 8080 serving /tmp/index.html; client: sleeps. */
static char *web_doc(const char *image)
{
    return doc(
        "{\"name\":\"web\",\"location\":\"westeurope\",\"properties\":{\"osType\":\"Linux\","
        "\"containers\":["
        "{\"name\":\"server\",\"properties\":{\"image\":\"%s\",\"command\":[\"sh\",\"-c\","
        "\"echo hello-from-server; echo second-line; echo berth-page > /tmp/index.html; "
        "exec httpd -f -p 8080 -h /tmp\"],"
        "\"environmentVariables\":[{\"name\":\"GREETING\",\"value\":\"hi\"},"
        "{\"name\":\"TOKEN\",\"secureValue\":\"s3cr3t\"}],"
        "\"resources\":{\"requests\":{\"cpu\":0.5,\"memoryInGB\":0.25}}}},"
        "{\"name\":\"client\",\"properties\":{\"image\":\"%s\",\"command\":[\"sleep\","
        "\"100000\"],\"resources\":{\"requests\":{\"cpu\":0.5,\"memoryInGB\":0.5},"
        "\"limits\":{\"cpu\":1,\"memoryInGB\":0.75}}}}]}}",
        image, image);
}

/* ---- tests that need no runc ------------------------------------------------------- */

static void test_bad_config(void **state)
{
    fixture_t *f = *state;
    berth_error_t err;
    void *ctx = NULL;
    assert_int_equal(f->ops->open("{\"foo\":1}", "h", &ctx, &err), BERTH_EINVAL);
    assert_null(ctx);
    assert_string_equal(err.target, "config.foo");
    assert_int_equal(f->ops->open("{\"stop_grace_s\":\"ten\"}", "h", &ctx, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.target, "config.stop_grace_s");
    assert_int_equal(f->ops->open("{\"root\":7}", "h", &ctx, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "config.root");
    assert_int_equal(f->ops->open("[1]", "h", &ctx, &err), BERTH_EINVAL);
    assert_int_equal(f->ops->open(NULL, "", &ctx, &err), BERTH_EINVAL);
    /* Defaults open. */
    assert_int_equal(f->ops->open(NULL, "h", &ctx, &err), 0);
    f->ops->close(ctx);
    f->ops->close(NULL);
    assert_string_equal(f->ops->name, "runc");
    assert_int_equal(f->ops->abi_major, BERTH_PLUGIN_ABI_MAJOR);
}

static void test_unknown_group(void **state)
{
    fixture_t *f = *state;
    berth_error_t err;
    berth_group_status_t st;
    /* Nothing exists yet in this run's data directory: no runc needed. */
    assert_int_equal(f->ops->start(f->ctx, "nosuch", NULL, &err), BERTH_ENOENT);
    assert_int_equal(f->ops->stop(f->ctx, "nosuch", NULL, 1, &err), BERTH_ENOENT);
    memset(&st, 0xff, sizeof st);
    assert_int_equal(f->ops->status(f->ctx, "nosuch", &st, &err), 0);
    assert_false(st.exists);
    assert_int_equal(st.ncontainers, 0);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(f->ops->logs(f->ctx, "nosuch", "c", 0, false, &out, &len, &err),
                     BERTH_ENOENT);
    assert_null(out);
}

/* ---- tests with runc ------------------------------------------------------------------ */

static void test_probe_and_images(void **state)
{
    fixture_t *f = *state;
    skip_without_engine(f);
    berth_error_t err;
    berth_plugin_host_info_t info;
    assert_int_equal(f->ops->probe(f->ctx, &info, &err), 0);
    assert_int_equal(strncmp(info.runtime, "runc ", 5), 0);
    assert_true(info.cores > 0);
    assert_true(info.memory_mib > 0);
    assert_int_equal(info.os, BERTH_OS_LINUX);

    bool cached = false;
    assert_int_equal(f->ops->image_ensure(f->ctx, f->image, NULL, &cached, &err), 0);
    assert_true(cached);
    assert_int_equal(f->ops->image_ensure(f->ctx, IMAGE_MISSING, NULL, &cached, &err),
                     BERTH_EIO);
    assert_string_equal(err.name, "ImagePullFailed");
    assert_non_null(strstr(err.message, f->images));
    assert_false(cached);
}

static void image_cb(const char *image, void *data)
{
    int *found = data;
    if (strcmp(image, "busybox:latest") == 0)
        (*found)++;
}

static void test_images_list(void **state)
{
    fixture_t *f = *state;
    skip_without_engine(f);
    berth_error_t err;
    int found = 0;
    assert_int_equal(f->ops->images(f->ctx, image_cb, &found, &err), 0);
    if (strcmp(f->image, "busybox:latest") == 0)
        assert_int_equal(found, 1);
}

static void test_group_runs(void **state)
{
    fixture_t *f = *state;
    skip_without_engine(f);
    berth_error_t err;
    test_group_t g;
    group_make(&g, "web", 1, web_doc(f->image));
    create_ok(f, &g);

    /* Created, none started. */
    berth_group_status_t st;
    status_ok(f, "web", &st);
    assert_true(st.exists);
    assert_int_equal(st.generation, 1);
    assert_int_equal(st.digest, g.rg.digest);
    assert_int_equal(st.ncontainers, 2);
    assert_string_equal(st.containers[0].name, "server");
    assert_string_equal(st.containers[1].name, "client");
    assert_true(st.containers[0].exists);
    assert_int_equal(st.containers[0].state, BERTH_CONTAINER_WAITING);
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_WAITING);

    /* A second create of the same key is refused, whatever its generation. */
    g.rg.generation = 2;
    assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), BERTH_EEXIST);
    g.rg.generation = 1;

    start_ok(f, "web", NULL);
    status_ok(f, "web", &st);
    assert_int_equal(st.containers[0].state, BERTH_CONTAINER_RUNNING);
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_RUNNING);
    assert_true(st.containers[0].started_ms > 0);

    /* The containers share the sandbox's network namespace: localhost. */
    const char *wget[] = {"wget", "-qO-", "http://127.0.0.1:8080/index.html"};
    char *out = NULL;
    int code = -1;
    for (int i = 0; i < 50; i++) {
        free(out);
        out = exec_ok(f, "web", "client", wget, 3, &code);
        if (code == 0)
            break;
        sleep_ms(100);
    }
    assert_int_equal(code, 0);
    assert_string_equal(out, "berth-page\n");
    free(out);

    /* exec: combined output and the exit code. */
    const char *sh[] = {"sh", "-c", "echo out; echo err >&2; exit 4"};
    out = exec_ok(f, "web", "server", sh, 3, &code);
    assert_int_equal(code, 4);
    assert_non_null(strstr(out, "out\n"));
    assert_non_null(strstr(out, "err\n"));
    free(out);
    const char *env[] = {"sh", "-c", "echo $GREETING-$TOKEN"};
    out = exec_ok(f, "web", "server", env, 3, &code);
    assert_int_equal(code, 0);
    assert_string_equal(out, "hi-s3cr3t\n");
    free(out);

    /* cgroup limits: 0.25 GB requested, 0.75 GB limit; 0.5 core share, 1 core limit. */
    const char *mem[] = {"sh", "-c",
                         "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
                         "cat /sys/fs/cgroup/memory.max"};
    out = exec_ok(f, "web", "server", mem, 3, &code);
    assert_int_equal(code, 0);
    assert_int_equal(strtoull(out, NULL, 10), 268435456ull);
    free(out);
    out = exec_ok(f, "web", "client", mem, 3, &code);
    assert_int_equal(strtoull(out, NULL, 10), 805306368ull);
    free(out);
    const char *cpu[] = {"sh", "-c",
                         "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || "
                         "cat /sys/fs/cgroup/cpu.max"};
    out = exec_ok(f, "web", "server", cpu, 3, &code);
    assert_int_equal(strtoull(out, NULL, 10), 50000ull);
    free(out);
    out = exec_ok(f, "web", "client", cpu, 3, &code);
    assert_int_equal(strtoull(out, NULL, 10), 100000ull);
    free(out);
    /* The same limit from the host's side, when the memory hierarchy is v1. */
    char id[17], path[512];
    group_id(f->host, "web", id);
    snprintf(path, sizeof path, "/sys/fs/cgroup/memory/berth/berth-%s-c-0/memory.limit_in_bytes",
             id);
    FILE *fp = fopen(path, "r");
    if (fp != NULL) {
        unsigned long long v = 0;
        assert_int_equal(fscanf(fp, "%llu", &v), 1);
        fclose(fp);
        assert_int_equal(v, 268435456ull);
    }

    /* Logs: captured, timestamped, tail. */
    char *logs = logs_ok(f, "web", "server", 0, false);
    assert_string_equal(logs, "hello-from-server\nsecond-line\n");
    free(logs);
    logs = logs_ok(f, "web", "server", 1, false);
    assert_string_equal(logs, "second-line\n");
    free(logs);
    logs = logs_ok(f, "web", "server", 0, true);
    assert_true(strlen(logs) > 25);
    assert_true(logs[4] == '-' && logs[10] == 'T' && logs[23] == 'Z' && logs[24] == ' ');
    assert_int_equal(strncmp(logs + 25, "hello-from-server\n", 18), 0);
    free(logs);

    /* exec in a container that does not run is refused. */
    assert_int_equal(f->ops->stop(f->ctx, "web", "client", 1, &err), 0);
    berth_container_status_t cs = wait_state(f, "web", "client", BERTH_CONTAINER_TERMINATED,
                                             5000);
    assert_true(cs.finished_ms >= cs.started_ms);
    const char *echo[] = {"echo", "x"};
    out = NULL;
    size_t len = 0;
    assert_int_not_equal(f->ops->exec(f->ctx, "web", "client", echo, 2, &out, &len, &code, &err),
                         0);
    assert_null(out);
    /* Stopping what is not running succeeds; start brings it back. */
    assert_int_equal(f->ops->stop(f->ctx, "web", "client", 1, &err), 0);
    start_ok(f, "web", "client");
    wait_state(f, "web", "client", BERTH_CONTAINER_RUNNING, 5000);
    assert_int_equal(f->ops->start(f->ctx, "web", "nosuch", &err), BERTH_ENOENT);
    group_done(&g);
}

static void test_exit_code_and_start_again(void **state)
{
    fixture_t *f = *state;
    skip_without_engine(f);
    berth_error_t err;
    test_group_t g;
    group_make(&g, "job", 3,
               doc("{\"name\":\"job\",\"location\":\"westeurope\",\"properties\":{"
                   "\"osType\":\"Linux\",\"restartPolicy\":\"Never\",\"containers\":["
                   "{\"name\":\"once\",\"properties\":{\"image\":\"%s\",\"command\":[\"sh\","
                   "\"-c\",\"echo ran; exit 3\"],\"resources\":{\"requests\":{\"cpu\":1,"
                   "\"memoryInGB\":0.5}}}},"
                   "{\"name\":\"keeper\",\"properties\":{\"image\":\"%s\",\"command\":["
                   "\"sleep\",\"100000\"],\"resources\":{\"requests\":{\"cpu\":1,"
                   "\"memoryInGB\":0.5}}}}]}}",
                   f->image, f->image));
    create_ok(f, &g);
    start_ok(f, "job", NULL);
    berth_container_status_t cs =
        wait_state(f, "job", "once", BERTH_CONTAINER_TERMINATED, 10000);
    assert_int_equal(cs.exit_code, 3);
    assert_true(cs.started_ms > 0);
    assert_true(cs.finished_ms >= cs.started_ms);
    assert_string_equal(cs.detail, "Error");
    int64_t first_finish = cs.finished_ms;

    /* A terminated container starts again. */
    sleep_ms(20);
    start_ok(f, "job", "once");
    cs = wait_state(f, "job", "once", BERTH_CONTAINER_TERMINATED, 10000);
    assert_int_equal(cs.exit_code, 3);
    assert_true(cs.finished_ms > first_finish);
    char *logs = logs_ok(f, "job", "once", 0, false);
    assert_int_equal(count_lines_with(logs, "ran\n"), 2);
    free(logs);

    /* Stop everything, then start everything again. */
    assert_int_equal(f->ops->stop(f->ctx, "job", NULL, 1, &err), 0);
    cs = wait_state(f, "job", "keeper", BERTH_CONTAINER_TERMINATED, 100);
    assert_int_equal(cs.exit_code, 137); /* sleep as pid 1 ignores SIGTERM */
    start_ok(f, "job", NULL);
    wait_state(f, "job", "keeper", BERTH_CONTAINER_RUNNING, 100);
    group_done(&g);
}

static void test_restart_in_place(void **state)
{
    fixture_t *f = *state;
    skip_without_engine(f);
    berth_error_t err;
    test_group_t g;
    group_make(&g, "rs", 1, web_doc(f->image));
    create_ok(f, &g);
    start_ok(f, "rs", NULL);
    int pid = sandbox_pid(f, "rs");
    assert_true(pid > 0);
    const char *ns[] = {"readlink", "/proc/self/ns/net"};
    int code = 0;
    char *before = exec_ok(f, "rs", "client", ns, 2, &code);
    berth_group_status_t st;
    status_ok(f, "rs", &st);
    int64_t started = st.containers[1].started_ms;
    sleep_ms(20);

    assert_int_equal(f->ops->restart(f->ctx, "rs", 1, &err), 0);
    status_ok(f, "rs", &st);
    assert_int_equal(st.containers[0].state, BERTH_CONTAINER_RUNNING);
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_RUNNING);
    assert_true(st.containers[1].started_ms > started);
    assert_int_equal(sandbox_pid(f, "rs"), pid);
    char *after = exec_ok(f, "rs", "client", ns, 2, &code);
    assert_string_equal(before, after);
    free(before);
    free(after);
    group_done(&g);
}

static void test_init_containers_and_volumes(void **state)
{
    fixture_t *f = *state;
    skip_without_engine(f);
    test_group_t g;
    group_make(&g, "init", 1,
               doc("{\"name\":\"init\",\"location\":\"westeurope\",\"properties\":{"
                   "\"osType\":\"Linux\",\"initContainers\":[{\"name\":\"prep\",\"properties\":"
                   "{\"image\":\"%s\",\"command\":[\"sh\",\"-c\",\"echo prepared > /data/f\"],"
                   "\"volumeMounts\":[{\"name\":\"scratch\",\"mountPath\":\"/data\"}]}}],"
                   "\"containers\":[{\"name\":\"app\",\"properties\":{\"image\":\"%s\","
                   "\"command\":[\"sleep\",\"100000\"],\"resources\":{\"requests\":{\"cpu\":1,"
                   "\"memoryInGB\":0.5}},\"volumeMounts\":[{\"name\":\"scratch\","
                   "\"mountPath\":\"/data\"}]}}],\"volumes\":[{\"name\":\"scratch\","
                   "\"emptyDir\":{}}]}}",
                   f->image, f->image));
    create_ok(f, &g);
    berth_group_status_t st;
    status_ok(f, "init", &st);
    assert_int_equal(st.ncontainers, 2);
    assert_string_equal(st.containers[0].name, "prep");
    assert_string_equal(st.containers[1].name, "app");
    /* The init container runs alone, to completion; start(NULL) then
     * starts the containers and never the init containers again. */
    start_ok(f, "init", "prep");
    berth_container_status_t prep = wait_state(f, "init", "prep", BERTH_CONTAINER_TERMINATED,
                                               10000);
    assert_int_equal(prep.exit_code, 0);
    status_ok(f, "init", &st);
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_WAITING);
    start_ok(f, "init", NULL);
    status_ok(f, "init", &st);
    assert_int_equal(st.containers[0].state, BERTH_CONTAINER_TERMINATED);
    assert_true(st.containers[0].started_ms == prep.started_ms);
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_RUNNING);
    const char *cat[] = {"cat", "/data/f"};
    int code = -1;
    char *out = exec_ok(f, "init", "app", cat, 2, &code);
    assert_int_equal(code, 0);
    assert_string_equal(out, "prepared\n");
    free(out);
    group_done(&g);
}

static void list_cb(const char *key, uint64_t generation, uint64_t digest, void *data)
{
    struct {
        const char *key;
        uint64_t generation, digest;
        int found, total;
    } *want = data;
    want->total++;
    if (strcmp(key, want->key) == 0 && generation == want->generation &&
        digest == want->digest)
        want->found++;
}

static void test_reopen_and_remove(void **state)
{
    fixture_t *f = *state;
    skip_without_engine(f);
    berth_error_t err;
    test_group_t g;
    group_make(&g, "keep", 7, web_doc(f->image));
    create_ok(f, &g);
    start_ok(f, "keep", NULL);

    /* A fresh context, as after an agent crash, finds the group again. */
    f->ops->close(f->ctx);
    f->ctx = NULL;
    assert_int_equal(f->ops->open(f->config, f->host, &f->ctx, &err), 0);
    struct {
        const char *key;
        uint64_t generation, digest;
        int found, total;
    } want = {"keep", 7, g.rg.digest, 0, 0};
    assert_int_equal(f->ops->list(f->ctx, list_cb, &want, &err), 0);
    assert_int_equal(want.found, 1);
    berth_group_status_t st;
    status_ok(f, "keep", &st);
    assert_true(st.exists);
    assert_int_equal(st.generation, 7);
    assert_int_equal(st.containers[0].state, BERTH_CONTAINER_RUNNING);
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_RUNNING);

    /* Another host sharing the runtime sees none of it. */
    void *other = NULL;
    assert_int_equal(f->ops->open(f->config, "another-host", &other, &err), 0);
    want.found = want.total = 0;
    assert_int_equal(f->ops->list(other, list_cb, &want, &err), 0);
    assert_int_equal(want.total, 0);
    status_ok(f, "keep", &st);
    f->ops->close(other);

    /* Remove leaves no runc container and no bundle. */
    assert_int_equal(f->ops->remove(f->ctx, "keep", &err), 0);
    status_ok(f, "keep", &st);
    assert_false(st.exists);
    char id[17], path[1024];
    group_id(f->host, "keep", id);
    char *argv[] = {(char *)"runc", (char *)"--root", f->root, (char *)"list", (char *)"-q",
                    NULL};
    char *out = run(argv, NULL);
    assert_non_null(out);
    assert_null(strstr(out, id));
    free(out);
    snprintf(path, sizeof path, "%s/groups/%s", f->data, id);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0);
    /* Removing what is gone succeeds. */
    assert_int_equal(f->ops->remove(f->ctx, "keep", &err), 0);
    group_done(&g);
}

static void test_missing_image_create(void **state)
{
    fixture_t *f = *state;
    skip_without_engine(f);
    berth_error_t err;
    test_group_t g;
    group_make(&g, "noimg", 1,
               doc("{\"name\":\"noimg\",\"location\":\"westeurope\",\"properties\":{"
                   "\"osType\":\"Linux\",\"containers\":[{\"name\":\"a\",\"properties\":{"
                   "\"image\":\"%s\",\"resources\":{\"requests\":{\"cpu\":1,"
                   "\"memoryInGB\":0.5}}}}]}}",
                   IMAGE_MISSING));
    remember(f, "noimg");
    assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), BERTH_EIO);
    assert_string_equal(err.name, "ImagePullFailed");
    assert_string_equal(err.target, "properties.containers[0].properties.image");
    berth_group_status_t st;
    status_ok(f, "noimg", &st);
    assert_false(st.exists);
    group_done(&g);
}

/* ---- interactive sessions ------------------------------------------------------------ */

#define SESSION_WAIT_MS 30000

/* How many host processes run `runc --root <this run's root> exec`. */
static int runc_execs(fixture_t *f)
{
    int n = 0;
    DIR *d = opendir("/proc");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], cmd[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t k = read(fd, cmd, sizeof cmd - 1);
        close(fd);
        if (k <= 0)
            continue;
        bool root = false, exec = false;
        for (ssize_t i = 0; i < k; i += (ssize_t)strlen(cmd + i) + 1) {
            cmd[k] = '\0';
            root = root || strcmp(cmd + i, f->root) == 0;
            exec = exec || strcmp(cmd + i, "exec") == 0;
        }
        n += root && exec;
    }
    closedir(d);
    return n;
}

/* The lines of `ps` in the container that end with `command`. */
static int container_runs(fixture_t *f, const char *key, const char *container,
                          const char *command)
{
    const char *ps[] = {"ps"};
    int code = 0;
    char *out = exec_ok(f, key, container, ps, 1, &code);
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(line), want = strlen(command);
        n += len >= want && strcmp(line + len - want, command) == 0;
    }
    free(out);
    return n;
}

static char *box_doc(const char *key, const char *image)
{
    return doc("{\"name\":\"%s\",\"location\":\"westeurope\",\"properties\":{"
               "\"osType\":\"Linux\",\"containers\":[{\"name\":\"box\",\"properties\":{"
               "\"image\":\"%s\",\"command\":[\"sleep\",\"100000\"],\"resources\":{"
               "\"requests\":{\"cpu\":1,\"memoryInGB\":0.5}}}}]}}",
               key, image);
}

static void test_session_tty(void **state)
{
    fixture_t *f = *state;
    skip_without_engine(f);
    test_group_t g;
    group_make(&g, "sess", 1, box_doc("sess", f->image));
    create_ok(f, &g);
    start_ok(f, "sess", NULL);
    wait_state(f, "sess", "box", BERTH_CONTAINER_RUNNING, 10000);

    const char *sh[] = {"/bin/sh"};
    test_session_t t;
    test_session_open(&t, f->ops, f->ctx, "sess", "box", sh, 1, true, 30, 100, SESSION_WAIT_MS);
    test_session_send(&t, "stty size\n");
    test_session_expect(&t, "30 100");
    berth_error_t err;
    assert_int_equal(f->ops->session_resize(t.s, 40, 120, &err), 0);
    test_session_send(&t, "stty size\n");
    test_session_expect(&t, "40 120");
    test_session_send(&t, "read x; echo got $x\n");
    test_session_send(&t, "hello\n");
    test_session_expect(&t, "got hello");
    test_session_send(&t, "exit 3\n");
    test_session_to_end(&t);
    assert_int_equal(test_session_finish(&t), 3);

    /* The end of input (^D) ends the shell.  As on any terminal, ^D means
     * it once the shell reads its line editor's input: after its prompt
     * (in canonical mode, between commands, the terminal would take it). */
    test_session_open(&t, f->ops, f->ctx, "sess", "box", sh, 1, true, 0, 0, SESSION_WAIT_MS);
    test_session_send(&t, "echo fi\"\"rst\n");   /* "first" is in the output alone */
    test_session_expect(&t, "first");
    test_session_expect(&t, "# ");
    assert_int_equal(f->ops->session_write(t.s, "", 0, &err), 0);
    test_session_to_end(&t);
    assert_int_equal(test_session_finish(&t), 0);

    /* Closed while the shell runs: nothing is left. */
    test_session_open(&t, f->ops, f->ctx, "sess", "box", sh, 1, true, 24, 80, SESSION_WAIT_MS);
    test_session_send(&t, "echo rea\"\"dy\n");
    test_session_expect(&t, "ready");
    assert_int_equal(test_session_finish(&t), -1);
    assert_int_equal(runc_execs(f), 0);
    assert_int_equal(container_runs(f, "sess", "box", "/bin/sh"), 0);
    group_done(&g);
}

static void test_session_pipes(void **state)
{
    fixture_t *f = *state;
    skip_without_engine(f);
    berth_error_t err;
    test_group_t g;
    group_make(&g, "pipes", 1, box_doc("pipes", f->image));
    create_ok(f, &g);
    start_ok(f, "pipes", NULL);
    wait_state(f, "pipes", "box", BERTH_CONTAINER_RUNNING, 10000);

    const char *script[] = {"/bin/sh", "-c", "read x; echo got $x; echo err >&2; exit 5"};
    test_session_t t;
    test_session_open(&t, f->ops, f->ctx, "pipes", "box", script, 3, false, 0, 0, SESSION_WAIT_MS);
    test_session_send(&t, "hello\n");
    assert_int_equal(f->ops->session_write(t.s, "", 0, &err), 0);
    test_session_to_end(&t);
    assert_string_equal(t.out, "got hello\nerr\n");
    assert_int_equal(test_session_finish(&t), 5);

    /* cat reads until the end of input. */
    const char *cat[] = {"cat"};
    test_session_open(&t, f->ops, f->ctx, "pipes", "box", cat, 1, false, 0, 0, SESSION_WAIT_MS);
    test_session_send(&t, "one\ntwo");
    assert_int_equal(f->ops->session_write(t.s, "", 0, &err), 0);
    test_session_to_end(&t);
    assert_string_equal(t.out, "one\ntwo");
    assert_int_equal(test_session_finish(&t), 0);

    /* Closed early: runc and the process are gone when close returns. */
    const char *sleeper[] = {"sleep", "100"};
    test_session_open(&t, f->ops, f->ctx, "pipes", "box", sleeper, 2, false, 0, 0, SESSION_WAIT_MS);
    for (int waited = 0; waited < SESSION_WAIT_MS; waited += 100) {
        if (container_runs(f, "pipes", "box", "sleep 100") == 1)
            break;
        sleep_ms(100);
    }
    assert_int_equal(container_runs(f, "pipes", "box", "sleep 100"), 1);
    assert_int_equal(test_session_finish(&t), -1);
    assert_int_equal(runc_execs(f), 0);
    assert_int_equal(container_runs(f, "pipes", "box", "sleep 100"), 0);

    /* A command runc cannot start: its message is the output, a failure
     * the status. */
    const char *missing[] = {"/nonexistent", "x"};
    test_session_open(&t, f->ops, f->ctx, "pipes", "box", missing, 2, false, 0, 0, SESSION_WAIT_MS);
    test_session_to_end(&t);
    assert_non_null(strstr(t.out, "/nonexistent"));
    int code = test_session_finish(&t);
    assert_true(code > 0 && code < 256);
    test_session_open(&t, f->ops, f->ctx, "pipes", "box", missing, 2, true, 24, 80, SESSION_WAIT_MS);
    test_session_to_end(&t);
    assert_non_null(strstr(t.out, "/nonexistent"));
    code = test_session_finish(&t);
    assert_true(code > 0 && code < 256);

    /* A container that is not running takes no session. */
    assert_int_equal(f->ops->stop(f->ctx, "pipes", "box", 1, &err), 0);
    void *s = (void *)1;
    int fd = 0;
    berth_session_opts_t o = {.tty = true, .rows = 24, .cols = 80};
    assert_int_equal(f->ops->session_open(f->ctx, "pipes", "box", cat, 1, &o, &s, &fd, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.name, "ContainerNotRunning");
    assert_null(s);
    assert_int_equal(fd, -1);
    assert_int_equal(f->ops->session_open(f->ctx, "pipes", "nosuch", cat, 1, &o, &s, &fd, &err),
                     BERTH_ENOENT);
    group_done(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_unknown_group),
        cmocka_unit_test(test_probe_and_images),
        cmocka_unit_test(test_images_list),
        cmocka_unit_test(test_group_runs),
        cmocka_unit_test(test_exit_code_and_start_again),
        cmocka_unit_test(test_restart_in_place),
        cmocka_unit_test(test_init_containers_and_volumes),
        cmocka_unit_test(test_reopen_and_remove),
        cmocka_unit_test(test_missing_image_create),
        cmocka_unit_test(test_session_tty),
        cmocka_unit_test(test_session_pipes),
    };
    return cmocka_run_group_tests_name("plugin_runc", tests, setup, teardown);
}
