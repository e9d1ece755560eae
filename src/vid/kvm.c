// SPDX-License-Identifier: GPL-2.0-only
/* Opening /dev/kvm and checking capabilities. */
#include "vid/kvm.h"

#include "lib/err.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

const char *vid_kvm_device_path(void)
{
	const char *p = getenv(VID_KVM_DEVICE_ENV);

	return p && *p ? p : VID_KVM_DEVICE_DEFAULT;
}

struct vid_kvm_cap {
	int cap;
	const char *name;
};

#define VID_CAP(x)                         \
	{                                  \
		KVM_CAP_##x, "KVM_CAP_" #x \
	}

/* What the partition layer relies on; all present since Linux 4.11. */
static const struct vid_kvm_cap vid_kvm_required[] = {
	VID_CAP(USER_MEMORY), VID_CAP(IRQCHIP),	 VID_CAP(PIT2),
	VID_CAP(EXT_CPUID),   VID_CAP(MP_STATE), VID_CAP(IMMEDIATE_EXIT),
};

static int vid_kvm_get_supported_cpuid(struct vid_kvm *kvm)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return -ENOMEM;
		c->nent = n;
		if (ioctl(kvm->fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			kvm->supported_cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG) {
			int e = errno;

			err_set("KVM_GET_SUPPORTED_CPUID failed: %s", strerror(e));
			return -e;
		}
	}
	err_set("KVM_GET_SUPPORTED_CPUID: too many entries");
	return -E2BIG;
}

int vid_kvm_open(struct vid_kvm *kvm)
{
	const char *path = vid_kvm_device_path();
	int v, r;

	memset(kvm, 0, sizeof(*kvm));
	kvm->fd = open(path, O_RDWR | O_CLOEXEC);
	if (kvm->fd < 0) {
		int e = errno;

		if (e == ENOENT || e == ENXIO || e == ENODEV)
			err_set("cannot open %s: %s; KVM is not available on this host (load "
				"kvm_intel or kvm_amd, or enable nested virtualization)",
				path, strerror(e));
		else if (e == EACCES || e == EPERM)
			err_set("cannot open %s: permission denied; add your user to the group "
				"that owns it (usually 'kvm') or run as root",
				path);
		else
			err_set("cannot open %s: %s", path, strerror(e));
		return -e;
	}
	v = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (v < 0) {
		err_set("%s is not a KVM device (KVM_GET_API_VERSION: %s)", path, strerror(errno));
		r = -ENOTTY;
		goto fail;
	}
	if (v != KVM_API_VERSION) {
		err_set("%s speaks KVM API version %d, Viridian needs %d", path, v,
			KVM_API_VERSION);
		r = -EPROTO;
		goto fail;
	}
	for (size_t i = 0; i < sizeof(vid_kvm_required) / sizeof(vid_kvm_required[0]); i++) {
		if (ioctl(kvm->fd, KVM_CHECK_EXTENSION, vid_kvm_required[i].cap) <= 0) {
			err_set("KVM is too old: %s is missing (Viridian needs Linux 4.11 or newer)",
				vid_kvm_required[i].name);
			r = -EOPNOTSUPP;
			goto fail;
		}
	}
	kvm->run_mmap_size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->run_mmap_size < (int)sizeof(struct kvm_run)) {
		err_set("KVM_GET_VCPU_MMAP_SIZE returned %d", kvm->run_mmap_size);
		r = -EPROTO;
		goto fail;
	}
	v = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (v <= 0)
		v = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	kvm->max_vcpus = v > 0 ? (unsigned)v : 4; /* the API's documented minimum */
	kvm->readonly_mem = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;
	r = vid_kvm_get_supported_cpuid(kvm);
	if (r < 0)
		goto fail;
	log_debug("vid", "KVM at %s: API %d, max %u vCPUs, run area %d bytes", path, v,
		  kvm->max_vcpus, kvm->run_mmap_size);
	return 0;
fail:
	close(kvm->fd);
	kvm->fd = -1;
	return r;
}

void vid_kvm_close(struct vid_kvm *kvm)
{
	if (kvm->fd >= 0)
		close(kvm->fd);
	free(kvm->supported_cpuid);
	kvm->supported_cpuid = NULL;
	kvm->fd = -1;
}
