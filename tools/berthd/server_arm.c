/*
 * server_arm.c: what the Azure CLI (az) asks of a cloud around the ACI API:
 * the ARM metadata endpoints (GET /metadata/endpoints, also as
 * //metadata/endpoints), an ADFS-style authority under /adfs (its OpenID
 * configuration and an OAuth 2.0 token endpoint for client credentials),
 * the subscription list (GET /subscriptions) and resource groups
 * (GET/HEAD /subscriptions/S/resourcegroups/RG).
 *
 * The metadata and the authority are open (no bearer token: they are how a
 * client gets one); every URL they name is built from cfg->public_url, never
 * from a request's Host header.  The token endpoint checks client_id and
 * client_secret against the tokens file (server_auth.c) and answers an
 * access token for the subscriptions of the client's line; its errors are
 * OAuth 2.0's ({"error", "error_description"}, RFC 6749 5.2), the form the
 * client libraries read, the rest answers CloudErrors.  Berth keeps no
 * resource groups: every valid name exists, in cfg->location.
 *
 * Everything here runs on the loop and answers at once: no I/O but the
 * reply.  It must never log or echo a client secret or an access token.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "server-internal.h"
#include "query.h"
#include "resource.h"

#define ARM_TENANT "adfs"           /* the tenant az names an ADFS authority */
#define ARM_FORM_VALUE_MAX 8192     /* bytes of one decoded form value      */

static bool ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* cfg->public_url, or (a configuration made without one) the listen
 * address's, in out[cap]. */
static void arm_public_url(const bd_config_t *cfg, const bd_server_t *srv, char *out, size_t cap)
{
    if (cfg->public_url[0] != '\0') {
        snprintf(out, cap, "%s", cfg->public_url);
        return;
    }
    bool v6 = strchr(cfg->listen_addr, ':') != NULL;
    snprintf(out, cap, "%s://%s%s%s:%u", srv != NULL && srv->ssl != NULL ? "https" : "http",
             v6 ? "[" : "", cfg->listen_addr, v6 ? "]" : "", (unsigned)cfg->listen_port);
}

/* Whether the request names an api-version (any value: these routes are
 * not versioned); replies the CloudError when it does not. */
static bool arm_api_version(const bd_request_t *req, bd_reply_t *reply)
{
    char v[64];
    int q = bd_query_get(req->query, "api-version", v, sizeof v);
    if (q == 1 && v[0] != '\0')
        return true;
    bd_reply_error(reply, 400, q == 0 ? "MissingApiVersionParameter" : "InvalidApiVersionParameter",
                   "api-version",
                   "The api-version query parameter (?api-version=) is required and must not "
                   "be empty.");
    return false;
}

/* Sends an OAuth 2.0 error (RFC 6749 5.2). */
static void oauth_error(bd_reply_t *reply, int status, const char *error, const char *description)
{
    static const char *const nocache[] = {"Cache-Control", "no-store", "Pragma", "no-cache", NULL};
    bd_reply_send(reply, status,
                  json_pack("{s:s, s:s}", "error", error, "error_description", description),
                  nocache);
}

/* ---- the open routes: metadata and the authority ----------------------------------------- */

/* Contract: server-internal.h. */
bool bd_arm_open_path(const char *path)
{
    size_t n = strlen("/metadata");
    if (strncmp(path, "/metadata", n) == 0 && (path[n] == '\0' || path[n] == '/'))
        return true;
    n = strlen("/adfs");
    return strncmp(path, "/adfs", n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void arm_metadata(bd_server_t *srv, const bd_request_t *req, bd_reply_t *reply)
{
    bd_reply_route(reply, "Arm_MetadataEndpoints");
    if (req->method != BD_GET) {
        bd_reply_error(reply, 405, "MethodNotAllowed", "",
                       "the method is not allowed on this resource");
        return;
    }
    if (!arm_api_version(req, reply))
        return;
    char pub[256], root[260], login[264];
    arm_public_url(srv->cfg, srv, pub, sizeof pub);
    snprintf(root, sizeof root, "%s/", pub);
    snprintf(login, sizeof login, "%s/adfs", pub);
    bd_reply_send(reply, 200,
                  json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:[s]}}", "galleryEndpoint", root,
                            "graphEndpoint", root, "portalEndpoint", root, "name", "Berth",
                            "authentication", "loginEndpoint", login, "audiences", root),
                  NULL);
}

static void arm_openid_configuration(bd_server_t *srv, bd_reply_t *reply)
{
    char pub[256], issuer[264], authorize[280], token[280];
    arm_public_url(srv->cfg, srv, pub, sizeof pub);
    snprintf(issuer, sizeof issuer, "%s/adfs", pub);
    snprintf(authorize, sizeof authorize, "%s/adfs/oauth2/authorize", pub);
    snprintf(token, sizeof token, "%s/adfs/oauth2/token", pub);
    bd_reply_send(reply, 200,
                  json_pack("{s:s, s:s, s:s, s:[s], s:[s], s:[s], s:[s]}", "issuer", issuer,
                            "authorization_endpoint", authorize, "token_endpoint", token,
                            "grant_types_supported", "client_credentials",
                            "token_endpoint_auth_methods_supported", "client_secret_post",
                            "response_types_supported", "token", "scopes_supported", "openid"),
                  NULL);
}

/* A form field of the token request into a heap buffer (freed by the
 * caller, wiped first when it may hold a secret).  Returns 1 present, 0
 * absent, -1 malformed or out of memory (*out NULL). */
static int form_field(const bd_request_t *req, const char *name, char **out)
{
    *out = calloc(1, ARM_FORM_VALUE_MAX);
    if (*out == NULL)
        return -1;
    int q = bd_query_get(req->body, name, *out, ARM_FORM_VALUE_MAX);
    if (q != 1) {
        free(*out);
        *out = NULL;
    }
    return q;
}

static void wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void arm_token(bd_server_t *srv, const bd_request_t *req, bd_reply_t *reply)
{
    if (req->body_len != strlen(req->body)) {
        oauth_error(reply, 400, "invalid_request", "The request body holds a NUL byte.");
        return;
    }
    char *grant = NULL, *id = NULL, *secret = NULL;
    int qg = form_field(req, "grant_type", &grant);
    int qi = form_field(req, "client_id", &id);
    int qs = form_field(req, "client_secret", &secret);
    if (qg < 0 || qi < 0 || qs < 0) {
        oauth_error(reply, 400, "invalid_request",
                    "The form body is malformed: a value is not percent-encoded or is longer "
                    "than 8191 bytes.");
    } else if (qg == 0) {
        oauth_error(reply, 400, "invalid_request", "grant_type is missing.");
    } else if (strcmp(grant, "client_credentials") != 0) {
        oauth_error(reply, 400, "unsupported_grant_type",
                    "berthd issues tokens for grant_type client_credentials only.");
    } else if (qi == 0 || id[0] == '\0' || qs == 0 || secret[0] == '\0') {
        oauth_error(reply, 400, "invalid_request",
                    "client_id and client_secret are required (in the form body).");
    } else {
        char token[512];
        if (srv->tokens == NULL) {
            oauth_error(reply, 400, "invalid_client",
                        "berthd has no clients: it runs without --tokens (no authentication).");
        } else if (bd_token_issue(srv, id, secret, token, sizeof token) != 0) {
            oauth_error(reply, 401, "invalid_client",
                        "Client authentication failed: unknown client_id or wrong "
                        "client_secret.");
        } else {
            static const char *const nocache[] = {"Cache-Control", "no-store", "Pragma",
                                                  "no-cache", NULL};
            bd_reply_send(reply, 200,
                          json_pack("{s:s, s:s, s:i, s:i}", "token_type", "Bearer",
                                    "access_token", token, "expires_in", BD_ACCESS_TOKEN_S,
                                    "ext_expires_in", BD_ACCESS_TOKEN_S),
                          nocache);
            explicit_bzero(token, sizeof token);
        }
    }
    free(grant);
    free(id);
    wipe_free(secret);
}

/* Whether p is "/adfs/TENANT/.well-known/openid-configuration": az resolves
 * a --tenant that is not a GUID there and takes the issuer's first path
 * segment ("adfs") as the tenant, which an ADFS authority then ignores. */
static bool arm_tenant_configuration(const char *p)
{
    static const char tail[] = "/.well-known/openid-configuration";
    if (strncasecmp(p, "/adfs/", 6) != 0)
        return false;
    const char *t = p + 6;
    size_t n = strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");
    return n > 0 && n <= 128 && strcasecmp(t + n, tail) == 0;
}

/* Contract: server-internal.h. */
void bd_arm_handle(bd_server_t *srv, const bd_request_t *req, bd_reply_t *reply)
{
    const char *p = req->path;
    if (strcmp(p, "/metadata/endpoints") == 0) {
        arm_metadata(srv, req, reply);
        return;
    }
    if (ieq(p, "/adfs/.well-known/openid-configuration") || arm_tenant_configuration(p)) {
        bd_reply_route(reply, "Adfs_OpenIdConfiguration");
        if (req->method != BD_GET)
            bd_reply_error(reply, 405, "MethodNotAllowed", "",
                           "the method is not allowed on this resource");
        else
            arm_openid_configuration(srv, reply);
        return;
    }
    if (ieq(p, "/adfs/oauth2/token")) {
        bd_reply_route(reply, "Adfs_Token");
        if (req->method != BD_POST)
            oauth_error(reply, 405, "invalid_request", "The token endpoint takes POST only.");
        else
            arm_token(srv, req, reply);
        return;
    }
    if (ieq(p, "/adfs/oauth2/authorize")) {
        bd_reply_route(reply, "Adfs_Authorize");
        oauth_error(reply, 400, "unsupported_response_type",
                    "berthd signs in clients only: POST client credentials to "
                    "/adfs/oauth2/token.");
        return;
    }
    bd_reply_route(reply, "NotFound");
    bd_reply_error(reply, 404, "NotFound", "", "The requested path was not found.");
}

/* ---- subscriptions and resource groups (routed by api.c) --------------------------------- */

static void arm_subscriptions(const bd_request_t *req, bd_reply_t *reply)
{
    json_t *value = json_array();
    for (size_t i = 0; value != NULL && i < req->nsubscriptions; i++) {
        const char *s = req->subscriptions[i];
        char id[BD_SUB_MAX + 16];
        snprintf(id, sizeof id, "/subscriptions/%s", s);
        json_array_append_new(value,
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", id,
                                        "subscriptionId", s, "displayName", s, "state",
                                        "Enabled", "tenantId", ARM_TENANT,
                                        "authorizationSource", "RoleBased"));
    }
    bd_reply_send(reply, 200, json_pack("{s:o*}", "value", value), NULL);
}

/* Contract: berthd.h. */
void bd_arm_route(const bd_config_t *cfg, const bd_request_t *req, bd_reply_t *reply,
                  char **seg, int n)
{
    if (n == 1) {
        bd_reply_route(reply, "Subscriptions_List");
        if (req->method != BD_GET)
            bd_reply_error(reply, 405, "MethodNotAllowed", "",
                           "the method is not allowed on this resource");
        else if (arm_api_version(req, reply))
            arm_subscriptions(req, reply);
        return;
    }
    bd_reply_route(reply, "ResourceGroups_Get");
    if (!bd_valid_subscription(seg[1])) {
        bd_reply_error(reply, 400, "InvalidRequestUri", "",
                       "the request path is not valid: bad subscription id");
        return;
    }
    if (!bd_valid_resource_group(seg[3])) {
        bd_reply_error(reply, 400, "InvalidResourceGroupName", "resourceGroupName",
                       "resource group names are 1-90 letters, digits, '-', '_', '.', '(' or "
                       "')', not ending with '.'");
        return;
    }
    if (req->method != BD_GET && req->method != BD_HEAD) {
        bd_reply_error(reply, 405, "MethodNotAllowed", "",
                       "Berth keeps no resource groups: every one exists; only GET and HEAD "
                       "are served.");
        return;
    }
    if (!arm_api_version(req, reply))
        return;
    if (req->method == BD_HEAD) {
        bd_reply_send(reply, 204, NULL, NULL);
        return;
    }
    char id[BD_SUB_MAX + BD_RG_MAX + 32];
    snprintf(id, sizeof id, "/subscriptions/%s/resourceGroups/%s", seg[1], seg[3]);
    bd_reply_send(reply, 200,
                  json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "id", id, "name", seg[3], "type",
                            "Microsoft.Resources/resourceGroups", "location",
                            cfg->location[0] != '\0' ? cfg->location : "westeurope",
                            "properties", "provisioningState", "Succeeded"),
                  NULL);
}
