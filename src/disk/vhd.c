// SPDX-License-Identifier: GPL-2.0-only
/*
 * VHD (v1) driver. Layout and rules: shared/spec/disk-formats.md §1.
 *
 * Crash consistency without a journal (spec §1.10): a new block is placed at
 * the old footer position, the footer is first rewritten at the new EOF, then
 * bitmap and data are written; the BAT entry (the commit point) and bitmap
 * updates of existing differencing blocks stay in memory until the next
 * flush, which does fdatasync (data) -> metadata writes -> fdatasync. So a BAT
 * entry or bitmap bit never reaches the disk before the bytes it exposes.
 */
#include "disk/vhd.h"
#include "disk/vhd_format.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VHD_LAYER "disk"
#define VHD_MAX_CANDIDATES 4
#define VHD_MERGE_CHUNK (1u << 20)

struct vhd {
	struct blockdev bd;
	int fd;
	int direct_fd; /* DISK_OPEN_DIRECT: O_DIRECT fd handed out as data_fd, else -1 */
	bool writable;
	unsigned type;
	char path[PATH_MAX];
	struct vhd_footer footer; /* wire image of the footer in use */
	struct vhd_dyn_header hdr;
	uint64_t file_size; /* at open */
	uint64_t footer_off; /* where the tail footer is (or must go) */
	uint64_t file_end; /* current end of file */
	bool tail_bad; /* tail footer unusable, head copy in use */
	bool head_bad; /* dynamic: head copy unusable */
	bool head_differs; /* dynamic: head copy valid but not equal to the tail */
	bool head_stale; /* ... and only its time stamp differs */
	bool old_footer; /* 511-byte footer of very old files */
	uint64_t meta_end; /* end of head footer, header, BAT, locators */
	uint64_t used_end; /* max(meta_end, end of every allocated block) */

	/* dynamic and differencing */
	uint64_t table_off;
	uint32_t max_entries;
	uint32_t block_size;
	uint32_t bitmap_bytes;
	uint32_t spb; /* sectors per block */
	unsigned block_shift;
	uint32_t *bat; /* host order; read with atomics, changed under lock */
	uint8_t *pending; /* entry changed in memory, not yet written */
	uint8_t **bitmaps; /* differencing: cached sector bitmaps */
	uint8_t *bm_dirty; /* differencing: cached bitmap newer than the file */
	bool meta_dirty;
	pthread_mutex_t lock;

	/* differencing */
	char cand[VHD_MAX_CANDIDATES][PATH_MAX];
	unsigned ncand;
	struct blockdev *parent;
	char parent_path[PATH_MAX];
};

/* Collects check findings; NULL while opening (then the first problem fails). */
struct vhd_chk {
	FILE *report;
	struct disk_check_result *res;
};

static const struct blockdev_ops vhd_ops;

/* ---------------- small helpers ---------------- */

uint32_t vhd_checksum(const void *buf, size_t len, size_t csum_off)
{
	const uint8_t *p = buf;
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < csum_off || i >= csum_off + 4)
			sum += p[i];
	return ~sum;
}

void vhd_chs_geometry(uint64_t size, uint16_t *cylinders, uint8_t *heads, uint8_t *sectors)
{
	uint64_t total = size / VHD_SECTOR, cth;
	uint32_t spt, hds;

	if (total > VHD_MAX_CHS_SECTORS)
		total = VHD_MAX_CHS_SECTORS;
	if (total >= 65535ull * 16 * 63) {
		spt = 255;
		hds = 16;
		cth = total / spt;
	} else {
		spt = 17;
		cth = total / spt;
		hds = (uint32_t)((cth + 1023) / 1024);
		if (hds < 4)
			hds = 4;
		if (cth >= hds * 1024ull || hds > 16) {
			spt = 31;
			hds = 16;
			cth = total / spt;
		}
		if (cth >= hds * 1024ull) {
			spt = 63;
			hds = 16;
			cth = total / spt;
		}
	}
	*cylinders = (uint16_t)(cth / hds);
	*heads = (uint8_t)hds;
	*sectors = (uint8_t)spt;
}

static uint32_t vhd_now(void)
{
	time_t t = time(NULL);

	return t > (time_t)VHD_EPOCH_OFFSET ? (uint32_t)(t - VHD_EPOCH_OFFSET) : 0;
}

static void vhd_footer_seal(struct vhd_footer *f)
{
	f->checksum = 0;
	f->checksum = htobe32(vhd_checksum(f, sizeof(*f), offsetof(struct vhd_footer, checksum)));
}

static void vhd_header_seal(struct vhd_dyn_header *h)
{
	h->checksum = 0;
	h->checksum =
		htobe32(vhd_checksum(h, sizeof(*h), offsetof(struct vhd_dyn_header, checksum)));
}

static bool vhd_footer_valid(const struct vhd_footer *f)
{
	return !memcmp(f->cookie, VHD_FOOTER_COOKIE, 8) &&
	       be32toh(f->checksum) ==
		       vhd_checksum(f, sizeof(*f), offsetof(struct vhd_footer, checksum));
}

static bool vhd_is_dynamic(const struct vhd *v)
{
	return v->type == VHD_TYPE_DYNAMIC || v->type == VHD_TYPE_DIFF;
}

static int vhd_pread(int fd, void *buf, size_t len, uint64_t off)
{
	if (off > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	return util_pread_full(fd, buf, len, (off_t)off);
}

static int vhd_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	if (off > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	return util_pwrite_full(fd, buf, len, (off_t)off);
}

static int vhd_sync(int fd)
{
	return fdatasync(fd) < 0 ? -errno : 0;
}

/* UTF-16 (le or be) to UTF-8, stops at a NUL unit. 0, or -1 when it does not fit. */
static int vhd_utf16_to_utf8(const uint8_t *src, size_t units, bool be, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < units; i++) {
		uint32_t c = be ? (uint32_t)(src[2 * i] << 8 | src[2 * i + 1])
				: (uint32_t)(src[2 * i + 1] << 8 | src[2 * i]);

		if (!c)
			break;
		if (c >= 0xD800 && c < 0xDC00 && i + 1 < units) {
			uint32_t c2 = be ? (uint32_t)(src[2 * i + 2] << 8 | src[2 * i + 3])
					 : (uint32_t)(src[2 * i + 3] << 8 | src[2 * i + 2]);

			if (c2 >= 0xDC00 && c2 < 0xE000) {
				c = 0x10000 + ((c - 0xD800) << 10) + (c2 - 0xDC00);
				i++;
			}
		}
		if (c >= 0xD800 && c < 0xE000)
			c = '?';
		if (o + 5 > outsz)
			return -1;
		if (c < 0x80) {
			out[o++] = (char)c;
		} else if (c < 0x800) {
			out[o++] = (char)(0xC0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xE0 | c >> 12);
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else {
			out[o++] = (char)(0xF0 | c >> 18);
			out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		}
	}
	out[o] = '\0';
	return 0;
}

static void vhd_put16(uint8_t *p, uint16_t u, bool be)
{
	p[be ? 0 : 1] = (uint8_t)(u >> 8);
	p[be ? 1 : 0] = (uint8_t)u;
}

/* UTF-8 to UTF-16; returns the number of units, or -1 when it does not fit. */
static int vhd_utf8_to_utf16(const char *s, bool be, uint8_t *out, size_t max_units)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (*p) {
		uint32_t c;
		int extra;

		if (*p < 0x80) {
			c = *p;
			extra = 0;
		} else if ((*p & 0xE0) == 0xC0) {
			c = *p & 0x1F;
			extra = 1;
		} else if ((*p & 0xF0) == 0xE0) {
			c = *p & 0x0F;
			extra = 2;
		} else {
			c = *p & 0x07;
			extra = 3;
		}
		p++;
		for (int k = 0; k < extra; k++, p++) {
			if ((*p & 0xC0) != 0x80)
				return -1;
			c = c << 6 | (*p & 0x3F);
		}
		if (c >= 0x10000) {
			if (n + 2 > max_units)
				return -1;
			c -= 0x10000;
			vhd_put16(out + 2 * n++, (uint16_t)(0xD800 | c >> 10), be);
			vhd_put16(out + 2 * n++, (uint16_t)(0xDC00 | (c & 0x3FF)), be);
		} else {
			if (n + 1 > max_units)
				return -1;
			vhd_put16(out + 2 * n++, (uint16_t)c, be);
		}
	}
	return (int)n;
}

/* ---------------- parsing and validation ---------------- */

static void vhd_chk_line(struct vhd_chk *c, bool error, const char *msg)
{
	if (c->report)
		fprintf(c->report, "%s%s\n", error ? "error: " : "", msg);
	if (error) {
		if (!c->res->errors)
			snprintf(c->res->first_error, sizeof(c->res->first_error), "%s", msg);
		c->res->errors++;
	}
}

/*
 * A problem in the file. Opening: fails with the message. Checking: reports
 * it and lets the caller go on when it can (the return value is still -EINVAL
 * so fatal paths can just return it).
 */
static int vhd_bad(struct vhd_chk *c, const struct vhd *v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int vhd_bad(struct vhd_chk *c, const struct vhd *v, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c)
		vhd_chk_line(c, true, msg);
	else
		err_set("'%s': %s", v->path, msg);
	return -EINVAL;
}

static void vhd_note(struct vhd_chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vhd_note(struct vhd_chk *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!c)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vhd_chk_line(c, false, msg);
}

struct vhd_range {
	uint64_t start, end;
	int64_t idx; /* BAT index, or -1 for metadata */
	const char *what;
};

static int vhd_range_cmp(const void *a, const void *b)
{
	const struct vhd_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int vhd_read_footers(struct vhd *v, struct vhd_chk *c)
{
	struct vhd_footer tail, head;
	bool tail_ok = false, head_ok = false;
	int ret;

	if (v->file_size < VHD_FOOTER_SIZE)
		return vhd_bad(c, v, "file is %llu bytes, too short for a VHD footer",
			       (unsigned long long)v->file_size);
	ret = vhd_pread(v->fd, &tail, sizeof(tail), v->file_size - VHD_FOOTER_SIZE);
	if (ret < 0)
		return vhd_bad(c, v, "cannot read the footer: %s", strerror(-ret));
	tail_ok = vhd_footer_valid(&tail);
	if (!tail_ok && v->file_size % VHD_SECTOR == VHD_SECTOR - 1) {
		/* Very old writers left a 511-byte footer (no saved-state byte). */
		struct vhd_footer old;

		memset(&old, 0, sizeof(old));
		ret = vhd_pread(v->fd, &old, VHD_FOOTER_SIZE - 1,
				v->file_size - (VHD_FOOTER_SIZE - 1));
		if (!ret && vhd_footer_valid(&old) && be32toh(old.disk_type) == VHD_TYPE_FIXED) {
			tail = old;
			tail_ok = true;
			v->old_footer = true;
		}
	}
	ret = vhd_pread(v->fd, &head, sizeof(head), 0);
	head_ok = !ret && vhd_footer_valid(&head);

	if (tail_ok) {
		v->footer = tail;
		v->footer_off =
			v->file_size - (v->old_footer ? VHD_FOOTER_SIZE - 1 : VHD_FOOTER_SIZE);
		if (be32toh(tail.disk_type) != VHD_TYPE_FIXED) {
			v->head_bad = !head_ok;
			v->head_differs = head_ok && memcmp(&head, &tail, sizeof(head)) != 0;
			if (v->head_differs) {
				/* Only the time stamp (and so the checksum) differing is benign. */
				head.timestamp = tail.timestamp;
				head.checksum = tail.checksum;
				v->head_stale = !memcmp(&head, &tail, sizeof(head));
			}
		}
		return 0;
	}
	if (head_ok && be32toh(head.disk_type) != VHD_TYPE_FIXED) {
		v->footer = head;
		v->tail_bad = true;
		v->footer_off = 0; /* decided once the blocks are known */
		if (!c)
			log_warn(VHD_LAYER,
				 "'%s': tail footer is damaged, using the copy at offset 0",
				 v->path);
		return 0;
	}
	if (!memcmp(tail.cookie, VHD_FOOTER_COOKIE, 8))
		return vhd_bad(
			c, v, "footer checksum mismatch (stored 0x%08x, computed 0x%08x)",
			be32toh(tail.checksum),
			vhd_checksum(&tail, sizeof(tail), offsetof(struct vhd_footer, checksum)));
	if (!memcmp(head.cookie, VHD_FOOTER_COOKIE, 8))
		return vhd_bad(c, v,
			       "footer copy at offset 0 has a bad checksum and there is no valid "
			       "footer at the end of the file");
	return vhd_bad(c, v, "not a VHD image: no 'conectix' footer at the end or the start");
}

static int vhd_parse_footer(struct vhd *v, struct vhd_chk *c)
{
	const struct vhd_footer *f = &v->footer;
	uint32_t version = be32toh(f->version);
	uint64_t size = be64toh(f->current_size);

	v->type = be32toh(f->disk_type);
	if (v->type != VHD_TYPE_FIXED && v->type != VHD_TYPE_DYNAMIC && v->type != VHD_TYPE_DIFF)
		return vhd_bad(c, v,
			       "unsupported disk type %u (only 2 fixed, 3 dynamic, "
			       "4 differencing exist)",
			       v->type);
	if (version >> 16 != 1)
		return vhd_bad(c, v, "unsupported format version 0x%08x (expected 0x00010000)",
			       version);
	if (!size || size % VHD_SECTOR)
		return vhd_bad(c, v, "virtual size %llu is not a positive multiple of 512",
			       (unsigned long long)size);
	if (v->type == VHD_TYPE_FIXED) {
		uint64_t doff = be64toh(f->data_offset);

		if (doff != VHD_NO_DATA_OFFSET && doff != VHD_NO_DATA_OFFSET32)
			vhd_note(c, "fixed disk has data offset 0x%llx (expected all ones)",
				 (unsigned long long)doff);
		if (size > v->footer_off)
			return vhd_bad(c, v,
				       "file is truncated: fixed disk of %llu bytes needs %llu "
				       "bytes of data but has %llu",
				       (unsigned long long)size, (unsigned long long)size,
				       (unsigned long long)v->footer_off);
		if (size < v->footer_off)
			vhd_note(c, "%llu bytes between the disk data and the footer are unused",
				 (unsigned long long)(v->footer_off - size));
	} else if (size > VHD_MAX_DYNAMIC_SIZE) {
		return vhd_bad(c, v, "virtual size %llu exceeds the 2040 GiB VHD limit",
			       (unsigned long long)size);
	}
	v->bd.size = size;
	return 0;
}

static int vhd_parse_locators(struct vhd *v, struct vhd_chk *c, uint64_t limit, struct vhd_range *r,
			      unsigned *nr)
{
	uint8_t *buf;
	char name[PATH_MAX];

	v->ncand = 0;
	for (int i = 0; i < 8; i++) {
		const struct vhd_parent_locator *l = &v->hdr.locators[i];
		uint32_t code = be32toh(l->platform_code);
		uint32_t len = be32toh(l->data_length);
		uint32_t space = be32toh(l->data_space);
		uint64_t off = be64toh(l->data_offset);
		uint64_t space_bytes;
		int ret;

		if (code == VHD_PLAT_NONE)
			continue;
		/* Data space: bytes in practice, sectors in the 2006 text. */
		space_bytes = space >= len ? space : (uint64_t)space * VHD_SECTOR;
		if (off > limit || space_bytes > limit - off || len > space_bytes)
			return vhd_bad(c, v,
				       "parent locator %d (offset %llu, %llu bytes) lies "
				       "outside the file",
				       i, (unsigned long long)off, (unsigned long long)space_bytes);
		if (space_bytes) {
			r[*nr] = (struct vhd_range){off, off + space_bytes, -1, "parent locator"};
			(*nr)++;
		}
		if (code != VHD_PLAT_W2RU && code != VHD_PLAT_W2KU)
			continue;
		if (len > VHD_MAX_LOCATOR_LEN || len % 2)
			return vhd_bad(c, v, "parent locator %d has a bad length %u", i, len);
		if (!len || v->ncand >= VHD_MAX_CANDIDATES - 1)
			continue;
		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
		ret = vhd_pread(v->fd, buf, len, off);
		if (!ret && vhd_utf16_to_utf8(buf, len / 2, false, name, sizeof(name)) == 0 &&
		    name[0]) {
			/* A relative path goes first: it survives moving the pair. */
			if (code == VHD_PLAT_W2RU && v->ncand) {
				memmove(v->cand[1], v->cand[0], sizeof(v->cand[0]) * v->ncand);
				snprintf(v->cand[0], PATH_MAX, "%s", name);
			} else {
				snprintf(v->cand[v->ncand], PATH_MAX, "%s", name);
			}
			v->ncand++;
		}
		free(buf);
		if (ret < 0)
			return vhd_bad(c, v, "cannot read parent locator %d: %s", i,
				       strerror(-ret));
	}
	/* Last resort: the parent's file name from the header, next to the child. */
	if (vhd_utf16_to_utf8((const uint8_t *)v->hdr.parent_name, 256, true, name, sizeof(name)) ==
		    0 &&
	    name[0]) {
		const char *base = name;

		for (const char *p = name; *p; p++)
			if (*p == '\\' || *p == '/')
				base = p + 1;
		if (*base)
			snprintf(v->cand[v->ncand++], PATH_MAX, "%s", base);
	}
	return 0;
}

/* Reads and checks the dynamic header and the BAT. */
static int vhd_parse_dynamic(struct vhd *v, struct vhd_chk *c)
{
	struct vhd_dyn_header *h = &v->hdr;
	uint64_t hoff = be64toh(v->footer.data_offset);
	uint64_t limit, bat_bytes, need;
	struct vhd_range *r = NULL;
	unsigned nr = 0;
	uint32_t *raw = NULL;
	uint32_t ver;
	int ret;

	/* Everything must end before the tail footer (or EOF when it is damaged). */
	limit = v->tail_bad ? ALIGN_DOWN(v->file_size, (uint64_t)VHD_SECTOR) : v->footer_off;
	if (hoff < VHD_FOOTER_SIZE || hoff > limit || limit - hoff < VHD_HEADER_SIZE)
		return vhd_bad(c, v, "dynamic header offset %llu is outside the file",
			       (unsigned long long)hoff);
	ret = vhd_pread(v->fd, h, sizeof(*h), hoff);
	if (ret < 0)
		return vhd_bad(c, v, "cannot read the dynamic header: %s", strerror(-ret));
	if (memcmp(h->cookie, VHD_HEADER_COOKIE, 8))
		return vhd_bad(c, v, "dynamic header at offset %llu has no 'cxsparse' cookie",
			       (unsigned long long)hoff);
	if (be32toh(h->checksum) !=
	    vhd_checksum(h, sizeof(*h), offsetof(struct vhd_dyn_header, checksum)))
		return vhd_bad(
			c, v,
			"dynamic header checksum mismatch (stored 0x%08x, computed "
			"0x%08x)",
			be32toh(h->checksum),
			vhd_checksum(h, sizeof(*h), offsetof(struct vhd_dyn_header, checksum)));
	ver = be32toh(h->version);
	if (ver >> 16 != 1)
		return vhd_bad(c, v, "unsupported dynamic header version 0x%08x", ver);
	v->block_size = be32toh(h->block_size);
	if (v->block_size < VHD_MIN_BLOCK_SIZE || (v->block_size & (v->block_size - 1)))
		return vhd_bad(c, v, "block size %u is not a power of two of at least 512",
			       v->block_size);
	v->block_shift = (unsigned)__builtin_ctz(v->block_size);
	v->spb = v->block_size / VHD_SECTOR;
	v->bitmap_bytes = ALIGN_UP(DIV_ROUND_UP(v->spb, 8), VHD_SECTOR);
	v->max_entries = be32toh(h->max_table_entries);
	need = DIV_ROUND_UP(v->bd.size, (uint64_t)v->block_size);
	if (v->max_entries < need)
		return vhd_bad(c, v, "BAT has %u entries but the %llu-byte disk needs %llu",
			       v->max_entries, (unsigned long long)v->bd.size,
			       (unsigned long long)need);
	v->table_off = be64toh(h->table_offset);
	bat_bytes = (uint64_t)v->max_entries * 4;
	if (v->table_off < VHD_FOOTER_SIZE || v->table_off > limit ||
	    limit - v->table_off < bat_bytes)
		return vhd_bad(c, v, "BAT (offset %llu, %u entries) does not fit in the file",
			       (unsigned long long)v->table_off, v->max_entries);

	/* Bounded by the file size checked just above. */
	raw = malloc(bat_bytes ? bat_bytes : 1);
	v->bat = malloc(bat_bytes ? bat_bytes : 1);
	v->pending = calloc(v->max_entries ? v->max_entries : 1, 1);
	r = malloc(((size_t)v->max_entries + 12) * sizeof(*r));
	if (!raw || !v->bat || !v->pending || !r) {
		ret = -ENOMEM;
		goto out;
	}
	ret = vhd_pread(v->fd, raw, bat_bytes, v->table_off);
	if (ret < 0) {
		ret = vhd_bad(c, v, "cannot read the BAT: %s", strerror(-ret));
		goto out;
	}
	r[nr++] = (struct vhd_range){0, VHD_FOOTER_SIZE, -1, "footer copy"};
	r[nr++] = (struct vhd_range){hoff, hoff + VHD_HEADER_SIZE, -1, "dynamic header"};
	r[nr++] = (struct vhd_range){v->table_off, v->table_off + bat_bytes, -1, "BAT"};
	if (v->type == VHD_TYPE_DIFF) {
		ret = vhd_parse_locators(v, c, limit, r, &nr);
		if (ret < 0)
			goto out;
	}
	v->meta_end = 0;
	for (unsigned i = 0; i < nr; i++)
		v->meta_end = MAX(v->meta_end, r[i].end);
	v->used_end = v->meta_end;

	for (uint32_t i = 0; i < v->max_entries; i++) {
		uint32_t e = be32toh(raw[i]);
		uint64_t off = (uint64_t)e * VHD_SECTOR;
		uint64_t len = (uint64_t)v->bitmap_bytes + v->block_size;

		v->bat[i] = e;
		if (e == VHD_BAT_UNUSED)
			continue;
		if (off > limit || limit - off < len) {
			ret = vhd_bad(
				c, v,
				"BAT entry %u points to offset %llu, past the end of the data "
				"(%llu bytes)",
				i, (unsigned long long)off, (unsigned long long)limit);
			if (!c)
				goto out;
			v->bat[i] = VHD_BAT_UNUSED;
			continue;
		}
		r[nr++] = (struct vhd_range){off, off + len, i, "block"};
		v->used_end = MAX(v->used_end, off + len);
	}
	qsort(r, nr, sizeof(*r), vhd_range_cmp);
	ret = 0;
	for (unsigned i = 1, prev = 0; i < nr; i++) {
		if (r[i].start < r[prev].end) {
			char a[48], b[48];

			if (r[prev].idx >= 0)
				snprintf(a, sizeof(a), "block %lld", (long long)r[prev].idx);
			else
				snprintf(a, sizeof(a), "%s", r[prev].what);
			if (r[i].idx >= 0)
				snprintf(b, sizeof(b), "block %lld", (long long)r[i].idx);
			else
				snprintf(b, sizeof(b), "%s", r[i].what);
			ret = vhd_bad(c, v, "%s at offset %llu overlaps %s at offset %llu", b,
				      (unsigned long long)r[i].start, a,
				      (unsigned long long)r[prev].start);
			if (!c)
				goto out;
			if (r[i].idx >= 0)
				v->bat[r[i].idx] = VHD_BAT_UNUSED;
			continue;
		}
		prev = i;
	}
	ret = 0;
	if (v->tail_bad)
		v->footer_off = ALIGN_UP(v->used_end, (uint64_t)VHD_SECTOR);
out:
	free(raw);
	free(r);
	return ret;
}

static void vhd_free(struct vhd *v)
{
	if (!v)
		return;
	if (v->bitmaps)
		for (uint32_t i = 0; i < v->max_entries; i++)
			free(v->bitmaps[i]);
	free(v->bitmaps);
	free(v->bm_dirty);
	free(v->bat);
	free(v->pending);
	if (v->parent)
		blockdev_close(v->parent);
	if (v->fd >= 0)
		close(v->fd);
	if (v->direct_fd >= 0)
		close(v->direct_fd);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

/* Opens and validates the file itself (no parent). */
static int vhd_load(const char *path, bool writable, struct vhd_chk *c, struct vhd **out)
{
	struct vhd *v;
	struct stat st;
	int ret;

	*out = NULL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	pthread_mutex_init(&v->lock, NULL);
	v->direct_fd = -1;
	snprintf(v->path, sizeof(v->path), "%s", path);
	v->fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (v->fd < 0) {
		ret = -errno;
		err_set("cannot open '%s': %s", path, strerror(-ret));
		free(v);
		return ret;
	}
	if (fstat(v->fd, &st) < 0) {
		ret = -errno;
		err_set("cannot stat '%s': %s", path, strerror(-ret));
		goto fail;
	}
	v->writable = writable;
	v->file_size = (uint64_t)st.st_size;
	v->file_end = v->file_size;
	ret = vhd_read_footers(v, c);
	if (ret < 0)
		goto fail;
	ret = vhd_parse_footer(v, c);
	if (ret < 0)
		goto fail;
	if (vhd_is_dynamic(v)) {
		ret = vhd_parse_dynamic(v, c);
		if (ret < 0)
			goto fail;
		if (v->type == VHD_TYPE_DIFF) {
			v->bitmaps =
				calloc(v->max_entries ? v->max_entries : 1, sizeof(*v->bitmaps));
			v->bm_dirty = calloc(v->max_entries ? v->max_entries : 1, 1);
			if (!v->bitmaps || !v->bm_dirty) {
				ret = -ENOMEM;
				goto fail;
			}
		}
	} else {
		v->meta_end = v->used_end = be64toh(v->footer.current_size);
	}
	v->bd.ops = &vhd_ops;
	v->bd.format = "vhd";
	v->bd.logical_sector_size = VHD_SECTOR;
	v->bd.physical_sector_size = VHD_SECTOR;
	v->bd.read_only = !writable;
	v->bd.data_fd = v->fd;
	*out = v;
	return 0;
fail:
	vhd_free(v);
	return ret;
}

static int vhd_open_parent(struct vhd *v)
{
	const char *cands[VHD_MAX_CANDIDATES];
	struct disk_info pi;
	uint8_t zero[16] = {0};
	char want[GUID_STR_LEN + 1], got[GUID_STR_LEN + 1];
	int ret;

	for (unsigned i = 0; i < v->ncand; i++)
		cands[i] = v->cand[i];
	if (!v->ncand) {
		err_set("'%s': differencing disk names no parent (no locator, no parent name)",
			v->path);
		return -EINVAL;
	}
	ret = disk_open_parent(v->path, cands, v->ncand, &v->parent, v->parent_path);
	if (ret < 0)
		return ret;
	ret = disk_info_get(v->parent, &pi);
	if (ret < 0)
		return ret;
	if (memcmp(pi.disk_id.b, v->hdr.parent_unique_id, 16) &&
	    memcmp(v->hdr.parent_unique_id, zero, 16)) {
		struct guid w;

		memcpy(w.b, v->hdr.parent_unique_id, 16);
		err_set("'%s': parent '%s' has unique id %s but the child expects %s: wrong or "
			"replaced parent (the child's data would be read over the wrong disk)",
			v->path, v->parent_path, guid_format(&pi.disk_id, got),
			guid_format(&w, want));
		return -EINVAL;
	}
	if (v->parent->size != v->bd.size) {
		err_set("'%s': parent '%s' is %llu bytes but the child is %llu bytes", v->path,
			v->parent_path, (unsigned long long)v->parent->size,
			(unsigned long long)v->bd.size);
		return -EINVAL;
	}
	/* Spec §1.8: the timestamp check is soft (Virtual Server could override it). */
	if (v->parent->ops == &vhd_ops) {
		const struct vhd *p = (const struct vhd *)v->parent;

		if (p->footer.timestamp != v->hdr.parent_timestamp)
			log_warn(VHD_LAYER,
				 "'%s': parent '%s' time stamp differs from the one "
				 "recorded in the child",
				 v->path, v->parent_path);
	}
	return 0;
}

static int vhd_open(const char *path, unsigned flags, struct blockdev **out)
{
	struct vhd *v;
	int ret;

	*out = NULL;
	ret = vhd_load(path, !(flags & DISK_OPEN_RDONLY), NULL, &v);
	if (ret < 0)
		return ret;
	if (be32toh(v->footer.features) & 1)
		log_debug(VHD_LAYER, "'%s' is marked as a temporary disk", path);
	if (v->footer.saved_state && v->writable)
		log_warn(VHD_LAYER, "'%s' belongs to a VM in saved state", path);
	if (v->type == VHD_TYPE_DIFF) {
		ret = vhd_open_parent(v);
		if (ret < 0) {
			vhd_free(v);
			return ret;
		}
	}
	if (flags & DISK_OPEN_DIRECT) {
		/*
		 * Only the queue's mapped data I/O bypasses the cache; the driver's own
		 * (metadata, small bitmap writes) stays buffered on v->fd. The kernel
		 * keeps both views coherent and fdatasync on either fd covers the file.
		 */
		v->direct_fd = open(path, (v->writable ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
		if (v->direct_fd < 0) {
			ret = -errno;
			err_set("'%s': cannot open with O_DIRECT: %s", path, strerror(-ret));
			vhd_free(v);
			return ret;
		}
		v->bd.data_fd = v->direct_fd;
	}
	*out = &v->bd;
	return 0;
}

/* ---------------- I/O ---------------- */

struct vhd_iovc {
	const struct iovec *iov;
	int cnt;
	int i;
	size_t off;
};

/* Takes len bytes from the cursor into out[] (at most cur->cnt entries). */
static int vhd_iov_take(struct vhd_iovc *cur, uint64_t len, struct iovec *out)
{
	int n = 0;

	while (len) {
		size_t chunk;

		if (cur->i >= cur->cnt)
			return -EINVAL;
		chunk = cur->iov[cur->i].iov_len - cur->off;
		if (chunk > len)
			chunk = (size_t)len;
		if (chunk) {
			out[n].iov_base = (char *)cur->iov[cur->i].iov_base + cur->off;
			out[n].iov_len = chunk;
			n++;
		}
		cur->off += chunk;
		len -= chunk;
		if (cur->off == cur->iov[cur->i].iov_len) {
			cur->i++;
			cur->off = 0;
		}
	}
	return n;
}

static int vhd_rw_full(int fd, struct iovec *iov, int n, uint64_t off, bool write)
{
	while (n > 0) {
		ssize_t r = write ? pwritev(fd, iov, n > IOV_MAX ? IOV_MAX : n, (off_t)off)
				  : preadv(fd, iov, n > IOV_MAX ? IOV_MAX : n, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		off += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static void vhd_iov_zero(struct iovec *iov, int n)
{
	for (int i = 0; i < n; i++)
		memset(iov[i].iov_base, 0, iov[i].iov_len);
}

static uint32_t vhd_bat_get(struct vhd *v, uint64_t blk)
{
	return __atomic_load_n(&v->bat[blk], __ATOMIC_ACQUIRE);
}

static uint64_t vhd_block_data(const struct vhd *v, uint32_t e)
{
	return (uint64_t)e * VHD_SECTOR + v->bitmap_bytes;
}

/* Differencing: the cached bitmap of an allocated block, loaded on first use. */
static int vhd_bitmap_get(struct vhd *v, uint64_t blk, uint8_t **out)
{
	uint8_t *bm = __atomic_load_n(&v->bitmaps[blk], __ATOMIC_ACQUIRE);
	int ret = 0;

	if (bm) {
		*out = bm;
		return 0;
	}
	pthread_mutex_lock(&v->lock);
	bm = v->bitmaps[blk];
	if (!bm) {
		bm = malloc(v->bitmap_bytes);
		if (!bm) {
			ret = -ENOMEM;
		} else {
			ret = vhd_pread(v->fd, bm, v->bitmap_bytes,
					(uint64_t)v->bat[blk] * VHD_SECTOR);
			if (ret < 0) {
				free(bm);
				bm = NULL;
				err_set("'%s': cannot read the bitmap of block %llu", v->path,
					(unsigned long long)blk);
			} else {
				__atomic_store_n(&v->bitmaps[blk], bm, __ATOMIC_RELEASE);
			}
		}
	}
	pthread_mutex_unlock(&v->lock);
	*out = bm;
	return ret;
}

static bool vhd_bit(const uint8_t *bm, uint32_t s)
{
	return __atomic_load_n(&bm[s / 8], __ATOMIC_RELAXED) & (0x80 >> (s % 8));
}

/* Sectors from s (< end) with the same bit value as sector s. */
static uint32_t vhd_bit_run(const uint8_t *bm, uint32_t s, uint32_t end)
{
	bool b = vhd_bit(bm, s);
	uint32_t e = s + 1;

	while (e < end && vhd_bit(bm, e) == b)
		e++;
	return e - s;
}

static int vhd_parent_read(struct vhd *v, struct iovec *iov, int n, uint64_t off)
{
	if (!v->parent) {
		vhd_iov_zero(iov, n);
		return 0;
	}
	return blockdev_readv(v->parent, iov, n, off);
}

static int vhd_readv(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset)
{
	struct vhd *v = (struct vhd *)bd;
	struct vhd_iovc cur = {iov, iovcnt, 0, 0};
	uint64_t total = 0, end;
	struct iovec *sub;
	int ret = 0;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	sub = malloc(sizeof(*sub) * (size_t)(iovcnt ? iovcnt : 1));
	if (!sub)
		return -ENOMEM;
	if (v->type == VHD_TYPE_FIXED) {
		int n = vhd_iov_take(&cur, total, sub);

		ret = n < 0 ? n : vhd_rw_full(v->fd, sub, n, offset, false);
		free(sub);
		return ret;
	}
	end = offset + total;
	while (offset < end && !ret) {
		uint64_t blk = offset >> v->block_shift;
		uint64_t in = offset & (v->block_size - 1);
		uint64_t len = MIN(end - offset, v->block_size - in);
		uint32_t e = vhd_bat_get(v, blk);
		uint8_t *bm;
		int n;

		if (e == VHD_BAT_UNUSED) {
			n = vhd_iov_take(&cur, len, sub);
			if (v->type == VHD_TYPE_DIFF)
				ret = vhd_parent_read(v, sub, n, offset);
			else
				vhd_iov_zero(sub, n);
		} else if (v->type == VHD_TYPE_DYNAMIC) {
			n = vhd_iov_take(&cur, len, sub);
			ret = vhd_rw_full(v->fd, sub, n, vhd_block_data(v, e) + in, false);
		} else {
			uint32_t s = (uint32_t)(in / VHD_SECTOR);
			uint32_t se = s + (uint32_t)(len / VHD_SECTOR);

			ret = vhd_bitmap_get(v, blk, &bm);
			while (!ret && s < se) {
				uint32_t run = vhd_bit_run(bm, s, se);
				uint64_t rl = (uint64_t)run * VHD_SECTOR;

				n = vhd_iov_take(&cur, rl, sub);
				if (vhd_bit(bm, s))
					ret = vhd_rw_full(v->fd, sub, n,
							  vhd_block_data(v, e) +
								  (uint64_t)s * VHD_SECTOR,
							  false);
				else
					ret = vhd_parent_read(v, sub, n,
							      (blk << v->block_shift) +
								      (uint64_t)s * VHD_SECTOR);
				s += run;
			}
		}
		offset += len;
	}
	free(sub);
	if (ret < 0 && ret != -ENOMEM)
		err_set("'%s': read failed: %s", v->path, strerror(-ret));
	return ret;
}

static void vhd_bits_set(uint8_t *bm, uint32_t s, uint32_t n)
{
	for (uint32_t i = s; i < s + n; i++)
		__atomic_fetch_or(&bm[i / 8], (uint8_t)(0x80 >> (i % 8)), __ATOMIC_RELAXED);
}

/*
 * Allocates block blk and writes the request's piece into it; called with the
 * lock held. Ordering in the file: footer at the new EOF, then bitmap and
 * data; the BAT entry is only recorded in memory (written at flush after an
 * fdatasync), so the file is consistent at every instant.
 */
static int vhd_alloc_write(struct vhd *v, uint64_t blk, uint64_t in, struct iovec *sub, int n,
			   uint64_t len)
{
	uint64_t old_off = v->footer_off;
	uint64_t data_off = ALIGN_UP(old_off + v->bitmap_bytes, (uint64_t)4096);
	uint64_t bm_off = data_off - v->bitmap_bytes;
	uint64_t new_footer = data_off + v->block_size;
	size_t pre = (size_t)(bm_off - old_off); /* < 4096: alignment gap */
	uint8_t *buf = NULL, *bm;
	int ret;

	if (new_footer + VHD_FOOTER_SIZE > VHD_MAX_FILE_SIZE) {
		err_set("'%s': the VHD file would exceed 2 TiB (32-bit BAT sector numbers)",
			v->path);
		return -EFBIG;
	}
	/* Junk after a damaged tail (found at open) must not show up in the new block. */
	if (v->file_end > old_off) {
		if (ftruncate(v->fd, (off_t)old_off) < 0)
			return -errno;
		v->file_end = old_off;
	}
	ret = vhd_pwrite(v->fd, &v->footer, sizeof(v->footer), new_footer);
	if (ret < 0)
		return ret;
	/* The tail footer now lives at new_footer; the space before it is a leak until the
	 * BAT entry lands. */
	v->footer_off = new_footer;
	v->file_end = new_footer + VHD_FOOTER_SIZE;
	v->tail_bad = false;

	/* One write clears the old footer (and the alignment gap) and puts the bitmap. */
	if (posix_memalign((void **)&buf, 4096, pre + v->bitmap_bytes))
		return -ENOMEM;
	memset(buf, 0, pre);
	bm = buf + pre;
	if (v->type == VHD_TYPE_DYNAMIC) {
		/* Zero-filled block (file hole) with every sector marked present. */
		memset(bm, 0xFF, v->bitmap_bytes);
	} else {
		memset(bm, 0, v->bitmap_bytes);
		vhd_bits_set(bm, (uint32_t)(in / VHD_SECTOR), (uint32_t)(len / VHD_SECTOR));
	}
	ret = vhd_pwrite(v->fd, buf, pre + v->bitmap_bytes, old_off);
	if (ret < 0)
		goto out;
	ret = vhd_rw_full(v->fd, sub, n, data_off + in, true);
	if (ret < 0)
		goto out;
	if (v->type == VHD_TYPE_DIFF) {
		uint8_t *cache = malloc(v->bitmap_bytes);

		if (!cache) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(cache, bm, v->bitmap_bytes);
		__atomic_store_n(&v->bitmaps[blk], cache, __ATOMIC_RELEASE);
	}
	v->pending[blk] = 1;
	v->meta_dirty = true;
	__atomic_store_n(&v->bat[blk], (uint32_t)(bm_off / VHD_SECTOR), __ATOMIC_RELEASE);
	v->used_end = MAX(v->used_end, new_footer);
out:
	free(buf);
	return ret;
}

static int vhd_flush_locked(struct vhd *v);

static int vhd_writev(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset,
		      unsigned flags)
{
	struct vhd *v = (struct vhd *)bd;
	struct vhd_iovc cur = {iov, iovcnt, 0, 0};
	uint64_t total = 0, end;
	struct iovec *sub;
	int ret = 0;

	if (!v->writable)
		return -EROFS;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	sub = malloc(sizeof(*sub) * (size_t)(iovcnt ? iovcnt : 1));
	if (!sub)
		return -ENOMEM;
	if (v->type == VHD_TYPE_FIXED) {
		int n = vhd_iov_take(&cur, total, sub);

		ret = n < 0 ? n : vhd_rw_full(v->fd, sub, n, offset, true);
		goto out;
	}
	end = offset + total;
	while (offset < end && !ret) {
		uint64_t blk = offset >> v->block_shift;
		uint64_t in = offset & (v->block_size - 1);
		uint64_t len = MIN(end - offset, v->block_size - in);
		uint32_t e = vhd_bat_get(v, blk);
		int n = vhd_iov_take(&cur, len, sub);

		if (n < 0) {
			ret = n;
			break;
		}
		if (e == VHD_BAT_UNUSED) {
			pthread_mutex_lock(&v->lock);
			e = v->bat[blk];
			if (e == VHD_BAT_UNUSED) {
				ret = vhd_alloc_write(v, blk, in, sub, n, len);
				pthread_mutex_unlock(&v->lock);
				offset += len;
				continue;
			}
			pthread_mutex_unlock(&v->lock);
		}
		ret = vhd_rw_full(v->fd, sub, n, vhd_block_data(v, e) + in, true);
		if (!ret && v->type == VHD_TYPE_DIFF) {
			uint8_t *bm;
			uint32_t s = (uint32_t)(in / VHD_SECTOR), ns = (uint32_t)(len / VHD_SECTOR);

			ret = vhd_bitmap_get(v, blk, &bm);
			if (!ret) {
				/* After the data: the bit reaches the disk at the next flush,
				 * behind an fdatasync. */
				pthread_mutex_lock(&v->lock);
				if (vhd_bit_run(bm, s, s + ns) != ns || !vhd_bit(bm, s)) {
					vhd_bits_set(bm, s, ns);
					v->bm_dirty[blk] = 1;
					v->meta_dirty = true;
				}
				pthread_mutex_unlock(&v->lock);
			}
		}
		offset += len;
	}
out:
	free(sub);
	if (!ret && (flags & BLOCKDEV_WRITE_FUA)) {
		pthread_mutex_lock(&v->lock);
		ret = vhd_flush_locked(v);
		pthread_mutex_unlock(&v->lock);
	}
	if (ret < 0 && ret != -ENOMEM && ret != -EFBIG)
		err_set("'%s': write failed: %s", v->path, strerror(-ret));
	return ret;
}

/* fdatasync (data) -> BAT entries and bitmaps -> fdatasync. Lock held. */
static int vhd_flush_locked(struct vhd *v)
{
	uint32_t be_sector[VHD_SECTOR / 4];
	int ret;

	ret = vhd_sync(v->fd);
	if (ret < 0 || !v->meta_dirty)
		return ret;
	for (uint32_t i = 0; i < v->max_entries && !ret; i++) {
		uint32_t first, last;

		if (v->type == VHD_TYPE_DIFF && v->bm_dirty[i] && v->bitmaps[i]) {
			ret = vhd_pwrite(v->fd, v->bitmaps[i], v->bitmap_bytes,
					 (uint64_t)v->bat[i] * VHD_SECTOR);
			if (ret < 0)
				break;
			v->bm_dirty[i] = 0;
		}
		if (!v->pending[i])
			continue;
		/* Rewrite the whole 512-byte BAT sector holding entry i (sector-atomic). */
		first = i - i % (VHD_SECTOR / 4);
		last = MIN(first + VHD_SECTOR / 4, v->max_entries);
		memset(be_sector, 0xFF, sizeof(be_sector));
		for (uint32_t k = first; k < last; k++) {
			be_sector[k - first] = htobe32(v->bat[k]);
			v->pending[k] = 0;
		}
		ret = vhd_pwrite(v->fd, be_sector, (last - first) * 4,
				 v->table_off + (uint64_t)first * 4);
	}
	if (!ret)
		ret = vhd_sync(v->fd);
	if (!ret)
		v->meta_dirty = false;
	return ret;
}

static int vhd_flush(struct blockdev *bd)
{
	struct vhd *v = (struct vhd *)bd;
	int ret;

	if (!v->writable)
		return 0;
	pthread_mutex_lock(&v->lock);
	ret = vhd_flush_locked(v);
	pthread_mutex_unlock(&v->lock);
	if (ret < 0)
		err_set("'%s': flush failed: %s", v->path, strerror(-ret));
	return ret;
}

static int vhd_map(struct blockdev *bd, uint64_t offset, uint64_t len, bool for_write,
		   struct blockdev_extent *ext)
{
	struct vhd *v = (struct vhd *)bd;
	uint64_t blk, in, within;
	uint32_t e;

	if (v->type == VHD_TYPE_FIXED) {
		*ext = (struct blockdev_extent){BLOCKDEV_EXTENT_DATA, offset, len};
		return 0;
	}
	blk = offset >> v->block_shift;
	in = offset & (v->block_size - 1);
	within = MIN(len, v->block_size - in);
	/* Never wait behind an allocation in progress: the slow path will. */
	if (pthread_mutex_trylock(&v->lock)) {
		*ext = (struct blockdev_extent){BLOCKDEV_EXTENT_SLOW, 0, within};
		return 0;
	}
	e = v->bat[blk];
	if (e == VHD_BAT_UNUSED) {
		if (!for_write && v->type == VHD_TYPE_DYNAMIC) {
			/* Merge following unallocated blocks into one ZERO extent. */
			uint64_t l = within;

			while (l < len && v->bat[(offset + l) >> v->block_shift] == VHD_BAT_UNUSED)
				l += MIN(len - l, (uint64_t)v->block_size);
			*ext = (struct blockdev_extent){BLOCKDEV_EXTENT_ZERO, 0, l};
		} else {
			*ext = (struct blockdev_extent){BLOCKDEV_EXTENT_SLOW, 0, within};
		}
	} else if (for_write && v->pending[blk]) {
		/* Its BAT entry is not durable yet: a FUA write must come through us. */
		*ext = (struct blockdev_extent){BLOCKDEV_EXTENT_SLOW, 0, within};
	} else if (v->type == VHD_TYPE_DYNAMIC) {
		*ext = (struct blockdev_extent){BLOCKDEV_EXTENT_DATA, vhd_block_data(v, e) + in,
						within};
	} else {
		const uint8_t *bm = v->bitmaps[blk];
		uint32_t s = (uint32_t)(in / VHD_SECTOR);
		uint32_t se = s + (uint32_t)(within / VHD_SECTOR);

		if (bm && vhd_bit(bm, s) && !(for_write && v->bm_dirty[blk]))
			*ext = (struct blockdev_extent){
				BLOCKDEV_EXTENT_DATA, vhd_block_data(v, e) + in,
				(uint64_t)vhd_bit_run(bm, s, se) * VHD_SECTOR};
		else if (bm && !vhd_bit(bm, s))
			*ext = (struct blockdev_extent){BLOCKDEV_EXTENT_SLOW, 0,
							(uint64_t)vhd_bit_run(bm, s, se) *
								VHD_SECTOR};
		else
			*ext = (struct blockdev_extent){BLOCKDEV_EXTENT_SLOW, 0, within};
	}
	pthread_mutex_unlock(&v->lock);
	return 0;
}

static int vhd_block_status(struct blockdev *bd, uint64_t offset, uint64_t len, int *status,
			    uint64_t *run_len)
{
	struct vhd *v = (struct vhd *)bd;
	uint64_t blk, in, within, l;
	uint32_t e;
	int st;

	if (v->type == VHD_TYPE_FIXED) {
		*status = BLOCKDEV_STATUS_DATA;
		*run_len = len;
		return 0;
	}
	blk = offset >> v->block_shift;
	in = offset & (v->block_size - 1);
	within = MIN(len, v->block_size - in);
	e = vhd_bat_get(v, blk);
	if (e != VHD_BAT_UNUSED && v->type == VHD_TYPE_DIFF) {
		uint8_t *bm;
		uint32_t s = (uint32_t)(in / VHD_SECTOR);
		int ret = vhd_bitmap_get(v, blk, &bm);

		if (ret < 0)
			return ret;
		*status = vhd_bit(bm, s) ? BLOCKDEV_STATUS_DATA : BLOCKDEV_STATUS_UNALLOCATED;
		*run_len = (uint64_t)vhd_bit_run(bm, s, s + (uint32_t)(within / VHD_SECTOR)) *
			   VHD_SECTOR;
		return 0;
	}
	st = e == VHD_BAT_UNUSED ? BLOCKDEV_STATUS_UNALLOCATED : BLOCKDEV_STATUS_DATA;
	l = within;
	/* Whole following blocks with the same answer join the run. */
	while (l < len) {
		uint32_t n = vhd_bat_get(v, (offset + l) >> v->block_shift);

		if ((n == VHD_BAT_UNUSED) != (st == BLOCKDEV_STATUS_UNALLOCATED) ||
		    (n != VHD_BAT_UNUSED && v->type == VHD_TYPE_DIFF))
			break;
		l += MIN(len - l, (uint64_t)v->block_size);
	}
	*status = st;
	*run_len = l;
	return 0;
}

/* Rewrites the tail footer at footer_off and cuts what follows (torn blocks, junk). */
static int vhd_write_tail(struct vhd *v)
{
	int ret = vhd_pwrite(v->fd, &v->footer, sizeof(v->footer), v->footer_off);

	if (!ret && ftruncate(v->fd, (off_t)(v->footer_off + VHD_FOOTER_SIZE)) < 0)
		ret = -errno;
	if (!ret)
		ret = vhd_sync(v->fd);
	if (!ret) {
		v->file_end = v->footer_off + VHD_FOOTER_SIZE;
		v->tail_bad = false;
	}
	return ret;
}

static int vhd_close(struct blockdev *bd)
{
	struct vhd *v = (struct vhd *)bd;
	int ret = 0;

	if (v->writable) {
		pthread_mutex_lock(&v->lock);
		ret = vhd_flush_locked(v);
		if (!ret && v->tail_bad)
			ret = vhd_write_tail(v);
		pthread_mutex_unlock(&v->lock);
		if (ret < 0)
			err_set("'%s': flush on close failed: %s", v->path, strerror(-ret));
	}
	vhd_free(v);
	return ret;
}

static const struct blockdev_ops vhd_ops = {
	.readv = vhd_readv,
	.writev = vhd_writev,
	.flush = vhd_flush,
	.discard = NULL, /* VHD cannot free a block in place: discard is a no-op */
	.map = vhd_map,
	.block_status = vhd_block_status,
	.close = vhd_close,
};

/* ---------------- probe, info ---------------- */

static bool vhd_probe(const uint8_t *head, size_t head_len, const uint8_t *tail, uint64_t file_size)
{
	if (head_len >= 8 && !memcmp(head, VHD_FOOTER_COOKIE, 8))
		return true;
	if (file_size >= VHD_FOOTER_SIZE && !memcmp(tail, VHD_FOOTER_COOKIE, 8))
		return true;
	/* 511-byte footer: the cookie starts one byte into the last 512 bytes. */
	return file_size >= VHD_FOOTER_SIZE && !memcmp(tail + 1, VHD_FOOTER_COOKIE, 8);
}

static int vhd_info(struct blockdev *bd, struct disk_info *info)
{
	struct vhd *v = (struct vhd *)bd;
	const struct vhd_footer *f = &v->footer;
	uint32_t cv = be32toh(f->creator_version);
	char app[5];
	struct stat st;
	int n;

	info->format = DISK_FORMAT_VHD;
	info->type = v->type == VHD_TYPE_FIXED	   ? DISK_TYPE_FIXED
		     : v->type == VHD_TYPE_DYNAMIC ? DISK_TYPE_DYNAMIC
						   : DISK_TYPE_DIFFERENCING;
	info->virtual_size = v->bd.size;
	info->block_size = vhd_is_dynamic(v) ? v->block_size : 0;
	info->logical_sector_size = VHD_SECTOR;
	info->physical_sector_size = VHD_SECTOR;
	if (fstat(v->fd, &st) == 0) {
		info->file_size = (uint64_t)st.st_size;
		info->allocated_bytes = (uint64_t)st.st_blocks * 512;
	}
	memcpy(info->disk_id.b, f->unique_id, 16);
	memcpy(app, f->creator_app, 4);
	app[4] = '\0';
	for (n = 3; n >= 0 && (app[n] == ' ' || app[n] == '\0'); n--)
		app[n] = '\0';
	for (int i = 0; app[i]; i++)
		if ((unsigned char)app[i] < 0x20 || (unsigned char)app[i] > 0x7e)
			app[i] = '?';
	snprintf(info->creator, sizeof(info->creator), "%s %u.%u", app, cv >> 16, cv & 0xFFFF);
	snprintf(info->parent_path, sizeof(info->parent_path), "%s", v->parent_path);
	return 0;
}

static struct blockdev *vhd_parent(struct blockdev *bd)
{
	return ((struct vhd *)bd)->parent;
}

/* ---------------- create ---------------- */

static void vhd_footer_init(struct vhd_footer *f, unsigned type, uint64_t size)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->cookie, VHD_FOOTER_COOKIE, 8);
	f->features = htobe32(VHD_FEATURES_RESERVED);
	f->version = htobe32(VHD_VERSION);
	f->data_offset = htobe64(type == VHD_TYPE_FIXED ? VHD_NO_DATA_OFFSET : VHD_FOOTER_SIZE);
	f->timestamp = htobe32(vhd_now());
	memcpy(f->creator_app, VHD_CREATOR_APP, 4);
	f->creator_version = htobe32(VHD_CREATOR_VERSION);
	f->creator_os = htobe32(VHD_OS_WI2K);
	f->original_size = htobe64(size);
	f->current_size = htobe64(size);
	{
		uint16_t cyl;
		uint8_t heads, spt;

		vhd_chs_geometry(size, &cyl, &heads, &spt);
		f->cylinders = htobe16(cyl);
		f->heads = heads;
		f->sectors = spt;
	}
	f->disk_type = htobe32(type);
	guid_generate((struct guid *)f->unique_id);
	vhd_footer_seal(f);
}

/* Path of target relative to directory dir (both absolute, canonical), with '\'. */
static int vhd_relpath(const char *dir, const char *target, char *out, size_t outsz)
{
	size_t common = 0, i, o = 0;
	const char *rest;

	/* Longest common prefix ending at a path component boundary. */
	for (i = 0; dir[i] && dir[i] == target[i]; i++)
		if (dir[i] == '/')
			common = i + 1;
	if (!dir[i] && target[i] == '/')
		common = i + 1;
	if (!strcmp(dir, "/"))
		common = 1;
	rest = target + common;
	o = (size_t)snprintf(out, outsz, ".");
	for (const char *p = dir + common; *p; p++) {
		if (p == dir + common || p[-1] == '/') {
			if (*p == '/')
				continue;
			o += (size_t)snprintf(out + MIN(o, outsz), o < outsz ? outsz - o : 0,
					      "\\..");
		}
	}
	o += (size_t)snprintf(out + MIN(o, outsz), o < outsz ? outsz - o : 0, "\\%s", rest);
	if (o >= outsz)
		return -ENAMETOOLONG;
	for (char *p = out; *p; p++)
		if (*p == '/')
			*p = '\\';
	return 0;
}

struct vhd_parent_desc {
	uint64_t size;
	uint8_t uid[16];
	uint32_t timestamp; /* wire order */
	char abs[PATH_MAX];
	char rel[PATH_MAX];
};

static int vhd_describe_parent(const char *child, const char *parent, struct vhd_parent_desc *d)
{
	struct blockdev *p;
	struct disk_info pi;
	char dir[PATH_MAX], cdir[PATH_MAX];
	const char *slash;
	struct stat st;
	int ret;

	ret = disk_open(parent, DISK_FORMAT_AUTO, DISK_OPEN_RDONLY, &p);
	if (ret < 0) {
		err_prefix("cannot open parent '%s'", parent);
		return ret;
	}
	d->size = p->size;
	ret = disk_info_get(p, &pi);
	if (!ret) {
		memcpy(d->uid, pi.disk_id.b, 16);
		if (p->ops == &vhd_ops) {
			d->timestamp = ((struct vhd *)p)->footer.timestamp;
		} else if (fstat(p->data_fd, &st) == 0 && st.st_mtime > (time_t)VHD_EPOCH_OFFSET) {
			d->timestamp = htobe32((uint32_t)(st.st_mtime - VHD_EPOCH_OFFSET));
		}
	}
	blockdev_close(p);
	if (ret < 0)
		return ret;
	if (!realpath(parent, d->abs)) {
		ret = -errno;
		err_set("cannot resolve parent path '%s': %s", parent, strerror(-ret));
		return ret;
	}
	slash = strrchr(child, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - child + (slash == child)), child);
	if (!realpath(dir, cdir)) {
		ret = -errno;
		err_set("cannot resolve the directory of '%s': %s", child, strerror(-ret));
		return ret;
	}
	ret = vhd_relpath(cdir, d->abs, d->rel, sizeof(d->rel));
	if (ret < 0)
		err_set("parent path '%s' is too long", d->abs);
	return ret;
}

static int vhd_create(const char *path, const struct disk_create_opts *o)
{
	struct vhd_parent_desc *pd = NULL;
	struct vhd_footer f;
	struct vhd_dyn_header *h;
	unsigned type;
	uint64_t size = o->size, n, bat_bytes, meta;
	uint32_t bs = o->block_size ? o->block_size : VHD_DEFAULT_BLOCK_SIZE;
	uint8_t *buf = NULL;
	int fd = -1, ret;

	if (o->logical_sector_size && o->logical_sector_size != VHD_SECTOR) {
		err_set("VHD only supports 512-byte logical sectors (use vhdx for 4K)");
		return -EINVAL;
	}
	type = o->type == DISK_TYPE_FIXED     ? VHD_TYPE_FIXED
	       : o->type == DISK_TYPE_DYNAMIC ? VHD_TYPE_DYNAMIC
					      : VHD_TYPE_DIFF;
	if (type == VHD_TYPE_DIFF) {
		if (!o->parent) {
			err_set("a differencing VHD needs a parent image");
			return -EINVAL;
		}
		pd = calloc(1, sizeof(*pd));
		if (!pd)
			return -ENOMEM;
		ret = vhd_describe_parent(path, o->parent, pd);
		if (ret < 0)
			goto out;
		if (size && size != pd->size) {
			err_set("a differencing VHD must have its parent's size (%llu bytes)",
				(unsigned long long)pd->size);
			ret = -EINVAL;
			goto out;
		}
		size = pd->size;
	}
	if (!size || size > UINT64_MAX - VHD_SECTOR) {
		err_set("a VHD needs a size above zero");
		ret = -EINVAL;
		goto out;
	}
	size = ALIGN_UP(size, (uint64_t)VHD_SECTOR);
	if (type != VHD_TYPE_FIXED) {
		if (size > VHD_MAX_DYNAMIC_SIZE) {
			err_set("%llu bytes is more than the 2040 GiB a dynamic VHD can hold "
				"(use vhdx)",
				(unsigned long long)size);
			ret = -EINVAL;
			goto out;
		}
		if (bs < VHD_MIN_BLOCK_SIZE || (bs & (bs - 1))) {
			err_set("VHD block size %u must be a power of two of at least 512", bs);
			ret = -EINVAL;
			goto out;
		}
	} else if (size > (uint64_t)INT64_MAX - VHD_FOOTER_SIZE) {
		err_set("size too large");
		ret = -EINVAL;
		goto out;
	}
	vhd_footer_init(&f, type, size);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		err_set("cannot create '%s': %s", path, strerror(-ret));
		goto out;
	}
	if (type == VHD_TYPE_FIXED) {
		if (ftruncate(fd, (off_t)size) < 0) {
			ret = -errno;
			err_set("cannot size '%s' to %llu bytes: %s", path,
				(unsigned long long)size, strerror(-ret));
			goto out;
		}
		ret = vhd_pwrite(fd, &f, sizeof(f), size);
		goto sync;
	}
	n = DIV_ROUND_UP(size, (uint64_t)bs);
	bat_bytes = ALIGN_UP(n * 4, (uint64_t)VHD_SECTOR);
	meta = VHD_FOOTER_SIZE + VHD_HEADER_SIZE + bat_bytes;
	{
		uint8_t rel16[2 * PATH_MAX], abs16[2 * PATH_MAX];
		int nrel = 0, nabs = 0;
		uint64_t rel_space = 0, abs_space = 0;

		if (pd) {
			char absw[PATH_MAX];

			nrel = vhd_utf8_to_utf16(pd->rel, false, rel16, PATH_MAX);
			snprintf(absw, sizeof(absw), "%s", pd->abs);
			for (char *p = absw; *p; p++)
				if (*p == '/')
					*p = '\\';
			nabs = vhd_utf8_to_utf16(absw, false, abs16, PATH_MAX);
			if (nrel < 0 || nabs < 0) {
				err_set("parent path '%s' is not valid UTF-8 or too long", pd->abs);
				ret = -EINVAL;
				goto out;
			}
			rel_space = ALIGN_UP((uint64_t)nrel * 2, (uint64_t)VHD_SECTOR);
			abs_space = ALIGN_UP((uint64_t)nabs * 2, (uint64_t)VHD_SECTOR);
		}
		buf = calloc(1, meta + rel_space + abs_space);
		if (!buf) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(buf, &f, sizeof(f));
		h = (struct vhd_dyn_header *)(buf + VHD_FOOTER_SIZE);
		memcpy(h->cookie, VHD_HEADER_COOKIE, 8);
		h->data_offset = htobe64(VHD_NO_DATA_OFFSET);
		h->table_offset = htobe64(VHD_FOOTER_SIZE + VHD_HEADER_SIZE);
		h->version = htobe32(VHD_VERSION);
		h->max_table_entries = htobe32((uint32_t)n);
		h->block_size = htobe32(bs);
		memset(buf + VHD_FOOTER_SIZE + VHD_HEADER_SIZE, 0xFF, bat_bytes);
		if (pd) {
			const char *base = strrchr(pd->abs, '/');

			memcpy(h->parent_unique_id, pd->uid, 16);
			h->parent_timestamp = pd->timestamp;
			vhd_utf8_to_utf16(base ? base + 1 : pd->abs, true,
					  (uint8_t *)h->parent_name, 256);
			h->locators[0] = (struct vhd_parent_locator){
				.platform_code = htobe32(VHD_PLAT_W2RU),
				.data_space = htobe32((uint32_t)rel_space),
				.data_length = htobe32((uint32_t)nrel * 2),
				.data_offset = htobe64(meta),
			};
			memcpy(buf + meta, rel16, (size_t)nrel * 2);
			h->locators[1] = (struct vhd_parent_locator){
				.platform_code = htobe32(VHD_PLAT_W2KU),
				.data_space = htobe32((uint32_t)abs_space),
				.data_length = htobe32((uint32_t)nabs * 2),
				.data_offset = htobe64(meta + rel_space),
			};
			memcpy(buf + meta + rel_space, abs16, (size_t)nabs * 2);
			meta += rel_space + abs_space;
		}
		vhd_header_seal(h);
	}
	ret = vhd_pwrite(fd, buf, meta, 0);
	if (!ret)
		ret = vhd_pwrite(fd, &f, sizeof(f), meta);
sync:
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (ret < 0)
		err_set("cannot write '%s': %s", path, strerror(-ret));
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(pd);
	return ret;
}

/* ---------------- check / repair ---------------- */

static bool vhd_creator_uses_chs(const struct vhd_footer *f)
{
	static const char *const apps[] = {"vpc ", "vs  ", "qemu", "vbox"};

	for (size_t i = 0; i < ARRAY_SIZE(apps); i++)
		if (!memcmp(f->creator_app, apps[i], 4))
			return true;
	return false;
}

static int vhd_check(const char *path, bool repair, struct disk_check_result *res, FILE *report)
{
	struct vhd_chk c = {report, res};
	struct vhd *v;
	uint64_t size;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = vhd_load(path, repair, &c, &v);
	if (ret == -EINVAL)
		return 0; /* reported as a finding */
	if (ret < 0) {
		/* Could not even read the file. */
		vhd_chk_line(&c, true, err_msg());
		return ret;
	}
	size = v->bd.size;
	if (vhd_creator_uses_chs(&v->footer)) {
		uint64_t chs = (uint64_t)be16toh(v->footer.cylinders) * v->footer.heads *
			       v->footer.sectors * VHD_SECTOR;

		if (chs != size && !(be16toh(v->footer.cylinders) == 65535 &&
				     v->footer.heads == 16 && v->footer.sectors == 255))
			vhd_note(&c,
				 "warning: creator '%.4s' implies the CHS size %llu but "
				 "CurrentSize is %llu (we use CurrentSize, like Hyper-V)",
				 v->footer.creator_app, (unsigned long long)chs,
				 (unsigned long long)size);
	}
	if (v->footer.saved_state)
		vhd_note(&c, "warning: the disk is marked as belonging to a saved VM state");
	if (v->old_footer)
		vhd_note(&c, "warning: 511-byte footer of a very old writer");
	if (vhd_is_dynamic(v)) {
		uint64_t end = ALIGN_UP(v->used_end, (uint64_t)VHD_SECTOR);

		if (v->tail_bad) {
			if (repair) {
				v->footer_off = end;
				ret = vhd_write_tail(v);
				if (ret < 0)
					goto io_fail;
				vhd_note(&c,
					 "repaired: tail footer rewritten from the copy at "
					 "offset 0 at %llu",
					 (unsigned long long)end);
				res->repaired++;
			} else {
				vhd_bad(&c, v,
					"footer at the end of the file is missing or damaged "
					"(the copy at offset 0 is good; repair rewrites it)");
			}
		} else if (v->footer_off > end) {
			/* Space after the last block: a torn or unreferenced allocation. */
			uint64_t leak = v->footer_off - end;

			if (repair) {
				v->footer_off = end;
				ret = vhd_write_tail(v);
				if (ret < 0)
					goto io_fail;
				vhd_note(&c,
					 "repaired: %llu unreferenced bytes before the footer "
					 "truncated",
					 (unsigned long long)leak);
				res->repaired++;
			} else {
				vhd_note(&c,
					 "leak: %llu bytes before the footer belong to no block",
					 (unsigned long long)leak);
				res->leaks++;
			}
		}
		if (v->head_bad || v->head_differs) {
			const char *what =
				v->head_bad ? "damaged" : "different from the tail footer";

			if (repair) {
				ret = vhd_pwrite(v->fd, &v->footer, sizeof(v->footer), 0);
				if (!ret)
					ret = vhd_sync(v->fd);
				if (ret < 0)
					goto io_fail;
				vhd_note(&c, "repaired: footer copy at offset 0 (was %s)", what);
				res->repaired++;
			} else if (v->head_stale) {
				vhd_note(
					&c,
					"warning: footer copy at offset 0 has an older time stamp");
			} else {
				vhd_bad(&c, v, "footer copy at offset 0 is %s", what);
			}
		}
		if (v->type == VHD_TYPE_DIFF && !res->errors) {
			struct blockdev *bd;

			if (vhd_open(path, DISK_OPEN_RDONLY, &bd) < 0)
				vhd_bad(&c, v, "parent: %s", err_msg());
			else
				blockdev_close(bd);
		}
	}
	vhd_free(v);
	return 0;
io_fail:
	vhd_bad(&c, v, "repair failed: %s", strerror(-ret));
	vhd_free(v);
	return ret;
}

/* ---------------- merge, resize ---------------- */

static int vhd_merge(struct blockdev *child)
{
	struct vhd *v = (struct vhd *)child;
	struct blockdev *p;
	uint8_t *buf;
	int ret;

	if (child->ops != &vhd_ops || v->type != VHD_TYPE_DIFF || !v->parent) {
		err_set("'%s' is not a differencing VHD with an open parent", v->path);
		return -EINVAL;
	}
	ret = vhd_flush(child);
	if (ret < 0)
		return ret;
	ret = disk_open(v->parent_path, DISK_FORMAT_AUTO, 0, &p);
	if (ret < 0) {
		err_prefix("cannot open parent '%s' for writing", v->parent_path);
		return ret;
	}
	if (p->size != child->size) {
		err_set("parent '%s' size changed", v->parent_path);
		blockdev_close(p);
		return -EINVAL;
	}
	/* Bounded chunks: the block size comes from the file (up to 2 GiB). */
	buf = malloc(VHD_MERGE_CHUNK);
	if (!buf) {
		blockdev_close(p);
		return -ENOMEM;
	}
	for (uint64_t blk = 0; blk < v->max_entries && !ret; blk++) {
		uint64_t base = blk << v->block_shift;
		uint32_t e = vhd_bat_get(v, blk), s = 0, se;
		uint8_t *bm;

		if (e == VHD_BAT_UNUSED || base >= child->size)
			continue;
		se = (uint32_t)(MIN((uint64_t)v->block_size, child->size - base) / VHD_SECTOR);
		ret = vhd_bitmap_get(v, blk, &bm);
		while (!ret && s < se) {
			uint32_t run = vhd_bit_run(bm, s, se);
			uint64_t len = (uint64_t)run * VHD_SECTOR;

			for (uint64_t done = 0; vhd_bit(bm, s) && !ret && done < len;) {
				uint64_t n = MIN(len - done, (uint64_t)VHD_MERGE_CHUNK);
				uint64_t at = (uint64_t)s * VHD_SECTOR + done;

				ret = vhd_pread(v->fd, buf, n, vhd_block_data(v, e) + at);
				if (!ret)
					ret = blockdev_write(p, buf, n, base + at, 0);
				done += n;
			}
			s += run;
		}
	}
	free(buf);
	if (!ret)
		ret = blockdev_flush(p);
	if (ret < 0)
		err_prefix("merging '%s' into '%s'", v->path, v->parent_path);
	{
		int r2 = blockdev_close(p);

		if (!ret)
			ret = r2;
	}
	return ret;
}

static void vhd_footer_resize(struct vhd_footer *f, uint64_t size)
{
	uint16_t cyl;
	uint8_t heads, spt;

	f->current_size = htobe64(size);
	vhd_chs_geometry(size, &cyl, &heads, &spt);
	f->cylinders = htobe16(cyl);
	f->heads = heads;
	f->sectors = spt;
	vhd_footer_seal(f);
}

static int vhd_resize_fixed(struct vhd *v, uint64_t size)
{
	uint64_t old = v->bd.size;
	uint8_t zero[VHD_FOOTER_SIZE] = {0};
	int ret;

	vhd_footer_resize(&v->footer, size);
	/* New footer first (the file always ends in a valid one), then clear the old. */
	ret = vhd_pwrite(v->fd, &v->footer, sizeof(v->footer), size);
	if (!ret)
		ret = vhd_sync(v->fd);
	if (!ret)
		ret = vhd_pwrite(v->fd, zero,
				 v->footer_off + VHD_FOOTER_SIZE <= size
					 ? VHD_FOOTER_SIZE
					 : (size_t)(size - v->footer_off),
				 v->footer_off);
	(void)old;
	if (!ret)
		ret = vhd_sync(v->fd);
	return ret;
}

/*
 * Moves the BAT, grown to need entries, to the end of the file. Order: footer
 * at the new EOF (the file always ends in a valid footer), new BAT where the
 * old footer was, fdatasync, then the header's first sector (table offset,
 * entry count and checksum all live there, so the switch is one sector write),
 * fdatasync. A crash before the switch only leaks the new copy.
 */
static int vhd_bat_relocate(struct vhd *v, uint64_t need)
{
	uint64_t hoff = be64toh(v->footer.data_offset);
	uint64_t new_off = v->footer_off;
	uint64_t bytes = ALIGN_UP(need * 4, (uint64_t)VHD_SECTOR);
	uint32_t *bat;
	int ret;

	if (new_off + bytes + VHD_FOOTER_SIZE > VHD_MAX_FILE_SIZE) {
		err_set("'%s': no room to grow the BAT below the 2 TiB file limit", v->path);
		return -ENOSPC;
	}
	bat = malloc(bytes);
	if (!bat)
		return -ENOMEM;
	memset(bat, 0xFF, bytes);
	for (uint32_t i = 0; i < v->max_entries; i++)
		bat[i] = htobe32(v->bat[i]);
	ret = vhd_pwrite(v->fd, &v->footer, sizeof(v->footer), new_off + bytes);
	if (!ret)
		ret = vhd_pwrite(v->fd, bat, bytes, new_off);
	free(bat);
	if (!ret)
		ret = vhd_sync(v->fd);
	if (ret < 0)
		return ret;
	v->footer_off = new_off + bytes;
	v->hdr.table_offset = htobe64(new_off);
	v->hdr.max_table_entries = htobe32((uint32_t)need);
	vhd_header_seal(&v->hdr);
	ret = vhd_pwrite(v->fd, &v->hdr, VHD_SECTOR, hoff);
	if (!ret)
		ret = vhd_sync(v->fd);
	if (ret < 0)
		return ret;
	v->table_off = new_off;
	return 0;
}

static int vhd_resize_dynamic(struct vhd *v, uint64_t size)
{
	uint64_t need = DIV_ROUND_UP(size, (uint64_t)v->block_size);
	uint64_t bat_end, room = v->footer_off, hoff = be64toh(v->footer.data_offset);
	int ret;

	if (size > VHD_MAX_DYNAMIC_SIZE) {
		err_set("%llu bytes is more than the 2040 GiB a dynamic VHD can hold",
			(unsigned long long)size);
		return -EINVAL;
	}
	/* Room for more BAT entries: up to the next structure after the BAT. */
	for (uint32_t i = 0; i < v->max_entries; i++)
		if (v->bat[i] != VHD_BAT_UNUSED && (uint64_t)v->bat[i] * VHD_SECTOR > v->table_off)
			room = MIN(room, (uint64_t)v->bat[i] * VHD_SECTOR);
	for (int i = 0; i < 8; i++) {
		uint64_t off = be64toh(v->hdr.locators[i].data_offset);

		if (v->hdr.locators[i].platform_code && off > v->table_off)
			room = MIN(room, off);
	}
	if (hoff > v->table_off)
		room = MIN(room, hoff);
	bat_end = v->table_off + need * 4;
	if (need > v->max_entries) {
		uint64_t new_end = ALIGN_UP(bat_end, (uint64_t)VHD_SECTOR);
		uint64_t cnt = need - v->max_entries;
		uint32_t *ff;

		if (room < v->footer_off && new_end > room) {
			/* Data blocks follow the BAT: move it to the end of the file. */
			ret = vhd_bat_relocate(v, need);
			if (ret < 0)
				return ret;
		} else {
			if (room == v->footer_off && new_end > v->footer_off) {
				/* Nothing after the BAT but the footer: move the footer first. */
				ret = vhd_pwrite(v->fd, &v->footer, sizeof(v->footer), new_end);
				if (!ret)
					ret = vhd_sync(v->fd);
				if (ret < 0)
					return ret;
				v->footer_off = new_end;
			}
			ff = malloc(cnt * 4);
			if (!ff)
				return -ENOMEM;
			memset(ff, 0xFF, cnt * 4);
			ret = vhd_pwrite(v->fd, ff, cnt * 4,
					 v->table_off + (uint64_t)v->max_entries * 4);
			free(ff);
			if (!ret)
				ret = vhd_sync(v->fd);
			if (ret < 0)
				return ret;
			/* max_table_entries and the checksum share the header's first sector. */
			v->hdr.max_table_entries = htobe32((uint32_t)need);
			vhd_header_seal(&v->hdr);
			ret = vhd_pwrite(v->fd, &v->hdr, VHD_SECTOR, hoff);
			if (!ret)
				ret = vhd_sync(v->fd);
			if (ret < 0)
				return ret;
		}
	}
	vhd_footer_resize(&v->footer, size);
	ret = vhd_pwrite(v->fd, &v->footer, sizeof(v->footer), v->footer_off);
	if (!ret && ftruncate(v->fd, (off_t)(v->footer_off + VHD_FOOTER_SIZE)) < 0)
		ret = -errno;
	if (!ret)
		ret = vhd_sync(v->fd);
	if (!ret)
		ret = vhd_pwrite(v->fd, &v->footer, sizeof(v->footer), 0);
	if (!ret)
		ret = vhd_sync(v->fd);
	return ret;
}

static int vhd_resize(const char *path, uint64_t new_size)
{
	struct vhd *v;
	int ret;

	ret = vhd_load(path, true, NULL, &v);
	if (ret < 0)
		return ret;
	new_size = ALIGN_UP(new_size, (uint64_t)VHD_SECTOR);
	if (v->type == VHD_TYPE_DIFF) {
		err_set("'%s': a differencing VHD always has its parent's size; resize the "
			"merged image instead",
			path);
		ret = -EINVAL;
	} else if (new_size < v->bd.size) {
		err_set("'%s': shrinking a VHD (%llu to %llu bytes) is not supported", path,
			(unsigned long long)v->bd.size, (unsigned long long)new_size);
		ret = -EINVAL;
	} else if (v->tail_bad || v->head_bad || (v->head_differs && !v->head_stale)) {
		err_set("'%s': footer copies disagree; run check with repair first", path);
		ret = -EINVAL;
	} else if (new_size == v->bd.size) {
		ret = 0;
	} else if (v->type == VHD_TYPE_FIXED) {
		ret = vhd_resize_fixed(v, new_size);
	} else {
		ret = vhd_resize_dynamic(v, new_size);
	}
	if (ret < 0 && ret != -EINVAL && ret != -ENOSPC)
		err_set("'%s': resize failed: %s", path, strerror(-ret));
	vhd_free(v);
	return ret;
}

const struct disk_driver vhd_driver = {
	.format = DISK_FORMAT_VHD,
	.name = "vhd",
	.probe = vhd_probe,
	.open = vhd_open,
	.create = vhd_create,
	.info = vhd_info,
	.check = vhd_check,
	.merge = vhd_merge,
	.resize = vhd_resize,
	.parent = vhd_parent,
};
