/*
 * test_agent_engines.c: berth-agent driving real engines -- Docker,
 * Podman (through its Docker-compatible service) and runc -- with a real
 * redis-server, end to end: a scheduler commits placements, the agent
 * carries them out, the test checks the instance view and the engine.
 *
 * For each engine: create a two-container group whose containers talk over
 * localhost (and, on Docker and Podman, serve on a port published on
 * 127.0.0.1); logs and exec through `berth-agent logs|exec`; an update
 * that restarts every container in place, on the same host, without a
 * pull; a restart request; stop (release: nothing left in the engine) and
 * start (placed again); the published port on the same host port after
 * the update and after stop and start, and on another one (logged) when
 * that one is taken; delete; OnFailure restarting a container that
 * exits non-zero and Never leaving it terminated with its exit code; a
 * config map read by the container as a file under /mnt/configmap/app/
 * and a change to it alone seen there without a restart;
 * the agent killed (SIGKILL) in the middle of a create and started again,
 * after which exactly one copy of the group runs; and interactive sessions
 * through the asynchronous store and the agent (a shell under a terminal:
 * its size, a resize, a line read from stdin, the exit status; then one
 * without a terminal reading stdin to its end); on Docker and Podman,
 * groups of virtual network subnets on their subnet's network (two of
 * one subnet reach each other by address, one of another subnet and a
 * public one do not).
 *
 * The engines come from tests/engines.sh (BERTH_TEST_DOCKER_SOCK,
 * BERTH_TEST_PODMAN_SOCK, BERTH_TEST_RUNC_IMAGES, BERTH_TEST_IMAGE); an
 * engine that is not there is skipped, unless BERTH_REQUIRE_ENGINES=1,
 * which makes it a failure.  Containers are reached only through
 * 127.0.0.1 and through the engine's socket.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "agent-harness.h"
#include "lib/spawn.h"
#include "berth-plugin.h"
#include "redis-harness.h"

typedef enum engine_kind { ENGINE_DOCKER, ENGINE_PODMAN, ENGINE_RUNC } engine_kind_t;

typedef struct engine {
    engine_kind_t kind;
    const char *name;               /* docker | podman | runc               */
    const char *plugin;
    char config[1024];
    char socket[256];               /* docker, podman                       */
    char runc_root[256];
    char dir[128];                  /* the test's own data directory        */
    bool available;
} engine_t;

static berth_test_redis_t *redis;
static int cell_counter;
static const char *image = "busybox:latest";

typedef struct fixture {
    engine_t *e;
    char cell[32];
    char host[48];
    test_sched_t sched;
    test_agent_t agent;
    berth_plugin_t *plugin;         /* the test's own look at the engine    */
    const berth_plugin_ops_t *ops;
    void *ctx;
} fixture_t;

static engine_t engines[3] = {
    {.kind = ENGINE_DOCKER, .name = "docker", .plugin = "docker"},
    {.kind = ENGINE_PODMAN, .name = "podman", .plugin = "docker"},
    {.kind = ENGINE_RUNC, .name = "runc", .plugin = "runc"},
};

static bool required(void)
{
    const char *r = getenv("BERTH_REQUIRE_ENGINES");
    return r != NULL && strcmp(r, "1") == 0;
}

/* Fills each engine's configuration from the environment. */
static void engines_prepare(void)
{
    const char *img = getenv("BERTH_TEST_IMAGE");
    if (img != NULL && img[0] != '\0')
        image = img;
    const char *dsock = getenv("BERTH_TEST_DOCKER_SOCK");
    const char *psock = getenv("BERTH_TEST_PODMAN_SOCK");
    const char *images = getenv("BERTH_TEST_RUNC_IMAGES");
    for (int i = 0; i < 3; i++) {
        engine_t *e = &engines[i];
        snprintf(e->dir, sizeof e->dir, "/tmp/berth-ae-%d-%s", (int)getpid(), e->name);
        const char *sock = e->kind == ENGINE_DOCKER ? dsock : e->kind == ENGINE_PODMAN ? psock
                                                                                      : NULL;
        if (e->kind != ENGINE_RUNC) {
            e->available = sock != NULL && sock[0] != '\0' && access(sock, W_OK) == 0;
            snprintf(e->socket, sizeof e->socket, "%s", sock ? sock : "");
            snprintf(e->config, sizeof e->config,
                     "{\"socket\": \"%s\", \"data_dir\": \"%s/data\","
                     " \"secret_dir\": \"/dev/shm/berth-ae-%d-%s\", \"stop_grace_s\": 2%s}",
                     e->socket, e->dir, (int)getpid(), e->name,
                     e->kind == ENGINE_PODMAN ? ", \"ulimits\": true" : "");
        } else {
            e->available = images != NULL && images[0] != '\0' && access(images, R_OK) == 0 &&
                           geteuid() == 0;
            snprintf(e->runc_root, sizeof e->runc_root, "%s/runc", e->dir);
            snprintf(e->config, sizeof e->config,
                     "{\"root\": \"%s\", \"data_dir\": \"%s/data\", \"images_dir\": \"%s\","
                     " \"secret_dir\": \"/dev/shm/berth-ae-%d-runc\", \"stop_grace_s\": 2}",
                     e->runc_root, e->dir, images ? images : "", (int)getpid());
        }
    }
}

static int group_setup(void **state)
{
    engines_prepare();
    berth_test_redis_options_t o = {BERTH_TEST_REDIS_UNIX, BERTH_TEST_REDIS_AOF_EVERYSEC, 0};
    redis = berth_test_redis_start(&o);
    return redis != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    berth_test_redis_stop(redis);
    for (int i = 0; i < 3; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' /dev/shm/berth-ae-%d-%s", engines[i].dir,
                 (int)getpid(), engines[i].name);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", engines[i].dir);
    }
    return 0;
}

static const char *const AGENT_ARGS[] = {"--cores", "4", "--memory-mib", "8192",
                                         "--tick-ms", "100", "--heartbeat-ms", "500",
                                         "--ttl-ms", "5000", "--backoff-initial-ms", "300",
                                         "--backoff-max-ms", "1200", "--stop-grace-s", "2",
                                         "--metrics-interval", "1", NULL};

static int agent_start(fixture_t *f)
{
    return test_agent_start(&f->agent, redis->url, f->cell, f->host, f->e->plugin,
                            f->e->config, AGENT_ARGS);
}

static int setup_engine(void **state, engine_t *e)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->e = e;
    *state = f;
    if (!e->available)
        return 0;
    mkdir(e->dir, 0700);
    snprintf(f->cell, sizeof f->cell, "engines-%d", ++cell_counter);
    snprintf(f->host, sizeof f->host, "%s-%d-%d", e->name, (int)getpid(), cell_counter);
    berth_error_t err;
    if (berth_plugin_load(e->plugin, &f->plugin, &err) != 0) {
        fprintf(stderr, "plugin %s: %s\n", e->plugin, err.message);
        return -1;
    }
    f->ops = berth_plugin_ops(f->plugin);
    if (f->ops->open(e->config, f->host, &f->ctx, &err) != 0) {
        fprintf(stderr, "plugin %s: %s\n", e->plugin, err.message);
        return -1;
    }
    if (test_sched_open(&f->sched, redis->url, f->cell) != 0 || agent_start(f) != 0 ||
        !test_sched_wait_host(&f->sched, f->host, 15000)) {
        test_agent_dump(&f->agent, 30);
        return -1;
    }
    return 0;
}

static int setup_docker(void **state) { return setup_engine(state, &engines[0]); }
static int setup_podman(void **state) { return setup_engine(state, &engines[1]); }
static int setup_runc(void **state) { return setup_engine(state, &engines[2]); }

typedef struct key_list {
    char *k[64];
    size_t n;
} key_list_t;

static void key_collect(const char *key, uint64_t generation, uint64_t digest, void *data)
{
    key_list_t *l = data;
    if (l->n < 64)
        l->k[l->n++] = strdup(key);
}

/* Removes whatever the test's groups left in the engine. */
static void engine_clean(fixture_t *f)
{
    if (f->ctx == NULL)
        return;
    key_list_t keys = {0};
    f->ops->list(f->ctx, key_collect, &keys, NULL);
    for (size_t i = 0; i < keys.n; i++) {
        f->ops->remove(f->ctx, keys.k[i], NULL);
        free(keys.k[i]);
    }
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = 0;
    if (f->agent.pid > 0) {
        rc = test_agent_stop(&f->agent);
        if (rc != 0) {
            fprintf(stderr, "agent exited with %d\n", rc);
            test_agent_dump(&f->agent, 40);
        }
        unlink(f->agent.log_path);
    }
    engine_clean(f);
    if (f->ops != NULL && f->ctx != NULL)
        f->ops->close(f->ctx);
    berth_plugin_unload(f->plugin);
    if (f->sched.store != NULL)
        test_sched_close(&f->sched);
    free(f);
    return rc == 0 ? 0 : -1;
}

static bool skip_unavailable(fixture_t *f)
{
    if (f->e->available)
        return false;
    if (required())
        fail_msg("engine %s is required (BERTH_REQUIRE_ENGINES=1) but not configured",
                 f->e->name);
    fprintf(stderr, "engine %s not configured: skipped\n", f->e->name);
    skip();
    return true;
}

/* ---- documents ----------------------------------------------------------------- */

/* Two containers in one group: "server" serves MARK on 127.0.0.1:8080,
 * "client" fetches it over localhost every second and prints it.  Public
 * port 8080 where the engine publishes ports. */
/* The host port of the view's first published port (0: none). */
static uint32_t first_host_port(json_t *v)
{
    json_t *port = json_array_get(json_object_get(json_object_get(v, "ipAddress"), "ports"), 0);
    return (uint32_t)json_integer_value(json_object_get(port, "hostPort"));
}

static char *pair_doc(const engine_t *e, const char *mark)
{
    char *out = NULL;
    bool ports = e->kind != ENGINE_RUNC;
    if (asprintf(&out,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
                 " \"restartPolicy\": \"Always\",%s"
                 " \"containers\": ["
                 "  {\"name\": \"server\", \"properties\": {\"image\": \"%s\","
                 "   \"command\": [\"sh\", \"-c\", \"echo %s > /tmp/index.html &&"
                 " exec httpd -f -p 8080 -h /tmp\"],"
                 "   %s"
                 "   \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.25}}}},"
                 "  {\"name\": \"client\", \"properties\": {\"image\": \"%s\","
                 "   \"command\": [\"sh\", \"-c\", \"while :; do wget -qO- http://127.0.0.1:8080/"
                 " 2>/dev/null; sleep 1; done\"],"
                 "   \"environmentVariables\": [{\"name\": \"MARK\", \"value\": \"%s\"},"
                 "    {\"name\": \"PASSWORD\", \"secureValue\": \"hunter2-secret\"}],"
                 "   \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.25}}}}]}}",
                 ports ? " \"ipAddress\": {\"type\": \"Public\", \"ports\": [{\"port\": 8080}]},"
                       : "",
                 image, mark, ports ? "\"ports\": [{\"port\": 8080}]," : "", image, mark) < 0)
        return NULL;
    return out;
}

/* One container that prints a line and exits with `code`, under `policy`. */
static char *exit_doc(const char *policy, int code)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
                 " \"restartPolicy\": \"%s\", \"containers\": [{\"name\": \"app\","
                 " \"properties\": {\"image\": \"%s\", \"command\": [\"sh\", \"-c\","
                 " \"echo run; sleep 1; exit %d\"],"
                 " \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.25}}}}]}}",
                 policy, image, code) < 0)
        return NULL;
    return out;
}

static void place_ok(fixture_t *f, const char *key, char *document, berth_placement_t *out)
{
    assert_non_null(document);
    int rc = test_sched_place(&f->sched, key, document, out);
    free(document);
    assert_int_equal(rc, 0);
}

static json_t *wait_view(fixture_t *f, const char *key, test_view_pred pred, void *data,
                         const char *what)
{
    json_t *v = test_view_wait(&f->sched, key, pred, data, 60000, what);
    if (v == NULL)
        test_agent_dump(&f->agent, 40);
    assert_non_null(v);
    return v;
}

static bool both_running(json_t *v, void *data)
{
    const uint64_t *gen = data;
    return test_pred_running(v, "server") && test_pred_running(v, "client") &&
           (gen == NULL || (uint64_t)json_integer_value(json_object_get(v, "generation")) == *gen);
}

/* ---- the engine, seen by the test ------------------------------------------------ */

/* Runs argv for at most two minutes; returns its output (stdout and
 * stderr, free()) and exit status in *status (128 when a signal or the
 * bound ended it). */
static char *run(const char *const *argv, int *status)
{
    berth__spawn_options_t o = {.capture = BERTH__SPAWN_CAPTURE_STDOUT |
                                           BERTH__SPAWN_CAPTURE_STDERR};
    berth__spawn_result_t res;
    char *out = NULL;
    berth__spawn_run_alloc((char *const *)argv, &o, 120000, 1 << 20, &out, &res);
    *status = res.exit_status >= 0 ? res.exit_status : 128;
    return out;
}

/* `berth-agent logs|exec` for the fixture's host. */
static char *agent_cli(fixture_t *f, const char *verb, const char *key, const char *container,
                       const char *const *cmd, int *status)
{
    char prog[512];
    const char *b = getenv("top_builddir");
    snprintf(prog, sizeof prog, "%s/tools/berth-agent/berth-agent", b != NULL ? b : ".");
    const char *argv[32] = {prog, verb, "--plugin", f->e->plugin, "--plugin-config",
                            f->e->config, "--host", f->host};
    size_t n = 8;
    if (strcmp(verb, "logs") == 0)
        argv[n++] = "--tail=5";
    argv[n++] = key;
    argv[n++] = container;
    if (cmd != NULL) {
        argv[n++] = "--";
        for (size_t i = 0; cmd[i] != NULL && n < 31; i++)
            argv[n++] = cmd[i];
    }
    argv[n] = NULL;
    return run(argv, status);
}

/* How many of the group's objects the engine holds (containers, with the
 * sandbox; for runc, runc's containers of the group). */
static int engine_objects(fixture_t *f, const char *key)
{
    char filter[400];
    int status;
    char *out;
    if (f->e->kind != ENGINE_RUNC) {
        char host[300];
        snprintf(host, sizeof host, "unix://%s", f->e->socket);
        snprintf(filter, sizeof filter, "label=io.berth.key=%s", key);
        const char *argv[] = {"docker", "-H", host, "ps", "-a", "-q", "--filter", filter,
                              "--filter", NULL, NULL};
        char hf[128];
        snprintf(hf, sizeof hf, "label=io.berth.host=%s", f->host);
        argv[9] = hf;
        out = run(argv, &status);
    } else {
        const char *argv[] = {"runc", "--root", f->e->runc_root, "list", "-q", NULL};
        out = run(argv, &status);
    }
    assert_non_null(out);
    assert_int_equal(status, 0);
    int lines = 0;
    if (f->e->kind == ENGINE_RUNC) {
        /* runc list names every container of the test's root: all ours. */
        for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n"))
            lines += strncmp(line, "berth-", 6) == 0;
    } else {
        for (char *p = out; *p != '\0'; p++)
            lines += *p == '\n';
    }
    free(out);
    return lines;
}

static int http_get(uint32_t port, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    const char req[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return -1;
    }
    size_t n = 0;
    ssize_t k;
    while (n < cap - 1 && (k = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    close(fd);
    return 0;
}

static const char *cstart(json_t *v, const char *name)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(test_view_container(v, name), "instanceView"),
                        "currentState"), "startTime"));
}

/* ---- the tests ------------------------------------------------------------------ */

static bool gone(json_t *v, void *data)
{
    return v == NULL;
}

static bool restarted(json_t *x, void *data)
{
    return test_view_restarts(x, "server") == 1 && test_view_restarts(x, "client") == 1 &&
           both_running(x, NULL);
}

static void test_lifecycle(void **state)
{
    fixture_t *f = *state;
    if (skip_unavailable(f))
        return;
    const char *key = "sub/rg/pair";
    berth_placement_t p1, p2;
    place_ok(f, key, pair_doc(f->e, "first-mark"), &p1);
    json_t *v = wait_view(f, key, both_running, NULL, "both containers running");
    assert_true(test_view_has_event(v, "server", "Pulled", "already present on machine"));
    assert_int_equal(engine_objects(f, key), f->e->kind == ENGINE_RUNC ? 3 : 3);

    /* The two containers talk over localhost: the client's exec and log. */
    int status;
    const char *wget[] = {"wget", "-qO-", "http://127.0.0.1:8080/", NULL};
    char *out = agent_cli(f, "exec", key, "client", wget, &status);
    assert_non_null(out);
    if (status != 0 || strstr(out, "first-mark") == NULL)
        fail_msg("exec: status %d, output '%s'", status, out);
    free(out);
    const char *fail[] = {"sh", "-c", "echo to-stdout; exit 5", NULL};
    out = agent_cli(f, "exec", key, "client", fail, &status);
    assert_int_equal(status, 5);
    assert_non_null(strstr(out, "to-stdout"));
    free(out);
    int64_t end = test_now_ms() + 20000;
    bool logged = false;
    while (!logged && test_now_ms() < end) {
        out = agent_cli(f, "logs", key, "client", NULL, &status);
        logged = status == 0 && out != NULL && strstr(out, "first-mark") != NULL;
        free(out);
        if (!logged)
            test_sleep_ms(300);
    }
    assert_true(logged);

    /* Published on 127.0.0.1 (Docker and Podman). */
    uint32_t hp1 = 0;
    if (f->e->kind != ENGINE_RUNC) {
        json_t *port = json_array_get(json_object_get(json_object_get(v, "ipAddress"),
                                                      "ports"), 0);
        assert_non_null(port);
        assert_string_equal(json_string_value(json_object_get(port, "hostIp")), "127.0.0.1");
        uint32_t hp = (uint32_t)json_integer_value(json_object_get(port, "hostPort"));
        assert_true(hp > 0);
        hp1 = hp;
        char page[2048];
        assert_int_equal(http_get(hp, page, sizeof page), 0);
        assert_non_null(strstr(page, "first-mark"));
    }
    char *old_start = strdup(cstart(v, "client"));
    json_decref(v);

    /* An update restarts every container in place, without a pull. */
    place_ok(f, key, pair_doc(f->e, "second-mark"), &p2);
    assert_string_equal(p1.host, p2.host);
    assert_string_equal(p2.host, f->host);
    uint64_t gen2 = 2;
    v = wait_view(f, key, both_running, &gen2, "generation 2 running");
    assert_true(strcmp(cstart(v, "client"), old_start) > 0);
    assert_false(test_view_has_event(v, "server", "Pulled", "Successfully pulled"));
    assert_true(test_view_has_event(v, "server", "Pulled", "already present on machine"));
    assert_int_equal(engine_objects(f, key), 3);
    free(old_start);
    if (f->e->kind != ENGINE_RUNC)
        assert_int_equal(first_host_port(v), hp1);     /* the same host port */
    json_decref(v);
    out = agent_cli(f, "exec", key, "client", wget, &status);
    assert_non_null(strstr(out, "second-mark"));
    free(out);

    /* Restart: every container again, in place. */
    berth_error_t err;
    assert_int_equal(berth_store_group_restart(f->sched.store, key, &err), 0);
    v = wait_view(f, key, restarted, NULL, "one restart of each container");
    json_decref(v);

    /* Stop (the allocation is released): nothing left in the engine. */
    assert_int_equal(berth_store_release(f->sched.store, key, &err), 0);
    json_decref(wait_view(f, key, gone, NULL, "the view dropped"));
    assert_int_equal(engine_objects(f, key), 0);

    /* Start: placed again, running again. */
    place_ok(f, key, pair_doc(f->e, "third-mark"), NULL);
    uint64_t gen1 = 1;
    v = wait_view(f, key, both_running, &gen1, "running after start");
    if (f->e->kind != ENGINE_RUNC)
        assert_int_equal(first_host_port(v), hp1);     /* the same host port */
    json_decref(v);
    assert_int_equal(engine_objects(f, key), 3);

    /* Stopped, and its host port taken meanwhile: started on another one,
     * and the agent says so. */
    if (f->e->kind != ENGINE_RUNC) {
        assert_int_equal(berth_store_release(f->sched.store, key, &err), 0);
        json_decref(wait_view(f, key, gone, NULL, "the view dropped"));
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)hp1)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;                /* the test's own connections linger in TIME_WAIT */
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(listen(fd, 1), 0);
        place_ok(f, key, pair_doc(f->e, "fourth-mark"), NULL);
        v = wait_view(f, key, both_running, &gen1, "running on another host port");
        uint32_t hp2 = first_host_port(v);
        json_decref(v);
        close(fd);
        assert_true(hp2 > 0 && hp2 != hp1);
        char page[2048];
        assert_int_equal(http_get(hp2, page, sizeof page), 0);
        assert_non_null(strstr(page, "fourth-mark"));
        char grep[400];
        snprintf(grep, sizeof grep, "grep -q 'host port %u was taken; published on %u' '%s'",
                 hp1, hp2, f->agent.log_path);
        assert_int_equal(system(grep), 0);
    }

    /* Delete. */
    assert_int_equal(berth_store_release(f->sched.store, key, &err), 0);
    json_decref(wait_view(f, key, gone, NULL, "the view dropped"));
    assert_int_equal(engine_objects(f, key), 0);

    /* No secret reached the agent's log. */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "grep -q hunter2 '%s'", f->agent.log_path);
    assert_int_not_equal(system(cmd), 0);
}

static bool restarted_after_failure(json_t *v, void *data)
{
    json_t *prev = json_object_get(json_object_get(test_view_container(v, "app"),
                                                   "instanceView"), "previousState");
    return test_view_restarts(v, "app") >= 1 &&
           json_integer_value(json_object_get(prev, "exitCode")) == 3;
}

static bool terminated_3(json_t *v, void *data)
{
    json_t *cur = json_object_get(json_object_get(test_view_container(v, "app"),
                                                  "instanceView"), "currentState");
    const char *s = json_string_value(json_object_get(cur, "state"));
    return s != NULL && strcmp(s, "Terminated") == 0 &&
           json_integer_value(json_object_get(cur, "exitCode")) == 3;
}

static void test_restart_policies(void **state)
{
    fixture_t *f = *state;
    if (skip_unavailable(f))
        return;
    place_ok(f, "sub/rg/onfailure", exit_doc("OnFailure", 3), NULL);
    place_ok(f, "sub/rg/never", exit_doc("Never", 3), NULL);
    json_t *v = wait_view(f, "sub/rg/onfailure", restarted_after_failure, NULL,
                          "a restart after exit code 3");
    assert_true(test_view_has_event(v, "app", "BackOff", NULL));
    json_decref(v);
    v = wait_view(f, "sub/rg/never", terminated_3, NULL, "terminated with exit code 3");
    json_decref(v);
    test_sleep_ms(2500);        /* well past the back-off */
    v = test_view(&f->sched, "sub/rg/never");
    assert_true(terminated_3(v, NULL));
    assert_int_equal(test_view_restarts(v, "app"), 0);
    assert_string_equal(test_view_group_state(v), "Failed");
    json_decref(v);
    berth_error_t err;
    assert_int_equal(berth_store_release(f->sched.store, "sub/rg/onfailure", &err), 0);
    assert_int_equal(berth_store_release(f->sched.store, "sub/rg/never", &err), 0);
}

/* A group of subnet `id` at `ip` (NULL id: a public group): one
 * container "app" that sleeps, port 80 in its ipAddress. */
static char *net_doc(const char *id, const char *ip)
{
    char *out = NULL;
    char subnet[160] = "", addr[96] = "";
    if (id != NULL) {
        snprintf(subnet, sizeof subnet, ", \"subnetIds\": [{\"id\": \"%s\"}]", id);
        snprintf(addr, sizeof addr, ", \"ip\": \"%s\"", ip);
    }
    if (asprintf(&out,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
                 " \"ipAddress\": {\"type\": \"%s\", \"ports\": [{\"port\": 80}]%s}%s,"
                 " \"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"%s\","
                 " \"command\": [\"sleep\", \"3600\"], \"ports\": [{\"port\": 80}],"
                 " \"resources\": {\"requests\": {\"cpu\": 0.25, \"memoryInGB\": 0.25}}}}]}}",
                 id != NULL ? "Private" : "Public", addr, subnet, image) < 0)
        return NULL;
    return out;
}

static bool app_up(json_t *v, void *data)
{
    (void)data;
    return test_pred_running(v, "app");
}

/* `ping -c1 -W2 ip` in group key's "app" through `berth-agent exec`: its
 * exit status. */
static int agent_ping(fixture_t *f, const char *key, const char *ip)
{
    const char *cmd[] = {"ping", "-c1", "-W2", ip, NULL};
    int status = -1;
    free(agent_cli(f, "exec", key, "app", cmd, &status));
    return status;
}

/* Virtual network subnets end to end: the cell's subnet table names this
 * host; the agent finds each group's subnet in its document, the CIDR in
 * the table, and the plugin puts the group on the subnet's network at its
 * address (the instance view reports it, no port published).  Two groups
 * of subnet A reach each other; a group of subnet B and a public group do
 * not reach them. */
static void test_subnets(void **state)
{
    fixture_t *f = *state;
    if (skip_unavailable(f))
        return;
    /* Each engine its own ranges: they share the host's kernel. */
    unsigned o = f->e->kind == ENGINE_DOCKER ? 0 : 10;
    char cidr_a[32], cidr_b[32], a1[32], a2[32], b1[32];
    snprintf(cidr_a, sizeof cidr_a, "10.%u.0.0/24", 234 + o);
    snprintf(cidr_b, sizeof cidr_b, "10.%u.0.0/24", 235 + o);
    snprintf(a1, sizeof a1, "10.%u.0.20", 234 + o);
    snprintf(a2, sizeof a2, "10.%u.0.21", 234 + o);
    snprintf(b1, sizeof b1, "10.%u.0.20", 235 + o);
    const char *hosts[] = {f->host};
    berth_subnet_t table[2] = {{"ae-a", cidr_a, hosts, 1}, {"ae-b", cidr_b, hosts, 1}};
    berth_error_t err;
    assert_int_equal(berth_store_subnets_put(f->sched.store, table, 2, &err), 0);
    assert_int_equal(berth_store_sync(f->sched.store, &err), 0);
    place_ok(f, "sub/rg/a1", net_doc("ae-a", a1), NULL);
    place_ok(f, "sub/rg/a2", net_doc("ae-a", a2), NULL);
    place_ok(f, "sub/rg/b1", net_doc("ae-b", b1), NULL);
    place_ok(f, "sub/rg/pub", net_doc(NULL, NULL), NULL);
    const char *keys[] = {"sub/rg/a1", "sub/rg/a2", "sub/rg/b1"};
    const char *ips[] = {a1, a2, b1};
    for (int i = 0; i < 3; i++) {
        json_t *v = wait_view(f, keys[i], app_up, NULL, "app running");
        json_t *ip = json_object_get(v, "ipAddress");
        assert_string_equal(json_string_value(json_object_get(ip, "ip")), ips[i]);
        assert_int_equal(json_array_size(json_object_get(ip, "ports")), 0);
        json_decref(v);
    }
    json_decref(wait_view(f, "sub/rg/pub", app_up, NULL, "app running"));
    int st = -1;
    for (int i = 0; i < 20 && st != 0; i++)
        if ((st = agent_ping(f, "sub/rg/a1", a2)) != 0)
            test_sleep_ms(250);
    assert_int_equal(st, 0);
    assert_int_equal(agent_ping(f, "sub/rg/a2", a1), 0);
    assert_int_not_equal(agent_ping(f, "sub/rg/b1", a2), 0);
    assert_int_not_equal(agent_ping(f, "sub/rg/pub", a2), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(berth_store_release(f->sched.store, keys[i], &err), 0);
    assert_int_equal(berth_store_release(f->sched.store, "sub/rg/pub", &err), 0);
}

/* One long-running container "app" with configMap.keyValuePairs `pairs`. */
static char *config_doc(const char *pairs)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
                 " \"restartPolicy\": \"Always\", \"containers\": [{\"name\": \"app\","
                 " \"properties\": {\"image\": \"%s\", \"command\": [\"sleep\", \"3600\"],"
                 " \"configMap\": {\"keyValuePairs\": %s},"
                 " \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.25}}}}]}}",
                 image, pairs) < 0)
        return NULL;
    return out;
}

static bool app_running(json_t *v, void *data)
{
    const uint64_t *gen = data;
    return test_pred_running(v, "app") &&
           (gen == NULL || (uint64_t)json_integer_value(json_object_get(v, "generation")) == *gen);
}

/* `cat FILE` in container "app" of key through `berth-agent exec`. */
static char *cat_app(fixture_t *f, const char *key, const char *file, int *status)
{
    const char *cat[] = {"cat", file, NULL};
    return agent_cli(f, "exec", key, "app", cat, status);
}

static void test_config_maps(void **state)
{
    fixture_t *f = *state;
    if (skip_unavailable(f))
        return;
    const char *key = "sub/rg/cm";
    place_ok(f, key, config_doc("{\"app.conf\": \"colour=blue\", \"old.txt\": \"x\"}"),
             NULL);
    json_t *v = wait_view(f, key, app_running, NULL, "app running");
    char started[64];
    snprintf(started, sizeof started, "%s", cstart(v, "app"));
    json_decref(v);
    int status;
    char *out = cat_app(f, key, "/mnt/configmap/app/app.conf", &status);
    if (status != 0 || out == NULL || strstr(out, "colour=blue") == NULL)
        fail_msg("cat: status %d, output '%s'", status, out ? out : "");
    free(out);
    /* Read-only inside the container. */
    const char *touch[] = {"touch", "/mnt/configmap/app/new", NULL};
    out = agent_cli(f, "exec", key, "app", touch, &status);
    assert_int_not_equal(status, 0);
    free(out);
    /* A change to the config map alone: the same container, not
     * restarted, sees the new file and no longer the removed one. */
    uint64_t gen2 = 2;
    place_ok(f, key, config_doc("{\"app.conf\": \"colour=green\"}"), NULL);
    v = wait_view(f, key, app_running, &gen2, "generation 2 running");
    assert_string_equal(cstart(v, "app"), started);
    assert_int_equal(test_view_restarts(v, "app"), 0);
    json_decref(v);
    out = cat_app(f, key, "/mnt/configmap/app/app.conf", &status);
    if (status != 0 || out == NULL || strstr(out, "colour=green") == NULL)
        fail_msg("cat after the update: status %d, output '%s'", status, out ? out : "");
    free(out);
    out = cat_app(f, key, "/mnt/configmap/app/old.txt", &status);
    assert_int_not_equal(status, 0);
    free(out);
    assert_int_equal(engine_objects(f, key), 2);   /* the sandbox and app */
    berth_error_t err;
    assert_int_equal(berth_store_release(f->sched.store, key, &err), 0);
    json_decref(wait_view(f, key, gone, NULL, "released"));
}

/* A group of five long-running containers: slow enough to create that the
 * agent can be killed in the middle. */
static char *five_doc(void)
{
    char ctrs[4096] = "";
    size_t n = 0;
    for (int i = 0; i < 5; i++)
        n += (size_t)snprintf(ctrs + n, sizeof ctrs - n,
                              "%s{\"name\": \"c%d\", \"properties\": {\"image\": \"%s\","
                              " \"command\": [\"sleep\", \"100000\"],"
                              " \"resources\": {\"requests\": {\"cpu\": 0.1,"
                              " \"memoryInGB\": 0.1}}}}",
                              i ? "," : "", i, image);
    char *out = NULL;
    if (asprintf(&out,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
                 " \"containers\": [%s]}}", ctrs) < 0)
        return NULL;
    return out;
}

static bool five_running(json_t *v, void *data)
{
    for (int i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof name, "c%d", i);
        if (!test_pred_running(v, name))
            return false;
    }
    return true;
}

static void test_agent_killed_mid_create(void **state)
{
    fixture_t *f = *state;
    if (skip_unavailable(f))
        return;
    const char *key = "sub/rg/five";
    place_ok(f, key, five_doc(), NULL);
    /* Kill the agent as soon as the engine holds part of the group. */
    int64_t end = test_now_ms() + 30000;
    int objects = 0;
    while (test_now_ms() < end && (objects = engine_objects(f, key)) == 0)
        test_sleep_ms(f->e->kind == ENGINE_RUNC ? 5 : 20);
    test_agent_kill(&f->agent);
    fprintf(stderr, "%s: agent killed with %d of 6 objects created\n", f->e->name, objects);
    assert_true(objects > 0);
    assert_int_equal(agent_start(f), 0);
    json_t *v = wait_view(f, key, five_running, NULL, "five containers running");
    json_decref(v);
    /* Exactly one copy: the sandbox and five containers, once each. */
    assert_int_equal(engine_objects(f, key), 6);
    key_list_t keys = {0};
    assert_int_equal(f->ops->list(f->ctx, key_collect, &keys, NULL), 0);
    assert_int_equal(keys.n, 1);
    assert_string_equal(keys.k[0], key);
    free(keys.k[0]);
    berth_error_t err;
    assert_int_equal(berth_store_release(f->sched.store, key, &err), 0);
    json_decref(wait_view(f, key, gone, NULL, "the view dropped"));
    assert_int_equal(engine_objects(f, key), 0);
}

/* ---- interactive sessions: the library's asynchronous store, the agent, the engine ---- */

typedef struct esession {
    berth_store_async_session_t *s;
    char out[65536];
    size_t len, seen;
    bool ended;
    int status, exit_code;
    char why[sizeof ((berth_error_t *)0)->message];
} esession_t;

static void esession_cb(berth_store_async_session_t *sess, bool ended, const char *bytes,
                        size_t len, int status, int exit_code, const berth_error_t *err,
                        void *data)
{
    (void)sess;
    esession_t *t = data;
    if (!ended) {
        if (len > sizeof t->out - 1 - t->len)
            len = sizeof t->out - 1 - t->len;
        memcpy(t->out + t->len, bytes, len);
        t->len += len;
        t->out[t->len] = '\0';
        return;
    }
    t->ended = true;
    t->status = status;
    t->exit_code = exit_code;
    snprintf(t->why, sizeof t->why, "%s", err != NULL ? err->message : "");
}

static void turn_loop(struct event_base *base)
{
    struct timeval tv = {0, 20 * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* Turns the loop until `want` is in the output after what was matched
 * (or the session ended, or 30 s). */
static void esession_expect(struct event_base *base, esession_t *t, const char *want)
{
    for (int i = 0; i < 1500; i++) {
        const char *at = strstr(t->out + t->seen, want);
        if (at != NULL) {
            t->seen = (size_t)(at - t->out) + strlen(want);
            return;
        }
        if (t->ended)
            break;
        turn_loop(base);
    }
    fail_msg("session output lacks '%s': '%s' (%s)", want, t->out, t->why);
}

static void esession_to_end(struct event_base *base, esession_t *t)
{
    for (int i = 0; i < 1500 && !t->ended; i++)
        turn_loop(base);
    if (!t->ended)
        fail_msg("the session never ended: '%s'", t->out);
}

static void esession_say(esession_t *t, const char *text)
{
    berth_error_t err;
    if (berth_store_async_session_input(t->s, text, strlen(text), &err) != 0)
        fail_msg("session input: %s", err.message);
}

/* A shell in the client container under a terminal (its size, a resize,
 * a line read, the exit status), then without one (stdin to its end,
 * stdout and stderr), through the cell's Redis and the agent. */
static void test_sessions(void **state)
{
    fixture_t *f = *state;
    if (skip_unavailable(f))
        return;
    const char *key = "sub/rg/sess";
    place_ok(f, key, pair_doc(f->e, "session-mark"), NULL);
    json_t *v = wait_view(f, key, both_running, NULL, "both containers running");
    json_decref(v);
    struct event_base *base = event_base_new();
    assert_non_null(base);
    berth_engine_t *engine = NULL;
    berth_store_async_t *store = NULL;
    berth_error_t err;
    assert_int_equal(berth_engine_new(NULL, &engine, &err), 0);
    berth_store_options_t o;
    berth_store_options_init(&o);
    o.url = redis->url;
    o.cell = f->cell;
    if (berth_store_async_open(&o, engine, base, &store, &err) != 0)
        fail_msg("async store: %s", err.message);

    esession_t t = {0};
    const char *sh[] = {"/bin/sh"};
    assert_int_equal(berth_store_async_session_open(store, key, "client", sh, 1, true, 30, 100,
                                                    20000, esession_cb, &t, &t.s, &err),
                     0);
    esession_say(&t, "stty size\n");
    esession_expect(base, &t, "30 100");
    assert_int_equal(berth_store_async_session_resize(t.s, 40, 120, &err), 0);
    esession_say(&t, "stty size\n");
    esession_expect(base, &t, "40 120");
    esession_say(&t, "read x; echo got $x\n");
    esession_expect(base, &t, "read x");   /* the shell has the line */
    esession_say(&t, "hello\n");
    esession_expect(base, &t, "got hello");
    esession_say(&t, "exit 3\n");
    esession_to_end(base, &t);
    assert_int_equal(t.status, 0);
    assert_int_equal(t.exit_code, 3);
    berth_store_async_session_close(t.s);

    esession_t p = {0};
    const char *script[] = {"sh", "-c", "read x; echo got $x; exit 5"};
    assert_int_equal(berth_store_async_session_open(store, key, "client", script, 3, false, 0, 0,
                                                    20000, esession_cb, &p, &p.s, &err),
                     0);
    esession_say(&p, "hello\n");
    assert_int_equal(berth_store_async_session_input(p.s, NULL, 0, &err), 0);
    esession_to_end(base, &p);
    assert_int_equal(p.status, 0);
    assert_int_equal(p.exit_code, 5);
    assert_string_equal(p.out, "got hello\n");
    berth_store_async_session_close(p.s);

    berth_store_async_close(store);
    berth_engine_free(engine);
    event_base_free(base);
}

/* ---- usage metrics --------------------------------------------------------------- */

/* One container "burn" spinning a CPU, under a 0.5 CPU limit. */
static char *burn_doc(void)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
                 " \"restartPolicy\": \"Always\", \"containers\": [{\"name\": \"burn\","
                 " \"properties\": {\"image\": \"%s\","
                 " \"command\": [\"sh\", \"-c\", \"while :; do :; done\"],"
                 " \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.25}}}}]}}",
                 image) < 0)
        return NULL;
    return out;
}

static bool burn_running(json_t *v, void *data)
{
    (void)data;
    return test_pred_running(v, "burn");
}

/* The plugin's stats see a container burning CPU use it and hold memory,
 * and the agent's samples in the cell show CPU above zero. */
static void test_usage(void **state)
{
    fixture_t *f = *state;
    if (skip_unavailable(f))
        return;
    place_ok(f, "sub/rg/burn", burn_doc(), NULL);
    json_decref(wait_view(f, "sub/rg/burn", burn_running, NULL, "burn Running"));

    /* The plugin itself: CPU time grows between two readings. */
    berth_group_stats_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    berth_error_t err;
    assert_true(f->ops->size >= offsetof(berth_plugin_ops_t, stats) + sizeof f->ops->stats);
    assert_int_equal(f->ops->stats(f->ctx, "sub/rg/burn", a, &err), 0);
    assert_int_equal(a->ncontainers, 1);
    assert_string_equal(a->containers[0].name, "burn");
    assert_true(a->containers[0].running);
    bool grew = false;
    for (int64_t end = test_now_ms() + test_deadline_ms(20000); test_now_ms() < end && !grew;) {
        test_sleep_ms(200);
        assert_int_equal(f->ops->stats(f->ctx, "sub/rg/burn", b, &err), 0);
        grew = b->containers[0].cpu_ns > a->containers[0].cpu_ns;
    }
    if (!grew)
        fprintf(stderr, "%s: cpu_ns stayed at %llu\n", f->e->name,
                (unsigned long long)a->containers[0].cpu_ns);
    assert_true(grew);
    assert_true(b->containers[0].memory_bytes > 0);
    assert_int_equal(f->ops->stats(f->ctx, "sub/rg/none", b, &err), BERTH_ENOENT);
    free(a);
    free(b);

    /* The agent's samples: the CPU it burns, from the runtime's counters. */
    bool seen = false;
    for (int64_t end = test_now_ms() + test_deadline_ms(30000); test_now_ms() < end && !seen;) {
        char *text = NULL;
        if (berth_store_metrics_read(f->sched.store, "sub/rg/burn", &text, &err) == 0) {
            json_t *m = json_loads(text, 0, NULL);
            json_t *samples = json_object_get(m, "samples");
            json_t *c = json_array_get(
                json_object_get(json_array_get(samples, json_array_size(samples) - 1),
                                "containers"),
                0);
            seen = json_integer_value(json_object_get(c, "cpu")) > 0 &&
                   json_integer_value(json_object_get(c, "memory")) > 0;
            json_decref(m);
        }
        berth_free(text);
        if (!seen)
            test_sleep_ms(200);
    }
    if (!seen)
        test_agent_dump(&f->agent, 40);
    assert_true(seen);
    assert_int_equal(berth_store_release(f->sched.store, "sub/rg/burn", &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle, setup_docker, teardown),
        cmocka_unit_test_setup_teardown(test_restart_policies, setup_docker, teardown),
        cmocka_unit_test_setup_teardown(test_agent_killed_mid_create, setup_docker, teardown),
        cmocka_unit_test_setup_teardown(test_config_maps, setup_docker, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup_docker, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup_docker, teardown),
        cmocka_unit_test_setup_teardown(test_subnets, setup_docker, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup_podman, teardown),
        cmocka_unit_test_setup_teardown(test_restart_policies, setup_podman, teardown),
        cmocka_unit_test_setup_teardown(test_agent_killed_mid_create, setup_podman, teardown),
        cmocka_unit_test_setup_teardown(test_config_maps, setup_podman, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup_podman, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup_podman, teardown),
        cmocka_unit_test_setup_teardown(test_subnets, setup_podman, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup_runc, teardown),
        cmocka_unit_test_setup_teardown(test_restart_policies, setup_runc, teardown),
        cmocka_unit_test_setup_teardown(test_agent_killed_mid_create, setup_runc, teardown),
        cmocka_unit_test_setup_teardown(test_config_maps, setup_runc, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup_runc, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup_runc, teardown),
    };
    if (getenv("BERTH_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("BERTH_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
