$small_dl_1 << EOD
1 846.98
2 1133.12
4 1920.89
8 2704.32
16 3764.76
32 4966.98
64 4907.63
128 4683.59
EOD
$small_dl_2 << EOD
1 1020.06
2 1193.88
4 2249.30
8 3011.83
16 3958.10
32 4758.03
64 5342.08
128 4755.05
EOD
$small_dl_3 << EOD
1 1045.18
2 1346.16
4 1990.68
8 3124.60
16 3695.60
32 4238.80
64 4594.92
128 5648.02
EOD
$small_dl_4 << EOD
1 1083.67
2 1390.12
4 2025.89
8 2351.00
16 3667.86
32 3428.04
64 5076.89
128 4677.25
EOD
$small_orig << EOD
1 350.29
2 534.05
3 547.43
4 560.23
EOD
$small_best << EOD
1 4907.63
2 5342.08
3 5648.02
4 5076.89
EOD
$latency_dl_1 << EOD
1 9.78
2 19.48
4 38.39
8 76.61
16 151.93
32 300.70
64 591.75
128 1174.00
EOD
$latency_dl_2 << EOD
1 19.34
2 37.77
4 71.66
8 150.65
16 299.67
32 595.18
64 1111.62
128 2146.99
EOD
$latency_dl_3 << EOD
1 28.66
2 53.19
4 105.78
8 212.57
16 434.88
32 830.34
64 1662.48
128 2872.44
EOD
$latency_dl_4 << EOD
1 36.98
2 70.47
4 140.45
8 284.59
16 563.56
32 1110.20
64 2223.64
128 3742.26
EOD
$latency_orig << EOD
1 9.29
2 17.83
3 25.49
4 31.50
EOD
$latency_best << EOD
1 1174.00
2 2146.99
3 2872.44
4 3742.26
EOD
set terminal svg size 1100,820 dynamic font "sans,11" background rgb "white"
set output "bench/scaling.svg"
set multiplot layout 2,2 title "dl scaling on 2 cores (files/s, workers' phase; 2026-11-26)"
set grid
set key top left font ",9" spacing 0.9
set logscale x 2
set logscale y 10
set xlabel "transfers per process (--concurrency)"
set ylabel "files/s"
set title "dl: 4 KiB files, fsync on, by concurrency"
set key top left
set yrange [*:84720]
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
set yrange [*:56134]
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
