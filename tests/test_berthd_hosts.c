/*
 * test_berthd_hosts.c: berthd's operator routes on one host end to end --
 * GET /berth/hosts/{host}, POST .../cordon, /uncordon and /drain -- with a
 * real redis-server (tests/redis-harness.c), a berthd
 * (tests/berthd-harness.c) and two berth-agents with the simulator plugin
 * (tests/agent-harness.c), "sim-1" and "sim-2" with 4 cores each, in one
 * cell per test.
 *
 * Covers: a cordoned host takes no new group and uncordoned takes them
 * again; a drain moves every group to the other host (each runs there and
 * the old host ends empty and cordoned); a group that fits nowhere stays
 * and is reported with the reason; bad names, unknown hosts and methods;
 * tokens (a tenant's token, without '*', gets 403 reading or acting; none
 * 401).  Every wait is bounded;
 * every process started is stopped.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "agent-harness.h"
#include "berthd-harness.h"
#include "redis-harness.h"

#define SUB "0000-sub-1"
#define APIV "2023-05-01"
#define WAIT_MS 15000

static int cell_counter;

typedef struct fixture {
    char cell[32];
    test_agent_t agents[2];
    int nagents;
    test_berthd_t d;
    bool d_running;
    const char *token;              /* sent with every request, or NULL     */
} fixture_t;

static int agent_start(fixture_t *f, const char *host)
{
    const char *args[] = {"--cores", "4", "--memory-mib", "65536", "--tick-ms", "50",
                          "--heartbeat-ms", "200", "--ttl-ms", "10000", NULL};
    test_agent_t *a = &f->agents[f->nagents];
    if (test_agent_start(a, berth_test_redis_group->url, f->cell, host, "sim",
                         "{\"images\": [\"busybox:latest\"], \"start_latency_ms\": 50}",
                         args) != 0)
        return -1;
    f->nagents++;
    return 0;
}

static int berthd_start(fixture_t *f, const char *tokens)
{
    const char *args[] = {"--redis", berth_test_redis_group->url, "--cell", f->cell,
                          tokens ? "--tokens" : NULL, tokens, NULL};
    if (test_berthd_start(&f->d, false, args) != 0)
        return -1;
    f->d_running = true;
    return 0;
}

static test_http_t http(fixture_t *f, const char *method, const char *path, const char *body)
{
    return test_http_send(&f->d, method, path, body, f->token);
}

/* A bodiless request whose answer must have `status`. */
static void expect_status(fixture_t *f, const char *method, const char *path, long status)
{
    test_http_t h = http(f, method, path, NULL);
    assert_int_equal(h.status, status);
    test_http_free(&h);
}

static char *gpath(const char *name)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/rg/providers/"
                 "Microsoft.ContainerInstance/containerGroups/%s?api-version=" APIV,
                 name) < 0)
        abort();
    return p;
}

static char *gid(const char *name)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/rg/providers/"
                 "Microsoft.ContainerInstance/containerGroups/%s",
                 name) < 0)
        abort();
    return p;
}

static void put_group(fixture_t *f, const char *name, int cpu)
{
    char *p = gpath(name);
    char *doc = NULL;
    if (asprintf(&doc,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
                 "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": "
                 "\"busybox:latest\", \"resources\": {\"requests\": {\"cpu\": %d, "
                 "\"memoryInGB\": 1}}}}]}}",
                 cpu) < 0)
        abort();
    test_http_t h = http(f, "PUT", p, doc);
    if (h.status != 201)
        fprintf(stderr, "PUT %s: %ld %s\n", name, h.status, h.body);
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    free(doc);
    free(p);
}

/* POST /berth/hosts/{host}/{action}: the answer (status checked). */
static json_t *host_post(fixture_t *f, const char *host, const char *action, long status)
{
    char path[128];
    snprintf(path, sizeof path, "/berth/hosts/%s/%s", host, action);
    test_http_t h = http(f, "POST", path, "");
    if (h.status != status)
        fprintf(stderr, "POST %s: %ld %s\n", path, h.status, h.body);
    assert_int_equal(h.status, status);
    json_t *j = json_incref(h.json);
    test_http_free(&h);
    return j;
}

/* GET /berth/hosts/{host} (200 expected). */
static json_t *host_get(fixture_t *f, const char *host)
{
    char path[128];
    snprintf(path, sizeof path, "/berth/hosts/%s", host);
    test_http_t h = http(f, "GET", path, NULL);
    assert_int_equal(h.status, 200);
    json_t *j = json_incref(h.json);
    test_http_free(&h);
    return j;
}

/* Whether the host's groups (its GET) list the group `name`. */
static bool host_has(fixture_t *f, const char *host, const char *name)
{
    json_t *j = host_get(f, host);
    char *id = gid(name);
    bool found = false;
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(j, "groups"), i, g)
        found = found || strcmp(json_string_value(g), id) == 0;
    free(id);
    json_decref(j);
    return found;
}

static const char *jstr(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

/* Waits until the group's container runs on `host` (the agent's view). */
static bool wait_running_on(fixture_t *f, const char *name, const char *host)
{
    char *p = gpath(name);
    bool ok = false;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (!ok && test_now_ms() < end) {
        test_http_t h = http(f, "GET", p, NULL);
        json_t *props = json_object_get(h.json, "properties");
        json_t *c = json_array_get(json_object_get(props, "containers"), 0);
        json_t *st = json_object_get(
            json_object_get(json_object_get(c, "properties"), "instanceView"), "currentState");
        ok = h.status == 200 && strcmp(jstr(props, "provisioningState"), "Succeeded") == 0 &&
             strcmp(jstr(st, "state"), "Running") == 0 && host_has(f, host, name);
        if (!ok && test_now_ms() + 150 >= end)
            fprintf(stderr, "group %s never ran on %s: %s\n", name, host, h.body);
        test_http_free(&h);
        if (!ok)
            test_sleep_ms(100);
    }
    free(p);
    return ok;
}

static bool wait_hosts(fixture_t *f, size_t n)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (test_now_ms() < end) {
        test_http_t h = http(f, "GET", "/berth/hosts", NULL);
        size_t got = json_array_size(json_object_get(h.json, "value"));
        test_http_free(&h);
        if (got >= n)
            return true;
        test_sleep_ms(50);
    }
    return false;
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static int setup_with(void **state, const char *tokens, const char *token)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->token = token;
    snprintf(f->cell, sizeof f->cell, "bh-%d-%d", (int)getpid() % 10000, ++cell_counter);
    if (berthd_start(f, tokens) != 0 || agent_start(f, "sim-1") != 0 ||
        agent_start(f, "sim-2") != 0 || !wait_hosts(f, 2)) {
        if (f->d_running) {
            test_berthd_dump(&f->d, 30);
            test_berthd_kill(&f->d);
        }
        for (int i = 0; i < f->nagents; i++) {
            test_agent_dump(&f->agents[i], 20);
            test_agent_kill(&f->agents[i]);
        }
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL, NULL);
}

static char tokens_file[] = "/tmp/berthd-hosts-tokens-XXXXXX";

static int setup_tokens(void **state)
{
    int fd = mkstemp(tokens_file);
    if (fd < 0)
        return -1;
    const char *lines = "tok-sub-0123456789 " SUB "\ntok-all-0123456789 *\n";
    ssize_t w = write(fd, lines, strlen(lines));
    close(fd);
    if (w != (ssize_t)strlen(lines))
        return -1;
    return setup_with(state, tokens_file, "tok-all-0123456789");
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = 0;
    if (f->d_running) {
        int st = test_berthd_stop(&f->d);
        if (st != 0) {
            fprintf(stderr, "berthd exited with %d\n", st);
            test_berthd_dump(&f->d, 40);
            rc = -1;
        } else {
            unlink(f->d.log_path);
        }
    }
    for (int i = 0; i < f->nagents; i++) {
        test_agent_stop(&f->agents[i]);
        unlink(f->agents[i].log_path);
    }
    free(f);
    return rc;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_cordon_uncordon(void **state)
{
    fixture_t *f = *state;
    json_t *j = host_post(f, "sim-1", "cordon", 200);
    assert_string_equal(jstr(j, "state"), "cordoned");
    json_decref(j);
    j = host_get(f, "sim-1");
    assert_string_equal(jstr(j, "state"), "cordoned");
    json_decref(j);
    /* every new group lands on sim-2 */
    put_group(f, "c1", 1);
    put_group(f, "c2", 1);
    put_group(f, "c3", 1);
    assert_true(wait_running_on(f, "c1", "sim-2"));
    assert_true(wait_running_on(f, "c2", "sim-2"));
    assert_true(wait_running_on(f, "c3", "sim-2"));
    j = host_get(f, "sim-1");
    assert_int_equal(json_array_size(json_object_get(j, "groups")), 0);
    json_decref(j);
    /* uncordoned (and sim-2 cordoned), sim-1 takes the next one */
    j = host_post(f, "sim-1", "uncordon", 200);
    assert_string_equal(jstr(j, "state"), "ready");
    json_decref(j);
    json_decref(host_post(f, "sim-2", "cordon", 200));
    put_group(f, "c4", 1);
    assert_true(wait_running_on(f, "c4", "sim-1"));
    /* cordoning twice is fine; the groups already there stay */
    json_decref(host_post(f, "sim-2", "cordon", 200));
    assert_true(host_has(f, "sim-2", "c1"));
}

static void test_drain_moves_all(void **state)
{
    fixture_t *f = *state;
    json_decref(host_post(f, "sim-2", "cordon", 200));
    put_group(f, "d1", 1);
    put_group(f, "d2", 2);
    assert_true(wait_running_on(f, "d1", "sim-1"));
    assert_true(wait_running_on(f, "d2", "sim-1"));
    json_decref(host_post(f, "sim-2", "uncordon", 200));
    char path[] = "/berth/hosts/sim-1/drain";
    test_http_t h = http(f, "POST", path, "");
    assert_int_equal(h.status, 202);
    char *loc = test_http_header(&h, "Location");
    assert_non_null(loc);
    assert_string_equal(loc, "/berth/hosts/sim-1");
    free(loc);
    assert_string_equal(jstr(h.json, "state"), "cordoned");
    assert_int_equal(json_array_size(json_object_get(h.json, "moved")), 2);
    assert_int_equal(json_array_size(json_object_get(h.json, "remaining")), 0);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(h.json, "moved"), i, m)
        assert_string_equal(jstr(m, "host"), "sim-2");
    assert_null(strstr(h.body, SUB "/rg/"));        /* no store key shown */
    test_http_free(&h);
    json_t *j = host_get(f, "sim-1");
    assert_string_equal(jstr(j, "state"), "cordoned");
    assert_int_equal(json_array_size(json_object_get(j, "groups")), 0);
    json_decref(j);
    assert_true(wait_running_on(f, "d1", "sim-2"));
    assert_true(wait_running_on(f, "d2", "sim-2"));
    /* draining again: nothing left to do */
    j = host_post(f, "sim-1", "drain", 202);
    assert_int_equal(json_array_size(json_object_get(j, "moved")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "remaining")), 0);
    json_decref(j);
}

/* A finished group (restart policy Never, its container exited) is not
 * run again elsewhere: the drain stops it, which frees the host, and its
 * resource says Stopped; a running one beside it moves. */
static void test_drain_stops_finished(void **state)
{
    fixture_t *f = *state;
    json_decref(host_post(f, "sim-2", "cordon", 200));
    char *p = gpath("done");
    test_http_t h = http(f, "PUT", p,
                         "{\"location\": \"westeurope\", \"properties\": {\"osType\": "
                         "\"Linux\", \"restartPolicy\": \"Never\", \"containers\": [{\"name\": "
                         "\"app\", \"properties\": {\"image\": \"busybox:latest\", "
                         "\"environmentVariables\": [{\"name\": \"BERTH_SIM_EXIT_AFTER_MS\", "
                         "\"value\": \"100\"}], \"resources\": {\"requests\": {\"cpu\": 1, "
                         "\"memoryInGB\": 1}}}}]}}");
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    put_group(f, "live", 1);
    assert_true(wait_running_on(f, "live", "sim-1"));
    /* Wait until the finished group's container terminated. */
    bool terminated = false;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (!terminated && test_now_ms() < end) {
        h = http(f, "GET", p, NULL);
        json_t *c = json_array_get(
            json_object_get(json_object_get(h.json, "properties"), "containers"), 0);
        json_t *st = json_object_get(
            json_object_get(json_object_get(c, "properties"), "instanceView"), "currentState");
        terminated = strcmp(jstr(st, "state"), "Terminated") == 0;
        test_http_free(&h);
        if (!terminated)
            test_sleep_ms(100);
    }
    assert_true(terminated);
    json_decref(host_post(f, "sim-2", "uncordon", 200));
    json_t *j = host_post(f, "sim-1", "drain", 202);
    assert_int_equal(json_array_size(json_object_get(j, "moved")), 1);
    assert_int_equal(json_array_size(json_object_get(j, "remaining")), 0);
    json_t *stopped = json_object_get(j, "stopped");
    assert_int_equal(json_array_size(stopped), 1);
    char *id = gid("done");
    assert_string_equal(json_string_value(json_array_get(stopped, 0)), id);
    free(id);
    json_decref(j);
    assert_false(host_has(f, "sim-1", "done"));
    assert_false(host_has(f, "sim-2", "done"));
    h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    json_t *iv = json_object_get(json_object_get(h.json, "properties"), "instanceView");
    assert_string_equal(jstr(iv, "state"), "Stopped");
    test_http_free(&h);
    free(p);
    assert_true(wait_running_on(f, "live", "sim-2"));
}

static void test_drain_no_room(void **state)
{
    fixture_t *f = *state;
    json_decref(host_post(f, "sim-2", "cordon", 200));
    put_group(f, "big", 3);
    assert_true(wait_running_on(f, "big", "sim-1"));
    json_decref(host_post(f, "sim-2", "uncordon", 200));
    json_decref(host_post(f, "sim-1", "cordon", 200));
    put_group(f, "other", 2);
    assert_true(wait_running_on(f, "other", "sim-2"));
    /* sim-2 has 2 cores free: "big" (3) fits nowhere and stays */
    json_t *j = host_post(f, "sim-1", "drain", 202);
    assert_int_equal(json_array_size(json_object_get(j, "moved")), 0);
    json_t *rem = json_object_get(j, "remaining");
    assert_int_equal(json_array_size(rem), 1);
    char *id = gid("big");
    assert_string_equal(jstr(json_array_get(rem, 0), "id"), id);
    free(id);
    assert_true(strlen(jstr(json_array_get(rem, 0), "reason")) > 0);
    assert_string_equal(jstr(j, "state"), "cordoned");
    json_decref(j);
    assert_true(host_has(f, "sim-1", "big"));
    j = host_get(f, "sim-1");
    assert_string_equal(jstr(j, "state"), "cordoned");
    json_decref(j);
    /* once room is made, a drain again moves it */
    char *p = gpath("other");
    test_http_t h = http(f, "DELETE", p, NULL);
    assert_true(h.status == 200 || h.status == 202 || h.status == 204);
    test_http_free(&h);
    free(p);
    j = host_post(f, "sim-1", "drain", 202);
    assert_int_equal(json_array_size(json_object_get(j, "moved")), 1);
    assert_int_equal(json_array_size(json_object_get(j, "remaining")), 0);
    json_decref(j);
    assert_true(wait_running_on(f, "big", "sim-2"));
}

static void test_bad_requests(void **state)
{
    fixture_t *f = *state;
    json_decref(host_post(f, "nosuch", "cordon", 404));
    json_decref(host_post(f, "bad%20name", "cordon", 400));
    json_decref(host_post(f, "sim-1", "explode", 404));
    expect_status(f, "GET", "/berth/hosts/sim-1/cordon", 405);
    expect_status(f, "GET", "/berth/hosts/nosuch", 404);
    expect_status(f, "DELETE", "/berth/hosts/sim-1", 405);
}

static void test_tokens(void **state)
{
    fixture_t *f = *state;
    f->token = "tok-sub-0123456789";
    json_decref(host_post(f, "sim-1", "cordon", 403));
    json_decref(host_post(f, "sim-1", "drain", 403));
    /* Reading the hosts is the operators' too. */
    expect_status(f, "GET", "/berth/hosts/sim-1", 403);
    expect_status(f, "GET", "/berth/hosts", 403);
    f->token = NULL;
    json_decref(host_post(f, "sim-1", "cordon", 401));
    f->token = "tok-all-0123456789";
    json_t *j = host_get(f, "sim-1");
    assert_string_equal(jstr(j, "state"), "ready");
    json_decref(j);
    json_decref(host_post(f, "sim-1", "cordon", 200));
    json_decref(host_post(f, "sim-1", "uncordon", 200));
    unlink(tokens_file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cordon_uncordon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_moves_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_no_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_stops_finished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup_tokens, teardown),
    };
    return cmocka_run_group_tests(tests, berth_test_redis_group_setup,
                                  berth_test_redis_group_teardown);
}
