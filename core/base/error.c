/*
 * error.c: the berth_error_t out-parameter and its CloudError rendering.
 *
 * Every failing call in libberth reports through these helpers, so that a
 * caller sees the same shape everywhere: a negative BERTH_E* code, an ACI
 * error name, a message and the JSON path at fault, with every further
 * violation in `details`.  Nothing here allocates except berth_error_to_json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

#define BERTH__STR2(x) #x
#define BERTH__STR(x) BERTH__STR2(x)

const char *berth_version(void)
{
    return BERTH__STR(BERTH_VERSION_MAJOR) "." BERTH__STR(BERTH_VERSION_MINOR) "."
        BERTH__STR(BERTH_VERSION_PATCH);
}

const char *berth_strerror(int code)
{
    switch (code) {
    case BERTH_OK: return "success";
    case BERTH_EINVAL: return "invalid input";
    case BERTH_ENOMEM: return "out of memory";
    case BERTH_ENOENT: return "not found";
    case BERTH_EEXIST: return "already exists";
    case BERTH_ENOSPC: return "resource not available";
    case BERTH_ECONFLICT: return "update requires delete";
    case BERTH_EBUSY: return "host busy";
    case BERTH_ETOOBIG: return "input too large";
    case BERTH_ELIMIT: return "table full";
    case BERTH_EIO: return "input/output error";
    case BERTH_ESTALE: return "record changed";
    default: return "unknown error";
    }
}

void berth_error_clear(berth_error_t *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->name[0] = '\0';
    err->message[0] = '\0';
    err->target[0] = '\0';
    err->ndetails = 0;
}

void berth_free(void *p)
{
    free(p);
}

/* Copies src into a fixed buffer, truncating (never overflowing). */
static void copy_field(char *dst, size_t cap, const char *src)
{
    if (src == NULL)
        src = "";
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int berth__error_addv(berth_error_t *err, int code, const char *name,
                      const char *target, const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    berth_error_detail_t d;
    copy_field(d.name, sizeof d.name, name);
    copy_field(d.target, sizeof d.target, target);
    vsnprintf(d.message, sizeof d.message, fmt, ap);
    if (err->ndetails == 0) {
        err->code = code;
        memcpy(err->name, d.name, sizeof d.name);
        memcpy(err->message, d.message, sizeof d.message);
        memcpy(err->target, d.target, sizeof d.target);
    }
    if (err->ndetails < BERTH_ERROR_DETAILS_MAX)
        err->details[err->ndetails] = d;
    err->ndetails++;
    return code;
}

int berth__error_add(berth_error_t *err, int code, const char *name,
                     const char *target, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    berth__error_addv(err, code, name, target, fmt, ap);
    va_end(ap);
    return code;
}

size_t berth__report(berth_error_t *err, const char *name, const char *target,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    berth__error_addv(err, BERTH_EINVAL, name, target, fmt, ap);
    va_end(ap);
    return 1;
}

int berth__error_set(berth_error_t *err, int code, const char *name,
                     const char *target, const char *fmt, ...)
{
    berth_error_clear(err);
    va_list ap;
    va_start(ap, fmt);
    berth__error_addv(err, code, name, target, fmt, ap);
    va_end(ap);
    return code;
}

static json_t *detail_json(const char *name, const char *message, const char *target)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (json_object_set_new(o, "code", json_string(name)) != 0 ||
        json_object_set_new(o, "message", json_string(message)) != 0 ||
        (target[0] != '\0' && json_object_set_new(o, "target", json_string(target)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int berth_error_to_json(const berth_error_t *err, char **out)
{
    *out = NULL;
    berth_error_t none;
    if (err == NULL || err->code == 0) {
        berth__error_set(&none, BERTH_EINVAL, "InternalError", "", "%s",
                         "no error was recorded");
        err = &none;
    }
    json_t *body = detail_json(err->name, err->message, err->target);
    json_t *details = json_array();
    json_t *root = json_object();
    int rc = BERTH_ENOMEM;
    if (body == NULL || details == NULL || root == NULL)
        goto done;
    size_t n = err->ndetails < BERTH_ERROR_DETAILS_MAX ? err->ndetails : BERTH_ERROR_DETAILS_MAX;
    for (size_t i = 0; i < n; i++) {
        const berth_error_detail_t *d = &err->details[i];
        if (json_array_append_new(details, detail_json(d->name, d->message, d->target)) != 0)
            goto done;
    }
    if (n > 1 && json_object_set(body, "details", details) != 0)
        goto done;
    if (json_object_set(root, "error", body) != 0)
        goto done;
    *out = json_dumps(root, JSON_COMPACT);
    rc = *out != NULL ? 0 : BERTH_ENOMEM;
done:
    json_decref(body);
    json_decref(details);
    json_decref(root);
    return rc;
}

int berth_error_set(berth_error_t *err, int code, const char *name, const char *target,
                    const char *fmt, ...)
{
    berth_error_clear(err);
    va_list ap;
    va_start(ap, fmt);
    berth__error_addv(err, code, name != NULL ? name : "InternalError",
                      target != NULL ? target : "", fmt, ap);
    va_end(ap);
    return code;
}
