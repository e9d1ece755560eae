// SPDX-License-Identifier: GPL-2.0-only
#include "devices/uart.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

struct sink {
	uint8_t out[256];
	size_t n;
	int level, changes;
	unsigned irq;
};

static void sink_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct sink *s = opaque;

	memcpy(s->out + s->n, buf, len);
	s->n += len;
}

static void sink_irq(void *opaque, unsigned irq, int level)
{
	struct sink *s = opaque;

	s->level = level;
	s->irq = irq;
	s->changes++;
}

static void setup(struct uart *u, struct sink *s)
{
	struct dev_irq irq = {.set = sink_irq, .opaque = s, .irq = 4};
	struct uart_backend be = {.tx = sink_tx, .opaque = s};

	memset(s, 0, sizeof(*s));
	uart_init(u, &irq, &be);
}

static uint8_t rd(struct uart *u, unsigned reg)
{
	uint8_t v = 0;

	uart_io(u, reg, &v, 1, false);
	return v;
}

static void wr(struct uart *u, unsigned reg, uint8_t v)
{
	uart_io(u, reg, &v, 1, true);
}

static void test_thr_to_backend(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	for (const char *p = "ok 1\n"; *p; p++)
		wr(&u, UART_THR, (uint8_t)*p);
	assert_int_equal(s.n, 5);
	assert_memory_equal(s.out, "ok 1\n", 5);
	/* Transmitter always empty: THRE and TEMT set. */
	assert_int_equal(rd(&u, UART_LSR) & 0x60, 0x60);
	assert_int_equal(s.changes, 0); /* no interrupt enabled, no IRQ */
	uart_destroy(&u);
}

static void test_lsr_iir_rx(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	assert_int_equal(rd(&u, UART_IIR), UART_IIR_NO_INT);
	assert_int_equal(rd(&u, UART_LSR) & UART_LSR_DR, 0);
	assert_int_equal(uart_rx_push(&u, (const uint8_t *)"a", 1), 1);
	assert_int_equal(rd(&u, UART_LSR) & UART_LSR_DR, UART_LSR_DR);
	/* Without IER the data is there but no interrupt is reported. */
	assert_int_equal(rd(&u, UART_IIR), UART_IIR_NO_INT);
	wr(&u, UART_IER, UART_IER_RDI);
	assert_int_equal(rd(&u, UART_IIR), UART_IIR_RDI);
	assert_int_equal(rd(&u, UART_RBR), 'a');
	assert_int_equal(rd(&u, UART_LSR) & UART_LSR_DR, 0);
	assert_int_equal(rd(&u, UART_IIR), UART_IIR_NO_INT);
	/* Non-FIFO mode holds one byte: the second overruns. */
	assert_int_equal(uart_rx_push(&u, (const uint8_t *)"bc", 2), 1);
	uart_destroy(&u);
}

static void test_interrupt_line(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	/* OUT2 gates the IRQ on a PC: enabling THRI alone does not raise the line. */
	wr(&u, UART_IER, UART_IER_THRI);
	assert_int_equal(s.changes, 0);
	wr(&u, UART_MCR, UART_MCR_OUT2 | UART_MCR_DTR | UART_MCR_RTS);
	assert_int_equal(s.changes, 1);
	assert_int_equal(s.level, 1);
	assert_int_equal(s.irq, 4);
	/* Reading IIR that reports THRE acknowledges it and lowers the line. */
	assert_int_equal(rd(&u, UART_IIR), UART_IIR_THRI);
	assert_int_equal(s.level, 0);
	assert_int_equal(rd(&u, UART_IIR), UART_IIR_NO_INT);
	/* Writing THR: byte sent, THR empty again: interrupt again. */
	wr(&u, UART_THR, 'x');
	assert_int_equal(s.level, 1);
	wr(&u, UART_IER, 0);
	assert_int_equal(s.level, 0);
	/* Received data with RDI enabled raises it; reading the byte lowers it. */
	wr(&u, UART_IER, UART_IER_RDI);
	assert_int_equal(s.level, 0);
	uart_rx_push(&u, (const uint8_t *)"z", 1);
	assert_int_equal(s.level, 1);
	assert_int_equal(rd(&u, UART_RBR), 'z');
	assert_int_equal(s.level, 0);
	uart_destroy(&u);
}

static void test_fifo(void **state)
{
	struct uart u;
	struct sink s;
	uint8_t in[20];

	setup(&u, &s);
	wr(&u, UART_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX);
	assert_int_equal(rd(&u, UART_IIR) & 0xc0, 0xc0); /* 16550A: FIFOs enabled */
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)('A' + i);
	assert_int_equal(uart_rx_space(&u), UART_FIFO_SIZE);
	assert_int_equal(uart_rx_push(&u, in, sizeof(in)), UART_FIFO_SIZE);
	assert_int_equal(uart_rx_space(&u), 0);
	for (unsigned i = 0; i < UART_FIFO_SIZE; i++)
		assert_int_equal(rd(&u, UART_RBR), 'A' + i);
	assert_int_equal(rd(&u, UART_LSR) & UART_LSR_DR, 0);
	/* FCR bit 1 flushes what was received. */
	uart_rx_push(&u, in, 4);
	wr(&u, UART_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX);
	assert_int_equal(rd(&u, UART_LSR) & UART_LSR_DR, 0);
	assert_int_equal(uart_rx_space(&u), UART_FIFO_SIZE);
	uart_destroy(&u);
}

static void test_divisor_latch_and_scratch(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	wr(&u, UART_IER, 0x05);
	wr(&u, UART_LCR, UART_LCR_DLAB | 0x03);
	wr(&u, UART_DLL, 0x01);
	wr(&u, UART_DLM, 0x00);
	assert_int_equal(rd(&u, UART_DLL), 0x01);
	assert_int_equal(rd(&u, UART_DLM), 0x00);
	assert_int_equal(s.n, 0); /* DLL write is not a transmit */
	wr(&u, UART_LCR, 0x03);
	assert_int_equal(rd(&u, UART_LCR), 0x03);
	assert_int_equal(rd(&u, UART_IER), 0x05); /* IER untouched by the DLM write */
	wr(&u, UART_SCR, 0x5a);
	assert_int_equal(rd(&u, UART_SCR), 0x5a);
	wr(&u, UART_SCR, 0xa5);
	assert_int_equal(rd(&u, UART_SCR), 0xa5);
	uart_destroy(&u);
}

static void test_loopback_probe(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	/* The check OS drivers do: loopback with RTS and OUT2 reads back CTS and DCD. */
	wr(&u, UART_MCR, UART_MCR_LOOP | 0x0a);
	assert_int_equal(rd(&u, UART_MSR) & 0xf0, 0x90);
	wr(&u, UART_THR, 'L');
	assert_int_equal(s.n, 0);
	assert_int_equal(rd(&u, UART_RBR), 'L');
	wr(&u, UART_MCR, UART_MCR_OUT2);
	assert_int_equal(rd(&u, UART_MSR) & 0xf0, 0xb0);
	uart_destroy(&u);
}

static void test_overrun_line_status(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	wr(&u, UART_MCR, UART_MCR_OUT2);
	wr(&u, UART_IER, UART_IER_RLSI);
	/* Byte-at-a-time mode: a second byte before the first is read is an overrun. */
	assert_int_equal(uart_rx_push(&u, (const uint8_t *)"a", 1), 1);
	assert_int_equal(s.level, 0);
	/* The backend is told there is no room rather than overrunning... */
	assert_int_equal(uart_rx_push(&u, (const uint8_t *)"b", 1), 0);
	assert_int_equal(rd(&u, UART_IIR), UART_IIR_NO_INT);
	{
		uint8_t one = 'b';

		/* ...but a byte looped back from THR into the full buffer overruns. */
		wr(&u, UART_MCR, UART_MCR_OUT2 | UART_MCR_LOOP);
		wr(&u, UART_THR, one);
		wr(&u, UART_MCR, UART_MCR_OUT2);
	}
	assert_int_equal(rd(&u, UART_IIR), UART_IIR_RLSI);
	assert_int_equal(s.level, 1);
	/* LSR read reports OE once and clears it, which ends the interrupt. */
	assert_int_equal(rd(&u, UART_LSR) & (UART_LSR_OE | UART_LSR_DR), UART_LSR_OE | UART_LSR_DR);
	assert_int_equal(s.level, 0);
	assert_int_equal(rd(&u, UART_LSR) & UART_LSR_OE, 0);
	assert_int_equal(rd(&u, UART_RBR), 'a'); /* the first byte survives */
	uart_destroy(&u);
}

static void test_modem_status_deltas(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	/* Entering loopback with DTR only: CTS/DCD drop, DSR stays: delta bits for CTS, DCD. */
	wr(&u, UART_MCR, UART_MCR_LOOP | UART_MCR_DTR);
	assert_int_equal(rd(&u, UART_MSR), UART_MSR_DSR | 0x01 | 0x08);
	assert_int_equal(rd(&u, UART_MSR), UART_MSR_DSR); /* deltas clear on read */
	uart_destroy(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thr_to_backend),
		cmocka_unit_test(test_lsr_iir_rx),
		cmocka_unit_test(test_interrupt_line),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_divisor_latch_and_scratch),
		cmocka_unit_test(test_loopback_probe),
		cmocka_unit_test(test_overrun_line_status),
		cmocka_unit_test(test_modem_status_deltas),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
