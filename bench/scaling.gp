$small_dl_1 << EOD
1 804.47
2 1131.78
4 1758.89
8 2314.95
16 3217.87
32 4212.65
64 4170.01
128 4576.00
EOD
$small_dl_2 << EOD
1 990.47
2 1319.38
4 1810.61
8 2609.47
16 3308.31
32 4083.71
64 4651.60
128 4750.24
EOD
$small_dl_3 << EOD
1 932.04
2 1182.89
4 1766.93
8 2641.45
16 3489.15
32 4068.48
64 4850.51
128 4414.30
EOD
$small_dl_4 << EOD
1 940.28
2 1157.81
4 1801.29
8 2533.16
16 3266.20
32 3667.85
64 4210.38
128 3906.54
EOD
$small_orig << EOD
1 308.63
2 496.10
3 505.24
4 526.82
EOD
$small_best << EOD
1 4576.00
2 4750.24
3 4850.51
4 4210.38
EOD
$latency_dl_1 << EOD
1 9.65
2 19.09
4 37.89
8 75.29
16 150.63
32 298.73
64 583.59
128 1147.79
EOD
$latency_dl_2 << EOD
1 18.89
2 35.11
4 70.00
8 139.06
16 280.93
32 579.49
64 1097.94
128 2143.26
EOD
$latency_dl_3 << EOD
1 28.13
2 52.89
4 111.02
8 208.54
16 417.31
32 829.06
64 1646.54
128 2827.63
EOD
$latency_dl_4 << EOD
1 36.46
2 70.26
4 144.02
8 275.96
16 554.48
32 1075.55
64 2054.67
128 3074.66
EOD
$latency_orig << EOD
1 8.98
2 17.39
3 24.83
4 30.81
EOD
$latency_best << EOD
1 1147.79
2 2143.26
3 2827.63
4 3074.66
EOD
set terminal svg size 1100,820 dynamic font "sans,11" background rgb "white"
set output "/tmp/bfull2/scaling.svg"
set multiplot layout 2,2 title "dl scaling on 2 cores (files/s, workers' phase; 2026-12-03)"
set grid
set key top left font ",9" spacing 0.9
set logscale x 2
set logscale y 10
set xlabel "transfers per process (--concurrency)"
set ylabel "files/s"
set title "dl: 4 KiB files, fsync on, by concurrency"
set key top left
set yrange [*:72758]
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
set yrange [*:46120]
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
