// SPDX-License-Identifier: GPL-2.0-only
/* vm.json as the worker reads it: valid configs, and every field checked before use. */
#include "vmwp/vmwp.h"

#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse(struct vmwp_config *c, const char *json)
{
	return vmwp_config_parse(c, json, strlen(json));
}

static void test_full_config(void **state)
{
	struct vmwp_config c;
	const char *j = "{\"name\":\"web-1.a_b\",\"uuid\":\"12345678-1234-1234-1234-123456789abc\","
			"\"generation\":7,\"memory_mb\":64,\"cpus\":2,\"kernel\":\"/k\","
			"\"initrd\":\"/i\",\"cmdline\":\"console=ttyS0\",\"user\":\"nobody\","
			"\"disks\":[{\"path\":\"/d.vhdx\",\"readonly\":true,\"format\":\"vhdx\"},"
			"{\"path\":\"/e.img\"}],\"devices\":[\"echo\"],\"future\":{\"x\":1}}\n";

	assert_int_equal(parse(&c, j), 0);
	assert_string_equal(c.name, "web-1.a_b");
	assert_string_equal(c.uuid, "12345678-1234-1234-1234-123456789abc");
	assert_int_equal(c.memory_mb, 64);
	assert_int_equal(c.cpus, 2);
	assert_string_equal(c.kernel, "/k");
	assert_string_equal(c.initrd, "/i");
	assert_string_equal(c.cmdline, "console=ttyS0");
	assert_string_equal(c.user, "nobody");
	assert_int_equal(c.ndisks, 2);
	assert_string_equal(c.disks[0].path, "/d.vhdx");
	assert_true(c.disks[0].readonly);
	assert_string_equal(c.disks[0].format, "vhdx");
	assert_string_equal(c.disks[1].format, "raw");
	assert_false(c.disks[1].readonly);
	assert_int_equal(c.ndevices, 1);
	assert_true(c.echo_device);
	vmwp_config_free(&c);
}

static void test_minimal_config(void **state)
{
	struct vmwp_config c;

	assert_int_equal(
		parse(&c, "{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\"}"), 0);
	assert_null(c.initrd);
	assert_null(c.user);
	assert_int_equal(c.ndisks, 0);
	vmwp_config_free(&c);
}

struct bad_case {
	const char *json, *msg;
};

static void test_rejects(void **state)
{
	static const struct bad_case cases[] = {
		{"", "not valid JSON"},
		{"{\"name\":", "not valid JSON"},
		{"{} x", "not valid JSON"},
		{"[1]", "expected a JSON object"},
		{"{\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\"}", "\"name\" is missing"},
		{"{\"name\":\"../x\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\"}",
		 "name '../x'"},
		{"{\"name\":\"a/b\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\"}", "name 'a/b'"},
		{"{\"name\":\".a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\"}", "name '.a'"},
		{"{\"name\":"
		 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
		 "\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\"}",
		 "longer than 64"},
		{"{\"name\":7,\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\"}", "must be a string"},
		{"{\"name\":\"a\",\"cpus\":1,\"kernel\":\"/k\"}", "\"memory_mb\" is missing"},
		{"{\"name\":\"a\",\"memory_mb\":\"32\",\"cpus\":1,\"kernel\":\"/k\"}",
		 "must be an integer"},
		{"{\"name\":\"a\",\"memory_mb\":-1,\"cpus\":1,\"kernel\":\"/k\"}", "between"},
		{"{\"name\":\"a\",\"memory_mb\":99999999999999999999,\"cpus\":1,\"kernel\":\"/k\"}",
		 "memory_mb"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":0,\"kernel\":\"/k\"}", "between 1 and"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":256,\"kernel\":\"/k\"}",
		 "between 1 and"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1}", "\"kernel\" is missing"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"k\"}", "absolute path"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\",\"initrd\":\"i\"}",
		 "absolute path"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\\u0000x\"}", "NUL"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\",\"disks\":{}}",
		 "must be an array"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\",\"disks\":[1]}",
		 "disks[0] must be an object"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\",\"disks\":[{}]}",
		 "disks[0]"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\","
		 "\"disks\":[{\"path\":\"/d\",\"format\":\"qcow2\"}]}",
		 "expected raw, vhd or vhdx"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\","
		 "\"disks\":[{\"path\":\"/d\",\"readonly\":1}]}",
		 "true or false"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\",\"devices\":\"echo\"}",
		 "\"devices\" must be an array"},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\",\"devices\":[\"net\"]}",
		 "devices[0] 'net': the only device is \"echo\""},
		{"{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\",\"devices\":[3]}",
		 "devices[0]"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmwp_config c;

		if (parse(&c, cases[i].json) != -EINVAL || !strstr(err_msg(), cases[i].msg))
			fail_msg("case %zu (%s): got '%s', wanted '%s'", i, cases[i].json,
				 err_msg(), cases[i].msg);
		/* Freed on failure: the config is zeroed. */
		assert_null(c.kernel);
		assert_int_equal(c.ndisks, 0);
	}
}

static void test_too_many_disks(void **state)
{
	char *j = malloc(65536);
	size_t n = 0;
	struct vmwp_config c;

	assert_non_null(j);
	n += (size_t)sprintf(j + n, "{\"name\":\"a\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\","
				    "\"disks\":[");
	for (int i = 0; i < VMWP_MAX_DISKS + 1; i++)
		n += (size_t)sprintf(j + n, "%s{\"path\":\"/d%d\"}", i ? "," : "", i);
	sprintf(j + n, "]}");
	assert_int_equal(parse(&c, j), -EINVAL);
	assert_non_null(strstr(err_msg(), "at most"));
	free(j);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/vmwp-config-XXXXXX";
	const char *j = "{\"name\":\"f\",\"memory_mb\":32,\"cpus\":1,\"kernel\":\"/k\"}";
	struct vmwp_config c;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, j, strlen(j)), (ssize_t)strlen(j));
	close(fd);
	assert_int_equal(vmwp_config_load(&c, path), 0);
	assert_string_equal(c.name, "f");
	vmwp_config_free(&c);
	unlink(path);
	assert_true(vmwp_config_load(&c, path) < 0);
	assert_non_null(strstr(err_msg(), "cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config), cmocka_unit_test(test_minimal_config),
		cmocka_unit_test(test_rejects),	    cmocka_unit_test(test_too_many_disks),
		cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
