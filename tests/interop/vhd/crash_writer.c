// SPDX-License-Identifier: GPL-2.0-only
/*
 * Crash-consistency helper for disk images.
 *
 *   crash_writer fill   IMAGE BASE_RAW SEED      pattern into every other 256 KiB, both files
 *   crash_writer write  IMAGE LOG SEED [OPS]     random writes + flushes until killed
 *   crash_writer verify IMAGE LOG SEED [BASE_RAW]
 *
 * write appends a 16-byte record to LOG before each write (intent) and a flush
 * marker after each completed flush (then fsyncs LOG). verify reopens the image
 * (replaying a log if there is one) and checks every sector: it must hold the
 * last write made before the last completed flush (or the base), or the data of
 * a write issued after that flush (those may or may not have landed).
 */
#include "disk/disk.h"
#include "lib/err.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR 512u
#define MAX_WRITE (128u << 10)

struct rec {
	uint64_t off;
	uint32_t len; /* 0 = flush marker */
	uint32_t gen;
};

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* One sector of the pattern for (seed, sector, gen); gen 0 is never used here. */
static void pattern_sector(uint8_t *p, uint64_t seed, uint64_t sector, uint32_t gen)
{
	uint64_t s = mix(seed ^ mix(sector ^ ((uint64_t)gen << 40)));

	for (unsigned i = 0; i < SECTOR; i += 8) {
		s = mix(s);
		memcpy(p + i, &s, 8);
	}
}

static void pattern_fill(uint8_t *buf, uint64_t seed, uint64_t off, uint32_t len, uint32_t gen)
{
	for (uint32_t i = 0; i < len; i += SECTOR)
		pattern_sector(buf + i, seed, (off + i) / SECTOR, gen);
}

static int die(const char *what)
{
	fprintf(stderr, "crash_writer: %s: %s\n", what, err_msg());
	return 1;
}

static int do_fill(const char *img, const char *raw, uint64_t seed)
{
	struct blockdev *bd;
	uint8_t *buf;
	int fd;

	if (disk_open(img, DISK_FORMAT_AUTO, 0, &bd) < 0)
		return die(img);
	fd = open(raw, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)bd->size))
		return perror(raw), 1;
	buf = aligned_alloc(4096, 256u << 10);
	for (uint64_t off = 0; off + (256u << 10) <= bd->size; off += 512u << 10) {
		pattern_fill(buf, seed, off, 256u << 10, 1);
		if (blockdev_write(bd, buf, 256u << 10, off, 0) < 0)
			return die("write");
		if (util_pwrite_full(fd, buf, 256u << 10, (off_t)off))
			return perror(raw), 1;
	}
	free(buf);
	close(fd);
	if (blockdev_close(bd) < 0)
		return die("close");
	return 0;
}

static int do_write(const char *img, const char *log, uint64_t seed, uint64_t ops)
{
	struct blockdev *bd;
	uint64_t r = mix(seed ^ 0x5eed);
	uint32_t gen = 2; /* 1 is the base fill */
	uint8_t *buf;
	int lfd;

	if (disk_open(img, DISK_FORMAT_AUTO, 0, &bd) < 0)
		return die(img);
	lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (lfd < 0)
		return perror(log), 1;
	buf = aligned_alloc(4096, MAX_WRITE);
	printf("ready\n");
	fflush(stdout);
	for (uint64_t i = 0; !ops || i < ops; i++) {
		uint32_t grain = MAX(bd->logical_sector_size, 4096u);
		uint64_t nb = bd->size / grain;
		uint32_t len;
		uint64_t off;
		struct rec rc;

		r = mix(r);
		if (r % 8 == 0) {
			if (blockdev_flush(bd) < 0)
				return die("flush");
			rc = (struct rec){.off = 0, .len = 0, .gen = 0};
			if (write(lfd, &rc, sizeof(rc)) != sizeof(rc) || fsync(lfd))
				return perror(log), 1;
			continue;
		}
		len = grain * (uint32_t)(1 + (r >> 8) % (MAX_WRITE / grain));
		off = ((r >> 24) % nb) * grain;
		if (off + len > bd->size)
			len = (uint32_t)(bd->size - off);
		pattern_fill(buf, seed, off, len, gen);
		rc = (struct rec){.off = off, .len = len, .gen = gen};
		if (write(lfd, &rc, sizeof(rc)) != sizeof(rc))
			return perror(log), 1;
		if (blockdev_write(bd, buf, len, off, 0) < 0)
			return die("write");
		gen++;
	}
	free(buf);
	if (blockdev_close(bd) < 0)
		return die("close");
	/* A clean close is a completed flush too. */
	{
		struct rec rc = {0};

		if (write(lfd, &rc, sizeof(rc)) != sizeof(rc) || fsync(lfd))
			return perror(log), 1;
	}
	close(lfd);
	return 0;
}

static int do_verify(const char *img, const char *log, uint64_t seed, const char *base)
{
	struct blockdev *bd;
	struct rec *recs = NULL;
	size_t nrec = 0, last_flush = 0, cap = 0;
	uint32_t *flushed; /* per sector: gen of the last write before the last flush */
	uint8_t *buf, want[SECTOR], *basebuf = NULL;
	uint64_t nsec, bad = 0;
	struct rec rc;
	int lfd, bfd = -1;

	lfd = open(log, O_RDONLY);
	if (lfd < 0)
		return perror(log), 1;
	while (read(lfd, &rc, sizeof(rc)) == sizeof(rc)) {
		if (nrec == cap) {
			cap = cap ? cap * 2 : 1024;
			recs = realloc(recs, cap * sizeof(*recs));
		}
		recs[nrec++] = rc;
		if (!rc.len)
			last_flush = nrec;
	}
	close(lfd);
	if (disk_open(img, DISK_FORMAT_AUTO, 0, &bd) < 0)
		return die(img);
	nsec = bd->size / SECTOR;
	flushed = calloc(nsec, sizeof(*flushed));
	for (size_t i = 0; i < last_flush; i++)
		for (uint64_t s = recs[i].off / SECTOR;
		     recs[i].len && s < (recs[i].off + recs[i].len) / SECTOR && s < nsec; s++)
			flushed[s] = recs[i].gen;
	if (base) {
		bfd = open(base, O_RDONLY);
		if (bfd < 0)
			return perror(base), 1;
		basebuf = malloc(1u << 20);
	}
	buf = aligned_alloc(4096, 1u << 20);
	for (uint64_t off = 0; off < bd->size; off += 1u << 20) {
		uint32_t len = (uint32_t)MIN((uint64_t)1 << 20, bd->size - off);

		if (blockdev_read(bd, buf, len, off) < 0)
			return die("read");
		if (base && util_pread_full(bfd, basebuf, len, (off_t)off))
			return perror(base), 1;
		for (uint32_t i = 0; i < len; i += SECTOR) {
			uint64_t s = (off + i) / SECTOR;
			bool ok;

			if (flushed[s])
				pattern_sector(want, seed, s, flushed[s]);
			else if (base)
				memcpy(want, basebuf + i, SECTOR);
			else
				memset(want, 0, SECTOR);
			ok = !memcmp(want, buf + i, SECTOR);
			/* Writes issued after the last completed flush may have landed. */
			for (size_t k = last_flush; !ok && k < nrec; k++) {
				if (!recs[k].len || s < recs[k].off / SECTOR ||
				    s >= (recs[k].off + recs[k].len) / SECTOR)
					continue;
				pattern_sector(want, seed, s, recs[k].gen);
				ok = !memcmp(want, buf + i, SECTOR);
			}
			if (!ok && bad++ < 3)
				fprintf(stderr,
					"crash_writer: sector %" PRIu64
					" holds neither the flushed "
					"data (gen %u) nor a later write\n",
					s, flushed[s]);
		}
	}
	if (blockdev_close(bd) < 0)
		return die("close");
	free(buf);
	free(basebuf);
	free(flushed);
	free(recs);
	if (bfd >= 0)
		close(bfd);
	if (bad) {
		fprintf(stderr,
			"crash_writer: %" PRIu64 " bad sectors (%zu writes, %zu before the "
			"last flush)\n",
			bad, nrec, last_flush);
		return 1;
	}
	printf("verified %zu records, %zu before the last flush\n", nrec, last_flush);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t seed, ops = 0;

	if (argc < 5 || util_parse_u64(argv[4], &seed)) {
		fprintf(stderr, "usage: crash_writer fill|write|verify IMAGE FILE SEED [...]\n");
		return 2;
	}
	if (!strcmp(argv[1], "fill"))
		return do_fill(argv[2], argv[3], seed);
	if (!strcmp(argv[1], "write")) {
		if (argc > 5 && util_parse_u64(argv[5], &ops))
			return 2;
		return do_write(argv[2], argv[3], seed, ops);
	}
	if (!strcmp(argv[1], "verify"))
		return do_verify(argv[2], argv[3], seed, argc > 5 ? argv[5] : NULL);
	return 2;
}
