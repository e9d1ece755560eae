/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * 16550A UART (COM1). Transmit is instantaneous (the byte goes to the backend on the THR
 * write), receive goes through a 16-byte FIFO fed by uart_rx_push() from an I/O thread.
 * The IRQ line is asserted when an enabled interrupt is pending and MCR.OUT2 is set (PC wiring).
 */
#ifndef VIRIDIAN_DEVICES_UART_H
#define VIRIDIAN_DEVICES_UART_H

#include "devices/dev.h"
#include "vid/iobus.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define UART_FIFO_SIZE 16

struct uart_backend {
	/* Bytes the guest transmitted. */
	void (*tx)(void *opaque, const uint8_t *buf, size_t len);
	void *opaque;
};

struct uart {
	pthread_mutex_t lock;
	struct dev_irq irq;
	struct uart_backend backend;
	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm;
	bool thre_pending; /* THR-empty interrupt pending until IIR read or THR write */
	bool irq_level;
	uint8_t rx[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;
};

void uart_init(struct uart *u, const struct dev_irq *irq, const struct uart_backend *backend);
void uart_destroy(struct uart *u);
/* Registers 8 ports at base. */
int uart_register(struct uart *u, struct iobus *pio, uint16_t base);
/* Queues received bytes; returns how many fit (the rest: try again later). */
size_t uart_rx_push(struct uart *u, const uint8_t *buf, size_t len);
size_t uart_rx_space(struct uart *u);
/* The bus handler, exposed for tests (offset 0..7). */
iobus_handler_fn uart_io;

/* Register offsets and bits (16550A data sheet). */
#define UART_RBR 0
#define UART_THR 0
#define UART_DLL 0
#define UART_IER 1
#define UART_DLM 1
#define UART_IIR 2
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_RDI 0x01
#define UART_IER_THRI 0x02
#define UART_IER_RLSI 0x04
#define UART_IER_MSI 0x08
#define UART_IIR_NO_INT 0x01
#define UART_IIR_MSI 0x00
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_RLSI 0x06
#define UART_IIR_FIFO 0xc0
#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_FCR_CLEAR_TX 0x04
#define UART_LCR_DLAB 0x80
#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

#endif
