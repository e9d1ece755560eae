// SPDX-License-Identifier: GPL-2.0-only
/*
 * Host side of a VMBus ring. The data pages are reached through a per-page table of host
 * addresses plus, for each page, how many bytes stay host-contiguous from it; guest RAM is one
 * mapping, so a GPADL of consecutive PFNs becomes a single run and most copies are one memcpy.
 * The wrap and any discontiguity are handled by splitting copies, never by trusting a length.
 */
#include "vmbus/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/util.h"

static inline uint32_t ld_acquire(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline uint32_t ld_once(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void st_release(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline void st_once(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Bytes in use between a read and a write index, both already < size. */
static inline uint32_t ring_used(const struct vmbus_ring *r, uint32_t rd, uint32_t wr)
{
	return wr >= rd ? wr - rd : r->size - rd + wr;
}

static inline uint32_t ring_add(const struct vmbus_ring *r, uint32_t off, uint32_t n)
{
	/* off < size and n <= size, so one subtraction suffices. */
	uint32_t s = off + n;

	return s >= r->size ? s - r->size : s;
}

static inline bool index_ok(const struct vmbus_ring *r, uint32_t v)
{
	return v < r->size && (v & 7) == 0;
}

/* Host-contiguous bytes available at off (off < size), never past the end of the data. */
static inline uint32_t ring_contig(const struct vmbus_ring *r, uint32_t off)
{
	return r->run[off / VMBUS_PAGE_SIZE] - off % VMBUS_PAGE_SIZE;
}

static inline uint8_t *ring_at(const struct vmbus_ring *r, uint32_t off)
{
	return r->page[off / VMBUS_PAGE_SIZE] + off % VMBUS_PAGE_SIZE;
}

/* Copies len (<= size) bytes starting at ring offset off; returns the offset after them. */
static uint32_t ring_copy_out(const struct vmbus_ring *r, uint32_t off, void *dst, uint32_t len)
{
	uint8_t *d = dst;

	while (len) {
		uint32_t n = MIN(len, ring_contig(r, off));

		memcpy(d, ring_at(r, off), n);
		d += n;
		len -= n;
		off = ring_add(r, off, n);
	}
	return off;
}

static uint32_t ring_copy_in(struct vmbus_ring *r, uint32_t off, const void *src, uint32_t len)
{
	const uint8_t *s = src;

	while (len) {
		uint32_t n = MIN(len, ring_contig(r, off));

		memcpy(ring_at(r, off), s, n);
		s += n;
		len -= n;
		off = ring_add(r, off, n);
	}
	return off;
}

int vmbus_ring_init(struct vmbus_ring *r, struct guest_mem *gm, const uint64_t *pfns,
		    unsigned npages, enum vmbus_ring_dir dir)
{
	unsigned ndata, i;
	uint32_t idx;

	memset(r, 0, sizeof(*r));
	if (npages < 2 || npages > VMBUS_RING_MAX_PAGES) {
		err_set("VMBus ring of %u pages: need 2..%u (control page + data pages)", npages,
			VMBUS_RING_MAX_PAGES);
		return -EINVAL;
	}
	if (dir != VMBUS_RING_GUEST_TO_HOST && dir != VMBUS_RING_HOST_TO_GUEST) {
		err_set("VMBus ring: bad direction %d", (int)dir);
		return -EINVAL;
	}
	ndata = npages - 1;
	r->page = calloc(ndata, sizeof(*r->page));
	r->run = calloc(ndata, sizeof(*r->run));
	if (!r->page || !r->run)
		goto nomem;
	for (i = 0; i < npages; i++) {
		uint64_t gpa;
		uint8_t *p;

		if (pfns[i] > (UINT64_MAX / VMBUS_PAGE_SIZE)) {
			err_set("VMBus ring page %u: PFN 0x%llx is out of range", i,
				(unsigned long long)pfns[i]);
			goto fault;
		}
		gpa = pfns[i] * VMBUS_PAGE_SIZE;
		p = guest_mem_range_is_ram(gm, gpa, VMBUS_PAGE_SIZE)
			    ? guest_mem_ptr(gm, gpa, VMBUS_PAGE_SIZE)
			    : NULL;
		if (!p) {
			err_set("VMBus ring page %u: GPA 0x%llx is not guest RAM", i,
				(unsigned long long)gpa);
			goto fault;
		}
		if (i == 0)
			r->ctrl = (struct vmbus_ring_ctrl *)p;
		else
			r->page[i - 1] = p;
	}
	for (i = ndata; i-- > 0;) {
		r->run[i] = VMBUS_PAGE_SIZE;
		if (i + 1 < ndata && r->page[i] + VMBUS_PAGE_SIZE == r->page[i + 1])
			r->run[i] += r->run[i + 1];
	}
	r->size = ndata * VMBUS_PAGE_SIZE;
	r->dir = dir;
	r->max_pkt = VMBUS_DEFAULT_MAX_PKT_SIZE;
	r->nap_ns = VMBUS_RING_NAP_NS;

	if (dir == VMBUS_RING_GUEST_TO_HOST) {
		idx = ld_once(&r->ctrl->read_index);
		if (!index_ok(r, idx))
			goto proto;
		r->rd = r->rd_pub = r->wr_seen = idx;
		r->bounce = malloc(r->size);
		if (!r->bounce)
			goto nomem;
	} else {
		idx = ld_once(&r->ctrl->write_index);
		if (!index_ok(r, idx))
			goto proto;
		r->wr = idx;
	}
	__atomic_fetch_or(&r->ctrl->feature_bits, VMBUS_RING_FEAT_PENDING_SEND_SZ,
			  __ATOMIC_RELAXED);
	return 0;

proto:
	err_set("VMBus ring: the guest's %s index 0x%x is outside the %u-byte data area or unaligned",
		dir == VMBUS_RING_GUEST_TO_HOST ? "read" : "write", idx, r->size);
	vmbus_ring_destroy(r);
	return -EPROTO;
fault:
	vmbus_ring_destroy(r);
	return -EFAULT;
nomem:
	err_set("VMBus ring: out of memory");
	vmbus_ring_destroy(r);
	return -ENOMEM;
}

void vmbus_ring_destroy(struct vmbus_ring *r)
{
	free(r->page);
	free(r->run);
	free(r->bounce);
	memset(r, 0, sizeof(*r));
}

int vmbus_ring_pair_init(struct vmbus_ring *g2h, struct vmbus_ring *h2g, struct guest_mem *gm,
			 const uint64_t *pfns, unsigned npfns, unsigned downstream)
{
	int rc;

	if (downstream < 2 || downstream > npfns || npfns - downstream < 2) {
		err_set("VMBus ring GPADL of %u pages with the host→guest ring at page %u: each "
			"ring needs a control page and at least one data page",
			npfns, downstream);
		return -EINVAL;
	}
	rc = vmbus_ring_init(g2h, gm, pfns, downstream, VMBUS_RING_GUEST_TO_HOST);
	if (rc)
		return rc;
	rc = vmbus_ring_init(h2g, gm, pfns + downstream, npfns - downstream,
			     VMBUS_RING_HOST_TO_GUEST);
	if (rc) {
		err_prefix("host→guest ring");
		vmbus_ring_destroy(g2h);
	}
	return rc;
}

/* ---- reader ---- */

int vmbus_ring_peek(struct vmbus_ring *r, struct vmbus_pkt *pkt)
{
	struct vmbus_pkt_desc d;
	uint32_t rd = r->rd, w, avail, len, contig;
	const uint8_t *p;

	/*
	 * Reload the guest's write_index only when the packets it announced last time are used
	 * up: it only moves forward, and re-reading it per packet bounces its cache line.
	 */
	w = r->wr_seen;
	if (w == rd) {
		w = ld_acquire(&r->ctrl->write_index);
		if (!index_ok(r, w))
			return -EPROTO;
		r->wr_seen = w;
	}
	avail = ring_used(r, rd, w);
	if (avail == 0)
		return -EAGAIN;
	if (avail < sizeof(d) + VMBUS_PKT_TRAILER_SIZE)
		return -EPROTO;
	p = ring_at(r, rd);
	contig = ring_contig(r, rd);
	/* A fixed-size copy compiles to two loads; only a descriptor split by the wrap loops. */
	if (contig >= sizeof(d))
		memcpy(&d, p, sizeof(d));
	else
		ring_copy_out(r, rd, &d, sizeof(d));
	len = (uint32_t)d.len8 * 8;
	if (d.offset8 < 2 || d.offset8 > d.len8 || len + VMBUS_PKT_TRAILER_SIZE > avail)
		return -EPROTO;
	if (!r->always_copy && contig >= len) {
		pkt->data = p;
	} else {
		ring_copy_out(r, rd, r->bounce, len);
		/* The copy is private: make its descriptor agree with the validated one. */
		memcpy(r->bounce, &d, sizeof(d));
		pkt->data = r->bounce;
	}
	pkt->type = d.type;
	pkt->flags = d.flags;
	pkt->trans_id = d.trans_id;
	pkt->len = len;
	pkt->hdr_len = (uint32_t)d.offset8 * 8;
	pkt->payload = pkt->data + pkt->hdr_len;
	pkt->payload_len = len - pkt->hdr_len;
	r->cur_len = len + VMBUS_PKT_TRAILER_SIZE;
	pkt->more = avail > r->cur_len;
	return 0;
}

void vmbus_ring_set_copy(struct vmbus_ring *r, bool always)
{
	r->always_copy = always;
}

void vmbus_ring_consume(struct vmbus_ring *r)
{
	r->rd = ring_add(r, r->rd, r->cur_len);
	r->cur_len = 0;
}

bool vmbus_ring_read_done(struct vmbus_ring *r)
{
	uint32_t old = r->rd_pub, pending, w, free_before, free_after;

	if (r->rd == old)
		return false;
	st_release(&r->ctrl->read_index, r->rd);
	r->rd_pub = r->rd;
	/* Publish read_index before looking at pending_send_sz (the guest does the reverse). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	pending = ld_once(&r->ctrl->pending_send_sz);
	if (pending == 0)
		return false;
	w = ld_once(&r->ctrl->write_index);
	if (!index_ok(r, w))
		w = r->wr_seen;
	free_before = r->size - ring_used(r, old, w);
	free_after = r->size - ring_used(r, r->rd, w);
	return free_before <= pending && free_after > pending;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

bool vmbus_ring_poll(struct vmbus_ring *r, uint64_t budget_ns)
{
	uint64_t now = util_now_ns(), end = now + budget_ns, next;

	if (r->wr_seen != r->rd)
		return true;
	for (;;) {
		next = MIN(now + r->nap_ns, end);
		while ((now = util_now_ns()) < next)
			cpu_relax();
		/* peek re-reads and validates it: it only sees wr_seen == rd. */
		if (ld_acquire(&r->ctrl->write_index) != r->rd)
			return true;
		if (now >= end)
			return false;
		cpu_relax();
	}
}

void vmbus_ring_set_nap(struct vmbus_ring *r, uint32_t ns)
{
	r->nap_ns = ns;
}

void vmbus_ring_mask(struct vmbus_ring *r)
{
	st_once(&r->ctrl->interrupt_mask, 1);
}

bool vmbus_ring_unmask(struct vmbus_ring *r)
{
	st_once(&r->ctrl->interrupt_mask, 0);
	/* The guest writes write_index then reads interrupt_mask; we do the opposite order. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return ld_acquire(&r->ctrl->write_index) != r->rd;
}

/* ---- writer ---- */

void vmbus_ring_set_max_pkt(struct vmbus_ring *r, uint32_t bytes)
{
	r->max_pkt = bytes;
}

uint32_t vmbus_ring_pkt_space(uint32_t hdr_len, uint32_t payload_len)
{
	uint64_t n = (uint64_t)sizeof(struct vmbus_pkt_desc) + hdr_len + payload_len;

	n = ALIGN_UP(n, 8) + VMBUS_PKT_TRAILER_SIZE;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

int vmbus_ring_write_avail(struct vmbus_ring *r, uint32_t *avail)
{
	uint32_t rd = ld_acquire(&r->ctrl->read_index);

	if (!index_ok(r, rd))
		return -EPROTO;
	/* Never fill the ring completely: full would look empty. */
	*avail = r->size - ring_used(r, rd, r->wr) - 1;
	return 0;
}

int vmbus_ring_write(struct vmbus_ring *r, uint16_t type, uint16_t flags, uint64_t trans_id,
		     uint32_t hdr_len, const struct iovec *iov, int iovcnt)
{
	static const uint8_t zero[8];
	struct vmbus_pkt_desc d;
	uint64_t body = 0, trailer;
	uint32_t len, space, rd, old, off;
	int i;

	if (iovcnt < 0 || (iovcnt > 0 && !iov) || hdr_len % 8)
		return -EINVAL;
	for (i = 0; i < iovcnt; i++) {
		body += iov[i].iov_len;
		if (body > UINT32_MAX)
			return -EMSGSIZE;
	}
	if (hdr_len > body)
		return -EINVAL;
	len = ALIGN_UP((uint32_t)body + (uint32_t)sizeof(d), 8u);
	if (len > r->max_pkt || len / 8 > UINT16_MAX)
		return -EMSGSIZE;
	space = len + VMBUS_PKT_TRAILER_SIZE;
	if (space >= r->size)
		return -EMSGSIZE;
	rd = ld_acquire(&r->ctrl->read_index);
	if (!index_ok(r, rd))
		return -EPROTO;
	if (r->size - ring_used(r, rd, r->wr) <= space)
		return -EAGAIN;

	d.type = type;
	d.offset8 = (uint16_t)((sizeof(d) + hdr_len) / 8);
	d.len8 = (uint16_t)(len / 8);
	d.flags = flags;
	d.trans_id = trans_id;
	old = r->wr;
	trailer = (uint64_t)old << 32;
	if (ring_contig(r, old) >= space) {
		/* No wrap or page break (the common case): fixed-size copies inline. */
		uint8_t *p = ring_at(r, old), *q = p + sizeof(d);

		memcpy(p, &d, sizeof(d));
		for (i = 0; i < iovcnt; i++) {
			if (iov[i].iov_len)
				memcpy(q, iov[i].iov_base, iov[i].iov_len);
			q += iov[i].iov_len;
		}
		memset(q, 0, len - (uint32_t)sizeof(d) - (uint32_t)body);
		memcpy(p + len, &trailer, sizeof(trailer));
		off = ring_add(r, old, space);
	} else {
		off = ring_copy_in(r, old, &d, sizeof(d));
		for (i = 0; i < iovcnt; i++)
			off = ring_copy_in(r, off, iov[i].iov_base, (uint32_t)iov[i].iov_len);
		off = ring_copy_in(r, off, zero, len - (uint32_t)sizeof(d) - (uint32_t)body);
		off = ring_copy_in(r, off, &trailer, sizeof(trailer));
	}
	r->wr = off;
	st_release(&r->ctrl->write_index, off);
	/* Publish before reading interrupt_mask and read_index (§7.5). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (ld_once(&r->ctrl->interrupt_mask))
		return 0;
	return ld_once(&r->ctrl->read_index) == old ? 1 : 0;
}

int vmbus_ring_wait_space(struct vmbus_ring *r, uint32_t need)
{
	uint32_t rd;

	st_once(&r->ctrl->pending_send_sz, need);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	rd = ld_acquire(&r->ctrl->read_index);
	if (!index_ok(r, rd))
		return -EPROTO;
	if (r->size - ring_used(r, rd, r->wr) > need) {
		st_once(&r->ctrl->pending_send_sz, 0);
		return 1;
	}
	return 0;
}

void vmbus_ring_clear_pending(struct vmbus_ring *r)
{
	st_once(&r->ctrl->pending_send_sz, 0);
}
