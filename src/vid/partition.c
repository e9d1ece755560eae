// SPDX-License-Identifier: GPL-2.0-only
/* KVM VM, vCPU threads and the exit dispatcher. */
#include "vid/partition.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vid/layout.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* KVM needs three pages for the real-mode TSS and one for the identity map, in the hole. */
#define VID_TSS_GPA 0xfffbd000ull
#define VID_IDENTITY_MAP_GPA 0xfffbc000ull

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_DM_NMI 0x400
#define APIC_DM_EXTINT 0x700

static __thread struct vid_vcpu *vid_current_vcpu;

struct vid_vcpu *vid_vcpu_current(void)
{
	return vid_current_vcpu;
}

int vid_vcpu_get_regs(struct vid_vcpu *v, struct kvm_regs *regs)
{
	return ioctl(v->fd, KVM_GET_REGS, regs) < 0 ? -errno : 0;
}

int vid_vcpu_set_regs(struct vid_vcpu *v, const struct kvm_regs *regs)
{
	return ioctl(v->fd, KVM_SET_REGS, regs) < 0 ? -errno : 0;
}

static void vid_kick_handler(int sig)
{
	/* Only there so that the signal interrupts KVM_RUN with EINTR. */
}

static int vid_ioctl_fail(const char *what)
{
	int e = errno;

	err_set("%s failed: %s", what, strerror(e));
	return -e;
}

static int vid_partition_map_memory(struct vid_partition *p)
{
	for (unsigned i = 0; i < p->mem->nregions; i++) {
		const struct guest_mem_region *r = &p->mem->regions[i];
		struct kvm_userspace_memory_region mr = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->hva,
		};

		if (r->kind == GUEST_MEM_ROM) {
			if (!p->kvm->readonly_mem) {
				err_set("this KVM lacks KVM_CAP_READONLY_MEM, needed for ROM regions");
				return -EOPNOTSUPP;
			}
			mr.flags = KVM_MEM_READONLY;
		}
		if (ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
			return vid_ioctl_fail("KVM_SET_USER_MEMORY_REGION");
	}
	return 0;
}

static int vid_vcpu_set_cpuid(struct vid_partition *p, struct vid_vcpu *v)
{
	const struct kvm_cpuid2 *sup = p->kvm->supported_cpuid;
	unsigned cap = sup->nent + 32; /* room for the hv layer's leaves */
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cap * sizeof(c->entries[0]));
	int r = 0;

	if (!c) {
		err_set("out of memory");
		return -ENOMEM;
	}
	c->nent = sup->nent;
	memcpy(c->entries, sup->entries, sup->nent * sizeof(c->entries[0]));
	vid_cpuid_fixup(c->entries, c->nent, v->index, p->ncpus);
	if (p->cpuid_hook)
		r = p->cpuid_hook(p->cpuid_hook_opaque, c, cap, v->index);
	if (r == 0 && c->nent > cap) {
		err_set("CPUID hook produced %u entries, room for %u", c->nent, cap);
		r = -EOVERFLOW;
	}
	if (r == 0 && ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		r = vid_ioctl_fail("KVM_SET_CPUID2");
	free(c);
	return r;
}

static int vid_vcpu_set_msrs(struct vid_vcpu *v)
{
	/* struct kvm_msrs ends in a flexible array: room for two entries after the header. */
	union {
		struct kvm_msrs hdr;
		uint8_t raw[sizeof(struct kvm_msrs) + 2 * sizeof(struct kvm_msr_entry)];
	} m;
	struct kvm_msr_entry *e = m.hdr.entries;
	int r;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 2;
	e[0].index = MSR_IA32_MISC_ENABLE;
	e[0].data = 1; /* fast string operations */
	e[1].index = MSR_MTRR_DEF_TYPE;
	e[1].data = 0xc06; /* MTRRs and fixed MTRRs on, default write-back */
	r = ioctl(v->fd, KVM_SET_MSRS, &m);
	if (r < 0)
		return vid_ioctl_fail("KVM_SET_MSRS");
	if (r != 2)
		log_debug("vid", "vCPU %u: KVM accepted %d of 2 default MSRs", v->index, r);
	return 0;
}

static int vid_vcpu_set_lapic(struct vid_vcpu *v)
{
	struct kvm_lapic_state la;
	uint32_t lvt;

	if (ioctl(v->fd, KVM_GET_LAPIC, &la) < 0)
		return vid_ioctl_fail("KVM_GET_LAPIC");
	/* LINT0 takes the PIC's ExtINT, LINT1 is NMI: the PC wiring firmware would program. */
	memcpy(&lvt, &la.regs[APIC_LVT0], 4);
	lvt = (lvt & ~0x700u) | APIC_DM_EXTINT;
	memcpy(&la.regs[APIC_LVT0], &lvt, 4);
	memcpy(&lvt, &la.regs[APIC_LVT1], 4);
	lvt = (lvt & ~0x700u) | APIC_DM_NMI;
	memcpy(&la.regs[APIC_LVT1], &lvt, 4);
	if (ioctl(v->fd, KVM_SET_LAPIC, &la) < 0)
		return vid_ioctl_fail("KVM_SET_LAPIC");
	return 0;
}

static int vid_vcpu_create(struct vid_partition *p, unsigned index)
{
	struct vid_vcpu *v = &p->vcpus[index];
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	int r;

	v->p = p;
	v->index = index;
	v->fd = ioctl(p->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0)
		return vid_ioctl_fail("KVM_CREATE_VCPU");
	v->run = mmap(NULL, (size_t)p->kvm->run_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return vid_ioctl_fail("mmap of the vCPU run area");
	}
	r = vid_vcpu_set_cpuid(p, v);
	if (r == 0)
		r = vid_vcpu_set_msrs(v);
	if (r == 0)
		r = vid_vcpu_set_lapic(v);
	if (r == 0 && ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		r = vid_ioctl_fail("KVM_SET_FPU");
	if (r == 0 && index > 0) {
		/* APs wait for INIT-SIPI from the guest through the in-kernel LAPIC. */
		struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_UNINITIALIZED};

		if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
			r = vid_ioctl_fail("KVM_SET_MP_STATE");
	}
	if (r < 0)
		err_prefix("vCPU %u", index);
	return r;
}

int vid_partition_init(struct vid_partition *p, struct vid_kvm *kvm, struct guest_mem *mem)
{
	struct sigaction sa = {.sa_handler = vid_kick_handler};

	memset(p, 0, sizeof(*p));
	p->vm_fd = -1;
	p->stop_efd = -1;
	p->kvm = kvm;
	p->mem = mem;
	pthread_mutex_init(&p->stop_lock, NULL);
	iobus_init(&p->pio, "pio");
	iobus_init(&p->mmio, "mmio");
	/* No SA_RESTART: the kick must end KVM_RUN with EINTR. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(VID_KICK_SIGNAL, &sa, NULL) < 0)
		return vid_ioctl_fail("sigaction");
	p->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->stop_efd < 0)
		return vid_ioctl_fail("eventfd");
	return 0;
}

int vid_partition_create(struct vid_partition *p, struct vid_kvm *kvm, struct guest_mem *mem,
			 unsigned ncpus, vid_cpuid_hook_fn *cpuid_hook, void *hook_opaque)
{
	struct kvm_pit_config pit = {.flags = 0};
	int r;

	r = vid_partition_init(p, kvm, mem);
	if (r < 0)
		return r;
	p->cpuid_hook = cpuid_hook;
	p->cpuid_hook_opaque = hook_opaque;
	if (ncpus == 0 || ncpus > kvm->max_vcpus) {
		err_set("--cpus %u: this host's KVM supports 1 to %u vCPUs", ncpus, kvm->max_vcpus);
		return -EINVAL;
	}
	p->vm_fd = ioctl(kvm->fd, KVM_CREATE_VM, 0);
	if (p->vm_fd < 0)
		return vid_ioctl_fail("KVM_CREATE_VM");
	/*
	 * Only Intel hosts without unrestricted guest need these (to run real mode); other
	 * KVM back ends may refuse them, which costs nothing for long-mode and PVH entry.
	 */
	if (ioctl(p->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){VID_IDENTITY_MAP_GPA}) < 0)
		log_debug("vid", "KVM_SET_IDENTITY_MAP_ADDR: %s (ignored)", strerror(errno));
	if (ioctl(p->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VID_TSS_GPA) < 0)
		log_debug("vid", "KVM_SET_TSS_ADDR: %s (ignored)", strerror(errno));
	if (ioctl(p->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return vid_ioctl_fail("KVM_CREATE_IRQCHIP");
	if (ioctl(p->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return vid_ioctl_fail("KVM_CREATE_PIT2");
	r = vid_partition_map_memory(p);
	if (r < 0)
		return r;
	p->vcpus = calloc(ncpus, sizeof(*p->vcpus));
	if (!p->vcpus) {
		err_set("out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < ncpus; i++)
		p->vcpus[i].fd = -1;
	p->ncpus = ncpus;
	for (unsigned i = 0; i < ncpus; i++) {
		r = vid_vcpu_create(p, i);
		if (r < 0)
			return r;
	}
	log_debug("vid", "partition: %u vCPUs, %llu MiB RAM", ncpus,
		  (unsigned long long)(mem->ram_size >> 20));
	return 0;
}

int vid_partition_set_boot_cpu(struct vid_partition *p, const struct boot_cpu_state *cpu)
{
	struct vid_vcpu *v = &p->vcpus[0];
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return vid_ioctl_fail("KVM_GET_SREGS");
	vid_sregs_from_boot(cpu, &sregs);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return vid_ioctl_fail("KVM_SET_SREGS");
	vid_regs_from_boot(cpu, &regs);
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return vid_ioctl_fail("KVM_SET_REGS");
	return 0;
}

void vid_partition_request_stop(struct vid_partition *p, enum vid_stop_reason reason,
				const char *fmt, ...)
{
	uint64_t one = 1;
	va_list ap;

	pthread_mutex_lock(&p->stop_lock);
	if (atomic_load(&p->stop_reason) != VID_RUNNING) {
		pthread_mutex_unlock(&p->stop_lock);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(p->stop_detail, sizeof(p->stop_detail), fmt, ap);
	va_end(ap);
	atomic_store(&p->stop_reason, (int)reason);
	/* immediate_exit first: a vCPU about to enter KVM_RUN returns at once; the signal
	 * gets the ones already inside. */
	for (unsigned i = 0; i < p->ncpus; i++)
		if (p->vcpus[i].run)
			__atomic_store_n(&p->vcpus[i].run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < p->ncpus; i++)
		if (p->vcpus[i].thread_started &&
		    !pthread_equal(p->vcpus[i].thread, pthread_self()))
			pthread_kill(p->vcpus[i].thread, VID_KICK_SIGNAL);
	pthread_mutex_unlock(&p->stop_lock);
	if (p->stop_efd >= 0 && write(p->stop_efd, &one, sizeof(one)) < 0)
		log_warn("vid", "cannot signal the stop eventfd: %s", strerror(errno));
}

int vid_partition_trap_msrs(struct vid_partition *p, uint32_t base, uint32_t count, vid_msr_fn *fn,
			    void *opaque)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_X86_USER_SPACE_MSR,
		.args[0] = KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_UNKNOWN,
	};
	struct kvm_msr_filter filter = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
	uint8_t *deny;

	if (count == 0 || count > 0x10000) {
		err_set("MSR trap range of %u MSRs is out of range (1..65536)", count);
		return -EINVAL;
	}
	if (ioctl(p->kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR) <= 0 ||
	    ioctl(p->kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) <= 0) {
		err_set("KVM is too old: KVM_CAP_X86_USER_SPACE_MSR / KVM_CAP_X86_MSR_FILTER "
			"missing (Viridian needs Linux 5.10 or newer for Hyper-V emulation)");
		return -EOPNOTSUPP;
	}
	if (ioctl(p->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return vid_ioctl_fail("KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR)");
	/* A clear bit denies the MSR in KVM, which then exits to us with reason FILTER. */
	deny = calloc(1, DIV_ROUND_UP(count, 8));
	if (!deny) {
		err_set("out of memory");
		return -ENOMEM;
	}
	filter.ranges[0] = (struct kvm_msr_filter_range){
		.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
		.nmsrs = count,
		.base = base,
		.bitmap = deny,
	};
	if (ioctl(p->vm_fd, KVM_X86_SET_MSR_FILTER, &filter) < 0) {
		int r = vid_ioctl_fail("KVM_X86_SET_MSR_FILTER");

		free(deny);
		return r;
	}
	free(deny); /* KVM copies the bitmap */
	p->msr_fn = fn;
	p->msr_opaque = opaque;
	return 0;
}

int vid_partition_signal_msi(struct vid_partition *p, uint32_t apic_id, uint8_t vector)
{
	/* Physical destination, fixed delivery, edge: address carries the APIC ID. */
	struct kvm_msi msi = {
		.address_lo = 0xfee00000u | ((apic_id & 0xff) << 12),
		.address_hi = 0,
		.data = vector,
	};

	if (ioctl(p->vm_fd, KVM_SIGNAL_MSI, &msi) < 0) {
		int e = errno;

		log_warn_ratelimited("vid", "KVM_SIGNAL_MSI to APIC %u vector %u: %s", apic_id,
				     vector, strerror(e));
		return -e;
	}
	return 0;
}

void vid_partition_irq_set(void *opaque, unsigned irq, int level)
{
	struct vid_partition *p = opaque;
	struct kvm_irq_level il = {.irq = irq, .level = level ? 1 : 0};

	if (ioctl(p->vm_fd, KVM_IRQ_LINE, &il) < 0)
		log_warn_ratelimited("vid", "KVM_IRQ_LINE %u=%d: %s", irq, level, strerror(errno));
}

void vid_partition_reset_event(void *opaque, const char *why)
{
	vid_partition_request_stop(opaque, VID_STOP_RESET, "%s", why);
}

void vid_partition_poweroff_event(void *opaque, const char *why)
{
	vid_partition_request_stop(opaque, VID_STOP_POWEROFF, "%s", why);
}

static void vid_vcpu_handle_io(struct vid_vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned size = run->io.size, count = run->io.count;
	uint64_t off = run->io.data_offset;
	uint8_t *data;

	/* KVM fills these, but a bad value must not make us walk off the run area. */
	if ((size != 1 && size != 2 && size != 4) || count == 0 ||
	    off > (uint64_t)v->p->kvm->run_mmap_size ||
	    (uint64_t)count * size > (uint64_t)v->p->kvm->run_mmap_size - off) {
		vid_partition_request_stop(v->p, VID_STOP_ERROR,
					   "vCPU %u: malformed port I/O exit (size %u count %u)",
					   v->index, size, count);
		return;
	}
	data = (uint8_t *)run + off;
	for (unsigned i = 0; i < count; i++, data += size)
		iobus_dispatch(&v->p->pio, run->io.port, data, size,
			       run->io.direction == KVM_EXIT_IO_OUT);
}

static void vid_vcpu_read_insn(struct vid_vcpu *v, uint64_t rip, char *out, size_t outlen)
{
	struct kvm_run *run = v->run;
	uint8_t bytes[16];
	unsigned n = 0;
	size_t pos = 0;

	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
	    run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION && run->internal.ndata >= 1 &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		n = MIN(run->emulation_failure.insn_size, (uint8_t)sizeof(bytes));
		memcpy(bytes, run->emulation_failure.insn_bytes, n);
	} else {
		/* Older KVM: translate RIP (flat CS) and read guest memory ourselves. */
		struct kvm_sregs s;
		struct kvm_translation tr = {0};

		if (ioctl(v->fd, KVM_GET_SREGS, &s) == 0) {
			tr.linear_address = s.cs.base + rip;
			if (ioctl(v->fd, KVM_TRANSLATE, &tr) == 0 && tr.valid) {
				/* Stop at the page end: the next page may map elsewhere. */
				n = (unsigned)MIN(15ull, 0x1000 - (tr.physical_address & 0xfff));
				if (guest_mem_read(v->p->mem, tr.physical_address, bytes, n) < 0)
					n = 0;
			}
		}
	}
	out[0] = 0;
	for (unsigned i = 0; i < n && pos + 4 < outlen; i++)
		pos += (size_t)snprintf(out + pos, outlen - pos, "%s%02x", i ? " " : "", bytes[i]);
	if (!n)
		snprintf(out, outlen, "unavailable");
}

static const char *vid_suberror_name(uint32_t s)
{
	switch (s) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "emulation failure";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "event delivery failed";
	default:
		return "unknown";
	}
}

static void vid_vcpu_internal_error(struct vid_vcpu *v)
{
	struct kvm_run *run = v->run;
	struct kvm_regs regs;
	uint64_t rip = 0;
	char insn[64];

	if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
		rip = regs.rip;
	vid_vcpu_read_insn(v, rip, insn, sizeof(insn));
	log_error("vid",
		  "vCPU %u: KVM_EXIT_INTERNAL_ERROR suberror %u (%s), RIP 0x%llx, "
		  "instruction bytes: %s",
		  v->index, run->internal.suberror, vid_suberror_name(run->internal.suberror),
		  (unsigned long long)rip, insn);
	for (uint32_t i = 0; i < run->internal.ndata && i < 16; i++)
		log_error("vid", "vCPU %u:   data[%u] = 0x%llx", v->index, i,
			  (unsigned long long)run->internal.data[i]);
	vid_partition_request_stop(v->p, VID_STOP_EMULATION,
				   "vCPU %u: KVM internal error, suberror %u (%s) at RIP 0x%llx, "
				   "instruction bytes: %s",
				   v->index, run->internal.suberror,
				   vid_suberror_name(run->internal.suberror),
				   (unsigned long long)rip, insn);
}

/* Handles one exit. */
void vid_vcpu_handle_exit(struct vid_vcpu *v)
{
	struct kvm_run *run = v->run;
	struct vid_partition *p = v->p;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vid_vcpu_handle_io(v);
		break;
	case KVM_EXIT_MMIO:
		if (run->mmio.len > sizeof(run->mmio.data)) {
			vid_partition_request_stop(p, VID_STOP_ERROR, "vCPU %u: MMIO length %u",
						   v->index, run->mmio.len);
			break;
		}
		iobus_dispatch(&p->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			       run->mmio.is_write);
		break;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT: /* only without an in-kernel LAPIC; nothing to do but run again */
		break;
	case KVM_EXIT_SHUTDOWN:
		vid_partition_request_stop(p, VID_STOP_RESET,
					   "triple fault on vCPU %u (KVM_EXIT_SHUTDOWN)", v->index);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			vid_partition_request_stop(p, VID_STOP_POWEROFF,
						   "KVM system event shutdown");
		else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			vid_partition_request_stop(p, VID_STOP_RESET, "KVM system event reset");
		else
			vid_partition_request_stop(p, VID_STOP_EMULATION,
						   "vCPU %u: KVM system event %u", v->index,
						   run->system_event.type);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		vid_vcpu_internal_error(v);
		break;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR: {
		bool wr = run->exit_reason == KVM_EXIT_X86_WRMSR;
		uint64_t data = wr ? run->msr.data : 0;

		/* Nobody claimed it, or the handler refused: the guest gets #GP, as on hardware. */
		if (!p->msr_fn ||
		    p->msr_fn(p->msr_opaque, v->index, wr, run->msr.index, &data) < 0) {
			run->msr.error = 1;
			log_debug("vid", "vCPU %u: %s of MSR 0x%x -> #GP", v->index,
				  wr ? "write" : "read", run->msr.index);
		} else {
			run->msr.error = 0;
			if (!wr)
				run->msr.data = data;
		}
		break;
	}
	case KVM_EXIT_FAIL_ENTRY:
		vid_partition_request_stop(
			p, VID_STOP_EMULATION,
			"vCPU %u: VM entry failed, hardware reason 0x%llx (cpu %u)", v->index,
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason,
			run->fail_entry.cpu);
		break;
	default:
		if (p->exit_hook && p->exit_hook(p->exit_hook_opaque, v))
			break;
		vid_partition_request_stop(p, VID_STOP_EMULATION,
					   "vCPU %u: unexpected KVM exit reason %u", v->index,
					   run->exit_reason);
		break;
	}
}

static void *vid_vcpu_thread(void *arg)
{
	struct vid_vcpu *v = arg;
	struct vid_partition *p = v->p;
	sigset_t set;

	/* The owner handles SIGINT/SIGTERM; this thread only takes the kick. */
	sigemptyset(&set);
	sigaddset(&set, VID_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	vid_current_vcpu = v;
	while (atomic_load(&p->stop_reason) == VID_RUNNING) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vid_partition_request_stop(p, VID_STOP_ERROR, "vCPU %u: KVM_RUN failed: %s",
						   v->index, strerror(errno));
			break;
		}
		vid_vcpu_handle_exit(v);
	}
	return NULL;
}

int vid_partition_start(struct vid_partition *p)
{
	for (unsigned i = 0; i < p->ncpus; i++) {
		struct vid_vcpu *v = &p->vcpus[i];
		int r = pthread_create(&v->thread, NULL, vid_vcpu_thread, v);

		if (r) {
			err_set("cannot start the thread of vCPU %u: %s", i, strerror(r));
			vid_partition_request_stop(p, VID_STOP_ERROR, "%s", err_msg());
			return -r;
		}
		pthread_mutex_lock(&p->stop_lock);
		v->thread_started = true;
		/* A stop requested while this thread was being created missed its kick. */
		if (atomic_load(&p->stop_reason) != VID_RUNNING)
			pthread_kill(v->thread, VID_KICK_SIGNAL);
		pthread_mutex_unlock(&p->stop_lock);
	}
	return 0;
}

enum vid_stop_reason vid_partition_wait(struct vid_partition *p)
{
	for (unsigned i = 0; i < p->ncpus; i++) {
		if (p->vcpus[i].thread_started) {
			pthread_join(p->vcpus[i].thread, NULL);
			p->vcpus[i].thread_started = false;
		}
	}
	return (enum vid_stop_reason)atomic_load(&p->stop_reason);
}

void vid_partition_destroy(struct vid_partition *p)
{
	if (atomic_load(&p->stop_reason) == VID_RUNNING)
		vid_partition_request_stop(p, VID_STOP_ERROR, "partition destroyed");
	vid_partition_wait(p);
	for (unsigned i = 0; p->vcpus && i < p->ncpus; i++) {
		if (p->vcpus[i].run)
			munmap(p->vcpus[i].run, (size_t)p->kvm->run_mmap_size);
		if (p->vcpus[i].fd >= 0)
			close(p->vcpus[i].fd);
	}
	free(p->vcpus);
	p->vcpus = NULL;
	if (p->vm_fd >= 0)
		close(p->vm_fd);
	if (p->stop_efd >= 0)
		close(p->stop_efd);
	p->vm_fd = p->stop_efd = -1;
	pthread_mutex_destroy(&p->stop_lock);
}
