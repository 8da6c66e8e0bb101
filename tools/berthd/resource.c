/*
 * resource.c: berthd's ARM path, header and body helpers (pure: no
 * Redis; berthd's records are records.c's).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>

#include "berth.h"
#include "resource.h"
#include "lib/random.h"

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* Contract: resource.h. */
bool bd_valid_group_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63 || name[0] == '-' || name[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_lower_alnum(name[i]) && name[i] != '-')
            return false;
    return true;
}

/* Contract: resource.h. */
bool bd_valid_subscription(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > BD_SUB_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* Contract: resource.h. */
bool bd_valid_resource_group(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > BD_RG_MAX || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && strchr("-_.()", s[i]) == NULL)
            return false;
    return true;
}

/* Contract: resource.h. */
bool bd_valid_location(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > BD_LOCATION_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != ' ')
            return false;
    return true;
}

/* Contract: resource.h. */
bool bd_valid_hex_id(const char *s)
{
    if (s == NULL || strlen(s) != BD_ID_HEX)
        return false;
    for (size_t i = 0; i < BD_ID_HEX; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Contract: resource.h. */
void bd_location_norm(const char *s, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; s != NULL && s[i] != '\0' && j + 1 < cap; i++)
        if (s[i] != ' ')
            out[j++] = (char)tolower((unsigned char)s[i]);
    if (cap > 0)
        out[j] = '\0';
}

/* Contract: resource.h. */
void bd_lower(const char *s, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; s != NULL && s[i] != '\0' && j + 1 < cap; i++)
        out[j++] = (char)tolower((unsigned char)s[i]);
    if (cap > 0)
        out[j] = '\0';
}

/* Contract: resource.h. */
void bd_resource_key(const char *sub, const char *rg, const char *name, char *out, size_t cap)
{
    char s[BD_SUB_MAX + 1], r[BD_RG_MAX + 1];
    bd_lower(sub, s, sizeof s);
    bd_lower(rg, r, sizeof r);
    snprintf(out, cap, "%s/%s/%s", s, r, name);
}

/* Contract: resource.h. */
const char *bd_key_child(const char *key, const char *prefix, size_t plen)
{
    if (strncmp(key, prefix, plen) != 0 || strchr(key + plen, '/') != NULL)
        return NULL;
    return key + plen;
}

/* Contract: resource.h. */
int bd_path_split(const char *path, char *buf, size_t cap, char **seg, int max)
{
    size_t n = strlen(path);
    if (n + 1 > cap || n == 0 || path[0] != '/')
        return -1;
    memcpy(buf, path + 1, n);       /* without the leading '/', with the NUL */
    if (n > 1 && buf[n - 2] == '/')
        buf[n - 2] = '\0';          /* one trailing '/' is ignored          */
    int count = 0;
    char *p = buf;
    for (int guard = 0; guard <= max; guard++) {
        if (count == max)
            return -1;
        char *slash = strchr(p, '/');
        if (slash != NULL)
            *slash = '\0';
        if (*p == '\0' || strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
            return -1;
        for (const char *q = p; *q != '\0'; q++)
            if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f || *q == '\\')
                return -1;
        seg[count++] = p;
        if (slash == NULL)
            return count;
        p = slash + 1;
    }
    return -1;
}

/* Contract: resource.h. */
int bd_random_id(char *out)
{
    return berth__random_hex(out, BD_ID_HEX / 2);
}

/* Contract: resource.h. */
bool bd_secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    /* Only the bytes are secret: a length that differs answers at once. */
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

/* ---- request headers and bodies ------------------------------------------------------- */

bool bd_header_value_ok(const char *v)
{
    size_t n = 0;
    for (const char *p = v; *p != '\0'; p++, n++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f || n >= 256)
            return false;
    return true;
}

const char *bd_bearer_token(const char *authorization)
{
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    return *t != '\0' ? t : NULL;
}

bool bd_path_subscription(const char *path, const char **sub, size_t *len)
{
    if (path == NULL || strncasecmp(path, "/subscriptions/", 15) != 0)
        return false;
    *sub = path + 15;
    *len = strcspn(*sub, "/");
    return true;
}

int bd_patch_body_parse(const char *body, size_t len, json_t **tags, const char **target,
                        const char **why)
{
    *tags = NULL;
    *target = "";
    json_t *b = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(b)) {
        json_decref(b);
        *why = "the request body is not a JSON object";
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        if (strcmp(k, "tags") != 0) {
            json_decref(b);
            *why = "only 'tags' can be updated with PATCH";
            return -1;
        }
    }
    json_t *t = json_object_get(b, "tags");
    *target = "tags";
    if (t != NULL && (!json_is_object(t) || json_object_size(t) > BD_TAGS_MAX)) {
        json_decref(b);
        *why = "'tags' must be an object of at most 50 strings";
        return -1;
    }
    json_object_foreach(t, k, v)
    {
        if (!json_is_string(v) || strlen(k) > 512 || strlen(json_string_value(v)) > 256) {
            json_decref(b);
            *why = "each tag must be a string of at most 256 characters";
            return -1;
        }
    }
    *target = "";
    if (t != NULL)
        *tags = json_incref(t);
    json_decref(b);
    return 0;
}

int bd_exec_body_parse(const char *body, size_t len, char **command, bd_terminal_t *term,
                       const char **target)
{
    *command = NULL;
    memset(term, 0, sizeof *term);
    *target = "command";
    json_t *b = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    bool ok = json_is_object(b) && json_is_string(json_object_get(b, "command"));
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        if (strcmp(k, "command") != 0 && strcmp(k, "terminalSize") != 0)
            ok = false;
    }
    json_t *ts = json_object_get(b, "terminalSize");
    if (ok && ts != NULL && !json_is_null(ts)) {
        /* rows and cols: whole numbers of 0 to 1000 (0: the runtime's
         * default); nothing else. */
        json_t *rows = json_object_get(ts, "rows"), *cols = json_object_get(ts, "cols");
        bool good = json_is_object(ts) && json_object_size(ts) == (size_t)(rows != NULL) +
                                                                    (cols != NULL);
        good = good && (rows == NULL || (json_is_integer(rows) &&
                                         json_integer_value(rows) >= 0 &&
                                         json_integer_value(rows) <= 1000));
        good = good && (cols == NULL || (json_is_integer(cols) &&
                                         json_integer_value(cols) >= 0 &&
                                         json_integer_value(cols) <= 1000));
        if (!good) {
            *target = "terminalSize";
            json_decref(b);
            return -1;
        }
        term->tty = true;
        term->rows = (uint16_t)json_integer_value(rows);
        term->cols = (uint16_t)json_integer_value(cols);
    }
    const char *c = ok ? json_string_value(json_object_get(b, "command")) : NULL;
    if (c == NULL || c[0] == '\0' || strlen(c) > 4096) {
        json_decref(b);
        return -1;
    }
    *command = strdup(c);
    json_decref(b);
    if (*command == NULL)
        return -1;
    /* Words the runtime can be given: quotes closed, not too many. */
    char *copy = strdup(*command);
    const char *argv[BD_COMMAND_WORDS_MAX];
    int n = copy != NULL ? bd_command_split(copy, argv, BD_COMMAND_WORDS_MAX) : -1;
    free(copy);
    if (n < 1) {
        free(*command);
        *command = NULL;
        return -1;
    }
    return 0;
}

int bd_command_split(char *words, const char **argv, size_t max)
{
    size_t argc = 0;
    char *r = words, *w = words;
    for (;;) {
        while (*r == ' ' || *r == '\t')
            r++;
        if (*r == '\0')
            return (int)argc;
        if (argc == max)
            return -1;
        argv[argc++] = w;
        while (*r != '\0' && *r != ' ' && *r != '\t') {
            if (*r == '\'') {
                char *end = strchr(r + 1, '\'');
                if (end == NULL)
                    return -1;
                size_t n = (size_t)(end - r - 1);
                memmove(w, r + 1, n);
                w += n;
                r = end + 1;
            } else if (*r == '"') {
                r++;
                while (*r != '"') {
                    if (*r == '\0')
                        return -1;
                    if (*r == '\\' && r[1] != '\0' && strchr("\"\\$`", r[1]) != NULL)
                        r++;
                    *w++ = *r++;
                }
                r++;
            } else if (*r == '\\') {
                if (r[1] == '\0')
                    return -1;
                *w++ = r[1];
                r += 2;
            } else {
                *w++ = *r++;
            }
        }
        /* The word ends here; the separator it overwrites was read. */
        bool more = *r != '\0';
        *w++ = '\0';
        if (more)
            r++;
        else
            return (int)argc;
    }
}

/* Contract: resource.h. */
int bd_redis_url_parse(const char *url, char *host, size_t cap, int *port)
{
    *port = 0;
    if (strncmp(url, "unix://", 7) == 0) {
        if (strlen(url + 7) == 0 || strlen(url + 7) >= cap)
            return -1;
        snprintf(host, cap, "%s", url + 7);
        return 1;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *h = url + 8;
    const char *at = strchr(h, '@');
    if (at != NULL)
        h = at + 1;                 /* credentials: not supported, ignored */
    const char *end;
    if (*h == '[') {
        end = strchr(h, ']');
        if (end == NULL || (size_t)(end - h - 1) >= cap)
            return -1;
        memcpy(host, h + 1, (size_t)(end - h - 1));
        host[end - h - 1] = '\0';
        end++;
    } else {
        end = h + strcspn(h, ":/");
        if (end == h || (size_t)(end - h) >= cap)
            return -1;
        memcpy(host, h, (size_t)(end - h));
        host[end - h] = '\0';
    }
    *port = *end == ':' ? atoi(end + 1) : 6379;
    return *port > 0 && *port < 65536 ? 0 : -1;
}
