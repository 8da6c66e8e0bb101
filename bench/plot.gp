# plot.gp: the figures of bench/run-bench.sh, from the CSV files it writes.
#
#   gnuplot -e "dir='OUTDIR'" bench/plot.gp
#
# Reads OUTDIR/medians.csv (incore medians), OUTDIR/packing.csv (quality)
# and OUTDIR/api.csv, and writes, each only when its input exists:
#   throughput.png  placements/s against hosts, per policy (log-log)
#   latency.png     p50, p99 and p999 of one placement against hosts, per
#                   policy (log-log)
#   packing.png     hosts used over the optimum (or its lower bound) per
#                   packing benchmark and packer, as bars; 1.0 is optimal
#   api.png         creates/s through berthd's REST API by connections
# Columns are found by their header names, so that a column added to a
# CSV file does not move the others.  Images are 800x500 PNG.

if (!exists("dir")) dir = "."

set terminal pngcairo size 800,500 font "sans,10" noenhanced
set datafile separator comma
set datafile columnheaders
set grid
set key top right

policies = "firstfit binpack spread"
color(i) = i == 1 ? "#888888" : i == 2 ? "#1f77b4" : "#d62728"
# The rows of `file` whose policy is `name`, header included: filtered
# before gnuplot reads them, as rows left out with an undefined value would
# break the lines between the points that remain.
rows(file, name) = sprintf("< awk -F, -v p='%s' 'NR == 1 { for (i = 1; i <= NF; i++) " . \
    "if ($i == \"policy\") c = i; print; next } $c == p' '%s'", name, file)

max(a, b) = a > b ? a : b
# "A / B" as two lines, for the bar chart's labels
wrap(s) = strstrt(s, " / ") > 0 ? s[1:strstrt(s, " / ") - 1] . "\n" . s[strstrt(s, " / ") + 3:] : s

file_exists(f) = system("test -s '" . f . "' && echo 1 || echo 0") + 0

medians = dir . "/medians.csv"
if (file_exists(medians)) {
    set output dir . "/throughput.png"
    set title "In-core placement throughput (median of runs; higher is better)"
    set xlabel "hosts"
    set ylabel "placements per second"
    set logscale xy
    set format y "%.0s%c"
    set xtics ("1,000" 1000, "10,000" 10000, "100,000" 100000)
    set xrange [700:140000]
    plot for [i = 1:3] rows(medians, word(policies, i)) \
        using (column("hosts")):(column("placements_per_sec")) \
        smooth unique with linespoints lw 2 pt 7 lc rgb color(i) title word(policies, i)

    set output dir . "/latency.png"
    set title "In-core placement latency per call (median of runs; lower is better)"
    set ylabel "latency of one place call"
    set ytics ("100 ns" 100, "1 us" 1000, "10 us" 10000, "100 us" 100000, "1 ms" 1000000)
    set key outside right top
    pct = "p50 p99 p999"
    plot for [j = 1:3] for [i = 1:3] rows(medians, word(policies, i)) \
        using (column("hosts")):(column(word(pct, j) . "_ns")) \
        smooth unique with linespoints lw 2 dt j pt (4 + 2 * j) lc rgb color(i) \
        title word(policies, i) . " " . word(pct, j)
    unset logscale
    set format y "%g"
    set xtics autofreq
    set ytics autofreq
    set autoscale x
    set key top right
}

packing = dir . "/packing.csv"
if (file_exists(packing)) {
    set output dir . "/packing.png"
    set title "Packing: hosts used / optimum or lower bound (lower is better; 1.0 is optimal)"
    set xlabel ""
    set ylabel "ratio"
    set style data histogram
    set style histogram clustered gap 1
    set style fill solid 0.8 border -1
    set boxwidth 0.9
    set key inside top left
    set bmargin 4
    # room above the tallest bar for the key
    stats packing using (max(max(column("firstfit"), column("binpack")), \
                             max(column("spread"), column("ffd")))) nooutput
    set xrange [-0.5:STATS_records - 0.5]
    set yrange [0.95:1 + (STATS_max - 0.95) * 1.4]
    plot packing using (column("firstfit")):xtic(wrap(strcol(1))) lc rgb color(1) title "firstfit", \
         '' using (column("binpack")) lc rgb color(2) title "binpack", \
         '' using (column("spread")) lc rgb color(3) title "spread", \
         '' using (column("ffd")) lc rgb "#2ca02c" title "ffd (offline reference)", \
         1.0 with lines lc rgb "black" dt 2 notitle, \
         1.05 with lines lc rgb "black" dt 3 title "binpack target on BPPLIB with a known optimum"
    set autoscale xy
    unset bmargin
    set style data points
    set key top right
}

api = dir . "/api.csv"
if (file_exists(api)) {
    set output dir . "/api.png"
    set title "berthd REST API: container-group creates per second (HTTPS, 4 sim agents)"
    set xlabel "connections"
    set ylabel "creates per second"
    set style fill solid 0.8 border -1
    set boxwidth 0.5
    stats api using (column("creates_per_sec")) nooutput
    set yrange [0:STATS_max * 1.15]
    set key off
    plot api using 0:(column("creates_per_sec")):xtic(strcol("connections")) \
        with boxes lc rgb color(2), \
        '' using 0:(column("creates_per_sec")):(sprintf("%.0f/s", column("creates_per_sec"))) \
        with labels offset 0,1
}

set output
