/* COM1 16550 UART, polled: 115200 baud, 8N1, FIFO enabled. */
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86.h"
#include "lib/serial.h"

#define COM1 0x3f8
#define UART_THR 0
#define UART_DLL 0
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_LSR_THRE 0x20

static bool serial_present;

void serial_init(void)
{
	outb(COM1 + UART_IER, 0x00);
	outb(COM1 + UART_LCR, 0x80); /* DLAB to reach the divisor */
	outb(COM1 + UART_DLL, 1); /* 115200 = 1.8432 MHz / 16 / 1 */
	outb(COM1 + UART_DLM, 0);
	outb(COM1 + UART_LCR, 0x03); /* 8N1 */
	outb(COM1 + UART_FCR, 0x07); /* FIFO on, clear both */
	outb(COM1 + UART_MCR, 0x03); /* DTR, RTS */
	/* A floating bus reads 0xff: then skip the THRE wait instead of spinning. */
	serial_present = inb(COM1 + UART_LSR) != 0xff;
}

void serial_putc(char c)
{
	if (c == '\n')
		serial_putc('\r');
	/* Bounded: an emulated UART is always ready, a real one within ~90 us. */
	for (int i = 0; serial_present && i < 100000; i++)
		if (inb(COM1 + UART_LSR) & UART_LSR_THRE)
			break;
	outb(COM1 + UART_THR, (uint8_t)c);
}
