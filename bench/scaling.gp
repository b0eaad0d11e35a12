$small_dl_1 << EOD
1 325.04
2 464.54
4 867.34
8 1251.39
16 2180.52
32 2251.96
64 2316.46
128 2880.01
EOD
$small_dl_2 << EOD
1 360.56
2 661.53
4 1006.77
8 1328.79
16 1547.91
32 2213.29
64 2837.59
128 2998.19
EOD
$small_dl_3 << EOD
1 571.57
2 697.44
4 1255.43
8 1886.54
16 2342.91
32 2455.37
64 2791.91
128 3442.79
EOD
$small_dl_4 << EOD
1 639.79
2 998.64
4 1276.33
8 1862.58
16 2198.18
32 2585.92
64 2757.72
128 2540.24
EOD
$small_orig << EOD
1 99.77
2 140.29
3 275.93
4 412.89
EOD
$small_best << EOD
1 2880.01
2 2998.19
3 3442.79
4 2757.72
EOD
$latency_dl_1 << EOD
1 9.65
2 19.26
4 38.16
8 76.39
16 151.62
32 300.83
64 588.07
128 1133.52
EOD
$latency_dl_2 << EOD
1 18.87
2 34.98
4 69.24
8 138.56
16 266.88
32 535.32
64 1091.53
128 1986.87
EOD
$latency_dl_3 << EOD
1 28.25
2 53.03
4 106.11
8 203.06
16 413.36
32 787.33
64 1551.84
128 2558.89
EOD
$latency_dl_4 << EOD
1 34.93
2 65.94
4 139.92
8 265.69
16 521.88
32 1039.55
64 1893.02
128 2342.20
EOD
$latency_orig << EOD
1 8.94
2 16.86
3 24.36
4 28.76
EOD
$latency_best << EOD
1 1133.52
2 1986.87
3 2558.89
4 2342.20
EOD
set terminal svg size 1100,820 dynamic font "sans,11" background rgb "white"
set output "/tmp/bfull/scaling.svg"
set multiplot layout 2,2 title "dl scaling on 2 cores (files/s, workers' phase; 2026-12-02)"
set grid
set key top left font ",9" spacing 0.9
set logscale x 2
set logscale y 10
set xlabel "transfers per process (--concurrency)"
set ylabel "files/s"
set title "dl: 4 KiB files, fsync on, by concurrency"
set key top left
set yrange [*:51642]
plot $small_dl_1 using 1:2 with linespoints lw 2 title 'dl, 1 worker(s)', \
  $small_dl_2 using 1:2 with linespoints lw 2 title 'dl, 2 worker(s)', \
  $small_dl_3 using 1:2 with linespoints lw 2 title 'dl, 3 worker(s)', \
  $small_dl_4 using 1:2 with linespoints lw 2 title 'dl, 4 worker(s)', \
  $small_orig using (1):2 with points pt 7 ps 1.2 lc rgb 'black' title 'original (1 per process), 1..4 workers'
set title "dl and the original: 4 KiB files, fsync on, by processes"
set key bottom right
set yrange [*:*]
unset logscale x
set xlabel "worker processes"
set xtics 1
plot $small_best using 1:2 with linespoints lw 2 title 'dl (best of c=64 and c=128)', \
  $small_orig using 1:2 with linespoints lw 2 lc rgb 'black' title 'original'
set logscale x 2
set xtics autofreq
set xlabel "transfers per process (--concurrency)"
set title "dl: 4 KiB files delayed 100 ms, by concurrency"
set key top left
set yrange [*:38383]
plot $latency_dl_1 using 1:2 with linespoints lw 2 title 'dl, 1 worker(s)', \
  $latency_dl_2 using 1:2 with linespoints lw 2 title 'dl, 2 worker(s)', \
  $latency_dl_3 using 1:2 with linespoints lw 2 title 'dl, 3 worker(s)', \
  $latency_dl_4 using 1:2 with linespoints lw 2 title 'dl, 4 worker(s)', \
  $latency_orig using (1):2 with points pt 7 ps 1.2 lc rgb 'black' title 'original (1 per process), 1..4 workers', \
  [1:128] x*10 with lines dt 2 lc rgb 'gray' title 'ideal, 1 worker (c / 0.1 s)'
set title "dl and the original: 4 KiB files delayed 100 ms, by processes"
set key bottom right
set yrange [*:*]
unset logscale x
set xlabel "worker processes"
set xtics 1
plot $latency_best using 1:2 with linespoints lw 2 title 'dl (best of c=64 and c=128)', \
  $latency_orig using 1:2 with linespoints lw 2 lc rgb 'black' title 'original'
set logscale x 2
set xtics autofreq
set xlabel "transfers per process (--concurrency)"
unset multiplot
