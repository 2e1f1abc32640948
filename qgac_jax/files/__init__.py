"""Photo files in and out: decoding with the file's quantization (`images`), colour profile, EXIF and XMP
(`metadata`), 16-bit PNGs, files written whole (`atomic_files`), which inputs a run has and where each output goes."""
