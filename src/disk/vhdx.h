/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VHDX driver (vhdx.c) and its log (vhdx_log.c).
 *
 * Test hook: with VIRIDIAN_VHDX_CRASH_AFTER_LOG=N (N >= 1) in the environment,
 * the process calls _exit(137) right after its N-th log entry has been written
 * and flushed, before that entry is applied in place (=1: the first one). The
 * image is then left with a dirty log that a read-write open (or
 * 'viridian vhd check --repair') must replay. Every VHDX metadata change
 * (block allocation, sector bitmap update, discard, resize) writes one entry.
 */
#ifndef VIRIDIAN_DISK_VHDX_H
#define VIRIDIAN_DISK_VHDX_H

#include "disk/disk.h"
#include "disk/vhdx_format.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

extern const struct disk_driver vhdx_driver;

#define VHDX_CRASH_ENV "VIRIDIAN_VHDX_CRASH_AFTER_LOG"

/* ---- log (vhdx_log.c) ---- */

/* Where replayed pages go: in place (read-write open) or an overlay (read-only). */
struct vhdx_log_sink {
	/* page = NULL: zero len bytes. Returns 0 or -errno. */
	int (*apply)(void *opaque, uint64_t file_offset, const uint8_t *page, uint64_t len);
	/* Called once after every descriptor: make the file at least size bytes. */
	int (*extend)(void *opaque, uint64_t size);
	void *opaque;
};

struct vhdx_log {
	int fd;
	uint64_t offset; /* in the file */
	uint32_t length;
	struct guid guid;
	uint64_t sequence; /* last written */
	bool unordered; /* DISK_OPEN_UNORDERED: no barrier around entries */
};

/* One 4 KiB page of metadata to log and then write in place. */
struct vhdx_log_page {
	uint64_t file_offset;
	const uint8_t *data;
};

/*
 * Finds the active sequence of log entries carrying log->guid and replays it
 * into sink. *found = whether there was anything to replay. file_size is the
 * current size (an entry whose FlushedFileOffset is beyond it means the file
 * was truncated: error). Nothing is written when found is false.
 */
int vhdx_log_replay(const struct vhdx_log *log, uint64_t file_size,
		    const struct vhdx_log_sink *sink, bool *found);

/*
 * Writes one log entry for pages (at most VHDX_LOG_MAX_PAGES), flushes, then
 * writes the pages in place and flushes again. flushed/last are the entry's
 * FlushedFileOffset and LastFileOffset.
 */
#define VHDX_LOG_MAX_PAGES VHDX_LOG_DESC_FIRST_SECTOR
int vhdx_log_write(struct vhdx_log *log, const struct vhdx_log_page *pages, unsigned npages,
		   uint64_t flushed, uint64_t last);

#endif
