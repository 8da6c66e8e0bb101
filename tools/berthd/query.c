/*
 * query.c: berthd's query parameters and URL encoding (query.h), decoded
 * and encoded by libevent's evhttp.
 *
 * It must never write past the caller's buffer, never let an encoded NUL
 * through (a value is a C string from here on), and never judge a
 * parameter by another one: a malformed escape fails only the parameter
 * that holds it, so each gets its own CloudError.  A parameter named twice
 * is found before any is read (bd_query_duplicate()), so that no route
 * ever picks one of two values.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "query.h"

/* Whether every '%' of v[0..len-1] starts an escape of two hex digits
 * (evhttp_uridecode keeps a malformed one as it is, silently). */
static int escapes_ok(const char *v, size_t len)
{
    for (const char *e = memchr(v, '%', len); e != NULL;
         e = memchr(e + 1, '%', (size_t)(v + len - e - 1)))
        if (e + 2 >= v + len || !isxdigit((unsigned char)e[1]) ||
            !isxdigit((unsigned char)e[2]))
            return 0;
    return 1;
}

/* Decodes the raw value v[0..len-1] into out[cap]: 1, or -1 when it is
 * malformed or does not fit. */
static int value_decode(const char *v, size_t len, char *out, size_t cap)
{
    if (!escapes_ok(v, len))
        return -1;
    char *raw = strndup(v, len);
    size_t n = 0;
    char *dec = raw != NULL ? evhttp_uridecode(raw, 1, &n) : NULL;
    free(raw);
    int rc = dec != NULL && strlen(dec) == n && n < cap ? 1 : -1;
    if (rc == 1)
        memcpy(out, dec, n + 1);
    free(dec);
    return rc;
}

/* Contract: query.h. */
int bd_query_get(const char *query, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    for (const char *p = query != NULL ? query : ""; *p != '\0';) {
        size_t plen = strcspn(p, "&");
        if (plen >= nlen && strncmp(p, name, nlen) == 0 && (plen == nlen || p[nlen] == '=')) {
            if (plen > nlen)
                return value_decode(p + nlen + 1, plen - nlen - 1, out, cap);
            if (cap > 0)
                out[0] = '\0';
            return 1;
        }
        p += plen;
        if (*p == '&')
            p++;
    }
    return 0;
}

/* A parameter's name: query[at..at+len). */
typedef struct query_name {
    const char *at;
    size_t len;
} query_name_t;

static int query_name_cmp(const void *a, const void *b)
{
    const query_name_t *x = a, *y = b;
    int c = memcmp(x->at, y->at, x->len < y->len ? x->len : y->len);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* Contract: query.h. */
int bd_query_duplicate(const char *query, char *name, size_t cap)
{
    if (cap > 0)
        name[0] = '\0';
    if (query == NULL || query[0] == '\0')
        return 0;
    size_t most = 1;
    for (const char *p = query; *p != '\0'; p++)
        most += *p == '&';
    /* A request's few parameters sort on the stack. */
    query_name_t few[16];
    query_name_t *names = most <= 16 ? few : malloc(most * sizeof *names);
    if (names == NULL)
        return -1;
    size_t n = 0;
    for (const char *p = query; *p != '\0' && n < most;) {
        size_t plen = strcspn(p, "&");
        if (plen > 0)
            names[n++] = (query_name_t){p, strcspn(p, "=&")};
        p += plen;
        if (*p == '&')
            p++;
    }
    qsort(names, n, sizeof *names, query_name_cmp);
    int found = 0;
    for (size_t i = 1; i < n && !found; i++)
        if (query_name_cmp(&names[i - 1], &names[i]) == 0) {
            found = 1;
            /* As sent, but printable: it goes into a message and a log. */
            size_t k = 0;
            for (; cap > 0 && k < names[i].len && k + 1 < cap; k++) {
                unsigned char c = (unsigned char)names[i].at[k];
                name[k] = c > 0x20 && c < 0x7f ? (char)c : '?';
            }
            if (cap > 0)
                name[k] = '\0';
        }
    if (names != few)
        free(names);
    return found;
}

/* Contract: query.h. */
int bd_urlencode(const char *s, char *out, size_t cap)
{
    char *enc = evhttp_uriencode(s, -1, 0);
    size_t n = enc != NULL ? strlen(enc) : 0;
    int rc = enc != NULL && n < cap ? 0 : -1;
    if (rc == 0)
        memcpy(out, enc, n + 1);
    free(enc);
    return rc;
}
