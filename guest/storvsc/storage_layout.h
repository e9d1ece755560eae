/*
 * What the `storage` scenario writes, shared by the scenario and the host test that checks
 * the images afterwards (tests/harness/test_harness_storage.c). Pure arithmetic, no state.
 *
 * Channel c (0 = primary) writes region c of every writable LUN: STORAGE_REGION_LEN bytes
 * starting 3 KiB before the (c + 1)-th 2 MiB boundary, so every region crosses a VHD/VHDX
 * block boundary. Then the UNMAP block (one whole 2 MiB block past the last channel's
 * region) gets pattern generation 1 over its first 64 KiB, is unmapped (where the LUN has
 * LBPME), and is rewritten whole with generation 2: what UNMAP leaves behind is undefined
 * (LBPRZ 0), so only the rewrite makes the image deterministic. Everything else stays as the
 * host test created it (zeros, or the differencing parent's data).
 */
#ifndef TGUEST_STORVSC_STORAGE_LAYOUT_H
#define TGUEST_STORVSC_STORAGE_LAYOUT_H

#include <stdint.h>

#define STORAGE_BLOCK (2u * 1024u * 1024u)
#define STORAGE_REGION_LEN (40u * 1024u + 3u * 512u)
#define STORAGE_GEN1_LEN (64u * 1024u)

static inline uint64_t storage_region_start(unsigned c)
{
	return (uint64_t)(c + 1) * STORAGE_BLOCK - 3072u;
}

/* The UNMAP block for nch channels: starts on a 2 MiB boundary past every region. */
static inline uint64_t storage_unmap_start(unsigned nch)
{
	return (uint64_t)(nch + 1) * STORAGE_BLOCK;
}

/* Byte at image offset off of LUN lun; gen 0 = region data, 1/2 = UNMAP block before/after. */
static inline uint8_t storage_pattern(unsigned lun, uint64_t off, unsigned gen)
{
	uint32_t x = (uint32_t)(off >> 9) * 0x9e3779b1u + (uint32_t)(off & 511) * 7u + lun * 0x45u +
		     gen * 0x3bu;

	return (uint8_t)(x ^ (x >> 13) ^ (x >> 24));
}

#endif
