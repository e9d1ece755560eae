// SPDX-License-Identifier: GPL-2.0-only
#include "lib/err.h"
#include "vid/guest_mem.h"
#include "vid/layout.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

static void test_small_ram_one_region(void **state)
{
	struct guest_mem gm;

	assert_int_equal(guest_mem_init(&gm, 64 * MiB, 0), 0);
	assert_int_equal(gm.nregions, 1);
	assert_true(gm.regions[0].gpa == 0 && gm.regions[0].size == 64 * MiB);
	assert_int_equal(gm.regions[0].kind, GUEST_MEM_RAM);
	assert_true(gm.ram_size == 64 * MiB);
	assert_true(gm.memfd >= 0);
	guest_mem_destroy(&gm);
}

static void test_regions_around_hole(void **state)
{
	struct guest_mem gm;
	uint64_t ram = LAYOUT_MMIO_HOLE_START + 64 * MiB;

	assert_int_equal(guest_mem_init(&gm, ram, 0), 0);
	assert_int_equal(gm.nregions, 2);
	assert_true(gm.regions[0].size == LAYOUT_MMIO_HOLE_START);
	assert_true(gm.regions[1].gpa == LAYOUT_HIGH_RAM_START);
	assert_true(gm.regions[1].size == 64 * MiB);
	assert_true(gm.regions[1].fd_offset == LAYOUT_MMIO_HOLE_START);
	/* Nothing maps the hole. */
	assert_null(guest_mem_ptr(&gm, LAYOUT_MMIO_HOLE_START, 1));
	assert_null(guest_mem_ptr(&gm, LAYOUT_LAPIC_BASE, 4));
	assert_non_null(guest_mem_ptr(&gm, LAYOUT_MMIO_HOLE_START - 1, 1));
	assert_non_null(guest_mem_ptr(&gm, LAYOUT_HIGH_RAM_START, 1));
	/* Same memfd: the high region's pointer is the byte after the low region's last. */
	assert_ptr_equal(guest_mem_ptr(&gm, LAYOUT_HIGH_RAM_START, 1),
			 (uint8_t *)guest_mem_ptr(&gm, LAYOUT_MMIO_HOLE_START - 1, 1) + 1);
	/* A range across the hole is not one region and not all RAM. */
	assert_null(guest_mem_ptr(&gm, LAYOUT_MMIO_HOLE_START - 2, 4));
	assert_false(guest_mem_range_is_ram(&gm, LAYOUT_MMIO_HOLE_START - 2, 4));
	{
		uint8_t b[4];

		assert_int_equal(guest_mem_read(&gm, LAYOUT_MMIO_HOLE_START - 2, b, 4), -EFAULT);
	}
	guest_mem_destroy(&gm);
}

static void test_ptr_bounds(void **state)
{
	struct guest_mem gm;
	uint64_t size = 16 * MiB;

	assert_int_equal(guest_mem_init(&gm, size, 0), 0);
	assert_non_null(guest_mem_ptr(&gm, 0, size));
	assert_null(guest_mem_ptr(&gm, 0, size + 1));
	assert_non_null(guest_mem_ptr(&gm, size - 1, 1)); /* last byte */
	assert_null(guest_mem_ptr(&gm, size - 1, 2));
	assert_null(guest_mem_ptr(&gm, size, 1));
	assert_null(guest_mem_ptr(&gm, 0x1000, 0)); /* len 0 is invalid */
	/* gpa + len wraps around 2^64: must not look like a small range. */
	assert_null(guest_mem_ptr(&gm, 0x1000, UINT64_MAX));
	assert_null(guest_mem_ptr(&gm, UINT64_MAX, 2));
	assert_null(guest_mem_ptr(&gm, UINT64_MAX - 0xfff, 0x2000));
	assert_false(guest_mem_range_is_ram(&gm, 0x1000, UINT64_MAX));
	assert_false(guest_mem_range_is_ram(&gm, 0, 0));
	assert_true(guest_mem_range_is_ram(&gm, 0, size));
	guest_mem_destroy(&gm);
}

static void test_read_write(void **state)
{
	struct guest_mem gm;
	uint64_t size = 4 * MiB;
	uint8_t in[64], out[64];

	assert_int_equal(guest_mem_init(&gm, size, 0), 0);
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(guest_mem_write(&gm, size - sizeof(in), in, sizeof(in)), 0);
	assert_int_equal(guest_mem_read(&gm, size - sizeof(in), out, sizeof(out)), 0);
	assert_memory_equal(in, out, sizeof(in));
	assert_memory_equal(guest_mem_ptr(&gm, size - sizeof(in), sizeof(in)), in, sizeof(in));
	/* One byte past the end fails and changes nothing. */
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(guest_mem_write(&gm, size - 63, out, 64), -EFAULT);
	assert_int_equal(guest_mem_read(&gm, size - sizeof(in), out, sizeof(out)), 0);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(guest_mem_read(&gm, size, out, 1), -EFAULT);
	assert_int_equal(guest_mem_read(&gm, UINT64_MAX, out, 2), -EFAULT);
	assert_int_equal(guest_mem_write(&gm, UINT64_MAX - 1, in, 4), -EFAULT);
	/* len 0: nothing to copy, succeeds. */
	assert_int_equal(guest_mem_read(&gm, 0, out, 0), 0);
	guest_mem_destroy(&gm);
}

static void test_spanning_adjacent_regions(void **state)
{
	struct guest_mem gm;
	/* 3 GiB of RAM ends exactly at the hole; a ROM right there makes two adjacent regions. */
	uint64_t ram = LAYOUT_MMIO_HOLE_START;
	uint8_t in[32], out[32];

	assert_int_equal(guest_mem_init(&gm, ram, 0), 0);
	assert_int_equal(guest_mem_add_rom(&gm, LAYOUT_MMIO_HOLE_START, 0x10000), 0);
	assert_int_equal(gm.regions[1].kind, GUEST_MEM_ROM);
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(0xf0 ^ i);
	/* The host may copy across both; the pointer API refuses to. */
	assert_int_equal(guest_mem_write(&gm, ram - 16, in, sizeof(in)), 0);
	assert_int_equal(guest_mem_read(&gm, ram - 16, out, sizeof(out)), 0);
	assert_memory_equal(in, out, sizeof(in));
	assert_null(guest_mem_ptr(&gm, ram - 16, sizeof(in)));
	/* ROM is not RAM. */
	assert_false(guest_mem_range_is_ram(&gm, ram - 16, sizeof(in)));
	assert_true(guest_mem_range_is_ram(&gm, ram - 16, 16));
	guest_mem_destroy(&gm);
}

static void test_rom_rejects(void **state)
{
	struct guest_mem gm;

	assert_int_equal(guest_mem_init(&gm, 16 * MiB, 0), 0);
	assert_int_equal(guest_mem_add_rom(&gm, 0x100000, 0x1000), -EINVAL); /* not in hole */
	assert_int_equal(guest_mem_add_rom(&gm, 0xfffff000, 0x2000), -EINVAL); /* past 4G */
	assert_int_equal(guest_mem_add_rom(&gm, 0xffff0000, 0x800), -EINVAL); /* unaligned */
	assert_int_equal(guest_mem_add_rom(&gm, 0xffff0000, 0x10000), 0);
	assert_int_equal(guest_mem_add_rom(&gm, 0xffff8000, 0x1000), -EEXIST);
	assert_non_null(guest_mem_ptr(&gm, 0xfffffff0, 16)); /* reset vector area */
	guest_mem_destroy(&gm);
}

static void test_bad_sizes(void **state)
{
	struct guest_mem gm;

	assert_int_equal(guest_mem_init(&gm, 0, 0), -EINVAL);
	assert_non_null(strstr(err_msg(), "4 KiB"));
	assert_int_equal(guest_mem_init(&gm, 4096 + 1, 0), -EINVAL);
	assert_int_equal(guest_mem_init(&gm, 1ull << 50, 0), -EINVAL);
}

static void test_hugepage_fallback(void **state)
{
	struct guest_mem gm;
	uint8_t b = 0x5a, c = 0;

	/* Hosts without reserved hugepages must still get working RAM. */
	assert_int_equal(guest_mem_init(&gm, 32 * MiB, GUEST_MEM_HUGEPAGES), 0);
	assert_int_equal(guest_mem_write(&gm, 32 * MiB - 1, &b, 1), 0);
	assert_int_equal(guest_mem_read(&gm, 32 * MiB - 1, &c, 1), 0);
	assert_int_equal(c, 0x5a);
	guest_mem_destroy(&gm);
	/* Not a multiple of 2 MiB: hugepages cannot be used, normal pages are. */
	assert_int_equal(guest_mem_init(&gm, 3 * MiB + 4096, GUEST_MEM_HUGEPAGES), 0);
	assert_false(gm.hugepages);
	guest_mem_destroy(&gm);
	assert_int_equal(guest_mem_init(&gm, 4 * MiB, 0), 0);
	assert_false(gm.hugepages);
	guest_mem_destroy(&gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_ram_one_region),
		cmocka_unit_test(test_regions_around_hole),
		cmocka_unit_test(test_ptr_bounds),
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_spanning_adjacent_regions),
		cmocka_unit_test(test_rom_rejects),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_hugepage_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
