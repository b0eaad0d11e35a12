$small_dl_1 << EOD
1 630.61
2 916.21
4 1390.10
8 2219.79
16 2903.17
32 3583.63
64 3568.85
128 3312.65
EOD
$small_dl_2 << EOD
1 840.52
2 1139.65
4 1663.72
8 2366.51
16 2988.63
32 3127.99
64 4080.72
128 4393.05
EOD
$small_dl_3 << EOD
1 800.93
2 1097.86
4 1628.28
8 2093.82
16 2583.19
32 2954.49
64 3554.86
128 3529.13
EOD
$small_dl_4 << EOD
1 813.16
2 1061.91
4 1538.49
8 1998.96
16 2503.38
32 2920.13
64 3380.60
128 3374.10
EOD
$small_orig << EOD
1 242.60
2 458.00
3 471.36
4 485.66
EOD
$small_best << EOD
1 3568.85
2 4393.05
3 3554.86
4 3380.60
EOD
$latency_dl_1 << EOD
1 9.52
2 19.02
4 37.63
8 74.87
16 148.33
32 297.09
64 586.18
128 1132.91
EOD
$latency_dl_2 << EOD
1 18.90
2 37.02
4 70.38
8 147.13
16 294.97
32 577.36
64 1147.27
128 2084.00
EOD
$latency_dl_3 << EOD
1 27.70
2 54.97
4 104.50
8 207.34
16 412.99
32 853.29
64 1596.55
128 2873.84
EOD
$latency_dl_4 << EOD
1 36.41
2 68.73
4 138.89
8 273.36
16 550.87
32 1105.48
64 2083.03
128 2982.66
EOD
$latency_orig << EOD
1 8.66
2 17.16
3 24.09
4 29.41
EOD
$latency_best << EOD
1 1132.91
2 2084.00
3 2873.84
4 2982.66
EOD
set terminal svg size 1100,820 dynamic font "sans,11" background rgb "white"
set output "/tmp/bfull/scaling.svg"
set multiplot layout 2,2 title "dl scaling on 2 cores (files/s, workers' phase; 2026-12-03)"
set grid
set key top left font ",9" spacing 0.9
set logscale x 2
set logscale y 10
set xlabel "transfers per process (--concurrency)"
set ylabel "files/s"
set title "dl: 4 KiB files, fsync on, by concurrency"
set key top left
set yrange [*:65896]
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
set yrange [*:44740]
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
