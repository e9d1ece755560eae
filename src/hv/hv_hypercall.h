/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Hypercall dispatcher and the registry of message ports / event connections.
 *
 * vCPU loop, on KVM_EXIT_IO with direction OUT, port LAYOUT_HV_HYPERCALL_PORT, size 4, count 1
 * and data == HV_HYPERCALL_MAGIC (see hv_msr.h for the stub):
 *   KVM_GET_REGS; regs.rcx = RCX (control), regs.rdx = R10 (the stub moved the guest's RDX
 *   there), regs.r8 = R8; RAX = hv_hypercall(part, vp, &regs); KVM_SET_REGS; KVM_RUN.
 * Any other access to that port is not a hypercall (ignore it / treat as unassigned I/O).
 */
#ifndef VIRIDIAN_HV_HV_HYPERCALL_H
#define VIRIDIAN_HV_HV_HYPERCALL_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/hv.h"

struct hv_hypercall_regs {
	uint64_t rcx; /* control word */
	uint64_t rdx; /* input GPA, or first fast input (guest RDX, from R10 after the stub) */
	uint64_t r8; /* output GPA, or second fast input */
};

/*
 * True when a port-I/O exit is the hypercall stub's OUT: is_out, port LAYOUT_HV_HYPERCALL_PORT,
 * size 4, count 1, data (the kvm_run I/O data) == HV_HYPERCALL_MAGIC.
 */
bool hv_hypercall_exit_match(bool is_out, uint16_t port, uint8_t size, uint32_t count,
			     const void *data);

/* Returns the guest's RAX: status | reps_completed << 32. */
uint64_t hv_hypercall(struct hv_partition *part, unsigned vp, struct hv_hypercall_regs *regs);

/*
 * Message port: HvPostMessage to connection_id calls handler on the sending VP's thread. It
 * returns an HV_STATUS_* (e.g. INSUFFICIENT_BUFFERS to make the guest retry). payload is a
 * host copy, size <= 240.
 */
typedef uint16_t (*hv_message_handler)(void *opaque, unsigned vp, uint32_t message_type,
				       const void *payload, uint32_t size);
/* Event connection: HvSignalEvent(connection_id, flag) calls this, or writes an eventfd. */
typedef void (*hv_event_handler)(void *opaque, unsigned vp, uint16_t flag);

/* 0, -EEXIST (id taken), -ENOSPC, -EINVAL. Register/unregister while VPs run is allowed. */
int hv_message_port_register(struct hv_partition *part, uint32_t connection_id,
			     hv_message_handler handler, void *opaque);
int hv_event_connection_register(struct hv_partition *part, uint32_t connection_id,
				 hv_event_handler handler, void *opaque);
int hv_event_connection_register_eventfd(struct hv_partition *part, uint32_t connection_id,
					 int eventfd);
/*
 * Removes a port or connection. The handler may still be running on a VP thread when this
 * returns, so free its opaque only after the VPs are stopped.
 */
void hv_connection_unregister(struct hv_partition *part, uint32_t connection_id);

/* Test port: echoes every message back to the sender VP on SINT 2 (VMBUS_MESSAGE_SINT). */
int hv_echo_port_enable(struct hv_partition *part, uint32_t connection_id);

/*
 * Extra hypercalls (none of Linux 6.1's optional ones are offered yet; this keeps adding one a
 * one-file change). The dispatcher validates the control word, GPAs and sizes first: input =
 * fixed_size + 8 * varhead + rep_count * rep_size bytes, in one page of guest RAM. The handler
 * gets a host copy of it, and for rep calls processes reps [*reps_done, rep_count),
 * updating *reps_done. output_gpa is only checked for 8-byte alignment: write it through
 * guest_mem, which bounds-checks it.
 */
struct hv_hypercall_desc {
	uint16_t code;
	uint8_t fast_ok; /* accepts the register-based form (fixed_size <= 16, no reps) */
	uint8_t slow_ok;
	uint16_t fixed_size;
	uint16_t rep_size; /* 0: not a rep hypercall */
	uint16_t (*handler)(struct hv_partition *part, unsigned vp, const void *input,
			    uint32_t input_size, uint64_t output_gpa, uint32_t rep_count,
			    uint32_t *reps_done, void *opaque);
	void *opaque;
};
int hv_hypercall_register(struct hv_partition *part, const struct hv_hypercall_desc *desc);

#endif
