// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_storage IMAGE ours|peer randread|randwrite|seqread|seqwrite BS DEPTH COUNT [SEED]
 *
 * ours: the in-process guest harness (guest VMBus client on a host thread playing VP 0, real
 * hv layer, real channel server and rings, real storvsp) runs a storvsc-like client: the vstor
 * handshake, then COUNT SRBs (READ(10)/WRITE(10)) of BS bytes with DEPTH in flight, each data
 * buffer one GPA-direct range. The guest drains completions the way Linux does (interrupt
 * mask set while it reads the ring) and sleeps in hvplat_wait when there is nothing to do.
 * Guest->host signals (HvSignalEvent) and host->guest interrupts are counted.
 * No KVM: this measures our VMBus + storvsp + blockdev path, not this host's emulation.
 *
 * peer: plain io_uring (liburing) on the same file: the same offsets, sizes and depth,
 * buffered like ours (the image is opened through the page cache), one io_uring_submit per
 * batch of refills.
 *
 * Mode "nop" (ours only) sends TEST UNIT READY without data: the VMBus round trip alone,
 * to tell the transport's share of a 4 KiB I/O from the disk path's.
 *
 * Prints "iops=N mbps=M secs=S g2h=X h2g=Y" (X, Y per 1000 I/Os; 0 for peer).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk.h"
#include "harness.h"
#include "hv/winhv.h"
#include "hvplat.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vmbus/vmbc.h"
#include "vmbus/vmbus.h"
#include "vsp/storvsp.h"

#define RING_DATA (124u * 1024u)
#define INIT_ID 0xfffffffffffffffdull
#define MAX_DEPTH 256u

static const uint8_t scsi_class[16] = {0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d,
				       0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f};

struct g_vstor {
	uint32_t op, flags, status;
	uint16_t length;
	uint8_t srb_status, scsi_status, port, path, target, lun;
	uint8_t cdb_length, sense_len, data_in, reserved;
	uint32_t xfer;
	uint8_t cdb_sense[20];
	uint8_t win8[16];
} __attribute__((packed));

_Static_assert(sizeof(struct g_vstor) == 64, "vstor packet");

struct work {
	bool write, seq, nop;
	uint32_t bs, depth;
	uint64_t count, nblocks, seed, next_seq;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t next_offset(struct work *w)
{
	uint64_t blk;

	if (w->seq) {
		blk = w->next_seq;
		w->next_seq = (w->next_seq + 1) % w->nblocks;
	} else {
		blk = rnd(&w->seed) % w->nblocks;
	}
	return blk * w->bs;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_storage: %s\n", what);
	exit(1);
}

/* ---- ours: guest harness + storvsp ---- */

struct guest {
	struct harness *h;
	struct vmbus_server *srv;
	struct vmbus_device *dev;
	struct winhv w;
	struct vmbc c;
	struct vmbc_channel *ch;
	uint8_t buf[8192];
};

static void guest_recv_one(struct guest *g, struct g_vstor *out, uint64_t *id)
{
	uint64_t end = hvplat_now_ns() + 5000000000ull;
	struct vmbc_pkt p;
	int r;

	while ((r = vmbc_recv(g->ch, g->buf, sizeof(g->buf), &p)) == VMBC_EAGAIN) {
		if (hvplat_now_ns() > end)
			die("no reply from storvsp");
		hvplat_wait();
		vmbc_poll(&g->c);
	}
	if (r || p.len != 80)
		die("bad reply");
	memcpy(out, g->buf + p.data_offset, 64);
	*id = p.trans_id;
}

static void guest_init_op(struct guest *g, uint32_t op, uint16_t arg)
{
	struct g_vstor v = {0};
	uint64_t id;

	v.op = op;
	v.flags = 1;
	memcpy(&v.length, &arg, 2);
	if (vmbc_send_inband(&g->c, g->ch, INIT_ID, &v, 64, true))
		die("send init op");
	guest_recv_one(g, &v, &id);
	if (v.status)
		die("storvsp refused an init op");
}

static void guest_setup(struct guest *g, const char *image)
{
	struct harness_config hc = {.nvps = 1, .ram_size = 512ull << 20};
	struct storvsp_lun_config lun = {.path = image};
	struct storvsp_config cfg = {.luns = &lun, .nluns = 1};
	static const uint8_t user[24];
	const char *why = "";
	uint32_t st;

	g->h = harness_create(&hc);
	if (!g->h)
		die(err_msg());
	g->srv = vmbus_server_create(harness_part(g->h), harness_gm(g->h));
	g->dev = vsp_storvsp_create(&cfg);
	if (!g->srv || !g->dev || vmbus_server_add_device(g->srv, g->dev))
		die(err_msg());
	harness_bind(g->h, 0);
	if (harness_guest_boot(g->h, &g->w, true, &why))
		die(why);
	if (vmbc_init(&g->c, &g->w) || vmbc_connect(&g->c, 0) || vmbc_request_offers(&g->c))
		die("vmbus connect");
	g->ch = vmbc_find(&g->c, scsi_class, 0);
	if (!g->ch || vmbc_open(&g->c, g->ch, RING_DATA, RING_DATA, user, 24, 0, &st))
		die("open storvsp channel");
	guest_init_op(g, 7, 0);
	guest_init_op(g, 9, 0x0602);
	guest_init_op(g, 10, 0);
	guest_init_op(g, 8, 0);
}

static void guest_teardown(struct guest *g)
{
	vmbus_server_destroy(g->srv);
	vsp_storvsp_destroy(g->dev);
	harness_unbind();
	harness_destroy(g->h);
}

static int guest_send(struct guest *g, struct work *w, uint64_t id, uint64_t gpa)
{
	if (w->nop) {
		struct g_vstor t = {.op = 3,
				    .flags = 1,
				    .length = 52,
				    .cdb_length = 6,
				    .sense_len = 20,
				    .data_in = 2};

		return vmbc_send(g->ch, VMBC_PKT_INBAND, VMBC_PKT_FLAG_COMPLETION, id, NULL, 0, &t,
				 64);
	}
	uint64_t off = next_offset(w), lba = off / 512;
	uint32_t nblk = w->bs / 512, npfn = w->bs / 4096;
	/* GPA-direct header built here: vmbc_send_gpa_direct takes at most ~60 PFNs, Linux sends
	 * up to max_transfer / 4096 + 1 (257 for 1 MiB). */
	static uint64_t hdr[2 + 1 + STORVSP_MAX_TRANSFER / 4096 + 1];
	uint32_t rng[4] = {0, 1, w->bs, 0};
	struct g_vstor v = {0};

	v.op = 3;
	v.flags = 1;
	v.length = 52;
	v.cdb_length = 10;
	v.sense_len = 20;
	v.data_in = w->write ? 0 : 1;
	v.xfer = w->bs;
	v.cdb_sense[0] = w->write ? 0x2a : 0x28;
	v.cdb_sense[2] = (uint8_t)(lba >> 24);
	v.cdb_sense[3] = (uint8_t)(lba >> 16);
	v.cdb_sense[4] = (uint8_t)(lba >> 8);
	v.cdb_sense[5] = (uint8_t)lba;
	v.cdb_sense[7] = (uint8_t)(nblk >> 8);
	v.cdb_sense[8] = (uint8_t)nblk;
	memcpy(hdr, rng, sizeof(rng));
	for (uint32_t i = 0; i < npfn; i++)
		hdr[2 + i] = gpa / 4096 + i;
	return vmbc_send(g->ch, VMBC_PKT_GPA_DIRECT, VMBC_PKT_FLAG_COMPLETION, id, hdr,
			 16 + 8 * npfn, &v, 64);
}

static double run_ours(const char *image, struct work *w, double *g2h, double *h2g)
{
	struct guest *g = calloc(1, sizeof(*g));
	struct hvplat_pages pages;
	uint64_t issued = 0, done = 0, inflight = 0, t0, t1, sig0, irq0;
	uint64_t free_slots[MAX_DEPTH];
	unsigned nfree = 0;

	if (!g)
		die("out of memory");
	guest_setup(g, image);
	if (hvplat_pages_alloc(w->depth * (w->bs / 4096), &pages))
		die("guest buffers");
	for (unsigned i = 0; i < w->depth; i++)
		free_slots[nfree++] = i;
	sig0 = g->ch->signals;
	irq0 = harness_injected(g->h, 0);
	t0 = util_now_ns();
	while (done < w->count) {
		bool got = false;
		struct vmbc_pkt p;

		while (nfree && issued < w->count) {
			uint64_t slot = free_slots[nfree - 1];
			int r = guest_send(g, w, slot, pages.gpa + slot * w->bs);

			if (r == VMBC_EAGAIN)
				break;
			if (r)
				die("send SRB");
			nfree--;
			issued++;
			inflight++;
		}
		/* Linux's storvsc callback: mask, drain, unmask (and drain again if needed). */
		vmbc_recv_begin(g->ch);
		for (;;) {
			int r = vmbc_recv(g->ch, g->buf, sizeof(g->buf), &p);
			struct g_vstor v;

			if (r == VMBC_EAGAIN) {
				if (vmbc_recv_end(g->ch)) {
					vmbc_recv_begin(g->ch);
					continue;
				}
				break;
			}
			if (r)
				die("ring error");
			memcpy(&v, g->buf + p.data_offset, 64);
			if (v.srb_status != 1 || p.trans_id >= w->depth)
				die("I/O failed");
			free_slots[nfree++] = p.trans_id;
			inflight--;
			done++;
			got = true;
		}
		if (!got && (!nfree || issued == w->count))
			hvplat_wait();
	}
	t1 = util_now_ns();
	*g2h = (double)(g->ch->signals - sig0) * 1000.0 / (double)w->count;
	*h2g = (double)(harness_injected(g->h, 0) - irq0) * 1000.0 / (double)w->count;
	hvplat_pages_free(&pages);
	guest_teardown(g);
	free(g);
	return (double)(t1 - t0) / 1e9;
}

/* ---- peer: plain io_uring on the file ---- */

static double run_peer(const char *image, struct work *w)
{
	struct io_uring ring;
	uint8_t *bufs;
	uint64_t issued = 0, done = 0, t0, t1;
	uint64_t free_slots[MAX_DEPTH];
	unsigned nfree = 0;
	int fd = open(image, w->write ? O_RDWR : O_RDONLY);

	if (fd < 0)
		die("open image");
	if (io_uring_queue_init(w->depth * 2, &ring, 0))
		die("io_uring_queue_init");
	bufs = aligned_alloc(4096, (size_t)w->depth * w->bs);
	if (!bufs)
		die("out of memory");
	memset(bufs, 0x5a, (size_t)w->depth * w->bs);
	for (unsigned i = 0; i < w->depth; i++)
		free_slots[nfree++] = i;
	t0 = util_now_ns();
	while (done < w->count) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		while (nfree && issued < w->count) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			uint64_t slot = free_slots[--nfree];
			uint8_t *b = bufs + slot * w->bs;

			if (w->write)
				io_uring_prep_write(sqe, fd, b, w->bs, next_offset(w));
			else
				io_uring_prep_read(sqe, fd, b, w->bs, next_offset(w));
			io_uring_sqe_set_data64(sqe, slot);
			issued++;
		}
		if (io_uring_submit_and_wait(&ring, 1) < 0)
			die("io_uring_submit");
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			if (cqe->res != (int)w->bs)
				die("peer I/O failed");
			free_slots[nfree++] = io_uring_cqe_get_data64(cqe);
			n++;
		}
		io_uring_cq_advance(&ring, n);
		done += n;
	}
	t1 = util_now_ns();
	io_uring_queue_exit(&ring);
	free(bufs);
	close(fd);
	return (double)(t1 - t0) / 1e9;
}

int main(int argc, char **argv)
{
	struct work w = {0};
	double secs, g2h = 0, h2g = 0;
	uint64_t bs, depth, count, seed = 1;
	struct blockdev *bd;
	bool ours;

	ours = argc > 2 && !strcmp(argv[2], "ours");
	if (argc < 7 || util_parse_u64(argv[4], &bs) || util_parse_u64(argv[5], &depth) ||
	    util_parse_u64(argv[6], &count) || (argc > 7 && util_parse_u64(argv[7], &seed)) ||
	    !bs || bs % 4096 || bs > STORVSP_MAX_TRANSFER || !depth || depth > MAX_DEPTH ||
	    !count) {
		fprintf(stderr, "usage: bench_storage IMAGE ours|peer randread|randwrite|seqread|"
				"seqwrite BS DEPTH COUNT [SEED]\n");
		return 2;
	}
	log_set_level(LOG_WARN);
	w.write = strstr(argv[3], "write") != NULL;
	w.seq = !strncmp(argv[3], "seq", 3);
	w.nop = !strcmp(argv[3], "nop");
	if (w.nop && !ours)
		die("nop is ours only");
	w.bs = (uint32_t)bs;
	w.depth = (uint32_t)depth;
	w.count = count;
	w.seed = seed * 0x9e3779b97f4a7c15ull | 1;
	/* ours: the virtual size; peer: the file's size (the peer's writes may have made a VHDX
	 * copy unreadable as VHDX; the two differ by the VHDX metadata only) */
	if (ours) {
		if (disk_open(argv[1], DISK_FORMAT_AUTO, DISK_OPEN_RDONLY, &bd))
			die(err_msg());
		w.nblocks = bd->size / bs;
		blockdev_close(bd);
	} else {
		struct stat st;

		if (stat(argv[1], &st))
			die("stat image");
		w.nblocks = (uint64_t)st.st_size / bs;
	}
	if (!w.nblocks)
		die("image smaller than one block");
	if (ours)
		secs = run_ours(argv[1], &w, &g2h, &h2g);
	else
		secs = run_peer(argv[1], &w);
	printf("iops=%.0f mbps=%.1f secs=%.3f g2h=%.1f h2g=%.1f\n", (double)count / secs,
	       (double)count * (double)bs / secs / 1e6, secs, g2h, h2g);
	return 0;
}
