/* Hosted stand-in for guest/arch/x86.h: the guest TSC is the harness's, port I/O is a no-op. */
#ifndef HARNESS_SHIM_ARCH_X86_H
#define HARNESS_SHIM_ARCH_X86_H

#include <stdint.h>

#include "hvplat.h"

static inline uint64_t rdtsc(void)
{
	return hvplat_rdtsc();
}

static inline void outl(uint16_t port, uint32_t v)
{
	(void)port;
	(void)v;
}

static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

#endif
