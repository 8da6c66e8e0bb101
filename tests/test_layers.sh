#!/bin/sh
# test_layers.sh: the core's layers are one-way and no two of its files
# call each other in a loop.
#
# The core is five folders, lowest first: base (errors, strings, JSON
# input, the hash table), model (parse, validate, demand, requests), engine
# (the index, placement, preemption, inventories), store (the Redis cell,
# synchronous and asynchronous) and services (host links, agent calls,
# pools, NGroups, plugins).  Reading the library's objects with nm, a file
# that uses a symbol another file defines makes an edge between the two.
# The test fails when a file uses a symbol of a higher layer, or when the
# edges hold a loop (tsort finds it), and names the files at fault.  It
# reads the build's objects only; it never builds or changes anything.
set -u

build=${top_builddir:-.}
tmp=$(mktemp -d /tmp/berth-layers.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

layer_rank() {
    case $1 in
    base) echo 0 ;; model) echo 1 ;; engine) echo 2 ;; store) echo 3 ;; services) echo 4 ;;
    *) echo 9 ;;
    esac
}

# One line per object: layer, file, object path.
: >"$tmp/objects"
for lo in "$build"/core/*/libberth_core_la-*.lo; do
    [ -f "$lo" ] || continue
    dir=$(dirname "$lo")
    layer=$(basename "$dir")
    file=$(basename "$lo" .lo | sed 's/^libberth_core_la-//')
    obj="$dir/libberth_core_la-$file.o"
    [ -f "$obj" ] || obj="$dir/.libs/libberth_core_la-$file.o"
    [ -f "$obj" ] || { echo "test_layers: no object for $lo"; exit 1; }
    rank=$(layer_rank "$layer")
    [ "$rank" -lt 9 ] || { echo "test_layers: core/$layer is no known layer"; exit 1; }
    echo "$rank $layer/$file $obj" >>"$tmp/objects"
done
count=$(wc -l <"$tmp/objects")
[ "$count" -ge 20 ] || { echo "test_layers: only $count core objects under $build/core"; exit 1; }

# Definitions and uses: "D symbol rank file" and "U symbol rank file".
while read -r rank file obj; do
    nm "$obj" | awk -v r="$rank" -v f="$file" '
        NF == 3 && $2 ~ /^[TDBRC]$/ { print "D", $3, r, f }
        NF == 2 && $1 == "U" { print "U", $2, r, f }'
done <"$tmp/objects" >"$tmp/symbols"

# Edges between files; each use of a higher layer is reported.
awk '
    $1 == "D" { def[$2] = $4; rank[$2] = $3 }
    $1 == "U" { use[++n] = $2; urank[n] = $3; ufile[n] = $4 }
    END {
        bad = 0
        for (i = 1; i <= n; i++) {
            s = use[i]
            if (!(s in def) || def[s] == ufile[i])
                continue
            print ufile[i], def[s] > "/dev/stderr"
            if (rank[s] > urank[i]) {
                printf "test_layers: %s uses %s of %s, a higher layer\n", ufile[i], s, def[s]
                bad = 1
            }
        }
        exit bad
    }' "$tmp/symbols" 2>"$tmp/edges" >"$tmp/upward"
upward=$?
cat "$tmp/upward"

edges=$(sort -u "$tmp/edges" | wc -l)
[ "$edges" -ge 20 ] || { echo "test_layers: only $edges edges between core files"; exit 1; }
if ! sort -u "$tmp/edges" | tsort >/dev/null 2>"$tmp/loops"; then
    echo "test_layers: core files call each other in a loop:"
    cat "$tmp/loops"
    exit 1
fi
[ "$upward" -eq 0 ] || exit 1
echo "test_layers: $count files, $edges edges between them, one-way and without loops"
