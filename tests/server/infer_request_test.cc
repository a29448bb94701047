// PrepareInfer: every way a request can be wrong gets a clear error before any allocation, and a
// good one becomes a segment pointing into the request and response without copies.
#include "server/infer_request.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

namespace cgelu::server {
namespace {

using ::testing::HasSubstr;

inference::ModelInferRequest Fp32Request(std::vector<int64_t> shape, size_t raw_bytes) {
  inference::ModelInferRequest request;
  request.set_model_name("clipped_gelu");
  request.set_id("req-1");
  auto* input = request.add_inputs();
  input->set_name("INPUT0");
  input->set_datatype("FP32");
  for (int64_t d : shape) input->add_shape(d);
  request.add_raw_input_contents(std::string(raw_bytes, '\0'));
  return request;
}

absl::Status Prepare(const inference::ModelInferRequest& request) {
  inference::ModelInferResponse response;
  return PrepareInfer(ModelSpec{}, request, &response).status();
}

TEST(PrepareInfer, S5WrongByteCountNamesInputExpectedAndReceived) {
  absl::Status status = Prepare(Fp32Request({2, 3}, 20));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'INPUT0'"));
  EXPECT_THAT(status.message(), HasSubstr("24 bytes"));
  EXPECT_THAT(status.message(), HasSubstr("received 20"));
}

TEST(PrepareInfer, S6TypedAndRawContentsTogetherIsInvalid) {
  auto request = Fp32Request({2}, 8);
  request.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1.0f);
  request.mutable_inputs(0)->mutable_contents()->add_fp32_contents(2.0f);
  absl::Status status = Prepare(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("raw_input_contents"));
}

TEST(PrepareInfer, S7MinAboveMaxUsesTheModulesMessage) {
  auto request = Fp32Request({1}, 4);
  (*request.mutable_parameters())["min"].set_int64_param(2);
  (*request.mutable_parameters())["max"].set_int64_param(1);
  absl::Status status = Prepare(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("min should be < max (got min: 2, max: 1)"));
}

TEST(PrepareInfer, S11UnknownModelIsNotFound) {
  auto request = Fp32Request({1}, 4);
  request.set_model_name("resnet50");
  EXPECT_EQ(Prepare(request).code(), absl::StatusCode::kNotFound);
  request.set_model_name("clipped_gelu");
  request.set_model_version("7");
  EXPECT_EQ(Prepare(request).code(), absl::StatusCode::kNotFound);
  request.set_model_version("1");
  EXPECT_TRUE(Prepare(request).ok());
}

TEST(PrepareInfer, S11Int32IsInvalid) {
  auto request = Fp32Request({1}, 4);
  request.mutable_inputs(0)->set_datatype("INT32");
  absl::Status status = Prepare(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("INT32"));
}

TEST(PrepareInfer, S11NegativeDimensionIsInvalid) {
  absl::Status status = Prepare(Fp32Request({2, -3}, 0));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("negative"));
}

TEST(PrepareInfer, S11OverflowingShapeIsInvalidWithoutAllocating) {
  const int64_t big = int64_t{1} << 40;
  absl::Status status = Prepare(Fp32Request({big, big}, 4));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("int64"));
  // Fits int64 in elements but not in bytes.
  status = Prepare(Fp32Request({std::numeric_limits<int64_t>::max() / 2}, 4));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  // Fits in bytes but the payload is tiny: refused by the byte check, before the output is sized.
  inference::ModelInferResponse response;
  status = PrepareInfer(ModelSpec{}, Fp32Request({int64_t{1} << 50}, 4), &response).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(response.raw_output_contents_size(), 0);
}

TEST(PrepareInfer, S13ZeroDimensionMakesAnyShapeEmpty) {
  // The product of the other dimensions overflows int64, but a tensor with a 0 dimension holds no
  // elements: it is empty, not too large.
  const int64_t big = int64_t{1} << 40;
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{big, big, 0}, {0, big, big}, {big, 0, big},
        {std::numeric_limits<int64_t>::max(), 0}}) {
    inference::ModelInferResponse response;
    auto prepared = PrepareInfer(ModelSpec{}, Fp32Request(shape, 0), &response);
    ASSERT_TRUE(prepared.ok()) << prepared.status();
    EXPECT_EQ(prepared->segment.count, 0u);
    EXPECT_EQ(prepared->bytes, 0u);
    EXPECT_EQ(response.outputs(0).shape_size(), static_cast<int>(shape.size()));
    EXPECT_EQ(response.raw_output_contents(0).size(), 0u);
  }
  // Bytes are still checked against the empty tensor.
  EXPECT_EQ(Prepare(Fp32Request({big, big, 0}, 4)).code(), absl::StatusCode::kInvalidArgument);
  // A negative dimension is refused even beside a zero one.
  absl::Status negative = Prepare(Fp32Request({0, -1}, 0));
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(negative.message(), HasSubstr("negative"));
  negative = Prepare(Fp32Request({big, big, -1, 0}, 0));
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(negative.message(), HasSubstr("negative"));
}

TEST(PrepareInfer, S13EmptyAndScalarShapes) {
  inference::ModelInferResponse empty_response;
  auto empty = PrepareInfer(ModelSpec{}, Fp32Request({0}, 0), &empty_response);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->segment.count, 0u);
  EXPECT_EQ(empty_response.raw_output_contents(0).size(), 0u);

  inference::ModelInferResponse scalar_response;
  auto scalar = PrepareInfer(ModelSpec{}, Fp32Request({}, 4), &scalar_response);
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(scalar->segment.count, 1u);
  EXPECT_EQ(scalar_response.outputs(0).shape_size(), 0);
  EXPECT_EQ(scalar_response.raw_output_contents(0).size(), 4u);
}

TEST(PrepareInfer, GoodRequestPointsIntoRequestAndResponse) {
  auto request = Fp32Request({2, 2}, 16);
  (*request.mutable_parameters())["min"].set_double_param(-0.5);
  (*request.mutable_parameters())["max"].set_uint64_param(10);
  (*request.mutable_parameters())["approximate"].set_string_param("tanh");
  (*request.mutable_parameters())["priority"].set_uint64_param(1);  // passed over, as Triton does
  inference::ModelInferResponse response;
  auto prepared = PrepareInfer(ModelSpec{}, request, &response);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(prepared->segment.input, request.raw_input_contents(0).data());
  EXPECT_EQ(prepared->segment.output, response.raw_output_contents(0).data());
  EXPECT_EQ(prepared->segment.count, 4u);
  EXPECT_EQ(prepared->segment.params.min, -0.5);
  EXPECT_EQ(prepared->segment.params.max, 10.0);
  EXPECT_EQ(prepared->segment.params.approximate, kernels::Approximate::kTanh);
  EXPECT_EQ(response.model_name(), "clipped_gelu");
  EXPECT_EQ(response.id(), "req-1");
  EXPECT_EQ(response.outputs(0).name(), "OUTPUT0");
  EXPECT_EQ(response.outputs(0).datatype(), "FP32");
  EXPECT_THAT(response.outputs(0).shape(), ::testing::ElementsAre(2, 2));
  EXPECT_FALSE(prepared->queue_timeout_us.has_value());
}

TEST(PrepareInfer, DefaultsComeFromTheModel) {
  ModelSpec model;
  model.defaults = {.min = -10, .max = 10, .approximate = kernels::Approximate::kNone};
  inference::ModelInferResponse response;
  auto prepared = PrepareInfer(model, Fp32Request({1}, 4), &response);
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(prepared->segment.params.min, -10);
  EXPECT_EQ(prepared->segment.params.max, 10);
}

TEST(PrepareInfer, TypedFp32AndFp64Contents) {
  inference::ModelInferRequest request;
  request.set_model_name("clipped_gelu");
  auto* input = request.add_inputs();
  input->set_name("x");
  input->set_datatype("FP64");
  input->add_shape(3);
  for (double v : {1.0, 2.0, 3.0}) input->mutable_contents()->add_fp64_contents(v);
  inference::ModelInferResponse response;
  auto prepared = PrepareInfer(ModelSpec{}, request, &response);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(prepared->segment.dtype, kernels::DType::kFP64);
  EXPECT_EQ(prepared->segment.input, input->contents().fp64_contents().data());
  EXPECT_EQ(response.raw_output_contents(0).size(), 24u);

  input->mutable_contents()->add_fp64_contents(4.0);
  absl::Status status = Prepare(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("needs 3 values"));
}

TEST(PrepareInfer, HalfTypesOnlyTravelRaw) {
  inference::ModelInferRequest request;
  request.set_model_name("clipped_gelu");
  auto* input = request.add_inputs();
  input->set_name("x");
  input->set_datatype("BF16");
  input->add_shape(2);
  absl::Status status = Prepare(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("raw_input_contents"));
  request.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_TRUE(Prepare(request).ok());
}

TEST(PrepareInfer, ParameterTypesAndValues) {
  auto request = Fp32Request({1}, 4);
  (*request.mutable_parameters())["min"].set_string_param("low");
  EXPECT_THAT(Prepare(request).message(), HasSubstr("'min' must be a double or an integer"));
  request = Fp32Request({1}, 4);
  (*request.mutable_parameters())["approximate"].set_string_param("sigmoid");
  EXPECT_EQ(Prepare(request).code(), absl::StatusCode::kInvalidArgument);
  request = Fp32Request({1}, 4);
  (*request.mutable_parameters())["max"].set_double_param(std::nan(""));
  EXPECT_EQ(Prepare(request).code(), absl::StatusCode::kInvalidArgument);
  request = Fp32Request({1}, 4);
  (*request.mutable_parameters())["min"].set_double_param(1.5);
  (*request.mutable_parameters())["max"].set_double_param(1.5);
  EXPECT_TRUE(Prepare(request).ok()) << "min == max is allowed";
  request = Fp32Request({1}, 4);
  (*request.mutable_parameters())["timeout"].set_int64_param(-1);
  EXPECT_EQ(Prepare(request).code(), absl::StatusCode::kInvalidArgument);
  request = Fp32Request({1}, 4);
  (*request.mutable_parameters())["timeout"].set_int64_param(2500);
  inference::ModelInferResponse response;
  auto prepared = PrepareInfer(ModelSpec{}, request, &response);
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(prepared->queue_timeout_us, 2500);
}

TEST(PrepareInfer, InputAndOutputCounts) {
  auto request = Fp32Request({1}, 4);
  *request.add_inputs() = request.inputs(0);
  request.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_THAT(Prepare(request).message(), HasSubstr("exactly 1 input"));

  request = Fp32Request({1}, 4);
  request.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_THAT(Prepare(request).message(), HasSubstr("one per input"));

  request = Fp32Request({1}, 4);
  request.add_outputs()->set_name("probabilities");
  EXPECT_THAT(Prepare(request).message(), HasSubstr("'probabilities'"));
  request.mutable_outputs(0)->set_name("OUTPUT0");
  EXPECT_TRUE(Prepare(request).ok());
}

}  // namespace
}  // namespace cgelu::server
