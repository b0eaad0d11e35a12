$small_dl_1 << EOD
1 593.59
2 877.38
4 1455.98
8 2056.27
16 2630.44
32 3847.07
64 3400.12
128 3634.22
EOD
$small_dl_2 << EOD
1 818.06
2 851.29
4 1375.31
8 2107.73
16 2823.36
32 3485.70
64 3835.52
128 4110.51
EOD
$small_dl_3 << EOD
1 805.58
2 1152.53
4 1491.48
8 2142.84
16 2368.95
32 3797.98
64 3885.78
128 3706.12
EOD
$small_dl_4 << EOD
1 813.47
2 998.14
4 1488.13
8 2181.76
16 2489.27
32 2766.94
64 2957.83
128 3754.98
EOD
$small_orig << EOD
1 236.20
2 388.03
3 467.50
4 438.35
EOD
$small_best << EOD
1 3634.22
2 4110.51
3 3885.78
4 3754.98
EOD
$latency_dl_1 << EOD
1 9.78
2 19.51
4 38.29
8 76.37
16 150.91
32 299.13
64 590.31
128 1151.25
EOD
$latency_dl_2 << EOD
1 19.24
2 35.94
4 72.31
8 142.59
16 282.74
32 573.02
64 1144.24
128 2162.22
EOD
$latency_dl_3 << EOD
1 27.13
2 52.77
4 103.74
8 207.32
16 412.36
32 795.29
64 1509.95
128 2569.53
EOD
$latency_dl_4 << EOD
1 35.70
2 70.48
4 138.94
8 278.21
16 529.93
32 1077.08
64 1823.66
128 2525.32
EOD
$latency_orig << EOD
1 9.17
2 17.67
3 23.79
4 29.53
EOD
$latency_best << EOD
1 1151.25
2 2162.22
3 2569.53
4 2525.32
EOD
set terminal svg size 1100,820 dynamic font "sans,11" background rgb "white"
set output "/tmp/bfull2/scaling.svg"
set multiplot layout 2,2 title "dl scaling on 2 cores (files/s, workers' phase; 2026-12-02)"
set grid
set key top left font ",9" spacing 0.9
set logscale x 2
set logscale y 10
set xlabel "transfers per process (--concurrency)"
set ylabel "files/s"
set title "dl: 4 KiB files, fsync on, by concurrency"
set key top left
set yrange [*:61658]
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
set yrange [*:38543]
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
