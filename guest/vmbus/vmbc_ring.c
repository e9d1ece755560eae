/*
 * Guest side of the VMBus rings (spec §7): packets with an 8-byte trailer, wrapping at the end
 * of the data area, indices published with release stores, and the §7.5 signalling rules.
 * Every index the host writes is range-checked before use.
 */
#include "vmbus/vmbc.h"

static inline uint32_t load_acq(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_rel(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static void ring_put(const struct vmbc_ring *r, uint32_t off, const void *src, uint32_t len)
{
	uint32_t first = r->size - off < len ? r->size - off : len;

	memcpy(r->data + off, src, first);
	if (len > first)
		memcpy(r->data, (const uint8_t *)src + first, len - first);
}

static void ring_zero(const struct vmbc_ring *r, uint32_t off, uint32_t len)
{
	uint32_t first = r->size - off < len ? r->size - off : len;

	memset(r->data + off, 0, first);
	if (len > first)
		memset(r->data, 0, len - first);
}

static void ring_get(const struct vmbc_ring *r, uint32_t off, void *dst, uint32_t len)
{
	uint32_t first = r->size - off < len ? r->size - off : len;

	memcpy(dst, r->data + off, first);
	if (len > first)
		memcpy((uint8_t *)dst + first, r->data, len - first);
}

static inline uint32_t wrap(const struct vmbc_ring *r, uint64_t off)
{
	return (uint32_t)(off % r->size);
}

/* Free bytes from the producer's point of view (write == read means empty). */
static uint32_t ring_free(const struct vmbc_ring *r, uint32_t w, uint32_t rd)
{
	return w >= rd ? r->size - (w - rd) : rd - w;
}

void vmbc_signal_host(struct vmbc_channel *ch)
{
	ch->signals++;
	if (!(ch->offer.is_dedicated_interrupt & 1) && ch->legacy_send_bits && ch->relid < 16384)
		__atomic_fetch_or(&ch->legacy_send_bits[ch->relid / 8],
				  (uint8_t)(1u << (ch->relid % 8)), __ATOMIC_SEQ_CST);
	if ((ch->offer.monitor_allocated & 1) && ch->monitor_page && ch->offer.monitorid < 128) {
		/* trigger_group[id / 32].pending at offset 8 + 8 * group (spec §6.4). */
		uint32_t *pending =
			(uint32_t *)(ch->monitor_page + 8 + 8 * (ch->offer.monitorid / 32));

		__atomic_fetch_or(pending, 1u << (ch->offer.monitorid % 32), __ATOMIC_SEQ_CST);
		return;
	}
	winhv_signal_event(ch->conn_id, 0);
}

uint32_t vmbc_send_space(const struct vmbc_channel *ch)
{
	const struct vmbc_ring *r = &ch->out;
	uint32_t w, rd, f;

	if (!ch->open)
		return 0;
	w = r->ctl->write_index;
	rd = load_acq(&r->ctl->read_index);
	if (w >= r->size || rd >= r->size)
		return 0;
	f = ring_free(r, w, rd);
	return f > VMBC_PKT_TRAILER ? f - VMBC_PKT_TRAILER - 1 : 0;
}

int vmbc_send(struct vmbc_channel *ch, uint16_t type, uint16_t flags, uint64_t trans_id,
	      const void *hdr, uint32_t hdr_len, const void *data, uint32_t len)
{
	struct vmbc_ring *r = &ch->out;
	struct vmbc_pkt_desc d;
	uint32_t w, rd, total, padded, off, mask;
	uint64_t trailer;
	__typeof__(&ch->trace[0]) t;

	if (!ch->open)
		return VMBC_ENODEV;
	if (hdr_len % 8 || hdr_len > 0xffff * 8u - sizeof(d))
		return VMBC_EINVAL;
	padded = (len + 7) & ~7u;
	if (len > r->size || padded + hdr_len + sizeof(d) >= r->size)
		return VMBC_EINVAL;
	total = (uint32_t)sizeof(d) + hdr_len + padded;
	if (total / 8 > 0xffff)
		return VMBC_EINVAL;
	w = r->ctl->write_index; /* ours: the host must not move it */
	rd = load_acq(&r->ctl->read_index);
	if (w >= r->size || w % 8 || rd >= r->size) {
		ch->ring_errors++;
		return VMBC_EPROTO;
	}
	/* Linux treats avail <= needed as full: never fill the ring completely (§7.1). */
	if (ring_free(r, w, rd) <= total + VMBC_PKT_TRAILER)
		return VMBC_EAGAIN;
	d.type = type;
	d.offset8 = (uint16_t)((sizeof(d) + hdr_len) / 8);
	d.len8 = (uint16_t)(total / 8);
	d.flags = flags;
	d.trans_id = trans_id;
	off = w;
	ring_put(r, off, &d, sizeof(d));
	off = wrap(r, (uint64_t)off + sizeof(d));
	if (hdr_len) {
		ring_put(r, off, hdr, hdr_len);
		off = wrap(r, (uint64_t)off + hdr_len);
	}
	if (len) {
		ring_put(r, off, data, len);
		off = wrap(r, (uint64_t)off + len);
	}
	if (padded > len) {
		ring_zero(r, off, padded - len);
		off = wrap(r, (uint64_t)off + padded - len);
	}
	trailer = (uint64_t)w << 32;
	ring_put(r, off, &trailer, sizeof(trailer));
	off = wrap(r, (uint64_t)off + sizeof(trailer));
	store_rel(&r->ctl->write_index, off);
	/* Signal only if the host is not masking and had consumed everything before us (§7.5). */
	hvplat_mb();
	mask = __atomic_load_n(&r->ctl->interrupt_mask, __ATOMIC_RELAXED);
	rd = load_acq(&r->ctl->read_index);
	t = &ch->trace[ch->ntrace++ % 32];
	t->write = w;
	t->read_seen = rd;
	t->mask_seen = mask;
	t->signalled = !mask && rd == w;
	if (t->signalled) {
		vmbc_signal_host(ch);
	}
	return 0;
}

int vmbc_send_gpa_direct(struct vmbc_channel *ch, uint64_t trans_id, uint16_t flags,
			 const struct vmbc_gpa_range *ranges, unsigned nranges, const void *data,
			 uint32_t len)
{
	uint64_t hdr[64];
	struct vmbc_gpa_direct_hdr *gh = (struct vmbc_gpa_direct_hdr *)hdr;
	uint32_t n = sizeof(*gh) / 8;

	if (!nranges)
		return VMBC_EINVAL;
	gh->reserved = 0;
	gh->rangecount = nranges;
	for (unsigned i = 0; i < nranges; i++) {
		const struct vmbc_gpa_range *rg = &ranges[i];
		uint64_t npfn =
			((uint64_t)rg->byte_offset + rg->byte_count + HVPLAT_PAGE_SIZE - 1) /
			HVPLAT_PAGE_SIZE;
		struct vmbc_gpa_range_hdr rh = {rg->byte_count, rg->byte_offset};

		if (rg->byte_offset >= HVPLAT_PAGE_SIZE || !rg->byte_count ||
		    n + 1 + npfn > sizeof(hdr) / 8)
			return VMBC_EINVAL;
		memcpy(&hdr[n++], &rh, sizeof(rh));
		memcpy(&hdr[n], rg->pfns, npfn * 8);
		n += (uint32_t)npfn;
	}
	return vmbc_send(ch, VMBC_PKT_GPA_DIRECT, flags, trans_id, hdr, n * 8, data, len);
}

int vmbc_send_inband(struct vmbc *c, struct vmbc_channel *ch, uint64_t trans_id, const void *data,
		     uint32_t len, bool completion)
{
	uint16_t flags = completion ? VMBC_PKT_FLAG_COMPLETION : 0;
	uint64_t end = hvplat_now_ns() + c->timeout_ns;
	uint32_t need = (uint32_t)sizeof(struct vmbc_pkt_desc) + ((len + 7) & ~7u) + 8;
	int ret;

	for (;;) {
		ret = vmbc_send(ch, VMBC_PKT_INBAND, flags, trans_id, NULL, 0, data, len);
		if (ret != VMBC_EAGAIN)
			break;
		/* Full: ask the host to signal when this much is free, then re-check (§7.5). */
		__atomic_store_n(&ch->out.ctl->pending_send_sz, need, __ATOMIC_SEQ_CST);
		hvplat_mb();
		if (vmbc_send_space(ch) < need) {
			if (hvplat_now_ns() > end) {
				ret = VMBC_ETIME;
				break;
			}
			hvplat_wait();
			vmbc_poll(c);
		}
	}
	if (ch->open)
		__atomic_store_n(&ch->out.ctl->pending_send_sz, 0, __ATOMIC_SEQ_CST);
	return ret;
}

int vmbc_recv(struct vmbc_channel *ch, void *buf, uint32_t bufsize, struct vmbc_pkt *pkt)
{
	struct vmbc_ring *r = &ch->in;
	struct vmbc_pkt_desc d;
	uint32_t rd, w, avail, len, newr, free_before, free_after, pend;

	if (!ch->open)
		return VMBC_ENODEV;
	rd = r->ctl->read_index; /* ours */
	w = load_acq(&r->ctl->write_index);
	if (w >= r->size || w % 8 || rd >= r->size) {
		ch->ring_errors++;
		return VMBC_EPROTO;
	}
	if (rd == w)
		return VMBC_EAGAIN;
	avail = w > rd ? w - rd : r->size - rd + w;
	if (avail < sizeof(d) + VMBC_PKT_TRAILER) {
		ch->ring_errors++;
		return VMBC_EPROTO;
	}
	ring_get(r, rd, &d, sizeof(d));
	len = (uint32_t)d.len8 * 8;
	if (len < sizeof(d) || (uint64_t)len + VMBC_PKT_TRAILER > avail ||
	    (uint32_t)d.offset8 * 8 < sizeof(d) || (uint32_t)d.offset8 * 8 > len) {
		ch->ring_errors++;
		return VMBC_EPROTO;
	}
	if (len > bufsize)
		return VMBC_EMSGSIZE;
	ring_get(r, rd, buf, len);
	pkt->type = d.type;
	pkt->flags = d.flags;
	pkt->trans_id = d.trans_id;
	pkt->len = len;
	pkt->data_offset = (uint32_t)d.offset8 * 8;
	newr = wrap(r, (uint64_t)rd + len + VMBC_PKT_TRAILER);
	store_rel(&r->ctl->read_index, newr);
	/*
	 * The host may wait for room (pending_send_sz): signal only when this read moved the free
	 * space from <= pending to > pending, measured against the host's current write_index.
	 */
	hvplat_mb();
	pend = __atomic_load_n(&r->ctl->pending_send_sz, __ATOMIC_RELAXED);
	if (pend) {
		w = load_acq(&r->ctl->write_index);
		if (w < r->size) {
			free_after = ring_free(r, w, newr);
			free_before = free_after - (len + VMBC_PKT_TRAILER);
			if (free_after > pend && free_before <= pend)
				vmbc_signal_host(ch);
		}
	}
	return 0;
}

void vmbc_recv_begin(struct vmbc_channel *ch)
{
	if (ch->open)
		__atomic_store_n(&ch->in.ctl->interrupt_mask, 1, __ATOMIC_SEQ_CST);
}

bool vmbc_recv_end(struct vmbc_channel *ch)
{
	if (!ch->open)
		return false;
	__atomic_store_n(&ch->in.ctl->interrupt_mask, 0, __ATOMIC_SEQ_CST);
	hvplat_mb();
	/* Anything written while masked came without a signal: the caller must drain it. */
	return load_acq(&ch->in.ctl->write_index) != ch->in.ctl->read_index;
}
