/*
 * The platform under the guest-side Hyper-V and VMBus clients (guest/hv, guest/vmbus). The
 * clients are compiled twice: freestanding into tguest.elf (guest/hvplat.c: real MSRs, CPUID,
 * the hypercall page, IDT vectors) and hosted into the in-process harness
 * (tests/harness/hvplat_host.c: the real hv layer behind function calls, VP threads). Nothing
 * in the clients may use anything but this header.
 *
 * Interrupt model, the same in both builds: a handler registered for a vector runs only inside
 * hvplat_wait() (the guest keeps IF clear elsewhere), on the VP the interrupt was sent to. So
 * client state touched by handlers needs no lock as long as one VP drives the client.
 */
#ifndef TGUEST_HVPLAT_H
#define TGUEST_HVPLAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef HVPLAT_HOSTED
#include <stdio.h>
#include <string.h>
#else
#include "lib/printf.h"
#include "lib/string.h"
#endif

#define HVPLAT_PAGE_SIZE 4096u

/*
 * Large buffers that the code initialises itself: the freestanding build keeps them out of
 * .bss, which start.S zeroes word by word (slow where guest CPL0 is emulated).
 */
#ifdef HVPLAT_HOSTED
#define HVPLAT_NOINIT
#else
#define HVPLAT_NOINIT __attribute__((section(".bss.stacks")))
#endif

/* A zeroed, physically contiguous run of pages: va for the client, gpa for the host. */
struct hvplat_pages {
	void *va;
	uint64_t gpa;
	unsigned npages;
};

/* 0, or -1 when the access faults (#GP on real hardware, HV_MSR_GP/UNHANDLED hosted). */
int hvplat_rdmsr(uint32_t msr, uint64_t *val);
int hvplat_wrmsr(uint32_t msr, uint64_t val);
void hvplat_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

/*
 * Enters the hypervisor through the hypercall page: RCX = control, RDX = input (GPA or fast
 * value), R8 = output (GPA or second fast value). Returns RAX. Before
 * hvplat_hypercall_page_set() the freestanding build returns ~0 (no page yet).
 */
uint64_t hvplat_hypercall(uint64_t control, uint64_t input, uint64_t output);
/* The page the client enabled through HV_X64_MSR_HYPERCALL (freestanding: calls go there). */
void hvplat_hypercall_page_set(void *va);

/* npages zeroed contiguous pages. 0 or -1 (out of memory). */
int hvplat_pages_alloc(unsigned npages, struct hvplat_pages *out);
void hvplat_pages_free(struct hvplat_pages *p);
/* Host/guest virtual address of [gpa, gpa + len), or NULL when not RAM. */
void *hvplat_gpa_to_va(uint64_t gpa, size_t len);

/* Index of the CPU this code runs on (0 = boot CPU), as the platform numbered them. */
unsigned hvplat_cpu(void);
unsigned hvplat_ncpus(void);
/*
 * Runs fn(arg) on CPU cpu and waits for it (up to 2 s): the freestanding build sends an NMI to
 * an AP parked by smp.c; the harness starts a thread bound to that VP. 0, or -1 (no such CPU,
 * not started, or it did not finish in time). fn must not call hvplat_run_on itself.
 */
int hvplat_run_on(unsigned cpu, void (*fn)(void *arg), void *arg);

/*
 * Interrupt vectors (16..255): fn(arg) runs inside hvplat_wait() on the target CPU. The
 * freestanding build sends the local APIC EOI after fn returns.
 */
typedef void (*hvplat_irq_fn)(void *arg, uint8_t vector);
int hvplat_irq_register(uint8_t vector, hvplat_irq_fn fn, void *arg);
/* Interrupts taken on this CPU so far for this vector (counted before fn runs). */
uint64_t hvplat_irq_count(uint8_t vector);
/* Let pending interrupts of this CPU run, then wait a little for more (bounded, < 1 ms). */
void hvplat_wait(void);

/* Monotonic time in nanoseconds (freestanding: calibrated TSC). */
uint64_t hvplat_now_ns(void);
uint64_t hvplat_rdtsc(void);
void hvplat_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline void hvplat_mb(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#endif
