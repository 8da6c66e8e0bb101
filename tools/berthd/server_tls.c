/*
 * server_tls.c: berthd's TLS, through libevent's OpenSSL bufferevents: the
 * server context made from --tls-cert and --tls-key (TLS 1.2 or later, no
 * renegotiation, no compression) and each accepted connection's TLS
 * bufferevent.
 *
 * It must never accept a key that does not match its certificate, and
 * never leave OpenSSL's error queue filled for the next caller.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server-internal.h"

/* ---- TLS ------------------------------------------------------------------------------- */

static void bd_ssl_error(char *why, size_t cap, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(why, cap, "%s %s: %s", what, file, buf[0] != '\0' ? buf : "unusable");
    ERR_clear_error();
}

/* Contract: server-internal.h. */
int bd_tls_load(bd_server_t *srv, char *why, size_t cap)
{
    const bd_config_t *cfg = srv->cfg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        bd_ssl_error(why, cap, "TLS", "context");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        bd_ssl_error(why, cap, "--tls-cert", cfg->tls_cert);
        SSL_CTX_free(ctx);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
        bd_ssl_error(why, cap, "--tls-key", cfg->tls_key);
        SSL_CTX_free(ctx);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        bd_ssl_error(why, cap, "--tls-key (does not match --tls-cert)", cfg->tls_key);
        SSL_CTX_free(ctx);
        return -1;
    }
    srv->ssl = ctx;
    return 0;
}

/* A TLS server bufferevent for a new connection (its descriptor set later
 * by evhttp), or NULL. */
struct bufferevent *bd_tls_bev(bd_server_t *srv, struct event_base *base)
{
    SSL *ssl = SSL_new(srv->ssl);
    if (ssl == NULL) {
        ERR_clear_error();
        return NULL;
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}
