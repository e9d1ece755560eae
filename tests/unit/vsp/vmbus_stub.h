/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A stand-in for the VMBus channel server, so storvsp's packet handling can be driven without
 * rings, SynIC or threads (unit test and fuzz target). It defines every vmbus_* call storvsp
 * makes; the test then never links the real server object. Replies are recorded; fds added by
 * the device are polled by stub_poll(). GPA-direct ranges are parsed here from the spec
 * (vmbus-devices.md §1.1) against a real guest_mem.
 */
#ifndef VIRIDIAN_TESTS_VSP_VMBUS_STUB_H
#define VIRIDIAN_TESTS_VSP_VMBUS_STUB_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>

#include "lib/util.h"
#include "vmbus/device.h"

#define STUB_MAX_REPLIES 4096
#define STUB_MAX_FDS 64

struct stub_reply {
	uint16_t type;
	uint64_t trans_id;
	uint32_t len;
	uint8_t data[64];
};

struct vmbus_chan {
	unsigned index;
	void *priv;
	struct vmbus_device *dev;
	struct guest_mem *gm;
	unsigned nreplies;
	struct stub_reply replies[STUB_MAX_REPLIES];
	unsigned nfds;
	struct {
		int fd;
		vmbus_chan_fd_cb cb;
		void *opaque;
	} fds[STUB_MAX_FDS];
	uint32_t max_pkt; /* vmbus_chan_set_max_pkt */
};

static unsigned stub_offered;

unsigned vmbus_chan_index(const struct vmbus_chan *chan)
{
	return chan->index;
}

unsigned vmbus_chan_target_vp(const struct vmbus_chan *chan)
{
	return 0;
}

struct vmbus_device *vmbus_chan_device(const struct vmbus_chan *chan)
{
	return chan->dev;
}

struct guest_mem *vmbus_chan_guest_mem(const struct vmbus_chan *chan)
{
	return chan->gm;
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
	chan->max_pkt = bytes;
}

int vmbus_device_offer_subchannels(struct vmbus_device *dev, unsigned count)
{
	stub_offered = count;
	return (int)count;
}

int vmbus_chan_send(struct vmbus_chan *chan, uint16_t type, uint16_t flags, uint64_t trans_id,
		    uint32_t hdr_len, const struct iovec *iov, int iovcnt)
{
	struct stub_reply *r;
	uint32_t len = 0;

	if (chan->nreplies >= STUB_MAX_REPLIES)
		return -ENOMEM;
	r = &chan->replies[chan->nreplies++];
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->trans_id = trans_id;
	for (int i = 0; i < iovcnt; i++) {
		size_t n = iov[i].iov_len;

		if (len + n > sizeof(r->data) || (chan->max_pkt && 16 + hdr_len + len + n > chan->max_pkt))
			return -EMSGSIZE; /* more than storvsc's 80-byte packet */
		memcpy(r->data + len, iov[i].iov_base, n);
		len += (uint32_t)n;
	}
	r->len = len;
	return 0;
}

int vmbus_chan_send_inband(struct vmbus_chan *chan, uint64_t trans_id, const void *data,
			   uint32_t len, bool completion_requested)
{
	struct iovec iov = {(void *)data, len};

	return vmbus_chan_send(chan, VMBUS_PKT_DATA_INBAND, completion_requested, trans_id, 0, &iov,
			       1);
}

int vmbus_chan_send_completion(struct vmbus_chan *chan, uint64_t trans_id, const void *data,
			       uint32_t len)
{
	struct iovec iov = {(void *)data, len};

	return vmbus_chan_send(chan, 11, 0, trans_id, 0, &iov, 1);
}

int vmbus_chan_add_fd(struct vmbus_chan *chan, int fd, vmbus_chan_fd_cb cb, void *opaque)
{
	if (chan->nfds >= STUB_MAX_FDS)
		return -ENOSPC;
	chan->fds[chan->nfds].fd = fd;
	chan->fds[chan->nfds].cb = cb;
	chan->fds[chan->nfds].opaque = opaque;
	chan->nfds++;
	return 0;
}

void vmbus_chan_del_fd(struct vmbus_chan *chan, int fd)
{
	for (unsigned i = 0; i < chan->nfds; i++) {
		if (chan->fds[i].fd == fd) {
			chan->fds[i] = chan->fds[--chan->nfds];
			return;
		}
	}
}

/* Waits up to timeout_ms for any device fd, runs the callbacks of the readable ones. */
static inline int stub_poll(struct vmbus_chan *chan, int timeout_ms)
{
	struct pollfd pfd[STUB_MAX_FDS];
	unsigned n = chan->nfds;
	int ret;

	for (unsigned i = 0; i < n; i++)
		pfd[i] = (struct pollfd){.fd = chan->fds[i].fd, .events = POLLIN};
	ret = poll(pfd, n, timeout_ms);
	if (ret <= 0)
		return ret;
	for (unsigned i = 0; i < n && i < chan->nfds; i++)
		if (pfd[i].revents & POLLIN)
			chan->fds[i].cb(chan, pfd[i].fd, chan->fds[i].opaque);
	return ret;
}

static inline uint32_t stub_rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t stub_rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

int vmbus_pkt_gpa_direct_iov(struct guest_mem *gm, const struct vmbus_pkt *pkt, struct iovec *iov,
			     int max_iov, uint64_t max_bytes, uint64_t *total)
{
	uint32_t nranges, off = 24;
	uint64_t sum = 0;
	int n = 0;

	if (pkt->type != VMBUS_PKT_DATA_USING_GPA_DIRECT || pkt->hdr_len < 24 ||
	    pkt->hdr_len > pkt->len)
		return -EPROTO;
	nranges = stub_rd32(pkt->data + 20);
	if (!nranges)
		return -EPROTO;
	for (uint32_t r = 0; r < nranges; r++) {
		uint32_t count, boff;
		uint64_t npfn;

		if (off + 8 > pkt->hdr_len)
			return -EPROTO;
		count = stub_rd32(pkt->data + off);
		boff = stub_rd32(pkt->data + off + 4);
		off += 8;
		if (boff >= 4096 || !count)
			return -EPROTO;
		npfn = ((uint64_t)boff + count + 4095) / 4096;
		if (npfn > (pkt->hdr_len - off) / 8)
			return -EPROTO;
		sum += count;
		if (sum > max_bytes)
			return -E2BIG;
		for (uint64_t i = 0; i < npfn; i++) {
			uint64_t pfn = stub_rd64(pkt->data + off + 8 * i);
			uint32_t start = i == 0 ? boff : 0;
			uint64_t end = MIN(4096, (uint64_t)boff + count - i * 4096);
			void *p;

			if (pfn >= (1ull << 52))
				return -EFAULT;
			p = guest_mem_ptr(gm, pfn * 4096 + start, end - start);
			if (!p)
				return -EFAULT;
			if (n >= max_iov)
				return -E2BIG;
			iov[n].iov_base = p;
			iov[n].iov_len = (size_t)(end - start);
			n++;
		}
		off += (uint32_t)npfn * 8;
	}
	*total = sum;
	return n;
}

#endif
