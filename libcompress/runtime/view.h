// Conversion of model tensor views into runtime tensors.
#pragma once

#include <string>

#include "modelpress/runtime.h"

namespace modelpress::runtime {

// Borrows `v`'s bytes when they are packed and aligned, else copies;
// float16/bfloat16 become float32. Unsupported for types the executor does
// not compute with; `where` names the tensor in messages.
Result<Tensor> TensorFromView(const TensorView& v, const std::string& where);

}  // namespace modelpress::runtime
