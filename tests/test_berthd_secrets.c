/*
 * test_berthd_secrets.c: secrets sealed at rest, end to end: a redis-server
 * with AOF (appendfsync always), a berthd and a berth-agent with the
 * simulator plugin, both given the harness's key file (agent-harness.h).
 *
 * Covers: after a container group holding every kind of secret (a
 * secureValue, a secret volume, an azureFile key, a registry password, a
 * Log Analytics workspace key) is created and run, no secret appears in
 * clear anywhere in Redis (every key of every type read back, streams
 * included) nor in any file of its directory (the AOF), nor in berthd's or
 * the agent's log, while the agent hands the runtime the clear value (the
 * simulator exits with the code a secureValue gives it), and a PUT of the
 * same document again leaves the group's record as it is; nor those of a
 * container group profile and of an NGroup's containerGroupProperties; `berthctl fsck`
 * is clean, then names the group and path of a secret planted in clear; an
 * agent whose key file lacks the key fails the group naming the secret's
 * path and runs nothing; a berthd without a key file refuses a document
 * holding a secret (400 SecretsKeyRequired naming its path) and stores
 * nothing.
 *
 * Every wait is bounded (test-time.h); every process started is stopped by
 * its pid; nothing asserts speed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "agent-harness.h"
#include "berthd-harness.h"
#include "lib/spawn.h"
#include "redis-harness.h"

#define SUB "0000-Sub-5"
#define APIV "2023-05-01"
#define WAIT_MS 15000

/* The clear secrets of doc_all, and the base64 of the secret volume's. */
static const char *const needles[] = {"TOPSECRET-env", "TOPSECRET-storage",
                                      "TOPSECRET-registry", "TOPSECRET-workspace",
                                      "TOPSECRET-volume", "VE9QU0VDUkVULXZvbHVtZQ==",
                                      "TOPSECRET-profile", "TOPSECRET-ngroup"};

/* Every kind of secret; container "app" exits (the simulator's
 * BERTH_SIM_EXIT_*) with the code its secureValue says, 7. */
static const char doc_all[] =
    "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
    "\"restartPolicy\": \"Never\", "
    "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"busybox:latest\", "
    "\"environmentVariables\": [{\"name\": \"BERTH_SIM_EXIT_AFTER_MS\", \"value\": \"200\"}, "
    "{\"name\": \"BERTH_SIM_EXIT_CODE\", \"secureValue\": \"7\"}, "
    "{\"name\": \"K\", \"secureValue\": \"TOPSECRET-env\"}], "
    "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}, "
    "\"volumeMounts\": [{\"name\": \"sec\", \"mountPath\": \"/s\"}, "
    "{\"name\": \"share\", \"mountPath\": \"/f\"}]}}], "
    "\"volumes\": [{\"name\": \"sec\", \"secret\": {\"f\": \"VE9QU0VDUkVULXZvbHVtZQ==\"}}, "
    "{\"name\": \"share\", \"azureFile\": {\"shareName\": \"s\", \"storageAccountName\": "
    "\"acct\", \"storageAccountKey\": \"TOPSECRET-storage\"}}], "
    "\"imageRegistryCredentials\": [{\"server\": \"myreg.example\", \"username\": \"u\", "
    "\"password\": \"TOPSECRET-registry\"}], "
    "\"diagnostics\": {\"logAnalytics\": {\"workspaceId\": \"w\", \"workspaceKey\": "
    "\"TOPSECRET-workspace\"}}}}";

static const char doc_env[] =
    "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
    "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"busybox:latest\", "
    "\"environmentVariables\": [{\"name\": \"K\", \"secureValue\": \"TOPSECRET-env\"}], "
    "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}";

#define ENV_PATH "properties.containers[0].properties.environmentVariables[0].secureValue"

typedef struct fixture {
    berth_test_redis_t *redis;
    redisContext *rc;
    char cell[32];
    test_agent_t agent;
    bool agent_running;
    test_berthd_t d;
    bool d_running;
    char other_key[128];            /* a key file without the harness's key */
} fixture_t;

/* ---- helpers ------------------------------------------------------------------------------ */

static char *gpath(const char *name)
{
    return test_group_path(SUB, "rg", name, APIV);
}

static void agent_start(fixture_t *f, const char *key_file)
{
    const char *args[] = {"--cores", "8", "--memory-mib", "65536", "--tick-ms", "50",
                          "--heartbeat-ms", "200", "--ttl-ms", "10000",
                          key_file != NULL ? "--secrets-key" : NULL, key_file, NULL};
    assert_int_equal(test_agent_start(&f->agent, f->redis->url, f->cell, "h1", "sim",
                                      "{\"images\": [\"busybox:latest\"]}", args),
                     0);
    f->agent_running = true;
    /* berthd places only on a host the cell knows. */
    test_sched_t s;
    assert_int_equal(test_sched_open(&s, f->redis->url, f->cell), 0);
    bool up = test_sched_wait_host(&s, "h1", test_deadline_ms(WAIT_MS));
    test_sched_close(&s);
    if (!up)
        test_agent_dump(&f->agent, 40);
    assert_true(up);
}

static void berthd_start(fixture_t *f, bool with_key)
{
    const char *args[] = {"--redis", f->redis->url, "--cell", f->cell, NULL};
    test_berthd_options_t o = {.no_secrets_key = !with_key};
    assert_int_equal(test_berthd_start_with(&f->d, &o, args), 0);
    f->d_running = true;
}

/* The group record of `key` as Redis holds it, bytes as hex (free()). */
static char *group_record(fixture_t *f, const char *key)
{
    redisReply *r = redisCommand(f->rc, "HGET berth:{%s}:groups %s", f->cell, key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char *hex = malloc(2 * r->len + 1);
    assert_non_null(hex);
    for (size_t i = 0; i < r->len; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)r->str[i]);
    hex[2 * r->len] = '\0';
    freeReplyObject(r);
    return hex;
}

/* Appends the strings of reply r (nested arrays walked) to m. */
static void reply_append(FILE *m, const redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        fwrite(r->str, 1, r->len, m);
        fputc('\n', m);
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        reply_append(m, r->element[i]);
}

static void command_append(FILE *m, redisContext *c, const char *fmt, const char *key)
{
    redisReply *r = redisCommand(c, fmt, key);
    assert_non_null(r);
    reply_append(m, r);
    freeReplyObject(r);
}

/* Everything Redis holds, every key read by its type, in one buffer
 * (free()); *nkeys: the keys read. */
static char *redis_everything(redisContext *c, size_t *len, size_t *nkeys)
{
    char *out = NULL;
    FILE *m = open_memstream(&out, len);
    assert_non_null(m);
    char cursor[32] = "0";
    *nkeys = 0;
    for (int rounds = 0; rounds < 10000; rounds++) {
        redisReply *r = redisCommand(c, "SCAN %s COUNT 1000", cursor);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            (*nkeys)++;
            fprintf(m, "%s\n", key);
            redisReply *t = redisCommand(c, "TYPE %s", key);
            assert_non_null(t);
            const char *type = t->str;
            if (strcmp(type, "string") == 0)
                command_append(m, c, "GET %s", key);
            else if (strcmp(type, "hash") == 0)
                command_append(m, c, "HGETALL %s", key);
            else if (strcmp(type, "set") == 0)
                command_append(m, c, "SMEMBERS %s", key);
            else if (strcmp(type, "zset") == 0)
                command_append(m, c, "ZRANGE %s 0 -1 WITHSCORES", key);
            else if (strcmp(type, "list") == 0)
                command_append(m, c, "LRANGE %s 0 -1", key);
            else if (strcmp(type, "stream") == 0)
                command_append(m, c, "XRANGE %s - +", key);
            else if (strcmp(type, "none") != 0)
                fail_msg("key %s has type %s, which this test cannot read", key, type);
            freeReplyObject(t);
        }
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    /* The Functions library too (it holds no data, but it is in Redis). */
    redisReply *fl = redisCommand(c, "FUNCTION LIST WITHCODE");
    if (fl != NULL) {
        reply_append(m, fl);
        freeReplyObject(fl);
    }
    fclose(m);
    return out;
}

static void assert_no_needle(const char *where, const char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++) {
        if (memmem(buf, len, needles[i], strlen(needles[i])) != NULL)
            fail_msg("%s holds the secret %s in clear", where, needles[i]);
    }
}

/* Reads every regular file under `dir` (recursively, a bounded depth) and
 * checks it holds no secret in clear.  Returns the number of files that
 * hold a sealed one. */
static size_t files_check(const char *dir, int depth)
{
    size_t total = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 4) {
            total += files_check(path, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            FILE *fp = fopen(path, "r");
            assert_non_null(fp);
            char *buf = malloc((size_t)st.st_size + 1);
            assert_non_null(buf);
            size_t n = fread(buf, 1, (size_t)st.st_size, fp);
            fclose(fp);
            assert_no_needle(path, buf, n);
            total += memmem(buf, n, "berth/sealed/v1/", 16) != NULL;
            free(buf);
        }
    }
    closedir(d);
    return total;
}

static void file_check(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    fclose(fp);
    assert_no_needle(path, buf, len);
    free(buf);
}

/* The group's container state and exit code, from a GET. */
static bool container_exited(fixture_t *f, const char *name, json_int_t *code)
{
    char *p = gpath(name);
    test_http_t h = test_http_send(&f->d, "GET", p, NULL, NULL);
    free(p);
    assert_no_needle("a GET's answer", h.body, h.body_len);
    json_t *c = json_array_get(
        json_object_get(json_object_get(h.json, "properties"), "containers"), 0);
    json_t *cur = json_object_get(
        json_object_get(json_object_get(c, "properties"), "instanceView"), "currentState");
    const char *state = json_string_value(json_object_get(cur, "state"));
    bool done = state != NULL && strcmp(state, "Terminated") == 0;
    if (done)
        *code = json_integer_value(json_object_get(cur, "exitCode"));
    test_http_free(&h);
    return done;
}

/* GETs the group until its provisioning state is Failed; returns the
 * body's text (free()) or NULL. */
static char *wait_failed(fixture_t *f, const char *name)
{
    char *p = gpath(name);
    char *body = NULL;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (body == NULL && test_now_ms() < end) {
        test_http_t h = test_http_send(&f->d, "GET", p, NULL, NULL);
        const char *ps = json_string_value(json_object_get(
            json_object_get(h.json, "properties"), "provisioningState"));
        if (ps != NULL && strcmp(ps, "Failed") == 0)
            body = strdup(h.body);
        test_http_free(&h);
        if (body == NULL)
            test_sleep_ms(100);
    }
    free(p);
    return body;
}

/* Runs `berthctl fsck` on the fixture's cell; returns its exit status
 * and its output in *out (free()). */
static int run_fsck(fixture_t *f, char **out)
{
    const char *top = getenv("top_builddir");
    char prog[512];
    snprintf(prog, sizeof prog, "%s/tools/berthctl/berthctl", top != NULL ? top : ".");
    char *argv[] = {prog, "fsck", "--redis", f->redis->url, "--cell", f->cell, NULL};
    berth__spawn_options_t so = {.capture = BERTH__SPAWN_CAPTURE_STDOUT |
                                            BERTH__SPAWN_CAPTURE_STDERR};
    berth__spawn_result_t res;
    berth__spawn_run_alloc(argv, &so, test_deadline_ms(30000), 1 << 20, out, &res);
    assert_non_null(*out);
    return res.exit_status;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_nothing_in_clear(void **state)
{
    fixture_t *f = *state;
    berthd_start(f, true);
    agent_start(f, NULL);
    char *p = gpath("sec");
    test_http_t h = test_http_send(&f->d, "PUT", p, doc_all, NULL);
    if (h.status != 201)
        fprintf(stderr, "%s\n", h.body);
    assert_int_equal(h.status, 201);
    assert_no_needle("the PUT's answer", h.body, h.body_len);
    test_http_free(&h);
    free(p);

    /* The runtime got the clear secureValue: the container exits with 7
     * (a sealed value would read as 0). */
    json_int_t code = -1;
    bool done = false;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (!done && test_now_ms() < end) {
        done = container_exited(f, "sec", &code);
        if (!done)
            test_sleep_ms(100);
    }
    if (!done)
        test_agent_dump(&f->agent, 40);
    assert_true(done);
    assert_int_equal(code, 7);

    size_t len = 0, nkeys = 0;
    char *all = redis_everything(f->rc, &len, &nkeys);
    assert_true(nkeys > 5);
    assert_no_needle("Redis", all, len);
    /* The document is there, sealed. */
    assert_non_null(memmem(all, len, "berth/sealed/v1/", 16));
    free(all);
    /* The AOF holds the document, sealed. */
    assert_true(files_check(f->redis->dir, 0) > 0);
    file_check(f->d.log_path);
    file_check(f->agent.log_path);

    /* The same document again: 200 and the group's record is the very
     * same (sealing is deterministic): nothing is redeployed. */
    char *before = group_record(f, "0000-sub-5/rg/sec");
    p = gpath("sec");
    h = test_http_send(&f->d, "PUT", p, doc_all, NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    free(p);
    char *after = group_record(f, "0000-sub-5/rg/sec");
    assert_memory_equal(before, after, strlen(before) + 1);
    free(before);
    free(after);

    char *out = NULL;
    int st = run_fsck(f, &out);
    if (st != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(st, 0);
    assert_null(strstr(out, "in clear"));
    free(out);

    /* A document stored in clear (by a berthd that had no key, or around
     * berthd): fsck names the group and the path, never the value. */
    test_sched_t s;
    assert_int_equal(test_sched_open(&s, f->redis->url, f->cell), 0);
    assert_true(test_sched_wait_host(&s, "h1", test_deadline_ms(WAIT_MS)));
    assert_int_equal(test_sched_place(&s, SUB "/rg/planted", doc_env, NULL), 0);
    test_sched_close(&s);
    st = run_fsck(f, &out);
    assert_int_not_equal(st, 0);
    if (strstr(out, "container group " SUB "/rg/planted stores a secret in clear at " ENV_PATH) ==
        NULL)
        fprintf(stderr, "%s\n", out);
    assert_non_null(
        strstr(out, "container group " SUB "/rg/planted stores a secret in clear at " ENV_PATH));
    assert_null(strstr(out, "TOPSECRET"));
    free(out);
}

/* PUTs `body` at `path` (api-version 2025-09-01); expects 200 or 201. */
static void put_ok(fixture_t *f, const char *path, const char *body)
{
    test_http_t h = test_http_send(&f->d, "PUT", path, body, NULL);
    if (h.status != 200 && h.status != 201)
        fprintf(stderr, "PUT %s: %ld %s\n", path, h.status, h.body);
    assert_true(h.status == 200 || h.status == 201);
    assert_no_needle("a PUT's answer", h.body, h.body_len);
    /* Not even sealed: no answer holds a secret. */
    assert_null(strstr(h.body, "berth/sealed/v1/"));
    test_http_free(&h);
}

/* A container group profile's document and an NGroup's
 * containerGroupProperties are stored sealed too. */
static void test_profiles_and_ngroups(void **state)
{
    fixture_t *f = *state;
    berthd_start(f, true);
    agent_start(f, NULL);
    put_ok(f,
           "/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.ContainerInstance/"
           "containerGroupProfiles/web?api-version=2025-09-01",
           "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
           "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": "
           "\"busybox:latest\", \"environmentVariables\": [{\"name\": \"PW\", "
           "\"secureValue\": \"TOPSECRET-profile\"}], \"resources\": {\"requests\": "
           "{\"cpu\": 0.5, \"memoryInGB\": 0.5}}}}]}}");
    put_ok(f,
           "/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.ContainerInstance/"
           "ngroups/ng?api-version=2025-09-01",
           "{\"location\": \"westeurope\", \"properties\": {\"elasticProfile\": "
           "{\"desiredCount\": 1}, \"containerGroupProfiles\": [{\"resource\": {\"id\": "
           "\"/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.ContainerInstance/"
           "containerGroupProfiles/web\"}, \"containerGroupProperties\": {\"volumes\": "
           "[{\"name\": \"share\", \"azureFile\": {\"shareName\": \"s\", "
           "\"storageAccountName\": \"acct\", \"storageAccountKey\": "
           "\"TOPSECRET-ngroup\"}}]}}]}}");
    size_t len = 0, nkeys = 0;
    char *all = redis_everything(f->rc, &len, &nkeys);
    assert_no_needle("Redis", all, len);
    free(all);
    assert_true(files_check(f->redis->dir, 0) > 0);
    file_check(f->d.log_path);
}

static void test_agent_without_the_key(void **state)
{
    fixture_t *f = *state;
    berthd_start(f, true);
    agent_start(f, f->other_key);
    char *p = gpath("nokey");
    test_http_t h = test_http_send(&f->d, "PUT", p, doc_env, NULL);
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    free(p);
    char *body = wait_failed(f, "nokey");
    if (body == NULL)
        test_agent_dump(&f->agent, 40);
    assert_non_null(body);
    if (strstr(body, "secret " ENV_PATH " cannot be unsealed") == NULL)
        fprintf(stderr, "%s\n", body);
    assert_non_null(strstr(body, "secret " ENV_PATH " cannot be unsealed"));
    assert_non_null(strstr(body, "'test'"));
    assert_no_needle("a GET's answer", body, strlen(body));
    free(body);
    file_check(f->agent.log_path);
}

static void test_berthd_without_a_key(void **state)
{
    fixture_t *f = *state;
    berthd_start(f, false);
    char *p = gpath("refused");
    test_http_t h = test_http_send(&f->d, "PUT", p, doc_all, NULL);
    assert_int_equal(h.status, 400);
    json_t *e = json_object_get(h.json, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "SecretsKeyRequired");
    assert_string_equal(json_string_value(json_object_get(e, "target")),
                        "properties.containers[0].properties.environmentVariables[1]."
                        "secureValue");
    assert_no_needle("the answer", h.body, h.body_len);
    test_http_free(&h);
    free(p);
    /* Nothing of it reached Redis. */
    size_t len = 0, nkeys = 0;
    char *all = redis_everything(f->rc, &len, &nkeys);
    assert_no_needle("Redis", all, len);
    assert_null(memmem(all, len, "refused", 7));
    free(all);
}

/* ---- fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    static int counter;
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->cell, sizeof f->cell, "sec%d-%d", (int)getpid(), counter++);
    berth_test_redis_options_t ro = {.aof = BERTH_TEST_REDIS_AOF_ALWAYS};
    f->redis = berth_test_redis_start(&ro);
    if (f->redis == NULL)
        return -1;
    f->rc = redisConnectUnix(f->redis->socket_path);
    if (f->rc == NULL || f->rc->err != 0)
        return -1;
    snprintf(f->other_key, sizeof f->other_key, "%s/other.key", f->redis->dir);
    int fd = open(f->other_key, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    static const char key[] =
        "other 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    if (fd < 0 || write(fd, key, sizeof key - 1) != (ssize_t)(sizeof key - 1))
        return -1;
    close(fd);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->agent_running)
        test_agent_stop(&f->agent);
    if (f->d_running)
        test_berthd_stop(&f->d);
    if (f->rc != NULL)
        redisFree(f->rc);
    unlink(f->other_key);
    berth_test_redis_stop(f->redis);
    free(f);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_in_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profiles_and_ngroups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_without_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_berthd_without_a_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
