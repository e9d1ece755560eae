// SPDX-License-Identifier: GPL-2.0-only
/*
 * VMBus ring tests. The guest side is a small independent implementation written from
 * spec §7 (control page, descriptor, trailer, signalling rules) working through guest_mem only;
 * it never calls the host ring functions.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lib/crc32c.h"
#include "vid/guest_mem.h"
#include "vmbus/ring.h"

#define RAM (4u << 20)
#define MAXPAGES 16

struct gring {
	struct guest_mem *gm;
	uint64_t pfn[MAXPAGES];
	unsigned npages;
	uint32_t size;
};

static struct guest_mem gm;

/* ---- guest side (spec §7) ---- */

static uint64_t g_ctrl(const struct gring *g, unsigned field_off)
{
	return g->pfn[0] * 4096 + field_off;
}

/* Control fields are shared with the host: sequentially consistent accesses, like a guest. */
static uint32_t g_get(const struct gring *g, unsigned field_off)
{
	uint32_t *p = guest_mem_ptr(g->gm, g_ctrl(g, field_off), 4);

	assert_non_null(p);
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void g_set(const struct gring *g, unsigned field_off, uint32_t v)
{
	uint32_t *p = guest_mem_ptr(g->gm, g_ctrl(g, field_off), 4);

	assert_non_null(p);
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

enum { G_WR = 0, G_RD = 4, G_MASK = 8, G_PEND = 12, G_FEAT = 64 };

/* Data-area copies that wrap at size and walk page by page. */
static uint32_t g_data_io(const struct gring *g, uint32_t off, void *buf, uint32_t len, bool wr)
{
	uint8_t *b = buf;

	while (len) {
		uint32_t in = off % 4096, n = 4096 - in;
		uint64_t gpa = g->pfn[1 + off / 4096] * 4096 + in;

		if (n > len)
			n = len;
		if (wr)
			assert_int_equal(guest_mem_write(g->gm, gpa, b, n), 0);
		else
			assert_int_equal(guest_mem_read(g->gm, gpa, b, n), 0);
		b += n;
		len -= n;
		off = (off + n) % g->size;
	}
	return off;
}

/* Guest writer: 1 = signal host, 0 = no signal, -EAGAIN = full. */
static int g_send(struct gring *g, uint16_t type, uint16_t flags, uint64_t tid, const void *p,
		  uint32_t len)
{
	uint32_t rd = g_get(g, G_RD), wr = g_get(g, G_WR);
	uint32_t plen = (16 + len + 7) & ~7u, total = plen + 8;
	uint32_t used = (wr - rd + g->size) % g->size;
	uint16_t d[4] = {type, 2, (uint16_t)(plen / 8), flags};
	uint64_t trailer = (uint64_t)wr << 32, zero = 0;
	uint32_t off;

	if (g->size - used <= total)
		return -EAGAIN;
	off = g_data_io(g, wr, d, 8, true);
	off = g_data_io(g, off, &tid, 8, true);
	off = g_data_io(g, off, (void *)p, len, true);
	off = g_data_io(g, off, &zero, plen - 16 - len, true);
	off = g_data_io(g, off, &trailer, 8, true);
	g_set(g, G_WR, off);
	return g_get(g, G_MASK) == 0 && g_get(g, G_RD) == wr;
}

struct grx {
	uint16_t type, offset8, len8, flags;
	uint64_t tid;
	uint32_t len; /* payload bytes (len8 - offset8) * 8 */
	bool signal; /* host's pending_send_sz satisfied */
};

/* Guest reader: 0 = got one, -EAGAIN = empty. */
static int g_recv(struct gring *g, void *buf, uint32_t bufsz, struct grx *x)
{
	uint32_t rd = g_get(g, G_RD), wr = g_get(g, G_WR), off, pend, fb, fa;
	uint16_t d[4];

	if (rd == wr)
		return -EAGAIN;
	off = g_data_io(g, rd, d, 8, false);
	off = g_data_io(g, off, &x->tid, 8, false);
	x->type = d[0];
	x->offset8 = d[1];
	x->len8 = d[2];
	x->flags = d[3];
	assert_true(x->offset8 >= 2 && x->offset8 <= x->len8);
	x->len = (x->len8 - x->offset8) * 8u;
	assert_true(x->len <= bufsz);
	off = g_data_io(g, (rd + x->offset8 * 8u) % g->size, buf, x->len, false);
	uint64_t trailer;
	g_data_io(g, off, &trailer, 8, false);
	assert_int_equal(trailer >> 32, rd);
	off = (off + 8) % g->size;
	g_set(g, G_RD, off);
	pend = g_get(g, G_PEND);
	fb = g->size - (wr - rd + g->size) % g->size;
	fa = g->size - (wr - off + g->size) % g->size;
	x->signal = pend && fb <= pend && fa > pend;
	return 0;
}

/* ---- fixtures ---- */

static int setup(void **state)
{
	return guest_mem_init(&gm, RAM, 0);
}

static int teardown(void **state)
{
	guest_mem_destroy(&gm);
	return 0;
}

/* Ring of npages at base PFN; scattered = data pages in reverse order with gaps. */
static void ring_make(struct gring *g, uint64_t base, unsigned npages, bool scattered)
{
	memset(g, 0, sizeof(*g));
	g->gm = &gm;
	g->npages = npages;
	g->size = (npages - 1) * 4096;
	g->pfn[0] = base;
	for (unsigned i = 1; i < npages; i++)
		g->pfn[i] = scattered ? base + 2 * (npages - i) + 1 : base + i;
	for (unsigned i = 0; i < npages; i++) {
		static const uint8_t z[4096];

		assert_int_equal(guest_mem_write(&gm, g->pfn[i] * 4096, z, 4096), 0);
	}
}

static void fill(uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* ---- tests ---- */

static void test_init_errors(void **state)
{
	struct vmbus_ring r;
	struct gring g;
	uint64_t pfns[3];

	ring_make(&g, 16, 3, false);
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 1, VMBUS_RING_GUEST_TO_HOST), -EINVAL);
	memcpy(pfns, g.pfn, sizeof(pfns));
	pfns[2] = RAM / 4096; /* first page past RAM */
	assert_int_equal(vmbus_ring_init(&r, &gm, pfns, 3, VMBUS_RING_GUEST_TO_HOST), -EFAULT);
	pfns[2] = UINT64_MAX;
	assert_int_equal(vmbus_ring_init(&r, &gm, pfns, 3, VMBUS_RING_HOST_TO_GUEST), -EFAULT);
	pfns[2] = UINT64_MAX / 4096;
	assert_int_equal(vmbus_ring_init(&r, &gm, pfns, 3, VMBUS_RING_HOST_TO_GUEST), -EFAULT);
	pfns[0] = RAM / 4096 + 100;
	pfns[2] = g.pfn[2];
	assert_int_equal(vmbus_ring_init(&r, &gm, pfns, 3, VMBUS_RING_HOST_TO_GUEST), -EFAULT);

	g_set(&g, G_RD, 8192); /* == size */
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 3, VMBUS_RING_GUEST_TO_HOST), -EPROTO);
	g_set(&g, G_RD, 12);
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 3, VMBUS_RING_GUEST_TO_HOST), -EPROTO);
	g_set(&g, G_RD, 0);
	g_set(&g, G_WR, 4);
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 3, VMBUS_RING_HOST_TO_GUEST), -EPROTO);
	g_set(&g, G_WR, 0);
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 3, VMBUS_RING_HOST_TO_GUEST), 0);
	assert_int_equal(g_get(&g, G_FEAT) & 1, 1);
	vmbus_ring_destroy(&r);
}

/* Guest→host: random sizes 1..4000, batches until full, checksums. */
static void g2h_random(bool scattered)
{
	static uint8_t buf[4096], chk[4096];
	struct vmbus_ring r;
	struct vmbus_pkt pkt;
	struct gring g;
	uint32_t s = 0x1234567, sent = 0, got = 0, seeds[256];

	ring_make(&g, 32, 5, scattered);
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 5, VMBUS_RING_GUEST_TO_HOST), 0);
	while (got < 3000) {
		int n = (int)(rnd(&s) % 8) + 1;

		for (int i = 0; i < n; i++) {
			uint32_t len = rnd(&s) % 4000 + 1, seed = rnd(&s);

			/* First 8 bytes: len and seed; rest pattern. */
			memcpy(buf, &len, 4);
			memcpy(buf + 4, &seed, 4);
			if (len > 8)
				fill(buf + 8, len - 8, seed);
			if (g_send(&g, VMBUS_PKT_DATA_INBAND, 1, sent + 1, buf, len < 8 ? 8 : len) <
			    0)
				break;
			seeds[sent % 256] = crc32c(0, buf, len < 8 ? 8 : len);
			sent++;
		}
		while (vmbus_ring_peek(&r, &pkt) == 0) {
			uint32_t len;

			assert_int_equal(pkt.type, VMBUS_PKT_DATA_INBAND);
			assert_int_equal(pkt.flags, 1);
			assert_int_equal(pkt.trans_id, got + 1);
			assert_int_equal(pkt.hdr_len, 16);
			memcpy(&len, pkt.payload, 4);
			if (len < 8)
				len = 8;
			assert_true(pkt.payload_len >= len && pkt.payload_len < len + 8);
			memcpy(chk, pkt.payload, len);
			assert_int_equal(crc32c(0, chk, len), seeds[got % 256]);
			vmbus_ring_consume(&r);
			got++;
			if (rnd(&s) % 4 == 0)
				vmbus_ring_read_done(&r);
		}
		vmbus_ring_read_done(&r);
		assert_int_equal(got, sent);
	}
	assert_int_equal(vmbus_ring_peek(&r, &pkt), -EAGAIN);
	vmbus_ring_destroy(&r);
}

static void test_g2h_random_contig(void **state)
{
	g2h_random(false);
}

static void test_g2h_random_scattered(void **state)
{
	g2h_random(true);
}

static void h2g_random(bool scattered)
{
	static uint8_t buf[4096], rx[4096];
	struct vmbus_ring r;
	struct gring g;
	struct grx x;
	uint32_t s = 0xabcdef, sent = 0, got = 0, crcs[256], lens[256];

	ring_make(&g, 64, 5, scattered);
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 5, VMBUS_RING_HOST_TO_GUEST), 0);
	while (got < 3000) {
		int n = (int)(rnd(&s) % 8) + 1;

		for (int i = 0; i < n; i++) {
			uint32_t len = rnd(&s) % 4000 + 1;
			/* Payload over two iovecs; the whole packet must fit 4096. */
			uint32_t pl = len > 4080 ? 4080 : len, cut = rnd(&s) % (pl + 1);
			struct iovec iov[2] = {{buf, cut}, {buf + cut, pl - cut}};
			int rc;

			fill(buf, pl, rnd(&s));
			rc = vmbus_ring_write(&r, VMBUS_PKT_COMP, 0, sent + 7, 0, iov, 2);
			if (rc == -EAGAIN)
				break;
			assert_true(rc == 0 || rc == 1);
			crcs[sent % 256] = crc32c(0, buf, pl);
			lens[sent % 256] = pl;
			sent++;
		}
		while (g_recv(&g, rx, sizeof(rx), &x) == 0) {
			uint32_t pl = lens[got % 256];

			assert_int_equal(x.type, VMBUS_PKT_COMP);
			assert_int_equal(x.tid, got + 7);
			assert_int_equal(x.len, (pl + 7) & ~7u);
			assert_int_equal(crc32c(0, rx, pl), crcs[got % 256]);
			for (uint32_t i = pl; i < x.len; i++)
				assert_int_equal(rx[i], 0);
			got++;
		}
		assert_int_equal(got, sent);
	}
	vmbus_ring_destroy(&r);
}

static void test_h2g_random_contig(void **state)
{
	h2g_random(false);
}

static void test_h2g_random_scattered(void **state)
{
	h2g_random(true);
}

/* Start the ring at every 8-byte offset near the end: descriptor, payload, trailer wrap. */
static void test_wrap_every_offset(void **state)
{
	static uint8_t buf[256], rx[256];
	struct vmbus_ring hr, gr;
	struct vmbus_pkt pkt;
	struct gring g;
	struct grx x;

	for (int scat = 0; scat < 2; scat++) {
		for (uint32_t k = 1; k <= 48; k++) {
			for (uint32_t len = 1; len <= 80; len += 13) {
				uint32_t start;

				ring_make(&g, 128, 3, scat);
				start = g.size - 8 * k;
				g_set(&g, G_RD, start);
				g_set(&g, G_WR, start);
				fill(buf, len, k * 100 + len);
				/* guest → host */
				assert_int_equal(vmbus_ring_init(&hr, &gm, g.pfn, 3,
								 VMBUS_RING_GUEST_TO_HOST),
						 0);
				assert_int_equal(g_send(&g, 6, 0, k, buf, len), 1);
				assert_int_equal(vmbus_ring_peek(&hr, &pkt), 0);
				assert_int_equal(pkt.trans_id, k);
				assert_int_equal(pkt.len, (16 + len + 7) & ~7u);
				assert_memory_equal(pkt.payload, buf, len);
				vmbus_ring_consume(&hr);
				assert_false(vmbus_ring_read_done(&hr));
				assert_int_equal(vmbus_ring_peek(&hr, &pkt), -EAGAIN);
				assert_int_equal(g_get(&g, G_RD), g_get(&g, G_WR));
				vmbus_ring_destroy(&hr);
				/* host → guest, same ring now as the guest's inbound one */
				assert_int_equal(vmbus_ring_init(&gr, &gm, g.pfn, 3,
								 VMBUS_RING_HOST_TO_GUEST),
						 0);
				struct iovec iov = {buf, len};
				assert_int_equal(vmbus_ring_write(&gr, 11, 0, k, 0, &iov, 1), 1);
				assert_int_equal(g_recv(&g, rx, sizeof(rx), &x), 0);
				assert_memory_equal(rx, buf, len);
				assert_int_equal(x.tid, k);
				vmbus_ring_destroy(&gr);
			}
		}
	}
}

static void test_batching_and_g2h_signals(void **state)
{
	static uint8_t buf[4096];
	struct vmbus_ring r;
	struct vmbus_pkt pkt;
	struct gring g;
	int n = 0;

	ring_make(&g, 160, 3, false); /* 8 KiB data */
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 3, VMBUS_RING_GUEST_TO_HOST), 0);
	/* Empty ring, mask clear: first write signals, the next ones don't. */
	assert_int_equal(g_send(&g, 6, 0, 1, buf, 100), 1);
	assert_int_equal(g_send(&g, 6, 0, 2, buf, 100), 0);
	/* Batch: read_index moves only at read_done. */
	vmbus_ring_mask(&r);
	while (vmbus_ring_peek(&r, &pkt) == 0) {
		vmbus_ring_consume(&r);
		n++;
	}
	assert_int_equal(n, 2);
	assert_int_equal(g_get(&g, G_RD), 0);
	assert_false(vmbus_ring_read_done(&r));
	assert_int_equal(g_get(&g, G_RD), g_get(&g, G_WR));
	/* Masked: an empty ring gets a packet without a signal; unmask sees it. */
	assert_int_equal(g_send(&g, 6, 0, 3, buf, 100), 0);
	assert_true(vmbus_ring_unmask(&r));
	assert_int_equal(vmbus_ring_peek(&r, &pkt), 0);
	vmbus_ring_consume(&r);
	vmbus_ring_read_done(&r);
	assert_false(vmbus_ring_unmask(&r));
	assert_int_equal(g_send(&g, 6, 0, 4, buf, 100), 1);
	assert_int_equal(vmbus_ring_peek(&r, &pkt), 0);
	vmbus_ring_consume(&r);
	vmbus_ring_read_done(&r);

	/* pending_send_sz: fill the ring with 1 KiB packets, guest wants 3000 bytes. */
	n = 0;
	while (g_send(&g, 6, 0, 100 + n, buf, 1000) >= 0)
		n++;
	assert_true(n >= 7);
	g_set(&g, G_PEND, 3000);
	/* Freeing one packet (1032 bytes) is not enough. */
	assert_int_equal(vmbus_ring_peek(&r, &pkt), 0);
	vmbus_ring_consume(&r);
	assert_false(vmbus_ring_read_done(&r));
	/* Two more cross the threshold: exactly one signal. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(vmbus_ring_peek(&r, &pkt), 0);
		vmbus_ring_consume(&r);
	}
	assert_true(vmbus_ring_read_done(&r));
	assert_int_equal(vmbus_ring_peek(&r, &pkt), 0);
	vmbus_ring_consume(&r);
	assert_false(vmbus_ring_read_done(&r)); /* already above the threshold */
	vmbus_ring_destroy(&r);
}

static void test_h2g_signals_full_and_limits(void **state)
{
	static uint8_t buf[8192], rx[4096];
	struct vmbus_ring r;
	struct gring g;
	struct grx x;
	struct iovec iov = {buf, 1000};
	uint32_t avail, need;
	int n = 0, rc;

	ring_make(&g, 200, 3, true);
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 3, VMBUS_RING_HOST_TO_GUEST), 0);
	assert_int_equal(vmbus_ring_write(&r, 6, 0, 1, 0, &iov, 1), 1);
	assert_int_equal(vmbus_ring_write(&r, 6, 0, 2, 0, &iov, 1), 0);
	assert_int_equal(g_recv(&g, rx, sizeof(rx), &x), 0);
	assert_int_equal(g_recv(&g, rx, sizeof(rx), &x), 0);
	/* Guest draining with mask set: no signal even on an empty ring. */
	g_set(&g, G_MASK, 1);
	assert_int_equal(vmbus_ring_write(&r, 6, 0, 3, 0, &iov, 1), 0);
	g_set(&g, G_MASK, 0);
	assert_int_equal(g_recv(&g, rx, sizeof(rx), &x), 0);

	/* Size limits: max_pkt counts the descriptor, not the trailer. */
	iov.iov_len = 4080;
	assert_int_equal(vmbus_ring_write(&r, 6, 0, 4, 0, &iov, 1), 1);
	assert_int_equal(g_recv(&g, rx, sizeof(rx), &x), 0);
	iov.iov_len = 4081;
	assert_int_equal(vmbus_ring_write(&r, 6, 0, 5, 0, &iov, 1), -EMSGSIZE);
	vmbus_ring_set_max_pkt(&r, 80);
	iov.iov_len = 64;
	assert_int_equal(vmbus_ring_write(&r, 6, 0, 6, 0, &iov, 1), 1);
	assert_int_equal(g_recv(&g, rx, sizeof(rx), &x), 0);
	iov.iov_len = 65;
	assert_int_equal(vmbus_ring_write(&r, 6, 0, 7, 0, &iov, 1), -EMSGSIZE);
	/* Header bytes: offset8 covers them; hdr_len must be a multiple of 8 and <= data. */
	vmbus_ring_set_max_pkt(&r, 8192);
	iov.iov_len = 40;
	assert_int_equal(vmbus_ring_write(&r, 7, 0, 8, 12, &iov, 1), -EINVAL);
	assert_int_equal(vmbus_ring_write(&r, 7, 0, 8, 48, &iov, 1), -EINVAL);
	assert_int_equal(vmbus_ring_write(&r, 7, 0, 8, 8, &iov, 1), 1);
	assert_int_equal(g_recv(&g, rx, sizeof(rx), &x), 0);
	assert_int_equal(x.offset8, 3);
	assert_int_equal(x.len, 32);
	/* A packet as large as the whole ring never fits. */
	iov.iov_len = 8192 - 16 - 8;
	assert_int_equal(vmbus_ring_write(&r, 6, 0, 9, 0, &iov, 1), -EMSGSIZE);

	/* Full ring: -EAGAIN; never fill completely. */
	iov.iov_len = 1000;
	while ((rc = vmbus_ring_write(&r, 6, 0, 10, 0, &iov, 1)) >= 0)
		n++;
	assert_int_equal(rc, -EAGAIN);
	assert_int_equal(n, 7); /* 8192 / 1024 = 8 would fill it exactly */
	assert_int_equal(vmbus_ring_write_avail(&r, &avail), 0);
	assert_int_equal(avail, 1023);
	need = vmbus_ring_pkt_space(0, 1000);
	assert_int_equal(need, 1024);
	/* Flow control: pending set, the guest's read crosses it and must signal. */
	assert_int_equal(vmbus_ring_wait_space(&r, need), 0);
	assert_int_equal(g_get(&g, G_PEND), need);
	assert_int_equal(g_recv(&g, rx, sizeof(rx), &x), 0);
	assert_true(x.signal);
	vmbus_ring_clear_pending(&r);
	assert_int_equal(g_get(&g, G_PEND), 0);
	assert_true(vmbus_ring_write(&r, 6, 0, 11, 0, &iov, 1) >= 0);
	/* wait_space when the space is already there clears pending and says retry. */
	assert_int_equal(g_recv(&g, rx, sizeof(rx), &x), 0);
	assert_int_equal(g_recv(&g, rx, sizeof(rx), &x), 0);
	assert_int_equal(vmbus_ring_wait_space(&r, need), 1);
	assert_int_equal(g_get(&g, G_PEND), 0);
	/* Malformed guest read_index. */
	g_set(&g, G_RD, 8192);
	assert_int_equal(vmbus_ring_write(&r, 6, 0, 12, 0, &iov, 1), -EPROTO);
	assert_int_equal(vmbus_ring_write_avail(&r, &avail), -EPROTO);
	assert_int_equal(vmbus_ring_wait_space(&r, need), -EPROTO);
	g_set(&g, G_RD, 4);
	assert_int_equal(vmbus_ring_write(&r, 6, 0, 12, 0, &iov, 1), -EPROTO);
	vmbus_ring_destroy(&r);
}

/* Writes a raw descriptor at offset 0 and sets write_index. */
static int peek_raw(uint16_t offset8, uint16_t len8, uint32_t wr)
{
	struct vmbus_ring r;
	struct vmbus_pkt pkt;
	struct gring g;
	uint16_t d[8] = {6, offset8, len8, 0};
	int rc;

	ring_make(&g, 240, 3, false);
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 3, VMBUS_RING_GUEST_TO_HOST), 0);
	g_data_io(&g, 0, d, 16, true);
	g_set(&g, G_WR, wr);
	rc = vmbus_ring_peek(&r, &pkt);
	if (rc == 0)
		vmbus_ring_consume(&r);
	vmbus_ring_destroy(&r);
	return rc;
}

static void test_malformed_reader(void **state)
{
	assert_int_equal(peek_raw(2, 2, 24), 0); /* well-formed empty-payload packet */
	assert_int_equal(peek_raw(2, 4, 40), 0);
	assert_int_equal(peek_raw(2, 2, 8192), -EPROTO); /* write_index == size */
	assert_int_equal(peek_raw(2, 2, 0xfffffff8), -EPROTO);
	assert_int_equal(peek_raw(2, 2, 28), -EPROTO); /* unaligned */
	assert_int_equal(peek_raw(3, 2, 24), -EPROTO); /* offset8 > len8 */
	assert_int_equal(peek_raw(1, 2, 24), -EPROTO); /* offset8 < 2 */
	assert_int_equal(peek_raw(0, 0, 24), -EPROTO); /* zero length */
	assert_int_equal(peek_raw(2, 3, 24), -EPROTO); /* len8 beyond what was written */
	assert_int_equal(peek_raw(2, 2, 16), -EPROTO); /* no room for the trailer */
	assert_int_equal(peek_raw(2, 0xffff, 8184), -EPROTO); /* oversize */
	assert_int_equal(peek_raw(2, 1023, 8184), -EPROTO); /* exactly size: no trailer room */
	assert_int_equal(peek_raw(2, 1022, 8184), 0); /* largest possible */
	assert_int_equal(peek_raw(2, 2, 8), -EPROTO); /* fewer bytes than a descriptor */
}

/* Zero-copy view by default; private copy on request, immune to later guest writes. */
static void test_copy_mode(void **state)
{
	struct vmbus_ring r;
	struct vmbus_pkt pkt;
	struct gring g;
	uint8_t *gp;

	ring_make(&g, 260, 3, false);
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 3, VMBUS_RING_GUEST_TO_HOST), 0);
	assert_int_equal(g_send(&g, 6, 0, 1, "abcdefgh", 8), 1);
	gp = guest_mem_ptr(&gm, g.pfn[1] * 4096, 4096);
	assert_int_equal(vmbus_ring_peek(&r, &pkt), 0);
	assert_ptr_equal(pkt.data, gp);
	vmbus_ring_set_copy(&r, true);
	assert_int_equal(vmbus_ring_peek(&r, &pkt), 0);
	assert_ptr_not_equal(pkt.data, gp);
	gp[16] = 'X'; /* the guest rewrites the payload after the host's peek */
	assert_memory_equal(pkt.payload, "abcdefgh", 8);
	vmbus_ring_consume(&r);
	vmbus_ring_destroy(&r);
}

static void test_pair_init(void **state)
{
	static uint8_t rx[64];
	struct vmbus_ring out, in;
	struct vmbus_pkt pkt;
	struct gring g, go, gi;
	struct grx x;
	struct iovec iov = {rx, 8};

	/* 8-page GPADL as hv_utils uses: two 16 KiB rings, downstream offset 4. */
	ring_make(&g, 300, 8, false);
	assert_int_equal(vmbus_ring_pair_init(&out, &in, &gm, g.pfn, 8, 1), -EINVAL);
	assert_int_equal(vmbus_ring_pair_init(&out, &in, &gm, g.pfn, 8, 7), -EINVAL);
	assert_int_equal(vmbus_ring_pair_init(&out, &in, &gm, g.pfn, 8, 9), -EINVAL);
	assert_int_equal(vmbus_ring_pair_init(&out, &in, &gm, g.pfn, 8, 4), 0);
	go = g;
	go.npages = 4;
	go.size = 3 * 4096;
	gi = go;
	memmove(gi.pfn, g.pfn + 4, 4 * sizeof(gi.pfn[0]));
	assert_int_equal(g_send(&go, 6, 1, 42, "request!", 8), 1);
	assert_int_equal(vmbus_ring_peek(&out, &pkt), 0);
	assert_int_equal(pkt.trans_id, 42);
	vmbus_ring_consume(&out);
	vmbus_ring_read_done(&out);
	assert_int_equal(vmbus_ring_write(&in, VMBUS_PKT_COMP, 0, 42, 0, &iov, 1), 1);
	assert_int_equal(g_recv(&gi, rx, sizeof(rx), &x), 0);
	assert_int_equal(x.tid, 42);
	assert_int_equal(g_recv(&go, rx, sizeof(rx), &x), -EAGAIN);
	vmbus_ring_destroy(&out);
	vmbus_ring_destroy(&in);
	/* A bad page in the second ring fails the pair and frees the first. */
	g.pfn[6] = RAM / 4096 + 1;
	assert_int_equal(vmbus_ring_pair_init(&out, &in, &gm, g.pfn, 8, 4), -EFAULT);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void test_poll(void **state)
{
	static uint8_t buf[256];
	struct vmbus_ring r;
	struct vmbus_pkt pkt;
	struct gring g;
	uint64_t t0, dt;

	ring_make(&g, 260, 3, false);
	assert_int_equal(vmbus_ring_init(&r, &gm, g.pfn, 3, VMBUS_RING_GUEST_TO_HOST), 0);
	vmbus_ring_mask(&r);
	/* Empty: false once the budget is spent, not before, not much later. */
	assert_false(vmbus_ring_poll(&r, 0));
	t0 = now_ns();
	assert_false(vmbus_ring_poll(&r, 300000));
	dt = now_ns() - t0;
	assert_true(dt >= 300000);
	assert_true(dt < 1000000000);
	/* A packet written while nobody looked is found with no budget at all. */
	assert_int_equal(g_send(&g, 6, 0, 1, buf, 100), 0); /* masked: no signal */
	assert_true(vmbus_ring_poll(&r, 0));
	assert_int_equal(vmbus_ring_peek(&r, &pkt), 0);
	/* Announced but unconsumed packets: true without reading the guest's index. */
	assert_int_equal(g_send(&g, 6, 0, 2, buf, 100), 0);
	vmbus_ring_consume(&r);
	assert_true(vmbus_ring_poll(&r, 0));
	assert_int_equal(vmbus_ring_peek(&r, &pkt), 0);
	assert_int_equal(pkt.trans_id, 2);
	vmbus_ring_consume(&r);
	vmbus_ring_read_done(&r);
	assert_false(vmbus_ring_poll(&r, 1000));
	/* Continuous looking (nap 0) behaves the same. */
	vmbus_ring_set_nap(&r, 0);
	assert_false(vmbus_ring_poll(&r, 1000));
	assert_int_equal(g_send(&g, 6, 0, 3, buf, 8), 0);
	assert_true(vmbus_ring_poll(&r, 1000));
	assert_int_equal(vmbus_ring_peek(&r, &pkt), 0);
	vmbus_ring_consume(&r);
	/* A malformed write_index is not hidden: poll says look, peek says -EPROTO. */
	g_set(&g, G_WR, g_get(&g, G_WR) + 4);
	assert_true(vmbus_ring_poll(&r, 0));
	assert_int_equal(vmbus_ring_peek(&r, &pkt), -EPROTO);
	g_set(&g, G_WR, g.size);
	assert_true(vmbus_ring_poll(&r, 0));
	assert_int_equal(vmbus_ring_peek(&r, &pkt), -EPROTO);
	vmbus_ring_destroy(&r);
}

/* ---- two threads: guest on one, host on the other ---- */

#define THR_PKTS 20000u

static struct gring thr_g;

static uint32_t thr_len(uint32_t i)
{
	return (i * 2654435761u) % 4000 + 1;
}

static void *thr_guest_writer(void *arg)
{
	static uint8_t buf[4096];

	for (uint32_t i = 0; i < THR_PKTS; i++) {
		uint32_t len = thr_len(i);

		fill(buf, len, i);
		while (g_send(&thr_g, 6, 0, i, buf, len) == -EAGAIN)
			sched_yield();
	}
	return NULL;
}

static void test_threads_g2h(void **state)
{
	static uint8_t want[4096];
	struct vmbus_ring r;
	struct vmbus_pkt pkt;
	pthread_t th;
	uint32_t got = 0;

	ring_make(&thr_g, 400, 5, true);
	assert_int_equal(vmbus_ring_init(&r, &gm, thr_g.pfn, 5, VMBUS_RING_GUEST_TO_HOST), 0);
	assert_int_equal(pthread_create(&th, NULL, thr_guest_writer, NULL), 0);
	while (got < THR_PKTS) {
		int rc = vmbus_ring_peek(&r, &pkt);

		if (rc == -EAGAIN) {
			vmbus_ring_read_done(&r);
			sched_yield();
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(pkt.trans_id, got);
		fill(want, thr_len(got), got);
		assert_memory_equal(pkt.payload, want, thr_len(got));
		vmbus_ring_consume(&r);
		got++;
	}
	vmbus_ring_read_done(&r);
	pthread_join(th, NULL);
	vmbus_ring_destroy(&r);
}

/*
 * The consumer loop a channel thread runs: drain with the mask set, publish, poll, then clear
 * the mask, re-check and wait for the guest's signal. The guest pauses now and then so the
 * host goes through every step; a lost wakeup shows as a 2 s stall.
 */
static uint32_t thr_sig;

static void *thr_guest_signalling_writer(void *arg)
{
	static uint8_t buf[4096];

	for (uint32_t i = 0; i < THR_PKTS; i++) {
		uint32_t len = thr_len(i);
		int rc;

		if (i % 2500 == 0)
			nanosleep(&(struct timespec){0, 300 * 1000}, NULL);
		fill(buf, len, i);
		while ((rc = g_send(&thr_g, 6, 0, i, buf, len)) == -EAGAIN)
			sched_yield();
		if (rc == 1)
			__atomic_fetch_add(&thr_sig, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static void test_threads_poll_and_signals(void **state)
{
	static uint8_t want[4096];
	struct vmbus_ring r;
	struct vmbus_pkt pkt;
	pthread_t th;
	uint32_t got = 0, waits = 0;

	thr_sig = 0;
	ring_make(&thr_g, 400, 5, false);
	assert_int_equal(vmbus_ring_init(&r, &gm, thr_g.pfn, 5, VMBUS_RING_GUEST_TO_HOST), 0);
	assert_int_equal(pthread_create(&th, NULL, thr_guest_signalling_writer, NULL), 0);
	vmbus_ring_mask(&r);
	while (got < THR_PKTS) {
		int rc = vmbus_ring_peek(&r, &pkt);
		uint32_t seen;
		uint64_t t0;

		if (rc == 0) {
			assert_int_equal(pkt.trans_id, got);
			fill(want, thr_len(got), got);
			assert_memory_equal(pkt.payload, want, thr_len(got));
			vmbus_ring_consume(&r);
			got++;
			continue;
		}
		assert_int_equal(rc, -EAGAIN);
		vmbus_ring_read_done(&r);
		if (vmbus_ring_poll(&r, 20000))
			continue;
		seen = __atomic_load_n(&thr_sig, __ATOMIC_SEQ_CST);
		if (vmbus_ring_unmask(&r)) {
			vmbus_ring_mask(&r);
			continue;
		}
		t0 = now_ns();
		while (__atomic_load_n(&thr_sig, __ATOMIC_SEQ_CST) == seen) {
			assert_true(now_ns() - t0 < 2000000000ull); /* lost wakeup */
			sched_yield();
		}
		waits++;
		vmbus_ring_mask(&r);
	}
	vmbus_ring_read_done(&r);
	pthread_join(th, NULL);
	assert_true(waits >= 1); /* the pauses outlast the 20 us poll */
	vmbus_ring_destroy(&r);
}

static void *thr_guest_reader(void *arg)
{
	static uint8_t rx[4096], want[4096];
	struct grx x;

	for (uint32_t i = 0; i < THR_PKTS;) {
		if (g_recv(&thr_g, rx, sizeof(rx), &x) == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (x.tid != i || x.len != ((thr_len(i) + 7) & ~7u))
			return (void *)1;
		fill(want, thr_len(i), i);
		if (memcmp(rx, want, thr_len(i)))
			return (void *)2;
		i++;
	}
	return NULL;
}

static void test_threads_h2g(void **state)
{
	static uint8_t buf[4096];
	struct vmbus_ring r;
	pthread_t th;
	void *res;

	ring_make(&thr_g, 400, 5, false);
	assert_int_equal(vmbus_ring_init(&r, &gm, thr_g.pfn, 5, VMBUS_RING_HOST_TO_GUEST), 0);
	vmbus_ring_set_max_pkt(&r, 8192);
	assert_int_equal(pthread_create(&th, NULL, thr_guest_reader, NULL), 0);
	for (uint32_t i = 0; i < THR_PKTS; i++) {
		struct iovec iov = {buf, thr_len(i)};
		int rc;

		fill(buf, thr_len(i), i);
		while ((rc = vmbus_ring_write(&r, 6, 0, i, 0, &iov, 1)) == -EAGAIN)
			sched_yield();
		assert_true(rc == 0 || rc == 1);
	}
	pthread_join(th, &res);
	assert_null(res);
	vmbus_ring_destroy(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_errors),
		cmocka_unit_test(test_g2h_random_contig),
		cmocka_unit_test(test_g2h_random_scattered),
		cmocka_unit_test(test_h2g_random_contig),
		cmocka_unit_test(test_h2g_random_scattered),
		cmocka_unit_test(test_wrap_every_offset),
		cmocka_unit_test(test_batching_and_g2h_signals),
		cmocka_unit_test(test_h2g_signals_full_and_limits),
		cmocka_unit_test(test_malformed_reader),
		cmocka_unit_test(test_pair_init),
		cmocka_unit_test(test_copy_mode),
		cmocka_unit_test(test_poll),
		cmocka_unit_test(test_threads_g2h),
		cmocka_unit_test(test_threads_poll_and_signals),
		cmocka_unit_test(test_threads_h2g),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
