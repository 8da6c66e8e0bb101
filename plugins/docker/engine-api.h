/*
 * engine-api.h: a small client for the Docker Engine API (and Podman's
 * Docker-compatible service) over a unix socket, for Berth's docker plugin.
 *
 * One client holds one libcurl handle, so consecutive calls reuse the
 * connection.  Every call is bounded in time (a connect timeout and a total
 * timeout the caller chooses) and its response body is bounded in size.
 * The client never logs: request bodies and headers may hold secrets.
 * Not thread-safe: one client per plugin context.
 */
#ifndef BERTH_DOCKER_ENGINE_API_H
#define BERTH_DOCKER_ENGINE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENGINE_API_CONNECT_TIMEOUT_S 5
#define ENGINE_API_TIMEOUT_S 60
#define ENGINE_API_PULL_TIMEOUT_S 1800
#define ENGINE_API_BODY_MAX (64u << 20)
#define ENGINE_API_ERROR_MAX 256

typedef struct engine_api engine_api_t;

/* A response: the HTTP status and the body (NUL-terminated, owned by the
 * response; release with engine_response_free()). */
typedef struct engine_response {
    long status;
    char *body;
    size_t len;
} engine_response_t;

/* Opens a client for the engine listening on unix socket `socket_path`,
 * speaking API version `version` (e.g. "1.41": paths are sent as
 * "/v1.41/..."); nothing is connected yet.  Returns the client (free with
 * engine_api_close()) or NULL when out of memory. */
engine_api_t *engine_api_open(const char *socket_path, const char *version);

/* Closes the client.  Accepts NULL. */
void engine_api_close(engine_api_t *api);

/* Sends `method` (GET, POST, DELETE) to `path` (starting with '/', query
 * included, already escaped) with `body` (a JSON text, or NULL for none)
 * and the extra header lines in `headers` (NULL-terminated, may be NULL),
 * waiting at most `timeout_s` seconds for the whole exchange.  On success
 * returns 0 and fills *resp whatever the HTTP status (the caller judges it;
 * free with engine_response_free()).  When the engine could not be reached
 * or the exchange failed returns -1 and writes why to errbuf (at least
 * ENGINE_API_ERROR_MAX bytes); *resp is then empty. */
int engine_api_call(engine_api_t *api, const char *method, const char *path, const char *body,
                    const char *const *headers, long timeout_s, engine_response_t *resp,
                    char *errbuf);

/* Frees the response's body and empties it.  Accepts NULL. */
void engine_response_free(engine_response_t *resp);

/* The engine's error message in a response body ({"message": "..."}, or the
 * body itself when it is not JSON) copied into buf, at most cap bytes. */
void engine_response_message(const engine_response_t *resp, char *buf, size_t cap);

/* URL-escapes `s` for a path segment or a query value into a new string
 * (free with free()); NULL when out of memory. */
char *engine_api_escape(const char *s);

/* Splits a multiplexed stdout/stderr stream (8-byte frame headers: stream,
 * 3 zero bytes, big-endian length) in place into its payloads, in order,
 * and updates *len.  A stream that does not start with a frame header is
 * left as it is (an engine that sent raw output). */
void engine_demux(char *data, size_t *len);

#endif /* BERTH_DOCKER_ENGINE_API_H */
