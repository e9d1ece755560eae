#ifndef TGUEST_LIB_SERIAL_H
#define TGUEST_LIB_SERIAL_H

void serial_init(void);
void serial_putc(char c);

#endif
