// cgelu::ClippedGELUActivation against LibTorch's clamp(gelu(x)) and against the contract's cases.
// Torch is an oracle only where it is accurate (numerics.md): fp32/fp64 within
// |a - b| <= 1e-5 + 1.3e-6 |b|, fp16/bf16 within one ULP of the 16-bit type of torch's fp32
// result for x >= -3. Special inputs and the far negative tail are checked against our own
// documented values, never torch's.
#include "cgelu/torch/clipped_gelu_module.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "cgelu/kernels/clipped_gelu.h"

namespace cgelu {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

torch::Tensor TorchClippedGelu(const torch::Tensor& x, double min, double max,
                               const std::string& approximate) {
  return torch::clamp(torch::gelu(x, approximate), min, max);
}

// Finite inputs covering the negative tail, GELU's minimum, zero and the positive side, plus
// NaN (which torch and cgelu agree on).
torch::Tensor OracleInputs(double lowest) {
  torch::manual_seed(20240611);
  const torch::Tensor grid = torch::linspace(lowest, 20.0, 4001, torch::kDouble);
  const torch::Tensor normal = torch::randn({20000}, torch::kDouble) * 4.0;
  return torch::cat({grid, normal.clamp_min(lowest), torch::tensor({kNaN}, torch::kDouble)});
}

// Counts elements where `ours` and `reference` disagree by more than `tolerance` (same shape,
// float64); NaN must meet NaN. Reports the first few disagreements.
void ExpectClose(const torch::Tensor& x, const torch::Tensor& ours, const torch::Tensor& reference,
                 const torch::Tensor& tolerance) {
  const torch::Tensor a = ours.to(torch::kDouble).flatten();
  const torch::Tensor b = reference.to(torch::kDouble).flatten();
  const torch::Tensor ok =
      ((a - b).abs() <= tolerance.flatten()) | (torch::isnan(a) & torch::isnan(b));
  const torch::Tensor bad = torch::nonzero(~ok).flatten();
  ASSERT_EQ(bad.numel(), 0) << bad.numel() << " mismatches; first at x="
                            << x.to(torch::kDouble).flatten()[bad[0]].item<double>()
                            << ": ours=" << a[bad[0]].item<double>()
                            << " torch=" << b[bad[0]].item<double>();
}

// One ULP of the 16-bit type at |value| (the spacing above the value's binade floor).
double Ulp16(double value, torch::Dtype dtype) {
  const int mantissa_bits = dtype == torch::kHalf ? 10 : 7;
  const int min_exponent = dtype == torch::kHalf ? -14 : -126;
  const int exponent = value == 0.0 ? min_exponent : std::max(std::ilogb(value), min_exponent);
  return std::ldexp(1.0, exponent - mantissa_bits);
}

const std::vector<std::pair<double, double>> kBounds = {
    {-3.0, 3.0}, {-10.0, 10.0}, {-kInf, kInf}, {-0.1, 2.0}, {0.5, 0.5}};

struct ModuleCase {
  torch::Dtype dtype;
  std::string approximate;
};

void PrintTo(const ModuleCase& c, std::ostream* stream) {
  *stream << c10::toString(c.dtype) << "/" << c.approximate;
}

std::string CaseName(const testing::TestParamInfo<ModuleCase>& info) {
  return std::string(c10::toString(info.param.dtype)) + "_" + info.param.approximate;
}

bool Is16Bit(torch::Dtype dtype) { return dtype == torch::kHalf || dtype == torch::kBFloat16; }

class ModuleVsTorchTest : public testing::TestWithParam<ModuleCase> {
 protected:
  // Checks ours(x) against torch for every bounds pair, x given in the module's dtype.
  void ExpectMatchesTorch(const torch::Tensor& x) {
    for (const auto& [min, max] : kBounds) {
      SCOPED_TRACE(testing::Message() << "bounds [" << min << ", " << max << "]");
      ExpectMatchesTorch(x, min, max);
    }
  }

  void ExpectMatchesTorch(const torch::Tensor& x, double min, double max) {
    const ModuleCase& c = GetParam();
    const torch::Tensor ours = ClippedGELUActivation(min, max, c.approximate)(x);
    ASSERT_EQ(ours.sizes(), x.sizes());
    ASSERT_EQ(ours.scalar_type(), x.scalar_type());
    if (!Is16Bit(c.dtype)) {
      const torch::Tensor reference = TorchClippedGelu(x, min, max, c.approximate);
      ExpectClose(x, ours, reference, 1e-5 + 1.3e-6 * reference.to(torch::kDouble).abs());
      return;
    }
    const torch::Tensor reference =
        TorchClippedGelu(x.to(torch::kFloat), min, max, c.approximate).to(torch::kDouble);
    std::vector<double> ulps;
    const torch::Tensor flat = reference.flatten().contiguous();
    for (int64_t i = 0; i < flat.numel(); ++i) {
      ulps.push_back(Ulp16(std::abs(flat.data_ptr<double>()[i]), c.dtype));
    }
    ExpectClose(x, ours, reference, torch::tensor(ulps, torch::kDouble).reshape(reference.sizes()));
  }

  // Below -3 torch's fp32 gelu loses the accuracy a 16-bit comparison needs (cancellation in
  // 1 + erf); that range is covered by Fp16AndBf16AreOurFp32RoundedOnce instead.
  double Lowest() const { return Is16Bit(GetParam().dtype) ? -3.0 : -20.0; }
};

TEST_P(ModuleVsTorchTest, MatchesTorchOnFiniteInputs) {
  ExpectMatchesTorch(OracleInputs(Lowest()).to(GetParam().dtype));
}

TEST_P(ModuleVsTorchTest, KeepsShapeAndDtypeForScalarEmptyAndMatrices) {
  torch::manual_seed(7);
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{}, {0}, {7}, {3, 5}, {2, 0, 4}}) {
    SCOPED_TRACE(testing::Message() << "shape " << torch::IntArrayRef(shape));
    ExpectMatchesTorch((torch::rand(shape, torch::kDouble) * 8.0 - 3.0).to(GetParam().dtype));
  }
}

TEST_P(ModuleVsTorchTest, NonContiguousInputGivesTheContiguousResult) {
  torch::manual_seed(11);
  const torch::Tensor base =
      (torch::rand({6, 10}, torch::kDouble) * 8.0 - 3.0).to(GetParam().dtype);
  const std::vector<torch::Tensor> views = {
      base.t(),
      base.slice(/*dim=*/1, /*start=*/1, /*end=*/10, /*step=*/3),
      base.select(/*dim=*/1, /*index=*/4),
      base.slice(0, 0, 1).expand({5, 10}),
      base.reshape({1, 6, 2, 5})
          .contiguous(torch::MemoryFormat::ChannelsLast)
          .permute({0, 3, 1, 2}),
  };
  ClippedGELUActivation module(-0.1, 2.0, GetParam().approximate);
  for (const torch::Tensor& view : views) {
    SCOPED_TRACE(testing::Message()
                 << "view of sizes " << view.sizes() << " strides " << view.strides());
    ASSERT_FALSE(view.is_contiguous());
    const torch::Tensor ours = module(view);
    EXPECT_EQ(ours.sizes(), view.sizes());
    EXPECT_TRUE(ours.is_contiguous());
    EXPECT_TRUE(torch::equal(ours, module(view.contiguous())));
    ExpectMatchesTorch(view);
  }
}

TEST_P(ModuleVsTorchTest, SpecialInputsFollowOurPolicy) {
  const torch::Tensor x = torch::tensor({-kInf, kInf, kNaN, -0.0, 0.0}, torch::kDouble);
  for (const auto& [min, max] : kBounds) {
    SCOPED_TRACE(testing::Message() << "bounds [" << min << ", " << max << "]");
    const torch::Tensor out =
        ClippedGELUActivation(min, max, GetParam().approximate)(x.to(GetParam().dtype))
            .to(torch::kDouble);
    const auto clip = [&](double y) { return std::min(std::max(y, min), max); };
    // gelu(-inf) is -0.0 (torch: NaN); clipping keeps the zero's sign unless a bound replaces it.
    EXPECT_EQ(out[0].item<double>(), clip(-0.0));
    EXPECT_EQ(out[1].item<double>(), clip(kInf));
    EXPECT_TRUE(std::isnan(out[2].item<double>()));
    EXPECT_EQ(out[3].item<double>(), clip(-0.0));
    EXPECT_EQ(out[4].item<double>(), clip(0.0));
    if (min < 0.0 && max > 0.0) {
      EXPECT_TRUE(std::signbit(out[0].item<double>()));
      EXPECT_TRUE(std::signbit(out[3].item<double>()));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllDtypesAndModes, ModuleVsTorchTest,
                         testing::ValuesIn(std::vector<ModuleCase>{{torch::kFloat, "none"},
                                                                   {torch::kFloat, "tanh"},
                                                                   {torch::kDouble, "none"},
                                                                   {torch::kDouble, "tanh"},
                                                                   {torch::kHalf, "none"},
                                                                   {torch::kHalf, "tanh"},
                                                                   {torch::kBFloat16, "none"},
                                                                   {torch::kBFloat16, "tanh"}}),
                         CaseName);

// The kernel computes fp16 and bf16 in fp32 and rounds once, so over the whole range (tail and
// special inputs included) the 16-bit result is exactly our fp32 result rounded to nearest-even.
TEST(ClippedGeluModuleTest, Fp16AndBf16AreOurFp32RoundedOnce) {
  const torch::Tensor x =
      torch::cat({OracleInputs(-70000.0), torch::linspace(-20.0, -3.0, 3000, torch::kDouble),
                  torch::tensor({-kInf, kInf, -0.0, 0.0}, torch::kDouble)});
  for (torch::Dtype dtype : {torch::kHalf, torch::kBFloat16}) {
    for (const std::string approximate : {"none", "tanh"}) {
      for (const auto& [min, max] : kBounds) {
        SCOPED_TRACE(testing::Message() << c10::toString(dtype) << " " << approximate << " [" << min
                                        << ", " << max << "]");
        ClippedGELUActivation module(min, max, approximate);
        const torch::Tensor x16 = x.to(dtype);
        const torch::Tensor ours = module(x16);
        const torch::Tensor via_fp32 = module(x16.to(torch::kFloat)).to(dtype);
        const torch::Tensor same =
            (ours == via_fp32) | (torch::isnan(ours) & torch::isnan(via_fp32));
        EXPECT_TRUE(same.all().item<bool>());
        // The sign of zero survives the rounding too (a -0.0 from the tail stays -0.0).
        EXPECT_TRUE(torch::equal(torch::signbit(ours), torch::signbit(via_fp32)));
      }
    }
  }
}

TEST(ClippedGeluModuleTest, LargeTensorMatchesTorch) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({1000000}) * 6.0;
  const torch::Tensor ours = ClippedGELUActivation(-3.0, 3.0)(x);
  const torch::Tensor reference = TorchClippedGelu(x, -3.0, 3.0, "none");
  ExpectClose(x, ours, reference, 1e-5 + 1.3e-6 * reference.to(torch::kDouble).abs());
}

TEST(ClippedGeluModuleTest, ResultDoesNotDependOnTorchThreadCount) {
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({1000003}) * 6.0;
  ClippedGELUActivation module(-10.0, 10.0, "tanh");
  at::set_num_threads(2);
  const torch::Tensor two_threads = module(x);
  at::set_num_threads(1);
  EXPECT_TRUE(torch::equal(module(x), two_threads));
}

TEST(ClippedGeluModuleTest, Fp64TailKeepsTinyNegativeValues) {
  const std::vector<double> xs = {-6.0, -8.0, -10.0, -20.0, -30.0, -37.0};
  const torch::Tensor out = ClippedGELUActivation(-kInf, kInf)(torch::tensor(xs, torch::kDouble));
  for (size_t i = 0; i < xs.size(); ++i) {
    // x * Phi(x) through erfc, which has no cancellation; torch gives exactly 0 here.
    const long double reference = 0.5L * xs[i] * std::erfc(-xs[i] / std::sqrt(2.0L));
    const double ours = out[static_cast<int64_t>(i)].item<double>();
    EXPECT_LT(ours, 0.0) << "x=" << xs[i];
    EXPECT_NEAR(ours / static_cast<double>(reference), 1.0, 1e-13) << "x=" << xs[i];
  }
}

// Every case of ../shared/cases/clipped_gelu_fp32.tsv through the module in fp32: erf mode within
// 4 ULP, tanh mode within 1e-6 |ref| + 1e-12 (numerics.md). -0.0 and 0.0 compare equal here.
int64_t OrderedBits(float value) {
  int32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return bits >= 0 ? bits : -static_cast<int64_t>(bits & 0x7fffffff);
}

TEST(ClippedGeluModuleTest, ContractCasesInFp32) {
  std::ifstream file(std::string(CGELU_SHARED_DIR) + "/cases/clipped_gelu_fp32.tsv");
  ASSERT_TRUE(file.is_open()) << "cannot open " << CGELU_SHARED_DIR;
  using Key = std::tuple<std::string, double, double>;
  std::map<Key, std::vector<std::pair<float, float>>> groups;
  std::string line;
  int cases = 0;
  while (std::getline(file, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string approximate, min, max, x_decimal, expected_decimal, x_hex, expected_hex;
    fields >> approximate >> min >> max >> x_decimal >> expected_decimal >> x_hex >> expected_hex;
    ASSERT_FALSE(fields.fail()) << line;
    groups[{approximate, std::strtod(min.c_str(), nullptr), std::strtod(max.c_str(), nullptr)}]
        .emplace_back(std::strtof(x_hex.c_str(), nullptr),
                      std::strtof(expected_hex.c_str(), nullptr));
    ++cases;
  }
  ASSERT_GT(cases, 400);
  for (const auto& [key, pairs] : groups) {
    const auto& [approximate, min, max] = key;
    std::vector<float> xs;
    for (const auto& pair : pairs) xs.push_back(pair.first);
    const torch::Tensor out = ClippedGELUActivation(min, max, approximate)(torch::tensor(xs));
    for (size_t i = 0; i < pairs.size(); ++i) {
      const float ours = out.data_ptr<float>()[i];
      const float expected = pairs[i].second;
      SCOPED_TRACE(testing::Message()
                   << approximate << " [" << min << ", " << max << "] x=" << pairs[i].first
                   << " expected=" << expected << " ours=" << ours);
      if (std::isnan(expected)) {
        EXPECT_TRUE(std::isnan(ours));
      } else if (std::isinf(expected)) {
        EXPECT_EQ(ours, expected);
      } else if (approximate == "none") {
        EXPECT_LE(std::abs(OrderedBits(ours) - OrderedBits(expected)), 4);
      } else {
        EXPECT_LE(std::abs(static_cast<double>(ours) - expected),
                  1e-6 * std::abs(static_cast<double>(expected)) + 1e-12);
      }
    }
  }
}

TEST(ClippedGeluModuleTest, RejectsMinAboveMaxWithTheModulesMessage) {
  try {
    ClippedGELUActivation module(2, 1);
    FAIL() << "min > max was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "min should be < max (got min: 2, max: 1)");
  }
}

TEST(ClippedGeluModuleTest, RejectsNanBoundsAsTheKernelDoes) {
  for (const auto& [min, max] :
       std::vector<std::pair<double, double>>{{kNaN, 1.0}, {-1.0, kNaN}, {kNaN, kNaN}}) {
    const absl::Status kernel_status = kernels::ValidateParams(
        {.min = min, .max = max, .approximate = kernels::Approximate::kNone});
    ASSERT_FALSE(kernel_status.ok());
    try {
      ClippedGELUActivation module(min, max);
      FAIL() << "NaN bound accepted: min=" << min << " max=" << max;
    } catch (const std::invalid_argument& error) {
      EXPECT_EQ(error.what(), std::string(kernel_status.message()));
    }
  }
}

TEST(ClippedGeluModuleTest, RejectsUnknownApproximate) {
  EXPECT_THROW(ClippedGELUActivation(-3.0, 3.0, "fast"), std::invalid_argument);
  EXPECT_THROW(ClippedGELUActivation(ClippedGELUActivationOptions(-3.0, 3.0).approximate("Tanh")),
               std::invalid_argument);
}

TEST(ClippedGeluModuleTest, EqualBoundsGiveTheBoundEverywhere) {
  const torch::Tensor out =
      ClippedGELUActivation(0.25, 0.25)(torch::tensor({-kInf, -100.0, -0.5, 0.0, 3.0, kInf}));
  EXPECT_TRUE(torch::equal(out, torch::full({6}, 0.25)));
}

TEST(ClippedGeluModuleTest, InfiniteBoundsArePlainGelu) {
  const torch::Tensor x = torch::linspace(-5.0, 5.0, 101);
  const torch::Tensor out = ClippedGELUActivation(-kInf, kInf)(x);
  const torch::Tensor reference = torch::gelu(x);
  ExpectClose(x, out, reference, 1e-5 + 1.3e-6 * reference.to(torch::kDouble).abs());
}

void ExpectTorchError(const torch::Tensor& input, const std::string& fragment) {
  ClippedGELUActivation module(-3.0, 3.0);
  try {
    module(input);
    FAIL() << "accepted an input that should be rejected (" << fragment << ")";
  } catch (const c10::Error& error) {
    EXPECT_NE(std::string(error.what_without_backtrace()).find(fragment), std::string::npos)
        << error.what_without_backtrace();
  }
}

TEST(ClippedGeluModuleTest, RejectsUnsupportedTensorsWithClearErrors) {
  ExpectTorchError(torch::Tensor(), "undefined");
  ExpectTorchError(torch::empty({3}, torch::TensorOptions().device(torch::kMeta)),
                   "CPU tensors only; got a tensor on meta");
  ExpectTorchError(torch::eye(3).to_sparse(), "got layout Sparse");
  ExpectTorchError(torch::arange(5), "got Long");
  ExpectTorchError(torch::ones({2}, torch::kComplexFloat), "got ComplexFloat");
  ExpectTorchError(torch::ones({2}, torch::kInt8), "got Char");
}

TEST(ClippedGeluModuleTest, InputRequiringGradIsRejectedUnlessGradModeIsOff) {
  const torch::Tensor x = torch::linspace(-2.0, 2.0, 5).requires_grad_();
  ExpectTorchError(x, "inference-only");
  torch::NoGradGuard no_grad;
  const torch::Tensor out = ClippedGELUActivation(-3.0, 3.0)(x);
  EXPECT_FALSE(out.requires_grad());
  EXPECT_TRUE(torch::allclose(out, torch::gelu(x.detach()), 1e-6, 1e-6));
}

TEST(ClippedGeluModuleTest, PrettyPrintShowsTheOptions) {
  std::ostringstream stream;
  ClippedGELUActivation(-3.0, 3.0)->pretty_print(stream);
  EXPECT_EQ(stream.str(), "cgelu::ClippedGELUActivation(min=-3, max=3, approximate=none)");
  stream.str("");
  ClippedGELUActivation(ClippedGELUActivationOptions(-0.5, kInf).approximate("tanh"))
      ->pretty_print(stream);
  EXPECT_EQ(stream.str(), "cgelu::ClippedGELUActivation(min=-0.5, max=inf, approximate=tanh)");
}

TEST(ClippedGeluModuleTest, CloneKeepsTheOptions) {
  ClippedGELUActivation module(-0.1, 2.0, "tanh");
  const auto copy = std::dynamic_pointer_cast<ClippedGELUActivationImpl>(module->clone());
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->options().min(), -0.1);
  EXPECT_EQ(copy->options().max(), 2.0);
  EXPECT_EQ(copy->options().approximate(), "tanh");
  const torch::Tensor x = torch::linspace(-4.0, 4.0, 33);
  EXPECT_TRUE(torch::equal(copy->forward(x), module(x)));
}

TEST(ClippedGeluModuleTest, WorksInsideSequential) {
  torch::manual_seed(13);
  torch::nn::Linear linear(4, 3);
  torch::nn::Sequential model(linear, ClippedGELUActivation(-0.1, 2.0));
  const torch::Tensor x = torch::randn({8, 4}) * 3.0;
  torch::NoGradGuard no_grad;
  const torch::Tensor out = model->forward(x);
  const torch::Tensor reference = TorchClippedGelu(linear(x), -0.1, 2.0, "none");
  ExpectClose(x, out, reference, 1e-5 + 1.3e-6 * reference.to(torch::kDouble).abs());
}

}  // namespace
}  // namespace cgelu
