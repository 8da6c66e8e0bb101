/*
 * common.c: helpers Berth's docker and runc plugins share (common.h): the
 * runtime id of a group, times in the forms engines write them, the tail of
 * a log, and directory trees made and removed on the host.
 *
 * Nothing here keeps state or talks to an engine; removing a tree never
 * follows a symbolic link out of it.
 */
#define _GNU_SOURCE
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FNV64_OFFSET 0xcbf29ce484222325ull
#define FNV64_PRIME 0x100000001b3ull

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV64_PRIME;
    }
    return h;
}

/* The id hashes the host and the key with a NUL between them, so that
 * ("ab", "c") and ("a", "bc") differ. */
void plugin_group_id(const char *host, const char *key, char id[PLUGIN_ID_LEN + 1])
{
    uint64_t h = FNV64_OFFSET;
    host = host ? host : "";
    key = key ? key : "";
    h = fnv1a(h, host, strlen(host) + 1);
    h = fnv1a(h, key, strlen(key));
    snprintf(id, PLUGIN_ID_LEN + 1, "%016llx", (unsigned long long)h);
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Reads exactly n digits at *p into *out. */
static bool read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

int64_t plugin_time_parse(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    const char *p = s;
    int year, mon, day, hour, min, sec;
    if (!read_digits(&p, 4, &year) || *p++ != '-' || !read_digits(&p, 2, &mon) ||
        *p++ != '-' || !read_digits(&p, 2, &day) || (*p != 'T' && *p != 't' && *p != ' '))
        return 0;
    p++;
    if (!read_digits(&p, 2, &hour) || *p++ != ':' || !read_digits(&p, 2, &min) ||
        *p++ != ':' || !read_digits(&p, 2, &sec))
        return 0;
    if (year <= 1 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 ||
        sec > 60)
        return 0;
    int ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p) && digits < 32) {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return 0;
        for (int i = digits; i < 3; i++)
            ms *= 10;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh, om;
        p++;
        if (!read_digits(&p, 2, &oh) || *p++ != ':' || !read_digits(&p, 2, &om))
            return 0;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return 0;
    }
    if (*p != '\0')
        return 0;
    int64_t days = days_from_civil(year, (unsigned)mon, (unsigned)day);
    int64_t t = days * 86400 + hour * 3600 + min * 60 + sec - offset_s;
    return t * 1000 + ms;
}

void plugin_tail_lines(char *text, size_t *len, uint32_t tail)
{
    if (text == NULL || len == NULL || tail == 0 || *len == 0)
        return;
    size_t n = *len;
    /* A final newline ends the last line rather than starting an empty one. */
    size_t end = text[n - 1] == '\n' ? n - 1 : n;
    uint32_t lines = 0;
    size_t start = 0;
    for (size_t i = end; i > 0; i--) {
        if (text[i - 1] == '\n') {
            if (++lines == tail) {
                start = i;
                break;
            }
        }
    }
    if (start > 0) {
        memmove(text, text + start, n - start);
        *len = n - start;
    }
}

int plugin_mkdir_p(const char *path, unsigned mode)
{
    if (path == NULL || *path == '\0')
        return -EINVAL;
    size_t n = strlen(path);
    char *buf = malloc(n + 1);
    if (buf == NULL)
        return -ENOMEM;
    memcpy(buf, path, n + 1);
    int rc = 0;
    /* Each '/' after the first character ends one ancestor. */
    for (size_t i = 1; i <= n && rc == 0; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, (mode_t)mode) != 0) {
            struct stat st;
            if (errno != EEXIST)
                rc = -errno;
            else if (stat(buf, &st) != 0)
                rc = -errno;
            else if (!S_ISDIR(st.st_mode))
                rc = -ENOTDIR;
        }
        buf[i] = saved;
    }
    free(buf);
    return rc;
}

static int remove_entry(const char *fpath, const struct stat *sb, int typeflag,
                        struct FTW *ftwbuf)
{
    (void)sb;
    (void)ftwbuf;
    int rc = typeflag == FTW_DP ? rmdir(fpath) : unlink(fpath);
    return rc != 0 && errno != ENOENT ? -1 : 0;
}

static int make_writable(const char *fpath, const struct stat *sb, int typeflag,
                         struct FTW *ftwbuf)
{
    (void)ftwbuf;
    if (typeflag == FTW_D && (sb->st_mode & 0700) != 0700)
        chmod(fpath, (sb->st_mode & 07777) | 0700);
    return 0;
}

int plugin_remove_tree(const char *path)
{
    if (path == NULL || *path == '\0')
        return -EINVAL;
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
    /* Root ignores permissions, other users need writable directories. */
    if (geteuid() != 0)
        nftw(path, make_writable, 32, FTW_PHYS | FTW_MOUNT);
    if (nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
        return errno ? -errno : -EIO;
    return 0;
}
