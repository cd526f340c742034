// SPDX-License-Identifier: MIT
/*
 * An MPI job of the project's own for tests/shim/mpi.sh: every iteration a
 * ring (each rank sends to the next, small and large messages, the large
 * ones past UCX's rendezvous threshold) and an all-to-all, every word a
 * function of (iteration, source, destination, index), checked on arrival
 * and summed; at the end the sums are reduced and compared with the value
 * the formula gives.  Rank 0 prints "started" once all ranks are connected
 * (and creates FILE: mpirun forwards output late) and "N iterations,
 * checksum X ok" at the end; any mismatch aborts the job.
 * Rank 0 writes the iteration it is at into PROGRESS every 10 (-p).
 *   mpi_ring [-n ITERS] [-s WORDS] [-r FILE] [-p PROGRESS]
 */
#include <fcntl.h>
#include <inttypes.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define A2A_WORDS 64

static uint64_t word(uint64_t it, uint64_t src, uint64_t dst, uint64_t i)
{
	uint64_t x = (it << 40) ^ (src << 32) ^ (dst << 24) ^ i;

	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ull;
	return x ^ (x >> 29);
}

static void fill(uint64_t *buf, size_t n, int it, int src, int dst)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = word(it, src, dst, i);
}

/* The sum of a checked buffer; a wrong word aborts the job. */
static uint64_t check(const uint64_t *buf, size_t n, int it, int src, int dst,
		      const char *what)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		if (buf[i] != word(it, src, dst, i)) {
			fprintf(stderr,
				"mpi_ring: %s: iteration %d, %d -> %d, "
				"word %zu: %#" PRIx64 ", expected %#" PRIx64
				"\n",
				what, it, src, dst, i, buf[i],
				word(it, src, dst, i));
			MPI_Abort(MPI_COMM_WORLD, 3);
		}
		sum += buf[i];
	}
	return sum;
}

static uint64_t expected_sum(int iters, int size, size_t words)
{
	uint64_t sum = 0;

	for (int it = 0; it < iters; it++)
		for (int r = 0; r < size; r++) {
			int next = (r + 1) % size;

			for (size_t i = 0; i < words; i++)
				sum += word(it, r, next, i);
			for (size_t i = 0; i < 8; i++)
				sum += word(it, r, next, i);
			for (int d = 0; d < size; d++)
				for (size_t i = 0; i < A2A_WORDS; i++)
					sum += word(it, r, d, i);
		}
	return sum;
}

int main(int argc, char **argv)
{
	int iters = 1000, rank, size, opt, next, prev;
	const char *ready = NULL, *progress = NULL;
	int pfd = -1;
	size_t words = 16384; /* 128 KiB: rendezvous */
	uint64_t *sbig, *rbig, *sa2a, *ra2a, small_s[8], small_r[8];
	uint64_t sum = 0, total = 0;
	double t0;

	MPI_Init(&argc, &argv);
	while ((opt = getopt(argc, argv, "n:s:r:p:")) != -1) {
		if (opt == 'n')
			iters = atoi(optarg);
		else if (opt == 's')
			words = strtoul(optarg, NULL, 0);
		else if (opt == 'r')
			ready = optarg;
		else if (opt == 'p')
			progress = optarg;
		else
			MPI_Abort(MPI_COMM_WORLD, 2);
	}
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	next = (rank + 1) % size;
	prev = (rank + size - 1) % size;
	sbig = malloc(words * sizeof(*sbig));
	rbig = malloc(words * sizeof(*rbig));
	sa2a = malloc(size * A2A_WORDS * sizeof(*sa2a));
	ra2a = malloc(size * A2A_WORDS * sizeof(*ra2a));
	if (!sbig || !rbig || !sa2a || !ra2a)
		MPI_Abort(MPI_COMM_WORLD, 2);

	/* every pair connected before "started": wire-up is not checkpointed */
	for (int d = 0; d < size; d++)
		fill(sa2a + d * A2A_WORDS, A2A_WORDS, 0, rank, d);
	MPI_Alltoall(sa2a, A2A_WORDS, MPI_UINT64_T, ra2a, A2A_WORDS,
		     MPI_UINT64_T, MPI_COMM_WORLD);
	MPI_Barrier(MPI_COMM_WORLD);
	if (rank == 0) {
		FILE *f = ready ? fopen(ready, "w") : NULL;

		printf("mpi_ring: %d ranks started\n", size);
		fflush(stdout);
		if (f)
			fclose(f);
		if (progress)
			pfd = open(progress, O_WRONLY | O_CREAT | O_TRUNC,
				   0644);
	}
	t0 = MPI_Wtime();
	for (int it = 0; it < iters; it++) {
		if (pfd >= 0 && it % 10 == 0) {
			char line[16];

			snprintf(line, sizeof(line), "%10d\n", it);
			if (pwrite(pfd, line, 11, 0) != 11)
				MPI_Abort(MPI_COMM_WORLD, 2);
		}
		fill(small_s, 8, it, rank, next);
		MPI_Sendrecv(small_s, 8, MPI_UINT64_T, next, 1, small_r, 8,
			     MPI_UINT64_T, prev, 1, MPI_COMM_WORLD,
			     MPI_STATUS_IGNORE);
		sum += check(small_r, 8, it, prev, rank, "ring (small)");

		fill(sbig, words, it, rank, next);
		MPI_Sendrecv(sbig, words, MPI_UINT64_T, next, 2, rbig, words,
			     MPI_UINT64_T, prev, 2, MPI_COMM_WORLD,
			     MPI_STATUS_IGNORE);
		sum += check(rbig, words, it, prev, rank, "ring (large)");

		for (int d = 0; d < size; d++)
			fill(sa2a + d * A2A_WORDS, A2A_WORDS, it, rank, d);
		MPI_Alltoall(sa2a, A2A_WORDS, MPI_UINT64_T, ra2a, A2A_WORDS,
			     MPI_UINT64_T, MPI_COMM_WORLD);
		for (int s = 0; s < size; s++)
			sum += check(ra2a + s * A2A_WORDS, A2A_WORDS, it, s,
				     rank, "all-to-all");
	}
	MPI_Reduce(&sum, &total, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
	if (rank == 0) {
		uint64_t want = expected_sum(iters, size, words);

		printf("mpi_ring: %d iterations in %.2f s, checksum %#" PRIx64
		       " %s\n",
		       iters, MPI_Wtime() - t0, total,
		       total == want ? "ok" : "WRONG");
		fflush(stdout);
		if (total != want)
			MPI_Abort(MPI_COMM_WORLD, 4);
	}
	if (pfd >= 0)
		close(pfd);
	free(sbig);
	free(rbig);
	free(sa2a);
	free(ra2a);
	MPI_Finalize();
	return 0;
}
