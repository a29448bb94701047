// High-precision references for the clipped GELU kernel, shared by tests/kernels and
// cgelu-ulp-sweep. Independent of the kernel's own formula: x87 long double (64-bit significand)
// with the C library's erfcl / expl.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

namespace cgelu::reference {

// gelu(x) = 0.5 x erfc(-x / sqrt(2)) in long double; -inf -> -0, +inf -> +inf, NaN -> NaN.
long double GeluErf(long double x);
// gelu(x) in double for fast exhaustive sweeps: erfc(t) with t = -x/sqrt(2) carried as hi + lo and
// the first-order correction erfc(t + lo) = erfc(t) - lo * 2/sqrt(pi) * exp(-t^2), so the far tail
// keeps ~1e-15 relative accuracy (the fp32 result is correctly rounded barring ties that close).
double GeluErfDouble(double x);
// The tanh form without its cancellation: x / (1 + exp(-2u)), u = sqrt(2/pi)(x + 0.044715 x^3),
// in long double. Mathematically equal to 0.5 x (1 + tanh(u)).
long double GeluTanh(long double x);
// The contract's fp32 tanh reference: 0.5 x (1 + tanh(u)) evaluated in float64, as written.
double GeluTanhFormulaFp64(double x);
// torch.clamp: max(y, lo) then min(., hi); NaN stays NaN.
long double Clip(long double y, long double lo, long double hi);

// Distance in units in the last place between two values of the same type; +0 and -0 are equal.
// Either argument NaN: 0 if both are NaN, otherwise UINT64_MAX.
uint64_t UlpDistance(float a, float b);
uint64_t UlpDistance(double a, double b);
// The same for 16-bit encodings (FP16 or BF16 bit patterns; `bf16` selects the NaN test).
uint64_t UlpDistance16(uint16_t a, uint16_t b, bool bf16);

// IEEE binary16 <-> float (exact widening; round-to-nearest-even narrowing of a float).
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
// bfloat16 <-> float.
float BFloat16ToFloat(uint16_t b);
uint16_t FloatToBFloat16(float f);

}  // namespace cgelu::reference
