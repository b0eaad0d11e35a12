$small_dl_1 << EOD
1 49.60
2 42.10
4 146.90
8 253.30
16 349.00
32 472.70
64 441.70
128 533.80
EOD
$small_dl_2 << EOD
1 78.50
2 118.50
4 185.40
8 272.90
16 360.20
32 540.10
64 679.80
128 513.90
EOD
$small_dl_3 << EOD
1 119.60
2 130.20
4 177.50
8 377.80
16 502.10
32 658.40
64 617.90
128 639.50
EOD
$small_dl_4 << EOD
1 167.70
2 187.40
4 240.40
8 337.20
16 437.60
32 540.20
64 636.20
128 624.80
EOD
$small_orig << EOD
1 45.50
2 85.10
3 115.70
4 121.50
EOD
$small_best << EOD
1 533.80
2 679.80
3 639.50
4 636.20
EOD
$latency_dl_1 << EOD
1 8.90
2 15.80
4 27.20
8 60.00
16 107.60
32 202.50
64 347.90
128 523.40
EOD
$latency_dl_2 << EOD
1 13.80
2 26.30
4 55.80
8 105.20
16 196.50
32 337.90
64 530.20
128 614.60
EOD
$latency_dl_3 << EOD
1 23.90
2 47.20
4 92.50
8 147.40
16 262.40
32 416.10
64 467.80
128 524.90
EOD
$latency_dl_4 << EOD
1 29.80
2 61.90
4 98.90
8 176.00
16 309.10
32 435.10
64 656.00
128 745.40
EOD
$latency_orig << EOD
1 8.20
2 14.40
3 16.80
4 17.00
EOD
$latency_best << EOD
1 523.40
2 614.60
3 524.90
4 745.40
EOD
set terminal svg size 1100,820 dynamic font "sans,11" background rgb "white"
set output "bench/scaling.svg"
set multiplot layout 2,2 title "dl scaling on 2 cores (files/s, workers' phase; 2026-11-25)"
set grid
set key top left font ",9" spacing 0.9
set logscale x 2
set logscale y 10
set xlabel "transfers per process (--concurrency)"
set ylabel "files/s"
set title "dl: 4 KiB files, fsync on, by concurrency"
set key top left
set yrange [*:10197]
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
set yrange [*:11181]
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
