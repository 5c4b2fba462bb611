// Package all registers every checkpoint format (convert.Register orders
// detection: formats with a distinctive magic first, generic ones after).
package all

import (
	_ "ckpt2csv/convert/gguf"
	_ "ckpt2csv/convert/keras"
	_ "ckpt2csv/convert/numpy"
	_ "ckpt2csv/convert/onnx"
	_ "ckpt2csv/convert/pytorch"
	_ "ckpt2csv/convert/safetensors"
	_ "ckpt2csv/convert/sklearn"
	_ "ckpt2csv/convert/tfckpt"
)
