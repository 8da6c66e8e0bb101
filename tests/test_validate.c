/*
 * test_validate.c: one document per validation rule, each breaking only
 * that rule, checked for its error name and JSON path; then the rules that
 * depend on an engine's tables (GPU SKUs and offers, per-group limits),
 * through berth__group_request() on a plain berth__config_t and through the
 * public berth_engine_group_validate() and berth_engine_group_request().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "model-internal.h"

/* A container with 1 core and 1 GB, plus `extra` members in properties. */
#define CONT(name, extra)                                                                 \
    "{\"name\":\"" name "\",\"properties\":{\"image\":\"nginx\",\"resources\":"             \
    "{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}" extra "}}"
/* A container with its own resources member. */
#define CONT_RES(name, requests, limits_and_extra)                                        \
    "{\"name\":\"" name "\",\"properties\":{\"image\":\"nginx\",\"resources\":"             \
    "{\"requests\":" requests limits_and_extra "}}"
#define GROUP(os, containers, extra)                                                      \
    "{\"name\":\"g\",\"properties\":{\"osType\":\"" os "\",\"containers\":[" containers "]" \
    extra "}}"
#define LINUX(containers, extra) GROUP("Linux", containers, extra)
#define C1 CONT("c1", "")
#define C2 CONT("c2", "")
#define PROBE(probe) CONT("c1", ",\"livenessProbe\":" probe)
#define MOUNT(m) CONT("c1", ",\"volumeMounts\":[" m "]")
#define VOL(v) ",\"volumes\":[" v "]"
/* A container with 1 core and 1 GB running `image` (JSON-escaped). */
#define IMG(image)                                                                        \
    "{\"name\":\"c1\",\"properties\":{\"image\":\"" image "\",\"resources\":"            \
    "{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}}}"

typedef struct rule_case {
    const char *doc;
    const char *name;
    const char *target;
} rule_case_t;

#define CP "properties.containers[0].properties."

static const rule_case_t rules[] = {
    /* required members */
    {"{\"properties\":{\"osType\":\"Linux\"}}", "MissingRequiredProperty", "properties.containers"},
    {LINUX("", ""), "MissingRequiredProperty", "properties.containers"},
    {"{\"properties\":{\"containers\":[" C1 "]}}", "MissingRequiredProperty", "properties.osType"},
    {"{\"name\":\"g\"}", "MissingRequiredProperty", "properties"},
    {LINUX("{\"properties\":{\"image\":\"i\",\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}}}",
           ""), "MissingRequiredProperty", "properties.containers[0].name"},
    {LINUX("{\"name\":\"c1\"}", ""), "MissingRequiredProperty", "properties.containers[0].properties"},
    {LINUX("{\"name\":\"c1\",\"properties\":{\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}}}",
           ""), "MissingRequiredProperty", CP "image"},
    {LINUX("{\"name\":\"c1\",\"properties\":{\"image\":\"\",\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}}}",
           ""), "MissingRequiredProperty", CP "image"},
    {LINUX("{\"name\":\"c1\",\"properties\":{\"image\":\"i\"}}", ""), "MissingRequiredProperty",
     CP "resources"},
    {LINUX("{\"name\":\"c1\",\"properties\":{\"image\":\"i\",\"resources\":{}}}", ""),
     "MissingRequiredProperty", CP "resources.requests"},
    {LINUX(CONT_RES("c1", "{\"memoryInGB\":1}", "}"), ""), "MissingRequiredProperty",
     CP "resources.requests.cpu"},
    {LINUX(CONT_RES("c1", "{\"cpu\":1}", "}"), ""), "MissingRequiredProperty",
     CP "resources.requests.memoryInGB"},
    {LINUX(CONT("c1", ",\"environmentVariables\":[{\"value\":\"v\"}]"), ""),
     "MissingRequiredProperty", CP "environmentVariables[0].name"},
    {LINUX(C1, ",\"imageRegistryCredentials\":[{\"username\":\"u\"}]"), "MissingRequiredProperty",
     "properties.imageRegistryCredentials[0].server"},
    {LINUX(C1, ",\"dnsConfig\":{\"options\":\"x\"}"), "MissingRequiredProperty",
     "properties.dnsConfig.nameServers"},
    {LINUX(C1, ",\"initContainers\":[{\"name\":\"i1\",\"properties\":{}}]"),
     "MissingRequiredProperty", "properties.initContainers[0].properties.image"},
    /* enums */
    {LINUX(C1, ",\"restartPolicy\":\"Sometimes\""), "InvalidEnumValue", "properties.restartPolicy"},
    {GROUP("Solaris", C1, ""), "InvalidEnumValue", "properties.osType"},
    {LINUX(C1, ",\"sku\":\"Premium\""), "InvalidEnumValue", "properties.sku"},
    {LINUX(C1, ",\"priority\":\"High\""), "InvalidEnumValue", "properties.priority"},
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":80,\"protocol\":\"SCTP\"}]"), ""), "InvalidEnumValue",
     CP "ports[0].protocol"},
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":80}]"),
           ",\"ipAddress\":{\"type\":\"Internal\",\"ports\":[{\"port\":80}]}"),
     "InvalidEnumValue", "properties.ipAddress.type"},
    /* names */
    {"{\"name\":\"Bad\",\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}",
     "InvalidContainerGroupName", "name"},
    {"{\"name\":\"-g\",\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}",
     "InvalidContainerGroupName", "name"},
    {"{\"name\":\"a234567890123456789012345678901234567890123456789012345678901234\","
     "\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}",
     "InvalidContainerGroupName", "name"},
    {LINUX(CONT("C_1", ""), ""), "InvalidContainerName", "properties.containers[0].name"},
    {LINUX(C1 "," C1, ""), "DuplicateContainerName", "properties.containers[1].name"},
    {LINUX(C1, ",\"initContainers\":[{\"name\":\"c1\",\"properties\":{\"image\":\"b\"}}]"),
     "DuplicateContainerName", "properties.initContainers[0].name"},
    {LINUX(C1, ",\"initContainers\":[{\"name\":\"I\",\"properties\":{\"image\":\"b\"}}]"),
     "InvalidContainerName", "properties.initContainers[0].name"},
    {LINUX(C1, VOL("{\"name\":\"V1\",\"emptyDir\":{}}")), "InvalidVolumeName",
     "properties.volumes[0].name"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"emptyDir\":{}},{\"name\":\"v1\",\"emptyDir\":{}}")),
     "DuplicateVolumeName", "properties.volumes[1].name"},
    /* resources */
    {LINUX(CONT_RES("c1", "{\"cpu\":-1,\"memoryInGB\":1}", "}"), ""), "InvalidCpuValue",
     CP "resources.requests.cpu"},
    {LINUX(CONT_RES("c1", "{\"cpu\":1,\"memoryInGB\":0}", "}"), ""), "InvalidMemoryValue",
     CP "resources.requests.memoryInGB"},
    {LINUX(CONT_RES("c1", "{\"cpu\":1,\"memoryInGB\":1}", ",\"limits\":{\"cpu\":2}}"), ""),
     "ContainerLimitGreaterThanContainerGroupTotalRequest", CP "resources.limits.cpu"},
    {LINUX(CONT_RES("c1", "{\"cpu\":1,\"memoryInGB\":1}", ",\"limits\":{\"memoryInGB\":1.5}}"), ""),
     "ContainerLimitGreaterThanContainerGroupTotalRequest", CP "resources.limits.memoryInGB"},
    {LINUX(CONT_RES("c1", "{\"cpu\":1,\"memoryInGB\":1,\"gpu\":{\"count\":1,\"sku\":\"K80\"}}",
                    ",\"limits\":{\"gpu\":{\"count\":2,\"sku\":\"K80\"}}}"), ""),
     "ContainerLimitGreaterThanContainerGroupTotalRequest", CP "resources.limits.gpu.count"},
    {LINUX(CONT_RES("c1", "{\"cpu\":1,\"memoryInGB\":1,\"gpu\":{\"count\":0,\"sku\":\"K80\"}}", "}"),
           ""), "InvalidGpuCount", CP "resources.requests.gpu.count"},
    {LINUX(CONT_RES("c1", "{\"cpu\":1,\"memoryInGB\":1,\"gpu\":{\"count\":1,\"sku\":\"K80\"}}", "}")
           "," CONT_RES("c2", "{\"cpu\":1,\"memoryInGB\":1,\"gpu\":{\"count\":1,\"sku\":\"V100\"}}", "}"),
           ""), "MultipleGpuSkus", "properties.containers[1].properties.resources.requests.gpu.sku"},
    /* ports */
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":80}]") "," CONT("c2", ",\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}]"),
           ""), "DuplicateContainerPort", "properties.containers[1].properties.ports[0].port"},
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":80},{\"port\":80}]"), ""), "DuplicateContainerPort",
     CP "ports[1].port"},
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":0}]"), ""), "InvalidPort", CP "ports[0].port"},
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":65536}]"), ""), "InvalidPort", CP "ports[0].port"},
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":80}]"),
           ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":443}]}"),
     "IpAddressPortNotExposed", "properties.ipAddress.ports[0].port"},
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":80}]"),
           ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80,\"protocol\":\"UDP\"}]}"),
     "IpAddressPortNotExposed", "properties.ipAddress.ports[0].port"},
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":80}]"), ",\"ipAddress\":{\"type\":\"Public\"}"),
     "MissingRequiredProperty", "properties.ipAddress.ports"},
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":80}]"), ",\"ipAddress\":{\"ports\":[{\"port\":80}]}"),
     "MissingRequiredProperty", "properties.ipAddress.type"},
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":80}]"), ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[]}"),
     "InvalidIpAddress", "properties.ipAddress.ports"},
    {LINUX(CONT("c1", ",\"ports\":[{\"port\":80}]"),
           ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80},{\"port\":80}]}"),
     "DuplicateIpAddressPort", "properties.ipAddress.ports[1].port"},
    /* volumes and mounts */
    {LINUX(MOUNT("{\"name\":\"nope\",\"mountPath\":\"/a\"}"), ""), "VolumeMountNameNotFound",
     CP "volumeMounts[0].name"},
    {LINUX(MOUNT("{\"name\":\"v1\",\"mountPath\":\"c:/a\"}"), VOL("{\"name\":\"v1\",\"emptyDir\":{}}")),
     "InvalidVolumeMountPath", CP "volumeMounts[0].mountPath"},
    {LINUX(MOUNT("{\"name\":\"v1\",\"mountPath\":\"\"}"), VOL("{\"name\":\"v1\",\"emptyDir\":{}}")),
     "MissingRequiredProperty", CP "volumeMounts[0].mountPath"},
    {LINUX(MOUNT("{\"name\":\"v1\",\"mountPath\":\"/a\"},{\"name\":\"v2\",\"mountPath\":\"/a\"}"),
           VOL("{\"name\":\"v1\",\"emptyDir\":{}},{\"name\":\"v2\",\"emptyDir\":{}}")),
     "DuplicateVolumeMountPath", CP "volumeMounts[1].mountPath"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"emptyDir\":{},\"secret\":{}}")), "InvalidVolume",
     "properties.volumes[0]"},
    {LINUX(C1, VOL("{\"name\":\"v1\"}")), "InvalidVolume", "properties.volumes[0]"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"gitRepo\":{\"directory\":\"d\"}}")), "MissingRequiredProperty",
     "properties.volumes[0].gitRepo.repository"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"gitRepo\":{\"repository\":\"r\",\"directory\":\"a/../b\"}}")),
     "InvalidGitRepoDirectory", "properties.volumes[0].gitRepo.directory"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"gitRepo\":{\"repository\":\"r\",\"directory\":\"..\"}}")),
     "InvalidGitRepoDirectory", "properties.volumes[0].gitRepo.directory"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"gitRepo\":{\"repository\":\"r\",\"directory\":\"/abs\"}}")),
     "InvalidGitRepoDirectory", "properties.volumes[0].gitRepo.directory"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"secret\":{\"../../etc/passwd\":\"YQ==\"}}")),
     "InvalidSecretVolumeFileName", "properties.volumes[0].secret"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"secret\":{\"..\":\"YQ==\"}}")),
     "InvalidSecretVolumeFileName", "properties.volumes[0].secret"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"secret\":{\"f\":\"bm90IGJhc2U2NA=\"}}")),
     "InvalidSecretVolumeValue", "properties.volumes[0].secret.f"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"secret\":{\"f\":\"ab=c\"}}")),
     "InvalidSecretVolumeValue", "properties.volumes[0].secret.f"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"azureFile\":{\"storageAccountName\":\"a\"}}")),
     "MissingRequiredProperty", "properties.volumes[0].azureFile.shareName"},
    /* Windows */
    {GROUP("Windows", C1 "," C2, ""), "UnsupportedWindowsFeature", "properties.containers"},
    {GROUP("Windows", C1, ",\"initContainers\":[{\"name\":\"i\",\"properties\":{\"image\":\"b\"}}]"),
     "UnsupportedWindowsFeature", "properties.initContainers"},
    {GROUP("Windows", C1, VOL("{\"name\":\"v1\",\"emptyDir\":{}}")), "UnsupportedWindowsFeature",
     "properties.volumes"},
    {GROUP("Windows", CONT_RES("c1", "{\"cpu\":1,\"memoryInGB\":1,\"gpu\":{\"count\":1,\"sku\":\"K80\"}}", "}"),
           ""), "UnsupportedWindowsFeature", CP "resources.requests.gpu.sku"},
    {GROUP("Windows", C1, ",\"sku\":\"Confidential\""), "UnsupportedWindowsFeature",
     "properties.sku"},
    /* probes */
    {LINUX(PROBE("{\"periodSeconds\":5}"), ""), "InvalidProbe", CP "livenessProbe"},
    {LINUX(PROBE("{\"exec\":{\"command\":[\"true\"]},\"httpGet\":{\"port\":80}}"), ""),
     "InvalidProbe", CP "livenessProbe"},
    {LINUX(PROBE("{\"exec\":{\"command\":[]}}"), ""), "InvalidProbe", CP "livenessProbe.exec.command"},
    {LINUX(PROBE("{\"httpGet\":{\"port\":70000}}"), ""), "InvalidPort", CP "livenessProbe.httpGet.port"},
    {LINUX(PROBE("{\"httpGet\":{\"path\":\"/\"}}"), ""), "MissingRequiredProperty",
     CP "livenessProbe.httpGet.port"},
    {LINUX(PROBE("{\"httpGet\":{\"port\":80,\"scheme\":\"ftp\"}}"), ""), "InvalidEnumValue",
     CP "livenessProbe.httpGet.scheme"},
    {LINUX(PROBE("{\"exec\":{\"command\":[\"true\"]},\"periodSeconds\":-1}"), ""), "InvalidProbe",
     CP "livenessProbe.periodSeconds"},
    {LINUX(PROBE("{\"exec\":{\"command\":[\"true\"]},\"timeoutSeconds\":1.5}"), ""),
     "InvalidRequestContent", CP "livenessProbe.timeoutSeconds"},
    /* types */
    {"{\"tags\":{\"a\":1},\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}",
     "InvalidRequestContent", "tags.a"},
    {"{\"tags\":[],\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}",
     "InvalidRequestContent", "tags"},
    {"{\"zones\":\"1\",\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}",
     "InvalidRequestContent", "zones"},
    {"{\"zones\":[1],\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}",
     "InvalidRequestContent", "zones[0]"},
    {"{\"zones\":[\"\"],\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}",
     "InvalidZone", "zones[0]"},
    {"{\"name\":7,\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}",
     "InvalidRequestContent", "name"},
    {LINUX(C1, ",\"subnetIds\":{}"), "InvalidRequestContent", "properties.subnetIds"},
    {LINUX(C1, ",\"initContainers\":{}"), "InvalidRequestContent", "properties.initContainers"},
    {LINUX(CONT("c1", ",\"command\":\"ls\""), ""), "InvalidRequestContent", CP "command"},
    {LINUX(CONT("c1", ",\"command\":[1]"), ""), "InvalidRequestContent", CP "command[0]"},
    {LINUX(CONT("c1", ",\"volumeMounts\":[\"v\"]"), ""), "InvalidRequestContent",
     CP "volumeMounts[0]"},
    {LINUX(MOUNT("{\"name\":\"v1\",\"mountPath\":\"/a\",\"readOnly\":\"yes\"}"),
           VOL("{\"name\":\"v1\",\"emptyDir\":{}}")),
     "InvalidRequestContent", CP "volumeMounts[0].readOnly"},
    /* text: image references, control characters, value with secureValue */
    {LINUX(IMG("busy\\nbox\\u0001"), ""), "InvalidImageReference", CP "image"},
    {LINUX(IMG("busybox\\\" level=error msg=\\\"FORGED"), ""), "InvalidImageReference",
     CP "image"},
    {LINUX(IMG("busy box:latest"), ""), "InvalidImageReference", CP "image"},
    {LINUX(IMG("../../etc/passwd"), ""), "InvalidImageReference", CP "image"},
    {LINUX("{\"name\":\"c1\",\"properties\":{\"image\":\"i\",\"resources\":{\"requests\":"
           "{\"cpu\":1,\"memoryInGB\":1}}}}," CONT("c2", ",\"command\":[\"sh\",\"-c\",\"a\\u001bb\"]"),
           ""), "ControlCharacterNotAllowed", "properties.containers[1].properties.command[2]"},
    {LINUX(CONT("c1", ",\"environmentVariables\":[{\"name\":\"A\\tB\",\"value\":\"v\"}]"), ""),
     "ControlCharacterNotAllowed", CP "environmentVariables[0].name"},
    {LINUX(CONT("c1", ",\"environmentVariables\":[{\"name\":\"A\",\"value\":\"v\\u007f\"}]"), ""),
     "ControlCharacterNotAllowed", CP "environmentVariables[0].value"},
    {LINUX(CONT("c1", ",\"environmentVariables\":[{\"name\":\"A\",\"secureValue\":\"\\u0007x\"}]"), ""),
     "ControlCharacterNotAllowed", CP "environmentVariables[0].secureValue"},
    {LINUX(CONT("c1", ",\"environmentVariables\":[{\"name\":\"A\",\"value\":\"v\",\"secureValue\":\"s\"}]"), ""),
     "InvalidEnvironmentVariable", CP "environmentVariables[0]"},
    {LINUX(MOUNT("{\"name\":\"v1\",\"mountPath\":\"/a\\nb\"}"), VOL("{\"name\":\"v1\",\"emptyDir\":{}}")),
     "ControlCharacterNotAllowed", CP "volumeMounts[0].mountPath"},
    {LINUX(C1, VOL("{\"name\":\"v1\",\"gitRepo\":{\"repository\":\"r\\r\"}}")),
     "ControlCharacterNotAllowed", "properties.volumes[0].gitRepo.repository"},
    {"{\"tags\":{\"a\":\"b\\n\"},\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}",
     "ControlCharacterNotAllowed", "tags.a"},
    {LINUX(PROBE("{\"exec\":{\"command\":[\"x\\u0001\"]}}"), ""), "ControlCharacterNotAllowed",
     CP "livenessProbe.exec.command[0]"},
    {LINUX(C1, ",\"imageRegistryCredentials\":[{\"server\":\"r.io\\n\",\"username\":\"u\","
               "\"password\":\"p\"}]"),
     "ControlCharacterNotAllowed", "properties.imageRegistryCredentials[0].server"},
};

static void dump_error(const berth_error_t *err)
{
    size_t n = err->ndetails < BERTH_ERROR_DETAILS_MAX ? err->ndetails : BERTH_ERROR_DETAILS_MAX;
    for (size_t i = 0; i < n; i++)
        print_message("  %s at '%s': %s\n", err->details[i].name, err->details[i].target,
                      err->details[i].message);
}

static void test_each_rule(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        berth_error_t err;
        berth_group_t *g = (berth_group_t *)0x1;
        int rc = berth_group_parse(rules[i].doc, strlen(rules[i].doc), &g, &err);
        bool ok = rc == BERTH_EINVAL && g == NULL && err.code == BERTH_EINVAL &&
                  err.ndetails == 1 && strcmp(err.name, rules[i].name) == 0 &&
                  strcmp(err.target, rules[i].target) == 0 && err.message[0] != '\0';
        if (!ok) {
            print_message("rule %zu: expected %s at '%s', got rc %d:\n", i, rules[i].name,
                          rules[i].target, rc);
            dump_error(&err);
            if (rc == 0)
                berth_group_free(g);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* The OCI distribution grammar, reference by reference. */
static void test_image_grammar(void **state)
{
    (void)state;
    static const char hex64[] =
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char buf[2048];
    const char *valid[] = {
        "busybox", "library/busybox:1.36", "localhost:5000/a/b:tag", "localhost/a",
        "[::1]:5000/a", "[fe80::1]/a/b", "reg.io/a__b/c-d.e/f---g:V1_2.3-x",
        "Registry.Example/x", "a:latest", "mcr.microsoft.com/windows/servercore:ltsc2022",
        "127.0.0.1:65535/a", "a/b/c/d/e",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        char why[160] = "";
        if (!berth__image_ref_is_valid(valid[i], why, sizeof why))
            fail_msg("'%s' refused: %s", valid[i], why);
    }
    snprintf(buf, sizeof buf, "reg.io/a@sha256:%s", hex64);
    assert_true(berth__image_ref_is_valid(buf, NULL, 0));
    snprintf(buf, sizeof buf, "reg.io/a:t@sha512:%s%s", hex64, hex64);
    assert_true(berth__image_ref_is_valid(buf, NULL, 0));
    /* A 128-character tag and a 255-character name pass; one more fails. */
    memset(buf, 0, sizeof buf);
    memcpy(buf, "a:", 2);
    memset(buf + 2, 't', 128);
    assert_true(berth__image_ref_is_valid(buf, NULL, 0));
    buf[130] = 't';
    assert_false(berth__image_ref_is_valid(buf, NULL, 0));
    memset(buf, 0, sizeof buf);
    memset(buf, 'a', 255);
    assert_true(berth__image_ref_is_valid(buf, NULL, 0));
    buf[255] = 'a';
    assert_false(berth__image_ref_is_valid(buf, NULL, 0));

    const char *invalid[] = {
        "", "busy\nbox\x01", "busybox\" level=error msg=\"FORGED", "busy box:latest",
        "../../etc/passwd", "Busybox", "library/BusyBox", "a//b", ":tag", "a/", "/a", "a:",
        "a@", "-a", "a-", "a..b", "a___b", "a._b", "a:-t", "a:t!", "reg.io/a@sha256:abc",
        "reg.io/a@md5:0123456789abcdef0123456789abcdef", "reg.io:0/a", "reg.io:65536/a",
        "reg.io:/a", "-reg.io/a", "reg-.io/a", "reg..io/a", "[]/a", "[::1/a", "[::1]x/a",
        "a\x7f", "caf\xc3\xa9", "a@sha256:", "a:b:c",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        char why[160] = "";
        if (berth__image_ref_is_valid(invalid[i], why, sizeof why))
            fail_msg("invalid reference %zu accepted", i);
        assert_true(why[0] != '\0');
    }
    snprintf(buf, sizeof buf, "reg.io/a@sha256:%.63sA", hex64);
    assert_false(berth__image_ref_is_valid(buf, NULL, 0));
    /* 20,000 'a's: too long, refused before any other reading. */
    static char huge[20001];
    memset(huge, 'a', 20000);
    assert_false(berth__image_ref_is_valid(huge, NULL, 0));
    assert_false(berth__image_ref_is_valid(NULL, NULL, 0));
}

/* Documents near each rule that must pass. */
static void test_near_misses_accepted(void **state)
{
    (void)state;
    static const char *const docs[] = {
        /* same port, different protocols */
        LINUX(CONT("c1", ",\"ports\":[{\"port\":53}]") "," CONT("c2", ",\"ports\":[{\"port\":53,\"protocol\":\"UDP\"}]"),
              ",\"ipAddress\":{\"type\":\"Private\",\"ports\":[{\"port\":53,\"protocol\":\"udp\"}]}"),
        /* a limit up to the group's total request */
        LINUX(CONT_RES("c1", "{\"cpu\":1,\"memoryInGB\":1}", ",\"limits\":{\"cpu\":2,\"memoryInGB\":2}}")
              "," C2, ""),
        /* the same volume mounted twice at different paths; gitRepo dir "a..b" */
        LINUX(MOUNT("{\"name\":\"v1\",\"mountPath\":\"/a\"},{\"name\":\"v1\",\"mountPath\":\"/b\"}"),
              VOL("{\"name\":\"v1\",\"gitRepo\":{\"repository\":\"r\",\"directory\":\"a..b/.c\"}}")),
        /* empty secret volume and valid base64 */
        LINUX(C1, VOL("{\"name\":\"v1\",\"secret\":{}},{\"name\":\"v2\",\"secret\":{\"a\":\"\",\"b\":\"YQ==\",\"c\":\"YWI=\"}}")),
        /* a Windows group with one container */
        GROUP("Windows", CONT("c1", ",\"ports\":[{\"port\":80}]"), ",\"sku\":\"Standard\""),
        /* line breaks and TABs in environment values and configMap contents */
        LINUX(CONT("c1", ",\"environmentVariables\":[{\"name\":\"PEM\",\"value\":\"a\\r\\nb\\tc\"},"
                         "{\"name\":\"S\",\"secureValue\":\"x\\ny\"}],"
                         "\"configMap\":{\"keyValuePairs\":{\"f\":\"l1\\nl2\"}}"), ""),
        /* an image with a registry, a port, a path, a tag and a digest */
        LINUX(IMG("localhost:5000/a/b:tag@sha256:"
                  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), ""),
        /* 63-character names */
        "{\"name\":\"a23456789012345678901234567890123456789012345678901234567890123\","
        "\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        berth_error_t err;
        berth_group_t *g = NULL;
        int rc = berth_group_parse(docs[i], strlen(docs[i]), &g, &err);
        if (rc != 0) {
            dump_error(&err);
            fail_msg("document %zu refused", i);
        }
        berth_group_free(g);
    }
}

/* Thousands of equal ports: every duplicate reported, found by sorting
 * rather than by comparing every pair. */
static void test_many_duplicates(void **state)
{
    (void)state;
    const size_t nports = 5000;
    size_t cap = 256 + nports * 16;
    char *doc = malloc(cap);
    assert_non_null(doc);
    size_t k = (size_t)snprintf(doc, cap, "{\"properties\":{\"osType\":\"Linux\",\"containers\":"
                                "[{\"name\":\"c\",\"properties\":{\"image\":\"i\",\"resources\":"
                                "{\"requests\":{\"cpu\":1,\"memoryInGB\":1}},\"ports\":[");
    for (size_t i = 0; i < nports; i++)
        k += (size_t)snprintf(doc + k, cap - k, "%s{\"port\":%u}", i > 0 ? "," : "",
                              (unsigned)(i % 2500) + 1);
    snprintf(doc + k, cap - k, "]}}]}}");
    berth_error_t err;
    berth_group_t *g = NULL;
    assert_int_equal(berth_group_parse(doc, strlen(doc), &g, &err), BERTH_EINVAL);
    assert_null(g);
    assert_int_equal(err.ndetails, nports / 2);
    assert_string_equal(err.name, "DuplicateContainerPort");
    /* Reported in document order: the first repeat is port 1 at index 2500. */
    assert_string_equal(err.target, "properties.containers[0].properties.ports[2500].port");
    free(doc);
}

/* ---- engine tables -------------------------------------------------------- */

static berth_group_t *parse_ok(const char *json)
{
    berth_error_t err;
    berth_group_t *g = NULL;
    if (berth_group_parse(json, strlen(json), &g, &err) != 0) {
        dump_error(&err);
        fail_msg("document refused");
    }
    return g;
}

/* Runs berth__group_request on a default configuration and expects the
 * single violation `name`; returns the error for further checks. */
static berth_error_t expect_engine(berth__config_t *cfg, const char *json, int code,
                                   const char *name, const char *target)
{
    berth_group_t *g = parse_ok(json);
    berth_error_t err;
    berth_request_t r;
    memset(&r, 0xab, sizeof r);
    berth_request_t before = r;
    int rc = berth__group_request(cfg, g, &r, &err);
    if (rc != code || err.ndetails != 1 || strcmp(err.name, name) != 0 ||
        (target != NULL && strcmp(err.target, target) != 0)) {
        dump_error(&err);
        fail_msg("expected %s at '%s' (rc %d)", name, target ? target : "", rc);
    }
    /* A failing call leaves the output alone. */
    assert_memory_equal(&r, &before, sizeof r);
    berth_group_free(g);
    return err;
}

static int request(berth__config_t *cfg, const char *json, berth_request_t *r)
{
    berth_group_t *g = parse_ok(json);
    berth_error_t err;
    int rc = berth__group_request(cfg, g, r, &err);
    if (rc != 0)
        dump_error(&err);
    berth_group_free(g);
    return rc;
}

#define GPU_CONT(name, cpu, mem, count, sku)                                              \
    CONT_RES(name, "{\"cpu\":" cpu ",\"memoryInGB\":" mem ",\"gpu\":{\"count\":" count         \
                   ",\"sku\":\"" sku "\"}}", "}")
#define SIZED(name, cpu, mem) CONT_RES(name, "{\"cpu\":" cpu ",\"memoryInGB\":" mem "}", "}")

static void test_gpu_sku_table(void **state)
{
    (void)state;
    berth__config_t cfg;
    berth__config_init(&cfg, NULL);
    berth_error_t err = expect_engine(&cfg, LINUX(GPU_CONT("c1", "1", "1", "1", "T4"), ""),
                                      BERTH_EINVAL, "UnsupportedGpuSku",
                                      CP "resources.requests.gpu.sku");
    assert_non_null(strstr(err.message, "K80, P100, V100"));
    /* The count is the group's total: 2 + 1 K80s are not offered. */
    err = expect_engine(&cfg,
                        LINUX(GPU_CONT("c1", "1", "1", "2", "K80") "," GPU_CONT("c2", "1", "1", "1", "K80"),
                              ""),
                        BERTH_EINVAL, "UnsupportedGpuCount", "properties.containers");
    assert_non_null(strstr(err.message, "1, 2, 4"));
    berth_request_t r;
    assert_int_equal(request(&cfg, LINUX(GPU_CONT("c1", "1", "1", "2", "V100") "," GPU_CONT("c2", "1", "1", "2", "V100"), ""), &r), 0);
    assert_int_equal(r.demand.gpu_count, 4);
    assert_int_equal(r.demand.gpu_sku, 2);
    /* An operator's SKU is data: add T4 and the same document passes. */
    berth_gpu_sku_t t4 = {"T4", 1, {{1, 8000, 32 * 1024}}};
    assert_int_equal(berth__config_sku_add(&cfg, &t4, NULL), 0);
    assert_int_equal(request(&cfg, LINUX(GPU_CONT("c1", "1", "1", "1", "T4"), ""), &r), 0);
    assert_int_equal(r.demand.gpu_sku, 3);
}

static void test_group_limits(void **state)
{
    (void)state;
    berth__config_t cfg;
    berth__config_init(&cfg, NULL);
    berth_request_t r;
    /* 3.5 cores round to 4: at the limit.  4.5 round to 5: above it. */
    assert_int_equal(request(&cfg, LINUX(SIZED("c1", "2", "8") "," SIZED("c2", "1.5", "8"), ""), &r), 0);
    assert_int_equal(r.demand.millicores, 4000);
    berth_error_t e = expect_engine(&cfg, LINUX(SIZED("c1", "2", "1") "," SIZED("c2", "2.5", "1"), ""),
                                    BERTH_EINVAL, "CpuLimitExceeded", "properties.containers");
    /* Limits are stated as ACI states them: cores and GB, never millicores or MiB. */
    assert_string_equal(e.message, "The group requests 4.5 CPU cores (5 when rounded up to whole "
                                   "cores); the per-group limit is 4 cores.");
    e = expect_engine(&cfg, LINUX(SIZED("c1", "1", "16.001"), ""), BERTH_EINVAL,
                      "MemoryLimitExceeded", "properties.containers");
    assert_string_equal(e.message, "The group requests 16.001 GB of memory; the per-group limit "
                                   "is 16 GB.");
    /* GPU groups take their limits from the offer: 6 cores for one K80. */
    assert_int_equal(request(&cfg, LINUX(GPU_CONT("c1", "6", "56", "1", "K80"), ""), &r), 0);
    expect_engine(&cfg, LINUX(GPU_CONT("c1", "6.5", "1", "1", "K80"), ""), BERTH_EINVAL,
                  "CpuLimitExceeded", "properties.containers");
    expect_engine(&cfg, LINUX(GPU_CONT("c1", "1", "57", "1", "K80"), ""), BERTH_EINVAL,
                  "MemoryLimitExceeded", "properties.containers");
    cfg.limits.max_containers = 2;
    expect_engine(&cfg,
                  LINUX(C1 "," C2, ",\"initContainers\":[{\"name\":\"i\",\"properties\":{\"image\":\"b\"}}]"),
                  BERTH_EINVAL, "TooManyContainers", "properties.containers");
    cfg.limits.max_volumes = 1;
    expect_engine(&cfg, LINUX(C1, VOL("{\"name\":\"v1\",\"emptyDir\":{}},{\"name\":\"v2\",\"emptyDir\":{}}")),
                  BERTH_EINVAL, "TooManyVolumes", "properties.volumes");
    cfg.limits.max_ip_ports = 1;
    expect_engine(&cfg,
                  LINUX(CONT("c1", ",\"ports\":[{\"port\":1},{\"port\":2}]"),
                        ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":1},{\"port\":2}]}"),
                  BERTH_EINVAL, "TooManyIpAddressPorts", "properties.ipAddress.ports");
}

static void test_engine_violations_collected(void **state)
{
    (void)state;
    berth__config_t cfg;
    berth__config_init(&cfg, NULL);
    cfg.limits.max_containers = 1;
    berth_group_t *g = parse_ok(LINUX(SIZED("c1", "4", "20") "," GPU_CONT("c2", "1", "1", "1", "A100"), ""));
    berth_error_t err;
    berth_request_t r;
    assert_int_equal(berth__group_request(&cfg, g, &r, &err), BERTH_EINVAL);
    assert_int_equal(err.ndetails, 2);
    assert_string_equal(err.details[0].name, "UnsupportedGpuSku");
    assert_string_equal(err.details[1].name, "TooManyContainers");
    berth_group_free(g);
    /* A hand-built group gets the parse-level rules too. */
    berth_group_t empty;
    memset(&empty, 0, sizeof empty);
    assert_int_equal(berth__group_request(&cfg, &empty, &r, &err), BERTH_EINVAL);
    assert_int_equal(err.ndetails, 2);
}

static void test_public_wrappers(void **state)
{
    (void)state;
    berth_error_t err;
    berth_request_t r;
    assert_int_equal(berth_engine_group_validate(NULL, NULL, &err), BERTH_EINVAL);
    assert_int_equal(berth_engine_group_request(NULL, NULL, &r, &err), BERTH_EINVAL);
    berth_engine_t *engine = NULL;
    assert_int_equal(berth_engine_new(NULL, &engine, &err), 0);
    berth_group_t *good = parse_ok("{\"zones\":[\"z1\"],\"properties\":{\"osType\":\"Linux\",\"containers\":[" C1 "]}}");
    berth_group_t *bad = parse_ok(LINUX(GPU_CONT("c1", "1", "1", "1", "T4"), ""));
    /* Validation registers nothing; a request registers its zones. */
    assert_int_equal(berth_engine_group_validate(engine, good, &err), 0);
    assert_int_equal(berth__config_zone_id(berth__engine_config(engine), "z1", false), -1);
    assert_int_equal(berth_engine_group_request(engine, good, &r, &err), 0);
    assert_int_equal(r.zone_mask, 1);
    assert_int_equal(berth__config_zone_id(berth__engine_config(engine), "z1", false), 0);
    assert_int_equal(berth_engine_group_validate(engine, bad, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "UnsupportedGpuSku");
    assert_int_equal(berth_engine_group_request(engine, bad, &r, &err), BERTH_EINVAL);
    berth_group_free(good);
    berth_group_free(bad);
    berth_engine_free(engine);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_rule),
        cmocka_unit_test(test_image_grammar),
        cmocka_unit_test(test_near_misses_accepted),
        cmocka_unit_test(test_many_duplicates),
        cmocka_unit_test(test_gpu_sku_table),
        cmocka_unit_test(test_group_limits),
        cmocka_unit_test(test_engine_violations_collected),
        cmocka_unit_test(test_public_wrappers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
