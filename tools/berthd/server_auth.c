/*
 * server_auth.c: berthd's bearer tokens: the tokens file (one "TOKEN
 * SUB[,SUB...] [CLIENT_ID]" per line) read at start-up, the access tokens
 * issued to OAuth clients (a line with a CLIENT_ID: its TOKEN is also the
 * client's secret), and each request's authorization, scoped to the
 * subscriptions its token names.
 *
 * Scopes: a token naming subscriptions is a tenant's: it reaches those
 * subscriptions' resources and nothing of Berth's own.  A token whose
 * subscriptions are '*' is an operator's: every subscription, Berth's own
 * routes (/berth/hosts, the host actions) and the cell-wide views
 * (bd_request_t.operator_scope).
 *
 * Only tokens' SHA-256 digests are kept, and for clients a key derived from
 * the secret that signs their access tokens ("berth1.<expiry>.<client>.
 * <HMAC-SHA-256>": nothing to store, any berthd with the same file accepts
 * them).  It must never log a token or a secret, never keep a token's text
 * after reading it, never compare digests or signatures in variable time or
 * stop at the first match, and never answer differently whether a forbidden
 * resource exists or not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "server-internal.h"
#include "resource.h"

#define BD_TOKENS_MAX 1024          /* entries in a tokens file             */
#define BD_TOKEN_LINE_MAX 8192      /* bytes in one line of it              */
#define BD_TOKEN_SUBS_MAX 256       /* subscriptions one token may name     */
#define BD_CLIENT_ID_MAX 128        /* bytes of an OAuth client id          */
#define BD_ACCESS_PREFIX "berth1."  /* issued access tokens begin with it   */

/* ---- tokens ---------------------------------------------------------------------------- */

/* Contract: server-internal.h. */
void bd_tokens_free(bd_token_t *tokens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < tokens[i].nsubs; j++)
            free(tokens[i].subs[j]);
        free(tokens[i].subs);
        free(tokens[i].client_id);
        explicit_bzero(tokens[i].mint_key, sizeof tokens[i].mint_key);
    }
    free(tokens);
}

/* SHA-256, fetched from the provider once (an implicit fetch per digest
 * costs more than the digest of a token). */
static EVP_MD *sha256_md;

static void bd_sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void bd_sha256(const char *s, size_t len, unsigned char out[32])
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, bd_sha256_fetch);
    unsigned int n = 32;
    if (EVP_Digest(s, len, out, &n, sha256_md != NULL ? sha256_md : EVP_sha256(), NULL) != 1)
        memset(out, 0, 32);
}

static bool bd_sub_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '*';
}

static bool bd_client_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
}

/* The key that signs a client's access tokens: SHA-256 of a label and the
 * secret (not the secret's digest, which finds the bearer token). */
static void bd_mint_key(const char *secret, unsigned char out[32])
{
    static const char label[] = "berth access token key\n";
    size_t n = strlen(secret);
    char *buf = malloc(sizeof label + n);
    if (buf == NULL) {
        memset(out, 0, 32);
        return;
    }
    memcpy(buf, label, sizeof label - 1);
    memcpy(buf + sizeof label - 1, secret, n);
    bd_sha256(buf, sizeof label - 1 + n, out);
    explicit_bzero(buf, sizeof label - 1 + n);
    free(buf);
}

/* Parses one "TOKEN SUB[,SUB...] [CLIENT_ID]" line into *t.  Returns 0 or
 * -1 with why. */
static int bd_token_parse(char *line, bd_token_t *t, char *why, size_t cap)
{
    char *save = NULL;
    char *tok = strtok_r(line, " \t", &save);
    char *subs = strtok_r(NULL, " \t", &save);
    char *client = strtok_r(NULL, " \t", &save);
    char *extra = client != NULL && client[0] != '#' ? strtok_r(NULL, " \t", &save) : NULL;
    if (tok == NULL || subs == NULL) {
        snprintf(why, cap, "expected \"TOKEN SUB[,SUB...] [CLIENT_ID]\"");
        return -1;
    }
    if (client != NULL && client[0] == '#')
        client = NULL;
    if (extra != NULL && extra[0] != '#') {
        snprintf(why, cap, "unexpected text after the client id");
        return -1;
    }
    if (client != NULL) {
        size_t n = strlen(client);
        if (n > BD_CLIENT_ID_MAX) {
            snprintf(why, cap, "client id longer than %d characters", BD_CLIENT_ID_MAX);
            return -1;
        }
        for (const char *p = client; *p != '\0'; p++)
            if (!bd_client_char_ok(*p)) {
                snprintf(why, cap, "client id \"%.64s\" holds a character outside [A-Za-z0-9._-]",
                         client);
                return -1;
            }
        t->client_id = strdup(client);
        if (t->client_id == NULL) {
            snprintf(why, cap, "out of memory");
            return -1;
        }
    }
    if (strlen(tok) < 8) {
        snprintf(why, cap, "token shorter than 8 characters");
        return -1;
    }
    for (const char *p = tok; *p != '\0'; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
            snprintf(why, cap, "token holds a character that is not printable ASCII");
            return -1;
        }
    bd_sha256(tok, strlen(tok), t->digest);
    if (t->client_id != NULL)
        bd_mint_key(tok, t->mint_key);
    explicit_bzero(tok, strlen(tok));
    t->subs = calloc(BD_TOKEN_SUBS_MAX, sizeof *t->subs);
    if (t->subs == NULL) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    char *s2 = NULL;
    for (char *sub = strtok_r(subs, ",", &s2); sub != NULL; sub = strtok_r(NULL, ",", &s2)) {
        if (sub[0] == '\0')
            continue;
        for (const char *p = sub; *p != '\0'; p++)
            if (!bd_sub_char_ok(*p) || (*p == '*' && strcmp(sub, "*") != 0)) {
                snprintf(why, cap, "bad subscription \"%.64s\"", sub);
                return -1;
            }
        if (strcmp(sub, "*") == 0) {
            t->any = true;
            continue;
        }
        if (t->nsubs >= BD_TOKEN_SUBS_MAX) {
            snprintf(why, cap, "more than %d subscriptions", BD_TOKEN_SUBS_MAX);
            return -1;
        }
        t->subs[t->nsubs] = strdup(sub);
        if (t->subs[t->nsubs] == NULL) {
            snprintf(why, cap, "out of memory");
            return -1;
        }
        t->nsubs++;
    }
    if (!t->any && t->nsubs == 0) {
        snprintf(why, cap, "no subscriptions");
        return -1;
    }
    return 0;
}

/* Contract: server-internal.h. */
int bd_tokens_load(bd_server_t *srv, const char *file, char *why, size_t cap)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        snprintf(why, cap, "--tokens %s: %s", file, strerror(errno));
        return -1;
    }
    bd_token_t *tokens = calloc(BD_TOKENS_MAX, sizeof *tokens);
    if (tokens == NULL) {
        fclose(f);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    size_t n = 0;
    int lineno = 0, rc = 0;
    char *line = malloc(BD_TOKEN_LINE_MAX);
    if (line == NULL) {
        rc = -1;
        snprintf(why, cap, "out of memory");
    }
    while (rc == 0 && fgets(line, BD_TOKEN_LINE_MAX, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len == BD_TOKEN_LINE_MAX - 1 && line[len - 1] != '\n') {
            snprintf(why, cap, "--tokens %s line %d: longer than %d bytes", file, lineno,
                     BD_TOKEN_LINE_MAX - 2);
            rc = -1;
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        if (n >= BD_TOKENS_MAX) {
            snprintf(why, cap, "--tokens %s line %d: more than %d tokens", file, lineno,
                     BD_TOKENS_MAX);
            rc = -1;
            break;
        }
        char w[256];
        if (bd_token_parse(p, &tokens[n], w, sizeof w) != 0) {
            snprintf(why, cap, "--tokens %s line %d: %s", file, lineno, w);
            n++;
            rc = -1;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (CRYPTO_memcmp(tokens[i].digest, tokens[n].digest, 32) == 0) {
                snprintf(why, cap, "--tokens %s line %d: a token listed twice", file, lineno);
                rc = -1;
            }
        for (size_t i = 0; rc == 0 && tokens[n].client_id != NULL && i < n; i++)
            if (tokens[i].client_id != NULL &&
                strcmp(tokens[i].client_id, tokens[n].client_id) == 0) {
                snprintf(why, cap, "--tokens %s line %d: client id \"%s\" listed twice", file,
                         lineno, tokens[n].client_id);
                rc = -1;
            }
        n++;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(why, cap, "--tokens %s: read error", file);
        rc = -1;
    }
    if (rc == 0 && n == 0) {
        snprintf(why, cap, "--tokens %s: no tokens", file);
        rc = -1;
    }
    if (line != NULL) {
        explicit_bzero(line, BD_TOKEN_LINE_MAX);
        free(line);
    }
    fclose(f);
    if (rc != 0) {
        bd_tokens_free(tokens, n);
        return -1;
    }
    srv->tokens = tokens;
    srv->ntokens = n;
    return 0;
}

/* Signs "berth1.<expiry>.<client_id>" with key into hex[65]. */
static void bd_access_sign(const unsigned char key[32], long long expiry, const char *client_id,
                           char hex[65])
{
    char msg[64 + BD_CLIENT_ID_MAX];
    int n = snprintf(msg, sizeof msg, BD_ACCESS_PREFIX "%lld.%s", expiry, client_id);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (n < 0 || (size_t)n >= sizeof msg ||
        HMAC(EVP_sha256(), key, 32, (const unsigned char *)msg, (size_t)n, mac, &maclen) ==
            NULL ||
        maclen != 32)
        memset(mac, 0, 32);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

/* Contract: server-internal.h. */
int bd_token_issue(const bd_server_t *srv, const char *client_id, const char *secret, char *out,
                   size_t cap)
{
    out[0] = '\0';
    if (client_id == NULL || secret == NULL || strlen(client_id) > BD_CLIENT_ID_MAX)
        return -1;
    unsigned char d[32];
    bd_sha256(secret, strlen(secret), d);
    const bd_token_t *found = NULL;
    for (size_t i = 0; i < srv->ntokens; i++) {
        const bd_token_t *t = &srv->tokens[i];
        int id_eq = t->client_id != NULL && strcmp(t->client_id, client_id) == 0;
        int secret_eq = CRYPTO_memcmp(d, t->digest, 32) == 0;
        if (id_eq & secret_eq)
            found = t;
    }
    if (found == NULL)
        return -1;
    long long expiry = (long long)time(NULL) + BD_ACCESS_TOKEN_S;
    char hex[65];
    bd_access_sign(found->mint_key, expiry, found->client_id, hex);
    int n = snprintf(out, cap, BD_ACCESS_PREFIX "%lld.%s.%s", expiry, found->client_id, hex);
    explicit_bzero(hex, sizeof hex);
    if (n < 0 || (size_t)n >= cap) {
        explicit_bzero(out, cap);
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* The client whose access token `presented` is ("berth1.<expiry>.<client>.
 * <hex>", signed by its key, not expired), or NULL.  Every client's
 * signature is compared (no early exit). */
static const bd_token_t *bd_access_find(const bd_server_t *srv, const char *presented)
{
    const char *p = presented + strlen(BD_ACCESS_PREFIX);
    char *end = NULL;
    if (*p < '0' || *p > '9')
        return NULL;
    errno = 0;
    long long expiry = strtoll(p, &end, 10);
    if (errno != 0 || end == NULL || *end != '.')
        return NULL;
    const char *client = end + 1;
    size_t rest = strlen(client);
    if (rest < 66 || client[rest - 65] != '.')
        return NULL;
    size_t idlen = rest - 65;
    const char *sig = client + rest - 64;
    if (idlen == 0 || idlen > BD_CLIENT_ID_MAX)
        return NULL;
    char id[BD_CLIENT_ID_MAX + 1];
    memcpy(id, client, idlen);
    id[idlen] = '\0';
    if ((long long)time(NULL) >= expiry)
        return NULL;
    const bd_token_t *found = NULL;
    for (size_t i = 0; i < srv->ntokens; i++) {
        const bd_token_t *t = &srv->tokens[i];
        if (t->client_id == NULL || strcmp(t->client_id, id) != 0)
            continue;
        char hex[65];
        bd_access_sign(t->mint_key, expiry, t->client_id, hex);
        if (CRYPTO_memcmp(hex, sig, 64) == 0)
            found = t;
        explicit_bzero(hex, sizeof hex);
    }
    return found;
}

/* The token whose SHA-256 matches `presented`'s, comparing against every
 * token (no early exit), or the client whose access token it is, or NULL. */
static const bd_token_t *bd_token_find(const bd_server_t *srv, const char *presented)
{
    if (strncmp(presented, BD_ACCESS_PREFIX, strlen(BD_ACCESS_PREFIX)) == 0) {
        const bd_token_t *client = bd_access_find(srv, presented);
        if (client != NULL)
            return client;
    }
    unsigned char d[32];
    bd_sha256(presented, strlen(presented), d);
    const bd_token_t *found = NULL;
    for (size_t i = 0; i < srv->ntokens; i++) {
        int eq = CRYPTO_memcmp(d, srv->tokens[i].digest, 32) == 0;
        if (eq)
            found = &srv->tokens[i];
    }
    return found;
}

/* Sends a 401 CloudError `name`/`message` with the bearer challenge.
 * Returns -1, bd_authorize()'s refusal. */
static int unauthorized(bd_reply_t *r, const char *name, const char *message)
{
    static const char *const challenge[] = {"WWW-Authenticate", "Bearer", NULL};
    berth_error_t err;
    berth_error_set(&err, BERTH_EINVAL, name, "", "%s", message);
    char *s = NULL;
    if (berth_error_to_json(&err, &s) == 0) {
        bd_reply_send(r, 401, json_loads(s, 0, NULL), challenge);
        berth_free(s);
    } else {
        bd_reply_send(r, 401, NULL, challenge);
    }
    return -1;
}

/* Checks the bearer token and the path's subscription.  Returns 0 and fills
 * the authorization part of *out, or sends the 401/403 and returns -1. */
int bd_authorize(bd_server_t *srv, struct evhttp_request *req, bd_reply_t *r,
                 bd_request_t *out)
{
    if (srv->tokens == NULL) {
        out->any_subscription = true;
        out->operator_scope = true;
        return 0;
    }
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    bd_reply_route(r, "Unauthorized");
    const char *presented = bd_bearer_token(auth);
    if (presented == NULL)
        return unauthorized(r, "AuthenticationFailed",
                            "Authentication failed. The 'Authorization' header is missing or "
                            "is not a bearer token.");
    const bd_token_t *t = bd_token_find(srv, presented);
    if (t == NULL)
        return unauthorized(r, "InvalidAuthenticationToken", "The access token is invalid.");
    out->any_subscription = t->any;
    out->operator_scope = t->any;
    out->subscriptions = (const char *const *)t->subs;
    out->nsubscriptions = t->nsubs;
    /* The subscription named by the path, if any. */
    const char *sub;
    size_t len;
    if (!t->any && bd_path_subscription(r->path, &sub, &len)) {
        bool ok = false;
        for (size_t i = 0; i < t->nsubs; i++)
            if (strlen(t->subs[i]) == len && strncasecmp(t->subs[i], sub, len) == 0)
                ok = true;
        if (!ok && len > 0) {
            bd_reply_route(r, "Forbidden");
            bd_reply_error(r, 403, "AuthorizationFailed", "",
                           "The client does not have authorization to perform the action "
                           "over scope '%.*s'.",
                           (int)(len > 128 ? 128 : len), sub);
            return -1;
        }
    }
    bd_reply_route(r, "unknown");
    return 0;
}
