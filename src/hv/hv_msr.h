/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Synthetic MSRs 0x40000000-0x400001FF. The vCPU loop calls these on KVM_EXIT_X86_RDMSR /
 * KVM_EXIT_X86_WRMSR (MSR filter on that range, §9.2), from the VP's own thread:
 *   HV_MSR_OK        -> RDMSR: run->msr.data = *val; error = 0.  WRMSR: error = 0.
 *   HV_MSR_GP        -> run->msr.error = 1 (KVM injects #GP), as Hyper-V does for reserved bits.
 *   HV_MSR_UNHANDLED -> not a Hyper-V MSR we implement; the VMM injects #GP too (error = 1).
 */
#ifndef VIRIDIAN_HV_HV_MSR_H
#define VIRIDIAN_HV_HV_MSR_H

#include <stdint.h>

#include "hv/hv.h"

enum hv_msr_result {
	HV_MSR_OK = 0,
	HV_MSR_GP = 1,
	HV_MSR_UNHANDLED = 2,
};

int hv_msr_read(struct hv_partition *part, unsigned vp, uint32_t msr, uint64_t *val);
int hv_msr_write(struct hv_partition *part, unsigned vp, uint32_t msr, uint64_t val);

/*
 * Hypercall page stub (written at the HYPERCALL MSR's page on enable):
 *   49 89 D2          mov r10, rdx        ; keep input 1: RDX is needed for the port number
 *   BA 58 56 00 00    mov edx, 0x5658     ; LAYOUT_HV_HYPERCALL_PORT (> 0xFF: no OUT imm8)
 *   B8 'HvCl'         mov eax, HV_HYPERCALL_MAGIC
 *   EF                out dx, eax         ; KVM_EXIT_IO: out, size 4, port 0x5658, data magic
 *   C3                ret                 ; RAX = status set by the VMM before re-entry
 * Only RAX, RDX and R10 change, all volatile in the contract (§2.3). No ENDBR64: the guest
 * only checks it with IBT on (off in Debian), and KVM's instruction emulator on the CPL0-emulating
 * test hosts need not know it.
 */
#define HV_HYPERCALL_MAGIC 0x6C437648u /* "HvCl" */
#define HV_HYPERCALL_STUB_LEN 17u
extern const uint8_t hv_hypercall_stub[HV_HYPERCALL_STUB_LEN];

#endif
