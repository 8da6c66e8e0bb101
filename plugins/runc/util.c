/*
 * util.c: the runc plugin's small helpers: paths and small files (its
 * clocks are lib/clock.h's).
 *
 * Helpers marked async-signal-safe are called by the supervisor after
 * fork() (shim.c) and must stay so: no malloc, no stdio, no locks.  This
 * file must never run a program or know a group's layout on disk.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runc.h"

/* Formats into buf; false when the result did not fit. */
bool path_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

/* Whether path names anything (stat() succeeds). */
bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Whether path names a directory. */
bool dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Reads at most cap-1 bytes of a small file into buf, NUL-terminated.
 * Returns the length or -errno. */
ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* Writes data to path through "<path>.tmp" and a rename, so that readers
 * see the old content or the new one.  Uses only async-signal-safe calls
 * (the supervisor calls it after fork()); tmp must hold the temporary
 * name's bytes.  Returns 0 or -errno. */
int write_atomic(const char *path, const char *tmp, const char *data, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno ? errno : EIO;
            close(fd);
            unlink(tmp);
            return -e;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    return 0;
}

/* Writes the string data to path as write_atomic() does, through
 * "<path>.tmp".  Returns 0 or -errno. */
int write_file(const char *path, const char *data)
{
    char tmp[RUNC_PATH_MAX];
    if (!path_fmt(tmp, sizeof tmp, "%s.tmp", path))
        return -ENAMETOOLONG;
    return write_atomic(path, tmp, data, strlen(data));
}

/* Reads a decimal integer file; false when missing or unparsable. */
bool read_i64(const char *path, int64_t *out)
{
    char buf[64];
    if (read_small(path, buf, sizeof buf) <= 0)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || end == buf)
        return false;
    *out = v;
    return true;
}

/* Writes v in decimal to buf (at least 24 bytes); returns the length.
 * Async-signal-safe. */
size_t fmt_i64(char *buf, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0 && n < sizeof tmp);
    size_t len = 0;
    if (v < 0)
        buf[len++] = '-';
    while (n > 0)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

/* Closes every descriptor from `from` up.  Async-signal-safe. */
void close_from(int from)
{
    if (close_range((unsigned)from, ~0u, 0) == 0)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = from; fd < max; fd++)
        close(fd);
}

/* Sets err to "out of memory" (InternalError); returns BERTH_ENOMEM. */
int oom(berth_error_t *err)
{
    return berth_error_set(err, BERTH_ENOMEM, "InternalError", "", "out of memory");
}
