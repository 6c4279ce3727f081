// The compiled side of the CXXRTL machine: every per-cycle loop of a driver request.
//
// Linked with a design made by `write_cxxrtl` and the CXXRTL C API, this file gives Python
// one C call per machine request (an MMIO access, a CPU access of many words, an IRQ wait, N
// ticks, a backdoor copy). The handshakes mirror those of the built-in simulator backend
// (sw/machine/pysim.py) edge for edge, so that both count the same cycles:
//
// * inputs set by a request take effect at once (the design is settled before any read);
// * what a request waits for (a ready, a valid and its payload, an interrupt line) is what
//   the rising edge samples, as with `ctx.tick().sample(...)`;
// * an offered payload is withdrawn after the edge that took it, a ready is dropped after
//   the edge that took a payload, and an interrupt wait returns after the edge that saw it.

#include <cxxrtl/capi/cxxrtl_capi.h>
#include <cxxrtl/capi/cxxrtl_capi_vcd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern "C" cxxrtl_toplevel cxxrtl_design_create();

namespace {

// The ports the driver uses, in the order of the `port_names` given to `machine_create`.
enum PortIndex {
	CLK, CYCLE, IRQ,
	AW_VALID, AW_READY, AW_PAYLOAD,
	W_VALID, W_READY, W_PAYLOAD,
	B_VALID, B_READY, B_PAYLOAD,
	AR_VALID, AR_READY, AR_PAYLOAD,
	R_VALID, R_READY, R_PAYLOAD,
	REQ_VALID, REQ_READY, REQ_PAYLOAD,
	RSP_VALID, RSP_READY, RSP_PAYLOAD,
	PORT_COUNT
};

// Payload fields, as (bit offset, width) pairs in the order of `fields` given to
// `machine_create`.
enum FieldIndex {
	AW_ADDR, AW_PROT, W_DATA, W_STRB, B_RESP,
	AR_ADDR, AR_PROT, R_DATA, R_RESP,
	REQ_ADDR, REQ_WRITE, REQ_DATA, REQ_STRB, REQ_CACHEABLE,
	RSP_DATA, RSP_ERROR,
	FIELD_COUNT
};

struct Field {
	uint32_t offset, width;
};

void put_bit(uint32_t *chunks, uint32_t bit, bool value) {
	uint32_t mask = 1u << (bit % 32);
	if (value)
		chunks[bit / 32] |= mask;
	else
		chunks[bit / 32] &= ~mask;
}

bool get_bit(const uint32_t *chunks, uint32_t bit) {
	return (chunks[bit / 32] >> (bit % 32)) & 1;
}

// Fields of up to 64 bits.
void put_field(uint32_t *chunks, Field field, uint64_t value) {
	for (uint32_t bit = 0; bit < field.width; bit++)
		put_bit(chunks, field.offset + bit, (value >> bit) & 1);
}

uint64_t get_field(const uint32_t *chunks, Field field) {
	uint64_t value = 0;
	for (uint32_t bit = 0; bit < field.width; bit++)
		value |= uint64_t(get_bit(chunks, field.offset + bit)) << bit;
	return value;
}

// Fields of any width, as little-endian bytes.
void put_field_bytes(uint32_t *chunks, Field field, const uint8_t *bytes) {
	for (uint32_t bit = 0; bit < field.width; bit++)
		put_bit(chunks, field.offset + bit, (bytes[bit / 8] >> (bit % 8)) & 1);
}

void get_field_bytes(const uint32_t *chunks, Field field, uint8_t *bytes) {
	memset(bytes, 0, (field.width + 7) / 8);
	for (uint32_t bit = 0; bit < field.width; bit++)
		bytes[bit / 8] |= uint8_t(get_bit(chunks, field.offset + bit)) << (bit % 8);
}

struct Machine {
	cxxrtl_handle top = nullptr;
	cxxrtl_object *port[PORT_COUNT] = {};
	Field field[FIELD_COUNT] = {};
	std::vector<cxxrtl_object *> banks;
	bool dirty = true;            // inputs or state changed since the design last settled
	bool high_committed = false;  // the last commit saw the clock high: the next edge must
	                              // first commit the low level (edge detection needs it)
	uint64_t cycles = 0;          // rising edges so far
	uint64_t half_period = 5;     // VCD time units per clock phase
	cxxrtl_vcd vcd = nullptr;
	FILE *vcd_file = nullptr;
	// The output ports as the last edge sampled them.
	std::vector<uint32_t> sampled[PORT_COUNT];

	const uint32_t *current(PortIndex index) {
		cxxrtl_object *object = port[index];
		if (object->outline)
			cxxrtl_outline_eval(object->outline);
		return object->curr;
	}

	// A port as the design drives it now. A flip-flop's output is up to date after an edge;
	// anything else needs the design settled first.
	const uint32_t *get(PortIndex index) {
		if (!(port[index]->flags & CXXRTL_DRIVEN_SYNC))
			settle();
		return current(index);
	}

	bool get_flag(PortIndex index) {
		return get(index)[0] & 1;
	}

	const uint32_t *at_edge(PortIndex index) const {
		return sampled[index].data();
	}

	bool flag_at_edge(PortIndex index) const {
		return sampled[index][0] & 1;
	}

	void set_flag(PortIndex index, bool value) {
		uint32_t *next = port[index]->next;
		if ((next[0] & 1) != uint32_t(value)) {
			next[0] = (next[0] & ~1u) | uint32_t(value);
			dirty = true;
		}
	}

	uint32_t *payload(PortIndex index) {
		dirty = true;
		return port[index]->next;
	}

	// The clock feeds nothing but the edge detectors: changing its level needs no evaluation.
	void set_clock(bool value) {
		uint32_t *next = port[CLK]->next;
		next[0] = (next[0] & ~1u) | uint32_t(value);
	}

	void commit() {
		cxxrtl_commit(top);
		high_committed = port[CLK]->next[0] & 1;
	}

	// Returns how many evaluations it took (1 for the flattened designs the builder makes).
	size_t settle() {
		if (!dirty)
			return 0;
		size_t deltas = cxxrtl_step(top);
		dirty = false;
		high_committed = port[CLK]->next[0] & 1;
		return deltas;
	}

	void sample_vcd(uint64_t time) {
		if (!vcd)
			return;
		cxxrtl_vcd_sample(vcd, time);
		const char *data;
		size_t size;
		for (;;) {
			cxxrtl_vcd_read(vcd, &data, &size);
			if (!size)
				break;
			fwrite(data, 1, size, vcd_file);
		}
	}

	// One clock cycle, ending with its rising edge; inputs set before it take effect at once.
	//
	// A single evaluation with the clock rising computes, from the state before the edge,
	// every output (what the edge samples: handshakes, payloads, interrupt lines) and the
	// flip-flops' next values, which the commit applies. The outputs are recorded between the
	// two (`at_edge`), so no evaluation is needed to know what the edge took. The clock is
	// lowered before that commit, which also records the low level the next edge rises from:
	// one evaluation and one commit per cycle. The logic behind the flip-flops is evaluated
	// again only when something reads the design (`get`).
	//
	// With a VCD the design is also settled and sampled in each phase, the clock shown.
	void edge() {
		if (vcd) {
			settle();
			sample_vcd(2 * half_period * cycles);
		}
		if (high_committed)
			commit();
		set_clock(true);
		cxxrtl_eval(top);
		for (int index = 0; index < PORT_COUNT; index++) {
			if (!sampled[index].empty())
				memcpy(sampled[index].data(), current(PortIndex(index)),
				       sampled[index].size() * sizeof(uint32_t));
		}
		if (!vcd)
			set_clock(false);
		commit();
		dirty = true;
		cycles++;
		if (vcd) {
			settle();
			sample_vcd(2 * half_period * cycles - half_period);
			set_clock(false);
		}
	}

	void tick(uint64_t count) {
		for (uint64_t i = 0; i < count; i++)
			edge();
	}

	// Offer one payload (already set) on a stream this side drives; withdraw it once taken.
	void put(PortIndex valid, PortIndex ready) {
		set_flag(valid, true);
		do
			edge();
		while (!flag_at_edge(ready));
		set_flag(valid, false);
	}

	// Take one payload from a stream the design drives; copies it to `out` (chunks).
	void take(PortIndex valid, PortIndex ready, PortIndex payload_port, uint32_t *out,
	          size_t chunks) {
		set_flag(ready, true);
		do
			edge();
		while (!flag_at_edge(valid));
		memcpy(out, at_edge(payload_port), chunks * sizeof(uint32_t));
		set_flag(ready, false);
	}

	size_t chunks_of(PortIndex index) const {
		return (port[index]->width + 31) / 32;
	}
};

}  // namespace

extern "C" {

// Returns nullptr and a message in `error` if a port or bank is missing or of the wrong kind.
void *machine_create(const char *const *port_names, const uint32_t *fields,
                     const char *const *bank_names, const uint64_t *bank_rows,
                     uint32_t bank_count, uint32_t row_width, char *error, size_t error_size) {
	Machine *machine = new Machine;
	machine->top = cxxrtl_create(cxxrtl_design_create());
	auto fail = [&](const std::string &message) -> void * {
		snprintf(error, error_size, "%s", message.c_str());
		cxxrtl_destroy(machine->top);
		delete machine;
		return nullptr;
	};
	for (int index = 0; index < PORT_COUNT; index++) {
		cxxrtl_object *object = cxxrtl_get(machine->top, port_names[index]);
		if (!object)
			return fail(std::string("the design has no port '") + port_names[index] + "'");
		bool input = object->flags & CXXRTL_INPUT;
		if ((input && !object->next) || (!input && !(object->flags & CXXRTL_OUTPUT)))
			return fail(std::string("'") + port_names[index] + "' is not a top-level port");
		machine->port[index] = object;
		if (!input)
			machine->sampled[index].resize(machine->chunks_of(PortIndex(index)));
	}
	for (int index = 0; index < FIELD_COUNT; index++)
		machine->field[index] = Field{fields[2 * index], fields[2 * index + 1]};
	for (uint32_t index = 0; index < bank_count; index++) {
		cxxrtl_object *object = cxxrtl_get(machine->top, bank_names[index]);
		if (!object || object->type != CXXRTL_MEMORY || object->width != row_width ||
		    object->depth != bank_rows[index] || object->zero_at != 0)
			return fail(std::string("the design has no memory '") + bank_names[index] +
			            "' of " + std::to_string(bank_rows[index]) + " rows of " +
			            std::to_string(row_width) + " bits");
		machine->banks.push_back(object);
	}
	if (machine->settle() != 1)
		return fail("the design does not settle in one evaluation (combinational feedback "
		            "between its modules): the machine needs it flattened");
	return machine;
}

void machine_destroy(void *handle) {
	Machine *machine = static_cast<Machine *>(handle);
	if (machine->vcd) {
		machine->sample_vcd(2 * machine->half_period * machine->cycles);
		cxxrtl_vcd_destroy(machine->vcd);
		fclose(machine->vcd_file);
	}
	cxxrtl_destroy(machine->top);
	delete machine;
}

// Start writing every signal (not the memories) to the VCD file `path`, `half_period` time
// units of `unit` per clock phase. Returns 0, or -1 if the file cannot be opened.
int machine_vcd_open(void *handle, const char *path, uint32_t half_period, const char *unit) {
	Machine *machine = static_cast<Machine *>(handle);
	FILE *file = fopen(path, "wb");
	if (!file)
		return -1;
	machine->vcd_file = file;
	machine->half_period = half_period;
	machine->vcd = cxxrtl_vcd_create();
	cxxrtl_vcd_timescale(machine->vcd, 1, unit);
	cxxrtl_vcd_add_from_without_memories(machine->vcd, machine->top);
	machine->settle();
	machine->sample_vcd(2 * half_period * machine->cycles);
	return 0;
}

uint64_t machine_cycle(void *handle) {
	Machine *machine = static_cast<Machine *>(handle);
	return get_field(machine->get(CYCLE), Field{0, 64});
}

int machine_irq(void *handle, uint32_t line) {
	Machine *machine = static_cast<Machine *>(handle);
	return get_bit(machine->get(IRQ), line);
}

void machine_tick(void *handle, uint64_t count) {
	static_cast<Machine *>(handle)->tick(count);
}

// Returns 1 after the first edge that samples `line` asserted (the CPU takes an interrupt at
// a clock edge), 0 if none of the next `timeout` edges does.
int machine_wait_irq(void *handle, uint32_t line, uint64_t timeout) {
	Machine *machine = static_cast<Machine *>(handle);
	for (uint64_t i = 0; i < timeout; i++) {
		machine->edge();
		if (get_bit(machine->at_edge(IRQ), line))
			return 1;
	}
	return 0;
}

// Returns the R response; the data goes to `value`.
uint32_t machine_mmio_read(void *handle, uint64_t addr, uint32_t *value) {
	Machine *machine = static_cast<Machine *>(handle);
	uint32_t *ar = machine->payload(AR_PAYLOAD);
	put_field(ar, machine->field[AR_ADDR], addr);
	put_field(ar, machine->field[AR_PROT], 0);
	machine->put(AR_VALID, AR_READY);
	std::vector<uint32_t> r(machine->chunks_of(R_PAYLOAD));
	machine->take(R_VALID, R_READY, R_PAYLOAD, r.data(), r.size());
	*value = uint32_t(get_field(r.data(), machine->field[R_DATA]));
	return uint32_t(get_field(r.data(), machine->field[R_RESP]));
}

// AW and W are offered together, each withdrawn once taken. Returns the B response.
uint32_t machine_mmio_write(void *handle, uint64_t addr, uint32_t value) {
	Machine *machine = static_cast<Machine *>(handle);
	uint32_t *aw = machine->payload(AW_PAYLOAD);
	put_field(aw, machine->field[AW_ADDR], addr);
	put_field(aw, machine->field[AW_PROT], 0);
	uint32_t *w = machine->payload(W_PAYLOAD);
	put_field(w, machine->field[W_DATA], value);
	put_field(w, machine->field[W_STRB], 0xf);
	machine->set_flag(AW_VALID, true);
	machine->set_flag(W_VALID, true);
	bool aw_pending = true, w_pending = true;
	while (aw_pending || w_pending) {
		machine->edge();
		bool aw_ready = machine->flag_at_edge(AW_READY), w_ready = machine->flag_at_edge(W_READY);
		if (aw_pending && aw_ready) {
			machine->set_flag(AW_VALID, false);
			aw_pending = false;
		}
		if (w_pending && w_ready) {
			machine->set_flag(W_VALID, false);
			w_pending = false;
		}
	}
	std::vector<uint32_t> b(machine->chunks_of(B_PAYLOAD));
	machine->take(B_VALID, B_READY, B_PAYLOAD, b.data(), b.size());
	return uint32_t(get_field(b.data(), machine->field[B_RESP]));
}

// `count` CPU port accesses, one request and one response each, in order. `data` holds
// `word_bytes` bytes per access: the store data, replaced by the load data. Stops at the
// first access answered with an error and returns its index; returns -1 if none was.
int64_t machine_cpu_access(void *handle, uint32_t write, uint32_t cacheable, uint64_t count,
                           const uint64_t *addrs, const uint64_t *strbs, uint8_t *data,
                           uint32_t word_bytes) {
	Machine *machine = static_cast<Machine *>(handle);
	std::vector<uint32_t> rsp(machine->chunks_of(RSP_PAYLOAD));
	for (uint64_t index = 0; index < count; index++) {
		uint8_t *word = data + index * word_bytes;
		uint32_t *req = machine->payload(REQ_PAYLOAD);
		put_field(req, machine->field[REQ_ADDR], addrs[index]);
		put_field(req, machine->field[REQ_WRITE], write);
		if (write)
			put_field_bytes(req, machine->field[REQ_DATA], word);
		else
			put_field(req, machine->field[REQ_DATA], 0);
		put_field(req, machine->field[REQ_STRB], strbs[index]);
		put_field(req, machine->field[REQ_CACHEABLE], cacheable);
		machine->put(REQ_VALID, REQ_READY);
		machine->take(RSP_VALID, RSP_READY, RSP_PAYLOAD, rsp.data(), rsp.size());
		if (get_field(rsp.data(), machine->field[RSP_ERROR]))
			return int64_t(index);
		get_field_bytes(rsp.data(), machine->field[RSP_DATA], word);
	}
	return -1;
}

// Copy `size` bytes at byte `offset` of bank `bank` to (`write` = 0) or from `buffer`,
// without bus cycles. Rows are little-endian: byte `i` of a row is at byte `i` of its chunks.
void machine_backdoor(void *handle, uint32_t bank, uint64_t offset, uint8_t *buffer,
                      uint64_t size, uint32_t write) {
	Machine *machine = static_cast<Machine *>(handle);
	cxxrtl_object *memory = machine->banks[bank];
	uint64_t row_bytes = memory->width / 8;
	uint64_t stride = (memory->width + 31) / 32 * sizeof(uint32_t);
	uint8_t *base = reinterpret_cast<uint8_t *>(memory->curr);
	if (row_bytes == stride) {
		if (write)
			memcpy(base + offset, buffer, size);
		else
			memcpy(buffer, base + offset, size);
	} else {
		for (uint64_t i = 0; i < size; i++) {
			uint8_t *byte = base + (offset + i) / row_bytes * stride + (offset + i) % row_bytes;
			if (write)
				*byte = buffer[i];
			else
				buffer[i] = *byte;
		}
	}
	if (write)
		machine->dirty = true;     // an asynchronous read port may show the new contents
}

}  // extern "C"
