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
#include "vmbus/vmbus.h"
#include "vsp/storvsp.h"

struct run_hv {
	struct hv_partition *hv;
	struct vid_partition *part;
	struct vmbus_server *vmbus;
	struct vmbus_device *echo, *storvsp;
	bool stimers; /* offer synthetic timers in CPUID (set after run_hv_create) */
};

/* Connection id of the hv echo message port (test guest scenarios hv, synic). */
#define RUN_HV_ECHO_PORT 0x7001u

/* The VMBus devices of one boot. */
struct run_hv_devices {
	const struct storvsp_lun_config *luns; /* nluns > 0: one synthetic SCSI controller */
	unsigned nluns;
	bool echo; /* the echo test device (vsp/echo.h) and the hv echo port RUN_HV_ECHO_PORT */
};

/* Before vid_partition_create(): creates the hv partition over gm. 0 or -errno + err_set(). */
int run_hv_create(struct run_hv *rh, struct guest_mem *gm, unsigned ncpus);
/* The CPUID hook to pass to vid_partition_create() with rh as its opaque. */
vid_cpuid_hook_fn run_hv_cpuid_hook;
/* After vid_partition_create(): traps the synthetic MSRs and claims the hypercall port. */
int run_hv_attach(struct run_hv *rh, struct vid_partition *part);
/*
 * After run_hv_create(): the VMBus server of this boot and its devices (images are opened
 * here). 0 or -errno + err_set() naming what failed.
 */
int run_hv_add_vmbus(struct run_hv *rh, struct guest_mem *gm, unsigned ncpus,
		     const struct run_hv_devices *devs);
/* After the vCPUs have stopped: VMBus server, devices (closing their images), hv partition. */
void run_hv_destroy(struct run_hv *rh);

#endif
