/* engine.c: being written. */
#include "internal.h"
