// AVX2 + FMA + F16C implementation of the clipped GELU kernel: 8 fp32 lanes, each one the exact
// operation sequence of kernel_scalar.cc (see formula.h). A partial fp32 vector uses masked loads
// and stores (vmaskmovps), so the tail runs the same code as the body; AVX2 has no 16-bit masked
// load, so a partial fp16/bf16 vector is copied into a zero-padded block and run through the same
// vector code. Compiled with -mavx2 -mfma -mf16c and -ffp-contract=off; only ClippedGeluAvx2 has
// external linkage.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "formula.h"
#include "kernel_isa.h"

namespace cgelu::kernels::internal {
namespace {

__m256 Set(float v) { return _mm256_set1_ps(v); }
__m256d SetD(double v) { return _mm256_set1_pd(v); }

// The biased exponent v * 2^n would have (v normal, n an integer): below 1 the product is
// subnormal (or zero).
__m256i ScaledBiasedExponent(__m256 v, __m256i n) {
  return _mm256_add_epi32(
      _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(v), 23), _mm256_set1_epi32(0xff)), n);
}

// A result below 2^-126 produced by a floating-point instruction costs a microcode assist on
// Intel cores (~100x an ordinary instruction). For lanes where v * 2^n is subnormal
// (biased_exponent < 1), this computes it with integer instructions instead: round to nearest
// even of the exact v * 2^n, the value the two-step multiply below and the scalar
// ScaleByPowerOfTwo produce, so results stay bit-identical (kernel_avx512.cc does the same).
__m256 RoundToSubnormal(__m256 v, __m256i biased_exponent) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i one = _mm256_set1_epi32(1);
  // The significand (with its leading 1) is shifted right so its units become 2^-149; beyond 25
  // places every significand rounds to 0, and 25 keeps the shifts below 32.
  const __m256i shift =
      _mm256_min_epi32(_mm256_sub_epi32(one, biased_exponent), _mm256_set1_epi32(25));
  const __m256i significand = _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffff)),
                                              _mm256_set1_epi32(0x800000));
  const __m256i kept = _mm256_srlv_epi32(significand, shift);
  const __m256i half = _mm256_sllv_epi32(one, _mm256_sub_epi32(shift, one));
  const __m256i rest =
      _mm256_and_si256(significand, _mm256_sub_epi32(_mm256_sllv_epi32(one, shift), one));
  // Both operands are below 2^25, so the signed compares are exact.
  const __m256i kept_odd = _mm256_cmpeq_epi32(_mm256_and_si256(kept, one), one);
  const __m256i round_up =
      _mm256_or_si256(_mm256_cmpgt_epi32(rest, half),
                      _mm256_and_si256(_mm256_cmpeq_epi32(rest, half), kept_odd));
  const __m256i magnitude = _mm256_sub_epi32(kept, round_up);  // round_up is 0 or -1
  const __m256i sign = _mm256_and_si256(bits, _mm256_set1_epi32(static_cast<int>(0x80000000u)));
  return _mm256_castsi256_ps(_mm256_or_si256(magnitude, sign));
}

// Inlined so the unrolled loops below can interleave independent vectors: the formula is one long
// dependency chain, and the out-of-order window alone does not hide it.
[[gnu::always_inline]] inline __m256 GeluErf(__m256 x) {
  const __m256 a = _mm256_min_ps(
      _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))), Set(kAMax));
  const __m256 half_a = _mm256_mul_ps(a, Set(-0.5f));
  const __m256 r2 = _mm256_div_ps(Set(2.0f), _mm256_add_ps(a, Set(2.0f)));
  __m256 q = _mm256_mul_ps(_mm256_fmadd_ps(a, Set(0.5f), Set(-1.0f)), r2);
  const __m256 q_residual =
      _mm256_fmsub_ps(q, half_a, _mm256_add_ps(_mm256_add_ps(q, Set(1.0f)), half_a));
  q = _mm256_fmadd_ps(r2, q_residual, q);
  __m256 h = Set(kH[kHDegree]);
  for (int j = kHDegree - 1; j >= 0; --j) h = _mm256_fmadd_ps(h, q, Set(kH[j]));
  const __m256 f0 = _mm256_mul_ps(h, r2);
  const __m256 f_residual = _mm256_fmadd_ps(f0, half_a, _mm256_sub_ps(h, f0));
  const __m256 u = _mm256_mul_ps(a, half_a);
  const __m256 u_lo = _mm256_fmsub_ps(a, half_a, u);
  const __m256 shifted = _mm256_fmadd_ps(u, Set(kLog2e), Set(kRoundMagic));
  const __m256 n = _mm256_sub_ps(shifted, Set(kRoundMagic));
  const __m256i n_int =
      _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(Set(kRoundMagic)));
  __m256 t = _mm256_fmadd_ps(n, Set(-kLn2Hi), u);
  t = _mm256_fmadd_ps(n, Set(-kLn2Lo), t);
  t = _mm256_add_ps(t, u_lo);
  __m256 p = Set(kExpP[kExpDegree]);
  for (int j = kExpDegree - 1; j >= 0; --j) p = _mm256_fmadd_ps(p, t, Set(kExpP[j]));
  const __m256 s =
      _mm256_add_ps(f0, _mm256_fmadd_ps(f0, _mm256_mul_ps(t, p), _mm256_mul_ps(f_residual, r2)));
  // Every lane computes both forms, so each one's exponent is replaced where its value is not used
  // (or, for the x >= 0 form, where it does not matter) to keep every intermediate normal: an
  // underflowing instruction costs a microcode assist (scenario S15).
  const auto scale_by_power_of_two = [](__m256 v, __m256i exponent) {
    const __m256 scale = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(exponent, _mm256_set1_epi32(kScaleBias + 127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(v, scale), Set(kScaleDown));
  };
  const __m256 y_positive = _mm256_fnmadd_ps(
      a, scale_by_power_of_two(s, _mm256_max_epi32(n_int, _mm256_set1_epi32(kPositiveMinExponent))),
      x);
  const __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 zero = _mm256_cmp_ps(x, Set(-kZeroA), _CMP_LE_OQ);
  const __m256 live = _mm256_andnot_ps(zero, negative);
  const __m256 scaled = _mm256_fnmsub_ps(a, s, _mm256_setzero_ps());
  __m256i exponent = _mm256_and_si256(n_int, _mm256_castps_si256(live));
  __m256 y_negative;
  const __m256 maybe_subnormal =
      _mm256_and_ps(live, _mm256_cmp_ps(a, Set(kSubnormalBelowA), _CMP_GT_OQ));
  if (_mm256_movemask_ps(maybe_subnormal) != 0) [[unlikely]] {
    const __m256i biased_exponent = ScaledBiasedExponent(scaled, n_int);
    const __m256i subnormal = _mm256_and_si256(
        _mm256_castps_si256(maybe_subnormal), _mm256_cmpgt_epi32(_mm256_set1_epi32(1), biased_exponent));
    // Those lanes take the integer result; their multiply runs with exponent 0 (no underflow).
    exponent = _mm256_andnot_si256(subnormal, exponent);
    y_negative = _mm256_blendv_ps(scale_by_power_of_two(scaled, exponent),
                                  RoundToSubnormal(scaled, biased_exponent),
                                  _mm256_castsi256_ps(subnormal));
  } else {
    y_negative = scale_by_power_of_two(scaled, exponent);
  }
  const __m256 y = _mm256_blendv_ps(y_positive, y_negative, negative);
  return _mm256_blendv_ps(y, Set(-0.0f), zero);
}

__m256d ExpD(__m256d z) {
  const __m256d shifted = _mm256_fmadd_pd(z, SetD(kLog2eD), SetD(kRoundMagicD));
  const __m256d n = _mm256_sub_pd(shifted, SetD(kRoundMagicD));
  const __m256i n_int =
      _mm256_sub_epi64(_mm256_castpd_si256(shifted), _mm256_castpd_si256(SetD(kRoundMagicD)));
  __m256d t = _mm256_fmadd_pd(n, SetD(-kLn2HiD), z);
  t = _mm256_fmadd_pd(n, SetD(-kLn2LoD), t);
  __m256d p = SetD(kExpD[kExpDDegree]);
  for (int j = kExpDDegree - 1; j >= 0; --j) p = _mm256_fmadd_pd(p, t, SetD(kExpD[j]));
  const __m256d scale =
      _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(n_int, _mm256_set1_epi64x(1023)), 52));
  return _mm256_mul_pd(p, scale);
}

__m128 GeluTanhHalf(__m128 x) {
  const __m256d x_low = _mm256_max_pd(SetD(-kTanhXMax), _mm256_cvtps_pd(x));
  const __m256d x_exp = _mm256_min_pd(x_low, SetD(kTanhXMax));
  const __m256d z = _mm256_mul_pd(
      x_exp, _mm256_fmadd_pd(_mm256_mul_pd(x_exp, x_exp), SetD(kTanhK2), SetD(kTanhK1)));
  return _mm256_cvtpd_ps(_mm256_div_pd(x_low, _mm256_add_pd(SetD(1.0), ExpD(z))));
}

__m256 GeluTanh(__m256 x) {
  const __m128 low = GeluTanhHalf(_mm256_castps256_ps128(x));
  const __m128 high = GeluTanhHalf(_mm256_extractf128_ps(x, 1));
  return _mm256_insertf128_ps(_mm256_castps128_ps256(low), high, 1);
}

struct Bounds {
  __m256 lo;
  __m256 hi;
};

// torch.clamp's max(y, lo), then min(., hi). A NaN y comes out as the same NaN (max/min return
// their second operand when unordered), as in kernel_scalar.cc.
[[gnu::always_inline]] inline __m256 Clip(__m256 y, const Bounds& bounds) {
  return _mm256_min_ps(bounds.hi, _mm256_max_ps(bounds.lo, y));
}

// gelu, then clip. A NaN x comes out as the same NaN, quieted, as in kernel_scalar.cc.
template <Approximate kApproximate>
[[gnu::always_inline]] inline __m256 ClippedGelu(__m256 x, const Bounds& bounds) {
  return Clip(kApproximate == Approximate::kTanh ? GeluTanh(x) : GeluErf(x), bounds);
}

// 16-bit types: the fp32 GELU of each input comes from its Gelu16Table entry (one gather), then
// the fp32 clip and one rounding; NaN inputs are passed through with the quiet bit set.
[[gnu::always_inline]] inline __m256 LookUpAndClip(__m128i patterns, const float* gelu,
                                                   const Bounds& bounds) {
  return Clip(_mm256_i32gather_ps(gelu, _mm256_cvtepu16_epi32(patterns), sizeof(float)), bounds);
}

[[gnu::always_inline]] inline __m128i ClippedGeluFp16(__m128i h, const float* gelu,
                                                      const Bounds& bounds) {
  const __m128i out = _mm256_cvtps_ph(LookUpAndClip(h, gelu, bounds),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m128i nan =
      _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(0x7c00));
  return _mm_blendv_epi8(out, _mm_or_si128(h, _mm_set1_epi16(kF16QuietBit)), nan);
}

[[gnu::always_inline]] inline __m128i ClippedGeluBf16(__m128i b, const float* gelu,
                                                      const Bounds& bounds) {
  const __m256i bits = _mm256_castps_si256(LookUpAndClip(b, gelu, bounds));
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), odd), 16);
  const __m128i out =
      _mm_packus_epi32(_mm256_castsi256_si128(rounded), _mm256_extracti128_si256(rounded, 1));
  const __m128i nan =
      _mm_cmpgt_epi16(_mm_and_si128(b, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(0x7f80));
  return _mm_blendv_epi8(out, _mm_or_si128(b, _mm_set1_epi16(kBF16QuietBit)), nan);
}

constexpr size_t kLanes = 8;

template <Approximate kApproximate>
void RunFp32(const Segment& segment, size_t begin, size_t end, const Bounds& bounds) {
  const float* in = static_cast<const float*>(segment.input);
  float* out = static_cast<float*>(segment.output);
  size_t i = begin;
  for (; i + 4 * kLanes <= end; i += 4 * kLanes) {
    const __m256 y0 = ClippedGelu<kApproximate>(_mm256_loadu_ps(in + i), bounds);
    const __m256 y1 = ClippedGelu<kApproximate>(_mm256_loadu_ps(in + i + kLanes), bounds);
    const __m256 y2 = ClippedGelu<kApproximate>(_mm256_loadu_ps(in + i + 2 * kLanes), bounds);
    const __m256 y3 = ClippedGelu<kApproximate>(_mm256_loadu_ps(in + i + 3 * kLanes), bounds);
    _mm256_storeu_ps(out + i, y0);
    _mm256_storeu_ps(out + i + kLanes, y1);
    _mm256_storeu_ps(out + i + 2 * kLanes, y2);
    _mm256_storeu_ps(out + i + 3 * kLanes, y3);
  }
  for (; i + kLanes <= end; i += kLanes) {
    _mm256_storeu_ps(out + i, ClippedGelu<kApproximate>(_mm256_loadu_ps(in + i), bounds));
  }
  if (i < end) {
    // Lanes at or past `end` load as 0 and are not stored.
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(end - i)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(out + i, mask,
                        ClippedGelu<kApproximate>(_mm256_maskload_ps(in + i, mask), bounds));
  }
}

template <bool kBf16>
void Run16(const Segment& segment, size_t begin, size_t end, const Bounds& bounds) {
  const uint16_t* in = static_cast<const uint16_t*>(segment.input);
  uint16_t* out = static_cast<uint16_t*>(segment.output);
  const float* gelu = Gelu16Table(segment.dtype, segment.params.approximate);
  const auto compute = [&](__m128i v) {
    return kBf16 ? ClippedGeluBf16(v, gelu, bounds) : ClippedGeluFp16(v, gelu, bounds);
  };
  const auto load = [&](size_t at) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + at));
  };
  const auto store = [&](size_t at, __m128i v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + at), v);
  };
  size_t i = begin;
  // Unrolled 4x like RunFp32, so four independent gathers are in flight.
  for (; i + 4 * kLanes <= end; i += 4 * kLanes) {
    const __m128i y0 = compute(load(i));
    const __m128i y1 = compute(load(i + kLanes));
    const __m128i y2 = compute(load(i + 2 * kLanes));
    const __m128i y3 = compute(load(i + 3 * kLanes));
    store(i, y0);
    store(i + kLanes, y1);
    store(i + 2 * kLanes, y2);
    store(i + 3 * kLanes, y3);
  }
  for (; i + kLanes <= end; i += kLanes) store(i, compute(load(i)));
  if (i < end) {
    uint16_t block[kLanes] = {};
    std::memcpy(block, in + i, (end - i) * sizeof(uint16_t));
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(block), compute(v));
    std::memcpy(out + i, block, (end - i) * sizeof(uint16_t));
  }
}

template <Approximate kApproximate>
void RunSegment(const Segment& segment, size_t begin, size_t end) {
  const Bounds bounds{Set(static_cast<float>(segment.params.min)),
                      Set(static_cast<float>(segment.params.max))};
  switch (segment.dtype) {
    case DType::kFP32:
      RunFp32<kApproximate>(segment, begin, end, bounds);
      return;
    case DType::kFP16:
      Run16<false>(segment, begin, end, bounds);
      return;
    case DType::kBF16:
      Run16<true>(segment, begin, end, bounds);
      return;
    case DType::kFP64:
      ClippedGeluScalar(segment, begin, end);
      return;
  }
}

}  // namespace

void ClippedGeluAvx2(const Segment& segment, size_t begin, size_t end) {
  if (segment.params.approximate == Approximate::kTanh) {
    RunSegment<Approximate::kTanh>(segment, begin, end);
  } else {
    RunSegment<Approximate::kNone>(segment, begin, end);
  }
}

}  // namespace cgelu::kernels::internal
