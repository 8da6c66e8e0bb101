/* inventory.c: being written. */
#include "internal.h"
