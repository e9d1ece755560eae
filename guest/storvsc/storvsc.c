/* storvsc client: see storvsc.h. Wire layouts from vmbus-devices.md §2.2-2.6. */
#include "storvsc/storvsc.h"

#include "hvplat.h"

/* vstor operations (§2.2). */
enum {
	VSTOR_COMPLETE_IO = 1,
	VSTOR_EXECUTE_SRB = 3,
	VSTOR_BEGIN_INIT = 7,
	VSTOR_END_INIT = 8,
	VSTOR_QUERY_VERSION = 9,
	VSTOR_QUERY_PROPERTIES = 10,
	VSTOR_CREATE_SUB_CHANNELS = 13,
};

#define VSTOR_FLAG_REQUEST_COMPLETION 1u
#define VSTOR_PKT_LEN 64u
#define SRB_LEN_WIN8 0x34u
#define SRB_SENSE_LEN 20u
#define SRB_STATUS_SUCCESS 0x01u
#define SRB_STATUS_DATA_OVERRUN 0x12u
#define SRB_STATUS_AUTOSENSE_VALID 0x80u
#define SRB_FLAGS_DISABLE_SYNCH_TRANSFER 0x08u
#define SRB_FLAGS_DATA_IN 0x40u
#define SRB_FLAGS_DATA_OUT 0x80u
#define SAM_CHECK_CONDITION 0x02u
#define MIN_U(a, b) ((a) < (b) ? (a) : (b))
#define ARRAY_LEN_VERSIONS (sizeof(storvsc_versions) / sizeof(storvsc_versions[0]))
#define WAIT_NS 10000000000ull /* 10 s: the harness host is slow under sanitizers */

const uint8_t storvsc_scsi_class[16] = {0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d,
					0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f};
/* Linux 6.1's protocol_version[] order: Win10, Win8.1, Win8. */
const uint16_t storvsc_versions[3] = {0x0602, 0x0600, 0x0501};

/* §2.3: the 52-byte Win8 vmscsi_request. */
struct vstor_srb {
	uint16_t length;
	uint8_t srb_status;
	uint8_t scsi_status;
	uint8_t port;
	uint8_t path;
	uint8_t target;
	uint8_t lun;
	uint8_t cdb_length;
	uint8_t sense_info_length;
	uint8_t data_in;
	uint8_t reserved;
	uint32_t data_transfer_length;
	uint8_t cdb_sense[SRB_SENSE_LEN];
	uint16_t reserve;
	uint8_t queue_tag;
	uint8_t queue_action;
	uint32_t srb_flags;
	uint32_t time_out_value;
	uint32_t queue_sort_key;
} __attribute__((packed));

struct vstor_packet {
	uint32_t operation;
	uint32_t flags;
	uint32_t status;
	union {
		struct vstor_srb srb;
		uint8_t raw[52];
	};
} __attribute__((packed));

_Static_assert(sizeof(struct vstor_srb) == 52, "vmscsi_request is 52 bytes");
_Static_assert(sizeof(struct vstor_packet) == VSTOR_PKT_LEN, "vstor packet is 64 bytes");

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Waits for the reply with trans_id id on ch and copies its 64-byte vstor payload to out.
 * Other packets (unsolicited ENUMERATE_BUS with id 0, stale ids) are dropped and counted.
 */
static int wait_reply(struct storvsc *s, struct vmbc_channel *ch, uint64_t id,
		      struct vstor_packet *out)
{
	uint64_t end = hvplat_now_ns() + WAIT_NS;

	for (;;) {
		struct vmbc_pkt p;
		int ret = vmbc_recv(ch, s->rx, sizeof(s->rx), &p);

		if (ret == VMBC_EAGAIN) {
			if (ch->rescinded)
				return VMBC_ENODEV;
			if (hvplat_now_ns() > end)
				return VMBC_ETIME;
			hvplat_wait();
			vmbc_poll(s->bus);
			continue;
		}
		if (ret)
			return ret;
		/* Linux needs exactly 64 payload bytes on every reply with a non-zero id (§2.4). */
		if (p.data_offset > p.len || p.len - p.data_offset < VSTOR_PKT_LEN ||
		    p.trans_id != id) {
			s->bad_replies++;
			if (p.trans_id == id)
				return VMBC_EPROTO;
			continue;
		}
		memcpy(out, s->rx + p.data_offset, VSTOR_PKT_LEN);
		if (out->operation != VSTOR_COMPLETE_IO) {
			s->bad_replies++;
			return VMBC_EPROTO;
		}
		return 0;
	}
}

static int send_inband(struct storvsc *s, struct vmbc_channel *ch, uint64_t id,
		       const struct vstor_packet *v)
{
	return vmbc_send_inband(s->bus, ch, id, v, VSTOR_PKT_LEN, true);
}

/* One init op on the primary channel; *reply gets the host's packet. */
static int init_op(struct storvsc *s, uint32_t op, const void *arg, unsigned arg_len,
		   struct vstor_packet *reply)
{
	struct vstor_packet v;
	int ret;

	memset(&v, 0, sizeof(v));
	v.operation = op;
	v.flags = VSTOR_FLAG_REQUEST_COMPLETION;
	if (arg_len)
		memcpy(v.raw, arg, arg_len);
	ret = send_inband(s, s->ch[0], STORVSC_INIT_ID, &v);
	if (!ret)
		ret = wait_reply(s, s->ch[0], STORVSC_INIT_ID, reply);
	return ret;
}

int storvsc_probe(struct storvsc *s, struct vmbc *bus, unsigned nth)
{
	static const uint8_t user[24]; /* a zeroed vmstorage_channel_properties, as Linux */
	struct vstor_packet r;
	uint32_t st = 0;
	unsigned cpu = hvplat_cpu();
	int ret;

	memset(s, 0, sizeof(*s));
	s->bus = bus;
	s->next_id = 1;
	s->ch[0] = vmbc_find(bus, storvsc_scsi_class, nth);
	/* vmbc_find counts sub-channels too: only a primary (index 0) is a controller */
	if (!s->ch[0] || s->ch[0]->offer.sub_channel_index)
		return VMBC_ENODEV;
	ret = vmbc_open(bus, s->ch[0], STORVSC_RING_BYTES, STORVSC_RING_BYTES, user, sizeof(user),
			bus->w->vp[cpu].vp_index, &st);
	if (ret)
		return ret;
	s->nch = 1;
	ret = init_op(s, VSTOR_BEGIN_INIT, NULL, 0, &r);
	if (ret)
		return ret;
	if (r.status)
		return STORVSC_EREFUSED;
	ret = STORVSC_ENOVERSION;
	for (unsigned i = 0; i < ARRAY_LEN_VERSIONS; i++) {
		uint8_t arg[4] = {(uint8_t)storvsc_versions[i], (uint8_t)(storvsc_versions[i] >> 8),
				  0, 0};
		int r2 = init_op(s, VSTOR_QUERY_VERSION, arg, sizeof(arg), &r);

		if (r2)
			return r2;
		if (!r.status) {
			s->version = storvsc_versions[i];
			ret = 0;
			break;
		}
	}
	if (ret)
		return ret;
	ret = init_op(s, VSTOR_QUERY_PROPERTIES, NULL, 0, &r);
	if (ret)
		return ret;
	if (r.status)
		return STORVSC_EREFUSED;
	s->max_channel_cnt = get_le16(r.raw + 4);
	s->prop_flags = get_le32(r.raw + 8);
	s->max_transfer = get_le32(r.raw + 12);
	/* It becomes the largest SRB: zero or not page-sized would break every transfer. */
	if (!s->max_transfer || s->max_transfer % 4096)
		return VMBC_EPROTO;
	ret = init_op(s, VSTOR_END_INIT, NULL, 0, &r);
	if (ret)
		return ret;
	return r.status ? STORVSC_EREFUSED : 0;
}

int storvsc_create_subchannels(struct storvsc *s, unsigned want, const uint32_t *target_vps)
{
	static const uint8_t user[24];
	struct vstor_packet r;
	uint64_t end;
	uint16_t n;
	int ret;

	if (!(s->prop_flags & 1) || !s->max_channel_cnt || !want)
		return 0;
	n = (uint16_t)MIN_U(want, MIN_U(s->max_channel_cnt, STORVSC_MAX_CHANNELS - 1));
	{
		uint8_t arg[2] = {(uint8_t)n, (uint8_t)(n >> 8)};

		ret = init_op(s, VSTOR_CREATE_SUB_CHANNELS, arg, sizeof(arg), &r);
	}
	if (ret)
		return ret;
	if (r.status)
		return STORVSC_EREFUSED;
	end = hvplat_now_ns() + WAIT_NS;
	for (uint16_t i = 1; i <= n; i++) {
		struct vmbc_channel *sc;
		uint32_t st = 0;

		while (!(sc = vmbc_find_subchannel(s->bus, s->ch[0], i))) {
			if (hvplat_now_ns() > end)
				return VMBC_ETIME;
			hvplat_wait();
			vmbc_poll(s->bus);
		}
		ret = vmbc_open(s->bus, sc, STORVSC_RING_BYTES, STORVSC_RING_BYTES, user,
				sizeof(user), target_vps[i - 1], &st);
		if (ret)
			return ret;
		s->ch[s->nch++] = sc;
	}
	return n;
}

static void parse_sense(struct storvsc_result *r)
{
	const uint8_t *b = r->sense;
	unsigned len = MIN_U(r->sense_len, SRB_SENSE_LEN);
	uint8_t code = b[0] & 0x7f;

	r->sense_valid = false;
	if (r->scsi_status != SAM_CHECK_CONDITION || !(r->srb_status & SRB_STATUS_AUTOSENSE_VALID))
		return;
	if ((code == 0x70 || code == 0x71) && len >= 14) {
		r->key = b[2] & 0xf;
		r->asc = b[12];
		r->ascq = b[13];
		r->sense_valid = true;
	} else if ((code == 0x72 || code == 0x73) && len >= 4) {
		r->key = b[1] & 0xf;
		r->asc = b[2];
		r->ascq = b[3];
		r->sense_valid = true;
	}
}

int storvsc_execute(struct storvsc *s, unsigned chan, uint8_t lun, const uint8_t *cdb,
		    uint8_t cdb_len, enum storvsc_dir dir, uint64_t gpa, uint32_t len,
		    struct storvsc_result *r)
{
	struct vmbc_channel *ch;
	struct vstor_packet v, rep;
	uint64_t id;
	int ret;

	memset(r, 0, sizeof(*r));
	if (chan >= s->nch || !cdb_len || cdb_len > 16 || len > s->max_transfer ||
	    ((gpa & 4095) + (uint64_t)len + 4095) / 4096 > STORVSC_MAX_PFNS ||
	    (dir == STORVSC_NO_DATA) != !len)
		return VMBC_EINVAL;
	ch = s->ch[chan];
	id = s->next_id++;
	memset(&v, 0, sizeof(v));
	v.operation = VSTOR_EXECUTE_SRB;
	v.flags = VSTOR_FLAG_REQUEST_COMPLETION;
	v.srb.length = SRB_LEN_WIN8;
	v.srb.lun = lun;
	v.srb.cdb_length = cdb_len;
	v.srb.sense_info_length = SRB_SENSE_LEN;
	v.srb.data_in = (uint8_t)dir;
	v.srb.data_transfer_length = len;
	memcpy(v.srb.cdb_sense, cdb, cdb_len);
	v.srb.srb_flags =
		SRB_FLAGS_DISABLE_SYNCH_TRANSFER | (dir == STORVSC_DATA_IN    ? SRB_FLAGS_DATA_IN
						    : dir == STORVSC_DATA_OUT ? SRB_FLAGS_DATA_OUT
									      : 0);
	v.srb.time_out_value = 60;
	if (len) {
		/* One range: byte i lives at pfn[(off + i) >> 12] (§2.6). */
		uint32_t off = (uint32_t)(gpa & 4095);
		uint32_t npfn = (off + len + 4095) / 4096;
		struct vmbc_gpa_range rg = {.byte_count = len, .byte_offset = off, .pfns = s->pfns};

		for (uint32_t i = 0; i < npfn; i++)
			s->pfns[i] = gpa / 4096 + i;
		do {
			ret = vmbc_send_gpa_direct(ch, id, VMBC_PKT_FLAG_COMPLETION, &rg, 1, &v,
						   VSTOR_PKT_LEN);
			if (ret == VMBC_EAGAIN) {
				hvplat_wait();
				vmbc_poll(s->bus);
			}
		} while (ret == VMBC_EAGAIN);
	} else {
		ret = send_inband(s, ch, id, &v);
	}
	if (ret)
		return ret;
	ret = wait_reply(s, ch, id, &rep);
	if (ret)
		return ret;
	r->nt_status = rep.status;
	r->srb_status = rep.srb.srb_status;
	r->scsi_status = rep.srb.scsi_status;
	/* Never trust a transferred length bigger than what we asked for. */
	r->xfer = MIN_U(rep.srb.data_transfer_length, len);
	r->sense_len = (uint8_t)MIN_U(rep.srb.sense_info_length, SRB_SENSE_LEN);
	memcpy(r->sense, rep.srb.cdb_sense, SRB_SENSE_LEN);
	parse_sense(r);
	return 0;
}

void storvsc_close(struct storvsc *s)
{
	while (s->nch) {
		struct vmbc_channel *ch = s->ch[--s->nch];

		if (ch->open)
			vmbc_close(s->bus, ch);
		s->ch[s->nch] = NULL;
	}
}

bool storvsc_result_ok(const struct storvsc_result *r)
{
	uint8_t code = r->srb_status & 0x3f;

	return (code == SRB_STATUS_SUCCESS || code == SRB_STATUS_DATA_OVERRUN) &&
	       r->scsi_status == 0;
}
