/*
 * lib/curl.h: the libcurl client set-up Berth's command-line tool, docker
 * plugin, bench and tests share: an easy handle's timeouts, its way to the
 * server (a unix socket, a CA file, or no verification when asked), no
 * signals, and a received body kept in a growing buffer with a size bound.
 *
 * A convenience library of its own (libberth-curl) so that programs without
 * curl never link it.  Nothing here performs a request, adds a header,
 * chooses a method or retries: each client keeps its own protocol.  It
 * must never keep a secret (the caller builds and wipes its Authorization
 * header) nor accept more bytes than a buffer's bound.
 */
#ifndef BERTH_LIB_CURL_H
#define BERTH_LIB_CURL_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

/* How a handle reaches its server and how long it may take.  All-zero is
 * valid: no time limits, TCP, the system's CA store. */
typedef struct berth__curl_options {
    long timeout_ms;                /* the whole transfer; 0: unbounded     */
    long connect_timeout_ms;        /* the connection; 0: libcurl's (300 s) */
    const char *unix_socket;        /* the path to connect to; NULL: TCP    */
    const char *cacert;             /* a PEM CA file; NULL: the system's    */
    bool insecure;                  /* no peer or host verification (tests,
                                       --insecure); cacert is then ignored  */
} berth__curl_options_t;

/* Sets on easy handle h: CURLOPT_NOSIGNAL (libcurl never raises SIGALRM
 * or SIGPIPE in the caller), the timeouts, the unix socket, and the CA file
 * or no verification.  The strings are copied by libcurl.  h is not reset
 * first: the caller resets a reused handle.  Returns CURLE_OK or the first
 * option libcurl refused. */
CURLcode berth__curl_setup(CURL *h, const berth__curl_options_t *opts);

/* A body (or headers) being received.  Zero it, set max, attach it with
 * berth__curl_buffer_attach() or as the write callback's data; free it with
 * berth__curl_buffer_free(). */
typedef struct berth__curl_buffer {
    char *data;                     /* NUL-terminated once any call wrote,
                                       else NULL; owned, free()            */
    size_t len;
    size_t cap;
    size_t max;                     /* the most bytes kept; 0: no bound     */
    bool too_big;                   /* the transfer was stopped at max      */
} berth__curl_buffer_t;

/* The write (and header) callback: appends size * nmemb bytes to the
 * berth__curl_buffer_t `buffer`.  Returns the count taken, or 0 (libcurl
 * then stops with CURLE_WRITE_ERROR) when the bound would be passed (sets
 * too_big) or memory ran out. */
size_t berth__curl_buffer_write(char *data, size_t size, size_t nmemb, void *buffer);

/* Points h's CURLOPT_WRITEFUNCTION and CURLOPT_WRITEDATA at buffer, which
 * must outlive the transfer (set CURLOPT_WRITEDATA to NULL afterwards when
 * h is kept). */
void berth__curl_buffer_attach(CURL *h, berth__curl_buffer_t *buffer);

/* Makes sure buffer->data exists (the empty string when nothing came).
 * Returns 0, or -1 when out of memory. */
int berth__curl_buffer_finish(berth__curl_buffer_t *buffer);

/* Frees what buffer holds and zeroes it (max included).  Accepts NULL. */
void berth__curl_buffer_free(berth__curl_buffer_t *buffer);

#endif
