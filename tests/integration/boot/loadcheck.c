// SPDX-License-Identifier: GPL-2.0-only
/*
 * Loads a real kernel (bzImage or PVH vmlinux) into 256 MiB of guest memory
 * with the same calls `viridian run` makes and checks what the loader reports
 * against the file itself. Usage: loadcheck bzimage|vmlinux PATH [DUMPDIR [INITRD]]
 *
 * With DUMPDIR it also writes what QEMU needs to run exactly that loaded state
 * on TCG (no KVM): low.bin (0..640K: GDT, zero page or start info, page
 * tables, command line), kernel.bin (RAM from 1 MiB up to the kernel end) and
 * bios.bin (128 KiB mapped at 0xE0000: our ACPI tables plus a reset-vector
 * stub that enters the boot CPU state from struct boot_cpu_state).
 */
#include "boot/acpi.h"
#include "boot/boot.h"
#include "boot/boot_internal.h"
#include "lib/err.h"
#include "vid/guest_mem.h"
#include "vid/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what)
{
	fprintf(stderr, "loadcheck: %s\n", what);
	return 1;
}

static int read_head(const char *path, uint8_t *buf, size_t len, long off)
{
	FILE *fp = fopen(path, "rb");
	int ok;

	if (!fp)
		return -1;
	ok = fseek(fp, off, SEEK_SET) == 0 && fread(buf, 1, len, fp) == len;
	fclose(fp);
	return ok ? 0 : -1;
}

static int dump(const char *dir, const char *name, const void *p, size_t len)
{
	char path[4096];
	FILE *fp;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	if (!fp)
		return -errno;
	ok = fwrite(p, 1, len, fp) == len;
	return fclose(fp) == 0 && ok ? 0 : -EIO;
}

/* Appends little-endian bytes to the stub. */
static size_t emit(uint8_t *code, size_t at, const void *bytes, size_t n)
{
	memcpy(code + at, bytes, n);
	return at + n;
}

static size_t emit32(uint8_t *code, size_t at, uint32_t v)
{
	return emit(code, at, &v, 4);
}

static size_t emit64(uint8_t *code, size_t at, uint64_t v)
{
	return emit(code, at, &v, 8);
}

#define BIOS_SIZE 0x20000u
#define BIOS_BASE 0xe0000u /* where the last 128 KiB of the BIOS appear */
#define STUB_OFF 0x1f000u /* stub at 0xff000 = F000:F000 */
#define STUB_GDTR_OFF 0x1f100u

/*
 * Real mode -> protected mode (-> long mode for a bzImage), then the loader's
 * registers. Hand-assembled: the test must not need an assembler.
 */
static void build_stub(uint8_t *bios, const struct boot_cpu_state *c)
{
	uint8_t *code = bios + STUB_OFF;
	const uint32_t stub = BIOS_BASE + STUB_OFF;
	size_t at = 0, pm32, ljmp_fix, pm64, ljmp64_fix;
	uint16_t gdt_limit = c->gdt_limit;
	uint32_t gdt_base = (uint32_t)c->gdt_base;

	/* GDTR image */
	memcpy(bios + STUB_GDTR_OFF, &gdt_limit, 2);
	memcpy(bios + STUB_GDTR_OFF + 2, &gdt_base, 4);

	at = emit(code, at, "\xfa", 1); /* cli */
	/* lgdtl %cs:0xf100 */
	at = emit(code, at, "\x66\x2e\x0f\x01\x16\x00\xf1", 7);
	at = emit(code, at, "\x0f\x20\xc0", 3); /* mov %cr0,%eax */
	at = emit(code, at, "\x66\x83\xc8\x01", 4); /* or $1,%eax */
	at = emit(code, at, "\x0f\x22\xc0", 3); /* mov %eax,%cr0 */
	at = emit(code, at, "\x66\xea", 2); /* ljmpl $0x08,$pm32 */
	ljmp_fix = at;
	at += 4;
	at = emit(code, at, "\x08\x00", 2);
	pm32 = at;
	memcpy(code + ljmp_fix, &(uint32_t){stub + (uint32_t)pm32}, 4);
	/*
	 * What firmware would do on QEMU's i440FX: put the PIIX4 power-management
	 * I/O block at LAYOUT_ACPI_PM_BASE (PMBA, config 0x40) and enable it
	 * (PMREGMISC bit 0, config 0x80), so QEMU's PM1a/PM timer sit where our
	 * FADT says.
	 */
	at = emit(code, at, "\xb8", 1);
	at = emit32(code, at, 0x80000b40u); /* bus 0, dev 1, fn 3, reg 0x40 */
	at = emit(code, at, "\x66\xba\xf8\x0c\xef", 5);
	at = emit(code, at, "\xb8", 1);
	at = emit32(code, at, LAYOUT_ACPI_PM_BASE | 1);
	at = emit(code, at, "\x66\xba\xfc\x0c\xef", 5);
	at = emit(code, at, "\xb8", 1);
	at = emit32(code, at, 0x80000b80u);
	at = emit(code, at, "\x66\xba\xf8\x0c\xef", 5);
	at = emit(code, at, "\xb0\x01\x66\xba\xfc\x0c\xee", 7);
	/* mov $data,%eax; mov %eax -> ds, es, ss, fs, gs */
	at = emit(code, at, "\xb8", 1);
	at = emit32(code, at, c->data_selector);
	at = emit(code, at, "\x8e\xd8\x8e\xc0\x8e\xd0\x8e\xe0\x8e\xe8", 10);
	if (!c->long_mode) {
		at = emit(code, at, "\xbb", 1); /* mov $rbx,%ebx */
		at = emit32(code, at, (uint32_t)c->rbx);
		at = emit(code, at, "\xbe", 1); /* mov $rsi,%esi */
		at = emit32(code, at, (uint32_t)c->rsi);
		at = emit(code, at, "\xbc", 1); /* mov $rsp,%esp */
		at = emit32(code, at, (uint32_t)c->rsp);
		at = emit(code, at, "\xb8", 1); /* mov $rip,%eax; jmp *%eax */
		at = emit32(code, at, (uint32_t)c->rip);
		emit(code, at, "\xff\xe0", 2);
		return;
	}
	at = emit(code, at, "\xb8", 1); /* mov $cr4,%eax; mov %eax,%cr4 */
	at = emit32(code, at, (uint32_t)c->cr4);
	at = emit(code, at, "\x0f\x22\xe0", 3);
	at = emit(code, at, "\xb8", 1); /* mov $cr3,%eax; mov %eax,%cr3 */
	at = emit32(code, at, (uint32_t)c->cr3);
	at = emit(code, at, "\x0f\x22\xd8", 3);
	/* EFER: mov $0xc0000080,%ecx; mov $efer_lo,%eax; xor %edx,%edx; wrmsr (LMA is set by
	 * the CPU when paging turns on). */
	at = emit(code, at, "\xb9\x80\x00\x00\xc0", 5);
	at = emit(code, at, "\xb8", 1);
	at = emit32(code, at, (uint32_t)(c->efer & ~(1ull << 10)));
	at = emit(code, at, "\x31\xd2\x0f\x30", 4);
	at = emit(code, at, "\xb8", 1); /* mov $cr0,%eax; mov %eax,%cr0 */
	at = emit32(code, at, (uint32_t)c->cr0);
	at = emit(code, at, "\x0f\x22\xc0", 3);
	at = emit(code, at, "\xea", 1); /* ljmp $cs64,$pm64 */
	ljmp64_fix = at;
	at += 4;
	at = emit(code, at, &c->code_selector, 2);
	pm64 = at;
	memcpy(code + ljmp64_fix, &(uint32_t){stub + (uint32_t)pm64}, 4);
	at = emit(code, at, "\x48\xbe", 2); /* movabs $rsi,%rsi */
	at = emit64(code, at, c->rsi);
	at = emit(code, at, "\x48\xbb", 2); /* movabs $rbx,%rbx */
	at = emit64(code, at, c->rbx);
	at = emit(code, at, "\x48\xbc", 2); /* movabs $rsp,%rsp */
	at = emit64(code, at, c->rsp);
	at = emit(code, at, "\x48\xb8", 2); /* movabs $rip,%rax; jmp *%rax */
	at = emit64(code, at, c->rip);
	emit(code, at, "\xff\xe0", 2);
}

static int dump_for_qemu(const char *dir, struct guest_mem *gm, const struct boot_result *r)
{
	static uint8_t bios[BIOS_SIZE];
	uint64_t end = (r->kernel_end + 0xfff) & ~0xfffull;
	char args[512];
	int ret;

	if (guest_mem_read(gm, BIOS_BASE, bios, STUB_OFF))
		return -EFAULT;
	build_stub(bios, &r->cpu);
	/* Reset vector (F000:FFF0): ljmp $0xf000,$0xf000 */
	memcpy(bios + 0x1fff0, "\xea\x00\xf0\x00\xf0", 5);
	ret = dump(dir, "bios.bin", bios, sizeof(bios));
	if (!ret)
		ret = dump(dir, "low.bin", guest_mem_ptr(gm, 0, 0x9f000), 0x9f000);
	if (!ret)
		ret = dump(dir, "kernel.bin", guest_mem_ptr(gm, 0x100000, end - 0x100000),
			   end - 0x100000);
	/* The QEMU options that put each piece where the loader put it. */
	snprintf(args, sizeof(args),
		 "-bios %s/bios.bin -device loader,file=%s/low.bin,addr=0,force-raw=on "
		 "-device loader,file=%s/kernel.bin,addr=0x100000,force-raw=on",
		 dir, dir, dir);
	if (!ret && r->initrd_size) {
		ret = dump(dir, "initrd.bin", guest_mem_ptr(gm, r->initrd_start, r->initrd_size),
			   r->initrd_size);
		snprintf(args + strlen(args), sizeof(args) - strlen(args),
			 " -device loader,file=%s/initrd.bin,addr=0x%llx,force-raw=on", dir,
			 (unsigned long long)r->initrd_start);
	}
	if (!ret)
		ret = dump(dir, "qemu.args", args, strlen(args));
	return ret;
}

int main(int argc, char **argv)
{
	struct guest_mem gm;
	struct acpi_config acfg = {.ncpus = 2, .apic_ids = {0, 1}};
	struct boot_config cfg = {.cmdline = "console=ttyS0 earlyprintk=ttyS0 panic=-1"};
	struct boot_result r;
	uint8_t hdr[0x300];

	if (argc < 3 || argc > 5 || (strcmp(argv[1], "bzimage") && strcmp(argv[1], "vmlinux")))
		return fail("usage: loadcheck bzimage|vmlinux PATH [DUMPDIR [INITRD]]");
	cfg.kernel_path = argv[2];
	if (getenv("LOADCHECK_CPUS")) {
		acfg.ncpus = (unsigned)atoi(getenv("LOADCHECK_CPUS"));
		if (acfg.ncpus < 1 || acfg.ncpus > 16)
			return fail("LOADCHECK_CPUS must be 1..16");
		for (unsigned i = 0; i < acfg.ncpus; i++)
			acfg.apic_ids[i] = i;
	}
	if (getenv("LOADCHECK_CMDLINE"))
		cfg.cmdline = getenv("LOADCHECK_CMDLINE");
	if (argc == 5)
		cfg.initrd_path = argv[4];
	if (guest_mem_init(&gm, 256ull << 20, 0))
		return fail(err_msg());
	if (acpi_tables_build(&gm, &acfg, &cfg.rsdp_gpa))
		return fail(err_msg());
	if (boot_load(&gm, &cfg, &r))
		return fail(err_msg());
	if (read_head(argv[2], hdr, sizeof(hdr), 0))
		return fail("cannot read the kernel header");
	printf("# kind=%s kernel=0x%llx-0x%llx rip=0x%llx long_mode=%d\n",
	       r.kind == BOOT_KIND_BZIMAGE ? "bzImage" : "pvh", (unsigned long long)r.kernel_start,
	       (unsigned long long)r.kernel_end, (unsigned long long)r.cpu.rip, r.cpu.long_mode);

	if (!strcmp(argv[1], "bzimage")) {
		uint16_t ver = rd16(hdr + HDR_VERSION);
		unsigned sects = hdr[HDR_SETUP_SECTS] ? hdr[HDR_SETUP_SECTS] : 4;
		uint8_t first[64];
		const uint8_t *bp = guest_mem_ptr(&gm, LAYOUT_BOOT_PARAMS_GPA, 4096);

		printf("# boot protocol %u.%02u, setup_sects %u, init_size 0x%x\n", ver >> 8,
		       ver & 0xff, sects, rd32(hdr + HDR_INIT_SIZE));
		if (r.kind != BOOT_KIND_BZIMAGE || ver < 0x020c)
			return fail("not loaded as a 64-bit bzImage");
		if (!r.cpu.long_mode || r.cpu.rip != r.kernel_start + 0x200 ||
		    r.cpu.rsi != LAYOUT_BOOT_PARAMS_GPA)
			return fail("64-bit entry state is wrong");
		if (read_head(argv[2], first, sizeof(first), (long)(sects + 1) * 512) ||
		    memcmp(guest_mem_ptr(&gm, r.kernel_start, 64), first, 64))
			return fail("protected-mode kernel is not at the load address");
		if (!bp || memcmp(bp + HDR_MAGIC, "HdrS", 4) || bp[HDR_TYPE_OF_LOADER] != 0xff ||
		    rd64(bp + BP_ACPI_RSDP_ADDR) != cfg.rsdp_gpa || bp[BP_E820_ENTRIES] < 3)
			return fail("zero page is incomplete");
	} else {
		const struct pvh_start_info *si =
			guest_mem_ptr(&gm, LAYOUT_PVH_START_INFO_GPA, sizeof(*si));

		if (r.kind != BOOT_KIND_PVH || r.cpu.long_mode)
			return fail("not loaded as a PVH kernel");
		if (r.cpu.rip < r.kernel_start || r.cpu.rip >= r.kernel_end)
			return fail("PVH entry outside the loaded segments");
		if (!si || si->magic != PVH_START_MAGIC || si->rsdp_paddr != cfg.rsdp_gpa ||
		    si->memmap_entries < 3)
			return fail("hvm_start_info is incomplete");
		printf("# PVH entry 0x%llx, %u memmap entries\n", (unsigned long long)r.cpu.rip,
		       si->memmap_entries);
	}
	if (argc >= 4 && dump_for_qemu(argv[3], &gm, &r))
		return fail("cannot write the QEMU images");
	guest_mem_destroy(&gm);
	return 0;
}
