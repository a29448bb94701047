// The one place internal errors become gRPC statuses. absl and gRPC share the canonical code
// numbering, so the code carries over unchanged and the message travels as written.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace cgelu::server {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace cgelu::server
