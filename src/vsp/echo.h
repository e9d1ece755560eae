/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Echo test device (issue 4): a vmbus_device that returns every packet it receives.
 *
 * Class GUID  VSP_ECHO_CLASS_GUID  "8a2f6b3e-5c1d-4e7a-9b0f-3d6e2c41a5b7" (Viridian's own; no
 *             guest driver binds it: the test guest's VMBus scenario and the harness use it).
 * Instance    a fresh random GUID per vsp_echo_create() (so several echo devices may coexist).
 *
 * Protocol (guest's view):
 *  - DATA_INBAND (6): answered with one DATA_INBAND packet, same trans_id, payload = the
 *    request's payload as the ring carried it ((len8 - offset8) * 8 bytes, padding included).
 *  - DATA_USING_GPA_DIRECT (9): the data buffer the ranges describe is read through guest_mem
 *    and returned inline as DATA_INBAND packets with the request's trans_id, in order, each at
 *    most the guest's max packet size (4096 bytes with the descriptor, so 4080 data bytes per
 *    packet); a buffer larger than that comes back in several packets. The request's own
 *    inline payload is ignored. Buffers over VSP_ECHO_MAX_GPA_BYTES, ranges outside guest RAM
 *    or malformed range lists are a protocol error (the channel is reset).
 *  - Every other packet type is dropped.
 * No completion packets are sent, whatever the request's flags say.
 */
#ifndef VIRIDIAN_VSP_ECHO_H
#define VIRIDIAN_VSP_ECHO_H

#include "vmbus/device.h"

#define VSP_ECHO_CLASS_GUID "8a2f6b3e-5c1d-4e7a-9b0f-3d6e2c41a5b7"
#define VSP_ECHO_MAX_GPA_BYTES (1u << 20)

/* NULL + err_set() on failure. Add it with vmbus_server_add_device(). */
struct vmbus_device *vsp_echo_create(void);
/* After vmbus_server_destroy() (or before the device was added). */
void vsp_echo_destroy(struct vmbus_device *dev);

#endif
