/*
 * test_berthd_ngroups.c: berthd's NGroups on ACI's schema end to end: a
 * real redis-server (tests/redis-harness.c), a berthd
 * (tests/berthd-harness.c) whose housekeeping tick is ten minutes, and
 * three berth-agents with the simulator plugin (tests/agent-harness.c) in
 * one cell per test.
 *
 * Covers: the spec's NGroups examples (2025-09-01: create, get, update,
 * list, start, delete) put and answered in the examples' shape; a
 * container group profile's revision rolled out through an NGroup (12
 * members, maxBatchPercent 25: never more than 3 members updating at once
 * in any answer) that completes with no housekeeping tick at all (the tick
 * never comes within the test's bounded waits: only the worker's steps of
 * NGroups mid-rollout can finish it); the naming prefix and fault domains
 * (two members per host of three); Manual updates (a new revision updates
 * no member, a scale-out and a start place members at it); stop, start
 * and restart; lists by
 * resource group and subscription; bad bodies refused with 400 (404 for a
 * missing profile or revision) naming the JSON path, nothing stored; the
 * fault domain count refused once set; the members counted in their
 * subscription's usages and, for its tenant's token, cached images in the
 * NGroup's location, and in no other location.
 *
 * It must never use a Redis it did not start, and every wait is bounded.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "agent-harness.h"
#include "berthd-harness.h"
#include "redis-harness.h"

#define SUB "00000000-0000-0000-0000-000000000000"
#define APIV "2025-09-01"
#define WAIT_MS 30000
#define NAGENTS 3

static int cell_counter;

typedef struct fixture {
    char cell[32];
    test_agent_t agents[NAGENTS];
    int nagents;
    test_berthd_t d;
    bool d_running;
    char tokens[64];                /* the tokens file                      */
    redisContext *rc;
} fixture_t;

/* ---- helpers ------------------------------------------------------------------------------ */

/* berthd's tokens: the operator's (every request but the tenant's
 * reads) and a tenant's of SUB alone. */
#define OPERATOR_TOKEN "ngroups-operator-token-0123456789"
#define TENANT_TOKEN "ngroups-tenant-token-0123456789"

static test_http_t http(fixture_t *f, const char *method, const char *path, const char *body)
{
    return test_http_send(&f->d, method, path, body, OPERATOR_TOKEN);
}

/* The path of NGroup `name` in resource group `rg`, then `suffix`. */
static char *ngpath(const char *rg, const char *name, const char *suffix)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/%s/providers/"
                 "Microsoft.ContainerInstance/ngroups%s%s%s?api-version=" APIV,
                 rg, name ? "/" : "", name ? name : "", suffix ? suffix : "") < 0)
        abort();
    return p;
}

static void expect_error(const test_http_t *h, long status, const char *target)
{
    json_t *e = json_object_get(h->json, "error");
    if (h->status != status || !json_is_object(e))
        fprintf(stderr, "expected %ld, got %ld: %s\n", status, h->status, h->body);
    assert_int_equal(h->status, status);
    const char *t = json_string_value(json_object_get(e, "target"));
    if (strcmp(t != NULL ? t : "", target) != 0)
        fail_msg("expected target %s: %s", target, h->body);
    assert_non_null(json_string_value(json_object_get(e, "message")));
    assert_null(strstr(h->body, SUB "/"));
}

/* A profile: container "app" (busybox), env MODE=`mode`, a secret, half a
 * core. */
static void put_profile(fixture_t *f, const char *name, const char *mode)
{
    char *p = NULL, *b = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.ContainerInstance/"
                 "containerGroupProfiles/%s?api-version=" APIV,
                 name) < 0 ||
        asprintf(&b,
                 "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", "
                 "\"restartPolicy\": \"Always\", \"containers\": [{\"name\": \"app\", "
                 "\"properties\": {\"image\": \"busybox:latest\", \"environmentVariables\": "
                 "[{\"name\": \"MODE\", \"value\": \"%s\"}, {\"name\": \"PW\", \"secureValue\": "
                 "\"TOPSECRET\"}], \"resources\": {\"requests\": {\"cpu\": 0.5, "
                 "\"memoryInGB\": 0.5}}}}]}}",
                 mode) < 0)
        abort();
    test_http_t h = http(f, "PUT", p, b);
    if (h.status != 200 && h.status != 201)
        fprintf(stderr, "PUT profile: %ld %s\n", h.status, h.body);
    assert_true(h.status == 200 || h.status == 201);
    test_http_free(&h);
    free(p);
    free(b);
}

/* An NGroup body naming profile `profile` (revision `rev`, 0: none given). */
static char *ng_body(int desired, const char *profile, int rev, const char *extra_props)
{
    char *b = NULL, revs[32] = "";
    if (rev > 0)
        snprintf(revs, sizeof revs, ", \"revision\": %d", rev);
    if (asprintf(&b,
                 "{\"location\": \"westeurope\", \"tags\": {\"team\": \"web\"}, \"properties\": "
                 "{\"elasticProfile\": {\"desiredCount\": %d}, \"containerGroupProfiles\": "
                 "[{\"resource\": {\"id\": \"/subscriptions/" SUB "/resourceGroups/rg/providers/"
                 "Microsoft.ContainerInstance/containerGroupProfiles/%s\"}%s}]%s%s}}",
                 desired, profile, revs, extra_props ? ", " : "",
                 extra_props ? extra_props : "") < 0)
        abort();
    return b;
}

static json_t *status_of(const test_http_t *h)
{
    return json_object_get(json_object_get(h->json, "properties"), "status");
}

static const char *prov_of(const test_http_t *h)
{
    const char *s = json_string_value(
        json_object_get(json_object_get(h->json, "properties"), "provisioningState"));
    return s != NULL ? s : "";
}

/* Members updating at once in an answer: at the NGroup's revision, not
 * available. */
static size_t updating_of(const test_http_t *h)
{
    json_t *st = status_of(h);
    json_int_t rev = json_integer_value(json_object_get(st, "revision"));
    size_t n = 0, i;
    json_t *m;
    json_array_foreach(json_object_get(st, "members"), i, m)
    {
        n += json_integer_value(json_object_get(m, "revision")) == rev &&
             !json_is_true(json_object_get(m, "available"));
    }
    return n;
}

/* GETs the NGroup (bounded) until it is Succeeded with `running` members
 * running and `updated` at its revision, checking in every answer that at
 * most `most` members update at once.  Returns the last answer. */
static test_http_t wait_ngroup(fixture_t *f, const char *path, json_int_t running,
                               json_int_t updated, size_t most)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (test_now_ms() < end) {
        test_http_t h = http(f, "GET", path, NULL);
        assert_int_equal(h.status, 200);
        if (updating_of(&h) > most)
            fail_msg("%zu members updating at once (bound %zu): %s", updating_of(&h), most,
                     h.body);
        json_t *st = status_of(&h);
        if (strcmp(prov_of(&h), "Succeeded") == 0 &&
            json_integer_value(json_object_get(st, "runningCount")) == running &&
            json_integer_value(json_object_get(st, "updatedCount")) == updated)
            return h;
        test_http_free(&h);
        test_sleep_ms(30);
    }
    for (int i = 0; i < f->nagents; i++)
        test_agent_dump(&f->agents[i], 10);
    test_berthd_dump(&f->d, 30);
    fail_msg("NGroup at %s did not get there", path);
    test_http_t none;
    memset(&none, 0, sizeof none);
    return none;
}

static bool wait_hosts(fixture_t *f)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (test_now_ms() < end) {
        test_http_t h = http(f, "GET", "/berth/hosts", NULL);
        size_t got = json_array_size(json_object_get(h.json, "value"));
        test_http_free(&h);
        if (got >= NAGENTS)
            return true;
        test_sleep_ms(50);
    }
    return false;
}

/* `actual` is shaped like `expected`: every member of an expected object
 * is in the actual one, shaped alike; arrays alike by their first
 * elements; scalars equal (strings without case: ARM ids). */
static void assert_shaped(json_t *expected, json_t *actual, const char *path)
{
    if (json_is_object(expected)) {
        if (!json_is_object(actual))
            fail_msg("%s: an object was expected", path);
        const char *k;
        json_t *v;
        json_object_foreach(expected, k, v)
        {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            json_t *a = json_object_get(actual, k);
            if (a == NULL)
                fail_msg("%s is missing", sub);
            assert_shaped(v, a, sub);
        }
    } else if (json_is_array(expected)) {
        if (!json_is_array(actual))
            fail_msg("%s: an array was expected", path);
        if (json_array_size(expected) > 0)
            assert_shaped(json_array_get(expected, 0), json_array_get(actual, 0), path);
    } else if (json_is_string(expected)) {
        if (!json_is_string(actual) ||
            strcasecmp(json_string_value(expected), json_string_value(actual)) != 0)
            fail_msg("%s: '%s' expected", path, json_string_value(expected));
    } else if (!json_equal(expected, actual)) {
        fail_msg("%s differs from the example", path);
    }
}

static json_t *load_example(const char *file)
{
    const char *srcdir = getenv("top_srcdir");
    char path[1024];
    snprintf(path, sizeof path, "%s/fixtures/aci-spec/2025-09-01/examples/%s",
             srcdir ? srcdir : "..", file);
    json_t *ex = json_load_file(path, 0, NULL);
    if (ex == NULL)
        fail_msg("spec example %s is missing", path);
    return ex;
}

/* ---- fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    *state = f;
    snprintf(f->cell, sizeof f->cell, "bn-%d-%d", (int)getpid() % 10000, ++cell_counter);
    f->rc = berth_test_redis_connect(berth_test_redis_group);
    snprintf(f->tokens, sizeof f->tokens, "/tmp/berth-ngroups-tokens-XXXXXX");
    int tfd = mkstemp(f->tokens);
    static const char tokens[] = OPERATOR_TOKEN " *\n" TENANT_TOKEN " " SUB "\n";
    if (tfd < 0 || write(tfd, tokens, sizeof tokens - 1) != (ssize_t)(sizeof tokens - 1)) {
        if (tfd >= 0)
            close(tfd);
        return -1;
    }
    close(tfd);
    const char *dargs[] = {"--redis", berth_test_redis_group->url, "--cell", f->cell,
                           "--tokens", f->tokens, NULL};
    /* A tick that never comes within the test: NGroups mid-rollout move
     * on the worker's fast steps alone. */
    setenv("BERTHD_TICK_MS", "600000", 1);
    int rc = f->rc != NULL ? test_berthd_start(&f->d, false, dargs) : -1;
    unsetenv("BERTHD_TICK_MS");
    if (rc != 0)
        return -1;
    f->d_running = true;
    static const char config[] = "{\"images\": [\"busybox:latest\"], \"start_latency_ms\": 50}";
    for (int i = 0; i < NAGENTS; i++) {
        char host[16];
        snprintf(host, sizeof host, "sim-%d", i);
        const char *aargs[] = {"--cores", "8", "--memory-mib", "65536", "--tick-ms", "50",
                               "--heartbeat-ms", "200", "--ttl-ms", "10000", NULL};
        if (test_agent_start(&f->agents[f->nagents], berth_test_redis_group->url, f->cell, host,
                             "sim", config, aargs) != 0)
            return -1;
        f->nagents++;
    }
    return wait_hosts(f) ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f == NULL)
        return 0;
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
    if (f->tokens[0] != '\0')
        unlink(f->tokens);
    free(f);
    return rc;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* The spec's examples: each request's body sent, each answer shaped like
 * the example's. */
static void test_spec_examples(void **state)
{
    fixture_t *f = *state;
    char *path = ngpath("demo", "demo-ngroup", NULL);
    json_t *ex = load_example("NGroupsCreateOrUpdate.json");
    char *body = json_dumps(json_object_get(json_object_get(ex, "parameters"), "NGroup"), 0);
    test_http_t h = http(f, "PUT", path, body);
    if (h.status != 201)
        fprintf(stderr, "%s\n", h.body);
    assert_int_equal(h.status, 201);
    assert_shaped(json_object_get(json_object_get(json_object_get(ex, "responses"), "201"),
                                  "body"),
                  h.json, "");
    test_http_free(&h);
    h = http(f, "PUT", path, body);
    assert_int_equal(h.status, 200);
    assert_shaped(json_object_get(json_object_get(json_object_get(ex, "responses"), "200"),
                                  "body"),
                  h.json, "");
    test_http_free(&h);
    free(body);
    json_decref(ex);

    ex = load_example("NGroupsGet.json");
    h = http(f, "GET", path, NULL);
    assert_int_equal(h.status, 200);
    assert_shaped(json_object_get(json_object_get(json_object_get(ex, "responses"), "200"),
                                  "body"),
                  h.json, "");
    test_http_free(&h);
    json_decref(ex);

    ex = load_example("NGroupsUpdate.json");
    body = json_dumps(json_object_get(json_object_get(ex, "parameters"), "NGroup"), 0);
    h = http(f, "PATCH", path, body);
    if (h.status != 200)
        fprintf(stderr, "%s\n", h.body);
    assert_int_equal(h.status, 200);
    assert_shaped(json_object_get(json_object_get(json_object_get(ex, "responses"), "200"),
                                  "body"),
                  h.json, "");
    test_http_free(&h);
    free(body);
    json_decref(ex);

    ex = load_example("NGroupsListByResourceGroup.json");
    char *list = ngpath("demo", NULL, NULL);
    h = http(f, "GET", list, NULL);
    assert_int_equal(h.status, 200);
    assert_shaped(json_object_get(json_object_get(json_object_get(ex, "responses"), "200"),
                                  "body"),
                  h.json, "");
    test_http_free(&h);
    free(list);
    json_decref(ex);

    char *start = ngpath("demo", "demo-ngroup", "/start");
    h = http(f, "POST", start, NULL);
    assert_int_equal(h.status, 202);
    test_http_free(&h);
    free(start);
    h = http(f, "DELETE", path, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    h = http(f, "GET", path, NULL);
    assert_int_equal(h.status, 404);
    test_http_free(&h);
    free(path);
}

/* A profile revision rolled out, 3 of 12 at a time, with no tick. */
static void test_rollout(void **state)
{
    fixture_t *f = *state;
    put_profile(f, "web", "one");
    char *path = ngpath("rg", "web", NULL);
    const char *rolling = "\"updateProfile\": {\"updateMode\": \"Rolling\", "
                          "\"rollingUpdateProfile\": {\"maxBatchPercent\": 25, "
                          "\"inPlaceUpdate\": true}}";
    char *body = ng_body(12, "web", 0, rolling);
    test_http_t h = http(f, "PUT", path, body);
    if (h.status != 201)
        fprintf(stderr, "%s\n", h.body);
    assert_int_equal(h.status, 201);
    assert_null(strstr(h.body, "TOPSECRET"));
    test_http_free(&h);
    h = wait_ngroup(f, path, 12, 12, 12);
    json_t *p0 = json_array_get(
        json_object_get(json_object_get(h.json, "properties"), "containerGroupProfiles"), 0);
    assert_int_equal(json_integer_value(json_object_get(p0, "revision")), 1);
    test_http_free(&h);

    /* Revision 2 of the profile, picked up by a PUT naming none. */
    put_profile(f, "web", "two");
    h = http(f, "PUT", path, body);
    assert_int_equal(h.status, 200);
    assert_true(updating_of(&h) <= 3);
    p0 = json_array_get(
        json_object_get(json_object_get(h.json, "properties"), "containerGroupProfiles"), 0);
    assert_int_equal(json_integer_value(json_object_get(p0, "revision")), 2);
    assert_int_equal(json_integer_value(json_object_get(status_of(&h), "revision")), 2);
    test_http_free(&h);
    h = wait_ngroup(f, path, 12, 12, 3);
    test_http_free(&h);
    free(body);

    /* A bad revision is refused and changes nothing. */
    body = ng_body(12, "web", 9, rolling);
    h = http(f, "PUT", path, body);
    expect_error(&h, 404, "properties.containerGroupProfiles[0].revision");
    test_http_free(&h);
    free(body);
    free(path);
}

/* Prefix, fault domains, stop, start, restart, lists. */
/* The currentValue of usage `name` in GET .../locations/LOC/usages. */
static json_int_t usage_of(fixture_t *f, const char *loc, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/locations/%s/"
                     "usages?api-version=" APIV, loc) < 0)
        abort();
    test_http_t h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    json_t *doc = json_loads(h.body, 0, NULL);
    assert_non_null(doc);
    json_int_t v = -1;
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(doc, "value"), i, u)
    {
        if (strcmp(json_string_value(json_object_get(json_object_get(u, "name"), "value")),
                   name) == 0)
            v = json_integer_value(json_object_get(u, "currentValue"));
    }
    json_decref(doc);
    test_http_free(&h);
    free(p);
    return v;
}

/* Whether GET .../locations/LOC/cachedImages lists `image` to the
 * subscription's tenant. */
static bool cached_image(fixture_t *f, const char *loc, const char *image)
{
    char *p = NULL;
    if (asprintf(&p, "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/locations/%s/"
                     "cachedImages?api-version=" APIV, loc) < 0)
        abort();
    test_http_t h = test_http_send(&f->d, "GET", p, NULL, TENANT_TOKEN);
    assert_int_equal(h.status, 200);
    bool found = strstr(h.body, image) != NULL;
    test_http_free(&h);
    free(p);
    return found;
}

static void test_members_and_actions(void **state)
{
    fixture_t *f = *state;
    put_profile(f, "web", "one");
    char *path = ngpath("rg", "fd", NULL);
    char *body = ng_body(6, "web", 1,
                         "\"placementProfile\": {\"faultDomainCount\": 3}");
    /* The prefix goes into the elastic profile. */
    char *b2 = NULL;
    const char *at = strstr(body, "\"desiredCount\": 6}");
    assert_non_null(at);
    if (asprintf(&b2, "%.*s\"desiredCount\": 6, \"containerGroupNamingPolicy\": "
                      "{\"guidNamingPolicy\": {\"prefix\": \"cg-\"}}}%s",
                 (int)(at - body), body, at + strlen("\"desiredCount\": 6}")) < 0)
        abort();
    test_http_t h = http(f, "PUT", path, b2);
    if (h.status != 201)
        fprintf(stderr, "%s\n", h.body);
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    h = wait_ngroup(f, path, 6, 6, 6);
    /* The members are the subscription's groups in the NGroup's location:
     * its usages count them (0.5 CPU rounds up to a core each) and its
     * cached images hold their image; another location sees none. */
    assert_int_equal(usage_of(f, "westeurope", "ContainerGroups"), 6);
    assert_int_equal(usage_of(f, "westeurope", "StandardCores"), 6);
    assert_int_equal(usage_of(f, "westeurope", "StandardMemoryInGB"), 3);
    assert_int_equal(usage_of(f, "eastus", "ContainerGroups"), 0);
    assert_int_equal(usage_of(f, "eastus", "StandardCores"), 0);
    assert_true(cached_image(f, "westeurope", "busybox:latest"));
    assert_false(cached_image(f, "eastus", "busybox:latest"));
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(status_of(&h), "members"), i, m)
    {
        assert_int_equal(strncmp(json_string_value(json_object_get(m, "name")), "cg-fd-", 6), 0);
        const char *host = json_string_value(json_object_get(m, "host"));
        size_t on = 0, j;
        json_t *o;
        json_array_foreach(json_object_get(status_of(&h), "members"), j, o)
        {
            on += strcmp(host, json_string_value(json_object_get(o, "host"))) == 0;
        }
        assert_int_equal(on, 2);
    }
    test_http_free(&h);
    /* The fault domain count is fixed. */
    char *b3 = strdup(b2);
    char *fd = strstr(b3, "\"faultDomainCount\": 3");
    assert_non_null(fd);
    fd[strlen("\"faultDomainCount\": ")] = '2';
    h = http(f, "PUT", path, b3);
    expect_error(&h, 409, "properties.placementProfile.faultDomainCount");
    test_http_free(&h);
    free(b3);

    /* Manual (no updateProfile given): revision 2 of the profile is
     * recorded, no member is updated, members placed later run it. */
    put_profile(f, "web", "two");
    char *b4 = strdup(b2);
    char *rev = strstr(b4, "\"revision\": 1");
    assert_non_null(rev);
    rev[strlen("\"revision\": ")] = '2';
    h = http(f, "PUT", path, b4);
    assert_int_equal(h.status, 200);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(h.json, "properties"),
                                            "updateProfile"),
                            "updateMode")),
                        "Manual");
    test_http_free(&h);
    h = wait_ngroup(f, path, 6, 0, 6);
    assert_int_equal(json_integer_value(json_object_get(status_of(&h), "revision")), 2);
    test_http_free(&h);
    h = http(f, "PATCH", path, "{\"properties\": {\"elasticProfile\": {\"desiredCount\": 8}}}");
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    h = wait_ngroup(f, path, 8, 2, 8);
    test_http_free(&h);
    free(b4);

    char *stop = ngpath("rg", "fd", "/stop"), *start = ngpath("rg", "fd", "/start"),
         *restart = ngpath("rg", "fd", "/restart");
    h = http(f, "POST", stop, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    h = http(f, "GET", path, NULL);
    assert_true(json_is_true(json_object_get(status_of(&h), "stopped")));
    assert_int_equal(json_integer_value(json_object_get(status_of(&h), "currentCount")), 0);
    test_http_free(&h);
    h = http(f, "POST", restart, NULL);
    expect_error(&h, 409, "");
    test_http_free(&h);
    /* Start places every member anew, at the current revision. */
    h = http(f, "POST", start, NULL);
    assert_int_equal(h.status, 202);
    test_http_free(&h);
    h = wait_ngroup(f, path, 8, 8, 8);
    test_http_free(&h);
    h = http(f, "POST", restart, NULL);
    assert_int_equal(h.status, 202);
    test_http_free(&h);

    /* Listed by resource group and by subscription. */
    char *sub = NULL;
    if (asprintf(&sub, "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/NGroups"
                       "?api-version=" APIV) < 0)
        abort();
    h = http(f, "GET", sub, NULL);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 1);
    test_http_free(&h);
    char *list = ngpath("rg", NULL, NULL);
    h = http(f, "GET", list, NULL);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 1);
    test_http_free(&h);
    h = http(f, "DELETE", path, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    h = http(f, "POST", start, NULL);
    assert_int_equal(h.status, 404);
    test_http_free(&h);
    free(sub);
    free(list);
    free(stop);
    free(start);
    free(restart);
    free(body);
    free(b2);
    free(path);
}

/* Bad bodies: 400 naming the path (404 for a missing profile), nothing
 * stored. */
static void test_bad_bodies(void **state)
{
    fixture_t *f = *state;
    put_profile(f, "web", "one");
    static const char *const P = "\"containerGroupProfiles\": [{\"resource\": {\"id\": "
                                 "\"/subscriptions/" SUB "/resourceGroups/rg/providers/"
                                 "Microsoft.ContainerInstance/containerGroupProfiles/web\"}}]";
    static const struct {
        const char *props;          /* properties' members besides the profile */
        long status;
        const char *target;
    } cases[] = {
        {"\"containerGroupProfile\": {\"properties\": {}}", 400,
         "properties.containerGroupProfile"},
        {"\"zones\": [\"1\"]", 400, "properties.zones"},
        {"\"updateProfile\": {\"updateMode\": \"Rolling\", \"rollingUpdateProfile\": "
         "{\"maxUnavailable\": 2}}",
         400, "properties.updateProfile.rollingUpdateProfile.maxUnavailable"},
        {"\"updateProfile\": {\"updateMode\": \"Auto\"}", 400,
         "properties.updateProfile.updateMode"},
        {"\"updateProfile\": {\"rollingUpdateProfile\": {\"maxBatchPercent\": 0}}", 400,
         "properties.updateProfile.rollingUpdateProfile.maxBatchPercent"},
        {"\"updateProfile\": {\"rollingUpdateProfile\": {\"maxUnhealthyPercent\": 101}}", 400,
         "properties.updateProfile.rollingUpdateProfile.maxUnhealthyPercent"},
        {"\"updateProfile\": {\"rollingUpdateProfile\": {\"pauseTimeBetweenBatches\": \"PT\"}}",
         400, "properties.updateProfile.rollingUpdateProfile.pauseTimeBetweenBatches"},
        {"\"updateProfile\": {\"rollingUpdateProfile\": {\"pauseTimeBetweenBatches\": \"P1M\"}}",
         400, "properties.updateProfile.rollingUpdateProfile.pauseTimeBetweenBatches"},
        {"\"updateProfile\": {\"rollingUpdateProfile\": {\"pauseTimeBetweenBatches\": "
         "\"PT1.5M30S\"}}",
         400, "properties.updateProfile.rollingUpdateProfile.pauseTimeBetweenBatches"},
        {"\"updateProfile\": {\"rollingUpdateProfile\": {\"pauseTimeBetweenBatches\": \"P2D\"}}",
         400, "properties.updateProfile.rollingUpdateProfile.pauseTimeBetweenBatches"},
        {"\"updateProfile\": {\"rollingUpdateProfile\": {\"inPlaceUpdate\": \"yes\"}}", 400,
         "properties.updateProfile.rollingUpdateProfile.inPlaceUpdate"},
        {"\"placementProfile\": {\"faultDomainCount\": 0}", 400,
         "properties.placementProfile.faultDomainCount"},
        {"\"elasticProfile\": {\"desiredCount\": 2, \"containerGroupNamingPolicy\": "
         "{\"guidNamingPolicy\": {\"prefix\": \"-x\"}}}",
         400, "properties.elasticProfile.containerGroupNamingPolicy.guidNamingPolicy.prefix"},
        {"\"elasticProfile\": {\"desiredCount\": 1001}", 400,
         "properties.elasticProfile.desiredCount"},
        {"\"foo\": 1", 400, "properties.foo"},
    };
    char *path = ngpath("rg", "bad", NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *b = NULL;
        if (asprintf(&b, "{\"location\": \"westeurope\", \"properties\": {%s, %s}}",
                     cases[i].props, P) < 0)
            abort();
        test_http_t h = http(f, "PUT", path, b);
        expect_error(&h, cases[i].status, cases[i].target);
        test_http_free(&h);
        free(b);
    }
    static const struct {
        const char *stubs;
        long status;
        const char *target;
    } refs[] = {
        {"[{\"resource\": {\"id\": \"/subscriptions/" SUB "/resourceGroups/rg/providers/"
         "Microsoft.ContainerInstance/containerGroupProfiles/none\"}}]",
         404, "properties.containerGroupProfiles[0].resource.id"},
        {"[{\"resource\": {\"id\": \"x\"}}, {\"resource\": {\"id\": \"y\"}}]", 400,
         "properties.containerGroupProfiles[1]"},
        {"[{\"revision\": 1}]", 400, "properties.containerGroupProfiles[0].resource"},
        {"[{\"resource\": {\"id\": \"/subscriptions/" SUB "/resourceGroups/rg/providers/"
         "Microsoft.ContainerInstance/containerGroupProfiles/web\"}, \"revision\": 0}]",
         400, "properties.containerGroupProfiles[0].revision"},
    };
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        char *b = NULL;
        if (asprintf(&b,
                     "{\"location\": \"westeurope\", \"properties\": {\"containerGroupProfiles\": "
                     "%s}}",
                     refs[i].stubs) < 0)
            abort();
        test_http_t h = http(f, "PUT", path, b);
        expect_error(&h, refs[i].status, refs[i].target);
        test_http_free(&h);
        free(b);
    }
    test_http_t h = http(f, "GET", path, NULL);
    assert_int_equal(h.status, 404);
    test_http_free(&h);
    redisReply *r = redisCommand(f->rc, "HLEN berth:{%s}:ngroups", f->cell);
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spec_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members_and_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bodies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, berth_test_redis_group_setup,
                                  berth_test_redis_group_teardown);
}
