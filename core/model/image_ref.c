/*
 * image_ref.c: what the model reads from an image reference: its normalized
 * hash for image locality (berth_image_hash()) and the Windows build its tag
 * names (berth__image_windows_build()).
 *
 * Pure functions of a string: they never allocate, never read an engine or
 * a store, and never fail louder than answering 0.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "internal.h"


#define IMAGE_REF_MAX 1024u

/* Appends `n` bytes of `src` to buf at *at (the caller sized buf). */
static void put(char *buf, size_t *at, const char *src, size_t n)
{
    memcpy(buf + *at, src, n);
    *at += n;
}

uint64_t berth_image_hash(const char *ref)
{
    if (ref == NULL)
        return 0;
    size_t len = strnlen(ref, IMAGE_REF_MAX + 1);
    if (len == 0 || len > IMAGE_REF_MAX)
        return 0;
    /* registry/repository[:tag][@digest], Docker's reading of a reference:
     * the first component is a registry when it has a '.' or a ':' or is
     * "localhost"; otherwise the image is Docker Hub's. */
    char buf[IMAGE_REF_MAX + 64];
    size_t at = 0;
    const char *rest = ref;
    const char *slash = memchr(ref, '/', len);
    bool hub = true;
    if (slash != NULL) {
        size_t first = (size_t)(slash - ref);
        bool registry = memchr(ref, '.', first) != NULL || memchr(ref, ':', first) != NULL ||
            (first == 9 && memcmp(ref, "localhost", 9) == 0);
        if (registry) {
            bool docker = (first == 9 && memcmp(ref, "docker.io", 9) == 0) ||
                (first == 15 && memcmp(ref, "index.docker.io", 15) == 0) ||
                (first == 20 && memcmp(ref, "registry-1.docker.io", 20) == 0);
            if (!docker) {
                hub = false;
                put(buf, &at, ref, first);
                put(buf, &at, "/", 1);
            }
            rest = slash + 1;
        }
    }
    size_t rlen = len - (size_t)(rest - ref);
    if (rlen == 0)
        return 0;
    if (hub) {
        put(buf, &at, "docker.io/", 10);
        if (memchr(rest, '/', rlen) == NULL)
            put(buf, &at, "library/", 8);
    }
    put(buf, &at, rest, rlen);
    /* no tag and no digest: ":latest" (a ':' before the last '/' is a
     * registry's port, already consumed above) */
    if (memchr(rest, '@', rlen) == NULL) {
        const char *name = rest;
        for (const char *p = rest; p < rest + rlen; p++)
            if (*p == '/')
                name = p + 1;
        if (memchr(name, ':', rlen - (size_t)(name - rest)) == NULL)
            put(buf, &at, ":latest", 7);
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < at; i++) {
        h ^= (unsigned char)buf[i];
        h *= 0x100000001b3ull;
    }
    h = berth__mix64(h);
    return h != 0 ? h : 1;
}

/* ------------------------------------------------------------------------ */
/* Windows builds                                                           */
/* ------------------------------------------------------------------------ */

static bool token_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* "10.0.<build>" or "10.0.<build>.<revision>": the build, else 0. */
static uint32_t version_build(const char *s, size_t n)
{
    if (n < 6 || strncmp(s, "10.0.", 5) != 0)
        return 0;
    uint64_t build = 0;
    size_t i = 5, digits = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
        build = build * 10 + (uint64_t)(s[i] - '0');
    if (digits == 0 || digits > 9)
        return 0;
    if (i < n) {
        if (s[i] != '.' || i + 1 == n)
            return 0;
        for (i++; i < n; i++)
            if (s[i] < '0' || s[i] > '9')
                return 0;
    }
    return (uint32_t)build;
}

/* The Windows build an image's tag names (see internal.h), 0 for none.
 * Reads the tag only: the path and any digest are ignored. */
uint32_t berth__image_windows_build(const char *image)
{
    if (image == NULL)
        return 0;
    /* The tag belongs to the last path component ("host:5000/a/b:tag");
     * a digest ("@sha256:...") is not a tag. */
    const char *name = strrchr(image, '/');
    name = name != NULL ? name + 1 : image;
    size_t end = strcspn(name, "@");
    const char *colon = memchr(name, ':', end);
    if (colon == NULL)
        return 0;
    const char *tag = colon + 1;
    const char *stop = name + end;
    /* Windows tags carry the build as one '-'-separated word:
     * "ltsc2022", "4.8-windowsservercore-ltsc2019", "10.0.20348.1234". */
    while (tag < stop) {
        const char *dash = memchr(tag, '-', (size_t)(stop - tag));
        size_t n = dash != NULL ? (size_t)(dash - tag) : (size_t)(stop - tag);
        if (token_is(tag, n, "ltsc2019") || token_is(tag, n, "1809"))
            return BERTH_WINDOWS_LTSC2019;
        if (token_is(tag, n, "ltsc2022"))
            return BERTH_WINDOWS_LTSC2022;
        if (token_is(tag, n, "ltsc2025"))
            return BERTH_WINDOWS_LTSC2025;
        uint32_t build = version_build(tag, n);
        if (build != 0)
            return build;
        tag += n + 1;
    }
    return 0;
}

