/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The VMBus channel server of one partition (spec/hyperv-interface-and-vmbus.md §6-8): version
 * negotiation, offers, channels, GPADLs, signalling. It sits on the hv layer: it registers the
 * message ports for INITIATE_CONTACT (connection id 4 and 1) and the negotiated message
 * connection id, receives HvPostMessage payloads on the posting VP's thread, answers through
 * hv_synic_post_message on the guest's target VP and SINT 2, and registers one event
 * connection per open channel (drained on the signalling VP when idle, else by its I/O thread).
 *
 * Wiring (viridian run / vmwp): after hv_partition_create: vmbus_server_create(), then
 * vmbus_server_add_device() for each VSP, before the vCPUs start. On VM reboot:
 * vmbus_server_reset(). On exit: vmbus_server_destroy() after the vCPUs have stopped.
 * The host calls below (add_device, rescind, reoffer, reset, destroy) may block while channel
 * threads stop: call them from a VP or control thread, never from a device callback.
 *
 * Guest-visible policy (server.c): msg_conn_id 1; offers carry monitor_allocated 0,
 * is_dedicated_interrupt 1, connection_id 0x2000 + relid; GPADL_TEARDOWN of an open channel's
 * ring is answered when the channel closes; closing a primary channel rescinds its
 * sub-channels; a guest that leaves 1024 replies unread gets HV_STATUS_INSUFFICIENT_BUFFERS.
 */
#ifndef VIRIDIAN_VMBUS_VMBUS_H
#define VIRIDIAN_VMBUS_VMBUS_H

#include <stdint.h>

#include "hv/hv.h"
#include "vid/guest_mem.h"
#include "vmbus/device.h"

struct vmbus_server;

/* Highest protocol version offered (5.3) and the oldest accepted (2.4, spec §6.2). */
#define VMBUS_VERSION(major, minor) (((uint32_t)(major) << 16) | (minor))
#define VMBUS_VERSION_MAX VMBUS_VERSION(5, 3)
#define VMBUS_VERSION_MIN VMBUS_VERSION(2, 4)

/* Limits enforced on the guest (bad GPADLs/channels get an error status, never a crash). */
#define VMBUS_MAX_DEVICES 256u
#define VMBUS_MAX_GPADLS 4096u /* per bus */
#define VMBUS_MAX_GPADL_PAGES 65536u /* per GPADL: 256 MiB */

/* NULL + err_set(). gm and part must outlive the server. */
struct vmbus_server *vmbus_server_create(struct hv_partition *part, struct guest_mem *gm);
/* Closes every channel (device close callbacks run), stops the I/O threads, frees. */
void vmbus_server_destroy(struct vmbus_server *srv);
/* VM reboot: as a guest UNLOAD without the response (devices get reset). */
void vmbus_server_reset(struct vmbus_server *srv);

/*
 * Adds a device. Before the guest has asked for offers it is just listed; after that it is
 * offered at once (hot-add). 0 or -errno + err_set() (duplicate instance GUID, too many).
 */
int vmbus_server_add_device(struct vmbus_server *srv, struct vmbus_device *dev);
/*
 * Host-initiated removal: RESCIND_CHANNELOFFER for the device's channels (the open ones are
 * closed); the relids are reused only after the guest's RELID_RELEASED. The device stays
 * registered and vmbus_server_reoffer() offers it again under new relids (test hook and
 * hot-remove).
 */
int vmbus_server_rescind(struct vmbus_server *srv, struct vmbus_device *dev);
int vmbus_server_reoffer(struct vmbus_server *srv, struct vmbus_device *dev);

/* Negotiated version, 0 while not connected. */
uint32_t vmbus_server_version(const struct vmbus_server *srv);

#endif
