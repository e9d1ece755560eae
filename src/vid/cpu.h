/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Pure vCPU setup: turning the loader's boot_cpu_state into KVM register blocks and fixing
 * up CPUID per vCPU. No ioctls here, so all of it is unit-tested without /dev/kvm.
 */
#ifndef VIRIDIAN_VID_CPU_H
#define VIRIDIAN_VID_CPU_H

#include "boot/boot.h"

#include <linux/kvm.h>

/*
 * Makes the topology leaves describe ncpus single-threaded cores in one package and this
 * vCPU's APIC ID (leaf 1 EBX[31:24], leaf 4 core count, leaves 0xB / 0x1F x2APIC IDs), and
 * sets the hypervisor-present bit.
 */
void vid_cpuid_fixup(struct kvm_cpuid_entry2 *e, unsigned n, uint32_t apic_id, unsigned ncpus);
struct kvm_cpuid_entry2 *vid_cpuid_find(struct kvm_cpuid_entry2 *e, unsigned n, uint32_t fn,
					uint32_t index);

/*
 * Where the hv layer adds its 0x40000000 leaves: called for every vCPU after the fixup, with
 * room for `capacity` entries in cpuid->entries. Returns 0 or -errno with err_set().
 */
typedef int vid_cpuid_hook_fn(void *opaque, struct kvm_cpuid2 *cpuid, unsigned capacity,
			      unsigned vcpu_index);

/* Flat segments, GDT, control registers and EFER of the boot CPU; other fields untouched. */
void vid_sregs_from_boot(const struct boot_cpu_state *b, struct kvm_sregs *s);
/* RIP, RSP, RSI, RBX from the loader; RFLAGS = 2 (reserved bit only, interrupts off). */
void vid_regs_from_boot(const struct boot_cpu_state *b, struct kvm_regs *r);

#endif
