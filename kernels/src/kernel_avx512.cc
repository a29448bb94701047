// AVX-512 implementation of the clipped GELU kernel: 16 fp32 lanes, each one the exact operation
// sequence of kernel_scalar.cc (see formula.h). Partial vectors use masked loads and stores, so
// tails run the same code as the body. Compiled with -mavx512f/bw/vl/dq -mfma -mf16c and
// -ffp-contract=off; only ClippedGeluAvx512 has external linkage.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "formula.h"
#include "kernel_isa.h"

namespace cgelu::kernels::internal {
namespace {

__m512 Set(float v) { return _mm512_set1_ps(v); }
__m512d SetD(double v) { return _mm512_set1_pd(v); }

// A result below 2^-126 produced by a floating-point instruction costs a microcode assist on
// Intel cores (~100x an ordinary instruction). For the lanes of `candidates` where v * 2^n is
// subnormal (v normal, n an integer-valued float), these two functions compute it with integer
// instructions instead: round to nearest even of the exact v * 2^n, the value vscalefps and the
// scalar ScaleByPowerOfTwo produce, so results stay bit-identical.
__mmask16 SubnormalLanes(__mmask16 candidates, __m512 v, __m512 n) {
  const __m512i biased_exponent = _mm512_add_epi32(
      _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(v), 23), _mm512_set1_epi32(0xff)),
      _mm512_cvtps_epi32(n));
  return _mm512_mask_cmplt_epi32_mask(candidates, biased_exponent, _mm512_set1_epi32(1));
}

__m512 RoundToSubnormal(__m512 v, __m512 n) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i biased_exponent =
      _mm512_add_epi32(_mm512_and_si512(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(0xff)),
                       _mm512_cvtps_epi32(n));
  // The significand (with its leading 1) is shifted right so its units become 2^-149; beyond 25
  // places every significand rounds to 0, and 25 keeps the shifts below 32.
  const __m512i shift = _mm512_min_epi32(_mm512_sub_epi32(_mm512_set1_epi32(1), biased_exponent),
                                         _mm512_set1_epi32(25));
  const __m512i significand = _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffff)),
                                              _mm512_set1_epi32(0x800000));
  const __m512i kept = _mm512_srlv_epi32(significand, shift);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i half = _mm512_sllv_epi32(one, _mm512_sub_epi32(shift, one));
  const __m512i rest =
      _mm512_and_si512(significand, _mm512_sub_epi32(_mm512_sllv_epi32(one, shift), one));
  const __mmask16 round_up =
      _kor_mask16(_mm512_cmpgt_epu32_mask(rest, half),
                  _mm512_mask_test_epi32_mask(_mm512_cmpeq_epi32_mask(rest, half), kept, one));
  const __m512i magnitude = _mm512_mask_add_epi32(kept, round_up, kept, one);
  const __m512i sign = _mm512_and_si512(bits, _mm512_set1_epi32(static_cast<int>(0x80000000u)));
  return _mm512_castsi512_ps(_mm512_or_si512(magnitude, sign));
}

// Inlined so the unrolled loops below can interleave independent vectors: the formula is one long
// dependency chain (~130 cycles), and the out-of-order window alone does not hide it.
[[gnu::always_inline]] inline __m512 GeluErf(__m512 x) {
  const __m512 a = _mm512_min_ps(_mm512_abs_ps(x), Set(kAMax));
  const __m512 half_a = _mm512_mul_ps(a, Set(-0.5f));
  const __m512 r2 = _mm512_div_ps(Set(2.0f), _mm512_add_ps(a, Set(2.0f)));
  __m512 q = _mm512_mul_ps(_mm512_fmadd_ps(a, Set(0.5f), Set(-1.0f)), r2);
  const __m512 q_residual =
      _mm512_fmsub_ps(q, half_a, _mm512_add_ps(_mm512_add_ps(q, Set(1.0f)), half_a));
  q = _mm512_fmadd_ps(r2, q_residual, q);
  __m512 h = Set(kH[kHDegree]);
  for (int j = kHDegree - 1; j >= 0; --j) h = _mm512_fmadd_ps(h, q, Set(kH[j]));
  const __m512 f0 = _mm512_mul_ps(h, r2);
  const __m512 f_residual = _mm512_fmadd_ps(f0, half_a, _mm512_sub_ps(h, f0));
  const __m512 u = _mm512_mul_ps(a, half_a);
  const __m512 u_lo = _mm512_fmsub_ps(a, half_a, u);
  const __m512 shifted = _mm512_fmadd_ps(u, Set(kLog2e), Set(kRoundMagic));
  const __m512 n = _mm512_sub_ps(shifted, Set(kRoundMagic));
  __m512 t = _mm512_fmadd_ps(n, Set(-kLn2Hi), u);
  t = _mm512_fmadd_ps(n, Set(-kLn2Lo), t);
  t = _mm512_add_ps(t, u_lo);
  __m512 p = Set(kExpP[kExpDegree]);
  for (int j = kExpDegree - 1; j >= 0; --j) p = _mm512_fmadd_ps(p, t, Set(kExpP[j]));
  const __m512 s =
      _mm512_add_ps(f0, _mm512_fmadd_ps(f0, _mm512_mul_ps(t, p), _mm512_mul_ps(f_residual, r2)));
  // vscalefps rounds v * 2^n once, the value of kernel_scalar.cc's ScaleByPowerOfTwo. The x >= 0
  // form is computed everywhere, then replaced by the x < 0 form where -kZeroA < x < 0 (masked, so
  // the other lanes never underflow) and by -0 where x <= -kZeroA.
  const __m512 y_positive =
      _mm512_fnmadd_ps(a, _mm512_scalef_ps(s, _mm512_max_ps(n, Set(kPositiveMinExponent))), x);
  const __mmask16 zero = _mm512_cmp_ps_mask(x, Set(-kZeroA), _CMP_LE_OQ);
  __mmask16 negative = _kandn_mask16(zero, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ));
  const __m512 scaled = _mm512_fnmsub_ps(a, s, _mm512_setzero_ps());
  __m512 y = _mm512_mask_mov_ps(y_positive, zero, Set(-0.0f));
  const __mmask16 maybe_subnormal =
      _kand_mask16(negative, _mm512_cmp_ps_mask(a, Set(kSubnormalBelowA), _CMP_GT_OQ));
  if (maybe_subnormal != 0) [[unlikely]] {
    const __mmask16 subnormal = SubnormalLanes(maybe_subnormal, scaled, n);
    y = _mm512_mask_mov_ps(y, subnormal, RoundToSubnormal(scaled, n));
    negative = _kandn_mask16(subnormal, negative);
  }
  return _mm512_mask_scalef_ps(y, negative, scaled, n);
}

__m512d ExpD(__m512d z) {
  const __m512d shifted = _mm512_fmadd_pd(z, SetD(kLog2eD), SetD(kRoundMagicD));
  const __m512d n = _mm512_sub_pd(shifted, SetD(kRoundMagicD));
  const __m512i n_int =
      _mm512_sub_epi64(_mm512_castpd_si512(shifted), _mm512_castpd_si512(SetD(kRoundMagicD)));
  __m512d t = _mm512_fmadd_pd(n, SetD(-kLn2HiD), z);
  t = _mm512_fmadd_pd(n, SetD(-kLn2LoD), t);
  __m512d p = SetD(kExpD[kExpDDegree]);
  for (int j = kExpDDegree - 1; j >= 0; --j) p = _mm512_fmadd_pd(p, t, SetD(kExpD[j]));
  const __m512d scale =
      _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(n_int, _mm512_set1_epi64(1023)), 52));
  return _mm512_mul_pd(p, scale);
}

__m256 GeluTanhHalf(__m256 x) {
  const __m512d x_low = _mm512_max_pd(SetD(-kTanhXMax), _mm512_cvtps_pd(x));
  const __m512d x_exp = _mm512_min_pd(x_low, SetD(kTanhXMax));
  const __m512d z = _mm512_mul_pd(
      x_exp, _mm512_fmadd_pd(_mm512_mul_pd(x_exp, x_exp), SetD(kTanhK2), SetD(kTanhK1)));
  return _mm512_cvtpd_ps(_mm512_div_pd(x_low, _mm512_add_pd(SetD(1.0), ExpD(z))));
}

__m512 GeluTanh(__m512 x) {
  const __m256 low = GeluTanhHalf(_mm512_castps512_ps256(x));
  const __m256 high =
      GeluTanhHalf(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
  return _mm512_insertf32x8(_mm512_castps256_ps512(low), high, 1);
}

struct Bounds {
  __m512 lo;
  __m512 hi;
};

// torch.clamp's max(y, lo), then min(., hi). A NaN y comes out as the same NaN (max/min return
// their second operand when unordered), as in kernel_scalar.cc.
[[gnu::always_inline]] inline __m512 Clip(__m512 y, const Bounds& bounds) {
  return _mm512_min_ps(bounds.hi, _mm512_max_ps(bounds.lo, y));
}

// gelu, then clip. A NaN x comes out as the same NaN, quieted, as in kernel_scalar.cc.
template <Approximate kApproximate>
[[gnu::always_inline]] inline __m512 ClippedGelu(__m512 x, const Bounds& bounds) {
  return Clip(kApproximate == Approximate::kTanh ? GeluTanh(x) : GeluErf(x), bounds);
}

// 16-bit types: the fp32 GELU of each input comes from its Gelu16Table entry (one gather), then
// the fp32 clip and one rounding; NaN inputs are passed through with the quiet bit set.
[[gnu::always_inline]] inline __m512 LookUpAndClip(__m256i patterns, const float* gelu,
                                                   const Bounds& bounds) {
  return Clip(_mm512_i32gather_ps(_mm512_cvtepu16_epi32(patterns), gelu, sizeof(float)), bounds);
}

[[gnu::always_inline]] inline __m256i ClippedGeluFp16(__m256i h, const float* gelu,
                                                      const Bounds& bounds) {
  const __m256i out = _mm512_cvtps_ph(LookUpAndClip(h, gelu, bounds),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __mmask16 nan = _mm256_cmpgt_epi16_mask(_mm256_and_si256(h, _mm256_set1_epi16(0x7fff)),
                                                _mm256_set1_epi16(0x7c00));
  return _mm256_mask_mov_epi16(out, nan, _mm256_or_si256(h, _mm256_set1_epi16(kF16QuietBit)));
}

[[gnu::always_inline]] inline __m256i ClippedGeluBf16(__m256i b, const float* gelu,
                                                      const Bounds& bounds) {
  const __m512i bits = _mm512_castps_si512(LookUpAndClip(b, gelu, bounds));
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), odd), 16);
  const __m256i out = _mm512_cvtepi32_epi16(rounded);
  const __mmask16 nan = _mm256_cmpgt_epi16_mask(_mm256_and_si256(b, _mm256_set1_epi16(0x7fff)),
                                                _mm256_set1_epi16(0x7f80));
  return _mm256_mask_mov_epi16(out, nan, _mm256_or_si256(b, _mm256_set1_epi16(kBF16QuietBit)));
}

constexpr size_t kLanes = 16;

__mmask16 TailMask(size_t remaining) { return static_cast<__mmask16>((1u << remaining) - 1u); }

template <Approximate kApproximate>
void RunFp32(const Segment& segment, size_t begin, size_t end, const Bounds& bounds) {
  const float* in = static_cast<const float*>(segment.input);
  float* out = static_cast<float*>(segment.output);
  size_t i = begin;
  for (; i + 4 * kLanes <= end; i += 4 * kLanes) {
    const __m512 y0 = ClippedGelu<kApproximate>(_mm512_loadu_ps(in + i), bounds);
    const __m512 y1 = ClippedGelu<kApproximate>(_mm512_loadu_ps(in + i + kLanes), bounds);
    const __m512 y2 = ClippedGelu<kApproximate>(_mm512_loadu_ps(in + i + 2 * kLanes), bounds);
    const __m512 y3 = ClippedGelu<kApproximate>(_mm512_loadu_ps(in + i + 3 * kLanes), bounds);
    _mm512_storeu_ps(out + i, y0);
    _mm512_storeu_ps(out + i + kLanes, y1);
    _mm512_storeu_ps(out + i + 2 * kLanes, y2);
    _mm512_storeu_ps(out + i + 3 * kLanes, y3);
  }
  for (; i + kLanes <= end; i += kLanes) {
    _mm512_storeu_ps(out + i, ClippedGelu<kApproximate>(_mm512_loadu_ps(in + i), bounds));
  }
  if (i < end) {
    const __mmask16 mask = TailMask(end - i);
    const __m512 x = _mm512_maskz_loadu_ps(mask, in + i);
    _mm512_mask_storeu_ps(out + i, mask, ClippedGelu<kApproximate>(x, bounds));
  }
}

template <bool kBf16>
void Run16(const Segment& segment, size_t begin, size_t end, const Bounds& bounds) {
  const uint16_t* in = static_cast<const uint16_t*>(segment.input);
  uint16_t* out = static_cast<uint16_t*>(segment.output);
  const float* gelu = Gelu16Table(segment.dtype, segment.params.approximate);
  const auto compute = [&](__m256i v) {
    return kBf16 ? ClippedGeluBf16(v, gelu, bounds) : ClippedGeluFp16(v, gelu, bounds);
  };
  const auto load = [&](size_t at) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + at));
  };
  const auto store = [&](size_t at, __m256i v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + at), v);
  };
  size_t i = begin;
  // Unrolled 4x like RunFp32, so four independent gathers are in flight.
  for (; i + 4 * kLanes <= end; i += 4 * kLanes) {
    const __m256i y0 = compute(load(i));
    const __m256i y1 = compute(load(i + kLanes));
    const __m256i y2 = compute(load(i + 2 * kLanes));
    const __m256i y3 = compute(load(i + 3 * kLanes));
    store(i, y0);
    store(i + kLanes, y1);
    store(i + 2 * kLanes, y2);
    store(i + 3 * kLanes, y3);
  }
  for (; i + kLanes <= end; i += kLanes) store(i, compute(load(i)));
  if (i < end) {
    const __mmask16 mask = TailMask(end - i);
    const __m256i v = _mm256_maskz_loadu_epi16(mask, in + i);
    _mm256_mask_storeu_epi16(out + i, mask, compute(v));
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

void ClippedGeluAvx512(const Segment& segment, size_t begin, size_t end) {
  if (segment.params.approximate == Approximate::kTanh) {
    RunSegment<Approximate::kTanh>(segment, begin, end);
  } else {
    RunSegment<Approximate::kNone>(segment, begin, end);
  }
}

}  // namespace cgelu::kernels::internal
