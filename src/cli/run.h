/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One VM from a config: the code path shared by `viridian run` (config from argv) and the
 * `viridian vmwp` worker (config from vm.json). The caller gets hooks at the points the worker
 * needs (partition built, guest code not yet running; every state change) and a control handle
 * to stop, press the power button, pause, resume or reset the VM from another thread.
 */
#ifndef VIRIDIAN_CLI_RUN_H
#define VIRIDIAN_CLI_RUN_H

#include "devices/uart.h"
#include "disk/disk.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Hyper-V's names for the states (Critical is the management service's, not the worker's). */
enum run_state {
	RUN_STATE_STARTING,
	RUN_STATE_RUNNING,
	RUN_STATE_PAUSED,
	RUN_STATE_STOPPING,
	RUN_STATE_OFF,
};

enum run_request {
	RUN_REQ_STOP, /* hard stop: the vCPUs end now, exit code 0 */
	RUN_REQ_SHUTDOWN, /* ACPI power button: the guest decides */
	RUN_REQ_PAUSE,
	RUN_REQ_RESUME,
	RUN_REQ_RESET, /* hard reset: the VM reboots from the kernel */
};

/* A COM1 backend supplied by the caller instead of a --serial spec. */
struct run_serial {
	/* Bytes the guest transmitted (vCPU thread, under the UART's lock). */
	void (*tx)(void *opaque, const uint8_t *buf, size_t len);
	/* The UART of the current boot, NULL between boots. 0 or -errno + err_set(). */
	int (*attach)(void *opaque, struct uart *u);
	void *opaque;
};

struct run_vm;

/* A disk on the synthetic SCSI controller: LUN i is disks[i]. */
#define RUN_MAX_DISKS 64
struct run_disk {
	const char *path;
	bool read_only;
	enum disk_format format; /* DISK_FORMAT_AUTO: detected */
};
struct run_config;

/* Shared between run_vm() and the threads that call run_ctl_request(); fields are private. */
struct run_ctl {
	pthread_mutex_t lock;
	struct run_vm *vm; /* the running boot, NULL while none is */
	enum run_state state;
	bool stop_requested, reset_requested;
	_Atomic int paused; /* vCPUs wait in the pause handler while set (futex word) */
	_Atomic int parked; /* vCPUs currently waiting there */
	const struct run_config *cfg; /* for state notifications of requests */
};

struct run_config {
	const char *prog; /* error prefix, default "viridian run" */
	const char *name, *kernel, *initrd, *cmdline;
	const char *serial; /* stdio|pty|unix:PATH|file:PATH|none, unless serial_ops is set */
	const struct run_serial *serial_ops;
	uint64_t memory;
	unsigned cpus;
	bool no_reboot, hugepages;
	const struct run_disk *disks; /* ndisks <= RUN_MAX_DISKS */
	unsigned ndisks;
	bool echo_device; /* the VMBus echo test device */
	bool hv_timers; /* offer Hyper-V synthetic timers */
	struct run_ctl *ctl; /* may be NULL (viridian run); initialised with run_ctl_init() */
	/*
	 * Called once, after the first partition is built and before any vCPU runs guest code:
	 * the worker installs its seccomp filter and drops privileges here. Nonzero aborts the
	 * VM with exit 1 (err_set() the reason).
	 */
	int (*before_guest)(void *opaque);
	/* Every state change; reason is a one-line explanation (for Off: why it stopped). */
	void (*on_state)(void *opaque, enum run_state state, const char *reason);
	void *opaque;
};

/* Checks the limits `viridian run` checks (memory, cpus, kernel/initrd readable). 0 or exit code.
 */
int run_config_check(const struct run_config *cfg);
/* Runs the VM to the end; returns the exit code (docs/exit-codes.md). */
int run_vm(const struct run_config *cfg);

void run_ctl_init(struct run_ctl *ctl);
void run_ctl_destroy(struct run_ctl *ctl);
/* From any thread but a vCPU's. 0, or -errno with err_set() (e.g. not valid in this state). */
int run_ctl_request(struct run_ctl *ctl, enum run_request req);
enum run_state run_ctl_state(struct run_ctl *ctl);
const char *run_state_name(enum run_state s);

#endif
