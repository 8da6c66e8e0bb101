/*
 * options.h: what berth-bench's scenarios share to read their command
 * lines (options.c).  It only parses: it never runs a scenario.
 */
#ifndef BERTH_BENCH_OPTIONS_H
#define BERTH_BENCH_OPTIONS_H

#include <stdio.h>

/* Prints berth-bench's usage (every scenario's overview) on f. */
void bench_usage(FILE *f);

/* Takes the option at argv[*i] and its value (advancing *i past both), for
 * the scenarios' option loops, which all take "--name value" pairs.
 * Returns 0, 1 after printing the help for --help, or 2 after a message
 * when the value is missing. */
int bench_option_next(int argc, char **argv, int *i, const char **name, const char **value);

#endif /* BERTH_BENCH_OPTIONS_H */
