// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_disk IMAGE read|write DEPTH COUNT [SEED]
 * Random 4 KiB reads or writes over the whole image through blockdev_queue,
 * through the page cache (like qemu-img bench -t writeback), DEPTH requests in flight. Prints
 * "iops=N secs=S engine=E".
 */
#include "disk/disk.h"
#include "lib/err.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BS 4096u

struct slot {
	struct blockdev_req req;
	struct iovec iov;
	bool busy;
	int err;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void done(struct blockdev_req *req, int result)
{
	struct slot *s = req->opaque;

	s->busy = false;
	if (result)
		s->err = result;
}

int main(int argc, char **argv)
{
	uint64_t depth, count, seed = 42, submitted = 0, nblocks, t0, t1;
	struct blockdev_queue *q;
	struct blockdev *bd;
	struct slot *slots;
	bool wr;

	if (argc < 5 || util_parse_u64(argv[3], &depth) || util_parse_u64(argv[4], &count) ||
	    !depth || depth > 256 || (argc > 5 && util_parse_u64(argv[5], &seed))) {
		fprintf(stderr, "usage: bench_disk IMAGE read|write DEPTH COUNT [SEED]\n");
		return 2;
	}
	wr = !strcmp(argv[2], "write");
	if (disk_open(argv[1], DISK_FORMAT_AUTO, wr ? 0 : DISK_OPEN_RDONLY, &bd) < 0) {
		fprintf(stderr, "bench_disk: %s: %s\n", argv[1], err_msg());
		return 1;
	}
	/* BENCH_ENGINE=threads|uring pins the queue engine (default: auto). */
	{
		const char *e = getenv("BENCH_ENGINE");
		enum blockdev_engine eng = BLOCKDEV_ENGINE_AUTO;

		if (e && !strcmp(e, "threads"))
			eng = BLOCKDEV_ENGINE_THREADS;
		else if (e && !strcmp(e, "uring"))
			eng = BLOCKDEV_ENGINE_URING;
		q = blockdev_queue_create(bd, (unsigned)depth, eng);
	}
	if (!q) {
		fprintf(stderr, "bench_disk: no queue: %s\n", err_msg());
		return 1;
	}
	rng_state = seed | 1;
	nblocks = bd->size / BS;
	slots = calloc(depth, sizeof(*slots));
	for (uint64_t i = 0; i < depth; i++) {
		void *buf;

		if (posix_memalign(&buf, BS, BS))
			return 1;
		memset(buf, 0x5a, BS);
		slots[i].iov = (struct iovec){.iov_base = buf, .iov_len = BS};
		slots[i].req.opaque = &slots[i];
	}
	t0 = util_now_ns();
	while (submitted < count || blockdev_queue_inflight(q)) {
		/* One system call per batch, as storvsp does for a ring's worth. */
		blockdev_queue_plug(q);
		for (uint64_t i = 0; i < depth && submitted < count; i++) {
			struct slot *s = &slots[i];

			if (s->busy)
				continue;
			s->req = (struct blockdev_req){
				.op = wr ? BLOCKDEV_OP_WRITE : BLOCKDEV_OP_READ,
				.offset = (rnd() % nblocks) * BS,
				.iov = &s->iov,
				.iovcnt = 1,
				.complete = done,
				.opaque = s,
			};
			if (blockdev_queue_submit(q, &s->req) < 0) {
				fprintf(stderr, "bench_disk: submit failed\n");
				return 1;
			}
			s->busy = true;
			submitted++;
		}
		blockdev_queue_unplug(q);
		blockdev_queue_wait(q);
		for (uint64_t i = 0; i < depth; i++)
			if (slots[i].err) {
				fprintf(stderr, "bench_disk: I/O error %d\n", slots[i].err);
				return 1;
			}
	}
	t1 = util_now_ns();
	blockdev_queue_destroy(q);
	blockdev_close(bd);
	printf("iops=%.0f secs=%.3f\n", (double)count * 1e9 / (double)(t1 - t0),
	       (double)(t1 - t0) / 1e9);
	return 0;
}
