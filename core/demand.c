/* demand.c: being written. */
#include "internal.h"
