/*
 * test_model.c: berth_group_parse(), berth_group_to_json() and
 * berth_group_free(): every container-group document in the ACI spec's
 * examples round-trips; hostile documents fail cleanly; redaction removes
 * every secret; member names and enums are read without regard to case;
 * config maps are typed, checked as file names and sizes, rendered, and
 * left out of the runtime and template digests.
 *
 * Fixtures are read from BERTH_SRCDIR/fixtures; nothing is written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "berth-plugin.h"
#include "internal.h"

/* ---- helpers -------------------------------------------------------------- */

static int parse(const char *json, berth_group_t **out, berth_error_t *err)
{
    return berth_group_parse(json, strlen(json), out, err);
}

/* Parses a document that must be valid, failing the test with the first
 * violation otherwise. */
static berth_group_t *parse_ok(const char *json)
{
    berth_error_t err;
    berth_group_t *g = NULL;
    int rc = parse(json, &g, &err);
    if (rc != 0)
        fail_msg("parse failed: %s at '%s': %s", err.name, err.target, err.message);
    assert_non_null(g);
    return g;
}

/* True when any recorded violation has this name and target. */
static bool has_violation(const berth_error_t *err, const char *name, const char *target)
{
    size_t n = err->ndetails < BERTH_ERROR_DETAILS_MAX ? err->ndetails : BERTH_ERROR_DETAILS_MAX;
    for (size_t i = 0; i < n; i++)
        if (strcmp(err->details[i].name, name) == 0 &&
            (target == NULL || strcmp(err->details[i].target, target) == 0))
            return true;
    return false;
}

static void dump_error(const berth_error_t *err)
{
    size_t n = err->ndetails < BERTH_ERROR_DETAILS_MAX ? err->ndetails : BERTH_ERROR_DETAILS_MAX;
    for (size_t i = 0; i < n; i++)
        print_message("  %s at '%s': %s\n", err->details[i].name, err->details[i].target,
                      err->details[i].message);
}

/* Expects the document to be refused with exactly one violation. */
static void expect_one(const char *json, const char *name, const char *target)
{
    berth_error_t err;
    berth_group_t *g = (berth_group_t *)0x1;
    int rc = parse(json, &g, &err);
    assert_int_equal(rc, BERTH_EINVAL);
    assert_null(g);
    if (err.ndetails != 1 || !has_violation(&err, name, target)) {
        dump_error(&err);
        fail_msg("expected exactly %s at '%s'", name, target);
    }
    assert_int_equal(err.code, BERTH_EINVAL);
}

static char *to_json(const berth_group_t *g, unsigned flags)
{
    char *s = NULL;
    size_t len = 0;
    assert_int_equal(berth_group_to_json(g, flags, &s, &len), 0);
    assert_non_null(s);
    assert_int_equal(len, strlen(s));
    return s;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* True when a real with no fraction (1.0) appears anywhere: Berth writes
 * whole quantities as integers, and jansson tells 1.0 and 1 apart. */
static bool holds_whole_real(json_t *v)
{
    if (json_is_real(v))
        return json_real_value(v) == (double)(long long)json_real_value(v);
    const char *k;
    json_t *e;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, k, e)
            if (holds_whole_real(e))
                return true;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e)
            if (holds_whole_real(e))
                return true;
    }
    return false;
}

/* The round trip of one document: parse, serialize, compare; then once
 * more, which must give the very same text. */
static void round_trip(json_t *doc, const char *where)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text);
    berth_error_t err;
    berth_group_t *g = NULL;
    if (parse(text, &g, &err) != 0) {
        dump_error(&err);
        fail_msg("%s: spec example refused", where);
    }
    char *out = to_json(g, 0);
    json_t *back = json_loads(out, 0, NULL);
    assert_non_null(back);
    if (!holds_whole_real(doc) && !json_equal(doc, back))
        fail_msg("%s: round trip differs:\n%s\n%s", where, text, out);
    /* Numerically, always equal (1.0 == 1). */
    json_t *a = json_loads(text, JSON_DECODE_INT_AS_REAL, NULL);
    json_t *b = json_loads(out, JSON_DECODE_INT_AS_REAL, NULL);
    if (!json_equal(a, b))
        fail_msg("%s: round trip differs numerically:\n%s\n%s", where, text, out);
    berth_group_t *g2 = parse_ok(out);
    char *out2 = to_json(g2, 0);
    assert_string_equal(out, out2);
    json_decref(a);
    json_decref(b);
    json_decref(back);
    berth_free(out);
    berth_free(out2);
    berth_group_free(g);
    berth_group_free(g2);
    free(text);
}

static bool is_group(json_t *v)
{
    return json_is_object(v) && json_object_get(json_object_get(v, "properties"), "containers");
}

/* Round-trips every container group in one example file; returns how many. */
static size_t round_trip_file(const char *path)
{
    size_t len = 0;
    char *buf = read_file(path, &len);
    assert_non_null(buf);
    json_t *ex = json_loadb(buf, len, 0, NULL);
    assert_non_null(ex);
    size_t n = 0;
    char where[4096];
    json_t *cg = json_object_get(json_object_get(ex, "parameters"), "containerGroup");
    if (cg != NULL) {
        assert_true(is_group(cg));
        snprintf(where, sizeof where, "%s parameters.containerGroup", path);
        round_trip(cg, where);
        n++;
    }
    const char *code;
    json_t *resp;
    json_object_foreach(json_object_get(ex, "responses"), code, resp) {
        json_t *body = json_object_get(resp, "body");
        json_t *value = json_object_get(body, "value");
        if (is_group(body)) {
            snprintf(where, sizeof where, "%s responses.%s.body", path, code);
            round_trip(body, where);
            n++;
        } else if (json_is_array(value)) {
            size_t i;
            json_t *e;
            json_array_foreach(value, i, e) {
                if (!is_group(e))
                    continue;
                snprintf(where, sizeof where, "%s responses.%s.body.value[%zu]", path, code, i);
                round_trip(e, where);
                n++;
            }
        }
    }
    json_decref(ex);
    free(buf);
    return n;
}

/* ---- round trips ---------------------------------------------------------- */

static void test_spec_examples_round_trip(void **state)
{
    (void)state;
    static const char *const dirs[] = {"fixtures/aci-spec/examples",
                                       "fixtures/aci-spec/examples-2020-11-01",
                                       "fixtures/aci-spec/2023-05-01/examples"};
    size_t total = 0, files = 0;
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", BERTH_SRCDIR, dirs[d]);
        DIR *dh = opendir(dir);
        assert_non_null(dh);
        struct dirent *de;
        while ((de = readdir(dh)) != NULL) {
            size_t l = strlen(de->d_name);
            if (l < 5 || strcmp(de->d_name + l - 5, ".json") != 0)
                continue;
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            total += round_trip_file(path);
            files++;
        }
        closedir(dh);
    }
    /* 19 files of the three example sets hold 31 container groups. */
    assert_int_equal(files, 40);
    assert_int_equal(total, 31);
}

static const char *const full_doc =
    "{\"name\":\"full\",\"location\":\"westus\",\"tags\":{\"a\":\"b\"},\"zones\":[\"1\"],"
    "\"id\":\"/x\",\"type\":\"Microsoft.ContainerInstance/containerGroups\","
    "\"identity\":{\"type\":\"SystemAssigned\"},"
    "\"properties\":{\"osType\":\"Linux\",\"restartPolicy\":\"OnFailure\","
    "\"sku\":\"Standard\",\"priority\":\"Spot\","
    "\"containers\":[{\"name\":\"web\",\"properties\":{\"image\":\"nginx:1.25\","
    "\"command\":[\"nginx\",\"-g\",\"daemon off;\"],"
    "\"ports\":[{\"port\":80},{\"port\":53,\"protocol\":\"UDP\"}],"
    "\"environmentVariables\":[{\"name\":\"A\",\"value\":\"1\"},"
    "{\"name\":\"S\",\"secureValue\":\"env-secret-1\"}],"
    "\"resources\":{\"requests\":{\"cpu\":0.5,\"memoryInGB\":1.25},"
    "\"limits\":{\"cpu\":0.1,\"memoryInGB\":1}},"
    "\"volumeMounts\":[{\"name\":\"v1\",\"mountPath\":\"/a\",\"readOnly\":true},"
    "{\"name\":\"v2\",\"mountPath\":\"/b\"},{\"name\":\"v3\",\"mountPath\":\"/c\"},"
    "{\"name\":\"v4\",\"mountPath\":\"/d\"}],"
    "\"livenessProbe\":{\"exec\":{\"command\":[\"true\"]},\"periodSeconds\":5,"
    "\"initialDelaySeconds\":0},"
    "\"readinessProbe\":{\"httpGet\":{\"path\":\"/\",\"port\":80,\"scheme\":\"http\","
    "\"httpHeaders\":[{\"name\":\"h\",\"value\":\"v\"}]},\"timeoutSeconds\":3},"
    "\"securityContext\":{\"privileged\":false,\"runAsUser\":1000}}}],"
    "\"initContainers\":[{\"name\":\"init\",\"properties\":{\"image\":\"busybox\","
    "\"command\":[\"sh\"],\"environmentVariables\":[{\"name\":\"T\",\"secureValue\":\"env-secret-2\"}],"
    "\"volumeMounts\":[{\"name\":\"v2\",\"mountPath\":\"/b\"}]}}],"
    "\"imageRegistryCredentials\":[{\"server\":\"r.io\",\"username\":\"u\","
    "\"password\":\"registry-secret-3\"}],"
    "\"ipAddress\":{\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}],\"type\":\"Public\","
    "\"dnsNameLabel\":\"full\",\"autoGeneratedDomainNameLabelScope\":\"TenantReuse\"},"
    "\"volumes\":[{\"name\":\"v1\",\"azureFile\":{\"shareName\":\"s\",\"storageAccountName\":\"a\","
    "\"storageAccountKey\":\"storage-secret-4\",\"readOnly\":false}},"
    "{\"name\":\"v2\",\"emptyDir\":{}},"
    "{\"name\":\"v3\",\"secret\":{\"f\":\"c2VjcmV0LWZpbGUtNQ==\"}},"
    "{\"name\":\"v4\",\"gitRepo\":{\"repository\":\"https://g/r\",\"directory\":\"d\","
    "\"revision\":\"abc\"}}],"
    "\"dnsConfig\":{\"nameServers\":[\"1.1.1.1\"],\"searchDomains\":\"x\",\"options\":\"ndots:2\"},"
    "\"diagnostics\":{\"logAnalytics\":{\"workspaceId\":\"w\",\"workspaceKey\":\"workspace-secret-6\"}},"
    "\"extensions\":[{\"name\":\"kp\",\"properties\":{\"extensionType\":\"kube-proxy\","
    "\"version\":\"1.0\",\"protectedSettings\":{\"k\":\"extension-secret-7\"}}}],"
    "\"subnetIds\":[{\"id\":\"/s\"}],\"provisioningState\":\"Succeeded\","
    "\"confidentialComputeProperties\":{\"ccePolicy\":\"p\"},"
    "\"encryptionProperties\":{\"vaultBaseUrl\":\"u\",\"keyName\":\"k\",\"keyVersion\":\"1\"}}}";

static const char *const secrets[] = {"env-secret-1", "env-secret-2", "registry-secret-3",
                                      "storage-secret-4", "c2VjcmV0LWZpbGUtNQ==",
                                      "workspace-secret-6", "extension-secret-7"};

static void test_full_document_round_trip(void **state)
{
    (void)state;
    berth_group_t *g = parse_ok(full_doc);
    assert_string_equal(g->name, "full");
    assert_int_equal(g->ncontainers, 1);
    assert_int_equal(g->containers[0].requests.cpu_millicores, 500);
    assert_int_equal(g->containers[0].requests.memory_milli_gb, 1250);
    assert_int_equal(g->containers[0].limits.cpu_millicores, 100);
    assert_int_equal(g->containers[0].limits.memory_milli_gb, 1000);
    assert_int_equal(g->containers[0].ports[1].protocol, BERTH_PROTOCOL_UDP);
    assert_int_equal(g->containers[0].ports[0].protocol, BERTH_PROTOCOL_UNSET);
    assert_int_equal(g->restart_policy, BERTH_RESTART_ON_FAILURE);
    assert_int_equal(g->priority, BERTH_PRIORITY_SPOT);
    assert_int_equal(g->volumes[2].kind, BERTH_VOLUME_SECRET);
    assert_int_equal(g->containers[0].liveness->period_seconds, 5);
    assert_int_equal(g->containers[0].liveness->initial_delay_seconds, 0);
    assert_int_equal(g->containers[0].liveness->failure_threshold, -1);
    assert_non_null(g->containers[0].extra_json);
    assert_non_null(strstr(g->properties_extra_json, "workspace-secret-6"));
    char *out = to_json(g, 0);
    json_t *a = json_loads(full_doc, 0, NULL), *b = json_loads(out, 0, NULL);
    assert_true(json_equal(a, b));
    /* 0.1 is written as 0.1, not 0.10000000000000001. */
    assert_non_null(strstr(out, "\"cpu\":0.1"));
    assert_null(strstr(out, "0.1000"));
    json_decref(a);
    json_decref(b);
    berth_free(out);
    berth_group_free(g);
}

static void test_redact_removes_every_secret(void **state)
{
    (void)state;
    berth_group_t *g = parse_ok(full_doc);
    char *plain = to_json(g, 0);
    char *redacted = to_json(g, BERTH_JSON_REDACT);
    char *both = to_json(g, BERTH_JSON_REDACT | BERTH_JSON_PRETTY);
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        assert_non_null(strstr(plain, secrets[i]));
        if (strstr(redacted, secrets[i]) != NULL || strstr(both, secrets[i]) != NULL)
            fail_msg("secret '%s' survived redaction", secrets[i]);
    }
    /* What is not secret stays: names, the secret volume's kind. */
    json_t *r = json_loads(redacted, 0, NULL);
    assert_non_null(r);
    json_t *props = json_object_get(r, "properties");
    json_t *env = json_object_get(json_object_get(json_array_get(
        json_object_get(props, "containers"), 0), "properties"), "environmentVariables");
    assert_string_equal(json_string_value(json_object_get(json_array_get(env, 1), "name")), "S");
    assert_null(json_object_get(json_array_get(env, 1), "secureValue"));
    json_t *vol = json_array_get(json_object_get(props, "volumes"), 2);
    assert_true(json_is_object(json_object_get(vol, "secret")));
    assert_int_equal(json_object_size(json_object_get(vol, "secret")), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(
        json_object_get(props, "diagnostics"), "logAnalytics"), "workspaceId")), "w");
    /* The group itself still holds its secrets. */
    assert_string_equal(g->credentials[0].password, "registry-secret-3");
    json_decref(r);
    berth_free(plain);
    berth_free(redacted);
    berth_free(both);
    berth_group_free(g);
}

static void test_pretty_output(void **state)
{
    (void)state;
    berth_group_t *g = parse_ok(full_doc);
    char *compact = to_json(g, 0);
    char *pretty = to_json(g, BERTH_JSON_PRETTY);
    assert_null(strchr(compact, '\n'));
    assert_non_null(strstr(pretty, "\n  \"properties\""));
    json_t *a = json_loads(compact, 0, NULL), *b = json_loads(pretty, 0, NULL);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    berth_free(compact);
    berth_free(pretty);
    berth_group_free(g);
}

#define MINIMAL(containers_props, group_props)                                              \
    "{\"properties\":{\"osType\":\"Linux\",\"containers\":[{\"name\":\"c1\",\"properties\":"   \
    "{\"image\":\"nginx\",\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1.5}}"        \
    containers_props "}}]" group_props "}}"

static void test_empty_and_absent_arrays_differ(void **state)
{
    (void)state;
    berth_group_t *absent = parse_ok(MINIMAL("", ""));
    berth_group_t *empty = parse_ok(
        MINIMAL(",\"command\":[],\"ports\":[],\"environmentVariables\":[],\"volumeMounts\":[]",
                ",\"volumes\":[],\"initContainers\":[],\"imageRegistryCredentials\":[]"));
    assert_false(absent->containers[0].has_command);
    assert_true(empty->containers[0].has_command);
    assert_true(empty->has_volumes && empty->has_init_containers && empty->has_credentials);
    char *a = to_json(absent, 0), *e = to_json(empty, 0);
    assert_null(strstr(a, "command"));
    assert_null(strstr(a, "volumes"));
    assert_non_null(strstr(e, "\"command\":[]"));
    assert_non_null(strstr(e, "\"volumes\":[]"));
    assert_non_null(strstr(e, "\"initContainers\":[]"));
    assert_null(strstr(a, "restartPolicy"));
    berth_free(a);
    berth_free(e);
    berth_group_free(absent);
    berth_group_free(empty);
}

static void test_case_insensitive_names_and_enums(void **state)
{
    (void)state;
    berth_group_t *g = parse_ok(
        "{\"Properties\":{\"OSTYPE\":\"linux\",\"restartpolicy\":\"onfailure\",\"SKU\":\"dedicated\","
        "\"containers\":[{\"Name\":\"c1\",\"properties\":{\"Image\":\"nginx\",\"ports\":"
        "[{\"port\":80,\"protocol\":\"udp\"}],\"resources\":{\"Requests\":"
        "{\"CPU\":1,\"memoryingb\":1}}}}]}}");
    assert_int_equal(g->os_type, BERTH_OS_LINUX);
    assert_int_equal(g->restart_policy, BERTH_RESTART_ON_FAILURE);
    assert_int_equal(g->sku, BERTH_SKU_DEDICATED);
    char *out = to_json(g, 0);
    assert_non_null(strstr(out, "\"osType\":\"Linux\""));
    assert_non_null(strstr(out, "\"restartPolicy\":\"OnFailure\""));
    assert_non_null(strstr(out, "\"sku\":\"Dedicated\""));
    assert_non_null(strstr(out, "\"protocol\":\"UDP\""));
    assert_non_null(strstr(out, "\"memoryInGB\":1"));
    berth_free(out);
    berth_group_free(g);
    /* The same member twice in different cases is refused. */
    expect_one("{\"properties\":{\"osType\":\"Linux\",\"OsType\":\"Linux\",\"containers\":[{\"name\":"
               "\"c1\",\"properties\":{\"image\":\"i\",\"resources\":{\"requests\":{\"cpu\":1,"
               "\"memoryInGB\":1}}}}]}}",
               "InvalidRequestContent", "properties.OsType");
}

static void test_unknown_members_refused(void **state)
{
    (void)state;
    berth_error_t err;
    berth_group_t *g = NULL;
    assert_int_equal(parse(MINIMAL(",\"bogus\":1", ""), &g, &err), BERTH_EINVAL);
    assert_null(g);
    assert_string_equal(err.name, "InvalidRequestContent");
    assert_string_equal(err.target, "properties.containers[0].properties.bogus");
    assert_string_equal(err.message,
                        "Could not find member 'bogus' on object of type 'ContainerProperties'.");
    expect_one(MINIMAL("", ",\"foo\":{}"), "InvalidRequestContent", "properties.foo");
    expect_one("{\"x\":1,\"properties\":{\"osType\":\"Linux\",\"containers\":[{\"name\":\"c\","
               "\"properties\":{\"image\":\"i\",\"resources\":{\"requests\":{\"cpu\":1,"
               "\"memoryInGB\":1}}}}]}}",
               "InvalidRequestContent", "x");
    /* Init containers take no resources or ports. */
    expect_one(MINIMAL("", ",\"initContainers\":[{\"name\":\"i\",\"properties\":{\"image\":\"b\","
                           "\"ports\":[]}}]"),
               "InvalidRequestContent", "properties.initContainers[0].properties.ports");
    expect_one(MINIMAL("", ",\"volumes\":[{\"name\":\"v\",\"emptyDir\":{\"size\":1}}]"),
               "InvalidRequestContent", "properties.volumes[0].emptyDir.size");
}

static void test_quantities(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        uint32_t milli;
    } good[] = {{"1", 1000}, {"0.001", 1}, {"1.5", 1500}, {"0.1", 100}, {"2.125", 2125},
                {"1000000", 1000000000u}, {"1e0", 1000}, {"1.0", 1000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char doc[512];
        snprintf(doc, sizeof doc,
                 "{\"properties\":{\"osType\":\"Linux\",\"containers\":[{\"name\":\"c\","
                 "\"properties\":{\"image\":\"i\",\"resources\":{\"requests\":{\"cpu\":%s,"
                 "\"memoryInGB\":%s}}}}]}}", good[i].value, good[i].value);
        berth_group_t *g = parse_ok(doc);
        assert_int_equal(g->containers[0].requests.cpu_millicores, good[i].milli);
        assert_int_equal(g->containers[0].requests.memory_milli_gb, good[i].milli);
        berth_group_free(g);
    }
    static const char *const bad[] = {"0", "-1", "-0.5", "0.0001", "1.2345", "1000001",
                                      "1e300", "true", "false", "\"1\"", "null", "[]",
                                      "{}", "0.0004"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char doc[512];
        snprintf(doc, sizeof doc,
                 "{\"properties\":{\"osType\":\"Linux\",\"containers\":[{\"name\":\"c\","
                 "\"properties\":{\"image\":\"i\",\"resources\":{\"requests\":{\"cpu\":%s,"
                 "\"memoryInGB\":1}}}}]}}", bad[i]);
        expect_one(doc, "InvalidCpuValue", "properties.containers[0].properties.resources.requests.cpu");
        snprintf(doc, sizeof doc,
                 "{\"properties\":{\"osType\":\"Linux\",\"containers\":[{\"name\":\"c\","
                 "\"properties\":{\"image\":\"i\",\"resources\":{\"requests\":{\"cpu\":1,"
                 "\"memoryInGB\":%s}}}}]}}", bad[i]);
        expect_one(doc, "InvalidMemoryValue",
                   "properties.containers[0].properties.resources.requests.memoryInGB");
    }
}

/* ---- hostile input -------------------------------------------------------- */

static void test_oversized_document(void **state)
{
    (void)state;
    size_t n = BERTH_DOCUMENT_MAX + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    berth_error_t err;
    berth_group_t *g = (berth_group_t *)0x1;
    assert_int_equal(berth_group_parse(big, n, &g, &err), BERTH_ETOOBIG);
    assert_null(g);
    assert_string_equal(err.name, "RequestTooLarge");
    free(big);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    char doc[512];
    size_t k = 0;
    k += (size_t)snprintf(doc, sizeof doc, "{\"id\":");
    for (int i = 0; i < 100; i++)
        doc[k++] = '[';
    for (int i = 0; i < 100; i++)
        doc[k++] = ']';
    doc[k++] = '}';
    doc[k] = '\0';
    berth_error_t err;
    berth_group_t *g = (berth_group_t *)0x1;
    assert_int_equal(parse(doc, &g, &err), BERTH_ETOOBIG);
    assert_null(g);
    assert_string_equal(err.name, "RequestNestingTooDeep");
}

static void test_bad_syntax_and_encoding(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        size_t len;
    } cases[] = {
        {"{\"name\":\"\xff\xfe\"}", 0},               /* invalid UTF-8 */
        {"{\"name\":\"\xc0\xaf\"}", 0},               /* overlong form */
        {"{\"properties\":{\"osType\":\"Lin", 0},     /* truncated */
        {"{\"a\":1,}", 0},                            /* trailing comma */
        {"", 0},                                      /* empty */
        {"[]", 0},                                    /* not an object */
        {"\"group\"", 0},
        {"42", 0},
        {"{\"name\":\"a\",\"name\":\"b\"}", 0},       /* duplicate key */
        {"{\"name\":\"a\\u0000b\",\"properties\":{}}", 0}, /* NUL in a string */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        berth_error_t err;
        berth_group_t *g = (berth_group_t *)0x1;
        int rc = berth_group_parse(cases[i].doc, strlen(cases[i].doc), &g, &err);
        if (rc != BERTH_EINVAL)
            fail_msg("case %zu: rc %d", i, rc);
        assert_null(g);
        assert_true(err.ndetails >= 1);
        assert_true(err.message[0] != '\0');
    }
    berth_error_t err;
    berth_group_t *g = (berth_group_t *)0x1;
    assert_int_equal(berth_group_parse(NULL, 0, &g, &err), BERTH_EINVAL);
    assert_null(g);
    assert_int_equal(berth_group_parse("{}", 2, NULL, &err), BERTH_EINVAL);
    char *s = (char *)0x1;
    assert_int_equal(berth_group_to_json(NULL, 0, &s, NULL), BERTH_EINVAL);
    assert_null(s);
    /* A document need not be NUL-terminated: only len bytes are read. */
    const char *doc = MINIMAL("", "") "garbage";
    g = NULL;
    assert_int_equal(berth_group_parse(doc, strlen(doc) - strlen("garbage"), &g, &err), 0);
    berth_group_free(g);
    berth_group_free(NULL);
}

static void test_every_violation_collected(void **state)
{
    (void)state;
    const char *doc =
        "{\"name\":\"Bad_Name\",\"properties\":{\"osType\":\"Solaris\",\"containers\":["
        "{\"name\":\"c1\",\"properties\":{\"image\":\"i\",\"resources\":{\"requests\":"
        "{\"cpu\":0,\"memoryInGB\":1}}}},"
        "{\"name\":\"c1\",\"properties\":{\"resources\":{\"requests\":{\"cpu\":1,"
        "\"memoryInGB\":\"x\"}}}}]}}";
    berth_error_t err;
    berth_group_t *g = NULL;
    assert_int_equal(parse(doc, &g, &err), BERTH_EINVAL);
    assert_null(g);
    assert_int_equal(err.ndetails, 6);
    assert_true(has_violation(&err, "InvalidEnumValue", "properties.osType"));
    assert_true(has_violation(&err, "InvalidCpuValue",
                              "properties.containers[0].properties.resources.requests.cpu"));
    assert_true(has_violation(&err, "MissingRequiredProperty",
                              "properties.containers[1].properties.image"));
    assert_true(has_violation(&err, "InvalidMemoryValue",
                              "properties.containers[1].properties.resources.requests.memoryInGB"));
    assert_true(has_violation(&err, "InvalidContainerGroupName", "name"));
    assert_true(has_violation(&err, "DuplicateContainerName", "properties.containers[1].name"));
    /* The first violation is also the top-level error. */
    assert_string_equal(err.name, err.details[0].name);
    char *cloud = NULL;
    assert_int_equal(berth_error_to_json(&err, &cloud), 0);
    assert_non_null(strstr(cloud, "\"details\""));
    berth_free(cloud);
}

static void test_secrets_never_in_messages(void **state)
{
    (void)state;
    const char *doc =
        "{\"properties\":{\"osType\":\"Linux\",\"containers\":[{\"name\":\"c\",\"properties\":"
        "{\"image\":\"i\",\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1}},"
        "\"environmentVariables\":[{\"name\":\"S\",\"secureValue\":\"topsecret-env\",\"x\":1}]}}],"
        "\"imageRegistryCredentials\":[{\"server\":\"\",\"password\":\"topsecret-pw\"}],"
        "\"volumes\":[{\"name\":\"v\",\"secret\":{\"f\":\"topsecret-not-base64!\"}},"
        "{\"name\":\"w\",\"azureFile\":{\"shareName\":\"s\",\"storageAccountKey\":\"topsecret-key\"}}]}}";
    berth_error_t err;
    berth_group_t *g = NULL;
    assert_int_equal(parse(doc, &g, &err), BERTH_EINVAL);
    assert_true(has_violation(&err, "InvalidSecretVolumeValue", "properties.volumes[0].secret.f"));
    char *cloud = NULL;
    assert_int_equal(berth_error_to_json(&err, &cloud), 0);
    assert_null(strstr(cloud, "topsecret"));
    for (size_t i = 0; i < BERTH_ERROR_DETAILS_MAX && i < err.ndetails; i++)
        assert_null(strstr(err.details[i].message, "topsecret"));
    berth_free(cloud);
}

/* ---- config maps ----------------------------------------------------------- */

#define CM_PATH "properties.containers[0].properties.configMap.keyValuePairs."

static void test_config_map_parse_and_render(void **state)
{
    (void)state;
    berth_group_t *g = parse_ok(MINIMAL(",\"ConfigMap\":{\"KeyValuePairs\":{\"app.conf\":"
                                        "\"level=debug\\n\",\"Empty_-1\":\"\"}}",
                                        ""));
    const berth_container_t *c = &g->containers[0];
    assert_true(c->has_config_map);
    assert_int_equal(c->nconfig_map, 2);
    assert_string_equal(c->config_map[0].name, "app.conf");
    assert_string_equal(c->config_map[0].value, "level=debug\n");
    assert_string_equal(c->config_map[1].name, "Empty_-1");
    assert_string_equal(c->config_map[1].value, "");
    /* Rendered in canonical spelling, and not a secret: redaction keeps it. */
    char *json = NULL;
    assert_int_equal(berth_group_to_json(g, BERTH_JSON_REDACT, &json, NULL), 0);
    json_t *doc = json_loads(json, 0, NULL);
    assert_non_null(doc);
    json_t *c0 = json_array_get(json_object_get(json_object_get(doc, "properties"), "containers"), 0);
    json_t *kv = json_object_get(
        json_object_get(json_object_get(c0, "properties"), "configMap"), "keyValuePairs");
    assert_string_equal(json_string_value(json_object_get(kv, "app.conf")), "level=debug\n");
    assert_string_equal(json_string_value(json_object_get(kv, "Empty_-1")), "");
    json_decref(doc);
    /* It round-trips. */
    berth_group_t *again = parse_ok(json);
    assert_int_equal(again->containers[0].nconfig_map, 2);
    assert_string_equal(again->containers[0].config_map[1].name, "Empty_-1");
    berth_free(json);
    /* The digests a running group and a pool template are compared on
     * ignore it: the same document without config maps has the same ones. */
    berth_group_t *bare = parse_ok(MINIMAL("", ""));
    berth_group_t *other = parse_ok(MINIMAL(",\"configMap\":{\"keyValuePairs\":{\"k\":\"v\"}}", ""));
    assert_int_equal(berth_runtime_digest(g), berth_runtime_digest(bare));
    assert_int_equal(berth_runtime_digest(other), berth_runtime_digest(bare));
    uint64_t d1 = 0, d2 = 0;
    assert_int_equal(berth_group_template_digest(g, &d1), 0);
    assert_int_equal(berth_group_template_digest(bare, &d2), 0);
    assert_int_equal(d1, d2);
    assert_int_equal(berth_group_to_json(g, BERTH_JSON_NO_CONFIG_MAPS, &json, NULL), 0);
    assert_null(strstr(json, "configMap"));
    berth_free(json);
    /* An empty map is kept apart from an absent one. */
    berth_group_t *empty = parse_ok(MINIMAL(",\"configMap\":{}", ""));
    assert_true(empty->containers[0].has_config_map);
    assert_int_equal(empty->containers[0].nconfig_map, 0);
    assert_false(bare->containers[0].has_config_map);
    assert_int_equal(berth_group_to_json(empty, 0, &json, NULL), 0);
    assert_non_null(strstr(json, "\"configMap\":{\"keyValuePairs\":{}}"));
    berth_free(json);
    berth_group_free(empty);
    berth_group_free(other);
    berth_group_free(bare);
    berth_group_free(again);
    berth_group_free(g);
}

static void test_config_map_refused(void **state)
{
    (void)state;
    expect_one(MINIMAL(",\"configMap\":{\"keyValuePairs\":{\"a/b\":\"v\"}}", ""),
               "InvalidConfigMapKey", CM_PATH "a/b");
    expect_one(MINIMAL(",\"configMap\":{\"keyValuePairs\":{\"..\":\"v\"}}", ""),
               "InvalidConfigMapKey", CM_PATH "..");
    expect_one(MINIMAL(",\"configMap\":{\"keyValuePairs\":{\"\":\"v\"}}", ""),
               "InvalidConfigMapKey", CM_PATH);
    expect_one(MINIMAL(",\"configMap\":{\"keyValuePairs\":{\"a b\":\"v\"}}", ""),
               "InvalidConfigMapKey", CM_PATH "a b");
    expect_one(MINIMAL(",\"configMap\":{\"keyValuePairs\":{\"k\":1}}", ""),
               "InvalidRequestContent", CM_PATH "k");
    expect_one(MINIMAL(",\"configMap\":{\"pairs\":{}}", ""), "InvalidRequestContent",
               "properties.containers[0].properties.configMap.pairs");
    expect_one(MINIMAL(",\"configMap\":[]", ""), "InvalidRequestContent",
               "properties.containers[0].properties.configMap");
    /* Init containers take none (the spec gives them none). */
    expect_one(MINIMAL("", ",\"initContainers\":[{\"name\":\"i\",\"properties\":{\"image\":\"b\","
                           "\"configMap\":{}}}]"),
               "InvalidRequestContent", "properties.initContainers[0].properties.configMap");

    /* A key of BERTH_CONFIG_KEY_MAX bytes is fine, one more is not; a value
     * of BERTH_CONFIG_VALUE_MAX bytes is fine, one more is not. */
    char key[BERTH_CONFIG_KEY_MAX + 2];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    char *value = malloc(BERTH_CONFIG_VALUE_MAX + 2);
    assert_non_null(value);
    memset(value, 'v', BERTH_CONFIG_VALUE_MAX + 1);
    value[BERTH_CONFIG_VALUE_MAX + 1] = '\0';
    json_t *doc = json_loads(MINIMAL("", ""), 0, NULL);
    json_t *props = json_object_get(
        json_array_get(json_object_get(json_object_get(doc, "properties"), "containers"), 0),
        "properties");
    json_t *kv = json_object();
    json_object_set_new(props, "configMap", json_pack("{s:o}", "keyValuePairs", kv));
    json_object_set_new(kv, key + 1, json_string("v"));
    json_object_set_new(kv, "big", json_stringn(value, BERTH_CONFIG_VALUE_MAX));
    char *text = json_dumps(doc, JSON_COMPACT);
    berth_group_t *g = parse_ok(text);
    assert_int_equal(g->containers[0].nconfig_map, 2);
    berth_group_free(g);
    free(text);
    json_object_set_new(kv, key, json_string("v"));
    json_object_set_new(kv, "big", json_stringn(value, BERTH_CONFIG_VALUE_MAX + 1));
    text = json_dumps(doc, JSON_COMPACT);
    berth_error_t err;
    g = NULL;
    assert_int_equal(parse(text, &g, &err), BERTH_EINVAL);
    assert_null(g);
    assert_true(has_violation(&err, "InvalidConfigMapValue", CM_PATH "big"));
    assert_true(has_violation(&err, "InvalidConfigMapKey", NULL));
    free(text);
    /* Values each within bounds, together too many bytes. */
    json_object_clear(kv);
    for (unsigned i = 0; i <= BERTH_CONFIG_TOTAL_MAX / BERTH_CONFIG_VALUE_MAX; i++) {
        char k[16];
        snprintf(k, sizeof k, "f%u", i);
        json_object_set_new(kv, k, json_stringn(value, BERTH_CONFIG_VALUE_MAX));
    }
    text = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(parse(text, &g, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "ConfigMapTooLarge");
    assert_non_null(strstr(err.target, CM_PATH));
    free(text);
    json_decref(doc);
    free(value);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_examples_round_trip),
        cmocka_unit_test(test_full_document_round_trip),
        cmocka_unit_test(test_redact_removes_every_secret),
        cmocka_unit_test(test_pretty_output),
        cmocka_unit_test(test_empty_and_absent_arrays_differ),
        cmocka_unit_test(test_case_insensitive_names_and_enums),
        cmocka_unit_test(test_unknown_members_refused),
        cmocka_unit_test(test_quantities),
        cmocka_unit_test(test_oversized_document),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_bad_syntax_and_encoding),
        cmocka_unit_test(test_every_violation_collected),
        cmocka_unit_test(test_secrets_never_in_messages),
        cmocka_unit_test(test_config_map_parse_and_render),
        cmocka_unit_test(test_config_map_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
