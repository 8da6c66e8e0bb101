/*
 * test_berthd_cut.c: berthd's Redis connection cut right after a commit.
 *
 * Every mutating request of berthd is one Redis Function call that writes
 * the placement (or release) together with berthd's records
 * (tools/berthd/mutate.c).  Here the cutting proxy of cut-proxy.c, a
 * thread of the test, sits between berthd and the test's redis-server.
 * Armed, it lets the next commit FCALL through, waits for Redis's reply to
 * it and closes every proxied connection without forwarding that reply:
 * the commit applied and berthd never learns it.  New connections are
 * forwarded as usual afterwards (berthd reconnects).
 *
 * For a create, an update, a stop, a start and a delete, each test arms
 * the proxy, sends the request (expects 500 or 503; a 2xx is accepted and
 * said), sends requests on the same name that fail before any I/O (400),
 * then checks that the cell is consistent -- `berthctl fsck` clean, the
 * index and usage records matching the resource records, the GET's answer
 * matching what Redis holds and what the commit's reply said -- and that
 * the request retried succeeds and leaves the cell clean.
 *
 * Every wait is bounded (test-time.h); agents talk to Redis directly, and
 * so do fsck and the test's own reads.  The test never edits berthd: a
 * failing assertion here is a finding about berthd.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "agent-harness.h"
#include "berthd-harness.h"
#include "cut-proxy.h"
#include "redis-harness.h"

#define SUB "0000-sub-1"
#define RG "rg"
#define APIV "2023-05-01"
#define LOCATION "westeurope"
#define WAIT_MS 15000

/* ---- the fixture ------------------------------------------------------------------------------ */

static int cell_counter;

typedef struct fixture {
    char cell[32];
    cut_proxy_t proxy;
    test_agent_t agent;
    bool agent_running;
    test_berthd_t d;
    bool d_running;
    redisContext *rc;
    bool dump;                      /* the test did not finish: print logs  */
} fixture_t;

static bool wait_hosts(fixture_t *f)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (test_now_ms() < end) {
        test_http_t h;
        memset(&h, 0, sizeof h);
        test_http(&f->d, "GET", "/berth/hosts", NULL, NULL, NULL, &h);
        size_t got = json_array_size(json_object_get(h.json, "value"));
        test_http_free(&h);
        if (got >= 1)
            return true;
        test_sleep_ms(50);
    }
    fprintf(stderr, "berthd never saw the agent's host\n");
    return false;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = 0;
    if (f->dump && f->d_running) {
        fprintf(stderr, "---- berthd's log (%s)\n", f->d.log_path);
        test_berthd_dump(&f->d, 60);
    }
    if (f->d_running) {
        int st = test_berthd_stop(&f->d);
        if (st != 0) {
            fprintf(stderr, "berthd exited with %d\n", st);
            test_berthd_dump(&f->d, 40);
            rc = -1;
        } else if (!f->dump) {
            unlink(f->d.log_path);
        }
    }
    if (f->agent_running) {
        if (f->dump)
            test_agent_dump(&f->agent, 20);
        test_agent_stop(&f->agent);
        if (!f->dump)
            unlink(f->agent.log_path);
    }
    cut_proxy_stop(&f->proxy);
    if (f->rc != NULL)
        redisFree(f->rc);
    free(f);
    return rc;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    *state = f;
    f->dump = true;
    snprintf(f->cell, sizeof f->cell, "cut-%d-%d", (int)getpid() % 100000, ++cell_counter);
    f->rc = berth_test_redis_connect(berth_test_redis_group);
    if (f->rc == NULL || cut_proxy_start(&f->proxy, 0, berth_test_redis_group->port,
                                           berth_test_redis_group->socket_path) != 0)
        goto fail;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", f->proxy.port);
    const char *args[] = {"--redis", url, "--cell", f->cell, NULL};
    if (test_berthd_start(&f->d, false, args) != 0)
        goto fail;
    f->d_running = true;
    char config[160];
    snprintf(config, sizeof config,
             "{\"images\": [\"busybox:latest\"], \"start_latency_ms\": 100,"
             " \"pull_latency_ms\": 100}");
    const char *agent_args[] = {"--cores", "8", "--memory-mib", "65536", "--tick-ms", "50",
                                "--heartbeat-ms", "200", "--ttl-ms", "10000", NULL};
    if (test_agent_start(&f->agent, berth_test_redis_group->url, f->cell, "sim-1", "sim",
                         config, agent_args) != 0)
        goto fail;
    f->agent_running = true;
    if (!wait_hosts(f))
        goto fail;
    return 0;
fail:
    teardown(state);
    return -1;
}

/* ---- requests --------------------------------------------------------------------------------- */

/* Paths and documents live in the caller's buffers: a failed assertion
 * (a longjmp) then leaves nothing allocated behind. */
#define PATH_CAP 512
#define DOC_CAP 1024

/* The path of group `name` with `suffix` (may be NULL) and api-version
 * `apiv` (NULL: APIV) in out. */
static const char *gpath(char *out, const char *name, const char *suffix, const char *apiv)
{
    snprintf(out, PATH_CAP,
             "/subscriptions/" SUB "/resourceGroups/" RG "/providers/"
             "Microsoft.ContainerInstance/containerGroups/%s%s?api-version=%s",
             name, suffix != NULL ? suffix : "", apiv != NULL ? apiv : APIV);
    return out;
}

/* A group document in out: tag "rev" and environment variable REV both
 * `rev`. */
static const char *gdoc(char *out, const char *name, const char *rev)
{
    snprintf(out, DOC_CAP,
             "{\"name\": \"%s\", \"location\": \"" LOCATION "\", \"tags\": {\"rev\": \"%s\"},"
             " \"properties\": {\"osType\": \"Linux\", \"containers\": [{\"name\": \"app\","
             " \"properties\": {\"image\": \"busybox:latest\", \"environmentVariables\":"
             " [{\"name\": \"REV\", \"value\": \"%s\"}], \"resources\": {\"requests\":"
             " {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}",
             name, rev, rev);
    return out;
}

static const char *group_key(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, SUB "/" RG "/%s", name);
    return out;
}

/* Sends one request; its status (0: no answer).  The body is printed
 * when the status is not one of `ok` (0-ended; NULL: any). */
static long send_request(fixture_t *f, const char *method, const char *path, const char *body,
                         const char *header, const long *ok)
{
    test_http_t h;
    memset(&h, 0, sizeof h);
    const char *hs[] = {header, NULL};
    if (test_http(&f->d, method, path, body, NULL, hs, &h) != 0)
        fprintf(stderr, "no answer to %s %s\n", method, path);
    long st = h.status;
    bool good = ok == NULL;
    for (size_t i = 0; ok != NULL && ok[i] != 0; i++)
        good = good || st == ok[i];
    if (!good)
        fprintf(stderr, "%s %s answered %ld: %s\n", method, path, st, h.body);
    test_http_free(&h);
    return st;
}

static bool status_in(long st, const long *ok)
{
    for (size_t i = 0; ok[i] != 0; i++)
        if (st == ok[i])
            return true;
    return false;
}

/* Sends the request and asserts, at the caller's line, that its status is
 * one of `ok` (0-ended). */
#define send_expect(f, method, path, body, header, ok)                                          \
    assert_true(status_in(send_request((f), (method), (path), (body), (header), (ok)), (ok)))

/* What a document says, copied out of the JSON. */
typedef struct doc_info {
    char tag[32];                   /* tags.rev                             */
    char env[32];                   /* the first container's REV            */
    char prov[32];                  /* properties.provisioningState         */
    char state[32];                 /* properties.instanceView.state        */
    char ctr[32];                   /* the container's currentState.state   */
} doc_info_t;

static const char *jstr(json_t *v)
{
    const char *s = json_string_value(v);
    return s != NULL ? s : "";
}

static doc_info_t doc_info(json_t *doc)
{
    doc_info_t d;
    json_t *props = json_object_get(doc, "properties");
    json_t *ctr = json_object_get(json_array_get(json_object_get(props, "containers"), 0),
                                  "properties");
    snprintf(d.tag, sizeof d.tag, "%s", jstr(json_object_get(json_object_get(doc, "tags"), "rev")));
    d.env[0] = '\0';
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(ctr, "environmentVariables"), i, e) {
        if (strcmp(jstr(json_object_get(e, "name")), "REV") == 0)
            snprintf(d.env, sizeof d.env, "%s", jstr(json_object_get(e, "value")));
    }
    snprintf(d.prov, sizeof d.prov, "%s", jstr(json_object_get(props, "provisioningState")));
    snprintf(d.state, sizeof d.state, "%s",
             jstr(json_object_get(json_object_get(props, "instanceView"), "state")));
    snprintf(d.ctr, sizeof d.ctr, "%s",
             jstr(json_object_get(
                 json_object_get(json_object_get(ctr, "instanceView"), "currentState"),
                 "state")));
    return d;
}

/* GET of the group: its status, and what its body says (zeros unless 200). */
static long get_group(fixture_t *f, const char *name, doc_info_t *out)
{
    char p[PATH_CAP];
    test_http_t h;
    memset(&h, 0, sizeof h);
    memset(out, 0, sizeof *out);
    test_http(&f->d, "GET", gpath(p, name, NULL, NULL), NULL, NULL, NULL, &h);
    long st = h.status;
    if (st == 200)
        *out = doc_info(h.json);
    else if (st != 404)
        fprintf(stderr, "GET %s answered %ld: %s\n", name, st, h.body);
    test_http_free(&h);
    return st;
}

/* Waits until GET shows the group Succeeded and Running with tag and
 * environment `rev`. */
static bool wait_running(fixture_t *f, const char *name, const char *rev)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    long st = 0;
    doc_info_t d;
    while (test_now_ms() < end) {
        st = get_group(f, name, &d);
        if (st == 200 && strcmp(d.prov, "Succeeded") == 0 && strcmp(d.ctr, "Running") == 0 &&
            strcmp(d.tag, rev) == 0 && strcmp(d.env, rev) == 0)
            return true;
        test_sleep_ms(50);
    }
    fprintf(stderr, "group %s never ran with rev %s (last GET: %ld %s/%s, tag %s, env %s)\n",
            name, rev, st, d.prov, d.ctr, d.tag, d.env);
    return false;
}

/* Waits until GET shows the group Stopped. */
static bool wait_stopped(fixture_t *f, const char *name)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    doc_info_t d;
    while (test_now_ms() < end) {
        if (get_group(f, name, &d) == 200 && strcmp(d.state, "Stopped") == 0)
            return true;
        test_sleep_ms(50);
    }
    fprintf(stderr, "group %s never showed Stopped (last: %s)\n", name, d.state);
    return false;
}

/* ---- what Redis holds ------------------------------------------------------------------------ */

/* An integer (or a number in a string) Redis answers; 0 for nil, -1 for
 * anything else. */
static long long redis_int(fixture_t *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(f->rc, fmt, ap);
    va_end(ap);
    long long n = -1;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        n = r->integer;
    else if (r != NULL && r->type == REDIS_REPLY_STRING)
        n = strtoll(r->str, NULL, 10);
    else if (r != NULL && r->type == REDIS_REPLY_NIL)
        n = 0;
    if (r != NULL)
        freeReplyObject(r);
    return n;
}

/* Whether the cell places the group (HEXISTS berth:{C}:groups KEY): 1, 0,
 * or -1 when Redis failed. */
static int placed(fixture_t *f, const char *name)
{
    char key[160];
    group_key(key, sizeof key, name);
    return (int)redis_int(f, "HEXISTS berth:{%s}:groups %s", f->cell, key);
}

/* berthd's resource record of the group, as far as the test reads it. */
typedef struct record_info {
    bool exists;
    long long generation;
    char state[32];
} record_info_t;

static record_info_t resource_record(fixture_t *f, const char *name)
{
    record_info_t ri;
    memset(&ri, 0, sizeof ri);
    char key[160];
    group_key(key, sizeof key, name);
    redisReply *r = redisCommand(f->rc, "HGET berth:{%s}:resources %s", f->cell, key);
    json_t *rec = r != NULL && r->type == REDIS_REPLY_STRING ? json_loads(r->str, 0, NULL) : NULL;
    if (r != NULL)
        freeReplyObject(r);
    ri.exists = rec != NULL;
    ri.generation = (long long)json_integer_value(json_object_get(rec, "generation"));
    snprintf(ri.state, sizeof ri.state, "%s", jstr(json_object_get(rec, "state")));
    json_decref(rec);
    return ri;
}

/* The group's document and generation as the library reads its record (a
 * fresh engine on the cell): 1 when found, 0 when not placed, -1 when the
 * read failed. */
static int library_group(fixture_t *f, const char *name, doc_info_t *spec, uint64_t *gen)
{
    test_sched_t s;
    memset(spec, 0, sizeof *spec);
    *gen = 0;
    if (test_sched_open(&s, berth_test_redis_group->url, f->cell) != 0)
        return -1;
    char key[160], *text = NULL;
    berth_error_t err;
    int rc = berth_store_group_read(s.store, group_key(key, sizeof key, name), &text, gen, &err);
    if (rc != 0 && rc != BERTH_ENOENT)
        fprintf(stderr, "group read: %s\n", err.message);
    json_t *doc = rc == 0 && text != NULL ? json_loads(text, 0, NULL) : NULL;
    if (doc != NULL)
        *spec = doc_info(doc);
    json_decref(doc);
    berth_free(text);
    test_sched_close(&s);
    return rc == 0 ? 1 : rc == BERTH_ENOENT ? 0 : -1;
}

/* `berthctl fsck` of the cell exits 0 (its report printed otherwise); and
 * berthd's index and usage count agree with its resource records (one
 * subscription and location per test). */
static void assert_cell_clean(fixture_t *f)
{
    const char *top = getenv("top_builddir");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/tools/berthctl/berthctl fsck --redis '%s' --cell '%s' 2>&1",
             top != NULL ? top : ".", berth_test_redis_group->url, f->cell);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code != 0)
        fprintf(stderr, "fsck of cell %s exited %d:\n%s", f->cell, code, out);
    assert_int_equal(code, 0);

    long long records = redis_int(f, "HLEN berth:{%s}:resources", f->cell);
    long long indexed = redis_int(f, "ZCARD berth:{%s}:index", f->cell);
    long long usage = redis_int(f, "HGET berth:{%s}:usage " SUB "/" LOCATION, f->cell);
    if (records != indexed || records != usage)
        fprintf(stderr, "cell %s: %lld resource records, %lld indexed, usage count %lld\n",
                f->cell, records, indexed, usage);
    assert_true(records >= 0);
    assert_int_equal(indexed, records);
    assert_int_equal(usage, records);
}

/* ---- the cut ---------------------------------------------------------------------------------- */

/* Arms the proxy, sends the request, and checks that the proxy cut the
 * commit of one of `functions` (NULL-ended) and that the answer is 500 or
 * 503 (a 2xx is accepted, and said).  Returns what the cut saw. */
static cut_info_t cut_request(fixture_t *f, const char *method, const char *path,
                              const char *body, const char *header, const char *const *functions)
{
    cut_info_t before = cut_proxy_wait(&f->proxy, 0, 0);
    cut_proxy_arm(&f->proxy);
    long st = send_request(f, method, path, body, header, NULL);
    cut_info_t info = cut_proxy_wait(&f->proxy, before.cuts + 1, CUT_PROXY_REPLY_WAIT_MS);
    fprintf(stderr, "# %s %s: %ld after a cut of %s (its reply %s: %s)\n", method, path, st,
            info.function[0] ? info.function : "nothing",
            info.reply_seen ? (info.applied ? "applied" : "refused") : "never seen", info.reply);
    if (st >= 200 && st < 300)
        fprintf(stderr, "# the cut came after the answer (%ld)\n", st);
    assert_true(st == 500 || st == 503 || (st >= 200 && st < 300));
    /* The request reached its commit and the proxy cut it there. */
    assert_false(info.armed);
    assert_int_equal(info.cuts, before.cuts + 1);
    bool expected = false;
    for (size_t i = 0; functions[i] != NULL; i++)
        expected = expected || strcmp(info.function, functions[i]) == 0;
    assert_true(expected);
    return info;
}

/* Requests on the same name that fail before any I/O; berthd answers them
 * at once after the cut. */
static void bad_requests(fixture_t *f, const char *name)
{
    static const long bad[] = {400, 0};
    char p[PATH_CAP], doc[DOC_CAP];
    gpath(p, name, NULL, NULL);
    send_expect(f, "PUT", p, "{\"location\": ", NULL, bad);
    send_expect(f, "PUT", p, gdoc(doc, "not-this-one", "x"), NULL, bad);
    send_expect(f, "PATCH", p, "{\"tags\": 7}", NULL, bad);
    send_expect(f, "PUT", gpath(p, name, NULL, "1999-01-01"), gdoc(doc, name, "x"), NULL, bad);
}

/* Creates the group with `rev` and waits until it runs. */
static void create_running(fixture_t *f, const char *name, const char *rev)
{
    static const long created[] = {201, 0};
    char p[PATH_CAP], doc[DOC_CAP];
    send_expect(f, "PUT", gpath(p, name, NULL, NULL), gdoc(doc, name, rev), NULL, created);
    assert_true(wait_running(f, name, rev));
}

static const char *const PLACING[] = {"berth_place_fx", "berth_place_many", "berth_preempt_fx",
                                      NULL};
static const char *const RELEASING[] = {"berth_release_fx", NULL};

/* ---- tests ------------------------------------------------------------------------------------ */

/* A PUT of a new group cut after its commit, then retried. */
static void test_cut_create(void **state)
{
    fixture_t *f = *state;
    const char *name = "made";
    char p[PATH_CAP], doc[DOC_CAP];
    gpath(p, name, NULL, NULL);
    gdoc(doc, name, "one");
    cut_info_t cut = cut_request(f, "PUT", p, doc, NULL, PLACING);
    bad_requests(f, name);
    assert_cell_clean(f);
    doc_info_t d;
    long st = get_group(f, name, &d);
    record_info_t rec = resource_record(f, name);
    int pl = placed(f, name);
    fprintf(stderr, "# create: GET answers %ld (tag %s), placed %d, record %d\n", st, d.tag, pl,
            rec.exists);
    if (st == 404) {
        assert_int_equal(pl, 0);
        assert_false(rec.exists);
        assert_false(cut.applied);
    } else {
        assert_int_equal(st, 200);
        assert_int_equal(pl, 1);
        assert_true(rec.exists);
        assert_string_equal(d.tag, "one");
        assert_true(cut.applied || !cut.reply_seen);
        assert_true(wait_running(f, name, "one"));
    }
    /* The client retries its PUT. */
    static const long ok[] = {200, 201, 0};
    send_expect(f, "PUT", p, doc, NULL, ok);
    assert_cell_clean(f);
    assert_int_equal(placed(f, name), 1);
    assert_true(wait_running(f, name, "one"));
    assert_cell_clean(f);
    f->dump = false;
}

/* A PUT of a changed document of a running group cut after its commit,
 * then retried. */
static void test_cut_update(void **state)
{
    fixture_t *f = *state;
    const char *name = "changed";
    create_running(f, name, "one");
    char p[PATH_CAP], doc[DOC_CAP];
    gpath(p, name, NULL, NULL);
    gdoc(doc, name, "two");
    cut_info_t cut = cut_request(f, "PUT", p, doc, NULL, PLACING);
    bad_requests(f, name);
    assert_cell_clean(f);
    /* GET answers the document whose generation the cell's group holds. */
    doc_info_t d, spec;
    uint64_t gen = 0;
    assert_int_equal(get_group(f, name, &d), 200);
    assert_int_equal(library_group(f, name, &spec, &gen), 1);
    record_info_t rec = resource_record(f, name);
    fprintf(stderr, "# update: GET tag %s env %s; group generation %llu tag %s env %s; "
            "record generation %lld\n", d.tag, d.env, (unsigned long long)gen, spec.tag,
            spec.env, rec.generation);
    assert_true(rec.exists);
    assert_string_equal(d.tag, spec.tag);
    assert_string_equal(d.env, spec.env);
    assert_int_equal(rec.generation, (long long)gen);
    if (cut.reply_seen)
        assert_string_equal(spec.tag, cut.applied ? "two" : "one");
    assert_true(wait_running(f, name, spec.tag));
    static const long ok[] = {200, 0};
    send_expect(f, "PUT", p, doc, NULL, ok);
    assert_cell_clean(f);
    assert_true(wait_running(f, name, "two"));
    assert_int_equal(library_group(f, name, &spec, &gen), 1);
    assert_string_equal(spec.tag, "two");
    assert_cell_clean(f);
    f->dump = false;
}

/* A stop of a running group cut after its commit, retried with the same
 * client request id, then stopped again by another client. */
static void test_cut_stop(void **state)
{
    fixture_t *f = *state;
    const char *name = "halted";
    create_running(f, name, "one");
    char p[PATH_CAP];
    gpath(p, name, "/stop", NULL);
    const char *crid = "x-ms-client-request-id: 5c1e0000-0000-4000-8000-00000000c001";
    cut_info_t cut = cut_request(f, "POST", p, NULL, crid, RELEASING);
    bad_requests(f, name);
    assert_cell_clean(f);
    doc_info_t d;
    assert_int_equal(get_group(f, name, &d), 200);
    bool stopped = strcmp(d.state, "Stopped") == 0;
    int pl = placed(f, name);
    fprintf(stderr, "# stop: GET shows %s, placed %d\n", stopped ? "Stopped" : "not Stopped", pl);
    if (stopped) {
        assert_int_equal(pl, 0);
        assert_true(cut.applied || !cut.reply_seen);
    } else {
        assert_int_equal(pl, 1);
        assert_false(cut.applied);
        assert_true(wait_running(f, name, "one"));
    }
    static const long ok[] = {204, 0};
    send_expect(f, "POST", p, NULL, crid, ok);
    assert_cell_clean(f);
    send_expect(f, "POST", p, NULL, NULL, ok);
    assert_cell_clean(f);
    assert_true(wait_stopped(f, name));
    assert_int_equal(placed(f, name), 0);
    f->dump = false;
}

/* A start of a stopped group cut after its commit, retried with the same
 * client request id, then started again by another client (berthd's
 * replica may not know yet that the cut commit placed the group). */
static void test_cut_start(void **state)
{
    fixture_t *f = *state;
    const char *name = "resumed";
    create_running(f, name, "one");
    static const long stop_ok[] = {204, 0};
    char p[PATH_CAP];
    send_expect(f, "POST", gpath(p, name, "/stop", NULL), NULL, NULL, stop_ok);
    assert_true(wait_stopped(f, name));
    assert_int_equal(placed(f, name), 0);
    gpath(p, name, "/start", NULL);
    const char *crid = "x-ms-client-request-id: 5c1e0000-0000-4000-8000-00000000c002";
    cut_info_t cut = cut_request(f, "POST", p, NULL, crid, PLACING);
    bad_requests(f, name);
    assert_cell_clean(f);
    doc_info_t d;
    assert_int_equal(get_group(f, name, &d), 200);
    bool stopped = strcmp(d.state, "Stopped") == 0;
    int pl = placed(f, name);
    fprintf(stderr, "# start: GET shows %s, placed %d\n", stopped ? "Stopped" : "not Stopped",
            pl);
    if (stopped) {
        assert_int_equal(pl, 0);
        assert_false(cut.applied);
    } else {
        assert_int_equal(pl, 1);
        assert_true(cut.applied || !cut.reply_seen);
        assert_true(wait_running(f, name, "one"));
    }
    static const long ok[] = {202, 204, 0};
    send_expect(f, "POST", p, NULL, crid, ok);
    assert_cell_clean(f);
    send_expect(f, "POST", p, NULL, NULL, ok);
    assert_cell_clean(f);
    assert_true(wait_running(f, name, "one"));
    assert_int_equal(placed(f, name), 1);
    f->dump = false;
}

/* A DELETE cut after its commit, then retried: the retry answers 200 or
 * 204 and the group is gone from the API and the cell. */
static void test_cut_delete(void **state)
{
    fixture_t *f = *state;
    const char *name = "removed";
    create_running(f, name, "one");
    char p[PATH_CAP];
    gpath(p, name, NULL, NULL);
    cut_info_t cut = cut_request(f, "DELETE", p, NULL, NULL, RELEASING);
    bad_requests(f, name);
    assert_cell_clean(f);
    doc_info_t d;
    long st = get_group(f, name, &d);
    int pl = placed(f, name);
    fprintf(stderr, "# delete: GET answers %ld, placed %d\n", st, pl);
    if (st == 404) {
        assert_int_equal(pl, 0);
        assert_true(cut.applied || !cut.reply_seen);
    } else {
        assert_int_equal(st, 200);
        assert_int_equal(pl, 1);
        assert_false(cut.applied);
    }
    /* The retry.  A berthd whose replica did not learn of the release
     * must still answer it as done: "a DELETE of a missing resource
     * succeeds" (tools/berthd/mutate.c). */
    static const long ok[] = {200, 204, 0};
    send_expect(f, "DELETE", p, NULL, NULL, ok);
    assert_int_equal(get_group(f, name, &d), 404);
    assert_int_equal(placed(f, name), 0);
    assert_false(resource_record(f, name).exists);
    assert_cell_clean(f);
    /* The agent carries the release out: its view of the group goes. */
    char key[160];
    group_key(key, sizeof key, name);
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    long long view = 1;
    while ((view = redis_int(f, "HEXISTS berth:{%s}:views %s", f->cell, key)) != 0 &&
           test_now_ms() < end)
        test_sleep_ms(50);
    assert_int_equal(view, 0);
    f->dump = false;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cut_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_delete, setup, teardown),
    };
    return cmocka_run_group_tests(tests, berth_test_redis_group_setup,
                                  berth_test_redis_group_teardown);
}
