/*
 * ACPI discovery: RSDP (from the PVH start info or the BIOS area scan), XSDT/RSDT, FADT,
 * MADT, DSDT/SSDT, and \_S5 from the AML bytes. Tables come from the host: every length,
 * offset and address is checked before it is followed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi.h"
#include "arch/x86.h"
#include "lib/printf.h"
#include "lib/string.h"

#define MAPPED_LIMIT (4ull << 30) /* identity map set up by start.S */
#define TABLE_MAX_LEN (4u << 20)

struct acpi_info acpi;

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void problem(const char *fmt, ...)
{
	va_list ap;

	if (acpi.problem[0])
		return;
	va_start(ap, fmt);
	vsnprintf(acpi.problem, sizeof(acpi.problem), fmt, ap);
	va_end(ap);
}

static bool mapped(uint64_t addr, uint64_t len)
{
	return addr && len <= MAPPED_LIMIT && addr <= MAPPED_LIMIT - len;
}

static uint8_t sum8(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	for (size_t i = 0; i < len; i++)
		s += b[i];
	return s;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void rd_gas(const uint8_t *p, struct acpi_gas *g)
{
	g->space = p[0];
	g->bit_width = p[1];
	g->bit_offset = p[2];
	g->access_size = p[3];
	g->addr = rd64(p + 4);
}

/* Returns the table's header if it is mapped, sane in length and its checksum is right. */
static const struct acpi_header *table_check(uint64_t addr, const char *want_sig)
{
	const struct acpi_header *h;
	uint32_t len;

	if (!mapped(addr, sizeof(*h))) {
		problem("%s at %#lx is outside the first 4 GiB", want_sig, (unsigned long)addr);
		return NULL;
	}
	h = (const struct acpi_header *)(uintptr_t)addr;
	len = h->length;
	char sig[5] = {h->sig[0], h->sig[1], h->sig[2], h->sig[3], 0};

	for (int i = 0; i < 4; i++)
		if (sig[i] < 0x20 || sig[i] > 0x7e)
			sig[i] = '?';
	if (want_sig && memcmp(h->sig, want_sig, 4) != 0) {
		problem("table at %#lx has signature '%s', expected %s", (unsigned long)addr, sig,
			want_sig);
		return NULL;
	}
	if (len < sizeof(*h) || len > TABLE_MAX_LEN || !mapped(addr, len)) {
		problem("%s at %#lx has bad length %u", sig, (unsigned long)addr, len);
		return NULL;
	}
	if (sum8(h, len) != 0) {
		problem("%s at %#lx has a bad checksum", sig, (unsigned long)addr);
		return NULL;
	}
	return h;
}

static bool rsdp_valid(uint64_t addr)
{
	const uint8_t *p = (const uint8_t *)(uintptr_t)addr;
	uint32_t len;

	if (!mapped(addr, 20) || memcmp(p, "RSD PTR ", 8) != 0 || sum8(p, 20) != 0)
		return false;
	if (p[15] >= 2) {
		len = rd32(p + 20);
		if (len < 36 || len > 4096 || !mapped(addr, len) || sum8(p, len) != 0)
			return false;
	}
	return true;
}

static uint64_t rsdp_find(uint64_t hint)
{
	if (hint) {
		if (rsdp_valid(hint))
			return hint;
		problem("start_info rsdp_paddr %#lx is not a valid RSDP", (unsigned long)hint);
	}
	/* ACPI spec 5.2.5.1: 16-byte boundaries in the BIOS read-only area. */
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
		if (rsdp_valid(a))
			return a;
	return 0;
}

/* AML integer constant (ZeroOp, OneOp, OnesOp, Byte/Word/DWordPrefix); bytes used or 0. */
static size_t aml_int(const uint8_t *p, size_t avail, uint64_t *v)
{
	if (!avail)
		return 0;
	switch (p[0]) {
	case 0x00:
		*v = 0;
		return 1;
	case 0x01:
		*v = 1;
		return 1;
	case 0xff:
		*v = ~0ull;
		return 1;
	case 0x0a:
		if (avail < 2)
			return 0;
		*v = p[1];
		return 2;
	case 0x0b:
		if (avail < 3)
			return 0;
		*v = (uint64_t)p[1] | ((uint64_t)p[2] << 8);
		return 3;
	case 0x0c:
		if (avail < 5)
			return 0;
		*v = rd32(p + 1);
		return 5;
	}
	return 0;
}

/*
 * Look for Name(\_S5, Package() { SLP_TYPa, SLP_TYPb, ... }) in an AML body:
 * NameOp (0x08), optional root prefix '\', "_S5_", PackageOp (0x12), PkgLength,
 * NumElements, then integer elements.
 */
static bool aml_find_s5(const uint8_t *aml, size_t len)
{
	for (size_t i = 1; i + 4 < len; i++) {
		size_t j, nlen;
		uint64_t a, b;

		if (aml[i] != '_' || memcmp(aml + i, "_S5_", 4) != 0)
			continue;
		if (!(aml[i - 1] == 0x08 || (aml[i - 1] == '\\' && i >= 2 && aml[i - 2] == 0x08)))
			continue;
		j = i + 4;
		if (j + 2 > len || aml[j] != 0x12)
			continue;
		j++;
		j += 1 + (aml[j] >> 6); /* PkgLength: lead byte bits 7:6 = extra bytes */
		j++; /* NumElements */
		if (j >= len)
			continue;
		nlen = aml_int(aml + j, len - j, &a);
		if (!nlen)
			continue;
		j += nlen;
		if (!aml_int(aml + j, len - j, &b))
			b = a;
		acpi.slp_typa = (uint8_t)(a & 7);
		acpi.slp_typb = (uint8_t)(b & 7);
		return true;
	}
	return false;
}

static void parse_fadt(const struct acpi_header *h)
{
	const uint8_t *f = (const uint8_t *)h;
	uint32_t len = h->length;
	uint64_t dsdt = 0;

	acpi.fadt_revision = h->revision;
	if (len < 116) {
		problem("FADT too short (%u bytes)", len);
		return;
	}
	dsdt = rd32(f + 40);
	acpi.smi_cmd = rd32(f + 48);
	acpi.acpi_enable = f[52];
	if (len >= 109)
		acpi.century = f[108];
	acpi.fadt_flags = rd32(f + 112);
	acpi.hw_reduced = acpi.fadt_flags & (1u << 20);
	acpi.pm_tmr_32bit = acpi.fadt_flags & (1u << 8);

	/* Legacy I/O port blocks, superseded below by the 64-bit GAS forms when present. */
	if (rd32(f + 56) && f[88] >= 4) {
		acpi.pm1a_sts = (struct acpi_gas){ACPI_GAS_IO, 16, 0, 2, rd32(f + 56)};
		acpi.pm1a_en = acpi.pm1a_sts;
		acpi.pm1a_en.addr += f[88] / 2;
	}
	if (rd32(f + 64) && f[89] >= 2)
		acpi.pm1a_cnt = (struct acpi_gas){ACPI_GAS_IO, 16, 0, 2, rd32(f + 64)};
	if (rd32(f + 68) && f[89] >= 2)
		acpi.pm1b_cnt = (struct acpi_gas){ACPI_GAS_IO, 16, 0, 2, rd32(f + 68)};
	if (rd32(f + 76) && f[91] >= 4)
		acpi.pm_tmr = (struct acpi_gas){ACPI_GAS_IO, 32, 0, 3, rd32(f + 76)};
	if (len >= 148 && rd64(f + 140))
		dsdt = rd64(f + 140);
	if (len >= 160) {
		struct acpi_gas g;

		/* X_PM1a_EVT_BLK: status is its first half, at the block's own address. */
		rd_gas(f + 148, &g);
		if (g.addr && f[88] >= 4) {
			g.bit_width = 16;
			acpi.pm1a_sts = g;
			acpi.pm1a_en = g;
			acpi.pm1a_en.addr += f[88] / 2;
		}
	}
	if (len >= 184) {
		struct acpi_gas g;

		rd_gas(f + 172, &g);
		if (g.addr)
			acpi.pm1a_cnt = g;
	}
	if (len >= 196) {
		struct acpi_gas g;

		rd_gas(f + 184, &g);
		if (g.addr)
			acpi.pm1b_cnt = g;
	}
	if (len >= 220) {
		struct acpi_gas g;

		rd_gas(f + 208, &g);
		if (g.addr)
			acpi.pm_tmr = g;
	}
	if (len >= 256)
		rd_gas(f + 244, &acpi.sleep_ctl);

	if (acpi.hw_reduced && !acpi.sleep_ctl.addr)
		problem("hardware-reduced FADT without a sleep control register");
	if (!acpi.hw_reduced && !acpi.pm1a_cnt.addr)
		problem("FADT has no PM1a control block");
	if (!dsdt) {
		problem("FADT names no DSDT");
		return;
	}
	if (table_check(dsdt, "DSDT"))
		acpi.dsdt = dsdt;
}

static void parse_madt(const struct acpi_header *h)
{
	const uint8_t *m = (const uint8_t *)h;
	uint32_t len = h->length;

	if (len < 44) {
		problem("MADT too short (%u bytes)", len);
		return;
	}
	acpi.lapic_addr = rd32(m + 36);
	for (uint32_t off = 44; off + 2 <= len;) {
		uint8_t type = m[off], elen = m[off + 1];

		if (elen < 2 || off + elen > len) {
			problem("MADT entry at offset %u has bad length %u", off, elen);
			return;
		}
		if (type == 0 && elen >= 8) {
			uint32_t flags = rd32(m + off + 4);

			if (flags & 1) {
				if (acpi.ncpus < ACPI_MAX_CPUS) {
					acpi.cpus[acpi.ncpus].acpi_id = m[off + 2];
					acpi.cpus[acpi.ncpus].apic_id = m[off + 3];
					acpi.ncpus++;
				} else {
					acpi.ncpus_dropped++;
				}
			}
		} else if (type == 5 && elen >= 12) {
			acpi.lapic_addr = rd64(m + off + 4);
		}
		off += elen;
	}
	if (!acpi.ncpus)
		problem("MADT lists no enabled local APIC");
}

void acpi_init(uint64_t rsdp_hint)
{
	const uint8_t *r;
	const struct acpi_header *root;
	unsigned int esize;
	uint32_t n;

	acpi.rsdp = rsdp_find(rsdp_hint);
	if (!acpi.rsdp) {
		problem("no valid RSDP (start info or 0xE0000-0xFFFFF scan)");
		return;
	}
	acpi.rsdp_found = true;
	r = (const uint8_t *)(uintptr_t)acpi.rsdp;
	acpi.rsdp_revision = r[15];
	if (acpi.rsdp_revision >= 2 && rd64(r + 24)) {
		acpi.use_xsdt = true;
		acpi.root = rd64(r + 24);
		root = table_check(acpi.root, "XSDT");
		esize = 8;
	} else {
		acpi.root = rd32(r + 16);
		root = table_check(acpi.root, "RSDT");
		esize = 4;
	}
	if (!root)
		return;
	n = (root->length - sizeof(*root)) / esize;
	acpi.ntables = n;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = (const uint8_t *)root + sizeof(*root) + i * esize;
		uint64_t addr = esize == 8 ? rd64(e) : rd32(e);
		const struct acpi_header *t = table_check(addr, NULL);

		if (!t)
			continue;
		if (!memcmp(t->sig, "FACP", 4) && !acpi.fadt) {
			acpi.fadt = addr;
			parse_fadt(t);
		} else if (!memcmp(t->sig, "APIC", 4) && !acpi.madt) {
			acpi.madt = addr;
			parse_madt(t);
		}
	}
	if (!acpi.fadt)
		problem("no FADT (FACP) in the %s", acpi.use_xsdt ? "XSDT" : "RSDT");
	if (!acpi.madt)
		problem("no MADT (APIC) in the %s", acpi.use_xsdt ? "XSDT" : "RSDT");

	/* \_S5 usually lives in the DSDT; some firmware puts it in an SSDT. */
	if (acpi.dsdt) {
		const struct acpi_header *d = (const struct acpi_header *)(uintptr_t)acpi.dsdt;

		acpi.s5_found =
			aml_find_s5((const uint8_t *)d + sizeof(*d), d->length - sizeof(*d));
	}
	for (uint32_t i = 0; i < n && !acpi.s5_found; i++) {
		const uint8_t *e = (const uint8_t *)root + sizeof(*root) + i * esize;
		uint64_t addr = esize == 8 ? rd64(e) : rd32(e);
		const struct acpi_header *t;

		if (!mapped(addr, sizeof(*t)))
			continue;
		t = (const struct acpi_header *)(uintptr_t)addr;
		if (memcmp(t->sig, "SSDT", 4) || !table_check(addr, "SSDT"))
			continue;
		acpi.s5_found =
			aml_find_s5((const uint8_t *)t + sizeof(*t), t->length - sizeof(*t));
	}
}

static unsigned int gas_bits(const struct acpi_gas *g, unsigned int default_bits)
{
	if (g->bit_width == 8 || g->bit_width == 16 || g->bit_width == 32)
		return g->bit_width;
	if (g->access_size >= 1 && g->access_size <= 3)
		return 8u << (g->access_size - 1);
	return default_bits;
}

uint64_t acpi_gas_read(const struct acpi_gas *g, unsigned int default_bits)
{
	unsigned int bits = gas_bits(g, default_bits);

	if (g->space == ACPI_GAS_IO && g->addr <= 0xffff) {
		uint16_t port = (uint16_t)g->addr;

		return bits == 8 ? inb(port) : bits == 16 ? inw(port) : inl(port);
	}
	if (g->space == ACPI_GAS_MEMORY && mapped(g->addr, bits / 8)) {
		if (bits == 8)
			return mmio_read8(g->addr);
		if (bits == 16)
			return *(volatile uint16_t *)(uintptr_t)g->addr;
		return mmio_read32(g->addr);
	}
	return 0;
}

void acpi_gas_write(const struct acpi_gas *g, unsigned int default_bits, uint64_t v)
{
	unsigned int bits = gas_bits(g, default_bits);

	if (g->space == ACPI_GAS_IO && g->addr <= 0xffff) {
		uint16_t port = (uint16_t)g->addr;

		if (bits == 8)
			outb(port, (uint8_t)v);
		else if (bits == 16)
			outw(port, (uint16_t)v);
		else
			outl(port, (uint32_t)v);
	} else if (g->space == ACPI_GAS_MEMORY && mapped(g->addr, bits / 8)) {
		if (bits == 8)
			mmio_write8(g->addr, (uint8_t)v);
		else if (bits == 16)
			*(volatile uint16_t *)(uintptr_t)g->addr = (uint16_t)v;
		else
			mmio_write32(g->addr, (uint32_t)v);
	}
}
