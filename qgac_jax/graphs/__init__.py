"""The network as ONNX graphs for ONNX Runtime: the float32 conversion and its cache (`onnx_graph`), and the int8
graph quantized with the ranges an int8 fine-tune learned (`int8_graph`)."""
