/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The system KVM device: open it, check that the capabilities Viridian needs are there, and
 * say in one line what is wrong when they are not (no KVM, no permission, KVM too old).
 */
#ifndef VIRIDIAN_VID_KVM_H
#define VIRIDIAN_VID_KVM_H

#include <stdbool.h>
#include <stdint.h>

/* Environment variable that overrides /dev/kvm (tests point it at a missing path). */
#define VID_KVM_DEVICE_ENV "VIRIDIAN_KVM_DEVICE"
#define VID_KVM_DEVICE_DEFAULT "/dev/kvm"

struct kvm_cpuid2;

struct vid_kvm {
	int fd;
	int run_mmap_size;
	unsigned max_vcpus;
	bool readonly_mem;
	struct kvm_cpuid2 *supported_cpuid; /* KVM_GET_SUPPORTED_CPUID, owned */
};

/* $VIRIDIAN_KVM_DEVICE or /dev/kvm. */
const char *vid_kvm_device_path(void);
/* 0, or -errno with a one-line err_set() that says how to fix it. */
int vid_kvm_open(struct vid_kvm *kvm);
void vid_kvm_close(struct vid_kvm *kvm);

#endif
