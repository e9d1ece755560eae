/* Hosted stand-in for guest/lib/printf.h. */
#include <stdio.h>
