/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A small AML (ACPI Machine Language) encoder: enough to write a DSDT with
 * Scope/Device/Name/Method, integers, strings, buffers, packages and the
 * resource descriptors legacy devices need. Output goes to a growable buffer;
 * a failed allocation or a bad name is sticky (aml_buf.error), checked once at
 * the end, so callers can chain calls without testing each one.
 */
#ifndef VIRIDIAN_BOOT_AML_H
#define VIRIDIAN_BOOT_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml_buf {
	uint8_t *data;
	size_t len, cap;
	int error; /* 0 or -errno, first failure wins */
};

void aml_buf_init(struct aml_buf *b);
void aml_buf_free(struct aml_buf *b);

/* Raw bytes. */
void aml_bytes(struct aml_buf *b, const void *p, size_t n);
void aml_byte(struct aml_buf *b, uint8_t v);

/*
 * PkgLength for a package whose body (everything after the PkgLength field)
 * has body_len bytes. Writes 1-4 bytes to out and returns how many, or 0 when
 * the total does not fit the 28-bit encoding.
 */
unsigned aml_pkglen_encode(uint32_t body_len, uint8_t out[4]);

/* NameString: "\\_SB.COM1", "^PARN", "_HID", "VMBS"; short segments padded with '_'. */
void aml_name(struct aml_buf *b, const char *path);
/* Integer with the smallest encoding: ZeroOp, OneOp, Byte/Word/DWord/QWordPrefix. */
void aml_int(struct aml_buf *b, uint64_t v);
/* String constant (StringPrefix, ASCII, NUL). */
void aml_string(struct aml_buf *b, const char *s);
/* Compressed EISA ID ("PNP0501") as a DWord integer, as ASL's EisaId() does. */
void aml_eisaid(struct aml_buf *b, const char *id);
uint32_t aml_eisaid_value(const char *id);

/*
 * Nested objects: *_begin writes the opcode and returns a mark; the body
 * follows; aml_end(mark) inserts the PkgLength in front of the body.
 */
size_t aml_scope_begin(struct aml_buf *b, const char *name);
size_t aml_device_begin(struct aml_buf *b, const char *name);
size_t aml_method_begin(struct aml_buf *b, const char *name, unsigned nargs, bool serialized);
size_t aml_package_begin(struct aml_buf *b, unsigned nelems);
size_t aml_buffer_begin(struct aml_buf *b); /* BufferSize is filled in by aml_end */
void aml_end(struct aml_buf *b, size_t mark);

/* Name (name, <object follows>): write the object right after. */
void aml_name_decl(struct aml_buf *b, const char *name);
/* Return (<object follows>). */
void aml_return(struct aml_buf *b);

/* ResourceTemplate () { ... }: a Buffer of descriptors closed by an End Tag. */
size_t aml_restemplate_begin(struct aml_buf *b);
void aml_restemplate_end(struct aml_buf *b, size_t mark);
void aml_res_io(struct aml_buf *b, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void aml_res_irq_noflags(struct aml_buf *b, uint16_t mask);
/* IRQ descriptor with flags byte: edge/level, active high/low, shared. */
#define AML_IRQ_EDGE 0x01
#define AML_IRQ_ACTIVE_LOW 0x08
#define AML_IRQ_SHARED 0x10
void aml_res_irq(struct aml_buf *b, uint16_t mask, uint8_t flags);
void aml_res_mem32_fixed(struct aml_buf *b, bool writable, uint32_t base, uint32_t len);

#endif
