/*
 * fuzz_request.c: libFuzzer target for berthd's request helpers
 * (tools/berthd/resource.c, apiversions.c): path splitting, segment
 * validation and normalisation, query parameters, percent-encoding,
 * api-versions and their property gate.
 *
 * The input is a request: a target "PATH[?QUERY]" (a NUL byte ends it, as
 * it ends a C string in berthd), then optionally, after a newline, header
 * lines "Name: value" up to an empty line, then a body (raw bytes).  Every
 * header value goes through bd_header_value_ok(), an Authorization value
 * through bd_bearer_token() and the path through bd_path_subscription();
 * the body through the PATCH and exec body readers, the command splitter
 * and, read as JSON, the api-version gate and shaper under every version.  The path goes through bd_path_split() with
 * api.c's buffer sizes and every segment through the validators and
 * copiers; the query through bd_query_get() for each parameter api.c reads,
 * with api.c's output sizes.  Every output buffer is a heap block of
 * exactly its size, so a write one byte too far is a sanitizer report.
 * Invariants: a split's segments rejoin to the path, and a percent-encoded
 * segment read back through bd_query_get() is the segment again.
 */
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "apiversions.h"
#include "query.h"
#include "resource.h"

#define PATH_MAX_BYTES 2048         /* api.c's path buffer                  */
#define SEG_MAX 16                  /* api.c's segment limit                */
#define RANGE_MAX 512               /* api.c's $skiptoken buffer            */

static char *xmalloc(size_t n)
{
    char *p = malloc(n ? n : 1);
    FUZZ_CHECK(p != NULL);
    return p;
}

/* Copies `s` into a heap block of exactly strlen(s)+1 bytes. */
static char *dup_exact(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

/* bd_lower() or bd_location_norm() into exactly `cap` bytes; the result is
 * NUL-terminated, without upper-case letters. */
static void check_copy(const char *s, size_t cap, bool norm)
{
    char *out = xmalloc(cap);
    if (norm)
        bd_location_norm(s, out, cap);
    else
        bd_lower(s, out, cap);
    if (cap > 0) {
        size_t n = strnlen(out, cap);
        FUZZ_CHECK(n < cap);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(!(out[i] >= 'A' && out[i] <= 'Z') && !(norm && out[i] == ' '));
        if (!norm)
            FUZZ_CHECK(n == (strlen(s) < cap - 1 ? strlen(s) : cap - 1));
    }
    free(out);
}

/* The validators' promises about length and characters. */
static void check_segment(const char *s)
{
    size_t n = strlen(s);
    if (bd_valid_group_name(s))
        FUZZ_CHECK(n >= 1 && n <= 63 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n);
    if (bd_valid_subscription(s))
        FUZZ_CHECK(n >= 1 && n <= BD_SUB_MAX);
    if (bd_valid_resource_group(s))
        FUZZ_CHECK(n >= 1 && n <= BD_RG_MAX && s[n - 1] != '.');
    if (bd_valid_location(s))
        FUZZ_CHECK(n >= 1 && n <= BD_LOCATION_MAX);
    if (bd_valid_hex_id(s))
        FUZZ_CHECK(n == BD_ID_HEX);
    FUZZ_CHECK(bd_apiv_known(s) == (bd_apiv_index(s) >= 0));
    FUZZ_CHECK(bd_secret_equal(s, s));

    check_copy(s, BD_SUB_MAX + 1, false);
    check_copy(s, BD_RG_MAX + 1, false);
    check_copy(s, BD_KEY_MAX + 1, false);
    check_copy(s, BD_LOCATION_MAX + 1, true);
    check_copy(s, 1, false);
    check_copy(s, 1, true);

    /* Percent-encoding: too small a buffer is refused, a large enough one
     * holds the encoding, which decodes back to the segment. */
    size_t cap = 3 * n + 1;
    char *enc = xmalloc(cap);
    FUZZ_CHECK(bd_urlencode(s, enc, cap) == 0);
    size_t elen = strlen(enc);
    FUZZ_CHECK(elen < cap && strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789-_.~%") == elen);
    char *small = xmalloc(elen);
    FUZZ_CHECK(bd_urlencode(s, small, elen) == -1);
    free(small);
    char *query = xmalloc(elen + 8);
    snprintf(query, elen + 8, "a=1&x=%s", enc);
    char *back = xmalloc(n + 1);
    FUZZ_CHECK(bd_query_get(query, "x", back, n + 1) == 1 && strcmp(back, s) == 0);
    if (n > 0)
        FUZZ_CHECK(bd_query_get(query, "x", back, n) == -1);
    free(back);
    free(query);
    free(enc);
}

static void check_path(const char *path)
{
    char *buf = xmalloc(PATH_MAX_BYTES);
    char *seg[SEG_MAX];
    int n = bd_path_split(path, buf, PATH_MAX_BYTES, seg, SEG_MAX);
    FUZZ_CHECK(n == -1 || (n >= 1 && n <= SEG_MAX));
    if (n > 0) {
        /* "/" + the segments joined by "/" is the path, less one trailing "/". */
        size_t plen = strlen(path), at = 0;
        char *joined = xmalloc(plen + 1);
        for (int i = 0; i < n; i++) {
            size_t slen = strlen(seg[i]);
            FUZZ_CHECK(seg[i] >= buf && seg[i] + slen < buf + PATH_MAX_BYTES);
            FUZZ_CHECK(slen > 0 && strcmp(seg[i], ".") != 0 && strcmp(seg[i], "..") != 0);
            for (size_t j = 0; j < slen; j++)
                FUZZ_CHECK((unsigned char)seg[i][j] >= 0x20 &&
                           (unsigned char)seg[i][j] < 0x7f && seg[i][j] != '\\' &&
                           seg[i][j] != '/');
            FUZZ_CHECK(at + 1 + slen <= plen);
            joined[at++] = '/';
            memcpy(joined + at, seg[i], slen);
            at += slen;
        }
        FUZZ_CHECK(at == plen || (at + 1 == plen && path[at] == '/'));
        FUZZ_CHECK(memcmp(joined, path, at) == 0);
        free(joined);
        for (int i = 0; i < n; i++)
            check_segment(seg[i]);
    }
    free(buf);
    /* A smaller buffer refuses a path that does not fit, never overflows. */
    size_t cap = strlen(path) / 2 + 1;
    buf = xmalloc(cap);
    n = bd_path_split(path, buf, cap, seg, 4);
    FUZZ_CHECK(n == -1 || (n >= 1 && n <= 4));
    free(buf);
}

/* bd_query_get() for `name` into exactly `cap` bytes. */
static int query(const char *q, const char *name, size_t cap)
{
    char *out = xmalloc(cap);
    int rc = bd_query_get(q, name, out, cap);
    FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (rc == 1) {
        FUZZ_CHECK(strnlen(out, cap) < cap);
        (void)bd_apiv_known(out);
        (void)atoi(out);
    }
    free(out);
    return rc;
}

static void check_query(const char *q)
{
    query(q, "api-version", 32);
    query(q, "$top", 16);
    query(q, "$skiptoken", RANGE_MAX);
    query(q, "tail", 32);
    query(q, "timestamps", 32);
    query(q, "", 8);
    /* Every parameter name in the query is found. */
    char *copy = dup_exact(q);
    for (char *p = copy, *next; p != NULL; p = next) {
        next = strchr(p, '&');
        if (next != NULL)
            *next++ = '\0';
        char *eq = strchr(p, '=');
        if (eq != NULL)
            *eq = '\0';
        if (*p != '\0')
            FUZZ_CHECK(query(q, p, strlen(q) + 1) != 0);
    }
    free(copy);
}

/* Header lines ("Name: value") of the NUL-terminated block `h`. */
static void check_headers(char *h, const char *path)
{
    for (char *save = NULL, *line = strtok_r(h, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        const char *value = colon + 1;
        while (*value == ' ')
            value++;
        char *v = dup_exact(value);
        bool ok = bd_header_value_ok(v);
        FUZZ_CHECK(!ok || strlen(v) <= 256);
        if (strcasecmp(line, "Authorization") == 0) {
            const char *t = bd_bearer_token(v);
            /* The token lies inside the value, after "Bearer ", non-empty,
             * without leading spaces. */
            FUZZ_CHECK(t == NULL || (t >= v + 7 && t < v + strlen(v) && *t != ' '));
        }
        free(v);
    }
    const char *sub;
    size_t len;
    if (bd_path_subscription(path, &sub, &len))
        FUZZ_CHECK(sub == path + 15 && len <= strlen(sub) && memchr(sub, '/', len) == NULL);
}

/* A JSON body through every version's gate and shaper: a refusal names a
 * gated entry the version lacks and a non-empty target; once shaped for a
 * version, a document passes that version's gate unless an enum value
 * (never shaped) was at fault. */
static void check_versions(const uint8_t *body, size_t len)
{
    json_t *doc = json_loadb((const char *)body, len, 0, NULL);
    if (doc == NULL)
        return;
    for (size_t i = 0; i < bd_apiv_count(); i++) {
        const char *v = bd_apiv_name(i);
        bd_apiv_refusal_t why;
        if (!bd_apiv_request_ok(doc, v, &why)) {
            FUZZ_CHECK(why.field != NULL && why.target[0] != '\0');
            FUZZ_CHECK(bd_apiv_index(why.field->first) > (int)i);
        }
        json_t *copy = json_deep_copy(doc);
        bd_apiv_shape(copy, v);
        if (!bd_apiv_request_ok(copy, v, &why))
            FUZZ_CHECK(why.field->value != NULL);
        json_decref(copy);
    }
    json_decref(doc);
}

/* A body through the PATCH and exec readers and the command splitter. */
static void check_body(const uint8_t *body, size_t len)
{
    char *b = xmalloc(len);
    memcpy(b, body, len);
    json_t *tags = NULL;
    const char *target = NULL, *why = NULL;
    if (bd_patch_body_parse(b, len, &tags, &target, &why) == 0) {
        FUZZ_CHECK(tags == NULL || (json_is_object(tags) && json_object_size(tags) <= BD_TAGS_MAX));
        const char *k;
        json_t *v;
        json_object_foreach(tags, k, v)
            FUZZ_CHECK(json_is_string(v) && strlen(json_string_value(v)) <= 256);
        json_decref(tags);
    } else {
        FUZZ_CHECK(tags == NULL && target != NULL && why != NULL);
    }
    char *command = NULL;
    bd_terminal_t term;
    const char *ctarget = NULL;
    if (bd_exec_body_parse(b, len, &command, &term, &ctarget) == 0) {
        FUZZ_CHECK(command != NULL && command[0] != '\0' && strlen(command) <= 4096);
        FUZZ_CHECK(term.rows <= 1000 && term.cols <= 1000);
        FUZZ_CHECK(term.tty || (term.rows == 0 && term.cols == 0));
        /* A command the body took splits into 1 to BD_COMMAND_WORDS_MAX
         * words, each inside the command's own bytes. */
        const char *argv[BD_COMMAND_WORDS_MAX];
        size_t clen = strlen(command);
        int argc = bd_command_split(command, argv, BD_COMMAND_WORDS_MAX);
        FUZZ_CHECK(argc >= 1 && argc <= BD_COMMAND_WORDS_MAX);
        for (int i = 0; i < argc; i++)
            FUZZ_CHECK(argv[i] >= command && argv[i] + strlen(argv[i]) <= command + clen);
        free(command);
    } else {
        FUZZ_CHECK(command == NULL && ctarget != NULL);
    }
    free(b);
    check_versions(body, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The target ends at the first newline; headers up to an empty line;
     * the rest is the body. */
    const uint8_t *nl = memchr(data, '\n', size);
    size_t tlen = nl != NULL ? (size_t)(nl - data) : size;
    const uint8_t *hdr = nl != NULL ? nl + 1 : NULL;
    size_t rest = nl != NULL ? size - tlen - 1 : 0;
    const uint8_t *body = NULL;
    size_t hlen = rest, blen = 0;
    for (size_t i = 0; hdr != NULL && i + 1 < rest; i++)
        if (hdr[i] == '\n' && hdr[i + 1] == '\n') {
            hlen = i;
            body = hdr + i + 2;
            blen = rest - i - 2;
            break;
        }
    size = tlen;
    char *target = xmalloc(size + 1);
    memcpy(target, data, size);
    target[size] = '\0';
    if (hdr != NULL) {
        char *h = xmalloc(hlen + 1);
        memcpy(h, hdr, hlen);
        h[hlen] = '\0';
        check_headers(h, target);
        free(h);
    }
    if (body != NULL)
        check_body(body, blen);
    char *q = strchr(target, '?');
    if (q != NULL)
        *q++ = '\0';
    char *path = dup_exact(target);
    check_path(path);
    if (q != NULL) {
        char *query_s = dup_exact(q);
        check_query(query_s);
        free(query_s);
    }
    /* Query helpers also take a missing query. */
    FUZZ_CHECK(bd_query_get(NULL, "api-version", target, size + 1) == 0);
    free(path);
    free(target);
    return 0;
}
