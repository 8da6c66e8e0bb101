/*
 * test_berthd_profiles.c: berthd's container group profiles end to end: a
 * real redis-server (tests/redis-harness.c), a berthd
 * (tests/berthd-harness.c) and a berth-agent with the simulator plugin
 * (tests/agent-harness.c) in one cell per test.
 *
 * Covers: the spec's profile examples (2025-09-01) put and answered with
 * secrets redacted; revisions counted (an identical PUT keeps its
 * revision, a changed one makes the next); GET, GET by revision, the list
 * of revisions; lists by resource group and subscription; PATCH of tags;
 * DELETE (200, then 204, every key gone); api-versions; bad bodies (400
 * naming the JSON path, nothing stored); a container group created from a
 * profile reference (the profile's document under the request's,
 * containers merged by name, the reference answered and kept, Running on
 * the simulated agent) and the errors of a bad reference.
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
#include <unistd.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "agent-harness.h"
#include "berthd-harness.h"
#include "redis-harness.h"

#define SUB "0000-sub-1"
#define PAPIV "2025-09-01"
/* Container groups name a profile (properties.containerGroupProfile) from
 * api-version 2024-05-01-preview on; berthd refuses it under earlier ones. */
#define GAPIV "2025-09-01"
#define WAIT_MS 15000

static int cell_counter;

typedef struct fixture {
    char cell[32];
    test_agent_t agent;
    bool agent_running;
    test_berthd_t d;
    bool d_running;
    redisContext *rc;
} fixture_t;

/* ---- helpers ------------------------------------------------------------------------------ */

static test_http_t http(fixture_t *f, const char *method, const char *path, const char *body)
{
    return test_http_send(&f->d, method, path, body, NULL);
}

/* The path of profile `name` in resource group `rg`, with `suffix` and
 * api-version `apiv`. */
static char *ppath_v(const char *rg, const char *name, const char *suffix, const char *apiv)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/%s/providers/"
                 "Microsoft.ContainerInstance/containerGroupProfiles/%s%s?api-version=%s",
                 rg, name, suffix ? suffix : "", apiv) < 0)
        abort();
    return p;
}

static char *ppath(const char *rg, const char *name, const char *suffix)
{
    return ppath_v(rg, name, suffix, PAPIV);
}

static char *gpath(const char *rg, const char *name)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/" SUB "/resourceGroups/%s/providers/"
                 "Microsoft.ContainerInstance/containerGroups/%s?api-version=" GAPIV,
                 rg, name) < 0)
        abort();
    return p;
}

/* A profile's body: container "app" (busybox) with env S=`env`, a
 * secureValue, `cpu` cores; tags {team: blue}. */
static char *pdoc_named(const char *container, const char *env, double cpu)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"location\": \"West US\", \"tags\": {\"team\": \"blue\"}, \"properties\": "
                 "{\"osType\": \"Linux\", \"containers\": [{\"name\": \"%s\", \"properties\": "
                 "{\"image\": \"busybox:latest\", \"command\": [\"sleep\", \"1000\"], "
                 "\"environmentVariables\": [{\"name\": \"S\", \"value\": \"%s\"}, "
                 "{\"name\": \"PW\", \"secureValue\": \"TOPSECRET-env\"}], "
                 "\"resources\": {\"requests\": {\"cpu\": %g, \"memoryInGB\": 1}}}}]}}",
                 container, env, cpu) < 0)
        abort();
    return out;
}

static char *pdoc(const char *env, double cpu)
{
    return pdoc_named("app", env, cpu);
}

static void expect_error(const test_http_t *h, long status, const char *code, const char *target)
{
    json_t *e = json_object_get(h->json, "error");
    if (h->status != status || !json_is_object(e))
        fprintf(stderr, "expected %ld, got %ld: %s\n", status, h->status, h->body);
    assert_int_equal(h->status, status);
    assert_true(json_is_object(e));
    const char *c = json_string_value(json_object_get(e, "code"));
    const char *t = json_string_value(json_object_get(e, "target"));
    assert_non_null(c);
    assert_non_null(json_string_value(json_object_get(e, "message")));
    if (code != NULL && strcmp(c, code) != 0)
        fail_msg("expected code %s: %s", code, h->body);
    if (target != NULL && strcmp(t != NULL ? t : "", target) != 0)
        fail_msg("expected target %s: %s", target, h->body);
    /* Never an internal key. */
    assert_null(strstr(h->body, SUB "/"));
}

static void assert_no_secret(const test_http_t *h)
{
    static const char *const secrets[] = {"TOPSECRET", "workspaceKey\"", "storageAccountKey",
                                          "SecretValue1InBase64", NULL};
    for (size_t i = 0; secrets[i] != NULL; i++)
        if (h->body != NULL && strstr(h->body, secrets[i]) != NULL)
            fail_msg("secret %s in response: %s", secrets[i], h->body);
}

static long long revision_of(const json_t *body)
{
    json_t *r = json_object_get(json_object_get(body, "properties"), "revision");
    return json_is_integer(r) ? (long long)json_integer_value(r) : -1;
}

/* The first container's `member` of properties. */
static json_t *ctr_member(const json_t *body, size_t i, const char *member)
{
    json_t *c = json_array_get(json_object_get(json_object_get(body, "properties"),
                                               "containers"), i);
    return json_object_get(json_object_get(c, "properties"), member);
}

/* Value of environment variable `name` of container i, or NULL. */
static const char *env_of(const json_t *body, size_t i, const char *name)
{
    size_t k;
    json_t *e;
    json_array_foreach(ctr_member(body, i, "environmentVariables"), k, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return json_string_value(json_object_get(e, "value"));
    }
    return NULL;
}

/* A Redis reply's integer (-1 when none). */
static long long redis_int(fixture_t *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(f->rc, fmt, ap);
    va_end(ap);
    long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r != NULL)
        freeReplyObject(r);
    return n;
}

/* How many of the cell's keys begin with `prefix`. */
static size_t keys_with(fixture_t *f, const char *prefix)
{
    redisReply *r = redisCommand(f->rc, "KEYS berth:{%s}:%s*", f->cell, prefix);
    size_t n = r != NULL && r->type == REDIS_REPLY_ARRAY ? r->elements : (size_t)-1;
    if (r != NULL)
        freeReplyObject(r);
    return n;
}

static test_http_t put_profile(fixture_t *f, const char *rg, const char *name, const char *body,
                               long status)
{
    char *p = ppath(rg, name, NULL);
    test_http_t h = http(f, "PUT", p, body);
    if (h.status != status)
        fprintf(stderr, "PUT profile %s: %ld %s\n", name, h.status, h.body);
    assert_int_equal(h.status, status);
    assert_no_secret(&h);
    free(p);
    return h;
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

/* ---- fixtures ----------------------------------------------------------------------------- */

static bool wait_hosts(fixture_t *f)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (test_now_ms() < end) {
        test_http_t h = http(f, "GET", "/berth/hosts", NULL);
        size_t got = json_array_size(json_object_get(h.json, "value"));
        test_http_free(&h);
        if (got >= 1)
            return true;
        test_sleep_ms(50);
    }
    return false;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->cell, sizeof f->cell, "bp-%d-%d", (int)getpid() % 10000, ++cell_counter);
    f->rc = berth_test_redis_connect(berth_test_redis_group);
    const char *dargs[] = {"--redis", berth_test_redis_group->url, "--cell", f->cell, NULL};
    const char *aargs[] = {"--cores", "8", "--memory-mib", "65536", "--tick-ms", "50",
                           "--heartbeat-ms", "200", "--ttl-ms", "10000", "--gpu-sku", "K80",
                           "--gpu-count", "4", NULL};
    char config[160];
    snprintf(config, sizeof config,
             "{\"images\": [\"busybox:latest\"], \"start_latency_ms\": 100,"
             " \"pull_latency_ms\": 100}");
    if (f->rc != NULL && test_berthd_start(&f->d, false, dargs) == 0)
        f->d_running = true;
    if (f->d_running && test_agent_start(&f->agent, berth_test_redis_group->url, f->cell,
                                         "sim-1", "sim", config, aargs) == 0)
        f->agent_running = true;
    if (!f->agent_running || !wait_hosts(f)) {
        if (f->d_running) {
            test_berthd_dump(&f->d, 30);
            test_berthd_kill(&f->d);
        }
        if (f->agent_running) {
            test_agent_dump(&f->agent, 20);
            test_agent_kill(&f->agent);
        }
        if (f->rc)
            redisFree(f->rc);
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
    if (f->agent_running) {
        test_agent_stop(&f->agent);
        unlink(f->agent.log_path);
    }
    if (f->rc)
        redisFree(f->rc);
    free(f);
    return rc;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* Revisions: the first PUT makes 1, an identical PUT keeps it, a change
 * makes 2; GET, GET by revision, the revisions' list; PATCH; DELETE. */
static void test_revisions(void **state)
{
    fixture_t *f = *state;
    char *one = pdoc("1", 1), *two = pdoc("2", 1);
    test_http_t h = put_profile(f, "rg-a", "web", one, 201);
    assert_int_equal(revision_of(h.json), 1);
    assert_string_equal(json_string_value(json_object_get(h.json, "type")),
                        "Microsoft.ContainerInstance/containerGroupProfiles");
    assert_string_equal(json_string_value(json_object_get(h.json, "id")),
                        "/subscriptions/" SUB "/resourceGroups/rg-a/providers/"
                        "Microsoft.ContainerInstance/containerGroupProfiles/web");
    assert_string_equal(json_string_value(json_object_get(json_object_get(h.json, "tags"),
                                                          "team")), "blue");
    assert_string_equal(env_of(h.json, 0, "S"), "1");
    test_http_free(&h);

    h = put_profile(f, "rg-a", "web", one, 200);            /* identical */
    assert_int_equal(revision_of(h.json), 1);
    test_http_free(&h);
    h = put_profile(f, "rg-a", "web", two, 200);            /* changed */
    assert_int_equal(revision_of(h.json), 2);
    assert_string_equal(env_of(h.json, 0, "S"), "2");
    test_http_free(&h);

    char *p = ppath("rg-a", "web", NULL);
    h = http(f, "GET", p, NULL);
    assert_int_equal(h.status, 200);
    assert_no_secret(&h);
    assert_int_equal(revision_of(h.json), 2);
    test_http_free(&h);

    char *p1 = ppath("rg-a", "web", "/revisions/1");
    h = http(f, "GET", p1, NULL);
    assert_int_equal(h.status, 200);
    assert_no_secret(&h);
    assert_int_equal(revision_of(h.json), 1);
    assert_string_equal(env_of(h.json, 0, "S"), "1");
    test_http_free(&h);
    char *p3 = ppath("rg-a", "web", "/revisions/3");
    h = http(f, "GET", p3, NULL);
    expect_error(&h, 404, "RevisionNotFound", "revisionNumber");
    test_http_free(&h);
    char *p0 = ppath("rg-a", "web", "/revisions/zero");
    h = http(f, "GET", p0, NULL);
    expect_error(&h, 400, NULL, "revisionNumber");
    test_http_free(&h);

    char *pr = ppath("rg-a", "web", "/revisions");
    h = http(f, "GET", pr, NULL);
    assert_int_equal(h.status, 200);
    assert_no_secret(&h);
    json_t *v = json_object_get(h.json, "value");
    assert_int_equal(json_array_size(v), 2);
    assert_int_equal(revision_of(json_array_get(v, 0)), 1);
    assert_int_equal(revision_of(json_array_get(v, 1)), 2);
    test_http_free(&h);

    /* PATCH: tags only, the revision kept. */
    h = http(f, "PATCH", p, "{\"tags\": {\"tag1key\": \"tag1Value\"}}");
    assert_int_equal(h.status, 200);
    assert_int_equal(revision_of(h.json), 2);
    json_t *tags = json_object_get(h.json, "tags");
    assert_int_equal(json_object_size(tags), 1);
    assert_string_equal(json_string_value(json_object_get(tags, "tag1key")), "tag1Value");
    test_http_free(&h);
    h = http(f, "PATCH", p, "{\"properties\": {}}");
    expect_error(&h, 400, NULL, NULL);
    test_http_free(&h);
    char *pmissing = ppath("rg-a", "nothere", NULL);
    h = http(f, "PATCH", pmissing, "{\"tags\": {}}");
    expect_error(&h, 404, "ResourceNotFound", NULL);
    test_http_free(&h);
    h = http(f, "GET", pmissing, NULL);
    expect_error(&h, 404, "ResourceNotFound", NULL);
    test_http_free(&h);

    /* DELETE: the profile and every revision. */
    assert_int_equal(keys_with(f, "profilerevs:"), 1);
    h = http(f, "DELETE", p, NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    h = http(f, "GET", p, NULL);
    expect_error(&h, 404, "ResourceNotFound", NULL);
    test_http_free(&h);
    h = http(f, "DELETE", p, NULL);
    assert_int_equal(h.status, 204);
    test_http_free(&h);
    assert_int_equal(keys_with(f, "profilerevs:"), 0);
    assert_int_equal(redis_int(f, "HLEN berth:{%s}:profiles", f->cell), 0);
    assert_int_equal(redis_int(f, "ZCARD berth:{%s}:profileindex", f->cell), 0);

    /* Put again after the delete: revision 1 anew. */
    h = put_profile(f, "rg-a", "web", two, 201);
    assert_int_equal(revision_of(h.json), 1);
    test_http_free(&h);
    free(one), free(two), free(p), free(p1), free(p3), free(p0), free(pr), free(pmissing);
}

/* Lists by resource group and by subscription. */
static void test_lists(void **state)
{
    fixture_t *f = *state;
    char *doc = pdoc("x", 1);
    const char *where[][2] = {{"rg-a", "p1"}, {"rg-a", "p2"}, {"rg-b", "p3"}};
    for (size_t i = 0; i < 3; i++) {
        test_http_t h = put_profile(f, where[i][0], where[i][1], doc, 201);
        test_http_free(&h);
    }
    test_http_t h = http(f, "GET",
                         "/subscriptions/" SUB "/resourceGroups/rg-a/providers/"
                         "Microsoft.ContainerInstance/containerGroupProfiles?api-version=" PAPIV,
                         NULL);
    assert_int_equal(h.status, 200);
    assert_no_secret(&h);
    json_t *v = json_object_get(h.json, "value");
    assert_int_equal(json_array_size(v), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "name")), "p1");
    assert_int_equal(revision_of(json_array_get(v, 1)), 1);
    test_http_free(&h);
    h = http(f, "GET",
             "/subscriptions/" SUB "/providers/Microsoft.ContainerInstance/"
             "containerGroupProfiles?api-version=" PAPIV, NULL);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 3);
    test_http_free(&h);
    h = http(f, "GET",
             "/subscriptions/0000-sub-2/providers/Microsoft.ContainerInstance/"
             "containerGroupProfiles?api-version=" PAPIV, NULL);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 0);
    test_http_free(&h);
    free(doc);
}

/* The spec's profile examples: put, answered like the example's 201 (keys
 * of properties), secrets redacted; the others per what the core models. */
static void test_spec_examples(void **state)
{
    fixture_t *f = *state;
    static const char *const files[] = {
        "ContainerGroupProfilesCreateOrUpdate.json",
        "ContainerGroupProfileCreateOrUpdate_CreateConfidential.json",
        "ContainerGroupProfileCreateOrUpdate_EncryptionProperties.json",
        "ContainerGroupProfileCreateOrUpdate_Extensions.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        json_t *ex = load_example(files[i]);
        json_t *params = json_object_get(ex, "parameters");
        json_t *cgp = json_object_get(params, "ContainerGroupProfile");
        assert_non_null(cgp);
        char *body = json_dumps(cgp, 0);
        char name[16];
        snprintf(name, sizeof name, "ex%zu", i);
        test_http_t h = put_profile(f, "rg-ex", name, body, 201);
        json_t *want = json_object_get(json_object_get(json_object_get(ex, "responses"), "201"),
                                       "body");
        json_t *wp = json_object_get(want, "properties"), *gp = json_object_get(h.json,
                                                                               "properties");
        const char *k;
        json_t *wv;
        json_object_foreach(wp, k, wv)
        {
            if (json_object_get(gp, k) == NULL)
                fail_msg("%s: properties.%s missing from %s", files[i], k, h.body);
        }
        assert_int_equal(revision_of(h.json), 1);
        if (json_object_get(cgp, "zones") != NULL)
            assert_true(json_equal(json_object_get(cgp, "zones"),
                                   json_object_get(h.json, "zones")));
        test_http_free(&h);
        free(body);
        json_decref(ex);
    }
}

/* Bad bodies and api-versions: 400 naming the path, nothing stored. */
static void test_bad_requests(void **state)
{
    fixture_t *f = *state;
    char *p = ppath("rg-a", "bad", NULL);
    struct {
        const char *body;
        const char *target;
    } cases[] = {
        {"", ""},
        {"{not json", ""},
        {"[]", ""},
        {"{\"location\": \"westus\"}", "properties"},
        {"{\"properties\": {\"containers\": []}}", "location"},
        {"{\"location\": \"westus\", \"bogus\": 1, \"properties\": {}}", "bogus"},
        {"{\"location\": \"westus\", \"name\": \"other\", \"properties\": {}}", "name"},
        {"{\"location\": \"westus\", \"tags\": {\"a\": 1}, \"properties\": {}}", "tags"},
        {"{\"location\": \"westus\", \"properties\": {\"osType\": \"Linux\", \"containers\": "
         "[{\"name\": \"app\", \"properties\": {\"resources\": {\"requests\": {\"cpu\": 1, "
         "\"memoryInGB\": 1}}}}]}}", "properties.containers[0].properties.image"},
        {"{\"location\": \"westus\", \"properties\": {\"osType\": \"Linux\", \"unknown\": 1, "
         "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"busybox\", "
         "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}",
         "properties.unknown"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_http_t h = http(f, "PUT", p, cases[i].body);
        if (h.status != 400)
            fprintf(stderr, "case %zu: %s\n", i, cases[i].body);
        expect_error(&h, 400, NULL, cases[i].target);
        test_http_free(&h);
    }
    /* Profiles are not served before 2024-05-01-preview. */
    char *doc = pdoc("1", 1);
    char *old = ppath_v("rg-a", "bad", NULL, "2023-05-01");
    test_http_t h = http(f, "PUT", old, doc);
    expect_error(&h, 400, "InvalidApiVersionParameter", "api-version");
    test_http_free(&h);
    char *none = ppath_v("rg-a", "bad", NULL, "");
    h = http(f, "GET", none, NULL);
    expect_error(&h, 400, NULL, "api-version");
    test_http_free(&h);
    char *prev = ppath_v("rg-a", "bad_name-", NULL, "2024-05-01-preview");
    h = http(f, "PUT", prev, doc);
    expect_error(&h, 400, NULL, "containerGroupProfileName");
    test_http_free(&h);
    assert_int_equal(redis_int(f, "HLEN berth:{%s}:profiles", f->cell), 0);
    assert_int_equal(keys_with(f, "profilerevs:"), 0);
    /* The first preview with profiles is served. */
    char *ok = ppath_v("rg-a", "Good_1", NULL, "2024-05-01-preview");
    h = http(f, "PUT", ok, doc);
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    free(p), free(doc), free(old), free(none), free(prev), free(ok);
}

/* A container group created from a profile: the profile's document under
 * the request's, containers merged by name; the reference answered, kept
 * and shown by GET; Running on the agent. */
static void test_group_from_profile(void **state)
{
    fixture_t *f = *state;
    char *one = pdoc("1", 1), *two = pdoc("2", 1);
    test_http_t h = put_profile(f, "rg-a", "tmpl", one, 201);
    test_http_free(&h);
    h = put_profile(f, "rg-a", "tmpl", two, 200);
    test_http_free(&h);
    const char *ref = "/subscriptions/" SUB "/resourceGroups/rg-a/providers/"
                      "Microsoft.ContainerInstance/containerGroupProfiles/tmpl";
    char body[2048];
    /* Revision 1, with the request's env over the profile's container, and
     * a second container of its own. */
    snprintf(body, sizeof body,
             "{\"location\": \"west us\", \"properties\": {\"containers\": [{\"name\": \"app\", "
             "\"properties\": {\"environmentVariables\": [{\"name\": \"S\", \"value\": "
             "\"mine\"}]}}, {\"name\": \"side\", \"properties\": {\"image\": "
             "\"busybox:latest\", \"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": "
             "0.5}}}}], \"containerGroupProfile\": {\"id\": \"%s\", \"revision\": 1}}}", ref);
    char *g = gpath("rg-a", "from-tmpl");
    h = http(f, "PUT", g, body);
    if (h.status != 201)
        fprintf(stderr, "PUT group: %ld %s\n", h.status, h.body);
    assert_int_equal(h.status, 201);
    assert_no_secret(&h);
    json_t *cgp = json_object_get(json_object_get(h.json, "properties"),
                                  "containerGroupProfile");
    assert_string_equal(json_string_value(json_object_get(cgp, "id")), ref);
    assert_int_equal(json_integer_value(json_object_get(cgp, "revision")), 1);
    assert_string_equal(env_of(h.json, 0, "S"), "mine");
    assert_string_equal(json_string_value(ctr_member(h.json, 0, "image")), "busybox:latest");
    assert_non_null(ctr_member(h.json, 0, "command"));          /* the profile's */
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(json_object_get(h.json,
                                                                           "properties"),
                                                           "containers"), 1), "name")),
                        "side");
    test_http_free(&h);
    /* Running on the agent, GET shows the reference. */
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    bool running = false;
    while (!running && test_now_ms() < end) {
        h = http(f, "GET", g, NULL);
        json_t *props = json_object_get(h.json, "properties");
        const char *ps = json_string_value(json_object_get(props, "provisioningState"));
        json_t *iv = json_object_get(json_object_get(json_array_get(json_object_get(props,
                                                                                    "containers"),
                                                                    0), "properties"),
                                     "instanceView");
        const char *cs = json_string_value(json_object_get(json_object_get(iv, "currentState"),
                                                           "state"));
        running = ps != NULL && strcmp(ps, "Succeeded") == 0 && cs != NULL &&
                  strcmp(cs, "Running") == 0;
        if (running) {
            cgp = json_object_get(props, "containerGroupProfile");
            assert_int_equal(json_integer_value(json_object_get(cgp, "revision")), 1);
        }
        test_http_free(&h);
        if (!running)
            test_sleep_ms(100);
    }
    assert_true(running);

    /* No revision: the latest (2), and the profile's env where the request
     * says nothing. */
    snprintf(body, sizeof body,
             "{\"location\": \"westus\", \"properties\": {\"containerGroupProfile\": "
             "{\"id\": \"%s\"}}}", ref);
    char *g2 = gpath("rg-a", "latest");
    h = http(f, "PUT", g2, body);
    assert_int_equal(h.status, 201);
    cgp = json_object_get(json_object_get(h.json, "properties"), "containerGroupProfile");
    assert_int_equal(json_integer_value(json_object_get(cgp, "revision")), 2);
    assert_string_equal(env_of(h.json, 0, "S"), "2");
    test_http_free(&h);

    /* Bad references: nothing placed. */
    long long groups = redis_int(f, "ZCARD berth:{%s}:index", f->cell);
    struct {
        const char *ref;
        long status;
        const char *target;
    } bad[] = {
        {"{\"id\": \"/subscriptions/" SUB "/resourceGroups/rg-a/providers/"
         "Microsoft.ContainerInstance/containerGroupProfiles/nope\"}", 404,
         "properties.containerGroupProfile.id"},
        {"{\"id\": \"/subscriptions/" SUB "/resourceGroups/rg-a/providers/"
         "Microsoft.ContainerInstance/containerGroupProfiles/tmpl\", \"revision\": 7}", 404,
         "properties.containerGroupProfile.revision"},
        {"{\"id\": \"/subscriptions/0000-sub-2/resourceGroups/rg-a/providers/"
         "Microsoft.ContainerInstance/containerGroupProfiles/tmpl\"}", 400,
         "properties.containerGroupProfile.id"},
        {"{\"id\": \"tmpl\"}", 400, "properties.containerGroupProfile.id"},
        {"{\"id\": \"" "x" "\", \"revision\": 0}", 400,
         "properties.containerGroupProfile.revision"},
        {"{\"id\": 5}", 400, "properties.containerGroupProfile.id"},
        {"\"tmpl\"", 400, "properties.containerGroupProfile"},
    };
    char *g3 = gpath("rg-a", "bad-ref");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"location\": \"westus\", \"properties\": {\"containerGroupProfile\": %s}}",
                 bad[i].ref);
        h = http(f, "PUT", g3, body);
        expect_error(&h, bad[i].status, NULL, bad[i].target);
        test_http_free(&h);
    }
    assert_int_equal(redis_int(f, "ZCARD berth:{%s}:index", f->cell), groups);
    free(one), free(two), free(g), free(g2), free(g3);
}

/* The spec's example of a group from a profile (and a standby pool): its
 * container merged by name into the profile's. */
static void test_group_example(void **state)
{
    fixture_t *f = *state;
    char *doc = pdoc_named("demo1", "1", 1);
    test_http_t h = put_profile(f, "demo", "democgp", doc, 201);
    test_http_free(&h);
    json_t *ex = load_example("ContainerGroupCreateOrUpdateStandbyPool.json");
    json_t *cg = json_object_get(json_object_get(ex, "parameters"), "containerGroup");
    json_t *props = json_object_get(cg, "properties");
    json_object_set_new(json_object_get(props, "containerGroupProfile"), "id",
                        json_string("/subscriptions/" SUB "/resourceGroups/demo/providers/"
                                    "Microsoft.ContainerInstance/containerGroupProfiles/"
                                    "democgp"));
    /* Standby pools are another route's: the reference alone here. */
    json_object_del(props, "standbyPoolProfile");
    char *body = json_dumps(cg, 0);
    char *g = gpath("demo", "demo1");
    h = http(f, "PUT", g, body);
    if (h.status != 201)
        fprintf(stderr, "PUT: %ld %s\n", h.status, h.body);
    assert_int_equal(h.status, 201);
    assert_string_equal(json_string_value(ctr_member(h.json, 0, "image")), "busybox:latest");
    /* The example's configMap beside the profile's members. */
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(ctr_member(h.json, 0, "configMap"), "keyValuePairs"),
                            "Newkey")),
                        "value");
    assert_non_null(env_of(h.json, 0, "S"));    /* the profile's, not replaced */
    json_t *cgp = json_object_get(json_object_get(h.json, "properties"),
                                  "containerGroupProfile");
    assert_int_equal(json_integer_value(json_object_get(cgp, "revision")), 1);
    test_http_free(&h);
    free(body), free(g), free(doc);
    json_decref(ex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_revisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_from_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_example, setup, teardown),
    };
    return cmocka_run_group_tests(tests, berth_test_redis_group_setup,
                                  berth_test_redis_group_teardown);
}
