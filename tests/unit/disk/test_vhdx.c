// SPDX-License-Identifier: GPL-2.0-only
/* VHDX driver: round trips against a memory model, chains, log replay, corruption, qemu interop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "disk/disk.h"
#include "disk/vhdx.h"
#include "lib/crc32c.h"
#include "lib/err.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1024ull * 1024)

static char tmpdir[64];

static void tpath(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static bool have_qemu(void)
{
	return access("/usr/bin/qemu-img", X_OK) == 0 && access("/usr/bin/qemu-io", X_OK) == 0;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Whole-file CRC: "did this file change?" */
static uint32_t file_crc(const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t buf[65536];
	uint32_t c = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		c = crc32c(c, buf, (size_t)n);
	close(fd);
	return c;
}

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void fill(uint8_t *p, uint64_t len, uint8_t seed)
{
	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

/* Writes len bytes at off through bd and into the model. */
static void wr(struct blockdev *bd, uint8_t *model, uint64_t off, uint64_t len, uint8_t seed)
{
	uint8_t *b = malloc(len);
	fill(b, len, seed);
	int r = blockdev_write(bd, b, len, off, 0);
	if (r)
		fprintf(stderr, "write %lu+%lu: %s\n", (unsigned long)off, (unsigned long)len,
			err_msg());
	assert_int_equal(r, 0);
	memcpy(model + off, b, len);
	free(b);
}

static void compare(struct blockdev *bd, const uint8_t *model, uint64_t size)
{
	uint64_t chunk = 3 * MIB + 4096;
	uint8_t *b = malloc(chunk);
	for (uint64_t off = 0; off < size; off += chunk) {
		uint64_t n = size - off < chunk ? size - off : chunk;
		int r = blockdev_read(bd, b, n, off);
		if (r)
			fprintf(stderr, "read: %s\n", err_msg());
		assert_int_equal(r, 0);
		if (memcmp(b, model + off, n)) {
			for (uint64_t i = 0; i < n; i++)
				if (b[i] != model[off + i]) {
					fprintf(stderr, "mismatch at %lu: %02x != %02x\n",
						(unsigned long)(off + i), b[i], model[off + i]);
					break;
				}
			fail();
		}
	}
	free(b);
}

/* 0 when qemu-img check finds no errors; prints its output otherwise. */
static int qemu_check(const char *img)
{
	return sh("out=$(qemu-img check -f vhdx '%s' 2>&1); echo \"$out\" | grep -q 'No errors' "
		  "|| { echo \"$out\" >&2; false; }",
		  img);
}

/* Compares the image, read by qemu-img convert, with the model. */
static void qemu_compare(const char *img, const uint8_t *model, uint64_t size)
{
	char raw[256];
	tpath(raw, sizeof(raw), "qemu.raw");
	assert_int_equal(sh("qemu-img convert -f vhdx -O raw '%s' '%s'", img, raw), 0);
	int fd = open(raw, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t *b = malloc(size);
	assert_int_equal(util_pread_full(fd, b, size, 0), 0);
	close(fd);
	assert_memory_equal(b, model, size);
	free(b);
	unlink(raw);
}

static void create(const char *path, enum disk_type type, uint64_t size, uint32_t bs, uint32_t lss,
		   const char *parent)
{
	struct disk_create_opts o = {.format = DISK_FORMAT_VHDX,
				     .type = type,
				     .size = size,
				     .block_size = bs,
				     .logical_sector_size = lss,
				     .parent = parent};
	unlink(path);
	int r = disk_create(path, &o);
	if (r)
		fprintf(stderr, "create: %s\n", err_msg());
	assert_int_equal(r, 0);
}

static struct blockdev *open_img(const char *path, unsigned flags)
{
	struct blockdev *bd = NULL;
	int r = disk_open(path, DISK_FORMAT_VHDX, flags, &bd);
	if (r)
		fprintf(stderr, "open %s: %s\n", path, err_msg());
	assert_int_equal(r, 0);
	return bd;
}

/* Pattern of writes crossing block boundaries for block size bs. */
static void write_pattern(struct blockdev *bd, uint8_t *model, uint64_t size, uint32_t bs,
			  uint32_t lss)
{
	wr(bd, model, 0, lss, 1);
	wr(bd, model, size - lss, lss, 2);
	if (bs + (uint64_t)lss < size)
		wr(bd, model, bs - lss, 2 * lss, 3);
	if (size > 2 * (uint64_t)bs + 8192)
		wr(bd, model, 2 * (uint64_t)bs - 4096, 8192 + lss, 4);
	for (int i = 0; i < 12; i++) {
		uint64_t len = (1 + rnd() % 64) * lss;
		uint64_t off = (rnd() % ((size - len) / lss)) * lss;
		wr(bd, model, off, len, (uint8_t)(10 + i));
	}
}

static void roundtrip(enum disk_type type, uint32_t bs, uint32_t lss)
{
	char p[256];
	uint64_t size = 6 * MIB + 3 * 4096;
	uint8_t *model = calloc(1, size);
	tpath(p, sizeof(p), "rt.vhdx");
	create(p, type, size, bs, lss, NULL);
	struct blockdev *bd = open_img(p, 0);
	assert_int_equal(bd->size, size);
	assert_int_equal(bd->logical_sector_size, lss);
	write_pattern(bd, model, size, bs, lss);
	compare(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);

	bd = open_img(p, DISK_OPEN_RDONLY);
	compare(bd, model, size);
	struct disk_info info;
	assert_int_equal(disk_info_get(bd, &info), 0);
	assert_string_equal(info.log_state, "clean");
	assert_string_equal(info.creator, "viridian");
	assert_int_equal(info.block_size, bs);
	assert_int_equal(info.type, type);
	assert_int_equal(blockdev_close(bd), 0);

	struct disk_check_result res;
	assert_int_equal(disk_check(p, DISK_FORMAT_VHDX, false, &res, NULL), 0);
	assert_int_equal(res.errors, 0);

	/* qemu 7.2 only opens VHDX with 512-byte logical sectors ("Operation not supported"). */
	if (have_qemu() && lss == 512) {
		assert_int_equal(qemu_check(p), 0);
		assert_int_equal(sh("qemu-img info -f vhdx --output=json '%s' | grep -q "
				    "'\"virtual-size\": %lu,'",
				    p, (unsigned long)size),
				 0);
		qemu_compare(p, model, size);
	}
	unlink(p);
	free(model);
}

static void test_roundtrip(void **state)
{
	static const uint32_t bss[] = {1 * MIB, 2 * MIB, 32 * MIB};
	for (int t = 0; t < 2; t++)
		for (size_t b = 0; b < 3; b++)
			for (int l = 0; l < 2; l++)
				roundtrip(t ? DISK_TYPE_DYNAMIC : DISK_TYPE_FIXED, bss[b],
					  l ? 4096 : 512);
}

/* Chain base <- c1 <- c2 <- c3 with sub-block, single-sector writes at each level. */
static void chain(uint32_t bs, uint32_t lss)
{
	char p[4][256];
	uint64_t size = 5 * MIB;
	uint8_t *model = calloc(1, size);
	for (int i = 0; i < 4; i++) {
		char n[16];
		snprintf(n, sizeof(n), "c%d.vhdx", i);
		tpath(p[i], sizeof(p[i]), n);
		unlink(p[i]);
	}
	create(p[0], DISK_TYPE_DYNAMIC, size, 1 * MIB, lss, NULL);
	struct blockdev *bd = open_img(p[0], 0);
	wr(bd, model, 0, 2 * MIB, 0x10);
	wr(bd, model, 3 * MIB, MIB, 0x11);
	assert_int_equal(blockdev_close(bd), 0);
	for (int lvl = 1; lvl < 4; lvl++) {
		create(p[lvl], DISK_TYPE_DIFFERENCING, 0, bs, 0, p[lvl - 1]);
		bd = open_img(p[lvl], 0);
		assert_int_equal(bd->size, size);
		compare(bd, model, size);
		wr(bd, model, lss * (uint64_t)lvl, lss, (uint8_t)(0x20 + lvl));
		wr(bd, model, MIB - lss, 3 * lss, (uint8_t)(0x30 + lvl));
		wr(bd, model, 4 * MIB + 7 * lss * lvl, lss, (uint8_t)(0x40 + lvl));
		if (lvl == 2)
			wr(bd, model, 2 * MIB, 2 * MIB, 0x50); /* whole blocks */
		compare(bd, model, size);
		int st;
		uint64_t run;
		assert_int_equal(bd->ops->block_status(bd, 0, size, &st, &run), 0);
		assert_int_equal(st, BLOCKDEV_STATUS_UNALLOCATED);
		assert_int_equal(run, lss * (uint64_t)lvl);
		assert_int_equal(blockdev_close(bd), 0);
		bd = open_img(p[lvl], DISK_OPEN_RDONLY);
		compare(bd, model, size);
		struct disk_info info;
		assert_int_equal(disk_info_get(bd, &info), 0);
		assert_int_equal(info.type, DISK_TYPE_DIFFERENCING);
		assert_non_null(strstr(info.parent_path, lvl == 1 ? "c0.vhdx" : "c"));
		assert_int_equal(blockdev_close(bd), 0);
	}
	if (access("/usr/bin/python3", X_OK) == 0 &&
	    sh("/usr/bin/python3 -c 'import pyvhdi' 2>/dev/null") == 0) {
		/* Independent reader: libvhdi over the whole chain, dumped to raw. */
		char raw[256];
		tpath(raw, sizeof(raw), "pyvhdi.raw");
		assert_int_equal(
			sh("cd '%s' && /usr/bin/python3 -c \"\nimport pyvhdi\nfs=[]\nfor n in "
			   "['c0','c1','c2','c3']:\n f=pyvhdi.file(); f.open(n+'.vhdx'); "
			   "fs.append(f)\nfor i in range(3,0,-1): fs[i].set_parent(fs[i-1])\n"
			   "open('pyvhdi.raw','wb').write(fs[3].read_buffer(fs[3].get_media_size()))"
			   "\n\"",
			   tmpdir),
			0);
		int fd = open(raw, O_RDONLY);
		uint8_t *b = malloc(size);
		assert_int_equal(util_pread_full(fd, b, size, 0), 0);
		close(fd);
		assert_memory_equal(b, model, size);
		free(b);
		unlink(raw);
	}
	/* Merge c3 into c2: c2 must then read like the model. */
	bd = open_img(p[3], DISK_OPEN_RDONLY);
	assert_int_equal(disk_driver_get(DISK_FORMAT_VHDX)->merge(bd), 0);
	assert_int_equal(blockdev_close(bd), 0);
	bd = open_img(p[2], DISK_OPEN_RDONLY);
	compare(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	for (int i = 0; i < 4; i++)
		unlink(p[i]);
	free(model);
}

static void test_chain(void **state)
{
	chain(2 * MIB, 512);
	chain(1 * MIB, 4096);
	chain(32 * MIB, 512);
}

/* qemu-made images written by qemu-io read back identically through us. */
static void test_qemu_images(void **state)
{
	if (!have_qemu()) {
		skip();
		return;
	}
	static const char *const opts[] = {"subformat=dynamic,block_size=1M",
					   "subformat=dynamic,block_size=8M",
					   "subformat=fixed,block_state_zero=off,block_size=2M",
					   "subformat=fixed,block_size=2M"};
	char p[256], raw[256];
	tpath(p, sizeof(p), "q.vhdx");
	tpath(raw, sizeof(raw), "q.raw");
	for (size_t i = 0; i < 4; i++) {
		unlink(p);
		assert_int_equal(sh("qemu-img create -q -f vhdx -o %s '%s' 20M", opts[i], p), 0);
		assert_int_equal(sh("qemu-io -f vhdx -c 'write -P 0xab 0 4k' -c 'write -P 0xcd "
				    "1020k 8k' -c 'write -P 0x5a 19M 1M' '%s' >/dev/null",
				    p),
				 0);
		assert_int_equal(sh("qemu-img convert -f vhdx -O raw '%s' '%s'", p, raw), 0);
		uint64_t size = 20 * MIB;
		uint8_t *model = malloc(size);
		int fd = open(raw, O_RDONLY);
		assert_int_equal(util_pread_full(fd, model, size, 0), 0);
		close(fd);
		struct blockdev *bd = open_img(p, DISK_OPEN_RDONLY);
		compare(bd, model, size);
		if (i == 3) {
			int st;
			uint64_t run;
			assert_int_equal(bd->ops->block_status(bd, 10 * MIB, MIB, &st, &run), 0);
			assert_int_equal(st, BLOCKDEV_STATUS_ZERO);
		}
		assert_int_equal(blockdev_close(bd), 0);
		/* And we can write into it; qemu still agrees. */
		bd = open_img(p, 0);
		wr(bd, model, 5 * MIB - 512, 4096, 0x77);
		assert_int_equal(blockdev_close(bd), 0);
		assert_int_equal(qemu_check(p), 0);
		qemu_compare(p, model, size);
		free(model);
	}
	unlink(p);
	unlink(raw);
}

/* A child process that dies right after logging a block allocation. */
static void crash_write(const char *path, uint64_t off, uint8_t seed)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv(VHDX_CRASH_ENV, "1", 1);
		struct blockdev *bd;
		if (disk_open(path, DISK_FORMAT_VHDX, 0, &bd))
			_exit(1);
		uint8_t b[4096];
		fill(b, sizeof(b), seed);
		blockdev_write(bd, b, sizeof(b), off, 0);
		_exit(2);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 137);
}

static void test_log_replay(void **state)
{
	char p[256], q[256];
	uint64_t size = 8 * MIB;
	uint8_t *model = calloc(1, size);
	tpath(p, sizeof(p), "log.vhdx");
	tpath(q, sizeof(q), "logq.vhdx");
	create(p, DISK_TYPE_DYNAMIC, size, 1 * MIB, 512, NULL);
	struct blockdev *bd = open_img(p, 0);
	wr(bd, model, 0, 4096, 1);
	assert_int_equal(blockdev_close(bd), 0);

	crash_write(p, 3 * MIB + 4096, 9);
	fill(model + 3 * MIB + 4096, 4096, 9);
	assert_int_equal(sh("cp '%s' '%s'", p, q), 0);

	/* Read-only: refused with the documented message, file untouched. */
	uint32_t before = file_crc(p);
	assert_int_not_equal(disk_open(p, DISK_FORMAT_VHDX, DISK_OPEN_RDONLY, &bd), 0);
	assert_non_null(strstr(err_msg(), "dirty log"));
	/* No-replay: in-memory overlay shows the logged state. */
	bd = open_img(p, DISK_OPEN_RDONLY | DISK_OPEN_NO_REPLAY);
	struct disk_info info;
	assert_int_equal(disk_info_get(bd, &info), 0);
	assert_string_equal(info.log_state, "dirty");
	compare(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	struct disk_check_result res;
	assert_int_equal(disk_check(p, DISK_FORMAT_VHDX, false, &res, NULL), 0);
	assert_int_equal(res.errors, 1);
	assert_int_equal(file_crc(p), before);

	/* Repair replays; afterwards clean and the data is there. */
	assert_int_equal(disk_check(p, DISK_FORMAT_VHDX, true, &res, NULL), 0);
	assert_int_equal(res.repaired, 1);
	assert_int_equal(disk_check(p, DISK_FORMAT_VHDX, false, &res, NULL), 0);
	assert_int_equal(res.errors, 0);
	bd = open_img(p, DISK_OPEN_RDONLY);
	compare(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);

	if (have_qemu()) {
		/* qemu refuses the dirty copy read-only, replays it with check -r all. */
		assert_int_not_equal(sh("qemu-img info -f vhdx '%s' >/dev/null 2>&1", q), 0);
		assert_int_equal(sh("qemu-img check -r all -f vhdx '%s' >/dev/null 2>&1", q), 0);
		qemu_compare(q, model, size);
		qemu_compare(p, model, size);
	}

	/* Crash after the 3rd log entry of a session. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv(VHDX_CRASH_ENV, "3", 1);
		if (disk_open(p, DISK_FORMAT_VHDX, 0, &bd))
			_exit(1);
		uint8_t b[4096];
		for (int i = 0; i < 4; i++) {
			fill(b, sizeof(b), (uint8_t)(0x70 + i));
			blockdev_write(bd, b, sizeof(b), (uint64_t)(i + 1) * MIB, 0);
		}
		_exit(2);
	}
	int wst;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_int_equal(WEXITSTATUS(wst), 137);
	/* 3 MiB was allocated before: the 3rd entry is the 4 MiB block, logged and replayed. */
	for (int i = 0; i < 4; i++)
		fill(model + (uint64_t)(i + 1) * MIB, 4096, (uint8_t)(0x70 + i));
	bd = open_img(p, 0);
	compare(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);

	/* A read-write open replays too. */
	crash_write(p, 5 * MIB, 3);
	fill(model + 5 * MIB, 4096, 3);
	bd = open_img(p, 0);
	compare(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	bd = open_img(p, DISK_OPEN_RDONLY);
	compare(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	unlink(p);
	unlink(q);
	free(model);
}

/*
 * qemu clears LogGuid after each of its log writes, but the entry stays in the
 * log. Pointing the headers' LogGuid back at it makes a dirty image whose log
 * was written by qemu: we must replay it like qemu-img check -r all does.
 */
static void test_qemu_log(void **state)
{
	if (!have_qemu()) {
		skip();
		return;
	}
	char p[256], q[256];
	uint64_t size = 16 * MIB;
	tpath(p, sizeof(p), "qlog.vhdx");
	tpath(q, sizeof(q), "qlog2.vhdx");
	unlink(p);
	assert_int_equal(sh("qemu-img create -q -f vhdx -o block_size=1M,block_state_zero=off "
			    "'%s' 16M && qemu-io -f vhdx -c 'write -P 0x11 5M 4k' '%s' >/dev/null",
			    p, p),
			 0);
	uint8_t *model = calloc(1, size);
	memset(model + 5 * MIB, 0x11, 4096);
	int fd = open(p, O_RDWR);
	struct vhdx_log_entry_header le;
	struct vhdx_header h;
	assert_int_equal(util_pread_full(fd, &h, sizeof(h), 64 * 1024), 0);
	assert_int_equal(util_pread_full(fd, &le, sizeof(le), (off_t)h.log_offset), 0);
	assert_int_equal(le.signature, VHDX_LOG_SIGNATURE);
	/* Roll the BAT entry back so the replay has visible work to do. */
	uint64_t zero = 0;
	uint64_t bat_off = 0;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(util_pread_full(fd, &h, sizeof(h), (i + 1) * 64 * 1024), 0);
		h.log_guid = le.log_guid;
		h.checksum = 0;
		h.checksum = crc32c(0, &h, sizeof(h));
		assert_int_equal(util_pwrite_full(fd, &h, sizeof(h), (i + 1) * 64 * 1024), 0);
	}
	struct vhdx_log_descriptor d;
	assert_int_equal(util_pread_full(fd, &d, sizeof(d), (off_t)h.log_offset + 64), 0);
	assert_int_equal(d.signature, VHDX_DESC_SIGNATURE);
	bat_off = d.file_offset; /* the BAT page qemu logged */
	assert_int_equal(util_pwrite_full(fd, &zero, 8, (off_t)bat_off + 5 * 8), 0);
	close(fd);
	assert_int_equal(sh("cp '%s' '%s'", p, q), 0);

	struct blockdev *bd;
	assert_int_not_equal(disk_open(p, DISK_FORMAT_VHDX, DISK_OPEN_RDONLY, &bd), 0);
	bd = open_img(p, DISK_OPEN_RDONLY | DISK_OPEN_NO_REPLAY);
	compare(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	bd = open_img(p, 0);
	compare(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(sh("qemu-img check -r all -f vhdx '%s' >/dev/null 2>&1", q), 0);
	qemu_compare(q, model, size);
	qemu_compare(p, model, size);
	unlink(p);
	unlink(q);
	free(model);
}

/* ---- corruption: each must fail to open with a message and leave the file alone ---- */

static void patch(const char *path, uint64_t off, const void *data, size_t len)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(util_pwrite_full(fd, data, len, (off_t)off), 0);
	close(fd);
}

static void patch_u32(const char *path, uint64_t off, uint32_t v)
{
	patch(path, off, &v, 4);
}

/* Recomputes the CRC of the structure at off (len bytes, CRC at +4). */
static void fix_crc(const char *path, uint64_t off, size_t len)
{
	uint8_t *b = malloc(len);
	int fd = open(path, O_RDWR);
	assert_int_equal(util_pread_full(fd, b, len, (off_t)off), 0);
	memset(b + 4, 0, 4);
	uint32_t c = crc32c(0, b, len);
	memcpy(b + 4, &c, 4);
	assert_int_equal(util_pwrite_full(fd, b, len, (off_t)off), 0);
	close(fd);
	free(b);
}

static void expect_refused(const char *path, const char *what)
{
	uint32_t before = file_crc(path);
	struct blockdev *bd;
	for (int rw = 0; rw < 2; rw++) {
		err_clear();
		int r = disk_open(path, DISK_FORMAT_VHDX, rw ? 0 : DISK_OPEN_RDONLY, &bd);
		if (!r) {
			fprintf(stderr, "%s: opened although corrupt\n", what);
			blockdev_close(bd);
			fail();
		}
		assert_true(strlen(err_msg()) > 0);
	}
	struct disk_check_result res;
	assert_int_equal(disk_check(path, DISK_FORMAT_VHDX, false, &res, NULL), 0);
	assert_true(res.errors > 0);
	assert_int_equal(file_crc(path), before);
}

static void fresh(const char *p)
{
	create(p, DISK_TYPE_DYNAMIC, 8 * MIB, 1 * MIB, 512, NULL);
	struct blockdev *bd = open_img(p, 0);
	uint8_t *model = calloc(1, 8 * MIB);
	wr(bd, model, 0, 4096, 1);
	wr(bd, model, 2 * MIB, 4096, 2);
	free(model);
	assert_int_equal(blockdev_close(bd), 0);
}

#define HDR1 (64 * 1024)
#define HDR2 (128 * 1024)
#define RT1 (192 * 1024)
#define RT2 (256 * 1024)
#define META (2 * MIB)
#define BAT (3 * MIB)

static void test_corruption(void **state)
{
	char p[256];
	tpath(p, sizeof(p), "bad.vhdx");

	/* One bad header: still opens (the other is used). */
	fresh(p);
	patch_u32(p, HDR1 + 8, 0x12345);
	struct blockdev *bd = open_img(p, DISK_OPEN_RDONLY);
	blockdev_close(bd);
	struct disk_check_result res;
	assert_int_equal(disk_check(p, DISK_FORMAT_VHDX, true, &res, NULL), 0);
	assert_int_equal(res.repaired, 1);
	assert_int_equal(disk_check(p, DISK_FORMAT_VHDX, true, &res, NULL), 0);
	assert_int_equal(res.repaired, 0);
	patch_u32(p, HDR1 + 8, 0x12345);
	patch_u32(p, HDR2 + 8, 0x12345);
	expect_refused(p, "both headers bad");

	fresh(p);
	patch_u32(p, RT1 + 20, 7);
	patch_u32(p, RT2 + 20, 7);
	expect_refused(p, "bad region CRC");

	/* Overlapping regions: metadata moved onto the BAT, CRCs fixed. */
	fresh(p);
	uint64_t bat = BAT;
	for (int i = 0; i < 2; i++) {
		patch(p, (i ? RT2 : RT1) + 16 + 32 + 16, &bat, 8);
		fix_crc(p, i ? RT2 : RT1, 64 * 1024);
	}
	expect_refused(p, "overlapping regions");

	/* BAT entry past EOF. */
	fresh(p);
	uint64_t e = (1ull << 40) | 6;
	patch(p, BAT + 8 * 5, &e, 8);
	expect_refused(p, "BAT past EOF");

	/* Unknown required metadata item: turn page 83 into an unknown GUID. */
	fresh(p);
	patch_u32(p, META + 32 + 2 * 32, 0xdeadbeef);
	expect_refused(p, "unknown required metadata");

	/* Block size not a power of two. */
	fresh(p);
	patch_u32(p, META + 64 * 1024, 3 * MIB);
	expect_refused(p, "block size");

	/* Truncated file. */
	fresh(p);
	assert_int_equal(truncate(p, 4 * MIB), 0);
	expect_refused(p, "truncated");

	/* Unknown required region. */
	fresh(p);
	for (int i = 0; i < 2; i++) {
		uint64_t off = i ? RT2 : RT1;
		uint8_t ent[32] = {1, 2, 3};
		uint64_t fo = 100 * MIB;
		uint32_t len = MIB, fl = 1, cnt = 3;
		memcpy(ent + 16, &fo, 8);
		memcpy(ent + 24, &len, 4);
		memcpy(ent + 28, &fl, 4);
		patch(p, off + 16 + 64, ent, 32);
		patch_u32(p, off + 8, cnt);
		fix_crc(p, off, 64 * 1024);
	}
	expect_refused(p, "unknown required region");
	unlink(p);
}

static void test_resize(void **state)
{
	char p[256];
	tpath(p, sizeof(p), "rs.vhdx");
	create(p, DISK_TYPE_DYNAMIC, 4 * MIB, 1 * MIB, 512, NULL);
	uint8_t *model = calloc(1, 16 * MIB);
	struct blockdev *bd = open_img(p, 0);
	wr(bd, model, 4 * MIB - 4096, 4096, 5);
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(disk_driver_get(DISK_FORMAT_VHDX)->resize(p, 16 * MIB), 0);
	bd = open_img(p, 0);
	assert_int_equal(bd->size, 16 * MIB);
	wr(bd, model, 15 * MIB, 8192, 6);
	compare(bd, model, 16 * MIB);
	assert_int_equal(blockdev_close(bd), 0);
	if (have_qemu())
		assert_int_equal(qemu_check(p), 0);
	/* Beyond what the 1 MiB BAT can describe: the BAT moves to the end of the file. */
	uint64_t big = 512 * 1024 * MIB;
	assert_int_equal(disk_driver_get(DISK_FORMAT_VHDX)->resize(p, big), 0);
	bd = open_img(p, 0);
	assert_int_equal(bd->size, big);
	compare(bd, model, 16 * MIB);
	uint8_t b[4096], c[4096];
	fill(b, sizeof(b), 0x44);
	assert_int_equal(blockdev_write(bd, b, sizeof(b), big - 4096, 0), 0);
	assert_int_equal(blockdev_close(bd), 0);
	bd = open_img(p, DISK_OPEN_RDONLY);
	compare(bd, model, 16 * MIB);
	assert_int_equal(blockdev_read(bd, c, sizeof(c), big - 4096), 0);
	assert_memory_equal(b, c, sizeof(b));
	assert_int_equal(blockdev_close(bd), 0);
	if (have_qemu()) {
		assert_int_equal(qemu_check(p), 0);
		assert_int_equal(sh("qemu-img info -f vhdx --output=json '%s' | grep -q "
				    "'\"virtual-size\": %lu,'",
				    p, (unsigned long)big),
				 0);
	}
	/* Past 64 TiB: refused with a message. */
	assert_int_not_equal(disk_driver_get(DISK_FORMAT_VHDX)->resize(p, 65 * 1024 * 1024 * MIB),
			     0);
	assert_true(strlen(err_msg()) > 0);
	unlink(p);
	free(model);
}

struct thr {
	struct blockdev *bd;
	uint8_t *model;
	int id;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	/* Thread i owns every 4th 64 KiB slot: disjoint, but sharing blocks. */
	uint8_t b[65536];
	for (int k = 0; k < 40; k++) {
		uint64_t off = ((uint64_t)(k * 4 + t->id) * 65536 * 3) % (16 * MIB - 65536);
		off = off / (4 * 65536) * (4 * 65536) + (uint64_t)t->id * 65536;
		fill(b, sizeof(b), (uint8_t)(t->id * 40 + k));
		if (blockdev_write(t->bd, b, sizeof(b), off, k % 7 == 0 ? BLOCKDEV_WRITE_FUA : 0))
			return (void *)1;
		memcpy(t->model + off, b, sizeof(b));
	}
	return NULL;
}

static void test_threads(void **state)
{
	char p[256];
	tpath(p, sizeof(p), "thr.vhdx");
	create(p, DISK_TYPE_DYNAMIC, 16 * MIB, 1 * MIB, 512, NULL);
	uint8_t *model = calloc(1, 16 * MIB);
	struct blockdev *bd = open_img(p, 0);
	pthread_t th[4];
	struct thr t[4];
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){bd, model, i};
		assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		assert_null(ret);
	}
	compare(bd, model, 16 * MIB);
	/* Allocated blocks are on the fast path, for writes too. */
	struct blockdev_extent ext;
	assert_int_equal(bd->ops->map(bd, 0, 4096, true, &ext), 0);
	assert_int_equal(ext.kind, BLOCKDEV_EXTENT_DATA);
	assert_int_equal(blockdev_close(bd), 0);
	bd = open_img(p, DISK_OPEN_RDONLY);
	compare(bd, model, 16 * MIB);
	assert_int_equal(blockdev_close(bd), 0);
	if (have_qemu())
		assert_int_equal(qemu_check(p), 0);
	unlink(p);
	free(model);
}

static void test_discard(void **state)
{
	char p[256];
	uint64_t size = 6 * MIB;
	tpath(p, sizeof(p), "disc.vhdx");
	create(p, DISK_TYPE_DYNAMIC, size, 1 * MIB, 512, NULL);
	uint8_t *model = calloc(1, size);
	struct blockdev *bd = open_img(p, 0);
	wr(bd, model, 0, 4 * MIB, 0x61);
	/* Block 1 whole, block 2 only partly: only block 1 goes. */
	assert_int_equal(blockdev_discard(bd, 1 * MIB, MIB + 4096), 0);
	memset(model + 1 * MIB, 0, MIB);
	compare(bd, model, size);
	int st;
	uint64_t run;
	assert_int_equal(bd->ops->block_status(bd, MIB, MIB, &st, &run), 0);
	assert_int_equal(st, BLOCKDEV_STATUS_ZERO);
	wr(bd, model, MIB + 512, 512, 0x62); /* reallocates, rest reads zero */
	compare(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	bd = open_img(p, DISK_OPEN_RDONLY);
	compare(bd, model, size);
	assert_int_equal(blockdev_close(bd), 0);
	if (have_qemu()) {
		assert_int_equal(qemu_check(p), 0);
		qemu_compare(p, model, size);
	}
	unlink(p);
	free(model);
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vhdxtest.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	return sh("rm -rf '%s'", tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),   cmocka_unit_test(test_chain),
		cmocka_unit_test(test_qemu_images), cmocka_unit_test(test_log_replay),
		cmocka_unit_test(test_corruption),  cmocka_unit_test(test_resize),
		cmocka_unit_test(test_threads),	    cmocka_unit_test(test_discard),
		cmocka_unit_test(test_qemu_log),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
