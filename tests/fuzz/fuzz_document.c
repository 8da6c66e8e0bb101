/*
 * fuzz_document.c: libFuzzer target for ACI container-group documents.
 *
 * The input is one document's bytes.  berth_group_parse() must accept or
 * refuse it cleanly (nothing returned on refusal); an accepted group goes
 * through berth_engine_group_validate() against a fresh default engine and through
 * berth_group_to_json(), whose output must parse again to a group that
 * serializes to the very same text (plain and pretty) and validates with the
 * same result.  The redacted form must serialize too.  Any leak, sanitizer
 * report or broken invariant is a crash.
 */
#include <string.h>

#include "berth.h"
#include "fuzz.h"

/* Validates `g` against a new default engine; returns the result code.  A
 * fresh engine per call: validation registers zone names, and an engine
 * kept across inputs would make a result depend on earlier inputs. */
static int validate(const berth_group_t *g)
{
    berth_engine_t *engine = NULL;
    berth_error_t err;
    FUZZ_CHECK(berth_engine_new(NULL, &engine, &err) == 0);
    int rc = berth_engine_group_validate(engine, g, &err);
    FUZZ_CHECK(rc == 0 || rc == BERTH_EINVAL || rc == BERTH_ELIMIT);
    FUZZ_CHECK(rc == 0 || err.code == rc);
    berth_engine_free(engine);
    return rc;
}

/* Serializes `g` with `flags`; the text must be NUL-terminated and its
 * length reported exactly. */
static char *to_json(const berth_group_t *g, unsigned flags, size_t *len)
{
    char *out = NULL;
    FUZZ_CHECK(berth_group_to_json(g, flags, &out, len) == 0);
    FUZZ_CHECK(out != NULL && strlen(out) == *len);
    return out;
}

/* Parses `text`, which must be accepted, and returns the group. */
static berth_group_t *reparse(const char *text, size_t len)
{
    berth_group_t *g = NULL;
    berth_error_t err;
    int rc = berth_group_parse(text, len, &g, &err);
    if (rc != 0)
        fprintf(stderr, "reparse refused (%s: %s at '%s'):\n%s\n", err.name, err.message,
                err.target, text);
    FUZZ_CHECK(rc == 0 && g != NULL);
    return g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    berth_group_t *g = (berth_group_t *)1;
    berth_error_t err;
    int rc = berth_group_parse((const char *)data, size, &g, &err);
    if (rc != 0) {
        FUZZ_CHECK(rc == BERTH_EINVAL || rc == BERTH_ETOOBIG || rc == BERTH_ENOMEM);
        FUZZ_CHECK(g == NULL && err.code == rc && err.ndetails > 0);
        return 0;
    }
    FUZZ_CHECK(g != NULL);
    int vrc = validate(g);

    size_t len1, len2, plen, rlen;
    char *json1 = to_json(g, 0, &len1);
    berth_group_t *g2 = reparse(json1, len1);
    char *json2 = to_json(g2, 0, &len2);
    if (len1 != len2 || memcmp(json1, json2, len1) != 0)
        fprintf(stderr, "round trip differs:\n%s\n%s\n", json1, json2);
    FUZZ_CHECK(len1 == len2 && memcmp(json1, json2, len1) == 0);
    FUZZ_CHECK(validate(g2) == vrc);

    /* Pretty printing changes only the layout. */
    char *pretty = to_json(g, BERTH_JSON_PRETTY, &plen);
    berth_group_t *g3 = reparse(pretty, plen);
    char *json3 = to_json(g3, 0, &len2);
    FUZZ_CHECK(len1 == len2 && memcmp(json1, json3, len1) == 0);

    /* Redaction drops secrets; it never adds bytes. */
    char *redacted = to_json(g, BERTH_JSON_REDACT, &rlen);
    FUZZ_CHECK(rlen <= len1);

    berth_free(redacted);
    berth_free(json3);
    berth_group_free(g3);
    berth_free(pretty);
    berth_free(json2);
    berth_group_free(g2);
    berth_free(json1);
    berth_group_free(g);
    return 0;
}
