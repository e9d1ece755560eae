/* Echo-device exerciser: see vmbc_echo.h. */
#include "vmbus/vmbc_echo.h"

const uint8_t vmbc_echo_class[16] = {0x3e, 0x6b, 0x2f, 0x8a, 0x1d, 0x5c, 0x7a, 0x4e,
				     0x9b, 0x0f, 0x3d, 0x6e, 0x2c, 0x41, 0xa5, 0xb7};

#define ECHO_HDR 12u /* seq, len, checksum */
#define ECHO_TIMEOUT_NS 10000000000ull

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static void fill(uint8_t *p, uint32_t len, uint64_t seed)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = mix(seed * 0x9e3779b97f4a7c15ull + i / 8);
		p[i] = (uint8_t)(v >> (8 * (i % 8)));
	}
}

static uint32_t sum32(const uint8_t *p, uint32_t len)
{
	uint32_t s = 0x811c9dc5u;

	for (uint32_t i = 0; i < len; i++)
		s = (s ^ p[i]) * 0x01000193u;
	return s;
}

static int fail(struct vmbc_echo_result *r, int code, const struct vmbc_channel *ch,
		const char *what, unsigned a, unsigned b)
{
	snprintf(r->why, sizeof(r->why),
		 "%s (%u, %u) after %u; g2h w %u r %u mask %u, h2g w %u r %u mask %u pend %u", what,
		 a, b, r->done, ch->out.ctl ? ch->out.ctl->write_index : 0,
		 ch->out.ctl ? ch->out.ctl->read_index : 0,
		 ch->out.ctl ? ch->out.ctl->interrupt_mask : 0,
		 ch->in.ctl ? ch->in.ctl->write_index : 0, ch->in.ctl ? ch->in.ctl->read_index : 0,
		 ch->in.ctl ? ch->in.ctl->interrupt_mask : 0,
		 ch->in.ctl ? ch->in.ctl->pending_send_sz : 0);
	return code;
}

/* Idle: let interrupts and channel messages run; kick the host if asked and idle too long. */
static void idle(struct vmbc *c, struct vmbc_channel *ch, const struct vmbc_echo_opts *o,
		 struct vmbc_echo_result *r, uint64_t *progress)
{
	uint64_t now = hvplat_now_ns();

	if (o->stall_kick_ns && now - *progress > o->stall_kick_ns) {
		r->stall_kicks++;
		hvplat_log("vmbus echo: no progress for %llu ms, signalling the host again",
			   (unsigned long long)(o->stall_kick_ns / 1000000));
		winhv_signal_event(ch->conn_id, 0);
		*progress = now;
	}
	hvplat_wait();
	vmbc_poll(c);
}

int vmbc_echo_inband(struct vmbc *c, struct vmbc_channel *ch, const struct vmbc_echo_opts *o,
		     struct vmbc_echo_result *r)
{
	static uint8_t out[VMBC_ECHO_CHUNK] HVPLAT_NOINIT, exp[VMBC_ECHO_CHUNK] HVPLAT_NOINIT;
	static uint8_t in[VMBC_ECHO_CHUNK + 64] HVPLAT_NOINIT;
	uint32_t max = o->max_len && o->max_len <= VMBC_ECHO_CHUNK ? o->max_len : 4000;
	unsigned window = o->window ? o->window : 1, sent = 0;
	uint64_t end = hvplat_now_ns() + ECHO_TIMEOUT_NS, progress = hvplat_now_ns();

	memset(r, 0, sizeof(*r));
	if (max < ECHO_HDR)
		max = ECHO_HDR;
	while (r->done < o->count) {
		struct vmbc_pkt p;
		int ret;

		while (sent < o->count && sent - r->done < window) {
			uint64_t seed = o->seed + sent;
			uint32_t len = ECHO_HDR + (uint32_t)(mix(seed) % (max - ECHO_HDR + 1));
			uint32_t s;

			fill(out + ECHO_HDR, len - ECHO_HDR, seed);
			s = sum32(out + ECHO_HDR, len - ECHO_HDR);
			memcpy(out, &sent, 4);
			memcpy(out + 4, &len, 4);
			memcpy(out + 8, &s, 4);
			ret = vmbc_send(ch, VMBC_PKT_INBAND, 0, 0x10000 + sent, NULL, 0, out, len);
			if (ret == VMBC_EAGAIN)
				break;
			if (ret)
				return fail(r, ret, ch, "send failed", sent, (unsigned)-ret);
			sent++;
		}
		ret = vmbc_recv(ch, in, sizeof(in), &p);
		if (ret == VMBC_EAGAIN) {
			if (hvplat_now_ns() > end)
				return fail(r, VMBC_ETIME, ch, "no reply", sent, r->done);
			idle(c, ch, o, r, &progress);
			continue;
		}
		if (ret)
			return fail(r, ret, ch, "bad packet from host", p.len, (unsigned)-ret);
		progress = hvplat_now_ns();
		{
			const uint8_t *pl = in + p.data_offset;
			uint32_t seq, len, s, n = p.len - p.data_offset;

			if (p.type != VMBC_PKT_INBAND || p.trans_id != 0x10000u + r->done)
				return fail(r, VMBC_EPROTO, ch, "reply type/trans_id", p.type,
					    (unsigned)p.trans_id);
			if (n < ECHO_HDR)
				return fail(r, VMBC_EPROTO, ch, "reply too short", n, 0);
			memcpy(&seq, pl, 4);
			memcpy(&len, pl + 4, 4);
			memcpy(&s, pl + 8, 4);
			if (seq != r->done || len > max || n != ((len + 7) & ~7u))
				return fail(r, VMBC_EPROTO, ch, "reply seq/len", seq, n);
			fill(exp, len - ECHO_HDR, o->seed + seq);
			if (sum32(pl + ECHO_HDR, len - ECHO_HDR) != s ||
			    memcmp(pl + ECHO_HDR, exp, len - ECHO_HDR))
				return fail(r, VMBC_EPROTO, ch, "payload corrupted", seq, len);
		}
		r->done++;
	}
	return 0;
}

int vmbc_echo_gpa_direct(struct vmbc *c, struct vmbc_channel *ch, const struct vmbc_echo_opts *o,
			 struct vmbc_echo_result *r)
{
	static uint8_t in[VMBC_ECHO_CHUNK + 64] HVPLAT_NOINIT;
	static uint8_t got[6 * HVPLAT_PAGE_SIZE] HVPLAT_NOINIT;
	struct hvplat_pages buf;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	if (hvplat_pages_alloc(6, &buf))
		return fail(r, VMBC_ENOMEM, ch, "no pages for the data buffer", 6, 0);
	for (unsigned i = 0; i < o->count && !ret; i++) {
		uint64_t seed = o->seed + i, pfns[6];
		uint32_t off = (uint32_t)(mix(seed) % HVPLAT_PAGE_SIZE);
		uint32_t len = 1 + (uint32_t)(mix(seed + 1) % (5 * HVPLAT_PAGE_SIZE - off));
		uint32_t npfn = (off + len + HVPLAT_PAGE_SIZE - 1) / HVPLAT_PAGE_SIZE, have = 0;
		struct vmbc_gpa_range rg = {len, off, pfns};
		uint64_t end = hvplat_now_ns() + ECHO_TIMEOUT_NS, progress = hvplat_now_ns();
		uint8_t inl[24];

		for (uint32_t p = 0; p < npfn; p++)
			pfns[p] = buf.gpa / HVPLAT_PAGE_SIZE + p;
		fill((uint8_t *)buf.va + off, len, seed);
		memset(inl, 0xab, sizeof(inl));
		while ((ret = vmbc_send_gpa_direct(ch, 0x20000 + i, VMBC_PKT_FLAG_COMPLETION, &rg,
						   1, inl, sizeof(inl))) == VMBC_EAGAIN) {
			if (hvplat_now_ns() > end)
				break;
			idle(c, ch, o, r, &progress);
		}
		if (ret) {
			ret = fail(r, ret, ch, "GPA-direct send failed", i, (unsigned)-ret);
			break;
		}
		while (have < len) {
			struct vmbc_pkt p;
			uint32_t n;

			ret = vmbc_recv(ch, in, sizeof(in), &p);
			if (ret == VMBC_EAGAIN) {
				if (hvplat_now_ns() > end) {
					ret = fail(r, VMBC_ETIME, ch, "no reply", i, have);
					break;
				}
				idle(c, ch, o, r, &progress);
				continue;
			}
			if (ret) {
				ret = fail(r, ret, ch, "bad packet from host", i, (unsigned)-ret);
				break;
			}
			progress = hvplat_now_ns();
			n = p.len - p.data_offset;
			if (p.type != VMBC_PKT_INBAND || p.trans_id != 0x20000u + i || !n ||
			    n > VMBC_ECHO_CHUNK || have + n > sizeof(got)) {
				ret = fail(r, VMBC_EPROTO, ch, "reply type/trans_id/size", p.type,
					   n);
				break;
			}
			memcpy(got + have, in + p.data_offset, n);
			have += n;
		}
		if (ret)
			break;
		/* The last chunk may carry up to 7 bytes of padding. */
		if (have >= len + 8 || memcmp(got, (uint8_t *)buf.va + off, len)) {
			ret = fail(r, VMBC_EPROTO, ch, "buffer corrupted (offset, length)", off,
				   len);
			break;
		}
		r->done++;
	}
	hvplat_pages_free(&buf);
	return ret;
}
