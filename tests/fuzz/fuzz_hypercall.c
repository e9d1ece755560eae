// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fuzzes the hypercall dispatcher and the synthetic MSRs: arbitrary control words, GPAs (raw,
 * or steered near RAM edges and into a page the fuzzer fills) and MSR writes, on a small guest
 * memory. Every guest access must go through guest_mem; ASan reports anything else.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/hv.h"
#include "hv/hv_hypercall.h"
#include "hv/hv_msr.h"
#include "hv/hv_proto.h"
#include "hv/hv_synic.h"
#include "lib/log.h"
#include "vid/guest_mem.h"

#define RAM (2u << 20)
#define INPUT_GPA 0x10000ull

static struct guest_mem gm;
static struct hv_partition *part;

static void ev(void *opaque, unsigned vp, uint16_t flag)
{
	hv_synic_signal_event(part, vp ^ 1, 2, (unsigned)(uintptr_t)opaque);
}

static volatile uint8_t sink;

/* Reads every payload byte it is given, so ASan checks the size passed to handlers. */
static uint16_t port(void *opaque, unsigned vp, uint32_t type, const void *p, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++)
		sink += ((const uint8_t *)p)[i];
	return (sink & 1) ? HV_STATUS_SUCCESS : HV_STATUS_INSUFFICIENT_BUFFERS;
}

static void init(void)
{
	if (guest_mem_init(&gm, RAM, 0) < 0)
		abort();
	part = hv_partition_create(&gm, 2, NULL);
	if (!part)
		abort();
	log_set_level(LOG_ERROR);
	hv_echo_port_enable(part, 1);
	hv_message_port_register(part, 4, port, NULL);
	hv_event_connection_register(part, 2, ev, (void *)(uintptr_t)7);
}

static uint64_t take(const uint8_t **d, size_t *n)
{
	uint64_t v = 0;
	size_t k = *n < 8 ? *n : 8;

	memcpy(&v, *d, k);
	*d += k;
	*n -= k;
	return v;
}

/* Steers a raw value to interesting GPAs depending on two selector bits. */
static uint64_t steer(uint64_t v, unsigned sel)
{
	switch (sel & 3) {
	case 0:
		return v;
	case 1:
		return INPUT_GPA + (v & 0x1FFF);
	case 2:
		return RAM - 0x2000 + (v & 0x3FFF); /* across the end of RAM */
	default:
		return v & (RAM - 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned ncalls;
	uint64_t sel;

	if (!part)
		init();
	if (size < 8)
		return 0;
	sel = take(&data, &size);
	/* SynIC set-up from the selector: pages anywhere (often inside RAM). */
	for (unsigned vp = 0; vp < 2; vp++) {
		hv_vp_reset(part, vp);
		if (sel & (1u << vp)) {
			hv_msr_write(part, vp, HV_MSR_SIMP, steer(sel >> 8, sel >> 2) | 1);
			hv_msr_write(part, vp, HV_MSR_SIEFP, steer(sel >> 20, sel >> 4) | 1);
			hv_msr_write(part, vp, HV_MSR_SINT0 + 2, 0xF3 | ((sel >> 6) & 1) << 16);
			hv_msr_write(part, vp, HV_MSR_SCONTROL, 1);
		}
	}
	ncalls = 1 + ((sel >> 32) & 3);
	for (unsigned i = 0; i < ncalls && size >= 24; i++) {
		struct hv_hypercall_regs r;
		unsigned vp = (sel >> (40 + i)) & 1;

		r.rcx = take(&data, &size);
		r.rdx = steer(take(&data, &size), (unsigned)(sel >> (48 + 2 * i)));
		r.r8 = take(&data, &size);
		/* The next (up to) 512 bytes become guest memory at the input page. */
		if (size) {
			size_t k = size < 512 ? size : 512;

			guest_mem_write(&gm, INPUT_GPA + (r.rdx & 0xF00), data, k);
			data += k;
			size -= k;
		}
		(void)hv_hypercall(part, vp, &r);
		hv_msr_write(part, vp, HV_MSR_EOM, 0);
	}
	/* Remaining bytes: MSR writes/reads inside the synthetic range. */
	while (size >= 10) {
		uint32_t msr = HV_MSR_RANGE_FIRST + (data[0] | (data[1] & 1) << 8);
		uint64_t val, out;

		data += 2;
		size -= 2;
		val = take(&data, &size);
		if ((msr & 0xFF) == (HV_MSR_HYPERCALL & 0xFF) || (msr & 0xFF) == 0x21)
			val = steer(val, (unsigned)val >> 1) | (val & 0xFFF);
		hv_msr_write(part, (unsigned)val & 1, msr, val);
		hv_msr_read(part, (unsigned)val & 1, msr, &out);
	}
	return 0;
}
