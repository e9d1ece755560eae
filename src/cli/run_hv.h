/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Glue between the partition (vid) and the emulated Hyper-V interface (hv) for one boot of a
 * VM: CPUID leaves, the synthetic-MSR trap, the hypercall port and interrupt injection. Kept
 * out of both layers so that vid knows nothing of Hyper-V and hv nothing of KVM.
 */
#ifndef VIRIDIAN_CLI_RUN_HV_H
#define VIRIDIAN_CLI_RUN_HV_H

#include "hv/hv.h"
#include "vid/partition.h"

struct run_hv {
	struct hv_partition *hv;
	struct vid_partition *part;
};

/* Before vid_partition_create(): creates the hv partition over gm. 0 or -errno + err_set(). */
int run_hv_create(struct run_hv *rh, struct guest_mem *gm, unsigned ncpus);
/* The CPUID hook to pass to vid_partition_create() with rh as its opaque. */
vid_cpuid_hook_fn run_hv_cpuid_hook;
/* After vid_partition_create(): traps the synthetic MSRs and claims the hypercall port. */
int run_hv_attach(struct run_hv *rh, struct vid_partition *part);
void run_hv_destroy(struct run_hv *rh);

#endif
