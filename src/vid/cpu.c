// SPDX-License-Identifier: GPL-2.0-only
/* Boot register state and CPUID topology for each vCPU. */
#include "vid/cpu.h"

#include <string.h>

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

static unsigned vid_pow2_ceil(unsigned n)
{
	unsigned p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static unsigned vid_log2_ceil(unsigned n)
{
	unsigned s = 0;

	while ((1u << s) < n)
		s++;
	return s;
}

struct kvm_cpuid_entry2 *vid_cpuid_find(struct kvm_cpuid_entry2 *e, unsigned n, uint32_t fn,
					uint32_t index)
{
	for (unsigned i = 0; i < n; i++) {
		if (e[i].function != fn)
			continue;
		if ((e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e[i].index != index)
			continue;
		return &e[i];
	}
	return NULL;
}

void vid_cpuid_fixup(struct kvm_cpuid_entry2 *e, unsigned n, uint32_t apic_id, unsigned ncpus)
{
	unsigned span = vid_pow2_ceil(ncpus ? ncpus : 1);

	for (unsigned i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *c = &e[i];

		switch (c->function) {
		case 1:
			c->ebx = (c->ebx & 0x0000ffffu) | ((apic_id & 0xff) << 24) |
				 ((span > 255 ? 255 : span) << 16);
			if (ncpus > 1)
				c->edx |= CPUID_1_EDX_HTT;
			else
				c->edx &= ~CPUID_1_EDX_HTT;
			c->ecx |= CPUID_1_ECX_HYPERVISOR;
			break;
		case 4:
			/* EAX[31:26]: core IDs in the package - 1; [25:14]: one thread per cache.
			 */
			if (c->eax & 0x1f)
				c->eax = (c->eax & 0x00003fffu) |
					 (((span > 64 ? 64 : span) - 1) << 26);
			break;
		case 0xb:
		case 0x1f:
			c->edx = apic_id;
			if (c->index == 0) {
				/* SMT level: one thread per core. */
				c->eax = 0;
				c->ebx = 1;
				c->ecx = (1u << 8) | 0;
			} else if (c->index == 1) {
				/* Core level: all vCPUs in one package. */
				c->eax = vid_log2_ceil(ncpus);
				c->ebx = ncpus;
				c->ecx = (2u << 8) | 1;
			} else {
				c->eax = 0;
				c->ebx = 0;
				c->ecx = c->index & 0xff; /* level type 0: no more levels */
			}
			break;
		}
	}
}

static void vid_seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64, bool big)
{
	*s = (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = big,
		.s = 1,
		.l = code64,
		.g = 1,
	};
}

void vid_sregs_from_boot(const struct boot_cpu_state *b, struct kvm_sregs *s)
{
	/* Code: execute/read, accessed. Data: read/write, accessed. */
	vid_seg_flat(&s->cs, b->code_selector, 0xb, b->long_mode, !b->long_mode);
	vid_seg_flat(&s->ds, b->data_selector, 0x3, false, true);
	s->es = s->fs = s->gs = s->ss = s->ds;
	/* A busy TSS and an unusable LDT: what VM entry checks want, never used by the guest. */
	s->tr = (struct kvm_segment){.limit = 0x67, .type = 0xb, .present = 1};
	s->ldt = (struct kvm_segment){.type = 0x2, .unusable = 1};
	s->gdt.base = b->gdt_base;
	s->gdt.limit = b->gdt_limit;
	s->idt.base = 0;
	s->idt.limit = 0;
	s->cr0 = b->cr0;
	s->cr3 = b->cr3;
	s->cr4 = b->cr4;
	s->efer = b->efer;
	if (b->long_mode)
		s->efer |= EFER_LME | EFER_LMA;
	else
		s->efer &= ~(EFER_LME | EFER_LMA);
}

void vid_regs_from_boot(const struct boot_cpu_state *b, struct kvm_regs *r)
{
	memset(r, 0, sizeof(*r));
	r->rip = b->rip;
	r->rsp = b->rsp;
	r->rsi = b->rsi;
	r->rbx = b->rbx;
	r->rflags = 0x2;
}
