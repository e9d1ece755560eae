// SPDX-License-Identifier: GPL-2.0-only
/* vm.json: strict parsing (unknown fields and wrong types are errors) and serialisation. */
#include "vmms/config.h"

#include "lib/err.h"
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

bool vmms_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > VMMS_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
			return false;
		/* isalnum() follows the locale; only ASCII is allowed. */
		if (ch > 0x7f)
			return false;
	}
	return true;
}

void vmms_uuid_generate(char out[37])
{
	uint8_t b[16];

	if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
		uint64_t t = util_now_ns() ^ (uint64_t)getpid() << 32;

		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)(t >> (8 * (i % 8))) ^ (uint8_t)(i * 37);
	}
	b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

static bool vmms_uuid_valid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

struct json_object *vmms_json_parse(const char *buf, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error e;

	if (len == 0) {
		err_set("the request body is empty; send a JSON object");
		return NULL;
	}
	if (len > INT32_MAX) {
		err_set("the JSON document is too large");
		return NULL;
	}
	tok = json_tokener_new();
	if (!tok) {
		err_set("out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, buf, (int)len);
	e = json_tokener_get_error(tok);
	if (!o || e != json_tokener_success) {
		if (e == json_tokener_continue)
			err_set("malformed JSON: the document ends early");
		else
			err_set("malformed JSON at byte %zu: %s", json_tokener_get_parse_end(tok),
				json_tokener_error_desc(e));
		json_object_put(o);
		json_tokener_free(tok);
		return NULL;
	}
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (!isspace((unsigned char)buf[i])) {
			err_set("malformed JSON: data after the document at byte %zu", i);
			json_object_put(o);
			json_tokener_free(tok);
			return NULL;
		}
	}
	json_tokener_free(tok);
	return o;
}

void vmms_config_init(struct vmms_config *c)
{
	memset(c, 0, sizeof(*c));
	c->memory_mb = VMMS_MEM_DEFAULT_MB;
	c->cpus = 1;
}

void vmms_config_free(struct vmms_config *c)
{
	free(c->kernel);
	free(c->initrd);
	free(c->cmdline);
	free(c->user);
	free(c->checkpoint);
	for (unsigned i = 0; i < c->ndisks; i++)
		free(c->disks[i].path);
	for (unsigned i = 0; i < c->ndevices; i++)
		free(c->devices[i]);
	memset(c, 0, sizeof(*c));
}

static int vmms_strdup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -1;
}

int vmms_config_copy(struct vmms_config *dst, const struct vmms_config *src)
{
	int r = 0;

	*dst = *src;
	r |= vmms_strdup_opt(&dst->kernel, src->kernel);
	r |= vmms_strdup_opt(&dst->initrd, src->initrd);
	r |= vmms_strdup_opt(&dst->cmdline, src->cmdline);
	r |= vmms_strdup_opt(&dst->user, src->user);
	r |= vmms_strdup_opt(&dst->checkpoint, src->checkpoint);
	for (unsigned i = 0; i < src->ndisks; i++)
		r |= vmms_strdup_opt(&dst->disks[i].path, src->disks[i].path);
	for (unsigned i = 0; i < src->ndevices; i++)
		r |= vmms_strdup_opt(&dst->devices[i], src->devices[i]);
	if (r) {
		vmms_config_free(dst);
		err_set("out of memory");
		return -1;
	}
	return 0;
}

static int vmms_fail(const char **code, const char *c)
{
	*code = c;
	return -1;
}

static bool vmms_text_clean(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* Absolute, bounded, printable; with check_file, an existing regular file. */
static int vmms_path_check(const char *field, const char *p, bool check_file, const char **code)
{
	struct stat st;

	if (p[0] != '/') {
		err_set("%s must be an absolute path, got '%.200s'", field, p);
		return vmms_fail(code, "invalid_value");
	}
	if (strlen(p) >= VMMS_PATH_MAX || !vmms_text_clean(p)) {
		err_set("%s must be a printable path shorter than %d bytes", field, VMMS_PATH_MAX);
		return vmms_fail(code, "invalid_value");
	}
	if (!check_file)
		return 0;
	if (stat(p, &st) < 0) {
		err_set("%s '%.200s' does not exist or is not reachable: %s", field, p,
			strerror(errno));
		return vmms_fail(code, "file_not_found");
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		err_set("%s '%.200s' is not a regular file", field, p);
		return vmms_fail(code, "invalid_value");
	}
	return 0;
}

static int vmms_get_string(struct json_object *v, const char *field, const char **out,
			   const char **code)
{
	if (!json_object_is_type(v, json_type_string)) {
		err_set("'%s' must be a string", field);
		return vmms_fail(code, "invalid_type");
	}
	*out = json_object_get_string(v);
	if (strlen(*out) != (size_t)json_object_get_string_len(v)) {
		err_set("'%s' must not contain NUL characters", field);
		return vmms_fail(code, "invalid_value");
	}
	return 0;
}

static int vmms_get_int(struct json_object *v, const char *field, int64_t lo, int64_t hi,
			int64_t *out, const char **code)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int)) {
		err_set("'%s' must be an integer", field);
		return vmms_fail(code, "invalid_type");
	}
	errno = 0;
	x = json_object_get_int64(v);
	if (errno || x < lo || x > hi) {
		err_set("'%s' must be between %lld and %lld", field, (long long)lo, (long long)hi);
		return vmms_fail(code, "out_of_range");
	}
	*out = x;
	return 0;
}

static int vmms_set_str(char **dst, const char *s)
{
	char *d = strdup(s);

	if (!d) {
		err_set("out of memory");
		return -1;
	}
	free(*dst);
	*dst = d;
	return 0;
}

/* Optional string field; JSON null removes it (not for kernel). */
static int vmms_apply_opt_path(char **dst, struct json_object *v, const char *field, bool check,
			       const char **code)
{
	const char *s;

	if (!v) {
		free(*dst);
		*dst = NULL;
		return 0;
	}
	if (vmms_get_string(v, field, &s, code) || vmms_path_check(field, s, check, code))
		return -1;
	return vmms_set_str(dst, s) ? vmms_fail(code, "internal") : 0;
}

static int vmms_apply_disks(struct vmms_config *c, struct json_object *v, bool check, bool stored,
			    const char **code)
{
	struct vmms_disk nd[VMMS_MAX_DISKS];
	size_t n;

	if (!json_object_is_type(v, json_type_array)) {
		err_set("'disks' must be an array of objects");
		return vmms_fail(code, "invalid_type");
	}
	n = json_object_array_length(v);
	if (n > VMMS_MAX_DISKS) {
		err_set("a VM has at most %d disks, got %zu", VMMS_MAX_DISKS, n);
		return vmms_fail(code, "out_of_range");
	}
	memset(nd, 0, sizeof(nd));
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(v, i);
		const char *path = NULL, *fmt = NULL;
		bool have_fmt = false;
		char field[32];

		snprintf(field, sizeof(field), "disks[%zu]", i);
		if (!json_object_is_type(d, json_type_object)) {
			err_set("'%s' must be an object with path, readonly, format", field);
			vmms_fail(code, "invalid_type");
			goto fail;
		}
		json_object_object_foreach(d, key, val)
		{
			if (!strcmp(key, "path")) {
				if (vmms_get_string(val, "disks[].path", &path, code))
					goto fail;
			} else if (!strcmp(key, "readonly")) {
				if (!json_object_is_type(val, json_type_boolean)) {
					err_set("'%s.readonly' must be true or false", field);
					vmms_fail(code, "invalid_type");
					goto fail;
				}
				nd[i].readonly = json_object_get_boolean(val);
			} else if (!strcmp(key, "format")) {
				if (vmms_get_string(val, "disks[].format", &fmt, code))
					goto fail;
				have_fmt = true;
			} else if (stored && !strcmp(key, "owned")) {
				nd[i].owned = json_object_get_boolean(val);
			} else {
				err_set("unknown field '%s.%.64s' (known: path, readonly, format)",
					field, key);
				vmms_fail(code, "unknown_field");
				goto fail;
			}
		}
		if (!path) {
			err_set("'%s.path' is required", field);
			vmms_fail(code, "missing_field");
			goto fail;
		}
		if (vmms_path_check("disk path", path, check, code))
			goto fail;
		nd[i].format = DISK_FORMAT_AUTO;
		if (have_fmt) {
			if ((strcmp(fmt, "raw") && strcmp(fmt, "vhd") && strcmp(fmt, "vhdx")) ||
			    disk_format_parse(fmt, &nd[i].format) < 0) {
				err_set("'%s.format' must be raw, vhd or vhdx, got '%.32s'", field,
					fmt);
				vmms_fail(code, "invalid_value");
				goto fail;
			}
		}
		if (check) {
			enum disk_format probed;

			if (disk_probe(path, &probed) < 0) {
				err_prefix("disk '%.200s'", path);
				vmms_fail(code, "invalid_disk");
				goto fail;
			}
			if (nd[i].format != DISK_FORMAT_AUTO && nd[i].format != probed) {
				err_set("disk '%.200s' is a %s image, not %s; fix 'format'", path,
					disk_format_name(probed), disk_format_name(nd[i].format));
				vmms_fail(code, "invalid_disk");
				goto fail;
			}
			nd[i].format = probed;
		} else if (nd[i].format == DISK_FORMAT_AUTO) {
			nd[i].format = DISK_FORMAT_RAW;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(nd[j].path, path)) {
				err_set("disk '%.200s' is listed twice", path);
				vmms_fail(code, "invalid_value");
				goto fail;
			}
		}
		nd[i].path = strdup(path);
		if (!nd[i].path) {
			err_set("out of memory");
			vmms_fail(code, "internal");
			goto fail;
		}
	}
	for (unsigned i = 0; i < c->ndisks; i++)
		free(c->disks[i].path);
	memcpy(c->disks, nd, sizeof(nd));
	c->ndisks = (unsigned)n;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		free(nd[i].path);
	return -1;
}

static bool vmms_device_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= '0' && s[i] <= '9') && s[i] != '-' &&
		    s[i] != '_')
			return false;
	return true;
}

static int vmms_apply_devices(struct vmms_config *c, struct json_object *v, const char **code)
{
	char *nd[VMMS_MAX_DEVICES] = {0};
	size_t n;

	if (!json_object_is_type(v, json_type_array)) {
		err_set("'devices' must be an array of strings");
		return vmms_fail(code, "invalid_type");
	}
	n = json_object_array_length(v);
	if (n > VMMS_MAX_DEVICES) {
		err_set("a VM has at most %d devices, got %zu", VMMS_MAX_DEVICES, n);
		return vmms_fail(code, "out_of_range");
	}
	for (size_t i = 0; i < n; i++) {
		const char *s;

		if (vmms_get_string(json_object_array_get_idx(v, i), "devices[]", &s, code))
			goto fail;
		if (!vmms_device_name_valid(s)) {
			err_set("device name '%.40s' is invalid (a-z 0-9 - _, 1..32 chars)", s);
			vmms_fail(code, "invalid_value");
			goto fail;
		}
		nd[i] = strdup(s);
		if (!nd[i]) {
			err_set("out of memory");
			vmms_fail(code, "internal");
			goto fail;
		}
	}
	for (unsigned i = 0; i < c->ndevices; i++)
		free(c->devices[i]);
	memcpy(c->devices, nd, sizeof(nd));
	c->ndevices = (unsigned)n;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		free(nd[i]);
	return -1;
}

static bool vmms_user_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > VMMS_USER_MAX || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

int vmms_config_apply(struct vmms_config *c, struct json_object *o, enum vmms_config_mode mode,
		      const char **code)
{
	bool stored = mode == VMMS_CONFIG_STORED;
	bool check = !stored;
	bool have_name = false, have_kernel = c->kernel != NULL, have_uuid = false;
	int64_t x;

	if (!json_object_is_type(o, json_type_object)) {
		err_set("the body must be a JSON object");
		return vmms_fail(code, "invalid_type");
	}
	json_object_object_foreach(o, key, v)
	{
		const char *s;

		if (!strcmp(key, "name")) {
			if (vmms_get_string(v, "name", &s, code))
				return -1;
			if (mode == VMMS_CONFIG_PATCH) {
				if (strcmp(s, c->name)) {
					err_set("a VM cannot be renamed (name is '%s')", c->name);
					return vmms_fail(code, "read_only_field");
				}
				continue;
			}
			if (!vmms_name_valid(s)) {
				err_set("invalid VM name '%.80s': use 1..64 of A-Z a-z 0-9 . _ - "
					"and no leading '.'",
					s);
				return vmms_fail(code, "invalid_name");
			}
			snprintf(c->name, sizeof(c->name), "%s", s);
			have_name = true;
		} else if (!strcmp(key, "uuid") || !strcmp(key, "generation") ||
			   !strcmp(key, "checkpoint") || !strcmp(key, "checkpoint_dirty")) {
			if (!stored) {
				err_set("'%s' is managed by vmms and cannot be set", key);
				return vmms_fail(code, "read_only_field");
			}
			if (!strcmp(key, "uuid")) {
				if (vmms_get_string(v, "uuid", &s, code))
					return -1;
				if (!vmms_uuid_valid(s)) {
					err_set("'uuid' must be 8-4-4-4-12 lowercase hex");
					return vmms_fail(code, "invalid_value");
				}
				memcpy(c->uuid, s, 37);
				have_uuid = true;
			} else if (!strcmp(key, "generation")) {
				if (vmms_get_int(v, "generation", 1, INT64_MAX, &x, code))
					return -1;
				c->generation = (uint64_t)x;
			} else if (!strcmp(key, "checkpoint")) {
				if (json_object_is_type(v, json_type_null)) {
					free(c->checkpoint);
					c->checkpoint = NULL;
					continue;
				}
				if (vmms_get_string(v, "checkpoint", &s, code))
					return -1;
				if (!vmms_name_valid(s)) {
					err_set("'checkpoint' is not a valid checkpoint name");
					return vmms_fail(code, "invalid_value");
				}
				if (vmms_set_str(&c->checkpoint, s))
					return vmms_fail(code, "internal");
			} else {
				if (!json_object_is_type(v, json_type_boolean)) {
					err_set("'checkpoint_dirty' must be a boolean");
					return vmms_fail(code, "invalid_type");
				}
				c->checkpoint_dirty = json_object_get_boolean(v);
			}
		} else if (!strcmp(key, "memory_mb")) {
			if (vmms_get_int(v, "memory_mb", VMMS_MEM_MIN_MB, VMMS_MEM_MAX_MB, &x,
					 code))
				return -1;
			c->memory_mb = (uint32_t)x;
		} else if (!strcmp(key, "cpus")) {
			if (vmms_get_int(v, "cpus", 1, VMMS_CPUS_MAX, &x, code))
				return -1;
			c->cpus = (uint32_t)x;
		} else if (!strcmp(key, "kernel")) {
			if (vmms_get_string(v, "kernel", &s, code) ||
			    vmms_path_check("kernel", s, check, code))
				return -1;
			if (vmms_set_str(&c->kernel, s))
				return vmms_fail(code, "internal");
			have_kernel = true;
		} else if (!strcmp(key, "initrd")) {
			if (vmms_apply_opt_path(&c->initrd,
						json_object_is_type(v, json_type_null) ? NULL : v,
						"initrd", check, code))
				return -1;
		} else if (!strcmp(key, "cmdline")) {
			if (json_object_is_type(v, json_type_null)) {
				free(c->cmdline);
				c->cmdline = NULL;
				continue;
			}
			if (vmms_get_string(v, "cmdline", &s, code))
				return -1;
			if (strlen(s) >= VMMS_CMDLINE_MAX || !vmms_text_clean(s)) {
				err_set("'cmdline' must be printable and shorter than %d bytes",
					VMMS_CMDLINE_MAX);
				return vmms_fail(code, "invalid_value");
			}
			if (vmms_set_str(&c->cmdline, s))
				return vmms_fail(code, "internal");
		} else if (!strcmp(key, "user")) {
			if (json_object_is_type(v, json_type_null)) {
				free(c->user);
				c->user = NULL;
				continue;
			}
			if (vmms_get_string(v, "user", &s, code))
				return -1;
			if (!vmms_user_valid(s)) {
				err_set("'user' must be a user name (1..32 of A-Z a-z 0-9 . _ -)");
				return vmms_fail(code, "invalid_value");
			}
			if (vmms_set_str(&c->user, s))
				return vmms_fail(code, "internal");
		} else if (!strcmp(key, "disks")) {
			if (vmms_apply_disks(c, v, check, stored, code))
				return -1;
		} else if (!strcmp(key, "devices")) {
			if (vmms_apply_devices(c, v, code))
				return -1;
		} else if (stored) {
			/* Newer vm.json fields are ignored, as the worker does. */
			continue;
		} else {
			err_set("unknown field '%.64s' (known: name, memory_mb, cpus, kernel, initrd, "
				"cmdline, disks, devices, user)",
				key);
			return vmms_fail(code, "unknown_field");
		}
	}
	if (mode != VMMS_CONFIG_PATCH && !have_name) {
		err_set("'name' is required");
		return vmms_fail(code, "missing_field");
	}
	if (!have_kernel) {
		err_set("'kernel' is required (absolute path of the guest kernel)");
		return vmms_fail(code, "missing_field");
	}
	if (stored && (!have_uuid || !c->generation)) {
		err_set("vm.json lacks 'uuid' or 'generation'");
		return vmms_fail(code, "invalid_value");
	}
	return 0;
}

struct json_object *vmms_config_to_json(const struct vmms_config *c, bool stored)
{
	struct json_object *o = json_object_new_object(), *d, *dv;

	json_object_object_add(o, "name", json_object_new_string(c->name));
	json_object_object_add(o, "uuid", json_object_new_string(c->uuid));
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)c->generation));
	json_object_object_add(o, "memory_mb", json_object_new_int64(c->memory_mb));
	json_object_object_add(o, "cpus", json_object_new_int64(c->cpus));
	json_object_object_add(o, "kernel", json_object_new_string(c->kernel ? c->kernel : ""));
	if (c->initrd)
		json_object_object_add(o, "initrd", json_object_new_string(c->initrd));
	if (c->cmdline)
		json_object_object_add(o, "cmdline", json_object_new_string(c->cmdline));
	d = json_object_new_array();
	for (unsigned i = 0; i < c->ndisks; i++) {
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, "path", json_object_new_string(c->disks[i].path));
		json_object_object_add(e, "readonly",
				       json_object_new_boolean(c->disks[i].readonly));
		json_object_object_add(
			e, "format", json_object_new_string(disk_format_name(c->disks[i].format)));
		if (stored && c->disks[i].owned)
			json_object_object_add(e, "owned", json_object_new_boolean(true));
		json_object_array_add(d, e);
	}
	json_object_object_add(o, "disks", d);
	dv = json_object_new_array();
	for (unsigned i = 0; i < c->ndevices; i++)
		json_object_array_add(dv, json_object_new_string(c->devices[i]));
	json_object_object_add(o, "devices", dv);
	if (c->user)
		json_object_object_add(o, "user", json_object_new_string(c->user));
	if (c->checkpoint)
		json_object_object_add(o, "checkpoint", json_object_new_string(c->checkpoint));
	else
		json_object_object_add(o, "checkpoint", NULL);
	if (stored)
		json_object_object_add(o, "checkpoint_dirty",
				       json_object_new_boolean(c->checkpoint_dirty));
	return o;
}
