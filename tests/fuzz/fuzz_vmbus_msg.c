// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fuzzes the VMBus channel server's message handling: arbitrary channel messages (and GPADL
 * bodies, open/close of channels on rings the input describes) go through the same entry point
 * as HvPostMessage payloads, against 1 MiB of guest RAM with a real SynIC. Each input gets a
 * fresh server (destroyed at the end, so leaks show up) with one device; the input can prefix
 * a valid connection so the fuzzer starts past negotiation.
 *
 * Input: byte 0 = flags (bit 0: connect at 5.3 first, bit 1: REQUESTOFFERS too, bit 2: the
 * guest leaves its replies unread; bit 3: instead, feed the rest to vmbus_pkt_gpa_direct_iov as
 * one packet with offset8 = the next byte and max_iov = flags >> 4), then messages as
 * [len (mod 241)][len bytes].
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/hv.h"
#include "hv/hv_msr.h"
#include "hv/hv_proto.h"
#include "lib/log.h"
#include "vid/guest_mem.h"
#include "vmbus/server_internal.h"
#include "vmbus/vmbus.h"
#include "vmbus/vmbus_msg.h"

#define RAM (1u << 20)
#define SIMP 0x10000u
#define SIEFP 0x11000u
#define NVPS 2u

static struct guest_mem gm;
static struct hv_partition *part;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int dev_packet(struct vmbus_device *dev, struct vmbus_chan *chan,
		      const struct vmbus_pkt *pkt)
{
	(void)dev;
	if (pkt->type == VMBUS_PKT_DATA_INBAND && pkt->payload_len && pkt->payload[0] == 1)
		return -EPROTO;
	return vmbus_chan_send_inband(chan, pkt->trans_id, pkt->payload,
				      pkt->payload_len > 64 ? 64 : pkt->payload_len, false);
}

static const struct vmbus_device_ops dev_ops = {.packet = dev_packet};

/* The guest side of message consumption on every VP: free slot 2, EOM when pending. */
static void drain_sim(void)
{
	for (unsigned vp = 0; vp < NVPS; vp++) {
		struct hv_message *s = guest_mem_ptr(&gm, SIMP + vp * 0x2000ull + 2 * 256, 256);

		if (__atomic_exchange_n(&s->header.message_type, 0, __ATOMIC_SEQ_CST) &&
		    (__atomic_load_n(&s->header.message_flags, __ATOMIC_SEQ_CST) &
		     HV_MESSAGE_FLAG_PENDING))
			hv_msr_write(part, vp, HV_MSR_EOM, 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmbus_device dev = {.ops = &dev_ops, .name = "fuzz", .max_subchannels = 2};
	struct vmbus_server *srv;
	uint8_t msg[HV_MESSAGE_PAYLOAD_MAX];
	uint8_t flags;

	if (!part) {
		struct hv_callbacks cb = {0};

		log_set_level(LOG_ERROR);
		if (guest_mem_init(&gm, RAM, 0))
			abort();
		part = hv_partition_create(&gm, NVPS, &cb);
		if (!part)
			abort();
		for (unsigned vp = 0; vp < NVPS; vp++) {
			hv_msr_write(part, vp, HV_MSR_SIMP, (SIMP + vp * 0x2000ull) | 1);
			hv_msr_write(part, vp, HV_MSR_SIEFP, (SIEFP + vp * 0x2000ull) | 1);
			hv_msr_write(part, vp, HV_MSR_SINT0 + 2, 0xF3);
			hv_msr_write(part, vp, HV_MSR_SCONTROL, 1);
		}
		dev.instance_id.b[0] = 1;
	}
	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	if (flags & 8) {
		/* The GPA-direct range parser on its own: the rest of the input is one packet. */
		static uint8_t pkt_buf[4096];
		struct vmbus_pkt pkt = {.type = VMBUS_PKT_DATA_USING_GPA_DIRECT, .data = pkt_buf};
		struct iovec iov[16];
		uint64_t total;

		if (size < 1)
			return 0;
		pkt.len = (uint32_t)(size - 1 > sizeof(pkt_buf) ? sizeof(pkt_buf) : size - 1);
		memcpy(pkt_buf, data + 1, pkt.len);
		pkt.hdr_len = (uint32_t)data[0] * 8;
		pkt.payload = pkt_buf + (pkt.hdr_len < pkt.len ? pkt.hdr_len : pkt.len);
		vmbus_pkt_gpa_direct_iov(&gm, &pkt, iov, (int)(flags >> 4), 1u << 16, &total);
		return 0;
	}
	srv = vmbus_server_create(part, &gm);
	if (!srv)
		abort();
	if (vmbus_server_add_device(srv, &dev))
		abort();
	if (flags & 1) {
		struct vmbus_msg_initiate_contact ic = {.hdr.msgtype = VMBUS_MSG_INITIATE_CONTACT,
							.version = VMBUS_VERSION_MAX,
							.interrupt_page = 2};

		vmbus_server_handle_message(srv, 0, &ic, sizeof(ic));
		if (flags & 2) {
			struct vmbus_msg_hdr h = {.msgtype = VMBUS_MSG_REQUESTOFFERS};

			vmbus_server_handle_message(srv, 0, &h, sizeof(h));
		}
	}
	while (size > 0) {
		size_t len = data[0] % (HV_MESSAGE_PAYLOAD_MAX + 1);
		unsigned vp = data[0] >> 7;

		data++;
		size--;
		if (len > size)
			len = size;
		memcpy(msg, data, len);
		vmbus_server_handle_message(srv, vp, msg, (uint32_t)len);
		data += len;
		size -= len;
		if (!(flags & 4))
			drain_sim();
	}
	vmbus_server_destroy(srv);
	/* Queued replies for the next input would only slow it down. */
	for (unsigned vp = 0; vp < NVPS; vp++)
		hv_vp_reset(part, vp);
	for (unsigned vp = 0; vp < NVPS; vp++) {
		hv_msr_write(part, vp, HV_MSR_SIMP, (SIMP + vp * 0x2000ull) | 1);
		hv_msr_write(part, vp, HV_MSR_SIEFP, (SIEFP + vp * 0x2000ull) | 1);
		hv_msr_write(part, vp, HV_MSR_SINT0 + 2, 0xF3);
		hv_msr_write(part, vp, HV_MSR_SCONTROL, 1);
	}
	memset(guest_mem_ptr(&gm, SIMP, 0x4000), 0, 0x4000);
	return 0;
}
