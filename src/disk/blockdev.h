/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * blockdev: what a disk format implements and storvsp (and the vhd tool)
 * consume. A format provides synchronous, thread-safe vectored operations and,
 * optionally, a map() that tells where a guest range lives in one host file;
 * the queue below turns that into asynchronous I/O: io_uring straight on the
 * file for mapped ranges, a thread pool over the synchronous ops otherwise.
 */
#ifndef VIRIDIAN_DISK_BLOCKDEV_H
#define VIRIDIAN_DISK_BLOCKDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct blockdev;
struct blockdev_queue;

/* Write must be durable when it completes (SCSI FUA). */
#define BLOCKDEV_WRITE_FUA (1u << 0)

enum blockdev_extent_kind {
	BLOCKDEV_EXTENT_DATA, /* bytes at file_offset in blockdev.data_fd */
	BLOCKDEV_EXTENT_ZERO, /* reads as zeros; nothing stored */
	BLOCKDEV_EXTENT_SLOW, /* must go through readv/writev (parent data, allocation...) */
};

struct blockdev_extent {
	enum blockdev_extent_kind kind;
	uint64_t file_offset; /* DATA only */
	uint64_t len;         /* bytes from the requested offset with this kind, > 0 */
};

enum blockdev_status {
	BLOCKDEV_STATUS_DATA,        /* stored in this image */
	BLOCKDEV_STATUS_ZERO,        /* stored here as "reads as zero" (VHDX ZERO/UNMAPPED) */
	BLOCKDEV_STATUS_UNALLOCATED, /* not here: from the parent, or zeros without one */
};

struct blockdev_ops {
	/*
	 * Synchronous operations. May be called from several threads at once.
	 * offset and lengths are multiples of logical_sector_size and inside size
	 * (the queue checks that before calling). Return 0 or -errno; on format
	 * errors also err_set() a one-line reason.
	 */
	int (*readv)(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset);
	int (*writev)(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset,
		      unsigned flags);
	int (*flush)(struct blockdev *bd);
	/* Optional (NULL: discard is a successful no-op). Reads of the range may then
	 * return zeros or the old data; storvsp only advertises what is real. */
	int (*discard)(struct blockdev *bd, uint64_t offset, uint64_t len);
	/*
	 * Optional fast path. For_write asks whether a write could go to the file
	 * with no metadata change (allocated, no bitmap update needed). Must not
	 * block on I/O for long; must not allocate.
	 */
	int (*map)(struct blockdev *bd, uint64_t offset, uint64_t len, bool for_write,
		   struct blockdev_extent *ext);
	/*
	 * Optional (NULL: everything is BLOCKDEV_STATUS_DATA). What does this
	 * image itself, not its parents, hold at offset? *run_len gets the length
	 * (<= len, > 0) of the run with the same answer. Used by convert, merge,
	 * compact and info to stay sparse.
	 */
	int (*block_status)(struct blockdev *bd, uint64_t offset, uint64_t len, int *status,
			    uint64_t *run_len);
	/* Flushes what the format needs (clean shutdown), frees bd. */
	int (*close)(struct blockdev *bd);
};

struct blockdev {
	const struct blockdev_ops *ops;
	const char *format;            /* "raw", "vhd", "vhdx" */
	uint64_t size;                 /* virtual size in bytes */
	uint32_t logical_sector_size;  /* 512 or 4096 */
	uint32_t physical_sector_size; /* >= logical */
	bool read_only;
	int data_fd;                   /* file map() offsets refer to; -1 if none */
};

/* Synchronous helpers with the bounds and alignment checks every caller needs. */
int blockdev_read(struct blockdev *bd, void *buf, uint64_t len, uint64_t offset);
int blockdev_write(struct blockdev *bd, const void *buf, uint64_t len, uint64_t offset,
		   unsigned flags);
int blockdev_readv(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset);
int blockdev_writev(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset,
		    unsigned flags);
int blockdev_flush(struct blockdev *bd);
int blockdev_discard(struct blockdev *bd, uint64_t offset, uint64_t len);
int blockdev_close(struct blockdev *bd);
/* 0 when [offset, offset+len) is sector-aligned and inside the device, else -EINVAL. */
int blockdev_check_range(const struct blockdev *bd, uint64_t offset, uint64_t len);

/* ---- asynchronous queue ---- */

enum blockdev_op {
	BLOCKDEV_OP_READ,
	BLOCKDEV_OP_WRITE,
	BLOCKDEV_OP_FLUSH,
	BLOCKDEV_OP_DISCARD,
};

struct blockdev_req {
	enum blockdev_op op;
	unsigned flags;          /* BLOCKDEV_WRITE_FUA */
	uint64_t offset;         /* bytes */
	uint64_t len;            /* DISCARD only; READ/WRITE use the iovec total */
	const struct iovec *iov; /* must stay valid until completion */
	int iovcnt;
	/* Called from blockdev_queue_complete() in the caller's thread; result 0 or -errno. */
	void (*complete)(struct blockdev_req *req, int result);
	void *opaque;
	struct blockdev_req *next_; /* queue private */
	int result_;                /* queue private */
};

enum blockdev_engine {
	BLOCKDEV_ENGINE_AUTO,    /* io_uring if it works here, else threads */
	BLOCKDEV_ENGINE_URING,
	BLOCKDEV_ENGINE_THREADS,
};

/*
 * Small (<= 64 KiB) buffered writes to stored data are done in the caller thread at submit
 * (a page-cache copy; still completed through complete()), larger ones, FUA and O_DIRECT go to
 * the engine. VIRIDIAN_NO_INLINE_WRITES=1 in the environment turns that off (tests, benches).
 */
struct blockdev_queue *blockdev_queue_create(struct blockdev *bd, unsigned depth,
					     enum blockdev_engine engine);
/* -EAGAIN when depth requests are in flight; -EINVAL for a bad range (not queued). */
int blockdev_queue_submit(struct blockdev_queue *q, struct blockdev_req *req);
/*
 * Readable (eventfd) when completions finished elsewhere (kernel, worker threads) are waiting:
 * add it to an epoll set. Requests that finish inside submit/unplug (page-cache reads, inline
 * writes) do not signal it, so a caller that submitted must call blockdev_queue_complete()
 * (or _wait()) before it sleeps on the fd.
 */
int blockdev_queue_fd(struct blockdev_queue *q);
/* Runs the callbacks of finished requests; returns how many. Never blocks. */
unsigned blockdev_queue_complete(struct blockdev_queue *q);
/* Blocks until at least one request finished (or none in flight), then completes. */
unsigned blockdev_queue_wait(struct blockdev_queue *q);
/*
 * Optional batching: io_uring submissions made between plug and unplug go to
 * the kernel in one system call at unplug (plugs nest). Without a plug every
 * submit is sent at once. Callbacks run by complete() are plugged already.
 */
void blockdev_queue_plug(struct blockdev_queue *q);
void blockdev_queue_unplug(struct blockdev_queue *q);
unsigned blockdev_queue_inflight(const struct blockdev_queue *q);
enum blockdev_engine blockdev_queue_engine(const struct blockdev_queue *q);
/* Waits for everything in flight, runs its callbacks, frees q. */
void blockdev_queue_destroy(struct blockdev_queue *q);

#endif
