// SPDX-License-Identifier: GPL-2.0-only
/*
 * Per-channel I/O: one thread per open channel runs an epoll loop over the guest's signal
 * eventfd, a control eventfd (stop) and the VSP's own fds. It drains the guest→host ring into
 * ops->packet, keeps the host→guest backlog, and signals the guest once per pass when the ring
 * rules say so (spec §7.5).
 *
 * HvSignalEvent on the channel's connection id runs vmbus_chan_on_guest_signal on the
 * signalling VP's thread. When the channel is idle (drain mutex free, no replies the guest has
 * not read yet, no backlog) that VP drains the ring itself, runs the device fds that are ready
 * and signals the guest: a request the device finishes at submit (a page-cache read) is then
 * answered inside the guest's own hypercall, with no thread wake-up. Otherwise the signal is
 * handed to the channel thread through the eventfd, as before. A guest that is streaming keeps
 * going to the channel thread, which polls with the interrupt mask set, so it need not signal
 * (a signal soon after the thread last read several packets in one pass counts as streaming).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hv/hv_synic.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vmbus/server_internal.h"

/* Packets handled per pass before the loop looks at its other fds again. */
#define CHAN_PASS_MAX 1024u
/* Publish read_index this often inside a long drain, so a blocked guest can refill early. */
#define CHAN_PUBLISH_EVERY 32u
/* How long a channel that just had traffic keeps looking for more before it sleeps. */
#define CHAN_POLL_NS 20000u
/*
 * Packets of one burst a device may batch before batch_end (4K reads at depth 32 here: 500k
 * IOPS with the whole burst as one batch, 640k with 16, 570k with 8: the guest refills while
 * the rest of the burst runs).
 */
#define CHAN_BURST_MAX 16u
/* A drain on a VP thread takes the guest's own CPU time: bounded, then the thread goes on. */
#define CHAN_VP_PASS_MAX 64u
#define CHAN_VP_PASS_NS 50000u
/* A signal this soon after the channel thread last read packets goes to the thread. */
#define CHAN_VP_AFTER_THREAD_NS 100000u

enum { CHAN_EV_CTL = 0, CHAN_EV_GUEST = 1, CHAN_EV_FD_BASE = 2 };

void vmbus_chan_signal_guest(struct vmbus_chan *chan)
{
	unsigned vp = __atomic_load_n(&chan->target_vp, __ATOMIC_RELAXED);
	int r;

	/* Dedicated interrupt (§4.3): bit relid of SINT 2's event flags on the target VP. */
	r = hv_synic_signal_event(chan->srv->part, vp, VMBUS_MESSAGE_SINT, chan->relid);
	if (r < 0 && r != -EAGAIN)
		log_warn_ratelimited(VMBUS_LOG, "relid %u: signal VP %u failed (%d)", chan->relid,
				     vp, r);
	chan->stat_signals++;
}

static void chan_fail(struct vmbus_chan *chan, int err)
{
	if (!chan->failed)
		log_warn_ratelimited(VMBUS_LOG,
				     "%s relid %u: protocol error (%d), channel reset until the "
				     "guest closes it",
				     chan->dev->name ? chan->dev->name : "device", chan->relid,
				     err);
	chan->failed = true;
}

static void chan_backlog_free(struct vmbus_chan *chan)
{
	struct vmbus_backlog *b = chan->backlog, *next;

	for (; b; b = next) {
		next = b->next;
		free(b);
	}
	chan->backlog = NULL;
	chan->backlog_tail = &chan->backlog;
}

/* Writes queued packets while the ring has room. 0 (maybe still queued) or -EPROTO. */
static int chan_backlog_flush(struct vmbus_chan *chan)
{
	struct vmbus_backlog *b;
	int r;

	if (chan->waiting_space) {
		vmbus_ring_clear_pending(&chan->h2g);
		chan->waiting_space = false;
	}
	while ((b = chan->backlog)) {
		struct iovec iov = {.iov_base = b->data, .iov_len = b->len};

		r = vmbus_ring_write(&chan->h2g, b->type, b->flags, b->trans_id, b->hdr_len, &iov,
				     1);
		if (r == -EAGAIN) {
			r = vmbus_ring_wait_space(&chan->h2g, vmbus_ring_pkt_space(0, b->len));
			if (r < 0)
				return r;
			if (r == 1)
				continue;
			chan->waiting_space = true;
			return 0;
		}
		if (r == -EPROTO)
			return r;
		if (r == 1)
			chan->need_signal = true;
		else if (r < 0)
			log_warn_ratelimited(VMBUS_LOG, "relid %u: queued packet dropped (%d)",
					     chan->relid, r);
		chan->backlog = b->next;
		if (!chan->backlog)
			chan->backlog_tail = &chan->backlog;
		free(b);
	}
	return 0;
}

static void chan_signal_if_owed(struct vmbus_chan *chan)
{
	if (chan->need_signal) {
		chan->need_signal = false;
		vmbus_chan_signal_guest(chan);
	}
}

/*
 * Ends the current piece of a burst (packets batched_at..n): the device submits and answers
 * what it batched. -EPROTO when that failed the channel.
 */
static int chan_piece_end(struct vmbus_chan *chan, unsigned *batched_at, unsigned n)
{
	if (n == *batched_at)
		return 0;
	*batched_at = n;
	if (chan->dev->ops->batch_end)
		chan->dev->ops->batch_end(chan->dev, chan);
	return chan->failed ? -EPROTO : 0;
}

/*
 * One pass (drain mutex held): backlog first, then the guest's packets, at most max of them
 * and, when deadline_ns is not 0, until then. poll_ns: how long to look for more packets with
 * the mask still set after traffic (0: unmask at once). *more = stopped early with work left;
 * *count = packets that were in the ring together (handled before it first ran empty).
 */
static int chan_process(struct vmbus_chan *chan, bool *more, unsigned *count, unsigned max,
			uint64_t poll_ns, uint64_t deadline_ns)
{
	struct vmbus_pkt pkt;
	unsigned n = 0, polled_at = 0, batched_at = 0;
	bool emptied = false;
	int r;

	*count = 0;
	if (chan->backlog) {
		r = chan_backlog_flush(chan);
		if (r < 0)
			return r;
		if (chan->backlog)
			return 0; /* backpressure: read nothing new until the guest makes room */
	}
	vmbus_ring_mask(&chan->g2h);
	for (;;) {
		r = vmbus_ring_peek(&chan->g2h, &pkt);
		if (r == -EAGAIN) {
			emptied = true;
			if (chan_piece_end(chan, &batched_at, n))
				return -EPROTO;
			/*
			 * read_index must be current before the mask drops: the guest signals only
			 * when it sees the ring empty (read_index == its old write_index, §7.5).
			 */
			if (vmbus_ring_read_done(&chan->g2h))
				chan->need_signal = true;
			/*
			 * After real traffic, look for the guest's next packet a little longer with
			 * the mask still set: a guest that keeps streaming then never has to
			 * signal. Replies owed a signal get it first.
			 */
			if (poll_ns && n > polled_at) {
				chan_signal_if_owed(chan);
				polled_at = n;
				if (vmbus_ring_poll(&chan->g2h, poll_ns))
					continue;
			}
			if (!vmbus_ring_unmask(&chan->g2h))
				break;
			vmbus_ring_mask(&chan->g2h);
			continue;
		}
		if (r < 0)
			return r;
		r = chan->dev->ops->packet(chan->dev, chan, &pkt);
		if (r == -EPROTO || chan->failed)
			return -EPROTO;
		vmbus_ring_consume(&chan->g2h);
		if (!emptied)
			*count = n + 1;
		n++;
		if (n % CHAN_PUBLISH_EVERY == 0 && vmbus_ring_read_done(&chan->g2h))
			chan->need_signal = true;
		if (chan->backlog)
			break; /* mask stays set: we come back when the backlog drains */
		if ((n - batched_at >= CHAN_BURST_MAX || r == VMBUS_PKT_END_PIECE) &&
		    chan->dev->ops->batch_end) {
			/*
			 * A long burst is handed over in pieces: the guest gets the first answers
			 * (and their interrupt) while the rest still run, so it refills in
			 * parallel.
			 */
			if (chan_piece_end(chan, &batched_at, n))
				return -EPROTO;
			chan_signal_if_owed(chan);
		}
		if (n >= max || (deadline_ns && util_now_ns() > deadline_ns)) {
			*more = true;
			break;
		}
	}
	r = chan_piece_end(chan, &batched_at, n);
	if (vmbus_ring_read_done(&chan->g2h))
		chan->need_signal = true;
	return r;
}

static struct vmbus_chan_fd *chan_fd_find(struct vmbus_chan *chan, int fd)
{
	for (unsigned i = 0; i < chan->nfds; i++)
		if (chan->fds[i].fd == fd)
			return &chan->fds[i];
	return NULL;
}

/* Runs the callback of one epoll event of the channel's set (drain mutex held). */
static void chan_fd_event(struct vmbus_chan *chan, uint64_t tag)
{
	struct vmbus_chan_fd *f;

	if (tag < CHAN_EV_FD_BASE)
		return;
	f = chan_fd_find(chan, (int)(tag - CHAN_EV_FD_BASE));
	if (f) {
		struct vmbus_chan_fd copy = *f;

		copy.cb(chan, copy.fd, copy.opaque);
	}
}

/* Returns with the drain mutex released; the caller closes the device. */
static void chan_loop(struct vmbus_chan *chan)
{
	pthread_mutex_t *drain = &chan->slot->drain;
	struct epoll_event evs[8];
	uint64_t v;

	for (;;) {
		bool more = false, failed;
		int n, r;

		pthread_mutex_lock(drain);
		if (__atomic_load_n(&chan->stop, __ATOMIC_ACQUIRE)) {
			pthread_mutex_unlock(drain);
			return;
		}
		if (!chan->failed) {
			unsigned npkts;

			r = chan_process(chan, &more, &npkts, CHAN_PASS_MAX, CHAN_POLL_NS, 0);
			if (r < 0)
				chan_fail(chan, r);
			/* Several packets waiting at once: the guest streams (QD1 sends one). */
			if (npkts > 1)
				chan->thread_traffic_ns = util_now_ns();
		}
		chan_signal_if_owed(chan);
		failed = chan->failed;
		pthread_mutex_unlock(drain);
		if (failed)
			return;
		n = epoll_wait(chan->epfd, evs, ARRAY_SIZE(evs), more ? 0 : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_warn(VMBUS_LOG, "relid %u: epoll_wait failed: %s", chan->relid,
				 strerror(errno));
			return;
		}
		pthread_mutex_lock(drain);
		for (int i = 0; i < n && !chan->failed; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag == CHAN_EV_CTL) {
				if (read(chan->ctlfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_debug(VMBUS_LOG, "control eventfd read failed");
			} else if (tag == CHAN_EV_GUEST) {
				if (read(chan->guestfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_debug(VMBUS_LOG, "guest eventfd read failed");
			} else {
				chan_fd_event(chan, tag);
			}
		}
		chan_signal_if_owed(chan);
		pthread_mutex_unlock(drain);
	}
}

static void chan_kick(struct vmbus_relid_slot *s)
{
	uint64_t one = 1;

	if (write(s->fd, &one, sizeof(one)) != sizeof(one))
		log_warn_ratelimited(VMBUS_LOG, "guest signal eventfd write failed");
}

/*
 * The guest is streaming when it has not read our last replies yet, or when replies wait in
 * the backlog: the channel thread serves it better (it polls with the mask set, so the guest
 * stops signalling, and the VP goes back to the guest at once).
 */
static bool chan_busy(struct vmbus_chan *chan)
{
	uint32_t avail;

	if (chan->backlog)
		return true;
	if (vmbus_ring_write_avail(&chan->h2g, &avail) < 0)
		return true; /* malformed read_index: the thread's pass reports it */
	if (avail + 1 < chan->h2g.size)
		return true;
	/*
	 * The thread just streamed and only now unmasked: this signal starts the guest's next
	 * burst, which the thread takes with one signal; a drain here would cost a second one.
	 */
	return util_now_ns() - chan->thread_traffic_ns < CHAN_VP_AFTER_THREAD_NS;
}

void vmbus_chan_on_guest_signal(void *opaque, unsigned vp, uint16_t flag)
{
	struct vmbus_relid_slot *s = opaque;
	struct vmbus_chan *chan;
	bool more = false;
	unsigned n;
	int r;

	(void)vp;
	(void)flag;
	/* Busy: whoever holds it (the channel thread, another VP) looks again after the kick. */
	if (pthread_mutex_trylock(&s->drain))
		goto kick;
	chan = s->chan;
	if (!chan || !chan->dev_open || chan->failed ||
	    __atomic_load_n(&chan->stop, __ATOMIC_ACQUIRE) || chan_busy(chan)) {
		pthread_mutex_unlock(&s->drain);
		goto kick;
	}
	chan->stat_vp_drains++;
	r = chan_process(chan, &more, &n, CHAN_VP_PASS_MAX, 0, util_now_ns() + CHAN_VP_PASS_NS);
	/*
	 * Work the packets finished at once was answered in batch_end; device fds (completions
	 * from elsewhere) wake the channel thread, so no epoll round here.
	 */
	if (r < 0)
		chan_fail(chan, r);
	chan_signal_if_owed(chan);
	/* A failed channel is closed by its thread; a bounded drain leaves the rest to it. */
	more = more || chan->failed;
	pthread_mutex_unlock(&s->drain);
	if (!more)
		return;
kick:
	chan_kick(s);
}

static void *chan_main(void *arg)
{
	struct vmbus_chan *chan = arg;
	struct vmbus_device *dev = chan->dev;
	pthread_mutex_t *drain = &chan->slot->drain;
	int r;

	pthread_mutex_lock(drain);
	r = dev->ops->open ? dev->ops->open(dev, chan, chan->user_data) : 0;
	chan->open_result = r;
	chan->dev_open = r == 0;
	if (r) {
		/* The device may have added fds before failing: they go with the channel. */
		chan->nfds = 0;
		chan_backlog_free(chan);
		pthread_mutex_unlock(drain);
		sem_post(&chan->opened);
		return NULL;
	}
	/* Packets the device sent from open() are owed a signal like any other. */
	chan_signal_if_owed(chan);
	pthread_mutex_unlock(drain);
	sem_post(&chan->opened);
	chan_loop(chan);
	pthread_mutex_lock(drain);
	chan->dev_open = false;
	if (dev->ops->close)
		dev->ops->close(dev, chan);
	pthread_mutex_unlock(drain);
	return NULL;
}

int vmbus_chan_start(struct vmbus_chan *chan)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int r;

	chan->stop = false;
	chan->failed = false;
	chan->need_signal = false;
	chan->waiting_space = false;
	chan->backlog = NULL;
	chan->backlog_tail = &chan->backlog;
	chan->nfds = 0;
	chan->priv = NULL;
	chan->dev_open = false;
	chan->thread_traffic_ns = 0;
	chan->epfd = epoll_create1(EPOLL_CLOEXEC);
	chan->ctlfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (chan->epfd < 0 || chan->ctlfd < 0)
		goto fail_fds;
	ev.data.u64 = CHAN_EV_CTL;
	if (epoll_ctl(chan->epfd, EPOLL_CTL_ADD, chan->ctlfd, &ev) < 0)
		goto fail_fds;
	ev.data.u64 = CHAN_EV_GUEST;
	if (epoll_ctl(chan->epfd, EPOLL_CTL_ADD, chan->guestfd, &ev) < 0)
		goto fail_fds;
	sem_init(&chan->opened, 0, 0);
	pthread_mutex_lock(&chan->slot->drain);
	chan->slot->chan = chan;
	pthread_mutex_unlock(&chan->slot->drain);
	r = pthread_create(&chan->thread, NULL, chan_main, chan);
	if (r) {
		pthread_mutex_lock(&chan->slot->drain);
		chan->slot->chan = NULL;
		pthread_mutex_unlock(&chan->slot->drain);
		sem_destroy(&chan->opened);
		errno = r;
		goto fail_fds;
	}
	chan->thread_started = true;
	while (sem_wait(&chan->opened) < 0 && errno == EINTR)
		;
	if (chan->open_result) {
		r = chan->open_result;
		vmbus_chan_stop(chan);
		return r < 0 ? r : -EIO;
	}
	return 0;

fail_fds:
	r = -errno;
	if (chan->epfd >= 0)
		close(chan->epfd);
	if (chan->ctlfd >= 0)
		close(chan->ctlfd);
	chan->epfd = chan->ctlfd = -1;
	err_set("vmbus: cannot start the channel thread: %s", strerror(-r));
	return r;
}

void vmbus_chan_stop(struct vmbus_chan *chan)
{
	uint64_t one = 1;

	if (!chan->thread_started)
		return;
	__atomic_store_n(&chan->stop, true, __ATOMIC_RELEASE);
	if (write(chan->ctlfd, &one, sizeof(one)) < 0)
		log_warn(VMBUS_LOG, "relid %u: cannot wake the channel thread", chan->relid);
	pthread_join(chan->thread, NULL);
	/* A VP-thread drain still running holds the mutex: wait for it, then no more start. */
	pthread_mutex_lock(&chan->slot->drain);
	chan->slot->chan = NULL;
	pthread_mutex_unlock(&chan->slot->drain);
	chan->thread_started = false;
	sem_destroy(&chan->opened);
	close(chan->epfd);
	close(chan->ctlfd);
	chan->epfd = chan->ctlfd = -1;
	chan_backlog_free(chan);
	if (chan->waiting_space)
		vmbus_ring_clear_pending(&chan->h2g);
	chan->waiting_space = false;
	chan->nfds = 0;
}

/* ---- VSP calls ---- */

unsigned vmbus_chan_index(const struct vmbus_chan *chan)
{
	return chan->index;
}

unsigned vmbus_chan_target_vp(const struct vmbus_chan *chan)
{
	return __atomic_load_n(&chan->target_vp, __ATOMIC_RELAXED);
}

struct vmbus_device *vmbus_chan_device(const struct vmbus_chan *chan)
{
	return chan->dev;
}

struct guest_mem *vmbus_chan_guest_mem(const struct vmbus_chan *chan)
{
	return chan->srv->gm;
}

void vmbus_chan_set_priv(struct vmbus_chan *chan, void *priv)
{
	chan->priv = priv;
}

void *vmbus_chan_priv(const struct vmbus_chan *chan)
{
	return chan->priv;
}

void vmbus_chan_set_max_pkt(struct vmbus_chan *chan, uint32_t bytes)
{
	vmbus_ring_set_max_pkt(&chan->h2g, bytes);
}

int vmbus_chan_send(struct vmbus_chan *chan, uint16_t type, uint16_t flags, uint64_t trans_id,
		    uint32_t hdr_len, const struct iovec *iov, int iovcnt)
{
	struct vmbus_backlog *b;
	uint64_t body = 0, len;
	int r;

	if (!chan || iovcnt < 0 || (iovcnt > 0 && !iov) || hdr_len % 8)
		return -EINVAL;
	if (chan->failed || __atomic_load_n(&chan->stop, __ATOMIC_ACQUIRE))
		return -EPIPE;
	for (int i = 0; i < iovcnt; i++)
		body += iov[i].iov_len;
	if (hdr_len > body)
		return -EINVAL;
	len = ALIGN_UP(body + sizeof(struct vmbus_pkt_desc), 8);
	if (len > chan->h2g.max_pkt || len + VMBUS_PKT_TRAILER_SIZE >= chan->h2g.size)
		return -EMSGSIZE;
	if (!chan->backlog) {
		r = vmbus_ring_write(&chan->h2g, type, flags, trans_id, hdr_len, iov, iovcnt);
		if (r >= 0) {
			if (r == 1)
				chan->need_signal = true;
			return 0;
		}
		if (r == -EPROTO) {
			chan_fail(chan, r);
			return r;
		}
		if (r != -EAGAIN)
			return r;
	}
	b = malloc(sizeof(*b) + body);
	if (!b)
		return -ENOMEM;
	b->next = NULL;
	b->type = type;
	b->flags = flags;
	b->trans_id = trans_id;
	b->hdr_len = hdr_len;
	b->len = (uint32_t)body;
	for (int i = 0, off = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			memcpy(b->data + off, iov[i].iov_base, iov[i].iov_len);
		off += (int)iov[i].iov_len;
	}
	*chan->backlog_tail = b;
	chan->backlog_tail = &b->next;
	if (chan->backlog == b && !chan->waiting_space) {
		/* First queued packet: ask the guest to signal when it has room (§7.5). */
		r = vmbus_ring_wait_space(&chan->h2g, vmbus_ring_pkt_space(0, b->len));
		if (r < 0) {
			chan_fail(chan, r);
			return r;
		}
		if (r == 1) {
			r = chan_backlog_flush(chan);
			if (r < 0) {
				chan_fail(chan, r);
				return r;
			}
		} else {
			chan->waiting_space = true;
		}
	}
	return 0;
}

int vmbus_chan_send_inband(struct vmbus_chan *chan, uint64_t trans_id, const void *data,
			   uint32_t len, bool completion_requested)
{
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};

	return vmbus_chan_send(chan, VMBUS_PKT_DATA_INBAND,
			       completion_requested ? VMBUS_PKT_FLAG_COMPLETION_REQUESTED : 0,
			       trans_id, 0, &iov, len ? 1 : 0);
}

int vmbus_chan_send_completion(struct vmbus_chan *chan, uint64_t trans_id, const void *data,
			       uint32_t len)
{
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};

	return vmbus_chan_send(chan, VMBUS_PKT_COMP, 0, trans_id, 0, &iov, len ? 1 : 0);
}

int vmbus_chan_add_fd(struct vmbus_chan *chan, int fd, vmbus_chan_fd_cb cb, void *opaque)
{
	struct epoll_event ev = {.events = EPOLLIN};

	if (!chan || fd < 0 || !cb)
		return -EINVAL;
	if (chan_fd_find(chan, fd))
		return -EEXIST;
	if (chan->nfds >= VMBUS_CHAN_MAX_FDS)
		return -ENOSPC;
	ev.data.u64 = (uint64_t)fd + CHAN_EV_FD_BASE;
	if (epoll_ctl(chan->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	chan->fds[chan->nfds++] = (struct vmbus_chan_fd){.fd = fd, .cb = cb, .opaque = opaque};
	return 0;
}

void vmbus_chan_del_fd(struct vmbus_chan *chan, int fd)
{
	struct vmbus_chan_fd *f = chan ? chan_fd_find(chan, fd) : NULL;

	if (!f)
		return;
	epoll_ctl(chan->epfd, EPOLL_CTL_DEL, fd, NULL);
	*f = chan->fds[--chan->nfds];
}

/* ---- GPA-direct packets ---- */

int vmbus_pkt_gpa_direct_iov(struct guest_mem *gm, const struct vmbus_pkt *pkt, struct iovec *iov,
			     int max_iov, uint64_t max_bytes, uint64_t *total)
{
	uint32_t range_count, off, hdr_len;
	uint64_t sum = 0;
	int n = 0;

	if (!gm || !pkt || !total || max_iov < 0 || (max_iov > 0 && !iov))
		return -EINVAL;
	*total = 0;
	hdr_len = pkt->hdr_len;
	if (pkt->type != VMBUS_PKT_DATA_USING_GPA_DIRECT || hdr_len > pkt->len ||
	    hdr_len < sizeof(struct vmbus_gpa_direct_hdr))
		return -EPROTO;
	/* Each field read exactly once into a local: the guest may rewrite the packet. */
	memcpy(&range_count, pkt->data + offsetof(struct vmbus_gpa_direct_hdr, range_count), 4);
	off = sizeof(struct vmbus_gpa_direct_hdr);
	for (uint32_t ri = 0; ri < range_count; ri++) {
		struct vmbus_gpa_range rg;
		uint64_t npfn, left, pos;

		if (hdr_len - off < sizeof(rg))
			return -EPROTO;
		memcpy(&rg, pkt->data + off, sizeof(rg));
		off += sizeof(rg);
		if (rg.byte_offset >= VMBUS_PAGE_SIZE || rg.byte_count == 0)
			return -EPROTO;
		npfn = DIV_ROUND_UP((uint64_t)rg.byte_offset + rg.byte_count, VMBUS_PAGE_SIZE);
		if (npfn > (hdr_len - off) / 8)
			return -EPROTO;
		sum += rg.byte_count;
		if (sum > max_bytes)
			return -E2BIG;
		left = rg.byte_count;
		pos = rg.byte_offset;
		for (uint64_t p = 0; p < npfn; p++) {
			uint64_t pfn, gpa, seg = MIN(left, VMBUS_PAGE_SIZE - pos);
			uint8_t *h;

			memcpy(&pfn, pkt->data + off, 8);
			off += 8;
			if (pfn >= (1ull << 52))
				return -EFAULT;
			gpa = pfn * VMBUS_PAGE_SIZE + pos;
			h = guest_mem_ptr(gm, gpa, seg);
			if (!h)
				return -EFAULT;
			if (n > 0 && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == h) {
				iov[n - 1].iov_len += seg;
			} else {
				if (n >= max_iov)
					return -E2BIG;
				iov[n].iov_base = h;
				iov[n].iov_len = seg;
				n++;
			}
			left -= seg;
			pos = 0;
		}
	}
	*total = sum;
	return n;
}
