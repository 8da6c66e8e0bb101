/*
 * test_bad_inputs.c: the bad-input catalogue (tests/data/bad-inputs.json)
 * run against both doors through which untrusted input enters Berth: the
 * library (berth_group_parse(), then berth_engine_group_validate() with a default
 * engine when parsing succeeds) and berthd's REST API.
 *
 * The catalogue is a JSON array of cases, each {id, kind, description,
 * input, expect}:
 *
 *   kind "document"         an ACI container-group document: `input` is the
 *                           text (a JSON string) or the document itself (an
 *                           object), `input_base64` raw bytes JSON cannot
 *                           hold, or `input_generate` {before, open, count,
 *                           middle, close, after}: before + open x count +
 *                           middle + close x count + after (large or deep
 *                           documents).  expect: {stage "parse"|"validate",
 *                           code (BERTH_E* name), error (berth_error name),
 *                           target (exact), message_contains?, status (what
 *                           berthd answers the same document in a PUT),
 *                           never? (strings no message may hold)}.
 *   kind "http"             one request to berthd: input {method, path,
 *                           query?, headers?, body? | body_base64? |
 *                           body_generate?, token "good"|"bad"|"none"|
 *                           "other-subscription"|"operator"}.  In path and body,
 *                           {sub} is subscription A (the good token's),
 *                           {other_sub} subscription B, {rg} the resource
 *                           group of the groups created at set-up and
 *                           {existing} their name (in A, an NGroup and a
 *                           standby pool of that name exist too, both
 *                           empty).  `query` absent means
 *                           "api-version=2023-05-01"; "" means no query.
 *                           expect: {status, error (CloudError code, or
 *                           null for an answer that is not a CloudError),
 *                           target, message_contains?, same_as? (the id of
 *                           an earlier http case whose answer must be
 *                           byte-identical), never?}.
 *   kind "secret-readback"  input {name, document}: the document is created
 *                           with the good token (expect.status), and no
 *                           answer about it (the PUT, GETs until it settles,
 *                           both listings, the operation status) may hold
 *                           any of expect.never; then it is deleted.
 *
 * Every document case is also sent to berthd as the body of a PUT and must
 * get expect.status with the library's error name and target.  Around every
 * request that must fail, the cell's Redis records (resources, index, dns,
 * operations, usage counts, groups, the host's group set, NGroups and
 * their notes, standby pools and the member counter, and the count of kept
 * POST answers) are snapshotted and must be unchanged.
 *
 * Set-up: a real redis-server (tests/redis-harness.c), one berth-agent with
 * the simulator plugin (tests/agent-harness.c) and berthd
 * (tests/berthd-harness.c) with a tokens file holding one token for
 * subscription A, one for B and an operator's ('*'), and --body-max 2 MiB so that a document
 * over BERTH_DOCUMENT_MAX reaches the library inside berthd.  A group
 * {existing} is created in A and in B, and in A an NGroup {existing} with
 * desiredCount 0 and a standby pool {existing} with maxReadyCapacity 0
 * (so that nothing they own moves while the cases run).
 *
 * Prints one line per case ("id: ok" or "id: FAIL ...") and fails on any
 * mismatch.  Every wait is bounded; the whole run takes a few seconds.
 * BERTH_BAD_INPUTS (an environment variable) names another catalogue.
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
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "agent-harness.h"
#include "berth.h"
#include "berthd-harness.h"
#include "lib/base64.h"
#include "lib/curl.h"
#include "redis-harness.h"

#ifndef BERTH_SRCDIR
#define BERTH_SRCDIR "."
#endif

#define SUB_A "0000-bad-sub-a"
#define SUB_B "0000-bad-sub-b"
#define RG "rg-bad"
#define EXISTING "existing"
#define TOKEN_A "tok-bad-inputs-a-0123456789"
#define TOKEN_B "tok-bad-inputs-b-0123456789"
#define TOKEN_BAD "tok-nobody-knows-0123456789"
#define TOKEN_OP "tok-bad-inputs-operator-0123456789"
#define APIV "2023-05-01"
#define BODY_MAX (2u << 20)         /* berthd's --body-max for this test     */
#define WAIT_MS 15000
#define HTTP_TIMEOUT_S 20L

static const char SIM_CONFIG[] = "{\"images\": [\"busybox:latest\"], \"start_latency_ms\": 50}";

typedef struct fixture {
    berth_test_redis_t *redis;
    redisContext *rc;
    char cell[32];
    test_agent_t agent;
    bool agent_running;
    test_berthd_t d;
    bool d_running;
    char tokens_path[64];
    json_t *cases;
    berth_engine_t *engine;
    size_t failures;
    size_t nreq;                    /* requests sent (for the summary)      */
} fixture_t;

/* ---- small helpers -------------------------------------------------------------------------- */

/* Appends `n` bytes to a growing buffer; aborts when memory runs out (a
 * test has no better answer). */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            abort();
        b->p = p;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* Replaces {sub}, {other_sub}, {rg} and {existing} in s. */
static void expand(buf_t *out, const char *s)
{
    static const char *const from[] = {"{sub}", "{other_sub}", "{rg}", "{existing}"};
    static const char *const to[] = {SUB_A, SUB_B, RG, EXISTING};
    while (*s != '\0') {
        size_t i = 0;
        while (i < 4 && strncmp(s, from[i], strlen(from[i])) != 0)
            i++;
        if (i < 4) {
            buf_str(out, to[i]);
            s += strlen(from[i]);
        } else {
            buf_add(out, s, 1);
            s++;
        }
    }
}

/* Decodes base64 (lib/base64.h) into out.  Returns 0 or -1. */
static int b64_decode(const char *s, buf_t *out)
{
    unsigned char *bytes = NULL;
    size_t n = 0;
    if (berth__base64_decode(s, &bytes, &n) != 0)
        return -1;
    buf_add(out, bytes, n);
    free(bytes);
    return 0;
}

/* The bytes a case describes: `text_key` (a string, or any other JSON value
 * serialized compactly), `<prefix>_base64`, or `<prefix>_generate`.
 * Placeholders are expanded when `placeholders`.  Returns 0 (out filled,
 * NUL-terminated) or -1 when none is given or one is malformed. */
static int case_bytes(json_t *obj, const char *text_key, const char *prefix, bool placeholders,
                      buf_t *out)
{
    char key[64];
    snprintf(key, sizeof key, "%s_base64", prefix);
    json_t *b64 = json_object_get(obj, key);
    if (json_is_string(b64))
        return b64_decode(json_string_value(b64), out);
    snprintf(key, sizeof key, "%s_generate", prefix);
    json_t *gen = json_object_get(obj, key);
    if (json_is_object(gen)) {
        const char *before = json_string_value(json_object_get(gen, "before"));
        const char *open = json_string_value(json_object_get(gen, "open"));
        const char *middle = json_string_value(json_object_get(gen, "middle"));
        const char *close = json_string_value(json_object_get(gen, "close"));
        const char *after = json_string_value(json_object_get(gen, "after"));
        json_int_t count = json_integer_value(json_object_get(gen, "count"));
        if (count < 0 || count > (json_int_t)(16u << 20))
            return -1;
        buf_str(out, before ? before : "");
        size_t lo = open ? strlen(open) : 0, lc = close ? strlen(close) : 0;
        for (json_int_t i = 0; i < count && lo > 0; i++)
            buf_add(out, open, lo);
        buf_str(out, middle ? middle : "");
        for (json_int_t i = 0; i < count && lc > 0; i++)
            buf_add(out, close, lc);
        buf_str(out, after ? after : "");
        return 0;
    }
    json_t *v = json_object_get(obj, text_key);
    if (v == NULL)
        return -1;
    char *text = json_is_string(v) ? strdup(json_string_value(v))
                                   : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return -1;
    if (placeholders)
        expand(out, text);
    else
        buf_str(out, text);
    free(text);
    return 0;
}

static const char *jstr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

static const char *code_name(int code)
{
    switch (code) {
    case 0: return "OK";
    case BERTH_EINVAL: return "EINVAL";
    case BERTH_ENOMEM: return "ENOMEM";
    case BERTH_ENOENT: return "ENOENT";
    case BERTH_EEXIST: return "EEXIST";
    case BERTH_ENOSPC: return "ENOSPC";
    case BERTH_ECONFLICT: return "ECONFLICT";
    case BERTH_EBUSY: return "EBUSY";
    case BERTH_ETOOBIG: return "ETOOBIG";
    case BERTH_ELIMIT: return "ELIMIT";
    case BERTH_EIO: return "EIO";
    default: return "?";
    }
}

/* A case's verdict: the first mismatch, or none. */
typedef struct verdict {
    char why[768];
} verdict_t;

static void mismatch(verdict_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mismatch(verdict_t *v, const char *fmt, ...)
{
    if (v->why[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof v->why, fmt, ap);
    va_end(ap);
}

/* Checks that none of expect.never occurs in the n bytes at s. */
static void check_never(verdict_t *v, json_t *expect, const char *where, const char *s, size_t n)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(expect, "never"), i, e) {
        const char *needle = json_string_value(e);
        if (needle != NULL && needle[0] != '\0' && s != NULL &&
            memmem(s, n, needle, strlen(needle)) != NULL)
            mismatch(v, "%s holds '%s'", where, needle);
    }
}

/* ---- HTTP ----------------------------------------------------------------------------------- */

/* One answer from berthd. */
typedef struct answer {
    long status;
    buf_t body;
    buf_t headers;
    json_t *json;
} answer_t;

static void answer_free(answer_t *a)
{
    free(a->body.p);
    free(a->headers.p);
    json_decref(a->json);
    memset(a, 0, sizeof *a);
}

static size_t write_cb(char *p, size_t size, size_t n, void *data)
{
    buf_add(data, p, size * n);
    return size * n;
}

/* Sends METHOD path?query to the test's berthd, with `body` of `blen` bytes
 * (NULL: none), the bearer token of `token` ("good", "bad", "none",
 * "other-subscription") and the extra headers (a JSON array of "Name:
 * value" strings, may be NULL).  The path is sent exactly as given (no dot
 * segment squashing), so that traversal attempts reach the server.
 * Returns 0 when an answer came, -1 otherwise. */
static int http_send(fixture_t *f, const char *method, const char *path, const char *query,
                     const char *body, size_t blen, const char *token, json_t *headers,
                     answer_t *out)
{
    memset(out, 0, sizeof *out);
    buf_t url = {0};
    buf_str(&url, f->d.base_url);
    buf_str(&url, path);
    if (query != NULL && query[0] != '\0') {
        buf_str(&url, "?");
        buf_str(&url, query);
    }
    CURL *c = curl_easy_init();
    if (c == NULL) {
        free(url.p);
        return -1;
    }
    struct curl_slist *h = NULL;
    char auth[128];
    const char *t = NULL;
    if (token == NULL || strcmp(token, "good") == 0)
        t = TOKEN_A;
    else if (strcmp(token, "other-subscription") == 0)
        t = TOKEN_B;
    else if (strcmp(token, "bad") == 0)
        t = TOKEN_BAD;
    else if (strcmp(token, "operator") == 0)
        t = TOKEN_OP;
    if (t != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", t);
        h = curl_slist_append(h, auth);
    }
    h = curl_slist_append(h, "Expect:");
    h = curl_slist_append(h, "Content-Type: application/json");
    size_t i;
    json_t *e;
    json_array_foreach(headers, i, e) {
        if (json_is_string(e))
            h = curl_slist_append(h, json_string_value(e));
    }
    curl_easy_setopt(c, CURLOPT_URL, url.p);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    berth__curl_options_t how = {.timeout_ms = HTTP_TIMEOUT_S * 1000,
                                 .connect_timeout_ms = 10000};
    berth__curl_setup(c, &how);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &out->headers);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    else
        fprintf(stderr, "  no answer to %s %s: %s\n", method, path, curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(url.p);
    f->nreq++;
    if (out->body.p == NULL)
        buf_add(&out->body, "", 0);
    if (out->headers.p == NULL)
        buf_add(&out->headers, "", 0);
    out->json = json_loadb(out->body.p, out->body.len, 0, NULL);
    return rc == CURLE_OK ? 0 : -1;
}

/* A group's path in subscription `sub`. */
static char *group_path(const char *sub, const char *name)
{
    char *p = NULL;
    if (asprintf(&p,
                 "/subscriptions/%s/resourceGroups/" RG
                 "/providers/Microsoft.ContainerInstance/containerGroups/%s",
                 sub, name) < 0)
        abort();
    return p;
}

/* The CloudError's code and target of an answer ("" when absent). */
static const char *cloud_code(const answer_t *a)
{
    return jstr(json_object_get(a->json, "error"), "code");
}

static const char *cloud_target(const answer_t *a)
{
    return jstr(json_object_get(a->json, "error"), "target");
}

static const char *cloud_message(const answer_t *a)
{
    return jstr(json_object_get(a->json, "error"), "message");
}

/* Checks an answer against {status, error, target, message_contains}. */
static void check_answer(verdict_t *v, json_t *expect, const answer_t *a, const char *what)
{
    json_int_t status = json_integer_value(json_object_get(expect, "status"));
    if (a->status != status)
        mismatch(v, "%s: status %ld, expected %lld: %.300s", what, a->status, (long long)status,
                 a->body.p);
    json_t *error = json_object_get(expect, "error");
    if (json_is_null(error)) {
        if (json_is_object(json_object_get(a->json, "error")))
            mismatch(v, "%s: a CloudError where none was expected: %.300s", what, a->body.p);
    } else if (json_is_string(error)) {
        json_t *e = json_object_get(a->json, "error");
        if (!json_is_object(e) || !json_is_string(json_object_get(e, "message")))
            mismatch(v, "%s: not a CloudError: %.300s", what, a->body.p);
        else if (strcmp(cloud_code(a), json_string_value(error)) != 0)
            mismatch(v, "%s: error %s, expected %s: %.300s", what, cloud_code(a),
                     json_string_value(error), a->body.p);
        const char *target = json_string_value(json_object_get(expect, "target"));
        if (target != NULL && strcmp(cloud_target(a), target) != 0)
            mismatch(v, "%s: target '%s', expected '%s'", what, cloud_target(a), target);
        const char *part = json_string_value(json_object_get(expect, "message_contains"));
        if (part != NULL && strstr(cloud_message(a), part) == NULL)
            mismatch(v, "%s: message '%s' lacks '%s'", what, cloud_message(a), part);
    }
    check_never(v, expect, what, a->body.p, a->body.len);
    check_never(v, expect, what, a->headers.p, a->headers.len);
}

/* ---- "nothing changed" ---------------------------------------------------------------------- */

static void snap_reply(buf_t *s, redisReply *r)
{
    char tag[48];
    if (r == NULL) {
        buf_str(s, "<no reply>");
        return;
    }
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        snprintf(tag, sizeof tag, "s%zu:", (size_t)r->len);
        buf_str(s, tag);
        buf_add(s, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(tag, sizeof tag, "i%lld;", r->integer);
        buf_str(s, tag);
        break;
    case REDIS_REPLY_NIL:
        buf_str(s, "nil;");
        break;
    case REDIS_REPLY_ARRAY:
        snprintf(tag, sizeof tag, "a%zu:", r->elements);
        buf_str(s, tag);
        for (size_t i = 0; i < r->elements; i++)
            snap_reply(s, r->element[i]);
        break;
    default:
        buf_str(s, "?;");
    }
}

/* The cell's records a failed request must leave alone, as one string
 * (free()).  DUMP of each record key and the number of kept answers. */
static char *snapshot(fixture_t *f)
{
    static const char *const keys[] = {"resources", "index", "dns", "operations", "usage", "groups",
                                       "hostgroups:sim-1", "skus", "meta", "ngroups",
                                       "ngroupnotes", "pools", "poolseq"};
    buf_t s = {0};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        redisReply *r = redisCommand(f->rc, "DUMP berth:{%s}:%s", f->cell, keys[i]);
        buf_str(&s, keys[i]);
        buf_str(&s, "=");
        snap_reply(&s, r);
        buf_str(&s, "\n");
        if (r != NULL)
            freeReplyObject(r);
    }
    redisReply *r;
    size_t done = 0;
    char cursor[32] = "0";
    for (int round = 0; round < 1000; round++) {
        r = redisCommand(f->rc, "SCAN %s MATCH berth:{%s}:done:* COUNT 1000", cursor, f->cell);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            buf_str(&s, "<scan failed>");
            if (r != NULL)
                freeReplyObject(r);
            break;
        }
        done += r->element[1]->elements;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    char tail[48];
    snprintf(tail, sizeof tail, "\ndone=%zu\n", done);
    buf_str(&s, tail);
    return s.p;
}

/* ---- the cases ------------------------------------------------------------------------------ */

static void report(fixture_t *f, const char *id, const char *suffix, const verdict_t *v)
{
    if (v->why[0] == '\0') {
        printf("%s%s: ok\n", id, suffix);
    } else {
        printf("%s%s: FAIL %s\n", id, suffix, v->why);
        f->failures++;
    }
    fflush(stdout);
}

/* A document case against the library. */
static void run_document_lib(fixture_t *f, json_t *c, const buf_t *doc, verdict_t *v)
{
    json_t *expect = json_object_get(c, "expect");
    berth_error_t err;
    berth_error_clear(&err);
    berth_group_t *g = NULL;
    const char *stage = "parse";
    int rc = berth_group_parse(doc->p, doc->len, &g, &err);
    if (rc == 0) {
        stage = "validate";
        berth_error_clear(&err);
        rc = berth_engine_group_validate(f->engine, g, &err);
        berth_group_free(g);
    } else if (g != NULL) {
        mismatch(v, "parse failed but stored a group");
    }
    if (rc == 0) {
        mismatch(v, "accepted by parse and validate");
        return;
    }
    const char *want_stage = json_string_value(json_object_get(expect, "stage"));
    if (want_stage != NULL && strcmp(want_stage, stage) != 0)
        mismatch(v, "refused by %s, expected by %s (%s at '%s')", stage, want_stage, err.name,
                 err.target);
    if (strcmp(code_name(rc), jstr(expect, "code")) != 0)
        mismatch(v, "code %s, expected %s (%s at '%s': %s)", code_name(rc), jstr(expect, "code"),
                 err.name, err.target, err.message);
    if (err.code != rc)
        mismatch(v, "err.code %d differs from the return value %d", err.code, rc);
    if (strcmp(err.name, jstr(expect, "error")) != 0)
        mismatch(v, "error %s, expected %s (at '%s': %s)", err.name, jstr(expect, "error"),
                 err.target, err.message);
    if (strcmp(err.target, jstr(expect, "target")) != 0)
        mismatch(v, "target '%s', expected '%s' (%s: %s)", err.target, jstr(expect, "target"),
                 err.name, err.message);
    const char *part = json_string_value(json_object_get(expect, "message_contains"));
    if (part != NULL && strstr(err.message, part) == NULL)
        mismatch(v, "message '%s' lacks '%s'", err.message, part);
    if (err.message[0] == '\0')
        mismatch(v, "empty message");
    check_never(v, expect, "the message", err.message, strlen(err.message));
    for (size_t i = 0; i < err.ndetails && i < BERTH_ERROR_DETAILS_MAX; i++)
        check_never(v, expect, "a detail", err.details[i].message,
                    strlen(err.details[i].message));
}

/* A document case sent to berthd as a PUT body. */
static void run_document_http(fixture_t *f, json_t *c, const buf_t *doc, verdict_t *v)
{
    json_t *expect = json_object_get(c, "expect");
    char *path = group_path(SUB_A, "replay-doc");
    char *before = snapshot(f);
    answer_t a;
    http_send(f, "PUT", path, "api-version=" APIV, doc->p, doc->len, "good", NULL, &a);
    char *after = snapshot(f);
    json_t *want = json_pack("{s:O, s:s, s:s}", "status", json_object_get(expect, "status"),
                             "error", jstr(expect, "error"), "target", jstr(expect, "target"));
    json_object_set(want, "never", json_object_get(expect, "never"));
    if (json_object_get(expect, "status") == NULL)
        json_object_set_new(want, "status", json_integer(400));
    check_answer(v, want, &a, "berthd");
    if (strcmp(before, after) != 0)
        mismatch(v, "berthd: the cell's records changed");
    json_decref(want);
    answer_free(&a);
    free(before);
    free(after);
    free(path);
}

/* Earlier http answers, by case id, for same_as. */
typedef struct kept {
    char id[96];
    long status;
    char *body;
} kept_t;

static void run_http(fixture_t *f, json_t *c, kept_t *kept, size_t *nkept, size_t maxkept,
                     verdict_t *v)
{
    json_t *in = json_object_get(c, "input");
    json_t *expect = json_object_get(c, "expect");
    buf_t path = {0}, body = {0};
    expand(&path, jstr(in, "path"));
    json_t *q = json_object_get(in, "query");
    buf_t query = {0};
    if (q == NULL)
        buf_str(&query, "api-version=" APIV);
    else
        expand(&query, json_is_string(q) ? json_string_value(q) : "");
    bool has_body = case_bytes(in, "body", "body", true, &body) == 0;
    const char *token = json_string_value(json_object_get(in, "token"));
    char *before = snapshot(f);
    answer_t a;
    http_send(f, jstr(in, "method"), path.p, query.p, has_body ? body.p : NULL, body.len,
              token ? token : "good", json_object_get(in, "headers"), &a);
    char *after = snapshot(f);
    check_answer(v, expect, &a, "berthd");
    if (strcmp(before, after) != 0)
        mismatch(v, "the cell's records changed");
    const char *same = json_string_value(json_object_get(expect, "same_as"));
    if (same != NULL) {
        size_t i = 0;
        while (i < *nkept && strcmp(kept[i].id, same) != 0)
            i++;
        if (i == *nkept)
            mismatch(v, "same_as names no earlier http case '%s'", same);
        else if (kept[i].status != a.status || strcmp(kept[i].body, a.body.p) != 0)
            mismatch(v, "the answer differs from %s's: %ld %.200s vs %ld %.200s", same,
                     a.status, a.body.p, kept[i].status, kept[i].body);
    }
    if (*nkept < maxkept) {
        snprintf(kept[*nkept].id, sizeof kept[*nkept].id, "%s", jstr(c, "id"));
        kept[*nkept].status = a.status;
        kept[*nkept].body = strdup(a.body.p);
        (*nkept)++;
    }
    answer_free(&a);
    free(before);
    free(after);
    free(path.p);
    free(query.p);
    free(body.p);
}

/* The provisioning state in a group's answer. */
static const char *prov_state(const answer_t *a)
{
    return jstr(json_object_get(a->json, "properties"), "provisioningState");
}

static void run_secret_readback(fixture_t *f, json_t *c, verdict_t *v)
{
    json_t *in = json_object_get(c, "input");
    json_t *expect = json_object_get(c, "expect");
    const char *name = jstr(in, "name");
    buf_t doc = {0};
    if (case_bytes(in, "document", "document", true, &doc) != 0) {
        mismatch(v, "no document");
        return;
    }
    char *path = group_path(SUB_A, name);
    answer_t a;
    http_send(f, "PUT", path, "api-version=" APIV, doc.p, doc.len, "good", NULL, &a);
    json_int_t status = json_integer_value(json_object_get(expect, "status"));
    if (a.status != (status ? status : 201))
        mismatch(v, "PUT: status %ld: %.300s", a.status, a.body.p);
    check_never(v, expect, "the PUT's answer", a.body.p, a.body.len);
    check_never(v, expect, "the PUT's headers", a.headers.p, a.headers.len);
    /* The operation status URL, without the base. */
    char op[512] = "";
    const char *h = strcasestr(a.headers.p, "Azure-AsyncOperation:");
    if (h != NULL) {
        h += strlen("Azure-AsyncOperation:");
        while (*h == ' ')
            h++;
        size_t base = strlen(f->d.base_url);
        if (strncmp(h, f->d.base_url, base) == 0)
            h += base;
        size_t n = strcspn(h, "\r\n");
        snprintf(op, sizeof op, "%.*s", (int)(n < sizeof op ? n : sizeof op - 1), h);
    }
    answer_free(&a);
    /* GET until the agent has settled it (bounded). */
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    for (;;) {
        http_send(f, "GET", path, "api-version=" APIV, NULL, 0, "good", NULL, &a);
        check_never(v, expect, "a GET", a.body.p, a.body.len);
        const char *ps = prov_state(&a);
        bool settled = strcmp(ps, "Succeeded") == 0 || strcmp(ps, "Failed") == 0;
        bool ok = a.status == 200;
        answer_free(&a);
        if (!ok) {
            mismatch(v, "GET: not 200");
            break;
        }
        if (settled)
            break;
        if (test_now_ms() > end) {
            mismatch(v, "the group did not settle within %d ms", WAIT_MS);
            break;
        }
        test_sleep_ms(50);
    }
    char *lists[3] = {NULL, NULL, NULL};
    if (asprintf(&lists[0],
                 "/subscriptions/" SUB_A "/resourceGroups/" RG
                 "/providers/Microsoft.ContainerInstance/containerGroups") < 0 ||
        asprintf(&lists[1], "/subscriptions/" SUB_A
                            "/providers/Microsoft.ContainerInstance/containerGroups") < 0)
        abort();
    if (op[0] != '\0')
        lists[2] = strdup(op);
    else
        mismatch(v, "PUT: no Azure-AsyncOperation header");
    for (size_t i = 0; i < 3; i++) {
        if (lists[i] == NULL)
            continue;
        char *qm = strchr(lists[i], '?');
        if (qm != NULL)
            *qm = '\0';
        http_send(f, "GET", lists[i], qm != NULL ? qm + 1 : "api-version=" APIV, NULL, 0, "good",
                  NULL, &a);
        if (a.status != 200)
            mismatch(v, "GET %s: status %ld", lists[i], a.status);
        check_never(v, expect, lists[i], a.body.p, a.body.len);
        answer_free(&a);
        free(lists[i]);
    }
    /* Deleted again, so that every case finds the same free capacity. */
    http_send(f, "DELETE", path, "api-version=" APIV, NULL, 0, "good", NULL, &a);
    if (a.status != 200 && a.status != 202)
        mismatch(v, "DELETE: status %ld: %.300s", a.status, a.body.p);
    check_never(v, expect, "the DELETE's answer", a.body.p, a.body.len);
    answer_free(&a);
    free(path);
    free(doc.p);
}

static void run_case(fixture_t *f, json_t *c, kept_t *kept, size_t *nkept, size_t maxkept)
{
    const char *id = jstr(c, "id");
    const char *kind = jstr(c, "kind");
    verdict_t v = {{0}};
    if (strcmp(kind, "document") == 0) {
        buf_t doc = {0};
        if (case_bytes(c, "input", "input", false, &doc) != 0) {
            mismatch(&v, "the case has no usable input");
            report(f, id, "", &v);
            return;
        }
        run_document_lib(f, c, &doc, &v);
        report(f, id, "", &v);
        verdict_t vh = {{0}};
        run_document_http(f, c, &doc, &vh);
        report(f, id, " (berthd)", &vh);
        free(doc.p);
    } else if (strcmp(kind, "http") == 0) {
        run_http(f, c, kept, nkept, maxkept, &v);
        report(f, id, "", &v);
    } else if (strcmp(kind, "secret-readback") == 0) {
        run_secret_readback(f, c, &v);
        report(f, id, "", &v);
    } else {
        mismatch(&v, "unknown kind '%s'", kind);
        report(f, id, "", &v);
    }
}

/* ---- set-up --------------------------------------------------------------------------------- */

static json_t *load_catalogue(void)
{
    const char *env = getenv("BERTH_BAD_INPUTS");
    char path[512];
    if (env != NULL && env[0] != '\0')
        snprintf(path, sizeof path, "%s", env);
    else
        snprintf(path, sizeof path, "%s/tests/data/bad-inputs.json", BERTH_SRCDIR);
    json_error_t jerr;
    json_t *cases = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (cases == NULL)
        fprintf(stderr, "%s: line %d: %s\n", path, jerr.line, jerr.text);
    else if (!json_is_array(cases)) {
        fprintf(stderr, "%s: not a JSON array\n", path);
        json_decref(cases);
        cases = NULL;
    }
    return cases;
}

/* Checks the catalogue's own shape: unique ids, known kinds, an expect. */
static bool catalogue_ok(json_t *cases)
{
    bool ok = true;
    size_t i, j;
    json_t *c, *d;
    json_array_foreach(cases, i, c) {
        const char *id = jstr(c, "id");
        const char *kind = jstr(c, "kind");
        if (id[0] == '\0' || !json_is_object(json_object_get(c, "expect")) ||
            !json_is_string(json_object_get(c, "description")) ||
            (strcmp(kind, "document") != 0 && strcmp(kind, "http") != 0 &&
             strcmp(kind, "secret-readback") != 0)) {
            fprintf(stderr, "catalogue case %zu ('%s') is malformed\n", i, id);
            ok = false;
        }
        json_array_foreach(cases, j, d) {
            if (j < i && strcmp(jstr(d, "id"), id) == 0) {
                fprintf(stderr, "catalogue id '%s' is used twice\n", id);
                ok = false;
            }
        }
    }
    return ok;
}

/* A valid group with a secret in each place a secret can be. */
static const char EXISTING_DOC[] =
    "{\"location\": \"westus\", \"properties\": {\"osType\": \"Linux\", \"containers\": "
    "[{\"name\": \"app\", \"properties\": {\"image\": \"busybox:latest\", "
    "\"environmentVariables\": [{\"name\": \"PW\", \"secureValue\": \"SECRET-existing-env\"}], "
    "\"resources\": {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.5}}}}]}}";

static bool wait_settled(fixture_t *f, const char *sub, const char *token)
{
    char *path = group_path(sub, EXISTING);
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    bool ok = false;
    while (!ok && test_now_ms() < end) {
        answer_t a;
        http_send(f, "GET", path, "api-version=" APIV, NULL, 0, token, NULL, &a);
        ok = a.status == 200 && strcmp(prov_state(&a), "Succeeded") == 0;
        answer_free(&a);
        if (!ok)
            test_sleep_ms(50);
    }
    free(path);
    return ok;
}

static bool create_existing(fixture_t *f, const char *sub, const char *token)
{
    char *path = group_path(sub, EXISTING);
    answer_t a;
    http_send(f, "PUT", path, "api-version=" APIV, EXISTING_DOC, strlen(EXISTING_DOC), token,
              NULL, &a);
    bool ok = a.status == 201;
    if (!ok)
        fprintf(stderr, "creating %s in %s: %ld %s\n", EXISTING, sub, a.status, a.body.p);
    answer_free(&a);
    free(path);
    return ok && wait_settled(f, sub, token);
}

/* Creates the container group profile, the NGroup and the standby pool
 * {existing} in A (the pool of that profile), the NGroup and pool empty. */
static bool create_existing_fleet(fixture_t *f)
{
    static const char ngroup[] =
        "{\"location\": \"westus\", \"properties\": {\"elasticProfile\": {\"desiredCount\": 0},"
        " \"containerGroupProfiles\": []}}";
    static const char profile[] =
        "{\"location\": \"westus\", \"properties\": {\"osType\": \"Linux\", \"containers\":"
        " [{\"name\": \"app\", \"properties\": {\"image\": \"busybox:latest\", \"resources\":"
        " {\"requests\": {\"cpu\": 0.5, \"memoryInGB\": 0.5}}}}]}}";
    static const char pool[] =
        "{\"location\": \"westus\", \"properties\": {\"elasticityProfile\": "
        "{\"maxReadyCapacity\": 0}, \"containerGroupProperties\": {\"containerGroupProfile\":"
        " {\"id\": \"/subscriptions/" SUB_A "/resourceGroups/" RG "/providers/"
        "Microsoft.ContainerInstance/containerGroupProfiles/" EXISTING "\", \"revision\": 1}}}}";
    const struct {
        const char *provider, *query, *body;
    } fleet[] = {
        {"Microsoft.ContainerInstance/containerGroupProfiles", "api-version=2025-09-01", profile},
        {"Microsoft.ContainerInstance/ngroups", "api-version=2025-09-01", ngroup},
        {"Microsoft.StandbyPool/standbyContainerGroupPools", "api-version=2025-03-01", pool},
    };
    bool ok = true;
    for (size_t i = 0; ok && i < sizeof fleet / sizeof fleet[0]; i++) {
        char *path = NULL;
        if (asprintf(&path, "/subscriptions/" SUB_A "/resourceGroups/" RG "/providers/%s/" EXISTING,
                     fleet[i].provider) < 0)
            abort();
        answer_t a;
        http_send(f, "PUT", path, fleet[i].query, fleet[i].body, strlen(fleet[i].body), "good",
                  NULL, &a);
        ok = a.status == 201;
        if (!ok)
            fprintf(stderr, "creating %s: %ld %s\n", path, a.status, a.body.p);
        answer_free(&a);
        free(path);
    }
    return ok;
}

static bool wait_host(fixture_t *f)
{
    int64_t end = test_now_ms() + test_deadline_ms(WAIT_MS);
    while (test_now_ms() < end) {
        answer_t a;
        http_send(f, "GET", "/berth/hosts", "", NULL, 0, "operator", NULL, &a);
        size_t n = json_array_size(json_object_get(a.json, "value"));
        answer_free(&a);
        if (n >= 1)
            return true;
        test_sleep_ms(50);
    }
    return false;
}

static int teardown(void **state);

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    *state = f;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    f->cases = load_catalogue();
    if (f->cases == NULL || !catalogue_ok(f->cases))
        goto fail;
    berth_engine_options_t o;
    berth_engine_options_init(&o);
    if (berth_engine_new(&o, &f->engine, NULL) != 0)
        goto fail;
    berth_test_redis_options_t ro = {BERTH_TEST_REDIS_UNIX, BERTH_TEST_REDIS_AOF_OFF, 0};
    f->redis = berth_test_redis_start(&ro);
    if (f->redis == NULL || (f->rc = berth_test_redis_connect(f->redis)) == NULL)
        goto fail;
    snprintf(f->cell, sizeof f->cell, "bad-%d", (int)getpid() % 100000);
    snprintf(f->tokens_path, sizeof f->tokens_path, "/tmp/berth-bad-tokens-XXXXXX");
    int fd = mkstemp(f->tokens_path);
    if (fd < 0)
        goto fail;
    static const char tokens[] = "# the bad-input catalogue's tokens\n" TOKEN_A " " SUB_A "\n"
                                 TOKEN_B " " SUB_B "\n" TOKEN_OP " *\n";
    bool wrote = write(fd, tokens, sizeof tokens - 1) == (ssize_t)(sizeof tokens - 1);
    close(fd);
    if (!wrote)
        goto fail;
    char body_max[32];
    snprintf(body_max, sizeof body_max, "%u", BODY_MAX);
    const char *args[] = {"--redis",  f->redis->url, "--cell",     f->cell,
                          "--tokens", f->tokens_path, "--body-max", body_max, NULL};
    if (test_berthd_start(&f->d, false, args) != 0)
        goto fail;
    f->d_running = true;
    static const char *const agent_args[] = {"--cores", "8", "--memory-mib", "65536",
                                             "--tick-ms", "50", "--heartbeat-ms", "200",
                                             "--ttl-ms", "10000", NULL};
    if (test_agent_start(&f->agent, f->redis->url, f->cell, "sim-1", "sim", SIM_CONFIG,
                         agent_args) != 0)
        goto fail;
    f->agent_running = true;
    if (!wait_host(f) || !create_existing(f, SUB_A, "good") ||
        !create_existing(f, SUB_B, "other-subscription") || !create_existing_fleet(f)) {
        test_berthd_dump(&f->d, 30);
        test_agent_dump(&f->agent, 20);
        goto fail;
    }
    return 0;
fail:
    teardown(state);
    return -1;
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
    if (f->agent_running) {
        test_agent_stop(&f->agent);
        unlink(f->agent.log_path);
    }
    if (f->rc != NULL)
        redisFree(f->rc);
    berth_test_redis_stop(f->redis);
    if (f->tokens_path[0] != '\0')
        unlink(f->tokens_path);
    berth_engine_free(f->engine);
    json_decref(f->cases);
    free(f);
    curl_global_cleanup();
    *state = NULL;
    return rc;
}

/* ---- the test ------------------------------------------------------------------------------- */

/* Reads berthd's log and fails when it holds a token or a secret of the
 * catalogue (every expect.never string). */
static void check_log(fixture_t *f)
{
    FILE *fp = fopen(f->d.log_path, "rb");
    verdict_t v = {{0}};
    if (fp == NULL) {
        mismatch(&v, "cannot read %s", f->d.log_path);
    } else {
        buf_t log = {0};
        char chunk[8192];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
            buf_add(&log, chunk, n);
        fclose(fp);
        if (log.p == NULL)
            buf_add(&log, "", 0);
        static const char *const tokens[] = {TOKEN_A, TOKEN_B, TOKEN_BAD, TOKEN_OP};
        for (size_t i = 0; i < 4; i++)
            if (strstr(log.p, tokens[i]) != NULL)
                mismatch(&v, "berthd's log holds a token");
        size_t i;
        json_t *c;
        json_array_foreach(f->cases, i, c)
            check_never(&v, json_object_get(c, "expect"), "berthd's log", log.p, log.len);
        free(log.p);
    }
    report(f, "berthd-log-holds-no-secret", "", &v);
}

static void test_catalogue(void **state)
{
    fixture_t *f = *state;
    int64_t t0 = test_now_ms();
    size_t n = json_array_size(f->cases), counts[3] = {0, 0, 0};
    kept_t *kept = calloc(n, sizeof *kept);
    assert_non_null(kept);
    size_t nkept = 0;
    size_t i;
    json_t *c;
    json_array_foreach(f->cases, i, c) {
        const char *kind = jstr(c, "kind");
        counts[strcmp(kind, "document") == 0 ? 0 : strcmp(kind, "http") == 0 ? 1 : 2]++;
        run_case(f, c, kept, &nkept, n);
    }
    check_log(f);
    for (i = 0; i < nkept; i++)
        free(kept[i].body);
    free(kept);
    printf("%zu cases (%zu document, %zu http, %zu secret-readback), %zu requests, "
           "%lld ms: %zu failed\n",
           n, counts[0], counts[1], counts[2], f->nreq, (long long)(test_now_ms() - t0),
           f->failures);
    assert_int_equal(f->failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_catalogue, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
