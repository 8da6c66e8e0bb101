/*
 * test_error.c: the error plumbing every other module relies on:
 * berth_error_t and its CloudError rendering, berth_strerror(),
 * berth_version(), JSON paths (berth__path_*) and the one JSON door
 * (berth__json_load) with its size, depth, UTF-8, syntax and duplicate-key
 * checks.  Pure in-memory tests; no files.
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

#include "internal.h"

/* Renders err and parses the result back. */
static json_t *rendered(const berth_error_t *err)
{
    char *text = NULL;
    assert_int_equal(berth_error_to_json(err, &text), 0);
    assert_non_null(text);
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        fail_msg("not JSON: %s (%s)", text, jerr.text);
    berth_free(text);
    assert_int_equal(json_object_size(root), 1);
    return root;
}

static void test_to_json_single(void **state)
{
    (void)state;
    berth_error_t err;
    berth__error_set(&err, BERTH_EINVAL, "InvalidContainerName", "properties.containers[0].name",
                     "the name '%s' is invalid", "Web");
    assert_int_equal(err.code, BERTH_EINVAL);
    assert_int_equal(err.ndetails, 1);
    json_t *root = rendered(&err);
    json_t *body = json_object_get(root, "error");
    assert_true(json_is_object(body));
    assert_string_equal(json_string_value(json_object_get(body, "code")), "InvalidContainerName");
    assert_string_equal(json_string_value(json_object_get(body, "message")),
                        "the name 'Web' is invalid");
    assert_string_equal(json_string_value(json_object_get(body, "target")),
                        "properties.containers[0].name");
    /* One violation: no "details". */
    assert_null(json_object_get(body, "details"));
    assert_int_equal(json_object_size(body), 3);
    json_decref(root);

    /* No target: the member is left out rather than empty. */
    berth__error_set(&err, BERTH_ENOSPC, "ResourceNotAvailable", "", "no host");
    root = rendered(&err);
    body = json_object_get(root, "error");
    assert_null(json_object_get(body, "target"));
    assert_string_equal(json_string_value(json_object_get(body, "code")), "ResourceNotAvailable");
    json_decref(root);
}

static void test_to_json_details(void **state)
{
    (void)state;
    berth_error_t err;
    berth_error_clear(&err);
    berth__error_add(&err, BERTH_EINVAL, "A", "x", "first");
    berth__error_add(&err, BERTH_EEXIST, "B", "y[1]", "second");
    berth__error_add(&err, BERTH_EINVAL, "C", "", "third");
    /* The first violation is the top-level error, code included. */
    assert_int_equal(err.code, BERTH_EINVAL);
    assert_string_equal(err.name, "A");
    assert_int_equal(err.ndetails, 3);
    json_t *root = rendered(&err);
    json_t *body = json_object_get(root, "error");
    assert_string_equal(json_string_value(json_object_get(body, "code")), "A");
    json_t *details = json_object_get(body, "details");
    assert_true(json_is_array(details));
    assert_int_equal(json_array_size(details), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(details, 1), "code")),
                        "B");
    assert_string_equal(json_string_value(json_object_get(json_array_get(details, 1), "target")),
                        "y[1]");
    assert_null(json_object_get(json_array_get(details, 2), "target"));
    json_decref(root);

    /* Past BERTH_ERROR_DETAILS_MAX the count goes on; the stored list stops. */
    for (int i = 0; i < 20; i++)
        berth__error_add(&err, BERTH_EINVAL, "More", "z", "more %d", i);
    assert_int_equal(err.ndetails, 23);
    root = rendered(&err);
    details = json_object_get(json_object_get(root, "error"), "details");
    assert_int_equal(json_array_size(details), BERTH_ERROR_DETAILS_MAX);
    json_decref(root);
}

static void test_to_json_no_error(void **state)
{
    (void)state;
    berth_error_t err;
    berth_error_clear(&err);
    json_t *root = rendered(&err);
    assert_non_null(json_object_get(json_object_get(root, "error"), "code"));
    json_decref(root);
    root = rendered(NULL);
    assert_non_null(json_object_get(json_object_get(root, "error"), "message"));
    json_decref(root);
}

static void test_truncation(void **state)
{
    (void)state;
    berth_error_t err;
    char long_text[2000];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    berth__error_set(&err, BERTH_EINVAL, long_text, long_text, "%s", long_text);
    assert_int_equal(strlen(err.name), BERTH_ERROR_NAME_MAX - 1);
    assert_int_equal(strlen(err.message), BERTH_ERROR_MESSAGE_MAX - 1);
    assert_int_equal(strlen(err.target), BERTH_ERROR_TARGET_MAX - 1);
    assert_int_equal(strlen(err.details[0].target), BERTH_ERROR_TARGET_MAX - 1);
    /* NULL error pointers are accepted and the code still comes back. */
    assert_int_equal(berth__error_set(NULL, BERTH_ENOENT, "N", "", "m"), BERTH_ENOENT);
    assert_int_equal(berth__error_add(NULL, BERTH_EEXIST, "N", "", "m"), BERTH_EEXIST);
    berth_error_clear(NULL);
    berth_free(NULL);
}

static void test_strerror(void **state)
{
    (void)state;
    static const int codes[] = {BERTH_OK, BERTH_EINVAL, BERTH_ENOMEM, BERTH_ENOENT,
                                BERTH_EEXIST, BERTH_ENOSPC, BERTH_ECONFLICT, BERTH_EBUSY,
                                BERTH_ETOOBIG, BERTH_ELIMIT, BERTH_EIO, BERTH_ESTALE};
    const char *unknown = berth_strerror(12345);
    assert_non_null(unknown);
    for (size_t i = 0; i < BERTH__ARRAY_LEN(codes); i++) {
        const char *s = berth_strerror(codes[i]);
        assert_non_null(s);
        assert_true(s[0] != '\0');
        assert_string_not_equal(s, unknown);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, berth_strerror(codes[j]));
    }
    assert_string_equal(berth_strerror(BERTH_EINVAL), "invalid input");
    assert_string_equal(berth_strerror(-12), unknown);
    assert_string_equal(berth_strerror(1), unknown);
}

static void test_version(void **state)
{
    (void)state;
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", BERTH_VERSION_MAJOR, BERTH_VERSION_MINOR,
             BERTH_VERSION_PATCH);
    assert_string_equal(berth_version(), expected);
    assert_ptr_equal(berth_version(), berth_version());
}

static void test_path(void **state)
{
    (void)state;
    berth__path_t p;
    berth__path_init(&p);
    assert_string_equal(p.buf, "");
    size_t a = berth__path_key(&p, "properties");
    size_t b = berth__path_key(&p, "containers");
    size_t c = berth__path_index(&p, 12);
    berth__path_key(&p, "name");
    assert_string_equal(p.buf, "properties.containers[12].name");
    assert_int_equal(p.len, strlen(p.buf));
    berth__path_pop(&p, c);
    assert_string_equal(p.buf, "properties.containers");
    berth__path_pop(&p, b);
    assert_string_equal(p.buf, "properties");
    berth__path_pop(&p, a);
    assert_string_equal(p.buf, "");
    /* An index at the start and popping past the end are harmless. */
    berth__path_index(&p, 0);
    assert_string_equal(p.buf, "[0]");
    berth__path_pop(&p, 100);
    assert_string_equal(p.buf, "[0]");
}

static void test_path_truncation(void **state)
{
    (void)state;
    berth__path_t p;
    berth__path_init(&p);
    char key[100];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    size_t marks[10];
    for (int i = 0; i < 10; i++)
        marks[i] = berth__path_key(&p, key);
    assert_int_equal(p.len, sizeof p.buf - 1);
    assert_int_equal(strlen(p.buf), sizeof p.buf - 1);
    size_t m = berth__path_index(&p, 123456);
    assert_int_equal(m, sizeof p.buf - 1);
    assert_int_equal(strlen(p.buf), sizeof p.buf - 1);
    /* Popping back to a mark taken before the buffer filled still works. */
    berth__path_pop(&p, marks[1]);
    assert_int_equal(strlen(p.buf), 99);
    berth__path_pop(&p, marks[0]);
    assert_string_equal(p.buf, "");
}

/* berth__json_load on a NUL-terminated text. */
static int jload(const char *text, size_t max_bytes, size_t max_depth, berth_error_t *err)
{
    json_t *root = (json_t *)0x1;
    int rc = berth__json_load(text, strlen(text), max_bytes, max_depth, &root, err);
    if (rc == 0)
        assert_non_null(root);
    else
        assert_null(root);
    json_decref(root);
    return rc;
}

static void test_json_size(void **state)
{
    (void)state;
    berth_error_t err;
    const char *doc = "{\"a\": [1, 2, 3]}";
    assert_int_equal(jload(doc, strlen(doc), 8, &err), 0);
    assert_int_equal(jload(doc, strlen(doc) - 1, 8, &err), BERTH_ETOOBIG);
    assert_string_equal(err.name, "RequestTooLarge");
    json_t *root = NULL;
    assert_int_equal(berth__json_load(NULL, 0, 10, 10, &root, &err), BERTH_EINVAL);
    assert_null(root);
}

static void test_json_depth(void **state)
{
    (void)state;
    berth_error_t err;
    assert_int_equal(jload("[[[{\"a\":{}}]]]", 100, 5, &err), 0);
    assert_int_equal(jload("[[[{\"a\":{}}]]]", 100, 4, &err), BERTH_ETOOBIG);
    assert_string_equal(err.name, "RequestNestingTooDeep");
    /* Brackets inside strings, escaped quotes included, are not nesting. */
    assert_int_equal(jload("{\"a\":\"[[[[\\\"{{{{\"}", 100, 1, &err), 0);
    /* Depth counts the deepest point, not the total number of brackets. */
    assert_int_equal(jload("[[],[],[],[],[],[],[],[]]", 100, 2, &err), 0);
    /* A hostile depth is refused before the parser recurses. */
    size_t n = 100000;
    char *deep = malloc(2 * n + 1);
    assert_non_null(deep);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    assert_int_equal(jload(deep, 4 * n, 32, &err), BERTH_ETOOBIG);
    free(deep);
}

static void test_json_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        {"{\"a\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", 0}, /* e-acute, euro, emoji */
        {"{\"a\":\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"}", 0},             /* U+FFFF, U+10FFFF */
        {"{\"a\":\"\x80\"}", BERTH_EINVAL},                          /* lone continuation */
        {"{\"a\":\"\xc0\xaf\"}", BERTH_EINVAL},                      /* overlong '/' (2 bytes) */
        {"{\"a\":\"\xc1\xbf\"}", BERTH_EINVAL},                      /* overlong (2 bytes) */
        {"{\"a\":\"\xe0\x80\xaf\"}", BERTH_EINVAL},                  /* overlong '/' (3 bytes) */
        {"{\"a\":\"\xf0\x80\x80\xaf\"}", BERTH_EINVAL},              /* overlong '/' (4 bytes) */
        {"{\"a\":\"\xed\xa0\x80\"}", BERTH_EINVAL},                  /* U+D800, a surrogate */
        {"{\"a\":\"\xed\xbf\xbf\"}", BERTH_EINVAL},                  /* U+DFFF */
        {"{\"a\":\"\xf4\x90\x80\x80\"}", BERTH_EINVAL},              /* above U+10FFFF */
        {"{\"a\":\"\xf5\x80\x80\x80\"}", BERTH_EINVAL},
        {"{\"a\":\"\xff\"}", BERTH_EINVAL},
        {"{\"a\":\"\xe2\x82\"}", BERTH_EINVAL},                      /* cut short */
        {"{\"a\":\"x\"}\xc3", BERTH_EINVAL},                         /* cut at the very end */
    };
    for (size_t i = 0; i < BERTH__ARRAY_LEN(cases); i++) {
        berth_error_t err;
        int rc = jload(cases[i].text, 1000, 8, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu: expected %d, got %d (%s)", i, cases[i].rc, rc, err.message);
        if (rc != 0) {
            assert_string_equal(err.name, "InvalidRequestContent");
            assert_non_null(strstr(err.message, "UTF-8"));
        }
    }
}

static void test_json_syntax(void **state)
{
    (void)state;
    berth_error_t err;
    assert_int_equal(jload("{\n  \"a\": 1,\n  \"b\": }\n", 1000, 8, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "InvalidRequestContent");
    assert_string_equal(err.target, "");
    assert_non_null(strstr(err.message, "line 3"));
    assert_non_null(strstr(err.message, "column"));
    assert_int_equal(jload("", 1000, 8, &err), BERTH_EINVAL);
    assert_int_equal(jload("{} {}", 1000, 8, &err), BERTH_EINVAL);
    /* Duplicate keys are refused, at any depth. */
    assert_int_equal(jload("{\"a\": 1, \"a\": 2}", 1000, 8, &err), BERTH_EINVAL);
    assert_non_null(strstr(err.message, "a"));
    assert_int_equal(jload("[{\"x\": {\"b\": 1, \"b\": 1}}]", 1000, 8, &err), BERTH_EINVAL);
    /* Only an object or an array is a document. */
    assert_int_equal(jload("42", 1000, 8, &err), BERTH_EINVAL);
    assert_int_equal(jload("\"text\"", 1000, 8, &err), BERTH_EINVAL);
    assert_int_equal(jload("null", 1000, 8, &err), BERTH_EINVAL);
    assert_int_equal(jload("[]", 1000, 8, &err), 0);
    assert_int_equal(jload(" {\"a\": [null, true, 1.5, \"\\u00e9\"]} ", 1000, 8, &err), 0);
}

/* The document need not be NUL-terminated: only `len` bytes are read. */
static void test_json_length(void **state)
{
    (void)state;
    berth_error_t err;
    const char buf[] = {'{', '}', 'x', 'x'};
    json_t *root = NULL;
    assert_int_equal(berth__json_load(buf, 2, 100, 8, &root, &err), 0);
    assert_true(json_is_object(root));
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_json_single),
        cmocka_unit_test(test_to_json_details),
        cmocka_unit_test(test_to_json_no_error),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_path_truncation),
        cmocka_unit_test(test_json_size),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_json_utf8),
        cmocka_unit_test(test_json_syntax),
        cmocka_unit_test(test_json_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
