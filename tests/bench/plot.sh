#!/usr/bin/env bash
# Plots of the intake matrix (gnuplot, PNG): throughput and p99 latency against sessions, per
# message size, and throughput against message size; both servers, plain and STARTTLS.
#   tests/bench/plot.sh INTAKE_TSV OUT_DIR
set -euo pipefail
#   SIZE_SESSIONS: the session count of the plot against size (32)
tsv=${1:?usage: plot.sh INTAKE_TSV OUT_DIR}; out=${2:?}; mkdir -p "$out"
SIZE_SESSIONS=${SIZE_SESSIONS:-32}
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
# One data file per server, mode and size (x = sessions), and per server, mode, sessions (x = size).
awk -F'\t' -v d="$D" 'NR > 1 && $6 != "" {
  f = d "/" $1 "-" $2 "-" $4 ".dat"; print $3, $6, $8 >> f
  g = d "/size-" $1 "-" $2 "-" $3 ".dat"; print $4 / 1024, $6, $6 * $4 / 1048576 >> g }' "$tsv"
label() { case $1 in 1024) echo "1 KB";; 102400) echo "100 KB";; 10485760) echo "10 MB";; *) echo "$1 B";; esac; }
for mode in plain starttls; do
  plots_rate=(); plots_p99=()
  for size in 1024 102400 10485760; do
    for server in gateway postfix; do
      f="$D/$server-$mode-$size.dat"; [ -f "$f" ] || continue
      dash=1; [ "$server" = postfix ] && dash=2
      name=demail-gatewayd; [ "$server" = postfix ] && name=postfix
      plots_rate+=("'$f' using 1:2 with linespoints dt $dash lw 2 title '$name $(label $size)'")
      plots_p99+=("'$f' using 1:3 with linespoints dt $dash lw 2 title '$name $(label $size)'")
    done
  done
  [ ${#plots_rate[@]} -gt 0 ] || continue
  gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced
set logscale xy; set grid; set key outside right
set xtics (1, 8, 32, 128); set xlabel "parallel SMTP sessions"
set output "$out/intake-rate-$mode.png"
set title "Intake: accepted messages per second ($mode, fsync before 250)"
set ylabel "messages/s"
plot $(IFS=,; echo "${plots_rate[*]}")
set output "$out/intake-p99-$mode.png"
set title "Intake: p99 latency, end of DATA to 250 ($mode)"
set ylabel "ms"
plot $(IFS=,; echo "${plots_p99[*]}")
GP
done
rate_plots=(); mbs_plots=()
for server in gateway postfix; do
  for mode in plain starttls; do
    f="$D/size-$server-$mode-$SIZE_SESSIONS.dat"; [ -f "$f" ] || continue
    name=demail-gatewayd; [ "$server" = postfix ] && name=postfix
    dash=1; [ "$server" = postfix ] && dash=2
    rate_plots+=("'$f' using 1:2 with linespoints dt $dash lw 2 title '$name $mode'")
    mbs_plots+=("'$f' using 1:3 with linespoints dt $dash lw 2 title '$name $mode'")
  done
done
if [ ${#rate_plots[@]} -gt 0 ]; then
gnuplot <<GP
set terminal pngcairo size 1200,520 noenhanced
set output "$out/intake-size.png"
set multiplot layout 1,2 title "Intake against message size, $SIZE_SESSIONS sessions (fsync before 250)"
set logscale x; set grid; set key bottom left
set xlabel "message size"
set xtics ("1 KB" 1, "100 KB" 100, "10 MB" 10240)
set logscale y; set ylabel "messages/s"; set title "accepted messages per second"
plot $(IFS=,; echo "${rate_plots[*]}")
set ylabel "MB/s"; set title "accepted megabytes per second"; set key top left
plot $(IFS=,; echo "${mbs_plots[*]}")
unset multiplot
GP
fi
ls "$out"/*.png
