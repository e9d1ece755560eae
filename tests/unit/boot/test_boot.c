// SPDX-License-Identifier: GPL-2.0-only
/* AML encoder, ACPI tables and both kernel loaders against synthetic inputs. */
#include "boot/acpi.h"
#include "boot/acpi_tables.h"
#include "boot/aml.h"
#include "boot/boot.h"
#include "boot/boot_internal.h"
#include "lib/err.h"
#include "vid/guest_mem.h"
#include "vid/layout.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1024ull * 1024)
#define RAM (64 * MIB)

/* ---- AML ---- */

static void expect_bytes(struct aml_buf *b, const uint8_t *want, size_t n)
{
	assert_int_equal(b->error, 0);
	assert_int_equal(b->len, n);
	assert_memory_equal(b->data, want, n);
}

static void test_aml_pkglen(void **state)
{
	uint8_t o[4];

	/* Total (body + PkgLength bytes) 63 is the largest one-byte encoding. */
	assert_int_equal(aml_pkglen_encode(62, o), 1);
	assert_int_equal(o[0], 63);
	/* Body 63: total 65 in two bytes: lead 0x40 | (65 & 0xf), then 65 >> 4. */
	assert_int_equal(aml_pkglen_encode(63, o), 2);
	assert_int_equal(o[0], 0x41);
	assert_int_equal(o[1], 0x04);
	/* Total 64 needs two bytes: body 62 would be 63 in one byte, 62+2=64 never occurs;
	 * body 0 is 1 byte total 1. */
	assert_int_equal(aml_pkglen_encode(0, o), 1);
	assert_int_equal(o[0], 1);
	/* 4095 is the largest two-byte total. */
	assert_int_equal(aml_pkglen_encode(4093, o), 2);
	assert_int_equal(o[0], 0x4f);
	assert_int_equal(o[1], 0xff);
	/* 4094 + 3 = 4097 = 0x1001: three bytes. */
	assert_int_equal(aml_pkglen_encode(4094, o), 3);
	assert_int_equal(o[0], 0x81);
	assert_int_equal(o[1], 0x00);
	assert_int_equal(o[2], 0x01);
	/* Largest three-byte total 0xfffff, then four bytes. */
	assert_int_equal(aml_pkglen_encode(0xfffff - 3, o), 3);
	assert_int_equal(o[0], 0x8f);
	assert_int_equal(o[1], 0xff);
	assert_int_equal(o[2], 0xff);
	assert_int_equal(aml_pkglen_encode(0xfffff - 2, o), 4);
	assert_int_equal(o[0], 0xc0 | ((0xfffff + 2) & 0xf));
	assert_int_equal(aml_pkglen_encode(0xfffffff - 4, o), 4);
	assert_int_equal(o[0], 0xcf);
	assert_int_equal(o[3], 0xff);
	assert_int_equal(aml_pkglen_encode(0xfffffff - 3, o), 0);
}

static void test_aml_pkglen_nested(void **state)
{
	/* A Package whose body crosses the one-byte boundary gets a 2-byte PkgLength. */
	for (unsigned n = 58; n <= 64; n++) {
		struct aml_buf b;
		size_t m;

		aml_buf_init(&b);
		m = aml_package_begin(&b, n);
		for (unsigned i = 0; i < n; i++)
			aml_int(&b, 0);
		aml_end(&b, m);
		assert_int_equal(b.error, 0);
		/* body = NumElements + n ZeroOps */
		unsigned body = n + 1;
		unsigned plen = body + 1 <= 63 ? 1 : 2;
		assert_int_equal(b.len, 1 + plen + body);
		if (plen == 1) {
			assert_int_equal(b.data[1], body + 1);
		} else {
			unsigned total = body + 2;
			assert_int_equal(b.data[1], 0x40 | (total & 0xf));
			assert_int_equal(b.data[2], total >> 4);
		}
		aml_buf_free(&b);
	}
}

static void test_aml_integers(void **state)
{
	static const struct {
		uint64_t v;
		uint8_t enc[9];
		size_t n;
	} cases[] = {
		{0, {0x00}, 1},
		{1, {0x01}, 1},
		{2, {0x0a, 0x02}, 2},
		{0xff, {0x0a, 0xff}, 2},
		{0x100, {0x0b, 0x00, 0x01}, 3},
		{0xffff, {0x0b, 0xff, 0xff}, 3},
		{0x10000, {0x0c, 0x00, 0x00, 0x01, 0x00}, 5},
		{0xffffffff, {0x0c, 0xff, 0xff, 0xff, 0xff}, 5},
		{0x100000000ull, {0x0e, 0, 0, 0, 0, 1, 0, 0, 0}, 9},
		{0x8877665544332211ull, {0x0e, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}, 9},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aml_buf b;

		aml_buf_init(&b);
		aml_int(&b, cases[i].v);
		expect_bytes(&b, cases[i].enc, cases[i].n);
		aml_buf_free(&b);
	}
}

static void test_aml_names(void **state)
{
	struct aml_buf b;

	aml_buf_init(&b);
	aml_name(&b, "_HID");
	expect_bytes(&b, (const uint8_t *)"_HID", 4);
	aml_buf_free(&b);

	aml_buf_init(&b);
	aml_name(&b, "RTC");
	expect_bytes(&b, (const uint8_t *)"RTC_", 4);
	aml_buf_free(&b);

	aml_buf_init(&b);
	aml_name(&b, "\\_SB.COM1");
	expect_bytes(&b, (const uint8_t *)"\\\x2e_SB_COM1", 10);
	aml_buf_free(&b);

	aml_buf_init(&b);
	aml_name(&b, "\\_SB.VMOD.VMBS");
	expect_bytes(&b, (const uint8_t *)"\\\x2f\x03_SB_VMODVMBS", 15);
	aml_buf_free(&b);

	aml_buf_init(&b);
	aml_name(&b, "^^X");
	expect_bytes(&b, (const uint8_t *)"^^X___", 6);
	aml_buf_free(&b);

	aml_buf_init(&b);
	aml_name(&b, "\\");
	expect_bytes(&b, (const uint8_t *)"\\\x00", 2);
	aml_buf_free(&b);

	static const char *bad[] = {"abcd", "TOOLONG", "A..B", "1ABC", "A.", ".A", "A-B"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_buf_init(&b);
		aml_name(&b, bad[i]);
		assert_int_equal(b.error, -EINVAL);
		aml_buf_free(&b);
	}
}

static void test_aml_objects(void **state)
{
	struct aml_buf b;
	size_t m, r;

	/* Device (TEST) { Name (_HID, EisaId ("PNP0501")) } */
	aml_buf_init(&b);
	m = aml_device_begin(&b, "TEST");
	aml_name_decl(&b, "_HID");
	aml_eisaid(&b, "PNP0501");
	aml_end(&b, m);
	static const uint8_t dev[] = {0x5b, 0x82, 0x0f, 'T',  'E',  'S',  'T',	0x08, '_',
				      'H',  'I',  'D',	0x0c, 0x41, 0xd0, 0x05, 0x01};
	expect_bytes(&b, dev, sizeof(dev));
	aml_buf_free(&b);

	assert_int_equal(aml_eisaid_value("PNP0B00"), 0x000bd041);
	assert_int_equal(aml_eisaid_value("PNP0303"), 0x0303d041);
	assert_int_equal(aml_eisaid_value("pnp0303"), 0);

	/* Name (_CRS, ResourceTemplate () { IRQNoFlags () {5} }) */
	aml_buf_init(&b);
	aml_name_decl(&b, "_CRS");
	r = aml_restemplate_begin(&b);
	aml_res_irq_noflags(&b, 1u << 5);
	aml_restemplate_end(&b, r);
	static const uint8_t crs[] = {0x08, '_',  'C',	'R',  'S',  0x11, 0x08,
				      0x0a, 0x05, 0x22, 0x20, 0x00, 0x79, 0x00};
	expect_bytes(&b, crs, sizeof(crs));
	aml_buf_free(&b);

	/* Method (_STA) { Return (0x0F) }, String, IO, Memory32Fixed, IRQ with flags. */
	aml_buf_init(&b);
	m = aml_method_begin(&b, "_STA", 0, false);
	aml_return(&b);
	aml_int(&b, 0x0f);
	aml_end(&b, m);
	aml_string(&b, "VMBUS");
	aml_res_io(&b, 0x3f8, 0x3f8, 1, 8);
	aml_res_mem32_fixed(&b, true, 0xfec00000, 0x1000);
	aml_res_irq(&b, 1u << 9, AML_IRQ_SHARED);
	static const uint8_t misc[] = {
		0x14, 0x09, '_',  'S',	'T',  'A',  0x00, 0xa4, 0x0a, 0x0f, 0x0d, 'V',	'M',  'B',
		'U',  'S',  0x00, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x86, 0x09, 0x00,
		0x01, 0x00, 0x00, 0xc0, 0xfe, 0x00, 0x10, 0x00, 0x00, 0x23, 0x00, 0x02, 0x10};
	expect_bytes(&b, misc, sizeof(misc));
	aml_buf_free(&b);

	/* A 100-byte buffer: two-byte PkgLength, BufferSize as a BytePrefix. */
	aml_buf_init(&b);
	m = aml_buffer_begin(&b);
	for (int i = 0; i < 100; i++)
		aml_byte(&b, (uint8_t)i);
	aml_end(&b, m);
	assert_int_equal(b.error, 0);
	assert_int_equal(b.len, 1 + 2 + 2 + 100);
	assert_int_equal(b.data[0], 0x11);
	assert_int_equal(b.data[1], 0x40 | ((104) & 0xf));
	assert_int_equal(b.data[2], 104 >> 4);
	assert_int_equal(b.data[3], 0x0a);
	assert_int_equal(b.data[4], 100);
	assert_int_equal(b.data[5], 0);
	aml_buf_free(&b);

	/* Bad inputs are sticky errors. */
	aml_buf_init(&b);
	aml_method_begin(&b, "_FOO", 8, false);
	assert_int_equal(b.error, -EINVAL);
	aml_buf_free(&b);
	aml_buf_init(&b);
	aml_eisaid(&b, "PNP05");
	assert_int_equal(b.error, -EINVAL);
	aml_buf_free(&b);
}

/* ---- ACPI tables ---- */

struct env {
	struct guest_mem gm;
	char dir[64];
};

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e || guest_mem_init(&e->gm, RAM, 0))
		return -1;
	strcpy(e->dir, "/tmp/viridian-boot-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];

	guest_mem_destroy(&e->gm);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		return -1;
	free(e);
	return 0;
}

static const uint8_t *gpa(struct env *e, uint64_t a, uint64_t len)
{
	const uint8_t *p = guest_mem_ptr(&e->gm, a, len);

	assert_non_null(p);
	return p;
}

static const struct acpi_header *table_at(struct env *e, uint64_t a, const char *sig)
{
	const struct acpi_header *h = (const void *)gpa(e, a, sizeof(*h));

	assert_memory_equal(h->signature, sig, 4);
	assert_true(h->length >= sizeof(*h));
	assert_true(a + h->length <= LAYOUT_ACPI_GPA + LAYOUT_ACPI_MAX);
	gpa(e, a, h->length);
	assert_int_equal(acpi_checksum(h, h->length), 0);
	return h;
}

static void build_tables(struct env *e, unsigned ncpus, uint64_t *rsdp)
{
	struct acpi_config cfg = {.ncpus = ncpus};

	for (unsigned i = 0; i < ncpus; i++)
		cfg.apic_ids[i] = i;
	assert_int_equal(acpi_tables_build(&e->gm, &cfg, rsdp), 0);
	assert_int_equal(*rsdp, LAYOUT_ACPI_GPA);
}

static const struct acpi_header *xsdt_find(struct env *e, uint64_t rsdp_gpa, const char *sig)
{
	const struct acpi_rsdp *rsdp = (const void *)gpa(e, rsdp_gpa, sizeof(*rsdp));
	const struct acpi_header *x = table_at(e, rsdp->xsdt_address, "XSDT");
	unsigned n = (x->length - sizeof(*x)) / 8;

	for (unsigned i = 0; i < n; i++) {
		uint64_t a;

		memcpy(&a, (const uint8_t *)x + sizeof(*x) + 8 * i, 8);
		const struct acpi_header *h = (const void *)gpa(e, a, sizeof(*h));

		if (!memcmp(h->signature, sig, 4))
			return table_at(e, a, sig);
	}
	fail_msg("table %s not in the XSDT", sig);
	return NULL;
}

static void test_acpi_rsdp_xsdt(void **state)
{
	struct env *e = *state;
	uint64_t rsdp_gpa;

	build_tables(e, 2, &rsdp_gpa);
	const struct acpi_rsdp *r = (const void *)gpa(e, rsdp_gpa, sizeof(*r));
	assert_memory_equal(r->signature, "RSD PTR ", 8);
	assert_int_equal(r->revision, 2);
	assert_int_equal(r->length, 36);
	assert_int_equal(acpi_checksum(r, 20), 0);
	assert_int_equal(acpi_checksum(r, 36), 0);
	assert_int_equal(rsdp_gpa % 16, 0);

	const struct acpi_header *x = table_at(e, r->xsdt_address, "XSDT");
	const struct acpi_header *rs = table_at(e, r->rsdt_address, "RSDT");
	assert_int_equal(x->length, 36 + 16);
	assert_int_equal(rs->length, 36 + 8);
	/* RSDT and XSDT list the same tables. */
	for (unsigned i = 0; i < 2; i++) {
		uint64_t xa;
		uint32_t ra;

		memcpy(&xa, (const uint8_t *)x + 36 + 8 * i, 8);
		memcpy(&ra, (const uint8_t *)rs + 36 + 4 * i, 4);
		assert_int_equal(xa, ra);
	}
	xsdt_find(e, rsdp_gpa, "FACP");
	xsdt_find(e, rsdp_gpa, "APIC");
}

static void test_acpi_fadt(void **state)
{
	struct env *e = *state;
	uint64_t rsdp_gpa;

	build_tables(e, 1, &rsdp_gpa);
	const struct acpi_fadt *f = (const void *)xsdt_find(e, rsdp_gpa, "FACP");

	assert_int_equal(f->h.length, 276);
	assert_true(f->h.revision >= 5);
	assert_int_equal(f->sci_int, 9);
	assert_int_equal(f->pm1a_evt_blk, LAYOUT_ACPI_PM1A_EVT);
	assert_int_equal(f->pm1a_cnt_blk, LAYOUT_ACPI_PM1A_CNT);
	assert_int_equal(f->pm_tmr_blk, LAYOUT_ACPI_PM_TMR);
	assert_int_equal(f->pm1_evt_len, 4);
	assert_int_equal(f->pm1_cnt_len, 2);
	assert_int_equal(f->pm_tmr_len, 4);
	assert_int_equal(f->x_pm1a_evt_blk.space_id, 1);
	assert_int_equal(f->x_pm1a_evt_blk.address, LAYOUT_ACPI_PM1A_EVT);
	assert_int_equal(f->x_pm1a_evt_blk.bit_width, 32);
	assert_int_equal(f->x_pm1a_cnt_blk.address, LAYOUT_ACPI_PM1A_CNT);
	assert_int_equal(f->x_pm1a_cnt_blk.bit_width, 16);
	assert_int_equal(f->x_pm_tmr_blk.address, LAYOUT_ACPI_PM_TMR);
	assert_int_equal(f->x_pm_tmr_blk.bit_width, 32);
	assert_true(f->flags & ACPI_FADT_WBINVD);
	assert_true(f->flags & ACPI_FADT_RESET_REG_SUP);
	assert_false(f->flags & ACPI_FADT_HW_REDUCED);
	assert_int_equal(!!(f->flags & ACPI_FADT_TMR_VAL_EXT), LAYOUT_ACPI_PM_TMR_32BIT);
	assert_int_equal(f->reset_reg.space_id, 1);
	assert_int_equal(f->reset_reg.address, 0xcf9);
	assert_int_equal(f->reset_reg.bit_width, 8);
	assert_int_equal(f->reset_value, 6);
	assert_true(f->iapc_boot_arch & ACPI_IAPC_8042);
	assert_true(f->iapc_boot_arch & ACPI_IAPC_VGA_NOT_PRESENT);
	assert_int_equal(f->x_dsdt, f->dsdt);
	assert_int_equal(f->x_firmware_ctrl, 0); /* FIRMWARE_CTRL is set: the X_ field must be 0 */
	assert_int_equal(f->firmware_ctrl % 64, 0);

	const struct acpi_facs *facs = (const void *)gpa(e, f->firmware_ctrl, 64);
	assert_memory_equal(facs->signature, "FACS", 4);
	assert_int_equal(facs->length, 64);
	table_at(e, f->x_dsdt, "DSDT");
}

static bool mem_has(const uint8_t *p, size_t n, const void *pat, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (!memcmp(p + i, pat, m))
			return true;
	return false;
}

static void test_acpi_dsdt(void **state)
{
	struct env *e = *state;
	uint64_t rsdp_gpa;

	build_tables(e, 1, &rsdp_gpa);
	const struct acpi_fadt *f = (const void *)xsdt_find(e, rsdp_gpa, "FACP");
	const struct acpi_header *d = table_at(e, f->x_dsdt, "DSDT");
	const uint8_t *p = (const uint8_t *)d;

	assert_int_equal(d->revision, 2);
	/* Name (_HID, "VMBUS") */
	assert_true(mem_has(p, d->length, "\x08_HID\x0dVMBUS", 12));
	/* IRQNoFlags () {LAYOUT_VMBUS_IRQ} */
	uint8_t irq[3] = {0x22, (1u << LAYOUT_VMBUS_IRQ) & 0xff, (1u << LAYOUT_VMBUS_IRQ) >> 8};
	assert_true(mem_has(p, d->length, irq, 3));
	assert_true(mem_has(p, d->length, "\x5b\x82", 2) && mem_has(p, d->length, "VMOD", 4));
	assert_true(mem_has(p, d->length, "VMBS", 4));
	/* \_S5 package with SLP_TYP */
	/* clang-format off */
	uint8_t s5[] = { 0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
			 0x0a, LAYOUT_ACPI_S5_SLP_TYP, 0x0a, LAYOUT_ACPI_S5_SLP_TYP, 0x00, 0x00 };
	/* clang-format on */
	assert_true(mem_has(p, d->length, s5, sizeof(s5)));
	/* COM1 I/O range and PS/2 ports. */
	assert_true(mem_has(p, d->length, "\x47\x01\xf8\x03\xf8\x03\x01\x08", 8));
	assert_true(mem_has(p, d->length, "\x47\x01\x60\x00\x60\x00\x01\x01", 8));
	assert_true(mem_has(p, d->length, "\x47\x01\x64\x00\x64\x00\x01\x01", 8));
	assert_true(mem_has(p, d->length, "\x47\x01\x70\x00\x70\x00\x01\x02", 8));
}

static void test_acpi_madt(void **state)
{
	struct env *e = *state;
	uint64_t rsdp_gpa;
	static const unsigned counts[] = {1, 4, 64, 255, 256};

	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		unsigned ncpus = counts[c], nlapic = 0, nioapic = 0, niso = 0;
		struct acpi_config cfg = {.ncpus = ncpus};

		for (unsigned i = 0; i < ncpus; i++)
			cfg.apic_ids[i] = i * 2 % 512; /* sparse IDs, some need x2APIC */
		assert_int_equal(acpi_tables_build(&e->gm, &cfg, &rsdp_gpa), 0);
		const struct acpi_madt *m = (const void *)xsdt_find(e, rsdp_gpa, "APIC");
		const uint8_t *p = (const uint8_t *)m + sizeof(*m),
			      *end = (const uint8_t *)m + m->h.length;

		assert_int_equal(m->lapic_address, 0xfee00000);
		while (p < end) {
			assert_true(p + 2 <= end && p[1] >= 2 && p + p[1] <= end);
			if (p[0] == ACPI_MADT_LAPIC) {
				const struct acpi_madt_lapic *l = (const void *)p;
				assert_int_equal(l->apic_id, cfg.apic_ids[l->processor_uid]);
				assert_int_equal(l->flags & 1, 1);
				nlapic++;
			} else if (p[0] == ACPI_MADT_X2APIC) {
				const struct acpi_madt_x2apic *l = (const void *)p;
				assert_int_equal(l->x2apic_id, cfg.apic_ids[l->processor_uid]);
				nlapic++;
			} else if (p[0] == ACPI_MADT_IOAPIC) {
				const struct acpi_madt_ioapic *io = (const void *)p;
				assert_int_equal(io->address, 0xfec00000);
				assert_int_equal(io->gsi_base, 0);
				for (unsigned i = 0; i < ncpus; i++)
					assert_int_not_equal(io->ioapic_id, cfg.apic_ids[i]);
				if (ncpus == 1)
					assert_int_equal(io->ioapic_id, ncpus);
				nioapic++;
			} else if (p[0] == ACPI_MADT_ISO) {
				const struct acpi_madt_iso *iso = (const void *)p;
				if (iso->source == 0) {
					assert_int_equal(iso->gsi, 2);
				} else {
					assert_int_equal(iso->source, 9);
					assert_int_equal(iso->gsi, 9);
					assert_int_equal(iso->flags, 0xd);
				}
				niso++;
			}
			p += p[1];
		}
		assert_int_equal(nlapic, ncpus);
		assert_int_equal(nioapic, 1);
		assert_int_equal(niso, 2);
	}
	struct acpi_config bad = {.ncpus = 0};
	assert_int_equal(acpi_tables_build(&e->gm, &bad, &rsdp_gpa), -EINVAL);
}

/* Real peer: the ACPICA disassembler must parse every table we generate. */
static void test_acpi_iasl(void **state)
{
	struct env *e = *state;
	const char *iasl = getenv("IASL");
	uint64_t rsdp_gpa;
	char path[256], cmd[1024];
	static const char *sigs[] = {"FACP", "APIC", "DSDT"};

	if (!iasl || access(iasl, X_OK)) {
		skip();
		return;
	}
	build_tables(e, 4, &rsdp_gpa);
	for (size_t i = 0; i < 3; i++) {
		const struct acpi_header *h;
		FILE *fp;

		if (!strcmp(sigs[i], "DSDT")) {
			const struct acpi_fadt *f = (const void *)xsdt_find(e, rsdp_gpa, "FACP");
			h = table_at(e, f->x_dsdt, "DSDT");
		} else {
			h = xsdt_find(e, rsdp_gpa, sigs[i]);
		}
		snprintf(path, sizeof(path), "%s/%.4s.dat", e->dir, sigs[i]);
		fp = fopen(path, "wb");
		assert_non_null(fp);
		assert_int_equal(fwrite(h, 1, h->length, fp), h->length);
		fclose(fp);
		snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' -d %.4s.dat >%.4s.log 2>&1", e->dir,
			 iasl, sigs[i], sigs[i]);
		assert_int_equal(system(cmd), 0);
		snprintf(path, sizeof(path), "%s/%.4s.dsl", e->dir, sigs[i]);
		assert_int_equal(access(path, R_OK), 0);
	}
	/* The disassembled DSDT names the VMBus device and recompiles without errors. */
	snprintf(
		cmd, sizeof(cmd),
		"cd '%s' && grep -q '\"VMBUS\"' DSDT.dsl && grep -q 'VMBS' DSDT.dsl && "
		"grep -q 'IRQNoFlags' DSDT.dsl && grep -q 'PNP0501' DSDT.dsl && "
		"grep -q '_S5_' DSDT.dsl && '%s' -f -vw 6033 -oa -p recompiled DSDT.dsl >recompile.log 2>&1 && "
		"cmp -s -i 36 recompiled.aml DSDT.dat",
		e->dir, iasl);
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof(cmd), "cat '%s'/*.log '%s'/DSDT.dsl >&2", e->dir, e->dir);
		(void)!system(cmd);
		fail_msg("DSDT did not round-trip through iasl");
	}
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && grep -q 'Hardware Reduced.*: 0' FACP.dsl && "
		 "grep -qi 'Address : 0000000000000CF9' FACP.dsl && "
		 "grep -q 'Local Apic ID : 03' APIC.dsl",
		 e->dir);
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof(cmd), "cat '%s'/FACP.dsl '%s'/APIC.dsl >&2", e->dir, e->dir);
		(void)!system(cmd);
		fail_msg("iasl's view of FADT/MADT is not what we meant");
	}
}

/* Real peer: ACPICA's interpreter loads the DSDT and evaluates our objects. */
static void test_acpi_acpiexec(void **state)
{
	struct env *e = *state;
	const char *acpiexec = getenv("ACPIEXEC");
	uint64_t rsdp_gpa;
	char path[256], cmd[1024];
	FILE *fp;

	if (!acpiexec || access(acpiexec, X_OK)) {
		skip();
		return;
	}
	build_tables(e, 2, &rsdp_gpa);
	const struct acpi_fadt *f = (const void *)xsdt_find(e, rsdp_gpa, "FACP");
	const struct acpi_header *h = table_at(e, f->x_dsdt, "DSDT");
	snprintf(path, sizeof(path), "%s/dsdt.dat", e->dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(h, 1, h->length, fp), h->length);
	fclose(fp);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && timeout 60 '%s' -b 'evaluate \\_SB.VMOD.VMBS._HID; "
		 "evaluate \\_SB.VMOD.VMBS._STA; evaluate \\_S5_; resources \\_SB.VMOD.VMBS; "
		 "resources \\_SB.PS2K; resources \\_SB.RTC' dsdt.dat >exec.log 2>&1",
		 e->dir, acpiexec);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && grep -q '\"VMBUS\"' exec.log && "
		 "grep -q '\\[Integer\\] = 000000000000000F' exec.log && "
		 "grep -q 'Contains 4 Elements' exec.log && "
		 "grep -q 'Interrupt List : %d ' exec.log && "
		 "grep -q 'Interrupt List : %d ' exec.log && "
		 "grep -q 'Address Minimum : 0064' exec.log && "
		 "grep -q 'Address Minimum : 0070' exec.log && "
		 "! grep -qi 'AE_AML\\|Exception' exec.log",
		 e->dir, LAYOUT_VMBUS_IRQ, LAYOUT_I8042_KBD_IRQ);
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof(cmd), "cat '%s'/exec.log >&2", e->dir);
		(void)!system(cmd);
		fail_msg("acpiexec did not see the DSDT objects we built");
	}
}

/* ---- loaders ---- */

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	fclose(fp);
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

#define BZ_SETUP_SECTS 4
#define BZ_KERNEL_SIZE 8192

/* A minimal bzImage: setup header, then 8 KiB of "kernel". Caller frees. */
static uint8_t *make_bzimage(size_t *len)
{
	size_t setup = (BZ_SETUP_SECTS + 1) * 512;
	uint8_t *img = calloc(1, setup + BZ_KERNEL_SIZE);

	assert_non_null(img);
	img[HDR_SETUP_SECTS] = BZ_SETUP_SECTS;
	put32(img + HDR_SYSSIZE, BZ_KERNEL_SIZE / 16);
	put16(img + HDR_BOOT_FLAG, 0xaa55);
	img[HDR_JUMP] = 0xeb;
	img[HDR_JUMP + 1] = 0x66; /* header ends at 0x268 */
	memcpy(img + HDR_MAGIC, "HdrS", 4);
	put16(img + HDR_VERSION, 0x020f);
	img[HDR_LOADFLAGS] = LOADFLAG_LOADED_HIGH;
	put32(img + HDR_INITRD_ADDR_MAX, 0x7fffffff);
	put32(img + HDR_KERNEL_ALIGNMENT, 0x200000);
	img[HDR_RELOCATABLE] = 1;
	put16(img + HDR_XLOADFLAGS, XLF_KERNEL_64);
	put32(img + HDR_CMDLINE_SIZE, 2047);
	put64(img + HDR_PREF_ADDRESS, 0x1000000);
	put32(img + HDR_INIT_SIZE, 0x400000);
	for (size_t i = 0; i < BZ_KERNEL_SIZE; i++)
		img[setup + i] = (uint8_t)(i * 7 + 3);
	*len = setup + BZ_KERNEL_SIZE;
	return img;
}

static void test_bzimage_load(void **state)
{
	struct env *e = *state;
	char kpath[128], ipath[128];
	size_t len;
	uint8_t *img = make_bzimage(&len);
	uint8_t initrd[12345];
	struct boot_result r;
	struct boot_config cfg = {.kernel_path = kpath,
				  .initrd_path = ipath,
				  .cmdline = "console=ttyS0 root=/dev/sda",
				  .rsdp_gpa = LAYOUT_ACPI_GPA};

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x5a);
	snprintf(kpath, sizeof(kpath), "%s/bzImage", e->dir);
	snprintf(ipath, sizeof(ipath), "%s/initrd", e->dir);
	write_file(kpath, img, len);
	write_file(ipath, initrd, sizeof(initrd));

	assert_int_equal(boot_load(&e->gm, &cfg, &r), 0);
	assert_int_equal(r.kind, BOOT_KIND_BZIMAGE);
	assert_int_equal(r.kernel_start, LAYOUT_KERNEL_GPA);
	assert_int_equal(r.kernel_end, LAYOUT_KERNEL_GPA + 0x400000);
	assert_memory_equal(gpa(e, LAYOUT_KERNEL_GPA, BZ_KERNEL_SIZE), img + 5 * 512,
			    BZ_KERNEL_SIZE);

	/* CPU: long mode at startup_64, RSI = zero page, identity-mapped. */
	assert_true(r.cpu.long_mode);
	assert_int_equal(r.cpu.rip, LAYOUT_KERNEL_GPA + 0x200);
	assert_int_equal(r.cpu.rsi, LAYOUT_BOOT_PARAMS_GPA);
	assert_int_equal(r.cpu.cr3, LAYOUT_PAGE_TABLES_GPA);
	assert_true(r.cpu.cr0 & (1ull << 31));
	assert_true(r.cpu.cr4 & (1ull << 5));
	assert_int_equal(r.cpu.efer & 0x500, 0x500);
	assert_int_equal(r.cpu.code_selector, 0x10);
	assert_int_equal(r.cpu.data_selector, 0x18);
	assert_int_equal(r.cpu.gdt_base, LAYOUT_GDT_GPA);
	uint64_t cs;
	memcpy(&cs, gpa(e, LAYOUT_GDT_GPA + 0x10, 8), 8);
	assert_true(cs & (1ull << 53)); /* L bit */
	assert_true(cs & (1ull << 47)); /* present */
	uint64_t pml4, pdpt, pde;
	memcpy(&pml4, gpa(e, LAYOUT_PAGE_TABLES_GPA, 8), 8);
	assert_int_equal(pml4 & ~0xfffull, LAYOUT_PAGE_TABLES_GPA + 0x1000);
	memcpy(&pdpt, gpa(e, LAYOUT_PAGE_TABLES_GPA + 0x1000 + 3 * 8, 8), 8);
	memcpy(&pde, gpa(e, (pdpt & ~0xfffull) + 511 * 8, 8), 8);
	assert_int_equal(pde, 0xffe00000ull | 0x83); /* last 2 MiB below 4 GiB */

	/* Zero page. */
	const uint8_t *bp = gpa(e, LAYOUT_BOOT_PARAMS_GPA, 4096);
	uint32_t v32;
	assert_memory_equal(bp + HDR_MAGIC, "HdrS", 4);
	assert_int_equal(bp[HDR_TYPE_OF_LOADER], 0xff);
	assert_true(bp[HDR_LOADFLAGS] & LOADFLAG_CAN_USE_HEAP);
	assert_true(bp[HDR_LOADFLAGS] & LOADFLAG_LOADED_HIGH);
	assert_int_not_equal(bp[HDR_HEAP_END_PTR] | bp[HDR_HEAP_END_PTR + 1], 0);
	memcpy(&v32, bp + HDR_CMD_LINE_PTR, 4);
	assert_int_equal(v32, LAYOUT_CMDLINE_GPA);
	assert_string_equal((const char *)gpa(e, v32, 28), "console=ttyS0 root=/dev/sda");
	uint32_t rd_image, rd_size;
	memcpy(&rd_image, bp + HDR_RAMDISK_IMAGE, 4);
	memcpy(&rd_size, bp + HDR_RAMDISK_SIZE, 4);
	assert_int_equal(rd_size, sizeof(initrd));
	assert_int_equal(rd_image, r.initrd_start);
	assert_int_equal(rd_image % 4096, 0);
	assert_true(rd_image >= r.kernel_end);
	assert_true(rd_image + rd_size <= RAM);
	assert_true(rd_image + rd_size > RAM - 8192); /* placed high */
	assert_memory_equal(gpa(e, rd_image, rd_size), initrd, sizeof(initrd));
	uint64_t rsdp;
	memcpy(&rsdp, bp + BP_ACPI_RSDP_ADDR, 8);
	assert_int_equal(rsdp, LAYOUT_ACPI_GPA);
	assert_int_equal(bp[BP_SENTINEL], 0);

	/* e820 in the zero page matches boot_e820_build. */
	struct boot_e820_entry want[BOOT_E820_MAX];
	unsigned n = boot_e820_build(&e->gm, want, BOOT_E820_MAX);
	assert_int_equal(bp[BP_E820_ENTRIES], n);
	assert_int_equal(n, 4);
	for (unsigned i = 0; i < n; i++) {
		uint64_t a, s;
		uint32_t t;

		memcpy(&a, bp + BP_E820_TABLE + 20 * i, 8);
		memcpy(&s, bp + BP_E820_TABLE + 20 * i + 8, 8);
		memcpy(&t, bp + BP_E820_TABLE + 20 * i + 16, 4);
		assert_int_equal(a, want[i].addr);
		assert_int_equal(s, want[i].size);
		assert_int_equal(t, want[i].type);
	}
	free(img);
}

static void test_e820(void **state)
{
	struct env *e = *state;
	struct boot_e820_entry m[BOOT_E820_MAX];
	unsigned n = boot_e820_build(&e->gm, m, BOOT_E820_MAX);

	assert_int_equal(n, 4);
	assert_int_equal(m[0].addr, 0);
	assert_int_equal(m[0].size, LAYOUT_EBDA_START);
	assert_int_equal(m[0].type, BOOT_E820_RAM);
	assert_int_equal(m[1].addr, LAYOUT_EBDA_START);
	assert_int_equal(m[1].type, BOOT_E820_RESERVED);
	assert_int_equal(m[2].addr, LAYOUT_ACPI_GPA);
	assert_int_equal(m[2].size, LAYOUT_ACPI_MAX);
	assert_int_equal(m[2].type, BOOT_E820_ACPI);
	assert_int_equal(m[3].addr, 0x100000);
	assert_int_equal(m[3].size, RAM - 0x100000);
	assert_int_equal(m[3].type, BOOT_E820_RAM);

	/* RAM above the MMIO hole (sparse mapping, nothing touched). */
	struct guest_mem big;
	assert_int_equal(guest_mem_init(&big, LAYOUT_MMIO_HOLE_START + 256 * MIB, 0), 0);
	n = boot_e820_build(&big, m, BOOT_E820_MAX);
	assert_int_equal(n, 5);
	assert_int_equal(m[3].addr + m[3].size, LAYOUT_MMIO_HOLE_START);
	assert_int_equal(m[4].addr, LAYOUT_HIGH_RAM_START);
	assert_int_equal(m[4].size, 256 * MIB);
	assert_int_equal(m[4].type, BOOT_E820_RAM);
	/* A too-small table is filled, not overrun. */
	assert_int_equal(boot_e820_build(&big, m, 2), 2);
	guest_mem_destroy(&big);
}

/* A minimal ELF64 PVH kernel: two PT_LOADs and a note segment. */
#define ELF_LOAD0 0x1000000ull
#define ELF_LOAD1 0x1200000ull
#define ELF_SIZE 0x3000

static uint8_t *make_elf(size_t *len, unsigned *phoff_out)
{
	uint8_t *img = calloc(1, ELF_SIZE);
	unsigned phoff = 64;
	uint8_t *ph;

	assert_non_null(img);
	memcpy(img,
	       "\x7f"
	       "ELF",
	       4);
	img[4] = 2;
	img[5] = 1;
	img[6] = 1;
	put16(img + 16, 2);
	put16(img + 18, 62);
	put32(img + 20, 1);
	put64(img + 24, 0xffffffff81000000ull);
	put64(img + 32, phoff);
	put16(img + 52, 64);
	put16(img + 54, 56);
	put16(img + 56, 3);
	/* PT_LOAD 0: file 0x1000..0x2000 -> 0x1000000, memsz 0x1800 (bss tail). */
	ph = img + phoff;
	put32(ph, 1);
	put64(ph + 8, 0x1000);
	put64(ph + 16, 0xffffffff81000000ull);
	put64(ph + 24, ELF_LOAD0);
	put64(ph + 32, 0x1000);
	put64(ph + 40, 0x1800);
	/* PT_LOAD 1: file 0x2000..0x2800 -> 0x1200000 */
	ph += 56;
	put32(ph, 1);
	put64(ph + 8, 0x2000);
	put64(ph + 24, ELF_LOAD1);
	put64(ph + 32, 0x800);
	put64(ph + 40, 0x800);
	/* PT_NOTE at 0x400: a GNU build-id note, then the Xen PVH entry note. */
	ph += 56;
	put32(ph, 4);
	put64(ph + 8, 0x400);
	put64(ph + 32, 16 + 8 + 12 + 4 + 8);
	uint8_t *n = img + 0x400;
	put32(n, 4);
	put32(n + 4, 8);
	put32(n + 8, 3);
	memcpy(n + 12, "GNU", 4);
	n += 24;
	put32(n, 4);
	put32(n + 4, 8);
	put32(n + 8, 18);
	memcpy(n + 12, "Xen", 4);
	put64(n + 16, ELF_LOAD0 + 0x10);
	for (unsigned i = 0x1000; i < 0x2800; i++)
		img[i] = (uint8_t)(i * 13);
	*len = ELF_SIZE;
	if (phoff_out)
		*phoff_out = phoff;
	return img;
}

static void test_pvh_load(void **state)
{
	struct env *e = *state;
	char kpath[128], ipath[128];
	size_t len;
	uint8_t *img = make_elf(&len, NULL);
	uint8_t initrd[5000];
	struct boot_result r;
	struct boot_config cfg = {.kernel_path = kpath,
				  .initrd_path = ipath,
				  .cmdline = "console=ttyS0",
				  .rsdp_gpa = LAYOUT_ACPI_GPA};

	memset(initrd, 0x77, sizeof(initrd));
	snprintf(kpath, sizeof(kpath), "%s/vmlinux", e->dir);
	snprintf(ipath, sizeof(ipath), "%s/initrd2", e->dir);
	write_file(kpath, img, len);
	write_file(ipath, initrd, sizeof(initrd));
	/* Dirty the bss area so zeroing is visible. */
	memset(guest_mem_ptr(&e->gm, ELF_LOAD0, 0x1800), 0xaa, 0x1800);

	assert_int_equal(boot_load(&e->gm, &cfg, &r), 0);
	assert_int_equal(r.kind, BOOT_KIND_PVH);
	assert_int_equal(r.kernel_start, ELF_LOAD0);
	assert_int_equal(r.kernel_end, ELF_LOAD1 + 0x800);
	assert_memory_equal(gpa(e, ELF_LOAD0, 0x1000), img + 0x1000, 0x1000);
	assert_memory_equal(gpa(e, ELF_LOAD1, 0x800), img + 0x2000, 0x800);
	static const uint8_t zero[0x800];
	assert_memory_equal(gpa(e, ELF_LOAD0 + 0x1000, 0x800), zero, 0x800);

	assert_false(r.cpu.long_mode);
	assert_int_equal(r.cpu.rip, ELF_LOAD0 + 0x10);
	assert_int_equal(r.cpu.rbx, LAYOUT_PVH_START_INFO_GPA);
	assert_int_equal(r.cpu.cr0 & 0x80000001, 1);
	assert_int_equal(r.cpu.code_selector, BOOT_GDT_CS32);
	uint64_t cs;
	memcpy(&cs, gpa(e, LAYOUT_GDT_GPA + BOOT_GDT_CS32, 8), 8);
	assert_true(cs & (1ull << 54)); /* D bit: 32-bit */
	assert_false(cs & (1ull << 53));

	const struct pvh_start_info *si =
		(const void *)gpa(e, LAYOUT_PVH_START_INFO_GPA, sizeof(*si));
	assert_int_equal(si->magic, 0x336ec578);
	assert_int_equal(si->version, 1);
	assert_int_equal(si->rsdp_paddr, LAYOUT_ACPI_GPA);
	assert_string_equal((const char *)gpa(e, si->cmdline_paddr, 14), "console=ttyS0");
	assert_int_equal(si->nr_modules, 1);
	const struct pvh_modlist_entry *mod = (const void *)gpa(e, si->modlist_paddr, sizeof(*mod));
	assert_int_equal(mod->size, sizeof(initrd));
	assert_int_equal(mod->paddr % 4096, 0);
	assert_true(mod->paddr >= r.kernel_end);
	assert_memory_equal(gpa(e, mod->paddr, sizeof(initrd)), initrd, sizeof(initrd));
	assert_int_equal(si->memmap_entries, 4);
	const struct pvh_memmap_entry *mm =
		(const void *)gpa(e, si->memmap_paddr, si->memmap_entries * sizeof(*mm));
	assert_int_equal(mm[0].addr, 0);
	assert_int_equal(mm[2].type, BOOT_E820_ACPI);
	assert_int_equal(mm[3].addr + mm[3].size, RAM);
	free(img);
}

static void expect_reject(struct env *e, const uint8_t *img, size_t len, const char *msg)
{
	struct boot_config cfg = {.cmdline = "x"};
	struct boot_result r;

	err_clear();
	assert_true(boot_load_image(&e->gm, img, len, "k", &cfg, &r) < 0);
	if (!strstr(err_msg(), msg))
		fail_msg("error '%s' does not mention '%s'", err_msg(), msg);
}

static void test_bzimage_hostile(void **state)
{
	struct env *e = *state;
	size_t len;
	uint8_t *img = make_bzimage(&len), *t = malloc(len);

	assert_non_null(t);
	expect_reject(e, img, 0x250, "truncated");
	expect_reject(e, img, 0x10, "not a Linux bzImage");

	memcpy(t, img, len);
	t[HDR_SETUP_SECTS] = 0xff;
	expect_reject(e, t, len, "setup_sects");

	memcpy(t, img, len);
	put32(t + HDR_SYSSIZE, 0xffffffff);
	expect_reject(e, t, len, "syssize");
	put32(t + HDR_SYSSIZE, 0);
	expect_reject(e, t, len, "syssize");

	memcpy(t, img, len);
	put16(t + HDR_VERSION, 0x0206);
	expect_reject(e, t, len, "2.12");

	memcpy(t, img, len);
	t[HDR_XLOADFLAGS] = 0;
	expect_reject(e, t, len, "64-bit");

	memcpy(t, img, len);
	put32(t + HDR_INIT_SIZE, 0xffffffff);
	expect_reject(e, t, len, "kernel too large for 64M");

	memcpy(t, img, len);
	t[HDR_RELOCATABLE] = 0;
	put64(t + HDR_PREF_ADDRESS, 0xfffffffffffff000ull);
	expect_reject(e, t, len, "kernel too large");
	put64(t + HDR_PREF_ADDRESS, 0);
	expect_reject(e, t, len, "not relocatable");
	/* ... but a fixed address in RAM is honoured. */
	put64(t + HDR_PREF_ADDRESS, 0x2000000);
	{
		struct boot_config cfg = {0};
		struct boot_result r;
		assert_int_equal(boot_load_image(&e->gm, t, len, "k", &cfg, &r), 0);
		assert_int_equal(r.kernel_start, 0x2000000);
		assert_int_equal(r.cpu.rip, 0x2000200);
	}

	/* Command line longer than cmdline_size. */
	memcpy(t, img, len);
	put32(t + HDR_CMDLINE_SIZE, 0);
	expect_reject(e, t, len, "command line");

	/* A jump byte pointing far past the header must not read past the file. */
	memcpy(t, img, len);
	t[HDR_JUMP + 1] = 0xff;
	{
		struct boot_config cfg = {0};
		struct boot_result r;
		assert_int_equal(boot_load_image(&e->gm, t, len, "k", &cfg, &r), 0);
		assert_int_equal(boot_load_image(&e->gm, t, HDR_MIN_SIZE, "k", &cfg, &r) < 0, 1);
	}
	free(t);
	free(img);
}

static void test_bzimage_initrd_no_fit(void **state)
{
	struct env *e = *state;
	char kpath[128], ipath[128];
	size_t len;
	uint8_t *img = make_bzimage(&len);
	static uint8_t initrd[8192];
	struct boot_result r;
	struct boot_config cfg = {.kernel_path = kpath, .initrd_path = ipath};

	/* initrd_addr_max right at the kernel end: nowhere to put it. */
	put32(img + HDR_INITRD_ADDR_MAX, LAYOUT_KERNEL_GPA + 0x400000 + 4095);
	snprintf(kpath, sizeof(kpath), "%s/bz2", e->dir);
	snprintf(ipath, sizeof(ipath), "%s/rd2", e->dir);
	write_file(kpath, img, len);
	write_file(ipath, initrd, sizeof(initrd));
	assert_int_equal(boot_load(&e->gm, &cfg, &r), -ENOSPC);
	assert_non_null(strstr(err_msg(), "initrd does not fit"));

	write_file(ipath, initrd, 0);
	assert_int_equal(boot_load(&e->gm, &cfg, &r), -EINVAL);
	assert_non_null(strstr(err_msg(), "is empty"));

	snprintf(kpath, sizeof(kpath), "%s/missing", e->dir);
	assert_true(boot_load(&e->gm, &cfg, &r) < 0);
	assert_non_null(strstr(err_msg(), "cannot open kernel"));
	free(img);
}

static void test_elf_hostile(void **state)
{
	struct env *e = *state;
	size_t len;
	unsigned phoff;
	uint8_t *img = make_elf(&len, &phoff), *t = malloc(len);
	uint8_t *ph0 = t + phoff, *ph1 = t + phoff + 56, *note = t + 0x400 + 24;

	assert_non_null(t);
#define RESET() memcpy(t, img, len)
	RESET();
	expect_reject(e, t, 40, "not a Linux bzImage or an ELF kernel");
	t[4] = 1; /* ELFCLASS32 */
	expect_reject(e, t, len, "not a Linux bzImage or an ELF kernel");

	RESET();
	put16(t + 56, 0xffff);
	expect_reject(e, t, len, "program headers");
	RESET();
	put64(t + 32, 0xfffffffffffffff0ull);
	expect_reject(e, t, len, "program headers");
	RESET();
	put16(t + 54, 32);
	expect_reject(e, t, len, "program headers");

	/* Overlapping segments. */
	RESET();
	put64(ph1 + 24, ELF_LOAD0 + 0x1000);
	expect_reject(e, t, len, "overlap");
	/* Outside RAM. */
	RESET();
	put64(ph1 + 24, RAM);
	expect_reject(e, t, len, "kernel too large for 64M");
	RESET();
	put64(ph1 + 24, 0xfffffffffffff000ull);
	expect_reject(e, t, len, "kernel too large");
	RESET();
	put64(ph1 + 40, 0xffffffffffffffffull);
	put64(ph1 + 24, 0x2000000);
	expect_reject(e, t, len, "kernel too large");
	/* Low memory belongs to the loader. */
	RESET();
	put64(ph1 + 24, 0x8000);
	expect_reject(e, t, len, "above 1 MiB");
	/* p_filesz > p_memsz */
	RESET();
	put64(ph0 + 40, 0x800);
	expect_reject(e, t, len, "p_filesz > p_memsz");
	/* Segment data past EOF. */
	RESET();
	put64(ph1 + 8, len - 0x10);
	expect_reject(e, t, len, "truncated");
	RESET();
	put64(ph1 + 8, 0xfffffffffffff000ull);
	expect_reject(e, t, len, "truncated");
	/* Absurd note sizes. */
	RESET();
	put32(note, 0xffffffff);
	expect_reject(e, t, len, "malformed ELF note");
	RESET();
	put32(note + 4, 0xfffffffd);
	expect_reject(e, t, len, "malformed ELF note");
	RESET();
	put32(note + 4, 2);
	expect_reject(e, t, len, "too short");
	/* Note segment outside the file. */
	RESET();
	put64(t + phoff + 112 + 32, 0xffffffffffffff00ull);
	expect_reject(e, t, len, "outside the file");
	/* No Xen note. */
	RESET();
	memcpy(note + 12, "Xe!", 4);
	expect_reject(e, t, len, "PVH entry note");
	RESET();
	put32(note + 8, 17);
	expect_reject(e, t, len, "PVH entry note");
	/* 8-byte aligned notes (p_align 8) are parsed with 8-byte padding. */
	RESET();
	{
		uint8_t *nph = t + phoff + 112, *n8 = t + 0x600;
		struct boot_config cfg = {0};
		struct boot_result r;

		put64(nph + 8, 0x600);
		put64(nph + 32, 12 + 4 + 4 + 8 + 12 + 8 + 8);
		put64(nph + 48, 8);
		/* GNU note with a 4-byte name padded to 8, then the Xen note. */
		put32(n8, 4);
		put32(n8 + 4, 4);
		put32(n8 + 8, 5);
		memcpy(n8 + 12, "GNU", 4);
		n8 += 12 + 8 + 8;
		put32(n8, 4);
		put32(n8 + 4, 8);
		put32(n8 + 8, 18);
		memcpy(n8 + 12, "Xen", 4);
		put64(n8 + 20, ELF_LOAD0 + 0x20);
		assert_int_equal(boot_load_image(&e->gm, t, len, "k", &cfg, &r), 0);
		assert_int_equal(r.cpu.rip, ELF_LOAD0 + 0x20);
	}
	/* Entry outside the loaded segments. */
	RESET();
	put64(note + 16, 0x3000000);
	expect_reject(e, t, len, "not inside a loaded segment");
	/* Still fine after all that. */
	RESET();
	{
		struct boot_config cfg = {0};
		struct boot_result r;
		assert_int_equal(boot_load_image(&e->gm, t, len, "k", &cfg, &r), 0);
	}
#undef RESET
	free(t);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aml_pkglen),
		cmocka_unit_test(test_aml_pkglen_nested),
		cmocka_unit_test(test_aml_integers),
		cmocka_unit_test(test_aml_names),
		cmocka_unit_test(test_aml_objects),
		cmocka_unit_test_setup_teardown(test_acpi_rsdp_xsdt, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_fadt, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_dsdt, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_madt, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_iasl, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_acpiexec, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_e820, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_load, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_hostile, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_initrd_no_fit, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_pvh_load, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_elf_hostile, env_setup, env_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
