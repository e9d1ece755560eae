// SPDX-License-Identifier: GPL-2.0-only
/* 16550A UART model. */
#include "devices/uart.h"

#include "lib/log.h"

#include <string.h>

static unsigned uart_fifo_cap(const struct uart *u)
{
	return (u->fcr & UART_FCR_ENABLE) ? UART_FIFO_SIZE : 1;
}

static uint8_t uart_iir(const struct uart *u)
{
	uint8_t fifo = (u->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0;

	if ((u->ier & UART_IER_RLSI) && (u->lsr & UART_LSR_OE))
		return fifo | UART_IIR_RLSI;
	if ((u->ier & UART_IER_RDI) && u->rx_count)
		return fifo | UART_IIR_RDI;
	if ((u->ier & UART_IER_THRI) && u->thre_pending)
		return fifo | UART_IIR_THRI;
	if ((u->ier & UART_IER_MSI) && (u->msr & 0x0f))
		return fifo | UART_IIR_MSI;
	return fifo | UART_IIR_NO_INT;
}

/* Call with the lock held. */
static void uart_update_irq(struct uart *u)
{
	bool level = !(uart_iir(u) & UART_IIR_NO_INT) && (u->mcr & UART_MCR_OUT2);

	if (level != u->irq_level) {
		u->irq_level = level;
		dev_irq_set(&u->irq, level);
	}
}

static uint8_t uart_modem_status(const struct uart *u)
{
	uint8_t st;

	if (u->mcr & UART_MCR_LOOP) {
		/* Loopback wires the modem outputs back to the inputs (drivers probe this). */
		st = 0;
		if (u->mcr & UART_MCR_RTS)
			st |= UART_MSR_CTS;
		if (u->mcr & UART_MCR_DTR)
			st |= UART_MSR_DSR;
		if (u->mcr & UART_MCR_OUT1)
			st |= UART_MSR_RI;
		if (u->mcr & UART_MCR_OUT2)
			st |= UART_MSR_DCD;
		return st;
	}
	return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
}

static void uart_set_mcr(struct uart *u, uint8_t v)
{
	uint8_t old = u->msr & 0xf0, now;

	u->mcr = v & 0x1f;
	now = uart_modem_status(u);
	/* Delta bits: CTS, DSR, trailing edge of RI, DCD. */
	if ((old ^ now) & UART_MSR_CTS)
		u->msr |= 0x01;
	if ((old ^ now) & UART_MSR_DSR)
		u->msr |= 0x02;
	if ((old & UART_MSR_RI) && !(now & UART_MSR_RI))
		u->msr |= 0x04;
	if ((old ^ now) & UART_MSR_DCD)
		u->msr |= 0x08;
	u->msr = (u->msr & 0x0f) | now;
}

static void uart_rx_put(struct uart *u, uint8_t c)
{
	if (u->rx_count >= uart_fifo_cap(u)) {
		u->lsr |= UART_LSR_OE;
		return;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = c;
	u->rx_count++;
	u->lsr |= UART_LSR_DR;
}

void uart_init(struct uart *u, const struct dev_irq *irq, const struct uart_backend *backend)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	if (irq)
		u->irq = *irq;
	if (backend)
		u->backend = *backend;
	u->lsr = UART_LSR_THRE | UART_LSR_TEMT;
	u->msr = uart_modem_status(u);
	u->dll = 0x0c; /* 9600 baud, as after a BIOS */
}

void uart_destroy(struct uart *u)
{
	pthread_mutex_destroy(&u->lock);
}

static uint8_t uart_read(struct uart *u, unsigned reg)
{
	uint8_t v = 0;

	switch (reg) {
	case UART_RBR:
		if (u->lcr & UART_LCR_DLAB)
			return u->dll;
		if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
			u->rx_count--;
		}
		if (!u->rx_count)
			u->lsr &= ~UART_LSR_DR;
		break;
	case UART_IER:
		return (u->lcr & UART_LCR_DLAB) ? u->dlm : u->ier;
	case UART_IIR:
		v = uart_iir(u);
		/* Reading IIR while it reports THR empty acknowledges that interrupt. */
		if ((v & 0x0f) == UART_IIR_THRI)
			u->thre_pending = false;
		break;
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		v = u->lsr;
		u->lsr &= ~UART_LSR_OE; /* error bits clear on read */
		break;
	case UART_MSR:
		v = u->msr;
		u->msr &= 0xf0;
		break;
	case UART_SCR:
		return u->scr;
	}
	return v;
}

static void uart_write(struct uart *u, unsigned reg, uint8_t v)
{
	switch (reg) {
	case UART_THR:
		if (u->lcr & UART_LCR_DLAB) {
			u->dll = v;
			break;
		}
		if (u->mcr & UART_MCR_LOOP)
			uart_rx_put(u, v);
		else if (u->backend.tx)
			u->backend.tx(u->backend.opaque, &v, 1);
		/* Transmission is instant: THR is empty again at once and says so. */
		u->thre_pending = true;
		break;
	case UART_IER:
		if (u->lcr & UART_LCR_DLAB) {
			u->dlm = v;
			break;
		}
		/* Enabling the THR interrupt while THR is empty raises it (16550A behaviour). */
		if ((v & UART_IER_THRI) && !(u->ier & UART_IER_THRI))
			u->thre_pending = true;
		u->ier = v & 0x0f;
		break;
	case UART_FCR:
		if ((v ^ u->fcr) & UART_FCR_ENABLE)
			v |= UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX; /* mode change flushes */
		if (v & UART_FCR_CLEAR_RX) {
			u->rx_count = 0;
			u->rx_head = 0;
			u->lsr &= ~UART_LSR_DR;
		}
		u->fcr = v & 0xc9;
		break;
	case UART_LCR:
		u->lcr = v;
		break;
	case UART_MCR:
		uart_set_mcr(u, v);
		break;
	case UART_LSR:
	case UART_MSR:
		break; /* read-only */
	case UART_SCR:
		u->scr = v;
		break;
	}
}

void uart_io(void *opaque, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	/* Wider accesses touch consecutive registers, one byte each. */
	for (unsigned i = 0; i < size; i++) {
		unsigned reg = (unsigned)(offset + i);

		if (reg > UART_SCR) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		if (is_write)
			uart_write(u, reg, data[i]);
		else
			data[i] = uart_read(u, reg);
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

int uart_register(struct uart *u, struct iobus *pio, uint16_t base)
{
	return iobus_register(pio, base, 8, uart_io, u, "uart");
}

size_t uart_rx_push(struct uart *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&u->lock);
	/* In loopback the line is disconnected from the outside. */
	if (!(u->mcr & UART_MCR_LOOP)) {
		while (n < len && u->rx_count < uart_fifo_cap(u))
			uart_rx_put(u, buf[n++]);
		uart_update_irq(u);
	}
	pthread_mutex_unlock(&u->lock);
	return n;
}

size_t uart_rx_space(struct uart *u)
{
	size_t n;

	pthread_mutex_lock(&u->lock);
	n = (u->mcr & UART_MCR_LOOP) ? 0 : uart_fifo_cap(u) - u->rx_count;
	pthread_mutex_unlock(&u->lock);
	return n;
}
