/*
 * options.h: what berth-bench's scenarios share to read their command
 * lines (options.c), over getopt_long().  It only parses: it never runs a
 * scenario.
 */
#ifndef BERTH_BENCH_OPTIONS_H
#define BERTH_BENCH_OPTIONS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/* Prints berth-bench's usage (every scenario's overview) on f. */
void bench_usage(FILE *f);

/* One option of a scenario's command line, as bench_option_next() read
 * it.  `name` and `value` point into argv or into this struct: valid until
 * the next call with it. */
typedef struct bench_option {
    int code;           /* the option's val; -1: no more options; '?': an
                         * unknown option or a stray argument; ':': an
                         * option whose value is missing                 */
    const char *name;   /* "--hosts" (its full spelling, however it was
                         * abbreviated); for '?' and ':', what argv said  */
    const char *value;  /* its value, NULL when none; for '?', the
                         * argument after it, NULL when none             */
    char spelled[48];   /* room for `name`                                */
} bench_option_t;

/* Reads the next option of a scenario's command line, argv[2..argc-1]
 * (argv[1] is the scenario), with getopt_long(): long options as
 * "--name value", "--name=value" or any unambiguous abbreviation of the
 * name, and the short options of `shortopts` ("h" for -h; "" for none).
 * getopt_long()'s own messages are off: the caller prints its own.  Every
 * error is '?' (an unknown option, a stray argument, anything after "--"),
 * or ':' when the option's value is missing; an unknown option or stray
 * argument that is the last one also comes back as ':', as the scenarios
 * have always said it "needs a value".  Returns opt->code.  Call it until
 * it returns -1, '?' or ':'; one command line a process (getopt's state is
 * global). */
int bench_option_next(int argc, char **argv, const char *shortopts,
                      const struct option *longopts, bench_option_t *opt);

/* What the incore and redis scenarios do with --help and errors: -h and
 * --help print the usage on stdout and return 1; '?' and ':' print their
 * message and return 2; any other option returns 0. */
int bench_option_common(const bench_option_t *opt);

/* What every scenario that drives berthd's REST API (api, pool) is told of
 * its berthd: strings point into argv. */
typedef struct bench_endpoint {
    const char *endpoint;       /* https://HOST:PORT (required)            */
    const char *token;          /* bearer token, or NULL                   */
    const char *subscription;
    const char *resource_group;
    const char *cacert;         /* the CA file berthd's certificate is
                                 * checked against, or NULL              */
    bool insecure;              /* no certificate check                    */
} bench_endpoint_t;

/* Those options' codes and getopt_long() entries, for a scenario's table. */
enum {
    BENCH_OPT_ENDPOINT = 200, BENCH_OPT_TOKEN, BENCH_OPT_SUBSCRIPTION,
    BENCH_OPT_RESOURCE_GROUP, BENCH_OPT_CACERT, BENCH_OPT_INSECURE
};
#define BENCH_ENDPOINT_LONGOPTS                                                \
    {"endpoint", required_argument, NULL, BENCH_OPT_ENDPOINT},                 \
    {"token", required_argument, NULL, BENCH_OPT_TOKEN},                       \
    {"subscription", required_argument, NULL, BENCH_OPT_SUBSCRIPTION},         \
    {"resource-group", required_argument, NULL, BENCH_OPT_RESOURCE_GROUP},     \
    {"cacert", required_argument, NULL, BENCH_OPT_CACERT},                     \
    {"insecure", no_argument, NULL, BENCH_OPT_INSECURE}

/* Stores option `code` (value `value`) in *e when it is one of the
 * endpoint options.  Returns true when it was, false (nothing changed) for
 * any other code. */
bool bench_endpoint_option(int code, const char *value, bench_endpoint_t *e);

#endif /* BERTH_BENCH_OPTIONS_H */
