// SPDX-License-Identifier: GPL-2.0-only
/*
 * VHDX metadata log: writing single entries that are applied right away, and
 * finding + replaying the active sequence of a dirty log (spec §2.7).
 */
#include "disk/vhdx.h"

#include "lib/crc32c.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECT VHDX_LOG_SECTOR

/* Descriptor sectors an entry with n descriptors needs (header takes two slots). */
static uint64_t log_desc_sectors(uint64_t ndesc)
{
	return (ndesc + 2 + VHDX_LOG_DESC_PER_SECTOR - 1) / VHDX_LOG_DESC_PER_SECTOR;
}

/* Copies len bytes starting at log-relative pos out of the circular log image. */
static void log_copy(const uint8_t *img, uint32_t loglen, uint64_t pos, uint8_t *dst, uint64_t len)
{
	while (len) {
		pos %= loglen;
		uint64_t n = MIN(len, (uint64_t)loglen - pos);
		memcpy(dst, img + pos, n);
		dst += n;
		pos += n;
		len -= n;
	}
}

struct log_entry_view {
	uint64_t pos;
	uint32_t length;
	uint32_t tail;
	uint64_t seq;
	uint64_t flushed;
	uint64_t last;
};

/*
 * Validates the entry at pos completely (signature, guid, lengths, descriptors,
 * data sectors, CRC). buf must hold loglen bytes. Returns true if valid.
 */
static bool log_entry_valid(const struct vhdx_log *log, const uint8_t *img, uint64_t pos,
			    uint8_t *buf, struct log_entry_view *out)
{
	struct vhdx_log_entry_header h;

	log_copy(img, log->length, pos, (uint8_t *)&h, sizeof(h));
	if (h.signature != VHDX_LOG_SIGNATURE || !guid_equal(&h.log_guid, &log->guid))
		return false;
	if (h.entry_length < SECT || h.entry_length % SECT || h.entry_length > log->length)
		return false;
	if (h.tail % SECT || h.tail >= log->length || h.sequence_number == 0)
		return false;
	if (h.flushed_file_offset % VHDX_MIB || h.last_file_offset % VHDX_MIB)
		return false;
	uint64_t dsect = log_desc_sectors(h.descriptor_count);
	if (dsect > h.entry_length / SECT)
		return false;
	log_copy(img, log->length, pos, buf, h.entry_length);
	uint32_t stored = h.checksum;
	memset(buf + 4, 0, 4);
	if (crc32c(0, buf, h.entry_length) != stored)
		return false;
	uint64_t ndata = 0;
	for (uint64_t i = 0; i < h.descriptor_count; i++) {
		const struct vhdx_log_descriptor *d =
			(const struct vhdx_log_descriptor *)(buf + 64 + i * 32);
		if (d->sequence_number != h.sequence_number || d->file_offset % SECT)
			return false;
		if (d->signature == VHDX_DESC_SIGNATURE) {
			uint64_t ds = dsect + ndata;
			if (ds >= h.entry_length / SECT)
				return false;
			const struct vhdx_log_data_sector *s =
				(const struct vhdx_log_data_sector *)(buf + ds * SECT);
			if (s->signature != VHDX_DATA_SIGNATURE ||
			    s->sequence_high != (uint32_t)(h.sequence_number >> 32) ||
			    s->sequence_low != (uint32_t)h.sequence_number)
				return false;
			ndata++;
		} else if (d->signature == VHDX_ZERO_SIGNATURE) {
			if (d->leading_bytes % SECT)
				return false;
		} else {
			return false;
		}
	}
	out->pos = pos;
	out->length = h.entry_length;
	out->tail = h.tail;
	out->seq = h.sequence_number;
	out->flushed = h.flushed_file_offset;
	out->last = h.last_file_offset;
	return true;
}

/* Upper bound on where a descriptor may write: 44-bit MiB offsets. */
#define LOG_MAX_TARGET (1ull << 52)
#define LOG_MAX_ZERO (VHDX_MAX_BLOCK_SIZE)

static int log_entry_apply(const struct vhdx_log *log, const uint8_t *img,
			   const struct log_entry_view *e, uint8_t *buf,
			   const struct vhdx_log_sink *sink)
{
	log_copy(img, log->length, e->pos, buf, e->length);
	const struct vhdx_log_entry_header *h = (const struct vhdx_log_entry_header *)buf;
	uint64_t dsect = log_desc_sectors(h->descriptor_count);
	uint64_t ndata = 0;
	uint8_t page[SECT];

	for (uint64_t i = 0; i < h->descriptor_count; i++) {
		const struct vhdx_log_descriptor *d =
			(const struct vhdx_log_descriptor *)(buf + 64 + i * 32);
		uint64_t len = d->signature == VHDX_DESC_SIGNATURE ? SECT : d->leading_bytes;
		/* Never let a log entry scribble over the header section or the log. */
		if (d->file_offset < VHDX_HEADER1_OFF || d->file_offset > LOG_MAX_TARGET ||
		    len > LOG_MAX_ZERO ||
		    (d->file_offset < log->offset + log->length &&
		     d->file_offset + len > log->offset)) {
			err_set("VHDX log entry %" PRIu64
				" targets an invalid file range at %" PRIu64 "; the log is corrupt",
				e->seq, d->file_offset);
			return -EINVAL;
		}
		int r;
		if (d->signature == VHDX_DESC_SIGNATURE) {
			const struct vhdx_log_data_sector *s =
				(const struct vhdx_log_data_sector *)(buf + (dsect + ndata) * SECT);
			memcpy(page, &d->leading_bytes, 8);
			memcpy(page + 8, s->data, sizeof(s->data));
			memcpy(page + 4092, &d->trailing_bytes, 4);
			r = sink->apply(sink->opaque, d->file_offset, page, SECT);
			ndata++;
		} else {
			r = len ? sink->apply(sink->opaque, d->file_offset, NULL, len) : 0;
		}
		if (r)
			return r;
	}
	return 0;
}

int vhdx_log_replay(const struct vhdx_log *log, uint64_t file_size,
		    const struct vhdx_log_sink *sink, bool *found)
{
	*found = false;
	if (!log->length || guid_is_zero(&log->guid))
		return 0;
	if (log->length % SECT || log->offset > file_size ||
	    log->length > file_size - log->offset) {
		err_set("VHDX log lies outside the file; the image is truncated or corrupt");
		return -EINVAL;
	}
	uint8_t *img = malloc(log->length);
	uint8_t *buf = malloc(log->length);
	uint64_t nslots = log->length / SECT;
	struct log_entry_view *seqv = calloc(nslots, sizeof(*seqv));
	struct log_entry_view *best = calloc(nslots, sizeof(*best));
	size_t best_n = 0;
	int r = 0;

	if (!img || !buf || !seqv || !best) {
		r = -ENOMEM;
		err_set("out of memory reading the VHDX log");
		goto out;
	}
	r = util_pread_full(log->fd, img, log->length, (off_t)log->offset);
	if (r) {
		err_set("cannot read the VHDX log: %s", strerror(-r));
		goto out;
	}

	/* Try every 4 KiB slot as a tail; keep the valid sequence with the highest head. */
	uint64_t pos = 0;
	while (pos < log->length) {
		size_t n = 0;
		uint64_t cur = pos, covered = 0;
		struct log_entry_view e;
		while (n < nslots && covered < log->length &&
		       log_entry_valid(log, img, cur, buf, &e)) {
			if (n && e.seq != seqv[n - 1].seq + 1)
				break;
			seqv[n++] = e;
			covered += e.length;
			cur = (cur + e.length) % log->length;
		}
		/* Valid if the head's tail points at one of the sequence's entries. */
		size_t tail_idx = n;
		for (size_t i = 0; i < n; i++) {
			if (seqv[i].pos == seqv[n - 1].tail) {
				tail_idx = i;
				break;
			}
		}
		if (n && tail_idx < n) {
			if (!best_n || seqv[n - 1].seq > best[best_n - 1].seq) {
				best_n = n - tail_idx;
				memcpy(best, seqv + tail_idx, best_n * sizeof(*best));
			}
			uint64_t next = seqv[n - 1].pos + seqv[n - 1].length;
			if (next <= pos || next >= log->length)
				break; /* wrapped around */
			pos = next;
		} else {
			pos += SECT;
		}
	}
	if (!best_n)
		goto out; /* nothing valid: treated as an empty log, like qemu */

	uint64_t last = 0;
	for (size_t i = 0; i < best_n; i++) {
		if (best[i].flushed > file_size) {
			err_set("VHDX log says the file was at least %" PRIu64
				" bytes but it is %" PRIu64 "; the image was truncated",
				best[i].flushed, file_size);
			r = -EINVAL;
			goto out;
		}
		last = MAX(last, best[i].last);
	}
	*found = true;
	for (size_t i = 0; i < best_n && !r; i++)
		r = log_entry_apply(log, img, &best[i], buf, sink);
	if (!r && last > file_size)
		r = sink->extend(sink->opaque, last);
out:
	free(img);
	free(buf);
	free(seqv);
	free(best);
	return r;
}

int vhdx_log_write(struct vhdx_log *log, const struct vhdx_log_page *pages, unsigned npages,
		   uint64_t flushed, uint64_t last)
{
	if (npages > VHDX_LOG_MAX_PAGES || (1 + (uint64_t)npages) * SECT > log->length) {
		err_set("VHDX log too small for a %u-page update", npages);
		return -ENOSPC;
	}
	size_t len = (1 + (size_t)npages) * SECT;
	uint8_t *buf = aligned_alloc(SECT, len);
	if (!buf)
		return -ENOMEM;
	memset(buf, 0, len);
	uint64_t seq = ++log->sequence;
	struct vhdx_log_entry_header *h = (struct vhdx_log_entry_header *)buf;
	h->signature = VHDX_LOG_SIGNATURE;
	h->entry_length = (uint32_t)len;
	h->tail = 0; /* every entry is applied before the next: it is its own tail */
	h->sequence_number = seq;
	h->descriptor_count = npages;
	h->log_guid = log->guid;
	h->flushed_file_offset = flushed;
	h->last_file_offset = last;
	for (unsigned i = 0; i < npages; i++) {
		struct vhdx_log_descriptor *d = (struct vhdx_log_descriptor *)(buf + 64 + i * 32);
		struct vhdx_log_data_sector *s =
			(struct vhdx_log_data_sector *)(buf + (1 + (size_t)i) * SECT);
		d->signature = VHDX_DESC_SIGNATURE;
		memcpy(&d->trailing_bytes, pages[i].data + 4092, 4);
		memcpy(&d->leading_bytes, pages[i].data, 8);
		d->file_offset = pages[i].file_offset;
		d->sequence_number = seq;
		s->signature = VHDX_DATA_SIGNATURE;
		s->sequence_high = (uint32_t)(seq >> 32);
		s->sequence_low = (uint32_t)seq;
		memcpy(s->data, pages[i].data + 8, sizeof(s->data));
	}
	h->checksum = crc32c(0, buf, len);

	int r = util_pwrite_full(log->fd, buf, len, (off_t)log->offset);
	free(buf);
	if (!r && !log->unordered && fdatasync(log->fd))
		r = -errno;
	if (r) {
		err_set("cannot write the VHDX log: %s", strerror(-r));
		return r;
	}
	/* Test hook (vhdx.h): die after the N-th flushed entry, before applying it. */
	static _Atomic unsigned long entries_written;
	const char *crash = getenv(VHDX_CRASH_ENV);
	unsigned long crash_at = crash ? strtoul(crash, NULL, 10) : 0;
	if (crash_at && ++entries_written == crash_at)
		_exit(137);
	for (unsigned i = 0; i < npages && !r; i++)
		r = util_pwrite_full(log->fd, pages[i].data, SECT, (off_t)pages[i].file_offset);
	if (!r && !log->unordered && fdatasync(log->fd))
		r = -errno;
	if (r)
		err_set("cannot update VHDX metadata: %s", strerror(-r));
	return r;
}
