/*
 * test_seal.c: lib/seal.c, a document's secrets sealed at rest: the key
 * file and its refusals, seal and unseal of one value (round trip,
 * determinism, tampering, unknown key ids, rotation) and of a whole group
 * (every kind of secret sealed, nothing else changed, the sealed document
 * still valid, the clear secrets found by path) and their redaction.
 *
 * It writes key files only under a directory of its own in $TMPDIR and
 * removes them.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>

#include "berth.h"
#include "lib/base64.h"
#include "lib/seal.h"

#define KEY_A "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
#define KEY_B "k2 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"
/* k1 again, with other bits: a key id reused for another key. */
#define KEY_A2 "k1 0f112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

static char dir[] = "/tmp/test_seal.XXXXXX";
static int files;

/* Writes `text` to a new file of mode `mode` in the test's directory;
 * returns its path (static, valid until the next call). */
static const char *key_file(const char *text, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/key%d", dir, files++);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static berth__keyring_t *ring_of(const char *text)
{
    berth__keyring_t *r = NULL;
    berth_error_t err;
    int rc = berth__keyring_load(key_file(text, 0600), &r, &err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err.message);
    assert_int_equal(rc, 0);
    assert_non_null(r);
    return r;
}

static char *sealed_of(const berth__keyring_t *r, const char *clear)
{
    char *s = NULL;
    assert_int_equal(berth__seal(r, clear, &s), 0);
    assert_non_null(s);
    return s;
}

static void expect_unseal_fails(const berth__keyring_t *r, const char *sealed, const char *name)
{
    char *out = (char *)"untouched";
    berth_error_t err;
    berth_error_clear(&err);
    assert_int_equal(berth__unseal(r, sealed, &out, &err), BERTH_EINVAL);
    assert_null(out);
    assert_string_equal(err.name, name);
}

static void test_round_trip(void **state)
{
    (void)state;
    berth__keyring_t *r = ring_of("# the cell's keys\n\n" KEY_A);
    assert_string_equal(berth__keyring_sealing_id(r), "k1");
    static const char *const values[] = {"s3cret", "", "a longer value: \"quoted\" \\ and ü",
                                         "berth/sealed/v1/looks-sealed-but-is-not"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char *s = sealed_of(r, values[i]);
        assert_true(berth__sealed_is(s));
        /* The whole sealed text is canonical base64: a secret volume's file
         * stays valid once sealed. */
        assert_true(berth__base64_is_valid(s));
        if (values[i][0] != '\0')
            assert_null(strstr(s + strlen(BERTH__SEAL_PREFIX), values[i]));
        /* Deterministic: the same value seals to the same text. */
        char *again = sealed_of(r, values[i]);
        assert_string_equal(s, again);
        free(again);
        char *clear = NULL;
        berth_error_t err;
        assert_int_equal(berth__unseal(r, s, &clear, &err), 0);
        assert_string_equal(clear, values[i]);
        free(clear);
        free(s);
    }
    /* Distinct values seal to distinct texts. */
    char *x = sealed_of(r, "value-x"), *y = sealed_of(r, "value-y");
    assert_string_not_equal(x, y);
    free(x);
    free(y);
    expect_unseal_fails(r, "not sealed at all", "SecretNotSealed");
    expect_unseal_fails(r, BERTH__SEAL_PREFIX "%%%%", "SecretMalformed");
    expect_unseal_fails(r, BERTH__SEAL_PREFIX "AAAA", "SecretMalformed");
    berth__keyring_free(r);
    berth__keyring_free(NULL);
}

static void test_tamper(void **state)
{
    (void)state;
    berth__keyring_t *r = ring_of(KEY_A);
    char *s = sealed_of(r, "the secret that must not change");
    unsigned char *blob = NULL;
    size_t n = 0;
    assert_int_equal(berth__base64_decode(s + strlen(BERTH__SEAL_PREFIX), &blob, &n), 0);
    /* Every byte after the key id (nonce, ciphertext, tag), each bit
     * flipped in turn: refused, never unsealed to another value. */
    size_t from = 1 + blob[0];
    for (size_t i = from; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            blob[i] ^= (unsigned char)(1u << bit);
            char *b64 = berth__base64_encode(blob, n, BERTH__BASE64_STANDARD);
            char *t = NULL;
            assert_true(asprintf(&t, "%s%s", BERTH__SEAL_PREFIX, b64) > 0);
            expect_unseal_fails(r, t, "SecretTampered");
            free(t);
            free(b64);
            blob[i] ^= (unsigned char)(1u << bit);
        }
    }
    /* A truncated value: its tag is cut. */
    char *t = NULL;
    char *b64 = berth__base64_encode(blob, n - 3, BERTH__BASE64_STANDARD);
    assert_true(asprintf(&t, "%s%s", BERTH__SEAL_PREFIX, b64) > 0);
    expect_unseal_fails(r, t, "SecretTampered");
    free(t);
    free(b64);
    free(blob);
    free(s);
    berth__keyring_free(r);
}

static void test_unknown_key_and_rotation(void **state)
{
    (void)state;
    berth__keyring_t *old = ring_of(KEY_A);
    berth__keyring_t *other = ring_of(KEY_B);
    berth__keyring_t *rotated = ring_of(KEY_B KEY_A);
    berth__keyring_t *reused = ring_of(KEY_A2);
    char *by_old = sealed_of(old, "sealed before the rotation");
    /* A ring without the key id refuses, naming the id. */
    char *out = NULL;
    berth_error_t err;
    assert_int_equal(berth__unseal(other, by_old, &out, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "SecretKeyUnknown");
    assert_non_null(strstr(err.message, "'k1'"));
    /* The same id for another key: authentication fails. */
    expect_unseal_fails(reused, by_old, "SecretTampered");
    /* After the rotation the old key still unseals ... */
    assert_int_equal(berth__unseal(rotated, by_old, &out, &err), 0);
    assert_string_equal(out, "sealed before the rotation");
    free(out);
    /* ... and the new one seals. */
    assert_string_equal(berth__keyring_sealing_id(rotated), "k2");
    char *by_new = sealed_of(rotated, "sealed after the rotation");
    assert_string_not_equal(by_new, by_old);
    assert_int_equal(berth__unseal(other, by_new, &out, &err), 0);
    assert_string_equal(out, "sealed after the rotation");
    free(out);
    expect_unseal_fails(old, by_new, "SecretKeyUnknown");
    free(by_new);
    free(by_old);
    berth__keyring_free(old);
    berth__keyring_free(other);
    berth__keyring_free(rotated);
    berth__keyring_free(reused);
}

/* The key file `text` of mode `mode` is refused with `code`; the message
 * holds `needle` and never the key's digits. */
static void expect_bad_file(const char *text, mode_t mode, int code, const char *needle)
{
    berth__keyring_t *r = (berth__keyring_t *)&r;
    berth_error_t err;
    const char *path = key_file(text, mode);
    assert_int_equal(berth__keyring_load(path, &r, &err), code);
    assert_null(r);
    if (strstr(err.message, needle) == NULL)
        fprintf(stderr, "'%s' lacks '%s'\n", err.message, needle);
    assert_non_null(strstr(err.message, needle));
    assert_null(strstr(err.message, "445566778899"));
}

static void test_bad_key_files(void **state)
{
    (void)state;
    char want[160];
    snprintf(want, sizeof want, "%s/key%d:2:", dir, files);
    expect_bad_file("# short\nk1 00112233445566778899aabbccddeeff00112233445566778899aabbccddee\n",
                    0600, BERTH_EINVAL, want);
    snprintf(want, sizeof want, "%s/key%d:1:", dir, files);
    expect_bad_file("k1 0011223344556677889zaabbccddeeff00112233445566778899aabbccddeeff\n", 0600,
                    BERTH_EINVAL, want);
    expect_bad_file("k1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n", 0600, BERTH_EINVAL,
                    "not 256 bits");
    expect_bad_file(KEY_A, 0640, BERTH_EINVAL, "mode 0640");
    expect_bad_file(KEY_A, 0604, BERTH_EINVAL, "chmod 600");
    snprintf(want, sizeof want, "%s/key%d:2:", dir, files);
    expect_bad_file(KEY_A KEY_A2, 0600, BERTH_EINVAL, want);
    expect_bad_file(KEY_A KEY_A2, 0600, BERTH_EINVAL, "given twice");
    expect_bad_file("k/1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
                    0600, BERTH_EINVAL, "key id");
    expect_bad_file("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff x\n",
                    0600, BERTH_EINVAL, "nothing after the key");
    expect_bad_file("k1\n", 0600, BERTH_EINVAL, ":1:");
    expect_bad_file("# no key here\n\n", 0600, BERTH_EINVAL, "holds no key");
    expect_bad_file("", 0600, BERTH_EINVAL, "holds no key");
    berth__keyring_t *r = (berth__keyring_t *)&r;
    berth_error_t err;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/absent", dir);
    assert_int_equal(berth__keyring_load(missing, &r, &err), BERTH_EIO);
    assert_null(r);
    assert_int_equal(berth__keyring_load(dir, &r, &err), BERTH_EINVAL);
    assert_non_null(strstr(err.message, "not a regular file"));
    /* Base64 keys, CRLF line ends and blanks around are fine. */
    r = ring_of("  k.1_- ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=  \r\n");
    assert_string_equal(berth__keyring_sealing_id(r), "k.1_-");
    berth__keyring_t *hex = ring_of(KEY_A);
    char *s = sealed_of(hex, "same key, two spellings");
    /* The base64 key above is KEY_A's bytes: only the id differs. */
    expect_unseal_fails(r, s, "SecretKeyUnknown");
    free(s);
    berth__keyring_free(hex);
    berth__keyring_free(r);
}

/* ---- whole groups ---------------------------------------------------------- */

static const char group_doc[] =
    "{\"location\": \"westus\", \"properties\": {\"osType\": \"Linux\", "
    "\"initContainers\": [{\"name\": \"init\", \"properties\": {\"image\": \"busybox\", "
    "\"environmentVariables\": [{\"name\": \"I\", \"secureValue\": \"SECRET-init\"}]}}], "
    "\"containers\": [{\"name\": \"app\", \"properties\": {\"image\": \"reg.example/app:1\", "
    "\"environmentVariables\": [{\"name\": \"PLAIN\", \"value\": \"visible\"}, "
    "{\"name\": \"K\", \"secureValue\": \"SECRET-env\"}], "
    "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1.5}}, "
    "\"volumeMounts\": [{\"name\": \"sec\", \"mountPath\": \"/s\"}, "
    "{\"name\": \"share\", \"mountPath\": \"/f\"}]}}], "
    "\"volumes\": [{\"name\": \"sec\", \"secret\": {\"f\": \"U0VDUkVULXZvbA==\"}}, "
    "{\"name\": \"share\", \"azureFile\": {\"shareName\": \"s\", \"storageAccountName\": "
    "\"acct\", \"storageAccountKey\": \"SECRET-storage\"}}], "
    "\"imageRegistryCredentials\": [{\"server\": \"reg.example\", \"username\": \"u\", "
    "\"password\": \"SECRET-registry\"}], "
    "\"diagnostics\": {\"logAnalytics\": {\"workspaceId\": \"w\", \"workspaceKey\": "
    "\"SECRET-workspace\"}}}}";

static const char *const clear_paths[] = {
    "properties.initContainers[0].properties.environmentVariables[0].secureValue",
    "properties.containers[0].properties.environmentVariables[1].secureValue",
    "properties.volumes[0].secret.f",
    "properties.volumes[1].azureFile.storageAccountKey",
    "properties.imageRegistryCredentials[0].password",
    "properties.diagnostics.logAnalytics.workspaceKey",
};

typedef struct seen {
    size_t n;
    char paths[8][BERTH_ERROR_TARGET_MAX];
} seen_t;

static int collect(const char *path, void *data)
{
    seen_t *s = data;
    if (s->n < 8)
        snprintf(s->paths[s->n], sizeof s->paths[0], "%s", path);
    s->n++;
    return 0;
}

static berth_group_t *parse(const char *text)
{
    berth_group_t *g = NULL;
    berth_error_t err;
    int rc = berth_group_parse(text, strlen(text), &g, &err);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", err.target, err.message);
    assert_int_equal(rc, 0);
    return g;
}

static char *text_of(const berth_group_t *g)
{
    char *s = NULL;
    assert_int_equal(berth_group_to_json(g, 0, &s, NULL), 0);
    return s;
}

static void test_group(void **state)
{
    (void)state;
    berth__keyring_t *r = ring_of(KEY_A);
    berth_group_t *g = parse(group_doc);
    char *clear = text_of(g);
    seen_t seen = {0};
    assert_int_equal(berth__secrets_clear(g, collect, &seen), 6);
    assert_int_equal(seen.n, 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(seen.paths[i], clear_paths[i]);
    char first[BERTH_ERROR_TARGET_MAX];
    assert_true(berth__secrets_any(g, first, sizeof first));
    assert_string_equal(first, clear_paths[0]);

    berth_error_t err;
    assert_int_equal(berth__seal_group(r, g, &err), 0);
    char *sealed = text_of(g);
    assert_null(strstr(sealed, "SECRET-"));
    assert_null(strstr(sealed, "U0VDUkVULXZvbA=="));
    assert_non_null(strstr(sealed, "\"visible\""));
    assert_int_equal(berth__secrets_clear(g, NULL, NULL), 0);
    assert_true(berth__secrets_any(g, first, sizeof first));
    /* Sealing again changes nothing; the sealed text parses and validates. */
    assert_int_equal(berth__seal_group(r, g, &err), 0);
    char *twice = text_of(g);
    assert_string_equal(twice, sealed);
    free(twice);
    berth_group_free(g);
    g = parse(sealed);

    /* Without a key, a sealed value is refused, naming its path. */
    berth_group_t *nokey = parse(sealed);
    assert_int_equal(berth__unseal_group(NULL, nokey, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "SecretKeyMissing");
    assert_string_equal(err.target, clear_paths[0]);
    berth_group_free(nokey);

    assert_int_equal(berth__unseal_group(r, g, &err), 0);
    char *back = text_of(g);
    assert_string_equal(back, clear);
    free(back);
    berth__group_free_wiped(g);
    berth__group_free_wiped(NULL);

    /* A tampered secret: refused with its path, nothing returned. */
    char *bad = strdup(sealed);
    char *at = strstr(bad, "\"password\":\"" BERTH__SEAL_PREFIX);
    assert_non_null(at);
    at += strlen("\"password\":\"" BERTH__SEAL_PREFIX) + 30;
    *at = *at == 'A' ? 'B' : 'A';
    g = parse(bad);
    assert_int_equal(berth__unseal_group(r, g, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "SecretTampered");
    assert_string_equal(err.target, clear_paths[4]);
    berth_group_free(g);
    free(bad);

    /* A document without secrets has none to find. */
    g = parse("{\"location\": \"westus\", \"properties\": {\"osType\": \"Linux\", "
              "\"containers\": [{\"name\": \"a\", \"properties\": {\"image\": \"busybox\", "
              "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}]}}");
    assert_false(berth__secrets_any(g, first, sizeof first));
    assert_string_equal(first, "");
    berth_group_free(g);
    free(sealed);
    free(clear);
    berth__keyring_free(r);
}

static void test_protected_settings(void **state)
{
    (void)state;
    berth__keyring_t *r = ring_of(KEY_A);
    const char *doc =
        "{\"location\": \"westus\", \"properties\": {\"osType\": \"Linux\", "
        "\"containers\": [{\"name\": \"a\", \"properties\": {\"image\": \"busybox\", "
        "\"resources\": {\"requests\": {\"cpu\": 1, \"memoryInGB\": 1}}}}], "
        "\"extensions\": [{\"name\": \"kube\", \"properties\": {\"extensionType\": "
        "\"kube-proxy\", \"version\": \"1.0\", \"settings\": {\"a\": 0.1}, "
        "\"protectedSettings\": {\"kubeConfig\": \"SECRET-ext\", \"n\": 2.5}}}]}}";
    berth_group_t *g = parse(doc);
    char *clear = text_of(g);
    seen_t seen = {0};
    assert_int_equal(berth__secrets_clear(g, collect, &seen), 1);
    assert_string_equal(seen.paths[0], "properties.extensions[0].properties.protectedSettings");
    berth_error_t err;
    assert_int_equal(berth__seal_group(r, g, &err), 0);
    char *sealed = text_of(g);
    assert_null(strstr(sealed, "SECRET-ext"));
    assert_null(strstr(sealed, "kubeConfig"));
    assert_int_equal(berth__secrets_clear(g, NULL, NULL), 0);
    assert_int_equal(berth__unseal_group(r, g, &err), 0);
    char *back = text_of(g);
    assert_string_equal(back, clear);
    free(back);
    free(sealed);
    free(clear);
    berth_group_free(g);
    berth__keyring_free(r);
}

static void test_redact(void **state)
{
    (void)state;
    json_t *doc = json_loads(group_doc, 0, NULL);
    assert_non_null(doc);
    json_t *props = json_object_get(doc, "properties");
    berth__redact_properties(props);
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_null(strstr(text, "SECRET-"));
    assert_null(strstr(text, "U0VDUkVULXZvbA=="));
    /* What is no secret stays: the secret volume keeps its kind. */
    assert_non_null(strstr(text, "\"secret\":{}"));
    assert_non_null(strstr(text, "\"storageAccountName\":\"acct\""));
    assert_non_null(strstr(text, "\"visible\""));
    free(text);
    json_decref(doc);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char path[160];
    for (int i = 0; i < files; i++) {
        snprintf(path, sizeof path, "%s/key%d", dir, i);
        unlink(path);
    }
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_unknown_key_and_rotation),
        cmocka_unit_test(test_bad_key_files),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_protected_settings),
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
