$small_dl_1 << EOD
1 648.29
2 931.75
4 1507.37
8 2183.13
16 2515.85
32 3292.94
64 3317.15
128 3310.92
EOD
$small_dl_2 << EOD
1 740.25
2 993.82
4 1512.10
8 2105.97
16 2610.74
32 2722.84
64 2907.73
128 2898.13
EOD
$small_dl_3 << EOD
1 580.05
2 734.66
4 1172.66
8 1540.68
16 1826.09
32 2139.36
64 2322.13
128 2303.51
EOD
$small_dl_4 << EOD
1 517.78
2 694.15
4 1098.34
8 1367.35
16 1653.01
32 1867.33
64 1798.78
128 1955.44
EOD
$small_orig << EOD
1 374.50
2 512.49
3 379.06
4 339.55
EOD
$small_best << EOD
1 3317.15
2 2907.73
3 2322.13
4 1955.44
EOD
$latency_dl_1 << EOD
1 9.64
2 19.14
4 37.22
8 74.10
16 145.26
32 289.10
64 567.19
128 1060.06
EOD
$latency_dl_2 << EOD
1 18.58
2 34.19
4 68.98
8 141.25
16 279.34
32 548.38
64 1040.13
128 1902.78
EOD
$latency_dl_3 << EOD
1 27.16
2 51.26
4 103.69
8 194.78
16 403.65
32 771.92
64 1408.90
128 2022.86
EOD
$latency_dl_4 << EOD
1 33.37
2 65.77
4 131.36
8 259.81
16 508.50
32 1012.88
64 1688.68
128 1945.71
EOD
$latency_orig << EOD
1 9.11
2 16.71
3 23.46
4 29.00
EOD
$latency_best << EOD
1 1060.06
2 1902.78
3 2022.86
4 1945.71
EOD
set terminal svg size 1100,820 dynamic font "sans,11" background rgb "white"
set output "/tmp/bfull3/scaling.svg"
set multiplot layout 2,2 title "dl scaling on 2 cores (files/s, workers' phase; 2026-12-03)"
set grid
set key top left font ",9" spacing 0.9
set logscale x 2
set logscale y 10
set xlabel "transfers per process (--concurrency)"
set ylabel "files/s"
set title "dl: 4 KiB files, fsync on, by concurrency"
set key top left
set yrange [*:49757]
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
set yrange [*:30343]
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
