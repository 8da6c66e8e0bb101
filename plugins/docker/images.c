/*
 * images.c: the docker plugin's probe of the engine and its images: the
 * host's facts, the image list, and making sure an image is present
 * (pulled with the registry credential when one is given).
 *
 * It must never log or put in a message a registry password: the
 * X-Registry-Auth header goes to the engine only.
 */
#define _GNU_SOURCE
#include <errno.h>
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

/* ---- probe and images --------------------------------------------------- */

int docker_probe(void *c, berth_plugin_host_info_t *info, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    memset(info, 0, sizeof *info);
    json_t *v;
    int rc = get_json(ctx, "/version", "RuntimeUnavailable", &v, NULL, err);
    if (rc != 0)
        return rc;
    const char *version = json_string_value(json_object_get(v, "Version"));
    const char *platform = json_string_value(json_object_get(json_object_get(v, "Platform"),
                                                             "Name"));
    bool podman = platform && strstr(platform, "Podman") != NULL;
    size_t i;
    json_t *comp;
    json_array_foreach(json_object_get(v, "Components"), i, comp)
    {
        const char *name = json_string_value(json_object_get(comp, "Name"));
        if (name && strstr(name, "Podman")) {
            podman = true;
            const char *cv = json_string_value(json_object_get(comp, "Version"));
            if (cv)
                version = cv;
        }
    }
    snprintf(info->runtime, sizeof info->runtime, "%s %s%s", podman ? "podman" : "docker",
             version ? version : "unknown", docker_sandboxed(ctx) ? " with gVisor" : "");
    if (docker_sandboxed(ctx))
        info->features |= BERTH_HOST_SANDBOX;
    json_decref(v);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    info->cores = n > 0 ? (uint32_t)n : 0;
    struct sysinfo si;
    if (sysinfo(&si) == 0)
        info->memory_mib = (uint64_t)si.totalram * si.mem_unit / (1024 * 1024);
    else {
        long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
        info->memory_mib = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize >> 20 : 0;
    }
    info->os = BERTH_OS_LINUX;
    return 0;
}

int docker_images(void *c, berth_plugin_image_cb cb, void *data, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    json_t *list;
    int rc = get_json(ctx, "/images/json", "RuntimeError", &list, NULL, err);
    if (rc != 0)
        return rc;
    size_t i, j;
    json_t *img, *tag;
    json_array_foreach(list, i, img)
    {
        json_array_foreach(json_object_get(img, "RepoTags"), j, tag)
        {
            const char *t = json_string_value(tag);
            if (t && strcmp(t, "<none>:<none>") != 0)
                cb(t, data);
        }
    }
    json_decref(list);
    return 0;
}

/* Splits an image reference into repository and tag (or digest). */
static int split_image(const char *image, char **repo, char **tag)
{
    *repo = *tag = NULL;
    const char *at = strchr(image, '@');
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(image, ':');
    size_t rlen;
    const char *t;
    if (at != NULL) {
        rlen = (size_t)(at - image);
        t = at + 1;
    } else if (colon != NULL && (slash == NULL || colon > slash)) {
        rlen = (size_t)(colon - image);
        t = colon + 1;
    } else {
        rlen = strlen(image);
        t = "latest";
    }
    *repo = strndup(image, rlen);
    *tag = strdup(t);
    if (*repo == NULL || *tag == NULL) {
        free(*repo);
        free(*tag);
        *repo = *tag = NULL;
        return -1;
    }
    return 0;
}

/* 1 when the engine holds `image`, 0 when not, or an error. */
int image_present(docker_ctx_t *ctx, const char *image, berth_error_t *err)
{
    char *esc = engine_api_escape(image);
    char *path = NULL;
    if (esc == NULL || asprintf(&path, "/images/%s/json", esc) < 0) {
        free(esc);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    free(esc);
    engine_response_t r;
    int rc = call(ctx, "GET", path, NULL, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    free(path);
    if (rc != 0)
        return rc;
    if (r.status == 200)
        rc = 1;
    else if (r.status == 404)
        rc = 0;
    else
        rc = engine_failure(&r, BERTH_EIO, "ImagePullFailed", "inspecting the image", NULL,
                            err);
    engine_response_free(&r);
    return rc;
}

/* The X-Registry-Auth header line for cred, or NULL (out of memory). */
static char *registry_auth_header(const berth_registry_credential_t *cred)
{
    json_t *auth = json_pack("{s:s, s:s, s:s}", "username", cred->username ? cred->username : "",
                             "password", cred->password ? cred->password : "",
                             "serveraddress", cred->server ? cred->server : "");
    if (auth == NULL)
        return NULL;
    char *text = json_dumps(auth, JSON_COMPACT);
    json_decref(auth);
    if (text == NULL)
        return NULL;
    size_t tlen = strlen(text);
    char *b64 = berth__base64_encode(text, tlen, BERTH__BASE64_URL);
    explicit_bzero(text, tlen);
    free(text);
    if (b64 == NULL)
        return NULL;
    char *line = NULL;
    size_t blen = strlen(b64);
    if (asprintf(&line, "X-Registry-Auth: %s", b64) < 0)
        line = NULL;
    explicit_bzero(b64, blen);
    free(b64);
    return line;
}

/* Scans a pull's streamed JSON lines for an error into msg; true when one
 * was found. */
static bool pull_stream_error(const char *body, size_t len, char *msg, size_t cap)
{
    const char *p = body, *end = body + len;
    size_t guard = 0;
    while (p < end && guard++ < 1000000) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t llen = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *j = llen ? json_loadb(p, llen, 0, NULL) : NULL;
        const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
        if (e == NULL && j)
            e = json_string_value(
                json_object_get(json_object_get(j, "errorDetail"), "message"));
        if (e != NULL) {
            snprintf(msg, cap, "%s", e);
            json_decref(j);
            return true;
        }
        json_decref(j);
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return false;
}

int pull_image(docker_ctx_t *ctx, const char *image,
               const berth_registry_credential_t *cred, berth_error_t *err)
{
    char *repo, *tag;
    if (split_image(image, &repo, &tag) != 0)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    char *erepo = engine_api_escape(repo), *etag = engine_api_escape(tag);
    char *path = NULL;
    if (erepo == NULL || etag == NULL ||
        asprintf(&path, "/images/create?fromImage=%s&tag=%s", erepo, etag) < 0)
        path = NULL;
    free(erepo);
    free(etag);
    free(repo);
    free(tag);
    char *auth = path && cred ? registry_auth_header(cred) : NULL;
    if (path == NULL || (cred && auth == NULL)) {
        free(path);
        free(auth);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    const char *headers[] = {auth, NULL};
    engine_response_t r;
    int rc = call(ctx, "POST", path, NULL, auth ? headers : NULL, ENGINE_API_PULL_TIMEOUT_S, &r,
                  err);
    free(path);
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    if (rc != 0) {
        berth_error_t inner = *err;
        return berth_error_set(err, BERTH_EIO, "ImagePullFailed", "",
                               "pulling %s failed: %s", image, inner.message);
    }
    char msg[MESSAGE_MAX];
    if (r.status != 200) {
        engine_response_message(&r, msg, sizeof msg);
        rc = berth_error_set(err, BERTH_EIO, "ImagePullFailed", "",
                             "pulling %s failed (engine answered %ld): %s", image, r.status,
                             msg);
    } else if (pull_stream_error(r.body, r.len, msg, sizeof msg)) {
        rc = berth_error_set(err, BERTH_EIO, "ImagePullFailed", "", "pulling %s failed: %s",
                             image, msg);
    }
    engine_response_free(&r);
    if (rc != 0)
        return rc;
    rc = image_present(ctx, image, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return berth_error_set(err, BERTH_EIO, "ImagePullFailed", "",
                               "pulling %s ended without the image", image);
    return 0;
}

int docker_image_ensure(void *c, const char *image,
                        const berth_registry_credential_t *cred, bool *cached,
                        berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    if (cached)
        *cached = false;
    if (image == NULL || *image == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidImage", "", "no image named");
    int rc = image_present(ctx, image, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        if (cached)
            *cached = true;
        return 0;
    }
    return pull_image(ctx, image, cred, err);
}
