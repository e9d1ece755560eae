// SPDX-License-Identifier: GPL-2.0-only
/* vmms: name rules, strict vm.json parsing, registry persistence and crash leftovers. */
#include "lib/err.h"
#include "lib/log.h"
#include "vmms/config.h"
#include "vmms/core.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];
static char kernel[128];

static int setup(void **state)
{
	int fd;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vmms-unit.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(kernel, sizeof(kernel), "%s/kernel", tmpdir);
	fd = open(kernel, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		return -1;
	close(fd);
	log_set_level(LOG_ERROR);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_names(void **state)
{
	char long_name[80];

	assert_true(vmms_name_valid("a"));
	assert_true(vmms_name_valid("web-01.prod_x"));
	assert_false(vmms_name_valid(""));
	assert_false(vmms_name_valid("."));
	assert_false(vmms_name_valid(".."));
	assert_false(vmms_name_valid(".hidden"));
	assert_false(vmms_name_valid("a/b"));
	assert_false(vmms_name_valid("../etc"));
	assert_false(vmms_name_valid("a b"));
	assert_false(vmms_name_valid("caf\xc3\xa9"));
	memset(long_name, 'x', 64);
	long_name[64] = 0;
	assert_true(vmms_name_valid(long_name));
	long_name[64] = 'x';
	long_name[65] = 0;
	assert_false(vmms_name_valid(long_name));
}

/* Parses text in the given mode; returns the error code or NULL on success. */
static const char *apply(const char *text, enum vmms_config_mode mode, struct vmms_config *c)
{
	struct json_object *o = vmms_json_parse(text, strlen(text));
	const char *code = NULL;

	if (!o)
		return "malformed_json";
	if (vmms_config_apply(c, o, mode, &code) == 0)
		code = NULL;
	json_object_put(o);
	return code;
}

static void test_config_create(void **state)
{
	struct vmms_config c;
	char buf[512];

	vmms_config_init(&c);
	snprintf(buf, sizeof(buf),
		 "{\"name\":\"vm1\",\"kernel\":\"%s\",\"memory_mb\":64,\"cpus\":4,"
		 "\"cmdline\":\"console=ttyS0\",\"devices\":[\"echo\"]}",
		 kernel);
	assert_null(apply(buf, VMMS_CONFIG_CREATE, &c));
	assert_string_equal(c.name, "vm1");
	assert_int_equal(c.memory_mb, 64);
	assert_int_equal(c.cpus, 4);
	assert_string_equal(c.devices[0], "echo");
	vmms_config_free(&c);

	/* Each bad document with the error code it must produce. */
	static const struct {
		const char *fmt;
		const char *code;
	} bad[] = {
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"extra\":1}", "unknown_field"},
		{"{\"name\":\"x/y\",\"kernel\":\"%s\"}", "invalid_name"},
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"memory_mb\":31}", "out_of_range"},
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"memory_mb\":65537}", "out_of_range"},
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"memory_mb\":1e3}", "invalid_type"},
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"cpus\":99999999999999999999}",
		 "out_of_range"},
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"cpus\":true}", "invalid_type"},
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"uuid\":\"x\"}", "read_only_field"},
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"disks\":{}}", "invalid_type"},
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"disks\":[{\"readonly\":true}]}",
		 "missing_field"},
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"devices\":[\"Bad Name\"]}", "invalid_value"},
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"user\":\"-root\"}", "invalid_value"},
		{"{\"name\":\"x\",\"kernel\":\"%s\",\"cmdline\":\"a\\nb\"}", "invalid_value"},
		{"{\"name\":\"x\",\"kernel\":\"%s/missing\"}", "file_not_found"},
		{"{\"name\":\"x\"%.0s}", "missing_field"},
		{"[\"%s\"]", "invalid_type"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *code;

		snprintf(buf, sizeof(buf), bad[i].fmt, kernel);
		vmms_config_init(&c);
		code = apply(buf, VMMS_CONFIG_CREATE, &c);
		if (!code || strcmp(code, bad[i].code))
			fail_msg("'%s': expected %s, got %s (%s)", buf, bad[i].code,
				 code ? code : "success", err_msg());
		assert_true(strlen(err_msg()) > 0 && !strchr(err_msg(), '\n'));
		vmms_config_free(&c);
	}
}

static void test_json_strict(void **state)
{
	assert_null(vmms_json_parse("{\"a\":1} x", 9));
	assert_null(vmms_json_parse("{\"a\":", 5));
	assert_null(vmms_json_parse("", 0));
	struct json_object *o = vmms_json_parse("{\"a\":1}  \n", 10);

	assert_non_null(o);
	json_object_put(o);
}

static void test_config_roundtrip(void **state)
{
	struct vmms_config c, d;
	struct json_object *o;
	const char *code;
	char buf[512];

	vmms_config_init(&c);
	snprintf(buf, sizeof(buf), "{\"name\":\"rt\",\"kernel\":\"%s\",\"initrd\":\"%s\"}", kernel,
		 kernel);
	assert_null(apply(buf, VMMS_CONFIG_CREATE, &c));
	vmms_uuid_generate(c.uuid);
	c.generation = 3;
	c.checkpoint = strdup("cp");
	o = vmms_config_to_json(&c, true);
	vmms_config_init(&d);
	assert_int_equal(vmms_config_apply(&d, o, VMMS_CONFIG_STORED, &code), 0);
	assert_string_equal(d.uuid, c.uuid);
	assert_int_equal(d.generation, 3);
	assert_string_equal(d.initrd, kernel);
	assert_string_equal(d.checkpoint, "cp");
	json_object_put(o);
	/* The API view has no vmms-internal fields a client could send back by mistake. */
	o = vmms_config_to_json(&c, false);
	assert_false(json_object_object_get_ex(o, "checkpoint_dirty", NULL));
	json_object_put(o);
	vmms_config_free(&c);
	vmms_config_free(&d);
}

static void test_registry_persist(void **state)
{
	struct vmms m;
	struct vmms_config c;
	struct vmms_vm *vm;
	const char *code;
	char buf[512], path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/state", tmpdir);
	assert_int_equal(vmms_init(&m, path), 0);
	assert_int_equal(vmms_registry_load(&m), 0);
	vmms_config_init(&c);
	snprintf(buf, sizeof(buf), "{\"name\":\"p\",\"kernel\":\"%s\",\"memory_mb\":48}", kernel);
	assert_null(apply(buf, VMMS_CONFIG_CREATE, &c));
	assert_int_equal(vmms_vm_create(&m, &c, &vm, &code), 0);
	assert_int_equal(vm->cfg.generation, 1);
	vm->cfg.memory_mb = 96;
	assert_int_equal(vmms_vm_save(&m, vm, &code), 0);
	assert_int_equal(vm->cfg.generation, 2);
	vmms_config_free(&c);
	vmms_fini(&m);

	/* A crash between write and rename leaves a temp file: the previous vm.json wins. */
	snprintf(buf, sizeof(buf), "%s/state/vms/p/vm.json.tmp.77", tmpdir);
	f = fopen(buf, "w");
	assert_non_null(f);
	fputs("{\"name\":\"p\",\"memory_mb\":", f);
	fclose(f);
	/* A directory without vm.json (interrupted create) is skipped. */
	snprintf(buf, sizeof(buf), "%s/state/vms/q", tmpdir);
	assert_int_equal(mkdir(buf, 0700), 0);
	assert_int_equal(vmms_init(&m, path), 0);
	assert_int_equal(vmms_registry_load(&m), 0);
	assert_int_equal(m.nvms, 1);
	vm = vmms_vm_find(&m, "p");
	assert_non_null(vm);
	assert_int_equal(vm->cfg.memory_mb, 96);
	assert_int_equal(vm->cfg.generation, 2);
	snprintf(buf, sizeof(buf), "%s/state/vms/p/vm.json.tmp.77", tmpdir);
	assert_int_equal(access(buf, F_OK), -1);
	/* Duplicate create is refused; remove takes the directory away. */
	vmms_config_init(&c);
	snprintf(buf, sizeof(buf), "{\"name\":\"p\",\"kernel\":\"%s\"}", kernel);
	assert_null(apply(buf, VMMS_CONFIG_CREATE, &c));
	assert_int_equal(vmms_vm_create(&m, &c, &vm, &code), -1);
	assert_string_equal(code, "already_exists");
	vmms_config_free(&c);
	vm = vmms_vm_find(&m, "p");
	assert_int_equal(vmms_vm_remove(&m, vm, false, &code), 0);
	snprintf(buf, sizeof(buf), "%s/state/vms/p", tmpdir);
	assert_int_equal(access(buf, F_OK), -1);
	assert_int_equal(m.nvms, 0);
	vmms_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_config_create),
		cmocka_unit_test(test_json_strict),
		cmocka_unit_test(test_config_roundtrip),
		cmocka_unit_test(test_registry_persist),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
