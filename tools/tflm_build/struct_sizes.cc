// Compiled to assembly only (e.g. for thumb-freestanding-eabi -mcpu=cortex_m7): the array below holds
// sizeof and alignof of each struct of struct_sizes.h, in order, as .long values.
#include "struct_sizes.h"

extern "C" const unsigned tflm_struct_sizes[] = {TFLM_STRUCTS(TFLM_SIZE_VALUE) 0u};
