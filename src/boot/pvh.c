// SPDX-License-Identifier: GPL-2.0-only
/*
 * ELF kernel loader with the Xen PVH entry (XEN_ELFNOTE_PHYS32_ENTRY): PT_LOAD
 * segments go to their physical addresses, hvm_start_info describes memory,
 * the command line, the initrd (module 0) and the RSDP, and the vCPU starts in
 * 32-bit protected mode with paging off and EBX = &hvm_start_info.
 */
#include "boot/boot.h"
#include "boot/boot_internal.h"
#include "lib/err.h"
#include "lib/util.h"
#include "vid/layout.h"

#include <errno.h>
#include <string.h>

#define MIB (1024ull * 1024)
#define EHDR_SIZE 64
#define PHDR_SIZE 56
#define ELF_MAX_PHDRS 128
#define EM_X86_64 62
#define PT_LOAD 1
#define PT_NOTE 4

struct pvh_seg {
	uint64_t off, paddr, filesz, memsz;
};

/*
 * Finds the PVH entry among the notes in [off, off + size) of the file; notes
 * are padded to 4 bytes, or 8 when the segment says so. 0 if none.
 */
static int pvh_scan_notes(const uint8_t *img, size_t len, uint64_t off, uint64_t size,
			  uint64_t align, const char *name, uint32_t *entry, bool *found)
{
	uint64_t pos = off, end;

	if (off > len || size > len - off) {
		err_set("'%s': ELF note segment lies outside the file", name);
		return -ENOEXEC;
	}
	end = off + size;
	while (end - pos >= 12) {
		uint64_t namesz = rd32(img + pos), descsz = rd32(img + pos + 4);
		uint32_t type = rd32(img + pos + 8);
		uint64_t name_off = pos + 12;
		uint64_t desc_off = name_off + ALIGN_UP(namesz, align);
		uint64_t next = desc_off + ALIGN_UP(descsz, align);

		/* All values are at most 2^32 + 7, so these sums cannot overflow. */
		if (desc_off > end || desc_off + descsz > end) {
			err_set("'%s': malformed ELF note (name %llu, desc %llu bytes)", name,
				(unsigned long long)namesz, (unsigned long long)descsz);
			return -ENOEXEC;
		}
		if (namesz == 4 && !memcmp(img + name_off, "Xen", 4) &&
		    type == PVH_ELFNOTE_PHYS32_ENTRY) {
			if (descsz < 4) {
				err_set("'%s': PVH entry note is too short", name);
				return -ENOEXEC;
			}
			*entry = rd32(img + desc_off);
			*found = true;
			return 0;
		}
		if (next >= end)
			break;
		pos = next;
	}
	return 0;
}

int boot_load_pvh(struct guest_mem *gm, const uint8_t *img, size_t len, const char *name,
		  const struct boot_config *cfg, struct boot_result *out)
{
	struct pvh_seg segs[ELF_MAX_PHDRS];
	unsigned nsegs = 0;
	uint64_t phoff, kstart = UINT64_MAX, kend = 0;
	unsigned phnum, phentsize;
	uint32_t entry = 0;
	bool found = false, entry_ok = false;
	int ret, note_err = 0;

	if (len < EHDR_SIZE || img[4] != 2 || img[5] != 1 || rd16(img + 18) != EM_X86_64) {
		err_set("'%s' is not a Linux bzImage or an ELF kernel with a PVH note "
			"(only 64-bit little-endian x86-64 ELF is supported)",
			name);
		return -ENOEXEC;
	}
	phoff = rd64(img + 32);
	phentsize = rd16(img + 54);
	phnum = rd16(img + 56);
	if (phentsize != PHDR_SIZE || phnum == 0 || phnum > ELF_MAX_PHDRS || phoff > len ||
	    (uint64_t)phnum * PHDR_SIZE > len - phoff) {
		err_set("'%s': ELF program headers are missing or lie outside the file", name);
		return -ENOEXEC;
	}

	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = img + phoff + (uint64_t)i * PHDR_SIZE;
		uint32_t type = rd32(ph);
		struct pvh_seg s = {
			.off = rd64(ph + 8),
			.paddr = rd64(ph + 24),
			.filesz = rd64(ph + 32),
			.memsz = rd64(ph + 40),
		};

		if (type == PT_NOTE && !found) {
			/* A bad note segment only matters if no other one has the entry. */
			ret = pvh_scan_notes(img, len, s.off, s.filesz, rd64(ph + 48) == 8 ? 8 : 4,
					     name, &entry, &found);
			if (ret)
				note_err = ret;
		}
		if (type != PT_LOAD || s.memsz == 0)
			continue;
		if (s.filesz > s.memsz) {
			err_set("'%s': ELF segment %u has p_filesz > p_memsz", name, i);
			return -ENOEXEC;
		}
		if (s.off > len || s.filesz > len - s.off) {
			err_set("'%s' is truncated: ELF segment %u lies past the end of the file",
				name, i);
			return -ENOEXEC;
		}
		if (s.paddr > UINT64_MAX - s.memsz || s.paddr < BOOT_LOW_MEM_END ||
		    !guest_mem_range_is_ram(gm, s.paddr, s.memsz)) {
			err_set("kernel too large for %lluM of guest RAM (ELF segment %u at "
				"0x%llx, %llu bytes; segments must lie in RAM above 1 MiB)",
				(unsigned long long)(gm->ram_size / MIB), i,
				(unsigned long long)s.paddr, (unsigned long long)s.memsz);
			return -ENOSPC;
		}
		for (unsigned j = 0; j < nsegs; j++) {
			if (s.paddr < segs[j].paddr + segs[j].memsz &&
			    segs[j].paddr < s.paddr + s.memsz) {
				err_set("'%s': ELF segments overlap at 0x%llx", name,
					(unsigned long long)s.paddr);
				return -ENOEXEC;
			}
		}
		segs[nsegs++] = s;
		kstart = MIN(kstart, s.paddr);
		kend = MAX(kend, s.paddr + s.memsz);
	}
	if (!found && note_err)
		return note_err;
	if (!found) {
		err_set("'%s' is an ELF file without a Xen PVH entry note "
			"(XEN_ELFNOTE_PHYS32_ENTRY); build the kernel with CONFIG_PVH=y or use "
			"its bzImage",
			name);
		return -ENOEXEC;
	}
	if (!nsegs) {
		err_set("'%s': ELF file has no loadable segments", name);
		return -ENOEXEC;
	}
	for (unsigned j = 0; j < nsegs; j++)
		entry_ok |= entry >= segs[j].paddr && entry - segs[j].paddr < segs[j].filesz;
	if (!entry_ok) {
		err_set("'%s': PVH entry 0x%x is not inside a loaded segment", name, entry);
		return -ENOEXEC;
	}

	for (unsigned j = 0; j < nsegs; j++) {
		uint8_t *dst = guest_mem_ptr(gm, segs[j].paddr, segs[j].memsz);

		if (dst) {
			memcpy(dst, img + segs[j].off, segs[j].filesz);
			memset(dst + segs[j].filesz, 0, segs[j].memsz - segs[j].filesz);
		} else if (guest_mem_write(gm, segs[j].paddr, img + segs[j].off, segs[j].filesz)) {
			err_set("kernel does not fit in guest RAM");
			return -ENOSPC;
		} else {
			/* A segment spanning regions: zero its tail byte by byte-range. */
			static const uint8_t zero[4096];
			uint64_t a = segs[j].paddr + segs[j].filesz;
			uint64_t left = segs[j].memsz - segs[j].filesz;

			while (left) {
				size_t c = MIN(left, sizeof(zero));

				if (guest_mem_write(gm, a, zero, c))
					return -ENOSPC;
				a += c;
				left -= c;
			}
		}
	}

	ret = boot_write_cmdline(gm, cfg, LAYOUT_CMDLINE_MAX - 1);
	if (ret)
		return ret;
	ret = boot_load_initrd(gm, cfg, ALIGN_UP(kend, 4096), UINT64_MAX, out);
	if (ret)
		return ret;

	uint8_t page[4096] = {0};
	struct pvh_start_info si = {
		.magic = PVH_START_MAGIC,
		.version = 1,
		.cmdline_paddr = LAYOUT_CMDLINE_GPA,
		.rsdp_paddr = cfg->rsdp_gpa,
		.memmap_paddr = LAYOUT_PVH_START_INFO_GPA + PVH_MEMMAP_OFF,
	};
	struct boot_e820_entry e820[BOOT_E820_MAX];
	unsigned n = boot_e820_build(gm, e820, BOOT_E820_MAX);

	_Static_assert(PVH_MEMMAP_OFF + BOOT_E820_MAX * sizeof(struct pvh_memmap_entry) <= 4096,
		       "PVH memmap fits the page");
	for (unsigned i = 0; i < n; i++) {
		struct pvh_memmap_entry me = {
			.addr = e820[i].addr, .size = e820[i].size, .type = e820[i].type};
		memcpy(page + PVH_MEMMAP_OFF + i * sizeof(me), &me, sizeof(me));
	}
	si.memmap_entries = n;
	if (out->initrd_size) {
		struct pvh_modlist_entry mod = {.paddr = out->initrd_start,
						.size = out->initrd_size};

		memcpy(page + PVH_MODLIST_OFF, &mod, sizeof(mod));
		si.nr_modules = 1;
		si.modlist_paddr = LAYOUT_PVH_START_INFO_GPA + PVH_MODLIST_OFF;
	}
	memcpy(page, &si, sizeof(si));
	if (guest_mem_write(gm, LAYOUT_PVH_START_INFO_GPA, page, sizeof(page))) {
		err_set("guest RAM too small for the PVH start info");
		return -ENOSPC;
	}
	ret = boot_write_gdt(gm);
	if (ret)
		return ret;

	out->kind = BOOT_KIND_PVH;
	out->kernel_start = kstart;
	out->kernel_end = kend;
	out->cpu = (struct boot_cpu_state){
		.long_mode = false,
		.rip = entry,
		.rsp = LAYOUT_BOOT_STACK_TOP,
		.rbx = LAYOUT_PVH_START_INFO_GPA,
		.rflags = 0x2,
		.cr0 = 0x11, /* PE | ET */
		.gdt_base = LAYOUT_GDT_GPA,
		.gdt_limit = BOOT_GDT_ENTRIES * 8 - 1,
		.code_selector = BOOT_GDT_CS32,
		.data_selector = BOOT_GDT_DS,
	};
	return 0;
}
