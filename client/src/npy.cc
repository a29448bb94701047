#include "cgelu/client/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace cgelu::client {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

// Value of `key` in the header dict, e.g. for 'descr': "'<f4'". The header is a Python dict
// literal with keys 'descr', 'fortran_order' and 'shape' written by numpy.
absl::StatusOr<absl::string_view> DictValue(absl::string_view header, absl::string_view key) {
  const std::string quoted = absl::StrCat("'", key, "'");
  size_t pos = header.find(quoted);
  if (pos == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("npy header has no ", quoted));
  }
  pos = header.find(':', pos + quoted.size());
  if (pos == absl::string_view::npos) return absl::InvalidArgumentError("malformed npy header");
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(header.substr(pos + 1));
  size_t end;
  if (!rest.empty() && rest[0] == '(') {
    end = rest.find(')');
    if (end == absl::string_view::npos) return absl::InvalidArgumentError("malformed npy shape");
    ++end;
  } else if (!rest.empty() && (rest[0] == '\'' || rest[0] == '"')) {
    end = rest.find(rest[0], 1);
    if (end == absl::string_view::npos) return absl::InvalidArgumentError("malformed npy header");
    ++end;
  } else {
    end = rest.find_first_of(",}");
    if (end == absl::string_view::npos) return absl::InvalidArgumentError("malformed npy header");
  }
  return absl::StripAsciiWhitespace(rest.substr(0, end));
}

absl::StatusOr<std::string> DatatypeFromDescr(absl::string_view descr) {
  descr = absl::StripPrefix(absl::StripSuffix(descr, "'"), "'");
  if (descr == "<f4") return std::string("FP32");
  if (descr == "<f8") return std::string("FP64");
  if (descr == "<f2") return std::string("FP16");
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported npy dtype '", descr,
                   "': cgelu reads little-endian float32 (<f4), float64 (<f8) and float16 (<f2)"));
}

absl::StatusOr<std::string> DescrFromDatatype(const std::string& datatype) {
  if (datatype == "FP32") return std::string("<f4");
  if (datatype == "FP64") return std::string("<f8");
  if (datatype == "FP16") return std::string("<f2");
  return absl::InvalidArgumentError(
      absl::StrCat("cannot write datatype ", datatype, " to .npy (FP32, FP64, FP16 only)"));
}

uint32_t ReadLittleEndian(const std::string& bytes, size_t offset, size_t width) {
  uint32_t value = 0;
  for (size_t i = 0; i < width; ++i) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

}  // namespace

absl::StatusOr<Tensor> ParseNpy(const std::string& bytes) {
  if (bytes.size() < kMagicSize + 4 || bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0) {
    return absl::InvalidArgumentError("not a .npy file (bad magic)");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len_width;
  if (major == 1) {
    header_len_width = 2;
  } else if (major == 2 || major == 3) {
    header_len_width = 4;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unsupported .npy format version ", major));
  }
  const size_t header_start = 8 + header_len_width;
  if (bytes.size() < header_start) return absl::InvalidArgumentError("truncated .npy header");
  const size_t header_len = ReadLittleEndian(bytes, 8, header_len_width);
  if (bytes.size() < header_start + header_len) {
    return absl::InvalidArgumentError("truncated .npy header");
  }
  const absl::string_view header(bytes.data() + header_start, header_len);

  auto descr = DictValue(header, "descr");
  if (!descr.ok()) return descr.status();
  auto datatype = DatatypeFromDescr(*descr);
  if (!datatype.ok()) return datatype.status();
  auto fortran = DictValue(header, "fortran_order");
  if (!fortran.ok()) return fortran.status();
  if (*fortran != "False") {
    return absl::InvalidArgumentError("Fortran-ordered .npy arrays are not supported");
  }
  auto shape_text = DictValue(header, "shape");
  if (!shape_text.ok()) return shape_text.status();

  Tensor tensor;
  tensor.datatype = *std::move(datatype);
  absl::string_view inner = absl::StripSuffix(absl::StripPrefix(*shape_text, "("), ")");
  for (absl::string_view part : absl::StrSplit(inner, ',', absl::SkipWhitespace())) {
    int64_t dim;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &dim) || dim < 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad .npy shape ", *shape_text));
    }
    tensor.shape.push_back(dim);
  }
  const size_t element_size = DatatypeSize(tensor.datatype);
  size_t expected = element_size;
  for (int64_t d : tensor.shape) {
    if (d != 0 && expected > SIZE_MAX / static_cast<size_t>(d)) {
      return absl::InvalidArgumentError(absl::StrCat(".npy shape ", *shape_text, " is too large"));
    }
    expected *= static_cast<size_t>(d);
  }
  const size_t data_start = header_start + header_len;
  if (bytes.size() - data_start != expected) {
    return absl::InvalidArgumentError(absl::StrCat(".npy data holds ", bytes.size() - data_start,
                                                   " bytes, shape ", *shape_text, " needs ",
                                                   expected));
  }
  tensor.data = bytes.substr(data_start);
  return tensor;
}

absl::StatusOr<Tensor> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  auto tensor = ParseNpy(contents.str());
  if (!tensor.ok()) {
    return absl::Status(tensor.status().code(),
                        absl::StrCat(path, ": ", tensor.status().message()));
  }
  return tensor;
}

std::string SerializeNpy(const Tensor& tensor) {
  std::string shape = "(";
  for (int64_t d : tensor.shape) absl::StrAppend(&shape, d, ",");
  if (tensor.shape.size() > 1) shape.pop_back();
  shape += ")";
  auto descr = DescrFromDatatype(tensor.datatype);
  std::string header = absl::StrCat("{'descr': '", descr.ok() ? *descr : "|u1",
                                    "', 'fortran_order': False, 'shape': ", shape, ", }");
  // Pad with spaces so the data starts on a 64-byte boundary, ending the header with '\n'.
  const size_t unpadded = kMagicSize + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out(kMagic, kMagicSize);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  out += tensor.data;
  return out;
}

absl::Status WriteNpy(const std::string& path, const Tensor& tensor) {
  if (auto descr = DescrFromDatatype(tensor.datatype); !descr.ok()) return descr.status();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  const std::string bytes = SerializeNpy(tensor);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("writing ", path, " failed"));
  return absl::OkStatus();
}

}  // namespace cgelu::client
