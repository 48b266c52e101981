// The Generate methods take their request as bytes and parse it here, so that a request
// protobuf's parser refuses gets INVALID_ARGUMENT with the reason instead of gRPC's bare
// UNIMPLEMENTED. The case that matters is a string field that is not UTF-8: the standard clients
// of Python, Go and Java cannot send one, but a raw or C++ client can.
#ifndef FASTDISS_SERVER_RAW_REQUEST_H_
#define FASTDISS_SERVER_RAW_REQUEST_H_

#include <grpcpp/support/byte_buffer.h>

#include "absl/status/status.h"
#include "fastdiss/v1/generator.pb.h"
#include "google/protobuf/message.h"

namespace fastdiss {

// Parses `bytes` into `request`; INVALID_ARGUMENT names a field that is not UTF-8, or says the
// bytes are no GenerateRequest at all.
absl::Status ParseGenerateRequest(const grpc::ByteBuffer& bytes,
                                  fastdiss::v1::GenerateRequest* request);

// `message` as the bytes of a gRPC message, replacing what `bytes` held.
absl::Status SerializeToByteBuffer(const google::protobuf::Message& message,
                                   grpc::ByteBuffer* bytes);

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_RAW_REQUEST_H_
