// SPDX-License-Identifier: GPL-2.0-only
/*
 * ACPI tables built at VM start. Everything is assembled in a host buffer the
 * size of the ACPI window and copied to LAYOUT_ACPI_GPA in one write.
 *
 *   +0x00  RSDP (rev 2)           +0x40  FACS (64-byte aligned)
 *   then DSDT, FADT, MADT, XSDT, RSDT, each 16-byte aligned.
 */
#include "boot/acpi.h"
#include "boot/acpi_tables.h"
#include "boot/aml.h"
#include "lib/err.h"
#include "lib/util.h"
#include "vid/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ACPI_OEM_ID "VIRIDN"
#define ACPI_OEM_TABLE_ID "VIRIDIAN"
#define ACPI_CREATOR_ID "VRDN"

/* The 4-byte/2-byte/4-byte PM blocks the devices layer decodes. */
#define ACPI_PM1_EVT_LEN 4
#define ACPI_PM1_CNT_LEN 2
#define ACPI_PM_TMR_LEN 4
#define ACPI_RESET_VALUE 6

uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return (uint8_t)(0 - sum);
}

static void acpi_header_init(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = 1;
	h->checksum = 0;
}

static void acpi_header_sum(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = acpi_checksum(h, h->length);
}

static struct acpi_gas gas_io(uint16_t port, uint8_t bits, uint8_t access)
{
	struct acpi_gas g = {
		.space_id = 1,
		.bit_width = bits,
		.bit_offset = 0,
		.access_size = access,
		.address = port,
	};
	return g;
}

static void dsdt_legacy_hid(struct aml_buf *b, const char *hid)
{
	aml_name_decl(b, "_HID");
	aml_eisaid(b, hid);
}

static void dsdt_sta_present(struct aml_buf *b)
{
	/* Present, enabled, shown in UI, functioning. */
	size_t m = aml_method_begin(b, "_STA", 0, false);

	aml_return(b);
	aml_int(b, 0x0f);
	aml_end(b, m);
}

int acpi_dsdt_body(struct aml_buf *b)
{
	size_t sb, dev, res, pkg, vmod;

	sb = aml_scope_begin(b, "\\_SB");

	/* COM1: 16550 UART. */
	dev = aml_device_begin(b, "COM1");
	dsdt_legacy_hid(b, "PNP0501");
	aml_name_decl(b, "_UID");
	aml_int(b, 1);
	dsdt_sta_present(b);
	aml_name_decl(b, "_CRS");
	res = aml_restemplate_begin(b);
	aml_res_io(b, LAYOUT_COM1_PORT, LAYOUT_COM1_PORT, 1, 8);
	aml_res_irq_noflags(b, 1u << LAYOUT_COM1_IRQ);
	aml_restemplate_end(b, res);
	aml_end(b, dev);

	/* CMOS RTC. */
	dev = aml_device_begin(b, "RTC");
	dsdt_legacy_hid(b, "PNP0B00");
	aml_name_decl(b, "_CRS");
	res = aml_restemplate_begin(b);
	aml_res_io(b, LAYOUT_RTC_PORT, LAYOUT_RTC_PORT, 1, 2);
	aml_res_irq_noflags(b, 1u << LAYOUT_RTC_IRQ);
	aml_restemplate_end(b, res);
	aml_end(b, dev);

	/* i8042 keyboard controller. */
	dev = aml_device_begin(b, "PS2K");
	dsdt_legacy_hid(b, "PNP0303");
	dsdt_sta_present(b);
	aml_name_decl(b, "_CRS");
	res = aml_restemplate_begin(b);
	aml_res_io(b, LAYOUT_I8042_DATA_PORT, LAYOUT_I8042_DATA_PORT, 1, 1);
	aml_res_io(b, LAYOUT_I8042_CMD_PORT, LAYOUT_I8042_CMD_PORT, 1, 1);
	aml_res_irq_noflags(b, 1u << LAYOUT_I8042_KBD_IRQ);
	aml_restemplate_end(b, res);
	aml_end(b, dev);

	/*
	 * VMBus (hyperv-interface-and-vmbus.md §5): a module device parent and
	 * the bus itself with _HID "VMBUS" and a legacy IRQ descriptor in _CRS
	 * (Linux walks it and fails the probe without one).
	 */
	vmod = aml_device_begin(b, "VMOD");
	aml_name_decl(b, "_HID");
	aml_string(b, "ACPI0004");
	aml_name_decl(b, "_UID");
	aml_int(b, 0);
	dev = aml_device_begin(b, "VMBS");
	aml_name_decl(b, "_HID");
	aml_string(b, "VMBUS");
	aml_name_decl(b, "_UID");
	aml_int(b, 0);
	dsdt_sta_present(b);
	aml_name_decl(b, "_CRS");
	res = aml_restemplate_begin(b);
	aml_res_irq_noflags(b, 1u << LAYOUT_VMBUS_IRQ);
	aml_restemplate_end(b, res);
	aml_end(b, dev);
	aml_end(b, vmod);

	aml_end(b, sb);

	/* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved. */
	aml_name_decl(b, "\\_S5");
	pkg = aml_package_begin(b, 4);
	aml_int(b, LAYOUT_ACPI_S5_SLP_TYP);
	aml_int(b, LAYOUT_ACPI_S5_SLP_TYP);
	aml_int(b, 0);
	aml_int(b, 0);
	aml_end(b, pkg);

	return b->error;
}

struct acpi_builder {
	uint8_t *buf;
	size_t len; /* bytes used */
	size_t cap;
};

/* Reserves len bytes aligned to align; returns the offset or SIZE_MAX when full. */
static size_t acpi_alloc(struct acpi_builder *a, size_t len, size_t align)
{
	size_t off = ALIGN_UP(a->len, align);

	if (off > a->cap || len > a->cap - off)
		return SIZE_MAX;
	a->len = off + len;
	return off;
}

static uint32_t acpi_pick_ioapic_id(const struct acpi_config *cfg)
{
	/* ID = ncpus unless a vCPU already uses it; IOAPIC IDs are 8-bit. */
	for (uint32_t id = cfg->ncpus; id < cfg->ncpus + 256; id++) {
		bool used = false;

		for (unsigned i = 0; i < cfg->ncpus; i++)
			used |= cfg->apic_ids[i] == (id & 0xff);
		if (!used)
			return id & 0xff;
	}
	/* Every 8-bit value is a CPU's: the IOAPIC and LAPIC ID spaces are separate anyway. */
	return cfg->ncpus & 0xff;
}

static size_t acpi_build_madt(struct acpi_builder *a, const struct acpi_config *cfg)
{
	size_t len = sizeof(struct acpi_madt);
	size_t off;
	uint8_t *p;
	struct acpi_madt *madt;

	for (unsigned i = 0; i < cfg->ncpus; i++)
		len += cfg->apic_ids[i] < 0xff ? sizeof(struct acpi_madt_lapic)
					       : sizeof(struct acpi_madt_x2apic);
	len += sizeof(struct acpi_madt_ioapic) + 2 * sizeof(struct acpi_madt_iso) +
	       sizeof(struct acpi_madt_lapic_nmi);
	off = acpi_alloc(a, len, 16);
	if (off == SIZE_MAX)
		return off;
	madt = (struct acpi_madt *)(a->buf + off);
	acpi_header_init(&madt->h, "APIC", (uint32_t)len, 5);
	madt->lapic_address = (uint32_t)LAYOUT_LAPIC_BASE;
	madt->flags = ACPI_MADT_PCAT_COMPAT;
	p = a->buf + off + sizeof(*madt);

	for (unsigned i = 0; i < cfg->ncpus; i++) {
		if (cfg->apic_ids[i] < 0xff) {
			struct acpi_madt_lapic e = {
				.type = ACPI_MADT_LAPIC,
				.length = sizeof(e),
				.processor_uid = (uint8_t)i,
				.apic_id = (uint8_t)cfg->apic_ids[i],
				.flags = 1,
			};
			memcpy(p, &e, sizeof(e));
			p += sizeof(e);
		} else {
			struct acpi_madt_x2apic e = {
				.type = ACPI_MADT_X2APIC,
				.length = sizeof(e),
				.x2apic_id = cfg->apic_ids[i],
				.flags = 1,
				.processor_uid = i,
			};
			memcpy(p, &e, sizeof(e));
			p += sizeof(e);
		}
	}
	struct acpi_madt_ioapic io = {
		.type = ACPI_MADT_IOAPIC,
		.length = sizeof(io),
		.ioapic_id = (uint8_t)acpi_pick_ioapic_id(cfg),
		.address = (uint32_t)LAYOUT_IOAPIC_BASE,
		.gsi_base = 0,
	};
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);
	/* The PIT's IRQ 0 is wired to IOAPIC pin 2, as on every PC. */
	struct acpi_madt_iso iso0 = {
		.type = ACPI_MADT_ISO,
		.length = sizeof(iso0),
		.bus = 0,
		.source = 0,
		.gsi = 2,
		.flags = 0,
	};
	memcpy(p, &iso0, sizeof(iso0));
	p += sizeof(iso0);
	/* The SCI is level-triggered, active high. */
	struct acpi_madt_iso iso9 = {
		.type = ACPI_MADT_ISO,
		.length = sizeof(iso9),
		.bus = 0,
		.source = LAYOUT_ACPI_SCI_IRQ,
		.gsi = LAYOUT_ACPI_SCI_IRQ,
		.flags = ACPI_MPS_ACTIVE_HIGH | ACPI_MPS_LEVEL,
	};
	memcpy(p, &iso9, sizeof(iso9));
	p += sizeof(iso9);
	struct acpi_madt_lapic_nmi nmi = {
		.type = ACPI_MADT_LAPIC_NMI,
		.length = sizeof(nmi),
		.processor_uid = 0xff,
		.flags = 0,
		.lint = 1,
	};
	memcpy(p, &nmi, sizeof(nmi));
	acpi_header_sum(&madt->h);
	return off;
}

static void acpi_build_fadt(struct acpi_fadt *f, uint64_t facs, uint64_t dsdt)
{
	memset(f, 0, sizeof(*f));
	acpi_header_init(&f->h, "FACP", sizeof(*f), 6);
	f->minor_version = 0;
	/* The FACS is below 4 GiB: only FIRMWARE_CTRL, X_FIRMWARE_CTRL must then be 0. */
	f->firmware_ctrl = (uint32_t)facs;
	f->dsdt = (uint32_t)dsdt;
	f->x_dsdt = dsdt;
	f->preferred_pm_profile = 0; /* unspecified */
	f->sci_int = LAYOUT_ACPI_SCI_IRQ;
	/* SMI_CMD 0: no mode switch, the platform is always in ACPI mode. */
	f->smi_cmd = 0;
	f->pm1a_evt_blk = LAYOUT_ACPI_PM1A_EVT;
	f->pm1a_cnt_blk = LAYOUT_ACPI_PM1A_CNT;
	f->pm_tmr_blk = LAYOUT_ACPI_PM_TMR;
	f->pm1_evt_len = ACPI_PM1_EVT_LEN;
	f->pm1_cnt_len = ACPI_PM1_CNT_LEN;
	f->pm_tmr_len = ACPI_PM_TMR_LEN;
	/* No C2/C3: latencies above the limits mean "not supported". */
	f->p_lvl2_lat = 101;
	f->p_lvl3_lat = 1001;
	f->century = 0x32;
	f->iapc_boot_arch = ACPI_IAPC_LEGACY_DEVICES | ACPI_IAPC_8042 | ACPI_IAPC_VGA_NOT_PRESENT;
	f->flags = ACPI_FADT_WBINVD | ACPI_FADT_PROC_C1 | ACPI_FADT_SLP_BUTTON | ACPI_FADT_FIX_RTC |
		   ACPI_FADT_RESET_REG_SUP;
	if (LAYOUT_ACPI_PM_TMR_32BIT)
		f->flags |= ACPI_FADT_TMR_VAL_EXT;
	f->reset_reg = gas_io(LAYOUT_RESET_PORT, 8, 1);
	f->reset_value = ACPI_RESET_VALUE;
	f->x_pm1a_evt_blk = gas_io(LAYOUT_ACPI_PM1A_EVT, ACPI_PM1_EVT_LEN * 8, 0);
	f->x_pm1a_cnt_blk = gas_io(LAYOUT_ACPI_PM1A_CNT, ACPI_PM1_CNT_LEN * 8, 2);
	f->x_pm_tmr_blk = gas_io(LAYOUT_ACPI_PM_TMR, ACPI_PM_TMR_LEN * 8, 3);
	memcpy(&f->hypervisor_vendor_id, "VIRIDIAN", 8);
	acpi_header_sum(&f->h);
}

int acpi_tables_build(struct guest_mem *gm, const struct acpi_config *cfg, uint64_t *rsdp_gpa)
{
	struct acpi_builder a = {0};
	struct aml_buf aml;
	size_t dsdt_off, fadt_off, madt_off, xsdt_off, rsdt_off, dsdt_len;
	const uint64_t base = LAYOUT_ACPI_GPA;
	int ret;

	if (!cfg->ncpus || cfg->ncpus > ACPI_MAX_CPUS) {
		err_set("ACPI: %u vCPUs is out of range (1..%u)", cfg->ncpus, ACPI_MAX_CPUS);
		return -EINVAL;
	}
	a.cap = LAYOUT_ACPI_MAX;
	a.buf = calloc(1, a.cap);
	if (!a.buf) {
		err_set("ACPI: out of memory");
		return -ENOMEM;
	}

	aml_buf_init(&aml);
	ret = acpi_dsdt_body(&aml);
	if (ret) {
		err_set("ACPI: cannot build the DSDT (%s)", strerror(-ret));
		goto out;
	}

	ret = -E2BIG;
	acpi_alloc(&a, sizeof(struct acpi_rsdp), 16);
	if (acpi_alloc(&a, sizeof(struct acpi_facs), 64) != ACPI_OFF_FACS)
		goto full;
	dsdt_len = sizeof(struct acpi_header) + aml.len;
	dsdt_off = acpi_alloc(&a, dsdt_len, 16);
	fadt_off = acpi_alloc(&a, sizeof(struct acpi_fadt), 16);
	if (dsdt_off == SIZE_MAX || fadt_off == SIZE_MAX)
		goto full;
	madt_off = acpi_build_madt(&a, cfg);
	xsdt_off = acpi_alloc(&a, sizeof(struct acpi_header) + 2 * 8, 16);
	rsdt_off = acpi_alloc(&a, sizeof(struct acpi_header) + 2 * 4, 16);
	if (madt_off == SIZE_MAX || xsdt_off == SIZE_MAX || rsdt_off == SIZE_MAX)
		goto full;

	/* FACS */
	struct acpi_facs *facs = (struct acpi_facs *)(a.buf + ACPI_OFF_FACS);
	memcpy(facs->signature, "FACS", 4);
	facs->length = sizeof(*facs);
	facs->version = 2;

	/* DSDT: revision 2 so AML integers are 64 bits wide. */
	struct acpi_header *dsdt = (struct acpi_header *)(a.buf + dsdt_off);
	acpi_header_init(dsdt, "DSDT", (uint32_t)dsdt_len, 2);
	memcpy(a.buf + dsdt_off + sizeof(*dsdt), aml.data, aml.len);
	acpi_header_sum(dsdt);

	acpi_build_fadt((struct acpi_fadt *)(a.buf + fadt_off), base + ACPI_OFF_FACS,
			base + dsdt_off);

	uint64_t xe[2] = {base + fadt_off, base + madt_off};
	struct acpi_header *xsdt = (struct acpi_header *)(a.buf + xsdt_off);
	acpi_header_init(xsdt, "XSDT", sizeof(*xsdt) + sizeof(xe), 1);
	memcpy(a.buf + xsdt_off + sizeof(*xsdt), xe, sizeof(xe));
	acpi_header_sum(xsdt);

	uint32_t re[2] = {(uint32_t)xe[0], (uint32_t)xe[1]};
	struct acpi_header *rsdt = (struct acpi_header *)(a.buf + rsdt_off);
	acpi_header_init(rsdt, "RSDT", sizeof(*rsdt) + sizeof(re), 1);
	memcpy(a.buf + rsdt_off + sizeof(*rsdt), re, sizeof(re));
	acpi_header_sum(rsdt);

	struct acpi_rsdp *rsdp = (struct acpi_rsdp *)(a.buf + ACPI_OFF_RSDP);
	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, ACPI_OEM_ID, 6);
	rsdp->revision = 2;
	rsdp->rsdt_address = (uint32_t)(base + rsdt_off);
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt_address = base + xsdt_off;
	rsdp->checksum = acpi_checksum(rsdp, 20);
	rsdp->ext_checksum = acpi_checksum(rsdp, sizeof(*rsdp));

	ret = guest_mem_write(gm, base, a.buf, a.len);
	if (ret) {
		err_set("ACPI: tables at 0x%llx do not fit in guest memory",
			(unsigned long long)base);
		goto out;
	}
	*rsdp_gpa = base + ACPI_OFF_RSDP;
	ret = 0;
	goto out;
full:
	err_set("ACPI: tables exceed the %llu-byte ACPI area (too many vCPUs?)",
		(unsigned long long)LAYOUT_ACPI_MAX);
out:
	aml_buf_free(&aml);
	free(a.buf);
	return ret;
}
