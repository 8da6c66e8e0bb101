/* index.c: being written. */
#include "internal.h"
