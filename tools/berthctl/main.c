/*
 * main.c: berthctl, Berth's command-line tool: its usage text, the two
 * lines every usage error and every want of memory print, and the
 * dispatch of the command word (argv[1]) to a command family.
 *
 * `berthctl place` is an offline placement run (place.c); `berthctl fsck`
 * checks a cell held in Redis against Berth's promises and `berthctl cell
 * load` puts an inventory's hosts into a cell in Redis (cell.c);
 * `berthctl container ...`, `host list`, `ngroup ...` and `pool ...` talk
 * to berthd's REST API (container.c, ngroup.c, pool.c).  This file does no
 * work of its own: it never reads a file, opens a connection or parses a
 * command's options.
 *
 * Exit status of place and cell load: 0 when the run completed (whatever
 * the individual documents' outcomes), 2 for a usage error, an unusable
 * input file or an unreachable Redis, 1 for an internal failure (out of
 * memory, stdout not writable).  fsck: 0 clean, 1 violations found, 2 usage
 * error or Redis unreachable.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "berth.h"
#include "berthctl.h"

static const char usage_text[] =
    "usage: berthctl place --hosts FILE --groups FILE [--policy binpack|spread|firstfit]\n"
    "                      [--seed N] [--table]\n"
    "       berthctl fsck --redis URL --cell NAME\n"
    "       berthctl cell load --redis URL --cell NAME --hosts FILE\n"
    "       berthctl container create|show|list|delete|logs|exec|restart|stop|start ...\n"
    "       berthctl host list|cordon|uncordon|drain ...\n"
    "       berthctl ngroup create|show|list|scale|update|delete ...\n"
    "       berthctl pool create|show|list|delete ...\n"
    "       berthctl --help\n"
    "       berthctl --version\n"
    "\n"
    "place   places every ACI container-group document of the groups file (a JSON\n"
    "        array, or one document per line) on the hosts of the inventory, in\n"
    "        order; a name seen again is a redeploy (create-or-update).  Prints one\n"
    "        JSON object per document on stdout (--table: an aligned table) and a\n"
    "        utilization summary on stderr.\n"
    "\n"
    "  --hosts FILE    host inventory: a JSON array of hosts, or\n"
    "                  {\"gpuSkus\": [...], \"hosts\": [...]}\n"
    "  --groups FILE   ACI container-group documents, each with a \"name\"\n"
    "  --policy NAME   binpack (default), spread or firstfit\n"
    "  --seed N        breaks ties between equal hosts (default 0)\n"
    "  --table         human-readable table instead of JSON lines\n"
    "\n"
    "fsck    checks a cell held in Redis: no host over capacity, host usage equal\n"
    "        to the sum of its groups, every group on an existing host and in its\n"
    "        group set, known record versions, a consistent change log, no\n"
    "        secret stored in clear in a group's document.  Prints each\n"
    "        violation on stdout and a summary on stderr; changes nothing.\n"
    "\n"
    "cell load  adds (or replaces) every host of an inventory file in a cell\n"
    "        held in Redis, creating the cell when it is new; an inventory's\n"
    "        \"limits\" become the cell's per-group limits (members it leaves out:\n"
    "        ACI's), which berthd and every store on the cell then use.\n"
    "\n"
    "  --redis URL     redis://HOST:PORT or unix:///PATH (a Cluster node is fine)\n"
    "  --cell NAME     the cell: 1 to 63 of a-z, 0-9 and '-'\n"
    "\n"
    "Exit status: 0 when the run completed (fsck: the cell is clean), 1 for an\n"
    "internal failure (fsck: violations found), 2 for a usage error, an\n"
    "unusable input file or an unreachable Redis.\n";

/* Contract (berthctl.h). */
int berthctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("berthctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'berthctl --help'.\n", stderr);
    return BERTHCTL_EXIT_USAGE;
}

/* Contract (berthctl.h). */
int berthctl_out_of_memory(void)
{
    fputs("berthctl: out of memory\n", stderr);
    return BERTHCTL_EXIT_FAILED;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return berthctl_usage_error("%s", "missing command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        fputs("\n", stdout);
        fputs(berthctl_container_usage, stdout);
        fputs("\n", stdout);
        fputs(berthctl_ngroup_usage, stdout);
        fputs("\n", stdout);
        fputs(berthctl_pool_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("berthctl %s\n", berth_version());
        return 0;
    }
    if (strcmp(cmd, "place") == 0)
        return berthctl_place_main(argc, argv);
    if (strcmp(cmd, "fsck") == 0)
        return berthctl_fsck_main(argc, argv);
    if (strcmp(cmd, "cell") == 0) {
        if (argc >= 3 && strcmp(argv[2], "load") == 0)
            return berthctl_cell_load_main(argc, argv);
        return berthctl_usage_error("%s", "cell needs a subcommand: load");
    }
    if (strcmp(cmd, "container") == 0 || strcmp(cmd, "host") == 0)
        return berthctl_container_main(argc, argv);
    if (strcmp(cmd, "ngroup") == 0)
        return berthctl_ngroup_main(argc, argv);
    if (strcmp(cmd, "pool") == 0)
        return berthctl_pool_main(argc, argv);
    return berthctl_usage_error("unknown command '%s'", cmd);
}
