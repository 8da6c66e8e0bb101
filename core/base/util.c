/*
 * util.c: small helpers shared by libberth's sources: strings, hashing,
 * ACI name rules and JSON paths for error targets.  Pure functions; no I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

char *berth__strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

uint64_t berth__fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t berth__mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

bool berth__name_is_valid(const char *s, size_t max)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > max || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

bool berth__host_name_is_valid(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, BERTH_NAME_MAX + 1);
    if (n == 0 || n > BERTH_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

void berth__path_init(berth__path_t *p)
{
    p->buf[0] = '\0';
    p->len = 0;
}

/* Appends formatted text, truncating at the buffer's end. */
static void path_append(berth__path_t *p, const char *s)
{
    size_t cap = sizeof p->buf;
    size_t n = strlen(s);
    if (p->len + n >= cap)
        n = cap - 1 - p->len;
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

size_t berth__path_key(berth__path_t *p, const char *key)
{
    size_t old = p->len;
    if (p->len > 0)
        path_append(p, ".");
    path_append(p, key);
    return old;
}

size_t berth__path_index(berth__path_t *p, size_t i)
{
    size_t old = p->len;
    char tmp[32];
    snprintf(tmp, sizeof tmp, "[%zu]", i);
    path_append(p, tmp);
    return old;
}

void berth__path_pop(berth__path_t *p, size_t len)
{
    if (len <= p->len) {
        p->len = len;
        p->buf[len] = '\0';
    }
}
