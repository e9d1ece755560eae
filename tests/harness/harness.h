/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * In-process guest harness: the guest-side clients (guest/hv/winhv.h, guest/vmbus/vmbc.h)
 * run on host threads against the real hv layer, over a real struct guest_mem. No KVM.
 *
 * - A thread becomes "VP n" with harness_bind() (or is started as one by harness_vp_start());
 *   client code may only run on bound threads. MSR accesses go to hv_msr_read/hv_msr_write,
 *   hypercalls to hv_hypercall(), CPUID to hv_partition_cpuid_fill() (+ CPUID.1:ECX[31]).
 * - hv's inject_interrupt callback marks the vector pending on that VP and wakes it; the
 *   handler registered with hvplat_irq_register() runs inside hvplat_wait() on the VP's
 *   thread (never inside the callback, which holds hv locks).
 * - Client pages come from guest RAM above 1 MiB (hvplat_pages_alloc); GPAs below
 *   HARNESS_ALLOC_BASE are never handed out, so tests may use them freely.
 *
 * Typical use (storvsp test): h = harness_create(&cfg); srv = vmbus_server_create(
 * harness_part(h), harness_gm(h)); vmbus_server_add_device(srv, dev); harness_bind(h, 0);
 * harness_guest_boot(h, &w, true, &why); vmbc_init(&c, &w); vmbc_connect(&c, 0);
 * vmbc_request_offers(&c); ch = vmbc_find(&c, class, 0); vmbc_open(&c, ch, ...); then
 * vmbc_send / vmbc_recv with hvplat_wait() + vmbc_poll() while waiting. Teardown:
 * vmbus_server_destroy, harness_unbind, harness_destroy.
 */
#ifndef VIRIDIAN_TESTS_HARNESS_H
#define VIRIDIAN_TESTS_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/hv.h"
#include "hv/winhv.h"
#include "vid/guest_mem.h"

#define HARNESS_MAX_VPS 8u
#define HARNESS_ALLOC_BASE (1ull << 20)

struct harness_config {
	unsigned nvps; /* 1..HARNESS_MAX_VPS (0: 1) */
	uint64_t ram_size; /* 0: 64 MiB */
	bool no_tsc; /* no guest TSC callbacks: no reference TSC page */
	bool stimers; /* CPUID offers synthetic timers + direct mode (hv's default: not offered) */
};

struct harness;

/* guest_mem + hv_partition. NULL + err_set() on failure. */
struct harness *harness_create(const struct harness_config *cfg);
/* The partition is destroyed too: destroy any vmbus server on it first. */
void harness_destroy(struct harness *h);
struct hv_partition *harness_part(struct harness *h);
struct guest_mem *harness_gm(struct harness *h);
unsigned harness_nvps(const struct harness *h);

/* The calling thread plays VP vp from now on (until harness_unbind). */
void harness_bind(struct harness *h, unsigned vp);
void harness_unbind(void);
/* Runs fn(arg) on a new thread bound to vp; harness_vp_join returns fn's result. */
int harness_vp_start(struct harness *h, unsigned vp, int (*fn)(void *arg), void *arg);
int harness_vp_join(struct harness *h, unsigned vp);

/* Interrupts hv injected so far (all vectors / one vector) on vp. */
uint64_t harness_injected(struct harness *h, unsigned vp);
uint64_t harness_injected_vector(struct harness *h, unsigned vp, uint8_t vector);
/* Pages handed out by the allocator and not freed (leak checks). */
unsigned harness_pages_in_use(struct harness *h);

/*
 * The boot sequence on the calling (bound) VP: winhv_init (detect, OS ID, hypercall page)
 * when first is true (once per partition, before any other VP boots), then winhv_vp_init and the
 * SynIC with SINT 2 (VMBus) enabled on this VP. 0, or -1 with *why set.
 */
int harness_guest_boot(struct harness *h, struct winhv *w, bool first, const char **why);

#endif
