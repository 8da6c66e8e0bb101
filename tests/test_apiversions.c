/*
 * test_apiversions.c: berthd's api-version table and property gate
 * (tools/berthd/apiversions.c): the versions in order, unknown ones
 * refused, NGroups from their first version on; every gated property
 * refused under the version before its first (and under 2021-03-01) with a
 * target that carries the array indices, accepted from its first version
 * on; answers shaped per version.  Pure in-memory tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "apiversions.h"

/* A document holding only `path` ("[]" segments become two-element arrays
 * whose element 1 leads on), its leaf `value` (NULL: the string "x"). */
static json_t *doc_with(const char *path, const char *value)
{
    json_t *root = json_object();
    json_t *at = root;
    const char *p = path;
    for (;;) {
        size_t n = strcspn(p, ".");
        char name[64];
        bool array = n >= 2 && p[n - 2] == '[' && p[n - 1] == ']';
        size_t len = array ? n - 2 : n;
        assert_true(len < sizeof name);
        memcpy(name, p, len);
        name[len] = '\0';
        bool last = p[n] == '\0';
        if (last && !array) {
            json_object_set_new(at, name, json_string(value != NULL ? value : "x"));
            return root;
        }
        json_t *next = json_object();
        if (array) {
            json_t *arr = json_array();
            json_array_append_new(arr, json_object());
            json_array_append_new(arr, next);
            json_object_set_new(at, name, arr);
        } else {
            json_object_set_new(at, name, next);
        }
        at = next;
        p += n + 1;
    }
}

/* `path` with every "[]" made "[1]" (where doc_with() put the field). */
static void indexed(const char *path, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = path; *p != '\0' && o + 4 < cap; p++) {
        if (p[0] == '[' && p[1] == ']') {
            memcpy(out + o, "[1]", 3);
            o += 3;
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* Whether `path` (as doc_with() builds it) still leads somewhere in doc. */
static bool has_path(const json_t *doc, const char *path)
{
    const json_t *at = doc;
    const char *p = path;
    for (;;) {
        size_t n = strcspn(p, ".");
        char name[64];
        bool array = n >= 2 && p[n - 2] == '[' && p[n - 1] == ']';
        size_t len = array ? n - 2 : n;
        memcpy(name, p, len);
        name[len] = '\0';
        at = json_object_get(at, name);
        if (at == NULL)
            return false;
        if (array)
            at = json_array_get(at, 1);
        if (p[n] == '\0')
            return at != NULL;
        p += n + 1;
    }
}

static void test_versions_ordered(void **state)
{
    (void)state;
    size_t n = bd_apiv_count();
    assert_true(n >= 14);
    assert_string_equal(bd_apiv_name(0), "2021-03-01");
    assert_string_equal(bd_apiv_name(n - 1), "2025-09-01");
    assert_null(bd_apiv_name(n));
    char list[1024] = "";
    for (size_t i = 0; i < n; i++) {
        const char *v = bd_apiv_name(i);
        assert_int_equal(bd_apiv_index(v), (int)i);
        assert_true(bd_apiv_known(v));
        if (i > 0)
            assert_true(strcmp(bd_apiv_name(i - 1), v) < 0);   /* dates ascend */
        strcat(list, i > 0 ? ", " : "");
        strcat(list, v);
    }
    assert_string_equal(bd_apiv_list(), list);
    /* The 2024 previews between the stable versions are served. */
    const char *previews[] = {"2024-05-01-preview", "2024-09-01-preview", "2024-10-01-preview",
                              "2024-11-01-preview", "2023-05-15-preview", "2022-10-01-preview"};
    for (size_t i = 0; i < sizeof previews / sizeof previews[0]; i++)
        assert_true(bd_apiv_known(previews[i]));
}

static void test_unknown_versions(void **state)
{
    (void)state;
    const char *bad[] = {"",           "2019-12-01",         "2020-11-01",
                         "2022-04-01-preview", "2023-05-01 ", "2023-05-01-preview",
                         "2023-05-01-Preview", "2026-01-01", "2025-09-01x", "latest"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(bd_apiv_known(bad[i]));
        assert_int_equal(bd_apiv_index(bad[i]), -1);
        assert_false(bd_apiv_ngroups_ok(bad[i]));
    }
    assert_int_equal(bd_apiv_index(NULL), -1);
    /* An unknown version gates nothing and shapes nothing (the route refuses it). */
    json_t *doc = doc_with("properties.priority", "Spot");
    bd_apiv_refusal_t why;
    assert_true(bd_apiv_request_ok(doc, "1999-01-01", &why));
    bd_apiv_shape(doc, "1999-01-01");
    assert_true(has_path(doc, "properties.priority"));
    json_decref(doc);
}

static void test_ngroups_versions(void **state)
{
    (void)state;
    const char *first = bd_apiv_ngroups_first();
    assert_string_equal(first, "2024-09-01-preview");
    int fi = bd_apiv_index(first);
    assert_true(fi > 0);
    for (size_t i = 0; i < bd_apiv_count(); i++)
        assert_int_equal(bd_apiv_ngroups_ok(bd_apiv_name(i)), (int)i >= fi);
    assert_false(bd_apiv_ngroups_ok("2023-05-01"));
    assert_true(bd_apiv_ngroups_ok("2025-09-01"));
}

static void test_table_sane(void **state)
{
    (void)state;
    size_t n = bd_apiv_field_count();
    assert_true(n >= 20);
    assert_null(bd_apiv_field_at(n));
    int last = 0;
    for (size_t i = 0; i < n; i++) {
        const bd_apiv_field_t *f = bd_apiv_field_at(i);
        int fi = bd_apiv_index(f->first);
        if (fi <= 0)
            fail_msg("%s: first version '%s' is not served or is the oldest", f->path, f->first);
        assert_true(fi >= last);                    /* ordered by first version */
        last = fi;
        assert_true(strlen(f->path) < 128);
    }
}

/* The properties users meet most, each with the first version whose spec has it. */
static void test_known_firsts(void **state)
{
    (void)state;
    struct {
        const char *path, *value, *first;
    } want[] = {
        {"properties.priority", NULL, "2022-10-01-preview"},
        {"properties.sku", "Confidential", "2022-10-01-preview"},
        {"properties.confidentialComputeProperties", NULL, "2022-10-01-preview"},
        {"properties.containers[].properties.securityContext", NULL, "2023-05-01"},
        {"properties.containerGroupProfile", NULL, "2024-05-01-preview"},
        {"properties.standbyPoolProfile", NULL, "2024-05-01-preview"},
        {"properties.containers[].properties.configMap", NULL, "2024-05-01-preview"},
        {"properties.secretReferences", NULL, "2024-10-01-preview"},
        {"properties.identityAcls", NULL, "2024-11-01-preview"},
        {"properties.extensions", NULL, "2022-09-01"},
        {"properties.subnetIds", NULL, "2021-07-01"},
        {"zones", NULL, "2021-10-01"},
        {"properties.isCreatedFromStandbyPool", NULL, "2024-05-01-preview"},
    };
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        const bd_apiv_field_t *found = NULL;
        for (size_t i = 0; i < bd_apiv_field_count(); i++) {
            const bd_apiv_field_t *f = bd_apiv_field_at(i);
            if (strcmp(f->path, want[w].path) == 0 &&
                (f->value == NULL) == (want[w].value == NULL) &&
                (f->value == NULL || strcmp(f->value, want[w].value) == 0))
                found = f;
        }
        if (found == NULL)
            fail_msg("%s %s is not in the table", want[w].path, want[w].value ? want[w].value : "");
        assert_string_equal(found->first, want[w].first);
    }
}

/* Every gated request property: refused under 2021-03-01 and under the
 * version just before its first, with its indexed target; accepted under
 * its first version and every later one. */
static void test_every_field_gated(void **state)
{
    (void)state;
    for (size_t i = 0; i < bd_apiv_field_count(); i++) {
        const bd_apiv_field_t *f = bd_apiv_field_at(i);
        json_t *doc = doc_with(f->path, f->value);
        char target[BD_APIV_TARGET_MAX];
        indexed(f->path, target, sizeof target);
        int fi = bd_apiv_index(f->first);
        for (size_t v = 0; v < bd_apiv_count(); v++) {
            bd_apiv_refusal_t why;
            bool ok = bd_apiv_request_ok(doc, bd_apiv_name(v), &why);
            if (!f->request || (int)v >= fi) {
                if (!ok)
                    fail_msg("%s refused under %s (first %s)", target, bd_apiv_name(v), f->first);
                continue;
            }
            if (ok)
                fail_msg("%s%s%s accepted under %s (first %s)", target, f->value ? " = " : "",
                         f->value ? f->value : "", bd_apiv_name(v), f->first);
            assert_ptr_equal(why.field, f);
            assert_string_equal(why.target, target);
            assert_string_equal(why.field->first, f->first);
        }
        json_decref(doc);
    }
}

static void test_targets_and_details(void **state)
{
    (void)state;
    bd_apiv_refusal_t why;
    /* The first container is plain; the third one's second variable is at fault. */
    json_t *doc = json_loads(
        "{\"location\": \"westeurope\", \"properties\": {\"osType\": \"Linux\", \"containers\": ["
        "{\"name\": \"a\", \"properties\": {\"image\": \"busybox\"}},"
        "{\"name\": \"b\", \"properties\": {\"environmentVariables\": [{\"name\": \"X\"}]}},"
        "{\"name\": \"c\", \"properties\": {\"environmentVariables\": [{\"name\": \"Y\"},"
        " {\"name\": \"Z\", \"secureValueReference\": \"r\"}]}}]}}",
        0, NULL);
    assert_non_null(doc);
    assert_false(bd_apiv_request_ok(doc, "2024-05-01-preview", &why));
    assert_string_equal(why.target,
                        "properties.containers[2].properties.environmentVariables[1]."
                        "secureValueReference");
    assert_string_equal(why.field->first, "2024-10-01-preview");
    assert_true(bd_apiv_request_ok(doc, "2024-10-01-preview", &why));
    json_decref(doc);

    /* Members are matched without regard to case; the target is the spec's spelling. */
    doc = json_loads("{\"Properties\": {\"PRIORITY\": \"Spot\", \"Sku\": \"confidential\"}}", 0,
                     NULL);
    assert_false(bd_apiv_request_ok(doc, "2021-03-01", &why));
    assert_string_equal(why.target, "properties.priority");     /* table order: priority first */
    assert_false(bd_apiv_request_ok(doc, "2022-09-01", &why));
    assert_true(bd_apiv_request_ok(doc, "2022-10-01-preview", &why));
    json_decref(doc);
    doc = json_loads("{\"properties\": {\"sku\": \"confidential\"}}", 0, NULL);
    assert_false(bd_apiv_request_ok(doc, "2021-03-01", &why));
    assert_string_equal(why.target, "properties.sku");
    assert_string_equal(why.field->value, "Confidential");
    json_decref(doc);

    /* Values other than the gated ones, and nulls, pass. */
    doc = json_loads("{\"properties\": {\"sku\": \"Standard\", \"priority\": null, "
                     "\"containers\": [{\"properties\": {\"securityContext\": null}}]}}",
                     0, NULL);
    assert_true(bd_apiv_request_ok(doc, "2021-03-01", &why));
    json_decref(doc);

    /* A property of the wrong shape where an array was expected is the parser's to refuse. */
    doc = json_loads("{\"properties\": {\"containers\": {\"properties\": {\"configMap\": {}}}}}", 0,
                     NULL);
    assert_true(bd_apiv_request_ok(doc, "2021-03-01", &why));
    json_decref(doc);
    /* Not an object: the parser's. */
    doc = json_loads("[1, 2]", 0, NULL);
    assert_true(bd_apiv_request_ok(doc, "2021-03-01", &why));
    json_decref(doc);
    assert_true(bd_apiv_request_ok(NULL, "2021-03-01", &why));
}

/* An answer under a version keeps exactly the properties that version has. */
static void test_shape(void **state)
{
    (void)state;
    for (size_t v = 0; v < bd_apiv_count(); v++) {
        for (size_t i = 0; i < bd_apiv_field_count(); i++) {
            const bd_apiv_field_t *f = bd_apiv_field_at(i);
            json_t *doc = doc_with(f->path, f->value);
            json_object_set_new(doc, "location", json_string("westeurope"));
            bd_apiv_shape(doc, bd_apiv_name(v));
            bool kept = has_path(doc, f->path);
            if (f->value != NULL)
                assert_true(kept);              /* enum values are never shaped */
            else if (kept != ((int)v >= bd_apiv_index(f->first)))
                fail_msg("%s %s under %s (first %s)", f->path, kept ? "kept" : "dropped",
                         bd_apiv_name(v), f->first);
            assert_string_equal(json_string_value(json_object_get(doc, "location")),
                                "westeurope");
            json_decref(doc);
        }
    }
    /* A Spot group's answer under 2021-03-01: no priority, the rest intact. */
    json_t *body = json_loads(
        "{\"name\": \"g\", \"properties\": {\"priority\": \"Spot\", \"sku\": \"Standard\", "
        "\"isCreatedFromStandbyPool\": false, \"containers\": [{\"name\": \"a\", \"properties\": "
        "{\"image\": \"busybox\", \"securityContext\": {\"privileged\": false}}}]}}",
        0, NULL);
    bd_apiv_shape(body, "2021-03-01");
    json_t *props = json_object_get(body, "properties");
    assert_null(json_object_get(props, "priority"));
    assert_null(json_object_get(props, "isCreatedFromStandbyPool"));
    json_t *c0 = json_object_get(json_array_get(json_object_get(props, "containers"), 0),
                                 "properties");
    assert_null(json_object_get(c0, "securityContext"));
    assert_string_equal(json_string_value(json_object_get(c0, "image")), "busybox");
    assert_string_equal(json_string_value(json_object_get(props, "sku")), "Standard");
    json_decref(body);
    bd_apiv_shape(NULL, "2021-03-01");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions_ordered),  cmocka_unit_test(test_unknown_versions),
        cmocka_unit_test(test_ngroups_versions),  cmocka_unit_test(test_table_sane),
        cmocka_unit_test(test_known_firsts),      cmocka_unit_test(test_every_field_gated),
        cmocka_unit_test(test_targets_and_details), cmocka_unit_test(test_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
