/*
 * image_ref.c: what the model reads from an image reference: whether it
 * follows the OCI distribution grammar (berth__image_ref_is_valid()), its
 * normalized hash for image locality (berth_image_hash()) and the Windows
 * build its tag names (berth__image_windows_build()).
 *
 * Pure functions of a string: they never allocate, never read an engine or
 * a store, never quote a reference into a message (it may hold anything),
 * and never fail louder than answering false or 0.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
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

/* ------------------------------------------------------------------------ */
/* The grammar (contract: internal.h)                                       */
/* ------------------------------------------------------------------------ */

static bool why_set(char *why, size_t cap, const char *text)
{
    if (cap > 0)
        snprintf(why, cap, "%s", text);
    return false;
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_hex_lower(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* One path component: [a-z0-9]+ runs joined by '.', '_', "__" or '-'s. */
static bool path_component_ok(const char *s, size_t n)
{
    if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 1; i < n;) {
        if (is_lower_alnum(s[i])) {
            i++;
            continue;
        }
        size_t run = 0;
        if (s[i] == '.')
            run = 1;
        else if (s[i] == '_')
            run = i + 1 < n && s[i + 1] == '_' ? 2 : 1;
        else
            while (i + run < n && s[i + run] == '-')
                run++;
        if (run == 0)
            return false;
        i += run;
        /* A separator stands between two runs (the last byte is one). */
        if (!is_lower_alnum(s[i]))
            return false;
    }
    return true;
}

/* HOST[:PORT]: a domain name, or "[IPv6]"; PORT 1..65535. */
static bool registry_ok(const char *s, size_t n)
{
    size_t host = n;
    const char *colon = NULL;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL || close == s + 1)
            return false;
        for (const char *p = s + 1; p < close; p++)
            if (!is_hex_lower(*p) && !(*p >= 'A' && *p <= 'F') && *p != ':')
                return false;
        host = (size_t)(close - s) + 1;
        if (host < n && s[host] != ':')
            return false;
        colon = host < n ? s + host : NULL;
    } else {
        colon = memchr(s, ':', n);
        host = colon != NULL ? (size_t)(colon - s) : n;
        if (host == 0)
            return false;
        /* Components of letters, digits and inner '-', joined by '.'. */
        for (size_t i = 0, start = 0; i <= host; i++) {
            if (i < host && s[i] != '.') {
                if (!is_alnum(s[i]) && s[i] != '-')
                    return false;
                continue;
            }
            if (i == start || s[start] == '-' || s[i - 1] == '-')
                return false;
            start = i + 1;
        }
    }
    if (colon == NULL)
        return true;
    size_t digits = n - (size_t)(colon - s) - 1;
    if (digits == 0 || digits > 5)
        return false;
    unsigned port = 0;
    for (size_t i = 1; i <= digits; i++) {
        if (colon[i] < '0' || colon[i] > '9')
            return false;
        port = port * 10 + (unsigned)(colon[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

static bool digest_ok(const char *s, size_t n, char *why, size_t cap)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL)
        return why_set(why, cap, "the digest after '@' must be ALGORITHM:HEX");
    size_t alen = (size_t)(colon - s), hlen = n - alen - 1;
    size_t want = alen == 6 && memcmp(s, "sha256", 6) == 0   ? 64
                  : alen == 6 && memcmp(s, "sha512", 6) == 0 ? 128
                                                             : 0;
    if (want == 0)
        return why_set(why, cap, "the digest's algorithm must be sha256 or sha512");
    if (hlen != want)
        return why_set(why, cap, want == 64 ? "a sha256 digest has 64 hex digits"
                                            : "a sha512 digest has 128 hex digits");
    for (size_t i = 0; i < hlen; i++)
        if (!is_hex_lower(colon[1 + i]))
            return why_set(why, cap, "a digest's hex digits must be 0-9 or a-f");
    return true;
}

bool berth__image_ref_is_valid(const char *ref, char *why, size_t cap)
{
    if (ref == NULL || ref[0] == '\0')
        return why_set(why, cap, "the image reference is empty");
    size_t len = strnlen(ref, IMAGE_REF_MAX + 1);
    if (len > IMAGE_REF_MAX)
        return why_set(why, cap, "the image reference is longer than 1024 bytes");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)ref[i] <= 0x20 || (unsigned char)ref[i] >= 0x7f)
            return why_set(why, cap, "an image reference holds no space, control character "
                                     "or non-ASCII byte");
    /* [name][:tag][@digest] */
    const char *at = memchr(ref, '@', len);
    size_t end = at != NULL ? (size_t)(at - ref) : len;
    if (at != NULL && !digest_ok(at + 1, len - end - 1, why, cap))
        return false;
    const char *last = ref;
    for (const char *p = ref; p < ref + end; p++)
        if (*p == '/')
            last = p + 1;
    const char *colon = memchr(last, ':', end - (size_t)(last - ref));
    size_t name_len = colon != NULL ? (size_t)(colon - ref) : end;
    if (colon != NULL) {
        size_t tlen = end - name_len - 1;
        if (tlen == 0)
            return why_set(why, cap, "the tag after ':' is empty");
        if (tlen > BERTH__IMAGE_TAG_MAX)
            return why_set(why, cap, "the tag is longer than 128 characters");
        for (size_t i = 0; i < tlen; i++) {
            char c = colon[1 + i];
            if (!is_alnum(c) && c != '_' && (i == 0 || (c != '.' && c != '-')))
                return why_set(why, cap, "a tag is [A-Za-z0-9_] then [A-Za-z0-9_.-]");
        }
    }
    if (name_len == 0)
        return why_set(why, cap, "the image reference names no repository");
    if (name_len > BERTH__IMAGE_NAME_MAX)
        return why_set(why, cap, "the repository name (with its registry) is longer than 255 "
                                 "characters");
    /* REGISTRY/ when the first component holds '.' or ':', is "localhost",
     * or holds an upper-case letter. */
    const char *path = ref;
    const char *slash = memchr(ref, '/', name_len);
    if (slash != NULL) {
        size_t first = (size_t)(slash - ref);
        bool registry = memchr(ref, '.', first) != NULL || memchr(ref, ':', first) != NULL ||
                        (first == 9 && memcmp(ref, "localhost", 9) == 0) ||
                        (ref[0] == '[');
        for (size_t i = 0; !registry && i < first; i++)
            registry = ref[i] >= 'A' && ref[i] <= 'Z';
        if (registry) {
            if (!registry_ok(ref, first))
                return why_set(why, cap, "the registry must be HOST[:PORT], HOST a domain name "
                                         "or [IPv6 address], PORT 1-65535");
            path = slash + 1;
        }
    }
    for (const char *c = path, *stop = ref + name_len; c <= stop;) {
        const char *sep = memchr(c, '/', (size_t)(stop - c));
        size_t n = sep != NULL ? (size_t)(sep - c) : (size_t)(stop - c);
        if (!path_component_ok(c, n))
            return why_set(why, cap, "each repository path component is lower-case letters "
                                     "and digits, joined by '.', '_', '__' or '-', between "
                                     "single '/'");
        if (sep == NULL)
            break;
        c = sep + 1;
    }
    return true;
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

