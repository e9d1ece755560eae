/*
 * Client half of the echo test device (Viridian's own, class 8a2f6b3e-5c1d-4e7a-9b0f-
 * 3d6e2c41a5b7): random-size packets with checksums, inband and GPA-direct, every reply
 * checked. Shared by the test guest's vmbus scenario and the in-process harness tests.
 *
 * Echo protocol as the device documents it: an inband packet comes back as one inband packet
 * with the same trans_id and the payload padded to 8 bytes; a GPA-direct packet's buffer comes
 * back inline as inband packets of at most 4080 bytes, in order, with the request's trans_id.
 */
#ifndef TGUEST_VMBUS_VMBC_ECHO_H
#define TGUEST_VMBUS_VMBC_ECHO_H

#include <stddef.h>
#include <stdint.h>

#include "vmbus/vmbc.h"

extern const uint8_t vmbc_echo_class[16]; /* wire order */

#define VMBC_ECHO_CHUNK 4080u

struct vmbc_echo_opts {
	unsigned count;
	uint32_t max_len; /* inband payload 1..max_len (<= 4080) */
	unsigned window; /* packets in flight (inband) */
	uint64_t seed;
	uint64_t stall_kick_ns; /* 0: never; else re-signal the host after this long idle */
};

struct vmbc_echo_result {
	unsigned done;
	unsigned stall_kicks;
	char why[160]; /* set on failure */
};

/* 0, or a VMBC_E* code with r->why saying what went wrong. */
int vmbc_echo_inband(struct vmbc *c, struct vmbc_channel *ch, const struct vmbc_echo_opts *o,
		     struct vmbc_echo_result *r);
/* Buffers of 1 .. 5 pages at random offsets in a 6-page allocation, one request at a time. */
int vmbc_echo_gpa_direct(struct vmbc *c, struct vmbc_channel *ch, const struct vmbc_echo_opts *o,
			 struct vmbc_echo_result *r);

#endif
