/*
 * storvsc: the test guest's synthetic SCSI client (shared/spec/vmbus-devices.md §2) over the
 * VMBus client. It does what Linux 6.1's driver puts on the wire: the init handshake with
 * trans_id STORVSC_INIT_ID and 64-byte vstor packets, versions 6.2, 6.0, 5.1 in that order,
 * sub-channels via CREATE_SUB_CHANNELS, and EXECUTE_SRB with one GPA-direct range (any byte
 * offset in the first page, any number of pages up to the host's max_transfer_bytes).
 *
 * Requests are synchronous: one in flight per driver, sent on the chosen channel and waited
 * for there. Every host reply is checked (packet size, operation, trans_id) before use.
 */
#ifndef TGUEST_STORVSC_STORVSC_H
#define TGUEST_STORVSC_STORVSC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmbus/vmbc.h"

#define STORVSC_MAX_CHANNELS 16u
/*
 * PFNs in one SRB: vmbc_send_gpa_direct builds its header in 64 words (2 for the GPA-direct
 * header, 1 for the range), so one range holds 61. Linux sends up to max_transfer/4096 + 1;
 * this client keeps its transfers at STORVSC_MAX_XFER (any first-page offset) instead.
 */
#define STORVSC_MAX_PFNS 61u
#define STORVSC_MAX_XFER ((STORVSC_MAX_PFNS - 1u) * 4096u)
#define STORVSC_RING_BYTES (124u * 1024u) /* 128 KiB with the ring header page, as Linux */
#define STORVSC_INIT_ID 0xfffffffffffffffdull

/* Negative returns beyond the VMBC_* codes. */
#define STORVSC_EREFUSED (-1000) /* the host answered an init op with a non-zero status */
#define STORVSC_ENOVERSION (-1001) /* none of 6.2/6.0/5.1 accepted */

extern const uint8_t storvsc_scsi_class[16];
extern const uint16_t storvsc_versions[3];

enum storvsc_dir { STORVSC_DATA_OUT = 0, STORVSC_DATA_IN = 1, STORVSC_NO_DATA = 2 };

/* Outcome of one SRB, with the sense data parsed (fixed or descriptor format). */
struct storvsc_result {
	uint32_t nt_status;
	uint8_t srb_status; /* with flag bits (0x80 autosense valid) */
	uint8_t scsi_status;
	uint32_t xfer; /* bytes the host says it moved */
	uint8_t sense_len;
	uint8_t sense[20];
	bool sense_valid; /* CHECK CONDITION with autosense and a parseable sense buffer */
	uint8_t key, asc, ascq;
};

struct storvsc {
	struct vmbc *bus;
	struct vmbc_channel *ch[STORVSC_MAX_CHANNELS]; /* [0] primary, then sub-channels */
	unsigned nch;
	uint16_t version; /* major << 8 | minor */
	uint16_t max_channel_cnt;
	uint32_t prop_flags; /* bit 0: multi-channel */
	uint32_t max_transfer;
	uint64_t next_id;
	uint64_t bad_replies; /* host packets that were not a valid reply to what we asked */
	uint8_t rx[256];
	uint64_t pfns[STORVSC_MAX_PFNS];
};

/*
 * Opens the nth SCSI controller (after vmbc_request_offers) on the calling CPU's VP and runs
 * BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION (6.2, 6.0, 5.1), QUERY_PROPERTIES and
 * END_INITIALIZATION. 0, VMBC_ENODEV (no such controller), STORVSC_ENOVERSION,
 * STORVSC_EREFUSED, or a VMBC_* error.
 */
int storvsc_probe(struct storvsc *s, struct vmbc *bus, unsigned nth);
/*
 * CREATE_SUB_CHANNELS for min(want, max_channel_cnt) when the host offers multi-channel,
 * then waits for those offers and opens each, sub-channel i targeting target_vps[i - 1].
 * Returns the number opened (0 when the host has none to give) or a negative error.
 */
int storvsc_create_subchannels(struct storvsc *s, unsigned want, const uint32_t *target_vps);
/*
 * One EXECUTE_SRB on channel chan to path 0 target 0 lun: the data buffer is guest-physical
 * [gpa, gpa + len) (contiguous; len 0 sends an inband packet). 0 with *r filled whatever the
 * SCSI outcome; negative when the exchange itself failed.
 */
int storvsc_execute(struct storvsc *s, unsigned chan, uint8_t lun, const uint8_t *cdb,
		    uint8_t cdb_len, enum storvsc_dir dir, uint64_t gpa, uint32_t len,
		    struct storvsc_result *r);
/* Closes every open channel (sub-channels first). */
void storvsc_close(struct storvsc *s);

/* SRB succeeded with GOOD status (DATA_OVERRUN counts: it is the host's short-transfer code). */
bool storvsc_result_ok(const struct storvsc_result *r);

#endif
