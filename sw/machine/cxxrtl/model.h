// The SoC as a CXXRTL model, for the driver loops of sw/machine/compiled/driver.cc.
//
// The design is the one `write_cxxrtl` made of the flattened SoC; this class reaches its
// ports and memories through the CXXRTL C API, by their debug names.

#include <cxxrtl/capi/cxxrtl_capi.h>
#include <cxxrtl/capi/cxxrtl_capi_vcd.h>

#include "rows.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern "C" cxxrtl_toplevel cxxrtl_design_create();

class Model {
	cxxrtl_handle top = nullptr;
	std::vector<cxxrtl_object *> port;
	std::vector<cxxrtl_object *> banks;
	int clock = 0;                // the index of the clock input
	bool dirty = true;            // inputs or state changed since the design last settled
	bool high_committed = false;  // the last commit saw the clock high: the next edge must
	                              // first commit the low level (edge detection needs it)
	uint64_t half_period = 5;     // VCD time units per clock phase
	cxxrtl_vcd vcd = nullptr;
	FILE *vcd_file = nullptr;
	// The output ports as the last edge sampled them, and which they are.
	std::vector<std::vector<uint32_t>> sampled;
	std::vector<int> sampled_ports;

	const uint32_t *current(int index) {
		cxxrtl_object *object = port[index];
		if (object->outline)
			cxxrtl_outline_eval(object->outline);
		return object->curr;
	}

	// The clock feeds nothing but the edge detectors: changing its level needs no evaluation.
	void set_clock(bool value) {
		uint32_t *next = port[clock]->next;
		next[0] = (next[0] & ~1u) | uint32_t(value);
	}

	void commit() {
		cxxrtl_commit(top);
		high_committed = port[clock]->next[0] & 1;
	}

	// Returns how many evaluations it took (1 for the flattened designs the builder makes).
	size_t settle() {
		if (!dirty)
			return 0;
		size_t deltas = cxxrtl_step(top);
		dirty = false;
		high_committed = port[clock]->next[0] & 1;
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

public:
	uint64_t cycles = 0;          // rising edges so far

	~Model() {
		if (vcd) {
			sample_vcd(2 * half_period * cycles);
			cxxrtl_vcd_destroy(vcd);
			fclose(vcd_file);
		}
		if (top)
			cxxrtl_destroy(top);
	}

	// Port 0 is the clock.
	std::string open(const char *const *port_names, int port_count,
	                 const char *const *bank_names, const uint64_t *bank_rows,
	                 uint32_t bank_count, uint32_t row_width) {
		top = cxxrtl_create(cxxrtl_design_create());
		port.resize(port_count);
		sampled.resize(port_count);
		for (int index = 0; index < port_count; index++) {
			cxxrtl_object *object = cxxrtl_get(top, port_names[index]);
			if (!object)
				return std::string("the design has no port '") + port_names[index] + "'";
			bool input = object->flags & CXXRTL_INPUT;
			if ((input && !object->next) || (!input && !(object->flags & CXXRTL_OUTPUT)))
				return std::string("'") + port_names[index] + "' is not a top-level port";
			port[index] = object;
			if (!input) {
				sampled[index].resize(chunks(index));
				sampled_ports.push_back(index);
			}
		}
		for (uint32_t index = 0; index < bank_count; index++) {
			cxxrtl_object *object = cxxrtl_get(top, bank_names[index]);
			if (!object || object->type != CXXRTL_MEMORY || object->width != row_width ||
			    object->depth != bank_rows[index] || object->zero_at != 0)
				return std::string("the design has no memory '") + bank_names[index] +
				       "' of " + std::to_string(bank_rows[index]) + " rows of " +
				       std::to_string(row_width) + " bits";
			banks.push_back(object);
		}
		if (settle() != 1)
			return "the design does not settle in one evaluation (combinational feedback "
			       "between its modules): the machine needs it flattened";
		return "";
	}

	size_t chunks(int index) const {
		return (port[index]->width + 31) / 32;
	}

	// A port as the design drives it now. A flip-flop's output is up to date after an edge;
	// anything else needs the design settled first.
	const uint32_t *get(int index) {
		if (!(port[index]->flags & CXXRTL_DRIVEN_SYNC))
			settle();
		return current(index);
	}

	const uint32_t *at_edge(int index) const {
		return sampled[index].data();
	}

	void skip_at_edge(int index) {
		sampled[index].clear();
		sampled_ports.erase(std::remove(sampled_ports.begin(), sampled_ports.end(), index),
		                    sampled_ports.end());
	}

	// An output driven by flip-flops as the last edge left it: their values, committed.
	const uint32_t *after_edge(int index) {
		return current(index);
	}

	void set_flag(int index, bool value) {
		uint32_t *next = port[index]->next;
		if ((next[0] & 1) != uint32_t(value)) {
			next[0] = (next[0] & ~1u) | uint32_t(value);
			dirty = true;
		}
	}

	uint32_t *payload(int index) {
		dirty = true;
		return port[index]->next;
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
		for (int index : sampled_ports)
			memcpy(sampled[index].data(), current(index), sampled[index].size() * sizeof(uint32_t));
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

	int vcd_open(const char *path, uint32_t period, const char *unit) {
		FILE *file = fopen(path, "wb");
		if (!file)
			return -1;
		vcd_file = file;
		half_period = period;
		vcd = cxxrtl_vcd_create();
		cxxrtl_vcd_timescale(vcd, 1, unit);
		cxxrtl_vcd_add_from_without_memories(vcd, top);
		settle();
		sample_vcd(2 * half_period * cycles);
		return 0;
	}

	void backdoor(uint32_t bank, uint64_t offset, uint8_t *buffer, uint64_t size, bool write) {
		cxxrtl_object *memory = banks[bank];
		copy_rows(reinterpret_cast<uint8_t *>(memory->curr), memory->width / 8,
		          (memory->width + 31) / 32 * sizeof(uint32_t), offset, buffer, size, write);
		if (write)
			dirty = true;     // an asynchronous read port may show the new contents
	}
};
