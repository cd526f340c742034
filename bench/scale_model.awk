# SPDX-License-Identifier: MIT
# The cost model of docs/perf.md: 10,000 hosts x 128 ranks, extrapolated
# from the largest rows of docs/perf/scale.tsv (bench/bench_scale.sh).
function gb(x) { return x >= 1e15 ? sprintf("%.1f PB", x / 1e15) : sprintf("%.1f GB", x / 1e9) }
function dur(x) {
	if (x >= 86400) return sprintf("%.0f days", x / 86400)
	return x < 120 ? sprintf("%.1f s", x) : sprintf("%.0f s (%.1f min)", x, x / 60)
}
BEGIN { FS = "\t" }
$1 == "hosts-sparse-ring" { rn = $2; rtot = $16; rreg = $10; rconns = $4; rq = $11; rrel = $13; rres = $15 }
$1 == "hosts-sparse-random" { xn = $2; xreb = $14; xout = $20; xcpu = $21; xhwm = $22 }
$1 == "flat-all" { fn = $2; fout = $20; ftot = $16 }
END {
	if (!rn || !xn || !fn || !xreb) {
		print "No cost model: a row it needs is missing."
		exit
	}
	H = 10000; R = 128; Q = 64; M = 8; N = H * R
	m = 12 + 40 + 12 * (Q + M)
	# the whole exchange's rate, with the generator on the same cores
	rate = xout / xreb
	cpu_gb = xcpu / (xout / 1e9)
	in_b = N * m
	ring_out = H * (R + Q) * m
	rnd_out = H * N * (1 - exp(-R * Q / N)) * m
	flat_out = N * N * m
	reg = rreg / rconns
	t_ring = (in_b + ring_out) / rate + H * reg
	t_rnd = (in_b + rnd_out) / rate + H * reg
	printf "### Cost model: 10,000 hosts × 128 ranks (64 QPs, 8 MRs each)\n\n"
	printf "Extrapolated from the largest rows above (%d ranks): N = %d ranks, a\n", xn, N
	printf "rank's map m = %d bytes. Measured: the daemon sent %s during the random\n", m, gb(xout)
	printf "run's rebuild of %.2f s, **%.2f GB/s** (the generator on the same 2 cores),\n", xreb, rate / 1e9
	printf "at %.2f s of daemon CPU per GB sent; registration took %.3f ms per host\n", cpu_gb, reg * 1e3
	printf "connection (pipelined). The daemon is one thread: more cores do not raise\n"
	printf "its rate. Times below = bytes in and out at that rate + registration.\n\n"
	printf "| exchange | into ibsnapd | out of ibsnapd | time | ibsnapd memory |\n"
	printf "|---|---|---|---|---|\n"
	printf "| a connection per rank, PUT/ALL (the shim today) | %s | %s (every map to every rank) | %s | %s, 1.28 M connections |\n", gb(in_b), gb(flat_out), dur(flat_out / rate), gb(in_b)
	printf "| hosts of 128, sparse, ring (halo) peers | %s | %s | %s | ~%s |\n", gb(in_b), gb(ring_out), dur(t_ring), gb(2 * in_b)
	printf "| hosts of 128, sparse, random peers | %s | %s | %s | ~%s |\n\n", gb(in_b), gb(rnd_out), dur(t_rnd), gb(2 * in_b)
	printf "Memory: the puts are held until the step ends (N × m = %s), plus each\n", gb(in_b)
	printf "connection's read buffer (kept up to 256 KiB: about one host's put), the\n"
	printf "key index (%.0f MB) and at most 16 MB + one reply of queued output\n", 2 * N * 16 / 1e6
	printf "(ISN_OQ_BUDGET): linear in ranks (peak RSS above: %.0f MB at %d ranks).\n\n", xhwm / 1024, xn
	printf "What breaks first, in order:\n\n"
	printf "1. **The shim's exchange as it is today** (one connection per process,\n"
	printf "   PUT, ALL to everyone): bytes grow as N² (measured: %.0f MB, %.2f s at\n", fout / 1e6, ftot
	printf "   %d ranks; %s at 4,096), and 1.28 M processes cannot even connect to\n", fn, gb(4096 * 4096 * m)
	printf "   one daemon (20,000 descriptors per process on this host). Host agents\n"
	printf "   that carry their ranks (PUTK/GET, measured above with simulated hosts)\n"
	printf "   are the way out; `ibsnap run` does not relay its ranks yet.\n"
	printf "2. **Random peer patterns through one coordinator:** a host of 128 ranks\n"
	printf "   × 64 random peers needs ~8,000 distinct maps: %s out of one\n", gb(rnd_out)
	printf "   single-threaded daemon, %s, %s the default --phase-timeout of\n", dur(t_rnd), (t_rnd > 120 ? "past" : "close to")
	printf "   120 s on a host like this one. Halo-like patterns (most MPI codes)\n"
	printf "   stay at %s. Remedies, by cost: a longer phase timeout; smaller\n", dur(t_ring)
	printf "   records (a peer needs one QP's\n"
	printf "   entry and the rkeys, ~150 of the %d bytes); a coordinator per rack\n", m
	printf "   under the job's; PMIx's fence (the batch system's own tree).\n"
	printf "3. **Registration:** %d host connections at %.3f ms each, %s, behind a\n", H, reg * 1e3, dur(H * reg)
	printf "   listen backlog of 1,024: not a limit.\n"
	printf "4. **Barriers** are counters: quiesce, release and resume took %.3f,\n", rq
	printf "   %.3f and %.3f s at %d ranks (ring): not what breaks.\n", rrel, rres, rn
}
