#!/bin/sh
# test_embed.sh: proves README.md's embedding example true.  Extracts the C
# program that follows the "<!-- embed-example -->" marker, installs the
# library into a temporary root (make install-libLTLIBRARIES ... DESTDIR=...),
# compiles the program the way the README says (cc example.c $(pkg-config --cflags --libs
# berth)) against that installation, runs it and checks that it reports the
# host its group went to.  Never writes outside its temporary directory.
#
# Environment (set by "make check"): top_srcdir, top_builddir, MAKE, CC.
set -eu

: "${MAKE:=make}"
: "${CC:=cc}"
tmp=$(mktemp -d /tmp/berth-embed.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

# The first ```c block after the marker line.
awk '
    $0 == "<!-- embed-example -->" { marker = 1; next }
    marker && !inside && /^```c[ \t]*$/ { inside = 1; next }
    inside && /^```/ { done = 1; exit }
    inside { print }
    END { if (!done) exit 1 }
' "$top_srcdir/README.md" >"$tmp/example.c" || {
    echo "test_embed: no \`\`\`c block after <!-- embed-example --> in README.md"
    exit 1
}

root="$tmp/root"
# Only the library, its headers and berth.pc: installing the plugins and
# programs would relink them inside the build tree while other tests load
# them (make check runs tests in parallel).
if ! $MAKE -s -C "$top_builddir" install-libLTLIBRARIES install-includeHEADERS \
        install-pkgconfigDATA DESTDIR="$root" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "test_embed: make install failed"
    exit 1
fi
pc=$(find "$root" -name berth.pc | head -n 1)
if [ -z "$pc" ]; then
    echo "test_embed: make install did not install berth.pc"
    exit 1
fi
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")

# A sanitizer build's library needs its runtime in the program too.
sanitize=$(sed -n 's/^SANITIZER_CFLAGS = //p' "$top_builddir/Makefile")

flags=$(PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$root" pkg-config --cflags --libs berth)
cd "$tmp"
# shellcheck disable=SC2086 # flags are word lists
$CC $sanitize example.c $flags -o example
LD_LIBRARY_PATH="$libdir" ./example >out.txt
cat out.txt
if ! grep -q 'host-b' out.txt; then
    echo "test_embed: the example did not report the host its group went to (host-b)"
    exit 1
fi
