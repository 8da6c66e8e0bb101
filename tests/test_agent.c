/*
 * test_agent.c: berth-agent with the simulator plugin against a real
 * redis-server (tests/redis-harness.c): the whole path from a placement
 * committed by a scheduler to the instance view the agent writes back.
 *
 * Covers: host registration, heartbeat and the images reported; a group created, started and
 * reported Running with its events; init containers run to completion in
 * order before the containers; restartPolicy OnFailure (restarts with
 * back-off, previous state kept), Never (terminated with its exit code,
 * group Failed) and OnFailure after a clean exit (no restart); Always and
 * OnFailure groups in back-off shown as ACI shows them (group Running,
 * never Succeeded or Failed; the container Waiting in CrashLoopBackOff
 * with the run that ended as its previous state); an update
 * restarting the group in place on the same host without a pull; config
 * maps delivered as files and a change to them alone taken by the running
 * container (no restart, no new container); logs and
 * exec through the agent's calls (and a call no agent answers); a
 * restart request; a release removing the group and its view; a pull
 * failure reported as Failed; a crash of the agent (SIGKILL) while work is
 * queued, after which the restarted agent runs every group once; an
 * assignment whose group record could not be read, worked again once it
 * can (no new assignment, no restart); a host
 * whose heartbeat expired marked down and its groups moved; a settled
 * group among many, stepped only by the agent's sweep, whose crashed
 * container is still restarted within --sweep-ms; a settled group whose
 * view is not written again while nothing changes; published ports' host
 * ports (hostIp/hostPort in the view) kept across an update and across a
 * release and new placement on the same host; and a
 * fleet of 60 agents on one machine running 120 groups ($BERTH_TEST_FLEET
 * agents when set).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>

#include "agent-harness.h"
#include "redis-harness.h"

static berth_test_redis_t *redis;
static int cell_counter;

typedef struct fixture {
    char cell[32];
    test_sched_t sched;
    test_agent_t agent;
} fixture_t;

static const char *const FAST[] = {"--cores", "8", "--memory-mib", "16384", "--tick-ms", "50",
                                   "--heartbeat-ms", "200", "--ttl-ms", "2000",
                                   "--backoff-initial-ms", "100", "--backoff-max-ms", "400",
                                   NULL};
static const char SIM_CONFIG[] =
    "{\"images\": [\"busybox:latest\"], \"rules\": [{\"image\": \"bad/*\", \"pull_fail\": true}]}";

static int group_setup(void **state)
{
    berth_test_redis_options_t o = {BERTH_TEST_REDIS_UNIX, BERTH_TEST_REDIS_AOF_EVERYSEC, 0};
    redis = berth_test_redis_start(&o);
    return redis != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    berth_test_redis_stop(redis);
    return 0;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->cell, sizeof f->cell, "agent-%d", ++cell_counter);
    if (test_sched_open(&f->sched, redis->url, f->cell) != 0 ||
        test_agent_start(&f->agent, redis->url, f->cell, "sim-1", "sim", SIM_CONFIG, FAST) != 0 ||
        !test_sched_wait_host(&f->sched, "sim-1", 10000)) {
        test_agent_dump(&f->agent, 20);
        test_agent_kill(&f->agent);
        test_sched_close(&f->sched);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = test_agent_stop(&f->agent);
    if (rc != 0) {
        fprintf(stderr, "agent exited with %d\n", rc);
        test_agent_dump(&f->agent, 40);
    }
    unlink(f->agent.log_path);
    test_sched_close(&f->sched);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* An ACI document: one container "app" (busybox unless `image`), the
 * restart policy, and the simulator's exit controls (exit_after_ms < 0:
 * runs until stopped). */
static char *doc(const char *image, const char *policy, int exit_after_ms, int exit_code,
                 const char *extra_env)
{
    char env[512] = "";
    if (exit_after_ms >= 0)
        snprintf(env, sizeof env,
                 "{\"name\": \"BERTH_SIM_EXIT_AFTER_MS\", \"value\": \"%d\"},"
                 "{\"name\": \"BERTH_SIM_EXIT_CODE\", \"value\": \"%d\"},",
                 exit_after_ms, exit_code);
    char *out = NULL;
    if (asprintf(&out,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
                 " \"restartPolicy\": \"%s\", \"containers\": [{\"name\": \"app\","
                 " \"properties\": {\"image\": \"%s\", \"environmentVariables\": [%s"
                 " {\"name\": \"MODE\", \"value\": \"%s\"},"
                 " {\"name\": \"TOKEN\", \"secureValue\": \"s3cr3t-value\"}],"
                 " \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.5}}}}]}}",
                 policy, image ? image : "busybox:latest", env,
                 extra_env ? extra_env : "a") < 0)
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

static json_t *wait_running(fixture_t *f, const char *key, const char *container)
{
    json_t *v = test_view_wait(&f->sched, key, test_pred_running, (void *)container, 10000,
                               "provisioning Succeeded and the container Running");
    if (v == NULL)
        test_agent_dump(&f->agent, 30);
    assert_non_null(v);
    return v;
}

static void test_create_runs(void **state)
{
    fixture_t *f = *state;
    place_ok(f, "sub/rg/web", doc(NULL, "Always", -1, 0, NULL), NULL);
    json_t *v = wait_running(f, "sub/rg/web", "app");
    assert_string_equal(json_string_value(json_object_get(v, "host")), "sim-1");
    assert_int_equal(json_integer_value(json_object_get(v, "generation")), 1);
    assert_string_equal(test_view_group_state(v), "Running");
    assert_true(test_view_has_event(v, "app", "Pulled", "already present on machine"));
    assert_true(test_view_has_event(v, "app", "Created", NULL));
    assert_true(test_view_has_event(v, "app", "Started", NULL));
    assert_int_equal(test_view_restarts(v, "app"), 0);
    json_decref(v);

    /* The heartbeat is there and expires. */
    redisContext *c = berth_test_redis_connect(redis);
    char key[128];
    snprintf(key, sizeof key, "berth:{%s}:alive:sim-1", f->cell);
    redisReply *r = redisCommand(c, "PTTL %s", key);
    assert_non_null(r);
    assert_true(r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= 2000);
    freeReplyObject(r);
    /* The host's images are reported to the cell. */
    snprintf(key, sizeof key, "berth:{%s}:images:sim-1", f->cell);
    r = redisCommand(c, "SISMEMBER %s busybox:latest", key);
    assert_true(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    redisFree(c);

    /* No secret reaches the agent's log. */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "grep -q s3cr3t '%s'", f->agent.log_path);
    assert_int_not_equal(system(cmd), 0);
}

static void test_pull_reported(void **state)
{
    fixture_t *f = *state;
    place_ok(f, "sub/rg/fresh", doc("fresh/app:1", "Always", -1, 0, NULL), NULL);
    json_t *v = wait_running(f, "sub/rg/fresh", "app");
    assert_true(test_view_has_event(v, "app", "Pulling", "fresh/app:1"));
    assert_true(test_view_has_event(v, "app", "Pulled", "Successfully pulled image"));
    json_decref(v);
    redisContext *c = berth_test_redis_connect(redis);
    char key[128];
    snprintf(key, sizeof key, "berth:{%s}:images:sim-1", f->cell);
    int64_t end = test_now_ms() + test_deadline_ms(5000);
    long long member = 0;
    while (member != 1 && test_now_ms() < end) {
        redisReply *r = redisCommand(c, "SISMEMBER %s fresh/app:1", key);
        member = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        freeReplyObject(r);
        if (member != 1)
            test_sleep_ms(50);
    }
    assert_int_equal(member, 1);
    redisFree(c);
}

static void test_calls(void **state)
{
    fixture_t *f = *state;
    place_ok(f, "sub/rg/calls", doc(NULL, "Always", -1, 0, NULL), NULL);
    json_decref(wait_running(f, "sub/rg/calls", "app"));
    berth_error_t err;
    char *out = NULL;
    int crc = berth_store_container_logs(f->sched.store, "sub/rg/calls", "app", 0, false, 5000,
                                         &out, &err);
    if (crc != 0)
        fail_msg("logs: %s: %s", err.name, err.message);
    assert_non_null(strstr(out, "started\n"));
    berth_free(out);
    assert_int_equal(berth_store_container_logs(f->sched.store, "sub/rg/calls", "app", 1, true,
                                                5000, &out, &err), 0);
    assert_true(out[4] == '-' && strstr(out, "Z started\n") != NULL);
    berth_free(out);
    const char *echo[] = {"echo", "hello", "there"};
    int code = -1;
    assert_int_equal(berth_store_container_exec(f->sched.store, "sub/rg/calls", "app", echo, 3,
                                                5000, &out, &code, &err), 0);
    assert_string_equal(out, "echo hello there\n");
    assert_int_equal(code, 0);
    berth_free(out);
    const char *ex[] = {"exit", "4"};
    assert_int_equal(berth_store_container_exec(f->sched.store, "sub/rg/calls", "app", ex, 2,
                                                5000, &out, &code, &err), 0);
    assert_int_equal(code, 4);
    berth_free(out);
    /* The runtime's refusal travels back with its code. */
    assert_int_equal(berth_store_container_logs(f->sched.store, "sub/rg/calls", "nope", 0, false,
                                                5000, &out, &err), BERTH_ENOENT);
    assert_string_equal(err.name, "ContainerNotFound");
    assert_null(out);
    assert_int_equal(berth_store_container_logs(f->sched.store, "sub/rg/none", "app", 0, false,
                                                5000, &out, &err), BERTH_ENOENT);
    assert_int_equal(berth_store_container_exec(f->sched.store, "sub/rg/calls", "app", echo, 0,
                                                5000, &out, &code, &err), BERTH_EINVAL);
    /* No agent: the call times out. */
    assert_int_equal(test_agent_stop(&f->agent), 0);
    int64_t t0 = test_now_ms();
    assert_int_equal(berth_store_container_logs(f->sched.store, "sub/rg/calls", "app", 0, false,
                                                1000, &out, &err), BERTH_EIO);
    assert_string_equal(err.name, "AgentUnavailable");
    assert_true(test_now_ms() - t0 >= 900);
    /* Calls made while no agent listened are not answered by the next one. */
    assert_int_equal(test_agent_start(&f->agent, redis->url, f->cell, "sim-1", "sim",
                                      SIM_CONFIG, FAST), 0);
    json_decref(wait_running(f, "sub/rg/calls", "app"));
    assert_int_equal(berth_store_container_exec(f->sched.store, "sub/rg/calls", "app", echo, 3,
                                                5000, &out, &code, &err), 0);
    berth_free(out);
}

static bool init_done(json_t *v, void *data)
{
    return test_pred_running(v, "app");
}

static void test_init_containers_in_order(void **state)
{
    fixture_t *f = *state;
    const char *d =
        "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
        " \"initContainers\": ["
        "  {\"name\": \"first\", \"properties\": {\"image\": \"busybox:latest\","
        "   \"environmentVariables\": [{\"name\": \"BERTH_SIM_EXIT_AFTER_MS\", \"value\": \"150\"}]}},"
        "  {\"name\": \"second\", \"properties\": {\"image\": \"busybox:latest\","
        "   \"environmentVariables\": [{\"name\": \"BERTH_SIM_EXIT_AFTER_MS\", \"value\": \"150\"}]}}],"
        " \"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"busybox:latest\","
        "  \"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}";
    place_ok(f, "sub/rg/init", strdup(d), NULL);
    json_t *v = test_view_wait(&f->sched, "sub/rg/init", init_done, NULL, 10000, "app running");
    assert_non_null(v);
    assert_string_equal(test_view_cstate(v, "first"), "Terminated");
    assert_string_equal(test_view_cstate(v, "second"), "Terminated");
    json_t *c1 = json_object_get(json_object_get(test_view_container(v, "first"),
                                                 "instanceView"), "currentState");
    json_t *c2 = json_object_get(json_object_get(test_view_container(v, "second"),
                                                 "instanceView"), "currentState");
    json_t *c3 = json_object_get(json_object_get(test_view_container(v, "app"),
                                                 "instanceView"), "currentState");
    assert_int_equal(json_integer_value(json_object_get(c1, "exitCode")), 0);
    assert_int_equal(json_integer_value(json_object_get(c2, "exitCode")), 0);
    const char *f1 = json_string_value(json_object_get(c1, "finishTime"));
    const char *s2 = json_string_value(json_object_get(c2, "startTime"));
    const char *f2 = json_string_value(json_object_get(c2, "finishTime"));
    const char *s3 = json_string_value(json_object_get(c3, "startTime"));
    assert_non_null(f1);
    assert_non_null(s2);
    assert_non_null(f2);
    assert_non_null(s3);
    /* Same RFC 3339 UTC format: text order is time order. */
    assert_true(strcmp(f1, s2) <= 0);
    assert_true(strcmp(f2, s3) <= 0);
    assert_int_equal(json_array_size(json_object_get(v, "initContainers")), 2);
    json_decref(v);
}

static bool restarted_twice(json_t *v, void *data)
{
    return test_view_restarts(v, "app") >= 2;
}

static void test_on_failure_restarts(void **state)
{
    fixture_t *f = *state;
    place_ok(f, "sub/rg/crashy", doc(NULL, "OnFailure", 100, 3, NULL), NULL);
    json_t *v = test_view_wait(&f->sched, "sub/rg/crashy", restarted_twice, NULL, 10000,
                               "two restarts");
    assert_non_null(v);
    assert_true(test_view_has_event(v, "app", "BackOff", NULL));
    json_t *prev = json_object_get(json_object_get(test_view_container(v, "app"),
                                                   "instanceView"), "previousState");
    assert_string_equal(json_string_value(json_object_get(prev, "state")), "Terminated");
    assert_int_equal(json_integer_value(json_object_get(prev, "exitCode")), 3);
    json_decref(v);
}

/* What the views of a crash-looping group showed while a test watched. */
typedef struct loop_watch {
    bool saw_backoff;               /* a view in back-off, as ACI shows it  */
    char bad_state[32];             /* a group state other than Running     */
} loop_watch_t;

/* Watches every view until one shows the container in back-off after at
 * least two restarts; notes any group state but Running on the way. */
static bool backoff_seen(json_t *v, void *data)
{
    loop_watch_t *w = data;
    if (v == NULL)
        return false;
    const char *gs = test_view_group_state(v);
    if (test_view_restarts(v, "app") >= 1 && gs != NULL && strcmp(gs, "Running") != 0 &&
        w->bad_state[0] == '\0')
        snprintf(w->bad_state, sizeof w->bad_state, "%s", gs);
    json_t *iv = json_object_get(test_view_container(v, "app"), "instanceView");
    json_t *cur = json_object_get(iv, "currentState");
    json_t *prev = json_object_get(iv, "previousState");
    const char *detail = json_string_value(json_object_get(cur, "detailStatus"));
    const char *cs = test_view_cstate(v, "app");
    const char *ps = json_string_value(json_object_get(prev, "state"));
    if (test_view_restarts(v, "app") >= 2 && cs != NULL && strcmp(cs, "Waiting") == 0 &&
        detail != NULL && strstr(detail, "CrashLoopBackOff") != NULL && ps != NULL &&
        strcmp(ps, "Terminated") == 0)
        w->saw_backoff = true;
    return w->saw_backoff;
}

/* restartPolicy Always, a container that keeps exiting cleanly: the group
 * is Running (not Succeeded: it never finishes), provisioning Succeeded,
 * and in back-off the container is Waiting (CrashLoopBackOff) with the
 * ended run as previousState and its restarts counted.  OnFailure with a
 * failing container likewise (not Failed). */
static void test_backoff_shown(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *key, *policy;
        int code;
    } cases[] = {{"sub/rg/loop", "Always", 0}, {"sub/rg/loopfail", "OnFailure", 2}};
    for (size_t i = 0; i < 2; i++) {
        place_ok(f, cases[i].key, doc(NULL, cases[i].policy, 50, cases[i].code, NULL), NULL);
        loop_watch_t w = {0};
        json_t *v = test_view_wait(&f->sched, cases[i].key, backoff_seen, &w, 10000,
                                   "the container in back-off after two restarts");
        if (v == NULL)
            test_agent_dump(&f->agent, 30);
        assert_non_null(v);
        if (w.bad_state[0] != '\0')
            fprintf(stderr, "%s: group state %s while restarting\n", cases[i].key, w.bad_state);
        assert_string_equal(w.bad_state, "");
        assert_string_equal(test_view_group_state(v), "Running");
        assert_string_equal(json_string_value(json_object_get(v, "provisioningState")),
                            "Succeeded");
        json_t *prev = json_object_get(
            json_object_get(test_view_container(v, "app"), "instanceView"), "previousState");
        assert_int_equal(json_integer_value(json_object_get(prev, "exitCode")), cases[i].code);
        json_decref(v);
    }
}

static bool terminated(json_t *v, void *data)
{
    const char *s = test_view_cstate(v, "app");
    return s != NULL && strcmp(s, "Terminated") == 0;
}

static void test_never_stays_terminated(void **state)
{
    fixture_t *f = *state;
    place_ok(f, "sub/rg/once", doc(NULL, "Never", 100, 3, NULL), NULL);
    json_t *v = test_view_wait(&f->sched, "sub/rg/once", terminated, NULL, 10000, "terminated");
    assert_non_null(v);
    json_decref(v);
    test_sleep_ms(700);         /* several back-off periods */
    v = test_view(&f->sched, "sub/rg/once");
    assert_non_null(v);
    assert_string_equal(test_view_cstate(v, "app"), "Terminated");
    assert_int_equal(test_view_restarts(v, "app"), 0);
    json_t *cur = json_object_get(json_object_get(test_view_container(v, "app"),
                                                  "instanceView"), "currentState");
    assert_int_equal(json_integer_value(json_object_get(cur, "exitCode")), 3);
    assert_string_equal(test_view_group_state(v), "Failed");
    assert_false(test_view_has_event(v, "app", "BackOff", NULL));
    json_decref(v);
}

static void test_on_failure_clean_exit_stays(void **state)
{
    fixture_t *f = *state;
    place_ok(f, "sub/rg/batch", doc(NULL, "OnFailure", 100, 0, NULL), NULL);
    json_t *v = test_view_wait(&f->sched, "sub/rg/batch", terminated, NULL, 10000, "terminated");
    assert_non_null(v);
    json_decref(v);
    test_sleep_ms(500);
    v = test_view(&f->sched, "sub/rg/batch");
    assert_string_equal(test_view_cstate(v, "app"), "Terminated");
    assert_int_equal(test_view_restarts(v, "app"), 0);
    assert_string_equal(test_view_group_state(v), "Succeeded");
    json_decref(v);
}

static bool at_generation_2(json_t *v, void *data)
{
    return json_integer_value(json_object_get(v, "generation")) == 2 &&
           test_pred_running(v, "app");
}

static bool at_generation_3(json_t *v, void *data)
{
    return json_integer_value(json_object_get(v, "generation")) == 3 &&
           test_pred_running(v, "app");
}

static void test_update_in_place(void **state)
{
    fixture_t *f = *state;
    berth_placement_t p1, p2;
    place_ok(f, "sub/rg/upd", doc(NULL, "Always", -1, 0, "one"), &p1);
    json_decref(wait_running(f, "sub/rg/upd", "app"));
    place_ok(f, "sub/rg/upd", doc(NULL, "Always", -1, 0, "two"), &p2);
    assert_string_equal(p1.host, p2.host);
    json_t *v = test_view_wait(&f->sched, "sub/rg/upd", at_generation_2, NULL, 10000,
                               "generation 2 running");
    assert_non_null(v);
    assert_true(test_view_has_event(v, "app", "Pulled", "already present on machine"));
    assert_false(test_view_has_event(v, "app", "Pulled", "Successfully pulled"));
    json_decref(v);
}

/* doc() with container "app"'s configMap.keyValuePairs `pairs` (JSON). */
static char *doc_config(const char *pairs)
{
    char *d = doc(NULL, "Always", -1, 0, NULL);
    json_t *j = json_loads(d, 0, NULL);
    free(d);
    json_t *kv = json_loads(pairs, 0, NULL);
    if (j == NULL || kv == NULL)
        return NULL;
    json_t *c0 = json_array_get(json_object_get(json_object_get(j, "properties"), "containers"),
                                0);
    json_object_set_new(json_object_get(c0, "properties"), "configMap",
                        json_pack("{s:o}", "keyValuePairs", kv));
    char *out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return out;
}

/* `cat path` in container "app" of key: its output into buf, exit code
 * returned. */
static int cat_in(fixture_t *f, const char *key, const char *path, char *buf, size_t cap)
{
    const char *argv[] = {"cat", path};
    char *out = NULL;
    int code = -1;
    berth_error_t err;
    int rc = berth_store_container_exec(f->sched.store, key, "app", argv, 2, 5000, &out, &code,
                                        &err);
    if (rc != 0)
        fail_msg("exec: %s: %s", err.name, err.message);
    snprintf(buf, cap, "%s", out != NULL ? out : "");
    berth_free(out);
    return code;
}

/* Container "app"'s currentState.startTime in view v. */
static const char *start_time(json_t *v)
{
    json_t *c = test_view_container(v, "app");
    return json_string_value(json_object_get(
        json_object_get(json_object_get(c, "instanceView"), "currentState"), "startTime"));
}

static void test_config_maps_in_place(void **state)
{
    fixture_t *f = *state;
    berth_placement_t p1, p2;
    char buf[256];
    place_ok(f, "sub/rg/cm", doc_config("{\"app.conf\": \"one\", \"old\": \"x\"}"), &p1);
    json_t *v1 = wait_running(f, "sub/rg/cm", "app");
    assert_int_equal(cat_in(f, "sub/rg/cm", "/mnt/configmap/app/app.conf", buf, sizeof buf), 0);
    assert_string_equal(buf, "one");
    assert_int_equal(cat_in(f, "sub/rg/cm", "/mnt/configmap/app/old", buf, sizeof buf), 0);
    assert_string_equal(buf, "x");
    char started[64];
    assert_non_null(start_time(v1));
    snprintf(started, sizeof started, "%s", start_time(v1));
    json_decref(v1);
    /* A new generation that changes the config maps alone: the running
     * container sees the new files, and is neither restarted nor made
     * anew. */
    place_ok(f, "sub/rg/cm", doc_config("{\"app.conf\": \"two\"}"), &p2);
    assert_string_equal(p1.host, p2.host);
    json_t *v = test_view_wait(&f->sched, "sub/rg/cm", at_generation_2, NULL, 10000,
                               "generation 2 running");
    assert_non_null(v);
    assert_int_equal(cat_in(f, "sub/rg/cm", "/mnt/configmap/app/app.conf", buf, sizeof buf), 0);
    assert_string_equal(buf, "two");
    assert_int_equal(cat_in(f, "sub/rg/cm", "/mnt/configmap/app/old", buf, sizeof buf), 1);
    assert_int_equal(test_view_restarts(v, "app"), 0);
    assert_false(test_view_has_event(v, "app", "Killing", NULL));
    assert_string_equal(start_time(v), started);
    json_decref(v);
    /* Anything else changing still makes the group anew. */
    char *d = doc(NULL, "Always", -1, 0, "other");
    place_ok(f, "sub/rg/cm", d, NULL);
    v = test_view_wait(&f->sched, "sub/rg/cm", at_generation_3, NULL, 10000,
                       "generation 3 running");
    assert_non_null(v);
    assert_true(test_view_has_event(v, "app", "Killing", NULL));
    json_decref(v);
    assert_int_equal(cat_in(f, "sub/rg/cm", "/mnt/configmap/app/app.conf", buf, sizeof buf), 1);
}

/* A document publishing 80/TCP and 53/UDP; `mode` tells revisions apart. */
static char *ports_doc(const char *mode)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\","
                 " \"ipAddress\": {\"type\": \"Public\", \"ports\": [{\"port\": 80},"
                 " {\"port\": 53, \"protocol\": \"UDP\"}]},"
                 " \"containers\": [{\"name\": \"app\", \"properties\": {\"image\":"
                 " \"busybox:latest\", \"ports\": [{\"port\": 80}, {\"port\": 53,"
                 " \"protocol\": \"UDP\"}], \"environmentVariables\": [{\"name\": \"MODE\","
                 " \"value\": \"%s\"}], \"resources\": {\"requests\": {\"cpu\": 0.5,"
                 " \"memoryInGB\": 0.5}}}}]}}",
                 mode) < 0)
        return NULL;
    return out;
}

/* The view's host port for `port`/`proto` (0: none). */
static json_int_t view_host_port(json_t *v, uint32_t port, const char *proto)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(v, "ipAddress"), "ports"), i, p)
    {
        if (json_integer_value(json_object_get(p, "port")) == port &&
            strcmp(json_string_value(json_object_get(p, "protocol")), proto) == 0) {
            assert_string_equal(json_string_value(json_object_get(p, "hostIp")), "127.0.0.1");
            return json_integer_value(json_object_get(p, "hostPort"));
        }
    }
    return 0;
}

/* Running at the generation `data` points to, with its ports published. */
static bool ports_published_at(json_t *v, void *data)
{
    return json_integer_value(json_object_get(v, "generation")) == *(json_int_t *)data &&
           test_pred_running(v, "app") && view_host_port(v, 80, "TCP") > 0 &&
           view_host_port(v, 53, "UDP") > 0;
}

static void test_host_ports_stable(void **state)
{
    fixture_t *f = *state;
    json_int_t gen = 1;
    place_ok(f, "sub/rg/ports", ports_doc("one"), NULL);
    json_t *v = test_view_wait(&f->sched, "sub/rg/ports", ports_published_at, &gen, 10000,
                               "ports published");
    assert_non_null(v);
    json_int_t tcp = view_host_port(v, 80, "TCP"), udp = view_host_port(v, 53, "UDP");
    json_decref(v);
    /* Another group gets host ports of its own. */
    place_ok(f, "sub/rg/other", ports_doc("one"), NULL);
    v = test_view_wait(&f->sched, "sub/rg/other", ports_published_at, &gen, 10000,
                       "the other group's ports published");
    assert_non_null(v);
    assert_int_not_equal(view_host_port(v, 80, "TCP"), tcp);
    json_decref(v);
    /* An update (a new runtime group on the same host) keeps them. */
    place_ok(f, "sub/rg/ports", ports_doc("two"), NULL);
    gen = 2;
    v = test_view_wait(&f->sched, "sub/rg/ports", ports_published_at, &gen, 10000,
                       "generation 2 with its ports");
    assert_non_null(v);
    assert_int_equal(view_host_port(v, 80, "TCP"), tcp);
    assert_int_equal(view_host_port(v, 53, "UDP"), udp);
    json_decref(v);
    /* Released (as a stop does) and placed again on this host: the same
     * host ports, though the simulator hands out new ones otherwise. */
    berth_error_t err;
    assert_int_equal(berth_store_release(f->sched.store, "sub/rg/ports", &err), 0);
    v = test_view_wait(&f->sched, "sub/rg/ports", test_pred_gone, NULL, 10000,
                       "the view dropped");
    assert_non_null(v);
    json_decref(v);
    place_ok(f, "sub/rg/ports", ports_doc("two"), NULL);
    gen = 1;
    v = test_view_wait(&f->sched, "sub/rg/ports", ports_published_at, &gen, 10000,
                       "placed again with its ports");
    assert_non_null(v);
    assert_int_equal(view_host_port(v, 80, "TCP"), tcp);
    assert_int_equal(view_host_port(v, 53, "UDP"), udp);
    json_decref(v);
    /* Nothing was taken, so nothing says so. */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "grep -q 'was taken' '%s'", f->agent.log_path);
    assert_int_not_equal(system(cmd), 0);
}

static bool restarted_once(json_t *v, void *data)
{
    return test_view_restarts(v, "app") == 1 && test_pred_running(v, "app");
}

static void test_restart_request(void **state)
{
    fixture_t *f = *state;
    place_ok(f, "sub/rg/rs", doc(NULL, "Always", -1, 0, NULL), NULL);
    json_decref(wait_running(f, "sub/rg/rs", "app"));
    berth_error_t err;
    assert_int_equal(berth_store_group_restart(f->sched.store, "sub/rg/rs", &err), 0);
    json_t *v = test_view_wait(&f->sched, "sub/rg/rs", restarted_once, NULL, 10000,
                               "one restart");
    assert_non_null(v);
    assert_true(test_view_has_event(v, "app", "Killing", NULL));
    json_decref(v);
    assert_int_equal(berth_store_group_restart(f->sched.store, "sub/rg/none", &err),
                     BERTH_ENOENT);
}

static void test_release_removes(void **state)
{
    fixture_t *f = *state;
    place_ok(f, "sub/rg/gone", doc(NULL, "Always", -1, 0, NULL), NULL);
    json_decref(wait_running(f, "sub/rg/gone", "app"));
    berth_error_t err;
    assert_int_equal(berth_store_release(f->sched.store, "sub/rg/gone", &err), 0);
    json_t *v = test_view_wait(&f->sched, "sub/rg/gone", test_pred_gone, NULL, 10000,
                               "the view dropped");
    assert_non_null(v);
    json_decref(v);
    /* Its stream entries were acknowledged and dropped (the agent drops the
     * view first, then acknowledges). */
    redisContext *c = berth_test_redis_connect(redis);
    char key[128];
    snprintf(key, sizeof key, "berth:{%s}:assign:sim-1", f->cell);
    long long len = -1;
    for (int64_t end = test_now_ms() + test_deadline_ms(5000); test_now_ms() < end;) {
        redisReply *r = redisCommand(c, "XLEN %s", key);
        len = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        freeReplyObject(r);
        if (len == 0)
            break;
        test_sleep_ms(50);
    }
    assert_int_equal(len, 0);
    redisFree(c);
}

static bool failed(json_t *v, void *data)
{
    const char *ps = json_string_value(json_object_get(v, "provisioningState"));
    return ps != NULL && strcmp(ps, "Failed") == 0;
}

static void test_pull_failure(void **state)
{
    fixture_t *f = *state;
    place_ok(f, "sub/rg/bad", doc("bad/image:1", "Always", -1, 0, NULL), NULL);
    json_t *v = test_view_wait(&f->sched, "sub/rg/bad", failed, NULL, 10000, "Failed");
    assert_non_null(v);
    assert_string_equal(test_view_group_state(v), "Failed");
    assert_true(test_view_has_event(v, NULL, "Failed", "could not be pulled"));
    assert_true(test_view_has_event(v, "app", "Failed", "Failed to pull image"));
    json_decref(v);
}

/* Waits (at most 5 s) until the agent acknowledged every assignment of
 * its stream (XPENDING counts none), asserting it does. */
static void assert_nothing_pending(fixture_t *f, redisContext *c)
{
    assert_non_null(c);
    char key[128];
    snprintf(key, sizeof key, "berth:{%s}:assign:sim-1", f->cell);
    int64_t end = test_now_ms() + test_deadline_ms(5000);
    long long pending = -1;
    while (test_now_ms() < end) {
        redisReply *r = redisCommand(c, "XPENDING %s agents", key);
        pending = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0
            ? r->element[0]->integer : -1;
        freeReplyObject(r);
        if (pending == 0)
            break;
        test_sleep_ms(50);
    }
    assert_int_equal(pending, 0);
}

static void test_agent_crash_recovers(void **state)
{
    fixture_t *f = *state;
    place_ok(f, "sub/rg/before", doc(NULL, "Always", -1, 0, NULL), NULL);
    json_decref(wait_running(f, "sub/rg/before", "app"));
    test_agent_kill(&f->agent);
    /* Work queued while the agent is down. */
    place_ok(f, "sub/rg/during", doc(NULL, "Always", -1, 0, NULL), NULL);
    place_ok(f, "sub/rg/before", doc(NULL, "Always", -1, 0, "changed"), NULL);
    assert_int_equal(test_agent_start(&f->agent, redis->url, f->cell, "sim-1", "sim",
                                      SIM_CONFIG, FAST), 0);
    json_decref(wait_running(f, "sub/rg/during", "app"));
    json_t *v = test_view_wait(&f->sched, "sub/rg/before", at_generation_2, NULL, 10000,
                               "generation 2 running");
    assert_non_null(v);
    json_decref(v);
    redisContext *c = berth_test_redis_connect(redis);
    assert_nothing_pending(f, c);
    redisFree(c);
}

/* Whether the agent's log holds `text`. */
static bool log_has(fixture_t *f, const char *text)
{
    FILE *fp = fopen(f->agent.log_path, "r");
    if (fp == NULL)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, fp) != NULL)
        found = strstr(line, text) != NULL;
    fclose(fp);
    return found;
}

/* Redis answers the command with OK, a status or an integer. */
static void redis_ok(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    bool ok = r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_INTEGER;
    if (!ok)
        fprintf(stderr, "redis answered %d: %s\n", r->type, r->str != NULL ? r->str : "");
    freeReplyObject(r);
    assert_true(ok);
}

/* An assignment whose group record cannot be read when the agent takes
 * it (Redis went away in between, here: the cell's groups key briefly of
 * the wrong type) is worked again once the record can be read: the group
 * runs without another assignment and without a restart of the agent,
 * and its entry is acknowledged. */
static void test_unreadable_record_retried(void **state)
{
    fixture_t *f = *state;
    place_ok(f, "sub/rg/first", doc(NULL, "Always", -1, 0, NULL), NULL);
    json_decref(wait_running(f, "sub/rg/first", "app"));
    redisContext *c = berth_test_redis_connect(redis);
    assert_non_null(c);
    /* Placed while the agent is stopped, so that the record is broken
     * before the agent reads the assignment. */
    assert_int_equal(kill(f->agent.pid, SIGSTOP), 0);
    place_ok(f, "sub/rg/second", doc(NULL, "Always", -1, 0, NULL), NULL);
    redis_ok(c, "RENAME berth:{%s}:groups berth:{%s}:groups-kept", f->cell, f->cell);
    redis_ok(c, "SET berth:{%s}:groups broken", f->cell);
    assert_int_equal(kill(f->agent.pid, SIGCONT), 0);
    int64_t end = test_now_ms() + test_deadline_ms(10000);
    while (!log_has(f, "record unreadable") && test_now_ms() < end)
        test_sleep_ms(50);
    bool seen = log_has(f, "record unreadable");
    redis_ok(c, "DEL berth:{%s}:groups", f->cell);
    redis_ok(c, "RENAME berth:{%s}:groups-kept berth:{%s}:groups", f->cell, f->cell);
    if (!seen)
        test_agent_dump(&f->agent, 30);
    assert_true(seen);
    json_decref(wait_running(f, "sub/rg/second", "app"));
    assert_nothing_pending(f, c);
    redisFree(c);
}

static void expire_cb(const char *host, const char *key, const char *new_host, int status,
                      void *data)
{
    char *moved_to = data;
    if (key != NULL && status == 0)
        snprintf(moved_to, 64, "%s", new_host);
}

static bool on_sim_2(json_t *v, void *data)
{
    const char *h = json_string_value(json_object_get(v, "host"));
    return h != NULL && strcmp(h, "sim-2") == 0 && test_pred_running(v, "app");
}

/* An agent that stops heartbeating: its host is marked down and its
 * Always group moves to the other host; its Never group stays; the agent's
 * return makes the host ready again. */
static void test_host_expiry(void **state)
{
    fixture_t *f = *state;
    berth_placement_t p;
    place_ok(f, "sub/rg/mover", doc(NULL, "Always", -1, 0, NULL), &p);
    place_ok(f, "sub/rg/stayer", doc(NULL, "Never", -1, 0, NULL), NULL);
    assert_string_equal(p.host, "sim-1");
    json_decref(wait_running(f, "sub/rg/mover", "app"));
    test_agent_t second;
    assert_int_equal(test_agent_start(&second, redis->url, f->cell, "sim-2", "sim", SIM_CONFIG,
                                      FAST), 0);
    assert_true(test_sched_wait_host(&f->sched, "sim-2", 10000));
    berth_error_t err;
    char moved_to[64] = "";
    /* Both alive: nothing changes. */
    assert_int_equal(berth_store_hosts_expire(f->sched.store, expire_cb, moved_to, &err), 0);
    test_agent_kill(&f->agent);
    test_sleep_ms(2300);                /* past the 2 s heartbeat TTL */
    int changes = berth_store_hosts_expire(f->sched.store, expire_cb, moved_to, &err);
    assert_int_equal(changes, 2);       /* the host down, one group moved */
    assert_string_equal(moved_to, "sim-2");
    berth_host_t h;
    assert_int_equal(berth_engine_host_get(f->sched.engine, "sim-1", &h, NULL), 0);
    assert_int_equal(h.state, BERTH_HOST_DOWN);
    json_t *v = test_view_wait(&f->sched, "sub/rg/mover", on_sim_2, NULL, 10000,
                               "running on sim-2");
    assert_non_null(v);
    json_decref(v);
    berth_placement_t q;
    assert_int_equal(berth_engine_group_get(f->sched.engine, "sub/rg/stayer", &q), 0);
    assert_string_equal(q.host, "sim-1");
    /* The agent returns: its host is ready again. */
    assert_int_equal(test_agent_start(&f->agent, redis->url, f->cell, "sim-1", "sim",
                                      SIM_CONFIG, FAST), 0);
    assert_true(test_sched_wait_host(&f->sched, "sim-1", 10000));
    assert_int_equal(berth_store_fsck(f->sched.store, NULL, NULL, &err), 0);
    assert_int_equal(test_agent_stop(&second), 0);
    unlink(second.log_path);
}

/* Starts the fixture's agent again with a heartbeat lifetime of `ttl_ms`,
 * uncached images taking `pull_ms` to pull, and `--stall-ms stall_ms`. */
static void agent_restart_slow(fixture_t *f, int ttl_ms, int pull_ms, int stall_ms)
{
    assert_int_equal(test_agent_stop(&f->agent), 0);
    unlink(f->agent.log_path);
    char config[160], ttl[16], stall[16];
    snprintf(config, sizeof config,
             "{\"images\": [\"busybox:latest\"], \"pull_latency_ms\": %d}", pull_ms);
    snprintf(ttl, sizeof ttl, "%d", ttl_ms);
    snprintf(stall, sizeof stall, "%d", stall_ms);
    const char *const args[] = {"--cores", "8", "--memory-mib", "16384", "--tick-ms", "50",
                                "--heartbeat-ms", "200", "--ttl-ms", ttl, "--stall-ms", stall,
                                NULL};
    assert_int_equal(test_agent_start(&f->agent, redis->url, f->cell, "sim-1", "sim", config,
                                      args), 0);
    assert_true(test_sched_wait_host(&f->sched, "sim-1", 10000));
}

/* A pull three times longer than the heartbeat's lifetime: the heartbeat
 * goes on (its own thread), so the host is never marked down. */
static void test_heartbeat_during_pull(void **state)
{
    fixture_t *f = *state;
    int ttl = test_deadline_ms(1000);
    agent_restart_slow(f, ttl, 3 * ttl, 900000);
    place_ok(f, "sub/rg/slow", doc("slow/app:1", "Never", -1, 0, NULL), NULL);
    berth_error_t err;
    int64_t end = test_now_ms() + test_deadline_ms(15000) + 3 * ttl;
    bool running = false;
    int sweeps = 0;
    while (!running && test_now_ms() < end) {
        assert_int_equal(berth_store_hosts_expire(f->sched.store, NULL, NULL, &err), 0);
        sweeps++;
        json_t *v = test_view(&f->sched, "sub/rg/slow");
        running = test_pred_running(v, "app");
        if (running)
            assert_true(test_view_has_event(v, "app", "Pulled", "Successfully pulled image"));
        json_decref(v);
        test_sleep_ms(100);
    }
    assert_true(running);
    assert_true(sweeps >= 3 * ttl / 100 - 5);   /* swept all through the pull */
    berth_host_t h;
    assert_int_equal(berth_engine_host_get(f->sched.engine, "sim-1", &h, NULL), 0);
    assert_int_equal(h.state, BERTH_HOST_READY);
}

/* A loop stuck past --stall-ms (here: in a pull) withholds the heartbeat,
 * so the host is marked down; once the loop turns again the heartbeat
 * resumes and the host is ready again. */
static void test_stall_withholds_heartbeat(void **state)
{
    fixture_t *f = *state;
    int ttl = 1000, stall = test_deadline_ms(1500);
    agent_restart_slow(f, ttl, stall + ttl + 3000, stall);
    place_ok(f, "sub/rg/stuck", doc("slow/app:2", "Never", -1, 0, NULL), NULL);
    berth_error_t err;
    int64_t t0 = test_now_ms(), end = t0 + stall + ttl + 3000;
    int changes = 0;
    while (changes == 0 && test_now_ms() < end) {
        changes = berth_store_hosts_expire(f->sched.store, NULL, NULL, &err);
        assert_true(changes >= 0);
        if (changes == 0)
            test_sleep_ms(50);
    }
    assert_int_equal(changes, 1);       /* the host down; its Never group stays */
    assert_true(test_now_ms() - t0 >= stall);
    berth_host_t h;
    assert_int_equal(berth_engine_host_get(f->sched.engine, "sim-1", &h, NULL), 0);
    assert_int_equal(h.state, BERTH_HOST_DOWN);
    assert_true(test_sched_wait_host(&f->sched, "sim-1", 10000 + stall + ttl + 3000));
    json_decref(wait_running(f, "sub/rg/stuck", "app"));
    assert_true(test_file_contains(f->agent.log_path, "heartbeat withheld"));
    assert_true(test_file_contains(f->agent.log_path, "heartbeat resumed"));
}

/* ---- supervision of settled groups ----------------------------------------------- */

/* Milliseconds since the epoch of a view's timestamp
 * (YYYY-MM-DDTHH:MM:SS.mmmZ), or -1. */
static int64_t view_time_ms(const char *t)
{
    struct tm tm = {0};
    int ms = 0;
    if (t == NULL || sscanf(t, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static bool restarted_once_running(json_t *v, void *data)
{
    return test_view_restarts(v, "app") >= 1 && test_pred_running(v, "app");
}

/* The fixture's agent again with FAST's settings and `--sweep-ms sweep`. */
static void agent_restart_sweep(fixture_t *f, const char *sweep)
{
    assert_int_equal(test_agent_stop(&f->agent), 0);
    unlink(f->agent.log_path);
    const char *const args[] = {"--cores", "8", "--memory-mib", "16384", "--tick-ms", "50",
                                "--heartbeat-ms", "200", "--ttl-ms", "2000",
                                "--backoff-initial-ms", "100", "--backoff-max-ms", "400",
                                "--sweep-ms", sweep, NULL};
    assert_int_equal(test_agent_start(&f->agent, redis->url, f->cell, "sim-1", "sim",
                                      SIM_CONFIG, args), 0);
    assert_true(test_sched_wait_host(&f->sched, "sim-1", 10000));
}

/* A group that has settled among six others (so the agent steps it only
 * when its sweep comes by, one group a tick) crashes: the
 * crash is noticed within --sweep-ms and the container restarted after its
 * back-off, the time between the two measured on the runtime's clock. */
static void test_settled_crash_restarted(void **state)
{
    fixture_t *f = *state;
    const int sweep = 600, tick = 50, backoff = 100;
    agent_restart_sweep(f, "600");
    for (int i = 0; i < 6; i++) {      /* the host's 8 cores take 8 groups */
        char key[32];
        snprintf(key, sizeof key, "sub/rg/calm%02d", i);
        place_ok(f, key, doc(NULL, "Always", -1, 0, NULL), NULL);
    }
    json_decref(wait_running(f, "sub/rg/calm05", "app"));
    /* Long enough to settle: provisioning Succeeded after a tick or two. */
    place_ok(f, "sub/rg/crash", doc(NULL, "OnFailure", 2000, 3, NULL), NULL);
    json_t *v = wait_running(f, "sub/rg/crash", "app");
    assert_int_equal(test_view_restarts(v, "app"), 0);
    json_decref(v);
    v = test_view_wait(&f->sched, "sub/rg/crash", restarted_once_running, NULL, 10000,
                       "restarted after its crash");
    assert_non_null(v);
    assert_true(test_view_has_event(v, "app", "BackOff", NULL));
    json_t *iv = json_object_get(test_view_container(v, "app"), "instanceView");
    json_t *prev = json_object_get(iv, "previousState");
    assert_int_equal(json_integer_value(json_object_get(prev, "exitCode")), 3);
    int64_t crashed = view_time_ms(json_string_value(json_object_get(prev, "finishTime")));
    int64_t restarted = view_time_ms(json_string_value(
        json_object_get(json_object_get(iv, "currentState"), "startTime")));
    assert_true(crashed > 0 && restarted > crashed);
    /* Noticed by the sweep within --sweep-ms, restarted at the first tick
     * after the back-off; the loop's own work on top. */
    int64_t bound = sweep + backoff + 2 * tick + test_deadline_ms(300);
    if (restarted - crashed > bound)
        fprintf(stderr, "restarted %lld ms after the crash (bound %lld)\n",
                (long long)(restarted - crashed), (long long)bound);
    assert_true(restarted - crashed <= bound);
    json_decref(v);
    /* Every other group kept running, untouched. */
    v = test_view(&f->sched, "sub/rg/calm00");
    assert_true(test_pred_running(v, "app"));
    assert_int_equal(test_view_restarts(v, "app"), 0);
    json_decref(v);
}

/* Counts, for window_ms, the commands Redis runs that write `key`'s view
 * (FCALL berth_view_put naming it), through MONITOR on a connection of
 * its own.  With `restart`, asks for the group's restart once MONITOR
 * listens (a change the view shows). */
static int view_writes_seen(fixture_t *f, const char *key, int window_ms, bool restart)
{
    redisContext *c = berth_test_redis_connect(redis);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "MONITOR");
    assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    berth_error_t err;
    if (restart)
        assert_int_equal(berth_store_group_restart(f->sched.store, key, &err), 0);
    char quoted[128];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    int writes = 0;
    int64_t end = test_now_ms() + window_ms;
    for (;;) {
        void *reply = NULL;
        while (redisGetReplyFromReader(c, &reply) == REDIS_OK && reply != NULL) {
            redisReply *m = reply;
            if (m->type == REDIS_REPLY_STATUS && strstr(m->str, "\"berth_view_put\"") != NULL &&
                strstr(m->str, quoted) != NULL)
                writes++;
            freeReplyObject(m);
            reply = NULL;
        }
        int64_t left = end - test_now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) > 0)
            assert_int_equal(redisBufferRead(c), REDIS_OK);
    }
    redisFree(c);
    return writes;
}

/* A settled group whose runtime state does not change: its view is not
 * written again over several sweeps, and reads the same. */
static void test_settled_view_not_rewritten(void **state)
{
    fixture_t *f = *state;
    agent_restart_sweep(f, "300");
    place_ok(f, "sub/rg/quiet", doc(NULL, "Always", -1, 0, NULL), NULL);
    json_t *before = wait_running(f, "sub/rg/quiet", "app");
    assert_int_equal(view_writes_seen(f, "sub/rg/quiet", 1200, false), 0);  /* 4 sweeps */
    json_t *after = test_view(&f->sched, "sub/rg/quiet");
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    /* What it shows changes (a restart: events, restart count, a new
     * run): the view is written, and MONITOR sees it. */
    assert_true(view_writes_seen(f, "sub/rg/quiet", test_deadline_ms(1500), true) >= 1);
    json_t *v = test_view_wait(&f->sched, "sub/rg/quiet", restarted_once_running, NULL, 10000,
                               "restarted");
    assert_non_null(v);
    json_decref(v);
}

/* berth-agent with `args` (shell words, no quoting needed): its exit status,
 * and the start of what it printed in out. */
static int agent_run(const char *args, char *out, size_t cap)
{
    const char *b = getenv("top_builddir");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "timeout 30 %s/tools/berth-agent/berth-agent %s 2>&1 </dev/null",
             b != NULL ? b : ".", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Bad options: exit status 2 and a message naming the option, and nothing
 * registered in any cell. */
static void test_usage_errors(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"--plugin sim", "--host is required"},
        {"--host h1", "--plugin is required"},
        {"--host h1 --plugin sim --heartbeat-ms 1000 --ttl-ms 1000", "--ttl-ms must exceed"},
        {"--host h1 --plugin sim --heartbeat-ms 0", "--ttl-ms must exceed --heartbeat-ms"},
        {"--host h1 --plugin sim --ttl-ms 10000 --stall-ms 10000", "--stall-ms must exceed"},
        {"--host h1 --plugin sim --stall-ms soon", "--stall-ms: expected a non-negative"},
        {"--host h1 --plugin sim --tick-ms 0", "--tick-ms: expected 1 to 2000"},
        {"--host h1 --plugin sim --tick-ms 500 --sweep-ms 400", "--sweep-ms: expected --tick-ms"},
        {"--host h1 --plugin sim --gpu-count 64", "--gpu-count: expected 0 to 63"},
        {"--host h1 --plugin sim --gpu-sku K80", "--gpu-sku needs --gpu-count"},
        {"--host h1 --plugin sim --frobnicate", "unknown or incomplete option '--frobnicate'"},
    };
    char out[2048];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[512];
        snprintf(args, sizeof args, "%s --redis unix:///nonexistent/berth.sock", cases[i][0]);
        int rc = agent_run(args, out, sizeof out);
        if (rc != 2 || strstr(out, cases[i][1]) == NULL)
            fprintf(stderr, "berth-agent %s: exit %d, said: %s\n", args, rc, out);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out, cases[i][1]));
    }
    assert_int_equal(agent_run("--help", out, sizeof out), 0);
    assert_non_null(strstr(out, "--stall-ms N"));
}

/* ---- a fleet ------------------------------------------------------------------ */

#define FLEET_MAX 500

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    long kib = -1;
    while (fp != NULL && fgets(line, sizeof line, fp) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (fp != NULL)
        fclose(fp);
    return kib;
}

/* 60 agents and 120 groups, or $BERTH_TEST_FLEET agents (at most 500)
 * and twice as many groups. */
static void test_fleet(void **state)
{
    static test_agent_t agents[FLEET_MAX];
    const char *env = getenv("BERTH_TEST_FLEET");
    int FLEET = env != NULL ? atoi(env) : 60;
    FLEET = FLEET < 1 ? 1 : FLEET > FLEET_MAX ? FLEET_MAX : FLEET;
    const int FLEET_GROUPS = 2 * FLEET;
    test_sched_t sched;
    assert_int_equal(test_sched_open(&sched, redis->url, "fleet"), 0);
    const char *const extra[] = {"--cores", "4", "--memory-mib", "8192", "--tick-ms", "250",
                                 NULL};
    for (int i = 0; i < FLEET; i++) {
        char host[32];
        snprintf(host, sizeof host, "fleet-%02d", i);
        assert_int_equal(test_agent_start(&agents[i], redis->url, "fleet", host, "sim",
                                          "{\"start_latency_ms\": 20}", extra), 0);
    }
    for (int i = 0; i < FLEET; i++)
        assert_true(test_sched_wait_host(&sched, agents[i].host, 30000 + 100 * FLEET));
    int64_t t0 = test_now_ms();
    for (int i = 0; i < FLEET_GROUPS; i++) {
        char key[32];
        snprintf(key, sizeof key, "fleet/g%04d", i);
        char *d = doc(NULL, "Always", -1, 0, NULL);
        assert_int_equal(test_sched_place(&sched, key, d, NULL), 0);
        free(d);
    }
    int running = 0;
    int64_t end = test_now_ms() + 60000 + 200 * FLEET;
    while (running < FLEET_GROUPS && test_now_ms() < end) {
        running = 0;
        for (int i = 0; i < FLEET_GROUPS; i++) {
            char key[32];
            snprintf(key, sizeof key, "fleet/g%04d", i);
            json_t *v = test_view(&sched, key);
            running += test_pred_running(v, "app");
            json_decref(v);
        }
        if (running < FLEET_GROUPS)
            test_sleep_ms(200);
    }
    int64_t took = test_now_ms() - t0;
    long max_rss = 0;
    for (int i = 0; i < FLEET; i++) {
        long k = rss_kib(agents[i].pid);
        max_rss = k > max_rss ? k : max_rss;
    }
    fprintf(stderr, "fleet: %d agents, %d/%d groups running after %lld ms, largest agent "
            "RSS %ld KiB\n", FLEET, running, FLEET_GROUPS, (long long)took, max_rss);
    for (int i = 0; i < FLEET; i++) {
        assert_int_equal(test_agent_stop(&agents[i]), 0);
        unlink(agents[i].log_path);
    }
    test_sched_close(&sched);
    assert_int_equal(running, FLEET_GROUPS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_record_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_containers_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_failure_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_stays_terminated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_failure_clean_exit_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_shown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_maps_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_ports_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_removes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_crash_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_during_pull, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stall_withholds_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_crash_restarted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_view_not_rewritten, setup, teardown),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_fleet),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
