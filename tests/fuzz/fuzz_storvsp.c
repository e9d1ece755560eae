// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fuzzes storvsp's vstor packet + SRB + CDB handling and the SCSI target behind it, without a
 * channel server: the stub channel of tests/unit/vsp/vmbus_stub.h stands in for it (replies
 * recorded, GPA-direct ranges checked against a small guest_mem). Two LUNs over one small raw
 * temp image (LUN 1 read-only). Each input opens the primary channel, optionally does the
 * handshake, then delivers up to 64 packets whose descriptor, GPA-direct header and payload
 * come from the input, running completions after each; the channel is closed at the end
 * (in-flight I/O drained). Any crash, ASan/UBSan report or leak is a bug.
 *
 * Input: [mode] then records [type][flags][hdr8][len8][bytes...] where hdr8/len8 are in
 * 8-byte units (as in a VMBus descriptor) and bytes fill the packet from byte 16 on.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk.h"
#include "lib/log.h"
#include "vid/guest_mem.h"
#include "vsp/storvsp.h"
#include "vsp/storvsp_proto.h"

#include "../unit/vsp/vmbus_stub.h"

#define RAM (4u << 20)
#define DISK (1u << 20)

static struct guest_mem gm;
static struct vmbus_device *dev;
static struct vmbus_chan chan;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void setup(void)
{
	static char path[] = "/tmp/viridian-fuzz-storvsp-XXXXXX";
	static struct blockdev *bd;
	struct storvsp_lun_config luns[2];
	struct storvsp_config cfg;
	int fd;

	log_set_level(LOG_ERROR);
	if (guest_mem_init(&gm, RAM, 0))
		abort();
	fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, DISK))
		abort();
	close(fd);
	if (disk_open(path, DISK_FORMAT_RAW, 0, &bd))
		abort();
	unlink(path);
	memset(luns, 0, sizeof(luns));
	luns[0].bd = bd;
	luns[0].path = "fuzz0";
	luns[1].bd = bd;
	luns[1].path = "fuzz1";
	luns[1].read_only = true;
	memset(&cfg, 0, sizeof(cfg));
	cfg.luns = luns;
	cfg.nluns = 2;
	cfg.max_subchannels = 2;
	dev = vsp_storvsp_create(&cfg);
	if (!dev)
		abort();
}

static void deliver(uint16_t type, uint16_t flags, uint64_t id, const uint8_t *bytes, uint32_t len,
		    uint32_t hdr)
{
	static uint8_t buf[8192] __attribute__((aligned(8)));
	struct vmbus_pkt pkt;

	/* What the ring reader guarantees: 16 <= hdr <= len, both multiples of 8. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf + 16, bytes, len - 16 < sizeof(buf) - 16 ? len - 16 : sizeof(buf) - 16);
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = type;
	pkt.flags = flags;
	pkt.trans_id = id;
	pkt.data = buf;
	pkt.len = len;
	pkt.hdr_len = hdr;
	pkt.payload = buf + hdr;
	pkt.payload_len = len - hdr;
	pkt.more = flags & 0x80; /* the fuzzer also decides where bursts end */
	/* the server ends the piece after a burst's last packet or one that asks for it */
	if (dev->ops->packet(dev, &chan, &pkt) == VMBUS_PKT_END_PIECE || !pkt.more)
		dev->ops->batch_end(dev, &chan);
	chan.nreplies = 0;
	stub_poll(&chan, 0);
}

static void control(uint32_t op, uint16_t arg)
{
	struct vstor_packet p;

	memset(&p, 0, sizeof(p));
	p.operation = op;
	p.flags = 1;
	p.version.major_minor = arg;
	deliver(VMBUS_PKT_DATA_INBAND, 1, ~2ull, (const uint8_t *)&p, 16 + 64, 16);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mode;
	uint64_t id = 1;

	if (!dev)
		setup();
	if (size < 1)
		return 0;
	mode = *data++;
	size--;
	memset(&chan, 0, sizeof(chan));
	chan.dev = dev;
	chan.gm = &gm;
	chan.index = (mode & 0x80) ? 1 : 0;
	if (dev->ops->open(dev, &chan, (const uint8_t[120]){0}))
		return 0;
	if (mode & 1) {
		control(VSTOR_OP_BEGIN_INITIALIZATION, 0);
		control(VSTOR_OP_QUERY_PROTOCOL_VERSION, 0x0602);
		control(VSTOR_OP_QUERY_PROPERTIES, 0);
		control(VSTOR_OP_END_INITIALIZATION, 0);
	}
	for (unsigned n = 0; n < 64 && size >= 4; n++) {
		uint16_t type = data[0] & 1 ? VMBUS_PKT_DATA_USING_GPA_DIRECT
					    : (data[0] & 2 ? data[0] >> 2 : VMBUS_PKT_DATA_INBAND);
		uint16_t flags = data[1];
		uint32_t hdr = 16 + 8u * data[2], len = 16 + 8u * data[3] + 8u * (data[2] & 0x3f);
		size_t take;

		data += 4;
		size -= 4;
		if (hdr > len)
			hdr = len;
		if (len > 8192)
			len = 8192;
		if (hdr > len)
			hdr = len & ~7u;
		take = len - 16 < size ? len - 16 : size;
		{
			uint8_t tmp[8192];

			memset(tmp, 0, sizeof(tmp));
			memcpy(tmp, data, take);
			deliver(type, flags, id++, tmp, len, hdr);
		}
		data += take;
		size -= take;
	}
	dev->ops->close(dev, &chan);
	dev->ops->reset(dev);
	return 0;
}
