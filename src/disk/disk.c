// SPDX-License-Identifier: GPL-2.0-only
/* Format-neutral disk layer: driver table, detection, open/create/info/check, chains. */
#include "disk/disk.h"

#include "disk/raw.h"
#ifdef HAVE_VHD
#include "disk/vhd.h"
#endif
#ifdef HAVE_VHDX
#include "disk/vhdx.h"
#endif
#include "lib/err.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define DISK_PROBE_HEAD (64 * 1024)
#define DISK_PROBE_TAIL 512

/* Probe order: the most specific signature first, raw last (it takes anything). */
static const struct disk_driver *const disk_drivers[] = {
#ifdef HAVE_VHDX
	&vhdx_driver,
#endif
#ifdef HAVE_VHD
	&vhd_driver,
#endif
	&raw_driver,
};

static const char *const disk_format_names[] = {
	[DISK_FORMAT_AUTO] = "auto",
	[DISK_FORMAT_RAW] = "raw",
	[DISK_FORMAT_VHD] = "vhd",
	[DISK_FORMAT_VHDX] = "vhdx",
};

static const char *const disk_type_names[] = {
	[DISK_TYPE_FIXED] = "fixed",
	[DISK_TYPE_DYNAMIC] = "dynamic",
	[DISK_TYPE_DIFFERENCING] = "differencing",
};

static const struct disk_driver *disk_driver_extra;

void disk_driver_override(const struct disk_driver *drv)
{
	disk_driver_extra = drv;
}

const struct disk_driver *disk_driver_get(enum disk_format format)
{
	if (disk_driver_extra && disk_driver_extra->format == format)
		return disk_driver_extra;
	for (size_t i = 0; i < ARRAY_SIZE(disk_drivers); i++)
		if (disk_drivers[i]->format == format)
			return disk_drivers[i];
	return NULL;
}

static const struct disk_driver *disk_driver_by_name(const char *name)
{
	if (name && disk_driver_extra && !strcmp(disk_driver_extra->name, name))
		return disk_driver_extra;
	for (size_t i = 0; name && i < ARRAY_SIZE(disk_drivers); i++)
		if (!strcmp(disk_drivers[i]->name, name))
			return disk_drivers[i];
	return NULL;
}

/* The driver for format, or NULL with a message saying it was not built in. */
static const struct disk_driver *disk_driver_need(enum disk_format format)
{
	const struct disk_driver *drv = disk_driver_get(format);

	if (!drv)
		err_set("%s images are not supported by this build", disk_format_name(format));
	return drv;
}

/* The driver for path: format as given, or probed from the content when AUTO. */
static int disk_driver_for_path(const char *path, enum disk_format format,
				const struct disk_driver **drv)
{
	int ret;

	if (format == DISK_FORMAT_AUTO) {
		ret = disk_probe(path, &format);
		if (ret < 0)
			return ret;
	}
	*drv = disk_driver_need(format);
	return *drv ? 0 : -ENOTSUP;
}

const char *disk_format_name(enum disk_format format)
{
	if ((unsigned)format < ARRAY_SIZE(disk_format_names))
		return disk_format_names[format];
	return "unknown";
}

int disk_format_parse(const char *s, enum disk_format *out)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "raw"))
		*out = DISK_FORMAT_RAW;
	else if (!strcmp(s, "vhd") || !strcmp(s, "vpc"))
		*out = DISK_FORMAT_VHD;
	else if (!strcmp(s, "vhdx"))
		*out = DISK_FORMAT_VHDX;
	else if (!strcmp(s, "auto"))
		*out = DISK_FORMAT_AUTO;
	else {
		err_set("unknown disk format '%s' (use raw, vhd or vhdx)", s);
		return -EINVAL;
	}
	return 0;
}

const char *disk_type_name(enum disk_type type)
{
	if ((unsigned)type < ARRAY_SIZE(disk_type_names))
		return disk_type_names[type];
	return "unknown";
}

int disk_type_parse(const char *s, enum disk_type *out)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(disk_type_names); i++) {
		if (!strcmp(s, disk_type_names[i])) {
			*out = (enum disk_type)i;
			return 0;
		}
	}
	err_set("unknown disk type '%s' (use fixed, dynamic or differencing)", s ? s : "");
	return -EINVAL;
}

int disk_probe(const char *path, enum disk_format *out)
{
	uint8_t *head = NULL, tail[DISK_PROBE_TAIL] = {0};
	uint64_t size = 0;
	size_t head_len, tail_len;
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		err_set("cannot open '%s': %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		err_set("cannot stat '%s': %s", path, strerror(-ret));
		goto out;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			ret = -errno;
			err_set("cannot get the size of '%s': %s", path, strerror(-ret));
			goto out;
		}
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		ret = -EINVAL;
		err_set("'%s' is neither a regular file nor a block device", path);
		goto out;
	}
	if (!size) {
		ret = -EINVAL;
		err_set("'%s' is empty: not a disk image", path);
		goto out;
	}
	head_len = (size_t)MIN(size, (uint64_t)DISK_PROBE_HEAD);
	tail_len = (size_t)MIN(size, (uint64_t)DISK_PROBE_TAIL);
	head = malloc(head_len);
	if (!head) {
		ret = -ENOMEM;
		err_set("out of memory probing '%s'", path);
		goto out;
	}
	ret = util_pread_full(fd, head, head_len, 0);
	if (!ret)
		ret = util_pread_full(fd, tail + (DISK_PROBE_TAIL - tail_len), tail_len,
				      (off_t)(size - tail_len));
	if (ret < 0) {
		err_set("cannot read '%s': %s", path, strerror(-ret));
		goto out;
	}
	*out = DISK_FORMAT_RAW;
	if (disk_driver_extra && disk_driver_extra->probe &&
	    disk_driver_extra->probe(head, head_len, tail, size)) {
		*out = disk_driver_extra->format;
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(disk_drivers); i++) {
		const struct disk_driver *drv = disk_drivers[i];

		if (drv->format != DISK_FORMAT_RAW && drv->probe &&
		    drv->probe(head, head_len, tail, size)) {
			*out = drv->format;
			break;
		}
	}
out:
	free(head);
	close(fd);
	return ret;
}

/*
 * The images being opened by this thread, outermost first. A differencing
 * driver's open() calls disk_open_parent(), which opens the parent with
 * disk_open() again, so the stack is the chain walked so far.
 */
struct disk_chain_entry {
	dev_t dev;
	ino_t ino;
	const char *path;
	unsigned flags;
};

static _Thread_local struct disk_chain_entry disk_chain[DISK_MAX_CHAIN_DEPTH + 1];
static _Thread_local unsigned disk_chain_len;

int disk_open(const char *path, enum disk_format format, unsigned flags, struct blockdev **out)
{
	const struct disk_driver *drv;
	struct stat st;
	int ret;

	*out = NULL;
	ret = disk_driver_for_path(path, format, &drv);
	if (ret < 0)
		return ret;
	if (stat(path, &st) < 0) {
		ret = -errno;
		err_set("cannot open '%s': %s", path, strerror(-ret));
		return ret;
	}
	if (disk_chain_len > DISK_MAX_CHAIN_DEPTH) {
		err_set("'%s': differencing chain deeper than %d images", path,
			DISK_MAX_CHAIN_DEPTH);
		return -ELOOP;
	}
	disk_chain[disk_chain_len++] = (struct disk_chain_entry){
		.dev = st.st_dev,
		.ino = st.st_ino,
		.path = path,
		.flags = flags,
	};
	ret = drv->open(path, flags, out);
	disk_chain_len--;
	if (ret < 0)
		*out = NULL;
	return ret;
}

static void disk_chain_describe(char *buf, size_t size, const char *last)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < disk_chain_len && pos < size; i++)
		pos += (size_t)snprintf(buf + pos, size - pos, "%s -> ", disk_chain[i].path);
	/* Truncating a long chain description is fine: it is only for the message. */
	if (pos < size) {
		size_t n = strnlen(last, size - pos - 1);

		memcpy(buf + pos, last, n);
		buf[pos + n] = '\0';
	}
}

/* Parents are read-only; direct I/O and no-replay carry over from the child. */
static unsigned disk_parent_flags(void)
{
	unsigned flags = DISK_OPEN_RDONLY;

	if (disk_chain_len)
		flags |= disk_chain[disk_chain_len - 1].flags &
			 (DISK_OPEN_DIRECT | DISK_OPEN_NO_REPLAY);
	return flags;
}

/* Resolves cand against the child's directory into out (PATH_MAX bytes). */
static int disk_resolve_candidate(const char *child_path, const char *cand, char *out)
{
	char tmp[PATH_MAX];
	const char *slash;
	size_t n;
	int len;

	n = strlen(cand);
	if (!n || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	/* Windows parent locators use backslashes. */
	memcpy(tmp, cand, n + 1);
	for (size_t i = 0; i < n; i++)
		if (tmp[i] == '\\')
			tmp[i] = '/';
	if (tmp[0] == '/') {
		memcpy(out, tmp, n + 1);
		return 0;
	}
	slash = strrchr(child_path, '/');
	if (!slash)
		len = snprintf(out, PATH_MAX, "%s", tmp);
	else
		len = snprintf(out, PATH_MAX, "%.*s/%s",
			       (int)(slash - child_path + (slash == child_path)), child_path, tmp);
	if (len < 0 || len >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int disk_open_parent(const char *child_path, const char *const *candidates, unsigned ncandidates,
		     struct blockdev **out, char *resolved)
{
	char tried[1024] = "";
	char path[PATH_MAX];
	size_t tpos = 0;
	struct stat st;

	*out = NULL;
	for (unsigned i = 0; i < ncandidates; i++) {
		char msg[2048];
		int ret;

		if (!candidates[i] || !candidates[i][0])
			continue;
		if (disk_resolve_candidate(child_path, candidates[i], path) < 0)
			continue;
		if (tpos < sizeof(tried))
			tpos += (size_t)snprintf(tried + tpos, sizeof(tried) - tpos, "%s%s",
						 tpos ? ", " : "", path);
		if (stat(path, &st) < 0)
			continue;
		for (unsigned k = 0; k < disk_chain_len; k++) {
			if (disk_chain[k].dev == st.st_dev && disk_chain[k].ino == st.st_ino) {
				disk_chain_describe(msg, sizeof(msg), path);
				err_set("parent loop: %s", msg);
				return -ELOOP;
			}
		}
		if (disk_chain_len >= DISK_MAX_CHAIN_DEPTH) {
			err_set("differencing chain of '%s' is deeper than %d images", child_path,
				DISK_MAX_CHAIN_DEPTH);
			return -ELOOP;
		}
		ret = disk_open(path, DISK_FORMAT_AUTO, disk_parent_flags(), out);
		if (ret < 0) {
			if (ret != -ELOOP)
				err_prefix("parent of '%s'", child_path);
			return ret;
		}
		if (resolved)
			snprintf(resolved, PATH_MAX, "%s", path);
		return 0;
	}
	err_set("parent '%s' of '%s' not found (tried: %s)",
		ncandidates && candidates[0] ? candidates[0] : "", child_path,
		tried[0] ? tried : "nothing");
	return -ENOENT;
}

int disk_create(const char *path, const struct disk_create_opts *opts)
{
	const struct disk_driver *drv;

	if (opts->format == DISK_FORMAT_AUTO) {
		err_set("choose a format (raw, vhd or vhdx) to create '%s'", path);
		return -EINVAL;
	}
	if (!opts->size && !opts->parent) {
		err_set("a size is needed to create '%s'", path);
		return -EINVAL;
	}
	drv = disk_driver_need(opts->format);
	if (!drv)
		return -ENOTSUP;
	if (!drv->create) {
		err_set("creating %s images is not supported", drv->name);
		return -ENOTSUP;
	}
	return drv->create(path, opts);
}

int disk_info_get(struct blockdev *bd, struct disk_info *info)
{
	const struct disk_driver *drv = disk_driver_by_name(bd->format);
	struct stat st;
	int ret = 0;

	memset(info, 0, sizeof(*info));
	if (drv)
		info->format = drv->format;
	info->type = DISK_TYPE_FIXED;
	info->virtual_size = bd->size;
	info->logical_sector_size = bd->logical_sector_size;
	info->physical_sector_size = bd->physical_sector_size;
	if (drv && drv->info)
		ret = drv->info(bd, info);
	if (ret < 0)
		return ret;
	if (!info->file_size && !info->allocated_bytes && bd->data_fd >= 0 &&
	    fstat(bd->data_fd, &st) == 0) {
		info->file_size = (uint64_t)st.st_size;
		info->allocated_bytes = (uint64_t)st.st_blocks * 512;
	}
	return 0;
}

int disk_check(const char *path, enum disk_format format, bool repair,
	       struct disk_check_result *res, FILE *report)
{
	const struct disk_driver *drv;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = disk_driver_for_path(path, format, &drv);
	if (ret < 0)
		return ret;
	if (!drv->check) {
		err_set("checking %s images is not supported", drv->name);
		return -ENOTSUP;
	}
	return drv->check(path, repair, res, report);
}
