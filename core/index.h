/* index.h: being written. */
