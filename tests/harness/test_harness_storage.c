/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The test guest's `storage` scenario (guest/scenarios/storage.c over guest/storvsc),
 * compiled unchanged against the hosted stand-ins and run in process against the real VMBus
 * server and storvsp with three disks: LUN 0 a dynamic VHDX (2 MiB blocks), LUN 1 a
 * differencing VHD over a VHD parent full of data, LUN 2 a read-only raw image. 3 VPs, so
 * the guest opens two sub-channels. Afterwards the images must hold exactly what
 * guest/storvsc/storage_layout.h says: LUN 0 and LUN 2 checked with `qemu-img compare`
 * against expected raw files, LUN 1 (and its untouched parent) through the disk API.
 * With --one-vp: one vCPU (no sub-channels) and one VHDX LUN (tguest_hv() keeps its partition
 * for the whole process, so every harness needs its own run).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk/blockdev.h"
#include "disk/disk.h"
#include "harness.h"
#include "lib/err.h"
#include "scenario_shim.h"
#include "storvsc/storage_layout.h"
#include "vmbus/vmbus.h"
#include "vsp/storvsp.h"

#define NVPS 3u
#define RAM (64ull << 20)
#define MIB (1024u * 1024u)
#define SIZE_VHDX (16u * MIB)
#define SIZE_DIFF (12u * MIB)
#define SIZE_RAW (8u * MIB)
#define STORAGE_LINES 11u

extern const struct scenario *const scenario_ptr_storage_scenario;

static char dir[64];

static char paths[32][128];
static unsigned npaths;

/* A path in the temp dir that stays valid for the test (storvsp keeps the config's). */
static char *path_in(const char *name)
{
	char *s = paths[npaths++ % 32];

	snprintf(s, 128, "%s/%s", dir, name);
	return s;
}

/* Data the host test puts in the differencing parent and the read-only LUN. */
static uint8_t host_byte(unsigned salt, uint64_t off)
{
	uint32_t x = (uint32_t)(off >> 9) * 0x01000193u + salt * 0x51u + (uint32_t)(off & 511);

	return (uint8_t)(x ^ (x >> 11) ^ 0x5a);
}

/* What the scenario leaves in a writable LUN of the given original content and size. */
static void apply_layout(uint8_t *img, uint64_t size, unsigned lun, unsigned nch)
{
	uint64_t u = storage_unmap_start(nch);

	for (unsigned c = 0; c < nch; c++) {
		uint64_t s = storage_region_start(c);

		assert_true(s + STORAGE_REGION_LEN <= size);
		for (uint32_t k = 0; k < STORAGE_REGION_LEN; k++)
			img[s + k] = storage_pattern(lun, s + k, 0);
	}
	assert_true(u + STORAGE_BLOCK <= size);
	for (uint32_t k = 0; k < STORAGE_BLOCK; k++)
		img[u + k] = storage_pattern(lun, u + k, 2);
}

static void write_file(const char *path, const uint8_t *b, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void create(const char *path, enum disk_format fmt, enum disk_type type, uint64_t size,
		   uint32_t block, const char *parent)
{
	struct disk_create_opts o = {
		.format = fmt, .type = type, .size = size, .block_size = block, .parent = parent};

	if (disk_create(path, &o))
		fail_msg("create %s: %s", path, err_msg());
}

static void fill(const char *path, unsigned salt, uint64_t size)
{
	struct blockdev *bd = NULL;
	uint8_t *b = malloc(size);

	assert_non_null(b);
	for (uint64_t i = 0; i < size; i++)
		b[i] = host_byte(salt, i);
	assert_int_equal(disk_open(path, DISK_FORMAT_AUTO, 0, &bd), 0);
	assert_int_equal(blockdev_write(bd, b, size, 0, 0), 0);
	assert_int_equal(blockdev_close(bd), 0);
	free(b);
}

static int qemu_img_compare(const char *fmt2, const char *expected_raw, const char *image)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "qemu-img compare -q -f raw -F %s '%s' '%s'", fmt2, expected_raw,
		 image);
	return system(cmd);
}

static void read_all(const char *path, uint8_t *b, uint64_t size)
{
	struct blockdev *bd = NULL;

	assert_int_equal(disk_open(path, DISK_FORMAT_AUTO, DISK_OPEN_RDONLY, &bd), 0);
	assert_int_equal(bd->size, size);
	assert_int_equal(blockdev_read(bd, b, size, 0), 0);
	assert_int_equal(blockdev_close(bd), 0);
}

static void test_storage_scenario_in_process(void **state)
{
	const struct scenario *s = scenario_ptr_storage_scenario;
	struct harness_config hc = {.nvps = NVPS, .ram_size = RAM};
	struct storvsp_lun_config luns[3] = {
		{.path = path_in("d0.vhdx"), .format = DISK_FORMAT_VHDX},
		{.path = path_in("d1.vhd"), .format = DISK_FORMAT_VHD},
		{.path = path_in("d2.img"), .format = DISK_FORMAT_RAW, .read_only = true},
	};
	struct storvsp_config cfg = {.luns = luns, .nluns = 3, .max_subchannels = NVPS - 1};
	struct storvsp_stats st;
	struct vmbus_server *srv;
	struct vmbus_device *dev;
	struct harness *h;
	uint8_t *exp, *got;
	bool have_qemu_img = system("qemu-img --version >/dev/null 2>&1") == 0;

	(void)state;
	create(luns[0].path, DISK_FORMAT_VHDX, DISK_TYPE_DYNAMIC, SIZE_VHDX, 2 * MIB, NULL);
	create(path_in("p1.vhd"), DISK_FORMAT_VHD, DISK_TYPE_DYNAMIC, SIZE_DIFF, 0, NULL);
	fill(path_in("p1.vhd"), 1, SIZE_DIFF);
	create(luns[1].path, DISK_FORMAT_VHD, DISK_TYPE_DIFFERENCING, 0, 0, path_in("p1.vhd"));
	create(luns[2].path, DISK_FORMAT_RAW, DISK_TYPE_FIXED, SIZE_RAW, 0, NULL);
	fill(luns[2].path, 2, SIZE_RAW);

	h = harness_create(&hc);
	assert_non_null(h);
	srv = vmbus_server_create(harness_part(h), harness_gm(h));
	dev = vsp_storvsp_create(&cfg);
	if (!dev)
		fail_msg("storvsp: %s", err_msg());
	assert_non_null(srv);
	assert_int_equal(vmbus_server_add_device(srv, dev), 0);
	harness_bind(h, 0);
	/* What a KVM run would pass: the sizes the scenario's READ CAPACITY(16) must report. */
	shim_setup(NVPS, RAM, "tests=storage storage.mib0=16 storage.mib1=12 storage.mib2=8");
	s->run();
	printf("# storage: %u lines, %u ok, %u not ok, %u skipped\n", shim.lines, shim.ok,
	       shim.not_ok, shim.skipped);
	vsp_storvsp_stats(dev, &st);
	printf("# storvsp: %lu SRBs, %lu errors, %lu bad packets\n", (unsigned long)st.srbs,
	       (unsigned long)st.errors, (unsigned long)st.bad_packets);
	vmbus_server_destroy(srv);
	vsp_storvsp_destroy(dev);
	harness_unbind();
	/* (winhv's and vmbc's own pages stay allocated: the scenarios never free them) */
	harness_destroy(h);
	if (shim.not_ok)
		fail_msg("storage: %u not ok; first: %s", shim.not_ok, shim.first_failure);
	assert_int_equal(shim.lines, STORAGE_LINES);
	assert_int_equal(shim.skipped, 0);
	assert_int_equal(st.bad_packets, 0);
	/* the only failing SRB is the write to the read-only LUN */
	assert_int_equal(st.errors, 1);

	exp = malloc(SIZE_VHDX);
	got = malloc(SIZE_VHDX);
	assert_non_null(exp);
	assert_non_null(got);
	/* LUN 0, VHDX: zeros plus the layout (NVPS channels) */
	memset(exp, 0, SIZE_VHDX);
	apply_layout(exp, SIZE_VHDX, 0, NVPS);
	write_file(path_in("exp0.raw"), exp, SIZE_VHDX);
	read_all(luns[0].path, got, SIZE_VHDX);
	assert_memory_equal(exp, got, SIZE_VHDX);
	/* LUN 1, differencing VHD: the parent's data plus the layout; the parent untouched */
	for (uint64_t i = 0; i < SIZE_DIFF; i++)
		exp[i] = host_byte(1, i);
	read_all(path_in("p1.vhd"), got, SIZE_DIFF);
	assert_memory_equal(exp, got, SIZE_DIFF);
	apply_layout(exp, SIZE_DIFF, 1, NVPS);
	read_all(luns[1].path, got, SIZE_DIFF);
	assert_memory_equal(exp, got, SIZE_DIFF);
	/* LUN 2, read-only raw: unchanged */
	for (uint64_t i = 0; i < SIZE_RAW; i++)
		exp[i] = host_byte(2, i);
	write_file(path_in("exp2.raw"), exp, SIZE_RAW);
	if (have_qemu_img) {
		assert_int_equal(qemu_img_compare("vhdx", path_in("exp0.raw"), luns[0].path), 0);
		assert_int_equal(qemu_img_compare("raw", path_in("exp2.raw"), luns[2].path), 0);
	} else {
		printf("# qemu-img not installed: LUN 0/2 checked through the disk API only\n");
		read_all(luns[2].path, got, SIZE_RAW);
		assert_memory_equal(exp, got, SIZE_RAW);
	}
	free(exp);
	free(got);
}

/* One vCPU (no sub-channels) and one VHDX: the read-only line is the only skip. */
static void test_storage_one_vp_one_disk(void **state)
{
	const struct scenario *s = scenario_ptr_storage_scenario;
	struct harness_config hc = {.nvps = 1, .ram_size = RAM};
	struct storvsp_lun_config lun = {.path = path_in("d0.vhdx"), .format = DISK_FORMAT_VHDX};
	struct storvsp_config cfg = {.luns = &lun, .nluns = 1, .max_subchannels = 0};
	struct vmbus_server *srv;
	struct vmbus_device *dev;
	struct harness *h;
	uint8_t *exp, *got;

	(void)state;
	create(lun.path, DISK_FORMAT_VHDX, DISK_TYPE_DYNAMIC, SIZE_VHDX, 0, NULL);
	h = harness_create(&hc);
	assert_non_null(h);
	srv = vmbus_server_create(harness_part(h), harness_gm(h));
	dev = vsp_storvsp_create(&cfg);
	assert_non_null(srv);
	assert_non_null(dev);
	assert_int_equal(vmbus_server_add_device(srv, dev), 0);
	harness_bind(h, 0);
	shim_setup(1, RAM, "tests=storage storage.mib0=16");
	s->run();
	vmbus_server_destroy(srv);
	vsp_storvsp_destroy(dev);
	harness_unbind();
	harness_destroy(h);
	if (shim.not_ok)
		fail_msg("storage: %u not ok; first: %s", shim.not_ok, shim.first_failure);
	assert_int_equal(shim.lines, STORAGE_LINES);
	assert_int_equal(shim.skipped, 1);
	exp = calloc(1, SIZE_VHDX);
	got = malloc(SIZE_VHDX);
	assert_non_null(exp);
	assert_non_null(got);
	apply_layout(exp, SIZE_VHDX, 0, 1);
	read_all(lun.path, got, SIZE_VHDX);
	assert_memory_equal(exp, got, SIZE_VHDX);
	free(exp);
	free(got);
}

static int setup(void **state)
{
	(void)state;
	npaths = 0;
	snprintf(dir, sizeof(dir), "/tmp/viridian-storage-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	static const char *const names[] = {"d0.vhdx", "d1.vhd",   "p1.vhd",
					    "d2.img",  "exp0.raw", "exp2.raw"};

	(void)state;
	npaths = 0;
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(path_in(names[i]));
	rmdir(dir);
	return 0;
}

/*
 * `test_harness_storage --expect LUN NCH MIB OUT`: writes the raw image a fresh, zeroed
 * writable LUN must equal after a real `storage` run with NCH channels (the vCPU count), for
 * `qemu-img compare` on a KVM host.
 */
static int expect_main(char **argv)
{
	unsigned lun = (unsigned)strtoul(argv[2], NULL, 0),
		 nch = (unsigned)strtoul(argv[3], NULL, 0);
	uint64_t size = strtoull(argv[4], NULL, 0) << 20;
	uint8_t *img = size ? calloc(1, size) : NULL;
	FILE *f;

	if (!img || !nch || storage_unmap_start(nch) + STORAGE_BLOCK > size) {
		fprintf(stderr, "--expect: need NCH >= 1 and MIB >= %u\n",
			(unsigned)((storage_unmap_start(nch ? nch : 1) + STORAGE_BLOCK) >> 20));
		return 2;
	}
	apply_layout(img, size, lun, nch); /* same code as the in-process check */
	f = fopen(argv[5], "wb");
	if (!f || fwrite(img, 1, size, f) != size || fclose(f)) {
		fprintf(stderr, "--expect: cannot write %s\n", argv[5]);
		return 1;
	}
	free(img);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "--expect"))
		return expect_main(argv);
	/* tguest_hv() sets the partition up once per process: one harness per run. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_storage_scenario_in_process, setup, teardown),
	};
	const struct CMUnitTest one_vp[] = {
		cmocka_unit_test_setup_teardown(test_storage_one_vp_one_disk, setup, teardown),
	};

	if (argc == 2 && !strcmp(argv[1], "--one-vp"))
		return cmocka_run_group_tests(one_vp, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
