$small_dl_1 << EOD
1 521.00
2 632.30
4 885.81
8 1255.46
16 1277.61
32 1166.77
64 1080.04
128 909.20
EOD
$small_dl_2 << EOD
1 511.01
2 672.87
4 956.39
8 1321.62
16 1426.97
32 1342.74
64 1453.64
128 1375.60
EOD
$small_dl_3 << EOD
1 546.12
2 675.66
4 1068.29
8 1336.70
16 1643.39
32 1518.46
64 1606.85
128 1456.33
EOD
$small_dl_4 << EOD
1 597.62
2 707.11
4 920.12
8 1310.09
16 1355.81
32 1280.63
64 1505.15
128 1614.79
EOD
$small_orig << EOD
1 202.97
2 282.56
3 330.65
4 314.68
EOD
$small_best << EOD
1 1080.04
2 1453.64
3 1606.85
4 1614.79
EOD
$latency_dl_1 << EOD
1 9.73
2 19.30
4 38.24
8 76.36
16 150.42
32 297.03
64 567.33
128 1067.23
EOD
$latency_dl_2 << EOD
1 19.18
2 37.58
4 74.98
8 147.66
16 294.53
32 571.91
64 1080.93
128 1474.81
EOD
$latency_dl_3 << EOD
1 28.58
2 53.09
4 105.19
8 221.84
16 437.12
32 841.99
64 1436.72
128 1694.75
EOD
$latency_dl_4 << EOD
1 37.06
2 70.03
4 139.24
8 276.46
16 562.46
32 1000.10
64 1346.97
128 1452.14
EOD
$latency_orig << EOD
1 9.07
2 17.44
3 23.77
4 30.29
EOD
$latency_best << EOD
1 1067.23
2 1474.81
3 1694.75
4 1452.14
EOD
set terminal svg size 1100,820 dynamic font "sans,11" background rgb "white"
set output "/tmp/full2/scaling.svg"
set multiplot layout 2,2 title "dl scaling on 2 cores (files/s, workers' phase; 2026-11-26)"
set grid
set key top left font ",9" spacing 0.9
set logscale x 2
set logscale y 10
set xlabel "transfers per process (--concurrency)"
set ylabel "files/s"
set title "dl: 4 KiB files, fsync on, by concurrency"
set key top left
set yrange [*:24651]
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
set yrange [*:25421]
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
