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
//   void skip_at_edge(int port)         no longer keep that of this output (`at_edge`)
//   const uint32_t *after_edge(int port)  an output driven by flip-flops, as the last edge
//                                       left it (no evaluation)
//   size_t chunks(int port)             32-bit chunks of a port's value
//   void backdoor(bank, offset, buffer, size, write)
//   int vcd_open(path, half_period, unit), uint64_t cycles
//
// Port values are little-endian arrays of 32-bit chunks, as in CXXRTL.

#include MODEL_HEADER

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>
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
	if (!field.width)
		return 0;
	const uint32_t *word = chunks + field.offset / 32;
	uint32_t shift = field.offset % 32, have = 32 - shift;
	uint64_t value = word[0] >> shift;
	if (have < field.width)
		value |= uint64_t(word[1]) << have;
	if (have + 32 < field.width)
		value |= uint64_t(word[2]) << (have + 32);
	return field.width < 64 ? value & ((uint64_t(1) << field.width) - 1) : value;
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

// The transaction trace's monitor (sim/trace/probes.py, sw/trace/record.py). After each edge
// it reads what the edge sampled from the registers of the `probe` port of a SoC built with
// probes: the handshakes of the probe channels, the payload of each channel that fired (of a
// channel with a `last` field only the first and the last beat of each burst, per ID) and the
// levels, whose changes it keeps. It pairs the handshakes into transactions as they complete:
// an address handshake with its data burst (and, for a write, its B response), a register
// access's address with its response. Each finished transaction, and each level change, is a
// row of `COLUMNS` numbers (`Column`); `machine_monitor_take` hands the rows to Python, which
// names their fields. The pairing is that of `_pair` in sw/trace/record.py, which pairs the
// built-in simulator's events into the same rows. Off unless the model was built with the
// probe port and Python asked for it.

// A probe channel's kind, as `machine_monitor_open` takes it.
enum ChannelKind { CHANNEL_AR, CHANNEL_AW, CHANNEL_W, CHANNEL_R, CHANNEL_B };

// A row's kind, and its columns. A level row has the level's index in COLUMN_SOURCE, its
// cycle in COLUMN_START and its value in COLUMN_ADDR; a transaction row the index of its port
// (in the names Python gave) in COLUMN_SOURCE, and 0 (read) or 1 (write) in COLUMN_DIR.
enum RowKind { ROW_AXI, ROW_LITE, ROW_LEVEL };
enum Column {
	COLUMN_KIND, COLUMN_SOURCE, COLUMN_DIR, COLUMN_ID, COLUMN_ADDR, COLUMN_BEATS, COLUMN_RESP,
	COLUMN_START, COLUMN_FIRST, COLUMN_LAST, COLUMN_END, COLUMNS
};

// The payload fields the pairing reads, in the order of a channel's row of the table.
enum PayloadField { FIELD_ADDR, FIELD_LEN, FIELD_ID, FIELD_RESP, FIELD_LAST, PAYLOAD_FIELDS };

// A field of a payload of up to 64 bits.
uint64_t bits_of(uint64_t value, Field field) {
	return field.width ? value >> field.offset & (~uint64_t(0) >> (64 - field.width)) : 0;
}

struct ProbeChannel {
	int port_index;                 // the payload's port (-1: none), as in `machine_create`
	Field payload;                  // in that port
	Field field[PAYLOAD_FIELDS];    // in the payload; width 0 if the channel has none
	uint32_t port;                  // the port's index, in the names Python gave
	ChannelKind kind;
	bool lite;                      // an AXI4-Lite channel
	std::vector<uint8_t> in_burst;  // per ID: a burst under way (data channels)
};

// An AXI4 transaction under way.
struct Transaction {
	uint64_t port, write, id, addr, beats, resp, start, first, last;
	bool paired;                    // its data beats (first and last) are known
};

class Pairing {
	std::vector<Transaction> pool;
	std::vector<uint32_t> spare;                              // free places of `pool`
	std::unordered_map<uint64_t, std::deque<uint32_t>> reads; // (port, ID) → ARs waiting
	std::unordered_map<uint64_t, uint32_t> reading;           // (port, ID) → burst under way
	std::vector<std::deque<uint32_t>> writes;                 // port → AWs waiting for W
	std::vector<int64_t> w_burst;                             // port → first W beat, or -1
	std::vector<std::deque<std::pair<uint64_t, uint64_t>>> w_done;  // port → W bursts
	std::unordered_map<uint64_t, std::deque<uint32_t>> responses;   // (port, ID) → AWs
	std::vector<std::deque<std::pair<uint64_t, uint64_t>>> lite[2];  // read, write → (cycle, addr)

	static uint64_t key(uint64_t port, uint64_t id) {
		return port << 32 | id;
	}

	uint32_t open(const Transaction &transaction) {
		if (spare.empty()) {
			pool.push_back(transaction);
			return uint32_t(pool.size() - 1);
		}
		uint32_t place = spare.back();
		spare.pop_back();
		pool[place] = transaction;
		return place;
	}

	void finish(uint32_t place, uint64_t end) {
		const Transaction &t = pool[place];
		rows.insert(rows.end(), {ROW_AXI, t.port, t.write, t.id, t.addr, t.beats, t.resp,
		                         t.start, t.first, t.last, end});
		spare.push_back(place);
	}

	void pair_writes(uint32_t port) {
		while (!writes[port].empty() && !w_done[port].empty()) {
			Transaction &t = pool[writes[port].front()];
			writes[port].pop_front();
			t.first = w_done[port].front().first;
			t.last = w_done[port].front().second;
			t.paired = true;
			w_done[port].pop_front();
		}
	}

public:
	std::vector<uint64_t> rows;

	explicit Pairing(size_t ports = 0)
		: writes(ports), w_burst(ports, -1), w_done(ports) {
		lite[0].resize(ports);
		lite[1].resize(ports);
	}

	void level(uint64_t cycle, uint64_t index, uint64_t value) {
		rows.insert(rows.end(), {ROW_LEVEL, index, 0, 0, value, 0, 0, cycle, 0, 0, 0});
	}

	void handshake(uint64_t cycle, const ProbeChannel &channel, uint64_t bits) {
		auto field = [&](PayloadField name) { return bits_of(bits, channel.field[name]); };
		uint32_t port = channel.port;
		if (channel.lite) {
			if (channel.kind == CHANNEL_AR || channel.kind == CHANNEL_AW)
				lite[channel.kind == CHANNEL_AW][port].emplace_back(cycle, field(FIELD_ADDR));
			else if (channel.kind == CHANNEL_R || channel.kind == CHANNEL_B) {
				bool write = channel.kind == CHANNEL_B;
				auto &queue = lite[write][port];
				if (!queue.empty()) {
					rows.insert(rows.end(), {ROW_LITE, port, write, 0, queue.front().second, 0,
					                         field(FIELD_RESP), queue.front().first, 0, 0,
					                         cycle});
					queue.pop_front();
				}
			}
			return;
		}
		switch (channel.kind) {
		case CHANNEL_AR:
		case CHANNEL_AW: {
			bool write = channel.kind == CHANNEL_AW;
			uint64_t id = field(FIELD_ID);
			uint32_t place = open(Transaction{port, write, id, field(FIELD_ADDR),
			                                  field(FIELD_LEN) + 1, 0, cycle, 0, 0, false});
			if (!write)
				reads[key(port, id)].push_back(place);
			else {
				writes[port].push_back(place);
				responses[key(port, id)].push_back(place);
				pair_writes(port);
			}
			break;
		}
		case CHANNEL_R: {
			uint64_t id = key(port, field(FIELD_ID));
			auto found = reading.find(id);
			uint32_t place;
			if (found == reading.end()) {
				auto queue = reads.find(id);
				if (queue == reads.end() || queue->second.empty())
					break;              // data of a burst begun before the trace
				place = queue->second.front();
				queue->second.pop_front();
				reading.emplace(id, place);
				pool[place].first = cycle;
			} else
				place = found->second;
			Transaction &t = pool[place];
			uint64_t resp = field(FIELD_RESP);
			if (resp > t.resp)
				t.resp = resp;
			if (field(FIELD_LAST)) {
				t.last = cycle;
				reading.erase(id);
				finish(place, 0);
			}
			break;
		}
		case CHANNEL_W:
			if (w_burst[port] < 0)
				w_burst[port] = int64_t(cycle);
			if (field(FIELD_LAST)) {
				w_done[port].emplace_back(uint64_t(w_burst[port]), cycle);
				w_burst[port] = -1;
				pair_writes(port);
			}
			break;
		case CHANNEL_B: {
			auto queue = responses.find(key(port, field(FIELD_ID)));
			if (queue == responses.end() || queue->second.empty())
				break;
			uint32_t place = queue->second.front();
			queue->second.pop_front();
			Transaction &t = pool[place];
			t.resp = field(FIELD_RESP);
			if (!t.paired) {            // no W seen (begun before the trace)
				t.first = t.last = t.start;
				auto &waiting = writes[port];
				for (auto at = waiting.begin(); at != waiting.end(); ++at)
					if (*at == place) {
						waiting.erase(at);
						break;
					}
			}
			finish(place, cycle);
			break;
		}
		}
	}
};

struct Monitor {
	bool on = false;
	uint64_t opened = 0;                    // the cycle at which the monitor was turned on
	int handshake = -1, levels = -1;        // the ports of the handshakes and the levels
	uint32_t channels = 0;
	std::vector<ProbeChannel> channel;
	std::vector<Field> level;
	std::vector<uint64_t> level_value;
	bool first = true;
	bool any = false;                       // an edge has been sampled
	uint64_t last_cycle = 0;                // the cycle of the last edge sampled
	uint64_t events = 0;                    // handshakes and level changes kept
	Pairing pairing;

	// The probes as the edge of `cycle` sampled them, read from the probe port's registers
	// without evaluating anything (`Model::after_edge`); an edge already seen is skipped.
	void sample(Model &model, uint64_t cycle) {
		if (any && cycle <= last_cycle)
			return;
		any = true;
		last_cycle = cycle;
		const uint32_t *fired_bits = model.after_edge(handshake);
		for (uint32_t word = 0; word * 32 < channels; word++) {
			uint32_t fired = fired_bits[word];
			if ((word + 1) * 32 > channels)
				fired &= (uint32_t(1) << (channels % 32)) - 1;
			while (fired) {
				uint32_t index = word * 32 + __builtin_ctz(fired);
				fired &= fired - 1;
				ProbeChannel &probe = channel[index];
				uint64_t value = probe.port_index < 0 ? 0 :
				                 get_field(model.after_edge(probe.port_index), probe.payload);
				if (probe.field[FIELD_LAST].width) {
					uint8_t &busy = probe.in_burst[bits_of(value, probe.field[FIELD_ID])];
					bool was_busy = busy;
					busy = !bits_of(value, probe.field[FIELD_LAST]);
					if (was_busy && busy)
						continue;       // a beat inside a burst
				}
				events++;
				pairing.handshake(cycle, probe, value);
			}
		}
		if (level.empty())
			return;
		const uint32_t *level_bits = model.after_edge(levels);
		for (size_t index = 0; index < level.size(); index++) {
			uint64_t value = get_field(level_bits, level[index]);
			if (first || value != level_value[index]) {
				level_value[index] = value;
				events++;
				pairing.level(cycle, index, value);
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

	// One clock cycle of the model; the monitor, if on, then reads what the edge sampled:
	// the probe port's registers hold it until the next edge, as the cycle counter holds
	// the edge's cycle plus one.
	void edge() {
		model.edge();
		if (monitor.on) {
			uint64_t cycle = get_field(model.after_edge(CYCLE), Field{0, 64});
			if (cycle > monitor.opened)
				monitor.sample(model, cycle - 1);
		}
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

// Turn the transaction monitor on. Its ports are indices into the `port_names` of
// `machine_create`, outputs driven by flip-flops: `handshake`, whose bits 0 to `channels` - 1
// are the channels' handshakes, and `levels`, holding the levels. `channels` channels, each a
// row of 15 numbers: the port of its payload (0xffffffff: none) and the payload's width, the
// index of the channel's port (among `ports`), its `ChannelKind`, whether it is AXI4-Lite,
// then the offset and width in the payload of each `PayloadField` (width 0 if it has none);
// `level_count` levels, each an offset and a width in `levels`. Returns 0, or -1 if a
// payload or level is wider than 64 bits or an ID wider than 16.
int machine_monitor_open(void *handle, uint32_t handshake, uint32_t levels, uint32_t ports,
                         uint32_t channels, const uint32_t *channel_table,
                         uint32_t level_count, const uint32_t *level_table) {
	Machine *machine = static_cast<Machine *>(handle);
	Monitor &monitor = machine->monitor;
	monitor = Monitor();
	monitor.pairing = Pairing(ports);
	for (uint32_t index = 0; index < channels; index++) {
		const uint32_t *row = channel_table + 15 * index;
		ProbeChannel probe;
		probe.port_index = row[0] == 0xffffffffu ? -1 : int(row[0]);
		probe.payload = Field{0, row[1]};
		probe.port = row[2];
		probe.kind = ChannelKind(row[3]);
		probe.lite = row[4];
		for (int name = 0; name < PAYLOAD_FIELDS; name++)
			probe.field[name] = Field{row[5 + 2 * name], row[6 + 2 * name]};
		if (probe.payload.width > 64 || probe.field[FIELD_ID].width > 16 || probe.port >= ports)
			return -1;
		if (probe.field[FIELD_LAST].width)
			probe.in_burst.assign(size_t(1) << probe.field[FIELD_ID].width, 0);
		monitor.channel.push_back(std::move(probe));
		if (row[0] != 0xffffffffu)
			machine->model.skip_at_edge(row[0]);
	}
	for (uint32_t index = 0; index < level_count; index++) {
		if (level_table[2 * index + 1] > 64)
			return -1;
		monitor.level.push_back(Field{level_table[2 * index], level_table[2 * index + 1]});
	}
	monitor.level_value.assign(level_count, 0);
	monitor.channels = channels;
	monitor.handshake = int(handshake);
	monitor.levels = int(levels);
	machine->model.skip_at_edge(handshake);
	machine->model.skip_at_edge(levels);
	monitor.on = true;
	monitor.opened = get_field(machine->model.get(CYCLE), Field{0, 64});
	return 0;
}

// The monitor's rows so far (`COLUMNS` 64-bit numbers each, in the order the transactions
// completed): with `out` null, how many numbers; else copies them to `out` and forgets them.
uint64_t machine_monitor_take(void *handle, uint64_t *out) {
	Machine *machine = static_cast<Machine *>(handle);
	std::vector<uint64_t> &rows = machine->monitor.pairing.rows;
	uint64_t count = rows.size();
	if (out) {
		memcpy(out, rows.data(), count * sizeof(uint64_t));
		rows.clear();
	}
	return count;
}

// How many handshakes and level changes the monitor has kept.
uint64_t machine_monitor_events(void *handle) {
	return static_cast<Machine *>(handle)->monitor.events;
}

// Pair `count` events given as (cycle, index, bits) triples, in the form and order in which
// the monitor keeps them (after the beat filter), as if it had read them: for tests of the
// pairing against sw/trace/record.py's.
void machine_monitor_feed(void *handle, const uint64_t *events, uint64_t count) {
	Monitor &monitor = static_cast<Machine *>(handle)->monitor;
	for (uint64_t index = 0; index < count; index++) {
		const uint64_t *event = events + 3 * index;
		if (event[1] < monitor.channels)
			monitor.pairing.handshake(event[0], monitor.channel[event[1]], event[2]);
		else
			monitor.pairing.level(event[0], event[1] - monitor.channels, event[2]);
	}
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
