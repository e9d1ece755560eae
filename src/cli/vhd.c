// SPDX-License-Identifier: GPL-2.0-only
/*
 * viridian vhd: create, inspect, check, convert, merge, compact and resize disk
 * images (raw, VHD, VHDX) with qemu-img's argument habits.
 */
#include "cli/commands.h"
#include "disk/convert.h"
#include "disk/disk.h"
#include "lib/err.h"
#include "lib/guid.h"
#include "lib/util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VHD_PROG "viridian vhd"

static void vhd_fail_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr, whatever the message contains. */
static void vhd_fail_line(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, VHD_PROG ": %s\n", buf);
}

static int vhd_usage_err(const char *sub, const char *what)
{
	vhd_fail_line("%s; '" VHD_PROG " %s --help' shows the usage", what, sub);
	return VIRIDIAN_EXIT_USAGE;
}

static int vhd_error(const char *path)
{
	if (path)
		vhd_fail_line("%s: %s", path, err_msg());
	else
		vhd_fail_line("%s", err_msg());
	return VIRIDIAN_EXIT_ERROR;
}

/* "1 GiB", "1.5 MiB" like qemu-img info. */
static const char *vhd_human(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double d = (double)v;
	unsigned u = 0;

	while (d >= 1024.0 && u + 1 < ARRAY_SIZE(units)) {
		d /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", v);
	else if (d == (double)(uint64_t)d)
		snprintf(buf, len, "%" PRIu64 " %s", (uint64_t)d, units[u]);
	else
		snprintf(buf, len, "%.3g %s", d, units[u]);
	return buf;
}

static void vhd_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* getopt with our own one-line messages; returns -2 after printing a usage error. */
static int vhd_getopt(int argc, char **argv, const char *sub, const char *shortopts,
		      const struct option *longopts)
{
	int c;

	opterr = 0;
	c = getopt_long(argc, argv, shortopts, longopts, NULL);
	if (c == '?' || c == ':') {
		char msg[128];

		if (optopt && c == '?')
			snprintf(msg, sizeof(msg), "unknown option '-%c'", optopt);
		else if (c == ':' || (optind > 0 && optind <= argc && argv[optind - 1] && !optopt))
			snprintf(msg, sizeof(msg), "bad or incomplete option '%s'",
				 argv[optind - 1]);
		else
			snprintf(msg, sizeof(msg), "bad option");
		vhd_usage_err(sub, msg);
		return -2;
	}
	return c;
}

static int vhd_parse_fmt(const char *sub, const char *s, enum disk_format *out)
{
	char msg[128];

	/* qemu names VHD "vpc"; accept it for people used to qemu-img. */
	if (!strcmp(s, "vpc"))
		s = "vhd";
	if (disk_format_parse(s, out) == 0 && *out != DISK_FORMAT_AUTO)
		return 0;
	snprintf(msg, sizeof(msg), "unknown format '%s' (raw, vhd, vhdx)", s);
	return vhd_usage_err(sub, msg);
}

static int vhd_parse_u32_size(const char *sub, const char *what, const char *s, uint32_t *out)
{
	uint64_t v;
	char msg[160];

	if (util_parse_size(s, &v) || v == 0 || v > UINT32_MAX) {
		snprintf(msg, sizeof(msg), "bad %s '%s'", what, s);
		return vhd_usage_err(sub, msg);
	}
	*out = (uint32_t)v;
	return 0;
}

/* ---- progress ---- */

struct vhd_progress {
	bool on;
	int last;
};

static void vhd_progress_cb(uint64_t done, uint64_t total, void *opaque)
{
	struct vhd_progress *p = opaque;
	int pct = total ? (int)(done * 1000 / total) : 1000;
	int width = 40, fill = pct * width / 1000;

	if (!p->on || pct == p->last)
		return;
	p->last = pct;
	fprintf(stderr, "\r    [");
	for (int i = 0; i < width; i++)
		fputc(i < fill ? '#' : ' ', stderr);
	fprintf(stderr, "] %5.1f%%", pct / 10.0);
	fflush(stderr);
}

static void vhd_progress_end(struct vhd_progress *p)
{
	if (p->on && p->last >= 0)
		fputc('\n', stderr);
}

/* ---- create ---- */

static const char vhd_create_help[] =
	"usage: " VHD_PROG " create -f vhd|vhdx|raw [--type fixed|dynamic|differencing]\n"
	"           [--parent PARENT] [--block-size B] [--logical-sector 512|4096]\n"
	"           [--physical-sector 512|4096] FILE [SIZE]\n"
	"SIZE takes K/M/G/T suffixes; it defaults to the parent's size. The type is\n"
	"dynamic, or differencing when --parent is given.\n";

static int vhd_create(int argc, char **argv)
{
	static const struct option lo[] = {
		{"format", required_argument, NULL, 'f'},
		{"type", required_argument, NULL, 't'},
		{"parent", required_argument, NULL, 'b'},
		{"block-size", required_argument, NULL, 'B'},
		{"logical-sector", required_argument, NULL, 'L'},
		{"physical-sector", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct disk_create_opts o = {.format = DISK_FORMAT_AUTO};
	bool type_set = false;
	char buf[64];
	int c, r;

	optind = 0;
	while ((c = vhd_getopt(argc, argv, "create", "f:t:b:B:L:P:h", lo)) != -1) {
		switch (c) {
		case -2:
			return VIRIDIAN_EXIT_USAGE;
		case 'h':
			fputs(vhd_create_help, stdout);
			return VIRIDIAN_EXIT_OK;
		case 'f':
			if (vhd_parse_fmt("create", optarg, &o.format))
				return VIRIDIAN_EXIT_USAGE;
			break;
		case 't':
			if (disk_type_parse(optarg, &o.type))
				return vhd_usage_err("create",
						     "type must be fixed, dynamic or differencing");
			type_set = true;
			break;
		case 'b':
			o.parent = optarg;
			break;
		case 'B':
			if (vhd_parse_u32_size("create", "block size", optarg, &o.block_size))
				return VIRIDIAN_EXIT_USAGE;
			break;
		case 'L':
			if (vhd_parse_u32_size("create", "logical sector size", optarg,
					       &o.logical_sector_size))
				return VIRIDIAN_EXIT_USAGE;
			if (o.logical_sector_size != 512 && o.logical_sector_size != 4096)
				return vhd_usage_err("create",
						     "logical sector size must be 512 or 4096");
			break;
		case 'P':
			if (vhd_parse_u32_size("create", "physical sector size", optarg,
					       &o.physical_sector_size))
				return VIRIDIAN_EXIT_USAGE;
			if (o.physical_sector_size != 512 && o.physical_sector_size != 4096)
				return vhd_usage_err("create",
						     "physical sector size must be 512 or 4096");
			break;
		default:
			return vhd_usage_err("create", "bad option");
		}
	}
	if (o.format == DISK_FORMAT_AUTO)
		return vhd_usage_err("create", "-f vhd|vhdx|raw is required");
	if (!type_set)
		o.type = o.parent ? DISK_TYPE_DIFFERENCING : DISK_TYPE_DYNAMIC;
	if (o.type == DISK_TYPE_DIFFERENCING && !o.parent)
		return vhd_usage_err("create", "a differencing image needs --parent PARENT");
	if (o.parent && o.type != DISK_TYPE_DIFFERENCING)
		return vhd_usage_err("create", "--parent only goes with --type differencing");
	if (argc - optind < 1)
		return vhd_usage_err("create", "missing FILE");
	if (argc - optind > 2)
		return vhd_usage_err("create", "too many arguments");
	if (argc - optind == 2) {
		if (util_parse_size(argv[optind + 1], &o.size) || o.size == 0) {
			snprintf(buf, sizeof(buf), "bad size '%.40s'", argv[optind + 1]);
			return vhd_usage_err("create", buf);
		}
	} else if (!o.parent) {
		return vhd_usage_err("create", "missing SIZE");
	}
	err_clear();
	r = disk_create(argv[optind], &o);
	if (r < 0)
		return vhd_error(argv[optind]);
	printf("Formatting '%s', fmt=%s type=%s", argv[optind], disk_format_name(o.format),
	       disk_type_name(o.type));
	if (o.size)
		printf(" size=%" PRIu64, o.size);
	if (o.block_size)
		printf(" block_size=%u", o.block_size);
	if (o.logical_sector_size)
		printf(" logical_sector_size=%u", o.logical_sector_size);
	if (o.parent)
		printf(" parent=%s", o.parent);
	printf("\n");
	return VIRIDIAN_EXIT_OK;
}

/* ---- info ---- */

static const char vhd_info_help[] =
	"usage: " VHD_PROG " info [--json] [-f FMT] FILE\n"
	"Shows format, type, virtual size, allocation, block and sector sizes, log\n"
	"state and the parent chain.\n";

static void vhd_info_human(const char *path, const struct disk_info *in)
{
	char a[32], b[32];

	printf("%-22s%s\n", "image:", path);
	printf("%-22s%s\n", "file format:", disk_format_name(in->format));
	printf("%-22s%s\n", "type:", disk_type_name(in->type));
	printf("%-22s%s (%" PRIu64 " bytes)\n",
	       "virtual size:", vhd_human(in->virtual_size, a, sizeof(a)), in->virtual_size);
	printf("%-22s%s\n", "disk size:", vhd_human(in->allocated_bytes, a, sizeof(a)));
	printf("%-22s%s (%" PRIu64 " bytes)\n",
	       "file size:", vhd_human(in->file_size, b, sizeof(b)), in->file_size);
	if (in->block_size)
		printf("%-22s%s (%u bytes)\n",
		       "block size:", vhd_human(in->block_size, a, sizeof(a)), in->block_size);
	printf("%-22s%u\n", "logical sector size:", in->logical_sector_size);
	printf("%-22s%u\n", "physical sector size:", in->physical_sector_size);
	if (in->log_state[0])
		printf("%-22s%s\n", "log state:", in->log_state);
	if (in->creator[0])
		printf("%-22s%s\n", "creator:", in->creator);
	if (!guid_is_zero(&in->disk_id)) {
		char g[GUID_STR_LEN + 1];

		printf("%-22s%s\n", "disk id:", guid_format(&in->disk_id, g));
	}
}

static void vhd_info_json_fields(const struct disk_info *in)
{
	char g[GUID_STR_LEN + 1];

	printf("\"format\": ");
	vhd_json_str(stdout, disk_format_name(in->format));
	printf(", \"type\": ");
	vhd_json_str(stdout, disk_type_name(in->type));
	printf(", \"virtual-size\": %" PRIu64 ", \"file-size\": %" PRIu64
	       ", \"allocated-bytes\": %" PRIu64 ", \"block-size\": %u"
	       ", \"logical-sector-size\": %u, \"physical-sector-size\": %u, \"log-state\": ",
	       in->virtual_size, in->file_size, in->allocated_bytes, in->block_size,
	       in->logical_sector_size, in->physical_sector_size);
	vhd_json_str(stdout, in->log_state);
	printf(", \"creator\": ");
	vhd_json_str(stdout, in->creator);
	printf(", \"disk-id\": ");
	vhd_json_str(stdout, guid_is_zero(&in->disk_id) ? "" : guid_format(&in->disk_id, g));
}

static int vhd_info(int argc, char **argv)
{
	static const struct option lo[] = {
		{"json", no_argument, NULL, 'j'},
		{"output", required_argument, NULL, 'o'},
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	enum disk_format fmt = DISK_FORMAT_AUTO;
	struct blockdev *bd, *cur;
	struct disk_info *in, pin;
	const struct disk_driver *drv;
	bool json = false;
	unsigned depth = 0;
	int c;

	optind = 0;
	while ((c = vhd_getopt(argc, argv, "info", "f:h", lo)) != -1) {
		switch (c) {
		case -2:
			return VIRIDIAN_EXIT_USAGE;
		case 'h':
			fputs(vhd_info_help, stdout);
			return VIRIDIAN_EXIT_OK;
		case 'j':
			json = true;
			break;
		case 'o': /* qemu-img's --output=json|human */
			if (!strcmp(optarg, "json"))
				json = true;
			else if (strcmp(optarg, "human"))
				return vhd_usage_err("info", "--output takes json or human");
			break;
		case 'f':
			if (vhd_parse_fmt("info", optarg, &fmt))
				return VIRIDIAN_EXIT_USAGE;
			break;
		default:
			return vhd_usage_err("info", "bad option");
		}
	}
	if (argc - optind != 1)
		return vhd_usage_err("info", "expected exactly one FILE");
	err_clear();
	if (disk_open(argv[optind], fmt, DISK_OPEN_RDONLY | DISK_OPEN_NO_REPLAY, &bd) < 0)
		return vhd_error(argv[optind]);
	in = calloc(1, sizeof(*in));
	if (!in || disk_info_get(bd, in) < 0) {
		free(in);
		blockdev_close(bd);
		return vhd_error(argv[optind]);
	}
	if (json) {
		printf("{\"filename\": ");
		vhd_json_str(stdout, argv[optind]);
		printf(", ");
		vhd_info_json_fields(in);
		printf(", \"parent-chain\": [");
	} else {
		vhd_info_human(argv[optind], in);
	}
	/* Walk the chain through the drivers' parent() (already open, read-only). */
	cur = bd;
	drv = disk_driver_get(in->format);
	while (drv && drv->parent && depth < DISK_MAX_CHAIN_DEPTH) {
		const char *ppath = depth == 0 ? in->parent_path : pin.parent_path;
		char pathcopy[sizeof(pin.parent_path)];
		struct blockdev *p = drv->parent(cur);

		if (!p)
			break;
		snprintf(pathcopy, sizeof(pathcopy), "%s", ppath);
		memset(&pin, 0, sizeof(pin));
		if (disk_info_get(p, &pin) < 0)
			break;
		if (json) {
			printf("%s{\"filename\": ", depth ? ", " : "");
			vhd_json_str(stdout, pathcopy);
			printf(", ");
			vhd_info_json_fields(&pin);
			printf("}");
		} else {
			char a[32];

			printf("%-22s%s (%s, %s, %s)\n", depth ? "" : "parent chain:", pathcopy,
			       disk_format_name(pin.format), disk_type_name(pin.type),
			       vhd_human(pin.virtual_size, a, sizeof(a)));
		}
		cur = p;
		drv = disk_driver_get(pin.format);
		depth++;
	}
	if (json)
		printf("]}\n");
	free(in);
	blockdev_close(bd);
	return VIRIDIAN_EXIT_OK;
}

/* ---- check ---- */

static const char vhd_check_help[] =
	"usage: " VHD_PROG " check [--repair] [-f FMT] FILE\n"
	"Checks the image's structures (and replays a dirty VHDX log with --repair).\n"
	"Exit 0 when clean, 1 when problems remain.\n";

static int vhd_check(int argc, char **argv)
{
	static const struct option lo[] = {
		{"repair", no_argument, NULL, 'r'},
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	enum disk_format fmt = DISK_FORMAT_AUTO;
	struct disk_check_result res;
	bool repair = false;
	int c, r;

	optind = 0;
	while ((c = vhd_getopt(argc, argv, "check", "rf:h", lo)) != -1) {
		switch (c) {
		case -2:
			return VIRIDIAN_EXIT_USAGE;
		case 'h':
			fputs(vhd_check_help, stdout);
			return VIRIDIAN_EXIT_OK;
		case 'r':
			repair = true;
			break;
		case 'f':
			if (vhd_parse_fmt("check", optarg, &fmt))
				return VIRIDIAN_EXIT_USAGE;
			break;
		default:
			return vhd_usage_err("check", "bad option");
		}
	}
	if (argc - optind != 1)
		return vhd_usage_err("check", "expected exactly one FILE");
	memset(&res, 0, sizeof(res));
	err_clear();
	r = disk_check(argv[optind], fmt, repair, &res, stdout);
	if (r < 0)
		return vhd_error(argv[optind]);
	if (res.repaired)
		printf("%u problem(s) repaired.\n", res.repaired);
	if (res.leaks)
		printf("%u leaked block(s) (allocated but unused; not an error).\n", res.leaks);
	if (res.errors) {
		res.first_error[sizeof(res.first_error) - 1] = '\0';
		vhd_fail_line("%s: %u error(s)%s%s%s", argv[optind], res.errors,
			      res.first_error[0] ? ", first: " : "", res.first_error,
			      repair ? "" : " (try --repair)");
		return VIRIDIAN_EXIT_ERROR;
	}
	printf("No errors were found on the image.\n");
	return VIRIDIAN_EXIT_OK;
}

/* ---- convert ---- */

static const char vhd_convert_help[] =
	"usage: " VHD_PROG " convert [-f FMT] -O raw|vhd|vhdx [--type fixed|dynamic]\n"
	"           [--block-size B] [--logical-sector 512|4096] [-p|-q] SRC DST\n"
	"Copies what SRC reads as (parents included) into a new DST; zero ranges stay\n"
	"unallocated. DST is replaced if it exists. A progress bar is shown on a TTY.\n";

static int vhd_convert(int argc, char **argv)
{
	static const struct option lo[] = {
		{"format", required_argument, NULL, 'f'},
		{"output-format", required_argument, NULL, 'O'},
		{"type", required_argument, NULL, 't'},
		{"block-size", required_argument, NULL, 'B'},
		{"logical-sector", required_argument, NULL, 'L'},
		{"physical-sector", required_argument, NULL, 'P'},
		{"progress", no_argument, NULL, 'p'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	enum disk_format ifmt = DISK_FORMAT_AUTO;
	struct disk_create_opts o = {.format = DISK_FORMAT_AUTO, .type = DISK_TYPE_DYNAMIC};
	struct disk_convert_opts cv = {0};
	struct vhd_progress prog = {.on = isatty(2), .last = -1};
	struct blockdev *src = NULL, *dst = NULL;
	struct disk_info sinfo;
	const char *sp, *dp;
	struct stat st;
	int c, r;

	optind = 0;
	while ((c = vhd_getopt(argc, argv, "convert", "f:O:t:B:L:P:pqh", lo)) != -1) {
		switch (c) {
		case -2:
			return VIRIDIAN_EXIT_USAGE;
		case 'h':
			fputs(vhd_convert_help, stdout);
			return VIRIDIAN_EXIT_OK;
		case 'f':
			if (vhd_parse_fmt("convert", optarg, &ifmt))
				return VIRIDIAN_EXIT_USAGE;
			break;
		case 'O':
			if (vhd_parse_fmt("convert", optarg, &o.format))
				return VIRIDIAN_EXIT_USAGE;
			break;
		case 't':
			if (disk_type_parse(optarg, &o.type) || o.type == DISK_TYPE_DIFFERENCING)
				return vhd_usage_err("convert", "--type must be fixed or dynamic");
			break;
		case 'B':
			if (vhd_parse_u32_size("convert", "block size", optarg, &o.block_size))
				return VIRIDIAN_EXIT_USAGE;
			break;
		case 'L':
			if (vhd_parse_u32_size("convert", "logical sector size", optarg,
					       &o.logical_sector_size))
				return VIRIDIAN_EXIT_USAGE;
			break;
		case 'P':
			if (vhd_parse_u32_size("convert", "physical sector size", optarg,
					       &o.physical_sector_size))
				return VIRIDIAN_EXIT_USAGE;
			break;
		case 'p':
			prog.on = true;
			break;
		case 'q':
			prog.on = false;
			break;
		default:
			return vhd_usage_err("convert", "bad option");
		}
	}
	if (o.format == DISK_FORMAT_AUTO)
		return vhd_usage_err("convert", "-O raw|vhd|vhdx is required");
	if (argc - optind != 2)
		return vhd_usage_err("convert", "expected SRC and DST");
	sp = argv[optind];
	dp = argv[optind + 1];
	err_clear();
	if (disk_open(sp, ifmt, DISK_OPEN_RDONLY, &src) < 0)
		return vhd_error(sp);
	if (disk_info_get(src, &sinfo) < 0) {
		blockdev_close(src);
		return vhd_error(sp);
	}
	if (!o.logical_sector_size && o.format == DISK_FORMAT_VHDX)
		o.logical_sector_size = src->logical_sector_size;
	o.size = src->size;
	if (o.format == DISK_FORMAT_RAW)
		o.type = DISK_TYPE_DYNAMIC; /* sparse file */
	if (lstat(dp, &st) == 0) {
		if (!S_ISREG(st.st_mode)) {
			blockdev_close(src);
			vhd_fail_line("%s: exists and is not a regular file; not replacing it", dp);
			return VIRIDIAN_EXIT_ERROR;
		}
		unlink(dp);
	}
	if (disk_create(dp, &o) < 0) {
		blockdev_close(src);
		return vhd_error(dp);
	}
	/* A target nobody uses before the final flush needs no barriers on the way. */
	if (disk_open(dp, o.format, DISK_OPEN_UNORDERED, &dst) < 0) {
		blockdev_close(src);
		return vhd_error(dp);
	}
	cv.src_mode = DISK_CONVERT_SRC_ALL;
	cv.target_zero = true; /* freshly created, no parent */
	cv.src_no_parent = sinfo.type != DISK_TYPE_DIFFERENCING;
	cv.flush = true;
	cv.depth = 4;
	cv.progress = vhd_progress_cb;
	cv.opaque = &prog;
	r = disk_convert(src, dst, &cv, NULL);
	vhd_progress_end(&prog);
	if (r < 0) {
		char msg[600];

		snprintf(msg, sizeof(msg), "%s", err_msg());
		blockdev_close(dst);
		blockdev_close(src);
		vhd_fail_line("converting %s to %s: %s", sp, dp, msg);
		return VIRIDIAN_EXIT_ERROR;
	}
	r = blockdev_close(dst);
	blockdev_close(src);
	if (r < 0)
		return vhd_error(dp);
	return VIRIDIAN_EXIT_OK;
}

/* ---- merge ---- */

static const char vhd_merge_help[] =
	"usage: " VHD_PROG " merge [--keep] CHILD\n"
	"Writes everything CHILD stores into its parent, then removes CHILD (like\n"
	"Hyper-V's Merge-VHD); --keep leaves it, although it no longer matches.\n";

static int vhd_merge(int argc, char **argv)
{
	static const struct option lo[] = {
		{"keep", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct vhd_progress prog = {.on = isatty(2), .last = -1};
	char parent[PATH_MAX] = "";
	bool keep = false;
	int c, r;

	optind = 0;
	while ((c = vhd_getopt(argc, argv, "merge", "kh", lo)) != -1) {
		switch (c) {
		case -2:
			return VIRIDIAN_EXIT_USAGE;
		case 'h':
			fputs(vhd_merge_help, stdout);
			return VIRIDIAN_EXIT_OK;
		case 'k':
			keep = true;
			break;
		default:
			return vhd_usage_err("merge", "bad option");
		}
	}
	if (argc - optind != 1)
		return vhd_usage_err("merge", "expected exactly one CHILD");
	err_clear();
	r = disk_merge_generic(argv[optind], vhd_progress_cb, &prog, parent);
	vhd_progress_end(&prog);
	if (r < 0)
		return vhd_error(argv[optind]);
	if (!keep && unlink(argv[optind])) {
		vhd_fail_line("%s: merged into %s but cannot remove it: %s", argv[optind], parent,
			      strerror(errno));
		return VIRIDIAN_EXIT_ERROR;
	}
	printf("Image merged into '%s'%s.\n", parent, keep ? "" : "; child removed");
	return VIRIDIAN_EXIT_OK;
}

/* ---- compact ---- */

static const char vhd_compact_help[] =
	"usage: " VHD_PROG " compact FILE\n"
	"Rewrites FILE without its zero blocks (same format, type, block size and\n"
	"parent), atomically.\n";

static int vhd_compact(int argc, char **argv)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct vhd_progress prog = {.on = isatty(2), .last = -1};
	uint64_t before = 0, after = 0;
	char a[32], b[32];
	int c, r;

	optind = 0;
	while ((c = vhd_getopt(argc, argv, "compact", "h", lo)) != -1) {
		switch (c) {
		case -2:
			return VIRIDIAN_EXIT_USAGE;
		case 'h':
			fputs(vhd_compact_help, stdout);
			return VIRIDIAN_EXIT_OK;
		default:
			return vhd_usage_err("compact", "bad option");
		}
	}
	if (argc - optind != 1)
		return vhd_usage_err("compact", "expected exactly one FILE");
	err_clear();
	r = disk_compact(argv[optind], vhd_progress_cb, &prog, &before, &after);
	vhd_progress_end(&prog);
	if (r < 0)
		return vhd_error(argv[optind]);
	printf("Compacted '%s': %s -> %s allocated.\n", argv[optind],
	       vhd_human(before, a, sizeof(a)), vhd_human(after, b, sizeof(b)));
	return VIRIDIAN_EXIT_OK;
}

/* ---- resize ---- */

static const char vhd_resize_help[] = "usage: " VHD_PROG " resize [-f FMT] FILE [+]SIZE\n"
				      "Grows the virtual size (shrinking is not supported).\n";

static int vhd_resize(int argc, char **argv)
{
	static const struct option lo[] = {
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	enum disk_format fmt = DISK_FORMAT_AUTO;
	const struct disk_driver *drv;
	struct blockdev *bd;
	uint64_t cur, nsize;
	const char *path, *ss;
	char msg[96];
	int c, r;

	optind = 0;
	while ((c = vhd_getopt(argc, argv, "resize", "f:h", lo)) != -1) {
		switch (c) {
		case -2:
			return VIRIDIAN_EXIT_USAGE;
		case 'h':
			fputs(vhd_resize_help, stdout);
			return VIRIDIAN_EXIT_OK;
		case 'f':
			if (vhd_parse_fmt("resize", optarg, &fmt))
				return VIRIDIAN_EXIT_USAGE;
			break;
		default:
			return vhd_usage_err("resize", "bad option");
		}
	}
	if (argc - optind != 2)
		return vhd_usage_err("resize", "expected FILE and SIZE");
	path = argv[optind];
	ss = argv[optind + 1];
	if (util_parse_size(ss[0] == '+' ? ss + 1 : ss, &nsize)) {
		snprintf(msg, sizeof(msg), "bad size '%.40s'", ss);
		return vhd_usage_err("resize", msg);
	}
	err_clear();
	if (disk_open(path, fmt, DISK_OPEN_RDONLY, &bd) < 0)
		return vhd_error(path);
	cur = bd->size;
	if (fmt == DISK_FORMAT_AUTO)
		disk_probe(path, &fmt);
	blockdev_close(bd);
	if (ss[0] == '+') {
		if (nsize > UINT64_MAX - cur)
			return vhd_usage_err("resize", "size overflows");
		nsize += cur;
	}
	if (nsize < cur) {
		vhd_fail_line("%s: shrinking from %" PRIu64 " to %" PRIu64
			      " bytes is not supported; only growing",
			      path, cur, nsize);
		return VIRIDIAN_EXIT_ERROR;
	}
	if (nsize == cur) {
		printf("Image already has %" PRIu64 " bytes.\n", cur);
		return VIRIDIAN_EXIT_OK;
	}
	drv = disk_driver_get(fmt);
	if (fmt == DISK_FORMAT_RAW && (!drv || !drv->resize)) {
		if (nsize % 512) {
			vhd_fail_line("%s: raw size must be a multiple of 512", path);
			return VIRIDIAN_EXIT_ERROR;
		}
		if (truncate(path, (off_t)nsize)) {
			vhd_fail_line("%s: cannot grow: %s", path, strerror(errno));
			return VIRIDIAN_EXIT_ERROR;
		}
	} else if (!drv || !drv->resize) {
		vhd_fail_line("%s: resizing %s images is not supported", path,
			      disk_format_name(fmt));
		return VIRIDIAN_EXIT_ERROR;
	} else {
		r = drv->resize(path, nsize);
		if (r < 0)
			return vhd_error(path);
	}
	printf("Image resized to %" PRIu64 " bytes.\n", nsize);
	return VIRIDIAN_EXIT_OK;
}

/* ---- dispatch ---- */

struct vhd_sub {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct vhd_sub vhd_subs[] = {
	{"create", vhd_create, "create an image (fixed, dynamic or differencing)"},
	{"info", vhd_info, "show an image's properties and parent chain"},
	{"check", vhd_check, "check (and repair) an image"},
	{"convert", vhd_convert, "copy an image into another format, sparse"},
	{"merge", vhd_merge, "merge a differencing image into its parent"},
	{"compact", vhd_compact, "drop zero blocks from an image"},
	{"resize", vhd_resize, "grow an image's virtual size"},
};

static void vhd_usage(FILE *f)
{
	fprintf(f, "usage: " VHD_PROG " <subcommand> [options]\n\nsubcommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(vhd_subs); i++)
		fprintf(f, "  %-8s %s\n", vhd_subs[i].name, vhd_subs[i].summary);
	fprintf(f, "\nFormats: raw, vhd (alias vpc), vhdx. '" VHD_PROG
		   " <subcommand> --help' describes one.\n");
}

int cmd_vhd(int argc, char **argv)
{
	if (argc < 2) {
		vhd_fail_line("missing subcommand; '" VHD_PROG " --help' lists them");
		return VIRIDIAN_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		vhd_usage(stdout);
		return VIRIDIAN_EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(vhd_subs); i++)
		if (!strcmp(argv[1], vhd_subs[i].name))
			return vhd_subs[i].fn(argc - 1, argv + 1);
	vhd_fail_line("unknown subcommand '%.64s'; '" VHD_PROG " --help' lists them", argv[1]);
	return VIRIDIAN_EXIT_USAGE;
}
