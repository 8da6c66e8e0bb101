/*
 * test_plugin_docker.c: the docker runtime plugin (plugins/docker) against
 * real engines: a private dockerd and Podman's Docker-compatible service,
 * both started by tests/engines.sh, whose sockets come in
 * BERTH_TEST_DOCKER_SOCK and BERTH_TEST_PODMAN_SOCK (and the local image in
 * BERTH_TEST_IMAGE).  Without them the test is skipped (exit 77), unless
 * BERTH_REQUIRE_ENGINES=1 makes that a failure.
 *
 * The same cases run against each engine: a two-container group created,
 * started and reported Running, its containers talking over localhost, its
 * published port reached from here, logs with tail and timestamps, exec
 * output and exit code, an init container run by name, a failing container
 * reported Terminated and started again, restart keeping the sandbox,
 * remove leaving nothing, a second create refused, images cached and a
 * missing one failing fast, emptyDir, secret and gitRepo volumes, bad
 * volumes refused with their JSON path, secure values never in error
 * text, and interactive sessions: a shell under a terminal (its size set,
 * then changed, a line of input read, its exit status), a process without
 * one (stdout and stderr both, the end of input, output read a few bytes
 * at a time), a session closed early ending its process, sessions refused
 * for a container not running or missing, and two sessions on threads of
 * their own beside the context's operations.
 *
 * When tests/engines.sh registered gVisor with dockerd
 * (BERTH_TEST_DOCKER_RUNTIME) and started a second Podman service under it
 * (BERTH_TEST_PODMAN_RUNTIME_SOCK), the plugin configured with that
 * runtime (or socket) says its host has the sandbox feature and runs a one-container group
 * under gVisor: gVisor's kernel in dmesg and /proc/version, only the
 * group's processes in ps, the published port answering from here, exec
 * and logs, a restart with the network whole again, a container over its
 * memory limit killed (137) where one under it is not, and groups of two containers or with init
 * containers refused with their JSON path.
 *
 * Every run uses its own host name, so the engines' other containers are
 * never touched, and every test removes what it made.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "berth-plugin.h"
#include "lib/clock.h"

/* The plugins' shared helpers are not part of libberth: the test compiles
 * its own copy to check them directly. */
#include "../plugins/common/common.c"
#include "../plugins/common/volumes.c"

#define WAIT_S 60

typedef struct engine_fixture {
    const char *engine;                 /* "docker" or "podman"             */
    const char *sock;                   /* NULL: this engine is not set up  */
    const char *image;
    const char *runtime_key;            /* "runtime" (Docker), "runtime_socket"
                                         * (Podman), or NULL: plain runc     */
    const char *runtime;                /* its value                        */
    berth_plugin_t *plugin;
    const berth_plugin_ops_t *ops;
    void *ctx;
    char host[64];
    char dir[256];                      /* the test's own files             */
    char secret_dir[256];
} engine_fixture_t;

/* One group made from a document for the plugin. */
typedef struct test_group {
    berth_group_t *spec;
    uint32_t shares[BERTH_PLUGIN_CONTAINERS_MAX];
    berth_runtime_group_t rg;
    char key[128];
} test_group_t;

static engine_fixture_t docker_fixture = {.engine = "docker"};
static engine_fixture_t podman_fixture = {.engine = "podman"};
static engine_fixture_t gvisor_fixture = {.engine = "docker", .runtime_key = "runtime"};
static engine_fixture_t gvisor_podman_fixture = {.engine = "podman",
                                                 .runtime_key = "runtime_socket"};

/* ---- helpers ------------------------------------------------------------ */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void group_make(test_group_t *g, const char *key, const char *doc)
{
    berth_error_t err;
    memset(g, 0, sizeof *g);
    int rc = berth_group_parse(doc, strlen(doc), &g->spec, &err);
    if (rc != 0)
        fail_msg("document refused: %s (%s) at %s", err.message, err.name, err.target);
    assert_int_equal(berth_group_cpu_shares(g->spec, g->shares, BERTH_PLUGIN_CONTAINERS_MAX), 0);
    snprintf(g->key, sizeof g->key, "%s", key);
    g->rg.key = g->key;
    g->rg.generation = 1;
    g->rg.digest = berth_runtime_digest(g->spec);
    g->rg.spec = g->spec;
    g->rg.shares = g->shares;
    for (size_t i = 0; i < g->spec->ncontainers; i++)
        g->rg.millicores += g->shares[i];
}

static void group_free(test_group_t *g)
{
    berth_group_free(g->spec);
    g->spec = NULL;
}

static const berth_container_status_t *find_status(const berth_group_status_t *st,
                                                   const char *name)
{
    for (size_t i = 0; i < st->ncontainers; i++)
        if (strcmp(st->containers[i].name, name) == 0)
            return &st->containers[i];
    return NULL;
}

/* Waits until container `name` of `key` is in `state`; fills *st. */
static void wait_state(engine_fixture_t *f, const char *key, const char *name,
                       berth_container_state_t state, berth_group_status_t *st)
{
    berth_error_t err;
    double deadline = now_s() + WAIT_S;
    while (now_s() < deadline) {
        assert_int_equal(f->ops->status(f->ctx, key, st, &err), 0);
        const berth_container_status_t *cs = find_status(st, name);
        if (cs != NULL && cs->state == state)
            return;
        sleep_ms(200);
    }
    fail_msg("%s: container %s of %s never reached state %d", f->engine, name, key, (int)state);
}

/* Runs argv in the container, retrying (for services still starting)
 * until the exit code is `want`; returns the output (free it). */
static char *exec_until(engine_fixture_t *f, const char *key, const char *container,
                        const char *const *argv, size_t argc, int want)
{
    berth_error_t err;
    double deadline = now_s() + 20;
    for (;;) {
        char *out = NULL;
        size_t len = 0;
        int code = -1;
        int rc = f->ops->exec(f->ctx, key, container, argv, argc, &out, &len, &code, &err);
        if (rc != 0)
            fail_msg("%s: exec failed: %s: %s", f->engine, err.name, err.message);
        assert_int_equal(strlen(out), len);
        if (code == want || now_s() > deadline) {
            if (code != want)
                fail_msg("%s: exec exit %d, wanted %d; output: %s", f->engine, code, want, out);
            return out;
        }
        free(out);
        sleep_ms(250);
    }
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Connects to 127.0.0.1:port, sends an HTTP GET and returns what came back
 * (free it), or NULL. */
static char *http_get(uint32_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    const char req[] = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return NULL;
    }
    char *buf = calloc(1, 8192);
    size_t len = 0;
    while (buf != NULL && len < 8191) {
        ssize_t r = read(fd, buf + len, 8191 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    return buf;
}

/* Removes every group the plugin holds for this run's host. */
static void collect_key(const char *key, uint64_t generation, uint64_t digest, void *data)
{
    (void)generation;
    (void)digest;
    char (*keys)[128] = data;
    for (int i = 0; i < 16; i++) {
        if (keys[i][0] == '\0') {
            snprintf(keys[i], sizeof keys[i], "%s", key);
            return;
        }
    }
}

static void remove_all(engine_fixture_t *f)
{
    char keys[16][128];
    memset(keys, 0, sizeof keys);
    berth_error_t err;
    if (f->ops->list(f->ctx, collect_key, keys, &err) != 0)
        return;
    for (int i = 0; i < 16 && keys[i][0]; i++)
        f->ops->remove(f->ctx, keys[i], &err);
}

typedef struct list_probe {
    const char *key;
    bool seen;
    uint64_t generation;
    uint64_t digest;
    int count;
} list_probe_t;

static void probe_key(const char *key, uint64_t generation, uint64_t digest, void *data)
{
    list_probe_t *p = data;
    p->count++;
    if (strcmp(key, p->key) == 0) {
        p->seen = true;
        p->generation = generation;
        p->digest = digest;
    }
}

/* ---- fixtures ----------------------------------------------------------- */

static int engine_setup(engine_fixture_t *f)
{
    berth_error_t err;
    if (f->sock == NULL)
        return 0;
    snprintf(f->host, sizeof f->host, "test-%s-%ld-%ld", f->engine, (long)getpid(),
             (long)time(NULL) % 100000);
    snprintf(f->dir, sizeof f->dir, "/tmp/berth-test-docker-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->secret_dir, sizeof f->secret_dir, "/dev/shm/berth-test-%s-%ld", f->engine,
             (long)getpid());
    if (berth_plugin_load("docker", &f->plugin, &err) != 0) {
        fprintf(stderr, "cannot load the docker plugin: %s\n", err.message);
        return -1;
    }
    f->ops = berth_plugin_ops(f->plugin);
    char config[2048], runtime[128] = "";
    if (f->runtime_key != NULL)
        snprintf(runtime, sizeof runtime, ", \"%s\": \"%s\"", f->runtime_key, f->runtime);
    snprintf(config, sizeof config,
             "{\"socket\": \"%s\", \"data_dir\": \"%s/data\", \"secret_dir\": \"%s\","
             " \"sandbox_image\": \"%s\", \"stop_grace_s\": 1, \"ulimits\": %s%s}",
             f->sock, f->dir, f->secret_dir, f->image,
             strcmp(f->engine, "podman") == 0 ? "true" : "false", runtime);
    if (f->ops->open(config, f->host, &f->ctx, &err) != 0) {
        fprintf(stderr, "cannot open the docker plugin: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int group_setup_docker(void **state)
{
    *state = &docker_fixture;
    return engine_setup(&docker_fixture);
}

static int group_setup_podman(void **state)
{
    *state = &podman_fixture;
    return engine_setup(&podman_fixture);
}

static int group_setup_gvisor(void **state)
{
    *state = &gvisor_fixture;
    return engine_setup(&gvisor_fixture);
}

static int group_setup_gvisor_podman(void **state)
{
    *state = &gvisor_podman_fixture;
    return engine_setup(&gvisor_podman_fixture);
}

static int group_teardown(void **state)
{
    engine_fixture_t *f = *state;
    if (f->ctx != NULL) {
        remove_all(f);
        f->ops->close(f->ctx);
        f->ctx = NULL;
    }
    berth_plugin_unload(f->plugin);
    f->plugin = NULL;
    if (f->dir[0]) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", f->dir, f->secret_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", f->dir);
    }
    return 0;
}

/* Each test: skipped without this engine; leaves nothing behind. */
static int test_setup(void **state)
{
    engine_fixture_t *f = *state;
    (void)f;
    return 0;
}

static int test_teardown(void **state)
{
    engine_fixture_t *f = *state;
    if (f->ctx != NULL)
        remove_all(f);
    return 0;
}

#define NEED_ENGINE(f)                                                                        \
    do {                                                                                      \
        if ((f)->ctx == NULL)                                                                 \
            skip();                                                                           \
    } while (0)

/* ---- documents ---------------------------------------------------------- */

static const char PAIR_DOC[] =
    "{\"name\": \"pair\", \"location\": \"westus\", \"properties\": {"
    " \"osType\": \"Linux\", \"restartPolicy\": \"Never\","
    " \"ipAddress\": {\"type\": \"Public\", \"ports\": [{\"port\": 8080, \"protocol\": \"TCP\"}]},"
    " \"containers\": ["
    "  {\"name\": \"web\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"sh\", \"-c\", \"mkdir -p /tmp/www && echo hello-from-web > "
    "/tmp/www/index.html && echo web-up && exec httpd -f -p 8080 -h /tmp/www\"],"
    "   \"ports\": [{\"port\": 8080}],"
    "   \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.5}}}},"
    "  {\"name\": \"client\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"sh\", \"-c\", \"i=0; while [ $i -lt 100000 ]; do echo tick $i; "
    "i=$((i+1)); sleep 0.2; done\"],"
    "   \"environmentVariables\": [{\"name\": \"PLAIN\", \"value\": \"plain-value\"},"
    "     {\"name\": \"SECRET_VAR\", \"secureValue\": \"TOPSECRET-8c1f\"}],"
    "   \"resources\": {\"requests\": {\"cpu\": 0.25, \"memoryInGB\": 0.25},"
    "                  \"limits\": {\"memoryInGB\": 0.75}}}}"
    " ]}}";

static const char INIT_DOC[] =
    "{\"name\": \"steps\", \"location\": \"westus\", \"properties\": {"
    " \"osType\": \"Linux\","
    " \"initContainers\": ["
    "  {\"name\": \"prepare\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"sh\", \"-c\", \"echo init-ran\"]}}"
    " ],"
    " \"containers\": ["
    "  {\"name\": \"failer\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"sh\", \"-c\", \"echo bye; exit 7\"],"
    "   \"resources\": {\"requests\": {\"cpu\": 0.1, \"memoryInGB\": 0.1}}}},"
    "  {\"name\": \"sleeper\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"sleep\", \"3600\"],"
    "   \"resources\": {\"requests\": {\"cpu\": 0.1, \"memoryInGB\": 0.1}}}}"
    " ]}}";

static const char VOLUME_DOC[] =
    "{\"name\": \"vols\", \"location\": \"westus\", \"properties\": {"
    " \"osType\": \"Linux\","
    " \"volumes\": ["
    "  {\"name\": \"scratch\", \"emptyDir\": {}},"
    "  {\"name\": \"creds\", \"secret\": {\"token\": \"czNjcjN0LXZhbHVl\"}},"
    "  {\"name\": \"code\", \"gitRepo\": {\"repository\": \"file://%s\","
    "     \"directory\": \"repo\", \"revision\": \"%s\"}}"
    " ],"
    " \"containers\": ["
    "  {\"name\": \"writer\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"sh\", \"-c\", \"echo shared-data > /scratch/file; sleep 3600\"],"
    "   \"resources\": {\"requests\": {\"cpu\": 0.1, \"memoryInGB\": 0.1}},"
    "   \"volumeMounts\": [{\"name\": \"scratch\", \"mountPath\": \"/scratch\"}]}},"
    "  {\"name\": \"reader\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"sleep\", \"3600\"],"
    "   \"resources\": {\"requests\": {\"cpu\": 0.1, \"memoryInGB\": 0.1}},"
    "   \"volumeMounts\": [{\"name\": \"scratch\", \"mountPath\": \"/data\", \"readOnly\": true},"
    "     {\"name\": \"creds\", \"mountPath\": \"/mnt/secret\"},"
    "     {\"name\": \"code\", \"mountPath\": \"/mnt/git\"}]}}"
    " ]}}";

static const char SESSION_DOC[] =
    "{\"name\": \"shell\", \"location\": \"westus\", \"properties\": {"
    " \"osType\": \"Linux\", \"restartPolicy\": \"Never\","
    " \"containers\": ["
    "  {\"name\": \"box\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"sleep\", \"3600\"],"
    "   \"resources\": {\"requests\": {\"cpu\": 0.1, \"memoryInGB\": 0.1}}}},"
    "  {\"name\": \"gone\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"true\"],"
    "   \"resources\": {\"requests\": {\"cpu\": 0.1, \"memoryInGB\": 0.1}}}}"
    " ]}}";

/* One web container with a memory limit, for a runtime that sandboxes. */
static const char SANDBOXED_DOC[] =
    "{\"name\": \"boxed\", \"location\": \"westus\", \"properties\": {"
    " \"osType\": \"Linux\", \"restartPolicy\": \"Never\","
    " \"ipAddress\": {\"type\": \"Public\", \"ports\": [{\"port\": 8080, \"protocol\": \"TCP\"}]},"
    " \"containers\": ["
    "  {\"name\": \"web\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"sh\", \"-c\", \"mkdir -p /tmp/www && echo hello-from-gvisor > "
    "/tmp/www/index.html && echo web-up && exec httpd -f -p 8080 -h /tmp/www\"],"
    "   \"ports\": [{\"port\": 8080}],"
    "   \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.25}}}}"
    " ]}}";

/* A container that fills a buffer of %u MB (dd's block) with its limit at
 * %s GB. */
static const char HOG_DOC[] =
    "{\"name\": \"hog\", \"location\": \"westus\", \"properties\": {"
    " \"osType\": \"Linux\", \"restartPolicy\": \"Never\","
    " \"containers\": ["
    "  {\"name\": \"hog\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"sh\", \"-c\", \"echo hog-start; "
    "dd if=/dev/zero of=/dev/null bs=%uM count=1 && echo hog-survived\"],"
    "   \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": %s}}}}"
    " ]}}";

/* One busybox container that sleeps, with a private IP (%s: "Private" or
 * "Public") and a port. */
static const char NET_DOC[] =
    "{\"name\": \"net\", \"location\": \"westus\", \"properties\": {"
    " \"osType\": \"Linux\","
    " \"ipAddress\": {\"type\": \"%s\", \"ports\": [{\"port\": 8080}]},"
    " \"containers\": ["
    "  {\"name\": \"box\", \"properties\": {\"image\": \"%s\","
    "   \"command\": [\"sleep\", \"3600\"], \"ports\": [{\"port\": 8080}],"
    "   \"resources\": {\"requests\": {\"cpu\": 0.1, \"memoryInGB\": 0.1}}}}"
    " ]}}";

static void make_doc(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void make_doc(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < cap);
}

/* ---- tests -------------------------------------------------------------- */

static void test_probe_and_images(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    berth_error_t err;
    berth_plugin_host_info_t info;
    assert_int_equal(f->ops->probe(f->ctx, &info, &err), 0);
    /* No gVisor runtime configured: no sandbox feature. */
    assert_int_equal(info.features, 0);
    char want[16];
    snprintf(want, sizeof want, "%s ", f->engine);
    if (strncmp(info.runtime, want, strlen(want)) != 0)
        fail_msg("runtime \"%s\" does not start with \"%s\"", info.runtime, want);
    assert_true(info.cores > 0);
    assert_true(info.memory_mib > 0);
    assert_int_equal(info.os, BERTH_OS_LINUX);

    bool cached = false;
    assert_int_equal(f->ops->image_ensure(f->ctx, f->image, NULL, &cached, &err), 0);
    assert_true(cached);

    /* Nothing can be pulled here: the pull must fail, and soon. */
    double t0 = now_s();
    int rc = f->ops->image_ensure(f->ctx, "berth-test.invalid/no-such-image:1", NULL, &cached,
                                  &err);
    assert_int_equal(rc, BERTH_EIO);
    assert_string_equal(err.name, "ImagePullFailed");
    assert_false(cached);
    assert_true(now_s() - t0 < 120);

    /* With a credential, still failing, and the password never shown. */
    berth_registry_credential_t cred = {.server = "berth-test.invalid",
                                        .username = "user",
                                        .password = "PASSWORD-77aa"};
    rc = f->ops->image_ensure(f->ctx, "berth-test.invalid/private:2", &cred, NULL, &err);
    assert_int_equal(rc, BERTH_EIO);
    assert_null(strstr(err.message, "PASSWORD-77aa"));
}

typedef struct image_count {
    const char *want;
    int seen;
} image_count_t;

static void count_image(const char *image, void *data)
{
    image_count_t *c = data;
    if (strstr(image, c->want) != NULL)
        c->seen++;
}

static void test_images_list(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    berth_error_t err;
    image_count_t count = {"busybox", 0};
    assert_int_equal(f->ops->images(f->ctx, count_image, &count, &err), 0);
    assert_true(count.seen >= 1);
}

static void test_config(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    berth_error_t err;
    void *ctx = NULL;
    assert_int_equal(f->ops->open("{\"foo\": 1}", f->host, &ctx, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "config.foo");
    assert_null(ctx);
    assert_int_equal(f->ops->open("{\"stop_grace_s\": \"x\"}", f->host, &ctx, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.target, "config.stop_grace_s");
    assert_int_equal(f->ops->open("[1]", f->host, &ctx, &err), BERTH_EINVAL);
    /* Secrets must stay off disks: a secret_dir on the test's disk is refused. */
    char config[512];
    snprintf(config, sizeof config, "{\"secret_dir\": \"%s/secrets\"}", f->dir);
    assert_int_equal(f->ops->open(config, f->host, &ctx, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "config.secret_dir");

    /* An engine that is not there. */
    snprintf(config, sizeof config, "{\"socket\": \"%s/nothing.sock\"}", f->dir);
    assert_int_equal(f->ops->open(config, f->host, &ctx, &err), 0);
    berth_plugin_host_info_t info;
    double t0 = now_s();
    assert_int_equal(f->ops->probe(ctx, &info, &err), BERTH_EIO);
    assert_string_equal(err.name, "RuntimeUnavailable");
    assert_true(now_s() - t0 < 10);
    f->ops->close(ctx);
    f->ops->close(NULL);
}

/* A group in a subnet: `key` made from NET_DOC, on subnet (id, cidr) at
 * `address` (NULL id: a public group on the default network), created and
 * started. */
static void net_group(engine_fixture_t *f, test_group_t *g, const char *key, const char *id,
                      const char *cidr, const char *address)
{
    char doc[2048];
    make_doc(doc, sizeof doc, NET_DOC, id != NULL ? "Private" : "Public", f->image);
    group_make(g, key, doc);
    g->rg.subnet_id = id;
    g->rg.subnet_cidr = cidr;
    g->rg.subnet_address = address;
    berth_error_t err;
    if (f->ops->create(f->ctx, &g->rg, &err) != 0)
        fail_msg("%s: create %s: %s: %s", f->engine, key, err.name, err.message);
    assert_int_equal(f->ops->start(f->ctx, key, NULL, &err), 0);
}

/* Pings `ip` once from group `key`'s container: its exit code. */
static int ping_from(engine_fixture_t *f, const char *key, const char *ip)
{
    const char *argv[] = {"ping", "-c1", "-W2", ip};
    char *out = NULL;
    size_t len = 0;
    int code = -1;
    berth_error_t err;
    if (f->ops->exec(f->ctx, key, "box", argv, 4, &out, &len, &code, &err) != 0)
        fail_msg("%s: exec failed: %s: %s", f->engine, err.name, err.message);
    free(out);
    return code;
}

/* Virtual network subnets: two groups of subnet A, on the engine network
 * the plugin creates for A (internal bridge, A's CIDR), have the addresses
 * they were given and reach each other; a group of subnet B and a public
 * group on the default bridge cannot reach them; a private group
 * publishes no port; a network of A's name with another CIDR is refused
 * and the group is not left half made. */
static void test_subnets(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    static const char *const A = "/subscriptions/s/resourceGroups/r/providers/"
                                 "Microsoft.Network/virtualNetworks/vn/subnets/sn-a";
    /* Docker and Podman share the host: each its own ranges. */
    unsigned o = strcmp(f->engine, "docker") == 0 ? 0 : 10;
    char cidr_a[32], cidr_b[32], cidr_x[32], ip_a1[32], ip_a2[32], ip_b1[32], ip_x[32];
    snprintf(cidr_a, sizeof cidr_a, "10.%u.0.0/24", 231 + o);
    snprintf(cidr_b, sizeof cidr_b, "10.%u.0.0/24", 232 + o);
    snprintf(cidr_x, sizeof cidr_x, "10.%u.0.0/24", 233 + o);
    snprintf(ip_a1, sizeof ip_a1, "10.%u.0.10", 231 + o);
    snprintf(ip_a2, sizeof ip_a2, "10.%u.0.11", 231 + o);
    snprintf(ip_b1, sizeof ip_b1, "10.%u.0.10", 232 + o);
    snprintf(ip_x, sizeof ip_x, "10.%u.0.10", 233 + o);
    test_group_t a1, a2, b1, pub;
    net_group(f, &a1, "rg/a1", A, cidr_a, ip_a1);
    net_group(f, &a2, "rg/a2", A, cidr_a, ip_a2);
    net_group(f, &b1, "rg/b1", "sn-b", cidr_b, ip_b1);
    net_group(f, &pub, "rg/pub", NULL, NULL, NULL);
    berth_group_status_t *st = calloc(1, sizeof *st);
    assert_non_null(st);
    wait_state(f, "rg/a1", "box", BERTH_CONTAINER_RUNNING, st);
    assert_string_equal(st->ip, ip_a1);
    assert_int_equal(st->nports, 0);
    wait_state(f, "rg/a2", "box", BERTH_CONTAINER_RUNNING, st);
    assert_string_equal(st->ip, ip_a2);
    wait_state(f, "rg/b1", "box", BERTH_CONTAINER_RUNNING, st);
    assert_string_equal(st->ip, ip_b1);
    wait_state(f, "rg/pub", "box", BERTH_CONTAINER_RUNNING, st);
    char pub_ip[64];
    snprintf(pub_ip, sizeof pub_ip, "%s", st->ip);
    assert_true(pub_ip[0] != '\0');

    /* Subnet A's groups reach each other by address, both ways. */
    const char *to_a2[] = {"ping", "-c1", "-W2", ip_a2};
    free(exec_until(f, "rg/a1", "box", to_a2, 4, 0));
    assert_int_equal(ping_from(f, "rg/a2", ip_a1), 0);
    /* Subnet B's group and the public group do not, nor does A reach the
     * public group. */
    assert_int_not_equal(ping_from(f, "rg/b1", ip_a2), 0);
    assert_int_not_equal(ping_from(f, "rg/pub", ip_a2), 0);
    assert_int_not_equal(ping_from(f, "rg/a1", ip_b1), 0);
    assert_int_not_equal(ping_from(f, "rg/a1", pub_ip), 0);

    /* A's network under its name with another CIDR: refused, nothing made. */
    test_group_t bad;
    char doc[2048];
    make_doc(doc, sizeof doc, NET_DOC, "Private", f->image);
    group_make(&bad, "rg/bad", doc);
    bad.rg.subnet_id = A;
    bad.rg.subnet_cidr = cidr_x;
    bad.rg.subnet_address = ip_x;
    berth_error_t err;
    assert_int_equal(f->ops->create(f->ctx, &bad.rg, &err), BERTH_EIO);
    assert_string_equal(err.name, "SubnetNetworkConflict");
    assert_int_equal(f->ops->status(f->ctx, "rg/bad", st, &err), 0);
    assert_false(st->exists);
    free(st);
    group_free(&bad);
    group_free(&pub);
    group_free(&b1);
    group_free(&a2);
    group_free(&a1);
}

static void test_group_lifecycle(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    berth_error_t err;
    char doc[4096];
    make_doc(doc, sizeof doc, PAIR_DOC, f->image, f->image);
    test_group_t g;
    group_make(&g, "rg/pair", doc);

    assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), 0);
    /* A second create of the same group is refused. */
    assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), BERTH_EEXIST);

    berth_group_status_t *st = calloc(1, sizeof *st);
    assert_non_null(st);
    assert_int_equal(f->ops->status(f->ctx, g.key, st, &err), 0);
    assert_true(st->exists);
    assert_int_equal(st->generation, 1);
    assert_int_equal(st->digest, g.rg.digest);
    assert_int_equal(st->ncontainers, 2);
    assert_string_equal(st->containers[0].name, "web");
    assert_string_equal(st->containers[1].name, "client");
    assert_int_equal(st->containers[0].state, BERTH_CONTAINER_WAITING);

    assert_int_equal(f->ops->start(f->ctx, g.key, NULL, &err), 0);
    wait_state(f, g.key, "web", BERTH_CONTAINER_RUNNING, st);
    wait_state(f, g.key, "client", BERTH_CONTAINER_RUNNING, st);
    assert_true(st->containers[0].started_ms > 0);
    assert_int_equal(st->nports, 1);
    assert_int_equal(st->ports[0].port, 8080);
    assert_int_equal(st->ports[0].protocol, BERTH_PROTOCOL_TCP);
    assert_string_equal(st->ports[0].host_ip, "127.0.0.1");
    assert_true(st->ports[0].host_port > 0);
    uint32_t host_port = st->ports[0].host_port;
    char ip[64];
    snprintf(ip, sizeof ip, "%s", st->ip);

    /* The two containers share localhost. */
    const char *wget[] = {"wget", "-qO-", "http://127.0.0.1:8080/"};
    char *out = exec_until(f, g.key, "client", wget, 3, 0);
    assert_string_equal(out, "hello-from-web\n");
    free(out);

    /* The published port is reachable from the host. */
    char *page = NULL;
    for (int i = 0; i < 40 && (page == NULL || strstr(page, "hello-from-web") == NULL); i++) {
        free(page);
        page = http_get(host_port);
        if (page == NULL || strstr(page, "hello-from-web") == NULL)
            sleep_ms(250);
    }
    assert_non_null(page);
    assert_non_null(strstr(page, "hello-from-web"));
    free(page);

    /* Environment: plain and secure values reach the container. */
    const char *env[] = {"sh", "-c", "echo $PLAIN $SECRET_VAR"};
    out = exec_until(f, g.key, "client", env, 3, 0);
    assert_string_equal(out, "plain-value TOPSECRET-8c1f\n");
    free(out);

    /* Exec output and exit code. */
    const char *hi[] = {"sh", "-c", "echo hi; echo err >&2; exit 3"};
    out = exec_until(f, g.key, "client", hi, 3, 3);
    assert_non_null(strstr(out, "hi\n"));
    assert_non_null(strstr(out, "err\n"));
    free(out);

    /* Logs: tail and timestamps. */
    sleep_ms(1000);
    char *logs = NULL;
    size_t len = 0;
    assert_int_equal(f->ops->logs(f->ctx, g.key, "client", 2, false, &logs, &len, &err), 0);
    assert_int_equal(strlen(logs), len);
    assert_int_equal(count_lines(logs), 2);
    assert_int_equal(strncmp(logs, "tick ", 5), 0);
    free(logs);
    assert_int_equal(f->ops->logs(f->ctx, g.key, "client", 3, true, &logs, &len, &err), 0);
    assert_int_equal(count_lines(logs), 3);
    assert_true(len > 30 && logs[4] == '-' && logs[10] == 'T');
    assert_non_null(strstr(logs, " tick "));
    free(logs);
    assert_int_equal(f->ops->logs(f->ctx, g.key, "web", 0, false, &logs, &len, &err), 0);
    assert_non_null(strstr(logs, "web-up"));
    free(logs);

    /* The host's groups. */
    list_probe_t lp = {.key = g.key};
    assert_int_equal(f->ops->list(f->ctx, probe_key, &lp, &err), 0);
    assert_true(lp.seen);
    assert_int_equal(lp.count, 1);
    assert_int_equal(lp.generation, 1);
    assert_int_equal(lp.digest, g.rg.digest);

    /* Restart: the containers run again in the same sandbox. */
    int64_t started = find_status(st, "web")->started_ms;
    assert_int_equal(f->ops->restart(f->ctx, g.key, 1, &err), 0);
    wait_state(f, g.key, "web", BERTH_CONTAINER_RUNNING, st);
    wait_state(f, g.key, "client", BERTH_CONTAINER_RUNNING, st);
    assert_true(find_status(st, "web")->started_ms > started);
    assert_string_equal(st->ip, ip);
    assert_int_equal(st->nports, 1);
    assert_int_equal(st->ports[0].host_port, host_port);
    out = exec_until(f, g.key, "client", wget, 3, 0);
    assert_string_equal(out, "hello-from-web\n");
    free(out);

    /* Stop everything: terminated, sandbox kept. */
    assert_int_equal(f->ops->stop(f->ctx, g.key, NULL, 1, &err), 0);
    assert_int_equal(f->ops->status(f->ctx, g.key, st, &err), 0);
    assert_int_equal(find_status(st, "web")->state, BERTH_CONTAINER_TERMINATED);
    assert_int_equal(find_status(st, "client")->state, BERTH_CONTAINER_TERMINATED);
    assert_int_equal(st->ports[0].host_port, host_port);
    /* Stopping what is stopped succeeds. */
    assert_int_equal(f->ops->stop(f->ctx, g.key, "web", 1, &err), 0);

    /* Remove leaves nothing; removing again succeeds. */
    assert_int_equal(f->ops->remove(f->ctx, g.key, &err), 0);
    assert_int_equal(f->ops->status(f->ctx, g.key, st, &err), 0);
    assert_false(st->exists);
    lp = (list_probe_t){.key = g.key};
    assert_int_equal(f->ops->list(f->ctx, probe_key, &lp, &err), 0);
    assert_false(lp.seen);
    assert_int_equal(lp.count, 0);
    assert_int_equal(f->ops->remove(f->ctx, g.key, &err), 0);

    /* Operations on a group the runtime does not hold. */
    assert_int_equal(f->ops->start(f->ctx, g.key, NULL, &err), BERTH_ENOENT);
    assert_int_equal(f->ops->stop(f->ctx, g.key, NULL, 1, &err), BERTH_ENOENT);
    free(st);
    group_free(&g);
}

/* Fetches the page on 127.0.0.1:port until it holds `want` (a service
 * still starting refuses or answers empty); fails the test otherwise. */
static void page_until(uint32_t port, const char *want)
{
    char *page = NULL;
    for (int i = 0; i < 40 && (page == NULL || strstr(page, want) == NULL); i++) {
        free(page);
        page = http_get(port);
        if (page == NULL || strstr(page, want) == NULL)
            sleep_ms(250);
    }
    if (page == NULL || strstr(page, want) == NULL)
        fail_msg("port %u never answered with \"%s\" (last: %s)", port, want,
                 page ? page : "no answer");
    free(page);
}

/* A group under gVisor: see the file's opening paragraph. */
static void test_sandboxed_group(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    berth_error_t err;
    berth_plugin_host_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(f->ops->probe(f->ctx, &info, &err), 0);
    assert_int_equal(info.features, BERTH_HOST_SANDBOX);
    assert_non_null(strstr(info.runtime, "with gVisor"));

    char doc[4096];
    make_doc(doc, sizeof doc, SANDBOXED_DOC, f->image);
    test_group_t g;
    group_make(&g, "rg/boxed", doc);
    assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), 0);
    assert_int_equal(f->ops->start(f->ctx, g.key, NULL, &err), 0);
    berth_group_status_t *st = calloc(1, sizeof *st);
    assert_non_null(st);
    wait_state(f, g.key, "web", BERTH_CONTAINER_RUNNING, st);
    assert_int_equal(st->nports, 1);
    uint32_t host_port = st->ports[0].host_port;

    /* gVisor's kernel, not the host's, answers inside. */
    const char *dmesg[] = {"dmesg"};
    char *out = exec_until(f, g.key, "web", dmesg, 1, 0);
    assert_non_null(strstr(out, "gVisor"));
    free(out);
    const char *version[] = {"cat", "/proc/version"};
    out = exec_until(f, g.key, "web", version, 2, 0);
    char host_version[512] = "";
    FILE *fp = fopen("/proc/version", "r");
    assert_non_null(fp);
    assert_non_null(fgets(host_version, sizeof host_version, fp));
    fclose(fp);
    if (strcmp(out, host_version) == 0)
        fail_msg("the container sees the host's kernel: %s", out);
    free(out);
    /* Only the group's own processes: httpd and the ps itself. */
    const char *ps[] = {"ps", "-o", "comm"};
    out = exec_until(f, g.key, "web", ps, 3, 0);
    int lines = count_lines(out);
    if (lines > 4 || strstr(out, "httpd") == NULL || strstr(out, "dockerd") != NULL ||
        strstr(out, "containerd") != NULL)
        fail_msg("ps inside the sandbox shows more than the group's processes:\n%s", out);
    free(out);

    /* The network: the published port answers from here. */
    page_until(host_port, "hello-from-gvisor");

    /* Exec output and exit code, and logs, as under runc. */
    const char *hi[] = {"sh", "-c", "echo hi; echo err >&2; exit 3"};
    out = exec_until(f, g.key, "web", hi, 3, 3);
    assert_non_null(strstr(out, "hi\n"));
    assert_non_null(strstr(out, "err\n"));
    free(out);
    char *logs = NULL;
    size_t len = 0;
    assert_int_equal(f->ops->logs(f->ctx, g.key, "web", 0, false, &logs, &len, &err), 0);
    assert_non_null(strstr(logs, "web-up"));
    free(logs);

    /* A restart runs the container again with its network whole (gVisor
     * keeps the namespace's addresses: the sandbox container starts anew). */
    int64_t started = find_status(st, "web")->started_ms;
    assert_int_equal(f->ops->restart(f->ctx, g.key, 1, &err), 0);
    wait_state(f, g.key, "web", BERTH_CONTAINER_RUNNING, st);
    assert_true(find_status(st, "web")->started_ms > started);
    assert_int_equal(st->nports, 1);
    page_until(st->ports[0].host_port, "hello-from-gvisor");
    /* So does a start of the stopped container alone (the agent's restart
     * of a container that ended). */
    assert_int_equal(f->ops->stop(f->ctx, g.key, "web", 1, &err), 0);
    assert_int_equal(f->ops->start(f->ctx, g.key, "web", &err), 0);
    wait_state(f, g.key, "web", BERTH_CONTAINER_RUNNING, st);
    page_until(st->ports[0].host_port, "hello-from-gvisor");
    assert_int_equal(f->ops->remove(f->ctx, g.key, &err), 0);
    group_free(&g);

    /* The memory limit holds: 400 MB in a 0.25 GB container is killed
     * (137), 200 MB in a 1 GB one is not. */
    static const struct {
        unsigned mb;
        const char *gb;
        int code;
    } hogs[] = {{400, "0.25", 137}, {200, "1", 0}};
    for (size_t i = 0; i < 2; i++) {
        make_doc(doc, sizeof doc, HOG_DOC, f->image, hogs[i].mb, hogs[i].gb);
        group_make(&g, "rg/hog", doc);
        assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), 0);
        assert_int_equal(f->ops->start(f->ctx, g.key, NULL, &err), 0);
        wait_state(f, g.key, "hog", BERTH_CONTAINER_TERMINATED, st);
        const berth_container_status_t *hog = find_status(st, "hog");
        if (hog->exit_code != hogs[i].code)
            fail_msg("%u MB with a limit of %s GB ended with %d (%s), not %d", hogs[i].mb,
                     hogs[i].gb, hog->exit_code, hog->detail, hogs[i].code);
        assert_int_equal(f->ops->logs(f->ctx, g.key, "hog", 0, false, &logs, &len, &err), 0);
        assert_non_null(strstr(logs, "hog-start"));
        assert_true((strstr(logs, "hog-survived") != NULL) == (hogs[i].code == 0));
        free(logs);
        assert_int_equal(f->ops->remove(f->ctx, g.key, &err), 0);
        group_free(&g);
    }

    /* Groups gVisor cannot keep whole are refused, creating nothing. */
    make_doc(doc, sizeof doc, PAIR_DOC, f->image, f->image);
    group_make(&g, "rg/pair", doc);
    assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "SandboxedGroupUnsupported");
    assert_string_equal(err.target, "properties.containers");
    assert_int_equal(f->ops->status(f->ctx, g.key, st, &err), 0);
    assert_false(st->exists);
    group_free(&g);
    make_doc(doc, sizeof doc, INIT_DOC, f->image, f->image, f->image);
    group_make(&g, "rg/steps", doc);
    assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "properties.initContainers");
    group_free(&g);
    free(st);
}

static void test_init_and_exit(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    berth_error_t err;
    char doc[4096];
    make_doc(doc, sizeof doc, INIT_DOC, f->image, f->image, f->image);
    test_group_t g;
    group_make(&g, "rg/steps", doc);
    assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), 0);
    berth_group_status_t *st = calloc(1, sizeof *st);
    assert_non_null(st);
    assert_int_equal(f->ops->status(f->ctx, g.key, st, &err), 0);
    assert_int_equal(st->ncontainers, 3);
    assert_string_equal(st->containers[0].name, "prepare");
    assert_string_equal(st->containers[1].name, "failer");
    assert_string_equal(st->containers[2].name, "sleeper");

    /* The agent runs init containers itself, by name. */
    assert_int_equal(f->ops->start(f->ctx, g.key, "prepare", &err), 0);
    wait_state(f, g.key, "prepare", BERTH_CONTAINER_TERMINATED, st);
    const berth_container_status_t *cs = find_status(st, "prepare");
    assert_int_equal(cs->exit_code, 0);
    assert_string_equal(cs->detail, "Completed");
    assert_int_equal(find_status(st, "failer")->state, BERTH_CONTAINER_WAITING);

    /* Starting the group leaves the init container alone. */
    assert_int_equal(f->ops->start(f->ctx, g.key, NULL, &err), 0);
    wait_state(f, g.key, "failer", BERTH_CONTAINER_TERMINATED, st);
    cs = find_status(st, "failer");
    assert_int_equal(cs->exit_code, 7);
    assert_string_equal(cs->detail, "Error");
    assert_false(cs->oom_killed);
    assert_true(cs->finished_ms >= cs->started_ms && cs->started_ms > 0);
    int64_t first_start = cs->started_ms;
    assert_int_equal(find_status(st, "prepare")->state, BERTH_CONTAINER_TERMINATED);
    wait_state(f, g.key, "sleeper", BERTH_CONTAINER_RUNNING, st);

    /* A terminated container starts again. */
    sleep_ms(20);
    assert_int_equal(f->ops->start(f->ctx, g.key, "failer", &err), 0);
    double deadline = now_s() + WAIT_S;
    for (;;) {
        assert_int_equal(f->ops->status(f->ctx, g.key, st, &err), 0);
        cs = find_status(st, "failer");
        if (cs->state == BERTH_CONTAINER_TERMINATED && cs->started_ms > first_start)
            break;
        assert_true(now_s() < deadline);
        sleep_ms(200);
    }
    assert_int_equal(cs->exit_code, 7);
    char *logs = NULL;
    size_t len = 0;
    assert_int_equal(f->ops->logs(f->ctx, g.key, "failer", 0, false, &logs, &len, &err), 0);
    assert_string_equal(logs, "bye\nbye\n");
    free(logs);
    assert_int_equal(f->ops->logs(f->ctx, g.key, "prepare", 0, false, &logs, &len, &err), 0);
    assert_string_equal(logs, "init-ran\n");
    free(logs);

    /* One container stopped by name. */
    assert_int_equal(f->ops->stop(f->ctx, g.key, "sleeper", 1, &err), 0);
    assert_int_equal(f->ops->status(f->ctx, g.key, st, &err), 0);
    assert_int_equal(find_status(st, "sleeper")->state, BERTH_CONTAINER_TERMINATED);

    /* Unknown containers. */
    assert_int_equal(f->ops->start(f->ctx, g.key, "nobody", &err), BERTH_ENOENT);
    assert_string_equal(err.name, "ContainerNotFound");
    char *out = NULL;
    int code;
    const char *argv[] = {"true"};
    assert_int_equal(f->ops->exec(f->ctx, g.key, "nobody", argv, 1, &out, &len, &code, &err),
                     BERTH_ENOENT);
    /* Exec in a container that is not running fails cleanly. */
    assert_true(f->ops->exec(f->ctx, g.key, "failer", argv, 1, &out, &len, &code, &err) < 0);
    assert_null(out);

    assert_int_equal(f->ops->remove(f->ctx, g.key, &err), 0);
    free(st);
    group_free(&g);
}

/* ---- interactive sessions ----------------------------------------------- */

/* One session's output so far (NUL-terminated). */
typedef struct session_out {
    char *data;
    size_t len, cap;
    bool ended;                         /* session_read returned 1         */
} session_out_t;

/* Reads what is waiting (in reads of at most `chunk` bytes, to cut frames
 * anywhere); polls fd at most wait_ms first.  0, or session_read's error. */
static int session_pump(const berth_plugin_ops_t *ops, void *s, int fd, session_out_t *o,
                        size_t chunk, int wait_ms, berth_error_t *err)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, wait_ms) <= 0)
        return 0;
    for (int guard = 0; guard < 100000 && !o->ended; guard++) {
        if (o->len + chunk + 1 > o->cap) {
            size_t cap = (o->len + chunk + 1) * 2;
            char *d = realloc(o->data, cap);
            if (d == NULL)
                return BERTH_ENOMEM;
            o->data = d;
            o->cap = cap;
        }
        size_t n = 0;
        int rc = ops->session_read(s, o->data + o->len, chunk, &n, err);
        if (rc < 0)
            return rc;
        o->len += n;
        o->data[o->len] = '\0';
        if (rc == 1)
            o->ended = true;
        if (n == 0)
            break;
    }
    return 0;
}

/* Reads until the output after offset `from` holds `want` (or, want NULL,
 * until it ends), at most WAIT_S seconds. */
static void session_expect(engine_fixture_t *f, void *s, int fd, session_out_t *o,
                           size_t from, const char *want)
{
    berth_error_t err;
    double deadline = now_s() + WAIT_S;
    for (;;) {
        if (want != NULL && o->len > from && strstr(o->data + from, want) != NULL)
            return;
        if (want == NULL && o->ended)
            return;
        if (o->ended || now_s() > deadline)
            fail_msg("%s: session output never showed \"%s\"; it is: \"%s\"%s", f->engine,
                     want ? want : "(its end)", o->data ? o->data : "",
                     o->ended ? " (ended)" : "");
        int rc = session_pump(f->ops, s, fd, o, 4096, 200, &err);
        if (rc != 0)
            fail_msg("%s: session_read: %s: %s", f->engine, err.name, err.message);
    }
}

static void session_write_str(engine_fixture_t *f, void *s, const char *text)
{
    berth_error_t err;
    if (f->ops->session_write(s, text, strlen(text), &err) != 0)
        fail_msg("%s: session_write: %s: %s", f->engine, err.name, err.message);
}

/* Creates and starts SESSION_DOC's group; "box" running, "gone" ended. */
static void session_group(engine_fixture_t *f, test_group_t *g, berth_group_status_t *st)
{
    berth_error_t err;
    char doc[4096];
    make_doc(doc, sizeof doc, SESSION_DOC, f->image, f->image);
    group_make(g, "rg/shell", doc);
    assert_int_equal(f->ops->create(f->ctx, &g->rg, &err), 0);
    assert_int_equal(f->ops->start(f->ctx, g->key, NULL, &err), 0);
    wait_state(f, g->key, "box", BERTH_CONTAINER_RUNNING, st);
    wait_state(f, g->key, "gone", BERTH_CONTAINER_TERMINATED, st);
}

static void test_session_tty(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    assert_non_null(f->ops->session_open);
    berth_error_t err;
    test_group_t g;
    berth_group_status_t *st = calloc(1, sizeof *st);
    assert_non_null(st);
    session_group(f, &g, st);

    const char *argv[] = {"/bin/sh"};
    berth_session_opts_t opts = {.tty = true, .rows = 30, .cols = 100};
    void *s = NULL;
    int fd = -1;
    if (f->ops->session_open(f->ctx, g.key, "box", argv, 1, &opts, &s, &fd, &err) != 0)
        fail_msg("%s: session_open: %s: %s", f->engine, err.name, err.message);
    assert_true(fd >= 0);
    session_out_t o = {0};
    session_write_str(f, s, "stty size\n");
    session_expect(f, s, fd, &o, 0, "30 100");

    size_t mark = o.len;
    assert_int_equal(f->ops->session_resize(s, 40, 120, &err), 0);
    session_write_str(f, s, "stty size\n");
    session_expect(f, s, fd, &o, mark, "40 120");

    /* The shell reads a line of its own input. */
    mark = o.len;
    session_write_str(f, s, "read x; echo got $x\n");
    session_write_str(f, s, "hello\n");
    session_expect(f, s, fd, &o, mark, "got hello");

    session_write_str(f, s, "exit 3\n");
    session_expect(f, s, fd, &o, 0, NULL);
    /* Nothing is written after the output ended. */
    assert_true(f->ops->session_write(s, "x", 1, &err) < 0);
    int code = -1;
    if (f->ops->session_close(s, &code, &err) != 0)
        fail_msg("%s: session_close: %s: %s", f->engine, err.name, err.message);
    assert_int_equal(code, 3);
    free(o.data);

    /* A session closed before its process ends comes back (with -1). */
    const char *sleeper[] = {"sleep", "100"};
    opts = (berth_session_opts_t){.tty = true, .rows = 24, .cols = 80};
    assert_int_equal(f->ops->session_open(f->ctx, g.key, "box", sleeper, 2, &opts, &s, &fd,
                                          &err),
                     0);
    code = 0;
    assert_int_equal(f->ops->session_close(s, &code, &err), 0);
    assert_int_equal(code, -1);
    /* ... and its process is gone: the test runs where the engines' process
     * ids are its own (engines.sh runs them here, as root), where the
     * plugin kills what closing the stream did not end. */
    const char *ps[] = {"/bin/sh", "-c", "ps -o args | grep -x 'sleep 100'"};
    free(exec_until(f, g.key, "box", ps, 3, 1));

    /* A container that is not running, and one that does not exist. */
    assert_int_equal(f->ops->session_open(f->ctx, g.key, "gone", argv, 1, &opts, &s, &fd, &err),
                     BERTH_EINVAL);
    assert_string_equal(err.name, "ContainerNotRunning");
    assert_null(s);
    assert_int_equal(fd, -1);
    assert_int_equal(f->ops->session_open(f->ctx, g.key, "nobody", argv, 1, &opts, &s, &fd,
                                          &err),
                     BERTH_ENOENT);
    assert_int_equal(f->ops->session_open(f->ctx, "rg/none", "box", argv, 1, &opts, &s, &fd,
                                          &err),
                     BERTH_ENOENT);

    assert_int_equal(f->ops->remove(f->ctx, g.key, &err), 0);
    free(st);
    group_free(&g);
}

static void test_session_streams(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    berth_error_t err;
    test_group_t g;
    berth_group_status_t *st = calloc(1, sizeof *st);
    assert_non_null(st);
    session_group(f, &g, st);

    /* Without a terminal: stdout and stderr both come, demultiplexed, and
     * the end of input reaches the process. */
    const char *argv[] = {"/bin/sh", "-c", "read x; echo got $x; echo err >&2; exit 5"};
    berth_session_opts_t opts = {.tty = false};
    void *s = NULL;
    int fd = -1;
    if (f->ops->session_open(f->ctx, g.key, "box", argv, 3, &opts, &s, &fd, &err) != 0)
        fail_msg("%s: session_open: %s: %s", f->engine, err.name, err.message);
    /* Resizing without a terminal does nothing. */
    assert_int_equal(f->ops->session_resize(s, 50, 50, &err), 0);
    session_write_str(f, s, "hello\n");
    assert_int_equal(f->ops->session_write(s, "", 0, &err), 0);
    session_out_t o = {0};
    session_expect(f, s, fd, &o, 0, NULL);
    /* stdout and stderr are two pipes the engine copies separately: the
     * order between them is the engine's. */
    if (strcmp(o.data, "got hello\nerr\n") != 0 && strcmp(o.data, "err\ngot hello\n") != 0)
        fail_msg("%s: output \"%s\"", f->engine, o.data);
    int code = -1;
    if (f->ops->session_close(s, &code, &err) != 0)
        fail_msg("%s: session_close: %s: %s", f->engine, err.name, err.message);
    assert_int_equal(code, 5);
    free(o.data);

    /* cat echoes its input and ends with 0 at the end of input; output
     * read a few bytes at a time cuts the frames anywhere. */
    const char *cat[] = {"cat"};
    assert_int_equal(f->ops->session_open(f->ctx, g.key, "box", cat, 1, &opts, &s, &fd, &err),
                     0);
    char line[64];
    size_t sent = 0;
    memset(&o, 0, sizeof o);
    for (int i = 0; i < 200; i++) {
        snprintf(line, sizeof line, "line %d of the input\n", i);
        session_write_str(f, s, line);
        sent += strlen(line);
        assert_int_equal(session_pump(f->ops, s, fd, &o, 7, 0, &err), 0);
    }
    assert_int_equal(f->ops->session_write(s, NULL, 0, &err), 0);
    double deadline = now_s() + WAIT_S;
    while (!o.ended) {
        assert_true(now_s() < deadline);
        assert_int_equal(session_pump(f->ops, s, fd, &o, 7, 200, &err), 0);
    }
    assert_int_equal(o.len, sent);
    assert_memory_equal(o.data, "line 0 of the input\nline 1 ", 27);
    assert_non_null(strstr(o.data, "line 199 of the input\n"));
    assert_int_equal(f->ops->session_close(s, &code, &err), 0);
    assert_int_equal(code, 0);
    free(o.data);

    assert_int_equal(f->ops->remove(f->ctx, g.key, &err), 0);
    free(st);
    group_free(&g);
}

/* A session on a thread of its own, as the agent runs it. */
typedef struct session_thread {
    engine_fixture_t *f;
    const char *key;
    int code;
    char output[256];
    char failure[BERTH_ERROR_MESSAGE_MAX + 64];
} session_thread_t;

static void *session_thread_main(void *arg)
{
    session_thread_t *t = arg;
    const berth_plugin_ops_t *ops = t->f->ops;
    berth_error_t err;
    const char *argv[] = {"/bin/sh", "-c", "for i in 1 2 3 4 5; do read x; echo got $x; done"};
    berth_session_opts_t opts = {.tty = false};
    void *s = NULL;
    int fd = -1;
    t->code = -2;
    if (ops->session_open(t->f->ctx, t->key, "box", argv, 3, &opts, &s, &fd, &err) != 0) {
        snprintf(t->failure, sizeof t->failure, "session_open: %s", err.message);
        return NULL;
    }
    session_out_t o = {0};
    double deadline = now_s() + WAIT_S;
    int rc = 0;
    for (int i = 0; i < 5 && rc == 0; i++)
        rc = ops->session_write(s, "hi\n", 3, &err);
    while (rc == 0 && !o.ended && now_s() < deadline)
        rc = session_pump(ops, s, fd, &o, 64, 200, &err);
    if (rc != 0)
        snprintf(t->failure, sizeof t->failure, "session: %s", err.message);
    else if (!o.ended)
        snprintf(t->failure, sizeof t->failure, "the output never ended");
    snprintf(t->output, sizeof t->output, "%s", o.data ? o.data : "");
    free(o.data);
    if (ops->session_close(s, &t->code, &err) != 0 && t->failure[0] == '\0')
        snprintf(t->failure, sizeof t->failure, "session_close: %s", err.message);
    return NULL;
}

static void test_session_thread(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    berth_error_t err;
    test_group_t g;
    berth_group_status_t *st = calloc(1, sizeof *st);
    assert_non_null(st);
    session_group(f, &g, st);

    /* Sessions run beside the context's own operations. */
    session_thread_t t[2] = {{.f = f, .key = g.key}, {.f = f, .key = g.key}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, session_thread_main, &t[i]), 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(f->ops->status(f->ctx, g.key, st, &err), 0);
        assert_int_equal(find_status(st, "box")->state, BERTH_CONTAINER_RUNNING);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        if (t[i].failure[0])
            fail_msg("%s: session %d: %s", f->engine, i, t[i].failure);
        assert_string_equal(t[i].output, "got hi\ngot hi\ngot hi\ngot hi\ngot hi\n");
        assert_int_equal(t[i].code, 0);
    }
    assert_int_equal(f->ops->remove(f->ctx, g.key, &err), 0);
    free(st);
    group_free(&g);
}

/* Makes a git repository under the test's directory with two commits;
 * writes the first commit's id to rev. */
static void make_repo(engine_fixture_t *f, char *repo, size_t cap, char *rev, size_t revcap)
{
    snprintf(repo, cap, "%s/origin", f->dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "set -e; rm -rf '%s'; mkdir -p '%s'; cd '%s'; git init -q .;"
             " git config user.email t@example.com; git config user.name test;"
             " echo first-version > file.txt; git add file.txt; git commit -qm one;"
             " git rev-parse HEAD > ../rev; echo second-version > file.txt;"
             " git commit -qam two",
             repo, repo, repo);
    assert_int_equal(system(cmd), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/rev", f->dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(rev, (int)revcap, fp));
    fclose(fp);
    rev[strcspn(rev, "\n")] = '\0';
    assert_int_equal(strlen(rev), 40);
}

static void test_volumes(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    berth_error_t err;
    char repo[512], rev[64];
    make_repo(f, repo, sizeof repo, rev, sizeof rev);
    char doc[4096];
    make_doc(doc, sizeof doc, VOLUME_DOC, repo, rev, f->image, f->image);
    test_group_t g;
    group_make(&g, "rg/vols", doc);
    assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), 0);
    assert_int_equal(f->ops->start(f->ctx, g.key, NULL, &err), 0);
    berth_group_status_t *st = calloc(1, sizeof *st);
    assert_non_null(st);
    wait_state(f, g.key, "writer", BERTH_CONTAINER_RUNNING, st);
    wait_state(f, g.key, "reader", BERTH_CONTAINER_RUNNING, st);

    /* emptyDir: one writes, the other reads (read-only). */
    const char *cat[] = {"cat", "/data/file"};
    char *out = exec_until(f, g.key, "reader", cat, 2, 0);
    assert_string_equal(out, "shared-data\n");
    free(out);
    const char *touch[] = {"touch", "/data/other"};
    out = exec_until(f, g.key, "reader", touch, 2, 1);
    free(out);

    /* secret: decoded, mode 0400. */
    const char *secret[] = {"cat", "/mnt/secret/token"};
    out = exec_until(f, g.key, "reader", secret, 2, 0);
    assert_string_equal(out, "s3cr3t-value");
    free(out);
    const char *mode[] = {"stat", "-c", "%a", "/mnt/secret/token"};
    out = exec_until(f, g.key, "reader", mode, 4, 0);
    assert_string_equal(out, "400\n");
    free(out);

    /* gitRepo: cloned into its directory, at the revision asked. */
    const char *git[] = {"cat", "/mnt/git/repo/file.txt"};
    out = exec_until(f, g.key, "reader", git, 2, 0);
    assert_string_equal(out, "first-version\n");
    free(out);

    assert_int_equal(f->ops->remove(f->ctx, g.key, &err), 0);
    /* The group's secrets are gone from the tmpfs. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' 2>/dev/null)\"", f->secret_dir);
    assert_int_equal(system(cmd), 0);
    free(st);
    group_free(&g);
}

static void test_bad_volumes_and_secrets(void **state)
{
    engine_fixture_t *f = *state;
    NEED_ENGINE(f);
    berth_error_t err;
    char repo[512], rev[64];
    make_repo(f, repo, sizeof repo, rev, sizeof rev);
    char doc[4096];
    make_doc(doc, sizeof doc, VOLUME_DOC, repo, rev, f->image, f->image);

    /* A gitRepo directory that leaves the volume. */
    const char *bad_dirs[] = {"/etc/escape", "a/../../escape", ".."};
    for (size_t i = 0; i < sizeof bad_dirs / sizeof bad_dirs[0]; i++) {
        test_group_t g;
        group_make(&g, "rg/bad-git", doc);
        free(g.spec->volumes[2].directory);
        g.spec->volumes[2].directory = strdup(bad_dirs[i]);
        assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), BERTH_EINVAL);
        assert_string_equal(err.target, "properties.volumes[2].gitRepo.directory");
        berth_group_status_t st;
        assert_int_equal(f->ops->status(f->ctx, g.key, &st, &err), 0);
        assert_false(st.exists);
        group_free(&g);
    }

    /* A secret file name that is a path. */
    {
        test_group_t g;
        group_make(&g, "rg/bad-secret", doc);
        free(g.spec->volumes[1].secret_items[0].name);
        g.spec->volumes[1].secret_items[0].name = strdup("../escape");
        assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), BERTH_EINVAL);
        assert_non_null(strstr(err.target, "properties.volumes[1].secret"));
        group_free(&g);
    }

    /* azureFile without an azure_file_root. */
    {
        static const char AZ[] =
            "{\"name\": \"az\", \"location\": \"westus\", \"properties\": {"
            " \"osType\": \"Linux\", \"volumes\": [{\"name\": \"share\", \"azureFile\":"
            " {\"shareName\": \"s\", \"storageAccountName\": \"acct\","
            "  \"storageAccountKey\": \"KEY-99\"}}],"
            " \"containers\": [{\"name\": \"c\", \"properties\": {\"image\": \"%s\","
            "  \"resources\": {\"requests\": {\"cpu\": 0.1, \"memoryInGB\": 0.1}},"
            "  \"volumeMounts\": [{\"name\": \"share\", \"mountPath\": \"/share\"}]}}]}}";
        char az[2048];
        make_doc(az, sizeof az, AZ, f->image);
        test_group_t g;
        group_make(&g, "rg/az", az);
        assert_int_equal(f->ops->create(f->ctx, &g.rg, &err), BERTH_EINVAL);
        assert_string_equal(err.target, "properties.volumes[0].azureFile");
        assert_null(strstr(err.message, "KEY-99"));
        group_free(&g);
    }

    /* A create that fails in the engine: no secure value in the error. */
    {
        static const char MISSING[] =
            "{\"name\": \"missing\", \"location\": \"westus\", \"properties\": {"
            " \"osType\": \"Linux\", \"containers\": [{\"name\": \"c\", \"properties\": {"
            "  \"image\": \"berth-test-missing-image:none\","
            "  \"environmentVariables\": [{\"name\": \"S\", \"secureValue\": \"HIDDEN-4242\"}],"
            "  \"resources\": {\"requests\": {\"cpu\": 0.1, \"memoryInGB\": 0.1}}}}]}}";
        test_group_t g;
        group_make(&g, "rg/missing", MISSING);
        int rc = f->ops->create(f->ctx, &g.rg, &err);
        assert_int_equal(rc, BERTH_EIO);
        assert_string_equal(err.name, "ContainerCreateFailed");
        assert_null(strstr(err.message, "HIDDEN-4242"));
        char *json = NULL;
        assert_int_equal(berth_error_to_json(&err, &json), 0);
        assert_null(strstr(json, "HIDDEN-4242"));
        berth_free(json);
        /* Nothing is left of a failed create. */
        berth_group_status_t st;
        assert_int_equal(f->ops->status(f->ctx, g.key, &st, &err), 0);
        assert_false(st.exists);
        group_free(&g);
    }
}

/* ---- the shared helpers (no engine needed) ------------------------------ */

static void test_common_helpers(void **state)
{
    (void)state;
    char id[PLUGIN_ID_LEN + 1], id2[PLUGIN_ID_LEN + 1];
    plugin_group_id("host-a", "rg/one", id);
    assert_string_equal(id, "f9334d94af788d27");
    plugin_group_id("ab", "c", id);
    plugin_group_id("a", "bc", id2);
    assert_string_not_equal(id, id2);

    assert_int_equal(plugin_time_parse("1970-01-01T00:00:01.5Z"), 1500);
    assert_int_equal(plugin_time_parse("2024-01-02T03:04:05.123456789+01:00"), 1704161045123);
    assert_int_equal(plugin_time_parse("0001-01-01T00:00:00Z"), 0);
    assert_int_equal(plugin_time_parse(""), 0);
    assert_int_equal(plugin_time_parse(NULL), 0);
    assert_int_equal(plugin_time_parse("yesterday"), 0);
    assert_int_equal(plugin_time_parse("2024-01-02T03:04:05"), 0);
    char buf[40];
    berth__clock_format_iso8601(1704161045123, buf, sizeof buf);
    assert_string_equal(buf, "2024-01-02T02:04:05.123Z");
    assert_int_equal(plugin_time_parse(buf), 1704161045123);
    assert_true(berth__clock_wall_ms() > 1704161045123);

    char text[64];
    size_t len;
    strcpy(text, "a\nb\nc\n");
    len = strlen(text);
    plugin_tail_lines(text, &len, 2);
    text[len] = '\0';
    assert_string_equal(text, "b\nc\n");
    strcpy(text, "a\nb\nc");
    len = strlen(text);
    plugin_tail_lines(text, &len, 1);
    text[len] = '\0';
    assert_string_equal(text, "c");
    strcpy(text, "a\nb\n");
    len = strlen(text);
    plugin_tail_lines(text, &len, 5);
    assert_int_equal(len, 4);
    plugin_tail_lines(text, &len, 0);
    assert_int_equal(len, 4);

    /* A tree with a read-only directory and a symlink out of it: removed,
     * and what the link points to is kept. */
    char dir[] = "/tmp/berth-test-common-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[1024], outside[512], cmd[1200];
    snprintf(path, sizeof path, "%s/tree/a/b/c", dir);
    assert_int_equal(plugin_mkdir_p(path, 0755), 0);
    assert_int_equal(plugin_mkdir_p(path, 0755), 0);
    snprintf(outside, sizeof outside, "%s/keep", dir);
    FILE *fp = fopen(outside, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "ln -s '%s' '%s/tree/a/link' && touch '%s/tree/a/b/file' &&"
             " chmod 0500 '%s/tree/a/b'", outside, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/keep/x", dir);
    assert_int_equal(plugin_mkdir_p(path, 0755), -ENOTDIR);
    snprintf(path, sizeof path, "%s/tree", dir);
    assert_int_equal(plugin_remove_tree(path), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(outside, F_OK), 0);
    assert_int_equal(plugin_remove_tree(path), 0);

    /* Secrets refuse a disk; bad base64 is refused with its path. */
    static const char DOC[] =
        "{\"name\": \"s\", \"location\": \"westus\", \"properties\": {"
        " \"osType\": \"Linux\", \"volumes\": [{\"name\": \"v\", \"secret\": {\"k\": \"%s\"}}],"
        " \"containers\": [{\"name\": \"c\", \"properties\": {\"image\": \"i\","
        "  \"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}";
    char doc[1024];
    snprintf(doc, sizeof doc, DOC, "aGVsbG8=");
    berth_group_t *spec = NULL;
    berth_error_t err;
    assert_int_equal(berth_group_parse(doc, strlen(doc), &spec, &err), 0);
    char secrets[600];
    snprintf(secrets, sizeof secrets, "%s/secrets", dir);
    volumes_config_t cfg = {.data_dir = dir, .secret_dir = secrets, .git = "git"};
    assert_int_equal(volumes_prepare(&cfg, "0123456789abcdef", spec, &err), BERTH_EIO);
    assert_non_null(strstr(err.message, "tmpfs"));
    berth_group_free(spec);
    snprintf(secrets, sizeof secrets, "/dev/shm/berth-test-common-%ld", (long)getpid());
    /* The parser refuses bad base64 too: the plugin must not rely on it. */
    snprintf(doc, sizeof doc, DOC, "aGVsbG8=");
    assert_int_equal(berth_group_parse(doc, strlen(doc), &spec, &err), 0);
    free(spec->volumes[0].secret_items[0].value);
    spec->volumes[0].secret_items[0].value = strdup("not*base64");
    assert_int_equal(volumes_prepare(&cfg, "0123456789abcdef", spec, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "properties.volumes[0].secret.k");
    assert_null(strstr(err.message, "not*base64"));
    berth_group_free(spec);
    snprintf(doc, sizeof doc, DOC, "aGVsbG8=");
    assert_int_equal(berth_group_parse(doc, strlen(doc), &spec, &err), 0);
    assert_int_equal(volumes_prepare(&cfg, "0123456789abcdef", spec, &err), 0);
    snprintf(path, sizeof path, "%s/0123456789abcdef/v/k", secrets);
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(text, sizeof text, fp));
    fclose(fp);
    assert_string_equal(text, "hello");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0400);
    /* The one mount of a container without volume mounts: its config map
     * directory, read-only at /mnt/configmap/<name>, made empty. */
    volume_mount_t mounts[2];
    size_t nmounts = 0;
    assert_int_equal(volumes_mounts(&cfg, "0123456789abcdef", spec, &spec->containers[0],
                                    mounts, 2, &nmounts, &err), 0);
    assert_int_equal(nmounts, 1);
    assert_string_equal(mounts[0].target, "/mnt/configmap/c");
    assert_true(mounts[0].read_only);
    char cmdir[700];
    snprintf(cmdir, sizeof cmdir, "%s/groups/0123456789abcdef/configmap/c", dir);
    assert_string_equal(mounts[0].source, cmdir);
    assert_int_equal(stat(cmdir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* Config maps: one file a key, replaced whole; keys no longer given
     * removed; nothing else in the directory survives. */
    spec->containers[0].config_map = calloc(2, sizeof(berth_pair_t));
    assert_non_null(spec->containers[0].config_map);
    spec->containers[0].config_map[0] = (berth_pair_t){strdup("app.conf"), strdup("one\n")};
    spec->containers[0].config_map[1] = (berth_pair_t){strdup("old"), strdup("x")};
    spec->containers[0].nconfig_map = 2;
    spec->containers[0].has_config_map = true;
    assert_int_equal(volumes_config_maps(&cfg, "0123456789abcdef", spec, &err), 0);
    snprintf(path, sizeof path, "%s/app.conf", cmdir);
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(text, sizeof text, fp));
    fclose(fp);
    assert_string_equal(text, "one\n");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    ino_t before = st.st_ino;
    free(spec->containers[0].config_map[0].value);
    spec->containers[0].config_map[0].value = strdup("two");
    spec->containers[0].nconfig_map = 1;
    assert_int_equal(volumes_config_maps(&cfg, "0123456789abcdef", spec, &err), 0);
    spec->containers[0].nconfig_map = 2;     /* freed with the group */
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(text, sizeof text, fp));
    fclose(fp);
    assert_string_equal(text, "two");
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_ino != before);        /* a new file renamed over it */
    snprintf(path, sizeof path, "%s/old", cmdir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/+app.conf", cmdir);
    assert_int_equal(access(path, F_OK), -1);
    /* A key that is no file name is refused (the parser refuses it too). */
    free(spec->containers[0].config_map[1].name);
    spec->containers[0].config_map[1].name = strdup("..");
    assert_int_equal(volumes_config_maps(&cfg, "0123456789abcdef", spec, &err), BERTH_EINVAL);
    assert_int_equal(volumes_remove(&cfg, "0123456789abcdef", &err), 0);
    assert_int_equal(access(cmdir, F_OK), -1);
    snprintf(path, sizeof path, "%s/0123456789abcdef/v/k", secrets);
    assert_int_equal(access(path, F_OK), -1);
    berth_group_free(spec);
    assert_int_equal(plugin_remove_tree(secrets), 0);
    assert_int_equal(plugin_remove_tree(dir), 0);
}

/* ---- main --------------------------------------------------------------- */

int main(void)
{
    const char *docker = getenv("BERTH_TEST_DOCKER_SOCK");
    const char *podman = getenv("BERTH_TEST_PODMAN_SOCK");
    const char *image = getenv("BERTH_TEST_IMAGE");
    const char *require = getenv("BERTH_REQUIRE_ENGINES");
    bool required = require != NULL && strcmp(require, "1") == 0;
    const struct CMUnitTest common_tests[] = {
        cmocka_unit_test(test_common_helpers),
    };
    if (cmocka_run_group_tests_name("common", common_tests, NULL, NULL) != 0)
        return 1;
    if ((docker == NULL || *docker == '\0') && (podman == NULL || *podman == '\0')) {
        if (required) {
            fprintf(stderr, "BERTH_REQUIRE_ENGINES=1 but BERTH_TEST_DOCKER_SOCK and "
                            "BERTH_TEST_PODMAN_SOCK are unset (run tests/engines.sh start DIR "
                            "and source DIR/env)\n");
            return 1;
        }
        printf("1..0 # SKIP no engine (BERTH_TEST_DOCKER_SOCK/BERTH_TEST_PODMAN_SOCK unset)\n");
        return 77;
    }
    if (required && (docker == NULL || *docker == '\0' || podman == NULL || *podman == '\0')) {
        fprintf(stderr, "BERTH_REQUIRE_ENGINES=1 needs both BERTH_TEST_DOCKER_SOCK and "
                        "BERTH_TEST_PODMAN_SOCK\n");
        return 1;
    }
    if (image == NULL || *image == '\0')
        image = "busybox:latest";
    docker_fixture.sock = docker && *docker ? docker : NULL;
    docker_fixture.image = image;
    podman_fixture.sock = podman && *podman ? podman : NULL;
    podman_fixture.image = image;
    const char *runtime = getenv("BERTH_TEST_DOCKER_RUNTIME");
    if (runtime != NULL && *runtime != '\0') {
        gvisor_fixture.sock = docker_fixture.sock;
        gvisor_fixture.image = image;
        gvisor_fixture.runtime = runtime;
    }
    const char *runtime_sock = getenv("BERTH_TEST_PODMAN_RUNTIME_SOCK");
    if (runtime_sock != NULL && *runtime_sock != '\0') {
        gvisor_podman_fixture.sock = podman_fixture.sock;
        gvisor_podman_fixture.image = image;
        gvisor_podman_fixture.runtime = runtime_sock;
    }

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_and_images, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_images_list, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_config, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_group_lifecycle, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_subnets, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_init_and_exit, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_volumes, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_session_tty, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_session_streams, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_session_thread, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_bad_volumes_and_secrets, test_setup,
                                        test_teardown),
    };
    int failed = cmocka_run_group_tests_name("docker", tests, group_setup_docker, group_teardown);
    failed += cmocka_run_group_tests_name("podman", tests, group_setup_podman, group_teardown);
    const struct CMUnitTest sandbox_tests[] = {
        cmocka_unit_test_setup_teardown(test_sandboxed_group, test_setup, test_teardown),
    };
    failed += cmocka_run_group_tests_name("docker-gvisor", sandbox_tests, group_setup_gvisor,
                                          group_teardown);
    failed += cmocka_run_group_tests_name("podman-gvisor", sandbox_tests,
                                          group_setup_gvisor_podman, group_teardown);
    return failed == 0 ? 0 : 1;
}
