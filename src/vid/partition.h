/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A partition: one KVM VM with its guest memory slots, in-kernel irqchip (LAPIC, IOAPIC,
 * PIC) and PIT, 1..N virtual processors each on its own thread, and the exit dispatcher that
 * hands port I/O and MMIO to the buses devices registered on. Stopping (power-off, reset,
 * Ctrl-C, fatal exit) is a one-way transition: the first reason wins, every vCPU is kicked
 * out of KVM_RUN (signal + immediate_exit), and the owner joins the threads.
 */
#ifndef VIRIDIAN_VID_PARTITION_H
#define VIRIDIAN_VID_PARTITION_H

#include "boot/boot.h"
#include "vid/cpu.h"
#include "vid/guest_mem.h"
#include "vid/iobus.h"
#include "vid/kvm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

enum vid_stop_reason {
	VID_RUNNING = 0,
	VID_STOP_POWEROFF, /* ACPI S5, KVM system event shutdown */
	VID_STOP_RESET, /* 0xCF9, i8042, triple fault */
	VID_STOP_SIGNAL, /* SIGINT / SIGTERM */
	VID_STOP_EMULATION, /* KVM_EXIT_INTERNAL_ERROR, entry failure: the guest cannot go on */
	VID_STOP_ERROR, /* a host-side failure (ioctl error, ...) */
	VID_STOP_GUEST_CRASH, /* the guest reported a crash (Hyper-V crash MSRs) */
};

/* Signal used to kick vCPU threads out of KVM_RUN. */
#define VID_KICK_SIGNAL SIGUSR1

struct vid_partition;
struct vid_vcpu;

/*
 * For exits vid does not handle itself (e.g. KVM_EXIT_HYPERCALL if a layer enables it). Returns
 * true when it handled the exit; false stops the partition as an unexpected exit. Set p->exit_hook
 * before vid_partition_start().
 */
typedef bool vid_exit_hook_fn(void *opaque, struct vid_vcpu *v);
/*
 * MSR accesses trapped with vid_partition_trap_msrs() (KVM_EXIT_X86_RDMSR/WRMSR). Fill *data
 * on reads; return 0, or -1 to give the guest #GP. Runs on vCPU vp's thread.
 */
typedef int vid_msr_fn(void *opaque, unsigned vp, bool is_write, uint32_t index, uint64_t *data);

struct vid_vcpu {
	struct vid_partition *p;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
};

struct vid_partition {
	struct vid_kvm *kvm;
	struct guest_mem *mem;
	int vm_fd;
	unsigned ncpus;
	struct vid_vcpu *vcpus;
	struct iobus pio, mmio;
	vid_cpuid_hook_fn *cpuid_hook;
	void *cpuid_hook_opaque;
	vid_exit_hook_fn *exit_hook;
	void *exit_hook_opaque;
	vid_msr_fn *msr_fn;
	void *msr_opaque;
	pthread_mutex_t stop_lock;
	_Atomic int stop_reason;
	char stop_detail[512];
	int stop_efd; /* becomes readable when a stop is requested */
};

/*
 * Creates the VM, maps every guest_mem region as a memory slot, creates the irqchip, the PIT
 * and ncpus vCPUs (APIC ID i for vCPU i, CPUID fixed up, APs waiting for INIT-SIPI).
 * The hook (may be NULL) sees each vCPU's CPUID before KVM does. 0 or -errno + err_set().
 */
int vid_partition_create(struct vid_partition *p, struct vid_kvm *kvm, struct guest_mem *mem,
			 unsigned ncpus, vid_cpuid_hook_fn *cpuid_hook, void *hook_opaque);
/*
 * The KVM-independent half of create: stop machinery (eventfd, kick signal handler) and
 * empty buses. create calls it; tests use it to drive the stop and exit paths without KVM.
 */
int vid_partition_init(struct vid_partition *p, struct vid_kvm *kvm, struct guest_mem *mem);
/*
 * Handles the exit KVM left in v->run (port I/O and MMIO to the buses, shutdown/reset/power-off
 * events, internal errors reported and turned into a stop). Called by the vCPU thread.
 */
void vid_vcpu_handle_exit(struct vid_vcpu *v);
/* Loads the boot CPU's registers (vCPU 0) from the loader's description. */
int vid_partition_set_boot_cpu(struct vid_partition *p, const struct boot_cpu_state *cpu);
/* Starts one thread per vCPU. */
int vid_partition_start(struct vid_partition *p);
/* First caller wins; later calls are ignored. Safe from any thread, including vCPUs. */
void vid_partition_request_stop(struct vid_partition *p, enum vid_stop_reason reason,
				const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Joins the vCPU threads (after a stop was requested) and returns the reason. */
enum vid_stop_reason vid_partition_wait(struct vid_partition *p);
void vid_partition_destroy(struct vid_partition *p);

/*
 * Sends MSRs [base, base + count) to user space (KVM_CAP_X86_USER_SPACE_MSR + an MSR filter
 * that denies the range, so KVM exits even where it could handle them in the kernel) and to
 * fn. Call before vid_partition_start(). 0 or -errno + err_set().
 */
int vid_partition_trap_msrs(struct vid_partition *p, uint32_t base, uint32_t count, vid_msr_fn *fn,
			    void *opaque);
/* Fixed, edge-triggered interrupt `vector` to the LAPIC with this APIC ID (KVM_SIGNAL_MSI). */
int vid_partition_signal_msi(struct vid_partition *p, uint32_t apic_id, uint8_t vector);
/*
 * The vCPU whose thread is running the caller, or NULL outside vCPU threads: lets a port I/O
 * handler (the hypercall port) find the registers of the vCPU that made the access.
 */
struct vid_vcpu *vid_vcpu_current(void);
int vid_vcpu_get_regs(struct vid_vcpu *v, struct kvm_regs *regs);
int vid_vcpu_set_regs(struct vid_vcpu *v, const struct kvm_regs *regs);

/* dev_irq callback: drives ISA IRQ line `irq` of the in-kernel PIC and IOAPIC. */
void vid_partition_irq_set(void *opaque, unsigned irq, int level);
/* dev_event callbacks for devices: request a reset / power-off of this partition. */
void vid_partition_reset_event(void *opaque, const char *why);
void vid_partition_poweroff_event(void *opaque, const char *why);

#endif
