/* model-internal.h: being written. */
