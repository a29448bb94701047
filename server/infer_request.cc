#include "server/infer_request.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cgelu::server {
namespace {

using inference::InferParameter;

std::string ShapeString(const google::protobuf::RepeatedField<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

absl::StatusOr<double> NumericParameter(const std::string& key, const InferParameter& p) {
  switch (p.parameter_choice_case()) {
    case InferParameter::kDoubleParam:
      return p.double_param();
    case InferParameter::kInt64Param:
      return static_cast<double>(p.int64_param());
    case InferParameter::kUint64Param:
      return static_cast<double>(p.uint64_param());
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("parameter '", key, "' must be a double or an integer"));
  }
}

bool HasTypedContents(const inference::InferTensorContents& c) {
  return c.bool_contents_size() || c.int_contents_size() || c.int64_contents_size() ||
         c.uint_contents_size() || c.uint64_contents_size() || c.fp32_contents_size() ||
         c.fp64_contents_size() || c.bytes_contents_size();
}

// Applies `min`, `max`, `approximate` and `timeout`; other keys are passed over, as Triton passes
// keys it does not interpret to the model.
absl::Status ApplyParameters(const ModelSpec& model, const inference::ModelInferRequest& request,
                             kernels::ClipParams* params, PreparedInfer* prepared) {
  *params = model.defaults;
  for (const auto& [key, value] : request.parameters()) {
    if (key == "min" || key == "max") {
      auto number = NumericParameter(key, value);
      if (!number.ok()) return number.status();
      (key == "min" ? params->min : params->max) = *number;
    } else if (key == "approximate") {
      if (value.parameter_choice_case() != InferParameter::kStringParam) {
        return absl::InvalidArgumentError("parameter 'approximate' must be a string");
      }
      auto mode = kernels::ParseApproximate(value.string_param());
      if (!mode.ok()) return mode.status();
      params->approximate = *mode;
    } else if (key == "timeout") {
      auto number = NumericParameter(key, value);
      if (!number.ok()) return number.status();
      if (!(*number >= 0) || *number > 9.2e18) {
        return absl::InvalidArgumentError("parameter 'timeout' must be microseconds >= 0");
      }
      prepared->queue_timeout_us = static_cast<int64_t>(*number);
    }
  }
  return kernels::ValidateParams(*params);
}

}  // namespace

bool NamesModel(const ModelSpec& model, const inference::ModelInferRequest& request) {
  return request.model_name() == model.name;
}

absl::StatusOr<PreparedInfer> PrepareInfer(const ModelSpec& model,
                                           const inference::ModelInferRequest& request,
                                           inference::ModelInferResponse* response) {
  if (!NamesModel(model, request)) {
    return absl::NotFoundError(absl::StrCat("unknown model '", request.model_name(),
                                            "'; this server serves '", model.name, "'"));
  }
  if (!request.model_version().empty() && request.model_version() != model.version) {
    return absl::NotFoundError(absl::StrCat("model '", model.name, "' has no version '",
                                            request.model_version(), "'; available: '",
                                            model.version, "'"));
  }
  if (request.inputs_size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("model '", model.name,
                                                   "' takes exactly 1 input, the request has ",
                                                   request.inputs_size()));
  }
  const auto& input = request.inputs(0);
  const std::string& input_name = input.name();
  auto dtype = kernels::ParseDType(input.datatype());
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("input '", input_name, "' has datatype '",
                                                   input.datatype(), "'; model '", model.name,
                                                   "' accepts FP32, FP64, FP16 and BF16"));
  }
  const size_t element_size = kernels::ElementSize(*dtype);
  // A zero dimension makes the tensor empty whatever the other dimensions are ([2^40, 2^40, 0]
  // holds nothing), so the product is only formed, with an overflow check, when none is zero.
  bool has_zero_dimension = false;
  for (int64_t dim : input.shape()) {
    if (dim < 0) {
      return absl::InvalidArgumentError(absl::StrCat("input '", input_name, "' has shape ",
                                                     ShapeString(input.shape()),
                                                     " with a negative dimension"));
    }
    has_zero_dimension = has_zero_dimension || dim == 0;
  }
  int64_t count = has_zero_dimension ? 0 : 1;
  if (!has_zero_dimension) {
    for (int64_t dim : input.shape()) {
      if (__builtin_mul_overflow(count, dim, &count)) {
        return absl::InvalidArgumentError(absl::StrCat("input '", input_name, "' shape ",
                                                       ShapeString(input.shape()),
                                                       " has more elements than int64 can count"));
      }
    }
  }
  int64_t bytes;
  if (__builtin_mul_overflow(count, static_cast<int64_t>(element_size), &bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("input '", input_name, "' shape ",
                                                   ShapeString(input.shape()),
                                                   " is larger than any message can carry"));
  }

  const void* data = nullptr;
  if (request.raw_input_contents_size() > 0) {
    for (const auto& any_input : request.inputs()) {
      if (any_input.has_contents() && HasTypedContents(any_input.contents())) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", any_input.name(),
                         "' sets typed contents while the request also uses "
                         "raw_input_contents; send one or the other"));
      }
    }
    if (request.raw_input_contents_size() != request.inputs_size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "raw_input_contents has ", request.raw_input_contents_size(),
          " entries for ", request.inputs_size(), " inputs; the protocol needs one per input"));
    }
    const std::string& raw = request.raw_input_contents(0);
    if (static_cast<int64_t>(raw.size()) != bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", input_name, "' of shape ", ShapeString(input.shape()), " and datatype ",
          input.datatype(), " needs ", bytes, " bytes in raw_input_contents, received ",
          raw.size()));
    }
    data = raw.data();
  } else {
    const auto& contents = input.contents();
    int64_t received = 0;
    if (*dtype == kernels::DType::kFP32) {
      received = contents.fp32_contents_size();
      data = contents.fp32_contents().data();
    } else if (*dtype == kernels::DType::kFP64) {
      received = contents.fp64_contents_size();
      data = contents.fp64_contents().data();
    } else if (count > 0) {
      return absl::InvalidArgumentError(absl::StrCat("input '", input_name, "' is ",
                                                     input.datatype(),
                                                     ", which travels only as raw_input_contents"));
    }
    if (received != count) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", input_name, "' of shape ", ShapeString(input.shape()), " needs ", count,
          " values in contents.", *dtype == kernels::DType::kFP32 ? "fp32" : "fp64",
          "_contents, received ", received));
    }
  }

  if (request.outputs_size() > 1 ||
      (request.outputs_size() == 1 && request.outputs(0).name() != kOutputName)) {
    return absl::InvalidArgumentError(absl::StrCat("model '", model.name,
                                                   "' has one output named '", kOutputName,
                                                   "'; the request asked for ",
                                                   request.outputs_size() == 1
                                                       ? "'" + request.outputs(0).name() + "'"
                                                       : "several outputs"));
  }

  PreparedInfer prepared;
  kernels::ClipParams params;
  if (auto status = ApplyParameters(model, request, &params, &prepared); !status.ok()) {
    return status;
  }

  response->set_model_name(model.name);
  response->set_model_version(model.version);
  response->set_id(request.id());
  auto* output = response->add_outputs();
  output->set_name(kOutputName);
  output->set_datatype(input.datatype());
  *output->mutable_shape() = input.shape();
  std::string* out = response->add_raw_output_contents();
  out->resize(static_cast<size_t>(bytes));

  prepared.bytes = static_cast<size_t>(bytes);
  prepared.segment = kernels::Segment{data, out->data(), static_cast<size_t>(count), *dtype, params};
  return prepared;
}

}  // namespace cgelu::server
