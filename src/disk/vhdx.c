// SPDX-License-Identifier: GPL-2.0-only
/*
 * VHDX driver: open/validate, read, write with block allocation through the
 * metadata log, differencing chains, create, info, check, merge, resize.
 * Layout and rules: spec/disk-formats.md §2.
 */
#include "disk/vhdx.h"

#include "lib/crc32c.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/falloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LAYER "vhdx"
#define PAGE 4096u

static const struct guid guid_bat = VHDX_GUID_BAT;
static const struct guid guid_metadata = VHDX_GUID_METADATA;
static const struct guid guid_file_params = VHDX_GUID_FILE_PARAMETERS;
static const struct guid guid_disk_size = VHDX_GUID_VIRTUAL_DISK_SIZE;
static const struct guid guid_page83 = VHDX_GUID_PAGE83;
static const struct guid guid_logical = VHDX_GUID_LOGICAL_SECTOR;
static const struct guid guid_physical = VHDX_GUID_PHYSICAL_SECTOR;
static const struct guid guid_locator = VHDX_GUID_PARENT_LOCATOR;
static const struct guid guid_locator_type = VHDX_GUID_PARENT_TYPE_VHDX;
static const struct guid guid_incomplete = VHDX_GUID_INCOMPLETE_FILE;

/* Replayed-but-not-written pages of a read-only open with a dirty log. */
struct vhdx_overlay {
	uint64_t off;
	uint64_t len;
	uint8_t *data; /* NULL: zeros */
};

struct vhdx {
	struct blockdev bd;
	int fd;
	char *path;
	pthread_mutex_t lock;

	struct vhdx_header hdr; /* current header */
	int hdr_slot; /* 0: at 64 KiB, 1: at 128 KiB */
	struct vhdx_log log;

	uint64_t bat_off, meta_off;
	uint32_t bat_len, meta_len;
	uint32_t block_size;
	uint32_t fp_flags;
	uint64_t chunk_ratio;
	uint64_t nblocks;
	uint64_t nbat;
	_Atomic uint64_t *bat;
	uint64_t vds_item_off; /* file offset of the virtual disk size item */
	struct guid page83;

	struct blockdev *parent;
	char parent_path[PATH_MAX];

	uint64_t file_end; /* next allocation, MiB aligned */
	uint64_t file_size; /* apparent size */
	atomic_bool session; /* FileWrite/DataWriteGuid renewed in this session */
	bool log_open; /* LogGuid set in this session */
	bool dirty_log; /* read-only NO_REPLAY open of a dirty image */
	bool unordered; /* DISK_OPEN_UNORDERED: data_sync() is a no-op until vhdx_flush() */
	struct vhdx_overlay *ov;
	size_t nov;
	char creator[32];
};

static struct vhdx *to_vhdx(struct blockdev *bd)
{
	return (struct vhdx *)bd;
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* ---- file access (overlay aware) ---- */

static int vhdx_pread(struct vhdx *v, void *buf, uint64_t len, uint64_t off)
{
	if (!v->nov)
		return util_pread_full(v->fd, buf, len, (off_t)off);
	/* With an overlay the file may be shorter than what the log extends it to. */
	uint64_t got = 0;
	while (got < len) {
		ssize_t n = pread(v->fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (uint64_t)n;
	}
	memset((uint8_t *)buf + got, 0, len - got);
	for (size_t i = 0; i < v->nov; i++) {
		const struct vhdx_overlay *o = &v->ov[i];
		uint64_t s = MAX(o->off, off), e = MIN(o->off + o->len, off + len);
		if (s >= e)
			continue;
		if (o->data)
			memcpy((uint8_t *)buf + (s - off), o->data + (s - o->off), e - s);
		else
			memset((uint8_t *)buf + (s - off), 0, e - s);
	}
	return 0;
}

static int sink_overlay_apply(void *opaque, uint64_t off, const uint8_t *page, uint64_t len)
{
	struct vhdx *v = opaque;
	struct vhdx_overlay *n = realloc(v->ov, (v->nov + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	v->ov = n;
	n[v->nov].off = off;
	n[v->nov].len = len;
	n[v->nov].data = NULL;
	if (page) {
		n[v->nov].data = malloc(len);
		if (!n[v->nov].data)
			return -ENOMEM;
		memcpy(n[v->nov].data, page, len);
	}
	v->nov++;
	return 0;
}

static int sink_overlay_extend(void *opaque, uint64_t size)
{
	struct vhdx *v = opaque;
	v->file_size = MAX(v->file_size, size);
	return 0;
}

static int sink_file_apply(void *opaque, uint64_t off, const uint8_t *page, uint64_t len)
{
	struct vhdx *v = opaque;
	if (page)
		return util_pwrite_full(v->fd, page, len, (off_t)off);
	static const uint8_t zeros[64 * 1024];
	while (len) {
		uint64_t n = MIN(len, sizeof(zeros));
		int r = util_pwrite_full(v->fd, zeros, n, (off_t)off);
		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

static int sink_file_extend(void *opaque, uint64_t size)
{
	struct vhdx *v = opaque;
	struct stat st;
	if (fstat(v->fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < size && ftruncate(v->fd, (off_t)size))
		return -errno;
	return 0;
}

/* ---- headers ---- */

static bool header_valid(struct vhdx_header *h)
{
	if (h->signature != VHDX_HEADER_SIGNATURE)
		return false;
	uint32_t stored = h->checksum;
	h->checksum = 0;
	uint32_t c = crc32c(0, h, sizeof(*h));
	h->checksum = stored;
	return c == stored;
}

static int header_write(struct vhdx *v, int slot, struct vhdx_header *h)
{
	h->checksum = 0;
	h->checksum = crc32c(0, h, sizeof(*h));
	int r = util_pwrite_full(v->fd, h, sizeof(*h), slot ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF);
	if (!r && fdatasync(v->fd))
		r = -errno;
	if (r)
		err_set("cannot update the VHDX header of %s: %s", v->path, strerror(-r));
	return r;
}

/*
 * Header update protocol: write the non-current slot with seq+1, flush, then
 * the other one, so both end up current. Fields come from v->hdr.
 */
static int header_update(struct vhdx *v)
{
	struct vhdx_header h = v->hdr;
	for (int i = 0; i < 2; i++) {
		h.sequence_number++;
		int slot = !v->hdr_slot;
		int r = header_write(v, slot, &h);
		if (r)
			return r;
		v->hdr_slot = slot;
		v->hdr = h;
	}
	return 0;
}

/* New File/DataWriteGuid (once per session) and, if want_log, a fresh LogGuid. */
static int session_begin(struct vhdx *v, bool want_log)
{
	if (atomic_load(&v->session) && (!want_log || v->log_open))
		return 0;
	if (!atomic_load(&v->session)) {
		guid_generate(&v->hdr.file_write_guid);
		guid_generate(&v->hdr.data_write_guid);
	}
	if (want_log && !v->log_open) {
		guid_generate(&v->hdr.log_guid);
		v->log.guid = v->hdr.log_guid;
		v->log.sequence = 0;
	}
	int r = header_update(v);
	if (r)
		return r;
	atomic_store(&v->session, true);
	if (want_log)
		v->log_open = true;
	return 0;
}

/* ---- BAT geometry ---- */

static uint64_t bat_index(const struct vhdx *v, uint64_t block)
{
	return block + block / v->chunk_ratio;
}

static uint64_t sb_index(const struct vhdx *v, uint64_t chunk)
{
	return chunk * (v->chunk_ratio + 1) + v->chunk_ratio;
}

static uint64_t bat_get(struct vhdx *v, uint64_t idx)
{
	return atomic_load_explicit(&v->bat[idx], memory_order_acquire);
}

/* ---- open ---- */

struct range {
	uint64_t off, len;
	const char *what;
};

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Error if any two ranges overlap; sorts r. */
static int ranges_check(struct range *r, size_t n, const char *path)
{
	qsort(r, n, sizeof(*r), range_cmp);
	for (size_t i = 1; i < n; i++) {
		if (r[i - 1].off + r[i - 1].len > r[i].off) {
			err_set("%s: VHDX %s at %" PRIu64 " overlaps %s at %" PRIu64
				"; the image is corrupt",
				path, r[i - 1].what, r[i - 1].off, r[i].what, r[i].off);
			return -EINVAL;
		}
	}
	return 0;
}

static int open_headers(struct vhdx *v)
{
	struct vhdx_header h[2];
	bool ok[2];
	char id[8];

	if (v->file_size < VHDX_HEADER_SECTION) {
		err_set("%s: file too small for a VHDX image (truncated?)", v->path);
		return -EINVAL;
	}
	int r = vhdx_pread(v, id, sizeof(id), 0);
	if (!r && memcmp(id, VHDX_FILE_SIGNATURE, 8)) {
		err_set("%s: not a VHDX image (no 'vhdxfile' signature)", v->path);
		return -EINVAL;
	}
	for (int i = 0; i < 2 && !r; i++) {
		r = vhdx_pread(v, &h[i], sizeof(h[i]), i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF);
		ok[i] = !r && header_valid(&h[i]);
	}
	if (r) {
		err_set("%s: cannot read VHDX headers: %s", v->path, strerror(-r));
		return r;
	}
	if (!ok[0] && !ok[1]) {
		err_set("%s: both VHDX headers are corrupt (bad signature or checksum)", v->path);
		return -EINVAL;
	}
	int cur;
	if (ok[0] && ok[1]) {
		if (h[0].sequence_number == h[1].sequence_number) {
			if (memcmp(&h[0], &h[1], sizeof(h[0]))) {
				err_set("%s: the two VHDX headers have the same sequence number but "
					"differ; the image is corrupt",
					v->path);
				return -EINVAL;
			}
			cur = 0;
		} else {
			cur = h[1].sequence_number > h[0].sequence_number;
		}
	} else {
		cur = ok[1];
	}
	v->hdr = h[cur];
	v->hdr_slot = cur;
	if (v->hdr.version != 1) {
		err_set("%s: unsupported VHDX version %u", v->path, v->hdr.version);
		return -ENOTSUP;
	}
	if (v->hdr.log_version != 0 && !guid_is_zero(&v->hdr.log_guid)) {
		err_set("%s: unsupported VHDX log version %u", v->path, v->hdr.log_version);
		return -ENOTSUP;
	}
	uint64_t lo = v->hdr.log_offset, ll = v->hdr.log_length;
	if (ll % VHDX_MIB || lo % VHDX_MIB || lo < VHDX_HEADER_SECTION ||
	    ll > VHDX_MAX_LOG_LENGTH || (ll && (lo > v->file_size || ll > v->file_size - lo)) ||
	    (ll == 0 && !guid_is_zero(&v->hdr.log_guid))) {
		err_set("%s: VHDX log location (offset %" PRIu64 ", length %" PRIu64
			") is invalid; the image is corrupt or truncated",
			v->path, lo, ll);
		return -EINVAL;
	}
	v->log.fd = v->fd;
	v->log.unordered = v->unordered;
	v->log.offset = lo;
	v->log.length = (uint32_t)ll;
	v->log.guid = v->hdr.log_guid;
	return 0;
}

static int open_log(struct vhdx *v, unsigned flags)
{
	if (guid_is_zero(&v->hdr.log_guid))
		return 0;
	bool found = false;
	struct vhdx_log_sink sink;
	int r;

	if (flags & DISK_OPEN_RDONLY) {
		sink = (struct vhdx_log_sink){sink_overlay_apply, sink_overlay_extend, v};
		r = vhdx_log_replay(&v->log, v->file_size, &sink, &found);
		if (r)
			return r;
		if (found && !(flags & DISK_OPEN_NO_REPLAY)) {
			err_set("%s: image has a dirty log; open it read-write once or run "
				"'viridian vhd check --repair FILE'",
				v->path);
			return -EBUSY;
		}
		v->dirty_log = found;
		return 0;
	}
	/* Check first with an overlay so a corrupt log changes nothing. */
	sink = (struct vhdx_log_sink){sink_overlay_apply, sink_overlay_extend, v};
	r = vhdx_log_replay(&v->log, v->file_size, &sink, &found);
	for (size_t i = 0; i < v->nov; i++)
		free(v->ov[i].data);
	free(v->ov);
	v->ov = NULL;
	v->nov = 0;
	if (r)
		return r;
	if (found) {
		/* New FileWriteGuid before anything else is modified. */
		guid_generate(&v->hdr.file_write_guid);
		r = header_update(v);
		if (r)
			return r;
		sink = (struct vhdx_log_sink){sink_file_apply, sink_file_extend, v};
		r = vhdx_log_replay(&v->log, v->file_size, &sink, &found);
		if (!r && fdatasync(v->fd))
			r = -errno;
		if (r) {
			err_prefix("%s: VHDX log replay failed", v->path);
			return r;
		}
		log_info(LAYER, "%s: replayed the VHDX log", v->path);
		struct stat st;
		if (!fstat(v->fd, &st))
			v->file_size = (uint64_t)st.st_size;
	}
	memset(&v->hdr.log_guid, 0, sizeof(v->hdr.log_guid));
	v->log.guid = v->hdr.log_guid;
	return header_update(v);
}

static int open_regions(struct vhdx *v, struct range *rg, size_t *nrg)
{
	uint8_t *t = malloc(VHDX_REGION_TABLE_SIZE);
	int r = -EINVAL;
	bool have_bat = false, have_meta = false;

	if (!t)
		return -ENOMEM;
	int used = -1;
	for (int i = 0; i < 2; i++) {
		r = vhdx_pread(v, t, VHDX_REGION_TABLE_SIZE,
			       i ? VHDX_REGION2_OFF : VHDX_REGION1_OFF);
		if (r)
			goto out;
		struct vhdx_region_table_header *h = (void *)t;
		uint32_t stored = h->checksum;
		h->checksum = 0;
		if (h->signature == VHDX_REGION_SIGNATURE &&
		    crc32c(0, t, VHDX_REGION_TABLE_SIZE) == stored) {
			used = i;
			break;
		}
	}
	r = -EINVAL;
	if (used < 0) {
		err_set("%s: both VHDX region tables are corrupt (bad signature or checksum)",
			v->path);
		goto out;
	}
	struct vhdx_region_table_header *h = (void *)t;
	if (h->entry_count > VHDX_MAX_REGION_ENTRIES) {
		err_set("%s: VHDX region table has %u entries (max %u)", v->path, h->entry_count,
			VHDX_MAX_REGION_ENTRIES);
		goto out;
	}
	for (uint32_t i = 0; i < h->entry_count; i++) {
		struct vhdx_region_entry *e = (void *)(t + 16 + 32 * i);
		char gs[GUID_STR_LEN + 1];
		bool is_bat = guid_equal(&e->guid, &guid_bat);
		bool is_meta = guid_equal(&e->guid, &guid_metadata);
		if (!is_bat && !is_meta) {
			if (e->flags & VHDX_REGION_REQUIRED) {
				err_set("%s: VHDX image needs region {%s} which this version does not "
					"support",
					v->path, guid_format(&e->guid, gs));
				r = -ENOTSUP;
				goto out;
			}
		}
		if (e->file_offset % VHDX_MIB || e->file_offset < VHDX_HEADER_SECTION ||
		    e->length % VHDX_MIB || !e->length || e->file_offset > v->file_size ||
		    e->length > v->file_size - e->file_offset) {
			err_set("%s: VHDX region {%s} (offset %" PRIu64
				", length %u) is misaligned "
				"or outside the file",
				v->path, guid_format(&e->guid, gs), e->file_offset, e->length);
			goto out;
		}
		if ((is_bat && have_bat) || (is_meta && have_meta)) {
			err_set("%s: VHDX region table lists a region twice", v->path);
			goto out;
		}
		if (is_bat) {
			have_bat = true;
			v->bat_off = e->file_offset;
			v->bat_len = e->length;
		} else if (is_meta) {
			have_meta = true;
			v->meta_off = e->file_offset;
			v->meta_len = e->length;
		}
		rg[(*nrg)++] = (struct range){e->file_offset, e->length,
					      is_bat	? "BAT"
					      : is_meta ? "metadata"
							: "region"};
	}
	if (!have_bat || !have_meta) {
		err_set("%s: VHDX region table lacks the %s region", v->path,
			have_bat ? "metadata" : "BAT");
		goto out;
	}
	r = 0;
out:
	free(t);
	return r;
}

static int utf16_to_utf8(const uint16_t *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = s[i];
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < n && s[i + 1] >= 0xdc00 &&
		    s[i + 1] < 0xe000) {
			c = 0x10000 + ((c - 0xd800) << 10) + (s[i + 1] - 0xdc00);
			i++;
		}
		if (c == 0 || o + 5 > outlen)
			return -1;
		if (c < 0x80) {
			out[o++] = (char)c;
		} else if (c < 0x800) {
			out[o++] = (char)(0xc0 | (c >> 6));
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xe0 | (c >> 12));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else {
			out[o++] = (char)(0xf0 | (c >> 18));
			out[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		}
	}
	out[o] = 0;
	return 0;
}

/* ASCII/UTF-8 → UTF-16LE (BMP only; paths we write). Returns units written. */
static size_t utf8_to_utf16(const char *s, uint16_t *out, size_t max)
{
	size_t n = 0;
	const unsigned char *p = (const unsigned char *)s;
	while (*p && n < max) {
		uint32_t c = *p++;
		if (c >= 0xe0 && p[0] && p[1]) {
			c = ((c & 0x0f) << 12) | ((p[0] & 0x3f) << 6) | (p[1] & 0x3f);
			p += 2;
		} else if (c >= 0xc0 && p[0]) {
			c = ((c & 0x1f) << 6) | (p[0] & 0x3f);
			p++;
		}
		out[n++] = (uint16_t)c;
	}
	return n;
}

struct locator {
	struct guid linkage, linkage2;
	bool have_linkage, have_linkage2;
	char rel[PATH_MAX], vol[PATH_MAX], abs[PATH_MAX];
};

/* Win32 path → POSIX: strip \\?\ and turn separators around. */
static void win_to_posix(char *p)
{
	if (!strncmp(p, "\\\\?\\", 4))
		memmove(p, p + 4, strlen(p + 4) + 1);
	for (char *c = p; *c; c++)
		if (*c == '\\')
			*c = '/';
}

static int parse_locator(struct vhdx *v, const uint8_t *item, uint32_t len, struct locator *loc)
{
	const struct vhdx_parent_locator_header *h = (const void *)item;
	memset(loc, 0, sizeof(*loc));
	if (len < sizeof(*h) || !guid_equal(&h->locator_type, &guid_locator_type)) {
		err_set("%s: VHDX parent locator has an unknown type", v->path);
		return -EINVAL;
	}
	if (sizeof(*h) + (uint64_t)h->key_value_count * 12 > len) {
		err_set("%s: VHDX parent locator entries exceed the item", v->path);
		return -EINVAL;
	}
	for (unsigned i = 0; i < h->key_value_count; i++) {
		struct vhdx_parent_locator_entry e;
		memcpy(&e, item + sizeof(*h) + 12 * i, sizeof(e));
		if (!e.key_offset || !e.value_offset || e.key_length % 2 || e.value_length % 2 ||
		    (uint64_t)e.key_offset + e.key_length > len ||
		    (uint64_t)e.value_offset + e.value_length > len) {
			err_set("%s: VHDX parent locator entry %u is out of bounds", v->path, i);
			return -EINVAL;
		}
		uint16_t kbuf[64], vbuf[PATH_MAX / 4];
		char key[256], val[PATH_MAX];
		if (e.key_length / 2 > ARRAY_SIZE(kbuf) || e.value_length / 2 > ARRAY_SIZE(vbuf))
			continue; /* longer than anything we use */
		memcpy(kbuf, item + e.key_offset, e.key_length);
		memcpy(vbuf, item + e.value_offset, e.value_length);
		if (utf16_to_utf8(kbuf, e.key_length / 2, key, sizeof(key)) ||
		    utf16_to_utf8(vbuf, e.value_length / 2, val, sizeof(val)))
			continue;
		if (!strcmp(key, "parent_linkage"))
			loc->have_linkage = !guid_parse(val, &loc->linkage);
		else if (!strcmp(key, "parent_linkage2"))
			loc->have_linkage2 = !guid_parse(val, &loc->linkage2);
		else if (!strcmp(key, "relative_path"))
			snprintf(loc->rel, sizeof(loc->rel), "%s", val);
		else if (!strcmp(key, "volume_path"))
			snprintf(loc->vol, sizeof(loc->vol), "%s", val);
		else if (!strcmp(key, "absolute_win32_path"))
			snprintf(loc->abs, sizeof(loc->abs), "%s", val);
	}
	if (!loc->have_linkage) {
		err_set("%s: VHDX parent locator has no valid parent_linkage", v->path);
		return -EINVAL;
	}
	win_to_posix(loc->rel);
	win_to_posix(loc->abs);
	if (!loc->rel[0] && !loc->abs[0]) {
		err_set("%s: VHDX parent locator names no usable parent path", v->path);
		return -EINVAL;
	}
	return 0;
}

struct md_item {
	const struct guid *id;
	uint32_t min_len;
	uint32_t max_len;
	bool required;
	uint64_t off;
	uint32_t len;
	bool found;
};

static int open_metadata(struct vhdx *v, struct locator *loc, bool *have_loc)
{
	uint8_t *t = malloc(VHDX_METADATA_TABLE_SIZE);
	int r = -EINVAL;
	struct md_item items[] = {
		{&guid_file_params, 8, 8, true, 0, 0, false},
		{&guid_disk_size, 8, 8, true, 0, 0, false},
		{&guid_page83, 16, 16, false, 0, 0, false},
		{&guid_logical, 4, 4, true, 0, 0, false},
		{&guid_physical, 4, 4, false, 0, 0, false},
		{&guid_locator, 20, VHDX_MAX_METADATA_ITEM, false, 0, 0, false},
	};
	struct range *rg = NULL;
	size_t nrg = 0;
	uint8_t *lbuf = NULL;

	*have_loc = false;
	if (!t)
		return -ENOMEM;
	r = vhdx_pread(v, t, VHDX_METADATA_TABLE_SIZE, v->meta_off);
	if (r)
		goto out;
	r = -EINVAL;
	struct vhdx_metadata_table_header *h = (void *)t;
	if (memcmp(h->signature, VHDX_METADATA_SIGNATURE, 8)) {
		err_set("%s: VHDX metadata table signature is wrong; the image is corrupt",
			v->path);
		goto out;
	}
	if (h->entry_count > VHDX_MAX_METADATA_ENTRIES) {
		err_set("%s: VHDX metadata table has %u entries (max %u)", v->path, h->entry_count,
			VHDX_MAX_METADATA_ENTRIES);
		goto out;
	}
	rg = calloc(h->entry_count + 1u, sizeof(*rg));
	if (!rg) {
		r = -ENOMEM;
		goto out;
	}
	unsigned nuser = 0;
	for (unsigned i = 0; i < h->entry_count; i++) {
		struct vhdx_metadata_entry *e = (void *)(t + 32 + 32 * i);
		char gs[GUID_STR_LEN + 1];
		if (e->length == 0 && e->offset != 0) {
			err_set("%s: VHDX metadata item {%s} is empty but has an offset", v->path,
				guid_format(&e->item_id, gs));
			goto out;
		}
		if (e->length &&
		    (e->offset < VHDX_METADATA_TABLE_SIZE || e->length > VHDX_MAX_METADATA_ITEM ||
		     (uint64_t)e->offset + e->length > v->meta_len)) {
			err_set("%s: VHDX metadata item {%s} lies outside the metadata region",
				v->path, guid_format(&e->item_id, gs));
			goto out;
		}
		if (e->length)
			rg[nrg++] = (struct range){e->offset, e->length, "metadata item"};
		if (e->flags & VHDX_META_IS_USER) {
			if (++nuser > VHDX_MAX_USER_METADATA) {
				err_set("%s: too many VHDX user metadata items", v->path);
				goto out;
			}
			continue;
		}
		size_t k;
		for (k = 0; k < ARRAY_SIZE(items); k++)
			if (guid_equal(&e->item_id, items[k].id))
				break;
		if (guid_equal(&e->item_id, &guid_incomplete)) {
			err_set("%s: VHDX image is marked as still being created (incomplete file)",
				v->path);
			goto out;
		}
		if (k == ARRAY_SIZE(items)) {
			if (e->flags & VHDX_META_IS_REQUIRED) {
				err_set("%s: VHDX image needs metadata item {%s} which this version "
					"does not support",
					v->path, guid_format(&e->item_id, gs));
				r = -ENOTSUP;
				goto out;
			}
			continue; /* preserved untouched */
		}
		if (items[k].found) {
			err_set("%s: VHDX metadata item {%s} appears twice", v->path,
				guid_format(&e->item_id, gs));
			goto out;
		}
		if (e->length < items[k].min_len || e->length > items[k].max_len) {
			err_set("%s: VHDX metadata item {%s} has a bad length %u", v->path,
				guid_format(&e->item_id, gs), e->length);
			goto out;
		}
		items[k].found = true;
		items[k].off = v->meta_off + e->offset;
		items[k].len = e->length;
	}
	r = ranges_check(rg, nrg, v->path);
	if (r)
		goto out;
	r = -EINVAL;
	for (size_t k = 0; k < ARRAY_SIZE(items); k++) {
		if (items[k].required && !items[k].found) {
			err_set("%s: VHDX metadata lacks a required system item", v->path);
			goto out;
		}
	}
	struct vhdx_file_parameters fp;
	uint64_t vds;
	uint32_t lss, pss = 512;
	if ((r = vhdx_pread(v, &fp, 8, items[0].off)) ||
	    (r = vhdx_pread(v, &vds, 8, items[1].off)) ||
	    (r = vhdx_pread(v, &lss, 4, items[3].off)) ||
	    (items[4].found && (r = vhdx_pread(v, &pss, 4, items[4].off))) ||
	    (items[2].found && (r = vhdx_pread(v, &v->page83, 16, items[2].off))))
		goto out;
	r = -EINVAL;
	if (!is_pow2(fp.block_size) || fp.block_size < VHDX_MIN_BLOCK_SIZE ||
	    fp.block_size > VHDX_MAX_BLOCK_SIZE) {
		err_set("%s: VHDX block size %u is not a power of two between 1 MiB and 256 MiB",
			v->path, fp.block_size);
		goto out;
	}
	if (lss != 512 && lss != 4096) {
		err_set("%s: VHDX logical sector size %u is not 512 or 4096", v->path, lss);
		goto out;
	}
	if (pss != 512 && pss != 4096) {
		err_set("%s: VHDX physical sector size %u is not 512 or 4096", v->path, pss);
		goto out;
	}
	if (!vds || vds % lss || vds > VHDX_MAX_DISK_SIZE) {
		err_set("%s: VHDX virtual disk size %" PRIu64
			" is zero, not a sector multiple or above 64 TiB",
			v->path, vds);
		goto out;
	}
	v->block_size = fp.block_size;
	v->fp_flags = fp.flags;
	v->bd.size = vds;
	v->bd.logical_sector_size = lss;
	v->bd.physical_sector_size = MAX(pss, lss);
	v->vds_item_off = items[1].off;
	bool has_parent = fp.flags & VHDX_PARAM_HAS_PARENT;
	if (has_parent != items[5].found) {
		err_set("%s: VHDX %s", v->path,
			has_parent ? "differencing image has no parent locator"
				   : "image has a parent locator but is not differencing");
		goto out;
	}
	if (has_parent) {
		lbuf = malloc(items[5].len);
		if (!lbuf) {
			r = -ENOMEM;
			goto out;
		}
		r = vhdx_pread(v, lbuf, items[5].len, items[5].off);
		if (!r)
			r = parse_locator(v, lbuf, items[5].len, loc);
		if (r)
			goto out;
		*have_loc = true;
	}
	r = 0;
out:
	free(lbuf);
	free(rg);
	free(t);
	return r;
}

static int open_bat(struct vhdx *v, struct range *fixed, size_t nfixed)
{
	bool diff = v->fp_flags & VHDX_PARAM_HAS_PARENT;
	uint64_t bs = v->block_size;
	v->chunk_ratio = (8ull * VHDX_MIB * v->bd.logical_sector_size) / bs;
	v->nblocks = DIV_ROUND_UP(v->bd.size, bs);
	uint64_t nsb = DIV_ROUND_UP(v->nblocks, v->chunk_ratio);
	v->nbat =
		diff ? nsb * (v->chunk_ratio + 1) : v->nblocks + (v->nblocks - 1) / v->chunk_ratio;
	if (v->nbat > VHDX_MAX_BAT_ENTRIES || v->nbat * 8 > v->bat_len) {
		err_set("%s: VHDX BAT region (%u bytes) is too small for %" PRIu64 " entries",
			v->path, v->bat_len, v->nbat);
		return -EINVAL;
	}
	v->bat = malloc(v->nbat * 8);
	if (!v->bat)
		return -ENOMEM;
	int r = vhdx_pread(v, (void *)v->bat, v->nbat * 8, v->bat_off);
	if (r) {
		err_set("%s: cannot read the VHDX BAT: %s", v->path, strerror(-r));
		return r;
	}
	/* Grown on demand: sized by what is allocated, not by what the file claims. */
	size_t cap = nfixed + 64, n = nfixed;
	struct range *rg = malloc(cap * sizeof(*rg));
	if (!rg)
		return -ENOMEM;
	memcpy(rg, fixed, nfixed * sizeof(*rg));
	r = -EINVAL;
	for (uint64_t i = 0; i < v->nbat; i++) {
		uint64_t e = bat_get(v, i);
		unsigned st = e & VHDX_BAT_STATE_MASK;
		uint64_t off = e & VHDX_BAT_OFFSET_MASK;
		bool is_sb = (i + 1) % (v->chunk_ratio + 1) == 0;
		uint64_t len = is_sb ? VHDX_SB_BLOCK_SIZE : bs;
		if (is_sb) {
			if (st != VHDX_SB_NOT_PRESENT && !(diff && st == VHDX_SB_PRESENT)) {
				if (!diff)
					continue; /* unused in non-differencing files; ignored */
				err_set("%s: VHDX sector bitmap entry %" PRIu64 " has bad state %u",
					v->path, i, st);
				goto out;
			}
			if (st == VHDX_SB_NOT_PRESENT)
				continue;
		} else {
			if (st == 4 || (st == VHDX_PAYLOAD_PARTIALLY_PRESENT && !diff)) {
				err_set("%s: VHDX BAT entry %" PRIu64 " has invalid state %u",
					v->path, i, st);
				goto out;
			}
			if (st != VHDX_PAYLOAD_FULLY_PRESENT &&
			    st != VHDX_PAYLOAD_PARTIALLY_PRESENT)
				continue;
		}
		if (off < VHDX_HEADER_SECTION || off > v->file_size || len > v->file_size - off) {
			err_set("%s: VHDX BAT entry %" PRIu64 " points past the end of the file "
				"(offset %" PRIu64 "); the image is truncated or corrupt",
				v->path, i, off);
			goto out;
		}
		if (n == cap) {
			struct range *g = realloc(rg, 2 * cap * sizeof(*rg));
			if (!g) {
				r = -ENOMEM;
				goto out;
			}
			rg = g;
			cap *= 2;
		}
		rg[n++] = (struct range){off, len, is_sb ? "sector bitmap" : "payload block"};
	}
	r = ranges_check(rg, n, v->path);
	if (!r && n)
		v->file_end = MAX(v->file_end, rg[n - 1].off + rg[n - 1].len);
out:
	free(rg);
	return r;
}

static int vhdx_open_parent(struct vhdx *v, const struct locator *loc)
{
	const char *cands[3];
	unsigned n = 0;
	if (loc->rel[0])
		cands[n++] = loc->rel;
	if (loc->abs[0])
		cands[n++] = loc->abs;
	int r = disk_open_parent(v->path, cands, n, &v->parent, v->parent_path);
	if (r)
		return r;
	struct blockdev *p = v->parent;
	if (!p->format || strcmp(p->format, "vhdx")) {
		err_set("%s: VHDX parent %s is not a VHDX image", v->path, v->parent_path);
		return -EINVAL;
	}
	struct vhdx *pv = to_vhdx(p);
	if (!guid_equal(&pv->hdr.data_write_guid, &loc->linkage) &&
	    !(loc->have_linkage2 && guid_equal(&pv->hdr.data_write_guid, &loc->linkage2))) {
		err_set("%s: parent %s was modified after this differencing image was created "
			"(DataWriteGuid does not match parent_linkage)",
			v->path, v->parent_path);
		return -EINVAL;
	}
	if (p->logical_sector_size != v->bd.logical_sector_size) {
		err_set("%s: parent %s has a different logical sector size", v->path,
			v->parent_path);
		return -EINVAL;
	}
	return 0;
}

static const struct blockdev_ops vhdx_ops;

static void vhdx_free(struct vhdx *v)
{
	if (!v)
		return;
	if (v->parent)
		blockdev_close(v->parent);
	if (v->fd >= 0)
		close(v->fd);
	for (size_t i = 0; i < v->nov; i++)
		free(v->ov[i].data);
	free(v->ov);
	free((void *)v->bat);
	free(v->path);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

static int vhdx_open(const char *path, unsigned flags, struct blockdev **out)
{
	struct vhdx *v = calloc(1, sizeof(*v));
	int r;
	if (!v)
		return -ENOMEM;
	pthread_mutex_init(&v->lock, NULL);
	v->fd = -1;
	v->path = strdup(path);
	if (flags & DISK_OPEN_NO_REPLAY)
		flags |= DISK_OPEN_RDONLY;
	bool ro = flags & DISK_OPEN_RDONLY;
	v->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (v->fd < 0 || !v->path) {
		r = v->path ? -errno : -ENOMEM;
		err_set("cannot open %s: %s", path, strerror(-r));
		goto fail;
	}
	struct stat st;
	if (fstat(v->fd, &st)) {
		r = -errno;
		goto fail;
	}
	v->file_size = (uint64_t)st.st_size;
	v->bd.ops = &vhdx_ops;
	v->bd.format = "vhdx";
	v->bd.read_only = ro;
	v->bd.data_fd = v->fd;
	v->unordered = !ro && (flags & DISK_OPEN_UNORDERED);

	r = open_headers(v);
	if (!r)
		r = open_log(v, flags);
	if (r)
		goto fail;
	struct range fixed[VHDX_MAX_REGION_ENTRIES + 2];
	size_t nfixed = 0;
	fixed[nfixed++] = (struct range){0, VHDX_HEADER_SECTION, "header section"};
	if (v->log.length)
		fixed[nfixed++] = (struct range){v->log.offset, v->log.length, "log"};
	r = open_regions(v, fixed, &nfixed);
	if (r)
		goto fail;
	v->file_end = 0;
	for (size_t i = 0; i < nfixed; i++)
		v->file_end = MAX(v->file_end, fixed[i].off + fixed[i].len);
	r = ranges_check(fixed, nfixed, path);
	if (r)
		goto fail;
	struct locator loc;
	bool have_loc;
	r = open_metadata(v, &loc, &have_loc);
	if (!r)
		r = open_bat(v, fixed, nfixed);
	if (!r && have_loc)
		r = vhdx_open_parent(v, &loc);
	if (r)
		goto fail;
	v->file_end = ALIGN_UP(MAX(v->file_end, v->file_size), VHDX_MIB);
	if (v->nov)
		v->bd.data_fd = -1; /* the file alone is not the truth: no fast path */
	uint16_t cr[sizeof(v->creator) - 1];
	if (!vhdx_pread(v, cr, sizeof(cr), 8)) {
		for (size_t i = 0; i < ARRAY_SIZE(cr) && cr[i]; i++)
			v->creator[i] = cr[i] >= 0x20 && cr[i] < 0x7f ? (char)cr[i] : '?';
	}
	*out = &v->bd;
	return 0;
fail:
	vhdx_free(v);
	return r;
}

/* ---- read ---- */

static int read_parent(struct vhdx *v, uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t n = 0;
	if (v->parent && off < v->parent->size) {
		n = MIN(len, v->parent->size - off);
		int r = blockdev_read(v->parent, buf, n, off);
		if (r)
			return r;
	}
	memset(buf + n, 0, len - n);
	return 0;
}

/* Sector-bitmap bits for [off, off+n) of block; *bits[0] bit (first % 8) is the first sector. */
static int sb_bits_read(struct vhdx *v, uint64_t block, uint64_t off, uint64_t n, uint8_t **bits,
			uint64_t *first)
{
	uint32_t lss = v->bd.logical_sector_size;
	uint64_t sbe = bat_get(v, sb_index(v, block / v->chunk_ratio));
	if ((sbe & VHDX_BAT_STATE_MASK) != VHDX_SB_PRESENT) {
		err_set("%s: VHDX block %" PRIu64 " is partially present but its sector bitmap "
			"is missing; the image is corrupt",
			v->path, block);
		return -EIO;
	}
	uint64_t s0 =
		(block % v->chunk_ratio) * (v->block_size / lss) + (off % v->block_size) / lss;
	uint64_t b0 = s0 / 8, b1 = (s0 + n / lss + 7) / 8;
	*bits = malloc(b1 - b0);
	if (!*bits)
		return -ENOMEM;
	*first = s0 % 8;
	int r = vhdx_pread(v, *bits, b1 - b0, (sbe & VHDX_BAT_OFFSET_MASK) + b0);
	if (r) {
		free(*bits);
		*bits = NULL;
	}
	return r;
}

static bool bit_get(const uint8_t *bits, uint64_t i)
{
	return bits[i / 8] >> (i % 8) & 1;
}

static int read_block(struct vhdx *v, uint8_t *buf, uint64_t n, uint64_t off)
{
	uint64_t block = off / v->block_size, inblk = off % v->block_size;
	uint64_t e = bat_get(v, bat_index(v, block));
	uint64_t boff = (e & VHDX_BAT_OFFSET_MASK) + inblk;
	bool diff = v->fp_flags & VHDX_PARAM_HAS_PARENT;

	switch (e & VHDX_BAT_STATE_MASK) {
	case VHDX_PAYLOAD_FULLY_PRESENT:
		return vhdx_pread(v, buf, n, boff);
	case VHDX_PAYLOAD_NOT_PRESENT:
		if (diff)
			return read_parent(v, buf, n, off);
		memset(buf, 0, n);
		return 0;
	case VHDX_PAYLOAD_PARTIALLY_PRESENT: {
		uint8_t *bits;
		uint64_t first, lss = v->bd.logical_sector_size, ns = n / lss;
		int r = sb_bits_read(v, block, off, n, &bits, &first);
		for (uint64_t i = 0; !r && i < ns;) {
			bool set = bit_get(bits, first + i);
			uint64_t j = i + 1;
			while (j < ns && bit_get(bits, first + j) == set)
				j++;
			if (set)
				r = vhdx_pread(v, buf + i * lss, (j - i) * lss, boff + i * lss);
			else
				r = read_parent(v, buf + i * lss, (j - i) * lss, off + i * lss);
			i = j;
		}
		free(bits);
		return r;
	}
	default: /* UNDEFINED, ZERO, UNMAPPED: zeros (mask the parent) */
		memset(buf, 0, n);
		return 0;
	}
}

static int read_range(struct vhdx *v, uint8_t *buf, uint64_t len, uint64_t off)
{
	while (len) {
		uint64_t n = MIN(len, v->block_size - off % v->block_size);
		int r = read_block(v, buf, n, off);
		if (r)
			return r;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static bool iov_aligned(const struct iovec *iov, int iovcnt, uint32_t lss, uint64_t *total)
{
	bool ok = true;
	*total = 0;
	for (int i = 0; i < iovcnt; i++) {
		ok &= iov[i].iov_len % lss == 0;
		*total += iov[i].iov_len;
	}
	return ok;
}

static int vhdx_readv(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset)
{
	struct vhdx *v = to_vhdx(bd);
	uint64_t total;
	if (iov_aligned(iov, iovcnt, bd->logical_sector_size, &total)) {
		for (int i = 0; i < iovcnt; i++) {
			int r = read_range(v, iov[i].iov_base, iov[i].iov_len, offset);
			if (r)
				return r;
			offset += iov[i].iov_len;
		}
		return 0;
	}
	uint8_t *b = malloc(total ? total : 1);
	if (!b)
		return -ENOMEM;
	int r = read_range(v, b, total, offset);
	for (int i = 0, o = 0; !r && i < iovcnt; o += iov[i].iov_len, i++)
		memcpy(iov[i].iov_base, b + o, iov[i].iov_len);
	free(b);
	return r;
}

/* ---- metadata updates through the log ---- */

struct bat_update {
	uint64_t idx;
	uint64_t val;
};

struct page_set {
	struct vhdx_log_page pages[VHDX_LOG_MAX_PAGES];
	uint8_t *bufs[VHDX_LOG_MAX_PAGES];
	unsigned n;
};

static uint8_t *page_get(struct vhdx *v, struct page_set *ps, uint64_t off, bool fresh_zero,
			 int *err)
{
	for (unsigned i = 0; i < ps->n; i++)
		if (ps->pages[i].file_offset == off)
			return ps->bufs[i];
	if (ps->n == VHDX_LOG_MAX_PAGES) {
		*err = -ENOSPC;
		return NULL;
	}
	uint8_t *b = malloc(PAGE);
	if (!b) {
		*err = -ENOMEM;
		return NULL;
	}
	if (fresh_zero) {
		memset(b, 0, PAGE);
	} else if ((*err = vhdx_pread(v, b, PAGE, off))) {
		free(b);
		return NULL;
	}
	ps->bufs[ps->n] = b;
	ps->pages[ps->n].file_offset = off;
	ps->pages[ps->n].data = b;
	ps->n++;
	return b;
}

static void page_set_free(struct page_set *ps)
{
	for (unsigned i = 0; i < ps->n; i++)
		free(ps->bufs[i]);
	ps->n = 0;
}

static int bat_pages_add(struct vhdx *v, struct page_set *ps, const struct bat_update *u,
			 unsigned nu)
{
	int r = 0;
	for (unsigned i = 0; i < nu; i++) {
		uint64_t byte = u[i].idx * 8;
		uint8_t *p = page_get(v, ps, v->bat_off + ALIGN_DOWN(byte, PAGE), false, &r);
		if (!p)
			return r;
		memcpy(p + byte % PAGE, &u[i].val, 8);
	}
	return 0;
}

/* Logs + applies ps, then publishes the BAT updates in memory. Lock held. */
static int commit(struct vhdx *v, struct page_set *ps, const struct bat_update *u, unsigned nu)
{
	int r = session_begin(v, true);
	if (!r)
		r = vhdx_log_write(&v->log, ps->pages, ps->n, v->file_size, v->file_end);
	if (r) {
		err_prefix("%s", v->path);
		return r;
	}
	for (unsigned i = 0; i < nu; i++)
		atomic_store_explicit(&v->bat[u[i].idx], u[i].val, memory_order_release);
	return 0;
}

/* Grows the file by len at a MiB-aligned end; returns the new area's offset. */
static int file_alloc(struct vhdx *v, uint64_t len, uint64_t *off)
{
	uint64_t start = v->file_end, end = start + len;
	if (end > (1ull << 52)) {
		err_set("%s: VHDX file would exceed the format's size limit", v->path);
		return -EFBIG;
	}
	if (ftruncate(v->fd, (off_t)end)) {
		int r = -errno;
		err_set("%s: cannot grow the file: %s", v->path, strerror(-r));
		return r;
	}
	v->file_end = end;
	v->file_size = end;
	*off = start;
	return 0;
}

static int data_sync_now(struct vhdx *v)
{
	if (fdatasync(v->fd)) {
		int r = -errno;
		err_set("%s: flush failed: %s", v->path, strerror(-r));
		return r;
	}
	return 0;
}

/* A write barrier between data and the metadata that points at it. */
static int data_sync(struct vhdx *v)
{
	return v->unordered ? 0 : data_sync_now(v);
}

static int pwrite_data(struct vhdx *v, const uint8_t *buf, uint64_t n, uint64_t off)
{
	int r = util_pwrite_full(v->fd, buf, n, (off_t)off);
	if (r)
		err_set("%s: write failed: %s", v->path, strerror(-r));
	return r;
}

/* Sets the SB bits of [off, off+n) in block; adds changed pages to ps. *changed if any bit flipped.
 */
static int sb_set_bits(struct vhdx *v, struct page_set *ps, uint64_t sb_off, bool fresh,
		       uint64_t block, uint64_t off, uint64_t n, bool *changed)
{
	uint32_t lss = v->bd.logical_sector_size;
	uint64_t s0 =
		(block % v->chunk_ratio) * (v->block_size / lss) + (off % v->block_size) / lss;
	uint64_t ns = n / lss;
	int r = 0;
	*changed = false;
	for (uint64_t s = s0; s < s0 + ns;) {
		uint64_t byte = s / 8;
		uint64_t pg = ALIGN_DOWN(byte, PAGE);
		uint8_t tmp[PAGE];
		uint8_t *p;
		/* Read-only probe first so fully set ranges log nothing. */
		if (fresh) {
			memset(tmp, 0, PAGE);
		} else if ((r = vhdx_pread(v, tmp, PAGE, sb_off + pg))) {
			return r;
		}
		uint64_t pend = MIN(s0 + ns, (pg + PAGE) * 8);
		bool need = false;
		for (uint64_t i = s; i < pend && !need; i++)
			need = !(tmp[i / 8 - pg] >> (i % 8) & 1);
		if (need) {
			p = page_get(v, ps, sb_off + pg, fresh, &r);
			if (!p)
				return r;
			for (uint64_t i = s; i < pend; i++)
				p[i / 8 - pg] |= (uint8_t)(1u << (i % 8));
			*changed = true;
		}
		s = pend;
	}
	return 0;
}

/* Slow path for one block: allocation or bitmap update. Lock held. */
static int write_block_locked(struct vhdx *v, const uint8_t *buf, uint64_t n, uint64_t off)
{
	uint64_t bs = v->block_size, block = off / bs, inblk = off % bs;
	uint64_t idx = bat_index(v, block);
	uint64_t e = bat_get(v, idx);
	unsigned st = e & VHDX_BAT_STATE_MASK;
	bool diff = v->fp_flags & VHDX_PARAM_HAS_PARENT;
	uint64_t blk_len = MIN(bs, v->bd.size - block * bs);
	bool whole = inblk == 0 && n == blk_len;
	struct page_set ps = {.n = 0};
	struct bat_update u[2];
	int r;

	if (st == VHDX_PAYLOAD_FULLY_PRESENT)
		return pwrite_data(v, buf, n, (e & VHDX_BAT_OFFSET_MASK) + inblk);

	if (!diff || whole ||
	    (st != VHDX_PAYLOAD_NOT_PRESENT && st != VHDX_PAYLOAD_PARTIALLY_PRESENT)) {
		/*
		 * New block, zero-filled by growing the file, FULLY_PRESENT: the
		 * unwritten rest reads as zeros, which is what these states mean.
		 * (A whole-block write to a differencing block needs no bitmap.)
		 */
		uint64_t boff = 0;
		if (st == VHDX_PAYLOAD_PARTIALLY_PRESENT) {
			/* whole-block overwrite of a partial block: reuse it */
			boff = e & VHDX_BAT_OFFSET_MASK;
		} else if ((r = file_alloc(v, bs, &boff))) {
			return r;
		}
		if ((r = pwrite_data(v, buf, n, boff + inblk)) || (r = data_sync(v)))
			return r;
		u[0] = (struct bat_update){idx, boff | VHDX_PAYLOAD_FULLY_PRESENT};
		r = bat_pages_add(v, &ps, u, 1);
		if (!r)
			r = commit(v, &ps, u, 1);
		page_set_free(&ps);
		return r;
	}

	/* Differencing, partial write: data + sector bitmap. */
	unsigned nu = 0;
	uint64_t boff = 0, sbi = sb_index(v, block / v->chunk_ratio);
	uint64_t sbe = bat_get(v, sbi), sb_off = 0;
	bool sb_fresh = false, changed;
	if (st == VHDX_PAYLOAD_NOT_PRESENT) {
		if ((r = file_alloc(v, bs, &boff)))
			return r;
		u[nu++] = (struct bat_update){idx, boff | VHDX_PAYLOAD_PARTIALLY_PRESENT};
	} else {
		boff = e & VHDX_BAT_OFFSET_MASK;
	}
	if ((sbe & VHDX_BAT_STATE_MASK) == VHDX_SB_PRESENT) {
		sb_off = sbe & VHDX_BAT_OFFSET_MASK;
	} else {
		if ((r = file_alloc(v, VHDX_SB_BLOCK_SIZE, &sb_off)))
			return r;
		sb_fresh = true;
		u[nu++] = (struct bat_update){sbi, sb_off | VHDX_SB_PRESENT};
	}
	if ((r = pwrite_data(v, buf, n, boff + inblk)))
		return r;
	r = sb_set_bits(v, &ps, sb_off, sb_fresh, block, off, n, &changed);
	if (!r && (changed || nu)) {
		r = data_sync(v);
		if (!r)
			r = bat_pages_add(v, &ps, u, nu);
		if (!r)
			r = commit(v, &ps, u, nu);
	}
	page_set_free(&ps);
	return r;
}

static int write_range(struct vhdx *v, const uint8_t *buf, uint64_t len, uint64_t off)
{
	while (len) {
		uint64_t n = MIN(len, v->block_size - off % v->block_size);
		uint64_t e = bat_get(v, bat_index(v, off / v->block_size));
		int r;
		if ((e & VHDX_BAT_STATE_MASK) == VHDX_PAYLOAD_FULLY_PRESENT) {
			r = pwrite_data(v, buf, n,
					(e & VHDX_BAT_OFFSET_MASK) + off % v->block_size);
		} else {
			pthread_mutex_lock(&v->lock);
			r = write_block_locked(v, buf, n, off);
			pthread_mutex_unlock(&v->lock);
		}
		if (r)
			return r;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int vhdx_writev(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset,
		       unsigned flags)
{
	struct vhdx *v = to_vhdx(bd);
	uint64_t total;
	int r = 0;

	if (bd->read_only)
		return -EROFS;
	if (!atomic_load(&v->session)) {
		/* New DataWriteGuid before the first visible change. */
		pthread_mutex_lock(&v->lock);
		r = session_begin(v, false);
		pthread_mutex_unlock(&v->lock);
		if (r)
			return r;
	}
	if (iov_aligned(iov, iovcnt, bd->logical_sector_size, &total)) {
		for (int i = 0; i < iovcnt && !r; i++) {
			r = write_range(v, iov[i].iov_base, iov[i].iov_len, offset);
			offset += iov[i].iov_len;
		}
	} else {
		uint8_t *b = malloc(total ? total : 1);
		if (!b)
			return -ENOMEM;
		for (int i = 0, o = 0; i < iovcnt; o += iov[i].iov_len, i++)
			memcpy(b + o, iov[i].iov_base, iov[i].iov_len);
		r = write_range(v, b, total, offset);
		free(b);
	}
	if (!r && (flags & BLOCKDEV_WRITE_FUA))
		r = data_sync(v);
	return r;
}

static int vhdx_flush(struct blockdev *bd)
{
	struct vhdx *v = to_vhdx(bd);
	if (bd->read_only)
		return 0;
	/* Allocations already ordered data before their BAT entries (unless unordered). */
	return data_sync_now(v);
}

/*
 * Whole blocks of dynamic/differencing images become ZERO (through the log)
 * and their space is punched out; partial blocks and fixed images: no-op.
 */
static int vhdx_discard(struct blockdev *bd, uint64_t offset, uint64_t len)
{
	struct vhdx *v = to_vhdx(bd);
	uint64_t bs = v->block_size;
	uint64_t first = DIV_ROUND_UP(offset, bs), end = (offset + len) / bs;
	int r = 0;

	if (bd->read_only)
		return -EROFS;
	if (offset + len == bd->size)
		end = v->nblocks; /* the last block may be short */
	if ((v->fp_flags & VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED) &&
	    !(v->fp_flags & VHDX_PARAM_HAS_PARENT))
		return 0;
	pthread_mutex_lock(&v->lock);
	for (uint64_t b = first; b < end && !r;) {
		struct page_set ps = {.n = 0};
		struct bat_update u[VHDX_LOG_MAX_PAGES];
		uint64_t old[VHDX_LOG_MAX_PAGES];
		unsigned nu = 0;
		for (; b < end && nu < ARRAY_SIZE(u) && ps.n < VHDX_LOG_MAX_PAGES - 1 && !r; b++) {
			uint64_t idx = bat_index(v, b), e = bat_get(v, idx);
			if ((e & VHDX_BAT_STATE_MASK) == VHDX_PAYLOAD_ZERO)
				continue;
			old[nu] = e;
			u[nu] = (struct bat_update){idx, VHDX_PAYLOAD_ZERO};
			r = bat_pages_add(v, &ps, &u[nu], 1);
			nu++;
		}
		if (!r && nu)
			r = commit(v, &ps, u, nu);
		page_set_free(&ps);
		for (unsigned i = 0; !r && i < nu; i++) {
			unsigned st = old[i] & VHDX_BAT_STATE_MASK;
			if (st == VHDX_PAYLOAD_FULLY_PRESENT ||
			    st == VHDX_PAYLOAD_PARTIALLY_PRESENT)
				(void)fallocate(v->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						(off_t)(old[i] & VHDX_BAT_OFFSET_MASK), (off_t)bs);
		}
	}
	pthread_mutex_unlock(&v->lock);
	return r;
}

static int vhdx_map(struct blockdev *bd, uint64_t offset, uint64_t len, bool for_write,
		    struct blockdev_extent *ext)
{
	struct vhdx *v = to_vhdx(bd);
	uint64_t inblk = offset % v->block_size;
	uint64_t e = bat_get(v, bat_index(v, offset / v->block_size));
	unsigned st = e & VHDX_BAT_STATE_MASK;
	bool diff = v->fp_flags & VHDX_PARAM_HAS_PARENT;

	ext->len = MIN(len, v->block_size - inblk);
	ext->file_offset = 0;
	ext->kind = BLOCKDEV_EXTENT_SLOW;
	if (v->nov || (for_write && (bd->read_only || !atomic_load(&v->session))))
		return 0;
	if (st == VHDX_PAYLOAD_FULLY_PRESENT) {
		ext->kind = BLOCKDEV_EXTENT_DATA;
		ext->file_offset = (e & VHDX_BAT_OFFSET_MASK) + inblk;
	} else if (!for_write && st != VHDX_PAYLOAD_PARTIALLY_PRESENT &&
		   !(diff && st == VHDX_PAYLOAD_NOT_PRESENT)) {
		ext->kind = BLOCKDEV_EXTENT_ZERO;
	}
	return 0;
}

static int vhdx_block_status(struct blockdev *bd, uint64_t offset, uint64_t len, int *status,
			     uint64_t *run_len)
{
	struct vhdx *v = to_vhdx(bd);
	uint64_t block = offset / v->block_size;
	uint64_t n = MIN(len, v->block_size - offset % v->block_size);
	uint64_t e = bat_get(v, bat_index(v, block));
	bool diff = v->fp_flags & VHDX_PARAM_HAS_PARENT;

	*run_len = n;
	switch (e & VHDX_BAT_STATE_MASK) {
	case VHDX_PAYLOAD_FULLY_PRESENT:
		*status = BLOCKDEV_STATUS_DATA;
		return 0;
	case VHDX_PAYLOAD_NOT_PRESENT:
		*status = BLOCKDEV_STATUS_UNALLOCATED;
		return 0;
	case VHDX_PAYLOAD_UNDEFINED:
		*status = diff ? BLOCKDEV_STATUS_ZERO : BLOCKDEV_STATUS_UNALLOCATED;
		return 0;
	case VHDX_PAYLOAD_PARTIALLY_PRESENT: {
		uint8_t *bits;
		uint64_t first, lss = bd->logical_sector_size, ns = n / lss;
		int r = sb_bits_read(v, block, offset, n, &bits, &first);
		if (r)
			return r;
		bool set = bit_get(bits, first);
		uint64_t j = 1;
		while (j < ns && bit_get(bits, first + j) == set)
			j++;
		free(bits);
		*status = set ? BLOCKDEV_STATUS_DATA : BLOCKDEV_STATUS_UNALLOCATED;
		*run_len = j * lss;
		return 0;
	}
	default:
		*status = BLOCKDEV_STATUS_ZERO;
		return 0;
	}
}

static int vhdx_close(struct blockdev *bd)
{
	struct vhdx *v = to_vhdx(bd);
	int r = 0;
	if (!bd->read_only && atomic_load(&v->session)) {
		r = data_sync(v);
		if (!r && v->log_open) {
			memset(&v->hdr.log_guid, 0, sizeof(v->hdr.log_guid));
			r = header_update(v);
		}
	}
	vhdx_free(v);
	return r;
}

static struct blockdev *vhdx_parent(struct blockdev *bd)
{
	return to_vhdx(bd)->parent;
}

static const struct blockdev_ops vhdx_ops = {
	.readv = vhdx_readv,
	.writev = vhdx_writev,
	.flush = vhdx_flush,
	.discard = vhdx_discard,
	.map = vhdx_map,
	.block_status = vhdx_block_status,
	.close = vhdx_close,
};

/* ---- create ---- */

static void header_init(struct vhdx_header *h, uint64_t seq)
{
	memset(h, 0, sizeof(*h));
	h->signature = VHDX_HEADER_SIGNATURE;
	h->sequence_number = seq;
	h->version = 1;
	h->log_length = VHDX_MIB;
	h->log_offset = VHDX_MIB;
}

/* Relative path from directory 'from' to file 'to' (both absolute), Windows separators. */
static void relative_path(const char *from, const char *to, char *out, size_t outlen)
{
	size_t common = 0, i = 0;
	while (from[i] && to[i] && from[i] == to[i]) {
		if (from[i] == '/')
			common = i + 1;
		i++;
	}
	if (!from[i] && to[i] == '/')
		common = i + 1;
	if (!strcmp(from, "/"))
		common = 1;
	size_t o = 0;
	int ups = 0;
	for (const char *p = from + common; *p;) {
		ups++;
		const char *s = strchr(p, '/');
		if (!s)
			break;
		p = s + 1;
	}
	if (!ups)
		o += (size_t)snprintf(out + o, outlen - o, ".\\");
	for (int k = 0; k < ups && o < outlen; k++)
		o += (size_t)snprintf(out + o, outlen - o, "..\\");
	for (const char *p = to + common; *p && o + 1 < outlen; p++)
		out[o++] = *p == '/' ? '\\' : *p;
	out[MIN(o, outlen - 1)] = 0;
}

static size_t locator_build(uint8_t *buf, size_t max, const char *const *keys,
			    const char *const *vals, unsigned n)
{
	struct vhdx_parent_locator_header *h = (void *)buf;
	const struct guid t = VHDX_GUID_PARENT_TYPE_VHDX;
	memset(buf, 0, max);
	h->locator_type = t;
	h->key_value_count = (uint16_t)n;
	size_t pos = sizeof(*h) + 12 * n;
	for (unsigned i = 0; i < n; i++) {
		struct vhdx_parent_locator_entry e;
		uint16_t tmp[PATH_MAX];
		size_t kl = utf8_to_utf16(keys[i], tmp, ARRAY_SIZE(tmp));
		e.key_offset = (uint32_t)pos;
		e.key_length = (uint16_t)(kl * 2);
		memcpy(buf + pos, tmp, kl * 2);
		pos += kl * 2;
		size_t vl = utf8_to_utf16(vals[i], tmp, ARRAY_SIZE(tmp));
		e.value_offset = (uint32_t)pos;
		e.value_length = (uint16_t)(vl * 2);
		memcpy(buf + pos, tmp, vl * 2);
		pos += vl * 2;
		memcpy(buf + sizeof(*h) + 12 * i, &e, sizeof(e));
	}
	return pos;
}

static int vhdx_create(const char *path, const struct disk_create_opts *o)
{
	bool diff = o->type == DISK_TYPE_DIFFERENCING, fixed = o->type == DISK_TYPE_FIXED;
	uint64_t size = o->size;
	uint32_t lss = o->logical_sector_size ? o->logical_sector_size : 512;
	uint32_t pss = o->physical_sector_size ? o->physical_sector_size : 4096;
	uint32_t bs = o->block_size ? o->block_size : diff ? 2 * VHDX_MIB : 32 * VHDX_MIB;
	struct guid page83, linkage;
	char parent_abs[PATH_MAX] = "", parent_rel[PATH_MAX * 2] = "";
	uint8_t *buf = NULL;
	int fd = -1, r;

	guid_generate(&page83);
	if (diff) {
		struct blockdev *p;
		if (!o->parent) {
			err_set("a differencing VHDX needs a parent");
			return -EINVAL;
		}
		r = disk_open(o->parent, DISK_FORMAT_AUTO, DISK_OPEN_RDONLY, &p);
		if (r)
			return r;
		if (!p->format || strcmp(p->format, "vhdx")) {
			blockdev_close(p);
			err_set("parent %s is not a VHDX image; a VHDX child needs a VHDX parent",
				o->parent);
			return -EINVAL;
		}
		struct vhdx *pv = to_vhdx(p);
		linkage = pv->hdr.data_write_guid;
		page83 = pv->page83;
		if (size && size != p->size) {
			blockdev_close(p);
			err_set("a differencing image has its parent's size (%" PRIu64 ")",
				p->size);
			return -EINVAL;
		}
		if (o->logical_sector_size && o->logical_sector_size != p->logical_sector_size) {
			blockdev_close(p);
			err_set("the logical sector size must match the parent's (%u)",
				p->logical_sector_size);
			return -EINVAL;
		}
		size = p->size;
		lss = p->logical_sector_size;
		blockdev_close(p);
		char dir[PATH_MAX], tmp[PATH_MAX];
		snprintf(tmp, sizeof(tmp), "%s", path);
		if (!realpath(o->parent, parent_abs) || !realpath(dirname(tmp), dir)) {
			r = -errno;
			err_set("cannot resolve the parent path %s: %s", o->parent, strerror(-r));
			return r;
		}
		relative_path(dir, parent_abs, parent_rel, sizeof(parent_rel));
	}
	if (lss != 512 && lss != 4096) {
		err_set("logical sector size must be 512 or 4096");
		return -EINVAL;
	}
	if ((pss != 512 && pss != 4096) || pss < lss) {
		err_set("physical sector size must be 512 or 4096 and not below the logical one");
		return -EINVAL;
	}
	if (!is_pow2(bs) || bs < VHDX_MIN_BLOCK_SIZE || bs > VHDX_MAX_BLOCK_SIZE) {
		err_set("VHDX block size must be a power of two between 1 MiB and 256 MiB");
		return -EINVAL;
	}
	if (!size || size % lss || size > VHDX_MAX_DISK_SIZE) {
		err_set("VHDX size must be a non-zero multiple of %u bytes, at most 64 TiB", lss);
		return -EINVAL;
	}

	uint64_t cr = 8ull * VHDX_MIB * lss / bs;
	uint64_t nblocks = DIV_ROUND_UP(size, bs);
	uint64_t nbat = diff ? DIV_ROUND_UP(nblocks, cr) * (cr + 1) : nblocks + (nblocks - 1) / cr;
	uint64_t log_off = VHDX_MIB, meta_off = 2 * VHDX_MIB, bat_off = 3 * VHDX_MIB;
	uint64_t bat_len = ALIGN_UP(nbat * 8, VHDX_MIB);
	uint64_t data_off = bat_off + bat_len;
	uint64_t file_size = data_off + (fixed ? nblocks * bs : 0);
	if (bat_len > UINT32_MAX) {
		err_set("VHDX BAT would be too large; use a bigger block size");
		return -EINVAL;
	}

	char self[PATH_MAX];
	if (diff && realpath(path, self) && !strcmp(self, parent_abs)) {
		err_set("%s cannot be its own parent", path);
		return -EINVAL;
	}
	/* Like the other formats (and qemu-img): an existing file is replaced. */
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		err_set("cannot create %s: %s", path, strerror(-r));
		return r;
	}
	size_t blen = MAX((size_t)VHDX_REGION_TABLE_SIZE, (size_t)2 * VHDX_METADATA_TABLE_SIZE);
	buf = calloc(1, blen);
	if (!buf) {
		r = -ENOMEM;
		goto fail;
	}
	if (ftruncate(fd, (off_t)file_size)) {
		r = -errno;
		err_set("cannot size %s: %s", path, strerror(-r));
		goto fail;
	}
	/* File identifier. */
	struct vhdx_file_id *fid = (void *)buf;
	memcpy(fid->signature, VHDX_FILE_SIGNATURE, 8);
	utf8_to_utf16("viridian", fid->creator, ARRAY_SIZE(fid->creator));
	if ((r = util_pwrite_full(fd, fid, sizeof(*fid), 0)))
		goto io_fail;

	/* Region tables. */
	memset(buf, 0, blen);
	struct vhdx_region_table_header *rt = (void *)buf;
	struct vhdx_region_entry *re = (void *)(buf + 16);
	rt->signature = VHDX_REGION_SIGNATURE;
	rt->entry_count = 2;
	re[0] = (struct vhdx_region_entry){guid_bat, bat_off, (uint32_t)bat_len,
					   VHDX_REGION_REQUIRED};
	re[1] = (struct vhdx_region_entry){guid_metadata, meta_off, (uint32_t)VHDX_MIB,
					   VHDX_REGION_REQUIRED};
	rt->checksum = crc32c(0, buf, VHDX_REGION_TABLE_SIZE);
	if ((r = util_pwrite_full(fd, buf, VHDX_REGION_TABLE_SIZE, VHDX_REGION1_OFF)) ||
	    (r = util_pwrite_full(fd, buf, VHDX_REGION_TABLE_SIZE, VHDX_REGION2_OFF)))
		goto io_fail;

	/* Metadata table + items at +64 KiB. */
	memset(buf, 0, blen);
	struct vhdx_metadata_table_header *mh = (void *)buf;
	struct vhdx_metadata_entry *me = (void *)(buf + 32);
	uint8_t *items = buf + VHDX_METADATA_TABLE_SIZE;
	uint32_t ip = 0;
	unsigned ne = 0;
	memcpy(mh->signature, VHDX_METADATA_SIGNATURE, 8);
#define MD_ADD(g, ptr, len, fl)                                                                   \
	do {                                                                                      \
		me[ne] = (struct vhdx_metadata_entry){g, (uint32_t)VHDX_METADATA_TABLE_SIZE + ip, \
						      (uint32_t)(len), (fl), 0};                  \
		memcpy(items + ip, ptr, len);                                                     \
		ip += ALIGN_UP((uint32_t)(len), 8u);                                              \
		ne++;                                                                             \
	} while (0)
	struct vhdx_file_parameters fp = {bs, diff    ? VHDX_PARAM_HAS_PARENT
					      : fixed ? VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED
						      : 0};
	MD_ADD(guid_file_params, &fp, 8, VHDX_META_IS_REQUIRED);
	MD_ADD(guid_disk_size, &size, 8, VHDX_META_IS_REQUIRED | VHDX_META_IS_VIRTUAL_DISK);
	MD_ADD(guid_page83, &page83, 16, VHDX_META_IS_REQUIRED | VHDX_META_IS_VIRTUAL_DISK);
	MD_ADD(guid_logical, &lss, 4, VHDX_META_IS_REQUIRED | VHDX_META_IS_VIRTUAL_DISK);
	MD_ADD(guid_physical, &pss, 4, VHDX_META_IS_REQUIRED | VHDX_META_IS_VIRTUAL_DISK);
	if (diff) {
		char link[GUID_STR_LEN + 3], g[GUID_STR_LEN + 1], absw[PATH_MAX];
		snprintf(link, sizeof(link), "{%s}", guid_format(&linkage, g));
		snprintf(absw, sizeof(absw), "%s", parent_abs);
		for (char *c = absw; *c; c++)
			if (*c == '/')
				*c = '\\';
		const char *keys[] = {"parent_linkage", "relative_path", "absolute_win32_path"};
		const char *vals[] = {link, parent_rel, absw};
		uint8_t *lb = malloc(VHDX_METADATA_TABLE_SIZE / 2);
		if (!lb) {
			r = -ENOMEM;
			goto fail;
		}
		size_t ll = locator_build(lb, VHDX_METADATA_TABLE_SIZE / 2, keys, vals, 3);
		MD_ADD(guid_locator, lb, ll, VHDX_META_IS_REQUIRED);
		free(lb);
	}
#undef MD_ADD
	mh->entry_count = (uint16_t)ne;
	if ((r = util_pwrite_full(fd, buf, VHDX_METADATA_TABLE_SIZE + ip, (off_t)meta_off)))
		goto io_fail;

	/* BAT: dynamic/differencing stay all zero (NOT_PRESENT). */
	if (fixed) {
		uint64_t *bat = calloc(nbat, 8);
		if (!bat) {
			r = -ENOMEM;
			goto fail;
		}
		for (uint64_t b = 0; b < nblocks; b++)
			bat[b + b / cr] = (data_off + b * bs) | VHDX_PAYLOAD_FULLY_PRESENT;
		r = util_pwrite_full(fd, bat, nbat * 8, (off_t)bat_off);
		free(bat);
		if (r)
			goto io_fail;
	}

	/* Headers last, so a half-created file does not open. */
	struct vhdx_header h;
	for (int i = 0; i < 2; i++) {
		header_init(&h, (uint64_t)i + 1);
		guid_generate(&h.file_write_guid);
		guid_generate(&h.data_write_guid);
		if (i) {
			struct vhdx_header h0;
			if ((r = util_pread_full(fd, &h0, sizeof(h0), VHDX_HEADER1_OFF)))
				goto io_fail;
			h.file_write_guid = h0.file_write_guid;
			h.data_write_guid = h0.data_write_guid;
		}
		h.checksum = crc32c(0, &h, sizeof(h));
		if ((r = util_pwrite_full(fd, &h, sizeof(h),
					  i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF)))
			goto io_fail;
	}
	(void)log_off;
	if (fsync(fd)) {
		r = -errno;
		goto io_fail;
	}
	free(buf);
	close(fd);
	return 0;
io_fail:
	err_set("cannot write %s: %s", path, strerror(-r));
fail:
	free(buf);
	close(fd);
	unlink(path);
	return r;
}

/* ---- info, check, merge, resize ---- */

static int vhdx_info(struct blockdev *bd, struct disk_info *info)
{
	struct vhdx *v = to_vhdx(bd);
	struct stat st;
	memset(info, 0, sizeof(*info));
	info->format = DISK_FORMAT_VHDX;
	info->type = (v->fp_flags & VHDX_PARAM_HAS_PARENT)		 ? DISK_TYPE_DIFFERENCING
		     : (v->fp_flags & VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED) ? DISK_TYPE_FIXED
									 : DISK_TYPE_DYNAMIC;
	info->virtual_size = bd->size;
	if (!fstat(v->fd, &st)) {
		info->file_size = (uint64_t)st.st_size;
		info->allocated_bytes = (uint64_t)st.st_blocks * 512;
	}
	info->block_size = v->block_size;
	info->logical_sector_size = bd->logical_sector_size;
	info->physical_sector_size = bd->physical_sector_size;
	snprintf(info->parent_path, sizeof(info->parent_path), "%s",
		 v->parent ? v->parent_path : "");
	snprintf(info->log_state, sizeof(info->log_state), "%s", v->dirty_log ? "dirty" : "clean");
	info->disk_id = v->page83;
	snprintf(info->creator, sizeof(info->creator), "%s", v->creator);
	return 0;
}

static int vhdx_check(const char *path, bool repair, struct disk_check_result *res, FILE *report)
{
	struct blockdev *bd;
	memset(res, 0, sizeof(*res));
	int r = vhdx_open(path, DISK_OPEN_RDONLY | DISK_OPEN_NO_REPLAY, &bd);
	if (r) {
		res->errors++;
		snprintf(res->first_error, sizeof(res->first_error), "%s", err_msg());
		if (report)
			fprintf(report, "error: %s\n", err_msg());
		return 0;
	}
	struct vhdx *v = to_vhdx(bd);
	bool dirty = v->dirty_log;
	/* Only the other header copy being stale or broken is harmless; say so. */
	struct vhdx_header other;
	bool bad_hdr = !util_pread_full(v->fd, &other, sizeof(other),
					v->hdr_slot ? VHDX_HEADER1_OFF : VHDX_HEADER2_OFF) &&
		       !header_valid(&other);
	if (bad_hdr && !repair && report)
		fprintf(report,
			"warning: one VHDX header copy is corrupt; the next write fixes it\n");
	uint8_t *rt = malloc(2 * VHDX_REGION_TABLE_SIZE);
	if (rt && !util_pread_full(v->fd, rt, 2 * VHDX_REGION_TABLE_SIZE, VHDX_REGION1_OFF) &&
	    memcmp(rt, rt + VHDX_REGION_TABLE_SIZE, VHDX_REGION_TABLE_SIZE) && report)
		fprintf(report, "warning: the two VHDX region table copies differ\n");
	free(rt);
	/* Space past the last structure the BAT references. */
	uint64_t used = 0;
	for (uint64_t i = 0; i < v->nbat; i++) {
		uint64_t e = bat_get(v, i);
		unsigned stt = e & VHDX_BAT_STATE_MASK;
		bool is_sb = (i + 1) % (v->chunk_ratio + 1) == 0;
		if ((is_sb && stt == VHDX_SB_PRESENT) ||
		    (!is_sb &&
		     (stt == VHDX_PAYLOAD_FULLY_PRESENT || stt == VHDX_PAYLOAD_PARTIALLY_PRESENT)))
			used = MAX(used, (e & VHDX_BAT_OFFSET_MASK) +
						 (is_sb ? VHDX_SB_BLOCK_SIZE : v->block_size));
	}
	used = MAX(used, MAX(v->bat_off + v->bat_len, v->meta_off + v->meta_len));
	used = MAX(used, v->log.offset + v->log.length);
	if (v->file_size > used) {
		res->leaks += (unsigned)DIV_ROUND_UP(v->file_size - used, VHDX_MIB);
		if (report)
			fprintf(report, "leak: %" PRIu64 " bytes after the last used block\n",
				v->file_size - used);
	}
	blockdev_close(bd);
	if (bad_hdr && repair && !dirty) {
		/* The header update protocol rewrites both slots. */
		r = vhdx_open(path, 0, &bd);
		if (!r) {
			r = header_update(to_vhdx(bd));
			int r2 = blockdev_close(bd);
			r = r ? r : r2;
		}
		if (r) {
			res->errors++;
			snprintf(res->first_error, sizeof(res->first_error), "%s", err_msg());
			if (report)
				fprintf(report, "error: cannot rewrite the header: %s\n",
					err_msg());
			return 0;
		}
		res->repaired++;
		if (report)
			fprintf(report, "repaired: rewrote the corrupt VHDX header copy\n");
	}
	if (!dirty)
		return 0;
	if (!repair) {
		res->errors++;
		snprintf(res->first_error, sizeof(res->first_error),
			 "image has a dirty log that needs replay");
		if (report)
			fprintf(report,
				"error: image has a dirty log that needs replay (use --repair)\n");
		return 0;
	}
	r = vhdx_open(path, 0, &bd);
	if (r) {
		res->errors++;
		snprintf(res->first_error, sizeof(res->first_error), "%s", err_msg());
		if (report)
			fprintf(report, "error: log replay failed: %s\n", err_msg());
		return 0;
	}
	r = blockdev_close(bd);
	res->repaired++;
	if (report)
		fprintf(report, "repaired: replayed the dirty log\n");
	return r;
}

static int vhdx_merge(struct blockdev *child)
{
	struct vhdx *v = to_vhdx(child);
	struct blockdev *p;
	if (!v->parent) {
		err_set("%s is not a differencing image", v->path);
		return -EINVAL;
	}
	int r = disk_open(v->parent_path, DISK_FORMAT_AUTO, 0, &p);
	if (r)
		return r;
	size_t cap = 4 * VHDX_MIB;
	uint8_t *buf = calloc(1, cap);
	if (!buf) {
		blockdev_close(p);
		return -ENOMEM;
	}
	for (uint64_t off = 0; !r && off < child->size;) {
		int st;
		uint64_t run;
		r = vhdx_block_status(child, off, MIN(cap, child->size - off), &st, &run);
		if (r)
			break;
		if (st == BLOCKDEV_STATUS_DATA) {
			r = blockdev_read(child, buf, run, off);
			if (!r)
				r = blockdev_write(p, buf, run, off, 0);
		} else if (st == BLOCKDEV_STATUS_ZERO) {
			static const uint8_t z[64 * 1024];
			for (uint64_t o = 0; !r && o < run; o += MIN(sizeof(z), run - o))
				r = blockdev_write(p, z, MIN(sizeof(z), run - o), off + o, 0);
		}
		off += run;
	}
	free(buf);
	int r2 = blockdev_flush(p);
	int r3 = blockdev_close(p);
	return r ? r : r2 ? r2 : r3;
}

/*
 * Grow with a new, larger BAT at the end of the file: write it (unreferenced,
 * so no log needed), flush, then switch both region tables and the size in one
 * log entry. The old BAT's space is left unused. Lock held.
 */
static int resize_relocate(struct vhdx *v, uint64_t new_size, uint64_t nbat, bool fixed)
{
	uint64_t new_len = ALIGN_UP(nbat * 8, VHDX_MIB), new_off = 0;
	uint64_t cr = v->chunk_ratio;
	struct page_set ps = {.n = 0};
	uint8_t *rt = NULL;
	uint64_t *bat = NULL;
	int r;

	if (new_len > UINT32_MAX || nbat > VHDX_MAX_BAT_ENTRIES) {
		err_set("%s: a BAT for this size would be too large; use a bigger block size",
			v->path);
		return -EINVAL;
	}
	if ((r = session_begin(v, true)))
		return r;
	bat = calloc(1, new_len);
	rt = malloc(VHDX_REGION_TABLE_SIZE);
	if (!bat || !rt) {
		r = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < v->nbat; i++)
		bat[i] = bat_get(v, i);
	for (uint64_t i = v->nbat; fixed && i < nbat; i++) {
		uint64_t off = 0;
		if ((i + 1) % (cr + 1) == 0)
			continue;
		if ((r = file_alloc(v, v->block_size, &off)))
			goto out;
		bat[i] = off | VHDX_PAYLOAD_FULLY_PRESENT;
	}
	if ((r = file_alloc(v, new_len, &new_off)) ||
	    (r = util_pwrite_full(v->fd, bat, new_len, (off_t)new_off)) || (r = data_sync(v)))
		goto out;
	/* The region table copy we opened with (first valid one). */
	int used = -1;
	for (int i = 0; i < 2 && used < 0; i++) {
		if ((r = vhdx_pread(v, rt, VHDX_REGION_TABLE_SIZE,
				    i ? VHDX_REGION2_OFF : VHDX_REGION1_OFF)))
			goto out;
		struct vhdx_region_table_header *h = (void *)rt;
		uint32_t stored = h->checksum;
		h->checksum = 0;
		if (h->signature == VHDX_REGION_SIGNATURE &&
		    crc32c(0, rt, VHDX_REGION_TABLE_SIZE) == stored)
			used = i;
	}
	r = -EINVAL;
	if (used < 0)
		goto out;
	struct vhdx_region_table_header *h = (void *)rt;
	for (uint32_t i = 0; i < h->entry_count && i < VHDX_MAX_REGION_ENTRIES; i++) {
		struct vhdx_region_entry *e = (void *)(rt + 16 + 32 * i);
		if (guid_equal(&e->guid, &guid_bat)) {
			e->file_offset = new_off;
			e->length = (uint32_t)new_len;
			r = 0;
		}
	}
	if (r)
		goto out;
	h->checksum = crc32c(0, rt, VHDX_REGION_TABLE_SIZE);
	for (int c = 0; c < 2 && !r; c++) {
		for (uint32_t pg = 0; pg < VHDX_REGION_TABLE_SIZE; pg += PAGE) {
			uint64_t off = (c ? VHDX_REGION2_OFF : VHDX_REGION1_OFF) + pg;
			uint8_t *p = page_get(v, &ps, off, true, &r);
			if (!p)
				break;
			memcpy(p, rt + pg, PAGE);
		}
	}
	uint64_t vpg = ALIGN_DOWN(v->vds_item_off, PAGE);
	uint8_t *p = r ? NULL : page_get(v, &ps, vpg, false, &r);
	if (!p)
		goto out;
	memcpy(p + (v->vds_item_off - vpg), &new_size, 8);
	r = commit(v, &ps, NULL, 0);
out:
	page_set_free(&ps);
	free(bat);
	free(rt);
	return r;
}

static int vhdx_resize(const char *path, uint64_t new_size)
{
	struct blockdev *bd;
	int r = vhdx_open(path, 0, &bd);
	if (r)
		return r;
	struct vhdx *v = to_vhdx(bd);
	uint64_t bs = v->block_size, cr = v->chunk_ratio;
	bool diff = v->fp_flags & VHDX_PARAM_HAS_PARENT;
	bool fixed = !diff && (v->fp_flags & VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED);
	r = -EINVAL;
	if (new_size < bd->size || new_size % bd->logical_sector_size ||
	    new_size > VHDX_MAX_DISK_SIZE) {
		err_set("%s: new size must be at least the current size (%" PRIu64
			"), a sector multiple and at most 64 TiB; shrinking is not supported",
			path, bd->size);
		goto out;
	}
	if (new_size == bd->size) {
		r = 0;
		goto out;
	}
	uint64_t nb = DIV_ROUND_UP(new_size, bs);
	uint64_t nbat = diff ? DIV_ROUND_UP(nb, cr) * (cr + 1) : nb + (nb - 1) / cr;
	if (nbat * 8 > v->bat_len) {
		pthread_mutex_lock(&v->lock);
		r = resize_relocate(v, new_size, nbat, fixed);
		pthread_mutex_unlock(&v->lock);
		goto out;
	}
	_Atomic uint64_t *nbatp = realloc((void *)v->bat, nbat * 8);
	if (!nbatp) {
		r = -ENOMEM;
		goto out;
	}
	v->bat = nbatp;
	pthread_mutex_lock(&v->lock);
	/* New entries: NOT_PRESENT, or freshly allocated blocks for a fixed disk. */
	struct page_set ps = {.n = 0};
	struct bat_update u[VHDX_LOG_MAX_PAGES];
	r = 0;
	for (uint64_t i = v->nbat; i < nbat && !r;) {
		unsigned nu = 0;
		while (i < nbat && ps.n < VHDX_LOG_MAX_PAGES - 2 && nu < ARRAY_SIZE(u)) {
			bool is_sb = (i + 1) % (cr + 1) == 0;
			uint64_t val = 0;
			if (fixed && !is_sb) {
				uint64_t off = 0;
				if ((r = file_alloc(v, bs, &off)))
					break;
				val = off | VHDX_PAYLOAD_FULLY_PRESENT;
			}
			v->bat[i] = 0;
			u[nu] = (struct bat_update){i, val};
			if ((r = bat_pages_add(v, &ps, &u[nu], 1)))
				break;
			nu++;
			i++;
		}
		if (!r && fixed)
			r = data_sync(v);
		if (!r)
			r = commit(v, &ps, u, nu);
		page_set_free(&ps);
	}
	if (!r) {
		/* The size itself, last: the disk only grows once its BAT is ready. */
		uint64_t pg = ALIGN_DOWN(v->vds_item_off, PAGE);
		uint8_t *p = page_get(v, &ps, pg, false, &r);
		if (p) {
			memcpy(p + (v->vds_item_off - pg), &new_size, 8);
			r = commit(v, &ps, NULL, 0);
		}
		page_set_free(&ps);
	}
	pthread_mutex_unlock(&v->lock);
out : {
	int r2 = blockdev_close(bd);
	return r ? r : r2;
}
}

static bool vhdx_probe(const uint8_t *head, size_t head_len, const uint8_t *tail,
		       uint64_t file_size)
{
	return head_len >= 8 && !memcmp(head, VHDX_FILE_SIGNATURE, 8);
}

const struct disk_driver vhdx_driver = {
	.format = DISK_FORMAT_VHDX,
	.name = "vhdx",
	.probe = vhdx_probe,
	.open = vhdx_open,
	.create = vhdx_create,
	.info = vhdx_info,
	.check = vhdx_check,
	.merge = vhdx_merge,
	.resize = vhdx_resize,
	.parent = vhdx_parent,
};
