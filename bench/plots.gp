# Draws the benchmark plots from the .dat files bench/run writes.
# gnuplot -e "dir='bench-results'" bench/plots.gp
set terminal pngcairo size 900,560 font ",11"
set grid
set key top left

set output dir."/pause_vs_dirty_pages.png"
set title "Guest pause per checkpoint vs dirty pages (kvm backend)"
set xlabel "dirty pages per epoch"
set ylabel "microseconds"
set logscale xy
plot dir."/checkpoint.dat" using 1:2 with linespoints lw 2 title "pause p50", \
     dir."/checkpoint.dat" using 1:3 with linespoints lw 1 dt 2 title "pause p99", \
     dir."/checkpoint.dat" using 1:4 with linespoints lw 2 title "harvest + memcpy of the same pages", \
     dir."/checkpoint.dat" using 1:5 with lines lw 1 dt 3 title "target: 200 us + 1.5 x (harvest + memcpy)"

unset logscale
set output dir."/stream_throughput.png"
set title "Replication stream vs a plain transfer of the same bytes, same link"
set xlabel ""
set ylabel "MiB/s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set xtics rotate by -20
plot dir."/stream_throughput_all.dat" using 2:xtic(1) title "understudy stream", \
     "" using 3 title "plain TCP / TLS"
