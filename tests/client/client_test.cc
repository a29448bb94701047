// The client library on its own: .npy round trips and malformed files, request building, response
// parsing of malformed answers, channel option errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "cgelu/client/client.h"
#include "cgelu/client/npy.h"

namespace cgelu::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string NpyHeader(const std::string& dict) {
  std::string header = dict;
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  return out + header;
}

TEST(Npy, RoundTripsEveryFloatType) {
  for (const auto& [datatype, width] : {std::pair{"FP32", 4}, {"FP64", 8}, {"FP16", 2}}) {
    Tensor t{datatype, {2, 3}, std::string(6 * static_cast<size_t>(width), '\x07')};
    auto parsed = ParseNpy(SerializeNpy(t));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->datatype, datatype);
    EXPECT_THAT(parsed->shape, ElementsAre(2, 3));
    EXPECT_EQ(parsed->data, t.data);
  }
}

TEST(Npy, ScalarAndEmptyShapes) {
  Tensor scalar{"FP32", {}, std::string(4, '\0')};
  auto parsed = ParseNpy(SerializeNpy(scalar));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->shape.empty());
  EXPECT_EQ(parsed->num_elements(), 1);
  Tensor empty{"FP32", {0, 5}, ""};
  parsed = ParseNpy(SerializeNpy(empty));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->shape, ElementsAre(0, 5));
  Tensor one{"FP64", {3}, std::string(24, '\0')};
  EXPECT_NE(SerializeNpy(one).find("(3,)"), std::string::npos) << "numpy's 1-tuple syntax";
}

TEST(Npy, ReadsWhatNumpyWrites) {
  // np.save of np.array([1.5, -2], dtype=np.float32), as numpy 1.24 writes it.
  std::string file = NpyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }");
  const float values[2] = {1.5f, -2.0f};
  file.append(reinterpret_cast<const char*>(values), sizeof(values));
  auto parsed = ParseNpy(file);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  float back[2];
  std::memcpy(back, parsed->data.data(), sizeof(back));
  EXPECT_EQ(back[0], 1.5f);
  EXPECT_EQ(back[1], -2.0f);
}

TEST(Npy, RejectsWhatItCannotRead) {
  EXPECT_THAT(ParseNpy("hello").status().message(), HasSubstr("bad magic"));
  auto big_endian = ParseNpy(NpyHeader("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }") +
                             std::string(4, '\0'));
  EXPECT_THAT(big_endian.status().message(), HasSubstr(">f4"));
  auto ints = ParseNpy(NpyHeader("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }") +
                       std::string(8, '\0'));
  EXPECT_THAT(ints.status().message(), HasSubstr("<i8"));
  auto fortran = ParseNpy(NpyHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }") +
                          std::string(4, '\0'));
  EXPECT_THAT(fortran.status().message(), HasSubstr("Fortran"));
  auto truncated = ParseNpy(NpyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }") +
                            std::string(8, '\0'));
  EXPECT_THAT(truncated.status().message(), HasSubstr("needs 12"));
  auto huge = ParseNpy(NpyHeader("{'descr': '<f4', 'fortran_order': False, "
                                 "'shape': (4611686018427387904, 8), }"));
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadNpy("/nonexistent/x.npy").status().code(), absl::StatusCode::kNotFound);
}

TEST(Npy, WriteRefusesTypesNumpyCannotHold) {
  Tensor bf16{"BF16", {1}, std::string(2, '\0')};
  EXPECT_EQ(WriteNpy(::testing::TempDir() + "/bf16.npy", bf16).code(),
            absl::StatusCode::kInvalidArgument);
  Tensor fp32{"FP32", {1}, std::string(4, '\0')};
  EXPECT_EQ(WriteNpy("/nonexistent-dir/x.npy", fp32).code(), absl::StatusCode::kPermissionDenied);
  const std::string path = ::testing::TempDir() + "/fp32.npy";
  ASSERT_TRUE(WriteNpy(path, fp32).ok());
  auto back = ReadNpy(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->data, fp32.data);
}

TEST(Request, CarriesTensorParametersAndId) {
  Tensor t{"FP16", {4}, std::string(8, '\x01')};
  InferOptions options;
  options.request_id = "abc";
  options.min = -1;
  options.max = 2;
  options.approximate = "tanh";
  inference::ModelInferRequest request;
  BuildInferRequest(t, options, &request);
  EXPECT_EQ(request.model_name(), "clipped_gelu");
  EXPECT_EQ(request.id(), "abc");
  ASSERT_EQ(request.inputs_size(), 1);
  EXPECT_EQ(request.inputs(0).datatype(), "FP16");
  EXPECT_THAT(request.inputs(0).shape(), ElementsAre(4));
  EXPECT_EQ(request.raw_input_contents(0), t.data);
  EXPECT_EQ(request.parameters().at("min").double_param(), -1);
  EXPECT_EQ(request.parameters().at("max").double_param(), 2);
  EXPECT_EQ(request.parameters().at("approximate").string_param(), "tanh");

  inference::ModelInferRequest plain;
  BuildInferRequest(t, {}, &plain);
  EXPECT_TRUE(plain.parameters().empty()) << "server defaults apply when nothing is set";
}

TEST(Response, ParsesRawAndTypedOutputs) {
  inference::ModelInferResponse response;
  auto* out = response.add_outputs();
  out->set_datatype("FP32");
  out->add_shape(2);
  out->mutable_contents()->add_fp32_contents(1.0f);
  out->mutable_contents()->add_fp32_contents(2.0f);
  auto typed = ParseInferResponse(response);
  ASSERT_TRUE(typed.ok()) << typed.status();
  EXPECT_EQ(typed->data.size(), 8u);
  response.add_raw_output_contents(std::string(8, '\0'));
  auto raw = ParseInferResponse(response);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->data, std::string(8, '\0'));
}

TEST(Response, MalformedAnswersAreErrorsNotCrashes) {
  inference::ModelInferResponse none;
  EXPECT_EQ(ParseInferResponse(none).status().code(), absl::StatusCode::kInternal);
  inference::ModelInferResponse short_raw;
  auto* out = short_raw.add_outputs();
  out->set_datatype("FP32");
  out->add_shape(3);
  short_raw.add_raw_output_contents(std::string(8, '\0'));
  EXPECT_THAT(std::string(ParseInferResponse(short_raw).status().message()), HasSubstr("need 12"));
  out->set_datatype("STRANGE");
  EXPECT_EQ(ParseInferResponse(short_raw).status().code(), absl::StatusCode::kInternal);
  out->set_datatype("FP32");
  out->set_shape(0, -3);
  EXPECT_EQ(ParseInferResponse(short_raw).status().code(), absl::StatusCode::kInternal);
}

TEST(Channel, OptionErrors) {
  EXPECT_EQ(MakeChannel({.target = ""}).status().code(), absl::StatusCode::kInvalidArgument);
  ChannelOptions tls;
  tls.tls.enabled = true;
  tls.tls.root_certs_path = "/nonexistent/ca.pem";
  EXPECT_EQ(MakeChannel(tls).status().code(), absl::StatusCode::kInvalidArgument);
  ChannelOptions half_mtls;
  half_mtls.tls.enabled = true;
  half_mtls.tls.client_cert_path = "/etc/hostname";
  EXPECT_THAT(MakeChannel(half_mtls).status().message(), HasSubstr("both"));
  EXPECT_TRUE(MakeChannel({.target = "127.0.0.1:1"}).ok()) << "channels connect lazily";
}

TEST(Datatype, Sizes) {
  EXPECT_EQ(DatatypeSize("FP32"), 4u);
  EXPECT_EQ(DatatypeSize("BF16"), 2u);
  EXPECT_EQ(DatatypeSize("FP64"), 8u);
  EXPECT_EQ(DatatypeSize("BYTES"), 0u);
  EXPECT_EQ(DatatypeSize("nonsense"), 0u);
}

}  // namespace
}  // namespace cgelu::client
