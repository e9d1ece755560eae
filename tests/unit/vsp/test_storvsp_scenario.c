// SPDX-License-Identifier: GPL-2.0-only
/*
 * Issue 6's storage scenario, in process (no KVM): a guest on 2 VPs (harness) with three disks
 * on one storvsp controller -- a dynamic VHDX, a differencing VHD over a VHD parent and a
 * read-only raw disk -- does the storvsc handshake, opens a sub-channel on VP 1, checks
 * capacities, writes patterns across block boundaries from unaligned multi-page buffers on
 * both channels, reads them back, flushes, unmaps, and gets DATA PROTECT from the read-only
 * disk. After the VM is torn down the images are checked against the expected content: with
 * qemu-img compare for the VHDX and the raw disk (an independent reader), and with our own
 * reader for the differencing VHD (qemu's vpc driver does not follow VHD parents).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk.h"
#include "harness.h"
#include "hv/winhv.h"
#include "hvplat.h"
#include "lib/util.h"
#include "vmbus/vmbc.h"
#include "vmbus/vmbus.h"
#include "vsp/storvsp.h"

#define MIB (1024u * 1024u)
#define RING_DATA (124u * 1024u)
#define INIT_ID 0xfffffffffffffffdull
#define A_SIZE (64u * MIB) /* dynamic VHDX, 2 MiB blocks */
#define B_SIZE (32u * MIB) /* differencing VHD (2 MiB blocks) */
#define C_SIZE (8u * MIB) /* raw, read-only */
#define BUF_PAGES 40u

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

struct sc {
	struct harness *h;
	struct vmbus_server *srv;
	struct vmbus_device *dev;
	struct winhv w;
	struct vmbc c;
	struct vmbc_channel *ch[2];
	char dir[64], a[128], b[128], p[128], cpath[128];
	uint8_t *model[3];
	uint64_t size[3];
	uint8_t pkt[8192];
	uint64_t next_id;
};

static uint64_t rnd_state = 0x1234567;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 31 + seed * 131 + (i >> 9) * 7) ^ (seed >> 3));
}

static struct g_vstor reply(struct sc *s, struct vmbc_channel *ch, uint64_t want)
{
	uint64_t end = hvplat_now_ns() + 10000000000ull;
	struct vmbc_pkt p;
	struct g_vstor v;
	int r;

	while ((r = vmbc_recv(ch, s->pkt, sizeof(s->pkt), &p)) == VMBC_EAGAIN) {
		assert_true(hvplat_now_ns() < end);
		hvplat_wait();
		vmbc_poll(&s->c);
	}
	assert_int_equal(r, 0);
	assert_int_equal(p.type, VMBC_PKT_COMP);
	assert_int_equal(p.len, 80);
	assert_int_equal(p.trans_id, want);
	memcpy(&v, s->pkt + p.data_offset, 64);
	assert_int_equal(v.op, 1);
	return v;
}

static uint32_t init_op(struct sc *s, uint32_t op, uint16_t arg)
{
	struct g_vstor v = {.op = op, .flags = 1};

	memcpy(&v.length, &arg, 2);
	assert_int_equal(vmbc_send_inband(&s->c, s->ch[0], INIT_ID, &v, 64, true), 0);
	return reply(s, s->ch[0], INIT_ID).status;
}

/* One SRB, waited for. Data: one GPA-direct range at gpa. */
static struct g_vstor srb(struct sc *s, unsigned chn, uint8_t lun, const uint8_t *cdb,
			  uint8_t cdb_len, uint8_t data_in, uint64_t gpa, uint32_t len)
{
	struct vmbc_channel *ch = s->ch[chn];
	struct g_vstor v = {.op = 3,
			    .flags = 1,
			    .length = 52,
			    .lun = lun,
			    .cdb_length = cdb_len,
			    .sense_len = 20,
			    .data_in = data_in,
			    .xfer = len};
	uint64_t hdr[2 + BUF_PAGES + 1], id = ++s->next_id;
	uint32_t rng[4] = {0, 1, len, (uint32_t)(gpa & 4095)};
	uint32_t npfn = (uint32_t)(((gpa & 4095) + len + 4095) / 4096);
	int r;

	memcpy(v.cdb_sense, cdb, cdb_len);
	assert_true(npfn <= BUF_PAGES + 1);
	memcpy(hdr, rng, sizeof(rng));
	for (uint32_t i = 0; i < npfn; i++)
		hdr[2 + i] = gpa / 4096 + i;
	do {
		if (len)
			r = vmbc_send(ch, VMBC_PKT_GPA_DIRECT, VMBC_PKT_FLAG_COMPLETION, id, hdr,
				      16 + 8 * npfn, &v, 64);
		else
			r = vmbc_send(ch, VMBC_PKT_INBAND, VMBC_PKT_FLAG_COMPLETION, id, NULL, 0,
				      &v, 64);
		if (r == VMBC_EAGAIN)
			hvplat_wait();
	} while (r == VMBC_EAGAIN);
	assert_int_equal(r, 0);
	return reply(s, ch, id);
}

static void rw16(uint8_t *c, bool write, uint64_t lba, uint32_t n)
{
	memset(c, 0, 16);
	c[0] = write ? 0x8a : 0x88;
	for (int i = 0; i < 8; i++)
		c[2 + i] = (uint8_t)(lba >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		c[10 + i] = (uint8_t)(n >> (24 - 8 * i));
}

static void make_images(struct sc *s)
{
	struct disk_create_opts o = {0};
	struct blockdev *bd;
	uint8_t *pat = malloc(8 * MIB);
	int fd;

	assert_non_null(pat);
	snprintf(s->dir, sizeof(s->dir), "/tmp/viridian-storvsp-s-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->a, sizeof(s->a), "%s/a.vhdx", s->dir);
	snprintf(s->p, sizeof(s->p), "%s/parent.vhd", s->dir);
	snprintf(s->b, sizeof(s->b), "%s/child.vhd", s->dir);
	snprintf(s->cpath, sizeof(s->cpath), "%s/c.img", s->dir);
	s->size[0] = A_SIZE;
	s->size[1] = B_SIZE;
	s->size[2] = C_SIZE;
	for (int i = 0; i < 3; i++) {
		s->model[i] = calloc(1, s->size[i]);
		assert_non_null(s->model[i]);
	}
	o = (struct disk_create_opts){.format = DISK_FORMAT_VHDX,
				      .type = DISK_TYPE_DYNAMIC,
				      .size = A_SIZE,
				      .block_size = 2 * MIB};
	assert_int_equal(disk_create(s->a, &o), 0);
	/* the parent holds a pattern in its first 8 MiB; the child starts empty over it */
	o = (struct disk_create_opts){
		.format = DISK_FORMAT_VHD, .type = DISK_TYPE_DYNAMIC, .size = B_SIZE};
	assert_int_equal(disk_create(s->p, &o), 0);
	assert_int_equal(disk_open(s->p, DISK_FORMAT_VHD, 0, &bd), 0);
	fill(pat, 8 * MIB, 99);
	assert_int_equal(blockdev_write(bd, pat, 8 * MIB, 0, 0), 0);
	assert_int_equal(blockdev_close(bd), 0);
	memcpy(s->model[1], pat, 8 * MIB);
	o = (struct disk_create_opts){
		.format = DISK_FORMAT_VHD, .type = DISK_TYPE_DIFFERENCING, .parent = s->p};
	assert_int_equal(disk_create(s->b, &o), 0);
	/* the read-only raw disk */
	fill(s->model[2], C_SIZE, 7);
	fd = open(s->cpath, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, s->model[2], C_SIZE), (ssize_t)C_SIZE);
	close(fd);
	free(pat);
}

static int setup(void **state)
{
	struct harness_config hc = {.nvps = 2};
	struct sc *s = calloc(1, sizeof(*s));
	struct storvsp_lun_config luns[3] = {0};
	struct storvsp_config cfg = {0};
	const char *why = NULL;

	if (!s)
		return -1;
	make_images(s);
	luns[0].path = s->a;
	luns[1].path = s->b;
	luns[2].path = s->cpath;
	luns[2].read_only = true;
	cfg.luns = luns;
	cfg.nluns = 3;
	cfg.max_subchannels = 1; /* vCPUs - 1 */
	s->h = harness_create(&hc);
	if (!s->h)
		return -1;
	s->srv = vmbus_server_create(harness_part(s->h), harness_gm(s->h));
	s->dev = vsp_storvsp_create(&cfg);
	if (!s->srv || !s->dev || vmbus_server_add_device(s->srv, s->dev))
		return -1;
	harness_bind(s->h, 0);
	if (harness_guest_boot(s->h, &s->w, true, &why) || vmbc_init(&s->c, &s->w)) {
		fprintf(stderr, "boot: %s\n", why ? why : "vmbc_init");
		return -1;
	}
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct sc *s = *state;

	if (s->srv)
		vmbus_server_destroy(s->srv);
	if (s->dev)
		vsp_storvsp_destroy(s->dev);
	harness_unbind();
	harness_destroy(s->h);
	unlink(s->a);
	unlink(s->b);
	unlink(s->p);
	unlink(s->cpath);
	rmdir(s->dir);
	for (int i = 0; i < 3; i++)
		free(s->model[i]);
	free(s);
	return 0;
}

/* Writes the model of one disk to a raw file and has qemu-img compare it with the image. */
static int qemu_compare(struct sc *s, const char *img, const char *fmt, const uint8_t *model,
			uint64_t size)
{
	char exp[160], cmd[512];
	int fd, r;

	snprintf(exp, sizeof(exp), "%s/expected.raw", s->dir);
	fd = open(exp, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(util_pwrite_full(fd, model, size, 0), 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "qemu-img compare -q -f %s -F raw '%s' '%s'", fmt, img, exp);
	r = system(cmd);
	unlink(exp);
	return r;
}

static void reader_compare(const char *img, const uint8_t *model, uint64_t size)
{
	struct blockdev *bd;
	uint8_t *got = malloc(size);

	assert_non_null(got);
	assert_int_equal(disk_open(img, DISK_FORMAT_AUTO, DISK_OPEN_RDONLY, &bd), 0);
	assert_int_equal(bd->size, size);
	assert_int_equal(blockdev_read(bd, got, size, 0), 0);
	assert_int_equal(blockdev_close(bd), 0);
	assert_memory_equal(got, model, size);
	free(got);
}

static void test_storage_scenario(void **state)
{
	struct sc *s = *state;
	static const uint8_t user[24];
	struct hvplat_pages wb, rb;
	uint8_t cdb[16];
	struct g_vstor v;
	uint32_t st;
	uint64_t end;

	/* handshake, Linux's way; one sub-channel (2 vCPUs), opened on VP 1 */
	assert_int_equal(vmbc_connect(&s->c, 0), 0);
	assert_int_equal(vmbc_request_offers(&s->c), 0);
	s->ch[0] = vmbc_find(&s->c, scsi_class, 0);
	assert_non_null(s->ch[0]);
	assert_int_equal(vmbc_open(&s->c, s->ch[0], RING_DATA, RING_DATA, user, 24, 0, &st), 0);
	assert_int_equal(init_op(s, 7, 0), 0);
	assert_int_equal(init_op(s, 9, 0x0602), 0);
	assert_int_equal(init_op(s, 10, 0), 0);
	assert_int_equal(init_op(s, 8, 0), 0);
	assert_int_equal(init_op(s, 13, 1), 0);
	end = hvplat_now_ns() + 5000000000ull;
	while (!(s->ch[1] = vmbc_find(&s->c, scsi_class, 1)) && hvplat_now_ns() < end) {
		hvplat_wait();
		vmbc_poll(&s->c);
	}
	assert_non_null(s->ch[1]);
	assert_int_equal(vmbc_open(&s->c, s->ch[1], RING_DATA, RING_DATA, user, 24, 1, &st), 0);
	assert_int_equal(hvplat_pages_alloc(BUF_PAGES, &wb), 0);
	assert_int_equal(hvplat_pages_alloc(BUF_PAGES, &rb), 0);

	/* capacities = the images' virtual sizes */
	for (uint8_t lun = 0; lun < 3; lun++) {
		uint8_t rc[16] = {0x9e, 0x10, [13] = 32};
		uint8_t *d = rb.va;
		uint64_t last = 0;

		v = srb(s, lun % 2, lun, rc, 16, 1, rb.gpa, 32);
		assert_int_equal(v.srb_status, 1);
		for (int i = 0; i < 8; i++)
			last = last << 8 | d[i];
		assert_int_equal((last + 1) * 512, s->size[lun]);
	}

	/* pattern writes across 2 MiB block boundaries, unaligned multi-page buffers, both
	 * channels, on the VHDX and the differencing VHD; every write read back */
	for (unsigned k = 0; k < 48; k++) {
		uint8_t lun = k % 2;
		uint64_t blocks = s->size[lun] / (2 * MIB);
		uint32_t n = 1 + (uint32_t)(rnd() % 250); /* up to 125 KiB */
		uint64_t lba = (rnd() % blocks + 1) * (2 * MIB / 512) - (rnd() % (n + 1));
		uint32_t woff = (uint32_t)(rnd() % 4096) & ~7u, roff = (uint32_t)(rnd() % 4096);
		uint32_t len = n * 512;
		uint8_t *w = (uint8_t *)wb.va + woff, *r = (uint8_t *)rb.va + roff;
		unsigned chn = (k / 2) % 2;

		if ((lba + n) * 512 > s->size[lun])
			lba = s->size[lun] / 512 - n;
		fill(w, len, 1000 + k);
		rw16(cdb, true, lba, n);
		v = srb(s, chn, lun, cdb, 16, 0, wb.gpa + woff, len);
		assert_int_equal(v.srb_status, 1);
		assert_int_equal(v.xfer, len);
		memcpy(s->model[lun] + lba * 512, w, len);
		memset(r, 0, len);
		rw16(cdb, false, lba, n);
		v = srb(s, 1 - chn, lun, cdb, 16, 1, rb.gpa + roff, len);
		assert_int_equal(v.srb_status, 1);
		assert_memory_equal(r, w, len);
	}
	/* SYNCHRONIZE CACHE on both writable disks, both channels */
	for (unsigned chn = 0; chn < 2; chn++) {
		for (uint8_t lun = 0; lun < 2; lun++) {
			uint8_t sc10[10] = {0x35};

			v = srb(s, chn, lun, sc10, 10, 2, 0, 0);
			assert_int_equal(v.srb_status, 1);
		}
	}
	/* UNMAP one whole VHDX block (it then reads as zeros) */
	{
		uint8_t um[10] = {0x42, [8] = 24}, *pl = wb.va;
		uint64_t lba = 4 * MIB / 512;
		uint32_t cnt = 2 * MIB / 512;

		memset(pl, 0, 24);
		pl[1] = 22;
		pl[3] = 16;
		for (int i = 0; i < 8; i++)
			pl[8 + i] = (uint8_t)(lba >> (56 - 8 * i));
		for (int i = 0; i < 4; i++)
			pl[16 + i] = (uint8_t)(cnt >> (24 - 8 * i));
		v = srb(s, 1, 0, um, 10, 0, wb.gpa, 24);
		assert_int_equal(v.srb_status, 1);
		memset(s->model[0] + 4 * MIB, 0, 2 * MIB);
	}
	/* the read-only disk: DATA PROTECT on write, its data unchanged */
	rw16(cdb, true, 8, 8);
	v = srb(s, 0, 2, cdb, 16, 0, wb.gpa, 4096);
	assert_int_equal(v.srb_status, 0x84);
	assert_int_equal(v.scsi_status, 2);
	assert_int_equal(v.cdb_sense[2], 7);
	assert_int_equal(v.cdb_sense[12], 0x27);
	rw16(cdb, false, 8, 8);
	v = srb(s, 1, 2, cdb, 16, 1, rb.gpa, 4096);
	assert_int_equal(v.srb_status, 1);
	assert_memory_equal(rb.va, s->model[2] + 8 * 512, 4096);
	/* both channels carried I/O */
	assert_true(s->ch[0]->signals > 0 && s->ch[1]->signals > 0);
	hvplat_pages_free(&wb);
	hvplat_pages_free(&rb);

	/* VM off: images closed, then checked from outside */
	vmbus_server_destroy(s->srv);
	s->srv = NULL;
	vsp_storvsp_destroy(s->dev);
	s->dev = NULL;
	if (system("qemu-img --version >/dev/null 2>&1") == 0) {
		assert_int_equal(qemu_compare(s, s->a, "vhdx", s->model[0], A_SIZE), 0);
		assert_int_equal(qemu_compare(s, s->cpath, "raw", s->model[2], C_SIZE), 0);
	} else {
		printf("# qemu-img not installed: our own reader only\n");
	}
	reader_compare(s->a, s->model[0], A_SIZE);
	reader_compare(s->b, s->model[1], B_SIZE);
	reader_compare(s->cpath, s->model[2], C_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_storage_scenario, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
