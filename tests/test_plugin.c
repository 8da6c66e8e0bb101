/*
 * test_plugin.c: the plugin loader (core/services/plugin.c) and the simulator plugin
 * (plugins/sim) through the ABI.
 *
 * Covers: a missing file, a file that is not a shared object, a missing
 * entry symbol, another ABI major version, an ops struct too short and a
 * missing operation are each refused with an error naming the file; a name
 * is found through $BERTH_PLUGIN_PATH; the simulator's configuration is
 * checked member by member; create / start / status / stop / restart /
 * logs / exec / list / remove and the simulated failures (a refused pull,
 * a crash after N ms with its exit code, a start latency); the runtime
 * digest tells documents apart.  The simulator's interactive sessions:
 * its mini-shell under a TTY (input echoed, "\r\n", `stty size` before
 * and after a resize, `read`, `exit 3`) and without one (`sh -c` with
 * input and end of input, "Not a tty", an unknown command's 127, `cat`
 * up to the end of input), a container that is not running, a session
 * closed early, and the bound on output waiting to be read.
 */
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth-plugin.h"
#include "session-driver.h"

static char bad_path[4096];

static const char *bad_plugin(const char *name)
{
    const char *b = getenv("top_builddir");
    snprintf(bad_path, sizeof bad_path, "%s/tests/plugins/.libs/%s.so", b ? b : ".", name);
    return bad_path;
}

static void refused(const char *path, int code, const char *words)
{
    berth_plugin_t *p = (berth_plugin_t *)1;
    berth_error_t err;
    assert_int_equal(berth_plugin_load(path, &p, &err), code);
    assert_null(p);
    assert_int_equal(err.code, code);
    assert_string_equal(err.name, "InvalidPlugin");
    if (strchr(path, '/') != NULL)
        assert_non_null(strstr(err.message, path));
    if (strstr(err.message, words) == NULL)
        fail_msg("message '%s' lacks '%s'", err.message, words);
}

static void test_loader_refuses(void **state)
{
    refused("/nonexistent/berth-x.so", BERTH_ENOENT, "no such file");
    refused(BERTH_SRCDIR "/README.md", BERTH_EINVAL, "cannot be loaded");
    refused(bad_plugin("no-entry"), BERTH_EINVAL, "no entry symbol berth_plugin_entry");
    refused(bad_plugin("bad-abi"), BERTH_EINVAL, "built for plugin ABI 2");
    refused(bad_plugin("short-ops"), BERTH_EINVAL, "shorter than ABI 1");
    refused(bad_plugin("missing-op"), BERTH_EINVAL, "lacks the operation 'exec'");
    refused("", BERTH_EINVAL, "no plugin path");
    refused("../sim", BERTH_ENOENT, "no such file");
    refused("no such", BERTH_EINVAL, "neither a path nor a plain name");
    refused("nosuchplugin", BERTH_ENOENT, "berth-nosuchplugin.so");
}

/* ---- the simulator ---------------------------------------------------------- */

typedef struct sim_fixture {
    berth_plugin_t *plugin;
    const berth_plugin_ops_t *ops;
    void *ctx;
} sim_fixture_t;

static const char SIM_CONFIG[] =
    "{\"cores\": 4, \"memory_mib\": 8192, \"start_latency_ms\": 0,"
    " \"images\": [\"busybox:latest\"],"
    " \"rules\": [{\"image\": \"bad/*\", \"pull_fail\": true},"
    "             {\"image\": \"crash:*\", \"exit_after_ms\": 50, \"exit_code\": 7}]}";

static int sim_setup(void **state)
{
    sim_fixture_t *f = calloc(1, sizeof *f);
    berth_error_t err;
    if (f == NULL || berth_plugin_load("sim", &f->plugin, &err) != 0) {
        fprintf(stderr, "loading sim: %s\n", f ? err.message : "no memory");
        free(f);
        return -1;
    }
    f->ops = berth_plugin_ops(f->plugin);
    if (f->ops->open(SIM_CONFIG, "host-a", &f->ctx, &err) != 0) {
        fprintf(stderr, "opening sim: %s\n", err.message);
        berth_plugin_unload(f->plugin);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int sim_teardown(void **state)
{
    sim_fixture_t *f = *state;
    f->ops->close(f->ctx);
    berth_plugin_unload(f->plugin);
    free(f);
    return 0;
}

static void test_sim_loaded_by_name(void **state)
{
    sim_fixture_t *f = *state;
    assert_string_equal(f->ops->name, "sim");
    assert_int_equal(f->ops->abi_major, BERTH_PLUGIN_ABI_MAJOR);
    berth_plugin_host_info_t info;
    assert_int_equal(f->ops->probe(f->ctx, &info, NULL), 0);
    assert_int_equal(info.cores, 4);
    assert_int_equal(info.memory_mib, 8192);
    assert_int_equal(info.os, BERTH_OS_LINUX);
}

static void test_sim_config_refused(void **state)
{
    sim_fixture_t *f = *state;
    static const struct {
        const char *config, *target;
    } bad[] = {
        {"[1]", "config"},
        {"{\"color\": 1}", "config.color"},
        {"{\"cores\": -1}", "config.cores"},
        {"{\"images\": \"busybox\"}", "config.images"},
        {"{\"rules\": [{\"image\": \"x\", \"when\": 1}]}", "config.rules[0].when"},
        {"{\"rules\": [{\"exit_code\": 1}]}", "config.rules[0]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *ctx = (void *)1;
        berth_error_t err;
        assert_int_equal(f->ops->open(bad[i].config, "h", &ctx, &err), BERTH_EINVAL);
        assert_null(ctx);
        assert_string_equal(err.target, bad[i].target);
    }
}

static berth_group_t *parse(const char *json)
{
    berth_group_t *g = NULL;
    berth_error_t err;
    if (berth_group_parse(json, strlen(json), &g, &err) != 0)
        fail_msg("document refused: %s (%s)", err.message, err.target);
    return g;
}

static const char DOC[] =
    "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
    " \"initContainers\": [{\"name\": \"setup\", \"properties\": {\"image\": \"busybox:latest\","
    "   \"environmentVariables\": [{\"name\": \"BERTH_SIM_EXIT_AFTER_MS\", \"value\": \"0\"}]}}],"
    " \"containers\": ["
    "  {\"name\": \"web\", \"properties\": {\"image\": \"busybox:latest\","
    "   \"resources\": {\"requests\": {\"cpu\": 0.75, \"memoryInGB\": 0.5}}}},"
    "  {\"name\": \"crashy\", \"properties\": {\"image\": \"crash:1\","
    "   \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.5}}}}]}}";

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void list_cb(const char *key, uint64_t gen, uint64_t digest, void *data)
{
    int *n = data;
    assert_string_equal(key, "sub/rg/g1");
    assert_int_equal(gen, 3);
    (*n)++;
}

static void test_sim_lifecycle(void **state)
{
    sim_fixture_t *f = *state;
    berth_group_t *spec = parse(DOC);
    berth_error_t err;
    bool cached = false;
    assert_int_equal(f->ops->image_ensure(f->ctx, "busybox:latest", NULL, &cached, &err), 0);
    assert_true(cached);
    assert_int_equal(f->ops->image_ensure(f->ctx, "crash:1", NULL, &cached, &err), 0);
    assert_false(cached);
    assert_int_equal(f->ops->image_ensure(f->ctx, "bad/image", NULL, &cached, &err), BERTH_EIO);
    assert_string_equal(err.name, "ImagePullFailed");

    uint32_t shares[2];
    assert_int_equal(berth_group_cpu_shares(spec, shares, 2), 0);
    berth_runtime_group_t rg = {"sub/rg/g1", 3, berth_runtime_digest(spec), spec, 2000, shares, NULL, 0};
    assert_int_equal(f->ops->create(f->ctx, &rg, &err), 0);
    assert_int_equal(f->ops->create(f->ctx, &rg, &err), BERTH_EEXIST);

    berth_group_status_t st;
    assert_int_equal(f->ops->status(f->ctx, "sub/rg/g1", &st, &err), 0);
    assert_true(st.exists);
    assert_int_equal(st.generation, 3);
    assert_true(st.digest == rg.digest);
    assert_int_equal(st.ncontainers, 3);
    assert_string_equal(st.containers[0].name, "setup");
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_WAITING);

    /* The init container runs to completion first. */
    assert_int_equal(f->ops->start(f->ctx, "sub/rg/g1", "setup", &err), 0);
    assert_int_equal(f->ops->status(f->ctx, "sub/rg/g1", &st, &err), 0);
    assert_int_equal(st.containers[0].state, BERTH_CONTAINER_TERMINATED);
    assert_int_equal(st.containers[0].exit_code, 0);

    assert_int_equal(f->ops->start(f->ctx, "sub/rg/g1", NULL, &err), 0);
    assert_int_equal(f->ops->status(f->ctx, "sub/rg/g1", &st, &err), 0);
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_RUNNING);
    assert_int_equal(st.containers[2].state, BERTH_CONTAINER_RUNNING);
    sleep_ms(80);
    assert_int_equal(f->ops->status(f->ctx, "sub/rg/g1", &st, &err), 0);
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_RUNNING);
    assert_int_equal(st.containers[2].state, BERTH_CONTAINER_TERMINATED);
    assert_int_equal(st.containers[2].exit_code, 7);
    assert_true(st.containers[2].finished_ms >= st.containers[2].started_ms + 50);

    /* A terminated container starts again. */
    assert_int_equal(f->ops->start(f->ctx, "sub/rg/g1", "crashy", &err), 0);
    assert_int_equal(f->ops->status(f->ctx, "sub/rg/g1", &st, &err), 0);
    assert_int_equal(st.containers[2].state, BERTH_CONTAINER_RUNNING);

    char *out = NULL;
    size_t len = 0;
    assert_int_equal(f->ops->logs(f->ctx, "sub/rg/g1", "crashy", 2, false, &out, &len, &err), 0);
    assert_string_equal(out, "exited with code 7\nstarted\n");
    free(out);
    assert_int_equal(f->ops->logs(f->ctx, "sub/rg/g1", "crashy", 1, true, &out, &len, &err), 0);
    assert_true(len > 24 && out[4] == '-' && strstr(out, "Z started\n") != NULL);
    free(out);

    const char *argv[] = {"echo", "hello"};
    int code = -1;
    assert_int_equal(f->ops->exec(f->ctx, "sub/rg/g1", "web", argv, 2, &out, &len, &code, &err), 0);
    assert_string_equal(out, "echo hello\n");
    assert_int_equal(code, 0);
    free(out);
    const char *ex[] = {"exit", "4"};
    assert_int_equal(f->ops->exec(f->ctx, "sub/rg/g1", "web", ex, 2, &out, &len, &code, &err), 0);
    assert_int_equal(code, 4);
    free(out);
    assert_int_equal(f->ops->exec(f->ctx, "sub/rg/g1", "nope", argv, 2, &out, &len, &code, &err),
                     BERTH_ENOENT);

    assert_int_equal(f->ops->restart(f->ctx, "sub/rg/g1", 1, &err), 0);
    assert_int_equal(f->ops->stop(f->ctx, "sub/rg/g1", NULL, 1, &err), 0);
    assert_int_equal(f->ops->status(f->ctx, "sub/rg/g1", &st, &err), 0);
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_TERMINATED);
    assert_int_equal(st.containers[1].exit_code, 143);

    int n = 0;
    assert_int_equal(f->ops->list(f->ctx, list_cb, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(f->ops->remove(f->ctx, "sub/rg/g1", &err), 0);
    assert_int_equal(f->ops->remove(f->ctx, "sub/rg/g1", &err), 0);
    assert_int_equal(f->ops->status(f->ctx, "sub/rg/g1", &st, &err), 0);
    assert_false(st.exists);
    n = 0;
    assert_int_equal(f->ops->list(f->ctx, list_cb, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(f->ops->start(f->ctx, "sub/rg/g1", NULL, &err), BERTH_ENOENT);
    berth_group_free(spec);
}

static void test_sim_start_latency(void **state)
{
    sim_fixture_t *f = *state;
    void *ctx;
    berth_error_t err;
    assert_int_equal(f->ops->open("{\"start_latency_ms\": 200}", "h", &ctx, &err), 0);
    berth_group_t *spec = parse(DOC);
    uint32_t shares[2];
    assert_int_equal(berth_group_cpu_shares(spec, shares, 2), 0);
    assert_int_equal(f->ops->image_ensure(ctx, "crash:1", NULL, NULL, &err), 0);
    berth_runtime_group_t rg = {"k", 1, 1, spec, 2000, shares, NULL, 0};
    assert_int_equal(f->ops->create(ctx, &rg, &err), 0);
    assert_int_equal(f->ops->start(ctx, "k", NULL, &err), 0);
    berth_group_status_t st;
    assert_int_equal(f->ops->status(ctx, "k", &st, &err), 0);
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_WAITING);
    sleep_ms(250);
    assert_int_equal(f->ops->status(ctx, "k", &st, &err), 0);
    assert_int_equal(st.containers[1].state, BERTH_CONTAINER_RUNNING);
    f->ops->close(ctx);
    berth_group_free(spec);
}

static const char STATS_DOC[] =
    "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
    " \"initContainers\": [{\"name\": \"setup\", \"properties\": {\"image\": \"busybox:latest\"}}],"
    " \"containers\": ["
    "  {\"name\": \"web\", \"properties\": {\"image\": \"busybox:latest\","
    "   \"resources\": {\"requests\": {\"cpu\": 0.75, \"memoryInGB\": 0.5}}}},"
    "  {\"name\": \"side\", \"properties\": {\"image\": \"busybox:latest\","
    "   \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.5}}}}]}}";

/* The simulator's synthetic usage: counters from the requests and the time
 * run, nothing before a start, back to nothing after the end. */
static void test_sim_stats(void **state)
{
    sim_fixture_t *f = *state;
    berth_error_t err;
    assert_true(f->ops->size >= offsetof(berth_plugin_ops_t, stats) + sizeof f->ops->stats);
    assert_non_null(f->ops->stats);
    berth_group_t *spec = parse(STATS_DOC);
    uint32_t shares[2];
    assert_int_equal(berth_group_cpu_shares(spec, shares, 2), 0);
    berth_runtime_group_t rg = {"m", 1, 1, spec, 2000, shares, NULL, 0};
    berth_group_stats_t st;
    assert_int_equal(f->ops->stats(f->ctx, "m", &st, &err), BERTH_ENOENT);
    assert_string_equal(err.name, "ContainerGroupNotFound");
    assert_int_equal(f->ops->create(f->ctx, &rg, &err), 0);

    /* Created, not started: the containers alone (no init container), idle. */
    assert_int_equal(f->ops->stats(f->ctx, "m", &st, &err), 0);
    assert_int_equal(st.ncontainers, 2);
    assert_string_equal(st.containers[0].name, "web");
    assert_string_equal(st.containers[1].name, "side");
    assert_false(st.containers[0].running);
    assert_true(st.containers[0].cpu_ns == 0 && st.containers[0].memory_bytes == 0);
    assert_true(st.rx_bytes == 0 && st.tx_bytes == 0);

    assert_int_equal(f->ops->start(f->ctx, "m", NULL, &err), 0);
    sleep_ms(20);
    assert_int_equal(f->ops->stats(f->ctx, "m", &st, &err), 0);
    assert_true(st.containers[0].running && st.containers[1].running);
    /* Both started together: CPU time in the ratio of the requests, 0.75 to 0.5. */
    assert_true(st.containers[0].cpu_ns > 0);
    assert_true(st.containers[0].cpu_ns * 500 == st.containers[1].cpu_ns * 750);
    assert_true(st.containers[0].memory_bytes == 268435456u);    /* half of 0.5 GiB */
    assert_true(st.rx_bytes > 0 && st.tx_bytes > 0 && st.rx_bytes >= st.tx_bytes);
    uint64_t cpu = st.containers[0].cpu_ns;

    /* side stops; web goes on, its counters never going back. */
    assert_int_equal(f->ops->stop(f->ctx, "m", "side", 1, &err), 0);
    sleep_ms(5);
    assert_int_equal(f->ops->stats(f->ctx, "m", &st, &err), 0);
    assert_true(st.containers[0].running);
    assert_false(st.containers[1].running);
    assert_true(st.containers[1].cpu_ns == 0 && st.containers[1].memory_bytes == 0);
    assert_true(st.containers[0].cpu_ns > cpu);
    assert_true(st.rx_bytes > 0);
    assert_int_equal(f->ops->remove(f->ctx, "m", &err), 0);
    assert_int_equal(f->ops->stats(f->ctx, "m", &st, &err), BERTH_ENOENT);
    berth_group_free(spec);
}

/* ---- the simulator's interactive sessions --------------------------------- */

#define SESSION_WAIT_MS 20000

/* Creates and starts group "s" of DOC: "web" runs, "crashy" ends at 50 ms. */
static berth_group_t *session_group(sim_fixture_t *f)
{
    berth_group_t *spec = parse(DOC);
    static uint32_t shares[2];
    berth_error_t err;
    assert_int_equal(berth_group_cpu_shares(spec, shares, 2), 0);
    assert_int_equal(f->ops->image_ensure(f->ctx, "crash:1", NULL, NULL, &err), 0);
    berth_runtime_group_t rg = {"s", 1, berth_runtime_digest(spec), spec, 2000, shares, NULL, 0};
    assert_int_equal(f->ops->create(f->ctx, &rg, &err), 0);
    assert_int_equal(f->ops->start(f->ctx, "s", NULL, &err), 0);
    return spec;
}

static void test_sim_session_tty(void **state)
{
    sim_fixture_t *f = *state;
    berth_group_t *spec = session_group(f);
    const char *sh[] = {"/bin/sh"};
    test_session_t t;
    test_session_open(&t, f->ops, f->ctx, "s", "web", sh, 1, true, 30, 100, SESSION_WAIT_MS);
    struct pollfd p = {.fd = t.fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0);   /* nothing to read yet */

    /* Input is echoed as typed; output lines end in "\r\n". */
    test_session_send(&t, "stty size\n");
    test_session_expect(&t, "stty size\r\n30 100\r\n");
    berth_error_t err;
    assert_int_equal(f->ops->session_resize(t.s, 40, 120, &err), 0);
    test_session_send(&t, "stty sizx\x7f" "e\r");
    test_session_expect(&t, "stty sizx\b \be\r\n40 120\r\n");
    test_session_send(&t, "read x; echo got $x\n");
    test_session_send(&t, "hel");
    test_session_expect(&t, "hel");
    test_session_send(&t, "lo\n");
    test_session_expect(&t, "lo\r\ngot hello\r\n");
    test_session_send(&t, "exit 3\n");
    test_session_to_end(&t);
    for (size_t i = 0; i < t.len; i++)
        if (t.out[i] == '\n' && (i == 0 || t.out[i - 1] != '\r'))
            fail_msg("a bare newline at %zu: '%s'", i, t.out);
    assert_int_equal(poll(&p, 1, 0), 1);   /* the end stays readable */
    assert_int_equal(f->ops->session_write(t.s, "x\n", 2, &err), BERTH_EIO);
    assert_int_equal(test_session_finish(&t), 3);

    /* ^D at the start of a line ends the input: the shell exits 0. */
    test_session_open(&t, f->ops, f->ctx, "s", "web", sh, 1, true, 0, 0, SESSION_WAIT_MS);
    test_session_send(&t, "stty size\n\x04");
    test_session_expect(&t, "24 80\r\n");
    test_session_to_end(&t);
    assert_int_equal(test_session_finish(&t), 0);
    assert_int_equal(f->ops->remove(f->ctx, "s", &err), 0);
    berth_group_free(spec);
}

static void test_sim_session_pipes(void **state)
{
    sim_fixture_t *f = *state;
    berth_group_t *spec = session_group(f);
    berth_error_t err;

    /* sh -c: the script reads its input; stderr is the same output. */
    const char *script[] = {"/bin/sh", "-c", "read x; echo got $x; echo err >&2; exit 5"};
    test_session_t t;
    test_session_open(&t, f->ops, f->ctx, "s", "web", script, 3, false, 0, 0, SESSION_WAIT_MS);
    test_session_send(&t, "hello\n");
    assert_int_equal(f->ops->session_write(t.s, "", 0, &err), 0);
    test_session_to_end(&t);
    assert_string_equal(t.out, "got hello\nerr\n");
    assert_int_equal(test_session_finish(&t), 5);

    /* The same script as berthd splits it on spaces, quotes and all. */
    const char *split[] = {"sh", "-c", "\"read", "x;", "echo", "got", "$x\""};
    test_session_open(&t, f->ops, f->ctx, "s", "web", split, 7, false, 0, 0, SESSION_WAIT_MS);
    test_session_send(&t, "there\n");
    test_session_to_end(&t);
    assert_string_equal(t.out, "got there\n");
    assert_int_equal(test_session_finish(&t), 0);

    /* The interactive shell without a TTY: no echo, "\n". */
    const char *sh[] = {"sh"};
    test_session_open(&t, f->ops, f->ctx, "s", "web", sh, 1, false, 30, 100, SESSION_WAIT_MS);
    test_session_send(&t, "stty size; echo $?\nnosuch arg; echo $?\n");
    assert_int_equal(f->ops->session_resize(t.s, 40, 120, &err), 0);
    assert_int_equal(f->ops->session_write(t.s, "", 0, &err), 0);
    test_session_to_end(&t);
    assert_string_equal(t.out, "stty: standard input: Not a tty\n1\nsh: nosuch: not found\n127\n");
    assert_int_equal(test_session_finish(&t), 0);

    /* cat copies its input until the end of input. */
    const char *cat[] = {"cat"};
    test_session_open(&t, f->ops, f->ctx, "s", "web", cat, 1, false, 0, 0, SESSION_WAIT_MS);
    test_session_send(&t, "a line\nand");
    test_session_expect(&t, "a line\n");
    test_session_send(&t, " more");
    assert_int_equal(f->ops->session_write(t.s, "", 0, &err), 0);
    test_session_to_end(&t);
    assert_string_equal(t.out, "a line\nand more");
    assert_int_equal(test_session_finish(&t), 0);

    /* Any other command runs as one line of the shell. */
    const char *other[] = {"exit", "4"};
    test_session_open(&t, f->ops, f->ctx, "s", "web", other, 2, false, 0, 0, SESSION_WAIT_MS);
    test_session_to_end(&t);
    assert_int_equal(test_session_finish(&t), 4);
    const char *unknown[] = {"ls", "-l"};
    test_session_open(&t, f->ops, f->ctx, "s", "web", unknown, 2, false, 0, 0, SESSION_WAIT_MS);
    test_session_to_end(&t);
    assert_string_equal(t.out, "sh: ls: not found\n");
    assert_int_equal(test_session_finish(&t), 127);

    /* Closed before its output ended: -1. */
    test_session_open(&t, f->ops, f->ctx, "s", "web", sh, 1, false, 0, 0, SESSION_WAIT_MS);
    test_session_send(&t, "echo still here\n");
    test_session_expect(&t, "still here\n");
    assert_int_equal(test_session_finish(&t), -1);
    assert_int_equal(f->ops->remove(f->ctx, "s", &err), 0);
    berth_group_free(spec);
}

static void test_sim_session_refused(void **state)
{
    sim_fixture_t *f = *state;
    berth_group_t *spec = session_group(f);
    const char *sh[] = {"sh"};
    berth_session_opts_t o = {.tty = true, .rows = 24, .cols = 80};
    void *s = (void *)1;
    int fd = 0;
    berth_error_t err;
    assert_int_equal(f->ops->session_open(f->ctx, "nosuch", "web", sh, 1, &o, &s, &fd, &err),
                     BERTH_ENOENT);
    assert_null(s);
    assert_int_equal(fd, -1);
    assert_int_equal(f->ops->session_open(f->ctx, "s", "nosuch", sh, 1, &o, &s, &fd, &err),
                     BERTH_ENOENT);
    assert_int_equal(f->ops->session_open(f->ctx, "s", "web", sh, 0, &o, &s, &fd, &err),
                     BERTH_EINVAL);
    /* "crashy" ends at 50 ms; the init container "setup" never runs here. */
    berth_group_status_t st;
    for (int waited = 0; waited < SESSION_WAIT_MS; waited += 10) {
        assert_int_equal(f->ops->status(f->ctx, "s", &st, &err), 0);
        if (st.containers[2].state == BERTH_CONTAINER_TERMINATED)
            break;
        sleep_ms(10);
    }
    assert_int_equal(st.containers[2].state, BERTH_CONTAINER_TERMINATED);
    assert_int_equal(f->ops->session_open(f->ctx, "s", "crashy", sh, 1, &o, &s, &fd, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.name, "ContainerNotRunning");
    assert_null(s);
    assert_int_equal(f->ops->stop(f->ctx, "s", "web", 0, &err), 0);
    assert_int_equal(f->ops->session_open(f->ctx, "s", "web", sh, 1, &o, &s, &fd, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.name, "ContainerNotRunning");
    assert_int_equal(f->ops->remove(f->ctx, "s", &err), 0);
    berth_group_free(spec);
}

/* Output nobody reads is bounded: past it, a write fails. */
static void test_sim_session_output_bound(void **state)
{
    sim_fixture_t *f = *state;
    berth_group_t *spec = session_group(f);
    const char *cat[] = {"cat"};
    test_session_t t;
    test_session_open(&t, f->ops, f->ctx, "s", "web", cat, 1, false, 0, 0, SESSION_WAIT_MS);
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk - 1);
    chunk[sizeof chunk - 1] = '\n';
    berth_error_t err;
    int rc = 0;
    size_t written = 0;
    while (rc == 0 && written <= (4u << 20)) {
        rc = f->ops->session_write(t.s, chunk, sizeof chunk, &err);
        written += sizeof chunk;
    }
    assert_int_equal(rc, BERTH_EIO);
    assert_string_equal(err.name, "SessionOutputFull");
    assert_true(written > (1u << 20) - sizeof chunk);
    /* What waits can still be read. */
    assert_true(test_session_pump(&t, 0));
    assert_int_equal(t.out[0], 'x');
    assert_int_equal(test_session_finish(&t), -1);
    assert_int_equal(f->ops->remove(f->ctx, "s", &err), 0);
    berth_group_free(spec);
}

static void test_digest(void **state)
{
    berth_group_t *a = parse(DOC);
    berth_group_t *b = parse(DOC);
    char *other = strdup(DOC);
    *strstr(other, "0.75") = '1';       /* cpu 1.75 */
    berth_group_t *c = parse(other);
    assert_true(berth_runtime_digest(a) == berth_runtime_digest(b));
    assert_true(berth_runtime_digest(a) != berth_runtime_digest(c));
    assert_true(berth_runtime_digest(NULL) == 0);
    assert_true(berth_runtime_digest(a) != 0);
    free(other);
    berth_group_free(a);
    berth_group_free(b);
    berth_group_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_refuses),
        cmocka_unit_test(test_digest),
        cmocka_unit_test_setup_teardown(test_sim_loaded_by_name, sim_setup, sim_teardown),
        cmocka_unit_test_setup_teardown(test_sim_config_refused, sim_setup, sim_teardown),
        cmocka_unit_test_setup_teardown(test_sim_lifecycle, sim_setup, sim_teardown),
        cmocka_unit_test_setup_teardown(test_sim_start_latency, sim_setup, sim_teardown),
        cmocka_unit_test_setup_teardown(test_sim_stats, sim_setup, sim_teardown),
        cmocka_unit_test_setup_teardown(test_sim_session_tty, sim_setup, sim_teardown),
        cmocka_unit_test_setup_teardown(test_sim_session_pipes, sim_setup, sim_teardown),
        cmocka_unit_test_setup_teardown(test_sim_session_refused, sim_setup, sim_teardown),
        cmocka_unit_test_setup_teardown(test_sim_session_output_bound, sim_setup, sim_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
