$small_dl_1 << EOD
1 548.70
2 732.55
4 1381.36
8 1956.34
16 2507.31
32 2915.02
64 2921.00
128 3431.71
EOD
$small_dl_2 << EOD
1 839.64
2 1094.83
4 1671.40
8 2530.43
16 2924.64
32 3215.56
64 3573.91
128 3723.98
EOD
$small_dl_3 << EOD
1 819.06
2 1144.86
4 1690.84
8 2131.70
16 2602.96
32 2862.58
64 2918.32
128 3132.22
EOD
$small_dl_4 << EOD
1 760.96
2 1003.28
4 1467.69
8 2018.62
16 2497.23
32 2800.32
64 2788.54
128 2782.40
EOD
$small_orig << EOD
1 300.62
2 544.80
3 507.68
4 451.17
EOD
$small_best << EOD
1 3431.71
2 3723.98
3 3132.22
4 2788.54
EOD
$latency_dl_1 << EOD
1 9.76
2 19.28
4 37.90
8 75.63
16 149.63
32 300.25
64 581.54
128 1130.37
EOD
$latency_dl_2 << EOD
1 19.06
2 35.05
4 70.66
8 139.47
16 290.13
32 560.40
64 1094.35
128 2114.35
EOD
$latency_dl_3 << EOD
1 27.67
2 51.49
4 103.86
8 205.86
16 418.31
32 795.05
64 1558.48
128 2547.25
EOD
$latency_dl_4 << EOD
1 35.06
2 68.26
4 134.17
8 261.28
16 522.35
32 988.13
64 1766.57
128 2177.49
EOD
$latency_orig << EOD
1 9.15
2 17.88
3 24.73
4 29.39
EOD
$latency_best << EOD
1 1130.37
2 2114.35
3 2547.25
4 2177.49
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
set yrange [*:55860]
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
set yrange [*:38209]
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
