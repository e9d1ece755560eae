// SPDX-License-Identifier: GPL-2.0-only
/*
 * Sparse-aware copy between two blockdevs. Several buffers are in flight at
 * once: each one is read from the source queue, scanned for zero runs, and
 * its non-zero runs are written through the target queue one after the other
 * while the other buffers read ahead.
 */
#include "disk/convert.h"

#include "disk/disk.h"
#include "lib/err.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONVERT_MAX_DEPTH 16
#define CONVERT_DEFAULT_BUF (2u << 20)
#define CONVERT_MAX_BUF (16u << 20)

enum slot_state {
	SLOT_FREE,
	SLOT_READING,
	SLOT_READY, /* data in buf, runs from wpos on still to write */
	SLOT_WRITING,
};

struct convert;
struct convert_slot;

/*
 * Writes go out in pieces of at most CONVERT_WRITE_CHUNK bytes, all at once. The page cache
 * sizes its folios after the write that creates them, and a later 4 KiB write into a 2 MiB
 * folio costs ext4 a walk over all 512 of its buffer heads: an image written in 2 MiB calls
 * took 4x longer per random 4 KiB write afterwards (53k against 179k per second here) than
 * one written in 128 KiB calls, for every program that uses the image.
 */
#define CONVERT_WRITE_CHUNK (128u << 10)

struct convert_piece {
	struct convert_slot *s;
	struct iovec iov;
	struct blockdev_req req;
};

struct convert_slot {
	struct convert *c;
	uint8_t *buf;
	uint64_t off; /* device offset of buf[0] */
	uint64_t len;
	uint64_t wpos; /* next byte of buf to look at for writing */
	uint64_t wend; /* end of the run being written */
	unsigned wpending; /* pieces in flight */
	struct convert_piece *piece; /* room for a whole buffer's pieces */
	enum slot_state state;
	struct iovec iov;
	struct blockdev_req req;
};

struct convert {
	struct blockdev *src, *dst;
	const struct disk_convert_opts *opts;
	struct blockdev_queue *sq, *dq;
	struct convert_slot slots[CONVERT_MAX_DEPTH];
	unsigned nslots;
	uint32_t buf_size;
	uint64_t pos; /* next source offset to look at */
	uint64_t done; /* bytes finished (skipped or written) */
	uint64_t unstarted; /* bytes written since writeback was last started */
	int error;
	bool use_status;
	struct disk_convert_stats st;
};

static bool convert_is_zero(const uint8_t *p, uint64_t len)
{
	const uint64_t *w = (const uint64_t *)p;
	uint64_t n = len / 8;

	for (uint64_t i = 0; i < n; i++)
		if (w[i])
			return false;
	for (uint64_t i = n * 8; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void convert_set_error(struct convert *c, int r, const char *what, uint64_t off)
{
	if (c->error)
		return;
	c->error = r < 0 ? r : -EIO;
	/* Errors from queue worker threads leave no message in this thread. */
	if (!strcmp(err_msg(), "unknown error"))
		err_set("%s at offset %llu failed: %s", what, (unsigned long long)off,
			strerror(-r));
	else
		err_prefix("%s at offset %llu", what, (unsigned long long)off);
}

static void convert_read_done(struct blockdev_req *req, int result)
{
	struct convert_slot *s = req->opaque;

	if (result) {
		convert_set_error(s->c, result, "reading the source", s->off);
		s->state = SLOT_FREE;
		return;
	}
	s->c->st.bytes_read += s->len;
	s->wpos = 0;
	s->state = SLOT_READY;
}

/*
 * A durable convert ends in a flush that waits for every dirty page. Starting writeback every
 * few MiB lets the device write while we copy, so the final flush finds little left to do.
 */
#define CONVERT_WRITEBACK_STEP (8u << 20)

static void convert_start_writeback(struct convert *c, uint64_t written)
{
	c->unstarted += written;
	if (!c->opts->flush || c->dst->data_fd < 0 || c->unstarted < CONVERT_WRITEBACK_STEP)
		return;
	c->unstarted = 0;
	/* Only a hint: SYNC_FILE_RANGE_WRITE does not wait, and errors show up at the flush. */
	(void)sync_file_range(c->dst->data_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* The last piece of a run frees or re-arms the slot; the buffer is busy until then. */
static void convert_piece_put(struct convert_slot *s)
{
	if (--s->wpending)
		return;
	s->wpos = s->wend;
	s->state = s->c->error ? SLOT_FREE : SLOT_READY;
}

static void convert_write_done(struct blockdev_req *req, int result)
{
	struct convert_piece *p = req->opaque;
	struct convert *c = p->s->c;

	if (result) {
		convert_set_error(c, result, "writing the target", req->offset);
	} else {
		c->st.bytes_written += p->iov.iov_len;
		c->done += p->iov.iov_len;
		convert_start_writeback(c, p->iov.iov_len);
	}
	convert_piece_put(p->s);
}

/* Runs req on q, or synchronously (callback invoked here) when there is no queue. */
static int convert_submit(struct blockdev_queue *q, struct blockdev *bd, struct blockdev_req *req)
{
	int r;

	if (q)
		return blockdev_queue_submit(q, req);
	if (req->op == BLOCKDEV_OP_READ)
		r = blockdev_readv(bd, req->iov, req->iovcnt, req->offset);
	else
		r = blockdev_writev(bd, req->iov, req->iovcnt, req->offset, req->flags);
	req->complete(req, r);
	return 0;
}

/*
 * How the range at c->pos is to be treated: returns the run length and sets
 * *copy (false: nothing to write there).
 */
static int convert_classify(struct convert *c, uint64_t *run, bool *copy)
{
	uint64_t left = c->src->size - c->pos;
	int status = BLOCKDEV_STATUS_DATA;
	int r;

	*run = left;
	*copy = true;
	if (!c->use_status)
		return 0;
	r = c->src->ops->block_status(c->src, c->pos, left, &status, run);
	if (r < 0)
		return r;
	if (*run == 0 || *run > left) {
		err_set("source block status returned a bad run length");
		return -EIO;
	}
	/* Keep runs sector-aligned so reads and writes stay legal. */
	if (*run < left && !IS_ALIGNED(*run, c->src->logical_sector_size)) {
		uint64_t a = ALIGN_DOWN(*run, (uint64_t)c->src->logical_sector_size);

		if (a) {
			*run = a;
		} else {
			*run = MIN(left, (uint64_t)c->src->logical_sector_size);
			status = BLOCKDEV_STATUS_DATA;
		}
	}
	switch (status) {
	case BLOCKDEV_STATUS_DATA:
		break;
	case BLOCKDEV_STATUS_ZERO:
		/* Reads as zeros; only needs writing when the target would not. */
		*copy = !c->opts->target_zero;
		break;
	default: /* UNALLOCATED */
		if (c->opts->src_mode == DISK_CONVERT_SRC_TOP)
			*copy = false;
		else
			*copy = !c->opts->target_zero; /* src_no_parent: zeros */
		break;
	}
	return 0;
}

/* Starts a read into a free slot; returns false when there is nothing left. */
static bool convert_fill(struct convert *c, struct convert_slot *s)
{
	while (c->pos < c->src->size && !c->error) {
		uint64_t run, len;
		bool copy;
		int r = convert_classify(c, &run, &copy);

		if (r < 0) {
			convert_set_error(c, r, "querying the source", c->pos);
			return false;
		}
		if (!copy) {
			c->pos += run;
			c->done += run;
			c->st.bytes_skipped += run;
			continue;
		}
		/* Buffers stay aligned to buf_size so writes line up with blocks. */
		len = MIN(run, c->buf_size - c->pos % c->buf_size);
		s->off = c->pos;
		s->len = len;
		s->state = SLOT_READING;
		s->iov.iov_base = s->buf;
		s->iov.iov_len = len;
		s->req = (struct blockdev_req){
			.op = BLOCKDEV_OP_READ,
			.offset = s->off,
			.iov = &s->iov,
			.iovcnt = 1,
			.complete = convert_read_done,
			.opaque = s,
		};
		c->pos += len;
		r = convert_submit(c->sq, c->src, &s->req);
		if (r < 0) {
			s->state = SLOT_FREE;
			convert_set_error(c, r, "queueing a source read", s->off);
			return false;
		}
		return true;
	}
	return false;
}

/* Issues the next non-zero run of a READY slot, or frees it. */
static void convert_drain_slot(struct convert *c, struct convert_slot *s)
{
	const uint64_t g = DISK_CONVERT_ZERO_GRAIN;
	uint64_t start = s->wpos, end;
	int r;

	if (c->error) {
		s->state = SLOT_FREE;
		return;
	}
	if (c->opts->target_zero) {
		/* Skip whole zero grains (grains are aligned to device offsets). */
		while (start < s->len) {
			uint64_t gend = MIN(s->len, ALIGN_DOWN(s->off + start, g) + g - s->off);

			if (!convert_is_zero(s->buf + start, gend - start))
				break;
			c->done += gend - start;
			c->st.bytes_skipped += gend - start;
			start = gend;
		}
		end = start;
		while (end < s->len) {
			uint64_t gend = MIN(s->len, ALIGN_DOWN(s->off + end, g) + g - s->off);

			if (end != start && convert_is_zero(s->buf + end, gend - end))
				break;
			end = gend;
		}
	} else {
		end = s->len;
	}
	if (start >= s->len) {
		s->state = SLOT_FREE;
		return;
	}
	s->wpos = start;
	s->wend = end;
	s->state = SLOT_WRITING;
	s->wpending = 1; /* held while submitting: synchronous completions run in here */
	for (uint64_t pos = start, i = 0; pos < end; i++) {
		uint64_t dev = s->off + pos;
		uint64_t n = MIN(end - pos,
				 ALIGN_DOWN(dev, CONVERT_WRITE_CHUNK) + CONVERT_WRITE_CHUNK - dev);
		struct convert_piece *p = &s->piece[i];

		p->iov.iov_base = s->buf + pos;
		p->iov.iov_len = n;
		p->req = (struct blockdev_req){
			.op = BLOCKDEV_OP_WRITE,
			.offset = dev,
			.iov = &p->iov,
			.iovcnt = 1,
			.complete = convert_write_done,
			.opaque = p,
		};
		s->wpending++;
		r = convert_submit(c->dq, c->dst, &p->req);
		if (r < 0) {
			s->wpending--;
			convert_set_error(c, r, "queueing a target write", dev);
			break;
		}
		pos += n;
	}
	convert_piece_put(s);
}

static void convert_wait(struct convert *c)
{
	unsigned si = c->sq ? blockdev_queue_inflight(c->sq) : 0;
	unsigned di = c->dq ? blockdev_queue_inflight(c->dq) : 0;

	if (si && di) {
		/* The timeout only bounds the wait; complete() is what collects. */
		struct pollfd p[2] = {
			{.fd = blockdev_queue_fd(c->sq), .events = POLLIN},
			{.fd = blockdev_queue_fd(c->dq), .events = POLLIN},
		};

		if (!blockdev_queue_complete(c->sq) && !blockdev_queue_complete(c->dq)) {
			poll(p, 2, 5);
			blockdev_queue_complete(c->sq);
			blockdev_queue_complete(c->dq);
		}
	} else if (si) {
		blockdev_queue_wait(c->sq);
	} else if (di) {
		blockdev_queue_wait(c->dq);
	}
}

int disk_convert(struct blockdev *src, struct blockdev *dst, const struct disk_convert_opts *opts,
		 struct disk_convert_stats *stats)
{
	struct convert *c;
	uint64_t last_report = 0;
	unsigned npieces;
	int r = 0;

	if (dst->size < src->size) {
		err_set("target is smaller (%llu bytes) than the source (%llu bytes)",
			(unsigned long long)dst->size, (unsigned long long)src->size);
		return -EINVAL;
	}
	if (src->logical_sector_size > 4096 || dst->logical_sector_size > 4096 ||
	    !src->logical_sector_size || !dst->logical_sector_size) {
		err_set("unsupported logical sector size");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	err_clear();
	c->src = src;
	c->dst = dst;
	c->opts = opts;
	c->buf_size = opts->buf_size ? opts->buf_size : CONVERT_DEFAULT_BUF;
	c->buf_size = MIN(ALIGN_UP(c->buf_size, 65536u), CONVERT_MAX_BUF);
	c->nslots = opts->depth ? MIN(opts->depth, (unsigned)CONVERT_MAX_DEPTH) : 4;
	c->use_status = src->ops->block_status &&
			(opts->src_mode == DISK_CONVERT_SRC_TOP || opts->src_no_parent);
	if (opts->src_mode == DISK_CONVERT_SRC_TOP && !src->ops->block_status) {
		err_set("the source format cannot tell which ranges it stores");
		free(c);
		return -ENOTSUP;
	}
	npieces = c->buf_size / CONVERT_WRITE_CHUNK + 2; /* unaligned runs straddle one more */
	for (unsigned i = 0; i < c->nslots; i++) {
		c->slots[i].c = c;
		c->slots[i].piece = calloc(npieces, sizeof(*c->slots[i].piece));
		if (!c->slots[i].piece ||
		    posix_memalign((void **)&c->slots[i].buf, 4096, c->buf_size)) {
			r = -ENOMEM;
			goto out;
		}
		for (unsigned k = 0; k < npieces; k++)
			c->slots[i].piece[k].s = &c->slots[i];
	}
	if (c->nslots > 1) {
		/* No queue (e.g. engine unavailable): fall back to synchronous calls. */
		c->sq = blockdev_queue_create(src, c->nslots, BLOCKDEV_ENGINE_AUTO);
		c->dq = c->sq ? blockdev_queue_create(dst, c->nslots * npieces,
						      BLOCKDEV_ENGINE_AUTO)
			      : NULL;
		if (!c->dq && c->sq) {
			blockdev_queue_destroy(c->sq);
			c->sq = NULL;
		}
	}

	for (;;) {
		bool busy = false;

		if (c->sq)
			blockdev_queue_plug(c->sq);
		if (c->dq)
			blockdev_queue_plug(c->dq);
		for (unsigned i = 0; i < c->nslots; i++) {
			struct convert_slot *s = &c->slots[i];

			if (s->state == SLOT_READY)
				convert_drain_slot(c, s);
			if (s->state == SLOT_FREE && !c->error)
				convert_fill(c, s);
			if (s->state != SLOT_FREE)
				busy = true;
		}
		if (c->sq)
			blockdev_queue_unplug(c->sq);
		if (c->dq)
			blockdev_queue_unplug(c->dq);
		if (opts->progress &&
		    (c->done - last_report >= (16u << 20) || c->done == src->size)) {
			last_report = c->done;
			opts->progress(c->done, src->size, opts->opaque);
		}
		if (!busy)
			break;
		convert_wait(c);
	}
	r = c->error;
	if (!r && opts->flush) {
		r = blockdev_flush(dst);
		if (r < 0 && !strcmp(err_msg(), "unknown error"))
			err_set("flushing the target failed: %s", strerror(-r));
	}
	if (opts->progress && !r)
		opts->progress(src->size, src->size, opts->opaque);
out:
	if (c->sq)
		blockdev_queue_destroy(c->sq);
	if (c->dq)
		blockdev_queue_destroy(c->dq);
	for (unsigned i = 0; i < c->nslots; i++) {
		free(c->slots[i].buf);
		free(c->slots[i].piece);
	}
	if (stats)
		*stats = c->st;
	free(c);
	return r;
}

static uint64_t convert_allocated(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_blocks * 512;
}

static int convert_fsync_path(const char *path, bool dir)
{
	int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		r = -errno;
	close(fd);
	return r;
}

int disk_compact(const char *path, void (*progress)(uint64_t done, uint64_t total, void *opaque),
		 void *opaque, uint64_t *before, uint64_t *after)
{
	struct blockdev *src = NULL, *dst = NULL;
	struct disk_info info;
	struct disk_create_opts co;
	struct disk_convert_opts cv = {0};
	char tmp[PATH_MAX], dirbuf[PATH_MAX];
	bool diff;
	int r;

	if (before)
		*before = convert_allocated(path);
	r = disk_open(path, DISK_FORMAT_AUTO, DISK_OPEN_RDONLY, &src);
	if (r < 0)
		return r;
	r = disk_info_get(src, &info);
	if (r < 0)
		goto out;
	diff = info.type == DISK_TYPE_DIFFERENCING;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.compact-%d.tmp", path, (int)getpid()) >=
	    sizeof(tmp)) {
		err_set("path too long");
		r = -ENAMETOOLONG;
		goto out;
	}
	co = (struct disk_create_opts){
		.format = info.format,
		.type = info.type,
		.size = info.virtual_size,
		.block_size = info.block_size,
		.logical_sector_size = info.logical_sector_size,
		.physical_sector_size = info.physical_sector_size,
		.parent = diff ? info.parent_path : NULL,
	};
	unlink(tmp);
	r = disk_create(tmp, &co);
	if (r < 0)
		goto out;
	r = disk_open(tmp, info.format, 0, &dst);
	if (r < 0)
		goto out_unlink;
	cv.src_mode = diff ? DISK_CONVERT_SRC_TOP : DISK_CONVERT_SRC_ALL;
	cv.target_zero = !diff;
	cv.src_no_parent = !diff;
	cv.flush = true;
	cv.progress = progress;
	cv.opaque = opaque;
	r = disk_convert(src, dst, &cv, NULL);
	if (r < 0)
		goto out_unlink;
	r = blockdev_close(dst);
	dst = NULL;
	if (r < 0)
		goto out_unlink;
	r = convert_fsync_path(tmp, false);
	if (r < 0) {
		err_set("fsync of %s failed: %s", tmp, strerror(-r));
		goto out_unlink;
	}
	if (rename(tmp, path)) {
		r = -errno;
		err_set("cannot rename %s over %s: %s", tmp, path, strerror(errno));
		goto out_unlink;
	}
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	r = convert_fsync_path(dirname(dirbuf), true);
	if (r < 0)
		err_set("fsync of the directory of %s failed: %s", path, strerror(-r));
	if (after)
		*after = convert_allocated(path);
	goto out;
out_unlink:
	if (dst)
		blockdev_close(dst);
	dst = NULL;
	unlink(tmp);
out:
	if (src)
		blockdev_close(src);
	return r;
}

int disk_merge_generic(const char *child_path,
		       void (*progress)(uint64_t done, uint64_t total, void *opaque), void *opaque,
		       char *parent_out)
{
	struct blockdev *child = NULL, *parent = NULL;
	struct disk_info info;
	struct disk_convert_opts cv = {0};
	int r;

	r = disk_open(child_path, DISK_FORMAT_AUTO, DISK_OPEN_RDONLY, &child);
	if (r < 0)
		return r;
	r = disk_info_get(child, &info);
	if (r < 0)
		goto out;
	if (info.type != DISK_TYPE_DIFFERENCING || !info.parent_path[0]) {
		err_set("%s is not a differencing image; nothing to merge", child_path);
		r = -EINVAL;
		goto out;
	}
	if (parent_out)
		snprintf(parent_out, PATH_MAX, "%s", info.parent_path);
	r = disk_open(info.parent_path, DISK_FORMAT_AUTO, 0, &parent);
	if (r < 0) {
		err_prefix("opening the parent for writing");
		goto out;
	}
	cv.src_mode = DISK_CONVERT_SRC_TOP;
	cv.flush = true;
	cv.progress = progress;
	cv.opaque = opaque;
	r = disk_convert(child, parent, &cv, NULL);
	if (r < 0)
		goto out;
	r = blockdev_close(parent);
	parent = NULL;
out:
	if (parent)
		blockdev_close(parent);
	blockdev_close(child);
	return r;
}
