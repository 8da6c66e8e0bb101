/*
 * test_berthd_messages.c: what berthd's ACI API tells its users, end to
 * end: a real redis-server (tests/redis-harness.c), a berthd process
 * (tests/berthd-harness.c) and a berth-agent with the simulator plugin
 * (tests/agent-harness.c) in one cell per test.
 *
 * Covers: no error answer of a set of failures (a redeploy that needs a
 * delete, no room, a missing container, a stopped group's logs, exec,
 * restart, attach, bad bodies, missing groups and operations) shows a
 * store key ("<sub>/<rg>/<name>") or the target "key", nor does a group's
 * body whose view's events (a runtime's messages) name it; a stopped group's
 * logs, exec and attach answer 409 ContainerGroupStopped; an operation's endTime
 * is when it finished, the same at every poll; a group's outbound
 * network dependencies are the registries of its images and credentials;
 * a subnet's service association link is deleted (204) when no group
 * names the subnet, refused (409 naming the group) while one does; no
 * route of the 2025-09-01 spec that Berth serves here answers "no such
 * route".
 *
 * Every wait is bounded (test-time.h); nothing asserts speed.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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

#define SUB "0000-Sub-7"
#define SUB_LOWER "0000-sub-7"
#define APIV "2023-05-01"
#define WAIT_MS 15000

static int cell_counter;

typedef struct fixture {
    char cell[32];
    test_agent_t agent;
    bool agent_running;
    test_berthd_t d;
    bool d_running;
} fixture_t;

/* ---- helpers ------------------------------------------------------------------------------ */

static test_http_t http(fixture_t *f, const char *method, const char *path, const char *body)
{
    return test_http_send(&f->d, method, path, body, NULL);
}

/* The path of group `name` in resource group "RG", with `suffix` and the
 * api-version. */
static char *gpath(const char *name, const char *suffix)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                 "Microsoft.ContainerInstance/containerGroups/%s%s?api-version=" APIV,
                 name, suffix ? suffix : "") < 0)
        abort();
    return p;
}

/* A document: container "app" (busybox) with `cpu` cores, and `more`
 * properties (may be ""). */
static char *gdoc(double cpu, const char *more)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
                 "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": "
                 "\"busybox:latest\", \"resources\": {\"requests\": {\"cpu\": %g, "
                 "\"memoryInGB\": 1}}}}]%s}}",
                 cpu, more) < 0)
        abort();
    return out;
}

/* Asserts a CloudError with `status` and `code` (NULL: any) whose code,
 * message and target (and its details') name no store key of this test's
 * subscription, and no target "key". */
static void expect_user_error(const test_http_t *h, long status, const char *code)
{
    if (h->status != status || h->json == NULL)
        fprintf(stderr, "expected %ld %s, got %ld: %s\n", status, code ? code : "", h->status,
                h->body);
    assert_int_equal(h->status, status);
    json_t *e = json_object_get(h->json, "error");
    assert_true(json_is_object(e));
    assert_true(json_is_string(json_object_get(e, "message")));
    if (code != NULL) {
        if (strcmp(json_string_value(json_object_get(e, "code")), code) != 0)
            fprintf(stderr, "expected code %s: %s\n", code, h->body);
        assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    }
    /* A key is "<sub>/<rg>/<name>" in lower case; an ARM id has
     * "/resourceGroups/" between the two, so it never matches. */
    char *lower = strdup(h->body);
    assert_non_null(lower);
    for (char *p = lower; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    if (strstr(lower, SUB_LOWER "/rg/") != NULL || strstr(lower, "\"target\":\"key\"") != NULL ||
        strstr(lower, "\"target\": \"key\"") != NULL) {
        fprintf(stderr, "an internal key in an answer: %s\n", h->body);
        fail();
    }
    free(lower);
}

static const char *jpath_str(json_t *o, const char *a, const char *b)
{
    const char *s = json_string_value(json_object_get(json_object_get(o, a), b));
    return s != NULL ? s : "";
}

/* GETs the group until it is Succeeded with its container Running. */
static bool wait_running(fixture_t *f, const char *name)
{
    char *p = gpath(name, NULL);
    bool ok = false;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (!ok && test_now_ms() < end) {
        test_http_t h = http(f, "GET", p, NULL);
        json_t *c = json_array_get(json_object_get(json_object_get(h.json, "properties"),
                                                   "containers"), 0);
        const char *cs = jpath_str(json_object_get(json_object_get(c, "properties"),
                                                   "instanceView"), "currentState", "state");
        ok = h.status == 200 &&
             strcmp(jpath_str(h.json, "properties", "provisioningState"), "Succeeded") == 0 &&
             strcmp(cs, "Running") == 0;
        test_http_free(&h);
        if (!ok)
            test_sleep_ms(100);
    }
    free(p);
    return ok;
}

static void put_ok(fixture_t *f, const char *name, const char *doc, long status)
{
    char *p = gpath(name, NULL);
    test_http_t h = http(f, "PUT", p, doc);
    if (h.status != status)
        fprintf(stderr, "PUT %s: %ld %s\n", name, h.status, h.body);
    assert_int_equal(h.status, status);
    test_http_free(&h);
    free(p);
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

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->cell, sizeof f->cell, "bdm-%d-%d", (int)getpid() % 10000, ++cell_counter);
    const char *dargs[] = {"--redis", berth_test_redis_group->url, "--cell", f->cell, NULL};
    const char *aargs[] = {"--cores", "4", "--memory-mib", "65536", "--tick-ms", "50",
                           "--heartbeat-ms", "200", "--ttl-ms", "10000", NULL};
    const char *sim = "{\"images\": [\"busybox:latest\"], \"start_latency_ms\": 100}";
    if (test_berthd_start(&f->d, false, dargs) == 0)
        f->d_running = true;
    if (f->d_running && test_agent_start(&f->agent, berth_test_redis_group->url, f->cell,
                                         "sim-1", "sim", sim, aargs) == 0)
        f->agent_running = true;
    if (!f->agent_running || !wait_hosts(f, 1)) {
        if (f->d_running) {
            test_berthd_dump(&f->d, 30);
            test_berthd_kill(&f->d);
        }
        if (f->agent_running) {
            test_agent_dump(&f->agent, 20);
            test_agent_kill(&f->agent);
        }
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = 0;
    int st = test_berthd_stop(&f->d);
    if (st != 0) {
        fprintf(stderr, "berthd exited with %d\n", st);
        test_berthd_dump(&f->d, 40);
        rc = -1;
    } else {
        unlink(f->d.log_path);
    }
    test_agent_stop(&f->agent);
    unlink(f->agent.log_path);
    free(f);
    return rc;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* Failures whose messages once named the store's key: each answer names
 * the group by its name or ARM id, never "<sub>/<rg>/<name>". */
static void test_no_internal_keys(void **state)
{
    fixture_t *f = *state;                  /* one host of 4 cores */
    char *one = gdoc(1, ""), *two = gdoc(2, ""), *four = gdoc(4, "");
    put_ok(f, "upd", one, 201);
    assert_true(wait_running(f, "upd"));
    char *p = gpath("upd", NULL);
    /* A redeploy changing the CPU needs a delete (the core's refusal). */
    test_http_t h = http(f, "PUT", p, two);
    expect_user_error(&h, 409, NULL);
    assert_non_null(strstr(h.body, "'upd'"));
    test_http_free(&h);
    /* No room (3 cores left). */
    char *big = gpath("big", NULL);
    h = http(f, "PUT", big, four);
    expect_user_error(&h, 409, NULL);
    test_http_free(&h);
    char *nope = gpath("upd", "/containers/nope/logs");
    h = http(f, "GET", nope, NULL);
    expect_user_error(&h, 404, "ContainerNotFound");
    test_http_free(&h);
    char *attach = gpath("upd", "/containers/nope/attach");
    h = http(f, "POST", attach, NULL);
    expect_user_error(&h, 404, "ContainerNotFound");
    test_http_free(&h);
    h = http(f, "PATCH", p, "{\"properties\": {\"osType\": \"Windows\"}}");
    expect_user_error(&h, 400, NULL);
    test_http_free(&h);
    h = http(f, "PUT", p, "{\"location\": 5}");
    expect_user_error(&h, 400, NULL);
    test_http_free(&h);
    char *missing = gpath("gone", "/containers/app/logs");
    h = http(f, "GET", missing, NULL);
    expect_user_error(&h, 404, "ResourceNotFound");
    test_http_free(&h);
    h = http(f, "GET",
             "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/locations/westeurope/"
             "operations/0123456789abcdef0123456789abcdef?api-version=" APIV, NULL);
    expect_user_error(&h, 404, NULL);
    test_http_free(&h);
    /* NGroups and pools answer from the worker thread, through the same door. */
    h = http(f, "GET", "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                       "Microsoft.ContainerInstance/nGroups/nothere?api-version=2025-09-01", NULL);
    expect_user_error(&h, 404, NULL);
    test_http_free(&h);
    h = http(f, "GET", "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                       "Microsoft.StandbyPool/standbyContainerGroupPools/nothere"
                       "?api-version=2025-03-01", NULL);
    expect_user_error(&h, 404, NULL);
    test_http_free(&h);
    /* Stopped: logs, exec and restart say so. */
    char *stop = gpath("upd", "/stop");
    h = http(f, "POST", stop, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    char *logs = gpath("upd", "/containers/app/logs");
    h = http(f, "GET", logs, NULL);
    expect_user_error(&h, 409, "ContainerGroupStopped");
    assert_non_null(strstr(h.body, "'upd' is stopped"));
    test_http_free(&h);
    char *exec = gpath("upd", "/containers/app/exec");
    h = http(f, "POST", exec, "{\"command\": \"echo hi\", \"terminalSize\": {\"rows\": 1, "
                              "\"cols\": 1}}");
    expect_user_error(&h, 409, "ContainerGroupStopped");
    test_http_free(&h);
    char *attach_app = gpath("upd", "/containers/app/attach");
    h = http(f, "POST", attach_app, NULL);
    expect_user_error(&h, 409, "ContainerGroupStopped");
    assert_non_null(strstr(h.body, "cannot be attached to"));
    test_http_free(&h);
    free(attach_app);
    char *restart = gpath("upd", "/restart");
    h = http(f, "POST", restart, NULL);
    expect_user_error(&h, 409, NULL);
    test_http_free(&h);
    free(restart);
    free(exec);
    free(logs);
    free(stop);
    free(missing);
    free(attach);
    free(nope);
    free(big);
    free(p);
    free(one);
    free(two);
    free(four);
}

/* A runtime's message in the agent's view names the group by its store
 * key: the group's body shows its name there.  The view is written here
 * as an agent would (the same generation); the agent of a settled group
 * writes its view again only when its own rendering changes, which nothing
 * here makes it do. */
static void test_view_messages_unkeyed(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc(1, "");
    put_ok(f, "evt", doc, 201);
    assert_true(wait_running(f, "evt"));
    redisContext *rc = berth_test_redis_connect(berth_test_redis_group);
    assert_non_null(rc);
    redisReply *r = redisCommand(rc, "HGET berth:{%s}:views %s", f->cell, SUB_LOWER "/rg/evt");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    json_t *view = json_loads(r->str, 0, NULL);
    freeReplyObject(r);
    assert_non_null(view);
    json_t *events = json_object_get(json_object_get(view, "instanceView"), "events");
    assert_true(json_is_array(events));
    json_array_append_new(events,
                          json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "count", 1,
                                    "firstTimestamp", "2026-01-01T00:00:00Z", "lastTimestamp",
                                    "2026-01-01T00:00:00Z", "name", "Warning", "message",
                                    "the host holds no container group '" SUB_LOWER "/rg/evt'",
                                    "type", "Warning"));
    char *text = json_dumps(view, JSON_COMPACT);
    json_decref(view);
    r = redisCommand(rc, "HSET berth:{%s}:views %s %s", f->cell, SUB_LOWER "/rg/evt", text);
    assert_non_null(r);
    freeReplyObject(r);
    free(text);
    redisFree(rc);
    char *p = gpath("evt", NULL);
    test_http_t h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    char *lower = strdup(h.body);
    for (char *c = lower; *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);
    if (strstr(lower, SUB_LOWER "/rg/") != NULL) {
        fprintf(stderr, "an internal key in a body: %s\n", h.body);
        fail();
    }
    free(lower);
    if (strstr(h.body, "the host holds no container group 'evt'") == NULL) {
        fprintf(stderr, "the event is not shown as expected: %s\n", h.body);
        fail();
    }
    test_http_free(&h);
    free(p);
    free(doc);
}

/* endTime is when the operation finished: the same at every poll, and
 * not before its startTime. */
static void test_operation_end_time(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc(1, "");
    char *p = gpath("timed", NULL);
    test_http_t h = http(f, "PUT", p, doc);
    assert_int_equal(h.status, 201);
    char *async = test_http_header(&h, "Azure-AsyncOperation");
    assert_non_null(async);
    test_http_free(&h);
    const char *op = strstr(async, "/subscriptions/");
    assert_non_null(op);
    char first[64] = "", start[64] = "";
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (first[0] == '\0' && test_now_ms() < end) {
        h = http(f, "GET", op, NULL);
        const char *status = json_string_value(json_object_get(h.json, "status"));
        if (status != NULL && strcmp(status, "Succeeded") == 0) {
            const char *e = json_string_value(json_object_get(h.json, "endTime"));
            assert_non_null(e);
            snprintf(first, sizeof first, "%s", e);
            snprintf(start, sizeof start, "%s",
                     json_string_value(json_object_get(h.json, "startTime")));
        }
        test_http_free(&h);
        if (first[0] == '\0')
            test_sleep_ms(50);
    }
    assert_true(first[0] != '\0');
    assert_true(strcmp(start, first) <= 0);     /* both ISO 8601, UTC */
    test_sleep_ms(1100);                        /* past the second the first poll saw */
    h = http(f, "GET", op, NULL);
    assert_int_equal(h.status, 200);
    assert_string_equal(json_string_value(json_object_get(h.json, "status")), "Succeeded");
    assert_string_equal(json_string_value(json_object_get(h.json, "endTime")), first);
    test_http_free(&h);
    free(async);
    free(p);
    free(doc);
}

/* A group's outbound dependencies: its images' registries and its
 * credentials' servers, once each, sorted; 404 for a missing group. */
static void test_outbound_endpoints(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc(1, ", \"initContainers\": [{\"name\": \"init\", \"properties\": "
                        "{\"image\": \"mcr.microsoft.com/azuredocs/aci-helloworld:latest\"}}], "
                        "\"imageRegistryCredentials\": [{\"server\": \"myreg.azurecr.io\", "
                        "\"username\": \"u\", \"password\": \"TOPSECRET-pw\"}]");
    put_ok(f, "deps", doc, 201);
    char *p = gpath("deps", "/outboundNetworkDependenciesEndpoints");
    test_http_t h = http(f, "GET", p, NULL);
    if (h.status != 200)
        fprintf(stderr, "%ld %s\n", h.status, h.body);
    assert_int_equal(h.status, 200);
    assert_true(json_is_array(h.json));
    assert_int_equal(json_array_size(h.json), 3);
    assert_string_equal(json_string_value(json_array_get(h.json, 0)), "docker.io");
    assert_string_equal(json_string_value(json_array_get(h.json, 1)), "mcr.microsoft.com");
    assert_string_equal(json_string_value(json_array_get(h.json, 2)), "myreg.azurecr.io");
    assert_null(strstr(h.body, "TOPSECRET"));
    test_http_free(&h);
    h = http(f, "POST", p, NULL);
    expect_user_error(&h, 405, NULL);
    test_http_free(&h);
    char *gone = gpath("gone", "/outboundNetworkDependenciesEndpoints");
    h = http(f, "GET", gone, NULL);
    expect_user_error(&h, 404, "ResourceNotFound");
    test_http_free(&h);
    free(gone);
    free(p);
    free(doc);
}

#define SUBNET_ID                                                                             \
    "/subscriptions/" SUB "/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/vn1/" \
    "subnets/sn1"
#define LINK_PATH                                                                             \
    "/subscriptions/" SUB "/resourcegroups/net/providers/Microsoft.Network/virtualNetworks/vn1/" \
    "subnets/sn1/providers/Microsoft.ContainerInstance/serviceAssociationLinks/default"

/* The service association link: 204 with no group on the subnet, 409
 * naming the group (by ARM id) while one names it, 204 once it is gone. */
static void test_subnet_link(void **state)
{
    fixture_t *f = *state;
    test_http_t h = http(f, "DELETE", LINK_PATH "?api-version=" APIV, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    h = http(f, "DELETE", LINK_PATH, NULL);
    expect_user_error(&h, 400, "MissingApiVersionParameter");
    test_http_free(&h);
    h = http(f, "GET", LINK_PATH "?api-version=" APIV, NULL);
    expect_user_error(&h, 405, NULL);
    test_http_free(&h);
    char *other = gdoc(1, "");
    put_ok(f, "plain", other, 201);
    char *doc = gdoc(1, ", \"subnetIds\": [{\"id\": \"" SUBNET_ID "\"}]");
    put_ok(f, "onnet", doc, 201);
    /* The subnet named in other letters is the same subnet. */
    h = http(f, "DELETE",
             "/subscriptions/" SUB "/resourceGroups/NET/providers/Microsoft.Network/"
             "virtualNetworks/VN1/subnets/sn1/providers/Microsoft.ContainerInstance/"
             "serviceAssociationLinks/default?api-version=" APIV, NULL);
    expect_user_error(&h, 409, "SubnetInUse");
    assert_non_null(strstr(h.body, "/resourceGroups/RG/providers/Microsoft.ContainerInstance/"
                                   "containerGroups/onnet"));
    assert_null(strstr(h.body, "containerGroups/plain"));
    test_http_free(&h);
    char *p = gpath("onnet", NULL);
    h = http(f, "DELETE", p, NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    h = http(f, "DELETE", LINK_PATH "?api-version=" APIV, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    free(p);
    free(doc);
    free(other);
}

/* Every operation of the spec's list that berthd serves here answers
 * something else than "no such route" (the profiles, NGroups and pools
 * are answered by their own files). */
static void test_spec_routes(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *method, *path;
    } routes[] = {
        {"GET", "/providers/Microsoft.ContainerInstance/operations"},
        {"GET", "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/containerGroups"},
        {"GET", "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/locations/"
                "westeurope/cachedImages"},
        {"GET", "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/locations/"
                "westeurope/capabilities"},
        {"GET", "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/locations/"
                "westeurope/usages"},
        {"GET", "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                "Microsoft.ContainerInstance/containerGroups"},
        {"GET", "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                "Microsoft.ContainerInstance/containerGroups/x"},
        {"POST", "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                 "Microsoft.ContainerInstance/containerGroups/x/containers/c/attach"},
        {"POST", "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                 "Microsoft.ContainerInstance/containerGroups/x/containers/c/exec"},
        {"GET", "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                "Microsoft.ContainerInstance/containerGroups/x/containers/c/logs"},
        {"GET", "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                "Microsoft.ContainerInstance/containerGroups/x/"
                "outboundNetworkDependenciesEndpoints"},
        {"POST", "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                 "Microsoft.ContainerInstance/containerGroups/x/restart"},
        {"POST", "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                 "Microsoft.ContainerInstance/containerGroups/x/start"},
        {"POST", "/subscriptions/" SUB "/resourceGroups/RG/providers/"
                 "Microsoft.ContainerInstance/containerGroups/x/stop"},
        {"DELETE", LINK_PATH},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s?api-version=%s", routes[i].path, APIV);
        test_http_t h = http(f, routes[i].method, path, NULL);
        if (h.status == 0 || strstr(h.body, "no such resource or route") != NULL) {
            fprintf(stderr, "%s %s: %ld %s\n", routes[i].method, routes[i].path, h.status,
                    h.body);
            fail();
        }
        if (h.status >= 400)
            expect_user_error(&h, h.status, NULL);
        test_http_free(&h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_internal_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_messages_unkeyed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operation_end_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subnet_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_routes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, berth_test_redis_group_setup,
                                  berth_test_redis_group_teardown);
}
