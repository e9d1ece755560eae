// SPDX-License-Identifier: GPL-2.0-only
#include "lib/crc32c.h"
#include "lib/err.h"
#include "lib/guid.h"
#include "lib/log.h"
#include "lib/util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_guid_wire_order(void **state)
{
	/* The VMBus SCSI class GUID and its bytes as they appear in an offer. */
	static const uint8_t wire[16] = { 0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d,
					  0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f };
	struct guid g;
	char buf[GUID_STR_LEN + 1];

	assert_int_equal(guid_parse("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f", &g), 0);
	assert_memory_equal(g.b, wire, 16);
	assert_string_equal(guid_format(&g, buf), "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f");
	assert_int_equal(guid_parse("{BA6163D9-04A1-4D29-B605-72E2FFB1DC7F}", &g), 0);
	assert_memory_equal(g.b, wire, 16);
}

static void test_guid_rejects(void **state)
{
	struct guid g;

	assert_int_equal(guid_parse("", &g), -1);
	assert_int_equal(guid_parse("ba6163d9-04a1-4d29-b605-72e2ffb1dc7", &g), -1);
	assert_int_equal(guid_parse("ba6163d9x04a1-4d29-b605-72e2ffb1dc7f", &g), -1);
	assert_int_equal(guid_parse("ga6163d9-04a1-4d29-b605-72e2ffb1dc7f", &g), -1);
	assert_int_equal(guid_parse("{ba6163d9-04a1-4d29-b605-72e2ffb1dc7f", &g), -1);
}

static void test_guid_generate(void **state)
{
	struct guid a, b;
	char buf[GUID_STR_LEN + 1];

	guid_generate(&a);
	guid_generate(&b);
	assert_false(guid_equal(&a, &b));
	assert_false(guid_is_zero(&a));
	guid_format(&a, buf);
	assert_int_equal(buf[14], '4'); /* version nibble in the text form */
}

static void test_crc32c_vectors(void **state)
{
	uint8_t zeros[32] = { 0 }, ones[32];
	uint8_t big[4099];

	memset(ones, 0xff, sizeof(ones));
	/* Check values from RFC 3720 (iSCSI) B.4 and the usual "123456789". */
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(crc32c(0, zeros, 32), 0x8a9136aa);
	assert_int_equal(crc32c(0, ones, 32), 0x62a8ab43);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	/* Chaining over any split equals one pass (odd split exercises the unaligned path). */
	uint32_t whole = crc32c(0, big, sizeof(big));
	uint32_t part = crc32c(crc32c(0, big, 1001), big + 1001, sizeof(big) - 1001);

	assert_int_equal(whole, part);
}

static void test_parse_size(void **state)
{
	uint64_t v;

	assert_int_equal(util_parse_size("512", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(util_parse_size("64K", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(util_parse_size("256M", &v), 0);
	assert_int_equal(v, 256ull << 20);
	assert_int_equal(util_parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(util_parse_size("1t", &v), 0);
	assert_int_equal(v, 1ull << 40);
	assert_int_equal(util_parse_size("", &v), -1);
	assert_int_equal(util_parse_size("-1", &v), -1);
	assert_int_equal(util_parse_size("12Q", &v), -1);
	assert_int_equal(util_parse_size("M", &v), -1);
	assert_int_equal(util_parse_size("99999999999999999999", &v), -1);
	assert_int_equal(util_parse_size("17179869184T", &v), -1); /* 2^34 TiB overflows */
	assert_int_equal(util_parse_u64("0x10", &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(util_parse_u64("10x", &v), -1);
}

static void test_atomic_write(void **state)
{
	char dir[] = "/tmp/viridian-test-XXXXXX";
	char path[256], buf[64] = { 0 };
	struct stat st;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cfg.json", dir);
	assert_int_equal(util_write_file_atomic(path, "first", 5, 0640), 0);
	assert_int_equal(util_write_file_atomic(path, "second", 6, 0640), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 6);
	close(fd);
	assert_string_equal(buf, "second");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(util_pread_full(-1, buf, 1, 0), -EBADF);
	unlink(path);
	rmdir(dir);
}

static void test_err_and_log(void **state)
{
	struct log_ratelimit rl = { 0 };
	enum log_level lvl;
	unsigned allowed = 0;

	err_set("disk %s is corrupt", "a.vhdx");
	err_prefix("open");
	assert_string_equal(err_msg(), "open: disk a.vhdx is corrupt");
	err_clear();
	assert_string_equal(err_msg(), "unknown error");

	assert_int_equal(log_level_parse("debug", &lvl), 0);
	assert_int_equal(lvl, LOG_DEBUG);
	assert_int_equal(log_level_parse("loud", &lvl), -1);
	for (int i = 0; i < 100; i++)
		allowed += log_ratelimit_allow(&rl, "test");
	assert_int_equal(allowed, LOG_RATELIMIT_BURST);
	assert_int_equal(rl.suppressed, 100 - LOG_RATELIMIT_BURST);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guid_wire_order), cmocka_unit_test(test_guid_rejects),
		cmocka_unit_test(test_guid_generate),   cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_parse_size),      cmocka_unit_test(test_atomic_write),
		cmocka_unit_test(test_err_and_log),
	};

	return cmocka_run_group_tests_name("lib", tests, NULL, NULL);
}
