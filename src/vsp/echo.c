// SPDX-License-Identifier: GPL-2.0-only
/* Echo test device: see echo.h for what it returns. */
#include <errno.h>
#include <stdlib.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vmbus/vmbus_proto.h"
#include "vsp/echo.h"

#define ECHO_LOG "vsp-echo"
#define ECHO_MAX_IOV 512
/* Data bytes per reply packet: the guest's default receive buffer minus the descriptor. */
#define ECHO_CHUNK (VMBUS_DEFAULT_MAX_PKT_SIZE - sizeof(struct vmbus_pkt_desc))

static int echo_gpa_direct(struct vmbus_chan *chan, const struct vmbus_pkt *pkt)
{
	struct iovec iov[ECHO_MAX_IOV], out[ECHO_MAX_IOV];
	uint64_t total;
	int n, r;

	n = vmbus_pkt_gpa_direct_iov(vmbus_chan_guest_mem(chan), pkt, iov, ECHO_MAX_IOV,
				     VSP_ECHO_MAX_GPA_BYTES, &total);
	if (n < 0) {
		log_warn_ratelimited(ECHO_LOG, "GPA-direct packet %llu rejected (%d)",
				     (unsigned long long)pkt->trans_id, n);
		return -EPROTO;
	}
	/* Slice the iovecs into packets of at most ECHO_CHUNK bytes. */
	for (int i = 0; i < n || total == 0;) {
		size_t room = ECHO_CHUNK;
		int k = 0;

		if (total == 0)
			return vmbus_chan_send_inband(chan, pkt->trans_id, NULL, 0, false);
		while (i < n && room) {
			size_t take = MIN(room, iov[i].iov_len);

			out[k].iov_base = iov[i].iov_base;
			out[k].iov_len = take;
			k++;
			room -= take;
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + take;
			iov[i].iov_len -= take;
			if (iov[i].iov_len == 0)
				i++;
		}
		r = vmbus_chan_send(chan, VMBUS_PKT_DATA_INBAND, 0, pkt->trans_id, 0, out, k);
		if (r < 0)
			return r == -EPROTO ? r : 0;
	}
	return 0;
}

static int echo_packet(struct vmbus_device *dev, struct vmbus_chan *chan,
		       const struct vmbus_pkt *pkt)
{
	int r;

	(void)dev;
	switch (pkt->type) {
	case VMBUS_PKT_DATA_INBAND:
		r = vmbus_chan_send_inband(chan, pkt->trans_id, pkt->payload, pkt->payload_len,
					   false);
		if (r == -EMSGSIZE)
			log_warn_ratelimited(ECHO_LOG, "%u-byte packet too big to echo",
					     pkt->payload_len);
		return r == -EPROTO ? r : 0;
	case VMBUS_PKT_DATA_USING_GPA_DIRECT:
		return echo_gpa_direct(chan, pkt);
	default:
		return 0;
	}
}

static const struct vmbus_device_ops echo_ops = {
	.packet = echo_packet,
};

struct vmbus_device *vsp_echo_create(void)
{
	struct vmbus_device *dev = calloc(1, sizeof(*dev));

	if (!dev) {
		err_set("echo: out of memory");
		return NULL;
	}
	dev->ops = &echo_ops;
	dev->name = "echo";
	if (guid_parse(VSP_ECHO_CLASS_GUID, &dev->class_id) < 0) {
		free(dev);
		err_set("echo: bad class GUID");
		return NULL;
	}
	guid_generate(&dev->instance_id);
	return dev;
}

void vsp_echo_destroy(struct vmbus_device *dev)
{
	free(dev);
}
