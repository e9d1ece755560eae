// SPDX-License-Identifier: GPL-2.0-only
/*
 * blockdev: synchronous helpers and the asynchronous queue. Mapped reads and
 * writes go straight to the data file through io_uring; everything else runs
 * on a small thread pool over the format's synchronous ops. Completions are
 * only ever delivered in the caller's thread, from blockdev_queue_complete().
 */
#include "disk/blockdev.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define BLOCKDEV_MAX_THREADS 8
#define BLOCKDEV_URING_THREADS 4

int blockdev_check_range(const struct blockdev *bd, uint64_t offset, uint64_t len)
{
	uint32_t ss = bd->logical_sector_size;

	if (!ss || (offset % ss) || (len % ss))
		return -EINVAL;
	if (offset > bd->size || len > bd->size - offset)
		return -EINVAL;
	return 0;
}

/* Total length of an iovec array, or -EINVAL on a bad count or overflow. */
static int64_t blockdev_iov_len(const struct iovec *iov, int iovcnt)
{
	uint64_t total = 0;

	if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt && !iov))
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > (uint64_t)INT64_MAX - total)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	return (int64_t)total;
}

int blockdev_readv(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset)
{
	int64_t len = blockdev_iov_len(iov, iovcnt);

	if (len < 0 || blockdev_check_range(bd, offset, (uint64_t)len))
		return -EINVAL;
	if (!len)
		return 0;
	return bd->ops->readv(bd, iov, iovcnt, offset);
}

int blockdev_writev(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset,
		    unsigned flags)
{
	int64_t len = blockdev_iov_len(iov, iovcnt);

	if (bd->read_only)
		return -EROFS;
	if (len < 0 || blockdev_check_range(bd, offset, (uint64_t)len))
		return -EINVAL;
	if (!len)
		return 0;
	return bd->ops->writev(bd, iov, iovcnt, offset, flags);
}

int blockdev_read(struct blockdev *bd, void *buf, uint64_t len, uint64_t offset)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};

	return blockdev_readv(bd, &iov, 1, offset);
}

int blockdev_write(struct blockdev *bd, const void *buf, uint64_t len, uint64_t offset,
		   unsigned flags)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return blockdev_writev(bd, &iov, 1, offset, flags);
}

int blockdev_flush(struct blockdev *bd)
{
	if (!bd->ops->flush)
		return 0;
	return bd->ops->flush(bd);
}

int blockdev_discard(struct blockdev *bd, uint64_t offset, uint64_t len)
{
	if (bd->read_only)
		return -EROFS;
	if (blockdev_check_range(bd, offset, len))
		return -EINVAL;
	if (!len || !bd->ops->discard)
		return 0;
	return bd->ops->discard(bd, offset, len);
}

int blockdev_close(struct blockdev *bd)
{
	if (!bd)
		return 0;
	if (!bd->ops->close)
		return 0;
	return bd->ops->close(bd);
}

/* ---- asynchronous queue ---- */

struct blockdev_req_list {
	struct blockdev_req *head, *tail;
};

struct blockdev_queue {
	struct blockdev *bd;
	enum blockdev_engine engine;
	unsigned depth;
	int efd;
	bool is_raw;

	/* Caller thread only. */
	unsigned inflight;
	unsigned plugged;
	unsigned unsubmitted; /* SQEs prepared but not yet handed to the kernel */
	struct blockdev_req_list local; /* finished without leaving the caller thread */
	bool ring_ok;
	struct io_uring ring;
	/* Small buffered writes done in the caller thread (see queue_write_inline). */
	bool inline_writes;
	bool nowait_unsupported; /* the file system refused RWF_NOWAIT for writes */
	unsigned inline_backoff; /* writes left to send the slow way after a slow one */

	/* Thread pool; lists and stop under lock. */
	pthread_mutex_t lock;
	pthread_cond_t work_cond;
	struct blockdev_req_list work;
	struct blockdev_req_list done;
	bool stop;
	unsigned idle; /* workers waiting for work */
	unsigned nworkers;
	pthread_t workers[BLOCKDEV_MAX_THREADS];
};

static void list_push(struct blockdev_req_list *l, struct blockdev_req *req)
{
	req->next_ = NULL;
	if (l->tail)
		l->tail->next_ = req;
	else
		l->head = req;
	l->tail = req;
}

static struct blockdev_req *list_pop(struct blockdev_req_list *l)
{
	struct blockdev_req *req = l->head;

	if (req) {
		l->head = req->next_;
		if (!l->head)
			l->tail = NULL;
	}
	return req;
}

static void queue_signal(struct blockdev_queue *q)
{
	uint64_t one = 1;

	/* The counter cannot overflow in practice; EAGAIN would still leave it readable. */
	while (write(q->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static int blockdev_req_run(struct blockdev *bd, struct blockdev_req *req)
{
	switch (req->op) {
	case BLOCKDEV_OP_READ:
		return bd->ops->readv(bd, req->iov, req->iovcnt, req->offset);
	case BLOCKDEV_OP_WRITE:
		return bd->ops->writev(bd, req->iov, req->iovcnt, req->offset, req->flags);
	case BLOCKDEV_OP_FLUSH:
		return bd->ops->flush ? bd->ops->flush(bd) : 0;
	case BLOCKDEV_OP_DISCARD:
		return bd->ops->discard ? bd->ops->discard(bd, req->offset, req->len) : 0;
	}
	return -EINVAL;
}

static void *blockdev_worker(void *arg)
{
	struct blockdev_queue *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct blockdev_req *req;

		while (!q->work.head && !q->stop) {
			q->idle++;
			pthread_cond_wait(&q->work_cond, &q->lock);
			q->idle--;
		}
		req = list_pop(&q->work);
		if (!req)
			break; /* stop and nothing left */
		pthread_mutex_unlock(&q->lock);
		req->result_ = blockdev_req_run(q->bd, req);
		pthread_mutex_lock(&q->lock);
		/*
		 * One wake-up per batch: the collector clears the eventfd before
		 * it drains the list, so a non-empty list is always signalled.
		 */
		if (!q->done.head)
			queue_signal(q);
		list_push(&q->done, req);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

static void queue_to_pool(struct blockdev_queue *q, struct blockdev_req *req)
{
	pthread_mutex_lock(&q->lock);
	list_push(&q->work, req);
	/* Busy workers pick the request up when they finish their current one. */
	if (q->idle)
		pthread_cond_signal(&q->work_cond);
	pthread_mutex_unlock(&q->lock);
}

/* Finished in the caller thread: its next blockdev_queue_complete() runs it, no signal. */
static void queue_local_done(struct blockdev_queue *q, struct blockdev_req *req, int result)
{
	req->result_ = result;
	list_push(&q->local, req);
}

/*
 * A small buffered write is a copy into the page cache. File systems without RWF_NOWAIT for
 * buffered writes (ext4) make io_uring hand each one to a kernel worker, which costs several
 * times the copy, so those writes run here in the caller thread: first with RWF_NOWAIT (never
 * blocks where supported; -EAGAIN falls back to the asynchronous path), else plainly. A write
 * that still took long (dirty-page throttling, memory pressure) sends the next writes the
 * asynchronous way for a while, so a slow device cannot stall the caller write after write.
 */
#define QUEUE_INLINE_WRITE_MAX (64u << 10)
#define QUEUE_INLINE_SLOW_NS (1000 * 1000)
#define QUEUE_INLINE_BACKOFF 1024u

static bool queue_write_inline(struct blockdev_queue *q, struct blockdev_req *req, uint64_t len)
{
	struct blockdev *bd = q->bd;
	struct blockdev_extent ext;
	uint64_t t0;
	ssize_t n;

	if (!q->inline_writes || (req->flags & BLOCKDEV_WRITE_FUA) || len > QUEUE_INLINE_WRITE_MAX)
		return false;
	if (q->inline_backoff) {
		q->inline_backoff--;
		return false;
	}
	if (bd->ops->map(bd, req->offset, len, true, &ext) < 0 || ext.len < len ||
	    ext.kind != BLOCKDEV_EXTENT_DATA || ext.file_offset > (uint64_t)INT64_MAX - len)
		return false;
	if (!q->nowait_unsupported) {
		n = pwritev2(bd->data_fd, req->iov, req->iovcnt, (off_t)ext.file_offset,
			     RWF_NOWAIT);
		if (n < 0 && errno == EAGAIN)
			return false;
		if (n >= 0 || errno != EOPNOTSUPP)
			goto done;
		q->nowait_unsupported = true;
	}
	t0 = util_now_ns();
	do
		n = pwritev(bd->data_fd, req->iov, req->iovcnt, (off_t)ext.file_offset);
	while (n < 0 && errno == EINTR);
	if (util_now_ns() - t0 > QUEUE_INLINE_SLOW_NS)
		q->inline_backoff = QUEUE_INLINE_BACKOFF;
done:
	if (n >= 0 && (uint64_t)n != len) {
		/* Short write: the synchronous op rewrites the whole range. */
		queue_to_pool(q, req);
		return true;
	}
	queue_local_done(q, req, n < 0 ? -errno : 0);
	return true;
}

static void queue_uring_submit(struct blockdev_queue *q)
{
	while (q->unsubmitted) {
		int n = io_uring_submit(&q->ring);

		if (n < 0) {
			if (n == -EINTR || n == -EAGAIN || n == -EBUSY)
				continue;
			/* Should not happen with a ring as deep as the queue. */
			log_error("disk", "io_uring_submit failed: %s", strerror(-n));
			return;
		}
		q->unsubmitted -= MIN((unsigned)n, q->unsubmitted);
	}
}

/*
 * Hands the prepared SQEs to the kernel. Completions posted meanwhile (page-cache reads finish
 * inside the call) are the caller's to collect with its next complete(): the eventfd is off
 * for the call, so they do not wake the thread that watches it (often another one).
 */
static void queue_uring_flush(struct blockdev_queue *q)
{
	bool quiet = q->unsubmitted && io_uring_cq_eventfd_toggle(&q->ring, false) == 0;

	queue_uring_submit(q);
	if (quiet)
		io_uring_cq_eventfd_toggle(&q->ring, true);
}

/* Prepares an SQE; false when the request must take the slow path. */
static bool queue_uring_prep(struct blockdev_queue *q, struct blockdev_req *req, uint64_t len)
{
	struct blockdev *bd = q->bd;
	struct blockdev_extent ext;
	struct io_uring_sqe *sqe;
	bool write = req->op == BLOCKDEV_OP_WRITE;

	if (req->op == BLOCKDEV_OP_FLUSH) {
		if (!q->is_raw)
			return false; /* formats may have metadata to write first */
		sqe = io_uring_get_sqe(&q->ring);
		if (!sqe)
			return false;
		io_uring_prep_fsync(sqe, bd->data_fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data(sqe, req);
		q->unsubmitted++;
		return true;
	}
	if (req->op != BLOCKDEV_OP_READ && !write)
		return false;
	if (!bd->ops->map)
		return false;
	if (write && (req->flags & BLOCKDEV_WRITE_FUA) && !q->is_raw)
		return false;
	if (bd->ops->map(bd, req->offset, len, write, &ext) < 0 || ext.len < len)
		return false;
	if (ext.kind == BLOCKDEV_EXTENT_ZERO && !write) {
		for (int i = 0; i < req->iovcnt; i++)
			memset(req->iov[i].iov_base, 0, req->iov[i].iov_len);
		queue_local_done(q, req, 0);
		return true;
	}
	if (ext.kind != BLOCKDEV_EXTENT_DATA || bd->data_fd < 0 ||
	    ext.file_offset > (uint64_t)INT64_MAX - len)
		return false;
	sqe = io_uring_get_sqe(&q->ring);
	if (!sqe)
		return false;
	if (write)
		io_uring_prep_writev2(sqe, bd->data_fd, req->iov, (unsigned)req->iovcnt,
				      ext.file_offset,
				      (req->flags & BLOCKDEV_WRITE_FUA) ? RWF_DSYNC : 0);
	else
		io_uring_prep_readv(sqe, bd->data_fd, req->iov, (unsigned)req->iovcnt,
				    ext.file_offset);
	/* len is the expected result; short transfers are redone on the pool. */
	req->result_ = (int)MIN(len, (uint64_t)INT_MAX);
	io_uring_sqe_set_data(sqe, req);
	q->unsubmitted++;
	return true;
}

int blockdev_queue_submit(struct blockdev_queue *q, struct blockdev_req *req)
{
	struct blockdev *bd = q->bd;
	uint64_t len = 0;

	switch (req->op) {
	case BLOCKDEV_OP_READ:
	case BLOCKDEV_OP_WRITE: {
		int64_t l = blockdev_iov_len(req->iov, req->iovcnt);

		if (l < 0)
			return -EINVAL;
		len = (uint64_t)l;
		break;
	}
	case BLOCKDEV_OP_DISCARD:
		len = req->len;
		break;
	case BLOCKDEV_OP_FLUSH:
		break;
	default:
		return -EINVAL;
	}
	if (req->op != BLOCKDEV_OP_FLUSH && blockdev_check_range(bd, req->offset, len))
		return -EINVAL;
	if ((req->op == BLOCKDEV_OP_WRITE || req->op == BLOCKDEV_OP_DISCARD) && bd->read_only)
		return -EROFS;
	if (q->inflight >= q->depth)
		return -EAGAIN;
	q->inflight++;
	req->next_ = NULL;
	if (!len && req->op != BLOCKDEV_OP_FLUSH) {
		queue_local_done(q, req, 0);
		return 0;
	}
	if (req->op == BLOCKDEV_OP_WRITE && queue_write_inline(q, req, len))
		return 0;
	if (q->ring_ok && queue_uring_prep(q, req, len)) {
		if (!q->plugged)
			queue_uring_flush(q);
		return 0;
	}
	queue_to_pool(q, req);
	return 0;
}

void blockdev_queue_plug(struct blockdev_queue *q)
{
	q->plugged++;
}

void blockdev_queue_unplug(struct blockdev_queue *q)
{
	if (q->plugged && !--q->plugged && q->ring_ok)
		queue_uring_flush(q);
}

int blockdev_queue_fd(struct blockdev_queue *q)
{
	return q->efd;
}

unsigned blockdev_queue_inflight(const struct blockdev_queue *q)
{
	return q->inflight;
}

enum blockdev_engine blockdev_queue_engine(const struct blockdev_queue *q)
{
	return q->engine;
}

/* Moves every finished request onto ready; callbacks run afterwards. */
static void queue_collect(struct blockdev_queue *q, struct blockdev_req_list *ready)
{
	uint64_t cnt;

	/* Clear the eventfd first: anything finishing after this signals again. */
	while (read(q->efd, &cnt, sizeof(cnt)) < 0 && errno == EINTR)
		;
	*ready = q->local;
	q->local.head = q->local.tail = NULL;

	if (q->ring_ok) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;

		io_uring_for_each_cqe(&q->ring, head, cqe)
		{
			struct blockdev_req *req = io_uring_cqe_get_data(cqe);
			int res = cqe->res;

			seen++;
			if (req->op == BLOCKDEV_OP_FLUSH) {
				req->result_ = res < 0 ? res : 0;
			} else if (res >= 0 && res != req->result_) {
				/* Short transfer: let the synchronous op finish it. */
				queue_to_pool(q, req);
				continue;
			} else {
				req->result_ = res < 0 ? res : 0;
			}
			list_push(ready, req);
		}
		io_uring_cq_advance(&q->ring, seen);
	}

	if (q->nworkers) {
		pthread_mutex_lock(&q->lock);
		if (q->done.head) {
			if (ready->tail)
				ready->tail->next_ = q->done.head;
			else
				ready->head = q->done.head;
			ready->tail = q->done.tail;
			q->done.head = q->done.tail = NULL;
		}
		pthread_mutex_unlock(&q->lock);
	}
}

/* Finished requests no signal announced: done in this thread, or posted while it submitted. */
static bool queue_unsignalled(struct blockdev_queue *q)
{
	return q->local.head || (q->ring_ok && io_uring_cq_ready(&q->ring));
}

#define QUEUE_COMPLETE_ROUNDS 4

unsigned blockdev_queue_complete(struct blockdev_queue *q)
{
	struct blockdev_req_list ready;
	struct blockdev_req *req;
	unsigned n = 0, round = 0;

	do {
		queue_collect(q, &ready);
		/* Callbacks may submit again: batch those into one io_uring_submit. */
		q->plugged++;
		while ((req = list_pop(&ready))) {
			q->inflight--;
			n++;
			req->complete(req, req->result_);
		}
		blockdev_queue_unplug(q);
		/* What the callbacks submitted may have finished at once: run it too. */
	} while (queue_unsignalled(q) && ++round < QUEUE_COMPLETE_ROUNDS);
	/* Still more (a long chain): the fd tells the caller to come back. */
	if (queue_unsignalled(q))
		queue_signal(q);
	return n;
}

unsigned blockdev_queue_wait(struct blockdev_queue *q)
{
	for (;;) {
		struct pollfd pfd = {.fd = q->efd, .events = POLLIN};
		unsigned n = blockdev_queue_complete(q);

		if (n || !q->inflight)
			return n;
		if (q->unsubmitted) {
			unsigned before = q->unsubmitted;

			queue_uring_flush(q); /* a plug left open must not hang us */
			/* What that finished at once does not signal: collect it (unless the
			 * submit failed outright; then the eventfd is all there is). */
			if (q->unsubmitted < before)
				continue;
		}
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
			log_error("disk", "poll on queue eventfd: %s", strerror(errno));
			return 0;
		}
	}
}

static void queue_stop_workers(struct blockdev_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->work_cond);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->nworkers; i++)
		pthread_join(q->workers[i], NULL);
	q->nworkers = 0;
}

static void queue_free(struct blockdev_queue *q)
{
	queue_stop_workers(q);
	if (q->ring_ok)
		io_uring_queue_exit(&q->ring);
	if (q->efd >= 0)
		close(q->efd);
	pthread_cond_destroy(&q->work_cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static int queue_uring_init(struct blockdev_queue *q)
{
	int ret = io_uring_queue_init(q->depth, &q->ring, 0);

	if (ret < 0)
		return ret;
	ret = io_uring_register_eventfd(&q->ring, q->efd);
	if (ret < 0) {
		io_uring_queue_exit(&q->ring);
		return ret;
	}
	q->ring_ok = true;
	return 0;
}

struct blockdev_queue *blockdev_queue_create(struct blockdev *bd, unsigned depth,
					     enum blockdev_engine engine)
{
	struct blockdev_queue *q;
	unsigned nthreads;

	if (!depth || depth > 4096) {
		err_set("queue depth %u is out of range (1..4096)", depth);
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		err_set("out of memory for a disk queue");
		return NULL;
	}
	q->bd = bd;
	q->depth = depth;
	q->is_raw = bd->format && !strcmp(bd->format, "raw");
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work_cond, NULL);
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		err_set("cannot create an eventfd for the disk queue: %s", strerror(errno));
		goto fail;
	}
	if (engine != BLOCKDEV_ENGINE_THREADS) {
		int ret = queue_uring_init(q);

		if (ret < 0 && engine == BLOCKDEV_ENGINE_URING) {
			err_set("io_uring is not available here (%s); use the thread engine",
				strerror(-ret));
			goto fail;
		}
		if (ret < 0)
			log_info("disk", "io_uring unavailable (%s), using threads",
				 strerror(-ret));
	}
	q->engine = q->ring_ok ? BLOCKDEV_ENGINE_URING : BLOCKDEV_ENGINE_THREADS;
	if (bd->ops->map && bd->data_fd >= 0) {
		int fl = fcntl(bd->data_fd, F_GETFL);

		q->inline_writes =
			fl >= 0 && !(fl & O_DIRECT) && !getenv("VIRIDIAN_NO_INLINE_WRITES");
	}
	nthreads = MIN(depth, q->ring_ok ? BLOCKDEV_URING_THREADS : BLOCKDEV_MAX_THREADS);
	for (unsigned i = 0; i < nthreads; i++) {
		int e = pthread_create(&q->workers[i], NULL, blockdev_worker, q);

		if (e) {
			err_set("cannot start disk I/O threads: %s", strerror(e));
			goto fail;
		}
		q->nworkers++;
	}
	return q;
fail:
	queue_free(q);
	return NULL;
}

void blockdev_queue_destroy(struct blockdev_queue *q)
{
	if (!q)
		return;
	if (q->plugged) {
		q->plugged = 0;
		if (q->ring_ok)
			queue_uring_flush(q);
	}
	while (q->inflight)
		blockdev_queue_wait(q);
	queue_free(q);
}
