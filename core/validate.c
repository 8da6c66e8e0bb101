/* validate.c: being written. */
#include "internal.h"
