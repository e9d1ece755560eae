// SPDX-License-Identifier: GPL-2.0-only
/* disk layer: names, probing, raw create/open/info/check, block_status, chains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "disk/disk.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void path_in(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

static void write_file(const char *name, const void *data, size_t len)
{
	char p[PATH_MAX];
	int fd;

	path_in(p, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_names(void **state)
{
	enum disk_format f;
	enum disk_type t;

	assert_int_equal(disk_format_parse("raw", &f), 0);
	assert_int_equal(f, DISK_FORMAT_RAW);
	assert_int_equal(disk_format_parse("vpc", &f), 0);
	assert_int_equal(f, DISK_FORMAT_VHD);
	assert_int_equal(disk_format_parse("vhd", &f), 0);
	assert_int_equal(f, DISK_FORMAT_VHD);
	assert_int_equal(disk_format_parse("vhdx", &f), 0);
	assert_int_equal(f, DISK_FORMAT_VHDX);
	assert_int_equal(disk_format_parse("qcow2", &f), -EINVAL);
	assert_non_null(strstr(err_msg(), "qcow2"));
	assert_string_equal(disk_format_name(DISK_FORMAT_VHDX), "vhdx");
	assert_string_equal(disk_format_name(DISK_FORMAT_RAW), "raw");
	assert_int_equal(disk_type_parse("differencing", &t), 0);
	assert_int_equal(t, DISK_TYPE_DIFFERENCING);
	assert_int_equal(disk_type_parse("dynamic", &t), 0);
	assert_int_equal(t, DISK_TYPE_DYNAMIC);
	assert_int_equal(disk_type_parse("thin", &t), -EINVAL);
	assert_string_equal(disk_type_name(DISK_TYPE_FIXED), "fixed");
	assert_non_null(disk_driver_get(DISK_FORMAT_RAW));
}

static void test_probe(void **state)
{
	static uint8_t buf[1 << 20];
	char p[PATH_MAX];
	enum disk_format f;

	memset(buf, 0x11, sizeof(buf));
	write_file("plain.img", buf, sizeof(buf));
	path_in(p, "plain.img");
	assert_int_equal(disk_probe(p, &f), 0);
	assert_int_equal(f, DISK_FORMAT_RAW);

	write_file("empty.img", buf, 0);
	path_in(p, "empty.img");
	assert_true(disk_probe(p, &f) < 0);
	assert_non_null(strstr(err_msg(), "empty"));

	for (size_t i = 0; i < 1000; i++)
		buf[i] = (uint8_t)(i * 7919 + 13);
	write_file("garbage.img", buf, 1000);
	path_in(p, "garbage.img");
	assert_int_equal(disk_probe(p, &f), 0);
	assert_int_equal(f, DISK_FORMAT_RAW);

	path_in(p, "missing.img");
	assert_int_equal(disk_probe(p, &f), -ENOENT);
	assert_non_null(strstr(err_msg(), "missing.img"));
	assert_true(disk_probe(dir, &f) < 0); /* a directory */
}

static void test_raw_create_open(void **state)
{
	struct disk_create_opts o = {
		.format = DISK_FORMAT_RAW, .type = DISK_TYPE_FIXED, .size = 4 << 20};
	struct disk_check_result res;
	struct disk_info info;
	struct blockdev *bd;
	char p[PATH_MAX];
	static uint8_t buf[8192], rd[8192];

	path_in(p, "fixed.img");
	assert_int_equal(disk_create(p, &o), 0);
	assert_int_equal(disk_create(p, &o), -EEXIST);
	assert_non_null(strstr(err_msg(), "exists"));
	assert_int_equal(disk_open(p, DISK_FORMAT_AUTO, 0, &bd), 0);
	assert_string_equal(bd->format, "raw");
	assert_int_equal(bd->size, 4 << 20);
	assert_int_equal(bd->logical_sector_size, 512);
	assert_int_equal(bd->physical_sector_size, 4096);
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(blockdev_write(bd, buf, sizeof(buf), 512, 0), 0);
	assert_int_equal(blockdev_flush(bd), 0);
	assert_int_equal(blockdev_read(bd, rd, sizeof(rd), 512), 0);
	assert_memory_equal(buf, rd, sizeof(buf));
	assert_int_equal(disk_info_get(bd, &info), 0);
	assert_int_equal(info.format, DISK_FORMAT_RAW);
	assert_int_equal(info.virtual_size, 4 << 20);
	assert_int_equal(info.file_size, 4 << 20);
	assert_true(info.allocated_bytes >= (4 << 20));
	assert_string_equal(info.parent_path, "");
	assert_int_equal(blockdev_close(bd), 0);
	assert_int_equal(disk_check(p, DISK_FORMAT_AUTO, false, &res, NULL), 0);
	assert_int_equal(res.errors, 0);

	o.type = DISK_TYPE_DYNAMIC;
	path_in(p, "sparse.img");
	assert_int_equal(disk_create(p, &o), 0);
	assert_int_equal(disk_open(p, DISK_FORMAT_RAW, DISK_OPEN_RDONLY, &bd), 0);
	assert_true(bd->read_only);
	assert_int_equal(disk_info_get(bd, &info), 0);
	assert_true(info.allocated_bytes < (1 << 20));
	assert_int_equal(blockdev_close(bd), 0);

	o.size = 0;
	path_in(p, "nosize.img");
	assert_int_equal(disk_create(p, &o), -EINVAL);
	o.size = 1000;
	assert_int_equal(disk_create(p, &o), -EINVAL);
	o.format = DISK_FORMAT_AUTO;
	o.size = 1 << 20;
	assert_int_equal(disk_create(p, &o), -EINVAL);
	assert_int_equal(access(p, F_OK), -1);

	/* check: a raw file whose size is no multiple of 512 */
	path_in(p, "garbage.img");
	assert_int_equal(disk_check(p, DISK_FORMAT_RAW, false, &res, NULL), 0);
	assert_int_equal(res.errors, 1);
	assert_non_null(strstr(res.first_error, "512"));
	assert_true(disk_open(p, DISK_FORMAT_RAW, 0, &bd) < 0);
}

static void test_block_status(void **state)
{
	struct disk_create_opts o = {
		.format = DISK_FORMAT_RAW, .type = DISK_TYPE_DYNAMIC, .size = 1 << 20};
	static uint8_t buf[4096];
	struct blockdev *bd;
	char p[PATH_MAX];
	uint64_t run;
	int st;

	path_in(p, "holes.img");
	assert_int_equal(disk_create(p, &o), 0);
	assert_int_equal(disk_open(p, DISK_FORMAT_RAW, 0, &bd), 0);
	memset(buf, 1, sizeof(buf));
	assert_int_equal(blockdev_write(bd, buf, sizeof(buf), 512 << 10, 0), 0);
	assert_int_equal(blockdev_flush(bd), 0);
	assert_int_equal(bd->ops->block_status(bd, 0, 1 << 20, &st, &run), 0);
	assert_int_equal(st, BLOCKDEV_STATUS_UNALLOCATED);
	assert_int_equal(run, 512 << 10);
	assert_int_equal(bd->ops->block_status(bd, 512 << 10, 512 << 10, &st, &run), 0);
	assert_int_equal(st, BLOCKDEV_STATUS_DATA);
	assert_int_equal(run, 4096);
	assert_int_equal(bd->ops->block_status(bd, (512 << 10) + 4096, 8192, &st, &run), 0);
	assert_int_equal(st, BLOCKDEV_STATUS_UNALLOCATED);
	assert_int_equal(run, 8192);
	/* Trailing hole up to the end of the file. */
	assert_int_equal(bd->ops->block_status(bd, 1020 << 10, 4096, &st, &run), 0);
	assert_int_equal(st, BLOCKDEV_STATUS_UNALLOCATED);
	assert_int_equal(run, 4096);
	assert_int_equal(blockdev_close(bd), 0);
}

/*
 * A tiny differencing format for the chain tests: "FAKEDIFF\n" then a NUL
 * terminated list of parent candidates separated by '\n', padded to 512.
 * Reads go to the parent.
 */
#define FAKE_MAGIC "FAKEDIFF\n"

struct fakedev {
	struct blockdev bd;
	struct blockdev *parent;
};

static int fake_readv(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct fakedev *f = (struct fakedev *)bd;

	return f->parent->ops->readv(f->parent, iov, iovcnt, off);
}

static int fake_close(struct blockdev *bd)
{
	struct fakedev *f = (struct fakedev *)bd;

	blockdev_close(f->parent);
	free(f);
	return 0;
}

static const struct blockdev_ops fake_ops = {
	.readv = fake_readv,
	.close = fake_close,
};

static bool fake_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		       uint64_t file_size)
{
	return head_len >= 512 && !memcmp(head, FAKE_MAGIC, strlen(FAKE_MAGIC));
}

static int fake_open(const char *path, unsigned flags, struct blockdev **out)
{
	char hdr[513] = {0}, resolved[PATH_MAX];
	const char *cands[4];
	unsigned n = 0;
	struct fakedev *f;
	char *s, *save;
	int fd, ret;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	ret = read(fd, hdr, 512) == 512 ? 0 : -EIO;
	close(fd);
	if (ret)
		return ret;
	for (s = strtok_r(hdr + strlen(FAKE_MAGIC), "\n", &save); s && n < 4;
	     s = strtok_r(NULL, "\n", &save))
		cands[n++] = s;
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	ret = disk_open_parent(path, cands, n, &f->parent, resolved);
	if (ret < 0) {
		free(f);
		return ret;
	}
	assert_true(f->parent->read_only);
	f->bd = *f->parent;
	f->bd.ops = &fake_ops;
	f->bd.format = "fakediff";
	f->bd.read_only = true;
	f->bd.data_fd = -1;
	*out = &f->bd;
	return 0;
}

static const struct disk_driver fake_driver = {
	.format = DISK_FORMAT_VHD,
	.name = "fakediff",
	.probe = fake_probe,
	.open = fake_open,
};

static void write_fake(const char *name, const char *parents)
{
	char hdr[512] = {0};

	snprintf(hdr, sizeof(hdr), FAKE_MAGIC "%s", parents);
	write_file(name, hdr, sizeof(hdr));
}

static void test_chain_ok(void **state)
{
	static uint8_t base[1 << 16];
	char p[PATH_MAX], abs_base[PATH_MAX + 16];
	struct blockdev *bd;
	uint8_t rd[512];

	memset(base, 0x3c, sizeof(base));
	write_file("base.img", base, sizeof(base));
	path_in(abs_base, "base.img");
	/* A missing first candidate, then a relative one, with Windows separators. */
	write_fake("mid.fake", "/nonexistent/base.img\n.\\base.img\n");
	write_fake("top.fake", "mid.fake\n");
	path_in(p, "top.fake");
	assert_int_equal(disk_open(p, DISK_FORMAT_AUTO, 0, &bd), 0);
	assert_string_equal(bd->format, "fakediff");
	assert_int_equal(bd->size, sizeof(base));
	assert_int_equal(blockdev_read(bd, rd, sizeof(rd), 4096), 0);
	assert_int_equal(rd[0], 0x3c);
	assert_int_equal(blockdev_close(bd), 0);
	/* Absolute candidate. */
	write_fake("abs.fake", abs_base);
	path_in(p, "abs.fake");
	assert_int_equal(disk_open(p, DISK_FORMAT_AUTO, 0, &bd), 0);
	assert_int_equal(blockdev_close(bd), 0);
}

static void test_chain_loop(void **state)
{
	struct blockdev *bd = (void *)1;
	char p[PATH_MAX];

	write_fake("a.fake", "b.fake\n");
	write_fake("b.fake", "a.fake\n");
	path_in(p, "a.fake");
	assert_int_equal(disk_open(p, DISK_FORMAT_AUTO, 0, &bd), -ELOOP);
	assert_null(bd);
	assert_non_null(strstr(err_msg(), "parent loop"));
	assert_non_null(strstr(err_msg(), "a.fake -> "));
	assert_non_null(strstr(err_msg(), "b.fake -> "));

	write_fake("self.fake", "self.fake\n");
	path_in(p, "self.fake");
	assert_int_equal(disk_open(p, DISK_FORMAT_AUTO, 0, &bd), -ELOOP);
}

static void test_chain_missing(void **state)
{
	struct blockdev *bd;
	char p[PATH_MAX];

	write_fake("orphan.fake", "gone.vhdx\n/also/gone.vhdx\n");
	path_in(p, "orphan.fake");
	assert_int_equal(disk_open(p, DISK_FORMAT_AUTO, 0, &bd), -ENOENT);
	assert_non_null(strstr(err_msg(), "parent 'gone.vhdx' of '"));
	assert_non_null(strstr(err_msg(), "not found (tried: "));
	assert_non_null(strstr(err_msg(), "/also/gone.vhdx"));
}

static void make_chain(unsigned images)
{
	static uint8_t base[4096];
	char name[32], parent[32];

	write_file("d0.img", base, sizeof(base));
	for (unsigned i = 1; i < images; i++) {
		snprintf(name, sizeof(name), "d%u.img", i);
		snprintf(parent, sizeof(parent), "d%u.img\n", i - 1);
		write_fake(name, parent);
	}
}

static void test_chain_depth(void **state)
{
	struct blockdev *bd;
	char p[PATH_MAX], name[32];

	/* DISK_MAX_CHAIN_DEPTH images in all is fine... */
	make_chain(DISK_MAX_CHAIN_DEPTH);
	snprintf(name, sizeof(name), "d%u.img", DISK_MAX_CHAIN_DEPTH - 1);
	path_in(p, name);
	assert_int_equal(disk_open(p, DISK_FORMAT_AUTO, 0, &bd), 0);
	assert_int_equal(blockdev_close(bd), 0);
	/* ...one more is not. */
	make_chain(DISK_MAX_CHAIN_DEPTH + 1);
	snprintf(name, sizeof(name), "d%u.img", DISK_MAX_CHAIN_DEPTH);
	path_in(p, name);
	assert_int_equal(disk_open(p, DISK_FORMAT_AUTO, 0, &bd), -ELOOP);
	assert_non_null(strstr(err_msg(), "deeper than"));
	/* The stack unwound: a plain open still works. */
	path_in(p, "d0.img");
	assert_int_equal(disk_open(p, DISK_FORMAT_AUTO, 0, &bd), 0);
	assert_int_equal(blockdev_close(bd), 0);
}

static int group_setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/viridian-disktest-XXXXXX");
	assert_non_null(mkdtemp(dir));
	disk_driver_override(&fake_driver);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	disk_driver_override(NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_raw_create_open), cmocka_unit_test(test_block_status),
		cmocka_unit_test(test_chain_ok),	cmocka_unit_test(test_chain_loop),
		cmocka_unit_test(test_chain_missing),	cmocka_unit_test(test_chain_depth),
	};

	return cmocka_run_group_tests_name("disk", tests, group_setup, group_teardown);
}
