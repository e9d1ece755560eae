/* WinHv client: see winhv.h. Spec references are to hyperv-interface-and-vmbus.md. */
#include "hv/winhv.h"

static const char *set_why(const char **why, const char *s)
{
	if (why)
		*why = s;
	return s;
}

int winhv_detect(struct winhv_info *info, const char **why)
{
	uint32_t r[4];

	memset(info, 0, sizeof(*info));
	hvplat_cpuid(1, 0, r);
	if (!(r[2] & (1u << 31))) {
		set_why(why, "CPUID.1:ECX[31] (hypervisor present) clear");
		return -1;
	}
	hvplat_cpuid(WHV_CPUID_VENDOR, 0, r);
	info->max_leaf = r[0];
	info->vendor[0] = r[1];
	info->vendor[1] = r[2];
	info->vendor[2] = r[3];
	if (r[1] != WHV_VENDOR_EBX || r[2] != WHV_VENDOR_ECX || r[3] != WHV_VENDOR_EDX) {
		set_why(why, "no \"Microsoft Hv\" signature at 0x40000000");
		return -1;
	}
	if (r[0] < WHV_CPUID_MIN_MAX || r[0] > 0x4000FFFFu) {
		set_why(why, "max Hyper-V leaf outside 0x40000005..0x4000FFFF");
		return -1;
	}
	hvplat_cpuid(WHV_CPUID_INTERFACE, 0, r);
	info->interface = r[0];
	hvplat_cpuid(WHV_CPUID_FEATURES, 0, r);
	info->features_a = r[0];
	info->privileges_b = r[1];
	info->features_d = r[3];
	hvplat_cpuid(WHV_CPUID_HINTS, 0, r);
	info->hints = r[0];
	info->spin_retries = r[1];
	hvplat_cpuid(WHV_CPUID_LIMITS, 0, r);
	info->max_vps = r[0];
	info->max_lps = r[1];
	if (!(info->features_a & WHV_A_HYPERCALL) || !(info->features_a & WHV_A_VP_INDEX)) {
		set_why(why, "HYPERCALL or VP_INDEX MSR not available (0x40000003.EAX bits 5, 6)");
		return -1;
	}
	if (info->privileges_b & (WHV_B_CPU_MANAGEMENT | WHV_B_ISOLATION | WHV_B_PARTITION_ID)) {
		set_why(why, "root/isolation/partition-id privilege set: not a plain child");
		return -1;
	}
	return 0;
}

static struct winhv_vp *this_vp(struct winhv *w)
{
	unsigned cpu = hvplat_cpu();

	return cpu < WINHV_MAX_VPS ? &w->vp[cpu] : NULL;
}

int winhv_init(struct winhv *w, const char **why)
{
	uint64_t v;
	const uint8_t *code;
	int nonzero = 0;

	memset(w, 0, sizeof(*w));
	w->vector = WINHV_VECTOR;
	if (winhv_detect(&w->info, why))
		return -1;
	if (hvplat_wrmsr(WHV_MSR_GUEST_OS_ID, WINHV_GUEST_OS_ID)) {
		set_why(why, "WRMSR GUEST_OS_ID faulted");
		return -1;
	}
	if (hvplat_rdmsr(WHV_MSR_HYPERCALL, &v)) {
		set_why(why, "RDMSR HYPERCALL faulted");
		return -1;
	}
	if (hvplat_pages_alloc(1, &w->hcall)) {
		set_why(why, "out of pages for the hypercall page");
		return -1;
	}
	/* Bits 11:1 are kept as read (§2.1); only the page number and enable are ours. */
	v = (v & 0xffeull) | w->hcall.gpa | WHV_HYPERCALL_ENABLE;
	if (hvplat_wrmsr(WHV_MSR_HYPERCALL, v)) {
		set_why(why, "WRMSR HYPERCALL faulted");
		return -1;
	}
	if (hvplat_rdmsr(WHV_MSR_HYPERCALL, &v) || !(v & WHV_HYPERCALL_ENABLE) ||
	    (v & ~0xfffull) != w->hcall.gpa) {
		set_why(why, "HYPERCALL MSR does not read back enabled at our page");
		return -1;
	}
	/* The host writes the stub into the page during the WRMSR (§2.3). */
	code = w->hcall.va;
	for (unsigned i = 0; i < 64; i++)
		nonzero |= code[i];
	if (!nonzero) {
		set_why(why, "hypercall page still empty after enabling it");
		return -1;
	}
	hvplat_hypercall_page_set(w->hcall.va);
	w->hypercall_ok = true;
	if (hvplat_irq_register(w->vector, winhv_isr, w)) {
		set_why(why, "cannot register the SynIC vector");
		return -1;
	}
	return 0;
}

int winhv_vp_init(struct winhv *w, const char **why)
{
	struct winhv_vp *vp = this_vp(w);
	uint64_t idx;

	if (!vp) {
		set_why(why, "CPU number beyond WINHV_MAX_VPS");
		return -1;
	}
	if (vp->ready)
		return 0;
	if (hvplat_rdmsr(WHV_MSR_VP_INDEX, &idx)) {
		set_why(why, "RDMSR VP_INDEX faulted");
		return -1;
	}
	if (hvplat_pages_alloc(2, &vp->io)) {
		set_why(why, "out of pages for hypercall input/output");
		return -1;
	}
	vp->vp_index = (uint32_t)idx;
	vp->ready = true;
	return 0;
}

int winhv_synic_enable(struct winhv *w, uint16_t sint_mask, const char **why)
{
	struct winhv_vp *vp = this_vp(w);
	uint64_t v;

	if (!vp || !vp->ready) {
		set_why(why, "winhv_vp_init not run on this CPU");
		return -1;
	}
	if (!vp->simp.va &&
	    (hvplat_pages_alloc(1, &vp->simp) || hvplat_pages_alloc(1, &vp->siefp))) {
		set_why(why, "out of pages for SIMP/SIEFP");
		return -1;
	}
	/* Same order as Linux (§2.2 step 6): SIMP, SIEFP, SINTs, then SCONTROL. */
	if (hvplat_rdmsr(WHV_MSR_SIMP, &v) ||
	    hvplat_wrmsr(WHV_MSR_SIMP, (v & 0xffeull) | vp->simp.gpa | WHV_SIMP_ENABLE)) {
		set_why(why, "SIMP access faulted");
		return -1;
	}
	if (hvplat_rdmsr(WHV_MSR_SIEFP, &v) ||
	    hvplat_wrmsr(WHV_MSR_SIEFP, (v & 0xffeull) | vp->siefp.gpa | WHV_SIMP_ENABLE)) {
		set_why(why, "SIEFP access faulted");
		return -1;
	}
	for (unsigned s = 0; s < WHV_SINT_COUNT; s++) {
		if (!(sint_mask & (1u << s)))
			continue;
		if (hvplat_rdmsr(WHV_MSR_SINT0 + s, &v)) {
			set_why(why, "RDMSR SINTx faulted");
			return -1;
		}
		v &= ~(0xffull | WHV_SINT_MASKED | WHV_SINT_AUTO_EOI | WHV_SINT_POLLING);
		if (hvplat_wrmsr(WHV_MSR_SINT0 + s, v | w->vector)) {
			set_why(why, "WRMSR SINTx faulted");
			return -1;
		}
	}
	if (hvplat_rdmsr(WHV_MSR_SCONTROL, &v) ||
	    hvplat_wrmsr(WHV_MSR_SCONTROL, v | WHV_SCONTROL_ENABLE)) {
		set_why(why, "SCONTROL access faulted");
		return -1;
	}
	vp->synic = true;
	return 0;
}

void winhv_synic_disable(struct winhv *w)
{
	struct winhv_vp *vp = this_vp(w);
	uint64_t v;

	if (!vp || !vp->synic)
		return;
	for (unsigned s = 0; s < WHV_SINT_COUNT; s++)
		if (!hvplat_rdmsr(WHV_MSR_SINT0 + s, &v))
			hvplat_wrmsr(WHV_MSR_SINT0 + s, v | WHV_SINT_MASKED);
	hvplat_wrmsr(WHV_MSR_SCONTROL, 0);
	hvplat_wrmsr(WHV_MSR_SIEFP, 0);
	hvplat_wrmsr(WHV_MSR_SIMP, 0);
	vp->synic = false;
}

void winhv_set_msg_handler(struct winhv *w, unsigned sint, winhv_msg_fn fn, void *arg)
{
	if (sint < WHV_SINT_COUNT) {
		w->msg_arg[sint] = arg;
		w->msg_fn[sint] = fn;
	}
}

void winhv_set_event_handler(struct winhv *w, unsigned sint, winhv_event_fn fn, void *arg)
{
	if (sint < WHV_SINT_COUNT) {
		w->event_arg[sint] = arg;
		w->event_fn[sint] = fn;
	}
}

uint64_t winhv_hypercall_fast(uint16_t code, uint64_t in1, uint64_t in2)
{
	return hvplat_hypercall(WHV_CONTROL_FAST | code, in1, in2);
}

uint64_t winhv_input_gpa(struct winhv *w)
{
	struct winhv_vp *vp = this_vp(w);

	return vp && vp->ready ? vp->io.gpa : 0;
}

uint64_t winhv_hypercall_slow(struct winhv *w, uint64_t control, const void *in, uint32_t in_len,
			      void *out, uint32_t out_len)
{
	struct winhv_vp *vp = this_vp(w);
	uint8_t *page;
	uint64_t rax;

	if (!vp || !vp->ready || in_len > HVPLAT_PAGE_SIZE || out_len > HVPLAT_PAGE_SIZE)
		return ~0ull;
	page = vp->io.va;
	if (in_len)
		memcpy(page, in, in_len);
	rax = hvplat_hypercall(control, vp->io.gpa, out_len ? vp->io.gpa + HVPLAT_PAGE_SIZE : 0);
	if (out_len)
		memcpy(out, page + HVPLAT_PAGE_SIZE, out_len);
	return rax;
}

uint16_t winhv_post_message(struct winhv *w, uint32_t connection_id, uint32_t message_type,
			    const void *payload, uint32_t size)
{
	struct winhv_vp *vp = this_vp(w);
	struct whv_post_message_input *in;

	if (!vp || !vp->ready || size > WHV_MSG_PAYLOAD_MAX)
		return WHV_STATUS_INVALID_PARAMETER;
	in = vp->io.va;
	memset(in, 0, sizeof(*in));
	in->connection_id = connection_id;
	in->message_type = message_type;
	in->payload_size = size;
	if (size)
		memcpy(in->payload, payload, size);
	return winhv_status(hvplat_hypercall(WHV_CALL_POST_MESSAGE, vp->io.gpa, 0));
}

uint16_t winhv_signal_event(uint32_t connection_id, uint16_t flag)
{
	return winhv_status(winhv_hypercall_fast(WHV_CALL_SIGNAL_EVENT,
						 (uint64_t)flag << 32 | connection_id, 0));
}

unsigned winhv_drain_messages(struct winhv *w, unsigned sint)
{
	struct winhv_vp *vp = this_vp(w);
	struct whv_message *slot, copy;
	unsigned n = 0;

	if (!vp || !vp->synic || sint >= WHV_SINT_COUNT)
		return 0;
	slot = (struct whv_message *)vp->simp.va + sint;
	/* Bounded: a host that refills forever must not hang the guest here. */
	for (unsigned guard = 0; guard < 1024; guard++) {
		uint32_t type = __atomic_load_n(&slot->header.message_type, __ATOMIC_ACQUIRE);

		if (type == WHV_MSG_NONE)
			break;
		memcpy(&copy, slot, sizeof(copy));
		copy.header.message_type = type;
		if (w->msg_fn[sint] && w->msg_fn[sint](w->msg_arg[sint], hvplat_cpu(), &copy))
			break; /* consumer full: leave it in the slot, no EOM */
		vp->msgs++;
		n++;
		/* Free the slot, then look at msg_pending (§4.2: full barrier in between). */
		__atomic_compare_exchange_n(&slot->header.message_type, &type, WHV_MSG_NONE, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		hvplat_mb();
		if (__atomic_load_n(&slot->header.message_flags, __ATOMIC_ACQUIRE) &
		    WHV_MSG_FLAG_PENDING) {
			vp->eoms++;
			hvplat_wrmsr(WHV_MSR_EOM, 0);
		}
	}
	return n;
}

unsigned winhv_scan_events(struct winhv *w, unsigned sint)
{
	struct winhv_vp *vp = this_vp(w);
	uint64_t *words;
	unsigned n = 0;

	if (!vp || !vp->synic || sint >= WHV_SINT_COUNT)
		return 0;
	words = (uint64_t *)((uint8_t *)vp->siefp.va + sint * WHV_EVENT_FLAGS_BYTES);
	for (unsigned i = 0; i < WHV_EVENT_FLAGS_BYTES / 8; i++) {
		uint64_t bits;

		if (!__atomic_load_n(&words[i], __ATOMIC_RELAXED))
			continue;
		/* The host sets bits atomically; take them all at once the same way (§4.3). */
		bits = __atomic_exchange_n(&words[i], 0, __ATOMIC_SEQ_CST);
		while (bits) {
			unsigned b = (unsigned)__builtin_ctzll(bits);

			bits &= bits - 1;
			vp->events++;
			n++;
			if (w->event_fn[sint])
				w->event_fn[sint](w->event_arg[sint], hvplat_cpu(), i * 64 + b);
		}
	}
	return n;
}

void winhv_isr(void *arg, uint8_t vector)
{
	struct winhv *w = arg;
	struct winhv_vp *vp = this_vp(w);

	if (!vp)
		return;
	vp->interrupts++;
	for (unsigned s = 0; s < WHV_SINT_COUNT; s++) {
		if (w->event_fn[s])
			winhv_scan_events(w, s);
		if (w->msg_fn[s])
			winhv_drain_messages(w, s);
	}
}

uint64_t winhv_ref_time(void)
{
	uint64_t v;

	return hvplat_rdmsr(WHV_MSR_TIME_REF_COUNT, &v) ? 0 : v;
}
