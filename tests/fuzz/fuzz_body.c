/*
 * fuzz_body.c: libFuzzer target for berthd's NGroup and standby-pool body
 * readers (tools/berthd/bodies.c): bd_ngroup_body_read(),
 * bd_ngroup_patch_merge(), bd_ngroup_profile_ref(), bd_pool_body_read()
 * and the target mappers.
 *
 * The input is one request body's bytes; all three readers get it.  Each
 * must accept it or refuse it cleanly: a refusal is BERTH_EINVAL (or
 * BERTH_ENOMEM) with an error name, a NUL-terminated target and an empty
 * result; an acceptance holds counts and percents within their ranges, at
 * most BERTH_NGROUP_ZONES_MAX zones (strings), and overlay, metadata and
 * merged texts that parse back to JSON objects of the promised shape.  A
 * pool's accepted template then goes through berth_group_parse() (the
 * library's own reader must take or refuse it cleanly).  The input's first line, as a library
 * target, goes through both mappers, whose results must stay
 * NUL-terminated within BERTH_ERROR_TARGET_MAX.  Any leak, sanitizer report
 * or broken invariant is a crash.
 */
#include <string.h>

#include "berth.h"
#include "bodies.h"
#include "fuzz.h"

/* A refusal: a code, a name, a target within its buffer. */
static void check_refusal(int rc, const berth_error_t *err)
{
    FUZZ_CHECK(rc == BERTH_EINVAL || rc == BERTH_ENOMEM);
    FUZZ_CHECK(err->code == rc);
    FUZZ_CHECK(err->name[0] != '\0');
    FUZZ_CHECK(memchr(err->target, '\0', sizeof err->target) != NULL);
    FUZZ_CHECK(memchr(err->message, '\0', sizeof err->message) != NULL);
}

/* `text` parses to a JSON object; returns it (json_decref()). */
static json_t *object_of(const char *text)
{
    FUZZ_CHECK(text != NULL);
    json_t *o = json_loads(text, 0, NULL);
    FUZZ_CHECK(json_is_object(o));
    return o;
}

/* The library's reader takes or refuses a template cleanly. */
static void template_parse(const char *text)
{
    berth_group_t *g = NULL;
    berth_error_t err;
    int rc = berth_group_parse(text, strlen(text), &g, &err);
    FUZZ_CHECK((rc == 0) == (g != NULL));
    berth_group_free(g);
}

static void ngroup_put(const char *data, size_t size)
{
    bd_ngroup_body_t b;
    berth_error_t err;
    int rc = bd_ngroup_body_read(data, size, "sub", "rg", &b, &err);
    if (rc != 0) {
        check_refusal(rc, &err);
        FUZZ_CHECK(b.doc == NULL && b.overlay_json == NULL && b.metadata_json == NULL);
        bd_ngroup_body_free(&b);
        return;
    }
    FUZZ_CHECK(b.desired >= 0 && b.desired <= BERTH_NGROUP_MEMBERS_MAX);
    FUZZ_CHECK(b.batch_percent >= 1 && b.batch_percent <= 100);
    FUZZ_CHECK(!b.has_unhealthy || b.unhealthy_percent <= 100);
    FUZZ_CHECK(b.pause_ms <= BD_NGROUP_PAUSE_MAX_MS);
    FUZZ_CHECK(b.fault_domains <= BERTH_NGROUP_MEMBERS_MAX);
    FUZZ_CHECK(b.nzones <= BERTH_NGROUP_ZONES_MAX);
    for (size_t i = 0; i < b.nzones; i++)
        FUZZ_CHECK(b.zones[i] != NULL);
    FUZZ_CHECK(b.profile_id != NULL || b.overlay_json == NULL);
    if (b.overlay_json != NULL) {
        json_t *o = object_of(b.overlay_json);
        FUZZ_CHECK(json_is_object(json_object_get(o, "properties")));
        json_decref(o);
    }
    json_t *m = object_of(b.metadata_json);
    FUZZ_CHECK(json_is_string(json_object_get(m, "location")));
    FUZZ_CHECK(json_is_object(json_object_get(m, "body")));
    json_decref(m);
    bd_ngroup_body_free(&b);
    FUZZ_CHECK(b.doc == NULL && b.metadata_json == NULL);
    char *id = NULL;
    uint64_t rev = 0;
    rc = bd_ngroup_profile_ref(data, size, false, &id, &rev, &err);
    FUZZ_CHECK(rc == 0 || rc == 1);
    FUZZ_CHECK((rc == 1) == (id != NULL));
    free(id);
}

static void ngroup_patch(const char *data, size_t size)
{
    char *merged = NULL;
    berth_error_t err;
    static const char stored[] =
        "{\"location\": \"westeurope\", \"properties\": {\"elasticProfile\": {\"desiredCount\": "
        "2}}}";
    int rc = bd_ngroup_patch_merge(stored, data, size, &merged, &err);
    if (rc != 0) {
        check_refusal(rc, &err);
        FUZZ_CHECK(merged == NULL);
    } else {
        json_t *o = object_of(merged);
        json_decref(o);
        free(merged);
    }
    char *id = NULL;
    uint64_t rev = 0;
    rc = bd_ngroup_profile_ref(data, size, true, &id, &rev, &err);
    if (rc < 0)
        check_refusal(rc, &err);
    else
        FUZZ_CHECK((rc == 1) == (id != NULL));
    free(id);
}

static void pool_put(const char *data, size_t size)
{
    bd_pool_body_t b;
    berth_error_t err;
    for (int patch = 0; patch < 2; patch++) {
        int rc = patch ? bd_pool_patch_read(data, size, &b, &err)
                       : bd_pool_body_read(data, size, &b, &err);
        if (rc != 0) {
            check_refusal(rc, &err);
            FUZZ_CHECK(b.resource_json == NULL && b.profile_id == NULL && b.size == 0);
            continue;
        }
        FUZZ_CHECK(b.size <= BERTH_POOL_SIZE_MAX);
        FUZZ_CHECK(patch || (b.has_size && b.profile_id != NULL));
        json_t *r = object_of(b.resource_json);
        FUZZ_CHECK(patch || json_object_get(r, "location") != NULL);
        json_decref(r);
        bd_pool_body_free(&b);
    }
}

/* The mappers keep every target NUL-terminated within its buffer. */
static void mappers(const char *data, size_t size)
{
    size_t n = 0;
    while (n < size && n < BERTH_ERROR_TARGET_MAX - 1 && data[n] != '\n' && data[n] != '\0')
        n++;
    for (int which = 0; which < 2; which++) {
        berth_error_t err;
        memset(&err, 0, sizeof err);
        memcpy(err.target, data, n);
        err.ndetails = 1;
        memcpy(err.details[0].target, data, n);
        if (which == 1)
            bd_pool_error_map(&err);
        else
            bd_ngroup_error_map(&err);
        FUZZ_CHECK(strnlen(err.target, sizeof err.target) < sizeof err.target);
        FUZZ_CHECK(strnlen(err.details[0].target, sizeof err.details[0].target) <
                   sizeof err.details[0].target);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    ngroup_put(text, size);
    ngroup_patch(text, size);
    pool_put(text, size);
    mappers(text, size);
    return 0;
}
