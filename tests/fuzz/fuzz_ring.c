// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fuzzes the host ring reader and writer against a guest that controls every byte of the
 * ring: control page (indices, mask, pending_send_sz) and data pages, mapped contiguously or
 * scattered. The reader peeks and consumes until an error; the writer writes until one. Any
 * access outside guest memory is an ASan report.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "vid/guest_mem.h"
#include "vmbus/ring.h"

#define RAM (1u << 20)
#define BASE_PFN 16u

static struct guest_mem gm;
static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pkt_buf[8192];
	static int ready;
	struct vmbus_ring r;
	struct vmbus_pkt pkt;
	uint64_t pfns[6];
	unsigned npages, i;
	uint8_t mode;
	uint8_t *ram;
	size_t left;

	if (!ready) {
		if (guest_mem_init(&gm, RAM, 0))
			abort();
		ready = 1;
	}
	if (size < 2)
		return 0;
	mode = data[0];
	npages = 2 + (mode & 3);
	data++;
	size--;
	for (i = 0; i < npages; i++)
		pfns[i] = (mode & 4) ? BASE_PFN + 2 * (npages - i) : BASE_PFN + i;
	if ((mode & 0x38) == 0x38) /* sometimes a page outside RAM */
		pfns[npages - 1] = RAM / 4096 + (mode >> 6);
	ram = guest_mem_ptr(&gm, 0, RAM);
	memset(ram + BASE_PFN * 4096ull, 0, 16 * 4096);
	/* Control page gets the first 64 bytes, the data pages the rest (wrapped around). */
	left = size < 64 ? size : 64;
	memcpy(ram + pfns[0] * 4096, data, left);
	data += left;
	size -= left;
	for (i = 1; i < npages && size && pfns[i] < RAM / 4096; i++) {
		size_t n = size < 4096 ? size : 4096;

		memcpy(ram + pfns[i] * 4096, data, n);
		data += n;
		size -= n;
	}

	if (vmbus_ring_init(&r, &gm, pfns, npages, VMBUS_RING_GUEST_TO_HOST) == 0) {
		vmbus_ring_set_copy(&r, mode & 0x80);
		for (i = 0; i < 4096; i++) {
			if (vmbus_ring_peek(&r, &pkt) != 0)
				break;
			sink ^= pkt.data[0] ^ pkt.data[pkt.len - 1];
			if (pkt.payload_len)
				sink ^= pkt.payload[pkt.payload_len - 1];
			vmbus_ring_consume(&r);
			if (i % 3 == 0)
				sink ^= vmbus_ring_read_done(&r);
		}
		vmbus_ring_mask(&r);
		sink ^= vmbus_ring_read_done(&r);
		sink ^= vmbus_ring_unmask(&r);
		vmbus_ring_destroy(&r);
	}
	if (vmbus_ring_init(&r, &gm, pfns, npages, VMBUS_RING_HOST_TO_GUEST) == 0) {
		vmbus_ring_set_max_pkt(&r, mode & 0x40 ? 8192 : 4096);
		for (i = 0; i < 64; i++) {
			struct iovec iov[2] = {{pkt_buf, (i * 977u) % 4000},
					       {pkt_buf + 100, (i * 131u) % 300}};
			uint32_t avail;
			int rc = vmbus_ring_write(&r, 6, 1, i, (i % 4) * 8, iov, 2);

			if (rc == -EAGAIN) {
				rc = vmbus_ring_wait_space(&r, vmbus_ring_pkt_space(0, 64));
				if (rc <= 0)
					break;
			} else if (rc < 0 && rc != -EMSGSIZE && rc != -EINVAL) {
				break;
			}
			if (vmbus_ring_write_avail(&r, &avail) == 0)
				sink ^= (uint8_t)avail;
		}
		vmbus_ring_destroy(&r);
	}
	/* The same pages as one GPADL split at every possible downstream offset. */
	for (i = 0; i <= npages + 1; i++) {
		struct vmbus_ring in;

		if (vmbus_ring_pair_init(&r, &in, &gm, pfns, npages, i) == 0) {
			sink ^= vmbus_ring_peek(&r, &pkt) == 0;
			vmbus_ring_destroy(&r);
			vmbus_ring_destroy(&in);
		}
	}
	return 0;
}
