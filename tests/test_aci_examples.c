/*
 * test_aci_examples.c: every example of ACI's 2025-09-01 spec and of the
 * Standby Pool provider's 2026-04-01 spec (fixtures/aci-spec/) sent to
 * berthd as the example says, against a real redis-server, berthd and a
 * simulated agent.
 *
 * For each example: the path comes from the operation the example belongs
 * to (its parameters fill the path's names), the body is the example's
 * body parameter, the api-version its own.  The answer must carry one of
 * the statuses the example lists, and its body the members the example's
 * body of that status has (objects compared three levels deep; arrays by
 * their first element), but for those a table here leaves out with the
 * reason (values Berth cannot know, such as a public IP).  An example
 * whose feature Berth does not support is listed with the CloudError it
 * gets instead (code and target): that answer is asserted too, and
 * nothing is left behind by it.
 *
 * Examples refer to one another's resources by name (a group created
 * from the profile "democgp" and the pool "demopool"; a pool built from
 * the profile "cgProfile"): what an example needs is created first, from
 * the examples' own bodies.  "subid" in the examples' ARM ids stands for
 * the example's subscription and is replaced by it.
 *
 * What Berth answers differently, each with its reason where it is
 * allowed: no systemData, no public IP or FQDN from a simulated host, no
 * identity tenant or principal (no directory issues identities), no pool
 * forecast ("prediction"), no nextLink on a list that fits one page, and
 * 200 for a DELETE done at once where an example shows only ARM's
 * asynchronous 202.  The secret-reference example (Key Vault secrets read
 * through a managed identity) is refused with a 400 naming
 * properties.secretReferences.
 *
 * This test must never depend on the order of members in an answer, nor
 * on time: every wait is bounded.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "agent-harness.h"
#include "berthd-harness.h"
#include "redis-harness.h"

#define WAIT_MS 15000

static int cell_counter;

typedef struct fixture {
    char cell[32];
    test_agent_t agent;
    bool agent_running;
    test_berthd_t d;
    bool d_running;
} fixture_t;

/* ---- the examples' operations ------------------------------------------------------------- */

#define CI "/providers/Microsoft.ContainerInstance"
#define SUBP "/subscriptions/{subscriptionId}"
#define RGP SUBP "/resourceGroups/{resourceGroupName}"
#define CG RGP CI "/containerGroups/{containerGroupName}"
#define CGP RGP CI "/containerGroupProfiles/{containerGroupProfileName}"
#define NG RGP CI "/ngroups/{ngroupsName}"
#define SP RGP "/providers/Microsoft.StandbyPool/standbyContainerGroupPools"

/* Members an answer may lack, as dotted paths, with the reason. */
typedef struct example {
    const char *file;               /* under fixtures/aci-spec/             */
    const char *method;
    const char *path;               /* {name}s from the example's parameters */
    const char *const *skip;        /* members the answer may lack          */
    /* An example Berth refuses: the status, code and target it answers
     * (status 0: the example is accepted). */
    long refused_status;
    const char *refused_code;
    const char *refused_target;
    const char *rename;             /* NULL, or "param=value": the example's
                                     * parameter replaced (another name)    */
} example_t;

/* What no answer of Berth's carries: ARM's systemData, and the values a
 * simulated host cannot have (a public IP address, its FQDN). */
static const char *const skip_always[] = {"systemData", "nextLink", "properties.ipAddress.ip",
                                          "properties.ipAddress.fqdn", NULL};

/* Instance views come from the agent once the group runs; an example
 * shows one of a group long running, with events Berth's simulator never
 * emits. */
static const char *const skip_cg[] = {"properties.instanceView", "properties.provisioningState",
                                      "properties.containers.properties.instanceView",
                                      /* no directory issues identities here */
                                      "identity.tenantId", "identity.principalId", NULL};

/* ---- helpers ------------------------------------------------------------------------------- */

static test_http_t http(fixture_t *f, const char *method, const char *path, const char *body)
{
    return test_http_send(&f->d, method, path, body, NULL);
}

static json_t *load_example(const char *file)
{
    const char *srcdir = getenv("top_srcdir");
    char path[1024];
    snprintf(path, sizeof path, "%s/fixtures/aci-spec/%s", srcdir ? srcdir : "..", file);
    json_t *ex = json_load_file(path, 0, NULL);
    if (ex == NULL)
        fail_msg("spec example %s is missing", path);
    return ex;
}

/* Replaces every "subid" in the strings of `v` (recursively) with `sub`. */
static void fix_subscription(json_t *v, const char *sub)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m)
        {
            if (json_is_string(m)) {
                const char *s = json_string_value(m);
                const char *at = strstr(s, "/subscriptions/subid/");
                if (at != NULL) {
                    char *t = NULL;
                    if (asprintf(&t, "%.*s/subscriptions/%s/%s", (int)(at - s), s, sub,
                                 at + strlen("/subscriptions/subid/")) < 0)
                        fail();
                    json_object_set_new(v, k, json_string(t));
                    free(t);
                }
            } else {
                fix_subscription(m, sub);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) fix_subscription(m, sub);
    }
}

/* The path of template `tmpl` with the example's parameters, plus its
 * api-version. */
static char *example_path(const char *tmpl, json_t *params, const char *rename)
{
    if (rename != NULL) {
        const char *eq = strchr(rename, '=');
        assert_non_null(eq);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(eq - rename), rename);
        json_object_set_new(params, name, json_string(eq + 1));
    }
    char out[2048];
    size_t n = 0;
    for (const char *p = tmpl; *p != '\0' && n + 1 < sizeof out;) {
        if (*p == '{') {
            const char *end = strchr(p, '}');
            assert_non_null(end);
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(end - p - 1), p + 1);
            const char *v = json_string_value(json_object_get(params, name));
            if (v == NULL)
                fail_msg("the example has no parameter '%s'", name);
            n += (size_t)snprintf(out + n, sizeof out - n, "%s", v);
            p = end + 1;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    char *path = NULL;
    if (asprintf(&path, "%s?api-version=%s", out,
                 json_string_value(json_object_get(params, "api-version"))) < 0)
        fail();
    return path;
}

/* The example's body parameter (its only object parameter), or NULL. */
static json_t *example_body(json_t *params)
{
    const char *k;
    json_t *v;
    json_object_foreach(params, k, v) if (json_is_object(v)) return v;
    return NULL;
}

static bool skipped(const char *path, const char *const *skip)
{
    for (size_t i = 0; skip != NULL && skip[i] != NULL; i++)
        if (strcmp(skip[i], path) == 0)
            return true;
    return false;
}

/* Fails when `got` lacks a member of `want` (depth levels deep, arrays by
 * their first elements) not skipped; `at` is the dotted path so far. */
static void assert_shape(json_t *want, json_t *got, const char *at, int depth,
                         const char *const *skip, const char *what)
{
    if (depth == 0)
        return;
    if (json_is_array(want) && json_is_array(got)) {
        if (json_array_size(want) == 0 || json_array_size(got) == 0)
            return;
        /* The element of the same name when there is one (answers list in
         * an order of their own), else the first. */
        json_t *w = json_array_get(want, 0), *g = json_array_get(got, 0);
        const char *wname = json_string_value(json_object_get(w, "name"));
        size_t i;
        json_t *e;
        json_array_foreach(got, i, e)
        {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (wname != NULL && name != NULL && strcasecmp(wname, name) == 0)
                g = e;
        }
        assert_shape(w, g, at, depth, skip, what);
        return;
    }
    if (!json_is_object(want))
        return;
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        char path[512];
        /* A list's elements are resources: their paths start afresh. */
        bool list = at[0] == '\0' && strcmp(k, "value") == 0 && json_is_array(v);
        snprintf(path, sizeof path, "%s%s%s", at, at[0] && !list ? "." : "", list ? "" : k);
        if (skipped(path, skip) || skipped(path, skip_always))
            continue;
        json_t *g = json_object_get(got, k);
        if (g == NULL) {
            char *text = json_dumps(got, JSON_COMPACT);
            fail_msg("%s: member '%s' missing from the answer (%s: %.600s)", what, path,
                     at[0] ? at : "body", text ? text : "");
        }
        assert_shape(v, g, path, list ? depth : depth - 1, skip, what);
    }
}

/* Sends example `e` and checks the answer; returns the answer (free it). */
static test_http_t run_example(fixture_t *f, const example_t *e)
{
    json_t *ex = load_example(e->file);
    json_t *params = json_object_get(ex, "parameters");
    const char *sub = json_string_value(json_object_get(params, "subscriptionId"));
    json_t *body = example_body(params);
    if (body != NULL && sub != NULL)
        fix_subscription(body, sub);
    char *path = example_path(e->path, params, e->rename);
    char *text = body != NULL ? json_dumps(body, 0) : NULL;
    test_http_t h = http(f, e->method, path, text);
    if (e->refused_status != 0) {
        if (h.status != e->refused_status || h.json == NULL)
            fail_msg("%s: %ld %s (Berth refuses it with %ld %s)", e->file, h.status, h.body,
                     e->refused_status, e->refused_code);
        json_t *err = json_object_get(h.json, "error");
        assert_string_equal(json_string_value(json_object_get(err, "code")), e->refused_code);
        assert_string_equal(json_string_value(json_object_get(err, "target")),
                            e->refused_target);
    } else {
        char status[8];
        snprintf(status, sizeof status, "%ld", h.status);
        json_t *responses = json_object_get(ex, "responses");
        json_t *resp = json_object_get(responses, status);
        /* Berth deletes at once, and answers so (200, ARM's synchronous
         * delete) where an example shows only the asynchronous 202. */
        bool deleted_at_once = strcmp(e->method, "DELETE") == 0 && h.status == 200 &&
                               json_object_get(responses, "202") != NULL;
        if (resp == NULL && !deleted_at_once)
            fail_msg("%s: %s %s answered %ld, not a status of the example: %s", e->file,
                     e->method, path, h.status, h.body);
        json_t *want = json_object_get(resp, "body");
        if (want != NULL && h.json == NULL)
            fail_msg("%s: the answer has no JSON body: %s", e->file, h.body);
        if (want != NULL)
            assert_shape(want, h.json, "", 3, e->skip, e->file);
    }
    free(text);
    free(path);
    json_decref(ex);
    return h;
}

static void example_ok(fixture_t *f, const example_t *e)
{
    test_http_t h = run_example(f, e);
    test_http_free(&h);
}

/* GETs `path` until `pred` holds of the answer (at most WAIT_MS). */
static bool wait_answer(fixture_t *f, const char *path, bool (*pred)(json_t *))
{
    for (int waited = 0; waited < test_deadline_ms(WAIT_MS); waited += 100) {
        test_http_t h = http(f, "GET", path, NULL);
        bool ok = h.status == 200 && pred(h.json);
        test_http_free(&h);
        if (ok)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

static bool is_running(json_t *body)
{
    json_t *iv = json_object_get(json_object_get(body, "properties"), "instanceView");
    const char *s = json_string_value(json_object_get(iv, "state"));
    return s != NULL && strcmp(s, "Running") == 0;
}

/* Whether a pool's runtime view counts a Running member. */
static bool one_running(json_t *body)
{
    json_t *summary = json_object_get(json_object_get(body, "properties"),
                                      "instanceCountSummary");
    size_t i, j;
    json_t *z, *c;
    json_array_foreach(summary, i, z)
    {
        json_array_foreach(json_object_get(z, "instanceCountsByState"), j, c)
        {
            if (strcmp(json_string_value(json_object_get(c, "state")), "Running") == 0 &&
                json_integer_value(json_object_get(c, "count")) > 0)
                return true;
        }
    }
    return false;
}

/* ---- fixture ------------------------------------------------------------------------------- */

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->cell, sizeof f->cell, "ex-%d-%d", (int)getpid() % 10000, ++cell_counter);
    const char *dargs[] = {"--redis", berth_test_redis_group->url, "--cell", f->cell, NULL};
    if (test_berthd_start(&f->d, false, dargs) != 0) {
        free(f);
        return -1;
    }
    f->d_running = true;
    const char *aargs[] = {"--cores", "16", "--memory-mib", "131072", "--zone", "1",
                           "--gpu-sku", "K80", "--gpu-count", "4", "--tick-ms", "50",
                           "--heartbeat-ms", "200", "--ttl-ms", "10000", NULL};
    const char *config = "{\"images\": [\"busybox:latest\", \"nginx\", \"nginx:latest\"],"
                         " \"start_latency_ms\": 50, \"pull_latency_ms\": 50}";
    if (test_agent_start(&f->agent, berth_test_redis_group->url, f->cell, "sim-1", "sim",
                         config, aargs) != 0) {
        test_berthd_kill(&f->d);
        free(f);
        return -1;
    }
    f->agent_running = true;
    /* A confidential host beside the agent's: the confidential examples
     * are placed there and answered, never run. */
    test_sched_t sched;
    if (test_sched_open(&sched, berth_test_redis_group->url, f->cell) != 0)
        return -1;
    berth_host_t conf = {.name = "conf-1", .cores = 8, .memory_mib = 65536,
                         .os = BERTH_OS_LINUX, .features = BERTH_HOST_CONFIDENTIAL,
                         .state = BERTH_HOST_READY};
    berth_error_t err;
    int rc = berth_store_host_put(sched.store, &conf, &err);
    bool up = rc == 0 && test_sched_wait_host(&sched, "sim-1", test_deadline_ms(WAIT_MS));
    test_sched_close(&sched);
    *state = f;
    return up ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = 0;
    if (f->d_running) {
        if (test_berthd_stop(&f->d) != 0) {
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
    free(f);
    return rc;
}

/* ---- container group profiles ------------------------------------------------------------- */

static void test_profile_examples(void **state)
{
    fixture_t *f = *state;
    static const char *const skip_profile[] = {"properties.ipAddress", NULL};
    /* The examples' profiles, each under a name of its own (their
     * locations differ, and a profile's location never changes). */
    static const example_t puts[] = {
        {"2025-09-01/examples/ContainerGroupProfilesCreateOrUpdate.json", "PUT", CGP,
         skip_profile, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/ContainerGroupProfileCreateOrUpdate_CreateConfidential.json",
         "PUT", CGP, skip_profile, 0, NULL, NULL, "containerGroupProfileName=demo-conf"},
        {"2025-09-01/examples/ContainerGroupProfileCreateOrUpdate_EncryptionProperties.json",
         "PUT", CGP, skip_profile, 0, NULL, NULL, "containerGroupProfileName=demo-enc"},
        {"2025-09-01/examples/ContainerGroupProfileCreateOrUpdate_Extensions.json", "PUT", CGP,
         skip_profile, 0, NULL, NULL, "containerGroupProfileName=demo-ext"},
    };
    for (size_t i = 0; i < sizeof puts / sizeof puts[0]; i++)
        example_ok(f, &puts[i]);
    /* demo1 again with another image: its second revision. */
    json_t *ex0 = load_example("2025-09-01/examples/ContainerGroupProfilesCreateOrUpdate.json");
    json_t *doc0 = example_body(json_object_get(ex0, "parameters"));
    json_t *c0 = json_object_get(json_array_get(json_object_get(json_object_get(doc0,
                                                                                "properties"),
                                                                "containers"),
                                                0),
                                 "properties");
    json_object_set_new(c0, "image", json_string("nginx:latest"));
    char *text0 = json_dumps(doc0, 0);
    const char *demo1 = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                        "demo" CI "/containerGroupProfiles/demo1?api-version=2025-09-01";
    test_http_t h = http(f, "PUT", demo1, text0);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(h.json, "properties"),
                                                        "revision")),
                     2);
    test_http_free(&h);
    free(text0);
    json_decref(ex0);
    static const example_t reads[] = {
        {"2025-09-01/examples/ContainerGroupProfilesGet.json", "GET", CGP, skip_profile, 0,
         NULL, NULL, NULL},
        {"2025-09-01/examples/ContainerGroupProfilesListByResourceGroup.json", "GET",
         RGP CI "/containerGroupProfiles", skip_profile, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/ContainerGroupProfilesList.json", "GET",
         SUBP CI "/containerGroupProfiles", skip_profile, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/ContainerGroupProfileListAllRevisions.json", "GET",
         CGP "/revisions", skip_profile, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/ContainerGroupProfileGetByRevisionNumber.json", "GET",
         CGP "/revisions/{revisionNumber}", skip_profile, 0, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        example_ok(f, &reads[i]);
    /* Two revisions. */
    h = http(f, "GET",
                         "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                         "demo" CI "/containerGroupProfiles/demo1/revisions?api-version="
                         "2025-09-01",
                         NULL);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_array_size(json_object_get(h.json, "value")), 2);
    test_http_free(&h);
    /* The PATCH example's profile lives in resource group demoResource. */
    const char *put = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                      "demoResource" CI "/containerGroupProfiles/demo1?api-version=2025-09-01";
    json_t *ex = load_example("2025-09-01/examples/ContainerGroupProfilesCreateOrUpdate.json");
    char *body = json_dumps(example_body(json_object_get(ex, "parameters")), 0);
    h = http(f, "PUT", put, body);
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    free(body);
    json_decref(ex);
    static const example_t patch = {"2025-09-01/examples/ContainerGroupProfilesPatch.json",
                                    "PATCH", CGP, skip_profile, 0, NULL, NULL, NULL};
    h = run_example(f, &patch);
    json_t *tags = json_object_get(h.json, "tags");
    assert_true(json_is_object(tags) && json_object_size(tags) > 0);
    test_http_free(&h);
    h = http(f, "DELETE", put, NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    h = http(f, "GET", put, NULL);
    assert_int_equal(h.status, 404);
    test_http_free(&h);
}

/* ---- container groups ------------------------------------------------------------------- */

/* PUTs the example's profile under `rg`/`name` of subscription `sub`,
 * its container's image replaced by `image` (NULL: the example's). */
static void put_profile(fixture_t *f, const char *sub, const char *rg, const char *name,
                        const char *image)
{
    json_t *ex = load_example("2025-09-01/examples/ContainerGroupProfilesCreateOrUpdate.json");
    json_t *doc = example_body(json_object_get(ex, "parameters"));
    if (image != NULL) {
        json_t *containers = json_object_get(json_object_get(doc, "properties"), "containers");
        json_object_set_new(json_object_get(json_array_get(containers, 0), "properties"),
                            "image", json_string(image));
    }
    char *body = json_dumps(doc, 0);
    char *path = NULL;
    if (asprintf(&path,
                 "/subscriptions/%s/resourceGroups/%s" CI
                 "/containerGroupProfiles/%s?api-version=2025-09-01",
                 sub, rg, name) < 0)
        fail();
    test_http_t h = http(f, "PUT", path, body);
    if (h.status != 201 && h.status != 200)
        fail_msg("PUT profile %s: %ld %s", name, h.status, h.body);
    test_http_free(&h);
    free(path);
    free(body);
    json_decref(ex);
}

static void test_container_group_examples(void **state)
{
    fixture_t *f = *state;
    const char *sub = "00000000-0000-0000-0000-000000000000";
    const char *g = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo" CI
                    "/containerGroups/demo1?api-version=2025-09-01";
    static const example_t creates[] = {
        {"2025-09-01/examples/ContainerGroupsCreateOrUpdate.json", "PUT", CG, skip_cg, 0, NULL,
         NULL, NULL},
        {"2025-09-01/examples/ContainerGroupsCreatePriority.json", "PUT", CG, skip_cg, 0, NULL,
         NULL, NULL},
        {"2025-09-01/examples/ContainerGroupCreateConfidential.json", "PUT", CG, skip_cg, 0,
         NULL, NULL, NULL},
        {"2025-09-01/examples/ContainerGroupEncryptionProperties.json", "PUT", CG, skip_cg, 0,
         NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof creates / sizeof creates[0]; i++) {
        example_ok(f, &creates[i]);
        test_http_t d = http(f, "DELETE", g, NULL);
        assert_int_equal(d.status, 200);
        test_http_free(&d);
    }
    /* The confidential host has no agent: from here on, every group runs
     * on sim-1. */
    test_sched_t sched;
    assert_int_equal(test_sched_open(&sched, berth_test_redis_group->url, f->cell), 0);
    berth_error_t err;
    assert_int_equal(berth_store_host_remove(sched.store, "conf-1", &err), 0);
    test_sched_close(&sched);
    /* A group made from the profile "democgp" (revision 1), claimed from
     * the pool "demopool" when a member is ready. */
    put_profile(f, sub, "demo", "democgp", NULL);
    char pool[512];
    snprintf(pool, sizeof pool,
             "/subscriptions/%s/resourceGroups/demo/providers/Microsoft.StandbyPool/"
             "standbyContainerGroupPools/demopool?api-version=2026-04-01",
             sub);
    char pbody[1024];
    snprintf(pbody, sizeof pbody,
             "{\"location\": \"westus\", \"properties\": {\"elasticityProfile\": "
             "{\"maxReadyCapacity\": 1, \"refillPolicy\": \"always\"}, "
             "\"containerGroupProperties\": {\"containerGroupProfile\": {\"id\": "
             "\"/subscriptions/%s/resourceGroups/demo/providers/Microsoft.ContainerInstance/"
             "containerGroupProfiles/democgp\", \"revision\": 1}}}}",
             sub);
    test_http_t h = http(f, "PUT", pool, pbody);
    if (h.status != 201)
        fail_msg("PUT pool: %ld %s", h.status, h.body);
    test_http_free(&h);
    /* Once a member is ready, the example's group takes it over. */
    char view[600];
    snprintf(view, sizeof view,
             "/subscriptions/%s/resourceGroups/demo/providers/Microsoft.StandbyPool/"
             "standbyContainerGroupPools/demopool/runtimeViews/latest?api-version=2026-04-01",
             sub);
    assert_true(wait_answer(f, view, one_running));
    static const example_t from_pool = {
        "2025-09-01/examples/ContainerGroupCreateOrUpdateStandbyPool.json", "PUT", CG, skip_cg,
        0, NULL, NULL, NULL};
    h = run_example(f, &from_pool);
    json_t *props = json_object_get(h.json, "properties");
    assert_true(json_is_true(json_object_get(props, "isCreatedFromStandbyPool")));
    json_t *ref = json_object_get(props, "containerGroupProfile");
    assert_int_equal(json_integer_value(json_object_get(ref, "revision")), 1);
    /* The profile's image with the request's configMap. */
    json_t *c0 = json_object_get(json_array_get(json_object_get(props, "containers"), 0),
                                 "properties");
    assert_string_equal(json_string_value(json_object_get(c0, "image")), "nginx");
    assert_non_null(json_object_get(c0, "configMap"));
    test_http_free(&h);
    assert_true(wait_answer(f, g, is_running));
    /* The reads, stop/start, exec and the location routes on demo1. */
    static const example_t reads[] = {
        {"2025-09-01/examples/ContainerGroupsGet_Succeeded.json", "GET", CG, skip_cg, 0, NULL,
         NULL, NULL},
        {"2025-09-01/examples/ContainerGroupsListByResourceGroup.json", "GET",
         RGP CI "/containerGroups", skip_cg, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/ContainerGroupsList.json", "GET", SUBP CI "/containerGroups",
         skip_cg, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/ContainerGroupUsage.json", "GET",
         SUBP CI "/locations/{location}/usages", NULL, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/CapabilitiesList.json", "GET",
         SUBP CI "/locations/{location}/capabilities", NULL, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/CachedImagesList.json", "GET",
         SUBP CI "/locations/{location}/cachedImages", NULL, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/OperationsList.json", "GET", "/providers/Microsoft.ContainerInstance/operations",
         NULL, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/ContainerGroupsStop.json", "POST", CG "/stop", NULL, 0, NULL,
         NULL, NULL},
        {"2025-09-01/examples/ContainerGroupsStart.json", "POST", CG "/start", NULL, 0, NULL,
         NULL, NULL},
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        example_ok(f, &reads[i]);
    assert_true(wait_answer(f, g, is_running));
    static const example_t exec = {"2025-09-01/examples/ContainerExec.json", "POST",
                                   CG "/containers/{containerName}/exec", NULL, 0, NULL, NULL, NULL};
    /* The example's container is "container1": a group of that shape. */
    h = http(f, "DELETE", g, NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    h = http(f, "PUT", g,
             "{\"location\": \"westus\", \"properties\": {\"osType\": \"Linux\", \"containers\": "
             "[{\"name\": \"container1\", \"properties\": {\"image\": \"busybox:latest\", "
             "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}");
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    assert_true(wait_answer(f, g, is_running));
    example_ok(f, &exec);
    static const example_t outbound = {
        "2025-09-01/examples/ContainerGroupsGetOutboundNetworkDependenciesEndpoints.json", "GET",
        CG "/outboundNetworkDependenciesEndpoints", NULL, 0, NULL, NULL, NULL};
    const char *g3 = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo" CI
                     "/containerGroups/demo-cg?api-version=2025-09-01";
    h = http(f, "PUT", g3,
             "{\"location\": \"westus\", \"properties\": {\"osType\": \"Linux\", \"containers\": "
             "[{\"name\": \"c\", \"properties\": {\"image\": \"busybox:latest\", "
             "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}");
    assert_int_equal(h.status, 201);
    test_http_free(&h);
    example_ok(f, &outbound);
    /* PATCH: the example's group lives in resource group demoResource (the
     * create example's group, there). */
    static const example_t create_there = {
        "2025-09-01/examples/ContainerGroupsCreateOrUpdate.json", "PUT", CG, skip_cg, 0, NULL,
        NULL, "resourceGroupName=demoResource"};
    example_ok(f, &create_there);
    static const example_t update = {"2025-09-01/examples/ContainerGroupsUpdate.json", "PATCH",
                                     CG, skip_cg, 0, NULL, NULL, NULL};
    example_ok(f, &update);
    /* DELETE: of the create example's group (in demoResource), the shape
     * the example answers; then demo1 of demo. */
    static const example_t del = {"2025-09-01/examples/ContainerGroupsDelete.json", "DELETE",
                                  CG, skip_cg, 0, NULL, NULL, "resourceGroupName=demoResource"};
    example_ok(f, &del);
    h = http(f, "GET",
             "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demoResource" CI
             "/containerGroups/demo1?api-version=2025-09-01",
             NULL);
    assert_int_equal(h.status, 404);
    test_http_free(&h);
    h = http(f, "DELETE", g, NULL);
    assert_int_equal(h.status, 200);
    test_http_free(&h);
    h = http(f, "GET", g, NULL);
    assert_int_equal(h.status, 404);
    test_http_free(&h);
    h = http(f, "DELETE", pool, NULL);
    assert_true(h.status == 200 || h.status == 202 || h.status == 204);
    test_http_free(&h);
}

/* The secret-reference example names Key Vault secrets through a managed
 * identity: Berth has neither, and says so. */
static void test_secret_reference_example(void **state)
{
    fixture_t *f = *state;
    static const example_t e = {
        "2025-09-01/examples/ContainerGroupsCreateOrUpdateSecretReference.json", "PUT", CG,
        skip_cg, 400, "InvalidRequestContent", "properties.secretReferences", NULL};
    test_http_t h = run_example(f, &e);
    test_http_free(&h);
    h = http(f, "GET",
             "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo" CI
             "/containerGroups/demo1?api-version=2025-09-01",
             NULL);
    assert_int_equal(h.status, 404);
    test_http_free(&h);
}

/* ---- NGroups ------------------------------------------------------------------------------ */

static void test_ngroup_examples(void **state)
{
    fixture_t *f = *state;
    static const example_t es[] = {
        {"2025-09-01/examples/NGroupsCreateOrUpdate.json", "PUT", NG, NULL, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/NGroupsGet.json", "GET", NG, NULL, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/NGroupsListByResourceGroup.json", "GET", RGP CI "/ngroups", NULL,
         0, NULL, NULL, NULL},
        {"2025-09-01/examples/NGroupsUpdate.json", "PATCH", NG, NULL, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/NGroupsStart.json", "POST", NG "/start", NULL, 0, NULL, NULL, NULL},
        {"2025-09-01/examples/NGroupsDelete.json", "DELETE", NG, NULL, 0, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof es / sizeof es[0]; i++)
        example_ok(f, &es[i]);
}

/* ---- standby pools ------------------------------------------------------------------------ */

/* Berth does not forecast a pool's demand: runtime views carry no
 * "prediction". */
static const char *const skip_view[] = {"properties.prediction", NULL};

static void test_pool_examples(void **state)
{
    fixture_t *f = *state;
    /* The pool examples name the profile "cgProfile", the update its
     * second revision. */
    put_profile(f, "00000000-0000-0000-0000-000000000009", "rgstandbypool", "cgProfile", NULL);
    put_profile(f, "00000000-0000-0000-0000-000000000009", "rgstandbypool", "cgProfile",
                "nginx:latest");
    static const example_t es[] = {
        {"standbypool-2026-04-01/examples/StandbyContainerGroupPools_CreateOrUpdate.json", "PUT",
         SP "/{standbyContainerGroupPoolName}", NULL, 0, NULL, NULL, NULL},
        {"standbypool-2026-04-01/examples/StandbyContainerGroupPools_Get.json", "GET",
         SP "/{standbyContainerGroupPoolName}", NULL, 0, NULL, NULL, NULL},
        {"standbypool-2026-04-01/examples/StandbyContainerGroupPools_ListByResourceGroup.json",
         "GET", SP, NULL, 0, NULL, NULL, NULL},
        {"standbypool-2026-04-01/examples/StandbyContainerGroupPools_ListBySubscription.json",
         "GET", SUBP "/providers/Microsoft.StandbyPool/standbyContainerGroupPools", NULL, 0,
         NULL, NULL, NULL},
        {"standbypool-2026-04-01/examples/StandbyContainerGroupPools_Update.json", "PATCH",
         SP "/{standbyContainerGroupPoolName}", NULL, 0, NULL, NULL, NULL},
        {"standbypool-2026-04-01/examples/StandbyContainerGroupPoolRuntimeViews_Get.json", "GET",
         SP "/{standbyContainerGroupPoolName}/runtimeViews/{runtimeView}", skip_view, 0, NULL,
         NULL, NULL},
        {"standbypool-2026-04-01/examples/"
         "StandbyContainerGroupPoolRuntimeViews_ListByStandbyPool.json",
         "GET", SP "/{standbyContainerGroupPoolName}/runtimeViews", skip_view, 0, NULL, NULL, NULL},
        {"standbypool-2026-04-01/examples/StandbyContainerGroupPools_Delete.json", "DELETE",
         SP "/{standbyContainerGroupPoolName}", NULL, 0, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof es / sizeof es[0]; i++)
        example_ok(f, &es[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_profile_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_group_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_reference_example, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ngroup_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_examples, setup, teardown),
    };
    if (getenv("BERTH_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("BERTH_TEST_FILTER"));
    return cmocka_run_group_tests(tests, berth_test_redis_group_setup,
                                  berth_test_redis_group_teardown);
}
