/* Test-guest glue for the Hyper-V scenarios: see tguest_hv.h. */
#include "hv/tguest_hv.h"
#include "pvh.h"

static struct winhv hv HVPLAT_NOINIT; /* winhv_init sets it up */
static int hv_state; /* 0 not tried, 1 ok, -1 failed */
static const char *hv_why;

struct winhv *tguest_hv(const char **why)
{
	if (!hv_state) {
		hv_state = -1;
		if (!winhv_init(&hv, &hv_why) && !winhv_vp_init(&hv, &hv_why))
			hv_state = 1;
	}
	if (hv_state < 0) {
		if (why)
			*why = hv_why;
		return NULL;
	}
	return &hv;
}

int tguest_hv_synic(const char **why)
{
	struct winhv *w = tguest_hv(why);
	unsigned cpu = hvplat_cpu();

	if (!w)
		return -1;
	if (cpu < WINHV_MAX_VPS && w->vp[cpu].synic)
		return 0;
	return winhv_synic_enable(w, 1u << 2, why);
}

const char *tguest_cmdline_get(const char *key, char *buf, size_t size)
{
	const char *p = boot.cmdline;
	size_t klen = strlen(key);

	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, klen) && p[klen] == '=') {
			size_t i = 0;

			p += klen + 1;
			while (p[i] && p[i] != ' ' && i + 1 < size) {
				buf[i] = p[i];
				i++;
			}
			buf[i] = '\0';
			return buf;
		}
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

uint64_t tguest_cmdline_u64(const char *key, uint64_t def)
{
	char buf[32];
	const char *s = tguest_cmdline_get(key, buf, sizeof(buf));
	uint64_t v = 0;
	unsigned base = 10;

	if (!s || !*s)
		return def;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return def;
		v = v * base + d;
	}
	return v;
}
