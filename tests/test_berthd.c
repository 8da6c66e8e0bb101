/*
 * test_berthd.c: berthd's ACI REST API end to end: a real redis-server
 * (tests/redis-harness.c), berthd processes (tests/berthd-harness.c) and
 * berth-agent processes with the simulator plugin (tests/agent-harness.c)
 * in one cell per test.
 *
 * Covers, route by route: PUT (201, Azure-AsyncOperation, Creating, then
 * Succeeded and Running), the operation status URL (InProgress then
 * Succeeded), a redeploy that changes an environment variable (200, same
 * host), a redeploy that changes the CPU (409 naming the property), PATCH
 * of tags (and of anything else: 400), listing by resource group and by
 * subscription with $top paging through nextLink, DELETE (200 then 204),
 * GET of a missing group (404 ResourceNotFound), stop (204 twice, the
 * allocation freed), start (202, back on its host), restart (204,
 * restartCount grows), a POST retried with the same client request id,
 * container logs, exec sessions (single use, password checked),
 * api-versions (missing, unknown, every supported one; a property a
 * version lacks refused naming its path and first version, answers shaped
 * per version, NGroups only from their first version), malformed requests
 * (bad JSON, wrong types, unknown members, an oversized body, bad path
 * segments: 400s with a CloudError and nothing changed), secrets never in
 * a response, a DNS name label taken (409), the spec's example documents,
 * init containers' instance views, usages/capabilities (GPU hosts)/
 * cachedImages/operations/hosts, the cell's per-group limits and subnets set
 * by `berthctl cell load` (enforced and reported), the subnet table through
 * /berth/subnets and groups placed by their subnetIds, /metrics, bearer
 * tokens, a berthd killed right after a PUT, and a request left pending by
 * a dead berthd claimed and run by another; where groups run: the
 * published ports' hostIp/hostPort in GET, the operators' GET
 * /berth/containerGroups (hosts, filters, paging, bad queries).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
    redisContext *rc;
} fixture_t;

/* busybox is cached; other images (slow/...) take 1.5 s to pull, longer on
 * slow runs (the first GET of an operation must still find it InProgress). */
static void sim_config(char *buf, size_t cap)
{
    snprintf(buf, cap,
             "{\"images\": [\"busybox:latest\"], \"start_latency_ms\": 100,"
             " \"pull_latency_ms\": %d}", test_deadline_ms(1500));
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int agent_start(fixture_t *f, const char *host, const char *cores, const char *const *more)
{
    const char *args[32] = {"--cores",   cores, "--memory-mib", "65536", "--tick-ms", "50",
                            "--heartbeat-ms", "200", "--ttl-ms", "10000"};
    size_t n = 10;
    for (size_t i = 0; more != NULL && more[i] != NULL && n < 31; i++)
        args[n++] = more[i];
    args[n] = NULL;
    test_agent_t *a = &f->agents[f->nagents];
    char config[160];
    sim_config(config, sizeof config);
    if (test_agent_start(a, berth_test_redis_group->url, f->cell, host, "sim", config,
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
    return test_http_send(&f->d, method, path, body, NULL);
}

static test_http_t http_h(fixture_t *f, const char *method, const char *path, const char *body,
                          const char *header)
{
    test_http_t h;
    memset(&h, 0, sizeof h);
    const char *hs[] = {header, NULL};
    test_http(&f->d, method, path, body, NULL, hs, &h);
    return h;
}

/* The path of group `name` in resource group `rg`, with `suffix` and the
 * api-version. */
static char *gpath(const char *rg, const char *name, const char *suffix)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/%s/providers/"
                 "Microsoft.ContainerInstance/containerGroups/%s%s?api-version=" APIV,
                 rg, name, suffix ? suffix : "") < 0)
        abort();
    return p;
}

/* An ACI document: container "app" with cpu, env S (value), a secureValue
 * and optionally a DNS label. */
static char *gdoc(const char *location, double cpu, const char *env, const char *label)
{
    char ip[256] = "";
    if (label != NULL)
        snprintf(ip, sizeof ip,
                 ", \"ipAddress\": {\"type\": \"Public\", \"dnsNameLabel\": \"%s\", "
                 "\"ports\": [{\"port\": 80}]}",
                 label);
    char *out = NULL;
    if (asprintf(&out,
                 "{\"location\": \"%s\", \"tags\": {\"team\": \"blue\"}, \"properties\": "
                 "{\"osType\": \"Linux\", \"containers\": [{\"name\": \"app\", \"properties\": "
                 "{\"image\": \"busybox:latest\", \"ports\": [{\"port\": 80}], "
                 "\"environmentVariables\": [{\"name\": \"S\", \"value\": \"%s\"}, "
                 "{\"name\": \"PW\", \"secureValue\": \"TOPSECRET-env\"}], "
                 "\"resources\": {\"requests\": {\"cpu\": %g, \"memoryInGB\": 1}}}}]%s}}",
                 location, env, cpu, ip) < 0)
        abort();
    return out;
}

static void expect_cloud_error(const test_http_t *h, long status, const char *code)
{
    if (h->status != status || h->json == NULL)
        fprintf(stderr, "expected %ld %s, got %ld: %s\n", status, code ? code : "", h->status,
                h->body);
    assert_int_equal(h->status, status);
    assert_non_null(h->json);
    json_t *e = json_object_get(h->json, "error");
    assert_true(json_is_object(e));
    assert_true(json_is_string(json_object_get(e, "code")));
    assert_true(json_is_string(json_object_get(e, "message")));
    if (code != NULL) {
        if (strcmp(json_string_value(json_object_get(e, "code")), code) != 0)
            fprintf(stderr, "expected code %s: %s\n", code, h->body);
        assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    }
}

static void assert_no_secret(const test_http_t *h)
{
    if (h->body != NULL && strstr(h->body, "TOPSECRET") != NULL) {
        fprintf(stderr, "secret in response: %s\n", h->body);
        fail();
    }
}

static const char *prov_state(json_t *body)
{
    const char *s = json_string_value(
        json_object_get(json_object_get(body, "properties"), "provisioningState"));
    return s ? s : "";
}

static const char *ctr_state(json_t *body)
{
    json_t *c = json_array_get(json_object_get(json_object_get(body, "properties"), "containers"),
                               0);
    const char *s = json_string_value(json_object_get(
        json_object_get(json_object_get(json_object_get(c, "properties"), "instanceView"),
                        "currentState"),
        "state"));
    return s ? s : "";
}

static int ctr_restarts(json_t *body)
{
    json_t *c = json_array_get(json_object_get(json_object_get(body, "properties"), "containers"),
                               0);
    json_t *rc = json_object_get(
        json_object_get(json_object_get(c, "properties"), "instanceView"), "restartCount");
    return rc ? (int)json_integer_value(rc) : -1;
}

/* GETs the group until it is Succeeded with its container Running. */
static json_t *wait_running(fixture_t *f, const char *rg, const char *name)
{
    char *p = gpath(rg, name, NULL);
    json_t *last = NULL;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (test_now_ms() < end) {
        test_http_t h = http(f, "GET", p, NULL);
        assert_no_secret(&h);
        if (h.status == 200 && strcmp(prov_state(h.json), "Succeeded") == 0 &&
            strcmp(ctr_state(h.json), "Running") == 0) {
            last = json_incref(h.json);
            test_http_free(&h);
            break;
        }
        test_http_free(&h);
        test_sleep_ms(100);
    }
    free(p);
    if (last == NULL)
        fprintf(stderr, "group %s never ran\n", name);
    return last;
}

/* The agent's instance view of group `key` as the cell holds it, or NULL. */
static json_t *view_get(fixture_t *f, const char *key)
{
    char k[96];
    snprintf(k, sizeof k, "berth:{%s}:views", f->cell);
    redisReply *r = redisCommand(f->rc, "HGET %s %s", k, key);
    json_t *v = NULL;
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        v = json_loads(r->str, 0, NULL);
    if (r != NULL)
        freeReplyObject(r);
    return v;
}

/* The host berthd's cell says the group is on (from the agent's view). */
static char *view_host(fixture_t *f, const char *key)
{
    json_t *v = view_get(f, key);
    const char *h = json_string_value(json_object_get(v, "host"));
    char *host = h ? strdup(h) : NULL;
    json_decref(v);
    return host;
}

static long long zcard(fixture_t *f)
{
    redisReply *r = redisCommand(f->rc, "ZCARD berth:{%s}:index", f->cell);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

static void put_ok(fixture_t *f, const char *rg, const char *name, const char *doc, long status)
{
    char *p = gpath(rg, name, NULL);
    test_http_t h = http(f, "PUT", p, doc);
    if (h.status != status)
        fprintf(stderr, "PUT %s: %ld %s\n", name, h.status, h.body);
    assert_int_equal(h.status, status);
    assert_no_secret(&h);
    test_http_free(&h);
    free(p);
}

/* Waits until berthd's cell lists `n` hosts. */
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

static int setup_cores(void **state, const char *cores, const char *const *more)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->cell, sizeof f->cell, "bd-%d-%d", (int)getpid() % 10000, ++cell_counter);
    f->rc = berth_test_redis_connect(berth_test_redis_group);
    if (f->rc == NULL || berthd_start(f, NULL) != 0 || agent_start(f, "sim-1", cores, more) != 0 ||
        !wait_hosts(f, 1)) {
        if (f->d_running)
            test_berthd_dump(&f->d, 30);
        for (int i = 0; i < f->nagents; i++) {
            test_agent_dump(&f->agents[i], 20);
            test_agent_kill(&f->agents[i]);
        }
        if (f->d_running)
            test_berthd_kill(&f->d);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_cores(state, "8", NULL);
}

static int setup_small(void **state)
{
    return setup_cores(state, "4", NULL);
}

static int setup_gpu(void **state)
{
    static const char *const gpu[] = {"--gpu-sku", "K80", "--gpu-count", "4", NULL};
    return setup_cores(state, "8", gpu);
}

static int setup_big(void **state)
{
    return setup_cores(state, "16", NULL);
}

static int setup_metrics(void **state)
{
    static const char *const every_second[] = {"--metrics-interval", "1", NULL};
    return setup_cores(state, "8", every_second);
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
    if (f->rc)
        redisFree(f->rc);
    free(f);
    return rc;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_put_get_operation(void **state)
{
    fixture_t *f = *state;
    char *p = gpath("RG-One", "web", NULL);
    char *doc = gdoc("West Europe", 1, "one", "weblabel");
    char *img = strstr(doc, "busybox:latest");
    assert_non_null(img);
    memcpy(img, "slow/app:1    ", 14);     /* a slow pull: the operation stays InProgress */
    memmove(img + 10, img + 14, strlen(img + 14) + 1);
    test_http_t h = http(f, "PUT", p, doc);
    assert_int_equal(h.status, 201);
    assert_no_secret(&h);
    assert_string_equal(json_string_value(json_object_get(h.json, "name")), "web");
    assert_string_equal(json_string_value(json_object_get(h.json, "type")),
                        "Microsoft.ContainerInstance/containerGroups");
    assert_string_equal(json_string_value(json_object_get(h.json, "id")),
                        "/subscriptions/" SUB "/resourceGroups/RG-One/providers/"
                        "Microsoft.ContainerInstance/containerGroups/web");
    assert_string_equal(json_string_value(json_object_get(h.json, "location")), "westeurope");
    if (strcmp(prov_state(h.json), "Creating") != 0 && strcmp(prov_state(h.json), "Pending") != 0)
        fprintf(stderr, "PUT answered %s\n", h.body);
    assert_true(strcmp(prov_state(h.json), "Creating") == 0 ||
                strcmp(prov_state(h.json), "Pending") == 0);
    char *async = test_http_header(&h, "Azure-AsyncOperation");
    char *retry = test_http_header(&h, "Retry-After");
    assert_non_null(async);
    assert_non_null(retry);
    assert_non_null(strstr(async, "/providers/Microsoft.ContainerInstance/locations/westeurope/"
                                  "operations/"));
    test_http_free(&h);
    /* The operation: InProgress while the container waits, then Succeeded. */
    const char *op = strstr(async, "/subscriptions/");
    assert_non_null(op);
    h = http(f, "GET", op, NULL);
    assert_int_equal(h.status, 200);
    assert_string_equal(json_string_value(json_object_get(h.json, "status")), "InProgress");
    assert_non_null(json_object_get(h.json, "startTime"));
    /* A running operation asks for the next poll in a second (the SDKs'
     * pollers wait 30 s without it). */
    char *op_retry = test_http_header(&h, "Retry-After");
    assert_non_null(op_retry);
    assert_string_equal(op_retry, "1");
    free(op_retry);
    test_http_free(&h);
    const char *status = "";
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    bool done = false;
    while (!done && test_now_ms() < end) {
        h = http(f, "GET", op, NULL);
        status = json_string_value(json_object_get(h.json, "status"));
        done = status != NULL && strcmp(status, "Succeeded") == 0;
        if (done) {
            assert_non_null(json_object_get(h.json, "endTime"));
            char *none = test_http_header(&h, "Retry-After");
            assert_null(none);      /* a finished operation is not polled again */
        }
        test_http_free(&h);
        test_sleep_ms(50);
    }
    assert_true(done);
    json_t *g = wait_running(f, "RG-One", "web");
    assert_non_null(g);
    json_t *ip = json_object_get(json_object_get(g, "properties"), "ipAddress");
    assert_string_equal(json_string_value(json_object_get(ip, "fqdn")),
                        "weblabel.westeurope.berth.local");
    assert_true(json_is_string(json_object_get(ip, "ip")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(g, "tags"), "team")),
                        "blue");
    /* Another subscription's path does not see the operation. */
    char other[1024];
    snprintf(other, sizeof other, "%s", op);
    memcpy(other + strlen("/subscriptions/"), "0000-sub-2", 10);
    h = http(f, "GET", other, NULL);
    expect_cloud_error(&h, 404, "OperationNotFound");
    test_http_free(&h);
    /* Case-insensitive resource group in the path: the same resource. */
    char *p2 = gpath("rg-one", "web", NULL);
    h = http(f, "GET", p2, NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    free(p2);
    json_decref(g);
    free(async);
    free(retry);
    free(doc);
    free(p);
}

static void test_redeploy(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg", "app", doc, 201);
    json_t *g = wait_running(f, "rg", "app");
    assert_non_null(g);
    json_decref(g);
    char key[128];
    snprintf(key, sizeof key, "%s/rg/app", SUB);
    char *host1 = view_host(f, key);
    assert_non_null(host1);
    /* The same document again: 200, nothing changes. */
    put_ok(f, "rg", "app", doc, 200);
    free(doc);
    /* A changed environment: 200, same host. */
    doc = gdoc("westeurope", 1, "two", NULL);
    put_ok(f, "rg", "app", doc, 200);
    free(doc);
    g = wait_running(f, "rg", "app");
    assert_non_null(g);
    char *text = json_dumps(g, 0);
    assert_non_null(strstr(text, "\"two\""));
    free(text);
    json_decref(g);
    char *host2 = view_host(f, key);
    assert_non_null(host2);
    assert_string_equal(host1, host2);
    /* A changed CPU: 409 naming the property. */
    doc = gdoc("westeurope", 2, "two", NULL);
    char *p = gpath("rg", "app", NULL);
    test_http_t h = http(f, "PUT", p, doc);
    expect_cloud_error(&h, 409, NULL);
    assert_true(strstr(h.body, "cpu") != NULL || strstr(h.body, "CPU") != NULL);
    test_http_free(&h);
    free(doc);
    /* Another location for the same resource: 409. */
    doc = gdoc("eastus", 1, "two", NULL);
    h = http(f, "PUT", p, doc);
    expect_cloud_error(&h, 409, "InvalidResourceLocation");
    test_http_free(&h);
    free(doc);
    free(p);
    free(host1);
    free(host2);
}

static void test_patch_tags(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg", "tagged", doc, 201);
    free(doc);
    char *p = gpath("rg", "tagged", NULL);
    test_http_t h = http(f, "PATCH", p, "{\"tags\": {\"env\": \"prod\", \"x\": \"y\"}}");
    assert_int_equal(h.status, 200);
    json_t *tags = json_object_get(h.json, "tags");
    assert_string_equal(json_string_value(json_object_get(tags, "env")), "prod");
    assert_null(json_object_get(tags, "team"));
    assert_no_secret(&h);
    test_http_free(&h);
    h = http(f, "GET", p, NULL);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(h.json, "tags"), "x")), "y");
    test_http_free(&h);
    h = http(f, "PATCH", p, "{\"location\": \"eastus\"}");
    expect_cloud_error(&h, 400, NULL);
    test_http_free(&h);
    h = http(f, "PATCH", p, "{\"tags\": {\"n\": 1}}");
    expect_cloud_error(&h, 400, NULL);
    test_http_free(&h);
    char *missing = gpath("rg", "nothere", NULL);
    h = http(f, "PATCH", missing, "{\"tags\": {}}");
    expect_cloud_error(&h, 404, "ResourceNotFound");
    test_http_free(&h);
    free(missing);
    free(p);
}

/* Follows nextLink from `path`; returns the number of groups seen. */
static size_t list_all(fixture_t *f, const char *path, size_t *pages)
{
    char *next = strdup(path);
    size_t total = 0;
    *pages = 0;
    json_t *seen = json_object();
    for (int guard = 0; next != NULL && guard < 50; guard++) {
        test_http_t h = http(f, "GET", next, NULL);
        free(next);
        next = NULL;
        assert_int_equal(h.status, 200);
        assert_no_secret(&h);
        json_t *v = json_object_get(h.json, "value");
        assert_true(json_is_array(v));
        assert_true(json_array_size(v) <= 2);
        size_t i;
        json_t *g;
        json_array_foreach(v, i, g)
        {
            const char *id = json_string_value(json_object_get(g, "id"));
            assert_non_null(id);
            assert_null(json_object_get(seen, id));
            json_object_set_new(seen, id, json_true());
            total++;
        }
        (*pages)++;
        const char *link = json_string_value(json_object_get(h.json, "nextLink"));
        if (link != NULL) {
            assert_int_equal(strncmp(link, f->d.base_url, strlen(f->d.base_url)), 0);
            next = strdup(link + strlen(f->d.base_url));
        }
        test_http_free(&h);
    }
    json_decref(seen);
    free(next);
    return total;
}

static void test_list_paging(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 0.5, "one", NULL);
    const char *names[] = {"l1", "l2", "l3", "l4", "l5"};
    for (size_t i = 0; i < 5; i++)
        put_ok(f, "rg-list", names[i], doc, 201);
    put_ok(f, "rg-other", "o1", doc, 201);
    free(doc);
    size_t pages = 0;
    size_t n = list_all(f,
                        "/subscriptions/" SUB "/resourceGroups/rg-list/providers/"
                        "Microsoft.ContainerInstance/containerGroups?api-version=" APIV "&$top=2",
                        &pages);
    assert_int_equal(n, 5);
    assert_int_equal(pages, 3);
    n = list_all(f,
                 "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/"
                 "containerGroups?api-version=" APIV "&$top=2",
                 &pages);
    assert_int_equal(n, 6);
    /* Default page size: all in one page. */
    test_http_t h = http(f, "GET",
                         "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/"
                         "containerGroups?api-version=" APIV,
                         NULL);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 6);
    assert_null(json_object_get(h.json, "nextLink"));
    test_http_free(&h);
    h = http(f, "GET",
             "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/"
             "containerGroups?api-version=" APIV "&$top=101",
             NULL);
    expect_cloud_error(&h, 400, NULL);
    test_http_free(&h);
    /* Another subscription sees none. */
    h = http(f, "GET",
             "/subscriptions/other/providers/Microsoft.ContainerInstance/"
             "containerGroups?api-version=" APIV,
             NULL);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 0);
    test_http_free(&h);
}

static void test_delete(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", "dellabel");
    put_ok(f, "rg", "gone", doc, 201);
    assert_int_equal(zcard(f), 1);
    char *p = gpath("rg", "gone", NULL);
    test_http_t h = http(f, "DELETE", p, NULL);
    assert_int_equal(h.status, 200);
    assert_string_equal(prov_state(h.json), "Deleting");
    assert_no_secret(&h);
    test_http_free(&h);
    h = http(f, "DELETE", p, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    h = http(f, "GET", p, NULL);
    expect_cloud_error(&h, 404, "ResourceNotFound");
    assert_non_null(strstr(h.body, "gone"));
    test_http_free(&h);
    assert_int_equal(zcard(f), 0);
    /* The label is free again. */
    put_ok(f, "rg", "other", doc, 201);
    free(doc);
    free(p);
}

/* Whether the cell's hash `name` has field `key`. */
static bool cell_hexists(fixture_t *f, const char *name, const char *key)
{
    redisReply *r = redisCommand(f->rc, "HEXISTS berth:{%s}:%s %s", f->cell, name, key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    bool yes = r->integer == 1;
    freeReplyObject(r);
    return yes;
}

/* The name of the first container of a group's body, or "". */
static const char *first_container(json_t *body)
{
    json_t *c = json_array_get(json_object_get(json_object_get(body, "properties"), "containers"),
                               0);
    const char *name = json_string_value(json_object_get(c, "name"));
    return name != NULL ? name : "";
}

static void test_stop_start(void **state)
{
    fixture_t *f = *state;                  /* one host of 4 cores */
    char *big = gdoc("westeurope", 4, "one", NULL);
    put_ok(f, "rg", "big", big, 201);
    json_t *g = wait_running(f, "rg", "big");
    assert_non_null(g);
    json_decref(g);
    char *p2 = gpath("rg", "big2", NULL);
    test_http_t h = http(f, "PUT", p2, big);
    expect_cloud_error(&h, 409, NULL);      /* no room */
    test_http_free(&h);
    assert_int_equal(zcard(f), 1);
    char *stop = gpath("rg", "big", "/stop");
    h = http(f, "POST", stop, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    h = http(f, "POST", stop, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    char *p = gpath("rg", "big", NULL);
    h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    assert_string_equal(prov_state(h.json), "Succeeded");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(h.json, "properties"), "instanceView"),
                            "state")),
                        "Stopped");
    /* The document is kept once, by the cell, while the group is stopped. */
    assert_string_equal(first_container(h.json), "app");
    test_http_free(&h);
    char key[128];
    snprintf(key, sizeof key, "%s/rg/big", SUB);
    assert_true(cell_hexists(f, "documents", key));
    assert_false(cell_hexists(f, "groups", key));
    /* The allocation is free: a group needing the whole host fits now. */
    h = http(f, "PUT", p2, big);
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    h = http(f, "DELETE", p2, NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    /* A second host appears; start puts the group back on its own. */
    assert_int_equal(agent_start(f, "sim-2", "4", NULL), 0);
    assert_true(wait_hosts(f, 2));
    char *restart = gpath("rg", "big", "/restart");
    h = http(f, "POST", restart, NULL);
    expect_cloud_error(&h, 409, NULL);      /* stopped */
    test_http_free(&h);
    char *start = gpath("rg", "big", "/start");
    h = http(f, "POST", start, NULL);
    assert_int_equal(h.status, 202);
    char *async = test_http_header(&h, "Azure-AsyncOperation");
    assert_non_null(async);
    free(async);
    test_http_free(&h);
    g = wait_running(f, "rg", "big");
    assert_non_null(g);
    assert_string_equal(first_container(g), "app");
    json_decref(g);
    assert_false(cell_hexists(f, "documents", key));
    assert_true(cell_hexists(f, "groups", key));
    char *host = view_host(f, key);
    assert_non_null(host);
    assert_string_equal(host, "sim-1");
    free(host);
    h = http(f, "POST", start, NULL);
    assert_int_equal(h.status, 204);        /* running already */
    test_http_free(&h);
    /* A stopped group deleted: its kept document goes with it, and the
     * answer still describes it. */
    h = http(f, "POST", stop, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    assert_true(cell_hexists(f, "documents", key));
    h = http(f, "DELETE", p, NULL);
    assert_int_equal(h.status, 200);
    assert_string_equal(first_container(h.json), "app");
    test_http_free(&h);
    assert_false(cell_hexists(f, "documents", key));
    assert_false(cell_hexists(f, "resources", key));
    char *missing = gpath("rg", "nothere", "/stop");
    h = http(f, "POST", missing, NULL);
    expect_cloud_error(&h, 404, "ResourceNotFound");
    test_http_free(&h);
    free(missing);
    free(restart);
    free(start);
    free(stop);
    free(p);
    free(p2);
    free(big);
}

/* The operators' list of groups and hosts: `query` after "?". */
static json_t *where(fixture_t *f, const char *query, long status)
{
    char *p = NULL;
    if (asprintf(&p, "/berth/containerGroups?%s", query) < 0)
        abort();
    test_http_t h = http(f, "GET", p, NULL);
    free(p);
    if (h.status != status)
        fprintf(stderr, "GET /berth/containerGroups?%s: %ld %s\n", query, h.status, h.body);
    assert_int_equal(h.status, status);
    json_t *j = json_incref(h.json);
    test_http_free(&h);
    return j;
}

/* The host the operators' list gives for group `name` (NULL: not listed). */
static const char *where_host(json_t *list, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(list, "value"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return json_string_value(json_object_get(e, "host"));
    }
    return NULL;
}

static void test_where(void **state)
{
    fixture_t *f = *state;
    /* The published port's hostIp/hostPort in GET (the simulator publishes). */
    char *doc = gdoc("westeurope", 1, "one", "where-one");
    put_ok(f, "rg-a", "w1", doc, 201);
    free(doc);
    doc = gdoc("westeurope", 1, "one", "where-two");
    put_ok(f, "rg-a", "w2", doc, 201);
    free(doc);
    doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg-b", "w3", doc, 201);
    free(doc);
    json_t *g = NULL;
    char *p = gpath("rg-a", "w1", NULL);
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    json_t *port = NULL;
    while (test_now_ms() < end) {
        json_decref(g);
        test_http_t h = http(f, "GET", p, NULL);
        g = json_incref(h.json);
        test_http_free(&h);
        port = json_array_get(
            json_object_get(json_object_get(json_object_get(g, "properties"), "ipAddress"),
                            "ports"),
            0);
        if (json_integer_value(json_object_get(port, "hostPort")) > 0)
            break;
        test_sleep_ms(100);
    }
    assert_string_equal(json_string_value(json_object_get(port, "hostIp")), "127.0.0.1");
    json_int_t host_port = json_integer_value(json_object_get(port, "hostPort"));
    assert_true(host_port >= 32768 && host_port <= 60999);
    json_decref(g);
    g = wait_running(f, "rg-b", "w3");
    assert_non_null(g);
    json_decref(g);

    /* Every group of the subscription, with its host. */
    json_t *l = where(f, "subscription=" SUB, 200);
    assert_int_equal(json_array_size(json_object_get(l, "value")), 3);
    assert_string_equal(where_host(l, "w1"), "sim-1");
    assert_string_equal(where_host(l, "w3"), "sim-1");
    json_t *e = json_array_get(json_object_get(l, "value"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "resourceGroup")), "rg-a");
    assert_non_null(strstr(json_string_value(json_object_get(e, "id")),
                           "/containerGroups/w1"));
    json_decref(l);
    /* One resource group (its name in any case), one group. */
    l = where(f, "subscription=" SUB "&resourceGroup=RG-B", 200);
    assert_int_equal(json_array_size(json_object_get(l, "value")), 1);
    assert_string_equal(where_host(l, "w3"), "sim-1");
    json_decref(l);
    l = where(f, "subscription=" SUB "&resourceGroup=rg-a&name=w2", 200);
    assert_int_equal(json_array_size(json_object_get(l, "value")), 1);
    assert_string_equal(where_host(l, "w2"), "sim-1");
    json_decref(l);
    l = where(f, "subscription=" SUB "&resourceGroup=rg-a&name=w", 200);
    assert_int_equal(json_array_size(json_object_get(l, "value")), 0);
    json_decref(l);
    /* Paging: $top=1 and the nextLink, three pages. */
    l = where(f, "subscription=" SUB "&$top=1", 200);
    size_t seen = 0;
    for (int page = 0; l != NULL && page < 5; page++) {
        seen += json_array_size(json_object_get(l, "value"));
        const char *next = json_string_value(json_object_get(l, "nextLink"));
        if (next == NULL) {
            json_decref(l);
            l = NULL;
            break;
        }
        const char *q = strchr(next, '?');
        assert_non_null(q);
        json_t *n = where(f, q + 1, 200);
        json_decref(l);
        l = n;
    }
    assert_null(l);
    assert_int_equal(seen, 3);
    /* A stopped group is placed nowhere; it names its last host. */
    char *stop = gpath("rg-a", "w2", "/stop");
    test_http_t h = http(f, "POST", stop, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    free(stop);
    l = where(f, "subscription=" SUB "&resourceGroup=rg-a&name=w2", 200);
    e = json_array_get(json_object_get(l, "value"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "host")), "");
    assert_string_equal(json_string_value(json_object_get(e, "lastHost")), "sim-1");
    assert_string_equal(json_string_value(json_object_get(e, "state")), "Stopped");
    json_decref(l);
    /* Its GET shows no host port while stopped. */
    char *p2 = gpath("rg-a", "w2", NULL);
    h = http(f, "GET", p2, NULL);
    assert_int_equal(h.status, 200);
    port = json_array_get(json_object_get(json_object_get(json_object_get(h.json, "properties"),
                                                          "ipAddress"),
                                          "ports"),
                          0);
    assert_non_null(port);
    assert_null(json_object_get(port, "hostPort"));
    test_http_free(&h);
    free(p2);
    /* Bad queries: 400 naming the parameter, for operators as for users. */
    static const struct {
        const char *query, *target;
    } bad[] = {
        {"", "subscription"},
        {"subscription=bad/sub", "subscription"},
        {"subscription=" SUB "&resourceGroup=bad%2Frg", "resourceGroup"},
        {"subscription=" SUB "&name=w1", "name"},
        {"subscription=" SUB "&resourceGroup=rg-a&name=Bad_Name", "name"},
        {"subscription=" SUB "&$top=0", "$top"},
        {"subscription=" SUB "&$skiptoken=other/rg/x", "$skiptoken"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        l = where(f, bad[i].query, 400);
        json_t *err = json_object_get(l, "error");
        assert_string_equal(json_string_value(json_object_get(err, "code")),
                            "InvalidQueryParameterValue");
        assert_string_equal(json_string_value(json_object_get(err, "target")), bad[i].target);
        json_decref(l);
    }
    h = http(f, "POST", "/berth/containerGroups?subscription=" SUB, "");
    assert_int_equal(h.status, 405);
    test_http_free(&h);
    free(p);
}

static void test_restart_and_retry(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg", "rs", doc, 201);
    free(doc);
    json_t *g = wait_running(f, "rg", "rs");
    assert_non_null(g);
    int before = ctr_restarts(g);
    json_decref(g);
    char *restart = gpath("rg", "rs", "/restart");
    test_http_t h = http_h(f, "POST", restart, NULL, "x-ms-client-request-id: retry-1");
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    char *p = gpath("rg", "rs", NULL);
    int after = before;
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (after <= before && test_now_ms() < end) {
        h = http(f, "GET", p, NULL);
        after = ctr_restarts(h.json);
        test_http_free(&h);
        test_sleep_ms(50);
    }
    assert_true(after > before);
    /* A retry with the same client request id gets the first answer. */
    redisReply *r = redisCommand(f->rc, "EXISTS berth:{%s}:done:retry-1", f->cell);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    h = http_h(f, "POST", restart, NULL, "x-ms-client-request-id: retry-1");
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    test_sleep_ms(500);
    h = http(f, "GET", p, NULL);
    assert_int_equal(ctr_restarts(h.json), after);
    test_http_free(&h);
    free(p);
    free(restart);
}

static void test_logs_exec(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg", "lx", doc, 201);
    free(doc);
    json_t *g = wait_running(f, "rg", "lx");
    assert_non_null(g);
    json_decref(g);
    char *logs = gpath("rg", "lx", "/containers/app/logs");
    char url[1024];
    snprintf(url, sizeof url, "%s&tail=10&timestamps=false", logs);
    test_http_t h = http(f, "GET", url, NULL);
    assert_int_equal(h.status, 200);
    const char *content = json_string_value(json_object_get(h.json, "content"));
    assert_non_null(content);
    assert_non_null(strstr(content, "started"));
    test_http_free(&h);
    snprintf(url, sizeof url, "%s&tail=abc", logs);
    h = http(f, "GET", url, NULL);
    expect_cloud_error(&h, 400, NULL);
    test_http_free(&h);
    char *nologs = gpath("rg", "lx", "/containers/nope/logs");
    h = http(f, "GET", nologs, NULL);
    expect_cloud_error(&h, 404, NULL);
    test_http_free(&h);
    /* exec */
    char *exec = gpath("rg", "lx", "/containers/app/exec");
    h = http(f, "POST", exec,
             "{\"command\": \"echo hello world\", \"terminalSize\": {\"rows\": 12, \"cols\": 80}}");
    assert_int_equal(h.status, 200);
    const char *uri = json_string_value(json_object_get(h.json, "webSocketUri"));
    const char *pw = json_string_value(json_object_get(h.json, "password"));
    assert_non_null(uri);
    assert_non_null(pw);
    assert_int_equal(strncmp(uri, "ws://", 5), 0);
    const char *route = strstr(uri, "/berth/exec/");
    assert_non_null(route);
    char path[256], body[256], wrong[256];
    snprintf(path, sizeof path, "%s", route);
    snprintf(body, sizeof body, "{\"password\": \"%s\"}", pw);
    snprintf(wrong, sizeof wrong, "{\"password\": \"%032d\"}", 0);
    test_http_free(&h);
    h = http(f, "POST", path, wrong);
    expect_cloud_error(&h, 403, NULL);
    test_http_free(&h);
    h = http(f, "POST", path, body);
    assert_int_equal(h.status, 200);
    const char *output = json_string_value(json_object_get(h.json, "output"));
    assert_non_null(output);
    assert_int_equal(strncmp(output, "echo hello world", 16), 0);
    assert_int_equal(json_integer_value(json_object_get(h.json, "exitCode")), 0);
    test_http_free(&h);
    h = http(f, "POST", path, body);        /* single use */
    expect_cloud_error(&h, 404, NULL);
    test_http_free(&h);
    /* The URI names berthd's own address, whatever Host the request gave. */
    h = http_h(f, "POST", exec, "{\"command\": \"echo x\"}", "Host: attacker.example:443");
    assert_int_equal(h.status, 200);
    uri = json_string_value(json_object_get(h.json, "webSocketUri"));
    assert_null(strstr(uri, "attacker"));
    char own[64];
    snprintf(own, sizeof own, "ws://127.0.0.1:%d/berth/exec/", f->d.port);
    assert_int_equal(strncmp(uri, own, strlen(own)), 0);
    snprintf(path, sizeof path, "%s", strstr(uri, "/berth/exec/"));
    snprintf(body, sizeof body, "{\"password\": \"%s\"}",
             json_string_value(json_object_get(h.json, "password")));
    test_http_free(&h);
    /* Three wrong passwords close the session: the right one then finds none. */
    for (int i = 0; i < 3; i++) {
        h = http(f, "POST", path, wrong);
        expect_cloud_error(&h, 403, "ExecPasswordMismatch");
        test_http_free(&h);
    }
    h = http(f, "POST", path, body);
    expect_cloud_error(&h, 404, "ExecSessionNotFound");
    test_http_free(&h);
    h = http(f, "POST", exec, "{\"command\": 5}");
    expect_cloud_error(&h, 400, NULL);
    test_http_free(&h);
    free(exec);
    free(nologs);
    free(logs);
}

/* Sends a raw GET of `path` on a new connection to berthd and returns the
 * socket (the answer is read later), or -1. */
static int raw_get(fixture_t *f, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->d.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Whether fd has something to read (or was closed) within ms. */
static bool readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

/* Logs wait for the agent without holding the loop: with the agent stopped
 * (SIGSTOP) and ten logs calls waiting on it, a GET of the group and a
 * /healthz are answered, and none of the logs calls is (order, not time: no
 * speed is asserted).  Once the agent continues, every logs call gets an
 * answer: the logs, or 503 AgentUnavailable when the agent was too late. */
static void test_logs_stalled_agent(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg", "stall", doc, 201);
    free(doc);
    json_t *g = wait_running(f, "rg", "stall");
    assert_non_null(g);
    json_decref(g);
    char *logs = gpath("rg", "stall", "/containers/app/logs");
    assert_int_equal(kill(f->agents[0].pid, SIGSTOP), 0);
    enum { NCALLS = 10 };
    int fds[NCALLS];
    for (int i = 0; i < NCALLS; i++) {
        fds[i] = raw_get(f, logs);
        assert_true(fds[i] >= 0);
    }
    /* Each call is on berthd's loop once the agent's call stream holds it. */
    char k[96];
    snprintf(k, sizeof k, "berth:{%s}:calls:sim-1", f->cell);
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    long long queued = 0;
    while (queued < NCALLS && test_now_ms() < end) {
        redisReply *r = redisCommand(f->rc, "XLEN %s", k);
        queued = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        if (r != NULL)
            freeReplyObject(r);
        if (queued < NCALLS)
            test_sleep_ms(20);
    }
    assert_true(queued >= NCALLS);
    int64_t t0 = test_now_ms();
    char *gp = gpath("rg", "stall", NULL);
    test_http_t h = http(f, "GET", gp, NULL);
    int64_t took = test_now_ms() - t0;
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    h = http(f, "GET", "/healthz", NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    fprintf(stderr, "GET answered in %lld ms with %d logs calls waiting on a stopped agent\n",
            (long long)took, NCALLS);
    for (int i = 0; i < NCALLS; i++)
        assert_false(readable(fds[i], 0));
    assert_int_equal(kill(f->agents[0].pid, SIGCONT), 0);
    for (int i = 0; i < NCALLS; i++) {
        int64_t left = end - test_now_ms() + test_deadline_ms(15000);
        assert_true(readable(fds[i], (int)(left > 0 ? left : 0)));
        char buf[256] = "";
        ssize_t n = read(fds[i], buf, sizeof buf - 1);
        assert_true(n > 12);
        buf[n] = '\0';
        assert_true(strncmp(buf, "HTTP/1.1 200", 12) == 0 ||
                    strncmp(buf, "HTTP/1.1 503", 12) == 0);
        close(fds[i]);
    }
    free(gp);
    free(logs);
}

static void test_api_versions(void **state)
{
    fixture_t *f = *state;
    const char *base = "/subscriptions/" SUB "/resourceGroups/rg/providers/"
                       "Microsoft.ContainerInstance/containerGroups/x";
    test_http_t h = http(f, "GET", base, NULL);
    expect_cloud_error(&h, 400, "MissingApiVersionParameter");
    assert_non_null(strstr(h.body, "2023-05-01"));
    assert_non_null(strstr(h.body, "2021-03-01"));
    test_http_free(&h);
    char p[512];
    snprintf(p, sizeof p, "%s?api-version=2019-12-01", base);
    h = http(f, "GET", p, NULL);
    expect_cloud_error(&h, 400, "InvalidApiVersionParameter");
    assert_non_null(strstr(h.body, "2023-05-01"));
    test_http_free(&h);
    char *doc = gdoc("westeurope", 1, "one", NULL);
    snprintf(p, sizeof p, "%s?api-version=2019-12-01", base);
    h = http(f, "PUT", p, doc);
    expect_cloud_error(&h, 400, "InvalidApiVersionParameter");
    test_http_free(&h);
    assert_int_equal(zcard(f), 0);
    const char *ok[] = {"2021-03-01",         "2021-07-01",         "2021-09-01",
                        "2021-10-01",         "2022-09-01",         "2022-10-01-preview",
                        "2023-02-01-preview", "2023-05-01",         "2023-05-15-preview",
                        "2024-05-01-preview", "2024-09-01-preview", "2024-10-01-preview",
                        "2024-11-01-preview", "2025-09-01"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(p, sizeof p, "%s?api-version=%s", base, ok[i]);
        h = http(f, "GET", p, NULL);
        expect_cloud_error(&h, 404, "ResourceNotFound");
        test_http_free(&h);
    }
    snprintf(p, sizeof p, "%s?api-version=2021-03-01", base);
    h = http(f, "PUT", p, doc);
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    free(doc);
}

/* `doc` (a gdoc()) with properties.<member> set to `value` (a JSON text)
 * in its properties, or in its container `ctr` (>= 0) properties. */
static char *doc_with(const char *doc, int ctr, const char *member, const char *value)
{
    json_t *d = json_loads(doc, 0, NULL);
    json_t *props = json_object_get(d, "properties");
    if (ctr >= 0) {
        json_t *cs = json_object_get(props, "containers");
        while ((int)json_array_size(cs) <= ctr) {
            json_t *c = json_deep_copy(json_array_get(cs, 0));
            char name[16];
            snprintf(name, sizeof name, "app%zu", json_array_size(cs));
            json_object_set_new(c, "name", json_string(name));
            json_array_append_new(cs, c);
        }
        props = json_object_get(json_array_get(cs, (size_t)ctr), "properties");
    }
    json_object_set_new(props, member, json_loads(value, JSON_DECODE_ANY, NULL));
    char *out = json_dumps(d, 0);
    json_decref(d);
    assert_non_null(out);
    return out;
}

/* The path of group `name` in "rg" under api-version `apiv`. */
static char *vpath(const char *name, const char *apiv)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/rg/providers/"
                 "Microsoft.ContainerInstance/containerGroups/%s?api-version=%s",
                 name, apiv) < 0)
        abort();
    return p;
}

/* A property a request's api-version lacks: 400 naming its JSON path and
 * the first version that has it, nothing stored; accepted from that
 * version on; answers under an old version leave out what it lacks;
 * NGroups only from their first version. */
static void test_api_version_gating(void **state)
{
    fixture_t *f = *state;
    char *base = gdoc("westeurope", 1, "one", NULL);

    /* sku Confidential under 2021-03-01. */
    char *conf = doc_with(base, -1, "sku", "\"Confidential\"");
    char *p = vpath("conf", "2021-03-01");
    test_http_t h = http(f, "PUT", p, conf);
    expect_cloud_error(&h, 400, "InvalidRequestContent");
    json_t *e = json_object_get(h.json, "error");
    assert_string_equal(json_string_value(json_object_get(e, "target")), "properties.sku");
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(strstr(msg, "Confidential"));
    assert_non_null(strstr(msg, "2022-10-01-preview"));
    assert_non_null(strstr(msg, "2021-03-01"));
    test_http_free(&h);
    free(p);
    p = vpath("conf", APIV);
    h = http(f, "GET", p, NULL);
    expect_cloud_error(&h, 404, "ResourceNotFound");
    test_http_free(&h);
    free(p);
    assert_int_equal(zcard(f), 0);

    /* The same document under 2025-09-01 passes the gate and is placed on a
     * confidential host (one beside the agent's; nothing runs it). */
    test_sched_t sched;
    assert_int_equal(test_sched_open(&sched, berth_test_redis_group->url, f->cell), 0);
    berth_host_t chost = {.name = "conf-1", .cores = 8, .memory_mib = 65536,
                          .os = BERTH_OS_LINUX, .features = BERTH_HOST_CONFIDENTIAL,
                          .state = BERTH_HOST_READY};
    berth_error_t err;
    assert_int_equal(berth_store_host_put(sched.store, &chost, &err), 0);
    test_sched_close(&sched);
    assert_true(wait_hosts(f, 2));
    p = vpath("conf", "2025-09-01");
    h = http(f, "PUT", p, conf);
    if (h.status != 201)
        fprintf(stderr, "PUT conf under 2025-09-01: %ld %s\n", h.status, h.body);
    assert_int_equal(h.status, 201);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(h.json, "properties"), "sku")),
        "Confidential");
    test_http_free(&h);
    free(p);
    assert_int_equal(zcard(f), 1);

    /* A second container's securityContext under 2022-10-01-preview (its spec has none). */
    char *sc = doc_with(base, 1, "securityContext", "{\"privileged\": false}");
    p = vpath("sec", "2022-10-01-preview");
    h = http(f, "PUT", p, sc);
    expect_cloud_error(&h, 400, "InvalidRequestContent");
    e = json_object_get(h.json, "error");
    assert_string_equal(json_string_value(json_object_get(e, "target")),
                        "properties.containers[1].properties.securityContext");
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "2023-05-01"));
    test_http_free(&h);
    free(p);
    assert_int_equal(zcard(f), 1);

    /* A profile named under 2023-05-01 is refused before any profile is looked up. */
    char *prof = doc_with(base, -1, "containerGroupProfile",
                          "{\"id\": \"/subscriptions/" SUB "/resourceGroups/rg/providers/"
                          "Microsoft.ContainerInstance/containerGroupProfiles/none\"}");
    p = vpath("prof", APIV);
    h = http(f, "PUT", p, prof);
    expect_cloud_error(&h, 400, "InvalidRequestContent");
    e = json_object_get(h.json, "error");
    assert_string_equal(json_string_value(json_object_get(e, "target")),
                        "properties.containerGroupProfile");
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")),
                           "2024-05-01-preview"));
    test_http_free(&h);
    free(p);
    free(prof);

    /* A Spot group: its priority answered under 2023-05-01, left out under 2021-03-01. */
    char *spot = doc_with(base, -1, "priority", "\"Spot\"");
    p = vpath("spot", "2021-03-01");
    h = http(f, "PUT", p, spot);
    expect_cloud_error(&h, 400, "InvalidRequestContent");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(h.json, "error"), "target")),
        "properties.priority");
    test_http_free(&h);
    free(p);
    put_ok(f, "rg", "spot", spot, 201);
    p = vpath("spot", APIV);
    h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(h.json, "properties"), "priority")),
        "Spot");
    test_http_free(&h);
    free(p);
    p = vpath("spot", "2021-03-01");
    h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    json_t *props = json_object_get(h.json, "properties");
    assert_null(json_object_get(props, "priority"));
    assert_non_null(json_object_get(props, "containers"));
    assert_string_equal(json_string_value(json_object_get(h.json, "name")), "spot");
    test_http_free(&h);
    free(p);
    /* Lists are shaped alike. */
    h = http(f, "GET",
             "/subscriptions/" SUB "/resourceGroups/rg/providers/"
             "Microsoft.ContainerInstance/containerGroups?api-version=2021-03-01",
             NULL);
    assert_int_equal(h.status, 200);
    json_t *value = json_object_get(h.json, "value");
    assert_int_equal(json_array_size(value), 2);
    for (size_t i = 0; i < json_array_size(value); i++)
        assert_null(json_object_get(json_object_get(json_array_get(value, i), "properties"),
                                    "priority"));
    assert_null(strstr(h.body, "\"priority\""));
    test_http_free(&h);

    /* NGroups before their first version; a version without a public spec. */
    h = http(f, "GET",
             "/subscriptions/" SUB "/resourceGroups/rg/providers/"
             "Microsoft.ContainerInstance/nGroups/ng?api-version=2023-05-01",
             NULL);
    expect_cloud_error(&h, 400, "InvalidApiVersionParameter");
    assert_non_null(strstr(h.body, "2024-09-01-preview"));
    test_http_free(&h);
    h = http(f, "GET",
             "/subscriptions/" SUB "/resourceGroups/rg/providers/"
             "Microsoft.ContainerInstance/nGroups/ng?api-version=2024-09-01-preview",
             NULL);
    expect_cloud_error(&h, 404, NULL);
    test_http_free(&h);
    p = vpath("spot", "2022-04-01-preview");
    h = http(f, "GET", p, NULL);
    expect_cloud_error(&h, 400, "InvalidApiVersionParameter");
    test_http_free(&h);
    free(p);

    free(spot);
    free(sc);
    free(conf);
    free(base);
}

static void test_bad_requests(void **state)
{
    fixture_t *f = *state;
    char *p = gpath("rg", "bad", NULL);
    struct {
        const char *body;
        const char *what;
    } bodies[] = {
        {"{not json", "syntax"},
        {"[]", "not an object"},
        {"{\"location\": 5, \"properties\": {}}", "wrong type"},
        {"{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
         "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"busybox\", "
         "\"resources\": {\"requests\": {\"cpu\": \"one\", \"memoryInGB\": 1}}}}]}}",
         "cpu as a string"},
        {"{\"location\": \"westeurope\", \"bogus\": 1, \"properties\": {\"osType\": \"Linux\", "
         "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"busybox\", "
         "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}",
         "unknown member"},
        {"{\"properties\": {\"osType\": \"Linux\", "
         "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"busybox\", "
         "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}",
         "no location"},
        {"{\"name\": \"other\", \"location\": \"westeurope\", \"properties\": {\"osType\": "
         "\"Linux\", \"containers\": [{\"name\": \"app\", \"properties\": {\"image\": "
         "\"busybox\", \"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}",
         "name mismatch"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        test_http_t h = http(f, "PUT", p, bodies[i].body);
        if (h.status != 400)
            fprintf(stderr, "%s: %ld %s\n", bodies[i].what, h.status, h.body);
        expect_cloud_error(&h, 400, NULL);
        test_http_free(&h);
    }
    /* An oversized body: the server's limit. */
    size_t big = 2u << 20;
    char *huge = malloc(big + 64);
    assert_non_null(huge);
    memset(huge, ' ', big + 63);
    memcpy(huge, "{\"location\": \"", 14);
    huge[big + 60] = '"';
    huge[big + 61] = '}';
    huge[big + 62] = '\0';
    test_http_t h = http(f, "PUT", p, huge);
    assert_true(h.status == 413 || h.status == 400);
    test_http_free(&h);
    free(huge);
    /* Bad path segments. */
    const char *paths[] = {
        "/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.ContainerInstance/"
        "containerGroups/Upper?api-version=" APIV,
        "/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.ContainerInstance/"
        "containerGroups/-dash?api-version=" APIV,
        "/subscriptions/" SUB "/resourceGroups/r$g/providers/Microsoft.ContainerInstance/"
        "containerGroups/ok?api-version=" APIV,
        "/subscriptions/" SUB "/resourceGroups/%2e%2e/providers/Microsoft.ContainerInstance/"
        "containerGroups/ok?api-version=" APIV,
        "/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.ContainerInstance/"
        "containerGroups/a%2fb?api-version=" APIV,
        "/subscriptions/su%00b/resourceGroups/rg/providers/Microsoft.ContainerInstance/"
        "containerGroups/ok?api-version=" APIV,
        "/subscriptions/" SUB "/resourceGroups/rg./providers/Microsoft.ContainerInstance/"
        "containerGroups/ok?api-version=" APIV,
    };
    char *doc = gdoc("westeurope", 1, "one", NULL);
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        h = http(f, "PUT", paths[i], doc);
        /* "%2f" would decode to '/': refused before routing (400), like
         * every other bad path. */
        long want = 400;
        if (h.status != want)
            fprintf(stderr, "%s: %ld %s\n", paths[i], h.status, h.body);
        assert_int_equal(h.status, want);
        assert_non_null(h.json);
        assert_non_null(json_object_get(h.json, "error"));
        test_http_free(&h);
    }
    free(doc);
    assert_int_equal(zcard(f), 0);
    h = http(f, "GET", "/subscriptions/" SUB "/nothing?api-version=" APIV, NULL);
    expect_cloud_error(&h, 404, NULL);
    test_http_free(&h);
    free(p);
}

static void test_secrets(void **state)
{
    fixture_t *f = *state;
    const char *doc =
        "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
        "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": "
        "\"myreg.example/app:1\", \"environmentVariables\": [{\"name\": \"K\", "
        "\"secureValue\": \"TOPSECRET-a\"}], \"resources\": {\"requests\": {\"cpu\": 1, "
        "\"memoryInGB\": 1}}, \"volumeMounts\": [{\"name\": \"sec\", \"mountPath\": "
        "\"/s\"}, {\"name\": \"share\", \"mountPath\": \"/f\"}]}}], "
        "\"volumes\": [{\"name\": \"sec\", \"secret\": {\"f\": \"VE9QU0VDUkVU\", \"g\": "
        "\"VE9QU0VDUkVULWI=\"}}, {\"name\": \"share\", \"azureFile\": {\"shareName\": \"s\", "
        "\"storageAccountName\": \"acct\", \"storageAccountKey\": \"TOPSECRET-c\"}}], "
        "\"imageRegistryCredentials\": [{\"server\": \"myreg.example\", \"username\": \"u\", "
        "\"password\": \"TOPSECRET-d\"}], "
        "\"diagnostics\": {\"logAnalytics\": {\"workspaceId\": \"w\", \"workspaceKey\": "
        "\"TOPSECRET-e\"}}}}";
    char *p = gpath("rg", "sec", NULL);
    test_http_t h = http(f, "PUT", p, doc);
    if (h.status != 201)
        fprintf(stderr, "%s\n", h.body);
    assert_int_equal(h.status, 201);
    assert_no_secret(&h);
    assert_null(strstr(h.body, "VE9QU0VDUkVU"));
    test_http_free(&h);
    h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    assert_no_secret(&h);
    assert_null(strstr(h.body, "VE9QU0VDUkVU"));
    test_http_free(&h);
    h = http(f, "GET",
             "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/"
             "containerGroups?api-version=" APIV,
             NULL);
    assert_no_secret(&h);
    test_http_free(&h);
    h = http(f, "PATCH", p, "{\"tags\": {\"a\": \"b\"}}");
    assert_no_secret(&h);
    test_http_free(&h);
    /* The group's record in the cell holds its document with every secret
     * sealed (test_berthd_secrets searches the whole of Redis); the
     * resource record holds no document. */
    redisReply *r = redisCommand(f->rc, "HGET berth:{%s}:groups %s/rg/sec", f->cell, SUB);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_null(memmem(r->str, r->len, "TOPSECRET", 9));
    assert_null(memmem(r->str, r->len, "VE9QU0VDUkVU", 12));
    assert_non_null(memmem(r->str, r->len, "berth/sealed/v1/", 16));
    freeReplyObject(r);
    r = redisCommand(f->rc, "HGET berth:{%s}:resources %s/rg/sec", f->cell, SUB);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_null(memmem(r->str, r->len, "TOPSECRET", 9));
    assert_null(strstr(r->str, "\"document\""));
    freeReplyObject(r);
    h = http(f, "DELETE", p, NULL);
    assert_int_equal(h.status, 200);
    assert_no_secret(&h);
    test_http_free(&h);
    free(p);
}

static void test_dns_label(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", "shared");
    put_ok(f, "rg", "first", doc, 201);
    char *p = gpath("rg", "second", NULL);
    test_http_t h = http(f, "PUT", p, doc);
    expect_cloud_error(&h, 409, "DnsNameLabelAlreadyTaken");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(h.json, "error"), "target")),
        "properties.ipAddress.dnsNameLabel");
    test_http_free(&h);
    assert_int_equal(zcard(f), 1);
    free(doc);
    /* The same label in another location is another name. */
    doc = gdoc("eastus", 1, "one", "shared");
    put_ok(f, "rg", "second", doc, 201);
    free(doc);
    /* The owner keeps its label across a redeploy. */
    doc = gdoc("westeurope", 1, "two", "shared");
    put_ok(f, "rg", "first", doc, 200);
    free(doc);
    free(p);
}

/* Key sets: every key of `want` is in `got`, except those in `skip`. */
static void assert_keys(json_t *want, json_t *got, const char *const *skip, const char *what)
{
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        bool skipped = false;
        for (size_t i = 0; skip != NULL && skip[i] != NULL; i++)
            if (strcmp(skip[i], k) == 0)
                skipped = true;
        if (!skipped && json_object_get(got, k) == NULL) {
            fprintf(stderr, "%s: member '%s' missing from the answer\n", what, k);
            fail();
        }
    }
}

static void test_spec_examples(void **state)
{
    fixture_t *f = *state;                  /* one host: 8 cores, 4 K80 */
    const char *srcdir = getenv("top_srcdir");
    const char *files[] = {"ContainerGroupsCreateOrUpdate.json", "ContainerGroupsCreatePriority.json",
                           "ContainerGroupCreateConfidential.json",
                           "ContainerGroupEncryptionProperties.json",
                           "ContainerGroupExtensions.json"};
    /* A confidential host beside the agent's (no agent runs it: the
     * examples are only placed and answered, never run). */
    test_sched_t sched;
    assert_int_equal(test_sched_open(&sched, berth_test_redis_group->url, f->cell), 0);
    berth_host_t conf = {.name = "conf-1", .cores = 8, .memory_mib = 65536,
                         .os = BERTH_OS_LINUX, .features = BERTH_HOST_CONFIDENTIAL,
                         .state = BERTH_HOST_READY};
    berth_error_t err;
    assert_int_equal(berth_store_host_put(sched.store, &conf, &err), 0);
    test_sched_close(&sched);
    int accepted = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/fixtures/aci-spec/2023-05-01/examples/%s",
                 srcdir ? srcdir : "..", files[i]);
        json_t *ex = json_load_file(path, 0, NULL);
        if (ex == NULL)
            fail_msg("spec example %s is missing", path);
        json_t *params = json_object_get(ex, "parameters");
        json_t *cg = json_object_get(params, "containerGroup");
        char name[64];
        snprintf(name, sizeof name, "ex%zu", i);
        json_object_del(cg, "name");
        char *body = json_dumps(cg, 0);
        char *p = gpath("rg-ex", name, NULL);
        test_http_t h = http(f, "PUT", p, body);
        json_t *want = json_object_get(json_object_get(json_object_get(ex, "responses"), "201"),
                                       "body");
        {
            if (h.status != 201)
                fprintf(stderr, "%s: %ld %s\n", files[i], h.status, h.body);
            assert_int_equal(h.status, 201);
            accepted++;
            static const char *const top_skip[] = {"tags", "zones", NULL};
            static const char *const props_skip[] = {"instanceView", NULL};
            assert_keys(want, h.json, top_skip, files[i]);
            assert_keys(json_object_get(want, "properties"),
                        json_object_get(h.json, "properties"), props_skip, files[i]);
            /* No secret from the example comes back. */
            assert_null(strstr(h.body, "workspaceKey\""));
            assert_null(strstr(h.body, "storageAccountKey"));
            test_http_t g = http(f, "GET", p, NULL);
            assert_int_equal(g.status, 200);
            json_t *want200 = json_object_get(
                json_object_get(json_object_get(ex, "responses"), "200"), "body");
            if (want200 != NULL)
                assert_keys(json_object_get(want200, "properties"),
                            json_object_get(g.json, "properties"), props_skip, files[i]);
            test_http_free(&g);
            test_http_t d = http(f, "DELETE", p, NULL);
            assert_int_equal(d.status, 200);
            test_http_free(&d);
        }
        test_http_free(&h);
        free(p);
        free(body);
        json_decref(ex);
    }
    assert_int_equal(accepted, 5);
    /* Capabilities from the real hosts: K80 x4 on sim-1, no GPU on conf-1. */
    test_http_t c = http(f, "GET",
                         "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/locations/"
                         "westus/capabilities?api-version=" APIV,
                         NULL);
    assert_int_equal(c.status, 200);
    bool k80 = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(c.json, "value"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "gpu")), "K80") == 0) {
            k80 = true;
            assert_int_equal(json_integer_value(json_object_get(
                                 json_object_get(e, "capabilities"), "maxGpuCount")),
                             4);
        }
    }
    assert_true(k80);
    test_http_free(&c);
    c = http(f, "GET",
             "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/locations/"
             "westus/usages?api-version=" APIV,
             NULL);
    assert_non_null(strstr(c.body, "StandardK80Gpus"));
    test_http_free(&c);
}

static void test_init_containers(void **state)
{
    fixture_t *f = *state;
    const char *doc =
        "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
        "\"initContainers\": [{\"name\": \"init\", \"properties\": {\"image\": "
        "\"busybox:latest\", \"environmentVariables\": [{\"name\": "
        "\"BERTH_SIM_EXIT_AFTER_MS\", \"value\": \"100\"}]}}], "
        "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": "
        "\"busybox:latest\", \"resources\": {\"requests\": {\"cpu\": 1, "
        "\"memoryInGB\": 1}}}}]}}";
    put_ok(f, "rg", "withinit", doc, 201);
    json_t *g = wait_running(f, "rg", "withinit");
    assert_non_null(g);
    json_t *init = json_array_get(
        json_object_get(json_object_get(g, "properties"), "initContainers"), 0);
    json_t *iv = json_object_get(json_object_get(init, "properties"), "instanceView");
    assert_true(json_is_object(iv));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(iv, "currentState"), "state")),
        "Terminated");
    assert_true(json_is_object(json_object_get(json_object_get(g, "properties"), "instanceView")));
    json_decref(g);
}

static void test_location_routes(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg", "u1", doc, 201);
    free(doc);
    const char *loc = "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/locations/"
                      "westeurope/";
    char p[512];
    snprintf(p, sizeof p, "%susages?api-version=" APIV, loc);
    test_http_t h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    json_t *v = json_object_get(h.json, "value");
    bool found = false;
    size_t i;
    json_t *u;
    json_array_foreach(v, i, u)
    {
        const char *n = json_string_value(json_object_get(json_object_get(u, "name"), "value"));
        assert_string_equal(json_string_value(json_object_get(u, "unit")), "Count");
        if (strcmp(n, "ContainerGroups") == 0) {
            assert_int_equal(json_integer_value(json_object_get(u, "currentValue")), 1);
            found = true;
        }
        if (strcmp(n, "StandardCores") == 0) {
            assert_int_equal(json_integer_value(json_object_get(u, "currentValue")), 1);
            assert_int_equal(json_integer_value(json_object_get(u, "limit")), 8);
        }
    }
    assert_true(found);
    test_http_free(&h);
    snprintf(p, sizeof p, "%scapabilities?api-version=" APIV, loc);
    h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    json_t *c = json_array_get(json_object_get(h.json, "value"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "osType")), "Linux");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(c, "capabilities"), "maxCpu")), 4);
    test_http_free(&h);
    /* The agent reports its image set after the pull, which may come after
     * the PUT has been answered: wait for it. */
    snprintf(p, sizeof p, "%scachedImages?api-version=" APIV, loc);
    bool cached = false;
    for (int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS); !cached && test_now_ms() < end;) {
        h = http(f, "GET", p, NULL);
        assert_int_equal(h.status, 200);
        cached = strstr(h.body, "busybox:latest") != NULL;
        test_http_free(&h);
        if (!cached)
            test_sleep_ms(50);
    }
    assert_true(cached);
    h = http(f, "GET", "/providers/Microsoft.ContainerInstance/operations?api-version=" APIV, NULL);
    assert_int_equal(h.status, 200);
    assert_true(json_array_size(json_object_get(h.json, "value")) > 5);
    test_http_free(&h);
    h = http(f, "GET", "/berth/hosts", NULL);
    assert_int_equal(h.status, 200);
    json_t *host = json_array_get(json_object_get(h.json, "value"), 0);
    assert_string_equal(json_string_value(json_object_get(host, "name")), "sim-1");
    assert_int_equal(json_integer_value(json_object_get(host, "cores")), 8);
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(host, "allocated"), "millicores")),
                     1000);
    test_http_free(&h);
    h = http(f, "GET", "/metrics", NULL);
    assert_int_equal(h.status, 200);
    assert_non_null(strstr(h.body, "berthd_placement_seconds_count 1"));
    assert_non_null(strstr(h.body, "berthd_hosts{state=\"ready\"} 1"));
    assert_non_null(strstr(h.body, "berthd_allocated{dimension=\"millicores\",sku=\"none\"} 1000"));
    assert_non_null(strstr(h.body, "berthd_request_queue_depth"));
    test_http_free(&h);
}

static void test_crash_after_put(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg", "survivor", doc, 201);
    free(doc);
    test_berthd_kill(&f->d);
    f->d_running = false;
    assert_int_equal(berthd_start(f, NULL), 0);
    json_t *g = wait_running(f, "rg", "survivor");
    assert_non_null(g);
    json_decref(g);
    redisReply *r = redisCommand(f->rc, "EXISTS berth:{%s}:requests", f->cell);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

/* Everything berthd and the cell keep of its container groups, as text:
 * a request that fails must leave it exactly as it was. */
static char *cell_state(fixture_t *f)
{
    static const char *const hashes[] = {"resources", "dns", "usage", "operations", "groups",
                                         "evictions", "documents"};
    char *out = NULL;
    size_t cap = 0;
    FILE *m = open_memstream(&out, &cap);
    assert_non_null(m);
    for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++) {
        redisReply *r = redisCommand(f->rc, "HGETALL berth:{%s}:%s", f->cell, hashes[i]);
        assert_non_null(r);
        fprintf(m, "%s:", hashes[i]);
        /* Field order in a hash is not stable across rehashing: sort. */
        for (size_t pass = 0; r->type == REDIS_REPLY_ARRAY && pass < r->elements; pass += 2) {
            size_t best = (size_t)-1;
            for (size_t j = 0; j < r->elements; j += 2) {
                if (r->element[j]->str == NULL)
                    continue;
                if (best == (size_t)-1 || strcmp(r->element[j]->str, r->element[best]->str) < 0)
                    best = j;
            }
            fprintf(m, " %s=%.*s", r->element[best]->str, (int)r->element[best + 1]->len,
                    r->element[best + 1]->str);
            free(r->element[best]->str);
            r->element[best]->str = NULL;
        }
        fprintf(m, "\n");
        freeReplyObject(r);
    }
    redisReply *r = redisCommand(f->rc, "ZRANGE berth:{%s}:index 0 -1", f->cell);
    fprintf(m, "index:");
    for (size_t j = 0; r->type == REDIS_REPLY_ARRAY && j < r->elements; j++)
        fprintf(m, " %s", r->element[j]->str);
    freeReplyObject(r);
    r = redisCommand(f->rc, "GET berth:{%s}:seq", f->cell);
    fprintf(m, "\nseq: %s\n", r->type == REDIS_REPLY_STRING ? r->str : "-");
    freeReplyObject(r);
    r = redisCommand(f->rc, "KEYS berth:{%s}:*", f->cell);
    for (size_t j = 0; r->type == REDIS_REPLY_ARRAY && j < r->elements; j++) {
        const char *k = r->element[j]->str;
        /* No request stream, no "applied" marks, no answers of failures. */
        if (strstr(k, ":requests") != NULL || strstr(k, ":applied:") != NULL ||
            strstr(k, ":done:") != NULL)
            fprintf(m, "key: %s\n", k);
    }
    freeReplyObject(r);
    fclose(m);
    return out;
}

/* A request that fails writes nothing: neither the resource, nor the
 * placement, nor an operation, a DNS label, a usage count or a trace of
 * the request itself (there is no request stream). */
static void test_failures_leave_nothing(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", "taken-label");
    put_ok(f, "rg", "first", doc, 201);
    free(doc);
    json_t *g = wait_running(f, "rg", "first");
    assert_non_null(g);
    json_decref(g);
    char *before = cell_state(f);
    struct {
        const char *method, *name, *suffix;
        char *body;
        long status;
    } cases[] = {
        {"PUT", "second", NULL, gdoc("westeurope", 1, "two", "taken-label"), 409},
        {"PUT", "first", NULL, gdoc("eastus", 1, "one", "taken-label"), 409},
        {"PUT", "third", NULL, strdup("{\"location\": \"westeurope\", \"properties\": {}}"), 400},
        {"PUT", "huge", NULL, gdoc("westeurope", 64, "big", NULL), 400},
        {"PUT", "zoned", NULL,
         strdup("{\"location\": \"westeurope\", \"zones\": [\"9\"], \"properties\": "
                "{\"osType\": \"Linux\", \"containers\": [{\"name\": \"app\", "
                "\"properties\": {\"image\": \"busybox:latest\", \"resources\": "
                "{\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}"),
         409},
        {"POST", "missing", "/stop", NULL, 404},
        {"POST", "missing", "/start", NULL, 404},
        {"POST", "missing", "/restart", NULL, 404},
        {"PATCH", "missing", NULL, strdup("{\"tags\": {\"a\": \"b\"}}"), 404},
        {"PATCH", "first", NULL, strdup("{\"tags\": 5}"), 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = gpath("rg", cases[i].name, cases[i].suffix);
        const char *hs[] = {"x-ms-client-request-id: failing-request-0001", NULL};
        test_http_t h;
        memset(&h, 0, sizeof h);
        test_http(&f->d, cases[i].method, p, cases[i].body, NULL, hs, &h);
        if (h.status != cases[i].status)
            fprintf(stderr, "%s %s%s: %ld %s\n", cases[i].method, cases[i].name,
                    cases[i].suffix ? cases[i].suffix : "", h.status, h.body);
        assert_int_equal(h.status, cases[i].status);
        test_http_free(&h);
        free(p);
        free(cases[i].body);
        char *after = cell_state(f);
        if (strcmp(before, after) != 0)
            fprintf(stderr, "case %zu changed the cell:\n--- before\n%s--- after\n%s", i, before,
                    after);
        assert_string_equal(before, after);
        free(after);
    }
    free(before);
}

/* Runs `berthctl fsck` on the fixture's cell; returns its exit status and
 * its standard output in *out (free()). */
static int run_fsck(fixture_t *f, char **out)
{
    const char *top = getenv("top_builddir");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/tools/berthctl/berthctl fsck --redis '%s' --cell '%s' 2>/dev/null",
             top != NULL ? top : ".", berth_test_redis_group->url, f->cell);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 0;
    FILE *m = open_memstream(out, &cap);
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        fwrite(buf, 1, n, m);
    fclose(m);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The maxCpu and maxMemoryInGB capabilities report for Linux hosts without
 * GPUs in westeurope. */
static void linux_capabilities(fixture_t *f, json_int_t *cpu, json_int_t *mem)
{
    test_http_t h = http(f, "GET",
                         "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/locations/"
                         "westeurope/capabilities?api-version=" APIV,
                         NULL);
    assert_int_equal(h.status, 200);
    *cpu = *mem = -1;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(h.json, "value"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "osType")), "Linux") == 0 &&
            strcmp(json_string_value(json_object_get(e, "gpu")), "None") == 0) {
            json_t *c = json_object_get(e, "capabilities");
            *cpu = json_integer_value(json_object_get(c, "maxCpu"));
            *mem = json_integer_value(json_object_get(c, "maxMemoryInGB"));
        }
    }
    test_http_free(&h);
}

/* Loads inventory `text` into the fixture's cell with `berthctl cell load`,
 * then waits until berthd's replica (caught up on its timer) reports
 * Linux groups of up to `cores` cores: the file's limits, which berthctl
 * puts after its sandbox policy. */
static void cell_load(fixture_t *f, const char *text, json_int_t cores)
{
    char inv[] = "/tmp/berth-inventory-XXXXXX";
    int fd = mkstemp(inv);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    const char *top = getenv("top_builddir");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s/tools/berthctl/berthctl cell load --redis '%s' --cell '%s' --hosts '%s' "
             "2>/dev/null",
             top != NULL ? top : ".", berth_test_redis_group->url, f->cell, inv);
    int st = system(cmd);
    unlink(inv);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    json_int_t cpu, mem;
    do {
        linux_capabilities(f, &cpu, &mem);
        if (cpu != cores)
            test_sleep_ms(50);
    } while (cpu != cores && test_now_ms() < end);
    assert_int_equal(cpu, cores);
}

/* The cell's sandbox policy: with `berthctl cell load` of an inventory
 * whose policy is "all", berthd places new groups only on the host with
 * the sandbox feature, even when the agents' hosts fit them better; groups
 * placed before stay where they are. */
static void test_cell_sandbox(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg", "before", doc, 201);
    cell_load(f, "{\"sandbox\": \"all\", \"limits\": {\"cpu\": 6},"
                 " \"hosts\": [{\"name\": \"gv\", \"cpu\": 64, \"memoryInGB\": 256,"
                 " \"osType\": \"Linux\", \"features\": [\"sandbox\"]}]}", 6);
    put_ok(f, "rg", "after", doc, 201);
    json_t *list = where(f, "subscription=" SUB, 200);
    const char *before = where_host(list, "before"), *after = where_host(list, "after");
    assert_non_null(before);
    assert_non_null(after);
    assert_string_not_equal(before, "gv");
    assert_string_equal(after, "gv");
    json_decref(list);
    free(doc);
}

/* The cell's per-group limits: ACI's until `berthctl cell load` sets them
 * from an inventory's `limits`; then berthd (whose replica learns them from
 * the cell's log) accepts a 12-core group on a 16-core host, still refuses
 * one above the new limits, and capabilities report them.  The same file's
 * `subnets` become the cell's (GET /berth/subnets). */
static void test_cell_limits(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 12, "big", NULL);
    char *p = gpath("rg", "big", NULL);
    test_http_t h = http(f, "PUT", p, doc);
    expect_cloud_error(&h, 400, NULL);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(h.json, "error"),
                                                             "message")), "is 4 cores"));
    test_http_free(&h);
    json_int_t cpu, mem;
    linux_capabilities(f, &cpu, &mem);
    assert_int_equal(cpu, 4);
    assert_int_equal(mem, 16);

    cell_load(f, "{\"limits\": {\"cpu\": 16, \"memoryInGB\": 64}, \"hosts\": [], "
                 "\"subnets\": [{\"id\": \"sn-load\", \"cidr\": \"10.40.0.0/24\", "
                 "\"hosts\": [\"sim-1\"]}]}", 16);
    linux_capabilities(f, &cpu, &mem);
    assert_int_equal(mem, 64);
    /* The file's subnets came with its limits. */
    h = http(f, "GET", "/berth/subnets", NULL);
    assert_int_equal(h.status, 200);
    json_t *sn = json_array_get(json_object_get(h.json, "value"), 0);
    assert_string_equal(json_string_value(json_object_get(sn, "id")), "sn-load");
    assert_string_equal(json_string_value(json_object_get(sn, "cidr")), "10.40.0.0/24");
    test_http_free(&h);
    put_ok(f, "rg", "big", doc, 201);
    json_t *g = wait_running(f, "rg", "big");
    assert_non_null(g);
    json_decref(g);
    free(doc);
    free(p);

    doc = gdoc("westeurope", 17, "bigger", NULL);
    p = gpath("rg", "bigger", NULL);
    h = http(f, "PUT", p, doc);
    expect_cloud_error(&h, 400, NULL);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(h.json, "error"),
                                                             "message")), "is 16 cores"));
    test_http_free(&h);
    free(doc);
    free(p);
}

#define SUBNET_A "/subscriptions/" SUB "/resourceGroups/net/providers/Microsoft.Network/" \
                 "virtualNetworks/vn/subnets/a"

/* A one-core group document with `ip` (",\"ipAddress\": ..." or "") and
 * `subnets` (",\"subnetIds\": ..." or ""). */
static char *subnet_doc(const char *ip, const char *subnets)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
                 "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": "
                 "\"busybox:latest\", \"ports\": [{\"port\": 80}], \"resources\": "
                 "{\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]%s%s}}", ip, subnets) < 0)
        abort();
    return out;
}

/* FNV-1a of `s` in lower case: how berthd names a subnet in its address
 * claims and picks a group's first address (api_subnets.c). */
static uint64_t fnv_lower(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        h = (h ^ (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c)) * 0x100000001b3ull;
    }
    return h;
}

/* The private address of group `name` in rg, from its GET, or "" (a
 * static buffer). */
static const char *group_ip(fixture_t *f, const char *name)
{
    static char out[32];
    char *p = gpath("rg", name, NULL);
    test_http_t h = http(f, "GET", p, NULL);
    json_t *ip = json_object_get(json_object_get(h.json, "properties"), "ipAddress");
    snprintf(out, sizeof out, "%s", json_string_value(json_object_get(ip, "ip")) ?: "");
    if (h.status == 200)
        assert_string_equal(json_string_value(json_object_get(ip, "type")), "Private");
    test_http_free(&h);
    free(p);
    return out;
}

/* A 400 whose error names `target`. */
static void expect_target(fixture_t *f, const char *method, const char *path, const char *body,
                          long status, const char *target)
{
    test_http_t h = http(f, method, path, body);
    expect_cloud_error(&h, status, NULL);
    const char *got = json_string_value(
        json_object_get(json_object_get(h.json, "error"), "target"));
    if (got == NULL || strcmp(got, target) != 0)
        fail_msg("%s %s: %s, expected target %s", method, path, h.body, target);
    test_http_free(&h);
}

/* The operator's /berth/subnets: a refused table changes nothing; a table
 * put is the replica's at once; then a group's subnetIds must name one of
 * its subnets (400 at properties.subnetIds[0].id), a Private IP needs a
 * subnet, a subnet's group runs on a host carrying it, and a subnet no
 * ready host carries has no room (409 naming it). */
static json_t *record_get(fixture_t *f, const char *key);

static void test_cell_subnets(void **state)
{
    fixture_t *f = *state;
    test_http_t h = http(f, "GET", "/berth/subnets", NULL);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 0);
    test_http_free(&h);
    expect_target(f, "PUT", "/berth/subnets",
                  "{\"subnets\": [{\"id\": \"x\", \"cidr\": \"10.30.0.1/24\", \"hosts\": []}]}",
                  400, "subnets[0].cidr");
    expect_target(f, "PUT", "/berth/subnets", "{\"subnets\": 3}", 400, "subnets");
    h = http(f, "DELETE", "/berth/subnets", NULL);
    assert_int_equal(h.status, 405);
    test_http_free(&h);

    static const char table[] =
        "{\"subnets\": [{\"id\": \"" SUBNET_A "\", \"cidr\": \"10.30.0.0/24\", "
        "\"hosts\": [\"sim-1\"]}, {\"id\": \"sn-b\", \"cidr\": \"10.31.0.0/24\", "
        "\"hosts\": [\"elsewhere\"]}]}";
    h = http(f, "PUT", "/berth/subnets", table);
    if (h.status != 200)
        fail_msg("PUT /berth/subnets: %ld %s", h.status, h.body);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 2);
    test_http_free(&h);
    h = http(f, "GET", "/berth/subnets", NULL);
    json_t *v = json_object_get(h.json, "value");
    assert_int_equal(json_array_size(v), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 1), "cidr")),
                        "10.31.0.0/24");
    test_http_free(&h);

    static const char priv[] = ", \"ipAddress\": {\"type\": \"Private\", \"ports\": "
                               "[{\"port\": 80}]}";
    char *doc = subnet_doc(priv, ", \"subnetIds\": [{\"id\": \"nowhere\"}]");
    char *p = gpath("rg", "s0", NULL);
    expect_target(f, "PUT", p, doc, 400, "properties.subnetIds[0].id");
    free(doc);
    doc = subnet_doc(priv, "");
    expect_target(f, "PUT", p, doc, 400, "properties.ipAddress.type");
    free(doc);
    free(p);

    /* ARM ids compare without case. */
    doc = subnet_doc(priv, ", \"subnetIds\": [{\"id\": \"/SUBSCRIPTIONS/" SUB
                           "/resourcegroups/net/providers/microsoft.network/virtualNetworks/"
                           "vn/subnets/A\", \"name\": \"a\"}]");
    put_ok(f, "rg", "s1", doc, 201);
    free(doc);
    json_t *g = wait_running(f, "rg", "s1");
    assert_non_null(g);
    json_decref(g);
    char *host = view_host(f, SUB "/rg/s1");
    assert_non_null(host);
    assert_string_equal(host, "sim-1");
    free(host);

    /* Private addresses: in the subnet's range past the gateway, one per
     * group, claimed with the commit (hash `ips`); an address held already
     * moves the next group on to another; a DELETE releases its own. */
    char ip1[32];
    snprintf(ip1, sizeof ip1, "%s", group_ip(f, "s1"));
    assert_true(strncmp(ip1, "10.30.0.", 8) == 0);
    int last = atoi(ip1 + 8);
    assert_true(last >= 2 && last <= 254);
    char head[24];
    snprintf(head, sizeof head, "%016llx/", (unsigned long long)fnv_lower(SUBNET_A));
    /* s3's first address, taken behind berthd's back. */
    char key3[128], taken[64];
    snprintf(key3, sizeof key3, "%s/rg/s3", SUB);
    snprintf(taken, sizeof taken, "%s10.30.0.%u", head,
             (unsigned)(2 + fnv_lower(key3) % 253));
    redisReply *r = redisCommand(f->rc, "HSET berth:{%s}:ips %s someone-else", f->cell, taken);
    freeReplyObject(r);
    doc = subnet_doc(priv, ", \"subnetIds\": [{\"id\": \"" SUBNET_A "\"}]");
    put_ok(f, "rg", "s3", doc, 201);
    free(doc);
    const char *ip3 = group_ip(f, "s3");
    assert_true(strncmp(ip3, "10.30.0.", 8) == 0);
    assert_string_not_equal(ip3, ip1);
    assert_string_not_equal(ip3, strchr(taken, '/') + 1);
    /* The runtime got the address and the subnet (the simulator reports
     * the address it was given and publishes no port); the same PUT again
     * changes nothing, though the stored document carries the address. */
    g = wait_running(f, "rg", "s3");
    assert_non_null(g);
    json_decref(g);
    char key3v[128];
    snprintf(key3v, sizeof key3v, "%s/rg/s3", SUB);
    json_t *view = view_get(f, key3v);
    json_t *vip = json_object_get(view, "ipAddress");
    assert_string_equal(json_string_value(json_object_get(vip, "ip")), ip3);
    assert_int_equal(json_array_size(json_object_get(vip, "ports")), 0);
    json_int_t gen = json_integer_value(json_object_get(view, "generation"));
    json_decref(view);
    doc = subnet_doc(priv, ", \"subnetIds\": [{\"id\": \"" SUBNET_A "\"}]");
    put_ok(f, "rg", "s3", doc, 200);
    free(doc);
    json_t *rec3 = record_get(f, key3v);
    assert_int_equal(json_integer_value(json_object_get(rec3, "generation")), gen);
    json_decref(rec3);
    char claim[64];
    snprintf(claim, sizeof claim, "%s%s", head, ip1);
    assert_true(cell_hexists(f, "ips", claim));
    p = gpath("rg", "s1", NULL);
    h = http(f, "DELETE", p, NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    free(p);
    assert_false(cell_hexists(f, "ips", claim));
    snprintf(claim, sizeof claim, "%s%s", head, ip3);
    assert_true(cell_hexists(f, "ips", claim));

    doc = subnet_doc("", ", \"subnetIds\": [{\"id\": \"sn-b\"}]");
    p = gpath("rg", "s2", NULL);
    h = http(f, "PUT", p, doc);
    expect_cloud_error(&h, 409, NULL);
    assert_non_null(strstr(h.body, "carries subnet 'sn-b'"));
    test_http_free(&h);
    free(doc);
    free(p);
}

/* The resource record of `key` as stored. */
static json_t *record_get(fixture_t *f, const char *key)
{
    redisReply *r = redisCommand(f->rc, "HGET berth:{%s}:resources %s", f->cell, key);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    json_t *rec = json_loads(r->str, 0, NULL);
    freeReplyObject(r);
    assert_non_null(rec);
    return rec;
}

/* Stores `rec` as the resource record of `key`, behind berthd's back. */
static void record_put(fixture_t *f, const char *key, json_t *rec)
{
    char *text = json_dumps(rec, JSON_COMPACT);
    redisReply *r = redisCommand(f->rc, "HSET berth:{%s}:resources %s %s", f->cell, key, text);
    freeReplyObject(r);
    free(text);
}

/* berthctl fsck checks berthd's records against the placements: a group
 * placed without its resource, a resource ahead of its group, a Stopped
 * resource whose group runs, a resource that nothing will ever run. */
static void test_fsck_api_records(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg", "a", doc, 201);
    put_ok(f, "rg", "b", doc, 201);
    put_ok(f, "rg", "c", doc, 201);
    put_ok(f, "rg", "d", doc, 201);
    free(doc);
    char *stop = gpath("rg", "c", "/stop");
    test_http_t h = http(f, "POST", stop, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    free(stop);
    char *out = NULL;
    assert_int_equal(run_fsck(f, &out), 0);
    free(out);
    /* c: stopped, and the document the cell kept for it is gone. */
    redisReply *r = redisCommand(f->rc, "HDEL berth:{%s}:documents %s/rg/c", f->cell, SUB);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    char key_a[128], key_b[128], key_d[128], key_ghost[128];
    snprintf(key_a, sizeof key_a, "%s/rg/a", SUB);
    snprintf(key_b, sizeof key_b, "%s/rg/b", SUB);
    snprintf(key_d, sizeof key_d, "%s/rg/d", SUB);
    snprintf(key_ghost, sizeof key_ghost, "%s/rg/ghost", SUB);
    /* d: its record's digest names another document than its group runs. */
    json_t *rec_d = record_get(f, key_d);
    json_object_set_new(rec_d, "digest", json_string("0000000000000000000000000000000000000000"));
    record_put(f, key_d, rec_d);
    json_decref(rec_d);
    json_t *rec_b = record_get(f, key_b);
    /* b: the group stays, its resource goes. */
    r = redisCommand(f->rc, "HDEL berth:{%s}:resources %s", f->cell, key_b);
    freeReplyObject(r);
    /* a: ahead of its group, and Stopped while placed. */
    json_t *rec_a = record_get(f, key_a);
    json_object_set_new(rec_a, "generation", json_integer(99));
    json_object_set_new(rec_a, "state", json_string("Stopped"));
    record_put(f, key_a, rec_a);
    json_decref(rec_a);
    /* ghost: a resource Creating that nothing places. */
    json_object_set_new(rec_b, "name", json_string("ghost"));
    json_object_set_new(rec_b, "state", json_string("Creating"));
    record_put(f, key_ghost, rec_b);
    json_decref(rec_b);
    assert_int_equal(run_fsck(f, &out), 1);
    fprintf(stderr, "%s", out);
    assert_non_null(strstr(out, "/rg/b is placed but has no resource record"));
    assert_non_null(strstr(out, "/rg/a is at generation 99, ahead of its group's 1"));
    assert_non_null(strstr(out, "/rg/a is Stopped but its group is placed"));
    assert_non_null(strstr(out, "/rg/ghost is Creating with no placement and no eviction"));
    assert_non_null(strstr(out, "/rg/c is Stopped but the cell keeps no document for it"));
    assert_non_null(strstr(out, "/rg/d describes another document than its group runs"));
    free(out);
}

/* Operation records are dropped a day after they began (by berthd's loop,
 * a hundred a tick): an old one goes, a new one stays. */
static void test_operations_pruned(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg", "op", doc, 201);
    free(doc);
    long long old_ms = (long long)time(NULL) * 1000 - 25LL * 3600 * 1000;
    redisReply *r = redisCommand(f->rc,
                                 "HSET berth:{%s}:operations 0123456789abcdef0123456789abcdef "
                                 "{\"key\":\"x\",\"startTime\":%lld}",
                                 f->cell, old_ms);
    freeReplyObject(r);
    r = redisCommand(f->rc, "HLEN berth:{%s}:operations", f->cell);
    long long before = r->integer;
    freeReplyObject(r);
    assert_true(before >= 2);
    long long left = before;
    for (int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS); test_now_ms() < end;) {
        r = redisCommand(f->rc, "HEXISTS berth:{%s}:operations 0123456789abcdef0123456789abcdef",
                         f->cell);
        bool gone = r->integer == 0;
        freeReplyObject(r);
        if (gone)
            break;
        test_sleep_ms(50);
    }
    r = redisCommand(f->rc, "HLEN berth:{%s}:operations", f->cell);
    left = r->integer;
    freeReplyObject(r);
    assert_int_equal(left, before - 1);
}

/* Two berthds changing one resource at once: each commit is guarded by the
 * record it read, so when the other berthd's commit came between, it reads
 * and decides again.  Every PUT is answered (2xx, or 409 Conflict once the
 * tries run out), and the cell ends consistent: fsck finds the resource's
 * document to be the one its group runs. */
static void test_two_berthds_one_name(void **state)
{
    fixture_t *f = *state;
    test_berthd_t d2;
    const char *args[] = {"--redis", berth_test_redis_group->url, "--cell", f->cell, NULL};
    assert_int_equal(test_berthd_start(&d2, false, args), 0);
    enum { PUTS = 15 };
    char *p = gpath("rg", "shared", NULL);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        int bad = 0;
        for (int i = 0; i < PUTS; i++) {
            char env[32];
            snprintf(env, sizeof env, "b-%d", i);
            char *doc = gdoc("westeurope", 1, env, NULL);
            test_http_t h;
            memset(&h, 0, sizeof h);
            test_http(&d2, "PUT", p, doc, NULL, NULL, &h);
            if (h.status != 200 && h.status != 201 && h.status != 409)
                bad++;
            test_http_free(&h);
            free(doc);
        }
        _exit(bad > 100 ? 100 : bad);
    }
    int bad = 0, conflicts = 0;
    for (int i = 0; i < PUTS; i++) {
        char env[32];
        snprintf(env, sizeof env, "a-%d", i);
        char *doc = gdoc("westeurope", 1, env, NULL);
        test_http_t h = http(f, "PUT", p, doc);
        if (h.status == 409)
            conflicts++;
        else if (h.status != 200 && h.status != 201) {
            fprintf(stderr, "PUT through berthd 1: %ld %s\n", h.status, h.body);
            bad++;
        }
        test_http_free(&h);
        free(doc);
    }
    int st = 0;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(bad, 0);
    fprintf(stderr, "two berthds, one name: %d of %d PUTs through berthd 1 ran out of tries\n",
            conflicts, PUTS);
    test_http_t h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    char *out = NULL;
    int rc = run_fsck(f, &out);
    if (rc != 0)
        fprintf(stderr, "%s", out);
    free(out);
    assert_int_equal(rc, 0);
    assert_int_equal(test_berthd_stop(&d2), 0);
    free(p);
}

static char *mpath(const char *name, const char *query);

/* GET `path` with `token`: 200 expected, the answer returned. */
static test_http_t get_as(fixture_t *f, const char *path, const char *token)
{
    test_http_t h;
    memset(&h, 0, sizeof h);
    test_http(&f->d, "GET", path, NULL, token, NULL, &h);
    if (h.status != 200)
        fprintf(stderr, "GET %s: %ld %s\n", path, h.status, h.body);
    assert_int_equal(h.status, 200);
    return h;
}

/* The currentValue of usage `name` in a usages answer; -1 when absent. */
static long long usage_of(const test_http_t *h, const char *name)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(h->json, "value"), i, u)
    {
        const char *n = json_string_value(json_object_get(json_object_get(u, "name"), "value"));
        if (n != NULL && strcmp(n, name) == 0)
            return json_integer_value(json_object_get(u, "currentValue"));
    }
    return -1;
}

#define LOCATION_PATH(sub, loc, what)                                                       \
    "/subscriptions/" sub "/providers/Microsoft.ContainerInstance/locations/" loc "/" what \
    "?api-version=" APIV

/* Two tenants (SUB, alpha, with group "tok" running busybox in westeurope;
 * "other", beta) and an operator: each tenant's usages count its own
 * groups in the location, its cachedImages list only its groups' images;
 * the operator sees every cached image. */
static void test_tenant_views(fixture_t *f)
{
    const char *zebra = "privreg.tenantb.example/project-zebra:v9";
    char *doc = NULL;
    if (asprintf(&doc,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
                 "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"%s\", "
                 "\"resources\": {\"requests\": {\"cpu\": 2, \"memoryInGB\": 1}}}}]}}",
                 zebra) < 0)
        abort();
    const char *bpath = "/subscriptions/other/resourceGroups/rg/providers/"
                        "Microsoft.ContainerInstance/containerGroups/zebra?api-version=" APIV;
    test_http_t h;
    memset(&h, 0, sizeof h);
    test_http(&f->d, "PUT", bpath, doc, "tok-beta-0123456789", NULL, &h);
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    free(doc);
    /* Wait until the operator sees beta's image cached (its agent reports
     * the image set after the pull). */
    bool cached = false;
    for (int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS); !cached && test_now_ms() < end;) {
        h = get_as(f, LOCATION_PATH(SUB, "westeurope", "cachedImages"),
                   "tok-operator-0123456789");
        cached = strstr(h.body, zebra) != NULL && strstr(h.body, "busybox:latest") != NULL;
        test_http_free(&h);
        if (!cached)
            test_sleep_ms(50);
    }
    assert_true(cached);
    /* Alpha sees its busybox, never beta's image; beta the other way. */
    h = get_as(f, LOCATION_PATH(SUB, "westeurope", "cachedImages"), "tok-alpha-0123456789");
    assert_non_null(strstr(h.body, "busybox:latest"));
    assert_null(strstr(h.body, "zebra"));
    test_http_free(&h);
    h = get_as(f, LOCATION_PATH("other", "westeurope", "cachedImages"), "tok-beta-0123456789");
    assert_non_null(strstr(h.body, zebra));
    assert_null(strstr(h.body, "busybox"));
    test_http_free(&h);
    /* In another location, beta's groups run nothing. */
    h = get_as(f, LOCATION_PATH("other", "westus", "cachedImages"), "tok-beta-0123456789");
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 0);
    test_http_free(&h);
    /* Usages: alpha's one core, beta's two; the limit the cell's 8. */
    h = get_as(f, LOCATION_PATH(SUB, "westeurope", "usages"), "tok-alpha-0123456789");
    assert_int_equal(usage_of(&h, "ContainerGroups"), 1);
    assert_int_equal(usage_of(&h, "StandardCores"), 1);
    test_http_free(&h);
    h = get_as(f, LOCATION_PATH("other", "westeurope", "usages"), "tok-beta-0123456789");
    assert_int_equal(usage_of(&h, "ContainerGroups"), 1);
    assert_int_equal(usage_of(&h, "StandardCores"), 2);
    assert_int_equal(usage_of(&h, "StandardMemoryInGB"), 1);
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(h.json, "value"), i, u)
    {
        if (strcmp(json_string_value(json_object_get(json_object_get(u, "name"), "value")),
                   "StandardCores") == 0)
            assert_int_equal(json_integer_value(json_object_get(u, "limit")), 8);
    }
    test_http_free(&h);
    h = get_as(f, LOCATION_PATH("other", "westus", "usages"), "tok-beta-0123456789");
    assert_int_equal(usage_of(&h, "ContainerGroups"), 0);
    assert_int_equal(usage_of(&h, "StandardCores"), 0);
    test_http_free(&h);
    /* A tenant's token reads no other subscription's views at all. */
    test_http(&f->d, "GET", LOCATION_PATH("other", "westeurope", "cachedImages"),
              NULL, "tok-alpha-0123456789", NULL, &h);
    expect_cloud_error(&h, 403, "AuthorizationFailed");
    test_http_free(&h);
}

static void test_tokens(void **state)
{
    fixture_t *f = *state;
    test_berthd_stop(&f->d);
    f->d_running = false;
    char file[] = "/tmp/berthd-tokens-XXXXXX";
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    const char *line = "tok-alpha-0123456789 " SUB "\ntok-beta-0123456789 other\n"
                       "tok-operator-0123456789 *\n";
    assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    close(fd);
    assert_int_equal(berthd_start(f, file), 0);
    char *p = gpath("rg", "tok", NULL);
    char *doc = gdoc("westeurope", 1, "one", NULL);
    test_http_t h;
    memset(&h, 0, sizeof h);
    test_http(&f->d, "PUT", p, doc, NULL, NULL, &h);
    assert_int_equal(h.status, 401);
    test_http_free(&h);
    test_http(&f->d, "PUT", p, doc, "tok-alpha-0123456789", NULL, &h);
    assert_int_equal(h.status, 201);
    assert_no_secret(&h);
    test_http_free(&h);
    test_http(&f->d, "GET",
              "/subscriptions/other/providers/Microsoft.ContainerInstance/"
              "containerGroups?api-version=" APIV,
              NULL, "tok-alpha-0123456789", NULL, &h);
    assert_int_equal(h.status, 403);
    test_http_free(&h);
    /* Berth's own routes are the operators': a tenant's token gets 403. */
    test_http(&f->d, "GET", "/berth/hosts", NULL, "tok-alpha-0123456789", NULL, &h);
    expect_cloud_error(&h, 403, "AuthorizationFailed");
    test_http_free(&h);
    test_http(&f->d, "GET", "/berth/hosts/sim-1", NULL, "tok-alpha-0123456789", NULL, &h);
    expect_cloud_error(&h, 403, "AuthorizationFailed");
    test_http_free(&h);
    test_http(&f->d, "POST", "/berth/hosts/sim-1/cordon", "", "tok-alpha-0123456789", NULL, &h);
    expect_cloud_error(&h, 403, "AuthorizationFailed");
    test_http_free(&h);
    test_http(&f->d, "GET", "/berth/hosts", NULL, "tok-operator-0123456789", NULL, &h);
    assert_int_equal(h.status, 200);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(h.json, "value"), 0), "state")),
                        "ready");
    test_http_free(&h);
    test_tenant_views(f);
    /* A query parameter given twice is refused, whichever value comes first. */
    test_http(&f->d, "GET",
              "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/"
              "containerGroups?api-version=" APIV "&api-version=2099-01-01",
              NULL, "tok-alpha-0123456789", NULL, &h);
    expect_cloud_error(&h, 400, "DuplicateQueryParameter");
    assert_string_equal(json_string_value(json_object_get(json_object_get(h.json, "error"),
                                                          "target")),
                        "api-version");
    test_http_free(&h);
    /* The operators' list of groups checks the subscription its query
     * names, as a path's. */
    test_http(&f->d, "GET", "/berth/containerGroups?subscription=" SUB, NULL,
              "tok-alpha-0123456789", NULL, &h);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 1);
    test_http_free(&h);
    test_http(&f->d, "GET", "/berth/containerGroups?subscription=other", NULL,
              "tok-alpha-0123456789", NULL, &h);
    assert_int_equal(h.status, 403);
    assert_string_equal(json_string_value(json_object_get(json_object_get(h.json, "error"),
                                                          "code")),
                        "AuthorizationFailed");
    test_http_free(&h);
    test_http(&f->d, "GET", "/berth/containerGroups?subscription=" SUB, NULL, NULL, NULL, &h);
    assert_int_equal(h.status, 401);
    test_http_free(&h);
    /* An exec session serves only a token of the subscription that made
     * it: another tenant's token, with the right password, finds none. */
    char *exec = gpath("rg", "tok", "/containers/app/exec");
    test_http(&f->d, "POST", exec, "{\"command\": \"echo x\"}", "tok-alpha-0123456789", NULL,
              &h);
    assert_int_equal(h.status, 200);
    char path[256], body[256];
    snprintf(path, sizeof path, "%s",
             strstr(json_string_value(json_object_get(h.json, "webSocketUri")), "/berth/exec/"));
    snprintf(body, sizeof body, "{\"password\": \"%s\"}",
             json_string_value(json_object_get(h.json, "password")));
    test_http_free(&h);
    test_http(&f->d, "POST", path, body, "tok-beta-0123456789", NULL, &h);
    expect_cloud_error(&h, 404, "ExecSessionNotFound");
    test_http_free(&h);
    test_http(&f->d, "POST", path, body, "tok-alpha-0123456789", NULL, &h);
    assert_true(h.status != 404 && h.status != 403);
    test_http_free(&h);
    /* A group's usage metrics answer its own tenant's token alone. */
    char *metrics = mpath("tok", "api-version=2018-01-01");
    test_http(&f->d, "GET", metrics, NULL, "tok-beta-0123456789", NULL, &h);
    assert_int_equal(h.status, 403);
    test_http_free(&h);
    test_http(&f->d, "GET", metrics, NULL, "tok-alpha-0123456789", NULL, &h);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    free(metrics);
    free(exec);
    free(doc);
    free(p);
    unlink(file);
}

/* ---- usage metrics, Azure Monitor's shape ----------------------------------------------- */

#define MPATH "/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.ContainerInstance/" \
              "containerGroups/%s/providers/Microsoft.Insights/metrics?%s"

static char *mpath(const char *name, const char *query)
{
    char *p = NULL;
    if (asprintf(&p, MPATH, name, query) < 0)
        abort();
    return p;
}

/* "START/END" around now (ten minutes back to one ahead), Azure's format. */
static void timespan_now(char *out, size_t cap)
{
    time_t now = time(NULL), from = now - 600, to = now + 60;
    struct tm a, b;
    gmtime_r(&from, &a);
    gmtime_r(&to, &b);
    char fa[32], fb[32];
    strftime(fa, sizeof fa, "%Y-%m-%dT%H:%M:%SZ", &a);
    strftime(fb, sizeof fb, "%Y-%m-%dT%H:%M:%SZ", &b);
    snprintf(out, cap, "%s/%s", fa, fb);
}

/* The first data point of the metric's series `i` that has an average. */
static json_t *averaged(json_t *metric, size_t i)
{
    json_t *series = json_array_get(json_object_get(metric, "timeseries"), i);
    size_t k;
    json_t *pt;
    json_array_foreach(json_object_get(series, "data"), k, pt)
    if (json_object_get(pt, "average") != NULL)
        return pt;
    return NULL;
}

static void expect_bad_parameter(fixture_t *f, const char *query, const char *code,
                                 const char *target)
{
    char *p = mpath("mx", query);
    test_http_t h = http(f, "GET", p, NULL);
    expect_cloud_error(&h, 400, code);
    json_t *t = json_object_get(json_object_get(h.json, "error"), "target");
    if (json_string_value(t) == NULL || strcmp(json_string_value(t), target) != 0)
        fprintf(stderr, "%s: expected target %s: %s\n", query, target, h.body);
    assert_string_equal(json_string_value(t), target);
    test_http_free(&h);
    free(p);
}

/* The agent's samples come back as ACI's metrics in Azure Monitor's shape;
 * bad parameters are named; a group that does not exist is not found. */
static void test_usage_metrics(void **state)
{
    fixture_t *f = *state;
    char *doc = gdoc("westeurope", 1, "one", NULL);
    put_ok(f, "rg", "mx", doc, 201);
    free(doc);
    json_t *g = wait_running(f, "rg", "mx");
    assert_non_null(g);
    json_decref(g);

    char ts[96], query[512];
    timespan_now(ts, sizeof ts);
    snprintf(query, sizeof query,
             "api-version=2018-01-01&metricnames=CpuUsage,memoryusage,"
             "NetworkBytesReceivedPerSecond&timespan=%s&interval=PT1M&aggregation=Average", ts);
    char *p = mpath("mx", query);
    json_t *body = NULL;
    for (int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS); test_now_ms() < end;) {
        test_http_t h = http(f, "GET", p, NULL);
        if (h.status != 200)
            fprintf(stderr, "metrics: %ld %s\n", h.status, h.body);
        assert_int_equal(h.status, 200);
        json_t *v = json_object_get(h.json, "value");
        if (averaged(json_array_get(v, 0), 0) != NULL && averaged(json_array_get(v, 2), 0)) {
            body = json_incref(h.json);
            test_http_free(&h);
            break;
        }
        test_http_free(&h);
        test_sleep_ms(200);
    }
    free(p);
    if (body == NULL)
        test_agent_dump(&f->agents[0], 30);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "namespace")),
                        "Microsoft.ContainerInstance/containerGroups");
    assert_string_equal(json_string_value(json_object_get(body, "resourceregion")),
                        "westeurope");
    assert_string_equal(json_string_value(json_object_get(body, "interval")), "PT1M");
    assert_string_equal(json_string_value(json_object_get(body, "timespan")), ts);
    json_t *v = json_object_get(body, "value");
    assert_int_equal(json_array_size(v), 3);
    static const char *const names[] = {"CpuUsage", "MemoryUsage",
                                        "NetworkBytesReceivedPerSecond"};
    static const char *const units[] = {"Count", "Bytes", "BytesPerSecond"};
    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_array_get(v, i);
        assert_string_equal(json_string_value(json_object_get(m, "type")),
                            "Microsoft.Insights/metrics");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(m, "name"), "value")), names[i]);
        assert_string_equal(json_string_value(json_object_get(m, "unit")), units[i]);
        const char *id = json_string_value(json_object_get(m, "id"));
        assert_non_null(id);
        assert_non_null(strstr(id, "/containerGroups/mx/providers/Microsoft.Insights/metrics/"));
        assert_int_equal(json_array_size(json_object_get(m, "timeseries")), 1);
        /* A point for each minute of the eleven, with or without data. */
        json_t *data = json_object_get(json_array_get(json_object_get(m, "timeseries"), 0),
                                       "data");
        assert_int_equal(json_array_size(data), 11);
        assert_non_null(json_object_get(json_array_get(data, 0), "timeStamp"));
    }
    /* CPU and memory per container; the network the group's. */
    json_t *md = json_object_get(
        json_array_get(json_object_get(json_array_get(v, 0), "timeseries"), 0),
        "metadatavalues");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(md, 0), "name"),
                                          "value")),
        "containerName");
    assert_string_equal(json_string_value(json_object_get(json_array_get(md, 0), "value")),
                        "app");
    assert_true(json_real_value(json_object_get(averaged(json_array_get(v, 0), 0), "average")) >
                0);
    /* The simulator holds half the requested 1 GB (as GiB). */
    assert_true(json_real_value(json_object_get(averaged(json_array_get(v, 1), 0), "average")) ==
                536870912.0);
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(json_object_get(json_array_get(v, 2), "timeseries"), 0),
                         "metadatavalues")),
                     0);
    assert_true(json_real_value(json_object_get(averaged(json_array_get(v, 2), 0), "average")) >
                0);
    json_decref(body);

    /* Defaults: all four metrics, PT1M, the last hour (60 points). */
    p = mpath("mx", "api-version=2018-01-01");
    test_http_t h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 4);
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(json_object_get(
                                            json_array_get(json_object_get(h.json, "value"), 3),
                                            "timeseries"),
                                        0),
                         "data")),
                     60);
    test_http_free(&h);
    free(p);

    expect_bad_parameter(f, "metricnames=CpuUsage", "MissingApiVersionParameter", "api-version");
    expect_bad_parameter(f, "api-version=" APIV, "InvalidApiVersionParameter", "api-version");
    expect_bad_parameter(f, "api-version=2018-01-01&metricnames=CpuUsage,DiskUsage", "BadRequest",
                         "metricnames");
    expect_bad_parameter(f, "api-version=2018-01-01&interval=PT30S", "BadRequest", "interval");
    expect_bad_parameter(f, "api-version=2018-01-01&interval=PT1M&timespan=P30D", "BadRequest",
                         "interval");
    expect_bad_parameter(f, "api-version=2018-01-01&timespan=yesterday", "BadRequest",
                         "timespan");
    expect_bad_parameter(f,
                         "api-version=2018-01-01&timespan=2024-01-02T00:00:00Z/"
                         "2024-01-01T00:00:00Z",
                         "BadRequest", "timespan");
    expect_bad_parameter(f, "api-version=2018-01-01&aggregation=Median", "BadRequest",
                         "aggregation");

    p = mpath("nosuch", "api-version=2018-01-01");
    h = http(f, "GET", p, NULL);
    expect_cloud_error(&h, 404, "ResourceNotFound");
    test_http_free(&h);
    free(p);

    /* /metrics carries the group's latest sample, labelled, once berthd's
     * cache took it in (a round every tick). */
    static const char cpu[] = "berth_group_cpu_millicores{subscription=\"" SUB
                              "\",resource_group=\"rg\",group=\"mx\",container=\"app\"} ";
    static const char mem[] = "berth_group_memory_bytes{subscription=\"" SUB
                              "\",resource_group=\"rg\",group=\"mx\",container=\"app\"} "
                              "536870912\n";
    static const char rx[] = "berth_group_network_receive_bytes_per_second{subscription=\"" SUB
                             "\",resource_group=\"rg\",group=\"mx\"} ";
    bool seen = false;
    for (int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS); test_now_ms() < end && !seen;) {
        h = http(f, "GET", "/metrics", NULL);
        assert_int_equal(h.status, 200);
        const char *c = strstr(h.body, cpu), *r = strstr(h.body, rx);
        seen = c != NULL && strtoll(c + strlen(cpu), NULL, 10) > 0 &&
               strstr(h.body, mem) != NULL && r != NULL &&
               strtoll(r + strlen(rx), NULL, 10) > 0 &&
               strstr(h.body, "berth_usage_groups 1\n") != NULL;
        if (!seen && test_now_ms() + 250 >= end)
            fprintf(stderr, "/metrics never showed mx's usage:\n%s\n", h.body);
        test_http_free(&h);
        if (!seen)
            test_sleep_ms(250);
    }
    assert_true(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_operation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redeploy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_start, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_where, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_and_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_stalled_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_version_gating, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_examples, setup_gpu, teardown),
        cmocka_unit_test_setup_teardown(test_init_containers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_location_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cell_limits, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_cell_subnets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cell_sandbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_leave_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsck_api_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operations_pruned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_berthds_one_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_metrics, setup_metrics, teardown),
    };
    if (getenv("BERTH_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("BERTH_TEST_FILTER"));
    return cmocka_run_group_tests(tests, berth_test_redis_group_setup,
                                  berth_test_redis_group_teardown);
}
