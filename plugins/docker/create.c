/*
 * create.c: the docker plugin's creation of a group: its labels, the
 * sandbox container that owns the network namespace and the ports, and one
 * container per init container and container joined to it.
 *
 * Each port is published on the host port the agent asks for
 * (berth_runtime_group_t.host_ports: the one it had before) when nothing
 * on the host holds it, else on one the engine chooses; the engine binds
 * at start, so a port taken in between makes the start fail, and the
 * agent creates the group again without asking.
 *
 * With a gVisor runtime configured ("runtime" for Docker; for Podman,
 * whose Docker API ignores HostConfig.Runtime, "runtime_socket": a second
 * service on the same storage, started with the gVisor runtime, through
 * which the members are created), the group's container runs under it and
 * the sandbox container, which holds no code of the group's, under the
 * engine's default runtime; such a group has one container and
 * no init containers (docker_create says why).
 *
 * A group in a virtual network subnet (berth_runtime_group_t.subnet_id)
 * has its sandbox on the subnet's network (networks.c) at the address
 * berthd chose, and no published ports.
 *
 * It must never start what it creates (start is groups.c's) nor leave a
 * half-created group behind: a failed create removes what it made.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "docker.h"
#include "lib/base64.h"

/* ---- create ------------------------------------------------------------- */

static json_t *labels_for(docker_ctx_t *ctx, const berth_runtime_group_t *group,
                          const char *role, const char *container, size_t index)
{
    char gen[24], digest[24], idx[24];
    snprintf(gen, sizeof gen, "%llu", (unsigned long long)group->generation);
    snprintf(digest, sizeof digest, "%016llx", (unsigned long long)group->digest);
    snprintf(idx, sizeof idx, "%zu", index);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", PLUGIN_LABEL_HOST, ctx->host,
                     PLUGIN_LABEL_KEY, group->key, PLUGIN_LABEL_GENERATION, gen,
                     PLUGIN_LABEL_DIGEST, digest, PLUGIN_LABEL_ROLE, role,
                     PLUGIN_LABEL_CONTAINER, container ? container : "", PLUGIN_LABEL_INDEX,
                     idx);
}

static void add_ulimits(docker_ctx_t *ctx, json_t *hostcfg)
{
    if (!ctx->ulimits)
        return;
    json_object_set_new(hostcfg, "Ulimits",
                        json_pack("[{s:s, s:i, s:i}, {s:s, s:i, s:i}]", "Name", "nofile", "Soft",
                                  1024, "Hard", 1024, "Name", "nproc", "Soft", 1024, "Hard",
                                  1024));
}

/* Splits s on blanks into a new JSON array of strings. */
static json_t *words(const char *s)
{
    json_t *a = json_array();
    if (a == NULL || s == NULL)
        return a;
    const char *p = s;
    for (size_t guard = 0; *p && guard < 4096; guard++) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *q = p;
        while (*q && *q != ' ' && *q != '\t')
            q++;
        if (q > p)
            json_array_append_new(a, json_stringn(p, (size_t)(q - p)));
        p = q;
    }
    return a;
}

/* POSTs a create; stores the new object's id in id_out. */
/* Creates one object from `body` under `name` through the context's engine,
 * or (`member` under runtime_socket) through the gVisor one; its id goes to
 * id_out.  Returns 0, BERTH_EEXIST, BERTH_EIO or BERTH_ENOMEM. */
static int create_object(docker_ctx_t *ctx, const char *name, json_t *body,
                         const berth_group_t *spec, bool member, char *id_out, size_t id_cap,
                         berth_error_t *err)
{
    char *text = json_dumps(body, JSON_COMPACT);
    char *path = NULL;
    if (text == NULL || asprintf(&path, "/containers/create?name=%s", name) < 0) {
        free(text);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    engine_response_t r;
    int rc = member ? call_runtime(ctx, "POST", path, text, ENGINE_API_TIMEOUT_S, &r, err)
                    : call(ctx, "POST", path, text, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    /* The body may hold secure environment values. */
    explicit_bzero(text, strlen(text));
    free(text);
    free(path);
    if (rc != 0)
        return rc;
    if (r.status == 201 || r.status == 200) {
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "Id"));
        if (id == NULL)
            rc = berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                                 "creating %s: the engine sent no id", name);
        else
            snprintf(id_out, id_cap, "%s", id);
        json_decref(j);
    } else if (r.status == 409) {
        rc = engine_failure(&r, BERTH_EEXIST, "ContainerGroupExists", name, spec, err);
    } else {
        char what[128];
        snprintf(what, sizeof what, "creating %s", name);
        rc = engine_failure(&r, BERTH_EIO, "ContainerCreateFailed", what, spec, err);
    }
    engine_response_free(&r);
    return rc;
}

/* Bytes for thousandths of a GB, rounded up to a page. */
static int64_t memory_bytes(uint32_t milli_gb)
{
    if (milli_gb == 0)
        return 0;
    uint64_t bytes = ((uint64_t)milli_gb * 1024ull * 1024ull * 1024ull + 999) / 1000;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t p = page > 0 ? (uint64_t)page : 4096;
    return (int64_t)((bytes + p - 1) / p * p);
}

static uint32_t container_memory(const berth_container_t *c)
{
    if (c->has_limits && c->limits.memory_milli_gb > 0)
        return c->limits.memory_milli_gb;
    return c->requests.memory_milli_gb;
}

/* Whether host port hp (protocol proto) is free on address `addr` (an
 * IPv4 or IPv6 literal; "" or "0.0.0.0": every address) as far as the
 * plugin can tell: it binds a socket there and closes it at once.  An
 * address the plugin cannot bind to (not this host's) counts as free:
 * the engine has the last word. */
static bool host_port_free(const char *addr, uint32_t hp, berth_protocol_t proto)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (addr == NULL || addr[0] == '\0' || inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)hp);
        len = sizeof *in4;
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)hp);
        len = sizeof *in6;
    } else {
        return true;
    }
    int fd = socket(ss.ss_family,
                    (proto == BERTH_PROTOCOL_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true;
    /* A TCP port whose last connections linger in TIME_WAIT is free to
     * listen on (as the engine's proxy does, with SO_REUSEADDR); one a
     * socket listens on is not. */
    int one = 1;
    if (proto != BERTH_PROTOCOL_UDP)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool free_ = bind(fd, (struct sockaddr *)&ss, len) == 0 || errno != EADDRINUSE;
    close(fd);
    return free_;
}

/* The HostPort to ask for port p: the one the agent asks for when it looks
 * free, else "" (the engine chooses). */
static void wanted_host_port(docker_ctx_t *ctx, const berth_runtime_group_t *group,
                             const berth_port_t *p, char *out, size_t cap)
{
    out[0] = '\0';
    /* A document's protocol may be unset: TCP, as the status reports it. */
    bool udp = p->protocol == BERTH_PROTOCOL_UDP;
    for (size_t k = 0; group->host_ports != NULL && k < group->nhost_ports; k++) {
        const berth_published_port_t *w = &group->host_ports[k];
        if (w->port == p->port && (w->protocol == BERTH_PROTOCOL_UDP) == udp &&
            w->host_port > 0 &&
            w->host_port <= 65535 && host_port_free(ctx->publish_address, w->host_port,
                                                    p->protocol)) {
            snprintf(out, cap, "%u", w->host_port);
            return;
        }
    }
}

/* A group in a subnet: the sandbox joins the subnet's network (networks.c)
 * with the group's address instead of the default bridge, and publishes
 * nothing. */
static int join_subnet(docker_ctx_t *ctx, const berth_runtime_group_t *group, json_t *body,
                       json_t *hostcfg, berth_error_t *err)
{
    char net[96];
    int rc = docker_subnet_network(ctx, group, net, sizeof net, err);
    if (rc != 0)
        return rc;
    json_object_set_new(hostcfg, "NetworkMode", json_string(net));
    json_t *ipam = json_pack("{s:{s:{s:{s:s}}}}", "EndpointsConfig", net, "IPAMConfig",
                             "IPv4Address", group->subnet_address);
    if (ipam == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    json_object_set_new(body, "NetworkingConfig", ipam);
    return 0;
}

static int create_sandbox(docker_ctx_t *ctx, const berth_runtime_group_t *group,
                          const char *gid, char *sandbox_id, size_t cap, berth_error_t *err)
{
    const berth_group_t *spec = group->spec;
    bool private_net = group->subnet_id != NULL;
    json_t *body = json_object();
    json_t *hostcfg = json_object();
    json_t *exposed = json_object();
    json_t *bindings = json_object();
    if (!body || !hostcfg || !exposed || !bindings) {
        json_decref(body);
        json_decref(hostcfg);
        json_decref(exposed);
        json_decref(bindings);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    json_object_set_new(body, "Image", json_string(ctx->sandbox_image));
    json_object_set_new(body, "Cmd", json_pack("[s, s, s]", "sh", "-c", SANDBOX_SCRIPT));
    json_object_set_new(body, "Labels", labels_for(ctx, group, "sandbox", "", 0));
    if (spec->name != NULL && strlen(spec->name) <= 63)
        json_object_set_new(body, "Hostname", json_string(spec->name));
    for (size_t i = 0; !private_net && spec->ip_address && i < spec->ip_address->nports; i++) {
        const berth_port_t *p = &spec->ip_address->ports[i];
        char k[32];
        snprintf(k, sizeof k, "%u/%s", p->port, p->protocol == BERTH_PROTOCOL_UDP ? "udp" : "tcp");
        char hp[16];
        wanted_host_port(ctx, group, p, hp, sizeof hp);
        json_object_set_new(exposed, k, json_object());
        json_object_set_new(bindings, k,
                            json_pack("[{s:s, s:s}]", "HostIp", ctx->publish_address,
                                      "HostPort", hp));
    }
    json_object_set_new(body, "ExposedPorts", exposed);
    json_object_set_new(hostcfg, "PortBindings", bindings);
    json_object_set_new(hostcfg, "RestartPolicy", json_pack("{s:s}", "Name", "no"));
    add_ulimits(ctx, hostcfg);
    if (spec->dns_config != NULL) {
        json_t *ns = json_array();
        for (size_t i = 0; i < spec->dns_config->nname_servers; i++)
            json_array_append_new(ns, json_string(spec->dns_config->name_servers[i]));
        json_object_set_new(hostcfg, "Dns", ns);
        if (spec->dns_config->search_domains)
            json_object_set_new(hostcfg, "DnsSearch", words(spec->dns_config->search_domains));
        if (spec->dns_config->options)
            json_object_set_new(hostcfg, "DnsOptions", words(spec->dns_config->options));
    }
    json_object_set_new(body, "HostConfig", hostcfg);
    int rc = private_net ? join_subnet(ctx, group, body, hostcfg, err) : 0;
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    char name[64];
    snprintf(name, sizeof name, "berth-%s-sandbox", gid);
    /* The sandbox image is the plugin's business, not the document's. */
    rc = image_present(ctx, ctx->sandbox_image, err);
    if (rc == 0)
        rc = pull_image(ctx, ctx->sandbox_image, NULL, err);
    if (rc >= 0)
        rc = create_object(ctx, name, body, spec, false, sandbox_id, cap, err);
    json_decref(body);
    return rc;
}

/* 1 when the image has an entrypoint of its own, 0 when not (or unknown). */
static int image_has_entrypoint(docker_ctx_t *ctx, const char *image)
{
    char *esc = engine_api_escape(image);
    char *path = NULL;
    if (esc == NULL || asprintf(&path, "/images/%s/json", esc) < 0) {
        free(esc);
        return 0;
    }
    free(esc);
    json_t *j = NULL;
    long status = 0;
    berth_error_t ignored;
    int has = 0;
    if (get_json(ctx, path, "RuntimeError", &j, &status, &ignored) == 0 && j != NULL) {
        json_t *ep = json_object_get(json_object_get(j, "Config"), "Entrypoint");
        has = json_is_array(ep) && json_array_size(ep) > 0;
    }
    json_decref(j);
    free(path);
    return has;
}

static int create_member(docker_ctx_t *ctx, const berth_runtime_group_t *group,
                         const char *gid, const char *sandbox_id, bool init, size_t index,
                         berth_error_t *err)
{
    const berth_group_t *spec = group->spec;
    const berth_container_t *c = init ? &spec->init_containers[index] : &spec->containers[index];
    volume_mount_t *mounts = calloc(BERTH_PLUGIN_CONTAINERS_MAX, sizeof *mounts);
    if (mounts == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    size_t nmounts = 0;
    int rc = volumes_mounts(&ctx->volumes, gid, spec, c, mounts, BERTH_PLUGIN_CONTAINERS_MAX,
                            &nmounts, err);
    if (rc != 0) {
        free(mounts);
        return rc;
    }
    json_t *body = json_object();
    json_t *hostcfg = json_object();
    json_t *env = json_array();
    json_t *binds = json_array();
    if (!body || !hostcfg || !env || !binds) {
        json_decref(body);
        json_decref(hostcfg);
        json_decref(env);
        json_decref(binds);
        free(mounts);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    json_object_set_new(body, "Image", json_string(c->image ? c->image : ""));
    if (c->has_command && c->ncommand > 0) {
        json_t *cmd = json_array();
        size_t first = 0;
        if (image_has_entrypoint(ctx, c->image ? c->image : "")) {
            /* ACI's command replaces the image's entrypoint too. */
            json_object_set_new(body, "Entrypoint", json_pack("[s]", c->command[0]));
            first = 1;
        }
        for (size_t i = first; i < c->ncommand; i++)
            json_array_append_new(cmd, json_string(c->command[i]));
        json_object_set_new(body, "Cmd", cmd);
    }
    for (size_t i = 0; i < c->nenv; i++) {
        const berth_env_var_t *e = &c->env[i];
        const char *v = e->secure_value ? e->secure_value : e->value ? e->value : "";
        char *kv = NULL;
        if (asprintf(&kv, "%s=%s", e->name, v) < 0)
            continue;
        json_array_append_new(env, json_string(kv));
        explicit_bzero(kv, strlen(kv));
        free(kv);
    }
    json_object_set_new(body, "Env", env);
    json_object_set_new(body, "Labels", labels_for(ctx, group, init ? "init" : "container",
                                                   c->name, index));
    for (size_t i = 0; i < nmounts; i++) {
        char *b = NULL;
        if (asprintf(&b, "%s:%s%s", mounts[i].source, mounts[i].target,
                     mounts[i].read_only ? ":ro" : "") >= 0) {
            json_array_append_new(binds, json_string(b));
            free(b);
        }
    }
    free(mounts);
    json_object_set_new(hostcfg, "Binds", binds);
    char netmode[128];
    snprintf(netmode, sizeof netmode, "container:%s", sandbox_id);
    json_object_set_new(hostcfg, "NetworkMode", json_string(netmode));
    if (ctx->runtime != NULL)
        json_object_set_new(hostcfg, "Runtime", json_string(ctx->runtime));
    json_object_set_new(hostcfg, "RestartPolicy", json_pack("{s:s}", "Name", "no"));
    add_ulimits(ctx, hostcfg);
    uint32_t millicores;
    uint32_t memory_milli_gb = 0;
    if (init) {
        /* Init containers run alone before the others: the group's whole. */
        millicores = group->millicores;
        for (size_t i = 0; i < spec->ncontainers; i++)
            memory_milli_gb += spec->containers[i].requests.memory_milli_gb;
    } else {
        millicores = group->shares ? group->shares[index] : 0;
        memory_milli_gb = container_memory(c);
    }
    if (millicores > 0) {
        uint32_t cpu_shares = millicores * 1024u / 1000u;
        json_object_set_new(hostcfg, "NanoCpus", json_integer((json_int_t)millicores * 1000000));
        json_object_set_new(hostcfg, "CpuShares", json_integer(cpu_shares < 2 ? 2 : cpu_shares));
    }
    if (memory_milli_gb > 0)
        json_object_set_new(hostcfg, "Memory", json_integer(memory_bytes(memory_milli_gb)));
    json_object_set_new(body, "HostConfig", hostcfg);
    char name[64];
    snprintf(name, sizeof name, "berth-%s-%s-%zu", gid, init ? "init" : "c", index);
    char id[72];
    rc = create_object(ctx, name, body, spec, true, id, sizeof id, err);
    json_decref(body);
    return rc;
}


int docker_create(void *c, const berth_runtime_group_t *group, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    if (group == NULL || group->key == NULL || group->spec == NULL)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                               "create needs a group with a key and a document");
    const berth_group_t *spec = group->spec;
    if (spec->ncontainers + spec->ninit_containers > BERTH_PLUGIN_CONTAINERS_MAX)
        return berth_error_set(err, BERTH_EINVAL, "TooManyContainers", "properties.containers",
                               "a group may hold at most %d containers",
                               BERTH_PLUGIN_CONTAINERS_MAX);
    /* Each container under gVisor is a sandbox with a network stack of its
     * own, which takes the namespace's addresses over: two containers
     * could not share localhost, and an init container would leave the
     * next one without a network. */
    if (docker_sandboxed(ctx) && (spec->ncontainers != 1 || spec->ninit_containers > 0))
        return berth_error_set(err, BERTH_EINVAL, "SandboxedGroupUnsupported",
                               spec->ninit_containers > 0 ? "properties.initContainers"
                                                          : "properties.containers",
                               "this host runs groups under gVisor (%s), which takes one "
                               "container and no init containers per group",
                               docker_sandbox_name(ctx));
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    int rc = load_group(ctx, group->key, g, err);
    size_t existing = g->n;
    free(g);
    if (rc != 0)
        return rc;
    if (existing > 0)
        return berth_error_set(err, BERTH_EEXIST, "ContainerGroupExists", "",
                               "the runtime already holds container group %s", group->key);
    char gid[PLUGIN_ID_LEN + 1];
    plugin_group_id(ctx->host, group->key, gid);
    rc = volumes_prepare(&ctx->volumes, gid, spec, err);
    if (rc != 0)
        return rc;
    char sandbox_id[72];
    rc = create_sandbox(ctx, group, gid, sandbox_id, sizeof sandbox_id, err);
    if (rc == BERTH_EEXIST) {
        /* Another creator won the race: what exists is theirs. */
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < spec->ninit_containers; i++)
        rc = create_member(ctx, group, gid, sandbox_id, true, i, err);
    for (size_t i = 0; rc == 0 && i < spec->ncontainers; i++)
        rc = create_member(ctx, group, gid, sandbox_id, false, i, err);
    if (rc != 0) {
        berth_error_t ignored;
        docker_remove(ctx, group->key, &ignored);
        if (rc == BERTH_EEXIST)
            rc = BERTH_EIO;
        if (err)
            err->code = rc;
    }
    return rc;
}
