/*
 * redis-cut-proxy.c: the cutting proxy of cut-proxy.h as a program, for
 * the shell fault tests (tests/test_chaos.sh).
 *
 *   redis-cut-proxy --upstream unix:PATH|PORT --port-file FILE
 *
 * Listens on a free port of 127.0.0.1, writes that port to FILE (whole,
 * by a rename) and forwards every connection to Redis on the unix socket
 * PATH or on 127.0.0.1:PORT.  SIGUSR1 arms it: the next commit FCALL is
 * let through and every proxied connection is closed right after Redis's
 * reply, which is never forwarded.  Each cut is printed on stdout as one
 * line, "cut N FUNCTION applied|refused|unanswered".  SIGTERM, SIGINT or
 * SIGHUP stops it (exit 0); so does its parent's exit, so that it never
 * outlives the test that started it.
 *
 * It must never listen beyond 127.0.0.1, and never alter a forwarded
 * byte.  Exits 2 on a usage error, 1 when it cannot start.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cut-proxy.h"

static void usage(void)
{
    fprintf(stderr, "usage: redis-cut-proxy --upstream unix:PATH|PORT --port-file FILE\n");
    exit(2);
}

/* Writes the port to `file` through a temporary file and a rename, so a
 * reader sees nothing or the whole number.  Returns 0 or -1. */
static int write_port(const char *file, int port)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", file) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    int bad = fprintf(f, "%d\n", port) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, file) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *upstream = NULL, *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--upstream") == 0 && i + 1 < argc)
            upstream = argv[++i];
        else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
            port_file = argv[++i];
        else
            usage();
    }
    if (upstream == NULL || port_file == NULL)
        usage();
    int up_port = 0;
    const char *up_path = NULL;
    if (strncmp(upstream, "unix:", 5) == 0 && upstream[5] != '\0') {
        up_path = upstream + 5;
        if (strlen(up_path) >= sizeof ((cut_proxy_t *)0)->up_path) {
            fprintf(stderr, "redis-cut-proxy: --upstream: the path is too long\n");
            return 2;
        }
    } else {
        char *end = NULL;
        long p = strtol(upstream, &end, 10);
        if (end == upstream || *end != '\0' || p < 1 || p > 65535)
            usage();
        up_port = (int)p;
    }

    /* The signals are taken by sigtimedwait() below: blocked before the
     * proxy's thread starts, so that it inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        perror("redis-cut-proxy: sigprocmask");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    pid_t parent = getppid();

    static cut_proxy_t proxy;
    if (cut_proxy_start(&proxy, 0, up_port, up_path) != 0)
        return 1;
    if (write_port(port_file, proxy.port) != 0) {
        fprintf(stderr, "redis-cut-proxy: cannot write %s\n", port_file);
        cut_proxy_stop(&proxy);
        return 1;
    }

    int reported = 0;
    for (;;) {
        struct timespec tick = {0, 100 * 1000 * 1000};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGUSR1)
            cut_proxy_arm(&proxy);
        else if (sig > 0)
            break;
        if (getppid() != parent)
            break;
        cut_info_t info = cut_proxy_wait(&proxy, 0, 0);
        if (info.cuts != reported) {
            reported = info.cuts;
            printf("cut %d %s %s\n", info.cuts, info.function[0] ? info.function : "-",
                   !info.reply_seen ? "unanswered" : info.applied ? "applied" : "refused");
            fflush(stdout);
        }
    }
    cut_proxy_stop(&proxy);
    return 0;
}
