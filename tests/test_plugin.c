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
 * digest tells documents apart.
 */
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
    berth_runtime_group_t rg = {"sub/rg/g1", 3, berth_runtime_digest(spec), spec, 2000, shares};
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
    berth_runtime_group_t rg = {"k", 1, 1, spec, 2000, shares};
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
