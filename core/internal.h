/*
 * internal.h: declarations shared by libberth's own source files.
 *
 * Nothing here is published: every name is `berth__`-prefixed and hidden by
 * -fvisibility=hidden.  Tests may include it to reach internals; tools and
 * plugins must not (they use berth.h alone).
 */
#ifndef BERTH_INTERNAL_H
#define BERTH_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth.h"

#if defined(__GNUC__)
#define BERTH__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define BERTH__LIKELY(x) __builtin_expect(!!(x), 1)
#define BERTH__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define BERTH__PRINTF(f, a)
#define BERTH__LIKELY(x) (x)
#define BERTH__UNLIKELY(x) (x)
#endif

#define BERTH__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors (error.c) ---------------------------------------------------- */

/* Resets *err and records one violation as the error.  Returns `code` so a
 * caller can write `return berth__error_set(err, ...)`.  err may be NULL. */
int berth__error_set(berth_error_t *err, int code, const char *name,
                     const char *target, const char *fmt, ...) BERTH__PRINTF(5, 6);

/* Appends one violation to *err without resetting it; the first violation
 * recorded also becomes the top-level error and sets err->code.  Returns
 * `code`.  err may be NULL. */
int berth__error_add(berth_error_t *err, int code, const char *name,
                     const char *target, const char *fmt, ...) BERTH__PRINTF(5, 6);

/* Appends one BERTH_EINVAL violation to *err (berth__error_add) and returns
 * 1, so that a rule can add to a running count of violations. */
size_t berth__report(berth_error_t *err, const char *name, const char *target,
                     const char *fmt, ...) BERTH__PRINTF(4, 5);

/* Same as berth__error_add() with a va_list. */
int berth__error_addv(berth_error_t *err, int code, const char *name,
                      const char *target, const char *fmt, va_list ap);

/* ---- utilities (util.c) -------------------------------------------------- */

/* strdup that returns NULL for NULL. */
char *berth__strdup(const char *s);

/* FNV-1a over `len` bytes, continuing from `h` (start with BERTH__FNV_INIT). */
#define BERTH__FNV_INIT 0xcbf29ce484222325ull
uint64_t berth__fnv1a(uint64_t h, const void *data, size_t len);

/* splitmix64 finalizer: a bijective mix of 64 bits. */
uint64_t berth__mix64(uint64_t x);

/* True when s is 1..max bytes of [a-z0-9-] not starting or ending with '-'
 * (ACI's rule for container group and container names). */
bool berth__name_is_valid(const char *s, size_t max);

/* True when s is 1..BERTH_NAME_MAX bytes of letters, digits, '-', '_' and
 * '.' (the rule for host names, berth_host_t). */
bool berth__host_name_is_valid(const char *s);

/* A JSON path under construction, e.g. "properties.containers[0].name".
 * Pushes past the buffer are truncated, never overflow. */
typedef struct berth__path {
    char buf[BERTH_ERROR_TARGET_MAX];
    size_t len;
} berth__path_t;

/* Starts an empty path. */
void berth__path_init(berth__path_t *p);
/* Appends ".key" (or "key" at the start); returns the previous length for
 * berth__path_pop(). */
size_t berth__path_key(berth__path_t *p, const char *key);
/* Appends "[i]"; returns the previous length. */
size_t berth__path_index(berth__path_t *p, size_t i);
/* Truncates back to a length returned by a push. */
void berth__path_pop(berth__path_t *p, size_t len);

/* ---- JSON input (json.c) ------------------------------------------------- */

struct json_t;

/* Decodes `len` bytes of JSON into a new jansson value in *out (release with
 * json_decref()).  Refuses, with a clear error and BERTH_ETOOBIG, documents
 * over `max_bytes` or nested deeper than `max_depth`; with BERTH_EINVAL
 * invalid UTF-8, syntax errors (line and column in the message), duplicate
 * object keys, and a top level that is not an object or array.  The error
 * name is "InvalidRequestContent" for syntax and "RequestTooLarge" /
 * "RequestNestingTooDeep" for the limits. */
int berth__json_load(const char *json, size_t len, size_t max_bytes,
                     size_t max_depth, struct json_t **out, berth_error_t *err);

/* ---- engine configuration (config.c) ------------------------------------- */

/* The tables an engine validates and resolves against.  Plain data. */
typedef struct berth__config {
    berth_limits_t limits;
    berth_gpu_sku_t skus[BERTH_GPU_SKUS_MAX];
    size_t nskus;
    char zones[BERTH_ZONES_MAX][BERTH_NAME_MAX + 1];
    size_t nzones;
    berth_sandbox_policy_t sandbox; /* which requests need a sandbox host  */
} berth__config_t;

/* Fills *cfg with `limits` (ACI's defaults when NULL), the default SKU table
 * (K80, P100, V100) and no zones. */
void berth__config_init(berth__config_t *cfg, const berth_limits_t *limits);

/* ACI's default per-group limits. */
void berth__limits_default(berth_limits_t *limits);

/* Checks per-group limits (berth_engine_limits_set()'s rule: every member
 * above zero).  Returns 0, or BERTH_EINVAL with the member at fault (its
 * inventory name: cpu, memoryInGB, containers, volumes, ports) in err. */
int berth__limits_check(const berth_limits_t *limits, berth_error_t *err);

/* The id of GPU SKU `name`, or -1. */
int berth__config_sku_find(const berth__config_t *cfg, const char *name);

/* Adds or replaces a SKU (see berth_engine_gpu_sku_add()). */
int berth__config_sku_add(berth__config_t *cfg, const berth_gpu_sku_t *sku,
                          berth_error_t *err);

/* The offer of SKU `id` for `count` GPUs, or NULL when not offered. */
const berth_gpu_offer_t *berth__config_sku_offer(const berth__config_t *cfg,
                                                 uint32_t id, uint32_t count);

/* The id of zone `name`; registers it when `create` and it is new.
 * Returns the id, -1 when unknown and !create, BERTH_ELIMIT when full,
 * BERTH_EINVAL for an empty or over-long name. */
int berth__config_zone_id(berth__config_t *cfg, const char *name, bool create);

/* ---- model and accounting (model.c, validate.c, demand.c) ---------------- */

/* The engine-independent part of berth_engine_group_request(): validates `group`
 * against `cfg` and computes its request.  Zone names are resolved (and
 * registered) in cfg. */
int berth__group_request(berth__config_t *cfg, const berth_group_t *group,
                         berth_request_t *out, berth_error_t *err);

/* Windows OS build of an image reference, from its tag ("ltsc2019" -> 17763,
 * "ltsc2022" -> 20348, "ltsc2025" -> 26100, "1809" -> 17763,
 * "10.0.20348.1234" -> 20348); 0 when the tag names none. */
uint32_t berth__image_windows_build(const char *image);

/* The limits of an image reference (the OCI distribution grammar's). */
#define BERTH__IMAGE_NAME_MAX 255u   /* registry and repository together   */
#define BERTH__IMAGE_TAG_MAX 128u

/* Whether `ref` is an image reference by the OCI distribution grammar,
 * "[REGISTRY/]PATH[:TAG][@DIGEST]":
 *   REGISTRY  HOST[:PORT], HOST a domain name of components of letters,
 *             digits and inner '-', joined by '.', or "[IPv6]"; the first
 *             component is a registry only when it holds a '.' or a ':',
 *             is "localhost" or holds an upper-case letter (Docker's rule)
 *   PATH      components of [a-z0-9] runs joined by '.', '_', "__" or
 *             '-'s, separated by single '/'
 *   TAG       [A-Za-z0-9_] then [A-Za-z0-9_.-], BERTH__IMAGE_TAG_MAX at most
 *   DIGEST    ALGORITHM:HEX, sha256 (64 lower-case hex digits) or sha512
 *             (128); other algorithms are refused
 * with REGISTRY/PATH at most BERTH__IMAGE_NAME_MAX bytes.  True, or false
 * with the reason (naming the rule broken, quoting none of the reference)
 * in why[cap].  Pure: no allocation. */
bool berth__image_ref_is_valid(const char *ref, char *why, size_t cap);

/* ---- engine (engine.c) ---------------------------------------------------- */

/* The engine's tables (never NULL for a live engine). */
berth__config_t *berth__engine_config(berth_engine_t *engine);

/* Calls cb(key, data) for each group of `engine` whose key begins with the
 * `len` bytes of `prefix`, in slot order, and stops at the first nonzero
 * return of cb, which it returns (0 when every call returned 0).  cb must
 * not change the engine; `key` is valid for the call only.  Walks every
 * group slot once: O(groups). */
typedef int (*berth__engine_key_cb)(const char *key, void *data);
int berth__engine_group_keys(const berth_engine_t *engine, const char *prefix, size_t len,
                             berth__engine_key_cb cb, void *data);

#endif /* BERTH_INTERNAL_H */
