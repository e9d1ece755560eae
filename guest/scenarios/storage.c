/*
 * storage: the synthetic SCSI controller through guest/storvsc (viridian run --disk ...):
 * vstor handshake and version, sub-channels (one per extra vCPU), REPORT LUNS, INQUIRY
 * (standard, VPD 0x00/0x80/0x83/0xB0), READ CAPACITY(16) (checked against storage.mib<N>=
 * when given), MODE SENSE write protect, pattern writes across 2 MiB boundaries from
 * unaligned multi-page buffers on every channel, SYNCHRONIZE CACHE, UNMAP, a write to the
 * read-only LUN failing with DATA PROTECT, and every region read back on another channel.
 * What lands in the images is fixed by storvsc/storage_layout.h. Explicit only.
 *
 * On a KVM host (NCH = min(vCPUs, 4) channels; writable LUNs need >= 2 * NCH + 4 MiB):
 *   viridian vhd create -f vhdx --block-size 2M d0.vhdx 16M
 *   viridian vhd create -f vhd p1.vhd 16M; viridian vhd create -f vhd --parent p1.vhd d1.vhd
 *   viridian vhd create -f raw --type fixed d2.img 8M
 *   viridian run --kernel tguest.elf --memory 128M --serial stdio --no-reboot --cpus 4
 *     --disk d0.vhdx --disk d1.vhd --disk d2.img,ro,format=raw
 *     --cmdline "tests=storage storage.mib0=16 storage.mib1=16 storage.mib2=8"
 * then `test_harness_storage --expect LUN NCH MIB e.raw` and `qemu-img compare e.raw IMAGE`
 * for LUNs 0 and 1 (d2.img stays all zeros).
 */
#include <stdint.h>

#include "hv/tguest_hv.h"
#include "lib/printf.h"
#include "scenario.h"
#include "storvsc/storage_layout.h"
#include "storvsc/storvsc.h"
#include "tap.h"
#include "vmbus/vmbc.h"

#define STORAGE_LINES 11u
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_LUNS 16u
#define CHUNK (128u * 1024u) /* under STORVSC_MAX_XFER at any buffer offset */
#define BUF_PAGES (CHUNK / 4096u + 2u)
/*
 * The freestanding guest's page pool (2 MiB) holds the rings of four channels (64 pages each
 * at Linux's 128 KiB per direction) next to everything else: more vCPUs share them.
 */
#define MAX_SUBCHANNELS 3u

struct lun_info {
	uint8_t lun;
	bool wp;
	bool lbpme;
	uint32_t bsize;
	uint64_t blocks;
};

static struct vmbc bus HVPLAT_NOINIT;
static struct storvsc sc HVPLAT_NOINIT;
static struct lun_info luns[MAX_LUNS];
static unsigned nluns;
static struct hvplat_pages wpg, rpg;
static char why[160];

static unsigned int storage_count(void)
{
	return STORAGE_LINES;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* One SRB that must succeed; on failure why says what happened. */
static int cmd(unsigned chan, uint8_t lun, const uint8_t *cdb, uint8_t cdb_len,
	       enum storvsc_dir dir, uint64_t gpa, uint32_t len, struct storvsc_result *r)
{
	int ret = storvsc_execute(&sc, chan, lun, cdb, cdb_len, dir, gpa, len, r);

	if (ret) {
		snprintf(why, sizeof(why), "opcode %#x lun %u chan %u: exchange error %d", cdb[0],
			 lun, chan, ret);
		return -1;
	}
	if (!storvsc_result_ok(r)) {
		snprintf(why, sizeof(why),
			 "opcode %#x lun %u chan %u: srb %#x scsi %#x sense %x/%02x/%02x", cdb[0],
			 lun, chan, r->srb_status, r->scsi_status, r->key, r->asc, r->ascq);
		return -1;
	}
	return 0;
}

static int rw10(unsigned chan, uint8_t lun, bool write, uint64_t off, uint64_t gpa, uint32_t len)
{
	struct storvsc_result r;
	uint32_t lba = (uint32_t)(off / 512);
	uint16_t n = (uint16_t)(len / 512);
	uint8_t c[10] = {write ? 0x2a : 0x28,
			 0,
			 (uint8_t)(lba >> 24),
			 (uint8_t)(lba >> 16),
			 (uint8_t)(lba >> 8),
			 (uint8_t)lba,
			 0,
			 (uint8_t)(n >> 8),
			 (uint8_t)n,
			 0};

	if (cmd(chan, lun, c, 10, write ? STORVSC_DATA_OUT : STORVSC_DATA_IN, gpa, len, &r))
		return -1;
	if (r.xfer != len) {
		snprintf(why, sizeof(why), "lun %u chan %u: %u of %u bytes moved", lun, chan,
			 r.xfer, len);
		return -1;
	}
	return 0;
}

/* Writes gen's pattern to [off, off + len) of lun on chan from a buffer starting at woff. */
static int write_pattern(unsigned chan, const struct lun_info *l, uint64_t off, uint32_t len,
			 unsigned gen, uint32_t woff)
{
	uint8_t *w = (uint8_t *)wpg.va + woff;

	for (uint32_t k = 0; k < len; k++)
		w[k] = storage_pattern(l->lun, off + k, gen);
	return rw10(chan, l->lun, true, off, wpg.gpa + woff, len);
}

/* Reads [off, off + len) on chan into a buffer at roff and compares with gen's pattern. */
static int check_pattern(unsigned chan, const struct lun_info *l, uint64_t off, uint32_t len,
			 unsigned gen, uint32_t roff)
{
	uint8_t *b = (uint8_t *)rpg.va + roff;

	memset(b, 0xa5, len);
	if (rw10(chan, l->lun, false, off, rpg.gpa + roff, len))
		return -1;
	for (uint32_t k = 0; k < len; k++) {
		if (b[k] != storage_pattern(l->lun, off + k, gen)) {
			snprintf(why, sizeof(why), "lun %u chan %u: byte %lu differs (%#x)", l->lun,
				 chan, (unsigned long)(off + k), b[k]);
			return -1;
		}
	}
	return 0;
}

static int step_report_luns(void)
{
	uint8_t c[12] = {0xa0, [8] = 0x10}; /* allocation 4096 (bytes 6-9, BE) */
	uint8_t *b = rpg.va;
	struct storvsc_result r;
	uint32_t n;

	if (cmd(0, 0, c, 12, STORVSC_DATA_IN, rpg.gpa, 4096, &r))
		return -1;
	if (r.xfer < 8) {
		snprintf(why, sizeof(why), "REPORT LUNS moved %u bytes", r.xfer);
		return -1;
	}
	n = MIN(get_be32(b) / 8, (r.xfer - 8) / 8);
	nluns = 0;
	for (uint32_t i = 0; i < n && nluns < MAX_LUNS; i++) {
		const uint8_t *e = b + 8 + 8 * i;

		/* single-level peripheral addressing only (what Hyper-V reports) */
		if ((e[0] & 0xc0) || e[0] || e[1] > 254)
			continue;
		memset(&luns[nluns], 0, sizeof(luns[nluns]));
		luns[nluns++].lun = e[1];
	}
	if (!nluns) {
		snprintf(why, sizeof(why), "REPORT LUNS lists no LUN (disks attached?)");
		return -1;
	}
	return 0;
}

static int inquiry(uint8_t lun, bool evpd, uint8_t page, uint16_t alloc, uint32_t *got)
{
	uint8_t c[6] = {0x12, evpd ? 1 : 0, page, (uint8_t)(alloc >> 8), (uint8_t)alloc, 0};
	struct storvsc_result r;

	if (cmd(0, lun, c, 6, STORVSC_DATA_IN, rpg.gpa, alloc, &r))
		return -1;
	*got = r.xfer;
	return 0;
}

static int step_inquiry(void)
{
	static const uint8_t want[] = {0x80, 0x83, 0xb0};
	uint8_t *b = rpg.va;
	uint32_t got;

	for (unsigned i = 0; i < nluns; i++) {
		uint8_t lun = luns[i].lun, listed[64];
		unsigned nlisted;

		if (inquiry(lun, false, 0, 96, &got))
			return -1;
		if (got < 36 || (b[0] & 0x1f) != 0 || (b[0] >> 5) != 0) {
			snprintf(why, sizeof(why), "lun %u: standard INQUIRY %u bytes, byte0 %#x",
				 lun, got, b[0]);
			return -1;
		}
		if (i == 0)
			printf("# storage: lun %u \"%.8s\" \"%.16s\" \"%.4s\" version %u\n", lun,
			       (const char *)b + 8, (const char *)b + 16, (const char *)b + 32,
			       b[2]);
		if (inquiry(lun, true, 0x00, 255, &got))
			return -1;
		if (got < 4 || b[1] != 0x00) {
			snprintf(why, sizeof(why), "lun %u: VPD 0x00 bad (%u bytes)", lun, got);
			return -1;
		}
		nlisted = MIN(MIN((unsigned)b[3], got - 4), (unsigned)sizeof(listed));
		memcpy(listed, b + 4, nlisted);
		for (unsigned w = 0; w < ARRAY_SIZE(want); w++) {
			bool found = false;

			for (unsigned k = 0; k < nlisted; k++)
				found |= listed[k] == want[w];
			if (!found) {
				snprintf(why, sizeof(why), "lun %u: VPD page %#x not listed", lun,
					 want[w]);
				return -1;
			}
			if (inquiry(lun, true, want[w], 255, &got))
				return -1;
			if (got < 4 || b[1] != want[w]) {
				snprintf(why, sizeof(why), "lun %u: VPD %#x answered as page %#x",
					 lun, want[w], b[1]);
				return -1;
			}
			if (want[w] == 0x80 && i == 0)
				printf("# storage: lun %u serial \"%.*s\"\n", lun,
				       (int)MIN((unsigned)b[3], got - 4), (const char *)b + 4);
			if (want[w] == 0xb0 && (b[3] < 0x3c || got < 0x40)) {
				snprintf(why, sizeof(why), "lun %u: VPD B0 too short (%u)", lun,
					 b[3]);
				return -1;
			}
		}
	}
	return 0;
}

static int step_capacity(void)
{
	uint8_t *b = rpg.va;

	for (unsigned i = 0; i < nluns; i++) {
		uint8_t c[16] = {0x9e, 0x10, [13] = 32};
		struct lun_info *l = &luns[i];
		struct storvsc_result r;
		char key[24];
		uint64_t want_mib;

		if (cmd(0, l->lun, c, 16, STORVSC_DATA_IN, rpg.gpa, 32, &r))
			return -1;
		if (r.xfer < 16) {
			snprintf(why, sizeof(why), "lun %u: READ CAPACITY(16) moved %u bytes",
				 l->lun, r.xfer);
			return -1;
		}
		l->blocks = get_be64(b) + 1;
		l->bsize = get_be32(b + 8);
		l->lbpme = b[14] & 0x80;
		printf("# storage: lun %u capacity %lu blocks of %u bytes = %lu bytes%s\n", l->lun,
		       (unsigned long)l->blocks, l->bsize, (unsigned long)(l->blocks * l->bsize),
		       l->lbpme ? " (thin)" : "");
		snprintf(key, sizeof(key), "storage.mib%u", l->lun);
		want_mib = tguest_cmdline_u64(key, 0);
		if (want_mib && l->blocks * l->bsize != want_mib << 20) {
			snprintf(why, sizeof(why), "lun %u: %lu bytes, %s says %lu MiB", l->lun,
				 (unsigned long)(l->blocks * l->bsize), key,
				 (unsigned long)want_mib);
			return -1;
		}
		if (l->bsize != 512) {
			snprintf(why, sizeof(why), "lun %u: block size %u (the layout needs 512)",
				 l->lun, l->bsize);
			return -1;
		}
	}
	return 0;
}

static int step_mode_sense(unsigned *nwp)
{
	uint8_t *b = rpg.va;

	*nwp = 0;
	for (unsigned i = 0; i < nluns; i++) {
		uint8_t c[6] = {0x1a, 0, 0x3f, 0, 192, 0};
		struct storvsc_result r;

		if (cmd(0, luns[i].lun, c, 6, STORVSC_DATA_IN, rpg.gpa, 192, &r))
			return -1;
		if (r.xfer < 4) {
			snprintf(why, sizeof(why), "lun %u: MODE SENSE moved %u bytes", luns[i].lun,
				 r.xfer);
			return -1;
		}
		luns[i].wp = b[2] & 0x80;
		*nwp += luns[i].wp;
	}
	return 0;
}

/* The whole image region of l must fit, or the layout cannot be used on it. */
static bool fits(const struct lun_info *l, uint64_t end)
{
	return end <= l->blocks * l->bsize;
}

static int step_patterns(unsigned *nw)
{
	*nw = 0;
	for (unsigned i = 0; i < nluns; i++) {
		const struct lun_info *l = &luns[i];

		if (l->wp)
			continue;
		if (!fits(l, storage_unmap_start(sc.nch) + STORAGE_BLOCK)) {
			snprintf(why, sizeof(why), "lun %u: too small for %u channels", l->lun,
				 sc.nch);
			return -1;
		}
		for (unsigned c = 0; c < sc.nch; c++) {
			uint64_t off = storage_region_start(c);

			if (write_pattern(c, l, off, STORAGE_REGION_LEN, 0, 0x123 + 0x51 * c) ||
			    check_pattern(c, l, off, STORAGE_REGION_LEN, 0, 0xe08 - 0x30 * c))
				return -1;
		}
		(*nw)++;
	}
	return 0;
}

static int step_sync(void)
{
	for (unsigned i = 0; i < nluns; i++) {
		uint8_t c[10] = {0x35};
		struct storvsc_result r;

		if (!luns[i].wp && cmd(0, luns[i].lun, c, 10, STORVSC_NO_DATA, 0, 0, &r))
			return -1;
	}
	return 0;
}

static int step_unmap(unsigned *nunmapped)
{
	uint64_t start = storage_unmap_start(sc.nch);

	*nunmapped = 0;
	for (unsigned i = 0; i < nluns; i++) {
		const struct lun_info *l = &luns[i];

		if (l->wp)
			continue;
		if (write_pattern(0, l, start, STORAGE_GEN1_LEN, 1, 0x40))
			return -1;
		if (l->lbpme) {
			uint8_t c[10] = {0x42, [8] = 24};
			uint8_t *p = wpg.va;
			struct storvsc_result r;

			memset(p, 0, 24);
			p[1] = 22; /* data length after this field */
			p[3] = 16; /* block descriptor bytes */
			put_be64(p + 8, start / 512);
			put_be32(p + 16, STORAGE_BLOCK / 512);
			if (cmd(0, l->lun, c, 10, STORVSC_DATA_OUT, wpg.gpa, 24, &r))
				return -1;
			(*nunmapped)++;
		}
		/* What UNMAP left is undefined: rewrite the whole block with generation 2. */
		for (uint32_t o = 0; o < STORAGE_BLOCK; o += CHUNK)
			if (write_pattern(i % sc.nch, l, start + o, CHUNK, 2, 0x10 + 8 * i) ||
			    check_pattern(i % sc.nch, l, start + o, CHUNK, 2, 0x200))
				return -1;
	}
	return 0;
}

static int step_read_only(void)
{
	for (unsigned i = 0; i < nluns; i++) {
		uint8_t c[10] = {0x2a, 0, 0, 0, 0, 8, 0, 0, 8, 0};
		struct storvsc_result r;
		int ret;

		if (!luns[i].wp)
			continue;
		memset(wpg.va, 0xee, 4096);
		ret = storvsc_execute(&sc, 0, luns[i].lun, c, 10, STORVSC_DATA_OUT, wpg.gpa, 4096,
				      &r);
		if (ret) {
			snprintf(why, sizeof(why), "lun %u: exchange error %d", luns[i].lun, ret);
			return -1;
		}
		if (storvsc_result_ok(&r) || !r.sense_valid || r.key != 0x7) {
			snprintf(why, sizeof(why),
				 "lun %u: write gave srb %#x scsi %#x sense %d %x/%02x/%02x",
				 luns[i].lun, r.srb_status, r.scsi_status, r.sense_valid, r.key,
				 r.asc, r.ascq);
			return -1;
		}
		printf("# storage: lun %u write refused: DATA PROTECT asc %#x ascq %#x\n",
		       luns[i].lun, r.asc, r.ascq);
	}
	return 0;
}

/* Region c of every writable LUN read back on channel c + 1 (I/O on every channel again). */
static int step_cross_channel(void)
{
	for (unsigned i = 0; i < nluns; i++) {
		if (luns[i].wp) {
			/* reads still work on a read-only LUN, on every channel */
			for (unsigned c = 0; c < sc.nch; c++)
				if (rw10(c, luns[i].lun, false, 0, rpg.gpa + 0x300, 8192))
					return -1;
			continue;
		}
		for (unsigned c = 0; c < sc.nch; c++)
			if (check_pattern((c + 1) % sc.nch, &luns[i], storage_region_start(c),
					  STORAGE_REGION_LEN, 0, 0x7f8))
				return -1;
	}
	return 0;
}

static void storage_run(void)
{
	const char *hv_why = NULL;
	struct winhv *w = tguest_hv(&hv_why);
	uint32_t targets[STORVSC_MAX_CHANNELS];
	unsigned lines = 0, ncpu = hvplat_ncpus(), nwp = 0, n = 0;
	bool probed = false, bus_up = false;
	int ret;

#define LINE_FAIL(name)                                  \
	do {                                             \
		tap_not_ok("storage: " name, "%s", why); \
		lines++;                                 \
		goto fail_rest;                          \
	} while (0)

	why[0] = '\0';
	if (!w || tguest_hv_synic(&hv_why)) {
		snprintf(why, sizeof(why), "Hyper-V setup failed: %s", hv_why ? hv_why : "?");
		goto fail_rest;
	}
	if (vmbc_init(&bus, w)) {
		snprintf(why, sizeof(why), "vmbc_init: out of memory");
		goto fail_rest;
	}
	bus_up = true;
	if (hvplat_pages_alloc(BUF_PAGES, &wpg) || hvplat_pages_alloc(BUF_PAGES, &rpg)) {
		snprintf(why, sizeof(why), "out of memory for data buffers");
		goto fail_rest;
	}
	ret = vmbc_connect(&bus, 0);
	if (!ret)
		ret = vmbc_request_offers(&bus);
	if (!ret) {
		ret = storvsc_probe(&sc, &bus, 0);
		probed = true; /* sc is initialised now, even on failure */
	}
	if (ret) {
		snprintf(why, sizeof(why), "%s (%d)",
			 ret == VMBC_ENODEV ? "no SCSI controller offered (viridian run --disk)"
			 : ret == STORVSC_ENOVERSION ? "host refused vstor 6.2, 6.0 and 5.1"
						     : "VMBus or vstor handshake failed",
			 ret);
		LINE_FAIL("vstor handshake");
	}
	tap_ok("storage: vstor %u.%u negotiated on VMBus %u.%u, max transfer %u, %u sub-channels "
	       "offered",
	       sc.version >> 8, sc.version & 0xff, bus.version >> 16, bus.version & 0xffff,
	       sc.max_transfer, (sc.prop_flags & 1) ? sc.max_channel_cnt : 0);
	lines++;

	/* One sub-channel per extra vCPU, targeting that vCPU (Linux's choice). */
	for (unsigned i = 0; i + 1 < ncpu && i < ARRAY_SIZE(targets); i++)
		targets[i] = w->vp[i + 1].ready ? w->vp[i + 1].vp_index : i + 1;
	if (ncpu - 1 > MAX_SUBCHANNELS)
		printf("# storage: %u vCPUs, sub-channels capped at %u (guest page pool)\n", ncpu,
		       MAX_SUBCHANNELS);
	ret = storvsc_create_subchannels(&sc, MIN(ncpu - 1, MAX_SUBCHANNELS), targets);
	if (ret < 0) {
		snprintf(why, sizeof(why), "CREATE_SUB_CHANNELS / open failed (%d)", ret);
		LINE_FAIL("sub-channels");
	}
	tap_ok("storage: %d sub-channels created and opened for %u vCPUs (%u channels)", ret, ncpu,
	       sc.nch);
	lines++;

	if (step_report_luns())
		LINE_FAIL("REPORT LUNS");
	tap_ok("storage: REPORT LUNS lists %u LUNs", nluns);
	lines++;
	if (step_inquiry())
		LINE_FAIL("INQUIRY");
	tap_ok("storage: INQUIRY standard and VPD 0x00/0x80/0x83/0xB0 on %u LUNs", nluns);
	lines++;
	if (step_capacity())
		LINE_FAIL("READ CAPACITY(16)");
	tap_ok("storage: READ CAPACITY(16) on %u LUNs", nluns);
	lines++;
	if (step_mode_sense(&nwp))
		LINE_FAIL("MODE SENSE");
	tap_ok("storage: MODE SENSE: %u of %u LUNs write-protected", nwp, nluns);
	lines++;
	if (step_patterns(&n))
		LINE_FAIL("pattern writes");
	tap_ok("storage: %u-byte pattern writes across 2 MiB boundaries from unaligned buffers "
	       "on %u channels x %u LUNs read back equal",
	       STORAGE_REGION_LEN, sc.nch, n);
	lines++;
	if (step_sync())
		LINE_FAIL("SYNCHRONIZE CACHE");
	tap_ok("storage: SYNCHRONIZE CACHE(10) on the writable LUNs");
	lines++;
	if (step_unmap(&n))
		LINE_FAIL("UNMAP");
	if (!n)
		tap_ok("storage: UNMAP # SKIP no writable LUN reports LBPME");
	else
		tap_ok("storage: UNMAP of a 2 MiB block on %u LUNs, block rewritten and read back",
		       n);
	lines++;
	if (!nwp) {
		tap_ok("storage: write to a read-only LUN # SKIP no LUN is write-protected");
	} else {
		if (step_read_only())
			LINE_FAIL("write to a read-only LUN");
		tap_ok("storage: write to %u read-only LUNs refused with DATA PROTECT", nwp);
	}
	lines++;
	if (step_cross_channel())
		LINE_FAIL("cross-channel read-back");
	tap_ok("storage: every region read back on another channel (%u channels), bad replies %lu",
	       sc.nch, (unsigned long)sc.bad_replies);
	lines++;
	storvsc_close(&sc);
	vmbc_unload(&bus);
	hvplat_pages_free(&wpg);
	hvplat_pages_free(&rpg);
	return;

fail_rest:
	for (; lines < STORAGE_LINES; lines++)
		tap_not_ok("storage", "not reached: %s", why);
	if (probed)
		storvsc_close(&sc);
	if (bus_up && bus.connected)
		vmbc_unload(&bus);
	if (wpg.npages)
		hvplat_pages_free(&wpg);
	if (rpg.npages)
		hvplat_pages_free(&rpg);
#undef LINE_FAIL
}

static const struct scenario storage_scenario = {
	.name = "storage",
	.count = storage_count,
	.run = storage_run,
	.explicit_only = 1,
};
SCENARIO_REGISTER(storage_scenario);
