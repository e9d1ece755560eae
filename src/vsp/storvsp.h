/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * storvsp: the synthetic SCSI controller (vstor protocol, spec vmbus-devices.md §2) as a
 * vmbus_device. One controller carries up to STORVSP_MAX_LUNS disks at path 0, target 0,
 * LUN = index in the config. Data moves between guest pages and the images through the
 * blockdev queues (one queue per channel and LUN, on the channel's I/O thread).
 */
#ifndef VIRIDIAN_VSP_STORVSP_H
#define VIRIDIAN_VSP_STORVSP_H

#include <stdbool.h>
#include <stdint.h>

#include "disk/blockdev.h"
#include "disk/disk.h"
#include "lib/guid.h"

struct vmbus_device;

#define STORVSP_MAX_LUNS 64u
/* max_transfer_bytes in QUERY_PROPERTIES (a multiple of 4096: it becomes max_sectors). */
#define STORVSP_MAX_TRANSFER (1024u * 1024u)
/* Requests one channel holds at once (Linux keeps about 316 in flight per channel). */
#define STORVSP_MAX_INFLIGHT 1024u
/*
 * An SRB moving at least this much ends its burst's piece (VMBUS_PKT_END_PIECE): batching
 * saves one syscall per request, nothing next to copying 256 KiB, while answering at once lets
 * the guest refill as the rest of the burst runs (1 MiB reads at depth 4: 12 -> 15 GB/s).
 */
#define STORVSP_PIECE_BYTES (256u * 1024u)

struct storvsp_lun_config {
	/* Image to open (disk_open with format; AUTO detects), or bd: an open blockdev the caller
	 * keeps (path then only seeds the unit serial when the image has no id of its own). */
	const char *path;
	enum disk_format format;
	bool read_only;
	struct blockdev *bd;
};

struct storvsp_config {
	const struct storvsp_lun_config *luns;
	unsigned nluns; /* 1..STORVSP_MAX_LUNS */
	/* Sub-channels offered at most (QUERY_PROPERTIES max_channel_cnt); the guest asks for
	 * min(its CPUs - 1, this). 0 = one channel. Pass the VM's vCPU count - 1. */
	unsigned max_subchannels;
	/* Offer instance GUID; all-zero = a random one. */
	struct guid instance_id;
};

/*
 * Opens every image and builds the device (add it with vmbus_server_add_device). NULL +
 * err_set() naming the image that failed.
 */
struct vmbus_device *vsp_storvsp_create(const struct storvsp_config *cfg);
/*
 * Hot-add: opens the image as the next LUN (any thread) and sends ENUMERATE_BUS on the primary
 * channel so the guest rescans. The LUN number, or -errno + err_set() (-ENOSPC when full).
 */
int vsp_storvsp_add_lun(struct vmbus_device *dev, const struct storvsp_lun_config *lc);
/* After vmbus_server_destroy (or before the device was added): closes the images it opened. */
void vsp_storvsp_destroy(struct vmbus_device *dev);

/* Counters (all channels), for tests and benchmarks. Any thread; values may lag. */
struct storvsp_stats {
	uint64_t srbs; /* EXECUTE_SRB packets */
	uint64_t completions;
	uint64_t errors; /* SRBs completed with a status other than SUCCESS */
	uint64_t bad_packets; /* malformed vstor packets answered with an error */
	uint64_t queue_full; /* submissions that waited for a free blockdev slot */
};
void vsp_storvsp_stats(struct vmbus_device *dev, struct storvsp_stats *out);

#endif
