/*
 * validate_text.c: the rules on the text a container group carries into
 * logs and runtimes (berth__group_check_text(), run by berth__group_check()):
 * image references follow the OCI distribution grammar
 * (berth__image_ref_is_valid()), no string holds a C0 control character or
 * DEL, and an environment variable gives `value` or `secureValue`, not both.
 *
 * Which strings may hold line breaks: environment variable values (plain
 * and secure) and configMap file contents may hold TAB, LF and CR (a PEM
 * certificate or a script in a variable is common, and the runtime hands
 * them to the process, never to a log line); every other string -- names,
 * images, command and probe arguments, paths, tags, registry and DNS
 * settings -- holds none.  Secret volume contents are base64 (validate.c).
 *
 * It never changes a group and never quotes the text it refuses into a
 * message: the message names the JSON path and the byte's code alone, so a
 * secret or a forged log line never reaches an answer or a log.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "model-internal.h"

/* The first C0 control character or DEL in s (TAB, LF and CR allowed when
 * `lines`), or -1. */
static int control_char(const char *s, bool lines)
{
    for (const unsigned char *p = (const unsigned char *)s; p != NULL && *p != '\0'; p++)
        if ((*p < 0x20 || *p == 0x7f) && !(lines && (*p == '\t' || *p == '\n' || *p == '\r')))
            return *p;
    return -1;
}

/* Reports string s at `target` when it holds a refused control character. */
static size_t text(berth_error_t *err, const char *s, bool lines, const char *target)
{
    int c = control_char(s, lines);
    if (c < 0)
        return 0;
    return berth__report(err, "ControlCharacterNotAllowed", target,
                         "The value at '%s' holds the control character U+%04X; %s.", target,
                         (unsigned)c,
                         lines ? "only TAB, LF and CR are allowed there"
                               : "no control character is allowed there");
}

/* text() at "<prefix><suffix>". */
static size_t text_at(berth_error_t *err, const char *s, bool lines, const char *prefix,
                      const char *suffix)
{
    if (s == NULL || control_char(s, lines) < 0)
        return 0;
    char t[BERTH_ERROR_TARGET_MAX];
    snprintf(t, sizeof t, "%s%s", prefix, suffix);
    return text(err, s, lines, t);
}

/* text() on each of strings[0..n) at "<prefix><key>[i]". */
static size_t text_list(berth_error_t *err, char *const *strings, size_t n, const char *prefix,
                        const char *key)
{
    size_t bad = 0;
    char t[BERTH_ERROR_TARGET_MAX];
    for (size_t i = 0; strings != NULL && i < n; i++) {
        if (strings[i] == NULL || control_char(strings[i], false) < 0)
            continue;
        snprintf(t, sizeof t, "%s%s[%zu]", prefix, key, i);
        bad += text(err, strings[i], false, t);
    }
    return bad;
}

/* text() on the names (never line breaks) and values of pairs[0..n) at
 * "<prefix>.<name>" (named members) or "<prefix>[i].name/value" (arrays). */
static size_t text_pairs(berth_error_t *err, const berth_pair_t *pairs, size_t n,
                         const char *prefix, bool array, bool value_lines)
{
    size_t bad = 0;
    char t[BERTH_ERROR_TARGET_MAX];
    for (size_t i = 0; pairs != NULL && i < n; i++) {
        const berth_pair_t *p = &pairs[i];
        if (array)
            snprintf(t, sizeof t, "%s[%zu].", prefix, i);
        else
            snprintf(t, sizeof t, "%s", prefix);
        bad += text_at(err, p->name, false, t, array ? "name" : "");
        /* A member's path names it, unless its name is the refused text. */
        if (!array && p->name != NULL && control_char(p->name, false) < 0)
            snprintf(t, sizeof t, "%s.%.100s", prefix, p->name);
        bad += text_at(err, p->value, value_lines, t, array ? "value" : "");
    }
    return bad;
}

static size_t check_probe(const berth_probe_t *p, const char *prefix, berth_error_t *err)
{
    if (p == NULL)
        return 0;
    char t[BERTH_ERROR_TARGET_MAX];
    snprintf(t, sizeof t, "%sexec.", prefix);
    size_t bad = text_list(err, p->exec_command, p->nexec_command, t, "command");
    snprintf(t, sizeof t, "%shttpGet.", prefix);
    bad += text_at(err, p->http_path, false, t, "path");
    snprintf(t, sizeof t, "%shttpGet.httpHeaders", prefix);
    bad += text_pairs(err, p->http_headers, p->nhttp_headers, t, true, false);
    return bad;
}

static size_t check_container(const berth_container_t *c, const char *list, size_t i,
                              berth_error_t *err)
{
    char pre[96], t[BERTH_ERROR_TARGET_MAX]; /* pre: the longest is ~60 bytes */
    snprintf(pre, sizeof pre, "properties.%s[%zu].properties.", list, i);
    size_t bad = 0;
    char why[160];
    if (c->image != NULL && c->image[0] != '\0' &&
        !berth__image_ref_is_valid(c->image, why, sizeof why)) {
        snprintf(t, sizeof t, "%simage", pre);
        bad += berth__report(err, "InvalidImageReference", t,
                             "The image reference of container '%.63s' is not valid: %s.",
                             c->name != NULL && control_char(c->name, false) < 0 ? c->name : "",
                             why);
    }
    bad += text_list(err, c->command, c->ncommand, pre, "command");
    for (size_t k = 0; c->env != NULL && k < c->nenv; k++) {
        const berth_env_var_t *e = &c->env[k];
        snprintf(t, sizeof t, "%senvironmentVariables[%zu].", pre, k);
        bad += text_at(err, e->name, false, t, "name");
        bad += text_at(err, e->value, true, t, "value");
        bad += text_at(err, e->secure_value, true, t, "secureValue");
        if (e->value != NULL && e->secure_value != NULL) {
            t[strlen(t) - 1] = '\0';
            bad += berth__report(err, "InvalidEnvironmentVariable", t,
                                 "The environment variable '%.100s' gives both 'value' and "
                                 "'secureValue'; give one of them.",
                                 e->name != NULL && control_char(e->name, false) < 0 ? e->name
                                                                                     : "");
        }
    }
    for (size_t k = 0; c->mounts != NULL && k < c->nmounts; k++) {
        snprintf(t, sizeof t, "%svolumeMounts[%zu].", pre, k);
        bad += text_at(err, c->mounts[k].mount_path, false, t, "mountPath");
    }
    snprintf(t, sizeof t, "%sconfigMap.keyValuePairs", pre);
    bad += text_pairs(err, c->config_map, c->nconfig_map, t, false, true);
    snprintf(t, sizeof t, "%slivenessProbe.", pre);
    bad += check_probe(c->liveness, t, err);
    snprintf(t, sizeof t, "%sreadinessProbe.", pre);
    bad += check_probe(c->readiness, t, err);
    return bad;
}

static size_t check_volume(const berth_volume_t *v, size_t i, berth_error_t *err)
{
    char pre[64];
    snprintf(pre, sizeof pre, "properties.volumes[%zu].", i);
    size_t bad = text_at(err, v->share_name, false, pre, "azureFile.shareName") +
                 text_at(err, v->storage_account_name, false, pre,
                         "azureFile.storageAccountName") +
                 text_at(err, v->storage_account_key, false, pre,
                         "azureFile.storageAccountKey") +
                 text_at(err, v->repository, false, pre, "gitRepo.repository") +
                 text_at(err, v->directory, false, pre, "gitRepo.directory") +
                 text_at(err, v->revision, false, pre, "gitRepo.revision");
    for (size_t k = 0; v->secret_items != NULL && k < v->nsecret_items; k++)
        bad += text_at(err, v->secret_items[k].name, false, pre, "secret");
    return bad;
}

/* Contract: model-internal.h. */
size_t berth__group_check_text(const berth_group_t *g, berth_error_t *err)
{
    size_t bad = text_at(err, g->location, false, "", "location");
    bad += text_pairs(err, g->tags, g->ntags, "tags", false, false);
    bad += text_list(err, g->zones, g->nzones, "", "zones");
    for (size_t i = 0; g->containers != NULL && i < g->ncontainers; i++)
        bad += check_container(&g->containers[i], "containers", i, err);
    for (size_t i = 0; g->init_containers != NULL && i < g->ninit_containers; i++)
        bad += check_container(&g->init_containers[i], "initContainers", i, err);
    for (size_t i = 0; g->volumes != NULL && i < g->nvolumes; i++)
        bad += check_volume(&g->volumes[i], i, err);
    const berth_ip_address_t *ip = g->ip_address;
    if (ip != NULL)
        bad += text_at(err, ip->ip, false, "properties.ipAddress.", "ip") +
               text_at(err, ip->dns_name_label, false, "properties.ipAddress.", "dnsNameLabel") +
               text_at(err, ip->fqdn, false, "properties.ipAddress.", "fqdn");
    char t[BERTH_ERROR_TARGET_MAX];
    for (size_t i = 0; g->credentials != NULL && i < g->ncredentials; i++) {
        const berth_registry_credential_t *r = &g->credentials[i];
        snprintf(t, sizeof t, "properties.imageRegistryCredentials[%zu].", i);
        bad += text_at(err, r->server, false, t, "server") +
               text_at(err, r->username, false, t, "username") +
               text_at(err, r->password, false, t, "password") +
               text_at(err, r->identity, false, t, "identity") +
               text_at(err, r->identity_url, false, t, "identityUrl");
    }
    const berth_dns_config_t *d = g->dns_config;
    if (d != NULL)
        bad += text_list(err, d->name_servers, d->nname_servers, "properties.dnsConfig.",
                         "nameServers") +
               text_at(err, d->search_domains, false, "properties.dnsConfig.", "searchDomains") +
               text_at(err, d->options, false, "properties.dnsConfig.", "options");
    return bad;
}
