// Byte copies into and out of a memory whose rows are stored `stride` bytes apart, each row
// little-endian (byte `i` of a row at byte `i` of its storage): the DDR backdoor of every
// compiled model.

#include <cstdint>
#include <cstring>

inline void copy_rows(uint8_t *base, uint64_t row_bytes, uint64_t stride, uint64_t offset,
                      uint8_t *buffer, uint64_t size, bool write) {
	if (row_bytes == stride) {
		if (write)
			memcpy(base + offset, buffer, size);
		else
			memcpy(buffer, base + offset, size);
		return;
	}
	for (uint64_t i = 0; i < size; i++) {
		uint8_t *byte = base + (offset + i) / row_bytes * stride + (offset + i) % row_bytes;
		if (write)
			*byte = buffer[i];
		else
			buffer[i] = *byte;
	}
}
