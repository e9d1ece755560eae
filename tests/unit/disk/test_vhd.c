// SPDX-License-Identifier: GPL-2.0-only
/* VHD driver: every image type against an in-memory model, corruption, crash order, interop. */
#include "disk/disk.h"
#include "disk/vhd.h"
#include "disk/vhd_format.h"
#include "lib/err.h"
#include "lib/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MIB (1024ull * 1024)
#define BS (64u * 1024) /* small blocks: many block boundaries in a small disk */

static char dir[64];

static const char *tpath(const char *name)
{
	static _Thread_local char p[64][256];
	static _Thread_local int k;

	k = (k + 1) % 64;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static uint64_t fsize(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t *buf;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void poke(const char *path, uint64_t off, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void mk(const char *path, enum disk_type type, uint64_t size, uint32_t bs,
	       const char *parent)
{
	struct disk_create_opts o = {
		.format = DISK_FORMAT_VHD,
		.type = type,
		.size = size,
		.block_size = bs,
		.parent = parent,
	};
	int ret = disk_create(path, &o);

	if (ret)
		fprintf(stderr, "create: %s\n", err_msg());
	assert_int_equal(ret, 0);
}

static struct blockdev *op(const char *path, unsigned flags)
{
	struct blockdev *bd = NULL;
	int ret = disk_open(path, DISK_FORMAT_AUTO, flags, &bd);

	if (ret)
		fprintf(stderr, "open: %s\n", err_msg());
	assert_int_equal(ret, 0);
	return bd;
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
}

/* Writes len bytes at off to both the disk and the model. */
static void wr(struct blockdev *bd, uint8_t *model, uint64_t off, size_t len, uint32_t seed)
{
	uint8_t *b = malloc(len);

	fill(b, len, seed);
	assert_int_equal(blockdev_write(bd, b, len, off, 0), 0);
	if (model)
		memcpy(model + off, b, len);
	free(b);
}

static void verify(struct blockdev *bd, const uint8_t *model, uint64_t size)
{
	uint8_t *b = malloc(size);

	assert_int_equal(blockdev_read(bd, b, size, 0), 0);
	for (uint64_t i = 0; i < size; i += 512)
		if (memcmp(b + i, model + i, 512)) {
			fprintf(stderr, "mismatch at sector %llu\n", (unsigned long long)(i / 512));
			fail();
		}
	free(b);
}

static void patterns(struct blockdev *bd, uint8_t *model, uint64_t size)
{
	wr(bd, model, 0, 512, 1);
	wr(bd, model, BS - 1024, 4096, 2); /* across a block boundary */
	wr(bd, model, 3 * BS + 512, 2 * BS + 1024, 3); /* spans three blocks */
	wr(bd, model, size - 1024, 1024, 4); /* last sectors */
	wr(bd, model, BS + 8192, 512, 5); /* into an allocated block */
}

static void footer_read(const char *path, uint64_t off, struct vhd_footer *f)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, f, sizeof(*f), (off_t)off), (ssize_t)sizeof(*f));
	close(fd);
}

static void test_geometry_checksum(void **state)
{
	uint16_t c;
	uint8_t h, s;

	vhd_chs_geometry(1073995776ull, &c, &h, &s); /* qemu's 1G: 2081/16/63 */
	assert_int_equal(c, 2081);
	assert_int_equal(h, 16);
	assert_int_equal(s, 63);
	vhd_chs_geometry(200ull << 30, &c, &h, &s); /* beyond CHS: clamped */
	assert_int_equal(c, 65535);
	assert_int_equal(h, 16);
	assert_int_equal(s, 255);
	vhd_chs_geometry(10 * MIB, &c, &h, &s);
	assert_int_equal(s, 17);
	assert_int_equal(h, 4);
	assert_int_equal(c, 20480 / 17 / 4);

	uint8_t buf[16] = {1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 5};
	assert_int_equal(vhd_checksum(buf, sizeof(buf), 4), ~15u);
}

static void test_fixed(void **state)
{
	const char *p = tpath("fixed.vhd");
	uint64_t size = 10000 * 1024; /* not a CHS size */
	uint8_t *model = calloc(1, size);
	struct blockdev *bd;
	struct vhd_footer f;
	struct disk_info info;
	struct blockdev_extent ext;

	mk(p, DISK_TYPE_FIXED, size, 0, NULL);
	assert_int_equal(fsize(p), size + 512);
	footer_read(p, size, &f);
	assert_memory_equal(f.cookie, "conectix", 8);
	assert_memory_equal(f.creator_app, "win ", 4);
	assert_int_equal(be64toh(f.current_size), size);
	assert_int_equal(be32toh(f.disk_type), VHD_TYPE_FIXED);
	assert_true(be64toh(f.data_offset) == VHD_NO_DATA_OFFSET);

	bd = op(p, 0);
	assert_string_equal(bd->format, "vhd");
	assert_int_equal(bd->size, size);
	patterns(bd, model, size);
	verify(bd, model, size);
	assert_int_equal(bd->ops->map(bd, 4096, 8192, true, &ext), 0);
	assert_int_equal(ext.kind, BLOCKDEV_EXTENT_DATA);
	assert_int_equal(ext.file_offset, 4096);
	assert_int_equal(disk_info_get(bd, &info), 0);
	assert_int_equal(info.type, DISK_TYPE_FIXED);
	assert_int_equal(info.virtual_size, size);
	assert_memory_equal(info.disk_id.b, f.unique_id, 16);
	assert_string_equal(info.creator, "win 10.0");
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(fsize(p), size + 512);

	bd = op(p, DISK_OPEN_RDONLY);
	verify(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	free(model);
}

static void test_dynamic(void **state)
{
	const char *p = tpath("dyn.vhd");
	uint64_t size = 20 * BS + 3 * 512;
	uint8_t *model = calloc(1, size);
	struct blockdev *bd;
	struct vhd_footer head, tail;
	struct blockdev_extent ext;
	struct disk_info info;
	struct disk_check_result res;
	uint64_t fs0;
	int st;
	uint64_t run;

	mk(p, DISK_TYPE_DYNAMIC, size, BS, NULL);
	fs0 = fsize(p);
	/* footer, header, BAT of 21 entries (one sector), footer */
	assert_int_equal(fs0, 512 + 1024 + 512 + 512);
	bd = op(p, 0);
	assert_int_equal(bd->size, size);
	/* Unallocated reads as zero through the fast path. */
	assert_int_equal(bd->ops->map(bd, 0, 2 * BS, false, &ext), 0);
	assert_int_equal(ext.kind, BLOCKDEV_EXTENT_ZERO);
	assert_int_equal(ext.len, 2 * BS);
	patterns(bd, model, size);
	verify(bd, model, size);
	/* Allocated but not yet durable: writes must go through the driver. */
	assert_int_equal(bd->ops->map(bd, 0, 512, true, &ext), 0);
	assert_int_equal(ext.kind, BLOCKDEV_EXTENT_SLOW);
	assert_int_equal(blockdev_flush(bd), 0);
	assert_int_equal(bd->ops->map(bd, 512, 1024, true, &ext), 0);
	assert_int_equal(ext.kind, BLOCKDEV_EXTENT_DATA);
	assert_int_equal(ext.len, 1024);
	assert_int_equal(ext.file_offset % 512, 0);
	assert_int_equal(bd->ops->block_status(bd, 0, size, &st, &run), 0);
	assert_int_equal(st, BLOCKDEV_STATUS_DATA);
	assert_int_equal(run, 2 * BS);
	assert_int_equal(bd->ops->block_status(bd, 2 * BS, size - 2 * BS, &st, &run), 0);
	assert_int_equal(st, BLOCKDEV_STATUS_UNALLOCATED);
	assert_int_equal(run, BS);
	assert_int_equal(disk_info_get(bd, &info), 0);
	assert_int_equal(info.type, DISK_TYPE_DYNAMIC);
	assert_int_equal(info.block_size, BS);
	assert_int_equal(blockdev_close(bd), 0);

	/* 2 + 3 + 1 = 6 blocks allocated; data areas 4 KiB aligned. */
	assert_true(fsize(p) >= fs0 + 6ull * (BS + 512));
	assert_true(fsize(p) <= fs0 + 6ull * (BS + 4096) + 4096);
	footer_read(p, 0, &head);
	footer_read(p, fsize(p) - 512, &tail);
	assert_memory_equal(&head, &tail, 512);

	bd = op(p, DISK_OPEN_RDONLY);
	verify(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(disk_check(p, DISK_FORMAT_AUTO, false, &res, NULL), 0);
	assert_int_equal(res.errors, 0);
	assert_int_equal(res.leaks, 0);
	free(model);
}

/* Multi-iovec and FUA writes, reopen durability. */
static void test_dynamic_iov_fua(void **state)
{
	const char *p = tpath("iov.vhd");
	uint64_t size = 4 * BS;
	uint8_t *model = calloc(1, size);
	uint8_t a[1536], b[2560], r[4096];
	struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct blockdev *bd;

	mk(p, DISK_TYPE_DYNAMIC, size, BS, NULL);
	bd = op(p, 0);
	fill(a, sizeof(a), 7);
	fill(b, sizeof(b), 8);
	assert_int_equal(blockdev_writev(bd, iov, 2, BS - 2048, BLOCKDEV_WRITE_FUA), 0);
	memcpy(model + BS - 2048, a, sizeof(a));
	memcpy(model + BS - 2048 + sizeof(a), b, sizeof(b));
	assert_int_equal(blockdev_read(bd, r, sizeof(r), BS - 2048), 0);
	assert_memory_equal(r, model + BS - 2048, sizeof(r));
	assert_int_equal(blockdev_close(bd), 0);
	bd = op(p, DISK_OPEN_RDONLY);
	verify(bd, model, size);
	assert_int_equal(blockdev_write(bd, a, 512, 0, 0), -EROFS);
	assert_int_equal(blockdev_close(bd), 0);
	free(model);
}

static void test_differencing(void **state)
{
	const char *base = tpath("base.vhd"), *child = tpath("child.vhd");
	uint64_t size = 8 * BS;
	uint8_t *model = calloc(1, size);
	struct blockdev *bd;
	struct disk_info info;
	struct blockdev_extent ext;
	struct disk_check_result res;
	int st;
	uint64_t run;

	mk(base, DISK_TYPE_DYNAMIC, size, BS, NULL);
	bd = op(base, 0);
	wr(bd, model, 0, size, 11); /* parent fully written */
	assert_int_equal(blockdev_close(bd), 0);

	mk(child, DISK_TYPE_DIFFERENCING, 0, BS, base);
	bd = op(child, 0);
	assert_int_equal(bd->size, size);
	verify(bd, model, size); /* all from the parent */
	wr(bd, model, 3 * 512, 512, 12); /* one sector inside block 0 */
	wr(bd, model, BS - 512, 1024, 13); /* across blocks 0 / 1 */
	wr(bd, model, 5 * BS + 4096, 8192, 14); /* new block 5 */
	verify(bd, model, size);
	/* Bitmap semantics: sectors 0-2 still come from the parent. */
	assert_int_equal(bd->ops->block_status(bd, 0, BS, &st, &run), 0);
	assert_int_equal(st, BLOCKDEV_STATUS_UNALLOCATED);
	assert_int_equal(run, 3 * 512);
	assert_int_equal(bd->ops->block_status(bd, 3 * 512, BS, &st, &run), 0);
	assert_int_equal(st, BLOCKDEV_STATUS_DATA);
	assert_int_equal(run, 512);
	assert_int_equal(bd->ops->map(bd, 0, 4096, false, &ext), 0);
	assert_int_equal(ext.kind, BLOCKDEV_EXTENT_SLOW);
	assert_int_equal(blockdev_flush(bd), 0);
	assert_int_equal(bd->ops->map(bd, 3 * 512, 4096, false, &ext), 0);
	assert_int_equal(ext.kind, BLOCKDEV_EXTENT_DATA);
	assert_int_equal(ext.len, 512);
	assert_int_equal(disk_info_get(bd, &info), 0);
	assert_int_equal(info.type, DISK_TYPE_DIFFERENCING);
	assert_non_null(strstr(info.parent_path, "base.vhd"));
	assert_non_null(vhd_driver.parent(bd));
	assert_int_equal(blockdev_close(bd), 0);

	bd = op(child, DISK_OPEN_RDONLY);
	verify(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(disk_check(child, DISK_FORMAT_AUTO, false, &res, NULL), 0);
	assert_int_equal(res.errors, 0);

	/* Locators are relative first: moving both files keeps the link. */
	assert_int_equal(rename(base, tpath("base2.vhd")), 0);
	assert_int_not_equal(disk_open(child, DISK_FORMAT_AUTO, DISK_OPEN_RDONLY, &bd), 0);
	assert_non_null(strstr(err_msg(), "not found"));
	assert_int_equal(rename(tpath("base2.vhd"), base), 0);

	/* Merge into the parent, which then reads like the model. */
	bd = op(child, 0);
	assert_int_equal(vhd_driver.merge(bd), 0);
	assert_int_equal(blockdev_close(bd), 0);
	bd = op(base, DISK_OPEN_RDONLY);
	verify(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	free(model);
}

static void test_parent_mismatch(void **state)
{
	const char *base = tpath("pm_base.vhd"), *child = tpath("pm_child.vhd");
	struct blockdev *bd;
	size_t l1, l2;
	uint8_t *before, *after;

	mk(base, DISK_TYPE_DYNAMIC, 4 * BS, BS, NULL);
	mk(child, DISK_TYPE_DIFFERENCING, 0, BS, base);
	mk(base, DISK_TYPE_DYNAMIC, 4 * BS, BS, NULL); /* new unique id */
	before = slurp(child, &l1);
	assert_int_equal(disk_open(child, DISK_FORMAT_AUTO, 0, &bd), -EINVAL);
	assert_null(bd);
	assert_non_null(strstr(err_msg(), "unique id"));
	after = slurp(child, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(before, after, l1);
	free(before);
	free(after);
}

/* Corrupts a copy of a good image and expects open to fail without writing anything. */
static void expect_bad(const char *src, uint64_t off, const void *data, size_t len,
		       uint64_t truncate_to, const char *needle)
{
	const char *p = tpath("bad.vhd");
	size_t l, l2;
	uint8_t *img = slurp(src, &l), *after;
	struct blockdev *bd = (struct blockdev *)1;
	struct disk_check_result res;
	int fd;

	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, l), (ssize_t)l);
	close(fd);
	if (data)
		poke(p, off, data, len);
	if (truncate_to)
		assert_int_equal(truncate(p, (off_t)truncate_to), 0);
	free(img);
	img = slurp(p, &l);
	assert_int_not_equal(vhd_driver.open(p, 0, &bd), 0);
	if (!strstr(err_msg(), needle)) {
		fprintf(stderr, "message '%s' lacks '%s'\n", err_msg(), needle);
		fail();
	}
	assert_null(strchr(err_msg(), '\n'));
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_true(res.errors > 0);
	after = slurp(p, &l2);
	assert_int_equal(l, l2);
	assert_memory_equal(img, after, l);
	free(img);
	free(after);
}

static void test_corruption(void **state)
{
	const char *fx = tpath("c_fixed.vhd"), *dy = tpath("c_dyn.vhd");
	struct blockdev *bd;
	uint8_t x = 0x5a;
	uint32_t be;
	uint64_t fsz;

	mk(fx, DISK_TYPE_FIXED, MIB, 0, NULL);
	mk(dy, DISK_TYPE_DYNAMIC, 8 * BS, BS, NULL);
	bd = op(dy, 0);
	wr(bd, NULL, 0, 4096, 1);
	assert_int_equal(blockdev_close(bd), 0);
	fsz = fsize(dy);

	/* Byte 100 of the footer is reserved (always zero), so the poke always changes it;
	 * byte 70 was inside the random unique id and matched 0x5a one run in 256. */
	expect_bad(fx, MIB + 100, &x, 1, 0, "checksum"); /* fixed footer checksum */
	expect_bad(fx, 0, NULL, 0, MIB - 512, ""); /* truncated fixed */
	expect_bad(dy, 512, "xxsparse", 8, 0, "cxsparse"); /* header cookie */
	expect_bad(dy, 512 + 100, &x, 1, 0, "checksum"); /* header checksum */
	be = htobe32(0x00100000); /* BAT entry far past EOF */
	expect_bad(dy, 1536 + 4, &be, 4, 0, "past the end");
	be = htobe32(3); /* BAT entry on the header */
	expect_bad(dy, 1536 + 8, &be, 4, 0, "overlaps");
	expect_bad(dy, 0, NULL, 0, 3000, ""); /* truncated: block past EOF */
	/* Both footers damaged. */
	{
		const char *two = tpath("c_two.vhd");
		size_t l;
		uint8_t *img = slurp(dy, &l);

		img[70] ^= 1;
		img[l - 512 + 70] ^= 1;
		int fd = open(two, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_int_equal(write(fd, img, l), (ssize_t)l);
		close(fd);
		free(img);
		expect_bad(two, 0, NULL, 0, 0, "checksum");
	}
	(void)fsz;
}

struct thr_arg {
	struct blockdev *bd;
	uint8_t *model;
	uint64_t size;
	int t;
};

/* Thread t owns every 4 KiB chunk c with c % 4 == t; blocks are shared. */
static void *thr_writer(void *opaque)
{
	struct thr_arg *a = opaque;
	uint32_t seed = 1000u + (uint32_t)a->t;
	uint8_t buf[4096];

	for (int i = 0; i < 300; i++) {
		uint64_t chunks = a->size / 4096;
		uint64_t c;

		seed = seed * 1103515245u + 12345u;
		c = (seed >> 8) % chunks;
		c = c - c % 4 + (uint64_t)a->t;
		if (c >= chunks)
			continue;
		fill(buf, sizeof(buf), seed);
		if (blockdev_write(a->bd, buf, sizeof(buf), c * 4096,
				   i % 50 == 0 ? BLOCKDEV_WRITE_FUA : 0))
			return (void *)1;
		memcpy(a->model + c * 4096, buf, sizeof(buf));
		if (i % 64 == 0 && blockdev_flush(a->bd))
			return (void *)1;
	}
	return NULL;
}

static void run_threads(struct blockdev *bd, uint8_t *model, uint64_t size)
{
	pthread_t th[4];
	struct thr_arg a[4];
	void *r;

	for (int t = 0; t < 4; t++) {
		a[t] = (struct thr_arg){bd, model, size, t};
		assert_int_equal(pthread_create(&th[t], NULL, thr_writer, &a[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		assert_int_equal(pthread_join(th[t], &r), 0);
		assert_null(r);
	}
}

static void test_threads(void **state)
{
	const char *dy = tpath("th_dyn.vhd"), *ch = tpath("th_child.vhd"), *gc = tpath("th_gc.vhd");
	uint64_t size = 64 * BS;
	uint8_t *model = calloc(1, size);
	struct blockdev *bd;
	struct disk_check_result res;

	mk(dy, DISK_TYPE_DYNAMIC, size, BS, NULL);
	bd = op(dy, 0);
	run_threads(bd, model, size);
	verify(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	bd = op(dy, DISK_OPEN_RDONLY);
	verify(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);

	/* Two-level chain: child and grandchild, written concurrently. */
	mk(ch, DISK_TYPE_DIFFERENCING, 0, BS, dy);
	bd = op(ch, 0);
	run_threads(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	mk(gc, DISK_TYPE_DIFFERENCING, 0, 2 * BS, ch);
	bd = op(gc, 0);
	wr(bd, model, 7 * 512, 3 * 512, 77);
	run_threads(bd, model, size);
	verify(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	bd = op(gc, DISK_OPEN_RDONLY);
	verify(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(disk_check(gc, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_int_equal(res.errors, 0);
	free(model);
}

struct q_done {
	int n;
	int err;
};

static void q_complete(struct blockdev_req *req, int result)
{
	struct q_done *d = req->opaque;

	d->n++;
	if (result)
		d->err = result;
}

/* Through the async queue (map() fast path, io_uring when available). */
static void queue_rw(struct blockdev *bd, uint8_t *model, uint64_t size, uint32_t seed)
{
	struct blockdev_queue *q = blockdev_queue_create(bd, 16, BLOCKDEV_ENGINE_AUTO);
	enum { N = 32 };
	struct blockdev_req req[N];
	struct iovec iov[N];
	uint8_t *bufs = NULL;
	struct q_done d = {0, 0};

	assert_non_null(q);
	assert_int_equal(posix_memalign((void **)&bufs, 4096, N * 8192), 0);
	for (int i = 0; i < N; i++) {
		uint64_t off;

		seed = seed * 1103515245u + 12345u;
		/* Distinct slots so the order of completion does not matter. */
		off = (uint64_t)i * (size / N) + ((seed >> 8) % 4) * 4096;
		fill(bufs + i * 8192, 8192, seed);
		memcpy(model + off, bufs + i * 8192, 8192);
		iov[i] = (struct iovec){bufs + i * 8192, 8192};
		req[i] = (struct blockdev_req){.op = BLOCKDEV_OP_WRITE,
					       .offset = off,
					       .iov = &iov[i],
					       .iovcnt = 1,
					       .complete = q_complete,
					       .opaque = &d};
		while (blockdev_queue_submit(q, &req[i]) == -EAGAIN)
			blockdev_queue_wait(q);
	}
	while (blockdev_queue_inflight(q))
		blockdev_queue_wait(q);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.n, N);
	/* Read everything back through the queue in 64 KiB pieces. */
	{
		uint8_t *rb;
		struct blockdev_req rr;
		struct iovec riov;

		assert_int_equal(posix_memalign((void **)&rb, 4096, 65536), 0);
		for (uint64_t off = 0; off < size; off += 65536) {
			uint64_t len = MIN(65536, size - off);

			riov = (struct iovec){rb, len};
			rr = (struct blockdev_req){.op = BLOCKDEV_OP_READ,
						   .offset = off,
						   .iov = &riov,
						   .iovcnt = 1,
						   .complete = q_complete,
						   .opaque = &d};
			assert_int_equal(blockdev_queue_submit(q, &rr), 0);
			while (blockdev_queue_inflight(q))
				blockdev_queue_wait(q);
			assert_int_equal(d.err, 0);
			assert_memory_equal(rb, model + off, len);
		}
		free(rb);
	}
	blockdev_queue_destroy(q);
	free(bufs);
}

static void test_queue(void **state)
{
	const char *dy = tpath("q_dyn.vhd"), *ch = tpath("q_child.vhd");
	uint64_t size = 32 * BS;
	uint8_t *model = calloc(1, size);
	struct blockdev *bd;
	int ret;

	mk(dy, DISK_TYPE_DYNAMIC, size, BS, NULL);
	bd = op(dy, 0);
	queue_rw(bd, model, size, 5);
	assert_int_equal(blockdev_flush(bd), 0);
	queue_rw(bd, model, size, 6); /* now into durable blocks: DATA fast path */
	assert_int_equal(blockdev_close(bd), 0);
	mk(ch, DISK_TYPE_DIFFERENCING, 0, BS, dy);
	ret = disk_open(ch, DISK_FORMAT_AUTO, DISK_OPEN_DIRECT, &bd);
	if (ret == -EINVAL) /* no O_DIRECT on this file system */
		bd = op(ch, 0);
	else
		assert_int_equal(ret, 0);
	queue_rw(bd, model, size, 7);
	assert_int_equal(blockdev_flush(bd), 0);
	queue_rw(bd, model, size, 8);
	verify(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	free(model);
}

static void test_head_footer(void **state)
{
	const char *p = tpath("hf.vhd");
	struct blockdev *bd;
	struct disk_check_result res;
	struct vhd_footer f;
	uint8_t x = 0x42;

	mk(p, DISK_TYPE_DYNAMIC, 4 * BS, BS, NULL);
	poke(p, 100, &x, 1); /* head copy checksum now wrong */
	bd = op(p, 0); /* the tail footer is what counts */
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_int_equal(res.errors, 1);
	assert_non_null(strstr(res.first_error, "offset 0"));
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, true, &res, NULL), 0);
	assert_int_equal(res.repaired, 1);
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_int_equal(res.errors, 0);

	/* A valid head copy with another identity is a mismatch, not a stale copy. */
	footer_read(p, 0, &f);
	f.unique_id[0] ^= 1;
	f.checksum = htobe32(vhd_checksum(&f, 512, 64));
	poke(p, 0, &f, 512);
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_int_equal(res.errors, 1);
	assert_non_null(strstr(res.first_error, "different"));
	/* Only the time stamp differs: a warning. */
	f.unique_id[0] ^= 1;
	f.timestamp = htobe32(be32toh(f.timestamp) - 10);
	f.checksum = htobe32(vhd_checksum(&f, 512, 64));
	poke(p, 0, &f, 512);
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_int_equal(res.errors, 0);
}

/* Child in a sub-directory: W2ru is ".\..\name" and survives moving the pair. */
static void test_locators(void **state)
{
	char sub[128], child[256], sub2[128], child2[256], cmd[1024];
	const char *base = tpath("loc_base.vhd");
	struct vhd_dyn_header h;
	struct blockdev *bd;
	uint8_t rel[64] = {0};
	const char *want = ".\\..\\loc_base.vhd";
	int fd;

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(child, sizeof(child), "%s/child.vhd", sub);
	assert_int_equal(mkdir(sub, 0755), 0);
	mk(base, DISK_TYPE_DYNAMIC, 4 * BS, BS, NULL);
	mk(child, DISK_TYPE_DIFFERENCING, 0, BS, base);
	fd = open(child, O_RDONLY);
	assert_int_equal(pread(fd, &h, sizeof(h), 512), (ssize_t)sizeof(h));
	assert_int_equal(be32toh(h.locators[0].platform_code), VHD_PLAT_W2RU);
	assert_int_equal(be32toh(h.locators[0].data_length), 2 * strlen(want));
	assert_int_equal(be32toh(h.locators[0].data_space) % 512, 0);
	assert_int_equal(be32toh(h.locators[1].platform_code), VHD_PLAT_W2KU);
	assert_int_equal(
		pread(fd, rel, 2 * strlen(want), (off_t)be64toh(h.locators[0].data_offset)),
		(ssize_t)(2 * strlen(want)));
	close(fd);
	for (size_t i = 0; i < strlen(want); i++) {
		assert_int_equal(rel[2 * i], want[i]); /* UTF-16LE */
		assert_int_equal(rel[2 * i + 1], 0);
	}
	assert_int_equal(be16toh(h.parent_name[0]), 'l'); /* UTF-16BE file name */

	/* Move both into a new tree: only the relative locator can find the parent. */
	snprintf(sub2, sizeof(sub2), "%s/moved", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/sub' && mv '%s' '%s/sub/' && mv '%s' '%s/'", sub2,
		 child, sub2, base, sub2);
	assert_int_equal(system(cmd), 0);
	snprintf(child2, sizeof(child2), "%s/sub/child.vhd", sub2);
	bd = op(child2, DISK_OPEN_RDONLY);
	{
		struct disk_info info;

		assert_int_equal(disk_info_get(bd, &info), 0);
		/* Resolved through the relative locator, against the child's new directory. */
		assert_non_null(strstr(info.parent_path, "moved/sub/"));
		assert_non_null(strstr(info.parent_path, "../loc_base.vhd"));
	}
	assert_int_equal(blockdev_close(bd), 0);
}

static int pid_wait(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

/*
 * Crash order: a process killed after flushing some writes and in the middle of
 * unflushed allocations leaves a file that opens, keeps every flushed write and
 * at most leaks space; a torn tail is repaired from the head copy.
 */
static void test_crash(void **state)
{
	const char *p = tpath("crash.vhd");
	uint64_t size = 16 * BS;
	uint8_t *model = calloc(1, size);
	struct blockdev *bd;
	struct disk_check_result res;
	uint64_t fs;
	pid_t pid;

	mk(p, DISK_TYPE_DYNAMIC, size, BS, NULL);
	fill(model, 3 * BS, 21);
	pid = fork();
	if (pid == 0) {
		struct blockdev *cbd;

		if (disk_open(p, DISK_FORMAT_VHD, 0, &cbd) ||
		    blockdev_write(cbd, model, 3 * BS, 0, 0) || blockdev_flush(cbd))
			_exit(1);
		/* Unflushed allocations, then die. */
		for (int i = 5; i < 12; i++) {
			uint8_t junk[4096];

			memset(junk, i, sizeof(junk));
			if (blockdev_write(cbd, junk, sizeof(junk), (uint64_t)i * BS, 0))
				_exit(1);
		}
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	assert_true(WIFSIGNALED(pid_wait(pid)));
	/* The unflushed blocks are leaked space, not reachable garbage. */
	bd = op(p, DISK_OPEN_RDONLY);
	{
		uint8_t *b = malloc(size);

		assert_int_equal(blockdev_read(bd, b, size, 0), 0);
		assert_memory_equal(b, model, 3 * BS);
		for (uint64_t i = 3 * BS; i < size; i++)
			if (b[i] != 0 && b[i] != (uint8_t)(i / BS))
				fail();
		free(b);
	}
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_int_equal(res.errors, 0);
	if (res.leaks) {
		assert_int_equal(disk_check(p, DISK_FORMAT_VHD, true, &res, NULL), 0);
		assert_int_equal(res.repaired, 1);
	}
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_int_equal(res.errors + res.leaks, 0);

	/* Torn allocation: the file ends in the middle of a new block (no tail footer). */
	bd = op(p, 0);
	wr(bd, NULL, 14 * BS, 4096, 22);
	/* no flush: BAT entry stays in memory; close would flush, so fork again instead */
	assert_int_equal(blockdev_close(bd), 0);
	fs = fsize(p);
	pid = fork();
	if (pid == 0) {
		struct blockdev *cbd;
		uint8_t junk[4096];

		memset(junk, 0x77, sizeof(junk));
		if (disk_open(p, DISK_FORMAT_VHD, 0, &cbd) ||
		    blockdev_write(cbd, junk, sizeof(junk), 15 * BS, 0))
			_exit(1);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	assert_true(WIFSIGNALED(pid_wait(pid)));
	assert_true(fsize(p) > fs);
	assert_int_equal(truncate(p, (off_t)(fs + 4096 + 100)), 0); /* torn mid-block */
	memset(model + 3 * BS, 0, size - 3 * BS);
	bd = op(p, DISK_OPEN_RDONLY); /* head copy is used */
	{
		uint8_t b[4096];

		assert_int_equal(blockdev_read(bd, b, sizeof(b), 15 * BS), 0);
		for (size_t i = 0; i < sizeof(b); i++)
			assert_int_equal(b[i], 0);
		assert_int_equal(blockdev_read(bd, b, 3 * 512, 0), 0);
		assert_memory_equal(b, model, 3 * 512);
	}
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_int_equal(res.errors, 1);
	assert_non_null(strstr(res.first_error, "footer"));
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, true, &res, NULL), 0);
	assert_int_equal(res.repaired, 1);
	assert_int_equal(fsize(p), fs);
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_int_equal(res.errors + res.leaks, 0);
	free(model);
}

static void test_resize(void **state)
{
	const char *fx = tpath("rs_fixed.vhd"), *dy = tpath("rs_dyn.vhd");
	uint64_t size = 2 * MIB;
	uint8_t *model = calloc(1, 400 * BS);
	struct blockdev *bd;
	struct disk_check_result res;

	mk(fx, DISK_TYPE_FIXED, size, 0, NULL);
	bd = op(fx, 0);
	wr(bd, model, size - 4096, 4096, 31);
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(vhd_driver.resize(fx, 3 * MIB), 0);
	assert_int_equal(fsize(fx), 3 * MIB + 512);
	bd = op(fx, DISK_OPEN_RDONLY);
	assert_int_equal(bd->size, 3 * MIB);
	verify(bd, model, 3 * MIB); /* old footer area reads as zeros */
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_not_equal(vhd_driver.resize(fx, MIB), 0);
	assert_non_null(strstr(err_msg(), "shrink"));

	/* Dynamic, nothing after the BAT: the BAT grows in place. */
	memset(model, 0, 400 * BS);
	mk(dy, DISK_TYPE_DYNAMIC, 4 * BS, BS, NULL);
	assert_int_equal(vhd_driver.resize(dy, 300 * BS), 0);
	bd = op(dy, 0);
	assert_int_equal(bd->size, 300 * BS);
	wr(bd, model, 299 * BS, BS, 32);
	wr(bd, model, 0, 512, 33);
	verify(bd, model, 300 * BS);
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(disk_check(dy, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_int_equal(res.errors, 0);
	/* Blocks now follow the BAT: within the slack in place, beyond it the BAT moves to EOF. */
	assert_int_equal(vhd_driver.resize(dy, 400 * BS), 0);
	bd = op(dy, DISK_OPEN_RDONLY);
	assert_int_equal(bd->size, 400 * BS);
	verify(bd, model, 300 * BS);
	assert_int_equal(blockdev_close(bd), 0);
	{
		uint64_t big = 600 * (uint64_t)BS;
		uint8_t *m2 = calloc(1, big);
		struct vhd_dyn_header h;
		int fd;

		memcpy(m2, model, 300 * BS);
		assert_int_equal(vhd_driver.resize(dy, big), 0);
		fd = open(dy, O_RDONLY);
		assert_int_equal(pread(fd, &h, sizeof(h), 512), (ssize_t)sizeof(h));
		close(fd);
		assert_true(be64toh(h.table_offset) > 1536);
		assert_int_equal(be32toh(h.max_table_entries), 600);
		bd = op(dy, 0);
		assert_int_equal(bd->size, big);
		wr(bd, m2, big - BS - 512, BS + 512, 34);
		wr(bd, m2, 512, 512, 35);
		verify(bd, m2, big);
		assert_int_equal(blockdev_close(bd), 0);
		assert_int_equal(disk_check(dy, DISK_FORMAT_VHD, false, &res, NULL), 0);
		assert_int_equal(res.errors + res.leaks, 0);
		bd = op(dy, DISK_OPEN_RDONLY);
		verify(bd, m2, big);
		assert_int_equal(blockdev_close(bd), 0);
		free(m2);
	}
	/* Differencing images keep their parent's size. */
	mk(tpath("rs_child.vhd"), DISK_TYPE_DIFFERENCING, 0, BS, dy);
	assert_int_equal(vhd_driver.resize(tpath("rs_child.vhd"), 5000 * (uint64_t)BS), -EINVAL);
	assert_non_null(strstr(err_msg(), "parent"));
	free(model);
}

/* A qemu-style dynamic file built byte by byte: creator 'qemu', CHS-rounded size. */
static void test_qemu_style(void **state)
{
	const char *p = tpath("qstyle.vhd");
	struct vhd_footer f;
	struct vhd_dyn_header h;
	uint8_t bat[512];
	uint64_t size = 1073741824ull; /* CurrentSize != CHS size */
	struct blockdev *bd;
	struct disk_check_result res;
	char line[4096] = "";
	FILE *rep;
	int fd;

	memset(&f, 0, sizeof(f));
	memcpy(f.cookie, "conectix", 8);
	f.features = htobe32(2);
	f.version = htobe32(VHD_VERSION);
	f.data_offset = htobe64(512);
	memcpy(f.creator_app, "qemu", 4);
	f.creator_version = htobe32(0x00050003);
	f.creator_os = htobe32(VHD_OS_WI2K);
	f.original_size = f.current_size = htobe64(size);
	f.cylinders = htobe16(2081);
	f.heads = 16;
	f.sectors = 63;
	f.disk_type = htobe32(VHD_TYPE_DYNAMIC);
	f.checksum = htobe32(vhd_checksum(&f, 512, 64));
	memset(&h, 0, sizeof(h));
	memcpy(h.cookie, "cxsparse", 8);
	h.data_offset = htobe64(VHD_NO_DATA_OFFSET);
	h.table_offset = htobe64(1536);
	h.version = htobe32(VHD_VERSION);
	h.max_table_entries = htobe32(513);
	h.block_size = htobe32(2 * MIB);
	h.checksum = htobe32(vhd_checksum(&h, 1024, 36));
	memset(bat, 0xff, sizeof(bat));
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &f, 512, 0), 512);
	assert_int_equal(pwrite(fd, &h, 1024, 512), 1024);
	for (int i = 0; i < 5; i++)
		assert_int_equal(pwrite(fd, bat, 512, 1536 + 512 * i), 512);
	assert_int_equal(pwrite(fd, &f, 512, 1536 + 2560), 512);
	close(fd);

	bd = op(p, 0);
	assert_int_equal(bd->size, size); /* CurrentSize, as Hyper-V */
	wr(bd, NULL, 2 * MIB - 512, 1024, 41);
	assert_int_equal(blockdev_close(bd), 0);
	rep = tmpfile();
	assert_int_equal(disk_check(p, DISK_FORMAT_VHD, false, &res, rep), 0);
	assert_int_equal(res.errors, 0);
	rewind(rep);
	assert_true(fread(line, 1, sizeof(line) - 1, rep) > 0);
	fclose(rep);
	assert_non_null(strstr(line, "CHS size 1073995776"));
}

static bool have_qemu(void)
{
	return access("/usr/bin/qemu-img", X_OK) == 0;
}

static uint64_t qemu_virtual_size(const char *path)
{
	char cmd[512], out[8192];
	size_t n;
	FILE *f;
	char *s;

	snprintf(cmd, sizeof(cmd), "qemu-img info -f vpc --output=json '%s' 2>&1", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	pclose(f);
	s = strstr(out, "\"virtual-size\":");
	assert_non_null(s);
	return strtoull(s + 15, NULL, 10);
}

/* Interop: qemu-made images read by us, our images read by qemu. */
static void test_qemu(void **state)
{
	const char *q = tpath("q.vhd"), *raw = tpath("q.raw"), *ours = tpath("ours.vhd");
	const char *ofx = tpath("ours_fixed.vhd");
	uint64_t size = 1000 * MIB / 100; /* 10,485,760: not a CHS size */
	uint8_t *model = calloc(1, size + 4 * MIB);
	char cmd[1024];
	struct blockdev *bd;
	struct disk_check_result res;

	if (!have_qemu()) {
		free(model);
		skip();
	}
	snprintf(cmd, sizeof(cmd),
		 "qemu-img create -q -f vpc -o subformat=dynamic '%s' %llu && "
		 "qemu-io -f vpc -c 'write -P 0xab 4096 4096' -c 'write -P 0xcd 2093056 8192' '%s' "
		 ">/dev/null",
		 q, (unsigned long long)size, q);
	assert_int_equal(system(cmd), 0);
	bd = op(q, 0);
	/* qemu rounds up to CHS and writes it as CurrentSize: both rules agree. */
	assert_int_equal(bd->size, qemu_virtual_size(q));
	assert_true(bd->size >= size);
	memset(model + 4096, 0xab, 4096);
	memset(model + 2093056, 0xcd, 8192);
	verify(bd, model, bd->size);
	wr(bd, model, 5 * MIB - 512, 4096, 51);
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(disk_check(q, DISK_FORMAT_VHD, false, &res, NULL), 0);
	assert_int_equal(res.errors, 0);
	/* qemu reads what we wrote into its file. */
	{
		int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		assert_int_equal(write(fd, model, size), (ssize_t)size);
		close(fd);
	}
	snprintf(cmd, sizeof(cmd), "qemu-img compare -q -f raw -F vpc '%s' '%s'", raw, q);
	assert_int_equal(system(cmd), 0);

	/* Our dynamic and fixed images: exact size in qemu and identical contents. */
	memset(model, 0, size);
	mk(ours, DISK_TYPE_DYNAMIC, size, 0, NULL);
	mk(ofx, DISK_TYPE_FIXED, size, 0, NULL);
	bd = op(ours, 0);
	patterns(bd, model, size);
	wr(bd, model, 2 * MIB - 4096, 8192, 52);
	assert_int_equal(blockdev_close(bd), 0);
	bd = op(ofx, 0);
	patterns(bd, NULL, size);
	wr(bd, NULL, 2 * MIB - 4096, 8192, 52);
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(qemu_virtual_size(ours), size);
	assert_int_equal(qemu_virtual_size(ofx), size);
	{
		int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		assert_int_equal(write(fd, model, size), (ssize_t)size);
		close(fd);
	}
	snprintf(cmd, sizeof(cmd),
		 "qemu-img compare -q -f raw -F vpc '%s' '%s' && "
		 "qemu-img compare -q -f raw -F vpc '%s' '%s'",
		 raw, ours, raw, ofx);
	assert_int_equal(system(cmd), 0);
	free(model);
}

static void test_probe(void **state)
{
	uint8_t head[512] = {0}, tail[512] = {0};

	assert_false(vhd_driver.probe(head, sizeof(head), tail, 4096));
	memcpy(tail, "conectix", 8);
	assert_true(vhd_driver.probe(head, sizeof(head), tail, 4096));
	memset(tail, 0, 8);
	memcpy(tail + 1, "conectix", 8);
	assert_true(vhd_driver.probe(head, sizeof(head), tail, 4095));
	memset(tail, 0, 16);
	memcpy(head, "conectix", 8);
	assert_true(vhd_driver.probe(head, sizeof(head), tail, 4096));
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vhdtest.XXXXXX");
	assert_non_null(mkdtemp(dir));
	log_set_level(LOG_ERROR);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry_checksum),
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_dynamic),
		cmocka_unit_test(test_dynamic_iov_fua),
		cmocka_unit_test(test_differencing),
		cmocka_unit_test(test_parent_mismatch),
		cmocka_unit_test(test_locators),
		cmocka_unit_test(test_corruption),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_queue),
		cmocka_unit_test(test_head_footer),
		cmocka_unit_test(test_crash),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_qemu_style),
		cmocka_unit_test(test_qemu),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
