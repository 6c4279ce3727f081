// The compiled side of the machine: every per-cycle loop of a driver request.
//
// Linked with a compiled model of the SoC, this file gives Python one C call per machine
// request (an MMIO access, a CPU access of many words, an IRQ wait, N ticks, a backdoor
// copy). The handshakes mirror those of the built-in simulator backend (sw/machine/pysim.py)
// edge for edge, so that every backend counts the same cycles:
//
// * inputs set by a request take effect at once (the design is settled before any read);
// * what a request waits for (a ready, a valid and its payload, an interrupt line) is what
//   the rising edge samples, as with `ctx.tick().sample(...)`;
// * an offered payload is withdrawn after the edge that took it, a ready is dropped after
//   the edge that took a payload, and an interrupt wait returns after the edge that saw it.
//
// The model itself comes from the backend's `model.h`, named by the MODEL_HEADER macro at
// compile time (sw/machine/cxxrtl/model.h, sw/machine/verilator/model.h). It is a class
// `Model` holding the design, whose ports are numbered as in `port_names` below:
//
//   std::string open(port_names, port_count, bank_names, bank_rows, bank_count, row_width)
//                                       "" or what does not fit
//   const uint32_t *get(int port)       a port as the design drives it now, settled
//   uint32_t *payload(int port)         an input's value, to change before the next settle
//   void set_flag(int port, bool)       a one-bit input
//   void edge()                         one clock cycle, ending with its rising edge
//   const uint32_t *at_edge(int port)   an output as the last rising edge sampled it
//   size_t chunks(int port)             32-bit chunks of a port's value
//   void backdoor(bank, offset, buffer, size, write)
//   int vcd_open(path, half_period, unit), uint64_t cycles
//
// Port values are little-endian arrays of 32-bit chunks, as in CXXRTL.

#include MODEL_HEADER

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

// The ports the driver loops use, first in the `port_names` given to `machine_create`; the
// names after them are inputs that Python sets as a whole (`machine_set_input`).
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

// The transaction trace's monitor (sim/trace/probes.py): at each edge, the handshakes of
// the probe channels and the changes of the probe levels that the `probe` port of a SoC
// built with probes carries, as (cycle, index, bits) events; of a channel with a `last`
// field only the first and the last beat of each burst (per ID). Off (`port` < 0) unless the
// model was built with the probe port and Python asked for it.
struct Monitor {
	int port = -1;
	uint64_t opened = 0;                    // the cycle at which the monitor was turned on
	uint32_t channels = 0;
	std::vector<Field> payload, id;
	std::vector<int64_t> last;              // bit of `last` in the payload, or -1
	std::vector<std::vector<uint8_t>> in_burst;
	std::vector<Field> level;
	std::vector<uint64_t> level_value;
	bool first = true;
	bool any = false;                       // an edge has been sampled
	uint64_t last_cycle = 0;                // the cycle of the last edge sampled
	std::vector<uint64_t> events;           // (cycle, index, bits) triples

	// The probes as the edge of `cycle` sampled them; an edge already seen is skipped.
	void sample(const uint32_t *bits, uint64_t cycle) {
		if (any && cycle <= last_cycle)
			return;
		any = true;
		last_cycle = cycle;
		for (uint32_t word = 0; word * 32 < channels; word++) {
			uint32_t fired = bits[word];
			if ((word + 1) * 32 > channels)
				fired &= (uint32_t(1) << (channels % 32)) - 1;
			while (fired) {
				uint32_t index = word * 32 + __builtin_ctz(fired);
				fired &= fired - 1;
				uint64_t value = get_field(bits, payload[index]);
				if (last[index] >= 0) {
					uint64_t key = id[index].width ? (value >> id[index].offset) &
					               ((uint64_t(1) << id[index].width) - 1) : 0;
					uint8_t &busy = in_burst[index][key];
					bool was_busy = busy;
					busy = !((value >> last[index]) & 1);
					if (was_busy && busy)
						continue;       // a beat inside a burst
				}
				events.insert(events.end(), {cycle, index, value});
			}
		}
		for (size_t index = 0; index < level.size(); index++) {
			uint64_t value = get_field(bits, level[index]);
			if (first || value != level_value[index]) {
				level_value[index] = value;
				events.insert(events.end(), {cycle, channels + index, value});
			}
		}
		first = false;
	}
};

struct Machine {
	Model model;
	Field field[FIELD_COUNT] = {};
	Monitor monitor;

	bool flag_at_edge(PortIndex index) {
		return model.at_edge(index)[0] & 1;
	}

	// One clock cycle of the model; the monitor, if on, sees what the edge before it
	// sampled: the probe port is a register, which holds after an edge what that edge
	// sampled, and so holds it when the next edge samples the outputs (`at_edge`, read
	// without any evaluation). The last edge's sample is read by `monitor_flush`.
	void edge() {
		model.edge();
		if (monitor.port >= 0) {
			uint64_t cycle = get_field(model.at_edge(CYCLE), Field{0, 64});
			if (cycle > monitor.opened)
				monitor.sample(model.at_edge(monitor.port), cycle - 1);
		}
	}

	// The sample of the last edge, from the probe port as it is now.
	void monitor_flush() {
		uint64_t cycle = get_field(model.get(CYCLE), Field{0, 64});
		if (monitor.port >= 0 && cycle > monitor.opened)
			monitor.sample(model.get(monitor.port), cycle - 1);
	}

	void tick(uint64_t count) {
		for (uint64_t i = 0; i < count; i++)
			edge();
	}

	// Offer one payload (already set) on a stream this side drives; withdraw it once taken.
	void put(PortIndex valid, PortIndex ready) {
		model.set_flag(valid, true);
		do
			edge();
		while (!flag_at_edge(ready));
		model.set_flag(valid, false);
	}

	// Take one payload from a stream the design drives; copies it to `out` (chunks).
	void take(PortIndex valid, PortIndex ready, PortIndex payload_port, uint32_t *out,
	          size_t chunks) {
		model.set_flag(ready, true);
		do
			edge();
		while (!flag_at_edge(valid));
		memcpy(out, model.at_edge(payload_port), chunks * sizeof(uint32_t));
		model.set_flag(ready, false);
	}
};

}  // namespace

extern "C" {

// Returns nullptr and a message in `error` if a port or bank is missing or of the wrong kind.
void *machine_create(const char *const *port_names, uint32_t port_count, const uint32_t *fields,
                     const char *const *bank_names, const uint64_t *bank_rows,
                     uint32_t bank_count, uint32_t row_width, char *error, size_t error_size) {
	Machine *machine = new Machine;
	std::string message = port_count < PORT_COUNT ? "fewer ports than the driver loops use" :
	                      machine->model.open(port_names, port_count, bank_names, bank_rows,
	                                          bank_count, row_width);
	if (!message.empty()) {
		snprintf(error, error_size, "%s", message.c_str());
		delete machine;
		return nullptr;
	}
	for (int index = 0; index < FIELD_COUNT; index++)
		machine->field[index] = Field{fields[2 * index], fields[2 * index + 1]};
	return machine;
}

// Turn the transaction monitor on, on output `port` (an index into the `port_names` of
// `machine_create`): `channels` channels, each five numbers (payload offset and width in the
// port, then in the payload: the bit of `last` or 0xffffffff, the ID's offset and width),
// bits 0 to `channels` - 1 of the port their handshakes; `levels` levels, each an offset and
// a width. Returns 0, or -1 if a field is wider than 64 bits.
int machine_monitor_open(void *handle, uint32_t port, uint32_t channels,
                         const uint32_t *channel_table, uint32_t levels,
                         const uint32_t *level_table) {
	Machine *machine = static_cast<Machine *>(handle);
	Monitor &monitor = machine->monitor;
	monitor = Monitor();
	for (uint32_t index = 0; index < channels; index++) {
		const uint32_t *row = channel_table + 5 * index;
		if (row[1] > 64 || row[4] > 16)
			return -1;
		monitor.payload.push_back(Field{row[0], row[1]});
		monitor.last.push_back(row[2] == 0xffffffffu ? -1 : int64_t(row[2]));
		monitor.id.push_back(Field{row[3], row[4]});
		monitor.in_burst.emplace_back(size_t(1) << row[4]);
	}
	for (uint32_t index = 0; index < levels; index++) {
		if (level_table[2 * index + 1] > 64)
			return -1;
		monitor.level.push_back(Field{level_table[2 * index], level_table[2 * index + 1]});
	}
	monitor.level_value.assign(levels, 0);
	monitor.channels = channels;
	monitor.port = int(port);
	monitor.opened = get_field(machine->model.get(CYCLE), Field{0, 64});
	return 0;
}

// The monitor's events so far, the last edge's included (triples of 64-bit numbers): with
// `out` null, how many numbers; else copies them to `out` and forgets them.
uint64_t machine_monitor_take(void *handle, uint64_t *out) {
	Machine *machine = static_cast<Machine *>(handle);
	machine->monitor_flush();
	std::vector<uint64_t> &events = machine->monitor.events;
	uint64_t count = events.size();
	if (out) {
		memcpy(out, events.data(), count * sizeof(uint64_t));
		events.clear();
	}
	return count;
}

void machine_destroy(void *handle) {
	delete static_cast<Machine *>(handle);
}

// Start writing every signal (not the memories) to the VCD file `path`, `half_period` time
// units of `unit` per clock phase. Returns 0, -1 if the file cannot be opened, or -2 if
// the model was built without waveforms.
int machine_vcd_open(void *handle, const char *path, uint32_t half_period, const char *unit) {
	return static_cast<Machine *>(handle)->model.vcd_open(path, half_period, unit);
}

// Set input `port` (an index into the `port_names` of `machine_create`) to `chunks`, from
// the next evaluation on.
void machine_set_input(void *handle, uint32_t port, const uint32_t *chunks) {
	Model &model = static_cast<Machine *>(handle)->model;
	memcpy(model.payload(port), chunks, model.chunks(port) * sizeof(uint32_t));
}

uint64_t machine_cycle(void *handle) {
	Machine *machine = static_cast<Machine *>(handle);
	return get_field(machine->model.get(CYCLE), Field{0, 64});
}

int machine_irq(void *handle, uint32_t line) {
	Machine *machine = static_cast<Machine *>(handle);
	return get_bit(machine->model.get(IRQ), line);
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
		if (get_bit(machine->model.at_edge(IRQ), line))
			return 1;
	}
	return 0;
}

// Returns the R response; the data goes to `value`.
uint32_t machine_mmio_read(void *handle, uint64_t addr, uint32_t *value) {
	Machine *machine = static_cast<Machine *>(handle);
	uint32_t *ar = machine->model.payload(AR_PAYLOAD);
	put_field(ar, machine->field[AR_ADDR], addr);
	put_field(ar, machine->field[AR_PROT], 0);
	machine->put(AR_VALID, AR_READY);
	std::vector<uint32_t> r(machine->model.chunks(R_PAYLOAD));
	machine->take(R_VALID, R_READY, R_PAYLOAD, r.data(), r.size());
	*value = uint32_t(get_field(r.data(), machine->field[R_DATA]));
	return uint32_t(get_field(r.data(), machine->field[R_RESP]));
}

// AW and W are offered together, each withdrawn once taken. Returns the B response.
uint32_t machine_mmio_write(void *handle, uint64_t addr, uint32_t value) {
	Machine *machine = static_cast<Machine *>(handle);
	Model &model = machine->model;
	uint32_t *aw = model.payload(AW_PAYLOAD);
	put_field(aw, machine->field[AW_ADDR], addr);
	put_field(aw, machine->field[AW_PROT], 0);
	uint32_t *w = model.payload(W_PAYLOAD);
	put_field(w, machine->field[W_DATA], value);
	put_field(w, machine->field[W_STRB], 0xf);
	model.set_flag(AW_VALID, true);
	model.set_flag(W_VALID, true);
	bool aw_pending = true, w_pending = true;
	while (aw_pending || w_pending) {
		machine->edge();
		bool aw_ready = machine->flag_at_edge(AW_READY);
		bool w_ready = machine->flag_at_edge(W_READY);
		if (aw_pending && aw_ready) {
			model.set_flag(AW_VALID, false);
			aw_pending = false;
		}
		if (w_pending && w_ready) {
			model.set_flag(W_VALID, false);
			w_pending = false;
		}
	}
	std::vector<uint32_t> b(model.chunks(B_PAYLOAD));
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
	std::vector<uint32_t> rsp(machine->model.chunks(RSP_PAYLOAD));
	for (uint64_t index = 0; index < count; index++) {
		uint8_t *word = data + index * word_bytes;
		uint32_t *req = machine->model.payload(REQ_PAYLOAD);
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
// without bus cycles.
void machine_backdoor(void *handle, uint32_t bank, uint64_t offset, uint8_t *buffer,
                      uint64_t size, uint32_t write) {
	static_cast<Machine *>(handle)->model.backdoor(bank, offset, buffer, size, write);
}

}  // extern "C"
