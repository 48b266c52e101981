// The device names our configs accept, checked without LibTorch (config validation stays
// torch-free): "cpu", "cuda" (the current CUDA device) and "cuda:N". model/runtime.h turns a
// name into a LibTorch device and checks that this build and machine have it.
#ifndef FASTDISS_BASE_DEVICE_NAME_H_
#define FASTDISS_BASE_DEVICE_NAME_H_

#include <string>

namespace fastdiss {

bool IsDeviceName(const std::string& name);

}  // namespace fastdiss

#endif  // FASTDISS_BASE_DEVICE_NAME_H_
