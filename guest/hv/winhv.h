/*
 * WinHv: the guest's view of the hypervisor (detection, guest OS ID, hypercall page,
 * hypercalls, SynIC pages, message drain with the msg_pending/EOM handshake, event flags),
 * written from shared/spec/hyperv-interface-and-vmbus.md over hvplat.h.
 *
 * One struct winhv per partition. winhv_init() runs once on the boot CPU; winhv_vp_init()
 * and winhv_synic_enable() then run on every CPU that takes part (each touches only its own
 * per-VP state). Handlers run inside hvplat_wait() on the CPU whose SIM/SIEF they read.
 */
#ifndef TGUEST_HV_WINHV_H
#define TGUEST_HV_WINHV_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/winhv_defs.h"
#include "hvplat.h"

#define WINHV_MAX_VPS 64u
/* Open source (bit 63), OS type 0x7F "other", vendor-specific build: a test guest. */
#define WINHV_GUEST_OS_ID 0x817F000000010000ull
/* Linux uses 0xF3 for its callback vector (§4.4); so does the test guest. */
#define WINHV_VECTOR 0xF3u

struct winhv_info {
	uint32_t max_leaf;
	uint32_t vendor[3]; /* EBX, ECX, EDX of 0x40000000 */
	uint32_t interface; /* 0x40000001.EAX */
	uint32_t features_a, privileges_b, features_d; /* 0x40000003 EAX, EBX, EDX */
	uint32_t hints, spin_retries; /* 0x40000004 EAX, EBX */
	uint32_t max_vps, max_lps; /* 0x40000005 */
};

/* Return 0 when the message was taken; -1 leaves it in the slot (no EOM) to retry later. */
typedef int (*winhv_msg_fn)(void *arg, unsigned cpu, const struct whv_message *msg);
/* One call per event flag found set (and cleared) in this CPU's SIEF for the SINT. */
typedef void (*winhv_event_fn)(void *arg, unsigned cpu, unsigned flag);

struct winhv_vp {
	bool ready; /* winhv_vp_init done */
	bool synic; /* SynIC enabled on this VP */
	uint32_t vp_index;
	struct hvplat_pages io; /* hypercall input (page 0) and output (page 1) */
	struct hvplat_pages simp, siefp;
	uint64_t msgs, events, eoms, interrupts;
};

struct winhv {
	struct winhv_info info;
	struct hvplat_pages hcall; /* the hypercall page */
	bool hypercall_ok;
	uint8_t vector;
	winhv_msg_fn msg_fn[WHV_SINT_COUNT];
	void *msg_arg[WHV_SINT_COUNT];
	winhv_event_fn event_fn[WHV_SINT_COUNT];
	void *event_arg[WHV_SINT_COUNT];
	struct winhv_vp vp[WINHV_MAX_VPS];
};

/* CPUID detection only (§1.1): 0 when this is a usable Hyper-V child partition, else -1. */
int winhv_detect(struct winhv_info *info, const char **why);
/*
 * Detect, write the guest OS ID, enable the hypercall page (checks the host filled it), and
 * register the SynIC vector. Boot CPU. 0 or -1 (*why says what failed).
 */
int winhv_init(struct winhv *w, const char **why);
/* This CPU: read VP_INDEX, allocate its hypercall I/O pages. 0 or -1. */
int winhv_vp_init(struct winhv *w, const char **why);
/*
 * This CPU: SIMP, SIEFP, every SINT in sint_mask unmasked on w->vector without auto-EOI (the
 * guest EOIs its local APIC), then SCONTROL.enable. 0 or -1.
 */
int winhv_synic_enable(struct winhv *w, uint16_t sint_mask, const char **why);
/* This CPU: SINTs masked, SCONTROL, SIEFP, SIMP disabled (the host must stop writing). */
void winhv_synic_disable(struct winhv *w);

void winhv_set_msg_handler(struct winhv *w, unsigned sint, winhv_msg_fn fn, void *arg);
void winhv_set_event_handler(struct winhv *w, unsigned sint, winhv_event_fn fn, void *arg);

/* Raw hypercalls: the returned RAX (status in bits 15:0, reps completed in 43:32). */
uint64_t winhv_hypercall_fast(uint16_t code, uint64_t in1, uint64_t in2);
/* Slow call with in_len bytes copied to this VP's input page; output page GPA passed in R8. */
uint64_t winhv_hypercall_slow(struct winhv *w, uint64_t control, const void *in, uint32_t in_len,
			      void *out, uint32_t out_len);
/* GPAs of this VP's hypercall input/output pages (for tests that build odd inputs). */
uint64_t winhv_input_gpa(struct winhv *w);

/* HvPostMessage / HvSignalEvent from this CPU: the hypervisor status (0 = success). */
uint16_t winhv_post_message(struct winhv *w, uint32_t connection_id, uint32_t message_type,
			    const void *payload, uint32_t size);
uint16_t winhv_signal_event(uint32_t connection_id, uint16_t flag);

/*
 * Drains this CPU's SIM slot for sint: copy, hand to the handler, free the slot, barrier, EOM
 * when msg_pending was set (§4.2); repeats while the host refills the slot. Returns messages
 * taken.
 */
unsigned winhv_drain_messages(struct winhv *w, unsigned sint);
/* Test-and-clears this CPU's SIEF bits for sint and calls the event handler. Returns count. */
unsigned winhv_scan_events(struct winhv *w, unsigned sint);
/* The interrupt handler: events, then messages, of every SINT with a handler. */
void winhv_isr(void *arg, uint8_t vector);

/* TIME_REF_COUNT (100 ns units); 0 when the MSR faults. */
uint64_t winhv_ref_time(void);

static inline uint16_t winhv_status(uint64_t rax)
{
	return (uint16_t)rax;
}

static inline unsigned winhv_reps_done(uint64_t rax)
{
	return (unsigned)((rax >> 32) & 0xfff);
}

#endif
