// SPDX-License-Identifier: GPL-2.0-only
#include "boot/aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* AML opcodes (ACPI spec, "AML Byte Stream Byte Values"). */
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_METHOD_OP 0x14
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP 0x82 /* after ExtOpPrefix */
#define AML_RETURN_OP 0xa4
#define AML_ROOT_CHAR '\\'
#define AML_PARENT_CHAR '^'

/* Marks remember what kind of object is open so aml_end knows what to fix up. */
#define MARK_BUFFER_FLAG ((size_t)1 << (sizeof(size_t) * 8 - 1))

void aml_buf_init(struct aml_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void aml_buf_free(struct aml_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool aml_reserve(struct aml_buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->error)
		return false;
	if (n > SIZE_MAX / 4 - b->len) {
		b->error = -E2BIG;
		return false;
	}
	if (b->len + n <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->error = -ENOMEM;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void aml_bytes(struct aml_buf *b, const void *p, size_t n)
{
	if (!n || !aml_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void aml_byte(struct aml_buf *b, uint8_t v)
{
	aml_bytes(b, &v, 1);
}

static void aml_le(struct aml_buf *b, uint64_t v, unsigned n)
{
	uint8_t t[8];

	for (unsigned i = 0; i < n; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(b, t, n);
}

unsigned aml_pkglen_encode(uint32_t body_len, uint8_t out[4])
{
	/* The encoded length counts the PkgLength bytes themselves. */
	if (body_len + 1 <= 0x3f) {
		out[0] = (uint8_t)(body_len + 1);
		return 1;
	}
	for (unsigned n = 2; n <= 4; n++) {
		uint32_t limit = (1u << (4 + 8 * (n - 1))) - 1;

		if (body_len > limit - n)
			continue;
		uint32_t total = body_len + n;

		/* Lead byte: bits 7-6 = bytes that follow, bits 3-0 = low nibble. */
		out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (unsigned i = 1; i < n; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return n;
	}
	return 0;
}

static bool aml_seg_char_ok(char c, bool first)
{
	if (c == '_' || (c >= 'A' && c <= 'Z'))
		return true;
	return !first && c >= '0' && c <= '9';
}

void aml_name(struct aml_buf *b, const char *path)
{
	uint8_t segs[255][4];
	unsigned nseg = 0;
	const char *p = path;

	if (b->error)
		return;
	if (*p == AML_ROOT_CHAR) {
		aml_byte(b, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == AML_PARENT_CHAR) {
			aml_byte(b, AML_PARENT_CHAR);
			p++;
		}
	}
	while (*p) {
		unsigned n = 0;

		if (nseg == 255)
			goto bad;
		memset(segs[nseg], '_', 4);
		while (*p && *p != '.') {
			if (n == 4 || !aml_seg_char_ok(*p, n == 0))
				goto bad;
			segs[nseg][n++] = (uint8_t)*p++;
		}
		if (n == 0)
			goto bad;
		nseg++;
		if (*p == '.') {
			p++;
			if (!*p)
				goto bad;
		}
	}
	if (nseg == 0) {
		aml_byte(b, 0x00); /* NullName */
		return;
	}
	if (nseg == 2) {
		aml_byte(b, AML_DUAL_NAME_PREFIX);
	} else if (nseg > 2) {
		aml_byte(b, AML_MULTI_NAME_PREFIX);
		aml_byte(b, (uint8_t)nseg);
	}
	aml_bytes(b, segs, 4 * (size_t)nseg);
	return;
bad:
	b->error = -EINVAL;
}

void aml_int(struct aml_buf *b, uint64_t v)
{
	if (v == 0) {
		aml_byte(b, AML_ZERO_OP);
	} else if (v == 1) {
		aml_byte(b, AML_ONE_OP);
	} else if (v <= 0xff) {
		aml_byte(b, AML_BYTE_PREFIX);
		aml_le(b, v, 1);
	} else if (v <= 0xffff) {
		aml_byte(b, AML_WORD_PREFIX);
		aml_le(b, v, 2);
	} else if (v <= 0xffffffffu) {
		aml_byte(b, AML_DWORD_PREFIX);
		aml_le(b, v, 4);
	} else {
		aml_byte(b, AML_QWORD_PREFIX);
		aml_le(b, v, 8);
	}
}

void aml_string(struct aml_buf *b, const char *s)
{
	for (const char *c = s; *c; c++) {
		/* AML strings are 7-bit ASCII without NUL. */
		if ((unsigned char)*c > 0x7f) {
			if (!b->error)
				b->error = -EINVAL;
			return;
		}
	}
	aml_byte(b, AML_STRING_PREFIX);
	aml_bytes(b, s, strlen(s) + 1);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

uint32_t aml_eisaid_value(const char *id)
{
	uint32_t v = 0;

	if (strlen(id) != 7)
		return 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return 0;
		v = (v << 5) | (uint32_t)(id[i] - 0x40);
	}
	for (int i = 3; i < 7; i++) {
		int h = hexval(id[i]);

		if (h < 0)
			return 0;
		v = (v << 4) | (uint32_t)h;
	}
	/* Stored big-endian: vendor letters in the first two bytes of the integer. */
	return __builtin_bswap32(v);
}

void aml_eisaid(struct aml_buf *b, const char *id)
{
	uint32_t v = aml_eisaid_value(id);

	if (!v) {
		if (!b->error)
			b->error = -EINVAL;
		return;
	}
	/* Always a DWord, as compilers emit it, so the value has a fixed shape. */
	aml_byte(b, AML_DWORD_PREFIX);
	aml_le(b, v, 4);
}

static size_t aml_open(struct aml_buf *b)
{
	/* The PkgLength is inserted at this offset by aml_end. */
	return b->len;
}

size_t aml_scope_begin(struct aml_buf *b, const char *name)
{
	size_t mark;

	aml_byte(b, AML_SCOPE_OP);
	mark = aml_open(b);
	aml_name(b, name);
	return mark;
}

size_t aml_device_begin(struct aml_buf *b, const char *name)
{
	size_t mark;

	aml_byte(b, AML_EXT_OP_PREFIX);
	aml_byte(b, AML_DEVICE_OP);
	mark = aml_open(b);
	aml_name(b, name);
	return mark;
}

size_t aml_method_begin(struct aml_buf *b, const char *name, unsigned nargs, bool serialized)
{
	size_t mark;

	aml_byte(b, AML_METHOD_OP);
	mark = aml_open(b);
	aml_name(b, name);
	if (nargs > 7 && !b->error)
		b->error = -EINVAL;
	aml_byte(b, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0)));
	return mark;
}

size_t aml_package_begin(struct aml_buf *b, unsigned nelems)
{
	size_t mark;

	aml_byte(b, AML_PACKAGE_OP);
	mark = aml_open(b);
	if (nelems > 255 && !b->error)
		b->error = -EINVAL;
	aml_byte(b, (uint8_t)nelems);
	return mark;
}

size_t aml_buffer_begin(struct aml_buf *b)
{
	aml_byte(b, AML_BUFFER_OP);
	return aml_open(b) | MARK_BUFFER_FLAG;
}

static void aml_insert(struct aml_buf *b, size_t at, const uint8_t *p, size_t n)
{
	if (!aml_reserve(b, n))
		return;
	memmove(b->data + at + n, b->data + at, b->len - at);
	memcpy(b->data + at, p, n);
	b->len += n;
}

void aml_end(struct aml_buf *b, size_t mark)
{
	bool is_buffer = mark & MARK_BUFFER_FLAG;
	size_t at = mark & ~MARK_BUFFER_FLAG;
	uint8_t hdr[4 + 9];
	unsigned n;
	size_t body;

	if (b->error)
		return;
	if (at > b->len) {
		b->error = -EINVAL;
		return;
	}
	body = b->len - at;
	if (is_buffer) {
		/* BufferSize (an integer) sits between PkgLength and the bytes. */
		struct aml_buf t;

		aml_buf_init(&t);
		aml_int(&t, body);
		if (t.error || t.len > 9) {
			b->error = t.error ? t.error : -EINVAL;
			aml_buf_free(&t);
			return;
		}
		memcpy(hdr + 4, t.data, t.len);
		body += t.len;
		if (body > UINT32_MAX || !(n = aml_pkglen_encode((uint32_t)body, hdr))) {
			b->error = -E2BIG;
			aml_buf_free(&t);
			return;
		}
		memmove(hdr + n, hdr + 4, t.len);
		n += (unsigned)t.len;
		aml_buf_free(&t);
	} else {
		if (body > UINT32_MAX || !(n = aml_pkglen_encode((uint32_t)body, hdr))) {
			b->error = -E2BIG;
			return;
		}
	}
	aml_insert(b, at, hdr, n);
}

void aml_name_decl(struct aml_buf *b, const char *name)
{
	aml_byte(b, AML_NAME_OP);
	aml_name(b, name);
}

void aml_return(struct aml_buf *b)
{
	aml_byte(b, AML_RETURN_OP);
}

size_t aml_restemplate_begin(struct aml_buf *b)
{
	return aml_buffer_begin(b);
}

void aml_restemplate_end(struct aml_buf *b, size_t mark)
{
	/* End Tag: small item 0xF, length 1; checksum 0 means "treat as valid". */
	aml_byte(b, 0x79);
	aml_byte(b, 0x00);
	aml_end(b, mark);
}

void aml_res_io(struct aml_buf *b, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	/* I/O port descriptor, 16-bit decode. */
	aml_byte(b, 0x47);
	aml_byte(b, 0x01);
	aml_le(b, min, 2);
	aml_le(b, max, 2);
	aml_byte(b, align);
	aml_byte(b, len);
}

void aml_res_irq_noflags(struct aml_buf *b, uint16_t mask)
{
	aml_byte(b, 0x22);
	aml_le(b, mask, 2);
}

void aml_res_irq(struct aml_buf *b, uint16_t mask, uint8_t flags)
{
	aml_byte(b, 0x23);
	aml_le(b, mask, 2);
	aml_byte(b, flags);
}

void aml_res_mem32_fixed(struct aml_buf *b, bool writable, uint32_t base, uint32_t len)
{
	aml_byte(b, 0x86);
	aml_le(b, 9, 2);
	aml_byte(b, writable ? 1 : 0);
	aml_le(b, base, 4);
	aml_le(b, len, 4);
}
