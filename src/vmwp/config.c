// SPDX-License-Identifier: GPL-2.0-only
/* vm.json as the worker reads it. vmms wrote and validated it; the worker still checks
 * every value it uses, since a file is input like any other. */
#include "vmwp/vmwp.h"

#include "lib/err.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VMWP_CONFIG_MAX (1u << 20)
#define VMWP_PATH_MAX 4096
#define VMWP_CMDLINE_MAX 4096

static bool vmwp_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > VMWP_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* Optional string field; abs: must be an absolute path. */
static int vmwp_get_str(struct json_object *o, const char *key, bool required, bool abs, size_t max,
			char **out)
{
	struct json_object *v;
	const char *s;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		if (!required)
			return 0;
		err_set("vm.json: \"%s\" is missing", key);
		return -EINVAL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		err_set("vm.json: \"%s\" must be a string", key);
		return -EINVAL;
	}
	s = json_object_get_string(v);
	if (strlen(s) > max || (size_t)json_object_get_string_len(v) != strlen(s)) {
		err_set("vm.json: \"%s\" is longer than %zu bytes or holds a NUL", key, max);
		return -EINVAL;
	}
	if (abs && s[0] != '/') {
		err_set("vm.json: \"%s\" must be an absolute path, not '%s'", key, s);
		return -EINVAL;
	}
	*out = strdup(s);
	if (!*out) {
		err_set("out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int vmwp_get_uint(struct json_object *o, const char *key, uint64_t min, uint64_t max,
			 uint64_t *out)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v)) {
		err_set("vm.json: \"%s\" is missing", key);
		return -EINVAL;
	}
	if (!json_object_is_type(v, json_type_int)) {
		err_set("vm.json: \"%s\" must be an integer", key);
		return -EINVAL;
	}
	errno = 0;
	n = json_object_get_int64(v);
	if (errno || n < 0 || (uint64_t)n < min || (uint64_t)n > max) {
		err_set("vm.json: \"%s\" must be between %llu and %llu", key,
			(unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	*out = (uint64_t)n;
	return 0;
}

static int vmwp_parse_disks(struct vmwp_config *c, struct json_object *root)
{
	struct json_object *arr;
	size_t n;

	if (!json_object_object_get_ex(root, "disks", &arr) ||
	    json_object_is_type(arr, json_type_null))
		return 0;
	if (!json_object_is_type(arr, json_type_array)) {
		err_set("vm.json: \"disks\" must be an array");
		return -EINVAL;
	}
	n = json_object_array_length(arr);
	if (n > VMWP_MAX_DISKS) {
		err_set("vm.json: %zu disks, at most %d are supported", n, VMWP_MAX_DISKS);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(arr, i), *v;
		struct vmwp_disk *disk = &c->disks[c->ndisks];
		char *fmt = NULL;
		int r;

		if (!json_object_is_type(d, json_type_object)) {
			err_set("vm.json: disks[%zu] must be an object", i);
			return -EINVAL;
		}
		r = vmwp_get_str(d, "path", true, true, VMWP_PATH_MAX, &disk->path);
		if (r < 0) {
			err_prefix("disks[%zu]", i);
			return r;
		}
		c->ndisks++;
		r = vmwp_get_str(d, "format", false, false, 8, &fmt);
		if (r < 0)
			return r;
		snprintf(disk->format, sizeof(disk->format), "%s", fmt ? fmt : "raw");
		free(fmt);
		if (strcmp(disk->format, "raw") && strcmp(disk->format, "vhd") &&
		    strcmp(disk->format, "vhdx")) {
			err_set("vm.json: disks[%zu].format '%s': expected raw, vhd or vhdx", i,
				disk->format);
			return -EINVAL;
		}
		if (json_object_object_get_ex(d, "readonly", &v)) {
			if (!json_object_is_type(v, json_type_boolean)) {
				err_set("vm.json: disks[%zu].readonly must be true or false", i);
				return -EINVAL;
			}
			disk->readonly = json_object_get_boolean(v);
		}
	}
	return 0;
}

static int vmwp_parse_devices(struct vmwp_config *c, struct json_object *root)
{
	struct json_object *arr;
	size_t n;

	if (!json_object_object_get_ex(root, "devices", &arr) ||
	    json_object_is_type(arr, json_type_null))
		return 0;
	if (!json_object_is_type(arr, json_type_array)) {
		err_set("vm.json: \"devices\" must be an array");
		return -EINVAL;
	}
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(arr, i);

		if (!json_object_is_type(d, json_type_string) ||
		    strcmp(json_object_get_string(d), "echo")) {
			err_set("vm.json: devices[%zu] '%.64s': the only device is \"echo\"", i,
				json_object_get_string(d));
			return -EINVAL;
		}
		c->echo_device = true;
		c->ndevices++;
	}
	return 0;
}

static int vmwp_config_fill(struct vmwp_config *c, struct json_object *root)
{
	uint64_t n;
	char *s;
	int r;

	if (!json_object_is_type(root, json_type_object)) {
		err_set("vm.json: expected a JSON object");
		return -EINVAL;
	}
	r = vmwp_get_str(root, "name", true, false, VMWP_NAME_MAX, &s);
	if (r < 0)
		return r;
	if (!vmwp_name_ok(s)) {
		err_set("vm.json: name '%s' is not 1..64 of a-z A-Z 0-9 . _ - (no leading '.')", s);
		free(s);
		return -EINVAL;
	}
	snprintf(c->name, sizeof(c->name), "%s", s);
	free(s);
	r = vmwp_get_str(root, "uuid", false, false, 36, &s);
	if (r < 0)
		return r;
	snprintf(c->uuid, sizeof(c->uuid), "%s", s ? s : "");
	free(s);
	r = vmwp_get_uint(root, "memory_mb", 4, 1u << 20, &c->memory_mb);
	if (r < 0)
		return r;
	r = vmwp_get_uint(root, "cpus", 1, 255, &n);
	if (r < 0)
		return r;
	c->cpus = (unsigned)n;
	r = vmwp_get_str(root, "kernel", true, true, VMWP_PATH_MAX, &c->kernel);
	if (r == 0)
		r = vmwp_get_str(root, "initrd", false, true, VMWP_PATH_MAX, &c->initrd);
	if (r == 0)
		r = vmwp_get_str(root, "cmdline", false, false, VMWP_CMDLINE_MAX, &c->cmdline);
	if (r == 0)
		r = vmwp_get_str(root, "user", false, false, 255, &c->user);
	if (r == 0)
		r = vmwp_parse_disks(c, root);
	if (r < 0)
		return r;
	return vmwp_parse_devices(c, root);
}

int vmwp_config_parse(struct vmwp_config *c, const char *json, size_t len)
{
	struct json_tokener *tok;
	struct json_object *root;
	int r;

	memset(c, 0, sizeof(*c));
	if (len > VMWP_CONFIG_MAX || len > INT32_MAX) {
		err_set("vm.json: larger than 1 MiB");
		return -EINVAL;
	}
	tok = json_tokener_new();
	if (!tok) {
		err_set("out of memory");
		return -ENOMEM;
	}
	root = json_tokener_parse_ex(tok, json, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		/* Trailing whitespace is fine, anything else after the object is not. */
		size_t end = json_tokener_get_parse_end(tok);

		while (root && end < len && strchr(" \t\r\n", json[end]) && json[end])
			end++;
		if (!root || end != len) {
			err_set("vm.json: not valid JSON (%s at byte %zu)",
				json_tokener_error_desc(json_tokener_get_error(tok)),
				json_tokener_get_parse_end(tok));
			json_object_put(root);
			json_tokener_free(tok);
			return -EINVAL;
		}
	}
	json_tokener_free(tok);
	r = vmwp_config_fill(c, root);
	json_object_put(root);
	if (r < 0)
		vmwp_config_free(c);
	return r;
}

int vmwp_config_load(struct vmwp_config *c, const char *path)
{
	struct stat st;
	char *buf;
	int fd, r;

	memset(c, 0, sizeof(*c));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		err_set("cannot open %s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > VMWP_CONFIG_MAX) {
		err_set("%s: not a regular file of at most 1 MiB", path);
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		err_set("out of memory");
		return -ENOMEM;
	}
	r = util_pread_full(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (r < 0) {
		err_set("cannot read %s: %s", path, strerror(-r));
		free(buf);
		return r;
	}
	buf[st.st_size] = 0;
	r = vmwp_config_parse(c, buf, (size_t)st.st_size);
	free(buf);
	return r;
}

void vmwp_config_free(struct vmwp_config *c)
{
	free(c->kernel);
	free(c->initrd);
	free(c->cmdline);
	free(c->user);
	for (unsigned i = 0; i < c->ndisks; i++)
		free(c->disks[i].path);
	memset(c, 0, sizeof(*c));
}
