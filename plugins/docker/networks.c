/*
 * networks.c: the docker plugin's virtual network subnets.  Each subnet a
 * group of this host joins is one engine network, created on first use:
 * the bridge driver, `Internal` (the engine routes nothing in or out of
 * it: no gateway to the outside, no published ports), IPAM with the
 * subnet's CIDR and its ".1" as the gateway, named from the subnet's id
 * (docker_subnet_network_name()) and labelled with the id, the CIDR and
 * the host.  Groups of one subnet share its bridge and reach each other
 * by address; the engine keeps other bridges (other subnets, the default
 * one of public groups) apart.
 *
 * It must never change or remove a network it finds: one that carries the
 * name with another CIDR is refused, and the operator removes it.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "docker.h"

#define LABEL_SUBNET "io.berth.subnet"
#define LABEL_CIDR "io.berth.subnet.cidr"

/* Contract: docker.h. */
void docker_subnet_network_name(const char *id, char *out, size_t cap)
{
    /* FNV-1a 64 of the id in lower case: ids compare without case. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = id; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        h = (h ^ (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c)) * 0x100000001b3ull;
    }
    /* The id's last segment (an ARM id's subnet name), in the characters
     * an engine's network name takes, for the operator's eye. */
    const char *tail = strrchr(id, '/');
    tail = tail != NULL ? tail + 1 : id;
    char readable[33];
    size_t n = 0;
    for (; *tail != '\0' && n < sizeof readable - 1; tail++) {
        unsigned char c = (unsigned char)*tail;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        readable[n++] = ok ? (char)c : '_';
    }
    readable[n] = '\0';
    snprintf(out, cap, "berth-sn-%s-%016llx", readable, (unsigned long long)h);
}

/* The first IPAM subnet of network `net` as the engine reports it, or "". */
static const char *network_cidr(json_t *net)
{
    json_t *config = json_object_get(json_object_get(net, "IPAM"), "Config");
    const char *cidr = json_string_value(json_object_get(json_array_get(config, 0), "Subnet"));
    return cidr != NULL ? cidr : "";
}

/* Looks network `name` up: 0 with *found, or the call's error. */
static int network_check(docker_ctx_t *ctx, const char *name, const char *cidr, bool *found,
                         berth_error_t *err)
{
    char path[160];
    snprintf(path, sizeof path, "/networks/%s", name);
    json_t *net = NULL;
    long status = 0;
    int rc = get_json(ctx, path, "NetworkUnavailable", &net, &status, err);
    *found = rc == 0 && net != NULL;
    if (*found && strcmp(network_cidr(net), cidr) != 0)
        rc = berth_error_set(err, BERTH_EIO, "SubnetNetworkConflict", "",
                             "the engine's network %s has subnet '%s', not the cell's '%s': "
                             "remove it once no container uses it", name, network_cidr(net),
                             cidr);
    json_decref(net);
    return rc;
}

/* Contract: docker.h. */
int docker_subnet_network(docker_ctx_t *ctx, const berth_runtime_group_t *group, char *name,
                          size_t cap, berth_error_t *err)
{
    uint32_t network;
    unsigned prefix;
    if (group->subnet_id == NULL || group->subnet_cidr == NULL ||
        group->subnet_address == NULL ||
        berth_subnet_cidr_parse(group->subnet_cidr, &network, &prefix, err) != 0)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                               "a group in a subnet needs the subnet's id, a valid CIDR and "
                               "its address");
    docker_subnet_network_name(group->subnet_id, name, cap);
    bool found = false;
    int rc = network_check(ctx, name, group->subnet_cidr, &found, err);
    if (rc != 0 || found)
        return rc;
    uint32_t gw = network + 1;
    char gateway[16];
    snprintf(gateway, sizeof gateway, "%u.%u.%u.%u", gw >> 24, (gw >> 16) & 255u,
             (gw >> 8) & 255u, gw & 255u);
    /* The host's end of the bridge takes no address (Docker's
     * inhibit_ipv4; Podman warns that it does not know the option): the
     * host cannot route between the subnet and its other bridges, so the
     * isolation holds even where the engine manages no firewall rules
     * (dockerd --iptables=false). */
    json_t *body = json_pack("{s:s, s:s, s:b, s:b, s:{s:s, s:[{s:s, s:s}]}, s:{s:s},"
                             " s:{s:s, s:s, s:s}}",
                             "Name", name, "Driver", "bridge", "Internal", 1,
                             "CheckDuplicate", 1, "IPAM", "Driver", "default", "Config",
                             "Subnet", group->subnet_cidr, "Gateway", gateway, "Options",
                             "com.docker.network.bridge.inhibit_ipv4", "true", "Labels",
                             PLUGIN_LABEL_HOST, ctx->host, LABEL_SUBNET, group->subnet_id,
                             LABEL_CIDR, group->subnet_cidr);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    engine_response_t r;
    rc = call(ctx, "POST", "/networks/create", text, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    free(text);
    if (rc != 0)
        return rc;
    if (r.status == 409) {
        /* Another create won the race: check what it made. */
        rc = network_check(ctx, name, group->subnet_cidr, &found, err);
    } else if (r.status != 201 && r.status != 200) {
        char what[192];
        snprintf(what, sizeof what, "creating network %s for subnet %s", name,
                 group->subnet_cidr);
        rc = engine_failure(&r, BERTH_EIO, "NetworkCreateFailed", what, group->spec, err);
    }
    engine_response_free(&r);
    return rc;
}
