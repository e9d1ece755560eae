// SPDX-License-Identifier: GPL-2.0-only
/* blockdev queue: both engines on a raw temp file, range checks, a slow driver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "disk/blockdev.h"
#include "disk/disk.h"
#include "disk/raw.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEV_SIZE (8u << 20)
#define BLK 4096u
#define NBLK (DEV_SIZE / BLK)
#define DEPTH 32

struct fixture {
	char path[64];
	struct blockdev *bd;
	uint8_t *model;
	enum blockdev_engine engine;
};

static int setup_engine(void **state, enum blockdev_engine engine)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "/tmp/viridian-bdtest-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, DEV_SIZE), 0);
	close(fd);
	assert_int_equal(disk_open(f->path, DISK_FORMAT_RAW, 0, &f->bd), 0);
	f->model = calloc(1, DEV_SIZE);
	assert_non_null(f->model);
	f->engine = engine;
	*state = f;
	return 0;
}

static int setup_uring(void **state)
{
	return setup_engine(state, BLOCKDEV_ENGINE_URING);
}

static int setup_threads(void **state)
{
	return setup_engine(state, BLOCKDEV_ENGINE_THREADS);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(blockdev_close(f->bd), 0);
	unlink(f->path);
	free(f->model);
	free(f);
	return 0;
}

static struct blockdev_queue *make_queue(struct fixture *f, unsigned depth)
{
	struct blockdev_queue *q = blockdev_queue_create(f->bd, depth, f->engine);

	assert_non_null(q);
	assert_int_equal(blockdev_queue_engine(q), f->engine);
	return q;
}

/* ---- random I/O against a memory model ---- */

struct slot {
	struct blockdev_req req;
	struct iovec iov[2];
	uint8_t buf[BLK];
	unsigned blk;
	bool busy;
	bool write;
	struct fixture *f;
	uint8_t *busy_map;
	unsigned *done;
};

static void slot_complete(struct blockdev_req *req, int result)
{
	struct slot *s = req->opaque;

	assert_int_equal(result, 0);
	if (!s->write)
		assert_memory_equal(s->buf, s->f->model + (size_t)s->blk * BLK, BLK);
	s->busy_map[s->blk] = 0;
	s->busy = false;
	(*s->done)++;
}

static void test_random_rw(void **state)
{
	struct fixture *f = *state;
	struct blockdev_queue *q = make_queue(f, DEPTH);
	static struct slot slots[DEPTH];
	uint8_t busy_map[NBLK] = {0};
	unsigned submitted = 0, done = 0;
	uint8_t *check;

	srand(42);
	memset(slots, 0, sizeof(slots));
	while (submitted < 256) {
		for (unsigned i = 0; i < DEPTH && submitted < 256; i++) {
			struct slot *s = &slots[i];
			unsigned blk;

			if (s->busy)
				continue;
			do
				blk = (unsigned)rand() % NBLK;
			while (busy_map[blk]);
			busy_map[blk] = 1;
			s->busy = true;
			s->blk = blk;
			s->f = f;
			s->busy_map = busy_map;
			s->done = &done;
			s->write = rand() & 1;
			/* Two iovecs so the vectored path is exercised. */
			s->iov[0] = (struct iovec){.iov_base = s->buf, .iov_len = 1024};
			s->iov[1] =
				(struct iovec){.iov_base = s->buf + 1024, .iov_len = BLK - 1024};
			s->req = (struct blockdev_req){
				.op = s->write ? BLOCKDEV_OP_WRITE : BLOCKDEV_OP_READ,
				.offset = (uint64_t)blk * BLK,
				.iov = s->iov,
				.iovcnt = 2,
				.complete = slot_complete,
				.opaque = s,
			};
			if (s->write) {
				for (unsigned k = 0; k < BLK; k++)
					s->buf[k] = (uint8_t)rand();
				memcpy(f->model + (size_t)blk * BLK, s->buf, BLK);
			}
			assert_int_equal(blockdev_queue_submit(q, &s->req), 0);
			submitted++;
		}
		blockdev_queue_wait(q);
	}
	while (blockdev_queue_inflight(q))
		blockdev_queue_wait(q);
	assert_int_equal(done, 256);
	check = malloc(DEV_SIZE);
	assert_non_null(check);
	assert_int_equal(blockdev_read(f->bd, check, DEV_SIZE, 0), 0);
	assert_memory_equal(check, f->model, DEV_SIZE);
	free(check);
	blockdev_queue_destroy(q);
}

/* ---- single requests ---- */

struct one {
	struct blockdev_req req;
	struct iovec iov;
	int result;
	int calls;
	pthread_t thread;
};

static void one_complete(struct blockdev_req *req, int result)
{
	struct one *o = req->opaque;

	o->result = result;
	o->calls++;
	o->thread = pthread_self();
}

static int run_one(struct blockdev_queue *q, struct one *o, enum blockdev_op op, unsigned flags,
		   uint64_t offset, void *buf, uint64_t len)
{
	memset(o, 0, sizeof(*o));
	o->iov = (struct iovec){.iov_base = buf, .iov_len = len};
	o->req = (struct blockdev_req){
		.op = op,
		.flags = flags,
		.offset = offset,
		.len = len,
		.iov = &o->iov,
		.iovcnt = 1,
		.complete = one_complete,
		.opaque = o,
	};
	int ret = blockdev_queue_submit(q, &o->req);

	if (ret < 0)
		return ret;
	while (!o->calls)
		blockdev_queue_wait(q);
	assert_int_equal(o->calls, 1);
	assert_true(pthread_equal(o->thread, pthread_self()));
	return o->result;
}

static void test_fua_flush_discard(void **state)
{
	struct fixture *f = *state;
	struct blockdev_queue *q = make_queue(f, 4);
	static uint8_t buf[65536], zero[65536];
	struct one o;

	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(
		run_one(q, &o, BLOCKDEV_OP_WRITE, BLOCKDEV_WRITE_FUA, 1 << 20, buf, sizeof(buf)),
		0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_READ, 0, 1 << 20, buf, sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xa5);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_FLUSH, 0, 0, NULL, 0), 0);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_DISCARD, 0, 1 << 20, NULL, sizeof(buf)), 0);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_READ, 0, 1 << 20, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, zero, sizeof(buf));
	/* The hole shows in block_status (the test files live on ext4 or tmpfs). */
	if (f->bd->ops->block_status) {
		int st;
		uint64_t run;

		assert_int_equal(f->bd->ops->block_status(f->bd, 1 << 20, sizeof(buf), &st, &run),
				 0);
		assert_int_equal(st, BLOCKDEV_STATUS_UNALLOCATED);
		assert_true(run > 0 && run <= sizeof(buf));
	}
	blockdev_queue_destroy(q);
}

static void test_range_checks(void **state)
{
	struct fixture *f = *state;
	struct blockdev_queue *q = make_queue(f, 4);
	static uint8_t buf[8192];
	struct blockdev *ro;
	struct one o;

	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_READ, 0, 100, buf, 512), -EINVAL);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_READ, 0, 0, buf, 1000), -EINVAL);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_WRITE, 0, DEV_SIZE - 4096, buf, 8192), -EINVAL);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_READ, 0, DEV_SIZE, buf, 512), -EINVAL);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_READ, 0, UINT64_MAX & ~511ull, buf, 4096),
			 -EINVAL);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_DISCARD, 0, 4096, NULL, UINT64_MAX & ~511ull),
			 -EINVAL);
	assert_int_equal(blockdev_queue_inflight(q), 0);
	/* Edges that are fine. */
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_READ, 0, DEV_SIZE - 8192, buf, 8192), 0);
	assert_int_equal(blockdev_check_range(f->bd, DEV_SIZE, 0), 0);
	assert_int_equal(blockdev_check_range(f->bd, UINT64_MAX & ~511ull, 1024), -EINVAL);
	assert_int_equal(blockdev_read(f->bd, buf, 512, 256), -EINVAL);
	assert_int_equal(blockdev_write(f->bd, buf, 4096, DEV_SIZE, 0), -EINVAL);
	blockdev_queue_destroy(q);

	assert_int_equal(disk_open(f->path, DISK_FORMAT_RAW, DISK_OPEN_RDONLY, &ro), 0);
	assert_true(ro->read_only);
	q = blockdev_queue_create(ro, 4, f->engine);
	assert_non_null(q);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_WRITE, 0, 0, buf, 4096), -EROFS);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_DISCARD, 0, 0, NULL, 4096), -EROFS);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_READ, 0, 0, buf, 4096), 0);
	assert_int_equal(blockdev_write(ro, buf, 4096, 0, 0), -EROFS);
	assert_int_equal(blockdev_discard(ro, 0, 4096), -EROFS);
	blockdev_queue_destroy(q);
	assert_int_equal(blockdev_close(ro), 0);
}

static void test_eventfd(void **state)
{
	struct fixture *f = *state;
	struct blockdev_queue *q = make_queue(f, 4);
	static uint8_t buf[4096];
	struct pollfd pfd = {.fd = blockdev_queue_fd(q), .events = POLLIN};
	struct one o = {0};

	assert_true(pfd.fd >= 0);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	o.iov = (struct iovec){.iov_base = buf, .iov_len = sizeof(buf)};
	o.req = (struct blockdev_req){.op = BLOCKDEV_OP_READ,
				      .offset = 4096,
				      .iov = &o.iov,
				      .iovcnt = 1,
				      .complete = one_complete,
				      .opaque = &o};
	assert_int_equal(blockdev_queue_submit(q, &o.req), 0);
	/* Nothing is delivered until the caller asks. */
	assert_int_equal(o.calls, 0);
	/*
	 * The submitter asks first: a read the page cache held finished inside submit and is
	 * not signalled; anything later makes the fd readable.
	 */
	if (!blockdev_queue_complete(q)) {
		assert_int_equal(poll(&pfd, 1, 5000), 1);
		while (!o.calls)
			blockdev_queue_complete(q);
	}
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.result, 0);
	/* No stale signal once everything is collected. */
	assert_int_equal(poll(&pfd, 1, 0), 0);
	assert_int_equal(blockdev_queue_complete(q), 0);
	assert_int_equal(blockdev_queue_wait(q), 0); /* nothing in flight: returns */
	blockdev_queue_destroy(q);
}

static void test_destroy_inflight(void **state)
{
	struct fixture *f = *state;
	struct blockdev_queue *q = make_queue(f, DEPTH);
	static struct one ones[DEPTH + 1];
	static uint8_t bufs[DEPTH + 1][4096];
	int calls = 0;

	blockdev_queue_plug(q);
	for (unsigned i = 0; i <= DEPTH; i++) {
		struct one *o = &ones[i];

		memset(o, 0, sizeof(*o));
		o->iov = (struct iovec){.iov_base = bufs[i], .iov_len = 4096};
		o->req = (struct blockdev_req){
			.op = i == 5	? BLOCKDEV_OP_FLUSH
			      : (i & 1) ? BLOCKDEV_OP_WRITE
					: BLOCKDEV_OP_READ,
			.offset = (uint64_t)i * 4096,
			.iov = &o->iov,
			.iovcnt = 1,
			.complete = one_complete,
			.opaque = o,
		};
		assert_int_equal(blockdev_queue_submit(q, &o->req), i < DEPTH ? 0 : -EAGAIN);
	}
	blockdev_queue_unplug(q);
	assert_int_equal(blockdev_queue_inflight(q), DEPTH);
	blockdev_queue_destroy(q);
	for (unsigned i = 0; i < DEPTH; i++) {
		assert_int_equal(ones[i].calls, 1);
		assert_int_equal(ones[i].result, 0);
		calls += ones[i].calls;
	}
	assert_int_equal(ones[DEPTH].calls, 0);
	assert_int_equal(calls, DEPTH);
}

/* ---- a slow driver: memory-backed, no map, must use the pool ---- */

struct slowdev {
	struct blockdev bd;
	uint8_t *mem;
	pthread_t main_thread;
	int foreign_calls; /* ops run off the caller's thread (atomic) */
	bool zero_map;
};

static void slow_note(struct slowdev *s)
{
	if (!pthread_equal(pthread_self(), s->main_thread))
		__atomic_fetch_add(&s->foreign_calls, 1, __ATOMIC_RELAXED);
}

static int slow_readv(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct slowdev *s = (struct slowdev *)bd;

	slow_note(s);
	usleep(200);
	for (int i = 0; i < iovcnt; i++) {
		memcpy(iov[i].iov_base, s->mem + off, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	return 0;
}

static int slow_writev(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t off,
		       unsigned flags)
{
	struct slowdev *s = (struct slowdev *)bd;

	slow_note(s);
	for (int i = 0; i < iovcnt; i++) {
		memcpy(s->mem + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	return 0;
}

static int slow_map(struct blockdev *bd, uint64_t off, uint64_t len, bool for_write,
		    struct blockdev_extent *ext)
{
	/* Reads are "zero", writes need the slow path. */
	ext->kind = for_write ? BLOCKDEV_EXTENT_SLOW : BLOCKDEV_EXTENT_ZERO;
	ext->file_offset = 0;
	ext->len = len;
	return 0;
}

static const struct blockdev_ops slow_ops = {
	.readv = slow_readv,
	.writev = slow_writev,
};

static const struct blockdev_ops slow_zero_ops = {
	.readv = slow_readv,
	.writev = slow_writev,
	.map = slow_map,
};

static void slow_run(enum blockdev_engine engine, bool zero_map)
{
	/* Only the io_uring engine asks map(); the thread engine reads through. */
	bool zeros = zero_map && engine == BLOCKDEV_ENGINE_URING;
	struct slowdev s = {
		.bd = {.ops = zero_map ? &slow_zero_ops : &slow_ops,
		       .format = "fake",
		       .size = 1 << 20,
		       .logical_sector_size = 512,
		       .physical_sector_size = 512,
		       .data_fd = -1},
		.main_thread = pthread_self(),
	};
	struct blockdev_queue *q;
	static struct one ones[16];
	static uint8_t bufs[16][4096];

	s.mem = calloc(1, 1 << 20);
	assert_non_null(s.mem);
	memset(s.mem, 0x5a, 1 << 20);
	q = blockdev_queue_create(&s.bd, 16, engine);
	assert_non_null(q);
	for (unsigned i = 0; i < 16; i++) {
		struct one *o = &ones[i];

		memset(o, 0, sizeof(*o));
		memset(bufs[i], (int)i, sizeof(bufs[i]));
		o->iov = (struct iovec){.iov_base = bufs[i], .iov_len = 4096};
		o->req = (struct blockdev_req){
			.op = (i & 1) ? BLOCKDEV_OP_WRITE : BLOCKDEV_OP_READ,
			.offset = (uint64_t)i * 8192,
			.iov = &o->iov,
			.iovcnt = 1,
			.complete = one_complete,
			.opaque = o,
		};
		assert_int_equal(blockdev_queue_submit(q, &o->req), 0);
	}
	blockdev_queue_destroy(q);
	for (unsigned i = 0; i < 16; i++) {
		assert_int_equal(ones[i].calls, 1);
		assert_int_equal(ones[i].result, 0);
		if (i & 1)
			assert_int_equal(s.mem[i * 8192 + 100], i);
		else
			assert_int_equal(bufs[i][100], zeros ? 0 : 0x5a);
	}
	assert_int_equal(__atomic_load_n(&s.foreign_calls, __ATOMIC_RELAXED), zeros ? 8 : 16);
	free(s.mem);
}

static void test_slow_driver(void **state)
{
	struct fixture *f = *state;

	slow_run(f->engine, false);
	slow_run(f->engine, true);
}

/* A mapped read that comes back short from the file is finished by readv(). */
static int short_readv(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t off)
{
	for (int i = 0; i < iovcnt; i++)
		memset(iov[i].iov_base, 0x77, iov[i].iov_len);
	return 0;
}

static int short_map(struct blockdev *bd, uint64_t off, uint64_t len, bool for_write,
		     struct blockdev_extent *ext)
{
	ext->kind = BLOCKDEV_EXTENT_DATA;
	ext->file_offset = off;
	ext->len = len;
	return 0;
}

static void test_short_transfer(void **state)
{
	struct fixture *f = *state;
	static const struct blockdev_ops short_ops = {.readv = short_readv, .map = short_map};
	struct blockdev sd = {.ops = &short_ops,
			      .format = "short",
			      .size = 1 << 20,
			      .logical_sector_size = 512,
			      .physical_sector_size = 512};
	static uint8_t buf[8192];
	char path[] = "/tmp/viridian-bdshort-XXXXXX";
	struct blockdev_queue *q;
	struct one o;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(ftruncate(fd, 4096), 0); /* shorter than the device */
	sd.data_fd = fd;
	q = blockdev_queue_create(&sd, 4, f->engine);
	assert_non_null(q);
	assert_int_equal(run_one(q, &o, BLOCKDEV_OP_READ, 0, 0, buf, sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0x77);
	blockdev_queue_destroy(q);
	close(fd);
}

static void test_auto_engine(void **state)
{
	struct fixture *f = *state;
	struct blockdev_queue *q = blockdev_queue_create(f->bd, 8, BLOCKDEV_ENGINE_AUTO);

	assert_non_null(q);
	assert_int_not_equal(blockdev_queue_engine(q), BLOCKDEV_ENGINE_AUTO);
	blockdev_queue_destroy(q);
	assert_null(blockdev_queue_create(f->bd, 0, BLOCKDEV_ENGINE_THREADS));
}

#define T(name, fn, setup)                      \
	{                                       \
		name, fn, setup, teardown, NULL \
	}
#define ENGINE_TESTS(e, setup)                                            \
	T(e "_random_rw", test_random_rw, setup),                         \
		T(e "_fua_flush_discard", test_fua_flush_discard, setup), \
		T(e "_range_checks", test_range_checks, setup),           \
		T(e "_eventfd", test_eventfd, setup),                     \
		T(e "_destroy_inflight", test_destroy_inflight, setup),   \
		T(e "_slow_driver", test_slow_driver, setup),             \
		T(e "_short_transfer", test_short_transfer, setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		ENGINE_TESTS("uring", setup_uring),
		ENGINE_TESTS("threads", setup_threads),
		T("auto_engine", test_auto_engine, setup_threads),
	};

	return cmocka_run_group_tests_name("blockdev", tests, NULL, NULL);
}
